//! `POST /v1/publications` and `POST /v1/admin/grants`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

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
    // The newest served checkpoint includes the entry too (submitted.tree_size <= head)
    // and is already signed (and, with witnesses, cosigned).
    let receipt = super::witnessed::latest_receipt(app, submitted.index, None).await?;
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
    super::body::read_limited(headers, body, MAX_BODY_BYTES).await
}
