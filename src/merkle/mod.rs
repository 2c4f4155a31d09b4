//! Merkle tree hashing, proofs and verification for the transparency log
//! (RFC 6962 / RFC 9162 §2.1, as used by C2SP tlog-tiles and tlog-witness).
//!
//! Pure computation: no I/O happens here. Stored hashes come in through
//! [`HashSource`], which a tile store or database implements.
//!
//! A sealed, pure core: it may import only std, sha2 and rs_merkle, nothing else
//! of this crate. Everything it offers is re-exported below (`reference` is public
//! for tests).
//!
//! Layout, one job per file:
//! - `hash`: leaf/node/empty hashes.
//! - `node`: [`NodeId`], the address of a complete subtree.
//! - `range`: splitting leaf ranges into complete subtrees and folding them.
//! - `source`: the [`HashSource`] trait and in-memory sources.
//! - `proof`: inclusion/consistency proofs and roots from stored hashes.
//! - `verify`: hardened RFC 9162 verifiers, inclusion and consistency sharing one
//!   set of path-chaining helpers.
//! - `compact`: [`CompactRange`], the right edge of a growing tree.
//! - `rs_merkle_compat`: rs_merkle as a second inclusion verifier.
//! - [`reference`](mod@reference): naive recursive RFC definitions, for tests.

mod compact;
mod hash;
mod node;
mod proof;
mod range;
pub mod reference;
mod rs_merkle_compat;
mod source;
mod verify;

pub use compact::{root_of_leaf_hashes, CompactRange, CompactRangeError};
pub use hash::{empty_root, hash_from_slice, leaf_hash, node_hash, Hash, HASH_SIZE};
pub use node::NodeId;
pub use proof::{
    consistency_proof, consistency_proof_nodes, inclusion_proof, inclusion_proof_nodes, tree_edge,
    tree_root, ProofError,
};
pub use range::{fold_range, range_nodes};
pub use rs_merkle_compat::{verify_inclusion_rs_merkle, Rfc6962Hasher};
pub use source::{HashSource, MemoryHashSource, MissingNode};
pub use verify::{root_from_inclusion_proof, verify_consistency, verify_inclusion, VerifyError};
