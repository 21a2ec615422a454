//! An independent evaluator of KEDA's cron scaler (robfig/cron v3 semantics), the oracle the
//! compiled triggers are proven against.
//!
//! ```text
//! clock   Go's time.Date / AddDate / Add on a tz database: the DST rules robfig's loop runs on;
//!         Zone, a time zone with its offsets laid out for fast lookups
//! cron    the 5-field spec as KEDA parses it, and robfig's SpecSchedule.Next
//! keda    a trigger's activity ("next end not after next start") and the ScaledObject's floor
//! ```
//!
//! Written from the Go sources, not from the compiler: robfig/cron v3.0.1 `parser.go` and `spec.go`,
//! KEDA `pkg/scalers/cron_scaler.go`, `controllers/keda/hpa.go`, `pkg/scaling/executor`, and the
//! HPA's replica calculator. Where the Go code has quirks (a trigger whose start falls in a DST gap,
//! Lord Howe's half-hour shift) the oracle has them too: it answers "what would KEDA do", not "what
//! should it do".

mod clock;
mod cron;
mod keda;
#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;

pub use clock::Zone;
pub use cron::{CronError, Field, ItemError, Schedule};
pub use keda::{CronTrigger, Evaluation, ScaledObjectModel, TriggerError};
