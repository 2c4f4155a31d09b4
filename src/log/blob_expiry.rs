//! Expiry of evidence blobs that no logged publication names: which blobs the log
//! references ([`References`], read incrementally from the log's entries), and the
//! background sweeper that removes the others once their time to live has passed
//! ([`run_sweeper`]). Referenced blobs never expire.
//!
//! A submission naming a blob restarts its clock before analysis (`intake`), and the
//! sweeper rescans the log before every sweep, so a blob named by a publication being
//! committed is either kept by its fresh clock or found in the log.
//!
//! May import: the engine's [`Log`], the `catalog` root re-exports and the blob store.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::reader::ReadError;
use super::Log;
use crate::catalog::{parse_request_payload, Leaf, RequestPayload};
use crate::storage::blobs::BlobStore;

/// The evidence digests named by the log's publications, up to a tree size.
#[derive(Debug, Default)]
pub struct References {
    scanned: u64,
    digests: HashSet<String>,
}

impl References {
    /// Reads the entries committed since the last call.
    pub fn update(&mut self, log: &Log) -> Result<(), ReadError> {
        let size = log.head().checkpoint.size;
        while self.scanned < size {
            let bytes = log.entry(self.scanned)?;
            if let Ok(Leaf::Publication(p)) = Leaf::parse(&bytes) {
                // A logged payload is read as replay reads it (no new-submission rules).
                if let Ok(RequestPayload::Publication(request)) =
                    parse_request_payload(&p.envelope.payload)
                {
                    self.digests
                        .extend(request.evidence.into_iter().map(|e| e.digest.sha256));
                }
            }
            self.scanned += 1;
        }
        Ok(())
    }

    /// Whether a logged publication names blob `sha256_hex`.
    pub fn contains(&self, sha256_hex: &str) -> bool {
        self.digests.contains(sha256_hex)
    }
}

/// One sweep: brings `refs` up to the log's head, then removes the unreferenced blobs
/// older than `ttl`.
pub fn sweep_once(log: &Log, store: &BlobStore, refs: &mut References, ttl: Duration) {
    if let Err(e) = refs.update(log) {
        tracing::warn!("blob expiry: reading the log: {e}; skipping this sweep");
        return;
    }
    match store.sweep(&|hex| refs.contains(hex), ttl, SystemTime::now()) {
        Ok(swept) if swept.blobs > 0 => tracing::info!(
            "blob expiry: removed {} unreferenced blobs ({} bytes)",
            swept.blobs,
            swept.bytes
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!("blob expiry: {e}"),
    }
}

/// Sweeps every `every` until the runtime stops, off the async workers.
pub async fn run_sweeper(log: Arc<Log>, store: Arc<BlobStore>, ttl: Duration, every: Duration) {
    let mut refs = References::default();
    let mut ticks = tokio::time::interval(every.max(Duration::from_millis(100)));
    loop {
        ticks.tick().await;
        let (log, store) = (log.clone(), store.clone());
        let work = tokio::task::spawn_blocking(move || {
            sweep_once(&log, &store, &mut refs, ttl);
            refs
        });
        refs = match work.await {
            Ok(refs) => refs,
            Err(e) => {
                tracing::warn!("blob expiry: the sweep failed: {e}");
                References::default()
            }
        };
    }
}
