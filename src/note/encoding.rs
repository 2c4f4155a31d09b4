//! Small strict codecs shared by the note formats.
//!
//! All C2SP formats we speak use standard, padded base64 (RFC 4648 §4) and
//! canonical ASCII decimals. We accept exactly one spelling of every value so
//! that a signed object has a single byte representation: two different
//! strings that decode to the same bytes would let an attacker produce
//! "different" notes or proofs that are really the same, which confuses
//! de-duplication and equality checks downstream.
//!
//! May import only the note error type and base64.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::NoteError;

/// Decode canonical standard padded base64.
///
/// The `STANDARD` engine already requires padding and rejects non-zero
/// trailing bits; the re-encode comparison is a belt-and-braces check that
/// the input is the one canonical spelling of the decoded bytes.
pub(crate) fn decode_b64(s: &str, field: &'static str) -> Result<Vec<u8>, NoteError> {
    let bytes = STANDARD
        .decode(s.as_bytes())
        .map_err(|_| NoteError::BadBase64 { field })?;
    if STANDARD.encode(&bytes) != s {
        return Err(NoteError::BadBase64 { field });
    }
    Ok(bytes)
}

/// Encode standard padded base64.
pub(crate) fn encode_b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Parse a canonical ASCII decimal: digits only, no sign, no leading zeros
/// (except the single digit `0`), and it must fit in a `u64`.
pub(crate) fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse::<u64>().ok()
}

/// Splits off the next `\n`-terminated line (without its `\n`) and the rest after
/// it; `None` if no `\n` is left.
pub(crate) fn split_line(rest: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = rest.iter().position(|&b| b == b'\n')?;
    let (line, tail) = rest.split_at(i);
    Some((line, tail.get(1..).unwrap_or_default()))
}

/// Reject ASCII control characters other than `\n`.
///
/// C2SP signed-note only forbids characters below U+0020 (other than
/// newline); DEL and C1 controls are allowed by the spec and by Go, so we
/// allow them too in order to accept every note the spec accepts.
pub(crate) fn check_control_chars(bytes: &[u8]) -> Result<(), NoteError> {
    match bytes.iter().position(|&b| b < 0x20 && b != b'\n') {
        Some(offset) => Err(NoteError::ControlCharacter {
            offset,
            byte: bytes.get(offset).copied().unwrap_or(0),
        }),
        None => Ok(()),
    }
}

/// Key names: non-empty, no Unicode white space (the same set as Go's
/// `unicode.IsSpace`), no `+` (the key-string separator), and, stricter than
/// Go, no control characters (they could never appear in a valid note).
pub(crate) fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty()
        || name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
    {
        return Err(NoteError::BadKeyName(name.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_is_canonical() {
        assert_eq!(parse_decimal("0"), Some(0));
        assert_eq!(parse_decimal("6476701"), Some(6476701));
        assert_eq!(parse_decimal("18446744073709551615"), Some(u64::MAX));
        for bad in [
            "",
            "00",
            "01",
            "+1",
            "-1",
            " 1",
            "1 ",
            "18446744073709551616",
            "1_0",
        ] {
            assert_eq!(parse_decimal(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn lines_split_at_the_first_newline() {
        type Split = Option<(&'static [u8], &'static [u8])>;
        let cases: [(&[u8], Split); 5] = [
            (b"a\nb\n", Some((b"a", b"b\n"))),
            (b"\n", Some((b"", b""))),
            (b"\n\nx", Some((b"", b"\nx"))),
            (b"abc", None),
            (b"", None),
        ];
        for (input, expected) in cases {
            assert_eq!(split_line(input), expected, "{input:?}");
        }
    }

    #[test]
    fn base64_is_canonical() {
        assert_eq!(decode_b64("AA==", "t"), Ok(vec![0]));
        assert_eq!(decode_b64("", "t"), Ok(vec![]));
        for bad in [
            "AB==", "AA", "AA=", "A===", "AA==\n", " AA==", "AA-_", "AA==AA==",
        ] {
            assert!(decode_b64(bad, "t").is_err(), "{bad:?}");
        }
    }
}
