//! The gates: the stateful rules for policies, revocations, reviews, promotions and status
//! changes, and the policy check of a publication. Shared by `admit` (to decide) and
//! `apply` (to re-check a recorded decision), so both always agree.
//!
//! Who may sign what:
//! - `PolicySet`, `PublisherRevoke`: an admin.
//! - `Review`: a key with a `reviewer` grant covering the target and the reviewed channel;
//!   never the publication's own key or a key with the same name when approving.
//! - `Promotion`: a reviewer granted for the target and the *destination* channel, or an
//!   admin; either way the destination's policy must be met at that moment.
//! - `StatusChange`: a reviewer granted for the target and the entry's current channel,
//!   or an admin; `revoked` only by an admin, and it is final.

use super::decisions::{DecisionPayload, NewStatus, PromotionRequest, ReviewRequest, Verdict};
use super::entry::{key_name, EntryRecord, EntryView};
use super::error::Refusal;
use super::evidence::EvidenceReport;
use super::policy::{check_evidence, check_publication, EvidenceFacts};
use super::request::{check_vkey, CatalogPublicationRequest, Role};
use super::state::{Catalog, GrantRecord, PublicationRecord};
use crate::note::Verifier;

/// What the gate of a decision allowed; compared field by field with a leaf's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct DecisionAuth {
    pub grant_index: Option<u64>,
    pub publication_index: Option<u64>,
    pub policy_index: Option<u64>,
    pub revoked_key: Option<Box<Verifier>>,
}

impl DecisionAuth {
    fn admin() -> DecisionAuth {
        DecisionAuth {
            grant_index: None,
            publication_index: None,
            policy_index: None,
            revoked_key: None,
        }
    }
}

fn forbidden(m: impl Into<String>) -> Refusal {
    Refusal::Forbidden(m.into())
}

impl Catalog {
    /// 403 if `signer` was revoked.
    pub(super) fn check_not_revoked(&self, signer: &Verifier) -> Result<(), Refusal> {
        let id = signer.short_id();
        match self.revoked.get(&id) {
            Some(r) => Err(forbidden(format!(
                "key {id} was revoked by leaf {}; it can no longer publish, review or be granted",
                r.leaf_index
            ))),
            None => Ok(()),
        }
    }

    /// The policy check of a publication: the channel has a policy, is not reached only
    /// by promotion, no entry exists yet for (target, subject), and every evidence
    /// requirement holds. Returns the policy index used.
    pub(super) fn check_publication_policy(
        &self,
        r: &CatalogPublicationRequest,
        report: &EvidenceReport,
    ) -> Result<u64, Refusal> {
        let (policy, policy_index) = self.current_policy();
        let existing = self
            .find_entry(&r.target_catalog_ref, &r.subject.digest.sha256)?
            .map(|e| e.publication_index);
        let failures = check_publication(policy, r, report, existing);
        if failures.is_empty() {
            Ok(policy_index)
        } else {
            Err(Refusal::Invalid(failures))
        }
    }

    /// The first reviewer grant (leaf order) of `signer` covering `target` and `channel`.
    fn reviewer_grant(
        &self,
        signer: &Verifier,
        target: &str,
        channel: &str,
    ) -> Option<&GrantRecord> {
        let id = signer.short_id();
        let p = self.principals.get(&id).filter(|p| &p.verifier == signer)?;
        p.grants.iter().find(|g| {
            g.role == Role::Reviewer && g.covers_target(target) && g.covers_channel(channel)
        })
    }

    /// A reviewer grant for (target, channel), or admin rights when `admin_ok`.
    fn reviewer_or_admin(
        &self,
        signer: &Verifier,
        target: &str,
        channel: &str,
        admin_ok: bool,
        what: &str,
    ) -> Result<Option<u64>, Refusal> {
        self.check_not_revoked(signer)?;
        if admin_ok && self.is_admin(signer) {
            return Ok(None);
        }
        match self.reviewer_grant(signer, target, channel) {
            Some(g) => Ok(Some(g.leaf_index)),
            None => Err(forbidden(format!(
                "key {} holds no reviewer grant for channel {channel:?} under {target}{}; it may not {what}",
                signer.short_id(),
                if admin_ok { " and is not an admin" } else { "" }
            ))),
        }
    }

    /// The entry a decision names, with its view at the current state.
    fn entry_for(
        &self,
        target: &str,
        digest: &str,
    ) -> Result<(EntryRecord, PublicationRecord, EntryView), Refusal> {
        let record = self.find_entry(target, digest)?.ok_or_else(|| {
            Refusal::Invalid(vec![format!(
                "entry: no catalog entry for {target} sha256:{digest}"
            )])
        })?;
        let (view, publication) = self
            .entry_view(record.publication_index, self.applied)?
            .ok_or_else(|| Refusal::Invalid(vec!["entry: its publication is missing".into()]))?;
        Ok((record, publication, view))
    }

    /// The gate of every decision kind.
    pub(super) fn authorize_decision(
        &self,
        payload: &DecisionPayload,
        signer: &Verifier,
    ) -> Result<DecisionAuth, Refusal> {
        match payload {
            DecisionPayload::PolicySet(_) => {
                self.require_admin(signer, "set the policy")?;
                Ok(DecisionAuth::admin())
            }
            DecisionPayload::Revoke(r) => {
                self.require_admin(signer, "revoke keys")?;
                let key =
                    check_vkey(&r.key).map_err(|m| Refusal::Invalid(vec![format!("/key: {m}")]))?;
                let id = key.short_id();
                if self.is_admin(&key) || self.log_key().is_some_and(|k| k == &key) {
                    return Err(forbidden(format!(
                        "{id} is an admin or the log key; those are fixed at genesis"
                    )));
                }
                if let Some(r) = self.revoked.get(&id) {
                    return Err(Refusal::Invalid(vec![format!(
                        "/key: {id} was already revoked by leaf {}",
                        r.leaf_index
                    )]));
                }
                if self.keys.get(&id).is_some_and(|k| k != &key) {
                    return Err(Refusal::Invalid(vec![format!(
                        "/key: key id {id} belongs to a different key"
                    )]));
                }
                Ok(DecisionAuth {
                    revoked_key: Some(Box::new(key)),
                    ..DecisionAuth::admin()
                })
            }
            DecisionPayload::Review(r) => self.authorize_review(r, signer),
            DecisionPayload::Promotion(p) => self.authorize_promotion(p, signer),
            DecisionPayload::StatusChange(s) => {
                let (record, _, view) =
                    self.entry_for(&s.entry.target_catalog_ref, &s.entry.subject_digest.sha256)?;
                let admin_only = s.status == NewStatus::Revoked;
                let grant_index = if admin_only {
                    self.check_not_revoked(signer)?;
                    self.require_admin(signer, "revoke an entry")?;
                    None
                } else {
                    self.reviewer_or_admin(
                        signer,
                        &s.entry.target_catalog_ref,
                        &view.channel,
                        true,
                        "change its status",
                    )?
                };
                if view.status == super::entry::EntryStatus::Revoked {
                    return Err(Refusal::Invalid(vec![
                        "status: the entry is revoked, which is final".into(),
                    ]));
                }
                if view.status == s.status.into() {
                    return Err(Refusal::Invalid(vec![format!(
                        "status: the entry is already {}",
                        s.status.as_str()
                    )]));
                }
                Ok(DecisionAuth {
                    grant_index,
                    publication_index: Some(record.publication_index),
                    ..DecisionAuth::admin()
                })
            }
        }
    }

    fn require_admin(&self, signer: &Verifier, what: &str) -> Result<(), Refusal> {
        if self.is_admin(signer) {
            Ok(())
        } else {
            Err(forbidden(format!(
                "key {} is not an admin of this authority; only admins may {what}",
                signer.short_id()
            )))
        }
    }

    fn authorize_review(
        &self,
        r: &ReviewRequest,
        signer: &Verifier,
    ) -> Result<DecisionAuth, Refusal> {
        let target = &r.entry.target_catalog_ref;
        if r.reviewer != signer.short_id() {
            return Err(forbidden(format!(
                "the review names reviewer {} but is signed by {}",
                r.reviewer,
                signer.short_id()
            )));
        }
        let grant_index = self.reviewer_or_admin(signer, target, &r.channel, false, "review it")?;
        let (record, publication, view) = self.entry_for(target, &r.entry.subject_digest.sha256)?;
        if r.verdict == Verdict::Approve
            && (publication.publisher == signer.short_id()
                || key_name(&publication.publisher) == signer.name())
        {
            return Err(forbidden(format!(
                "self-approval: {} signed the publication (leaf {}) and may not approve it",
                signer.short_id(),
                record.publication_index
            )));
        }
        let mut failures = Vec::new();
        if view.status.is_terminal() {
            failures.push(format!(
                "status: the entry is {}; it can no longer be reviewed",
                view.status.as_str()
            ));
        }
        if self.current_policy().0.channel(&r.channel).is_none() {
            failures.push(format!(
                "channel: the policy defines no channel {:?}",
                r.channel
            ));
        }
        if !failures.is_empty() {
            return Err(Refusal::Invalid(failures));
        }
        Ok(DecisionAuth {
            grant_index,
            publication_index: Some(record.publication_index),
            ..DecisionAuth::admin()
        })
    }

    fn authorize_promotion(
        &self,
        p: &PromotionRequest,
        signer: &Verifier,
    ) -> Result<DecisionAuth, Refusal> {
        let target = &p.entry.target_catalog_ref;
        let grant_index =
            self.reviewer_or_admin(signer, target, &p.to_channel, true, "promote it")?;
        let (record, publication, view) = self.entry_for(target, &p.entry.subject_digest.sha256)?;
        let (policy, policy_index) = self.current_policy();
        let mut failures = Vec::new();
        if view.channel != p.from_channel {
            failures.push(format!(
                "fromChannel: the entry is in channel {}, not {}",
                view.channel, p.from_channel
            ));
        }
        if view.status != super::entry::EntryStatus::Published {
            failures.push(format!(
                "status: the entry is {} in {}; only a published entry can be promoted",
                view.status.as_str(),
                view.channel
            ));
        }
        match policy.channel(&p.to_channel) {
            None => failures.push(format!(
                "toChannel: the policy defines no channel {:?}",
                p.to_channel
            )),
            Some(to) => {
                if to.promote_from.as_deref() != Some(view.channel.as_str()) {
                    failures.push(match &to.promote_from {
                        Some(from) => format!(
                            "promoteFrom: channel {} is reached only from {from}, and the entry is in {}",
                            p.to_channel, view.channel
                        ),
                        None => format!(
                            "promoteFrom: channel {} is published to directly, never promoted into",
                            p.to_channel
                        ),
                    });
                }
                let report = publication.evidence_report.clone().unwrap_or_default();
                failures.extend(check_evidence(
                    &p.to_channel,
                    to,
                    EvidenceFacts {
                        evidence: &publication.evidence,
                        agentplane_refs: &publication.agentplane_refs,
                        report: &report,
                    },
                ));
                let denials = view.denials(&p.to_channel);
                if !denials.is_empty() {
                    failures.push(format!(
                        "approvals: denied for {} by {}",
                        p.to_channel,
                        denials.join(", ")
                    ));
                }
                let have = view.approvals(&p.to_channel);
                let need = to.required_approvals();
                if have < need {
                    failures.push(format!(
                        "approvals: channel {} needs {need} distinct approval(s) for this entry, it has {have}",
                        p.to_channel
                    ));
                }
            }
        }
        if !failures.is_empty() {
            return Err(Refusal::Invalid(failures));
        }
        Ok(DecisionAuth {
            grant_index,
            publication_index: Some(record.publication_index),
            policy_index: Some(policy_index),
            revoked_key: None,
        })
    }
}
