//! Signer and verifier keys and their string formats.
//!
//! Formats (C2SP signed-note v1.0.0 and Go `golang.org/x/mod/sumdb/note`):
//!
//! * verifier key ("vkey"): `<name>+<hex8 key ID>+base64(type || 32-byte public key)`
//! * private key: `PRIVATE+KEY+<name>+<hex8 key ID>+base64(type || 32-byte Ed25519 seed)`
//!
//! where the key ID is `SHA-256(name || "\n" || type || public key)[:4]`
//! read big-endian. The same shapes are used for type 0x01 (plain Ed25519
//! note signatures) and type 0x04 (tlog-cosignature/v1, as in
//! transparency-dev/formats); only the type byte differs, and because it
//! is hashed into the key ID the same Ed25519 key has different IDs under
//! the two types.
//!
//! May import only its siblings in `note` and the ed25519/sha2 crates.

use std::fmt;

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::encoding::{check_name, decode_b64, encode_b64};
use super::NoteError;

/// The signature types this module implements (C2SP signed-note type bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// 0x01: Ed25519 (RFC 8032) over the note text.
    Ed25519,
    /// 0x04: timestamped Ed25519 cosignature (C2SP tlog-cosignature v1).
    CosignatureV1,
}

impl KeyType {
    /// The signature-type byte that identifies this type in key strings and
    /// key IDs.
    pub fn byte(self) -> u8 {
        match self {
            KeyType::Ed25519 => 0x01,
            KeyType::CosignatureV1 => 0x04,
        }
    }

    /// Map a signature-type byte back to a type; anything else is
    /// [`NoteError::UnsupportedKeyType`].
    pub fn from_byte(b: u8) -> Result<KeyType, NoteError> {
        match b {
            0x01 => Ok(KeyType::Ed25519),
            0x04 => Ok(KeyType::CosignatureV1),
            other => Err(NoteError::UnsupportedKeyType(other)),
        }
    }
}

/// Compute a key ID: the first four bytes, big-endian, of
/// `SHA-256(name || "\n" || type byte || public key)`.
pub fn key_id(name: &str, key_type: KeyType, public_key: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([key_type.byte()]);
    h.update(public_key);
    let digest = h.finalize();
    let mut id = [0u8; 4];
    id.iter_mut().zip(digest.iter()).for_each(|(o, i)| *o = *i);
    u32::from_be_bytes(id)
}

/// Parse the `<hex8>` key-ID field: exactly eight lowercase hex digits.
/// (Go also accepts upper case; we only ever emit lower case and accept
/// only that, so each key has a single spelling.) The field is not echoed
/// in the error: in a mangled private key it could be part of the seed.
fn parse_hex8(s: &str) -> Result<u32, NoteError> {
    let bad = || NoteError::BadKeyString("key ID is not 8 lowercase hex digits".to_owned());
    if s.len() != 8 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(bad());
    }
    u32::from_str_radix(s, 16).map_err(|_| bad())
}

/// Split `<name>+<hex8>+<base64>` (the common tail of both key strings),
/// check the name, decode the type byte and the 32 key bytes.
fn parse_key_tail(s: &str, what: &str) -> Result<(String, u32, KeyType, [u8; 32]), NoteError> {
    // Base64 uses '+', so only the first two '+' are separators (as Go's
    // two `chop` calls do).
    let mut parts = s.splitn(3, '+');
    let (Some(name), Some(hex8), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(NoteError::BadKeyString(format!(
            "{what} must have the form <name>+<hex8>+<base64>"
        )));
    };
    check_name(name)?;
    let id = parse_hex8(hex8)?;
    let raw = decode_b64(b64, "key")?;
    let (&type_byte, key) = raw
        .split_first()
        .ok_or_else(|| NoteError::BadKeyString(format!("{what} has an empty key")))?;
    let key_type = KeyType::from_byte(type_byte)?;
    let key: [u8; 32] = key.try_into().map_err(|_| {
        NoteError::BadKeyString(format!("{what} key is {} bytes, expected 32", key.len()))
    })?;
    Ok((name.to_owned(), id, key_type, key))
}

/// A private key that signs notes (type 0x01) or cosignatures (type 0x04).
///
/// The seed lives inside an `ed25519_dalek::SigningKey`, which zeroizes it
/// on drop. `Debug` is implemented by hand and never prints it.
#[derive(Clone)]
pub struct Signer {
    name: String,
    key_type: KeyType,
    key_id: u32,
    key: SigningKey,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("name", &self.name)
            .field("key_type", &self.key_type)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .field("seed", &"<redacted>")
            .finish()
    }
}

impl Signer {
    /// Generate a fresh key from the operating system's CSPRNG.
    /// The name must be non-empty, without white space, `+` or control characters.
    pub fn generate(name: &str, key_type: KeyType) -> Result<Signer, NoteError> {
        check_name(name)?;
        let key = SigningKey::generate(&mut rand_core::OsRng);
        Ok(Signer::from_parts(name, key_type, key))
    }

    /// Build a signer from a known 32-byte Ed25519 seed (deterministic keys
    /// for tests and for key material loaded by the caller).
    pub fn from_seed(name: &str, key_type: KeyType, seed: &[u8; 32]) -> Result<Signer, NoteError> {
        check_name(name)?;
        Ok(Signer::from_parts(
            name,
            key_type,
            SigningKey::from_bytes(seed),
        ))
    }

    fn from_parts(name: &str, key_type: KeyType, key: SigningKey) -> Signer {
        let public = key.verifying_key().to_bytes();
        Signer {
            name: name.to_owned(),
            key_type,
            key_id: key_id(name, key_type, &public),
            key,
        }
    }

    /// Parse `PRIVATE+KEY+<name>+<hex8>+base64(type || 32-byte seed)` (Go
    /// x/mod format; transparency-dev uses the same shape with type 0x04).
    /// The key ID is recomputed from the derived public key and must match.
    ///
    /// Error messages never include the seed.
    pub fn from_private_key_string(s: &str) -> Result<Signer, NoteError> {
        let rest = s.strip_prefix("PRIVATE+KEY+").ok_or_else(|| {
            NoteError::BadKeyString("private key must start with PRIVATE+KEY+".to_owned())
        })?;
        let (name, found, key_type, seed) = parse_key_tail(rest, "private key")?;
        let signer = Signer::from_seed(&name, key_type, &seed)?;
        if signer.key_id != found {
            return Err(NoteError::KeyIdMismatch {
                name,
                found,
                computed: signer.key_id,
            });
        }
        Ok(signer)
    }

    /// Format as `PRIVATE+KEY+<name>+<hex8>+base64(type || seed)`.
    /// The result is secret: do not log it.
    pub fn to_private_key_string(&self) -> String {
        let mut raw = Vec::with_capacity(33);
        raw.push(self.key_type.byte());
        raw.extend_from_slice(self.key.as_bytes());
        let s = format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.key_id,
            encode_b64(&raw)
        );
        // Best effort: the temporary copy of the seed is overwritten before
        // it is freed (the String itself is the caller's responsibility).
        raw.iter_mut().for_each(|b| *b = 0);
        std::hint::black_box(&raw);
        s
    }

    /// The matching public verifier.
    pub fn verifier(&self) -> Verifier {
        Verifier {
            name: self.name.clone(),
            key_type: self.key_type,
            key_id: self.key_id,
            public_key: self.key.verifying_key().to_bytes(),
            key: self.key.verifying_key(),
        }
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID (depends on name, type and public key).
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The signature type this key produces.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// Raw Ed25519 signature over arbitrary bytes (used for DSSE envelopes,
    /// not for notes: note signatures go through `Note::new_signed` or `cosign`).
    pub fn sign_bytes(&self, msg: &[u8]) -> [u8; 64] {
        self.key.sign(msg).to_bytes()
    }
}

/// A public key that verifies note signatures (type 0x01) or cosignatures
/// (type 0x04).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    key_type: KeyType,
    key_id: u32,
    public_key: [u8; 32],
    key: VerifyingKey,
}

impl Verifier {
    /// Parse `<name>+<hex8>+base64(type || 32-byte public key)`. Strict:
    /// eight lowercase hex digits, key ID must match, type 0x01 or 0x04,
    /// exactly 32 key bytes that decode to an Ed25519 point.
    pub fn from_vkey(s: &str) -> Result<Verifier, NoteError> {
        let (name, found, key_type, public_key) = parse_key_tail(s, "verifier key")?;
        let computed = key_id(&name, key_type, &public_key);
        if computed != found {
            return Err(NoteError::KeyIdMismatch {
                name,
                found,
                computed,
            });
        }
        let key = VerifyingKey::from_bytes(&public_key).map_err(|_| {
            NoteError::BadKeyString("public key is not a valid Ed25519 point".to_owned())
        })?;
        Ok(Verifier {
            name,
            key_type,
            key_id: computed,
            public_key,
            key,
        })
    }

    /// Format as `<name>+<hex8>+base64(type || public key)`.
    pub fn to_vkey(&self) -> String {
        let mut raw = Vec::with_capacity(33);
        raw.push(self.key_type.byte());
        raw.extend_from_slice(&self.public_key);
        format!("{}+{}", self.short_id(), encode_b64(&raw))
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The signature type this key verifies.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The Ed25519 key, for batch verification (`note::batch`).
    pub(crate) fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// The raw 32-byte Ed25519 public key.
    pub fn public_key(&self) -> &[u8; 32] {
        &self.public_key
    }

    /// `<name>+<hex8>`: the short identity used as DSSE keyid.
    pub fn short_id(&self) -> String {
        format!("{}+{:08x}", self.name, self.key_id)
    }

    /// Raw Ed25519 check over arbitrary bytes, using strict verification
    /// (rejects non-canonical and small-order encodings). Any length other
    /// than 64 bytes is simply a failed check.
    pub fn verify_bytes(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Ok(sig) = <&[u8; 64]>::try_from(sig) else {
            return false;
        };
        self.key
            .verify_strict(msg, &Signature::from_bytes(sig))
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_types() {
        for (byte, key_type) in [
            (0x01, Some(KeyType::Ed25519)),
            (0x04, Some(KeyType::CosignatureV1)),
            (0x00, None),
            (0x02, None),
            (0x03, None),
            (0xff, None),
        ] {
            assert_eq!(KeyType::from_byte(byte).ok(), key_type, "{byte:#04x}");
            if let Some(key_type) = key_type {
                assert_eq!(key_type.byte(), byte);
            }
        }
    }

    #[test]
    fn key_id_fields() {
        let cases = [
            ("0000abcd", Some(0xabcd)),
            ("ffffffff", Some(u32::MAX)),
            ("00000000", Some(0)),
            ("0000ABCD", None),
            ("abc", None),
            ("0000abcde", None),
            ("+000abcd", None),
            ("ghijklmn", None),
            ("", None),
        ];
        for (text, id) in cases {
            assert_eq!(parse_hex8(text).ok(), id, "{text:?}");
        }
    }

    #[test]
    fn verifier_keys() {
        let vkey = Signer::from_seed("log", KeyType::Ed25519, &[3; 32])
            .map(|s| s.verifier().to_vkey())
            .expect("test key");
        assert_eq!(
            Verifier::from_vkey(&vkey).map(|v| v.to_vkey()),
            Ok(vkey.clone())
        );
        let (name_and_id, key) = vkey.rsplit_once('+').expect("three fields");
        let (name, id) = name_and_id.split_once('+').expect("three fields");
        let wrong_id = if id == "00000000" {
            "00000001"
        } else {
            "00000000"
        };
        let bad = [
            format!("other+{id}+{key}"),
            format!("{name}+{wrong_id}+{key}"),
            format!("{name}+{}+{key}", id.to_uppercase()),
            format!("{name}+{id}"),
            format!("{name}+{id}+"),
            format!("{name}+{id}+{}", &key[4..]),
            format!("na me+{id}+{key}"),
        ];
        for text in bad {
            assert!(Verifier::from_vkey(&text).is_err(), "{text:?}");
        }
    }
}
