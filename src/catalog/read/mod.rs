//! The read side: what the catalog state looks like from outside, as of a tree size.
//!
//! - `views`: the whole state as canonical JSON, and its digest;
//! - `query`: paginated entry queries;
//! - `spec`: the sourceos-spec `CatalogEntry` and `EvidenceBundle` of an entry.
//!
//! Layer 5 of `catalog`, the top: may import `error`, `wire` and `model` (the state's read
//! API). Its files do not import each other.

pub mod query;
pub mod spec;
pub mod views;
