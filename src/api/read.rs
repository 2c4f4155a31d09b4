//! The read side: checkpoint, tiles, entries, proofs, receipts.
//!
//! May import `super` (the app state and Problem), the log's read side, `receipt` and
//! `tiles`. Errors of the log become problem+json: 404 only for what the caller asked
//! for wrongly, 500 for what the log failed at.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{AppState, Problem};
use crate::note::Verifier;
use crate::receipt::RECEIPT_MEDIA_TYPE;
use crate::tiles::TileId;

/// The cache policy of what never changes (full tiles, entries of a signed size).
pub(super) const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// A response with its status, content type and cache policy.
pub(super) fn with_headers(
    status: StatusCode,
    content_type: &'static str,
    cache: &'static str,
    body: impl IntoResponse,
) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

/// A tile's bytes as served: a full tile never changes, so it is cached for a year; a
/// partial one for an hour (the server and a frontend answer alike).
pub(super) fn tile_response(tile: TileId, data: &[u8]) -> Response {
    let cache = if tile.is_full() {
        IMMUTABLE
    } else {
        "public, max-age=3600"
    };
    with_headers(
        StatusCode::OK,
        "application/octet-stream",
        cache,
        data.to_vec(),
    )
}

fn json(value: &impl Serialize) -> Response {
    with_headers(
        StatusCode::OK,
        "application/json",
        "no-cache",
        serde_json::to_string(value).unwrap_or_default(),
    )
}

/// `GET /checkpoint`: the current signed checkpoint (C2SP tlog-checkpoint).
/// With witnesses, the witnessed checkpoint (see `witnessed::served_checkpoint`).
pub async fn checkpoint(State(app): State<AppState>) -> Response {
    match super::witnessed::served_checkpoint(&app) {
        Ok(signed) => with_headers(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            "no-cache",
            signed.as_ref().clone(),
        ),
        Err(problem) => problem.into_response(),
    }
}

/// `GET /tile/<L>/<N>[.p/<W>]` and `GET /tile/entries/<N>[.p/<W>]` (C2SP tlog-tiles).
pub async fn tile(State(app): State<AppState>, Path(path): Path<String>) -> Response {
    let full_path = format!("tile/{path}");
    let Some(tile) = TileId::parse_path(&full_path) else {
        return Problem::not_found(format!("{full_path} is not a tlog-tiles path")).into_response();
    };
    match app.log.tile(tile) {
        Ok(data) => tile_response(tile, &data),
        Err(e) => Problem::from(e).into_response(),
    }
}

/// `GET /tile/entries/<N>[.p/<W>]` on its own route, so that entry bundles alone are
/// compressed.
pub async fn entry_bundle(app: State<AppState>, Path(path): Path<String>) -> Response {
    tile(app, Path(format!("entries/{path}"))).await
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LogInfo<'a> {
    origin: &'a str,
    verifier_key: String,
    tree_size: u64,
}

/// The `/v1/log` answer, shared by the server and a frontend (which answers from its
/// follower): origin, verifier key and the size of the head being served.
pub(super) fn log_info_response(origin: &str, verifier: &Verifier, tree_size: u64) -> Response {
    json(&LogInfo {
        origin,
        verifier_key: verifier.to_vkey(),
        tree_size,
    })
}

/// `GET /v1/log`: origin, verifier key and current size.
pub async fn log_info(State(app): State<AppState>) -> Response {
    let head = app.log.head();
    log_info_response(app.log.origin(), app.log.verifier(), head.checkpoint.size)
}

pub(super) fn parse_index(text: &str, what: &str) -> Result<u64, Problem> {
    crate::tiles::parse_canonical_decimal(text).ok_or_else(|| {
        Problem::bad_request(format!("{what} {text:?} is not a canonical decimal number"))
    })
}

/// `GET /v1/entries/<index>`: the exact leaf bytes.
pub async fn entry(State(app): State<AppState>, Path(index): Path<String>) -> Response {
    let result = parse_index(&index, "index").and_then(|index| Ok(app.log.entry(index)?));
    match result {
        Ok(bytes) => with_headers(StatusCode::OK, "application/json", IMMUTABLE, bytes),
        Err(problem) => problem.into_response(),
    }
}

/// Query of `GET /v1/receipts/<index>`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptQuery {
    pub(super) tree_size: Option<String>,
}

/// `GET /v1/receipts/<index>[?tree_size=N]`.
pub async fn receipt(
    State(app): State<AppState>,
    Path(index): Path<String>,
    query: Result<Query<ReceiptQuery>, QueryRejection>,
) -> Response {
    let result = async {
        let Query(query) = query.map_err(query_problem)?;
        let index = parse_index(&index, "index")?;
        let size = query
            .tree_size
            .as_deref()
            .map(|s| parse_index(s, "tree_size"))
            .transpose()?;
        match size {
            Some(size) => super::witnessed::receipt_at(&app, index, size),
            None => super::witnessed::latest_receipt(&app, index, None).await,
        }
    }
    .await;
    match result {
        Ok(receipt) => with_headers(
            StatusCode::OK,
            RECEIPT_MEDIA_TYPE,
            "no-cache",
            receipt.to_json(),
        ),
        Err(problem) => problem.into_response(),
    }
}

/// Query of `GET /v1/proofs/inclusion`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    leaf_hash: String,
    tree_size: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InclusionProof {
    leaf_index: u64,
    tree_size: u64,
    hashes: Vec<String>,
}

/// `GET /v1/proofs/inclusion?leaf_hash=<hex>&tree_size=<n>`.
pub async fn inclusion(
    State(app): State<AppState>,
    query: Result<Query<InclusionQuery>, QueryRejection>,
) -> Response {
    let result = (|| {
        let Query(query) = query.map_err(query_problem)?;
        let size = parse_index(&query.tree_size, "tree_size")?;
        let leaf_hash = parse_hash(&query.leaf_hash)?;
        let index = app
            .log
            .find_leaf(&leaf_hash)?
            .filter(|index| *index < size)
            .ok_or_else(|| {
                Problem::not_found(format!(
                    "no entry with leaf hash {} in the tree of size {size}",
                    query.leaf_hash
                ))
            })?;
        let proof = app.log.inclusion_proof(index, size)?;
        Ok::<_, Problem>(InclusionProof {
            leaf_index: index,
            tree_size: size,
            hashes: proof.iter().map(hex::encode).collect(),
        })
    })();
    match result {
        Ok(proof) => json(&proof),
        Err(problem) => problem.into_response(),
    }
}

/// Query of `GET /v1/proofs/consistency`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    pub(super) first: String,
    pub(super) second: String,
}

#[derive(Serialize)]
struct ConsistencyProof {
    first: u64,
    second: u64,
    hashes: Vec<String>,
}

/// `GET /v1/proofs/consistency?first=<m>&second=<n>`.
pub async fn consistency(
    State(app): State<AppState>,
    query: Result<Query<ConsistencyQuery>, QueryRejection>,
) -> Response {
    let result = (|| {
        let Query(query) = query.map_err(query_problem)?;
        let first = parse_index(&query.first, "first")?;
        let second = parse_index(&query.second, "second")?;
        if first == 0 || first > second {
            return Err(Problem::bad_request(format!(
                "a consistency proof needs 0 < first <= second, got first={first} second={second}"
            )));
        }
        let proof = app.log.consistency_proof(first, second)?;
        Ok(ConsistencyProof {
            first,
            second,
            hashes: proof.iter().map(hex::encode).collect(),
        })
    })();
    match result {
        Ok(proof) => json(&proof),
        Err(problem) => problem.into_response(),
    }
}

fn parse_hash(text: &str) -> Result<[u8; 32], Problem> {
    let bytes = hex::decode(text)
        .map_err(|e| Problem::bad_request(format!("leaf_hash {text:?} is not hex: {e}")))?;
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(Problem::bad_request("leaf_hash must be lowercase hex"));
    }
    bytes.try_into().map_err(|b: Vec<u8>| {
        Problem::bad_request(format!("leaf_hash is {} bytes, not 32", b.len()))
    })
}

/// Anything else: a problem+json 404 rather than an empty body.
pub async fn fallback() -> Response {
    Problem::not_found("no such endpoint").into_response()
}

pub(super) fn query_problem(rejection: QueryRejection) -> Problem {
    Problem::bad_request(format!("query string: {}", rejection.body_text()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::reader::ReadError;
    use crate::storage::StorageError;

    /// Only the caller's mistakes are 404; a failure of the log to prove or sign what it
    /// holds is a 500, and every error answer is problem+json.
    #[test]
    fn read_errors_map_to_their_status() {
        let cases = [
            (
                ReadError::NotFound("entry 9 is beyond tree size 3".into()),
                404,
            ),
            (
                ReadError::Internal("signing checkpoint: bad key".into()),
                500,
            ),
            (
                ReadError::Internal("hash source returned 2 hashes for 3 requested nodes".into()),
                500,
            ),
            (
                StorageError::Corrupt("tile/0/000 is short".into()).into(),
                500,
            ),
        ];
        for (error, status) in cases {
            let response = Problem::from(error).into_response();
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(
                response.headers().get(header::CONTENT_TYPE),
                Some(&HeaderValue::from_static(crate::http::PROBLEM_JSON))
            );
        }
    }
}
