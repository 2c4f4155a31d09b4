//! The wire: every byte format the catalog reads or writes, and its validation. Nothing
//! here reads the catalog state.
//!
//! Bottom up (each file may import only those above it):
//! - `canonical` (RFC 8785), `time` (RFC 3339 milliseconds), `dsse` (envelopes, base64);
//! - `validate`: the JSON validation kit and the syntax checks of single fields;
//! - `payload`: the request payload types; `severity`: the vulnerability scale;
//! - `evidence`: what uploaded evidence blobs say (the report a `Publication` leaf records),
//!   read by the bounded-memory readers of `evidence_shapes` (which
//!   `evidence` imports, never the other way);
//! - `policy`: the channel policy type and its defaults;
//! - `decisions`: the decision payloads;
//! - `request`: the request rules (validation walk, parsing any payload);
//! - `leaf`: the leaf types and their canonical layout;
//! - `submission`: a DSSE submission parsed and its signatures verified;
//! - `blob_intent`: the signed upload intent of an evidence blob (`log-format/blobs.md`);
//! - `prepare`: a leaf parsed and checked on its own, ready to apply.
//!
//! Layer 1 of `catalog`: may import `catalog::error`, and `note` for keys.

pub mod blob_intent;
pub mod canonical;
pub mod decisions;
pub mod dsse;
pub mod evidence;
mod evidence_shapes;
pub mod json;
pub mod leaf;
pub mod payload;
pub mod policy;
pub mod prepare;
pub mod request;
pub mod severity;
pub mod submission;
pub mod time;
pub mod validate;
