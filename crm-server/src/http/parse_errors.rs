//! The HTTP/1 parser's own answers, given as problems.
//!
//! hyper refuses a request it cannot parse before any of our code sees it: a URI over 64 KiB is
//! 414, a head over its buffer (about 400 KiB) or with more than 100 header fields is 431, a
//! malformed request line or header 400. It writes these itself, with `content-length: 0`, and
//! closes the connection. So that a client sees `application/problem+json` here too, connections
//! are served through [`ProblemIo`], which recognises exactly such a head among the bytes written
//! (the application's own error responses always have a problem body) and writes the same head
//! with the problem as its body instead.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::error::Problem;

/// Longer than any head the parser writes for an error (status line, `connection`,
/// `content-length` and `date`).
const MAX_HEAD: usize = 256;

/// Accepts connections as [`TcpListener`] does, each wrapped in a [`ProblemIo`].
pub struct Listener(pub TcpListener);

impl axum::serve::Listener for Listener {
    type Io = ProblemIo<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = axum::serve::Listener::accept(&mut self.0).await;
        (ProblemIo { inner: io, rewritten: None }, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A connection whose writes pass through unchanged, except hyper's bodiless answer to a request
/// it could not parse.
pub struct ProblemIo<S> {
    inner: S,
    /// The replacement being written: its bytes, how many are written, and the length of the
    /// original to report once all are.
    rewritten: Option<(Vec<u8>, usize, usize)>,
}

/// The head hyper writes for a parse error, e.g. `HTTP/1.1 414 URI Too Long\r\nconnection:
/// close\r\ncontent-length: 0\r\ndate: ...\r\n\r\n`, rewritten with a problem as its body; `None`
/// for anything else.
fn with_problem(head: &[u8]) -> Option<Vec<u8>> {
    // Every response passes here: answer from the first bytes, and look further only at a short
    // head of one of the three statuses.
    let status = match head.get(..13)? {
        b"HTTP/1.1 400 " => StatusCode::BAD_REQUEST,
        b"HTTP/1.1 414 " => StatusCode::URI_TOO_LONG,
        b"HTTP/1.1 431 " => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        _ => return None,
    };
    if head.len() > MAX_HEAD {
        return None;
    }
    let lines = std::str::from_utf8(head).ok()?.strip_suffix("\r\n\r\n")?;
    if lines.contains("\r\n\r\n") || !lines.to_ascii_lowercase().contains("\r\ncontent-length: 0") {
        return None;
    }
    let detail = match status {
        StatusCode::URI_TOO_LONG => "the request's URI is longer than the server reads (64 KiB)",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            "the request's header fields are more than the server reads (100 fields, about 400 KiB)"
        }
        _ => "the request is not HTTP the server can read",
    };
    let problem = Problem { detail: Some(detail.to_owned()), ..Problem::from_status(status) };
    let body = serde_json::to_vec(&problem).ok()?;
    let mut out = String::new();
    for line in lines.split("\r\n") {
        if line.eq_ignore_ascii_case("content-length: 0") {
            out.push_str(&format!("content-type: {}\r\n", super::problem::CONTENT_TYPE));
            out.push_str(&format!("content-length: {}\r\n", body.len()));
        } else {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&body);
    Some(bytes)
}

impl<S: AsyncWrite + Unpin> ProblemIo<S> {
    /// Writes the rest of the replacement; ready with the original's length once it is all out.
    fn poll_rewritten(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        while let Some((bytes, written, original)) = &mut self.rewritten {
            if *written == bytes.len() {
                let original = *original;
                self.rewritten = None;
                return Poll::Ready(Ok(original));
            }
            match Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(0))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ProblemIo<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ProblemIo<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.rewritten.is_none()
            && let Some(bytes) = with_problem(buf)
        {
            this.rewritten = Some((bytes, 0, buf.len()));
        }
        if this.rewritten.is_some() {
            return this.poll_rewritten(cx);
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // The parser's answer is a head alone, in one slice.
        let mut slices = bufs.iter().filter(|b| !b.is_empty());
        if this.rewritten.is_none()
            && let (Some(head), None) = (slices.next(), slices.next())
            && let Some(bytes) = with_problem(head)
        {
            this.rewritten = Some((bytes, 0, head.len()));
        }
        if this.rewritten.is_some() {
            return this.poll_rewritten(cx);
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parsers_bodiless_answers_get_a_problem() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Mon, 07 Dec 2026 22:05:28 GMT\r\n\r\n";
        let out = String::from_utf8(with_problem(head).unwrap()).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\n"),
            "{head}"
        );
        assert!(head.contains("content-type: application/problem+json"), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        let problem: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(problem["status"], 431);
    }

    #[test]
    fn every_other_write_passes_unchanged() {
        for bytes in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 414 URI Too Long\r\ncontent-type: application/problem+json\r\ncontent-length: 90\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{\"partial\":",
            b"{\"items\": []}",
        ] {
            assert!(with_problem(bytes).is_none(), "{}", String::from_utf8_lossy(bytes));
        }
    }
}
