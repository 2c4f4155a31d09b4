//! RFC 8785 (JSON Canonicalization Scheme) encoding.
//!
//! Numbers are encoded as IEEE 754 doubles (RFC 8785 §3.2.2.3), so every integer the catalog
//! writes is bounded by [`MAX_SAFE_INTEGER`] to round-trip exactly.
//!
//! Why two encoders: `serde_jcs` is general but buffers every object member in a sorted map,
//! which made canonical encoding the largest cost of replay (a leaf is parsed and re-encoded
//! to prove it canonical). The catalog's own types declare their fields in canonical order
//! and hold only integers and strings, so plain compact `serde_json` output is usually
//! already canonical: serde_json escapes strings exactly as RFC 8785 does (`\b \t \n \f \r`,
//! other controls as lowercase `\u00xx`, nothing else). [`to_canonical_vec`] takes that
//! output only after [`already_canonical`] has proved it (member names strictly ascending,
//! integers only and short enough to be exact as doubles), and falls back to `serde_jcs`
//! otherwise, so the result is RFC 8785 either way; the fast path is an optimisation only.
//!
//! May import `catalog::error` only.

use serde::Serialize;

use crate::catalog::error::CatalogError;

/// The largest integer RFC 8785 encodes exactly (2^53 - 1).
pub const MAX_SAFE_INTEGER: u64 = 9_007_199_254_740_991;

/// Integers with at most this many digits are below 2^53, so exact as doubles.
const MAX_EXACT_DIGITS: usize = 15;

/// Encodes `value` as RFC 8785 canonical JSON bytes.
pub fn to_canonical_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CatalogError> {
    let compact = serde_json::to_vec(value).map_err(|e| CatalogError::Encoding(e.to_string()))?;
    if already_canonical(&compact) {
        return Ok(compact);
    }
    serde_jcs::to_vec(value).map_err(|e| CatalogError::Encoding(e.to_string()))
}

/// True if `bytes` are exactly the RFC 8785 encoding of `value`: the same verdict as
/// `to_canonical_vec(value)? == bytes`, without building the encoding when it matches.
///
/// Compact `serde_json` output is written into a comparator that stops at the first
/// differing byte; when it equals `bytes` and [`already_canonical`] proves `bytes`
/// canonical, that output is what [`to_canonical_vec`] returns, so the answer is yes.
/// Every other case (a mismatch, which for a leaf means it is refused, or output the
/// scanner cannot prove) takes the general path, so the answer never differs.
pub fn encodes_to<T: Serialize + ?Sized>(value: &T, bytes: &[u8]) -> Result<bool, CatalogError> {
    let mut compare = Compare { rest: bytes };
    if serde_json::to_writer(&mut compare, value).is_ok()
        && compare.rest.is_empty()
        && already_canonical(bytes)
    {
        return Ok(true);
    }
    Ok(to_canonical_vec(value)? == bytes)
}

/// A writer that accepts exactly the bytes of `rest`, in order, and fails at the first
/// other byte (or a byte past its end).
struct Compare<'a> {
    rest: &'a [u8],
}

impl std::io::Write for Compare<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.rest.strip_prefix(buf) {
            Some(rest) => {
                self.rest = rest;
                Ok(buf.len())
            }
            None => Err(std::io::ErrorKind::InvalidData.into()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One open container while scanning.
enum Frame {
    Array,
    /// An object and the byte range of its last member name (empty before the first).
    Object {
        last_key: (usize, usize),
    },
}

/// True if `json` (compact JSON as serde_json writes it) is already RFC 8785: every
/// object's member names are plain ASCII without escapes and strictly ascending (byte
/// order equals UTF-16 order for ASCII), and every number is an integer of at most
/// [`MAX_EXACT_DIGITS`] digits. Conservative: `false` only means "use the general encoder".
pub fn already_canonical(json: &[u8]) -> bool {
    let mut stack: Vec<Frame> = Vec::with_capacity(8);
    let mut expect_key = false;
    let mut i = 0;
    while let Some(&byte) = json.get(i) {
        match byte {
            b'{' => {
                stack.push(Frame::Object { last_key: (0, 0) });
                expect_key = true;
                i += 1;
            }
            b'[' => {
                stack.push(Frame::Array);
                expect_key = false;
                i += 1;
            }
            b'}' | b']' => {
                stack.pop();
                expect_key = false;
                i += 1;
            }
            b',' => {
                expect_key = matches!(stack.last(), Some(Frame::Object { .. }));
                i += 1;
            }
            b':' => {
                expect_key = false;
                i += 1;
            }
            b'"' => {
                let Some(end) = string_end(json, i) else {
                    return false;
                };
                if expect_key {
                    let Some(Frame::Object { last_key }) = stack.last_mut() else {
                        return false;
                    };
                    let key = &json[i + 1..end];
                    if !key.iter().all(|b| b.is_ascii() && *b != b'\\') {
                        return false;
                    }
                    let previous = &json[last_key.0..last_key.1];
                    if last_key.1 > 0 && previous >= key {
                        return false;
                    }
                    *last_key = (i + 1, end);
                }
                i = end + 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while json.get(i).is_some_and(|b| matches!(b, b'-' | b'0'..=b'9')) {
                    i += 1;
                }
                if json
                    .get(i)
                    .is_some_and(|b| matches!(b, b'.' | b'e' | b'E' | b'+'))
                    || i - start > MAX_EXACT_DIGITS
                {
                    return false;
                }
            }
            b't' | b'f' | b'n' => {
                while json.get(i).is_some_and(u8::is_ascii_lowercase) {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
    stack.is_empty()
}

/// Index of the quote that closes the string opening at `start`.
fn string_end(json: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        match *json.get(i)? {
            b'"' => return Some(i),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    #[test]
    fn fast_path_matches_serde_jcs_on_known_shapes() {
        for v in [
            json!({"b":1,"a":[true,false,null],"c":{"z":"x","y":"\u{1}\n\"\\/é😀"}}),
            json!({"a":-0,"b":123456789012345u64,"c":1234567890123456u64}),
            json!({"a":1.5,"b":1e21}),
            json!({"é":1,"e":2,"\u{e000}":3,"😀":4}),
            json!([]),
            json!("plain"),
        ] {
            let ours = to_canonical_vec(&v).unwrap();
            assert_eq!(ours, serde_jcs::to_vec(&v).unwrap(), "{v}");
        }
    }

    #[test]
    fn scanner_refuses_what_it_cannot_prove() {
        assert!(already_canonical(br#"{"a":1,"b":[{"a":2,"c":"x"}]}"#));
        assert!(!already_canonical(br#"{"b":1,"a":2}"#));
        assert!(!already_canonical(br#"{"a":1,"a":2}"#));
        assert!(!already_canonical(br#"{"a":1.0}"#));
        assert!(!already_canonical(br#"{"a":1234567890123456}"#));
        assert!(!already_canonical(br#"{"\u0061":1}"#));
        assert!(!already_canonical(br#"{"a":1} "#));
        assert!(!already_canonical(br#"{"a":"unterminated}"#));
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            (0u64..MAX_SAFE_INTEGER).prop_map(|n| json!(n)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[a-zA-Z\u{e000}\u{10000}é]{0,6}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn encodes_to_is_the_comparison_of_the_encoding() {
        let v = json!({"a":1,"b":[true,{"c":"x\n"}]});
        let canonical = to_canonical_vec(&v).unwrap();
        assert!(encodes_to(&v, &canonical).unwrap());
        for other in [
            &br#"{"a":1,"b":[true,{"c":"x\n"}]} "#[..],
            br#"{"a":1,"b":[true,{"c":"x\u000a"}]}"#,
            br#"{"b":[true,{"c":"x\n"}],"a":1}"#,
            br#"{"a":1,"b":[true,{"c":"x\n"}]"#,
            br#"{"a":1.0,"b":[true,{"c":"x\n"}]}"#,
            b"",
        ] {
            assert!(
                !encodes_to(&v, other).unwrap(),
                "{}",
                String::from_utf8_lossy(other)
            );
        }
        // Output the scanner cannot prove takes the general path: still exact.
        let f = json!({"a":1.5,"b":1e21});
        assert!(encodes_to(&f, &serde_jcs::to_vec(&f).unwrap()).unwrap());
        let compact = serde_json::to_vec(&f).unwrap();
        assert_eq!(
            encodes_to(&f, &compact).unwrap(),
            to_canonical_vec(&f).unwrap() == compact
        );
    }

    proptest! {
        #[test]
        fn equals_serde_jcs(v in arb_json()) {
            prop_assert_eq!(to_canonical_vec(&v).unwrap(), serde_jcs::to_vec(&v).unwrap());
        }

        #[test]
        fn encodes_to_agrees_with_the_encoding(v in arb_json(), w in arb_json()) {
            let mine = to_canonical_vec(&v).unwrap();
            let other = to_canonical_vec(&w).unwrap();
            prop_assert!(encodes_to(&v, &mine).unwrap());
            prop_assert_eq!(encodes_to(&v, &other).unwrap(), mine == other);
            let compact = serde_json::to_vec(&v).unwrap();
            prop_assert_eq!(encodes_to(&v, &compact).unwrap(), mine == compact);
        }
    }
}
