//! The catalog publication authority's domain: DSSE-signed requests, their admission, the
//! leaves they become, and the catalog state built from those leaves.
//!
//! Flow: [`Submission::parse`] (stateless: envelope, payload, field validation) →
//! [`Submission::verify`] against a [`KeyDirectory`] snapshot (stateless, parallel) →
//! [`Catalog::admit`] in the sequencer (stateful: admin / grant checks; returns the canonical
//! leaf bytes) → [`Catalog::apply`] (the only state transition, also used by replay).
//! [`audit_leaf`] re-derives a leaf from its envelope as a monitor would.
//!
//! No I/O and no clock reads: the acceptance time is passed in and recorded in the leaf.
//! The byte layout of every leaf is specified in `log-format/leaves.md`.
//!
//! Layers, each importing only those above it (no file imports a later layer):
//! 0. `error`: the shared error types.
//! 1. `wire`: byte formats and their validation (canonical JSON, time, DSSE, the field
//!    checks, payloads, evidence reports, policies, decisions, request rules, leaves,
//!    submissions, prepared leaves).
//! 2. `model`: the record types, the [`RecordStore`] port, and the [`Catalog`] state with
//!    its read API and one-record writes.
//! 3. `rules`: authorization, the decisions' gates and the policy checks, in one place.
//! 4. `admit` (the leaf the rules make of a submission; leaf 0; audits) and `apply` (the
//!    state transition of every leaf kind), which do not import each other.
//! 5. `read`: the state as canonical JSON and its digest, entry queries, and the
//!    sourceos-spec mapping.
//!
//! The sub-modules are private: everything used outside `catalog` is re-exported here,
//! grouped by layer, and is reached as `crate::catalog::NAME`.

mod admit;
mod apply;
mod error;
mod model;
mod read;
mod rules;
mod wire;

// Layer 0: errors.
pub use error::{CatalogError, RecordError, Refusal};

// Layer 1: the wire.
pub use wire::blob_intent::{
    BlobIntent, IntentDigest, IntentError, BLOB_INTENT_HEADER, BLOB_INTENT_KIND,
    BLOB_INTENT_PAYLOAD_TYPE, MAX_CLOCK_SKEW_MS, MAX_INTENT_BYTES, MAX_INTENT_WINDOW_MS,
};
pub use wire::canonical::{to_canonical_vec, MAX_SAFE_INTEGER};
pub use wire::decisions::{
    check_nonce, parse_decision, parse_subject_digest, DecisionKind, DecisionPayload, EntryKey,
    NewStatus, PolicySetRequest, PromotionRequest, ReviewRequest, RevokeRequest,
    StatusChangeRequest, Verdict, MAX_COMMENT_CHARS,
};
pub use wire::dsse::{
    decode_base64, encode_base64, pae, sign_envelope, Envelope, EnvelopeSignature, MAX_SIGNATURES,
    PAYLOAD_TYPE,
};
pub use wire::evidence::{
    analyze, analyze_items, pinned_digest, BlobSource, EvidenceFinding, EvidenceReport, NoBlobs,
    ReportShapeError, CYCLONEDX_JSON, IN_TOTO_STATEMENT_V1, IN_TOTO_VULNS, MAX_PROBLEMS_PER_ITEM,
    SLSA_PROVENANCE_V1, SPDX_JSON,
};
pub use wire::json::{parse_value, JsonError};
pub use wire::leaf::{
    leaf_dedup_key, DecisionAdmission, DecisionLeaf, GenesisKind, GenesisLeaf, GrantAdmission,
    GrantLeaf, Leaf, LeafError, PublicationAdmission, PublicationKind, PublicationLeaf,
    StateCommitmentKind, StateCommitmentLeaf, MAX_LEAF_BYTES, RULES_VERSION,
};
pub use wire::payload::{
    prefix_matches, AgentplaneRefs, ApiVersion, ArtifactRef, CatalogPublicationRequest, DigestSet,
    EvidenceItem, PublicationRequestKind, PublisherGrantKind, PublisherGrantRequest, Role, Subject,
    ANY_CHANNEL, API_VERSION, MAX_EVIDENCE, MAX_GRANT_ITEMS, MAX_URI_CHARS,
};
pub use wire::policy::{
    ChannelPolicy, Policy, AGENTPLANE_REF_NAMES, MAX_APPROVALS, MAX_CHANNELS, MAX_REQUIRED_TYPES,
};
pub use wire::prepare::PreparedLeaf;
pub use wire::request::{
    parse_grant_request, parse_outside_payload, parse_publication_request, parse_request_payload,
    RequestPayload,
};
pub use wire::severity::Severity;
pub use wire::submission::{KeyDirectory, Submission, SubmissionKind, Verified, MAX_KEYID_CHARS};
pub use wire::time::{format_rfc3339_ms, parse_rfc3339_ms, MAX_RFC3339_MS};
pub use wire::validate::{
    check_catalog_ref, check_channel, check_evidence_type, check_media_type, check_sha256,
    check_token, check_vkey, is_forbidden_char, FieldError, Problems, MAX_PROBLEMS, MAX_REF_CHARS,
    MAX_VKEY_CHARS,
};

// Layer 2: the model.
pub use model::entry::{
    entry_local_id, fold, key_name, DecisionRecord, EntryAction, EntryRecord, EntryStatus,
    EntryView,
};
pub use model::records::{GrantRecord, PolicyRecord, PublicationRecord, RevocationRecord};
pub use model::snapshot::AdminState;
pub use model::state::Catalog;
pub use model::store::{
    KeyValue, MemoryStore, Put, RecordStore, Records, Scan, SnapshotChunk, Space,
};

// Layer 3: the rules.
pub use rules::policy::{check_evidence, check_publication, EvidenceFacts};
pub use rules::roles::{MAX_ADMINS, MAX_ORIGIN_CHARS};

// Layer 4: admission and apply.
pub use admit::audit_leaf;
pub use apply::Effect;

// Layer 5: the read side.
pub use read::query::{EntryPage, EntryQuery, MAX_PAGE, MAX_SCAN};
pub use read::spec::{
    catalog_entry, evidence_bundle, CatalogEntry, EvidenceBundle, SpecPromotion, BUNDLE_URN,
    ENTRY_URN, SPEC_VERSION,
};
pub use read::views::StateDigester;
