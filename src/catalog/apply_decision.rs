//! `Catalog::apply` for decision leaves: re-run the gate against the state before the
//! leaf, require the recorded admission to be exactly what the gate allows, then record.

use super::admission::Submission;
use super::decisions::{DecisionKind, DecisionPayload};
use super::entry::{entry_local_id, DecisionRecord, EntryAction};
use super::error::{CatalogError, Refusal};
use super::leaf::DecisionAdmission;
use super::records::RecordError;
use super::request::RequestPayload;
use super::state::{Catalog, Effect, PolicyRecord, RevocationRecord};

/// Why a decision leaf cannot be applied.
enum DecisionError {
    Invariant(String),
    Records(RecordError),
}

impl DecisionError {
    fn into_catalog_error(self, index: u64) -> CatalogError {
        match self {
            DecisionError::Invariant(reason) => CatalogError::Invariant { index, reason },
            DecisionError::Records(e) => CatalogError::Records(e),
        }
    }
}

impl From<String> for DecisionError {
    fn from(reason: String) -> DecisionError {
        DecisionError::Invariant(reason)
    }
}

impl From<&str> for DecisionError {
    fn from(reason: &str) -> DecisionError {
        DecisionError::Invariant(reason.into())
    }
}

impl From<Refusal> for DecisionError {
    fn from(r: Refusal) -> DecisionError {
        match r {
            // The state could not be read: not the leaf's fault.
            Refusal::Internal(m) => DecisionError::Records(RecordError::Backend(m)),
            r => DecisionError::Invariant(r.to_string()),
        }
    }
}

impl From<RecordError> for DecisionError {
    fn from(e: RecordError) -> DecisionError {
        DecisionError::Records(e)
    }
}

impl Catalog {
    pub(super) fn apply_decision(
        &mut self,
        index: u64,
        kind: DecisionKind,
        a: &DecisionAdmission,
        sub: &Submission,
    ) -> Result<Effect, CatalogError> {
        // Store failures keep their own type (the log must stop on them); every other
        // failure is a broken invariant of this leaf.
        self.check_and_record_decision(index, kind, a, sub)
            .map_err(|e| e.into_catalog_error(index))
    }

    fn check_and_record_decision(
        &mut self,
        index: u64,
        kind: DecisionKind,
        a: &DecisionAdmission,
        sub: &Submission,
    ) -> Result<Effect, DecisionError> {
        let signer = self.signer_key(&a.signer)?;
        let RequestPayload::Decision(payload) = sub.payload() else {
            return Err("a decision leaf holds another request kind".into());
        };
        let auth = self.authorize_decision(payload, &signer)?;
        let recorded = (a.grant_index, a.publication_index, a.policy_index);
        let expected = (auth.grant_index, auth.publication_index, auth.policy_index);
        if recorded != expected {
            return Err(DecisionError::Invariant(format!(
                "admission records (grantIndex, publicationIndex, policyIndex) = {recorded:?} but the rules give {expected:?}"
            )));
        }
        let mut entry = None;
        match payload {
            DecisionPayload::PolicySet(p) => self.policies.push(PolicyRecord {
                leaf_index: index,
                policy: p.policy(),
            }),
            DecisionPayload::Revoke(_) => {
                let key = auth.revoked_key.ok_or("a revocation names no key")?;
                self.revoked.insert(
                    key.short_id(),
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
                    .records
                    .entry(publication_index)?
                    .ok_or("the entry vanished")?;
                record.decisions.push(DecisionRecord {
                    leaf_index: index,
                    accepted_at: a.accepted_at.clone(),
                    signer: a.signer.clone(),
                    action,
                });
                self.records.put_entry(&record)?;
                entry = Some(entry_local_id(
                    &key.target_catalog_ref,
                    &format!("sha256:{}", key.subject_digest.sha256),
                ));
            }
        }
        Ok(Effect::Decided { kind, entry })
    }
}
