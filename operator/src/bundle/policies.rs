//! The TenantPolicies of a bundle: each admitted, overlaid with its CRM settings and rendered
//! for Kong Ingress Controller or decK; and what no single policy can see, such as two
//! policies claiming one target.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use kube::ResourceExt;
use serde_json::Value;

use super::Bundle;
use crate::crd::TenantPolicy;
use crate::gateway::plugins::{self, Gateway};
use crate::gateway::policy::Policy;
use crate::gateway::settings::{self, EffectiveSettings, Overlaid};
use crate::gateway::{deck, kic};

/// What gateway policy is rendered as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Kong Ingress Controller objects: KongConsumer, Secrets, KongPlugins.
    #[default]
    Kic,
    /// decK declarative files, one per policy.
    Deck,
}

/// One policy, ready to render.
#[derive(Debug, Clone)]
pub struct PolicyPlan {
    /// `namespace/name`.
    pub name: String,
    pub overlaid: Overlaid,
    /// Why no settings were overlaid, when the policy asks for them and none were.
    pub settings_note: Option<String>,
    pub gateway: Gateway,
}

impl Bundle {
    /// The plan of every TenantPolicy in namespace and name order, overlaid with the entry of
    /// `settings` for its tenant and org (None: settings were not read at all); or every reason
    /// some cannot be rendered.
    pub fn policy_plans(
        &self,
        settings: Option<&[EffectiveSettings]>,
    ) -> Result<Vec<PolicyPlan>, Vec<String>> {
        let mut resources: Vec<&TenantPolicy> = self.policies.iter().collect();
        resources.sort_by_key(|p| (p.namespace(), p.name_any()));
        let mut problems = Vec::new();
        let mut plans = Vec::new();
        for resource in resources {
            let name = format!("{}/{}", resource.namespace().unwrap_or_default(), resource.name_any());
            let policy = match Policy::admit(resource) {
                Ok(policy) => policy,
                Err(found) => {
                    problems.extend(found.iter().map(|f| format!("TenantPolicy {name}: {f}")));
                    continue;
                }
            };
            let (overlaid, settings_note) = match (policy.spec.settings_scope(), settings) {
                (None, _) => (Overlaid::unchanged(&policy), None),
                (Some(_), None) => (
                    Overlaid::unchanged(&policy),
                    Some("CRM settings not read (render --settings FILE overlays them)".to_owned()),
                ),
                (Some((tenant, org)), Some(all)) => {
                    match all.iter().find(|s| s.tenant == tenant && s.org.as_deref() == org) {
                        Some(found) => (settings::overlay(&policy, found), None),
                        None => (
                            Overlaid::unchanged(&policy),
                            Some(format!(
                                "no settings for tenant {tenant}{} in the settings files: the spec alone",
                                org.map(|o| format!(", org {o}")).unwrap_or_default()
                            )),
                        ),
                    }
                }
            };
            let gateway = plugins::gateway(&overlaid.policy);
            plans.push(PolicyPlan { name, overlaid, settings_note, gateway });
        }
        problems.extend(conflicts(&plans));
        if problems.is_empty() { Ok(plans) } else { Err(problems) }
    }
}

/// What Kong keeps unique across policies: a target carries one policy's plugins, a consumer's
/// username and a key id name one tenant.
fn conflicts(plans: &[PolicyPlan]) -> Vec<String> {
    let mut claims: BTreeMap<(String, &'static str, String), Vec<&str>> = BTreeMap::new();
    for plan in plans {
        let policy = &plan.overlaid.policy;
        let mut claim = |what: &'static str, value: String| {
            let scope = if what == "target" { policy.namespace.clone() } else { String::new() };
            let owners = claims.entry((scope, what, value)).or_default();
            if !owners.contains(&plan.name.as_str()) {
                owners.push(&plan.name);
            }
        };
        for target in policy.targets() {
            claim("target", target.to_string());
        }
        claim("consumer", plan.gateway.consumer.username.clone());
        for credential in &plan.gateway.consumer.credentials {
            claim("key id", credential.kid.clone());
        }
    }
    claims
        .into_iter()
        .filter(|(_, owners)| owners.len() > 1)
        .map(|((namespace, what, value), owners)| match what {
            "target" => format!(
                "{value} in namespace {namespace} is a target of TenantPolicies {}",
                owners.join(" and ")
            ),
            _ => format!("{what} {value} is claimed by TenantPolicies {}", owners.join(" and ")),
        })
        .collect()
}

/// `plan` as it is printed: a comment block saying what came from where, then its documents.
pub(super) fn render(plan: &PolicyPlan, format: Format) -> Result<(String, Vec<Value>), serde_json::Error> {
    let policy = &plan.overlaid.policy;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# TenantPolicy {}: tenant {}, Kong consumer {}",
        plan.name, policy.spec.tenant_id, plan.gateway.consumer.username
    );
    if let Some(note) = &plan.settings_note {
        let _ = writeln!(out, "#   {note}");
    } else if let Some(version) = plan.overlaid.version {
        let applied = if plan.overlaid.applied.is_empty() {
            "none".to_owned()
        } else {
            plan.overlaid.applied.join(", ")
        };
        let _ = writeln!(out, "#   CRM settings version {version}: applied {applied}");
    }
    for rejected in &plan.overlaid.rejected {
        let _ = writeln!(
            out,
            "#   setting {} (from {}) not applied: {}",
            rejected.key, rejected.scope, rejected.reason
        );
    }
    for plugin in plan.gateway.plugins.iter().filter(|p| p.enterprise) {
        let _ = writeln!(
            out,
            "#   note: {} is a Kong Enterprise plugin: Kong OSS refuses it",
            policy.object_name(&plugin.id)
        );
    }
    let documents = match format {
        Format::Kic => {
            let objects = kic::render(policy, &plan.gateway);
            for (target, names) in &objects.targets {
                let _ = writeln!(
                    out,
                    "#   {target}: {} gets {}",
                    crate::gateway::annotation::PLUGINS_ANNOTATION,
                    names.join(",")
                );
            }
            objects.documents()?
        }
        Format::Deck => {
            let _ = writeln!(out, "#   deck gateway sync --select-tag {} <this file>", policy.select_tag());
            vec![deck::render(policy, &plan.gateway)]
        }
    };
    Ok((out, documents))
}
