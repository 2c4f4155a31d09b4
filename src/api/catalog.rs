//! The catalog read side: entries (sourceos-spec CatalogEntry), evidence bundles, the
//! policy, and the state digest. Every answer is as of the committed tree size and names
//! the leaf indices that back it, so a consumer can fetch their receipts.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{AppState, Problem};
use crate::catalog::{
    catalog_entry, evidence_bundle, Catalog, EntryQuery, EntryStatus, RecordError, BUNDLE_URN,
    ENTRY_URN, MAX_PAGE,
};

fn json_response(value: &Value) -> Response {
    let mut response = (StatusCode::OK, value.to_string()).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn respond(result: Result<Value, Problem>) -> Response {
    match result {
        Ok(v) => json_response(&v),
        Err(p) => p.into_response(),
    }
}

fn number(text: &str, what: &str) -> Result<u64, Problem> {
    crate::tiles::parse_canonical_decimal(text).ok_or_else(|| {
        Problem::bad_request(format!("{what} {text:?} is not a canonical decimal number"))
    })
}

/// Query of `GET /v1/catalog/entries`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntriesQuery {
    subject: Option<String>,
    channel: Option<String>,
    status: Option<String>,
    page_token: Option<String>,
    limit: Option<String>,
}

fn store_problem(e: RecordError) -> Problem {
    Problem::internal(e.to_string())
}

fn entry_json(
    catalog: &Catalog,
    index: u64,
    at: u64,
    origin: &str,
) -> Result<Option<Value>, Problem> {
    let Some((view, publication)) = catalog.entry_view(index, at).map_err(store_problem)? else {
        return Ok(None);
    };
    Ok(Some(json!({
        "entry": catalog_entry(&view, &publication, origin),
        "leafIndices": view.leaf_indices,
    })))
}

/// `GET /v1/catalog/entries?subject=&channel=&status=&page_token=&limit=`.
pub async fn entries(
    State(app): State<AppState>,
    query: Result<Query<EntriesQuery>, QueryRejection>,
) -> Response {
    let result = (|| {
        let Query(q) =
            query.map_err(|r| Problem::bad_request(format!("query string: {}", r.body_text())))?;
        let status = q
            .status
            .as_deref()
            .map(|s| {
                EntryStatus::from_name(s).ok_or_else(|| {
                    Problem::bad_request(format!(
                        "status {s:?} is not one of draft, published, superseded, restricted, archived, revoked"
                    ))
                })
            })
            .transpose()?;
        let limit = match q.limit.as_deref() {
            Some(l) => {
                let n = number(l, "limit")?;
                if n == 0 || n > MAX_PAGE as u64 {
                    return Err(Problem::bad_request(format!(
                        "limit must be 1 to {MAX_PAGE}"
                    )));
                }
                n as usize
            }
            None => 100,
        };
        let after = q
            .page_token
            .as_deref()
            .map(|t| number(t, "page_token"))
            .transpose()?;
        let query = EntryQuery {
            subject: q.subject,
            channel: q.channel,
            status,
            after,
            limit,
        };
        let origin = app.log.origin().to_string();
        app.log.read_catalog(|catalog, at| {
            let page = catalog.query_entries(&query, at).map_err(store_problem)?;
            let items: Vec<Value> = page
                .items
                .iter()
                .map(|(view, publication)| {
                    json!({
                        "entry": catalog_entry(view, publication, &origin),
                        "leafIndices": view.leaf_indices,
                    })
                })
                .collect();
            Ok(json!({
                "entries": items,
                "nextPageToken": page.next.map(|n| n.to_string()),
                "treeSize": at,
            }))
        })
    })();
    respond(result)
}

fn local_id<'a>(id: &'a str, prefix: &str) -> &'a str {
    id.strip_prefix(prefix).unwrap_or(id)
}

/// `GET /v1/catalog/entries/<id>` (the URN or its local part).
pub async fn entry(State(app): State<AppState>, Path(id): Path<String>) -> Response {
    let local = local_id(&id, ENTRY_URN).to_string();
    let origin = app.log.origin().to_string();
    respond(app.log.read_catalog(|catalog, at| {
        let index = catalog
            .entry_index(&local)
            .map_err(store_problem)?
            .ok_or_else(|| Problem::not_found(format!("no catalog entry {id}")))?;
        let mut v = entry_json(catalog, index, at, &origin)?
            .ok_or_else(|| Problem::not_found(format!("no catalog entry {id}")))?;
        v["treeSize"] = json!(at);
        Ok(v)
    }))
}

/// `GET /v1/catalog/evidence-bundles/<id>`: the bundle, plus the evidence items with their
/// digests and what analysis of their blobs found.
pub async fn bundle(State(app): State<AppState>, Path(id): Path<String>) -> Response {
    let local = local_id(&id, BUNDLE_URN).to_string();
    let origin = app.log.origin().to_string();
    respond(app.log.read_catalog(|catalog, at| {
        let missing = || Problem::not_found(format!("no evidence bundle {id}"));
        let index = catalog
            .entry_index(&local)
            .map_err(store_problem)?
            .ok_or_else(missing)?;
        let (view, publication) = catalog
            .entry_view(index, at)
            .map_err(store_problem)?
            .ok_or_else(missing)?;
        Ok(json!({
            "evidenceBundle": evidence_bundle(&view, &publication, &origin),
            "evidence": publication.evidence,
            "evidenceReport": publication.evidence_report,
            "agentplaneRefs": publication.agentplane_refs,
            "leafIndices": view.leaf_indices,
            "treeSize": at,
        }))
    }))
}

/// `GET /v1/policy`: the policy in force and the leaf that set it (0: the defaults).
pub async fn policy(State(app): State<AppState>) -> Response {
    respond(Ok(app.log.read_catalog(|catalog, at| {
        let (policy, index) = catalog.policy_before(at);
        json!({"policy": policy, "leafIndex": index, "treeSize": at})
    })))
}

/// Query of `GET /v1/catalog/state`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateQuery {
    tree_size: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StateDigest {
    tree_size: u64,
    state_digest: String,
}

/// `GET /v1/catalog/state[?tree_size=N]`: SHA-256 of the canonical catalog state after the
/// first N leaves (default: the committed size), for replay comparison.
pub async fn state(
    State(app): State<AppState>,
    query: Result<Query<StateQuery>, QueryRejection>,
) -> Response {
    let result = (|| {
        let Query(q) =
            query.map_err(|r| Problem::bad_request(format!("query string: {}", r.body_text())))?;
        let wanted = q
            .tree_size
            .as_deref()
            .map(|t| number(t, "tree_size"))
            .transpose()?;
        app.log.read_catalog(|catalog, at| {
            let size = wanted.unwrap_or(at);
            if size > at {
                return Err(Problem::not_found(format!(
                    "tree size {size} is beyond the committed size {at}"
                )));
            }
            let digest = catalog
                .try_state_digest_at(size)
                .map_err(|e| Problem::internal(e.to_string()))?;
            let digest = StateDigest {
                tree_size: size,
                state_digest: hex::encode(digest),
            };
            serde_json::to_value(digest).map_err(|e| Problem::internal(e.to_string()))
        })
    })();
    respond(result)
}
