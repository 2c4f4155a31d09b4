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
    payload_from_value(parse_json(json, "payload")?, json)
}

/// [`parse_request_payload`] for a new submission: a duplicate member is refused too, in
/// the same single parse (see `json.rs`).
pub fn parse_outside_payload(json: &[u8]) -> Result<RequestPayload, Refusal> {
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
