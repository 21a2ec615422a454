//! Extractors whose every failure is one of our problems, naming what is wrong.
//!
//! - `AppJson`: malformed JSON is a 400 (with line and column), a value of the wrong shape a 422
//!   naming its JSON pointer, a missing or wrong content type a 415, an oversized body a 413.
//! - `AppQuery`: a bad query parameter is a 400 naming the parameter.
//! - `AppPath`: a malformed path segment (an id that is not a UUID) is a 400.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use crate::error::{Error, FieldError};
use crate::state::AppState;

#[derive(Debug, Clone, Copy, Default)]
pub struct AppJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for AppJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Error> {
        if !has_json_content_type(req.headers()) {
            return Err(Error::UnsupportedMediaType(
                "expected a body with Content-Type: application/json".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Error::PayloadTooLarge { limit: state.http.body_limit }
            } else {
                Error::BadRequest {
                    detail: format!("the request body could not be read: {rejection}"),
                    errors: vec![],
                }
            }
        })?;
        parse(&bytes).map(AppJson)
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct AppQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for AppQuery<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        parse_query(parts.uri.query().unwrap_or("")).map(AppQuery)
    }
}

pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, Error> {
    if let Some((parameter, _)) = form_urlencoded::parse(query.as_bytes()).find(|(_, v)| v.contains('\0')) {
        let detail = "must not contain the NUL character";
        return Err(Error::BadRequest {
            detail: format!("the query parameter `{parameter}` is invalid: {detail}"),
            errors: vec![FieldError::parameter(parameter, detail)],
        });
    }
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let parameter = e.path().to_string();
        let detail = e.into_inner().to_string();
        Error::BadRequest {
            detail: format!("the query parameter `{parameter}` is invalid: {detail}"),
            errors: vec![crate::error::FieldError::parameter(parameter, detail)],
        }
    })
}

#[derive(Debug, Clone, Copy, Default)]
pub struct AppPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for AppPath<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(AppPath(value)),
            Err(rejection) => Err(Error::BadRequest { detail: rejection.body_text(), errors: vec![] }),
        }
    }
}

/// `application/json`, or any `application/*+json`, with optional parameters.
fn has_json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    // JSON may carry NUL as `\u0000`; PostgreSQL stores it neither in text nor in jsonb. Only a
    // body that might hold one is walked.
    if bytes.windows(5).any(|w| w == b"u0000")
        && let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes)
        && let Some(pointer) = nul_at(&value, String::new())
    {
        return Err(Error::Unprocessable(vec![FieldError::new(
            pointer,
            "must not contain the NUL character",
        )]));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let pointer = pointer(e.path(), &e.inner().to_string());
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                Error::Unprocessable(vec![FieldError::new(pointer, inner.to_string())])
            }
            _ => Error::BadRequest { detail: format!("the body is not valid JSON: {inner}"), errors: vec![] },
        }
    })?;
    de.end().map_err(|e| Error::BadRequest {
        detail: format!("the body is not valid JSON: {e}"),
        errors: vec![],
    })?;
    Ok(value)
}

/// The pointer of the first string (or member name) holding a NUL character.
fn nul_at(value: &serde_json::Value, at: String) -> Option<String> {
    use serde_json::Value;
    let escape = |key: &str| key.replace('~', "~0").replace('/', "~1");
    match value {
        Value::String(s) if s.contains('\0') => Some(at),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| nul_at(v, format!("{at}/{i}"))),
        Value::Object(members) => members.iter().find_map(|(k, v)| {
            let here = format!("{at}/{}", escape(k));
            if k.contains('\0') { Some(here) } else { nul_at(v, here) }
        }),
        _ => None,
    }
}

/// What a merge-patch `PATCH` asks the resource to become: `patch` (RFC 7396) applied to the
/// current writable form, read back as `T`, so that the result obeys the same rules as a create.
pub fn merged<T: serde::Serialize + DeserializeOwned>(
    current: &T,
    patch: &serde_json::Value,
) -> Result<T, Error> {
    let mut target = serde_json::to_value(current).map_err(anyhow::Error::from)?;
    crate::domain::merge_patch::apply(&mut target, patch);
    from_value(target)
}

/// Reads a JSON value (e.g. a merged patch) as `T`; a value of the wrong shape is a 422 naming its
/// pointer.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, Error> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let detail = e.inner().to_string();
        Error::Unprocessable(vec![FieldError::new(pointer(e.path(), &detail), detail)])
    })
}

/// serde_path_to_error's path as an RFC 6901 JSON pointer. serde reports a missing member at its
/// parent; the pointer then names the member itself (from the message, "missing field `x`").
fn pointer(path: &serde_path_to_error::Path, detail: &str) -> String {
    use serde_path_to_error::Segment;
    let escape = |key: &str| key.replace('~', "~0").replace('/', "~1");
    let mut out = String::new();
    for segment in path.iter() {
        out.push('/');
        match segment {
            Segment::Seq { index } => out.push_str(&index.to_string()),
            Segment::Map { key } | Segment::Enum { variant: key } => out.push_str(&escape(key)),
            Segment::Unknown => out.push('-'),
        }
    }
    if let Some(member) = detail.strip_prefix("missing field `").and_then(|rest| rest.split('`').next()) {
        out.push('/');
        out.push_str(&escape(member));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue};

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Order {
        items: Vec<Item>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Item {
        #[serde(rename = "a/b~c")]
        odd: Option<u32>,
        quantity: u32,
    }

    #[test]
    fn a_value_of_the_wrong_shape_is_named_by_its_pointer() {
        let err = parse::<Order>(br#"{"items": [{"quantity": 1}, {"quantity": -1}]}"#).unwrap_err();
        let Error::Unprocessable(errors) = err else { panic!("{err:?}") };
        assert_eq!(errors[0].pointer.as_deref(), Some("/items/1/quantity"));
    }

    #[test]
    fn unknown_and_missing_members_are_named_themselves() {
        let err = parse::<Order>(br#"{}"#).unwrap_err();
        let Error::Unprocessable(errors) = err else { panic!("{err:?}") };
        assert_eq!(errors[0].pointer.as_deref(), Some("/items"));
        let err = parse::<Order>(br#"{"items": [], "colour": "red"}"#).unwrap_err();
        let Error::Unprocessable(errors) = err else { panic!("{err:?}") };
        assert_eq!(errors[0].pointer.as_deref(), Some("/colour"));
    }

    #[test]
    fn a_nul_character_is_refused_where_it_is() {
        let err = parse::<Order>(br#"{"items": [{"quantity": 1, "a/b~c": "x\u0000"}]}"#).unwrap_err();
        let Error::Unprocessable(errors) = err else { panic!("{err:?}") };
        assert_eq!(errors[0].pointer.as_deref(), Some("/items/0/a~1b~0c"));
        type Strings = std::collections::BTreeMap<String, String>;
        assert_eq!(parse::<Strings>(br#"{"k": "\\u0000"}"#).unwrap()["k"], "\\u0000", "an escaped backslash");
        assert!(parse::<Strings>(br#"{"k\u0000": ""}"#).is_err(), "in a member name");
        let err = parse_query::<std::collections::BTreeMap<String, String>>("q=a%00b").unwrap_err();
        assert_eq!(err.status_code(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn pointer_segments_are_escaped() {
        let err = parse::<Order>(br#"{"items": [{"quantity": 1, "a/b~c": "x"}]}"#).unwrap_err();
        let Error::Unprocessable(errors) = err else { panic!("{err:?}") };
        assert_eq!(errors[0].pointer.as_deref(), Some("/items/0/a~1b~0c"));
    }

    #[test]
    fn malformed_json_is_a_bad_request_with_its_position() {
        let err = parse::<Order>(b"{\"items\": [").unwrap_err();
        assert_eq!(err.status_code(), StatusCode::BAD_REQUEST);
        assert!(err.to_string().contains("line 1"), "{err}");
        let err = parse::<Order>(br#"{"items": []} trailing"#).unwrap_err();
        assert_eq!(err.status_code(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn json_content_types_are_recognised() {
        let check = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(v));
            has_json_content_type(&h)
        };
        assert!(check("application/json"));
        assert!(check("Application/JSON; charset=utf-8"));
        assert!(check("application/merge-patch+json"));
        assert!(!check("text/plain"));
        assert!(!check("application/jsonx"));
        assert!(!has_json_content_type(&HeaderMap::new()));
    }
}
