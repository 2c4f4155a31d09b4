//! `srcos-catalog monitor`: follow a log, prove it append-only, optionally audit every
//! admission and report catalog events for watched subjects.
//!
//! Exit status: 0 when every poll verified (or the server was unreachable for less than
//! `--unreachable-after`), 1 on a usage or local error, 2 on an alert (the evidence is
//! printed on stdout).
//!
//! May import `client::monitor` and `keyfile`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use clap::Args;

use super::serve::shutdown_signal;
use super::{runtime, CliError};
use crate::client::monitor::{
    AuditRecords, Monitor, MonitorError, MonitorOptions, PollOutcome, PollReport,
};
use crate::keyfile::read_verifier;
use crate::storage::records::scratch_records;

/// Exit status of an alert.
const ALERT_EXIT: u8 = 2;

/// Arguments of `monitor`.
#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// The log server or a static tlog-tiles mirror of it.
    #[arg(long)]
    server: String,
    /// The log's verifier key file.
    #[arg(long)]
    log_vkey: PathBuf,
    /// The state file (last verified checkpoint); created on first use.
    #[arg(long)]
    state: PathBuf,
    /// Poll once and exit.
    #[arg(long, conflicts_with = "interval")]
    once: bool,
    /// Time between polls (e.g. 500ms, 30s, 5m, 1h).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    interval: Duration,
    /// Alert when no verifiable checkpoint was obtained for this long.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    unreachable_after: Duration,
    /// Longest wait for one HTTP answer.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// Read every entry from the tiles and re-check every admission.
    #[arg(long)]
    audit: bool,
    /// Where `--audit` keeps the records of the catalog it rebuilds, on disk so that its
    /// memory does not grow with the log (about 1.7 KB per entry, removed on exit;
    /// default: the system's temporary directory).
    #[arg(long, value_name = "DIR", requires = "audit")]
    scratch: Option<PathBuf>,
    /// Report catalog events for a subject: subject=NAME (repeatable).
    #[arg(long = "watch", value_parser = parse_watch)]
    watch: Vec<String>,
}

/// A duration flag that is not one.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a duration like 500ms, 30s, 5m or 1h")]
pub(super) struct BadDuration(String);

/// A `--watch` that is not `subject=NAME`.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not subject=NAME")]
struct BadWatch(String);

/// Parses `500ms`, `30s`, `5m`, `1h`, or a bare number of seconds.
pub(super) fn parse_duration(text: &str) -> Result<Duration, BadDuration> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| BadDuration(text.to_string()))?;
    let ms = match unit {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => None,
    };
    ms.map(Duration::from_millis)
        .ok_or_else(|| BadDuration(text.to_string()))
}

fn parse_watch(text: &str) -> Result<String, BadWatch> {
    match text.split_once('=') {
        Some(("subject", name)) if !name.is_empty() => Ok(name.to_string()),
        _ => Err(BadWatch(text.to_string())),
    }
}

/// Runs the monitor; returns the exit status (see the module documentation).
pub fn run(args: MonitorArgs) -> ExitCode {
    if args.audit {
        super::progress::install();
    }
    match monitor(args) {
        Ok(code) => code,
        Err(CliError(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn monitor(args: MonitorArgs) -> Result<ExitCode, CliError> {
    let options = MonitorOptions {
        server: args.server.clone(),
        log_key: read_verifier(&args.log_vkey)?,
        state: args.state.clone(),
        audit: args.audit,
        audit_records: AuditRecords(Some(scratch_records(
            args.scratch.clone().unwrap_or_else(std::env::temp_dir),
        ))),
        watch_subjects: args.watch.clone(),
        unreachable_after: args.unreachable_after,
        request_timeout: args.timeout,
    };
    let mut monitor = Monitor::open(options)?;
    if let Some(last) = monitor.last_verified() {
        println!("state: last verified {} at size {}", last.origin, last.size);
    }
    let rt = runtime()?;
    rt.block_on(async {
        let shutdown = shutdown_signal();
        tokio::pin!(shutdown);
        loop {
            match monitor.poll().await {
                Ok(report) => {
                    print_report(&report);
                    monitor
                        .save()
                        .map_err(|e| CliError(format!("saving the monitor state: {e}")))?;
                }
                Err(MonitorError::Alert(alert)) => {
                    print!("{alert}");
                    return Ok(ExitCode::from(ALERT_EXIT));
                }
                Err(other) => return Err(CliError(other.to_string())),
            }
            if args.once {
                return Ok(ExitCode::SUCCESS);
            }
            tokio::select! {
                _ = tokio::time::sleep(args.interval) => {}
                _ = &mut shutdown => return Ok(ExitCode::SUCCESS),
            }
        }
    })
}

fn print_report(report: &PollReport) {
    match &report.outcome {
        PollOutcome::First(c) => println!(
            "ok: first checkpoint of {} at size {} (root {}), trusted on first use",
            c.origin,
            c.size,
            BASE64.encode(c.root)
        ),
        PollOutcome::Unchanged(c) => println!("ok: {} unchanged at size {}", c.origin, c.size),
        PollOutcome::Grown(c, from) => println!(
            "ok: {} grew from size {from} to {} (root {}), consistency verified",
            c.origin,
            c.size,
            BASE64.encode(c.root)
        ),
        PollOutcome::Unreachable(for_how_long, reason) => println!(
            "warning: no verifiable checkpoint for {} s: {reason}",
            for_how_long.as_secs()
        ),
    }
    if let Some(scan) = &report.scan {
        if scan.to > scan.from {
            let audited = match scan.audited {
                0 => String::new(),
                n => format!("; {n} admissions re-checked"),
            };
            println!(
                "entries {}..{} match the tiles and the root{audited}",
                scan.from, scan.to
            );
        }
        for event in &scan.events {
            println!("event {}", event.to_json());
        }
    }
}
