//! Optimistic concurrency and conditional reads: strong ETags, `If-Match` (RFC 9110, section
//! 13.1.1) and `If-None-Match` (section 13.1.2).
//!
//! Each resource's ETag is a letter naming the resource kind and its version number, e.g. `"c12"`
//! for version 12 of a customer and `"f7"` for its dynamic fields, so a tag of one resource never
//! matches another. Writes take the versions the client names and let the database compare them
//! in the same statement that writes, so a concurrent writer cannot slip in between.

use axum::extract::FromRequestParts;
use axum::http::HeaderValue;
use axum::http::header::{ETAG, IF_MATCH, IF_NONE_MATCH};
use axum::http::request::Parts;

use crate::error::{Error, FieldError};

/// The kinds of resources with an ETag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tagged {
    Customer,
    CustomerFields,
    Contact,
    Sample,
    /// A value of the settings registry; its version is the number of its last change, unique
    /// across the registry.
    Setting,
}

impl Tagged {
    fn letter(self) -> char {
        match self {
            Tagged::Customer => 'c',
            Tagged::CustomerFields => 'f',
            Tagged::Contact => 'p',
            Tagged::Sample => 's',
            Tagged::Setting => 'k',
        }
    }

    /// The strong ETag of `version`, quoted as in the header.
    pub fn etag(self, version: i64) -> String {
        format!("\"{}{version}\"", self.letter())
    }

    fn noun(self) -> &'static str {
        match self {
            Tagged::Customer => "customer",
            Tagged::CustomerFields => "customer's fields",
            Tagged::Contact => "contact",
            Tagged::Sample => "sample",
            Tagged::Setting => "setting",
        }
    }

    /// The 412 for a write that expected another version than `current`; it carries the current
    /// ETag so the client can re-read and retry.
    pub fn stale(self, current: i64) -> Error {
        Error::PreconditionFailed {
            detail: format!("the {} is at version {current}; read it again and retry", self.noun()),
            etag: Some(self.etag(current)),
        }
    }

    pub fn header(self, version: i64) -> (axum::http::HeaderName, HeaderValue) {
        etag_header(&self.etag(version))
    }
}

/// An `ETag` header with `etag` (quoted, as built by this module).
pub fn etag_header(etag: &str) -> (axum::http::HeaderName, HeaderValue) {
    (ETAG, HeaderValue::from_str(etag).unwrap_or(HeaderValue::from_static("\"\"")))
}

/// The request's `If-Match`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    Absent,
    /// `If-Match: *`: any current version.
    Any,
    /// The entity tags given, as sent (quoted; weak ones included, though they never match).
    Tags(Vec<String>),
}

/// What the write may assume about the current version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// Whatever version is current (no `If-Match` where none is required, or `*`).
    Any,
    /// One of these versions; empty when no given tag can match this resource.
    OneOf(Vec<i64>),
}

impl Expected {
    pub fn admits(&self, version: i64) -> bool {
        match self {
            Expected::Any => true,
            Expected::OneOf(versions) => versions.contains(&version),
        }
    }

    /// Ok when `current` is admitted, else the 412 for `resource`.
    pub fn check(&self, resource: Tagged, current: i64) -> Result<(), Error> {
        if self.admits(current) { Ok(()) } else { Err(resource.stale(current)) }
    }
}

impl IfMatch {
    /// The versions a write of `resource` may replace. `required` is the server's setting: when
    /// set, a write without `If-Match` is refused with 428.
    pub fn expected(&self, resource: Tagged, required: bool) -> Result<Expected, Error> {
        match self {
            IfMatch::Absent if required => Err(Error::PreconditionRequired(
                "this write needs If-Match with the ETag from a GET of the resource".into(),
            )),
            IfMatch::Absent | IfMatch::Any => Ok(Expected::Any),
            IfMatch::Tags(tags) => {
                Ok(Expected::OneOf(tags.iter().filter_map(|t| parse_version(resource, t)).collect()))
            }
        }
    }
}

/// The version in a strong tag of `resource`; weak tags never match under If-Match.
fn parse_version(resource: Tagged, tag: &str) -> Option<i64> {
    let inner = tag.strip_prefix('"')?.strip_suffix('"')?;
    inner.strip_prefix(resource.letter())?.parse().ok().filter(|v: &i64| *v > 0)
}

/// Splits a header value into entity tags, honouring commas inside quotes. Empty list elements
/// (`"a", , "b"`, or a value with no tag at all) are ignored, as RFC 9110 (section 5.6.1) asks of
/// recipients; `None` when the value is not a list of entity tags.
fn parse_tags(value: &str) -> Option<Vec<String>> {
    const SEPARATORS: [char; 3] = [' ', '\t', ','];
    let mut tags = Vec::new();
    let mut rest = value.trim_start_matches(SEPARATORS);
    while !rest.is_empty() {
        let weak = rest.starts_with("W/");
        let body = if weak { &rest[2..] } else { rest };
        let body = body.strip_prefix('"')?;
        let end = body.find('"')?;
        let tag = &body[..end];
        if tag.bytes().any(|b| b < 0x21 || b == 0x7f) {
            return None;
        }
        tags.push(format!("{}\"{tag}\"", if weak { "W/" } else { "" }));
        let after = body[end + 1..].trim_start_matches([' ', '\t']);
        if !after.is_empty() && !after.starts_with(',') {
            return None;
        }
        rest = after.trim_start_matches(SEPARATORS);
    }
    Some(tags)
}

/// The request's `If-None-Match`: on a read, a matching tag means the client's copy is current
/// (304); on a write, that the write must not happen (`*`: not over an existing resource).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfNoneMatch {
    Absent,
    Any,
    Tags(Vec<String>),
}

impl IfNoneMatch {
    /// Whether the header matches a resource whose current strong tag is `current` (`None`: there
    /// is no current resource). Uses weak comparison, as RFC 9110 asks for If-None-Match: `W/"k3"`
    /// matches `"k3"`.
    pub fn matches(&self, current: Option<&str>) -> bool {
        match (self, current) {
            (IfNoneMatch::Absent, _) | (_, None) => false,
            (IfNoneMatch::Any, Some(_)) => true,
            (IfNoneMatch::Tags(tags), Some(current)) => {
                tags.iter().any(|t| t.strip_prefix("W/").unwrap_or(t) == current)
            }
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfNoneMatch {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        let values: Vec<&HeaderValue> = parts.headers.get_all(IF_NONE_MATCH).iter().collect();
        if values.is_empty() {
            return Ok(IfNoneMatch::Absent);
        }
        let malformed = || Error::BadRequest {
            detail: "If-None-Match is not `*` or a list of entity tags".into(),
            errors: vec![FieldError::parameter("If-None-Match", "e.g. If-None-Match: \"k3\"")],
        };
        let mut tags = Vec::new();
        for value in values {
            let text = value.to_str().map_err(|_| malformed())?.trim();
            if text == "*" {
                return Ok(IfNoneMatch::Any);
            }
            tags.extend(parse_tags(text).ok_or_else(malformed)?);
        }
        // A field with no entity tag in it (`If-None-Match:` with an empty value) says nothing.
        Ok(if tags.is_empty() { IfNoneMatch::Absent } else { IfNoneMatch::Tags(tags) })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        let values: Vec<&HeaderValue> = parts.headers.get_all(IF_MATCH).iter().collect();
        if values.is_empty() {
            return Ok(IfMatch::Absent);
        }
        let malformed = || Error::BadRequest {
            detail: "If-Match is not `*` or a list of entity tags".into(),
            errors: vec![FieldError::parameter("If-Match", "e.g. If-Match: \"c3\"")],
        };
        let mut tags = Vec::new();
        for value in values {
            let text = value.to_str().map_err(|_| malformed())?.trim();
            if text == "*" {
                return Ok(IfMatch::Any);
            }
            tags.extend(parse_tags(text).ok_or_else(malformed)?);
        }
        // A field with no entity tag in it (`If-Match:` with an empty value) says nothing.
        Ok(if tags.is_empty() { IfMatch::Absent } else { IfMatch::Tags(tags) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tags_of_one_resource_never_match_another() {
        let tags = IfMatch::Tags(vec![Tagged::Customer.etag(3)]);
        assert_eq!(tags.expected(Tagged::Customer, true).unwrap(), Expected::OneOf(vec![3]));
        assert_eq!(tags.expected(Tagged::CustomerFields, true).unwrap(), Expected::OneOf(vec![]));
    }

    #[test]
    fn a_missing_if_match_is_refused_only_when_required() {
        let err = IfMatch::Absent.expected(Tagged::Customer, true).unwrap_err();
        assert_eq!(err.status_code(), axum::http::StatusCode::PRECONDITION_REQUIRED);
        assert_eq!(IfMatch::Absent.expected(Tagged::Customer, false).unwrap(), Expected::Any);
        assert_eq!(IfMatch::Any.expected(Tagged::Customer, true).unwrap(), Expected::Any);
    }

    #[test]
    fn weak_tags_never_match() {
        let tags = IfMatch::Tags(parse_tags("W/\"c3\", \"c4\"").unwrap());
        assert_eq!(tags.expected(Tagged::Customer, true).unwrap(), Expected::OneOf(vec![4]));
    }

    #[test]
    fn if_none_match_compares_weakly_and_star_matches_only_what_exists() {
        let tags = IfNoneMatch::Tags(parse_tags("W/\"k3\", \"k4\"").unwrap());
        assert!(tags.matches(Some("\"k3\"")) && tags.matches(Some("\"k4\"")));
        assert!(!tags.matches(Some("\"k5\"")) && !tags.matches(None));
        assert!(IfNoneMatch::Any.matches(Some("\"k1\"")) && !IfNoneMatch::Any.matches(None));
        assert!(!IfNoneMatch::Absent.matches(Some("\"k1\"")));
    }

    #[test]
    fn lists_and_commas_inside_tags_parse() {
        assert_eq!(parse_tags(r#""a,b" , "c""#).unwrap(), [r#""a,b""#, r#""c""#]);
        assert_eq!(parse_tags("c3"), None);
        assert_eq!(parse_tags(r#""c3" "c4""#), None);
        assert_eq!(parse_tags(""), Some(vec![]));
        assert_eq!(parse_tags(r#" , "c3",, ,"c4" ,"#).unwrap(), [r#""c3""#, r#""c4""#]);
    }

    proptest! {
        #[test]
        fn an_etag_matches_exactly_its_own_version(version in 1i64..i64::MAX, other in 1i64..i64::MAX) {
            let tags = IfMatch::Tags(parse_tags(&Tagged::Contact.etag(version)).unwrap());
            let expected = tags.expected(Tagged::Contact, true).unwrap();
            prop_assert!(expected.admits(version));
            prop_assert_eq!(expected.admits(other), other == version);
        }

        #[test]
        fn parsing_any_header_never_panics(text in "\\PC{0,40}") {
            let _ = parse_tags(&text);
        }
    }
}
