//! HTTP plumbing shared by everything that speaks HTTP: the catalog API (`api`), its
//! client (`client`), the log's witness workers (`log::witnessing`) and the witness
//! (`witness::server`).
//!
//! - `client`: a small keep-alive HTTP/1.1 client bound to one base URL, with a response
//!   size limit;
//! - `body`: reading request bodies with a hard size limit;
//! - `problem`: RFC 9457 problem+json error answers;
//! - [`forwarded`]: the client behind a trusted proxy (RFC 7239 `Forwarded`);
//! - [`server`]: serving a router with connection limits and a shutdown deadline;
//! - [`routes`]: every route of the catalog API, shared by the server's router and the
//!   client so the two cannot drift.
//!
//! May import nothing of the crate: it sits below the engine so that the log and the
//! witness can use it without reaching up into `api` or `client`. Mapping domain errors to
//! a [`Problem`] is done by their users.

mod body;
mod client;
pub mod forwarded;
mod problem;
pub mod routes;
pub mod server;

pub use body::{declared_length, read_limited};
pub use client::{HttpClient, HttpError, HttpResponse, MAX_RESPONSE_BYTES};
pub use problem::{Problem, PROBLEM_JSON};
