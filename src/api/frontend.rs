//! The API of a frontend: a `serve` that does not hold the sequencer lease (ADR 0004
//! "Frontends"). Its one job is to answer from a [`Follower`] what the tiles can answer,
//! and to pass the rest to the holder through a [`Forwarder`]:
//! - local: `/checkpoint`, tiles and entry bundles, `/v1/log`, `/v1/entries/N`,
//!   consistency proofs, receipts against the followed head (waiting, bounded, until the
//!   head covers the entry; also with `tree_size` equal to the head's size), the
//!   browser's stylesheet, health, metrics, the OpenAPI document; when the log has
//!   witnesses, the head carries the cosignatures the holder collected for it, once
//!   verified here with the witness keys (the log-signed head until then);
//! - submissions: the body capped, parsed and its signature verified here against the
//!   keys the follower folded (stateless, so garbage never reaches the sequencer), then
//!   forwarded, and the sequencer's answer (its receipt) passed back;
//! - local once caught up: the catalog reads (entries, evidence bundles, the policy,
//!   the state digest), the browser's search page and, when the frontend has the bucket,
//!   its entry pages, answered by the holder's own handlers from the frontend's
//!   [`Projection`] of the log, as of the head's size, whenever the projection has
//!   applied exactly the head; forwarded until then, and for good if it failed;
//! - local once caught up, else forwarded: the state proofs and histories, from the
//!   commitments the projection checked and kept (with the maps of their sizes),
//!   receipts against the followed head; a lookup the projection cannot answer (a 404:
//!   a commitment before the snapshot it restored from, or older than it keeps) is
//!   forwarded, as the holder may hold it;
//! - forwarded as they are: inclusion proofs by leaf hash (the leaf-hash lookup index
//!   is the holder's, in its data directory), receipts at an explicit `tree_size` other
//!   than the head's (an earlier size's checkpoint is signed with the log key, and a
//!   frontend signs nothing), the browser's log page (it shows the holder's witnessing
//!   state), the entry pages without the bucket, and evidence uploads (the holder keeps
//!   the quotas);
//! - evidence downloads: from the bucket through the frontend's own [`BlobStore`] (which
//!   re-hashes every blob it fetches, ADR 0012) when it has one, forwarded otherwise.
//!
//! Also [`Switch`]: the one router a listener serves, replaced in place when this
//! process takes the lease and becomes the sequencer, so the listener never closes.
//!
//! May import `http`, `log` (the follower, the projection and read errors), `catalog`
//! (parsing and verifying a submission), `storage::blobs` and the sibling handlers
//! (their helpers, and the generic handlers of `catalog`, `state` and `browse`).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::Serialize;
use tower::ServiceExt as _;

use super::catalog::{self, CatalogReads};
use super::forward::{unavailable, Forwarder};
use super::read::{
    log_info_response, parse_index, query_problem, tile_response, with_headers, ConsistencyQuery,
    ReceiptQuery, IMMUTABLE,
};
use super::{Operations, Problem, MAX_BODY_BYTES};
use crate::catalog::{Refusal, Submission, SubmissionKind};
use crate::http::forwarded::ClientAddr;
use crate::http::routes;
use crate::log::follower::Follower;
use crate::log::projection::Projection;
use crate::note::{Verifier, MAX_NOTE_SIZE};
use crate::receipt::RECEIPT_MEDIA_TYPE;
use crate::storage::blobs::BlobStore;
use crate::tiles::TileId;

/// What a frontend's handlers reach.
#[derive(Clone)]
pub struct Frontend {
    /// The log as the tiles and the coordinator's checkpoint show it.
    pub follower: Arc<Follower>,
    /// Where writes and projection reads go.
    pub forwarder: Arc<Forwarder>,
    /// Longest wait for the followed head to cover an entry a receipt is asked for.
    pub receipt_wait: Duration,
    /// Largest body forwarded as it is (evidence blobs); submissions are capped at
    /// [`MAX_BODY_BYTES`].
    pub max_forward_bytes: usize,
    /// The evidence blobs in the bucket, served here (`None`: downloads are forwarded).
    pub blobs: Option<Arc<BlobStore>>,
    /// The witnesses' cosignature keys (empty: the log has none, and the head is served
    /// with the log's signature alone).
    pub witnesses: Arc<[Verifier]>,
    /// This frontend's own catalog, from which it answers the catalog reads once it
    /// has caught up with the head (`None`: they are all forwarded).
    pub projection: Option<Arc<Projection>>,
    /// Serializes refreshes, and holds when the last one started: requests that arrive
    /// while one runs share the next, so any number of them cost one coordinator read
    /// per round.
    refreshing: Arc<tokio::sync::Mutex<Option<Instant>>>,
}

impl Frontend {
    /// A frontend over `follower`, forwarding through `forwarder`.
    pub fn new(
        follower: Arc<Follower>,
        forwarder: Arc<Forwarder>,
        receipt_wait: Duration,
        max_forward_bytes: usize,
    ) -> Frontend {
        Frontend {
            follower,
            forwarder,
            receipt_wait,
            max_forward_bytes,
            blobs: None,
            witnesses: Arc::from(Vec::new()),
            projection: None,
            refreshing: Arc::new(tokio::sync::Mutex::new(None)),
        }
    }

    /// This frontend, serving evidence downloads from `blobs` itself.
    pub fn with_blobs(mut self, blobs: Arc<BlobStore>) -> Frontend {
        self.blobs = Some(blobs);
        self
    }

    /// This frontend, adding to its head the cosignatures of `witnesses` that the holder
    /// collected.
    pub fn with_witnesses(mut self, witnesses: Vec<Verifier>) -> Frontend {
        self.witnesses = Arc::from(witnesses);
        self
    }

    /// This frontend, keeping `projection` of the log it follows and answering the
    /// catalog reads from it whenever it has applied exactly the head.
    pub fn with_projection(mut self, projection: Arc<Projection>) -> Frontend {
        self.projection = Some(projection);
        self
    }

    /// The holder's `/checkpoint`, when the head held may still lack a witness's
    /// cosignature and the holder answers 200 with a note (at most a note's size, within
    /// `wait`); `None` otherwise. Asked before the head is refreshed: the holder serves
    /// no checkpoint newer than the coordinator's, so the refreshed head is then at
    /// least as new as the answer.
    async fn holder_checkpoint(&self, wait: Duration) -> Option<axum::body::Bytes> {
        if self.witnesses.is_empty()
            || self.follower.cosigners(&self.witnesses) == self.witnesses.len()
        {
            return None;
        }
        let ask = async {
            let response = self
                .forwarder
                .forward(
                    Method::GET,
                    routes::CHECKPOINT,
                    &HeaderMap::new(),
                    None,
                    Body::empty(),
                )
                .await;
            if response.status() != StatusCode::OK {
                return None;
            }
            axum::body::to_bytes(response.into_body(), MAX_NOTE_SIZE)
                .await
                .ok()
        };
        tokio::time::timeout(wait, ask).await.ok().flatten()
    }

    /// Adds to the head the verified cosignatures of the holder's `note` (see
    /// [`Follower::add_cosignatures`]), off the async workers (it waits for a refresh
    /// in progress).
    async fn add_cosignatures(&self, note: axum::body::Bytes) {
        let (follower, witnesses) = (self.follower.clone(), self.witnesses.clone());
        let added =
            tokio::task::spawn_blocking(move || follower.add_cosignatures(&note, &witnesses)).await;
        if let Err(e) = added {
            tracing::warn!(error = %e, "adding the witness cosignatures");
        }
    }

    /// Refreshes the followed head now (one coordinator read; tile reads if it moved),
    /// off the async workers, unless a refresh started since this call did. A failure
    /// keeps the old head and is logged.
    pub async fn refresh(&self) {
        let asked = Instant::now();
        let mut last = self.refreshing.lock().await;
        if last.is_some_and(|started| started >= asked) {
            return;
        }
        *last = Some(Instant::now());
        let follower = self.follower.clone();
        match tokio::task::spawn_blocking(move || follower.refresh()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "following the log"),
            Err(e) => tracing::warn!(error = %e, "following the log"),
        }
    }
}

/// Follows the log and the lease until `stop` resolves: every `every`, refreshes the
/// head (with the holder's witness cosignatures for it, when the log has witnesses) and
/// asks `holder` for the live holder's advertised URL (`None`: no live holder), which
/// the forwarder then uses. The projection, if any, catches up with each new head.
pub async fn follow(
    frontend: Frontend,
    every: Duration,
    holder: Arc<dyn Fn() -> Option<String> + Send + Sync>,
    stop: impl std::future::Future<Output = ()>,
) {
    let run = async {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let cosigned = frontend.holder_checkpoint(every).await;
            frontend.refresh().await;
            if let Some(note) = cosigned {
                frontend.add_cosignatures(note).await;
            }
            let holder = holder.clone();
            if let Ok(url) = tokio::task::spawn_blocking(move || holder()).await {
                frontend.forwarder.set_holder(url.as_deref());
            }
        }
    };
    let projection = frontend.projection.clone();
    let project = async move {
        if let Some(projection) = projection {
            projection.follow().await;
        }
        // A projection that stopped leaves the rest following.
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = run => {}
        _ = project => {}
        _ = stop => {}
    }
}

/// The frontend's router (see the module documentation); `ops` gives `/metrics`.
pub fn router(frontend: Frontend, ops: Operations) -> Router {
    let local = frontend
        .projection
        .clone()
        .map(|p| local_catalog(&frontend, p.clone()).merge(local_state(&frontend, p)));
    let router = Router::new()
        .route(routes::PUBLICATIONS, post(submit_publication))
        .route(routes::GRANTS, post(submit_grant))
        .route(routes::POLICY_SET, post(submit_decision))
        .route(routes::REVOCATIONS, post(submit_decision))
        .route(routes::REVIEWS, post(submit_decision))
        .route(routes::PROMOTIONS, post(submit_decision))
        .route(routes::STATUS_CHANGES, post(submit_decision))
        .route(routes::BLOB, get(blob).put(forward_as_is))
        .route(routes::CHECKPOINT, get(checkpoint))
        .route(routes::TILE, get(tile))
        .route(routes::LOG_INFO, get(log_info))
        .route(routes::LOG_ENTRY, get(entry))
        .route(routes::RECEIPT, get(receipt))
        .route(routes::CONSISTENCY_PROOF, get(consistency))
        .route(routes::HEALTHZ, get(super::health::healthz))
        .route(routes::READYZ, get(readyz))
        .route(routes::METRICS, get(metrics))
        .route(routes::OPENAPI, get(crate::openapi::serve_document))
        .route(routes::SCHEMAS, get(crate::openapi::schema_file))
        .route(routes::BROWSE_STYLE, get(super::browse::style))
        .fallback(forward_as_is)
        .layer(Extension(ops))
        .with_state(frontend);
    match local {
        Some(local) => router.merge(local),
        None => router,
    }
}

/// Whether `app`'s projection serves exactly the followed head (its answers are then as
/// of the checkpoint this frontend serves).
fn serves_head(app: &Frontend) -> bool {
    app.projection
        .as_ref()
        .and_then(|p| p.serving_size())
        .is_some()
}

/// The catalog reads answered from `projection` with the holder's own handlers, each
/// forwarded instead while the projection has not applied exactly the head.
fn local_catalog(frontend: &Frontend, projection: Arc<Projection>) -> Router {
    let work = Arc::new(catalog::ReadWork::default());
    let browse = frontend.blobs.clone().map(|blobs| {
        local_entry_page(
            frontend,
            Local {
                projection: projection.clone(),
                blobs,
            },
            work.clone(),
        )
    });
    let router = Router::new()
        .route(routes::ENTRIES, get(catalog::entries::<Arc<Projection>>))
        .route(routes::ENTRY, get(catalog::entry::<Arc<Projection>>))
        .route(
            routes::EVIDENCE_BUNDLE,
            get(catalog::bundle::<Arc<Projection>>),
        )
        .route(routes::STATE, get(catalog::state::<Arc<Projection>>))
        .route(routes::POLICY, get(catalog::policy::<Arc<Projection>>))
        .route(
            routes::BROWSE_SEARCH,
            get(super::browse::search::<Arc<Projection>>),
        )
        .layer(Extension(work))
        .route_layer(middleware::from_fn_with_state(
            frontend.clone(),
            local_or_forwarded,
        ))
        .with_state(projection);
    match browse {
        Some(browse) => router.merge(browse),
        None => router,
    }
}

/// What a frontend's entry page reads: its projection, the entries of the tiles it
/// follows (the decisions' comments) and the bucket (which evidence is held), as the
/// holder's page reads its log and the same bucket.
#[derive(Clone)]
struct Local {
    projection: Arc<Projection>,
    blobs: Arc<BlobStore>,
}

/// The projection's answers, as `Arc<Projection>` gives them.
impl CatalogReads for Local {
    fn origin(&self) -> String {
        CatalogReads::origin(&self.projection)
    }
    fn size(&self) -> u64 {
        CatalogReads::size(&self.projection)
    }
    fn read_catalog<R>(&self, read: impl FnOnce(&crate::catalog::Catalog, u64) -> R) -> R {
        CatalogReads::read_catalog(&self.projection, read)
    }
    fn state_digest_at(&self, at: u64) -> Result<[u8; 32], crate::catalog::CatalogError> {
        CatalogReads::state_digest_at(&self.projection, at)
    }
}

impl super::browse::EntryPageReads for Local {
    fn leaf(&self, index: u64) -> Option<Vec<u8>> {
        self.projection.follower().entry(index).ok()
    }
    fn blobs(&self) -> Option<Arc<BlobStore>> {
        Some(self.blobs.clone())
    }
}

/// The browser's entry page from `local`, forwarded while the projection does not serve
/// the head. Only with the bucket: without it the page could not say which evidence the
/// holder holds, so it is forwarded.
fn local_entry_page(frontend: &Frontend, local: Local, work: Arc<catalog::ReadWork>) -> Router {
    Router::new()
        .route(routes::BROWSE_ENTRY, get(super::browse::entry::<Local>))
        .layer(Extension(work))
        .route_layer(middleware::from_fn_with_state(
            frontend.clone(),
            local_or_forwarded,
        ))
        .with_state(local)
}

/// The state proofs and histories answered from the commitments `projection` checked
/// and kept, with the holder's own handlers; forwarded while it does not serve the head,
/// and whenever the answer would be a 404 (a commitment not kept here: one before the
/// snapshot this frontend restored from, or older than it keeps, may be the holder's).
fn local_state(frontend: &Frontend, projection: Arc<Projection>) -> Router {
    Router::new()
        .route(
            routes::STATE_PROOFS,
            get(super::state::proofs::<Arc<Projection>>),
        )
        .route(
            routes::STATE_HISTORY,
            get(super::state::history::<Arc<Projection>>),
        )
        .route_layer(middleware::from_fn_with_state(
            frontend.clone(),
            local_else_forwarded,
        ))
        .with_state(projection)
}

/// Passes `request` to the local handler when the projection serves the head's size,
/// forwards it to the holder otherwise.
async fn local_or_forwarded(State(app): State<Frontend>, request: Request, next: Next) -> Response {
    if serves_head(&app) {
        next.run(request).await
    } else {
        forward_as_is(State(app), request).await
    }
}

/// [`local_or_forwarded`], and a local 404 forwarded as well: for the reads (bodiless
/// GETs) whose answer the projection may lack although the holder has it.
async fn local_else_forwarded(
    State(app): State<Frontend>,
    request: Request,
    next: Next,
) -> Response {
    if !serves_head(&app) {
        return forward_as_is(State(app), request).await;
    }
    let (parts, body) = request.into_parts();
    let again = Request::from_parts(parts.clone(), Body::empty());
    let answer = next.run(Request::from_parts(parts, body)).await;
    if answer.status() == StatusCode::NOT_FOUND {
        forward_as_is(State(app), again).await
    } else {
        answer
    }
}

// ---------------------------------------------------------------------------------------
// Submissions: checked here, sequenced by the holder.
// ---------------------------------------------------------------------------------------

async fn submit_publication(
    State(app): State<Frontend>,
    client: Option<Extension<ClientAddr>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let client = client.map(|c| c.0 .0);
    submit(
        app,
        client,
        uri,
        headers,
        body,
        Some(SubmissionKind::Publication),
    )
    .await
}

async fn submit_grant(
    State(app): State<Frontend>,
    client: Option<Extension<ClientAddr>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let client = client.map(|c| c.0 .0);
    submit(app, client, uri, headers, body, Some(SubmissionKind::Grant)).await
}

/// The decision endpoints: the kind is checked by the sequencer, which knows which
/// endpoint takes which decision; here the envelope and its signature.
async fn submit_decision(
    State(app): State<Frontend>,
    client: Option<Extension<ClientAddr>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    submit(app, client.map(|c| c.0 .0), uri, headers, body, None).await
}

/// Caps, parses and verifies the body, then forwards it unchanged, as `client`'s.
async fn submit(
    app: Frontend,
    client: Option<std::net::IpAddr>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
    expected: Option<SubmissionKind>,
) -> Response {
    let bytes = match crate::http::read_limited(&headers, body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(problem) => return problem.into_response(),
    };
    if let Err(problem) = check(&app, &bytes, expected).await {
        return problem.into_response();
    }
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    app.forwarder
        .forward(Method::POST, path, &headers, client, Body::from(bytes))
        .await
}

/// What the sequencer would refuse without reading the state: a body that does not
/// parse, of the wrong kind, or signed by no key the log has made known (403). A key
/// granted since the last poll is looked for once more after a refresh, so a client
/// that got its grant's receipt is never refused for the frontend's lag.
async fn check(
    app: &Frontend,
    bytes: &[u8],
    expected: Option<SubmissionKind>,
) -> Result<(), Problem> {
    let submission = Submission::parse(bytes).map_err(Problem::from)?;
    if let Some(expected) = expected.filter(|k| *k != submission.kind()) {
        return Err(Refusal::Invalid(vec![format!(
            "this endpoint takes {expected:?} submissions, the payload is a {:?}",
            submission.kind()
        )])
        .into());
    }
    if submission.verify(&app.follower.keys()).is_ok() {
        return Ok(());
    }
    app.refresh().await;
    submission
        .verify(&app.follower.keys())
        .map(|_| ())
        .map_err(Problem::from)
}

/// `GET /v1/blobs/sha256:<hex>`: from the bucket when this frontend has it, else
/// forwarded.
async fn blob(State(app): State<Frontend>, Path(path): Path<String>, request: Request) -> Response {
    let Some(store) = app.blobs.clone() else {
        return forward_as_is(State(app), request).await;
    };
    match super::blobs::download(&store, &path).await {
        Ok(response) => response,
        Err(problem) => problem.into_response(),
    }
}

/// Everything the frontend does not answer itself, passed to the holder as it is (the
/// body streamed, at most `max_forward_bytes`).
async fn forward_as_is(State(app): State<Frontend>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or(parts.uri.path(), |p| p.as_str())
        .to_string();
    let limited = http_body_util::Limited::new(body, app.max_forward_bytes);
    let client = parts.extensions.get::<ClientAddr>().map(|c| c.0);
    app.forwarder
        .forward(
            parts.method,
            &path,
            &parts.headers,
            client,
            Body::new(limited),
        )
        .await
}

// ---------------------------------------------------------------------------------------
// Reads from the follower.
// ---------------------------------------------------------------------------------------

fn no_head() -> Response {
    unavailable("this frontend has not read the log's checkpoint yet")
}

async fn checkpoint(State(app): State<Frontend>) -> Response {
    match app.follower.head() {
        Some(head) => with_headers(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            "no-cache",
            head.signed.as_ref().clone(),
        ),
        None => no_head(),
    }
}

async fn tile(State(app): State<Frontend>, Path(path): Path<String>) -> Response {
    let full_path = format!("tile/{path}");
    let Some(tile) = TileId::parse_path(&full_path) else {
        return Problem::not_found(format!("{full_path} is not a tlog-tiles path")).into_response();
    };
    let follower = app.follower.clone();
    let read = tokio::task::spawn_blocking(move || follower.tile(tile)).await;
    match read {
        Ok(Ok(data)) => tile_response(tile, &data),
        Ok(Err(e)) => Problem::from(e).into_response(),
        Err(e) => Problem::internal(e.to_string()).into_response(),
    }
}

async fn log_info(State(app): State<Frontend>) -> Response {
    let Some(head) = app.follower.head() else {
        return no_head();
    };
    log_info_response(
        app.follower.origin(),
        app.follower.verifier(),
        head.checkpoint.size,
    )
}

async fn entry(State(app): State<Frontend>, Path(index): Path<String>) -> Response {
    let index = match parse_index(&index, "index") {
        Ok(index) => index,
        Err(problem) => return problem.into_response(),
    };
    let follower = app.follower.clone();
    match tokio::task::spawn_blocking(move || follower.entry(index)).await {
        Ok(Ok(bytes)) => with_headers(StatusCode::OK, "application/json", IMMUTABLE, bytes),
        Ok(Err(e)) => Problem::from(e).into_response(),
        Err(e) => Problem::internal(e.to_string()).into_response(),
    }
}

/// `GET /v1/receipts/N`: against the followed head, once it covers entry N (at most
/// `receipt_wait`; a refresh is asked for at once). With `tree_size`: against the head
/// when that is its size, else forwarded: a checkpoint of an earlier size is signed by
/// the holder with the log key (`Log::checkpoint_at`), never here, as a frontend signs
/// nothing (ADR 0004).
async fn receipt(
    State(app): State<Frontend>,
    Path(index_text): Path<String>,
    client: Option<Extension<ClientAddr>>,
    uri: Uri,
    headers: HeaderMap,
    query: Result<Query<ReceiptQuery>, QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(query) => query,
        Err(rejection) => return query_problem(rejection).into_response(),
    };
    let index = match parse_index(&index_text, "index") {
        Ok(index) => index,
        Err(problem) => return problem.into_response(),
    };
    if let Some(size) = query.tree_size.as_deref() {
        let size = match parse_index(size, "tree_size") {
            Ok(size) => size,
            Err(problem) => return problem.into_response(),
        };
        // The head's own size needs no signature but the one the head carries.
        if app
            .follower
            .head()
            .is_some_and(|h| h.checkpoint.size == size)
        {
            let follower = app.follower.clone();
            let local =
                tokio::task::spawn_blocking(move || follower.receipt_at_head(index, size)).await;
            if let Ok(Ok(receipt)) = local {
                return with_headers(
                    StatusCode::OK,
                    RECEIPT_MEDIA_TYPE,
                    "no-cache",
                    receipt.to_json(),
                );
            }
        }
        let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
        return app
            .forwarder
            .forward(
                Method::GET,
                path,
                &headers,
                client.map(|c| c.0 .0),
                Body::empty(),
            )
            .await;
    }
    let covered = |app: &Frontend| {
        app.follower
            .head()
            .is_some_and(|h| h.checkpoint.size > index)
    };
    if !covered(&app) {
        let deadline = Instant::now() + app.receipt_wait;
        let mut heads = app.follower.subscribe();
        app.refresh().await;
        while !covered(&app) {
            let wait = tokio::time::timeout_at(deadline.into(), heads.changed()).await;
            if !matches!(wait, Ok(Ok(()))) {
                break;
            }
        }
    }
    let follower = app.follower.clone();
    match tokio::task::spawn_blocking(move || follower.receipt(index)).await {
        Ok(Ok(receipt)) => with_headers(
            StatusCode::OK,
            RECEIPT_MEDIA_TYPE,
            "no-cache",
            receipt.to_json(),
        ),
        Ok(Err(e)) => Problem::from(e).into_response(),
        Err(e) => Problem::internal(e.to_string()).into_response(),
    }
}

#[derive(Serialize)]
struct ConsistencyProof {
    first: u64,
    second: u64,
    hashes: Vec<String>,
}

async fn consistency(
    State(app): State<Frontend>,
    query: Result<Query<ConsistencyQuery>, QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(query) => query,
        Err(rejection) => return query_problem(rejection).into_response(),
    };
    let sizes = parse_index(&query.first, "first")
        .and_then(|first| Ok((first, parse_index(&query.second, "second")?)));
    let (first, second) = match sizes {
        Ok((first, second)) if first > 0 && first <= second => (first, second),
        Ok((first, second)) => {
            return Problem::bad_request(format!(
                "a consistency proof needs 0 < first <= second, got first={first} second={second}"
            ))
            .into_response()
        }
        Err(problem) => return problem.into_response(),
    };
    let follower = app.follower.clone();
    match tokio::task::spawn_blocking(move || follower.consistency_proof(first, second)).await {
        Ok(Ok(proof)) => with_headers(
            StatusCode::OK,
            "application/json",
            "no-cache",
            serde_json::to_string(&ConsistencyProof {
                first,
                second,
                hashes: proof.iter().map(hex::encode).collect(),
            })
            .unwrap_or_default(),
        ),
        Ok(Err(e)) => Problem::from(e).into_response(),
        Err(e) => Problem::internal(e.to_string()).into_response(),
    }
}

/// `GET /readyz`: ready once a head is followed; the body says this is a frontend,
/// where it forwards, and where its catalog projection stands (`catalog.local`: catalog
/// reads answered here; `catalog.failed`: why it stopped for good).
async fn readyz(State(app): State<Frontend>) -> Response {
    let head = app.follower.head().map(|h| h.checkpoint.size);
    let catalog = app.projection.as_ref().map(|p| {
        let status = p.status();
        serde_json::json!({
            "local": p.serving_size().is_some(),
            "treeSize": status.verified,
            "restoredFrom": status.restored.map(|r| serde_json::json!({
                "treeSize": r.size,
                "deltas": r.deltas,
            })),
            "failed": status.failed,
        })
    });
    let body = serde_json::json!({
        "ready": head.is_some(),
        "role": "frontend",
        "treeSize": head,
        "forwardsTo": app.forwarder.holder(),
        "catalog": catalog,
    });
    let status = if head.is_some() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    with_headers(status, "application/json", "no-store", body.to_string())
}

async fn metrics(Extension(ops): Extension<Operations>) -> Response {
    match &ops.metrics {
        Some(handle) => with_headers(
            StatusCode::OK,
            crate::telemetry::PROMETHEUS_TEXT,
            "no-store",
            handle.render(),
        ),
        None => Problem::not_found("metrics are not served on this listener").into_response(),
    }
}

// ---------------------------------------------------------------------------------------
// The router a listener serves, replaced in place on takeover.
// ---------------------------------------------------------------------------------------

/// One listener's router, replaceable while it serves (see the module documentation).
#[derive(Clone)]
pub struct Switch {
    current: Arc<RwLock<Router>>,
}

impl Switch {
    /// Serves `router` until [`Switch::set`].
    pub fn new(router: Router) -> Switch {
        Switch {
            current: Arc::new(RwLock::new(router)),
        }
    }

    /// Serves `router` from the next request on (requests in flight finish on the old).
    pub fn set(&self, router: Router) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = router;
    }

    /// The router to mount on the listener: every request goes to the current one.
    pub fn router(&self) -> Router {
        let current = self.current.clone();
        let service = tower::service_fn(move |request: Request| {
            let router = current.read().unwrap_or_else(|p| p.into_inner()).clone();
            router.oneshot(request)
        });
        Router::new().fallback_service(service)
    }
}
