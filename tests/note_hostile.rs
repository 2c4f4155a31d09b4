//! Hostile input for the note module: every case asserts the specific
//! error variant, and property tests check that no parser panics.

use proptest::prelude::*;
use srcos_catalog::note::*;

const XMOD_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const XMOD_NOTE: &str = include_str!("../log-format/vectors/note/xmod-peterneumann-enochroot.note");
const SUM_VKEY: &str = include_str!("../log-format/vectors/note/sum-golang-org.vkey");
const SUM_NOTE: &str = include_str!("../log-format/vectors/note/sum-golang-org-6476701.note");
const PROOF: &str = include_str!("../log-format/vectors/note/selfmade-entry1.tlog-proof");
const W1_VKEY: &str = "witness.example/w1+e75f6532+BAOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4";
const CP_TEXT: &str =
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

fn peter() -> Verifier {
    Verifier::from_vkey(XMOD_VKEY).unwrap()
}

fn enoch() -> Verifier {
    Verifier::from_vkey(ENOCH_VKEY).unwrap()
}

fn w1() -> Signer {
    Signer::from_seed(
        "witness.example/w1",
        KeyType::CosignatureV1,
        &std::array::from_fn(|i| i as u8),
    )
    .unwrap()
}

fn signer(name: &str) -> Signer {
    Signer::generate(name, KeyType::Ed25519).unwrap()
}

fn parse(s: &str) -> Result<Note, NoteError> {
    Note::parse(s.as_bytes())
}

fn is_malformed<T: std::fmt::Debug>(r: Result<T, NoteError>) -> bool {
    matches!(r, Err(NoteError::Malformed(_)))
}

// ---------------------------------------------------------------- framing

#[test]
fn truncated_notes() {
    let bytes = XMOD_NOTE.as_bytes();
    let first_sig_end = XMOD_NOTE.find("\u{2014} EnochRoot").unwrap();
    for cut in 0..bytes.len() {
        let r = Note::parse(&bytes[..cut]);
        if cut == first_sig_end {
            // Cut exactly between two signature lines: a valid note with one signature.
            assert_eq!(r.unwrap().signatures().len(), 1);
        } else if std::str::from_utf8(&bytes[..cut]).is_err() {
            assert_eq!(r, Err(NoteError::NotUtf8), "cut {cut}");
        } else {
            assert!(is_malformed(r.clone()), "cut {cut}: {r:?}");
        }
    }
}

#[test]
fn empty_and_garbage() {
    assert!(is_malformed(parse("")));
    assert!(is_malformed(parse("\n")));
    assert!(is_malformed(parse("\n\n")));
    assert!(is_malformed(parse("garbage")));
    assert!(is_malformed(parse("garbage\n\ngarbage\n")));
    assert!(is_malformed(parse("text\n\n\u{2014}\n")));
}

#[test]
fn missing_blank_line() {
    let s = XMOD_NOTE.replacen("problem is.\n\n", "problem is.\n", 1);
    assert!(is_malformed(parse(&s)));
}

#[test]
fn missing_final_newline() {
    let s = XMOD_NOTE.strip_suffix('\n').unwrap();
    assert!(is_malformed(parse(s)));
}

#[test]
fn text_without_signatures_after_blank_line_at_end() {
    // Blank line after the signatures: the last "\n\n" is now there.
    let s = format!("{XMOD_NOTE}\n");
    assert!(is_malformed(parse(&s)));
}

#[test]
fn bad_utf8() {
    let mut b = XMOD_NOTE.as_bytes().to_vec();
    b[3] = 0xff;
    assert_eq!(Note::parse(&b), Err(NoteError::NotUtf8));
    // Overlong encoding of '/' and a lone surrogate.
    assert_eq!(Note::parse(b"a\xc0\xaf\n\n"), Err(NoteError::NotUtf8));
    assert_eq!(Note::parse(b"a\xed\xa0\x80\n\n"), Err(NoteError::NotUtf8));
}

#[test]
fn control_characters() {
    for (i, c) in [
        (0usize, '\0'),
        (2, '\r'),
        (5, '\t'),
        (1, '\u{1b}'),
        (7, '\u{0b}'),
    ] {
        let mut s = XMOD_NOTE.to_string();
        s.insert(i, c);
        assert_eq!(
            parse(&s),
            Err(NoteError::ControlCharacter {
                offset: i,
                byte: c as u8
            }),
            "{c:?}"
        );
    }
    let crlf = XMOD_NOTE.replace('\n', "\r\n");
    assert!(matches!(
        parse(&crlf),
        Err(NoteError::ControlCharacter { byte: b'\r', .. })
    ));
    // A control character inside a signature line.
    let s = XMOD_NOTE.replacen("PeterNeumann x08", "PeterNeumann\tx08", 1);
    assert!(matches!(
        parse(&s),
        Err(NoteError::ControlCharacter { byte: b'\t', .. })
    ));
    // DEL and C1 controls are not ASCII controls below U+0020: allowed, as in the spec.
    let s = XMOD_NOTE.replacen("If you", "If\u{7f}\u{85} you", 1);
    assert!(parse(&s).is_ok());
}

#[test]
fn bad_signature_line_prefix() {
    for bad in [
        "- PeterNeumann x08go",
        "\u{2014}PeterNeumann x08go",
        "\u{2013} PeterNeumann x08go",
        " \u{2014} a AAAAAAA=",
    ] {
        let s = format!("text\n\n{bad}\n");
        assert!(is_malformed(parse(&s)), "{bad:?}");
    }
    assert!(is_malformed(NoteSignature::parse_line(
        "\u{2014} nosignature"
    )));
}

#[test]
fn bad_names_in_signature_lines() {
    for name in ["a+b", "", "a\u{a0}b", "a\u{2003}b"] {
        let s = format!("text\n\n\u{2014} {name} AAAAAAA=\n");
        assert_eq!(
            parse(&s),
            Err(NoteError::BadKeyName(name.into())),
            "{name:?}"
        );
    }
}

#[test]
fn bad_base64_in_signature() {
    for b64 in [
        "AAAAAAA",   // missing padding
        "AAAAAAB=",  // non-canonical trailing bits
        "AAAA AAA=", // embedded space (double space after name is the same case)
        "AAAAAA-_",  // URL-safe alphabet
        "AAAAAAA==", // too much padding
        "!!!!",
    ] {
        let s = format!("text\n\n\u{2014} name {b64}\n");
        assert_eq!(
            parse(&s),
            Err(NoteError::BadBase64 { field: "signature" }),
            "{b64:?}"
        );
    }
    let s = "text\n\n\u{2014} name  AAAAAAA=\n";
    assert_eq!(parse(s), Err(NoteError::BadBase64 { field: "signature" }));
}

#[test]
fn signature_too_short() {
    // 4 bytes: a key ID and no signature.
    assert!(is_malformed(parse("text\n\n\u{2014} name AAAAAA==\n")));
    assert!(is_malformed(parse("text\n\n\u{2014} name \n")));
}

#[test]
fn too_many_signatures() {
    let line = "\u{2014} someone AAAAAAA=\n";
    let ok = format!("text\n\n{}", line.repeat(MAX_SIGNATURES));
    assert_eq!(parse(&ok).unwrap().signatures().len(), MAX_SIGNATURES);
    let bad = format!("text\n\n{}", line.repeat(MAX_SIGNATURES + 1));
    assert_eq!(parse(&bad), Err(NoteError::TooManySignatures));
}

#[test]
fn too_large() {
    let mut big = vec![b'a'; MAX_NOTE_SIZE + 1];
    let tail = format!("\n\n{PETER_SIG}");
    let n = big.len();
    big[n - tail.len()..].copy_from_slice(tail.as_bytes());
    assert_eq!(
        Note::parse(&big),
        Err(NoteError::TooLarge {
            size: MAX_NOTE_SIZE + 1,
            max: MAX_NOTE_SIZE
        })
    );
    // The size cap comes first, before UTF-8.
    let junk = vec![0xffu8; MAX_NOTE_SIZE + 1];
    assert!(matches!(
        Note::parse(&junk),
        Err(NoteError::TooLarge { .. })
    ));
    // Exactly at the limit is parsed.
    let exact = &big[1..];
    assert_eq!(exact.len(), MAX_NOTE_SIZE);
    assert!(Note::parse(exact).is_ok());
    // Signing a text that would produce an oversized note is refused.
    let text = "a".repeat(MAX_NOTE_SIZE - 50) + "\n";
    assert!(matches!(
        Note::new_signed(&text, &[&signer("k")]),
        Err(NoteError::TooLarge { .. })
    ));
}

// ---------------------------------------------------------------- verification

#[test]
fn signature_from_unknown_key_only() {
    let n = parse(XMOD_NOTE).unwrap();
    let stranger = signer("stranger").verifier();
    assert_eq!(n.verify(&[stranger]), Err(NoteError::NoVerifiedSignature));
    assert_eq!(n.verify(&[]), Err(NoteError::NoVerifiedSignature));
}

#[test]
fn wrong_key_id_in_signature_is_ignored() {
    // Known name, different key ID: treated as an unknown key.
    let n = parse(&format!(
        "{}\n{}",
        "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n",
        PETER_SIG.replacen("x08g", "AAAA", 1)
    ))
    .unwrap();
    assert_ne!(n.signatures()[0].key_id, peter().key_id());
    assert_eq!(n.verify(&[peter()]), Err(NoteError::NoVerifiedSignature));
}

#[test]
fn bad_signature_from_known_key() {
    // Flip one bit of the signature (not the key ID).
    let tampered = XMOD_NOTE.replacen("x08go/ZJkuBS9UG", "x08go/ZJkuBS9UH", 1);
    let n = parse(&tampered).unwrap();
    let expect = Err(NoteError::InvalidSignature {
        name: "PeterNeumann".into(),
    });
    assert_eq!(n.verify(&[peter()]), expect);
    // Even if another trusted key verifies.
    assert_eq!(n.verify(&[enoch(), peter()]), expect);
    // Tampered text: both fail, the first known one is reported.
    let n = parse(&XMOD_NOTE.replacen("answer", "Answer", 1)).unwrap();
    assert_eq!(
        n.verify(&[enoch()]),
        Err(NoteError::InvalidSignature {
            name: "EnochRoot".into()
        })
    );
}

#[test]
fn repeated_signature_lines_are_all_checked() {
    // Go skips a repeated line from the same key; we verify every one.
    let good = parse(XMOD_NOTE).unwrap();
    let mut s = XMOD_NOTE.to_string();
    s.push_str(&PETER_SIG.replacen("x08go/ZJkuBS9UG", "x08go/ZJkuBS9UH", 1));
    let n = parse(&s).unwrap();
    assert_eq!(n.signatures().len(), 3);
    assert_eq!(
        n.verify(&[peter()]),
        Err(NoteError::InvalidSignature {
            name: "PeterNeumann".into()
        })
    );
    // Identical repeats verify and are reported once.
    let n = parse(&format!("{XMOD_NOTE}{PETER_SIG}")).unwrap();
    assert_eq!(
        n.verify(&[peter()]).unwrap(),
        good.verify(&[peter()]).unwrap()
    );
}

#[test]
fn wrong_length_signature_from_known_ed25519_key() {
    let text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    // Key ID c74f20a3 followed by 3 bytes.
    let n = parse(&format!("{text}\n\u{2014} PeterNeumann x08gowAAAA==\n")).unwrap();
    assert_eq!(
        n.verify(&[peter()]),
        Err(NoteError::InvalidSignature {
            name: "PeterNeumann".into()
        })
    );
}

// ---------------------------------------------------------------- key strings

#[test]
fn bad_vkeys() {
    use NoteError::*;
    type Check = fn(&NoteError) -> bool;
    let cases: Vec<(String, Check)> = vec![
        // Wrong key ID.
        (XMOD_VKEY.replace("c74f20a3", "c74f20a4"), |e| {
            matches!(
                e,
                KeyIdMismatch {
                    found: 0xc74f20a4,
                    computed: 0xc74f20a3,
                    ..
                }
            )
        }),
        // Right key ID, upper case.
        (XMOD_VKEY.replace("c74f20a3", "C74F20A3"), |e| {
            matches!(e, BadKeyString(_))
        }),
        (XMOD_VKEY.replace("c74f20a3", "c74f20a"), |e| {
            matches!(e, BadKeyString(_))
        }),
        (XMOD_VKEY.replace("c74f20a3", "0xc74f20a"), |e| {
            matches!(e, BadKeyString(_))
        }),
        (XMOD_VKEY.replace("c74f20a3", "+c74f20a3"), |e| {
            matches!(e, BadKeyString(_))
        }),
        // Unsupported type bytes 0x02 (ECDSA) and 0x06 (ML-DSA), missing type.
        (
            "a+00000000+AhpcDcQc8OExB6DDBvOEqqIH7FZKaqr8sMTiLNbLXRNY".into(),
            |e| *e == UnsupportedKeyType(2),
        ),
        ("a+00000000+Bhpc".into(), |e| *e == UnsupportedKeyType(6)),
        ("a+00000000+".into(), |e| matches!(e, BadKeyString(_))),
        // 31-byte and 33-byte keys.
        (
            "a+00000000+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10Q=".into(),
            |e| matches!(e, BadKeyString(_)),
        ),
        (
            "a+00000000+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWAA==".into(),
            |e| matches!(e, BadKeyString(_)),
        ),
        // Bad base64, non-canonical base64.
        (XMOD_VKEY.replace("ARpc", "AR*c"), |e| {
            *e == BadBase64 { field: "key" }
        }),
        (XMOD_VKEY.to_string() + "=", |e| {
            *e == BadBase64 { field: "key" }
        }),
        // Bad names.
        (XMOD_VKEY.replace("PeterNeumann", ""), |e| {
            *e == BadKeyName(String::new())
        }),
        (XMOD_VKEY.replace("PeterNeumann", "Peter Neumann"), |e| {
            matches!(e, BadKeyName(_))
        }),
        // Missing parts.
        ("PeterNeumann".into(), |e| matches!(e, BadKeyString(_))),
        ("PeterNeumann+c74f20a3".into(), |e| {
            matches!(e, BadKeyString(_))
        }),
        ("".into(), |e| matches!(e, BadKeyString(_))),
    ];
    for (vkey, want) in cases {
        let err = Verifier::from_vkey(&vkey).unwrap_err();
        assert!(want(&err), "{vkey:?} -> {err:?}");
    }
}

#[test]
fn bad_private_keys_do_not_leak_the_seed() {
    let good = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    let seed = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    let cases = [
        good.replace("c74f20a3", "c74f20a4"),
        good.replace("PRIVATE+KEY+", "PRIVATE+"),
        good.replace("+c74f20a3", ""),
        good.replace("PeterNeumann+c74f20a3+", ""),
        good.replace("AYEK", "AAEK"),
        good.replace("AYEK", "BYEK"),
        good.to_string() + "A",
    ];
    for s in &cases {
        let err = Signer::from_private_key_string(s).unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(&seed[4..20]), "{shown}");
    }
    assert!(matches!(
        Signer::from_private_key_string(&cases[0]),
        Err(NoteError::KeyIdMismatch { .. })
    ));
    assert!(matches!(
        Signer::from_private_key_string(&cases[1]),
        Err(NoteError::BadKeyString(_))
    ));
    // Changing the type byte changes the key ID.
    assert!(matches!(
        Signer::from_private_key_string(&cases[5].replace("BYEK", "BIEK")),
        Err(NoteError::KeyIdMismatch { .. })
    ));
}

#[test]
fn bad_signer_names() {
    for name in [
        "",
        "a b",
        "a+b",
        "a\tb",
        "a\nb",
        "a\u{a0}b",
        "a\u{3000}b",
        "a\u{1}b",
    ] {
        for t in [KeyType::Ed25519, KeyType::CosignatureV1] {
            assert_eq!(
                Signer::generate(name, t).unwrap_err(),
                NoteError::BadKeyName(name.into()),
                "{name:?}"
            );
        }
    }
}

// ---------------------------------------------------------------- signing

#[test]
fn new_signed_refuses_bad_input() {
    let s = signer("k");
    assert!(is_malformed(Note::new_signed("", &[&s])));
    assert!(is_malformed(Note::new_signed("no newline", &[&s])));
    assert!(is_malformed(Note::new_signed("x\n", &[])));
    assert_eq!(
        Note::new_signed("a\rb\n", &[&s]),
        Err(NoteError::ControlCharacter {
            offset: 1,
            byte: b'\r'
        })
    );
    assert_eq!(
        Note::new_signed("x\n", &[&w1()]),
        Err(NoteError::WrongKeyType {
            expected: KeyType::Ed25519,
            got: KeyType::CosignatureV1
        })
    );
    assert_eq!(
        Note::new_signed("x\n", &[&s, &s]),
        Err(NoteError::DuplicateSignature {
            name: "k".into(),
            key_id: s.key_id()
        })
    );
    let many: Vec<Signer> = (0..=MAX_SIGNATURES)
        .map(|i| signer(&format!("k{i}")))
        .collect();
    let refs: Vec<&Signer> = many.iter().collect();
    assert_eq!(
        Note::new_signed("x\n", &refs),
        Err(NoteError::TooManySignatures)
    );
    assert_eq!(
        Note::new_signed("x\n", &refs[..MAX_SIGNATURES])
            .unwrap()
            .signatures()
            .len(),
        MAX_SIGNATURES
    );
}

#[test]
fn add_signature_refuses_bad_lines() {
    let s = signer("k");
    let mut n = Note::new_signed("x\n", &[&s]).unwrap();
    let before = n.clone();
    let sig = |name: &str, bytes: Vec<u8>| NoteSignature {
        name: name.into(),
        key_id: 1,
        signature: bytes,
    };
    assert_eq!(
        n.add_signature(sig("a b", vec![1])),
        Err(NoteError::BadKeyName("a b".into()))
    );
    assert!(is_malformed(n.add_signature(sig("a", vec![]))));
    for i in 1..MAX_SIGNATURES {
        n.add_signature(sig(&format!("w{i}"), vec![1; 72])).unwrap();
    }
    assert_eq!(n.signatures().len(), MAX_SIGNATURES);
    assert_eq!(
        n.add_signature(sig("one-too-many", vec![1])),
        Err(NoteError::TooManySignatures)
    );
    // Replacing an existing (name, key ID) is still fine at the cap.
    n.add_signature(sig("w1", vec![2; 72])).unwrap();
    assert_eq!(n.signatures().len(), MAX_SIGNATURES);
    assert_eq!(Note::parse(&n.to_bytes()), Ok(n.clone()));
    // A failed add leaves the note unchanged.
    let mut m = before.clone();
    assert!(matches!(
        m.add_signature(sig("big", vec![0; MAX_NOTE_SIZE])),
        Err(NoteError::TooLarge { .. })
    ));
    assert_eq!(m, before);
}

// ---------------------------------------------------------------- checkpoints

#[test]
fn bad_checkpoints() {
    let root = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";
    let bad_cp = |s: String| matches!(Checkpoint::parse(&s), Err(NoteError::BadCheckpoint(_)));
    // Leading zeros, signs, spaces, overflow, hex, empty size.
    for size in [
        "020852163",
        "00",
        "+1",
        "-1",
        " 1",
        "1 ",
        "18446744073709551616",
        "0x10",
        "",
        "1e3",
        "\u{661}",
    ] {
        assert!(bad_cp(format!("o\n{size}\n{root}\n")), "{size:?}");
    }
    assert!(Checkpoint::parse(&format!("o\n18446744073709551615\n{root}\n")).is_ok());
    // 31-byte and 33-byte roots.
    assert!(bad_cp(
        "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxqw==\n".into()
    ));
    assert!(bad_cp(
        "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2IA\n".into()
    ));
    assert!(bad_cp("o\n1\n\n".into()));
    // Non-canonical base64 root: last char carries non-zero unused bits.
    assert_eq!(
        Checkpoint::parse("o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n"),
        Err(NoteError::BadBase64 { field: "root hash" })
    );
    // Unpadded, URL-safe.
    assert_eq!(
        Checkpoint::parse("o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n"),
        Err(NoteError::BadBase64 { field: "root hash" })
    );
    assert_eq!(
        Checkpoint::parse("o\n1\nCsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=\n"),
        Err(NoteError::BadBase64 { field: "root hash" })
    );
    // Empty extension line (also in the middle), missing lines, empty origin, no final newline.
    assert!(bad_cp(format!("o\n1\n{root}\n\n")));
    assert!(bad_cp(format!("o\n1\n{root}\next\n\nmore\n")));
    assert!(bad_cp("o\n1\n".into()));
    assert!(bad_cp("o\n".into()));
    assert!(bad_cp(String::new()));
    assert!(bad_cp(format!("\n1\n{root}\n")));
    assert!(bad_cp(format!("o\n1\n{root}")));
    assert_eq!(
        Checkpoint::parse(&format!("o\r\n1\n{root}\n")),
        Err(NoteError::ControlCharacter {
            offset: 1,
            byte: b'\r'
        })
    );
}

#[test]
fn checkpoint_sign_refuses_unrepresentable_fields() {
    let s = signer("log");
    let ok = Checkpoint {
        origin: "log".into(),
        size: 1,
        root: [0; 32],
        extensions: vec![],
    };
    for bad in [
        Checkpoint {
            origin: String::new(),
            ..ok.clone()
        },
        Checkpoint {
            origin: "a\nb".into(),
            ..ok.clone()
        },
        Checkpoint {
            extensions: vec![String::new()],
            ..ok.clone()
        },
        Checkpoint {
            extensions: vec!["a\nb".into()],
            ..ok.clone()
        },
    ] {
        assert!(
            matches!(bad.sign(&s), Err(NoteError::BadCheckpoint(_))),
            "{bad:?}"
        );
    }
    let tab = Checkpoint {
        origin: "a\tb".into(),
        ..ok.clone()
    };
    assert!(matches!(
        tab.sign(&s),
        Err(NoteError::ControlCharacter { .. })
    ));
    assert!(matches!(
        ok.sign(&w1()),
        Err(NoteError::WrongKeyType { .. })
    ));
}

#[test]
fn open_checkpoint_failures() {
    let log = Verifier::from_vkey(SUM_VKEY).unwrap();
    // Right note, wrong key.
    assert_eq!(
        open_checkpoint(SUM_NOTE.as_bytes(), &peter()),
        Err(NoteError::NoVerifiedSignature)
    );
    // Tampered size.
    let tampered = SUM_NOTE.replacen("6476701", "6476702", 1);
    assert_eq!(
        open_checkpoint(tampered.as_bytes(), &log),
        Err(NoteError::InvalidSignature {
            name: "sum.golang.org".into()
        })
    );
    // A valid signature over a text that is not a checkpoint.
    let s = signer("log");
    let n = Note::new_signed("log\n01\nAAAA\n", &[&s]).unwrap();
    assert!(matches!(
        open_checkpoint(&n.to_bytes(), &s.verifier()),
        Err(NoteError::BadCheckpoint(_))
    ));
    // The log key must be a note key, not a cosignature key.
    assert_eq!(
        open_checkpoint(SUM_NOTE.as_bytes(), &w1().verifier()),
        Err(NoteError::WrongKeyType {
            expected: KeyType::Ed25519,
            got: KeyType::CosignatureV1
        })
    );
}

// ---------------------------------------------------------------- cosignatures

#[test]
fn cosignature_failures() {
    let w = w1();
    let v = w.verifier();
    let good = cosign(CP_TEXT, &w, 1679315147).unwrap();
    assert_eq!(verify_cosignature(CP_TEXT, &good, &v), Ok(1679315147));

    // Wrong lengths.
    for len in [0usize, 8, 64, 71, 73, 76] {
        let mut sig = good.clone();
        sig.signature.resize(len, 0);
        assert_eq!(
            verify_cosignature(CP_TEXT, &sig, &v),
            Err(NoteError::BadSignatureLength {
                name: "witness.example/w1".into(),
                expected: 72,
                got: len
            }),
            "{len}"
        );
    }
    // Changed timestamp, changed text.
    let mut sig = good.clone();
    sig.signature[7] ^= 1;
    assert_eq!(
        verify_cosignature(CP_TEXT, &sig, &v),
        Err(NoteError::InvalidSignature {
            name: "witness.example/w1".into()
        })
    );
    assert_eq!(
        verify_cosignature(&CP_TEXT.replace("20852163", "20852164"), &good, &v),
        Err(NoteError::InvalidSignature {
            name: "witness.example/w1".into()
        })
    );
    // Timestamp above 2^63-1.
    let mut sig = good.clone();
    sig.signature[0] = 0x80;
    assert_eq!(
        verify_cosignature(CP_TEXT, &sig, &v),
        Err(NoteError::TimestampOutOfRange(0x8000_0000_6418_50cb))
    );
    assert_eq!(
        cosign(CP_TEXT, &w, 1 << 63),
        Err(NoteError::TimestampOutOfRange(1 << 63))
    );
    assert!(cosign(CP_TEXT, &w, (1 << 63) - 1).is_ok());
    // Wrong key types.
    let ed = signer("witness.example/w1");
    assert!(matches!(
        cosign(CP_TEXT, &ed, 1),
        Err(NoteError::WrongKeyType { .. })
    ));
    assert!(matches!(
        verify_cosignature(CP_TEXT, &good, &ed.verifier()),
        Err(NoteError::WrongKeyType { .. })
    ));
    // The same Ed25519 key as a 0x01 key has another key ID: the line does not match it.
    // Line from another key name / ID.
    let mut other = good.clone();
    other.key_id ^= 1;
    assert!(matches!(
        verify_cosignature(CP_TEXT, &other, &v),
        Err(NoteError::KeyIdMismatch { .. })
    ));
    let mut other = good.clone();
    other.name = "witness.example/w2".into();
    assert!(matches!(
        verify_cosignature(CP_TEXT, &other, &v),
        Err(NoteError::KeyIdMismatch { .. })
    ));
    // Bad note text.
    assert!(is_malformed(cosign("no newline", &w, 1)));
    // Official vkey parsed from its string behaves the same.
    assert_eq!(Verifier::from_vkey(W1_VKEY), Ok(v));
}

#[test]
fn cosignature_line_of_wrong_length_in_note() {
    let w = w1();
    let log = signer("log");
    let mut n = Note::new_signed(CP_TEXT, &[&log]).unwrap();
    let mut sig = cosign(CP_TEXT, &w, 5).unwrap();
    sig.signature.truncate(64);
    n.add_signature(sig).unwrap();
    let n = Note::parse(&n.to_bytes()).unwrap();
    assert_eq!(
        n.verify(&[log.verifier(), w.verifier()]),
        Err(NoteError::BadSignatureLength {
            name: "witness.example/w1".into(),
            expected: 72,
            got: 64
        })
    );
    // Without the witness key it is just an unknown signature.
    assert_eq!(n.verify(&[log.verifier()]).unwrap().len(), 1);
}

#[test]
fn ed25519_signature_does_not_pass_as_cosignature() {
    // A 0x01 signature by the same key material, relabelled with the 0x04 key ID.
    let w = w1();
    let seed: [u8; 32] = std::array::from_fn(|i| i as u8);
    let ed = Signer::from_seed("witness.example/w1", KeyType::Ed25519, &seed).unwrap();
    let n = Note::new_signed(CP_TEXT, &[&ed]).unwrap();
    let mut sig = n.signatures()[0].clone();
    sig.key_id = w.key_id();
    assert!(matches!(
        verify_cosignature(CP_TEXT, &sig, &w.verifier()),
        Err(NoteError::BadSignatureLength { got: 64, .. })
    ));
    let mut padded = sig.clone();
    padded.signature.splice(0..0, [0u8; 8]);
    assert!(matches!(
        verify_cosignature(CP_TEXT, &padded, &w.verifier()),
        Err(NoteError::InvalidSignature { .. })
    ));
}

// ---------------------------------------------------------------- tlog-proof

#[test]
fn bad_tlog_proofs() {
    let proof_err = |s: &str| TlogProof::parse(s.as_bytes()).unwrap_err();
    let bad_proof = |s: &str| matches!(proof_err(s), NoteError::BadProof(_));
    let hash0 = "dziFphNIniTOLPdhmdakI/BC5LvxLX7s7pEu8nbGVwE=";
    assert!(bad_proof(&PROOF.replace("@v1", "@v2")));
    assert!(bad_proof(&PROOF.replacen(
        "c2sp.org/tlog-proof@v1\n",
        "",
        1
    )));
    assert!(bad_proof(&PROOF.replacen("index 1\n", "", 1)));
    assert!(bad_proof(&PROOF.replacen("index 1", "index 01", 1)));
    assert!(bad_proof(&PROOF.replacen("index 1", "index -1", 1)));
    assert!(bad_proof(&PROOF.replacen("index 1", "index  1", 1)));
    assert!(bad_proof(&PROOF.replacen(
        "index 1",
        "index 18446744073709551616",
        1
    )));
    assert!(bad_proof(&PROOF.replacen("index 1", "Index 1", 1)));
    assert!(bad_proof(&PROOF.replacen("index 1", "index 1\u{a0}", 1)));
    assert!(bad_proof(""));
    assert!(bad_proof("c2sp.org/tlog-proof@v1"));
    assert!(bad_proof("c2sp.org/tlog-proof@v1\nindex 1\n"));
    assert!(bad_proof(&format!(
        "c2sp.org/tlog-proof@v1\nindex 1\n{hash0}\n"
    )));
    assert!(bad_proof(&PROOF.replace('\n', "\r\n")));
    // extra after index is read as a proof hash and fails base64.
    let moved = PROOF.replacen(
        "extra ZW50cnkgMQ==\nindex 1\n",
        "index 1\nextra ZW50cnkgMQ==\n",
        1,
    );
    assert_eq!(
        proof_err(&moved),
        NoteError::BadBase64 {
            field: "proof hash"
        }
    );
    // Bad extra, bad hashes.
    assert_eq!(
        proof_err(&PROOF.replacen("ZW50cnkgMQ==", "ZW50cnkgMQ", 1)),
        NoteError::BadBase64 {
            field: "extra data"
        }
    );
    assert_eq!(
        proof_err(&PROOF.replacen("GVwE=", "GVwF=", 1)),
        NoteError::BadBase64 {
            field: "proof hash"
        }
    );
    assert!(bad_proof(&PROOF.replacen(
        hash0,
        "dziFphNIniTOLPdhmdakI/BC5LvxLX7s7pEu8nbGVw==",
        1
    )));
    // Too many hashes.
    let many = format!("{hash0}\n").repeat(MAX_PROOF_HASHES + 1);
    assert!(bad_proof(&PROOF.replacen(&format!("{hash0}\n"), &many, 1)));
    let max = format!("{hash0}\n").repeat(MAX_PROOF_HASHES - 1);
    assert_eq!(
        TlogProof::parse(PROOF.replacen(&format!("{hash0}\n"), &max, 1).as_bytes())
            .unwrap()
            .hashes
            .len(),
        MAX_PROOF_HASHES
    );
    // The checkpoint part must be a signed checkpoint note.
    let head_end = PROOF.find("\n\n").unwrap() + 2;
    let head = &PROOF[..head_end];
    assert!(is_malformed(TlogProof::parse(head.as_bytes())));
    assert!(is_malformed(TlogProof::parse(
        format!("{head}garbage").as_bytes()
    )));
    assert!(matches!(
        TlogProof::parse(format!("{head}x\n01\nAA==\n\n{PETER_SIG}").as_bytes()),
        Err(NoteError::BadCheckpoint(_))
    ));
    assert_eq!(
        TlogProof::parse(format!("{head}\u{0}").as_bytes()),
        Err(NoteError::ControlCharacter { offset: 0, byte: 0 })
    );
    let mut bytes = PROOF.as_bytes().to_vec();
    bytes.push(0xff);
    assert_eq!(TlogProof::parse(&bytes), Err(NoteError::NotUtf8));
    // Too large.
    let big = vec![b'a'; MAX_NOTE_SIZE + 1];
    assert!(matches!(
        TlogProof::parse(&big),
        Err(NoteError::TooLarge { .. })
    ));
}

#[test]
fn tlog_proof_open_checks_index_and_key() {
    let log = Verifier::from_vkey(include_str!(
        "../log-format/vectors/note/selfmade-test-log.vkey"
    ))
    .unwrap();
    let mut p = TlogProof::parse(PROOF.as_bytes()).unwrap();
    assert!(p.open(&log).is_ok());
    assert_eq!(p.open(&peter()), Err(NoteError::NoVerifiedSignature));
    p.index = 3;
    assert!(matches!(p.open(&log), Err(NoteError::BadProof(_))));
}

// ---------------------------------------------------------------- no panics

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (
            any::<usize>(),
            prop::sample::select(vec![
                b'\n', b' ', b'+', b'=', 0xe2, 0x80, 0x94, b'0', b'A', 0, 0xff
            ])
        )
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(mut b: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let n = b.len().max(1);
        match *m {
            Mutation::Flip(i, x) => {
                if let Some(c) = b.get_mut(i % n) {
                    *c ^= x;
                }
            }
            Mutation::Insert(i, x) => b.insert(i % (b.len() + 1), x),
            Mutation::Delete(i) => {
                if !b.is_empty() {
                    b.remove(i % n);
                }
            }
            Mutation::Truncate(i) => b.truncate(i % n),
        }
    }
    b
}

fn exercise(bytes: &[u8]) {
    let known = [peter(), enoch(), w1().verifier()];
    if let Ok(n) = Note::parse(bytes) {
        // Whatever parses must serialise back to the same bytes.
        assert_eq!(n.to_bytes(), bytes);
        let _ = n.verify(&known);
        let _ = Checkpoint::parse(n.text());
        for s in n.signatures() {
            let _ = verify_cosignature(n.text(), s, &known[2]);
        }
    }
    if let Ok(p) = TlogProof::parse(bytes) {
        assert_eq!(p.to_bytes(), bytes);
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        let _ = Checkpoint::parse(s);
        let _ = Verifier::from_vkey(s);
        let _ = Signer::from_private_key_string(s);
        let _ = NoteSignature::parse_line(s);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        exercise(&bytes);
    }

    #[test]
    fn arbitrary_text_never_panics(s in "[\\x00-\\x7f\u{2014}\u{a0}]{0,300}") {
        exercise(s.as_bytes());
        exercise(format!("{s}\n\n\u{2014} {s}\n").as_bytes());
    }

    #[test]
    fn mutated_notes_never_panic(which in 0usize..3, muts in prop::collection::vec(mutation(), 1..6)) {
        let base = [XMOD_NOTE, SUM_NOTE, PROOF][which];
        exercise(&apply(base.as_bytes().to_vec(), &muts));
    }
}
