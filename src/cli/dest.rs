//! Where a signed request goes: a server (`--server URL`) or a local log
//! (`--data DIR`, appended with the same admission code, for disconnected builds).

use std::path::PathBuf;

use clap::Args;

use super::{runtime, CliError, Context};
use crate::catalog::Envelope;
use crate::client::http::HttpClient;
use crate::client::{submit_envelope, ClientError, Published};
use crate::keyfile::read_verifier;
use crate::log::intake::intake;
use crate::log::{Log, LogOptions, SubmitError};
use crate::note::Verifier;
use crate::receipt::Receipt;
use crate::storage::blobs::{BlobStore, DEFAULT_MAX_BLOB_BYTES};

/// `--server URL` or `--data DIR`, and the log key to check receipts with.
#[derive(Debug, Args, Clone)]
pub struct Dest {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// Append to the local log in this data directory instead of a server (no server may
    /// be running on it).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The log's verifier key file, to verify the receipt. Default: DATA/log.vkey in local
    /// mode; otherwise the key the server reports, which only checks consistency.
    #[arg(long)]
    pub log_vkey: Option<PathBuf>,
}

/// A local log opened for one command.
pub struct LocalLog {
    /// The log.
    pub log: Log,
    /// Its evidence store.
    pub blobs: BlobStore,
}

impl LocalLog {
    /// Opens the log and blob store in `dir`.
    pub fn open(dir: &std::path::Path) -> Result<LocalLog, CliError> {
        let (log, report) = Log::open(LogOptions::new(dir))
            .context(|| format!("opening the local log in {}", dir.display()))?;
        if report.created {
            eprintln!("created a new local log in {}", dir.display());
        }
        let blobs = BlobStore::open(&dir.join("blobs"), DEFAULT_MAX_BLOB_BYTES)
            .context(|| format!("opening {}/blobs", dir.display()))?;
        Ok(LocalLog { log, blobs })
    }
}

impl Dest {
    /// The log key: `--log-vkey`, DATA/log.vkey, or (with a warning) the server's.
    pub async fn log_key(&self, client: Option<&HttpClient>) -> Result<Verifier, CliError> {
        if let Some(path) = &self.log_vkey {
            return Ok(read_verifier(path)?);
        }
        if let Some(dir) = &self.data {
            return Ok(read_verifier(&dir.join("log.vkey"))?);
        }
        let client = client.ok_or_else(|| CliError("no log key".into()))?;
        eprintln!("warning: no --log-vkey; checking the receipt with the key the server reports");
        let response = client.get("/v1/log").await?;
        let info: serde_json::Value =
            serde_json::from_slice(&response.body).context(|| "reading /v1/log".into())?;
        let vkey = info
            .get("verifierKey")
            .and_then(|v| v.as_str())
            .ok_or_else(|| CliError("/v1/log has no verifierKey".into()))?;
        Ok(Verifier::from_vkey(vkey)?)
    }
}

/// Submits `envelope` to `endpoint` on the server, or to the local log, and verifies the
/// receipt it gets.
pub fn deliver(dest: &Dest, endpoint: &str, envelope: &Envelope) -> Result<Published, CliError> {
    let rt = runtime()?;
    rt.block_on(async {
        match &dest.data {
            None => {
                let client = HttpClient::new(&dest.server)?;
                let log_key = dest.log_key(Some(&client)).await?;
                submit_envelope(&client, endpoint, envelope, &log_key)
                    .await
                    .map_err(describe)
            }
            Some(dir) => {
                let local = LocalLog::open(dir)?;
                let log_key = dest.log_key(None).await?;
                let body = envelope.to_json().into_bytes();
                let submitted = intake(&local.log, Some(&local.blobs), &body, None).await;
                let result = submitted
                    .map_err(|e| describe(submit_error(e)))
                    .and_then(|s| {
                        let receipt = local.log.receipt(s.index, Some(s.tree_size))?;
                        verified(receipt, &log_key, s.duplicate)
                    });
                local.log.shutdown();
                result
            }
        }
    })
}

fn verified(receipt: Receipt, log_key: &Verifier, duplicate: bool) -> Result<Published, CliError> {
    let verified = receipt
        .verify(log_key)
        .context(|| "the local log's receipt does not verify".into())?;
    Ok(Published {
        receipt,
        verified,
        duplicate,
    })
}

fn submit_error(e: SubmitError) -> ClientError {
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

/// A refusal as a clear message: the status, the detail, and every listed problem.
pub fn describe(error: ClientError) -> CliError {
    match error {
        ClientError::Refused {
            status,
            detail,
            errors,
        } => {
            // Several problems: the list says it all (the detail only joins them).
            let mut message = if errors.len() > 1 {
                format!("refused ({status}): {} problems", errors.len())
            } else {
                format!("refused ({status}): {detail}")
            };
            if errors.len() > 1 {
                for error in errors {
                    message.push_str("\n  - ");
                    message.push_str(&error);
                }
            }
            CliError(message)
        }
        other => CliError(other.to_string()),
    }
}

/// Prints the receipt (to `out` or stdout) and a one-line summary on stderr.
pub fn finish(published: &Published, out: Option<&PathBuf>, what: &str) -> Result<(), CliError> {
    let json = published.receipt.to_json();
    match out {
        Some(path) => std::fs::write(path, format!("{json}\n"))
            .context(|| format!("writing {}", path.display()))?,
        None => println!("{json}"),
    }
    eprintln!(
        "{} {what}: entry {} at tree size {} (receipt verified)",
        if published.duplicate {
            "already logged"
        } else {
            "logged"
        },
        published.verified.index,
        published.verified.checkpoint.size
    );
    Ok(())
}

/// Canonicalizes `payload` (RFC 8785, so the same request always has the same bytes and a
/// retry is recognised as a duplicate) and signs it with the key in `key_file`.
pub fn sign_payload(
    payload: &serde_json::Value,
    key_file: &std::path::Path,
) -> Result<Envelope, CliError> {
    let signer = crate::keyfile::read_signer(key_file)?;
    let bytes = serde_jcs::to_vec(payload).context(|| "encoding the request".into())?;
    Ok(crate::catalog::sign_envelope(&bytes, &signer))
}
