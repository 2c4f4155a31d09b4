//! Publications read in leaf order, handed back in the order of the state digest's
//! subject section (subject digest, then leaf index): an external merge sort on disk.
//!
//! Why: the state digest hashes every publication under its subject, subjects in digest
//! order. Walking the `Subjects` index and reading each publication by its leaf index
//! is one random read per publication; at 10 M entries, with the records far larger
//! than the page cache, a whole snapshot spent over 17 minutes on them (ADR 0020).
//! Read in leaf order instead, the publications come off the disk sequentially; they
//! are sorted here in runs of a bounded size, each spilled to an unnamed temporary file
//! (`O_TMPFILE`-style: nothing is left behind by a crash), and merged.
//!
//! Memory: at most [`RUN_BYTES`] of buffered publications, and one read buffer per run
//! while merging. Descriptors: at most [`FAN_IN`] runs are open at once; beyond that the
//! oldest runs are merged into one first.
//!
//! May import `catalog` (the publication record, the record error, the state digester)
//! and `storage::durable` (a private directory).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::catalog::{CatalogError, PublicationRecord, RecordError, StateDigester};
use crate::storage::durable::create_private_dir_all;

/// Bytes of buffered publications before a run is sorted and spilled.
pub const RUN_BYTES: usize = 32 << 20;
/// The most runs merged at once.
pub const FAN_IN: usize = 128;
/// The read buffer of each run while merging.
const READ_BUFFER: usize = 64 << 10;

/// One publication: its key in the `Subjects` space (subject digest, 0, leaf index big
/// endian; the same byte order as the state digest's) and its stored value.
pub type Keyed = (Vec<u8>, Vec<u8>);

/// The `Subjects` key of a publication: its subject digest, a zero byte and its leaf
/// index, big endian.
pub fn subject_key(publication: &PublicationRecord) -> Vec<u8> {
    let digest = publication.subject_digest.as_bytes();
    let mut key = Vec::with_capacity(digest.len() + 9);
    key.extend_from_slice(digest);
    key.push(0);
    key.extend_from_slice(&publication.leaf_index.to_be_bytes());
    key
}

/// Publications pushed in any order, handed back by [`SubjectSort::finish`] in key order.
#[derive(Debug)]
pub struct SubjectSort {
    dir: PathBuf,
    run_bytes: usize,
    fan_in: usize,
    buffer: Vec<Keyed>,
    buffered: usize,
    runs: Vec<File>,
}

impl SubjectSort {
    /// A sort spilling into unnamed files in `dir` (which must exist), with the default
    /// run size and fan-in.
    pub fn new(dir: &Path) -> SubjectSort {
        SubjectSort::with_limits(dir, RUN_BYTES, FAN_IN)
    }

    /// A sort with its run size in bytes and the most runs merged at once (at least 2).
    pub fn with_limits(dir: &Path, run_bytes: usize, fan_in: usize) -> SubjectSort {
        SubjectSort {
            dir: dir.to_path_buf(),
            run_bytes,
            fan_in: fan_in.max(2),
            buffer: Vec::new(),
            buffered: 0,
            runs: Vec::new(),
        }
    }

    /// Adds one publication as stored (its JSON value); its key is taken from it.
    pub fn push(&mut self, value: &[u8]) -> Result<(), RecordError> {
        let publication: PublicationRecord = serde_json::from_slice(value)
            .map_err(|e| RecordError::Corrupt(format!("decoding a publication: {e}")))?;
        let key = subject_key(&publication);
        self.buffered += key.len() + value.len() + 64;
        self.buffer.push((key, value.to_vec()));
        if self.buffered >= self.run_bytes {
            self.spill()?;
        }
        Ok(())
    }

    /// Runs spilled so far (for tests and progress).
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Every publication pushed, in key order.
    pub fn finish(mut self) -> Result<Merged, RecordError> {
        if self.runs.is_empty() {
            self.buffer.sort_unstable();
            return Ok(Merged::memory(self.buffer));
        }
        self.spill()?;
        while self.runs.len() > self.fan_in {
            self.merge_oldest()?;
        }
        Merged::files(std::mem::take(&mut self.runs))
    }

    fn spill(&mut self) -> Result<(), RecordError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.buffer.sort_unstable();
        let mut run = self.run_file()?;
        for item in self.buffer.drain(..) {
            write_item(&mut run, &item).map_err(spill_error)?;
        }
        self.buffered = 0;
        self.runs.push(rewound(run)?);
        if self.runs.len() >= 2 * self.fan_in {
            // Keep descriptors bounded while pushing, too.
            self.merge_oldest()?;
        }
        Ok(())
    }

    /// Merges the `fan_in` oldest runs into one, kept last (the order of runs does not
    /// matter: keys are unique, each holding its leaf index).
    fn merge_oldest(&mut self) -> Result<(), RecordError> {
        let oldest: Vec<File> = self.runs.drain(..self.fan_in).collect();
        let mut merged = Merged::files(oldest)?;
        let mut run = self.run_file()?;
        while let Some(item) = merged.next_item()? {
            write_item(&mut run, &item).map_err(spill_error)?;
        }
        self.runs.push(rewound(run)?);
        Ok(())
    }

    fn run_file(&self) -> Result<BufWriter<File>, RecordError> {
        // Created on the first spill: a small sort never needs the directory.
        create_private_dir_all(&self.dir).map_err(spill_error)?;
        let file = tempfile::tempfile_in(&self.dir).map_err(spill_error)?;
        Ok(BufWriter::with_capacity(1 << 20, file))
    }
}

/// The sorted publications: [`Merged::next_item`] until `None`.
#[derive(Debug)]
pub struct Merged {
    source: Source,
}

#[derive(Debug)]
enum Source {
    Memory(std::vec::IntoIter<Keyed>),
    Files {
        runs: Vec<BufReader<File>>,
        /// The smallest unread item of each run not yet exhausted, with its run.
        heads: BinaryHeap<Reverse<(Keyed, usize)>>,
    },
}

impl Merged {
    fn memory(items: Vec<Keyed>) -> Merged {
        Merged {
            source: Source::Memory(items.into_iter()),
        }
    }

    fn files(files: Vec<File>) -> Result<Merged, RecordError> {
        let mut runs: Vec<BufReader<File>> = files
            .into_iter()
            .map(|f| BufReader::with_capacity(READ_BUFFER, f))
            .collect();
        let mut heads = BinaryHeap::with_capacity(runs.len());
        for (i, run) in runs.iter_mut().enumerate() {
            if let Some(item) = read_item(run)? {
                heads.push(Reverse((item, i)));
            }
        }
        Ok(Merged {
            source: Source::Files { runs, heads },
        })
    }

    /// The next publication in key order, or `None` after the last.
    pub fn next_item(&mut self) -> Result<Option<Keyed>, RecordError> {
        match &mut self.source {
            Source::Memory(items) => Ok(items.next()),
            Source::Files { runs, heads } => {
                let Some(Reverse((item, i))) = heads.pop() else {
                    return Ok(None);
                };
                if let Some(next) = read_item(&mut runs[i])? {
                    heads.push(Reverse((next, i)));
                }
                Ok(Some(item))
            }
        }
    }
}

impl Merged {
    /// Hashes the next publication into `digester`'s subject section under the
    /// `Subjects` key `key`, which must be that publication's: the sorted publications
    /// and the index are read in step, and a key in one but not the other is corrupt.
    pub fn digest_next(
        &mut self,
        digester: &mut StateDigester,
        key: &[u8],
    ) -> Result<(), CatalogError> {
        let listed_only = || {
            RecordError::Corrupt(format!(
                "the subject index lists {} with no publication",
                describe_key(key)
            ))
        };
        let (next_key, value) = self.next_item()?.ok_or_else(listed_only)?;
        match next_key.as_slice().cmp(key) {
            Ordering::Less => return Err(unindexed(&next_key).into()),
            Ordering::Greater => return Err(listed_only().into()),
            Ordering::Equal => {}
        }
        let publication: PublicationRecord = serde_json::from_slice(&value)
            .map_err(|e| RecordError::Corrupt(format!("decoding a publication: {e}")))?;
        digester.subject_publication(key, &publication)
    }

    /// Checks, after the last `Subjects` key, that no publication is left unlisted.
    pub fn all_listed(&mut self) -> Result<(), RecordError> {
        match self.next_item()? {
            Some((key, _)) => Err(unindexed(&key)),
            None => Ok(()),
        }
    }
}

/// A publication that no `Subjects` key lists.
fn unindexed(key: &[u8]) -> RecordError {
    RecordError::Corrupt(format!(
        "the subject index does not list the publication of {}",
        describe_key(key)
    ))
}

/// A `Subjects` key for a message: its subject digest and leaf index.
fn describe_key(key: &[u8]) -> String {
    match key.len().checked_sub(9) {
        Some(n) => {
            let index = key[n + 1..].try_into().map(u64::from_be_bytes);
            let digest = String::from_utf8_lossy(&key[..n]);
            format!("{digest} at leaf {}", index.unwrap_or(u64::MAX))
        }
        None => format!("a malformed key {}", hex::encode(key)),
    }
}

fn spill_error(e: std::io::Error) -> RecordError {
    RecordError::Backend(format!("spilling publications to sort them: {e}"))
}

/// Flushes a run and rewinds it for reading.
fn rewound(run: BufWriter<File>) -> Result<File, RecordError> {
    let mut file = run.into_inner().map_err(|e| spill_error(e.into_error()))?;
    file.seek(SeekFrom::Start(0)).map_err(spill_error)?;
    Ok(file)
}

/// One item: key length and value length (u32 big endian), key, value.
fn write_item(out: &mut impl Write, (key, value): &Keyed) -> std::io::Result<()> {
    let len = |n: usize| {
        u32::try_from(n)
            .map(u32::to_be_bytes)
            .map_err(|_| std::io::Error::new(ErrorKind::InvalidInput, "an item over 4 GiB"))
    };
    out.write_all(&len(key.len())?)?;
    out.write_all(&len(value.len())?)?;
    out.write_all(key)?;
    out.write_all(value)
}

/// The next item of a run, or `None` at its end.
fn read_item(run: &mut impl Read) -> Result<Option<Keyed>, RecordError> {
    let mut lengths = [0u8; 8];
    match run.read_exact(&mut lengths) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(spill_error(e)),
    }
    let [k0, k1, k2, k3, v0, v1, v2, v3] = lengths;
    let key_len = u32::from_be_bytes([k0, k1, k2, k3]) as usize;
    let value_len = u32::from_be_bytes([v0, v1, v2, v3]) as usize;
    let mut key = vec![0u8; key_len];
    let mut value = vec![0u8; value_len];
    run.read_exact(&mut key).map_err(spill_error)?;
    run.read_exact(&mut value).map_err(spill_error)?;
    Ok(Some((key, value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publication(subject: u64, leaf_index: u64) -> Vec<u8> {
        let json = serde_json::json!({
            "acceptedAt": "2026-01-01T00:00:00Z",
            "agentplaneRefs": {
                "replayArtifactRef": null,
                "runArtifactRef": null,
                "validationArtifactRef": null,
            },
            "channel": "dev",
            "evidence": [],
            "grantIndex": 1,
            "leafIndex": leaf_index,
            "policyIndex": 0,
            "publisher": "p+00000000",
            "requestDigest": "00",
            "requesterRef": "r",
            "subjectDigest": format!("sha256:{subject:064x}"),
            "subjectName": "s",
            "targetCatalogRef": "t",
        });
        serde_json::to_vec(&json).unwrap()
    }

    /// Pushes `n` publications of `subjects` subjects in leaf order with the given limits,
    /// and returns the keys handed back and the runs spilled.
    fn sorted(n: u64, subjects: u64, run_bytes: usize, fan_in: usize) -> (Vec<Vec<u8>>, usize) {
        let parent = tempfile::tempdir().unwrap();
        // Not there yet: made by the first spill, and only then.
        let dir = parent.path().join("spill");
        let mut sort = SubjectSort::with_limits(&dir, run_bytes, fan_in);
        for i in 0..n {
            // A scattered subject per leaf, so leaf order is far from key order.
            sort.push(&publication((i * 7919) % subjects, i)).unwrap();
        }
        let runs = sort.runs();
        let mut merged = sort.finish().unwrap();
        let mut keys = Vec::new();
        while let Some((key, value)) = merged.next_item().unwrap() {
            let record: PublicationRecord = serde_json::from_slice(&value).unwrap();
            assert_eq!(subject_key(&record), key, "the value travels with its key");
            keys.push(key);
        }
        match runs {
            0 => assert!(!dir.exists(), "an in-memory sort makes no directory"),
            _ => assert_eq!(
                std::fs::read_dir(&dir).unwrap().count(),
                0,
                "runs are unnamed files"
            ),
        }
        (keys, runs)
    }

    fn expected(n: u64, subjects: u64) -> Vec<Vec<u8>> {
        let mut keys: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                let mut key = format!("sha256:{:064x}", (i * 7919) % subjects).into_bytes();
                key.push(0);
                key.extend_from_slice(&i.to_be_bytes());
                key
            })
            .collect();
        keys.sort();
        keys
    }

    #[test]
    fn publications_come_back_in_subject_key_order_whatever_the_limits() {
        // (publications, subjects, run bytes, fan-in, runs at least)
        let cases: [(u64, u64, usize, usize, usize); 6] = [
            (0, 1, 1 << 20, 4, 0),        // nothing pushed
            (1, 1, 1 << 20, 4, 0),        // one, in memory
            (500, 37, 1 << 20, 4, 0),     // all in memory
            (500, 37, 10_000, 64, 2),     // a few runs, one merge
            (2_000, 101, 4_000, 4, 4),    // runs beyond twice the fan-in: merged early
            (2_000, 2_000, 30_000, 3, 3), // every subject once; cascade at finish
        ];
        for (n, subjects, run_bytes, fan_in, at_least) in cases {
            let (keys, runs) = sorted(n, subjects, run_bytes, fan_in);
            assert_eq!(
                keys,
                expected(n, subjects),
                "case {n} {subjects} {run_bytes}"
            );
            assert!(runs >= at_least, "case {n} {run_bytes}: {runs} runs");
            assert!(runs < 2 * fan_in.max(2), "descriptors stay bounded: {runs}");
        }
    }

    #[test]
    fn a_key_is_the_subject_digest_a_zero_and_the_leaf_index() {
        let record: PublicationRecord = serde_json::from_slice(&publication(5, 258)).unwrap();
        let key = subject_key(&record);
        assert_eq!(&key[..7], b"sha256:");
        assert_eq!(key[71], 0);
        assert_eq!(key[72..], 258u64.to_be_bytes());
    }

    #[test]
    fn a_value_that_is_not_a_publication_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let mut sort = SubjectSort::new(dir.path());
        assert!(matches!(sort.push(b"{}"), Err(RecordError::Corrupt(_))));
        assert!(matches!(
            sort.push(b"not json"),
            Err(RecordError::Corrupt(_))
        ));
    }

    #[test]
    fn a_truncated_run_is_an_error_not_a_short_sort() {
        let mut bytes = Vec::new();
        write_item(&mut bytes, &(b"key".to_vec(), b"value".to_vec())).unwrap();
        bytes.truncate(bytes.len() - 2);
        assert!(read_item(&mut bytes.as_slice()).is_err());
        assert_eq!(read_item(&mut [].as_slice()).unwrap(), None);
    }
}
