//! [`PgObserver`]: a read-only view of a log's row in PostgreSQL, for a frontend that
//! does not hold the lease: the installed checkpoint (the head it follows) and who holds
//! the lease, at which advertised URL (where it forwards writes).
//!
//! It can never stage or install anything: as a [`CheckpointLock`] it only reads, and
//! refuses every write. So a frontend built on it cannot sign a checkpoint into the log
//! or make a tile reachable, whatever happens to the real holder.
//!
//! May import: the storage ports, [`crate::storage::remote`] and the lock's connection.

use deadpool_postgres::Pool;

use super::lock::{db, pool_error};
use crate::storage::remote::Remote;
use crate::storage::{CheckpointLock, LockedCheckpoint, StorageError};

/// Who holds a log's lease, as its row says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    /// The fencing epoch of the lease.
    pub epoch: u64,
    /// The URL the holder advertised (`serve --advertise`), if any.
    pub advertised: Option<String>,
    /// Whether the lease is live now (by the database's clock): a holder whose lease
    /// lapsed is dead or paused, and a standby is about to take over.
    pub live: bool,
}

/// The read-only view of one log's row (see the module documentation).
#[derive(Debug)]
pub struct PgObserver {
    pool: Pool,
    log_name: String,
    remote: Remote,
}

impl PgObserver {
    /// Connects to `url` (the password from `password` if the URL has none) and applies
    /// the migrations; reads the row of the log named `log_name`. Takes no lease.
    pub fn open(
        url: &str,
        log_name: &str,
        password: Option<&str>,
    ) -> Result<PgObserver, StorageError> {
        let (pool, remote) = super::lock::connect(url, password, 2)?;
        Ok(PgObserver {
            pool,
            log_name: log_name.to_string(),
            remote,
        })
    }

    /// The lease as the row says now; `None` if nobody ever took it.
    pub fn holder(&self) -> Result<Option<LeaseHolder>, StorageError> {
        let (pool, name) = (self.pool.clone(), self.log_name.clone());
        self.remote.run("reading the lease", async move {
            let client = pool.get().await.map_err(pool_error)?;
            let row = client
                .query_opt(
                    "SELECT epoch, advertised,
                            coalesce(lease_until > now(), false) AS live
                       FROM srcos_log WHERE log_name = $1",
                    &[&name],
                )
                .await
                .map_err(db("reading the lease"))?;
            Ok(row.map(|r| LeaseHolder {
                epoch: r.get::<_, i64>(0).max(0) as u64,
                advertised: r.get::<_, Option<String>>(1),
                live: r.get::<_, bool>(2),
            }))
        })
    }
}

impl CheckpointLock for PgObserver {
    fn read(&self) -> Result<Option<Vec<u8>>, StorageError> {
        super::lock::read_checkpoint(&self.remote, &self.pool, &self.log_name)
    }

    /// Always refused: an observer holds no lease.
    fn swap(
        &self,
        _old: Option<LockedCheckpoint<'_>>,
        _new: LockedCheckpoint<'_>,
    ) -> Result<(), StorageError> {
        Err(StorageError::Refused(
            "a frontend's view of the coordinator is read-only".into(),
        ))
    }
}
