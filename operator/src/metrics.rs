//! What the operator tells Prometheus: reconciliations, their errors and durations, the objects it
//! manages and whether this replica leads. One registry per process, served at `/metrics` by the
//! admin server (`runtime::admin`) in the OpenMetrics text format.
//!
//! ```text
//! freshplan_operator_reconciliations_total{kind,result}        result: ok | error
//! freshplan_operator_reconcile_errors_total{kind,category}     category: the error's category()
//! freshplan_operator_reconcile_duration_seconds{kind}          histogram, 1 ms .. 10 s
//! freshplan_operator_managed_objects{kind}                     gauge
//! freshplan_operator_leader                                    gauge, 1 while this replica leads
//! ```
//!
//! Label values are `&'static str`: kinds and error categories are a closed set named in code,
//! so a label can never grow from user input.

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// The content type of [`Metrics::encode`]'s text, for the `/metrics` response.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the duration buckets, in seconds. A reconcile that only reads a cache and finds
/// nothing to do takes about a millisecond; one that applies a dozen objects or waits for the CRM's
/// settings takes up to seconds; beyond 10 s it only matters that it was slow.
const DURATION_BUCKETS: [f64; 13] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    kind: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    kind: &'static str,
    category: &'static str,
}

/// The operator's metrics. Cheap to clone: every clone records into the same registry.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    /// Only read after `new`: the families below are handles into it.
    registry: Registry,
    reconciliations: Family<ResultLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    durations: Family<KindLabels, Histogram, fn() -> Histogram>,
    managed: Family<KindLabels, Gauge>,
    leader: Gauge,
}

/// How a reconcile ended, for the `result` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Error,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
        }
    }
}

impl<T, E> From<&Result<T, E>> for Outcome {
    fn from(result: &Result<T, E>) -> Self {
        if result.is_ok() { Outcome::Ok } else { Outcome::Error }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let reconciliations = Family::<ResultLabels, Counter>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let durations = Family::<KindLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(DURATION_BUCKETS)) as fn() -> Histogram,
        );
        let managed = Family::<KindLabels, Gauge>::default();
        let leader = Gauge::default();
        // Counters get their `_total` suffix from the encoder.
        registry.register(
            "freshplan_operator_reconciliations",
            "Reconciliations by kind of resource and result",
            reconciliations.clone(),
        );
        registry.register(
            "freshplan_operator_reconcile_errors",
            "Failed reconciliations by kind of resource and error category",
            errors.clone(),
        );
        registry.register_with_unit(
            "freshplan_operator_reconcile_duration",
            "How long reconciliations take, by kind of resource",
            Unit::Seconds,
            durations.clone(),
        );
        registry.register(
            "freshplan_operator_managed_objects",
            "Resources of each kind this operator currently manages",
            managed.clone(),
        );
        registry.register(
            "freshplan_operator_leader",
            "1 while this replica holds the leader lease",
            leader.clone(),
        );
        let inner = Inner { registry, reconciliations, errors, durations, managed, leader };
        Metrics { inner: Arc::new(inner) }
    }

    /// Starts timing a reconcile of `kind`. The timer records the reconcile's result and duration
    /// when it is finished, or when it is dropped unfinished.
    pub fn reconcile_timer(&self, kind: &'static str) -> ReconcileTimer {
        ReconcileTimer { metrics: self.clone(), kind, start: Instant::now(), outcome: None }
    }

    /// Counts a failed reconcile of `kind` under the error's stable category.
    pub fn error(&self, kind: &'static str, category: &'static str) {
        self.inner.errors.get_or_create(&ErrorLabels { kind, category }).inc();
    }

    /// How many resources of `kind` the operator manages now.
    pub fn set_managed(&self, kind: &'static str, count: usize) {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        self.inner.managed.get_or_create(&KindLabels { kind }).set(count);
    }

    pub fn set_leader(&self, leading: bool) {
        self.inner.leader.set(i64::from(leading));
    }

    /// The registry in the OpenMetrics text format (see [`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.inner.registry)
            .expect("encoding into a String cannot fail");
        text
    }

    fn record(&self, kind: &'static str, outcome: Outcome, seconds: f64) {
        self.inner.reconciliations.get_or_create(&ResultLabels { kind, result: outcome.label() }).inc();
        self.inner.durations.get_or_create(&KindLabels { kind }).observe(seconds);
    }
}

/// Times one reconcile; see [`Metrics::reconcile_timer`].
#[must_use = "a timer records when it is finished or dropped"]
pub struct ReconcileTimer {
    metrics: Metrics,
    kind: &'static str,
    start: Instant,
    /// Set by `finish`. A timer dropped without it belongs to a reconcile that never returned (its
    /// future was cancelled, or it panicked), which counts as an error.
    outcome: Option<Outcome>,
}

impl ReconcileTimer {
    /// Records the reconcile as ended with `outcome` (`(&result).into()` for a `Result`).
    pub fn finish(mut self, outcome: Outcome) {
        self.outcome = Some(outcome);
    }
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        let outcome = self.outcome.unwrap_or(Outcome::Error);
        self.metrics.record(self.kind, outcome, self.start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line of `text` that starts with `prefix`.
    fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
        text.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
    }

    #[test]
    fn reconciliations_are_counted_by_kind_and_result_with_their_durations() {
        let metrics = Metrics::new();
        metrics.reconcile_timer("TenantPolicy").finish(Outcome::Ok);
        metrics.reconcile_timer("TenantPolicy").finish((&Ok::<(), ()>(())).into());
        metrics.reconcile_timer("ScalingProfile").finish((&Err::<(), _>("no")).into());
        drop(metrics.reconcile_timer("ScalingProfile"));

        let text = metrics.encode();
        let total = "freshplan_operator_reconciliations_total";
        assert_eq!(
            line(&text, &format!("{total}{{kind=\"TenantPolicy\",result=\"ok\"}}")).split(' ').nth(1),
            Some("2")
        );
        assert_eq!(
            line(&text, &format!("{total}{{kind=\"ScalingProfile\",result=\"error\"}}")).split(' ').nth(1),
            Some("2"),
            "a timer dropped unfinished counts as an error"
        );
        assert!(!text.contains("kind=\"ScalingProfile\",result=\"ok\""), "{text}");
        let count = "freshplan_operator_reconcile_duration_seconds_count{kind=\"TenantPolicy\"} 2";
        assert!(text.contains(count), "{text}");
        assert!(text.contains("# TYPE freshplan_operator_reconcile_duration_seconds histogram\n"), "{text}");
        assert!(
            text.contains(
                "freshplan_operator_reconcile_duration_seconds_bucket{le=\"0.001\",kind=\"TenantPolicy\"}"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "freshplan_operator_reconcile_duration_seconds_bucket{le=\"10.0\",kind=\"TenantPolicy\"}"
            ),
            "{text}"
        );
    }

    #[test]
    fn errors_managed_objects_and_leadership_appear_with_their_labels() {
        let metrics = Metrics::new();
        metrics.error("TenantPolicy", "settings_unavailable");
        metrics.error("TenantPolicy", "settings_unavailable");
        metrics.clone().set_managed("SeasonalWindow", 3);
        metrics.set_leader(true);

        let text = metrics.encode();
        assert!(
            text.contains(
                "freshplan_operator_reconcile_errors_total{kind=\"TenantPolicy\",category=\"settings_unavailable\"} 2\n"
            ),
            "{text}"
        );
        assert!(text.contains("freshplan_operator_managed_objects{kind=\"SeasonalWindow\"} 3\n"), "{text}");
        assert!(text.contains("freshplan_operator_leader 1\n"), "{text}");
        assert!(
            !text.contains("freshplan_operator_reconciliations"),
            "a family shows once it has a member: {text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");

        metrics.set_leader(false);
        assert!(metrics.encode().contains("freshplan_operator_leader 0\n"));
    }
}
