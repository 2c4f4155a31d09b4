//! The monitor: follows a log's `/checkpoint`, proves each new checkpoint consistent
//! with the last one it verified, remembers that one durably, and raises an [`Alert`]
//! with the conflicting signed checkpoints as evidence when the log misbehaves.
//!
//! - `state`: the state file (last verified checkpoint, entries cursor).
//! - `tiles`: reading tiles, and proofs and roots computed from them.
//! - `audit`: reading every entry from the tiles, checking it, re-checking admissions.
//! - `watch`: catalog events for watched subjects.
//! - `alert`: alerts and their evidence.
//! - `consistency`: rollback, fork, or growth proven consistent (from the API or the
//!   hash tiles).
//!
//! May import `http` (the client and routes), `merkle`, `note`, `tiles`,
//! `storage::durable` (the state file) and the `catalog` root (the audit re-runs
//! admission with the server's own code); never `api`, `log` or `cli`.

mod alert;
mod audit;
mod consistency;
pub mod state;
mod tiles;
mod watch;

use std::path::PathBuf;
use std::time::Duration;

use crate::http::{routes, HttpClient, HttpError};
use crate::note::{open_checkpoint, Checkpoint, Verifier, MAX_NOTE_SIZE};
pub use alert::{Alert, AlertKind, Evidence};
pub use audit::{AuditRecords, ScanReport};
use audit::{ScanError, Scanner};
use consistency::ProofFailure;
use state::{MonitorState, StateFileError};
use tiles::{FetchError, Fetcher};
pub use watch::WatchEvent;

/// How to monitor.
#[derive(Debug, Clone)]
pub struct MonitorOptions {
    /// The server or mirror base URL (`http://host:port`).
    pub server: String,
    /// The log's verifier key.
    pub log_key: Verifier,
    /// The state file.
    pub state: PathBuf,
    /// Read every entry and re-check every admission.
    pub audit: bool,
    /// Where the audit keeps the catalog it rebuilds.
    pub audit_records: AuditRecords,
    /// Subject names whose catalog events to report.
    pub watch_subjects: Vec<String>,
    /// How long the server may fail to answer with a verifiable checkpoint before that
    /// is an alert (counted from the last success recorded in the state file).
    pub unreachable_after: Duration,
    /// Longest wait for one HTTP answer.
    pub request_timeout: Duration,
}

/// The monitor could not run (as opposed to an [`Alert`] about the log).
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The log misbehaved, or was unreachable for too long.
    #[error("{0}")]
    Alert(Box<Alert>),
    /// The state file is unusable.
    #[error(transparent)]
    State(#[from] StateFileError),
    /// The server URL is unusable.
    #[error(transparent)]
    Http(#[from] HttpError),
}

impl From<Alert> for MonitorError {
    fn from(alert: Alert) -> MonitorError {
        MonitorError::Alert(Box::new(alert))
    }
}

/// What one poll found.
#[derive(Debug, Clone)]
pub enum PollOutcome {
    /// The first checkpoint, accepted on first use (there was no state).
    First(Checkpoint),
    /// The same checkpoint as before.
    Unchanged(Checkpoint),
    /// A larger checkpoint, proven consistent with the previous one (its size).
    Grown(Checkpoint, u64),
    /// No verifiable answer, for less than the alert threshold (how long, and why).
    Unreachable(Duration, String),
}

/// What one poll found, and what the entry scan did.
#[derive(Debug, Clone)]
pub struct PollReport {
    /// The checkpoint outcome.
    pub outcome: PollOutcome,
    /// The entry scan, with `--audit` or `--watch`.
    pub scan: Option<ScanReport>,
}

/// A monitor of one log.
pub struct Monitor {
    options: MonitorOptions,
    client: HttpClient,
    state: Option<MonitorState>,
    scanner: Option<Scanner>,
    started_ms: u64,
    /// What the last successful poll verified, until [`Monitor::save`] persists it.
    pending: Option<MonitorState>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Monitor {
    /// Loads the state (if any) and prepares the client.
    pub fn open(options: MonitorOptions) -> Result<Monitor, MonitorError> {
        let client = HttpClient::new(&options.server)?;
        let state = MonitorState::load(&options.state, &options.log_key)?;
        let scanner = (options.audit || !options.watch_subjects.is_empty()).then(|| {
            Scanner::new(
                state.as_ref().and_then(|s| s.entries.clone()),
                options.audit,
                options.audit_records.clone(),
                options.log_key.clone(),
                options.watch_subjects.clone(),
            )
        });
        Ok(Monitor {
            options,
            client,
            state,
            scanner,
            started_ms: now_ms(),
            pending: None,
        })
    }

    /// The last verified checkpoint, if any.
    pub fn last_verified(&self) -> Option<&Checkpoint> {
        self.state.as_ref().map(|s| &s.checkpoint)
    }

    /// Fetches, verifies and records the current checkpoint (and scans the entries
    /// when asked). The state file changes only after everything verified.
    pub async fn poll(&mut self) -> Result<PollReport, MonitorError> {
        let fetch = Fetcher::new(&self.client, self.options.request_timeout);
        let served = match self.fetch_checkpoint(&fetch).await {
            Ok(served) => served,
            Err(reason) => return self.unreachable(reason.to_string()),
        };
        let (checkpoint, _) = open_checkpoint(&served, &self.options.log_key).map_err(|e| {
            self.evidence(
                Alert::new(
                    AlertKind::BadSignature,
                    format!("the served checkpoint does not verify with the log key: {e}"),
                ),
                &served,
            )
        })?;
        let outcome = match &self.state {
            None => PollOutcome::First(checkpoint.clone()),
            Some(last) => match consistency::compare(&fetch, last, &checkpoint).await {
                Ok(outcome) => outcome,
                Err(ProofFailure::Unreachable(reason)) => return self.unreachable(reason),
                Err(ProofFailure::Alert(kind, detail)) => {
                    return Err(self.evidence(Alert::new(kind, detail), &served).into())
                }
            },
        };
        let scan = match &mut self.scanner {
            None => None,
            Some(scanner) => match scanner.scan(&fetch, &checkpoint).await {
                Ok(report) => Some(report),
                Err(ScanError::Unreachable(reason)) => return self.unreachable(reason),
                Err(ScanError::Alert(detail)) => {
                    let alert = Alert::new(AlertKind::Audit, detail);
                    return Err(self.evidence(alert, &served).into());
                }
                Err(ScanError::BadStateCommitment(detail, entry)) => {
                    let alert = Alert::new(AlertKind::BadStateCommitment, detail)
                        .with("state commitment entry", &entry);
                    return Err(self.evidence(alert, &served).into());
                }
            },
        };
        let state = MonitorState {
            note: served,
            checkpoint,
            last_reached_ms: now_ms(),
            entries: self
                .scanner
                .as_ref()
                .map(|s| s.cursor().clone())
                .or_else(|| self.state.as_ref().and_then(|s| s.entries.clone())),
        };
        // Not saved yet: the caller reports the events first and then calls `save`, so a
        // crash in between re-reports them instead of losing them (at least once).
        self.pending = Some(state);
        Ok(PollReport { outcome, scan })
    }

    /// Persists what the last successful [`Monitor::poll`] verified (atomically); call it
    /// after reporting that poll's events. Does nothing if there is nothing new.
    pub fn save(&mut self) -> Result<(), MonitorError> {
        if let Some(state) = self.pending.take() {
            state.save(&self.options.state, &self.options.log_key)?;
            self.state = Some(state);
        }
        Ok(())
    }

    /// Adds the last verified checkpoint and the served bytes to an alert.
    fn evidence(&self, alert: Alert, served: &[u8]) -> Alert {
        let alert = match &self.state {
            Some(last) => alert.with("last verified checkpoint", &last.note),
            None => alert,
        };
        alert.with("served checkpoint", served)
    }

    /// No verifiable answer: a warning until the threshold, then an alert.
    fn unreachable(&self, reason: String) -> Result<PollReport, MonitorError> {
        let since = self
            .state
            .as_ref()
            .map_or(self.started_ms, |s| s.last_reached_ms);
        let down_for = Duration::from_millis(now_ms().saturating_sub(since));
        if down_for < self.options.unreachable_after {
            return Ok(PollReport {
                outcome: PollOutcome::Unreachable(down_for, reason),
                scan: None,
            });
        }
        let mut alert = Alert::new(
            AlertKind::Unreachable,
            format!(
                "no verifiable checkpoint from {} for {} s (threshold {} s): {reason}",
                self.options.server,
                down_for.as_secs(),
                self.options.unreachable_after.as_secs()
            ),
        );
        if let Some(last) = &self.state {
            alert = alert.with("last verified checkpoint", &last.note);
        }
        Err(alert.into())
    }

    async fn fetch_checkpoint(&self, fetch: &Fetcher<'_>) -> Result<Vec<u8>, CheckpointFetch> {
        let (status, body) = fetch.get(routes::CHECKPOINT).await?;
        if status != 200 {
            return Err(CheckpointFetch::Status(status));
        }
        if body.len() > MAX_NOTE_SIZE {
            return Err(CheckpointFetch::TooLarge(body.len()));
        }
        Ok(body)
    }
}

/// Why the served checkpoint could not be fetched (the monitor counts it as unreachable).
#[derive(Debug, thiserror::Error)]
enum CheckpointFetch {
    /// The request failed.
    #[error("{0}")]
    Fetch(#[from] FetchError),
    /// The server answered with another status than 200.
    #[error("GET /checkpoint: HTTP {0}")]
    Status(u16),
    /// The answer is larger than any note we parse.
    #[error("GET /checkpoint: {0} bytes")]
    TooLarge(usize),
}
