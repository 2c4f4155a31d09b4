//! Batch verification (`note::batch`, ADR 0010) reaches `verify_strict`'s verdict on every
//! input: the published edge-case vectors, constructed malleable and small-order
//! signatures (which the unguarded `verify_batch` accepts), and random mixes of good and
//! bad signatures in one call (proptest).

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::scalar::Scalar;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use proptest::prelude::*;
use sha2::{Digest, Sha512};
use srcos_catalog::note::batch::{route, verify_strict_batch, Item, Route};

fn strict(key: &VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    <&[u8; 64]>::try_from(signature).is_ok_and(|b| {
        key.verify_strict(message, &Signature::from_bytes(b))
            .is_ok()
    })
}

/// Each item's batch verdict equals `verify_strict`'s, alone and all in one call.
fn assert_same_verdicts(items: &[(VerifyingKey, Vec<u8>, Vec<u8>)]) {
    let batch: Vec<Item<'_>> = items
        .iter()
        .map(|(key, message, signature)| Item {
            key,
            message,
            signature,
        })
        .collect();
    let together = verify_strict_batch(&batch);
    for (i, (key, message, signature)) in items.iter().enumerate() {
        let want = strict(key, message, signature);
        assert_eq!(together[i], want, "item {i} in one call");
        assert_eq!(verify_strict_batch(&batch[i..=i]), [want], "item {i} alone");
    }
}

fn signer(seed: u64) -> SigningKey {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    SigningKey::from_bytes(&bytes)
}

/// A signature by `key` on `message` whose R carries the small-order point `torsion`
/// and whose S satisfies the equation for that R: [S]B = R' − T + [k']A, so it is off by
/// exactly −T. `verify_strict` rejects it; a cofactored or unguarded batch check may not.
fn with_torsion_r(key: &SigningKey, message: &[u8], nonce: u64, torsion: usize) -> Vec<u8> {
    let r = Scalar::from(nonce) * Scalar::from(0x9e37_79b9_7f4a_7c15u64) + Scalar::ONE;
    let big_r = ED25519_BASEPOINT_POINT * r + EIGHT_TORSION[torsion];
    let r_bytes = big_r.compress().to_bytes();
    let k = Scalar::from_hash(
        Sha512::new()
            .chain_update(r_bytes)
            .chain_update(key.verifying_key().as_bytes())
            .chain_update(message),
    );
    let s = r + k * key.to_scalar();
    let mut out = r_bytes.to_vec();
    out.extend_from_slice(s.as_bytes());
    out
}

/// The group order ℓ, little-endian (RFC 8032 §5.1).
const ELL: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// S + ℓ: the same equation, a non-canonical S (malleability).
fn plus_ell(signature: &[u8]) -> Vec<u8> {
    let mut out = signature.to_vec();
    let mut carry = 0u16;
    for (i, l) in ELL.iter().enumerate() {
        let sum = u16::from(out[32 + i]) + u16::from(*l) + carry;
        out[32 + i] = sum as u8;
        carry = sum >> 8;
    }
    out
}

/// The ten edge cases of "Taming the many EdDSAs" (Chalkias, Garillot, Nikolaenko, SSR
/// 2020), as published in novifinancial/ed25519-speccheck `cases.json`: small-order A
/// and R, mixed-order A and R, cofactored-only equations, non-canonical R. Hex:
/// (message, public key, signature).
const TAMING: [(&str, &str, &str); 10] = [
    ("8c93255d71dcab10e8f379c26200f3c7bd5f09d9bc3068d3ef4edeb4853022b6", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a0000000000000000000000000000000000000000000000000000000000000000"),
    ("9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa", "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04"),
    ("aebf3f2601a0c8c5d39cc7d8911642f740b78168218da8471772b35f9d35b9ab", "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa8c4bd45aecaca5b24fb97bc10ac27ac8751a7dfe1baff8b953ec9f5833ca260e"),
    ("9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79", "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d", "9046a64750444938de19f227bb80485e92b83fdb4b6506c160484c016cc1852f87909e14428a7a1d62e9f22f3d3ad7802db02eb2e688b6c52fcd6648a98bd009"),
    ("e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c", "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d", "160a1cb0dc9c0258cd0a7d23e94d8fa878bcb1925f2c64246b2dee1796bed5125ec6bc982a269b723e0668e540911a9a6a58921d6925e434ab10aa7940551a09"),
    ("e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c", "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d", "21122a84e0b5fca4052f5b1235c80a537878b38f3142356b2c2384ebad4668b7e40bc836dac0f71076f9abe3a53f9c03c1ceeeddb658d0030494ace586687405"),
    ("85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40", "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623", "e96f66be976d82e60150baecff9906684aebb1ef181f67a7189ac78ea23b6c0e547f7690a0e2ddcd04d87dbc3490dc19b3b3052f7ff0538cb68afb369ba3a514"),
    ("85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40", "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623", "8ce5b96c8f26d0ab6c47958c9e68b937104cd36e13c33566acd2fe8d38aa19427e71f98a473474f2f13f06f97c20d58cc3f54b8bd0d272f42b695dd7e89a8c22"),
    ("fdaebc429f4a735932a160da1301080c13280eea8bc280d1b392c6b9e6ba3a5a", "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43", "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f454d370c8d9fc323a41450f8d513eafeb5b0697390c1e505a0d4ddc71f566607"),
    ("84b698d39be126ff55fe45079e6c8bf64a0d7db6994560b4e96b7021eb39c1a1", "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43", "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f084d5b99c2a9463d9c8bd5026916996984eeec87ddf1d3be329006ace1b37b09"),
];

#[test]
fn the_taming_the_many_eddsas_vectors_get_verify_stricts_verdict() {
    let mut items = Vec::new();
    let mut verdicts = Vec::new();
    for (i, (message, key, signature)) in TAMING.iter().enumerate() {
        let key: [u8; 32] = hex::decode(key).unwrap().try_into().unwrap();
        // A key that does not decode is refused before any signature check.
        let Ok(key) = VerifyingKey::from_bytes(&key) else {
            continue;
        };
        let (message, signature) = (
            hex::decode(message).unwrap(),
            hex::decode(signature).unwrap(),
        );
        verdicts.push((i, strict(&key, &message, &signature)));
        items.push((key, message, signature));
    }
    assert!(items.len() >= 8, "most cases have a decodable key");
    // verify_strict accepts some (mixed-order points whose exact equation holds) and
    // rejects the rest: both kinds are exercised.
    assert!(
        verdicts.iter().any(|v| v.1) && verdicts.iter().any(|v| !v.1),
        "{verdicts:?}"
    );
    // Alone, together, and mixed with good signatures in one batch.
    let good = signer(7);
    for n in 0..80u32 {
        let message = n.to_be_bytes().to_vec();
        let signature = good.sign(&message).to_bytes().to_vec();
        items.push((good.verifying_key(), message, signature));
    }
    assert_same_verdicts(&items);
}

/// A signature off by a small-order point only: `verify_strict` rejects it, the guard
/// routes it away from the batch, and the unguarded `verify_batch` (whose coefficients
/// come from the inputs) is fooled by some of them: the guard is needed.
#[test]
fn torsion_in_r_is_kept_out_of_the_batch_which_would_accept_it() {
    let key = signer(11);
    let vk = key.verifying_key();
    let mut fooled = 0;
    let mut items = Vec::new();
    for nonce in 0..32u64 {
        let message = format!("message {nonce}").into_bytes();
        // Order 2 (index 4) and order 4/8 points.
        let torsion = [4, 2, 1][nonce as usize % 3];
        let signature = with_torsion_r(&key, &message, nonce, torsion);
        assert!(!strict(&vk, &message, &signature));
        assert_eq!(route(&vk, &signature), Route::Single);
        let sig = Signature::from_bytes(&signature.clone().try_into().unwrap());
        if ed25519_dalek::verify_batch(&[&message], &[sig], &[vk]).is_ok() {
            fooled += 1;
        }
        items.push((vk, message, signature));
    }
    assert!(
        fooled > 0,
        "the unguarded batch accepted none: this test proves nothing"
    );
    // Without torsion the same construction is a valid signature (the construction is right).
    let message = b"plain".to_vec();
    let plain = with_torsion_r(&key, &message, 99, 0);
    assert!(strict(&vk, &message, &plain));
    items.push((vk, message, plain));
    assert_same_verdicts(&items);
}

#[test]
fn malleable_s_and_small_order_points_are_rejected_as_verify_strict_does() {
    let key = signer(3);
    let vk = key.verifying_key();
    let message = b"m".to_vec();
    let good = key.sign(&message).to_bytes().to_vec();
    let mut items = vec![(vk, message.clone(), good.clone())];
    // S + ℓ: same equation, non-canonical S.
    items.push((vk, message.clone(), plus_ell(&good)));
    // Every small-order point as R, with S = 0 and with the good S.
    for t in EIGHT_TORSION {
        for s in [[0u8; 32].to_vec(), good[32..].to_vec()] {
            let mut sig = t.compress().to_bytes().to_vec();
            sig.extend_from_slice(&s);
            items.push((vk, message.clone(), sig));
        }
    }
    // Every small-order point as A that decodes, with R = A and S = 0 (case 0's shape).
    for t in EIGHT_TORSION {
        let a = t.compress().to_bytes();
        if let Ok(weak) = VerifyingKey::from_bytes(&a) {
            let mut sig = a.to_vec();
            sig.extend_from_slice(&[0u8; 32]);
            items.push((weak, message.clone(), sig));
        }
    }
    for (key, message, signature) in &items[1..] {
        assert!(!strict(key, message, signature));
        assert_eq!(route(key, signature), Route::Reject);
    }
    assert_same_verdicts(&items);
}

/// What a random input is made of.
#[derive(Clone, Debug)]
enum Shape {
    Good,
    FlipSignatureBit(usize),
    FlipMessageByte(usize),
    OtherKey,
    TorsionR(usize),
    SPlusEll,
    Random([u8; 32], [u8; 32]),
    Short(usize),
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        4 => Just(Shape::Good),
        1 => (0usize..512).prop_map(Shape::FlipSignatureBit),
        1 => (0usize..16).prop_map(Shape::FlipMessageByte),
        1 => Just(Shape::OtherKey),
        1 => (0usize..8).prop_map(Shape::TorsionR),
        1 => Just(Shape::SPlusEll),
        1 => (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(a, b)| Shape::Random(a, b)),
        1 => (0usize..64).prop_map(Shape::Short),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any mix of good and bad signatures by a few keys, in one call: every verdict is
    /// `verify_strict`'s.
    #[test]
    fn any_mix_gets_verify_stricts_verdicts(
        shapes in proptest::collection::vec((0u64..4, any::<[u8; 16]>(), shape()), 1..150)
    ) {
        let keys: Vec<SigningKey> = (0..4).map(signer).collect();
        let items: Vec<(VerifyingKey, Vec<u8>, Vec<u8>)> = shapes
            .iter()
            .enumerate()
            .map(|(n, (k, message, shape))| {
                let key = &keys[*k as usize];
                let mut message = message.to_vec();
                let mut signature = key.sign(&message).to_bytes().to_vec();
                let mut vk = key.verifying_key();
                match shape {
                    Shape::Good => {}
                    Shape::FlipSignatureBit(b) => signature[b / 8] ^= 1 << (b % 8),
                    Shape::FlipMessageByte(i) => message[*i] ^= 0x5a,
                    Shape::OtherKey => vk = keys[(*k as usize + 1) % 4].verifying_key(),
                    Shape::TorsionR(t) => {
                        signature = with_torsion_r(key, &message, n as u64, *t)
                    }
                    Shape::SPlusEll => signature = plus_ell(&signature),
                    Shape::Random(r, s) => {
                        signature = r.to_vec();
                        signature.extend_from_slice(s);
                    }
                    Shape::Short(n) => signature.truncate(*n),
                }
                (vk, message, signature)
            })
            .collect();
        assert_same_verdicts(&items);
    }
}
