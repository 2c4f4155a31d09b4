//! The catalog projection: a deterministic function of the leaves, in order.
//!
//! [`Catalog::apply`] is the only way state changes; the live sequencer and replay both call
//! it. It trusts signatures (they were checked at admission and can be re-checked with
//! [`super::audit_leaf`]) but re-runs every other admission rule, so a leaf that the
//! authority could not have admitted is refused.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::admission::{Authorized, KeyDirectory};
use super::canonical::to_canonical_vec;
use super::decisions::DecisionKind;
use super::entry::{entry_local_id, EntryRecord};
use super::error::CatalogError;
use super::evidence::EvidenceReport;
use super::leaf::{GenesisKind, GenesisLeaf, MAX_LEAF_BYTES};
use super::policy::Policy;
use super::prepare::{Parsed, PreparedLeaf};
use super::records::{RecordError, RecordStore, Records};
use super::request::{
    check_token, check_vkey, AgentplaneRefs, ApiVersion, EvidenceItem, RequestPayload, Role,
    API_VERSION,
};
use super::time::{format_rfc3339_ms, parse_rfc3339_ms};
use crate::note::{KeyType, Verifier};

/// At most this many admin keys at genesis.
pub const MAX_ADMINS: usize = 16;
/// Longest origin, in characters.
pub const MAX_ORIGIN_CHARS: usize = 255;

/// What applying one leaf changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// The authority was created (leaf 0).
    Genesis,
    /// A grant was added for `publisher` (its `name+hex8`).
    GrantAdded {
        /// The granted key's `name+hex8`.
        publisher: String,
    },
    /// A publication was accepted.
    Published {
        /// `sha256:<64 hex>`.
        subject_digest: String,
        /// The `targetCatalogRef`.
        target: String,
        /// The channel.
        channel: String,
    },
    /// A decision was recorded (policy, revocation, review, promotion, status change).
    Decided {
        /// Its kind.
        kind: DecisionKind,
        /// The entry it is about (local id), for entry decisions.
        entry: Option<String>,
    },
}

/// A `PolicySet` in force from its leaf on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRecord {
    /// Index of the `PolicySet` leaf.
    pub leaf_index: u64,
    /// The policy.
    pub policy: Policy,
}

/// A revoked key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevocationRecord {
    /// Index of the `PublisherRevoke` leaf.
    pub leaf_index: u64,
    /// The admin that revoked it.
    pub revoked_by: String,
}

/// One grant in force for a key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantRecord {
    /// Channels; `"*"` is any.
    pub channels: Vec<String>,
    /// When it was accepted (RFC 3339).
    pub granted_at: String,
    /// The admin that signed it (`name+hex8`).
    pub granted_by: String,
    /// Index of the `PublisherGrant` leaf.
    pub leaf_index: u64,
    /// The role granted.
    pub role: Role,
    /// Target prefixes (see [`super::request::prefix_matches`]).
    pub target_prefixes: Vec<String>,
}

impl GrantRecord {
    /// True if this grant lets its key publish `target` on `channel`.
    pub fn covers(&self, target: &str, channel: &str) -> bool {
        self.role == Role::Publisher && self.covers_target(target) && self.covers_channel(channel)
    }

    /// True if one of the prefixes covers `target`.
    pub fn covers_target(&self, target: &str) -> bool {
        self.target_prefixes
            .iter()
            .any(|p| super::request::prefix_matches(p, target))
    }

    /// True if `channel` is listed or `"*"` is.
    pub fn covers_channel(&self, channel: &str) -> bool {
        self.channels
            .iter()
            .any(|c| c == super::request::ANY_CHANNEL || c == channel)
    }
}

/// One accepted publication, as the projection keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicationRecord {
    /// When it was accepted (RFC 3339).
    pub accepted_at: String,
    /// The agentplane references.
    pub agentplane_refs: AgentplaneRefs,
    /// The channel.
    pub channel: String,
    /// The evidence references.
    pub evidence: Vec<EvidenceItem>,
    /// What analysis of its uploaded evidence found (absent: no blob was held).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence_report: Option<EvidenceReport>,
    /// Index of the grant that authorized it.
    pub grant_index: u64,
    /// Index of the `Publication` leaf.
    pub leaf_index: u64,
    /// The `PolicySet` leaf whose policy admitted it (0: the genesis defaults).
    pub policy_index: u64,
    /// The publisher key (`name+hex8`).
    pub publisher: String,
    /// SHA-256 of the request payload, hex.
    pub request_digest: String,
    /// `requesterRef`.
    pub requester_ref: String,
    /// `sha256:<hex>` of the subject.
    pub subject_digest: String,
    /// `subject.name`.
    pub subject_name: String,
    /// `targetCatalogRef`.
    pub target_catalog_ref: String,
}

#[derive(Clone, Debug)]
pub(super) struct Authority {
    pub(super) origin: String,
    pub(super) log_key: Verifier,
    pub(super) admins: Vec<Verifier>,
    pub(super) created_at: String,
}

#[derive(Clone, Debug)]
pub(super) struct Principal {
    pub(super) verifier: Verifier,
    pub(super) grants: Vec<GrantRecord>,
}

/// The projection. `apply` is the ONLY way state changes; the live sequencer and replay both
/// call it. The admin-side state is in memory; publications and entries, which grow with
/// the log, are in a [`RecordStore`] (in memory unless [`Catalog::with_store`] is given
/// another). Cloning copies the records into memory (a store on disk must not be shared
/// by two catalogs that diverge), so it is for tests and small logs.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    pub(super) applied: u64,
    pub(super) authority: Option<Authority>,
    pub(super) keys: KeyDirectory,
    pub(super) principals: BTreeMap<String, Principal>,
    pub(super) policies: Vec<PolicyRecord>,
    pub(super) revoked: BTreeMap<String, RevocationRecord>,
    /// Publications, entries (by publication leaf index, the order queries page in) and
    /// their lookups.
    pub(super) records: Records,
}

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

/// Checks genesis parameters; shared by `genesis_leaf` and `apply`.
fn check_genesis(origin: &str, log_key: &Verifier, admins: &[Verifier]) -> Result<(), String> {
    check_token(origin, MAX_ORIGIN_CHARS).map_err(|m| format!("origin {m}"))?;
    if log_key.name() != origin {
        return Err(format!(
            "the log key is named {:?} but must be named after the origin {origin:?}",
            log_key.name()
        ));
    }
    if !matches!(log_key.key_type(), KeyType::Ed25519) {
        return Err("the log key must be an Ed25519 key".into());
    }
    if admins.is_empty() || admins.len() > MAX_ADMINS {
        return Err(format!(
            "there must be 1 to {MAX_ADMINS} admin keys, found {}",
            admins.len()
        ));
    }
    for (i, a) in admins.iter().enumerate() {
        if !matches!(a.key_type(), KeyType::Ed25519) {
            return Err(format!("admin key {} must be an Ed25519 key", a.short_id()));
        }
        if a.public_key() == log_key.public_key() || a.short_id() == log_key.short_id() {
            return Err(format!(
                "admin key {} must differ from the log key",
                a.short_id()
            ));
        }
        if admins[..i]
            .iter()
            .any(|b| b.public_key() == a.public_key() || b.short_id() == a.short_id())
        {
            return Err(format!("admin key {} is listed twice", a.short_id()));
        }
    }
    Ok(())
}

impl Catalog {
    /// An empty catalog (nothing applied), its records in memory.
    pub fn new() -> Catalog {
        Catalog::default()
    }

    /// An empty catalog whose records are kept in `store`, which must be empty.
    pub fn with_store(store: Box<dyn RecordStore>) -> Catalog {
        Catalog {
            records: Records::new(store),
            ..Catalog::default()
        }
    }

    /// The canonical bytes of leaf 0 (`AuthorityGenesis`). The log key must be named after
    /// the origin; 1 to 16 Ed25519 admin keys, distinct and different from the log key.
    pub fn genesis_leaf(
        origin: &str,
        log_key: &Verifier,
        admins: &[Verifier],
        created_at_ms: u64,
    ) -> Result<Vec<u8>, CatalogError> {
        check_genesis(origin, log_key, admins).map_err(CatalogError::InvalidGenesis)?;
        let created_at = format_rfc3339_ms(created_at_ms).ok_or_else(|| {
            CatalogError::InvalidGenesis(format!("createdAt {created_at_ms} ms is past year 9999"))
        })?;
        let leaf = GenesisLeaf {
            api_version: ApiVersion::V1,
            kind: GenesisKind::AuthorityGenesis,
            origin: origin.to_string(),
            log_key: log_key.to_vkey(),
            admin_keys: admins.iter().map(Verifier::to_vkey).collect(),
            created_at,
        };
        let bytes = to_canonical_vec(&leaf)?;
        if bytes.len() > MAX_LEAF_BYTES {
            return Err(CatalogError::InvalidGenesis(format!(
                "the genesis entry would be {} bytes, over the {MAX_LEAF_BYTES}-byte limit",
                bytes.len()
            )));
        }
        Ok(bytes)
    }

    /// Number of leaves applied so far (= the index `apply` expects next).
    pub fn applied_size(&self) -> u64 {
        self.applied
    }

    /// Snapshot of every key the authority knows, for [`super::Submission::verify`].
    pub fn keys(&self) -> KeyDirectory {
        self.keys.clone()
    }

    /// The log origin, once genesis is applied.
    pub fn origin(&self) -> Option<&str> {
        self.authority.as_ref().map(|a| a.origin.as_str())
    }

    /// The log's verifier key, once genesis is applied.
    pub fn log_key(&self) -> Option<&Verifier> {
        self.authority.as_ref().map(|a| &a.log_key)
    }

    /// The admin keys, in genesis order (empty before genesis).
    pub fn admins(&self) -> &[Verifier] {
        self.authority
            .as_ref()
            .map(|a| a.admins.as_slice())
            .unwrap_or(&[])
    }

    /// True if `key` is an admin of this authority.
    pub fn is_admin(&self, key: &Verifier) -> bool {
        self.admins().contains(key)
    }

    /// The grants in force for a key (`name+hex8`), in leaf order.
    pub fn grants(&self, short_id: &str) -> &[GrantRecord] {
        self.principals
            .get(short_id)
            .map(|p| p.grants.as_slice())
            .unwrap_or(&[])
    }

    /// The publications of a subject (`sha256:<hex>`), in leaf order.
    pub fn publications(
        &self,
        subject_digest: &str,
    ) -> Result<Vec<PublicationRecord>, RecordError> {
        self.records
            .subject_indices(subject_digest, 0)
            .filter_map(|i| match i {
                Ok(i) => self.records.publication(i).transpose(),
                Err(e) => Some(Err(e)),
            })
            .collect()
    }

    /// The whole state as canonical JSON (RFC 8785): the input of [`Catalog::state_digest`].
    pub fn state_json(&self) -> Result<Vec<u8>, CatalogError> {
        self.state_json_at(self.applied)
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
        let at = at.min(self.applied);
        let mut subjects: BTreeMap<String, Vec<PublicationRecord>> = BTreeMap::new();
        for s in self.subjects_at(at) {
            let (digest, publication) = s?;
            subjects.entry(digest).or_default().push(publication);
        }
        let view = StateView {
            api_version: API_VERSION,
            applied_size: at,
            authority: self.authority_view(at),
            principals: self.principals_view(at),
            subjects,
            policies: self.policies_view(at),
            revoked: self.revoked_view(at),
            entries: self.entries_at(at).collect::<Result<_, _>>()?,
        };
        to_canonical_vec(&view)
    }

    fn authority_view(&self, at: u64) -> Option<AuthorityView<'_>> {
        self.authority
            .as_ref()
            .filter(|_| at > 0)
            .map(|a| AuthorityView {
                origin: &a.origin,
                log_key: a.log_key.to_vkey(),
                admin_keys: a.admins.iter().map(Verifier::to_vkey).collect(),
                created_at: &a.created_at,
            })
    }

    fn principals_view(&self, at: u64) -> BTreeMap<&str, PrincipalView<'_>> {
        self.principals
            .iter()
            .filter_map(|(id, p)| {
                let grants: Vec<&GrantRecord> =
                    p.grants.iter().filter(|g| g.leaf_index < at).collect();
                (!grants.is_empty()).then(|| {
                    (
                        id.as_str(),
                        PrincipalView {
                            key: p.verifier.to_vkey(),
                            grants,
                        },
                    )
                })
            })
            .collect()
    }

    fn policies_view(&self, at: u64) -> Vec<&PolicyRecord> {
        self.policies.iter().filter(|p| p.leaf_index < at).collect()
    }

    fn revoked_view(&self, at: u64) -> BTreeMap<&str, &RevocationRecord> {
        self.revoked
            .iter()
            .filter(|(_, r)| r.leaf_index < at)
            .map(|(k, r)| (k.as_str(), r))
            .collect()
    }

    /// The entries below `at`, in publication order, with their decisions below `at`.
    fn entries_at(&self, at: u64) -> impl Iterator<Item = Result<EntryRecord, RecordError>> + '_ {
        self.records.entries(0, at).map(move |e| {
            let (_, mut e) = e?;
            e.decisions.retain(|d| d.leaf_index < at);
            Ok(e)
        })
    }

    /// The publications below `at` with their subject digest, by digest (byte order, which
    /// is RFC 8785's order for these ASCII strings) and then in leaf order.
    fn subjects_at(
        &self,
        at: u64,
    ) -> impl Iterator<Item = Result<(String, PublicationRecord), RecordError>> + '_ {
        self.records
            .subject_keys()
            .filter(move |k| k.as_ref().map_or(true, |(_, i)| *i < at))
            .map(|k| {
                let (digest, index) = k?;
                let publication = self.records.publication(index)?.ok_or_else(|| {
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
    fn stream_state_at(&self, at: u64, out: &mut dyn FnMut(&[u8])) -> Result<(), CatalogError> {
        let at = at.min(self.applied);
        out(b"{\"apiVersion\":");
        out(&to_canonical_vec(API_VERSION)?);
        out(b",\"appliedSize\":");
        out(&to_canonical_vec(&at)?);
        out(b",\"authority\":");
        out(&to_canonical_vec(&self.authority_view(at))?);
        let mut any = false;
        for e in self.entries_at(at) {
            out(if any { b"," } else { b",\"entries\":[" });
            out(&to_canonical_vec(&e?)?);
            any = true;
        }
        if any {
            out(b"]");
        }
        let policies = self.policies_view(at);
        if !policies.is_empty() {
            out(b",\"policies\":");
            out(&to_canonical_vec(&policies)?);
        }
        out(b",\"principals\":");
        out(&to_canonical_vec(&self.principals_view(at))?);
        let revoked = self.revoked_view(at);
        if !revoked.is_empty() {
            out(b",\"revoked\":");
            out(&to_canonical_vec(&revoked)?);
        }
        out(b",\"subjects\":{");
        let mut open: Option<String> = None;
        for s in self.subjects_at(at) {
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

    /// SHA-256 of [`Catalog::state_json`]: equal digests mean equal states (replay determinism).
    pub fn state_digest(&self) -> [u8; 32] {
        self.state_digest_at(self.applied)
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
        self.stream_state_at(at, &mut |bytes| hash.update(bytes))?;
        Ok(hash.finalize().into())
    }

    /// Applies leaf `index` (must equal `applied_size()`) — trusted: it does not re-verify
    /// signatures (replay must be fast), but it rejects leaves that do not parse or that break
    /// invariants (genesis not first, grant not by an admin, publication outside its grant,
    /// admission record inconsistent with the state, ...). On error nothing changes.
    ///
    /// Equal to [`PreparedLeaf::parse`] then [`Catalog::apply_prepared`]; replay runs the
    /// first half on many leaves in parallel.
    pub fn apply(&mut self, index: u64, leaf: &[u8]) -> Result<Effect, CatalogError> {
        self.expect_next(index)?;
        self.apply_prepared(PreparedLeaf::parse(index, leaf)?)
    }

    /// Applies a leaf that [`PreparedLeaf::parse`] has already parsed and checked on its
    /// own: runs the rules that read the state (order, signer known, grant, policy, ...)
    /// and records it. On error nothing changes.
    pub fn apply_prepared(&mut self, prepared: PreparedLeaf) -> Result<Effect, CatalogError> {
        let index = prepared.index();
        self.expect_next(index)?;
        let inv = |reason: String| CatalogError::Invariant { index, reason };
        let effect = match prepared.into_parsed() {
            Parsed::Genesis(g) => {
                if self.authority.is_some() || index != 0 {
                    return Err(inv("AuthorityGenesis may only be leaf 0".into()));
                }
                let log_key = check_vkey(&g.log_key).map_err(|m| inv(format!("logKey {m}")))?;
                let admins = g
                    .admin_keys
                    .iter()
                    .map(|k| check_vkey(k).map_err(|m| inv(format!("adminKeys: {m}"))))
                    .collect::<Result<Vec<_>, _>>()?;
                check_genesis(&g.origin, &log_key, &admins).map_err(inv)?;
                if parse_rfc3339_ms(&g.created_at).is_none() {
                    return Err(inv(format!("createdAt {:?} is not RFC 3339", g.created_at)));
                }
                for a in &admins {
                    self.keys.insert(a.clone());
                }
                self.authority = Some(Authority {
                    origin: g.origin,
                    log_key,
                    admins,
                    created_at: g.created_at,
                });
                Effect::Genesis
            }
            Parsed::Grant(admission, sub) => {
                let signer = self.signer_key(&admission.signer).map_err(inv)?;
                let (Authorized::Grant { publisher }, RequestPayload::Grant(req)) = (
                    self.authorize(sub.payload(), &signer, &EvidenceReport::default())
                        .map_err(|r| inv(r.to_string()))?,
                    sub.payload(),
                ) else {
                    return Err(inv("grant leaf authorized as something else".into()));
                };
                let id = publisher.short_id();
                let record = GrantRecord {
                    leaf_index: index,
                    role: req.role,
                    target_prefixes: req.target_prefixes.clone(),
                    channels: req.channels.clone(),
                    granted_by: admission.signer.clone(),
                    granted_at: admission.accepted_at.clone(),
                };
                self.keys.insert((*publisher).clone());
                self.principals
                    .entry(id.clone())
                    .or_insert_with(|| Principal {
                        verifier: *publisher,
                        grants: Vec::new(),
                    })
                    .grants
                    .push(record);
                Effect::GrantAdded { publisher: id }
            }
            Parsed::Publication(admission, sub) => {
                let signer = self.signer_key(&admission.signer).map_err(inv)?;
                let report = admission.evidence.clone().unwrap_or_default();
                let (
                    Authorized::Publication {
                        grant_index,
                        policy_index,
                    },
                    RequestPayload::Publication(req),
                ) = (
                    self.authorize(sub.payload(), &signer, &report)
                        .map_err(|r| inv(r.to_string()))?,
                    sub.payload(),
                )
                else {
                    return Err(inv("publication leaf authorized as something else".into()));
                };
                if grant_index != admission.grant_index {
                    return Err(inv(format!(
                        "admission names grant leaf {} but the grant that covers it is leaf {grant_index}",
                        admission.grant_index
                    )));
                }
                if admission.policy_index.is_some_and(|i| i != policy_index) {
                    return Err(inv(format!(
                        "admission names policy leaf {:?} but the policy in force is leaf {policy_index}",
                        admission.policy_index
                    )));
                }
                if admission.evidence.as_ref().is_some_and(|r| r.is_empty()) {
                    return Err(inv("an empty evidence report must be omitted".into()));
                }
                let subject_digest = req.subject_digest();
                let record = PublicationRecord {
                    leaf_index: index,
                    subject_name: req.subject.name.clone(),
                    subject_digest: subject_digest.clone(),
                    target_catalog_ref: req.target_catalog_ref.clone(),
                    channel: req.channel.clone(),
                    requester_ref: req.requester_ref.clone(),
                    evidence: req.evidence.clone(),
                    agentplane_refs: req.agentplane_refs.clone(),
                    publisher: admission.signer.clone(),
                    grant_index,
                    accepted_at: admission.accepted_at.clone(),
                    request_digest: admission.request_digest.sha256.clone(),
                    policy_index,
                    evidence_report: admission.evidence.clone(),
                };
                let id = entry_local_id(&req.target_catalog_ref, &subject_digest);
                self.records.add_publication(&record, &id)?;
                Effect::Published {
                    subject_digest,
                    target: req.target_catalog_ref.clone(),
                    channel: req.channel.clone(),
                }
            }
            Parsed::Decision(kind, admission, sub) => {
                self.apply_decision(index, kind, &admission, &sub)?
            }
        };
        self.applied += 1;
        Ok(effect)
    }

    /// The key of a signed leaf's recorded signer, which must be a key the authority knows
    /// (after genesis).
    pub(super) fn signer_key(&self, signer: &str) -> Result<Verifier, String> {
        if self.authority.is_none() {
            return Err("the first leaf must be AuthorityGenesis".into());
        }
        self.keys
            .get(signer)
            .cloned()
            .ok_or_else(|| format!("the recorded signer {signer} is not a known key"))
    }

    fn expect_next(&self, index: u64) -> Result<(), CatalogError> {
        if index == self.applied {
            Ok(())
        } else {
            Err(CatalogError::OutOfOrder {
                expected: self.applied,
                got: index,
            })
        }
    }
}
