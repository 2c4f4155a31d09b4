//! `--watch subject=NAME`: the catalog events that concern a subject, so a team learns
//! when something is published under its name.
//!
//! Matching reads the leaf generically (the leaf's `kind`, and the `subject` of the
//! request in its DSSE envelope) rather than through the typed leaf, so every signed
//! request kind that names a subject is reported, including kinds added later.

use serde::Serialize;
use serde_json::Value;

use crate::catalog::dsse::decode_base64;

/// One catalog event for a watched subject (printed as one JSON line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchEvent {
    /// The leaf's index in the log.
    pub leaf_index: u64,
    /// The leaf's `kind` (e.g. `Publication`).
    pub kind: String,
    /// The request's `subject.name`.
    pub subject: String,
    /// `sha256:<hex>` of the subject, when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The request's channel, when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The request's `targetCatalogRef`, when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_catalog_ref: Option<String>,
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

/// The event for leaf `index` if its request names one of `subjects`.
pub fn watch_event(index: u64, entry: &[u8], subjects: &[String]) -> Option<WatchEvent> {
    if subjects.is_empty() {
        return None;
    }
    let leaf: Value = serde_json::from_slice(entry).ok()?;
    let payload = decode_base64(leaf.get("envelope")?.get("payload")?.as_str()?)?;
    let request: Value = serde_json::from_slice(&payload).ok()?;
    let subject = string_at(&request, &["subject", "name"])?;
    if !subjects.contains(&subject) {
        return None;
    }
    Some(WatchEvent {
        leaf_index: index,
        kind: string_at(&leaf, &["kind"])?,
        digest: string_at(&request, &["subject", "digest", "sha256"])
            .map(|h| format!("sha256:{h}")),
        subject,
        channel: string_at(&request, &["channel"]),
        target_catalog_ref: string_at(&request, &["targetCatalogRef"]),
        signer: string_at(&leaf, &["admission", "signer"]),
        accepted_at: string_at(&leaf, &["admission", "acceptedAt"]),
    })
}
