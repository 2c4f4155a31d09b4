//! Blob uploads are authenticated, bounded and expire (issue 10 §1): an upload needs a
//! signed intent by a key with a publisher grant (or an admin), quotas per key and in
//! total, a disk reserve, and unreferenced blobs expire while referenced ones stay.

mod common;

use common::authority::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use srcos_catalog::catalog::{BlobIntent, BLOB_INTENT_HEADER};
use srcos_catalog::note::{KeyType, Signer};

fn held(a: &Authority) -> usize {
    std::fs::read_dir(a.data.join("blobs/sha256"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn hex_of(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn signed(signer: &Signer, intent: &BlobIntent) -> String {
    intent.sign_header(signer)
}

#[test]
fn anonymous_and_unauthorized_uploads_are_refused() {
    let a = Authority::start(&[]);
    let bytes = b"evidence bytes".to_vec();
    let hex = hex_of(&bytes);
    // No intent at all: the vulnerability this closes.
    let (status, body) = a.put_blob_with(&hex, &bytes, &[]);
    assert_eq!(status, 401, "{body}");
    assert_eq!(held(&a), 0);

    let publisher = a.key("pipeline.example/smoke");
    let reviewer = a.key("carol");
    let stranger = Signer::generate("stranger", KeyType::Ed25519).unwrap();
    a.grant(&publisher.signer, "publisher", &["dev"]);
    a.grant(&reviewer.signer, "reviewer", &["*"]);
    let origin = a.origin();
    let now = srcos_catalog::log::now_ms();
    let nonce = "0123456789abcdef0123456789abcdef";
    let good = BlobIntent::new(&origin, &hex, bytes.len() as u64, now, nonce);
    let cases: Vec<(&str, String, u16)> = vec![
        ("garbage header", "%%%".into(), 400),
        ("unknown key", signed(&stranger, &good), 401),
        ("reviewer only", signed(&reviewer.signer, &good), 403),
        (
            "another log",
            signed(
                &publisher.signer,
                &BlobIntent::new("other.example/log", &hex, 14, now, nonce),
            ),
            401,
        ),
        (
            "another blob",
            signed(
                &publisher.signer,
                &BlobIntent::new(&origin, &hex_of(b"x"), 14, now, nonce),
            ),
            401,
        ),
        (
            "another size",
            signed(
                &publisher.signer,
                &BlobIntent::new(&origin, &hex, 15, now, nonce),
            ),
            401,
        ),
        (
            "expired",
            signed(
                &publisher.signer,
                &BlobIntent::new(&origin, &hex, 14, now - 3_600_000, nonce),
            ),
            401,
        ),
    ];
    for (what, intent, want) in &cases {
        let (status, body) = a.put_blob_with(&hex, &bytes, &[(BLOB_INTENT_HEADER, intent)]);
        assert_eq!(status, *want, "{what}: {body}");
    }
    assert_eq!(held(&a), 0, "nothing refused was stored");
    let (status, body) = a.put_blob_as(&publisher.signer, &hex, &bytes);
    assert_eq!(status, 201, "{body}");

    // A revoked publisher can no longer upload.
    let (status, body) = a.send(
        "/v1/admin/revocations",
        &a.admin,
        &json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "PublisherRevoke",
            "key": publisher.signer.verifier().to_vkey(), "reason": "left"}),
    );
    assert_eq!(status, 201, "{body}");
    let other = b"more evidence".to_vec();
    let (status, body) = a.put_blob_as(&publisher.signer, &hex_of(&other), &other);
    assert_eq!(status, 403, "{body}");
}

#[test]
fn quotas_per_key_and_in_total() {
    let a = Authority::start(&[
        "--blob-key-quota-bytes",
        "100",
        "--blob-total-quota-bytes",
        "150",
    ]);
    let p1 = a.key("p1");
    let p2 = a.key("p2");
    a.grant(&p1.signer, "publisher", &["dev"]);
    a.grant(&p2.signer, "publisher", &["dev"]);
    let blob = |c: u8| vec![c; 60];
    let put = |k: &Signer, b: &[u8]| a.put_blob_as(k, &hex_of(b), b);
    assert_eq!(put(&p1.signer, &blob(b'a')).0, 201);
    let (status, body) = put(&p1.signer, &blob(b'b'));
    assert_eq!(status, 429, "p1 would hold 120 > 100: {body}");
    assert!(body["detail"].as_str().unwrap().contains("quota"), "{body}");
    assert_eq!(
        put(&p1.signer, &blob(b'a')).0,
        200,
        "a held blob costs nothing"
    );
    assert_eq!(put(&p2.signer, &blob(b'c')).0, 201);
    let (status, body) = put(&a.admin, &blob(b'd'));
    assert_eq!(status, 507, "the store would hold 180 > 150: {body}");
}

#[test]
fn uploads_stop_before_the_disk_reserve() {
    // A reserve larger than any free space: every upload is refused, none is stored.
    let a = Authority::start(&["--blob-reserve-bytes", "18446744073709551615"]);
    let (status, body) = a.upload(b"{}");
    assert_eq!(status, 507, "{body:?}");
    assert_eq!(held(&a), 0);
    // The log still takes writes.
    let publisher = a.key("p");
    a.grant(&publisher.signer, "publisher", &["dev"]);
}

#[test]
fn unreferenced_blobs_expire_and_referenced_ones_stay() {
    let a = Authority::start(&["--blob-ttl-secs", "2", "--blob-sweep-secs", "1"]);
    let publisher = a.key("pipeline.example/smoke");
    a.grant(&publisher.signer, "publisher", &["dev"]);
    let hex = subject_hex("expiry");
    let files: Vec<_> = release_evidence(&hex).into_iter().take(4).collect();
    let items: Vec<Value> = files.iter().map(|(t, m, b)| item(t, m, b)).collect();
    for (_, _, b) in &files {
        assert_eq!(a.upload(b).0, 201);
    }
    let (status, body) = a.publish(
        &publisher.signer,
        &request("quay.io/t/expiry", &hex, "dev", items, no_refs()),
    );
    assert_eq!(status, 201, "{body}");
    let (status, orphan) = a.upload(b"nobody names this blob");
    assert_eq!(status, 201);
    let gone = |hex: &str| a.http.get(&format!("/v1/blobs/sha256:{hex}")).0 == 404;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !gone(&orphan) {
        assert!(
            std::time::Instant::now() < deadline,
            "the unreferenced blob never expired"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    for (_, _, b) in &files {
        assert!(!gone(&hex_of(b)), "a referenced blob expired");
    }
}
