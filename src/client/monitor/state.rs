//! The monitor's state file: the last verified checkpoint and how far the entries were
//! read. Local to the monitor (not a wire format); JSON so an operator can read it.
//!
//! ```json
//! {"version":1,"logKey":"<vkey>","checkpoint":"<signed note>","lastReachedMs":1700000000000,
//!  "entries":{"size":42,"compactRange":["<hex>",...]}}
//! ```
//! Written atomically (temporary file, fsync, rename, fsync of the directory), so a
//! crash leaves the old or the new state, and never a state that was not verified.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::merkle::{CompactRange, Hash};
use crate::note::{open_checkpoint, Checkpoint, Verifier};
use crate::storage::durable::replace_atomically;

/// The state file's format version.
const VERSION: u32 = 1;

/// Largest state file read (a note is at most 1 MiB; the compact range is 64 hashes).
const MAX_STATE_BYTES: u64 = 2 << 20;

/// How far the entries were downloaded and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntriesCursor {
    /// Entries `0..size` were read and hashed (and audited, with `--audit`).
    pub size: u64,
    /// The right edge of the tree of those entries, to extend with the next ones.
    pub range: CompactRange,
}

/// The persisted state.
#[derive(Debug, Clone)]
pub struct MonitorState {
    /// The last verified checkpoint, as served (it may carry cosignatures).
    pub note: Vec<u8>,
    /// Its parsed body.
    pub checkpoint: Checkpoint,
    /// When the server last answered with a checkpoint that verified (ms since the epoch).
    pub last_reached_ms: u64,
    /// The entries cursor, once entries were read (`--audit` or `--watch`).
    pub entries: Option<EntriesCursor>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StateFile {
    version: u32,
    log_key: String,
    checkpoint: String,
    last_reached_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    entries: Option<EntriesFile>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EntriesFile {
    size: u64,
    compact_range: Vec<String>,
}

/// The state file cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("monitor state {path}: {reason}")]
pub struct StateFileError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

fn decode_hash(text: &str) -> Option<Hash> {
    let bytes = hex::decode(text).ok()?;
    bytes.try_into().ok()
}

impl MonitorState {
    /// Loads the state, or `None` if the file does not exist. The checkpoint must still
    /// verify with `log_key`, and the file must have been made for that key: a state of
    /// another log is refused rather than silently replaced.
    pub fn load(path: &Path, log_key: &Verifier) -> Result<Option<MonitorState>, StateFileError> {
        let error = |reason: String| StateFileError {
            path: path.display().to_string(),
            reason,
        };
        let bytes = match std::fs::metadata(path) {
            Ok(meta) if meta.len() > MAX_STATE_BYTES => {
                return Err(error(format!("larger than {MAX_STATE_BYTES} bytes")))
            }
            Ok(_) => std::fs::read(path).map_err(|e| error(e.to_string()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(error(e.to_string())),
        };
        let file: StateFile = serde_json::from_slice(&bytes).map_err(|e| error(e.to_string()))?;
        if file.version != VERSION {
            return Err(error(format!("unsupported version {}", file.version)));
        }
        if file.log_key != log_key.to_vkey() {
            return Err(error(format!(
                "it belongs to the log key {}, not {}",
                file.log_key,
                log_key.to_vkey()
            )));
        }
        let note = file.checkpoint.into_bytes();
        let (checkpoint, _) = open_checkpoint(&note, log_key)
            .map_err(|e| error(format!("its checkpoint does not verify: {e}")))?;
        let entries = match file.entries {
            None => None,
            Some(entries) => {
                let hashes = entries
                    .compact_range
                    .iter()
                    .map(|h| decode_hash(h).ok_or_else(|| error(format!("bad hash {h:?}"))))
                    .collect::<Result<Vec<_>, _>>()?;
                let range = CompactRange::from_hashes(entries.size, hashes)
                    .map_err(|e| error(e.to_string()))?;
                if entries.size > checkpoint.size {
                    return Err(error("its entries cursor is beyond its checkpoint".into()));
                }
                Some(EntriesCursor {
                    size: entries.size,
                    range,
                })
            }
        };
        Ok(Some(MonitorState {
            note,
            checkpoint,
            last_reached_ms: file.last_reached_ms,
            entries,
        }))
    }

    /// Atomically and durably replaces the state file.
    pub fn save(&self, path: &Path, log_key: &Verifier) -> Result<(), StateFileError> {
        let file = StateFile {
            version: VERSION,
            log_key: log_key.to_vkey(),
            checkpoint: String::from_utf8_lossy(&self.note).into_owned(),
            last_reached_ms: self.last_reached_ms,
            entries: self.entries.as_ref().map(|e| EntriesFile {
                size: e.size,
                compact_range: e.range.hashes().iter().map(hex::encode).collect(),
            }),
        };
        let mut json = serde_json::to_vec_pretty(&file).map_err(|e| StateFileError {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        json.push(b'\n');
        replace_atomically(path, &json).map_err(|e| StateFileError {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    }
}
