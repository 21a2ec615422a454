//! The `limit` and `cursor` parameters of paged lists, read the same way by every list.

use serde_json::Value;

use crate::domain::cursor;
use crate::error::FieldError;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

/// The page size asked for; out of range is an error naming `limit`.
pub fn limit(requested: Option<i64>, errors: &mut Vec<FieldError>) -> i64 {
    let limit = requested.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        errors.push(FieldError::parameter("limit", format!("between 1 and {MAX_LIMIT}")));
    }
    limit
}

/// Where the previous page of `list` ended, from its `cursor`: a cursor that does not decode,
/// belongs to another list or set of `filters`, or whose key `parse` rejects is an error naming
/// `cursor`.
pub fn after<T>(
    token: Option<&str>,
    list: &str,
    filters: &str,
    parse: impl FnOnce(&Value) -> Option<T>,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    let decoded = cursor::decode(token?, list, filters)
        .map_err(|e| e.to_string())
        .and_then(|key| parse(&key).ok_or_else(|| "the cursor is malformed".to_owned()));
    decoded.map_err(|e| errors.push(FieldError::parameter("cursor", e))).ok()
}

/// The cursor of the next page, when the query fetched more than `limit` rows (the extra row is
/// dropped from `rows`).
pub fn next<T>(
    rows: &mut Vec<T>,
    limit: i64,
    list: &str,
    filters: &str,
    key: impl Fn(&T) -> Value,
) -> Option<String> {
    if rows.len() as i64 <= limit {
        return None;
    }
    rows.truncate(limit as usize);
    rows.last().map(|row| cursor::encode(list, filters, key(row)))
}
