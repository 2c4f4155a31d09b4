//! Every signed submission: publications, grants, and the decision kinds. Each answer is
//! counted: admissions by kind and result, refusals by kind and problem type.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{AppState, Problem, MAX_BODY_BYTES};
use crate::catalog::{DecisionKind, SubmissionKind};
use crate::log::intake::intake;
use crate::receipt::RECEIPT_MEDIA_TYPE;
use crate::telemetry::{names, Counters};

/// The submission kinds, as metric labels.
const KINDS: [&str; 7] = [
    "publication",
    "grant",
    "policy-set",
    "revocation",
    "review",
    "promotion",
    "status-change",
];

/// The problem types a submission is refused with, as metric labels.
const REASONS: [&str; 9] = [
    "malformed",
    "invalid",
    "forbidden",
    "conflict",
    "too-large",
    "below-witness-quorum",
    "unavailable",
    "internal",
    "other",
];

/// The admission results.
const RESULTS: [&str; 2] = ["appended", "duplicate"];

macro_rules! per_kind {
    ($name:expr, $key:expr, $values:expr) => {
        [
            Counters::new($name, ("kind", KINDS[0]), $key, $values),
            Counters::new($name, ("kind", KINDS[1]), $key, $values),
            Counters::new($name, ("kind", KINDS[2]), $key, $values),
            Counters::new($name, ("kind", KINDS[3]), $key, $values),
            Counters::new($name, ("kind", KINDS[4]), $key, $values),
            Counters::new($name, ("kind", KINDS[5]), $key, $values),
            Counters::new($name, ("kind", KINDS[6]), $key, $values),
        ]
    };
}

static ADMITTED: [Counters<2>; 7] = per_kind!(names::ADMISSIONS, "result", RESULTS);
static REFUSED: [Counters<9>; 7] = per_kind!(names::REFUSALS, "reason", REASONS);

fn kind_index(kind: SubmissionKind) -> usize {
    match kind {
        SubmissionKind::Publication => 0,
        SubmissionKind::Grant => 1,
        SubmissionKind::Decision(DecisionKind::PolicySet) => 2,
        SubmissionKind::Decision(DecisionKind::PublisherRevoke) => 3,
        SubmissionKind::Decision(DecisionKind::Review) => 4,
        SubmissionKind::Decision(DecisionKind::Promotion) => 5,
        SubmissionKind::Decision(DecisionKind::StatusChange) => 6,
    }
}

/// Counts the answer to a submission of `kind`.
fn count(kind: SubmissionKind, result: &Result<Response, Problem>) {
    let i = kind_index(kind);
    match result {
        Ok(response) if response.status() == StatusCode::OK => ADMITTED[i].increment("duplicate"),
        Ok(_) => ADMITTED[i].increment("appended"),
        Err(problem) => {
            let slug = problem.kind.rsplit('/').next().unwrap_or("other");
            REFUSED[i].increment(slug);
        }
    }
}

/// Submits a publication request (a DSSE envelope signed by a granted publisher).
pub async fn publication(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    respond(
        SubmissionKind::Publication,
        submit(&app, &headers, body, SubmissionKind::Publication).await,
    )
}

/// Submits a publisher grant (a DSSE envelope signed by an admin).
pub async fn grant(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    respond(
        SubmissionKind::Grant,
        submit(&app, &headers, body, SubmissionKind::Grant).await,
    )
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
    let kind = SubmissionKind::Decision(kind);
    respond(kind, submit(&app, &headers, body, kind).await)
}

fn respond(kind: SubmissionKind, result: Result<Response, Problem>) -> Response {
    count(kind, &result);
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
