//! One signature line of a signed note, and the rules for a note's text: the pieces
//! that both plain signatures (`signed`) and cosignatures (`cosignature`) build on, so
//! neither of those two needs the other's internals.
//!
//! May import only its siblings in `note` (codecs, errors).

use super::encoding::{check_control_chars, check_name, decode_b64, encode_b64};
use super::{NoteError, MAX_NOTE_SIZE};

/// Every signature line starts with an EM DASH (U+2014) and a space.
pub(super) const SIG_PREFIX: &str = "\u{2014} ";

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
    pub(super) fn check(&self) -> Result<(), NoteError> {
        check_name(&self.name)?;
        if self.signature.is_empty() {
            return Err(NoteError::Malformed("empty signature".to_owned()));
        }
        Ok(())
    }
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
