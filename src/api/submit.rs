//! Every signed submission: publications, grants, and the decision kinds.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{AppState, Problem, MAX_BODY_BYTES};
use crate::catalog::{DecisionKind, SubmissionKind};
use crate::log::intake::intake;
use crate::receipt::RECEIPT_MEDIA_TYPE;

/// Submits a publication request (a DSSE envelope signed by a granted publisher).
pub async fn publication(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    respond(submit(&app, &headers, body, SubmissionKind::Publication).await)
}

/// Submits a publisher grant (a DSSE envelope signed by an admin).
pub async fn grant(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    respond(submit(&app, &headers, body, SubmissionKind::Grant).await)
}

/// Sets the channel policy (a DSSE envelope signed by an admin).
pub async fn policy_set(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    decision(app, headers, body, DecisionKind::PolicySet).await
}

/// Revokes a key (admin).
pub async fn revoke(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    decision(app, headers, body, DecisionKind::PublisherRevoke).await
}

/// Records a review (a granted reviewer).
pub async fn review(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    decision(app, headers, body, DecisionKind::Review).await
}

/// Promotes an entry (a reviewer granted for the destination channel, or an admin).
pub async fn promotion(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    decision(app, headers, body, DecisionKind::Promotion).await
}

/// Changes an entry's status (a reviewer, or an admin; `revoked` by an admin only).
pub async fn status_change(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    decision(app, headers, body, DecisionKind::StatusChange).await
}

async fn decision(app: AppState, headers: HeaderMap, body: Body, kind: DecisionKind) -> Response {
    respond(submit(&app, &headers, body, SubmissionKind::Decision(kind)).await)
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
    let blobs = app
        .blobs
        .as_deref()
        .map(|b| b as &(dyn crate::catalog::BlobSource + Sync));
    let submitted = intake(&app.log, blobs, &bytes, Some(expected)).await?;
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
    crate::http::read_limited(headers, body, MAX_BODY_BYTES).await
}
