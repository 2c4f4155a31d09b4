//! The publication receipt: a self-contained, offline-verifiable proof that an entry is
//! in the log.
//!
//! A receipt carries the exact leaf bytes, the inclusion proof, the signed checkpoint it
//! proves against, and the same proof again as C2SP tlog-proof text so that generic
//! tlog clients can check it without knowing our JSON. Verification needs nothing but
//! the log's verifier key.
//!
//! May import only the pure cores `merkle` and `note` (plus serde and the codecs), so
//! that a consumer who only verifies receipts needs nothing with I/O.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::merkle::{self, Hash};
use crate::note::{
    self, Checkpoint, KeyType, Note, NoteError, TlogProof, VerifiedSignature, Verifier,
};

/// The media type every receipt declares.
pub const RECEIPT_MEDIA_TYPE: &str = "application/vnd.srcos.catalog.receipt.v1+json";

/// The receipt JSON (see `schemas/receipt.v1.schema.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Receipt {
    /// Always [`RECEIPT_MEDIA_TYPE`].
    pub media_type: String,
    /// The log's origin (first line of its checkpoints).
    pub origin: String,
    /// The entry's index in the log.
    pub log_index: u64,
    /// RFC 6962 leaf hash of `entry`, lowercase hex.
    pub leaf_hash: String,
    /// The exact leaf bytes, standard base64.
    pub entry: String,
    /// The tree size the proof and checkpoint are for.
    pub tree_size: u64,
    /// The inclusion proof, leaf to root, lowercase hex.
    pub inclusion_proof: Vec<String>,
    /// The full signed checkpoint note.
    pub checkpoint: String,
    /// The same proof as C2SP tlog-proof text.
    pub tlog_proof: String,
}

/// Why a receipt does not verify. Each variant says exactly what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    /// The receipt is not JSON of the receipt shape.
    #[error("receipt is not valid receipt JSON: {0}")]
    Json(String),
    /// The media type is not ours.
    #[error("unexpected mediaType {0:?}")]
    MediaType(String),
    /// The checkpoint is malformed or its signature does not verify with the log key.
    #[error("checkpoint: {0}")]
    Checkpoint(note::NoteError),
    /// The receipt's fields disagree with its checkpoint.
    #[error("{0}")]
    Mismatch(String),
    /// A hex or base64 field does not decode.
    #[error("{field}: {reason}")]
    Encoding {
        /// Which field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The inclusion proof does not lead to the checkpoint's root.
    #[error("inclusion proof: {0}")]
    Proof(merkle::VerifyError),
    /// The tlog-proof text is malformed or disagrees with the rest of the receipt.
    #[error("tlogProof: {0}")]
    TlogProof(String),
    /// A key given as a witness key is not a cosignature (0x04) key.
    #[error("witness key {0} is not a cosignature (type 0x04) key")]
    WitnessKey(String),
    /// A known witness's cosignature on the checkpoint does not verify.
    #[error("checkpoint cosignature: {0}")]
    Cosignature(NoteError),
    /// Fewer distinct known witnesses cosigned the checkpoint than the quorum requires.
    #[error("the checkpoint has valid cosignatures from {got} distinct known witnesses, {needed} required")]
    Quorum {
        /// Distinct known witnesses whose cosignature verified.
        got: usize,
        /// The quorum.
        needed: usize,
    },
}

/// What a verified receipt establishes.
#[derive(Debug, Clone)]
pub struct VerifiedReceipt {
    /// The verified checkpoint.
    pub checkpoint: Checkpoint,
    /// The entry's index.
    pub index: u64,
    /// The exact leaf bytes, proven to be in the log.
    pub entry: Vec<u8>,
    /// Their leaf hash.
    pub leaf_hash: Hash,
}

impl Receipt {
    /// Assembles a receipt; `checkpoint` must be the signed note for `tree_size`.
    pub fn new(
        origin: &str,
        index: u64,
        entry: &[u8],
        tree_size: u64,
        proof: &[Hash],
        checkpoint: &[u8],
    ) -> Receipt {
        let tlog = TlogProof {
            index,
            extra: None,
            hashes: proof.to_vec(),
            checkpoint: checkpoint.to_vec(),
        };
        Receipt {
            media_type: RECEIPT_MEDIA_TYPE.to_string(),
            origin: origin.to_string(),
            log_index: index,
            leaf_hash: hex::encode(merkle::leaf_hash(entry)),
            entry: BASE64.encode(entry),
            tree_size,
            inclusion_proof: proof.iter().map(hex::encode).collect(),
            checkpoint: String::from_utf8_lossy(checkpoint).into_owned(),
            tlog_proof: tlog.to_text(),
        }
    }

    /// Parses receipt JSON strictly (unknown fields are refused).
    pub fn from_json(bytes: &[u8]) -> Result<Receipt, ReceiptError> {
        serde_json::from_slice(bytes).map_err(|e| ReceiptError::Json(e.to_string()))
    }

    /// Pretty JSON for files and HTTP answers.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Verifies everything offline with the log's key: the checkpoint signature, the
    /// leaf hash of `entry`, the inclusion proof (twice: our RFC 9162 verifier and
    /// rs_merkle, with exact length checks), and that `tlogProof` says the same.
    pub fn verify(&self, log_key: &Verifier) -> Result<VerifiedReceipt, ReceiptError> {
        if self.media_type != RECEIPT_MEDIA_TYPE {
            return Err(ReceiptError::MediaType(self.media_type.clone()));
        }
        let (checkpoint, _note) = note::open_checkpoint(self.checkpoint.as_bytes(), log_key)
            .map_err(ReceiptError::Checkpoint)?;
        if checkpoint.origin != self.origin {
            return Err(ReceiptError::Mismatch(format!(
                "origin {:?} but the checkpoint is for {:?}",
                self.origin, checkpoint.origin
            )));
        }
        if checkpoint.size != self.tree_size {
            return Err(ReceiptError::Mismatch(format!(
                "treeSize {} but the checkpoint is for size {}",
                self.tree_size, checkpoint.size
            )));
        }
        let entry = BASE64
            .decode(&self.entry)
            .map_err(|e| ReceiptError::Encoding {
                field: "entry",
                reason: e.to_string(),
            })?;
        let leaf_hash = merkle::leaf_hash(&entry);
        let claimed = decode_hash("leafHash", &self.leaf_hash)?;
        if claimed != leaf_hash {
            return Err(ReceiptError::Mismatch(
                "leafHash is not the RFC 6962 leaf hash of entry".into(),
            ));
        }
        let proof = self
            .inclusion_proof
            .iter()
            .map(|h| decode_hash("inclusionProof", h))
            .collect::<Result<Vec<Hash>, _>>()?;
        merkle::verify_inclusion(
            self.log_index,
            self.tree_size,
            &leaf_hash,
            &proof,
            &checkpoint.root,
        )
        .map_err(ReceiptError::Proof)?;
        merkle::verify_inclusion_rs_merkle(
            self.log_index,
            self.tree_size,
            &leaf_hash,
            &proof,
            &checkpoint.root,
        )
        .map_err(ReceiptError::Proof)?;
        self.check_tlog_proof(&proof)?;
        Ok(VerifiedReceipt {
            checkpoint,
            index: self.log_index,
            entry,
            leaf_hash,
        })
    }

    fn check_tlog_proof(&self, proof: &[Hash]) -> Result<(), ReceiptError> {
        let tlog = TlogProof::parse(self.tlog_proof.as_bytes())
            .map_err(|e| ReceiptError::TlogProof(e.to_string()))?;
        if tlog.index != self.log_index {
            return Err(ReceiptError::TlogProof(format!(
                "index {} but logIndex is {}",
                tlog.index, self.log_index
            )));
        }
        if tlog.hashes != proof {
            return Err(ReceiptError::TlogProof(
                "its proof hashes differ from inclusionProof".into(),
            ));
        }
        if tlog.checkpoint != self.checkpoint.as_bytes() {
            return Err(ReceiptError::TlogProof(
                "its checkpoint differs from the receipt's checkpoint".into(),
            ));
        }
        Ok(())
    }
}

/// What a receipt verified against witnesses establishes.
#[derive(Debug, Clone)]
pub struct WitnessedReceipt {
    /// Everything [`Receipt::verify`] establishes.
    pub receipt: VerifiedReceipt,
    /// The distinct known witnesses whose cosignature verified, with their timestamps.
    pub cosigners: Vec<VerifiedSignature>,
}

impl Receipt {
    /// [`Receipt::verify`], then requires cosignatures on the checkpoint from at least
    /// `quorum` distinct witnesses among `witnesses` (type 0x04 keys).
    ///
    /// As C2SP requires, signature lines from unknown keys are ignored; a line from a
    /// known witness that does not verify is an error ([`ReceiptError::Cosignature`]),
    /// not merely uncounted. Witnesses are counted by public key, so one key listed
    /// under two names counts once (the cosignature message does not bind the name).
    pub fn verify_with_witnesses(
        &self,
        log_key: &Verifier,
        witnesses: &[Verifier],
        quorum: usize,
    ) -> Result<WitnessedReceipt, ReceiptError> {
        if let Some(bad) = witnesses
            .iter()
            .find(|w| w.key_type() != KeyType::CosignatureV1)
        {
            return Err(ReceiptError::WitnessKey(bad.short_id()));
        }
        let receipt = self.verify(log_key)?;
        let note = Note::parse(self.checkpoint.as_bytes()).map_err(ReceiptError::Checkpoint)?;
        let verified = match note.verify(witnesses) {
            Ok(verified) => verified,
            Err(NoteError::NoVerifiedSignature) => Vec::new(),
            Err(e) => return Err(ReceiptError::Cosignature(e)),
        };
        let mut cosigners: Vec<VerifiedSignature> = Vec::new();
        for signature in verified {
            let key = signature.verifier.public_key();
            if !cosigners.iter().any(|c| c.verifier.public_key() == key) {
                cosigners.push(signature);
            }
        }
        if cosigners.len() < quorum {
            return Err(ReceiptError::Quorum {
                got: cosigners.len(),
                needed: quorum,
            });
        }
        Ok(WitnessedReceipt { receipt, cosigners })
    }
}

fn decode_hash(field: &'static str, text: &str) -> Result<Hash, ReceiptError> {
    let bytes = hex::decode(text).map_err(|e| ReceiptError::Encoding {
        field,
        reason: format!("{text:?} is not hex: {e}"),
    })?;
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(ReceiptError::Encoding {
            field,
            reason: format!("{text:?} is not lowercase hex"),
        });
    }
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| ReceiptError::Encoding {
            field,
            reason: format!("hash is {} bytes, not 32", b.len()),
        })
}
