//! The catalog read side: entries (sourceos-spec CatalogEntry), evidence bundles, the
//! policy, and the state digest. Every answer is as of the committed tree size and names
//! the leaf indices that back it, so a consumer can fetch their receipts.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{AppState, Problem};
use crate::catalog::{
    catalog_entry, evidence_bundle, Catalog, CatalogError, EntryQuery, EntryStatus, RecordError,
    BUNDLE_URN, ENTRY_URN, MAX_PAGE,
};
use crate::log::projection::Projection;

/// What the catalog read handlers read: the holder's log, or a frontend's own
/// [`Projection`] of the log it follows. Every answer is as of [`CatalogReads::size`].
pub trait CatalogReads: Clone + Send + Sync + 'static {
    /// The log's origin.
    fn origin(&self) -> String;
    /// The tree size answers are as of.
    fn size(&self) -> u64;
    /// Runs `read` on the catalog with the size answers are as of.
    fn read_catalog<R>(&self, read: impl FnOnce(&Catalog, u64) -> R) -> R;
    /// SHA-256 of the canonical state after `at` leaves (at most [`CatalogReads::size`]).
    /// Blocking.
    fn state_digest_at(&self, at: u64) -> Result<[u8; 32], CatalogError>;
}

impl CatalogReads for AppState {
    fn origin(&self) -> String {
        self.log.origin().to_string()
    }
    fn size(&self) -> u64 {
        self.log.head().checkpoint.size
    }
    fn read_catalog<R>(&self, read: impl FnOnce(&Catalog, u64) -> R) -> R {
        self.log.read_catalog(read)
    }
    fn state_digest_at(&self, at: u64) -> Result<[u8; 32], CatalogError> {
        self.log.state_digest_at(at)
    }
}

impl CatalogReads for Arc<Projection> {
    fn origin(&self) -> String {
        Projection::origin(self).to_string()
    }
    fn size(&self) -> u64 {
        self.status().verified
    }
    fn read_catalog<R>(&self, read: impl FnOnce(&Catalog, u64) -> R) -> R {
        Projection::read_catalog(self, read)
    }
    fn state_digest_at(&self, at: u64) -> Result<[u8; 32], CatalogError> {
        Projection::state_digest_at(self, at)
    }
}

/// How many catalog reads run at once on blocking threads (the rest wait up to
/// [`READ_WAIT`]): half the cores, at least one. A state digest at a fresh size keeps a
/// core busy for as long as it hashes the whole state, so the expensive reads together
/// may never take more than half the machine from the sequencer and the handlers.
pub fn read_slots(cores: usize) -> usize {
    (cores / 2).max(1)
}
/// Longest wait for a read slot before answering 503.
pub const READ_WAIT: Duration = Duration::from_secs(2);
/// State digests remembered (by tree size).
pub const DIGESTS_CACHED: usize = 64;

/// The bound on concurrent catalog reads and the cache of state digests, shared by the
/// handlers of one router.
pub struct ReadWork {
    slots: tokio::sync::Semaphore,
    slot_count: usize,
    pool: super::read_pool::ReadPool,
    digests: Mutex<VecDeque<(u64, [u8; 32])>>,
}

impl Default for ReadWork {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let slot_count = read_slots(cores);
        ReadWork {
            slots: tokio::sync::Semaphore::new(slot_count),
            slot_count,
            pool: super::read_pool::ReadPool::new(slot_count),
            digests: Mutex::new(VecDeque::with_capacity(DIGESTS_CACHED)),
        }
    }
}

impl ReadWork {
    fn cached(&self, size: u64) -> Option<[u8; 32]> {
        let digests = self.digests.lock().ok()?;
        digests.iter().find(|(s, _)| *s == size).map(|(_, d)| *d)
    }

    fn remember(&self, size: u64, digest: [u8; 32]) {
        if let Ok(mut digests) = self.digests.lock() {
            if digests.iter().any(|(s, _)| *s == size) {
                return;
            }
            if digests.len() >= DIGESTS_CACHED {
                digests.pop_front();
            }
            digests.push_back((size, digest));
        }
    }

    /// Runs `read` on the catalog on a low-priority read thread once a slot is free (503 after
    /// [`READ_WAIT`]); the catalog browser shares these slots.
    pub(super) async fn run<R: Send + 'static>(
        &self,
        app: &impl CatalogReads,
        read: impl FnOnce(&Catalog, u64) -> Result<R, Problem> + Send + 'static,
    ) -> Result<R, Problem> {
        let app = app.clone();
        self.run_blocking(move || app.read_catalog(read)).await
    }

    /// Runs `work` on a low-priority read thread once a slot is free (503 after
    /// [`READ_WAIT`]).
    async fn run_blocking<R: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<R, Problem> + Send + 'static,
    ) -> Result<R, Problem> {
        let _slot = match tokio::time::timeout(READ_WAIT, self.slots.acquire()).await {
            Ok(Ok(slot)) => slot,
            _ => return Err(busy(self.slot_count)),
        };
        self.pool
            .run(work)
            .await
            .map_err(|e| Problem::internal(format!("catalog read: {e}")))?
    }
}

fn busy(slots: usize) -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "busy",
        "Catalog reads are saturated",
        format!("at most {slots} catalog reads run at once; retry shortly"),
    )
}

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
        Err(p) if p.status == StatusCode::SERVICE_UNAVAILABLE.as_u16() => {
            let mut response = p.into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
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
pub async fn entries<S: CatalogReads>(
    State(app): State<S>,
    Extension(work): Extension<Arc<ReadWork>>,
    query: Result<Query<EntriesQuery>, QueryRejection>,
) -> Response {
    let query = (|| {
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
            target: None,
            channel: q.channel,
            status,
            after,
            limit,
        };
        Ok(query)
    })();
    let query = match query {
        Ok(query) => query,
        Err(problem) => return problem.into_response(),
    };
    let origin = app.origin();
    let result = work
        .run(&app, move |catalog, at| {
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
        .await;
    respond(result)
}

fn local_id<'a>(id: &'a str, prefix: &str) -> &'a str {
    id.strip_prefix(prefix).unwrap_or(id)
}

/// `GET /v1/catalog/entries/<id>` (the URN or its local part).
pub async fn entry<S: CatalogReads>(
    State(app): State<S>,
    Extension(work): Extension<Arc<ReadWork>>,
    Path(id): Path<String>,
) -> Response {
    let local = local_id(&id, ENTRY_URN).to_string();
    let origin = app.origin();
    respond(
        work.run(&app, move |catalog, at| {
            let index = catalog
                .entry_index(&local)
                .map_err(store_problem)?
                .ok_or_else(|| Problem::not_found(format!("no catalog entry {id}")))?;
            let mut v = entry_json(catalog, index, at, &origin)?
                .ok_or_else(|| Problem::not_found(format!("no catalog entry {id}")))?;
            v["treeSize"] = json!(at);
            Ok(v)
        })
        .await,
    )
}

/// `GET /v1/catalog/evidence-bundles/<id>`: the bundle, plus the evidence items with their
/// digests and what analysis of their blobs found.
pub async fn bundle<S: CatalogReads>(
    State(app): State<S>,
    Extension(work): Extension<Arc<ReadWork>>,
    Path(id): Path<String>,
) -> Response {
    let local = local_id(&id, BUNDLE_URN).to_string();
    let origin = app.origin();
    respond(
        work.run(&app, move |catalog, at| {
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
        })
        .await,
    )
}

/// `GET /v1/policy`: the policy in force and the leaf that set it (0: the defaults).
pub async fn policy<S: CatalogReads>(State(app): State<S>) -> Response {
    respond(Ok(app.read_catalog(|catalog, at| {
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
pub async fn state<S: CatalogReads>(
    State(app): State<S>,
    Extension(work): Extension<Arc<ReadWork>>,
    query: Result<Query<StateQuery>, QueryRejection>,
) -> Response {
    respond(state_digest(&app, work, query).await)
}

async fn state_digest(
    app: &impl CatalogReads,
    work: Arc<ReadWork>,
    query: Result<Query<StateQuery>, QueryRejection>,
) -> Result<Value, Problem> {
    let Query(q) =
        query.map_err(|r| Problem::bad_request(format!("query string: {}", r.body_text())))?;
    let wanted = q
        .tree_size
        .as_deref()
        .map(|t| number(t, "tree_size"))
        .transpose()?;
    let committed = app.size();
    let size = wanted.unwrap_or(committed);
    if size > committed {
        return Err(Problem::not_found(format!(
            "tree size {size} is beyond the committed size {committed}"
        )));
    }
    let digest = match work.cached(size) {
        Some(digest) => digest,
        None => {
            let (again, app) = (work.clone(), app.clone());
            let digest = work
                .run_blocking(move || {
                    // Another request may have computed it while this one waited.
                    if let Some(digest) = again.cached(size) {
                        return Ok(digest);
                    }
                    // A chunk at a time: never the catalog's lock across the whole state.
                    app.state_digest_at(size)
                        .map_err(|e| Problem::internal(e.to_string()))
                })
                .await?;
            work.remember(size, digest);
            digest
        }
    };
    let digest = StateDigest {
        tree_size: size,
        state_digest: hex::encode(digest),
    };
    serde_json::to_value(digest).map_err(|e| Problem::internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::{ReadWork, DIGESTS_CACHED};

    #[test]
    fn expensive_reads_get_half_the_cores_and_at_least_one() {
        for (cores, slots) in [(0, 1), (1, 1), (2, 1), (3, 1), (4, 2), (16, 8)] {
            assert_eq!(super::read_slots(cores), slots, "{cores} cores");
        }
    }

    #[test]
    fn digests_are_remembered_per_size_and_the_oldest_is_forgotten() {
        let work = ReadWork::default();
        assert_eq!(work.cached(7), None);
        work.remember(7, [7; 32]);
        work.remember(7, [9; 32]);
        assert_eq!(
            work.cached(7),
            Some([7; 32]),
            "a size's digest never changes"
        );
        for size in 100..100 + DIGESTS_CACHED as u64 {
            work.remember(size, [1; 32]);
        }
        assert_eq!(work.cached(7), None);
        assert_eq!(work.cached(100 + DIGESTS_CACHED as u64 - 1), Some([1; 32]));
        assert_eq!(work.digests.lock().unwrap().len(), DIGESTS_CACHED);
    }
}
