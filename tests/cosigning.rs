//! The log collecting cosignatures from real witness processes: `/checkpoint` and
//! receipts carry them, `verify --quorum` counts them, a restarted log collects them
//! again, a dead or hung witness never stalls sequencing, and the two below-quorum
//! modes behave as documented (fail-open serves, hold-back waits then answers 503).

mod common;
mod watchers;

use std::time::{Duration, Instant};

use common::{tempdir, Http, Server};
use srcos_catalog::keyfile::read_verifier;
use srcos_catalog::note::{Note, Verifier};
use srcos_catalog::receipt::Receipt;
use watchers::{
    checkpoint, cosigners, new_log, origin, publish, publish_ok, start_witness,
    start_witnessed_log, tree_size, verify_receipt, wait_until, witness_key, BlackHole, SUBJECT,
};

fn vkey(prefix: &std::path::Path) -> Verifier {
    read_verifier(&prefix.with_extension("vkey")).unwrap()
}

#[test]
fn checkpoints_and_receipts_carry_the_cosignatures_of_the_quorum() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let publisher = new_log(&data, 2);
    let log_vkey = data.join("log.vkey");
    let log_key = read_verifier(&log_vkey).unwrap();
    let origin = origin(&data);
    let (w1, w2) = (witness_key(dir.path(), "w1"), witness_key(dir.path(), "w2"));
    let witness1 = start_witness(&w1, &[(&origin, &log_vkey)], &dir.path().join("s1"));
    let witness2 = start_witness(&w2, &[(&origin, &log_vkey)], &dir.path().join("s2"));
    let witnesses = [vkey(&w1), vkey(&w2)];
    let witnessing = [(witness1.url.as_str(), w1.as_path()), (&witness2.url, &w2)];
    let mut server = start_witnessed_log(&data, &witnessing, &["--witness-quorum", "2"]);
    assert!(server
        .banner
        .iter()
        .any(|l| l == "witness quorum: 2 of 2, below quorum: fail-open"));

    // The receipt of a new publication is cosigned by both; its tlog-proof carries the
    // same cosigned checkpoint (Receipt::verify checks they are byte-identical).
    let receipt = publish_ok(&server.url, &publisher, SUBJECT, 10);
    let parsed = Receipt::from_json(&receipt).unwrap();
    parsed.verify(&log_key).unwrap();
    assert_eq!(
        cosigners(parsed.checkpoint.as_bytes(), &log_key, &witnesses),
        2
    );
    assert!(parsed.tlog_proof.ends_with(&parsed.checkpoint));
    let w1_path = w1.with_extension("vkey");
    let w2_path = w2.with_extension("vkey");
    let (ok, text) = verify_receipt(
        &receipt,
        dir.path(),
        &log_vkey,
        &[
            "--witness-vkey",
            w1_path.to_str().unwrap(),
            "--witness-vkey",
            w2_path.to_str().unwrap(),
            "--quorum",
            "2",
        ],
    );
    assert!(ok, "{text}");
    assert!(
        text.contains("witnesses: 2 of 2 known cosigned (quorum 2)"),
        "{text}"
    );

    // /checkpoint and GET /v1/receipts/<i> serve the cosigned checkpoint too.
    assert_eq!(cosigners(&checkpoint(&server.url), &log_key, &witnesses), 2);
    let (status, _, fetched) =
        Http::new(&server.url).get(&format!("/v1/receipts/{}", parsed.log_index));
    assert_eq!(status, 200);
    let fetched = Receipt::from_json(&fetched).unwrap();
    assert_eq!(
        cosigners(fetched.checkpoint.as_bytes(), &log_key, &witnesses),
        2
    );

    // A restarted log learns each witness's size from a 409 and is cosigned again.
    server.kill9();
    let server = start_witnessed_log(&data, &witnessing, &["--witness-quorum", "2"]);
    wait_until(
        Duration::from_secs(20),
        "cosignatures after a restart",
        || cosigners(&checkpoint(&server.url), &log_key, &witnesses) == 2,
    );
    let receipt = publish_ok(&server.url, &publisher, SUBJECT, 11);
    let parsed = Receipt::from_json(&receipt).unwrap();
    assert_eq!(
        cosigners(parsed.checkpoint.as_bytes(), &log_key, &witnesses),
        2
    );
}

#[test]
fn a_dead_or_hung_witness_never_stalls_sequencing() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let publisher = new_log(&data, 1);
    let log_vkey = data.join("log.vkey");
    let log_key = read_verifier(&log_vkey).unwrap();
    let w1 = witness_key(dir.path(), "w1");
    let hung_key = witness_key(dir.path(), "hung");
    let witness = start_witness(&w1, &[(&origin(&data), &log_vkey)], &dir.path().join("s1"));
    let hung = BlackHole::new();
    // Quorum 1 of {live, hung}, with a witness timeout far above the time we allow.
    let witnessing = [(hung.url.as_str(), hung_key.as_path()), (&witness.url, &w1)];
    let server = start_witnessed_log(&data, &witnessing, &["--witness-timeout-ms", "30000"]);
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for n in 0..20 {
        let t = Instant::now();
        let receipt = publish_ok(&server.url, &publisher, SUBJECT, 100 + n);
        slowest = slowest.max(t.elapsed());
        let parsed = Receipt::from_json(&receipt).unwrap();
        // The live witness alone meets the quorum, so receipts are still cosigned.
        assert_eq!(
            cosigners(
                parsed.checkpoint.as_bytes(),
                &log_key,
                &[vkey(&w1), vkey(&hung_key)]
            ),
            1
        );
    }
    eprintln!(
        "20 publications with a hung witness: {:?} in all, slowest {slowest:?}",
        started.elapsed()
    );
    assert!(
        slowest < Duration::from_secs(5),
        "slowest publication took {slowest:?}"
    );
}

#[test]
fn fail_open_serves_uncosigned_checkpoints_when_no_witness_answers() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let publisher = new_log(&data, 1);
    let log_vkey = data.join("log.vkey");
    let hung_key = witness_key(dir.path(), "hung");
    let hung = BlackHole::new();
    let witnessing = [(hung.url.as_str(), hung_key.as_path())];
    let server = start_witnessed_log(&data, &witnessing, &["--witness-timeout-ms", "1500"]);
    // The first head waits at most one witness timeout; once the witness is known to be
    // down, receipts do not wait for it at all.
    let t = Instant::now();
    let receipt = publish_ok(&server.url, &publisher, SUBJECT, 1);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let t = Instant::now();
    for n in 2..12 {
        publish_ok(&server.url, &publisher, SUBJECT, n);
    }
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "10 publications took {:?}",
        t.elapsed()
    );
    assert_eq!(tree_size(&server.url), 14);
    // Such a receipt verifies with the log key, and fails a witness quorum.
    let hung_vkey = hung_key.with_extension("vkey");
    assert!(verify_receipt(&receipt, dir.path(), &log_vkey, &[]).0);
    let (ok, text) = verify_receipt(
        &receipt,
        dir.path(),
        &log_vkey,
        &[
            "--witness-vkey",
            hung_vkey.to_str().unwrap(),
            "--quorum",
            "1",
        ],
    );
    assert!(!ok);
    assert!(
        text.contains("from 0 distinct known witnesses, 1 required"),
        "{text}"
    );
}

#[test]
fn hold_back_waits_for_the_quorum_and_resumes_when_the_witness_returns() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let publisher = new_log(&data, 1);
    let log_vkey = data.join("log.vkey");
    let log_key = read_verifier(&log_vkey).unwrap();
    let origin = origin(&data);
    let w1 = witness_key(dir.path(), "w1");
    let state = dir.path().join("s1");
    let mut witness = start_witness(&w1, &[(&origin, &log_vkey)], &state);
    let mode = ["--below-quorum", "hold-back", "--hold-back-wait-ms", "1500"];
    let server = start_witnessed_log(&data, &[(&witness.url, &w1)], &mode);
    let receipt = publish_ok(&server.url, &publisher, SUBJECT, 1);
    let parsed = Receipt::from_json(&receipt).unwrap();
    assert_eq!(
        cosigners(parsed.checkpoint.as_bytes(), &log_key, &[vkey(&w1)]),
        1
    );
    let witnessed_size = parsed.tree_size;

    // The witness dies. A new publication is sequenced at once (the tree grows while the
    // request still waits), but gets no receipt: 503 with the reason, after the wait.
    let witness_url = witness.url.clone();
    witness.kill9();
    let url = server.url.clone();
    let pending = std::thread::spawn({
        let publisher = publisher.clone();
        move || {
            let t = Instant::now();
            let answer = publish(&url, &publisher, SUBJECT, 2);
            (answer, t.elapsed())
        }
    });
    wait_until(Duration::from_secs(1), "the entry to be sequenced", || {
        tree_size(&server.url) == witnessed_size + 1
    });
    let ((status, body), waited) = pending.join().unwrap();
    let body = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("below-witness-quorum") && body.contains("reached the quorum"),
        "{body}"
    );
    assert!(waited >= Duration::from_millis(1400), "{waited:?}");
    // /checkpoint still serves the last quorum checkpoint, not the newer head.
    let served = checkpoint(&server.url);
    let note = Note::parse(&served).unwrap();
    assert!(note.text().contains(&format!("\n{witnessed_size}\n")));

    // The witness comes back on the same address and state: the log catches up and the
    // entry's receipt is served, cosigned.
    let port = witness_url.rsplit(':').next().unwrap().to_string();
    let listen = format!("127.0.0.1:{port}");
    let args = vec![
        "witness".to_string(),
        "--listen".into(),
        listen,
        "--key".into(),
        w1.with_extension("key").display().to_string(),
        "--state".into(),
        state.display().to_string(),
        "--log".into(),
        format!("{origin}={}", log_vkey.display()),
    ];
    let _witness = Server::spawn(&args, &state);
    let index = witnessed_size;
    let mut receipt = Vec::new();
    wait_until(
        Duration::from_secs(20),
        "a quorum receipt for the entry",
        || {
            let (status, _, body) = Http::new(&server.url).get(&format!("/v1/receipts/{index}"));
            receipt = body;
            status == 200
        },
    );
    let w1_vkey = w1.with_extension("vkey");
    let (ok, text) = verify_receipt(
        &receipt,
        dir.path(),
        &log_vkey,
        &["--witness-vkey", w1_vkey.to_str().unwrap(), "--quorum", "1"],
    );
    assert!(ok, "{text}");
}
