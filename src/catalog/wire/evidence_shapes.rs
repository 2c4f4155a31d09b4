//! Bounded-memory readers for the evidence analysers (`evidence`): each one visits the
//! JSON once and keeps only what a finding needs (a count, a highest severity, the
//! subject digests, whether images are pinned), skipping everything else with
//! [`IgnoredAny`]. No document is ever held as a `serde_json::Value`, so analysing a blob
//! costs its bytes plus a small constant (plus, for subject digests and task images, the
//! few bytes kept per item).
//!
//! The readers are lenient where `Value` lookups were: a member of the wrong type reads
//! as absent, as `value.get(..).and_then(Value::as_str)` did. A repeated member keeps
//! its last value, as a `Value` object did.
//!
//! Also [`Base64Reader`]: a DSSE payload decoded on the fly, so a wrapped statement is
//! parsed without a decoded copy.
//!
//! May import, in `wire`: `validate` and `severity`.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read};
use std::marker::PhantomData;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::severity::Severity;
use super::validate::check_sha256;

/// A JSON value read for its shape: objects go to [`Shape::map`], arrays to
/// [`Shape::seq`], strings to [`Shape::string`]; what a shape does not take reads as
/// `None` (and is skipped without being kept).
pub(super) trait Shape: Sized {
    /// An object; by default skipped.
    fn map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Option<Self>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    /// An array; by default skipped.
    fn seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Option<Self>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    /// A string; by default absent.
    fn string(_s: &str) -> Option<Self> {
        None
    }
}

/// Any JSON value, read as `T` when its shape fits.
pub(super) struct Lenient<T>(pub Option<T>);

impl<'de, T: Shape> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LenientVisitor(PhantomData))
    }
}

struct LenientVisitor<T>(PhantomData<T>);

impl<'de, T: Shape> Visitor<'de> for LenientVisitor<T> {
    type Value = Lenient<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::map(map).map(Lenient)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        T::seq(seq).map(Lenient)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Lenient(T::string(s)))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Lenient(None))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Lenient(None))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Lenient(None))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Lenient(None))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Lenient(None))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Lenient(None))
    }
}

/// A string member.
pub(super) struct Text(pub String);

impl Shape for Text {
    fn string(s: &str) -> Option<Self> {
        Some(Text(s.to_string()))
    }
}

/// Reads an object's members: `member(key, map)` consumes the value of the keys it wants
/// and returns false for the others, which are skipped.
fn members<'de, A: MapAccess<'de>>(
    mut map: A,
    mut member: impl FnMut(&str, &mut A) -> Result<bool, A::Error>,
) -> Result<(), A::Error> {
    while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
        if !member(&key, &mut map)? {
            map.next_value::<IgnoredAny>()?;
        }
    }
    Ok(())
}

/// The value of member `name` of an object read as `T`: `None` when it is missing or of
/// another shape; the last of a repeated member wins.
fn member<'de, A: MapAccess<'de>, T: Shape>(map: A, name: &str) -> Result<Option<T>, A::Error> {
    let mut out = None;
    members(map, |key, map| {
        if key != name {
            return Ok(false);
        }
        out = map.next_value::<Lenient<T>>()?.0;
        Ok(true)
    })?;
    Ok(out)
}

/// Findings counted and the highest severity among them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Tally {
    /// How many findings.
    pub count: u64,
    /// The highest severity (none when no finding has one).
    pub max: Option<Severity>,
}

/// The in-toto vulns predicate: `scanner.result[].severity[].score`. `None` when
/// `scanner.result` is missing or not an array.
pub(super) struct VulnPredicate(pub Option<Tally>);

impl Shape for VulnPredicate {
    fn map<'de, A: MapAccess<'de>>(map: A) -> Result<Option<Self>, A::Error> {
        let results = member::<A, Scanner>(map, "scanner")?.and_then(|s| s.0);
        Ok(Some(VulnPredicate(results)))
    }
}

struct Scanner(Option<Tally>);

impl Shape for Scanner {
    fn map<'de, A: MapAccess<'de>>(map: A) -> Result<Option<Self>, A::Error> {
        let results = member::<A, VulnResults>(map, "result")?.map(|r| r.0);
        Ok(Some(Scanner(results)))
    }
}

struct VulnResults(Tally);

impl Shape for VulnResults {
    fn seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Option<Self>, A::Error> {
        let mut tally = Tally::default();
        while let Some(result) = seq.next_element::<Lenient<VulnResult>>()? {
            tally.count += 1;
            tally.max = tally.max.max(result.0.and_then(|r| r.0));
        }
        Ok(Some(VulnResults(tally)))
    }
}

/// One result: the highest of its `severity[].score`.
struct VulnResult(Option<Severity>);

impl Shape for VulnResult {
    fn map<'de, A: MapAccess<'de>>(map: A) -> Result<Option<Self>, A::Error> {
        let max = member::<A, Scores>(map, "severity")?.and_then(|s| s.0);
        Ok(Some(VulnResult(max)))
    }
}

struct Scores(Option<Severity>);

impl Shape for Scores {
    fn seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Option<Self>, A::Error> {
        let mut max = None;
        while let Some(score) = seq.next_element::<Lenient<Score>>()? {
            max = max.max(score.0.and_then(|s| s.0));
        }
        Ok(Some(Scores(max)))
    }
}

struct Score(Option<Severity>);

impl Shape for Score {
    fn map<'de, A: MapAccess<'de>>(map: A) -> Result<Option<Self>, A::Error> {
        let score = member::<A, Text>(map, "score")?;
        Ok(Some(Score(score.and_then(|t| Severity::parse(&t.0)))))
    }
}

/// Grype's `matches`: every element must be `{"vulnerability": {"severity"?: string}}`
/// (strict, as the typed struct was); counted and folded, not kept.
pub(super) struct GrypeMatches(pub Tally);

#[derive(Deserialize)]
struct GrypeMatch {
    vulnerability: GrypeVulnerability,
}

#[derive(Deserialize)]
struct GrypeVulnerability {
    severity: Option<String>,
}

impl<'de> Deserialize<'de> for GrypeMatches {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = GrypeMatches;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of Grype matches")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<GrypeMatches, A::Error> {
                let mut tally = Tally::default();
                while let Some(m) = seq.next_element::<GrypeMatch>()? {
                    tally.count += 1;
                    let severity = m
                        .vulnerability
                        .severity
                        .as_deref()
                        .and_then(Severity::parse);
                    tally.max = tally.max.max(severity);
                }
                Ok(GrypeMatches(tally))
            }
        }
        d.deserialize_seq(V)
    }
}

/// A statement's `subject[].digest.sha256` values, strictly typed as before (an array of
/// objects whose optional `digest` maps strings to strings); only the SHA-256 values
/// are kept.
pub(super) struct SubjectDigests(pub Vec<String>);

#[derive(Deserialize)]
struct StatementSubject {
    digest: Option<Sha256Of>,
}

/// A `{"<alg>": "<hex>", ...}` digest set, keeping only `sha256`.
struct Sha256Of(Option<String>);

impl<'de> Deserialize<'de> for Sha256Of {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Sha256Of;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of digest algorithms to strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Sha256Of, A::Error> {
                let mut sha256 = None;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let value = map.next_value::<std::borrow::Cow<'de, str>>()?;
                    if key == "sha256" {
                        sha256 = Some(value.into_owned());
                    }
                }
                Ok(Sha256Of(sha256))
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for SubjectDigests {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SubjectDigests;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of subjects")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SubjectDigests, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<StatementSubject>()? {
                    out.extend(s.digest.and_then(|d| d.0));
                }
                Ok(SubjectDigests(out))
            }
        }
        d.deserialize_seq(V)
    }
}

/// The socios base image receipt: `baseImage` and `resolvedDigest` (strings, else
/// absent); a document that is not an object has neither.
#[derive(Default)]
pub(super) struct BaseImage {
    /// `baseImage`.
    pub base: Option<String>,
    /// `resolvedDigest`.
    pub resolved: Option<String>,
}

impl Shape for BaseImage {
    fn map<'de, A: MapAccess<'de>>(map: A) -> Result<Option<Self>, A::Error> {
        let mut out = BaseImage::default();
        members(map, |key, map| {
            let slot = match key {
                "baseImage" => &mut out.base,
                "resolvedDigest" => &mut out.resolved,
                _ => return Ok(false),
            };
            *slot = map.next_value::<Lenient<Text>>()?.0.map(|t| t.0);
            Ok(true)
        })?;
        Ok(Some(out))
    }
}

/// The socios task image receipt: for each `*Image` member, whether it pins its image
/// (a string `name@sha256:<hex>`, or an object whose `digest` is `sha256:<hex>`).
pub(super) struct TaskImages(pub BTreeMap<String, bool>);

impl Shape for TaskImages {
    fn map<'de, A: MapAccess<'de>>(map: A) -> Result<Option<Self>, A::Error> {
        let mut images = BTreeMap::new();
        members(map, |key, map| {
            if !key.ends_with("Image") {
                return Ok(false);
            }
            let pinned = map
                .next_value::<Lenient<ImageRef>>()?
                .0
                .is_some_and(|i| i.0);
            images.insert(key.to_string(), pinned);
            Ok(true)
        })?;
        Ok(Some(TaskImages(images)))
    }
}

struct ImageRef(bool);

impl Shape for ImageRef {
    fn string(s: &str) -> Option<Self> {
        Some(ImageRef(pinned_digest(s).is_some()))
    }
    fn map<'de, A: MapAccess<'de>>(map: A) -> Result<Option<Self>, A::Error> {
        let pinned = member::<A, Text>(map, "digest")?
            .as_ref()
            .and_then(|t| t.0.strip_prefix("sha256:"))
            .is_some_and(|h| check_sha256(h).is_ok());
        Ok(Some(ImageRef(pinned)))
    }
}

const INDIFFERENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD_IN: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, INDIFFERENT);
const URL_SAFE_IN: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, INDIFFERENT);

/// Base64 characters decoded per step (a multiple of 4, so only the last step can hold
/// padding or a partial quantum).
const TEXT_CHUNK: usize = 4096;

/// Standard or URL-safe base64 (padded or not, as `dsse::decode_base64` accepts),
/// decoded as it is read: at most 3 KiB of decoded bytes exist at a time.
pub(super) struct Base64Reader<'a> {
    text: &'a [u8],
    engine: &'static GeneralPurpose,
    out: [u8; TEXT_CHUNK / 4 * 3],
    start: usize,
    end: usize,
}

impl<'a> Base64Reader<'a> {
    /// A reader of `text` decoded.
    pub fn new(text: &'a str) -> Base64Reader<'a> {
        let url_safe = text.bytes().any(|b| b == b'-' || b == b'_');
        Base64Reader {
            text: text.as_bytes(),
            engine: if url_safe { &URL_SAFE_IN } else { &STANDARD_IN },
            out: [0; TEXT_CHUNK / 4 * 3],
            start: 0,
            end: 0,
        }
    }

    /// Whether all of `text` is valid base64 (decoded and discarded, chunk by chunk).
    pub fn is_valid(text: &str) -> bool {
        io::copy(&mut Base64Reader::new(text), &mut io::sink()).is_ok()
    }
}

impl Read for Base64Reader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.start == self.end {
            if self.text.is_empty() {
                return Ok(0);
            }
            let (chunk, rest) = self.text.split_at(TEXT_CHUNK.min(self.text.len()));
            let n = self
                .engine
                .decode_slice(chunk, &mut self.out)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            self.text = rest;
            self.start = 0;
            self.end = n;
        }
        let n = buf.len().min(self.end - self.start);
        buf[..n].copy_from_slice(&self.out[self.start..self.start + n]);
        self.start += n;
        Ok(n)
    }
}

/// The hex digest an image reference pins (`...@sha256:<64 hex>`), if any.
pub fn pinned_digest(image_ref: &str) -> Option<&str> {
    let (_, hex) = image_ref.rsplit_once("@sha256:")?;
    check_sha256(hex).ok().map(|_| hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_digests() {
        let h = "a".repeat(64);
        assert_eq!(
            pinned_digest(&format!("quay.io/x@sha256:{h}")),
            Some(h.as_str())
        );
        assert_eq!(pinned_digest("quay.io/x:dev"), None);
        assert_eq!(pinned_digest("quay.io/x@sha256:abc"), None);
    }

    #[test]
    fn base64_reader_matches_the_whole_decode() {
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for text in [
            base64::engine::general_purpose::STANDARD.encode(&bytes),
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(&bytes[..9_999]),
            base64::engine::general_purpose::URL_SAFE.encode(&bytes[..9_998]),
        ] {
            let mut out = Vec::new();
            Base64Reader::new(&text).read_to_end(&mut out).unwrap();
            assert_eq!(
                Some(out),
                super::super::dsse::decode_base64(&text),
                "{}",
                text.len()
            );
        }
        for bad in ["a", "ab=c", "!!!!", "abc d"] {
            assert!(!Base64Reader::is_valid(bad), "{bad}");
            assert!(super::super::dsse::decode_base64(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn lenient_shapes_read_what_value_lookups_read() {
        let p: Lenient<VulnPredicate> = serde_json::from_str(
            r#"{"scanner":{"result":[{"severity":[{"score":"4.0"},{"score":9}]},{"severity":"x"},3]}}"#,
        )
        .unwrap();
        let tally = p.0.and_then(|p| p.0).unwrap();
        assert_eq!((tally.count, tally.max), (3, Some(Severity::Medium)));
        let p: Lenient<VulnPredicate> =
            serde_json::from_str(r#"{"scanner":{"result":{}}}"#).unwrap();
        assert!(p.0.and_then(|p| p.0).is_none());
        let t: Lenient<TaskImages> = serde_json::from_str(
            r#"{"aImage":"x@sha256:0000000000000000000000000000000000000000000000000000000000000000","bImage":7,"aImage":"x:dev","other":{}}"#,
        )
        .unwrap();
        let images = t.0.unwrap().0;
        assert_eq!(images.len(), 2);
        assert!(!images["aImage"], "the last of a repeated member wins");
    }
}
