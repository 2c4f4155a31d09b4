//! srcos-catalog: the catalog publication authority for SourceOS/SociOS build evidence.
//!
//! An append-only transparency log of every publication: build pipelines submit
//! DSSE-signed publication requests, the authority checks them, appends accepted ones
//! as leaves of an RFC 6962 Merkle log, and signs a C2SP checkpoint. The signed
//! inclusion proof is the publisher's receipt, verifiable offline.
//!
//! Modules, with dependencies pointing down the list:
//! - [`merkle`]: RFC 6962/9162 hashing and proofs (pure).
//! - [`note`]: C2SP signed notes, checkpoints, cosignatures, tlog-proof (pure).
//! - [`tiles`]: C2SP tlog-tiles addressing (pure).
//! - [`receipt`]: the receipt format and its offline verification (pure).
//! - [`catalog`]: the domain: requests, rules, admission, leaves and the catalog state
//!   projected from them (pure; layered wire → model → rules → admit/apply → read).
//! - [`state`]: the verifiable catalog state: a sparse Merkle map of the catalog, its
//!   lookup proofs and their verifier (pure; `log-format/state.md`).
//! - [`http`]: HTTP plumbing shared by server, client and witness: a small client, body
//!   limits, problem+json errors, and the catalog API's route table.
//! - [`storage`]: the storage ports (tile store, checkpoint lock, lookup index) and their
//!   drivers (POSIX, memory with fault injection); records on disk; evidence blobs.
//! - [`keyfile`]: key files on disk.
//! - [`openapi`]: the OpenAPI documents of both servers and the JSON Schemas they cite.
//! - [`progress`]: progress of long work, reported to a sink the command line installs.
//! - [`telemetry`]: Prometheus metrics: names, the recorder, hot-path handles, the
//!   per-route HTTP middleware (imports nothing of the crate).
//! - [`reports`]: socios reports trees → publication requests.
//! - [`log`]: sequencing, integration, signing, recovery and the read side.
//! - [`api`]: the HTTP API.
//! - [`client`]: one `Authority` interface, over HTTP or a local log; the monitor.
//! - [`witness`]: a C2SP tlog-witness that cosigns other logs' checkpoints.
//! - [`cli`]: the command line.

// Denied rather than forbidden for one exception: the read-only mapping of a verified
// blob file as the body of its upload (`storage::blobs::object::mapped_body`, ADR 0012
// "Upload memory"), allowed on that one function alone, with its safety argument.
#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

pub mod api;
pub mod catalog;
pub mod cli;
pub mod client;
pub mod http;
pub mod keyfile;
pub mod log;
pub mod merkle;
pub mod note;
pub mod openapi;
pub mod progress;
pub mod receipt;
pub mod reports;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod tiles;
pub mod witness;
