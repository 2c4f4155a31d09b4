//! The single error type of the note module.
//!
//! Every variant carries enough context for a command-line tool to print a
//! precise message, but never any secret material. Strings that came from
//! untrusted input are printed with `{:?}` so control characters cannot reach
//! a terminal unescaped.

use super::KeyType;

/// Everything that can go wrong while parsing, signing or verifying notes,
/// checkpoints, cosignatures, keys and tlog-proofs.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoteError {
    /// The input is larger than the accepted maximum (checked before anything else).
    #[error("input is {size} bytes, larger than the {max}-byte limit")]
    TooLarge {
        /// Size of the rejected input in bytes.
        size: usize,
        /// The limit that was exceeded.
        max: usize,
    },

    /// A note carries more than [`super::MAX_SIGNATURES`] signature lines.
    #[error("note has more than {} signatures", super::MAX_SIGNATURES)]
    TooManySignatures,

    /// The input is not valid UTF-8.
    #[error("note is not valid UTF-8")]
    NotUtf8,

    /// The input contains an ASCII control character other than newline.
    #[error("control character 0x{byte:02x} at byte offset {offset}")]
    ControlCharacter {
        /// Byte offset of the offending character.
        offset: usize,
        /// The offending byte (always < 0x20).
        byte: u8,
    },

    /// The signed-note framing is broken (missing blank line, bad signature
    /// line prefix, text not ending in a newline, ...).
    #[error("malformed note: {0}")]
    Malformed(String),

    /// A base64 field is not canonical, padded, standard (RFC 4648 §4) base64.
    #[error("invalid base64 in {field}")]
    BadBase64 {
        /// Which field failed to decode ("signature", "root hash", ...).
        field: &'static str,
    },

    /// A key or signer name is empty, contains white space, `+` or a control character.
    #[error("invalid key name {0:?}")]
    BadKeyName(String),

    /// A verifier key or private key string does not have the expected shape.
    #[error("invalid key string: {0}")]
    BadKeyString(String),

    /// The key ID written in a key string is not the one computed from the key.
    #[error(
        "key ID mismatch for {name:?}: key string says {found:08x}, key hashes to {computed:08x}"
    )]
    KeyIdMismatch {
        /// The key name.
        name: String,
        /// The key ID written in the string.
        found: u32,
        /// The key ID computed from name, type and public key.
        computed: u32,
    },

    /// The signature-type byte of a key is not one we implement (0x01 or 0x04).
    #[error("unsupported key type 0x{0:02x}")]
    UnsupportedKeyType(u8),

    /// A key of one type was used where the other type is required (for
    /// example a cosignature key passed to `Note::new_signed`).
    #[error("wrong key type: expected {expected:?}, got {got:?}")]
    WrongKeyType {
        /// The type the operation needs.
        expected: KeyType,
        /// The type of the key that was supplied.
        got: KeyType,
    },

    /// A signature from a known key did not verify.
    #[error("invalid signature from known key {name:?}")]
    InvalidSignature {
        /// The name of the key whose signature failed.
        name: String,
    },

    /// A signature from a known key has the wrong length for its type.
    #[error("signature from {name:?} is {got} bytes, expected {expected}")]
    BadSignatureLength {
        /// The name of the key.
        name: String,
        /// Required length in bytes (after the 4-byte key ID).
        expected: usize,
        /// Actual length in bytes (after the 4-byte key ID).
        got: usize,
    },

    /// A cosignature timestamp is above 2^63-1 (tlog-cosignature forbids it).
    #[error("timestamp {0} is out of range (must be <= 2^63-1)")]
    TimestampOutOfRange(u64),

    /// Two different trusted keys share the same (name, key ID) pair, so a
    /// signature cannot be attributed.
    #[error("ambiguous trusted keys: several keys named {name:?} with ID {key_id:08x}")]
    AmbiguousKey {
        /// The shared name.
        name: String,
        /// The shared key ID.
        key_id: u32,
    },

    /// A signature line names a key with the same (name, key ID) pair as
    /// another one already in the note.
    #[error("duplicate signature from {name:?} ({key_id:08x})")]
    DuplicateSignature {
        /// The key name.
        name: String,
        /// The key ID.
        key_id: u32,
    },

    /// No signature from any trusted key was found and verified.
    #[error("no signature from a trusted key")]
    NoVerifiedSignature,

    /// The note text is not a valid tlog-checkpoint body.
    #[error("invalid checkpoint: {0}")]
    BadCheckpoint(String),

    /// The input is not a valid tlog-proof.
    #[error("invalid tlog-proof: {0}")]
    BadProof(String),
}
