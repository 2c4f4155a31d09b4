//! The authority's policy gates against a real server: every required-evidence failure
//! named, content checks on uploaded blobs (tampered uploads, contradicting content,
//! severity threshold), reviews and self-approval, promotions that skip a channel or lack
//! approvals, revoked keys, status changes, and admin-set policy.

mod common;

use common::authority::*;
use serde_json::{json, Value};

fn dev_items(subject: &str) -> Vec<Value> {
    release_evidence(subject)
        .into_iter()
        .take(4)
        .map(|(t, m, b)| item(t, m, &b))
        .collect()
}

#[test]
fn every_missing_required_evidence_type_is_named() {
    let a = Authority::start(&[]);
    let publisher = a.key("pipeline.example/smoke");
    a.grant(&publisher.signer, "publisher", &["*"]);
    let hex = subject_hex("missing");
    // Only an attestation: all four dev requirements fail, each by name.
    let req = request(
        "quay.io/t/missing",
        &hex,
        "dev",
        vec![item("attestation", "application/json", b"{}")],
        no_refs(),
    );
    let (status, body) = a.publish(&publisher.signer, &req);
    assert_eq!(status, 422, "{body}");
    let errs = errors(&body);
    for t in ["build-receipt", "sbom", "vulnerability-scan", "provenance"] {
        assert!(
            errs.iter()
                .any(|e| e.starts_with("requiredEvidence") && e.contains(&format!("type {t},"))),
            "{t} not named in {errs:#?}"
        );
    }
    assert_eq!(errs.len(), 4, "{errs:#?}");
    // Each type alone missing is refused and named.
    for skip in 0..4 {
        let mut items = dev_items(&hex);
        let gone = items.remove(skip);
        let (status, body) = a.publish(
            &publisher.signer,
            &request("quay.io/t/missing", &hex, "dev", items, no_refs()),
        );
        assert_eq!(status, 422);
        let errs = errors(&body);
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert!(
            errs[0].contains(gone["type"].as_str().unwrap()),
            "{errs:#?}"
        );
    }
    // Direct publication to candidate: reached only by promotion, and every candidate
    // requirement is listed.
    let req = request(
        "quay.io/t/missing",
        &hex,
        "candidate",
        dev_items(&hex),
        no_refs(),
    );
    let (status, body) = a.publish(&publisher.signer, &req);
    assert_eq!(status, 422);
    let errs = errors(&body).join("\n");
    for needle in [
        "promoteFrom: channel candidate is reached only by promotion from dev",
        "requiredEvidence: channel candidate requires evidence of type smoke-receipt",
        "blobsPresent:",
        "requiresDigestPinnedInputs: channel candidate requires a base-image-receipt",
        "requiresDigestPinnedInputs: channel candidate requires a task-image-digests",
        "requiredAgentplaneRefs: channel candidate requires agentplaneRefs.validationArtifactRef",
        "requiredAgentplaneRefs: channel candidate requires agentplaneRefs.runArtifactRef",
    ] {
        assert!(errs.contains(needle), "{needle:?} missing from\n{errs}");
    }
    // An unknown channel fails closed.
    let (status, body) = a.publish(
        &publisher.signer,
        &request(
            "quay.io/t/missing",
            &hex,
            "nightly",
            dev_items(&hex),
            no_refs(),
        ),
    );
    assert_eq!(status, 422);
    assert!(
        errors(&body)[0].contains("no channel \"nightly\""),
        "{body}"
    );
    // The complete request is admitted, and a second one for the same entry is not.
    let (status, body) = a.publish(
        &publisher.signer,
        &request("quay.io/t/missing", &hex, "dev", dev_items(&hex), no_refs()),
    );
    assert_eq!(status, 201, "{body}");
    let mut other = dev_items(&hex);
    other.push(item("attestation", "application/json", b"{}"));
    let (status, body) = a.publish(
        &publisher.signer,
        &request("quay.io/t/missing", &hex, "dev", other, no_refs()),
    );
    assert_eq!(status, 422);
    assert!(errors(&body)[0].starts_with("entry:"), "{body}");
}

#[test]
fn blob_store_refuses_tampered_and_oversized_uploads() {
    let a = Authority::start(&["--max-blob-bytes", "1024"]);
    let (status, hex) = a.upload(b"{\"spdxVersion\":\"SPDX-2.3\"}");
    assert_eq!(status, 201);
    let (status, _) = a.upload(b"{\"spdxVersion\":\"SPDX-2.3\"}");
    assert_eq!(status, 200, "an identical upload is idempotent");
    let (status, _, body) = a.http.get(&format!("/v1/blobs/sha256:{hex}"));
    assert_eq!(
        (status, body.as_slice()),
        (200, &b"{\"spdxVersion\":\"SPDX-2.3\"}"[..])
    );
    // A body whose digest differs from its name is refused and not stored.
    let other = subject_hex("other");
    let (status, body) = a.put_blob(&other, b"tampered bytes");
    assert_eq!(status, 422, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("digest mismatch"),
        "{body}"
    );
    let (status, _, _) = a.http.get(&format!("/v1/blobs/sha256:{other}"));
    assert_eq!(status, 404);
    // Over the configured limit: 413.
    let big = vec![b'x'; 2048];
    let (status, _) = a.upload(&big);
    assert_eq!(status, 413);
    let (status, _) = a.put_blob("NOTHEX", b"x");
    assert_eq!(status, 400);
    assert_eq!(
        std::fs::read_dir(a.data.join("blobs/tmp")).unwrap().count(),
        0
    );
}

#[test]
fn uploaded_content_that_contradicts_the_request_is_refused() {
    let a = Authority::start(&[]);
    let publisher = a.key("pipeline.example/smoke");
    a.grant(&publisher.signer, "publisher", &["dev"]);
    let hex = subject_hex("contradiction");
    let mut files = release_evidence(&hex);
    // Provenance for another artifact, and a CycloneDX SBOM labelled as SPDX.
    files[3].2 = json!({"_type": "https://in-toto.io/Statement/v1", "predicateType": "https://slsa.dev/provenance/v1",
        "subject": [{"name": "other", "digest": {"sha256": subject_hex("another artifact")}}], "predicate": {}})
        .to_string()
        .into_bytes();
    files[1].2 = json!({"bomFormat": "CycloneDX", "specVersion": "1.5", "components": []})
        .to_string()
        .into_bytes();
    let items: Vec<Value> = files
        .iter()
        .take(4)
        .map(|(t, m, b)| item(t, m, b))
        .collect();
    for (_, _, b) in files.iter().take(4) {
        assert_eq!(a.upload(b).0, 201);
    }
    let (status, body) = a.publish(
        &publisher.signer,
        &request("quay.io/t/c", &hex, "dev", items, no_refs()),
    );
    assert_eq!(status, 422, "{body}");
    let errs = errors(&body).join("\n");
    assert!(
        errs.contains("evidenceContent: evidence/3 (provenance): subject digests"),
        "{errs}"
    );
    assert!(
        errs.contains("do not include the subject sha256:"),
        "{errs}"
    );
    assert!(errs.contains("evidenceContent: evidence/1 (sbom): the blob is cyclonedx but the media type is application/spdx+json"), "{errs}");
    // A declared size that differs from the blob is a contradiction too.
    let mut items: Vec<Value> = release_evidence(&hex)
        .iter()
        .take(4)
        .map(|(t, m, b)| item(t, m, b))
        .collect();
    for (_, _, b) in release_evidence(&hex).iter().take(4) {
        a.upload(b);
    }
    items[0]["size"] = json!(1);
    let (status, body) = a.publish(
        &publisher.signer,
        &request("quay.io/t/c", &hex, "dev", items, no_refs()),
    );
    assert_eq!(status, 422);
    assert!(errors(&body)[0].contains("declared size 1"), "{body}");
}

#[test]
fn scans_at_or_above_the_threshold_are_refused() {
    let a = Authority::start(&[]);
    let publisher = a.key("pipeline.example/smoke");
    a.grant(&publisher.signer, "publisher", &["dev"]);
    for (severity, expected) in [("High", 422), ("Critical", 422), ("Medium", 201)] {
        let hex = subject_hex(severity);
        let mut files = release_evidence(&hex);
        files[2].2 = json!({"matches": [{"vulnerability": {"id": "CVE-9", "severity": severity}}]})
            .to_string()
            .into_bytes();
        let items: Vec<Value> = files
            .iter()
            .take(4)
            .map(|(t, m, b)| item(t, m, b))
            .collect();
        a.upload(&files[2].2);
        let (status, body) = a.publish(
            &publisher.signer,
            &request("quay.io/t/scan", &hex, "dev", items, no_refs()),
        );
        assert_eq!(status, expected, "{severity}: {body}");
        if expected == 422 {
            let e = &errors(&body)[0];
            assert!(
                e.starts_with("vulnerabilityThreshold: evidence/2 reports a"),
                "{e}"
            );
            assert!(e.contains("refuses high and above"), "{e}");
        }
    }
    // The in-toto vulns predicate is read too (CVSS 9.8 is critical).
    let hex = subject_hex("intoto");
    let mut files = release_evidence(&hex);
    files[2] = ("vulnerability-scan", "application/vnd.in-toto+json", json!({"_type": "https://in-toto.io/Statement/v1",
        "predicateType": "https://in-toto.io/attestation/vulns/v0.2", "subject": [],
        "predicate": {"scanner": {"uri": "x", "result": [{"id": "CVE-8", "severity": [{"method": "nvd", "score": "9.8"}]}]}}})
        .to_string()
        .into_bytes());
    a.upload(&files[2].2);
    let items: Vec<Value> = files
        .iter()
        .take(4)
        .map(|(t, m, b)| item(t, m, b))
        .collect();
    let (status, body) = a.publish(
        &publisher.signer,
        &request("quay.io/t/scan", &hex, "dev", items, no_refs()),
    );
    assert_eq!(status, 422);
    assert!(
        errors(&body)[0].contains("reports a critical finding"),
        "{body}"
    );
}

/// Publishes a complete release (every blob uploaded) to dev; returns (target, hex).
fn publish_release(
    a: &Authority,
    publisher: &common::authority::Key,
    seed: &str,
) -> (String, String) {
    let hex = subject_hex(seed);
    let files = release_evidence(&hex);
    for (_, _, b) in &files {
        a.upload(b);
    }
    let items: Vec<Value> = files.iter().map(|(t, m, b)| item(t, m, b)).collect();
    let req = request(
        &format!("quay.io/t/{seed}"),
        &hex,
        "dev",
        items,
        agentplane_refs(seed),
    );
    let (status, body) = a.publish(&publisher.signer, &req);
    assert_eq!(status, 201, "{body}");
    (req["targetCatalogRef"].as_str().unwrap().to_string(), hex)
}

#[test]
fn reviews_publish_and_self_approval_is_refused() {
    let a = Authority::start(&[]);
    let publisher = a.key("pipeline.example/smoke");
    a.grant(&publisher.signer, "publisher", &["dev"]);
    let (target, hex) = publish_release(&a, &publisher, "reviewed");
    let e = a.entry(&hex);
    assert_eq!(e["entry"]["status"], "draft");
    assert_eq!(e["entry"]["promotion"]["state"], "under-review");
    // The publisher's own key, even granted the reviewer role, may not approve; nor may
    // another key under the same name.
    a.grant(&publisher.signer, "reviewer", &["*"]);
    let (status, body) = a.review(&publisher.signer, &target, &hex, "dev", "approve");
    assert_eq!(status, 403, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("self-approval"),
        "{body}"
    );
    let twin = a.key("pipeline.example/smoke");
    a.grant(&twin.signer, "reviewer", &["*"]);
    let (status, _) = a.review(&twin.signer, &target, &hex, "dev", "approve");
    assert_eq!(status, 403);
    // A key without a reviewer grant may not review.
    let stranger = a.key("stranger");
    a.grant(&stranger.signer, "publisher", &["dev"]);
    let (status, _) = a.review(&stranger.signer, &target, &hex, "dev", "approve");
    assert_eq!(status, 403);
    // A denial blocks, the same reviewer's approval replaces it, and the entry is published.
    let alice = a.key("alice@release");
    a.grant(&alice.signer, "reviewer", &["*"]);
    let (status, body) = a.review(&alice.signer, &target, &hex, "dev", "deny");
    assert_eq!(status, 201, "{body}");
    assert_eq!(a.entry(&hex)["entry"]["promotion"]["state"], "denied");
    let (status, _) = a.send(
        "/v1/reviews",
        &alice.signer,
        &json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "Review",
            "entry": {"targetCatalogRef": target, "subjectDigest": {"sha256": hex}},
            "reviewer": alice.signer.verifier().short_id(),
            "channel": "dev", "verdict": "approve", "comment": "evidence checked"}),
    );
    assert_eq!(status, 201);
    let e = a.entry(&hex);
    assert_eq!(e["entry"]["status"], "published", "{e}");
    assert_eq!(e["entry"]["promotion"]["state"], "approved");
    assert_eq!(e["leafIndices"].as_array().unwrap().len(), 3);
}

#[test]
fn promotions_are_gated_by_the_destination_policy() {
    let a = Authority::start(&[]);
    let publisher = a.key("pipeline.example/smoke");
    a.grant(&publisher.signer, "publisher", &["dev"]);
    let (alice, bob, bob2) = (a.key("alice"), a.key("bob"), a.key("bob"));
    for r in [&alice, &bob, &bob2] {
        a.grant(&r.signer, "reviewer", &["*"]);
    }
    let (target, hex) = publish_release(&a, &publisher, "promoted");
    // Not yet published in dev: no promotion.
    let (status, body) = a.promote(&alice.signer, &target, &hex, "dev", "candidate");
    assert_eq!(status, 422);
    assert!(
        errors(&body)
            .iter()
            .any(|e| e.starts_with("status: the entry is draft")),
        "{body}"
    );
    assert_eq!(
        a.review(&alice.signer, &target, &hex, "dev", "approve").0,
        201
    );
    // Skipping a channel is refused.
    let (status, body) = a.promote(&alice.signer, &target, &hex, "dev", "stable");
    assert_eq!(status, 422);
    let errs = errors(&body).join("\n");
    assert!(
        errs.contains(
            "promoteFrom: channel stable is reached only from candidate, and the entry is in dev"
        ),
        "{errs}"
    );
    // Candidate needs its own approval first.
    let (status, body) = a.promote(&alice.signer, &target, &hex, "dev", "candidate");
    assert_eq!(status, 422);
    assert!(
        errors(&body).join("\n").contains(
            "approvals: channel candidate needs 1 distinct approval(s) for this entry, it has 0"
        ),
        "{body}"
    );
    assert_eq!(
        a.review(&bob.signer, &target, &hex, "candidate", "approve")
            .0,
        201
    );
    // Wrong fromChannel is named.
    let (status, body) = a.promote(&alice.signer, &target, &hex, "candidate", "stable");
    assert_eq!(status, 422);
    assert!(
        errors(&body)
            .join("\n")
            .contains("fromChannel: the entry is in channel dev"),
        "{body}"
    );
    let (status, body) = a.promote(&alice.signer, &target, &hex, "dev", "candidate");
    assert_eq!(status, 201, "{body}");
    let e = a.entry(&hex);
    assert_eq!(e["entry"]["labels"]["channel"], "candidate");
    assert_eq!(e["entry"]["status"], "published");
    assert_eq!(e["entry"]["promotion"]["state"], "promoted");
    // Stable needs two distinct names: two keys named bob count once.
    assert_eq!(
        a.review(&bob.signer, &target, &hex, "stable", "approve").0,
        201
    );
    assert_eq!(
        a.review(&bob2.signer, &target, &hex, "stable", "approve").0,
        201
    );
    let (status, body) = a.promote(&alice.signer, &target, &hex, "candidate", "stable");
    assert_eq!(status, 422);
    assert!(
        errors(&body)
            .join("\n")
            .contains("needs 2 distinct approval(s) for this entry, it has 1"),
        "{body}"
    );
    assert_eq!(
        a.review(&alice.signer, &target, &hex, "stable", "approve")
            .0,
        201
    );
    let (status, body) = a.promote(&alice.signer, &target, &hex, "candidate", "stable");
    assert_eq!(status, 201, "{body}");
    assert_eq!(a.entry(&hex)["entry"]["labels"]["channel"], "stable");
    // A dev-only entry without candidate evidence cannot be promoted, whatever the approvals.
    let hex2 = subject_hex("thin");
    let req = request("quay.io/t/thin", &hex2, "dev", dev_items(&hex2), no_refs());
    assert_eq!(a.publish(&publisher.signer, &req).0, 201);
    let target2 = req["targetCatalogRef"].as_str().unwrap();
    assert_eq!(
        a.review(&alice.signer, target2, &hex2, "dev", "approve").0,
        201
    );
    assert_eq!(
        a.review(&bob.signer, target2, &hex2, "candidate", "approve")
            .0,
        201
    );
    let (status, body) = a.promote(&alice.signer, target2, &hex2, "dev", "candidate");
    assert_eq!(status, 422);
    let errs = errors(&body).join("\n");
    assert!(
        errs.contains(
            "requiredEvidence: channel candidate requires evidence of type smoke-receipt"
        ),
        "{errs}"
    );
    assert!(errs.contains("blobsPresent"), "{errs}");
}

#[test]
fn revoked_keys_can_no_longer_publish_review_or_be_granted() {
    let a = Authority::start(&[]);
    let publisher = a.key("pipeline.example/smoke");
    let reviewer = a.key("carol");
    a.grant(&publisher.signer, "publisher", &["dev"]);
    a.grant(&reviewer.signer, "reviewer", &["*"]);
    let hex = subject_hex("revoked-1");
    let req = request("quay.io/t/r", &hex, "dev", dev_items(&hex), no_refs());
    assert_eq!(a.publish(&publisher.signer, &req).0, 201);
    let target = req["targetCatalogRef"].as_str().unwrap().to_string();
    for key in [&publisher, &reviewer] {
        let (status, body) = a.send(
            "/v1/admin/revocations",
            &a.admin,
            &json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "PublisherRevoke",
                "key": key.signer.verifier().to_vkey(), "reason": "key left the build farm"}),
        );
        assert_eq!(status, 201, "{body}");
    }
    let hex2 = subject_hex("revoked-2");
    let (status, body) = a.publish(
        &publisher.signer,
        &request("quay.io/t/r2", &hex2, "dev", dev_items(&hex2), no_refs()),
    );
    assert_eq!(status, 403, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("was revoked by leaf"),
        "{body}"
    );
    let (status, body) = a.review(&reviewer.signer, &target, &hex, "dev", "approve");
    assert_eq!(status, 403, "{body}");
    // Re-granting a revoked key is refused; only admins revoke; revoking twice is refused.
    let (status, _) = a.send(
        "/v1/admin/grants",
        &a.admin,
        &json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "PublisherGrant",
            "publisherKey": publisher.signer.verifier().to_vkey(), "role": "publisher",
            "targetPrefixes": [PREFIX], "channels": ["dev", "candidate"]}),
    );
    assert_eq!(status, 403);
    let other = a.key("other");
    let (status, _) = a.send(
        "/v1/admin/revocations",
        &other.signer,
        &json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "PublisherRevoke", "key": other.signer.verifier().to_vkey()}),
    );
    assert_eq!(status, 403);
    let (status, _) = a.send(
        "/v1/admin/revocations",
        &a.admin,
        &json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "PublisherRevoke", "key": publisher.signer.verifier().to_vkey()}),
    );
    assert_eq!(status, 422);
    // What was published before the revocation stays in the catalog.
    assert_eq!(a.entry(&hex)["entry"]["status"], "draft");
}

#[test]
fn status_changes_and_the_revoked_mapping() {
    let a = Authority::start(&[]);
    let publisher = a.key("pipeline.example/smoke");
    let reviewer = a.key("dave");
    a.grant(&publisher.signer, "publisher", &["dev"]);
    a.grant(&reviewer.signer, "reviewer", &["dev"]);
    let hex = subject_hex("status");
    let req = request("quay.io/t/s", &hex, "dev", dev_items(&hex), no_refs());
    assert_eq!(a.publish(&publisher.signer, &req).0, 201);
    let target = req["targetCatalogRef"].as_str().unwrap().to_string();
    assert_eq!(
        a.status(&reviewer.signer, &target, &hex, "restricted").0,
        201
    );
    let e = a.entry(&hex);
    assert_eq!(
        (
            e["entry"]["status"].as_str(),
            e["entry"]["labels"]["catalogStatus"].as_str()
        ),
        (Some("restricted"), Some("restricted"))
    );
    // A restricted entry cannot be reviewed; a reviewer cannot revoke; an admin can.
    let (status, _) = a.review(&reviewer.signer, &target, &hex, "dev", "approve");
    assert_eq!(status, 422);
    let (status, body) = a.status(&reviewer.signer, &target, &hex, "revoked");
    assert_eq!(status, 403, "{body}");
    assert_eq!(a.status(&a.admin, &target, &hex, "revoked").0, 201);
    let e = a.entry(&hex);
    assert_eq!(
        e["entry"]["status"], "restricted",
        "revoked is shown as restricted"
    );
    assert_eq!(e["entry"]["labels"]["catalogStatus"], "revoked");
    let (status, body) = a.get_json("/v1/catalog/entries?status=revoked");
    assert_eq!(
        (status, body["entries"].as_array().unwrap().len()),
        (200, 1)
    );
    // Revoked is final.
    let (status, body) = a.status(&a.admin, &target, &hex, "archived");
    assert_eq!(status, 422);
    assert!(errors(&body)[0].contains("final"), "{body}");
    // Unknown entries are named.
    let (status, body) = a.status(&a.admin, &target, &subject_hex("nothing"), "archived");
    assert_eq!(status, 422);
    assert!(
        errors(&body)[0].starts_with("entry: no catalog entry"),
        "{body}"
    );
}

#[test]
fn admins_set_the_policy_and_it_is_published() {
    let a = Authority::start(&[]);
    let (status, body) = a.get_json("/v1/policy");
    assert_eq!(status, 200);
    assert_eq!(body["leafIndex"], 0);
    assert_eq!(body["policy"]["channels"]["stable"]["approvals"], 2);
    assert_eq!(
        body["policy"]["channels"]["dev"]["requiresHumanReview"],
        true
    );
    let policy = json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "PolicySet", "channels": {
        "dev": {"requiredEvidence": ["sbom"]},
        "edge": {"requiredEvidence": ["sbom"], "requiresHumanReview": false, "approvals": 0},
    }});
    let publisher = a.key("pipeline.example/smoke");
    let (status, _) = a.send("/v1/admin/policy", &publisher.signer, &policy);
    assert_eq!(status, 403, "only admins set policy");
    let bad = json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "PolicySet", "channels": {
        "dev": {"requiredEvidence": ["sbom", "sbom"], "promoteFrom": "nowhere", "approvals": 99}}});
    let (status, body) = a.send("/v1/admin/policy", &a.admin, &bad);
    assert_eq!(status, 422);
    assert_eq!(errors(&body).len(), 3, "{body}");
    let (status, body) = a.send("/v1/admin/policy", &a.admin, &policy);
    assert_eq!(status, 201, "{body}");
    let (_, shown) = a.get_json("/v1/policy");
    assert_eq!(shown["leafIndex"], 1);
    assert!(shown["policy"]["channels"]["stable"].is_null());
    // A channel without human review publishes at once (its promotion state is origin).
    a.grant(&publisher.signer, "publisher", &["edge"]);
    let hex = subject_hex("edge");
    let req = request(
        "quay.io/t/edge",
        &hex,
        "edge",
        vec![item("sbom", "application/spdx+json", b"{}")],
        no_refs(),
    );
    let (status, body) = a.publish(&publisher.signer, &req);
    assert_eq!(status, 201, "{body}");
    let e = a.entry(&hex);
    assert_eq!(e["entry"]["status"], "published");
    assert_eq!(e["entry"]["promotion"]["state"], "origin");
}
