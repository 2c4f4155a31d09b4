//! The documented schemas hold for what the server really writes: every leaf kind against
//! `schemas/leaf.v1.schema.json`, and every request payload against its schema.

mod common;

use base64::Engine as _;
use common::authority::*;
use serde_json::{json, Value};

fn compile(file: &str) -> (boon::Schemas, boon::SchemaIndex) {
    let value: Value =
        serde_json::from_slice(&std::fs::read(crate_file(&format!("schemas/{file}"))).unwrap())
            .unwrap();
    let url = format!("file:///schemas/{file}");
    let mut compiler = boon::Compiler::new();
    compiler.enable_format_assertions();
    compiler.add_resource(&url, value).unwrap();
    let mut schemas = boon::Schemas::new();
    let index = compiler.compile(&url, &mut schemas).unwrap();
    (schemas, index)
}

#[test]
fn every_leaf_and_payload_matches_its_schema() {
    let a = Authority::start(&[]);
    let publisher = a.key("pipeline.example/smoke");
    let reviewer = a.key("hana");
    let victim = a.key("victim");
    a.grant(&publisher.signer, "publisher", &["dev"]);
    a.grant(&reviewer.signer, "reviewer", &["*"]);
    a.grant(&victim.signer, "publisher", &["dev"]);
    let mut policy = serde_json::to_value(srcos_catalog::catalog::Policy::defaults()).unwrap();
    policy["channels"]["dev"]["approvals"] = json!(1);
    let set = json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "PolicySet", "channels": policy["channels"]});
    assert_eq!(a.send("/v1/admin/policy", &a.admin, &set).0, 201);
    let hex = subject_hex("schemas");
    let files = release_evidence(&hex);
    for (_, _, b) in &files {
        a.upload(b);
    }
    let req = request(
        "quay.io/t/schemas",
        &hex,
        "dev",
        files.iter().map(|(t, m, b)| item(t, m, b)).collect(),
        agentplane_refs("s"),
    );
    assert_eq!(a.publish(&publisher.signer, &req).0, 201);
    let target = req["targetCatalogRef"].as_str().unwrap().to_string();
    assert_eq!(
        a.review(&reviewer.signer, &target, &hex, "dev", "approve")
            .0,
        201
    );
    assert_eq!(
        a.review(&reviewer.signer, &target, &hex, "candidate", "approve")
            .0,
        201
    );
    assert_eq!(
        a.promote(&reviewer.signer, &target, &hex, "dev", "candidate")
            .0,
        201
    );
    assert_eq!(
        a.status(&reviewer.signer, &target, &hex, "superseded").0,
        201
    );
    let revoke = json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "PublisherRevoke", "key": victim.signer.verifier().to_vkey(), "reason": "test"});
    assert_eq!(a.send("/v1/admin/revocations", &a.admin, &revoke).0, 201);

    let (leaf_schemas, leaf_index) = compile("leaf.v1.schema.json");
    let payload_schemas = [
        (
            "CatalogPublicationRequest",
            compile("catalog-publication-request.v1.schema.json"),
        ),
        (
            "PublisherGrant",
            compile("publisher-grant-request.v1.schema.json"),
        ),
        ("Decision", compile("decision-requests.v1.schema.json")),
    ];
    let (_, info) = a.get_json("/v1/log");
    let size = info["treeSize"].as_u64().unwrap();
    let mut kinds = std::collections::BTreeSet::new();
    for i in 0..size {
        let (status, _, bytes) = a.http.get(&format!("/v1/entries/{i}"));
        assert_eq!(status, 200);
        let leaf: Value = serde_json::from_slice(&bytes).unwrap();
        leaf_schemas
            .validate(&leaf, leaf_index)
            .unwrap_or_else(|e| panic!("leaf {i}: {e:#}\n{leaf}"));
        let kind = leaf["kind"].as_str().unwrap().to_string();
        kinds.insert(kind.clone());
        if let Some(p) = leaf["envelope"]["payload"].as_str() {
            let payload: Value = serde_json::from_slice(
                &base64::engine::general_purpose::STANDARD.decode(p).unwrap(),
            )
            .unwrap();
            let which = match payload["kind"].as_str().unwrap() {
                "CatalogPublicationRequest" => "CatalogPublicationRequest",
                "PublisherGrant" => "PublisherGrant",
                _ => "Decision",
            };
            let (_, (s, ix)) = payload_schemas.iter().find(|(k, _)| *k == which).unwrap();
            s.validate(&payload, *ix)
                .unwrap_or_else(|e| panic!("payload of leaf {i}: {e:#}\n{payload}"));
        }
    }
    let expected = [
        "AuthorityGenesis",
        "PolicySet",
        "Promotion",
        "Publication",
        "PublisherGrant",
        "PublisherRevoke",
        "Review",
        "StatusChange",
    ];
    assert_eq!(
        kinds.iter().map(String::as_str).collect::<Vec<_>>(),
        expected
    );
    // The schemas refuse what the parsers refuse.
    let (_, (pub_schema, pub_index)) = &payload_schemas[0];
    for (target, ok) in [
        ("sourceos://catalog/a", true),
        ("sourceos://catalog/../a", false),
        ("sourceos://./a", false),
        ("sourceos://catalog/...", true),
        ("sourceos://c/.a", true),
    ] {
        let mut r = req.clone();
        r["targetCatalogRef"] = json!(target);
        assert_eq!(pub_schema.validate(&r, *pub_index).is_ok(), ok, "{target}");
        assert_eq!(
            srcos_catalog::catalog::check_catalog_ref(target, false).is_ok(),
            ok,
            "{target}"
        );
    }
    let mut bad = leaf_schemas_fixture();
    bad["admission"]["surprise"] = json!(1);
    assert!(leaf_schemas.validate(&bad, leaf_index).is_err());
}

fn leaf_schemas_fixture() -> Value {
    json!({"admission": {"acceptedAt": "2026-01-01T00:00:00.000Z", "requestDigest": {"sha256": "0".repeat(64)}, "signer": "a+00000000"},
        "apiVersion": "catalog.srcos.ai/v1", "kind": "Review",
        "envelope": {"payload": "e30=", "payloadType": "application/vnd.srcos.catalog.v1+json", "signatures": [{"keyid": "a+00000000", "sig": format!("{}==", "A".repeat(86))}]}})
}
