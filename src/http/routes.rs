//! Every route of the catalog API in one table, as sigsum-go keeps its endpoint names in
//! one place: the server's router (`api::app_router`) mounts these patterns and the client
//! builds its paths from the same ones, so the two cannot drift.
//!
//! A pattern is written as axum matches it (`{name}` captures one segment, `{*name}` the
//! rest of the path). The builders below fill a pattern's one capture. The exact answers
//! are described in the README's HTTP API table and `log-format/`.
//!
//! The operational routes (health, metrics, the OpenAPI document) and the witness's
//! routes live here too: [`SERVE`] and [`WITNESS`] list every route of each server, which
//! the per-route metrics label requests with and the OpenAPI test checks the document
//! against.
//!
//! Imports nothing.

/// `POST`: a DSSE envelope of a `CatalogPublicationRequest` (a granted publisher).
pub const PUBLICATIONS: &str = "/v1/publications";
/// `POST`: a DSSE envelope of a `PublisherGrant` (an admin).
pub const GRANTS: &str = "/v1/admin/grants";
/// `POST`: a DSSE envelope of a `PolicySet` (an admin).
pub const POLICY_SET: &str = "/v1/admin/policy";
/// `POST`: a DSSE envelope of a `PublisherRevoke` (an admin).
pub const REVOCATIONS: &str = "/v1/admin/revocations";
/// `POST`: a DSSE envelope of a `Review` (a reviewer).
pub const REVIEWS: &str = "/v1/reviews";
/// `POST`: a DSSE envelope of a `Promotion` (a reviewer or an admin).
pub const PROMOTIONS: &str = "/v1/promotions";
/// `POST`: a DSSE envelope of a `StatusChange` (a reviewer or an admin).
pub const STATUS_CHANGES: &str = "/v1/status-changes";
/// `PUT` / `GET`: an evidence blob by digest (`sha256:<hex>`); see [`blob`].
pub const BLOB: &str = "/v1/blobs/{digest}";
/// `GET`: catalog entries, paginated and filtered by query parameters.
pub const ENTRIES: &str = "/v1/catalog/entries";
/// `GET`: one catalog entry by id (its URN or the URN's local part); see [`entry`].
pub const ENTRY: &str = "/v1/catalog/entries/{id}";
/// `GET`: one evidence bundle by id; see [`evidence_bundle`].
pub const EVIDENCE_BUNDLE: &str = "/v1/catalog/evidence-bundles/{id}";
/// `GET`: the catalog state digest (`?tree_size=N`).
pub const STATE: &str = "/v1/catalog/state";
/// `GET`: the policy in force and the leaf that set it.
pub const POLICY: &str = "/v1/policy";
/// `GET`: the C2SP signed checkpoint.
pub const CHECKPOINT: &str = "/checkpoint";
/// `GET`: a C2SP tlog-tiles tile (`/tile/<L>/<N>[.p/<W>]`, `/tile/entries/<N>[.p/<W>]`).
pub const TILE: &str = "/tile/{*path}";
/// `GET`: origin, verifier key and tree size.
pub const LOG_INFO: &str = "/v1/log";
/// `GET`: the exact bytes of one entry; see [`log_entry`].
pub const LOG_ENTRY: &str = "/v1/entries/{index}";
/// `GET`: the receipt of one entry (`?tree_size=N`); see [`receipt`].
pub const RECEIPT: &str = "/v1/receipts/{index}";
/// `GET`: an inclusion proof (`?leaf_hash=&tree_size=`).
pub const INCLUSION_PROOF: &str = "/v1/proofs/inclusion";
/// `GET`: a consistency proof (`?first=&second=`).
pub const CONSISTENCY_PROOF: &str = "/v1/proofs/consistency";

/// `GET`: the process is alive (200, always, while it answers).
pub const HEALTHZ: &str = "/healthz";
/// `GET`: ready to serve: 200, or 503 naming the failing check.
pub const READYZ: &str = "/readyz";
/// `GET`: Prometheus metrics (text exposition format).
pub const METRICS: &str = "/metrics";
/// `GET`: a lookup proof from the newest state commitment (`log-format/state.md`).
pub const STATE_PROOFS: &str = "/v1/state/proofs";
/// `GET`: one key's value at every state commitment in a range (`log-format/state.md` §8).
pub const STATE_HISTORY: &str = "/v1/state/proofs/history";
/// `GET`: the OpenAPI 3.1 description of the server's routes.
pub const OPENAPI: &str = "/openapi.json";
/// `GET`: a JSON Schema the OpenAPI document refers to (`/schemas/problem.schema.json`).
pub const SCHEMAS: &str = "/schemas/{*path}";

/// `GET`: the catalog browser's search page (HTML; `?q=&target=&channel=&status=&after=`).
pub const BROWSE_SEARCH: &str = "/";
/// `GET`: the catalog browser's page of one entry (HTML); see [`browse_entry`].
pub const BROWSE_ENTRY: &str = "/browse/entries/{id}";
/// `GET`: the catalog browser's log page (HTML): tree size, checkpoint, witnesses, tiles.
pub const BROWSE_LOG: &str = "/browse/log";
/// `GET`: the catalog browser's stylesheet.
pub const BROWSE_STYLE: &str = "/browse/style.css";

/// Witness `POST`: a C2SP tlog-witness add-checkpoint request.
pub const WITNESS_ADD_CHECKPOINT: &str = "/add-checkpoint";
/// Witness `GET`: the latest checkpoint it cosigned for a log, by the lowercase hex
/// SHA-256 of the log's origin.
pub const WITNESS_CHECKPOINT: &str = "/{origin_hash}/checkpoint";

/// Every route `serve` mounts (the `/tile/entries/{*path}` bundles are a narrower
/// pattern of [`TILE`], mounted separately for compression).
pub const SERVE: [&str; 31] = [
    PUBLICATIONS,
    GRANTS,
    POLICY_SET,
    REVOCATIONS,
    REVIEWS,
    PROMOTIONS,
    STATUS_CHANGES,
    BLOB,
    ENTRIES,
    ENTRY,
    EVIDENCE_BUNDLE,
    STATE,
    POLICY,
    CHECKPOINT,
    TILE,
    LOG_INFO,
    LOG_ENTRY,
    RECEIPT,
    INCLUSION_PROOF,
    CONSISTENCY_PROOF,
    STATE_PROOFS,
    STATE_HISTORY,
    HEALTHZ,
    READYZ,
    METRICS,
    OPENAPI,
    SCHEMAS,
    BROWSE_SEARCH,
    BROWSE_ENTRY,
    BROWSE_LOG,
    BROWSE_STYLE,
];

/// Every route `witness` mounts.
pub const WITNESS: [&str; 6] = [
    WITNESS_ADD_CHECKPOINT,
    WITNESS_CHECKPOINT,
    HEALTHZ,
    METRICS,
    OPENAPI,
    SCHEMAS,
];

/// [`BLOB`] for the blob with this SHA-256 (64 lowercase hex).
pub fn blob(sha256_hex: &str) -> String {
    fill(BLOB, &format!("sha256:{sha256_hex}"))
}

/// [`ENTRY`] for the entry `id`.
pub fn entry(id: &str) -> String {
    fill(ENTRY, id)
}

/// [`BROWSE_ENTRY`] for the entry `id`.
pub fn browse_entry(id: &str) -> String {
    fill(BROWSE_ENTRY, id)
}

/// [`EVIDENCE_BUNDLE`] for the bundle `id`.
pub fn evidence_bundle(id: &str) -> String {
    fill(EVIDENCE_BUNDLE, id)
}

/// [`LOG_ENTRY`] for entry `index`.
pub fn log_entry(index: u64) -> String {
    fill(LOG_ENTRY, &index.to_string())
}

/// [`RECEIPT`] for entry `index`, at the current tree size.
pub fn receipt(index: u64) -> String {
    fill(RECEIPT, &index.to_string())
}

/// The pattern with its one capture (`{…}`) replaced by `value`.
fn fill(pattern: &str, value: &str) -> String {
    let parts = pattern
        .split_once('{')
        .and_then(|(head, rest)| rest.split_once('}').map(|(_, tail)| (head, tail)));
    match parts {
        Some((head, tail)) => format!("{head}{value}{tail}"),
        None => pattern.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_fill_the_pattern_the_router_mounts() {
        let hex = "ab".repeat(32);
        let cases = [
            (blob(&hex), format!("/v1/blobs/sha256:{hex}")),
            (entry("x1"), "/v1/catalog/entries/x1".to_string()),
            (
                evidence_bundle("x1"),
                "/v1/catalog/evidence-bundles/x1".to_string(),
            ),
            (log_entry(7), "/v1/entries/7".to_string()),
            (receipt(0), "/v1/receipts/0".to_string()),
            (browse_entry("x1"), "/browse/entries/x1".to_string()),
        ];
        for (built, want) in cases {
            assert_eq!(built, want);
        }
        assert_eq!(fill(POLICY, "ignored"), POLICY, "no capture, no change");
    }

    #[test]
    fn every_route_is_absolute_and_distinct() {
        for all in [&SERVE[..], &WITNESS[..]] {
            let distinct: std::collections::BTreeSet<_> = all.iter().collect();
            assert_eq!(distinct.len(), all.len());
            assert!(all.iter().all(|r| r.starts_with('/')));
        }
    }
}
