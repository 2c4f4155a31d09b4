//! The evidence analysers (SPDX, CycloneDX, in-toto provenance, Grype scans, base image
//! and task image receipts) over an uploaded blob: the first byte picks the evidence
//! type, the rest is the blob.
#![no_main]
use libfuzzer_sys::fuzz_target;
use srcos_catalog::catalog::{analyze_items, BlobSource, DigestSet, EvidenceItem};

const TYPES: [(&str, &str); 7] = [
    ("sbom", "application/spdx+json"),
    ("sbom", "application/vnd.cyclonedx+json"),
    ("provenance", "application/vnd.in-toto+json"),
    ("vulnerability-scan", "application/json"),
    ("base-image-receipt", "application/json"),
    ("task-image-digests", "application/json"),
    ("smoke-receipt", "application/json"),
];
const SUBJECT: &str = "421f7664cba94a1aec4d68625594e68fa400e9d4bc95f2ac1466341d3fbda0c7";

struct One<'a>(&'a [u8]);

impl BlobSource for One<'_> {
    fn blob(&self, _sha256_hex: &str) -> Option<Vec<u8>> {
        Some(self.0.to_vec())
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((first, blob)) = data.split_first() else {
        return;
    };
    let (evidence_type, media_type) = TYPES[*first as usize % TYPES.len()];
    let item = EvidenceItem {
        digest: DigestSet {
            sha256: SUBJECT.to_string(),
        },
        media_type: media_type.to_string(),
        size: blob.len() as u64,
        evidence_type: evidence_type.to_string(),
        uri: "file:///fuzz".to_string(),
    };
    let report = analyze_items(std::slice::from_ref(&item), SUBJECT, &One(blob));
    assert_eq!(report.items.len(), 1);
    let _ = report.check_shape(std::slice::from_ref(&item));
});
