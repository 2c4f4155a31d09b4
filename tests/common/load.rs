//! A concurrent publication load against a real server and the checks after a crash,
//! shared by the `kill -9` tests (`crash.rs` on POSIX, `scale_out.rs` on S3 +
//! PostgreSQL): grant a publisher, submit from several tasks keeping every
//! acknowledged receipt, then check that every acknowledged entry is still there, that
//! the current checkpoint is consistent with every checkpoint seen, and that
//! resubmitting returns the existing entries.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use srcos_catalog::catalog::sign_envelope;
use srcos_catalog::http::HttpClient;
use srcos_catalog::merkle;
use srcos_catalog::note::{self, Signer, Verifier};
use srcos_catalog::receipt::Receipt;

use super::request_json;

/// An acknowledged submission: its receipt and the envelope that was posted.
#[derive(Clone)]
pub struct Acked {
    /// The receipt the server answered with.
    pub receipt: Receipt,
    /// The posted envelope (for resubmitting).
    pub envelope: Vec<u8>,
}

/// Grants `publisher` the publisher role on `sourceos://catalog/SCOPE/` in `dev`.
pub fn grant(
    rt: &tokio::runtime::Runtime,
    client: &HttpClient,
    admin: &Signer,
    publisher: &Verifier,
    scope: &str,
) {
    let payload = serde_json::json!({
        "apiVersion": "catalog.srcos.ai/v1", "kind": "PublisherGrant",
        "publisherKey": publisher.to_vkey(), "role": "publisher",
        "targetPrefixes": [format!("sourceos://catalog/{scope}/")], "channels": ["dev"],
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

/// The signed envelope of publication request `n` under `sourceos://catalog/SCOPE/`.
pub fn envelope(publisher: &Signer, scope: &str, n: u64) -> String {
    let request = request_json(
        &format!("quay.io/{scope}/subject"),
        n,
        &format!("sourceos://catalog/{scope}/x"),
        "dev",
    );
    let value: serde_json::Value = serde_json::from_str(&request).unwrap();
    sign_envelope(&serde_jcs::to_vec(&value).unwrap(), publisher).to_json()
}

/// What a load submits.
pub struct Load {
    /// Concurrent submitting tasks.
    pub workers: u64,
    /// The first request number (each worker counts from `base + worker * 1_000_000`).
    pub base: u64,
    /// The grant's scope (see [`grant`]).
    pub scope: &'static str,
    /// Whether a 503 (commits failing, e.g. a fenced or reconnecting sequencer) is
    /// retried after a pause instead of failing the test.
    pub retry_503: bool,
}

/// Submits publication `n` of `publisher` under `scope` through `client`: the status and
/// body, or status 0 and no body when no answer came (a killed or stopped server).
pub fn publish_one(
    rt: &tokio::runtime::Runtime,
    client: &HttpClient,
    publisher: &Signer,
    scope: &str,
    n: u64,
) -> (u16, Vec<u8>) {
    let envelope = envelope(publisher, scope, n);
    match rt.block_on(client.post("/v1/publications", "application/json", envelope.into())) {
        Ok(r) => (r.status.as_u16(), r.body.to_vec()),
        Err(_) => (0, Vec::new()),
    }
}

/// Submits from `load.workers` tasks until `stop` (or the server is gone), keeping every
/// acknowledged receipt in `acked`, each verified against the log key as it arrives.
pub fn run(
    rt: &tokio::runtime::Runtime,
    client: &HttpClient,
    publisher: &Signer,
    log_key: &Verifier,
    load: &Load,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<Acked>>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..load.workers)
        .map(|worker| {
            let (client, acked, stop, log_key) =
                (client.clone(), acked.clone(), stop.clone(), log_key.clone());
            let publisher =
                Signer::from_private_key_string(&publisher.to_private_key_string()).unwrap();
            let (scope, retry_503) = (load.scope, load.retry_503);
            let mut n = load.base + worker * 1_000_000;
            rt.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let envelope = envelope(&publisher, scope, n);
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
                            receipt.verify(&log_key).expect("a live receipt verifies");
                            acked.lock().unwrap().push(Acked {
                                receipt,
                                envelope: envelope.into_bytes(),
                            });
                        }
                        Ok(r) if retry_503 && r.status.as_u16() == 503 => {
                            tokio::time::sleep(Duration::from_millis(20)).await
                        }
                        Ok(r) => panic!(
                            "unexpected {}: {}",
                            r.status,
                            String::from_utf8_lossy(&r.body)
                        ),
                        Err(_) => break, // the server is gone
                    }
                }
            })
        })
        .collect()
}

/// A load started with [`start`].
pub struct Running {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<Acked>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Starts [`run`]'s tasks.
pub fn start(
    rt: &tokio::runtime::Runtime,
    client: &HttpClient,
    publisher: &Signer,
    log_key: &Verifier,
    load: &Load,
) -> Running {
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let tasks = run(
        rt,
        client,
        publisher,
        log_key,
        load,
        stop.clone(),
        acked.clone(),
    );
    Running { stop, acked, tasks }
}

impl Running {
    /// How many were acknowledged so far.
    pub fn acknowledged(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Stops the tasks, waits for them, and returns every acknowledged submission.
    pub fn finish(self, rt: &tokio::runtime::Runtime) -> Vec<Acked> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = rt.block_on(task);
        }
        let acked = self.acked.lock().unwrap().clone();
        acked
    }
}

/// The current checkpoint (verified), every acknowledged entry present with the same
/// bytes and its receipt verifying, and the checkpoint consistent with every checkpoint
/// in `seen` (verified consistency proofs from the server).
pub fn check_recovered(
    rt: &tokio::runtime::Runtime,
    client: &HttpClient,
    log_key: &Verifier,
    acked: &[Acked],
    seen: &[Vec<u8>],
) {
    let r = rt.block_on(client.get("/checkpoint")).unwrap();
    let (current, _) = note::open_checkpoint(&r.body, log_key).unwrap();
    for a in acked {
        a.receipt.verify(log_key).unwrap();
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
        assert_eq!(
            r.body.as_ref(),
            base64_decode(&a.receipt.entry).as_slice(),
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
            assert_eq!(old.root, current.root, "two roots for size {}", old.size);
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

/// Resubmits every `n`th acknowledged request: each is a duplicate (200) answered with
/// the existing entry.
pub fn check_resubmitted(
    rt: &tokio::runtime::Runtime,
    client: &HttpClient,
    acked: &[Acked],
    samples: usize,
) {
    for a in acked.iter().step_by((acked.len() / samples).max(1)) {
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
}

/// The checkpoints the receipts in `acked` carry.
pub fn checkpoints_of(acked: &[Acked]) -> Vec<Vec<u8>> {
    acked
        .iter()
        .map(|a| a.receipt.checkpoint.clone().into_bytes())
        .collect()
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

/// Polls `/checkpoint` for `duration`, every `pause`, appending every checkpoint served.
pub fn watch_checkpoints(
    rt: &tokio::runtime::Runtime,
    client: &HttpClient,
    duration: Duration,
    mut pause: impl FnMut() -> Duration,
    seen: &mut Vec<Vec<u8>>,
) {
    let start = std::time::Instant::now();
    while start.elapsed() < duration {
        if let Ok(r) = rt.block_on(client.get("/checkpoint")) {
            if r.status.as_u16() == 200 {
                seen.push(r.body.to_vec());
            }
        }
        std::thread::sleep(pause());
    }
}
