//! The authorization rules, one entry point for every request kind ([`authorize`]): who
//! may grant (an admin, naming a free key id that is not the log's), who may publish (the
//! first publisher grant, in leaf order, covering the target and channel, and then the
//! channel policy), and the decisions' gates (`gates.rs`). No signature is checked here.
//!
//! Shared by `admit` (to decide a submission) and `apply` (to re-check a leaf), so the state
//! that admission reads is the state that replaying the leaves produces.
//!
//! May import `catalog::error`, `catalog::wire`, `catalog::model` and, in `rules`, `roles`,
//! `policy` and `gates`.

use super::gates::{authorize_decision, DecisionAuth};
use super::policy::check_publication;
use super::roles::{check_not_revoked, forbidden};
use crate::catalog::error::Refusal;
use crate::catalog::model::state::Catalog;
use crate::catalog::wire::evidence::EvidenceReport;
use crate::catalog::wire::payload::{CatalogPublicationRequest, PublisherGrantRequest, Role};
use crate::catalog::wire::request::RequestPayload;
use crate::catalog::wire::validate::check_vkey;
use crate::note::Verifier;

/// What the authorization rules allowed; shared by `admit` and `apply`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(in crate::catalog) enum Authorized {
    /// An admin grants `publisher`.
    Grant { publisher: Box<Verifier> },
    /// A publisher publishes under the grant at leaf `grant_index`, admitted by the
    /// policy set at leaf `policy_index`.
    Publication { grant_index: u64, policy_index: u64 },
    /// A decision passed its gate.
    Decision(DecisionAuth),
}

/// The authorization rules (no signature checks): grants must be signed by an admin and
/// name a key whose id is free; publications need the first grant (in leaf order) whose
/// prefixes cover the target and whose channels cover the channel; decisions pass their
/// gate.
pub(in crate::catalog) fn authorize(
    state: &Catalog,
    payload: &RequestPayload,
    signer: &Verifier,
    report: &EvidenceReport,
) -> Result<Authorized, Refusal> {
    if !state.has_genesis() {
        return Err(forbidden("the authority has no genesis entry yet"));
    }
    match payload {
        RequestPayload::Decision(d) => {
            authorize_decision(state, d, signer).map(Authorized::Decision)
        }
        RequestPayload::Grant(g) => authorize_grant(state, g, signer),
        RequestPayload::Publication(r) => authorize_publication(state, r, signer, report),
    }
}

fn authorize_grant(
    state: &Catalog,
    g: &PublisherGrantRequest,
    signer: &Verifier,
) -> Result<Authorized, Refusal> {
    if !state.is_admin(signer) {
        return Err(forbidden(format!(
            "key {} is not an admin of this authority; only admin keys may sign grants",
            signer.short_id()
        )));
    }
    let publisher = check_vkey(&g.publisher_key)
        .map_err(|m| Refusal::Invalid(vec![format!("/publisherKey: {m}")]))?;
    let id = publisher.short_id();
    check_not_revoked(state, &publisher)?;
    if state
        .log_key()
        .is_some_and(|log| publisher.public_key() == log.public_key() || id == log.short_id())
    {
        return Err(forbidden("the log's own key cannot be granted a role"));
    }
    if let Some(existing) = state.key(&id) {
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

fn authorize_publication(
    state: &Catalog,
    r: &CatalogPublicationRequest,
    signer: &Verifier,
    report: &EvidenceReport,
) -> Result<Authorized, Refusal> {
    let signer_id = signer.short_id();
    check_not_revoked(state, signer)?;
    let grants = state.grants_of(signer);
    if grants.is_empty() {
        return Err(forbidden(format!(
            "key {signer_id} holds no publisher grant"
        )));
    }
    let target = r.target_catalog_ref.as_str();
    let channel = r.channel.as_str();
    let publisher_grants = || grants.iter().filter(|g| g.role == Role::Publisher);
    if let Some(g) = publisher_grants().find(|g| g.covers(target, channel)) {
        let policy_index = check_publication_policy(state, r, report)?;
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
        Err(forbidden(format!(
            "key {signer_id} may not publish to channel {channel:?} under {target}; granted channels there: {}",
            channels.join(", ")
        )))
    } else {
        let mut prefixes: Vec<&str> = publisher_grants()
            .flat_map(|g| g.target_prefixes.iter().map(String::as_str))
            .collect();
        prefixes.sort_unstable();
        prefixes.dedup();
        Err(forbidden(format!(
            "target {target} is outside the prefixes granted to key {signer_id}: {}",
            prefixes.join(", ")
        )))
    }
}

/// The policy check of a publication against the state: the channel has a policy, is not
/// reached only by promotion, no entry exists yet for (target, subject), and every
/// evidence requirement holds. Returns the policy index used.
fn check_publication_policy(
    state: &Catalog,
    r: &CatalogPublicationRequest,
    report: &EvidenceReport,
) -> Result<u64, Refusal> {
    let (policy, policy_index) = state.current_policy();
    let existing = state
        .find_entry(&r.target_catalog_ref, &r.subject.digest.sha256)?
        .map(|e| e.publication_index);
    let failures = check_publication(policy, r, report, existing);
    if failures.is_empty() {
        Ok(policy_index)
    } else {
        Err(Refusal::Invalid(failures))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::rules::fixture::{grant_request, publication_request, Fixture};

    /// What a case expects: allowed as this, or refused with exactly this refusal, or
    /// refused as invalid with a list holding this message.
    enum Want {
        Allowed(Authorized),
        Refused(Refusal),
        InvalidWith(String),
    }

    fn check(f: &Fixture, payload: RequestPayload, signer: &Verifier, want: Want) {
        let got = authorize(&f.state, &payload, signer, &EvidenceReport::default());
        match (want, got) {
            (Want::Allowed(a), got) => assert_eq!(got, Ok(a), "{payload:?}"),
            (Want::Refused(r), got) => assert_eq!(got, Err(r), "{payload:?}"),
            (Want::InvalidWith(m), Err(Refusal::Invalid(list))) => {
                assert!(list.contains(&m), "{m} not in {list:?}")
            }
            (Want::InvalidWith(m), got) => panic!("wanted {m}, got {got:?}"),
        }
    }

    fn forbidden_(m: String) -> Want {
        Want::Refused(Refusal::Forbidden(m))
    }

    #[test]
    fn grants() {
        let f = Fixture::new();
        let (admin, publisher) = (&f.admin, &f.publisher);
        let grant = |key: &Verifier| RequestPayload::Grant(grant_request(key, Role::Publisher));
        let fresh = Fixture::key("fresh", 40);
        let cases = [
            (
                grant(&fresh),
                admin,
                Want::Allowed(Authorized::Grant {
                    publisher: Box::new(fresh.clone()),
                }),
            ),
            (
                grant(&fresh),
                publisher,
                forbidden_(format!(
                    "key {} is not an admin of this authority; only admin keys may sign grants",
                    publisher.short_id()
                )),
            ),
            (
                grant(&f.log),
                admin,
                forbidden_("the log's own key cannot be granted a role".into()),
            ),
            (
                grant(&f.gone),
                admin,
                forbidden_(format!(
                    "key {} was revoked by leaf 5; it can no longer publish, review or be granted",
                    f.gone.short_id()
                )),
            ),
        ];
        for (payload, signer, want) in cases {
            check(&f, payload, signer, want);
        }
        let mut bad = grant_request(&fresh, Role::Publisher);
        bad.publisher_key = "not a key".into();
        let got = authorize(
            &f.state,
            &RequestPayload::Grant(bad),
            admin,
            &EvidenceReport::default(),
        );
        assert!(
            matches!(&got, Err(Refusal::Invalid(l)) if l[0].starts_with("/publisherKey: is not a verifier key string")),
            "{got:?}"
        );
        check(
            &Fixture::empty(),
            grant(&fresh),
            admin,
            forbidden_("the authority has no genesis entry yet".into()),
        );
    }

    #[test]
    fn publications() {
        let f = Fixture::new();
        let p = &f.publisher;
        let pid = p.short_id();
        let publish = |target: &str, channel: &str, digest: &str| {
            RequestPayload::Publication(publication_request(target, channel, digest))
        };
        let new_subject = "bb".repeat(32);
        let images_b = "sourceos://catalog/images/b";
        let cases = [
            (
                publish(images_b, "dev", &new_subject),
                p,
                Want::Allowed(Authorized::Publication {
                    grant_index: 1,
                    policy_index: 0,
                }),
            ),
            (
                publish(images_b, "stable", &new_subject),
                p,
                forbidden_(format!("key {pid} may not publish to channel \"stable\" under {images_b}; granted channels there: dev")),
            ),
            (
                publish("sourceos://other/b", "dev", &new_subject),
                p,
                forbidden_(format!("target sourceos://other/b is outside the prefixes granted to key {pid}: sourceos://catalog/images")),
            ),
            (
                publish(images_b, "dev", &new_subject),
                &f.reviewer,
                forbidden_(format!("target {images_b} is outside the prefixes granted to key {}: ", f.reviewer.short_id())),
            ),
            (
                publish(images_b, "dev", &new_subject),
                &f.stranger,
                forbidden_(format!("key {} holds no publisher grant", f.stranger.short_id())),
            ),
            (
                publish(images_b, "dev", &new_subject),
                &f.gone,
                forbidden_(format!(
                    "key {} was revoked by leaf 5; it can no longer publish, review or be granted",
                    f.gone.short_id()
                )),
            ),
            (
                publish(&f.entry_target, "dev", &f.entry_digest),
                p,
                Want::InvalidWith(format!(
                    "entry: {} sha256:{} is already catalogued by leaf 6; review, promote or change its status instead",
                    f.entry_target, f.entry_digest
                )),
            ),
        ];
        for (payload, signer, want) in cases {
            check(&f, payload, signer, want);
        }
    }
}
