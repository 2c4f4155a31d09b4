//! A C2SP tlog-witness (v1.0.0 semantics, with the HEAD status code for a same-size
//! fork): it cosigns a log's checkpoint only if it is signed by the log's key and is
//! consistent with every checkpoint of that log it cosigned before.
//!
//! - the add-checkpoint body and the 409 size body are [`crate::note::AddCheckpoint`]
//!   (pure, shared with the log's witness client);
//! - [`state`]: the durable per-log memory (latest cosigned checkpoint).
//! - [`server`]: the HTTP endpoints.
//!
//! The check and the update are one critical section per log (an async mutex held
//! across verification, signing and the durable write), so two concurrent requests
//! built on the same old size cannot both succeed and leave the smaller tree as the
//! latest: the second one sees the first one's size and gets 409.
//!
//! May import: `merkle` and `note` (the pure cores); in `state`, the fsync helpers of
//! `storage::durable`; in `server`, the HTTP plumbing (body limit, problem+json).
//! Nothing of the log, the catalog or the client.

pub mod server;
pub mod state;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::merkle::{empty_root, verify_consistency};
use crate::note::{
    cosign, AddCheckpoint, AddCheckpointError, Checkpoint, KeyType, Note, NoteSignature, Signer,
    Verifier,
};
use state::{origin_hash, Cosigned, StateDir, StateError};

/// Why an add-checkpoint request is refused; each maps to the status the spec names.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// 413: the body is too large.
    #[error("{0}")]
    TooLarge(String),
    /// 400: the body, note or checkpoint is malformed, or old > the checkpoint's size.
    #[error("{0}")]
    Malformed(String),
    /// 404: this witness does not follow the checkpoint's origin.
    #[error("unknown origin {0:?}")]
    UnknownOrigin(String),
    /// 403: no valid signature by the log's key.
    #[error("{0}")]
    Forbidden(String),
    /// 409: `old` is not the witness's latest cosigned size (which is given).
    #[error("old size {old} is not the latest cosigned size {latest}")]
    Conflict {
        /// The request's old size.
        old: u64,
        /// The witness's latest cosigned size.
        latest: u64,
    },
    /// 422: the consistency proof does not verify, or the checkpoint forks the log.
    #[error("{0}")]
    Inconsistent(String),
    /// 500: the new state could not be made durable; nothing was cosigned.
    #[error("{0}")]
    Storage(String),
    /// 500: the witness failed to cosign a checkpoint it had accepted (its own key or
    /// clock, never the request).
    #[error("{0}")]
    Internal(String),
}

impl AddError {
    /// The HTTP status the spec assigns.
    pub fn status(&self) -> u16 {
        match self {
            AddError::TooLarge(_) => 413,
            AddError::Malformed(_) => 400,
            AddError::UnknownOrigin(_) => 404,
            AddError::Forbidden(_) => 403,
            AddError::Conflict { .. } => 409,
            AddError::Inconsistent(_) => 422,
            AddError::Storage(_) | AddError::Internal(_) => 500,
        }
    }
}

impl From<AddCheckpointError> for AddError {
    fn from(e: AddCheckpointError) -> AddError {
        match e {
            AddCheckpointError::TooLarge { .. } => AddError::TooLarge(e.to_string()),
            AddCheckpointError::Malformed(_) => AddError::Malformed(e.to_string()),
        }
    }
}

/// Opening a witness failed.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    /// A key is of the wrong type, or two logs share an origin.
    #[error("{0}")]
    Config(String),
    /// The state directory is unreadable or holds a bad file.
    #[error(transparent)]
    State(#[from] StateError),
}

/// One followed log: its key and, behind the per-log lock, what was cosigned last.
struct Followed {
    origin: String,
    key: Verifier,
    latest: Mutex<Option<Cosigned>>,
}

/// A witness for a fixed set of logs.
pub struct Witness {
    signer: Signer,
    state: StateDir,
    logs: HashMap<String, Arc<Followed>>,
    by_hash: HashMap<String, Arc<Followed>>,
}

fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Witness {
    /// Opens a witness: `signer` must be a cosignature (0x04) key, each log key an
    /// Ed25519 (0x01) key; the latest cosigned checkpoint of every log is loaded.
    pub fn open(
        signer: Signer,
        logs: Vec<(String, Verifier)>,
        state: StateDir,
    ) -> Result<Witness, WitnessError> {
        if signer.key_type() != KeyType::CosignatureV1 {
            return Err(WitnessError::Config(
                "the witness key must be a cosignature key (keygen --witness, type 0x04)".into(),
            ));
        }
        let witness_key = signer.verifier();
        let mut by_origin = HashMap::new();
        let mut by_hash = HashMap::new();
        for (origin, key) in logs {
            if key.key_type() != KeyType::Ed25519 {
                return Err(WitnessError::Config(format!(
                    "the key of log {origin:?} must be an Ed25519 (0x01) log key"
                )));
            }
            let latest = state.load(&origin, &key, &witness_key)?;
            let followed = Arc::new(Followed {
                origin: origin.clone(),
                key,
                latest: Mutex::new(latest),
            });
            if by_origin.insert(origin.clone(), followed.clone()).is_some() {
                return Err(WitnessError::Config(format!(
                    "log {origin:?} is given twice"
                )));
            }
            by_hash.insert(origin_hash(&origin), followed);
        }
        Ok(Witness {
            signer,
            state,
            logs: by_origin,
            by_hash,
        })
    }

    /// The witness's verifier key (type 0x04).
    pub fn verifier(&self) -> Verifier {
        self.signer.verifier()
    }

    /// The followed origins and the size each was last cosigned at (0 if never).
    pub async fn followed(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for log in self.logs.values() {
            let size = log
                .latest
                .lock()
                .await
                .as_ref()
                .map_or(0, |c| c.checkpoint.size);
            out.push((log.origin.clone(), size));
        }
        out.sort();
        out
    }

    /// The latest cosigned checkpoint of the log whose origin hashes to `hash`.
    pub async fn latest(&self, hash: &str) -> Option<Vec<u8>> {
        let log = self.by_hash.get(hash)?;
        let latest = log.latest.lock().await;
        latest.as_ref().map(|c| c.note.clone())
    }

    /// Handles one add-checkpoint request body; on success returns the cosignature,
    /// which is durable state before this returns.
    pub async fn add_checkpoint(&self, body: &[u8]) -> Result<NoteSignature, AddError> {
        let request = AddCheckpoint::parse(body)?;
        let note = Note::parse(&request.checkpoint)
            .map_err(|e| AddError::Malformed(format!("the checkpoint note: {e}")))?;
        let checkpoint = Checkpoint::parse(note.text())
            .map_err(|e| AddError::Malformed(format!("the checkpoint: {e}")))?;
        let log = self
            .logs
            .get(&checkpoint.origin)
            .ok_or_else(|| AddError::UnknownOrigin(checkpoint.origin.clone()))?;
        note.verify(std::slice::from_ref(&log.key)).map_err(|e| {
            AddError::Forbidden(format!("no valid signature by the log's key: {e}"))
        })?;
        if request.old_size > checkpoint.size {
            return Err(AddError::Malformed(format!(
                "old size {} is larger than the checkpoint's size {}",
                request.old_size, checkpoint.size
            )));
        }
        // From here to the durable write, no other request for this log can run.
        let mut latest = log.latest.lock().await;
        let latest_size = latest.as_ref().map_or(0, |c| c.checkpoint.size);
        if request.old_size != latest_size {
            return Err(AddError::Conflict {
                old: request.old_size,
                latest: latest_size,
            });
        }
        check_consistency(latest.as_ref(), &checkpoint, &request.proof)?;
        let floor = latest.as_ref().map_or(0, |c| c.timestamp);
        let timestamp = now_seconds().max(floor);
        let cosignature = cosign(note.text(), &self.signer, timestamp)
            .map_err(|e| AddError::Internal(format!("cannot cosign this checkpoint: {e}")))?;
        let served = served_note(&note, &log.key, &cosignature)?;
        let state = self.state.clone();
        let origin = log.origin.clone();
        let bytes = served.clone();
        tokio::task::spawn_blocking(move || state.store(&origin, &bytes))
            .await
            .map_err(|e| AddError::Storage(format!("persisting the witness state: {e}")))?
            .map_err(|e| AddError::Storage(format!("persisting the witness state: {e}")))?;
        *latest = Some(Cosigned {
            checkpoint,
            note: served,
            timestamp,
        });
        Ok(cosignature)
    }
}

/// The tlog-witness consistency rules against the latest cosigned checkpoint (the old
/// size was already checked to equal its size).
fn check_consistency(
    latest: Option<&Cosigned>,
    checkpoint: &Checkpoint,
    proof: &[[u8; 32]],
) -> Result<(), AddError> {
    if checkpoint.size == 0 && checkpoint.root != empty_root() {
        return Err(AddError::Inconsistent(
            "a checkpoint of size 0 must have the empty tree's root".into(),
        ));
    }
    let (old_size, old_root) = match latest {
        Some(c) => (c.checkpoint.size, c.checkpoint.root),
        None => (0, empty_root()),
    };
    // verify_consistency follows tlog-witness: from size 0 only an empty proof is
    // valid, and at equal sizes the roots must match (422, the HEAD status for a fork
    // at the same size; v1.0.0 said 409).
    verify_consistency(
        old_size,
        checkpoint.size,
        &old_root,
        &checkpoint.root,
        proof,
    )
    .map_err(|e| {
        AddError::Inconsistent(format!(
            "not consistent with the checkpoint of size {old_size} cosigned before: {e}"
        ))
    })
}

/// The note the witness stores and serves: the checkpoint text, the log's own
/// signature lines (other cosigners' lines are not the witness's to vouch for) and the
/// new cosignature.
fn served_note(
    note: &Note,
    log_key: &Verifier,
    cosignature: &NoteSignature,
) -> Result<Vec<u8>, AddError> {
    let mut bytes = note.text().as_bytes().to_vec();
    bytes.push(b'\n');
    for sig in note
        .signatures()
        .iter()
        .filter(|s| s.name == log_key.name() && s.key_id == log_key.key_id())
    {
        bytes.extend_from_slice(sig.to_line().as_bytes());
    }
    bytes.extend_from_slice(cosignature.to_line().as_bytes());
    Note::parse(&bytes)
        .map(|_| bytes)
        .map_err(|e| AddError::Malformed(format!("the cosigned note would be invalid: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_has_the_spec_status() {
        let cases = [
            (AddError::TooLarge("big".into()), 413),
            (AddError::Malformed("bad".into()), 400),
            (AddError::UnknownOrigin("o".into()), 404),
            (AddError::Forbidden("sig".into()), 403),
            (AddError::Conflict { old: 1, latest: 2 }, 409),
            (AddError::Inconsistent("fork".into()), 422),
            (AddError::Storage("disk".into()), 500),
            (AddError::Internal("cosign".into()), 500),
        ];
        for (error, status) in cases {
            assert_eq!(error.status(), status, "{error}");
        }
        let too_large = AddCheckpointError::TooLarge { size: 2, max: 1 };
        assert_eq!(AddError::from(too_large).status(), 413);
        let malformed = AddCheckpointError::Malformed("x".into());
        assert_eq!(AddError::from(malformed).status(), 400);
    }
}
