//! The wire format of C2SP tlog-witness v1.0.0 `add-checkpoint`, both directions.
//!
//! Request body:
//! ```text
//! old <decimal size, canonical>\n
//! <base64 32-byte hash>\n          0..=63 consistency-proof lines, RFC 6962 §2.1.2
//! \n
//! <signed checkpoint note, verbatim, to the end of the body>
//! ```
//! A 409 answer carries the witness's latest cosigned size as `<decimal>\n` with
//! `Content-Type: text/x.tlog.size`. A 200 answer is one or more note signature lines.
//!
//! Pure and total: the witness server parses with [`AddCheckpoint::parse`], the log's
//! witness client builds with [`AddCheckpoint::to_bytes`], so both sides share one
//! definition, and neither imports the other.
//!
//! Owns the request body and the 409 size body. May import only `super` (the note
//! codecs and caps) and base64; the embedded note is carried verbatim, not parsed.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::encoding::{parse_decimal, split_line};
use super::MAX_NOTE_SIZE;

/// One consistency-proof hash (RFC 6962 SHA-256).
type Hash = [u8; 32];

/// Media type of the 409 body.
pub const TLOG_SIZE_MEDIA_TYPE: &str = "text/x.tlog.size";

/// A parsed (or to-be-sent) add-checkpoint request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size the client believes the witness last cosigned (0 for none).
    pub old_size: u64,
    /// Consistency proof from `old_size` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note, verbatim (not parsed here).
    pub checkpoint: Vec<u8>,
}

/// Why a request body is refused (the witness answers 413 or 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddCheckpointError {
    /// The body is over [`AddCheckpoint::MAX_BODY_BYTES`].
    #[error("request body is {size} bytes, larger than the {max}-byte limit")]
    TooLarge {
        /// Size of the body.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The body is not an add-checkpoint request.
    #[error("malformed add-checkpoint request: {0}")]
    Malformed(String),
}

fn malformed(msg: impl Into<String>) -> AddCheckpointError {
    AddCheckpointError::Malformed(msg.into())
}

/// Splits off the next `\n`-terminated line (without the `\n`).
fn next_line(rest: &[u8]) -> Result<(&[u8], &[u8]), AddCheckpointError> {
    split_line(rest).ok_or_else(|| malformed("unexpected end of the body before the checkpoint"))
}

/// Decodes one proof line: canonical padded base64 of exactly 32 bytes.
fn proof_hash(line: &[u8], position: usize) -> Result<Hash, AddCheckpointError> {
    let bad = || {
        malformed(format!(
            "proof line {position} is not base64 of a 32-byte hash"
        ))
    };
    let bytes = STANDARD.decode(line).map_err(|_| bad())?;
    if STANDARD.encode(&bytes).as_bytes() != line {
        return Err(bad());
    }
    bytes.try_into().map_err(|_| bad())
}

impl AddCheckpoint {
    /// Most consistency-proof lines a request may carry (tlog-witness: 63 for trees of
    /// fewer than 2^63 entries).
    pub const MAX_PROOF_LINES: usize = 63;

    /// Largest request body: the `old` line, 63 proof lines and the blank line fit in
    /// 4 KiB (`old ` + 20 digits, 63 × 45 bytes); the note is capped like every note.
    pub const MAX_BODY_BYTES: usize = MAX_NOTE_SIZE + 4096;

    /// Parses a request body strictly: size cap first, then the `old` line (canonical
    /// decimal), at most 63 proof lines, the blank line, and a non-empty remainder,
    /// which is the note (parsed by the caller, so that its errors keep their type).
    pub fn parse(body: &[u8]) -> Result<AddCheckpoint, AddCheckpointError> {
        if body.len() > AddCheckpoint::MAX_BODY_BYTES {
            return Err(AddCheckpointError::TooLarge {
                size: body.len(),
                max: AddCheckpoint::MAX_BODY_BYTES,
            });
        }
        let (first, mut rest) = next_line(body)?;
        let old_size = first
            .strip_prefix(b"old ")
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .and_then(parse_decimal)
            .ok_or_else(|| {
                malformed("the first line must be \"old <size>\" with a canonical decimal size")
            })?;
        let mut proof = Vec::new();
        loop {
            let (line, tail) = next_line(rest)?;
            rest = tail;
            if line.is_empty() {
                break;
            }
            if proof.len() == AddCheckpoint::MAX_PROOF_LINES {
                return Err(malformed(format!(
                    "more than {} consistency proof lines",
                    AddCheckpoint::MAX_PROOF_LINES
                )));
            }
            proof.push(proof_hash(line, proof.len())?);
        }
        if rest.is_empty() {
            return Err(malformed("no checkpoint after the blank line"));
        }
        Ok(AddCheckpoint {
            old_size,
            proof,
            checkpoint: rest.to_vec(),
        })
    }

    /// The request body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("old {}\n", self.old_size).into_bytes();
        for hash in &self.proof {
            out.extend_from_slice(STANDARD.encode(hash).as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
        out.extend_from_slice(&self.checkpoint);
        out
    }
}

/// The body of a 409 answer: `<size>\n`.
pub fn tlog_size_body(size: u64) -> String {
    format!("{size}\n")
}

/// Parses a 409 body: exactly one canonical decimal and a `\n`.
pub fn parse_tlog_size_body(body: &[u8]) -> Option<u64> {
    let digits = body.strip_suffix(b"\n")?;
    parse_decimal(std::str::from_utf8(digits).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_variants() {
        let request = AddCheckpoint {
            old_size: 7,
            proof: vec![[1u8; 32], [2u8; 32]],
            checkpoint: b"origin\n9\nroot\n\n\xe2\x80\x94 sig\n".to_vec(),
        };
        let bytes = request.to_bytes();
        assert_eq!(AddCheckpoint::parse(&bytes), Ok(request));

        let empty = b"old 0\n\nnote\n";
        let parsed = AddCheckpoint::parse(empty).map(|r| (r.old_size, r.proof.len()));
        assert_eq!(parsed, Ok((0, 0)));

        for bad in [
            &b"old 01\n\nnote"[..],
            b"old -1\n\nnote",
            b"old 1",
            b"old 1\n",
            b"old 1\n\n",
            b"new 1\n\nnote",
            b"old 1\nAAAA\n\nnote",
            b"old 1\nAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE\n\nnote",
        ] {
            assert!(
                matches!(
                    AddCheckpoint::parse(bad),
                    Err(AddCheckpointError::Malformed(_))
                ),
                "{:?} must be refused",
                String::from_utf8_lossy(bad)
            );
        }
        let mut long = b"old 1\n".to_vec();
        for _ in 0..=AddCheckpoint::MAX_PROOF_LINES {
            long.extend_from_slice(STANDARD.encode([0u8; 32]).as_bytes());
            long.push(b'\n');
        }
        long.extend_from_slice(b"\nnote");
        assert!(AddCheckpoint::parse(&long).is_err());
        let huge = vec![b'a'; AddCheckpoint::MAX_BODY_BYTES + 1];
        assert!(matches!(
            AddCheckpoint::parse(&huge),
            Err(AddCheckpointError::TooLarge { .. })
        ));
    }

    proptest::proptest! {
        /// Total on hostile input: any bytes, and any single-byte change to a valid body.
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
                        at in 0usize..4096, byte in proptest::num::u8::ANY) {
            let _ = AddCheckpoint::parse(&bytes);
            let mut valid = AddCheckpoint {
                old_size: 3,
                proof: vec![[5u8; 32]; 3],
                checkpoint: b"origin\n9\nroot\n\n\xe2\x80\x94 sig\n".to_vec(),
            }
            .to_bytes();
            let i = at % valid.len();
            valid[i] = byte;
            if let Ok(parsed) = AddCheckpoint::parse(&valid) {
                proptest::prop_assert_eq!(AddCheckpoint::parse(&parsed.to_bytes()), Ok(parsed));
            }
        }
    }

    #[test]
    fn size_bodies() {
        assert_eq!(
            parse_tlog_size_body(tlog_size_body(42).as_bytes()),
            Some(42)
        );
        assert_eq!(parse_tlog_size_body(b"0\n"), Some(0));
        for bad in [&b"42"[..], b"042\n", b"4 2\n", b"\n", b"42\n\n"] {
            assert_eq!(parse_tlog_size_body(bad), None);
        }
    }
}
