//! Opaque keyset cursors for paged lists.
//!
//! A cursor carries the sort key of the last row served, the name of the list and sort it
//! belongs to, and a fingerprint of the filters, base64url-encoded JSON. It is opaque to clients
//! but not secret: a forged cursor can only move the start of a page the caller may read anyway.
//! Anything that does not decode, or belongs to another list, sort or filter set, is refused, so
//! a tampered cursor is a 400 and never reaches SQL.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest cursor accepted; real ones are far shorter.
const MAX_LEN: usize = 1024;

#[derive(Serialize, Deserialize)]
struct Wire {
    /// Which list and sort order.
    l: String,
    /// Fingerprint of the filters.
    f: String,
    /// The sort key of the last row served.
    k: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("the cursor is malformed; use nextCursor exactly as returned")]
    Malformed,
    #[error("the cursor belongs to another list, sort order or set of filters")]
    Mismatch,
}

pub fn encode(list: &str, filters: &str, key: Value) -> String {
    let wire = Wire { l: list.to_owned(), f: fingerprint(filters), k: key };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&wire).unwrap_or_default())
}

/// The key of a cursor made by [`encode`] with the same `list` and `filters`.
pub fn decode(token: &str, list: &str, filters: &str) -> Result<Value, CursorError> {
    if token.len() > MAX_LEN {
        return Err(CursorError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| CursorError::Malformed)?;
    let wire: Wire = serde_json::from_slice(&bytes).map_err(|_| CursorError::Malformed)?;
    if wire.l != list || wire.f != fingerprint(filters) {
        return Err(CursorError::Mismatch);
    }
    Ok(wire.k)
}

/// FNV-1a, 64 bit: stable across processes and releases, unlike std's hasher.
fn fingerprint(text: &str) -> String {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn a_cursor_round_trips_for_its_own_list_and_filters() {
        let token = encode("customers:name", "territory=BY", json!(["zum löwen", "0193a1b2"]));
        assert_eq!(
            decode(&token, "customers:name", "territory=BY").unwrap(),
            json!(["zum löwen", "0193a1b2"])
        );
    }

    #[test]
    fn a_cursor_of_another_list_or_filter_set_is_refused() {
        let token = encode("customers:name", "territory=BY", json!([1]));
        assert_eq!(decode(&token, "customers:renewal_date", "territory=BY"), Err(CursorError::Mismatch));
        assert_eq!(decode(&token, "customers:name", "territory=NRW"), Err(CursorError::Mismatch));
    }

    #[test]
    fn garbage_is_malformed() {
        for token in ["", "!!!", "e30", &"A".repeat(2000)] {
            assert_eq!(decode(token, "l", ""), Err(CursorError::Malformed), "{token}");
        }
    }

    proptest! {
        /// No tampering with a cursor makes decode panic; a changed cursor never decodes to the
        /// original key; and what a changed cursor does decode to is a key a cursor of the same
        /// list and filters could carry anyway (so it can only move the start of a page).
        #[test]
        fn tampered_cursors_are_refused_or_harmless(key in "[a-z0-9]{0,20}", position in 0usize..64, byte in any::<u8>()) {
            let token = encode("l", "f", json!([key]));
            let mut bytes = token.clone().into_bytes();
            let position = position % bytes.len();
            bytes[position] = byte;
            let Ok(tampered) = String::from_utf8(bytes) else { return Ok(()) };
            match decode(&tampered, "l", "f") {
                Err(_) => prop_assert_ne!(&tampered, &token, "the cursor as issued decodes"),
                Ok(decoded) if tampered == token => prop_assert_eq!(decoded, json!([key])),
                Ok(decoded) => {
                    prop_assert_ne!(&decoded, &json!([key]), "a changed cursor says something else");
                    prop_assert_eq!(decode(&encode("l", "f", decoded.clone()), "l", "f"), Ok(decoded));
                }
            }
        }
    }
}
