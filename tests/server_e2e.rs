//! The whole path against a real server process and the real CLI: keygen, grant,
//! publish, duplicate, offline verify, tamper detection, the read endpoints, fsck,
//! graceful shutdown and restart.

mod common;

use common::backend::Backend;
use common::{cli, cli_ok, request_json, tempdir, Http};
use srcos_catalog::merkle;
use srcos_catalog::note::{self, Verifier};
use srcos_catalog::receipt::Receipt;

fn read_vkey(path: &std::path::Path) -> Verifier {
    Verifier::from_vkey(std::fs::read_to_string(path).unwrap().trim()).unwrap()
}

/// On the POSIX data directory and on S3 + PostgreSQL: the same walkthrough, the same
/// answers.
#[test]
fn publish_receive_a_receipt_and_verify_it_offline() {
    for backend in Backend::all("server_e2e") {
        eprintln!("walkthrough on {}", backend.name());
        walkthrough(&backend);
    }
}

fn walkthrough(backend: &Backend) {
    let dir = tempdir();
    let data = dir.path().join("data");
    let mut server = backend.start(&data, &["--origin", "test.srcos.local/log"]);
    let log_vkey = data.join("log.vkey");
    let admin_key = data.join("admin.key");
    assert_eq!(
        server.banner_value("log verifier key:").unwrap(),
        std::fs::read_to_string(&log_vkey).unwrap().trim()
    );
    assert!(server.banner_value("admin key:").is_some());
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&admin_key).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "admin key must be private");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(data.join("log.key"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "log key must be private");

    // A publisher key, granted by the admin.
    let publisher = dir.path().join("publisher");
    let vkey_line = cli_ok(&[
        "keygen",
        "--name",
        "pipeline.example/smoke",
        "--out",
        publisher.to_str().unwrap(),
    ]);
    assert!(vkey_line.starts_with("pipeline.example/smoke+"));
    let grant_receipt = dir.path().join("grant.json");
    cli_ok(&[
        "grant",
        "--server",
        &server.url,
        "--admin-key",
        admin_key.to_str().unwrap(),
        "--publisher-vkey",
        publisher.with_extension("vkey").to_str().unwrap(),
        "--target-prefix",
        "sourceos://catalog/images/",
        "--channel",
        "dev",
        "--log-vkey",
        log_vkey.to_str().unwrap(),
        "--out",
        grant_receipt.to_str().unwrap(),
    ]);

    // Publish, and check the receipt offline.
    let request = dir.path().join("request.json");
    std::fs::write(
        &request,
        request_json(
            "quay.io/socios/sourceos-smoke-runner",
            1,
            "sourceos://catalog/images/sourceos-smoke-runner",
            "dev",
        ),
    )
    .unwrap();
    let receipt_path = dir.path().join("receipt.json");
    let publish = cli(&[
        "publish",
        "--server",
        &server.url,
        "--key",
        publisher.with_extension("key").to_str().unwrap(),
        "--log-vkey",
        log_vkey.to_str().unwrap(),
        request.to_str().unwrap(),
        "--out",
        receipt_path.to_str().unwrap(),
    ]);
    assert!(
        publish.status.success(),
        "{}",
        String::from_utf8_lossy(&publish.stderr)
    );
    assert!(String::from_utf8_lossy(&publish.stderr).contains("logged publication: entry 2"));
    let verify = cli_ok(&[
        "verify",
        "--log-vkey",
        log_vkey.to_str().unwrap(),
        receipt_path.to_str().unwrap(),
    ]);
    assert!(verify.starts_with("OK: entry 2 "), "{verify}");
    let receipt = Receipt::from_json(&std::fs::read(&receipt_path).unwrap()).unwrap();
    assert_eq!(receipt.log_index, 2);
    assert_eq!(receipt.origin, "test.srcos.local/log");

    // The same request again appends nothing and returns the same entry.
    let again = dir.path().join("again.json");
    let publish = cli(&[
        "publish",
        "--server",
        &server.url,
        "--key",
        publisher.with_extension("key").to_str().unwrap(),
        "--log-vkey",
        log_vkey.to_str().unwrap(),
        request.to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
    ]);
    assert!(publish.status.success());
    assert!(
        String::from_utf8_lossy(&publish.stderr).contains("already logged publication: entry 2")
    );
    let http = Http::new(&server.url);
    let (status, _, body) = http.get("/v1/log");
    assert_eq!(status, 200);
    let info: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(info["treeSize"], 3);
    assert_eq!(info["origin"], "test.srcos.local/log");

    // Tampering is caught, with the reason.
    let mut tampered = receipt.clone();
    tampered.log_index = 1;
    let tampered_path = dir.path().join("tampered.json");
    std::fs::write(&tampered_path, tampered.to_json()).unwrap();
    let out = cli(&[
        "verify",
        "--log-vkey",
        log_vkey.to_str().unwrap(),
        tampered_path.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not verify"));
    let wrong_key = dir.path().join("other");
    cli_ok(&[
        "keygen",
        "--name",
        "test.srcos.local/log",
        "--out",
        wrong_key.to_str().unwrap(),
    ]);
    let out = cli(&[
        "verify",
        "--log-vkey",
        wrong_key.with_extension("vkey").to_str().unwrap(),
        receipt_path.to_str().unwrap(),
    ]);
    assert!(
        !out.status.success(),
        "a receipt must not verify under another key"
    );

    // The C2SP read side.
    let (status, content_type, checkpoint) = http.get("/checkpoint");
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/plain; charset=utf-8");
    let (cp, _) = note::open_checkpoint(&checkpoint, &read_vkey(&log_vkey)).unwrap();
    assert_eq!(cp.size, 3);
    let (status, _, tile) = http.get("/tile/0/000.p/3");
    assert_eq!(status, 200);
    assert_eq!(tile.len(), 96);
    let (status, _, bundle) = http.get("/tile/entries/000.p/3");
    assert_eq!(status, 200);
    let entries = srcos_catalog::tiles::decode_bundle(&bundle).unwrap();
    let hashes: Vec<[u8; 32]> = entries.iter().map(|e| merkle::leaf_hash(e)).collect();
    assert_eq!(
        hashes.concat(),
        tile,
        "entry bundle hashes to the level-0 tile"
    );
    assert_eq!(merkle::root_of_leaf_hashes(&hashes), cp.root);
    let (status, _, entry) = http.get("/v1/entries/2");
    assert_eq!(status, 200);
    assert_eq!(entry, entries[2]);
    let (status, _, body) = http.get(&format!(
        "/v1/proofs/inclusion?leaf_hash={}&tree_size=3",
        receipt.leaf_hash
    ));
    assert_eq!(status, 200);
    let proof: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(proof["leafIndex"], 2);
    assert_eq!(proof["hashes"], serde_json::json!(receipt.inclusion_proof));
    let (status, _, body) = http.get("/v1/proofs/consistency?first=1&second=3");
    assert_eq!(status, 200);
    let proof: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(proof["first"], 1);
    let (status, _, body) = http.get("/v1/receipts/1?tree_size=2");
    assert_eq!(status, 200);
    let old = Receipt::from_json(&body).unwrap();
    old.verify(&read_vkey(&log_vkey)).unwrap();
    assert_eq!(old.tree_size, 2);

    // Graceful stop, restart on the same data: same head, and it keeps appending.
    assert!(server.terminate(), "SIGTERM must exit cleanly");
    let server = backend.start(&data, &[]);
    let http = Http::new(&server.url);
    let (_, _, after) = http.get("/checkpoint");
    assert_eq!(
        after, checkpoint,
        "the restarted log serves the same checkpoint"
    );
    std::fs::write(
        &request,
        request_json(
            "quay.io/socios/sourceos-smoke-runner",
            2,
            "sourceos://catalog/images/sourceos-smoke-runner",
            "dev",
        ),
    )
    .unwrap();
    cli_ok(&[
        "publish",
        "--server",
        &server.url,
        "--key",
        publisher.with_extension("key").to_str().unwrap(),
        "--log-vkey",
        log_vkey.to_str().unwrap(),
        request.to_str().unwrap(),
        "--out",
        receipt_path.to_str().unwrap(),
    ]);
    if backend.is_posix() {
        // fsck reads the data directory; on the cluster, `monitor --audit` is the check
        // (tests/monitor.rs runs it on both backends).
        let fsck = cli_ok(&["fsck", "--data", data.to_str().unwrap()]);
        assert!(fsck.contains("OK: 4 entries"), "{fsck}");
    }
}
