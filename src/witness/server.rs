//! The witness's HTTP endpoints (axum):
//! - `POST /add-checkpoint` (C2SP tlog-witness), answered with cosignature lines, or
//!   409 with a `text/x.tlog.size` body, or a problem+json error with the spec's status;
//! - `GET /<lowercase hex SHA-256(origin)>/checkpoint`: the latest cosigned checkpoint;
//! - `GET /healthz`, `GET /metrics` (when the recorder is installed) and
//!   `GET /openapi.json` (with `GET /schemas/{*path}`, the schemas it cites). Requests are counted by route pattern, add-checkpoint answers
//!   by outcome.
//!
//! May import `super` (the witness), `note` (the wire format), the HTTP plumbing (body
//! limit, problem+json, the route table), `telemetry` and `openapi`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Router};

use super::{AddError, Witness};
use crate::http::server::{with_request_limits, ServerLimits};
use crate::http::{read_limited, routes, Problem};
use crate::note::{tlog_size_body, AddCheckpoint, TLOG_SIZE_MEDIA_TYPE};
use crate::telemetry::{self, names, Counters, HttpMetrics};

const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// Add-checkpoint answers by outcome (the problem slugs of [`refusal`]).
static OUTCOMES: Counters<9> = Counters::new(
    names::WITNESS_REQUESTS,
    ("server", "witness"),
    "outcome",
    [
        "cosigned",
        "stale-old-size",
        "too-large",
        "malformed",
        "unknown-origin",
        "bad-log-signature",
        "inconsistent",
        "internal",
        "other",
    ],
);

/// The witness router.
pub fn router(witness: Arc<Witness>) -> Router {
    Router::new()
        .route(routes::WITNESS_ADD_CHECKPOINT, post(add_checkpoint))
        .route(routes::WITNESS_CHECKPOINT, get(latest))
        .route(routes::HEALTHZ, get(healthz))
        .route(routes::METRICS, get(metrics))
        .route(routes::OPENAPI, get(crate::openapi::witness_document))
        .route(routes::SCHEMAS, get(crate::openapi::schema_file))
        .fallback(|| async { Problem::not_found("no such endpoint").into_response() })
        .layer(middleware::from_fn_with_state(
            HttpMetrics::new(&routes::WITNESS),
            telemetry::track,
        ))
        .with_state(witness)
}

/// `GET /healthz`: 200 while the process answers.
async fn healthz() -> Response {
    text(
        StatusCode::OK,
        "application/json",
        "{\"status\":\"alive\"}\n".to_string(),
    )
}

/// `GET /metrics`: the Prometheus exposition, with each followed log's latest cosigned
/// size read at scrape time; 404 when no recorder is installed.
async fn metrics(State(witness): State<Arc<Witness>>) -> Response {
    let Some(handle) = telemetry::handle() else {
        return Problem::not_found("metrics are not enabled").into_response();
    };
    for (origin, size) in witness.followed().await {
        metrics::gauge!(names::WITNESS_LATEST, "origin" => origin).set(size as f64);
    }
    text(StatusCode::OK, telemetry::PROMETHEUS_TEXT, handle.render())
}

/// Serves the witness on `listener` until `shutdown` resolves, with the default
/// [`ServerLimits`]; requests in flight (and so their durable writes) finish first.
pub async fn serve(
    witness: Arc<Witness>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_limited(witness, listener, &ServerLimits::default(), shutdown).await
}

/// [`serve`] under `limits`: timeouts, the connection cap, per-client limits and the
/// shutdown deadline (see [`crate::http::server`]).
pub async fn serve_limited(
    witness: Arc<Witness>,
    listener: tokio::net::TcpListener,
    limits: &ServerLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = with_request_limits(router(witness), limits);
    crate::http::server::serve(app, listener, limits, shutdown).await
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

async fn add_checkpoint(
    State(witness): State<Arc<Witness>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let bytes = match read_limited(&headers, body, AddCheckpoint::MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(problem) => return problem.into_response(),
    };
    match witness.add_checkpoint(&bytes).await {
        Ok(cosignature) => {
            OUTCOMES.increment("cosigned");
            text(StatusCode::OK, TEXT_PLAIN, cosignature.to_line())
        }
        Err(AddError::Conflict { old, latest }) => {
            OUTCOMES.increment("stale-old-size");
            tracing::info!(old, latest, "add-checkpoint: stale old size");
            text(
                StatusCode::CONFLICT,
                TLOG_SIZE_MEDIA_TYPE,
                tlog_size_body(latest),
            )
        }
        Err(e) => {
            // Refusals of validly signed checkpoints are evidence of a misbehaving log;
            // the spec allows logging them (the note itself is public data).
            if let AddError::Inconsistent(_) = e {
                tracing::warn!(error = %e, "refused an inconsistent checkpoint");
            }
            refusal(e).into_response()
        }
    }
}

fn refusal(e: AddError) -> Problem {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (slug, title) = match e {
        AddError::TooLarge(_) => ("too-large", "Request too large"),
        AddError::Malformed(_) => ("malformed", "Malformed request"),
        AddError::UnknownOrigin(_) => ("unknown-origin", "Unknown log"),
        AddError::Forbidden(_) => ("bad-log-signature", "Not signed by the log"),
        AddError::Conflict { .. } => ("stale-old-size", "Old size is not the latest"),
        AddError::Inconsistent(_) => ("inconsistent", "Inconsistent checkpoint"),
        AddError::Storage(_) | AddError::Internal(_) => ("internal", "Internal error"),
    };
    OUTCOMES.increment(slug);
    Problem::new(status, slug, title, e.to_string())
}

async fn latest(State(witness): State<Arc<Witness>>, Path(hash): Path<String>) -> Response {
    match witness.latest(&hash).await {
        Some(note) => {
            let mut response = text(
                StatusCode::OK,
                TEXT_PLAIN,
                String::from_utf8_lossy(&note).into_owned(),
            );
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
        None => Problem::not_found(format!(
            "{hash:?} is not the hex SHA-256 of a followed origin with a cosigned checkpoint"
        ))
        .into_response(),
    }
}
