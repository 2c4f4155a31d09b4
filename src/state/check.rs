//! The consumer's question, answered from a verified lookup (`srcos-catalog check`): is
//! this subject on this channel of this target, with status `published`, in a
//! commitment fresh enough? Pure: the caller verified the bundle and gives the time.

use super::bundle::VerifiedLookup;
use super::keys::{EntryValue, MapKey};
use crate::catalog::format_rfc3339_ms;

/// What the consumer requires.
#[derive(Clone, Debug)]
pub struct Expectation {
    /// `targetCatalogRef`.
    pub target: String,
    /// The subject's name, when the consumer names it (`NAME@sha256:HEX`).
    pub subject_name: Option<String>,
    /// `sha256:<64 hex>`.
    pub subject_digest: String,
    /// The channel it must be published on.
    pub channel: String,
    /// The oldest commitment accepted, in milliseconds before `now_ms`.
    pub max_age_ms: Option<u64>,
    /// The consumer's clock (ms since the epoch).
    pub now_ms: u64,
}

/// Answers the consumer: `Ok` with a one-line summary when every requirement holds,
/// `Err` with the first reason it does not.
pub fn check_entry(lookup: &VerifiedLookup, want: &Expectation) -> Result<String, String> {
    let key = MapKey::Entry {
        target: want.target.clone(),
        subject: want.subject_digest.clone(),
    };
    if lookup.key != key {
        return Err(format!(
            "the proof is for another key ({:?}), not the entry for {} and {}",
            lookup.key.parts(),
            want.target,
            want.subject_digest
        ));
    }
    let committed = format_rfc3339_ms(lookup.committed_at_ms).unwrap_or_default();
    if let Some(max) = want.max_age_ms {
        let age = want.now_ms.saturating_sub(lookup.committed_at_ms);
        if age > max {
            return Err(format!(
                "stale: the newest commitment (tree size {}) was made at {committed}, {} s ago, \
                 more than --max-age {} s",
                lookup.tree_size,
                age / 1000,
                max / 1000
            ));
        }
    }
    let Some(bytes) = &lookup.value else {
        return Err(format!(
            "absent: no entry for {} and {} in the state committed at tree size {}",
            want.target, want.subject_digest, lookup.tree_size
        ));
    };
    let entry: EntryValue = serde_json::from_slice(bytes)
        .map_err(|e| format!("the committed entry does not decode: {e}"))?;
    let last = entry.leaf_indices.last().copied().unwrap_or_default();
    if let Some(name) = &want.subject_name {
        if *name != entry.subject_name {
            return Err(format!(
                "the entry's subject is named {:?}, not {name:?}",
                entry.subject_name
            ));
        }
    }
    if entry.status != "published" {
        return Err(format!(
            "{}: the entry's status is {} since leaf {last} (channel {})",
            entry.status, entry.status, entry.channel
        ));
    }
    if entry.channel != want.channel {
        return Err(format!(
            "other channel: the entry is published on {}, not {} (since leaf {last})",
            entry.channel, want.channel
        ));
    }
    Ok(format!(
        "OK: {}@{} is published on {} of {} (leaves {:?}) in the state committed at tree size {} \
         ({committed}), proved in checkpoint {} of {}{}",
        entry.subject_name,
        want.subject_digest,
        entry.channel,
        want.target,
        entry.leaf_indices,
        lookup.tree_size,
        lookup.checkpoint.size,
        lookup.checkpoint.origin,
        if lookup.cosigners > 0 {
            format!(", cosigned by {} witnesses", lookup.cosigners)
        } else {
            String::new()
        }
    ))
}

/// Parses a duration such as `90s`, `15m`, `24h` or `7d` (a bare number is seconds)
/// into milliseconds.
pub fn parse_duration_ms(text: &str) -> Option<u64> {
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    if digits.is_empty() || digits.len() > 12 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(seconds)?.checked_mul(1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::{Checkpoint, KeyType, Signer};
    use crate::state::keys::{encode_value, Sha256Digest};

    const T: &str = "sourceos://catalog/images/x";

    fn digest() -> String {
        format!("sha256:{}", "a".repeat(64))
    }

    fn lookup(value: Option<EntryValue>, committed_at_ms: u64) -> VerifiedLookup {
        let signer = Signer::from_seed("log.test", KeyType::Ed25519, &[1; 32]).unwrap();
        VerifiedLookup {
            key: MapKey::Entry {
                target: T.into(),
                subject: digest(),
            },
            value: value.map(|v| encode_value(&v).unwrap()),
            tree_size: 9,
            committed_at_ms,
            checkpoint: Checkpoint {
                origin: signer.name().to_string(),
                size: 10,
                root: [0; 32],
                extensions: Vec::new(),
            },
            cosigners: 0,
        }
    }

    fn entry(channel: &str, status: &str) -> EntryValue {
        EntryValue {
            channel: channel.into(),
            evidence_bundle: Sha256Digest {
                sha256: "b".repeat(64),
            },
            leaf_indices: vec![3, 5, 7],
            status: status.into(),
            subject_name: "quay.io/x".into(),
        }
    }

    #[test]
    fn answers() {
        let want = Expectation {
            target: T.into(),
            subject_name: Some("quay.io/x".into()),
            subject_digest: digest(),
            channel: "stable".into(),
            max_age_ms: Some(60_000),
            now_ms: 100_000,
        };
        let ok = check_entry(&lookup(Some(entry("stable", "published")), 90_000), &want);
        assert!(ok.unwrap().starts_with("OK: quay.io/x@sha256:"));
        for (value, at, reason) in [
            (None, 90_000, "absent: "),
            (
                Some(entry("stable", "revoked")),
                90_000,
                "revoked: the entry's status is revoked since leaf 7",
            ),
            (
                Some(entry("candidate", "published")),
                90_000,
                "other channel: the entry is published on candidate",
            ),
            (Some(entry("stable", "draft")), 90_000, "draft: "),
            (Some(entry("stable", "published")), 30_000, "stale: "),
        ] {
            let got = check_entry(&lookup(value, at), &want).unwrap_err();
            assert!(got.starts_with(reason), "{got}");
        }
        let mut other = want.clone();
        other.subject_name = Some("quay.io/y".into());
        let got = check_entry(&lookup(Some(entry("stable", "published")), 90_000), &other);
        assert!(got.unwrap_err().contains("named \"quay.io/x\""));
        let mut other = want.clone();
        other.target = "sourceos://catalog/images/z".into();
        let got = check_entry(&lookup(Some(entry("stable", "published")), 90_000), &other);
        assert!(got.unwrap_err().starts_with("the proof is for another key"));
    }

    #[test]
    fn durations() {
        for (text, want) in [
            ("90", Some(90_000)),
            ("90s", Some(90_000)),
            ("15m", Some(900_000)),
            ("24h", Some(86_400_000)),
            ("7d", Some(604_800_000)),
            ("", None),
            ("m", None),
            ("1w", None),
            ("-1s", None),
            ("1.5h", None),
            ("9999999999999d", None),
        ] {
            assert_eq!(parse_duration_ms(text), want, "{text}");
        }
    }
}
