//! `PUT /v1/blobs/sha256:<hex>` and `GET /v1/blobs/sha256:<hex>`: the evidence store.
//!
//! PUT needs a signed upload intent (`Blob-Intent` header, `log-format/blobs.md`) by a
//! key that holds a publisher grant (or an admin), checked before a byte of the body is
//! read. It then streams the body to a temporary file while hashing it, so a blob of the
//! full limit never sits in memory. Answers: 201 when new, 200 when already held, 400 for
//! a malformed intent, 401 without a valid intent, 403 for a key that may not upload, 413
//! over the blob limit, 422 when the body's digest or size differs from the intent, 429
//! over the key's quota, 507 over the store's quota or into the disk reserve.
//!
//! On a bucket (`serve --store s3://…`, ADR 0012) a PUT is answered only once the bucket
//! holds the blob, and a blob stored there under its name with other bytes is a 409.
//!
//! GET streams the blob from its (local, verified) file in 64 KiB chunks; at most `max_downloads` run at
//! once (503 with `Retry-After` beyond), so memory stays flat whatever the blob size and
//! however many clients there are.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use serde::Serialize;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;

use super::{AppState, Problem};
use crate::catalog::{IntentError, BLOB_INTENT_HEADER};
use crate::log::intake::{authorize_upload, UploadRefusal};
use crate::storage::blobs::quota::QuotaError;
use crate::storage::blobs::{BlobError, BlobStore, Upload};
use crate::storage::StorageError;

/// Bytes read from the file per body frame.
const CHUNK: usize = 64 * 1024;

/// Seconds a client is asked to wait when every download slot is taken.
const RETRY_AFTER_SECS: &str = "1";

/// Seconds a key over its quota is asked to wait (its unreferenced blobs expire in time).
const QUOTA_RETRY_AFTER_SECS: &str = "60";

fn store(app: &AppState) -> Result<&Arc<BlobStore>, Problem> {
    app.blobs
        .as_ref()
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
        Err(problem) if problem.status == StatusCode::TOO_MANY_REQUESTS.as_u16() => {
            let mut response = problem.into_response();
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(QUOTA_RETRY_AFTER_SECS),
            );
            response
        }
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
    let declared = crate::http::declared_length(headers)?;
    if declared.is_some_and(|n| n > store.max_bytes()) {
        return Err(too_large(store.max_bytes()));
    }
    let intent = headers
        .get(BLOB_INTENT_HEADER)
        .map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let (uploader, intent) =
        authorize_upload(&app.log, intent, hex, declared).map_err(upload_problem)?;
    let upload = Upload {
        uploader: uploader.short_id(),
        size: intent.size,
    };
    // Off the async workers: on a bucket, whether the blob is held is a round trip.
    let mut writer =
        crate::log::intake::blocking(|| store.writer(hex, upload)).map_err(blob_problem)?;
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

fn too_large(max: u64) -> Problem {
    Problem::too_large(format!("blobs are limited to {max} bytes"))
}

fn unauthorized(detail: String) -> Problem {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Unauthorized",
        detail,
    )
}

fn upload_problem(e: UploadRefusal) -> Problem {
    match e {
        UploadRefusal::Intent(IntentError::Malformed(m)) => {
            Problem::bad_request(format!("malformed upload intent: {m}"))
        }
        UploadRefusal::Intent(e) => unauthorized(e.to_string()),
        UploadRefusal::Forbidden(m) => {
            Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", m)
        }
    }
}

fn blob_problem(e: BlobError) -> Problem {
    match e {
        BlobError::TooLarge { max } => too_large(max),
        BlobError::DigestMismatch { .. } => Problem::invalid(vec![format!("digest mismatch: {e}")]),
        BlobError::SizeMismatch { .. } => Problem::invalid(vec![format!("size mismatch: {e}")]),
        BlobError::BadDigest(m) => Problem::bad_request(m),
        BlobError::Quota(q @ QuotaError::Key { .. }) => Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "quota",
            "Upload quota exceeded",
            q.to_string(),
        ),
        BlobError::Quota(q) => Problem::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "insufficient-storage",
            "Insufficient storage",
            q.to_string(),
        ),
        BlobError::Storage(e @ StorageError::Conflict(_)) => Problem::new(
            StatusCode::CONFLICT,
            "conflict",
            "Blob conflict",
            e.to_string(),
        ),
        BlobError::Storage(e) => Problem::internal(e.to_string()),
    }
}

/// `GET /v1/blobs/sha256:<hex>`.
pub async fn get(State(app): State<AppState>, Path(path): Path<String>) -> Response {
    match get_inner(&app, &path).await {
        Ok(response) => response,
        Err(problem) => problem.into_response(),
    }
}

async fn get_inner(app: &AppState, path: &str) -> Result<Response, Problem> {
    download(store(app)?, path).await
}

/// Streams blob `path` (`sha256:<hex>`) from `store`: the sequencer's handler, and a
/// frontend's on a bucket (`api::frontend`), which then serves evidence itself.
pub(super) async fn download(store: &Arc<BlobStore>, path: &str) -> Result<Response, Problem> {
    let hex = digest(path)?;
    let Ok(permit) = Arc::clone(store.download_slots()).try_acquire_owned() else {
        let mut response = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "Too many downloads",
            "every blob download slot is in use; retry shortly",
        )
        .into_response();
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECS),
        );
        return Ok(response);
    };
    // On a bucket this may fetch the blob into the local cache, re-hashing it first.
    let (file, len) = crate::log::intake::blocking(|| store.open_blob(hex))
        .map_err(|e| Problem::internal(e.to_string()))?
        .ok_or_else(|| Problem::not_found(format!("no blob sha256:{hex}")))?;
    let body = FileBody {
        file: tokio::fs::File::from_std(file),
        remaining: len,
        buf: vec![0; CHUNK.min(len as usize)],
        _permit: permit,
    };
    let mut response = (StatusCode::OK, Body::new(body)).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    // Publisher-supplied bytes, linked from the catalog browser: never sniffed into HTML,
    // and sandboxed with nothing allowed should a browser render them anyway.
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    Ok(response)
}

/// A blob file as a response body: one chunk read per frame, the download slot held
/// until the body is dropped.
struct FileBody {
    file: tokio::fs::File,
    remaining: u64,
    buf: Vec<u8>,
    _permit: OwnedSemaphorePermit,
}

impl http_body::Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = (this.remaining as usize).min(this.buf.len());
        let mut read = ReadBuf::new(&mut this.buf[..want]);
        ready!(Pin::new(&mut this.file).poll_read(cx, &mut read))?;
        let n = read.filled().len();
        if n == 0 {
            return Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the blob file is shorter than when it was opened",
            ))));
        }
        this.remaining -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(Bytes::copy_from_slice(read.filled())))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}
