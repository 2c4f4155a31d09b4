//! Checkpointed snapshots of the catalog projection, so that start-up replays only the
//! leaves after the newest one instead of the whole log (ADR 0008).
//!
//! A snapshot is one file, `DATA/snapshot/<size, 20 digits>.snap`, holding the catalog
//! as it was after the first `size` leaves: the admin-side state and every record of the
//! record store, byte for byte. Layout (v2, ADR 0009; v1 had no index and is still read):
//!
//! ```text
//! "srcos-catalog snapshot v2\n"
//! frames: [tag u8][key length u32 BE][value length u32 BE][key][value]
//!         tag 'A': the admin state (JSON, empty key), once, first;
//!         tags 'P' 'E' 'I' 'S' 'N': one record of that record-store space, each space
//!         in key order; grouped into blocks of ~64 KiB (`storage::records::blocks`)
//! index:  one entry per block: tag, first key, records, offset, length, SHA-256
//! header: JSON {size, root, stateDigest, origin, records,
//!               index: {offset, length, sha256}}
//! [header length u32 BE]
//! [SHA-256 of every byte above, 32 bytes]
//! ```
//!
//! The on-disk record store opens the frames in place as its base (ADR 0009): start-up
//! reads the header and the index, not the records, and each block's hash is checked
//! the first time the block is read.
//!
//! Written off the sequencer's path by a thread of its own (every so many leaves) and
//! on a clean shutdown: the records are read a chunk at a time under the catalog's read
//! lock, as of one size (records are tagged by leaf index and only appended to, see
//! `Records::snapshot_chunk`), and the state digest is hashed as they are copied
//! (`StateDigester`). The file is written to a temporary name, fsynced, renamed, and
//! the directory fsynced, so a crash leaves the old snapshot or the new one, never a
//! torn one; a snapshot is only installed once its size is committed.
//!
//! Nothing in a snapshot is trusted before it is checked (`open.rs`): the file hash,
//! the size against the checkpoint, the root at that size against the tiles, and on
//! request the state digest of what was loaded. A snapshot that fails is refused with
//! the reason logged, and start-up falls back to an older one or a full replay.
//!
//! May import: the `storage` ports and `durable`, `merkle`, the `catalog` root
//! re-exports, and the engine's reader.

pub mod delta;

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::reader::{ReadError, TileCache, TreeView};
use super::state_digest::sorted_state_digest_at;
use super::subject_sort::{Merged, SubjectSort};
use super::{Shared, WriteState};
use crate::catalog::{
    AdminState, Catalog, CatalogError, MemoryStore, Put, RecordError, RecordStore, Space,
    StateDigester,
};
use crate::merkle::{self, Hash};
use crate::storage::durable::{
    create_dir_all_durable, create_options, sync_dir, PRIVATE_FILE_MODE,
};
use crate::storage::records::blocks::{encode_frame, BlockTable, BlockWriter, MAX_FRAME};
use crate::storage::records::FreshRecords;
use crate::storage::TileStore;

/// The snapshot directory's name inside the data directory.
pub const DIR: &str = "snapshot";

/// The magic line of the files written now.
const MAGIC: &[u8] = b"srcos-catalog snapshot v2\n";
/// The magic line of snapshots without an index (read, and copied at start-up).
const MAGIC_V1: &[u8] = b"srcos-catalog snapshot v1\n";
const ADMIN_TAG: u8 = b'A';
/// Records read per hold of the catalog's read lock.
const CHUNK: usize = 2048;
/// Puts written to the record store per batch while loading.
const LOAD_BATCH: usize = 8192;
/// The largest index read (~80 bytes a block of 64 KiB: a snapshot of ~800 GB).
const MAX_INDEX: u64 = 1 << 30;
/// The fewest leaves since the last snapshot for which a clean shutdown writes one: a
/// local command appending an entry or two does not rewrite the whole catalog at exit,
/// and the next start replays at most these.
pub const SHUTDOWN_TAIL: u64 = 256;
/// Snapshots kept: the newest, and the one before it in case the newest is refused.
const KEEP: usize = 2;

/// What a snapshot says it is, checked before anything else is read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SnapshotHeader {
    /// The tree size whose catalog it holds.
    pub size: u64,
    /// The tree root at that size (hex).
    pub root: String,
    /// SHA-256 of the canonical catalog state at that size (hex), as
    /// `/v1/catalog/state?tree_size=size` and `replay` give it. A whole snapshot's
    /// only: a delta holds too few records to hash the state from them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_digest: Option<String>,
    /// The log origin.
    pub origin: String,
    /// Record-store records it holds.
    pub records: u64,
    /// Where its block index lies and its hash (v2; absent in v1 files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<IndexRef>,
    /// A delta's: the snapshot it lies on (`delta.rs`); absent in a whole snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseRef>,
}

/// The snapshot a delta lies on: its size and the SHA-256 at its end, so that a delta
/// is only ever laid on the very file it was written over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BaseRef {
    /// The base's tree size.
    pub size: u64,
    /// The SHA-256 the base file ends with (hex).
    pub sha256: String,
}

/// Where a snapshot's block index lies, and its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IndexRef {
    /// Its offset in the file (the end of the frames).
    pub offset: u64,
    /// Its length in bytes (it ends where the header starts).
    pub length: u64,
    /// SHA-256 of its bytes (hex).
    pub sha256: String,
}

/// Why a snapshot could not be written or was refused.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The operating system refused an operation.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The snapshot is not what it must be (the reason it is refused).
    #[error("{0}")]
    Refused(String),
    /// Reading the catalog failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The record store failed.
    #[error(transparent)]
    Records(#[from] RecordError),
    /// A tile could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> SnapshotError {
    let context = context.into();
    move |source| SnapshotError::Io { context, source }
}

fn refused(reason: impl Into<String>) -> SnapshotError {
    SnapshotError::Refused(reason.into())
}

/// The snapshot directory of the data directory `data_dir`.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join(DIR)
}

fn file_name(size: u64) -> String {
    format!("{size:020}.snap")
}

/// The installed whole snapshots in `dir`, newest first (deltas: [`delta::list`]).
pub fn list(dir: &Path) -> Vec<(u64, PathBuf)> {
    list_with(dir, ".snap")
}

/// The files in `dir` named `<size, 20 digits><suffix>`, newest first.
fn list_with(dir: &Path, suffix: &str) -> Vec<(u64, PathBuf)> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(u64, PathBuf)> = read
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name();
            let name = name.to_str()?;
            let size = name.strip_suffix(suffix)?;
            (size.len() == 20 && size.bytes().all(|b| b.is_ascii_digit()))
                .then(|| Some((size.parse().ok()?, e.path())))?
        })
        .collect();
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    found
}

/// A writer that hashes what it writes.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Hashing<W> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.hash.update(bytes);
        self.inner.write_all(bytes)
    }
}

/// Writes frames into the file and accounts for them in the block index.
pub(crate) struct Frames<W> {
    out: Hashing<W>,
    blocks: BlockWriter,
    buf: Vec<u8>,
}

impl<W: Write> Frames<W> {
    fn frame(&mut self, tag: u8, key: &[u8], value: &[u8]) -> std::io::Result<()> {
        encode_frame(&mut self.buf, tag, key, value);
        self.blocks.push(tag, key, &self.buf);
        self.out.put(&self.buf)
    }
}

/// Where the snapshot being written gets its tree: the committed size now, and a way to
/// wait for a size to be committed.
pub(crate) trait Committed {
    /// The committed size and its root.
    fn committed(&self) -> (u64, Hash);
    /// Waits a little for more to be committed; false if the log is stopping or failed
    /// (the size it waits for may then never be committed).
    fn wait(&self) -> bool;
    /// Whether a snapshot being written must be given up now (checked between chunks):
    /// a frontend's projection stops its snapshots before the log opens them on a
    /// takeover. A log's own snapshots are never given up (the one at shutdown is
    /// written while it stops).
    fn abandoned(&self) -> bool {
        false
    }
}

/// What a [`Snapshotter`] writes snapshots of: a catalog applied from a log's tiles,
/// and how far that log is committed. The sequencing log's shared state, and a
/// frontend's projection of the log it follows (`log::projection`), so that a frontend
/// restarts, and takes over as the sequencer, from a snapshot instead of entry 0.
pub(crate) trait Source: Committed {
    /// The catalog, read a chunk at a time under its read lock.
    fn catalog(&self) -> &RwLock<Catalog>;
    /// The log's tiles (a snapshot's root at its size is read from them).
    fn tiles(&self) -> &dyn TileStore;
    /// The log's origin.
    fn origin(&self) -> &str;
    /// Waits up to `timeout`, or less if the source stops; true once it has stopped
    /// (the snapshot thread then ends).
    fn stopped_after(&self, timeout: Duration) -> bool;
    /// Whether snapshots may be written now (a failed log or projection writes none).
    fn healthy(&self) -> bool;
}

/// Writes a snapshot of `catalog` at the size it has applied now into `dir`, unless that
/// size is at most `after`. Returns the size written. The catalog is read a chunk at a
/// time, so the sequencer is held up for one chunk at most; the file is installed only
/// once its size is committed (`committed`), with its root read from `tiles`.
pub(crate) fn write(
    dir: &Path,
    catalog: &RwLock<Catalog>,
    tiles: &dyn TileStore,
    committed: &dyn Committed,
    after: u64,
) -> Result<Option<Written>, SnapshotError> {
    let admin = {
        let catalog = catalog.read().unwrap_or_else(|p| p.into_inner());
        catalog.admin_state()
    };
    let size = admin.applied_size();
    if size <= after || size == 0 {
        return Ok(None);
    }
    let origin = admin.origin().unwrap_or_default().to_string();
    let target = Target {
        dir,
        name: file_name(size),
        tiles,
        committed,
        origin: &origin,
        base: None,
    };
    let written = install(&target, admin, |out, admin| {
        whole_body(out, catalog, admin, committed, dir)
    })?;
    for (_, old) in list(dir).into_iter().skip(KEEP) {
        let _ = std::fs::remove_file(old);
    }
    delta::remove_below(dir, written.size);
    Ok(Some(written))
}

/// Where a snapshot being written goes, and what its header needs.
pub(crate) struct Target<'a> {
    dir: &'a Path,
    /// Its installed file name.
    name: String,
    tiles: &'a dyn TileStore,
    committed: &'a dyn Committed,
    origin: &'a str,
    /// The snapshot a delta lies on.
    base: Option<BaseRef>,
}

/// What a snapshot's body wrote: its records, and the state digest (a whole snapshot's).
pub(crate) struct Body {
    records: u64,
    state_digest: Option<[u8; 32]>,
}

/// A snapshot written and installed: its size and the SHA-256 it ends with (the base
/// reference of the next delta).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Written {
    /// Its tree size.
    pub size: u64,
    /// The SHA-256 its file ends with.
    pub hash: [u8; 32],
}

/// The frames of a snapshot being written (into its temporary file).
pub(crate) type Out = Frames<BufWriter<File>>;

/// Writes a snapshot at `admin`'s size to a temporary name, `body` writing its records,
/// fsyncs it, renames it to `target.name` and fsyncs the directory, so a crash leaves
/// the old snapshots or the new one too, never a torn one.
pub(crate) fn install(
    target: &Target<'_>,
    admin: AdminState,
    body: impl FnOnce(&mut Out, &AdminState) -> Result<Body, SnapshotError>,
) -> Result<Written, SnapshotError> {
    let dir = target.dir;
    let size = admin.applied_size();
    create_dir_all_durable(dir).map_err(io(format!("creating {}", dir.display())))?;
    remove_temporaries(dir);
    let tmp = dir.join(format!(".{size:020}.tmp"));
    let (header, hash, file) = match write_file(&tmp, target, admin, body) {
        Ok(done) => done,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    file.sync_all()
        .map_err(io(format!("syncing {}", tmp.display())))?;
    drop(file);
    let path = dir.join(&target.name);
    std::fs::rename(&tmp, &path).map_err(io(format!("installing {}", path.display())))?;
    sync_dir(dir).map_err(io(format!("syncing {}", dir.display())))?;
    Ok(Written {
        size: header.size,
        hash,
    })
}

/// Removes temporary files a crash during a snapshot write left behind.
pub(crate) fn remove_temporaries(dir: &Path) {
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    for e in read.flatten() {
        let name = e.file_name();
        if name
            .to_str()
            .is_some_and(|n| n.starts_with('.') && n.ends_with(".tmp"))
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn write_file(
    tmp: &Path,
    target: &Target<'_>,
    admin: AdminState,
    body: impl FnOnce(&mut Out, &AdminState) -> Result<Body, SnapshotError>,
) -> Result<(SnapshotHeader, [u8; 32], File), SnapshotError> {
    let size = admin.applied_size();
    let file = create_options(PRIVATE_FILE_MODE)
        .open(tmp)
        .map_err(io(format!("creating {}", tmp.display())))?;
    let mut out = Hashing {
        inner: BufWriter::with_capacity(1 << 20, file),
        hash: Sha256::new(),
    };
    let writing = || io(format!("writing {}", tmp.display()));
    out.put(MAGIC).map_err(writing())?;
    let mut out = Frames {
        out,
        blocks: BlockWriter::new(MAGIC.len() as u64),
        buf: Vec::new(),
    };
    let admin_json = serde_json::to_vec(&admin)
        .map_err(|e| refused(format!("encoding the admin state: {e}")))?;
    out.frame(ADMIN_TAG, &[], &admin_json).map_err(writing())?;
    let Body {
        records,
        state_digest,
    } = body(&mut out, &admin)?;
    let Frames {
        mut out, blocks, ..
    } = out;
    let index_offset = blocks.end();
    let index = blocks.finish();
    out.put(&index).map_err(writing())?;
    let index = IndexRef {
        offset: index_offset,
        length: index.len() as u64,
        sha256: hex::encode(Sha256::digest(&index)),
    };
    let root = committed_root(target, size)?;
    let header = SnapshotHeader {
        size,
        root: hex::encode(root),
        state_digest: state_digest.map(hex::encode),
        origin: target.origin.to_string(),
        records,
        index: Some(index),
        base: target.base.clone(),
    };
    let header_json =
        serde_json::to_vec(&header).map_err(|e| refused(format!("encoding the header: {e}")))?;
    out.put(&header_json).map_err(writing())?;
    let len = u32::try_from(header_json.len()).unwrap_or(u32::MAX);
    out.put(&len.to_be_bytes()).map_err(writing())?;
    let Hashing { mut inner, hash } = out;
    let hash: [u8; 32] = hash.finalize().into();
    inner.write_all(&hash).map_err(writing())?;
    let file = inner.into_inner().map_err(|e| SnapshotError::Io {
        context: format!("writing {}", tmp.display()),
        source: e.into_error(),
    })?;
    Ok((header, hash, file))
}

/// The root at `size` once `size` is committed: a snapshot is only installed for a
/// committed size, with the root the tiles give it.
fn committed_root(target: &Target<'_>, size: u64) -> Result<Hash, SnapshotError> {
    let (committed_size, committed_root) = loop {
        let (n, root) = target.committed.committed();
        if n >= size {
            break (n, root);
        }
        if !target.committed.wait() {
            return Err(refused(format!(
                "size {size} was never committed; the snapshot is abandoned"
            )));
        }
    };
    if committed_size == size {
        return Ok(committed_root);
    }
    let cache = TileCache::default();
    let view = TreeView::new(target.tiles, &cache, committed_size);
    merkle::tree_root(size, &view).map_err(|e| refused(format!("the tree root at {size}: {e}")))
}

/// The body of a whole snapshot: every record as of the admin state's size, each space
/// in key order, read a chunk at a time, and the state digest hashed as they are copied.
/// The digest's subject section takes the publications in subject order: they are
/// sorted on disk in `spill` as they are copied in leaf order (ADR 0020), and each is
/// checked against the `Subjects` key it is hashed under.
fn whole_body(
    out: &mut Out,
    catalog: &RwLock<Catalog>,
    admin: &AdminState,
    committed: &dyn Committed,
    spill: &Path,
) -> Result<Body, SnapshotError> {
    let size = admin.applied_size();
    // The admin-side state at `size`, with no records: what the digest's admin parts read.
    let admin_catalog = Catalog::restore(admin.clone(), Box::new(MemoryStore::default()))
        .map_err(|(e, _)| SnapshotError::Records(e))?;
    let mut digester = StateDigester::begin(&admin_catalog, size)?;
    let mut sort = Some(SubjectSort::new(spill));
    let mut sorted: Option<Merged> = None;
    let mut records = 0u64;
    for space in Space::ALL {
        if space == Space::EntryIds {
            digester.admin(&admin_catalog)?;
        }
        if space == Space::Subjects {
            sorted = sort.take().map(SubjectSort::finish).transpose()?;
        }
        let mut cursor: Option<Vec<u8>> = None;
        loop {
            given_up(committed)?;
            let chunk = {
                let catalog = catalog.read().unwrap_or_else(|p| p.into_inner());
                catalog.snapshot_chunk(space, cursor.as_deref(), size, CHUNK)?
            };
            for (key, value) in &chunk.records {
                match (space, sort.as_mut(), sorted.as_mut()) {
                    (Space::Publications, Some(sort), _) => sort.push(value)?,
                    (Space::Entries, ..) => digester.entry(value)?,
                    (Space::Subjects, _, Some(sorted)) => sorted.digest_next(&mut digester, key)?,
                    _ => {}
                }
                out.frame(space.tag(), key, value)
                    .map_err(io("writing a snapshot"))?;
            }
            records += chunk.records.len() as u64;
            match chunk.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    if let Some(sorted) = sorted.as_mut() {
        sorted.all_listed()?;
    }
    Ok(Body {
        records,
        state_digest: Some(digester.finish()),
    })
}

/// Refuses to go on with a snapshot whose source gave it up ([`Committed::abandoned`]).
pub(crate) fn given_up(committed: &dyn Committed) -> Result<(), SnapshotError> {
    match committed.abandoned() {
        true => Err(refused("the snapshot was given up: its source stopped")),
        false => Ok(()),
    }
}

/// Reads the header of the snapshot at `path` (and checks its frame: magic, lengths),
/// without reading the body. Returns it and where its frames end (v1: where the header
/// starts; v2: where the index starts).
pub fn read_header(path: &Path) -> Result<(SnapshotHeader, u64), SnapshotError> {
    let mut file = File::open(path).map_err(io(format!("opening {}", path.display())))?;
    let len = file
        .metadata()
        .map_err(io(format!("reading {}", path.display())))?
        .len();
    let min = MAGIC.len() as u64 + 36;
    if len < min {
        return Err(refused(format!(
            "it is {len} bytes, too short to be a snapshot"
        )));
    }
    let mut magic = vec![0u8; MAGIC.len()];
    file.read_exact(&mut magic)
        .map_err(io(format!("reading {}", path.display())))?;
    if magic != MAGIC && magic != MAGIC_V1 {
        return Err(refused("it does not start with the snapshot magic line"));
    }
    let mut tail = [0u8; 4];
    file.seek(SeekFrom::Start(len - 36))
        .and_then(|_| file.read_exact(&mut tail))
        .map_err(io(format!("reading {}", path.display())))?;
    let header_len = u64::from(u32::from_be_bytes(tail));
    if header_len > 4096 || header_len > len - min {
        return Err(refused(format!(
            "its header length {header_len} is impossible"
        )));
    }
    let body_end = len - 36 - header_len;
    let mut header = vec![0u8; header_len as usize];
    file.seek(SeekFrom::Start(body_end))
        .and_then(|_| file.read_exact(&mut header))
        .map_err(io(format!("reading {}", path.display())))?;
    let header: SnapshotHeader = serde_json::from_slice(&header)
        .map_err(|e| refused(format!("its header does not parse: {e}")))?;
    match (&header.index, magic == MAGIC) {
        (None, false) => Ok((header, body_end)),
        (Some(index), true) => {
            let fits = index.offset >= MAGIC.len() as u64
                && index.length <= MAX_INDEX
                && index.offset.checked_add(index.length) == Some(body_end);
            if !fits {
                return Err(refused("its index is not where its header says"));
            }
            let frames_end = index.offset;
            Ok((header, frames_end))
        }
        _ => Err(refused("its header does not match its version")),
    }
}

/// Opens the frames of the v2 snapshot at `path` in place (`header` from
/// [`read_header`]): reads its index and checks it against the hash in the header, and
/// reads the admin state (its block's hash checked). Reads no record: each block's hash
/// is checked when it is first read. Returns the table and the admin state.
pub fn open_table(
    path: &Path,
    header: &SnapshotHeader,
) -> Result<(BlockTable, AdminState), SnapshotError> {
    let index = header
        .index
        .as_ref()
        .ok_or_else(|| refused("it has no block index (a v1 snapshot)"))?;
    let file = File::open(path).map_err(io(format!("opening {}", path.display())))?;
    let mut bytes = vec![0u8; usize::try_from(index.length).unwrap_or(usize::MAX)];
    std::os::unix::fs::FileExt::read_exact_at(&file, &mut bytes, index.offset)
        .map_err(io(format!("reading {}", path.display())))?;
    if hex::encode(Sha256::digest(&bytes)) != index.sha256 {
        return Err(refused("its index's SHA-256 does not match its header"));
    }
    let table = BlockTable::open(path, file, &bytes, MAGIC.len() as u64, index.offset)
        .map_err(|e| refused(e.to_string()))?;
    let admin = match table.frames(ADMIN_TAG)?.as_slice() {
        [(key, value)] if key.is_empty() => serde_json::from_slice(value)
            .map_err(|e| refused(format!("the admin state does not parse: {e}")))?,
        _ => return Err(refused("it does not hold exactly one admin state")),
    };
    if table.records() != header.records {
        return Err(refused(format!(
            "it holds {} records, its header says {}",
            table.records(),
            header.records
        )));
    }
    Ok((table, admin))
}

/// Checks the SHA-256 at the end of the snapshot at `path` against every byte before it.
pub fn verify_hash(path: &Path) -> Result<(), SnapshotError> {
    let file = File::open(path).map_err(io(format!("opening {}", path.display())))?;
    let len = file
        .metadata()
        .map_err(io(format!("reading {}", path.display())))?
        .len();
    let Some(body) = len.checked_sub(32) else {
        return Err(refused("it is too short to hold its hash"));
    };
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut hash = Sha256::new();
    let mut left = body;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let n = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        reader
            .read_exact(&mut buf[..n])
            .map_err(io(format!("reading {}", path.display())))?;
        hash.update(&buf[..n]);
        left -= n as u64;
    }
    let mut stored = [0u8; 32];
    reader
        .read_exact(&mut stored)
        .map_err(io(format!("reading {}", path.display())))?;
    if stored != <[u8; 32]>::from(hash.finalize()) {
        return Err(refused("its SHA-256 does not match its contents"));
    }
    Ok(())
}

/// Loads the frames of the snapshot at `path` (ending at `body_end`, from
/// [`read_header`]): its records into `store`, which must be empty, and its admin state.
/// The caller checks the hash first ([`verify_hash`]); the frames are still parsed
/// strictly.
pub fn load(
    path: &Path,
    body_end: u64,
    store: &mut dyn RecordStore,
) -> Result<(AdminState, u64), SnapshotError> {
    let file = File::open(path).map_err(io(format!("opening {}", path.display())))?;
    let mut reader = BufReader::with_capacity(1 << 20, file).take(body_end);
    let reading = || io(format!("reading {}", path.display()));
    let mut magic = vec![0u8; MAGIC.len()];
    reader.read_exact(&mut magic).map_err(reading())?;
    let mut admin: Option<AdminState> = None;
    let mut batch = Vec::with_capacity(LOAD_BATCH);
    let mut records = 0u64;
    let mut last_space: Option<Space> = None;
    loop {
        let mut tag = [0u8; 1];
        if reader.read(&mut tag).map_err(reading())? == 0 {
            break;
        }
        let mut lengths = [0u8; 8];
        reader.read_exact(&mut lengths).map_err(reading())?;
        let key_len = u32::from_be_bytes([lengths[0], lengths[1], lengths[2], lengths[3]]);
        let value_len = u32::from_be_bytes([lengths[4], lengths[5], lengths[6], lengths[7]]);
        if key_len > MAX_FRAME || value_len > MAX_FRAME {
            return Err(refused("a frame is too large"));
        }
        let mut key = vec![0u8; key_len as usize];
        reader.read_exact(&mut key).map_err(reading())?;
        let mut value = vec![0u8; value_len as usize];
        reader.read_exact(&mut value).map_err(reading())?;
        if tag[0] == ADMIN_TAG {
            if admin.is_some() || last_space.is_some() {
                return Err(refused("the admin state is not the first and only one"));
            }
            admin = Some(
                serde_json::from_slice(&value)
                    .map_err(|e| refused(format!("the admin state does not parse: {e}")))?,
            );
            continue;
        }
        let space = Space::ALL
            .into_iter()
            .find(|s| s.tag() == tag[0])
            .ok_or_else(|| refused(format!("unknown frame tag {}", tag[0])))?;
        if admin.is_none() || last_space.is_some_and(|l| l > space) {
            return Err(refused("its frames are out of order"));
        }
        last_space = Some(space);
        batch.push(Put { space, key, value });
        records += 1;
        if batch.len() >= LOAD_BATCH {
            store.write(std::mem::take(&mut batch))?;
        }
    }
    store.write(batch)?;
    let admin = admin.ok_or_else(|| refused("it holds no admin state"))?;
    Ok((admin, records))
}

/// How a snapshot is checked at start-up before the catalog is restored from it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum SnapshotCheck {
    /// Do not load snapshots: replay the whole log (as before snapshots existed).
    Off,
    /// Its size against the checkpoint, its root against the tiles, the SHA-256 of its
    /// index (from its header); each block's SHA-256 when the block is first read (a
    /// v2 snapshot opened in place, ADR 0009). A v1 snapshot, or one copied into a
    /// store that cannot open it in place, is checked as with `Hash`.
    #[default]
    Index,
    /// As `Index`, and the SHA-256 of the whole file and of every block, before it is
    /// used (reads the whole file).
    Hash,
    /// As `Hash`, and then the state digest of the catalog loaded from it must equal the
    /// digest it recorded (reads every record once more).
    Digest,
}

/// The snapshots a running log has installed: the newest (a delta's base) and the
/// chain it ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Chain {
    /// The newest snapshot, whole or delta.
    pub newest: Option<Written>,
    /// The size of the whole snapshot the chain starts from.
    pub whole: u64,
    /// The deltas on it.
    pub deltas: usize,
}

impl Chain {
    fn size(&self) -> u64 {
        self.newest.map_or(0, |w| w.size)
    }
}

/// Writes snapshots for a running log: a delta every so many leaves (from its own
/// thread) and at a clean shutdown, and a whole one when the chain is long enough.
pub(crate) struct Snapshotter {
    dir: PathBuf,
    every: u64,
    /// The snapshots installed; held while one is written, so two writes never overlap.
    chain: Mutex<Chain>,
}

impl Committed for Shared {
    fn committed(&self) -> (u64, Hash) {
        let head = self.head();
        (head.checkpoint.size, head.checkpoint.root)
    }

    fn wait(&self) -> bool {
        !self.wait_unless_stopping(Duration::from_millis(20)) && self.state() != WriteState::Failed
    }
}

impl Source for Shared {
    fn catalog(&self) -> &RwLock<Catalog> {
        &self.catalog
    }

    fn tiles(&self) -> &dyn TileStore {
        self.tiles.as_ref()
    }

    fn origin(&self) -> &str {
        &self.origin
    }

    fn stopped_after(&self, timeout: Duration) -> bool {
        self.wait_unless_stopping(timeout)
    }

    fn healthy(&self) -> bool {
        self.state() == WriteState::Healthy
    }
}

impl Snapshotter {
    /// A snapshotter writing to `dir` every `every` leaves, after the snapshots `chain`
    /// (those start-up restored from).
    pub(crate) fn new(dir: PathBuf, every: u64, chain: Chain) -> Snapshotter {
        Snapshotter {
            dir,
            every: every.max(1),
            chain: Mutex::new(chain),
        }
    }

    /// Takes `chain` as the snapshots installed (a frontend's projection restored from
    /// it after this snapshotter was made).
    pub(crate) fn restored(&self, chain: Chain) {
        *self.chain.lock().unwrap_or_else(|p| p.into_inner()) = chain;
    }

    /// Whether the next snapshot must be whole: there is no base, the chain is at its
    /// longest, or a quarter of the log came since the whole one (at least `every`), so
    /// that rewriting every record stays proportional to the appends.
    fn whole_due(&self, chain: &Chain, size: u64) -> bool {
        chain.newest.is_none()
            || chain.deltas >= delta::MAX_DELTAS
            || size.saturating_sub(chain.whole) >= self.every.max(chain.whole / 4)
    }

    fn target<'a>(&'a self, source: &'a dyn Source) -> Target<'a> {
        Target {
            dir: &self.dir,
            name: String::new(),
            tiles: source.tiles(),
            committed: source,
            origin: source.origin(),
            base: None,
        }
    }

    /// Writes a whole snapshot of the catalog at the size it has applied now, even at
    /// the size of the newest one (replacing it), and returns that size.
    pub(crate) fn write_now(&self, source: &dyn Source) -> Result<Option<u64>, SnapshotError> {
        let mut chain = self.chain.lock().unwrap_or_else(|p| p.into_inner());
        let written = write(&self.dir, source.catalog(), source.tiles(), source, 0)?;
        if let Some(w) = written {
            self.installed(source, &mut chain, w, true);
        }
        Ok(written.map(|w| w.size))
    }

    fn installed(&self, source: &dyn Source, chain: &mut Chain, written: Written, whole: bool) {
        *chain = match whole {
            true => Chain {
                newest: Some(written),
                whole: written.size,
                deltas: 0,
            },
            false => Chain {
                newest: Some(written),
                deltas: chain.deltas + 1,
                ..*chain
            },
        };
        let catalog = source.catalog().read().unwrap_or_else(|p| p.into_inner());
        catalog.forget_updates_below(written.size);
    }

    /// Writes a snapshot if one is due (`every` leaves since the newest), or at
    /// `shutdown` if at least [`SHUTDOWN_TAIL`] leaves came since; errors are logged (a
    /// snapshot is an optimisation: the log is complete without it).
    pub(crate) fn maybe_write(&self, source: &dyn Source, shutdown: bool) {
        let mut chain = self.chain.lock().unwrap_or_else(|p| p.into_inner());
        let size = source.committed().0;
        let tail = size.saturating_sub(chain.size());
        if !(tail >= self.every || shutdown && tail >= SHUTDOWN_TAIL) {
            return;
        }
        let started = std::time::Instant::now();
        let whole = self.whole_due(&chain, size);
        match self.write_next(source, &mut chain, whole) {
            Ok(Some((w, whole))) => tracing::info!(
                size = w.size,
                whole,
                took_ms = started.elapsed().as_millis() as u64,
                "catalog snapshot written"
            ),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "writing a catalog snapshot"),
        }
    }

    /// Writes a delta on the newest snapshot now (a whole snapshot if there is none or
    /// the updates since it are no longer known), and returns its size.
    pub(crate) fn write_delta_now(
        &self,
        source: &dyn Source,
    ) -> Result<Option<u64>, SnapshotError> {
        let mut chain = self.chain.lock().unwrap_or_else(|p| p.into_inner());
        let written = self.write_next(source, &mut chain, false)?;
        Ok(written.map(|(w, _)| w.size))
    }

    /// Writes the next snapshot of `chain`: whole if `whole`, else a delta when the
    /// chain has a base and the updates since it are known, else whole. Returns what was
    /// installed and whether it is whole.
    fn write_next(
        &self,
        source: &dyn Source,
        chain: &mut Chain,
        whole: bool,
    ) -> Result<Option<(Written, bool)>, SnapshotError> {
        if let (false, Some(base)) = (whole, chain.newest) {
            match delta::write(self.target(source), source.catalog(), base)? {
                delta::Outcome::Written(w) => {
                    self.installed(source, chain, w, false);
                    return Ok(Some((w, false)));
                }
                delta::Outcome::Nothing => return Ok(None),
                delta::Outcome::NeedsWhole => {}
            }
        }
        let written = write(
            &self.dir,
            source.catalog(),
            source.tiles(),
            source,
            chain.size(),
        )?;
        Ok(written.map(|w| {
            self.installed(source, chain, w, true);
            (w, true)
        }))
    }

    /// The snapshot thread: checks once a second whether a snapshot is due, until the
    /// source stops.
    pub(crate) fn run<S: Source>(self: Arc<Self>, source: Arc<S>) {
        while !source.stopped_after(Duration::from_secs(1)) {
            if source.healthy() {
                self.maybe_write(source.as_ref(), false);
            }
        }
    }
}

/// What `fsck --full` found about one installed snapshot.
#[derive(Debug, Clone)]
pub struct SnapshotFinding {
    /// The snapshot file.
    pub path: PathBuf,
    /// Its size, if its header could be read.
    pub size: Option<u64>,
    /// What is wrong with it; `None`: it is sound and its state digest equals the full
    /// replay's at its size.
    pub problem: Option<String>,
}

/// Checks every snapshot in the data directory `data_dir`, whole or delta, against a
/// full replay of its log (`replayed`, read from `tiles`): the file's hash, its size
/// and root, a delta's base reference, the state digest a whole one recorded, and the
/// digest of the state its records hold (a delta's laid on its chain; loaded into a
/// store `fresh` makes for each snapshot) against the replay's at the same size. The
/// digests sort publications in unnamed files in `spill` (ADR 0020).
pub fn check_against(
    data_dir: &Path,
    tiles: &dyn TileStore,
    replayed: &super::replay::Replayed,
    fresh: &FreshRecords,
    spill: &Path,
) -> Vec<SnapshotFinding> {
    let dir = dir(data_dir);
    let mut files = list(&dir);
    files.extend(delta::list(&dir));
    files
        .into_iter()
        .map(|(_, path)| {
            let checked = read_header(&path).map(|(header, _)| {
                let problem = check_one(&dir, &path, &header, tiles, replayed, fresh, spill);
                (header.size, problem.err().map(|e| e.to_string()))
            });
            match checked {
                Ok((size, problem)) => SnapshotFinding {
                    path,
                    size: Some(size),
                    problem,
                },
                Err(e) => SnapshotFinding {
                    path,
                    size: None,
                    problem: Some(e.to_string()),
                },
            }
        })
        .collect()
}

/// What `check_against` checks of one snapshot.
fn check_one(
    dir: &Path,
    path: &Path,
    header: &SnapshotHeader,
    tiles: &dyn TileStore,
    replayed: &super::replay::Replayed,
    fresh: &FreshRecords,
    spill: &Path,
) -> Result<(), SnapshotError> {
    let tree = replayed.checkpoint.size;
    let size = header.size;
    verify_hash(path)?;
    if size > tree {
        return Err(refused(format!(
            "its size {size} is beyond the checkpoint's {tree}"
        )));
    }
    if header.origin != replayed.checkpoint.origin {
        return Err(refused(format!(
            "it is of another log ({:?})",
            header.origin
        )));
    }
    let cache = TileCache::default();
    let view = TreeView::new(tiles, &cache, tree);
    let root = merkle::tree_root(size, &view)
        .map_err(|e| refused(format!("the tree root at {size}: {e}")))?;
    if hex::encode(root) != header.root {
        return Err(refused(format!(
            "its root at size {size} is not the tree's"
        )));
    }
    // Sorted, not read by leaf index per subject: at millions of entries (ADR 0020).
    let digest = hex::encode(sorted_state_digest_at(&replayed.catalog, size, spill)?);
    match (&header.state_digest, &header.base) {
        (Some(recorded), None) if *recorded != digest => {
            return Err(refused(format!(
                "its recorded state digest {recorded} is not the replay's {digest} at size {size}"
            )))
        }
        (Some(_), None) | (None, Some(_)) => {}
        _ => return Err(refused("it is neither a whole snapshot nor a delta")),
    }
    if header.index.is_some() {
        let (table, _) = open_table(path, header)?;
        table.verify_all()?;
    }
    // The records themselves, not only the digest recorded beside them.
    let mut store = fresh().map_err(ReadError::from)?;
    let mut admin = None;
    for link in delta::chain(dir, path, header)? {
        // `path` itself was hashed above.
        if link != path {
            verify_hash(&link)?;
        }
        let (_, body_end) = read_header(&link)?;
        admin = Some(load(&link, body_end, store.as_mut())?.0);
    }
    let admin = admin.ok_or_else(|| refused("its chain is empty"))?;
    let restored = Catalog::restore(admin, store).map_err(|(e, _)| SnapshotError::Records(e))?;
    let held = hex::encode(sorted_state_digest_at(&restored, size, spill)?);
    if held != digest {
        return Err(refused(format!(
            "the state its records hold has digest {held}, not the replay's {digest} at size {size}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_ignores_temporaries_and_other_names() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            file_name(5),
            file_name(70),
            ".00000000000000000090.tmp".into(),
            "notes.txt".into(),
            "12.snap".into(),
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let sizes: Vec<u64> = list(dir.path()).into_iter().map(|(n, _)| n).collect();
        assert_eq!(sizes, [70, 5]);
        remove_temporaries(dir.path());
        assert!(!dir.path().join(".00000000000000000090.tmp").exists());
    }

    #[test]
    fn short_or_foreign_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(1));
        for bytes in [&b""[..], b"srcos-catalog snapshot v1\n", &[b'x'; 200][..]] {
            std::fs::write(&path, bytes).unwrap();
            assert!(matches!(read_header(&path), Err(SnapshotError::Refused(_))));
        }
    }
}
