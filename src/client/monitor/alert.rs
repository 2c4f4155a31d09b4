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
/// Evidence that did not verify may be anything, so control characters (other than
/// newlines) are escaped rather than sent to a terminal; verified notes have none.
impl fmt::Display for Alert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "ALERT {}: {}", self.kind.name(), self.detail)?;
        for evidence in &self.evidence {
            writeln!(f, "-----BEGIN {}-----", evidence.label)?;
            let text = String::from_utf8_lossy(&evidence.bytes);
            for c in text.chars() {
                if c.is_control() && c != '\n' {
                    write!(f, "{}", c.escape_default())?;
                } else {
                    write!(f, "{c}")?;
                }
            }
            if !text.ends_with('\n') {
                writeln!(f)?;
            }
            writeln!(f, "-----END {}-----", evidence.label)?;
        }
        Ok(())
    }
}
