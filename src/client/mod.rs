//! The client side: one [`Authority`] interface to the catalog publication authority,
//! and what is built on talking to it.
//!
//! - `authority`: the [`Authority`] trait (one method per request a client makes), the
//!   typed answers, and [`submit_verified`] (submit, then check the receipt offline);
//! - `remote`: [`HttpAuthority`], the typed HTTP client; every path it asks for comes from
//!   [`crate::http::routes`], the table the server's router mounts;
//! - `local`: [`LocalAuthority`], a local log in a data directory (`--data DIR`), opened
//!   once, admitting with the same code the server runs;
//! - `loadgen`: driving a server with signed publications and measuring it;
//! - `monitor`: following, proving, auditing and watching a log;
//! - `plot`: the load sweep's SVG.
//!
//! Receipt verification itself is offline and lives in [`crate::receipt`].
//!
//! May import `http`, `log` and `storage` (the local authority only), `catalog` (through
//! its root), `receipt`, `note`, `tiles` and `merkle`; never `api` or `cli`.

mod authority;
pub mod loadgen;
mod local;
pub mod monitor;
pub mod plot;
mod remote;

pub use authority::{
    submit_verified, upload_intent, Authority, BlobPut, LogInfo, PolicyInForce, Receipted, Reply,
};
pub use local::{LocalAuthority, LocalError};
pub use remote::{refused, submission_route, HttpAuthority};

use crate::http::HttpError;
use crate::receipt::{Receipt, ReceiptError, VerifiedReceipt};

/// A client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The exchange failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The authority refused, with its problem details.
    #[error("server refused with {status}: {detail}")]
    Refused {
        /// HTTP status (for a local log, the status a server would have answered).
        status: u16,
        /// The problem's detail (or the raw body).
        detail: String,
        /// Every listed problem.
        errors: Vec<String>,
    },
    /// The authority answered with a receipt that does not parse or verify.
    #[error("the authority's receipt does not verify: {0}")]
    BadReceipt(#[from] ReceiptError),
    /// A successful answer that is not what the route returns.
    #[error("reading {route}: {reason}")]
    Unreadable {
        /// The path asked for.
        route: String,
        /// What was wrong with the answer.
        reason: String,
    },
    /// The local log or its stores failed.
    #[error(transparent)]
    Local(#[from] LocalError),
}

/// The outcome of a submission whose receipt verified.
#[derive(Debug, Clone)]
pub struct Published {
    /// The receipt, as received.
    pub receipt: Receipt,
    /// What verifying it established.
    pub verified: VerifiedReceipt,
    /// The request was already in the log (HTTP 200 rather than 201).
    pub duplicate: bool,
}
