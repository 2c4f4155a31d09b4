//! Read-only views of the catalog state: the policy in force, entries and their folds,
//! revocations. Used by the gates (at the current size) and by queries (at the committed
//! size).

use std::sync::OnceLock;

use super::entry::{entry_local_id, fold, EntryRecord, EntryView};
use super::policy::Policy;
use super::records::RecordError;
use super::state::{Catalog, PolicyRecord, PublicationRecord, RevocationRecord};

fn defaults() -> &'static Policy {
    static DEFAULTS: OnceLock<Policy> = OnceLock::new();
    DEFAULTS.get_or_init(Policy::defaults)
}

impl Catalog {
    /// The policy in force now and the leaf index that set it (0: the genesis defaults).
    pub fn current_policy(&self) -> (&Policy, u64) {
        self.policy_before(self.applied)
    }

    /// The policy a leaf at `index` was admitted under, and the leaf that set it.
    pub fn policy_before(&self, index: u64) -> (&Policy, u64) {
        let n = self.policies.partition_point(|p| p.leaf_index < index);
        match n.checked_sub(1).and_then(|i| self.policies.get(i)) {
            Some(PolicyRecord { leaf_index, policy }) => (policy, *leaf_index),
            None => (defaults(), 0),
        }
    }

    /// The revocation of key `short_id`, if it was revoked.
    pub fn revocation(&self, short_id: &str) -> Option<&RevocationRecord> {
        self.revoked.get(short_id)
    }

    /// The entry for `target` and subject `sha256_hex` (64 hex), if one exists.
    pub fn find_entry(
        &self,
        target: &str,
        sha256_hex: &str,
    ) -> Result<Option<EntryRecord>, RecordError> {
        let id = entry_local_id(target, &format!("sha256:{sha256_hex}"));
        match self.records.entry_index(&id)? {
            Some(i) => self.records.entry(i),
            None => Ok(None),
        }
    }

    /// The publication index of the entry whose local id is `id`.
    pub fn entry_index(&self, id: &str) -> Result<Option<u64>, RecordError> {
        self.records.entry_index(id)
    }

    /// The entry created by publication leaf `publication_index`, folded over the leaves
    /// below `at`, with its publication. `None` if there is no such entry below `at`.
    pub fn entry_view(
        &self,
        publication_index: u64,
        at: u64,
    ) -> Result<Option<(EntryView, PublicationRecord)>, RecordError> {
        if publication_index >= at {
            return Ok(None);
        }
        let Some(record) = self.records.entry(publication_index)? else {
            return Ok(None);
        };
        let Some(publication) = self.records.publication(publication_index)? else {
            return Ok(None);
        };
        let policy_at = |i: u64| self.policy_before(i).0;
        Ok(Some((
            fold(&record, &publication, at, &policy_at),
            publication,
        )))
    }

    /// The entries' publication indices in order, from `after` (exclusive), below `at`.
    pub fn entry_indices(
        &self,
        after: Option<u64>,
        at: u64,
    ) -> impl Iterator<Item = Result<u64, RecordError>> + '_ {
        let start = after.map_or(0, |a| a.saturating_add(1));
        self.records.entry_indices(start, at)
    }

    /// The publication indices of entries whose subject is named `name`, in order, from
    /// `after` (exclusive).
    pub fn entries_named(
        &self,
        name: &str,
        after: Option<u64>,
    ) -> impl Iterator<Item = Result<u64, RecordError>> + '_ {
        let start = after.map_or(0, |a| a.saturating_add(1));
        self.records.name_indices(name, start)
    }
}
