//! Reading the log's entries from the tiles and checking them, with `--audit` and
//! `--watch`.
//!
//! For every new entry: it is read from its entry bundle, its leaf hash must equal the
//! level-0 tile's hash, and the entries together must rebuild the checkpoint's root, as
//! must the hash tiles on their own. With `--audit` each entry is then re-checked with
//! [`audit_leaf`] against the catalog state before it (signatures, grants and the
//! authority's rules at that point of the log) and applied with [`Catalog::apply`], the
//! same projection the server runs. The catalog is not persisted: after a restart the
//! first scan starts from entry 0 and must reproduce the persisted cursor on the way.

use std::sync::Arc;

use crate::catalog::{audit_leaf, Catalog};
use crate::merkle::{leaf_hash, range_nodes, tree_root, CompactRange};
use crate::note::{Checkpoint, Verifier};
use crate::state::{FollowError, StateFollower};
use crate::storage::records::FreshRecords;
use crate::tiles::{bundle_for_leaf, decode_bundle, tile_for_hash, HASH_BYTES, TILE_WIDTH};

use super::state::EntriesCursor;
use super::tiles::{FetchError, Fetcher};
use super::watch::{WatchEvent, Watcher};

/// Why a scan stopped.
#[derive(Debug, Clone)]
pub enum ScanError {
    /// A tile could not be fetched: retry later.
    Unreachable(String),
    /// The entries are wrong, or an admission breaks the rules: an alert.
    Alert(String),
    /// A `StateCommitment` entry commits to another map root than the entries before
    /// it give: what was wrong, and the entry's bytes (evidence).
    BadStateCommitment(String, Vec<u8>),
}

impl From<FetchError> for ScanError {
    fn from(e: FetchError) -> ScanError {
        match e {
            FetchError::Unreachable(m) => ScanError::Unreachable(m),
            FetchError::Bad(m) => ScanError::Alert(m),
        }
    }
}

/// What one scan did.
#[derive(Debug, Clone, Default)]
pub struct ScanReport {
    /// First entry read.
    pub from: u64,
    /// One past the last entry read.
    pub to: u64,
    /// Admissions re-checked.
    pub audited: u64,
    /// Events for watched subjects among entries not reported before.
    pub events: Vec<WatchEvent>,
}

/// Where an auditor keeps the catalog it rebuilds: `None` in memory, or stores the
/// function makes (on disk, [`crate::storage::records::scratch_records`], its memory
/// stays flat at any log size).
#[derive(Clone, Default)]
pub struct AuditRecords(pub Option<Arc<FreshRecords>>);

impl std::fmt::Debug for AuditRecords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Some(_) => "AuditRecords(made)",
            None => "AuditRecords(memory)",
        })
    }
}

impl AuditRecords {
    /// An empty catalog over a fresh store.
    fn fresh_catalog(&self) -> Result<Catalog, ScanError> {
        match &self.0 {
            None => Ok(Catalog::new()),
            Some(fresh) => fresh()
                .map(Catalog::with_store)
                .map_err(|e| ScanError::Unreachable(format!("no record store for the audit: {e}"))),
        }
    }
}

/// The entry reader and auditor.
pub struct Scanner {
    cursor: EntriesCursor,
    /// Whether every entry is re-checked.
    audit: bool,
    /// Where the audited catalog's records go.
    records: AuditRecords,
    /// The audited catalog, from entry 0 to [`Scanner::read`] (`None`: not started).
    catalog: Option<Catalog>,
    /// The state map, once the log has committed to one (with `--audit`).
    state: Option<StateFollower>,
    watcher: Watcher,
    log_key: Verifier,
    /// How far this process has read (`None`: not yet; an auditor or a watcher then
    /// starts from entry 0).
    read: Option<u64>,
}

impl Scanner {
    /// Continues from `cursor` (or the start); audits if `audit`, with the catalog's
    /// records in `records`; reports `subjects`.
    pub fn new(
        cursor: Option<EntriesCursor>,
        audit: bool,
        records: AuditRecords,
        log_key: Verifier,
        subjects: Vec<String>,
    ) -> Scanner {
        Scanner {
            cursor: cursor.unwrap_or(EntriesCursor {
                size: 0,
                range: CompactRange::new(),
            }),
            audit,
            records,
            catalog: None,
            state: None,
            watcher: Watcher::new(subjects),
            log_key,
            read: None,
        }
    }

    /// How far the entries were read and checked.
    pub fn cursor(&self) -> &EntriesCursor {
        &self.cursor
    }

    /// Reads and checks the entries up to `checkpoint` (already verified and consistent
    /// with the previous one). On an error nothing is kept, and an auditor starts over.
    pub async fn scan(
        &mut self,
        fetch: &Fetcher<'_>,
        checkpoint: &Checkpoint,
    ) -> Result<ScanReport, ScanError> {
        let result = self.try_scan(fetch, checkpoint).await;
        if result.is_err() {
            self.catalog = None;
            self.state = None;
            self.watcher.reset();
            self.read = None;
        }
        result
    }

    async fn try_scan(
        &mut self,
        fetch: &Fetcher<'_>,
        checkpoint: &Checkpoint,
    ) -> Result<ScanReport, ScanError> {
        let to = checkpoint.size;
        let known = self.cursor.size;
        // An auditor or a watcher rebuilds its memory from entry 0 once per process.
        let from = if self.audit || self.watcher.is_active() {
            self.read.unwrap_or(0)
        } else {
            known
        };
        if self.audit && self.catalog.is_none() {
            self.catalog = Some(self.records.fresh_catalog()?);
        }
        let mut range = if from == known {
            self.cursor.range.clone()
        } else {
            CompactRange::new()
        };
        let mut report = ScanReport {
            from,
            to,
            ..ScanReport::default()
        };
        let mut index = from;
        while index < to {
            let bundle = bundle_for_leaf(index, to)
                .ok_or_else(|| ScanError::Alert(format!("no entry bundle for entry {index}")))?;
            let level0 = tile_for_hash(0, index, to)
                .ok_or_else(|| ScanError::Alert(format!("no level-0 tile for entry {index}")))?;
            let data = fetch.tile(bundle).await?;
            let hashes = fetch.tile(level0).await?;
            // `fetch.tile` checked the framing and the count; a bundle that still does
            // not decode must be an alert, never an empty list that would stall the scan.
            let entries = decode_bundle(&data).ok_or_else(|| {
                ScanError::Alert(format!("/{} is not an entry bundle", bundle.path()))
            })?;
            let first = bundle.index * TILE_WIDTH;
            for (offset, entry) in entries.iter().enumerate().skip((index - first) as usize) {
                let hash = leaf_hash(entry);
                let stored = hashes.get(offset * HASH_BYTES..(offset + 1) * HASH_BYTES);
                if stored != Some(&hash[..]) {
                    return Err(ScanError::Alert(format!(
                        "entry {index} in /{} does not hash to its leaf hash in /{}",
                        bundle.path(),
                        level0.path()
                    )));
                }
                range.append(hash, |_, _| {});
                if index + 1 == known && from < known && range.root() != self.cursor.range.root() {
                    return Err(ScanError::Alert(format!(
                        "entries 0..{known} now differ from the entries read before"
                    )));
                }
                self.audit(index, entry, checkpoint)?;
                let event = self.watcher.observe(index, entry);
                if index >= known {
                    report.events.extend(event);
                }
                if self.catalog.is_some() {
                    report.audited += 1;
                }
                index += 1;
            }
            if to - from > TILE_WIDTH {
                crate::progress::report("monitor", index, to); // catching up
            }
        }
        if range.root() != checkpoint.root {
            return Err(ScanError::Alert(format!(
                "the {to} entries do not rebuild the checkpoint's root"
            )));
        }
        let tiles = fetch.hashes_for(&range_nodes(0, to), to).await?;
        match tree_root(to, &tiles) {
            Ok(root) if root == checkpoint.root => {}
            Ok(_) => {
                return Err(ScanError::Alert(
                    "the hash tiles do not rebuild the checkpoint's root".into(),
                ))
            }
            Err(e) => return Err(ScanError::Alert(format!("hash tiles: {e:?}"))),
        }
        self.cursor = EntriesCursor { size: to, range };
        self.read = Some(to);
        Ok(report)
    }

    /// Re-checks and applies one entry (with `--audit`).
    fn audit(
        &mut self,
        index: u64,
        entry: &[u8],
        checkpoint: &Checkpoint,
    ) -> Result<(), ScanError> {
        let Some(catalog) = &mut self.catalog else {
            return Ok(());
        };
        audit_leaf(catalog, index, entry).map_err(|refusal| {
            ScanError::Alert(format!(
                "entry {index} was accepted by the log, but the authority's rules refuse it: {refusal}"
            ))
        })?;
        let effect = catalog.apply(index, entry).map_err(|e| {
            ScanError::Alert(format!(
                "entry {index} was accepted by the log, but the catalog cannot apply it: {e}"
            ))
        })?;
        match StateFollower::follow_lazily(&mut self.state, catalog, index, &effect) {
            Ok(()) => {}
            Err(e @ (FollowError::BadCommitment { .. } | FollowError::BadSize { .. })) => {
                return Err(ScanError::BadStateCommitment(e.to_string(), entry.to_vec()))
            }
            Err(e) => return Err(ScanError::Alert(format!("state map at entry {index}: {e}"))),
        }
        if index == 0 {
            let key_matches = catalog.log_key() == Some(&self.log_key);
            let origin_matches = catalog.origin() == Some(checkpoint.origin.as_str());
            if !key_matches || !origin_matches {
                return Err(ScanError::Alert(
                    "the genesis entry names another log key or origin than the one monitored"
                        .into(),
                ));
            }
        }
        Ok(())
    }
}
