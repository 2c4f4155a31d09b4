//! `srcos-catalog verify`: offline receipt verification; with `--log URL`, also that the
//! log (a server, or a static tlog-tiles copy such as the bucket) still holds the entry:
//! its current signed checkpoint is proven consistent with the receipt's (by the
//! monitor's comparison, from the hash tiles where there is no proof API).

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
    /// Also check against the log now: the base URL of a server or of a static copy of
    /// its tiles (`http://host/BUCKET/PREFIX`); its checkpoint must extend the receipt's.
    #[arg(long, value_name = "URL")]
    log: Option<String>,
    /// Longest wait for one HTTP answer with `--log`.
    #[arg(long, default_value = "10s", value_parser = super::monitor::parse_duration)]
    timeout: std::time::Duration,
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
    if let Some(url) = &args.log {
        let current = still_in_log(url, &log_key, &receipt.checkpoint, args.timeout)?;
        println!(
            "the log at {url} is at size {}, consistent with the receipt's checkpoint",
            current.size
        );
    }
    Ok(())
}

/// The log's current checkpoint at `url`, proven consistent with `signed` (the
/// receipt's checkpoint): one monitor poll from a state holding only `signed`.
fn still_in_log(
    url: &str,
    log_key: &Verifier,
    signed: &str,
    timeout: std::time::Duration,
) -> Result<crate::note::Checkpoint, CliError> {
    use crate::client::monitor::state::MonitorState;
    use crate::client::monitor::{AuditRecords, Monitor, MonitorOptions, PollOutcome};
    let (checkpoint, _) = crate::note::open_checkpoint(signed.as_bytes(), log_key)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let state =
        std::env::temp_dir().join(format!("srcos-verify-{}-{nanos}.json", std::process::id()));
    let seed = MonitorState {
        note: signed.as_bytes().to_vec(),
        checkpoint,
        last_reached_ms: 0,
        entries: None,
    };
    seed.save(&state, log_key)
        .context(|| format!("writing {}", state.display()))?;
    let options = MonitorOptions {
        server: url.to_string(),
        log_key: log_key.clone(),
        state: state.clone(),
        audit: false,
        audit_records: AuditRecords::default(),
        watch_subjects: Vec::new(),
        unreachable_after: std::time::Duration::ZERO,
        request_timeout: timeout,
    };
    let rt = super::runtime()?;
    let outcome = Monitor::open(options).and_then(|mut monitor| rt.block_on(monitor.poll()));
    let _ = std::fs::remove_file(&state);
    match outcome
        .context(|| format!("checking against {url}"))?
        .outcome
    {
        PollOutcome::Unchanged(current) | PollOutcome::Grown(current, _) => Ok(current),
        PollOutcome::First(_) => Err(CliError("the monitor lost its seed state".into())),
        PollOutcome::Unreachable(_, why) => Err(CliError(format!("{url}: {why}"))),
    }
}
