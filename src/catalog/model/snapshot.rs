//! The catalog state in a form a snapshot can carry: [`AdminState`] (the admin-side
//! state, which lives in `Catalog` itself) and the raw records of the [`RecordStore`]
//! (read in chunks as of one tree size by `Records::snapshot_chunk`).
//!
//! Why raw records: loading a snapshot must cost far less than applying the leaves
//! again, so the records are copied byte for byte into the new store (no decoding), and
//! the admin state, which is small, is serialized as a whole.
//!
//! May import `catalog::error`, `catalog::wire` (keys) and, in `model`, `records`.

use serde::{Deserialize, Serialize};

use super::records::{GrantRecord, PolicyRecord, RevocationRecord};

/// The admin-side state of a catalog (authority, known keys, grants, policies,
/// revocations) and how many leaves it reflects. Opaque: built by
/// `Catalog::admin_state`, turned back into a catalog by `Catalog::restore`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdminState {
    pub(super) applied: u64,
    pub(super) authority: Option<AuthorityState>,
    /// Every known key (vkey), in the directory's order.
    pub(super) keys: Vec<String>,
    pub(super) principals: Vec<PrincipalState>,
    pub(super) policies: Vec<PolicyRecord>,
    pub(super) revoked: Vec<(String, RevocationRecord)>,
    /// Revoked public keys (hex) and the leaf that revoked each.
    pub(super) revoked_public: Vec<(String, u64)>,
    /// The indices of the `StateCommitment` leaves applied, in order.
    pub(super) commitments: Vec<u64>,
}

impl AdminState {
    /// The number of leaves this state reflects.
    pub fn applied_size(&self) -> u64 {
        self.applied
    }

    /// The log origin recorded by genesis, if genesis is applied.
    pub fn origin(&self) -> Option<&str> {
        self.authority.as_ref().map(|a| a.origin.as_str())
    }
}

/// Leaf 0, as vkeys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct AuthorityState {
    pub(super) origin: String,
    pub(super) log_key: String,
    pub(super) admins: Vec<String>,
    pub(super) created_at: String,
}

/// A granted key (vkey) under its short id, and its grants in leaf order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct PrincipalState {
    pub(super) id: String,
    pub(super) key: String,
    pub(super) grants: Vec<GrantRecord>,
}
