//! Key filters for the layers of a stacked record store (ADR 0019): a read of a key a
//! delta snapshot does not hold should not cost a block read in every delta.
//!
//! Why: a delta's keys are spread across each space (entry ids are hashes; an entry a
//! decision rewrote can be anywhere below the delta's range), so a lookup that misses
//! finds a candidate block by its first key and must read and parse it (~64 KiB) to
//! learn the key is not there: at 1 M entries, one read of an old entry by id cost 3.8×
//! as much through 8 deltas as over one whole snapshot (docs/performance.md). A Bloom
//! filter per space answers most misses from memory.
//!
//! The same holds for the whole snapshot at the bottom: every new publication looks its
//! entry id up (is it a duplicate?), and that miss read a block of the snapshot, which
//! is most of what a publication costs on top of a large snapshot. So the whole
//! snapshot gets a filter of its entry ids ([`WHOLE_BUDGETS`]).
//!
//! The filter is built when the layer is opened, from the layer's own keys, reading each
//! space in key order up to a byte budget: a delta's small spaces (ids, subjects, names;
//! the entries rewritten below its range, which come first in key order) are covered
//! whole, and a large space only up to the last key read. A key beyond that is
//! looked up in the table as before, so the filter never hides a record: a Bloom filter
//! has false positives (a block read, as without it), never false negatives.
//!
//! May import: the `catalog` root re-exports.

use std::hash::{Hash, Hasher};

use crate::catalog::{RecordError, RecordStore, Scan, Space};

/// Bytes of each space of a delta read to build its filter (keys and values, as
/// stored).
pub const BUDGET_BYTES: usize = 8 << 20;

/// The budgets of a delta: every space up to [`BUDGET_BYTES`].
pub const DELTA_BUDGETS: [usize; 5] = [BUDGET_BYTES; 5];

/// The budgets of a whole snapshot, the lowest layer: its entry ids whole, nothing
/// else. Every new publication looks its entry id up (is it a duplicate?), and without
/// a filter that miss reads a block of the snapshot; its other spaces are large and read
/// by key or scanned. ~40 bytes read per entry at open (about 40 MB at 1 M entries), a
/// filter of 10 bits per entry in memory (1.2 MB at 1 M).
pub const WHOLE_BUDGETS: [usize; 5] = [0, 0, usize::MAX, 0, 0];

/// Bits per key: about a 1 % false-positive rate with [`PROBES`] probes.
const BITS_PER_KEY: usize = 10;
const PROBES: u64 = 7;

/// A Bloom filter over byte strings.
#[derive(Debug, Clone)]
struct Bloom {
    bits: Vec<u64>,
}

/// Two independent 64-bit hashes of `key` (SipHash with fixed keys: deterministic, and
/// the filter is never shared, so nobody can aim collisions at another process's).
fn hashes(key: &[u8]) -> (u64, u64) {
    let mut a = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut a);
    let mut b = std::collections::hash_map::DefaultHasher::new();
    (0x5bd1_e995u32, key).hash(&mut b);
    (a.finish(), b.finish() | 1)
}

impl Bloom {
    fn with_keys<'a>(keys: impl ExactSizeIterator<Item = &'a [u8]>) -> Bloom {
        let words = (keys.len() * BITS_PER_KEY).div_ceil(64).max(1);
        let mut bloom = Bloom {
            bits: vec![0; words],
        };
        for key in keys {
            for bit in bloom.probes(key) {
                bloom.bits[(bit / 64) as usize] |= 1 << (bit % 64);
            }
        }
        bloom
    }

    fn probes(&self, key: &[u8]) -> impl Iterator<Item = u64> {
        let (h1, h2) = hashes(key);
        let m = self.bits.len() as u64 * 64;
        (0..PROBES).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) % m)
    }

    fn may_hold(&self, key: &[u8]) -> bool {
        self.probes(key)
            .all(|bit| self.bits[(bit / 64) as usize] & (1 << (bit % 64)) != 0)
    }
}

/// One space's filter: the keys read, up to `upto` (inclusive; `None`: the whole space).
#[derive(Debug, Clone)]
struct SpaceFilter {
    bloom: Bloom,
    upto: Option<Vec<u8>>,
}

impl SpaceFilter {
    fn may_hold(&self, key: &[u8]) -> bool {
        match &self.upto {
            Some(upto) if key > upto.as_slice() => true,
            _ => self.bloom.may_hold(key),
        }
    }
}

/// A read-only layer whose gets of keys it surely does not hold are answered from
/// memory. Scans go to the layer as they are.
pub struct Filtered {
    layer: Box<dyn RecordStore>,
    /// Per space, in `Space::ALL` order; `None`: no filter (every get reaches the layer).
    spaces: Vec<Option<SpaceFilter>>,
}

impl std::fmt::Debug for Filtered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filtered").finish_non_exhaustive()
    }
}

impl Filtered {
    /// `layer` with a filter per space built from its keys, reading at most
    /// `budgets[space]` bytes of each space (0: no filter for it).
    pub fn build(
        layer: Box<dyn RecordStore>,
        budgets: [usize; 5],
    ) -> Result<Filtered, RecordError> {
        let mut spaces = Vec::with_capacity(Space::ALL.len());
        for space in Space::ALL {
            let budget = budgets[space as usize];
            if budget == 0 {
                spaces.push(None);
                continue;
            }
            let (mut keys, mut read, mut upto) = (Vec::new(), 0usize, None);
            for kv in layer.scan(space, &[], None) {
                let (key, value) = kv?;
                read += key.len() + value.len();
                keys.push(key);
                if read >= budget {
                    upto = keys.last().cloned();
                    break;
                }
            }
            let bloom = Bloom::with_keys(keys.iter().map(Vec::as_slice));
            spaces.push(Some(SpaceFilter { bloom, upto }));
        }
        Ok(Filtered { layer, spaces })
    }
}

impl RecordStore for Filtered {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, RecordError> {
        match self.spaces.get(space as usize) {
            Some(Some(f)) if !f.may_hold(key) => Ok(None),
            _ => self.layer.get(space, key),
        }
    }

    fn scan(&self, space: Space, start: &[u8], end: Option<&[u8]>) -> Scan<'_> {
        self.layer.scan(space, start, end)
    }

    fn write(&mut self, _batch: Vec<crate::catalog::Put>) -> Result<(), RecordError> {
        Err(RecordError::Backend(
            "a snapshot's records are read-only".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{MemoryStore, Put};

    fn store(keys: &[(Space, Vec<u8>)]) -> MemoryStore {
        let mut s = MemoryStore::default();
        s.write(
            keys.iter()
                .map(|(space, key)| Put {
                    space: *space,
                    key: key.clone(),
                    value: vec![7; 100],
                })
                .collect(),
        )
        .unwrap();
        s
    }

    /// Never a false negative, whether a space is covered whole or only up to the
    /// budget; most absent keys are answered without the layer.
    #[test]
    fn a_filtered_layer_answers_every_held_key_and_few_absent_ones_reach_it() {
        let held: Vec<(Space, Vec<u8>)> = Space::ALL
            .into_iter()
            .flat_map(|s| (0..2_000u64).map(move |i| (s, (i * 3).to_be_bytes().to_vec())))
            .collect();
        for budget in [usize::MAX, 50_000, 1] {
            let filtered = Filtered::build(Box::new(store(&held)), [budget; 5]).unwrap();
            for (space, key) in &held {
                assert_eq!(
                    filtered.get(*space, key).unwrap(),
                    Some(vec![7; 100]),
                    "budget {budget}"
                );
            }
            let absent = (0..2_000u64).map(|i| (i * 3 + 1).to_be_bytes());
            let passed = absent
                .filter(|k| filtered.spaces[0].as_ref().unwrap().may_hold(k))
                .count();
            match budget {
                usize::MAX => assert!(passed < 60, "{passed} of 2000 false positives"),
                // Keys beyond the last one read always go to the layer.
                _ => assert!(passed > 1_000, "{passed}"),
            }
        }
    }

    #[test]
    fn an_empty_layer_holds_nothing_and_scans_pass_through() {
        let filtered = Filtered::build(Box::new(MemoryStore::default()), DELTA_BUDGETS).unwrap();
        assert!(!filtered.spaces[1].as_ref().unwrap().may_hold(b"x"));
        assert_eq!(filtered.get(Space::Entries, b"x").unwrap(), None);
        let layer = store(&[(Space::Names, b"a".to_vec()), (Space::Names, b"b".to_vec())]);
        let filtered = Filtered::build(Box::new(layer), DELTA_BUDGETS).unwrap();
        assert_eq!(filtered.scan(Space::Names, b"", None).count(), 2);
        // A space without a budget has no filter: every get reaches the layer.
        let layer = store(&[(Space::Entries, b"e".to_vec())]);
        let filtered = Filtered::build(Box::new(layer), WHOLE_BUDGETS).unwrap();
        assert!(filtered.spaces[1].is_none());
        assert_eq!(
            filtered.get(Space::Entries, b"e").unwrap(),
            Some(vec![7; 100])
        );
    }
}
