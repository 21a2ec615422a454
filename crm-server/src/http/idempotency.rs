//! `Idempotency-Key` on POST and PATCH (IETF httpapi draft semantics).
//!
//! The [`fingerprint`] middleware reads the key and hashes the body of every POST and PATCH that
//! carries one; the handler takes an [`Idempotency`] and, inside its own transaction:
//!
//! ```text
//! if let Some(replay) = idempotency.replay(&mut tx, &caller).await? { return Ok(replay) }
//! ... the request's changes ...
//! idempotency.commit(tx, &caller, reply).await      // stores the reply, then commits
//! ```
//!
//! So the changes and the stored reply commit together: a retry finds both or neither, and a
//! request is applied at most once per key. A retry while the first request is still in flight is
//! a 409 (an advisory lock the first holds until it commits), the same key with another body a
//! 422, and a retry after completion gets the stored status, headers and body again, marked
//! `Idempotent-Replayed: true`. Only successful outcomes are stored: an error rolls the transaction
//! back, and a retry runs the request again. Keys expire after `--idempotency-ttl` and are purged
//! by the background jobs.
//!
//! The body's fingerprint is taken over its canonical JSON (members sorted by name, no
//! whitespace), so a client that re-encodes an equal body for its retry (another member order,
//! pretty-printed) gets the stored reply; a body that is not JSON is fingerprinted as its bytes.
//!
//! A stored outcome is bound to the caller's scope as well as to its subject: it is replayed only
//! to a token with the same roles, territories and chains. A retry with the same subject but other
//! access rights (narrower after a role change, say) is refused with a 422 rather than handed a
//! reply it might not be allowed to read, and rather than run again and perhaps create twice.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::{Postgres, Transaction};

use crate::db::idempotency::{self, KeyRef, Stored};
use crate::error::{Error, FieldError};
use crate::http::caller::Caller;
use crate::state::AppState;

pub const HEADER: &str = "idempotency-key";
/// Set on a replayed response.
pub const REPLAYED: &str = "idempotent-replayed";
const MAX_KEY_LEN: usize = 255;

/// `Idempotency-Key` as an optional header parameter, for the OpenAPI document.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct OptionalKey {
    /// Makes a retry safe: the first request's outcome is stored for 24 hours and replayed to
    /// retries with the same key and body (`Idempotent-Replayed: true`). A structured-field
    /// string (`"8e03978e-..."`) or bare visible ASCII, 1 to 255 characters.
    #[serde(rename = "Idempotency-Key")]
    #[param(pattern = r#"^([!#-\[\]-~]{1,255}|"([ !#-\[\]-~]|\\["\\]){1,255}")$"#)]
    pub key: Option<String>,
}

/// `Idempotency-Key` as a required header parameter, for the OpenAPI document.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct RequiredKey {
    /// Required: a key unique to this request, so that a retry never creates a second one. The
    /// first request's outcome is stored for 24 hours and replayed to retries with the same key
    /// and body (`Idempotent-Replayed: true`). A structured-field string or bare visible ASCII, 1
    /// to 255 characters.
    #[serde(rename = "Idempotency-Key")]
    #[param(pattern = r#"^([!#-\[\]-~]{1,255}|"([ !#-\[\]-~]|\\["\\]){1,255}")$"#)]
    pub key: String,
}

/// The key and body fingerprint of the current request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Keyed {
    key: String,
    /// `POST /samples`: method and concrete path.
    request: String,
    fingerprint: [u8; 32],
}

/// The value of an `Idempotency-Key` header: a structured-field string (`"8e03978e-..."`), or,
/// as many clients send it, the bare text. 1 to 255 visible ASCII characters.
pub fn parse_key(value: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(value).map_err(|_| "the Idempotency-Key is not ASCII".to_owned())?;
    let key = match text.strip_prefix('"') {
        Some(rest) => {
            let inner = rest.strip_suffix('"').ok_or("the Idempotency-Key string is not closed")?;
            let mut key = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some(escaped @ ('"' | '\\')) => key.push(escaped),
                        _ => return Err("the Idempotency-Key has a bad escape".into()),
                    },
                    '"' => return Err("the Idempotency-Key has an unescaped quote".into()),
                    c if (' '..='~').contains(&c) => key.push(c),
                    _ => return Err("the Idempotency-Key has a character outside visible ASCII".into()),
                }
            }
            key
        }
        None if text.chars().all(|c| ('!'..='~').contains(&c) && c != '"' && c != '\\') => text.to_owned(),
        None => {
            return Err("the Idempotency-Key must be a quoted string or visible ASCII without spaces".into());
        }
    };
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(format!("the Idempotency-Key must have 1 to {MAX_KEY_LEN} characters"));
    }
    Ok(key)
}

fn bad_key(detail: String) -> Error {
    Error::BadRequest {
        detail: detail.clone(),
        errors: vec![FieldError::parameter("Idempotency-Key", detail)],
    }
}

/// Middleware: for a POST or PATCH with an `Idempotency-Key`, checks the key and puts it, with a
/// hash of the body, into the request for [`Idempotency`]. The body is already bounded by the
/// body limit.
pub async fn fingerprint(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !matches!(*req.method(), Method::POST | Method::PATCH) {
        return next.run(req).await;
    }
    let Some(value) = req.headers().get(HEADER) else {
        return next.run(req).await;
    };
    let key = match parse_key(value.as_bytes()) {
        Ok(key) => key,
        Err(detail) => return bad_key(detail).into_response(),
    };
    let request = format!("{} {}", req.method(), req.uri().path());
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, state.http.body_limit).await {
        Ok(bytes) => bytes,
        Err(_) => return Error::PayloadTooLarge { limit: state.http.body_limit }.into_response(),
    };
    let fingerprint = body_fingerprint(&bytes);
    let mut req = Request::from_parts(parts, Body::from(bytes));
    req.extensions_mut().insert(Keyed { key, request, fingerprint });
    next.run(req).await
}

/// SHA-256 of the body's canonical JSON, or of its bytes when it is not JSON.
fn body_fingerprint(bytes: &[u8]) -> [u8; 32] {
    let mut canonical = Vec::with_capacity(bytes.len());
    let hashed: &[u8] = match serde_json::from_slice::<Value>(bytes) {
        Ok(value) if write_canonical(&value, &mut canonical).is_ok() => &canonical,
        _ => bytes,
    };
    let mut fingerprint = [0u8; 32];
    fingerprint.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, hashed).as_ref());
    fingerprint
}

/// `value` as JSON with every object's members sorted by name and no whitespace. (Not the whole
/// of RFC 8785: numbers keep the form serde_json reads them in, so `1` and `1.0` differ.)
fn write_canonical(value: &Value, out: &mut Vec<u8>) -> serde_json::Result<()> {
    match value {
        Value::Object(members) => {
            let mut members: Vec<(&String, &Value)> = members.iter().collect();
            members.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (name, member)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, name)?;
                out.push(b':');
                write_canonical(member, out)?;
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out)?;
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar)?,
    }
    Ok(())
}

/// What a handler answers, in a form that can be stored and replayed.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// JSON.
    pub body: Bytes,
}

impl Reply {
    pub fn json(
        status: StatusCode,
        headers: impl IntoIterator<Item = (HeaderName, HeaderValue)>,
        body: &impl Serialize,
    ) -> Result<Reply, Error> {
        let body = serde_json::to_vec(body).map_err(anyhow::Error::from)?;
        Ok(Reply { status, headers: headers.into_iter().collect(), body: body.into() })
    }

    /// `Location: <path>`.
    pub fn location(path: String) -> Result<(HeaderName, HeaderValue), Error> {
        Ok((header::LOCATION, HeaderValue::try_from(path).map_err(anyhow::Error::from)?))
    }

    fn to_stored(&self, fingerprint: &[u8; 32], scope: &[u8; 32]) -> Stored {
        let headers: Vec<Value> = self
            .headers
            .iter()
            .filter_map(|(name, value)| Some(json!([name.as_str(), value.to_str().ok()?])))
            .collect();
        Stored {
            fingerprint: fingerprint.to_vec(),
            scope_fingerprint: Some(scope.to_vec()),
            status: self.status.as_u16() as i16,
            headers: Value::Array(headers),
            body: self.body.to_vec(),
        }
    }

    fn from_stored(stored: Stored) -> Result<Reply, Error> {
        let status = u16::try_from(stored.status)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .ok_or_else(|| anyhow::anyhow!("a stored idempotent reply has status {}", stored.status))?;
        let headers = stored
            .headers
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|pair| {
                let name = HeaderName::from_bytes(pair.get(0)?.as_str()?.as_bytes()).ok()?;
                Some((name, HeaderValue::from_str(pair.get(1)?.as_str()?).ok()?))
            })
            .chain([(HeaderName::from_static(REPLAYED), HeaderValue::from_static("true"))])
            .collect();
        Ok(Reply { status, headers, body: stored.body.into() })
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = (self.status, Body::from(self.body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        response
    }
}

/// The request's idempotency key, if it carries one, and how long its outcome is kept.
#[derive(Debug, Clone)]
pub struct Idempotency {
    keyed: Option<Keyed>,
    ttl: time::Duration,
}

impl FromRequestParts<AppState> for Idempotency {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let ttl = time::Duration::try_from(state.http.idempotency_ttl).map_err(anyhow::Error::from)?;
        Ok(Idempotency { keyed: parts.extensions.get::<Keyed>().cloned(), ttl })
    }
}

impl Idempotency {
    /// 400 unless the request has a key (routes that create things a retry must not duplicate).
    pub fn require(&self) -> Result<(), Error> {
        match self.keyed {
            Some(_) => Ok(()),
            None => Err(bad_key("this request needs an Idempotency-Key header".into())),
        }
    }

    fn key<'a>(keyed: &'a Keyed, caller: &'a Caller) -> KeyRef<'a> {
        KeyRef { owner: &caller.identity.subject, request: &keyed.request, key: &keyed.key }
    }

    /// The stored reply when this key has completed before; `None` to go ahead. Holds the key's
    /// lock until `tx` ends.
    pub async fn replay(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        caller: &Caller,
    ) -> Result<Option<Reply>, Error> {
        let Some(keyed) = &self.keyed else {
            return Ok(None);
        };
        let key = Self::key(keyed, caller);
        if !idempotency::try_lock(tx, &key).await? {
            return Err(Error::Conflict(
                "a request with this Idempotency-Key is still being processed; retry when it has finished"
                    .into(),
            ));
        }
        match idempotency::find(tx, &key).await? {
            None => Ok(None),
            Some(stored) if stored.scope_fingerprint.as_deref() != Some(&caller.scope.fingerprint()[..]) => {
                Err(Error::Unprocessable(vec![FieldError::parameter(
                    "Idempotency-Key",
                    "this key was used by a token with other access rights (roles, territories or chains); \
                     its outcome is replayed only to the same access rights: read the resource instead, \
                     or use a new key for a new request",
                )]))
            }
            Some(stored) if stored.fingerprint != keyed.fingerprint => {
                Err(Error::Unprocessable(vec![FieldError::parameter(
                    "Idempotency-Key",
                    "this key was used with a different request body; use a new key for a new request",
                )]))
            }
            Some(stored) => Reply::from_stored(stored).map(Some),
        }
    }

    /// Stores `reply` under the key (if any) and commits `tx`.
    pub async fn commit(
        &self,
        mut tx: Transaction<'_, Postgres>,
        caller: &Caller,
        reply: Reply,
    ) -> Result<Reply, Error> {
        if let Some(keyed) = &self.keyed {
            let stored = reply.to_stored(&keyed.fingerprint, &caller.scope.fingerprint());
            idempotency::store(&mut tx, &Self::key(keyed, caller), &stored, self.ttl).await?;
        }
        tx.commit().await?;
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keys_are_structured_strings_or_bare_text() {
        assert_eq!(parse_key(br#""8e03978e-40d5""#).unwrap(), "8e03978e-40d5");
        assert_eq!(parse_key(br#""a \"b\" \\ c""#).unwrap(), r#"a "b" \ c"#);
        assert_eq!(parse_key(b"8e03978e-40d5").unwrap(), "8e03978e-40d5");
        for bad in [&b""[..], b"\"\"", b"\"open", b"a b", b"\"bad \\x\"", "\"ü\"".as_bytes(), b"\"a\"b\""] {
            assert!(parse_key(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(parse_key("k".repeat(256).as_bytes()).is_err());
        assert!(parse_key("k".repeat(255).as_bytes()).is_ok());
    }

    /// Any JSON value: scalars, and arrays and objects of them, a few levels deep.
    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            (-1.0e6f64..1.0e6).prop_map(|f| json!(f)),
            "\\PC{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z]{1,3}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// `value` as a client might send it: members in reverse order, spaces and newlines around
    /// every token.
    fn reencoded(value: &Value) -> String {
        match value {
            Value::Object(members) => {
                let mut members: Vec<_> = members.iter().collect();
                members.sort_by(|a, b| b.0.cmp(a.0));
                let inner: Vec<String> = members
                    .into_iter()
                    .map(|(k, v)| format!("\n  {} :\t{} ", json!(k), reencoded(v)))
                    .collect();
                format!("{{ {} }}", inner.join(" ,"))
            }
            Value::Array(items) => {
                format!("[ {} ]", items.iter().map(reencoded).collect::<Vec<_>>().join(" , "))
            }
            scalar => scalar.to_string(),
        }
    }

    #[test]
    fn a_body_that_is_not_json_is_fingerprinted_as_its_bytes() {
        assert_ne!(body_fingerprint(b"{not json"), body_fingerprint(b"{not  json"));
        assert_eq!(body_fingerprint(b"{not json"), body_fingerprint(b"{not json"));
    }

    proptest! {
        /// An equal JSON body re-encoded (member order, whitespace) has the same fingerprint; a
        /// body with any other value has another.
        #[test]
        fn equal_json_bodies_share_a_fingerprint_and_others_do_not(value in json(), other in json()) {
            let compact = serde_json::to_vec(&value).unwrap();
            prop_assert_eq!(body_fingerprint(&compact), body_fingerprint(reencoded(&value).as_bytes()));
            if other != value {
                prop_assert_ne!(body_fingerprint(&compact), body_fingerprint(&serde_json::to_vec(&other).unwrap()));
            }
        }

        /// Any key of visible ASCII survives quoting as a structured-field string.
        #[test]
        fn a_quoted_key_parses_back_to_itself(key in "[ -~]{1,255}") {
            let quoted = format!("\"{}\"", key.replace('\\', "\\\\").replace('"', "\\\""));
            prop_assert_eq!(parse_key(quoted.as_bytes()).unwrap(), key);
        }
    }
}
