//! Where a command's requests go, and the steps every submitting command shares.
//!
//! Owns the `--server URL` / `--data DIR` / `--log-vkey F` flags: [`open_authority`]
//! chooses the [`Authority`] once per command (a server, or a local log opened once,
//! appended with the same admission code, for disconnected builds), and this file signs
//! payloads, submits them, verifies and prints the receipt, and describes refusals.
//!
//! May import `client` (the authority and its two implementations), `catalog` (through
//! its root), `keyfile` and `note`.

use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;

use super::{runtime, CliError, Context};
use crate::catalog::{sign_envelope, Envelope, SubmissionKind};
use crate::client::{
    submit_verified, Authority, ClientError, HttpAuthority, LocalAuthority, Published,
};
use crate::keyfile::read_verifier;
use crate::note::{Signer, Verifier};

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

/// The authority at `data` (a local log, opened and replayed once) or else at `server`.
pub fn open_authority(server: &str, data: Option<&Path>) -> Result<Box<dyn Authority>, CliError> {
    match data {
        Some(dir) => {
            let local = LocalAuthority::open(dir)?;
            if local.created() {
                eprintln!("created a new local log in {}", dir.display());
            }
            Ok(Box::new(local))
        }
        None => Ok(Box::new(HttpAuthority::new(server)?)),
    }
}

impl Dest {
    /// Opens the authority this command talks to.
    pub fn open(&self) -> Result<Box<dyn Authority>, CliError> {
        open_authority(&self.server, self.data.as_deref())
    }

    /// The log key: `--log-vkey`, DATA/log.vkey, or (with a warning) the server's.
    pub async fn log_key(&self, authority: &dyn Authority) -> Result<Verifier, CliError> {
        if let Some(path) = &self.log_vkey {
            return Ok(read_verifier(path)?);
        }
        if let Some(dir) = &self.data {
            return Ok(read_verifier(&dir.join("log.vkey"))?);
        }
        eprintln!("warning: no --log-vkey; checking the receipt with the key the server reports");
        let info = authority.log_info().await.map_err(describe)?;
        Ok(info.verifier()?)
    }
}

/// Submits `envelope` as a request of `kind` and verifies the receipt it gets.
pub async fn deliver(
    dest: &Dest,
    authority: &dyn Authority,
    kind: SubmissionKind,
    envelope: &Envelope,
) -> Result<Published, CliError> {
    let log_key = dest.log_key(authority).await?;
    submit_verified(authority, kind, envelope, &log_key)
        .await
        .map_err(describe)
}

/// Opens the authority, submits `envelope`, verifies the receipt and prints it: the
/// whole of a command that only submits one signed request.
pub fn submit_one(
    dest: &Dest,
    kind: SubmissionKind,
    envelope: &Envelope,
    out: Option<&PathBuf>,
    what: &str,
) -> Result<(), CliError> {
    let authority = dest.open()?;
    let rt = runtime()?;
    let published = rt.block_on(deliver(dest, authority.as_ref(), kind, envelope))?;
    finish(&published, out, what)
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
/// retry is recognised as a duplicate) and signs it with `signer`.
pub fn sign_payload<T: Serialize + ?Sized>(
    payload: &T,
    signer: &Signer,
) -> Result<Envelope, CliError> {
    let bytes = serde_jcs::to_vec(payload).context(|| "encoding the request".into())?;
    Ok(sign_envelope(&bytes, signer))
}
