//! The catalog browser: read-only HTML pages for release reviewers and consumers,
//! rendered on the server with `maud` (ADR 0007). No JavaScript at all: every page works
//! with scripting off, and the Content-Security-Policy forbids script anyway.
//!
//! - `search` (`/`): entries by subject name or digest, target ref, channel and status,
//!   paginated with the same resumable tokens as `/v1/catalog/entries`;
//! - `entry` (`/browse/entries/<id>`): one entry's history, evidence, analysis, decision
//!   timeline (each linking to its receipt) and the policy that applied;
//! - `log` (`/browse/log`): tree size, the checkpoint and its age, witness cosignatures,
//!   links to the tiles;
//! - `layout`: the frame, the security headers, the error page and the stylesheet.
//!
//! Bounded like the JSON reads: catalog reads share [`super::catalog::ReadWork`]'s slots
//! (503 when saturated), a search examines at most [`crate::catalog::MAX_SCAN`] entries
//! and shows [`search::PAGE`] of them, an entry page shows at most
//! [`entry::MAX_TIMELINE`] decisions. Hostile query parameters get a 400 page.
//!
//! The search and entry pages are generic over what they read (`catalog::CatalogReads`,
//! [`EntryPageReads`]): a frontend serves them from its projection of the log, as the
//! holder serves them from its log (ADR 0004, last addendum). The log page reads the
//! holder's witnessing state and is the holder's alone.
//!
//! May import what `api` may; its files import only `layout` (and `super`).

mod entry;
mod layout;
mod log;
mod search;

pub use entry::{entry, EntryPageReads};
pub use layout::CSP;
pub use log::log;
pub use search::search;

use axum::response::Response;

/// `GET /browse/style.css`.
pub async fn style() -> Response {
    layout::style_response()
}
