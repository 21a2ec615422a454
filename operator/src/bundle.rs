//! The resources of a set of YAML files, sorted by kind, and everything the operator would
//! generate for them (`render -f DIR`). Pure: the caller reads the files.

mod policies;

use std::fmt::Write as _;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::Deployment;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use self::policies::{Format, PolicyPlan};
use crate::crd::{ScalingProfile, SeasonalWindow, TenantPolicy};
use crate::gateway::settings::EffectiveSettings;
use crate::plan::{self, Plan};

/// The resources the operator reads, from any number of YAML streams.
#[derive(Debug, Clone, Default)]
pub struct Bundle {
    pub profiles: Vec<ScalingProfile>,
    pub windows: Vec<SeasonalWindow>,
    pub deployments: Vec<Deployment>,
    pub policies: Vec<TenantPolicy>,
    /// `Kind name` of the documents of other kinds, which the operator does not read.
    pub ignored: Vec<String>,
}

/// A document that is not what its `kind` says, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}, document {index}: {reason}")]
pub struct DocumentError {
    pub source_name: String,
    /// 1-based.
    pub index: usize,
    pub reason: String,
}

impl Bundle {
    /// Adds the documents of one YAML stream; `source_name` (a file's path) names it in errors.
    /// A document without `kind` is an error, as `kubectl apply` makes it; empty ones are skipped.
    pub fn add_stream(&mut self, source_name: &str, text: &str) -> Result<(), DocumentError> {
        let error = |index: usize, reason: String| DocumentError {
            source_name: source_name.to_owned(),
            index,
            reason,
        };
        let documents: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| error(1, e.to_string()))?;
        for (n, document) in documents.into_iter().enumerate() {
            let index = n + 1;
            if document.is_null() {
                continue;
            }
            let kind = document.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned();
            match kind.as_str() {
                "ScalingProfile" => self.profiles.push(typed(&kind, document).map_err(|r| error(index, r))?),
                "SeasonalWindow" => self.windows.push(typed(&kind, document).map_err(|r| error(index, r))?),
                "Deployment" => self.deployments.push(typed(&kind, document).map_err(|r| error(index, r))?),
                "TenantPolicy" => self.policies.push(typed(&kind, document).map_err(|r| error(index, r))?),
                "" => return Err(error(index, "has no kind".to_owned())),
                _ => {
                    let name = document.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("?");
                    self.ignored.push(format!("{kind} {name}"));
                }
            }
        }
        Ok(())
    }

    /// The plan of every profile at `now`, in namespace and name order.
    pub fn plans(&self, keda_installed: bool, now: Timestamp) -> Vec<(String, Plan)> {
        let mut profiles: Vec<&ScalingProfile> = self.profiles.iter().collect();
        profiles.sort_by_key(|p| (p.namespace(), p.name_any()));
        profiles
            .into_iter()
            .map(|profile| {
                let name = format!("{}/{}", profile.namespace().unwrap_or_default(), profile.name_any());
                (name, plan::plan(profile, &self.windows, &self.deployments, keda_installed, now))
            })
            .collect()
    }
}

/// Why a bundle renders nothing: every problem of every profile, each naming its profile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} problem(s):\n{}", found.len(), found.iter().map(|f| format!("  {f}")).collect::<Vec<_>>().join("\n"))]
pub struct RenderError {
    pub found: Vec<String>,
}

/// How a bundle is rendered.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// Whether `mode: auto` finds KEDA's CRDs.
    pub keda_installed: bool,
    pub now: Timestamp,
    /// The CRM's effective settings per tenant and org; None: not read.
    pub settings: Option<Vec<EffectiveSettings>>,
    pub format: Format,
}

impl Bundle {
    /// Every object the operator would create for the bundle, as one YAML stream: per
    /// ScalingProfile and TenantPolicy a comment block saying what it is made of, then its
    /// objects (as decK, a decK file per TenantPolicy; ScalingProfiles have no decK form). Nothing
    /// when any resource holds: for a ScalingProfile that is a problem of its calendars (see
    /// [`plan`]), for a TenantPolicy one the API server would refuse or a conflict with another.
    /// A partial render would hide that the cluster keeps the objects of the last good spec.
    pub fn render(&self, options: &RenderOptions) -> Result<String, RenderError> {
        let plans = self.plans(options.keda_installed, options.now);
        let mut found: Vec<String> = plans
            .iter()
            .flat_map(|(name, plan)| plan.problems.iter().map(move |p| format!("ScalingProfile {name}: {p}")))
            .collect();
        let policies = self.policy_plans(options.settings.as_deref()).unwrap_or_else(|problems| {
            found.extend(problems);
            Vec::new()
        });
        if !found.is_empty() {
            return Err(RenderError { found });
        }
        let mut out = String::new();
        for ignored in &self.ignored {
            let _ = writeln!(out, "# not read by the operator: {ignored}");
        }
        let cannot_write = |what: &str, e: &dyn std::fmt::Display| RenderError {
            found: vec![format!("{what}: cannot write an object as YAML: {e}")],
        };
        for (name, plan) in &plans {
            if options.format == Format::Deck {
                let _ = writeln!(
                    out,
                    "# ScalingProfile {name}: not rendered as decK (its objects are Kubernetes objects)"
                );
                continue;
            }
            out.push_str(&profile_comment(name, plan, options.now));
            for object in &plan.objects {
                let yaml = serde_saphyr::to_string(object).map_err(|e| cannot_write(name, &e))?;
                out.push_str("---\n");
                out.push_str(&yaml);
            }
        }
        for plan in &policies {
            let (comment, documents) =
                policies::render(plan, options.format).map_err(|e| cannot_write(&plan.name, &e))?;
            out.push_str(&comment);
            for document in documents {
                let yaml = serde_saphyr::to_string(&document).map_err(|e| cannot_write(&plan.name, &e))?;
                out.push_str("---\n");
                out.push_str(&yaml);
            }
        }
        Ok(out)
    }
}

/// What a ScalingProfile's plan says before its objects: backend, floors now, next transition,
/// what was left out.
fn profile_comment(name: &str, plan: &Plan, now: Timestamp) -> String {
    let mut out = String::new();
    let backend = match plan.backend {
        plan::Backend::Keda => "KEDA ScaledObjects",
        plan::Backend::Hpa => "HorizontalPodAutoscalers",
    };
    let _ = writeln!(out, "# ScalingProfile {name} at {now}: {backend}");
    if let Some(summary) = &plan.floor_summary {
        let _ = writeln!(out, "#   floors now: {summary}");
    }
    if !plan.active_windows.is_empty() {
        let _ = writeln!(out, "#   active: {}", plan.active_windows.join(", "));
    }
    if let Some(next) = plan.requeue_at {
        let _ = writeln!(out, "#   next transition: {next}");
    }
    for note in &plan.notes {
        let _ = writeln!(out, "#   note: {note}");
    }
    if plan.objects.is_empty() {
        let _ = writeln!(out, "#   nothing generated: no Deployment it selects can be scaled");
    }
    out
}

/// The namespace of a document that names none, as `kubectl apply` without `-n` places it.
pub const DEFAULT_NAMESPACE: &str = "default";

/// `document`, of `kind`, as a `T`, in [`DEFAULT_NAMESPACE`] when it names none.
fn typed<T: DeserializeOwned + Resource>(kind: &str, document: Value) -> Result<T, String> {
    let mut resource: T = serde_path_to_error::deserialize(document)
        .map_err(|e| format!("not a valid {kind}: {}: {}", e.path(), e.inner()))?;
    resource.meta_mut().namespace.get_or_insert_with(|| DEFAULT_NAMESPACE.to_owned());
    Ok(resource)
}
