//! Outside JSON without duplicate members: [`check_unique_members`] walks a document once
//! and refuses any object that names a member twice (`{"payload":"a","payload":"b"}`),
//! which `serde_json::Value` would otherwise accept, the last one winning. Member names
//! are compared after unescaping, so `"a"` and `"\u0061"` are the same member.
//! [`parse_value`] is that check followed by the parse into a `Value`; every entry point
//! that reads outside JSON (envelopes, request payloads, receipts, witness bodies) calls
//! one of the two. Leaves need not: they are exact RFC 8785, which has no duplicates.
//!
//! May import nothing from `catalog` (the bottom of `wire`, beside `canonical`).

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Why outside JSON is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// Not JSON, or an object names a member twice (the parser's message, which names the
    /// member and its JSON pointer).
    #[error("{0}")]
    Syntax(String),
}

/// Refuses `bytes` unless they are one JSON document whose objects each name every member
/// once.
pub fn check_unique_members(bytes: &[u8]) -> Result<(), JsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Walk {
        path: String::new(),
    }
    .deserialize(&mut de)
    .and_then(|()| de.end())
    .map_err(|e| JsonError::Syntax(e.to_string()))
}

/// [`check_unique_members`], then the parse into a `Value`.
pub fn parse_value(bytes: &[u8]) -> Result<Value, JsonError> {
    check_unique_members(bytes)?;
    serde_json::from_slice(bytes).map_err(|e| JsonError::Syntax(e.to_string()))
}

/// One value at JSON pointer `path`, walked without being built.
struct Walk {
    path: String,
}

impl<'de> DeserializeSeed<'de> for Walk {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        while seq
            .next_element_seed(Walk {
                path: format!("{}/{i}", self.path),
            })?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = format!("{}/{}", self.path, pointer_token(&key));
            let shown: String = key.chars().take(64).collect();
            if !seen.insert(key) {
                return Err(A::Error::custom(format!(
                    "duplicate field `{shown}` at {path}: a member may appear only once"
                )));
            }
            map.next_value_seed(Walk { path })?;
        }
        Ok(())
    }
}

/// A member name as a JSON pointer token (RFC 6901), at most 64 characters shown.
fn pointer_token(key: &str) -> String {
    key.chars()
        .take(64)
        .collect::<String>()
        .replace('~', "~0")
        .replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_members_are_refused_at_any_depth() {
        for (json, want) in [
            (r#"{"a":1,"b":2}"#, None),
            (r#"[{"a":1},{"a":2}]"#, None),
            (r#"{"a":{"a":1}}"#, None),
            (
                r#"{"payload":"x","payload":"y"}"#,
                Some("duplicate field `payload` at /payload"),
            ),
            (
                r#"{"a":"x","\u0061":"y"}"#,
                Some("duplicate field `a` at /a"),
            ),
            (
                r#"{"s":[{"k":1,"k":2}]}"#,
                Some("duplicate field `k` at /s/0/k"),
            ),
            (
                r#"{"c":{"dev":{},"dev":{}}}"#,
                Some("duplicate field `dev` at /c/dev"),
            ),
            (
                r#"{"a/b":1,"a/b":2}"#,
                Some("duplicate field `a/b` at /a~1b"),
            ),
            (r#"{"a":1} x"#, Some("trailing characters")),
            (r#"{"a":"#, Some("EOF")),
        ] {
            let got = check_unique_members(json.as_bytes());
            match want {
                None => assert_eq!(got, Ok(()), "{json}"),
                Some(m) => {
                    let e = got.expect_err(json).to_string();
                    assert!(e.contains(m), "{json}: {e}");
                }
            }
        }
        assert_eq!(parse_value(br#"{"a":[1]}"#).unwrap()["a"][0], 1);
    }
}
