//! Interop: independent Go code (golang.org/x/mod/sumdb/{note,tlog}, Debian's package in
//! GOPATH mode) checks a live server — note.Open on our checkpoints, tlog.CheckRecord on
//! our inclusion proofs, tlog.CheckTree on consistency proofs between many sizes, and
//! tlog.TileHashReader rebuilding the root from our tiles. See tests/interop/check.go.
//!
//! `.ci/run` installs `golang-go` and `golang-golang-x-mod-dev`. Without Go the test
//! fails, unless SRCOS_SKIP_INTEROP=1 says to skip it on purpose.

mod common;

use std::path::Path;
use std::process::Command;

use common::backend::Backend;
use common::{request_json, tempdir, Http};
use srcos_catalog::catalog::sign_envelope;
use srcos_catalog::keyfile::read_signer;
use srcos_catalog::note::{KeyType, Signer};

const GOPATH: &str = "/usr/share/gocode";

#[test]
fn go_x_mod_verifies_checkpoints_proofs_and_tiles() {
    if std::env::var("SRCOS_SKIP_INTEROP").as_deref() == Ok("1") {
        eprintln!("SRCOS_SKIP_INTEROP=1: skipping the Go interop test");
        return;
    }
    assert!(
        Path::new(GOPATH)
            .join("src/golang.org/x/mod/sumdb/tlog")
            .is_dir()
            && Command::new("go").arg("version").output().is_ok(),
        "the interop test needs `apt-get install golang-go golang-golang-x-mod-dev` (see .ci/run)"
    );
    // The same Go checks on the POSIX data directory and on S3 + PostgreSQL.
    for backend in Backend::all("interop_go") {
        eprintln!("Go interop on {}", backend.name());
        check_with_go(&backend);
    }
}

fn check_with_go(backend: &Backend) {
    let dir = tempdir();
    let data = dir.path().join("data");
    let server = backend.start(&data, &["--origin", "interop.srcos.local/log"]);
    let http = Http::new(&server.url);
    let admin = read_signer(&data.join("admin.key")).unwrap();
    let publisher = Signer::generate("interop.example/publisher", KeyType::Ed25519).unwrap();
    let grant = serde_json::json!({
        "apiVersion": "catalog.srcos.ai/v1", "kind": "PublisherGrant",
        "publisherKey": publisher.verifier().to_vkey(), "role": "publisher",
        "targetPrefixes": ["sourceos://catalog/"], "channels": ["*"],
    });
    let (status, _, body) = http.post(
        "/v1/admin/grants",
        sign_envelope(&serde_jcs::to_vec(&grant).unwrap(), &admin)
            .to_json()
            .into_bytes(),
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    // 300 entries: a full level-0 tile, a partial one, and a level-1 partial tile.
    for n in 0..298u64 {
        let request = request_json(
            "quay.io/interop/subject",
            n,
            "sourceos://catalog/images/x",
            "dev",
        );
        let value: serde_json::Value = serde_json::from_str(&request).unwrap();
        let envelope = sign_envelope(&serde_jcs::to_vec(&value).unwrap(), &publisher);
        let (status, _, body) = http.post("/v1/publications", envelope.to_json().into_bytes());
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    }
    let vkey = std::fs::read_to_string(data.join("log.vkey")).unwrap();
    let gocache = dir.path().join("gocache");
    let out = Command::new("go")
        .args(["run", "tests/interop/check.go", &server.url, vkey.trim()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("GO111MODULE", "off")
        .env("GOPATH", GOPATH)
        .env("GOCACHE", &gocache)
        .env("GOFLAGS", "")
        .output()
        .expect("running go");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "Go interop check failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("interop OK: interop.srcos.local/log size 300"),
        "{stdout}"
    );
}
