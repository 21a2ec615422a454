//! Prometheus metrics of the server, in the OpenMetrics text format of prometheus-client.
//!
//! Names are prefixed `crm_`. Label values are bounded: methods outside the standard set become
//! `OTHER`, and routes are the matched route template (`/customers/{id}`), never the raw path, so
//! a scan of random URLs cannot blow up the series count.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Route label for requests that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Latency buckets in seconds: fine below 10 ms where reads live, and one at 200 ms, the p95
/// alert threshold.
const LATENCY_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConsumerLabels {
    pub consumer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub state: &'static str,
}

pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<HttpLabels, Histogram>,
    db_connections: Family<PoolLabels, Gauge>,
    db_max_connections: Gauge,
    projection_drifted_rows: Gauge,
    projection_oldest_unrefreshed_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    projection_last_check: Gauge<f64, std::sync::atomic::AtomicU64>,
    outbox_published: Counter,
    outbox_publish_errors: Counter,
    outbox_unpublished: Gauge,
    outbox_oldest_unpublished_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    consumer_lag: Family<ConsumerLabels, Gauge>,
    consumer_dead_letters: Family<ConsumerLabels, Gauge>,
    notification_queue_usage: Gauge<f64, std::sync::atomic::AtomicU64>,
}

/// The outbox's state, sampled by the background jobs (and `crm-server events status`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxStats {
    pub unpublished: i64,
    pub oldest_unpublished_seconds: f64,
    pub consumers: Vec<ConsumerStats>,
    /// `pg_notification_queue_usage()`: the share of the notification queue in use (0 to 1).
    pub notification_queue_usage: f64,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerStats {
    pub consumer: String,
    /// Published events the consumer has not handled yet.
    pub lag: i64,
    /// Events it gave up on that were not re-driven.
    pub dead_letters: i64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("crm");
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests served, by method, route template and status",
            http_requests.clone(),
        );
        let http_duration =
            Family::<HttpLabels, Histogram>::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS));
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency until the response head is sent, by method, route template and status",
            http_duration.clone(),
        );
        let db_connections = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_pool_connections",
            "Connections of the database pool, by state (idle, in_use)",
            db_connections.clone(),
        );
        let db_max_connections = Gauge::default();
        registry.register(
            "db_pool_max_connections",
            "Configured size limit of the database pool",
            db_max_connections.clone(),
        );
        let projection_drifted_rows = Gauge::default();
        registry.register(
            "projection_drifted_rows",
            "Hot projection rows that differ from a recompute from the sources, at the last check",
            projection_drifted_rows.clone(),
        );
        let projection_oldest_unrefreshed_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "projection_oldest_unrefreshed_seconds",
            "Age of the oldest source change the hot projection does not reflect, at the last check (0: none)",
            projection_oldest_unrefreshed_seconds.clone(),
        );
        let projection_last_check = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "projection_last_check_timestamp_seconds",
            "Unix time of the last completed check of the hot projection",
            projection_last_check.clone(),
        );
        let outbox_published = Counter::default();
        registry.register(
            "outbox_published_events",
            "Outbox events the relay published",
            outbox_published.clone(),
        );
        let outbox_publish_errors = Counter::default();
        registry.register(
            "outbox_publish_errors",
            "Publishing steps of the relay that failed (retried)",
            outbox_publish_errors.clone(),
        );
        let outbox_unpublished = Gauge::default();
        registry.register(
            "outbox_unpublished_events",
            "Committed outbox events the relay has not published yet (the backlog)",
            outbox_unpublished.clone(),
        );
        let outbox_oldest_unpublished_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "outbox_oldest_unpublished_seconds",
            "Age of the oldest unpublished outbox event (0: none)",
            outbox_oldest_unpublished_seconds.clone(),
        );
        let consumer_lag = Family::<ConsumerLabels, Gauge>::default();
        registry.register(
            "outbox_consumer_lag_events",
            "Published events a consumer has not handled yet",
            consumer_lag.clone(),
        );
        let consumer_dead_letters = Family::<ConsumerLabels, Gauge>::default();
        registry.register(
            "outbox_consumer_dead_letters",
            "Events a consumer gave up on and that were not re-driven",
            consumer_dead_letters.clone(),
        );
        let notification_queue_usage = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "db_notification_queue_usage_ratio",
            "pg_notification_queue_usage(): the share of PostgreSQL's notification queue in use",
            notification_queue_usage.clone(),
        );
        Metrics {
            registry,
            outbox_published,
            outbox_publish_errors,
            outbox_unpublished,
            outbox_oldest_unpublished_seconds,
            consumer_lag,
            consumer_dead_letters,
            notification_queue_usage,
            http_requests,
            http_duration,
            db_connections,
            db_max_connections,
            projection_drifted_rows,
            projection_oldest_unrefreshed_seconds,
            projection_last_check,
        }
    }

    pub fn observe_request(&self, method: &axum::http::Method, route: &str, status: u16, elapsed: Duration) {
        let labels = HttpLabels { method: method_label(method).to_owned(), route: route.to_owned(), status };
        self.http_requests.get_or_create(&labels).inc();
        self.http_duration.get_or_create(&labels).observe(elapsed.as_secs_f64());
    }

    /// The pool's state is sampled at scrape time rather than tracked on every checkout.
    pub fn observe_pool(&self, pool: &sqlx::PgPool) {
        let size = i64::from(pool.size());
        let idle = i64::try_from(pool.num_idle()).unwrap_or(i64::MAX);
        self.db_connections.get_or_create(&PoolLabels { state: "idle" }).set(idle);
        self.db_connections.get_or_create(&PoolLabels { state: "in_use" }).set((size - idle).max(0));
        self.db_max_connections.set(i64::from(pool.options().get_max_connections()));
    }

    pub fn observe_projection_check(
        &self,
        report: &crate::db::projection::CheckReport,
        now: time::OffsetDateTime,
    ) {
        self.projection_drifted_rows.set(i64::try_from(report.drifted_rows).unwrap_or(i64::MAX));
        let age =
            report.oldest_unrefreshed_change.map_or(0.0, |oldest| (now - oldest).as_seconds_f64().max(0.0));
        self.projection_oldest_unrefreshed_seconds.set(age);
        self.projection_last_check.set(now.unix_timestamp() as f64);
    }

    pub fn observe_published(&self, events: u64) {
        self.outbox_published.inc_by(events);
    }

    pub fn observe_publish_error(&self) {
        self.outbox_publish_errors.inc();
    }

    pub fn observe_outbox(&self, stats: &OutboxStats) {
        self.outbox_unpublished.set(stats.unpublished);
        self.outbox_oldest_unpublished_seconds.set(stats.oldest_unpublished_seconds);
        for c in &stats.consumers {
            let labels = ConsumerLabels { consumer: c.consumer.clone() };
            self.consumer_lag.get_or_create(&labels).set(c.lag);
            self.consumer_dead_letters.get_or_create(&labels).set(c.dead_letters);
        }
        self.notification_queue_usage.set(stats.notification_queue_usage);
    }

    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_method_route_and_status() {
        let metrics = Metrics::new();
        let get = axum::http::Method::GET;
        metrics.observe_request(&get, "/healthz", 200, Duration::from_millis(3));
        metrics.observe_request(&get, "/healthz", 200, Duration::from_millis(300));
        let text = metrics.encode().unwrap();
        assert!(
            text.contains(r#"crm_http_requests_total{method="GET",route="/healthz",status="200"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"crm_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/healthz",status="200"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn unusual_methods_share_one_label() {
        let metrics = Metrics::new();
        let odd = axum::http::Method::from_bytes(b"BREW").unwrap();
        metrics.observe_request(&odd, UNMATCHED_ROUTE, 405, Duration::ZERO);
        let text = metrics.encode().unwrap();
        assert!(text.contains(r#"method="OTHER",route="unmatched",status="405""#), "{text}");
        assert!(!text.contains("BREW"));
    }
}
