//! Channel policy: what a publication must carry to enter a channel, and what a promotion
//! must show to move into one.
//!
//! The policy in force is the last `PolicySet` leaf, or [`Policy::defaults`] before any.
//! The defaults are part of the log format (policy index 0 = the genesis defaults): they
//! may never change meaning without a new `apiVersion`, or replay would decide otherwise.
//!
//! Every check here is pure and lists *every* failed requirement, each prefixed by the
//! requirement's name (`requiredEvidence`, `blobsPresent`, `evidenceContent`,
//! `vulnerabilityThreshold`, `requiresDigestPinnedInputs`, `requiredAgentplaneRefs`,
//! `promoteFrom`, `approvals`), so a refusal says exactly what to fix.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::evidence::{EvidenceReport, Severity};
use super::request::{
    check_channel, check_evidence_type, AgentplaneRefs, CatalogPublicationRequest, EvidenceItem,
};

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
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Channel name → its policy.
    pub channels: BTreeMap<String, ChannelPolicy>,
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
            let at = format!("/channels/{}", super::request::pointer_token(name));
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
                        super::request::pointer_token(from)
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
                        super::request::pointer_token(name)
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

/// The request-side facts a policy is checked against: what a `Publication` leaf recorded.
#[derive(Clone, Copy, Debug)]
pub struct EvidenceFacts<'a> {
    /// The evidence references.
    pub evidence: &'a [EvidenceItem],
    /// The agentplane references.
    pub agentplane_refs: &'a AgentplaneRefs,
    /// What analysis of the uploaded blobs found.
    pub report: &'a EvidenceReport,
}

/// Every policy requirement a publication must meet to enter its channel: the channel
/// exists, is published to directly, holds no entry for the subject yet
/// (`existing_entry` is the publication index of one), and every evidence requirement
/// holds. Empty when admitted. Shared by admission and `publish --dry-run`.
pub fn check_publication(
    policy: &Policy,
    r: &CatalogPublicationRequest,
    report: &EvidenceReport,
    existing_entry: Option<u64>,
) -> Vec<String> {
    let Some(channel) = policy.channel(&r.channel) else {
        let known: Vec<&str> = policy.channels.keys().map(String::as_str).collect();
        return vec![format!(
            "channel: the policy defines no channel {:?} (defined: {})",
            r.channel,
            known.join(", ")
        )];
    };
    let mut failures = Vec::new();
    if let Err(m) = report.check_shape(&r.evidence) {
        failures.push(format!("evidenceContent: {m}"));
    }
    if let Some(from) = &channel.promote_from {
        failures.push(format!(
            "promoteFrom: channel {} is reached only by promotion from {from}; publish to {from} and promote",
            r.channel
        ));
    }
    if let Some(existing) = existing_entry {
        failures.push(format!(
            "entry: {} sha256:{} is already catalogued by leaf {existing}; review, promote or change its status instead",
            r.target_catalog_ref, r.subject.digest.sha256
        ));
    }
    failures.extend(check_evidence(
        &r.channel,
        channel,
        EvidenceFacts {
            evidence: &r.evidence,
            agentplane_refs: &r.agentplane_refs,
            report,
        },
    ));
    failures
}

/// Checks `facts` against the evidence requirements of `channel` (not approvals, not
/// `promoteFrom`). Returns every failure, each named after its requirement.
pub fn check_evidence(
    channel: &str,
    policy: &ChannelPolicy,
    facts: EvidenceFacts<'_>,
) -> Vec<String> {
    let mut out = Vec::new();
    let has = |t: &str| facts.evidence.iter().any(|e| e.evidence_type == t);
    for t in &policy.required_evidence {
        if !has(t) {
            out.push(format!(
                "requiredEvidence: channel {channel} requires evidence of type {t}, and the request has none"
            ));
        }
    }
    if policy.require_blobs {
        for (i, e) in facts.evidence.iter().enumerate() {
            if facts.report.finding(i).is_none() {
                out.push(format!(
                    "blobsPresent: channel {channel} requires every evidence blob to be uploaded; evidence/{i} ({}) sha256:{} was not",
                    e.evidence_type, e.digest.sha256
                ));
            }
        }
    }
    for p in facts.report.problems(facts.evidence) {
        out.push(format!("evidenceContent: {p}"));
    }
    if let Some(limit) = policy.vulnerability_threshold {
        for f in &facts.report.items {
            if let Some(found) = f.max_severity.filter(|s| *s >= limit) {
                out.push(format!(
                    "vulnerabilityThreshold: evidence/{} reports a {} finding; channel {channel} refuses {} and above",
                    f.index,
                    found.as_str(),
                    limit.as_str()
                ));
            }
        }
    }
    if policy.requires_digest_pinned_inputs {
        for t in ["base-image-receipt", "task-image-digests"] {
            let items: Vec<usize> = (0..facts.evidence.len())
                .filter(|i| facts.evidence[*i].evidence_type == t)
                .collect();
            if items.is_empty() {
                out.push(format!(
                    "requiresDigestPinnedInputs: channel {channel} requires a {t} showing pinned inputs, and the request has none"
                ));
            }
            for i in items {
                if facts.report.finding(i).and_then(|f| f.pinned) == Some(false) {
                    out.push(format!(
                        "requiresDigestPinnedInputs: evidence/{i} ({t}) shows an input image not pinned by digest"
                    ));
                }
            }
        }
    }
    let refs = facts.agentplane_refs;
    for name in &policy.required_agentplane_refs {
        let set = match name.as_str() {
            "validationArtifactRef" => refs.validation_artifact_ref.is_some(),
            "runArtifactRef" => refs.run_artifact_ref.is_some(),
            _ => refs.replay_artifact_ref.is_some(),
        };
        if !set {
            out.push(format!(
                "requiredAgentplaneRefs: channel {channel} requires agentplaneRefs.{name}, which is null"
            ));
        }
    }
    out
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
