//! The witness's HTTP endpoints (axum):
//! - `POST /add-checkpoint` (C2SP tlog-witness), answered with cosignature lines, or
//!   409 with a `text/x.tlog.size` body, or a problem+json error with the spec's status;
//! - `GET /<lowercase hex SHA-256(origin)>/checkpoint`: the latest cosigned checkpoint.
//!
//! May import `super` (the witness), `note` (the wire format) and the HTTP plumbing
//! (body limit, problem+json).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::{AddError, Witness};
use crate::http::server::{with_request_limits, ServerLimits};
use crate::http::{read_limited, Problem};
use crate::note::{tlog_size_body, AddCheckpoint, TLOG_SIZE_MEDIA_TYPE};

const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// The witness router.
pub fn router(witness: Arc<Witness>) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .route("/{origin_hash}/checkpoint", get(latest))
        .fallback(|| async { Problem::not_found("no such endpoint").into_response() })
        .with_state(witness)
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
        Ok(cosignature) => text(StatusCode::OK, TEXT_PLAIN, cosignature.to_line()),
        Err(AddError::Conflict { old, latest }) => {
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
