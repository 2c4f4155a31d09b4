//! [`Follower`]: a read-only follower of a log that another process sequences (a
//! frontend's view of it, ADR 0004 "Frontends").
//!
//! Its one job is to know a verified head and read the log at it. The head comes from
//! the checkpoint lock's `read` (polled by the caller through [`Follower::refresh`]),
//! the tiles from the shared tile store through a bounded cache. A new head is taken
//! only if its signature verifies with the log key, it does not shrink or fork the one
//! held, and the stored tiles rebuild its root; otherwise the old head is kept and the
//! refresh fails. It also folds, leaf by leaf, the keys the log has made known (genesis
//! admins, granted publishers), so a frontend can verify submission signatures without
//! the catalog.
//!
//! When the log has witnesses, [`Follower::add_cosignatures`] takes the witness
//! cosignatures the holder collected for the head held (from the holder's own
//! `/checkpoint`): only lines over exactly the head's note text that verify with a
//! configured witness key are added, to the head's own log-signed note, so the head
//! served never changes tree and never loses a cosignature while its tree is held.
//!
//! It owns no signer and no writable port: it cannot sign a checkpoint, write a tile or
//! install anything. May import: `merkle`, `note`, `tiles`, `receipt`, the `catalog`
//! root re-exports, the storage ports and the log's read side.

use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::watch;

use super::reader::{ReadError, TileCache, TreeView};
use super::Head;
use crate::catalog::{KeyDirectory, PreparedLeaf};
use crate::merkle::{self, Hash};
use crate::note::{open_checkpoint, verify_cosignature, Note, Verifier};
use crate::receipt::Receipt;
use crate::storage::{CheckpointLock, StorageError, TileStore};
use crate::tiles::TileId;

/// A refresh found a head it must not take (the old one is kept).
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// Reading the lock or the tiles failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Reading the tree failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The lock's checkpoint does not verify with the log key.
    #[error("the coordinator's checkpoint does not verify with the log key: {0}")]
    Signature(String),
    /// The lock's checkpoint is smaller than the head already followed.
    #[error("the coordinator's checkpoint went back from size {had} to {got}")]
    Rollback {
        /// The size followed.
        had: u64,
        /// The size found.
        got: u64,
    },
    /// Two different roots for one size, or tiles that do not rebuild the signed root.
    #[error("{0}")]
    Inconsistent(String),
}

/// What the follower folds as it goes: the keys, and how many leaves they cover.
struct Folded {
    keys: Vec<Verifier>,
    size: u64,
}

/// A read-only follower of one log (see the module documentation).
pub struct Follower {
    verifier: Verifier,
    tiles: Arc<dyn TileStore>,
    lock: Arc<dyn CheckpointLock>,
    cache: TileCache,
    head: watch::Sender<Option<Arc<Head>>>,
    /// Held for a whole refresh: refreshes are serialized, and the keys move with them.
    folded: Mutex<Folded>,
    keys: RwLock<KeyDirectory>,
}

impl Follower {
    /// A follower of the log signed by `verifier` whose tiles are in `tiles` and whose
    /// installed checkpoint `lock` reads. It holds no head until the first
    /// [`Follower::refresh`].
    pub fn new(
        verifier: Verifier,
        tiles: Arc<dyn TileStore>,
        lock: Arc<dyn CheckpointLock>,
    ) -> Follower {
        Follower {
            verifier,
            tiles,
            lock,
            cache: TileCache::default(),
            head: watch::channel(None).0,
            folded: Mutex::new(Folded {
                keys: Vec::new(),
                size: 0,
            }),
            keys: RwLock::new(KeyDirectory::default()),
        }
    }

    /// The log's origin (its key's name).
    pub fn origin(&self) -> &str {
        self.verifier.name()
    }

    /// The log's verifier key.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// The head followed, if any yet.
    pub fn head(&self) -> Option<Arc<Head>> {
        self.head.borrow().clone()
    }

    /// A receiver that sees every newer head.
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<Head>>> {
        self.head.subscribe()
    }

    /// The keys made known by the leaves of the head (a subset of the sequencer's
    /// newer directory).
    pub fn keys(&self) -> KeyDirectory {
        match self.keys.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the lock's checkpoint and takes it as the head if it is newer and checks
    /// out (see the module documentation); returns the head held afterwards. Blocking
    /// (one lock read, and tile reads for a new head): call it off the async workers.
    pub fn refresh(&self) -> Result<Option<Arc<Head>>, FollowError> {
        let mut folded = self.folded.lock().unwrap_or_else(|p| p.into_inner());
        let Some(signed) = self.lock.read()? else {
            return Ok(self.head());
        };
        let current = self.head();
        if current
            .as_ref()
            .is_some_and(|h| h.signed.as_slice() == signed)
        {
            return Ok(current);
        }
        let (checkpoint, _) = open_checkpoint(&signed, &self.verifier)
            .map_err(|e| FollowError::Signature(e.to_string()))?;
        if let Some(current) = &current {
            let had = current.checkpoint.size;
            if checkpoint.size < had {
                return Err(FollowError::Rollback {
                    had,
                    got: checkpoint.size,
                });
            }
            if checkpoint.size == had {
                if checkpoint.root != current.checkpoint.root {
                    return Err(FollowError::Inconsistent(format!(
                        "two checkpoints of size {had} with different roots"
                    )));
                }
                // The same tree, signed again (or cosigned): keep the one held.
                return Ok(Some(current.clone()));
            }
        }
        let view = TreeView::new(self.tiles.as_ref(), &self.cache, checkpoint.size);
        let root: Hash = merkle::tree_root(checkpoint.size, &view).map_err(ReadError::from)?;
        if root != checkpoint.root {
            return Err(FollowError::Inconsistent(format!(
                "the stored tiles do not rebuild the root of the checkpoint of size {}",
                checkpoint.size
            )));
        }
        if let Some(current) = &current {
            // The new tree must extend the old one: prove it from the tiles.
            let old = current.checkpoint.size;
            if old > 0 {
                let proof = merkle::consistency_proof(old, checkpoint.size, &view)
                    .map_err(ReadError::from)?;
                merkle::verify_consistency(
                    old,
                    checkpoint.size,
                    &current.checkpoint.root,
                    &checkpoint.root,
                    &proof,
                )
                .map_err(|e| {
                    FollowError::Inconsistent(format!(
                        "the checkpoint of size {} is not consistent with size {old}: {e}",
                        checkpoint.size
                    ))
                })?;
            }
        }
        let known = folded.keys.len();
        for index in folded.size..checkpoint.size {
            let entry = view.entry(index)?;
            // A leaf that does not parse adds no key; the sequencer never logs one.
            if let Ok(leaf) = PreparedLeaf::parse(index, &entry) {
                folded.keys.extend(leaf.introduced_keys());
            }
        }
        folded.size = checkpoint.size;
        if folded.keys.len() != known {
            let keys = KeyDirectory::from_verifiers(folded.keys.iter().cloned());
            *self.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
        }
        let head = Arc::new(Head {
            checkpoint,
            signed: Arc::new(signed),
        });
        self.head.send_replace(Some(head.clone()));
        Ok(Some(head))
    }

    /// Adds to the head held the cosignatures of `offered` that verify with one of
    /// `witnesses` over the head's own note text (see the module documentation);
    /// returns whether the head now carries more of them. A note of another tree, or
    /// one that adds no verified cosignature, changes nothing.
    pub fn add_cosignatures(&self, offered: &[u8], witnesses: &[Verifier]) -> bool {
        // Serialized with refreshes, so a newer head is never replaced by an older one.
        let _refreshing = self.folded.lock().unwrap_or_else(|p| p.into_inner());
        let Some(current) = self.head() else {
            return false;
        };
        let (Ok(held), Ok(offered)) = (Note::parse(&current.signed), Note::parse(offered)) else {
            return false;
        };
        let Some(merged) = with_cosignatures(&held, &offered, witnesses) else {
            return false;
        };
        let signed = merged.to_bytes();
        // The text is the held one, so the log's signature still verifies: checked
        // anyway, as nothing is served that this process has not verified.
        match open_checkpoint(&signed, &self.verifier) {
            Ok((checkpoint, _)) if checkpoint == current.checkpoint => {}
            _ => return false,
        }
        let head = Arc::new(Head {
            checkpoint: current.checkpoint.clone(),
            signed: Arc::new(signed),
        });
        self.head.send_replace(Some(head));
        true
    }

    /// How many of `witnesses` cosigned the head held (lines added by
    /// [`Follower::add_cosignatures`] only, which verified them).
    pub fn cosigners(&self, witnesses: &[Verifier]) -> usize {
        let Some(note) = self.head().and_then(|h| Note::parse(&h.signed).ok()) else {
            return 0;
        };
        witnesses
            .iter()
            .filter(|w| note.signatures().iter().any(|s| is_by(s, w)))
            .count()
    }

    /// A view of the tree of `size` leaves (at most the head's), and the head.
    pub(crate) fn view(&self, size: u64) -> Result<(TreeView<'_>, Arc<Head>), ReadError> {
        let head = self
            .head()
            .ok_or_else(|| ReadError::NotFound("no checkpoint is known yet".into()))?;
        let head_size = head.checkpoint.size;
        if size > head_size {
            return Err(ReadError::NotFound(format!(
                "tree size {size} is beyond the current size {head_size}"
            )));
        }
        let view = TreeView::within(self.tiles.as_ref(), &self.cache, size, head_size);
        Ok((view, head))
    }

    /// The tiles followed.
    pub(crate) fn tiles(&self) -> &dyn TileStore {
        self.tiles.as_ref()
    }

    /// The cache of the tiles followed.
    pub(crate) fn cache(&self) -> &TileCache {
        &self.cache
    }

    fn head_size(&self) -> u64 {
        self.head().map(|h| h.checkpoint.size).unwrap_or(0)
    }

    /// A tile of the followed tree.
    pub fn tile(&self, tile: TileId) -> Result<Arc<Vec<u8>>, ReadError> {
        self.view(self.head_size())?.0.tile(tile)
    }

    /// The exact bytes of entry `index`.
    pub fn entry(&self, index: u64) -> Result<Vec<u8>, ReadError> {
        self.view(self.head_size())?.0.entry(index)
    }

    /// The inclusion proof of entry `index` in the tree of `size`.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ReadError> {
        let (view, _) = self.view(size)?;
        merkle::inclusion_proof(index, size, &view).map_err(ReadError::from)
    }

    /// The consistency proof between two tree sizes (`0 < first <= second <= head`).
    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>, ReadError> {
        let (view, _) = self.view(second)?;
        merkle::consistency_proof(first, second, &view).map_err(ReadError::from)
    }

    /// A receipt for entry `index` against the head followed (the sequencer's own
    /// signed checkpoint: the follower signs nothing).
    pub fn receipt(&self, index: u64) -> Result<Receipt, ReadError> {
        let (view, head) = self.view(self.head_size())?;
        self.receipt_in(index, &view, &head)
    }

    /// [`Follower::receipt`] against the head only while it is of `size` (several
    /// receipts that must share one checkpoint, as a state history's do); `NotFound`
    /// once the head has moved on.
    pub fn receipt_at_head(&self, index: u64, size: u64) -> Result<Receipt, ReadError> {
        let (view, head) = self.view(size)?;
        if head.checkpoint.size != size {
            return Err(ReadError::NotFound(format!(
                "the head has moved on from size {size} to {}",
                head.checkpoint.size
            )));
        }
        self.receipt_in(index, &view, &head)
    }

    fn receipt_in(
        &self,
        index: u64,
        view: &TreeView<'_>,
        head: &Head,
    ) -> Result<Receipt, ReadError> {
        let size = head.checkpoint.size;
        if index >= size {
            return Err(ReadError::NotFound(format!(
                "entry {index} is not in the tree of size {size}"
            )));
        }
        let entry = view.entry_once(index)?;
        let proof = merkle::inclusion_proof(index, size, view)?;
        Ok(Receipt::new(
            self.origin(),
            index,
            &entry,
            size,
            &proof,
            &head.signed,
        ))
    }
}

/// Whether signature line `signature` names `key` (its name and key ID).
fn is_by(signature: &crate::note::NoteSignature, key: &Verifier) -> bool {
    signature.name == key.name() && signature.key_id == key.key_id()
}

/// `held` with the cosignatures of `offered` it lacks that verify, over `held`'s text,
/// with one of `witnesses`; `None` if `offered` is a note of another text (another
/// checkpoint) or adds no such cosignature. A witness already in `held` is kept as it
/// is (a newer timestamp adds nothing to what the note proves).
fn with_cosignatures(held: &Note, offered: &Note, witnesses: &[Verifier]) -> Option<Note> {
    if offered.text() != held.text() {
        return None;
    }
    let mut merged = held.clone();
    let mut added = false;
    for signature in offered.signatures() {
        let Some(witness) = witnesses.iter().find(|w| is_by(signature, w)) else {
            continue;
        };
        if merged.signatures().iter().any(|s| is_by(s, witness))
            || verify_cosignature(held.text(), signature, witness).is_err()
        {
            continue;
        }
        // Only past the note's limits can this fail: the cosignature is then left out.
        added |= merged.add_signature(signature.clone()).is_ok();
    }
    added.then_some(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::{cosign, Checkpoint, KeyType, Signer};

    fn signer(name: &str, key_type: KeyType, seed: u8) -> Signer {
        Signer::from_seed(name, key_type, &[seed; 32]).expect("test key")
    }

    fn checkpoint_note(log: &Signer, size: u64) -> Note {
        Checkpoint {
            origin: log.name().to_string(),
            size,
            root: [size as u8; 32],
            extensions: Vec::new(),
        }
        .sign(log)
        .expect("signed")
    }

    fn cosigned(note: &Note, witnesses: &[&Signer]) -> Note {
        let mut note = note.clone();
        for w in witnesses {
            let line = cosign(note.text(), w, 1_700_000_000).expect("cosigned");
            note.add_signature(line).expect("added");
        }
        note
    }

    /// The witness names a note's signature lines carry, in order (the log's first).
    fn names(note: &Note) -> Vec<&str> {
        note.signatures().iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn only_verified_cosignatures_of_the_same_checkpoint_are_added() {
        let log = signer("log.example", KeyType::Ed25519, 1);
        let (w1, w2) = (
            signer("w1", KeyType::CosignatureV1, 2),
            signer("w2", KeyType::CosignatureV1, 3),
        );
        let unknown = signer("w3", KeyType::CosignatureV1, 4);
        // w2's name and key ID, another key: its line does not verify.
        let forged_w2 = {
            let real = w2.verifier();
            let impostor = signer("w2", KeyType::CosignatureV1, 5);
            let mut line = cosign(checkpoint_note(&log, 7).text(), &impostor, 1).unwrap();
            line.key_id = real.key_id();
            line
        };
        let witnesses = [w1.verifier(), w2.verifier()];
        let held = checkpoint_note(&log, 7);
        let held_w1 = cosigned(&held, &[&w1]);
        let mut with_forged = held.clone();
        with_forged.add_signature(forged_w2).unwrap();
        let cases: Vec<(&str, &Note, Note, Option<Vec<&str>>)> = vec![
            (
                "one witness",
                &held,
                cosigned(&held, &[&w1]),
                Some(vec!["log.example", "w1"]),
            ),
            (
                "both witnesses",
                &held,
                cosigned(&held, &[&w1, &w2]),
                Some(vec!["log.example", "w1", "w2"]),
            ),
            (
                "the one the head lacks",
                &held_w1,
                cosigned(&held, &[&w2]),
                Some(vec!["log.example", "w1", "w2"]),
            ),
            ("nothing new", &held_w1, cosigned(&held, &[&w1]), None),
            ("the log's signature alone", &held, held.clone(), None),
            (
                "another checkpoint",
                &held,
                cosigned(&checkpoint_note(&log, 8), &[&w1]),
                None,
            ),
            (
                "an unknown witness",
                &held,
                cosigned(&held, &[&unknown]),
                None,
            ),
            ("a forged cosignature", &held, with_forged, None),
        ];
        for (case, held, offered, want) in cases {
            let got = with_cosignatures(held, &offered, &witnesses);
            assert_eq!(got.as_ref().map(names), want, "{case}");
            if let Some(merged) = got {
                assert_eq!(merged.text(), held.text(), "{case}");
                assert_eq!(
                    merged
                        .verify(&[log.verifier(), w1.verifier(), w2.verifier()])
                        .map(|v| v.len()),
                    Ok(merged.signatures().len()),
                    "{case}: every line verifies"
                );
            }
        }
    }
}
