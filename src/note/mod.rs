//! Signed notes, checkpoints, cosignatures and tlog-proofs (pure, no I/O).
//!
//! Implements, byte for byte, the text formats of:
//!
//! * C2SP signed-note v1.0.0 (as implemented by Go `golang.org/x/mod/sumdb/note`):
//!   [`Note`], [`NoteSignature`], key strings ([`Signer`], [`Verifier`]).
//! * C2SP tlog-checkpoint v1.0.0: [`Checkpoint`], [`open_checkpoint`].
//! * C2SP tlog-cosignature v1.0.1 (Ed25519, type 0x04): [`cosign`],
//!   [`verify_cosignature`].
//! * C2SP tlog-proof (`c2sp.org/tlog-proof@v1`): [`TlogProof`].
//! * C2SP tlog-witness `add-checkpoint` bodies (the request and the 409 size body):
//!   [`AddCheckpoint`], [`tlog_size_body`], [`parse_tlog_size_body`]; shared by the
//!   witness server and the log's witness client.
//!
//! The normative description of what we emit and accept is
//! `log-format/note.md`. Every parser here is total: it returns an error
//! for any input and never panics.
//!
//! A sealed, pure core: it may import only std and its codec crates (base64,
//! ed25519, sha2); nothing else in this crate. Everything it offers is re-exported
//! below; the sub-modules are private.

mod add_checkpoint;
pub mod batch;
mod checkpoint;
mod cosignature;
mod encoding;
mod error;
mod key;
mod signature;
mod signed;
mod tlog_proof;

pub use add_checkpoint::{
    parse_tlog_size_body, tlog_size_body, AddCheckpoint, AddCheckpointError, TLOG_SIZE_MEDIA_TYPE,
};
pub use checkpoint::{open_checkpoint, Checkpoint};
pub use cosignature::{cosign, cosignature_message, verify_cosignature, COSIGNATURE_V1_LEN};
pub use error::NoteError;
pub use key::{key_id, KeyType, Signer, Verifier};
pub use signature::NoteSignature;
pub use signed::{Note, VerifiedSignature};
pub use tlog_proof::{TlogProof, MAX_PROOF_HASHES, TLOG_PROOF_HEADER};

/// Largest note (or tlog-proof) we parse, in bytes; larger input is
/// [`NoteError::TooLarge`] before any other work is done.
pub const MAX_NOTE_SIZE: usize = 1 << 20;

/// Most signature lines in one note (Go x/mod uses the same cap; the spec
/// requires accepting at least 16). More is [`NoteError::TooManySignatures`].
pub const MAX_SIGNATURES: usize = 100;
