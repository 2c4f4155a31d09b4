//! The C2SP tlog-proof text format (`c2sp.org/tlog-proof@v1`, C2SP repository
//! commit 0065ea5b, the only revision of tlog-proof.md we could read).
//!
//! ```text
//! c2sp.org/tlog-proof@v1\n
//! [extra <base64 opaque data>\n]          optional, unauthenticated
//! index <decimal, no leading zeros>\n
//! [<base64 32-byte hash>\n]*              inclusion proof, leaf sibling first
//! \n
//! <signed checkpoint note, verbatim, to end of input>
//! ```
//!
//! This module only handles the format. It checks that the trailing part is
//! a well-formed signed note whose text is a well-formed checkpoint, but it
//! verifies no signature and no Merkle path: [`TlogProof::open`] does the
//! signature part, the Merkle module does the rest.
//!
//! May import only its siblings in `note` (codecs, the note and checkpoint parsers).

use super::checkpoint::{open_checkpoint, Checkpoint};
use super::encoding::{decode_b64, encode_b64, parse_decimal, split_line};
use super::key::Verifier;
use super::signed::Note;
use super::{NoteError, MAX_NOTE_SIZE};

/// The mandatory first line (without its `\n`).
pub const TLOG_PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";

/// Most hashes an inclusion proof can need: a tree of at most 2^64 - 1
/// leaves is at most 64 levels deep. More lines are refused so that a
/// hostile proof cannot make a verifier hash without bound.
pub const MAX_PROOF_HASHES: usize = 64;

/// A parsed tlog-proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlogProof {
    /// Zero-based index of the entry in the log.
    pub index: u64,
    /// Optional opaque, unauthenticated extra data (`Some(vec![])` is an
    /// `extra ` line with an empty payload; `None` is no line).
    pub extra: Option<Vec<u8>>,
    /// Inclusion proof hashes, from the leaf's sibling up to the root's child.
    pub hashes: Vec<[u8; 32]>,
    /// The signed checkpoint note, verbatim.
    pub checkpoint: Vec<u8>,
}

fn bad(msg: &str) -> NoteError {
    NoteError::BadProof(msg.to_owned())
}

/// Split off the next `\n`-terminated line (without the `\n`).
fn next_line(rest: &[u8]) -> Result<(&[u8], &[u8]), NoteError> {
    split_line(rest).ok_or_else(|| bad("unexpected end of input"))
}

/// The header lines are ASCII; anything else is a format error.
fn ascii(line: &[u8]) -> Result<&str, NoteError> {
    if !line.iter().all(|&b| (0x20..0x7f).contains(&b)) {
        return Err(bad("header lines must be printable ASCII"));
    }
    std::str::from_utf8(line).map_err(|_| bad("header lines must be printable ASCII"))
}

impl TlogProof {
    /// Parse a tlog-proof.
    ///
    /// Limits: the whole input is at most [`MAX_NOTE_SIZE`] bytes
    /// ([`NoteError::TooLarge`]) and at most [`MAX_PROOF_HASHES`] hash lines.
    /// Header errors are [`NoteError::BadProof`] (base64 errors are
    /// [`NoteError::BadBase64`]); errors in the embedded note or checkpoint
    /// are reported as those parsers report them.
    pub fn parse(bytes: &[u8]) -> Result<TlogProof, NoteError> {
        if bytes.len() > MAX_NOTE_SIZE {
            return Err(NoteError::TooLarge {
                size: bytes.len(),
                max: MAX_NOTE_SIZE,
            });
        }
        let (header, mut rest) = next_line(bytes)?;
        if header != TLOG_PROOF_HEADER.as_bytes() {
            return Err(bad("first line is not c2sp.org/tlog-proof@v1"));
        }

        let (mut line, mut after) = next_line(rest)?;
        let mut extra = None;
        if let Some(b64) = line.strip_prefix(b"extra ") {
            extra = Some(decode_b64(ascii(b64)?, "extra data")?);
            rest = after;
            (line, after) = next_line(rest)?;
        }
        let index = line
            .strip_prefix(b"index ")
            .ok_or_else(|| bad("missing index line"))
            .and_then(ascii)
            .and_then(|s| {
                parse_decimal(s).ok_or_else(|| bad("index is not a canonical decimal"))
            })?;
        rest = after;

        let mut hashes = Vec::new();
        loop {
            let (line, after) = next_line(rest)?;
            rest = after;
            if line.is_empty() {
                break;
            }
            if hashes.len() == MAX_PROOF_HASHES {
                return Err(bad("too many proof hashes"));
            }
            let hash: [u8; 32] = decode_b64(ascii(line)?, "proof hash")?
                .try_into()
                .map_err(|_| bad("proof hash is not 32 bytes"))?;
            hashes.push(hash);
        }

        // The checkpoint must be a well-formed note with a checkpoint body.
        let note = Note::parse(rest)?;
        Checkpoint::parse(note.text())?;
        Ok(TlogProof {
            index,
            extra,
            hashes,
            checkpoint: rest.to_vec(),
        })
    }

    /// Serialise as the tlog-proof text. A `checkpoint` that is not UTF-8
    /// (impossible after [`TlogProof::parse`]) is converted lossily; use
    /// [`TlogProof::to_bytes`] to keep it verbatim.
    pub fn to_text(&self) -> String {
        String::from_utf8_lossy(&self.to_bytes()).into_owned()
    }

    /// Serialise as bytes, with the checkpoint copied verbatim.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!("{TLOG_PROOF_HEADER}\n");
        if let Some(extra) = &self.extra {
            head.push_str("extra ");
            head.push_str(&encode_b64(extra));
            head.push('\n');
        }
        head.push_str("index ");
        head.push_str(&self.index.to_string());
        head.push('\n');
        for h in &self.hashes {
            head.push_str(&encode_b64(h));
            head.push('\n');
        }
        head.push('\n');
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.checkpoint);
        out
    }

    /// Verify the embedded checkpoint with the log's key (see
    /// [`open_checkpoint`]) and check that `index < size`. The Merkle path
    /// itself is NOT checked here.
    pub fn open(&self, log: &Verifier) -> Result<(Checkpoint, Note), NoteError> {
        let (checkpoint, note) = open_checkpoint(&self.checkpoint, log)?;
        if self.index >= checkpoint.size {
            return Err(bad("index is not below the checkpoint's tree size"));
        }
        Ok((checkpoint, note))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::{KeyType, Signer};

    /// A proof text and its parsed (index, extra length, hash count), or the kind of
    /// its error.
    type Case = (String, Result<(u64, Option<usize>, usize), &'static str>);

    const HASH: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    fn signer() -> Signer {
        Signer::from_seed("o", KeyType::Ed25519, &[2; 32]).expect("test key")
    }

    /// A signed checkpoint note of `size` leaves.
    fn note(size: u64) -> String {
        let checkpoint = Checkpoint {
            origin: "o".into(),
            size,
            root: [0; 32],
            extensions: Vec::new(),
        };
        let note = checkpoint.sign(&signer()).expect("valid checkpoint");
        String::from_utf8(note.to_bytes()).expect("UTF-8 note")
    }

    fn kind(e: &NoteError) -> &'static str {
        match e {
            NoteError::BadProof(_) => "proof",
            NoteError::BadBase64 { .. } => "base64",
            _ => "other",
        }
    }

    #[test]
    fn headers() {
        let h = TLOG_PROOF_HEADER;
        let n = note(5);
        let many = format!("{HASH}\n").repeat(MAX_PROOF_HASHES + 1);
        let cases: Vec<Case> = vec![
            (format!("{h}\nindex 0\n\n{n}"), Ok((0, None, 0))),
            (
                format!("{h}\nextra AAAAAQ==\nindex 3\n{HASH}\n\n{n}"),
                Ok((3, Some(4), 1)),
            ),
            (format!("{h}\nextra \nindex 3\n\n{n}"), Ok((3, Some(0), 0))),
            (
                format!("c2sp.org/tlog-proof@v2\nindex 0\n\n{n}"),
                Err("proof"),
            ),
            (format!("{h}\nindex 03\n\n{n}"), Err("proof")),
            (format!("{h}\nindex -3\n\n{n}"), Err("proof")),
            (format!("{h}\n\n{n}"), Err("proof")),
            (format!("{h}\nindex \u{e9}\n\n{n}"), Err("proof")),
            (format!("{h}\nextra !!\nindex 0\n\n{n}"), Err("base64")),
            (format!("{h}\nindex 0\nAAAAAQ==\n\n{n}"), Err("proof")),
            (format!("{h}\nindex 0\nAAAAAQ=\n\n{n}"), Err("base64")),
            (format!("{h}\nindex 0\n{many}\n{n}"), Err("proof")),
            (format!("{h}\nindex 0\n{HASH}"), Err("proof")),
            (format!("{h}\nindex 0\n\nnot a note\n"), Err("other")),
        ];
        for (text, expected) in cases {
            let got = TlogProof::parse(text.as_bytes());
            match expected {
                Ok((index, extra, hashes)) => {
                    let proof = got.unwrap_or_else(|e| panic!("{text:?}: {e}"));
                    let shape = (
                        proof.index,
                        proof.extra.as_ref().map(Vec::len),
                        proof.hashes.len(),
                    );
                    assert_eq!(shape, (index, extra, hashes));
                    assert_eq!(proof.to_text(), text, "formats back byte for byte");
                }
                Err(want) => {
                    let error = got.expect_err(&text);
                    assert_eq!(kind(&error), want, "{text:?}: {error}");
                }
            }
        }
    }

    #[test]
    fn open_needs_the_index_below_the_size() {
        let key = signer().verifier();
        for (index, ok) in [(0, true), (4, true), (5, false), (u64::MAX, false)] {
            let proof = TlogProof {
                index,
                extra: None,
                hashes: Vec::new(),
                checkpoint: note(5).into_bytes(),
            };
            assert_eq!(proof.open(&key).is_ok(), ok, "index {index}");
        }
    }
}
