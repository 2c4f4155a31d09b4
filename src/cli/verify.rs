//! `srcos-catalog verify`: offline receipt verification.

use std::path::PathBuf;

use base64::Engine as _;
use clap::Args;

use super::{CliError, Context};
use crate::catalog::format_rfc3339_ms;
use crate::keyfile::read_verifier;
use crate::note::Verifier;
use crate::receipt::Receipt;

/// Arguments of `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The log's verifier key file.
    #[arg(long)]
    log_vkey: PathBuf,
    #[command(flatten)]
    witnesses: WitnessPolicyArgs,
    /// The receipt to check.
    receipt: PathBuf,
}

/// `--witness-vkey` and `--quorum`, shared by every command that verifies a receipt.
#[derive(Debug, Args)]
pub(super) struct WitnessPolicyArgs {
    /// A witness's cosignature verifier key file (repeatable).
    #[arg(long = "witness-vkey")]
    witness_vkeys: Vec<PathBuf>,
    /// Cosignatures required from distinct known witnesses (default: 1 when witness
    /// keys are given, 0 otherwise).
    #[arg(long)]
    quorum: Option<usize>,
}

/// The witnesses `--witness-vkey` names and the quorum of them required: `--quorum`,
/// or one when any witness is given. More than there are witnesses is a usage error.
pub(super) fn witness_policy(args: &WitnessPolicyArgs) -> Result<(Vec<Verifier>, usize), CliError> {
    let witnesses = args
        .witness_vkeys
        .iter()
        .map(|path| read_verifier(path))
        .collect::<Result<Vec<_>, _>>()?;
    let quorum = args.quorum.unwrap_or(usize::from(!witnesses.is_empty()));
    if quorum > witnesses.len() {
        return Err(CliError(format!(
            "--quorum {quorum} needs at least {quorum} --witness-vkey, got {}",
            witnesses.len()
        )));
    }
    Ok((witnesses, quorum))
}

/// Verifies and prints a one-line summary.
pub fn run(args: VerifyArgs) -> Result<(), CliError> {
    let log_key = read_verifier(&args.log_vkey)?;
    let (witnesses, quorum) = witness_policy(&args.witnesses)?;
    let bytes =
        std::fs::read(&args.receipt).context(|| format!("reading {}", args.receipt.display()))?;
    let receipt = Receipt::from_json(&bytes).context(|| args.receipt.display().to_string())?;
    let witnessed = receipt
        .verify_with_witnesses(&log_key, &witnesses, quorum)
        .context(|| format!("{} does not verify", args.receipt.display()))?;
    let verified = &witnessed.receipt;
    println!(
        "OK: entry {} (leaf {}) is in {} at tree size {} (root {})",
        verified.index,
        hex::encode(verified.leaf_hash),
        verified.checkpoint.origin,
        verified.checkpoint.size,
        base64::engine::general_purpose::STANDARD.encode(verified.checkpoint.root)
    );
    for cosigner in &witnessed.cosigners {
        let seconds = cosigner.timestamp.unwrap_or(0);
        let time = format_rfc3339_ms(seconds.saturating_mul(1000))
            .unwrap_or_else(|| format!("{seconds} s after the epoch"));
        println!("cosigned by {} at {time}", cosigner.verifier.short_id());
    }
    if !witnesses.is_empty() {
        println!(
            "witnesses: {} of {} known cosigned (quorum {quorum})",
            witnessed.cosigners.len(),
            witnesses.len()
        );
    }
    Ok(())
}
