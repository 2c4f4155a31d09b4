//! C2SP tlog-cosignature v1 (tag tlog-cosignature/v1.0.1), Ed25519 only.
//!
//! A cosignature is an ordinary note signature line from a key of type 0x04:
//!
//! ```text
//! — <cosigner name> base64(key ID[4] || timestamp[8, big-endian] || Ed25519 signature[64])
//! ```
//!
//! The signed message is exactly
//! `"cosignature/v1\ntime " || decimal(timestamp) || "\n" || note text`.
//! Binding the timestamp in the message (and the type byte 0x04 in the key
//! ID) keeps a cosignature from ever being mistaken for a plain 0x01 note
//! signature by the same Ed25519 key, and lets the witness state "as of time
//! t, this is the largest consistent tree I have seen for this origin".

use super::key::{KeyType, Signer, Verifier};
use super::signature::{check_text, NoteSignature};
use super::NoteError;

/// Length of an Ed25519 timestamped signature: 8-byte time + 64-byte signature.
pub const COSIGNATURE_V1_LEN: usize = 72;

/// Largest timestamp the spec allows (2^63 - 1).
const MAX_TIMESTAMP: u64 = i64::MAX as u64;

/// The exact bytes a tlog-cosignature/v1 Ed25519 key signs.
pub fn cosignature_message(note_text: &str, timestamp: u64) -> Vec<u8> {
    let mut msg = format!("cosignature/v1\ntime {timestamp}\n").into_bytes();
    msg.extend_from_slice(note_text.as_bytes());
    msg
}

/// Produce a tlog-cosignature/v1 signature line over `note_text` (normally a
/// checkpoint body, including its extension lines and final `\n`).
///
/// The signer must be [`KeyType::CosignatureV1`]; the timestamp (POSIX
/// seconds) must be at most 2^63-1; the text must be a valid note text.
pub fn cosign(
    note_text: &str,
    signer: &Signer,
    timestamp: u64,
) -> Result<NoteSignature, NoteError> {
    if signer.key_type() != KeyType::CosignatureV1 {
        return Err(NoteError::WrongKeyType {
            expected: KeyType::CosignatureV1,
            got: signer.key_type(),
        });
    }
    if timestamp > MAX_TIMESTAMP {
        return Err(NoteError::TimestampOutOfRange(timestamp));
    }
    check_text(note_text)?;
    let sig = signer.sign_bytes(&cosignature_message(note_text, timestamp));
    let mut bytes = Vec::with_capacity(COSIGNATURE_V1_LEN);
    bytes.extend_from_slice(&timestamp.to_be_bytes());
    bytes.extend_from_slice(&sig);
    Ok(NoteSignature {
        name: signer.name().to_owned(),
        key_id: signer.key_id(),
        signature: bytes,
    })
}

/// Verify one cosignature line against a type 0x04 verifier and return its
/// timestamp.
///
/// Errors: [`NoteError::WrongKeyType`] if the verifier is not 0x04;
/// [`NoteError::KeyIdMismatch`] if the line's (name, key ID) is not the
/// verifier's; [`NoteError::BadSignatureLength`] unless the signature is 72
/// bytes; [`NoteError::TimestampOutOfRange`]; [`NoteError::InvalidSignature`]
/// if the Ed25519 check fails. Future timestamps are not rejected here: the
/// caller owns the clock.
pub fn verify_cosignature(
    note_text: &str,
    sig: &NoteSignature,
    verifier: &Verifier,
) -> Result<u64, NoteError> {
    if verifier.key_type() != KeyType::CosignatureV1 {
        return Err(NoteError::WrongKeyType {
            expected: KeyType::CosignatureV1,
            got: verifier.key_type(),
        });
    }
    if sig.name != verifier.name() || sig.key_id != verifier.key_id() {
        return Err(NoteError::KeyIdMismatch {
            name: sig.name.clone(),
            found: sig.key_id,
            computed: verifier.key_id(),
        });
    }
    let Some((ts, ed_sig)) = sig
        .signature
        .split_first_chunk::<8>()
        .filter(|_| sig.signature.len() == COSIGNATURE_V1_LEN)
    else {
        return Err(NoteError::BadSignatureLength {
            name: sig.name.clone(),
            expected: COSIGNATURE_V1_LEN,
            got: sig.signature.len(),
        });
    };
    let timestamp = u64::from_be_bytes(*ts);
    if timestamp > MAX_TIMESTAMP {
        return Err(NoteError::TimestampOutOfRange(timestamp));
    }
    if !verifier.verify_bytes(&cosignature_message(note_text, timestamp), ed_sig) {
        return Err(NoteError::InvalidSignature {
            name: sig.name.clone(),
        });
    }
    Ok(timestamp)
}
