//! Request payload types (`CatalogPublicationRequest` v1, `PublisherGrant`) and their
//! validation.
//!
//! Validation walks the JSON value and reports *every* problem it finds, each as
//! `"<json pointer>: <problem>"`; only when the walk finds nothing is the payload
//! deserialized into the strict (`deny_unknown_fields`) Rust types, which also rejects
//! duplicate keys. The rules are mirrored exactly by `schemas/*.schema.json`.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::canonical::MAX_SAFE_INTEGER;
use super::error::Refusal;
use crate::note::{KeyType, Verifier};

/// The `apiVersion` of every v1 catalog object.
pub const API_VERSION: &str = "catalog.srcos.ai/v1";
/// At most this many evidence items per request.
pub const MAX_EVIDENCE: usize = 64;
/// At most this many target prefixes, and this many channels, per grant.
pub const MAX_GRANT_ITEMS: usize = 32;
/// Longest subject name, requester ref or catalog ref, in characters.
pub const MAX_REF_CHARS: usize = 512;
/// Longest evidence or agentplane URI, in characters.
pub const MAX_URI_CHARS: usize = 2048;
/// Longest verifier key string, in characters.
pub const MAX_VKEY_CHARS: usize = 512;
/// At most this many problems are listed; the rest are counted.
pub const MAX_PROBLEMS: usize = 100;
/// The channel wildcard in grants.
pub const ANY_CHANNEL: &str = "*";

/// `"apiVersion": "catalog.srcos.ai/v1"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApiVersion {
    /// `catalog.srcos.ai/v1`
    #[serde(rename = "catalog.srcos.ai/v1")]
    V1,
}

/// `"kind": "CatalogPublicationRequest"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PublicationRequestKind {
    /// The only value.
    CatalogPublicationRequest,
}

/// `"kind": "PublisherGrant"` (the grant request payload and the grant leaf).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PublisherGrantKind {
    /// The only value.
    PublisherGrant,
}

/// A digest set; v1 knows only SHA-256 (64 lowercase hex characters).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestSet {
    /// 64 lowercase hex characters.
    pub sha256: String,
}

impl DigestSet {
    /// A digest set from raw SHA-256 bytes.
    pub fn from_sha256(bytes: &[u8; 32]) -> DigestSet {
        DigestSet {
            sha256: hex::encode(bytes),
        }
    }
}

/// The artifact being published: an image (or other artifact) name and its digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    /// E.g. `quay.io/socios/sourceos-smoke-runner`.
    pub name: String,
    /// The artifact's digest.
    pub digest: DigestSet,
}

/// One evidence reference: typed, content-addressed, never inlined.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EvidenceItem {
    /// Digest of the evidence bytes.
    pub digest: DigestSet,
    /// RFC 6838 media type without parameters, e.g. `application/spdx+json`.
    pub media_type: String,
    /// Size in bytes (at most 2^53 - 1).
    pub size: u64,
    /// Evidence type, e.g. `sbom`, `provenance` (`^[a-z0-9][a-z0-9.-]{0,63}$`).
    #[serde(rename = "type")]
    pub evidence_type: String,
    /// Where the evidence can be fetched.
    pub uri: String,
}

/// A reference to an agentplane artifact, carried by digest, never inlined.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactRef {
    /// Digest of the artifact.
    pub digest: DigestSet,
    /// E.g. `agentplane://run-artifact/<id>`.
    pub uri: String,
}

fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
}

/// agentplane validation/run/replay references; each key is required and may be `null`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AgentplaneRefs {
    /// The agentplane ReplayArtifact, if any.
    #[serde(deserialize_with = "nullable")]
    pub replay_artifact_ref: Option<ArtifactRef>,
    /// The agentplane RunArtifact, if any.
    #[serde(deserialize_with = "nullable")]
    pub run_artifact_ref: Option<ArtifactRef>,
    /// The agentplane ValidationArtifact, if any.
    #[serde(deserialize_with = "nullable")]
    pub validation_artifact_ref: Option<ArtifactRef>,
}

/// The v1 publication request a build pipeline signs (DSSE payload).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CatalogPublicationRequest {
    /// Always `catalog.srcos.ai/v1`.
    pub api_version: ApiVersion,
    /// Always `CatalogPublicationRequest`.
    pub kind: PublicationRequestKind,
    /// What is published.
    pub subject: Subject,
    /// The catalog location, e.g. `sourceos://catalog/images/sourceos-smoke-runner`.
    pub target_catalog_ref: String,
    /// The channel, `^[a-z0-9][a-z0-9-]{0,31}$` (e.g. `dev`, `candidate`, `stable`).
    pub channel: String,
    /// Who asks, e.g. `socios://pipeline/sourceos-build-smoke-runner-image`.
    pub requester_ref: String,
    /// Evidence references (at most 64).
    pub evidence: Vec<EvidenceItem>,
    /// agentplane references.
    pub agentplane_refs: AgentplaneRefs,
}

impl CatalogPublicationRequest {
    /// Every problem with this request (empty if valid), as `parse_publication_request` reports them.
    pub fn problems(&self) -> Vec<String> {
        match serde_json::to_value(self) {
            Ok(v) => {
                let mut p = Problems::default();
                check_publication(&mut p, &v);
                p.finish()
            }
            Err(e) => vec![format!("/: {e}")],
        }
    }

    /// The subject digest as `sha256:<hex>`.
    pub fn subject_digest(&self) -> String {
        format!("sha256:{}", self.subject.digest.sha256)
    }
}

/// The role a grant confers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// May submit publication requests.
    Publisher,
    /// May review, promote and change the status of entries (never approve its own).
    Reviewer,
}

impl Role {
    /// Every role, in wire form.
    pub const ALL: &'static [&'static str] = &["publisher", "reviewer"];
}

/// The payload an admin signs to authorize a publisher key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PublisherGrantRequest {
    /// Always `catalog.srcos.ai/v1`.
    pub api_version: ApiVersion,
    /// Always `PublisherGrant`.
    pub kind: PublisherGrantKind,
    /// The publisher's verifier key string `name+hex8+base64(0x01||pub)`.
    pub publisher_key: String,
    /// The role granted.
    pub role: Role,
    /// `targetCatalogRef` prefixes the key may publish to (matched on `/` boundaries).
    pub target_prefixes: Vec<String>,
    /// Channels the key may use; `"*"` means any.
    pub channels: Vec<String>,
}

impl PublisherGrantRequest {
    /// Every problem with this grant (empty if valid).
    pub fn problems(&self) -> Vec<String> {
        match serde_json::to_value(self) {
            Ok(v) => {
                let mut p = Problems::default();
                check_grant(&mut p, &v);
                p.finish()
            }
            Err(e) => vec![format!("/: {e}")],
        }
    }

    /// The publisher's verifier.
    pub fn publisher_verifier(&self) -> Result<Verifier, String> {
        Verifier::from_vkey(&self.publisher_key).map_err(|e| e.to_string())
    }

    /// True if one of the prefixes covers `target` (see [`prefix_matches`]).
    pub fn covers_target(&self, target: &str) -> bool {
        self.target_prefixes
            .iter()
            .any(|p| prefix_matches(p, target))
    }

    /// True if `channel` is listed or the grant lists `"*"`.
    pub fn covers_channel(&self, channel: &str) -> bool {
        self.channels
            .iter()
            .any(|c| c == ANY_CHANNEL || c == channel)
    }
}

/// Prefix matching on path boundaries: `prefix` covers `target` if they are equal, or if
/// `target` starts with `prefix` and either `prefix` ends in `/` or the next character of
/// `target` is `/`. So `sourceos://catalog/images` and `sourceos://catalog/images/` both cover
/// `sourceos://catalog/images/x`, but `sourceos://catalog/img` does not cover
/// `sourceos://catalog/images`.
pub fn prefix_matches(prefix: &str, target: &str) -> bool {
    match target.strip_prefix(prefix) {
        Some("") => true,
        Some(rest) => prefix.ends_with('/') || rest.starts_with('/'),
        None => false,
    }
}

/// Parses and validates a `CatalogPublicationRequest` (the DSSE payload, not the envelope).
/// Not JSON is `Malformed`; every schema or field problem is listed in `Invalid`.
pub fn parse_publication_request(json: &[u8]) -> Result<CatalogPublicationRequest, Refusal> {
    let v = parse_json(json, "request")?;
    let mut p = Problems::default();
    check_publication(&mut p, &v);
    p.into_result()?;
    strict(json)
}

/// Parses and validates a `PublisherGrant` request payload.
pub fn parse_grant_request(json: &[u8]) -> Result<PublisherGrantRequest, Refusal> {
    let v = parse_json(json, "grant")?;
    let mut p = Problems::default();
    check_grant(&mut p, &v);
    p.into_result()?;
    strict(json)
}

/// A validated payload of either kind.
// Held once per submission behind an Arc, so the size difference does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestPayload {
    /// A `CatalogPublicationRequest`.
    Publication(CatalogPublicationRequest),
    /// A `PublisherGrant`.
    Grant(PublisherGrantRequest),
    /// A decision: `PolicySet`, `PublisherRevoke`, `Review`, `Promotion`, `StatusChange`.
    Decision(super::decisions::DecisionPayload),
}

/// Parses a DSSE payload whose `kind` decides the type.
pub fn parse_request_payload(json: &[u8]) -> Result<RequestPayload, Refusal> {
    let v = parse_json(json, "payload")?;
    let mut p = Problems::default();
    let Some(obj) = v.as_object() else {
        p.push("", "must be a JSON object");
        return Err(p.into_refusal());
    };
    match obj.get("kind").and_then(Value::as_str) {
        Some("CatalogPublicationRequest") => {
            check_publication(&mut p, &v);
            p.into_result()?;
            strict(json).map(RequestPayload::Publication)
        }
        Some("PublisherGrant") => {
            check_grant(&mut p, &v);
            p.into_result()?;
            strict(json).map(RequestPayload::Grant)
        }
        Some(k) if super::decisions::DecisionKind::from_name(k).is_some() => {
            check_api_version(&mut p, obj);
            p.into_result()?;
            match super::decisions::DecisionKind::from_name(k) {
                Some(kind) => {
                    super::decisions::parse_decision(kind, json).map(RequestPayload::Decision)
                }
                None => Err(Refusal::Invalid(vec!["/kind: unknown".into()])),
            }
        }
        other => {
            check_api_version(&mut p, obj);
            match (obj.get("kind"), other) {
                (None, _) => p.push("/kind", "missing required field"),
                (Some(_), None) => p.push("/kind", "must be a string"),
                (Some(_), Some(k)) => p.push(
                    "/kind",
                    format!(
                        "unknown kind {:?}; expected CatalogPublicationRequest, PublisherGrant, PolicySet, PublisherRevoke, Review, Promotion or StatusChange",
                        shorten(k)
                    ),
                ),
            }
            Err(p.into_refusal())
        }
    }
}

fn parse_json(json: &[u8], what: &str) -> Result<Value, Refusal> {
    serde_json::from_slice(json).map_err(|e| Refusal::Malformed(format!("{what} is not JSON: {e}")))
}

fn strict<T: for<'de> Deserialize<'de>>(json: &[u8]) -> Result<T, Refusal> {
    // The walk passed; what is left for serde to catch is duplicate keys.
    serde_json::from_slice(json).map_err(|e| Refusal::Invalid(vec![format!("/: {e}")]))
}

// ---------------------------------------------------------------------------------------
// The validation walk.
// ---------------------------------------------------------------------------------------

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

fn shorten(s: &str) -> String {
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

fn array<'a>(
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

/// Runs a string check and records its message.
fn check_str(
    p: &mut Problems,
    obj: &Map<String, Value>,
    path: &str,
    key: &str,
    check: impl Fn(&str) -> Result<(), String>,
) {
    if let Some(s) = string(p, obj, path, key) {
        if let Err(m) = check(s) {
            p.push(&format!("{path}/{key}"), m);
        }
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
pub fn check_token(s: &str, max: usize) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    let n = s.chars().count();
    if n > max {
        return Err(format!("must be at most {max} characters, found {n}"));
    }
    if let Some(c) = s.chars().find(|c| is_forbidden_char(*c)) {
        return Err(format!(
            "must not contain control or white-space characters (found U+{:04X})",
            c as u32
        ));
    }
    Ok(())
}

/// A SHA-256 digest: exactly 64 lowercase hex characters.
pub fn check_sha256(s: &str) -> Result<(), String> {
    if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(format!(
            "must be exactly 64 lowercase hex characters, found {:?}",
            shorten(s)
        ))
    }
}

/// A channel: `^[a-z0-9][a-z0-9-]{0,31}$`.
pub fn check_channel(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 32
        && matches!(b[0], b'a'..=b'z' | b'0'..=b'9')
        && b.iter()
            .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must match ^[a-z0-9][a-z0-9-]{{0,31}}$, found {:?}",
            shorten(s)
        ))
    }
}

/// An evidence type: `^[a-z0-9][a-z0-9.-]{0,63}$`.
pub fn check_evidence_type(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 64
        && matches!(b[0], b'a'..=b'z' | b'0'..=b'9')
        && b.iter()
            .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must match ^[a-z0-9][a-z0-9.-]{{0,63}}$, found {:?}",
            shorten(s)
        ))
    }
}

/// A media type without parameters (RFC 6838 restricted names):
/// `^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$`.
pub fn check_media_type(s: &str) -> Result<(), String> {
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
        _ => Err(format!(
            "must be a media type like application/spdx+json (type/subtype, no parameters), found {:?}",
            shorten(s)
        )),
    }
}

/// A catalog ref (`scheme://seg/seg...`): a token of at most 512 characters, a lowercase
/// scheme `[a-z][a-z0-9+.-]*`, a non-empty path of non-empty segments, none of them `.` or
/// `..`, and no `?` or `#`. A *prefix* may also end in `/`.
pub fn check_catalog_ref(s: &str, is_prefix: bool) -> Result<(), String> {
    check_token(s, MAX_REF_CHARS)?;
    let Some((scheme, rest)) = s.split_once("://") else {
        return Err(format!(
            "must look like scheme://path (e.g. sourceos://catalog/images/name), found {:?}",
            shorten(s)
        ));
    };
    let sb = scheme.as_bytes();
    if sb.is_empty()
        || !sb[0].is_ascii_lowercase()
        || !sb
            .iter()
            .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'+' | b'.' | b'-'))
    {
        return Err(format!(
            "scheme must match [a-z][a-z0-9+.-]*, found {:?}",
            shorten(scheme)
        ));
    }
    if rest.contains(['?', '#']) {
        return Err("must not contain '?' or '#'".into());
    }
    let path = match rest.strip_suffix('/') {
        Some(p) if is_prefix => p,
        _ => rest,
    };
    if path.is_empty() {
        return Err("must have a path after scheme://".into());
    }
    for seg in path.split('/') {
        if seg.is_empty() {
            return Err(if is_prefix {
                "must not contain empty path segments (//)".into()
            } else {
                "must not contain empty path segments (//) or end with /".into()
            });
        }
        if seg == "." || seg == ".." {
            return Err("must not contain . or .. path segments".into());
        }
    }
    Ok(())
}

/// A verifier key string for an Ed25519 key, in the canonical form the note module emits.
pub fn check_vkey(s: &str) -> Result<Verifier, String> {
    let n = s.chars().count();
    if n > MAX_VKEY_CHARS {
        return Err(format!(
            "must be at most {MAX_VKEY_CHARS} characters, found {n}"
        ));
    }
    let v = Verifier::from_vkey(s)
        .map_err(|e| format!("is not a verifier key string (name+hex8+base64): {e}"))?;
    if !matches!(v.key_type(), KeyType::Ed25519) {
        return Err("must be an Ed25519 (algorithm 0x01) key".into());
    }
    if v.to_vkey() != s {
        return Err("is not in canonical verifier key form".into());
    }
    Ok(v)
}

fn check_api_version(p: &mut Problems, obj: &Map<String, Value>) {
    check_str(p, obj, "", "apiVersion", |s| {
        if s == API_VERSION {
            Ok(())
        } else {
            Err(format!("must be {API_VERSION:?}, found {:?}", shorten(s)))
        }
    });
}

fn check_kind(p: &mut Problems, obj: &Map<String, Value>, kind: &str) {
    check_str(p, obj, "", "kind", |s| {
        if s == kind {
            Ok(())
        } else {
            Err(format!("must be {kind:?}, found {:?}", shorten(s)))
        }
    });
}

fn check_digest(p: &mut Problems, v: &Value, path: &str) {
    if let Some(obj) = object(p, v, path, &[("sha256", true)]) {
        check_str(p, obj, path, "sha256", check_sha256);
    }
}

fn check_artifact_ref(p: &mut Problems, v: &Value, path: &str) {
    if v.is_null() {
        return;
    }
    if !v.is_object() {
        p.push(
            path,
            format!("must be null or an object, found {}", type_name(v)),
        );
        return;
    }
    if let Some(obj) = object(p, v, path, &[("uri", true), ("digest", true)]) {
        check_str(p, obj, path, "uri", |s| check_token(s, MAX_URI_CHARS));
        if let Some(d) = obj.get("digest") {
            check_digest(p, d, &format!("{path}/digest"));
        }
    }
}

fn check_evidence_item(p: &mut Problems, v: &Value, path: &str) {
    let fields = [
        ("type", true),
        ("mediaType", true),
        ("digest", true),
        ("uri", true),
        ("size", true),
    ];
    let Some(obj) = object(p, v, path, &fields) else {
        return;
    };
    check_str(p, obj, path, "type", check_evidence_type);
    check_str(p, obj, path, "mediaType", check_media_type);
    if let Some(d) = obj.get("digest") {
        check_digest(p, d, &format!("{path}/digest"));
    }
    check_str(p, obj, path, "uri", |s| check_token(s, MAX_URI_CHARS));
    if let Some(size) = obj.get("size") {
        match size.as_u64() {
            Some(n) if n <= MAX_SAFE_INTEGER => {}
            _ => p.push(
                &format!("{path}/size"),
                format!("must be an integer from 0 to {MAX_SAFE_INTEGER}"),
            ),
        }
    }
}

/// Walks a `CatalogPublicationRequest` value, recording every problem.
pub fn check_publication(p: &mut Problems, v: &Value) {
    let fields = [
        ("apiVersion", true),
        ("kind", true),
        ("subject", true),
        ("targetCatalogRef", true),
        ("channel", true),
        ("requesterRef", true),
        ("evidence", true),
        ("agentplaneRefs", true),
    ];
    let Some(obj) = object(p, v, "", &fields) else {
        return;
    };
    check_api_version(p, obj);
    check_kind(p, obj, "CatalogPublicationRequest");
    if let Some(s) = obj.get("subject") {
        if let Some(so) = object(p, s, "/subject", &[("name", true), ("digest", true)]) {
            check_str(p, so, "/subject", "name", |s| check_token(s, MAX_REF_CHARS));
            if let Some(d) = so.get("digest") {
                check_digest(p, d, "/subject/digest");
            }
        }
    }
    check_str(p, obj, "", "targetCatalogRef", |s| {
        check_catalog_ref(s, false)
    });
    check_str(p, obj, "", "channel", check_channel);
    check_str(p, obj, "", "requesterRef", |s| {
        check_token(s, MAX_REF_CHARS)
    });
    if let Some(items) = array(p, obj, "", "evidence") {
        if items.len() > MAX_EVIDENCE {
            p.push(
                "/evidence",
                format!(
                    "must have at most {MAX_EVIDENCE} items, found {}",
                    items.len()
                ),
            );
        }
        for (i, item) in items.iter().enumerate().take(MAX_EVIDENCE) {
            check_evidence_item(p, item, &format!("/evidence/{i}"));
        }
    }
    if let Some(a) = obj.get("agentplaneRefs") {
        let keys = [
            "validationArtifactRef",
            "runArtifactRef",
            "replayArtifactRef",
        ];
        let fields: Vec<(&str, bool)> = keys.iter().map(|k| (*k, true)).collect();
        if let Some(ao) = object(p, a, "/agentplaneRefs", &fields) {
            for k in keys {
                if let Some(r) = ao.get(k) {
                    check_artifact_ref(p, r, &format!("/agentplaneRefs/{k}"));
                }
            }
        }
    }
}

fn check_unique_list(
    p: &mut Problems,
    obj: &Map<String, Value>,
    key: &str,
    check: impl Fn(&str) -> Result<(), String>,
) {
    let Some(items) = array(p, obj, "", key) else {
        return;
    };
    let path = format!("/{key}");
    if items.is_empty() {
        p.push(&path, "must have at least 1 item");
    }
    if items.len() > MAX_GRANT_ITEMS {
        p.push(
            &path,
            format!(
                "must have at most {MAX_GRANT_ITEMS} items, found {}",
                items.len()
            ),
        );
    }
    for (i, item) in items.iter().enumerate().take(MAX_GRANT_ITEMS) {
        let ip = format!("{path}/{i}");
        match item.as_str() {
            None => p.push(&ip, format!("must be a string, found {}", type_name(item))),
            Some(s) => {
                if let Err(m) = check(s) {
                    p.push(&ip, m);
                } else if items[..i].iter().any(|o| o.as_str() == Some(s)) {
                    p.push(&ip, "duplicates an earlier item");
                }
            }
        }
    }
}

/// Walks a `PublisherGrant` value, recording every problem.
pub fn check_grant(p: &mut Problems, v: &Value) {
    let fields = [
        ("apiVersion", true),
        ("kind", true),
        ("publisherKey", true),
        ("role", true),
        ("targetPrefixes", true),
        ("channels", true),
    ];
    let Some(obj) = object(p, v, "", &fields) else {
        return;
    };
    check_api_version(p, obj);
    check_kind(p, obj, "PublisherGrant");
    check_str(p, obj, "", "publisherKey", |s| check_vkey(s).map(|_| ()));
    check_str(p, obj, "", "role", |s| {
        if Role::ALL.contains(&s) {
            Ok(())
        } else {
            Err(format!(
                "must be one of {:?}, found {:?}",
                Role::ALL,
                shorten(s)
            ))
        }
    });
    check_unique_list(p, obj, "targetPrefixes", |s| check_catalog_ref(s, true));
    check_unique_list(p, obj, "channels", |s| {
        if s == ANY_CHANNEL {
            Ok(())
        } else {
            check_channel(s).map_err(|m| format!("{m} (or \"*\" for any channel)"))
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_on_boundaries() {
        assert!(prefix_matches("s://c/images/", "s://c/images/x"));
        assert!(prefix_matches("s://c/images", "s://c/images/x"));
        assert!(prefix_matches("s://c/images/x", "s://c/images/x"));
        assert!(!prefix_matches("s://c/img", "s://c/images"));
        assert!(!prefix_matches("s://c/images/x", "s://c/images/xy"));
        assert!(!prefix_matches("s://c/images/", "s://c/other/x"));
    }

    #[test]
    fn catalog_refs() {
        assert!(check_catalog_ref("sourceos://catalog/images/a", false).is_ok());
        assert!(check_catalog_ref("sourceos://catalog/images/", true).is_ok());
        for bad in [
            "sourceos://catalog/images/",
            "sourceos://catalog//a",
            "sourceos://catalog/../a",
            "sourceos://catalog/./a",
            "sourceos://",
            "Sourceos://a",
            "catalog/images/a",
            "sourceos://a?b",
            "sourceos://a b",
            "",
        ] {
            assert!(check_catalog_ref(bad, false).is_err(), "{bad}");
        }
        assert!(check_catalog_ref("sourceos://a//", true).is_err());
        assert!(check_catalog_ref("sourceos:///", true).is_err());
    }

    #[test]
    fn field_checks() {
        assert!(check_channel("dev").is_ok());
        assert!(check_channel("-dev").is_err());
        assert!(check_channel(&"a".repeat(33)).is_err());
        assert!(check_channel(&"a".repeat(32)).is_ok());
        assert!(check_media_type("application/spdx+json").is_ok());
        assert!(check_media_type("application/json; charset=utf-8").is_err());
        assert!(check_media_type("application").is_err());
        assert!(check_sha256(&"a".repeat(64)).is_ok());
        assert!(check_sha256(&"A".repeat(64)).is_err());
        assert!(check_sha256(&"a".repeat(63)).is_err());
        assert!(check_token("x\u{7}y", 10).is_err());
        assert!(check_token("x\u{3000}y", 10).is_err());
        assert!(check_token("héllo", 5).is_ok());
        assert!(check_token("héllo!", 5).is_err());
    }
}
