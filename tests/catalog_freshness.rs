//! Issue 10 §3 and §4 at the catalog level: signed freshness (rules version 2), stale
//! decisions refused with 409, identity by public key, and old leaves replaying unchanged.

use serde_json::{json, Value};
use srcos_catalog::catalog::{audit_leaf, sign_envelope, Catalog, Refusal, Submission};
use srcos_catalog::note::{KeyType, Signer};

const T0: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00.000Z
const ORIGIN: &str = "catalog.test/fresh";

fn key(name: &str, seed: u8) -> Signer {
    let log = Signer::from_seed(name, KeyType::Ed25519, &[seed; 32]);
    log.unwrap()
}

struct World {
    admin: Signer,
    catalog: Catalog,
    leaves: Vec<Vec<u8>>,
}

impl World {
    fn new() -> World {
        let log = key(ORIGIN, 1);
        let admin = key("admin", 2);
        let genesis =
            Catalog::genesis_leaf(ORIGIN, &log.verifier(), &[admin.verifier()], T0).unwrap();
        let mut catalog = Catalog::new();
        catalog.apply(0, &genesis).unwrap();
        World {
            admin,
            catalog,
            leaves: vec![genesis],
        }
    }

    fn submit(&mut self, payload: &Value, signer: &Signer, at: u64) -> Result<u64, Refusal> {
        let body = sign_envelope(&serde_jcs::to_vec(payload).unwrap(), signer).to_json();
        let verified = Submission::parse(body.as_bytes())?.verify(&self.catalog.keys())?;
        let leaf = self.catalog.admit(&verified, at)?;
        let index = self.catalog.applied_size();
        audit_leaf(&self.catalog, index, &leaf).unwrap();
        self.catalog.apply(index, &leaf).unwrap();
        self.leaves.push(leaf);
        Ok(index)
    }

    fn grant(&mut self, who: &Signer, role: &str) -> Result<u64, Refusal> {
        let admin = self.admin.clone();
        self.submit(
            &json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "PublisherGrant",
                    "publisherKey": who.verifier().to_vkey(), "role": role,
                    "targetPrefixes": ["sourceos://catalog/images/"], "channels": ["*"]}),
            &admin,
            T0 + 1000,
        )
    }
}

fn ms(t: u64) -> String {
    srcos_catalog::catalog::format_rfc3339_ms(t).unwrap()
}

fn nonce(n: u8) -> String {
    format!("{n:032x}")
}

fn policy(dev_approvals: u32, at: u64, n: u8, window: Option<u64>) -> Value {
    let mut p = json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "PolicySet",
        "channels": {"dev": {"requiredEvidence": [], "approvals": dev_approvals,
                             "requiresHumanReview": dev_approvals > 0}},
        "issuedAt": ms(at), "nonce": nonce(n)});
    if let Some(w) = window {
        p["decisionWindowSeconds"] = json!(w);
    }
    p
}

fn publication(subject: &str) -> Value {
    json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "CatalogPublicationRequest",
        "subject": {"name": "quay.io/x", "digest": {"sha256": subject}},
        "targetCatalogRef": "sourceos://catalog/images/x", "channel": "dev",
        "requesterRef": "socios://pipeline/x", "evidence": [],
        "agentplaneRefs": {"replayArtifactRef": null, "runArtifactRef": null, "validationArtifactRef": null}})
}

fn review(reviewer: &Signer, subject: &str, verdict: &str, at: u64, n: u8) -> Value {
    json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "Review",
        "entry": {"targetCatalogRef": "sourceos://catalog/images/x", "subjectDigest": {"sha256": subject}},
        "reviewer": reviewer.verifier().short_id(), "channel": "dev", "verdict": verdict,
        "issuedAt": ms(at), "nonce": nonce(n)})
}

fn conflict(r: Result<u64, Refusal>) -> String {
    match r {
        Err(Refusal::Conflict(m)) => m,
        other => panic!("expected 409, got {other:?}"),
    }
}

/// A world with a policy needing one dev approval, a publisher, a reviewer and an entry.
fn reviewed_world() -> (World, Signer, String) {
    let mut w = World::new();
    let admin = w.admin.clone();
    w.submit(&policy(1, T0, 1, None), &admin, T0 + 500).unwrap();
    let publisher = key("publisher", 3);
    let reviewer = key("reviewer", 4);
    w.grant(&publisher, "publisher").unwrap();
    w.grant(&reviewer, "reviewer").unwrap();
    let subject = "ab".repeat(32);
    w.submit(&publication(&subject), &publisher, T0 + 2000)
        .unwrap();
    (w, reviewer, subject)
}

#[test]
fn a_held_back_approval_submitted_after_the_deny_is_refused() {
    let (mut w, reviewer, subject) = reviewed_world();
    let approve = review(&reviewer, &subject, "approve", T0 + 3000, 2);
    let deny = review(&reviewer, &subject, "deny", T0 + 4000, 3);
    let deny_leaf = w.submit(&deny, &reviewer, T0 + 5000).unwrap();
    let m = conflict(w.submit(&approve, &reviewer, T0 + 6000));
    assert!(m.contains(&format!("leaf {deny_leaf}")), "{m}");
}

#[test]
fn approve_deny_approve_deny_each_takes_effect() {
    let (mut w, reviewer, subject) = reviewed_world();
    let mut leaves = Vec::new();
    for (i, verdict) in ["approve", "deny", "approve", "deny"]
        .into_iter()
        .enumerate()
    {
        let at = T0 + 3000 + i as u64 * 1000;
        leaves.push(
            w.submit(
                &review(&reviewer, &subject, verdict, at, 10 + i as u8),
                &reviewer,
                at,
            )
            .unwrap(),
        );
    }
    // Four acts, four leaves: the last deny is a new leaf, not the first one's receipt.
    assert_eq!(leaves.len(), 4);
    assert!(leaves.windows(2).all(|p| p[0] < p[1]));
    let bodies: Vec<_> = w.leaves[leaves[1] as usize..].to_vec();
    assert_ne!(bodies[0], bodies[2]);
}

#[test]
fn decisions_without_freshness_are_refused_with_the_fields_named() {
    let (mut w, reviewer, subject) = reviewed_world();
    let mut bare = review(&reviewer, &subject, "approve", T0, 1);
    bare.as_object_mut().unwrap().remove("issuedAt");
    bare.as_object_mut().unwrap().remove("nonce");
    match w.submit(&bare, &reviewer, T0 + 3000) {
        Err(Refusal::Invalid(list)) => {
            assert!(
                list.iter().any(|m| m.starts_with("/issuedAt: required")),
                "{list:?}"
            );
            assert!(
                list.iter().any(|m| m.starts_with("/nonce: required")),
                "{list:?}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn strict_loose_strict_leaves_strict_in_force_and_old_policies_are_stale() {
    let mut w = World::new();
    let admin = w.admin.clone();
    w.submit(&policy(1, T0 + 1, 1, None), &admin, T0 + 10)
        .unwrap();
    w.submit(&policy(0, T0 + 2, 2, None), &admin, T0 + 20)
        .unwrap();
    let strict = w
        .submit(&policy(1, T0 + 3, 3, None), &admin, T0 + 30)
        .unwrap();
    assert_eq!(w.catalog.current_policy().1, strict);
    assert_eq!(
        w.catalog
            .current_policy()
            .0
            .channel("dev")
            .unwrap()
            .approvals,
        1
    );
    // A loose policy signed before the strict one, held back and sent now: refused.
    let m = conflict(w.submit(&policy(0, T0 + 2, 4, None), &admin, T0 + 40));
    assert!(m.contains(&format!("leaf {strict}")), "{m}");
}

#[test]
fn a_decision_outside_the_policy_window_is_refused() {
    let (mut w, reviewer, subject) = reviewed_world();
    let admin = w.admin.clone();
    w.submit(&policy(1, T0 + 2500, 5, Some(60)), &admin, T0 + 2600)
        .unwrap();
    let old = review(&reviewer, &subject, "approve", T0 + 3000, 6);
    let m = conflict(w.submit(&old, &reviewer, T0 + 3000 + 61_000));
    assert!(m.contains("at most 60 s old"), "{m}");
    let fresh = review(&reviewer, &subject, "approve", T0 + 3000, 7);
    w.submit(&fresh, &reviewer, T0 + 3000 + 59_000).unwrap();
}

#[test]
fn leaves_without_a_rules_version_replay_under_the_old_rules() {
    let (mut w, reviewer, subject) = reviewed_world();
    w.submit(
        &review(&reviewer, &subject, "approve", T0 + 3000, 2),
        &reviewer,
        T0 + 3000,
    )
    .unwrap();
    // The same log as a version 1 authority wrote it: no rulesVersion member.
    let mut replayed = Catalog::new();
    for (i, leaf) in w.leaves.iter().enumerate() {
        let old = String::from_utf8(leaf.clone())
            .unwrap()
            .replace("\"rulesVersion\":2,", "");
        replayed.apply(i as u64, old.as_bytes()).unwrap();
    }
    assert_eq!(replayed.applied_size(), w.catalog.applied_size());
    // And a leaf naming an unknown rules version is refused.
    let last = String::from_utf8(w.leaves.last().unwrap().clone()).unwrap();
    let mut fresh = Catalog::new();
    for (i, leaf) in w.leaves[..w.leaves.len() - 1].iter().enumerate() {
        fresh.apply(i as u64, leaf).unwrap();
    }
    let bad = last.replace("\"rulesVersion\":2,", "\"rulesVersion\":3,");
    assert!(fresh
        .apply(w.leaves.len() as u64 - 1, bad.as_bytes())
        .is_err());
}

#[test]
fn one_public_key_has_one_name() {
    let mut w = World::new();
    let a = key("carol-a@release", 7);
    let b = key("carol-b@release", 7);
    w.grant(&a, "reviewer").unwrap();
    match w.grant(&b, "reviewer") {
        Err(Refusal::Forbidden(m)) => assert!(m.contains("already known as"), "{m}"),
        other => panic!("{other:?}"),
    }
    // The publisher's own key granted as reviewer under another name: refused too.
    let publisher = key("publisher", 8);
    let bot = key("release-bot", 8);
    w.grant(&publisher, "publisher").unwrap();
    assert!(matches!(
        w.grant(&bot, "reviewer"),
        Err(Refusal::Forbidden(_))
    ));
}

#[test]
fn a_revoked_public_key_is_never_granted_again() {
    let mut w = World::new();
    let admin = w.admin.clone();
    let old = key("mallory", 9);
    w.grant(&old, "reviewer").unwrap();
    w.submit(
        &json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "PublisherRevoke",
                "key": old.verifier().to_vkey(), "issuedAt": ms(T0), "nonce": nonce(1)}),
        &admin,
        T0 + 2000,
    )
    .unwrap();
    let renamed = key("mallory-2", 9);
    match w.grant(&renamed, "reviewer") {
        Err(Refusal::Forbidden(m)) => assert!(m.contains("can never be granted again"), "{m}"),
        other => panic!("{other:?}"),
    }
}

/// A resent act is answered with its earlier leaf only while that leaf still has the same
/// effect: a reviewer's approval resent after the same reviewer's later deny is a 409.
#[test]
fn a_duplicate_is_answered_only_while_its_leaf_is_in_force() {
    let (mut w, reviewer, subject) = reviewed_world();
    let approve = review(&reviewer, &subject, "approve", T0 + 3000, 2);
    let approve_leaf = w.submit(&approve, &reviewer, T0 + 3000).unwrap();
    let resend = |w: &World| {
        let body = sign_envelope(&serde_jcs::to_vec(&approve).unwrap(), &reviewer).to_json();
        let verified = Submission::parse(body.as_bytes())
            .unwrap()
            .verify(&w.catalog.keys())
            .unwrap();
        w.catalog.duplicate_in_force(&verified, approve_leaf)
    };
    assert_eq!(resend(&w), Ok(()));
    let deny = w
        .submit(
            &review(&reviewer, &subject, "deny", T0 + 4000, 3),
            &reviewer,
            T0 + 4000,
        )
        .unwrap();
    let m = match resend(&w) {
        Err(Refusal::Conflict(m)) => m,
        other => panic!("{other:?}"),
    };
    assert!(m.contains(&format!("leaf {deny}")), "{m}");
}

/// Approvals by a key revoked before the promotion do not count.
#[test]
fn approvals_from_keys_revoked_before_the_promotion_do_not_count() {
    let mut w = World::new();
    let admin = w.admin.clone();
    // dev: published directly; stable: promoted from dev with one approval.
    let p = json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "PolicySet",
        "channels": {"dev": {"requiredEvidence": [], "approvals": 0, "requiresHumanReview": false},
                     "stable": {"requiredEvidence": [], "approvals": 1, "promoteFrom": "dev"}},
        "issuedAt": ms(T0), "nonce": nonce(1)});
    w.submit(&p, &admin, T0 + 500).unwrap();
    let publisher = key("publisher", 3);
    let reviewer = key("reviewer", 4);
    w.grant(&publisher, "publisher").unwrap();
    w.grant(&reviewer, "reviewer").unwrap();
    let subject = "cd".repeat(32);
    w.submit(&publication(&subject), &publisher, T0 + 2000)
        .unwrap();
    let mut approve = review(&reviewer, &subject, "approve", T0 + 3000, 2);
    approve["channel"] = json!("stable");
    w.submit(&approve, &reviewer, T0 + 3000).unwrap();
    w.submit(
        &json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "PublisherRevoke",
                "key": reviewer.verifier().to_vkey(), "issuedAt": ms(T0 + 3500), "nonce": nonce(3)}),
        &admin,
        T0 + 3500,
    )
    .unwrap();
    let promote = json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "Promotion",
        "entry": {"targetCatalogRef": "sourceos://catalog/images/x", "subjectDigest": {"sha256": subject}},
        "fromChannel": "dev", "toChannel": "stable", "issuedAt": ms(T0 + 4000), "nonce": nonce(4)});
    match w.submit(&promote, &admin, T0 + 4000) {
        Err(Refusal::Invalid(list)) => assert!(
            list.iter()
                .any(|m| m.contains("distinct public keys that are not revoked")),
            "{list:?}"
        ),
        other => panic!("{other:?}"),
    }
}
