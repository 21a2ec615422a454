//! Changing the registry: `PUT` and `DELETE` of one setting. Each change takes the next number of
//! the registry's sequence (and with it the registry's write lock, so two writers never both
//! win), writes the value, the audit row and the scope's number, and emits `settings.changed`,
//! all in one transaction.
//!
//! Preconditions, checked under that lock: over an existing setting `If-Match` is required (428
//! without, 412 when stale), whatever `--require-if-match` says, since the registry is the
//! operator's source of policy and a blind overwrite would silently undo another admin's change.
//! A new setting needs none; `If-Match` on a missing one is 412, and so is `If-None-Match: *` on an
//! existing one (create only).

use std::fmt::Display;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{Setting, WRITERS, key_param, not_set, scope_param};
use crate::db::settings::{self, Change};
use crate::domain::settings::keys::SettingKey;
use crate::domain::settings::{Id, SettingScope};
use crate::error::{Error, Problem};
use crate::http::caller::Caller;
use crate::http::extract::{AppJson, AppPath};
use crate::http::preconditions::{IfMatch, IfNoneMatch, Tagged};
use crate::outbox::{self, EventType, NewEvent};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"value": {"minute": 600}}))]
pub struct SettingInput {
    /// The new value; it must match the key's JSON Schema (GET /settings/keys).
    #[schema(value_type = serde_json::Value)]
    value: Value,
}

/// Set a value of a key at a scope: 201 when the key had none there, 200 when it is replaced
/// (writing the value it already has changes nothing and takes no number). Emits
/// `settings.changed`.
#[utoipa::path(put, path = "/settings/{scope}/{key}", tag = "settings", params(
    ("scope" = String, Path, pattern = r"^(global|tenant:[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?|org:[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?:[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)$", description = "`global`, `tenant:<tenant>` or `org:<tenant>:<org>`", example = "tenant:acme"),
    ("key" = String, Path, description = "A key of GET /settings/keys", example = "gateway.rateLimit"),
    ("If-Match" = Option<String>, Header, pattern = r#"^(\*|[ \t,]*((W/)?"[!#-~]*"([ \t]*,[ \t,]*(W/)?"[!#-~]*")*)?[ \t,]*)$"#, description = "Required over an existing setting: its ETag"),
    ("If-None-Match" = Option<String>, Header, pattern = r#"^(\*|[ \t,]*((W/)?"[!#-~]*"([ \t]*,[ \t,]*(W/)?"[!#-~]*")*)?[ \t,]*)$"#, description = "`*`: only create, never replace")),
    request_body = SettingInput,
    responses(
        (status = 201, description = "Created; the ETag is in the header", body = Setting),
        (status = 200, description = "Replaced; the new ETag is in the header", body = Setting),
        (status = 400, description = "Not a scope, malformed JSON or a malformed precondition header", body = Problem,
            content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match is stale (the current ETag is in the answer) or names a setting that is \
            not set; or If-None-Match: * and the setting is set", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The value breaks the key's schema or rules; one error per violation, pointers under /value",
            body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "The setting is set and If-Match is missing", body = Problem,
            content_type = "application/problem+json"),
    ))]
pub(super) async fn put_setting(
    State(state): State<AppState>,
    caller: Caller,
    AppPath((scope, key)): AppPath<(String, String)>,
    if_match: IfMatch,
    if_none_match: IfNoneMatch,
    AppJson(input): AppJson<SettingInput>,
) -> Result<Response, Error> {
    caller.require(WRITERS, "changing settings")?;
    let (scope, key) = (scope_param(&scope)?, key_param(&key)?);
    state.settings.validate(key, &input.value).map_err(Error::Unprocessable)?;
    let scope_text = scope.to_string();
    let mut tx = caller.begin(&state).await?;
    let version = settings::next_version(&mut tx).await?;
    let current = settings::find(&mut tx, &scope_text, key.name()).await?;
    let what = format!("{key} at {scope}");
    check_put(current.as_ref().map(|c| c.version), &if_match, &if_none_match, &what)?;
    if let Some(current) = current.clone().filter(|c| c.value == input.value) {
        // Nothing changes: the transaction (and the number it took) rolls back.
        return Ok(([Tagged::Setting.header(current.version)], Json(Setting::from(current))).into_response());
    }
    let old = current.as_ref().map(|c| &c.value);
    let actor = caller.audit_name();
    let change = Change {
        scope: &scope_text,
        key: key.name(),
        version,
        old,
        new: Some(&input.value),
        actor: &actor,
        correlation_id: caller.correlation_id(),
    };
    let row = settings::record(&mut tx, change)
        .await?
        .ok_or_else(|| anyhow::anyhow!("writing {what} returned no row"))?;
    outbox::enqueue(&mut tx, &caller.origin, changed_event(&scope, key, change)).await?;
    tx.commit().await?;
    let status = if current.is_some() { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, [Tagged::Setting.header(row.version)], Json(Setting::from(row))).into_response())
}

/// The preconditions of a `PUT` over a setting whose version is `current` (`None`: not set), in
/// RFC 9110's order: `If-Match`, then `If-None-Match`, then this registry's own rule that
/// replacing needs `If-Match`.
fn check_put(
    current: Option<i64>,
    if_match: &IfMatch,
    if_none_match: &IfNoneMatch,
    what: &impl Display,
) -> Result<(), Error> {
    match (current, if_match) {
        (_, IfMatch::Absent) => {}
        (None, _) => {
            return Err(Error::PreconditionFailed {
                detail: format!("{what} is not set, so If-Match cannot match; send none to create it"),
                etag: None,
            });
        }
        (Some(version), if_match) => {
            if_match.expected(Tagged::Setting, true)?.check(Tagged::Setting, version)?
        }
    }
    let current_tag = current.map(|version| Tagged::Setting.etag(version));
    if if_none_match.matches(current_tag.as_deref()) {
        return Err(Error::PreconditionFailed {
            detail: format!("{what} is set already and If-None-Match forbids replacing it"),
            etag: current_tag,
        });
    }
    if current.is_some() && *if_match == IfMatch::Absent {
        return Err(Error::PreconditionRequired(format!(
            "{what} is set: replacing it needs If-Match with the ETag from a GET of it"
        )));
    }
    Ok(())
}

/// Delete the value of a key at a scope; the effective value falls back to the next less specific
/// scope. Needs `If-Match`. Emits `settings.changed`; the history keeps the deleted value.
#[utoipa::path(delete, path = "/settings/{scope}/{key}", tag = "settings", params(
    ("scope" = String, Path, pattern = r"^(global|tenant:[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?|org:[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?:[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)$", description = "`global`, `tenant:<tenant>` or `org:<tenant>:<org>`", example = "tenant:acme"),
    ("key" = String, Path, description = "A key of GET /settings/keys", example = "gateway.rateLimit"),
    ("If-Match" = String, Header, pattern = r#"^(\*|[ \t,]*((W/)?"[!#-~]*"([ \t]*,[ \t,]*(W/)?"[!#-~]*")*)?[ \t,]*)$"#, description = "The setting's ETag, or *")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Not a scope, or a malformed If-Match", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key, or not set at this scope", body = Problem,
            content_type = "application/problem+json"),
        (status = 412, description = "If-Match is stale; the current ETag is in the answer", body = Problem,
            content_type = "application/problem+json"),
        (status = 428, description = "If-Match is missing", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn delete_setting(
    State(state): State<AppState>,
    caller: Caller,
    AppPath((scope, key)): AppPath<(String, String)>,
    if_match: IfMatch,
) -> Result<StatusCode, Error> {
    caller.require(WRITERS, "deleting settings")?;
    let (scope, key) = (scope_param(&scope)?, key_param(&key)?);
    let scope_text = scope.to_string();
    let mut tx = caller.begin(&state).await?;
    let version = settings::next_version(&mut tx).await?;
    let current =
        settings::find(&mut tx, &scope_text, key.name()).await?.ok_or_else(|| not_set(&scope, key))?;
    if_match.expected(Tagged::Setting, true)?.check(Tagged::Setting, current.version)?;
    let actor = caller.audit_name();
    let change = Change {
        scope: &scope_text,
        key: key.name(),
        version,
        old: Some(&current.value),
        new: None,
        actor: &actor,
        correlation_id: caller.correlation_id(),
    };
    settings::record(&mut tx, change).await?;
    outbox::enqueue(&mut tx, &caller.origin, changed_event(&scope, key, change)).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `settings.changed` for one change. The subject is `<scope>/<key>`; the event has no customer
/// or territory, so the feeds show it to admins and the platform role only.
fn changed_event(scope: &SettingScope, key: SettingKey, change: Change<'_>) -> NewEvent {
    NewEvent {
        event_type: EventType::SettingsChanged,
        subject: format!("{scope}/{key}"),
        territory: None,
        customer: None,
        data: json!({
            "scope": scope.to_string(),
            "tenant": scope.tenant().map(Id::as_str),
            "org": scope.org().map(Id::as_str),
            "key": key.name(),
            "action": if change.new.is_some() { "set" } else { "delete" },
            "version": change.version,
            "oldValue": change.old,
            "newValue": change.new,
            "actor": change.actor,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn status(current: Option<i64>, if_match: IfMatch, if_none_match: IfNoneMatch) -> Option<StatusCode> {
        check_put(current, &if_match, &if_none_match, &"k").err().map(|e| e.status_code())
    }

    fn tags(tag: &str) -> Vec<String> {
        vec![tag.to_owned()]
    }

    #[test]
    fn a_new_setting_needs_no_precondition_and_if_match_cannot_match_it() {
        assert_eq!(status(None, IfMatch::Absent, IfNoneMatch::Absent), None);
        assert_eq!(status(None, IfMatch::Absent, IfNoneMatch::Any), None);
        assert_eq!(status(None, IfMatch::Any, IfNoneMatch::Absent), Some(StatusCode::PRECONDITION_FAILED));
        assert_eq!(
            status(None, IfMatch::Tags(tags("\"k3\"")), IfNoneMatch::Absent),
            Some(StatusCode::PRECONDITION_FAILED)
        );
    }

    #[test]
    fn replacing_needs_the_current_tag() {
        assert_eq!(
            status(Some(3), IfMatch::Absent, IfNoneMatch::Absent),
            Some(StatusCode::PRECONDITION_REQUIRED)
        );
        assert_eq!(status(Some(3), IfMatch::Tags(tags("\"k3\"")), IfNoneMatch::Absent), None);
        assert_eq!(status(Some(3), IfMatch::Any, IfNoneMatch::Absent), None);
        assert_eq!(
            status(Some(4), IfMatch::Tags(tags("\"k3\"")), IfNoneMatch::Absent),
            Some(StatusCode::PRECONDITION_FAILED)
        );
        // A tag of another kind of resource never matches.
        assert_eq!(
            status(Some(3), IfMatch::Tags(tags("\"c3\"")), IfNoneMatch::Absent),
            Some(StatusCode::PRECONDITION_FAILED)
        );
    }

    #[test]
    fn if_none_match_star_refuses_to_replace() {
        assert_eq!(status(Some(3), IfMatch::Absent, IfNoneMatch::Any), Some(StatusCode::PRECONDITION_FAILED));
        assert_eq!(status(Some(3), IfMatch::Any, IfNoneMatch::Any), Some(StatusCode::PRECONDITION_FAILED));
    }
}
