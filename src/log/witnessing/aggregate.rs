//! The aggregator: which cosignatures each recent head has, which heads are settled,
//! and the snapshot the HTTP layer serves from.
//!
//! Only this task writes the snapshot, so the served checkpoints only move forward:
//! the newest settled head and the newest quorum head are both maxima over a set
//! that only grows (heads below the quorum head are pruned, never un-settled).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::{Event, Snapshot, Witnessed};
use crate::log::Head;
use crate::note::{Note, NoteSignature};

/// Most heads tracked at once; older ones are dropped first. Workers only ever take
/// the newest head, so a head this far behind will get no more cosignatures.
const MAX_TRACKED_HEADS: usize = 1024;

/// One head and what was collected for it.
struct Tracked {
    head: Arc<Head>,
    cosignatures: Vec<Option<NoteSignature>>,
    deadline: Instant,
    settled: bool,
}

impl Tracked {
    fn count(&self) -> usize {
        self.cosignatures.iter().flatten().count()
    }
}

/// The aggregator's state.
pub(super) struct Aggregate {
    names: Vec<String>,
    quorum: usize,
    timeout: Duration,
    heads: BTreeMap<u64, Tracked>,
    /// A witness whose last exchange failed; heads do not wait for it.
    down: Vec<bool>,
    /// The largest head size each witness has answered for (either way).
    answered: Vec<u64>,
}

impl Aggregate {
    /// `names` are the witnesses' `name+hex8`, in worker order.
    pub(super) fn new(names: Vec<String>, quorum: usize, timeout: Duration) -> Aggregate {
        let n = names.len();
        Aggregate {
            names,
            quorum,
            timeout,
            heads: BTreeMap::new(),
            down: vec![false; n],
            answered: vec![0; n],
        }
    }

    /// A new head was committed at `now`.
    pub(super) fn add_head(&mut self, head: Arc<Head>, now: Instant) {
        let size = head.checkpoint.size;
        self.heads.entry(size).or_insert_with(|| Tracked {
            head,
            cosignatures: vec![None; self.names.len()],
            deadline: now + self.timeout,
            settled: false,
        });
        while self.heads.len() > MAX_TRACKED_HEADS {
            self.heads.pop_first();
        }
    }

    /// Applies a worker's report.
    pub(super) fn record(&mut self, event: Event) {
        match event {
            Event::Cosigned {
                witness,
                head,
                signature,
            } => {
                let size = head.checkpoint.size;
                if let Some(flag) = self.down.get_mut(witness) {
                    *flag = false;
                }
                if let Some(answered) = self.answered.get_mut(witness) {
                    *answered = (*answered).max(size);
                }
                if let Some(slot) = self
                    .heads
                    .get_mut(&size)
                    .filter(|t| t.head.checkpoint.root == head.checkpoint.root)
                    .and_then(|t| t.cosignatures.get_mut(witness))
                {
                    *slot = Some(signature);
                }
            }
            Event::Failed { witness, size } => {
                if let Some(flag) = self.down.get_mut(witness) {
                    *flag = true;
                }
                if let Some(answered) = self.answered.get_mut(witness) {
                    *answered = (*answered).max(size);
                }
            }
        }
    }

    /// Settles every head that has the quorum, that every live witness answered for,
    /// or whose deadline passed; then prunes heads below the newest quorum head.
    pub(super) fn settle(&mut self, now: Instant) {
        let (quorum, down, answered) = (self.quorum, &self.down, &self.answered);
        for (size, tracked) in self.heads.iter_mut().filter(|(_, t)| !t.settled) {
            let all_answered = down
                .iter()
                .zip(answered)
                .all(|(down, answered)| *down || *answered >= *size);
            tracked.settled = tracked.count() >= quorum || all_answered || now >= tracked.deadline;
        }
        if let Some(keep_from) = self.quorum_size() {
            self.heads.retain(|size, _| *size >= keep_from);
        }
    }

    /// The earliest deadline of an unsettled head.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.heads
            .values()
            .filter(|t| !t.settled)
            .map(|t| t.deadline)
            .min()
    }

    fn quorum_size(&self) -> Option<u64> {
        self.heads
            .iter()
            .rev()
            .find(|(_, t)| t.count() >= self.quorum)
            .map(|(size, _)| *size)
    }

    /// What to serve now.
    pub(super) fn snapshot(&self) -> Snapshot {
        let newest = self
            .heads
            .values()
            .rev()
            .find(|t| t.settled)
            .map(|t| self.witnessed(t));
        let quorum = self
            .quorum_size()
            .and_then(|size| self.heads.get(&size))
            .map(|t| self.witnessed(t));
        Snapshot { newest, quorum }
    }

    /// The head's note with its cosignatures appended.
    fn witnessed(&self, tracked: &Tracked) -> Arc<Witnessed> {
        let mut cosigners = Vec::new();
        let signed = match Note::parse(&tracked.head.signed) {
            Ok(mut note) => {
                for (name, signature) in self.names.iter().zip(&tracked.cosignatures) {
                    let Some(signature) = signature else { continue };
                    // A cosignature line always fits: notes allow 100 lines and 1 MiB.
                    if note.add_signature(signature.clone()).is_ok() {
                        cosigners.push(name.clone());
                    }
                }
                Arc::new(note.to_bytes())
            }
            Err(_) => tracked.head.signed.clone(),
        };
        Arc::new(Witnessed {
            checkpoint: tracked.head.checkpoint.clone(),
            signed,
            cosigners,
        })
    }
}

/// The aggregator task: folds head changes, worker reports and deadlines into the
/// published snapshot until the log or the workers go away.
pub(super) async fn run(
    mut aggregate: Aggregate,
    mut heads: watch::Receiver<Arc<Head>>,
    mut events: mpsc::Receiver<Event>,
    publish: watch::Sender<Arc<Snapshot>>,
) {
    let first = heads.borrow_and_update().clone();
    aggregate.add_head(first, Instant::now());
    loop {
        let deadline = aggregate.next_deadline();
        tokio::select! {
            changed = heads.changed() => {
                if changed.is_err() {
                    return;
                }
                let head = heads.borrow_and_update().clone();
                aggregate.add_head(head, Instant::now());
            }
            event = events.recv() => match event {
                Some(event) => aggregate.record(event),
                None => return,
            },
            _ = sleep_until(deadline) => {}
        }
        aggregate.settle(Instant::now());
        publish.send_replace(Arc::new(aggregate.snapshot()));
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::{cosign, Checkpoint, KeyType, Signer};

    fn head(signer: &Signer, size: u64) -> Arc<Head> {
        let checkpoint = Checkpoint {
            origin: signer.name().into(),
            size,
            root: [size as u8; 32],
            extensions: Vec::new(),
        };
        let signed = checkpoint.sign(signer).map(|n| n.to_bytes()).unwrap();
        Arc::new(Head {
            checkpoint,
            signed: Arc::new(signed),
        })
    }

    fn cosigned(w: usize, witness: &Signer, head: &Arc<Head>) -> Event {
        let text = head.checkpoint.to_text();
        Event::Cosigned {
            witness: w,
            head: head.clone(),
            signature: cosign(&text, witness, 1).unwrap(),
        }
    }

    #[test]
    fn settles_on_quorum_on_answers_or_on_deadline() {
        let log = Signer::generate("log.example", KeyType::Ed25519).unwrap();
        let w0 = Signer::generate("w0", KeyType::CosignatureV1).unwrap();
        let w1 = Signer::generate("w1", KeyType::CosignatureV1).unwrap();
        let timeout = Duration::from_secs(5);
        let mut agg = Aggregate::new(vec!["w0".into(), "w1".into()], 1, timeout);
        let t0 = Instant::now();
        let h1 = head(&log, 1);
        agg.add_head(h1.clone(), t0);
        agg.settle(t0);
        let snap = agg.snapshot();
        assert!(snap.newest.is_none() && snap.quorum.is_none());

        // One cosignature reaches the quorum of 1: settled and quorum at once.
        agg.record(cosigned(0, &w0, &h1));
        agg.settle(t0);
        let snap = agg.snapshot();
        assert_eq!(snap.newest.as_ref().map(|w| w.cosigners.len()), Some(1));
        assert_eq!(snap.quorum.as_ref().map(|w| w.checkpoint.size), Some(1));

        // w1 fails on head 2 and w0 has not answered: head 2 waits for w0 until its
        // deadline, then settles without the quorum; hold-back still serves head 1.
        let h2 = head(&log, 2);
        agg.add_head(h2.clone(), t0);
        agg.record(Event::Failed {
            witness: 1,
            size: 2,
        });
        agg.settle(t0);
        assert_eq!(agg.snapshot().newest.map(|w| w.checkpoint.size), Some(1));
        agg.settle(t0 + timeout);
        let snap = agg.snapshot();
        assert_eq!(snap.newest.map(|w| w.checkpoint.size), Some(2));
        assert_eq!(snap.quorum.map(|w| w.checkpoint.size), Some(1));

        // w1 is down, so head 3 settles as soon as w0 answers, even by failing.
        let h3 = head(&log, 3);
        agg.add_head(h3.clone(), t0);
        agg.record(Event::Failed {
            witness: 0,
            size: 3,
        });
        agg.settle(t0);
        assert_eq!(agg.snapshot().newest.map(|w| w.checkpoint.size), Some(3));

        // A late cosignature for head 3 makes it the quorum head, and the note grows.
        agg.record(cosigned(1, &w1, &h3));
        agg.settle(t0);
        let snap = agg.snapshot();
        let quorum = snap.quorum.unwrap();
        assert_eq!(quorum.checkpoint.size, 3);
        assert_eq!(quorum.cosigners, vec!["w1".to_string()]);
        let note = Note::parse(&quorum.signed).unwrap();
        assert!(note.verify(&[log.verifier(), w1.verifier()]).is_ok());
        assert_eq!(note.signatures().len(), 2);
    }

    #[test]
    fn a_cosignature_for_another_root_is_ignored() {
        let log = Signer::generate("log.example", KeyType::Ed25519).unwrap();
        let w0 = Signer::generate("w0", KeyType::CosignatureV1).unwrap();
        let mut agg = Aggregate::new(vec!["w0".into()], 1, Duration::from_secs(1));
        let t0 = Instant::now();
        agg.add_head(head(&log, 4), t0);
        let mut other = head(&log, 4);
        Arc::make_mut(&mut other).checkpoint.root = [9; 32];
        agg.record(cosigned(0, &w0, &other));
        agg.settle(t0);
        assert!(agg.snapshot().quorum.is_none());
    }
}
