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

use serde::{Deserialize, Serialize};

use super::canonical::to_canonical_vec;
use super::decisions::DecisionKind;
use super::dsse::Envelope;
use super::error::CatalogError;
use super::evidence::EvidenceReport;
use super::request::{ApiVersion, DigestSet, PublisherGrantKind};

pub use super::decision_leaf::{DecisionAdmission, DecisionLeaf};

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
}

impl Leaf {
    /// The leaf's `kind` string.
    pub fn kind(&self) -> &'static str {
        match self {
            Leaf::Genesis(_) => "AuthorityGenesis",
            Leaf::Grant(_) => "PublisherGrant",
            Leaf::Publication(_) => "Publication",
            Leaf::Decision(d) => d.kind.as_str(),
        }
    }

    /// The canonical bytes (RFC 8785).
    pub fn to_bytes(&self) -> Result<Vec<u8>, CatalogError> {
        match self {
            Leaf::Genesis(l) => to_canonical_vec(l),
            Leaf::Grant(l) => to_canonical_vec(l),
            Leaf::Publication(l) => to_canonical_vec(l),
            Leaf::Decision(l) => to_canonical_vec(l),
        }
    }

    /// Parses leaf bytes strictly: at most [`MAX_LEAF_BYTES`], a known `kind`, no unknown
    /// fields, and the bytes must be the canonical encoding of the result.
    pub fn parse(bytes: &[u8]) -> Result<Leaf, String> {
        if bytes.len() > MAX_LEAF_BYTES {
            return Err(format!(
                "{} bytes exceeds the {MAX_LEAF_BYTES}-byte entry limit",
                bytes.len()
            ));
        }
        // Read the kind first (skipping the rest without building a tree), then parse the
        // bytes straight into the typed leaf: no intermediate `Value`.
        let probe: KindProbe =
            serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
        let kind = probe.kind.ok_or("no string \"kind\" member")?;
        let leaf = match kind.as_ref() {
            "AuthorityGenesis" => Leaf::Genesis(typed(bytes)?),
            "PublisherGrant" => Leaf::Grant(typed(bytes)?),
            "Publication" => Leaf::Publication(typed(bytes)?),
            k if DecisionKind::from_name(k).is_some() => Leaf::Decision(typed(bytes)?),
            other => {
                let shown: String = other.chars().take(64).collect();
                return Err(format!("unknown leaf kind {shown:?}"));
            }
        };
        match leaf.to_bytes() {
            Ok(c) if c == bytes => Ok(leaf),
            Ok(_) => Err("not in canonical form (RFC 8785)".into()),
            Err(e) => Err(e.to_string()),
        }
    }
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

fn typed<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

/// The dedup key recorded in a leaf (the SHA-256 of its request payload), if the leaf
/// kind has one. Used to rebuild the dedup index from the log alone.
pub fn leaf_dedup_key(bytes: &[u8]) -> Option<[u8; 32]> {
    let digest = match Leaf::parse(bytes).ok()? {
        Leaf::Genesis(_) => return None,
        Leaf::Grant(l) => l.admission.request_digest,
        Leaf::Publication(l) => l.admission.request_digest,
        Leaf::Decision(l) => l.admission.request_digest,
    };
    hex::decode(&digest.sha256).ok()?.try_into().ok()
}
