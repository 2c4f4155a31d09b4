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
//! With [`BlobCopy`], the evidence blobs are copied too, between the two passes (after
//! the source's log and the destination's checkpoint are known to agree, before any tile,
//! so a destination whose checkpoint moved holds the evidence as well). Every blob the
//! source holds is copied, not only those the log's entries name: a backup must also
//! keep evidence uploaded for a publication not yet submitted, and the uploaders (the
//! quotas are counted from them at start). Each blob is streamed from the source into
//! the destination's staging directory while hashed, and installed only if it hashes to
//! its name ([`BlobStore::writer`]); a source blob that does not is refused with
//! [`MirrorError::TamperedBlob`]. A blob the destination already holds is read and
//! hashed there: the same bytes are skipped (so an interrupted mirror resumes), other
//! bytes stop the mirror ([`MirrorError::BlobDiffers`]); a blob is never replaced.
//!
//! May import: `merkle`, `note`, `tiles`, `storage` (the ports and the blob store),
//! `progress`.

use std::collections::HashMap;
use std::io::Read;

use sha2::{Digest, Sha256};

use crate::merkle::{self, CompactRange, Hash};
use crate::note::{self, Verifier};
use crate::storage::blobs::{BlobBackend, BlobError, BlobStore, HeldBlob, Upload};
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
    /// An evidence blob of the source does not hash to its name.
    #[error("evidence blob sha256:{hex} in the source does not hash to its name: {why}")]
    TamperedBlob {
        /// The blob's name (its SHA-256 as hex).
        hex: String,
        /// What did not match.
        why: String,
    },
    /// The destination holds other bytes under an evidence blob's name.
    #[error(
        "the destination holds other bytes under evidence blob sha256:{0}; a blob is never \
         replaced (remove the damaged copy to mirror it again)"
    )]
    BlobDiffers(String),
    /// The destination's blob store refused a copy (its size limit, or the disk).
    #[error("storing evidence blob sha256:{hex} at the destination: {source}")]
    Blob {
        /// The blob.
        hex: String,
        /// Why.
        source: BlobError,
    },
}

/// The evidence blobs to copy with the log (see the module documentation).
pub struct BlobCopy<'a> {
    /// The source's blobs, only read.
    pub from: &'a dyn BlobBackend,
    /// The destination's store, which stages, verifies and installs each copy.
    pub to: &'a BlobStore,
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
    /// Evidence blobs written to the destination.
    pub blobs_written: u64,
    /// Evidence blobs the destination already held with the same bytes.
    pub blobs_skipped: u64,
    /// Bytes of evidence blobs written.
    pub blob_bytes: u64,
}

/// Mirrors the log in `from` to `to`, and the evidence blobs of `blobs` if given (see the
/// module documentation); `log_key` verifies the checkpoints.
pub fn mirror(
    from: &MirrorEnd<'_>,
    to: &MirrorEnd<'_>,
    blobs: Option<&BlobCopy<'_>>,
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
    if let Some(blobs) = blobs {
        copy_blobs(blobs, &mut report)?;
    }
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

/// Copies every blob the source holds that the destination lacks, in digest order.
fn copy_blobs(copy: &BlobCopy<'_>, report: &mut MirrorReport) -> Result<(), MirrorError> {
    let mut held = copy.from.held()?;
    held.sort_by(|a, b| a.hex.cmp(&b.hex));
    let total = held.len() as u64;
    crate::progress::report("mirror blobs", 0, total);
    for (done, blob) in (1..).zip(&held) {
        if already_held(copy.to, &blob.hex)? {
            report.blobs_skipped += 1;
        } else {
            copy_blob(copy, blob)?;
            report.blobs_written += 1;
            report.blob_bytes += blob.size;
        }
        crate::progress::report("mirror blobs", done, total);
    }
    Ok(())
}

/// Whether the destination holds blob `hex` with the right bytes (read and hashed);
/// other bytes are [`MirrorError::BlobDiffers`].
fn already_held(to: &BlobStore, hex: &str) -> Result<bool, MirrorError> {
    if !to.backend().contains(hex)? {
        return Ok(false);
    }
    let opened = match to.open_blob(hex) {
        Ok(opened) => opened,
        // A bucket's copy that does not hash to its name.
        Err(StorageError::Corrupt(_)) => return Err(MirrorError::BlobDiffers(hex.into())),
        Err(e) => return Err(e.into()),
    };
    let Some((mut file, _)) = opened else {
        return Ok(false);
    };
    let mut hasher = Sha256::new();
    let what = || format!("reading blob {hex} at the destination");
    each_chunk(&mut file, what, |chunk| {
        hasher.update(chunk);
        Ok(())
    })?;
    if hex::encode(hasher.finalize()) != hex {
        return Err(MirrorError::BlobDiffers(hex.into()));
    }
    Ok(true)
}

/// Streams one blob from the source into the destination, which installs it only if it
/// hashes to its name; its uploader is kept.
fn copy_blob(copy: &BlobCopy<'_>, blob: &HeldBlob) -> Result<(), MirrorError> {
    let hex = &blob.hex;
    let tampered = |why: String| MirrorError::TamperedBlob {
        hex: hex.clone(),
        why,
    };
    let stored = |source: BlobError| match source {
        BlobError::DigestMismatch { actual, .. } => tampered(format!("its SHA-256 is {actual}")),
        BlobError::SizeMismatch { declared, actual } => tampered(format!(
            "it changed size while being copied ({declared} bytes, then {actual})"
        )),
        BlobError::Storage(StorageError::Conflict(_)) => MirrorError::BlobDiffers(hex.clone()),
        source => MirrorError::Blob {
            hex: hex.clone(),
            source,
        },
    };
    let (mut file, size) = match copy.from.open(hex) {
        Ok(Some(opened)) => opened,
        Ok(None) => return Err(MirrorError::Missing(format!("blobs/sha256/{hex}"))),
        // A bucket's object that does not hash to its name.
        Err(StorageError::Corrupt(why)) => return Err(tampered(why)),
        Err(e) => return Err(e.into()),
    };
    let upload = Upload {
        uploader: blob.owner.clone(),
        size,
    };
    let mut writer = copy.to.writer(hex, upload).map_err(stored)?;
    let what = || format!("reading blob {hex} in the source");
    each_chunk(&mut file, what, |chunk| writer.write(chunk).map_err(stored))?;
    writer.finish().map_err(stored)?;
    Ok(())
}

/// Reads `file` to its end in 64 KiB chunks, handing each to `sink`; `what` names the
/// read in an error.
fn each_chunk(
    file: &mut std::fs::File,
    what: impl Fn() -> String,
    mut sink: impl FnMut(&[u8]) -> Result<(), MirrorError>,
) -> Result<(), MirrorError> {
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = file
            .read(&mut chunk)
            .map_err(|e| StorageError::io(what(), e))?;
        if n == 0 {
            return Ok(());
        }
        sink(&chunk[..n])?;
    }
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
