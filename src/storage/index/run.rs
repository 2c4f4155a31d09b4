//! The run format: 14-byte records (`[kind][first 8 bytes of the key][leaf index, 5 bytes
//! big-endian]`) in sorted, immutable, fsynced files named `run-<n>.idx`, every 128th key
//! kept in memory as a fence so that a lookup reads one 1.8 KB block per run; and the
//! merge of two runs into one (see docs/adr/0003-lookup-index.md).
//!
//! May import: `storage::durable` and the storage error.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::storage::durable::{create_options, PUBLIC_FILE_MODE};
use crate::storage::StorageError;

pub(super) const LEAF_KIND: u8 = b'L';
pub(super) const DEDUP_KIND: u8 = b'D';
/// Bytes per record: kind, 8-byte key prefix, 5-byte leaf index.
pub(super) const RECORD: usize = 14;
/// Bytes of a record that are its lookup key (kind and prefix).
pub(super) const PROBE: usize = 9;
/// Records per block; the first key of every block is kept in memory.
const FENCE_EVERY: usize = 128;
/// Leaf indices fit in 5 bytes.
pub(super) const MAX_INDEX: u64 = (1 << 40) - 1;

/// One record: kind, key prefix, leaf index.
pub(super) type Record = [u8; RECORD];
/// The part of a record a lookup matches: kind and key prefix.
pub(super) type Probe = [u8; PROBE];

pub(super) fn probe(kind: u8, key: &[u8; 32]) -> Probe {
    let mut p = [0u8; PROBE];
    p[0] = kind;
    p[1..].copy_from_slice(&key[..PROBE - 1]);
    p
}

pub(super) fn record(kind: u8, key: &[u8; 32], index: u64) -> Record {
    let mut r = [0u8; RECORD];
    r[..PROBE].copy_from_slice(&probe(kind, key));
    r[PROBE..].copy_from_slice(&index.to_be_bytes()[8 - (RECORD - PROBE)..]);
    r
}

pub(super) fn record_index(r: &[u8]) -> u64 {
    r[PROBE..RECORD]
        .iter()
        .fold(0u64, |n, b| (n << 8) | u64::from(*b))
}

pub(super) fn io(context: String) -> impl FnOnce(std::io::Error) -> StorageError {
    move |e| StorageError::io(context, e)
}

/// An immutable sorted run file and its fence keys.
#[derive(Debug)]
pub(super) struct Run {
    pub(super) name: String,
    file: File,
    pub(super) records: u64,
    fences: Vec<Probe>,
}

impl Run {
    /// Opens run `name` holding `records` records and reads its fence keys.
    pub(super) fn open(dir: &Path, name: &str, records: u64) -> Result<Run, StorageError> {
        let path = dir.join(name);
        let file = File::open(&path).map_err(io(format!("opening {}", path.display())))?;
        let len = file
            .metadata()
            .map_err(io(format!("reading {}", path.display())))?
            .len();
        if records.checked_mul(RECORD as u64) != Some(len) {
            return Err(StorageError::Corrupt(format!(
                "{} is {len} bytes, the manifest says {records} records",
                path.display()
            )));
        }
        let mut fences = Vec::with_capacity((records as usize).div_ceil(FENCE_EVERY));
        let mut reader = BufReader::with_capacity(1 << 20, &file);
        let mut r = [0u8; RECORD];
        for i in 0..records {
            reader
                .read_exact(&mut r)
                .map_err(io(format!("reading {}", path.display())))?;
            if i as usize % FENCE_EVERY == 0 {
                fences.push(key_of(&r));
            }
        }
        Ok(Run {
            name: name.to_string(),
            file,
            records,
            fences,
        })
    }

    /// Appends the indices of every record whose key is `p`.
    pub(super) fn candidates(&self, p: &Probe, out: &mut Vec<u64>) -> Result<(), StorageError> {
        // Records equal to `p` lie in the last block starting below it and in the blocks
        // starting at it.
        let first = self.fences.partition_point(|f| f < p).saturating_sub(1);
        let end = self.fences.partition_point(|f| f <= p);
        let mut block = vec![0u8; FENCE_EVERY * RECORD];
        for b in first..end {
            let start = (b * FENCE_EVERY) as u64;
            let count = (self.records - start).min(FENCE_EVERY as u64) as usize;
            let bytes = &mut block[..count * RECORD];
            self.file
                .read_exact_at(bytes, start * RECORD as u64)
                .map_err(io(format!("reading index run {}", self.name)))?;
            out.extend(
                bytes
                    .chunks_exact(RECORD)
                    .filter(|r| r[..PROBE] == p[..])
                    .map(record_index),
            );
        }
        Ok(())
    }
}

/// Every record whose key is `p`, as a range of the sorted record sets.
pub(super) fn records_with(p: &Probe) -> std::ops::RangeInclusive<Record> {
    let mut low = [0u8; RECORD];
    low[..PROBE].copy_from_slice(p);
    let mut high = [0xffu8; RECORD];
    high[..PROBE].copy_from_slice(p);
    low..=high
}

fn key_of(r: &Record) -> Probe {
    let mut p = [0u8; PROBE];
    p.copy_from_slice(&r[..PROBE]);
    p
}

/// Writes sorted `records` to run `name` in `dir`, fsynced; returns how many.
pub(super) fn write_run(
    dir: &Path,
    name: &str,
    records: impl Iterator<Item = Record>,
) -> Result<u64, StorageError> {
    let path = dir.join(name);
    let context = || format!("writing {}", path.display());
    let file = create_options(PUBLIC_FILE_MODE)
        .open(&path)
        .map_err(io(context()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut count = 0u64;
    for r in records {
        out.write_all(&r).map_err(io(context()))?;
        count += 1;
    }
    let file = out
        .into_inner()
        .map_err(|e| io(context())(e.into_error()))?;
    file.sync_all().map_err(io(context()))?;
    Ok(count)
}

/// Merges two sorted runs into run `name`; returns its record count.
pub(super) fn merge(dir: &Path, a: &Run, b: &Run, name: &str) -> Result<u64, StorageError> {
    let mut left = RunReader::new(a);
    let mut right = RunReader::new(b);
    let mut failure = None;
    let merged = std::iter::from_fn(|| {
        let next = match (left.peek(), right.peek()) {
            (Ok(Some(l)), Ok(Some(r))) => {
                if l <= r {
                    left.take()
                } else {
                    right.take()
                }
            }
            (Ok(Some(_)), Ok(None)) => left.take(),
            (Ok(None), Ok(Some(_))) => right.take(),
            (Ok(None), Ok(None)) => return None,
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        match next {
            Ok(r) => Some(r),
            Err(e) => {
                failure = Some(e);
                None
            }
        }
    });
    let count = write_run(dir, name, merged)?;
    match failure {
        Some(e) => Err(e),
        None => Ok(count),
    }
}

/// Streams a run's records in order.
struct RunReader<'a> {
    run: &'a Run,
    reader: BufReader<&'a File>,
    position: u64,
    head: Option<Record>,
}

impl<'a> RunReader<'a> {
    fn new(run: &'a Run) -> RunReader<'a> {
        RunReader {
            run,
            reader: BufReader::with_capacity(1 << 20, &run.file),
            position: 0,
            head: None,
        }
    }

    fn peek(&mut self) -> Result<Option<Record>, StorageError> {
        if self.head.is_none() && self.position < self.run.records {
            if self.position == 0 {
                // The file may have been read through this handle before (fences).
                std::io::Seek::seek(&mut self.reader, std::io::SeekFrom::Start(0))
                    .map_err(io(format!("reading index run {}", self.run.name)))?;
            }
            let mut r = [0u8; RECORD];
            self.reader
                .read_exact(&mut r)
                .map_err(io(format!("reading index run {}", self.run.name)))?;
            self.position += 1;
            self.head = Some(r);
        }
        Ok(self.head)
    }

    fn take(&mut self) -> Result<Record, StorageError> {
        self.peek()?;
        self.head
            .take()
            .ok_or_else(|| StorageError::Corrupt(format!("index run {} ended", self.run.name)))
    }
}

pub(super) fn run_name(n: u64) -> String {
    format!("run-{n:016x}.idx")
}

pub(super) fn run_number(name: &str) -> Result<u64, StorageError> {
    name.strip_prefix("run-")
        .and_then(|s| s.strip_suffix(".idx"))
        .and_then(|s| u64::from_str_radix(s, 16).ok())
        .ok_or_else(|| StorageError::Corrupt(format!("bad run name {name:?} in the manifest")))
}
