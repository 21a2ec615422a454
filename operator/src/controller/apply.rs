//! Server-side apply of generated objects under one field manager, and pruning of what the
//! operator generated that a spec no longer wants.
//!
//! An object whose live state already holds every field the operator wants is not written: a
//! reconcile that changes nothing sends nothing. The watch caches hold metadata only; an object
//! is known to hold what was wanted when its fingerprint annotation is the wanted one and its
//! `resourceVersion` has not moved since this process applied it (or last read and compared it). Pruning finds candidates by the owner's label
//! and deletes only objects the owner really owns (its uid in their owner references), never by
//! name patterns.

use kube::ResourceExt;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::Value;

use super::cache::Applied;
use super::context::Context;
use super::error::Error;
use super::kinds::Kind;
use super::write;

/// The one field manager of everything the operator writes.
pub const FIELD_MANAGER: &str = "freshplan-operator";

/// The fingerprint of what the operator last applied to an object. Together with the fields
/// themselves it tells a field the operator stopped setting (which only a new apply removes) from
/// fields others added.
pub const APPLIED_ANNOTATION: &str = "freshplan.io/applied";

/// The fingerprint of `object`'s content, as applied in [`APPLIED_ANNOTATION`].
pub fn fingerprint(object: &Value) -> u64 {
    let mut hasher = crate::hash::Fnv1a::default();
    serde_json::to_writer(&mut hasher, object).expect("JSON values serialize");
    hasher.finish()
}

/// Marks `object` as it is applied, with the fingerprint of its content (without the mark);
/// returns the fingerprint.
pub fn fingerprint_into(object: &mut Value) -> u64 {
    if let Some(annotations) = object["metadata"]["annotations"].as_object_mut() {
        annotations.remove(APPLIED_ANNOTATION);
    }
    let fingerprint = fingerprint(object);
    object["metadata"]["annotations"][APPLIED_ANNOTATION] = Value::String(format!("{fingerprint:016x}"));
    fingerprint
}

/// Whether `live` holds `wanted`: every field of `wanted` is in `live` with the same value (maps
/// compared field by field, so fields others set are ignored; lists and scalars exactly).
pub fn contains(live: &Value, wanted: &Value) -> bool {
    match (live, wanted) {
        (Value::Object(live), Value::Object(wanted)) => wanted
            .iter()
            .all(|(key, value)| live.get(key).is_some_and(|l| contains(l, value)) || value.is_null()),
        (Value::Array(live), Value::Array(wanted)) => {
            live.len() == wanted.len() && live.iter().zip(wanted).all(|(l, w)| contains(l, w))
        }
        (Value::Number(live), Value::Number(wanted)) => live.as_f64() == wanted.as_f64(),
        _ => live == wanted,
    }
}

fn name_of(object: &Value) -> (&str, &str) {
    (
        object["metadata"]["namespace"].as_str().unwrap_or_default(),
        object["metadata"]["name"].as_str().unwrap_or_default(),
    )
}

/// Applies each of `wanted` (JSON objects of `kinds`) that its live copy does not hold yet, in
/// order, each marked with its fingerprint (the mark stays in `wanted`). Returns how many were
/// written.
pub async fn apply(ctx: &Context, kinds: &[Kind], wanted: &mut [Value]) -> Result<usize, Error> {
    let mut written = 0;
    for object in wanted.iter_mut() {
        let kind = Kind::of(kinds, object).expect("generated objects are of the kinds given");
        let fingerprint = fingerprint_into(object);
        if in_force(ctx, kind, object, fingerprint).await? {
            continue;
        }
        let object = &*object;
        let (namespace, name) = name_of(object);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let collection = kind.api(&ctx.client, namespace);
        let patch = Patch::Apply(object);
        ctx.writing(kind, namespace, name, fingerprint);
        let answer = write::patch(&ctx.client, collection.resource_url(), name, None, &params, &patch).await;
        let version = answer.inspect_err(|_| ctx.abandon(kind, namespace, name))?;
        let applied = Applied { fingerprint, resource_version: version };
        ctx.remember_applied(kind, namespace, name, applied);
        written += 1;
    }
    Ok(written)
}

/// Whether `wanted` (marked) is in force: its object carries `wanted`'s fingerprint and was
/// applied or compared at its current `resourceVersion`, or else a read of it holds every field
/// wanted.
async fn in_force(ctx: &Context, kind: &Kind, wanted: &Value, fingerprint: u64) -> Result<bool, Error> {
    let (namespace, name) = name_of(wanted);
    let Some(live) = ctx.live(kind, namespace, name) else { return Ok(false) };
    if live.fingerprint != Some(fingerprint) {
        return Ok(false);
    }
    let known = Applied { fingerprint, resource_version: live.resource_version };
    if ctx.applied(kind, namespace, name).as_ref() == Some(&known) {
        return Ok(true);
    }
    // Written by someone since, or not seen by this process yet: compare the object itself.
    let Some(object) = kind.api(&ctx.client, namespace).get_opt(name).await? else { return Ok(false) };
    let holds = serde_json::to_value(&object).is_ok_and(|object| contains(&object, wanted));
    if holds {
        let found = Applied { fingerprint, resource_version: object.resource_version().unwrap_or_default() };
        ctx.remember_applied(kind, namespace, name, found);
    }
    Ok(holds)
}

/// Deletes the objects of `kinds` in `namespace` labelled `label` that `owner_uid` owns and that
/// are not among `keep`. Returns how many were deleted.
pub async fn prune(
    ctx: &Context,
    kinds: &[Kind],
    namespace: &str,
    label: (&str, &str),
    owner_uid: &str,
    keep: &[Value],
) -> Result<usize, Error> {
    let mut deleted = 0;
    for kind in kinds {
        // In name order, so that what a prune does reads (and tests) the same every time.
        for name in ctx.owned(kind, namespace, label, owner_uid) {
            if keep.iter().any(|k| Kind::of(&[*kind], k).is_some() && name_of(k).1 == name) {
                continue;
            }
            match kind.api(&ctx.client, namespace).delete(&name, &DeleteParams::background()).await {
                Ok(_) => deleted += 1,
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::contains;

    #[test]
    fn live_objects_hold_what_is_wanted_whatever_else_they_carry() {
        let wanted = json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "config": {"minute": 60, "origins": ["a", "b"]}});
        let live = json!({"metadata": {"name": "a", "uid": "u", "labels": {"x": "1", "y": "2"}}, "config": {"minute": 60.0, "origins": ["a", "b"]}, "status": {}});
        assert!(contains(&live, &wanted));
        for changed in [
            json!({"metadata": {"name": "a", "labels": {"x": "2"}}, "config": {"minute": 60, "origins": ["a", "b"]}}),
            json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "config": {"minute": 61, "origins": ["a", "b"]}}),
            json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "config": {"minute": 60, "origins": ["b", "a"]}}),
            json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "config": {"minute": 60, "origins": ["a"]}}),
            json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "config": {"minute": 60, "second": 1, "origins": ["a", "b"]}}),
        ] {
            assert!(!contains(&live, &changed), "{changed}");
        }
    }
}
