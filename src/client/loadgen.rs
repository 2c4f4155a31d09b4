//! The load generator: drives a real server over HTTP with pre-signed, unique
//! publication requests from several granted publisher keys, and reports throughput and
//! latency percentiles.
//!
//! Requests are signed before the clock starts, so signing does not compete with the
//! server for the CPU during the measurement. At a fixed rate the generator is open-loop:
//! request i is due at `start + i / rate`, and its latency is measured from that due
//! time, so a server that falls behind is charged for the queueing it causes (no
//! coordinated omission). With `rate = max` it is closed-loop over `connections`
//! concurrent requests.
//!
//! May import `http` (the raw client and the routes), `client`'s [`Authority`] (to grant
//! the publishers), `catalog` (through its root), `note` and `receipt`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Authority, ClientError};
use crate::catalog::{
    sign_envelope, ApiVersion, PublisherGrantKind, PublisherGrantRequest, Role, SubmissionKind,
};
use crate::http::{routes, HttpClient, HttpError};
use crate::note::{KeyType, NoteError, Signer, Verifier};
use crate::receipt::Receipt;

/// How to load the server.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Publisher keys to generate and grant.
    pub publishers: usize,
    /// Requests per second, or `None` for as fast as `connections` allow.
    pub rate: Option<f64>,
    /// How long to send for.
    pub duration: Duration,
    /// Most requests in flight at once.
    pub connections: usize,
    /// Requests to pre-sign when `rate` is `None`.
    pub max_requests: usize,
    /// Verify every Nth accepted receipt (0: none).
    pub verify_every: usize,
}

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadReport {
    /// Requests per second offered (`None` = max).
    pub offered_rate: Option<f64>,
    /// Seconds from the first send to the last answer.
    pub elapsed_seconds: f64,
    /// Requests sent.
    pub sent: u64,
    /// 201 answers (appended, receipt received).
    pub accepted: u64,
    /// Accepted requests per second.
    pub throughput: f64,
    /// Latency percentiles of accepted requests, in milliseconds.
    pub latency_ms: Percentiles,
    /// Everything that was not a 201, by status or error.
    pub errors: BTreeMap<String, u64>,
    /// Receipts verified offline with the log key.
    pub receipts_verified: u64,
    /// Receipts that failed verification (must be 0).
    pub receipts_failed: u64,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Maximum.
    pub max: f64,
}

/// The load generator failed to set up.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A publisher key could not be made.
    #[error("making a publisher key: {0}")]
    Key(#[from] NoteError),
    /// A grant could not be encoded.
    #[error("encoding a grant: {0}")]
    Encode(#[from] serde_json::Error),
    /// The authority did not grant a publisher.
    #[error("granting publisher {index}: {source}")]
    Grant {
        /// Which publisher.
        index: usize,
        /// Why.
        source: ClientError,
    },
}

/// Readers that loop on one GET while a load runs (the read-load benchmark: publish
/// latency with and without expensive reads beside it). Like an attacker, a reader
/// ignores 429 and `Retry-After`: it asks again as soon as it is answered.
pub struct ReadLoad {
    stop: Arc<AtomicBool>,
    reads: Arc<ReadCounts>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// In a read path, replaced by a different tree size for every request (1 to the
/// `sizes` given to [`ReadLoad::start`]), so no answer can come from a cache.
pub const SIZE_PLACEHOLDER: &str = "{size}";

/// The path of a reader's `n`th request: [`SIZE_PLACEHOLDER`] replaced by a size that
/// walks all of 1..=`sizes` in a scattered order (a stride coprime with most sizes).
pub fn read_path(template: &str, n: u64, sizes: u64) -> String {
    if !template.contains(SIZE_PLACEHOLDER) {
        return template.to_string();
    }
    let size = 1 + n.wrapping_mul(7_919) % sizes.max(1);
    template.replace(SIZE_PLACEHOLDER, &size.to_string())
}

impl ReadLoad {
    /// Starts `readers` tasks, each sending GET `path` (see [`read_path`]; `sizes` is the
    /// largest size it asks for) again as soon as it is answered.
    pub fn start(client: &HttpClient, path: &str, sizes: u64, readers: usize) -> ReadLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let reads = Arc::new(ReadCounts::default());
        let tasks = (0..readers)
            .map(|reader| {
                let (client, path, stop, reads) = (
                    client.clone(),
                    path.to_string(),
                    stop.clone(),
                    reads.clone(),
                );
                tokio::spawn(async move {
                    let mut n = reader as u64 * 1_000_003;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        match client.get(&read_path(&path, n, sizes)).await {
                            Ok(r) if r.status.is_success() => &reads.answered,
                            Ok(_) => &reads.refused,
                            Err(_) => {
                                tokio::time::sleep(Duration::from_millis(10)).await;
                                &reads.failed
                            }
                        }
                        .fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        ReadLoad { stop, reads, tasks }
    }

    /// Stops the readers; returns how their requests were answered.
    pub async fn stop(self) -> ReadTotals {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = task.await;
        }
        ReadTotals {
            answered: self.reads.answered.load(Ordering::Relaxed),
            refused: self.reads.refused.load(Ordering::Relaxed),
            failed: self.reads.failed.load(Ordering::Relaxed),
        }
    }
}

#[derive(Default)]
struct ReadCounts {
    answered: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
}

/// What the readers of a [`ReadLoad`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadTotals {
    /// Answered with a 2xx.
    pub answered: u64,
    /// Answered with another status (429 from the per-address limits, 503 busy).
    pub refused: u64,
    /// Not answered (a transport error).
    pub failed: u64,
}

/// Prefix every generated request targets; grants cover it.
pub const LOADGEN_TARGET_PREFIX: &str = "sourceos://catalog/loadgen/";

/// Grants `count` fresh publisher keys with the admin key; returns the publishers.
pub async fn grant_publishers(
    authority: &dyn Authority,
    admin: &Signer,
    count: usize,
) -> Result<Vec<Signer>, LoadError> {
    let mut publishers = Vec::with_capacity(count);
    for index in 0..count {
        let publisher = Signer::generate(
            &format!("loadgen.srcos.local/publisher-{index}"),
            KeyType::Ed25519,
        )?;
        let grant = PublisherGrantRequest {
            api_version: ApiVersion::V1,
            kind: PublisherGrantKind::PublisherGrant,
            publisher_key: publisher.verifier().to_vkey(),
            role: Role::Publisher,
            target_prefixes: vec![LOADGEN_TARGET_PREFIX.to_string()],
            channels: vec!["*".to_string()],
            issued_at: None,
            nonce: None,
        };
        let envelope = sign_envelope(&serde_jcs::to_vec(&grant)?, admin);
        authority
            .submit(SubmissionKind::Grant, &envelope)
            .await
            .map_err(|source| LoadError::Grant { index, source })?;
        publishers.push(publisher);
    }
    Ok(publishers)
}

/// Signs `count` unique publication requests, round-robin over `publishers`, on every
/// core. `run_id` makes the requests of different runs differ (no dedup between runs).
pub fn presign(publishers: &[Signer], count: usize, run_id: u64) -> Vec<Bytes> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let chunk = count.div_ceil(threads.max(1)).max(1);
    let mut out = vec![Bytes::new(); count];
    std::thread::scope(|scope| {
        for (t, slice) in out.chunks_mut(chunk).enumerate() {
            scope.spawn(move || {
                for (j, slot) in slice.iter_mut().enumerate() {
                    let i = t * chunk + j;
                    if let Some(publisher) = publishers.get(i % publishers.len().max(1)) {
                        *slot = Bytes::from(signed_request(publisher, run_id, i as u64));
                    }
                }
            });
        }
    });
    out
}

fn signed_request(publisher: &Signer, run_id: u64, n: u64) -> String {
    let subject = hex::encode(Sha256::digest(format!("loadgen:{run_id}:{n}")));
    // The evidence the default `dev` policy requires, by digest (no blobs uploaded).
    let evidence: Vec<serde_json::Value> = [
        ("build-receipt", "application/json"),
        ("sbom", "application/spdx+json"),
        ("vulnerability-scan", "application/vnd.anchore.grype+json"),
        ("provenance", "application/json"),
    ]
    .iter()
    .map(|(kind, media_type)| {
        let digest = hex::encode(Sha256::digest(format!("{kind}:{run_id}:{n}")));
        serde_json::json!({"type": kind, "mediaType": media_type, "digest": {"sha256": digest},
                           "uri": format!("file:///{kind}.json"), "size": 1024})
    })
    .collect();
    let request = serde_json::json!({
        "apiVersion": "catalog.srcos.ai/v1", "kind": "CatalogPublicationRequest",
        "subject": {"name": "quay.io/loadgen/image", "digest": {"sha256": subject}},
        "targetCatalogRef": format!("{LOADGEN_TARGET_PREFIX}image"), "channel": "dev",
        "requesterRef": "socios://pipeline/loadgen",
        "evidence": evidence,
        "agentplaneRefs": {"validationArtifactRef": null, "runArtifactRef": null, "replayArtifactRef": null},
    });
    let payload = serde_jcs::to_vec(&request).unwrap_or_default();
    sign_envelope(&payload, publisher).to_json()
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
enum SendFailure {
    /// The exchange failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// No answer in time.
    #[error("timeout after 30s")]
    Timeout,
}

struct Outcome {
    latency_us: u64,
    status: Result<u16, SendFailure>,
    receipt: Option<Bytes>,
}

/// Sends `requests` and measures. `log_key` verifies the sampled receipts.
pub async fn run(
    client: &HttpClient,
    config: &LoadConfig,
    requests: Vec<Bytes>,
    log_key: &Verifier,
) -> LoadReport {
    let requests = Arc::new(requests);
    let outcomes = Arc::new(Mutex::new(Vec::with_capacity(requests.len())));
    let start = Instant::now();
    let deadline = start + config.duration;
    let sent = Arc::new(AtomicUsize::new(0));
    let verify_every = config.verify_every;
    match config.rate {
        None => {
            let next = Arc::new(AtomicUsize::new(0));
            let mut workers = Vec::new();
            for _ in 0..config.connections.max(1) {
                let (client, requests, outcomes, next, sent) = (
                    client.clone(),
                    requests.clone(),
                    outcomes.clone(),
                    next.clone(),
                    sent.clone(),
                );
                workers.push(tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(body) = requests.get(i) else { break };
                        if Instant::now() >= deadline {
                            break;
                        }
                        sent.fetch_add(1, Ordering::Relaxed);
                        let outcome =
                            send(&client, body.clone(), Instant::now(), i, verify_every).await;
                        if let Ok(mut list) = outcomes.lock() {
                            list.push(outcome);
                        }
                    }
                }));
            }
            for worker in workers {
                let _ = worker.await;
            }
        }
        Some(rate) => {
            let permits = Arc::new(tokio::sync::Semaphore::new(config.connections.max(1)));
            let mut tasks = Vec::new();
            for (i, body) in requests.iter().enumerate() {
                let due = start + Duration::from_secs_f64(i as f64 / rate.max(0.001));
                if due >= deadline {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break;
                };
                sent.fetch_add(1, Ordering::Relaxed);
                let (client, body, outcomes) = (client.clone(), body.clone(), outcomes.clone());
                tasks.push(tokio::spawn(async move {
                    let outcome = send(&client, body, due, i, verify_every).await;
                    drop(permit);
                    if let Ok(mut list) = outcomes.lock() {
                        list.push(outcome);
                    }
                }));
            }
            for task in tasks {
                let _ = task.await;
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let outcomes = match Arc::try_unwrap(outcomes) {
        Ok(m) => m.into_inner().unwrap_or_default(),
        Err(shared) => shared
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default(),
    };
    summarize(
        config.rate,
        elapsed,
        sent.load(Ordering::Relaxed) as u64,
        outcomes,
        log_key,
    )
}

async fn send(
    client: &HttpClient,
    body: Bytes,
    due: Instant,
    i: usize,
    verify_every: usize,
) -> Outcome {
    let answer = tokio::time::timeout(
        Duration::from_secs(30),
        client.post(routes::PUBLICATIONS, "application/json", body),
    )
    .await;
    let latency_us = due.elapsed().as_micros() as u64;
    match answer {
        Ok(Ok(r)) => {
            let sample = verify_every > 0 && i % verify_every == 0 && r.status.as_u16() == 201;
            Outcome {
                latency_us,
                status: Ok(r.status.as_u16()),
                receipt: sample.then_some(r.body),
            }
        }
        Ok(Err(e)) => Outcome {
            latency_us,
            status: Err(e.into()),
            receipt: None,
        },
        Err(_) => Outcome {
            latency_us,
            status: Err(SendFailure::Timeout),
            receipt: None,
        },
    }
}

fn summarize(
    rate: Option<f64>,
    elapsed: f64,
    sent: u64,
    outcomes: Vec<Outcome>,
    log_key: &Verifier,
) -> LoadReport {
    let mut latencies = Vec::with_capacity(outcomes.len());
    let mut errors = BTreeMap::new();
    let (mut verified, mut failed) = (0, 0);
    for outcome in &outcomes {
        match &outcome.status {
            Ok(201) => latencies.push(outcome.latency_us),
            Ok(status) => *errors.entry(format!("HTTP {status}")).or_insert(0) += 1,
            Err(e) => {
                *errors
                    .entry(e.to_string().chars().take(80).collect())
                    .or_insert(0) += 1
            }
        }
        if let Some(body) = &outcome.receipt {
            match Receipt::from_json(body).and_then(|r| r.verify(log_key)) {
                Ok(_) => verified += 1,
                Err(_) => failed += 1,
            }
        }
    }
    latencies.sort_unstable();
    let accepted = latencies.len() as u64;
    LoadReport {
        offered_rate: rate,
        elapsed_seconds: elapsed,
        sent,
        accepted,
        throughput: if elapsed > 0.0 {
            accepted as f64 / elapsed
        } else {
            0.0
        },
        latency_ms: percentiles(&latencies),
        errors,
        receipts_verified: verified,
        receipts_failed: failed,
    }
}

fn percentiles(sorted_us: &[u64]) -> Percentiles {
    let at = |q: f64| -> f64 {
        if sorted_us.is_empty() {
            return 0.0;
        }
        let i = ((sorted_us.len() as f64 - 1.0) * q).round() as usize;
        sorted_us.get(i).copied().unwrap_or(0) as f64 / 1000.0
    };
    Percentiles {
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        p999: at(0.999),
        max: at(1.0),
    }
}

#[cfg(test)]
mod tests {
    use super::read_path;

    #[test]
    fn a_read_path_walks_every_size_once_per_cycle() {
        assert_eq!(read_path("/v1/log", 5, 100), "/v1/log");
        let sizes = 8_000;
        let mut seen: Vec<u64> = (0..sizes)
            .map(|n| {
                read_path("/s?tree_size={size}", n, sizes)
                    .trim_start_matches("/s?tree_size=")
                    .parse()
                    .unwrap()
            })
            .collect();
        assert!(seen.iter().all(|s| (1..=sizes).contains(s)));
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), sizes as usize, "7919 is prime to 8000");
        assert_eq!(read_path("{size}", 3, 0), "1", "no sizes: size 1");
    }
}
