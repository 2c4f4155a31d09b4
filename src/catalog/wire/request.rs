//! The rules of a request payload: the validation walk of a `CatalogPublicationRequest`
//! and a `PublisherGrant`, parsing either (or a decision) into its typed form
//! ([`RequestPayload`]), and the `problems()` of the typed requests.
//!
//! Validation walks the JSON value and reports *every* problem it finds, each as
//! `"<json pointer>: <problem>"`; only when the walk finds nothing is the payload
//! deserialized into the strict (`deny_unknown_fields`) Rust types, which also rejects
//! duplicate keys. The rules are mirrored exactly by `schemas/*.schema.json`.
//!
//! May import, from `catalog`: `error`, and in `wire` the layers below it (`validate`,
//! `canonical`, `payload`, `decisions`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::canonical::MAX_SAFE_INTEGER;
use super::decisions::{check_nonce, parse_decision, DecisionKind, DecisionPayload};
use super::json::{parse_value, JsonError};
use super::payload::{
    CatalogPublicationRequest, PublisherGrantRequest, Role, ANY_CHANNEL, API_VERSION, MAX_EVIDENCE,
    MAX_GRANT_ITEMS, MAX_URI_CHARS,
};
use super::time::parse_rfc3339_ms;
use super::validate::{
    array, check_catalog_ref, check_channel, check_evidence_type, check_exact, check_media_type,
    check_sha256, check_str, check_token, check_vkey, object, shorten, type_name, FieldError,
    Problems, MAX_REF_CHARS,
};
use crate::catalog::error::Refusal;

impl CatalogPublicationRequest {
    /// Every problem with this request (empty if valid), as `parse_publication_request` reports them.
    pub fn problems(&self) -> Vec<String> {
        walk_typed(self, walk_publication)
    }
}

impl PublisherGrantRequest {
    /// Every problem with this grant (empty if valid).
    pub fn problems(&self) -> Vec<String> {
        walk_typed(self, walk_grant)
    }
}

/// Runs `walk` over a typed request as JSON, listing every problem.
fn walk_typed<T: Serialize>(request: &T, walk: fn(&mut Problems, &Value)) -> Vec<String> {
    match serde_json::to_value(request) {
        Ok(v) => {
            let mut p = Problems::default();
            walk(&mut p, &v);
            p.finish()
        }
        Err(e) => vec![format!("/: {e}")],
    }
}

/// Parses and validates a `CatalogPublicationRequest` (the DSSE payload, not the envelope).
/// Not JSON is `Malformed`; every schema or field problem is listed in `Invalid`.
pub fn parse_publication_request(json: &[u8]) -> Result<CatalogPublicationRequest, Refusal> {
    let v = outside_json(json, "request")?;
    let mut p = Problems::default();
    walk_publication(&mut p, &v);
    p.into_result()?;
    strict(json)
}

/// Parses and validates a `PublisherGrant` request payload.
pub fn parse_grant_request(json: &[u8]) -> Result<PublisherGrantRequest, Refusal> {
    let v = outside_json(json, "grant")?;
    let mut p = Problems::default();
    walk_grant(&mut p, &v);
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
    Decision(DecisionPayload),
}

/// Parses a DSSE payload whose `kind` decides the type. For a payload already in a leaf:
/// leaves from before duplicate members were refused keep replaying.
pub fn parse_request_payload(json: &[u8]) -> Result<RequestPayload, Refusal> {
    if let Some(payload) = fast_payload(json) {
        return Ok(payload);
    }
    payload_from_value(parse_json(json, "payload")?, json)
}

/// The payload, when it is a valid publication request or decision, found without
/// building a `Value`; `None` otherwise (then the full walk runs and says why, or finds
/// it valid after all). Never `Some` where the full path refuses, and always the same
/// value: replay (every leaf's payload) takes this path.
///
/// A publication request: the strict typed parse succeeding means the JSON holds exactly
/// the members the walk requires, each once (serde refuses a duplicate member of a
/// struct, and the request holds no maps and no optional members), with the types it
/// requires, so the `Value` the walk would see is the typed request's; what is left of
/// the walk are its string and size checks, run here on the typed fields
/// ([`publication_fields_ok`], table-tested against the walk). A decision: the full path
/// parses the `Value` only to read `kind` and `apiVersion` and then calls
/// [`parse_decision`], whose strict parse checks both again; so its success here is the
/// full path's.
fn fast_payload(json: &[u8]) -> Option<RequestPayload> {
    if let Some(request) = fast_publication(json) {
        return Some(RequestPayload::Publication(request));
    }
    #[derive(Deserialize)]
    struct Kind<'a> {
        #[serde(borrow)]
        kind: std::borrow::Cow<'a, str>,
    }
    let kind = DecisionKind::from_name(&serde_json::from_slice::<Kind>(json).ok()?.kind)?;
    parse_decision(kind, json)
        .ok()
        .map(RequestPayload::Decision)
}

/// A valid publication request found by its strict typed parse alone (see
/// [`fast_payload`]); `None` when it is not one, or the typed parse fails.
///
/// This also holds for outside JSON, which refuses a duplicate member anywhere: every
/// object in a publication request is a struct (no maps), and serde refuses a struct
/// member given twice, so a document with a duplicate never passes here.
fn fast_publication(json: &[u8]) -> Option<CatalogPublicationRequest> {
    if !contains(json, b"\"CatalogPublicationRequest\"") {
        return None;
    }
    let request: CatalogPublicationRequest = serde_json::from_slice(json).ok()?;
    publication_fields_ok(&request).then_some(request)
}

/// True if `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The checks of [`walk_publication`] that its typed form does not already guarantee:
/// true exactly when the walk of a request that parsed strictly finds nothing.
fn publication_fields_ok(r: &CatalogPublicationRequest) -> bool {
    let digest_ok = |d: &super::payload::DigestSet| check_sha256(&d.sha256).is_ok();
    let reference_ok = |a: &Option<super::payload::ArtifactRef>| {
        a.as_ref()
            .is_none_or(|a| check_token(&a.uri, MAX_URI_CHARS).is_ok() && digest_ok(&a.digest))
    };
    let refs = &r.agentplane_refs;
    check_token(&r.subject.name, MAX_REF_CHARS).is_ok()
        && digest_ok(&r.subject.digest)
        && check_catalog_ref(&r.target_catalog_ref, false).is_ok()
        && check_channel(&r.channel).is_ok()
        && check_token(&r.requester_ref, MAX_REF_CHARS).is_ok()
        && r.evidence.len() <= MAX_EVIDENCE
        && r.evidence.iter().all(|e| {
            check_evidence_type(&e.evidence_type).is_ok()
                && check_media_type(&e.media_type).is_ok()
                && digest_ok(&e.digest)
                && check_token(&e.uri, MAX_URI_CHARS).is_ok()
                && e.size <= MAX_SAFE_INTEGER
        })
        && reference_ok(&refs.validation_artifact_ref)
        && reference_ok(&refs.run_artifact_ref)
        && reference_ok(&refs.replay_artifact_ref)
}

/// [`parse_request_payload`] for a new submission: a duplicate member is refused too, in
/// the same single parse (see `json.rs`). A valid publication request, the hot path,
/// skips the `Value` tree ([`fast_publication`]).
pub fn parse_outside_payload(json: &[u8]) -> Result<RequestPayload, Refusal> {
    if let Some(request) = fast_publication(json) {
        return Ok(RequestPayload::Publication(request));
    }
    payload_from_value(outside_json(json, "payload")?, json)
}

/// The typed payload from its parsed `v` (and its bytes, for the strict typed parse).
fn payload_from_value(v: Value, json: &[u8]) -> Result<RequestPayload, Refusal> {
    let mut p = Problems::default();
    let Some(obj) = v.as_object() else {
        p.push("", "must be a JSON object");
        return Err(p.into_refusal());
    };
    match obj.get("kind").and_then(Value::as_str) {
        Some("CatalogPublicationRequest") => {
            walk_publication(&mut p, &v);
            p.into_result()?;
            strict(json).map(RequestPayload::Publication)
        }
        Some("PublisherGrant") => {
            walk_grant(&mut p, &v);
            p.into_result()?;
            strict(json).map(RequestPayload::Grant)
        }
        Some(k) if DecisionKind::from_name(k).is_some() => {
            check_api_version(&mut p, obj);
            p.into_result()?;
            match DecisionKind::from_name(k) {
                Some(kind) => parse_decision(kind, json).map(RequestPayload::Decision),
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

/// Outside JSON (a new request, not a payload already in a leaf), parsed once: not JSON is
/// `Malformed`, a duplicate member `Invalid` (see `json.rs`). Leaves are not held to it,
/// so old logs replay unchanged.
fn outside_json(json: &[u8], what: &str) -> Result<Value, Refusal> {
    parse_value(json).map_err(|e| match e {
        JsonError::Duplicate(m) => Refusal::Invalid(vec![format!("/: {m}")]),
        JsonError::Syntax(m) => Refusal::Malformed(format!("{what} is not JSON: {m}")),
    })
}

fn strict<T: for<'de> Deserialize<'de>>(json: &[u8]) -> Result<T, Refusal> {
    // The walk passed; what is left for serde to catch is duplicate keys.
    serde_json::from_slice(json).map_err(|e| Refusal::Invalid(vec![format!("/: {e}")]))
}

// ---------------------------------------------------------------------------------------
// The validation walk.
// ---------------------------------------------------------------------------------------

fn check_api_version(p: &mut Problems, obj: &Map<String, Value>) {
    check_str(p, obj, "", "apiVersion", |s| check_exact(s, API_VERSION));
}

fn check_kind(p: &mut Problems, obj: &Map<String, Value>, kind: &'static str) {
    check_str(p, obj, "", "kind", |s| check_exact(s, kind));
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
pub(crate) fn walk_publication(p: &mut Problems, v: &Value) {
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
    check: impl Fn(&str) -> Result<(), FieldError>,
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
pub(crate) fn walk_grant(p: &mut Problems, v: &Value) {
    let fields = [
        ("apiVersion", true),
        ("kind", true),
        ("publisherKey", true),
        ("role", true),
        ("targetPrefixes", true),
        ("channels", true),
        ("issuedAt", false),
        ("nonce", false),
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
            Err(FieldError::NotOneOf {
                allowed: Role::ALL,
                found: shorten(s),
            })
        }
    });
    check_unique_list(p, obj, "targetPrefixes", |s| check_catalog_ref(s, true));
    check_unique_list(p, obj, "channels", |s| {
        if s == ANY_CHANNEL {
            Ok(())
        } else {
            check_channel(s).map_err(|_| FieldError::NotGrantChannel(shorten(s)))
        }
    });
    check_str(p, obj, "", "issuedAt", |s| {
        parse_rfc3339_ms(s)
            .map(|_| ())
            .ok_or_else(|| FieldError::NotRfc3339(shorten(s)))
    });
    check_str(p, obj, "", "nonce", check_nonce);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The full path alone: the `Value`, its walk, then the strict parse.
    fn full(json: &[u8]) -> Result<RequestPayload, Refusal> {
        payload_from_value(parse_json(json, "payload")?, json)
    }

    fn publication() -> Value {
        let d = "ab".repeat(32);
        json!({"apiVersion": API_VERSION, "kind": "CatalogPublicationRequest",
            "subject": {"name": "quay.io/x/y", "digest": {"sha256": d}},
            "targetCatalogRef": "sourceos://catalog/images/y", "channel": "dev",
            "requesterRef": "socios://pipeline/y",
            "evidence": [{"type": "sbom", "mediaType": "application/spdx+json",
                "digest": {"sha256": d}, "uri": "https://e.example/sbom.json", "size": 10}],
            "agentplaneRefs": {"validationArtifactRef": {"uri": "agentplane://v/1", "digest": {"sha256": d}},
                "runArtifactRef": null, "replayArtifactRef": null}})
    }

    /// Publication requests with every field broken in every way the walk checks (and a
    /// few it leaves to the strict parse), removed and duplicated members, `-0`, an
    /// escaped name, and decisions; the first is the valid request.
    fn corpus() -> Vec<Vec<u8>> {
        let long = "x".repeat(MAX_URI_CHARS + 1);
        let many: Vec<Value> = (0..=MAX_EVIDENCE)
            .map(|_| publication()["evidence"][0].clone())
            .collect();
        let mut cases: Vec<(&str, Value)> = vec![
            ("", Value::Null),
            ("/apiVersion", json!("catalog.srcos.ai/v2")),
            ("/kind", json!("Review")),
            ("/subject/name", json!("")),
            ("/subject/name", json!("a\u{0}b")),
            ("/subject/name", json!("x".repeat(MAX_REF_CHARS + 1))),
            ("/subject/digest/sha256", json!("AB".repeat(32))),
            ("/subject/digest/sha256", json!("ab")),
            ("/subject/digest/sha512", json!("ab")),
            ("/subject/extra", json!(1)),
            ("/targetCatalogRef", json!("no-scheme")),
            ("/targetCatalogRef", json!("s://a/../b")),
            ("/channel", json!("Dev")),
            ("/channel", json!("")),
            ("/requesterRef", json!("")),
            ("/requesterRef", json!(7)),
            ("/evidence", json!([])),
            ("/evidence", Value::Array(many)),
            ("/evidence/0/type", json!("SBOM")),
            ("/evidence/0/mediaType", json!("application")),
            ("/evidence/0/mediaType", json!("a/b;c=d")),
            ("/evidence/0/digest/sha256", json!("zz".repeat(32))),
            ("/evidence/0/uri", json!(long)),
            ("/evidence/0/uri", json!("")),
            ("/evidence/0/size", json!(MAX_SAFE_INTEGER)),
            ("/evidence/0/size", json!(MAX_SAFE_INTEGER + 1)),
            ("/evidence/0/size", json!(-1)),
            ("/evidence/0/size", json!(1.0)),
            ("/evidence/0/extra", json!(1)),
            (
                "/agentplaneRefs/runArtifactRef",
                json!({"uri": "", "digest": {"sha256": "ab".repeat(32)}}),
            ),
            (
                "/agentplaneRefs/runArtifactRef",
                json!({"uri": "u://x", "digest": {"sha256": "ab"}}),
            ),
            ("/agentplaneRefs/runArtifactRef", json!("u://x")),
            ("/agentplaneRefs/validationArtifactRef/uri", json!(long)),
            ("/agentplaneRefs/extraRef", Value::Null),
            ("/extra", json!(1)),
            ("/issuedAt", Value::Null),
        ];
        cases.push(("/agentplaneRefs/runArtifactRef", Value::Null));
        let mut documents: Vec<Vec<u8>> = vec![serde_json::to_vec(&publication()).unwrap()];
        for (path, value) in cases {
            let mut v = publication();
            if path.is_empty() {
                v = value;
            } else {
                let (parent, key) = path.rsplit_once('/').unwrap();
                match v.pointer_mut(parent) {
                    Some(Value::Object(o)) => {
                        o.insert(key.to_string(), value);
                    }
                    _ => panic!("{path}"),
                }
            }
            documents.push(serde_json::to_vec(&v).unwrap());
        }
        // Removed members, a duplicated one, `-0`, an escaped name, and a decision.
        let d = "ab".repeat(32);
        let plain = String::from_utf8(documents[0].clone()).unwrap();
        for text in [
            plain.replace(r#""channel":"dev","#, ""),
            plain.replace(r#""channel":"dev","#, r#""channel":"dev","channel":"dev","#),
            plain.replace(r#""size":10"#, r#""size":-0"#),
            plain.replace(r#""channel":"#, r#""\u0063hannel":"#),
            plain.replace(r#""runArtifactRef":null,"#, ""),
            json!({"apiVersion": API_VERSION, "kind": "Promotion", "issuedAt": "2026-01-01T00:00:00.000Z",
                "nonce": "n".repeat(16), "entry": {"targetCatalogRef": "s://a/b", "subjectDigest": {"sha256": d}},
                "fromChannel": "dev", "toChannel": "candidate"}).to_string(),
            json!({"apiVersion": API_VERSION, "kind": "Promotion",
                "entry": {"targetCatalogRef": "s://a/b", "subjectDigest": {"sha256": d}},
                "fromChannel": "dev", "toChannel": "dev"}).to_string(),
            json!({"apiVersion": "v0", "kind": "Promotion",
                "entry": {"targetCatalogRef": "s://a/b", "subjectDigest": {"sha256": d}},
                "fromChannel": "dev", "toChannel": "candidate"}).to_string(),
            r#"{"kind":"Review","kind":"Promotion"}"#.to_string(),
        ] {
            documents.push(text.into_bytes());
        }
        documents
    }

    /// Every field of a publication request broken in every way the walk checks (and a
    /// few it leaves to the strict parse): the fast path accepts exactly what the full
    /// path accepts, with the same value.
    #[test]
    fn fast_path_agrees_with_the_walk() {
        let documents = corpus();
        let mut accepted = 0;
        for doc in &documents {
            let shown = String::from_utf8_lossy(doc);
            let full = full(doc);
            match fast_payload(doc) {
                Some(fast) => {
                    assert_eq!(Ok(&fast), full.as_ref(), "{shown}");
                    accepted += 1;
                }
                None => assert!(
                    full.is_err(),
                    "the fast path refused what the full path accepts: {shown}"
                ),
            }
            assert_eq!(parse_request_payload(doc), full, "{shown}");
        }
        // The valid publication, with an empty evidence list, the maximal size, a null
        // reference, an escaped member name; the valid promotion.
        assert_eq!(accepted, 6);
    }

    /// A new submission's payload takes the typed parse alone when it is a valid
    /// publication request; it answers exactly what the `Value` path answers, errors
    /// included, for every document of the corpus and for a member duplicated at every
    /// depth of the request (which only the outside path refuses).
    #[test]
    fn outside_fast_path_agrees_with_the_outside_walk() {
        let mut documents = corpus();
        let duplicated = documents.len();
        let plain = String::from_utf8(documents[0].clone()).unwrap();
        let d = "ab".repeat(32);
        for (member, twice) in [
            (r#""channel":"dev""#, r#""channel":"dev","channel":"dev""#),
            (r#""name":"#, r#""name":"x","name":"#),
            (
                &*format!(r#""sha256":"{d}""#),
                &*format!(r#""sha256":"{d}","sha256":"{d}""#),
            ),
            (r#""size":10"#, r#""size":10,"size":10"#),
            (
                r#""runArtifactRef":null"#,
                r#""runArtifactRef":null,"runArtifactRef":null"#,
            ),
            (r#""uri":"agentplane"#, r#""uri":"a://b","uri":"agentplane"#),
            (r#""evidence":["#, r#""evidence":[],"evidence":["#),
        ] {
            assert!(plain.contains(member), "{member}");
            for n in 0..plain.matches(member).count() {
                let at = plain.match_indices(member).nth(n).unwrap().0;
                let mut text = plain.clone();
                text.replace_range(at..at + member.len(), twice);
                documents.push(text.into_bytes());
            }
        }
        let slow = |doc: &[u8]| payload_from_value(outside_json(doc, "payload")?, doc);
        assert!(documents.len() > duplicated + 7);
        for doc in &documents[duplicated..] {
            let refused = slow(doc);
            assert!(
                matches!(&refused, Err(Refusal::Invalid(m)) if m[0].contains("duplicate")),
                "{refused:?}"
            );
        }
        let mut fast = 0;
        for doc in &documents {
            let shown = String::from_utf8_lossy(doc);
            assert_eq!(parse_outside_payload(doc), slow(doc), "{shown}");
            fast += usize::from(fast_publication(doc).is_some());
        }
        // The valid request, and the corpus's other valid publications.
        assert_eq!(fast, 5);
    }
}
