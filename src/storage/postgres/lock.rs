//! [`PgLock`]: the checkpoint lock in PostgreSQL, held by one sequencer at a time.
//!
//! One row per log (`srcos_log`, named by the log's store) holds the installed
//! checkpoint and its size, the lease (holder, expiry) and the fencing epoch. Opening
//! the lock takes the lease, waiting while another live holder has it, and bumps the
//! epoch; a background task renews it. Every write names the epoch it was opened with:
//! - staging a batch locks the row `WHERE epoch = $mine` and inserts the batch (its
//!   tiles and signed checkpoint) with its dedup keys, in one transaction;
//! - the swap is `UPDATE … WHERE epoch = $mine AND size = $old`, and drops the staged
//!   batches it supersedes in the same transaction.
//!
//! So once another process has taken the lease (the epoch moved on), the old holder can
//! neither stage nor install anything: it is fenced, whatever its clock says. The new
//! holder finishes the batch the old one staged (the engine does, at open), writing the
//! same tiles, which a create-only store accepts.
//!
//! May import: the storage ports, `tiles`, [`crate::storage::remote`] and the migrations.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, Pool};
use tokio_postgres::NoTls;

use super::migrations::{MIGRATIONS, MIGRATION_LOCK};
use crate::storage::remote::Remote;
use crate::storage::{
    CheckpointLock, IndexedLeaf, LockedCheckpoint, StagedBatch, StorageError, TileWrite,
};
use crate::tiles::TileId;

/// How [`PgLock::open`] connects and takes the lease. `Debug` never shows the password.
#[derive(Clone)]
pub struct PgLockOptions {
    /// How long a lease lasts without renewal; it is renewed every third of it. A
    /// standby takes over at most this long after the holder died.
    pub lease: Duration,
    /// How long to wait for the lease while another holder has it (`None`: forever, a
    /// standby).
    pub wait: Option<Duration>,
    /// Who is asking (shown in the table; host and process id by default).
    pub holder: String,
    /// The database password, if the URL has none (from the environment or the config
    /// file, never the command line).
    pub password: Option<String>,
    /// The URL this process serves the log at (`serve --advertise`), recorded with the
    /// lease so that frontends can forward writes to the holder.
    pub advertise: Option<String>,
}

impl std::fmt::Debug for PgLockOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLockOptions")
            .field("lease", &self.lease)
            .field("wait", &self.wait)
            .field("holder", &self.holder)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("advertise", &self.advertise)
            .finish()
    }
}

impl Default for PgLockOptions {
    fn default() -> Self {
        PgLockOptions {
            lease: Duration::from_secs(10),
            wait: None,
            holder: format!(
                "{}:{}",
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_string())
                    .unwrap_or_default(),
                std::process::id()
            ),
            password: None,
            advertise: None,
        }
    }
}

/// The checkpoint lock in PostgreSQL (see the module documentation).
#[derive(Debug)]
pub struct PgLock {
    pool: Pool,
    log_name: String,
    epoch: i64,
    fenced: Arc<AtomicBool>,
    remote: Remote,
}

pub(super) fn db(context: &'static str) -> impl Fn(tokio_postgres::Error) -> StorageError {
    move |e| StorageError::Database(format!("{context}: {e}"))
}

pub(super) fn pool_error(e: deadpool_postgres::PoolError) -> StorageError {
    StorageError::Database(format!("connecting: {e}"))
}

/// The checkpoint installed in the row of `log_name`, if any: what [`PgLock`] and the
/// read-only [`super::observer::PgObserver`] both answer to `CheckpointLock::read`.
pub(super) fn read_checkpoint(
    remote: &Remote,
    pool: &Pool,
    log_name: &str,
) -> Result<Option<Vec<u8>>, StorageError> {
    let (pool, name) = (pool.clone(), log_name.to_string());
    remote.run("reading the checkpoint", async move {
        let client = pool.get().await.map_err(pool_error)?;
        let row = client
            .query_opt(
                "SELECT checkpoint FROM srcos_log WHERE log_name = $1",
                &[&name],
            )
            .await
            .map_err(db("reading the checkpoint"))?;
        Ok(row.and_then(|r| r.get::<_, Option<Vec<u8>>>(0)))
    })
}

impl PgLock {
    /// Connects to `url`, applies the migrations, and takes the lease of the log named
    /// `log_name` (its store, e.g. `s3://bucket/prefix`). The URL is never logged.
    pub fn open(url: &str, log_name: &str, options: PgLockOptions) -> Result<PgLock, StorageError> {
        let (pool, remote) = connect(url, options.password.as_deref(), 4)?;
        let lease_secs = options.lease.as_secs_f64().max(0.1);
        let deadline = options.wait.map(|w| std::time::Instant::now() + w);
        let mut waited = false;
        let epoch = loop {
            let (pool, name, holder) = (pool.clone(), log_name.to_string(), options.holder.clone());
            let advertise = options.advertise.clone();
            let taken = remote.run("taking the sequencer lease", async move {
                take_lease(&pool, &name, &holder, advertise.as_deref(), lease_secs).await
            })?;
            if let Some(epoch) = taken {
                break epoch;
            }
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return Err(StorageError::Locked(format!(
                    "another sequencer holds the lease of {log_name}"
                )));
            }
            if !waited {
                tracing::info!(
                    log = log_name,
                    "another sequencer holds the lease; waiting as a standby"
                );
                waited = true;
            }
            std::thread::sleep((options.lease / 5).max(Duration::from_millis(50)));
        };
        tracing::info!(log = log_name, epoch, "took the sequencer lease");
        let lock = PgLock {
            pool,
            log_name: log_name.to_string(),
            epoch,
            fenced: Arc::new(AtomicBool::new(false)),
            remote,
        };
        lock.renew_in_background(options.lease);
        Ok(lock)
    }

    /// The fencing epoch this lock was opened with.
    pub fn epoch(&self) -> u64 {
        self.epoch as u64
    }

    /// Whether another process has taken the lease since (learnt at the last renewal or
    /// write).
    pub fn is_fenced(&self) -> bool {
        self.fenced.load(Ordering::SeqCst)
    }

    /// The exact dedup row of `key`: the leaf index staged with it, if any.
    pub fn dedup(&self, key: &[u8; 32]) -> Result<Option<u64>, StorageError> {
        let (pool, name, key) = (self.pool.clone(), self.log_name.clone(), key.to_vec());
        self.remote.run("reading a dedup key", async move {
            let client = pool.get().await.map_err(pool_error)?;
            let row = client
                .query_opt(
                    "SELECT leaf FROM srcos_dedup WHERE log_name = $1 AND dedup_key = $2",
                    &[&name, &key],
                )
                .await
                .map_err(db("reading a dedup key"))?;
            Ok(row.map(|r| r.get::<_, i64>(0) as u64))
        })
    }

    fn renew_in_background(&self, lease: Duration) {
        let (pool, name, epoch, fenced) = (
            self.pool.clone(),
            self.log_name.clone(),
            self.epoch,
            self.fenced.clone(),
        );
        let secs = lease.as_secs_f64().max(0.1);
        self.remote.spawn(async move {
            let mut tick = tokio::time::interval(lease / 3);
            loop {
                tick.tick().await;
                let Ok(client) = pool.get().await else { continue };
                match client
                    .execute(
                        "UPDATE srcos_log SET lease_until = now() + make_interval(secs => $3)
                         WHERE log_name = $1 AND epoch = $2",
                        &[&name, &epoch, &secs],
                    )
                    .await
                {
                    Ok(0) => {
                        tracing::error!(log = %name, epoch, "fenced: another sequencer took the lease");
                        fenced.store(true, Ordering::SeqCst);
                        return;
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "renewing the sequencer lease"),
                }
            }
        });
    }

    fn fenced_error(&self) -> StorageError {
        self.fenced.store(true, Ordering::SeqCst);
        StorageError::Conflict(format!(
            "fenced: epoch {} of {} is over, or its checkpoint moved",
            self.epoch, self.log_name
        ))
    }
}

/// A pool of at most `connections` to `url` (the password from `password` if the URL
/// has none) on a runtime of its own, with the migrations applied.
pub(super) fn connect(
    url: &str,
    password: Option<&str>,
    connections: usize,
) -> Result<(Pool, Remote), StorageError> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|_| StorageError::Refused("the coordinator URL does not parse".into()))?;
    if let (None, Some(password)) = (config.get_password(), password) {
        config.password(password.as_bytes());
    }
    let remote = Remote::new("postgres", 1, Duration::from_secs(30))?;
    let pool = Pool::builder(Manager::new(config, NoTls))
        .max_size(connections)
        .build()
        .map_err(|e| StorageError::Refused(format!("the coordinator pool: {e}")))?;
    {
        let pool = pool.clone();
        remote.run(
            "migrating the coordinator",
            async move { migrate(&pool).await },
        )?;
    }
    Ok((pool, remote))
}

async fn migrate(pool: &Pool) -> Result<(), StorageError> {
    let mut client = pool.get().await.map_err(pool_error)?;
    let tx = client.transaction().await.map_err(db("migrating"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db("migrating"))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS srcos_migrations (
            version integer PRIMARY KEY,
            applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await
    .map_err(db("migrating"))?;
    let applied: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM srcos_migrations",
            &[],
        )
        .await
        .map_err(db("migrating"))?
        .get(0);
    if applied as usize > MIGRATIONS.len() {
        return Err(StorageError::Refused(format!(
            "the coordinator's schema is at version {applied}, newer than this program's {}",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
        let version = i as i32 + 1;
        tx.batch_execute(sql).await.map_err(db("migrating"))?;
        tx.execute(
            "INSERT INTO srcos_migrations (version) VALUES ($1)",
            &[&version],
        )
        .await
        .map_err(db("migrating"))?;
        tracing::info!(version, "coordinator schema migrated");
    }
    tx.commit().await.map_err(db("migrating"))
}

/// Takes the lease if nobody holds it live: bumps the epoch, records who holds it and
/// the URL it serves at. `None`: held by another.
async fn take_lease(
    pool: &Pool,
    name: &str,
    holder: &str,
    advertise: Option<&str>,
    lease_secs: f64,
) -> Result<Option<i64>, StorageError> {
    let client = pool.get().await.map_err(pool_error)?;
    client
        .execute(
            "INSERT INTO srcos_log (log_name, epoch) VALUES ($1, 0) ON CONFLICT DO NOTHING",
            &[&name],
        )
        .await
        .map_err(db("taking the lease"))?;
    let row = client
        .query_opt(
            "UPDATE srcos_log
                SET epoch = epoch + 1, holder = $2, advertised = $4,
                    lease_until = now() + make_interval(secs => $3)
              WHERE log_name = $1 AND (lease_until IS NULL OR lease_until < now())
             RETURNING epoch",
            &[&name, &holder, &lease_secs, &advertise],
        )
        .await
        .map_err(db("taking the lease"))?;
    Ok(row.map(|r| r.get(0)))
}

fn size_param(size: Option<u64>) -> Result<i64, StorageError> {
    match size {
        None => Ok(-1),
        Some(s) => i64::try_from(s).map_err(|_| StorageError::Corrupt(format!("size {s}"))),
    }
}

/// The journal's form of a batch's tiles: per tile, the path's length (u16 BE), the
/// path, the data's length (u32 BE), the data.
pub(crate) fn encode_tiles(writes: &[TileWrite]) -> Vec<u8> {
    let mut out = Vec::new();
    for write in writes {
        let path = write.tile.path();
        out.extend_from_slice(&(path.len() as u16).to_be_bytes());
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(&(write.data.len() as u32).to_be_bytes());
        out.extend_from_slice(&write.data);
    }
    out
}

/// Reads [`encode_tiles`] back; anything else is [`StorageError::Corrupt`].
pub(crate) fn decode_tiles(mut bytes: &[u8]) -> Result<Vec<TileWrite>, StorageError> {
    let corrupt = || StorageError::Corrupt("a staged batch's tiles do not decode".into());
    let take = |n: usize, bytes: &mut &[u8]| -> Result<Vec<u8>, StorageError> {
        if bytes.len() < n {
            return Err(corrupt());
        }
        let (head, tail) = bytes.split_at(n);
        *bytes = tail;
        Ok(head.to_vec())
    };
    let mut writes = Vec::new();
    while !bytes.is_empty() {
        let len = take(2, &mut bytes)?;
        let path = take(u16::from_be_bytes([len[0], len[1]]) as usize, &mut bytes)?;
        let len = take(4, &mut bytes)?;
        let data = take(
            u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize,
            &mut bytes,
        )?;
        let tile = std::str::from_utf8(&path)
            .ok()
            .and_then(TileId::parse_path)
            .ok_or_else(corrupt)?;
        writes.push(TileWrite { tile, data });
    }
    Ok(writes)
}

impl CheckpointLock for PgLock {
    fn read(&self) -> Result<Option<Vec<u8>>, StorageError> {
        read_checkpoint(&self.remote, &self.pool, &self.log_name)
    }

    fn swap(
        &self,
        old: Option<LockedCheckpoint<'_>>,
        new: LockedCheckpoint<'_>,
    ) -> Result<(), StorageError> {
        let old_size = old.map(|o| o.size);
        let new_size = size_param(Some(new.size))?;
        let (pool, name, epoch, signed) = (
            self.pool.clone(),
            self.log_name.clone(),
            self.epoch,
            new.signed.to_vec(),
        );
        let old_param = old_size.map(|s| s as i64);
        let swapped = self.remote.run("installing the checkpoint", async move {
            // One statement, one round trip (prepared once per connection): the
            // compare-and-swap and the drop of the staged batches it supersedes.
            let client = pool.get().await.map_err(pool_error)?;
            let statement = client
                .prepare_cached(
                    "WITH upd AS (
                        UPDATE srcos_log SET size = $3, checkpoint = $4
                         WHERE log_name = $1 AND epoch = $2
                           AND size IS NOT DISTINCT FROM $5::bigint
                        RETURNING log_name),
                     del AS (
                        DELETE FROM srcos_staged s USING upd
                         WHERE s.log_name = upd.log_name AND s.old_size < $3)
                     SELECT count(*) FROM upd",
                )
                .await
                .map_err(db("swap"))?;
            let n: i64 = client
                .query_one(&statement, &[&name, &epoch, &new_size, &signed, &old_param])
                .await
                .map_err(db("swap"))?
                .get(0);
            Ok(n == 1)
        })?;
        if swapped {
            Ok(())
        } else {
            Err(self.fenced_error())
        }
    }

    fn journals(&self) -> bool {
        true
    }

    fn stage(
        &self,
        old: Option<LockedCheckpoint<'_>>,
        new: LockedCheckpoint<'_>,
        writes: &[TileWrite],
        leaves: &[IndexedLeaf],
    ) -> Result<(), StorageError> {
        let old_key = size_param(old.map(|o| o.size))?;
        let old_param = old.map(|o| o.size as i64);
        let new_size = size_param(Some(new.size))?;
        let (pool, name, epoch, signed) = (
            self.pool.clone(),
            self.log_name.clone(),
            self.epoch,
            new.signed.to_vec(),
        );
        let tiles = encode_tiles(writes);
        let (keys, indices): (Vec<Vec<u8>>, Vec<i64>) = leaves
            .iter()
            .filter_map(|l| l.dedup_key.map(|k| (k.to_vec(), l.index as i64)))
            .unzip();
        let outcome = self.remote.run("staging the batch", async move {
            // One statement, one round trip (prepared once per connection). The row lock
            // on the log row (`cur`, with the epoch and size check) orders it against a
            // takeover, which bumps the epoch; the dedup rows go in only with our batch.
            let client = pool.get().await.map_err(pool_error)?;
            let statement = client
                .prepare_cached(
                    "WITH cur AS (
                        SELECT log_name FROM srcos_log
                         WHERE log_name = $1 AND epoch = $2
                           AND size IS NOT DISTINCT FROM $3::bigint
                        FOR UPDATE),
                     ins AS (
                        INSERT INTO srcos_staged
                               (log_name, old_size, new_size, epoch, checkpoint, tiles)
                        SELECT log_name, $4::bigint, $5::bigint, $2, $6::bytea, $7::bytea
                          FROM cur
                        ON CONFLICT DO NOTHING RETURNING checkpoint),
                     old AS (
                        SELECT checkpoint FROM srcos_staged
                         WHERE log_name = $1 AND old_size = $4::bigint),
                     dedup AS (
                        INSERT INTO srcos_dedup (log_name, dedup_key, leaf)
                        SELECT cur.log_name, t.k, t.i
                          FROM cur, unnest($8::bytea[], $9::bigint[]) AS t (k, i)
                         WHERE EXISTS (SELECT 1 FROM ins)
                            OR EXISTS (SELECT 1 FROM old WHERE checkpoint = $6::bytea)
                        ON CONFLICT DO NOTHING)
                     SELECT EXISTS (SELECT 1 FROM cur),
                            coalesce((SELECT checkpoint FROM ins),
                                     (SELECT checkpoint FROM old))",
                )
                .await
                .map_err(db("stage"))?;
            let row = client
                .query_one(
                    &statement,
                    &[
                        &name, &epoch, &old_param, &old_key, &new_size, &signed, &tiles, &keys,
                        &indices,
                    ],
                )
                .await
                .map_err(db("stage"))?;
            let (current, stored): (bool, Option<Vec<u8>>) = (row.get(0), row.get(1));
            if !current {
                return Ok(Some("fenced"));
            }
            if stored.as_deref() != Some(signed.as_slice()) {
                return Ok(Some("another batch is staged from the same checkpoint"));
            }
            Ok(None)
        })?;
        match outcome {
            None => Ok(()),
            Some("fenced") => Err(self.fenced_error()),
            Some(why) => Err(StorageError::Conflict(why.into())),
        }
    }

    fn staged(&self) -> Result<Option<StagedBatch>, StorageError> {
        let (pool, name) = (self.pool.clone(), self.log_name.clone());
        let row = self.remote.run("reading the staged batch", async move {
            let client = pool.get().await.map_err(pool_error)?;
            client
                .query_opt(
                    "SELECT s.old_size, s.new_size, s.checkpoint, s.tiles
                       FROM srcos_staged s JOIN srcos_log l USING (log_name)
                      WHERE s.log_name = $1 AND s.old_size = coalesce(l.size, -1)",
                    &[&name],
                )
                .await
                .map_err(db("reading the staged batch"))
                .map(|row| {
                    row.map(|r| {
                        (
                            r.get::<_, i64>(0),
                            r.get::<_, i64>(1),
                            r.get::<_, Vec<u8>>(2),
                            r.get::<_, Vec<u8>>(3),
                        )
                    })
                })
        })?;
        let Some((old, new, signed, tiles)) = row else {
            return Ok(None);
        };
        Ok(Some(StagedBatch {
            old_size: u64::try_from(old).ok(),
            new_size: u64::try_from(new)
                .map_err(|_| StorageError::Corrupt(format!("staged size {new}")))?,
            signed,
            writes: decode_tiles(&tiles)?,
        }))
    }
}

impl Drop for PgLock {
    /// Gives the lease up at once, so a standby need not wait for it to expire.
    fn drop(&mut self) {
        let (pool, name, epoch) = (self.pool.clone(), self.log_name.clone(), self.epoch);
        let _ = self.remote.run("releasing the lease", async move {
            let client = pool.get().await.map_err(pool_error)?;
            client
                .execute(
                    "UPDATE srcos_log SET lease_until = NULL, holder = NULL, advertised = NULL
                      WHERE log_name = $1 AND epoch = $2",
                    &[&name, &epoch],
                )
                .await
                .map_err(db("releasing the lease"))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiles::TileKind;

    #[test]
    fn staged_tiles_round_trip_and_reject_damage() {
        let writes = vec![
            TileWrite {
                tile: TileId {
                    kind: TileKind::Hash(0),
                    index: 1234,
                    width: 5,
                },
                data: vec![7; 160],
            },
            TileWrite {
                tile: TileId {
                    kind: TileKind::Entries,
                    index: 0,
                    width: 256,
                },
                data: vec![],
            },
        ];
        let bytes = encode_tiles(&writes);
        let back = decode_tiles(&bytes).unwrap();
        assert_eq!(back.len(), 2);
        for (a, b) in writes.iter().zip(&back) {
            assert_eq!((a.tile.path(), &a.data), (b.tile.path(), &b.data));
        }
        assert!(decode_tiles(&[]).unwrap().is_empty());
        for cut in [1, 3, bytes.len() - 1] {
            assert!(decode_tiles(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad_path = bytes.clone();
        bad_path[2] = b'x';
        assert!(decode_tiles(&bad_path).is_err());
    }
}
