//! The OpenAPI 3.1 documents of the two servers, kept beside the code as
//! `schemas/openapi.json` (the authority) and `schemas/openapi-witness.json` (the
//! witness), and the JSON Schemas they refer to. The documents reuse those schemas by
//! relative `$ref` (`../schemas/problem.schema.json`), which resolves both in the
//! repository and against a live server, which serves each file at `/schemas/<file>`.
//!
//! Tests check that every route of [`crate::http::routes::SERVE`] and
//! [`crate::http::routes::WITNESS`] is described, that every `$ref` resolves, and that a
//! real validator (`openapi-spec-validator`) accepts the documents, live.
//!
//! May import only `http` (problem+json for a missing schema).

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::http::Problem;

/// The authority's OpenAPI document.
pub const SERVE_DOCUMENT: &str = include_str!("../schemas/openapi.json");

/// The witness's OpenAPI document.
pub const WITNESS_DOCUMENT: &str = include_str!("../schemas/openapi-witness.json");

/// The JSON Schemas the documents refer to: (path under `schemas/`, text).
pub const SCHEMAS: [(&str, &str); 16] = [
    (
        "blob-upload-intent.v1.schema.json",
        include_str!("../schemas/blob-upload-intent.v1.schema.json"),
    ),
    (
        "catalog-publication-request.v1.schema.json",
        include_str!("../schemas/catalog-publication-request.v1.schema.json"),
    ),
    (
        "consistency-proof.v1.schema.json",
        include_str!("../schemas/consistency-proof.v1.schema.json"),
    ),
    (
        "decision-requests.v1.schema.json",
        include_str!("../schemas/decision-requests.v1.schema.json"),
    ),
    (
        "dsse-envelope.schema.json",
        include_str!("../schemas/dsse-envelope.schema.json"),
    ),
    (
        "inclusion-proof.v1.schema.json",
        include_str!("../schemas/inclusion-proof.v1.schema.json"),
    ),
    (
        "leaf.v1.schema.json",
        include_str!("../schemas/leaf.v1.schema.json"),
    ),
    (
        "log-info.v1.schema.json",
        include_str!("../schemas/log-info.v1.schema.json"),
    ),
    (
        "problem.schema.json",
        include_str!("../schemas/problem.schema.json"),
    ),
    (
        "publisher-grant-request.v1.schema.json",
        include_str!("../schemas/publisher-grant-request.v1.schema.json"),
    ),
    (
        "receipt.v1.schema.json",
        include_str!("../schemas/receipt.v1.schema.json"),
    ),
    (
        "state-history.v1.schema.json",
        include_str!("../schemas/state-history.v1.schema.json"),
    ),
    (
        "state-proof.v1.schema.json",
        include_str!("../schemas/state-proof.v1.schema.json"),
    ),
    (
        "sourceos-spec/CatalogEntry.json",
        include_str!("../schemas/sourceos-spec/CatalogEntry.json"),
    ),
    (
        "sourceos-spec/CatalogEntry.with-promotion.json",
        include_str!("../schemas/sourceos-spec/CatalogEntry.with-promotion.json"),
    ),
    (
        "sourceos-spec/EvidenceBundle.json",
        include_str!("../schemas/sourceos-spec/EvidenceBundle.json"),
    ),
];

fn json(content_type: &'static str, body: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

/// `GET /openapi.json` of the authority.
pub async fn serve_document() -> Response {
    json("application/json", SERVE_DOCUMENT)
}

/// `GET /openapi.json` of the witness.
pub async fn witness_document() -> Response {
    json("application/json", WITNESS_DOCUMENT)
}

/// The schema at `path` (under `schemas/`), if it is one the documents refer to.
pub fn schema(path: &str) -> Option<&'static str> {
    SCHEMAS
        .iter()
        .find(|(name, _)| *name == path)
        .map(|(_, text)| *text)
}

/// `GET /schemas/{*path}`: one of [`SCHEMAS`].
pub async fn schema_file(Path(path): Path<String>) -> Response {
    match schema(&path) {
        Some(text) => json("application/schema+json", text),
        None => Problem::not_found(format!("no schema {path:?}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documents_and_schemas_are_json_and_lookups_are_exact() {
        for text in [SERVE_DOCUMENT, WITNESS_DOCUMENT]
            .into_iter()
            .chain(SCHEMAS.iter().map(|(_, t)| *t))
        {
            assert!(serde_json::from_str::<serde_json::Value>(text).is_ok());
        }
        let cases = [
            ("problem.schema.json", true),
            ("sourceos-spec/EvidenceBundle.json", true),
            ("../Cargo.toml", false),
            ("problem.schema.json/", false),
            ("", false),
        ];
        for (path, found) in cases {
            assert_eq!(schema(path).is_some(), found, "{path}");
        }
    }
}
