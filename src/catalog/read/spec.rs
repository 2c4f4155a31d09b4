//! The sourceos-spec shapes of an entry: a `CatalogEntry` and its `EvidenceBundle`
//! (`schemas/sourceos-spec/`). Both are pure functions of an [`EntryView`] and its
//! publication; times come from leaves, never from a clock.
//!
//! Mapping choices (also in docs/adr/0001):
//! - `objectRef` is the subject pinned by digest (`name@sha256:<hex>`), `objectType`
//!   `Artifact`, `authorityRef` `tlog://<origin>` (this log).
//! - `status` is the authority's status, except `revoked`, which the CatalogEntry enum
//!   lacks: it is shown as `restricted` with the label `catalogStatus: revoked`.
//! - `scope` is `project`: sourceos-spec ties `platform` scope to a data-acquisition
//!   request (`darRef`), which build artifacts do not have.
//! - Evidence refs are `<uri>#sha256:<hex>`, so the digest travels with the ref; the
//!   decision refs name each leaf: `urn:srcos:decision:<entry id>:<leaf index>-<kind>`.
//!
//! May import `catalog::wire` (payload types), `catalog::error` and
//! `catalog::model` (entry views, records).

use serde::Serialize;

use crate::catalog::error::CatalogError;
use crate::catalog::model::entry::EntryView;
use crate::catalog::model::records::PublicationRecord;
use crate::catalog::wire::payload::AgentplaneRefs;

/// The sourceos-spec version the shapes follow.
pub const SPEC_VERSION: &str = "2.0.0";
/// `CatalogEntry.id` prefix.
pub const ENTRY_URN: &str = "urn:srcos:catalog-entry:";
/// `EvidenceBundle.id` prefix.
pub const BUNDLE_URN: &str = "urn:srcos:evidence-bundle:";

/// `promotion` of a CatalogEntry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SpecPromotion {
    /// `under-review`, `denied`, `origin`, `approved` or `promoted`.
    pub state: &'static str,
}

/// A sourceos-spec `CatalogEntry`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogEntry {
    /// `urn:srcos:catalog-entry:<local id>`.
    pub id: String,
    /// Always `CatalogEntry`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// [`SPEC_VERSION`].
    pub spec_version: &'static str,
    /// `name@sha256:<hex>`.
    pub object_ref: String,
    /// `Artifact`.
    pub object_type: &'static str,
    /// The subject name.
    pub title: String,
    /// `channel`, `catalogStatus`, `targetCatalogRef`, `subjectName`, `subjectDigest`.
    pub labels: std::collections::BTreeMap<&'static str, String>,
    /// The spec status.
    pub status: &'static str,
    /// `urn:srcos:evidence-bundle:<local id>`.
    pub evidence_bundle_ref: String,
    /// `tlog://<origin>`.
    pub authority_ref: String,
    /// `project`.
    pub scope: &'static str,
    /// The promotion state.
    pub promotion: SpecPromotion,
    /// acceptedAt of the last leaf about the entry.
    pub updated_at: String,
}

/// A sourceos-spec `EvidenceBundle`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceBundle {
    /// `urn:srcos:evidence-bundle:<local id>`.
    pub id: String,
    /// Always `EvidenceBundle`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// [`SPEC_VERSION`].
    pub spec_version: &'static str,
    /// The entry's id (the bundle supports the entry).
    pub subject_ref: String,
    /// The subject and its SBOM and scans.
    pub artifact_refs: Vec<String>,
    /// Receipts, provenance, attestations and the agentplane artifacts.
    pub receipt_refs: Vec<String>,
    /// One per leaf about the entry.
    pub decision_refs: Vec<String>,
    /// `srcos-catalog tlog://<origin>`.
    pub generated_by: String,
    /// acceptedAt of the last leaf about the entry.
    pub generated_at: String,
}

fn object_ref(p: &PublicationRecord) -> String {
    format!("{}@{}", p.subject_name, p.subject_digest)
}

/// The CatalogEntry of `view`.
pub fn catalog_entry(
    view: &EntryView,
    publication: &PublicationRecord,
    origin: &str,
) -> CatalogEntry {
    let labels = [
        ("channel", view.channel.clone()),
        ("catalogStatus", view.status.as_str().to_string()),
        ("targetCatalogRef", publication.target_catalog_ref.clone()),
        ("subjectName", publication.subject_name.clone()),
        ("subjectDigest", publication.subject_digest.clone()),
    ]
    .into_iter()
    .collect();
    CatalogEntry {
        id: format!("{ENTRY_URN}{}", view.id),
        kind: "CatalogEntry",
        spec_version: SPEC_VERSION,
        object_ref: object_ref(publication),
        object_type: "Artifact",
        title: publication.subject_name.clone(),
        labels,
        status: view.status.spec_status(),
        evidence_bundle_ref: format!("{BUNDLE_URN}{}", view.id),
        authority_ref: format!("tlog://{origin}"),
        scope: "project",
        promotion: SpecPromotion {
            state: view.promotion_state,
        },
        updated_at: view.updated_at.clone(),
    }
}

/// Evidence types listed as artifacts; every other type is a receipt.
const ARTIFACT_TYPES: &[&str] = &["sbom", "vulnerability-scan"];

fn agentplane_refs(refs: &AgentplaneRefs) -> impl Iterator<Item = String> + '_ {
    [
        &refs.validation_artifact_ref,
        &refs.run_artifact_ref,
        &refs.replay_artifact_ref,
    ]
    .into_iter()
    .flatten()
    .map(|r| format!("{}#sha256:{}", r.uri, r.digest.sha256))
}

/// The EvidenceBundle of `view`.
pub fn evidence_bundle(
    view: &EntryView,
    publication: &PublicationRecord,
    origin: &str,
) -> EvidenceBundle {
    let mut artifact_refs = vec![object_ref(publication)];
    let mut receipt_refs = Vec::new();
    for e in &publication.evidence {
        let r = format!("{}#sha256:{}", e.uri, e.digest.sha256);
        if ARTIFACT_TYPES.contains(&e.evidence_type.as_str()) {
            artifact_refs.push(r);
        } else {
            receipt_refs.push(r);
        }
    }
    receipt_refs.extend(agentplane_refs(&publication.agentplane_refs));
    let decision_refs = view
        .leaf_indices
        .iter()
        .zip(&view.leaf_kinds)
        .map(|(i, k)| format!("urn:srcos:decision:{}:{i}-{k}", view.id))
        .collect();
    EvidenceBundle {
        id: format!("{BUNDLE_URN}{}", view.id),
        kind: "EvidenceBundle",
        spec_version: SPEC_VERSION,
        subject_ref: format!("{ENTRY_URN}{}", view.id),
        artifact_refs,
        receipt_refs,
        decision_refs,
        generated_by: format!("srcos-catalog tlog://{origin}"),
        generated_at: view.updated_at.clone(),
    }
}

/// [`EvidenceBundle`]'s members in RFC 8785 order (by UTF-16 code units of the member
/// names, here plain ASCII), borrowed: compact `serde_json` output of it is already
/// canonical, without the detour through a `serde_json::Value` (which sorts, but
/// allocates every string again).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CanonicalBundle<'a> {
    artifact_refs: &'a [String],
    decision_refs: &'a [String],
    generated_at: &'a str,
    generated_by: &'a str,
    id: &'a str,
    receipt_refs: &'a [String],
    spec_version: &'a str,
    subject_ref: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
}

impl EvidenceBundle {
    /// The bundle as RFC 8785 JSON: the bytes whose SHA-256 the state map's entry
    /// values carry (`log-format/state.md` §3).
    pub fn canonical(&self) -> Result<Vec<u8>, CatalogError> {
        let mut out = Vec::new();
        self.write_canonical(&mut out)?;
        Ok(out)
    }

    /// Writes [`EvidenceBundle::canonical`] to `out` (a hasher, say) without keeping it.
    /// Every member is a string or an array of strings and the members are in canonical
    /// order, so compact `serde_json` output is RFC 8785 as it is written: serde_json
    /// escapes strings exactly as RFC 8785 does (`wire::canonical`), and there is no
    /// number to check (`canonical_bundle_equals_the_general_encoding` holds it to
    /// `serde_jcs`).
    pub fn write_canonical(&self, out: &mut impl std::io::Write) -> Result<(), CatalogError> {
        let bundle = CanonicalBundle {
            artifact_refs: &self.artifact_refs,
            decision_refs: &self.decision_refs,
            generated_at: &self.generated_at,
            generated_by: &self.generated_by,
            id: &self.id,
            receipt_refs: &self.receipt_refs,
            spec_version: self.spec_version,
            subject_ref: &self.subject_ref,
            kind: self.kind,
        };
        serde_json::to_writer(out, &bundle).map_err(|e| CatalogError::Encoding(e.to_string()))
    }
}

#[cfg(test)]
mod canonical_tests {
    use super::*;

    /// The borrowed encoding equals the general one (`serde_jcs`, which sorts the
    /// members itself), for bundles whose strings need escaping and whose lists are
    /// empty or long.
    #[test]
    fn canonical_bundle_equals_the_general_encoding() {
        let strings = [
            "",
            "a",
            "q\"\\\n\u{1}",
            "\u{8}\u{c}\r\t\u{1f}\u{7f}/\u{2028}",
            "é ✓ 𝄞",
            "urn:srcos:x:1-publication",
        ];
        for (n, s) in strings.iter().enumerate() {
            let list: Vec<String> = (0..n).map(|i| format!("{s}{i}")).collect();
            let bundle = EvidenceBundle {
                id: format!("{BUNDLE_URN}{s}"),
                kind: "EvidenceBundle",
                spec_version: SPEC_VERSION,
                subject_ref: s.to_string(),
                artifact_refs: list.clone(),
                receipt_refs: list.iter().rev().cloned().collect(),
                decision_refs: list,
                generated_by: format!("srcos-catalog tlog://{s}"),
                generated_at: s.to_string(),
            };
            let general = serde_jcs::to_vec(&bundle).unwrap();
            assert_eq!(bundle.canonical().unwrap(), general, "{s:?}");
        }
    }
}
