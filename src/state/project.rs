//! The state map as a deterministic projection of the catalog ([`StateMap`]): built
//! whole from a [`Catalog`] through its read API, or kept up to date leaf by leaf from
//! the [`Effect`] each applied leaf reports, touching only the keys that leaf changed.
//! Both give the same root (`tests/state_map.rs` checks it).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use thiserror::Error;

use super::keys::{
    encode_value, EntryValue, GrantValue, HeadValue, KeyRoles, MapKey, Sha256Digest, SubjectValue,
};
use super::tree::Tree;
use crate::catalog::{
    entry_local_id, evidence_bundle, Catalog, CatalogError, DecisionKind, Effect, EntryStatus,
    EntryView, PublicationRecord, RecordError,
};
use crate::merkle::Hash;

/// Why the map could not be computed.
#[derive(Debug, Error)]
pub enum StateError {
    /// The catalog's record store failed.
    #[error("catalog records: {0}")]
    Records(#[from] RecordError),
    /// A value could not be encoded.
    #[error("encoding: {0}")]
    Encoding(#[from] CatalogError),
    /// The catalog reported an entry it does not hold.
    #[error("the catalog has no entry {0}")]
    MissingEntry(String),
}

/// What the projection remembers of an entry to keep the channel heads.
#[derive(Clone, Debug, PartialEq, Eq)]
struct EntryMark {
    channel: String,
    published: bool,
    since: u64,
}

/// A published entry on a channel: (`since`, subject, publication index); the newest
/// arrival sorts last.
type HeadMark = (u64, String, u64);

/// Every verifier key's encoded roles (vkey → RFC 8785 value) at one moment: what the
/// `key` entries of the map hold. Computed under the catalog's write hold after an
/// admin leaf, because the admin state is not kept per size.
pub type KeyRolesSnapshot = BTreeMap<String, Arc<[u8]>>;

/// What one applied leaf changes in the map, recorded cheaply where the leaf is applied
/// (the sequencer) and applied later by whoever keeps the map ([`StateMap::apply_change`]),
/// reading the catalog as of a size at or after the leaf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapChange {
    /// Publication leaf `index` created its entry: the index is known where the leaf is
    /// applied, so neither side computes the local id or looks it up.
    Published(u64),
    /// The entry with this local id changed (reviewed, promoted, restricted…).
    Entry(String),
    /// The keys' roles changed; the snapshot is the whole set after the leaf.
    Keys(KeyRolesSnapshot),
}

/// An entry as read from the catalog at one size, for [`StateMap::apply_read`].
#[derive(Clone, Debug)]
pub struct EntryRead {
    index: u64,
    view: EntryView,
    publication: PublicationRecord,
    origin: String,
}

/// What [`StateMap::read_change`] read for one change.
#[derive(Clone, Debug)]
pub enum ChangeRead {
    /// An entry's state.
    Entry(Box<EntryRead>),
    /// The keys' roles.
    Keys(KeyRolesSnapshot),
}

/// The entry of publication leaf `index` in `catalog` as of size `at`.
fn read_entry(catalog: &Catalog, index: u64, at: u64) -> Result<EntryRead, StateError> {
    let (view, publication) = catalog
        .entry_view(index, at)?
        .ok_or_else(|| StateError::MissingEntry(format!("publication leaf {index}")))?;
    Ok(EntryRead {
        index,
        view,
        publication,
        origin: catalog.origin().unwrap_or_default().to_string(),
    })
}

/// The publication index of the entry `change` names, looked up in `catalog` when the
/// change names it by local id; `None` for a change of the keys' roles.
pub fn entry_of(catalog: &Catalog, change: &MapChange) -> Result<Option<u64>, StateError> {
    match change {
        MapChange::Published(index) => Ok(Some(*index)),
        MapChange::Entry(id) => catalog
            .entry_index(id)?
            .map(Some)
            .ok_or_else(|| StateError::MissingEntry(id.clone())),
        MapChange::Keys(_) => Ok(None),
    }
}

/// The authenticated map of the catalog state, and the indexes that keep it current.
#[derive(Clone, Debug, Default)]
pub struct StateMap {
    tree: Tree,
    /// The entry's key hash → where the entry is.
    entries: HashMap<Hash, EntryMark>,
    /// (target, channel) → the published entries there: (`since`, subject, publication
    /// index), so the newest is the last.
    heads: BTreeMap<(String, String), BTreeSet<HeadMark>>,
    /// subject → targets.
    subjects: BTreeMap<String, BTreeSet<String>>,
    /// vkey → encoded roles.
    keys: BTreeMap<String, Arc<[u8]>>,
    /// Writes not yet in `tree` (key hash, value; `None` removes; the later of two for
    /// one key wins), applied together by [`StateMap::flush`] so that a batch hashes
    /// each changed node once.
    pending: Vec<(Hash, Option<Arc<[u8]>>)>,
    /// Channel heads changed since the last flush: written once each at the flush, not
    /// once per entry that moved them.
    dirty_heads: BTreeSet<(String, String)>,
}

impl StateMap {
    /// The map of an empty catalog.
    pub fn new() -> StateMap {
        StateMap::default()
    }

    /// The map of `catalog` as applied so far, computed from scratch.
    pub fn build(catalog: &Catalog) -> Result<StateMap, StateError> {
        let mut map = StateMap::new();
        map.refresh_keys(catalog)?;
        let at = catalog.applied_size();
        for index in catalog.entry_indices(None, at) {
            map.refresh_entry(catalog, index?, at)?;
        }
        map.flush()?;
        Ok(map)
    }

    /// The maps of `catalog` as of each of `sizes` (taken ascending, each at most the
    /// applied size; others are ignored), and the map as of the largest. One pass over
    /// the entries, as [`StateMap::build`] makes, folds each entry as of the first size;
    /// an entry is read again only at the sizes where it changed (the first size above
    /// each of its leaves), so the cost beyond one build is the changes between the
    /// sizes. Used at start-up to serve proofs of the commitments made before it.
    pub fn build_at(catalog: &Catalog, sizes: &[u64]) -> Result<(StateMap, Vec<Tree>), StateError> {
        let applied = catalog.applied_size();
        let mut sizes: Vec<u64> = sizes.iter().copied().filter(|&s| s <= applied).collect();
        sizes.sort_unstable();
        sizes.dedup();
        let mut map = StateMap::new();
        let (Some(&first), Some(&last)) = (sizes.first(), sizes.last()) else {
            return Ok((map, Vec::new()));
        };
        map.set_keys(key_roles_at(catalog, first)?);
        // later[j]: the entries whose state at sizes[j] differs from the size before.
        let mut later: Vec<Vec<u64>> = vec![Vec::new(); sizes.len()];
        for index in catalog.entry_indices(None, last) {
            let index = index?;
            let read = read_entry(catalog, index, last)?;
            // The first size above each of the entry's leaves: where its state changes.
            let mut changes: Vec<usize> = read
                .view
                .leaf_indices
                .iter()
                .map(|&leaf| sizes.partition_point(|&s| s <= leaf))
                .collect();
            changes.dedup();
            match changes.as_slice() {
                // Unchanged after the first size: its state there is its state now.
                [0] => map.apply_entry(read)?,
                [0, ..] => map.apply_entry(read_entry(catalog, index, first)?)?,
                _ => {}
            }
            for &j in changes.iter().filter(|&&j| j > 0 && j < sizes.len()) {
                later[j].push(index);
            }
        }
        map.flush()?;
        let mut trees = vec![map.tree()];
        for (j, &at) in sizes.iter().enumerate().skip(1) {
            map.set_keys(key_roles_at(catalog, at)?);
            for &index in &later[j] {
                map.apply_entry(read_entry(catalog, index, at)?)?;
            }
            map.flush()?;
            trees.push(map.tree());
        }
        Ok((map, trees))
    }

    /// What leaf `index`, just applied to `catalog` with `effect`, changes in the map,
    /// or `None`. Cheap for publications (the leaf index) and entry decisions (a local
    /// id); an admin leaf computes every key's roles.
    pub fn change_of(
        catalog: &Catalog,
        index: u64,
        effect: &Effect,
    ) -> Result<Option<MapChange>, StateError> {
        // The same cases, in the same order, as `apply`.
        Ok(match effect {
            Effect::Genesis | Effect::GrantAdded { .. } => {
                Some(MapChange::Keys(key_roles(catalog)?))
            }
            Effect::Published { .. } => Some(MapChange::Published(index)),
            Effect::Decided {
                entry: Some(id), ..
            } => Some(MapChange::Entry(id.clone())),
            Effect::Decided {
                kind: DecisionKind::PublisherRevoke,
                ..
            } => Some(MapChange::Keys(key_roles(catalog)?)),
            Effect::Decided { .. } | Effect::StateCommitted { .. } => None,
        })
    }

    /// Applies a change recorded by [`StateMap::change_of`], reading the catalog as of
    /// size `at` (at or after the leaf that made the change; every entry read takes a
    /// size, so a catalog that has moved on still answers as of `at`).
    pub fn apply_change(
        &mut self,
        catalog: &Catalog,
        change: &MapChange,
        at: u64,
    ) -> Result<(), StateError> {
        match change {
            MapChange::Keys(now) => self.set_keys(now.clone()),
            MapChange::Published(_) | MapChange::Entry(_) => {
                if let Some(index) = entry_of(catalog, change)? {
                    self.refresh_entry(catalog, index, at)?;
                }
            }
        }
        self.flush()
    }

    /// Updates the map for one leaf just applied to `catalog`, given the leaf's effect.
    pub fn apply(&mut self, catalog: &Catalog, effect: &Effect) -> Result<(), StateError> {
        self.apply_unflushed(catalog, effect)?;
        self.flush()
    }

    fn apply_unflushed(&mut self, catalog: &Catalog, effect: &Effect) -> Result<(), StateError> {
        match effect {
            Effect::Genesis | Effect::GrantAdded { .. } => self.refresh_keys(catalog),
            Effect::Published {
                subject_digest,
                target,
                ..
            } => {
                // By local id: no entry record is read just to learn its index.
                let index = catalog
                    .entry_index(&entry_local_id(target, subject_digest))?
                    .ok_or_else(|| {
                        StateError::MissingEntry(format!("{target} {subject_digest}"))
                    })?;
                self.refresh_entry(catalog, index, catalog.applied_size())
            }
            Effect::Decided {
                entry: Some(id), ..
            } => {
                let index = catalog
                    .entry_index(id)?
                    .ok_or_else(|| StateError::MissingEntry(id.clone()))?;
                self.refresh_entry(catalog, index, catalog.applied_size())
            }
            Effect::Decided {
                kind: DecisionKind::PublisherRevoke,
                ..
            } => self.refresh_keys(catalog),
            Effect::Decided { .. } | Effect::StateCommitted { .. } => Ok(()),
        }
    }

    /// Writes the changes made by [`StateMap::apply_read`] since the last flush into
    /// the tree, all at once ([`Tree::set_many`]). Every other update flushes by itself.
    pub fn flush(&mut self) -> Result<(), StateError> {
        for (target, channel) in std::mem::take(&mut self.dirty_heads) {
            self.write_head(target, channel)?;
        }
        if !self.pending.is_empty() {
            self.tree.set_many(std::mem::take(&mut self.pending));
        }
        Ok(())
    }

    /// True when every change is in the tree.
    fn flushed(&self) -> bool {
        self.pending.is_empty() && self.dirty_heads.is_empty()
    }

    /// The root hash, as of the last flush.
    pub fn root(&self) -> Hash {
        debug_assert!(self.flushed(), "root of an unflushed map");
        self.tree.root()
    }

    /// An immutable snapshot of the tree (O(1)), as of the last flush.
    pub fn tree(&self) -> Tree {
        debug_assert!(self.flushed(), "snapshot of an unflushed map");
        self.tree.clone()
    }

    /// The number of keys in the map, as of the last flush.
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    /// True if the map holds no key, as of the last flush.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    fn set(&mut self, key: &MapKey, value: Option<Vec<u8>>) {
        self.pending.push((key.hash(), value.map(Arc::from)));
    }

    /// Recomputes the roles of every known key and writes those that changed. The keys
    /// grow only with admin leaves, so this is cheap and runs only after those.
    fn refresh_keys(&mut self, catalog: &Catalog) -> Result<(), StateError> {
        self.set_keys(key_roles(catalog)?);
        Ok(())
    }

    /// Makes the `key` entries those of `now`: removes the keys gone, writes the changed.
    fn set_keys(&mut self, now: KeyRolesSnapshot) {
        let gone: Vec<String> = self
            .keys
            .keys()
            .filter(|k| !now.contains_key(*k))
            .cloned()
            .collect();
        for vkey in gone {
            self.keys.remove(&vkey);
            self.pending.push((MapKey::Key { vkey }.hash(), None));
        }
        for (vkey, value) in now {
            if self.keys.get(&vkey) != Some(&value) {
                self.pending.push((
                    MapKey::Key { vkey: vkey.clone() }.hash(),
                    Some(value.clone()),
                ));
                self.keys.insert(vkey, value);
            }
        }
    }

    /// Recomputes the entry created by publication leaf `index`, the subject's targets
    /// and the heads of the channels it left or joined, as of size `at`.
    fn refresh_entry(&mut self, catalog: &Catalog, index: u64, at: u64) -> Result<(), StateError> {
        let read = read_entry(catalog, index, at)?;
        self.apply_entry(read)
    }

    /// Reads what a change needs from `catalog` as of size `at`, so that the caller can
    /// release the catalog before the (larger) encoding and hashing work of
    /// [`StateMap::apply_read`].
    pub fn read_change(
        catalog: &Catalog,
        change: &MapChange,
        at: u64,
    ) -> Result<ChangeRead, StateError> {
        Ok(match change {
            MapChange::Keys(now) => ChangeRead::Keys(now.clone()),
            MapChange::Published(index) => StateMap::read_entry_change(catalog, *index, at)?,
            MapChange::Entry(id) => {
                let index = catalog
                    .entry_index(id)?
                    .ok_or_else(|| StateError::MissingEntry(id.clone()))?;
                StateMap::read_entry_change(catalog, index, at)?
            }
        })
    }

    /// Reads the entry with publication index `index` from `catalog` as of size `at`,
    /// as [`StateMap::read_change`] does for a change naming it.
    pub fn read_entry_change(
        catalog: &Catalog,
        index: u64,
        at: u64,
    ) -> Result<ChangeRead, StateError> {
        Ok(ChangeRead::Entry(Box::new(read_entry(catalog, index, at)?)))
    }

    /// Applies what [`StateMap::read_change`] read, without the catalog. The tree is
    /// written at the next [`StateMap::flush`], so a batch of reads hashes each changed
    /// node once.
    pub fn apply_read(&mut self, read: ChangeRead) -> Result<(), StateError> {
        match read {
            ChangeRead::Keys(now) => {
                self.set_keys(now);
                Ok(())
            }
            ChangeRead::Entry(entry) => self.apply_entry(*entry),
        }
    }

    fn apply_entry(&mut self, read: EntryRead) -> Result<(), StateError> {
        let EntryRead {
            index,
            view,
            publication,
            origin,
        } = read;
        let origin = origin.as_str();
        // Written in canonical order straight into the hasher: no copy of the bundle is
        // kept (the general encoder took most of this function's time).
        let mut bundle = Sha256::new();
        evidence_bundle(&view, &publication, origin).write_canonical(&mut bundle)?;
        // The leaf that put the entry on its channel: its last promotion, else its
        // publication.
        let since = view
            .leaf_indices
            .iter()
            .zip(&view.leaf_kinds)
            .filter(|(_, k)| matches!(**k, "promotion" | "publication"))
            .map(|(i, _)| *i)
            .next_back()
            .unwrap_or(index);
        let published = view.status == EntryStatus::Published;
        // The view and the publication are ours: their strings move into the value.
        let value = EntryValue {
            channel: view.channel,
            evidence_bundle: Sha256Digest {
                sha256: hex::encode(bundle.finalize()),
            },
            leaf_indices: view.leaf_indices,
            status: view.status.as_str().to_string(),
            subject_name: publication.subject_name,
        };
        let target = publication.target_catalog_ref;
        let subject = publication.subject_digest;
        let entry_key = MapKey::entry_hash(&target, &subject);
        self.pending
            .push((entry_key, Some(Arc::from(encode_value(&value)?))));

        let targets = self.subjects.entry(subject.clone()).or_default();
        if !targets.contains(&target) {
            targets.insert(target.clone());
            let value = SubjectValue {
                targets: targets.iter().cloned().collect(),
            };
            let key = MapKey::subject_hash(&subject);
            self.pending
                .push((key, Some(Arc::from(encode_value(&value)?))));
        }

        let mark = EntryMark {
            channel: value.channel,
            published,
            since,
        };
        let old = self.entries.get(&entry_key);
        if old == Some(&mark) {
            return Ok(());
        }
        if let Some(old) = old {
            if old.published {
                if let Some(set) = self.heads.get_mut(&(target.clone(), old.channel.clone())) {
                    set.remove(&(old.since, subject.clone(), index));
                }
            }
            self.dirty_heads
                .insert((target.clone(), old.channel.clone()));
        }
        if mark.published {
            self.heads
                .entry((target.clone(), mark.channel.clone()))
                .or_default()
                .insert((mark.since, subject, index));
        }
        self.dirty_heads.insert((target, mark.channel.clone()));
        self.entries.insert(entry_key, mark);
        Ok(())
    }

    /// Writes the head of `channel` of `target`: the newest entry published there, or
    /// none.
    fn write_head(&mut self, target: String, channel: String) -> Result<(), StateError> {
        let slot = (target, channel);
        let top = self.heads.get(&slot).and_then(|s| s.last().cloned());
        if top.is_none() {
            self.heads.remove(&slot);
        }
        let key = MapKey::Head {
            target: slot.0,
            channel: slot.1,
        };
        match top {
            None => self.set(&key, None),
            Some((since, subject, publication_index)) => {
                let value = HeadValue {
                    publication_index,
                    since,
                    subject,
                };
                self.set(&key, Some(encode_value(&value)?));
            }
        }
        Ok(())
    }
}

/// Every known key's roles in `catalog` now (the log key, the admins, every key with a
/// grant or a revocation), RFC 8785 encoded.
fn key_roles(catalog: &Catalog) -> Result<KeyRolesSnapshot, StateError> {
    key_roles_at(catalog, catalog.applied_size())
}

/// Every known key's roles as of size `at`: the grants and revocations of leaves below
/// it (grants are only ever added, and a revocation is recorded beside them, so the
/// roles of an earlier size are the current ones without the later leaves).
fn key_roles_at(catalog: &Catalog, at: u64) -> Result<KeyRolesSnapshot, StateError> {
    if at == 0 {
        return Ok(KeyRolesSnapshot::new());
    }
    let mut verifiers: Vec<_> = catalog.keys().iter().map(|(_, v)| v.clone()).collect();
    verifiers.extend(catalog.log_key().cloned());
    verifiers.extend(catalog.admins().iter().cloned());
    let mut now = KeyRolesSnapshot::new();
    for v in verifiers {
        let id = v.short_id();
        let grants: Vec<GrantValue> = catalog
            .grants(&id)
            .iter()
            .filter(|g| g.leaf_index < at)
            .map(|g| GrantValue {
                channels: g.channels.clone(),
                leaf_index: g.leaf_index,
                role: role_name(g.role),
                target_prefixes: g.target_prefixes.clone(),
            })
            .collect();
        let roles = KeyRoles {
            admin: catalog.is_admin(&v),
            grants,
            log: catalog.log_key() == Some(&v),
            revoked: catalog
                .revocation(&id)
                .map(|r| r.leaf_index)
                .filter(|&leaf| leaf < at),
        };
        if roles.admin || roles.log || !roles.grants.is_empty() || roles.revoked.is_some() {
            now.insert(v.to_vkey(), Arc::from(encode_value(&roles)?));
        }
    }
    Ok(now)
}

fn role_name(role: crate::catalog::Role) -> String {
    match serde_json::to_value(role) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{role:?}").to_lowercase(),
    }
}
