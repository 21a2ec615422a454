//! Integers in request bodies as JSON Schema counts them: `3` and `3.0` are the same integer
//! (JSON Schema 2020-12, section 6.1.1, on `"type": "integer"`), while serde reads `3.0` only
//! into a float. Members the document declares `integer` read through these functions, so that
//! a value the document admits is never refused for its spelling.

use serde::de::{self, Deserializer, Visitor};
use std::fmt;
use std::marker::PhantomData;

/// For `#[serde(deserialize_with = "integral::exact")]`.
pub fn exact<'de, D: Deserializer<'de>, T: TryFrom<i64>>(deserializer: D) -> Result<T, D::Error> {
    deserializer.deserialize_any(Integral(PhantomData))
}

/// For `#[serde(default, deserialize_with = "integral::optional")]`.
pub fn optional<'de, D: Deserializer<'de>, T: TryFrom<i64>>(deserializer: D) -> Result<Option<T>, D::Error> {
    deserializer.deserialize_option(Optional(PhantomData))
}

struct Integral<T>(PhantomData<T>);

impl<T: TryFrom<i64>> Visitor<'_> for Integral<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &"an integer in range"))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        let v = i64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))?;
        self.visit_i64(v)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        // Exactly representable as i64: finite, whole, and within ±2^63.
        if v.fract() == 0.0 && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&v) {
            self.visit_i64(v as i64)
        } else {
            Err(E::invalid_value(de::Unexpected::Float(v), &self))
        }
    }
}

struct Optional<T>(PhantomData<T>);

impl<'de, T: TryFrom<i64>> Visitor<'de> for Optional<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer or null")
    }

    fn visit_none<E>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_unit<E>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<T>, D::Error> {
        exact(deserializer).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Counts {
        #[serde(deserialize_with = "exact")]
        n: u8,
        #[serde(default, deserialize_with = "optional")]
        m: Option<i64>,
    }

    fn parse(text: &str) -> Result<Counts, serde_json::Error> {
        serde_json::from_str(text)
    }

    #[test]
    fn whole_numbers_in_any_spelling_are_integers() {
        assert_eq!(parse(r#"{"n": 3, "m": 4.0}"#).unwrap(), Counts { n: 3, m: Some(4) });
        assert_eq!(parse(r#"{"n": 3.0, "m": null}"#).unwrap(), Counts { n: 3, m: None });
        assert_eq!(parse(r#"{"n": 1e2}"#).unwrap(), Counts { n: 100, m: None });
    }

    #[test]
    fn fractions_and_values_out_of_range_are_refused() {
        for text in
            [r#"{"n": 3.5}"#, r#"{"n": 256}"#, r#"{"n": -1}"#, r#"{"n": "3"}"#, r#"{"n": 1, "m": 1e300}"#]
        {
            assert!(parse(text).is_err(), "{text}");
        }
    }
}
