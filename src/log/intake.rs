//! One submission from bytes to a durable entry, the same for the HTTP API and for a
//! local log (`publish --data`): parse, verify against the key snapshot, check the grant
//! and revocation against the state, then analyze the evidence blobs (stateless), then
//! sequence (stateful admission, durable commit). Also who may upload a blob
//! ([`authorize_upload`]): the signer of a valid upload intent that holds a grant.
//!
//! Authorization comes before analysis: a key that is unknown, revoked or not granted
//! for the target is refused before any blob is opened.
//!
//! May import: the `catalog` root re-exports and the engine's [`Log`].

use super::{now_ms, Log, SubmitError, Submitted};
use crate::catalog::{
    analyze, BlobIntent, BlobSource, Catalog, EvidenceReport, IntentError, Refusal, Role,
    Submission, SubmissionKind, Verified,
};
use crate::note::Verifier;

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
        preauthorize(log, &verified).map_err(SubmitError::Refused)?;
        let absent: Vec<&str> = request
            .evidence
            .iter()
            .map(|item| item.digest.sha256.as_str())
            .filter(|digest| !blobs.touch(digest))
            .collect();
        if absent.len() < request.evidence.len() {
            let held = HeldOnly { blobs, absent };
            let report = blocking(|| analyze(request, &held));
            verified = verified.with_evidence(report);
        } else {
            // Nothing to read: the report analysis would make of no blob, without
            // handing the worker's core to a blocking thread.
            verified = verified.with_evidence(EvidenceReport::default());
        }
    }
    log.submit(verified, dedup_key).await
}

/// A blob source without the blobs that touching them showed are not held, so analysis
/// opens each named blob at most once more.
struct HeldOnly<'a> {
    blobs: &'a (dyn BlobSource + Sync),
    absent: Vec<&'a str>,
}

impl BlobSource for HeldOnly<'_> {
    fn blob(&self, sha256_hex: &str) -> Option<Vec<u8>> {
        if self.absent.contains(&sha256_hex) {
            return None;
        }
        self.blobs.blob(sha256_hex)
    }
}

/// Refuses a submission the current state forbids (unknown signer, revoked key, no grant
/// covering the target and channel) before its evidence is read. Only a `Forbidden`
/// answer stops it here: what depends on the evidence is decided after analysis, and
/// the sequencer decides again against the state it commits on.
fn preauthorize(log: &Log, verified: &Verified) -> Result<(), Refusal> {
    match log.read_catalog(|catalog, _| catalog.check_authorized(verified, now_ms())) {
        Err(Refusal::Forbidden(m)) => Err(Refusal::Forbidden(m)),
        _ => Ok(()),
    }
}

/// Why an upload is refused.
#[derive(Debug, thiserror::Error)]
pub enum UploadRefusal {
    /// The intent is missing, malformed, unsigned, or does not match the upload.
    #[error(transparent)]
    Intent(#[from] IntentError),
    /// The signer may not upload (no publisher grant, revoked, not an admin).
    #[error("{0}")]
    Forbidden(String),
}

/// Checks the upload intent `header` (the `Blob-Intent` value) for the blob `sha256_hex`
/// of `size` bytes (when known) against `log`: its shape, origin, digest, size and
/// window, a signature by a known key, and that the key is an admin or holds a publisher
/// grant and was not revoked. Returns the uploader.
pub fn authorize_upload(
    log: &Log,
    header: Option<&str>,
    sha256_hex: &str,
    size: Option<u64>,
) -> Result<(Verifier, BlobIntent), UploadRefusal> {
    let header = header.ok_or(IntentError::Missing)?;
    let (envelope, intent) = BlobIntent::parse_header(header)?;
    intent.check(log.origin(), sha256_hex, size, now_ms())?;
    let signers = BlobIntent::verify(&envelope, &log.keys())?;
    log.read_catalog(|catalog, _| {
        let mut refusal = String::new();
        for key in &signers {
            match may_upload(catalog, key) {
                Ok(()) => return Ok((key.clone(), intent)),
                Err(m) if refusal.is_empty() => refusal = m,
                Err(_) => {}
            }
        }
        Err(UploadRefusal::Forbidden(refusal))
    })
}

/// Whether `key` may store blobs: an admin, or a holder of a publisher grant that was
/// not revoked.
fn may_upload(catalog: &Catalog, key: &Verifier) -> Result<(), String> {
    let id = key.short_id();
    if catalog.is_admin(key) {
        return Ok(());
    }
    if let Some(r) = catalog.revocation(&id) {
        return Err(format!(
            "key {id} was revoked by leaf {}; it may not upload blobs",
            r.leaf_index
        ));
    }
    if catalog
        .grants(&id)
        .iter()
        .any(|g| g.role == Role::Publisher)
    {
        Ok(())
    } else {
        Err(format!(
            "key {id} holds no publisher grant; only publishers and admins may upload blobs"
        ))
    }
}

/// Runs blocking work (file reads, fsync, blob parsing) without stalling the other tasks
/// of a multi-threaded runtime; on a current-thread runtime it simply runs inline.
pub fn blocking<R>(work: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}
