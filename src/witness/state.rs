//! The witness's durable memory: for each log, the latest checkpoint it cosigned.
//!
//! One file per origin, `<lowercase hex SHA-256(origin)>.checkpoint`, holding the signed
//! note the witness serves (the log's signature and the witness's cosignature). It is
//! replaced atomically (temporary file, fsync, rename, fsync of the directory), so after
//! a crash it holds either the old or the new checkpoint, never a torn one. The file is
//! written before the witness answers, so a cosignature that left the witness is always
//! backed by state that survives a restart.
//!
//! May import `note` (to re-verify what it loads) and `storage::durable` (fsync helpers).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::note::{open_checkpoint, Checkpoint, Verifier};
use crate::storage::durable::{create_dir_all_durable, replace_atomically};

/// What the witness remembers about one log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosigned {
    /// The checkpoint it cosigned last.
    pub checkpoint: Checkpoint,
    /// The note it serves: the log's signature and its own cosignature.
    pub note: Vec<u8>,
    /// The cosignature's timestamp (POSIX seconds); later cosignatures never go below it.
    pub timestamp: u64,
}

/// A state directory could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file system refused.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A state file does not hold a checkpoint of that log signed by its key.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// `lowercase hex(SHA-256(origin))`: the state file stem, and the path segment of the
/// witness's `GET /<hash>/checkpoint` endpoint.
pub fn origin_hash(origin: &str) -> String {
    hex::encode(Sha256::digest(origin.as_bytes()))
}

/// The directory holding one file per log.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// Opens (creating durably if needed) the state directory.
    pub fn open(dir: &Path) -> Result<StateDir, StateError> {
        create_dir_all_durable(dir).map_err(|source| StateError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(StateDir {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, origin: &str) -> PathBuf {
        self.dir.join(format!("{}.checkpoint", origin_hash(origin)))
    }

    /// Loads the latest cosigned checkpoint of `origin`, if the witness ever cosigned one.
    ///
    /// The file must verify with the log's key and name the same origin; anything else
    /// is an error, because silently starting from nothing would let the log roll back.
    pub fn load(
        &self,
        origin: &str,
        log_key: &Verifier,
        witness_key: &Verifier,
    ) -> Result<Option<Cosigned>, StateError> {
        let path = self.path(origin);
        let note = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StateError::Io { path, source }),
        };
        let invalid = |reason: String| StateError::Invalid {
            path: path.clone(),
            reason,
        };
        let (checkpoint, parsed) = open_checkpoint(&note, log_key)
            .map_err(|e| invalid(format!("not a checkpoint signed by the log key: {e}")))?;
        if checkpoint.origin != origin {
            return Err(invalid(format!(
                "holds a checkpoint of {:?}, not of {origin:?}",
                checkpoint.origin
            )));
        }
        // The timestamp of our own cosignature, if this key made it; a key rotation leaves
        // the tree state valid (it is about the log) and restarts the clock floor.
        let timestamp = parsed
            .verify(std::slice::from_ref(witness_key))
            .ok()
            .and_then(|v| v.first().and_then(|s| s.timestamp))
            .unwrap_or(0);
        Ok(Some(Cosigned {
            checkpoint,
            note,
            timestamp,
        }))
    }

    /// Durably replaces the state of `origin` (blocking file I/O).
    pub fn store(&self, origin: &str, note: &[u8]) -> Result<(), StateError> {
        let path = self.path(origin);
        replace_atomically(&path, note).map_err(|source| StateError::Io { path, source })
    }
}
