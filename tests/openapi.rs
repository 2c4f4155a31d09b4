//! The OpenAPI documents (`schemas/openapi.json`, `schemas/openapi-witness.json`):
//! every route of the route table is described and nothing else is, every `$ref`
//! resolves, and `openapi-spec-validator` accepts them from the repository and from live
//! servers (where the cited schemas are fetched over HTTP).

mod common;
mod watchers;

use std::collections::BTreeSet;

use common::authority::{crate_file, Authority};
use serde_json::Value;
use srcos_catalog::http::routes;
use srcos_catalog::openapi::{schema, SERVE_DOCUMENT, WITNESS_DOCUMENT};

fn document(text: &str) -> Value {
    serde_json::from_str(text).expect("the document is JSON")
}

/// The route patterns as OpenAPI writes them (`{*path}` is `{path}`).
fn as_openapi(routes: &[&str]) -> BTreeSet<String> {
    routes.iter().map(|r| r.replace("{*", "{")).collect()
}

fn described(doc: &Value) -> BTreeSet<String> {
    doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .cloned()
        .collect()
}

#[test]
fn every_route_is_described_and_nothing_else() {
    for (doc, table) in [
        (document(SERVE_DOCUMENT), &routes::SERVE[..]),
        (document(WITNESS_DOCUMENT), &routes::WITNESS[..]),
    ] {
        let want = as_openapi(table);
        let have = described(&doc);
        let missing: Vec<_> = want.difference(&have).collect();
        let extra: Vec<_> = have.difference(&want).collect();
        assert!(
            missing.is_empty(),
            "routes missing from the document: {missing:?}"
        );
        assert!(extra.is_empty(), "described but not routed: {extra:?}");
        // Every operation answers something and every error has a media type.
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if method == "parameters" {
                    continue;
                }
                let responses = op["responses"].as_object().unwrap();
                assert!(
                    responses.keys().any(|s| s.starts_with('2')),
                    "{method} {path}"
                );
                assert!(responses.contains_key("500"), "{method} {path}: 500");
            }
        }
    }
}

fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn every_ref_resolves_to_a_served_schema_or_a_component() {
    for text in [SERVE_DOCUMENT, WITNESS_DOCUMENT] {
        let doc = document(text);
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(found.iter().any(|r| r.ends_with("problem.schema.json")));
        for r in found {
            if let Some(file) = r.strip_prefix("../schemas/") {
                let served = schema(file).unwrap_or_else(|| panic!("{r} is not served"));
                let on_disk = std::fs::read_to_string(crate_file(&format!("schemas/{file}")))
                    .expect("the schema file");
                assert_eq!(served, on_disk, "{file}");
            } else if let Some(pointer) = r.strip_prefix('#') {
                assert!(doc.pointer(pointer).is_some(), "{r} points nowhere");
            } else {
                panic!("unexpected $ref {r}");
            }
        }
    }
}

fn validate(where_: &str) {
    let out = common::python_ok(
        "openapi_validate.py",
        &[where_],
        b"",
        "openapi-spec-validator",
    );
    assert!(out.starts_with("valid 3.1.0"), "{out}");
}

#[test]
fn the_validator_accepts_the_documents_in_the_repository() {
    validate(crate_file("schemas/openapi.json").to_str().unwrap());
    validate(crate_file("schemas/openapi-witness.json").to_str().unwrap());
}

#[test]
fn live_servers_serve_valid_documents_and_the_schemas_they_cite() {
    let a = Authority::start(&[]);
    let (status, content_type, body) = a.http.get("/openapi.json");
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/json");
    assert_eq!(String::from_utf8(body).unwrap(), SERVE_DOCUMENT);
    assert_eq!(a.http.get("/schemas/problem.schema.json").0, 200);
    assert_eq!(a.http.get("/schemas/../Cargo.toml").0, 404);
    validate(&format!("{}/openapi.json", a.server.url));
    // The validator fetched the cited schemas from the server itself.
    let (_, _, metrics) = a.http.get("/metrics");
    let metrics = String::from_utf8(metrics).unwrap();
    let fetched: f64 = metrics
        .lines()
        .find(|l| {
            l.starts_with("srcos_http_requests_total{")
                && l.contains("route=\"/schemas/{*path}\"")
                && l.contains("status=\"200\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0);
    assert!(fetched >= 3.0, "schemas fetched: {fetched}\n{metrics}");

    let fx = watchers::stopped_log(0);
    let key = watchers::witness_key(fx.dir.path(), "w1");
    let witness = watchers::start_witness(
        &key,
        &[(&fx.origin, &fx.log_vkey)],
        &fx.dir.path().join("s1"),
    );
    let (status, _, body) = common::Http::new(&witness.url).get("/openapi.json");
    assert_eq!(status, 200);
    assert_eq!(String::from_utf8(body).unwrap(), WITNESS_DOCUMENT);
    validate(&format!("{}/openapi.json", witness.url));
}
