//! The catalog state ([`Catalog`]): who the authority is, the grants, policies and
//! revocations in force, and the per-publication records. Its fields are private; this
//! file gives the read API the rules and the read side use (the policy in force, keys,
//! grants, entries and their folds), and the few writes `apply.rs` makes, each of which
//! appends one record.
//!
//! Every part of the state is an append-only list of records tagged by leaf index, so the
//! state as of any earlier size can still be read (see `read/views.rs`).
//!
//! May import `catalog::error`, `catalog::wire` (keys, the policy) and, in `model`,
//! `records`, `entry` and `store`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use super::entry::{entry_local_id, fold, EntryRecord, EntryView};
use super::records::{GrantRecord, PolicyRecord, PublicationRecord, RevocationRecord};
use super::snapshot::{AdminState, AuthorityState, PrincipalState};
use super::store::{KeyValue, RecordStore, Records, SnapshotChunk, Space};
use crate::catalog::error::RecordError;
use crate::catalog::wire::policy::Policy;
use crate::catalog::wire::submission::KeyDirectory;
use crate::note::Verifier;

/// Who the authority is: leaf 0.
#[derive(Clone, Debug)]
struct Authority {
    origin: String,
    log_key: Verifier,
    admins: Vec<Verifier>,
    created_at: String,
}

/// A granted key and its grants, in leaf order.
#[derive(Clone, Debug)]
struct Principal {
    verifier: Verifier,
    grants: Vec<GrantRecord>,
}

/// The catalog state, a deterministic function of the leaves in order. [`Catalog::apply`]
/// is the ONLY way it changes; the live sequencer and replay both call it. The admin-side
/// state is in memory; publications and entries, which grow with the log, are in a
/// [`RecordStore`] (in memory unless [`Catalog::with_store`] is given another). Cloning
/// copies the records into memory (a store on disk must not be shared by two catalogs
/// that diverge), so it is for tests and small logs.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    applied: u64,
    authority: Option<Authority>,
    keys: KeyDirectory,
    principals: BTreeMap<String, Principal>,
    policies: Vec<PolicyRecord>,
    revoked: BTreeMap<String, RevocationRecord>,
    /// Revoked public keys → the revoking leaf, whatever name they were revoked under.
    revoked_public: BTreeMap<[u8; 32], u64>,
    /// Publications, entries (by publication leaf index, the order queries page in) and
    /// their lookups.
    records: Records,
    /// The indices of the `StateCommitment` leaves, in order (one per batch at most).
    commitments: Vec<u64>,
}

/// The genesis defaults, built once.
fn defaults() -> &'static Policy {
    static DEFAULTS: OnceLock<Policy> = OnceLock::new();
    DEFAULTS.get_or_init(Policy::defaults)
}

impl Catalog {
    /// An empty catalog (nothing applied), its records in memory.
    pub fn new() -> Catalog {
        Catalog::default()
    }

    /// An empty catalog whose records are kept in `store`, which must be empty.
    pub fn with_store(store: Box<dyn RecordStore>) -> Catalog {
        Catalog {
            records: Records::new(store),
            ..Catalog::default()
        }
    }

    /// The admin-side state as it is now (at [`Catalog::applied_size`]), for a snapshot.
    pub fn admin_state(&self) -> AdminState {
        AdminState {
            applied: self.applied,
            authority: self.authority.as_ref().map(|a| AuthorityState {
                origin: a.origin.clone(),
                log_key: a.log_key.to_vkey(),
                admins: a.admins.iter().map(Verifier::to_vkey).collect(),
                created_at: a.created_at.clone(),
            }),
            keys: self.keys.iter().map(|(_, k)| k.to_vkey()).collect(),
            principals: self
                .principals
                .iter()
                .map(|(id, p)| PrincipalState {
                    id: id.clone(),
                    key: p.verifier.to_vkey(),
                    grants: p.grants.clone(),
                })
                .collect(),
            policies: self.policies.clone(),
            revoked: self
                .revoked
                .iter()
                .map(|(k, r)| (k.clone(), r.clone()))
                .collect(),
            revoked_public: self
                .revoked_public
                .iter()
                .map(|(k, i)| (hex::encode(k), *i))
                .collect(),
            commitments: self.commitments.clone(),
        }
    }

    /// The catalog of a snapshot: `admin` and the records already in `store`, which
    /// must be exactly the records of the same snapshot (the caller verified it). On
    /// error the store is handed back (to be cleared).
    pub fn restore(
        admin: AdminState,
        store: Box<dyn RecordStore>,
    ) -> Result<Catalog, (RecordError, Box<dyn RecordStore>)> {
        match Catalog::restore_admin(admin) {
            Ok(mut catalog) => {
                catalog.records = Records::restored(store, catalog.applied);
                Ok(catalog)
            }
            Err(e) => Err((e, store)),
        }
    }

    /// The admin-side state of a snapshot, its records empty.
    fn restore_admin(admin: AdminState) -> Result<Catalog, RecordError> {
        let key = |vkey: &str| {
            Verifier::from_vkey(vkey)
                .map_err(|e| RecordError::Corrupt(format!("a snapshot key: {e}")))
        };
        let authority = match admin.authority {
            Some(a) => Some(Authority {
                origin: a.origin,
                log_key: key(&a.log_key)?,
                admins: a.admins.iter().map(|k| key(k)).collect::<Result<_, _>>()?,
                created_at: a.created_at,
            }),
            None => None,
        };
        let keys = KeyDirectory::from_verifiers(
            admin
                .keys
                .iter()
                .map(|k| key(k))
                .collect::<Result<Vec<_>, _>>()?,
        );
        let mut principals = BTreeMap::new();
        for p in admin.principals {
            let verifier = key(&p.key)?;
            principals.insert(
                p.id,
                Principal {
                    verifier,
                    grants: p.grants,
                },
            );
        }
        let mut revoked_public = BTreeMap::new();
        for (k, i) in admin.revoked_public {
            let bytes: [u8; 32] = hex::decode(&k)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| RecordError::Corrupt("a snapshot's revoked key".into()))?;
            revoked_public.insert(bytes, i);
        }
        Ok(Catalog {
            applied: admin.applied,
            authority,
            keys,
            principals,
            policies: admin.policies,
            revoked: admin.revoked.into_iter().collect(),
            revoked_public,
            records: Records::default(),
            commitments: admin.commitments,
        })
    }

    /// The record store, once this catalog is no longer needed (to clear it).
    pub fn into_store(self) -> Box<dyn RecordStore> {
        self.records.into_store()
    }

    /// Up to `limit` records of `space` after the key `after` (from the first without
    /// it), as they were after the first `at` leaves, for a snapshot. See
    /// [`Records::snapshot_chunk`].
    pub fn snapshot_chunk(
        &self,
        space: Space,
        after: Option<&[u8]>,
        at: u64,
        limit: usize,
    ) -> Result<SnapshotChunk, RecordError> {
        self.records.snapshot_chunk(space, after, at, limit)
    }

    /// The records of `space` the leaves in `range` (`[from, at)`) wrote or updated, as
    /// of `at`, for a delta snapshot. See [`Records::delta_chunk`].
    pub fn delta_chunk(
        &self,
        space: Space,
        range: (u64, u64),
        updated: &[u64],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<SnapshotChunk, RecordError> {
        self.records
            .delta_chunk(space, range, updated, after, limit)
    }

    /// The lookup records of `space` the publications in `[from, below)` wrote,
    /// appended to `out` unsorted. See [`Records::delta_lookups`].
    pub fn delta_lookups(
        &self,
        space: Space,
        from: u64,
        below: u64,
        out: &mut Vec<KeyValue>,
    ) -> Result<(), RecordError> {
        self.records.delta_lookups(space, from, below, out)
    }

    /// The older entries decisions in `[from, below)` updated, or `None` if no longer
    /// known. See [`Records::updated_entries`].
    pub fn updated_entries(&self, from: u64, below: u64) -> Option<Vec<u64>> {
        self.records.updated_entries(from, below)
    }

    /// Forgets the entry updates a snapshot at `size` holds.
    pub fn forget_updates_below(&self, size: u64) {
        self.records.forget_updates_below(size);
    }

    // -----------------------------------------------------------------------------------
    // Reads.
    // -----------------------------------------------------------------------------------

    /// Number of leaves applied so far (= the index `apply` expects next).
    pub fn applied_size(&self) -> u64 {
        self.applied
    }

    /// Snapshot of every key the authority knows, for [`crate::catalog::Submission::verify`].
    pub fn keys(&self) -> KeyDirectory {
        self.keys.clone()
    }

    /// The known key whose `name+hex8` is `short_id`, without copying the directory.
    pub(in crate::catalog) fn key(&self, short_id: &str) -> Option<&Verifier> {
        self.keys.get(short_id)
    }

    /// True once leaf 0 (`AuthorityGenesis`) is applied.
    pub(in crate::catalog) fn has_genesis(&self) -> bool {
        self.authority.is_some()
    }

    /// The log origin, once genesis is applied.
    pub fn origin(&self) -> Option<&str> {
        self.authority.as_ref().map(|a| a.origin.as_str())
    }

    /// The log's verifier key, once genesis is applied.
    pub fn log_key(&self) -> Option<&Verifier> {
        self.authority.as_ref().map(|a| &a.log_key)
    }

    /// When the authority was created (genesis `createdAt`), once genesis is applied.
    pub(in crate::catalog) fn created_at(&self) -> Option<&str> {
        self.authority.as_ref().map(|a| a.created_at.as_str())
    }

    /// The admin keys, in genesis order (empty before genesis).
    pub fn admins(&self) -> &[Verifier] {
        self.authority
            .as_ref()
            .map(|a| a.admins.as_slice())
            .unwrap_or(&[])
    }

    /// True if `key` is an admin of this authority.
    pub fn is_admin(&self, key: &Verifier) -> bool {
        self.admins().contains(key)
    }

    /// The grants in force for a key (`name+hex8`), in leaf order.
    pub fn grants(&self, short_id: &str) -> &[GrantRecord] {
        self.principals
            .get(short_id)
            .map(|p| p.grants.as_slice())
            .unwrap_or(&[])
    }

    /// The grants in force for exactly `key` (not another key with its short id), in leaf
    /// order.
    pub(in crate::catalog) fn grants_of(&self, key: &Verifier) -> &[GrantRecord] {
        self.principals
            .get(&key.short_id())
            .filter(|p| &p.verifier == key)
            .map(|p| p.grants.as_slice())
            .unwrap_or(&[])
    }

    /// Every granted key: its short id, its verifier and its grants, by short id.
    pub(in crate::catalog) fn principals(
        &self,
    ) -> impl Iterator<Item = (&str, &Verifier, &[GrantRecord])> {
        self.principals
            .iter()
            .map(|(id, p)| (id.as_str(), &p.verifier, p.grants.as_slice()))
    }

    /// Every `PolicySet` applied, in leaf order.
    pub(in crate::catalog) fn policies(&self) -> &[PolicyRecord] {
        &self.policies
    }

    /// The policy in force now and the leaf index that set it (0: the genesis defaults).
    pub fn current_policy(&self) -> (&Policy, u64) {
        self.policy_before(self.applied)
    }

    /// The policy a leaf at `index` was admitted under, and the leaf that set it.
    pub fn policy_before(&self, index: u64) -> (&Policy, u64) {
        let n = self.policies.partition_point(|p| p.leaf_index < index);
        match n.checked_sub(1).and_then(|i| self.policies.get(i)) {
            Some(PolicyRecord {
                leaf_index, policy, ..
            }) => (policy, *leaf_index),
            None => (defaults(), 0),
        }
    }

    /// The revocation of key `short_id`, if it was revoked.
    pub fn revocation(&self, short_id: &str) -> Option<&RevocationRecord> {
        self.revoked.get(short_id)
    }

    /// The leaf that revoked public key `key` under any name, if it was revoked.
    pub(in crate::catalog) fn revoked_public_key(&self, key: &[u8; 32]) -> Option<u64> {
        self.revoked_public.get(key).copied()
    }

    /// Every known key (admins, the log key, granted keys) whose public key is `key`.
    pub(in crate::catalog) fn names_of(&self, key: &[u8; 32]) -> Vec<&Verifier> {
        let authority = self
            .authority
            .iter()
            .flat_map(|a| a.admins.iter().chain(std::iter::once(&a.log_key)));
        authority
            .chain(self.principals.values().map(|p| &p.verifier))
            .filter(|v| v.public_key() == key)
            .collect()
    }

    /// Every revoked key's short id and revocation, by short id.
    pub(in crate::catalog) fn revocations(
        &self,
    ) -> impl Iterator<Item = (&str, &RevocationRecord)> {
        self.revoked.iter().map(|(k, r)| (k.as_str(), r))
    }

    /// The indices of the `StateCommitment` leaves applied, in order.
    pub fn commitments(&self) -> &[u64] {
        &self.commitments
    }

    /// The per-publication records, read-only.
    pub(in crate::catalog) fn records(&self) -> &Records {
        &self.records
    }

    /// The publications of a subject (`sha256:<hex>`), in leaf order.
    pub fn publications(
        &self,
        subject_digest: &str,
    ) -> Result<Vec<PublicationRecord>, RecordError> {
        self.records
            .subject_indices(subject_digest, 0)
            .filter_map(|i| match i {
                Ok(i) => self.records.publication(i).transpose(),
                Err(e) => Some(Err(e)),
            })
            .collect()
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

    // -----------------------------------------------------------------------------------
    // Writes: one record each, made only by `apply.rs` once its rules have passed.
    // -----------------------------------------------------------------------------------

    /// Records leaf 0: the authority, and its admins as known keys.
    pub(in crate::catalog) fn set_authority(
        &mut self,
        origin: String,
        log_key: Verifier,
        admins: Vec<Verifier>,
        created_at: String,
    ) {
        for a in &admins {
            self.keys.insert(a.clone());
        }
        self.authority = Some(Authority {
            origin,
            log_key,
            admins,
            created_at,
        });
    }

    /// Records a grant for `publisher`, which becomes a known key.
    pub(in crate::catalog) fn add_grant(&mut self, publisher: Verifier, record: GrantRecord) {
        self.keys.insert(publisher.clone());
        self.principals
            .entry(publisher.short_id())
            .or_insert_with(|| Principal {
                verifier: publisher,
                grants: Vec::new(),
            })
            .grants
            .push(record);
    }

    /// Records a `PolicySet`, in force from its leaf on.
    pub(in crate::catalog) fn add_policy(&mut self, record: PolicyRecord) {
        self.policies.push(record);
    }

    /// Records the revocation of `key` (by short id and by public key).
    pub(in crate::catalog) fn add_revocation(&mut self, key: &Verifier, record: RevocationRecord) {
        self.revoked_public
            .entry(*key.public_key())
            .or_insert(record.leaf_index);
        self.revoked.insert(key.short_id(), record);
    }

    /// Records a publication and the entry it creates (local id `id`), all or nothing.
    pub(in crate::catalog) fn add_publication(
        &mut self,
        record: &PublicationRecord,
        id: &str,
    ) -> Result<(), RecordError> {
        self.records.add_publication(record, id)
    }

    /// Replaces an entry (a decision was appended to it).
    pub(in crate::catalog) fn put_entry(&mut self, entry: &EntryRecord) -> Result<(), RecordError> {
        self.records.put_entry(entry)
    }

    /// Records a `StateCommitment` leaf's index.
    pub(in crate::catalog) fn add_commitment(&mut self, index: u64) {
        self.commitments.push(index);
    }

    /// Counts one more leaf applied; the last step of every `apply`.
    pub(in crate::catalog) fn advance(&mut self) {
        self.applied += 1;
    }
}
