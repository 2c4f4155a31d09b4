//! `GET /metrics`: the Prometheus text exposition of the process's recorder, after the
//! gauges read at scrape time are refreshed (checkpoint age, log writability, witness
//! quorum, blob store usage, free disk). Counters and histograms are recorded where
//! things happen (see [`crate::telemetry`]).
//!
//! With `serve --metrics-listen ADDR`, [`metrics_router`] serves `/metrics`, `/healthz`
//! and `/readyz` on that address alone, and the API listener answers `/metrics` with 404.
//!
//! May import `super` (the app state, [`Operations`]) and `telemetry`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};

use super::health::{self, Operations};
use super::{AppState, Problem};
use crate::http::routes;
use crate::log::witnessing::Witnessing;
use crate::telemetry::{self, names};

/// How long a blob count is reused before the store is listed again.
const BLOB_RECOUNT: Duration = Duration::from_secs(60);

/// The last blob count and when it was taken.
static BLOB_COUNT: Mutex<Option<(Instant, u64)>> = Mutex::new(None);

/// `GET /metrics`.
pub async fn render(
    State(app): State<AppState>,
    Extension(ops): Extension<Operations>,
) -> Response {
    let Some(handle) = &ops.metrics else {
        return Problem::not_found("metrics are not served on this listener").into_response();
    };
    observe(&app, &ops).await;
    super::read::with_headers(
        StatusCode::OK,
        telemetry::PROMETHEUS_TEXT,
        "no-store",
        handle.render(),
    )
}

/// The router of a separate metrics listener: `/metrics`, `/healthz`, `/readyz`.
pub fn metrics_router(state: AppState, ops: Operations) -> Router {
    Router::new()
        .route(routes::METRICS, get(render))
        .route(routes::HEALTHZ, get(health::healthz))
        .route(routes::READYZ, get(health::readyz))
        .fallback(super::read::fallback)
        .layer(Extension(ops))
        .with_state(state)
}

/// Sets the gauges that are read rather than recorded.
async fn observe(app: &AppState, ops: &Operations) {
    let head = app.log.head();
    metrics::gauge!(names::TREE_SIZE).set(head.checkpoint.size as f64);
    if let Some(age) = telemetry::checkpoint_age() {
        metrics::gauge!(names::CHECKPOINT_AGE).set(age);
    }
    metrics::gauge!(names::WRITABLE).set(if app.log.has_failed() { 0.0 } else { 1.0 });
    if let Some(witnessing) = &app.witnessing {
        observe_witnessing(witnessing, head.checkpoint.size);
    }
    if let Some(dir) = &ops.data_dir {
        if let Some(free) = crate::storage::blobs::quota::free_bytes(dir) {
            metrics::gauge!(names::DISK_FREE).set(free as f64);
        }
        metrics::gauge!(names::DISK_RESERVE).set(ops.reserve_bytes as f64);
    }
    if let Some(blobs) = &app.blobs {
        metrics::gauge!(names::BLOB_BYTES).set(blobs.usage().total() as f64);
        if let Some(count) = blob_count(blobs.clone()).await {
            metrics::gauge!(names::BLOB_COUNT).set(count as f64);
        }
    }
}

fn observe_witnessing(witnessing: &Witnessing, head_size: u64) {
    let quorum = witnessing.options().quorum;
    let snapshot = witnessing.snapshot();
    let cosigners = snapshot.newest.as_ref().map_or(0, |w| w.cosigners.len());
    metrics::gauge!(names::QUORUM).set(quorum as f64);
    metrics::gauge!(names::COSIGNERS).set(cosigners as f64);
    let met = health::quorum_met(witnessing, head_size);
    metrics::gauge!(names::QUORUM_MET).set(if met { 1.0 } else { 0.0 });
    let quorum_size = snapshot.quorum.as_ref().map_or(0, |w| w.checkpoint.size);
    metrics::gauge!(names::QUORUM_SIZE).set(quorum_size as f64);
}

/// The number of blobs held: listed at most once per [`BLOB_RECOUNT`], off the async
/// workers (an unauthenticated scrape must not make the server list a directory each time).
async fn blob_count(blobs: std::sync::Arc<crate::storage::blobs::BlobStore>) -> Option<u64> {
    let cached = *BLOB_COUNT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((at, count)) = cached {
        if at.elapsed() < BLOB_RECOUNT {
            return Some(count);
        }
    }
    let counted = tokio::task::spawn_blocking(move || blobs.held().map(|held| held.len() as u64))
        .await
        .ok()?
        .ok()?;
    *BLOB_COUNT.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), counted));
    Some(counted)
}
