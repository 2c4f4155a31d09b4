//! Admission: stateless parsing and signature checks ([`Submission`], [`Verified`]), the
//! stateful decision ([`Catalog::admit`]) and its auditor's re-check ([`audit_leaf`]).
//!
//! The authorization rules live in one function shared by `admit` and `apply`, so the state
//! that admission reads is the state that replaying the leaves produces.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::decisions::{DecisionKind, DecisionPayload};
use super::dsse::{decode_base64, Envelope, EnvelopeSignature, MAX_SIGNATURES, PAYLOAD_TYPE};
use super::error::Refusal;
use super::evidence::EvidenceReport;
use super::leaf::{
    DecisionAdmission, DecisionLeaf, GrantAdmission, GrantLeaf, Leaf, PublicationAdmission,
    PublicationKind, PublicationLeaf, MAX_LEAF_BYTES,
};
use super::prepare::PreparedLeaf;
use super::request::{
    check_token, check_vkey, object, parse_request_payload, string, type_name, ApiVersion,
    CatalogPublicationRequest, DigestSet, Problems, PublisherGrantKind, PublisherGrantRequest,
    RequestPayload, Role,
};
use super::state::Catalog;
use super::time::{format_rfc3339_ms, parse_rfc3339_ms};
use crate::note::Verifier;

/// Longest DSSE `keyid`, in characters.
pub const MAX_KEYID_CHARS: usize = 256;

/// Snapshot of every key the authority knows (admins and granted publishers), cheap to clone
/// (Arc inside); looked up by DSSE keyid (`name+hex8`).
#[derive(Clone, Debug, Default)]
pub struct KeyDirectory {
    keys: Arc<BTreeMap<String, Verifier>>,
}

impl KeyDirectory {
    /// The key whose `name+hex8` is `short_id`.
    pub fn get(&self, short_id: &str) -> Option<&Verifier> {
        self.keys.get(short_id)
    }

    /// A directory holding exactly these keys (a later key with the same short id wins).
    pub fn from_verifiers<I: IntoIterator<Item = Verifier>>(keys: I) -> KeyDirectory {
        let mut d = KeyDirectory::default();
        for k in keys {
            d.insert(k);
        }
        d
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True if no key is known.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Every `(short id, key)`, sorted by short id.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Verifier)> {
        self.keys.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub(super) fn insert(&mut self, key: Verifier) {
        Arc::make_mut(&mut self.keys).insert(key.short_id(), key);
    }
}

/// Which kind of request a submission carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SubmissionKind {
    /// A `CatalogPublicationRequest`.
    Publication,
    /// A `PublisherGrant`.
    Grant,
    /// A decision (`PolicySet`, `PublisherRevoke`, `Review`, `Promotion`, `StatusChange`).
    Decision(DecisionKind),
}

#[derive(Debug)]
struct SubmissionInner {
    envelope: Envelope,
    payload: RequestPayload,
    dedup_key: [u8; 32],
}

/// A parsed, structurally valid DSSE submission (stateless; safe to run in parallel before
/// sequencing). Cheap to clone (Arc inside).
#[derive(Clone, Debug)]
pub struct Submission {
    inner: Arc<SubmissionInner>,
}

fn check_payload_type(p: &mut Problems, t: &str) -> bool {
    if t == PAYLOAD_TYPE {
        return true;
    }
    let shown: String = t.chars().take(128).collect();
    p.push(
        "/payloadType",
        format!("must be {PAYLOAD_TYPE:?}, found {shown:?}"),
    );
    false
}

fn check_signature_count(p: &mut Problems, n: usize) {
    if n == 0 {
        p.push("/signatures", "must hold at least 1 signature");
    } else if n > MAX_SIGNATURES {
        p.push(
            "/signatures",
            format!("must hold at most {MAX_SIGNATURES} signatures, found {n}"),
        );
    }
}

fn check_signature(
    p: &mut Problems,
    i: usize,
    sig: &EnvelopeSignature,
    earlier: &[EnvelopeSignature],
) {
    if let Err(m) = check_token(&sig.keyid, MAX_KEYID_CHARS) {
        p.push(&format!("/signatures/{i}/keyid"), m);
    } else if earlier.iter().any(|e| e.keyid == sig.keyid) {
        p.push(
            &format!("/signatures/{i}/keyid"),
            "duplicates the keyid of an earlier signature",
        );
    }
    if sig.sig.len() != 64 {
        p.push(
            &format!("/signatures/{i}/sig"),
            format!(
                "must be a 64-byte Ed25519 signature, found {} bytes",
                sig.sig.len()
            ),
        );
    }
}

fn too_large(n: usize) -> Refusal {
    Refusal::TooLarge(format!(
        "the payload is {n} base64 characters, so the log entry would exceed the {MAX_LEAF_BYTES}-byte limit of tlog-tiles entries"
    ))
}

impl Submission {
    /// Envelope + payload parse + validation; the payload `kind` decides the variant.
    /// Not JSON / not an object / bad base64 is `Malformed`; every schema or field problem of
    /// the envelope (`"envelope /..."`) and of the payload (`"/..."`) is listed in `Invalid`;
    /// a payload that cannot fit in a log entry is `TooLarge`.
    pub fn parse(body: &[u8]) -> Result<Submission, Refusal> {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| Refusal::Malformed(format!("request body is not JSON: {e}")))?;
        let Some(obj) = v.as_object() else {
            return Err(Refusal::Malformed(format!(
                "request body is not a DSSE envelope: expected a JSON object, found {}",
                type_name(&v)
            )));
        };
        let mut p = Problems::with_prefix("envelope ");
        let mut bad_base64 = Vec::new();
        object(
            &mut p,
            &v,
            "",
            &[
                ("payloadType", true),
                ("payload", true),
                ("signatures", true),
            ],
        );
        let payload_type = string(&mut p, obj, "", "payloadType");
        let type_ok = payload_type.is_some_and(|t| check_payload_type(&mut p, t));
        let mut payload = None;
        if let Some(s) = string(&mut p, obj, "", "payload") {
            if s.len() > MAX_LEAF_BYTES {
                return Err(too_large(s.len()));
            }
            payload = decode_base64(s);
            if payload.is_none() {
                bad_base64.push("/payload".to_string());
            }
        }
        let mut sigs: Vec<EnvelopeSignature> = Vec::new();
        let mut sigs_ok = false;
        match obj.get("signatures") {
            None => {}
            Some(Value::Array(items)) => {
                check_signature_count(&mut p, items.len());
                sigs_ok = true;
                for (i, item) in items.iter().enumerate().take(MAX_SIGNATURES) {
                    let path = format!("/signatures/{i}");
                    let Some(so) = object(&mut p, item, &path, &[("keyid", true), ("sig", true)])
                    else {
                        sigs_ok = false;
                        continue;
                    };
                    let keyid = string(&mut p, so, &path, "keyid");
                    let sig = string(&mut p, so, &path, "sig").and_then(|s| {
                        let d = decode_base64(s);
                        if d.is_none() {
                            bad_base64.push(format!("{path}/sig"));
                        }
                        d
                    });
                    match (keyid, sig) {
                        (Some(keyid), Some(sig)) => {
                            let sig = EnvelopeSignature {
                                keyid: keyid.to_string(),
                                sig,
                            };
                            check_signature(&mut p, i, &sig, &sigs);
                            sigs.push(sig);
                        }
                        _ => sigs_ok = false,
                    }
                }
            }
            Some(other) => p.push(
                "/signatures",
                format!("must be an array, found {}", type_name(other)),
            ),
        }
        if !bad_base64.is_empty() {
            return Err(Refusal::Malformed(format!(
                "invalid base64 (standard or URL-safe expected) at envelope {}",
                bad_base64.join(", ")
            )));
        }
        let mut parsed = None;
        if let (true, Some(bytes)) = (type_ok, &payload) {
            match parse_request_payload(bytes) {
                Ok(pl) => parsed = Some(pl),
                Err(Refusal::Invalid(list)) => list.into_iter().for_each(|m| p.push_raw(m)),
                Err(Refusal::Malformed(m)) if p.is_empty() => return Err(Refusal::Malformed(m)),
                Err(other) => p.push("/payload", other),
            }
        }
        p.into_result()?;
        match (payload_type, payload, parsed, sigs_ok) {
            (Some(t), Some(payload), Some(pl), true) => Ok(Submission::build(
                Envelope {
                    payload_type: t.to_string(),
                    payload,
                    signatures: sigs,
                },
                pl,
            )),
            // Every path that leaves a part unset records a problem above.
            _ => Err(Refusal::Invalid(vec![
                "envelope /: incomplete envelope".to_string()
            ])),
        }
    }

    /// The same checks as [`Submission::parse`] for an envelope already in memory (e.g. read
    /// back from a leaf).
    pub fn from_envelope(envelope: Envelope) -> Result<Submission, Refusal> {
        let mut p = Problems::with_prefix("envelope ");
        let type_ok = check_payload_type(&mut p, &envelope.payload_type);
        check_signature_count(&mut p, envelope.signatures.len());
        for (i, sig) in envelope.signatures.iter().enumerate().take(MAX_SIGNATURES) {
            check_signature(&mut p, i, sig, &envelope.signatures[..i]);
        }
        let mut parsed = None;
        if type_ok {
            match parse_request_payload(&envelope.payload) {
                Ok(pl) => parsed = Some(pl),
                Err(Refusal::Invalid(list)) => list.into_iter().for_each(|m| p.push_raw(m)),
                Err(other) if p.is_empty() => return Err(other),
                Err(other) => p.push("/payload", other),
            }
        }
        p.into_result()?;
        match parsed {
            Some(pl) => Ok(Submission::build(envelope, pl)),
            None => Err(Refusal::Invalid(vec![
                "envelope /payloadType: unsupported payload type".to_string(),
            ])),
        }
    }

    fn build(envelope: Envelope, payload: RequestPayload) -> Submission {
        let dedup_key = Sha256::digest(&envelope.payload).into();
        Submission {
            inner: Arc::new(SubmissionInner {
                envelope,
                payload,
                dedup_key,
            }),
        }
    }

    /// Publication or Grant.
    pub fn kind(&self) -> SubmissionKind {
        match &self.inner.payload {
            RequestPayload::Publication(_) => SubmissionKind::Publication,
            RequestPayload::Grant(_) => SubmissionKind::Grant,
            RequestPayload::Decision(d) => SubmissionKind::Decision(d.kind()),
        }
    }

    /// SHA-256 of the payload bytes: two submissions with the same payload are the same request.
    pub fn dedup_key(&self) -> [u8; 32] {
        self.inner.dedup_key
    }

    /// The envelope as submitted (base64 decoded).
    pub fn envelope(&self) -> &Envelope {
        &self.inner.envelope
    }

    /// The validated payload.
    pub fn payload(&self) -> &RequestPayload {
        &self.inner.payload
    }

    /// The publication request, if this is one.
    pub fn publication(&self) -> Option<&CatalogPublicationRequest> {
        match &self.inner.payload {
            RequestPayload::Publication(r) => Some(r),
            _ => None,
        }
    }

    /// The grant request, if this is one.
    pub fn grant(&self) -> Option<&PublisherGrantRequest> {
        match &self.inner.payload {
            RequestPayload::Grant(g) => Some(g),
            _ => None,
        }
    }

    /// The decision payload, if this is one.
    pub fn decision(&self) -> Option<&DecisionPayload> {
        match &self.inner.payload {
            RequestPayload::Decision(d) => Some(d),
            _ => None,
        }
    }

    /// Verifies that at least one signature is by a key in `keys` and valid over PAE; returns
    /// the signer(s). Stateless given the snapshot. `Forbidden` if no signature is by a known
    /// key, or none of those by known keys verifies.
    pub fn verify(&self, keys: &KeyDirectory) -> Result<Verified, Refusal> {
        let env = &self.inner.envelope;
        let pae = env.pae();
        let mut signers: Vec<Verifier> = Vec::new();
        let mut bad = Vec::new();
        for sig in &env.signatures {
            if let Some(key) = keys.get(&sig.keyid) {
                if key.verify_bytes(&pae, &sig.sig) {
                    signers.push(key.clone());
                } else {
                    bad.push(sig.keyid.as_str());
                }
            }
        }
        match signers.first().cloned() {
            Some(signer) => Ok(Verified {
                submission: self.clone(),
                signer,
                signers,
                evidence: None,
            }),
            None if !bad.is_empty() => Err(Refusal::Forbidden(format!(
                "the signature by {} does not verify over the DSSE PAE of this envelope",
                bad.join(", ")
            ))),
            None => Err(Refusal::Forbidden(format!(
                "no signature is by a key this authority knows (keyid {})",
                env.signatures
                    .iter()
                    .map(|s| s.keyid.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}

/// The submission plus the verifier(s) whose signatures were checked.
#[derive(Clone, Debug)]
pub struct Verified {
    submission: Submission,
    signer: Verifier,
    signers: Vec<Verifier>,
    evidence: Option<Arc<EvidenceReport>>,
}

impl Verified {
    /// Attaches the stateless analysis of the request's evidence blobs, which admission
    /// checks against the channel policy and records in the leaf.
    pub fn with_evidence(mut self, report: EvidenceReport) -> Verified {
        self.evidence = Some(Arc::new(report));
        self
    }

    /// The attached evidence analysis, if any (none means no blob was held).
    pub fn evidence(&self) -> Option<&EvidenceReport> {
        self.evidence.as_deref()
    }

    /// The verified submission.
    pub fn submission(&self) -> &Submission {
        &self.submission
    }

    /// The first key (in envelope order) whose signature verified.
    pub fn signer(&self) -> &Verifier {
        &self.signer
    }

    /// Every key whose signature verified, in envelope order.
    pub fn signers(&self) -> &[Verifier] {
        &self.signers
    }
}

/// What the authorization rules allowed; shared by `admit` and `apply`.
pub(super) enum Authorized {
    /// An admin grants `publisher`.
    Grant { publisher: Box<Verifier> },
    /// A publisher publishes under the grant at leaf `grant_index`, admitted by the
    /// policy set at leaf `policy_index`.
    Publication { grant_index: u64, policy_index: u64 },
    /// A decision passed its gate.
    Decision(super::gates::DecisionAuth),
}

impl Catalog {
    /// The authorization rules (no signature checks): grants must be signed by an admin and
    /// name a key whose id is free; publications need the first grant (in leaf order) whose
    /// prefixes cover the target and whose channels cover the channel.
    pub(super) fn authorize(
        &self,
        payload: &RequestPayload,
        signer: &Verifier,
        report: &EvidenceReport,
    ) -> Result<Authorized, Refusal> {
        let Some(auth) = &self.authority else {
            return Err(Refusal::Forbidden(
                "the authority has no genesis entry yet".into(),
            ));
        };
        let signer_id = signer.short_id();
        match payload {
            RequestPayload::Decision(d) => {
                self.authorize_decision(d, signer).map(Authorized::Decision)
            }
            RequestPayload::Grant(g) => {
                if !auth.admins.contains(signer) {
                    return Err(Refusal::Forbidden(format!(
                        "key {signer_id} is not an admin of this authority; only admin keys may sign grants"
                    )));
                }
                let publisher = check_vkey(&g.publisher_key)
                    .map_err(|m| Refusal::Invalid(vec![format!("/publisherKey: {m}")]))?;
                let id = publisher.short_id();
                self.check_not_revoked(&publisher)?;
                if publisher.public_key() == auth.log_key.public_key()
                    || id == auth.log_key.short_id()
                {
                    return Err(Refusal::Forbidden(
                        "the log's own key cannot be granted a role".into(),
                    ));
                }
                if let Some(existing) = self.keys.get(&id) {
                    if existing != &publisher {
                        return Err(Refusal::Invalid(vec![format!(
                            "/publisherKey: key id {id} is already used by a different key"
                        )]));
                    }
                }
                Ok(Authorized::Grant {
                    publisher: Box::new(publisher),
                })
            }
            RequestPayload::Publication(r) => {
                self.check_not_revoked(signer)?;
                let principal = self
                    .principals
                    .get(&signer_id)
                    .filter(|p| &p.verifier == signer && !p.grants.is_empty())
                    .ok_or_else(|| {
                        Refusal::Forbidden(format!("key {signer_id} holds no publisher grant"))
                    })?;
                let target = r.target_catalog_ref.as_str();
                let channel = r.channel.as_str();
                let publisher_grants = || {
                    principal
                        .grants
                        .iter()
                        .filter(|g| g.role == Role::Publisher)
                };
                if let Some(g) = publisher_grants().find(|g| g.covers(target, channel)) {
                    let policy_index = self.check_publication_policy(r, report)?;
                    return Ok(Authorized::Publication {
                        grant_index: g.leaf_index,
                        policy_index,
                    });
                }
                if publisher_grants().any(|g| g.covers_target(target)) {
                    let mut channels: Vec<&str> = publisher_grants()
                        .filter(|g| g.covers_target(target))
                        .flat_map(|g| g.channels.iter().map(String::as_str))
                        .collect();
                    channels.sort_unstable();
                    channels.dedup();
                    Err(Refusal::Forbidden(format!(
                        "key {signer_id} may not publish to channel {channel:?} under {target}; granted channels there: {}",
                        channels.join(", ")
                    )))
                } else {
                    let mut prefixes: Vec<&str> = publisher_grants()
                        .flat_map(|g| g.target_prefixes.iter().map(String::as_str))
                        .collect();
                    prefixes.sort_unstable();
                    prefixes.dedup();
                    Err(Refusal::Forbidden(format!(
                        "target {target} is outside the prefixes granted to key {signer_id}: {}",
                        prefixes.join(", ")
                    )))
                }
            }
        }
    }

    /// Stateful admission against the current state: is the signer an admin (grants) /
    /// granted for this target prefix and channel (publications)? Returns the canonical leaf
    /// bytes. Does not change state: the sequencer must `apply` the bytes before admitting
    /// the next submission.
    ///
    /// The signer recorded is the first signature, in envelope order, whose key the current
    /// state authorizes and whose signature verifies (already-verified signers are not
    /// checked again), so the choice does not depend on the snapshot `verify` used.
    /// `accepted_at_ms` is the sequencer's clock, passed in; it is never read here.
    pub fn admit(&self, verified: &Verified, accepted_at_ms: u64) -> Result<Vec<u8>, Refusal> {
        self.admit_as(verified, accepted_at_ms, self.applied_size())
            .map(|(bytes, _)| bytes)
    }

    /// [`Catalog::admit`], also returning the leaf ready for
    /// [`Catalog::apply_prepared`] as leaf `index`, so the sequencer does not parse back
    /// the bytes it just encoded. Applying it has the same effect as applying the bytes:
    /// `apply_prepared` runs every stateful rule again, and the encoding is the one
    /// `Leaf::parse` accepts (replay and audits re-check that from the bytes).
    pub fn admit_as(
        &self,
        verified: &Verified,
        accepted_at_ms: u64,
        index: u64,
    ) -> Result<(Vec<u8>, PreparedLeaf), Refusal> {
        let accepted_at = format_rfc3339_ms(accepted_at_ms).ok_or_else(|| {
            Refusal::Invalid(vec![format!(
                "acceptedAt: {accepted_at_ms} ms is past year 9999"
            )])
        })?;
        let sub = &verified.submission;
        let env = sub.envelope();
        let mut pae = None;
        let mut first_err = None;
        for sig in &env.signatures {
            let Some(key) = self.keys.get(&sig.keyid) else {
                continue;
            };
            let report = verified.evidence.as_deref().cloned().unwrap_or_default();
            let authorized = match self.authorize(sub.payload(), key, &report) {
                Ok(a) => a,
                Err(e) => {
                    first_err.get_or_insert(e);
                    continue;
                }
            };
            let valid = verified.signers.contains(key)
                || key.verify_bytes(pae.get_or_insert_with(|| env.pae()), &sig.sig);
            if !valid {
                first_err.get_or_insert_with(|| {
                    Refusal::Forbidden(format!(
                        "the signature by {} does not verify over the DSSE PAE of this envelope",
                        sig.keyid
                    ))
                });
                continue;
            }
            let leaf = build_leaf(sub, accepted_at, key, authorized, report);
            let bytes = leaf
                .to_bytes()
                .map_err(|e| Refusal::Malformed(format!("cannot encode the entry: {e}")))?;
            if bytes.len() > MAX_LEAF_BYTES {
                return Err(Refusal::TooLarge(format!(
                    "the log entry would be {} bytes; tlog-tiles entries are at most {MAX_LEAF_BYTES}",
                    bytes.len()
                )));
            }
            return Ok((bytes, PreparedLeaf::admitted(index, leaf, sub)));
        }
        Err(first_err.unwrap_or_else(|| {
            Refusal::Forbidden("no signature is by a key this authority currently knows".into())
        }))
    }
}

fn build_leaf(
    sub: &Submission,
    accepted_at: String,
    signer: &Verifier,
    a: Authorized,
    report: EvidenceReport,
) -> Leaf {
    let request_digest = DigestSet::from_sha256(&sub.dedup_key());
    let signer = signer.short_id();
    let envelope = sub.envelope().clone();
    match a {
        Authorized::Grant { .. } => Leaf::Grant(GrantLeaf {
            api_version: ApiVersion::V1,
            kind: PublisherGrantKind::PublisherGrant,
            envelope,
            admission: GrantAdmission {
                accepted_at,
                signer,
                request_digest,
            },
        }),
        Authorized::Publication {
            grant_index,
            policy_index,
        } => Leaf::Publication(PublicationLeaf {
            api_version: ApiVersion::V1,
            kind: PublicationKind::Publication,
            envelope,
            admission: PublicationAdmission {
                accepted_at,
                signer,
                grant_index,
                request_digest,
                policy_index: Some(policy_index),
                evidence: (!report.is_empty()).then_some(report),
            },
        }),
        Authorized::Decision(d) => Leaf::Decision(DecisionLeaf {
            api_version: ApiVersion::V1,
            kind: match sub.payload() {
                RequestPayload::Decision(p) => p.kind(),
                // authorize() yields Decision only for decision payloads.
                _ => DecisionKind::Review,
            },
            envelope,
            admission: DecisionAdmission {
                accepted_at,
                signer,
                request_digest,
                grant_index: d.grant_index,
                publication_index: d.publication_index,
                policy_index: d.policy_index,
            },
        }),
    }
}

/// Re-checks a leaf as an auditor would: parse, signatures, and admission against the state
/// *before* it (used by monitors; also used by tests to prove admit/apply agree). The leaf is
/// accepted only if re-admitting its envelope at its recorded time yields the identical bytes.
pub fn audit_leaf(state: &Catalog, index: u64, leaf: &[u8]) -> Result<(), Refusal> {
    if index != state.applied_size() {
        return Err(Refusal::Invalid(vec![format!(
            "leaf {index} cannot be audited against a state of size {}",
            state.applied_size()
        )]));
    }
    let parsed = Leaf::parse(leaf).map_err(|e| Refusal::Malformed(format!("leaf {index}: {e}")))?;
    let mut recorded_report = None;
    let (envelope, accepted_at, kind) = match parsed {
        Leaf::Genesis(g) => {
            if index != 0 {
                return Err(Refusal::Forbidden(format!(
                    "leaf {index}: AuthorityGenesis may only be leaf 0"
                )));
            }
            let bad = |m: String| Refusal::Invalid(vec![format!("leaf 0: {m}")]);
            let log_key = check_vkey(&g.log_key).map_err(|m| bad(format!("logKey {m}")))?;
            let admins = g
                .admin_keys
                .iter()
                .map(|k| check_vkey(k).map_err(|m| bad(format!("adminKeys: {m}"))))
                .collect::<Result<Vec<_>, _>>()?;
            let ms = parse_rfc3339_ms(&g.created_at)
                .ok_or_else(|| bad(format!("createdAt {:?} is not RFC 3339", g.created_at)))?;
            let expected = Catalog::genesis_leaf(&g.origin, &log_key, &admins, ms)
                .map_err(|e| bad(e.to_string()))?;
            return if expected == leaf {
                Ok(())
            } else {
                Err(bad(
                    "does not match the genesis entry its fields produce".into()
                ))
            };
        }
        Leaf::Grant(g) => (g.envelope, g.admission.accepted_at, SubmissionKind::Grant),
        Leaf::Publication(p) => {
            // The auditor has the leaf, not necessarily the blobs: it re-checks the
            // policy decision against the recorded analysis (re-analyzing the blobs, where
            // it holds them, is `evidence::analyze`).
            recorded_report = p.admission.evidence;
            (
                p.envelope,
                p.admission.accepted_at,
                SubmissionKind::Publication,
            )
        }
        Leaf::Decision(d) => (
            d.envelope,
            d.admission.accepted_at,
            SubmissionKind::Decision(d.kind),
        ),
    };
    let sub = Submission::from_envelope(envelope)?;
    if sub.kind() != kind {
        return Err(Refusal::Invalid(vec![format!(
            "leaf {index}: a {kind:?} leaf holds a {:?} request",
            sub.kind()
        )]));
    }
    let ms = parse_rfc3339_ms(&accepted_at).ok_or_else(|| {
        Refusal::Invalid(vec![format!(
            "leaf {index}: acceptedAt {accepted_at:?} is not RFC 3339"
        )])
    })?;
    let mut verified = sub.verify(&state.keys())?;
    if let Some(report) = recorded_report {
        verified = verified.with_evidence(report);
    }
    let expected = state.admit(&verified, ms)?;
    if expected == leaf {
        Ok(())
    } else {
        Err(Refusal::Forbidden(format!(
            "leaf {index}: the admission record differs from the one the authority's rules produce"
        )))
    }
}
