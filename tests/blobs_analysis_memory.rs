//! The evidence analysers use bounded memory (issue 10 §1): analysing a blob costs no
//! more than its bytes plus a small constant, however the document is shaped. Measured
//! with a counting allocator (this binary holds one test, so nothing else allocates
//! while it measures).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;
use srcos_catalog::catalog::{analyze_items, BlobSource, EvidenceItem};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = CURRENT.fetch_add(by, Ordering::SeqCst) + by;
    PEAK.fetch_max(now, Ordering::SeqCst);
}

// SAFETY: every call is forwarded to the system allocator unchanged; only sizes are
// counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            grew(new_size - layout.size());
        } else {
            CURRENT.fetch_sub(layout.size() - new_size, Ordering::SeqCst);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

struct One(Vec<u8>);

impl BlobSource for One {
    fn blob(&self, _sha256_hex: &str) -> Option<Vec<u8>> {
        Some(self.0.clone())
    }
}

const SUBJECT: &str = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
const PAD: usize = 3 << 20;

/// `{"pad": [0,0,...]}` members: ~6 MiB of text that a `Value` would hold as millions of
/// 32-byte values.
fn pad() -> serde_json::Value {
    json!(vec![0u8; PAD])
}

fn item(ty: &str, media: &str, size: usize) -> EvidenceItem {
    serde_json::from_value(json!({"type": ty, "mediaType": media,
        "digest": {"sha256": SUBJECT}, "uri": "file:///x", "size": size}))
    .unwrap()
}

#[test]
fn analysis_costs_the_blob_plus_a_small_constant() {
    let pinned = format!("quay.io/x@sha256:{SUBJECT}");
    let statement = json!({"_type": "https://in-toto.io/Statement/v1",
        "predicateType": "https://slsa.dev/provenance/v1",
        "subject": [{"name": "x", "digest": {"sha256": SUBJECT}}], "predicate": {"pad": pad()}});
    let wrapped = json!({"payloadType": "application/vnd.in-toto+json",
        "payload": base64_of(&serde_json::to_vec(&statement).unwrap()), "signatures": []});
    let grype_matches: Vec<_> = (0..PAD / 8).map(|_| json!({"vulnerability": {}})).collect();
    let cases = [
        (
            "task-image-digests",
            "application/json",
            json!({"aImage": pinned, "pad": pad()}),
            "socios-receipt",
        ),
        (
            "base-image-receipt",
            "application/json",
            json!({"baseImage": pinned, "pad": pad()}),
            "socios-receipt",
        ),
        (
            "vulnerability-scan",
            "application/json",
            json!({"_type": "https://in-toto.io/Statement/v1",
            "predicateType": "https://in-toto.io/attestation/vulns/v0.2", "subject": [],
            "predicate": {"scanner": {"result": [{"severity": [{"score": "9.1"}]}], "pad": pad()}}}),
            "in-toto-vulns",
        ),
        (
            "vulnerability-scan",
            "application/json",
            json!({"matches": grype_matches}),
            "grype",
        ),
        (
            "provenance",
            "application/json",
            statement.clone(),
            "slsa-provenance-v1",
        ),
        (
            "provenance",
            "application/json",
            wrapped,
            "slsa-provenance-v1",
        ),
        (
            "sbom",
            "application/spdx+json",
            json!({"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "pad": pad()}),
            "spdx-2.3",
        ),
    ];
    for (ty, media, doc, format) in cases {
        let bytes = serde_json::to_vec(&doc).unwrap();
        drop(doc);
        let len = bytes.len();
        let evidence = [item(ty, media, len)];
        let source = One(bytes);
        let base = CURRENT.load(Ordering::SeqCst);
        PEAK.store(base, Ordering::SeqCst);
        let report = analyze_items(&evidence, SUBJECT, &source);
        let extra = PEAK.load(Ordering::SeqCst) - base;
        let finding = &report.items[0];
        assert_eq!(finding.format, format, "{ty}: {finding:?}");
        assert!(finding.problems.is_empty(), "{ty}: {finding:?}");
        // The blob's own copy (the source hands out its bytes) plus 1 MiB.
        assert!(
            extra <= len + (1 << 20),
            "{ty} ({format}): analysing a {} KiB blob allocated {} KiB at peak",
            len >> 10,
            extra >> 10
        );
    }
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
