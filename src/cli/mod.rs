//! The `srcos-catalog` command line. Only this module knows argv; each subcommand is a
//! thin layer over the library (argument parsing, choosing backends, printing) and
//! reports errors with their context.
//!
//! The commands that talk to the authority (`grant`, `publish`, the decisions, `policy`)
//! choose one [`crate::client::Authority`] in `dest` (a server or a local log) and never
//! branch on which it is for anything but what they print.
//!
//! May import every module of the crate; nothing imports it but `main.rs`.

mod backends;
mod check;
mod config;
mod connections;
mod decide;
mod dest;
mod from_reports;
mod fsck;
mod keygen;
mod loadgen;
mod manual;
mod mirror;
mod monitor;
mod ops;
mod progress;
mod replay;
mod serve;
mod submit;
mod verify;
mod witness;
mod witnessing;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Catalog publication authority for SourceOS/SociOS build evidence.
#[derive(Debug, Parser)]
#[command(name = "srcos-catalog", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a key pair: PREFIX.key (mode 0600) and PREFIX.vkey.
    Keygen(keygen::KeygenArgs),
    /// Run the authority's HTTP server on a data directory (created on first start).
    Serve(Box<serve::ServeArgs>),
    /// Grant a key the publisher or reviewer role under target prefixes and channels.
    Grant(submit::GrantArgs),
    /// Sign a publication request, submit it, verify the receipt, and save it.
    Publish(submit::PublishArgs),
    /// Build a publication request (`request from-reports DIR ...`).
    #[command(subcommand)]
    Request(from_reports::RequestCommand),
    /// Approve or deny an entry for a channel (a reviewer).
    Review(decide::ReviewArgs),
    /// Move an entry to the next channel, if that channel's policy is met.
    Promote(decide::PromoteArgs),
    /// Set an entry's status: superseded, restricted, archived or revoked.
    Status(decide::StatusArgs),
    /// Revoke every grant of a key, for good (an admin).
    Revoke(decide::RevokeArgs),
    /// Set or show the channel policy.
    #[command(subcommand)]
    Policy(decide::PolicyCommand),
    /// Rebuild the catalog from the log's entries, check the root, compare with the live state.
    Replay(replay::ReplayArgs),
    /// Verify a receipt offline with the log's verifier key.
    Verify(verify::VerifyArgs),
    /// Check offline, from a state proof, that a subject is published on a channel
    /// (exit 0) or say why not (exit 1).
    Check(check::CheckArgs),
    /// Recompute every tile and the root from the entries and check them.
    Fsck(fsck::FsckArgs),
    /// Run a C2SP tlog-witness that cosigns consistent checkpoints of the given logs.
    Witness(witness::WitnessArgs),
    /// Copy a log between a data directory and a bucket, verified, resumable.
    Mirror(mirror::MirrorArgs),
    /// Follow a log, prove it append-only, and optionally audit every admission.
    Monitor(monitor::MonitorArgs),
    /// Drive a server with signed publications and report throughput and latency.
    Loadgen(loadgen::LoadgenArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(manual::CompletionsArgs),
    /// Print the manual page (roff), every subcommand included: `srcos-catalog man | man -l -`.
    Man,
}

/// A CLI failure: a message with its context, printed as `error: …`.
#[derive(Debug)]
pub struct CliError(pub String);

impl<E: std::fmt::Display> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError(e.to_string())
    }
}

/// Adds context to an error.
pub(crate) trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, CliError>;
}

impl<T, E: std::fmt::Display> Context<T> for Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, CliError> {
        self.map_err(|e| CliError(format!("{}: {e}", what())))
    }
}

/// A flag value that is not one of the names it may take.
#[derive(Debug, thiserror::Error)]
#[error("{value:?} is not one of {allowed}")]
pub struct UnknownValue {
    value: String,
    allowed: &'static str,
}

/// Parses a flag value by its wire name (how the payload spells the enum in JSON), so the
/// flag takes exactly the names the authority does.
pub(crate) fn wire_name<T: serde::de::DeserializeOwned>(
    value: &str,
    allowed: &'static str,
) -> Result<T, UnknownValue> {
    serde_json::from_value(serde_json::Value::String(value.to_string())).map_err(|_| UnknownValue {
        value: value.to_string(),
        allowed,
    })
}

/// The data directory used when `--data` is not given.
pub fn default_data_dir() -> PathBuf {
    PathBuf::from("./catalog-data")
}

/// Parses argv and runs the command; returns the process exit code.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keygen(args) => keygen::run(args),
        Command::Serve(args) => serve::run(*args),
        Command::Grant(args) => submit::run_grant(args),
        Command::Publish(args) => submit::run_publish(args),
        Command::Request(command) => from_reports::run(command),
        Command::Review(args) => decide::run_review(args),
        Command::Promote(args) => decide::run_promote(args),
        Command::Status(args) => decide::run_status(args),
        Command::Revoke(args) => decide::run_revoke(args),
        Command::Policy(command) => decide::run_policy(command),
        Command::Replay(args) => replay::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Fsck(args) => fsck::run(args),
        Command::Witness(args) => witness::run(args),
        Command::Mirror(args) => mirror::run(args),
        // The monitor has its own exit status for alerts.
        Command::Monitor(args) => return monitor::run(args),
        // `check` answers yes (0) or no (1), with the reason.
        Command::Check(args) => return check::run(args),
        Command::Loadgen(args) => loadgen::run(args),
        Command::Completions(args) => manual::run_completions(args),
        Command::Man => manual::run_man(),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(CliError(message)) => {
            eprintln!("error: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A multi-threaded tokio runtime for commands that talk HTTP.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context(|| "starting the async runtime".into())
}
