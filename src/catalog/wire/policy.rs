//! Channel policy, the type: what each channel requires ([`ChannelPolicy`]), the policy of
//! every channel ([`Policy`]), the genesis defaults, and the checks of a policy as a
//! `PolicySet` payload ([`Policy::problems`]). Checking a publication or a promotion
//! against a policy is a rule: `rules/policy.rs`.
//!
//! The policy in force is the last `PolicySet` leaf, or [`Policy::defaults`] before any.
//! The defaults are part of the log format (policy index 0 = the genesis defaults): they
//! may never change meaning without a new `apiVersion`, or replay would decide otherwise.
//!
//! May import, in `wire`: `validate` and `evidence` (for [`Severity`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::severity::Severity;
use super::validate::{check_channel, check_evidence_type, pointer_token};

/// Most channels in one policy.
pub const MAX_CHANNELS: usize = 32;
/// Most required evidence types per channel.
pub const MAX_REQUIRED_TYPES: usize = 32;
/// Most approvals a channel may require.
pub const MAX_APPROVALS: u32 = 16;

/// The agentplane reference names a channel may require.
pub const AGENTPLANE_REF_NAMES: &[&str] = &[
    "validationArtifactRef",
    "runArtifactRef",
    "replayArtifactRef",
];

fn yes() -> bool {
    true
}

fn one() -> u32 {
    1
}

/// What one channel requires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChannelPolicy {
    /// Distinct approvals (by reviewer key name, never the publisher's) needed.
    #[serde(default = "one")]
    pub approvals: u32,
    /// The only channel promotions into this one may come from; a channel with one
    /// cannot be published to directly.
    #[serde(default)]
    pub promote_from: Option<String>,
    /// Every evidence item's blob must have been uploaded (so its content was checked).
    #[serde(default)]
    pub require_blobs: bool,
    /// agentplane references that must be non-null.
    #[serde(default)]
    pub required_agentplane_refs: Vec<String>,
    /// Evidence types that must each appear at least once.
    pub required_evidence: Vec<String>,
    /// The base image and the task images must be pinned by digest: the
    /// `base-image-receipt` and `task-image-digests` evidence must be present and, where
    /// their blobs were uploaded, say so.
    #[serde(default)]
    pub requires_digest_pinned_inputs: bool,
    /// A human must approve; publication is never automatic while this holds.
    #[serde(default = "yes")]
    pub requires_human_review: bool,
    /// A scan finding at or above this severity refuses the request (`null`: no limit).
    #[serde(default)]
    pub vulnerability_threshold: Option<Severity>,
}

impl ChannelPolicy {
    /// Approvals actually needed: at least one while human review is required.
    pub fn required_approvals(&self) -> u32 {
        if self.requires_human_review {
            self.approvals.max(1)
        } else {
            self.approvals
        }
    }
}

/// The policy of every channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Policy {
    /// Channel name → its policy.
    pub channels: BTreeMap<String, ChannelPolicy>,
    /// The freshness window: a decision whose `issuedAt` is more than this many seconds
    /// before the sequencer accepts it is refused (409). Absent: no window (the genesis
    /// defaults); the stale-verdict rule applies either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_window_seconds: Option<u64>,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

impl Policy {
    /// The genesis defaults: `dev` needs the build receipt, SBOM, scan and provenance and
    /// one approval; `candidate` (from `dev`) adds the smoke receipt, uploaded blobs,
    /// digest-pinned inputs and the agentplane validation and run refs; `stable` (from
    /// `candidate`) needs two approvals. Scans refuse `high` and above everywhere.
    pub fn defaults() -> Policy {
        let dev = ChannelPolicy {
            required_evidence: strings(&[
                "build-receipt",
                "sbom",
                "vulnerability-scan",
                "provenance",
            ]),
            require_blobs: false,
            vulnerability_threshold: Some(Severity::High),
            requires_digest_pinned_inputs: false,
            requires_human_review: true,
            approvals: 1,
            promote_from: None,
            required_agentplane_refs: Vec::new(),
        };
        let candidate = ChannelPolicy {
            required_evidence: strings(&[
                "build-receipt",
                "sbom",
                "vulnerability-scan",
                "provenance",
                "smoke-receipt",
            ]),
            require_blobs: true,
            requires_digest_pinned_inputs: true,
            promote_from: Some("dev".into()),
            required_agentplane_refs: strings(&["validationArtifactRef", "runArtifactRef"]),
            ..dev.clone()
        };
        let stable = ChannelPolicy {
            approvals: 2,
            promote_from: Some("candidate".into()),
            ..candidate.clone()
        };
        Policy {
            decision_window_seconds: None,
            channels: [
                ("dev".to_string(), dev),
                ("candidate".to_string(), candidate),
                ("stable".to_string(), stable),
            ]
            .into_iter()
            .collect(),
        }
    }

    /// The policy of `channel`, if it has one.
    pub fn channel(&self, channel: &str) -> Option<&ChannelPolicy> {
        self.channels.get(channel)
    }

    /// Every problem with this policy as a `PolicySet` payload (empty if valid).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.channels.is_empty() || self.channels.len() > MAX_CHANNELS {
            out.push(format!(
                "/channels: must have 1 to {MAX_CHANNELS} channels, found {}",
                self.channels.len()
            ));
        }
        for (name, c) in self.channels.iter().take(MAX_CHANNELS) {
            let at = format!("/channels/{}", pointer_token(name));
            if let Err(m) = check_channel(name) {
                out.push(format!("{at}: channel name {m}"));
            }
            if c.required_evidence.len() > MAX_REQUIRED_TYPES {
                out.push(format!(
                    "{at}/requiredEvidence: at most {MAX_REQUIRED_TYPES} types"
                ));
            }
            for (i, t) in c
                .required_evidence
                .iter()
                .enumerate()
                .take(MAX_REQUIRED_TYPES)
            {
                if let Err(m) = check_evidence_type(t) {
                    out.push(format!("{at}/requiredEvidence/{i}: {m}"));
                } else if c.required_evidence[..i].contains(t) {
                    out.push(format!(
                        "{at}/requiredEvidence/{i}: duplicates an earlier type"
                    ));
                }
            }
            if c.approvals > MAX_APPROVALS {
                out.push(format!("{at}/approvals: at most {MAX_APPROVALS}"));
            }
            for (i, r) in c.required_agentplane_refs.iter().enumerate().take(8) {
                if !AGENTPLANE_REF_NAMES.contains(&r.as_str()) {
                    out.push(format!(
                        "{at}/requiredAgentplaneRefs/{i}: must be one of {AGENTPLANE_REF_NAMES:?}"
                    ));
                } else if c.required_agentplane_refs[..i].contains(r) {
                    out.push(format!(
                        "{at}/requiredAgentplaneRefs/{i}: duplicates an earlier name"
                    ));
                }
            }
            if c.required_agentplane_refs.len() > AGENTPLANE_REF_NAMES.len() {
                out.push(format!("{at}/requiredAgentplaneRefs: at most 3 names"));
            }
            if let Some(from) = &c.promote_from {
                if from == name {
                    out.push(format!(
                        "{at}/promoteFrom: a channel cannot promote from itself"
                    ));
                } else if !self.channels.contains_key(from) {
                    out.push(format!(
                        "{at}/promoteFrom: channel {:?} is not defined in this policy",
                        pointer_token(from)
                    ));
                }
            }
        }
        // Promotion chains must end at a channel that is published to directly.
        for name in self.channels.keys() {
            let mut seen = vec![name.as_str()];
            let mut at = name.as_str();
            while let Some(from) = self
                .channels
                .get(at)
                .and_then(|c| c.promote_from.as_deref())
            {
                if seen.contains(&from) {
                    out.push(format!(
                        "/channels/{}/promoteFrom: promotions form a cycle",
                        pointer_token(name)
                    ));
                    break;
                }
                seen.push(from);
                at = from;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_never_automatic() {
        let p = Policy::defaults();
        assert!(p.problems().is_empty(), "{:?}", p.problems());
        for c in p.channels.values() {
            assert!(c.requires_human_review);
            assert!(c.required_approvals() >= 1);
        }
        assert_eq!(p.channel("stable").map(|c| c.approvals), Some(2));
    }

    #[test]
    fn cycles_and_dangling_promotions_are_refused() {
        let mut p = Policy::defaults();
        if let Some(dev) = p.channels.get_mut("dev") {
            dev.promote_from = Some("stable".into());
        }
        assert!(p.problems().iter().any(|m| m.contains("cycle")));
        let mut p = Policy::defaults();
        if let Some(dev) = p.channels.get_mut("dev") {
            dev.promote_from = Some("qa".into());
        }
        assert!(p.problems().iter().any(|m| m.contains("not defined")));
    }
}
