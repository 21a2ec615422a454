//! The FreshPlan operator: custom resources of the `freshplan.io` group and what they become.
//!
//! ```text
//! crd/        the resources as users write them (ScalingProfile, SeasonalWindow): spec, status; no I/O
//! calendar/   the validated calendar and its floors: pure time logic, `now` is always an argument
//! render/     what they become: KEDA cron triggers, ScaledObjects, HPAs; no client
//! gateway/    what a TenantPolicy becomes in Kong: plugins, consumer, decK file, settings overlay
//! controller/ the kube-runtime controllers that apply all of it, watch for drift and report
//! crm         the CRM client: a tenant's effective settings, and the reports of what was applied
//! testing/    an in-memory Kubernetes API on loopback for tests and benchmarks (feature `testing`)
//! upstream    the upstream schemas generated and chart-rendered objects are checked against (tests)
//! hash        FNV-1a, for stable names and fingerprints
//! oracle/     an independent evaluator of KEDA's cron scaler, the proof the compiled triggers are right
//!             (tests and benchmarks only: feature `testing`)
//! preview/    what `calendar preview` shows: the text timeline, the SVG plot
//! plan        what a ScalingProfile asks for now: its objects, status and next requeue
//! bundle      resources read from YAML streams, and everything generated for them (`render`)
//! validate    resources as written -> validated values, or every reason not, with field paths
//! component   the workload components a calendar scales (query, command, relay)
//! runtime/    around the controllers: leader election over a Lease, the admin server (health, metrics, sync)
//! metrics     the Prometheus registry: reconciliations, errors, durations, managed objects, leadership
//! telemetry   the logger: JSON lines with the span fields (the object reconciled), or text
//! ```

pub mod bundle;
pub mod calendar;
pub mod component;
pub mod controller;
pub mod crd;
pub mod crm;
pub mod gateway;
pub mod hash;
pub mod metrics;
// Test and benchmark code: the proof in render/ and the oracle benchmark use it; the operator
// itself never evaluates KEDA's semantics.
#[cfg(any(test, feature = "testing"))]
pub mod oracle;
pub mod plan;
pub mod preview;
pub mod render;
pub mod runtime;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(any(test, feature = "testing"))]
pub mod upstream;
pub mod validate;
