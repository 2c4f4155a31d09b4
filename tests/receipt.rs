//! Receipts: a receipt from a real log verifies offline at every tree size, every kind
//! of tampering is caught with its own error, and the published vector in
//! `log-format/vectors/receipt/` still verifies and is reproduced byte for byte.

mod common;

use std::sync::Arc;

use srcos_catalog::catalog::{sign_envelope, Submission};
use srcos_catalog::keyfile::read_signer;
use srcos_catalog::log::{Log, LogOptions};
use srcos_catalog::merkle::{self, MemoryHashSource};
use srcos_catalog::note::{Checkpoint, KeyType, Signer, TlogProof};
use srcos_catalog::receipt::{Receipt, ReceiptError};

fn submit(rt: &tokio::runtime::Runtime, log: &Log, payload: &[u8], signer: &Signer) -> u64 {
    let envelope = sign_envelope(payload, signer).to_json();
    let submission = Submission::parse(envelope.as_bytes()).unwrap();
    let key = submission.dedup_key();
    let verified = submission.verify(&log.keys()).unwrap();
    rt.block_on(log.submit(verified, key)).unwrap().index
}

fn small_log(dir: &std::path::Path) -> (Arc<Log>, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (log, report) = Log::open(LogOptions::new(dir)).unwrap();
    assert!(report.created);
    let admin = read_signer(&dir.join("admin.key")).unwrap();
    let publisher = Signer::generate("receipts.example/p", KeyType::Ed25519).unwrap();
    let grant = serde_json::json!({
        "apiVersion": "catalog.srcos.ai/v1", "kind": "PublisherGrant",
        "publisherKey": publisher.verifier().to_vkey(), "role": "publisher",
        "targetPrefixes": ["sourceos://catalog/"], "channels": ["dev"],
    });
    submit(&rt, &log, &serde_jcs::to_vec(&grant).unwrap(), &admin);
    for n in 0..20 {
        let request = common::request_json("quay.io/r/s", n, "sourceos://catalog/images/r", "dev");
        let value: serde_json::Value = serde_json::from_str(&request).unwrap();
        submit(&rt, &log, &serde_jcs::to_vec(&value).unwrap(), &publisher);
    }
    (Arc::new(log), rt)
}

#[test]
fn receipts_verify_at_every_size_and_tampering_is_named() {
    let dir = common::tempdir();
    let (log, _rt) = small_log(dir.path());
    let key = log.verifier().clone();
    let size = log.head().checkpoint.size;
    assert_eq!(size, 22);
    for tree_size in 1..=size {
        for index in 0..tree_size {
            let receipt = log.receipt(index, Some(tree_size)).unwrap();
            let verified = receipt.verify(&key).unwrap();
            assert_eq!(verified.index, index);
            assert_eq!(verified.checkpoint.size, tree_size);
        }
    }
    let good = log.receipt(5, None).unwrap();
    let other_key = Signer::generate(log.origin(), KeyType::Ed25519)
        .unwrap()
        .verifier();
    assert!(matches!(
        good.verify(&other_key),
        Err(ReceiptError::Checkpoint(_))
    ));

    let check = |mutate: &dyn Fn(&mut Receipt), expect: &dyn Fn(&ReceiptError) -> bool| {
        let mut r = good.clone();
        mutate(&mut r);
        let err = r
            .verify(&key)
            .expect_err("a tampered receipt must not verify");
        assert!(expect(&err), "unexpected error: {err}");
    };
    check(&|r| r.media_type = "application/json".into(), &|e| {
        matches!(e, ReceiptError::MediaType(_))
    });
    check(&|r| r.origin = "elsewhere".into(), &|e| {
        matches!(e, ReceiptError::Mismatch(_))
    });
    check(&|r| r.tree_size -= 1, &|e| {
        matches!(e, ReceiptError::Mismatch(_))
    });
    check(&|r| r.entry = "***".into(), &|e| {
        matches!(e, ReceiptError::Encoding { field: "entry", .. })
    });
    check(&|r| r.entry = base64_of(b"{}"), &|e| {
        matches!(e, ReceiptError::Mismatch(_))
    });
    check(&|r| r.log_index += 1, &|e| {
        matches!(e, ReceiptError::Proof(_))
    });
    check(&|r| r.inclusion_proof.push(hex::encode([0u8; 32])), &|e| {
        matches!(e, ReceiptError::Proof(_))
    });
    check(
        &|r| {
            r.inclusion_proof.pop();
        },
        &|e| matches!(e, ReceiptError::Proof(_)),
    );
    check(
        &|r| r.inclusion_proof[0] = r.inclusion_proof[0].to_uppercase(),
        &|e| matches!(e, ReceiptError::Encoding { .. }),
    );
    check(&|r| r.inclusion_proof[0] = "ab".repeat(31), &|e| {
        matches!(e, ReceiptError::Encoding { .. })
    });
    check(&|r| r.leaf_hash = hex::encode([1u8; 32]), &|e| {
        matches!(e, ReceiptError::Mismatch(_))
    });
    check(
        &|r| r.checkpoint = r.checkpoint.replace("\n22\n", "\n23\n"),
        &|e| matches!(e, ReceiptError::Checkpoint(_)),
    );
    check(&|r| r.tlog_proof = "garbage".into(), &|e| {
        matches!(e, ReceiptError::TlogProof(_))
    });
    check(
        &|r| r.tlog_proof = r.tlog_proof.replace("index 5\n", "index 6\n"),
        &|e| matches!(e, ReceiptError::TlogProof(_)),
    );
    let older = log.checkpoint_at(21).unwrap();
    check(
        &|r| {
            let mut t = TlogProof::parse(r.tlog_proof.as_bytes()).unwrap();
            t.checkpoint = older.as_ref().clone();
            r.tlog_proof = t.to_text();
        },
        &|e| matches!(e, ReceiptError::TlogProof(_)),
    );
    assert!(Receipt::from_json(br#"{"mediaType":"x","extra":1}"#).is_err());
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A deterministic receipt: fixed key seed, fixed entries. Written once to
/// `log-format/vectors/receipt/`; the test fails if the code would now produce other bytes.
fn vector_receipt() -> (String, Receipt) {
    let signer =
        Signer::from_seed("vectors.srcos.local/log", KeyType::Ed25519, &[7u8; 32]).unwrap();
    let entries: Vec<Vec<u8>> = (0..5)
        .map(|i| format!("{{\"entry\":{i}}}").into_bytes())
        .collect();
    let hashes: Vec<_> = entries.iter().map(|e| merkle::leaf_hash(e)).collect();
    let source = MemoryHashSource::from_leaf_hashes(&hashes);
    let proof = merkle::inclusion_proof(3, 5, &source).unwrap();
    let checkpoint = Checkpoint {
        origin: signer.name().to_string(),
        size: 5,
        root: merkle::root_of_leaf_hashes(&hashes),
        extensions: Vec::new(),
    };
    let signed = checkpoint.sign(&signer).unwrap().to_bytes();
    let receipt = Receipt::new(signer.name(), 3, &entries[3], 5, &proof, &signed);
    (signer.verifier().to_vkey(), receipt)
}

#[test]
fn the_published_receipt_vector_verifies_and_is_reproduced() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("log-format/vectors/receipt");
    let (vkey, receipt) = vector_receipt();
    let json = format!("{}\n", receipt.to_json());
    if std::env::var("SRCOS_WRITE_VECTORS").as_deref() == Ok("1") {
        std::fs::write(dir.join("log.vkey"), format!("{vkey}\n")).unwrap();
        std::fs::write(dir.join("receipt.json"), &json).unwrap();
    }
    let stored_vkey = std::fs::read_to_string(dir.join("log.vkey")).unwrap();
    let stored = std::fs::read_to_string(dir.join("receipt.json")).unwrap();
    assert_eq!(stored_vkey.trim(), vkey);
    assert_eq!(
        stored, json,
        "the receipt format changed; regenerate with SRCOS_WRITE_VECTORS=1 only if intended"
    );
    let key = srcos_catalog::note::Verifier::from_vkey(stored_vkey.trim()).unwrap();
    let verified = Receipt::from_json(stored.as_bytes())
        .unwrap()
        .verify(&key)
        .unwrap();
    assert_eq!(verified.entry, b"{\"entry\":3}");
}
