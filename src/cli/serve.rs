//! `srcos-catalog serve`: chooses the storage backends (the POSIX data directory, or an
//! S3 bucket coordinated by PostgreSQL: `backends`; the records on disk or in memory), opens the log on them, and serves it over HTTP, with
//! the operational endpoints (`/healthz`, `/readyz`, `/metrics`, on `--metrics-listen`
//! when given) and the flags from `--config FILE.toml` (see `config`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, CommandFactory as _, FromArgMatches as _};

use super::backends::{FrontendParts, Opened};
use super::{default_data_dir, runtime, CliError, Context};
use crate::api::forward::{ForwardLimits, Forwarder};
use crate::api::frontend::{Frontend, Switch};
use crate::catalog::Catalog;
use crate::keyfile::read_verifier;
use crate::log::follower::Follower;
use crate::log::projection::{Projection as FollowedCatalog, Snapshots};
use crate::log::snapshot::SnapshotCheck;
use crate::log::{Log, LogOptions, OpenReport};
use crate::note::Verifier;
use crate::storage::records::DiskRecordStore;
use crate::storage::{CheckpointLock, RecordsIn, TileStore};

/// Where in the data directory a frontend keeps its catalog projection's records (not
/// `projection/`, which the log opens on a takeover while this one may still be open).
const FRONTEND_PROJECTION: &str = "frontend-projection";

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
    /// Write a snapshot of the catalog (DATA/snapshot/) every this many entries and at
    /// shutdown, so start-up replays only the entries after it: a delta of what changed,
    /// or a whole one every quarter of the log or 32 deltas; 0: never (ADR 0008, 0019).
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
    /// config file). A `serve` on the same store that finds the lease held listens at
    /// once as a frontend (reads from the bucket, writes forwarded to the holder) and
    /// becomes the sequencer when the lease is free (ADR 0004).
    #[arg(long, value_name = "postgres://…")]
    coordinator: Option<String>,
    /// The URL other `serve` processes reach this one at (`http://HOST:PORT`), recorded
    /// with the lease while this process holds it, so that frontends forward writes
    /// here. Default: `http://` + the bound address, unless it is a wildcard address.
    #[arg(long, value_name = "URL")]
    advertise: Option<String>,
    /// A frontend's poll of the coordinator for the head and the lease holder, in
    /// milliseconds.
    #[arg(long, default_value_t = 200)]
    follow_ms: u64,
    /// How long a frontend waits for the sequencer's answer to a forwarded request, in
    /// milliseconds (503 with Retry-After beyond).
    #[arg(long, default_value_t = 30_000)]
    forward_timeout_ms: u64,
    /// Most requests a frontend forwards at once (503 with Retry-After beyond).
    #[arg(long, default_value_t = 256)]
    forward_concurrency: usize,
    /// How long a frontend's receipt waits for its head to cover the entry, in
    /// milliseconds (404 beyond).
    #[arg(long, default_value_t = 5_000)]
    receipt_wait_ms: u64,
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
    /// A slot file and an LSM tree (small memtable and cache) under DATA/projection/.
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

/// Opens the log, serves until SIGTERM/SIGINT, then finishes the batch in flight. On a
/// coordinated log whose lease another process holds, serves as a frontend until it
/// can take the lease (see [`run_frontend`]).
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
    let rt = runtime()?;
    // Bound first: the address is what the lease advertises.
    let (listener, local) = rt.block_on(bind(args.listen))?;
    let advertise = args
        .advertise
        .clone()
        .or_else(|| (!local.ip().is_unspecified()).then(|| format!("http://{local}")));
    let placement = super::backends::Placement {
        store: args.store.clone(),
        coordinator: args.coordinator.clone(),
        accept_overwriting_store: args.accept_overwriting_store,
        lease: Duration::from_millis(args.lease_ms.max(100)),
        advertise: advertise.clone(),
    };
    let backends = match super::backends::open_or_follow(&args.data, records, &placement)? {
        Opened::Sequencer(backends) => backends,
        Opened::Frontend(parts) => {
            let serving = Serving {
                listener,
                local,
                advertise,
                started,
                metrics,
            };
            return run_frontend(&args, &rt, serving, parts, options);
        }
    };
    let opening = || format!("opening the log in {}", args.data.display());
    let tiles = backends.log.tiles.clone();
    let (log, report) = Log::open_with(backends, options).context(opening)?;
    let log = Arc::new(log);
    rt.block_on(async {
        let limits = args.connections.limits();
        let app = sequencer_router(&args, &log, &report, &tiles, metrics)?;
        crate::telemetry::head_committed(log.head().checkpoint.size);
        metrics::gauge!(crate::telemetry::names::STARTUP).set(started.elapsed().as_secs_f64());
        tokio::spawn(crate::telemetry::upkeep());
        println!("listening on http://{local}");
        let app = crate::http::server::with_request_limits(app, &limits);
        crate::http::server::serve(app, listener, &limits, shutdown_signal())
            .await
            .context(|| "serving HTTP".into())
    })?;
    log.shutdown();
    tracing::info!("stopped");
    Ok(())
}

/// The listener and what was set up before the role was known.
struct Serving {
    listener: tokio::net::TcpListener,
    local: SocketAddr,
    advertise: Option<String>,
    started: std::time::Instant,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
}

/// The sequencer's side of an open log, inside the runtime: prints the start-up report,
/// brings the bucket's checkpoint copy up to date, starts witnessing, the blob sweeper
/// and the metrics listener; returns the API router.
fn sequencer_router(
    args: &ServeArgs,
    log: &Arc<Log>,
    report: &OpenReport,
    tiles: &Arc<dyn TileStore>,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
) -> Result<axum::Router, CliError> {
    // The store's served copy of the checkpoint (a bucket's) is written after each swap;
    // a crash in between leaves it a batch behind, so bring it up to date now rather
    // than at the next commit (an idle log may have none for a long time).
    let head = log.head();
    if let Err(e) = tiles.publish_checkpoint(&head.signed, head.checkpoint.size) {
        tracing::warn!(error = %e, "publishing the checkpoint copy at start");
    }
    let blob_store = args.blobs.open(&args.data, args.store.as_deref())?;
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
            "start-up: catalog restored from the snapshot at size {size} ({} deltas), replayed {} entries",
            report.deltas, report.replayed
        ),
        None => println!("start-up: replayed {} entries", report.replayed),
    }
    println!("origin: {}", log.origin());
    println!("log verifier key: {}", log.verifier().to_vkey());
    println!("tree size: {}", head.checkpoint.size);
    let witnessing = match args.witnessing.options()? {
        Some(options) => Some(super::witnessing::start(log.clone(), options)?),
        None => None,
    };
    tokio::spawn(args.blobs.sweeper(log.clone(), blob_store.clone()));
    let state = crate::api::AppState {
        log: log.clone(),
        blobs: Some(blob_store),
        witnessing,
    };
    let mut ops = args.operations(metrics);
    if let Some(addr) = args.metrics_listen {
        let listener = std::net::TcpListener::bind(addr)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .and_then(tokio::net::TcpListener::from_std)
            .context(|| format!("listening on {addr}"))?;
        let local = listener
            .local_addr()
            .context(|| "reading the bound address".into())?;
        println!("metrics on http://{local}/metrics");
        let app = crate::api::metrics::metrics_router(state.clone(), ops.clone());
        let limits = args.connections.limits();
        tokio::spawn(async move {
            let app = crate::http::server::with_request_limits(app, &limits);
            let served = crate::http::server::serve(app, listener, &limits, shutdown_signal());
            if let Err(e) = served.await {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        });
        ops.metrics = None;
    }
    Ok(crate::api::operated_router(state, ops))
}

/// The witnesses' cosignature keys (none without `--witness`): a frontend serves the
/// holder's cosignatures only when they verify with these.
fn witness_keys(args: &ServeArgs) -> Result<Vec<Verifier>, CliError> {
    let options = args.witnessing.options()?;
    Ok(options.map_or_else(Vec::new, |o| {
        o.witnesses.into_iter().map(|w| w.key).collect()
    }))
}

/// The frontend's own catalog of the log `follower` follows: with `--projection disk`,
/// its records in `DATA/frontend-projection/` (wiped here: like the holder's, it is
/// restored from the newest snapshot in `DATA/snapshot/` and the leaves after it at
/// every start), so that its memory stays flat at any log size. It writes snapshots
/// there as the log would (`--snapshot-every`), for its next start and for the log this
/// process opens if it takes the lease.
fn frontend_projection(
    args: &ServeArgs,
    follower: Arc<Follower>,
    options: &LogOptions,
) -> Result<Arc<FollowedCatalog>, CliError> {
    let catalog = match args.projection {
        Projection::Memory => Catalog::new(),
        Projection::Disk => {
            let dir = args.data.join(FRONTEND_PROJECTION);
            let store = DiskRecordStore::open_fresh(&dir)
                .context(|| format!("opening the frontend's record store in {}", dir.display()))?;
            Catalog::with_store(Box::new(store))
        }
    };
    let snapshots = Snapshots {
        data_dir: args.data.clone(),
        check: options.snapshot_check,
        every: options.snapshot_every,
    };
    let projection = Arc::new(FollowedCatalog::new(follower, catalog).with_snapshots(snapshots));
    projection
        .start_snapshots()
        .context(|| "starting the frontend's snapshot thread".into())?;
    Ok(projection)
}

/// A frontend (ADR 0004): listens at once, answers reads from a follower of the bucket
/// and the coordinator's checkpoint, forwards writes to the lease holder, and waits on a
/// thread of its own for the lease. Once it has it, the log is opened as at any start
/// (recovery finishes the dead holder's staged batch) and the same listener serves the
/// sequencer's router from then on. A frontend never signs a checkpoint or writes a
/// tile: its follower has no signer and its view of the coordinator is read-only.
fn run_frontend(
    args: &ServeArgs,
    rt: &tokio::runtime::Runtime,
    serving: Serving,
    parts: FrontendParts,
    options: LogOptions,
) -> Result<(), CliError> {
    let vkey = args.data.join("log.vkey");
    let verifier = read_verifier(&vkey).context(|| {
        format!(
            "a frontend verifies the log's checkpoints with {} (copy log.vkey, and log.key \
             for it to take over, from the sequencer's data directory)",
            vkey.display()
        )
    })?;
    let lock: Arc<dyn CheckpointLock> = parts.observer.clone();
    let follower = Arc::new(Follower::new(verifier, parts.tiles.clone(), lock));
    let limits = ForwardLimits {
        timeout: Duration::from_millis(args.forward_timeout_ms.max(1)),
        concurrency: args.forward_concurrency,
    };
    let forwarder = Arc::new(Forwarder::new(serving.advertise.clone(), &limits));
    // Evidence downloads are served from the bucket here; uploads still go to the
    // holder, which keeps the quotas (ADR 0012).
    let blobs = args.blobs.open(&args.data, args.store.as_deref())?;
    let projection = frontend_projection(args, follower.clone(), &options)?;
    let handing_over = projection.clone();
    let frontend = Frontend::new(
        follower,
        forwarder,
        Duration::from_millis(args.receipt_wait_ms),
        usize::try_from(args.blobs.max_blob_bytes).unwrap_or(usize::MAX),
    )
    .with_blobs(blobs)
    .with_witnesses(witness_keys(args)?)
    .with_projection(projection);
    let observer = parts.observer.clone();
    let holder: Arc<dyn Fn() -> Option<String> + Send + Sync> =
        Arc::new(move || match observer.holder() {
            Ok(holder) => holder.filter(|h| h.live).and_then(|h| h.advertised),
            Err(e) => {
                tracing::warn!(error = %e, "reading the lease holder");
                None
            }
        });
    let sequencing: Arc<std::sync::Mutex<Option<Arc<Log>>>> = Arc::default();
    let Serving {
        listener,
        local,
        advertise,
        started,
        metrics,
    } = serving;
    let served = rt.block_on(async {
        let limits = args.connections.limits();
        frontend.refresh().await;
        frontend.forwarder.set_holder(holder().as_deref());
        let ops = args.operations(metrics.clone());
        let switch = Switch::new(crate::api::frontend::router(frontend.clone(), ops));
        let (stop_following, following_stopped) = tokio::sync::oneshot::channel::<()>();
        let every = Duration::from_millis(args.follow_ms.max(10));
        tokio::spawn(crate::api::frontend::follow(
            frontend.clone(),
            every,
            holder,
            async move {
                let _ = following_stopped.await;
            },
        ));
        tokio::spawn(crate::telemetry::upkeep());
        metrics::gauge!(crate::telemetry::names::STARTUP).set(started.elapsed().as_secs_f64());
        match &advertise {
            Some(url) => {
                println!("frontend: advertising {url} for when this server holds the lease")
            }
            None => println!(
                "frontend: no --advertise URL; frontends cannot forward here after a takeover"
            ),
        }
        println!(
            "frontend: tree size {}",
            frontend.follower.head().map_or(0, |h| h.checkpoint.size)
        );
        println!("frontend listening on http://{local}");

        // The takeover: waits for the lease on a plain thread (the runtime would wait
        // for a blocking task at exit), then opens the log and switches the router.
        let (opened_tx, opened) = tokio::sync::oneshot::channel();
        let take_over = parts.take_over;
        std::thread::spawn(move || {
            let opened = take_over().and_then(|backends| {
                tracing::info!("took the sequencer lease: opening the log");
                // The log opens the snapshots the projection wrote: none is half
                // written by it from here on.
                handing_over.stop_snapshots();
                let tiles = backends.log.tiles.clone();
                Log::open_with(backends, options)
                    .map(|(log, report)| (log, report, tiles))
                    .context(|| "opening the log".into())
            });
            let _ = opened_tx.send(opened);
        });
        let (failed, failure) = tokio::sync::oneshot::channel::<()>();
        let takeover_error = std::sync::Mutex::new(None::<CliError>);
        let takeover_error = &takeover_error;
        let takeover = async {
            let outcome = match opened.await {
                Ok(Ok((log, report, tiles))) => {
                    let _ = stop_following.send(());
                    let log = Arc::new(log);
                    *sequencing.lock().unwrap_or_else(|p| p.into_inner()) = Some(log.clone());
                    sequencer_router(args, &log, &report, &tiles, metrics.clone()).map(|app| {
                        crate::telemetry::head_committed(log.head().checkpoint.size);
                        switch.set(app);
                        println!("listening on http://{local}");
                    })
                }
                Ok(Err(e)) => Err(e),
                Err(_) => Err(CliError("the takeover thread stopped".into())),
            };
            if let Err(e) = outcome {
                tracing::error!(error = %e.0, "taking over as the sequencer");
                *takeover_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                let _ = failed.send(());
            }
        };
        let shutdown = async move {
            tokio::select! {
                _ = shutdown_signal() => {}
                failed = failure => {
                    // A takeover that succeeded drops the sender: serve on.
                    if failed.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
            }
        };
        let app = crate::http::server::with_request_limits(switch.router(), &limits);
        let serve = crate::http::server::serve(app, listener, &limits, shutdown);
        tokio::pin!(serve);
        let served = tokio::select! {
            served = &mut serve => served,
            () = takeover => serve.await,
        };
        served.context(|| "serving HTTP".into())?;
        let error = takeover_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        error.map_or(Ok(()), Err)
    });
    let log = sequencing.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(log) = log {
        log.shutdown();
    }
    tracing::info!("stopped");
    served
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
    /// With --store s3://…: most bytes of blobs kept in the local read cache
    /// (DATA/blobs); the least recently used are removed beyond it.
    #[arg(long, default_value_t = crate::storage::blobs::object::DEFAULT_CACHE_BYTES)]
    blob_cache_bytes: u64,
}

impl BlobArgs {
    /// Opens the blob store with these limits: `DATA/blobs`, or with `store`
    /// (`--store s3://…`) the bucket, cached in `DATA/blobs` (ADR 0012).
    fn open(
        &self,
        data: &std::path::Path,
        store: Option<&str>,
    ) -> Result<Arc<crate::storage::blobs::BlobStore>, CliError> {
        use crate::storage::blobs::{object::ObjectBlobs, BlobStore};
        let limits = crate::storage::blobs::quota::Limits {
            max_blob_bytes: self.max_blob_bytes,
            key_quota_bytes: self.blob_key_quota_bytes,
            total_quota_bytes: self.blob_total_quota_bytes,
            reserve_bytes: self.blob_reserve_bytes,
            max_downloads: self.max_blob_downloads,
        };
        let root = data.join("blobs");
        let opening = || format!("opening the blob store ({}/blobs)", data.display());
        let store = match store {
            None => BlobStore::open_with(&root, limits).context(opening)?,
            Some(url) => {
                let url =
                    crate::storage::object::StoreUrl::parse(url).context(|| "--store".into())?;
                let config = crate::storage::object::ObjectStoreConfig::from_env();
                let backend = ObjectBlobs::open(
                    &url,
                    &config,
                    &root,
                    limits.max_blob_bytes,
                    limits.reserve_bytes,
                )
                .context(opening)?
                .with_cache_limit(self.blob_cache_bytes);
                BlobStore::with_backend(&root, Box::new(backend), limits).context(opening)?
            }
        };
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
