//! `GET /v1/state/proofs`: a self-contained lookup proof from a state commitment
//! (`log-format/state.md` §6): the map proof for one key and the receipt of the
//! commitment leaf (witnessed when the log has witnesses, as receipts are).
//!
//! One route, four lookups, chosen by which parameters are given:
//! `target` + `subject` (an entry), `target` + `channel` (a channel head), `subject`
//! alone (the targets carrying it), `key` (a verifier key's roles). `tree_size` picks a
//! commitment by the size it commits to; without it, the newest.
//!
//! The handlers are generic over [`StateReads`]: the holder answers from the
//! commitments its map thread made, a frontend from those its [`Projection`] of the log
//! checked and kept (ADR 0004 "Frontends"), with receipts against its followed head.
//!
//! May import `super` (the app state, Problem, the read helpers), `state`, and the
//! projection and follower of `log` (what a frontend reads).

use std::future::Future;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::read::{parse_index, query_problem, with_headers};
use super::{AppState, Problem};
use crate::catalog::{check_catalog_ref, check_channel, check_sha256, check_vkey};
use crate::log::projection::Projection;
use crate::receipt::Receipt;
use crate::state::{
    Committed, MapKey, StateHistory, StateProofBundle, MAX_HISTORY_STEPS, STATE_HISTORY_MEDIA_TYPE,
    STATE_PROOF_MEDIA_TYPE,
};

/// What the state proof handlers read: the holder's log, or a frontend's own
/// [`Projection`] of the log it follows (then `None` and empty answers whenever it does
/// not serve exactly its followed head, or lacks the commitment: the frontend forwards
/// every 404 to the holder).
pub trait StateReads: Clone + Send + Sync + 'static {
    /// The commitment lookups are proved against: the one to exactly `tree_size`, or
    /// else the newest in the tree served (see [`crate::log::Log::state_commitment`]).
    fn state_commitment(&self, tree_size: Option<u64>) -> Option<Committed>;
    /// The kept commitments to sizes from `from` to `to`, in log order, at most `limit`,
    /// and the size of the tree their receipts are against.
    fn state_commitments_between(&self, from: u64, to: u64, limit: usize) -> (Vec<Committed>, u64);
    /// The receipt of commitment leaf `index` against the newest checkpoint served.
    fn latest_receipt(&self, index: u64) -> impl Future<Output = Result<Receipt, Problem>> + Send;
    /// The receipt of leaf `index` against the checkpoint of `size` (the one
    /// [`StateReads::state_commitments_between`] named). Blocking.
    fn receipt_at(&self, index: u64, size: u64) -> Result<Receipt, Problem>;
}

impl StateReads for AppState {
    fn state_commitment(&self, tree_size: Option<u64>) -> Option<Committed> {
        self.log.state_commitment(tree_size)
    }
    fn state_commitments_between(&self, from: u64, to: u64, limit: usize) -> (Vec<Committed>, u64) {
        self.log.state_commitments_between(from, to, limit)
    }
    fn latest_receipt(&self, index: u64) -> impl Future<Output = Result<Receipt, Problem>> + Send {
        let app = self.clone();
        async move { super::witnessed::latest_receipt(&app, index, None).await }
    }
    fn receipt_at(&self, index: u64, size: u64) -> Result<Receipt, Problem> {
        super::witnessed::receipt_at(self, index, size)
    }
}

/// The projection's kept commitments, when they are as of the head it serves.
fn served_commitments(
    projection: &Projection,
) -> Option<(u64, Arc<crate::state::KeptCommitments>)> {
    let serving = projection.serving_size()?;
    let (size, kept) = projection.state_commitments();
    (size == serving).then_some((size, kept))
}

impl StateReads for Arc<Projection> {
    fn state_commitment(&self, tree_size: Option<u64>) -> Option<Committed> {
        let (size, kept) = served_commitments(self)?;
        match tree_size {
            // As the holder: a size the tree served does not cover names no commitment.
            Some(n) if n < size => kept.at(n),
            Some(_) => None,
            None => kept.newest(),
        }
    }
    fn state_commitments_between(&self, from: u64, to: u64, limit: usize) -> (Vec<Committed>, u64) {
        match served_commitments(self) {
            Some((size, kept)) => (kept.between(from, to, limit), size),
            None => (Vec::new(), 0),
        }
    }
    fn latest_receipt(&self, index: u64) -> impl Future<Output = Result<Receipt, Problem>> + Send {
        let follower = self.follower().clone();
        async move {
            match tokio::task::spawn_blocking(move || follower.receipt(index)).await {
                Ok(receipt) => receipt.map_err(Problem::from),
                Err(e) => Err(Problem::internal(e.to_string())),
            }
        }
    }
    fn receipt_at(&self, index: u64, size: u64) -> Result<Receipt, Problem> {
        Ok(self.follower().receipt_at_head(index, size)?)
    }
}

/// Query of `GET /v1/state/proofs`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateProofQuery {
    target: Option<String>,
    subject: Option<String>,
    channel: Option<String>,
    key: Option<String>,
    tree_size: Option<String>,
}

/// The map key a query asks about, its fields checked as the catalog checks them.
fn key_of(q: &StateProofQuery) -> Result<MapKey, Problem> {
    key_of_parts(&q.target, &q.subject, &q.channel, &q.key)
}

/// [`key_of`] from the four parameters.
fn key_of_parts(
    given_target: &Option<String>,
    given_subject: &Option<String>,
    given_channel: &Option<String>,
    given_key: &Option<String>,
) -> Result<MapKey, Problem> {
    let bad = |field: &str, e: String| Problem::bad_request(format!("{field}: {e}"));
    let subject = |s: &str| -> Result<String, Problem> {
        let hex = s.strip_prefix("sha256:").ok_or_else(|| {
            Problem::bad_request("subject must be sha256:<64 lowercase hex>".to_string())
        })?;
        check_sha256(hex).map_err(|e| bad("subject", e.to_string()))?;
        Ok(s.to_string())
    };
    let target = |t: &str| -> Result<String, Problem> {
        check_catalog_ref(t, false).map_err(|e| bad("target", e.to_string()))?;
        Ok(t.to_string())
    };
    match (given_target, given_subject, given_channel, given_key) {
        (Some(t), Some(s), None, None) => Ok(MapKey::Entry {
            target: target(t)?,
            subject: subject(s)?,
        }),
        (Some(t), None, Some(c), None) => {
            check_channel(c).map_err(|e| bad("channel", e.to_string()))?;
            Ok(MapKey::Head {
                target: target(t)?,
                channel: c.clone(),
            })
        }
        (None, Some(s), None, None) => Ok(MapKey::Subject {
            subject: subject(s)?,
        }),
        (None, None, None, Some(k)) => {
            let v = check_vkey(k).map_err(|e| bad("key", e.to_string()))?;
            Ok(MapKey::Key { vkey: v.to_vkey() })
        }
        _ => Err(Problem::bad_request(
            "give target and subject, target and channel, subject alone, or key".to_string(),
        )),
    }
}

/// `GET /v1/state/proofs?target=&subject=[&tree_size=]` (and the `channel`, `subject`
/// and `key` variants).
pub async fn proofs<S: StateReads>(
    State(app): State<S>,
    query: Result<Query<StateProofQuery>, QueryRejection>,
) -> Response {
    let result = async {
        let Query(query) = query.map_err(query_problem)?;
        let key = key_of(&query)?;
        let size = query
            .tree_size
            .as_deref()
            .map(|s| parse_index(s, "tree_size"))
            .transpose()?;
        let committed = app.state_commitment(size).ok_or_else(|| match size {
            Some(n) => Problem::not_found(format!(
                "no state commitment for tree size {n} is held (the log commits with \
                 serve --state-commit-every; recent commitments only)"
            )),
            None => Problem::not_found(
                "this log has committed to no state yet (serve --state-commit-every)".to_string(),
            ),
        })?;
        let hash = key.hash();
        let proof = committed.tree.prove(&hash);
        let value = committed.tree.get(&hash).cloned();
        let receipt = app.latest_receipt(committed.leaf_index).await?;
        Ok::<_, Problem>(StateProofBundle::new(
            &key,
            value.as_deref(),
            &proof,
            receipt,
        ))
    }
    .await;
    match result {
        Ok(bundle) => with_headers(
            StatusCode::OK,
            STATE_PROOF_MEDIA_TYPE,
            "no-cache",
            bundle.to_json(),
        ),
        Err(problem) => problem.into_response(),
    }
}

/// Query of `GET /v1/state/proofs/history`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateHistoryQuery {
    target: Option<String>,
    subject: Option<String>,
    channel: Option<String>,
    key: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// `GET /v1/state/proofs/history?<key>&from=A[&to=B]`: the key's value at every kept
/// commitment from the one to size A to the last one to a size up to B, each with its
/// lookup proof, all against the newest checkpoint (`log-format/state.md` §8). At most
/// [`MAX_HISTORY_STEPS`] steps: a longer range is a 400, so the work per request is
/// bounded.
pub async fn history<S: StateReads>(
    State(app): State<S>,
    query: Result<Query<StateHistoryQuery>, QueryRejection>,
) -> Response {
    // Off the async workers: a frontend reads the receipts' tiles from the bucket.
    let result = tokio::task::spawn_blocking(move || {
        let Query(q) = query.map_err(query_problem)?;
        let key = key_of_parts(&q.target, &q.subject, &q.channel, &q.key)?;
        let from = q
            .from
            .as_deref()
            .ok_or_else(|| Problem::bad_request("from (a committed size) is required".to_string()))
            .and_then(|s| parse_index(s, "from"))?;
        let to =
            q.to.as_deref()
                .map(|s| parse_index(s, "to"))
                .transpose()?
                .unwrap_or(u64::MAX);
        if to < from {
            return Err(Problem::bad_request(format!(
                "to {to} is below from {from}"
            )));
        }
        let (steps, head) = app.state_commitments_between(from, to, MAX_HISTORY_STEPS + 1);
        if steps.first().map(|c| c.tree_size) != Some(from) {
            return Err(Problem::not_found(format!(
                "no state commitment to tree size {from} is held (recent commitments only)"
            )));
        }
        if steps.len() > MAX_HISTORY_STEPS {
            return Err(Problem::bad_request(format!(
                "the range holds more than {MAX_HISTORY_STEPS} commitments; narrow it with to"
            )));
        }
        let hash = key.hash();
        let mut bundles = Vec::with_capacity(steps.len());
        for committed in steps {
            let proof = committed.tree.prove(&hash);
            let value = committed.tree.get(&hash).cloned();
            let receipt = app.receipt_at(committed.leaf_index, head)?;
            bundles.push(StateProofBundle::new(
                &key,
                value.as_deref(),
                &proof,
                receipt,
            ));
        }
        Ok::<_, Problem>(StateHistory::new(bundles))
    })
    .await
    .unwrap_or_else(|e| Err(Problem::internal(e.to_string())));
    match result {
        Ok(history) => with_headers(
            StatusCode::OK,
            STATE_HISTORY_MEDIA_TYPE,
            "no-cache",
            history.to_json(),
        ),
        Err(problem) => problem.into_response(),
    }
}
