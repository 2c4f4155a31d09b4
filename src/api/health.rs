//! `GET /healthz` (the process answers) and `GET /readyz` (it can do its job): the log is
//! open and takes writes, the data volume keeps the disk reserve, and the witness quorum
//! is met when the log requires one (`--below-quorum hold-back`).
//!
//! May import `super` (the app state), `log::witnessing` (its snapshot) and the blob
//! store's free-space probe.

use std::path::PathBuf;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use serde::Serialize;

use super::AppState;
use crate::log::witnessing::{BelowQuorum, Witnessing};
use crate::storage::blobs::quota::free_bytes;

/// What the operational endpoints know beyond [`AppState`].
#[derive(Clone, Default)]
pub struct Operations {
    /// The data directory, whose volume must keep `reserve_bytes` free (`None`: the disk
    /// check is skipped).
    pub data_dir: Option<PathBuf>,
    /// Free bytes the data volume must keep (the blob store's reserve).
    pub reserve_bytes: u64,
    /// The metrics recorder rendered at `GET /metrics` (`None`: 404 on this listener).
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

/// One readiness check.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Check {
    /// `log`, `disk` or `witness-quorum`.
    pub name: &'static str,
    /// Whether it passes.
    pub ok: bool,
    /// What was found.
    pub detail: String,
}

/// The `/readyz` body.
#[derive(Debug, Serialize)]
struct Readiness {
    ready: bool,
    /// The names of the failing checks.
    failing: Vec<&'static str>,
    checks: Vec<Check>,
}

/// `GET /healthz`: 200 while the process answers.
pub async fn healthz() -> Response {
    json(StatusCode::OK, "{\"status\":\"alive\"}\n".to_string())
}

/// `GET /readyz`: 200 when every check passes, else 503; the body lists every check.
pub async fn readyz(
    State(app): State<AppState>,
    Extension(ops): Extension<Operations>,
) -> Response {
    let checks = checks(&app, &ops);
    let failing: Vec<&'static str> = checks.iter().filter(|c| !c.ok).map(|c| c.name).collect();
    let ready = failing.is_empty();
    let body = Readiness {
        ready,
        failing,
        checks,
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(status, serde_json::to_string(&body).unwrap_or_default())
}

/// Every readiness check, in a fixed order.
pub fn checks(app: &AppState, ops: &Operations) -> Vec<Check> {
    vec![
        log_check(app.log.has_failed()),
        disk_check(ops),
        quorum_check(app.witnessing.as_deref(), app.log.head().checkpoint.size),
    ]
}

fn log_check(failed: bool) -> Check {
    Check {
        name: "log",
        ok: !failed,
        detail: if failed {
            "the log is not taking writes: a commit failed (retrying, or given up until a restart)"
                .into()
        } else {
            "open and taking writes".into()
        },
    }
}

fn disk_check(ops: &Operations) -> Check {
    let Some(dir) = &ops.data_dir else {
        return Check {
            name: "disk",
            ok: true,
            detail: "no data directory to check".into(),
        };
    };
    disk_verdict(free_bytes(dir), ops.reserve_bytes)
}

/// The disk check for `free` bytes free (`None`: unreadable) against `reserve`.
fn disk_verdict(free: Option<u64>, reserve: u64) -> Check {
    let (ok, detail) = match free {
        Some(free) if free >= reserve => (true, format!("{free} bytes free, reserve {reserve}")),
        Some(free) => (
            false,
            format!("{free} bytes free, below the {reserve}-byte reserve"),
        ),
        None => (false, "the data volume's free space cannot be read".into()),
    };
    Check {
        name: "disk",
        ok,
        detail,
    }
}

fn quorum_check(witnessing: Option<&Witnessing>, head_size: u64) -> Check {
    let Some(witnessing) = witnessing else {
        return Check {
            name: "witness-quorum",
            ok: true,
            detail: "no witnesses configured".into(),
        };
    };
    let options = witnessing.options();
    let (quorum_size, newest) = quorum_state(witnessing);
    quorum_verdict(
        options.below_quorum == BelowQuorum::HoldBack,
        options.quorum,
        quorum_size,
        newest,
        head_size,
    )
}

/// The size of the newest checkpoint that reached the quorum, and the newest settled
/// checkpoint's size with its number of cosignatures.
fn quorum_state(witnessing: &Witnessing) -> (Option<u64>, Option<(u64, usize)>) {
    let snapshot = witnessing.snapshot();
    let quorum_size = snapshot.quorum.as_ref().map(|w| w.checkpoint.size);
    let newest = snapshot
        .newest
        .as_ref()
        .map(|w| (w.checkpoint.size, w.cosigners.len()));
    (quorum_size, newest)
}

/// Whether the witness quorum is met now: the head itself reached it, or the newest
/// settled checkpoint has the quorum's number of cosignatures. `/readyz` and the
/// `quorum met` gauge both ask this.
pub fn quorum_met(witnessing: &Witnessing, head_size: u64) -> bool {
    let (quorum_size, newest) = quorum_state(witnessing);
    met(witnessing.options().quorum, quorum_size, newest, head_size)
}

fn met(quorum: usize, quorum_size: Option<u64>, newest: Option<(u64, usize)>, head: u64) -> bool {
    match (quorum_size, newest) {
        (Some(q), _) if q == head => true,
        (_, Some((_, cosigners))) => cosigners >= quorum,
        _ => false,
    }
}

/// The quorum check: required only in hold-back mode, where it passes when the newest
/// settled checkpoint (or the head itself) reached the quorum.
fn quorum_verdict(
    required: bool,
    quorum: usize,
    quorum_size: Option<u64>,
    newest: Option<(u64, usize)>,
    head_size: u64,
) -> Check {
    let met = met(quorum, quorum_size, newest, head_size);
    let detail = format!(
        "quorum {quorum}{}: newest settled checkpoint {}, newest with the quorum {}, head {head_size}",
        if required { " (required: hold-back)" } else { " (not required: fail-open)" },
        newest.map_or("none".into(), |(size, n)| format!("size {size} with {n} cosignatures")),
        quorum_size.map_or("none".into(), |size| format!("size {size}")),
    );
    Check {
        name: "witness-quorum",
        ok: met || !required,
        detail,
    }
}

fn json(status: StatusCode, body: String) -> Response {
    super::read::with_headers(status, "application/json", "no-store", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_verdicts() {
        let cases = [
            (Some(100), 50, true),
            (Some(50), 50, true),
            (Some(49), 50, false),
            (None, 0, false),
        ];
        for (free, reserve, ok) in cases {
            assert_eq!(disk_verdict(free, reserve).ok, ok, "{free:?} {reserve}");
        }
    }

    #[test]
    fn quorum_verdicts() {
        // (required, quorum, quorum size, newest (size, cosigners), head, ok)
        let cases = [
            (true, 1, Some(5), Some((5, 1)), 5, true),
            (true, 2, Some(3), Some((5, 1)), 5, false),
            (true, 1, None, None, 5, false),
            (true, 2, Some(5), Some((4, 1)), 5, true),
            (false, 2, None, Some((5, 0)), 5, true),
        ];
        for (required, quorum, qsize, newest, head, ok) in cases {
            let check = quorum_verdict(required, quorum, qsize, newest, head);
            assert_eq!(check.ok, ok, "{check:?}");
        }
    }
}
