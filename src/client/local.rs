//! [`LocalAuthority`]: the [`Authority`] of a local log in a data directory
//! (`--data DIR`), for disconnected builds. The log and its blob store are opened once
//! (which replays the log) and serve every call of one command; submissions go through
//! `log::intake`, the same admission the server's handlers run, and receipts are built
//! from the local tiles. No server may be running on the directory.
//!
//! May import `log`, `storage`, `catalog` (through its root) and `receipt`.

use std::path::{Path, PathBuf};

use super::authority::{
    upload_intent, Authority, BlobPut, LogInfo, PolicyInForce, Receipted, Reply,
};
use super::ClientError;
use crate::catalog::{BlobSource, Envelope, RecordError, SubmissionKind};
use crate::log::intake::{authorize_upload, blocking, intake, UploadRefusal};
use crate::log::reader::ReadError;
use crate::log::{Log, LogError, LogOptions, SubmitError};
use crate::note::Signer;
use crate::storage::blobs::{BlobError, BlobStore, DEFAULT_MAX_BLOB_BYTES};
use crate::storage::StorageError;

/// The local log or its stores failed.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The log could not be opened.
    #[error("opening the local log in {}: {source}", dir.display())]
    Open {
        /// The data directory.
        dir: PathBuf,
        /// Why.
        source: LogError,
    },
    /// The blob store could not be opened.
    #[error("opening {}: {source}", dir.display())]
    OpenBlobs {
        /// The blob directory.
        dir: PathBuf,
        /// Why.
        source: StorageError,
    },
    /// Reading the log failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Storing a blob failed.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// Reading a blob failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Reading the catalog's records failed.
    #[error(transparent)]
    Records(#[from] RecordError),
}

/// A local log and its evidence store, open for one command (closed on drop).
pub struct LocalAuthority {
    log: Log,
    blobs: BlobStore,
    created: bool,
}

impl LocalAuthority {
    /// Opens (or creates) the log in `dir` and its blob store `dir/blobs`.
    pub fn open(dir: &Path) -> Result<LocalAuthority, LocalError> {
        let (log, report) = Log::open(LogOptions::new(dir)).map_err(|source| LocalError::Open {
            dir: dir.to_path_buf(),
            source,
        })?;
        let blob_dir = dir.join("blobs");
        let blobs = BlobStore::open(&blob_dir, DEFAULT_MAX_BLOB_BYTES).map_err(|source| {
            LocalError::OpenBlobs {
                dir: blob_dir,
                source,
            }
        })?;
        Ok(LocalAuthority {
            log,
            blobs,
            created: report.created,
        })
    }

    /// Whether opening created a new log (key pair, admin key, genesis).
    pub fn created(&self) -> bool {
        self.created
    }
}

/// A submission error as the server would have answered it.
fn refusal(e: SubmitError) -> ClientError {
    match e {
        SubmitError::Refused(r) => ClientError::Refused {
            status: r.http_status(),
            detail: r.to_string(),
            errors: r.problems(),
        },
        other => ClientError::Refused {
            status: 503,
            detail: other.to_string(),
            errors: Vec::new(),
        },
    }
}

impl Authority for LocalAuthority {
    fn submit<'a>(&'a self, kind: SubmissionKind, envelope: &'a Envelope) -> Reply<'a, Receipted> {
        Box::pin(async move {
            let body = envelope.to_json().into_bytes();
            let blobs: &(dyn BlobSource + Sync) = &self.blobs;
            let submitted = intake(&self.log, Some(blobs), &body, Some(kind))
                .await
                .map_err(refusal)?;
            let receipt = self
                .log
                .receipt(submitted.index, Some(submitted.tree_size))
                .map_err(LocalError::from)?;
            Ok(Receipted {
                receipt,
                duplicate: submitted.duplicate,
            })
        })
    }

    fn put_blob<'a>(
        &'a self,
        uploader: &'a Signer,
        sha256_hex: &'a str,
        bytes: Vec<u8>,
    ) -> Reply<'a, BlobPut> {
        Box::pin(async move {
            // The same intent and checks as a server: what is stored is tied to a key
            // that may upload.
            let size = bytes.len() as u64;
            let intent = upload_intent(uploader, self.log.origin(), sha256_hex, size);
            let (key, _) = authorize_upload(&self.log, Some(&intent), sha256_hex, Some(size))
                .map_err(|e| ClientError::Refused {
                    status: match e {
                        UploadRefusal::Forbidden(_) => 403,
                        UploadRefusal::Intent(_) => 401,
                    },
                    detail: e.to_string(),
                    errors: Vec::new(),
                })?;
            let new = blocking(|| self.blobs.put(sha256_hex, &bytes, &key.short_id()))
                .map_err(LocalError::from)?;
            Ok(if new { BlobPut::Created } else { BlobPut::Held })
        })
    }

    fn blob<'a>(&'a self, sha256_hex: &'a str) -> Reply<'a, Option<Vec<u8>>> {
        Box::pin(
            async move { Ok(blocking(|| self.blobs.get(sha256_hex)).map_err(LocalError::from)?) },
        )
    }

    fn policy(&self) -> Reply<'_, PolicyInForce> {
        Box::pin(async move {
            Ok(self.log.read_catalog(|catalog, at| {
                let (policy, leaf_index) = catalog.policy_before(at);
                PolicyInForce {
                    policy: policy.clone(),
                    leaf_index,
                    tree_size: at,
                }
            }))
        })
    }

    fn entry_index<'a>(&'a self, id: &'a str) -> Reply<'a, Option<u64>> {
        Box::pin(async move {
            let index = self
                .log
                .read_catalog(|catalog, at| catalog.entry_index(id).map(|i| i.filter(|i| *i < at)))
                .map_err(LocalError::from)?;
            Ok(index)
        })
    }

    fn log_info(&self) -> Reply<'_, LogInfo> {
        Box::pin(async move {
            Ok(LogInfo {
                origin: self.log.origin().to_string(),
                verifier_key: self.log.verifier().to_vkey(),
                tree_size: self.log.head().checkpoint.size,
            })
        })
    }

    fn checkpoint(&self) -> Reply<'_, Vec<u8>> {
        Box::pin(async move { Ok(self.log.head().signed.to_vec()) })
    }
}
