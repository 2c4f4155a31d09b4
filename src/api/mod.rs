//! The HTTP API (axum): submissions, the C2SP read endpoints, proofs and receipts.
//!
//! Only this module knows HTTP. Handlers do the stateless work (size limit, parsing,
//! signature checks) in parallel, then wait on the log's sequencer for the durable
//! commit; reads go straight to the committed tiles.

mod blobs;
mod body;
mod catalog;
mod problem;
mod read;
mod submit;
mod witnessed;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::{get, post, put};
use axum::Router;

use crate::log::witnessing::Witnessing;
use crate::log::Log;
use crate::storage::blobs::BlobStore;
pub use body::read_limited;
pub use problem::{Problem, PROBLEM_JSON};

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

/// The full router for a complete [`AppState`] (blobs and witnessing).
pub fn app_router(state: AppState) -> Router {
    Router::new()
        .route("/v1/publications", post(submit::publication))
        .route("/v1/admin/grants", post(submit::grant))
        .route("/v1/admin/policy", post(submit::policy_set))
        .route("/v1/admin/revocations", post(submit::revoke))
        .route("/v1/reviews", post(submit::review))
        .route("/v1/promotions", post(submit::promotion))
        .route("/v1/status-changes", post(submit::status_change))
        .route("/v1/blobs/{digest}", put(blobs::put).get(blobs::get))
        .route("/v1/catalog/entries", get(catalog::entries))
        .route("/v1/catalog/entries/{id}", get(catalog::entry))
        .route("/v1/catalog/evidence-bundles/{id}", get(catalog::bundle))
        .route("/v1/catalog/state", get(catalog::state))
        .route("/v1/policy", get(catalog::policy))
        .route("/checkpoint", get(read::checkpoint))
        .route("/tile/{*path}", get(read::tile))
        .route("/v1/log", get(read::log_info))
        .route("/v1/entries/{index}", get(read::entry))
        .route("/v1/receipts/{index}", get(read::receipt))
        .route("/v1/proofs/inclusion", get(read::inclusion))
        .route("/v1/proofs/consistency", get(read::consistency))
        .fallback(read::fallback)
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

/// [`serve`] for a complete [`AppState`] (blobs and witnessing).
pub async fn serve_app(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app_router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
