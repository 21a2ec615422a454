//! The TenantPolicy reconcile:
//!
//! ```text
//! admit (CRD schema + CEL) -> overlay CRM settings -> render (gateway::kic) -> apply -> prune
//!     -> annotate targets -> status (+ an Event when something changed)
//! ```
//!
//! A finalizer is kept on each policy because the operator writes into objects it does not own
//! (the targets' `konghq.com/plugins`): on deletion it takes its plugin names out of them before
//! garbage collection deletes the KongPlugins, so Kong is never left naming plugins that are gone.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

use super::cache::{self, Meta, ObjectStream};
use super::context::Context;
use super::error::Error;
use super::kinds::Kind;
use super::reason::Reason;
use super::status::{self, READY, SETTINGS_SYNCED, TARGETS_FOUND, condition};
use super::sync::{self, Synced};
use super::targets::{self, Outcome};
use super::{Shutdown, SyncRequests, drain, error_policy, observed};
use super::{apply, finalizer, kinds};
use crate::crd::tenant_policy::{GeneratedObject, Target, TenantPolicy, TenantPolicyStatus};
use crate::crm::{Outcome as CrmOutcome, SyncReport};
use crate::gateway::policy::{POLICY_LABEL, Policy};
use crate::gateway::settings::{self, Overlaid};
use crate::gateway::{kic, plugins};

/// The finalizer that takes the policy's plugins out of its targets' annotations.
pub const FINALIZER: &str = "freshplan.io/target-annotations";

/// How often a policy is reconciled with nothing happening: repairs drift a watch missed.
const RESYNC: Duration = Duration::from_secs(300);

/// Runs the TenantPolicy controller: its own watch, `owned` (the watch streams of the generated
/// kinds, whose caches are in `ctx`), watches of the targets, and `sync_requests`.
pub(super) async fn controller(
    ctx: Arc<Context>,
    owned: Vec<(Kind, ObjectStream)>,
    sync_requests: Option<SyncRequests>,
    config: ControllerConfig,
    shutdown: Shutdown,
) {
    let client = ctx.client.clone();
    let (store, stream) = super::primary::<TenantPolicy>(&client);
    let mut controller = Controller::for_stream(stream, store);
    let store = controller.store();
    for (kind, stream) in owned {
        controller = controller.owns_stream_with(stream, kind.api_resource());
    }
    for kind in targets::watched(&ctx.installed) {
        let (store, observer) = (store.clone(), ctx.clone());
        let mapper = move |object: Meta| {
            let policies = policies_naming(&store, &kind, &object);
            if !policies.is_empty() {
                let (name, version) = (object.name_any(), object.resource_version().unwrap_or_default());
                tracing::trace!(
                    kind = kind.kind,
                    namespace = object.namespace(),
                    name,
                    version,
                    "a target changed: its policies are reconciled"
                );
            }
            policies
        };
        // Metadata only: which policies a target concerns is in its name, and a change to its
        // annotations is what a reconcile repairs. The watch fills `ctx.targets` on the way.
        let take = move |event| observer.targets.observe(&kind, event);
        let stream = cache::watch_into(&client, &kind, watcher::Config::default(), take);
        controller = controller.watches_stream_with(stream, mapper, kind.api_resource());
    }
    if let Some(queue) = sync_requests {
        // A request marks the policy for a read, then reconciles it: the reconcile cannot tell
        // why it runs otherwise.
        let reads = ctx.clone();
        let next = |queue: SyncRequests| async move {
            let request = queue.lock().await.recv().await;
            request.map(|request| (request, queue))
        };
        let requests = futures::stream::unfold(queue, next).map(move |policy| {
            reads.reads.ask(&format!("{}/{}", policy.namespace.as_deref().unwrap_or_default(), policy.name));
            policy
        });
        controller = controller.reconcile_on(requests);
    }
    let results = controller.with_config(config).graceful_shutdown_on(shutdown).run(
        |resource, ctx| observed("TenantPolicy", resource, ctx, reconcile),
        error_policy,
        ctx,
    );
    drain(results).await;
}

/// The TenantPolicies that name `object` (an Ingress, Service or HTTPRoute) as a target.
fn policies_naming(store: &Store<TenantPolicy>, kind: &Kind, object: &Meta) -> Vec<ObjectRef<TenantPolicy>> {
    let (namespace, name) = (object.metadata.namespace.as_deref(), object.name_any());
    store
        .state()
        .iter()
        .filter(|p| p.metadata.namespace.as_deref() == namespace)
        .filter(|p| {
            let named = |t: &Target| t.kind.as_str() == kind.kind && t.name == name;
            p.spec.targets.iter().any(named)
                || p.spec.rate_limit.iter().flat_map(|r| &r.routes).flat_map(|r| &r.targets).any(named)
                || p.status.iter().flat_map(|s| &s.annotated).any(named)
        })
        .map(|p| ObjectRef::from_obj(p.as_ref()))
        .collect()
}

pub async fn reconcile(resource: Arc<TenantPolicy>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = resource.namespace().unwrap_or_default();
    let api: Api<TenantPolicy> = Api::namespaced(ctx.client.clone(), &namespace);
    let ours = finalizer::has(resource.as_ref(), FINALIZER);
    if resource.metadata.deletion_timestamp.is_some() {
        if ours {
            cleanup(&resource, &ctx).await?;
            finalizer::remove(&api, resource.as_ref(), FINALIZER).await?;
        }
        return Ok(Action::await_change());
    }
    if !ours {
        finalizer::add(&api, resource.as_ref(), FINALIZER).await?;
    }
    apply_policy(&resource, &ctx, &api).await
}

/// Applies the policy: a short driver of the steps below, which are pure except where they
/// read or write (settings, objects, targets, status, Events).
async fn apply_policy(
    resource: &TenantPolicy,
    ctx: &Context,
    api: &Api<TenantPolicy>,
) -> Result<Action, Error> {
    let policy = match admitted(resource, ctx.installed.kong) {
        Ok(policy) => policy,
        Err((reason, message)) => {
            status::hold(ctx, api, resource, reason, message).await?;
            return Ok(Action::await_change());
        }
    };
    let before =
        sync::kept(resource).map_or_else(|| Overlaid::unchanged(&policy), |s| settings::overlay(&policy, &s));
    let synced = sync::settings(ctx, resource, &policy).await;
    let gateway = plugins::gateway(&synced.overlaid.policy);
    let objects = kic::render(&synced.overlaid.policy, &gateway);
    let mut documents = objects.documents()?;

    let (namespace, owner) = (&policy.namespace, (POLICY_LABEL, policy.name.as_str()));
    let written = apply::apply(ctx, &kinds::GATEWAY, &mut documents).await?;
    let pruned = apply::prune(ctx, &kinds::GATEWAY, namespace, owner, &policy.uid, &documents).await?;
    let current = resource.status.clone().unwrap_or_default();
    let targets = annotate_targets(ctx, namespace, &objects.targets, &current.annotated).await?;

    let status =
        status_of(resource, &current, &synced, &targets, &documents, objects.plugins.len(), ctx.now())?;
    status::patch(api, &policy.name, resource.status.as_ref(), &status).await?;
    if synced.read
        && (synced.overlaid.version != current.settings_version
            || synced.overlaid.applied != current.settings_applied)
    {
        report_settings(ctx, resource, &policy, &before, &synced.overlaid).await;
    }
    for (warning, reason, note) in announcements(&current, &synced, &targets, (written, pruned)) {
        ctx.publish(resource, warning, reason, note).await;
    }
    Ok(Action::requeue(synced.next.map_or(RESYNC, |next| next.min(RESYNC))))
}

/// The policy to apply, or why none can be: Kong's CRDs missing, or a spec the CRD's schema and
/// rules refuse.
fn admitted(resource: &TenantPolicy, kong_installed: bool) -> Result<Policy, (Reason, String)> {
    if !kong_installed {
        let message =
            "Kong Ingress Controller's CRDs (KongPlugin, KongConsumer) are not installed: nothing is applied";
        return Err((Reason::KongNotInstalled, message.to_owned()));
    }
    Policy::admit(resource).map_err(|found| {
        let reasons: Vec<String> = found.iter().map(ToString::to_string).collect();
        (Reason::InvalidSpec, reasons.join("; "))
    })
}

/// What annotating the targets found and did.
#[derive(Debug, Default, PartialEq)]
struct Annotated {
    /// The targets that carry the policy's plugins now.
    annotated: Vec<Target>,
    /// The targets that do not exist.
    missing: Vec<String>,
    /// How many targets' annotations were written (including ones the policy left).
    touched: usize,
}

/// Puts the policy's plugin names on each of `wanted`, and takes them off the targets it
/// annotated `before` that it no longer names.
async fn annotate_targets(
    ctx: &Context,
    namespace: &str,
    wanted: &[(Target, Vec<String>)],
    before: &[Target],
) -> Result<Annotated, Error> {
    // Read from the targets' watches once they are listed; until then (or without them) from
    // the API server.
    ctx.targets.ready().await;
    let mut out = Annotated::default();
    for (target, names) in wanted {
        match targets::annotate(ctx, namespace, target, names).await? {
            Outcome::Annotated { written } => {
                out.annotated.push(target.clone());
                out.touched += usize::from(written);
            }
            Outcome::Missing => out.missing.push(target.to_string()),
        }
    }
    for gone in before.iter().filter(|t| !wanted.iter().any(|(kept, _)| kept == *t)) {
        if let Outcome::Annotated { written: true } = targets::annotate(ctx, namespace, gone, &[]).await? {
            out.touched += 1;
        }
    }
    Ok(out)
}

/// The conditions of an applied policy: Ready, TargetsFound and, with a settings reference,
/// SettingsSynced.
fn conditions(
    resource: &TenantPolicy,
    synced: &Synced,
    targets: &Annotated,
    plugins: usize,
) -> Vec<Condition> {
    let generation = resource.metadata.generation;
    let on = targets.annotated.len();
    let (ready, found) = if targets.missing.is_empty() {
        (
            condition(READY, true, Reason::Applied, format!("{plugins} plugins on {on} targets"), generation),
            condition(TARGETS_FOUND, true, Reason::Found, format!("{on} targets"), generation),
        )
    } else {
        let missing = targets.missing.join(", ");
        let message = format!("{plugins} plugins applied; not enforced on the missing targets {missing}");
        (
            condition(READY, false, Reason::TargetsMissing, message, generation),
            condition(
                TARGETS_FOUND,
                false,
                Reason::TargetsMissing,
                format!("not found: {missing}"),
                generation,
            ),
        )
    };
    let mut conditions = vec![ready, found];
    if resource.spec.settings_ref.is_some() {
        conditions.push(match &synced.failure {
            None => condition(
                SETTINGS_SYNCED,
                true,
                Reason::Synced,
                settings_summary(&synced.overlaid),
                generation,
            ),
            Some(failure) => {
                condition(SETTINGS_SYNCED, false, failure.reason, failure.message.clone(), generation)
            }
        });
    }
    conditions
}

/// The status of an applied policy.
fn status_of(
    resource: &TenantPolicy,
    current: &TenantPolicyStatus,
    synced: &Synced,
    targets: &Annotated,
    documents: &[serde_json::Value],
    plugins: usize,
    now: jiff::Timestamp,
) -> Result<TenantPolicyStatus, Error> {
    let requested = resource.metadata.annotations.as_ref().and_then(|a| a.get(sync::SYNC_REQUESTED)).cloned();
    let overlaid = &synced.overlaid;
    Ok(TenantPolicyStatus {
        observed_generation: resource.metadata.generation,
        conditions: status::merge(&current.conditions, conditions(resource, synced, targets, plugins), now),
        generated: documents
            .iter()
            .map(|d| GeneratedObject {
                kind: d["kind"].as_str().unwrap_or_default().to_owned(),
                name: d["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
            })
            .collect(),
        settings_version: overlaid.version,
        settings_applied: overlaid.applied.clone(),
        annotated: targets.annotated.clone(),
        last_settings: synced.settings.as_ref().map(serde_json::to_value).transpose()?,
        sync_requested: if synced.read { requested } else { current.sync_requested.clone() },
    })
}

/// The Events an applied policy is worth, in order: a settings read that failed anew, what was
/// written, targets missing anew. (warning, reason, note) each.
fn announcements(
    current: &TenantPolicyStatus,
    synced: &Synced,
    targets: &Annotated,
    (written, pruned): (usize, usize),
) -> Vec<(bool, Reason, String)> {
    let mut out = Vec::new();
    if let Some(failure) = &synced.failure
        && !status::says(&current.conditions, SETTINGS_SYNCED, failure.reason, None)
    {
        out.push((true, failure.reason, failure.message.clone()));
    }
    if written + pruned + targets.touched > 0 {
        let touched = targets.touched;
        let note =
            format!("applied {written} objects, pruned {pruned}, updated {touched} target annotations");
        out.push((false, Reason::Applied, note));
    }
    if !targets.missing.is_empty()
        && current.conditions.iter().all(|c| c.type_ != TARGETS_FOUND || c.status == "True")
    {
        out.push((true, Reason::TargetsMissing, format!("not found: {}", targets.missing.join(", "))));
    }
    out
}

/// `version 42: gateway.rateLimit, gateway.requestSizeLimit in force; not applied: ...`.
fn settings_summary(overlaid: &Overlaid) -> String {
    let applied = if overlaid.applied.is_empty() { "none".to_owned() } else { overlaid.applied.join(", ") };
    let mut summary = format!("version {}: in force: {applied}", overlaid.version.unwrap_or_default());
    for rejected in &overlaid.rejected {
        summary.push_str(&format!(
            "; not applied: {} (from {}): {}",
            rejected.key, rejected.scope, rejected.reason
        ));
    }
    summary
}

/// Records a new settings version in force: an Event, and an audit entry in the CRM. A report the
/// CRM does not take is a Warning Event, never a failed reconcile: the policy is in force.
async fn report_settings(
    ctx: &Context,
    resource: &TenantPolicy,
    policy: &Policy,
    before: &Overlaid,
    after: &Overlaid,
) {
    let changes = settings::changes(&before.policy.spec, &after.policy.spec);
    let version = after.version.unwrap_or_default();
    let note = if changes.is_empty() {
        format!("CRM settings version {version} in force; nothing changed")
    } else {
        format!("CRM settings version {version} in force: {}", changes.join("; "))
    };
    ctx.publish(resource, false, Reason::SettingsApplied, note).await;
    let Some(crm) = &ctx.crm else { return };
    let (tenant, org) = policy.spec.settings_scope().unwrap_or((&policy.spec.tenant_id, None));
    let report = SyncReport {
        policy: format!("{}/{}", policy.namespace, policy.name),
        tenant: tenant.to_owned(),
        org: org.map(str::to_owned),
        version,
        outcome: CrmOutcome::Applied,
        applied: after.applied.clone(),
        rejected: after.rejected.clone(),
        changes,
        detail: None,
    };
    if let Err(e) = crm.report(&report).await {
        ctx.publish(
            resource,
            true,
            Reason::AuditNotRecorded,
            format!("the CRM did not take the report of settings version {version}: {e}"),
        )
        .await;
    }
}

/// Takes the policy's plugins out of every target that lists them.
async fn cleanup(resource: &TenantPolicy, ctx: &Context) -> Result<Action, Error> {
    let namespace = resource.namespace().unwrap_or_default();
    let mut targets: Vec<Target> = resource.status.as_ref().map(|s| s.annotated.clone()).unwrap_or_default();
    for target in &resource.spec.targets {
        if !targets.contains(target) {
            targets.push(target.clone());
        }
    }
    for target in &targets {
        targets::annotate(ctx, &namespace, target, &[]).await?;
    }
    Ok(Action::await_change())
}
