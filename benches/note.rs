//! Benchmarks for the note module: the operations a log and its witnesses
//! perform for every published tree head.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use srcos_catalog::note::{
    cosign, open_checkpoint, verify_cosignature, Checkpoint, KeyType, Note, Signer,
};

fn checkpoint() -> Checkpoint {
    Checkpoint {
        origin: "example.com/srcos-bench-log".to_owned(),
        size: 123_456_789,
        root: [0x5a; 32],
        extensions: vec![],
    }
}

fn log_signer() -> Signer {
    Signer::from_seed("example.com/srcos-bench-log", KeyType::Ed25519, &[1; 32])
        .expect("valid name")
}

fn witness_signer() -> Signer {
    Signer::from_seed("witness.example/bench", KeyType::CosignatureV1, &[2; 32])
        .expect("valid name")
}

fn bench_sign(c: &mut Criterion) {
    let cp = checkpoint();
    let signer = log_signer();
    c.bench_function("checkpoint_sign", |b| {
        b.iter(|| black_box(&cp).sign(&signer).expect("sign"))
    });
}

fn bench_open(c: &mut Criterion) {
    let signer = log_signer();
    let witness = witness_signer();
    let mut note = checkpoint().sign(&signer).expect("sign");
    // A realistic checkpoint as served: log signature plus one cosignature.
    let cosig = cosign(note.text(), &witness, 1_700_000_000).expect("cosign");
    note.add_signature(cosig).expect("add");
    let bytes = note.to_bytes();
    let log = signer.verifier();
    c.bench_function("checkpoint_parse_verify", |b| {
        b.iter(|| open_checkpoint(black_box(&bytes), &log).expect("open"))
    });
    c.bench_function("note_parse_only", |b| {
        b.iter(|| Note::parse(black_box(&bytes)).expect("parse"))
    });
}

fn bench_cosig(c: &mut Criterion) {
    let witness = witness_signer();
    let text = checkpoint().to_text();
    let sig = cosign(&text, &witness, 1_700_000_000).expect("cosign");
    let v = witness.verifier();
    c.bench_function("cosignature_verify", |b| {
        b.iter(|| verify_cosignature(black_box(&text), &sig, &v).expect("verify"))
    });
}

criterion_group!(benches, bench_sign, bench_open, bench_cosig);
criterion_main!(benches);
