//! An append-only value file addressed by a dense `u64` (a leaf index): values are
//! appended to `<name>.dat`, and slot `i` of `<name>.idx` (16 bytes at `16 i`) holds the
//! value's offset + 1 and length (0: no value).
//!
//! Why: the projection's publication records are its bulk (~1.3 KB each, keyed by leaf
//! index, written once). In sled they cost about three times their size in writes and
//! most of the server's sled CPU; here a record costs one `pwrite` of its bytes and one
//! of its slot, and reading it two `pread`s. Nothing here is durable or crash-safe: the
//! projection is rebuilt from the log at every start.
//!
//! May import: `storage::durable` and the storage error.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::storage::durable::{create_options, PRIVATE_FILE_MODE};
use crate::storage::StorageError;

const SLOT: u64 = 16;

/// The file pair (see the module documentation).
#[derive(Debug)]
pub struct SlotFile {
    data: File,
    slots: File,
    data_len: u64,
}

fn create(path: &Path) -> Result<File, StorageError> {
    create_options(PRIVATE_FILE_MODE)
        .read(true)
        .open(path)
        .map_err(|e| StorageError::io(format!("creating {}", path.display()), e))
}

fn io_error(what: &str) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |e| StorageError::io(what.to_string(), e)
}

impl SlotFile {
    /// Creates (truncating) `<dir>/<name>.dat` and `<dir>/<name>.idx`.
    pub fn create(dir: &Path, name: &str) -> Result<SlotFile, StorageError> {
        Ok(SlotFile {
            data: create(&dir.join(format!("{name}.dat")))?,
            slots: create(&dir.join(format!("{name}.idx")))?,
            data_len: 0,
        })
    }

    /// Stores `value` as the value of `index` (replacing any earlier one, whose bytes
    /// stay in the data file).
    pub fn put(&mut self, index: u64, value: &[u8]) -> Result<(), StorageError> {
        let slot_at = index
            .checked_mul(SLOT)
            .ok_or_else(|| StorageError::Corrupt(format!("slot {index} is out of range")))?;
        let len = u64::try_from(value.len()).unwrap_or(u64::MAX);
        self.data
            .write_all_at(value, self.data_len)
            .map_err(io_error("writing a projection record"))?;
        let mut slot = [0u8; SLOT as usize];
        slot[..8].copy_from_slice(&(self.data_len + 1).to_be_bytes());
        slot[8..].copy_from_slice(&len.to_be_bytes());
        self.slots
            .write_all_at(&slot, slot_at)
            .map_err(io_error("writing a projection slot"))?;
        self.data_len += len;
        Ok(())
    }

    /// The value of `index`, if one was stored.
    pub fn get(&self, index: u64) -> Result<Option<Vec<u8>>, StorageError> {
        let Some(slot_at) = index.checked_mul(SLOT) else {
            return Ok(None);
        };
        let mut slot = [0u8; SLOT as usize];
        match self.slots.read_exact_at(&mut slot, slot_at) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(StorageError::io("reading a projection slot", e)),
        }
        let (offset, len) = decode_slot(&slot);
        let Some(offset) = offset.checked_sub(1) else {
            return Ok(None);
        };
        let len = usize::try_from(len)
            .map_err(|_| StorageError::Corrupt("a projection record is too large".into()))?;
        let mut value = vec![0u8; len];
        self.data
            .read_exact_at(&mut value, offset)
            .map_err(io_error("reading a projection record"))?;
        Ok(Some(value))
    }

    /// Removes every value.
    pub fn clear(&mut self) -> Result<(), StorageError> {
        self.data
            .set_len(0)
            .map_err(io_error("truncating the projection records"))?;
        self.slots
            .set_len(0)
            .map_err(io_error("truncating the projection slots"))?;
        self.data_len = 0;
        Ok(())
    }

    /// One past the highest slot ever written.
    pub fn end(&self) -> Result<u64, StorageError> {
        let len = self
            .slots
            .metadata()
            .map_err(io_error("reading the projection slots"))?
            .len();
        Ok(len / SLOT)
    }
}

fn decode_slot(slot: &[u8; SLOT as usize]) -> (u64, u64) {
    let mut offset = [0u8; 8];
    let mut len = [0u8; 8];
    offset.copy_from_slice(&slot[..8]);
    len.copy_from_slice(&slot[8..]);
    (u64::from_be_bytes(offset), u64::from_be_bytes(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_gaps_are_empty() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = SlotFile::create(dir.path(), "p").unwrap();
        assert_eq!(f.get(0).unwrap(), None);
        f.put(3, b"three").unwrap();
        f.put(10, b"").unwrap();
        f.put(7, b"seven").unwrap();
        f.put(3, b"three again").unwrap();
        assert_eq!(f.get(3).unwrap().as_deref(), Some(&b"three again"[..]));
        assert_eq!(f.get(7).unwrap().as_deref(), Some(&b"seven"[..]));
        assert_eq!(f.get(10).unwrap().as_deref(), Some(&b""[..]));
        for missing in [0, 4, 9, 11, u64::MAX] {
            assert_eq!(f.get(missing).unwrap(), None, "{missing}");
        }
        assert_eq!(f.end().unwrap(), 11);
    }
}
