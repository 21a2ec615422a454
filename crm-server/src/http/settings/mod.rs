//! `/settings`: the settings registry. Key/values scoped `global` -> `tenant:<t>` -> `org:<t>:<o>`,
//! each value valid under its key's JSON Schema, versioned with one registry-wide sequence,
//! audited, and announced as `settings.changed`. The operator reads a tenant's effective settings
//! as its gateway policy and polls them with `If-None-Match`.
//!
//! Writes are for admins; reads for admins and the platform role (the operator, the platform team),
//! which sees no customer data and whose one write is a sync report. The migrations' row-level
//! security says the same.
//!
//! - [`read`]: the key catalog, the effective view, one setting, its history.
//! - [`write`]: `PUT` and `DELETE` of one setting.
//! - [`sync_reports`]: the operator's reports of what it applied (the one write of the platform
//!   role), and their list.

mod read;
mod sync_reports;
mod write;

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::UserRole;
use crate::db::settings::SettingRow;
use crate::domain::settings::SettingScope;
use crate::domain::settings::keys::SettingKey;
use crate::error::{Error, FieldError};
use crate::state::AppState;

pub fn queries() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(read::keys))
        .routes(routes!(read::effective))
        .routes(routes!(read::get_setting))
        .routes(routes!(read::history))
        .routes(routes!(sync_reports::list_reports))
}

pub fn commands() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(write::put_setting, write::delete_setting))
        .routes(routes!(sync_reports::create_report))
}

/// Who may read the registry.
const READERS: &[UserRole] = &[UserRole::Admin, UserRole::Platform];
/// Who may change it.
const WRITERS: &[UserRole] = &[UserRole::Admin];

/// One setting, as `GET`, `PUT` and the operator see it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"scope": "tenant:acme", "key": "gateway.rateLimit", "value": {"minute": 600},
    "version": 1200, "updatedAt": "2026-12-03T10:00:00Z", "updatedBy": "user:ops-anna"}))]
pub struct Setting {
    /// `global`, `tenant:<tenant>` or `org:<tenant>:<org>`.
    scope: String,
    key: String,
    #[schema(value_type = serde_json::Value)]
    value: Value,
    /// The number of the change that wrote the value; the `ETag` is `"k<version>"`.
    version: i64,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
    /// `user:<token subject>`.
    updated_by: String,
}

impl From<SettingRow> for Setting {
    fn from(row: SettingRow) -> Self {
        Setting {
            scope: row.scope,
            key: row.key,
            value: row.value,
            version: row.version,
            updated_at: row.updated_at,
            updated_by: row.updated_by,
        }
    }
}

/// The `{scope}` path segment; a 400 naming it when it is not a scope.
fn scope_param(text: &str) -> Result<SettingScope, Error> {
    SettingScope::parse(text).map_err(|detail| Error::BadRequest {
        detail: format!("the scope is invalid: {detail}"),
        errors: vec![FieldError::parameter("scope", detail)],
    })
}

/// The `{key}` path segment; a 404 when the catalog has no such key.
fn key_param(text: &str) -> Result<SettingKey, Error> {
    SettingKey::parse(text).ok_or_else(|| {
        Error::NotFound(format!("no setting key `{}`; GET /settings/keys lists them", text.escape_debug()))
    })
}

fn not_set(scope: &SettingScope, key: SettingKey) -> Error {
    Error::NotFound(format!("{key} is not set at {scope}"))
}
