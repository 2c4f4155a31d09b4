//! The leaf of every decision kind (`PolicySet`, `PublisherRevoke`, `Review`, `Promotion`,
//! `StatusChange`): the signer's envelope and the authority's admission record, exactly
//! like a `Publication` leaf. Layout: `log-format/leaves.md` §9.

use serde::{Deserialize, Serialize};

use super::decisions::DecisionKind;
use super::dsse::Envelope;
use super::request::{ApiVersion, DigestSet};

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
