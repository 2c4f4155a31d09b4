//! Stateless evidence analysis: what the uploaded blobs of a request actually say.
//!
//! [`analyze`] depends only on the request's evidence list, its subject digest and the blob
//! bytes, so it runs in the HTTP handler (off the sequencer, in parallel across requests).
//! Its [`EvidenceReport`] is recorded in the `Publication` leaf; the sequencer's policy
//! decision and every later replay read the report, never the blobs, and so reach the
//! same decision. An auditor holding the blobs can recompute the report and compare.
//!
//! Formats recognised (field names as their specifications give them):
//! - `sbom`: SPDX 2.3 JSON (`spdxVersion`, `SPDXID`) or CycloneDX JSON (`bomFormat`,
//!   `specVersion`); the format must match the media type (`application/spdx+json`,
//!   `application/vnd.cyclonedx+json`).
//! - `provenance`: an in-toto Statement v1 with a SLSA v1 predicate (bare or in a DSSE
//!   envelope), whose `subject[].digest.sha256` must contain the request's subject digest;
//!   or the socios `SmokeRunnerImageProvenance` receipt, whose `imageRef` must pin the
//!   subject digest (`name@sha256:<hex>`).
//! - `vulnerability-scan`: Grype JSON (`matches[].vulnerability.severity`) or an in-toto
//!   vulns predicate (`predicate.scanner.result[].severity[].score`); the report keeps the
//!   highest severity found.
//! - `base-image-receipt`, `task-image-digests`: the socios receipts; the report says
//!   whether every input image is pinned by digest.
//!
//! Blobs are visited once by the bounded readers of `evidence_shapes` (everything else is
//! skipped without being kept; no document is held as a `serde_json::Value`; a DSSE
//! payload is decoded as it is parsed), so analysing a blob costs its bytes plus a small
//! constant. Analysis runs only after the submission's signer was found authorized
//! (`log::intake`).
//!
//! About 560 lines of code, then its tests: one file, because the formats share their
//! probes and helpers.
//!
//! In `wire` because the report is part of the `Publication` leaf; the analysis reads
//! blobs and requests, never the catalog state. May import, in `wire`: `validate`,
//! `payload` and `evidence_shapes`.

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

pub use super::evidence_shapes::pinned_digest;
use super::evidence_shapes::{
    Base64Reader, BaseImage, GrypeMatches, Lenient, SubjectDigests, TaskImages, VulnPredicate,
};
use super::payload::{CatalogPublicationRequest, EvidenceItem};
use super::severity::Severity;
use super::validate::check_sha256;

/// Where blob bytes come from (the content-addressed store, or nothing).
pub trait BlobSource {
    /// The bytes of the blob whose SHA-256 is `sha256_hex` (64 lowercase hex), if held.
    fn blob(&self, sha256_hex: &str) -> Option<Vec<u8>>;

    /// Notes that a submission names the blob now (a store restarts its expiry clock).
    /// Returns `false` only if the blob is certainly not held, so analysis need not look
    /// for it; by default nothing is noted and the blob may be held.
    fn touch(&self, _sha256_hex: &str) -> bool {
        true
    }
}

/// A source that holds no blobs (analysis then records nothing).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBlobs;

impl BlobSource for NoBlobs {
    fn blob(&self, _sha256_hex: &str) -> Option<Vec<u8>> {
        None
    }

    fn touch(&self, _sha256_hex: &str) -> bool {
        false
    }
}

/// What analysis found in one evidence blob. Only evidence whose blob was held appears in
/// a report; absent members mean "not applicable to this type".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EvidenceFinding {
    /// Scans: how many findings were counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub findings: Option<u64>,
    /// The recognised format, e.g. `spdx-2.3`, `cyclonedx`, `grype`, `in-toto-vulns`,
    /// `slsa-provenance-v1`, `socios-provenance`, `socios-receipt`, `json`, `opaque`.
    pub format: String,
    /// Position of the item in the request's `evidence` array.
    pub index: u64,
    /// Scans: the highest severity found (absent when the scan lists no finding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_severity: Option<Severity>,
    /// Base image and task image receipts: whether every input image is pinned by digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned: Option<bool>,
    /// Contradictions between the blob and the request (a wrong subject digest, an SBOM
    /// that does not match its media type, a size that differs, ...). Any one refuses
    /// the request whatever the channel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// The analysis of a request's evidence: one finding per item whose blob was held, in
/// request order. Deterministic for the same request and blobs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceReport {
    /// Findings, in increasing `index` order.
    pub items: Vec<EvidenceFinding>,
}

impl EvidenceReport {
    /// True if no blob was held.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The finding for evidence item `index`, if its blob was held.
    pub fn finding(&self, index: usize) -> Option<&EvidenceFinding> {
        self.items.iter().find(|f| f.index == index as u64)
    }

    /// Every content problem, as `"evidence/<i> (<type>): <problem>"`.
    pub fn problems(&self, evidence: &[EvidenceItem]) -> Vec<String> {
        let mut out = Vec::new();
        for f in &self.items {
            let ty = evidence
                .get(f.index as usize)
                .map(|e| e.evidence_type.as_str())
                .unwrap_or("?");
            for p in &f.problems {
                out.push(format!("evidence/{} ({ty}): {p}", f.index));
            }
        }
        out
    }

    /// Checks that the report can belong to `evidence`: indices increasing and in range.
    pub fn check_shape(&self, evidence: &[EvidenceItem]) -> Result<(), ReportShapeError> {
        let mut last: Option<u64> = None;
        for f in &self.items {
            if f.index as usize >= evidence.len() {
                return Err(ReportShapeError::NoSuchItem(f.index));
            }
            if last.is_some_and(|l| l >= f.index) {
                return Err(ReportShapeError::OutOfOrder);
            }
            if f.problems.len() > MAX_PROBLEMS_PER_ITEM || f.format.len() > 32 {
                return Err(ReportShapeError::Oversized(f.index));
            }
            last = Some(f.index);
        }
        Ok(())
    }
}

/// Why a recorded [`EvidenceReport`] cannot belong to its request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReportShapeError {
    /// A finding names an evidence index the request does not have.
    #[error("finding for evidence/{0} which does not exist")]
    NoSuchItem(u64),
    /// Findings are not in strictly increasing index order.
    #[error("findings are not in increasing index order")]
    OutOfOrder,
    /// A finding has too many problems or too long a format name.
    #[error("finding for evidence/{0} is oversized")]
    Oversized(u64),
}

/// At most this many problems are recorded per blob.
pub const MAX_PROBLEMS_PER_ITEM: usize = 8;

/// Analyzes every evidence item of `request` whose blob `blobs` holds.
pub fn analyze(request: &CatalogPublicationRequest, blobs: &dyn BlobSource) -> EvidenceReport {
    analyze_items(&request.evidence, &request.subject.digest.sha256, blobs)
}

/// Analyzes `evidence` for a subject whose digest is `subject_sha256` (64 hex).
pub fn analyze_items(
    evidence: &[EvidenceItem],
    subject_sha256: &str,
    blobs: &dyn BlobSource,
) -> EvidenceReport {
    let mut items = Vec::new();
    for (i, item) in evidence.iter().enumerate() {
        let Some(bytes) = blobs.blob(&item.digest.sha256) else {
            continue;
        };
        let mut finding = inspect(item, subject_sha256, &bytes);
        finding.index = i as u64;
        if bytes.len() as u64 != item.size {
            finding.problems.push(format!(
                "declared size {} but the blob is {} bytes",
                item.size,
                bytes.len()
            ));
        }
        finding.problems.truncate(MAX_PROBLEMS_PER_ITEM);
        items.push(finding);
    }
    EvidenceReport { items }
}

fn finding(format: &str) -> EvidenceFinding {
    EvidenceFinding {
        format: format.to_string(),
        ..EvidenceFinding::default()
    }
}

fn inspect(item: &EvidenceItem, subject: &str, bytes: &[u8]) -> EvidenceFinding {
    match item.evidence_type.as_str() {
        "sbom" => sbom(&item.media_type, bytes),
        "provenance" => provenance(subject, bytes),
        "vulnerability-scan" => scan(bytes),
        "base-image-receipt" => base_image(bytes),
        "task-image-digests" => task_images(bytes),
        _ => match serde_json::from_slice::<IgnoredAny>(bytes) {
            Ok(_) => finding("json"),
            Err(_) => finding("opaque"),
        },
    }
}

fn unparsable(what: &str, e: &serde_json::Error) -> EvidenceFinding {
    let mut f = finding("unparsable");
    f.problems.push(format!("is not {what}: {e}"));
    f
}

#[derive(Deserialize)]
struct SbomProbe {
    #[serde(rename = "spdxVersion")]
    spdx_version: Option<String>,
    #[serde(rename = "SPDXID")]
    spdx_id: Option<String>,
    #[serde(rename = "bomFormat")]
    bom_format: Option<String>,
    #[serde(rename = "specVersion")]
    spec_version: Option<String>,
}

/// Media types of the two SBOM formats.
pub const SPDX_JSON: &str = "application/spdx+json";
/// CycloneDX JSON's registered media type.
pub const CYCLONEDX_JSON: &str = "application/vnd.cyclonedx+json";

fn sbom(media_type: &str, bytes: &[u8]) -> EvidenceFinding {
    let probe: SbomProbe = match serde_json::from_slice(bytes) {
        Ok(p) => p,
        Err(e) => return unparsable("a JSON SBOM", &e),
    };
    let (mut f, expected) = match (&probe.spdx_version, &probe.bom_format) {
        (Some(v), None) => {
            let mut f = finding("spdx");
            if v == "SPDX-2.3" {
                f.format = "spdx-2.3".into();
            } else {
                f.problems.push(format!(
                    "spdxVersion is {:?}, expected \"SPDX-2.3\"",
                    clip(v)
                ));
            }
            if probe.spdx_id.as_deref() != Some("SPDXRef-DOCUMENT") {
                f.problems
                    .push("SPDXID must be \"SPDXRef-DOCUMENT\"".to_string());
            }
            (f, SPDX_JSON)
        }
        (None, Some(b)) if b == "CycloneDX" => {
            let mut f = finding("cyclonedx");
            if probe.spec_version.is_none() {
                f.problems.push("CycloneDX BOM has no specVersion".into());
            }
            (f, CYCLONEDX_JSON)
        }
        _ => {
            let mut f = finding("unknown");
            f.problems.push(
                "is neither SPDX 2.3 JSON (spdxVersion) nor CycloneDX JSON (bomFormat)".into(),
            );
            return f;
        }
    };
    if media_type != expected {
        f.problems.push(format!(
            "the blob is {} but the media type is {media_type}; expected {expected}",
            f.format
        ));
    }
    f
}

#[derive(Deserialize)]
struct Statement {
    #[serde(rename = "_type")]
    kind: Option<String>,
    #[serde(rename = "predicateType")]
    predicate_type: Option<String>,
    subject: Option<SubjectDigests>,
    predicate: Option<Lenient<VulnPredicate>>,
    // A DSSE envelope carrying a Statement (the payload is read again, borrowed, only
    // when the statement is unwrapped).
    #[serde(rename = "payloadType")]
    payload_type: Option<String>,
    payload: Option<SkippedString>,
    // The socios provenance receipt.
    #[serde(rename = "kind")]
    receipt_kind: Option<String>,
    #[serde(rename = "imageRef")]
    image_ref: Option<String>,
}

/// A member that must be a string, checked but not kept.
struct SkippedString;

impl<'de> Deserialize<'de> for SkippedString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = SkippedString;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<SkippedString, E> {
                Ok(SkippedString)
            }
        }
        d.deserialize_str(V)
    }
}

/// The payload of a DSSE envelope, borrowed from the blob when it holds no escapes.
#[derive(Deserialize)]
struct Wrapped<'a> {
    #[serde(borrow)]
    payload: Option<Borrowed<'a>>,
}

/// A string borrowed from the input when it holds no escapes (serde's own `Cow` is
/// always owned inside an `Option`).
struct Borrowed<'a>(std::borrow::Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Borrowed<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Borrowed<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                s: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(Borrowed(std::borrow::Cow::Borrowed(s)))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Borrowed(std::borrow::Cow::Owned(s.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// The in-toto Statement v1 `_type`.
pub const IN_TOTO_STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
/// The SLSA provenance v1 predicate type.
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";

fn statement(bytes: &[u8]) -> Result<Statement, serde_json::Error> {
    let s: Statement = serde_json::from_slice(bytes)?;
    let wrapped = s.payload.is_some()
        && s.payload_type
            .as_deref()
            .is_some_and(|t| t.starts_with("application/vnd.in-toto"));
    if wrapped {
        let w: Wrapped = serde_json::from_slice(bytes)?;
        if let Some(Borrowed(p)) = w.payload.filter(|p| Base64Reader::is_valid(&p.0)) {
            // Decoded as it is parsed: no decoded copy of the payload is kept.
            let reader = std::io::BufReader::new(Base64Reader::new(&p));
            return serde_json::from_reader(reader);
        }
    }
    Ok(s)
}

fn provenance(subject: &str, bytes: &[u8]) -> EvidenceFinding {
    let s = match statement(bytes) {
        Ok(s) => s,
        Err(e) => return unparsable("JSON provenance", &e),
    };
    if s.receipt_kind.as_deref() == Some("SmokeRunnerImageProvenance") {
        let mut f = finding("socios-provenance");
        match s.image_ref.as_deref().and_then(pinned_digest) {
            Some(d) if d == subject => {}
            Some(d) => f.problems.push(format!(
                "imageRef pins sha256:{d}, not the subject sha256:{subject}"
            )),
            None => f
                .problems
                .push("imageRef does not pin the subject by digest (name@sha256:<hex>)".into()),
        }
        return f;
    }
    if s.kind.as_deref() != Some(IN_TOTO_STATEMENT_V1) {
        let mut f = finding("unknown");
        f.problems.push(format!(
            "is neither an in-toto Statement ({IN_TOTO_STATEMENT_V1}) nor a socios provenance receipt"
        ));
        return f;
    }
    let mut f = finding("slsa-provenance-v1");
    if s.predicate_type.as_deref() != Some(SLSA_PROVENANCE_V1) {
        f.format = "in-toto".into();
        f.problems.push(format!(
            "predicateType is {:?}, expected {SLSA_PROVENANCE_V1}",
            clip(s.predicate_type.as_deref().unwrap_or(""))
        ));
    }
    let digests: Vec<String> = s.subject.map(|d| d.0).unwrap_or_default();
    if !digests.iter().any(|d| d == subject) {
        let shown: Vec<String> = digests.iter().take(4).map(|d| clip(d)).collect();
        f.problems.push(format!(
            "subject digests [{}] do not include the subject sha256:{subject}",
            shown.join(", ")
        ));
    }
    f
}

#[derive(Deserialize)]
struct GrypeScan {
    matches: GrypeMatches,
}

/// The in-toto vulnerability predicate type prefix (v0.1, v0.2).
pub const IN_TOTO_VULNS: &str = "https://in-toto.io/attestation/vulns";

fn scan(bytes: &[u8]) -> EvidenceFinding {
    if let Ok(g) = serde_json::from_slice::<GrypeScan>(bytes) {
        let mut f = finding("grype");
        f.findings = Some(g.matches.0.count);
        f.max_severity = g.matches.0.max;
        return f;
    }
    let s = match statement(bytes) {
        Ok(s) => s,
        Err(e) => return unparsable("a Grype JSON or in-toto vulns scan", &e),
    };
    let is_vulns = s.kind.as_deref() == Some(IN_TOTO_STATEMENT_V1)
        && s.predicate_type
            .as_deref()
            .is_some_and(|t| t.starts_with(IN_TOTO_VULNS));
    if !is_vulns {
        let mut f = finding("unknown");
        f.problems.push(
            "is neither Grype JSON (matches[]) nor an in-toto vulns predicate statement".into(),
        );
        return f;
    }
    let mut f = finding("in-toto-vulns");
    let Some(results) = s.predicate.and_then(|p| p.0).and_then(|p| p.0) else {
        f.problems
            .push("predicate.scanner.result is missing or not an array".into());
        return f;
    };
    f.findings = Some(results.count);
    f.max_severity = results.max;
    f
}

fn base_image(bytes: &[u8]) -> EvidenceFinding {
    let receipt = match serde_json::from_slice::<Lenient<BaseImage>>(bytes) {
        Ok(r) => r.0.unwrap_or_default(),
        Err(e) => return unparsable("a JSON receipt", &e),
    };
    let mut f = finding("socios-receipt");
    let base = receipt.base.as_deref();
    let resolved_ok = receipt
        .resolved
        .as_deref()
        .and_then(|r| r.strip_prefix("sha256:"))
        .is_some_and(|h| check_sha256(h).is_ok());
    f.pinned = Some(base.and_then(pinned_digest).is_some() || resolved_ok);
    if base.is_none() {
        f.problems.push("has no baseImage".into());
    }
    f
}

fn task_images(bytes: &[u8]) -> EvidenceFinding {
    let receipt = match serde_json::from_slice::<Lenient<TaskImages>>(bytes) {
        Ok(r) => r.0,
        Err(e) => return unparsable("a JSON receipt", &e),
    };
    let mut f = finding("socios-receipt");
    let Some(TaskImages(images)) = receipt else {
        f.problems.push("is not a JSON object".into());
        return f;
    };
    // Digest receipts hold `{"ref","digest"}` per image; reference receipts hold plain
    // strings, pinned only when they carry `@sha256:`.
    if images.is_empty() {
        f.problems
            .push("lists no task images (*Image members)".into());
    }
    f.pinned = Some(!images.is_empty() && images.values().all(|p| *p));
    f
}

fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans() {
        let g = br#"{"matches":[{"vulnerability":{"id":"CVE-1","severity":"Medium"}},{"vulnerability":{"severity":"High"}}],"source":{}}"#;
        let f = scan(g);
        assert_eq!(
            (f.format.as_str(), f.max_severity),
            ("grype", Some(Severity::High))
        );
        let v = br#"{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://in-toto.io/attestation/vulns/v0.2","subject":[],"predicate":{"scanner":{"uri":"x","result":[{"id":"CVE-2","severity":[{"method":"nvd","score":"9.8"}]}]}}}"#;
        let f = scan(v);
        assert_eq!(f.max_severity, Some(Severity::Critical));
        assert!(!scan(b"[1,2").problems.is_empty());
    }

    #[test]
    fn report_shapes() {
        let item = |t: &str| EvidenceItem {
            digest: crate::catalog::wire::payload::DigestSet {
                sha256: "a".repeat(64),
            },
            media_type: "application/json".into(),
            size: 1,
            evidence_type: t.into(),
            uri: "https://x/y".into(),
        };
        let evidence = [item("sbom"), item("provenance")];
        let at = |i: u64| EvidenceFinding {
            index: i,
            format: "json".into(),
            ..EvidenceFinding::default()
        };
        let report = |items: Vec<EvidenceFinding>| EvidenceReport { items };
        let oversized = EvidenceFinding {
            problems: vec!["p".into(); MAX_PROBLEMS_PER_ITEM + 1],
            ..at(0)
        };
        for (r, want) in [
            (report(vec![]), Ok(())),
            (report(vec![at(0), at(1)]), Ok(())),
            (
                report(vec![at(2)]),
                Err("finding for evidence/2 which does not exist"),
            ),
            (
                report(vec![at(1), at(0)]),
                Err("findings are not in increasing index order"),
            ),
            (
                report(vec![at(0), at(0)]),
                Err("findings are not in increasing index order"),
            ),
            (
                report(vec![oversized]),
                Err("finding for evidence/0 is oversized"),
            ),
        ] {
            let got = r.check_shape(&evidence).map_err(|e| e.to_string());
            assert_eq!(
                got.as_ref().map(|_| ()).map_err(String::as_str),
                want,
                "{r:?}"
            );
        }
    }
}
