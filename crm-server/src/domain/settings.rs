//! The settings registry's rules: scopes, which value of a key wins for a tenant and org, and the
//! version of that effective view. The catalog of keys and their schemas is in [`keys`]; the
//! operator's reports of what it applied are in [`sync`].
//!
//! Settings are scoped `global` -> `tenant:<t>` -> `org:<t>:<o>`. For a tenant (and optionally
//! one of its orgs) the *chain* is the scopes that apply to it, least specific first; per key,
//! the most specific scope of the chain with a value wins, whole value, no deep merge (a tenant's
//! `gateway.rateLimit` of `{"minute": 600}` hides the global `{"second": 20, "minute": 900}`
//! entirely, so the operator never sees a mix nobody wrote).
//!
//! Every change (set or delete) takes the next number of one registry-wide sequence; a setting's
//! version is the number of its last change and each scope keeps the number of its last change.
//! The effective version of a chain is the highest of its scopes' numbers: it rises with every
//! change that could alter the effective view, deletes included, and a number is never issued
//! twice, so an ETag built from it never names two different views.

pub mod keys;
pub mod sync;

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

/// Longest tenant or org id: a DNS label, so that the operator can use it in object names.
pub const MAX_ID_LEN: usize = 63;

/// A tenant or org id: `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`, at most 63 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id(String);

impl Id {
    pub fn parse(text: &str) -> Result<Id, String> {
        let bytes = text.as_bytes();
        let inner_ok = bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
        let ends_ok = |b: Option<&u8>| b.is_some_and(|b| *b != b'-');
        if (1..=MAX_ID_LEN).contains(&bytes.len())
            && inner_ok
            && ends_ok(bytes.first())
            && ends_ok(bytes.last())
        {
            Ok(Id(text.to_owned()))
        } else {
            Err(format!(
                "`{}` is not an id: 1 to {MAX_ID_LEN} lower-case letters, digits and inner hyphens",
                text.escape_debug()
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a setting applies. Written as one URL path segment: `global`, `tenant:<tenant>`,
/// `org:<tenant>:<org>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SettingScope {
    Global,
    Tenant(Id),
    Org(Id, Id),
}

impl SettingScope {
    pub fn parse(text: &str) -> Result<SettingScope, String> {
        let mut parts = text.split(':');
        let scope = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("global"), None, ..) => SettingScope::Global,
            (Some("tenant"), Some(tenant), None, _) => SettingScope::Tenant(Id::parse(tenant)?),
            (Some("org"), Some(tenant), Some(org), None) => {
                SettingScope::Org(Id::parse(tenant)?, Id::parse(org)?)
            }
            _ => {
                return Err(format!(
                    "`{}` is not a scope: global, tenant:<tenant> or org:<tenant>:<org>",
                    text.escape_debug()
                ));
            }
        };
        Ok(scope)
    }

    pub fn tenant(&self) -> Option<&Id> {
        match self {
            SettingScope::Global => None,
            SettingScope::Tenant(tenant) | SettingScope::Org(tenant, _) => Some(tenant),
        }
    }

    pub fn org(&self) -> Option<&Id> {
        match self {
            SettingScope::Org(_, org) => Some(org),
            _ => None,
        }
    }

    /// The scopes that apply to `tenant` and, if given, its `org`, least specific first.
    pub fn chain(tenant: &Id, org: Option<&Id>) -> Vec<SettingScope> {
        let mut chain = vec![SettingScope::Global, SettingScope::Tenant(tenant.clone())];
        chain.extend(org.map(|org| SettingScope::Org(tenant.clone(), org.clone())));
        chain
    }
}

impl fmt::Display for SettingScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingScope::Global => f.write_str("global"),
            SettingScope::Tenant(tenant) => write!(f, "tenant:{tenant}"),
            SettingScope::Org(tenant, org) => write!(f, "org:{tenant}:{org}"),
        }
    }
}

/// A stored value of a key at a scope, with the number of its last change.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub scope: SettingScope,
    pub key: String,
    pub value: Value,
    pub version: i64,
}

/// Per key, the value of the most specific scope in `chain` (least specific first) that has one.
/// Values of scopes outside the chain are ignored; keys without a value anywhere in the chain are
/// absent.
pub fn effective(
    chain: &[SettingScope],
    stored: impl IntoIterator<Item = Stored>,
) -> BTreeMap<String, Stored> {
    let rank = |scope: &SettingScope| chain.iter().position(|s| s == scope);
    let mut winners: BTreeMap<String, (usize, Stored)> = BTreeMap::new();
    for setting in stored {
        let Some(here) = rank(&setting.scope) else {
            continue;
        };
        match winners.get(&setting.key) {
            Some((best, _)) if *best >= here => {}
            _ => {
                winners.insert(setting.key.clone(), (here, setting));
            }
        }
    }
    winners.into_iter().map(|(key, (_, setting))| (key, setting)).collect()
}

/// The version of the effective view of `chain`: the number of the last change at any of its
/// scopes (`scope_versions` holds each scope's), 0 when none of them ever changed.
pub fn effective_version<'a>(
    chain: &[SettingScope],
    scope_versions: impl IntoIterator<Item = (&'a SettingScope, i64)>,
) -> i64 {
    scope_versions.into_iter().filter(|(scope, _)| chain.contains(scope)).map(|(_, v)| v).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn id(text: &str) -> Id {
        Id::parse(text).unwrap()
    }

    #[test]
    fn ids_are_dns_labels() {
        for good in ["acme", "a", "0", "munich-2", "a-b-c", &"x".repeat(63)] {
            assert!(Id::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "-acme", "acme-", "Acme", "ac_me", "ac.me", "ac:me", "münchen", &"x".repeat(64)] {
            assert!(Id::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scopes_parse_from_and_print_as_their_path_segment() {
        for text in ["global", "tenant:acme", "org:acme:munich"] {
            assert_eq!(SettingScope::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(SettingScope::parse("org:acme:munich").unwrap().org(), Some(&id("munich")));
        for bad in [
            "",
            "Global",
            "global:x",
            "tenant",
            "tenant:",
            "tenant:acme:x",
            "org:acme",
            "org:acme:b:c",
            "site:x",
        ] {
            assert!(SettingScope::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_org_value_wins_over_the_tenant_value_which_wins_over_the_global_one() {
        let stored = |scope: &str, key: &str, n: i64| Stored {
            scope: SettingScope::parse(scope).unwrap(),
            key: key.into(),
            value: json!(n),
            version: n,
        };
        let all = vec![
            stored("org:acme:munich", "a", 3),
            stored("global", "a", 1),
            stored("tenant:acme", "a", 2),
            stored("global", "b", 4),
            stored("tenant:acme", "c", 5),
            stored("tenant:other", "b", 6),
            stored("org:acme:berlin", "b", 7),
        ];
        let chain = SettingScope::chain(&id("acme"), Some(&id("munich")));
        let view = effective(&chain, all.clone());
        let values: Vec<(&str, i64)> = view.iter().map(|(k, s)| (k.as_str(), s.version)).collect();
        assert_eq!(values, [("a", 3), ("b", 4), ("c", 5)]);
        let tenant_only = effective(&SettingScope::chain(&id("acme"), None), all);
        assert_eq!(tenant_only["a"].scope, SettingScope::parse("tenant:acme").unwrap());
    }

    #[test]
    fn the_effective_version_is_zero_until_a_scope_of_the_chain_changes() {
        let chain = SettingScope::chain(&id("acme"), None);
        let other = SettingScope::Tenant(id("other"));
        assert_eq!(effective_version(&chain, []), 0);
        assert_eq!(effective_version(&chain, [(&other, 9)]), 0);
        assert_eq!(effective_version(&chain, [(&other, 9), (&SettingScope::Global, 4)]), 4);
    }

    fn scope() -> impl Strategy<Value = SettingScope> {
        let tenant = prop::sample::select(vec!["acme", "zeta"]).prop_map(id);
        let org = prop::sample::select(vec!["munich", "berlin"]).prop_map(id);
        prop_oneof![
            Just(SettingScope::Global),
            tenant.clone().prop_map(SettingScope::Tenant),
            (tenant, org).prop_map(|(t, o)| SettingScope::Org(t, o)),
        ]
    }

    fn key() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["a", "b", "c"]).prop_map(str::to_owned)
    }

    /// (tenant, org) of a request for the effective view.
    fn query() -> impl Strategy<Value = (Id, Option<Id>)> {
        (
            prop::sample::select(vec!["acme", "zeta"]).prop_map(id),
            proptest::option::of(prop::sample::select(vec!["munich", "berlin"]).prop_map(id)),
        )
    }

    /// The rule written as layers: start from the global values, lay the tenant's over them, then
    /// the org's.
    fn layered(
        tenant: &Id,
        org: Option<&Id>,
        store: &BTreeMap<(SettingScope, String), i64>,
    ) -> BTreeMap<String, i64> {
        let mut view = BTreeMap::new();
        let mut layers = vec![SettingScope::Global, SettingScope::Tenant(tenant.clone())];
        if let Some(org) = org {
            layers.push(SettingScope::Org(tenant.clone(), org.clone()));
        }
        for layer in layers {
            for ((scope, key), version) in store {
                if *scope == layer {
                    view.insert(key.clone(), *version);
                }
            }
        }
        view
    }

    proptest! {
        /// Over random stores, the effective view is the layered model's, whatever the order the
        /// stored values come in.
        #[test]
        fn the_most_specific_scope_of_the_chain_wins_whole(
            entries in prop::collection::vec((scope(), key()), 0..12),
            (tenant, org) in query(),
        ) {
            // One value per (scope, key), as the table's primary key guarantees; `stored` keeps
            // the random order the entries were generated in.
            let mut store: BTreeMap<(SettingScope, String), i64> = BTreeMap::new();
            let mut stored = Vec::new();
            for (n, (scope, key)) in entries.into_iter().enumerate() {
                if store.contains_key(&(scope.clone(), key.clone())) {
                    continue;
                }
                let version = n as i64 + 1;
                store.insert((scope.clone(), key.clone()), version);
                stored.push(Stored { scope, key, value: json!({"v": version}), version });
            }
            let chain = SettingScope::chain(&tenant, org.as_ref());
            let view = effective(&chain, stored);
            let got: BTreeMap<String, i64> = view.iter().map(|(k, s)| (k.clone(), s.version)).collect();
            prop_assert_eq!(&got, &layered(&tenant, org.as_ref(), &store));
            for (key, setting) in &view {
                prop_assert!(chain.contains(&setting.scope));
                prop_assert_eq!(&setting.value, &json!({"v": got[key]}));
            }
        }

        /// Changes (sets and deletes) at random scopes, each taking the next number: after each,
        /// the effective version of every chain the change belongs to has risen, and every other
        /// chain's is unchanged.
        #[test]
        fn the_effective_version_rises_exactly_with_changes_in_the_chain(
            changes in prop::collection::vec(scope(), 1..30),
            queries in prop::collection::vec(query(), 1..6),
        ) {
            let mut scope_versions: BTreeMap<SettingScope, i64> = BTreeMap::new();
            let mut last = 0;
            for changed in changes {
                let before: Vec<i64> = queries
                    .iter()
                    .map(|(t, o)| effective_version(&SettingScope::chain(t, o.as_ref()), scope_versions.iter().map(|(s, v)| (s, *v))))
                    .collect();
                last += 1;
                scope_versions.insert(changed.clone(), last);
                for ((tenant, org), before) in queries.iter().zip(before) {
                    let chain = SettingScope::chain(tenant, org.as_ref());
                    let after = effective_version(&chain, scope_versions.iter().map(|(s, v)| (s, *v)));
                    if chain.contains(&changed) {
                        prop_assert!(after > before, "{changed} in {chain:?}: {before} -> {after}");
                    } else {
                        prop_assert_eq!(after, before, "{} outside {:?}", changed, chain);
                    }
                }
            }
        }
    }
}
