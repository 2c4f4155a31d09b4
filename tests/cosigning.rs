//! The log collecting cosignatures from real witness processes: `/checkpoint` and
//! receipts carry them, `verify --quorum` counts them, a restarted log collects them
//! again, a dead or hung witness never stalls sequencing, and the two below-quorum
//! modes behave as documented (fail-open serves, hold-back waits then answers 503).

mod common;
mod watchers;

use std::time::{Duration, Instant};

use common::backend::Backend;
use common::{tempdir, Http, Server};
use srcos_catalog::keyfile::read_verifier;
use srcos_catalog::note::{Note, Verifier};
use srcos_catalog::receipt::Receipt;
use watchers::{
    checkpoint, cosigners, publish, publish_ok, start_witness, start_witnessed_log,
    start_witnessed_log_on, stopped_log, stopped_log_on, tree_size, verify_receipt, wait_until,
    witness_key, BlackHole, SUBJECT,
};

fn vkey(prefix: &std::path::Path) -> Verifier {
    read_verifier(&prefix.with_extension("vkey")).unwrap()
}

/// On the POSIX data directory and on S3 + PostgreSQL.
#[test]
fn checkpoints_and_receipts_carry_the_cosignatures_of_the_quorum() {
    for backend in Backend::all("cosigning") {
        eprintln!("cosigning on {}", backend.name());
        cosigned_by_the_quorum(&backend);
    }
}

fn cosigned_by_the_quorum(backend: &Backend) {
    let fx = stopped_log_on(backend, 2);
    let (w1, w2) = (
        witness_key(fx.dir.path(), "w1"),
        witness_key(fx.dir.path(), "w2"),
    );
    let witness1 = start_witness(
        &w1,
        &[(&fx.origin, &fx.log_vkey)],
        &fx.dir.path().join("s1"),
    );
    let witness2 = start_witness(
        &w2,
        &[(&fx.origin, &fx.log_vkey)],
        &fx.dir.path().join("s2"),
    );
    let witnesses = [vkey(&w1), vkey(&w2)];
    let witnessing = [(witness1.url.as_str(), w1.as_path()), (&witness2.url, &w2)];
    let mut server =
        start_witnessed_log_on(backend, &fx.data, &witnessing, &["--witness-quorum", "2"]);
    assert!(server
        .banner
        .iter()
        .any(|l| l == "witness quorum: 2 of 2, below quorum: fail-open"));

    // The receipt of a new publication is cosigned by both; its tlog-proof carries the
    // same cosigned checkpoint (Receipt::verify checks they are byte-identical).
    let receipt = publish_ok(&server.url, &fx.publisher, SUBJECT, 10);
    let parsed = Receipt::from_json(&receipt).unwrap();
    parsed.verify(&fx.log_key).unwrap();
    assert_eq!(
        cosigners(parsed.checkpoint.as_bytes(), &fx.log_key, &witnesses),
        2
    );
    assert!(parsed.tlog_proof.ends_with(&parsed.checkpoint));
    let w1_path = w1.with_extension("vkey");
    let w2_path = w2.with_extension("vkey");
    let (ok, text) = verify_receipt(
        &receipt,
        fx.dir.path(),
        &fx.log_vkey,
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
    assert_eq!(
        cosigners(&checkpoint(&server.url), &fx.log_key, &witnesses),
        2
    );
    let (status, _, fetched) =
        Http::new(&server.url).get(&format!("/v1/receipts/{}", parsed.log_index));
    assert_eq!(status, 200);
    let fetched = Receipt::from_json(&fetched).unwrap();
    assert_eq!(
        cosigners(fetched.checkpoint.as_bytes(), &fx.log_key, &witnesses),
        2
    );

    // A restarted log learns each witness's size from a 409 and is cosigned again.
    server.kill9();
    let server = start_witnessed_log_on(backend, &fx.data, &witnessing, &["--witness-quorum", "2"]);
    wait_until(
        Duration::from_secs(20),
        "cosignatures after a restart",
        || cosigners(&checkpoint(&server.url), &fx.log_key, &witnesses) == 2,
    );
    let receipt = publish_ok(&server.url, &fx.publisher, SUBJECT, 11);
    let parsed = Receipt::from_json(&receipt).unwrap();
    assert_eq!(
        cosigners(parsed.checkpoint.as_bytes(), &fx.log_key, &witnesses),
        2
    );
}

#[test]
fn a_dead_or_hung_witness_never_stalls_sequencing() {
    let fx = stopped_log(1);
    let w1 = witness_key(fx.dir.path(), "w1");
    let hung_key = witness_key(fx.dir.path(), "hung");
    let witness = start_witness(
        &w1,
        &[(&fx.origin, &fx.log_vkey)],
        &fx.dir.path().join("s1"),
    );
    let hung = BlackHole::new();
    // Quorum 1 of {live, hung}, with a witness timeout far above the time we allow.
    let witnessing = [(hung.url.as_str(), hung_key.as_path()), (&witness.url, &w1)];
    let server = start_witnessed_log(&fx.data, &witnessing, &["--witness-timeout-ms", "30000"]);
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for n in 0..20 {
        let t = Instant::now();
        let receipt = publish_ok(&server.url, &fx.publisher, SUBJECT, 100 + n);
        slowest = slowest.max(t.elapsed());
        let parsed = Receipt::from_json(&receipt).unwrap();
        // The live witness alone meets the quorum, so receipts are still cosigned.
        assert_eq!(
            cosigners(
                parsed.checkpoint.as_bytes(),
                &fx.log_key,
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
    let fx = stopped_log(1);
    let hung_key = witness_key(fx.dir.path(), "hung");
    let hung = BlackHole::new();
    let witnessing = [(hung.url.as_str(), hung_key.as_path())];
    let server = start_witnessed_log(&fx.data, &witnessing, &["--witness-timeout-ms", "1500"]);
    // The first head waits at most one witness timeout; once the witness is known to be
    // down, receipts do not wait for it at all.
    let t = Instant::now();
    let receipt = publish_ok(&server.url, &fx.publisher, SUBJECT, 1);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let t = Instant::now();
    for n in 2..12 {
        publish_ok(&server.url, &fx.publisher, SUBJECT, n);
    }
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "10 publications took {:?}",
        t.elapsed()
    );
    assert_eq!(tree_size(&server.url), 14);
    // Such a receipt verifies with the log key, and fails a witness quorum.
    let hung_vkey = hung_key.with_extension("vkey");
    assert!(verify_receipt(&receipt, fx.dir.path(), &fx.log_vkey, &[]).0);
    let (ok, text) = verify_receipt(
        &receipt,
        fx.dir.path(),
        &fx.log_vkey,
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
    let fx = stopped_log(1);
    let w1 = witness_key(fx.dir.path(), "w1");
    let state = fx.dir.path().join("s1");
    let mut witness = start_witness(&w1, &[(&fx.origin, &fx.log_vkey)], &state);
    let mode = ["--below-quorum", "hold-back", "--hold-back-wait-ms", "4000"];
    let server = start_witnessed_log(&fx.data, &[(&witness.url, &w1)], &mode);
    let receipt = publish_ok(&server.url, &fx.publisher, SUBJECT, 1);
    let parsed = Receipt::from_json(&receipt).unwrap();
    assert_eq!(
        cosigners(parsed.checkpoint.as_bytes(), &fx.log_key, &[vkey(&w1)]),
        1
    );
    let witnessed_size = parsed.tree_size;

    // The witness dies. A new publication is sequenced at once (the tree grows while the
    // request still waits), but gets no receipt: 503 with the reason, after the wait.
    let witness_url = witness.url.clone();
    witness.kill9();
    let url = server.url.clone();
    let pending = std::thread::spawn({
        let publisher = fx.publisher.clone();
        move || {
            let t = Instant::now();
            let answer = publish(&url, &publisher, SUBJECT, 2);
            (answer, t.elapsed())
        }
    });
    wait_until(Duration::from_secs(3), "the entry to be sequenced", || {
        tree_size(&server.url) == witnessed_size + 1
    });
    assert!(
        !pending.is_finished(),
        "the entry is in the tree while its receipt still waits"
    );
    let ((status, body), waited) = pending.join().unwrap();
    let body = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("below-witness-quorum") && body.contains("reached the quorum"),
        "{body}"
    );
    assert!(waited >= Duration::from_millis(3900), "{waited:?}");
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
        format!("{}={}", fx.origin, fx.log_vkey.display()),
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
        fx.dir.path(),
        &fx.log_vkey,
        &["--witness-vkey", w1_vkey.to_str().unwrap(), "--quorum", "1"],
    );
    assert!(ok, "{text}");
}

/// `Receipt::verify_with_witnesses`: distinct known witnesses are counted, unknown
/// signers are ignored, one key under two names counts once, and a known witness's bad
/// cosignature is an error rather than a missing vote.
#[test]
fn verify_counts_distinct_known_witnesses_and_rejects_a_bad_cosignature() {
    use base64::Engine as _;
    use srcos_catalog::log::{Log, LogOptions};
    use srcos_catalog::note::{cosign, KeyType, Signer};
    use srcos_catalog::receipt::ReceiptError;

    let dir = tempdir();
    let (log, _) = Log::open(LogOptions::new(dir.path().join("data"))).unwrap();
    let plain = log.receipt(0, None).unwrap();
    let entry = base64::engine::general_purpose::STANDARD
        .decode(&plain.entry)
        .unwrap();
    let proof: Vec<[u8; 32]> = plain
        .inclusion_proof
        .iter()
        .map(|h| hex::decode(h).unwrap().try_into().unwrap())
        .collect();
    let mut note = Note::parse(plain.checkpoint.as_bytes()).unwrap();
    let text = note.text().to_string();
    let [w1, w2, stranger] = ["w1", "w2", "stranger"].map(|name| {
        Signer::generate(&format!("witness.example/{name}"), KeyType::CosignatureV1).unwrap()
    });
    // w1's key again under another name: its cosignature verifies for both names.
    let private = w1.to_private_key_string();
    let key_material = base64::engine::general_purpose::STANDARD
        // PRIVATE+KEY+<name>+<hex8>+<base64>: the base64 may itself contain '+'.
        .decode(private.splitn(5, '+').nth(4).unwrap())
        .unwrap();
    let seed: [u8; 32] = key_material[1..].try_into().unwrap();
    let alias = Signer::from_seed("witness.example/alias", KeyType::CosignatureV1, &seed).unwrap();
    assert_eq!(alias.verifier().public_key(), w1.verifier().public_key());
    let with = |signers: &[&Signer], note: &mut Note| {
        for s in signers {
            note.add_signature(cosign(&text, s, 1_700_000_000).unwrap())
                .unwrap();
        }
        let bytes = note.to_bytes();
        srcos_catalog::receipt::Receipt::new(
            &plain.origin,
            0,
            &entry,
            plain.tree_size,
            &proof,
            &bytes,
        )
    };
    let known = [w1.verifier(), w2.verifier()];
    let receipt = with(&[&w1, &stranger], &mut note.clone());
    let ok = receipt
        .verify_with_witnesses(log.verifier(), &known, 1)
        .unwrap();
    assert_eq!(ok.cosigners.len(), 1, "the stranger is ignored");
    assert!(matches!(
        receipt.verify_with_witnesses(log.verifier(), &known, 2),
        Err(ReceiptError::Quorum { got: 1, needed: 2 })
    ));
    let receipt = with(&[&w1, &w2], &mut note.clone());
    assert_eq!(
        receipt
            .verify_with_witnesses(log.verifier(), &known, 2)
            .unwrap()
            .cosigners
            .len(),
        2
    );
    let receipt = with(&[&w1, &alias], &mut note.clone());
    let both_names = [w1.verifier(), alias.verifier()];
    assert!(matches!(
        receipt.verify_with_witnesses(log.verifier(), &both_names, 2),
        Err(ReceiptError::Quorum { got: 1, needed: 2 })
    ));
    // w2's line with w1's signature bytes: a known witness's cosignature that fails.
    let mut forged = cosign(&text, &w1, 1_700_000_000).unwrap();
    forged.name = w2.name().to_string();
    forged.key_id = w2.key_id();
    note.add_signature(forged).unwrap();
    let receipt = with(&[&w1], &mut note);
    assert!(matches!(
        receipt.verify_with_witnesses(log.verifier(), &known, 1),
        Err(ReceiptError::Cosignature(_))
    ));
    // A log key given as a witness key is a usage error.
    assert!(matches!(
        receipt.verify_with_witnesses(log.verifier(), &[log.verifier().clone()], 0),
        Err(ReceiptError::WitnessKey(_))
    ));
}
