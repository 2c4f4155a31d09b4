//! An immutable sorted table of records in hashed blocks, opened where it lies on disk:
//! the body of a catalog snapshot (ADR 0009), which the on-disk record store reads in
//! place of copying every record into the record store at start-up.
//!
//! The table is a run of frames `[tag u8][key length u32 BE][value length u32 BE][key]
//! [value]` grouped into blocks: a block holds frames of one tag only, in key order, and
//! is closed once it reaches [`BLOCK_TARGET`] bytes or the tag changes (a frame is never
//! split, so one large frame is a block of its own). The index, written after the frames,
//! has one entry per block:
//!
//! ```text
//! [tag u8][first key length u32 BE][records u32 BE][offset u64 BE][length u32 BE]
//! [SHA-256 of the block's bytes, 32 bytes][first key]
//! ```
//!
//! Why blocks: opening costs reading the index (about 1/700 of the file), not the file;
//! each block's hash is checked the first time the block is read, so a corrupted record
//! is still never served, only found later. A block that fails its hash sets the whole
//! file aside (renamed to `….corrupt`), so the next start does not use it again.
//!
//! The index is trusted only after its own hash was checked by the caller (the snapshot
//! header holds it); [`BlockTable::open`] still checks its shape (blocks contiguous,
//! tags in order, first keys ascending), so a wrong index cannot send a read out of the
//! frames.
//!
//! May import: the storage error and the `catalog` root re-exports.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::catalog::{KeyValue, RecordError, RecordStore, Scan, Space};
use crate::storage::StorageError;

/// Bytes after which a block is closed. A read costs one block (a `pread`, and a hash
/// the first time); the index holds one entry per block in memory (~80 bytes), so at
/// 10 M entries (~17 GB of snapshot) 64 KiB blocks cost ~21 MB of index.
pub const BLOCK_TARGET: usize = 64 << 10;
/// The largest key or value a frame may hold.
pub const MAX_FRAME: u32 = 64 << 20;
/// An index entry without its first key.
const ENTRY_FIXED: usize = 1 + 4 + 4 + 8 + 4 + 32;

/// Encodes one frame into `out` (cleared first).
pub fn encode_frame(out: &mut Vec<u8>, tag: u8, key: &[u8], value: &[u8]) {
    let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes();
    out.clear();
    out.push(tag);
    out.extend_from_slice(&len(key.len()));
    out.extend_from_slice(&len(value.len()));
    out.extend_from_slice(key);
    out.extend_from_slice(value);
}

struct OpenBlock {
    tag: u8,
    first_key: Vec<u8>,
    offset: u64,
    len: u64,
    records: u32,
    hash: Sha256,
}

/// Groups the frames a caller writes into blocks and builds the index. It writes
/// nothing itself: the caller writes each frame's bytes where [`BlockWriter::push`] was
/// told they go, then the index [`BlockWriter::finish`] returns.
pub struct BlockWriter {
    offset: u64,
    open: Option<OpenBlock>,
    index: Vec<u8>,
}

impl BlockWriter {
    /// A writer whose first frame starts at `offset` in the file.
    pub fn new(offset: u64) -> BlockWriter {
        BlockWriter {
            offset,
            open: None,
            index: Vec::new(),
        }
    }

    /// Accounts for `frame` (encoded by [`encode_frame`], of `tag` and `key`), written
    /// next in the file.
    pub fn push(&mut self, tag: u8, key: &[u8], frame: &[u8]) {
        let full = self
            .open
            .as_ref()
            .is_some_and(|b| b.tag != tag || b.len >= BLOCK_TARGET as u64);
        if full {
            self.close();
        }
        let offset = self.offset;
        let block = self.open.get_or_insert_with(|| OpenBlock {
            tag,
            first_key: key.to_vec(),
            offset,
            len: 0,
            records: 0,
            hash: Sha256::new(),
        });
        block.hash.update(frame);
        block.len += frame.len() as u64;
        block.records += 1;
        self.offset += frame.len() as u64;
    }

    fn close(&mut self) {
        let Some(b) = self.open.take() else {
            return;
        };
        let key_len = u32::try_from(b.first_key.len()).unwrap_or(u32::MAX);
        self.index.push(b.tag);
        self.index.extend_from_slice(&key_len.to_be_bytes());
        self.index.extend_from_slice(&b.records.to_be_bytes());
        self.index.extend_from_slice(&b.offset.to_be_bytes());
        let len = u32::try_from(b.len).unwrap_or(u32::MAX);
        self.index.extend_from_slice(&len.to_be_bytes());
        self.index.extend_from_slice(&b.hash.finalize());
        self.index.extend_from_slice(&b.first_key);
    }

    /// Where the next frame would start: the end of the frames.
    pub fn end(&self) -> u64 {
        self.offset
    }

    /// The index of every block written.
    pub fn finish(mut self) -> Vec<u8> {
        self.close();
        self.index
    }
}

#[derive(Debug, Clone, Copy)]
struct Block {
    tag: u8,
    key_at: u32,
    key_len: u32,
    records: u32,
    offset: u64,
    len: u32,
    hash: [u8; 32],
}

/// A table opened in place (see the module documentation). Read-only: it is a
/// [`RecordStore`] whose `write` always fails, meant as the base of another store
/// ([`RecordStore::layer_over`]).
pub struct BlockTable {
    file: File,
    path: PathBuf,
    blocks: Vec<Block>,
    keys: Vec<u8>,
    /// The blocks of each space, `[start, end)` in `blocks`, in `Space::ALL` order.
    spaces: [(usize, usize); 5],
    /// One bit per block: its hash was checked.
    verified: Vec<AtomicU64>,
    set_aside: AtomicBool,
}

impl std::fmt::Debug for BlockTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockTable")
            .field("path", &self.path)
            .field("blocks", &self.blocks.len())
            .finish()
    }
}

fn corrupt(what: impl Into<String>) -> StorageError {
    StorageError::Corrupt(what.into())
}

fn be_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_be_bytes(a)
}

fn be_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

fn space_of(tag: u8) -> Option<Space> {
    Space::ALL.into_iter().find(|s| s.tag() == tag)
}

/// The frames of one block (whose tag is `tag` and which holds `records` frames),
/// parsed strictly.
fn parse_frames(bytes: &[u8], tag: u8, records: u32) -> Result<Vec<KeyValue>, String> {
    let mut out = Vec::with_capacity(records as usize);
    let mut at = 0usize;
    while at < bytes.len() {
        let head = bytes.get(at..at + 9).ok_or("a frame is cut short")?;
        if head[0] != tag {
            return Err("a frame's tag is not its block's".into());
        }
        let key_len = be_u32(&head[1..5]) as usize;
        let value_len = be_u32(&head[5..9]) as usize;
        let key_end = at + 9 + key_len;
        let end = key_end + value_len;
        if end > bytes.len() {
            return Err("a frame runs past its block".into());
        }
        out.push((
            bytes[at + 9..key_end].to_vec(),
            bytes[key_end..end].to_vec(),
        ));
        at = end;
    }
    if out.len() != records as usize {
        return Err("a block holds another number of frames than its index says".into());
    }
    Ok(out)
}

impl BlockTable {
    /// Opens the table whose frames are `[frames_start, frames_end)` of `file` (at
    /// `path`) and whose index is `index` (its hash already checked). Checks the index's
    /// shape; reads no block.
    pub fn open(
        path: &Path,
        file: File,
        index: &[u8],
        frames_start: u64,
        frames_end: u64,
    ) -> Result<BlockTable, StorageError> {
        let mut blocks = Vec::new();
        let mut keys = Vec::new();
        let mut spaces = [(0usize, 0usize); 5];
        let mut at = 0usize;
        let mut next_offset = frames_start;
        let mut last: Option<(u8, Vec<u8>)> = None;
        while at < index.len() {
            let fixed = index
                .get(at..at + ENTRY_FIXED)
                .ok_or_else(|| corrupt("the snapshot index is cut short"))?;
            let tag = fixed[0];
            let key_len = be_u32(&fixed[1..5]);
            let records = be_u32(&fixed[5..9]);
            let offset = be_u64(&fixed[9..17]);
            let len = be_u32(&fixed[17..21]);
            let mut hash = [0u8; 32];
            hash.copy_from_slice(&fixed[21..53]);
            let key_start = at + ENTRY_FIXED;
            let key = index
                .get(key_start..key_start + key_len as usize)
                .ok_or_else(|| corrupt("the snapshot index is cut short"))?;
            at = key_start + key_len as usize;
            if offset != next_offset || len == 0 || records == 0 || key_len > MAX_FRAME {
                return Err(corrupt("the snapshot index's blocks are not contiguous"));
            }
            next_offset = offset + u64::from(len);
            let order = |t: u8| match space_of(t) {
                Some(s) => Ok(s as usize + 1),
                None if t == b'A' => Ok(0),
                None => Err(corrupt(format!("unknown block tag {t}"))),
            };
            if let Some((last_tag, last_key)) = &last {
                let ascending = match order(*last_tag)?.cmp(&order(tag)?) {
                    std::cmp::Ordering::Less => true,
                    std::cmp::Ordering::Equal => tag != b'A' && last_key.as_slice() < key,
                    std::cmp::Ordering::Greater => false,
                };
                if !ascending {
                    return Err(corrupt("the snapshot index's blocks are out of order"));
                }
            } else if tag != b'A' {
                return Err(corrupt("the snapshot does not start with the admin state"));
            }
            if let Some(space) = space_of(tag) {
                let slot = &mut spaces[space as usize];
                if slot.1 == 0 {
                    slot.0 = blocks.len();
                }
                slot.1 = blocks.len() + 1;
            }
            let key_at = u32::try_from(keys.len())
                .map_err(|_| corrupt("the snapshot index's keys are too large"))?;
            keys.extend_from_slice(key);
            blocks.push(Block {
                tag,
                key_at,
                key_len,
                records,
                offset,
                len,
                hash,
            });
            last = Some((tag, key.to_vec()));
        }
        if next_offset != frames_end {
            return Err(corrupt("the snapshot index does not cover its frames"));
        }
        let verified = (0..blocks.len().div_ceil(64))
            .map(|_| AtomicU64::new(0))
            .collect();
        Ok(BlockTable {
            file,
            path: path.to_path_buf(),
            blocks,
            keys,
            spaces,
            verified,
            set_aside: AtomicBool::new(false),
        })
    }

    /// Records held in the record-store spaces (the blocks of other tags not counted).
    pub fn records(&self) -> u64 {
        self.blocks
            .iter()
            .filter(|b| space_of(b.tag).is_some())
            .map(|b| u64::from(b.records))
            .sum()
    }

    /// Every frame of the blocks tagged `tag`, in order.
    pub fn frames(&self, tag: u8) -> Result<Vec<KeyValue>, RecordError> {
        let mut out = Vec::new();
        for i in 0..self.blocks.len() {
            if self.blocks[i].tag == tag {
                out.extend(self.read_block(i, false)?);
            }
        }
        Ok(out)
    }

    /// Reads every block and checks its hash (a full check: at start-up on request, and
    /// `fsck --full`). A failure here sets nothing aside: the caller refuses the file.
    pub fn verify_all(&self) -> Result<(), RecordError> {
        for i in 0..self.blocks.len() {
            self.read_block(i, false)?;
        }
        Ok(())
    }

    fn first_key(&self, b: &Block) -> &[u8] {
        &self.keys[b.key_at as usize..(b.key_at + b.key_len) as usize]
    }

    /// The first block of `space` that can hold `key`: the last one whose first key is
    /// at most `key` (`None`: `key` sorts before every block of the space).
    fn block_for(&self, space: Space, key: &[u8]) -> Option<usize> {
        let (start, end) = self.spaces[space as usize];
        let after = self.blocks[start..end].partition_point(|b| self.first_key(b) <= key);
        after.checked_sub(1).map(|n| start + n)
    }

    /// The frames of block `i` for a read of the store, its hash checked the first time
    /// it is read; a failure sets the file aside.
    fn block(&self, i: usize) -> Result<Vec<KeyValue>, RecordError> {
        self.read_block(i, true)
    }

    fn read_block(&self, i: usize, set_aside: bool) -> Result<Vec<KeyValue>, RecordError> {
        let b = self.blocks[i];
        let mut bytes = vec![0u8; b.len as usize];
        self.file
            .read_exact_at(&mut bytes, b.offset)
            .map_err(|e| RecordError::Backend(format!("reading {}: {e}", self.path.display())))?;
        let (word, bit) = (i / 64, 1u64 << (i % 64));
        if self.verified[word].load(Ordering::Relaxed) & bit == 0 {
            if <[u8; 32]>::from(Sha256::digest(&bytes)) != b.hash {
                let why = format!("block {i} does not match its hash");
                return Err(match set_aside {
                    true => self.fail(why),
                    false => {
                        RecordError::Corrupt(format!("snapshot {}: {why}", self.path.display()))
                    }
                });
            }
            self.verified[word].fetch_or(bit, Ordering::Relaxed);
        }
        parse_frames(&bytes, b.tag, b.records).map_err(|e| match set_aside {
            true => self.fail(e),
            false => RecordError::Corrupt(format!("snapshot {}: {e}", self.path.display())),
        })
    }

    /// Sets the file aside (best effort, once) so the next start does not use it, and
    /// says so.
    fn fail(&self, why: String) -> RecordError {
        let mut aside = self.path.clone().into_os_string();
        aside.push(".corrupt");
        if !self.set_aside.swap(true, Ordering::Relaxed) {
            let _ = std::fs::rename(&self.path, &aside);
            tracing::error!(path = %self.path.display(), reason = %why, "a catalog snapshot in use is corrupt; set aside, restart to rebuild the catalog from the log");
        }
        RecordError::Corrupt(format!(
            "snapshot {}: {why}; the file was set aside, restart to rebuild the catalog from the log",
            self.path.display()
        ))
    }
}

/// A scan over the blocks of one space.
struct TableScan<'a> {
    table: &'a BlockTable,
    next_block: usize,
    end_block: usize,
    frames: std::vec::IntoIter<KeyValue>,
    start: Vec<u8>,
    end: Option<Vec<u8>>,
    done: bool,
}

impl Iterator for TableScan<'_> {
    type Item = Result<KeyValue, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            if let Some((key, value)) = self.frames.next() {
                if key < self.start {
                    continue;
                }
                if self.end.as_ref().is_some_and(|e| &key >= e) {
                    self.done = true;
                    return None;
                }
                return Some(Ok((key, value)));
            }
            if self.next_block >= self.end_block {
                self.done = true;
                return None;
            }
            match self.table.block(self.next_block) {
                Ok(frames) => self.frames = frames.into_iter(),
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
            self.next_block += 1;
        }
        None
    }
}

impl RecordStore for BlockTable {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, RecordError> {
        let Some(i) = self.block_for(space, key) else {
            return Ok(None);
        };
        Ok(self
            .block(i)?
            .into_iter()
            .find(|(k, _)| k.as_slice() == key)
            .map(|(_, v)| v))
    }

    fn scan(&self, space: Space, start: &[u8], end: Option<&[u8]>) -> Scan<'_> {
        let (first, last) = self.spaces[space as usize];
        Box::new(TableScan {
            table: self,
            next_block: self.block_for(space, start).unwrap_or(first),
            end_block: last,
            frames: Vec::new().into_iter(),
            start: start.to_vec(),
            end: end.map(<[u8]>::to_vec),
            done: false,
        })
    }

    fn write(&mut self, _batch: Vec<crate::catalog::Put>) -> Result<(), RecordError> {
        Err(RecordError::Backend(
            "a snapshot's records are read-only".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::MemoryStore;

    /// A table of `records` written the way the snapshot writer does, behind an admin
    /// frame, with the memory store holding the same records.
    fn table(dir: &Path, records: &[(Space, Vec<u8>, Vec<u8>)]) -> (BlockTable, PathBuf) {
        let path = dir.join("t.snap");
        let mut bytes = b"magic\n".to_vec();
        let mut writer = BlockWriter::new(bytes.len() as u64);
        let mut frame = Vec::new();
        encode_frame(&mut frame, b'A', b"", b"{}");
        writer.push(b'A', b"", &frame);
        bytes.extend_from_slice(&frame);
        for (space, key, value) in records {
            encode_frame(&mut frame, space.tag(), key, value);
            writer.push(space.tag(), key, &frame);
            bytes.extend_from_slice(&frame);
        }
        let end = writer.end();
        assert_eq!(end, bytes.len() as u64);
        let index = writer.finish();
        std::fs::write(&path, &bytes).unwrap();
        let file = File::open(&path).unwrap();
        (BlockTable::open(&path, file, &index, 6, end).unwrap(), path)
    }

    fn records() -> Vec<(Space, Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        for space in [Space::Publications, Space::EntryIds, Space::Names] {
            for i in 0u64..3000 {
                let key = match space {
                    Space::Names => format!("name-{:05}", i * 2).into_bytes(),
                    _ => (i * 2).to_be_bytes().to_vec(),
                };
                out.push((space, key, vec![b'v'; (i % 97) as usize]));
            }
        }
        out
    }

    #[test]
    fn reads_and_scans_answer_like_the_memory_store() {
        let dir = tempfile::tempdir().unwrap();
        let records = records();
        let (table, _) = table(dir.path(), &records);
        assert!(table.blocks.len() > 4, "several blocks");
        assert_eq!(table.records(), records.len() as u64);
        assert_eq!(table.frames(b'A').unwrap(), vec![(vec![], b"{}".to_vec())]);
        let mut memory = MemoryStore::default();
        memory
            .write(
                records
                    .iter()
                    .map(|(space, key, value)| crate::catalog::Put {
                        space: *space,
                        key: key.clone(),
                        value: value.clone(),
                    })
                    .collect(),
            )
            .unwrap();
        let k = |i: u64| i.to_be_bytes().to_vec();
        for space in Space::ALL {
            for (start, end) in [
                (vec![], None),
                (k(0), Some(k(1))),
                (k(1001), Some(k(4001))),
                (k(4000), None),
                (k(9000), None),
                (b"name-01000".to_vec(), Some(b"name-01003".to_vec())),
                (b"name-".to_vec(), Some(b"name-00000\0".to_vec())),
            ] {
                let a: Vec<_> = table.scan(space, &start, end.as_deref()).collect();
                let b: Vec<_> = memory.scan(space, &start, end.as_deref()).collect();
                assert_eq!(a, b, "{space:?} {start:?}..{end:?}");
            }
            for key in [k(0), k(1), k(2), k(5998), k(6000), b"name-00002".to_vec()] {
                assert_eq!(
                    table.get(space, &key).unwrap(),
                    memory.get(space, &key).unwrap(),
                    "{space:?} {key:?}"
                );
            }
        }
        table.verify_all().unwrap();
    }

    #[test]
    fn a_corrupt_block_is_never_served_and_sets_the_file_aside() {
        let dir = tempfile::tempdir().unwrap();
        let (table, path) = table(dir.path(), &records());
        let block = table.blocks[3];
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[block.offset as usize + 20] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let first = table.blocks[table.spaces[Space::Publications as usize].0];
        let key = table.first_key(&first).to_vec();
        assert!(table.get(Space::Publications, &key).unwrap().is_some());
        let scanned: Result<Vec<_>, _> = table.scan(Space::Publications, b"", None).collect();
        assert!(
            matches!(scanned, Err(RecordError::Corrupt(ref m)) if m.contains("hash")),
            "{scanned:?}"
        );
        assert!(!path.exists(), "set aside");
        let mut aside = path.into_os_string();
        aside.push(".corrupt");
        assert!(Path::new(&aside).exists());
    }

    #[test]
    fn a_malformed_index_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (table, path) = table(dir.path(), &records());
        let open = |index: &[u8], end: u64| {
            BlockTable::open(&path, File::open(&path).unwrap(), index, 6, end)
        };
        let end = std::fs::metadata(&path).unwrap().len();
        let mut index = BlockWriter::new(6);
        let mut frame = Vec::new();
        encode_frame(&mut frame, b'A', b"", b"{}");
        index.push(b'A', b"", &frame);
        let good_len = table.blocks.len();
        drop(table);
        // Cut short, not covering the frames, out of order.
        let short = index.finish();
        assert!(open(&short[..10], end).is_err());
        assert!(open(&short, end).is_err());
        let mut backwards = BlockWriter::new(6);
        encode_frame(&mut frame, b'A', b"", b"{}");
        backwards.push(b'A', b"", &frame);
        encode_frame(&mut frame, b'N', b"b", b"");
        backwards.push(b'N', b"b", &frame);
        encode_frame(&mut frame, b'P', b"a", b"");
        backwards.push(b'P', b"a", &frame);
        let end_b = backwards.end();
        assert!(open(&backwards.finish(), end_b).is_err());
        assert!(good_len > 0);
    }
}
