//! `srcos-catalog mirror --from DIR|s3://… --to s3://…|DIR`: copies a log between a data
//! directory (its `log/` tiles and checkpoint) and a bucket (the tiles and the served
//! `checkpoint` object), verified against the signed checkpoint (`log::mirror`).
//!
//! The bucket's endpoint and credentials come from the environment, as for `serve`
//! (`cli::backends`). With `--coordinator`, a bucket destination's checkpoint is also
//! installed in PostgreSQL (the commit point `serve` reads), which is what moving a log
//! from the embedded default to the cluster needs. A destination directory gets the log's
//! `log.vkey` beside its `log/`; never a private key.
//!
//! The evidence blobs go too (`log::mirror::BlobCopy`): a directory's `blobs/` (if it has
//! one), a bucket's `PREFIX/blobs/`, as `serve` keeps them. A bucket end passes each blob
//! through a scratch directory under the system's temporary directory, one at a time,
//! removed at the end.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use super::{CliError, Context};
use crate::keyfile::read_verifier;
use crate::log::mirror::{mirror, BlobCopy, MirrorEnd};
use crate::note::Verifier;
use crate::storage::blobs::object::ObjectBlobs;
use crate::storage::blobs::posix::PosixBlobs;
use crate::storage::blobs::quota::Limits;
use crate::storage::blobs::{BlobBackend, BlobStore, DEFAULT_MAX_BLOB_BYTES};
use crate::storage::object::{ObjectStoreConfig, ObjectTiles, StoreUrl};
use crate::storage::posix::{DataDirLock, PosixLock, PosixTiles};
use crate::storage::postgres::{PgLock, PgLockOptions};
use crate::storage::{CheckpointLock, TileStore};

/// Arguments of `mirror`.
#[derive(Debug, Args)]
pub struct MirrorArgs {
    /// Where the log is: a data directory, or s3://BUCKET/PREFIX.
    #[arg(long)]
    from: String,
    /// Where to copy it: s3://BUCKET/PREFIX, or a data directory (created if needed; not
    /// one a server is running on).
    #[arg(long)]
    to: String,
    /// The log's verifier key. Default: log.vkey in the source directory.
    #[arg(long)]
    log_vkey: Option<PathBuf>,
    /// With an s3:// destination: also install the checkpoint in this coordinator
    /// (postgres://…, as `serve --coordinator`), so that `serve --store … --coordinator
    /// …` continues the mirrored log. Takes the lease for the copy (waits up to
    /// --lease-ms for a running holder, then fails): stop the servers first.
    #[arg(long, value_name = "URL")]
    coordinator: Option<String>,
    /// The lease the copy holds in the coordinator, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    lease_ms: u64,
    /// The largest evidence blob copied (a larger one stops the mirror): at least the
    /// source's `serve --max-blob-bytes`. Default: 64 MiB, as `serve`'s.
    #[arg(long, default_value_t = DEFAULT_MAX_BLOB_BYTES)]
    max_blob_bytes: u64,
}

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(end: &str) -> Result<Scratch, CliError> {
        let path =
            std::env::temp_dir().join(format!("srcos-catalog-mirror-{}-{end}", std::process::id()));
        std::fs::create_dir_all(path.join("tmp"))
            .context(|| format!("creating {}", path.display()))?;
        Ok(Scratch(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One end's evidence blobs: the source's backend, or the destination's store.
enum Blobs {
    Absent,
    Source(Box<dyn BlobBackend>),
    Destination(BlobStore),
}

/// One end, opened.
enum End {
    Dir {
        root: PathBuf,
        tiles: PosixTiles,
        lock: PosixLock,
        _held: Option<DataDirLock>,
    },
    Bucket(Box<ObjectTiles>, Option<PgLock>),
}

/// The limits a mirror's destination store checks copies against: only the size.
fn copy_limits(max_blob_bytes: u64) -> Limits {
    Limits {
        key_quota_bytes: u64::MAX,
        total_quota_bytes: u64::MAX,
        reserve_bytes: 0,
        ..Limits::with_max_blob(max_blob_bytes)
    }
}

/// The evidence blobs at `spec` (a directory's `blobs/`, a bucket's `PREFIX/blobs/`),
/// for reading (`writing` false) or as the destination.
fn open_blobs(
    spec: &str,
    writing: bool,
    max_blob_bytes: u64,
    scratch: &mut Option<Scratch>,
) -> Result<Blobs, CliError> {
    let (root, backend): (PathBuf, Box<dyn BlobBackend>) = if spec.starts_with("s3://") {
        let url = StoreUrl::parse(spec)?;
        let dir = Scratch::new(if writing { "to" } else { "from" })?;
        let root = dir.0.clone();
        *scratch = Some(dir);
        let config = ObjectStoreConfig::from_env();
        let blobs = ObjectBlobs::open(&url, &config, &root, max_blob_bytes, 0)
            .context(|| format!("opening the blobs of {url}"))?;
        (root, Box::new(blobs.uncached()))
    } else {
        let root = Path::new(spec).join("blobs");
        if !writing && !root.join("sha256").is_dir() {
            return Ok(Blobs::Absent);
        }
        let blobs = PosixBlobs::open(&root).context(|| format!("opening {}", root.display()))?;
        (root, Box::new(blobs))
    };
    if !writing {
        return Ok(Blobs::Source(backend));
    }
    let store = BlobStore::with_backend(&root, backend, copy_limits(max_blob_bytes))
        .context(|| format!("opening the blobs of {spec}"))?;
    Ok(Blobs::Destination(store))
}

impl End {
    /// Opens `spec`; `coordinator` is (URL, lease) for a bucket destination.
    fn open(
        spec: &str,
        writing: bool,
        coordinator: Option<(&str, Duration)>,
    ) -> Result<End, CliError> {
        if spec.starts_with("s3://") {
            let url = StoreUrl::parse(spec)?;
            let config = ObjectStoreConfig::from_env();
            let tiles = if writing {
                ObjectTiles::open(&url, &config)
            } else {
                ObjectTiles::open_read_only(&url, &config)
            };
            let tiles = tiles.context(|| format!("opening {url}"))?;
            let lock = match coordinator {
                Some((coordinator, lease)) => {
                    let options = PgLockOptions {
                        lease,
                        wait: Some(lease),
                        password: std::env::var("PGPASSWORD").ok().filter(|p| !p.is_empty()),
                        ..PgLockOptions::default()
                    };
                    Some(
                        PgLock::open(coordinator, &url.to_string(), options)
                            .context(|| "opening the coordinator".into())?,
                    )
                }
                None => None,
            };
            return Ok(End::Bucket(Box::new(tiles), lock));
        }
        if coordinator.is_some() {
            return Err(CliError(
                "--coordinator goes with an s3:// destination (a directory's checkpoint is \
                 its own)"
                    .into(),
            ));
        }
        let root = PathBuf::from(spec);
        let log = root.join("log");
        if writing {
            std::fs::create_dir_all(&root).context(|| format!("creating {spec}"))?;
            let held = DataDirLock::exclusive(&root)?;
            Ok(End::Dir {
                tiles: PosixTiles::open(&log)?,
                lock: PosixLock::open(&log)?,
                root,
                _held: Some(held),
            })
        } else {
            if !log.is_dir() {
                return Err(CliError(format!(
                    "{spec} is not a data directory (no log/ in it)"
                )));
            }
            Ok(End::Dir {
                tiles: PosixTiles::open_read_only(&log),
                lock: PosixLock::open_read_only(&log)?,
                root,
                _held: None,
            })
        }
    }

    fn end(&self) -> MirrorEnd<'_> {
        match self {
            End::Dir { tiles, lock, .. } => MirrorEnd {
                tiles: tiles as &dyn TileStore,
                lock: Some(lock as &dyn CheckpointLock),
            },
            End::Bucket(tiles, lock) => MirrorEnd {
                tiles: tiles.as_ref(),
                lock: lock.as_ref().map(|l| l as &dyn CheckpointLock),
            },
        }
    }

    fn dir(&self) -> Option<&Path> {
        match self {
            End::Dir { root, .. } => Some(root),
            End::Bucket(..) => None,
        }
    }
}

/// Mirrors the log; prints what was copied.
pub fn run(args: MirrorArgs) -> Result<(), CliError> {
    super::progress::install();
    let from = End::open(&args.from, false, None)?;
    let vkey = match (&args.log_vkey, from.dir()) {
        (Some(path), _) => path.clone(),
        (None, Some(dir)) => dir.join("log.vkey"),
        (None, None) => {
            return Err(CliError(
                "--log-vkey FILE is needed to verify a log read from a bucket".into(),
            ))
        }
    };
    let log_key = read_verifier(&vkey).context(|| format!("reading {}", vkey.display()))?;
    let coordinator = args
        .coordinator
        .as_deref()
        .map(|url| (url, Duration::from_millis(args.lease_ms.max(1))));
    if coordinator.is_some_and(|(url, _)| {
        !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
    }) {
        return Err(CliError("--coordinator must be a postgres:// URL".into()));
    }
    let to = End::open(&args.to, true, coordinator)?;
    if let Some(dir) = to.dir() {
        keep_vkey(dir, &log_key)?;
    }
    let (mut from_scratch, mut to_scratch) = (None, None);
    let from_blobs = open_blobs(&args.from, false, args.max_blob_bytes, &mut from_scratch)?;
    let to_blobs = match from_blobs {
        Blobs::Absent => Blobs::Absent,
        _ => open_blobs(&args.to, true, args.max_blob_bytes, &mut to_scratch)?,
    };
    let blobs = match (&from_blobs, &to_blobs) {
        (Blobs::Source(from), Blobs::Destination(to)) => Some(BlobCopy {
            from: from.as_ref(),
            to,
        }),
        _ => None,
    };
    let report = mirror(&from.end(), &to.end(), blobs.as_ref(), &log_key)
        .context(|| format!("mirroring {} to {}", args.from, args.to))?;
    println!(
        "mirrored {} entries from {} to {}: {} evidence blobs written ({} bytes), {} already \
         there; {} objects written ({} bytes), {} already there; checkpoint {}",
        report.size,
        args.from,
        args.to,
        report.blobs_written,
        report.blob_bytes,
        report.blobs_skipped,
        report.written,
        report.bytes,
        report.skipped,
        if report.checkpoint_written {
            "written"
        } else {
            "unchanged"
        }
    );
    Ok(())
}

/// Writes `DIR/log.vkey` (the log's verifier key), or insists the one there is the same.
fn keep_vkey(dir: &Path, log_key: &Verifier) -> Result<(), CliError> {
    let path = dir.join("log.vkey");
    if path.exists() {
        let held = read_verifier(&path).context(|| format!("reading {}", path.display()))?;
        if held.to_vkey() != log_key.to_vkey() {
            return Err(CliError(format!(
                "{} is another log's key; the destination holds another log",
                path.display()
            )));
        }
        return Ok(());
    }
    let mut text = log_key.to_vkey();
    text.push('\n');
    crate::storage::durable::replace_atomically(&path, text.as_bytes())
        .context(|| format!("writing {}", path.display()))
}
