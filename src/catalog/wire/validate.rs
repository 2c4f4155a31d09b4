//! The JSON validation kit shared by every request rule: a problem collector
//! ([`Problems`]), helpers that walk a `serde_json::Value` and report type and field
//! problems as `"<json pointer>: <problem>"`, and the syntax checks of single fields
//! (digests, channels, catalog refs, tokens, media types, verifier keys), each failing
//! with a [`FieldError`] whose text is the problem message.
//!
//! Owns only syntax: nothing here knows what a request is. May import `catalog::error`
//! and `note` (for verifier keys); nothing else of `catalog`.
//!
//! Over 600 lines because of its tests: about 460 lines of checks, then table tests that
//! pin every message exactly (clients and the integration tests match on them).

use serde_json::{Map, Value};

use crate::catalog::error::Refusal;
use crate::note::{KeyType, Verifier};

/// Longest subject name, requester ref or catalog ref, in characters.
pub const MAX_REF_CHARS: usize = 512;
/// Longest verifier key string, in characters.
pub const MAX_VKEY_CHARS: usize = 512;
/// At most this many problems are listed; the rest are counted.
pub const MAX_PROBLEMS: usize = 100;

/// Why one field's value is refused. The message (its `Display`) is what the problem
/// list shows after the field's pointer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// An empty token.
    #[error("must not be empty")]
    Empty,
    /// Longer than allowed.
    #[error("must be at most {max} characters, found {found}")]
    TooLong {
        /// The limit.
        max: usize,
        /// The length found.
        found: usize,
    },
    /// A control or white-space character (see [`is_forbidden_char`]).
    #[error("must not contain control or white-space characters (found U+{code:04X})")]
    ForbiddenChar {
        /// The character's code point.
        code: u32,
    },
    /// Outside the strict name syntax of rules version 2 (`log-format/leaves.md` §10.3):
    /// what is wrong.
    #[error("{0}")]
    NotStrictName(String),
    /// Not RFC 3339 UTC with milliseconds (the value, shortened).
    #[error("must be RFC 3339 UTC with milliseconds (YYYY-MM-DDTHH:MM:SS.mmmZ), found {0:?}")]
    NotRfc3339(String),
    /// Not a nonce (the value, shortened).
    #[error("must be 16 to 64 characters of [A-Za-z0-9_-], found {0:?}")]
    NotNonce(String),
    /// Not 64 lowercase hex characters (the value, shortened).
    #[error("must be exactly 64 lowercase hex characters, found {0:?}")]
    NotSha256(String),
    /// Not a channel name (the value, shortened).
    #[error("must match ^[a-z0-9][a-z0-9-]{{0,31}}$, found {0:?}")]
    NotChannel(String),
    /// Not a channel name nor `"*"`, in a grant (the value, shortened).
    #[error("must match ^[a-z0-9][a-z0-9-]{{0,31}}$, found {0:?} (or \"*\" for any channel)")]
    NotGrantChannel(String),
    /// Not an evidence type (the value, shortened).
    #[error("must match ^[a-z0-9][a-z0-9.-]{{0,63}}$, found {0:?}")]
    NotEvidenceType(String),
    /// Not a media type without parameters (the value, shortened).
    #[error(
        "must be a media type like application/spdx+json (type/subtype, no parameters), found {0:?}"
    )]
    NotMediaType(String),
    /// A catalog ref without `scheme://` (the value, shortened).
    #[error("must look like scheme://path (e.g. sourceos://catalog/images/name), found {0:?}")]
    NoScheme(String),
    /// A catalog ref whose scheme is not `[a-z][a-z0-9+.-]*` (the scheme, shortened).
    #[error("scheme must match [a-z][a-z0-9+.-]*, found {0:?}")]
    BadScheme(String),
    /// A catalog ref with a query or fragment.
    #[error("must not contain '?' or '#'")]
    QueryOrFragment,
    /// A catalog ref with nothing after `scheme://`.
    #[error("must have a path after scheme://")]
    NoPath,
    /// A catalog ref *prefix* with an empty path segment.
    #[error("must not contain empty path segments (//)")]
    EmptySegment,
    /// A catalog ref with an empty path segment or a trailing `/`.
    #[error("must not contain empty path segments (//) or end with /")]
    EmptySegmentOrTrailingSlash,
    /// A catalog ref with a `.` or `..` segment.
    #[error("must not contain . or .. path segments")]
    DotSegment,
    /// Not a verifier key string (why, as the note module says).
    #[error("is not a verifier key string (name+hex8+base64): {0}")]
    NotVkey(String),
    /// A verifier key of another algorithm.
    #[error("must be an Ed25519 (algorithm 0x01) key")]
    NotEd25519,
    /// A verifier key string that parses but is not written canonically.
    #[error("is not in canonical verifier key form")]
    NotCanonicalVkey,
    /// Not the one value allowed (e.g. `apiVersion`, `kind`).
    #[error("must be {expected:?}, found {found:?}")]
    NotExpected {
        /// The value required.
        expected: &'static str,
        /// The value found, shortened.
        found: String,
    },
    /// Not one of a few values (e.g. `role`).
    #[error("must be one of {allowed:?}, found {found:?}")]
    NotOneOf {
        /// The values allowed.
        allowed: &'static [&'static str],
        /// The value found, shortened.
        found: String,
    },
    /// A subject that is neither `sha256:<hex>` nor `name@sha256:<hex>`.
    #[error("{0:?} is not sha256:<hex> or name@sha256:<hex>")]
    NotSubjectDigest(String),
}

/// Collects problems as `"<pointer>: <message>"`, listing at most [`MAX_PROBLEMS`].
#[derive(Default, Debug)]
pub struct Problems {
    list: Vec<String>,
    more: usize,
    prefix: &'static str,
}

impl Problems {
    /// A collector whose messages start with `prefix` (e.g. `"envelope "`).
    pub fn with_prefix(prefix: &'static str) -> Problems {
        Problems {
            prefix,
            ..Problems::default()
        }
    }

    /// Records a problem at `path` (a JSON pointer; `""` is the root).
    pub fn push(&mut self, path: &str, msg: impl std::fmt::Display) {
        if self.list.len() < MAX_PROBLEMS {
            let path = if path.is_empty() { "/" } else { path };
            self.list.push(format!("{}{path}: {msg}", self.prefix));
        } else {
            self.more += 1;
        }
    }

    /// Records a message that already carries its path.
    pub fn push_raw(&mut self, msg: String) {
        if self.list.len() < MAX_PROBLEMS {
            self.list.push(msg);
        } else {
            self.more += 1;
        }
    }

    /// True if nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The messages, with a final count of those left out.
    pub fn finish(mut self) -> Vec<String> {
        if self.more > 0 {
            self.list
                .push(format!("... and {} more problems not listed", self.more));
        }
        self.list
    }

    /// `Refusal::Invalid` with every message.
    pub fn into_refusal(self) -> Refusal {
        Refusal::Invalid(self.finish())
    }

    /// `Ok` if nothing was recorded, else `Refusal::Invalid`.
    pub fn into_result(self) -> Result<(), Refusal> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.into_refusal())
        }
    }
}

/// A key made safe for display in a pointer: escaped (`~0`, `~1`), control characters
/// escaped, and at most 64 characters.
pub(crate) fn pointer_token(key: &str) -> String {
    let mut out = String::new();
    for (i, c) in key.chars().enumerate() {
        if i == 64 {
            out.push('…');
            break;
        }
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c if c.is_control() => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    out
}

/// At most 64 characters of `s`, with `…` when cut: how a refused value is shown.
pub(crate) fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if s.chars().count() > 64 {
        out.push('…');
    }
    out
}

/// Checks that `v` is an object with exactly the given fields (`(name, required)`); reports
/// missing and unknown fields. Returns the object when `v` is one.
pub(crate) fn object<'a>(
    p: &mut Problems,
    v: &'a Value,
    path: &str,
    fields: &[(&str, bool)],
) -> Option<&'a Map<String, Value>> {
    let Some(obj) = v.as_object() else {
        p.push(path, format!("must be an object, found {}", type_name(v)));
        return None;
    };
    for (name, required) in fields {
        if *required && !obj.contains_key(*name) {
            p.push(&format!("{path}/{name}"), "missing required field");
        }
    }
    let mut unknown: Vec<&String> = obj
        .keys()
        .filter(|k| !fields.iter().any(|(f, _)| f == k))
        .collect();
    unknown.sort();
    for k in unknown {
        p.push(&format!("{path}/{}", pointer_token(k)), "unknown field");
    }
    Some(obj)
}

/// The JSON type of `v`, with its article (`"a string"`), for messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The string at `obj[key]`, reporting a type problem if it is something else. Missing
/// fields were already reported by [`object`].
pub(crate) fn string<'a>(
    p: &mut Problems,
    obj: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Option<&'a str> {
    match obj.get(key)? {
        Value::String(s) => Some(s),
        other => {
            p.push(
                &format!("{path}/{key}"),
                format!("must be a string, found {}", type_name(other)),
            );
            None
        }
    }
}

/// The array at `obj[key]`, reporting a type problem if it is something else.
pub(crate) fn array<'a>(
    p: &mut Problems,
    obj: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Option<&'a Vec<Value>> {
    match obj.get(key)? {
        Value::Array(a) => Some(a),
        other => {
            p.push(
                &format!("{path}/{key}"),
                format!("must be an array, found {}", type_name(other)),
            );
            None
        }
    }
}

/// Runs a string check on `obj[key]` and records its message.
pub(crate) fn check_str(
    p: &mut Problems,
    obj: &Map<String, Value>,
    path: &str,
    key: &str,
    check: impl Fn(&str) -> Result<(), FieldError>,
) {
    if let Some(s) = string(p, obj, path, key) {
        if let Err(m) = check(s) {
            p.push(&format!("{path}/{key}"), m);
        }
    }
}

/// `Ok` if `s` is `expected`, else [`FieldError::NotExpected`].
pub(crate) fn check_exact(s: &str, expected: &'static str) -> Result<(), FieldError> {
    if s == expected {
        Ok(())
    } else {
        Err(FieldError::NotExpected {
            expected,
            found: shorten(s),
        })
    }
}

/// Characters never allowed in names, refs and URIs: C0/C1 controls, DEL, Unicode white
/// space and U+FEFF. The schemas use the same set:
/// `[\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]`.
pub fn is_forbidden_char(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{20}'
        | '\u{7f}'..='\u{a0}'
        | '\u{1680}'
        | '\u{2000}'..='\u{200a}'
        | '\u{2028}'
        | '\u{2029}'
        | '\u{202f}'
        | '\u{205f}'
        | '\u{3000}'
        | '\u{feff}')
}

/// A non-empty token of at most `max` characters without forbidden characters.
pub fn check_token(s: &str, max: usize) -> Result<(), FieldError> {
    if s.is_empty() {
        return Err(FieldError::Empty);
    }
    let found = s.chars().count();
    if found > max {
        return Err(FieldError::TooLong { max, found });
    }
    if let Some(c) = s.chars().find(|c| is_forbidden_char(*c)) {
        return Err(FieldError::ForbiddenChar { code: c as u32 });
    }
    Ok(())
}

/// A SHA-256 digest: exactly 64 lowercase hex characters.
pub fn check_sha256(s: &str) -> Result<(), FieldError> {
    if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(FieldError::NotSha256(shorten(s)))
    }
}

/// True if `s` matches `^[a-z0-9][a-z0-9<extra>]{0,max-1}$`.
fn is_name(s: &str, max: usize, extra: &[u8]) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && matches!(b[0], b'a'..=b'z' | b'0'..=b'9')
        && b.iter()
            .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9') || extra.contains(c))
}

/// A channel: `^[a-z0-9][a-z0-9-]{0,31}$`.
pub fn check_channel(s: &str) -> Result<(), FieldError> {
    if is_name(s, 32, b"-") {
        Ok(())
    } else {
        Err(FieldError::NotChannel(shorten(s)))
    }
}

/// An evidence type: `^[a-z0-9][a-z0-9.-]{0,63}$`.
pub fn check_evidence_type(s: &str) -> Result<(), FieldError> {
    if is_name(s, 64, b"-.") {
        Ok(())
    } else {
        Err(FieldError::NotEvidenceType(shorten(s)))
    }
}

/// A media type without parameters (RFC 6838 restricted names):
/// `^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$`.
pub fn check_media_type(s: &str) -> Result<(), FieldError> {
    fn name(part: &str) -> bool {
        let b = part.as_bytes();
        !b.is_empty()
            && b.len() <= 127
            && b[0].is_ascii_alphanumeric()
            && b.iter().all(|c| {
                c.is_ascii_alphanumeric()
                    || matches!(
                        c,
                        b'!' | b'#' | b'$' | b'&' | b'^' | b'_' | b'.' | b'+' | b'-'
                    )
            })
    }
    match s.split_once('/') {
        Some((t, sub)) if name(t) && name(sub) => Ok(()),
        _ => Err(FieldError::NotMediaType(shorten(s))),
    }
}

/// A catalog ref (`scheme://seg/seg...`): a token of at most 512 characters, a lowercase
/// scheme `[a-z][a-z0-9+.-]*`, a non-empty path of non-empty segments, none of them `.` or
/// `..`, and no `?` or `#`. A *prefix* may also end in `/`.
pub fn check_catalog_ref(s: &str, is_prefix: bool) -> Result<(), FieldError> {
    check_token(s, MAX_REF_CHARS)?;
    let Some((scheme, rest)) = s.split_once("://") else {
        return Err(FieldError::NoScheme(shorten(s)));
    };
    let sb = scheme.as_bytes();
    if sb.is_empty()
        || !sb[0].is_ascii_lowercase()
        || !sb
            .iter()
            .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'+' | b'.' | b'-'))
    {
        return Err(FieldError::BadScheme(shorten(scheme)));
    }
    if rest.contains(['?', '#']) {
        return Err(FieldError::QueryOrFragment);
    }
    let path = match rest.strip_suffix('/') {
        Some(p) if is_prefix => p,
        _ => rest,
    };
    if path.is_empty() {
        return Err(FieldError::NoPath);
    }
    for seg in path.split('/') {
        if seg.is_empty() {
            return Err(if is_prefix {
                FieldError::EmptySegment
            } else {
                FieldError::EmptySegmentOrTrailingSlash
            });
        }
        if seg == "." || seg == ".." {
            return Err(FieldError::DotSegment);
        }
    }
    Ok(())
}

/// The strict name syntax of rules version 2 (`log-format/leaves.md` §10.3) for catalog
/// refs, prefixes and subject names: printable ASCII only (so no control, format, bidi,
/// zero-width or look-alike slash characters), no backslash, no percent-encoded `.`, `/`
/// or `\`, every `%` followed by two hex digits, and no empty, `.` or `..` path segment
/// (in the part after `scheme://` when there is one; a prefix may end in `/`).
pub fn check_strict_name(s: &str, is_prefix: bool) -> Result<(), FieldError> {
    let bad = |m: String| Err(FieldError::NotStrictName(m));
    if let Some(c) = s.chars().find(|c| !matches!(c, '\u{21}'..='\u{7e}')) {
        return bad(format!(
            "must be printable ASCII (U+0021 to U+007E), found U+{:04X}",
            c as u32
        ));
    }
    if s.contains('\\') {
        return bad("must not contain a backslash".into());
    }
    let b = s.as_bytes();
    for (i, _) in s.match_indices('%') {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            None => return bad("a '%' must be followed by two hex digits".into()),
            Some(b'.' | b'/' | b'\\') => {
                return bad("must not percent-encode '.', '/' or '\\'".into())
            }
            Some(_) => {}
        }
    }
    let path = s.split_once("://").map_or(s, |(_, rest)| rest);
    let path = match path.strip_suffix('/') {
        Some(p) if is_prefix => p,
        _ => path,
    };
    if path
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return bad("must not have an empty, '.' or '..' path segment".into());
    }
    Ok(())
}

/// A verifier key string for an Ed25519 key, in the canonical form the note module emits.
pub fn check_vkey(s: &str) -> Result<Verifier, FieldError> {
    let found = s.chars().count();
    if found > MAX_VKEY_CHARS {
        return Err(FieldError::TooLong {
            max: MAX_VKEY_CHARS,
            found,
        });
    }
    let v = Verifier::from_vkey(s).map_err(|e| FieldError::NotVkey(e.to_string()))?;
    if !matches!(v.key_type(), KeyType::Ed25519) {
        return Err(FieldError::NotEd25519);
    }
    if v.to_vkey() != s {
        return Err(FieldError::NotCanonicalVkey);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::Signer;

    /// `check(input)` gives `Ok` (`None`) or exactly this message.
    fn table(check: impl Fn(&str) -> Result<(), FieldError>, cases: &[(&str, Option<&str>)]) {
        for (input, want) in cases {
            let got = check(input).err().map(|e| e.to_string());
            assert_eq!(got.as_deref(), *want, "input {input:?}");
        }
    }

    #[test]
    fn tokens() {
        table(
            |s| check_token(s, 5),
            &[
                ("héllo", None),
                ("", Some("must not be empty")),
                ("héllo!", Some("must be at most 5 characters, found 6")),
                (
                    "x\u{7}y",
                    Some("must not contain control or white-space characters (found U+0007)"),
                ),
                (
                    "x\u{3000}y",
                    Some("must not contain control or white-space characters (found U+3000)"),
                ),
                (
                    "a b",
                    Some("must not contain control or white-space characters (found U+0020)"),
                ),
                (
                    "\u{feff}",
                    Some("must not contain control or white-space characters (found U+FEFF)"),
                ),
            ],
        );
    }

    #[test]
    fn sha256_digests() {
        let ok = "a".repeat(64);
        let upper = "A".repeat(64);
        let short = "a".repeat(63);
        let long = "0".repeat(70);
        let shown = format!("{:?}", format!("{}…", "0".repeat(64)));
        let long_msg = format!("must be exactly 64 lowercase hex characters, found {shown}");
        table(
            check_sha256,
            &[
                (&ok, None),
                (
                    &upper,
                    Some(&format!(
                        "must be exactly 64 lowercase hex characters, found {upper:?}"
                    )),
                ),
                (
                    &short,
                    Some(&format!(
                        "must be exactly 64 lowercase hex characters, found {short:?}"
                    )),
                ),
                (&long, Some(&long_msg)),
                (
                    "sha256:ab",
                    Some("must be exactly 64 lowercase hex characters, found \"sha256:ab\""),
                ),
            ],
        );
    }

    #[test]
    fn channels_and_evidence_types() {
        let max_channel = "a".repeat(32);
        let long_channel = "a".repeat(33);
        table(
            check_channel,
            &[
                ("dev", None),
                ("0-rc", None),
                (&max_channel, None),
                (
                    "-dev",
                    Some("must match ^[a-z0-9][a-z0-9-]{0,31}$, found \"-dev\""),
                ),
                (
                    "Dev",
                    Some("must match ^[a-z0-9][a-z0-9-]{0,31}$, found \"Dev\""),
                ),
                ("", Some("must match ^[a-z0-9][a-z0-9-]{0,31}$, found \"\"")),
                (
                    "a.b",
                    Some("must match ^[a-z0-9][a-z0-9-]{0,31}$, found \"a.b\""),
                ),
                (
                    &long_channel,
                    Some(&format!(
                        "must match ^[a-z0-9][a-z0-9-]{{0,31}}$, found {long_channel:?}"
                    )),
                ),
            ],
        );
        let max_type = "a".repeat(64);
        table(
            check_evidence_type,
            &[
                ("sbom", None),
                ("in-toto.v1", None),
                (&max_type, None),
                (
                    ".sbom",
                    Some("must match ^[a-z0-9][a-z0-9.-]{0,63}$, found \".sbom\""),
                ),
                (
                    "s_bom",
                    Some("must match ^[a-z0-9][a-z0-9.-]{0,63}$, found \"s_bom\""),
                ),
            ],
        );
    }

    #[test]
    fn media_types() {
        let bad = |s: &str| {
            format!("must be a media type like application/spdx+json (type/subtype, no parameters), found {s:?}")
        };
        table(
            check_media_type,
            &[
                ("application/spdx+json", None),
                ("application/vnd.cyclonedx+json", None),
                (
                    "application/json; charset=utf-8",
                    Some(&bad("application/json; charset=utf-8")),
                ),
                ("application", Some(&bad("application"))),
                ("/json", Some(&bad("/json"))),
                ("a/b/c", Some(&bad("a/b/c"))),
            ],
        );
    }

    #[test]
    fn catalog_refs() {
        let no_scheme = |s: &str| {
            format!(
                "must look like scheme://path (e.g. sourceos://catalog/images/name), found {s:?}"
            )
        };
        table(
            |s| check_catalog_ref(s, false),
            &[
                ("sourceos://catalog/images/a", None),
                ("s3+x.y-z://a", None),
                (
                    "sourceos://catalog/images/",
                    Some("must not contain empty path segments (//) or end with /"),
                ),
                (
                    "sourceos://catalog//a",
                    Some("must not contain empty path segments (//) or end with /"),
                ),
                (
                    "sourceos://catalog/../a",
                    Some("must not contain . or .. path segments"),
                ),
                (
                    "sourceos://catalog/./a",
                    Some("must not contain . or .. path segments"),
                ),
                ("sourceos://", Some("must have a path after scheme://")),
                (
                    "Sourceos://a",
                    Some("scheme must match [a-z][a-z0-9+.-]*, found \"Sourceos\""),
                ),
                (
                    "://a",
                    Some("scheme must match [a-z][a-z0-9+.-]*, found \"\""),
                ),
                ("catalog/images/a", Some(&no_scheme("catalog/images/a"))),
                ("sourceos://a?b", Some("must not contain '?' or '#'")),
                ("sourceos://a#b", Some("must not contain '?' or '#'")),
                (
                    "sourceos://a b",
                    Some("must not contain control or white-space characters (found U+0020)"),
                ),
                ("", Some("must not be empty")),
            ],
        );
        table(
            |s| check_catalog_ref(s, true),
            &[
                ("sourceos://catalog/images/", None),
                ("sourceos://catalog/images", None),
                (
                    "sourceos://a//",
                    Some("must not contain empty path segments (//)"),
                ),
                ("sourceos:///", Some("must have a path after scheme://")),
            ],
        );
        let long = format!("s://{}", "a".repeat(MAX_REF_CHARS));
        assert_eq!(
            check_catalog_ref(&long, false),
            Err(FieldError::TooLong {
                max: MAX_REF_CHARS,
                found: MAX_REF_CHARS + 4
            })
        );
    }

    /// Issue 10 §6: every example that escaped a grant's prefix or a monitor's eye.
    #[test]
    fn strict_names() {
        let ascii = |c: u32| format!("must be printable ASCII (U+0021 to U+007E), found U+{c:04X}");
        let pct = "must not percent-encode '.', '/' or '\\'";
        let seg = "must not have an empty, '.' or '..' path segment";
        let cases: Vec<(&str, Option<String>)> = vec![
            ("sourceos://catalog/images/x", None),
            ("quay.io/org/img@sha256:ab", None),
            ("sourceos://catalog/images/a%41b", None),
            (
                "sourceos://catalog/images/%2e%2e/secrets/x",
                Some(pct.into()),
            ),
            ("sourceos://catalog/images/..%2fsecrets", Some(pct.into())),
            ("sourceos://catalog/images/%2E%2E/x", Some(pct.into())),
            ("sourceos://catalog/images/a%5cb", Some(pct.into())),
            (
                "sourceos://catalog/images/a%zz",
                Some("a '%' must be followed by two hex digits".into()),
            ),
            (
                "sourceos://catalog/images/..\\..\\secrets",
                Some("must not contain a backslash".into()),
            ),
            (
                "sourceos://catalog/images/x\u{2215}..\u{2215}secrets",
                Some(ascii(0x2215)),
            ),
            (
                "sourceos://catalog/images/x\u{ff0f}..\u{ff0f}secrets",
                Some(ascii(0xff0f)),
            ),
            ("sourceos://catalog/images/x\u{200b}", Some(ascii(0x200b))),
            ("sourceos://catalog/images/\u{202e}x", Some(ascii(0x202e))),
            ("sourceos://catalog/images/\u{2066}x", Some(ascii(0x2066))),
            ("smoke-runner\u{200b}", Some(ascii(0x200b))),
            ("sourceos://catalog/images/../secrets", Some(seg.into())),
            ("sourceos://catalog/images/./x", Some(seg.into())),
            ("sourceos://catalog//x", Some(seg.into())),
            ("sourceos://catalog/x/", Some(seg.into())),
        ];
        for (name, want) in cases {
            let got = check_strict_name(name, false)
                .map_err(|e| e.to_string())
                .err();
            assert_eq!(got, want, "{name:?}");
        }
        assert_eq!(
            check_strict_name("sourceos://catalog/images/", true),
            Ok(())
        );
    }

    #[test]
    fn verifier_keys() {
        let signer = Signer::from_seed("pub", KeyType::Ed25519, &[7; 32]).unwrap();
        let vkey = signer.verifier().to_vkey();
        assert_eq!(check_vkey(&vkey).map(|v| v.to_vkey()), Ok(vkey.clone()));
        let long = "k".repeat(MAX_VKEY_CHARS + 1);
        assert_eq!(
            check_vkey(&long).unwrap_err().to_string(),
            format!("must be at most {MAX_VKEY_CHARS} characters, found 513")
        );
        assert!(matches!(
            check_vkey("not a key"),
            Err(FieldError::NotVkey(_))
        ));
        assert!(check_vkey("not a key")
            .unwrap_err()
            .to_string()
            .starts_with("is not a verifier key string (name+hex8+base64): "));
    }

    #[test]
    fn exact_values_and_lists() {
        assert_eq!(check_exact("v1", "v1"), Ok(()));
        assert_eq!(
            check_exact("v2", "v1").unwrap_err().to_string(),
            "must be \"v1\", found \"v2\""
        );
        let e = FieldError::NotOneOf {
            allowed: &["publisher", "reviewer"],
            found: "admin".into(),
        };
        assert_eq!(
            e.to_string(),
            "must be one of [\"publisher\", \"reviewer\"], found \"admin\""
        );
        assert_eq!(
            FieldError::NotGrantChannel("-x".into()).to_string(),
            "must match ^[a-z0-9][a-z0-9-]{0,31}$, found \"-x\" (or \"*\" for any channel)"
        );
    }

    #[test]
    fn problems_are_capped_and_counted() {
        let mut p = Problems::with_prefix("envelope ");
        for i in 0..MAX_PROBLEMS + 3 {
            p.push(&format!("/{i}"), "bad");
        }
        let list = p.finish();
        assert_eq!(list.len(), MAX_PROBLEMS + 1);
        assert_eq!(list[0], "envelope /0: bad");
        assert_eq!(list[MAX_PROBLEMS], "... and 3 more problems not listed");
        let mut p = Problems::default();
        p.push("", "must be a JSON object");
        assert_eq!(p.finish(), ["/: must be a JSON object"]);
    }

    #[test]
    fn pointer_tokens_are_escaped_and_short() {
        assert_eq!(pointer_token("a/b~c"), "a~1b~0c");
        assert_eq!(pointer_token("a\u{1}"), "a\\u{1}");
        let long = "x".repeat(70);
        assert_eq!(pointer_token(&long), format!("{}…", "x".repeat(64)));
    }
}
