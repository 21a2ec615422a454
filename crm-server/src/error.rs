//! The server's one error type, and its outside form: RFC 9457 problem details.
//!
//! Handlers return `Result<_, Error>`. `IntoResponse` only attaches a [`Problem`] to the response;
//! the `problem` middleware in `http` renders it (adding `instance` and the correlation id, which
//! only the middleware knows) and logs the internal cause of server errors. Every other error
//! response, such as axum's own 405, a 413 from the body limit or a timeout, passes through the
//! same middleware, so clients only ever see `application/problem+json`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// Problem types that carry meaning beyond the HTTP status; others use `about:blank`
/// (RFC 9457, section 4.2.1), whose title is the status phrase.
pub mod problem_type {
    pub const MALFORMED_REQUEST: &str = "https://freshplan.io/problems/malformed-request";
    pub const VALIDATION_FAILED: &str = "https://freshplan.io/problems/validation-failed";
    pub const CONFLICT: &str = "https://freshplan.io/problems/conflict";
    pub const INVALID_TRANSITION: &str = "https://freshplan.io/problems/invalid-transition";
    pub const STALE_VERSION: &str = "https://freshplan.io/problems/stale-version";
    pub const IF_MATCH_REQUIRED: &str = "https://freshplan.io/problems/if-match-required";
    pub const NOT_READY: &str = "https://freshplan.io/problems/not-ready";
    pub const ABOUT_BLANK: &str = "about:blank";
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request could not be read: malformed JSON, a bad query string or header.
    #[error("{detail}")]
    BadRequest { detail: String, errors: Vec<FieldError> },
    /// No token, or a token that does not verify; answered with `WWW-Authenticate`.
    #[error("{0}")]
    Unauthorized(crate::auth::AuthError),
    /// Authenticated, but the caller's roles or scope do not allow this.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A state change the resource's lifecycle does not have; `allowed` are the ones it has now.
    #[error("{detail}")]
    InvalidTransition { detail: String, allowed: Vec<&'static str> },
    /// `If-Match` names another version; `etag` is the current one, sent back so the client can
    /// re-read and retry.
    #[error("{detail}")]
    PreconditionFailed { detail: String, etag: Option<String> },
    /// The server requires `If-Match` on this write and the request has none.
    #[error("{0}")]
    PreconditionRequired(String),
    #[error("the request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Well-formed, but values break the rules; each offending value is named by a JSON pointer.
    #[error("{} invalid value(s)", .0.len())]
    Unprocessable(Vec<FieldError>),
    /// The server cannot serve now (database unreachable, migrations pending); retrying later helps.
    #[error("{detail}")]
    Unavailable { detail: String, extensions: serde_json::Map<String, serde_json::Value> },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// One offending value of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// JSON pointer (RFC 6901) into the request body, e.g. `/items/0/quantity`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// The query parameter or header at fault, when the value is not in the body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
    pub detail: String,
}

impl FieldError {
    /// A value of the body, named by JSON pointer.
    pub fn new(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError { pointer: Some(pointer.into()), parameter: None, detail: detail.into() }
    }

    /// A query parameter or header.
    pub fn parameter(name: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError { pointer: None, parameter: Some(name.into()), detail: detail.into() }
    }
}

/// An RFC 9457 problem details object.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "https://freshplan.io/problems/validation-failed",
    "title": "Validation failed",
    "status": 422,
    "detail": "1 invalid value(s)",
    "instance": "/admin/log-level",
    "correlationId": "3f2c9a4e6b1d4f0e9a7c5b3d1e2f4a6b",
    "errors": [{"pointer": "/filter", "detail": "invalid filter directive"}]
}))]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The request path this occurrence belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The request's correlation id, as in the `X-Correlation-ID` response header and the logs.
    #[serde(rename = "correlationId", skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Further members specific to the problem type (RFC 9457 extension members), e.g.
    /// `pendingMigrations`; documented with the operations that produce them.
    #[serde(flatten)]
    #[schema(ignore)]
    pub extensions: serde_json::Map<String, serde_json::Value>,
    /// The cause of a server error: logged, never sent.
    #[serde(skip)]
    pub internal: Option<String>,
}

impl Problem {
    /// A problem with no more meaning than its status (`about:blank`).
    pub fn from_status(status: StatusCode) -> Self {
        Problem::new(problem_type::ABOUT_BLANK, status.canonical_reason().unwrap_or("Error"), status)
    }

    fn new(type_uri: &str, title: &str, status: StatusCode) -> Self {
        Problem {
            type_uri: type_uri.to_owned(),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: None,
            instance: None,
            correlation_id: None,
            errors: Vec::new(),
            extensions: serde_json::Map::new(),
            internal: None,
        }
    }

    fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl Error {
    pub fn status_code(&self) -> StatusCode {
        match self {
            Error::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) | Error::InvalidTransition { .. } => StatusCode::CONFLICT,
            Error::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            Error::PreconditionRequired(_) => StatusCode::PRECONDITION_REQUIRED,
            Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Error::Database(e) if database_unavailable(e) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Database(e) if outside_scope(e) => StatusCode::FORBIDDEN,
            Error::Database(e) if concurrent_duplicate(e) => StatusCode::CONFLICT,
            Error::Database(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The outside form. Internal causes stay in `internal` for the log.
    pub fn to_problem(&self) -> Problem {
        let status = self.status_code();
        match self {
            Error::BadRequest { detail, errors } => Problem {
                errors: errors.clone(),
                ..Problem::new(problem_type::MALFORMED_REQUEST, "Malformed request", status).detail(detail)
            },
            Error::Unprocessable(errors) => Problem {
                errors: errors.clone(),
                ..Problem::new(problem_type::VALIDATION_FAILED, "Validation failed", status)
                    .detail(self.to_string())
            },
            Error::Conflict(detail) => {
                Problem::new(problem_type::CONFLICT, "Conflict", status).detail(detail)
            }
            Error::InvalidTransition { detail, allowed } => Problem {
                extensions: [("allowedTransitions".to_owned(), serde_json::json!(allowed))]
                    .into_iter()
                    .collect(),
                ..Problem::new(problem_type::INVALID_TRANSITION, "Invalid transition", status).detail(detail)
            },
            Error::PreconditionFailed { detail, .. } => {
                Problem::new(problem_type::STALE_VERSION, "Stale version", status).detail(detail)
            }
            Error::PreconditionRequired(detail) => {
                Problem::new(problem_type::IF_MATCH_REQUIRED, "If-Match required", status).detail(detail)
            }
            Error::Unavailable { detail, extensions } => Problem {
                extensions: extensions.clone(),
                ..Problem::new(problem_type::NOT_READY, "Service unavailable", status).detail(detail)
            },
            Error::Unauthorized(_)
            | Error::Forbidden(_)
            | Error::NotFound(_)
            | Error::PayloadTooLarge { .. }
            | Error::UnsupportedMediaType(_) => Problem::from_status(status).detail(self.to_string()),
            Error::Database(_) if status == StatusCode::CONFLICT => {
                Problem::new(problem_type::CONFLICT, "Conflict", status)
                    .detail("a concurrent write created the same thing; read again and retry")
            }
            Error::Database(_) if status == StatusCode::FORBIDDEN => Problem::from_status(status)
                .detail("the write reaches outside your territories, chains or customers"),
            Error::Database(_) if status == StatusCode::SERVICE_UNAVAILABLE => Problem {
                internal: Some(self.to_string()),
                ..Problem::from_status(status).detail("the database is unreachable; retry later")
            },
            Error::Database(_) | Error::Internal(_) => Problem {
                // `{:#}` keeps anyhow's cause chain on one line.
                internal: Some(format!("{self:#}")),
                ..Problem::from_status(status)
                    .detail("an internal error occurred; quote the correlation id when reporting it")
            },
        }
    }
}

/// A row-level security policy refused a write (insufficient_privilege): the caller is
/// authenticated but the row is outside their scope.
fn outside_scope(error: &sqlx::Error) -> bool {
    error.as_database_error().and_then(|e| e.code()).is_some_and(|code| code == "42501")
}

/// A unique violation: two writes raced to create the same row.
fn concurrent_duplicate(error: &sqlx::Error) -> bool {
    error.as_database_error().is_some_and(|e| e.is_unique_violation())
}

/// Errors that mean "the database is not there right now" rather than "this request is wrong".
fn database_unavailable(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_))
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let problem = self.to_problem();
        let mut response = (problem.status_code(), axum::Extension(problem)).into_response();
        let header = match &self {
            Error::PreconditionFailed { etag: Some(etag), .. } => {
                Some((axum::http::header::ETAG, etag.clone()))
            }
            Error::Unauthorized(reason) => {
                Some((axum::http::header::WWW_AUTHENTICATE, www_authenticate(reason)))
            }
            _ => None,
        };
        if let Some((name, value)) = header
            && let Ok(value) = axum::http::HeaderValue::from_str(&value)
        {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

/// RFC 6750: no error code when the token is missing, `invalid_token` otherwise.
fn www_authenticate(reason: &crate::auth::AuthError) -> String {
    match reason {
        crate::auth::AuthError::Missing => r#"Bearer realm="crm""#.to_owned(),
        other => {
            let description = other.to_string().replace(['"', '\\'], "'");
            format!(r#"Bearer realm="crm", error="invalid_token", error_description="{description}""#)
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_cause_from_the_client() {
        let problem = Error::Internal(anyhow::anyhow!("password=hunter2 in connection string")).to_problem();
        let body = serde_json::to_string(&problem).unwrap();
        assert!(!body.contains("hunter2"), "{body}");
        assert_eq!(problem.status, 500);
        assert!(problem.internal.unwrap().contains("hunter2"));
    }

    #[test]
    fn a_pool_timeout_is_service_unavailable_not_an_internal_error() {
        assert_eq!(Error::Database(sqlx::Error::PoolTimedOut).status_code(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            Error::Database(sqlx::Error::RowNotFound).status_code(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn validation_problems_name_each_value_by_pointer() {
        let problem =
            Error::Unprocessable(vec![FieldError::new("/a", "bad"), FieldError::new("/b/0", "worse")])
                .to_problem();
        let json = serde_json::to_value(&problem).unwrap();
        assert_eq!(json["type"], problem_type::VALIDATION_FAILED);
        assert_eq!(json["status"], 422);
        assert_eq!(json["errors"][1]["pointer"], "/b/0");
    }

    #[test]
    fn plain_statuses_use_about_blank_with_the_status_phrase() {
        let json = serde_json::to_value(Problem::from_status(StatusCode::METHOD_NOT_ALLOWED)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "about:blank", "title": "Method Not Allowed", "status": 405})
        );
    }
}
