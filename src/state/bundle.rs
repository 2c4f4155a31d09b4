//! The self-contained proof bundle (`application/vnd.srcos.catalog.state-proof.v1+json`,
//! `log-format/state.md` §6, `schemas/state-proof.v1.schema.json`): a key, its value (or
//! `null`), the map proof against a committed root, and the receipt of the
//! `StateCommitment` leaf that carries that root (its inclusion in a signed, possibly
//! cosigned, checkpoint). A consumer verifies it offline with the log's verifier key
//! and, for a witnessed checkpoint, the witnesses' keys.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use super::keys::MapKey;
use super::proof::{Proof, ProofError, MAX_PROOF_BYTES};
use crate::catalog::{parse_rfc3339_ms, to_canonical_vec, Leaf};
use crate::note::{Checkpoint, Verifier};
use crate::receipt::{Receipt, ReceiptError};

/// The media type of a proof bundle.
pub const STATE_PROOF_MEDIA_TYPE: &str = "application/vnd.srcos.catalog.state-proof.v1+json";

/// The largest bundle a verifier reads: the map proof's largest encoding in base64, a
/// receipt (a 64-level inclusion proof and a note with cosignatures) and the value.
pub const MAX_BUNDLE_BYTES: usize = 256 * 1024;

/// A proof bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StateProofBundle {
    /// Always [`STATE_PROOF_MEDIA_TYPE`].
    pub media_type: String,
    /// The key, as its JSON array (`["entry", target, subject]`, ...).
    pub key: Vec<String>,
    /// The value under the key (its RFC 8785 encoding is what the map holds), or `null`
    /// when the key is absent.
    pub value: Value,
    /// The compressed map proof (`log-format/state.md` §4), standard base64.
    pub map_proof: String,
    /// The receipt of the `StateCommitment` leaf whose root the map proof leads to.
    pub commitment: Receipt,
}

/// What a verified bundle establishes.
#[derive(Clone, Debug)]
pub struct VerifiedLookup {
    /// The key.
    pub key: MapKey,
    /// Its value's canonical bytes, or `None`: proved absent.
    pub value: Option<Vec<u8>>,
    /// The size of the committed state (at most the commitment leaf's index).
    pub tree_size: u64,
    /// The commitment leaf's index.
    pub leaf_index: u64,
    /// When the sequencer committed (ms since the epoch).
    pub committed_at_ms: u64,
    /// The verified checkpoint that includes the commitment.
    pub checkpoint: Checkpoint,
    /// Distinct witnesses that cosigned that checkpoint (0 when none were required).
    pub cosigners: usize,
}

/// Why a bundle does not verify.
#[derive(Debug, Error)]
pub enum BundleError {
    /// Not a bundle (JSON shape, media type, key shape, base64, size).
    #[error("malformed state proof: {0}")]
    Malformed(String),
    /// The commitment's receipt does not verify (signature, inclusion, quorum).
    #[error("the state commitment's receipt: {0}")]
    Receipt(#[from] ReceiptError),
    /// The receipt's entry is not a `StateCommitment` for a size up to its index.
    #[error("the receipt's entry is not a state commitment: {0}")]
    NotCommitment(String),
    /// The map proof does not verify against the committed root.
    #[error("the map proof: {0}")]
    Proof(#[from] ProofError),
}

impl StateProofBundle {
    /// Assembles a bundle.
    pub fn new(
        key: &MapKey,
        value: Option<&[u8]>,
        proof: &Proof,
        commitment: Receipt,
    ) -> StateProofBundle {
        StateProofBundle {
            media_type: STATE_PROOF_MEDIA_TYPE.to_string(),
            key: key.parts(),
            value: value
                .and_then(|v| serde_json::from_slice(v).ok())
                .unwrap_or(Value::Null),
            map_proof: BASE64.encode(proof.encode()),
            commitment,
        }
    }

    /// Parses bundle JSON strictly (at most [`MAX_BUNDLE_BYTES`], no unknown members).
    pub fn from_json(bytes: &[u8]) -> Result<StateProofBundle, BundleError> {
        if bytes.len() > MAX_BUNDLE_BYTES {
            return Err(BundleError::Malformed(format!(
                "{} bytes, over the {MAX_BUNDLE_BYTES}-byte limit",
                bytes.len()
            )));
        }
        serde_json::from_slice(bytes).map_err(|e| BundleError::Malformed(e.to_string()))
    }

    /// The bundle as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Verifies the bundle offline: the commitment's receipt with `log_key` (and, when
    /// `quorum` > 0, cosignatures from `quorum` of `witnesses`), the commitment leaf,
    /// then the map proof for the key and value against its root.
    pub fn verify(
        &self,
        log_key: &Verifier,
        witnesses: &[Verifier],
        quorum: usize,
    ) -> Result<VerifiedLookup, BundleError> {
        if self.media_type != STATE_PROOF_MEDIA_TYPE {
            return Err(BundleError::Malformed(format!(
                "mediaType {:?} is not {STATE_PROOF_MEDIA_TYPE}",
                self.media_type
            )));
        }
        let key = MapKey::from_parts(&self.key)
            .ok_or_else(|| BundleError::Malformed(format!("key {:?} is no map key", self.key)))?;
        let (receipt, cosigners) = if quorum > 0 {
            let w = self
                .commitment
                .verify_with_witnesses(log_key, witnesses, quorum)?;
            (w.receipt, w.cosigners.len())
        } else {
            (self.commitment.verify(log_key)?, 0)
        };
        let leaf = match Leaf::parse(&receipt.entry) {
            Ok(Leaf::StateCommitment(c)) => c,
            Ok(other) => {
                return Err(BundleError::NotCommitment(format!(
                    "a {} leaf",
                    other.kind()
                )))
            }
            Err(e) => return Err(BundleError::NotCommitment(e.to_string())),
        };
        // A commitment names a size up to its own index (`state.md` §5); which one is
        // the monitors' to check against the entries.
        if leaf.tree_size > receipt.index {
            return Err(BundleError::NotCommitment(format!(
                "leaf {} commits to the later size {}",
                receipt.index, leaf.tree_size
            )));
        }
        let mut root = [0u8; 32];
        hex::decode_to_slice(&leaf.root, &mut root)
            .map_err(|e| BundleError::NotCommitment(format!("root: {e}")))?;
        let committed_at_ms = parse_rfc3339_ms(&leaf.committed_at).ok_or_else(|| {
            BundleError::NotCommitment(format!("committedAt {:?}", leaf.committed_at))
        })?;
        let proof_bytes = BASE64
            .decode(&self.map_proof)
            .map_err(|e| BundleError::Malformed(format!("mapProof: {e}")))?;
        if proof_bytes.len() > MAX_PROOF_BYTES {
            return Err(BundleError::Malformed("mapProof is too long".into()));
        }
        let proof = Proof::decode(&proof_bytes)?;
        let value = match &self.value {
            Value::Null => None,
            v => Some(
                to_canonical_vec(v).map_err(|e| BundleError::Malformed(format!("value: {e}")))?,
            ),
        };
        proof.verify(&root, &key.hash(), value.as_deref())?;
        Ok(VerifiedLookup {
            key,
            value,
            tree_size: leaf.tree_size,
            leaf_index: receipt.index,
            committed_at_ms,
            checkpoint: receipt.checkpoint,
            cosigners,
        })
    }
}
