//! Request bodies with a hard size limit (every endpoint that buffers a body, the
//! catalog API's and the witness's alike).
//!
//! Owns the size checks; may import only [`super::problem`].

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::problem::Problem;

/// The declared `Content-Length`, if any; a value that is not a number is a 400.
pub fn declared_length(headers: &HeaderMap) -> Result<Option<u64>, Problem> {
    headers
        .get(header::CONTENT_LENGTH)
        .map(|length| {
            length
                .to_str()
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| Problem::bad_request("Content-Length is not a number"))
        })
        .transpose()
}

/// Reads at most `max` bytes; a declared or actual larger body is a 413, so a hostile
/// client can never make the server buffer more than `max`.
pub async fn read_limited(headers: &HeaderMap, body: Body, max: usize) -> Result<Bytes, Problem> {
    let too_large = || Problem::too_large(format!("request bodies are limited to {max} bytes"));
    if declared_length(headers)?.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    match Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(e) => Err(Problem::bad_request(format!("reading the body: {e}"))),
    }
}
