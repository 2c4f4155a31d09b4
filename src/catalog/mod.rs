//! The catalog publication authority's domain: DSSE-signed requests, their admission, the
//! leaves they become, and the catalog state projected from those leaves.
//!
//! Flow: [`Submission::parse`] (stateless: envelope, payload, field validation) →
//! [`Submission::verify`] against a [`KeyDirectory`] snapshot (stateless, parallel) →
//! [`Catalog::admit`] in the sequencer (stateful: admin / grant checks; returns the canonical
//! leaf bytes) → [`Catalog::apply`] (the only state transition, also used by replay).
//! [`audit_leaf`] re-derives a leaf from its envelope as a monitor would.
//!
//! No I/O and no clock reads: the acceptance time is passed in and recorded in the leaf.
//! The byte layout of every leaf is specified in `log-format/leaves.md`.

pub mod admission;
mod apply_decision;
pub mod canonical;
mod decision_leaf;
pub mod decisions;
pub mod dsse;
pub mod entry;
pub mod error;
pub mod evidence;
mod gates;
pub mod leaf;
mod lookup;
pub mod policy;
pub mod prepare;
pub mod projection;
pub mod query;
pub mod records;
pub mod request;
pub mod state;
pub mod time;

pub use admission::{audit_leaf, KeyDirectory, Submission, SubmissionKind, Verified};
pub use decisions::{DecisionKind, DecisionPayload, NewStatus, Verdict};
pub use dsse::{pae, sign_envelope, Envelope, EnvelopeSignature, MAX_SIGNATURES, PAYLOAD_TYPE};
pub use entry::{EntryStatus, EntryView};
pub use error::{CatalogError, Refusal};
pub use evidence::{analyze, BlobSource, EvidenceFinding, EvidenceReport, NoBlobs, Severity};
pub use leaf::{leaf_dedup_key, Leaf, MAX_LEAF_BYTES};
pub use policy::{ChannelPolicy, Policy};
pub use prepare::PreparedLeaf;
pub use records::{MemoryStore, Put, RecordError, RecordStore, Records, Scan, Space};
pub use request::{
    parse_grant_request, parse_publication_request, AgentplaneRefs, ApiVersion, ArtifactRef,
    CatalogPublicationRequest, DigestSet, EvidenceItem, PublicationRequestKind, PublisherGrantKind,
    PublisherGrantRequest, RequestPayload, Role, Subject, API_VERSION,
};
pub use state::{Catalog, Effect, GrantRecord, PolicyRecord, PublicationRecord, RevocationRecord};
