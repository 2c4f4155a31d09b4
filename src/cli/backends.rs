//! Which storage backends `serve` runs on: the POSIX data directory (the embedded
//! default), or the tiles in an S3 bucket (`--store s3://BUCKET/PREFIX`) with the
//! checkpoint, lease and batch journal in PostgreSQL (`--coordinator postgres://…`).
//!
//! Endpoint, region, path style and credentials of the bucket come from the environment
//! (`SRCOS_S3_ENDPOINT`, `AWS_REGION`, `SRCOS_S3_PATH_STYLE`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`), the database password from `PGPASSWORD` or the URL in the
//! config file: never from a flag, and never logged.
//!
//! On a coordinated log, [`open_or_follow`] takes the sequencer lease if it is free;
//! otherwise it hands back what a frontend needs (the bucket, a read-only view of the
//! coordinator) and a way to wait for the lease and take over later.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::{CliError, Context};
use crate::storage::object::{ObjectStoreConfig, ObjectTiles, StoreUrl};
use crate::storage::postgres::{PgLock, PgLockOptions, PgObserver};
use crate::storage::{Backends, LogBackends, RecordsIn, StorageError};

/// Where the log lives, as the flags say.
#[derive(Debug, Clone, Default)]
pub struct Placement {
    /// `--store s3://BUCKET/PREFIX`.
    pub store: Option<String>,
    /// `--coordinator postgres://…`.
    pub coordinator: Option<String>,
    /// `--accept-overwriting-store`.
    pub accept_overwriting_store: bool,
    /// `--lease-ms`.
    pub lease: Duration,
    /// `--advertise` (or the bound address): recorded with the lease.
    pub advertise: Option<String>,
}

/// What [`open_or_follow`] found.
pub enum Opened {
    /// This process holds the lease (or the log is not coordinated): sequence.
    Sequencer(Backends),
    /// Another process holds the lease: serve as a frontend.
    Frontend(FrontendParts),
}

/// What a frontend runs on, and how it becomes the sequencer.
pub struct FrontendParts {
    /// The bucket's tiles (read only by the frontend).
    pub tiles: Arc<ObjectTiles>,
    /// The coordinator's row, read only.
    pub observer: Arc<PgObserver>,
    /// Waits (blocking, for as long as it takes) until the lease is free, takes it, and
    /// opens the backends on it; the log is then opened on them as at any start.
    pub take_over: Box<dyn FnOnce() -> Result<Backends, CliError> + Send>,
}

/// Opens the backends `placement` names, taking the lease if the log is coordinated
/// and the lease is free; a frontend's parts if another process holds it.
pub fn open_or_follow(
    data: &Path,
    records: RecordsIn,
    placement: &Placement,
) -> Result<Opened, CliError> {
    let (Some(store), Some(coordinator)) = (&placement.store, &placement.coordinator) else {
        return open(data, records, placement).map(Opened::Sequencer);
    };
    let (url, tiles, options) = cluster_parts(store, coordinator, placement)?;
    let opening = || format!("opening the log in {}", data.display());
    let tiles = Arc::new(tiles);
    let once = PgLockOptions {
        wait: Some(Duration::ZERO),
        ..options.clone()
    };
    match PgLock::open(coordinator, &url.to_string(), once) {
        Ok(lock) => {
            let log = LogBackends {
                tiles,
                lock: Arc::new(lock),
            };
            Backends::with_log(log, data, records)
                .context(opening)
                .map(Opened::Sequencer)
        }
        Err(StorageError::Locked(_)) => {
            let observer =
                PgObserver::open(coordinator, &url.to_string(), options.password.as_deref())
                    .context(|| "opening the coordinator".into())?;
            let (data, coordinator, name) =
                (data.to_path_buf(), coordinator.clone(), url.to_string());
            let shared = tiles.clone();
            let take_over = Box::new(move || {
                let lock = PgLock::open(&coordinator, &name, options)
                    .context(|| "taking the sequencer lease".into())?;
                let log = LogBackends {
                    tiles: shared,
                    lock: Arc::new(lock),
                };
                Backends::with_log(log, &data, records)
                    .context(|| format!("opening the log in {}", data.display()))
            });
            Ok(Opened::Frontend(FrontendParts {
                tiles,
                observer: Arc::new(observer),
                take_over,
            }))
        }
        Err(e) => Err(e).context(|| "opening the coordinator".into()),
    }
}

/// The store URL, the bucket's tiles and the lock's options of a coordinated log.
fn cluster_parts(
    store: &str,
    coordinator: &str,
    placement: &Placement,
) -> Result<(StoreUrl, ObjectTiles, PgLockOptions), CliError> {
    let url = StoreUrl::parse(store).context(|| "--store".into())?;
    if !(coordinator.starts_with("postgres://") || coordinator.starts_with("postgresql://")) {
        return Err(CliError("--coordinator must be a postgres:// URL".into()));
    }
    let mut config = ObjectStoreConfig::from_env();
    config.accept_overwriting_store = placement.accept_overwriting_store;
    let tiles = ObjectTiles::open(&url, &config).context(|| format!("opening {url}"))?;
    let options = PgLockOptions {
        lease: placement.lease,
        password: std::env::var("PGPASSWORD").ok().filter(|p| !p.is_empty()),
        advertise: placement.advertise.clone(),
        ..PgLockOptions::default()
    };
    Ok((url, tiles, options))
}

/// Opens the backends `placement` names, with the local parts in `data`.
pub fn open(data: &Path, records: RecordsIn, placement: &Placement) -> Result<Backends, CliError> {
    let opening = || format!("opening the log in {}", data.display());
    match (&placement.store, &placement.coordinator) {
        (None, None) => Backends::posix(data, records).context(opening),
        (Some(store), Some(coordinator)) => {
            let (url, tiles, options) = cluster_parts(store, coordinator, placement)?;
            let lock = PgLock::open(coordinator, &url.to_string(), options)
                .context(|| "opening the coordinator".into())?;
            let log = LogBackends {
                tiles: Arc::new(tiles),
                lock: Arc::new(lock),
            };
            Backends::with_log(log, data, records).context(opening)
        }
        (Some(_), None) => Err(CliError(
            "--store needs --coordinator postgres://…: the checkpoint, the lease and the \
             batch journal live there"
                .into(),
        )),
        (None, Some(_)) => Err(CliError(
            "--coordinator needs --store s3://BUCKET/PREFIX (the tiles of a coordinated log \
             live in an object store)"
                .into(),
        )),
    }
}
