//! The witness as a real process over real HTTP (C2SP tlog-witness add-checkpoint):
//! every status code, `old 0` with an empty proof, the latest-checkpoint endpoint,
//! concurrent requests that must not roll the state back, and a `kill -9` restart that
//! must still refuse a checkpoint inconsistent with one cosigned before it.

mod common;
mod watchers;

use std::path::Path;
use std::sync::{Arc, Barrier};

use common::{cli, tempdir, Http, Server};
use srcos_catalog::merkle::{self, leaf_hash, MemoryHashSource};
use srcos_catalog::note::{
    verify_cosignature, AddCheckpoint, Checkpoint, KeyType, Note, NoteSignature, Signer,
};
use srcos_catalog::witness::state::origin_hash;
use watchers::{start_witness, witness_key};

const ORIGIN: &str = "log.example/witness-test";

/// A log under test: its key and a tree whose leaves are `"<branch> <i>"`.
struct TestLog {
    signer: Signer,
    tree: MemoryHashSource,
}

impl TestLog {
    fn new(signer: &Signer, branch: &str, size: u64) -> TestLog {
        let mut tree = MemoryHashSource::new();
        for i in 0..size {
            tree.push(leaf_hash(format!("{branch} {i}").as_bytes()));
        }
        TestLog {
            signer: signer.clone(),
            tree,
        }
    }

    fn root(&self, size: u64) -> [u8; 32] {
        merkle::tree_root(size, &self.tree).unwrap()
    }

    fn signed(&self, size: u64) -> Vec<u8> {
        Checkpoint {
            origin: self.signer.name().to_string(),
            size,
            root: self.root(size),
            extensions: Vec::new(),
        }
        .sign(&self.signer)
        .unwrap()
        .to_bytes()
    }

    fn proof(&self, old: u64, new: u64) -> Vec<[u8; 32]> {
        if old == 0 {
            return Vec::new();
        }
        merkle::consistency_proof(old, new, &self.tree).unwrap()
    }

    /// The request "old, proof from old to size, checkpoint of size".
    fn request(&self, old: u64, size: u64) -> Vec<u8> {
        AddCheckpoint {
            old_size: old,
            proof: self.proof(old, size),
            checkpoint: self.signed(size),
        }
        .to_bytes()
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    log_key: Signer,
    witness_prefix: std::path::PathBuf,
    log_vkey: std::path::PathBuf,
    state: std::path::PathBuf,
}

fn setup() -> Setup {
    let dir = tempdir();
    let log_key = Signer::generate(ORIGIN, KeyType::Ed25519).unwrap();
    let log_vkey = dir.path().join("log.vkey");
    std::fs::write(&log_vkey, log_key.verifier().to_vkey()).unwrap();
    let witness_prefix = witness_key(dir.path(), "w1");
    let state = dir.path().join("state");
    Setup {
        log_key,
        witness_prefix,
        log_vkey,
        state,
        _dir: dir,
    }
}

fn start(setup: &Setup) -> Server {
    start_witness(
        &setup.witness_prefix,
        &[(ORIGIN, setup.log_vkey.as_path())],
        &setup.state,
    )
}

fn post(url: &str, body: Vec<u8>) -> (u16, String, String) {
    let (status, content_type, body) = Http::new(url).post("/add-checkpoint", body);
    (
        status,
        content_type,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

fn witness_verifier(prefix: &Path) -> srcos_catalog::note::Verifier {
    srcos_catalog::keyfile::read_verifier(&prefix.with_extension("vkey")).unwrap()
}

/// The cosignature in a 200 answer verifies over the checkpoint text with the
/// witness key; returns its timestamp.
fn check_cosignature(body: &str, log: &TestLog, size: u64, prefix: &Path) -> u64 {
    let line = body.lines().next().expect("a cosignature line");
    let sig = NoteSignature::parse_line(line).unwrap();
    let note = Note::parse(&log.signed(size)).unwrap();
    verify_cosignature(note.text(), &sig, &witness_verifier(prefix)).unwrap()
}

fn latest_size(url: &str, setup: &Setup) -> Option<u64> {
    let (status, _, body) = Http::new(url).get(&format!("/{}/checkpoint", origin_hash(ORIGIN)));
    if status == 404 {
        return None;
    }
    assert_eq!(status, 200);
    let note = Note::parse(&body).unwrap();
    let verified = note
        .verify(&[
            setup.log_key.verifier(),
            witness_verifier(&setup.witness_prefix),
        ])
        .unwrap();
    assert_eq!(verified.len(), 2, "log signature and cosignature");
    Some(Checkpoint::parse(note.text()).unwrap().size)
}

#[test]
fn every_status_code_of_add_checkpoint() {
    let setup = setup();
    let witness = start(&setup);
    let url = &witness.url;
    let log = TestLog::new(&setup.log_key, "a", 40);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(latest_size(url, &setup), None, "nothing cosigned yet");

    // 400: malformed bodies, and old larger than the checkpoint.
    for bad in [
        b"".to_vec(),
        b"old 01\n\n".to_vec(),
        b"hello\n\nworld\n".to_vec(),
        [b"old 0\n\n".as_slice(), b"not a note"].concat(),
        [b"old 0\nAAAA\n\n".as_slice(), &log.signed(5)].concat(),
    ] {
        assert_eq!(post(url, bad).0, 400);
    }
    let mut over = log.request(0, 5);
    over.splice(0..5, b"old 6".iter().copied());
    assert_eq!(post(url, over).0, 400, "old > size");

    // 404: an origin this witness does not follow.
    let stranger = Signer::generate("log.example/other", KeyType::Ed25519).unwrap();
    let other = TestLog::new(&stranger, "a", 5);
    assert_eq!(post(url, other.request(0, 5)).0, 404);

    // 403: the right name signed by another key, and a corrupted signature.
    let impostor = Signer::generate(ORIGIN, KeyType::Ed25519).unwrap();
    let forged = TestLog::new(&impostor, "a", 5);
    assert_eq!(post(url, forged.request(0, 5)).0, 403);
    let mut tampered = log.request(0, 5);
    let at = tampered.len() - 10;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    assert_eq!(post(url, tampered).0, 403);

    // 422: old 0 with a non-empty proof, and a size-0 checkpoint with a non-empty root.
    let with_proof = AddCheckpoint {
        old_size: 0,
        proof: vec![[7u8; 32]],
        checkpoint: log.signed(5),
    };
    assert_eq!(post(url, with_proof.to_bytes()).0, 422);
    let empty_but_not = Checkpoint {
        origin: ORIGIN.into(),
        size: 0,
        root: [1u8; 32],
        extensions: Vec::new(),
    }
    .sign(&setup.log_key)
    .unwrap()
    .to_bytes();
    let request = AddCheckpoint {
        old_size: 0,
        proof: Vec::new(),
        checkpoint: empty_but_not,
    };
    assert_eq!(post(url, request.to_bytes()).0, 422);

    // 200: old 0 with an empty proof; the answer is a cosignature line.
    let (status, content_type, body) = post(url, log.request(0, 5));
    assert_eq!(status, 200, "{body}");
    assert!(content_type.starts_with("text/plain"));
    let timestamp = check_cosignature(&body, &log, 5, &setup.witness_prefix);
    assert!(
        timestamp >= now && timestamp <= now + 60,
        "timestamp {timestamp}"
    );
    assert_eq!(latest_size(url, &setup), Some(5));

    // 409: a stale old size, with the latest size as text/x.tlog.size.
    for old in [0, 3] {
        let (status, content_type, body) = post(url, log.request(old, 9));
        assert_eq!((status, body.as_str()), (409, "5\n"));
        assert_eq!(content_type, "text/x.tlog.size");
    }

    // 200 with a proof; 422 for a bad proof; same size: 200 for the same root, 422 for
    // another root (the HEAD status; v1.0.0 said 409).
    let (status, _, body) = post(url, log.request(5, 9));
    assert_eq!(status, 200, "{body}");
    check_cosignature(&body, &log, 9, &setup.witness_prefix);
    let mut bad_proof = AddCheckpoint {
        old_size: 9,
        proof: log.proof(9, 12),
        checkpoint: log.signed(12),
    };
    bad_proof.proof[0][0] ^= 1;
    assert_eq!(post(url, bad_proof.to_bytes()).0, 422);
    let short_proof = AddCheckpoint {
        old_size: 9,
        proof: Vec::new(),
        checkpoint: log.signed(12),
    };
    assert_eq!(post(url, short_proof.to_bytes()).0, 422);
    assert_eq!(post(url, log.request(9, 9)).0, 200);
    let fork = TestLog::new(&setup.log_key, "b", 9);
    assert_eq!(post(url, fork.request(9, 9)).0, 422);
    assert_eq!(latest_size(url, &setup), Some(9));

    // 413: a body over the limit; 404: the checkpoint of an unknown origin hash.
    // The size is declared up front and the body not sent: a client still writing a
    // megabyte when the server answers 413 and closes can see a reset instead of the
    // answer, which made this check flaky under load.
    let declared = format!(
        "POST /add-checkpoint HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\nold 0\n",
        (1 << 20) + 8192
    );
    let (status, text) = common::raw_http(url, declared.as_bytes());
    assert_eq!(status, 413, "{text}");
    let (status, _, _) = Http::new(url).get(&format!("/{}/checkpoint", origin_hash("nope")));
    assert_eq!(status, 404);
}

#[test]
fn concurrent_requests_cannot_roll_the_state_back() {
    let setup = setup();
    let witness = start(&setup);
    let log = Arc::new(TestLog::new(&setup.log_key, "a", 200));
    let url = witness.url.clone();
    assert_eq!(post(&url, log.request(0, 10)).0, 200);
    let mut latest = 10;
    for round in 0..6u64 {
        // Eight clients that all believe the witness is at `latest` race to add eight
        // different larger checkpoints. Exactly one may win; if two won, the later
        // write could leave the smaller tree as the latest, rolling the witness back.
        let threads = 8u64;
        let barrier = Arc::new(Barrier::new(threads as usize));
        let handles: Vec<_> = (0..threads)
            .map(|k| {
                let (log, barrier, url) = (log.clone(), barrier.clone(), url.clone());
                let size = latest + 1 + k + round;
                let body = log.request(latest, size);
                std::thread::spawn(move || {
                    barrier.wait();
                    let (status, _, answer) = post(&url, body);
                    (size, status, answer)
                })
            })
            .collect();
        let results: Vec<(u64, u16, String)> =
            handles.into_iter().map(|h| h.join().unwrap()).collect();
        let winners: Vec<u64> = results
            .iter()
            .filter(|(_, status, _)| *status == 200)
            .map(|(size, _, _)| *size)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        let winner = winners[0];
        for (_, status, answer) in &results {
            if *status != 200 {
                assert_eq!(
                    (*status, answer.as_str()),
                    (409, format!("{winner}\n").as_str())
                );
            }
        }
        assert_eq!(latest_size(&url, &setup), Some(winner));
        latest = winner;
    }
}

#[test]
fn a_restarted_witness_keeps_its_state_and_still_refuses_a_fork() {
    let setup = setup();
    let log = TestLog::new(&setup.log_key, "a", 30);
    let fork = TestLog::new(&setup.log_key, "b", 30);
    let mut witness = start(&setup);
    assert_eq!(post(&witness.url, log.request(0, 7)).0, 200);
    // kill -9 right after the answer: the state was durable before the answer left.
    witness.kill9();

    let witness = start(&setup);
    assert!(
        witness
            .banner
            .iter()
            .any(|l| l.contains("latest cosigned size 7")),
        "{:?}",
        witness.banner
    );
    assert_eq!(latest_size(&witness.url, &setup), Some(7));
    let (status, _, body) = post(&witness.url, log.request(0, 12));
    assert_eq!((status, body.as_str()), (409, "7\n"));
    // The other branch, proven from its own size 7, and the same size with its root.
    assert_eq!(post(&witness.url, fork.request(7, 20)).0, 422);
    assert_eq!(post(&witness.url, fork.request(7, 7)).0, 422);
    // The honest branch still extends.
    assert_eq!(post(&witness.url, log.request(7, 20)).0, 200);
    assert_eq!(latest_size(&witness.url, &setup), Some(20));
}

#[test]
fn the_witness_refuses_keys_of_the_wrong_type() {
    let setup = setup();
    // A log key (0x01) as the witness key.
    let log_prefix = setup.state.with_file_name("logkey");
    common::cli_ok(&[
        "keygen",
        "--name",
        ORIGIN,
        "--out",
        log_prefix.to_str().unwrap(),
    ]);
    let out = cli(&[
        "witness",
        "--listen",
        "127.0.0.1:0",
        "--key",
        log_prefix.with_extension("key").to_str().unwrap(),
        "--log",
        &format!("{ORIGIN}={}", setup.log_vkey.display()),
        "--state",
        setup.state.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cosignature key"));
    // A witness key (0x04) as a log key.
    let out = cli(&[
        "witness",
        "--listen",
        "127.0.0.1:0",
        "--key",
        setup.witness_prefix.with_extension("key").to_str().unwrap(),
        "--log",
        &format!(
            "{ORIGIN}={}",
            setup.witness_prefix.with_extension("vkey").display()
        ),
        "--state",
        setup.state.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Ed25519"));
}
