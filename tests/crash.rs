//! Crash safety: `kill -9` a real server in the middle of a load, several times, at
//! random moments. After each restart, every acknowledged entry must still be there
//! with the same bytes, the new checkpoint must be consistent with every checkpoint
//! seen before the crash, and resubmitting an acknowledged request must return the
//! existing entry instead of appending a new one.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{request_json, tempdir, Server};
use srcos_catalog::catalog::sign_envelope;
use srcos_catalog::http::HttpClient;
use srcos_catalog::keyfile::{read_signer, read_verifier};
use srcos_catalog::merkle;
use srcos_catalog::note::{self, KeyType, Signer, Verifier};
use srcos_catalog::receipt::Receipt;

#[derive(Clone)]
struct Acked {
    receipt: Receipt,
    envelope: Vec<u8>,
}

fn grant(rt: &tokio::runtime::Runtime, client: &HttpClient, admin: &Signer, publisher: &Verifier) {
    let payload = serde_json::json!({
        "apiVersion": "catalog.srcos.ai/v1", "kind": "PublisherGrant",
        "publisherKey": publisher.to_vkey(), "role": "publisher",
        "targetPrefixes": ["sourceos://catalog/crash/"], "channels": ["dev"],
    });
    let envelope = sign_envelope(&serde_jcs::to_vec(&payload).unwrap(), admin);
    let r = rt
        .block_on(client.post(
            "/v1/admin/grants",
            "application/json",
            envelope.to_json().into(),
        ))
        .unwrap();
    assert_eq!(
        r.status.as_u16(),
        201,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

#[test]
fn acknowledged_entries_survive_kill_9_at_random_moments() {
    let mut rng = common::Rng::from_clock("crash test");
    let dir = tempdir();
    let data = dir.path().join("data");
    let rt = common::multi_thread_runtime();
    let publisher = Signer::generate("crash.example/publisher", KeyType::Ed25519).unwrap();
    let mut acked: Vec<Acked> = Vec::new();
    let mut seen_checkpoints: Vec<Vec<u8>> = Vec::new();
    let mut counter = 0u64;
    let rounds = 5;

    for round in 0..rounds {
        let server = Server::start(&data, &["--batch-max", "64"]);
        let log_key = read_verifier(&data.join("log.vkey")).unwrap();
        let client = HttpClient::new(&server.url).unwrap();
        if round == 0 {
            let admin = read_signer(&data.join("admin.key")).unwrap();
            grant(&rt, &client, &admin, &publisher.verifier());
        }
        check_recovered(&rt, &client, &log_key, &acked, &seen_checkpoints);
        fsck_ok(&data);

        // Load: 8 concurrent submitters until the kill.
        let round_acked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut tasks = Vec::new();
        for worker in 0..8u64 {
            let client = client.clone();
            let publisher_key = publisher.to_private_key_string();
            let round_acked = round_acked.clone();
            let stop = stop.clone();
            let log_key = log_key.clone();
            let base = counter + worker * 1_000_000;
            tasks.push(rt.spawn(async move {
                let publisher = Signer::from_private_key_string(&publisher_key).unwrap();
                let mut n = base;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    n += 1;
                    let request = request_json(
                        "quay.io/crash/subject",
                        n,
                        "sourceos://catalog/crash/x",
                        "dev",
                    );
                    let value: serde_json::Value = serde_json::from_str(&request).unwrap();
                    let envelope =
                        sign_envelope(&serde_jcs::to_vec(&value).unwrap(), &publisher).to_json();
                    match client
                        .post(
                            "/v1/publications",
                            "application/json",
                            envelope.clone().into(),
                        )
                        .await
                    {
                        Ok(r) if r.status.as_u16() == 201 => {
                            let receipt = Receipt::from_json(&r.body).unwrap();
                            receipt
                                .verify(&log_key)
                                .expect("a receipt from the live server verifies");
                            round_acked.lock().unwrap().push(Acked {
                                receipt,
                                envelope: envelope.into_bytes(),
                            });
                        }
                        Ok(r) => panic!(
                            "unexpected {}: {}",
                            r.status,
                            String::from_utf8_lossy(&r.body)
                        ),
                        Err(_) => break, // the server is gone
                    }
                }
            }));
        }
        counter += 10_000_000;
        // Watch checkpoints while the load runs, then kill at a random moment.
        let kill_after = Duration::from_millis(100 + rng.next() % 900);
        let start = Instant::now();
        while start.elapsed() < kill_after {
            if let Ok(r) = rt.block_on(client.get("/checkpoint")) {
                if r.status.as_u16() == 200 {
                    seen_checkpoints.push(r.body.to_vec());
                }
            }
            std::thread::sleep(Duration::from_millis(10 + rng.next() % 40));
        }
        let mut server = server;
        server.kill9();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for task in tasks {
            let _ = rt.block_on(task);
        }
        let mut round_acked = round_acked.lock().unwrap().clone();
        eprintln!(
            "round {round}: {} acknowledged before kill -9 after {kill_after:?}",
            round_acked.len()
        );
        for a in &round_acked {
            seen_checkpoints.push(a.receipt.checkpoint.clone().into_bytes());
        }
        acked.append(&mut round_acked);
    }

    let server = Server::start(&data, &[]);
    let log_key = read_verifier(&data.join("log.vkey")).unwrap();
    let client = HttpClient::new(&server.url).unwrap();
    check_recovered(&rt, &client, &log_key, &acked, &seen_checkpoints);
    assert!(
        acked.len() > 20,
        "the load should have acknowledged entries, got {}",
        acked.len()
    );
    // Resubmitting acknowledged requests returns the existing entries.
    for a in acked.iter().step_by((acked.len() / 20).max(1)) {
        let r = rt
            .block_on(client.post(
                "/v1/publications",
                "application/json",
                a.envelope.clone().into(),
            ))
            .unwrap();
        assert_eq!(
            r.status.as_u16(),
            200,
            "a resubmitted request is a duplicate"
        );
        let receipt = Receipt::from_json(&r.body).unwrap();
        assert_eq!(receipt.log_index, a.receipt.log_index);
        assert_eq!(receipt.entry, a.receipt.entry);
    }
    fsck_ok(&data);
}

/// Every acknowledged entry is present with the same bytes, and the current checkpoint
/// is consistent with every checkpoint observed so far.
fn check_recovered(
    rt: &tokio::runtime::Runtime,
    client: &HttpClient,
    log_key: &Verifier,
    acked: &[Acked],
    seen: &[Vec<u8>],
) {
    let r = rt.block_on(client.get("/checkpoint")).unwrap();
    let (current, _) = note::open_checkpoint(&r.body, log_key).unwrap();
    for a in acked {
        assert!(
            a.receipt.log_index < current.size,
            "acknowledged entry {} lost (size {})",
            a.receipt.log_index,
            current.size
        );
        let r = rt
            .block_on(client.get(&format!("/v1/entries/{}", a.receipt.log_index)))
            .unwrap();
        assert_eq!(r.status.as_u16(), 200);
        let entry = base64_decode(&a.receipt.entry);
        assert_eq!(
            r.body.as_ref(),
            entry.as_slice(),
            "entry {} changed",
            a.receipt.log_index
        );
    }
    for old in seen {
        let (old, _) = note::open_checkpoint(old, log_key).unwrap();
        assert!(
            old.size <= current.size,
            "rollback: saw size {} before, now {}",
            old.size,
            current.size
        );
        if old.size == current.size {
            assert_eq!(
                old.root, current.root,
                "two different roots for size {}",
                old.size
            );
            continue;
        }
        let r = rt
            .block_on(client.get(&format!(
                "/v1/proofs/consistency?first={}&second={}",
                old.size, current.size
            )))
            .unwrap();
        assert_eq!(r.status.as_u16(), 200);
        let proof: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let hashes: Vec<Vec<u8>> = proof["hashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| hex::decode(h.as_str().unwrap()).unwrap())
            .collect();
        merkle::verify_consistency(old.size, current.size, &old.root, &current.root, &hashes)
            .unwrap_or_else(|e| {
                panic!(
                    "checkpoint {} is not consistent with {}: {e}",
                    old.size, current.size
                )
            });
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn fsck_ok(data: &std::path::Path) {
    let report = srcos_catalog::log::fsck::fsck(data).unwrap();
    assert!(report.problems.is_empty(), "fsck: {:?}", report.problems);
}
