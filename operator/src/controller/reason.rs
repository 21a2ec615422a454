//! The reasons of the conditions and Events both controllers write, in one place: one CamelCase
//! word each, as Kubernetes reasons are, and the words an SRE finds in `runbooks/operator.md`
//! (a test keeps the two together).

use std::fmt;

use crate::crm::CrmError;
use crate::plan::ProblemKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Ready: the objects are applied (an Event says how many were written or pruned).
    Applied,
    /// TargetsFound: every target of a TenantPolicy exists.
    Found,
    /// SettingsSynced: the CRM's settings were read and overlaid.
    Synced,
    /// An Event: a new CRM settings version is in force.
    SettingsApplied,
    /// Ready=False: the TenantPolicy cannot be applied without Kong's CRDs.
    KongNotInstalled,
    /// Ready=False: `mode: keda` where KEDA's CRDs are not installed.
    KedaNotInstalled,
    /// Ready=False: the resource's own spec is invalid.
    InvalidSpec,
    /// Ready=False: a calendar the ScalingProfile names does not exist.
    CalendarMissing,
    /// Ready=False: a calendar the ScalingProfile reads is invalid.
    CalendarInvalid,
    /// Ready=False: a workload's floors cannot be written as KEDA cron triggers.
    FloorsInexpressible,
    /// Ready=False and TargetsFound=False: the plugins are applied, but targets are missing.
    TargetsMissing,
    /// SettingsSynced=False: the operator has no CRM address (`--crm-url`).
    CrmNotConfigured,
    /// SettingsSynced=False: no connection, or a 502, 503 or 504 (the CRM or the gateway before it
    /// is down).
    CrmUnreachable,
    /// SettingsSynced=False: no complete answer in time.
    CrmTimeout,
    /// SettingsSynced=False: a 401 or 403: the token is refused or lacks the `platform` role.
    CrmUnauthorized,
    /// SettingsSynced=False: any other error status, e.g. a 400 or 422 for a request the CRM
    /// refuses.
    CrmRejected,
    /// SettingsSynced=False: an answer the operator does not understand.
    CrmBadAnswer,
    /// SettingsSynced=False: a bad base URL, an unreadable or empty token file.
    CrmMisconfigured,
    /// A Warning Event: the CRM did not take the audit entry of a settings version in force.
    AuditNotRecorded,
}

impl Reason {
    pub const ALL: [Reason; 19] = [
        Reason::Applied,
        Reason::Found,
        Reason::Synced,
        Reason::SettingsApplied,
        Reason::KongNotInstalled,
        Reason::KedaNotInstalled,
        Reason::InvalidSpec,
        Reason::CalendarMissing,
        Reason::CalendarInvalid,
        Reason::FloorsInexpressible,
        Reason::TargetsMissing,
        Reason::CrmNotConfigured,
        Reason::CrmUnreachable,
        Reason::CrmTimeout,
        Reason::CrmUnauthorized,
        Reason::CrmRejected,
        Reason::CrmBadAnswer,
        Reason::CrmMisconfigured,
        Reason::AuditNotRecorded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Applied => "Applied",
            Reason::Found => "Found",
            Reason::Synced => "Synced",
            Reason::SettingsApplied => "SettingsApplied",
            Reason::KongNotInstalled => "KongNotInstalled",
            Reason::KedaNotInstalled => "KedaNotInstalled",
            Reason::InvalidSpec => "InvalidSpec",
            Reason::CalendarMissing => "CalendarMissing",
            Reason::CalendarInvalid => "CalendarInvalid",
            Reason::FloorsInexpressible => "FloorsInexpressible",
            Reason::TargetsMissing => "TargetsMissing",
            Reason::CrmNotConfigured => "CrmNotConfigured",
            Reason::CrmUnreachable => "CrmUnreachable",
            Reason::CrmTimeout => "CrmTimeout",
            Reason::CrmUnauthorized => "CrmUnauthorized",
            Reason::CrmRejected => "CrmRejected",
            Reason::CrmBadAnswer => "CrmBadAnswer",
            Reason::CrmMisconfigured => "CrmMisconfigured",
            Reason::AuditNotRecorded => "AuditNotRecorded",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the CRM's settings could not be read.
impl From<&CrmError> for Reason {
    fn from(error: &CrmError) -> Reason {
        match error {
            CrmError::Unreachable(_) => Reason::CrmUnreachable,
            CrmError::Timeout => Reason::CrmTimeout,
            CrmError::Status { status: 401 | 403, .. } => Reason::CrmUnauthorized,
            CrmError::Status { status: 502..=504, .. } => Reason::CrmUnreachable,
            CrmError::Status { .. } => Reason::CrmRejected,
            CrmError::Decode(_) => Reason::CrmBadAnswer,
            CrmError::Config(_) => Reason::CrmMisconfigured,
        }
    }
}

/// Why a ScalingProfile's plan holds.
impl From<ProblemKind> for Reason {
    fn from(kind: ProblemKind) -> Reason {
        match kind {
            ProblemKind::Spec => Reason::InvalidSpec,
            ProblemKind::CalendarMissing => Reason::CalendarMissing,
            ProblemKind::CalendarInvalid => Reason::CalendarInvalid,
            ProblemKind::FloorsInexpressible => Reason::FloorsInexpressible,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_explained_in_the_operator_runbook() {
        let runbook =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../runbooks/operator.md"))
                .expect("runbooks/operator.md");
        let missing: Vec<&str> =
            Reason::ALL.iter().map(|r| r.as_str()).filter(|r| !runbook.contains(&format!("`{r}`"))).collect();
        assert!(missing.is_empty(), "runbooks/operator.md does not explain {missing:?}");
    }

    #[test]
    fn reasons_are_distinct_camel_case_words() {
        let mut seen = std::collections::HashSet::new();
        for reason in Reason::ALL {
            let text = reason.as_str();
            assert!(seen.insert(text), "{text} twice");
            assert!(text.chars().next().is_some_and(|c| c.is_ascii_uppercase()), "{text}");
            assert!(text.chars().all(|c| c.is_ascii_alphanumeric()), "{text}");
            assert_eq!(format!("{reason:?}"), text, "the name in code is the name users see");
        }
    }
}
