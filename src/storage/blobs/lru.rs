//! [`Lru`]: which cached blobs to drop so that a read cache stays within its size, the
//! least recently used first. Pure bookkeeping: the caller removes the files.
//!
//! May import: nothing of the crate.

use std::collections::{BTreeMap, HashMap};

/// The blobs of a cache by last use, against a byte limit.
#[derive(Debug)]
pub struct Lru {
    limit: u64,
    held: u64,
    clock: u64,
    /// Last use → blob.
    by_use: BTreeMap<u64, String>,
    /// Blob → (last use, size).
    entries: HashMap<String, (u64, u64)>,
}

impl Lru {
    /// An empty cache of at most `limit` bytes.
    pub fn new(limit: u64) -> Lru {
        Lru {
            limit,
            held: 0,
            clock: 0,
            by_use: BTreeMap::new(),
            entries: HashMap::new(),
        }
    }

    /// Bytes held.
    #[cfg(test)]
    pub fn held(&self) -> u64 {
        self.held
    }

    /// Changes the limit; the next [`Lru::insert`] or [`Lru::trim`] removes what no
    /// longer fits.
    pub fn set_limit(&mut self, limit: u64) {
        self.limit = limit;
    }

    /// Records `hex` (`size` bytes) as cached and used now; returns the blobs to remove
    /// to fit the limit, least recently used first. The blob just added is never among
    /// them, even when it alone is larger than the limit (it is being served).
    pub fn insert(&mut self, hex: &str, size: u64) -> Vec<String> {
        self.remove(hex);
        let tick = self.tick();
        self.by_use.insert(tick, hex.to_string());
        self.entries.insert(hex.to_string(), (tick, size));
        self.held += size;
        self.trim_keeping(Some(hex))
    }

    /// Drops the least recently used blobs until the rest fit the limit; returns them.
    pub fn trim(&mut self) -> Vec<String> {
        self.trim_keeping(None)
    }

    fn trim_keeping(&mut self, keep: Option<&str>) -> Vec<String> {
        let mut evicted = Vec::new();
        while self.held > self.limit {
            let Some((_, oldest)) = self.by_use.first_key_value() else {
                break;
            };
            if Some(oldest.as_str()) == keep {
                break;
            }
            let oldest = oldest.clone();
            self.remove(&oldest);
            evicted.push(oldest);
        }
        evicted
    }

    /// Records a use of `hex`, if cached.
    pub fn touch(&mut self, hex: &str) {
        let Some((old, size)) = self.entries.get(hex).copied() else {
            return;
        };
        let tick = self.tick();
        self.by_use.remove(&old);
        self.by_use.insert(tick, hex.to_string());
        self.entries.insert(hex.to_string(), (tick, size));
    }

    /// Forgets `hex` (its file is gone).
    pub fn remove(&mut self, hex: &str) {
        if let Some((tick, size)) = self.entries.remove(hex) {
            self.by_use.remove(&tick);
            self.held -= size;
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Steps: ("+", name, size) inserts, ("t", name, 0) touches, ("-", name, 0) removes;
    /// each with the evictions expected and the bytes held after.
    #[test]
    fn the_least_recently_used_go_first() {
        let steps: [(&str, &str, u64, &[&str], u64); 11] = [
            ("+", "a", 40, &[], 40),
            ("+", "b", 40, &[], 80),
            ("+", "c", 20, &[], 100),
            // Over 100: the oldest goes.
            ("+", "d", 10, &["a"], 70),
            // A use makes b the newest; c is then the oldest.
            ("t", "b", 0, &[], 70),
            ("+", "e", 50, &["c"], 100),
            // Larger than the limit alone: everything else goes, it stays.
            ("+", "f", 150, &["d", "b", "e"], 150),
            // The next insert drops it.
            ("+", "g", 1, &["f"], 1),
            // Re-inserting counts the size once.
            ("+", "g", 1, &[], 1),
            ("-", "g", 0, &[], 0),
            ("t", "zz", 0, &[], 0),
        ];
        let mut lru = Lru::new(100);
        for (i, (op, name, size, evicted, held)) in steps.into_iter().enumerate() {
            let got = match op {
                "+" => lru.insert(name, size),
                "t" => {
                    lru.touch(name);
                    vec![]
                }
                _ => {
                    lru.remove(name);
                    vec![]
                }
            };
            assert_eq!(got, evicted, "step {i}");
            assert_eq!(lru.held(), held, "step {i}");
        }
    }

    #[test]
    fn a_lowered_limit_is_applied_by_trim() {
        let mut lru = Lru::new(u64::MAX);
        for (name, size) in [("a", 60), ("b", 60), ("c", 60)] {
            assert!(lru.insert(name, size).is_empty());
        }
        lru.set_limit(100);
        assert_eq!(lru.trim(), ["a", "b"]);
        assert_eq!(lru.held(), 60);
        assert!(lru.trim().is_empty());
    }
}
