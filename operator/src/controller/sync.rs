//! When a TenantPolicy's CRM settings are read again, and what a reconcile overlays.
//!
//! They are read every `settingsRef.syncInterval`, at once when the policy's
//! `freshplan.io/sync-requested` annotation changes or `POST /sync/{namespace}/{name}` asks, and
//! at the first reconcile after the operator starts. Between reads, and whenever the CRM cannot
//! be read, the policy is made of the settings last read, which its status keeps: an outage never
//! takes settings away, not even across a restart.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::reason::Reason;
use crate::crd::tenant_policy::TenantPolicy;
use crate::crm::CrmError;
use crate::gateway::policy::Policy;
use crate::gateway::settings::{EffectiveSettings, Overlaid, overlay};

/// The annotation whose change asks for a read now (any new value; a timestamp, say).
pub const SYNC_REQUESTED: &str = "freshplan.io/sync-requested";

/// When the settings of a policy were last read, and which request that answered.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Read {
    at: Timestamp,
}

/// The operator's memory of reads: when each policy's settings were last read, and the policies
/// someone asked to read now.
#[derive(Debug, Default)]
pub struct Reads {
    last: Mutex<HashMap<String, Read>>,
    asked: Mutex<HashSet<String>>,
}

impl Reads {
    /// Asks for a read of the policy `key` (`namespace/name`) at its next reconcile.
    pub fn ask(&self, key: &str) {
        self.asked.lock().unwrap_or_else(|p| p.into_inner()).insert(key.to_owned());
    }

    fn take_asked(&self, key: &str) -> bool {
        self.asked.lock().unwrap_or_else(|p| p.into_inner()).remove(key)
    }

    fn last(&self, key: &str) -> Option<Timestamp> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).get(key).map(|r| r.at)
    }

    fn record(&self, key: &str, at: Timestamp) {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).insert(key.to_owned(), Read { at });
    }
}

/// Whether the settings are read now: never read since start, the interval is over, the
/// annotation changed since the last read, or someone asked.
pub fn due(
    last: Option<Timestamp>,
    interval: SignedDuration,
    annotation_changed: bool,
    asked: bool,
    now: Timestamp,
) -> bool {
    match last {
        None => true,
        Some(at) => annotation_changed || asked || now.duration_since(at) >= interval,
    }
}

/// `5m`, `1h30m`, `90m` (the CRD's pattern) as a duration; the CRD bounds it to 1m..24h.
pub fn interval(text: &str) -> SignedDuration {
    let minutes = |part: &str| part.trim_end_matches('m').parse::<i64>().ok();
    let total = match text.split_once('h') {
        Some((hours, rest)) => hours
            .parse::<i64>()
            .ok()
            .map(|h| h * 60 + if rest.is_empty() { 0 } else { minutes(rest).unwrap_or(0) }),
        None => minutes(text),
    };
    SignedDuration::from_mins(total.unwrap_or(5).clamp(1, 24 * 60))
}

/// What a reconcile overlays, and how the read went.
#[derive(Debug)]
pub struct Synced {
    /// The policy in force.
    pub overlaid: Overlaid,
    /// The settings it is made of: read now, or kept from the last read.
    pub settings: Option<EffectiveSettings>,
    /// Whether they were read now.
    pub read: bool,
    /// Why they could not be read now, when they could not.
    pub failure: Option<SyncFailure>,
    /// When to read them next.
    pub next: Option<Duration>,
}

/// A read that failed, for the status condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncFailure {
    pub reason: Reason,
    pub message: String,
}

impl SyncFailure {
    fn crm(error: &CrmError) -> SyncFailure {
        SyncFailure {
            reason: Reason::from(error),
            message: format!("the CRM's settings could not be read: {error}"),
        }
    }
}

/// The settings the policy's status kept from the last read.
pub fn kept(resource: &TenantPolicy) -> Option<EffectiveSettings> {
    let value = resource.status.as_ref()?.last_settings.clone()?;
    serde_json::from_value(value).ok()
}

/// The policy in force for this reconcile: its settings read now when due, else those kept.
pub async fn settings(ctx: &super::context::Context, resource: &TenantPolicy, policy: &Policy) -> Synced {
    let kept_settings = kept(resource);
    let from = |settings: Option<EffectiveSettings>, read: bool, failure: Option<SyncFailure>, next| Synced {
        overlaid: settings.as_ref().map_or_else(|| Overlaid::unchanged(policy), |s| overlay(policy, s)),
        settings,
        read,
        failure,
        next,
    };
    let Some((tenant, org)) = policy.spec.settings_scope() else {
        return Synced {
            overlaid: Overlaid::unchanged(policy),
            settings: None,
            read: false,
            failure: None,
            next: None,
        };
    };
    let Some(crm) = &ctx.crm else {
        let failure = SyncFailure {
            reason: Reason::CrmNotConfigured,
            message: "the operator has no CRM address (--crm-url): the settings last read stay in force"
                .into(),
        };
        return from(kept_settings, false, Some(failure), None);
    };
    let key = format!("{}/{}", policy.namespace, policy.name);
    let interval = interval(policy.spec.settings_ref.as_ref().map_or("5m", |r| r.sync_interval.as_str()));
    let requested = resource.metadata.annotations.as_ref().and_then(|a| a.get(SYNC_REQUESTED));
    let honoured = resource.status.as_ref().and_then(|s| s.sync_requested.as_ref());
    let now = ctx.now();
    let last = ctx.reads.last(&key);
    let asked = ctx.reads.take_asked(&key);
    if !due(last, interval, requested != honoured, asked, now) {
        let remaining = last.map_or(SignedDuration::ZERO, |at| interval - now.duration_since(at));
        return from(kept_settings, false, None, Some(remaining.unsigned_abs()));
    }
    let next = Some(interval.unsigned_abs());
    match crm.effective(tenant, org).await {
        Ok(settings) => {
            ctx.reads.record(&key, now);
            from(Some(settings), true, None, next)
        }
        Err(error) => {
            tracing::warn!(policy = %key, %error, "CRM settings not read; the settings last read stay in force");
            // Try again soon, not a whole interval later.
            from(kept_settings, false, Some(SyncFailure::crm(&error)), Some(Duration::from_secs(30)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_read_as_the_crd_writes_them() {
        let minutes = |text: &str| interval(text).as_mins();
        assert_eq!(
            [minutes("5m"), minutes("90m"), minutes("2h"), minutes("1h30m"), minutes("24h")],
            [5, 90, 120, 90, 1440]
        );
    }

    #[test]
    fn a_read_is_due_at_start_after_the_interval_or_when_asked() {
        let at = Timestamp::from_second(1_000_000).unwrap();
        let five = SignedDuration::from_mins(5);
        assert!(due(None, five, false, false, at));
        assert!(!due(Some(at), five, false, false, at + SignedDuration::from_secs(299)));
        assert!(due(Some(at), five, false, false, at + SignedDuration::from_secs(300)));
        assert!(due(Some(at), five, true, false, at + SignedDuration::from_secs(1)));
        assert!(due(Some(at), five, false, true, at + SignedDuration::from_secs(1)));
    }
}
