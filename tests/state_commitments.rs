//! State commitments end to end, on real servers: the sequencer commits the map root in
//! the log, `GET /v1/state/proofs` serves self-contained proofs, `check` answers the
//! consumer's question from them (0 while the subject is published on the channel, 1
//! with the reason once it is revoked, offline from a saved proof too), replay
//! re-checks every commitment, and a log that commits a wrong root is caught by replay
//! and by `monitor --audit` (`bad-state-commitment`, with the entry as evidence).

mod common;
mod watchers;

use common::authority::{no_refs, request, subject_hex, Authority, PREFIX};
use common::cli;
use serde_json::json;
use srcos_catalog::keyfile::read_verifier;
use srcos_catalog::state::StateProofBundle;

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
    let a = Authority::start(&["--state-commit-every", "1"]);
    let publisher = a.key("pipeline");
    a.grant(&publisher.signer, "publisher", &["dev"]);
    open_policy(&a);
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
        let (code, out) = check(&a, &target, &subject, to, &[]);
        assert_eq!(code, 0, "{to}: {out}");
    }
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
    let (code, out) = check(&a, &target, &subject, "stable", &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("NOT OK: revoked: the entry's status is revoked since leaf"),
        "{out}"
    );

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
    let vkey = a.data.join("log.vkey");
    let out = cli(&[
        "replay",
        "--server",
        &a.server.url,
        "--log-vkey",
        vkey.to_str().unwrap(),
    ]);
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
    let vkey = a.data.join("log.vkey");
    let out = cli(&[
        "replay",
        "--server",
        &a.server.url,
        "--log-vkey",
        vkey.to_str().unwrap(),
    ]);
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
