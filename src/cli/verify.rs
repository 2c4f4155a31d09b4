//! `srcos-catalog verify`: offline receipt verification.

use std::path::PathBuf;

use base64::Engine as _;
use clap::Args;

use super::{CliError, Context};
use crate::keyfile::read_verifier;
use crate::receipt::Receipt;

/// Arguments of `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The log's verifier key file.
    #[arg(long)]
    log_vkey: PathBuf,
    /// The receipt to check.
    receipt: PathBuf,
}

/// Verifies and prints a one-line summary.
pub fn run(args: VerifyArgs) -> Result<(), CliError> {
    let log_key = read_verifier(&args.log_vkey)?;
    let bytes =
        std::fs::read(&args.receipt).context(|| format!("reading {}", args.receipt.display()))?;
    let receipt = Receipt::from_json(&bytes).context(|| args.receipt.display().to_string())?;
    let verified = receipt
        .verify(&log_key)
        .context(|| format!("{} does not verify", args.receipt.display()))?;
    println!(
        "OK: entry {} (leaf {}) is in {} at tree size {} (root {})",
        verified.index,
        hex::encode(verified.leaf_hash),
        verified.checkpoint.origin,
        verified.checkpoint.size,
        base64::engine::general_purpose::STANDARD.encode(verified.checkpoint.root)
    );
    Ok(())
}
