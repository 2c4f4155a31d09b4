//! Which storage backends `serve` runs on: the POSIX data directory (the embedded
//! default), or the tiles in an S3 bucket (`--store s3://BUCKET/PREFIX`) with the
//! checkpoint, lease and batch journal in PostgreSQL (`--coordinator postgres://…`).
//!
//! Endpoint, region, path style and credentials of the bucket come from the environment
//! (`SRCOS_S3_ENDPOINT`, `AWS_REGION`, `SRCOS_S3_PATH_STYLE`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`), the database password from `PGPASSWORD` or the URL in the
//! config file: never from a flag, and never logged.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::{CliError, Context};
use crate::storage::object::{ObjectStoreConfig, ObjectTiles, StoreUrl};
use crate::storage::postgres::{PgLock, PgLockOptions};
use crate::storage::{Backends, LogBackends, RecordsIn};

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
}

/// Opens the backends `placement` names, with the local parts in `data`.
pub fn open(data: &Path, records: RecordsIn, placement: &Placement) -> Result<Backends, CliError> {
    let opening = || format!("opening the log in {}", data.display());
    match (&placement.store, &placement.coordinator) {
        (None, None) => Backends::posix(data, records).context(opening),
        (Some(store), Some(coordinator)) => {
            let url = StoreUrl::parse(store).context(|| "--store".into())?;
            if !(coordinator.starts_with("postgres://") || coordinator.starts_with("postgresql://"))
            {
                return Err(CliError("--coordinator must be a postgres:// URL".into()));
            }
            let mut config = ObjectStoreConfig::from_env();
            config.accept_overwriting_store = placement.accept_overwriting_store;
            let tiles = ObjectTiles::open(&url, &config).context(|| format!("opening {url}"))?;
            let options = PgLockOptions {
                lease: placement.lease,
                password: std::env::var("PGPASSWORD").ok().filter(|p| !p.is_empty()),
                ..PgLockOptions::default()
            };
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
