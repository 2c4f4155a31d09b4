//! The verifiable catalog state (`log-format/state.md`, ADR 0005): an authenticated map
//! of the catalog state (a sparse Merkle tree over SHA-256 key hashes), its canonical
//! key and value encodings, lookup proofs (membership and non-membership) and their
//! verifier.
//!
//! Pure: no I/O and no clock. It may import `merkle` (the hash type), `catalog` (root
//! re-exports only), `note` and `receipt` (the commitment's receipt, in `bundle`), and
//! nothing of storage, log or api.
//!
//! Layout, one job per file:
//! - `hash`: key, value, leaf, node and empty-subtree hashes.
//! - `tree`: [`Tree`], the persistent sparse Merkle tree (snapshots are O(1)).
//! - `proof`: [`Proof`], its compressed encoding and verifier.
//! - `keys`: [`MapKey`] and the value types, RFC 8785 encoded.
//! - `project`: [`StateMap`], the map as a projection of a [`crate::catalog::Catalog`].
//! - `bundle`: [`StateProofBundle`], the self-contained proof a consumer verifies.
//! - `history`: [`StateHistory`], one key's value at every commitment in a range.
//! - `check`: [`check_entry`], the consumer's question answered from a lookup.
//! - `follow`: [`StateFollower`], the map of a log followed leaf by leaf, its
//!   commitments checked and their snapshots kept.

mod bundle;
mod check;
mod follow;
mod hash;
mod history;
mod keys;
mod project;
mod proof;
mod tree;

pub use bundle::{
    BundleError, StateProofBundle, VerifiedLookup, MAX_BUNDLE_BYTES, STATE_PROOF_MEDIA_TYPE,
};
pub use check::{
    check_entry, check_history, history_events, parse_duration_ms, Expectation, HistoryEvent,
    NotMet,
};
pub use follow::{
    Committed, FollowError, KeptCommitments, StateFollower, DEFAULT_KEPT_COMMITMENTS, KEPT_SIZES,
    MAX_COMMIT_LAG,
};
pub use hash::{bit, empty_hash, key_hash, leaf_hash, node_hash, value_hash};
pub use history::{
    HistoryError, StateHistory, MAX_HISTORY_BYTES, MAX_HISTORY_STEPS, STATE_HISTORY_MEDIA_TYPE,
};
pub use keys::{
    encode_value, EntryValue, GrantValue, HeadValue, KeyRoles, MapKey, Sha256Digest, SubjectValue,
};
pub use project::{
    entry_of, ChangeRead, EntryRead, KeyRolesSnapshot, MapChange, StateError, StateMap,
};
pub use proof::{Proof, ProofError, MAX_PROOF_BYTES, MAX_SIBLINGS};
pub use tree::Tree;
