//! Naive reference implementation of RFC 9162 §2.1, for tests only.
//!
//! Written straight from the RFC's recursive definitions over a slice of leaf
//! hashes, with no stored nodes and no cleverness, so that the optimised code
//! in this module has something independent to be compared against. It costs
//! O(n) per call; do not use it in production paths.

use super::hash::{empty_root, node_hash, Hash};

/// `MTH(D_n)` over leaf hashes: the empty-tree hash for no leaves, the leaf hash
/// itself for one, otherwise `node_hash(MTH(D[0:k]), MTH(D[k:n]))`.
pub fn mth(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => empty_root(),
        [one] => *one,
        _ => {
            let (left, right) = leaves.split_at(split_at(leaves.len()));
            node_hash(&mth(left), &mth(right))
        }
    }
}

/// `PATH(m, D_n)`, the inclusion proof of leaf `m`; `None` if `m >= n`.
pub fn path(m: usize, leaves: &[Hash]) -> Option<Vec<Hash>> {
    if m >= leaves.len() {
        return None;
    }
    if leaves.len() == 1 {
        return Some(Vec::new());
    }
    let k = split_at(leaves.len());
    let (left, right) = leaves.split_at(k);
    let mut proof;
    if m < k {
        proof = path(m, left)?;
        proof.push(mth(right));
    } else {
        proof = path(m - k, right)?;
        proof.push(mth(left));
    }
    Some(proof)
}

/// `PROOF(m, D_n)`, the consistency proof from the first `m` leaves to all of them;
/// `None` unless `0 < m <= n`.
pub fn proof(m: usize, leaves: &[Hash]) -> Option<Vec<Hash>> {
    if m == 0 || m > leaves.len() {
        return None;
    }
    Some(subproof(m, leaves, true))
}

/// `SUBPROOF(m, D_n, b)`, for `0 < m <= n`.
fn subproof(m: usize, leaves: &[Hash], b: bool) -> Vec<Hash> {
    let n = leaves.len();
    if m == n {
        return if b { Vec::new() } else { vec![mth(leaves)] };
    }
    let k = split_at(n);
    let (left, right) = leaves.split_at(k);
    let mut proof;
    if m <= k {
        proof = subproof(m, left, b);
        proof.push(mth(right));
    } else {
        proof = subproof(m - k, right, false);
        proof.push(mth(left));
    }
    proof
}

/// The RFC's `k`: the largest power of two smaller than `n` (for `n >= 2`).
///
/// Computed by doubling rather than with the bit tricks used elsewhere, to keep
/// the reference independent of the code it checks.
fn split_at(n: usize) -> usize {
    let mut k = 1;
    while k < n / 2 + n % 2 {
        k *= 2;
    }
    k
}
