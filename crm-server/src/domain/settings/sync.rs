//! Sync reports: the operator says that it applied, or could not apply, a tenant's effective
//! settings to one TenantPolicy. A report is read here into a [`SyncReport`] whose every value is
//! checked, or into one error per bad value, each named by its JSON pointer.
//!
//! The bounds keep one report well under the body limit and the table's rows small: at most
//! [`MAX_ENTRIES`] entries per list, strings cut off at the lengths below (in characters).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Id, SettingScope};
use crate::error::FieldError;

/// Most entries of `applied`, `rejected` and `changes`.
pub const MAX_ENTRIES: usize = 100;
/// Longest namespace or name of a policy: a DNS subdomain.
pub const MAX_SUBDOMAIN_LEN: usize = 253;
/// Longest setting key.
pub const MAX_KEY_LEN: usize = 128;
/// Longest reason of a rejected setting.
pub const MAX_REASON_LEN: usize = 2000;
/// Longest line of `changes`: room for two `gateway.ipAllowlist` values of 100 IPv6 blocks.
pub const MAX_CHANGE_LEN: usize = 10_000;
/// Longest `detail`.
pub const MAX_DETAIL_LEN: usize = 8000;

/// Whether the operator could apply the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The policy with the applied keys is in force.
    Applied,
    /// The policy could not be applied; the last applied one stays in force.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Outcome> {
        [Outcome::Applied, Outcome::Failed].into_iter().find(|o| o.as_str() == text)
    }
}

/// A setting the operator did not apply, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectedSetting {
    /// Dot-separated words of letters and digits, each starting with a lower-case letter.
    #[schema(
        example = "gateway.ipAllowlist",
        max_length = 128,
        pattern = r"^[a-z][A-Za-z0-9]*(\.[a-z][A-Za-z0-9]*)*$"
    )]
    pub key: String,
    /// Where its value came from: `global`, `tenant:<tenant>` or `org:<tenant>:<org>`.
    #[schema(
        example = "tenant:acme",
        pattern = r"^(global|tenant:[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?|org:[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?:[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)$"
    )]
    pub scope: String,
    /// Not blank.
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = r"^[^\u0000]*[^\u0000\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$"
    )]
    pub reason: String,
}

/// The body of `POST /settings/sync-reports`, as sent.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"policy": "crm/acme", "tenant": "acme", "org": null, "version": 42, "outcome": "applied",
    "applied": ["gateway.rateLimit"], "rejected": [{"key": "gateway.ipAllowlist", "scope": "tenant:acme",
    "reason": "the policy with it would be refused: spec.ipAllowlist: entries must be IP addresses or CIDR blocks"}],
    "changes": ["gateway.rateLimit: {\"minute\":600} -> {\"minute\":900}"]}))]
pub struct SyncReportInput {
    /// The TenantPolicy: `<namespace>/<name>`, each a DNS subdomain of at most 253 characters.
    #[schema(
        max_length = 507,
        pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
    )]
    pub policy: String,
    /// The tenant whose effective settings were read: a DNS label.
    #[schema(max_length = 63, pattern = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
    pub tenant: String,
    /// The org, when the policy reads one: a DNS label.
    #[serde(default)]
    #[schema(max_length = 63, pattern = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
    pub org: Option<String>,
    /// The effective version applied (or tried): the `version` of `GET /settings/effective`.
    #[schema(minimum = 0, maximum = 9223372036854775807_i64)]
    #[serde(deserialize_with = "crate::domain::integral::exact")]
    pub version: i64,
    pub outcome: Outcome,
    /// The keys in force, at most 100, each once.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub applied: Vec<String>,
    /// The keys not applied, with why; at most 100.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub rejected: Vec<RejectedSetting>,
    /// What changed in the policy, one line per change; at most 100 of at most 10000 characters.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub changes: Vec<String>,
    /// Anything else worth knowing, e.g. why the policy could not be applied; at most 8000
    /// characters.
    #[serde(default)]
    #[schema(max_length = 8000)]
    pub detail: Option<String>,
}

/// A report whose every value is checked.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncReport {
    pub policy: PolicyRef,
    pub tenant: Id,
    pub org: Option<Id>,
    pub version: i64,
    pub outcome: Outcome,
    pub applied: Vec<String>,
    pub rejected: Vec<RejectedSetting>,
    pub changes: Vec<String>,
    pub detail: Option<String>,
}

/// A TenantPolicy's `<namespace>/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PolicyRef(String);

impl PolicyRef {
    pub fn parse(text: &str) -> Result<PolicyRef, String> {
        let ok = text.split_once('/').is_some_and(|(ns, name)| is_subdomain(ns) && is_subdomain(name));
        if ok {
            Ok(PolicyRef(text.to_owned()))
        } else {
            Err(format!(
                "`{}` is not a policy: <namespace>/<name>, each a DNS subdomain (lower-case letters, digits, \
                 hyphens and dots, at most {MAX_SUBDOMAIN_LEN} characters)",
                truncated(text, 80).escape_debug()
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A DNS subdomain (RFC 1123), as Kubernetes names most objects: dot-separated labels of
/// lower-case letters, digits and inner hyphens, at most 253 characters in all.
fn is_subdomain(text: &str) -> bool {
    (1..=MAX_SUBDOMAIN_LEN).contains(&text.len())
        && text.split('.').all(|label| {
            let bytes = label.as_bytes();
            !bytes.is_empty()
                && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
                && bytes[0] != b'-'
                && bytes[bytes.len() - 1] != b'-'
        })
}

/// A setting key as the registry names them: dot-separated words of letters and digits, each
/// starting with a lower-case letter (`gateway.rateLimit`). Not necessarily one of this
/// server's catalog: the report says what the operator saw.
fn is_key(text: &str) -> bool {
    text.len() <= MAX_KEY_LEN
        && text.split('.').all(|word| {
            let mut chars = word.chars();
            chars.next().is_some_and(|c| c.is_ascii_lowercase()) && chars.all(|c| c.is_ascii_alphanumeric())
        })
}

fn truncated(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

fn too_long(text: &str, max: usize) -> bool {
    text.chars().nth(max).is_some()
}

impl SyncReportInput {
    /// The report, or one error per bad value.
    pub fn check(self) -> Result<SyncReport, Vec<FieldError>> {
        let mut errors = Vec::new();
        let policy =
            PolicyRef::parse(&self.policy).map_err(|e| errors.push(FieldError::new("/policy", e))).ok();
        let tenant = Id::parse(&self.tenant).map_err(|e| errors.push(FieldError::new("/tenant", e))).ok();
        let org = match &self.org {
            None => Some(None),
            Some(org) => Id::parse(org).map(Some).map_err(|e| errors.push(FieldError::new("/org", e))).ok(),
        };
        if self.version < 0 {
            errors.push(FieldError::new("/version", "must be 0 or more: the effective version applied"));
        }
        for (list, len) in [
            ("applied", self.applied.len()),
            ("rejected", self.rejected.len()),
            ("changes", self.changes.len()),
        ] {
            if len > MAX_ENTRIES {
                errors.push(FieldError::new(
                    format!("/{list}"),
                    format!("at most {MAX_ENTRIES} entries, not {len}"),
                ));
            }
        }
        for (i, key) in self.applied.iter().enumerate() {
            if !is_key(key) {
                errors.push(FieldError::new(format!("/applied/{i}"), bad_key(key)));
            } else if self.applied[..i].contains(key) {
                errors.push(FieldError::new(format!("/applied/{i}"), format!("{key} is listed twice")));
            }
        }
        for (i, rejected) in self.rejected.iter().enumerate() {
            if !is_key(&rejected.key) {
                errors.push(FieldError::new(format!("/rejected/{i}/key"), bad_key(&rejected.key)));
            }
            if let Err(e) = SettingScope::parse(&rejected.scope) {
                errors.push(FieldError::new(format!("/rejected/{i}/scope"), e));
            }
            if rejected.reason.trim().is_empty() {
                errors.push(FieldError::new(format!("/rejected/{i}/reason"), "must say why"));
            } else if too_long(&rejected.reason, MAX_REASON_LEN) {
                errors.push(FieldError::new(
                    format!("/rejected/{i}/reason"),
                    format!("at most {MAX_REASON_LEN} characters"),
                ));
            }
        }
        for (i, change) in self.changes.iter().enumerate() {
            if change.trim().is_empty() {
                errors.push(FieldError::new(format!("/changes/{i}"), "must not be empty"));
            } else if too_long(change, MAX_CHANGE_LEN) {
                errors.push(FieldError::new(
                    format!("/changes/{i}"),
                    format!("at most {MAX_CHANGE_LEN} characters"),
                ));
            }
        }
        if self.detail.as_deref().is_some_and(|d| too_long(d, MAX_DETAIL_LEN)) {
            errors.push(FieldError::new("/detail", format!("at most {MAX_DETAIL_LEN} characters")));
        }
        match (policy, tenant, org) {
            (Some(policy), Some(tenant), Some(org)) if errors.is_empty() => Ok(SyncReport {
                policy,
                tenant,
                org,
                version: self.version,
                outcome: self.outcome,
                applied: self.applied,
                rejected: self.rejected,
                changes: self.changes,
                detail: self.detail.filter(|d| !d.trim().is_empty()),
            }),
            _ => Err(errors),
        }
    }
}

fn bad_key(key: &str) -> String {
    format!(
        "`{}` is not a setting key: dot-separated words of letters and digits, each starting with a lower-case \
         letter, at most {MAX_KEY_LEN} characters",
        truncated(key, 80).escape_debug()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(body: serde_json::Value) -> SyncReportInput {
        serde_json::from_value(body).unwrap()
    }

    fn pointers(body: serde_json::Value) -> Vec<String> {
        match input(body).check() {
            Ok(report) => panic!("accepted: {report:?}"),
            Err(errors) => errors.into_iter().map(|e| e.pointer.unwrap()).collect(),
        }
    }

    #[test]
    fn policies_are_two_dns_subdomains() {
        for good in
            ["crm/acme", "crm/acme.munich", "a/b", "team-1/policy-2.v1", &format!("a/{}", "x".repeat(253))]
        {
            assert!(PolicyRef::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "crm",
            "/acme",
            "crm/",
            "crm/acme/x",
            "Crm/acme",
            "crm/-acme",
            "crm/acme-",
            "crm/ac..me",
            "crm/.acme",
            "crm/ac_me",
            "crm acme",
            &format!("a/{}", "x".repeat(254)),
        ] {
            assert!(PolicyRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_are_the_registrys_key_syntax() {
        for good in ["gateway.rateLimit", "gateway.cors.origins", "a", "a1.b2C"] {
            assert!(is_key(good), "{good}");
        }
        for bad in
            ["", "Gateway.x", "gateway.", ".x", "gateway..x", "gateway.1x", "gateway.rate-limit", "gateway.ü"]
        {
            assert!(!is_key(bad), "{bad}");
        }
    }

    #[test]
    fn a_complete_report_is_accepted_and_a_blank_detail_dropped() {
        let report = input(json!({
            "policy": "crm/acme", "tenant": "acme", "org": "munich", "version": 0, "outcome": "failed",
            "applied": ["gateway.rateLimit"],
            "rejected": [{"key": "gateway.ipAllowlist", "scope": "org:acme:munich", "reason": "refused"}],
            "changes": ["gateway.rateLimit: {} -> {\"minute\":1}"], "detail": "  "
        }))
        .check()
        .unwrap();
        assert_eq!(report.policy.as_str(), "crm/acme");
        assert_eq!(report.org.as_ref().map(Id::as_str), Some("munich"));
        assert_eq!((report.version, report.outcome), (0, Outcome::Failed));
        assert_eq!(report.detail, None);
        let minimal =
            input(json!({"policy": "crm/acme", "tenant": "acme", "version": 3, "outcome": "applied"}));
        assert!(minimal.check().unwrap().applied.is_empty());
    }

    #[test]
    fn every_bad_value_is_named_by_its_pointer() {
        let long = "x".repeat(MAX_CHANGE_LEN + 1);
        let got = pointers(json!({
            "policy": "crm", "tenant": "ACME", "org": "-x", "version": -1, "outcome": "applied",
            "applied": ["gateway.rateLimit", "gateway.rateLimit", "bad key"],
            "rejected": [{"key": "gateway.x", "scope": "tenant:ACME", "reason": ""},
                         {"key": "Bad", "scope": "global", "reason": "r".repeat(MAX_REASON_LEN + 1)}],
            "changes": ["", long], "detail": "d".repeat(MAX_DETAIL_LEN + 1)
        }));
        assert_eq!(
            got,
            [
                "/policy",
                "/tenant",
                "/org",
                "/version",
                "/applied/1",
                "/applied/2",
                "/rejected/0/scope",
                "/rejected/0/reason",
                "/rejected/1/key",
                "/rejected/1/reason",
                "/changes/0",
                "/changes/1",
                "/detail",
            ]
        );
    }

    #[test]
    fn lists_hold_at_most_a_hundred_entries() {
        let keys: Vec<String> = (0..=MAX_ENTRIES).map(|i| format!("gateway.k{i}")).collect();
        let rejected: Vec<_> = (0..=MAX_ENTRIES)
            .map(|_| json!({"key": "gateway.x", "scope": "global", "reason": "r"}))
            .collect();
        let got = pointers(json!({
            "policy": "crm/acme", "tenant": "acme", "version": 1, "outcome": "applied",
            "applied": keys, "rejected": rejected, "changes": vec!["c"; MAX_ENTRIES + 1]
        }));
        assert_eq!(got, ["/applied", "/rejected", "/changes"]);
        let at_most: Vec<String> = (0..MAX_ENTRIES).map(|i| format!("gateway.k{i}")).collect();
        let ok = input(json!({"policy": "crm/acme", "tenant": "acme", "version": 1, "outcome": "applied",
                              "applied": at_most, "changes": vec!["c"; MAX_ENTRIES]}));
        assert!(ok.check().is_ok());
    }
}
