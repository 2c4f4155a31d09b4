//! The catalog projection against a real server: served CatalogEntry and EvidenceBundle
//! objects validate against the reproduced sourceos-spec schemas, every answer names its
//! leaves, and entry listings page deterministically with filters.

mod common;

use common::authority::*;
use serde_json::{json, Value};

/// A compiled schema from `schemas/sourceos-spec/`.
struct Schema {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

impl Schema {
    fn load(file: &str) -> Schema {
        let text = std::fs::read(crate_file(&format!("schemas/sourceos-spec/{file}"))).unwrap();
        let value: Value = serde_json::from_slice(&text).unwrap();
        let url = format!("file:///sourceos-spec/{file}");
        let mut compiler = boon::Compiler::new();
        compiler.enable_format_assertions();
        compiler.add_resource(&url, value).unwrap();
        let mut schemas = boon::Schemas::new();
        let index = compiler.compile(&url, &mut schemas).unwrap();
        Schema { schemas, index }
    }

    fn check(&self, v: &Value) -> Result<(), String> {
        self.schemas
            .validate(v, self.index)
            .map_err(|e| format!("{e:#}"))
    }
}

#[test]
fn entries_and_bundles_validate_against_the_sourceos_spec_schemas() {
    let with_promotion = Schema::load("CatalogEntry.with-promotion.json");
    let verbatim = Schema::load("CatalogEntry.json");
    let bundle_schema = Schema::load("EvidenceBundle.json");
    // The schemas do reject what they must.
    assert!(verbatim.check(&json!({"id": "x"})).is_err());
    assert!(with_promotion.check(&json!({"id": "urn:srcos:catalog-entry:x", "type": "CatalogEntry", "specVersion": "2.0.0",
        "objectRef": "o", "objectType": "t", "status": "published", "updatedAt": "2026-01-01T00:00:00Z",
        "scope": "platform", "promotion": {"state": "approved"}})).is_err());

    let a = Authority::start(&[]);
    let publisher = a.key("pipeline.example/smoke");
    let reviewer = a.key("erin");
    let admin = a.admin.clone();
    a.grant(&publisher.signer, "publisher", &["dev"]);
    a.grant(&reviewer.signer, "reviewer", &["*"]);
    // Entries in several states: draft, published (approved), restricted, revoked.
    let mut hexes = Vec::new();
    for (i, next) in ["draft", "approve", "restricted", "revoked"]
        .iter()
        .enumerate()
    {
        let hex = subject_hex(&format!("projection-{i}"));
        let files = release_evidence(&hex);
        for (_, _, b) in &files {
            a.upload(b);
        }
        let items = files
            .iter()
            .take(4)
            .map(|(t, m, b)| item(t, m, b))
            .collect();
        let req = request("quay.io/socios/p", &hex, "dev", items, agentplane_refs("p"));
        assert_eq!(a.publish(&publisher.signer, &req).0, 201);
        let target = req["targetCatalogRef"].as_str().unwrap().to_string();
        match *next {
            "approve" => assert_eq!(
                a.review(&reviewer.signer, &target, &hex, "dev", "approve")
                    .0,
                201
            ),
            "restricted" => assert_eq!(
                a.status(&reviewer.signer, &target, &hex, "restricted").0,
                201
            ),
            "revoked" => assert_eq!(a.status(&admin, &target, &hex, "revoked").0, 201),
            _ => {}
        }
        hexes.push(hex);
    }
    let (status, list) = a.get_json("/v1/catalog/entries?subject=quay.io/socios/p");
    assert_eq!(status, 200);
    let entries = list["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 4);
    let statuses: Vec<&str> = entries
        .iter()
        .map(|e| e["entry"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["draft", "published", "restricted", "restricted"]);
    for wrapped in entries {
        let entry = &wrapped["entry"];
        with_promotion
            .check(entry)
            .unwrap_or_else(|e| panic!("{e}\n{entry:#}"));
        let mut older = entry.clone();
        let obj = older.as_object_mut().unwrap();
        obj.remove("promotion");
        obj.remove("scope");
        verbatim
            .check(&older)
            .unwrap_or_else(|e| panic!("{e}\n{older:#}"));
        // Single lookups by URN and by local id agree with the listing.
        let id = entry["id"].as_str().unwrap();
        let local = id.strip_prefix("urn:srcos:catalog-entry:").unwrap();
        for key in [id, local] {
            let (status, one) = a.get_json(&format!("/v1/catalog/entries/{key}"));
            assert_eq!(status, 200);
            assert_eq!(&one["entry"], entry);
            assert_eq!(one["leafIndices"], wrapped["leafIndices"]);
        }
        let (status, b) = a.get_json(&format!(
            "/v1/catalog/evidence-bundles/urn:srcos:evidence-bundle:{local}"
        ));
        assert_eq!(status, 200, "{b}");
        bundle_schema
            .check(&b["evidenceBundle"])
            .unwrap_or_else(|e| panic!("{e}\n{b:#}"));
        assert_eq!(b["evidenceBundle"]["id"], entry["evidenceBundleRef"]);
        assert_eq!(b["evidenceBundle"]["subjectRef"], entry["id"]);
        assert_eq!(b["evidenceBundle"]["generatedAt"], entry["updatedAt"]);
        // The bundle lists the evidence (with digests), the agentplane refs and one
        // decision ref per leaf; each leaf's receipt is fetchable.
        let receipts: Vec<&str> = b["evidenceBundle"]["receiptRefs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        assert!(
            receipts
                .iter()
                .any(|r| r.starts_with("agentplane://run-artifact/p#sha256:")),
            "{receipts:?}"
        );
        assert!(
            receipts
                .iter()
                .any(|r| r.starts_with("file:///provenance.json#sha256:")),
            "{receipts:?}"
        );
        let leaves = wrapped["leafIndices"].as_array().unwrap();
        assert_eq!(
            b["evidenceBundle"]["decisionRefs"]
                .as_array()
                .unwrap()
                .len(),
            leaves.len()
        );
        assert_eq!(b["evidence"].as_array().unwrap().len(), 4);
        assert_eq!(b["evidenceReport"]["items"].as_array().unwrap().len(), 4);
        for leaf in leaves {
            let (status, _, _) = a.http.get(&format!("/v1/receipts/{leaf}"));
            assert_eq!(status, 200);
        }
    }
    let revoked = &entries[3]["entry"];
    assert_eq!(revoked["labels"]["catalogStatus"], "revoked");
    assert_eq!(entries[1]["entry"]["promotion"]["state"], "approved");
    // updatedAt is the acceptance time recorded in the last leaf, not the clock.
    let last = entries[1]["leafIndices"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_u64()
        .unwrap();
    let (_, _, leaf) = a.http.get(&format!("/v1/entries/{last}"));
    let leaf: Value = serde_json::from_slice(&leaf).unwrap();
    assert_eq!(
        leaf["admission"]["acceptedAt"],
        entries[1]["entry"]["updatedAt"]
    );
    let (status, _) = a.get_json("/v1/catalog/entries/urn:srcos:catalog-entry:0000");
    assert_eq!(status, 404);
}

#[test]
fn entry_listings_page_deterministically_with_filters() {
    let a = Authority::start(&[]);
    let publisher = a.key("pipeline.example/smoke");
    let reviewer = a.key("frank");
    a.grant(&publisher.signer, "publisher", &["dev"]);
    a.grant(&reviewer.signer, "reviewer", &["dev"]);
    let mut published = Vec::new();
    for i in 0..23 {
        let hex = subject_hex(&format!("page-{i}"));
        let items = release_evidence(&hex)
            .iter()
            .take(4)
            .map(|(t, m, b)| item(t, m, b))
            .collect();
        let name = if i % 2 == 0 {
            "quay.io/socios/even"
        } else {
            "quay.io/socios/odd"
        };
        let req = request(name, &hex, "dev", items, no_refs());
        assert_eq!(a.publish(&publisher.signer, &req).0, 201);
        if i % 3 == 0 {
            let target = req["targetCatalogRef"].as_str().unwrap();
            assert_eq!(
                a.review(&reviewer.signer, target, &hex, "dev", "approve").0,
                201
            );
            published.push(hex.clone());
        }
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &token {
            Some(t) => format!("/v1/catalog/entries?limit=10&page_token={t}"),
            None => "/v1/catalog/entries?limit=10".to_string(),
        };
        let (status, page) = a.get_json(&path);
        assert_eq!(status, 200, "{page}");
        pages += 1;
        for e in page["entries"].as_array().unwrap() {
            seen.push(e["leafIndices"][0].as_u64().unwrap());
        }
        match page["nextPageToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 23);
    assert!(pages >= 3);
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "publication order: {seen:?}"
    );
    // The same query gives the same bytes.
    let (_, _, first) = a.http.get("/v1/catalog/entries?limit=7");
    let (_, _, again) = a.http.get("/v1/catalog/entries?limit=7");
    assert_eq!(first, again);
    // Filters.
    let count = |q: &str| {
        let (status, v) = a.get_json(&format!("/v1/catalog/entries?limit=1000&{q}"));
        assert_eq!(status, 200, "{q}: {v}");
        v["entries"].as_array().unwrap().len()
    };
    assert_eq!(count("subject=quay.io/socios/even"), 12);
    assert_eq!(
        count("subject=quay.io/socios/odd&status=published"),
        published.len() - 4
    );
    assert_eq!(count("status=published"), published.len());
    assert_eq!(count("status=draft&channel=dev"), 23 - published.len());
    assert_eq!(count("channel=stable"), 0);
    assert_eq!(count(&format!("subject=sha256:{}", published[1])), 1);
    // Bad parameters are 400s that say why.
    for q in [
        "limit=0",
        "limit=1001",
        "status=gone",
        "page_token=-1",
        "colour=red",
    ] {
        let (status, v) = a.get_json(&format!("/v1/catalog/entries?{q}"));
        assert_eq!(status, 400, "{q}: {v}");
    }
}
