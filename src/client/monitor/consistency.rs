//! Comparing a new checkpoint with the last verified one: rollback, fork, or growth
//! proven by a consistency proof. The proof comes from `/v1/proofs/consistency`, or,
//! where the server has no such endpoint (a static tlog-tiles mirror answers 404), is
//! computed from the hash tiles; it is verified the same way either way.
//!
//! A fork is only two signed checkpoints that are not consistent. A proof that does not
//! verify proves that only if the data it came from is authenticated: the hash tiles
//! are first checked to rebuild the new checkpoint's signed root (tiles that do not are
//! `bad-mirror-data`, the copy's fault, not the log's), and a proof from the API that
//! does not verify is checked against a proof from such tiles before anyone says fork.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::Deserialize;

use super::alert::AlertKind;
use super::state::MonitorState;
use super::tiles::{FetchError, Fetcher};
use super::PollOutcome;
use crate::http::routes;
use crate::merkle::{
    consistency_proof, consistency_proof_nodes, range_nodes, tree_root, verify_consistency, Hash,
    VerifyError,
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
    let (proof, authenticated) = fetch_proof(fetch, old.size, new.size, &new.root).await?;
    match verify_consistency(old.size, new.size, &old.root, &new.root, &proof) {
        Ok(()) => Ok(PollOutcome::Grown(new.clone(), old.size)),
        Err(e @ (VerifyError::RootMismatch | VerifyError::FirstRootMismatch)) if authenticated => {
            Err(fork(old, new, &e))
        }
        Err(e @ (VerifyError::RootMismatch | VerifyError::FirstRootMismatch)) => {
            // The API's proof leads elsewhere: the log forked only if the tiles, checked
            // against the new signed root, say so too.
            let from_tiles = proof_from_tiles(fetch, old.size, new.size, &new.root)
                .await
                .map_err(|failure| match failure {
                    ProofFailure::Unreachable(why) => ProofFailure::Alert(
                        AlertKind::BadProof,
                        format!(
                            "the consistency proof from size {} to {} does not verify ({e}), \
                             and the tiles to check it against could not be read: {why}",
                            old.size, new.size
                        ),
                    ),
                    alert => alert,
                })?;
            match verify_consistency(old.size, new.size, &old.root, &new.root, &from_tiles) {
                Ok(()) => Err(ProofFailure::Alert(
                    AlertKind::BadProof,
                    format!(
                        "the consistency proof from size {} to {} does not verify ({e}), \
                         but the log's tiles prove the two checkpoints consistent",
                        old.size, new.size
                    ),
                )),
                Err(e) => Err(fork(old, new, &e)),
            }
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

/// Two signed checkpoints, authenticated data between them, and no consistency.
fn fork(old: &Checkpoint, new: &Checkpoint, error: &VerifyError) -> ProofFailure {
    ProofFailure::Alert(
        AlertKind::Fork,
        format!(
            "the checkpoint of size {} is not an extension of the one of size {}: {error}",
            new.size, old.size
        ),
    )
}

/// The consistency proof from `first` to `second` computed from the hash tiles, once
/// they are shown to rebuild `root`, the signed root of `second`.
async fn proof_from_tiles(
    fetch: &Fetcher<'_>,
    first: u64,
    second: u64,
    root: &Hash,
) -> Result<Vec<Hash>, ProofFailure> {
    let bad = |detail: String| ProofFailure::Alert(AlertKind::BadProof, detail);
    let mirror = |detail: String| ProofFailure::Alert(AlertKind::BadMirrorData, detail);
    let mut nodes: Vec<_> = consistency_proof_nodes(first, second)
        .map_err(|e| bad(e.to_string()))?
        .into_iter()
        .flatten()
        .collect();
    nodes.extend(range_nodes(0, second));
    let tiles = fetch
        .hashes_for(&nodes, second)
        .await
        .map_err(|e| match e {
            FetchError::Unreachable(m) => ProofFailure::Unreachable(m),
            FetchError::Bad(m) => mirror(m),
        })?;
    let rebuilt = tree_root(second, &tiles).map_err(|e| mirror(format!("{e:?}")))?;
    if rebuilt != *root {
        return Err(mirror(format!(
            "the hash tiles served for size {second} do not rebuild the root its correctly \
             signed checkpoint commits to ({} instead of {})",
            BASE64.encode(rebuilt),
            BASE64.encode(root)
        )));
    }
    consistency_proof(first, second, &tiles).map_err(|e| bad(format!("{e:?}")))
}

/// The proof from the API, or from the hash tiles where there is no API; and whether
/// it is authenticated (computed from tiles that rebuild `root`, the signed root of
/// `second`).
async fn fetch_proof(
    fetch: &Fetcher<'_>,
    first: u64,
    second: u64,
    root: &Hash,
) -> Result<(Vec<Hash>, bool), ProofFailure> {
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
            let proof = answer
                .hashes
                .iter()
                .map(|h| {
                    hex::decode(h)
                        .ok()
                        .and_then(|b| Hash::try_from(b).ok())
                        .ok_or_else(|| bad(format!("GET {path}: {h:?} is not a hash")))
                })
                .collect::<Result<_, _>>()?;
            Ok((proof, false))
        }
        404 => Ok((proof_from_tiles(fetch, first, second, root).await?, true)),
        status => Err(ProofFailure::Unreachable(format!(
            "GET {path}: HTTP {status}"
        ))),
    }
}
