//! Evidence analysis comes after authorization (issue 10 §1): a publication by a
//! revoked key, an ungranted key or outside its grant is refused without its evidence
//! blobs being read.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use srcos_catalog::catalog::{sign_envelope, BlobSource, Refusal};
use srcos_catalog::keyfile::read_signer;
use srcos_catalog::log::intake::intake;
use srcos_catalog::log::{Log, LogOptions, SubmitError};
use srcos_catalog::note::{KeyType, Signer};

/// Holds a large blob under every digest and counts how often one is read; its touches
/// answer "held" as `holds` says for the n-th touch.
struct CountingBlobs {
    reads: AtomicUsize,
    touches: AtomicUsize,
    holds: fn(usize) -> bool,
}

impl CountingBlobs {
    fn holding(holds: fn(usize) -> bool) -> CountingBlobs {
        CountingBlobs {
            reads: AtomicUsize::new(0),
            touches: AtomicUsize::new(0),
            holds,
        }
    }
}

impl BlobSource for CountingBlobs {
    fn blob(&self, _sha256_hex: &str) -> Option<Vec<u8>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        Some(vec![b' '; 8 << 20])
    }

    fn touch(&self, _sha256_hex: &str) -> bool {
        (self.holds)(self.touches.fetch_add(1, Ordering::SeqCst))
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    log: Arc<Log>,
    admin: Signer,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = common::tempdir();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (log, _) = Log::open(LogOptions::new(dir.path())).unwrap();
        let admin = read_signer(&dir.path().join("admin.key")).unwrap();
        Fixture {
            _dir: dir,
            rt,
            log: Arc::new(log),
            admin,
        }
    }

    fn send(
        &self,
        signer: &Signer,
        payload: &serde_json::Value,
        blobs: Option<&CountingBlobs>,
    ) -> Result<(), SubmitError> {
        let envelope = sign_envelope(&serde_jcs::to_vec(payload).unwrap(), signer);
        let blobs = blobs.map(|b| b as &(dyn BlobSource + Sync));
        self.rt
            .block_on(intake(
                &self.log,
                blobs,
                envelope.to_json().as_bytes(),
                None,
            ))
            .map(|_| ())
    }

    fn grant(&self, key: &Signer, prefix: &str) {
        let grant = serde_json::json!({
            "apiVersion": "catalog.srcos.ai/v1", "kind": "PublisherGrant",
            "publisherKey": key.verifier().to_vkey(), "role": "publisher",
            "targetPrefixes": [prefix], "channels": ["dev"],
        });
        self.send(&self.admin, &grant, None).unwrap();
    }
}

fn publication(n: u64) -> serde_json::Value {
    let json = common::request_json("quay.io/a/b", n, "sourceos://catalog/images/a", "dev");
    serde_json::from_str(&json).unwrap()
}

fn forbidden(result: Result<(), SubmitError>) -> String {
    match result {
        Err(SubmitError::Refused(Refusal::Forbidden(m))) => m,
        other => panic!("expected 403, got {other:?}"),
    }
}

#[test]
fn unauthorized_publications_are_refused_before_their_blobs_are_read() {
    let f = Fixture::new();
    let revoked = Signer::generate("revoked", KeyType::Ed25519).unwrap();
    let elsewhere = Signer::generate("elsewhere", KeyType::Ed25519).unwrap();
    let granted = Signer::generate("granted", KeyType::Ed25519).unwrap();
    f.grant(&revoked, "sourceos://catalog/images/");
    f.grant(&elsewhere, "sourceos://catalog/tools/");
    f.grant(&granted, "sourceos://catalog/images/");
    let revoke = common::authority::fresh(&serde_json::json!({"apiVersion": "catalog.srcos.ai/v1",
        "kind": "PublisherRevoke", "key": revoked.verifier().to_vkey(), "reason": "compromised"}));
    f.send(&f.admin, &revoke, None).unwrap();

    for (n, key, what) in [(1, &revoked, "revoked"), (2, &elsewhere, "outside")] {
        let blobs = CountingBlobs::holding(|_| true);
        let refusal = forbidden(f.send(key, &publication(n), Some(&blobs)));
        assert!(refusal.contains(what), "{refusal}");
        assert_eq!(
            blobs.reads.load(Ordering::SeqCst),
            0,
            "{what}: the evidence was read before the key was refused"
        );
    }
    // An authorized publication is analysed (every evidence blob read once).
    let blobs = CountingBlobs::holding(|_| true);
    let _ = f.send(&granted, &publication(3), Some(&blobs));
    assert_eq!(blobs.reads.load(Ordering::SeqCst), 4);
}

/// A blob whose touch showed it is not held is not looked for again (issue 12: a
/// publication naming four absent blobs cost eight failed `open`s): the source is
/// asked for exactly the blobs that may be held, and for none when none is.
#[test]
fn blobs_known_absent_are_not_read() {
    let f = Fixture::new();
    let granted = Signer::generate("granted", KeyType::Ed25519).unwrap();
    f.grant(&granted, "sourceos://catalog/images/");
    for (n, holds, reads) in [
        (1, (|_| false) as fn(usize) -> bool, 0),
        (2, |i| i % 2 == 0, 2),
        (3, |i| i == 3, 1),
        (4, |_| true, 4),
    ] {
        let blobs = CountingBlobs::holding(holds);
        let _ = f.send(&granted, &publication(n), Some(&blobs));
        assert_eq!(blobs.touches.load(Ordering::SeqCst), 4, "publication {n}");
        assert_eq!(blobs.reads.load(Ordering::SeqCst), reads, "publication {n}");
    }
}
