//! `POST /v1/publications` and `POST /v1/admin/grants`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::{AppState, Problem, MAX_BODY_BYTES};
use crate::catalog::{Submission, SubmissionKind};
use crate::receipt::RECEIPT_MEDIA_TYPE;

/// Submits a publication request (a DSSE envelope signed by a granted publisher).
pub async fn publication(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    respond(submit(&app, &headers, body, SubmissionKind::Publication).await)
}

/// Submits a publisher grant (a DSSE envelope signed by an admin).
pub async fn grant(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    respond(submit(&app, &headers, body, SubmissionKind::Grant).await)
}

fn respond(result: Result<Response, Problem>) -> Response {
    match result {
        Ok(response) => response,
        Err(problem) => problem.into_response(),
    }
}

async fn submit(
    app: &AppState,
    headers: &HeaderMap,
    body: Body,
    expected: SubmissionKind,
) -> Result<Response, Problem> {
    let bytes = read_body(headers, body).await?;
    let submission = Submission::parse(&bytes)?;
    if submission.kind() != expected {
        return Err(Problem::invalid(vec![format!(
            "this endpoint takes {expected:?} submissions, the payload is a {:?}",
            submission.kind()
        )]));
    }
    let dedup_key = submission.dedup_key();
    let verified = submission.verify(&app.log.keys())?;
    let submitted = app.log.submit(verified, dedup_key).await?;
    // The newest checkpoint includes the entry too (submitted.tree_size <= head) and is
    // already signed; asking for exactly submitted.tree_size could mean re-signing.
    let receipt = app.log.receipt(submitted.index, None)?;
    let status = if submitted.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let mut response = (status, receipt.to_json()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(RECEIPT_MEDIA_TYPE),
    );
    Ok(response)
}

/// Reads at most [`MAX_BODY_BYTES`]; a declared or actual larger body is a 413.
async fn read_body(headers: &HeaderMap, body: Body) -> Result<axum::body::Bytes, Problem> {
    let too_large = || {
        Problem::too_large(format!(
            "request bodies are limited to {MAX_BODY_BYTES} bytes"
        ))
    };
    if let Some(length) = headers.get(header::CONTENT_LENGTH) {
        let declared = length
            .to_str()
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| Problem::bad_request("Content-Length is not a number"))?;
        if declared > MAX_BODY_BYTES as u64 {
            return Err(too_large());
        }
    }
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(e) => Err(Problem::bad_request(format!("reading the body: {e}"))),
    }
}
