//! One driver per port, chosen by the caller (the command line) and handed to the
//! engine: [`Backends`] for a running log, [`LogBackends`] (tiles and checkpoint only)
//! for reading or checking one.
//!
//! [`Backends::posix`] is the data directory layout every `--data` command uses:
//! - `log/`: the tlog-tiles directory ([`PosixTiles`], [`PosixLock`]);
//! - `lookup/`: the lookup index ([`Index`]);
//! - `lock`: the writer's lock ([`DataDirLock`]), taken before anything else;
//! - `projection/`: the catalog's per-publication records ([`DiskRecordStore`], wiped
//!   here: the engine rebuilds them from the log at every open).
//!
//! May import: every driver in `storage` and the `catalog` root re-exports.

use std::path::Path;
use std::sync::Arc;

use super::index::Index;
use super::memory::{MemoryIndex, MemoryLog};
use super::posix::{DataDirLock, PosixLock, PosixTiles};
use super::records::DiskRecordStore;
use super::{CheckpointLock, LookupIndex, StorageError, TileStore};
use crate::catalog::{MemoryStore, RecordStore};

/// The tiles and the checkpoint of one log: what reading or checking it needs.
#[derive(Clone)]
pub struct LogBackends {
    /// Hash tiles and entry bundles.
    pub tiles: Arc<dyn TileStore>,
    /// The current checkpoint.
    pub lock: Arc<dyn CheckpointLock>,
}

impl LogBackends {
    /// The tlog-tiles directory `DATA/log/`, for reading or checking it: no writer lock
    /// and none of a writer's recovery steps, so it may be opened beside a live writer
    /// (see [`DataDirLock`] for why that is safe).
    pub fn posix(data_dir: &Path) -> Result<LogBackends, StorageError> {
        let dir = data_dir.join("log");
        Ok(LogBackends {
            tiles: Arc::new(PosixTiles::open_read_only(&dir)),
            lock: Arc::new(PosixLock::open_read_only(&dir)?),
        })
    }
}

/// Where the catalog keeps its per-publication records (see
/// docs/adr/0002-projection-store.md). Either way they are rebuilt from the log at open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordsIn {
    /// On disk (`DATA/projection/`, a slot file and an LSM tree with a small memtable and cache): resident
    /// memory stays flat whatever the log size. The default.
    #[default]
    Disk,
    /// In memory: faster sequencing, but memory grows ~4 KB per publication.
    Memory,
}

/// Everything a running log stores, one driver per port.
pub struct Backends {
    /// The tiles and the checkpoint.
    pub log: LogBackends,
    /// The lookup index.
    pub index: Box<dyn LookupIndex>,
    /// The catalog's per-publication records; must be empty.
    pub records: Box<dyn RecordStore>,
    /// The data directory's writer lock, held as long as the log runs (`None` in memory).
    pub dir_lock: Option<DataDirLock>,
}

impl Backends {
    /// The data directory `data_dir` (see the module documentation), with the records
    /// where `records` says.
    /// Fails at once if another process has it open as a writer ([`DataDirLock`]):
    /// before anything in it is touched.
    pub fn posix(data_dir: &Path, records: RecordsIn) -> Result<Backends, StorageError> {
        let dir_lock = DataDirLock::exclusive(data_dir)?;
        let dir = data_dir.join("log");
        let log = LogBackends {
            tiles: Arc::new(PosixTiles::open(&dir)?),
            lock: Arc::new(PosixLock::open(&dir)?),
        };
        let index = Box::new(Index::open(&data_dir.join("lookup"))?);
        let records: Box<dyn RecordStore> = match records {
            // Wiped and rebuilt from the log: the log is the truth, so a crash can leave
            // nothing in the records to recover.
            RecordsIn::Disk => Box::new(DiskRecordStore::open_fresh(&data_dir.join("projection"))?),
            RecordsIn::Memory => Box::new(MemoryStore::default()),
        };
        Ok(Backends {
            log,
            index,
            records,
            dir_lock: Some(dir_lock),
        })
    }

    /// The tiles and checkpoint in `log` (an object store and a database, say), with
    /// the lookup index and the catalog's records in the local directory `data_dir`
    /// (`lookup/`, `projection/`), both rebuilt from the log when behind.
    ///
    /// Refuses a create-only tile store under a lock that does not journal batches:
    /// leftovers of a batch that was never committed would then be rewritten with other
    /// bytes, which such a store refuses, and the log would stop.
    pub fn with_log(
        log: LogBackends,
        data_dir: &Path,
        records: RecordsIn,
    ) -> Result<Backends, StorageError> {
        if log.tiles.create_only() && !log.lock.journals() {
            return Err(StorageError::Refused(
                "a create-only tile store (an object store) needs a checkpoint lock that                  journals batches (--coordinator postgres://…)"
                    .into(),
            ));
        }
        let dir_lock = DataDirLock::exclusive(data_dir)?;
        let index = Box::new(Index::open(&data_dir.join("lookup"))?);
        let records: Box<dyn RecordStore> = match records {
            RecordsIn::Disk => Box::new(DiskRecordStore::open_fresh(&data_dir.join("projection"))?),
            RecordsIn::Memory => Box::new(MemoryStore::default()),
        };
        Ok(Backends {
            log,
            index,
            records,
            dir_lock: Some(dir_lock),
        })
    }

    /// Everything in memory, around `log` (clone a [`MemoryLog`] to reopen it).
    pub fn memory(log: &MemoryLog) -> Backends {
        Backends {
            log: log.backends(),
            index: Box::<MemoryIndex>::default(),
            records: Box::new(MemoryStore::default()),
            dir_lock: None,
        }
    }
}
