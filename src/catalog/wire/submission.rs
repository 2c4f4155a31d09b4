//! The stateless half of admission: a DSSE submission parsed and validated
//! ([`Submission`]), and its signatures checked against a snapshot of known keys
//! ([`Verified`], [`KeyDirectory`]). Both run in the HTTP handlers, in parallel, before
//! the sequencer; what the state allows is decided later, by `catalog::rules`.
//!
//! May import, from `catalog`: `error`, and in `wire` the layers below it (`validate`,
//! `dsse`, `request`, `decisions`, `evidence`, `leaf`).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::decisions::{DecisionKind, DecisionPayload};
use super::dsse::{decode_base64, Envelope, EnvelopeSignature, MAX_SIGNATURES, PAYLOAD_TYPE};
use super::evidence::EvidenceReport;
use super::json::parse_value;
use super::leaf::MAX_LEAF_BYTES;
use super::payload::{CatalogPublicationRequest, PublisherGrantRequest};
use super::request::{parse_outside_payload, parse_request_payload, RequestPayload};
use super::validate::{check_token, object, string, type_name, Problems};
use crate::catalog::error::Refusal;
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

    /// Adds `key` (a later key with the same short id replaces it); only the state's
    /// writes call this.
    pub(in crate::catalog) fn insert(&mut self, key: Verifier) {
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
        let v: Value = parse_value(body)
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
            match parse_outside_payload(bytes) {
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
