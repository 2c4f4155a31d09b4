//! The independent verifier (`tests/state_verifier.py`, written from
//! `log-format/state.md` alone) checks the committed vectors and a live server's proof
//! bundles (present, absent, channel head, key roles), and refuses a forged one.

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};

use common::authority::{no_refs, request, subject_hex, Authority, PREFIX};
use serde_json::{json, Value};

const NEEDS: &str = "cryptography";

fn verify(vkey: &str, bundle: &Value) -> (bool, String) {
    let mut child = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/state_verifier.py"
        ))
        .args(["bundle", vkey])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&serde_json::to_vec(bundle).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn q(s: &str) -> String {
    s.replace(':', "%3A")
        .replace('/', "%2F")
        .replace('+', "%2B")
        .replace('=', "%3D")
}

#[test]
fn the_python_verifier_agrees() {
    let out = common::python_ok(
        "state_verifier.py",
        &[
            "vectors",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/log-format/vectors/state/map.json"
            ),
        ],
        b"",
        NEEDS,
    );
    assert!(out.starts_with("vectors ok"), "{out}");

    let a = Authority::start(&["--state-commit-every", "1"]);
    let publisher = a.key("pipeline");
    a.grant(&publisher.signer, "publisher", &["dev"]);
    let open = json!({"requiredEvidence": [], "approvals": 0, "requiresHumanReview": false});
    let (status, body) = a.send(
        "/v1/admin/policy",
        &a.admin,
        &json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "PolicySet", "channels": {"dev": open}}),
    );
    assert_eq!(status, 201, "{body}");
    let hex = subject_hex("python");
    let name = "quay.io/socios/sourceos-smoke-runner";
    let target = format!("{PREFIX}sourceos-smoke-runner");
    let (status, body) = a.publish(
        &publisher.signer,
        &request(name, &hex, "dev", vec![], no_refs()),
    );
    assert_eq!(status, 201, "{body}");
    a.state_settled();
    let vkey = a.data.join("log.vkey");
    let vkey = vkey.to_str().unwrap();

    let cases = [
        (
            format!("target={}&subject=sha256%3A{hex}", q(&target)),
            "present",
        ),
        (
            format!("target={}&subject=sha256%3A{}", q(&target), "0".repeat(64)),
            "absent",
        ),
        (format!("subject=sha256%3A{hex}"), "present"),
        (format!("target={}&channel=stable", q(&target)), "absent"),
        (
            format!("key={}", q(&publisher.signer.verifier().to_vkey())),
            "present",
        ),
    ];
    let mut entry_bundle = Value::Null;
    for (query, want) in cases {
        let (status, bundle) = a.get_json(&format!("/v1/state/proofs?{query}"));
        assert_eq!(status, 200, "{query}: {bundle}");
        let (ok, out) = verify(vkey, &bundle);
        assert!(ok, "{query}: {out}");
        assert!(out.starts_with(want), "{query}: {out}");
        if entry_bundle.is_null() {
            entry_bundle = bundle;
        }
    }
    // Forgeries: another status, another key, a flipped proof byte.
    let mut forged = entry_bundle.clone();
    forged["value"]["status"] = json!("revoked");
    assert!(!verify(vkey, &forged).0);
    let mut forged = entry_bundle.clone();
    forged["key"][1] = json!(format!("{PREFIX}other"));
    assert!(!verify(vkey, &forged).0);
    let mut forged = entry_bundle.clone();
    let proof = forged["mapProof"].as_str().unwrap().to_string();
    let flipped = if proof.starts_with('A') { "B" } else { "A" };
    forged["mapProof"] = json!(format!("{flipped}{}", &proof[1..]));
    assert!(!verify(vkey, &forged).0);
}
