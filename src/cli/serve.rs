//! `srcos-catalog serve`: chooses the storage backends (the POSIX data directory, or an
//! S3 bucket coordinated by PostgreSQL: `backends`; the records on disk or in memory), opens the log on them, and serves it over HTTP, with
//! the operational endpoints (`/healthz`, `/readyz`, `/metrics`, on `--metrics-listen`
//! when given) and the flags from `--config FILE.toml` (see `config`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, CommandFactory as _, FromArgMatches as _};

use super::{default_data_dir, runtime, CliError, Context};
use crate::keyfile::read_verifier;
use crate::log::snapshot::SnapshotCheck;
use crate::log::{Log, LogOptions};
use crate::storage::RecordsIn;

/// Arguments of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The data directory (created with a new log key and genesis if empty).
    #[arg(long, default_value_os_t = default_data_dir())]
    data: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Origin (and log key name) of a new log.
    #[arg(long)]
    origin: Option<String>,
    /// Admin verifier key files for a new log (repeatable). Without any, an admin key
    /// is generated as DATA/admin.key.
    #[arg(long = "admin-vkey")]
    admin_vkeys: Vec<PathBuf>,
    /// Most entries per batch (one fsync and one checkpoint per batch).
    #[arg(long, default_value_t = 1024)]
    batch_max: usize,
    /// Longest wait, in milliseconds, for more entries before committing a batch.
    #[arg(long, default_value_t = 1)]
    batch_delay_ms: u64,
    /// End every N-th batch with a StateCommitment entry: the root of the authenticated
    /// map of the catalog state, from which `GET /v1/state/proofs` and `check` prove
    /// lookups (log-format/state.md). 0: never.
    #[arg(long, default_value_t = 0)]
    state_commit_every: u64,
    /// Test only: commit wrong state roots, so tests can prove monitors catch them.
    #[arg(long, hide = true)]
    state_commit_wrong_root_for_tests: bool,
    /// Where the catalog keeps its per-publication records: `disk` (memory stays flat
    /// whatever the log size) or `memory` (faster, grows ~4 KB per publication).
    #[arg(long, value_enum, default_value_t = Projection::Disk)]
    projection: Projection,
    /// Write a snapshot of the catalog (DATA/snapshot/) every this many entries (and at
    /// least every quarter of the log) and at shutdown, so start-up replays only the
    /// entries after it; 0: never (ADR 0008).
    #[arg(long, default_value_t = crate::log::DEFAULT_SNAPSHOT_EVERY)]
    snapshot_every: u64,
    /// How a snapshot is checked at start-up before the catalog is restored from it:
    /// `index` (size and root against the tiles, the SHA-256 of its block index; each
    /// block's SHA-256 when first read, ADR 0009), `hash` (also the whole file's),
    /// `digest` (also the state digest of what was loaded), `off` (ignore snapshots:
    /// replay the whole log).
    #[arg(long, value_enum, default_value_t = SnapshotCheckArg::Index)]
    snapshot_check: SnapshotCheckArg,
    /// The evidence blob store's limits and expiry.
    #[command(flatten)]
    blobs: BlobArgs,
    /// Witness cosigning.
    #[command(flatten)]
    witnessing: super::witnessing::WitnessingArgs,
    /// Connection limits.
    #[command(flatten)]
    connections: super::connections::ConnectionArgs,
    /// A TOML file of these flags (keys are the long flag names, e.g. `batch-max = 64`);
    /// flags on the command line override it. See docs/serve.example.toml.
    #[arg(long, value_name = "FILE.toml")]
    config: Option<PathBuf>,
    /// The log format.
    #[command(flatten)]
    log_format: super::ops::LogArgs,
    /// Serve /metrics (and /healthz, /readyz) on this address only, instead of on the
    /// API listener (where /metrics then answers 404).
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    /// Keep the tiles in this S3 bucket (`s3://BUCKET/PREFIX`) instead of DATA/log/;
    /// needs --coordinator. Endpoint, region, path style and credentials come from the
    /// environment (docs/deployment.md), never from flags.
    #[arg(long, value_name = "s3://BUCKET/PREFIX")]
    store: Option<String>,
    /// Keep the checkpoint, the sequencer lease and the batch journal in this PostgreSQL
    /// database (`postgres://USER@HOST:PORT/DB`; the password from PGPASSWORD or the
    /// config file). A second `serve` on the same store waits as a standby until the
    /// lease is free.
    #[arg(long, value_name = "postgres://…")]
    coordinator: Option<String>,
    /// Run on an object store that silently overwrites create-only writes (the start-up
    /// probe refuses one otherwise): committed tiles are then protected only by the
    /// coordinator's journal and fencing.
    #[arg(long)]
    accept_overwriting_store: bool,
    /// How long the sequencer lease lasts without renewal, in milliseconds: a standby
    /// takes over at most this long after the sequencer died.
    #[arg(long, default_value_t = 10_000)]
    lease_ms: u64,
}

/// `--projection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Projection {
    /// sled with a small cache under DATA/projection/.
    Disk,
    /// In memory.
    Memory,
}

/// `--snapshot-check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SnapshotCheckArg {
    /// Ignore snapshots.
    Off,
    /// Size, root and the index's hash; each block's hash when first read (ADR 0009).
    Index,
    /// Size, root, and the hash of the whole file and of every block.
    Hash,
    /// Hash, size, root and the state digest.
    Digest,
}

/// `args` with the flags of `--config` under them (unchanged without `--config`).
fn with_config(args: ServeArgs) -> Result<ServeArgs, CliError> {
    let Some(path) = &args.config else {
        return Ok(args);
    };
    let command = super::Cli::command();
    let serve = command
        .find_subcommand("serve")
        .ok_or_else(|| CliError("the serve command is not defined".into()))?;
    let tokens = super::ops::subcommand_tokens("serve");
    let matches = super::config::merge(serve, path, &tokens)?;
    Ok(ServeArgs::from_arg_matches(&matches)?)
}

/// Opens the log, serves until SIGTERM/SIGINT, then finishes the batch in flight.
pub fn run(args: ServeArgs) -> Result<(), CliError> {
    let started = std::time::Instant::now();
    let args = with_config(args)?;
    super::ops::init_tracing(args.log_format.log_format);
    let metrics = super::ops::install_metrics()?;
    let admin_keys = args
        .admin_vkeys
        .iter()
        .map(|path| read_verifier(path))
        .collect::<Result<Vec<_>, _>>()?;
    let mut options = LogOptions::new(&args.data);
    options.origin = args.origin.clone();
    options.admin_keys = admin_keys;
    options.batch_max = args.batch_max;
    options.batch_delay = Duration::from_millis(args.batch_delay_ms);
    options.state_commit_every = args.state_commit_every;
    options.state_commit_wrong_root = args.state_commit_wrong_root_for_tests;
    options.snapshot_every = (args.snapshot_every > 0).then_some(args.snapshot_every);
    options.snapshot_check = match args.snapshot_check {
        SnapshotCheckArg::Off => SnapshotCheck::Off,
        SnapshotCheckArg::Index => SnapshotCheck::Index,
        SnapshotCheckArg::Hash => SnapshotCheck::Hash,
        SnapshotCheckArg::Digest => SnapshotCheck::Digest,
    };
    let records = match args.projection {
        Projection::Disk => RecordsIn::Disk,
        Projection::Memory => RecordsIn::Memory,
    };
    let witnessing = args.witnessing.options()?;
    let opening = || format!("opening the log in {}", args.data.display());
    let placement = super::backends::Placement {
        store: args.store.clone(),
        coordinator: args.coordinator.clone(),
        accept_overwriting_store: args.accept_overwriting_store,
        lease: Duration::from_millis(args.lease_ms.max(100)),
    };
    let backends = super::backends::open(&args.data, records, &placement)?;
    let (log, report) = Log::open_with(backends, options).context(opening)?;
    let log = Arc::new(log);
    let blob_store = args.blobs.open(&args.data)?;
    let blobs = Some(blob_store.clone());

    let rt = runtime()?;
    rt.block_on(async {
        let (listener, local) = bind(args.listen).await?;
        if report.created {
            println!("created a new log in {}", args.data.display());
        }
        if let Some(path) = &report.generated_admin_key {
            println!(
                "admin key: {} (keep it secret; its verifier key is beside it in admin.vkey)",
                path.display()
            );
        }
        if let Some(promoted) = report.pending_checkpoint {
            println!(
                "recovery: an interrupted checkpoint was {}",
                if promoted { "completed" } else { "discarded" }
            );
        }
        for refused in &report.snapshots_refused {
            println!("refused a catalog snapshot: {refused}");
        }
        match report.snapshot {
            Some(size) => println!(
                "start-up: catalog restored from the snapshot at size {size}, replayed {} entries",
                report.replayed
            ),
            None => println!("start-up: replayed {} entries", report.replayed),
        }
        println!("origin: {}", log.origin());
        println!("log verifier key: {}", log.verifier().to_vkey());
        println!("tree size: {}", log.head().checkpoint.size);
        let witnessing = match witnessing {
            Some(options) => Some(super::witnessing::start(log.clone(), options)?),
            None => None,
        };
        tokio::spawn(args.blobs.sweeper(log.clone(), blob_store));
        let state = crate::api::AppState {
            log: log.clone(),
            blobs,
            witnessing,
        };
        let limits = args.connections.limits();
        let mut ops = args.operations(metrics);
        if let Some(addr) = args.metrics_listen {
            let (listener, local) = bind(addr).await?;
            println!("metrics on http://{local}/metrics");
            let app = crate::api::metrics::metrics_router(state.clone(), ops.clone());
            let limits = limits.clone();
            tokio::spawn(async move {
                let app = crate::http::server::with_request_limits(app, &limits);
                let served = crate::http::server::serve(app, listener, &limits, shutdown_signal());
                if let Err(e) = served.await {
                    tracing::error!(error = %e, "the metrics listener stopped");
                }
            });
            ops.metrics = None;
        }
        crate::telemetry::head_committed(log.head().checkpoint.size);
        metrics::gauge!(crate::telemetry::names::STARTUP).set(started.elapsed().as_secs_f64());
        tokio::spawn(crate::telemetry::upkeep());
        println!("listening on http://{local}");
        crate::api::serve_operated(state, ops, listener, &limits, shutdown_signal())
            .await
            .context(|| "serving HTTP".into())
    })?;
    log.shutdown();
    tracing::info!("stopped");
    Ok(())
}

impl ServeArgs {
    /// The operational endpoints' settings.
    fn operations(
        &self,
        metrics: metrics_exporter_prometheus::PrometheusHandle,
    ) -> crate::api::Operations {
        crate::api::Operations {
            data_dir: Some(self.data.clone()),
            reserve_bytes: self.blobs.blob_reserve_bytes,
            metrics: Some(metrics),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The evidence blob store's flags (`log-format/blobs.md`).
// ---------------------------------------------------------------------------------------

/// Limits, reserve and expiry of the evidence blob store.
#[derive(Debug, Args)]
pub struct BlobArgs {
    /// Largest evidence blob accepted by PUT /v1/blobs, in bytes.
    #[arg(long, default_value_t = crate::storage::blobs::DEFAULT_MAX_BLOB_BYTES)]
    max_blob_bytes: u64,
    /// Most bytes of blobs held for one uploading key (429 beyond).
    #[arg(long, default_value_t = crate::storage::blobs::quota::DEFAULT_KEY_QUOTA_BYTES)]
    blob_key_quota_bytes: u64,
    /// Most bytes of blobs held in total (507 beyond).
    #[arg(long, default_value_t = crate::storage::blobs::quota::DEFAULT_TOTAL_QUOTA_BYTES)]
    blob_total_quota_bytes: u64,
    /// Free bytes the data volume keeps for the log: uploads that would leave less are
    /// refused with 507.
    #[arg(long, default_value_t = crate::storage::blobs::quota::DEFAULT_RESERVE_BYTES)]
    blob_reserve_bytes: u64,
    /// Seconds an unreferenced blob (named by no logged publication) is kept.
    #[arg(long, default_value_t = crate::storage::blobs::expiry::DEFAULT_BLOB_TTL.as_secs())]
    blob_ttl_secs: u64,
    /// Seconds between expiry sweeps (default: a tenth of the TTL, at most an hour).
    #[arg(long)]
    blob_sweep_secs: Option<u64>,
    /// Most blob downloads served at once (503 with Retry-After beyond).
    #[arg(long, default_value_t = crate::storage::blobs::quota::DEFAULT_MAX_DOWNLOADS)]
    max_blob_downloads: usize,
}

impl BlobArgs {
    /// Opens `DATA/blobs` with these limits.
    fn open(
        &self,
        data: &std::path::Path,
    ) -> Result<Arc<crate::storage::blobs::BlobStore>, CliError> {
        let limits = crate::storage::blobs::quota::Limits {
            max_blob_bytes: self.max_blob_bytes,
            key_quota_bytes: self.blob_key_quota_bytes,
            total_quota_bytes: self.blob_total_quota_bytes,
            reserve_bytes: self.blob_reserve_bytes,
            max_downloads: self.max_blob_downloads,
        };
        let store = crate::storage::blobs::BlobStore::open_with(&data.join("blobs"), limits)
            .context(|| format!("opening {}/blobs", data.display()))?;
        Ok(Arc::new(store))
    }

    /// The expiry sweeper for `store`.
    fn sweeper(
        &self,
        log: Arc<Log>,
        store: Arc<crate::storage::blobs::BlobStore>,
    ) -> impl std::future::Future<Output = ()> {
        let ttl = Duration::from_secs(self.blob_ttl_secs);
        let every = self
            .blob_sweep_secs
            .map(Duration::from_secs)
            .unwrap_or_else(|| (ttl / 10).min(Duration::from_secs(3600)));
        crate::log::blob_expiry::run_sweeper(log, store, ttl, every)
    }
}

/// Binds `addr`; returns the listener and the address actually bound (for port 0).
pub(super) async fn bind(
    addr: SocketAddr,
) -> Result<(tokio::net::TcpListener, SocketAddr), CliError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .context(|| format!("listening on {addr}"))?;
    let local = listener
        .local_addr()
        .context(|| "reading the bound address".into())?;
    Ok((listener, local))
}

pub(super) async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
        }
        _ => std::future::pending::<()>().await,
    }
    tracing::info!("shutting down: finishing requests in flight");
}
