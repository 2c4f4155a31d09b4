//! One witness's submission loop: take the newest head, send it with a consistency
//! proof from the size this witness last cosigned, verify the cosignature it returns.
//!
//! The witness's size is learned, not stored: the first request of a worker says
//! `old 0`, and a witness that has cosigned before answers 409 with its size, which the
//! next attempt uses (tlog-witness allows exactly this). A failure is reported and
//! retried with a capped backoff; the sequencer is never involved.
//!
//! May import: `super` (endpoints and events), the log's heads and proofs, `note`, and
//! the HTTP client.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::{Event, WitnessEndpoint};
use crate::http::{HttpClient, HttpError};
use crate::log::reader::ReadError;
use crate::log::{Head, Log};
use crate::note::{
    parse_tlog_size_body, verify_cosignature, AddCheckpoint, NoteError, NoteSignature,
    MAX_SIGNATURES,
};

/// First retry delay after a failure; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Longest retry delay: short enough that a witness coming back is used again well
/// within a hold-back receipt's wait.
const MAX_BACKOFF: Duration = Duration::from_secs(4);
/// A 409 is followed at most this many times in one exchange.
const MAX_ATTEMPTS: usize = 3;

/// Why one exchange with a witness gave no verified cosignature (logged, then retried).
#[derive(Debug, thiserror::Error)]
pub(super) enum ExchangeError {
    /// The whole exchange took longer than the witness timeout.
    #[error("no answer within {0} ms")]
    Timeout(u128),
    /// The witness has cosigned a larger tree than this log has.
    #[error("the witness has cosigned size {old}, larger than this log's {size}")]
    AheadOfLog {
        /// The size the witness said it cosigned.
        old: u64,
        /// This log's size.
        size: u64,
    },
    /// The consistency proof could not be computed.
    #[error("consistency proof {old} -> {size}: {source}")]
    Proof {
        /// From this size.
        old: u64,
        /// To this size.
        size: u64,
        /// What failed.
        source: ReadError,
    },
    /// The blocking task computing the proof failed.
    #[error("proof task: {0}")]
    ProofTask(#[from] tokio::task::JoinError),
    /// The request did not get an answer.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// A 409 answer without a `text/x.tlog.size` body.
    #[error("answered 409 without a text/x.tlog.size body")]
    NoSizeBody,
    /// A 409 answer naming the old size the request carried.
    #[error("answered 409 with our own old size {0}")]
    SameOldSize(u64),
    /// A 409 answer every time, up to the attempt limit.
    #[error("the witness's size kept changing (409 answers)")]
    SizeKeptChanging,
    /// Any other refusal (the first 300 characters of the body).
    #[error("answered {status}: {detail}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        detail: String,
    },
    /// A 200 answer that is not UTF-8.
    #[error("the answer is not UTF-8")]
    NotUtf8,
    /// The witness's cosignature line is there but does not verify.
    #[error("its cosignature does not verify: {0}")]
    BadCosignature(NoteError),
    /// No line of the answer is by this witness's key (`name+hex8`).
    #[error("the answer has no cosignature by {0}")]
    NoCosignature(String),
}

/// The state of one witness's loop.
pub(super) struct Worker {
    index: usize,
    endpoint: WitnessEndpoint,
    client: HttpClient,
    log: Arc<Log>,
    timeout: Duration,
    /// The size the witness last cosigned, as far as this worker knows.
    known_size: u64,
    /// Its cosignature latency and failures (labelled with its key's name).
    metrics: crate::telemetry::CosignMetrics,
}

impl Worker {
    /// A worker for witness number `index`.
    pub(super) fn new(
        index: usize,
        endpoint: WitnessEndpoint,
        log: Arc<Log>,
        timeout: Duration,
    ) -> Result<Worker, HttpError> {
        let client = HttpClient::new(&endpoint.url)?;
        let metrics = crate::telemetry::CosignMetrics::new(&endpoint.key.short_id());
        Ok(Worker {
            metrics,
            index,
            endpoint,
            client,
            log,
            timeout,
            known_size: 0,
        })
    }

    /// Runs until the log's head channel or the aggregator goes away.
    pub(super) async fn run(
        mut self,
        mut heads: watch::Receiver<Arc<Head>>,
        events: mpsc::Sender<Event>,
    ) {
        let mut backoff = FIRST_BACKOFF;
        let mut failing = false;
        loop {
            let head = heads.borrow_and_update().clone();
            let size = head.checkpoint.size;
            let started = std::time::Instant::now();
            let outcome = match tokio::time::timeout(self.timeout, self.exchange(&head)).await {
                Ok(outcome) => outcome,
                Err(_) => Err(ExchangeError::Timeout(self.timeout.as_millis())),
            };
            match outcome {
                Ok(signature) => {
                    self.metrics.latency.record(started.elapsed().as_secs_f64());
                    if failing {
                        tracing::info!(witness = %self.endpoint.url, size, "witness cosigning again");
                    }
                    failing = false;
                    backoff = FIRST_BACKOFF;
                    let event = Event::Cosigned {
                        witness: self.index,
                        head,
                        signature,
                    };
                    if events.send(event).await.is_err() || heads.changed().await.is_err() {
                        return;
                    }
                }
                Err(error) => {
                    self.metrics.failures.increment(1);
                    if !failing {
                        tracing::warn!(witness = %self.endpoint.url, size, %error, "witness did not cosign");
                    }
                    failing = true;
                    let event = Event::Failed {
                        witness: self.index,
                        size,
                    };
                    if events.send(event).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// One add-checkpoint exchange, following 409 answers.
    async fn exchange(&mut self, head: &Head) -> Result<NoteSignature, ExchangeError> {
        let size = head.checkpoint.size;
        for _ in 0..MAX_ATTEMPTS {
            let old = self.known_size;
            if old > size {
                // Re-learn next time: the witness may have been reset, or it has seen a
                // larger (or different) tree than ours, which an operator must look at.
                self.known_size = 0;
                return Err(ExchangeError::AheadOfLog { old, size });
            }
            let proof = self.proof(old, size).await?;
            let body = AddCheckpoint {
                old_size: old,
                proof,
                checkpoint: head.signed.to_vec(),
            }
            .to_bytes();
            let response = self
                .client
                .post("/add-checkpoint", "text/plain", body.into())
                .await?;
            match response.status.as_u16() {
                200 => {
                    let signature = self.cosignature(&response.body, head)?;
                    self.known_size = size;
                    return Ok(signature);
                }
                409 => {
                    let latest =
                        parse_tlog_size_body(&response.body).ok_or(ExchangeError::NoSizeBody)?;
                    if latest == old {
                        return Err(ExchangeError::SameOldSize(old));
                    }
                    self.known_size = latest;
                }
                status => {
                    let detail: String = String::from_utf8_lossy(&response.body)
                        .chars()
                        .take(300)
                        .collect();
                    return Err(ExchangeError::Refused { status, detail });
                }
            }
        }
        Err(ExchangeError::SizeKeptChanging)
    }

    /// The consistency proof from `old` to `size` (empty from 0 or to the same size).
    async fn proof(&self, old: u64, size: u64) -> Result<Vec<[u8; 32]>, ExchangeError> {
        if old == 0 || old == size {
            return Ok(Vec::new());
        }
        let log = self.log.clone();
        tokio::task::spawn_blocking(move || log.consistency_proof(old, size))
            .await?
            .map_err(|source| ExchangeError::Proof { old, size, source })
    }

    /// Finds and verifies this witness's cosignature among the answer's lines.
    fn cosignature(&self, body: &[u8], head: &Head) -> Result<NoteSignature, ExchangeError> {
        let text = std::str::from_utf8(body).map_err(|_| ExchangeError::NotUtf8)?;
        let key = &self.endpoint.key;
        for line in text.split_terminator('\n').take(MAX_SIGNATURES) {
            let Ok(signature) = NoteSignature::parse_line(line) else {
                continue;
            };
            if signature.name != key.name() || signature.key_id != key.key_id() {
                continue;
            }
            let note_text = head.checkpoint.to_text();
            verify_cosignature(&note_text, &signature, key)
                .map_err(ExchangeError::BadCosignature)?;
            return Ok(signature);
        }
        Err(ExchangeError::NoCosignature(key.short_id()))
    }
}
