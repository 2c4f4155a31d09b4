//! Hostile input to the catalog authority's new surfaces never panics: evidence analysis
//! of arbitrary blob bytes, decision payloads mutated byte by byte, and leaves whose
//! evidence reports point outside their request.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::json;
use srcos_catalog::catalog::{analyze_items, BlobSource, EvidenceItem, Submission};
use srcos_catalog::note::{KeyType, Signer};

struct Held(BTreeMap<String, Vec<u8>>);

impl BlobSource for Held {
    fn blob(&self, sha256_hex: &str) -> Option<Vec<u8>> {
        self.0.get(sha256_hex).cloned()
    }
}

const TYPES: &[&str] = &[
    "sbom",
    "provenance",
    "vulnerability-scan",
    "base-image-receipt",
    "task-image-digests",
    "build-receipt",
];

fn items(bytes: &[u8]) -> (Vec<EvidenceItem>, Held) {
    let hex = "a".repeat(64);
    let items = TYPES
        .iter()
        .map(|t| {
            serde_json::from_value(json!({"type": t, "mediaType": "application/spdx+json",
                "digest": {"sha256": hex}, "uri": "x", "size": bytes.len()}))
            .unwrap()
        })
        .collect();
    (items, Held([(hex, bytes.to_vec())].into_iter().collect()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn analysis_never_panics_on_arbitrary_blobs(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let (items, held) = items(&bytes);
        let report = analyze_items(&items, &"b".repeat(64), &held);
        prop_assert_eq!(report.items.len(), TYPES.len());
        prop_assert!(report.check_shape(&items).is_ok());
    }

    #[test]
    fn analysis_never_panics_on_json_shaped_blobs(
        key in prop_oneof![Just("matches"), Just("spdxVersion"), Just("bomFormat"), Just("_type"),
            Just("kind"), Just("subject"), Just("predicate"), Just("payload"), Just("baseImage")],
        value in prop_oneof![Just(json!(null)), Just(json!([1, "x", {}])), Just(json!({"a": [{}]})),
            Just(json!("SPDX-2.3")), Just(json!(1e308)), Just(json!("CycloneDX")), Just(json!("SmokeRunnerImageProvenance"))],
    ) {
        let bytes = serde_json::to_vec(&json!({key: value, "payloadType": "application/vnd.in-toto+json"})).unwrap();
        let (items, held) = items(&bytes);
        let _ = analyze_items(&items, &"b".repeat(64), &held);
    }

    #[test]
    fn mutated_decision_payloads_never_panic(pos in 0usize..400, byte in any::<u8>(), cut in 0usize..400, which in 0usize..5) {
        let payloads = [
            json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "PolicySet", "channels": {"dev": {"requiredEvidence": ["sbom"], "promoteFrom": "dev"}}}),
            json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "PublisherRevoke", "key": "k+00000000+AAAA"}),
            json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "Review", "entry": {"targetCatalogRef": "s://a/b", "subjectDigest": {"sha256": "a".repeat(64)}}, "reviewer": "r+00000000", "channel": "dev", "verdict": "approve"}),
            json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "Promotion", "entry": {"targetCatalogRef": "s://a/b", "subjectDigest": {"sha256": "a".repeat(64)}}, "fromChannel": "dev", "toChannel": "candidate"}),
            json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "StatusChange", "entry": {"targetCatalogRef": "s://a/b", "subjectDigest": {"sha256": "a".repeat(64)}}, "status": "revoked"}),
        ];
        let mut payload = serde_json::to_vec(&payloads[which]).unwrap();
        let n = payload.len();
        payload[pos % n] = byte;
        payload.truncate(n - cut % n);
        let signer = Signer::generate("p", KeyType::Ed25519).unwrap();
        let body = srcos_catalog::catalog::sign_envelope(&payload, &signer).to_json();
        let _ = Submission::parse(body.as_bytes());
    }
}
