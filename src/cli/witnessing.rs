//! The `serve` options that make the log collect witness cosignatures.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::CliError;
use crate::keyfile::read_verifier;
use crate::log::witnessing::{BelowQuorum, WitnessEndpoint, WitnessingOptions};

/// What the log serves while its newest checkpoint is below the witness quorum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BelowQuorumArg {
    /// Serve the newest checkpoint with whatever cosignatures it has.
    FailOpen,
    /// Serve only checkpoints that reached the quorum; receipts wait for one (503 after
    /// --hold-back-wait-ms).
    HoldBack,
}

/// Witness options of `serve`.
#[derive(Debug, Args)]
pub struct WitnessingArgs {
    /// A witness to ask for cosignatures, as URL=VKEY_FILE (repeatable). URL is its
    /// submission prefix (`/add-checkpoint` is appended) and must not contain `=`.
    #[arg(long = "witness")]
    witnesses: Vec<String>,
    /// How many distinct witnesses must cosign a checkpoint (default 1).
    #[arg(long, default_value_t = 1)]
    witness_quorum: usize,
    /// What to serve below the quorum.
    #[arg(long, value_enum, default_value_t = BelowQuorumArg::FailOpen)]
    below_quorum: BelowQuorumArg,
    /// Longest wait for one witness exchange, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    witness_timeout_ms: u64,
    /// In hold-back mode, the longest a receipt waits for a quorum checkpoint covering
    /// its entry before the answer is 503, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    hold_back_wait_ms: u64,
}

impl WitnessingArgs {
    /// The witnessing options, or `None` if no witness is given.
    pub fn options(&self) -> Result<Option<WitnessingOptions>, CliError> {
        if self.witnesses.is_empty() {
            return Ok(None);
        }
        let mut witnesses = Vec::new();
        for spec in &self.witnesses {
            let (url, path) = split_pair(spec, "--witness", "URL=VKEY_FILE")?;
            witnesses.push(WitnessEndpoint {
                url,
                key: read_verifier(&path)?,
            });
        }
        let options = WitnessingOptions {
            witnesses,
            quorum: self.witness_quorum,
            below_quorum: match self.below_quorum {
                BelowQuorumArg::FailOpen => BelowQuorum::FailOpen,
                BelowQuorumArg::HoldBack => BelowQuorum::HoldBack,
            },
            timeout: Duration::from_millis(self.witness_timeout_ms.max(1)),
            hold_back_wait: Duration::from_millis(self.hold_back_wait_ms),
        };
        options.validate()?;
        Ok(Some(options))
    }
}

/// Splits `NAME=FILE` at the first `=`.
pub(super) fn split_pair(
    spec: &str,
    flag: &str,
    shape: &str,
) -> Result<(String, PathBuf), CliError> {
    match spec.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((name.to_string(), PathBuf::from(path)))
        }
        _ => Err(CliError(format!("{flag} {spec:?} is not {shape}"))),
    }
}

/// Starts witnessing on the current runtime and prints what it does.
pub(super) fn start(
    log: std::sync::Arc<crate::log::Log>,
    options: WitnessingOptions,
) -> Result<std::sync::Arc<crate::log::witnessing::Witnessing>, CliError> {
    for w in &options.witnesses {
        println!("witness: {} ({})", w.url, w.key.short_id());
    }
    println!(
        "witness quorum: {} of {}, below quorum: {}",
        options.quorum,
        options.witnesses.len(),
        match options.below_quorum {
            BelowQuorum::FailOpen => "fail-open",
            BelowQuorum::HoldBack => "hold-back",
        }
    );
    Ok(crate::log::witnessing::Witnessing::start(log, options)?)
}
