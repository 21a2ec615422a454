//! Status conditions, built by pure functions, and the one call that writes a status.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::error::Error;

/// The resource does what its spec says (or why not).
pub const READY: &str = "Ready";
/// The CRM's settings were read and overlaid.
pub const SETTINGS_SYNCED: &str = "SettingsSynced";
/// Every target of a TenantPolicy exists.
pub const TARGETS_FOUND: &str = "TargetsFound";

/// A condition of `kind` with `reason` and `message`, observed at `generation`.
pub fn condition(
    kind: &str,
    ok: bool,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
) -> Condition {
    Condition {
        type_: kind.to_owned(),
        status: if ok { "True" } else { "False" }.to_owned(),
        reason: reason.to_owned(),
        message: message.into(),
        observed_generation: generation,
        // Set by `merge`: it keeps the old time when the status did not change.
        last_transition_time: Time(Timestamp::UNIX_EPOCH),
    }
}

/// Whether `conditions` already say `kind` for `reason` (with `message`, when given): what was
/// said before is not announced again as an Event.
pub fn says(conditions: &[Condition], kind: &str, reason: &str, message: Option<&str>) -> bool {
    conditions.iter().any(|c| c.type_ == kind && c.reason == reason && message.is_none_or(|m| c.message == m))
}

/// `current` with `updates` in place of the conditions of their types. A condition whose status
/// did not change keeps its transition time; a new or changed one gets `now`.
pub fn merge(current: &[Condition], updates: Vec<Condition>, now: Timestamp) -> Vec<Condition> {
    let mut merged: Vec<Condition> =
        current.iter().filter(|c| !updates.iter().any(|u| u.type_ == c.type_)).cloned().collect();
    for mut update in updates {
        let since = current.iter().find(|c| c.type_ == update.type_ && c.status == update.status);
        update.last_transition_time = since.map_or(Time(now), |c| c.last_transition_time.clone());
        merged.push(update);
    }
    merged.sort_by(|a, b| a.type_.cmp(&b.type_));
    merged
}

/// Writes `status` to `name`'s status subresource unless it is what `current` already holds.
/// Returns whether it wrote.
pub async fn patch<K, S>(api: &Api<K>, name: &str, current: Option<&S>, status: &S) -> Result<bool, Error>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize + PartialEq,
{
    if current == Some(status) {
        return Ok(false);
    }
    let (client, patch) = (api.clone().into_client(), Patch::Merge(json!({ "status": status })));
    super::write::patch(&client, api.resource_url(), name, Some("status"), &PatchParams::default(), &patch)
        .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_keeps_its_transition_time_until_its_status_changes() {
        let t0 = Timestamp::from_second(1_000).unwrap();
        let t1 = Timestamp::from_second(2_000).unwrap();
        let first = merge(&[], vec![condition(READY, true, "Applied", "ok", Some(1))], t0);
        assert_eq!(first[0].last_transition_time, Time(t0));
        let same = merge(&first, vec![condition(READY, true, "Applied", "still ok", Some(2))], t1);
        assert_eq!((same[0].last_transition_time.clone(), same[0].message.as_str()), (Time(t0), "still ok"));
        let changed = merge(&same, vec![condition(READY, false, "InvalidSpec", "bad", Some(3))], t1);
        assert_eq!(changed[0].last_transition_time, Time(t1));
        let other = merge(&changed, vec![condition(TARGETS_FOUND, true, "Found", "", Some(3))], t1);
        assert_eq!(other.iter().map(|c| c.type_.as_str()).collect::<Vec<_>>(), [READY, TARGETS_FOUND]);
    }
}
