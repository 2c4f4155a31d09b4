//! Issue 10 §3 inside one batch: a request resent while its earlier leaf is still in the
//! sequencer's batch (or still being committed) is answered as a duplicate only while
//! that leaf has the same effect, exactly as for a leaf already in the index.

mod common;

use std::time::Duration;

use serde_json::{json, Value};
use srcos_catalog::catalog::{format_rfc3339_ms, sign_envelope, Refusal, Submission};
use srcos_catalog::keyfile::read_signer;
use srcos_catalog::log::{now_ms, Log, LogOptions, SubmitError};
use srcos_catalog::note::Signer;
use srcos_catalog::storage::memory::MemoryLog;
use srcos_catalog::storage::Backends;

fn policy(dev_approvals: u32, issued_at: u64, nonce: u8) -> Value {
    json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "PolicySet",
        "channels": {"dev": {"requiredEvidence": [], "approvals": dev_approvals,
                             "requiresHumanReview": dev_approvals > 0}},
        "issuedAt": format_rfc3339_ms(issued_at).unwrap(), "nonce": format!("{nonce:032x}")})
}

/// Submits a request (signs, parses, verifies, queues it) and returns its leaf index.
async fn submit(log: &Log, payload: &Value, signer: &Signer) -> Result<u64, SubmitError> {
    let envelope = sign_envelope(&serde_jcs::to_vec(payload).unwrap(), signer).to_json();
    let submission = Submission::parse(envelope.as_bytes()).unwrap();
    let key = submission.dedup_key();
    let verified = submission.verify(&log.keys()).unwrap();
    log.submit(verified, key).await.map(|s| s.index)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A new in-memory log whose batches wait 300 ms, so that requests sent together are
/// sequenced in one batch; its directory (the keys) and its admin key.
fn open_slow_batches() -> (tempfile::TempDir, Log, Signer) {
    let dir = common::tempdir();
    let mut options = LogOptions::new(dir.path());
    options.batch_delay = Duration::from_millis(300);
    let (log, _) = Log::open_with(Backends::memory(&MemoryLog::new()), options).unwrap();
    let admin = read_signer(&dir.path().join("admin.key")).unwrap();
    (dir, log, admin)
}

#[test]
fn strict_loose_strict_in_one_batch_refuses_the_resent_strict() {
    let (_dir, log, admin) = open_slow_batches();
    let now = now_ms();
    let strict = policy(1, now - 2, 1);
    let loose = policy(0, now - 1, 2);
    // Polled in order on one thread: queued in this order, within one batch's wait.
    let (a, b, c) = runtime().block_on(async {
        tokio::join!(
            submit(&log, &strict, &admin),
            submit(&log, &loose, &admin),
            submit(&log, &strict, &admin)
        )
    });
    let results = [a, b, c];
    let strict_leaf = *results[0].as_ref().expect("strict accepted");
    let loose_leaf = *results[1].as_ref().expect("loose accepted");
    assert_eq!(loose_leaf, strict_leaf + 1, "one batch, in order");
    match &results[2] {
        Err(SubmitError::Refused(Refusal::Conflict(m))) => {
            assert!(m.contains(&format!("leaf {loose_leaf}")), "{m}")
        }
        other => panic!("the resent strict policy was answered {other:?} while loose is in force"),
    }
    let in_force = log.read_catalog(|catalog, _| catalog.current_policy().1);
    assert_eq!(in_force, loose_leaf);
}

#[test]
fn a_resent_request_in_the_same_batch_is_still_a_duplicate_while_in_force() {
    let (_dir, log, admin) = open_slow_batches();
    let strict = policy(1, now_ms() - 1, 1);
    let (a, b) = runtime().block_on(async {
        tokio::join!(submit(&log, &strict, &admin), submit(&log, &strict, &admin))
    });
    let results = [a, b];
    let first = *results[0].as_ref().unwrap();
    assert_eq!(*results[1].as_ref().expect("a true duplicate"), first);
    assert_eq!(log.head().checkpoint.size, first + 1, "appended once");
}
