//! Status conditions, built by pure functions, the one call that writes a status, and the hold
//! both controllers write when they apply nothing.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::core::object::HasStatus;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::context::Context;
use super::error::Error;
use super::reason::Reason;
use crate::crd::ScalingProfileStatus;
use crate::crd::tenant_policy::TenantPolicyStatus;

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
    reason: Reason,
    message: impl Into<String>,
    generation: Option<i64>,
) -> Condition {
    Condition {
        type_: kind.to_owned(),
        status: if ok { "True" } else { "False" }.to_owned(),
        reason: reason.as_str().to_owned(),
        message: message.into(),
        observed_generation: generation,
        // Set by `merge`: it keeps the old time when the status did not change.
        last_transition_time: Time(Timestamp::UNIX_EPOCH),
    }
}

/// Whether `conditions` already say `kind` for `reason` (with `message`, when given): what was
/// said before is not announced again as an Event.
pub fn says(conditions: &[Condition], kind: &str, reason: Reason, message: Option<&str>) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == kind && c.reason == reason.as_str() && message.is_none_or(|m| c.message == m))
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

/// What the statuses of both kinds share: the generation observed and the conditions.
pub trait Conditions: Clone + Default + PartialEq + Serialize {
    fn conditions(&self) -> &[Condition];
    fn observed(self, generation: Option<i64>, conditions: Vec<Condition>) -> Self;
}

impl Conditions for TenantPolicyStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }

    fn observed(self, generation: Option<i64>, conditions: Vec<Condition>) -> Self {
        TenantPolicyStatus { observed_generation: generation, conditions, ..self }
    }
}

impl Conditions for ScalingProfileStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }

    fn observed(self, generation: Option<i64>, conditions: Vec<Condition>) -> Self {
        ScalingProfileStatus { observed_generation: generation, conditions, ..self }
    }
}

/// Writes a status that says `resource` is not applied for `reason`, with a Warning Event when
/// that is news. Everything else in the status stays as the last applied state left it, and so
/// do the objects applied before.
pub async fn hold<K>(
    ctx: &Context,
    api: &Api<K>,
    resource: &K,
    reason: Reason,
    message: String,
) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + HasStatus + Clone + DeserializeOwned + std::fmt::Debug,
    K::Status: Conditions,
{
    let current = resource.status().cloned().unwrap_or_default();
    let generation = resource.meta().generation;
    let ready = condition(READY, false, reason, message.clone(), generation);
    let news = !says(current.conditions(), READY, reason, Some(&message));
    let conditions = merge(current.conditions(), vec![ready], ctx.now());
    let status = current.observed(generation, conditions);
    patch(api, &resource.name_any(), resource.status(), &status).await?;
    if news {
        ctx.publish(resource, true, reason, message).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_keeps_its_transition_time_until_its_status_changes() {
        let t0 = Timestamp::from_second(1_000).unwrap();
        let t1 = Timestamp::from_second(2_000).unwrap();
        let first = merge(&[], vec![condition(READY, true, Reason::Applied, "ok", Some(1))], t0);
        assert_eq!(first[0].last_transition_time, Time(t0));
        let same = merge(&first, vec![condition(READY, true, Reason::Applied, "still ok", Some(2))], t1);
        assert_eq!((same[0].last_transition_time.clone(), same[0].message.as_str()), (Time(t0), "still ok"));
        let changed = merge(&same, vec![condition(READY, false, Reason::InvalidSpec, "bad", Some(3))], t1);
        assert_eq!(changed[0].last_transition_time, Time(t1));
        let other = merge(&changed, vec![condition(TARGETS_FOUND, true, Reason::Found, "", Some(3))], t1);
        assert_eq!(other.iter().map(|c| c.type_.as_str()).collect::<Vec<_>>(), [READY, TARGETS_FOUND]);
    }
}
