//! `srcos-catalog request from-reports`: a v1 request from a socios reports tree, checked
//! exactly as the authority will check it.
//!
//! May import `reports` (the importer) and `catalog` (through its root).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{CliError, Context};
use crate::reports::from_reports;

/// `request` subcommands.
#[derive(Debug, Subcommand)]
pub enum RequestCommand {
    /// Build a CatalogPublicationRequest from a socios `.workstation/reports` tree.
    FromReports(FromReportsArgs),
}

/// Arguments of `request from-reports`.
#[derive(Debug, Args)]
pub struct FromReportsArgs {
    /// The reports directory (e.g. `.workstation/reports`).
    dir: PathBuf,
    /// The published artifact: NAME@sha256:HEX.
    #[arg(long)]
    subject: String,
    /// The targetCatalogRef.
    #[arg(long)]
    target: String,
    /// The channel.
    #[arg(long, default_value = "dev")]
    channel: String,
    /// The requesterRef.
    #[arg(
        long,
        default_value = "socios://pipeline/sourceos-build-smoke-runner-image"
    )]
    requester: String,
    /// Prefix of the evidence URIs (the file's path under DIR follows it).
    #[arg(long, default_value = ".workstation/reports/")]
    uri_prefix: String,
    /// Where to write the request (default: stdout).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs a `request` subcommand.
pub fn run(command: RequestCommand) -> Result<(), CliError> {
    let RequestCommand::FromReports(args) = command;
    let made = from_reports(
        &args.dir,
        &args.subject,
        &args.target,
        &args.channel,
        &args.requester,
        &args.uri_prefix,
    )?;
    for (path, why) in &made.skipped {
        eprintln!("skipped {path}: {why}");
    }
    // Validate what was made exactly as the authority will.
    let text = serde_json::to_string_pretty(&made.request).context(|| "encoding".into())?;
    crate::catalog::parse_publication_request(text.as_bytes()).map_err(|e| {
        CliError(format!(
            "the request made from {} is invalid: {e}",
            args.dir.display()
        ))
    })?;
    match &args.out {
        Some(path) => std::fs::write(path, format!("{text}\n"))
            .context(|| format!("writing {}", path.display()))?,
        None => println!("{text}"),
    }
    eprintln!(
        "request: {} evidence item(s) from {} file(s) under {}",
        made.request["evidence"].as_array().map_or(0, Vec::len),
        made.used.len(),
        args.dir.display()
    );
    Ok(())
}
