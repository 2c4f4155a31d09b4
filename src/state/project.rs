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
    evidence_bundle, to_canonical_vec, Catalog, CatalogError, DecisionKind, Effect, EntryStatus,
    RecordError,
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

/// The authenticated map of the catalog state, and the indexes that keep it current.
#[derive(Clone, Debug, Default)]
pub struct StateMap {
    tree: Tree,
    /// (target, subject) → where the entry is.
    entries: HashMap<(String, String), EntryMark>,
    /// (target, channel) → the published entries there, by `since`.
    heads: BTreeMap<(String, String), BTreeSet<(u64, String)>>,
    /// subject → targets.
    subjects: BTreeMap<String, BTreeSet<String>>,
    /// vkey → encoded roles.
    keys: BTreeMap<String, Arc<[u8]>>,
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
            map.refresh_entry(catalog, index?)?;
        }
        Ok(map)
    }

    /// Updates the map for one leaf just applied to `catalog`, given the leaf's effect.
    pub fn apply(&mut self, catalog: &Catalog, effect: &Effect) -> Result<(), StateError> {
        match effect {
            Effect::Genesis | Effect::GrantAdded { .. } => self.refresh_keys(catalog),
            Effect::Published {
                subject_digest,
                target,
                ..
            } => {
                let hex = subject_digest
                    .strip_prefix("sha256:")
                    .unwrap_or(subject_digest);
                let entry = catalog.find_entry(target, hex)?.ok_or_else(|| {
                    StateError::MissingEntry(format!("{target} {subject_digest}"))
                })?;
                self.refresh_entry(catalog, entry.publication_index)
            }
            Effect::Decided {
                entry: Some(id), ..
            } => {
                let index = catalog
                    .entry_index(id)?
                    .ok_or_else(|| StateError::MissingEntry(id.clone()))?;
                self.refresh_entry(catalog, index)
            }
            Effect::Decided {
                kind: DecisionKind::PublisherRevoke,
                ..
            } => self.refresh_keys(catalog),
            Effect::Decided { .. } | Effect::StateCommitted { .. } => Ok(()),
        }
    }

    /// The root hash.
    pub fn root(&self) -> Hash {
        self.tree.root()
    }

    /// An immutable snapshot of the tree (O(1)).
    pub fn tree(&self) -> Tree {
        self.tree.clone()
    }

    /// The number of keys in the map.
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    /// True if the map holds no key.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    fn set(&mut self, key: &MapKey, value: Option<Vec<u8>>) {
        self.tree.set(key.hash(), value.map(Arc::from));
    }

    /// Recomputes the roles of every known key and writes those that changed. The keys
    /// grow only with admin leaves, so this is cheap and runs only after those.
    fn refresh_keys(&mut self, catalog: &Catalog) -> Result<(), StateError> {
        let mut verifiers: Vec<_> = catalog.keys().iter().map(|(_, v)| v.clone()).collect();
        verifiers.extend(catalog.log_key().cloned());
        verifiers.extend(catalog.admins().iter().cloned());
        let mut now: BTreeMap<String, Arc<[u8]>> = BTreeMap::new();
        for v in verifiers {
            let id = v.short_id();
            let grants: Vec<GrantValue> = catalog
                .grants(&id)
                .iter()
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
                revoked: catalog.revocation(&id).map(|r| r.leaf_index),
            };
            if roles.admin || roles.log || !roles.grants.is_empty() || roles.revoked.is_some() {
                now.insert(v.to_vkey(), Arc::from(encode_value(&roles)?));
            }
        }
        let gone: Vec<String> = self
            .keys
            .keys()
            .filter(|k| !now.contains_key(*k))
            .cloned()
            .collect();
        for vkey in gone {
            self.keys.remove(&vkey);
            self.tree.set(MapKey::Key { vkey }.hash(), None);
        }
        for (vkey, value) in now {
            if self.keys.get(&vkey) != Some(&value) {
                self.tree.set(
                    MapKey::Key { vkey: vkey.clone() }.hash(),
                    Some(value.clone()),
                );
                self.keys.insert(vkey, value);
            }
        }
        Ok(())
    }

    /// Recomputes the entry created by publication leaf `index`, the subject's targets
    /// and the heads of the channels it left or joined.
    fn refresh_entry(&mut self, catalog: &Catalog, index: u64) -> Result<(), StateError> {
        let at = catalog.applied_size();
        let (view, publication) = catalog
            .entry_view(index, at)?
            .ok_or_else(|| StateError::MissingEntry(format!("publication leaf {index}")))?;
        let origin = catalog.origin().unwrap_or_default();
        let bundle = to_canonical_vec(&evidence_bundle(&view, &publication, origin))?;
        let value = EntryValue {
            channel: view.channel.clone(),
            evidence_bundle: Sha256Digest {
                sha256: hex::encode(Sha256::digest(&bundle)),
            },
            leaf_indices: view.leaf_indices.clone(),
            status: view.status.as_str().to_string(),
            subject_name: publication.subject_name.clone(),
        };
        let target = publication.target_catalog_ref;
        let subject = publication.subject_digest;
        self.set(
            &MapKey::Entry {
                target: target.clone(),
                subject: subject.clone(),
            },
            Some(encode_value(&value)?),
        );

        let targets = self.subjects.entry(subject.clone()).or_default();
        if targets.insert(target.clone()) {
            let value = SubjectValue {
                targets: targets.iter().cloned().collect(),
            };
            self.set(
                &MapKey::Subject {
                    subject: subject.clone(),
                },
                Some(encode_value(&value)?),
            );
        }

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
        let mark = EntryMark {
            channel: view.channel.clone(),
            published: view.status == EntryStatus::Published,
            since,
        };
        let old = self
            .entries
            .insert((target.clone(), subject.clone()), mark.clone());
        if old.as_ref() == Some(&mark) {
            return Ok(());
        }
        let mut touched = vec![mark.channel.clone()];
        if let Some(old) = old {
            if old.published {
                if let Some(set) = self.heads.get_mut(&(target.clone(), old.channel.clone())) {
                    set.remove(&(old.since, subject.clone()));
                }
            }
            touched.push(old.channel);
        }
        if mark.published {
            self.heads
                .entry((target.clone(), mark.channel.clone()))
                .or_default()
                .insert((mark.since, subject.clone()));
        }
        touched.dedup();
        for channel in touched {
            self.write_head(&target, &channel, catalog)?;
        }
        Ok(())
    }

    fn write_head(
        &mut self,
        target: &str,
        channel: &str,
        catalog: &Catalog,
    ) -> Result<(), StateError> {
        let slot = (target.to_string(), channel.to_string());
        let top = self.heads.get(&slot).and_then(|s| s.last().cloned());
        let key = MapKey::Head {
            target: slot.0.clone(),
            channel: slot.1.clone(),
        };
        match top {
            None => {
                self.heads.remove(&slot);
                self.set(&key, None);
            }
            Some((since, subject)) => {
                let hex = subject.strip_prefix("sha256:").unwrap_or(&subject);
                let entry = catalog
                    .find_entry(target, hex)?
                    .ok_or_else(|| StateError::MissingEntry(format!("{target} {subject}")))?;
                let value = HeadValue {
                    publication_index: entry.publication_index,
                    since,
                    subject,
                };
                self.set(&key, Some(encode_value(&value)?));
            }
        }
        Ok(())
    }
}

fn role_name(role: crate::catalog::Role) -> String {
    match serde_json::to_value(role) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{role:?}").to_lowercase(),
    }
}
