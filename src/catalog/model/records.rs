//! The record types of the catalog state: what a grant, a policy, a revocation and a
//! publication leave behind once applied. The entry records are `entry.rs`; where the
//! per-publication records are kept is `store.rs`.
//!
//! Plain data: may import `catalog::wire` (the payload, policy and evidence types) only.

use serde::{Deserialize, Serialize};

use crate::catalog::wire::evidence::EvidenceReport;
use crate::catalog::wire::payload::{
    channels_cover, prefixes_cover, AgentplaneRefs, EvidenceItem, Role,
};
use crate::catalog::wire::policy::Policy;

/// A `PolicySet` in force from its leaf on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRecord {
    /// The signed `issuedAt` of the `PolicySet`, when it carried one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<String>,
    /// Index of the `PolicySet` leaf.
    pub leaf_index: u64,
    /// The policy.
    pub policy: Policy,
}

/// A revoked key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevocationRecord {
    /// Index of the `PublisherRevoke` leaf.
    pub leaf_index: u64,
    /// The admin that revoked it.
    pub revoked_by: String,
}

/// One grant in force for a key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Target prefixes (see [`crate::catalog::prefix_matches`]).
    pub target_prefixes: Vec<String>,
}

impl GrantRecord {
    /// True if this grant lets its key publish `target` on `channel`.
    pub fn covers(&self, target: &str, channel: &str) -> bool {
        self.role == Role::Publisher && self.covers_target(target) && self.covers_channel(channel)
    }

    /// True if one of the prefixes covers `target`.
    pub fn covers_target(&self, target: &str) -> bool {
        prefixes_cover(&self.target_prefixes, target)
    }

    /// True if `channel` is listed or `"*"` is.
    pub fn covers_channel(&self, channel: &str) -> bool {
        channels_cover(&self.channels, channel)
    }
}

/// One accepted publication, as the catalog state keeps it.
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
