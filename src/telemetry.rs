//! Prometheus metrics: every metric's name in one place, the process-wide recorder, cheap
//! handles for the hot paths, and the HTTP middleware that counts requests by route.
//!
//! The `metrics` facade is a no-op until [`install`] sets the Prometheus recorder (the
//! `serve` and `witness` commands do, first thing); library users and tests that never
//! install it pay one relaxed atomic load per metric point. Hot paths never look a metric
//! up by name: they keep handles (a `Counter` is an `Arc` of an atomic) created once, in
//! `OnceLock`s, and label values come from fixed tables of `&'static str`, so recording a
//! request allocates nothing and takes no lock. Label values are never taken from a
//! request (a raw path, a header), whose cardinality an attacker would choose: requests
//! are labelled with the matched route *pattern*, `unmatched` for the fallback.
//!
//! The metrics and the alerts built on them are documented in `docs/operations.md`.
//!
//! May import nothing of the crate (it sits beside the pure cores; `log`, `api`,
//! `witness` and `cli` record into it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

/// The media type of the Prometheus text exposition format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Latency buckets (seconds) of every `*_seconds` histogram: 100 µs to 30 s.
const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    10.0, 30.0,
];

/// Buckets of [`names::BATCH_ENTRIES`]: powers of two up to the default `--batch-max`.
const BATCH_BUCKETS: [f64; 11] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// Every metric's name (documented in `docs/operations.md`).
pub mod names {
    /// Counter `{route, method, status}`: HTTP requests answered.
    pub const HTTP_REQUESTS: &str = "srcos_http_requests_total";
    /// Histogram `{route, method}`: time to answer an HTTP request (head, not body).
    pub const HTTP_DURATION: &str = "srcos_http_request_duration_seconds";
    /// Counter `{kind, result}`: submissions admitted (`appended` or `duplicate`).
    pub const ADMISSIONS: &str = "srcos_admissions_total";
    /// Counter `{kind, reason}`: submissions refused, by problem type.
    pub const REFUSALS: &str = "srcos_refusals_total";
    /// Histogram: entries appended per committed batch.
    pub const BATCH_ENTRIES: &str = "srcos_log_batch_entries";
    /// Gauge: submissions queued for the sequencer.
    pub const QUEUE_DEPTH: &str = "srcos_log_sequencer_queue_depth";
    /// Histogram: sequencing a batch (admission, catalog, tiles, signing).
    pub const PREPARE: &str = "srcos_log_prepare_seconds";
    /// Histogram: committing a batch, retries included.
    pub const COMMIT: &str = "srcos_log_commit_seconds";
    /// Histogram: the durable write of a batch (tiles, fsync, checkpoint swap).
    pub const FSYNC: &str = "srcos_log_durable_write_seconds";
    /// Counter: commits that failed and were retried or gave up.
    pub const COMMIT_FAILURES: &str = "srcos_log_commit_failures_total";
    /// Gauge: the committed tree size.
    pub const TREE_SIZE: &str = "srcos_log_tree_size";
    /// Gauge: Unix time of the newest committed checkpoint (this process's clock).
    pub const CHECKPOINT_TIME: &str = "srcos_log_checkpoint_timestamp_seconds";
    /// Gauge: seconds since the newest committed checkpoint, at scrape time.
    pub const CHECKPOINT_AGE: &str = "srcos_log_checkpoint_age_seconds";
    /// Gauge: 1 when the log takes writes, 0 while a commit is retried or it failed.
    pub const WRITABLE: &str = "srcos_log_writable";
    /// Histogram `{witness}`: one add-checkpoint exchange that produced a cosignature.
    pub const COSIGN: &str = "srcos_witness_cosign_seconds";
    /// Counter `{witness}`: add-checkpoint exchanges that failed (error, refusal, timeout).
    pub const COSIGN_FAILURES: &str = "srcos_witness_cosign_failures_total";
    /// Gauge: the configured witness quorum.
    pub const QUORUM: &str = "srcos_witness_quorum";
    /// Gauge: 1 when the quorum is met now (the head reached it, or the newest settled
    /// checkpoint has the quorum of cosignatures): the same rule as `/readyz`.
    pub const QUORUM_MET: &str = "srcos_witness_quorum_met";
    /// Gauge: cosignatures on the newest settled checkpoint.
    pub const COSIGNERS: &str = "srcos_witness_newest_cosigners";
    /// Gauge: size of the newest checkpoint that reached the quorum (0: none yet).
    pub const QUORUM_SIZE: &str = "srcos_witness_quorum_tree_size";
    /// Gauge: bytes of evidence blobs held.
    pub const BLOB_BYTES: &str = "srcos_blob_bytes";
    /// Gauge: evidence blobs held (recounted at most once a minute).
    pub const BLOB_COUNT: &str = "srcos_blob_count";
    /// Gauge: free bytes on the data volume.
    pub const DISK_FREE: &str = "srcos_disk_free_bytes";
    /// Gauge: the disk reserve uploads must leave free.
    pub const DISK_RESERVE: &str = "srcos_disk_reserve_bytes";
    /// Gauge: seconds from the start of `serve` to listening (replay included).
    pub const STARTUP: &str = "srcos_startup_seconds";
    /// Gauge: seconds the opening replay of the log took.
    pub const REPLAY: &str = "srcos_replay_seconds";
    /// Gauge: entries the opening replay re-indexed.
    pub const REPLAY_ENTRIES: &str = "srcos_replay_reindexed_entries";
    /// Counter `{outcome}`: add-checkpoint requests a witness answered.
    pub const WITNESS_REQUESTS: &str = "srcos_witness_add_checkpoint_total";
    /// Gauge `{origin}`: the latest size a witness cosigned for a followed log.
    pub const WITNESS_LATEST: &str = "srcos_witness_latest_cosigned_size";
    /// Gauge `{version}`: always 1.
    pub const BUILD_INFO: &str = "srcos_build_info";
}

/// The recorder could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The histogram buckets were refused.
    #[error("configuring the metrics recorder: {0}")]
    Build(#[from] BuildError),
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (once; later calls return the same
/// handle). Call it before any metric is recorded: handles made earlier stay no-ops.
pub fn install() -> Result<PrometheusHandle, InstallError> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(names::BATCH_ENTRIES.into()), &BATCH_BUCKETS)?
        .build_recorder();
    let handle = recorder.handle();
    // Another recorder already set (by an embedding program) keeps its place; this
    // handle then renders nothing of ours, which the scrape test would catch.
    let _ = metrics::set_global_recorder(recorder);
    let handle = HANDLE.get_or_init(|| handle).clone();
    metrics::gauge!(names::BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    Ok(handle)
}

/// The installed recorder's handle, if [`install`] ran.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE.get()
}

/// Drains the histograms' sample buffers every few seconds (the exporter needs it when
/// it does not run its own HTTP listener). Runs until the runtime stops.
pub async fn upkeep() {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        if let Some(handle) = HANDLE.get() {
            handle.run_upkeep();
        }
    }
}

/// Seconds since the Unix epoch, as a float.
pub fn unix_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

// ---------------------------------------------------------------------------------------
// The log engine's handles.
// ---------------------------------------------------------------------------------------

/// The log engine's metric handles, made on first use.
pub struct LogMetrics {
    /// [`names::BATCH_ENTRIES`].
    pub batch_entries: Histogram,
    /// [`names::QUEUE_DEPTH`].
    pub queue_depth: Gauge,
    /// [`names::PREPARE`].
    pub prepare: Histogram,
    /// [`names::COMMIT`].
    pub commit: Histogram,
    /// [`names::FSYNC`].
    pub durable_write: Histogram,
    /// [`names::COMMIT_FAILURES`].
    pub commit_failures: Counter,
    /// [`names::TREE_SIZE`].
    pub tree_size: Gauge,
    /// [`names::CHECKPOINT_TIME`].
    pub checkpoint_time: Gauge,
}

/// The log engine's handles.
pub fn log() -> &'static LogMetrics {
    static LOG: OnceLock<LogMetrics> = OnceLock::new();
    LOG.get_or_init(|| LogMetrics {
        batch_entries: metrics::histogram!(names::BATCH_ENTRIES),
        queue_depth: metrics::gauge!(names::QUEUE_DEPTH),
        prepare: metrics::histogram!(names::PREPARE),
        commit: metrics::histogram!(names::COMMIT),
        durable_write: metrics::histogram!(names::FSYNC),
        commit_failures: metrics::counter!(names::COMMIT_FAILURES),
        tree_size: metrics::gauge!(names::TREE_SIZE),
        checkpoint_time: metrics::gauge!(names::CHECKPOINT_TIME),
    })
}

/// Unix time (f64 bits) of the newest committed head; 0 before the first.
static HEAD_TIME: AtomicU64 = AtomicU64::new(0);

/// Records a newly committed head of `size` entries, now.
pub fn head_committed(size: u64) {
    let log = log();
    let now = unix_seconds();
    HEAD_TIME.store(now.to_bits(), Ordering::Relaxed);
    log.tree_size.set(size as f64);
    log.checkpoint_time.set(now);
}

/// Seconds since the newest head was committed (or opened), if one was.
pub fn checkpoint_age() -> Option<f64> {
    let at = f64::from_bits(HEAD_TIME.load(Ordering::Relaxed));
    (at > 0.0).then(|| (unix_seconds() - at).max(0.0))
}

/// Records a committed batch: entries appended, time to prepare and to commit it.
pub fn batch_committed(entries: usize, prepared: Duration, committed: Duration) {
    let log = log();
    log.batch_entries.record(entries as f64);
    log.prepare.record(prepared.as_secs_f64());
    log.commit.record(committed.as_secs_f64());
}

/// Records the opening replay: how long it took and how many entries it re-indexed.
pub fn replayed(took: Duration, entries: u64) {
    metrics::gauge!(names::REPLAY).set(took.as_secs_f64());
    metrics::gauge!(names::REPLAY_ENTRIES).set(entries as f64);
}

/// The cosignature handles of one witness the log asks (`witness`: its key's name).
#[derive(Clone)]
pub struct CosignMetrics {
    /// [`names::COSIGN`].
    pub latency: Histogram,
    /// [`names::COSIGN_FAILURES`].
    pub failures: Counter,
}

impl CosignMetrics {
    /// Handles labelled with `witness` (a configured name: bounded cardinality).
    pub fn new(witness: &str) -> CosignMetrics {
        let label = witness.to_string();
        CosignMetrics {
            latency: metrics::histogram!(names::COSIGN, "witness" => label.clone()),
            failures: metrics::counter!(names::COSIGN_FAILURES, "witness" => label),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Fixed label tables.
// ---------------------------------------------------------------------------------------

/// Counters `name{fixed.0=fixed.1, key=value}` over a fixed table of values, made on
/// first use.
pub struct Counters<const N: usize> {
    name: &'static str,
    fixed: (&'static str, &'static str),
    key: &'static str,
    values: [&'static str; N],
    counters: [OnceLock<Counter>; N],
}

impl<const N: usize> Counters<N> {
    /// One counter per value of `values`; make the last one a catch-all such as `other`.
    pub const fn new(
        name: &'static str,
        fixed: (&'static str, &'static str),
        key: &'static str,
        values: [&'static str; N],
    ) -> Self {
        Counters {
            name,
            fixed,
            key,
            values,
            counters: [const { OnceLock::new() }; N],
        }
    }

    /// Adds one to the counter of `value` (of the last value when it is none of them).
    pub fn increment(&self, value: &str) {
        let index = self
            .values
            .iter()
            .position(|v| *v == value)
            .unwrap_or(N.saturating_sub(1));
        if let (Some(slot), Some(&value)) = (self.counters.get(index), self.values.get(index)) {
            let (name, (fixed_key, fixed_value), key) = (self.name, self.fixed, self.key);
            slot.get_or_init(|| metrics::counter!(name, fixed_key => fixed_value, key => value))
                .increment(1);
        }
    }
}

// ---------------------------------------------------------------------------------------
// HTTP requests by route.
// ---------------------------------------------------------------------------------------

/// The statuses counted on their own; any other is counted as `other`.
const STATUSES: [(u16, &str); 27] = [
    (200, "200"),
    (201, "201"),
    (204, "204"),
    (206, "206"),
    (301, "301"),
    (304, "304"),
    (400, "400"),
    (401, "401"),
    (403, "403"),
    (404, "404"),
    (405, "405"),
    (406, "406"),
    (408, "408"),
    (409, "409"),
    (411, "411"),
    (412, "412"),
    (413, "413"),
    (415, "415"),
    (416, "416"),
    (422, "422"),
    (429, "429"),
    (431, "431"),
    (500, "500"),
    (502, "502"),
    (503, "503"),
    (504, "504"),
    (507, "507"),
];

/// The methods counted on their own; any other is counted as `other`.
const METHODS: [&str; 5] = ["GET", "HEAD", "POST", "PUT", "other"];

/// The label of a request that matched no route.
pub const UNMATCHED: &str = "unmatched";

fn method_index(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        _ => 4,
    }
}

fn status_index(status: u16) -> usize {
    STATUSES
        .iter()
        .position(|(code, _)| *code == status)
        .unwrap_or(STATUSES.len())
}

/// The series of one route and method.
struct MethodSeries {
    latency: OnceLock<Histogram>,
    statuses: [OnceLock<Counter>; STATUSES.len() + 1],
}

impl MethodSeries {
    fn new() -> MethodSeries {
        MethodSeries {
            latency: OnceLock::new(),
            statuses: [const { OnceLock::new() }; STATUSES.len() + 1],
        }
    }
}

/// The series of one route pattern.
struct RouteSeries {
    route: &'static str,
    methods: [MethodSeries; METHODS.len()],
}

impl RouteSeries {
    fn new(route: &'static str) -> RouteSeries {
        RouteSeries {
            route,
            methods: std::array::from_fn(|_| MethodSeries::new()),
        }
    }

    fn record(&self, method: &Method, status: u16, took: Duration) {
        let m = method_index(method);
        let method_label = METHODS[m];
        let series = &self.methods[m];
        let route = self.route;
        series
            .latency
            .get_or_init(|| {
                metrics::histogram!(names::HTTP_DURATION, "route" => route, "method" => method_label)
            })
            .record(took.as_secs_f64());
        let s = status_index(status);
        let status_label = STATUSES.get(s).map_or("other", |(_, label)| label);
        series.statuses[s]
            .get_or_init(|| {
                metrics::counter!(
                    names::HTTP_REQUESTS,
                    "route" => route,
                    "method" => method_label,
                    "status" => status_label
                )
            })
            .increment(1);
    }
}

/// Request counters and latency histograms for a fixed set of route patterns.
pub struct HttpMetrics {
    routes: HashMap<&'static str, RouteSeries>,
    unmatched: RouteSeries,
}

impl HttpMetrics {
    /// Series for `routes` (the patterns the router mounts) and for unmatched requests.
    pub fn new(routes: &[&'static str]) -> Arc<HttpMetrics> {
        Arc::new(HttpMetrics {
            routes: routes.iter().map(|r| (*r, RouteSeries::new(r))).collect(),
            unmatched: RouteSeries::new(UNMATCHED),
        })
    }

    fn series(&self, matched: Option<&MatchedPath>) -> &RouteSeries {
        matched
            .and_then(|m| self.routes.get(m.as_str()))
            .unwrap_or(&self.unmatched)
    }
}

/// Middleware (`axum::middleware::from_fn_with_state`): times the request and counts its
/// answer under the matched route pattern. Add it with `Router::layer`, which runs it
/// after routing, so that [`MatchedPath`] is known.
pub async fn track(
    axum::extract::State(metrics): axum::extract::State<Arc<HttpMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let series = metrics.series(request.extensions().get::<MatchedPath>());
    let response = next.run(request).await;
    series.record(&method, response.status().as_u16(), started.elapsed());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_methods_fall_back_to_other() {
        let cases = [(200, 0), (507, STATUSES.len() - 1), (418, STATUSES.len())];
        for (status, want) in cases {
            assert_eq!(status_index(status), want, "{status}");
        }
        assert_eq!(METHODS[method_index(&Method::DELETE)], "other");
        assert_eq!(METHODS[method_index(&Method::PUT)], "PUT");
    }
}
