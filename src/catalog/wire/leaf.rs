//! The leaf types and their exact canonical (RFC 8785) layout; see `log-format/leaves.md`.
//!
//! Every leaf is a JSON object with `"apiVersion": "catalog.srcos.ai/v1"` and a `"kind"`.
//! Signed leaves carry the submitter's DSSE envelope verbatim (payload bytes unchanged,
//! base64 normalized to standard padded) plus the authority's admission record.
//! Parsing is strict: unknown fields are rejected and the bytes must be exactly the
//! canonical encoding of what was parsed.
//!
//! Compatibility rule: later versions may only add *optional* members (absent in old leaves,
//! omitted when empty); changing the meaning of a member needs a new `apiVersion`.
//!
//! May import, from `catalog`: `error`, and in `wire` the layers below it (`canonical`,
//! `dsse`, `payload`, `evidence`, `decisions`).

use serde::{Deserialize, Serialize};

use super::canonical::{encodes_to, to_canonical_vec};
use super::decisions::DecisionKind;
use super::dsse::Envelope;
use super::evidence::EvidenceReport;
use super::payload::{ApiVersion, DigestSet, PublisherGrantKind};
use crate::catalog::error::CatalogError;

/// The rules version the sequencer writes into every new leaf's admission record
/// (`rulesVersion`). Version 2 adds signed freshness, stale-decision conflicts, identity by
/// public key and the strict name syntax (`log-format/leaves.md` §10). Leaves without the
/// member are version 1 and replay under the rules they were admitted under; the sequencer
/// always admits under this version, so a submitter cannot choose older rules.
pub const RULES_VERSION: u32 = 2;

/// tlog-tiles entries are at most 65535 bytes; no leaf may be larger.
pub const MAX_LEAF_BYTES: usize = 65535;

/// `"kind": "AuthorityGenesis"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GenesisKind {
    /// The only value.
    AuthorityGenesis,
}

/// `"kind": "Publication"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PublicationKind {
    /// The only value.
    Publication,
}

/// `"kind": "StateCommitment"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StateCommitmentKind {
    /// The only value.
    StateCommitment,
}

/// A commitment to the catalog state map (`log-format/state.md` §5): the sequencer's
/// claim that the map of the state after the first `treeSize` leaves has root `root`.
/// `treeSize` is at most the leaf's own index. The catalog checks only its shape and position;
/// whoever keeps the map (`crate::state`) checks the root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StateCommitmentLeaf {
    /// Always `catalog.srcos.ai/v1`.
    pub api_version: ApiVersion,
    /// The sequencer's clock when it committed (RFC 3339 UTC, milliseconds): how fresh
    /// the commitment is, for `check --max-age`.
    pub committed_at: String,
    /// Always `StateCommitment`.
    pub kind: StateCommitmentKind,
    /// The map root, 64 lowercase hex digits.
    pub root: String,
    /// The number of leaves the committed state covers (= this leaf's index).
    pub tree_size: u64,
    /// The index of the log's previous `StateCommitment` leaf: absent on the first, and
    /// on commitments written before history proofs (`state.md` §5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<u64>,
}

/// Leaf 0: who this authority is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GenesisLeaf {
    /// The admin verifier key strings (sign grants), in the order given at genesis.
    pub admin_keys: Vec<String>,
    /// Always `catalog.srcos.ai/v1`.
    pub api_version: ApiVersion,
    /// RFC 3339 UTC, `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    pub created_at: String,
    /// Always `AuthorityGenesis`.
    pub kind: GenesisKind,
    /// The log's verifier key string (signs checkpoints).
    pub log_key: String,
    /// The log origin (checkpoint first line); equals the log key's name.
    pub origin: String,
}

/// The authority's record of admitting a `PublisherGrant`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GrantAdmission {
    /// When the sequencer accepted it (RFC 3339 UTC, milliseconds).
    pub accepted_at: String,
    /// SHA-256 of the envelope payload bytes (= the dedup key).
    pub request_digest: DigestSet,
    /// The rules version the sequencer admitted it under ([`RULES_VERSION`] in every new
    /// leaf; absent in leaves written before version 2, which replay under the old rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules_version: Option<u32>,
    /// The admin key that signed it (`name+hex8`).
    pub signer: String,
}

/// An admin-signed grant authorizing a publisher key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GrantLeaf {
    /// The admission record.
    pub admission: GrantAdmission,
    /// Always `catalog.srcos.ai/v1`.
    pub api_version: ApiVersion,
    /// The admin's envelope, payload a `PublisherGrant` request.
    pub envelope: Envelope,
    /// Always `PublisherGrant`.
    pub kind: PublisherGrantKind,
}

/// The authority's record of admitting a publication.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PublicationAdmission {
    /// When the sequencer accepted it (RFC 3339 UTC, milliseconds).
    pub accepted_at: String,
    /// What analysis of the uploaded evidence blobs found; absent when no blob was held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<EvidenceReport>,
    /// Leaf index of the `PublisherGrant` that authorized it.
    pub grant_index: u64,
    /// Leaf index of the `PolicySet` in force (0: the genesis defaults). Absent only in
    /// leaves written before policies existed; they are checked against the policy in
    /// force at their position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_index: Option<u64>,
    /// SHA-256 of the envelope payload bytes (= the dedup key).
    pub request_digest: DigestSet,
    /// The rules version the sequencer admitted it under ([`RULES_VERSION`] in every new
    /// leaf; absent in leaves written before version 2, which replay under the old rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules_version: Option<u32>,
    /// The publisher key that signed it (`name+hex8`).
    pub signer: String,
}

/// An accepted publication.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PublicationLeaf {
    /// The admission record.
    pub admission: PublicationAdmission,
    /// Always `catalog.srcos.ai/v1`.
    pub api_version: ApiVersion,
    /// The publisher's envelope, payload a `CatalogPublicationRequest`.
    pub envelope: Envelope,
    /// Always `Publication`.
    pub kind: PublicationKind,
}

// The leaf of every decision kind (`PolicySet`, `PublisherRevoke`, `Review`, `Promotion`,
// `StatusChange`): the signer's envelope and the authority's admission record, exactly
// like a `Publication` leaf. Layout: `log-format/leaves.md` §9.

/// The authority's record of admitting a decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DecisionAdmission {
    /// When the sequencer accepted it (RFC 3339 UTC, milliseconds).
    pub accepted_at: String,
    /// The reviewer grant that authorized it (absent when an admin signed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_index: Option<u64>,
    /// Promotion: the leaf index of the `PolicySet` whose gate it passed (0: defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_index: Option<u64>,
    /// Review, Promotion, StatusChange: the leaf index of the entry's `Publication`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publication_index: Option<u64>,
    /// SHA-256 of the envelope payload bytes (= the dedup key).
    pub request_digest: DigestSet,
    /// The rules version the sequencer admitted it under ([`RULES_VERSION`] in every new
    /// leaf; absent in leaves written before version 2, which replay under the old rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules_version: Option<u32>,
    /// The key that signed it (`name+hex8`).
    pub signer: String,
}

/// A decision leaf.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DecisionLeaf {
    /// The admission record.
    pub admission: DecisionAdmission,
    /// Always `catalog.srcos.ai/v1`.
    pub api_version: ApiVersion,
    /// The signer's envelope.
    pub envelope: Envelope,
    /// Which decision.
    pub kind: DecisionKind,
}

/// Why bytes are not a v1 leaf.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LeafError {
    /// Over [`MAX_LEAF_BYTES`] (the length found).
    #[error("{0} bytes exceeds the {max}-byte entry limit", max = MAX_LEAF_BYTES)]
    TooLarge(usize),
    /// Not JSON (the parser's message).
    #[error("not JSON: {0}")]
    NotJson(String),
    /// No `kind` member holding a string.
    #[error("no string \"kind\" member")]
    NoKind,
    /// A `kind` no leaf has (at most 64 characters of it).
    #[error("unknown leaf kind {0:?}")]
    UnknownKind(String),
    /// The members do not have the leaf's shape (the parser's message).
    #[error("{0}")]
    Shape(String),
    /// The bytes are not the RFC 8785 encoding of what they hold.
    #[error("not in canonical form (RFC 8785)")]
    NotCanonical,
    /// The parsed leaf could not be encoded again (the encoder's message).
    #[error("{0}")]
    Encoding(String),
}

/// Any v1 leaf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Leaf {
    /// `AuthorityGenesis` (leaf 0 only).
    Genesis(GenesisLeaf),
    /// `PublisherGrant`.
    Grant(GrantLeaf),
    /// `Publication`.
    Publication(PublicationLeaf),
    /// `PolicySet`, `PublisherRevoke`, `Review`, `Promotion` or `StatusChange`.
    Decision(DecisionLeaf),
    /// `StateCommitment`, appended by the sequencer.
    StateCommitment(StateCommitmentLeaf),
}

impl Leaf {
    /// The leaf's `kind` string.
    pub fn kind(&self) -> &'static str {
        match self {
            Leaf::Genesis(_) => "AuthorityGenesis",
            Leaf::Grant(_) => "PublisherGrant",
            Leaf::Publication(_) => "Publication",
            Leaf::Decision(d) => d.kind.as_str(),
            Leaf::StateCommitment(_) => "StateCommitment",
        }
    }

    /// The canonical bytes (RFC 8785).
    pub fn to_bytes(&self) -> Result<Vec<u8>, CatalogError> {
        match self {
            Leaf::Genesis(l) => to_canonical_vec(l),
            Leaf::Grant(l) => to_canonical_vec(l),
            Leaf::Publication(l) => to_canonical_vec(l),
            Leaf::Decision(l) => to_canonical_vec(l),
            Leaf::StateCommitment(l) => to_canonical_vec(l),
        }
    }

    /// Parses leaf bytes strictly: at most [`MAX_LEAF_BYTES`], a known `kind`, no unknown
    /// fields, and the bytes must be the canonical encoding of the result.
    pub fn parse(bytes: &[u8]) -> Result<Leaf, LeafError> {
        if bytes.len() > MAX_LEAF_BYTES {
            return Err(LeafError::TooLarge(bytes.len()));
        }
        // The signed leaves (all but genesis and commitments) end in their `kind`: try
        // the type it names first. A typed parse that succeeds has read exactly one
        // `kind` member, with that type's value, so the guess decides only how fast the
        // verdict comes, never what it is; when it fails, the kind is read properly.
        let guessed = match guess_signed_kind(bytes) {
            Some("Publication") => typed(bytes).ok().map(Leaf::Publication),
            Some("PublisherGrant") => typed(bytes).ok().map(Leaf::Grant),
            Some(k) if DecisionKind::from_name(k).is_some() => {
                typed(bytes).ok().map(Leaf::Decision)
            }
            _ => None,
        };
        let leaf = match guessed {
            Some(leaf) => leaf,
            None => Self::parse_by_kind(bytes)?,
        };
        match leaf.encodes_to(bytes) {
            Ok(true) => Ok(leaf),
            Ok(false) => Err(LeafError::NotCanonical),
            Err(e) => Err(LeafError::Encoding(e.to_string())),
        }
    }

    /// Reads the kind (skipping the rest without building a tree), then parses the bytes
    /// straight into the typed leaf: no intermediate `Value`.
    fn parse_by_kind(bytes: &[u8]) -> Result<Leaf, LeafError> {
        let probe: KindProbe =
            serde_json::from_slice(bytes).map_err(|e| LeafError::NotJson(e.to_string()))?;
        let kind = probe.kind.ok_or(LeafError::NoKind)?;
        Ok(match kind.as_ref() {
            "AuthorityGenesis" => Leaf::Genesis(typed(bytes)?),
            "PublisherGrant" => Leaf::Grant(typed(bytes)?),
            "Publication" => Leaf::Publication(typed(bytes)?),
            "StateCommitment" => Leaf::StateCommitment(typed(bytes)?),
            k if DecisionKind::from_name(k).is_some() => Leaf::Decision(typed(bytes)?),
            other => {
                let shown: String = other.chars().take(64).collect();
                return Err(LeafError::UnknownKind(shown));
            }
        })
    }

    /// True if `bytes` are exactly this leaf's canonical encoding (the comparison of
    /// [`Leaf::to_bytes`] with them, without building it when they match).
    pub fn encodes_to(&self, bytes: &[u8]) -> Result<bool, CatalogError> {
        match self {
            Leaf::Genesis(l) => encodes_to(l, bytes),
            Leaf::Grant(l) => encodes_to(l, bytes),
            Leaf::Publication(l) => encodes_to(l, bytes),
            Leaf::Decision(l) => encodes_to(l, bytes),
            Leaf::StateCommitment(l) => encodes_to(l, bytes),
        }
    }
}

/// The `kind` a canonical signed leaf names: its members are `admission`, `apiVersion`,
/// `envelope` and `kind`, in that order, so its last member is `"kind":"..."`. Only a
/// guess (see [`Leaf::parse`]): `None` when the bytes do not look like that.
fn guess_signed_kind(bytes: &[u8]) -> Option<&str> {
    const TAIL: &[u8] = b",\"kind\":\"";
    if !bytes.starts_with(b"{\"admission\":") || !bytes.ends_with(b"\"}") {
        return None;
    }
    let body = &bytes[..bytes.len() - 2];
    let start = body.windows(TAIL.len()).rposition(|w| w == TAIL)? + TAIL.len();
    std::str::from_utf8(&body[start..]).ok()
}

/// Just the `kind` of a leaf; every other member is skipped unparsed.
#[derive(Deserialize)]
struct KindProbe<'a> {
    #[serde(borrow, default, deserialize_with = "string_or_none")]
    kind: Option<std::borrow::Cow<'a, str>>,
}

/// A string, or `None` for any other JSON value (reported as "no string kind").
fn string_or_none<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<std::borrow::Cow<'de, str>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum StringOrOther<'a> {
        String(#[serde(borrow)] std::borrow::Cow<'a, str>),
        Other(serde::de::IgnoredAny),
    }
    Ok(match StringOrOther::deserialize(d)? {
        StringOrOther::String(s) => Some(s),
        StringOrOther::Other(_) => None,
    })
}

fn typed<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, LeafError> {
    serde_json::from_slice(bytes).map_err(|e| LeafError::Shape(e.to_string()))
}

/// The dedup key recorded in a leaf (the SHA-256 of its request payload), if the leaf
/// kind has one. Used to rebuild the dedup index from the log alone.
pub fn leaf_dedup_key(bytes: &[u8]) -> Option<[u8; 32]> {
    let digest = match Leaf::parse(bytes).ok()? {
        Leaf::Genesis(_) | Leaf::StateCommitment(_) => return None,
        Leaf::Grant(l) => l.admission.request_digest,
        Leaf::Publication(l) => l.admission.request_digest,
        Leaf::Decision(l) => l.admission.request_digest,
    };
    hex::decode(&digest.sha256).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_leaves() {
        let big = vec![b' '; MAX_LEAF_BYTES + 1];
        for (bytes, want) in [
            (&big[..], "65536 bytes exceeds the 65535-byte entry limit"),
            (
                &b"{"[..],
                "not JSON: EOF while parsing an object at line 1 column 1",
            ),
            (&b"{}"[..], "no string \"kind\" member"),
            (&br#"{"kind":7}"#[..], "no string \"kind\" member"),
            (&br#"{"kind":"Nope"}"#[..], "unknown leaf kind \"Nope\""),
            (
                &br#"{"kind":"AuthorityGenesis"}"#[..],
                "missing field `adminKeys` at line 1 column 27",
            ),
        ] {
            assert_eq!(Leaf::parse(bytes).unwrap_err().to_string(), want);
        }
        let genesis = GenesisLeaf {
            admin_keys: vec!["a".into()],
            api_version: ApiVersion::V1,
            created_at: "2026-01-01T00:00:00.000Z".into(),
            kind: GenesisKind::AuthorityGenesis,
            log_key: "l".into(),
            origin: "o".into(),
        };
        let bytes = Leaf::Genesis(genesis).to_bytes().unwrap();
        assert!(Leaf::parse(&bytes).is_ok());
        let mut spaced = bytes.clone();
        spaced.push(b' ');
        assert_eq!(Leaf::parse(&spaced), Err(LeafError::NotCanonical));
        assert_eq!(leaf_dedup_key(&bytes), None);
    }
}
