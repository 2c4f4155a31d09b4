//! `--watch subject=NAME`: the catalog events that concern a subject, so a team learns
//! when something is published under its name, and what is decided about it afterwards.
//!
//! A `Publication` (or any signed request) naming a watched subject is an event, and its
//! leaf index is remembered. A decision (`Review`, `Promotion`, `StatusChange`) whose
//! admission record points at a remembered publication (`publicationIndex`) is an event
//! too. Leaves are read generically (the leaf's `kind`, the request in its envelope, the
//! admission record) rather than through the typed leaves, so kinds added later are
//! still reported. Remembering needs every entry from the start, so the scanner reads
//! the log from entry 0 once per process when watching.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use crate::catalog::decode_base64;

/// One catalog event for a watched subject (printed as one JSON line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchEvent {
    /// The leaf's index in the log.
    pub leaf_index: u64,
    /// The leaf's `kind` (`Publication`, `Review`, `Promotion`, `StatusChange`, ...).
    pub kind: String,
    /// The watched subject's name.
    pub subject: String,
    /// `sha256:<hex>` of the subject, when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The catalog target, when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_catalog_ref: Option<String>,
    /// The channel (a publication's, or the one a review is for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// A decision's publication leaf.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publication_index: Option<u64>,
    /// A review's verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    /// A promotion's source channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_channel: Option<String>,
    /// A promotion's target channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_channel: Option<String>,
    /// A status change's new status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The key the authority recorded as the signer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// When the authority accepted it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<String>,
}

impl WatchEvent {
    /// The event as one JSON line (without the newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

fn string_at(value: &Value, path: &[&str]) -> Option<String> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Follows the watched subjects through the log.
#[derive(Debug, Clone, Default)]
pub struct Watcher {
    subjects: Vec<String>,
    /// Leaf index of each publication of a watched subject → the subject's name.
    publications: HashMap<u64, String>,
}

impl Watcher {
    /// A watcher for `subjects` (none: it reports nothing).
    pub fn new(subjects: Vec<String>) -> Watcher {
        Watcher {
            subjects,
            publications: HashMap::new(),
        }
    }

    /// Whether any subject is watched.
    pub fn is_active(&self) -> bool {
        !self.subjects.is_empty()
    }

    /// Forgets what it remembered (the scanner starts over from entry 0).
    pub fn reset(&mut self) {
        self.publications.clear();
    }

    /// Reads entry `index` (entries must come in order); returns its event if it
    /// concerns a watched subject.
    pub fn observe(&mut self, index: u64, entry: &[u8]) -> Option<WatchEvent> {
        if !self.is_active() {
            return None;
        }
        let leaf: Value = serde_json::from_slice(entry).ok()?;
        let payload = decode_base64(leaf.get("envelope")?.get("payload")?.as_str()?)?;
        let request: Value = serde_json::from_slice(&payload).ok()?;
        let publication_index = leaf
            .get("admission")
            .and_then(|a| a.get("publicationIndex"))
            .and_then(Value::as_u64);
        let (subject, about) = match string_at(&request, &["subject", "name"]) {
            Some(name) if self.subjects.contains(&name) => {
                self.publications.insert(index, name.clone());
                (name, None)
            }
            _ => {
                let about = publication_index?;
                (self.publications.get(&about)?.clone(), Some(about))
            }
        };
        let digest = string_at(&request, &["subject", "digest", "sha256"])
            .or_else(|| string_at(&request, &["entry", "subjectDigest", "sha256"]))
            .map(|h| format!("sha256:{h}"));
        Some(WatchEvent {
            leaf_index: index,
            kind: string_at(&leaf, &["kind"])?,
            subject,
            digest,
            target_catalog_ref: string_at(&request, &["targetCatalogRef"])
                .or_else(|| string_at(&request, &["entry", "targetCatalogRef"])),
            channel: string_at(&request, &["channel"]),
            publication_index: about,
            verdict: string_at(&request, &["verdict"]),
            from_channel: string_at(&request, &["fromChannel"]),
            to_channel: string_at(&request, &["toChannel"]),
            status: string_at(&request, &["status"]),
            signer: string_at(&leaf, &["admission", "signer"]),
            accepted_at: string_at(&leaf, &["admission", "acceptedAt"]),
        })
    }
}
