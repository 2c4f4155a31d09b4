//! Map proofs (`log-format/state.md` §4): the siblings on a key's path from the root
//! down to the subtree where the key is or would be, and what that subtree holds (no
//! key, the key itself, or one other key). Encoded compressed: a bitmap says which
//! siblings are not the empty hash, and only those are written, so a proof is
//! O(log n) hashes (about 24 non-empty siblings at 10 M keys: under 1 KiB).
//!
//! The verifier checks exact lengths, canonical form (zero padding bits, no explicit
//! empty hash, a non-empty deepest sibling, a terminal leaf on the key's path) and then
//! the hash chain.

use thiserror::Error;

use super::hash::{bit, empty_hash, leaf_hash, node_hash, value_hash};
use crate::merkle::Hash;

/// The most siblings a proof can have: two distinct 256-bit keys part at bit 255 at
/// the latest, so the subtree holding at most one of them is at depth 256 at most.
pub const MAX_SIBLINGS: usize = 256;

/// The most bytes an encoded proof can take.
pub const MAX_PROOF_BYTES: usize = 2 + MAX_SIBLINGS / 8 + MAX_SIBLINGS * 32 + 1 + 64;

/// A lookup proof for one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proof {
    /// The sibling hashes from the root down (depth 0 first), empty ones included.
    pub siblings: Vec<Hash>,
    /// The leaf at the end of the path (its key hash and value hash), or `None` when the
    /// path ends in an empty subtree.
    pub terminal: Option<(Hash, Hash)>,
}

/// Why a proof is refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ProofError {
    /// The encoding is shorter or longer than its header says, or malformed.
    #[error("malformed proof: {0}")]
    Malformed(&'static str),
    /// The proof is well formed but not canonical.
    #[error("non-canonical proof: {0}")]
    NonCanonical(&'static str),
    /// The proof is for another key, or claims another value.
    #[error("the proof does not answer for this key and value: {0}")]
    Mismatch(&'static str),
    /// The hash chain does not reach the root.
    #[error("the proof does not lead to the root")]
    WrongRoot,
}

impl Proof {
    /// The compressed encoding: `u16` big-endian sibling count n; ⌈n/8⌉ bitmap bytes
    /// (bit i, most significant first, set when sibling i is not the empty hash; padding
    /// bits zero); the non-empty siblings, 32 bytes each, depth order; a terminal byte
    /// (0x00 empty, 0x01 leaf) followed, for a leaf, by its key hash and value hash.
    pub fn encode(&self) -> Vec<u8> {
        let n = self.siblings.len();
        let empty = empty_hash();
        let mut out = Vec::with_capacity(2 + n.div_ceil(8) + n * 32 + 65);
        out.extend_from_slice(&(n as u16).to_be_bytes());
        let mut bitmap = vec![0u8; n.div_ceil(8)];
        for (i, s) in self.siblings.iter().enumerate() {
            if *s != empty {
                bitmap[i / 8] |= 0x80 >> (i % 8);
            }
        }
        out.extend_from_slice(&bitmap);
        for s in self.siblings.iter().filter(|s| **s != empty) {
            out.extend_from_slice(s);
        }
        match &self.terminal {
            None => out.push(0),
            Some((k, v)) => {
                out.push(1);
                out.extend_from_slice(k);
                out.extend_from_slice(v);
            }
        }
        out
    }

    /// Parses [`Proof::encode`]'s format, refusing any other length or a non-canonical
    /// encoding.
    pub fn decode(bytes: &[u8]) -> Result<Proof, ProofError> {
        if bytes.len() > MAX_PROOF_BYTES {
            return Err(ProofError::Malformed("longer than any proof"));
        }
        let (count, rest) = bytes
            .split_first_chunk::<2>()
            .ok_or(ProofError::Malformed("no sibling count"))?;
        let n = usize::from(u16::from_be_bytes(*count));
        if n > MAX_SIBLINGS {
            return Err(ProofError::Malformed("more than 256 siblings"));
        }
        let (bitmap, mut rest) = rest
            .split_at_checked(n.div_ceil(8))
            .ok_or(ProofError::Malformed("bitmap cut short"))?;
        if n % 8 != 0 && bitmap[n / 8] & (0xff >> (n % 8)) != 0 {
            return Err(ProofError::NonCanonical("bitmap padding bits set"));
        }
        let empty = empty_hash();
        let mut siblings = Vec::with_capacity(n);
        for i in 0..n {
            if bitmap[i / 8] & (0x80 >> (i % 8)) == 0 {
                siblings.push(empty);
                continue;
            }
            let (h, r) = rest
                .split_first_chunk::<32>()
                .ok_or(ProofError::Malformed("sibling cut short"))?;
            if *h == empty {
                return Err(ProofError::NonCanonical("empty hash written out"));
            }
            siblings.push(*h);
            rest = r;
        }
        let terminal = match rest {
            [0] => None,
            [1, leaf @ ..] if leaf.len() == 64 => {
                let mut k = [0u8; 32];
                let mut v = [0u8; 32];
                k.copy_from_slice(&leaf[..32]);
                v.copy_from_slice(&leaf[32..]);
                Some((k, v))
            }
            [] => return Err(ProofError::Malformed("no terminal")),
            [0 | 1, ..] => return Err(ProofError::Malformed("terminal of the wrong length")),
            _ => return Err(ProofError::Malformed("unknown terminal tag")),
        };
        Ok(Proof { siblings, terminal })
    }

    /// Checks that this proof shows `key` (a key hash) holding `value` (`Some`) or
    /// absent (`None`) in the map whose root is `root`.
    pub fn verify(&self, root: &Hash, key: &Hash, value: Option<&[u8]>) -> Result<(), ProofError> {
        let n = self.siblings.len();
        if n > MAX_SIBLINGS {
            return Err(ProofError::Malformed("more than 256 siblings"));
        }
        let empty = empty_hash();
        if self.siblings.last() == Some(&empty) {
            // The deepest split holds two keys or more, so its other half is not empty.
            return Err(ProofError::NonCanonical("deepest sibling is empty"));
        }
        let start = match (&self.terminal, value) {
            (Some((k, vh)), Some(v)) => {
                if k != key {
                    return Err(ProofError::Mismatch("the proof's leaf is another key"));
                }
                if *vh != value_hash(v) {
                    return Err(ProofError::Mismatch("the proof's leaf holds another value"));
                }
                leaf_hash(k, vh)
            }
            (None, Some(_)) => return Err(ProofError::Mismatch("the proof shows no key here")),
            (None, None) => empty,
            (Some((k, vh)), None) => {
                if k == key {
                    return Err(ProofError::Mismatch("the proof shows the key present"));
                }
                if (0..n).any(|i| bit(k, i) != bit(key, i)) {
                    return Err(ProofError::NonCanonical("the leaf is off the key's path"));
                }
                leaf_hash(k, vh)
            }
        };
        let mut h = start;
        for (i, s) in self.siblings.iter().enumerate().rev() {
            h = if bit(key, i) {
                node_hash(s, &h)
            } else {
                node_hash(&h, s)
            };
        }
        if h == *root {
            Ok(())
        } else {
            Err(ProofError::WrongRoot)
        }
    }
}
