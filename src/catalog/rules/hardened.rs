//! The rules added by rules version 2 ([`RULES_VERSION`]), on top of every version 1 rule
//! (`authorize`): each one only refuses more, so a leaf admitted under version 2 also
//! passes version 1. The sequencer runs them on every new submission and writes
//! `rulesVersion: 2`; `apply` and audits run them again on leaves that record it, and
//! never on older leaves, which replay exactly as they were admitted.
//!
//! - Freshness (`log-format/leaves.md` §10.1): every decision carries `issuedAt` and a
//!   `nonce` (422 without). A decision issued more than the policy's
//!   `decisionWindowSeconds` before acceptance is refused (409); one issued more than
//!   [`MAX_CLOCK_SKEW_MS`] after it is refused (422). An entry decision issued before the
//!   same key's latest decision on that entry, or a `PolicySet` issued before the policy in
//!   force, is refused (409, naming the newer leaf).
//! - Identity (§10.2): a public key has one name; a revoked public key is never granted
//!   again and never signs again, under any name; no key approves its own publication
//!   under another name; a promotion counts approvals by distinct public keys not revoked.
//! - Names (§10.3): catalog refs, prefixes, subject names and granted key names follow
//!   [`check_strict_name`] (422 naming the field).
//!
//! May import `catalog::error`, `catalog::wire` and `catalog::model`; in `rules`, `roles`.

use std::collections::{BTreeMap, BTreeSet};

use super::roles::forbidden;
use crate::catalog::error::Refusal;
use crate::catalog::model::entry::{key_name, EntryAction};
use crate::catalog::model::state::Catalog;
use crate::catalog::wire::decisions::{DecisionPayload, EntryKey, Verdict};
use crate::catalog::wire::leaf::RULES_VERSION;
use crate::catalog::wire::payload::PublisherGrantRequest;
use crate::catalog::wire::request::RequestPayload;
use crate::catalog::wire::time::parse_rfc3339_ms;
use crate::catalog::wire::validate::{check_strict_name, check_vkey};
use crate::note::Verifier;

/// How far in the future (by the sequencer's clock) a decision's `issuedAt` may be.
pub const MAX_CLOCK_SKEW_MS: u64 = 5 * 60 * 1000;

/// Which rules a leaf was admitted under, from its `rulesVersion`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::catalog) enum Rules {
    /// No `rulesVersion`: the rules before version 2.
    V1,
    /// `rulesVersion: 2`: [`check_v2`] as well.
    V2,
}

impl Rules {
    /// The rules a recorded `rulesVersion` names; an unknown version is an error message.
    pub(in crate::catalog) fn recorded(version: Option<u32>) -> Result<Rules, String> {
        match version {
            None => Ok(Rules::V1),
            Some(RULES_VERSION) => Ok(Rules::V2),
            Some(v) => Err(format!(
                "rulesVersion {v} is not one this authority knows (1 or {RULES_VERSION})"
            )),
        }
    }
}

/// Every rule of version 2 for `payload` signed by `signer`, accepted at `accepted_at_ms`,
/// against the state before it. Run after the version 1 rules passed.
pub(in crate::catalog) fn check_v2(
    state: &Catalog,
    payload: &RequestPayload,
    signer: &Verifier,
    accepted_at_ms: u64,
) -> Result<(), Refusal> {
    check_names(payload)?;
    check_signer_identity(state, signer)?;
    match payload {
        RequestPayload::Publication(_) => Ok(()),
        RequestPayload::Grant(g) => check_grant_identity(state, g),
        RequestPayload::Decision(d) => {
            let issued_ms = check_fresh(state, d, accepted_at_ms)?;
            check_not_stale(state, d, signer, issued_ms)?;
            check_decision_identity(state, d, signer)
        }
    }
}

fn invalid(at: &str, m: impl std::fmt::Display) -> Refusal {
    Refusal::Invalid(vec![format!("{at}: {m}")])
}

/// §10.3: the strict syntax of every name that selects what a grant covers.
fn check_names(payload: &RequestPayload) -> Result<(), Refusal> {
    let mut problems = Vec::new();
    let mut check = |at: String, s: &str, prefix: bool| {
        if let Err(m) = check_strict_name(s, prefix) {
            problems.push(format!("{at}: {m}"));
        }
    };
    match payload {
        RequestPayload::Publication(r) => {
            check("/targetCatalogRef".into(), &r.target_catalog_ref, false);
            check("/subject/name".into(), &r.subject.name, false);
        }
        RequestPayload::Grant(g) => {
            for (i, p) in g.target_prefixes.iter().enumerate() {
                check(format!("/targetPrefixes/{i}"), p, true);
            }
            if let Ok(key) = check_vkey(&g.publisher_key) {
                check("/publisherKey (its name)".into(), key.name(), false);
            }
        }
        RequestPayload::Decision(d) => {
            if let Some(e) = d.entry() {
                check(
                    "/entry/targetCatalogRef".into(),
                    &e.target_catalog_ref,
                    false,
                );
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Refusal::Invalid(problems))
    }
}

/// §10.1: `issuedAt` and `nonce` present, `issuedAt` not in the future beyond the skew and
/// inside the policy's window. Returns `issuedAt` in milliseconds.
fn check_fresh(state: &Catalog, d: &DecisionPayload, accepted_at_ms: u64) -> Result<u64, Refusal> {
    let (issued_at, nonce) = d.freshness();
    let mut missing = Vec::new();
    if issued_at.is_none() {
        missing.push("/issuedAt: required (rules version 2): when the signer issued it".into());
    }
    if nonce.is_none() {
        missing
            .push("/nonce: required (rules version 2): a random value unique to this act".into());
    }
    if !missing.is_empty() {
        return Err(Refusal::Invalid(missing));
    }
    let text = issued_at.unwrap_or_default();
    let issued_ms = parse_rfc3339_ms(text).ok_or_else(|| invalid("/issuedAt", "not RFC 3339"))?;
    if issued_ms > accepted_at_ms.saturating_add(MAX_CLOCK_SKEW_MS) {
        return Err(invalid(
            "/issuedAt",
            format!(
                "{text} is more than {} s after the authority's clock",
                MAX_CLOCK_SKEW_MS / 1000
            ),
        ));
    }
    let (policy, policy_index) = state.current_policy();
    if let Some(window) = policy.decision_window_seconds {
        let age_ms = accepted_at_ms.saturating_sub(issued_ms);
        if age_ms > window.saturating_mul(1000) {
            return Err(Refusal::Conflict(format!(
                "issuedAt {text} is {} s old; the policy (leaf {policy_index}) accepts decisions at most {window} s old",
                age_ms / 1000
            )));
        }
    }
    Ok(issued_ms)
}

/// §10.1: not older than the same key's latest decision on the entry, nor (a `PolicySet`)
/// than the policy in force.
fn check_not_stale(
    state: &Catalog,
    d: &DecisionPayload,
    signer: &Verifier,
    issued_ms: u64,
) -> Result<(), Refusal> {
    let newer = |at: &Option<String>| {
        at.as_deref()
            .and_then(parse_rfc3339_ms)
            .is_some_and(|t| t > issued_ms)
    };
    if let DecisionPayload::PolicySet(_) = d {
        let (_, index) = state.current_policy();
        if let Some(p) = state
            .policies()
            .iter()
            .rev()
            .find(|p| p.leaf_index == index)
        {
            if newer(&p.issued_at) {
                return Err(Refusal::Conflict(format!(
                    "a newer policy is in force: leaf {index}, issued {}",
                    p.issued_at.as_deref().unwrap_or_default()
                )));
            }
        }
        return Ok(());
    }
    let Some(EntryKey {
        target_catalog_ref,
        subject_digest,
    }) = d.entry()
    else {
        return Ok(());
    };
    let Some(record) = state.find_entry(target_catalog_ref, &subject_digest.sha256)? else {
        return Ok(());
    };
    let same_key = |id: &str| {
        state
            .key(id)
            .is_some_and(|k| k.public_key() == signer.public_key())
    };
    let latest = record
        .decisions
        .iter()
        .rev()
        .find(|r| same_key(&r.signer) && newer(&r.issued_at));
    match latest {
        Some(r) => Err(Refusal::Conflict(format!(
            "key {} already made a newer decision on this entry: leaf {}, issued {}",
            signer.short_id(),
            r.leaf_index,
            r.issued_at.as_deref().unwrap_or_default()
        ))),
        None => Ok(()),
    }
}

/// §10.2: the signing key's public key was not revoked under any name.
fn check_signer_identity(state: &Catalog, signer: &Verifier) -> Result<(), Refusal> {
    match state.revoked_public_key(signer.public_key()) {
        Some(leaf) => Err(forbidden(format!(
            "the public key of {} was revoked by leaf {leaf} (under any name); it can no longer publish, review or be granted",
            signer.short_id()
        ))),
        None => Ok(()),
    }
}

/// §10.2: one public key, one name; a revoked public key is never granted again.
fn check_grant_identity(state: &Catalog, g: &PublisherGrantRequest) -> Result<(), Refusal> {
    let Ok(key) = check_vkey(&g.publisher_key) else {
        return Ok(()); // version 1 refused it already
    };
    if let Some(leaf) = state.revoked_public_key(key.public_key()) {
        return Err(forbidden(format!(
            "this public key was revoked by leaf {leaf}; it can never be granted again, under any name"
        )));
    }
    if let Some(other) = state
        .names_of(key.public_key())
        .into_iter()
        .find(|v| v.name() != key.name())
    {
        return Err(forbidden(format!(
            "this public key is already known as {}; one public key has one name",
            other.short_id()
        )));
    }
    Ok(())
}

/// §10.2 for decisions: no self-approval under another name, and a promotion's approvals
/// counted by distinct public keys that are not revoked.
fn check_decision_identity(
    state: &Catalog,
    d: &DecisionPayload,
    signer: &Verifier,
) -> Result<(), Refusal> {
    let Some(e) = d.entry() else {
        return Ok(());
    };
    let Some(record) = state.find_entry(&e.target_catalog_ref, &e.subject_digest.sha256)? else {
        return Ok(());
    };
    let Some((_, publication)) =
        state.entry_view(record.publication_index, state.applied_size())?
    else {
        return Ok(());
    };
    let public_of = |id: &str| state.key(id).map(|k| *k.public_key());
    match d {
        DecisionPayload::Review(r) if r.verdict == Verdict::Approve => {
            if public_of(&publication.publisher) == Some(*signer.public_key()) {
                return Err(forbidden(format!(
                    "self-approval: {} signed the publication (leaf {}) with this same public key and may not approve it",
                    publication.publisher, record.publication_index
                )));
            }
            Ok(())
        }
        DecisionPayload::Promotion(p) => {
            let (policy, _) = state.current_policy();
            let need = policy
                .channel(&p.to_channel)
                .map_or(0, |c| c.required_approvals());
            // The latest review per reviewer name for the channel, as the entry folds it.
            let mut latest: BTreeMap<&str, (&str, Verdict)> = BTreeMap::new();
            for r in &record.decisions {
                if let EntryAction::Review { channel, verdict } = &r.action {
                    if *channel == p.to_channel {
                        latest.insert(key_name(&r.signer), (r.signer.as_str(), *verdict));
                    }
                }
            }
            let approvers: BTreeSet<[u8; 32]> = latest
                .values()
                .filter(|(_, v)| *v == Verdict::Approve)
                .filter_map(|(id, _)| public_of(id))
                .filter(|k| state.revoked_public_key(k).is_none())
                .filter(|k| public_of(&publication.publisher) != Some(*k))
                .collect();
            let have = approvers.len() as u32;
            if have < need {
                return Err(Refusal::Invalid(vec![format!(
                    "approvals: channel {} needs {need} approval(s) by distinct public keys that are not revoked; this entry has {have}",
                    p.to_channel
                )]));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
