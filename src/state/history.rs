//! History proofs (`application/vnd.srcos.catalog.state-history.v1+json`,
//! `log-format/state.md` §8): one key's value at every state commitment from one
//! committed size to another, each step a lookup proof bundle, all against one
//! checkpoint. Complete because every commitment leaf names the previous one
//! (`previous`, checked by every reader that applies the log), so a chain of steps in
//! which each names the one before leaves no commitment out.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::bundle::{BundleError, StateProofBundle, VerifiedLookup};
use crate::note::Verifier;

/// The media type of a history proof.
pub const STATE_HISTORY_MEDIA_TYPE: &str = "application/vnd.srcos.catalog.state-history.v1+json";

/// The most steps one history proof holds (a server answers a longer range with 400).
pub const MAX_HISTORY_STEPS: usize = 256;

/// The largest history proof a verifier reads: [`MAX_HISTORY_STEPS`] steps of 64 KiB
/// (a step is a lookup proof of a few KiB; its map proof is at most 8,291 bytes).
pub const MAX_HISTORY_BYTES: usize = MAX_HISTORY_STEPS * 64 * 1024;

/// A history proof: the steps, oldest commitment first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StateHistory {
    /// Always [`STATE_HISTORY_MEDIA_TYPE`].
    pub media_type: String,
    /// One lookup proof per commitment, in log order.
    pub steps: Vec<StateProofBundle>,
}

/// Why a history proof does not verify.
#[derive(Debug, Error)]
pub enum HistoryError {
    /// Not a history proof (media type, no steps, too many, steps about other keys or
    /// against other checkpoints).
    #[error("malformed state history: {0}")]
    Malformed(String),
    /// A step does not verify as a lookup proof.
    #[error("step {step}: {source}")]
    Step {
        /// The step's position.
        step: usize,
        /// Why.
        #[source]
        source: BundleError,
    },
    /// A step does not name the step before it as its previous commitment: a commitment
    /// between them was left out (or the chain is out of order).
    #[error(
        "incomplete: the commitment at leaf {leaf} follows commitment {previous:?}, \
         not the previous step's leaf {expected}"
    )]
    Gap {
        /// The step's commitment leaf.
        leaf: u64,
        /// The commitment it names as its previous.
        previous: Option<u64>,
        /// The previous step's commitment leaf.
        expected: u64,
    },
}

impl StateHistory {
    /// A history proof of `steps` (oldest first).
    pub fn new(steps: Vec<StateProofBundle>) -> StateHistory {
        StateHistory {
            media_type: STATE_HISTORY_MEDIA_TYPE.to_string(),
            steps,
        }
    }

    /// Verifies every step (as [`StateProofBundle::verify`]) and the chain: one key, one
    /// checkpoint, and each commitment naming the one before. Returns the lookups, oldest
    /// first: the key's value at every commitment between the first and the last.
    pub fn verify(
        &self,
        log_key: &Verifier,
        witnesses: &[Verifier],
        quorum: usize,
    ) -> Result<Vec<VerifiedLookup>, HistoryError> {
        if self.media_type != STATE_HISTORY_MEDIA_TYPE {
            return Err(HistoryError::Malformed(format!(
                "mediaType {:?}",
                self.media_type
            )));
        }
        if self.steps.is_empty() || self.steps.len() > MAX_HISTORY_STEPS {
            return Err(HistoryError::Malformed(format!(
                "{} steps (1 to {MAX_HISTORY_STEPS})",
                self.steps.len()
            )));
        }
        let mut out: Vec<VerifiedLookup> = Vec::with_capacity(self.steps.len());
        for (step, bundle) in self.steps.iter().enumerate() {
            let lookup = bundle
                .verify(log_key, witnesses, quorum)
                .map_err(|source| HistoryError::Step { step, source })?;
            if let Some(before) = out.last() {
                if lookup.key != before.key {
                    return Err(HistoryError::Malformed(format!(
                        "step {step} is about another key"
                    )));
                }
                let same = lookup.checkpoint.size == before.checkpoint.size
                    && lookup.checkpoint.root == before.checkpoint.root;
                if !same {
                    return Err(HistoryError::Malformed(format!(
                        "step {step} is against another checkpoint"
                    )));
                }
                if lookup.previous != Some(before.leaf_index) {
                    return Err(HistoryError::Gap {
                        leaf: lookup.leaf_index,
                        previous: lookup.previous,
                        expected: before.leaf_index,
                    });
                }
            }
            out.push(lookup);
        }
        Ok(out)
    }

    /// Parses history JSON strictly (at most [`MAX_HISTORY_BYTES`], no unknown members).
    pub fn from_json(bytes: &[u8]) -> Result<StateHistory, HistoryError> {
        if bytes.len() > MAX_HISTORY_BYTES {
            return Err(HistoryError::Malformed(format!(
                "{} bytes, over the {MAX_HISTORY_BYTES}-byte limit",
                bytes.len()
            )));
        }
        serde_json::from_slice(bytes).map_err(|e| HistoryError::Malformed(e.to_string()))
    }

    /// The JSON encoding.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}
