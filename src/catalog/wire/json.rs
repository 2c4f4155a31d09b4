//! Outside JSON without duplicate members: [`parse_value`] parses a document into a
//! `Value` in one pass and refuses any object that names a member twice
//! (`{"payload":"a","payload":"b"}`), which `serde_json::from_slice::<Value>` would
//! accept, the last one winning. Member names are compared after unescaping, so `"a"` and
//! `"\u0061"` are the same member. Every entry point that reads outside JSON (envelopes,
//! request payloads) parses with it. Leaves need not: they are exact RFC 8785, which has no
//! duplicates.
//!
//! May import nothing from `catalog` (the bottom of `wire`, beside `canonical`).

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Why outside JSON is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// Not JSON (the parser's message).
    #[error("{0}")]
    Syntax(String),
    /// An object names a member twice (the message names the member and its JSON pointer).
    #[error("{0}")]
    Duplicate(String),
}

/// Marks the parser's message of a duplicate member, so [`parse_value`] can tell it from
/// a syntax error after serde has wrapped it with a position.
const DUPLICATE: &str = "duplicate field `";

/// Parses `bytes` into a `Value`, refusing a document with a duplicate member anywhere.
pub fn parse_value(bytes: &[u8]) -> Result<Value, JsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Build { at: Step::Root }
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| {
            let message = e.to_string();
            if message.starts_with(DUPLICATE) {
                JsonError::Duplicate(message)
            } else {
                JsonError::Syntax(message)
            }
        })
}

/// The value at a JSON pointer, built as it is read. The pointer is kept as a chain of
/// borrowed steps and written out only for a duplicate's message: formatting it for
/// every member and element cost a few percent of a submission's CPU.
struct Build<'a> {
    at: Step<'a>,
}

/// One step of the pointer from the document's root to a value.
#[derive(Clone, Copy)]
enum Step<'a> {
    Root,
    Member(&'a Step<'a>, &'a str),
    Element(&'a Step<'a>, usize),
}

impl Step<'_> {
    /// The JSON pointer (RFC 6901) of this step, e.g. `/payload/evidence/0`.
    fn pointer(&self) -> String {
        match self {
            Step::Root => String::new(),
            Step::Member(parent, key) => format!("{}/{}", parent.pointer(), pointer_token(key)),
            Step::Element(parent, i) => format!("{}/{i}", parent.pointer()),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Build<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Build<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::from(n))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::from(n))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(Value::from(n))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Build {
            at: Step::Element(&self.at, items.len()),
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if members.contains_key(&key) {
                let shown: String = key.chars().take(64).collect();
                let path = Step::Member(&self.at, &key).pointer();
                return Err(A::Error::custom(format!(
                    "{DUPLICATE}{shown}` at {path}: a member may appear only once"
                )));
            }
            let value = map.next_value_seed(Build {
                at: Step::Member(&self.at, &key),
            })?;
            members.insert(key, value);
        }
        Ok(Value::Object(members))
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
            (
                r#"{"x":[1,{"~":1,"~":2}]}"#,
                Some("duplicate field `~` at /x/1/~0"),
            ),
            (r#"{"a":1} x"#, Some("trailing characters")),
            (r#"{"a":"#, Some("EOF")),
        ] {
            let got = parse_value(json.as_bytes()).map(drop);
            match want {
                None => assert_eq!(got, Ok(()), "{json}"),
                Some(m) => {
                    let e = got.expect_err(json).to_string();
                    assert!(e.contains(m), "{json}: {e}");
                }
            }
        }
        assert_eq!(parse_value(br#"{"a":[1]}"#).unwrap()["a"][0], 1);
        // The value is the one serde_json builds, numbers, escapes and nesting included.
        let doc =
            br#"{"n":-1,"u":18446744073709551615,"f":1.5,"s":"\u00e9\n","z":null,"b":[true,{}]}"#;
        let plain: Value = serde_json::from_slice(doc).unwrap();
        assert_eq!(parse_value(doc).unwrap(), plain);
        assert!(matches!(
            parse_value(b"{\"a\":1,\"a\":1}"),
            Err(JsonError::Duplicate(_))
        ));
        assert!(matches!(parse_value(b"{\"a\":"), Err(JsonError::Syntax(_))));
    }
}
