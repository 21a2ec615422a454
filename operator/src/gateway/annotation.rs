//! The `konghq.com/plugins` annotation of a target (Ingress, Service, HTTPRoute): a comma-separated
//! list of KongPlugin names that Kong Ingress Controller runs for it, in order. Users put their own
//! plugins there; the operator adds and removes only its own.
//!
//! What is the operator's is what it wanted the last time (kept by the controller in
//! [`MANAGED_ANNOTATION`] on the same object), not a naming pattern: a user may name plugins as
//! they like, and a plugin the operator stops generating must leave the list even when its name
//! says nothing.

/// The annotation Kong Ingress Controller reads.
pub const PLUGINS_ANNOTATION: &str = "konghq.com/plugins";
/// Where the operator records the names it put into [`PLUGINS_ANNOTATION`], in the same form.
pub const MANAGED_ANNOTATION: &str = "freshplan.io/managed-plugins";

/// The names of an annotation value, in order: split at commas, trimmed, empty ones dropped (as
/// Kong Ingress Controller reads it).
pub fn names(value: &str) -> Vec<&str> {
    value.split(',').map(str::trim).filter(|name| !name.is_empty()).collect()
}

/// The annotation value once the operator's plugins are `wanted` instead of `before`: every name
/// `current` holds that is not the operator's stays where it is; the operator's names that are no
/// longer wanted leave; wanted names already there keep their place; new ones follow at the end,
/// in `wanted`'s order. A name is listed once (the first place it had). `None` when the value
/// would be empty. When the names do not change, `current` comes back as it was, spacing
/// included, so that applying it is no update.
pub fn merge(current: Option<&str>, before: &[&str], wanted: &[&str]) -> Option<String> {
    let present = current.map(names).unwrap_or_default();
    let mut merged: Vec<&str> = Vec::with_capacity(present.len() + wanted.len());
    for &name in &present {
        let dropped = before.contains(&name) && !wanted.contains(&name);
        if !dropped && !merged.contains(&name) {
            merged.push(name);
        }
    }
    for &name in wanted {
        if !name.trim().is_empty() && !merged.contains(&name) {
            merged.push(name);
        }
    }
    if merged == present {
        return current.filter(|_| !merged.is_empty()).map(str::to_owned);
    }
    (!merged.is_empty()).then(|| merged.join(","))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_operator_replaces_its_own_names_and_keeps_the_users() {
        let current = "user-auth, fp-acme-jwt,fp-acme-cors , user-log";
        let merged = merge(Some(current), &["fp-acme-jwt", "fp-acme-cors"], &["fp-acme-jwt", "fp-acme-rate"]);
        assert_eq!(merged.as_deref(), Some("user-auth,fp-acme-jwt,user-log,fp-acme-rate"));
        // Nothing to change: the value as it was, spacing included.
        assert_eq!(merge(Some(current), &["fp-acme-jwt"], &["fp-acme-jwt"]).as_deref(), Some(current));
        assert_eq!(merge(None, &[], &["fp-acme-jwt"]).as_deref(), Some("fp-acme-jwt"));
        assert_eq!(merge(Some("fp-acme-jwt"), &["fp-acme-jwt"], &[]), None);
        assert_eq!(merge(Some(" , "), &[], &[]), None);
    }

    fn name() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["a", "b", "c", "d", "e", "f", "g", "h"]).prop_map(str::to_owned)
    }

    fn value() -> impl Strategy<Value = String> {
        (
            prop::collection::vec(name(), 0..8),
            prop::collection::vec(prop::sample::select(vec![",", ", ", " ,"]), 8),
        )
            .prop_map(|(names, seps)| {
                names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| format!("{}{n}", if i == 0 { "" } else { seps[i] }))
                    .collect()
            })
    }

    proptest! {
        #[test]
        fn only_the_operators_names_change(
            current in value(),
            before in prop::collection::vec(name(), 0..4),
            wanted in prop::collection::vec(name(), 0..4),
        ) {
            let before: Vec<&str> = before.iter().map(String::as_str).collect();
            let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
            let merged = merge(Some(&current), &before, &wanted);
            let out = merged.as_deref().map(names).unwrap_or_default();
            let theirs = |list: &[&str]| -> Vec<String> {
                let mut seen = Vec::new();
                for n in list {
                    if !before.contains(n) && !wanted.contains(n) && !seen.contains(&n.to_string()) {
                        seen.push(n.to_string());
                    }
                }
                seen
            };
            // The users' names all stay, in their order.
            prop_assert_eq!(theirs(&out), theirs(&names(&current)));
            // Every wanted name once; no name the operator dropped; no duplicates at all.
            for n in &wanted {
                prop_assert_eq!(out.iter().filter(|o| *o == n).count(), 1);
            }
            for n in before.iter().filter(|n| !wanted.contains(n)) {
                prop_assert!(!out.contains(n));
            }
            let mut unique = out.clone();
            unique.sort_unstable();
            unique.dedup();
            prop_assert_eq!(unique.len(), out.len());
            // Applying it again changes nothing.
            prop_assert_eq!(merge(merged.as_deref(), &wanted, &wanted), merged.clone());
        }
    }
}
