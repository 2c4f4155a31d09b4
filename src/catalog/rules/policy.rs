//! The policy rules: what a publication must carry to enter its channel
//! ([`check_publication`]), and the evidence requirements a channel sets, shared by
//! publication and promotion ([`check_evidence`]).
//!
//! Every check here is pure and lists *every* failed requirement, each prefixed by the
//! requirement's name (`requiredEvidence`, `blobsPresent`, `evidenceContent`,
//! `vulnerabilityThreshold`, `requiresDigestPinnedInputs`, `requiredAgentplaneRefs`,
//! `promoteFrom`, `entry`, `channel`), so a refusal says exactly what to fix.
//!
//! May import `catalog::wire` only (the policy, request and evidence types); it reads no
//! state, so `publish --dry-run` runs it too.

use crate::catalog::wire::evidence::EvidenceReport;
use crate::catalog::wire::payload::{AgentplaneRefs, CatalogPublicationRequest, EvidenceItem};
use crate::catalog::wire::policy::{ChannelPolicy, Policy};

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
    use crate::catalog::rules::fixture::{publication_request, IMAGES};
    use crate::catalog::wire::evidence::EvidenceFinding;
    use crate::catalog::wire::severity::Severity;

    const DIGEST: &str = "dd00000000000000000000000000000000000000000000000000000000000000";

    fn finding(index: u64) -> EvidenceFinding {
        EvidenceFinding {
            index,
            format: "json".into(),
            ..EvidenceFinding::default()
        }
    }

    #[test]
    fn publications_against_the_defaults() {
        let policy = Policy::defaults();
        let target = format!("{IMAGES}/x");
        let dev = publication_request(&target, "dev", DIGEST);
        let mut sbom_only = dev.clone();
        sbom_only.evidence.retain(|e| e.evidence_type == "sbom");
        let high = EvidenceReport {
            items: vec![EvidenceFinding {
                max_severity: Some(Severity::High),
                ..finding(2)
            }],
        };
        let low = EvidenceReport {
            items: vec![EvidenceFinding {
                max_severity: Some(Severity::Medium),
                ..finding(2)
            }],
        };
        let contradicted = EvidenceReport {
            items: vec![EvidenceFinding {
                problems: vec!["is not SPDX".into()],
                ..finding(1)
            }],
        };
        let misshapen = EvidenceReport {
            items: vec![finding(9)],
        };
        let none = EvidenceReport::default();
        let cases: Vec<(&CatalogPublicationRequest, &EvidenceReport, Option<u64>, Vec<String>)> = vec![
            (&dev, &none, None, vec![]),
            (&dev, &low, None, vec![]),
            (
                &dev,
                &none,
                Some(6),
                vec![format!("entry: {target} sha256:{DIGEST} is already catalogued by leaf 6; review, promote or change its status instead")],
            ),
            (
                &sbom_only,
                &none,
                None,
                ["build-receipt", "vulnerability-scan", "provenance"]
                    .iter()
                    .map(|t| format!("requiredEvidence: channel dev requires evidence of type {t}, and the request has none"))
                    .collect(),
            ),
            (
                &dev,
                &high,
                None,
                vec!["vulnerabilityThreshold: evidence/2 reports a high finding; channel dev refuses high and above".into()],
            ),
            (
                &dev,
                &contradicted,
                None,
                vec!["evidenceContent: evidence/1 (sbom): is not SPDX".into()],
            ),
            (
                &dev,
                &misshapen,
                None,
                vec!["evidenceContent: finding for evidence/9 which does not exist".into()],
            ),
        ];
        for (r, report, existing, want) in cases {
            assert_eq!(
                check_publication(&policy, r, report, existing),
                want,
                "{report:?}"
            );
        }
        let qa = publication_request(&target, "qa", DIGEST);
        assert_eq!(
            check_publication(&policy, &qa, &none, None),
            ["channel: the policy defines no channel \"qa\" (defined: candidate, dev, stable)"]
        );
        let candidate = publication_request(&target, "candidate", DIGEST);
        let failures = check_publication(&policy, &candidate, &none, None);
        assert_eq!(
            failures[0],
            "promoteFrom: channel candidate is reached only by promotion from dev; publish to dev and promote"
        );
    }

    #[test]
    fn evidence_requirements_of_a_strict_channel() {
        let policy = Policy::defaults();
        let Some(candidate) = policy.channel("candidate") else {
            panic!("no candidate channel");
        };
        let mut r = publication_request(&format!("{IMAGES}/x"), "candidate", DIGEST);
        let mut pinned = r.evidence[0].clone();
        pinned.evidence_type = "task-image-digests".into();
        r.evidence.push(pinned);
        let report = EvidenceReport {
            items: vec![EvidenceFinding {
                pinned: Some(false),
                ..finding(4)
            }],
        };
        let facts = EvidenceFacts {
            evidence: &r.evidence,
            agentplane_refs: &r.agentplane_refs,
            report: &report,
        };
        let failures = check_evidence("candidate", candidate, facts);
        let digest = |i: usize| format!("{:064x}", i + 1);
        let mut want = vec![
            "requiredEvidence: channel candidate requires evidence of type smoke-receipt, and the request has none".to_string(),
        ];
        for (i, t) in ["build-receipt", "sbom", "vulnerability-scan", "provenance"]
            .iter()
            .enumerate()
        {
            want.push(format!(
                "blobsPresent: channel candidate requires every evidence blob to be uploaded; evidence/{i} ({t}) sha256:{} was not",
                digest(i)
            ));
        }
        want.extend([
            "requiresDigestPinnedInputs: channel candidate requires a base-image-receipt showing pinned inputs, and the request has none".to_string(),
            "requiresDigestPinnedInputs: evidence/4 (task-image-digests) shows an input image not pinned by digest".to_string(),
            "requiredAgentplaneRefs: channel candidate requires agentplaneRefs.validationArtifactRef, which is null".to_string(),
            "requiredAgentplaneRefs: channel candidate requires agentplaneRefs.runArtifactRef, which is null".to_string(),
        ]);
        assert_eq!(failures, want);
    }
}
