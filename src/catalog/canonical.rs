//! RFC 8785 (JSON Canonicalization Scheme) encoding via `serde_jcs`.
//!
//! Numbers are encoded as IEEE 754 doubles (RFC 8785 §3.2.2.3), so every integer the catalog
//! writes is bounded by [`MAX_SAFE_INTEGER`] to round-trip exactly.

use serde::Serialize;

use super::error::CatalogError;

/// The largest integer RFC 8785 encodes exactly (2^53 - 1).
pub const MAX_SAFE_INTEGER: u64 = 9_007_199_254_740_991;

/// Encodes `value` as RFC 8785 canonical JSON bytes.
pub fn to_canonical_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CatalogError> {
    serde_jcs::to_vec(value).map_err(|e| CatalogError::Encoding(e.to_string()))
}

/// Re-encodes arbitrary JSON bytes in RFC 8785 canonical form.
pub fn canonicalize_json(json: &[u8]) -> Result<Vec<u8>, CatalogError> {
    let value: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| CatalogError::Encoding(e.to_string()))?;
    to_canonical_vec(&value)
}

/// True if `bytes` is exactly the canonical encoding of `value`.
pub fn is_canonical<T: Serialize + ?Sized>(value: &T, bytes: &[u8]) -> bool {
    matches!(to_canonical_vec(value), Ok(c) if c == bytes)
}
