//! RFC 6962 / RFC 9162 §2.1 hashing with SHA-256.
//!
//! Leaves and interior nodes get different one-byte prefixes (0x00 and 0x01).
//! This domain separation is what stops a second preimage: an interior node
//! can never be passed off as a leaf, or the other way round.

use sha2::{Digest, Sha256};

/// A SHA-256 output: leaf hash, interior node hash or tree root.
pub type Hash = [u8; 32];

/// Length in bytes of every [`Hash`](type@Hash). Verifiers reject any other length.
pub const HASH_SIZE: usize = 32;

/// Prefix of a leaf hash (RFC 6962 §2.1).
const LEAF_PREFIX: u8 = 0x00;
/// Prefix of an interior node hash (RFC 6962 §2.1).
const NODE_PREFIX: u8 = 0x01;

/// `SHA-256(0x00 || entry)`: the hash of one log entry, `MTH({d})` in the RFC.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([LEAF_PREFIX]);
    h.update(entry);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`: the hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([NODE_PREFIX]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// `SHA-256("")`: the root of the empty tree, `MTH({})` in the RFC.
///
/// C2SP checkpoints of size 0 must carry this value.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Copies `bytes` into a [`Hash`](type@Hash) if it is exactly [`HASH_SIZE`] bytes long.
///
/// Returns `None` for any other length, so callers can reject truncated or
/// padded hashes instead of silently accepting them.
pub fn hash_from_slice(bytes: &[u8]) -> Option<Hash> {
    bytes.try_into().ok()
}
