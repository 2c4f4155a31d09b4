//! One submission from bytes to a durable entry, the same for the HTTP API and for a
//! local log (`publish --data`): parse, verify against the key snapshot, analyze the
//! evidence blobs (stateless), then sequence (stateful admission, durable commit).
//!
//! May import: the `catalog` root re-exports and the engine's [`Log`].

use super::{Log, SubmitError, Submitted};
use crate::catalog::{analyze, BlobSource, Refusal, Submission, SubmissionKind};

/// Admits `body` (a DSSE envelope) into `log`. `expected` restricts the request kind (an
/// endpoint takes one kind); `blobs` enables the evidence content checks.
pub async fn intake(
    log: &Log,
    blobs: Option<&(dyn BlobSource + Sync)>,
    body: &[u8],
    expected: Option<SubmissionKind>,
) -> Result<Submitted, SubmitError> {
    let submission = Submission::parse(body).map_err(SubmitError::Refused)?;
    if let Some(expected) = expected.filter(|k| *k != submission.kind()) {
        return Err(SubmitError::Refused(Refusal::Invalid(vec![format!(
            "this endpoint takes {expected:?} submissions, the payload is a {:?}",
            submission.kind()
        )])));
    }
    let dedup_key = submission.dedup_key();
    let mut verified = submission
        .verify(&log.keys())
        .map_err(SubmitError::Refused)?;
    if let (Some(request), Some(blobs)) = (submission.publication(), blobs) {
        let report = blocking(|| analyze(request, blobs));
        verified = verified.with_evidence(report);
    }
    log.submit(verified, dedup_key).await
}

/// Runs blocking work (file reads, fsync, blob parsing) without stalling the other tasks
/// of a multi-threaded runtime; on a current-thread runtime it simply runs inline.
pub fn blocking<R>(work: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}
