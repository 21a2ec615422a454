//! Who a verified token says the caller is, read from configurable claim paths (Keycloak puts
//! roles in `realm_access.roles`), and the row-level-security scope that follows from it.

use std::collections::BTreeSet;

use serde_json::Value;
use uuid::Uuid;

use crate::db::scope::Scope;
use crate::domain::customer::is_territory;

/// The roles the CRM knows; other role names in a token are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UserRole {
    SalesRep,
    TeamLead,
    ChainManager,
    Admin,
    /// The operator and the platform team: reads the settings registry and its events, and no
    /// customer data at all (its scope names no territory, chain or admin right).
    Platform,
}

impl UserRole {
    pub const ALL: [UserRole; 5] =
        [UserRole::SalesRep, UserRole::TeamLead, UserRole::ChainManager, UserRole::Admin, UserRole::Platform];

    pub fn as_str(self) -> &'static str {
        match self {
            UserRole::SalesRep => "sales-rep",
            UserRole::TeamLead => "team-lead",
            UserRole::ChainManager => "chain-manager",
            UserRole::Admin => "admin",
            UserRole::Platform => "platform",
        }
    }

    pub fn parse(name: &str) -> Option<UserRole> {
        UserRole::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl std::fmt::Display for UserRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where in the claims the roles, territories and chains are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames {
    pub roles: String,
    pub territories: String,
    pub chains: String,
}

impl Default for ClaimNames {
    fn default() -> Self {
        ClaimNames { roles: "roles".into(), territories: "territories".into(), chains: "chains".into() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    pub roles: BTreeSet<UserRole>,
    pub territories: Vec<String>,
    pub chains: Vec<Uuid>,
    /// The token's `exp` (seconds since the epoch): what a long-lived request, such as a live
    /// stream, must not outlast. `None` only for identities not made from a token.
    pub expires_at: Option<i64>,
}

/// Why a token's claims do not make an identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    #[error("the token has no subject")]
    NoSubject,
    /// The subject reaches SQL (the scope, audit rows, idempotency keys); PostgreSQL text cannot
    /// hold NUL, and control characters have no place in a user id or a log line.
    #[error("the token's subject contains a control character")]
    ControlInSubject,
    #[error("the claim `{0}` is not a list of strings")]
    NotAList(String),
    #[error("`{0}` in the territories claim is not a territory code")]
    BadTerritory(String),
    #[error("`{0}` in the chains claim is not a UUID")]
    BadChain(String),
}

impl Identity {
    pub fn from_claims(claims: &Value, names: &ClaimNames) -> Result<Identity, ClaimError> {
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 255)
            .ok_or(ClaimError::NoSubject)?
            .to_owned();
        if subject.chars().any(char::is_control) {
            return Err(ClaimError::ControlInSubject);
        }
        let roles = strings(claims, &names.roles)?.iter().filter_map(|r| UserRole::parse(r)).collect();
        let mut territories = Vec::new();
        for territory in strings(claims, &names.territories)? {
            if !is_territory(&territory) {
                return Err(ClaimError::BadTerritory(territory));
            }
            territories.push(territory);
        }
        let mut chains = Vec::new();
        for chain in strings(claims, &names.chains)? {
            chains.push(chain.parse().map_err(|_| ClaimError::BadChain(chain))?);
        }
        territories.sort();
        territories.dedup();
        chains.sort();
        chains.dedup();
        let expires_at =
            claims.get("exp").and_then(|exp| exp.as_i64().or_else(|| exp.as_f64().map(|f| f as i64)));
        Ok(Identity { subject, roles, territories, chains, expires_at })
    }

    pub fn has(&self, role: UserRole) -> bool {
        self.roles.contains(&role)
    }

    /// The scope the policies enforce: territories count for team leads and sales reps, chains
    /// for chain managers; admins see everything; the platform role only the settings registry.
    pub fn scope(&self) -> Scope {
        let territories_if = |role| if self.has(role) { self.territories.clone() } else { Vec::new() };
        Scope {
            user: Some(self.subject.clone()),
            admin: self.has(UserRole::Admin),
            platform: self.has(UserRole::Platform),
            lead_territories: territories_if(UserRole::TeamLead),
            rep_territories: territories_if(UserRole::SalesRep),
            chains: if self.has(UserRole::ChainManager) { self.chains.clone() } else { Vec::new() },
        }
    }
}

/// The strings at a dotted `path` (`realm_access.roles`); an absent claim is an empty list, a
/// single string a list of one.
fn strings(claims: &Value, path: &str) -> Result<Vec<String>, ClaimError> {
    let mut value = claims;
    for part in path.split('.') {
        match value.get(part) {
            Some(next) => value = next,
            None => return Ok(Vec::new()),
        }
    }
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned).ok_or_else(|| ClaimError::NotAList(path.to_owned())))
            .collect(),
        Value::Null => Ok(Vec::new()),
        _ => Err(ClaimError::NotAList(path.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keycloak_style_nested_roles_are_read_from_their_path() {
        let names = ClaimNames { roles: "realm_access.roles".into(), ..ClaimNames::default() };
        let claims = json!({"sub": "u1", "realm_access": {"roles": ["offline_access", "team-lead"]}, "territories": "BY"});
        let identity = Identity::from_claims(&claims, &names).unwrap();
        assert_eq!(identity.roles, BTreeSet::from([UserRole::TeamLead]));
        assert_eq!(identity.territories, ["BY"]);
    }

    #[test]
    fn bad_claims_are_refused_with_a_reason() {
        let names = ClaimNames::default();
        assert_eq!(Identity::from_claims(&json!({"roles": []}), &names), Err(ClaimError::NoSubject));
        assert_eq!(
            Identity::from_claims(&json!({"sub": "u", "territories": ["Bayern"]}), &names),
            Err(ClaimError::BadTerritory("Bayern".into()))
        );
        assert_eq!(
            Identity::from_claims(&json!({"sub": "u", "chains": ["x"]}), &names),
            Err(ClaimError::BadChain("x".into()))
        );
        assert_eq!(
            Identity::from_claims(&json!({"sub": "u", "roles": {"admin": true}}), &names),
            Err(ClaimError::NotAList("roles".into()))
        );
    }

    proptest::proptest! {
        /// No subject with a control character (NUL above all: PostgreSQL text cannot hold it)
        /// becomes an identity; every other subject of 1 to 255 bytes does, unchanged.
        #[test]
        fn a_subject_with_a_control_character_is_refused(prefix in "\\PC{0,20}", control in "\\p{Cc}", suffix in "\\PC{0,20}") {
            let names = ClaimNames::default();
            let bad = format!("{prefix}{control}{suffix}");
            proptest::prop_assert_eq!(Identity::from_claims(&json!({"sub": bad}), &names), Err(ClaimError::ControlInSubject));
            let good = format!("{prefix}{suffix}");
            if !good.is_empty() {
                proptest::prop_assert_eq!(Identity::from_claims(&json!({"sub": good.clone()}), &names).map(|i| i.subject), Ok(good));
            }
        }
    }

    #[test]
    fn the_scope_grants_territories_and_chains_only_through_the_matching_role() {
        let claims = json!({"sub": "u", "roles": ["sales-rep"], "territories": ["BY"],
                            "chains": ["6f1c7a8e-2b1d-4c3e-9f0a-1b2c3d4e5f60"]});
        let scope = Identity::from_claims(&claims, &ClaimNames::default()).unwrap().scope();
        assert_eq!(scope.rep_territories, ["BY"]);
        assert!(scope.lead_territories.is_empty() && scope.chains.is_empty() && !scope.admin);
    }

    #[test]
    fn the_platform_role_grants_no_territory_chain_or_admin_right_whatever_the_claims_say() {
        let claims = json!({"sub": "operator", "roles": ["platform"], "territories": ["BY"],
                            "chains": ["6f1c7a8e-2b1d-4c3e-9f0a-1b2c3d4e5f60"]});
        let scope = Identity::from_claims(&claims, &ClaimNames::default()).unwrap().scope();
        assert!(scope.platform);
        assert!(!scope.admin && scope.lead_territories.is_empty() && scope.rep_territories.is_empty());
        assert!(scope.chains.is_empty());
    }
}
