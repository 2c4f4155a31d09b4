//! Monitor alerts and their evidence.
//!
//! Every alert carries the signed checkpoints that prove it, verbatim: a rollback or a
//! fork is two notes signed by the same log key that cannot both be honest, which
//! anyone can check with the log's verifier key alone.

use std::fmt;

/// What kind of misbehaviour (or absence) was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    /// A validly signed checkpoint smaller than one verified before.
    Rollback,
    /// Two validly signed checkpoints that are not consistent: same size and different
    /// roots, or a consistency proof that leads elsewhere.
    Fork,
    /// The served checkpoint does not verify with the log's key (or names another log).
    BadSignature,
    /// The server could not produce a well-formed consistency proof.
    BadProof,
    /// A server or mirror served data (hash tiles) that does not verify against a
    /// correctly signed checkpoint: the copy is bad, which says nothing against the log.
    BadMirrorData,
    /// The server did not answer with a verifiable checkpoint for too long.
    Unreachable,
    /// The entries do not match the tiles or the root, or the authority accepted an
    /// entry that its rules refuse.
    Audit,
    /// A `StateCommitment` entry commits to a map root that the entries before it do
    /// not give (`log-format/state.md` §5).
    BadStateCommitment,
}

impl AlertKind {
    /// The kind's name as printed (`ALERT <name>: ...`).
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::Rollback => "rollback",
            AlertKind::Fork => "fork",
            AlertKind::BadSignature => "bad-signature",
            AlertKind::BadProof => "bad-proof",
            AlertKind::BadMirrorData => "bad-mirror-data",
            AlertKind::Unreachable => "unreachable",
            AlertKind::Audit => "audit",
            AlertKind::BadStateCommitment => "bad-state-commitment",
        }
    }
}

/// One piece of evidence: a label and the exact bytes served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// What it is ("last verified checkpoint", "served checkpoint", ...).
    pub label: String,
    /// The bytes as served (a signed note, for checkpoints).
    pub bytes: Vec<u8>,
}

/// An alert: its kind, what exactly was wrong, and the evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// The kind.
    pub kind: AlertKind,
    /// What exactly was seen.
    pub detail: String,
    /// The signed checkpoints (or other served bytes) that prove it.
    pub evidence: Vec<Evidence>,
}

impl Alert {
    /// An alert with no evidence yet.
    pub fn new(kind: AlertKind, detail: impl Into<String>) -> Alert {
        Alert {
            kind,
            detail: detail.into(),
            evidence: Vec::new(),
        }
    }

    /// Adds a piece of evidence.
    pub fn with(mut self, label: &str, bytes: &[u8]) -> Alert {
        self.evidence.push(Evidence {
            label: label.to_string(),
            bytes: bytes.to_vec(),
        });
        self
    }
}

/// `ALERT <kind>: <detail>` then each piece of evidence between BEGIN/END lines.
/// Evidence that did not verify, and details quoting names from the log, may be anything,
/// so control characters (other than newlines in evidence), and the invisible format and
/// bidirectional characters that could hide or reorder text (zero-width spaces, bidi
/// overrides and isolates), are escaped as `\u{..}` rather than sent to a terminal.
impl fmt::Display for Alert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "ALERT {}: {}",
            self.kind.name(),
            Escaped(&self.detail, false)
        )?;
        for evidence in &self.evidence {
            writeln!(f, "-----BEGIN {}-----", evidence.label)?;
            let text = String::from_utf8_lossy(&evidence.bytes);
            write!(f, "{}", Escaped(&text, true))?;
            if !text.ends_with('\n') {
                writeln!(f)?;
            }
            writeln!(f, "-----END {}-----", evidence.label)?;
        }
        Ok(())
    }
}

/// True for the characters an alert escapes: controls, and the Unicode format (Cf) and
/// bidirectional control characters a terminal would not show or would reorder by.
fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{ad}' | '\u{61c}' | '\u{180e}' | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206f}'
            | '\u{feff}' | '\u{fff9}'..='\u{fffb}' | '\u{e0001}' | '\u{e0020}'..='\u{e007f}')
}

/// Text with [`is_hidden`] characters escaped (newlines kept when `newlines`).
struct Escaped<'a>(&'a str, bool);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() && !(self.1 && c == '\n') {
                write!(f, "{}", c.escape_default())?;
            } else if is_hidden(c) && !c.is_control() {
                write!(f, "{}", c.escape_unicode())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod escape_tests {
    use super::*;

    #[test]
    fn bidi_format_and_control_characters_are_escaped() {
        let alert = Alert::new(
            AlertKind::Fork,
            "subject x\u{200b} \u{202e}evil\u{2066}\u{1b}",
        )
        .with("note", "a\u{200b}\nb\u{202d}\u{7}\n".as_bytes());
        let shown = alert.to_string();
        assert!(
            shown.contains("subject x\\u{200b} \\u{202e}evil\\u{2066}\\u{1b}"),
            "{shown}"
        );
        assert!(shown.contains("a\\u{200b}\nb\\u{202d}\\u{7}\n"), "{shown}");
        assert!(
            !shown.chars().any(|c| is_hidden(c) && c != '\n'),
            "{shown:?}"
        );
    }
}
