//! State commitments end to end, on real servers: the sequencer commits the map root in
//! the log, `GET /v1/state/proofs` serves self-contained proofs, `check` answers the
//! consumer's question from them (0 while the subject is published on the channel, 1
//! with the reason once it is revoked, offline from a saved proof too), replay
//! re-checks every commitment, and a log that commits a wrong root is caught by replay
//! and by `monitor --audit` (`bad-state-commitment`, with the entry as evidence).

mod common;
mod watchers;

use common::authority::{no_refs, request, subject_hex, Authority, Key, PREFIX};
use common::cli;
use serde_json::json;
use srcos_catalog::keyfile::read_verifier;
use srcos_catalog::state::{StateHistory, StateProofBundle};

/// Dev, candidate and stable with no evidence or approvals required, so an entry can
/// be walked through every channel by the admin alone.
fn open_policy(a: &Authority) {
    let open = json!({"requiredEvidence": [], "approvals": 0, "requiresHumanReview": false});
    let mut candidate = open.clone();
    candidate["promoteFrom"] = json!("dev");
    let mut stable = open.clone();
    stable["promoteFrom"] = json!("candidate");
    let (status, body) = a.send(
        "/v1/admin/policy",
        &a.admin,
        &json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "PolicySet",
            "channels": {"dev": open, "candidate": candidate, "stable": stable}}),
    );
    assert_eq!(status, 201, "{body}");
}

/// A server committing after every batch (plus `extra` flags), with a publisher granted
/// `dev` and the open policy: the start every end-to-end state test shares.
fn committing_authority(extra: &[&str]) -> (Authority, Key) {
    let mut args = vec!["--state-commit-every", "1"];
    args.extend_from_slice(extra);
    let a = Authority::start(&args);
    let publisher = a.key("pipeline");
    a.grant(&publisher.signer, "publisher", &["dev"]);
    open_policy(&a);
    (a, publisher)
}

/// Runs `check` against the server; (exit code, stdout + stderr).
fn check(
    a: &Authority,
    target: &str,
    subject: &str,
    channel: &str,
    extra: &[&str],
) -> (i32, String) {
    let vkey = a.data.join("log.vkey");
    let mut args = vec![
        "check",
        "--target",
        target,
        "--subject",
        subject,
        "--channel",
        channel,
        "--log-vkey",
        vkey.to_str().unwrap(),
    ];
    if !extra.contains(&"--proof") {
        args.extend(["--server", a.server.url.as_str()]);
    }
    args.extend_from_slice(extra);
    let out = cli(&args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn check_follows_the_channels_and_a_revocation_flips_it() {
    let (a, publisher) = committing_authority(&[]);
    let hex = subject_hex("state-e2e");
    let name = "quay.io/socios/sourceos-smoke-runner";
    let target = format!("{PREFIX}sourceos-smoke-runner");
    let subject = format!("{name}@sha256:{hex}");

    let (code, out) = check(&a, &target, &subject, "dev", &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("NOT OK: absent: no entry"), "{out}");

    let (status, body) = a.publish(
        &publisher.signer,
        &request(name, &hex, "dev", vec![], no_refs()),
    );
    assert_eq!(status, 201, "{body}");
    a.state_settled();
    let (code, out) = check(&a, &target, &subject, "dev", &["--max-age", "10m"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("OK: "), "{out}");
    let (code, out) = check(&a, &target, &subject, "stable", &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("other channel: the entry is published on dev, not stable"),
        "{out}"
    );
    // A wrong name is refused, though the digest matches.
    let (code, out) = check(
        &a,
        &target,
        &format!("quay.io/other@sha256:{hex}"),
        "dev",
        &[],
    );
    assert_eq!(code, 1, "{out}");

    for (from, to) in [("dev", "candidate"), ("candidate", "stable")] {
        let (status, body) = a.promote(&a.admin, &target, &hex, from, to);
        assert_eq!(status, 201, "{body}");
        a.state_settled();
        let (code, out) = check(&a, &target, &subject, to, &[]);
        assert_eq!(code, 0, "{to}: {out}");
    }
    // With a history proof from the first commitment: yes, and how it got there.
    let (code, out) = check(&a, &target, &subject, "stable", &["--since", "2"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("since size 2: published on dev at leaf"),
        "{out}"
    );
    assert!(out.contains("promoted to stable at leaf"), "{out}");
    let saved = a.dir.path().join("stable-proof.json");
    let (code, out) = check(
        &a,
        &target,
        &subject,
        "stable",
        &["--save", saved.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}");

    // The channel head is proved too.
    let (status, head) = a.get_json(&format!(
        "/v1/state/proofs?target={}&channel=stable",
        target.replace(':', "%3A").replace('/', "%2F")
    ));
    assert_eq!(status, 200, "{head}");
    assert_eq!(head["value"]["subject"], format!("sha256:{hex}"));
    let bundle: StateProofBundle = serde_json::from_value(head).unwrap();
    let log_key = read_verifier(&a.data.join("log.vkey")).unwrap();
    bundle.verify(&log_key, &[], 0).unwrap();

    let (status, body) = a.status(&a.admin, &target, &hex, "revoked");
    assert_eq!(status, 201, "{body}");
    a.state_settled();
    let (code, out) = check(&a, &target, &subject, "stable", &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("NOT OK: revoked: the entry's status is revoked since leaf"),
        "{out}"
    );

    // The entry's history from the log's first commitment (size 2, after the grant):
    // absent, then on each channel, then revoked; every commitment in between, chained.
    let (status, body) = a.get_json(&format!(
        "/v1/state/proofs/history?target={}&subject=sha256%3A{hex}&from=2",
        target.replace(':', "%3A").replace('/', "%2F")
    ));
    assert_eq!(status, 200, "{body}");
    let history: StateHistory = serde_json::from_value(body).unwrap();
    let steps = history.verify(&log_key, &[], 0).unwrap();
    assert_eq!(steps[0].tree_size, 2);
    assert!(steps[0].value.is_none());
    let seen: Vec<String> = steps
        .iter()
        .filter_map(|s| s.value.as_ref())
        .map(|v| {
            let v: serde_json::Value = serde_json::from_slice(v).unwrap();
            format!(
                "{} {}",
                v["channel"].as_str().unwrap(),
                v["status"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(seen.last().unwrap(), "stable revoked", "{seen:?}");
    for want in ["dev published", "candidate published", "stable published"] {
        assert!(seen.iter().any(|s| s == want), "{want}: {seen:?}");
    }
    // `check --since` says the same from the history proof, online and offline: revoked
    // at leaf i after being promoted to stable at leaf j.
    let value = |step: &srcos_catalog::state::VerifiedLookup| -> Option<serde_json::Value> {
        step.value
            .as_ref()
            .map(|v| serde_json::from_slice(v).unwrap())
    };
    let last_leaf = |v: &serde_json::Value| {
        v["leafIndices"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .as_u64()
            .unwrap()
    };
    let revoked_at = last_leaf(&value(steps.last().unwrap()).unwrap());
    let promoted_at = steps
        .iter()
        .filter_map(value)
        .find(|v| v["channel"] == "stable")
        .map(|v| last_leaf(&v))
        .unwrap();
    let want = format!(
        "revoked at leaf {revoked_at} after being promoted to stable at leaf {promoted_at}"
    );
    let saved_history = a.dir.path().join("history.json");
    let history_file = saved_history.to_str().unwrap();
    let (code, out) = check(
        &a,
        &target,
        &subject,
        "stable",
        &["--since", "2", "--save", history_file],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("NOT OK: revoked: "), "{out}");
    assert!(out.contains(&want), "{out}");
    let (code, out) = check(&a, &target, &subject, "stable", &["--proof", history_file]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&want), "{out}");
    let (code, out) = check(
        &a,
        &target,
        &subject,
        "stable",
        &["--proof", history_file, "--since", "3"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("starts at the commitment to size 2, not --since 3"),
        "{out}"
    );
    let mut cut: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&saved_history).unwrap()).unwrap();
    cut["steps"].as_array_mut().unwrap().remove(1);
    std::fs::write(&saved_history, serde_json::to_vec(&cut).unwrap()).unwrap();
    let (code, out) = check(&a, &target, &subject, "stable", &["--proof", history_file]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("the history proof does not verify: incomplete"),
        "{out}"
    );

    // Leaving a commitment out is caught by the chain.
    let mut gapped = history.clone();
    gapped.steps.remove(1);
    let err = gapped.verify(&log_key, &[], 0).unwrap_err();
    assert!(err.to_string().starts_with("incomplete:"), "{err}");
    // A size that is no commitment, and a missing from, are refused.
    let (status, _) = a.get_json(&format!(
        "/v1/state/proofs/history?subject=sha256%3A{hex}&from=1"
    ));
    assert_eq!(status, 404);
    let (status, _) = a.get_json(&format!("/v1/state/proofs/history?subject=sha256%3A{hex}"));
    assert_eq!(status, 400);

    // The saved proof still says what it said, offline; --max-age bounds how long.
    let proof = saved.to_str().unwrap();
    let (code, out) = check(&a, &target, &subject, "stable", &["--proof", proof]);
    assert_eq!(code, 0, "{out}");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (code, out) = check(
        &a,
        &target,
        &subject,
        "stable",
        &["--proof", proof, "--max-age", "1s"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("NOT OK: stale"), "{out}");
    // A forged value in the saved proof is refused.
    let mut forged: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&saved).unwrap()).unwrap();
    forged["value"]["status"] = json!("published");
    forged["value"]["channel"] = json!("stable");
    forged["value"]["leafIndices"] = json!([1]);
    std::fs::write(&saved, serde_json::to_vec(&forged).unwrap()).unwrap();
    let (code, out) = check(&a, &target, &subject, "stable", &["--proof", proof]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("the proof does not verify"), "{out}");

    // Replay re-checks every commitment from the entries alone.
    let out = a.replay();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And the monitor's audit agrees with the log.
    let state = a.dir.path().join("monitor.state");
    let (code, out) = watchers::monitor_once(&a.server.url, &a.data, &state, &["--audit"]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_wrong_commitment_is_caught_by_replay_and_the_monitor() {
    let a = Authority::start(&[
        "--state-commit-every",
        "1",
        "--state-commit-wrong-root-for-tests",
    ]);
    let publisher = a.key("pipeline");
    a.grant(&publisher.signer, "publisher", &["dev"]);
    let out = a.replay();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad-state-commitment: leaf 2 commits to map root"),
        "{err}"
    );

    let state = a.dir.path().join("monitor.state");
    let (code, out) = watchers::monitor_once(&a.server.url, &a.data, &state, &["--audit"]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("ALERT bad-state-commitment:"), "{out}");
    assert!(out.contains("state commitment entry"), "{out}");
    assert!(out.contains("\"kind\":\"StateCommitment\""), "{out}");
    // Without --audit the log is still append-only and consistent: no alert.
    let plain = a.dir.path().join("plain.state");
    let (code, out) = watchers::monitor_once(&a.server.url, &a.data, &plain, &[]);
    assert_eq!(code, 0, "{out}");
}

/// `kill -9` while publications (and so commitments) are being sequenced: after the
/// restart the log commits again from a map rebuilt from the entries, and replay,
/// which recomputes every committed root from the entries alone, accepts them all.
#[test]
fn commitments_survive_kill_9() {
    let (a, publisher) = committing_authority(&["--batch-max", "16"]);
    let Authority {
        dir,
        data,
        mut server,
        http: _,
        admin,
    } = a;
    let url = server.url.clone();
    let signer = publisher.signer.clone();
    let loader = std::thread::spawn(move || {
        // Not the tests' `Http`, which panics when the server is gone.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = srcos_catalog::http::HttpClient::new(&url).unwrap();
        let mut acked = Vec::new();
        for i in 0..100_000u32 {
            let hex = subject_hex(&format!("kill-{i}"));
            let body = request(
                "quay.io/socios/sourceos-smoke-runner",
                &hex,
                "dev",
                vec![],
                no_refs(),
            );
            let bytes = serde_jcs::to_vec(&body).unwrap();
            let envelope = srcos_catalog::catalog::sign_envelope(&bytes, &signer).to_json();
            let sent = rt.block_on(client.post(
                "/v1/publications",
                "application/json",
                envelope.into_bytes().into(),
            ));
            match sent {
                Ok(r) if r.status.as_u16() == 201 => {}
                _ => break,
            }
            acked.push(hex);
        }
        acked
    });
    std::thread::sleep(std::time::Duration::from_millis(700));
    server.kill9();
    let acked = loader.join().unwrap();
    assert!(!acked.is_empty(), "nothing was published before the kill");

    let server = common::Server::start(&data, &["--state-commit-every", "1"]);
    let a = Authority {
        dir,
        data,
        http: common::Http::new(&server.url),
        server,
        admin,
    };
    // Idle after the restart, the server commits to the state it restarted with, so
    // every acknowledged entry is provable again without a new write.
    a.state_settled();
    let target = format!("{PREFIX}sourceos-smoke-runner");
    for hex in [acked[0].clone(), acked[acked.len() - 1].clone()] {
        let subject = format!("quay.io/socios/sourceos-smoke-runner@sha256:{hex}");
        let (code, out) = check(&a, &target, &subject, "dev", &[]);
        assert_eq!(code, 0, "{out}");
    }
    // One more batch, so that a commitment is made by the restarted server.
    let (status, body) = a.publish(
        &publisher.signer,
        &request(
            "quay.io/socios/sourceos-smoke-runner",
            &subject_hex("after"),
            "dev",
            vec![],
            no_refs(),
        ),
    );
    assert_eq!(status, 201, "{body}");
    a.state_settled();
    let out = a.replay();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for hex in [
        acked[0].clone(),
        acked[acked.len() - 1].clone(),
        subject_hex("after"),
    ] {
        let subject = format!("quay.io/socios/sourceos-smoke-runner@sha256:{hex}");
        let (code, out) = check(&a, &target, &subject, "dev", &[]);
        assert_eq!(code, 0, "{out}");
    }
}

/// The size a proof bundle's commitment names.
fn committed_size(bundle: &serde_json::Value) -> u64 {
    use base64::Engine as _;
    let entry = base64::engine::general_purpose::STANDARD
        .decode(bundle["commitment"]["entry"].as_str().unwrap())
        .unwrap();
    let leaf: serde_json::Value = serde_json::from_slice(&entry).unwrap();
    leaf["treeSize"].as_u64().unwrap()
}

/// The commitments made before a restart (here after `kill -9`) are still proved after
/// it: the server rebuilds the maps of its newest commitments from the entries at
/// start-up, so a proof at a pre-restart size is the same proof as before, and a
/// history from a pre-restart size runs across the restart.
#[test]
fn commitments_made_before_a_restart_are_still_proved() {
    let (a, publisher) = committing_authority(&[]);
    let hex = subject_hex("before-restart");
    let name = "quay.io/socios/sourceos-smoke-runner";
    let target = format!("{PREFIX}sourceos-smoke-runner");
    let query = format!(
        "target={}&subject=sha256%3A{hex}",
        target.replace(':', "%3A").replace('/', "%2F")
    );
    // (committed size, proof) after each step: published on dev, promoted, revoked.
    let mut before = Vec::new();
    let (status, body) = a.publish(
        &publisher.signer,
        &request(name, &hex, "dev", vec![], no_refs()),
    );
    assert_eq!(status, 201, "{body}");
    a.state_settled();
    let step = |a: &Authority, before: &mut Vec<(u64, serde_json::Value)>| {
        let (status, proof) = a.get_json(&format!("/v1/state/proofs?{query}"));
        assert_eq!(status, 200, "{proof}");
        before.push((committed_size(&proof), proof));
    };
    step(&a, &mut before);
    let (status, body) = a.promote(&a.admin, &target, &hex, "dev", "candidate");
    assert_eq!(status, 201, "{body}");
    a.state_settled();
    step(&a, &mut before);
    let (status, body) = a.status(&a.admin, &target, &hex, "revoked");
    assert_eq!(status, 201, "{body}");
    a.state_settled();
    step(&a, &mut before);

    let Authority {
        dir,
        data,
        mut server,
        http: _,
        admin,
    } = a;
    server.kill9();
    let server = common::Server::start(&data, &["--state-commit-every", "1"]);
    let a = Authority {
        dir,
        data,
        http: common::Http::new(&server.url),
        server,
        admin,
    };
    let log_key = read_verifier(&a.data.join("log.vkey")).unwrap();
    for (size, proof) in &before {
        let (status, again) = a.get_json(&format!("/v1/state/proofs?{query}&tree_size={size}"));
        assert_eq!(status, 200, "size {size} after the restart: {again}");
        assert_eq!(again["value"], proof["value"], "size {size}");
        assert_eq!(again["mapProof"], proof["mapProof"], "size {size}");
        let bundle: StateProofBundle = serde_json::from_value(again).unwrap();
        assert_eq!(bundle.verify(&log_key, &[], 0).unwrap().tree_size, *size);
    }
    // A history from the first pre-restart size: every commitment since, chained.
    let (status, body) = a.get_json(&format!(
        "/v1/state/proofs/history?{query}&from={}",
        before[0].0
    ));
    assert_eq!(status, 200, "{body}");
    let history: StateHistory = serde_json::from_value(body).unwrap();
    let steps = history.verify(&log_key, &[], 0).unwrap();
    assert_eq!(steps[0].tree_size, before[0].0);
    let last: serde_json::Value =
        serde_json::from_slice(steps.last().unwrap().value.as_ref().unwrap()).unwrap();
    assert_eq!(last["status"], "revoked");
}

/// Hostile or wrong queries get a precise 4xx; a log that does not commit answers 404.
#[test]
fn state_proof_queries_are_checked() {
    let plain = Authority::start(&[]);
    let (status, body) = plain.get_json(&format!(
        "/v1/state/proofs?subject=sha256%3A{}",
        "a".repeat(64)
    ));
    assert_eq!(status, 404, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("--state-commit-every"),
        "{body}"
    );

    let a = Authority::start(&["--state-commit-every", "1"]);
    let publisher = a.key("pipeline");
    a.grant(&publisher.signer, "publisher", &["dev"]);
    let digest = format!("sha256%3A{}", "a".repeat(64));
    for query in [
        String::new(),
        "subject=sha256%3Axyz".to_string(),
        format!("subject={}", "a".repeat(64)),
        format!("subject={digest}&bogus=1"),
        format!("subject={digest}&channel=dev"),
        format!("target=nope&subject={digest}"),
        format!(
            "target=sourceos%3A%2F%2Fcatalog%2Fimages%2Fx&channel={}",
            "c".repeat(100)
        ),
        "key=not-a-key".to_string(),
        format!("subject={digest}&tree_size=01"),
    ] {
        let (status, body) = a.get_json(&format!("/v1/state/proofs?{query}"));
        assert_eq!(status, 400, "{query}: {body}");
    }
    // A size that is no commitment.
    let (status, body) = a.get_json(&format!("/v1/state/proofs?subject={digest}&tree_size=1"));
    assert_eq!(status, 404, "{body}");
    // The commitment at size 2 (leaf 2 follows the grant at leaf 1) answers.
    let (status, body) = a.get_json(&format!("/v1/state/proofs?subject={digest}&tree_size=2"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["value"], serde_json::Value::Null);
}
