//! The catalog state digest at a committed size, for `GET /v1/catalog/state`, read a
//! chunk of records at a time, with the publications sorted by subject on disk (ADR
//! 0020) where a spill directory is given.
//!
//! Why chunks: the digest hashes the whole state, which at millions of entries takes
//! seconds, and the sequencer needs the catalog's write lock for every batch it
//! admits. Holding the read lock for the whole digest would let any anonymous reader
//! asking for a fresh size stall publication for that long (issue 10). Every record is
//! tagged with the leaf that made it, and the records below a committed size never
//! change, so a digest read across many short lock holds equals one read under a single
//! hold (tested in `tests/projection_store.rs` against `Catalog::try_state_digest_at`).

use std::ops::Deref;
use std::path::Path;
use std::sync::RwLock;

use super::subject_sort::SubjectSort;
use crate::catalog::{Catalog, CatalogError, MemoryStore, Space, StateDigester};

/// Records read per hold of the catalog's read lock by the server.
pub const CHUNK: usize = 1024;

/// SHA-256 of the canonical catalog state after the first `at` leaves (at most the
/// applied size; equal to `Catalog::try_state_digest_at`), holding the read lock for
/// `chunk` records at a time. With `spill`, the publications are read in leaf order and
/// sorted by subject in unnamed files there, as [`sorted_state_digest_at`] does: a
/// server's records can be far larger than the page cache, and reading them one by one
/// in subject order is a random read per publication (ADR 0020). Without it, they are
/// read by leaf index in subject order, which only suits records that fit in memory.
pub fn state_digest_at(
    catalog: &RwLock<Catalog>,
    at: u64,
    chunk: usize,
    spill: Option<&Path>,
) -> Result<[u8; 32], CatalogError> {
    let read = || catalog.read().unwrap_or_else(|p| p.into_inner());
    digest(read, at, chunk, spill)
}

/// The same digest as [`state_digest_at`], with the publications read in leaf order and
/// sorted by subject in unnamed files in `spill` (ADR 0020), not read one by one in
/// subject order: for a catalog whose records are far larger than the page cache
/// (`fsck --full` at millions of entries).
pub fn sorted_state_digest_at(
    catalog: &Catalog,
    at: u64,
    spill: &Path,
) -> Result<[u8; 32], CatalogError> {
    digest(|| catalog, at, CHUNK, Some(spill))
}

fn digest<G: Deref<Target = Catalog>>(
    read: impl Fn() -> G,
    at: u64,
    chunk: usize,
    spill: Option<&Path>,
) -> Result<[u8; 32], CatalogError> {
    // The admin side (keys, grants, policies, revocations) is small: copied once.
    let admin = Catalog::restore(read().admin_state(), Box::new(MemoryStore::default()))
        .map_err(|(e, _)| CatalogError::from(e))?;
    let mut digester = StateDigester::begin(&admin, at)?;
    let mut sort = spill.map(SubjectSort::new);
    let mut sorted = None;
    let spaces = match sort {
        Some(_) => &[Space::Publications, Space::Entries, Space::Subjects][..],
        None => &[Space::Entries, Space::Subjects][..],
    };
    for &space in spaces {
        if space == Space::Subjects {
            digester.admin(&admin)?;
            sorted = sort.take().map(SubjectSort::finish).transpose()?;
        }
        let mut cursor: Option<Vec<u8>> = None;
        loop {
            let next = {
                let catalog = read();
                let chunk = catalog.snapshot_chunk(space, cursor.as_deref(), at, chunk.max(1))?;
                for (key, value) in &chunk.records {
                    match (space, sort.as_mut(), sorted.as_mut()) {
                        (Space::Publications, Some(sort), _) => sort.push(value)?,
                        (Space::Entries, ..) => digester.entry(value)?,
                        (_, _, Some(sorted)) => sorted.digest_next(&mut digester, key)?,
                        _ => digester.subject(&catalog, key)?,
                    }
                }
                chunk.next
            };
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    if let Some(sorted) = sorted.as_mut() {
        sorted.all_listed()?;
    }
    Ok(digester.finish())
}
