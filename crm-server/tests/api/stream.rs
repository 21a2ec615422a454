//! The live stream (`GET /events/stream`): new events as they are published, resumption after
//! `Last-Event-ID`, and its end: at shutdown, and when the token it was opened with expires.

use std::time::Duration;

use axum::http::{Request, StatusCode};
use crm_server::auth::UserRole;
use crm_server::outbox;
use crm_server::testing::TestApp;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use serde_json::Value;

use crate::relay::{bounce, customer, origin};

/// How long a test waits for the next frame of a stream before it fails: far above any real
/// delay, so that it only ends a test that would otherwise hang.
const FRAME_WAIT: Duration = Duration::from_secs(20);

/// An open live stream: (id, event, data) as they arrive.
struct Stream {
    body: UnsyncBoxBody<axum::body::Bytes, String>,
    text: String,
}

impl Stream {
    async fn open(app: &TestApp, token: &str, last_event_id: Option<&str>) -> Stream {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        let mut request =
            Request::get(app.url("/events/stream")).header("authorization", format!("Bearer {token}"));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response =
            client.request(request.body(Full::new(axum::body::Bytes::new())).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Stream { body: response.into_body().map_err(|e| e.to_string()).boxed_unsync(), text: String::new() }
    }

    /// The next event, or `None` once the server has ended the stream.
    async fn next(&mut self) -> Option<(String, String, Value)> {
        loop {
            if let Some(end) = self.text.find("\n\n") {
                let block: String = self.text.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(&format!("{name}:")).map(|v| v.trim().to_owned()))
                };
                if let (Some(id), Some(event), Some(data)) = (field("id"), field("event"), field("data")) {
                    return Some((id, event, serde_json::from_str(&data).unwrap()));
                }
                continue; // a keep-alive comment
            }
            let frame = tokio::time::timeout(FRAME_WAIT, self.body.frame()).await.expect("a frame in time");
            match frame {
                None => return None,
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        self.text.push_str(&String::from_utf8_lossy(data));
                    }
                }
                Some(Err(error)) => panic!("the stream broke: {error}"),
            }
        }
    }

    /// The next `count` events; panics if the stream ends first.
    async fn take(&mut self, count: usize) -> Vec<(String, String, Value)> {
        let mut events = Vec::new();
        while events.len() < count {
            events.push(self.next().await.expect("the stream ended"));
        }
        events
    }
}

fn admin(app: &TestApp) -> String {
    app.token("admin", &[UserRole::Admin], &[], &[])
}

/// Writes `count` events of `customer` and publishes them.
async fn publish(app: &TestApp, customer: uuid::Uuid, count: usize) {
    for _ in 0..count {
        let mut tx = app.db.pool.begin().await.unwrap();
        outbox::enqueue(&mut tx, &origin(), bounce(customer)).await.unwrap();
        tx.commit().await.unwrap();
    }
    app.relay_all().await;
}

#[tokio::test]
async fn the_live_stream_delivers_new_events_and_resumes_after_the_last_id() {
    let app = TestApp::spawn().await;
    let id = customer(&app).await;
    app.relay_all().await; // customer.created: position 1, before the stream starts
    // Open (its answer's head is there): it starts after what was published by then.
    let mut stream = Stream::open(&app, &admin(&app), None).await;
    let (events, ()) = tokio::join!(stream.take(2), publish(&app, id, 2));
    let ids: Vec<&str> = events.iter().map(|(id, ..)| id.as_str()).collect();
    assert_eq!(ids, ["2", "3"], "only what was published after the stream began");
    assert_eq!(events[0].1, "customer.contactability.changed");
    assert_eq!(events[0].2["position"], 2);

    let resumed = Stream::open(&app, &admin(&app), Some("1")).await.take(2).await;
    assert_eq!(resumed.iter().map(|(id, ..)| id.as_str()).collect::<Vec<_>>(), ["2", "3"]);
}

/// A stream is authorised once, when it opens; it must not outlive the token that opened it. It
/// ends at the token's `exp` plus the leeway, and a client that reconnects with a fresh token and
/// its `Last-Event-ID` gets everything published in between, once.
#[tokio::test]
async fn the_live_stream_ends_when_its_token_expires_and_a_fresh_token_resumes_without_a_gap() {
    let leeway = Duration::from_secs(1);
    let app = TestApp::spawn_with_leeway(leeway).await;
    let id = customer(&app).await;
    app.relay_all().await;
    let short = app
        .key
        .mint("watcher", &[UserRole::Admin], &[], &[], Duration::from_secs(3))
        .expect("a short-lived token");
    let mut expiring = Stream::open(&app, &short, Some("1")).await;
    // Opened with a token valid for an hour: it must go on after the short one has ended.
    let mut lasting = Stream::open(&app, &admin(&app), Some("1")).await;

    publish(&app, id, 2).await;
    let mut seen: Vec<String> = expiring.take(2).await.into_iter().map(|(id, ..)| id).collect();
    assert!(expiring.next().await.is_none(), "the stream ends when its token expires");

    // Published while the client is away.
    publish(&app, id, 3).await;
    let fresh = app.token("watcher", &[UserRole::Admin], &[], &[]);
    let last = seen.last().cloned().unwrap();
    let mut resumed = Stream::open(&app, &fresh, Some(&last)).await;
    seen.extend(resumed.take(3).await.into_iter().map(|(id, ..)| id));
    assert_eq!(seen, ["2", "3", "4", "5", "6"], "every event once, in order, across the reconnect");

    let other: Vec<String> = lasting.take(5).await.into_iter().map(|(id, ..)| id).collect();
    assert_eq!(other, ["2", "3", "4", "5", "6"], "a stream with a valid token goes on");
}

/// A shutdown ends the live streams, so the server drains at once instead of waiting for them
/// until its timeout (30 s).
#[tokio::test]
async fn a_shutdown_ends_the_live_streams() {
    let app = TestApp::spawn().await;
    let client =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let request = Request::get(app.url("/events/stream"))
        .header("authorization", format!("Bearer {}", admin(&app)))
        .body(Full::new(axum::body::Bytes::new()))
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let reader = tokio::spawn(async move { response.into_body().collect().await.is_ok() });
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(10), app.shutdown()).await.expect("a prompt shutdown").unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(tokio::time::timeout(Duration::from_secs(5), reader).await.expect("the stream ended").unwrap());
}
