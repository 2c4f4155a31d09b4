//! The client side: talking to a catalog server, and checking what it says.
//!
//! Receipt verification itself is offline and lives in [`crate::receipt`]; this module
//! adds the network: submitting signed requests and fetching what the log serves.

pub mod http;
pub mod loadgen;
pub mod monitor;
pub mod plot;

use axum::body::Bytes;

use crate::catalog::Envelope;
use crate::note::Verifier;
use crate::receipt::{Receipt, ReceiptError, VerifiedReceipt};
use http::{HttpClient, HttpError};

/// A client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The exchange failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The server refused, with its problem details.
    #[error("server refused with {status}: {detail}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The problem's detail (or the raw body).
        detail: String,
        /// Every listed problem.
        errors: Vec<String>,
    },
    /// The server answered 2xx with a receipt that does not verify.
    #[error("the server's receipt does not verify: {0}")]
    BadReceipt(#[from] ReceiptError),
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

/// Submits a signed envelope to `path` and verifies the receipt with the log key.
pub async fn submit_envelope(
    client: &HttpClient,
    path: &str,
    envelope: &Envelope,
    log_key: &Verifier,
) -> Result<Published, ClientError> {
    let body = Bytes::from(envelope.to_json());
    let response = client.post(path, "application/json", body).await?;
    if !response.status.is_success() {
        return Err(refused(response.status.as_u16(), &response.body));
    }
    let receipt = Receipt::from_json(&response.body)?;
    let verified = receipt.verify(log_key)?;
    Ok(Published {
        receipt,
        verified,
        duplicate: response.status.as_u16() == 200,
    })
}

/// Turns an error answer into a [`ClientError::Refused`], reading problem+json if present.
pub fn refused(status: u16, body: &[u8]) -> ClientError {
    #[derive(serde::Deserialize)]
    struct ProblemBody {
        detail: Option<String>,
        #[serde(default)]
        errors: Vec<String>,
    }
    match serde_json::from_slice::<ProblemBody>(body) {
        Ok(problem) => ClientError::Refused {
            status,
            detail: problem.detail.unwrap_or_default(),
            errors: problem.errors,
        },
        Err(_) => ClientError::Refused {
            status,
            detail: String::from_utf8_lossy(body).chars().take(500).collect(),
            errors: Vec::new(),
        },
    }
}
