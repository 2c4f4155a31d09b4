//! The HTTP API (axum): submissions, the C2SP read endpoints, proofs and receipts.
//!
//! Only this module knows HTTP. Handlers do the stateless work (size limit, parsing,
//! signature checks) in parallel, then wait on the log's sequencer for the durable
//! commit; reads go straight to the committed tiles.

mod body;
mod problem;
mod read;
mod submit;
mod witnessed;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

use crate::log::witnessing::Witnessing;
use crate::log::Log;
pub use body::read_limited;
pub use problem::{Problem, PROBLEM_JSON};

/// Largest request body accepted (413 above).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The log.
    pub log: Arc<Log>,
    /// Witness cosigning, when the log has witnesses: `/checkpoint` and receipts then
    /// carry cosigned checkpoints.
    pub witnessing: Option<Arc<Witnessing>>,
}

/// The full router for a log without witnesses.
pub fn router(log: Arc<Log>) -> Router {
    app_router(AppState {
        log,
        witnessing: None,
    })
}

/// The full router.
pub fn app_router(state: AppState) -> Router {
    Router::new()
        .route("/v1/publications", post(submit::publication))
        .route("/v1/admin/grants", post(submit::grant))
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
    let state = AppState {
        log,
        witnessing: None,
    };
    serve_app(state, listener, shutdown).await
}

/// [`serve`], with witnessing.
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
