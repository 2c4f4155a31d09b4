//! The catalog's shared error types: [`Refusal`] for submissions the authority turns away,
//! [`CatalogError`] for leaves the catalog state cannot apply, [`RecordError`] for a
//! record store that fails.
//!
//! The bottom layer of `catalog`: it imports nothing from it, and every layer may import it.
//! Errors that belong to one check (a field's syntax, a leaf's shape) live beside the check.

/// An error of the record store (see [`super::RecordStore`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The backend failed (I/O, database).
    #[error("record store: {0}")]
    Backend(String),
    /// A stored key or value does not have the shape it must have.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

/// Why a submission is refused; the HTTP layer maps variants to statuses and problem+json bodies.
///
/// | variant | status | meaning |
/// |---|---|---|
/// | `Malformed` | 400 | not JSON, not an envelope, bad base64 |
/// | `Invalid` | 422 | schema or field problems, every one listed |
/// | `Forbidden` | 403 | unknown key, bad signature, no grant, outside the grant, not an admin |
/// | `Conflict` | 409 | a stale decision: a newer one by the same signer is in force |
/// | `TooLarge` | 413 | the leaf would exceed 65535 bytes |
/// | `Internal` | 500 | the state could not be read (record store failure) |
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// 400: the body is not JSON, not a DSSE envelope, or holds bad base64.
    #[error("malformed submission: {0}")]
    Malformed(String),
    /// 422: schema or field problems, every one listed as `"<json pointer>: <problem>"`.
    #[error("invalid submission: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// 403: unknown key, bad signature, no grant, target or channel outside the grant, not an admin.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// 409: a decision older than one already in force (the message names the newer leaf).
    #[error("conflict: {0}")]
    Conflict(String),
    /// 413: the leaf this submission would become exceeds 65535 bytes.
    #[error("too large: {0}")]
    TooLarge(String),
    /// 500: the authority could not read its own state (a record store failure); the
    /// submission may be retried.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<RecordError> for Refusal {
    fn from(e: RecordError) -> Refusal {
        Refusal::Internal(e.to_string())
    }
}

impl Refusal {
    /// The HTTP status this refusal maps to (400, 422, 403 or 413).
    pub fn http_status(&self) -> u16 {
        match self {
            Refusal::Malformed(_) => 400,
            Refusal::Invalid(_) => 422,
            Refusal::Forbidden(_) => 403,
            Refusal::Conflict(_) => 409,
            Refusal::TooLarge(_) => 413,
            Refusal::Internal(_) => 500,
        }
    }

    /// A short, stable title for a problem+json body.
    pub fn title(&self) -> &'static str {
        match self {
            Refusal::Malformed(_) => "malformed submission",
            Refusal::Invalid(_) => "invalid submission",
            Refusal::Forbidden(_) => "forbidden",
            Refusal::Conflict(_) => "stale decision",
            Refusal::TooLarge(_) => "entry too large",
            Refusal::Internal(_) => "internal error",
        }
    }

    /// Every problem as a separate message (one for all variants but `Invalid`).
    pub fn problems(&self) -> Vec<String> {
        match self {
            Refusal::Invalid(list) => list.clone(),
            Refusal::Malformed(m)
            | Refusal::Forbidden(m)
            | Refusal::Conflict(m)
            | Refusal::TooLarge(m)
            | Refusal::Internal(m) => vec![m.clone()],
        }
    }
}

/// Errors of the catalog state: a leaf that cannot be applied, or genesis parameters
/// that cannot form a valid authority.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// `apply` was called with an index other than `applied_size()`.
    #[error("leaf {got} applied out of order: the catalog expects leaf {expected}")]
    OutOfOrder {
        /// The index the catalog expects next.
        expected: u64,
        /// The index that was passed.
        got: u64,
    },
    /// The leaf bytes do not parse as a canonical v1 leaf.
    #[error("leaf {index} is malformed: {reason}")]
    MalformedLeaf {
        /// Index of the offending leaf.
        index: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The leaf parses but breaks a catalog invariant (second genesis, grant by a non-admin, ...).
    #[error("leaf {index} breaks a catalog invariant: {reason}")]
    Invariant {
        /// Index of the offending leaf.
        index: u64,
        /// Which invariant, and how.
        reason: String,
    },
    /// `genesis_leaf` was given parameters that cannot form a valid authority.
    #[error("invalid genesis: {0}")]
    InvalidGenesis(String),
    /// Canonical JSON encoding failed (never expected for the catalog's own types).
    #[error("canonical JSON encoding failed: {0}")]
    Encoding(String),
    /// The record store failed. Raised by `apply` before anything changed, but it means
    /// the store is broken: the log stops taking writes (see the sequencer).
    #[error(transparent)]
    Records(#[from] RecordError),
}
