//! DSSE v1 envelopes (secure-systems-lab/dsse `envelope.md`, `protocol.md`): the
//! pre-authentication encoding, signing and base64 handling.
//!
//! Input accepts standard and URL-safe base64, padded or not (but never a mix of the two
//! alphabets, and never non-zero trailing bits); output is always standard, padded.
//!
//! May import `note` (to sign); nothing of `catalog`.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::note::Signer;

/// The DSSE `payloadType` of every catalog request.
pub const PAYLOAD_TYPE: &str = "application/vnd.srcos.catalog.v1+json";

/// The most signatures an envelope may carry.
pub const MAX_SIGNATURES: usize = 8;

/// DSSE pre-authentication encoding:
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII decimal.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let t = payload_type.as_bytes();
    let mut out = Vec::with_capacity(32 + t.len() + payload.len());
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(t.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(t);
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

const INDIFFERENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD_IN: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, INDIFFERENT);
const URL_SAFE_IN: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, INDIFFERENT);

/// Decodes standard or URL-safe base64, padded or unpadded. `None` for anything else.
pub fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let url_safe = s.bytes().any(|b| b == b'-' || b == b'_');
    let engine = if url_safe { &URL_SAFE_IN } else { &STANDARD_IN };
    engine.decode(s).ok()
}

/// Encodes as standard, padded base64 (the only form the catalog emits).
pub fn encode_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

mod b64 {
    use super::*;

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        // Written straight into the output (serde_json escapes it as it goes, and base64
        // needs no escaping): no intermediate String per signature and payload.
        s.collect_str(&base64::display::Base64Display::new(bytes, &STANDARD))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_str(Base64Visitor)
    }

    /// Decodes the string where it lies (borrowed from the input when it has no escapes),
    /// not from a copy: the same strings accepted and the same errors as
    /// `String::deserialize` then [`decode_base64`].
    struct Base64Visitor;

    impl serde::de::Visitor<'_> for Base64Visitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string")
        }

        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Vec<u8>, E> {
            decode_base64(s).ok_or_else(|| E::custom("invalid base64"))
        }
    }
}

/// One DSSE signature: `keyid` is the signer's signed-note short id (`name+hex8`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeSignature {
    /// The signer's `name+hex8`; used only to find the key, never trusted by itself.
    pub keyid: String,
    /// The raw signature (64 bytes for Ed25519); base64 on the wire.
    #[serde(with = "b64")]
    pub sig: Vec<u8>,
}

/// A DSSE envelope `{"payloadType", "payload", "signatures": [{"keyid", "sig"}]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Envelope {
    /// The exact payload bytes that were signed; base64 on the wire.
    #[serde(with = "b64")]
    pub payload: Vec<u8>,
    /// The payload's media type; for catalog requests always [`PAYLOAD_TYPE`].
    pub payload_type: String,
    /// The signatures over `pae(payload_type, payload)`.
    pub signatures: Vec<EnvelopeSignature>,
}

impl Envelope {
    /// An unsigned envelope for `payload` with the given type.
    pub fn new(payload_type: &str, payload: &[u8]) -> Envelope {
        Envelope {
            payload_type: payload_type.to_string(),
            payload: payload.to_vec(),
            signatures: Vec::new(),
        }
    }

    /// The pre-authentication encoding every signature covers.
    pub fn pae(&self) -> Vec<u8> {
        pae(&self.payload_type, &self.payload)
    }

    /// Appends a signature by `signer` (keyid = its `name+hex8`).
    pub fn add_signature(&mut self, signer: &Signer) {
        let sig = signer.sign_bytes(&self.pae());
        self.signatures.push(EnvelopeSignature {
            keyid: signer.verifier().short_id(),
            sig: sig.to_vec(),
        });
    }

    /// The envelope as JSON (RFC 8785 canonical, standard padded base64), ready to POST.
    pub fn to_json(&self) -> String {
        // Serializing strings and byte vectors cannot fail; fall back to plain serde_json
        // rather than panicking.
        serde_jcs::to_string(self)
            .or_else(|_| serde_json::to_string(self))
            .unwrap_or_default()
    }
}

/// Client side: wraps `payload` in a catalog envelope ([`PAYLOAD_TYPE`]) signed by `signer`.
pub fn sign_envelope(payload: &[u8], signer: &Signer) -> Envelope {
    let mut env = Envelope::new(PAYLOAD_TYPE, payload);
    env.add_signature(signer);
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_vector() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ".to_vec());
    }

    #[test]
    fn base64_forms() {
        let bytes = [0xfbu8, 0xff, 0xfe, 0x01];
        assert_eq!(decode_base64("+//+AQ==").as_deref(), Some(&bytes[..]));
        assert_eq!(decode_base64("+//+AQ").as_deref(), Some(&bytes[..]));
        assert_eq!(decode_base64("-__-AQ==").as_deref(), Some(&bytes[..]));
        assert_eq!(decode_base64("-__-AQ").as_deref(), Some(&bytes[..]));
        assert_eq!(decode_base64("+_/-AQ=="), None); // mixed alphabets
        assert_eq!(decode_base64("AR=="), None); // non-zero trailing bits
        assert_eq!(decode_base64("AQ= ="), None);
        assert_eq!(encode_base64(&bytes), "+//+AQ==");
    }
}
