//! The HTTP API (axum): submissions, the C2SP read endpoints, proofs and receipts.
//!
//! Owns the handlers and the router. Handlers do the stateless work (size limit, parsing,
//! signature checks) in parallel, then wait on the log's sequencer for the durable
//! commit; reads go straight to the committed tiles.
//!
//! May import `http` (routes, body limits, [`Problem`]), `log`, `storage`, `catalog` and
//! the pure cores, `telemetry` and `openapi`; never `client` or `cli`. `problem` maps the domain's
//! errors onto [`Problem`]. The operational endpoints: `health` (`/healthz`, `/readyz`)
//! and `metrics` (`/metrics`), and the OpenAPI document with the schemas it cites
//! ([`crate::openapi`]); `browse`, the catalog browser's HTML pages; `frontend` and
//! `forward`, the API of a `serve` that does not hold the sequencer lease (answers from
//! a follower of the tiles, forwards the rest to the holder). Every request is
//! counted by route pattern ([`crate::telemetry::track`]).

mod blobs;
pub mod browse;
mod catalog;
pub mod forward;
pub mod frontend;
pub mod health;
pub mod metrics;
mod problem;
mod read;
mod read_pool;
mod state;
mod submit;
mod witnessed;

use std::sync::Arc;

use axum::routing::{get, post, put};
use axum::{middleware, Extension, Router};
use tower_http::compression::CompressionLayer;

use crate::http::routes;
use crate::http::server::{self as http_server, ServerLimits};
use crate::http::Problem;
use crate::log::witnessing::Witnessing;
use crate::log::Log;
use crate::storage::blobs::BlobStore;
use crate::telemetry::{self, HttpMetrics};
pub use health::Operations;

/// Entry bundles (`/tile/entries/...`), served gzip-compressed to clients that accept it
/// (C2SP tlog-tiles recommends it: bundles compress well, hash tiles do not, so these
/// alone are compressed).
const ENTRY_BUNDLES: &str = "/tile/entries/{*path}";

/// Largest request body accepted (413 above).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The log.
    pub log: Arc<Log>,
    /// The evidence blob store, if this server keeps one.
    pub blobs: Option<Arc<BlobStore>>,
    /// Witness cosigning, when the log has witnesses: `/checkpoint` and receipts then
    /// carry cosigned checkpoints.
    pub witnessing: Option<Arc<Witnessing>>,
}

/// The full router, without an evidence store (blob endpoints answer 404).
pub fn router(log: Arc<Log>) -> Router {
    router_with(log, None)
}

/// The full router; `blobs` enables the evidence store and content checks.
pub fn router_with(log: Arc<Log>, blobs: Option<Arc<BlobStore>>) -> Router {
    app_router(AppState {
        log,
        blobs,
        witnessing: None,
    })
}

/// The full router for a complete [`AppState`] (blobs and witnessing), without the
/// operational extras (no disk check, `/metrics` answers 404).
pub fn app_router(state: AppState) -> Router {
    operated_router(state, Operations::default())
}

/// The full router, with the operational endpoints configured by `ops`.
pub fn operated_router(state: AppState, ops: Operations) -> Router {
    let mut mounted: Vec<&'static str> = routes::SERVE.to_vec();
    mounted.push(ENTRY_BUNDLES);
    Router::new()
        .route(routes::PUBLICATIONS, post(submit::publication))
        .route(routes::GRANTS, post(submit::grant))
        .route(routes::POLICY_SET, post(submit::policy_set))
        .route(routes::REVOCATIONS, post(submit::revoke))
        .route(routes::REVIEWS, post(submit::review))
        .route(routes::PROMOTIONS, post(submit::promotion))
        .route(routes::STATUS_CHANGES, post(submit::status_change))
        .route(routes::BLOB, put(blobs::put).get(blobs::get))
        .route(routes::ENTRIES, get(catalog::entries::<AppState>))
        .route(routes::ENTRY, get(catalog::entry::<AppState>))
        .route(routes::EVIDENCE_BUNDLE, get(catalog::bundle::<AppState>))
        .route(routes::STATE, get(catalog::state::<AppState>))
        .route(routes::POLICY, get(catalog::policy::<AppState>))
        .route(routes::CHECKPOINT, get(read::checkpoint))
        .route(routes::TILE, get(read::tile))
        .route(
            ENTRY_BUNDLES,
            get(read::entry_bundle).layer(CompressionLayer::new().gzip(true)),
        )
        .route(routes::LOG_INFO, get(read::log_info))
        .route(routes::LOG_ENTRY, get(read::entry))
        .route(routes::RECEIPT, get(read::receipt))
        .route(routes::INCLUSION_PROOF, get(read::inclusion))
        .route(routes::CONSISTENCY_PROOF, get(read::consistency))
        .route(routes::STATE_PROOFS, get(state::proofs::<AppState>))
        .route(routes::STATE_HISTORY, get(state::history::<AppState>))
        .route(routes::HEALTHZ, get(health::healthz))
        .route(routes::READYZ, get(health::readyz))
        .route(routes::METRICS, get(metrics::render))
        .route(routes::OPENAPI, get(crate::openapi::serve_document))
        .route(routes::SCHEMAS, get(crate::openapi::schema_file))
        .route(routes::BROWSE_SEARCH, get(browse::search::<AppState>))
        .route(routes::BROWSE_ENTRY, get(browse::entry::<AppState>))
        .route(routes::BROWSE_LOG, get(browse::log))
        .route(routes::BROWSE_STYLE, get(browse::style))
        .fallback(read::fallback)
        .layer(Extension(Arc::new(catalog::ReadWork::default())))
        .layer(Extension(ops))
        .layer(middleware::from_fn_with_state(
            HttpMetrics::new(&mounted),
            telemetry::track,
        ))
        .with_state(state)
}

/// Serves `log` on `listener` until `shutdown` resolves, then lets in-flight requests
/// (and so the batch in flight) finish before returning.
pub async fn serve(
    log: Arc<Log>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(log, None, listener, shutdown).await
}

/// [`serve`] with an evidence blob store.
pub async fn serve_with(
    log: Arc<Log>,
    blobs: Option<Arc<BlobStore>>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = AppState {
        log,
        blobs,
        witnessing: None,
    };
    serve_app(state, listener, shutdown).await
}

/// [`serve`] for a complete [`AppState`] (blobs and witnessing), with the default
/// [`ServerLimits`].
pub async fn serve_app(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_limited(state, listener, &ServerLimits::default(), shutdown).await
}

/// [`serve_app`] under `limits`: timeouts, the connection cap, per-client limits and the
/// shutdown deadline (see [`crate::http::server`]).
pub async fn serve_limited(
    state: AppState,
    listener: tokio::net::TcpListener,
    limits: &ServerLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_operated(state, Operations::default(), listener, limits, shutdown).await
}

/// [`serve_limited`] with the operational endpoints configured by `ops`.
pub async fn serve_operated(
    state: AppState,
    ops: Operations,
    listener: tokio::net::TcpListener,
    limits: &ServerLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = http_server::with_request_limits(operated_router(state, ops), limits);
    http_server::serve(app, listener, limits, shutdown).await
}
