//! The whole catalog state as one canonical JSON document (RFC 8785), as of any tree
//! size, and its SHA-256 (`/v1/catalog/state`, replay's determinism check). The digest is
//! hashed as the JSON is produced, one record at a time, so answering it does not load
//! the state.
//!
//! May import `catalog::error`, `catalog::wire` (canonical JSON) and `catalog::model` (the
//! state's read API).

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::catalog::error::{CatalogError, RecordError};
use crate::catalog::model::entry::EntryRecord;
use crate::catalog::model::records::{
    GrantRecord, PolicyRecord, PublicationRecord, RevocationRecord,
};
use crate::catalog::model::state::Catalog;
use crate::catalog::wire::canonical::to_canonical_vec;
use crate::catalog::wire::payload::API_VERSION;
use crate::note::Verifier;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AuthorityView<'a> {
    admin_keys: Vec<String>,
    created_at: &'a str,
    log_key: String,
    origin: &'a str,
}

#[derive(Serialize)]
struct PrincipalView<'a> {
    grants: Vec<&'a GrantRecord>,
    key: String,
}

impl Catalog {
    /// The whole state as canonical JSON (RFC 8785): the input of [`Catalog::state_digest`].
    pub fn state_json(&self) -> Result<Vec<u8>, CatalogError> {
        self.state_json_at(self.applied_size())
    }

    /// The state as it was after the first `at` leaves (`at` at most `applied_size()`), as
    /// canonical JSON. Every part of the state is an append-only list of records tagged
    /// with their leaf index, so this equals `state_json()` of a catalog that applied only
    /// those leaves: the live server can answer for its committed size while a batch is
    /// being admitted, and replay can compare at one exact size. It holds the whole state
    /// in memory; [`Catalog::try_state_digest_at`] hashes the same bytes without doing so.
    pub fn state_json_at(&self, at: u64) -> Result<Vec<u8>, CatalogError> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct StateView<'a> {
            api_version: &'static str,
            applied_size: u64,
            authority: Option<AuthorityView<'a>>,
            #[serde(skip_serializing_if = "Vec::is_empty")]
            entries: Vec<EntryRecord>,
            #[serde(skip_serializing_if = "Vec::is_empty")]
            policies: Vec<&'a PolicyRecord>,
            principals: BTreeMap<&'a str, PrincipalView<'a>>,
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            revoked: BTreeMap<&'a str, &'a RevocationRecord>,
            subjects: BTreeMap<String, Vec<PublicationRecord>>,
        }
        let at = at.min(self.applied_size());
        let mut subjects: BTreeMap<String, Vec<PublicationRecord>> = BTreeMap::new();
        for s in subjects_at(self, at) {
            let (digest, publication) = s?;
            subjects.entry(digest).or_default().push(publication);
        }
        let view = StateView {
            api_version: API_VERSION,
            applied_size: at,
            authority: authority_view(self, at),
            principals: principals_view(self, at),
            subjects,
            policies: policies_view(self, at),
            revoked: revoked_view(self, at),
            entries: entries_at(self, at).collect::<Result<_, _>>()?,
        };
        to_canonical_vec(&view)
    }

    /// SHA-256 of [`Catalog::state_json`]: equal digests mean equal states (replay determinism).
    pub fn state_digest(&self) -> [u8; 32] {
        self.state_digest_at(self.applied_size())
    }

    /// SHA-256 of [`Catalog::state_json_at`].
    pub fn state_digest_at(&self, at: u64) -> [u8; 32] {
        match self.try_state_digest_at(at) {
            Ok(d) => d,
            // Encoding cannot fail for these types, and the in-memory store cannot fail:
            // hash the error rather than panic. Callers with a store that can fail use
            // `try_state_digest_at`.
            Err(e) => Sha256::digest(e.to_string().as_bytes()).into(),
        }
    }

    /// SHA-256 of [`Catalog::state_json_at`], or why the state could not be read. The
    /// canonical JSON is hashed as it is produced, so memory stays bounded however large
    /// the state.
    pub fn try_state_digest_at(&self, at: u64) -> Result<[u8; 32], CatalogError> {
        let mut hash = Sha256::new();
        stream_state_at(self, at, &mut |bytes| hash.update(bytes))?;
        Ok(hash.finalize().into())
    }
}

/// The state digest at one size, hashed from parts fed in the canonical order, so a
/// snapshot writer can compute it while it copies the records a chunk at a time
/// (holding the catalog's lock for one chunk, never for the whole state):
/// [`StateDigester::begin`], every entry ([`StateDigester::entry`], in publication
/// order), [`StateDigester::admin`], every subject key ([`StateDigester::subject`], in
/// key order), [`StateDigester::finish`]. It hashes exactly the bytes of
/// [`Catalog::state_json_at`] (tested below), as `stream_state_at` does.
#[derive(Debug)]
pub struct StateDigester {
    hash: Sha256,
    at: u64,
    entries: bool,
    open: Option<String>,
}

impl StateDigester {
    /// Starts the digest of the state after the first `at` leaves; `admin` is a catalog
    /// whose admin-side state is that of at least `at` leaves (its records are not read).
    pub fn begin(admin: &Catalog, at: u64) -> Result<StateDigester, CatalogError> {
        let at = at.min(admin.applied_size());
        let mut hash = Sha256::new();
        hash.update(b"{\"apiVersion\":");
        hash.update(to_canonical_vec(API_VERSION)?);
        hash.update(b",\"appliedSize\":");
        hash.update(to_canonical_vec(&at)?);
        hash.update(b",\"authority\":");
        hash.update(to_canonical_vec(&authority_view(admin, at))?);
        Ok(StateDigester {
            hash,
            at,
            entries: false,
            open: None,
        })
    }

    /// One stored entry record as of the size (decisions at or after it removed), in
    /// publication order.
    pub fn entry(&mut self, value: &[u8]) -> Result<(), CatalogError> {
        let entry: EntryRecord = serde_json::from_slice(value)
            .map_err(|e| RecordError::Corrupt(format!("decoding an entry: {e}")))?;
        self.hash.update(if self.entries {
            &b","[..]
        } else {
            &b",\"entries\":["[..]
        });
        self.hash.update(to_canonical_vec(&entry)?);
        self.entries = true;
        Ok(())
    }

    /// The admin-side members, after the last entry.
    pub fn admin(&mut self, admin: &Catalog) -> Result<(), CatalogError> {
        let at = self.at;
        if self.entries {
            self.hash.update(b"]");
        }
        let policies = policies_view(admin, at);
        if !policies.is_empty() {
            self.hash.update(b",\"policies\":");
            self.hash.update(to_canonical_vec(&policies)?);
        }
        self.hash.update(b",\"principals\":");
        self.hash
            .update(to_canonical_vec(&principals_view(admin, at))?);
        let revoked = revoked_view(admin, at);
        if !revoked.is_empty() {
            self.hash.update(b",\"revoked\":");
            self.hash.update(to_canonical_vec(&revoked)?);
        }
        self.hash.update(b",\"subjects\":{");
        Ok(())
    }

    /// One stored `Subjects` key below the size, in key order; its publication is read
    /// from `records` (one read by leaf index per key: at a size larger than the page
    /// cache, [`StateDigester::subject_publication`] with the publications sorted is far
    /// faster).
    pub fn subject(&mut self, records: &Catalog, key: &[u8]) -> Result<(), CatalogError> {
        let (digest, index) = split_subject_key(key)?;
        let publication = records.records().publication(index)?.ok_or_else(|| {
            RecordError::Corrupt(format!("subject {digest} lists missing leaf {index}"))
        })?;
        self.hash_publication(digest, &publication)
    }

    /// One stored `Subjects` key below the size, in key order, with its publication
    /// (read in leaf order and sorted by the caller). Refuses a publication that is not
    /// the one the key names (another subject or leaf).
    pub fn subject_publication(
        &mut self,
        key: &[u8],
        publication: &PublicationRecord,
    ) -> Result<(), CatalogError> {
        let (digest, index) = split_subject_key(key)?;
        if publication.subject_digest != digest || publication.leaf_index != index {
            return Err(RecordError::Corrupt(format!(
                "subject {digest} lists leaf {index}, but the publication there is leaf {} of {}",
                publication.leaf_index, publication.subject_digest
            ))
            .into());
        }
        self.hash_publication(digest, publication)
    }

    fn hash_publication(
        &mut self,
        digest: &str,
        publication: &PublicationRecord,
    ) -> Result<(), CatalogError> {
        if self.open.as_deref() == Some(digest) {
            self.hash.update(b",");
        } else {
            if self.open.is_some() {
                self.hash.update(b"],");
            }
            self.hash.update(to_canonical_vec(&digest)?);
            self.hash.update(b":[");
            self.open = Some(digest.to_string());
        }
        self.hash.update(to_canonical_vec(publication)?);
        Ok(())
    }

    /// The digest.
    pub fn finish(mut self) -> [u8; 32] {
        if self.open.is_some() {
            self.hash.update(b"]");
        }
        self.hash.update(b"}}");
        self.hash.finalize().into()
    }
}

/// A `Subjects` key's subject digest and leaf index.
fn split_subject_key(key: &[u8]) -> Result<(&str, u64), RecordError> {
    let malformed = || RecordError::Corrupt("a subject key is malformed".into());
    let n = key
        .len()
        .checked_sub(9)
        .filter(|&n| key[n] == 0)
        .ok_or_else(malformed)?;
    let digest = std::str::from_utf8(&key[..n]).map_err(|_| malformed())?;
    let index_bytes: [u8; 8] = key[n + 1..].try_into().map_err(|_| malformed())?;
    Ok((digest, u64::from_be_bytes(index_bytes)))
}

fn authority_view(state: &Catalog, at: u64) -> Option<AuthorityView<'_>> {
    let (origin, log_key, created_at) = (state.origin()?, state.log_key()?, state.created_at()?);
    (at > 0).then(|| AuthorityView {
        origin,
        log_key: log_key.to_vkey(),
        admin_keys: state.admins().iter().map(Verifier::to_vkey).collect(),
        created_at,
    })
}

fn principals_view(state: &Catalog, at: u64) -> BTreeMap<&str, PrincipalView<'_>> {
    state
        .principals()
        .filter_map(|(id, verifier, grants)| {
            let grants: Vec<&GrantRecord> = grants.iter().filter(|g| g.leaf_index < at).collect();
            (!grants.is_empty()).then(|| {
                (
                    id,
                    PrincipalView {
                        key: verifier.to_vkey(),
                        grants,
                    },
                )
            })
        })
        .collect()
}

fn policies_view(state: &Catalog, at: u64) -> Vec<&PolicyRecord> {
    state
        .policies()
        .iter()
        .filter(|p| p.leaf_index < at)
        .collect()
}

fn revoked_view(state: &Catalog, at: u64) -> BTreeMap<&str, &RevocationRecord> {
    state
        .revocations()
        .filter(|(_, r)| r.leaf_index < at)
        .collect()
}

/// The entries below `at`, in publication order, with their decisions below `at`.
fn entries_at(
    state: &Catalog,
    at: u64,
) -> impl Iterator<Item = Result<EntryRecord, RecordError>> + '_ {
    state.records().entries(0, at).map(move |e| {
        let (_, mut e) = e?;
        e.decisions.retain(|d| d.leaf_index < at);
        Ok(e)
    })
}

/// The publications below `at` with their subject digest, by digest (byte order, which
/// is RFC 8785's order for these ASCII strings) and then in leaf order.
fn subjects_at(
    state: &Catalog,
    at: u64,
) -> impl Iterator<Item = Result<(String, PublicationRecord), RecordError>> + '_ {
    let records = state.records();
    records
        .subject_keys()
        .filter(move |k| k.as_ref().map_or(true, |(_, i)| *i < at))
        .map(move |k| {
            let (digest, index) = k?;
            let publication = records.publication(index)?.ok_or_else(|| {
                RecordError::Corrupt(format!("subject {digest} lists missing leaf {index}"))
            })?;
            Ok((digest, publication))
        })
}

/// Writes the bytes of [`Catalog::state_json_at`] to `out` one record at a time, so
/// the state is never whole in memory. RFC 8785 of an object is its members sorted by
/// name, each value canonical on its own, with no whitespace: so the members are
/// written here in that order (apiVersion, appliedSize, authority, entries, policies,
/// principals, revoked, subjects), omitted exactly when `state_json_at` omits them,
/// and every value is encoded with the same `to_canonical_vec`. The tests check that
/// both give the same bytes.
fn stream_state_at(
    state: &Catalog,
    at: u64,
    out: &mut dyn FnMut(&[u8]),
) -> Result<(), CatalogError> {
    let at = at.min(state.applied_size());
    out(b"{\"apiVersion\":");
    out(&to_canonical_vec(API_VERSION)?);
    out(b",\"appliedSize\":");
    out(&to_canonical_vec(&at)?);
    out(b",\"authority\":");
    out(&to_canonical_vec(&authority_view(state, at))?);
    let mut any = false;
    for e in entries_at(state, at) {
        out(if any { b"," } else { b",\"entries\":[" });
        out(&to_canonical_vec(&e?)?);
        any = true;
    }
    if any {
        out(b"]");
    }
    let policies = policies_view(state, at);
    if !policies.is_empty() {
        out(b",\"policies\":");
        out(&to_canonical_vec(&policies)?);
    }
    out(b",\"principals\":");
    out(&to_canonical_vec(&principals_view(state, at))?);
    let revoked = revoked_view(state, at);
    if !revoked.is_empty() {
        out(b",\"revoked\":");
        out(&to_canonical_vec(&revoked)?);
    }
    out(b",\"subjects\":{");
    let mut open: Option<String> = None;
    for s in subjects_at(state, at) {
        let (digest, publication) = s?;
        if open.as_ref() == Some(&digest) {
            out(b",");
        } else {
            if open.is_some() {
                out(b"],");
            }
            out(&to_canonical_vec(&digest)?);
            out(b":[");
            open = Some(digest);
        }
        out(&to_canonical_vec(&publication)?);
    }
    if open.is_some() {
        out(b"]");
    }
    out(b"}}");
    Ok(())
}
