//! Admission, the stateful half: the leaf the rules make of a verified submission
//! ([`Catalog::admit`]), leaf 0 ([`Catalog::genesis_leaf`]), and the auditor's re-check of
//! a leaf ([`audit_leaf`]), and whether a duplicate may be answered with its earlier leaf
//! ([`Catalog::duplicate_in_force`]). None of it changes the state: the sequencer applies what
//! `admit` returns (`apply.rs`) before it admits the next submission.
//!
//! Layer 4 of `catalog`, beside `apply` (neither imports the other): may import `error`,
//! `wire`, `model` and `rules`.

use crate::catalog::error::{CatalogError, Refusal};
use crate::catalog::model::entry::EntryAction;
use crate::catalog::model::state::Catalog;
use crate::catalog::rules::authorize::{authorize, Authorized};
use crate::catalog::rules::hardened::check_v2;
use crate::catalog::rules::roles::check_genesis;
use crate::catalog::wire::canonical::to_canonical_vec;
use crate::catalog::wire::decisions::{DecisionKind, DecisionPayload};
use crate::catalog::wire::evidence::EvidenceReport;
use crate::catalog::wire::leaf::{
    DecisionAdmission, DecisionLeaf, GenesisKind, GenesisLeaf, GrantAdmission, GrantLeaf, Leaf,
    PublicationAdmission, PublicationKind, PublicationLeaf, StateCommitmentKind,
    StateCommitmentLeaf, MAX_LEAF_BYTES, RULES_VERSION,
};
use crate::catalog::wire::payload::{ApiVersion, DigestSet, PublisherGrantKind};
use crate::catalog::wire::prepare::PreparedLeaf;
use crate::catalog::wire::request::RequestPayload;
use crate::catalog::wire::submission::{Submission, SubmissionKind, Verified};
use crate::catalog::wire::time::{format_rfc3339_ms, parse_rfc3339_ms};
use crate::catalog::wire::validate::check_vkey;
use crate::note::Verifier;

impl Catalog {
    /// The canonical bytes of a `StateCommitment` leaf at index `tree_size`, committing
    /// to map root `root` at `committed_at_ms`.
    pub fn state_commitment_leaf(
        tree_size: u64,
        root: &[u8; 32],
        committed_at_ms: u64,
        previous: Option<u64>,
    ) -> Result<Vec<u8>, CatalogError> {
        let committed_at = format_rfc3339_ms(committed_at_ms).ok_or_else(|| {
            CatalogError::Encoding(format!(
                "committedAt {committed_at_ms} ms is past year 9999"
            ))
        })?;
        Leaf::StateCommitment(StateCommitmentLeaf {
            api_version: ApiVersion::V1,
            committed_at,
            kind: StateCommitmentKind::StateCommitment,
            root: hex::encode(root),
            tree_size,
            previous,
        })
        .to_bytes()
    }

    /// The canonical bytes of leaf 0 (`AuthorityGenesis`). The log key must be named after
    /// the origin; 1 to 16 Ed25519 admin keys, distinct and different from the log key.
    pub fn genesis_leaf(
        origin: &str,
        log_key: &Verifier,
        admins: &[Verifier],
        created_at_ms: u64,
    ) -> Result<Vec<u8>, CatalogError> {
        check_genesis(origin, log_key, admins)
            .map_err(|e| CatalogError::InvalidGenesis(e.to_string()))?;
        let created_at = format_rfc3339_ms(created_at_ms).ok_or_else(|| {
            CatalogError::InvalidGenesis(format!("createdAt {created_at_ms} ms is past year 9999"))
        })?;
        let leaf = GenesisLeaf {
            api_version: ApiVersion::V1,
            kind: GenesisKind::AuthorityGenesis,
            origin: origin.to_string(),
            log_key: log_key.to_vkey(),
            admin_keys: admins.iter().map(Verifier::to_vkey).collect(),
            created_at,
        };
        let bytes = to_canonical_vec(&leaf)?;
        if bytes.len() > MAX_LEAF_BYTES {
            return Err(CatalogError::InvalidGenesis(format!(
                "the genesis entry would be {} bytes, over the {MAX_LEAF_BYTES}-byte limit",
                bytes.len()
            )));
        }
        Ok(bytes)
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
        let sub = verified.submission();
        let report = verified.evidence().cloned().unwrap_or_default();
        let (key, authorized) = self.first_authorized(verified, &report, accepted_at_ms)?;
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
        Ok((bytes, PreparedLeaf::admitted(index, leaf, sub)))
    }

    /// Whether the current state lets a signer of `verified` make this request at
    /// `at_ms`, judged without its evidence: the authorization half of
    /// [`Catalog::admit`], without building the leaf. A request handler uses it to refuse
    /// an unknown, revoked or ungranted signer before reading any blob; the sequencer
    /// still admits for real against the state it commits on.
    pub fn check_authorized(&self, verified: &Verified, at_ms: u64) -> Result<(), Refusal> {
        self.first_authorized(verified, &EvidenceReport::default(), at_ms)
            .map(|_| ())
    }

    /// The first signature, in envelope order, whose key the current state authorizes for
    /// this payload (with `report` as its evidence) and whose signature verifies
    /// (already-verified signers are not checked again); else the first reason.
    fn first_authorized<'a>(
        &'a self,
        verified: &Verified,
        report: &EvidenceReport,
        at_ms: u64,
    ) -> Result<(&'a Verifier, Authorized), Refusal> {
        let sub = verified.submission();
        let env = sub.envelope();
        let mut pae = None;
        let mut first_err = None;
        for sig in &env.signatures {
            let Some(key) = self.key(&sig.keyid) else {
                continue;
            };
            let authorized = match authorize(self, sub.payload(), key, report)
                .and_then(|a| check_v2(self, sub.payload(), key, at_ms).map(|()| a))
            {
                Ok(a) => a,
                Err(e) => {
                    first_err.get_or_insert(e);
                    continue;
                }
            };
            let valid = verified.signers().contains(key)
                || key.verify_bytes(pae.get_or_insert_with(|| env.pae()), &sig.sig);
            if valid {
                return Ok((key, authorized));
            }
            first_err.get_or_insert_with(|| {
                Refusal::Forbidden(format!(
                    "the signature by {} does not verify over the DSSE PAE of this envelope",
                    sig.keyid
                ))
            });
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
                rules_version: Some(RULES_VERSION),
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
                rules_version: Some(RULES_VERSION),
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
                rules_version: Some(RULES_VERSION),
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
        // Its shape and position are apply's to check, its root the map keeper's.
        Leaf::StateCommitment(_) => return Ok(()),
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

impl Catalog {
    /// Whether a duplicate of the request admitted as leaf `earlier` may be answered with
    /// that leaf (200 "already logged"): only while the earlier leaf still has the same
    /// effect now. Otherwise a 409 names the leaf that superseded it: for a `Review`, a
    /// later decision on the entry by the same public key; for a `Promotion` or
    /// `StatusChange`, a later promotion or status change of the entry; for a `PolicySet`,
    /// the policy in force when it is another leaf; for a grant, the revocation of its key.
    /// Publications and revocations always stand.
    pub fn duplicate_in_force(&self, verified: &Verified, earlier: u64) -> Result<(), Refusal> {
        let superseded = |by: u64| {
            Err(Refusal::Conflict(format!(
                "this request was logged as leaf {earlier}, but leaf {by} has superseded it; sign a new one (new issuedAt and nonce)"
            )))
        };
        let payload = verified.submission().payload();
        let decision = match payload {
            RequestPayload::Decision(d) => d,
            RequestPayload::Grant(g) => {
                let revoked = crate::catalog::wire::validate::check_vkey(&g.publisher_key)
                    .ok()
                    .and_then(|k| self.revoked_public_key(k.public_key()));
                return match revoked {
                    Some(by) if by > earlier => superseded(by),
                    _ => Ok(()),
                };
            }
            RequestPayload::Publication(_) => return Ok(()),
        };
        if let DecisionPayload::PolicySet(_) = decision {
            let (_, current) = self.current_policy();
            return if current > earlier {
                superseded(current)
            } else {
                Ok(())
            };
        }
        let Some(entry) = decision.entry() else {
            return Ok(());
        };
        let Some(record) =
            self.find_entry(&entry.target_catalog_ref, &entry.subject_digest.sha256)?
        else {
            return Ok(());
        };
        let Some(earlier_record) = record.decisions.iter().find(|d| d.leaf_index == earlier) else {
            return Ok(());
        };
        let signer_key = |id: &str| self.key(id).map(|k| *k.public_key());
        let later = record.decisions.iter().filter(|d| d.leaf_index > earlier);
        let by = match decision {
            DecisionPayload::Review(_) => later
                .filter(|d| signer_key(&d.signer) == signer_key(&earlier_record.signer))
                .map(|d| d.leaf_index)
                .next_back(),
            _ => later
                .filter(|d| !matches!(d.action, EntryAction::Review { .. }))
                .map(|d| d.leaf_index)
                .next_back(),
        };
        match by {
            Some(by) => superseded(by),
            None => Ok(()),
        }
    }
}
