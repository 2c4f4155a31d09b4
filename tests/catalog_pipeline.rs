//! The pipeline flow through the real CLI: `request from-reports` on the self-made socios
//! reports tree, `publish --dry-run`, `publish --upload`, reviews and promotions through
//! every channel, replay against the server, and local-only mode served afterwards.

mod common;

use std::path::{Path, PathBuf};

use common::authority::{crate_file, Authority};
use common::{cli, cli_ok, Http, Server};
use serde_json::Value;
use sha2::{Digest, Sha256};

const SUBJECT_HEX: &str = "421f7664cba94a1aec4d68625594e68fa400e9d4bc95f2ac1466341d3fbda0c7";
const TARGET: &str = "sourceos://catalog/images/sourceos-smoke-runner";

fn subject() -> String {
    format!("quay.io/socios/sourceos-smoke-runner@sha256:{SUBJECT_HEX}")
}

fn reports() -> PathBuf {
    crate_file("tests/fixtures/reports")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn from_reports(out: &Path, channel: &str) -> Value {
    cli_ok(&[
        "request",
        "from-reports",
        s(&reports()),
        "--subject",
        &subject(),
        "--target",
        TARGET,
        "--channel",
        channel,
        "--out",
        s(out),
    ]);
    serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap()
}

#[test]
fn from_reports_maps_the_fixture_tree() {
    let dir = common::tempdir();
    let req = from_reports(&dir.path().join("request.json"), "dev");
    let evidence = req["evidence"].as_array().unwrap();
    let types: Vec<&str> = evidence
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    let mut sorted = types.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "base-image-receipt",
            "build-receipt",
            "evidence-bundle",
            "provenance",
            "sbom",
            "smoke-receipt",
            "task-image-digests",
            "vulnerability-scan"
        ],
        "disabled attestation and promotion steps are left out"
    );
    for e in evidence {
        let rel = e["uri"]
            .as_str()
            .unwrap()
            .strip_prefix(".workstation/reports/")
            .unwrap();
        let bytes = std::fs::read(reports().join(rel)).unwrap();
        assert_eq!(e["digest"]["sha256"], hex::encode(Sha256::digest(&bytes)));
        assert_eq!(e["size"], bytes.len());
    }
    let task = evidence
        .iter()
        .find(|e| e["type"] == "task-image-digests")
        .unwrap();
    assert!(
        task["uri"].as_str().unwrap().ends_with("-task-images.json"),
        "the v0 file name is tolerated"
    );
    let sbom = evidence.iter().find(|e| e["type"] == "sbom").unwrap();
    assert_eq!(sbom["mediaType"], "application/spdx+json");
    assert_eq!(req["subject"]["digest"]["sha256"], SUBJECT_HEX);
    let refs = &req["agentplaneRefs"];
    assert_eq!(
        refs["validationArtifactRef"]["uri"],
        "agentplane://validation-artifact/sourceos-smoke-runner-0001"
    );
    assert_eq!(
        refs["runArtifactRef"]["uri"],
        "agentplane://run-artifact/sourceos-smoke-runner-0001"
    );
    assert!(refs["replayArtifactRef"].is_null());
    // A subject without a digest is refused with the reason.
    let out = cli(&[
        "request",
        "from-reports",
        s(&reports()),
        "--subject",
        "quay.io/x:dev",
        "--target",
        TARGET,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("NAME@sha256:HEX"));
}

struct Keys {
    publisher: PathBuf,
    reviewers: Vec<PathBuf>,
}

fn keys(a: &Authority, dest: &[&str]) -> Keys {
    let admin = a.data.join("admin.key");
    let publisher = a.key("pipeline.example/smoke-runner");
    let grant = |vkey: &Path, role: &str| {
        let mut args = vec![
            "grant",
            "--admin-key",
            s(&admin),
            "--publisher-vkey",
            s(vkey),
            "--role",
            role,
            "--target-prefix",
            "sourceos://catalog/images/",
            "--channel",
            "*",
            "--out",
            "/dev/null",
        ];
        args.extend_from_slice(dest);
        cli_ok(&args);
    };
    grant(&publisher.vkey_file, "publisher");
    let mut reviewers = Vec::new();
    for name in ["alice@release", "bob@release"] {
        let k = a.key(name);
        grant(&k.vkey_file, "reviewer");
        reviewers.push(k.key_file);
    }
    Keys {
        publisher: publisher.key_file,
        reviewers,
    }
}

fn tree_size(http: &Http) -> u64 {
    let (_, _, body) = http.get("/v1/log");
    serde_json::from_slice::<Value>(&body).unwrap()["treeSize"]
        .as_u64()
        .unwrap()
}

#[test]
fn reports_to_stable_through_the_cli_with_dry_run_and_replay() {
    let a = Authority::start(&[]);
    let server = ["--server", a.server.url.as_str()];
    let k = keys(&a, &server);
    let dir = a.dir.path();
    let log_vkey = a.data.join("log.vkey");
    let dev = dir.join("dev.json");
    from_reports(&dev, "dev");
    let before = tree_size(&a.http);
    // Dry runs submit nothing: dev passes (content checked from the local files), a direct
    // candidate publication lists every failed requirement.
    let ok = cli_ok(&[
        "publish",
        "--server",
        &a.server.url,
        "--dry-run",
        s(&dev),
        "--evidence-dir",
        s(&reports()),
    ]);
    assert!(
        ok.contains(
            "meets the policy of channel dev (policy leaf 0); 8 of 8 evidence blobs checked"
        ),
        "{ok}"
    );
    let candidate = dir.join("candidate.json");
    from_reports(&candidate, "candidate");
    let out = cli(&[
        "publish",
        "--server",
        &a.server.url,
        "--dry-run",
        s(&candidate),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("promoteFrom: channel candidate is reached only by promotion from dev"),
        "{err}"
    );
    assert!(err.contains("blobsPresent"), "{err}");
    assert_eq!(tree_size(&a.http), before, "a dry run appends nothing");

    // Upload the evidence and publish; the receipt is verified before it is written.
    let receipt = dir.join("receipt.json");
    let out = cli(&[
        "publish",
        "--server",
        &a.server.url,
        "--key",
        s(&k.publisher),
        "--log-vkey",
        s(&log_vkey),
        "--upload",
        "--evidence-dir",
        s(&reports()),
        s(&dev),
        "--out",
        s(&receipt),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("uploaded sha256:"), "{err}");
    cli_ok(&["verify", "--log-vkey", s(&log_vkey), s(&receipt)]);

    let sha = format!("sha256:{SUBJECT_HEX}");
    let decide = |args: &[&str]| {
        let mut full = vec![
            args[0],
            "--server",
            a.server.url.as_str(),
            "--log-vkey",
            s(&log_vkey),
            "--target",
            TARGET,
            "--subject",
            &sha,
        ];
        full.extend_from_slice(&args[1..]);
        cli(&full)
    };
    let (alice, bob) = (s(&k.reviewers[0]), s(&k.reviewers[1]));
    let refused = decide(&[
        "promote",
        "--key",
        alice,
        "--from",
        "dev",
        "--to",
        "candidate",
    ]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("refused (422)") && err.contains("status: the entry is draft"),
        "{err}"
    );
    for (key, channel) in [
        (alice, "dev"),
        (bob, "candidate"),
        (alice, "stable"),
        (bob, "stable"),
    ] {
        let out = decide(&[
            "review",
            "--key",
            key,
            "--channel",
            channel,
            "--approve",
            "--out",
            "/dev/null",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for (from, to) in [("dev", "candidate"), ("candidate", "stable")] {
        let out = decide(&[
            "promote",
            "--key",
            alice,
            "--from",
            from,
            "--to",
            to,
            "--out",
            "/dev/null",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let e = a.entry(SUBJECT_HEX);
    assert_eq!(e["entry"]["labels"]["channel"], "stable");
    assert_eq!(e["entry"]["status"], "published");
    assert_eq!(e["entry"]["promotion"]["state"], "promoted");
    let out = decide(&[
        "status",
        "--key",
        alice,
        "--status",
        "superseded",
        "--reason",
        "rebuilt",
        "--out",
        "/dev/null",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Replays of the served log and of the data directory agree with the live state and
    // with each other, byte for byte.
    let r1 = cli_ok(&[
        "replay",
        "--server",
        &a.server.url,
        "--log-vkey",
        s(&log_vkey),
    ]);
    let r2 = cli_ok(&["replay", "--data", s(&a.data), "--compare", &a.server.url]);
    assert!(r1.contains("matches"), "{r1}");
    let digest = |out: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix("state digest: "))
            .unwrap()
            .to_string()
    };
    assert_eq!(digest(&r1), digest(&r2));
    let shown = cli_ok(&["policy", "show", "--server", &a.server.url]);
    assert!(shown.contains("\"leafIndex\": 0"), "{shown}");
}

#[test]
fn local_mode_appends_with_the_same_admission_and_can_be_served() {
    let dir = common::tempdir();
    let data = dir.path().join("local");
    // Opening the local log creates it (log key, admin key, genesis).
    cli_ok(&["policy", "show", "--data", s(&data)]);
    let admin = data.join("admin.key");
    assert!(admin.exists());
    let key = |name: &str| {
        let prefix = dir.path().join(name);
        cli_ok(&["keygen", "--name", name, "--out", s(&prefix)]);
        prefix
    };
    let (publisher, reviewer) = (key("pipeline"), key("gail"));
    for (k, role) in [(&publisher, "publisher"), (&reviewer, "reviewer")] {
        cli_ok(&[
            "grant",
            "--data",
            s(&data),
            "--admin-key",
            s(&admin),
            "--publisher-vkey",
            &format!("{}.vkey", s(k)),
            "--role",
            role,
            "--target-prefix",
            "sourceos://catalog/images/",
            "--out",
            "/dev/null",
        ]);
    }
    let request = dir.path().join("request.json");
    from_reports(&request, "dev");
    // The same policy applies locally: a direct candidate publication is refused.
    let candidate = dir.path().join("candidate.json");
    from_reports(&candidate, "candidate");
    let out = cli(&[
        "publish",
        "--data",
        s(&data),
        "--key",
        &format!("{}.key", s(&publisher)),
        s(&candidate),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refused (403)"),
        "the grant covers dev only"
    );
    let receipt = dir.path().join("receipt.json");
    cli_ok(&[
        "publish",
        "--data",
        s(&data),
        "--key",
        &format!("{}.key", s(&publisher)),
        "--upload",
        "--evidence-dir",
        s(&reports()),
        s(&request),
        "--out",
        s(&receipt),
    ]);
    cli_ok(&[
        "review",
        "--data",
        s(&data),
        "--key",
        &format!("{}.key", s(&reviewer)),
        "--target",
        TARGET,
        "--subject",
        &subject(),
        "--channel",
        "dev",
        "--approve",
        "--out",
        "/dev/null",
    ]);
    let log_vkey = data.join("log.vkey");
    cli_ok(&["verify", "--log-vkey", s(&log_vkey), s(&receipt)]);
    assert!(cli_ok(&["fsck", "--data", s(&data)]).contains("OK: 5 entries"));
    let local = cli_ok(&["replay", "--data", s(&data)]);

    // Served later, the same directory answers with the same state.
    let server = Server::start(&data, &[]);
    let http = Http::new(&server.url);
    let (status, _, body) = http.get(&format!("/v1/catalog/entries?subject=sha256:{SUBJECT_HEX}"));
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["entries"][0]["entry"]["status"], "published");
    let served = cli_ok(&[
        "replay",
        "--server",
        &server.url,
        "--log-vkey",
        s(&log_vkey),
    ]);
    let digest = |out: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix("state digest: "))
            .unwrap()
            .to_string()
    };
    assert_eq!(digest(&local), digest(&served));
    // The uploaded evidence was checked: the bundle carries the analysis of all 8 blobs.
    let id = v["entries"][0]["entry"]["evidenceBundleRef"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, _, body) = http.get(&format!("/v1/catalog/evidence-bundles/{id}"));
    let b: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(b["evidenceReport"]["items"].as_array().unwrap().len(), 8);
}
