//! What `/checkpoint` and receipts carry when the log has witnesses: the witnessed
//! checkpoint of [`crate::log::witnessing`], chosen by the below-quorum mode.

use std::sync::Arc;

use axum::http::StatusCode;

use super::{AppState, Problem};
use crate::log::witnessing::BelowQuorum;
use crate::receipt::Receipt;

fn below_quorum(detail: String) -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "below-witness-quorum",
        "Not yet witnessed",
        detail,
    )
}

/// The signed checkpoint to serve: the log's head without witnesses, otherwise the
/// witnessed one (503 in hold-back mode until a checkpoint reached the quorum).
pub(super) fn served_checkpoint(app: &AppState) -> Result<Arc<Vec<u8>>, Problem> {
    let Some(witnessing) = &app.witnessing else {
        return Ok(app.log.head().signed.clone());
    };
    if let Some(witnessed) = witnessing.served() {
        return Ok(witnessed.signed.clone());
    }
    match witnessing.options().below_quorum {
        // Before the first head settled (at most one witness timeout after start).
        BelowQuorum::FailOpen => Ok(app.log.head().signed.clone()),
        BelowQuorum::HoldBack => Err(below_quorum(format!(
            "no checkpoint has reached the witness quorum ({} of {}) yet",
            witnessing.options().quorum,
            witnessing.options().witnesses.len()
        ))),
    }
}

/// The receipt of entry `index` against the newest served checkpoint covering it.
/// Without witnesses that is the log's checkpoint of `size` (default: current). With
/// witnesses it waits for a witnessed one; if none comes in time, fail-open falls back
/// to the log-signed checkpoint and hold-back answers 503.
pub(super) async fn latest_receipt(
    app: &AppState,
    index: u64,
    size: Option<u64>,
) -> Result<Receipt, Problem> {
    let Some(witnessing) = &app.witnessing else {
        return Ok(app.log.receipt(index, size)?);
    };
    if index >= app.log.head().checkpoint.size {
        // Not in the log at all: the log's own 404, without waiting.
        return Ok(app.log.receipt(index, None)?);
    }
    match witnessing.covering(index).await {
        Ok(witnessed) => Ok(witnessing.receipt(&app.log, index, &witnessed)?),
        Err(not_witnessed) => match witnessing.options().below_quorum {
            BelowQuorum::FailOpen => Ok(app.log.receipt(index, size)?),
            BelowQuorum::HoldBack => Err(below_quorum(not_witnessed.to_string())),
        },
    }
}

/// The receipt of entry `index` at an explicit tree size: witnessed if that size is a
/// served witnessed checkpoint, otherwise the log's own signature of that size.
pub(super) fn receipt_at(app: &AppState, index: u64, size: u64) -> Result<Receipt, Problem> {
    if let Some(witnessing) = &app.witnessing {
        if let Some(witnessed) = witnessing.at_size(size) {
            return Ok(witnessing.receipt(&app.log, index, &witnessed)?);
        }
    }
    Ok(app.log.receipt(index, Some(size))?)
}
