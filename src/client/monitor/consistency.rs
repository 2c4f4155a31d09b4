//! Comparing a new checkpoint with the last verified one: rollback, fork, or growth
//! proven by a consistency proof. The proof comes from `/v1/proofs/consistency`, or,
//! where the server has no such endpoint (a static tlog-tiles mirror answers 404), is
//! computed from the hash tiles; it is verified the same way either way.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::Deserialize;

use super::alert::AlertKind;
use super::state::MonitorState;
use super::tiles::{FetchError, Fetcher};
use super::PollOutcome;
use crate::http::routes;
use crate::merkle::{
    consistency_proof, consistency_proof_nodes, verify_consistency, Hash, VerifyError,
};
use crate::note::Checkpoint;

/// The answer of `/v1/proofs/consistency`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencyAnswer {
    first: u64,
    second: u64,
    hashes: Vec<String>,
}

/// Why no consistency was established.
pub(super) enum ProofFailure {
    /// No usable answer: retry later.
    Unreachable(String),
    /// The log misbehaved.
    Alert(AlertKind, String),
}

/// Rollback, fork, or growth proven consistent.
pub(super) async fn compare(
    fetch: &Fetcher<'_>,
    last: &MonitorState,
    new: &Checkpoint,
) -> Result<PollOutcome, ProofFailure> {
    let old = &last.checkpoint;
    if new.origin != old.origin {
        return Err(ProofFailure::Alert(
            AlertKind::BadSignature,
            format!(
                "the log key signed a checkpoint for origin {:?}, but monitors {:?}",
                new.origin, old.origin
            ),
        ));
    }
    if new.size < old.size {
        return Err(ProofFailure::Alert(
            AlertKind::Rollback,
            format!(
                "the log went back from size {} to size {}",
                old.size, new.size
            ),
        ));
    }
    if new.size == old.size {
        if new.root != old.root {
            return Err(ProofFailure::Alert(
                AlertKind::Fork,
                format!(
                    "two checkpoints of size {} with different roots ({} and {})",
                    new.size,
                    BASE64.encode(old.root),
                    BASE64.encode(new.root)
                ),
            ));
        }
        return Ok(PollOutcome::Unchanged(new.clone()));
    }
    let proof = fetch_proof(fetch, old.size, new.size).await?;
    match verify_consistency(old.size, new.size, &old.root, &new.root, &proof) {
        Ok(()) => Ok(PollOutcome::Grown(new.clone(), old.size)),
        Err(e @ (VerifyError::RootMismatch | VerifyError::FirstRootMismatch)) => {
            Err(ProofFailure::Alert(
                AlertKind::Fork,
                format!(
                    "the checkpoint of size {} is not an extension of the one of size {}: {e}",
                    new.size, old.size
                ),
            ))
        }
        Err(e) => Err(ProofFailure::Alert(
            AlertKind::BadProof,
            format!(
                "the consistency proof from size {} to {} is malformed: {e}",
                old.size, new.size
            ),
        )),
    }
}

/// The proof from the API, or from the hash tiles where there is no API.
async fn fetch_proof(
    fetch: &Fetcher<'_>,
    first: u64,
    second: u64,
) -> Result<Vec<Hash>, ProofFailure> {
    let path = format!(
        "{}?first={first}&second={second}",
        routes::CONSISTENCY_PROOF
    );
    let (status, body) = fetch
        .get(&path)
        .await
        .map_err(|e| ProofFailure::Unreachable(e.to_string()))?;
    let bad = |detail: String| ProofFailure::Alert(AlertKind::BadProof, detail);
    match status {
        200 => {
            let answer: ConsistencyAnswer =
                serde_json::from_slice(&body).map_err(|e| bad(format!("GET {path}: {e}")))?;
            if answer.first != first || answer.second != second {
                return Err(bad(format!(
                    "GET {path} answered a proof from {} to {}",
                    answer.first, answer.second
                )));
            }
            answer
                .hashes
                .iter()
                .map(|h| {
                    hex::decode(h)
                        .ok()
                        .and_then(|b| Hash::try_from(b).ok())
                        .ok_or_else(|| bad(format!("GET {path}: {h:?} is not a hash")))
                })
                .collect()
        }
        404 => {
            let nodes: Vec<_> = consistency_proof_nodes(first, second)
                .map_err(|e| bad(e.to_string()))?
                .into_iter()
                .flatten()
                .collect();
            let tiles = fetch
                .hashes_for(&nodes, second)
                .await
                .map_err(|e| match e {
                    FetchError::Unreachable(m) => ProofFailure::Unreachable(m),
                    FetchError::Bad(m) => bad(m),
                })?;
            consistency_proof(first, second, &tiles).map_err(|e| bad(format!("{e:?}")))
        }
        status => Err(ProofFailure::Unreachable(format!(
            "GET {path}: HTTP {status}"
        ))),
    }
}
