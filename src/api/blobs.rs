//! `PUT /v1/blobs/sha256:<hex>` and `GET /v1/blobs/sha256:<hex>`: the evidence store.
//!
//! PUT streams the body to a temporary file while hashing it, so a blob of the full limit
//! never sits in memory; 201 when new, 200 when already held, 413 over the limit, 422 when
//! the body's digest differs from the one in the path.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde::Serialize;

use super::{AppState, Problem};
use crate::storage::blobs::{BlobError, BlobStore};

fn store(app: &AppState) -> Result<&BlobStore, Problem> {
    app.blobs
        .as_deref()
        .ok_or_else(|| Problem::not_found("this server keeps no evidence blobs"))
}

fn digest(path: &str) -> Result<&str, Problem> {
    let hex = path.strip_prefix("sha256:").ok_or_else(|| {
        Problem::not_found(format!("blobs are addressed as sha256:<hex>, not {path:?}"))
    })?;
    crate::catalog::check_sha256(hex).map_err(|m| Problem::bad_request(format!("digest {m}")))?;
    Ok(hex)
}

#[derive(Serialize)]
struct Stored {
    digest: String,
    size: u64,
}

/// `PUT /v1/blobs/sha256:<hex>`.
pub async fn put(
    State(app): State<AppState>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match put_inner(&app, &path, &headers, body).await {
        Ok(response) => response,
        Err(problem) => problem.into_response(),
    }
}

async fn put_inner(
    app: &AppState,
    path: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let store = store(app)?;
    let hex = digest(path)?;
    let too_large = |max: u64| Problem::too_large(format!("blobs are limited to {max} bytes"));
    if crate::http::declared_length(headers)?.is_some_and(|n| n > store.max_bytes()) {
        return Err(too_large(store.max_bytes()));
    }
    let mut writer = store.writer(hex).map_err(blob_problem)?;
    let mut body = body;
    let mut size = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Problem::bad_request(format!("reading the body: {e}")))?;
        if let Ok(chunk) = frame.into_data() {
            size += chunk.len() as u64;
            writer.write(&chunk).map_err(blob_problem)?;
        }
    }
    // The fsync and rename happen off the async workers.
    let created = crate::log::intake::blocking(|| writer.finish()).map_err(blob_problem)?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = serde_json::to_string(&Stored {
        digest: format!("sha256:{hex}"),
        size,
    })
    .unwrap_or_default();
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

fn blob_problem(e: BlobError) -> Problem {
    match e {
        BlobError::TooLarge { max } => {
            Problem::too_large(format!("blobs are limited to {max} bytes"))
        }
        BlobError::DigestMismatch { .. } => Problem::invalid(vec![format!("digest mismatch: {e}")]),
        BlobError::BadDigest(m) => Problem::bad_request(m),
        BlobError::Storage(e) => Problem::internal(e.to_string()),
    }
}

/// `GET /v1/blobs/sha256:<hex>`.
pub async fn get(State(app): State<AppState>, Path(path): Path<String>) -> Response {
    let result = (|| {
        let store = store(&app)?;
        let hex = digest(&path)?;
        crate::log::intake::blocking(|| store.get(hex))
            .map_err(|e| Problem::internal(e.to_string()))?
            .ok_or_else(|| Problem::not_found(format!("no blob sha256:{hex}")))
    })();
    match result {
        Ok(bytes) => {
            let mut response = (StatusCode::OK, bytes).into_response();
            let h = response.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            );
            response
        }
        Err(problem) => problem.into_response(),
    }
}
