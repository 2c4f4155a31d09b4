//! `GET /v1/state/proofs`: a self-contained lookup proof from a state commitment
//! (`log-format/state.md` §6): the map proof for one key and the receipt of the
//! commitment leaf (witnessed when the log has witnesses, as receipts are).
//!
//! One route, four lookups, chosen by which parameters are given:
//! `target` + `subject` (an entry), `target` + `channel` (a channel head), `subject`
//! alone (the targets carrying it), `key` (a verifier key's roles). `tree_size` picks a
//! commitment by the size it commits to; without it, the newest.
//!
//! May import `super` (the app state, Problem, the read helpers) and `state`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::read::{parse_index, query_problem, with_headers};
use super::{AppState, Problem};
use crate::catalog::{check_catalog_ref, check_channel, check_sha256, check_vkey};
use crate::state::{MapKey, StateProofBundle, STATE_PROOF_MEDIA_TYPE};

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
    match (&q.target, &q.subject, &q.channel, &q.key) {
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
pub async fn proofs(
    State(app): State<AppState>,
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
        let committed = app.log.state_commitment(size).ok_or_else(|| match size {
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
        let receipt = super::witnessed::latest_receipt(&app, committed.leaf_index, None).await?;
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
