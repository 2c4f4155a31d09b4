//! The C2SP tlog-checkpoint v1.0.0 note body.
//!
//! ```text
//! <origin>\n
//! <tree size, canonical ASCII decimal>\n
//! <root hash, standard padded base64 of 32 bytes>\n
//! [<non-empty extension line>\n]*
//! ```
//!
//! We accept exactly one spelling for size and root (no leading zeros,
//! canonical base64) so that two different texts can never describe the
//! same tree head: a log or witness comparing checkpoints byte for byte
//! must not be fooled by a re-encoded root.
//!
//! May import only its siblings in `note` (codecs, keys, the signed note).

use super::encoding::{check_control_chars, decode_b64, encode_b64, parse_decimal};
use super::key::{Signer, Verifier};
use super::signed::Note;
use super::NoteError;

/// A parsed checkpoint body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line (SHOULD be a schema-less URL; we do not assume
    /// any shape beyond "non-empty").
    pub origin: String,
    /// Number of entries in the tree.
    pub size: u64,
    /// RFC 6962 Merkle tree hash of the first `size` entries.
    pub root: [u8; 32],
    /// Opaque extension lines (without their `\n`); each is non-empty.
    pub extensions: Vec<String>,
}

fn bad(msg: &str) -> NoteError {
    NoteError::BadCheckpoint(msg.to_owned())
}

impl Checkpoint {
    /// Parse a checkpoint body (the text of a note, ending in `\n`).
    ///
    /// Errors are [`NoteError::BadCheckpoint`] except a non-canonical root
    /// encoding, which is [`NoteError::BadBase64`], and control characters,
    /// which are [`NoteError::ControlCharacter`].
    pub fn parse(text: &str) -> Result<Checkpoint, NoteError> {
        check_control_chars(text.as_bytes())?;
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("text does not end with a newline"))?;
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or("");
        if origin.is_empty() {
            return Err(bad("empty origin line"));
        }
        let size_line = lines.next().ok_or_else(|| bad("missing tree size line"))?;
        let size = parse_decimal(size_line).ok_or_else(|| {
            bad("tree size is not a canonical decimal (no sign, no leading zeros, fits in 64 bits)")
        })?;
        let root_line = lines.next().ok_or_else(|| bad("missing root hash line"))?;
        let root: [u8; 32] =
            decode_b64(root_line, "root hash")?
                .try_into()
                .map_err(|v: Vec<u8>| {
                    NoteError::BadCheckpoint(format!("root hash is {} bytes, expected 32", v.len()))
                })?;
        let mut extensions = Vec::new();
        for line in lines {
            if line.is_empty() {
                return Err(bad("empty extension line"));
            }
            extensions.push(line.to_owned());
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }

    /// Format the body: origin, size, root, extensions, each ending in `\n`.
    ///
    /// This does not validate (the fields are public); [`Checkpoint::sign`]
    /// refuses anything that would not parse back to `self`.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            encode_b64(&self.root)
        );
        for ext in &self.extensions {
            s.push_str(ext);
            s.push('\n');
        }
        s
    }

    /// Sign the body with the log's Ed25519 (0x01) key.
    ///
    /// The spec says the key name SHOULD equal the origin; we accept any
    /// name (an operator may rename a key) and leave that policy to the caller.
    /// Fails with the [`Checkpoint::parse`] error if the formatted text is not
    /// a valid checkpoint, or [`NoteError::BadCheckpoint`] if it parses to
    /// different fields (e.g. an origin or extension containing `\n`).
    pub fn sign(&self, signer: &Signer) -> Result<Note, NoteError> {
        let text = self.to_text();
        if Checkpoint::parse(&text)? != *self {
            return Err(bad("fields do not form a valid checkpoint"));
        }
        Note::new_signed(&text, &[signer])
    }
}

/// Parse a signed checkpoint note and verify it with the log's key.
///
/// The log key must be type 0x01 ([`NoteError::WrongKeyType`] otherwise)
/// and its signature must be present and valid; other signatures
/// (e.g. witness cosignatures) are ignored here, verify them with
/// [`Note::verify`]. Signatures are checked before the body is parsed, so
/// an unsigned malformed body reports [`NoteError::NoVerifiedSignature`].
pub fn open_checkpoint(bytes: &[u8], log: &Verifier) -> Result<(Checkpoint, Note), NoteError> {
    if log.key_type() != super::KeyType::Ed25519 {
        return Err(NoteError::WrongKeyType {
            expected: super::KeyType::Ed25519,
            got: log.key_type(),
        });
    }
    let note = Note::parse(bytes)?;
    note.verify(std::slice::from_ref(log))?;
    let checkpoint = Checkpoint::parse(note.text())?;
    Ok((checkpoint, note))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::KeyType;

    /// A body and its parsed (size, extension count), or the kind of its error.
    type Case = (String, Result<(u64, usize), &'static str>);

    const ROOT: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    fn kind(e: &NoteError) -> &'static str {
        match e {
            NoteError::BadCheckpoint(_) => "checkpoint",
            NoteError::BadBase64 { .. } => "base64",
            NoteError::ControlCharacter { .. } => "control",
            _ => "other",
        }
    }

    #[test]
    fn bodies() {
        let r = ROOT;
        let short = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==";
        let not_canonical = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=";
        let cases: Vec<Case> = vec![
            (format!("o\n5\n{r}\n"), Ok((5, 0))),
            (format!("o\n0\n{r}\next a\next b\n"), Ok((0, 2))),
            (format!("o\n18446744073709551615\n{r}\n"), Ok((u64::MAX, 0))),
            (format!("o\n5\n{r}"), Err("checkpoint")),
            (format!("\n5\n{r}\n"), Err("checkpoint")),
            ("o\n".into(), Err("checkpoint")),
            ("o\n5\n".into(), Err("checkpoint")),
            (format!("o\n05\n{r}\n"), Err("checkpoint")),
            (format!("o\n-5\n{r}\n"), Err("checkpoint")),
            (format!("o\n18446744073709551616\n{r}\n"), Err("checkpoint")),
            (format!("o\n5\n{short}\n"), Err("checkpoint")),
            (format!("o\n5\n{not_canonical}\n"), Err("base64")),
            (format!("o\n5\n{r}\n\n"), Err("checkpoint")),
            (format!("o\n5\n{r}\next\n\n"), Err("checkpoint")),
            (format!("o\t\n5\n{r}\n"), Err("control")),
        ];
        for (text, expected) in cases {
            let got = Checkpoint::parse(&text);
            match expected {
                Ok((size, extensions)) => {
                    let checkpoint = got.unwrap_or_else(|e| panic!("{text:?}: {e}"));
                    assert_eq!(
                        (checkpoint.size, checkpoint.extensions.len()),
                        (size, extensions)
                    );
                    assert_eq!(checkpoint.to_text(), text, "formats back byte for byte");
                }
                Err(want) => {
                    let error = got.expect_err(&text);
                    assert_eq!(kind(&error), want, "{text:?}: {error}");
                }
            }
        }
    }

    #[test]
    fn sign_refuses_fields_that_do_not_parse_back() {
        let signer = Signer::from_seed("o", KeyType::Ed25519, &[1; 32]).expect("test key");
        let good = Checkpoint {
            origin: "o".into(),
            size: 3,
            root: [0; 32],
            extensions: vec!["ext".into()],
        };
        assert!(good.sign(&signer).is_ok());
        let bad = [
            Checkpoint {
                origin: "o\n4".into(),
                ..good.clone()
            },
            Checkpoint {
                origin: String::new(),
                ..good.clone()
            },
            Checkpoint {
                extensions: vec![String::new()],
                ..good.clone()
            },
            Checkpoint {
                extensions: vec!["a\nb".into()],
                ..good.clone()
            },
        ];
        for checkpoint in bad {
            assert!(checkpoint.sign(&signer).is_err(), "{checkpoint:?}");
        }
    }
}
