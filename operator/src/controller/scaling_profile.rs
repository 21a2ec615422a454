//! The ScalingProfile reconcile:
//!
//! ```text
//! caches (SeasonalWindows, Deployments) -> plan (pure, plan.rs) -> hold on problems
//!     -> apply -> prune (ScaledObjects and HPAs) -> status (+ an Event when something was written)
//!     -> requeue at the next transition
//! ```
//!
//! A reconcile reads nothing from the API server: the profile, the calendars, the Deployments'
//! labels and the generated objects all come from watch caches, so a reconcile that finds
//! everything in place sends no request. No finalizer: everything generated is owned by the
//! profile and goes with it by garbage collection.
//!
//! A plan that has problems (a missing or invalid calendar, floors the compiler cannot write as
//! cron triggers) holds the profile: the objects applied before stay as they are, because a
//! calendar broken mid-season must not drop every floor to the baseline. The status and one
//! Warning Event say why, until a person fixes it.
//!
//! Time: floors change at the calendars' transitions, and the controller requeues there (HPA
//! mode: `minReplicas` moves; KEDA mode: triggers are added and pruned), at the latest every hour.
//! The cron compiler starts the stretch under way on the minute of the instant it compiles at, so
//! two reconciles a few minutes apart would compile different, equally right triggers for the same
//! floors. The objects are therefore planned at an anchor: the instant they were last planned at,
//! kept while no transition lies between it and now (render/proof.rs proves a set compiled then
//! right until its next change). Status and requeue are planned at now.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, PartialObjectMeta};
use kube::core::{Selector, SelectorExt};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};

use super::cache::{Cache, ObjectStream};
use super::context::Context;
use super::error::{Error, backoff};
use super::kinds::{self, Kind};
use super::reason::Reason;
use super::status::{self, READY, condition};
use super::{CACHE_WAIT, Shutdown, apply, drain, error_policy, observed};
use crate::crd::{ScalingProfile, ScalingProfileStatus, SeasonalWindow};
use crate::plan::{self, Backend, Note, Plan};
use crate::render::workload::PROFILE_LABEL;

/// How often a profile is planned again with nothing happening: the safety net under the
/// requeues at transitions, and the repair of drift a watch missed.
pub const RESYNC: Duration = Duration::from_secs(3600);

/// The soonest a profile is planned again: a transition due now, or just past, is not a reason to
/// spin.
pub const MIN_REQUEUE: Duration = Duration::from_secs(1);

/// What the reconciles share besides the [`Context`]: the caches of what profiles read, and what
/// the controller remembers per profile.
struct Reads {
    profiles: Store<ScalingProfile>,
    windows: Store<SeasonalWindow>,
    /// Metadata only: a profile reads a Deployment's name and labels, never its pod template.
    deployments: Store<PartialObjectMeta<Deployment>>,
    memory: Mutex<HashMap<ObjectRef<ScalingProfile>, Memory>>,
}

/// What the controller remembers of a profile between reconciles. It is lost on a restart or a
/// change of leader, which costs at most one rewrite of the profile's ScaledObjects.
#[derive(Debug, Default, Clone, Copy)]
struct Memory {
    /// The instant the profile's objects were last planned at.
    anchor: Option<Timestamp>,
    /// Consecutive reconciles that held the profile, for the backoff of the next.
    holds: u32,
}

impl Reads {
    /// Whether every cache a reconcile reads has had its first list; waits up to [`CACHE_WAIT`].
    /// Planning before would see no Deployments and prune every object.
    async fn ready(&self, ctx: &Context) -> bool {
        let owned: Vec<&Cache> = kinds::SCALING.iter().filter_map(|kind| ctx.caches.get(kind)).collect();
        let all = async {
            self.windows.wait_until_ready().await.is_ok()
                && self.deployments.wait_until_ready().await.is_ok()
                && futures::future::join_all(owned.iter().map(|store| store.wait_until_ready()))
                    .await
                    .iter()
                    .all(Result::is_ok)
        };
        tokio::time::timeout(CACHE_WAIT, all).await.unwrap_or(false)
    }

    /// The SeasonalWindows and Deployments of `namespace`.
    fn of_namespace(&self, namespace: &str) -> (Vec<SeasonalWindow>, Vec<Deployment>) {
        let here = |n: Option<&String>| n.map(String::as_str) == Some(namespace);
        let windows = self
            .windows
            .state_filter(|w| here(w.metadata.namespace.as_ref()))
            .iter()
            .map(|w| w.as_ref().clone())
            .collect();
        let deployments = self
            .deployments
            .state_filter(|d| here(d.metadata.namespace.as_ref()))
            .iter()
            .map(|d| Deployment { metadata: d.metadata.clone(), ..Deployment::default() })
            .collect();
        (windows, deployments)
    }

    /// Updates what is remembered of `profile`, forgetting profiles that are gone; returns the
    /// new memory.
    fn remember(&self, profile: &ObjectRef<ScalingProfile>, update: impl FnOnce(&mut Memory)) -> Memory {
        let mut memory = self.memory.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        memory.retain(|key, _| key == profile || self.profiles.get(key).is_some());
        let entry = memory.entry(profile.clone()).or_default();
        update(entry);
        *entry
    }
}

/// Runs the ScalingProfile controller: its own watch, `owned` (the watch streams of the generated
/// kinds, whose caches are in `ctx`), and watches of SeasonalWindows and Deployments.
pub(super) async fn controller(
    ctx: Arc<Context>,
    owned: Vec<(Kind, ObjectStream)>,
    config: ControllerConfig,
    shutdown: Shutdown,
) {
    let client = ctx.client.clone();
    let (store, stream) = super::primary::<ScalingProfile>(&client);
    let mut controller = Controller::for_stream(stream, store);
    let profiles = controller.store();
    for (kind, stream) in owned {
        controller = controller.owns_stream_with(stream, kind.api_resource());
    }

    let (windows, writer) = reflector::store::<SeasonalWindow>();
    let stream = reflector::reflector(
        writer,
        watcher(Api::<SeasonalWindow>::all(client.clone()), watcher::Config::default()).modify(super::lean),
    )
    .touched_objects()
    .default_backoff();
    let store = profiles.clone();
    controller = controller.watches_stream(stream, move |window| profiles_reading(&store, &window));

    let (deployments, writer) = reflector::store::<PartialObjectMeta<Deployment>>();
    // A profile reads a Deployment's name and labels: its annotations (a last-applied
    // configuration can be large) are not kept either.
    let stream = reflector::reflector(
        writer,
        watcher(Api::<PartialObjectMeta<Deployment>>::all(client.clone()), watcher::Config::default())
            .modify(|deployment| {
                super::lean(deployment);
                deployment.metadata.annotations = None;
            }),
    )
    .touched_objects()
    .default_backoff();
    let store = profiles.clone();
    controller = controller.watches_stream(stream, move |deployment| profiles_selecting(&store, &deployment));

    let reads = Arc::new(Reads { profiles, windows, deployments, memory: Mutex::default() });
    let results = controller.with_config(config).graceful_shutdown_on(shutdown).run(
        move |resource, ctx| {
            let reads = reads.clone();
            observed("ScalingProfile", resource, ctx, |resource, ctx| reconcile(resource, ctx, reads))
        },
        error_policy,
        ctx,
    );
    drain(results).await;
}

/// The profiles of `window`'s namespace that read it: those that name it, and those that name no
/// calendar (they read all of their namespace's).
fn profiles_reading(
    store: &Store<ScalingProfile>,
    window: &SeasonalWindow,
) -> Vec<ObjectRef<ScalingProfile>> {
    let name = window.name_any();
    store
        .state()
        .iter()
        .filter(|p| p.namespace() == window.namespace())
        .filter(|p| p.spec.calendars.as_ref().is_none_or(|names| names.contains(&name)))
        .map(|p| ObjectRef::from_obj(p.as_ref()))
        .collect()
}

/// The profiles of `deployment`'s namespace whose selector matches its labels, and those whose
/// status lists it (its labels may have changed so that they no longer do).
fn profiles_selecting(
    store: &Store<ScalingProfile>,
    deployment: &PartialObjectMeta<Deployment>,
) -> Vec<ObjectRef<ScalingProfile>> {
    let name = deployment.name_any();
    store
        .state()
        .iter()
        .filter(|p| p.namespace() == deployment.namespace())
        .filter(|p| {
            let selects = Selector::try_from(p.spec.selector.clone())
                .is_ok_and(|selector| selector.matches(deployment.labels()));
            selects || p.status.iter().flat_map(|s| &s.workloads).any(|w| w.name == name)
        })
        .map(|p| ObjectRef::from_obj(p.as_ref()))
        .collect()
}

async fn reconcile(
    profile: Arc<ScalingProfile>,
    ctx: Arc<Context>,
    reads: Arc<Reads>,
) -> Result<Action, Error> {
    if !reads.ready(&ctx).await {
        tracing::info!("watch caches not filled yet; the profile is planned later");
        return Ok(Action::requeue(CACHE_WAIT));
    }
    let key = ObjectRef::from_obj(profile.as_ref());
    let namespace = profile.namespace().unwrap_or_default();
    let api: Api<ScalingProfile> = Api::namespaced(ctx.client.clone(), &namespace);
    let (windows, deployments) = reads.of_namespace(&namespace);
    let plan_at = |at: Timestamp| plan::plan(&profile, &windows, &deployments, ctx.installed.keda, at);
    let now = ctx.now();
    let current = plan_at(now);

    if current.backend == Backend::Keda && !ctx.installed.keda {
        let message = "mode is keda, but KEDA's CRDs (ScaledObject) are not installed: nothing is \
                       applied, and the objects applied before stay as they are";
        status::hold(&ctx, &api, profile.as_ref(), Reason::KedaNotInstalled, message.to_owned()).await?;
        // Installed APIs are found at start: only a restart sees KEDA arrive.
        return Ok(Action::requeue(RESYNC));
    }
    if let Some((reason, message)) = held(&current) {
        let holds = reads.remember(&key, |m| m.holds = m.holds.saturating_add(1)).holds;
        status::hold(&ctx, &api, profile.as_ref(), reason, message).await?;
        return Ok(Action::requeue(backoff(holds - 1)));
    }

    // The objects as planned at the anchor while that plan still holds, else as planned now.
    let anchor = reads.remember(&key, |m| m.holds = 0).anchor.filter(|&at| at < now);
    let objects = match anchor.map(plan_at).filter(|anchored| holds_at(anchored, &current, now)) {
        Some(anchored) => anchored.objects,
        None => {
            reads.remember(&key, |m| m.anchor = Some(now));
            current.objects.clone()
        }
    };
    let mut documents = objects.iter().map(serde_json::to_value).collect::<Result<Vec<_>, _>>()?;
    let name = profile.name_any();
    let uid = profile.uid().unwrap_or_default();
    let written = apply::apply(&ctx, &kinds::SCALING, &mut documents).await?;
    // Both kinds: a profile switched from keda to hpa (or back) leaves the other kind behind.
    let pruned =
        apply::prune(&ctx, &kinds::SCALING, &namespace, (PROFILE_LABEL, &name), &uid, &documents).await?;

    let previous = profile.status.clone().unwrap_or_default();
    let generation = profile.metadata.generation;
    let ready = condition(READY, true, Reason::Applied, applied_message(&current), generation);
    let status = ScalingProfileStatus {
        observed_generation: generation,
        workloads: current.workloads,
        active_windows: current.active_windows,
        floor_summary: current.floor_summary,
        next_transition: current.requeue_at.map(Time),
        conditions: status::merge(&previous.conditions, vec![ready], now),
    };
    status::patch(&api, &name, profile.status.as_ref(), &status).await?;
    if written + pruned > 0 {
        ctx.publish(
            profile.as_ref(),
            false,
            Reason::Applied,
            format!("applied {written} objects, pruned {pruned}"),
        )
        .await;
    }
    Ok(Action::requeue(requeue_after(now, current.requeue_at)))
}

/// Whether the objects planned at an earlier instant are still right now: planned without
/// problems, for the same backend, and with no transition since (their next lies after now).
fn holds_at(anchored: &Plan, current: &Plan, now: Timestamp) -> bool {
    anchored.problems.is_empty()
        && anchored.backend == current.backend
        && anchored.requeue_at.is_none_or(|at| at > now)
}

/// Why `plan` holds, when it does: the most fundamental of its problems' kinds (its own spec
/// first, then its calendars, then floors that cannot be compiled) and all of them.
fn held(plan: &Plan) -> Option<(Reason, String)> {
    let kind = plan.problems.iter().map(|p| p.kind).min()?;
    let problems: Vec<String> = plan.problems.iter().map(ToString::to_string).collect();
    let message = format!(
        "{}; nothing is applied or pruned, and the objects applied before stay as they are",
        problems.join("; ")
    );
    Some((Reason::from(kind), message))
}

/// The Ready message of an applied plan: how many objects of which kind, and what was left out,
/// one line per note shared by several Deployments.
fn applied_message(plan: &Plan) -> String {
    let kind = match plan.backend {
        Backend::Keda => "ScaledObjects",
        Backend::Hpa => "HorizontalPodAutoscalers",
    };
    let mut message = format!("{} {kind}", plan.objects.len());
    for note in grouped(&plan.notes) {
        message.push_str("; ");
        message.push_str(&note);
    }
    message
}

/// Notes with the same text, as one: `Deployments a, b: <text>`. In the order of their first
/// appearance.
fn grouped(notes: &[Note]) -> Vec<String> {
    let mut texts: Vec<&str> = Vec::new();
    let mut names: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for note in notes {
        if !names.contains_key(note.text.as_str()) {
            texts.push(&note.text);
        }
        let entry = names.entry(&note.text).or_default();
        entry.extend(note.deployment.as_deref());
    }
    texts
        .into_iter()
        .map(|text| match names[text].as_slice() {
            [] => text.to_owned(),
            [one] => format!("Deployment {one}: {text}"),
            many => format!("Deployments {}: {text}", many.join(", ")),
        })
        .collect()
}

/// When to plan a profile again: at its next transition `at`, but not sooner than
/// [`MIN_REQUEUE`] nor later than [`RESYNC`] from `now`.
pub fn requeue_after(now: Timestamp, at: Option<Timestamp>) -> Duration {
    let Some(at) = at else { return RESYNC };
    let until = Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO);
    until.clamp(MIN_REQUEUE, RESYNC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Problem, ProblemKind};
    use crate::validate::Invalid;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn the_requeue_is_the_next_transition_within_a_second_and_an_hour() {
        let now = at("2026-09-19T10:00:00Z");
        assert_eq!(requeue_after(now, Some(at("2026-09-19T10:20:00Z"))), Duration::from_secs(1200));
        assert_eq!(requeue_after(now, Some(at("2026-09-19T10:00:02.5Z"))), Duration::from_millis(2500));
        // Due now, or already past (a slow reconcile): soon, but no spin.
        assert_eq!(requeue_after(now, Some(now)), MIN_REQUEUE);
        assert_eq!(requeue_after(now, Some(at("2026-09-19T09:00:00Z"))), MIN_REQUEUE);
        assert_eq!(requeue_after(now, Some(at("2026-09-19T10:00:00.2Z"))), MIN_REQUEUE);
        // Far off, or never: the hourly safety net.
        assert_eq!(requeue_after(now, Some(at("2026-12-24T00:00:00Z"))), RESYNC);
        assert_eq!(requeue_after(now, None), RESYNC);
    }

    #[test]
    fn a_held_profile_names_its_most_fundamental_problem() {
        let reason = |kinds: &[ProblemKind]| {
            let problems = kinds
                .iter()
                .map(|&kind| Problem { kind, invalid: Invalid { path: "p".into(), message: "bad".into() } })
                .collect();
            let plan = Plan { problems, ..Plan::nothing(Backend::Hpa) };
            held(&plan).map(|(reason, _)| reason)
        };
        use ProblemKind::*;
        assert_eq!(reason(&[CalendarInvalid]), Some(Reason::CalendarInvalid));
        assert_eq!(reason(&[CalendarInvalid, CalendarMissing]), Some(Reason::CalendarMissing));
        assert_eq!(reason(&[CalendarMissing, Spec, FloorsInexpressible]), Some(Reason::InvalidSpec));
        assert_eq!(reason(&[FloorsInexpressible]), Some(Reason::FloorsInexpressible));
        assert_eq!(reason(&[]), None, "a plan without problems is not held");
    }

    #[test]
    fn notes_shared_by_deployments_are_said_once() {
        let note = |deployment: Option<&str>, text: &str| Note {
            deployment: deployment.map(str::to_owned),
            text: text.to_owned(),
        };
        let notes = [
            note(Some("a"), "the Prometheus metric `q` needs KEDA"),
            note(Some("b"), "the Prometheus metric `q` needs KEDA"),
            note(Some("c"), "has no freshplan.io/territory label; it is not scaled"),
            note(None, "something else"),
        ];
        assert_eq!(
            grouped(&notes),
            [
                "Deployments a, b: the Prometheus metric `q` needs KEDA",
                "Deployment c: has no freshplan.io/territory label; it is not scaled",
                "something else",
            ]
        );
    }
}
