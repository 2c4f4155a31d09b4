//! The blob upload intent (`log-format/blobs.md`): a DSSE envelope of payload type
//! [`BLOB_INTENT_PAYLOAD_TYPE`] whose payload says "key K uploads the blob with this
//! SHA-256 and size to the log with this origin, between `issuedAt` and `expiresAt`".
//! Parsed and checked here on its own (shape, digest, size, origin, time window); the
//! signature against the key directory is [`BlobIntent::verify`]; whether the signer may
//! upload (a grant, no revocation) is decided by the caller against the catalog state.
//!
//! The payload type differs from the catalog requests' so that an intent can never be
//! submitted as a request, nor a request presented as an intent.
//!
//! May import, in `wire`: `dsse`, `time`, `validate`, `submission` (the key directory).

use serde::{Deserialize, Serialize};

use super::dsse::{Envelope, MAX_SIGNATURES};
use super::submission::KeyDirectory;
use super::time::{format_rfc3339_ms, parse_rfc3339_ms};
use super::validate::check_sha256;
use crate::note::{Signer, Verifier};

/// The DSSE payload type of an upload intent.
pub const BLOB_INTENT_PAYLOAD_TYPE: &str = "application/vnd.srcos.blob-intent.v1+json";
/// The `kind` member of an upload intent.
pub const BLOB_INTENT_KIND: &str = "BlobUploadIntent";
/// The HTTP header that carries the intent: the envelope's JSON, standard base64.
pub const BLOB_INTENT_HEADER: &str = "blob-intent";
/// Longest validity window (`expiresAt - issuedAt`): 15 minutes.
pub const MAX_INTENT_WINDOW_MS: u64 = 15 * 60 * 1000;
/// Tolerated clock skew: an intent issued up to 5 minutes in the future is accepted.
pub const MAX_CLOCK_SKEW_MS: u64 = 5 * 60 * 1000;
/// Largest encoded intent header accepted, in bytes.
pub const MAX_INTENT_BYTES: usize = 8 * 1024;

/// The signed payload (members in RFC 8785 order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BlobIntent {
    /// Always `catalog.srcos.ai/v1`.
    pub api_version: String,
    /// `{"sha256": "<64 hex>"}`: the blob the key vouches for.
    pub digest: IntentDigest,
    /// End of validity (RFC 3339, milliseconds, UTC).
    pub expires_at: String,
    /// Start of validity (RFC 3339, milliseconds, UTC).
    pub issued_at: String,
    /// Always [`BLOB_INTENT_KIND`].
    pub kind: String,
    /// 16 to 64 lowercase hex characters chosen at random by the client.
    pub nonce: String,
    /// The origin of the log the blob is meant for.
    pub origin: String,
    /// The exact size of the blob, in bytes.
    pub size: u64,
}

/// The digest member of an intent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntentDigest {
    /// 64 lowercase hex.
    pub sha256: String,
}

/// Why an intent is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IntentError {
    /// No intent was sent (401).
    #[error("blob uploads need a signed upload intent in the Blob-Intent header")]
    Missing,
    /// The header, envelope or payload is malformed (400).
    #[error("malformed upload intent: {0}")]
    Malformed(String),
    /// The intent does not match this upload or this log, or is outside its window (401).
    #[error("upload intent refused: {0}")]
    Mismatch(String),
    /// No signature verifies by a key the authority knows (401).
    #[error("upload intent refused: {0}")]
    Unsigned(String),
}

impl BlobIntent {
    /// A fresh intent for `size` bytes hashing to `sha256_hex`, valid for `valid_ms` from
    /// `now_ms` (clamped to [`MAX_INTENT_WINDOW_MS`]); `nonce` is hex.
    pub fn new(origin: &str, sha256_hex: &str, size: u64, now_ms: u64, nonce: &str) -> BlobIntent {
        BlobIntent {
            api_version: "catalog.srcos.ai/v1".into(),
            digest: IntentDigest {
                sha256: sha256_hex.into(),
            },
            expires_at: format_rfc3339_ms(now_ms.saturating_add(MAX_INTENT_WINDOW_MS))
                .unwrap_or_default(),
            issued_at: format_rfc3339_ms(now_ms).unwrap_or_default(),
            kind: BLOB_INTENT_KIND.into(),
            nonce: nonce.into(),
            origin: origin.into(),
            size,
        }
    }

    /// The intent signed by `signer`, as the header value (base64 of the envelope JSON).
    pub fn sign_header(&self, signer: &Signer) -> String {
        let payload = serde_jcs::to_vec(self).unwrap_or_default();
        let mut envelope = Envelope::new(BLOB_INTENT_PAYLOAD_TYPE, &payload);
        envelope.add_signature(signer);
        super::dsse::encode_base64(envelope.to_json().as_bytes())
    }

    /// Parses a header value into the envelope and its payload; checks the shape only.
    pub fn parse_header(value: &str) -> Result<(Envelope, BlobIntent), IntentError> {
        let bad = |m: String| IntentError::Malformed(m);
        if value.len() > MAX_INTENT_BYTES {
            return Err(bad(format!("over {MAX_INTENT_BYTES} bytes")));
        }
        let json = super::dsse::decode_base64(value.trim())
            .ok_or_else(|| bad("the header is not standard base64".into()))?;
        let envelope: Envelope =
            serde_json::from_slice(&json).map_err(|e| bad(format!("envelope: {e}")))?;
        if envelope.payload_type != BLOB_INTENT_PAYLOAD_TYPE {
            return Err(bad(format!(
                "payloadType must be {BLOB_INTENT_PAYLOAD_TYPE}"
            )));
        }
        if envelope.signatures.is_empty() || envelope.signatures.len() > MAX_SIGNATURES {
            return Err(bad(format!("1 to {MAX_SIGNATURES} signatures are needed")));
        }
        let intent: BlobIntent =
            serde_json::from_slice(&envelope.payload).map_err(|e| bad(format!("payload: {e}")))?;
        if intent.api_version != "catalog.srcos.ai/v1" || intent.kind != BLOB_INTENT_KIND {
            return Err(bad(format!(
                "apiVersion/kind must be catalog.srcos.ai/v1 {BLOB_INTENT_KIND}"
            )));
        }
        check_sha256(&intent.digest.sha256).map_err(|e| bad(format!("/digest/sha256: {e}")))?;
        let nonce_ok = (16..=64).contains(&intent.nonce.len())
            && intent
                .nonce
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !nonce_ok {
            return Err(bad("/nonce must be 16 to 64 lowercase hex".into()));
        }
        Ok((envelope, intent))
    }

    /// Checks that the intent names this upload (`sha256_hex`, and `size` when the length
    /// is known), this log (`origin`), and that `now_ms` is inside its window.
    pub fn check(
        &self,
        origin: &str,
        sha256_hex: &str,
        size: Option<u64>,
        now_ms: u64,
    ) -> Result<(), IntentError> {
        let no = |m: String| Err(IntentError::Mismatch(m));
        if self.origin != origin {
            return no(format!("it is for log {:?}, not {origin:?}", self.origin));
        }
        if self.digest.sha256 != sha256_hex {
            return no(format!("it names sha256:{}", self.digest.sha256));
        }
        if let Some(size) = size.filter(|s| *s != self.size) {
            return no(format!(
                "it names {} bytes, the upload is {size}",
                self.size
            ));
        }
        let (Some(issued), Some(expires)) = (
            parse_rfc3339_ms(&self.issued_at),
            parse_rfc3339_ms(&self.expires_at),
        ) else {
            return no("issuedAt/expiresAt are not RFC 3339 UTC times".into());
        };
        if expires <= issued || expires - issued > MAX_INTENT_WINDOW_MS {
            return no(format!(
                "expiresAt must follow issuedAt by at most {MAX_INTENT_WINDOW_MS} ms"
            ));
        }
        if issued > now_ms.saturating_add(MAX_CLOCK_SKEW_MS) {
            return no(format!("issuedAt {} is in the future", self.issued_at));
        }
        if now_ms >= expires {
            return no(format!("it expired at {}", self.expires_at));
        }
        Ok(())
    }

    /// The keys in `keys` whose signature over the envelope verifies, in envelope order.
    pub fn verify(envelope: &Envelope, keys: &KeyDirectory) -> Result<Vec<Verifier>, IntentError> {
        let pae = envelope.pae();
        let signers: Vec<Verifier> = envelope
            .signatures
            .iter()
            .filter_map(|s| keys.get(&s.keyid).filter(|k| k.verify_bytes(&pae, &s.sig)))
            .cloned()
            .collect();
        if signers.is_empty() {
            return Err(IntentError::Unsigned(
                "no signature verifies by a key this authority knows".into(),
            ));
        }
        Ok(signers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::KeyType;

    const HEX: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    const NOW: u64 = 1_700_000_000_000;

    #[test]
    fn intents_round_trip_and_are_checked() {
        let signer = Signer::from_seed("pub", KeyType::Ed25519, &[7; 32]).unwrap();
        let intent = BlobIntent::new(
            "log.example",
            HEX,
            5,
            NOW,
            "00112233445566778899aabbccddeeff",
        );
        let header = intent.sign_header(&signer);
        let (env, parsed) = BlobIntent::parse_header(&header).unwrap();
        assert_eq!(parsed, intent);
        let keys = KeyDirectory::from_verifiers([signer.verifier()]);
        assert_eq!(
            BlobIntent::verify(&env, &keys).unwrap(),
            vec![signer.verifier()]
        );
        assert!(BlobIntent::verify(&env, &KeyDirectory::default()).is_err());
        let cases: &[(&str, &str, Option<u64>, u64, bool)] = &[
            ("log.example", HEX, Some(5), NOW, true),
            ("log.example", HEX, None, NOW + 1000, true),
            ("other.log", HEX, Some(5), NOW, false),
            ("log.example", &HEX[..63], Some(5), NOW, false),
            ("log.example", HEX, Some(6), NOW, false),
            (
                "log.example",
                HEX,
                Some(5),
                NOW + MAX_INTENT_WINDOW_MS,
                false,
            ),
            (
                "log.example",
                HEX,
                Some(5),
                NOW - MAX_CLOCK_SKEW_MS - 1,
                false,
            ),
        ];
        for (origin, hex, size, now, ok) in cases {
            assert_eq!(
                parsed.check(origin, hex, *size, *now).is_ok(),
                *ok,
                "{origin} {hex} {size:?} {now}"
            );
        }
    }

    #[test]
    fn malformed_headers_are_refused() {
        assert!(BlobIntent::parse_header("not base64!").is_err());
        let signer = Signer::from_seed("pub", KeyType::Ed25519, &[7; 32]).unwrap();
        let env = crate::catalog::sign_envelope(b"{}", &signer);
        let as_request = super::super::dsse::encode_base64(env.to_json().as_bytes());
        assert!(BlobIntent::parse_header(&as_request).is_err());
        let short_nonce = BlobIntent::new("o", HEX, 1, NOW, "abc");
        let header = short_nonce.sign_header(&signer);
        assert!(BlobIntent::parse_header(&header).is_err());
    }
}
