//! The C2SP signed-note text format (signed-note v1.0.0): parse, sign, verify.
//!
//! ```text
//! <text, ending in \n>
//! <blank line>
//! — <key name> base64(key ID (4 bytes, big-endian) || signature)\n   (1..=100 lines)
//! ```
//!
//! Parsing follows Go `golang.org/x/mod/sumdb/note.Open`: size cap, UTF-8,
//! no control characters but `\n`, split at the LAST `"\n\n"` (the text may
//! itself contain blank lines; signature lines never do). Parsing is
//! separate from verification so a note can be stored, re-served and
//! extended with cosignatures without knowing every key.
//!
//! May import only its siblings in `note` (codecs, keys, cosignatures).

use super::cosignature::verify_cosignature;
use super::encoding::{check_control_chars, check_name, decode_b64, encode_b64};
use super::key::{KeyType, Signer, Verifier};
use super::{NoteError, MAX_NOTE_SIZE, MAX_SIGNATURES};

/// Every signature line starts with an EM DASH (U+2014) and a space.
const SIG_PREFIX: &str = "\u{2014} ";

/// One signature line of a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name as written on the line.
    pub name: String,
    /// The 4-byte key ID that prefixes the decoded signature.
    pub key_id: u32,
    /// The signature bytes after the 4-byte key ID (64 bytes for Ed25519,
    /// 72 = timestamp || signature for a tlog-cosignature).
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// Format as `"— <name> base64(key ID || signature)\n"`.
    ///
    /// The fields are public, so this does not validate; [`Note::add_signature`]
    /// does.
    pub fn to_line(&self) -> String {
        let mut raw = Vec::with_capacity(self.signature.len().saturating_add(4));
        raw.extend_from_slice(&self.key_id.to_be_bytes());
        raw.extend_from_slice(&self.signature);
        format!("{SIG_PREFIX}{} {}\n", self.name, encode_b64(&raw))
    }

    /// Parse one signature line, with or without its final `\n`.
    ///
    /// Rules (Go `note.Open`, plus canonical base64): prefix `"— "`, a valid
    /// key name, one space, canonical standard base64 decoding to at least
    /// 5 bytes (key ID plus at least one signature byte).
    pub fn parse_line(line: &str) -> Result<Self, NoteError> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        check_control_chars(line.as_bytes())?;
        let rest = line.strip_prefix(SIG_PREFIX).ok_or_else(|| {
            NoteError::Malformed("signature line does not start with \"\u{2014} \"".to_owned())
        })?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or_else(|| NoteError::Malformed("signature line has no signature".to_owned()))?;
        check_name(name)?;
        let raw = decode_b64(b64, "signature")?;
        match raw.split_first_chunk::<4>() {
            Some((id, sig)) if !sig.is_empty() => Ok(NoteSignature {
                name: name.to_owned(),
                key_id: u32::from_be_bytes(*id),
                signature: sig.to_vec(),
            }),
            _ => Err(NoteError::Malformed(
                "signature is shorter than 5 bytes".to_owned(),
            )),
        }
    }

    /// Validate a hand-built signature so it formats into a parseable line.
    fn check(&self) -> Result<(), NoteError> {
        check_name(&self.name)?;
        if self.signature.is_empty() {
            return Err(NoteError::Malformed("empty signature".to_owned()));
        }
        Ok(())
    }
}

/// A key that verified one of a note's signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedSignature {
    /// The trusted key that verified.
    pub verifier: Verifier,
    /// The cosignature timestamp (POSIX seconds) for type 0x04 keys; `None`
    /// for plain Ed25519 (0x01) signatures.
    pub timestamp: Option<u64>,
}

/// A parsed signed note: its text and its signature lines, in order.
///
/// Invariant: `Note::parse(&n.to_bytes()) == Ok(n)` for every `Note` this
/// module hands out (the text is valid, there are 1..=100 well-formed
/// signatures, and the serialised size is at most [`MAX_NOTE_SIZE`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

/// Check that `text` can be the text of a note: non-empty, ends in `\n`,
/// no control characters but `\n`. (Blank lines inside or at the end of the
/// text are fine: the separator is found as the last `"\n\n"`, and signature
/// lines are never empty.)
pub(crate) fn check_text(text: &str) -> Result<(), NoteError> {
    if text.len() > MAX_NOTE_SIZE {
        return Err(NoteError::TooLarge {
            size: text.len(),
            max: MAX_NOTE_SIZE,
        });
    }
    if !text.ends_with('\n') {
        return Err(NoteError::Malformed(
            "note text must be non-empty and end with a newline".to_owned(),
        ));
    }
    check_control_chars(text.as_bytes())
}

impl Note {
    /// Parse a signed note, without verifying any signature.
    ///
    /// Strict and total, in this order: size cap ([`NoteError::TooLarge`]),
    /// UTF-8 ([`NoteError::NotUtf8`]), no control characters but `\n`
    /// ([`NoteError::ControlCharacter`]), a blank line before the signature
    /// block, each signature line well formed, at most 100 and at least one
    /// signature. Duplicate (name, key ID) lines are kept as they are (Go
    /// accepts them too); [`Note::verify`] checks every one of them.
    pub fn parse(bytes: &[u8]) -> Result<Note, NoteError> {
        if bytes.len() > MAX_NOTE_SIZE {
            return Err(NoteError::TooLarge {
                size: bytes.len(),
                max: MAX_NOTE_SIZE,
            });
        }
        let s = std::str::from_utf8(bytes).map_err(|_| NoteError::NotUtf8)?;
        check_control_chars(bytes)?;
        let split = s.rfind("\n\n").ok_or_else(|| {
            NoteError::Malformed("no blank line before the signatures".to_owned())
        })?;
        // The text keeps the first '\n' of the pair; the signatures start
        // after the second. Both cuts are next to an ASCII '\n', so they are
        // char boundaries and `get` cannot fail; it is used anyway so that
        // no input can make this code panic.
        let text = s.get(..=split).unwrap_or_default();
        let sigs = s.get(split.saturating_add(2)..).unwrap_or_default();
        if text.is_empty() || sigs.is_empty() {
            return Err(NoteError::Malformed("no signature lines".to_owned()));
        }
        if !sigs.ends_with('\n') {
            return Err(NoteError::Malformed(
                "last signature line does not end with a newline".to_owned(),
            ));
        }
        let mut signatures = Vec::new();
        for line in sigs.split_terminator('\n') {
            if signatures.len() == MAX_SIGNATURES {
                return Err(NoteError::TooManySignatures);
            }
            signatures.push(NoteSignature::parse_line(line)?);
        }
        Ok(Note {
            text: text.to_owned(),
            signatures,
        })
    }

    /// Sign `text` with one or more Ed25519 (type 0x01) signers.
    ///
    /// The text must be non-empty, end in `\n` and contain no control
    /// characters but `\n`. A [`KeyType::CosignatureV1`] signer is refused
    /// with [`NoteError::WrongKeyType`] (use [`super::cosign`], which needs
    /// a timestamp). Two signers with the same (name, key ID) are refused
    /// with [`NoteError::DuplicateSignature`].
    pub fn new_signed(text: &str, signers: &[&Signer]) -> Result<Note, NoteError> {
        check_text(text)?;
        if signers.is_empty() {
            return Err(NoteError::Malformed(
                "at least one signer is required".to_owned(),
            ));
        }
        if signers.len() > MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures);
        }
        let mut signatures: Vec<NoteSignature> = Vec::with_capacity(signers.len());
        for signer in signers {
            if signer.key_type() != KeyType::Ed25519 {
                return Err(NoteError::WrongKeyType {
                    expected: KeyType::Ed25519,
                    got: signer.key_type(),
                });
            }
            if signatures
                .iter()
                .any(|s| s.name == signer.name() && s.key_id == signer.key_id())
            {
                return Err(NoteError::DuplicateSignature {
                    name: signer.name().to_owned(),
                    key_id: signer.key_id(),
                });
            }
            signatures.push(NoteSignature {
                name: signer.name().to_owned(),
                key_id: signer.key_id(),
                signature: signer.sign_bytes(text.as_bytes()).to_vec(),
            });
        }
        let note = Note {
            text: text.to_owned(),
            signatures,
        };
        note.check_size()?;
        Ok(note)
    }

    /// The note text, including its final `\n` (this is what 0x01 keys sign).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signature lines in the order they appear.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Add a signature line (typically a witness cosignature).
    ///
    /// If a signature with the same (name, key ID) is already present it is
    /// **replaced** in place (so re-cosigning with a newer timestamp updates
    /// the line instead of piling up). Otherwise the line is appended; that
    /// fails with [`NoteError::TooManySignatures`] past 100 lines or
    /// [`NoteError::TooLarge`] if the note would exceed [`MAX_NOTE_SIZE`].
    /// The signature is not verified here.
    pub fn add_signature(&mut self, sig: NoteSignature) -> Result<(), NoteError> {
        sig.check()?;
        let mut candidate = self.clone();
        match candidate
            .signatures
            .iter_mut()
            .find(|s| s.name == sig.name && s.key_id == sig.key_id)
        {
            Some(existing) => *existing = sig,
            None => {
                if candidate.signatures.len() >= MAX_SIGNATURES {
                    return Err(NoteError::TooManySignatures);
                }
                candidate.signatures.push(sig);
            }
        }
        candidate.check_size()?;
        *self = candidate;
        Ok(())
    }

    /// Serialise: text, a blank line, then the signature lines.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(self.text.as_bytes());
        out.push(b'\n');
        for sig in &self.signatures {
            out.extend_from_slice(sig.to_line().as_bytes());
        }
        out
    }

    /// Exact length of [`Note::to_bytes`] without building it.
    fn encoded_len(&self) -> usize {
        let sigs: usize = self
            .signatures
            .iter()
            .map(|s| {
                // "— " name " " base64(4 + len) "\n"
                let b64 = s
                    .signature
                    .len()
                    .saturating_add(4)
                    .div_ceil(3)
                    .saturating_mul(4);
                SIG_PREFIX
                    .len()
                    .saturating_add(s.name.len())
                    .saturating_add(b64)
                    .saturating_add(2)
            })
            .fold(0usize, usize::saturating_add);
        self.text.len().saturating_add(1).saturating_add(sigs)
    }

    fn check_size(&self) -> Result<(), NoteError> {
        let size = self.encoded_len();
        if size > MAX_NOTE_SIZE {
            return Err(NoteError::TooLarge {
                size,
                max: MAX_NOTE_SIZE,
            });
        }
        Ok(())
    }

    /// Verify with Go `note.Open` semantics.
    ///
    /// * Signatures whose (name, key ID) matches no key in `known` are ignored.
    /// * Every signature whose (name, key ID) matches a known key must verify
    ///   (stricter than Go, which skips repeated lines from the same key):
    ///   otherwise [`NoteError::InvalidSignature`] (or
    ///   [`NoteError::BadSignatureLength`] / [`NoteError::TimestampOutOfRange`]
    ///   for malformed cosignatures).
    /// * Type 0x01 keys verify the text; type 0x04 keys verify a
    ///   tlog-cosignature/v1 over the text and report its timestamp.
    /// * Two different known keys with the same (name, key ID) are
    ///   [`NoteError::AmbiguousKey`] if a signature line refers to them.
    /// * If nothing verified: [`NoteError::NoVerifiedSignature`].
    ///
    /// Returns one entry per distinct verifying key, in signature order.
    pub fn verify(&self, known: &[Verifier]) -> Result<Vec<VerifiedSignature>, NoteError> {
        let mut verified: Vec<VerifiedSignature> = Vec::new();
        for sig in &self.signatures {
            let mut matches = known
                .iter()
                .filter(|v| v.name() == sig.name && v.key_id() == sig.key_id);
            let Some(v) = matches.next() else {
                continue;
            };
            if matches.any(|other| other != v) {
                return Err(NoteError::AmbiguousKey {
                    name: sig.name.clone(),
                    key_id: sig.key_id,
                });
            }
            let timestamp = match v.key_type() {
                KeyType::Ed25519 => {
                    if !v.verify_bytes(self.text.as_bytes(), &sig.signature) {
                        return Err(NoteError::InvalidSignature {
                            name: sig.name.clone(),
                        });
                    }
                    None
                }
                KeyType::CosignatureV1 => Some(verify_cosignature(&self.text, sig, v)?),
            };
            if !verified.iter().any(|x| x.verifier == *v) {
                verified.push(VerifiedSignature {
                    verifier: v.clone(),
                    timestamp,
                });
            }
        }
        if verified.is_empty() {
            return Err(NoteError::NoVerifiedSignature);
        }
        Ok(verified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line and its parsed (name, key ID, signature), or the kind of its error.
    type Case = (
        &'static str,
        Result<(&'static str, u32, &'static [u8]), &'static str>,
    );

    fn kind(e: &NoteError) -> &'static str {
        match e {
            NoteError::Malformed(_) => "malformed",
            NoteError::BadKeyName(_) => "name",
            NoteError::BadBase64 { .. } => "base64",
            NoteError::ControlCharacter { .. } => "control",
            _ => "other",
        }
    }

    #[test]
    fn signature_lines() {
        let cases: [Case; 11] = [
            ("\u{2014} name AAAAAQc=", Ok(("name", 1, &[7]))),
            ("\u{2014} name AAAAAQc=\n", Ok(("name", 1, &[7]))),
            ("- name AAAAAQc=", Err("malformed")),
            ("\u{2014}name AAAAAQc=", Err("malformed")),
            ("\u{2014} nameAAAAAQc=", Err("malformed")),
            ("\u{2014} na+me AAAAAQc=", Err("name")),
            ("\u{2014}  AAAAAQc=", Err("name")),
            ("\u{2014} name AAAAAQ==", Err("malformed")),
            ("\u{2014} name AAAAAQc", Err("base64")),
            ("\u{2014} name AAAAAQc= more", Err("base64")),
            ("\u{2014} name AAAAAQc=\t", Err("control")),
        ];
        for (line, expected) in cases {
            let got = NoteSignature::parse_line(line);
            match expected {
                Ok((name, key_id, signature)) => {
                    let sig = got.unwrap_or_else(|e| panic!("{line:?}: {e}"));
                    assert_eq!(
                        (sig.name.as_str(), sig.key_id, sig.signature.as_slice()),
                        (name, key_id, signature)
                    );
                    assert_eq!(sig.to_line().trim_end(), line.trim_end());
                }
                Err(want) => {
                    let error = got.expect_err(line);
                    assert_eq!(kind(&error), want, "{line:?}: {error}");
                }
            }
        }
    }

    #[test]
    fn note_texts() {
        let cases = [
            ("a\n", true),
            ("a\n\nb\n", true),
            ("", false),
            ("a", false),
            ("a\tb\n", false),
        ];
        for (text, ok) in cases {
            assert_eq!(check_text(text).is_ok(), ok, "{text:?}");
        }
    }
}
