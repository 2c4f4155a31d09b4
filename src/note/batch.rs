//! Ed25519 batch verification whose verdicts are `verify_strict`'s (ADR 0010).
//!
//! `ed25519_dalek::verify_batch` checks one random linear combination of the
//! verification equations, cofactorless, with coefficients derived from the inputs
//! (deterministic). It accepts some signatures `verify_strict` rejects:
//! - a non-canonical encoding of R (batch decompresses it, strict compares bytes);
//! - a small-order R or A (strict refuses them outright);
//! - a signature whose equation is off by a small-order point (R or A with a torsion
//!   component): the combination cancels it whenever the input-derived coefficient is
//!   a multiple of its order (1 in 2 to 1 in 8), and a signer can grind messages until it
//!   is (the "Taming the many EdDSAs" batching caveat, Chalkias, Garillot and Nikolaenko,
//!   SSR 2020).
//!
//! The guard: every input is first routed by what `verify_strict` would decide without
//! the equation. Rejected at once: a signature not 64 bytes, a non-canonical S, an R that
//! does not decode, is not canonically encoded or is of small order, a small-order A.
//! Verified one by one with `verify_strict`: any whose A or R is not torsion-free. Only
//! the rest (A and R in the prime-order subgroup, canonical) go into batches; for them
//! `verify_strict` accepts exactly when the equation's difference D = [S]B − R − [k]A is
//! the identity, and D lies in the prime-order subgroup, where a nonzero D survives the
//! random combination except with probability 2^-128 (the coefficients are 128 bits).
//! A batch that fails is re-checked signature by signature with `verify_strict`, so a
//! bad signature never makes a good one fail.
//!
//! May import: `note::key`.

use std::collections::HashMap;

use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::scalar::Scalar;
use ed25519_dalek::{Signature, VerifyingKey};

use super::key::Verifier;

/// Signatures per call of `verify_batch`: large enough to amortize (the gain flattens
/// past ~64), small enough that one bad signature costs a bounded re-check.
pub const BATCH: usize = 64;

/// One signature to check.
#[derive(Clone, Copy, Debug)]
pub struct Item<'a> {
    /// The public key.
    pub key: &'a VerifyingKey,
    /// The signed message.
    pub message: &'a [u8],
    /// The signature bytes (anything but 64 bytes fails).
    pub signature: &'a [u8],
}

/// Where the guard sends an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `verify_strict` rejects it whatever the equation says.
    Reject,
    /// A or R has a torsion component: only `verify_strict` itself decides.
    Single,
    /// Safe to batch: canonical, torsion-free A and R.
    Batch,
}

/// The route of `signature` under a key whose small-order and torsion-free tests are
/// `key_weak` and `key_torsion_free`.
fn route_with(key_weak: bool, key_torsion_free: bool, signature: &[u8]) -> Route {
    let Ok(bytes) = <&[u8; 64]>::try_from(signature) else {
        return Route::Reject;
    };
    let mut r = [0u8; 32];
    let mut s = [0u8; 32];
    r.copy_from_slice(&bytes[..32]);
    s.copy_from_slice(&bytes[32..]);
    if bool::from(Scalar::from_canonical_bytes(s).is_none()) || key_weak {
        return Route::Reject;
    }
    let Some(point) = CompressedEdwardsY(r).decompress() else {
        return Route::Reject;
    };
    if point.compress().to_bytes() != r || point.is_small_order() {
        return Route::Reject;
    }
    if !key_torsion_free || !point.is_torsion_free() {
        return Route::Single;
    }
    Route::Batch
}

/// The route the guard gives one signature by `key` (public for the tests).
pub fn route(key: &VerifyingKey, signature: &[u8]) -> Route {
    route_with(key.is_weak(), key.to_edwards().is_torsion_free(), signature)
}

fn strict(item: &Item<'_>) -> bool {
    <&[u8; 64]>::try_from(item.signature).is_ok_and(|b| {
        item.key
            .verify_strict(item.message, &Signature::from_bytes(b))
            .is_ok()
    })
}

/// The verdict of `verify_strict` on every item, in order, batching what the guard
/// allows (see the module documentation).
pub fn verify_strict_batch(items: &[Item<'_>]) -> Vec<bool> {
    let mut verdicts = vec![false; items.len()];
    // Keys repeat (a few publishers sign everything): test each once.
    let mut keys: HashMap<[u8; 32], (bool, bool)> = HashMap::new();
    let mut batch: Vec<usize> = Vec::with_capacity(BATCH);
    for (i, item) in items.iter().enumerate() {
        let (weak, torsion_free) = *keys
            .entry(item.key.to_bytes())
            .or_insert_with(|| (item.key.is_weak(), item.key.to_edwards().is_torsion_free()));
        match route_with(weak, torsion_free, item.signature) {
            Route::Reject => {}
            Route::Single => verdicts[i] = strict(item),
            Route::Batch => {
                batch.push(i);
                if batch.len() == BATCH {
                    run_batch(items, &batch, &mut verdicts);
                    batch.clear();
                }
            }
        }
    }
    run_batch(items, &batch, &mut verdicts);
    verdicts
}

/// Verifies the items at `indices` as one batch; on failure, one by one.
fn run_batch(items: &[Item<'_>], indices: &[usize], verdicts: &mut [bool]) {
    if indices.is_empty() {
        return;
    }
    let mut messages = Vec::with_capacity(indices.len());
    let mut signatures = Vec::with_capacity(indices.len());
    let mut keys = Vec::with_capacity(indices.len());
    for &i in indices {
        let Ok(bytes) = <&[u8; 64]>::try_from(items[i].signature) else {
            continue;
        };
        messages.push(items[i].message);
        signatures.push(Signature::from_bytes(bytes));
        keys.push(*items[i].key);
    }
    let all_good = signatures.len() == indices.len()
        && ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok();
    for &i in indices {
        verdicts[i] = all_good || strict(&items[i]);
    }
}

/// [`verify_strict_batch`] over [`Verifier`]s: `(key, message, signature)` triples.
pub fn verify_many(items: &[(&Verifier, &[u8], &[u8])]) -> Vec<bool> {
    let items: Vec<Item<'_>> = items
        .iter()
        .map(|(key, message, signature)| Item {
            key: key.verifying_key(),
            message,
            signature,
        })
        .collect();
    verify_strict_batch(&items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer as _, SigningKey};

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    /// The guard's routes, one row per rule.
    #[test]
    fn routes() {
        let signer = key(1);
        let good = signer.sign(b"m").to_bytes();
        let vk = signer.verifying_key();
        let mut high_s = good;
        high_s[63] |= 0x80;
        let mut small_r = good;
        // The identity's encoding: y = 1.
        small_r[..32].fill(0);
        small_r[0] = 1;
        let identity_key = VerifyingKey::from_bytes(&{
            let mut b = [0u8; 32];
            b[0] = 1;
            b
        })
        .unwrap();
        for (what, key, sig, want) in [
            ("a good signature", &vk, good.to_vec(), Route::Batch),
            ("63 bytes", &vk, good[..63].to_vec(), Route::Reject),
            ("S not canonical", &vk, high_s.to_vec(), Route::Reject),
            (
                "R the identity (small order)",
                &vk,
                small_r.to_vec(),
                Route::Reject,
            ),
            (
                "A the identity (small order)",
                &identity_key,
                good.to_vec(),
                Route::Reject,
            ),
        ] {
            assert_eq!(route(key, &sig), want, "{what}");
        }
    }

    #[test]
    fn a_bad_signature_in_a_batch_fails_alone() {
        let signers: Vec<SigningKey> = (1..=3).map(key).collect();
        let messages: Vec<Vec<u8>> = (0..150u32).map(|i| i.to_be_bytes().to_vec()).collect();
        let mut signatures: Vec<[u8; 64]> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| signers[i % 3].sign(m).to_bytes())
            .collect();
        signatures[70][40] ^= 1;
        let keys: Vec<VerifyingKey> = signers.iter().map(|s| s.verifying_key()).collect();
        let items: Vec<Item<'_>> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| Item {
                key: &keys[i % 3],
                message: m,
                signature: &signatures[i],
            })
            .collect();
        let verdicts = verify_strict_batch(&items);
        for (i, v) in verdicts.iter().enumerate() {
            assert_eq!(*v, i != 70, "{i}");
        }
    }
}
