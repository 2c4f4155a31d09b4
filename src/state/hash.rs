//! The hashes of the state map (`log-format/state.md` §2): key and value digests, and the
//! leaf, interior-node and empty-subtree hashes.
//!
//! The three tree hashes are separated by their first byte, and none of those bytes is
//! RFC 6962's 0x00 or 0x01: a map node can never be passed off as a log node or leaf,
//! nor a leaf as a node, nor anything as the empty subtree.

use sha2::{Digest, Sha256};

use crate::merkle::Hash;

/// Prefix of a map leaf hash.
pub const LEAF_PREFIX: u8 = 0x10;
/// Prefix of a map interior node hash.
pub const NODE_PREFIX: u8 = 0x11;
/// The one byte hashed for the empty subtree.
pub const EMPTY_PREFIX: u8 = 0x12;

/// `SHA-256(0x12)`: the hash of every empty subtree, at any depth (computed once).
pub fn empty_hash() -> Hash {
    static EMPTY: std::sync::OnceLock<Hash> = std::sync::OnceLock::new();
    *EMPTY.get_or_init(|| Sha256::digest([EMPTY_PREFIX]).into())
}

/// `SHA-256(key bytes)`: the 256-bit path of a key in the tree.
pub fn key_hash(key: &[u8]) -> Hash {
    Sha256::digest(key).into()
}

/// `SHA-256(value bytes)`.
pub fn value_hash(value: &[u8]) -> Hash {
    Sha256::digest(value).into()
}

/// `SHA-256(0x10 || key hash || value hash)`: a subtree holding exactly this one key.
pub fn leaf_hash(key: &Hash, value: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([LEAF_PREFIX]);
    h.update(key);
    h.update(value);
    h.finalize().into()
}

/// `SHA-256(0x11 || left || right)`: a subtree holding two keys or more.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([NODE_PREFIX]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Bit `i` of `key`, most significant bit of byte 0 first: 0 goes left, 1 goes right.
pub fn bit(key: &Hash, i: usize) -> bool {
    key[i / 8] & (0x80 >> (i % 8)) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_differ() {
        let (k, v) = ([1u8; 32], [2u8; 32]);
        assert_ne!(leaf_hash(&k, &v), node_hash(&k, &v));
        assert_ne!(leaf_hash(&k, &v), crate::merkle::node_hash(&k, &v));
        assert_ne!(empty_hash(), crate::merkle::empty_root());
        assert_eq!(
            hex::encode(empty_hash()),
            hex::encode(Sha256::digest([0x12u8]))
        );
    }

    #[test]
    fn bits_are_msb_first() {
        let mut k = [0u8; 32];
        k[0] = 0b1000_0001;
        k[31] = 1;
        let ones: Vec<usize> = (0..256).filter(|&i| bit(&k, i)).collect();
        assert_eq!(ones, vec![0, 7, 255]);
    }
}
