//! Mirroring a log from one store to another (`srcos-catalog mirror`): every hash tile
//! and entry bundle a signed checkpoint covers, verified against that checkpoint before
//! anything is written, then the checkpoint itself, last.
//!
//! Two passes over the source, so that nothing unverified ever reaches the destination
//! (a create-only bucket could never take a wrong object back):
//! 1. **Verify the hash tiles**, level by level, bottom up: the level-0 hashes must
//!    rebuild the checkpoint's root, and each stored hash at level L + 1 must be the
//!    root of the full level-L tile below it. The SHA-256 of every tile is kept (32
//!    bytes per 256 hashes).
//! 2. **Copy**, in log order: each entry bundle must hold exactly its width of entries
//!    whose leaf hashes are its level-0 tile; every tile read again must have the digest
//!    pass 1 verified. Each object is written only if the destination lacks it; an
//!    object already there with the same bytes is skipped (so a mirror interrupted by
//!    `kill -9` resumes where it stopped), one with other bytes is refused on a
//!    create-only destination. Then the checkpoint: the destination's own, if any, must
//!    verify with the same key, be no larger, and have the root the source has at its
//!    size (otherwise the destination holds another log, and nothing is written).
//!
//! Only the tiles of the checkpoint's tree are copied: stale partial tiles a source keeps
//! (tlog-tiles allows them) are not. Progress goes to [`crate::progress`] as leaves.
//!
//! May import: `merkle`, `note`, `tiles`, `storage` (the ports), `progress`.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::merkle::{self, CompactRange, Hash};
use crate::note::{self, Verifier};
use crate::storage::{CheckpointLock, LockedCheckpoint, StorageError, TileStore};
use crate::tiles::{self, TileId, TileKind, HASH_BYTES, TILE_WIDTH};

/// Why a mirror stopped. Nothing is refused after the destination's checkpoint moved:
/// it is written last.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// A store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The source has no checkpoint.
    #[error("the source has no checkpoint")]
    NoCheckpoint,
    /// The source's checkpoint does not verify with the log key.
    #[error("the source's checkpoint does not verify with the log key: {0}")]
    BadCheckpoint(#[source] note::NoteError),
    /// An object the checkpoint covers is missing from the source.
    #[error("the source lacks {0}, which its checkpoint covers")]
    Missing(String),
    /// An object of the source does not match the signed checkpoint.
    #[error("{path} in the source does not match the signed checkpoint: {why}")]
    Tampered {
        /// The object.
        path: String,
        /// What did not match.
        why: String,
    },
    /// The destination already holds something another log or another tree put there.
    #[error("the destination holds another log: {0}")]
    Diverged(String),
}

/// One end of a mirror: the tiles, and where the checkpoint is.
pub struct MirrorEnd<'a> {
    /// The tile store.
    pub tiles: &'a dyn TileStore,
    /// The lock that holds the checkpoint (a directory's `checkpoint` file, or a
    /// bucket's coordinator), or `None` when the tile store's served copy is the
    /// checkpoint ([`TileStore::published_checkpoint`], a bucket read on its own).
    /// A destination's lock is swapped, then the tile store's served copy written, as
    /// the engine commits.
    pub lock: Option<&'a dyn CheckpointLock>,
}

impl MirrorEnd<'_> {
    fn checkpoint(&self) -> Result<Option<Vec<u8>>, StorageError> {
        match self.lock {
            Some(lock) => lock.read(),
            None => self.tiles.published_checkpoint(),
        }
    }

    fn install(
        &self,
        old: Option<(&[u8], u64)>,
        signed: &[u8],
        size: u64,
    ) -> Result<(), StorageError> {
        match self.lock {
            Some(lock) => {
                let old = old.map(|(signed, size)| LockedCheckpoint { size, signed });
                lock.swap(old, LockedCheckpoint { size, signed })?;
                self.tiles.publish_checkpoint(signed, size)
            }
            None => self.tiles.publish_checkpoint(signed, size),
        }
    }
}

/// What a mirror did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MirrorReport {
    /// The tree size of the checkpoint mirrored.
    pub size: u64,
    /// Objects written to the destination.
    pub written: u64,
    /// Objects the destination already held with the same bytes.
    pub skipped: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Whether the destination's checkpoint was replaced (false: it was this one).
    pub checkpoint_written: bool,
}

/// Mirrors the log in `from` to `to` (see the module documentation); `log_key` verifies
/// the checkpoints.
pub fn mirror(
    from: &MirrorEnd<'_>,
    to: &MirrorEnd<'_>,
    log_key: &Verifier,
) -> Result<MirrorReport, MirrorError> {
    let signed = from.checkpoint()?.ok_or(MirrorError::NoCheckpoint)?;
    let (checkpoint, _) =
        note::open_checkpoint(&signed, log_key).map_err(MirrorError::BadCheckpoint)?;
    let size = checkpoint.size;
    let existing = match to.checkpoint()? {
        Some(bytes) => {
            let (theirs, _) = note::open_checkpoint(&bytes, log_key).map_err(|e| {
                MirrorError::Diverged(format!(
                    "its checkpoint does not verify with this log's key ({e})"
                ))
            })?;
            if theirs.size > size {
                return Err(MirrorError::Diverged(format!(
                    "its checkpoint is larger ({}) than the source's ({size})",
                    theirs.size
                )));
            }
            Some((bytes, theirs.size, theirs.root))
        }
        None => None,
    };
    let verified = verify_hash_tiles(
        from.tiles,
        size,
        &checkpoint.root,
        existing.as_ref().map(|(_, s, r)| (*s, *r)),
    )?;
    let mut report = MirrorReport {
        size,
        ..MirrorReport::default()
    };
    copy_tiles(from.tiles, to.tiles, size, &verified, &mut report)?;
    match &existing {
        Some((bytes, _, _)) if *bytes == signed => {}
        _ => {
            to.install(
                existing.as_ref().map(|(b, s, _)| (b.as_slice(), *s)),
                &signed,
                size,
            )?;
            report.checkpoint_written = true;
        }
    }
    Ok(report)
}

/// The SHA-256 of every hash tile pass 1 verified, by path.
type Verified = HashMap<String, [u8; 32]>;

/// Pass 1: every hash tile of a tree of `size` leaves, checked against each other and
/// against `root`; `also` (a size and root the destination holds) must be a prefix of
/// the same tree.
fn verify_hash_tiles(
    source: &dyn TileStore,
    size: u64,
    root: &Hash,
    also: Option<(u64, Hash)>,
) -> Result<Verified, MirrorError> {
    let mut verified = Verified::new();
    let mut range = CompactRange::new();
    let diverged = |at: u64| {
        MirrorError::Diverged(format!(
            "its checkpoint's root at size {at} is not this log's"
        ))
    };
    if also.is_some_and(|(s, r)| s == 0 && r != merkle::empty_root()) {
        return Err(diverged(0));
    }
    // Level 0: the leaf hashes, which must rebuild the roots.
    let mut expected: Vec<Hash> = Vec::new();
    let mut level = 0u8;
    loop {
        let count = tiles::stored_hashes_at_level(size, level);
        if count == 0 {
            break;
        }
        let mut parents: Vec<Hash> = Vec::with_capacity((count / TILE_WIDTH) as usize);
        for first in (0..count).step_by(TILE_WIDTH as usize) {
            let Some(tile) = tiles::tile_for_hash(level, first, size) else {
                break;
            };
            let path = tile.path();
            let data = fetch(source, &path)?;
            let hashes = hashes_of(&path, &data, tile.width)?;
            if level == 0 {
                for hash in &hashes {
                    range.append(*hash, |_, _| {});
                    if let Some((at, theirs)) = also {
                        if range.size() == at && range.root() != theirs {
                            return Err(diverged(at));
                        }
                    }
                }
            } else {
                let want = usize::try_from(first)
                    .ok()
                    .and_then(|first| expected.get(first..first + hashes.len()))
                    .unwrap_or_default();
                if let Some(at) = (0..hashes.len()).find(|&i| want.get(i) != Some(&hashes[i])) {
                    // The tile below, or this one, was changed: name both.
                    let below =
                        tiles::tile_for_hash(level - 1, (first + at as u64) * TILE_WIDTH, size)
                            .map(|t| t.path())
                            .unwrap_or_default();
                    return Err(MirrorError::Tampered {
                        path: below,
                        why: format!("its root is not hash {} of {path}", first + at as u64),
                    });
                }
            }
            if tile.is_full() {
                parents.push(merkle::root_of_leaf_hashes(&hashes));
            }
            verified.insert(path, Sha256::digest(&data).into());
        }
        expected = parents;
        level += 1;
    }
    if &range.root() != root {
        return Err(MirrorError::Tampered {
            path: "tile/0/…".into(),
            why: "the level-0 hashes do not rebuild the checkpoint's root".into(),
        });
    }
    Ok(verified)
}

/// Pass 2: the entry bundles, checked against their verified level-0 tiles, and every
/// verified hash tile, copied in log order.
fn copy_tiles(
    source: &dyn TileStore,
    dest: &dyn TileStore,
    size: u64,
    verified: &Verified,
    report: &mut MirrorReport,
) -> Result<(), MirrorError> {
    crate::progress::report("mirror", 0, size);
    for bundle in tiles::entry_bundles(size) {
        let level0 = TileId {
            kind: TileKind::Hash(0),
            ..bundle
        };
        let hash_path = level0.path();
        let hash_tile = fetch_verified(source, &hash_path, verified)?;
        let path = bundle.path();
        let data = fetch(source, &path)?;
        let entries = tiles::decode_bundle(&data).ok_or_else(|| MirrorError::Tampered {
            path: path.clone(),
            why: "its framing is broken".into(),
        })?;
        let leaves: Vec<Hash> = entries.iter().map(|e| merkle::leaf_hash(e)).collect();
        if leaves != hashes_of(&hash_path, &hash_tile, level0.width)? {
            return Err(MirrorError::Tampered {
                path,
                why: format!(
                    "its {} entries do not hash to the {} leaf hashes of {hash_path}",
                    leaves.len(),
                    level0.width
                ),
            });
        }
        copy(dest, &path, &data, report)?;
        copy(dest, &hash_path, &hash_tile, report)?;
        let done = bundle.index * TILE_WIDTH + u64::from(bundle.width);
        crate::progress::report("mirror", done, size);
    }
    let mut level = 1u8;
    while tiles::stored_hashes_at_level(size, level) > 0 {
        let count = tiles::stored_hashes_at_level(size, level);
        for first in (0..count).step_by(TILE_WIDTH as usize) {
            let Some(tile) = tiles::tile_for_hash(level, first, size) else {
                break;
            };
            let path = tile.path();
            let data = fetch_verified(source, &path, verified)?;
            copy(dest, &path, &data, report)?;
        }
        level += 1;
    }
    Ok(())
}

/// Writes `data` at `path` unless the destination holds exactly it already.
fn copy(
    dest: &dyn TileStore,
    path: &str,
    data: &[u8],
    report: &mut MirrorReport,
) -> Result<(), MirrorError> {
    match dest.get(path)? {
        Some(held) if held == data => {
            report.skipped += 1;
            return Ok(());
        }
        Some(_) if dest.create_only() => {
            return Err(MirrorError::Diverged(format!(
                "{path} is there with other bytes"
            )))
        }
        // A file store's leftover (a torn write of an interrupted mirror): replaced.
        _ => {}
    }
    dest.put(path, data).map_err(|e| match e {
        StorageError::Conflict(why) => MirrorError::Diverged(why),
        e => MirrorError::Storage(e),
    })?;
    report.written += 1;
    report.bytes += data.len() as u64;
    Ok(())
}

fn fetch(source: &dyn TileStore, path: &str) -> Result<Vec<u8>, MirrorError> {
    source
        .get(path)?
        .ok_or_else(|| MirrorError::Missing(path.to_string()))
}

/// Reads a hash tile again and insists it is the one pass 1 verified.
fn fetch_verified(
    source: &dyn TileStore,
    path: &str,
    verified: &Verified,
) -> Result<Vec<u8>, MirrorError> {
    let data = fetch(source, path)?;
    let digest: [u8; 32] = Sha256::digest(&data).into();
    if verified.get(path) != Some(&digest) {
        return Err(MirrorError::Tampered {
            path: path.to_string(),
            why: "it changed while being mirrored".into(),
        });
    }
    Ok(data)
}

/// The hashes of a hash tile that must be `width` hashes long.
fn hashes_of(path: &str, data: &[u8], width: u16) -> Result<Vec<Hash>, MirrorError> {
    if data.len() != usize::from(width) * HASH_BYTES {
        return Err(MirrorError::Tampered {
            path: path.to_string(),
            why: format!(
                "{} bytes, not the {} of {width} hashes",
                data.len(),
                usize::from(width) * HASH_BYTES
            ),
        });
    }
    Ok(tiles::hashes_of(data))
}
