//! `srcos-catalog replay`: rebuild the catalog from the entries alone and compare it with
//! the live one.

use std::path::PathBuf;

use clap::Args;

use super::{runtime, CliError, Context};
use crate::catalog::Catalog;
use crate::http::{routes, HttpClient};
use crate::keyfile::read_verifier;
use crate::log::replay::{replay, replay_dir, ReplayError, Replayed};
use crate::note::Verifier;
use crate::storage::records::DiskRecordStore;

/// Arguments of `replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Replay the log stored in this data directory (its tiles).
    #[arg(long, conflicts_with = "server", required_unless_present = "server")]
    data: Option<PathBuf>,
    /// Replay the log a server serves (C2SP checkpoint and entry tiles), then compare
    /// with its live catalog state.
    #[arg(long)]
    server: Option<String>,
    /// The log's verifier key file (default with --data: DATA/log.vkey; with --server it
    /// is required, since the server's word is what is being checked).
    #[arg(long)]
    log_vkey: Option<PathBuf>,
    /// Also compare with this server's live state (with --data).
    #[arg(long)]
    compare: Option<String>,
    /// Where the replay keeps the records it rebuilds, on disk so that its memory does
    /// not grow with the log (about 1.7 KB per entry, removed when done; default
    /// DATA/scratch with --data, the system's temporary directory with --server), and
    /// with --data the publications its state digest sorts (ADR 0020).
    #[arg(long, value_name = "DIR")]
    scratch: Option<PathBuf>,
}

impl ReplayArgs {
    /// Where the records the replay rebuilds go (see `--scratch`).
    fn scratch_dir(&self) -> PathBuf {
        match (&self.scratch, &self.data) {
            (Some(dir), _) => dir.clone(),
            (None, Some(data)) => data.join("scratch"),
            (None, None) => std::env::temp_dir(),
        }
    }

    /// An empty catalog whose records go to a scratch store (see `--scratch`).
    fn scratch_catalog(&self) -> Result<Catalog, CliError> {
        Ok(Catalog::with_store(Box::new(DiskRecordStore::scratch(
            &self.scratch_dir(),
        )?)))
    }
}

/// Replays, checks the root, compares, and prints the state digest.
pub fn run(args: ReplayArgs) -> Result<(), CliError> {
    super::progress::install();
    let key = args
        .log_vkey
        .as_ref()
        .map(|p| read_verifier(p))
        .transpose()?;
    let (replayed, live) = match (&args.data, &args.server) {
        (Some(dir), _) => {
            // The state digest sorts publications beside the rebuilt records (ADR 0020).
            let r = replay_dir(
                dir,
                key.as_ref(),
                args.scratch_catalog()?,
                &args.scratch_dir(),
            )
            .map_err(|e| CliError(format!("replay of {}: {e}", dir.display())))?;
            (r, args.compare.clone())
        }
        (None, Some(url)) => {
            let key = key.ok_or_else(|| CliError("--server needs --log-vkey".into()))?;
            (
                replay_server(url, &key, args.scratch_catalog()?)?,
                Some(url.clone()),
            )
        }
        (None, None) => return Err(CliError("give --data DIR or --server URL".into())),
    };
    let size = replayed.checkpoint.size;
    let digest = hex::encode(replayed.state_digest);
    println!(
        "root OK: {size} entries rebuild the signed checkpoint of {}",
        replayed.checkpoint.origin
    );
    if let Some(url) = live {
        let theirs = live_digest(&url, size)?;
        if theirs != digest {
            return Err(CliError(format!(
                "MISMATCH at tree size {size}: replayed state {digest}, live state {theirs} ({url})"
            )));
        }
        println!("live state at tree size {size} matches ({url})");
    }
    println!("state digest: {digest}");
    Ok(())
}

/// A tile the server did not give.
#[derive(Debug, thiserror::Error)]
#[error("GET {path}: {status}")]
struct NotServed {
    path: String,
    status: hyper::StatusCode,
}

fn replay_server(url: &str, key: &Verifier, catalog: Catalog) -> Result<Replayed, CliError> {
    let rt = runtime()?;
    let client = HttpClient::new(url)?;
    let checkpoint = rt.block_on(client.get(routes::CHECKPOINT))?;
    if !checkpoint.status.is_success() {
        return Err(CliError(format!("GET /checkpoint: {}", checkpoint.status)));
    }
    replay(catalog, &checkpoint.body, key, |tile| {
        let path = format!("/{}", tile.path());
        let r = rt
            .block_on(client.get(&path))
            .map_err(|e| ReplayError::Fetch(Box::new(e)))?;
        if r.status.is_success() {
            Ok(r.body)
        } else {
            let status = r.status;
            Err(ReplayError::Fetch(Box::new(NotServed { path, status })))
        }
    })
    .map_err(|e| CliError(format!("replay of {url}: {e}")))
}

fn live_digest(url: &str, size: u64) -> Result<String, CliError> {
    let rt = runtime()?;
    rt.block_on(async {
        let client = HttpClient::new(url)?;
        let r = client
            .get(&format!("{}?tree_size={size}", routes::STATE))
            .await?;
        if !r.status.is_success() {
            return Err(CliError(format!(
                "GET /v1/catalog/state: {}",
                String::from_utf8_lossy(&r.body)
            )));
        }
        let v: serde_json::Value =
            serde_json::from_slice(&r.body).context(|| "reading the state".into())?;
        v["stateDigest"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| CliError("no stateDigest in the answer".into()))
    })
}
