//! Correlation ids: taken from `X-Correlation-ID`, else from the trace id of a W3C `traceparent`,
//! else generated. The id is echoed in the response, carried into every log line of the request
//! and into the events the request writes.

use axum::http::HeaderMap;

pub const HEADER: &str = "x-correlation-id";

/// The correlation id of the request being served (a request extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelationId(pub String);

impl CorrelationId {
    pub fn from_headers(headers: &HeaderMap) -> CorrelationId {
        let given = headers.get(HEADER).and_then(|v| v.to_str().ok()).filter(|v| is_valid(v));
        let traced = || headers.get("traceparent").and_then(|v| v.to_str().ok()).and_then(trace_id);
        CorrelationId(given.map(str::to_owned).or_else(traced).unwrap_or_else(generate))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A caller's id is kept only when it is a short token: it ends up in logs, headers and events,
/// so anything that could forge a log line or bloat storage is replaced by a fresh id.
fn is_valid(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/'))
}

/// The trace id of a version-00 `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), unless it is the
/// all-zero id the spec declares invalid.
fn trace_id(traceparent: &str) -> Option<String> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex =
        |s: &str, len: usize| s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let valid = version == "00"
        && parts.next().is_none()
        && hex(trace, 32)
        && hex(parent, 16)
        && hex(flags, 2)
        && trace.bytes().any(|b| b != b'0')
        && parent.bytes().any(|b| b != b'0');
    valid.then(|| trace.to_owned())
}

fn generate() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn a_given_correlation_id_is_kept() {
        let id = CorrelationId::from_headers(&headers(&[(HEADER, "order-4711")]));
        assert_eq!(id.as_str(), "order-4711");
    }

    #[test]
    fn the_trace_id_of_a_traceparent_is_used_when_no_correlation_id_is_given() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let id = CorrelationId::from_headers(&headers(&[("traceparent", tp)]));
        assert_eq!(id.as_str(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn an_explicit_correlation_id_wins_over_traceparent() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let id = CorrelationId::from_headers(&headers(&[("traceparent", tp), (HEADER, "abc")]));
        assert_eq!(id.as_str(), "abc");
    }

    #[test]
    fn invalid_traceparents_are_ignored() {
        for tp in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "garbage",
        ] {
            let id = CorrelationId::from_headers(&headers(&[("traceparent", tp)]));
            assert_eq!(id.as_str().len(), 32, "{tp} gave {id:?}");
            assert_ne!(id.as_str(), "4bf92f3577b34da6a3ce929d0e0e4736", "{tp}");
        }
    }

    #[test]
    fn ids_that_could_forge_log_lines_are_replaced() {
        let long = "a".repeat(129);
        for bad in ["", "two words", "quote\"d", long.as_str()] {
            let id = CorrelationId::from_headers(&headers(&[(HEADER, bad)]));
            assert_ne!(id.as_str(), bad);
            assert!(is_valid(id.as_str()));
        }
    }

    #[test]
    fn generated_ids_are_unique() {
        let a = CorrelationId::from_headers(&HeaderMap::new());
        let b = CorrelationId::from_headers(&HeaderMap::new());
        assert_ne!(a, b);
    }

    proptest! {
        /// Whatever a client sends, the id we use is a valid header value and a safe log token.
        #[test]
        fn the_id_is_always_a_safe_token(value in "[ -~]{0,200}", tp in "[ -~]{0,80}") {
            let mut map = HeaderMap::new();
            if let Ok(v) = value.parse() { map.insert(HEADER, v); }
            if let Ok(v) = tp.parse() { map.insert("traceparent", v); }
            let id = CorrelationId::from_headers(&map);
            prop_assert!(is_valid(id.as_str()));
            prop_assert!(axum::http::HeaderValue::from_str(id.as_str()).is_ok());
        }
    }
}
