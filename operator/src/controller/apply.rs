//! Server-side apply of generated objects under one field manager, and pruning of what the
//! operator generated that a spec no longer wants.
//!
//! An object whose live state already holds every field the operator wants is not written: a
//! reconcile that changes nothing sends nothing. Pruning finds candidates by the owner's label
//! and deletes only objects the owner really owns (its uid in their owner references), never by
//! name patterns.

use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::Value;

use super::context::Context;
use super::error::Error;
use super::kinds::Kind;

/// The one field manager of everything the operator writes.
pub const FIELD_MANAGER: &str = "freshplan-operator";

/// The fingerprint of what the operator last applied to an object. Together with the fields
/// themselves it tells a field the operator stopped setting (which only a new apply removes) from
/// fields others added.
pub const APPLIED_ANNOTATION: &str = "freshplan.io/applied";

/// `object` as it is applied: with the fingerprint of its content.
pub fn fingerprinted(object: &Value) -> Value {
    let mut object = object.clone();
    let fingerprint = format!("{:016x}", crate::hash::fnv1a(object.to_string().as_bytes()));
    object["metadata"]["annotations"][APPLIED_ANNOTATION] = Value::String(fingerprint);
    object
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
/// order. Returns how many were written.
pub async fn apply(ctx: &Context, kinds: &[Kind], wanted: &[Value]) -> Result<usize, Error> {
    let mut written = 0;
    for object in wanted {
        let kind = Kind::of(kinds, object).expect("generated objects are of the kinds given");
        let object = fingerprinted(object);
        let (namespace, name) = name_of(&object);
        if ctx.live(kind, namespace, name).is_some_and(|live| contains(&live, &object)) {
            continue;
        }
        let params = PatchParams::apply(FIELD_MANAGER).force();
        kind.api(&ctx.client, namespace).patch(name, &params, &Patch::Apply(&object)).await?;
        written += 1;
    }
    Ok(written)
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
        let mut live = ctx.live_list(kind, namespace);
        live.sort_by(|a, b| name_of(a).1.cmp(name_of(b).1));
        for object in live {
            let labelled = object["metadata"]["labels"][label.0].as_str() == Some(label.1);
            let owned = object["metadata"]["ownerReferences"].as_array().is_some_and(|owners| {
                owners.iter().any(|o| o["uid"] == owner_uid && o["controller"] == true)
            });
            let (_, name) = name_of(&object);
            let kept = keep.iter().any(|k| Kind::of(&[*kind], k).is_some() && name_of(k).1 == name);
            if !labelled || !owned || kept {
                continue;
            }
            match kind.api(&ctx.client, namespace).delete(name, &DeleteParams::background()).await {
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
