//! The gates: the stateful rules for policies, revocations, reviews, promotions and status
//! changes. Shared by `admit` (to decide) and `apply` (to re-check a recorded decision),
//! so both always agree.
//!
//! Who may sign what:
//! - `PolicySet`, `PublisherRevoke`: an admin.
//! - `Review`: a key with a `reviewer` grant covering the target and the reviewed channel;
//!   never the publication's own key or a key with the same name when approving.
//! - `Promotion`: a reviewer granted for the target and the *destination* channel, or an
//!   admin; either way the destination's policy must be met at that moment.
//! - `StatusChange`: a reviewer granted for the target and the entry's current channel,
//!   or an admin; `revoked` only by an admin, and it is final.
//!
//! May import `catalog::error`, `catalog::wire`, `catalog::model` and, in `rules`,
//! `roles` and `policy`.

use super::policy::{check_evidence, EvidenceFacts};
use super::roles::{check_not_revoked, forbidden, require_admin, reviewer_or_admin};
use crate::catalog::error::Refusal;
use crate::catalog::model::entry::{key_name, EntryRecord, EntryStatus, EntryView};
use crate::catalog::model::records::PublicationRecord;
use crate::catalog::model::state::Catalog;
use crate::catalog::wire::decisions::{
    DecisionPayload, NewStatus, PromotionRequest, ReviewRequest, RevokeRequest,
    StatusChangeRequest, Verdict,
};
use crate::catalog::wire::validate::check_vkey;
use crate::note::Verifier;

/// What the gate of a decision allowed; compared field by field with a leaf's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(in crate::catalog) struct DecisionAuth {
    /// The reviewer grant used (`None`: an admin signed).
    pub grant_index: Option<u64>,
    /// The entry's publication leaf, for entry decisions.
    pub publication_index: Option<u64>,
    /// The policy whose gate a promotion passed.
    pub policy_index: Option<u64>,
    /// The key a revocation revokes.
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

/// The gate of every decision kind.
pub(in crate::catalog) fn authorize_decision(
    state: &Catalog,
    payload: &DecisionPayload,
    signer: &Verifier,
) -> Result<DecisionAuth, Refusal> {
    match payload {
        DecisionPayload::PolicySet(_) => {
            require_admin(state, signer, "set the policy")?;
            Ok(DecisionAuth::admin())
        }
        DecisionPayload::Revoke(r) => authorize_revoke(state, r, signer),
        DecisionPayload::Review(r) => authorize_review(state, r, signer),
        DecisionPayload::Promotion(p) => authorize_promotion(state, p, signer),
        DecisionPayload::StatusChange(s) => authorize_status_change(state, s, signer),
    }
}

/// The entry a decision names, with its view at the current state.
fn entry_for(
    state: &Catalog,
    target: &str,
    digest: &str,
) -> Result<(EntryRecord, PublicationRecord, EntryView), Refusal> {
    let record = state.find_entry(target, digest)?.ok_or_else(|| {
        Refusal::Invalid(vec![format!(
            "entry: no catalog entry for {target} sha256:{digest}"
        )])
    })?;
    let (view, publication) = state
        .entry_view(record.publication_index, state.applied_size())?
        .ok_or_else(|| Refusal::Invalid(vec!["entry: its publication is missing".into()]))?;
    Ok((record, publication, view))
}

fn authorize_revoke(
    state: &Catalog,
    r: &RevokeRequest,
    signer: &Verifier,
) -> Result<DecisionAuth, Refusal> {
    require_admin(state, signer, "revoke keys")?;
    let key = check_vkey(&r.key).map_err(|m| Refusal::Invalid(vec![format!("/key: {m}")]))?;
    let id = key.short_id();
    if state.is_admin(&key) || state.log_key().is_some_and(|k| k == &key) {
        return Err(forbidden(format!(
            "{id} is an admin or the log key; those are fixed at genesis"
        )));
    }
    if let Some(r) = state.revocation(&id) {
        return Err(Refusal::Invalid(vec![format!(
            "/key: {id} was already revoked by leaf {}",
            r.leaf_index
        )]));
    }
    if state.key(&id).is_some_and(|k| k != &key) {
        return Err(Refusal::Invalid(vec![format!(
            "/key: key id {id} belongs to a different key"
        )]));
    }
    Ok(DecisionAuth {
        revoked_key: Some(Box::new(key)),
        ..DecisionAuth::admin()
    })
}

fn authorize_status_change(
    state: &Catalog,
    s: &StatusChangeRequest,
    signer: &Verifier,
) -> Result<DecisionAuth, Refusal> {
    let (record, _, view) = entry_for(
        state,
        &s.entry.target_catalog_ref,
        &s.entry.subject_digest.sha256,
    )?;
    let admin_only = s.status == NewStatus::Revoked;
    let grant_index = if admin_only {
        check_not_revoked(state, signer)?;
        require_admin(state, signer, "revoke an entry")?;
        None
    } else {
        reviewer_or_admin(
            state,
            signer,
            &s.entry.target_catalog_ref,
            &view.channel,
            true,
            "change its status",
        )?
    };
    if view.status == EntryStatus::Revoked {
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

fn authorize_review(
    state: &Catalog,
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
    let grant_index = reviewer_or_admin(state, signer, target, &r.channel, false, "review it")?;
    let (record, publication, view) = entry_for(state, target, &r.entry.subject_digest.sha256)?;
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
    if state.current_policy().0.channel(&r.channel).is_none() {
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
    state: &Catalog,
    p: &PromotionRequest,
    signer: &Verifier,
) -> Result<DecisionAuth, Refusal> {
    let target = &p.entry.target_catalog_ref;
    let grant_index = reviewer_or_admin(state, signer, target, &p.to_channel, true, "promote it")?;
    let (record, publication, view) = entry_for(state, target, &p.entry.subject_digest.sha256)?;
    let (policy, policy_index) = state.current_policy();
    let mut failures = Vec::new();
    if view.channel != p.from_channel {
        failures.push(format!(
            "fromChannel: the entry is in channel {}, not {}",
            view.channel, p.from_channel
        ));
    }
    if view.status != EntryStatus::Published {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::rules::fixture::Fixture;
    use crate::catalog::wire::decisions::{DecisionKind, EntryKey, PolicySetRequest};
    use crate::catalog::wire::payload::{ApiVersion, DigestSet};
    use crate::catalog::wire::policy::Policy;

    fn key_of(target: &str, digest: &str) -> EntryKey {
        EntryKey {
            target_catalog_ref: target.into(),
            subject_digest: DigestSet {
                sha256: digest.into(),
            },
        }
    }

    fn review(
        entry: EntryKey,
        reviewer: &Verifier,
        channel: &str,
        verdict: Verdict,
    ) -> DecisionPayload {
        DecisionPayload::Review(ReviewRequest {
            api_version: ApiVersion::V1,
            kind: DecisionKind::Review,
            entry,
            reviewer: reviewer.short_id(),
            channel: channel.into(),
            verdict,
            comment: None,
            issued_at: None,
            nonce: None,
        })
    }

    fn promotion(entry: EntryKey, from: &str, to: &str) -> DecisionPayload {
        DecisionPayload::Promotion(PromotionRequest {
            api_version: ApiVersion::V1,
            kind: DecisionKind::Promotion,
            entry,
            from_channel: from.into(),
            to_channel: to.into(),
            issued_at: None,
            nonce: None,
        })
    }

    fn status(entry: EntryKey, status: NewStatus) -> DecisionPayload {
        DecisionPayload::StatusChange(StatusChangeRequest {
            api_version: ApiVersion::V1,
            kind: DecisionKind::StatusChange,
            entry,
            status,
            reason: None,
            issued_at: None,
            nonce: None,
        })
    }

    fn revoke(key: &Verifier) -> DecisionPayload {
        DecisionPayload::Revoke(RevokeRequest {
            api_version: ApiVersion::V1,
            kind: DecisionKind::PublisherRevoke,
            key: key.to_vkey(),
            reason: None,
            issued_at: None,
            nonce: None,
        })
    }

    fn policy_set() -> DecisionPayload {
        DecisionPayload::PolicySet(PolicySetRequest {
            api_version: ApiVersion::V1,
            kind: DecisionKind::PolicySet,
            channels: Policy::defaults().channels,
            decision_window_seconds: None,
            issued_at: None,
            nonce: None,
        })
    }

    fn on_entry(grant_index: Option<u64>, publication_index: u64) -> DecisionAuth {
        DecisionAuth {
            grant_index,
            publication_index: Some(publication_index),
            ..DecisionAuth::admin()
        }
    }

    /// `Ok` as this, or refused with a refusal whose problems include this message.
    type Want = Result<DecisionAuth, String>;

    fn run(f: &Fixture, cases: Vec<(DecisionPayload, &Verifier, Want)>) {
        for (payload, signer, want) in cases {
            let got = authorize_decision(&f.state, &payload, signer);
            match (want, got) {
                (Ok(a), got) => assert_eq!(got, Ok(a), "{payload:?}"),
                (Err(m), Err(r)) => {
                    assert!(r.problems().contains(&m), "{m:?} not in {r:?}")
                }
                (Err(m), Ok(a)) => panic!("wanted {m:?}, allowed {a:?} for {payload:?}"),
            }
        }
    }

    #[test]
    fn reviews() {
        let f = Fixture::new();
        let a = || key_of(&f.entry_target, &f.entry_digest);
        let b = || key_of(&f.revoked_target, &f.revoked_digest);
        let (rev, namesake) = (&f.reviewer, &f.namesake);
        let mut misnamed = review(a(), rev, "dev", Verdict::Approve);
        if let DecisionPayload::Review(r) = &mut misnamed {
            r.reviewer = "someone+00000000".into();
        }
        let missing = format!("{}/none", f.entry_target);
        let cases = vec![
            (review(a(), rev, "dev", Verdict::Approve), rev, Ok(on_entry(Some(2), 6))),
            (review(a(), rev, "candidate", Verdict::Deny), rev, Ok(on_entry(Some(2), 6))),
            (review(a(), namesake, "dev", Verdict::Deny), namesake, Ok(on_entry(Some(3), 6))),
            (
                review(a(), namesake, "dev", Verdict::Approve),
                namesake,
                Err(format!(
                    "self-approval: {} signed the publication (leaf 6) and may not approve it",
                    namesake.short_id()
                )),
            ),
            (
                misnamed,
                rev,
                Err(format!(
                    "the review names reviewer someone+00000000 but is signed by {}",
                    rev.short_id()
                )),
            ),
            (
                review(a(), &f.admin, "dev", Verdict::Approve),
                &f.admin,
                Err(format!(
                    "key {} holds no reviewer grant for channel \"dev\" under {}; it may not review it",
                    f.admin.short_id(),
                    f.entry_target
                )),
            ),
            (
                review(a(), rev, "qa", Verdict::Approve),
                rev,
                Err("channel: the policy defines no channel \"qa\"".into()),
            ),
            (
                review(b(), rev, "dev", Verdict::Approve),
                rev,
                Err("status: the entry is revoked; it can no longer be reviewed".into()),
            ),
            (
                review(key_of(&missing, &f.entry_digest), rev, "dev", Verdict::Approve),
                rev,
                Err(format!("entry: no catalog entry for {missing} sha256:{}", f.entry_digest)),
            ),
        ];
        run(&f, cases);
    }

    #[test]
    fn promotions() {
        let f = Fixture::new();
        let a = || key_of(&f.entry_target, &f.entry_digest);
        let (admin, stranger) = (&f.admin, &f.stranger);
        let cases = vec![
            (
                promotion(a(), "dev", "candidate"),
                admin,
                Err("status: the entry is draft in dev; only a published entry can be promoted".into()),
            ),
            (
                promotion(a(), "dev", "candidate"),
                admin,
                Err("approvals: channel candidate needs 1 distinct approval(s) for this entry, it has 0".into()),
            ),
            (
                promotion(a(), "dev", "candidate"),
                admin,
                Err("requiredEvidence: channel candidate requires evidence of type smoke-receipt, and the request has none".into()),
            ),
            (
                promotion(a(), "dev", "stable"),
                &f.reviewer,
                Err("promoteFrom: channel stable is reached only from candidate, and the entry is in dev".into()),
            ),
            (
                promotion(a(), "candidate", "stable"),
                admin,
                Err("fromChannel: the entry is in channel dev, not candidate".into()),
            ),
            (
                promotion(a(), "dev", "qa"),
                admin,
                Err("toChannel: the policy defines no channel \"qa\"".into()),
            ),
            (
                promotion(a(), "dev", "candidate"),
                stranger,
                Err(format!(
                    "key {} holds no reviewer grant for channel \"candidate\" under {} and is not an admin; it may not promote it",
                    stranger.short_id(),
                    f.entry_target
                )),
            ),
        ];
        run(&f, cases);
    }

    #[test]
    fn status_changes() {
        let f = Fixture::new();
        let a = || key_of(&f.entry_target, &f.entry_digest);
        let b = || key_of(&f.revoked_target, &f.revoked_digest);
        let (admin, rev) = (&f.admin, &f.reviewer);
        let cases = vec![
            (
                status(a(), NewStatus::Restricted),
                rev,
                Ok(on_entry(Some(2), 6)),
            ),
            (
                status(a(), NewStatus::Archived),
                admin,
                Ok(on_entry(None, 6)),
            ),
            (
                status(a(), NewStatus::Revoked),
                admin,
                Ok(on_entry(None, 6)),
            ),
            (
                status(a(), NewStatus::Revoked),
                rev,
                Err(format!(
                    "key {} is not an admin of this authority; only admins may revoke an entry",
                    rev.short_id()
                )),
            ),
            (
                status(b(), NewStatus::Archived),
                admin,
                Err("status: the entry is revoked, which is final".into()),
            ),
            (
                status(a(), NewStatus::Archived),
                &f.gone,
                Err(format!(
                    "key {} was revoked by leaf 5; it can no longer publish, review or be granted",
                    f.gone.short_id()
                )),
            ),
        ];
        run(&f, cases);
    }

    #[test]
    fn admin_decisions() {
        let f = Fixture::new();
        let (admin, rev) = (&f.admin, &f.reviewer);
        let revoked = |key: &Verifier| DecisionAuth {
            revoked_key: Some(Box::new(key.clone())),
            ..DecisionAuth::admin()
        };
        let cases = vec![
            (policy_set(), admin, Ok(DecisionAuth::admin())),
            (
                policy_set(),
                rev,
                Err(format!(
                    "key {} is not an admin of this authority; only admins may set the policy",
                    rev.short_id()
                )),
            ),
            (revoke(&f.publisher), admin, Ok(revoked(&f.publisher))),
            (revoke(&f.stranger), admin, Ok(revoked(&f.stranger))),
            (
                revoke(&f.publisher),
                rev,
                Err(format!(
                    "key {} is not an admin of this authority; only admins may revoke keys",
                    rev.short_id()
                )),
            ),
            (
                revoke(admin),
                admin,
                Err(format!(
                    "{} is an admin or the log key; those are fixed at genesis",
                    admin.short_id()
                )),
            ),
            (
                revoke(&f.log),
                admin,
                Err(format!(
                    "{} is an admin or the log key; those are fixed at genesis",
                    f.log.short_id()
                )),
            ),
            (
                revoke(&f.gone),
                admin,
                Err(format!(
                    "/key: {} was already revoked by leaf 5",
                    f.gone.short_id()
                )),
            ),
        ];
        run(&f, cases);
    }
}
