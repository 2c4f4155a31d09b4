//! A split view, as a compromised authority could present it: two servers share one log
//! key and the same first entries, then diverge. A real witness and a real monitor are
//! shown both views:
//! - the witness cosigns one view and refuses the other (409, 400 and 422 where each
//!   applies), so the second view's receipts carry no cosignature;
//! - `verify --quorum 1` rejects those receipts, although the log key alone accepts them;
//! - the monitor alerts with both signed checkpoints as proof.

mod common;
mod watchers;

use std::time::Duration;

use common::{tempdir, Http};
use srcos_catalog::keyfile::read_verifier;
use srcos_catalog::note::{AddCheckpoint, Checkpoint, Note};
use srcos_catalog::receipt::Receipt;
use srcos_catalog::witness::state::origin_hash;
use watchers::{
    checkpoint, copy_dir, cosigners, monitor_once, new_log, origin, publish_ok, start_witness,
    start_witnessed_log, verify_receipt, wait_until, witness_key, SUBJECT,
};

const OTHER: &str = "quay.io/other/thing";

fn parse(note: &[u8]) -> (Checkpoint, Note) {
    let note = Note::parse(note).unwrap();
    (Checkpoint::parse(note.text()).unwrap(), note)
}

#[test]
fn a_split_view_is_refused_by_the_witness_rejected_by_verify_and_caught_by_the_monitor() {
    let dir = tempdir();
    let a = dir.path().join("a");
    let publisher = new_log(&a, 3);
    let b = dir.path().join("b");
    copy_dir(&a, &b);
    let log_vkey = a.join("log.vkey");
    let log_key = read_verifier(&log_vkey).unwrap();
    let origin = origin(&a);

    let w = witness_key(dir.path(), "w");
    let w_vkey = w.with_extension("vkey");
    let witness_key = read_verifier(&w_vkey).unwrap();
    let quorum = ["--witness-vkey", w_vkey.to_str().unwrap(), "--quorum", "1"];
    let witness = start_witness(&w, &[(&origin, &log_vkey)], &dir.path().join("w-state"));
    let witnessing = [(witness.url.as_str(), w.as_path())];

    // View A: the witness cosigns it as it grows.
    let server_a = start_witnessed_log(&a, &witnessing, &[]);
    let mut receipt_a = Vec::new();
    for n in 10..13 {
        receipt_a = publish_ok(&server_a.url, &publisher, SUBJECT, n);
    }
    let (ok, text) = verify_receipt(&receipt_a, dir.path(), &log_vkey, &quorum);
    assert!(ok, "view A is cosigned: {text}");
    let checkpoint_a = checkpoint(&server_a.url);
    let (cp_a, _) = parse(&checkpoint_a);
    assert_eq!(cp_a.size, 8);
    assert_eq!(
        cosigners(&checkpoint_a, &log_key, std::slice::from_ref(&witness_key)),
        1
    );

    // View B: the same key and first 5 entries, then other entries, up to size 9.
    let server_b = start_witnessed_log(&b, &witnessing, &[]);
    let mut receipt_b = Vec::new();
    for n in 10..14 {
        receipt_b = publish_ok(&server_b.url, &publisher, OTHER, n);
    }
    wait_until(
        Duration::from_secs(20),
        "view B's head to be served",
        || parse(&checkpoint(&server_b.url)).0.size == 9,
    );
    let checkpoint_b = checkpoint(&server_b.url);
    assert_eq!(
        cosigners(&checkpoint_b, &log_key, std::slice::from_ref(&witness_key)),
        0,
        "the witness must not cosign view B"
    );

    // The witness refuses view B whatever the client claims: 409 with the size it
    // cosigned, 400 for a checkpoint smaller than that, 422 for B's own proof.
    let http = Http::new(&witness.url);
    let b_at = |size: u64| {
        let (status, _, body) =
            Http::new(&server_b.url).get(&format!("/v1/receipts/0?tree_size={size}"));
        assert_eq!(status, 200);
        Receipt::from_json(&body).unwrap().checkpoint.into_bytes()
    };
    let request = |old: u64, proof: Vec<[u8; 32]>, note: Vec<u8>| {
        AddCheckpoint {
            old_size: old,
            proof,
            checkpoint: note,
        }
        .to_bytes()
    };
    let (status, _, body) = http.post("/add-checkpoint", request(0, Vec::new(), b_at(9)));
    assert_eq!((status, body.as_slice()), (409, b"8\n".as_slice()));
    let (status, _, _) = http.post("/add-checkpoint", request(8, Vec::new(), b_at(7)));
    assert_eq!(status, 400);
    let (status, _, body) = Http::new(&server_b.url).get("/v1/proofs/consistency?first=8&second=9");
    assert_eq!(status, 200);
    let proof: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let proof: Vec<[u8; 32]> = proof["hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            hex::decode(h.as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap()
        })
        .collect();
    let (status, _, _) = http.post("/add-checkpoint", request(8, proof, b_at(9)));
    assert_eq!(status, 422);
    let (status, _, _) = http.post("/add-checkpoint", request(8, Vec::new(), b_at(8)));
    assert_eq!(status, 422, "same size, other root");
    // What the witness vouches for is view A.
    let (status, _, latest) = http.get(&format!("/{}/checkpoint", origin_hash(&origin)));
    assert_eq!(status, 200);
    assert_eq!(parse(&latest).0, cp_a);

    // The log key alone accepts B's receipt; a witness quorum rejects it.
    let (ok, text) = verify_receipt(&receipt_b, dir.path(), &log_vkey, &[]);
    assert!(ok, "{text}");
    let (ok, text) = verify_receipt(&receipt_b, dir.path(), &log_vkey, &quorum);
    assert!(!ok);
    assert!(
        text.contains("from 0 distinct known witnesses, 1 required"),
        "{text}"
    );

    // A monitor that has seen one view alerts on the other, with both checkpoints.
    let state = dir.path().join("monitor-a.json");
    let (code, out) = monitor_once(&server_a.url, &a, &state, &[]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = monitor_once(&server_b.url, &b, &state, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("ALERT fork:"), "{out}");
    let note_a = String::from_utf8(checkpoint_a).unwrap();
    let note_b = String::from_utf8(checkpoint_b).unwrap();
    assert!(out.contains(&note_a) && out.contains(&note_b), "{out}");
    // And the other way round.
    let state = dir.path().join("monitor-b.json");
    assert_eq!(monitor_once(&server_b.url, &b, &state, &[]).0, 0);
    let (code, out) = monitor_once(&server_a.url, &a, &state, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("ALERT rollback:"), "{out}");
    assert!(out.contains(&note_a) && out.contains(&note_b), "{out}");
}
