//! Reading a JSON body's top-level string fields the way the gateway's Go
//! providers read them, so the namespace ext-authz checks is the one they
//! act on.
//!
//! Go's `encoding/json`, decoding into a struct:
//! * matches object keys to field names case-insensitively, with Unicode
//!   simple folding: `Namespace`, `NAMESPACE` and `nameſpace` (long s,
//!   U+017F) all set the `namespace` field, and `K` (Kelvin sign, U+212A)
//!   folds to `k`;
//! * lets the last of duplicate keys win;
//! * leaves a field unchanged for `null`;
//! * fails on a non-string value for a string field, and on trailing data.
//!
//! We collect *every* value whose key folds to a wanted field, and refuse
//! (rather than pick) when they differ, so no ordering question remains.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

/// The wanted top-level fields of one JSON object.
#[derive(Debug, Default)]
pub(crate) struct GoObject {
    /// Folded field name to every non-null value seen for it, in order.
    fields: BTreeMap<&'static str, Vec<Value>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum GoJsonError {
    #[error("the body is not a single JSON object")]
    NotAnObject,
    #[error("a field is not a string")]
    NotAString,
    #[error("a field is given twice with different values")]
    Conflicting,
}

impl GoObject {
    /// The field's string value; `None` when absent or null.
    pub(crate) fn string(&self, field: &str) -> Result<Option<String>, GoJsonError> {
        let Some(values) = self.fields.get(field) else {
            return Ok(None);
        };
        let mut out: Option<&str> = None;
        for v in values {
            let Value::String(s) = v else {
                return Err(GoJsonError::NotAString);
            };
            match out {
                Some(prev) if prev != s => return Err(GoJsonError::Conflicting),
                _ => out = Some(s),
            }
        }
        Ok(out.map(str::to_owned))
    }
}

/// Parse `body` as one JSON object and keep the values of `wanted` (field
/// names in lower-case ASCII).
pub(crate) fn parse(body: &[u8], wanted: &[&'static str]) -> Result<GoObject, GoJsonError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let object = Seed { wanted }
        .deserialize(&mut de)
        .map_err(|_| GoJsonError::NotAnObject)?;
    de.end().map_err(|_| GoJsonError::NotAnObject)?;
    Ok(object)
}

struct Seed<'w> {
    wanted: &'w [&'static str],
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = GoObject;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<GoObject, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = GoObject;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<GoObject, A::Error> {
        let mut object = GoObject::default();
        while let Some(key) = map.next_key::<String>()? {
            match self.wanted.iter().find(|w| go_fold_eq(&key, w)) {
                Some(field) => {
                    let value: Value = map.next_value()?;
                    if !value.is_null() {
                        object.fields.entry(field).or_default().push(value);
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(object)
    }
}

/// Does `key` equal `field` (lower-case ASCII) under Go's folding? The only
/// non-ASCII characters that fold to ASCII letters are `ſ` (to `s`) and the
/// Kelvin sign (to `k`).
fn go_fold_eq(key: &str, field: &str) -> bool {
    let mut k = key.chars().map(|c| match c {
        '\u{017F}' => 's',
        '\u{212A}' => 'k',
        c => c.to_ascii_lowercase(),
    });
    field.chars().all(|f| k.next() == Some(f)) && k.next().is_none()
}

#[cfg(test)]
mod tests;
