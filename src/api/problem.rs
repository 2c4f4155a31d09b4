//! The domain's errors as problem+json answers: admission refusals, submission errors and
//! read errors each map onto a [`Problem`] (defined in `http`, which cannot see them).
//!
//! May import `http`, `catalog` and `log`.

use axum::http::StatusCode;

use crate::catalog::Refusal;
use crate::http::Problem;
use crate::log::reader::ReadError;
use crate::log::SubmitError;

impl From<Refusal> for Problem {
    fn from(refusal: Refusal) -> Problem {
        match refusal {
            Refusal::Malformed(detail) => Problem::bad_request(detail),
            Refusal::Invalid(errors) => Problem::invalid(errors),
            Refusal::Forbidden(detail) => {
                Problem::new(StatusCode::FORBIDDEN, "forbidden", "Not authorized", detail)
            }
            Refusal::Conflict(detail) => {
                Problem::new(StatusCode::CONFLICT, "conflict", "Stale decision", detail)
            }
            Refusal::TooLarge(detail) => Problem::too_large(detail),
            Refusal::Internal(detail) => Problem::internal(detail),
        }
    }
}

impl From<SubmitError> for Problem {
    fn from(error: SubmitError) -> Problem {
        match error {
            SubmitError::Refused(refusal) => refusal.into(),
            SubmitError::Unavailable(detail) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Log unavailable",
                detail,
            ),
            SubmitError::Internal(detail) => Problem::internal(detail),
        }
    }
}

impl From<ReadError> for Problem {
    fn from(error: ReadError) -> Problem {
        match error {
            ReadError::NotFound(detail) => Problem::not_found(detail),
            ReadError::Storage(e) => Problem::internal(e.to_string()),
            ReadError::Internal(detail) => Problem::internal(detail),
        }
    }
}
