//! Catalog entries: one per (targetCatalogRef, subject digest), created by its
//! `Publication` and changed only by later decision leaves about it.
//!
//! The state keeps each entry as an append-only list of [`DecisionRecord`]s; its status,
//! channel and approvals are a fold over that list ([`fold`]). Folding only the records
//! below a tree size gives the entry as of that size, which is how queries answer from
//! committed leaves only and how replay compares states at one exact size.
//!
//! May import `catalog::wire` (decision and policy types) and, in `model`, `records`.

use std::collections::BTreeMap;

use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::records::PublicationRecord;
use crate::catalog::wire::decisions::{NewStatus, Verdict};
use crate::catalog::wire::policy::Policy;

/// What a decision leaf did to an entry. On the wire an object whose `kind` is the variant
/// name, beside the variant's fields (camelCase).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all_fields = "camelCase")]
pub enum EntryAction {
    /// A reviewer's verdict for a channel.
    Review {
        /// The channel reviewed for.
        channel: String,
        /// Approve or deny.
        verdict: Verdict,
    },
    /// A move between channels.
    Promotion {
        /// From.
        from_channel: String,
        /// To.
        to_channel: String,
        /// The `PolicySet` whose gate it passed (0: defaults).
        policy_index: u64,
    },
    /// A status change.
    StatusChange {
        /// The new status.
        status: NewStatus,
    },
}

// Written by hand rather than with `#[serde(tag = "kind")]`, which puts the tag first: here
// every member, the tag included, comes in RFC 8785 order, so the state digest takes the
// fast canonical path (see `wire/canonical.rs`).
impl Serialize for EntryAction {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            EntryAction::Review { channel, verdict } => {
                let mut s = serializer.serialize_struct("Review", 3)?;
                s.serialize_field("channel", channel)?;
                s.serialize_field("kind", "Review")?;
                s.serialize_field("verdict", verdict)?;
                s.end()
            }
            EntryAction::Promotion {
                from_channel,
                to_channel,
                policy_index,
            } => {
                let mut s = serializer.serialize_struct("Promotion", 4)?;
                s.serialize_field("fromChannel", from_channel)?;
                s.serialize_field("kind", "Promotion")?;
                s.serialize_field("policyIndex", policy_index)?;
                s.serialize_field("toChannel", to_channel)?;
                s.end()
            }
            EntryAction::StatusChange { status } => {
                let mut s = serializer.serialize_struct("StatusChange", 2)?;
                s.serialize_field("kind", "StatusChange")?;
                s.serialize_field("status", status)?;
                s.end()
            }
        }
    }
}

/// One decision about an entry, as the catalog state keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionRecord {
    /// When it was accepted (RFC 3339).
    pub accepted_at: String,
    /// What it did.
    pub action: EntryAction,
    /// The signed `issuedAt` of the decision, when it carried one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<String>,
    /// Index of the decision leaf.
    pub leaf_index: u64,
    /// The signer (`name+hex8`).
    pub signer: String,
}

/// An entry: its publication and every decision about it, in leaf order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryRecord {
    /// Decisions, in leaf order.
    pub decisions: Vec<DecisionRecord>,
    /// The local id (see [`entry_local_id`]).
    pub id: String,
    /// Index of the `Publication` leaf that created it.
    pub publication_index: u64,
    /// The subject digest (`sha256:<hex>`), where the publication record is kept.
    pub subject_digest: String,
}

/// The local id of the entry for `target` and `sha256:<hex>`: the first 32 hex digits of
/// SHA-256(`target` || "\n" || `subject digest`). Stable, URL-safe, and the same in the
/// CatalogEntry and EvidenceBundle URNs.
pub fn entry_local_id(target: &str, subject_digest: &str) -> String {
    let mut h = Sha256::new();
    h.update(target.as_bytes());
    h.update(b"\n");
    h.update(subject_digest.as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// The authority's status of an entry. `Revoked` has no CatalogEntry equivalent and is
/// shown as `restricted` with the label `catalogStatus: revoked`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryStatus {
    /// Admitted; the channel's approvals are not met yet.
    Draft,
    /// The channel's approvals are met (or the channel needs none).
    Published,
    /// Replaced by a newer artifact.
    Superseded,
    /// Not to be used without further review.
    Restricted,
    /// Kept for the record only.
    Archived,
    /// Withdrawn for cause; final.
    Revoked,
}

impl EntryStatus {
    /// The authority's name for it (`draft` ... `revoked`).
    pub fn as_str(self) -> &'static str {
        match self {
            EntryStatus::Draft => "draft",
            EntryStatus::Published => "published",
            EntryStatus::Superseded => "superseded",
            EntryStatus::Restricted => "restricted",
            EntryStatus::Archived => "archived",
            EntryStatus::Revoked => "revoked",
        }
    }

    /// The sourceos-spec CatalogEntry `status` value (revoked → restricted).
    pub fn spec_status(self) -> &'static str {
        match self {
            EntryStatus::Revoked => "restricted",
            other => other.as_str(),
        }
    }

    /// Parses the authority's name.
    pub fn from_name(s: &str) -> Option<EntryStatus> {
        [
            EntryStatus::Draft,
            EntryStatus::Published,
            EntryStatus::Superseded,
            EntryStatus::Restricted,
            EntryStatus::Archived,
            EntryStatus::Revoked,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }

    /// Superseded, restricted, archived or revoked: no review or promotion applies.
    pub fn is_terminal(self) -> bool {
        !matches!(self, EntryStatus::Draft | EntryStatus::Published)
    }
}

impl From<NewStatus> for EntryStatus {
    fn from(s: NewStatus) -> EntryStatus {
        match s {
            NewStatus::Superseded => EntryStatus::Superseded,
            NewStatus::Restricted => EntryStatus::Restricted,
            NewStatus::Archived => EntryStatus::Archived,
            NewStatus::Revoked => EntryStatus::Revoked,
        }
    }
}

/// The name part of a `name+hex8` short id: approvals are distinct by name, so one person
/// holding two keys under one name counts once.
pub fn key_name(short_id: &str) -> &str {
    short_id
        .rsplit_once('+')
        .map(|(n, _)| n)
        .unwrap_or(short_id)
}

/// An entry folded up to a tree size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryView {
    /// The local id.
    pub id: String,
    /// The publication leaf.
    pub publication_index: u64,
    /// The current channel.
    pub channel: String,
    /// The current status.
    pub status: EntryStatus,
    /// sourceos-spec `promotion.state`: `under-review`, `denied`, `origin` (published
    /// without approvals), `approved` (published with approvals), `promoted`.
    pub promotion_state: &'static str,
    /// Promoted at least once.
    pub promoted: bool,
    /// acceptedAt of the last leaf folded.
    pub updated_at: String,
    /// Every leaf folded: the publication, then each decision.
    pub leaf_indices: Vec<u64>,
    /// The kind of each of `leaf_indices`: `publication`, `review`, `promotion`,
    /// `status-change`.
    pub leaf_kinds: Vec<&'static str>,
    /// channel → reviewer name → latest verdict.
    pub verdicts: BTreeMap<String, BTreeMap<String, Verdict>>,
}

impl EntryView {
    /// Distinct approving reviewer names for `channel`.
    pub fn approvals(&self, channel: &str) -> u32 {
        self.verdicts
            .get(channel)
            .map(|v| v.values().filter(|x| **x == Verdict::Approve).count() as u32)
            .unwrap_or(0)
    }

    /// Reviewer names whose latest verdict for `channel` is deny.
    pub fn denials(&self, channel: &str) -> Vec<&str> {
        self.verdicts
            .get(channel)
            .map(|v| {
                v.iter()
                    .filter(|(_, x)| **x == Verdict::Deny)
                    .map(|(n, _)| n.as_str())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether `channel`'s approvals are met under `policy` (no standing denial).
    pub fn approvals_met(&self, channel: &str, policy: &Policy) -> bool {
        match policy.channel(channel) {
            Some(c) => {
                self.denials(channel).is_empty()
                    && self.approvals(channel) >= c.required_approvals()
            }
            None => false,
        }
    }
}

/// Folds `record` (whose publication is `publication`) over the leaves below `at`.
/// `policy_at(i)` is the policy in force when leaf `i` was admitted. Once an entry is
/// published in a channel it stays published there (a later denial does not unpublish
/// it; a `StatusChange` does).
pub fn fold<'p>(
    record: &EntryRecord,
    publication: &PublicationRecord,
    at: u64,
    policy_at: &dyn Fn(u64) -> &'p Policy,
) -> EntryView {
    let mut view = EntryView {
        id: record.id.clone(),
        publication_index: record.publication_index,
        channel: publication.channel.clone(),
        status: EntryStatus::Draft,
        promotion_state: "under-review",
        promoted: false,
        updated_at: publication.accepted_at.clone(),
        leaf_indices: vec![record.publication_index],
        leaf_kinds: vec!["publication"],
        verdicts: BTreeMap::new(),
    };
    let mut approved_by_review = false;
    if view.approvals_met(&view.channel.clone(), policy_at(record.publication_index)) {
        view.status = EntryStatus::Published;
    }
    for d in record.decisions.iter().take_while(|d| d.leaf_index < at) {
        view.leaf_indices.push(d.leaf_index);
        view.leaf_kinds.push(match d.action {
            EntryAction::Review { .. } => "review",
            EntryAction::Promotion { .. } => "promotion",
            EntryAction::StatusChange { .. } => "status-change",
        });
        view.updated_at = d.accepted_at.clone();
        match &d.action {
            EntryAction::Review { channel, verdict } => {
                view.verdicts
                    .entry(channel.clone())
                    .or_default()
                    .insert(key_name(&d.signer).to_string(), *verdict);
                let channel_now = view.channel.clone();
                if view.status == EntryStatus::Draft
                    && *channel == channel_now
                    && view.approvals_met(&channel_now, policy_at(d.leaf_index))
                {
                    view.status = EntryStatus::Published;
                    approved_by_review = true;
                }
            }
            EntryAction::Promotion { to_channel, .. } => {
                view.channel = to_channel.clone();
                view.status = EntryStatus::Published;
                view.promoted = true;
            }
            EntryAction::StatusChange { status } => view.status = (*status).into(),
        }
    }
    view.promotion_state = if view.promoted {
        "promoted"
    } else if view.status == EntryStatus::Draft {
        if view.denials(&view.channel).is_empty() {
            "under-review"
        } else {
            "denied"
        }
    } else if approved_by_review {
        "approved"
    } else {
        "origin"
    };
    view
}
