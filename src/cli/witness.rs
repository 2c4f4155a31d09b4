//! `srcos-catalog witness`: run a C2SP tlog-witness for one or more logs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::serve::{bind, shutdown_signal};
use super::witnessing::split_pair;
use super::{runtime, CliError, Context};
use crate::keyfile::{read_signer, read_verifier};
use crate::witness::state::{origin_hash, StateDir};
use crate::witness::{server, Witness};

/// Arguments of `witness`.
#[derive(Debug, Args)]
pub struct WitnessArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7380")]
    listen: SocketAddr,
    /// The witness's private key file (a cosignature key: `keygen --witness`).
    #[arg(long)]
    key: PathBuf,
    /// A log to witness, as ORIGIN=VKEY_FILE (repeatable; the origin must not contain
    /// `=`; the file holds the log's Ed25519 verifier key).
    #[arg(long = "log", required = true)]
    logs: Vec<String>,
    /// Directory of the witness's durable state (one file per log).
    #[arg(long, default_value = "./witness-state")]
    state: PathBuf,
    /// Connection limits.
    #[command(flatten)]
    connections: super::connections::ConnectionArgs,
    /// The log format.
    #[command(flatten)]
    log_format: super::ops::LogArgs,
}

/// Opens the state, serves until SIGTERM/SIGINT.
pub fn run(args: WitnessArgs) -> Result<(), CliError> {
    super::ops::init_tracing(args.log_format.log_format);
    super::ops::install_metrics()?;
    let signer = read_signer(&args.key)?;
    let mut logs = Vec::new();
    for spec in &args.logs {
        let (origin, path) = split_pair(spec, "--log", "ORIGIN=VKEY_FILE")?;
        logs.push((origin, read_verifier(&path)?));
    }
    let state = StateDir::open(&args.state)
        .context(|| format!("opening the state directory {}", args.state.display()))?;
    let witness =
        Arc::new(Witness::open(signer, logs, state).context(|| "opening the witness".into())?);

    let rt = runtime()?;
    rt.block_on(async {
        let (listener, local) = bind(args.listen).await?;
        println!("witness verifier key: {}", witness.verifier().to_vkey());
        for (origin, size) in witness.followed().await {
            println!(
                "log: {origin} (latest cosigned size {size}; GET /{}/checkpoint)",
                origin_hash(&origin)
            );
        }
        println!("listening on http://{local}");
        let limits = args.connections.limits();
        tokio::spawn(crate::telemetry::upkeep());
        server::serve_limited(witness.clone(), listener, &limits, shutdown_signal())
            .await
            .context(|| "serving HTTP".into())
    })?;
    tracing::info!("stopped");
    Ok(())
}
