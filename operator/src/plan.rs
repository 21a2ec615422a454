//! What a ScalingProfile asks for at an instant: the object per selected Deployment, its status,
//! and when to act again. Pure: the controller and `render` read the resources and hand them in.
//!
//! The rules, in the order they are applied:
//!
//! - The profile selects the Deployments of its namespace that its label selector matches; one
//!   whose `freshplan.io/territory` or `freshplan.io/component` label is missing or wrong, or
//!   whose component the profile has no baseline for, is left alone and named in a note.
//! - Its calendars are the SeasonalWindows of its namespace it names (none named: all of them).
//!   When one it names is missing, or one of them is invalid, the plan holds: it generates
//!   nothing and says why. A controller then leaves the objects it wrote before as they are: a
//!   calendar broken mid-season must not drop every floor to the baseline; it is reported, and
//!   fixed by a person.
//! - `mode: auto` is KEDA when its CRDs are installed, else HPA ([`backend`]).
//! - KEDA: a ScaledObject whose cron triggers hold the floors over the next [`cron::HORIZON`].
//!   HPA: a HorizontalPodAutoscaler whose `minReplicas` is the floor now.
//! - The plan is to be made again at `requeue_at`: the next change of any workload's floor (the
//!   HPA's `minReplicas`, the status's floors and windows), or earlier where a trigger set must
//!   be compiled again.

use std::collections::{BTreeMap, BTreeSet};

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::core::{Selector, SelectorExt};
use kube::{Resource, ResourceExt};
use serde::Serialize;

use crate::calendar::{Baseline, Calendar, active_windows, floor, next_transition, timeline};
use crate::component::Component;
use crate::crd::{GeneratedKind, ScalingMode, ScalingProfile, SeasonalWindow, WorkloadStatus};
use crate::render::cron::{self, HORIZON};
use crate::render::hpa;
use crate::render::scaled_object::{self, ScaledObject};
use crate::render::workload::Workload;
use crate::validate::{self, Invalid};

/// The autoscaler a profile's objects are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Keda,
    Hpa,
}

/// The backend of `mode`, given whether KEDA's CRDs are installed (`auto` follows them; an
/// explicit mode does not, and a ScaledObject without KEDA is refused by the API server, which
/// the controller reports).
pub fn backend(mode: ScalingMode, keda_installed: bool) -> Backend {
    match mode {
        ScalingMode::Keda => Backend::Keda,
        ScalingMode::Hpa => Backend::Hpa,
        ScalingMode::Auto if keda_installed => Backend::Keda,
        ScalingMode::Auto => Backend::Hpa,
    }
}

/// One generated object.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Generated {
    ScaledObject(ScaledObject),
    Hpa(HorizontalPodAutoscaler),
}

impl Generated {
    pub fn kind(&self) -> GeneratedKind {
        match self {
            Generated::ScaledObject(_) => GeneratedKind::ScaledObject,
            Generated::Hpa(_) => GeneratedKind::HorizontalPodAutoscaler,
        }
    }
}

/// Why a plan holds, most fundamental first: a controller names the first kind among a plan's
/// problems (its own spec before its calendars, a missing calendar before an invalid one, both
/// before floors that cannot be compiled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProblemKind {
    /// The profile's own spec: its baselines or selector.
    Spec,
    /// A calendar the profile names does not exist.
    CalendarMissing,
    /// A calendar the profile reads is invalid.
    CalendarInvalid,
    /// A workload's floors cannot be written as KEDA cron triggers.
    FloorsInexpressible,
}

/// One reason a plan holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    pub invalid: Invalid,
}

impl Problem {
    fn new(kind: ProblemKind, path: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem { kind, invalid: Invalid { path: path.into(), message: message.into() } }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.invalid.fmt(f)
    }
}

/// What a plan leaves out or cannot express, and the Deployment it concerns (if one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub deployment: Option<String>,
    pub text: String,
}

impl Note {
    fn about(deployment: &str, text: impl Into<String>) -> Note {
        Note { deployment: Some(deployment.to_owned()), text: text.into() }
    }
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.deployment {
            Some(name) => write!(f, "Deployment {name}: {}", self.text),
            None => f.write_str(&self.text),
        }
    }
}

/// What one profile asks for now.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub backend: Backend,
    /// One per scaled Deployment, in the Deployments' name order. Empty when the plan holds.
    pub objects: Vec<Generated>,
    /// The workloads and their floors now, as the status lists them.
    pub workloads: Vec<WorkloadStatus>,
    /// Names of the windows of the profile's calendars in force now (`calendar/window`).
    pub active_windows: Vec<String>,
    /// Per component, the lowest and highest floor now: `query 2-8, relay 1`.
    pub floor_summary: Option<String>,
    /// When the plan must be made again; None: no floor changes within the horizon.
    pub requeue_at: Option<Timestamp>,
    /// Why the plan holds (a missing or invalid calendar, an invalid profile): nothing is generated.
    pub problems: Vec<Problem>,
    /// What is left out or cannot be expressed, with the Deployment it concerns.
    pub notes: Vec<Note>,
}

impl Plan {
    /// A plan for `backend` that generates nothing (yet).
    pub fn nothing(backend: Backend) -> Plan {
        Plan {
            backend,
            objects: Vec::new(),
            workloads: Vec::new(),
            active_windows: Vec::new(),
            floor_summary: None,
            requeue_at: None,
            problems: Vec::new(),
            notes: Vec::new(),
        }
    }
}

/// The plan of `profile` at `now`, over the SeasonalWindows and Deployments there are (of any
/// namespace: those of the profile's are picked here).
pub fn plan(
    profile: &ScalingProfile,
    windows: &[SeasonalWindow],
    deployments: &[Deployment],
    keda_installed: bool,
    now: Timestamp,
) -> Plan {
    let backend = backend(profile.spec.mode, keda_installed);
    let namespace = profile.namespace().unwrap_or_default();
    let mut plan = Plan::nothing(backend);
    let baseline = validate::baseline(&profile.spec).unwrap_or_else(|found| {
        plan.problems.extend(found.into_iter().map(|invalid| Problem { kind: ProblemKind::Spec, invalid }));
        Baseline::default()
    });
    let selector = Selector::try_from(profile.spec.selector.clone()).unwrap_or_else(|e| {
        plan.problems.push(Problem::new(ProblemKind::Spec, "spec.selector", e.to_string()));
        Selector::default()
    });
    let calendars = calendars(profile, &namespace, windows, &mut plan.problems);
    if !plan.problems.is_empty() {
        return plan;
    }
    let calendar_zone = calendars.first().map_or(TimeZone::UTC, |(_, c)| c.timezone.clone());
    let (names, calendars): (Vec<String>, Vec<Calendar>) = calendars.into_iter().unzip();
    for (name, calendar) in names.iter().zip(&calendars) {
        plan.active_windows.extend(active_windows(calendar, now).into_iter().map(|w| format!("{name}/{w}")));
    }
    let owner = owner(profile);

    let mut selected: Vec<&Deployment> = deployments
        .iter()
        .filter(|d| d.namespace().unwrap_or_default() == namespace && selector.matches(d.labels()))
        .collect();
    selected.sort_by_key(|d| d.name_any());
    for deployment in selected {
        let workload = match validate::workload(deployment) {
            Ok(workload) => workload,
            Err(invalid) => {
                let name = deployment.name_any();
                plan.notes.push(Note::about(&name, format!("{}; it is not scaled", invalid.message)));
                continue;
            }
        };
        let Some(replicas) = baseline.get(workload.component) else {
            let text = format!("the profile has no baseline for {}; it is not scaled", workload.component);
            plan.notes.push(Note::about(&workload.name, text));
            continue;
        };
        let scaling = validate::autoscaling(&profile.spec, replicas);
        let (territory, component) = (workload.territory.as_str(), workload.component);
        let (object, now_floor, requeue) = match backend {
            Backend::Keda => {
                // The floor over the horizon holds the floor now and its next change too.
                let until = now + HORIZON + SignedDuration::from_hours(24);
                let steps = timeline(&calendars, &baseline, territory, component, now, until);
                let triggers = match cron::compile(&steps, until, now, &calendar_zone) {
                    Ok(triggers) => triggers,
                    Err(e) => {
                        plan.problems.push(Problem::new(
                            ProblemKind::FloorsInexpressible,
                            format!("Deployment {}", workload.name),
                            format!("its floors cannot be written as cron triggers: {e}"),
                        ));
                        continue;
                    }
                };
                let now_floor = steps.first().map_or(replicas.min(), |&(_, floor)| floor);
                let next = steps.get(1).map_or(triggers.next_change, |&(at, _)| at.min(triggers.next_change));
                let object = scaled_object::render(&workload, &owner, &scaling, &triggers);
                (Generated::ScaledObject(object), now_floor, Some(next))
            }
            Backend::Hpa => {
                let now_floor =
                    floor(&calendars, &baseline, territory, component, now).unwrap_or(replicas.min());
                let (object, warnings) = hpa::render(&workload, &owner, &scaling, now_floor);
                plan.notes.extend(warnings.into_iter().map(|w| Note::about(&workload.name, w)));
                let next = next_transition(&calendars, &baseline, territory, component, now);
                (Generated::Hpa(object), now_floor, next)
            }
        };
        plan.requeue_at = plan.requeue_at.into_iter().chain(requeue).min();
        plan.workloads.push(status(&workload, now_floor, object.kind()));
        plan.objects.push(object);
    }
    if !plan.problems.is_empty() {
        // A workload the compiler refuses holds the whole profile, as a bad calendar does.
        plan.objects.clear();
    }
    plan.floor_summary = summary(&plan.workloads);
    plan
}

/// The profile's calendars, validated, with their names; the reasons when one is missing or
/// invalid go to `problems`.
fn calendars(
    profile: &ScalingProfile,
    namespace: &str,
    windows: &[SeasonalWindow],
    problems: &mut Vec<Problem>,
) -> Vec<(String, Calendar)> {
    let here: BTreeMap<&str, &SeasonalWindow> = windows
        .iter()
        .filter(|w| w.namespace().unwrap_or_default() == namespace)
        .filter_map(|w| w.meta().name.as_deref().map(|name| (name, w)))
        .collect();
    let chosen: Vec<(&str, Option<&&SeasonalWindow>)> = match &profile.spec.calendars {
        Some(names) => {
            let unique: BTreeSet<&str> = names.iter().map(String::as_str).collect();
            unique.into_iter().map(|name| (name, here.get(name))).collect()
        }
        None => here.iter().map(|(name, w)| (*name, Some(w))).collect(),
    };
    let mut out = Vec::new();
    for (name, window) in chosen {
        let Some(window) = window else {
            let message = format!("no SeasonalWindow {name} in namespace {namespace}");
            problems.push(Problem::new(ProblemKind::CalendarMissing, "spec.calendars", message));
            continue;
        };
        match validate::calendar(&window.spec) {
            Ok(calendar) => out.push((name.to_owned(), calendar)),
            Err(found) => problems.extend(found.into_iter().map(|invalid| {
                let path = format!("SeasonalWindow {name}: {}", invalid.path);
                Problem::new(ProblemKind::CalendarInvalid, path, invalid.message)
            })),
        }
    }
    out
}

/// The owner reference of everything generated for `profile`: its controller, so that the
/// objects go with it. Its name is also the objects' `freshplan.io/scaling-profile` label
/// ([`PROFILE_LABEL`](crate::render::workload::PROFILE_LABEL)), which the controller prunes by.
fn owner(profile: &ScalingProfile) -> OwnerReference {
    let meta = profile.meta();
    OwnerReference {
        api_version: ScalingProfile::api_version(&()).into_owned(),
        kind: ScalingProfile::kind(&()).into_owned(),
        name: meta.name.clone().unwrap_or_default(),
        // Empty for a profile read from a file: the API server gives the uid.
        uid: meta.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn status(workload: &Workload, floor: u32, kind: GeneratedKind) -> WorkloadStatus {
    WorkloadStatus {
        name: workload.name.clone(),
        territory: workload.territory.clone(),
        component: workload.component,
        floor: i32::try_from(floor).unwrap_or(i32::MAX),
        kind,
    }
}

/// The lowest and highest floor per component: `query 2-8, command 2-4, relay 1`.
fn summary(workloads: &[WorkloadStatus]) -> Option<String> {
    let mut floors: BTreeMap<Component, (i32, i32)> = BTreeMap::new();
    for workload in workloads {
        let range = floors.entry(workload.component).or_insert((workload.floor, workload.floor));
        *range = (range.0.min(workload.floor), range.1.max(workload.floor));
    }
    let parts: Vec<String> = floors
        .iter()
        .map(
            |(component, (low, high))| {
                if low == high { format!("{component} {low}") } else { format!("{component} {low}-{high}") }
            },
        )
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

#[cfg(test)]
mod tests;
