//! The request payload types a signer puts in a DSSE envelope: `CatalogPublicationRequest`
//! v1 and `PublisherGrant`, with the small values they are made of (digests, subjects,
//! evidence and agentplane references, roles), and the coverage rule of a grant
//! ([`prefix_matches`]).
//!
//! Types only: their validation is `request.rs`. May import `note` (verifier keys) and
//! nothing of `catalog`.

use serde::{Deserialize, Deserializer, Serialize};

use crate::note::{NoteError, Verifier};

/// The `apiVersion` of every v1 catalog object.
pub const API_VERSION: &str = "catalog.srcos.ai/v1";
/// At most this many evidence items per request.
pub const MAX_EVIDENCE: usize = 64;
/// At most this many target prefixes, and this many channels, per grant.
pub const MAX_GRANT_ITEMS: usize = 32;
/// Longest evidence or agentplane URI, in characters.
pub const MAX_URI_CHARS: usize = 2048;
/// The channel wildcard in grants.
pub const ANY_CHANNEL: &str = "*";

/// `"apiVersion": "catalog.srcos.ai/v1"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApiVersion {
    /// `catalog.srcos.ai/v1`
    #[serde(rename = "catalog.srcos.ai/v1")]
    V1,
}

/// `"kind": "CatalogPublicationRequest"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PublicationRequestKind {
    /// The only value.
    CatalogPublicationRequest,
}

/// `"kind": "PublisherGrant"` (the grant request payload and the grant leaf).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PublisherGrantKind {
    /// The only value.
    PublisherGrant,
}

/// A digest set; v1 knows only SHA-256 (64 lowercase hex characters).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestSet {
    /// 64 lowercase hex characters.
    pub sha256: String,
}

impl DigestSet {
    /// A digest set from raw SHA-256 bytes.
    pub fn from_sha256(bytes: &[u8; 32]) -> DigestSet {
        DigestSet {
            sha256: hex::encode(bytes),
        }
    }
}

/// The artifact being published: an image (or other artifact) name and its digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    /// E.g. `quay.io/socios/sourceos-smoke-runner`.
    pub name: String,
    /// The artifact's digest.
    pub digest: DigestSet,
}

/// One evidence reference: typed, content-addressed, never inlined.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EvidenceItem {
    /// Digest of the evidence bytes.
    pub digest: DigestSet,
    /// RFC 6838 media type without parameters, e.g. `application/spdx+json`.
    pub media_type: String,
    /// Size in bytes (at most 2^53 - 1).
    pub size: u64,
    /// Evidence type, e.g. `sbom`, `provenance` (`^[a-z0-9][a-z0-9.-]{0,63}$`).
    #[serde(rename = "type")]
    pub evidence_type: String,
    /// Where the evidence can be fetched.
    pub uri: String,
}

/// A reference to an agentplane artifact, carried by digest, never inlined.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactRef {
    /// Digest of the artifact.
    pub digest: DigestSet,
    /// E.g. `agentplane://run-artifact/<id>`.
    pub uri: String,
}

fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
}

/// agentplane validation/run/replay references; each key is required and may be `null`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AgentplaneRefs {
    /// The agentplane ReplayArtifact, if any.
    #[serde(deserialize_with = "nullable")]
    pub replay_artifact_ref: Option<ArtifactRef>,
    /// The agentplane RunArtifact, if any.
    #[serde(deserialize_with = "nullable")]
    pub run_artifact_ref: Option<ArtifactRef>,
    /// The agentplane ValidationArtifact, if any.
    #[serde(deserialize_with = "nullable")]
    pub validation_artifact_ref: Option<ArtifactRef>,
}

/// The v1 publication request a build pipeline signs (DSSE payload).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CatalogPublicationRequest {
    /// Always `catalog.srcos.ai/v1`.
    pub api_version: ApiVersion,
    /// Always `CatalogPublicationRequest`.
    pub kind: PublicationRequestKind,
    /// What is published.
    pub subject: Subject,
    /// The catalog location, e.g. `sourceos://catalog/images/sourceos-smoke-runner`.
    pub target_catalog_ref: String,
    /// The channel, `^[a-z0-9][a-z0-9-]{0,31}$` (e.g. `dev`, `candidate`, `stable`).
    pub channel: String,
    /// Who asks, e.g. `socios://pipeline/sourceos-build-smoke-runner-image`.
    pub requester_ref: String,
    /// Evidence references (at most 64).
    pub evidence: Vec<EvidenceItem>,
    /// agentplane references.
    pub agentplane_refs: AgentplaneRefs,
}

impl CatalogPublicationRequest {
    /// The subject digest as `sha256:<hex>`.
    pub fn subject_digest(&self) -> String {
        format!("sha256:{}", self.subject.digest.sha256)
    }
}

/// The role a grant confers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// May submit publication requests.
    Publisher,
    /// May review, promote and change the status of entries (never approve its own).
    Reviewer,
}

impl Role {
    /// Every role, in wire form.
    pub const ALL: &'static [&'static str] = &["publisher", "reviewer"];
}

/// The payload an admin signs to authorize a publisher key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PublisherGrantRequest {
    /// Always `catalog.srcos.ai/v1`.
    pub api_version: ApiVersion,
    /// Always `PublisherGrant`.
    pub kind: PublisherGrantKind,
    /// The publisher's verifier key string `name+hex8+base64(0x01||pub)`.
    pub publisher_key: String,
    /// The role granted.
    pub role: Role,
    /// `targetCatalogRef` prefixes the key may publish to (matched on `/` boundaries).
    pub target_prefixes: Vec<String>,
    /// Channels the key may use; `"*"` means any.
    pub channels: Vec<String>,
    /// When the admin issued it (RFC 3339 UTC, milliseconds); optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<String>,
    /// A random value that makes every grant unique (16 to 64 of `[A-Za-z0-9_-]`); optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

impl PublisherGrantRequest {
    /// The publisher's verifier.
    pub fn publisher_verifier(&self) -> Result<Verifier, NoteError> {
        Verifier::from_vkey(&self.publisher_key)
    }

    /// True if one of the prefixes covers `target` (see [`prefix_matches`]).
    pub fn covers_target(&self, target: &str) -> bool {
        prefixes_cover(&self.target_prefixes, target)
    }

    /// True if `channel` is listed or the grant lists `"*"`.
    pub fn covers_channel(&self, channel: &str) -> bool {
        channels_cover(&self.channels, channel)
    }
}

/// Prefix matching on path boundaries: `prefix` covers `target` if they are equal, or if
/// `target` starts with `prefix` and either `prefix` ends in `/` or the next character of
/// `target` is `/`. So `sourceos://catalog/images` and `sourceos://catalog/images/` both cover
/// `sourceos://catalog/images/x`, but `sourceos://catalog/img` does not cover
/// `sourceos://catalog/images`.
pub fn prefix_matches(prefix: &str, target: &str) -> bool {
    match target.strip_prefix(prefix) {
        Some("") => true,
        Some(rest) => prefix.ends_with('/') || rest.starts_with('/'),
        None => false,
    }
}

/// The target rule of a grant: one of its `prefixes` covers `target`.
pub(crate) fn prefixes_cover(prefixes: &[String], target: &str) -> bool {
    prefixes.iter().any(|p| prefix_matches(p, target))
}

/// The channel rule of a grant: `channel` is listed, or `"*"` is.
pub(crate) fn channels_cover(channels: &[String], channel: &str) -> bool {
    channels.iter().any(|c| c == ANY_CHANNEL || c == channel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_on_boundaries() {
        for (prefix, target, covers) in [
            ("s://c/images/", "s://c/images/x", true),
            ("s://c/images", "s://c/images/x", true),
            ("s://c/images/x", "s://c/images/x", true),
            ("s://c/images", "s://c/images/x/y", true),
            ("s://c/img", "s://c/images", false),
            ("s://c/images/x", "s://c/images/xy", false),
            ("s://c/images/", "s://c/other/x", false),
            ("s://c/images/x", "s://c/images", false),
        ] {
            assert_eq!(prefix_matches(prefix, target), covers, "{prefix} {target}");
        }
    }

    #[test]
    fn grant_coverage() {
        let list = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for (channels, channel, covers) in [
            (&["dev"][..], "dev", true),
            (&["dev", "candidate"][..], "candidate", true),
            (&["dev"][..], "stable", false),
            (&["*"][..], "stable", true),
            (&[][..], "dev", false),
        ] {
            assert_eq!(
                channels_cover(&list(channels), channel),
                covers,
                "{channels:?} {channel}"
            );
        }
        let prefixes = list(&["s://c/a", "s://c/b/"]);
        assert!(prefixes_cover(&prefixes, "s://c/b/x"));
        assert!(prefixes_cover(&prefixes, "s://c/a"));
        assert!(!prefixes_cover(&prefixes, "s://c/ab"));
        assert!(!prefixes_cover(&[], "s://c/a"));
    }
}
