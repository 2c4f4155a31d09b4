//! Apply: the only state transition ([`Catalog::apply`], [`Catalog::apply_prepared`]),
//! for every leaf kind: genesis, grant, publication and decision. The live sequencer and
//! replay both call it.
//!
//! It trusts signatures (they were checked at admission and can be re-checked with
//! [`crate::catalog::audit_leaf`]) but re-runs every other admission rule through
//! `rules::authorize`, and requires the leaf's admission record to be exactly what the
//! rules give, so a leaf that the authority could not have admitted is refused. On error
//! nothing changes: every check runs before the first write.
//!
//! Layer 4 of `catalog`, beside `admit` (neither imports the other): may import `error`,
//! `wire`, `model` and `rules`. It changes the state only through the model's one-record
//! writes.

use crate::catalog::error::{CatalogError, RecordError, Refusal};
use crate::catalog::model::entry::{entry_local_id, DecisionRecord, EntryAction};
use crate::catalog::model::records::{
    GrantRecord, PolicyRecord, PublicationRecord, RevocationRecord,
};
use crate::catalog::model::state::Catalog;
use crate::catalog::rules::authorize::{authorize, Authorized};
use crate::catalog::rules::gates::authorize_decision;
use crate::catalog::rules::hardened::{check_v2, Rules};
use crate::catalog::rules::roles::check_genesis;
use crate::catalog::wire::decisions::{DecisionKind, DecisionPayload};
use crate::catalog::wire::evidence::EvidenceReport;
use crate::catalog::wire::leaf::{
    DecisionAdmission, GenesisLeaf, GrantAdmission, PublicationAdmission, StateCommitmentLeaf,
};
use crate::catalog::wire::prepare::{Parsed, PreparedLeaf};
use crate::catalog::wire::request::RequestPayload;
use crate::catalog::wire::submission::Submission;
use crate::catalog::wire::time::parse_rfc3339_ms;
use crate::catalog::wire::validate::check_vkey;
use crate::note::Verifier;

/// What applying one leaf changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// The authority was created (leaf 0).
    Genesis,
    /// A grant was added for `publisher` (its `name+hex8`).
    GrantAdded {
        /// The granted key's `name+hex8`.
        publisher: String,
    },
    /// A publication was accepted.
    Published {
        /// `sha256:<64 hex>`.
        subject_digest: String,
        /// The `targetCatalogRef`.
        target: String,
        /// The channel.
        channel: String,
    },
    /// A commitment to the state map was recorded (it changes nothing else). The map's
    /// keeper checks `root` against the map of the first `tree_size` leaves.
    StateCommitted {
        /// The size the root is for (at most the commitment leaf's index).
        tree_size: u64,
        /// The committed map root.
        root: [u8; 32],
    },
    /// A decision was recorded (policy, revocation, review, promotion, status change).
    Decided {
        /// Its kind.
        kind: DecisionKind,
        /// The entry it is about (local id), for entry decisions.
        entry: Option<String>,
    },
}

/// Why a leaf cannot be applied, before its index is attached.
enum ApplyError {
    /// The leaf breaks an invariant (becomes [`CatalogError::Invariant`]).
    Invariant(String),
    /// The record store failed: not the leaf's fault (becomes [`CatalogError::Records`]).
    Records(RecordError),
}

impl ApplyError {
    fn at(self, index: u64) -> CatalogError {
        match self {
            ApplyError::Invariant(reason) => CatalogError::Invariant { index, reason },
            ApplyError::Records(e) => CatalogError::Records(e),
        }
    }

    /// A refusal of the rules while applying a genesis, grant or publication leaf: every
    /// refusal, a store failure included, is a broken invariant of the leaf. (Decision
    /// leaves keep store failures apart: see `From<Refusal>`.)
    fn refused(r: Refusal) -> ApplyError {
        ApplyError::Invariant(r.to_string())
    }
}

impl From<&str> for ApplyError {
    fn from(reason: &str) -> ApplyError {
        ApplyError::Invariant(reason.into())
    }
}

impl From<String> for ApplyError {
    fn from(reason: String) -> ApplyError {
        ApplyError::Invariant(reason)
    }
}

impl From<SignerError> for ApplyError {
    fn from(e: SignerError) -> ApplyError {
        ApplyError::Invariant(e.to_string())
    }
}

impl From<RecordError> for ApplyError {
    fn from(e: RecordError) -> ApplyError {
        ApplyError::Records(e)
    }
}

/// A refusal of a decision's gate: a store failure stays one (the log must stop on it);
/// every other refusal is a broken invariant of the leaf.
impl From<Refusal> for ApplyError {
    fn from(r: Refusal) -> ApplyError {
        match r {
            Refusal::Internal(m) => ApplyError::Records(RecordError::Backend(m)),
            r => ApplyError::Invariant(r.to_string()),
        }
    }
}

/// Why a signed leaf's recorded signer cannot be used.
#[derive(Debug, thiserror::Error)]
enum SignerError {
    /// A signed leaf before leaf 0.
    #[error("the first leaf must be AuthorityGenesis")]
    NoGenesis,
    /// The recorded signer (its short id) is not a key the authority knows.
    #[error("the recorded signer {0} is not a known key")]
    Unknown(String),
}

/// The key of a signed leaf's recorded signer, which must be a key the authority knows
/// (after genesis).
fn signer_key(state: &Catalog, signer: &str) -> Result<Verifier, SignerError> {
    if !state.has_genesis() {
        return Err(SignerError::NoGenesis);
    }
    state
        .key(signer)
        .cloned()
        .ok_or_else(|| SignerError::Unknown(signer.to_string()))
}

impl Catalog {
    /// Applies leaf `index` (must equal `applied_size()`) — trusted: it does not re-verify
    /// signatures (replay must be fast), but it rejects leaves that do not parse or that break
    /// invariants (genesis not first, grant not by an admin, publication outside its grant,
    /// admission record inconsistent with the state, ...). On error nothing changes.
    ///
    /// Equal to [`PreparedLeaf::parse`] then [`Catalog::apply_prepared`]; replay runs the
    /// first half on many leaves in parallel.
    pub fn apply(&mut self, index: u64, leaf: &[u8]) -> Result<Effect, CatalogError> {
        self.expect_next(index)?;
        self.apply_prepared(PreparedLeaf::parse(index, leaf)?)
    }

    /// Applies a leaf that [`PreparedLeaf::parse`] has already parsed and checked on its
    /// own: runs the rules that read the state (order, signer known, grant, policy, ...)
    /// and records it. On error nothing changes.
    pub fn apply_prepared(&mut self, prepared: PreparedLeaf) -> Result<Effect, CatalogError> {
        let index = prepared.index();
        self.expect_next(index)?;
        let effect = match prepared.into_parsed() {
            Parsed::Genesis(g) => self.apply_genesis(index, g),
            Parsed::Grant(admission, sub) => self.apply_grant(index, &admission, &sub),
            Parsed::Publication(admission, sub) => self.apply_publication(index, &admission, &sub),
            Parsed::Decision(kind, admission, sub) => {
                self.apply_decision(index, kind, &admission, &sub)
            }
            Parsed::StateCommitment(c) => self.apply_state_commitment(index, &c),
        }
        .map_err(|e| e.at(index))?;
        self.advance();
        Ok(effect)
    }

    /// The version 1 rules, then those of the version the leaf records (its
    /// `(rulesVersion, acceptedAt)`), for a grant or publication leaf.
    fn authorize_recorded(
        &self,
        sub: &Submission,
        signer: &Verifier,
        report: &EvidenceReport,
        (version, accepted_at): (Option<u32>, &str),
    ) -> Result<Authorized, Refusal> {
        let authorized = authorize(self, sub.payload(), signer, report)?;
        self.check_recorded_rules(version, accepted_at, sub, signer)?;
        Ok(authorized)
    }

    /// The rules of the version a leaf records, beyond version 1 (which every leaf
    /// passed already): nothing for a leaf without `rulesVersion`.
    fn check_recorded_rules(
        &self,
        version: Option<u32>,
        accepted_at: &str,
        sub: &Submission,
        signer: &Verifier,
    ) -> Result<(), Refusal> {
        let rules = Rules::recorded(version).map_err(|m| Refusal::Invalid(vec![m]))?;
        if rules == Rules::V1 {
            return Ok(());
        }
        let ms = parse_rfc3339_ms(accepted_at).ok_or_else(|| {
            Refusal::Invalid(vec![format!("acceptedAt {accepted_at:?} is not RFC 3339")])
        })?;
        check_v2(self, sub.payload(), signer, ms)
    }

    fn expect_next(&self, index: u64) -> Result<(), CatalogError> {
        if index == self.applied_size() {
            Ok(())
        } else {
            Err(CatalogError::OutOfOrder {
                expected: self.applied_size(),
                got: index,
            })
        }
    }

    /// Records a commitment's position; its root is the map keeper's to check
    /// (`PreparedLeaf::parse` checked its size and hex).
    fn apply_state_commitment(
        &mut self,
        index: u64,
        c: &StateCommitmentLeaf,
    ) -> Result<Effect, ApplyError> {
        let mut root = [0u8; 32];
        hex::decode_to_slice(&c.root, &mut root).map_err(|e| format!("root: {e}"))?;
        self.add_commitment(index);
        Ok(Effect::StateCommitted {
            tree_size: c.tree_size,
            root,
        })
    }

    fn apply_genesis(&mut self, index: u64, g: GenesisLeaf) -> Result<Effect, ApplyError> {
        if self.has_genesis() || index != 0 {
            return Err("AuthorityGenesis may only be leaf 0".into());
        }
        let log_key = check_vkey(&g.log_key).map_err(|m| format!("logKey {m}"))?;
        let admins = g
            .admin_keys
            .iter()
            .map(|k| check_vkey(k).map_err(|m| format!("adminKeys: {m}")))
            .collect::<Result<Vec<_>, _>>()?;
        check_genesis(&g.origin, &log_key, &admins).map_err(|e| e.to_string())?;
        if parse_rfc3339_ms(&g.created_at).is_none() {
            return Err(format!("createdAt {:?} is not RFC 3339", g.created_at).into());
        }
        self.set_authority(g.origin, log_key, admins, g.created_at);
        Ok(Effect::Genesis)
    }

    fn apply_grant(
        &mut self,
        index: u64,
        admission: &GrantAdmission,
        sub: &Submission,
    ) -> Result<Effect, ApplyError> {
        let signer = signer_key(self, &admission.signer)?;
        let recorded = (admission.rules_version, admission.accepted_at.as_str());
        let authorized = self
            .authorize_recorded(sub, &signer, &EvidenceReport::default(), recorded)
            .map_err(ApplyError::refused)?;
        let (Authorized::Grant { publisher }, RequestPayload::Grant(req)) =
            (authorized, sub.payload())
        else {
            return Err("grant leaf authorized as something else".into());
        };
        let id = publisher.short_id();
        let record = GrantRecord {
            leaf_index: index,
            role: req.role,
            target_prefixes: req.target_prefixes.clone(),
            channels: req.channels.clone(),
            granted_by: admission.signer.clone(),
            granted_at: admission.accepted_at.clone(),
        };
        self.add_grant(*publisher, record);
        Ok(Effect::GrantAdded { publisher: id })
    }

    fn apply_publication(
        &mut self,
        index: u64,
        admission: &PublicationAdmission,
        sub: &Submission,
    ) -> Result<Effect, ApplyError> {
        let signer = signer_key(self, &admission.signer)?;
        let report = admission.evidence.clone().unwrap_or_default();
        let recorded = (admission.rules_version, admission.accepted_at.as_str());
        let authorized = self
            .authorize_recorded(sub, &signer, &report, recorded)
            .map_err(ApplyError::refused)?;
        let (
            Authorized::Publication {
                grant_index,
                policy_index,
            },
            RequestPayload::Publication(req),
        ) = (authorized, sub.payload())
        else {
            return Err("publication leaf authorized as something else".into());
        };
        if grant_index != admission.grant_index {
            return Err(format!(
                "admission names grant leaf {} but the grant that covers it is leaf {grant_index}",
                admission.grant_index
            )
            .into());
        }
        if admission.policy_index.is_some_and(|i| i != policy_index) {
            return Err(format!(
                "admission names policy leaf {:?} but the policy in force is leaf {policy_index}",
                admission.policy_index
            )
            .into());
        }
        if admission.evidence.as_ref().is_some_and(|r| r.is_empty()) {
            return Err("an empty evidence report must be omitted".into());
        }
        let subject_digest = req.subject_digest();
        let record = PublicationRecord {
            leaf_index: index,
            subject_name: req.subject.name.clone(),
            subject_digest: subject_digest.clone(),
            target_catalog_ref: req.target_catalog_ref.clone(),
            channel: req.channel.clone(),
            requester_ref: req.requester_ref.clone(),
            evidence: req.evidence.clone(),
            agentplane_refs: req.agentplane_refs.clone(),
            publisher: admission.signer.clone(),
            grant_index,
            accepted_at: admission.accepted_at.clone(),
            request_digest: admission.request_digest.sha256.clone(),
            policy_index,
            evidence_report: admission.evidence.clone(),
        };
        let id = entry_local_id(&req.target_catalog_ref, &subject_digest);
        self.add_publication(&record, &id)?;
        Ok(Effect::Published {
            subject_digest,
            target: req.target_catalog_ref.clone(),
            channel: req.channel.clone(),
        })
    }

    /// A decision leaf: re-run the gate against the state before the leaf, require the
    /// recorded admission to be exactly what the gate allows, then record.
    fn apply_decision(
        &mut self,
        index: u64,
        kind: DecisionKind,
        a: &DecisionAdmission,
        sub: &Submission,
    ) -> Result<Effect, ApplyError> {
        let signer = signer_key(self, &a.signer)?;
        let RequestPayload::Decision(payload) = sub.payload() else {
            return Err("a decision leaf holds another request kind".into());
        };
        let auth = authorize_decision(self, payload, &signer)?;
        self.check_recorded_rules(a.rules_version, &a.accepted_at, sub, &signer)?;
        let recorded = (a.grant_index, a.publication_index, a.policy_index);
        let expected = (auth.grant_index, auth.publication_index, auth.policy_index);
        if recorded != expected {
            return Err(format!(
                "admission records (grantIndex, publicationIndex, policyIndex) = {recorded:?} but the rules give {expected:?}"
            )
            .into());
        }
        let mut entry = None;
        match payload {
            DecisionPayload::PolicySet(p) => self.add_policy(PolicyRecord {
                issued_at: p.issued_at.clone(),
                leaf_index: index,
                policy: p.policy(),
            }),
            DecisionPayload::Revoke(_) => {
                let key = auth.revoked_key.ok_or("a revocation names no key")?;
                self.add_revocation(
                    &key,
                    RevocationRecord {
                        leaf_index: index,
                        revoked_by: a.signer.clone(),
                    },
                );
            }
            DecisionPayload::Review(_)
            | DecisionPayload::Promotion(_)
            | DecisionPayload::StatusChange(_) => {
                let action = match payload {
                    DecisionPayload::Review(r) => EntryAction::Review {
                        channel: r.channel.clone(),
                        verdict: r.verdict,
                    },
                    DecisionPayload::Promotion(p) => EntryAction::Promotion {
                        from_channel: p.from_channel.clone(),
                        to_channel: p.to_channel.clone(),
                        policy_index: auth.policy_index.unwrap_or(0),
                    },
                    DecisionPayload::StatusChange(s) => {
                        EntryAction::StatusChange { status: s.status }
                    }
                    _ => return Err("unreachable decision kind".into()),
                };
                let key = payload.entry().ok_or("an entry decision names no entry")?;
                let publication_index = auth.publication_index.ok_or("no publication index")?;
                let mut record = self
                    .records()
                    .entry(publication_index)?
                    .ok_or("the entry vanished")?;
                record.decisions.push(DecisionRecord {
                    leaf_index: index,
                    accepted_at: a.accepted_at.clone(),
                    issued_at: payload.freshness().0.map(str::to_string),
                    signer: a.signer.clone(),
                    action,
                });
                self.put_entry(&record)?;
                entry = Some(entry_local_id(
                    &key.target_catalog_ref,
                    &format!("sha256:{}", key.subject_digest.sha256),
                ));
            }
        }
        Ok(Effect::Decided { kind, entry })
    }
}
