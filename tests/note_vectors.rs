//! Public and self-made vectors for the note module, plus round trips.
//! The vector files and their sources are in `log-format/vectors/note/`.

use proptest::prelude::*;
use sha2::{Digest, Sha256};
use srcos_catalog::note::*;

macro_rules! vector {
    ($file:literal) => {
        include_str!(concat!("../log-format/vectors/note/", $file))
    };
}

const XMOD_KEY: &str = vector!("xmod-peterneumann.key");
const XMOD_VKEY: &str = vector!("xmod-peterneumann.vkey");
const ENOCH_VKEY: &str = vector!("xmod-enochroot.vkey");
const XMOD_NOTE: &str = vector!("xmod-peterneumann-enochroot.note");
const XMOD_TEXT: &str =
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const SPEC_VKEY: &str = vector!("signed-note-spec-example.vkey");
const SPEC_NOTE: &str = vector!("signed-note-spec-example.note");
const SUM_VKEY: &str = vector!("sum-golang-org.vkey");
const SUM_NOTE: &str = vector!("sum-golang-org-6476701.note");
const C2SP_CHECKPOINT: &str = vector!("c2sp-checkpoint-example.txt");
const REMORA_VKEY: &str = vector!("transparency-dev-remora.vkey");
const W1_KEY: &str = vector!("selfmade-witness-w1.key");
const W1_VKEY: &str = vector!("selfmade-witness-w1.vkey");
const W1_COSIG: &str = vector!("selfmade-witness-w1-t1679315147.cosig");
const LOG_KEY: &str = vector!("selfmade-test-log.key");
const LOG_VKEY: &str = vector!("selfmade-test-log.vkey");
const PROOF: &str = vector!("selfmade-entry1.tlog-proof");

const W1_TIME: u64 = 1679315147;

fn seed(start: u8) -> [u8; 32] {
    std::array::from_fn(|i| start.wrapping_add(i as u8))
}

// ---------------------------------------------------------------- x/mod

#[test]
fn xmod_private_key_parses_and_round_trips() {
    let signer = Signer::from_private_key_string(XMOD_KEY).unwrap();
    assert_eq!(signer.name(), "PeterNeumann");
    assert_eq!(signer.key_id(), 0xc74f20a3);
    assert_eq!(signer.key_type(), KeyType::Ed25519);
    assert_eq!(signer.to_private_key_string(), XMOD_KEY);
    assert_eq!(signer.verifier().to_vkey(), XMOD_VKEY);
}

#[test]
fn xmod_vkeys_parse_and_round_trip() {
    for (vkey, name, id) in [
        (XMOD_VKEY, "PeterNeumann", 0xc74f20a3),
        (ENOCH_VKEY, "EnochRoot", 0xaf0cfe78),
    ] {
        let v = Verifier::from_vkey(vkey).unwrap();
        assert_eq!(v.name(), name);
        assert_eq!(v.key_id(), id);
        assert_eq!(v.key_type(), KeyType::Ed25519);
        assert_eq!(key_id(name, KeyType::Ed25519, v.public_key()), id);
        assert_eq!(v.to_vkey(), vkey);
        assert_eq!(v.short_id(), format!("{name}+{id:08x}"));
    }
}

#[test]
fn xmod_resigning_reproduces_published_line() {
    let signer = Signer::from_private_key_string(XMOD_KEY).unwrap();
    let note = Note::new_signed(XMOD_TEXT, &[&signer]).unwrap();
    let published = XMOD_NOTE
        .lines()
        .find(|l| l.contains("PeterNeumann"))
        .unwrap();
    assert_eq!(note.signatures()[0].to_line(), format!("{published}\n"));
    let expected = format!("{XMOD_TEXT}\n{published}\n");
    assert_eq!(note.to_bytes(), expected.as_bytes());
}

#[test]
fn xmod_note_verifies_with_both_keys() {
    let peter = Verifier::from_vkey(XMOD_VKEY).unwrap();
    let enoch = Verifier::from_vkey(ENOCH_VKEY).unwrap();
    let note = Note::parse(XMOD_NOTE.as_bytes()).unwrap();
    assert_eq!(note.text(), XMOD_TEXT);
    assert_eq!(note.signatures().len(), 2);
    assert_eq!(note.to_bytes(), XMOD_NOTE.as_bytes());

    let both = note.verify(&[peter.clone(), enoch.clone()]).unwrap();
    assert_eq!(both.len(), 2);
    assert_eq!(both[0].verifier, peter);
    assert_eq!(both[1].verifier, enoch);
    assert!(both.iter().all(|v| v.timestamp.is_none()));

    let only_enoch = note.verify(std::slice::from_ref(&enoch)).unwrap();
    assert_eq!(only_enoch.len(), 1);
    assert_eq!(only_enoch[0].verifier, enoch);
    assert_eq!(note.verify(std::slice::from_ref(&peter)).unwrap().len(), 1);
}

// ---------------------------------------------------------------- C2SP signed-note spec

#[test]
fn signed_note_spec_example() {
    let v = Verifier::from_vkey(SPEC_VKEY).unwrap();
    assert_eq!(v.name(), "example.com/foo");
    assert_eq!(v.key_id(), 0x530d903a);
    let note = Note::parse(SPEC_NOTE.as_bytes()).unwrap();
    assert_eq!(note.text(), "This is an example message.\n");
    let ok = note.verify(std::slice::from_ref(&v)).unwrap();
    assert_eq!(ok.len(), 1);
    assert_eq!(note.to_bytes(), SPEC_NOTE.as_bytes());
}

// ---------------------------------------------------------------- sum.golang.org checkpoint

#[test]
fn sum_golang_org_checkpoint() {
    let log = Verifier::from_vkey(SUM_VKEY).unwrap();
    assert_eq!(log.key_id(), 0x033de0ae);
    let (cp, note) = open_checkpoint(SUM_NOTE.as_bytes(), &log).unwrap();
    assert_eq!(cp.origin, "go.sum database tree");
    assert_eq!(cp.size, 6476701);
    assert_eq!(
        hex::encode(cp.root),
        hex::encode(base64_decode("mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=").as_slice())
    );
    assert!(cp.extensions.is_empty());
    assert_eq!(cp.to_text(), note.text());
    assert_eq!(note.to_bytes(), SUM_NOTE.as_bytes());
}

fn base64_decode(s: &str) -> Vec<u8> {
    // Tiny independent decoder so the test does not reuse the module's codec.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes().take_while(|&c| c != b'=') {
        let v = ALPHABET.iter().position(|&a| a == c).unwrap() as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

// ---------------------------------------------------------------- cosignatures

#[test]
fn selfmade_cosignature_vector() {
    let w1 = Signer::from_seed("witness.example/w1", KeyType::CosignatureV1, &seed(0)).unwrap();
    assert_eq!(w1.key_id(), 0xe75f6532);
    assert_eq!(w1.verifier().to_vkey(), W1_VKEY);
    assert_eq!(w1.to_private_key_string(), W1_KEY);
    assert_eq!(
        Signer::from_private_key_string(W1_KEY).unwrap().verifier(),
        w1.verifier()
    );

    let sig = cosign(C2SP_CHECKPOINT, &w1, W1_TIME).unwrap();
    assert_eq!(sig.to_line(), W1_COSIG);
    assert_eq!(sig.signature.len(), COSIGNATURE_V1_LEN);
    assert_eq!(NoteSignature::parse_line(W1_COSIG).unwrap(), sig);

    let v = Verifier::from_vkey(W1_VKEY).unwrap();
    assert_eq!(v.key_type(), KeyType::CosignatureV1);
    assert_eq!(verify_cosignature(C2SP_CHECKPOINT, &sig, &v), Ok(W1_TIME));
}

#[test]
fn cosignature_added_to_spec_checkpoint_note_verifies() {
    // The C2SP checkpoint example's log signature has no published key: it
    // is parsed and then ignored as unknown, as the spec requires.
    let spec_note = format!(
        "{C2SP_CHECKPOINT}\n\u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    );
    let mut note = Note::parse(spec_note.as_bytes()).unwrap();
    assert_eq!(note.signatures()[0].key_id, 0x033de0ae);
    let cp = Checkpoint::parse(note.text()).unwrap();
    assert_eq!(cp.origin, "example.com/behind-the-sofa");
    assert_eq!(cp.size, 20852163);

    note.add_signature(NoteSignature::parse_line(W1_COSIG).unwrap())
        .unwrap();
    let w1 = Verifier::from_vkey(W1_VKEY).unwrap();
    let ok = note.verify(std::slice::from_ref(&w1)).unwrap();
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].timestamp, Some(W1_TIME));
    assert_eq!(
        String::from_utf8(note.to_bytes()).unwrap(),
        format!("{spec_note}{W1_COSIG}")
    );
}

#[test]
fn transparency_dev_cosig_vkey() {
    let v = Verifier::from_vkey(REMORA_VKEY).unwrap();
    assert_eq!(v.name(), "remora.n621.de");
    assert_eq!(v.key_type(), KeyType::CosignatureV1);
    assert_eq!(v.key_id(), 0xda77ade7);
    assert_eq!(
        key_id(v.name(), KeyType::CosignatureV1, v.public_key()),
        0xda77ade7
    );
    assert_ne!(
        key_id(v.name(), KeyType::Ed25519, v.public_key()),
        0xda77ade7
    );
    assert_eq!(v.to_vkey(), REMORA_VKEY);
}

#[test]
fn add_signature_replaces_same_key() {
    let log = Signer::from_private_key_string(LOG_KEY).unwrap();
    let w1 = Signer::from_private_key_string(W1_KEY).unwrap();
    let cp = Checkpoint::parse(C2SP_CHECKPOINT).unwrap();
    let mut note = cp.sign(&log).unwrap();
    note.add_signature(cosign(note.text(), &w1, 10).unwrap())
        .unwrap();
    note.add_signature(cosign(note.text(), &w1, 20).unwrap())
        .unwrap();
    assert_eq!(note.signatures().len(), 2);
    let ok = note.verify(&[log.verifier(), w1.verifier()]).unwrap();
    assert_eq!(ok.len(), 2);
    assert_eq!(ok[0].timestamp, None);
    assert_eq!(ok[1].timestamp, Some(20));
    assert_eq!(Note::parse(&note.to_bytes()), Ok(note));
}

// ---------------------------------------------------------------- tlog-proof

fn leaf_hash(data: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update([0u8])
        .chain_update(data)
        .finalize()
        .into()
}

fn node_hash(l: &[u8; 32], r: &[u8; 32]) -> [u8; 32] {
    Sha256::new()
        .chain_update([1u8])
        .chain_update(l)
        .chain_update(r)
        .finalize()
        .into()
}

#[test]
fn selfmade_tlog_proof_vector() {
    let proof = TlogProof::parse(PROOF.as_bytes()).unwrap();
    assert_eq!(proof.index, 1);
    assert_eq!(proof.extra.as_deref(), Some(&b"entry 1"[..]));
    assert_eq!(proof.hashes.len(), 2);
    assert_eq!(proof.to_text(), PROOF);
    assert_eq!(proof.to_bytes(), PROOF.as_bytes());

    let log = Verifier::from_vkey(LOG_VKEY).unwrap();
    let (cp, note) = proof.open(&log).unwrap();
    assert_eq!(cp.origin, "example.com/srcos-test-log");
    assert_eq!(cp.size, 3);

    // Index 1 of a 3-leaf tree: sibling leaf 0, then the right subtree (leaf 2).
    let leaf = leaf_hash(&proof.extra.clone().unwrap());
    let root = node_hash(&node_hash(&proof.hashes[0], &leaf), &proof.hashes[1]);
    assert_eq!(root, cp.root);

    let w1 = Verifier::from_vkey(W1_VKEY).unwrap();
    let ok = note.verify(&[log, w1]).unwrap();
    assert_eq!(ok.len(), 2);
    assert_eq!(ok[1].timestamp, Some(W1_TIME));

    // The log key in the vector is the self-made seed 0x20..0x3f.
    let signer = Signer::from_private_key_string(LOG_KEY).unwrap();
    assert_eq!(
        signer.verifier(),
        Signer::from_seed("example.com/srcos-test-log", KeyType::Ed25519, &seed(0x20))
            .unwrap()
            .verifier()
    );
    assert_eq!(
        cp.sign(&signer).unwrap().signatures()[0],
        note.signatures()[0]
    );
}

#[test]
fn tlog_proof_without_extra_or_hashes_round_trips() {
    let log = Signer::from_private_key_string(LOG_KEY).unwrap();
    let cp = Checkpoint {
        origin: "example.com/srcos-test-log".into(),
        size: 1,
        root: leaf_hash(b"only"),
        extensions: vec![],
    };
    let proof = TlogProof {
        index: 0,
        extra: None,
        hashes: vec![],
        checkpoint: cp.sign(&log).unwrap().to_bytes(),
    };
    let text = proof.to_text();
    assert!(text.starts_with("c2sp.org/tlog-proof@v1\nindex 0\n\nexample.com/srcos-test-log\n"));
    assert_eq!(TlogProof::parse(text.as_bytes()), Ok(proof.clone()));
    assert_eq!(proof.open(&log.verifier()).unwrap().0, cp);

    let with_empty_extra = TlogProof {
        extra: Some(vec![]),
        ..proof
    };
    let text = with_empty_extra.to_text();
    assert!(text.contains("\nextra \nindex 0\n"));
    assert_eq!(TlogProof::parse(text.as_bytes()), Ok(with_empty_extra));
}

// ---------------------------------------------------------------- checkpoints and keys

#[test]
fn checkpoint_round_trips_with_extensions_and_extremes() {
    let log = Signer::generate("example.com/log", KeyType::Ed25519).unwrap();
    for (size, extensions) in [
        (0u64, vec![]),
        (
            u64::MAX,
            vec!["ext one".to_string(), "— looks like a sig".to_string()],
        ),
        (42, vec!["x".to_string()]),
    ] {
        let cp = Checkpoint {
            origin: "example.com/log".into(),
            size,
            root: [7; 32],
            extensions,
        };
        let note = cp.sign(&log).unwrap();
        assert_eq!(Checkpoint::parse(&cp.to_text()), Ok(cp.clone()));
        let (back, _) = open_checkpoint(&note.to_bytes(), &log.verifier()).unwrap();
        assert_eq!(back, cp);
    }
}

#[test]
fn checkpoint_key_name_may_differ_from_origin() {
    let log = Signer::generate("other-name", KeyType::Ed25519).unwrap();
    let cp = Checkpoint::parse(C2SP_CHECKPOINT).unwrap();
    let note = cp.sign(&log).unwrap();
    assert_eq!(
        open_checkpoint(&note.to_bytes(), &log.verifier())
            .unwrap()
            .0,
        cp
    );
}

#[test]
fn generated_keys_round_trip() {
    for t in [KeyType::Ed25519, KeyType::CosignatureV1] {
        let s = Signer::generate("example.com/k", t).unwrap();
        let again = Signer::from_private_key_string(&s.to_private_key_string()).unwrap();
        assert_eq!(again.verifier(), s.verifier());
        assert_eq!(
            Verifier::from_vkey(&s.verifier().to_vkey()),
            Ok(s.verifier())
        );
        assert_eq!(s.key_id(), s.verifier().key_id());
        assert_eq!(s.key_type(), t);
        let sig = s.sign_bytes(b"dsse payload");
        assert!(s.verifier().verify_bytes(b"dsse payload", &sig));
        assert!(!s.verifier().verify_bytes(b"dsse payload!", &sig));
        assert!(!s.verifier().verify_bytes(b"dsse payload", &sig[..63]));
    }
}

#[test]
fn signer_debug_redacts_the_seed() {
    let s = Signer::from_private_key_string(XMOD_KEY).unwrap();
    let dbg = format!("{s:?} {s:#?}");
    assert!(dbg.contains("PeterNeumann"));
    assert!(dbg.contains("redacted"));
    let seed_b64 = XMOD_KEY.rsplit('+').next().unwrap();
    assert!(!dbg.contains(seed_b64));
    assert!(!dbg.contains("129, 10, 20")); // no byte-list rendering of the seed
    assert!(!dbg.to_lowercase().contains("810a14")); // nor hex (seed starts 81 0a 14)
}

#[test]
fn text_with_blank_lines_round_trips() {
    let s = Signer::generate("k", KeyType::Ed25519).unwrap();
    for text in [
        "\n",
        "a\n\nb\n",
        "a\n\n",
        "\n\n\n",
        "x\n\n\u{2014} k AAAA\n",
    ] {
        let n = Note::new_signed(text, &[&s]).unwrap();
        let back = Note::parse(&n.to_bytes()).unwrap();
        assert_eq!(back.text(), text);
        assert_eq!(back, n);
        assert_eq!(back.verify(&[s.verifier()]).unwrap().len(), 1);
    }
}

// ---------------------------------------------------------------- property: round trips

fn text_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec("[ -~\u{a0}-\u{2fff}\u{7f}]{0,30}", 1..8).prop_map(|lines| {
        let mut t = lines.join("\n");
        t.push('\n');
        t
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn parse_of_to_bytes_is_identity(text in text_strategy(), n_signers in 1usize..4, ts in 0u64..=(i64::MAX as u64)) {
        let signers: Vec<Signer> = (0..n_signers)
            .map(|i| Signer::from_seed(&format!("example.com/s{i}"), KeyType::Ed25519, &seed(i as u8 * 32)).unwrap())
            .collect();
        let refs: Vec<&Signer> = signers.iter().collect();
        let mut note = Note::new_signed(&text, &refs).unwrap();
        let w = Signer::from_seed("w", KeyType::CosignatureV1, &seed(200)).unwrap();
        note.add_signature(cosign(note.text(), &w, ts).unwrap()).unwrap();

        let back = Note::parse(&note.to_bytes()).unwrap();
        prop_assert_eq!(&back, &note);
        let mut known: Vec<Verifier> = signers.iter().map(Signer::verifier).collect();
        known.push(w.verifier());
        let ok = back.verify(&known).unwrap();
        prop_assert_eq!(ok.len(), n_signers + 1);
        prop_assert_eq!(ok[n_signers].timestamp, Some(ts));
    }

    #[test]
    fn checkpoint_text_round_trips(origin in "[!-~]{1,40}", size: u64, root: [u8; 32],
                                   exts in prop::collection::vec("[ -~]{1,20}", 0..3)) {
        let cp = Checkpoint { origin, size, root, extensions: exts };
        prop_assert_eq!(Checkpoint::parse(&cp.to_text()), Ok(cp));
    }

    #[test]
    fn tlog_proof_round_trips(index: u64, extra in prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
                              hashes in prop::collection::vec(any::<[u8; 32]>(), 0..64)) {
        let proof = TlogProof { index, extra, hashes, checkpoint: SUM_NOTE.as_bytes().to_vec() };
        prop_assert_eq!(TlogProof::parse(&proof.to_bytes()), Ok(proof));
    }
}
