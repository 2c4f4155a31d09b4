//! The payloads of the authority's decisions, each a signed DSSE request like a
//! publication: `PolicySet` and `PublisherRevoke` (admins), `Review`, `Promotion` and
//! `StatusChange` (reviewers; admins too for the last two).
//!
//! Parsing is strict (unknown members refused); every field problem found after the
//! structure parses is listed. The exact shapes are in `log-format/leaves.md` §9 and
//! `schemas/decision-requests.v1.schema.json`.
//!
//! May import, from `catalog`: `error`, and in `wire` the layers below it (`validate`,
//! `payload`, `policy`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::payload::{ApiVersion, DigestSet};
use super::policy::{ChannelPolicy, Policy};
use super::time::parse_rfc3339_ms;
use super::validate::{
    check_catalog_ref, check_channel, check_sha256, check_token, check_vkey, shorten, FieldError,
    MAX_REF_CHARS,
};
use crate::catalog::error::Refusal;

/// Longest free-text comment or reason, in characters.
pub const MAX_COMMENT_CHARS: usize = 1024;

/// The `kind` of a decision payload (and of its leaf).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DecisionKind {
    /// An admin replaces the channel policy.
    PolicySet,
    /// An admin revokes every grant of a key, for good.
    PublisherRevoke,
    /// A reviewer approves or denies an entry for a channel.
    Review,
    /// An entry moves to the next channel.
    Promotion,
    /// An entry is superseded, restricted, archived or revoked.
    StatusChange,
}

impl DecisionKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::PolicySet => "PolicySet",
            DecisionKind::PublisherRevoke => "PublisherRevoke",
            DecisionKind::Review => "Review",
            DecisionKind::Promotion => "Promotion",
            DecisionKind::StatusChange => "StatusChange",
        }
    }

    /// The kind named `s`, if it is a decision kind.
    pub fn from_name(s: &str) -> Option<DecisionKind> {
        [
            DecisionKind::PolicySet,
            DecisionKind::PublisherRevoke,
            DecisionKind::Review,
            DecisionKind::Promotion,
            DecisionKind::StatusChange,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// `PolicySet`: the whole policy, replacing the one in force.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicySetRequest {
    /// Always `catalog.srcos.ai/v1`.
    pub api_version: ApiVersion,
    /// Always `PolicySet`.
    pub kind: DecisionKind,
    /// When the signer issued it (RFC 3339 UTC, milliseconds); required on new decisions
    /// since rules version 2 (`log-format/leaves.md` §9.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<String>,
    /// A random value that makes every act unique (see [`check_nonce`]); required on new
    /// decisions since rules version 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Channel name → policy.
    pub channels: BTreeMap<String, ChannelPolicy>,
    /// The freshness window in seconds (see [`Policy::decision_window_seconds`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_window_seconds: Option<u64>,
}

impl PolicySetRequest {
    /// The policy it sets.
    pub fn policy(&self) -> Policy {
        Policy {
            decision_window_seconds: self.decision_window_seconds,
            channels: self.channels.clone(),
        }
    }
}

/// `PublisherRevoke`: the key loses every grant and can never be granted again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RevokeRequest {
    /// Always `catalog.srcos.ai/v1`.
    pub api_version: ApiVersion,
    /// Always `PublisherRevoke`.
    pub kind: DecisionKind,
    /// When the signer issued it (RFC 3339 UTC, milliseconds); required on new decisions
    /// since rules version 2 (`log-format/leaves.md` §9.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<String>,
    /// A random value that makes every act unique (see [`check_nonce`]); required on new
    /// decisions since rules version 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The revoked key's verifier key string.
    pub key: String,
    /// Why (free text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Which catalog entry a decision is about: the target and the subject digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EntryKey {
    /// The entry's `targetCatalogRef`.
    pub target_catalog_ref: String,
    /// The subject digest.
    pub subject_digest: DigestSet,
}

/// A review's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Counts towards the channel's approvals.
    Approve,
    /// Blocks the channel until the same reviewer approves.
    Deny,
}

/// `Review`: a reviewer's verdict on an entry for one channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReviewRequest {
    /// Always `catalog.srcos.ai/v1`.
    pub api_version: ApiVersion,
    /// Always `Review`.
    pub kind: DecisionKind,
    /// When the signer issued it (RFC 3339 UTC, milliseconds); required on new decisions
    /// since rules version 2 (`log-format/leaves.md` §9.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<String>,
    /// A random value that makes every act unique (see [`check_nonce`]); required on new
    /// decisions since rules version 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The entry.
    pub entry: EntryKey,
    /// The reviewer's key id (`name+hex8`); it must be the signer. It makes two reviewers'
    /// identical verdicts two different requests (requests are deduplicated by payload).
    pub reviewer: String,
    /// The channel the verdict is for (the current one, or one to promote into).
    pub channel: String,
    /// Approve or deny.
    pub verdict: Verdict,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// `Promotion`: move an entry from one channel to the next.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PromotionRequest {
    /// Always `catalog.srcos.ai/v1`.
    pub api_version: ApiVersion,
    /// Always `Promotion`.
    pub kind: DecisionKind,
    /// When the signer issued it (RFC 3339 UTC, milliseconds); required on new decisions
    /// since rules version 2 (`log-format/leaves.md` §9.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<String>,
    /// A random value that makes every act unique (see [`check_nonce`]); required on new
    /// decisions since rules version 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The entry.
    pub entry: EntryKey,
    /// The channel it is in now.
    pub from_channel: String,
    /// The channel it moves to.
    pub to_channel: String,
}

/// The statuses a `StatusChange` may set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NewStatus {
    /// A newer artifact replaces it.
    Superseded,
    /// Not to be used without further review.
    Restricted,
    /// Kept for the record only.
    Archived,
    /// Withdrawn for cause (admins only; final).
    Revoked,
}

impl NewStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            NewStatus::Superseded => "superseded",
            NewStatus::Restricted => "restricted",
            NewStatus::Archived => "archived",
            NewStatus::Revoked => "revoked",
        }
    }
}

/// `StatusChange`: set an entry's status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StatusChangeRequest {
    /// Always `catalog.srcos.ai/v1`.
    pub api_version: ApiVersion,
    /// Always `StatusChange`.
    pub kind: DecisionKind,
    /// When the signer issued it (RFC 3339 UTC, milliseconds); required on new decisions
    /// since rules version 2 (`log-format/leaves.md` §9.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<String>,
    /// A random value that makes every act unique (see [`check_nonce`]); required on new
    /// decisions since rules version 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The entry.
    pub entry: EntryKey,
    /// The new status.
    pub status: NewStatus,
    /// Why (free text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Any decision payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecisionPayload {
    /// `PolicySet`.
    PolicySet(PolicySetRequest),
    /// `PublisherRevoke`.
    Revoke(RevokeRequest),
    /// `Review`.
    Review(ReviewRequest),
    /// `Promotion`.
    Promotion(PromotionRequest),
    /// `StatusChange`.
    StatusChange(StatusChangeRequest),
}

impl DecisionPayload {
    /// Its kind.
    pub fn kind(&self) -> DecisionKind {
        match self {
            DecisionPayload::PolicySet(_) => DecisionKind::PolicySet,
            DecisionPayload::Revoke(_) => DecisionKind::PublisherRevoke,
            DecisionPayload::Review(_) => DecisionKind::Review,
            DecisionPayload::Promotion(_) => DecisionKind::Promotion,
            DecisionPayload::StatusChange(_) => DecisionKind::StatusChange,
        }
    }

    /// Its signed freshness: `issuedAt` and `nonce`, each if present.
    pub fn freshness(&self) -> (Option<&str>, Option<&str>) {
        let (i, n) = match self {
            DecisionPayload::PolicySet(r) => (&r.issued_at, &r.nonce),
            DecisionPayload::Revoke(r) => (&r.issued_at, &r.nonce),
            DecisionPayload::Review(r) => (&r.issued_at, &r.nonce),
            DecisionPayload::Promotion(r) => (&r.issued_at, &r.nonce),
            DecisionPayload::StatusChange(r) => (&r.issued_at, &r.nonce),
        };
        (i.as_deref(), n.as_deref())
    }

    /// The entry it is about, for Review, Promotion and StatusChange.
    pub fn entry(&self) -> Option<&EntryKey> {
        match self {
            DecisionPayload::Review(r) => Some(&r.entry),
            DecisionPayload::Promotion(p) => Some(&p.entry),
            DecisionPayload::StatusChange(s) => Some(&s.entry),
            _ => None,
        }
    }
}

fn strict<T: for<'de> Deserialize<'de>>(json: &[u8]) -> Result<T, Refusal> {
    serde_json::from_slice(json).map_err(|e| Refusal::Invalid(vec![format!("/: {e}")]))
}

fn check_kind(p: &mut Vec<String>, got: DecisionKind, want: DecisionKind) {
    if got != want {
        p.push(format!("/kind: must be {:?}", want.as_str()));
    }
}

fn check_text(p: &mut Vec<String>, at: &str, text: &Option<String>) {
    if let Some(t) = text {
        let n = t.chars().count();
        if n > MAX_COMMENT_CHARS {
            p.push(format!(
                "{at}: at most {MAX_COMMENT_CHARS} characters, found {n}"
            ));
        }
    }
}

/// Shortest and longest nonce, in characters.
pub const NONCE_CHARS: std::ops::RangeInclusive<usize> = 16..=64;

/// A nonce: 16 to 64 characters of `[A-Za-z0-9_-]` (hex or unpadded base64url; 16 random
/// bytes are 32 hex or 22 base64url characters).
pub fn check_nonce(s: &str) -> Result<(), FieldError> {
    let ok = NONCE_CHARS.contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(FieldError::NotNonce(shorten(s)))
    }
}

/// Checks the freshness members that are present (their presence is a rule of the
/// sequencer's rules version, not of the wire: old leaves have none).
pub fn check_freshness(p: &mut Vec<String>, issued_at: Option<&str>, nonce: Option<&str>) {
    if let Some(t) = issued_at {
        if parse_rfc3339_ms(t).is_none() {
            p.push(format!(
                "/issuedAt: must be RFC 3339 UTC with milliseconds (YYYY-MM-DDTHH:MM:SS.mmmZ), found {:?}",
                shorten(t)
            ));
        }
    }
    if let Some(n) = nonce {
        if let Err(m) = check_nonce(n) {
            p.push(format!("/nonce: {m}"));
        }
    }
}

fn check_entry(p: &mut Vec<String>, e: &EntryKey) {
    if let Err(m) = check_catalog_ref(&e.target_catalog_ref, false) {
        p.push(format!("/entry/targetCatalogRef: {m}"));
    }
    if let Err(m) = check_sha256(&e.subject_digest.sha256) {
        p.push(format!("/entry/subjectDigest/sha256: {m}"));
    }
}

fn channel(p: &mut Vec<String>, at: &str, c: &str) {
    if let Err(m) = check_channel(c) {
        p.push(format!("{at}: {m}"));
    }
}

/// Parses a decision payload of kind `kind` strictly and lists every field problem.
pub fn parse_decision(kind: DecisionKind, json: &[u8]) -> Result<DecisionPayload, Refusal> {
    let mut p = Vec::new();
    let payload = match kind {
        DecisionKind::PolicySet => {
            let r: PolicySetRequest = strict(json)?;
            check_kind(&mut p, r.kind, kind);
            p.extend(r.policy().problems());
            DecisionPayload::PolicySet(r)
        }
        DecisionKind::PublisherRevoke => {
            let r: RevokeRequest = strict(json)?;
            check_kind(&mut p, r.kind, kind);
            if let Err(m) = check_vkey(&r.key) {
                p.push(format!("/key: {m}"));
            }
            check_text(&mut p, "/reason", &r.reason);
            DecisionPayload::Revoke(r)
        }
        DecisionKind::Review => {
            let r: ReviewRequest = strict(json)?;
            check_kind(&mut p, r.kind, kind);
            check_entry(&mut p, &r.entry);
            if let Err(m) = check_token(&r.reviewer, MAX_REF_CHARS) {
                p.push(format!("/reviewer: {m}"));
            }
            channel(&mut p, "/channel", &r.channel);
            check_text(&mut p, "/comment", &r.comment);
            DecisionPayload::Review(r)
        }
        DecisionKind::Promotion => {
            let r: PromotionRequest = strict(json)?;
            check_kind(&mut p, r.kind, kind);
            check_entry(&mut p, &r.entry);
            channel(&mut p, "/fromChannel", &r.from_channel);
            channel(&mut p, "/toChannel", &r.to_channel);
            if r.from_channel == r.to_channel {
                p.push("/toChannel: must differ from fromChannel".into());
            }
            DecisionPayload::Promotion(r)
        }
        DecisionKind::StatusChange => {
            let r: StatusChangeRequest = strict(json)?;
            check_kind(&mut p, r.kind, kind);
            check_entry(&mut p, &r.entry);
            check_text(&mut p, "/reason", &r.reason);
            DecisionPayload::StatusChange(r)
        }
    };
    let (issued_at, nonce) = payload.freshness();
    check_freshness(&mut p, issued_at, nonce);
    if p.is_empty() {
        Ok(payload)
    } else {
        Err(Refusal::Invalid(p))
    }
}

/// A subject given as `sha256:<hex>` or `name@sha256:<hex>`: returns the hex digest.
pub fn parse_subject_digest(text: &str) -> Result<String, FieldError> {
    check_token(text, MAX_REF_CHARS)?;
    let hex = text
        .rsplit_once("sha256:")
        .map(|(_, h)| h)
        .ok_or_else(|| FieldError::NotSubjectDigest(text.to_string()))?;
    check_sha256(hex)?;
    Ok(hex.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_digests() {
        let hex = "ab".repeat(32);
        for (text, want) in [
            (format!("sha256:{hex}"), Ok(hex.clone())),
            (format!("quay.io/x@sha256:{hex}"), Ok(hex.clone())),
            (
                "quay.io/x:dev".to_string(),
                Err("\"quay.io/x:dev\" is not sha256:<hex> or name@sha256:<hex>".to_string()),
            ),
            (
                "sha256:abc".to_string(),
                Err("must be exactly 64 lowercase hex characters, found \"abc\"".to_string()),
            ),
            (String::new(), Err("must not be empty".to_string())),
        ] {
            let got = parse_subject_digest(&text).map_err(|e| e.to_string());
            assert_eq!(got, want, "{text:?}");
        }
    }

    #[test]
    fn decision_field_problems_are_all_listed() {
        let json = br#"{"apiVersion":"catalog.srcos.ai/v1","kind":"Promotion",
            "entry":{"targetCatalogRef":"s://a//b","subjectDigest":{"sha256":"x"}},
            "fromChannel":"dev","toChannel":"dev"}"#;
        let Err(Refusal::Invalid(list)) = parse_decision(DecisionKind::Promotion, json) else {
            panic!("accepted");
        };
        assert_eq!(
            list,
            [
                "/entry/targetCatalogRef: must not contain empty path segments (//) or end with /",
                "/entry/subjectDigest/sha256: must be exactly 64 lowercase hex characters, found \"x\"",
                "/toChannel: must differ from fromChannel",
            ]
        );
        let json = br#"{"apiVersion":"catalog.srcos.ai/v1","kind":"Review",
            "entry":{"targetCatalogRef":"s://a","subjectDigest":{"sha256":"x"}},
            "reviewer":"r","channel":"dev","verdict":"approve","extra":1}"#;
        assert!(matches!(
            parse_decision(DecisionKind::Review, json),
            Err(Refusal::Invalid(_))
        ));
        let kinds: Vec<_> = [
            "PolicySet",
            "PublisherRevoke",
            "Review",
            "Promotion",
            "StatusChange",
        ]
        .into_iter()
        .map(DecisionKind::from_name)
        .collect();
        assert!(kinds.iter().all(Option::is_some));
        assert_eq!(DecisionKind::from_name("Publication"), None);
    }
}
