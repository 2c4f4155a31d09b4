//! Delta snapshots: the records the leaves after the newest snapshot wrote, laid on top
//! of it, so that a snapshot costs what changed since the last one rather than the whole
//! catalog, and a `kill -9` at any size leaves at most about `every` leaves to replay
//! (ADR 0019).
//!
//! A delta is a v2 snapshot file (`mod.rs`), `DATA/snapshot/<size, 20 digits>.delta`,
//! whose header names its base: the size and the SHA-256 the base file ends with. Its
//! body holds, as of its size, every record the leaves since its base wrote (their
//! publications, entries and lookups), and every older entry a decision among those
//! leaves updated, whole: a decision is the only thing that rewrites a record, so the
//! delta laid on its base (`storage::records::Stacked`) answers every read as the whole
//! catalog at its size would. Which older entries were updated comes from the catalog's
//! record of updates (`Records::updated_entries`), not from reading every entry; when
//! that record was dropped (it is bounded), the next snapshot is a whole one.
//!
//! A chain is one whole snapshot and the deltas on it, each on the one before. A whole
//! snapshot is written when the quarter rule says so (the cost of rewriting everything
//! stays proportional to the appends) or when the chain reaches [`MAX_DELTAS`] (every
//! layer is one more place a read may look). Installing a whole snapshot removes the
//! deltas below it.
//!
//! A delta has no state digest of its own (hashing the state needs every record):
//! start-up checks it as it checks a whole snapshot's index and blocks, against the tree
//! root at its size, and its base reference; `--snapshot-check digest` uses whole
//! snapshots only; `fsck --full` hashes the state the chain holds and compares it with
//! the replay's.
//!
//! May import: the snapshot writer (`super`), the `catalog` root re-exports.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use super::{
    install, refused, AdminState, BaseRef, Body, Out, SnapshotError, Target, Written, CHUNK,
};
use crate::catalog::{Catalog, KeyValue, Space};

/// The most deltas on one whole snapshot.
pub const MAX_DELTAS: usize = 32;

/// A delta's file name at `size`.
pub fn file_name(size: u64) -> String {
    format!("{size:020}.delta")
}

/// The installed deltas in `dir`, oldest first.
pub fn list(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut found = super::list_with(dir, ".delta");
    found.reverse();
    found
}

/// Removes the deltas at or below `size` (a whole snapshot at `size` holds them).
pub(crate) fn remove_below(dir: &Path, size: u64) {
    for (n, path) in list(dir) {
        if n <= size {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// What [`write`] did.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A delta was installed.
    Written(Written),
    /// Nothing was applied after the base.
    Nothing,
    /// The entries updated since the base are no longer known: write a whole snapshot.
    NeedsWhole,
}

/// Writes a delta of `catalog` at the size it has applied now on top of `base`, the
/// newest installed snapshot.
pub(crate) fn write(
    target: Target<'_>,
    catalog: &RwLock<Catalog>,
    base: Written,
) -> Result<Outcome, SnapshotError> {
    let (admin, updated): (AdminState, Option<Vec<u64>>) = {
        let catalog = catalog.read().unwrap_or_else(|p| p.into_inner());
        let admin = catalog.admin_state();
        let updated = catalog.updated_entries(base.size, admin.applied_size());
        (admin, updated)
    };
    let size = admin.applied_size();
    if size <= base.size {
        return Ok(Outcome::Nothing);
    }
    let Some(updated) = updated else {
        return Ok(Outcome::NeedsWhole);
    };
    let target = Target {
        name: file_name(size),
        base: Some(BaseRef {
            size: base.size,
            sha256: hex::encode(base.hash),
        }),
        ..target
    };
    let committed = target.committed;
    let written = install(&target, admin, |out, _| {
        body(out, catalog, (base.size, size), &updated, committed)
    })?;
    Ok(Outcome::Written(written))
}

/// A delta's body: publications and entries a chunk at a time in key order, then each
/// lookup space gathered over the range, sorted, and written.
fn body(
    out: &mut Out,
    catalog: &RwLock<Catalog>,
    range: (u64, u64),
    updated: &[u64],
    committed: &dyn super::Committed,
) -> Result<Body, SnapshotError> {
    let read = || catalog.read().unwrap_or_else(|p| p.into_inner());
    let mut records = 0u64;
    for space in Space::ALL {
        let mut frame = |key: &[u8], value: &[u8]| {
            records += 1;
            out.frame(space.tag(), key, value)
                .map_err(super::io("writing a delta snapshot"))
        };
        match space {
            Space::Publications | Space::Entries => {
                let mut cursor: Option<Vec<u8>> = None;
                loop {
                    super::given_up(committed)?;
                    let chunk =
                        read().delta_chunk(space, range, updated, cursor.as_deref(), CHUNK)?;
                    for (key, value) in &chunk.records {
                        frame(key, value)?;
                    }
                    match chunk.next {
                        Some(next) => cursor = Some(next),
                        None => break,
                    }
                }
            }
            Space::EntryIds | Space::Subjects | Space::Names => {
                super::given_up(committed)?;
                for (key, value) in lookups(&read, space, range)? {
                    frame(&key, &value)?;
                }
            }
        }
    }
    Ok(Body {
        records,
        state_digest: None,
    })
}

/// The lookup records of `space` the publications in `range` wrote, in key order.
fn lookups<'a>(
    read: &dyn Fn() -> std::sync::RwLockReadGuard<'a, Catalog>,
    space: Space,
    (from, below): (u64, u64),
) -> Result<Vec<KeyValue>, SnapshotError> {
    let mut all = Vec::new();
    let mut next = from;
    while next < below {
        let end = next.saturating_add(CHUNK as u64).min(below);
        read().delta_lookups(space, next, end, &mut all)?;
        next = end;
    }
    all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    if all.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(refused(format!(
            "two {space:?} records of the leaves {from}..{below} have one key"
        )));
    }
    Ok(all)
}

/// The SHA-256 the snapshot file at `path` ends with (not checked here: `verify_hash`
/// does that).
pub fn file_hash(path: &Path) -> Result<[u8; 32], SnapshotError> {
    use std::os::unix::fs::FileExt;
    let file =
        std::fs::File::open(path).map_err(super::io(format!("opening {}", path.display())))?;
    let len = file
        .metadata()
        .map_err(super::io(format!("reading {}", path.display())))?
        .len();
    let at = len
        .checked_sub(32)
        .ok_or_else(|| refused("it is too short to hold its hash"))?;
    let mut hash = [0u8; 32];
    file.read_exact_at(&mut hash, at)
        .map_err(super::io(format!("reading {}", path.display())))?;
    Ok(hash)
}

/// The files a snapshot at `path` (with `header`) is read from, whole snapshot first
/// and `path` last: each delta's base found by its size and checked by the SHA-256 it
/// names.
pub fn chain(
    dir: &Path,
    path: &Path,
    header: &super::SnapshotHeader,
) -> Result<Vec<PathBuf>, SnapshotError> {
    let mut links = vec![path.to_path_buf()];
    let mut base = header.base.clone();
    while let Some(b) = base {
        if links.len() > MAX_DELTAS + 1 {
            return Err(refused("its chain of deltas is longer than any written"));
        }
        let candidates = [
            dir.join(super::file_name(b.size)),
            dir.join(file_name(b.size)),
        ];
        let found = candidates
            .into_iter()
            .find(|p| file_hash(p).is_ok_and(|h| hex::encode(h) == b.sha256))
            .ok_or_else(|| {
                refused(format!(
                    "the snapshot it lies on (size {}, SHA-256 {}) is not installed",
                    b.size, b.sha256
                ))
            })?;
        let (below, _) = super::read_header(&found)?;
        if below.size != b.size {
            return Err(refused("its base is of another size than it names"));
        }
        base = below.base;
        links.push(found);
    }
    links.reverse();
    Ok(links)
}
