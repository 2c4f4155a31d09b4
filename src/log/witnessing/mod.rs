//! Collecting witness cosignatures for the log's checkpoints (the client side of C2SP
//! tlog-witness).
//!
//! Sequencing never waits for witnesses. The sequencer publishes each new head on a
//! watch channel and moves on; one worker task per witness takes the newest head,
//! submits it (with a consistency proof from the size that witness last cosigned) and
//! reports the verified cosignature or the failure to an aggregator task. The
//! aggregator keeps, per recent head, the cosignatures collected so far and publishes a
//! [`Snapshot`]: the newest *settled* checkpoint and the newest one that reached the
//! quorum. The HTTP layer serves from the snapshot:
//!
//! - [`BelowQuorum::FailOpen`]: `/checkpoint` and receipts use the newest settled
//!   checkpoint with whatever cosignatures it has. A head is settled once it has the
//!   quorum, or every witness not known to be down has answered for it, or the witness
//!   timeout has passed since it was signed; so a dead witness delays a receipt by at
//!   most one timeout, and not at all once it is known to be down.
//! - [`BelowQuorum::HoldBack`]: `/checkpoint` and receipts use only checkpoints that
//!   reached the quorum. A receipt waits (at most the hold-back wait) for one that
//!   covers its entry; the entry itself is already durable in the log.
//!
//! - `aggregate`: the bookkeeping (pure, no I/O).
//! - `worker`: one witness's submission loop (HTTP).
//!
//! May import: the log engine above it (`super`: [`Log`], heads, the read side), `note`
//! (checkpoints, cosignatures and the add-checkpoint body), `receipt`, and the HTTP
//! client (`http`, which sits below the log: the log's only outbound calls). Never
//! the witness server or `api`.

mod aggregate;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::reader::ReadError;
use super::Log;
use crate::http::HttpError;
use crate::note::{Checkpoint, KeyType, Verifier};
use crate::receipt::Receipt;
use aggregate::Aggregate;

/// One witness the log asks to cosign.
#[derive(Debug, Clone)]
pub struct WitnessEndpoint {
    /// Its submission prefix, e.g. `http://witness.example:7380` (`/add-checkpoint` is
    /// appended).
    pub url: String,
    /// Its cosignature verifier key (type 0x04).
    pub key: Verifier,
}

/// What the log serves while the newest checkpoint is below the witness quorum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BelowQuorum {
    /// Serve the newest checkpoint with the cosignatures it has (availability first).
    FailOpen,
    /// Serve only checkpoints that reached the quorum; receipts wait for one.
    HoldBack,
}

/// How the log collects cosignatures.
#[derive(Debug, Clone)]
pub struct WitnessingOptions {
    /// The witnesses.
    pub witnesses: Vec<WitnessEndpoint>,
    /// How many distinct witnesses must cosign a checkpoint for it to count.
    pub quorum: usize,
    /// What to serve below the quorum.
    pub below_quorum: BelowQuorum,
    /// Longest wait for one witness exchange, and for a head to settle.
    pub timeout: Duration,
    /// Longest wait of a receipt for a quorum checkpoint in hold-back mode.
    pub hold_back_wait: Duration,
}

impl WitnessingOptions {
    /// Checks the options make sense: at least one witness, 1 ≤ quorum ≤ witnesses,
    /// cosignature keys, distinct keys, http URLs.
    pub fn validate(&self) -> Result<(), OptionsError> {
        if self.witnesses.is_empty() {
            return Err(OptionsError::NoWitness);
        }
        if self.quorum == 0 || self.quorum > self.witnesses.len() {
            return Err(OptionsError::Quorum {
                quorum: self.quorum,
                witnesses: self.witnesses.len(),
            });
        }
        for (i, w) in self.witnesses.iter().enumerate() {
            if w.key.key_type() != KeyType::CosignatureV1 {
                return Err(OptionsError::NotCosignatureKey {
                    url: w.url.clone(),
                    key: w.key.short_id(),
                });
            }
            if !w.url.starts_with("http://") {
                return Err(OptionsError::NotHttp(w.url.clone()));
            }
            // Two witnesses sharing a key would count one signer twice toward the quorum.
            if self.witnesses[..i]
                .iter()
                .any(|o| o.key.public_key() == w.key.public_key())
            {
                return Err(OptionsError::DuplicateKey(w.key.short_id()));
            }
        }
        Ok(())
    }
}

/// Why [`WitnessingOptions`] are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    /// The witness list is empty.
    #[error("no witness configured")]
    NoWitness,
    /// The quorum is 0 or larger than the number of witnesses.
    #[error(
        "the witness quorum must be between 1 and the number of witnesses ({witnesses}), got {quorum}"
    )]
    Quorum {
        /// The quorum asked for.
        quorum: usize,
        /// The number of witnesses.
        witnesses: usize,
    },
    /// A witness key is not a cosignature (type 0x04) key.
    #[error("witness {url} key {key} is not a cosignature (0x04) key")]
    NotCosignatureKey {
        /// The witness's URL.
        url: String,
        /// The key's `name+hex8`.
        key: String,
    },
    /// A witness URL is not `http://`.
    #[error("witness URL {0:?} must be http://")]
    NotHttp(String),
    /// Two witnesses share a key (`name+hex8` of the second).
    #[error("witness key {0} is given twice")]
    DuplicateKey(String),
}

/// Why witnessing could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The options are refused.
    #[error(transparent)]
    Options(#[from] OptionsError),
    /// The HTTP client for one witness could not be built.
    #[error("witness {url}: {source}")]
    Client {
        /// The witness's URL.
        url: String,
        /// What failed.
        source: HttpError,
    },
}

/// A checkpoint with the cosignatures collected for it.
#[derive(Debug, Clone)]
pub struct Witnessed {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// The log-signed note with the cosignature lines appended.
    pub signed: Arc<Vec<u8>>,
    /// `name+hex8` of each witness that cosigned it.
    pub cosigners: Vec<String>,
}

/// What the aggregator last published.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The newest settled checkpoint (what fail-open serves).
    pub newest: Option<Arc<Witnessed>>,
    /// The newest checkpoint that reached the quorum (what hold-back serves).
    pub quorum: Option<Arc<Witnessed>>,
}

/// No checkpoint covering an entry was available in time.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "entry {index} is durable in the log, but no checkpoint covering it {what} within {waited_ms} ms \
     ({quorum} of {witnesses} witness cosignatures needed); fetch GET /v1/receipts/{index} later"
)]
pub struct NotWitnessed {
    /// The entry.
    pub index: u64,
    /// What did not happen.
    pub what: &'static str,
    /// The quorum.
    pub quorum: usize,
    /// The number of witnesses.
    pub witnesses: usize,
    /// How long the receipt waited.
    pub waited_ms: u128,
}

/// Events from the workers to the aggregator.
pub(crate) enum Event {
    /// Witness `witness` cosigned `head`; the signature verified with its key.
    Cosigned {
        witness: usize,
        head: Arc<super::Head>,
        signature: crate::note::NoteSignature,
    },
    /// Witness `witness` failed (error, refusal, timeout) on the head of `size`.
    Failed { witness: usize, size: u64 },
}

/// The running witnessing tasks and their published snapshot.
pub struct Witnessing {
    options: WitnessingOptions,
    snapshot: watch::Receiver<Arc<Snapshot>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Witnessing {
    /// Starts one worker per witness and the aggregator on the current tokio runtime.
    pub fn start(log: Arc<Log>, options: WitnessingOptions) -> Result<Arc<Witnessing>, StartError> {
        options.validate()?;
        let (events, receiver) = mpsc::channel(64);
        let (publish, snapshot) = watch::channel(Arc::new(Snapshot::default()));
        let mut tasks = Vec::new();
        for (index, endpoint) in options.witnesses.iter().enumerate() {
            let worker = worker::Worker::new(index, endpoint.clone(), log.clone(), options.timeout)
                .map_err(|source| StartError::Client {
                    url: endpoint.url.clone(),
                    source,
                })?;
            tasks.push(tokio::spawn(
                worker.run(log.subscribe_heads(), events.clone()),
            ));
        }
        let aggregate = Aggregate::new(
            options.witnesses.iter().map(|w| w.key.short_id()).collect(),
            options.quorum,
            options.timeout,
        );
        tasks.push(tokio::spawn(aggregate::run(
            aggregate,
            log.subscribe_heads(),
            receiver,
            publish,
        )));
        Ok(Arc::new(Witnessing {
            options,
            snapshot,
            tasks,
        }))
    }

    /// The options in force.
    pub fn options(&self) -> &WitnessingOptions {
        &self.options
    }

    /// The latest snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.borrow().clone()
    }

    /// What `/checkpoint` serves now: `None` in hold-back mode before any checkpoint
    /// reached the quorum (and in fail-open mode before the first head settled).
    pub fn served(&self) -> Option<Arc<Witnessed>> {
        served_in(&self.snapshot(), self.options.below_quorum).cloned()
    }

    /// The witnessed note for tree size `size`, if it is one of the served ones.
    pub fn at_size(&self, size: u64) -> Option<Arc<Witnessed>> {
        let snapshot = self.snapshot();
        [&snapshot.quorum, &snapshot.newest]
            .into_iter()
            .flatten()
            .filter(|w| w.checkpoint.size == size)
            .max_by_key(|w| w.cosigners.len())
            .cloned()
    }

    /// Waits until a served checkpoint covers entry `index`: at most one witness timeout
    /// (plus a second of slack) in fail-open mode, the hold-back wait in hold-back mode.
    pub async fn covering(&self, index: u64) -> Result<Arc<Witnessed>, NotWitnessed> {
        let (wait, what) = match self.options.below_quorum {
            BelowQuorum::FailOpen => (self.options.timeout + Duration::from_secs(1), "was settled"),
            BelowQuorum::HoldBack => (self.options.hold_back_wait, "reached the quorum"),
        };
        let mode = self.options.below_quorum;
        let mut receiver = self.snapshot.clone();
        let started = std::time::Instant::now();
        let found = tokio::time::timeout(
            wait,
            receiver.wait_for(|s| served_in(s, mode).is_some_and(|w| w.checkpoint.size > index)),
        )
        .await;
        if let Ok(Ok(snapshot)) = found {
            if let Some(w) = served_in(&snapshot, mode) {
                return Ok(w.clone());
            }
        }
        Err(NotWitnessed {
            index,
            what,
            quorum: self.options.quorum,
            witnesses: self.options.witnesses.len(),
            waited_ms: started.elapsed().as_millis(),
        })
    }

    /// A receipt for entry `index` proven against a witnessed checkpoint.
    pub fn receipt(
        &self,
        log: &Log,
        index: u64,
        witnessed: &Witnessed,
    ) -> Result<Receipt, ReadError> {
        log.receipt_against(index, witnessed.checkpoint.size, &witnessed.signed)
    }
}

fn served_in(snapshot: &Snapshot, mode: BelowQuorum) -> Option<&Arc<Witnessed>> {
    match mode {
        BelowQuorum::FailOpen => snapshot.newest.as_ref(),
        BelowQuorum::HoldBack => snapshot.quorum.as_ref(),
    }
}

impl Drop for Witnessing {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::Signer;

    fn endpoint(url: &str, name: &str, key_type: KeyType, seed: u8) -> WitnessEndpoint {
        let key = Signer::from_seed(name, key_type, &[seed; 32])
            .map(|s| s.verifier())
            .expect("test key");
        WitnessEndpoint {
            url: url.into(),
            key,
        }
    }

    fn options(witnesses: Vec<WitnessEndpoint>, quorum: usize) -> WitnessingOptions {
        WitnessingOptions {
            witnesses,
            quorum,
            below_quorum: BelowQuorum::FailOpen,
            timeout: Duration::from_secs(1),
            hold_back_wait: Duration::from_secs(1),
        }
    }

    #[test]
    fn options_are_checked_in_order() {
        let a = || endpoint("http://a", "a", KeyType::CosignatureV1, 1);
        let b = || endpoint("http://b", "b", KeyType::CosignatureV1, 2);
        let b_as_a = || endpoint("http://b", "b", KeyType::CosignatureV1, 1);
        let log_key = || endpoint("http://c", "c", KeyType::Ed25519, 3);
        let https = || endpoint("https://d", "d", KeyType::CosignatureV1, 4);
        let cases: Vec<(WitnessingOptions, Result<(), &str>)> = vec![
            (options(vec![a()], 1), Ok(())),
            (options(vec![a(), b()], 2), Ok(())),
            (options(vec![], 1), Err("no witness configured")),
            (
                options(vec![a()], 0),
                Err("the witness quorum must be between 1 and the number of witnesses (1), got 0"),
            ),
            (
                options(vec![a(), b()], 3),
                Err("the witness quorum must be between 1 and the number of witnesses (2), got 3"),
            ),
            (
                options(vec![a(), log_key()], 1),
                Err("not a cosignature (0x04) key"),
            ),
            (
                options(vec![https()], 1),
                Err("witness URL \"https://d\" must be http://"),
            ),
            (options(vec![a(), b_as_a()], 1), Err("is given twice")),
        ];
        for (options, expected) in cases {
            let got = options.validate().map_err(|e| e.to_string());
            match expected {
                Ok(()) => assert_eq!(got, Ok(())),
                Err(text) => {
                    let message = got.expect_err("must be refused");
                    assert!(message.contains(text), "{message:?} lacks {text:?}");
                }
            }
        }
    }
}
