//! rs_merkle as a second, independent inclusion verifier.
//!
//! With a hasher that prefixes nodes with 0x01 and passes a left node up
//! unchanged when it has no right sibling, rs_merkle's roots and single-leaf
//! proofs are byte-identical to RFC 6962 (leaves must be pre-hashed with
//! [`leaf_hash`](super::leaf_hash)). Its verifier, however, ignores extra
//! trailing proof hashes and accepts forged multi-leaf proofs (duplicate
//! indices, rs-merkle PR #52), so it is only ever called here with one index
//! and after we have enforced the exact proof length ourselves.

use rs_merkle::{Hasher, MerkleProof};
use sha2::{Digest, Sha256};

use super::hash::{node_hash, Hash};
use super::verify::{inclusion_proof_len, VerifyError};

/// rs_merkle Hasher that matches RFC 6962 for single-leaf proofs (used as a
/// second, independent verifier by the client).
///
/// `hash` is plain SHA-256 and is not used for leaves: rs_merkle never adds the
/// 0x00 leaf prefix, so callers pass leaf hashes from [`leaf_hash`](super::leaf_hash).
#[derive(Clone, Copy, Debug, Default)]
pub struct Rfc6962Hasher;

impl Hasher for Rfc6962Hasher {
    type Hash = Hash;

    fn hash(data: &[u8]) -> Hash {
        Sha256::digest(data).into()
    }

    /// RFC 6962 node hash; a node without a right sibling moves up unchanged,
    /// which is exactly how the RFC's unbalanced right edge behaves.
    fn concat_and_hash(left: &Hash, right: Option<&Hash>) -> Hash {
        match right {
            Some(right) => node_hash(left, right),
            None => *left,
        }
    }
}

/// Checks an inclusion proof with rs_merkle, after enforcing the exact proof length
/// ourselves (rs_merkle ignores extra hashes and accepts forged multi-leaf proofs —
/// only ever pass one index).
pub fn verify_inclusion_rs_merkle(
    index: u64,
    size: u64,
    leaf_hash: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), VerifyError> {
    let Some(expected) = inclusion_proof_len(index, size) else {
        return Err(VerifyError::IndexOutOfRange { index, size });
    };
    if proof.len() != expected {
        return Err(VerifyError::WrongProofLength {
            expected,
            got: proof.len(),
        });
    }
    // rs_merkle counts in usize; on targets where u64 does not fit, reject
    // rather than truncate.
    let (Ok(index_usize), Ok(size_usize)) = (usize::try_from(index), usize::try_from(size)) else {
        return Err(VerifyError::IndexOutOfRange { index, size });
    };
    let ok = MerkleProof::<Rfc6962Hasher>::new(proof.to_vec()).verify(
        *root,
        &[index_usize],
        &[*leaf_hash],
        size_usize,
    );
    if ok {
        Ok(())
    } else {
        Err(VerifyError::RootMismatch)
    }
}
