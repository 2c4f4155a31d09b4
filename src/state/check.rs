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

/// Why the answer is no: the first requirement that does not hold. Its `Display` is
/// the reason `check` prints (and a test matches on its first word).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotMet {
    /// The proof answers for another map key than the entry asked about.
    #[error("the proof is for another key ({key}), not the entry for {target} and {subject}")]
    OtherKey {
        /// The key the proof is for (its parts, debug-formatted).
        key: String,
        /// The target asked about.
        target: String,
        /// The subject digest asked about.
        subject: String,
    },
    /// The newest commitment is older than `--max-age`.
    #[error(
        "stale: the newest commitment (tree size {tree_size}) was made at {committed}, \
         {age_s} s ago, more than --max-age {max_s} s"
    )]
    Stale {
        /// The committed tree size.
        tree_size: u64,
        /// When it was committed (RFC 3339).
        committed: String,
        /// Its age in seconds.
        age_s: u64,
        /// The limit in seconds.
        max_s: u64,
    },
    /// The map holds no entry for the key.
    #[error("absent: no entry for {target} and {subject} in the state committed at tree size {tree_size}")]
    Absent {
        /// The target asked about.
        target: String,
        /// The subject digest asked about.
        subject: String,
        /// The committed tree size.
        tree_size: u64,
    },
    /// The committed value is not an entry value (a sequencer bug or a forged map).
    #[error("the committed entry does not decode: {0}")]
    Undecodable(String),
    /// The entry's subject has another name than the one asked about.
    #[error("the entry's subject is named {found:?}, not {wanted:?}")]
    OtherName {
        /// The committed name.
        found: String,
        /// The name asked about.
        wanted: String,
    },
    /// The entry's status is not `published` (revoked, superseded, restricted, draft…).
    #[error("{status}: the entry's status is {status} since leaf {leaf} (channel {channel})")]
    NotPublished {
        /// The committed status.
        status: String,
        /// The last leaf behind the entry.
        leaf: u64,
        /// The committed channel.
        channel: String,
    },
    /// The entry is published on another channel.
    #[error("other channel: the entry is published on {found}, not {wanted} (since leaf {leaf})")]
    OtherChannel {
        /// The committed channel.
        found: String,
        /// The channel asked about.
        wanted: String,
        /// The last leaf behind the entry.
        leaf: u64,
    },
}

/// Answers the consumer: `Ok` with a one-line summary when every requirement holds,
/// [`NotMet`] with the first reason it does not.
pub fn check_entry(lookup: &VerifiedLookup, want: &Expectation) -> Result<String, NotMet> {
    let key = MapKey::Entry {
        target: want.target.clone(),
        subject: want.subject_digest.clone(),
    };
    if lookup.key != key {
        return Err(NotMet::OtherKey {
            key: format!("{:?}", lookup.key.parts()),
            target: want.target.clone(),
            subject: want.subject_digest.clone(),
        });
    }
    let committed = format_rfc3339_ms(lookup.committed_at_ms).unwrap_or_default();
    if let Some(max) = want.max_age_ms {
        let age = want.now_ms.saturating_sub(lookup.committed_at_ms);
        if age > max {
            return Err(NotMet::Stale {
                tree_size: lookup.tree_size,
                committed,
                age_s: age / 1000,
                max_s: max / 1000,
            });
        }
    }
    let Some(bytes) = &lookup.value else {
        return Err(NotMet::Absent {
            target: want.target.clone(),
            subject: want.subject_digest.clone(),
            tree_size: lookup.tree_size,
        });
    };
    let entry: EntryValue =
        serde_json::from_slice(bytes).map_err(|e| NotMet::Undecodable(e.to_string()))?;
    let last = entry.leaf_indices.last().copied().unwrap_or_default();
    if let Some(name) = &want.subject_name {
        if *name != entry.subject_name {
            return Err(NotMet::OtherName {
                found: entry.subject_name,
                wanted: name.clone(),
            });
        }
    }
    if entry.status != "published" {
        return Err(NotMet::NotPublished {
            status: entry.status,
            leaf: last,
            channel: entry.channel,
        });
    }
    if entry.channel != want.channel {
        return Err(NotMet::OtherChannel {
            found: entry.channel,
            wanted: want.channel.clone(),
            leaf: last,
        });
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

/// One change of an entry between two commitments of a verified history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEvent {
    /// What changed: `published on dev`, `promoted to stable`, `revoked`, ...
    pub what: String,
    /// The leaves behind the change (those of the entry not in the commitment before),
    /// in log order; the last is the one that made the new state.
    pub leaves: Vec<u64>,
    /// The committed size at which the change is first proved.
    pub tree_size: u64,
    /// The entry's channel after the change.
    pub channel: String,
}

impl std::fmt::Display for HistoryEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.leaves.as_slice() {
            [leaf] => write!(f, "{} at leaf {leaf}", self.what)?,
            leaves => write!(f, "{} by leaves {leaves:?}", self.what)?,
        }
        write!(f, " (size {})", self.tree_size)
    }
}

/// The changes of one entry across the steps of a verified history proof (oldest
/// first, each the entry's value at a commitment; `StateHistory::verify` proved that
/// no commitment between them is left out): a list a consumer reads as "published on
/// dev at leaf 5, promoted to stable at leaf 9, revoked at leaf 12". Changes between two
/// commitments are seen together, as one event with every leaf behind them.
pub fn history_events(steps: &[VerifiedLookup]) -> Result<Vec<HistoryEvent>, NotMet> {
    let decode = |step: &VerifiedLookup| -> Result<Option<EntryValue>, NotMet> {
        step.value
            .as_ref()
            .map(|bytes| serde_json::from_slice(bytes))
            .transpose()
            .map_err(|e| NotMet::Undecodable(e.to_string()))
    };
    let mut events = Vec::new();
    let mut before: Option<EntryValue> = match steps.first() {
        Some(first) => decode(first)?,
        None => return Ok(events),
    };
    for step in &steps[1..] {
        let now = decode(step)?;
        if now == before {
            continue;
        }
        let Some(entry) = &now else {
            events.push(HistoryEvent {
                what: "gone from the map".to_string(),
                leaves: Vec::new(),
                tree_size: step.tree_size,
                channel: String::new(),
            });
            before = now;
            continue;
        };
        let seen = before.as_ref().map_or(0, |b| b.leaf_indices.len());
        let leaves = entry.leaf_indices.get(seen..).unwrap_or_default().to_vec();
        let what = match &before {
            None => format!("{} on {}", entry.status, entry.channel),
            Some(b) if b.channel != entry.channel && b.status != entry.status => {
                format!("promoted to {} and {}", entry.channel, entry.status)
            }
            Some(b) if b.channel != entry.channel => format!("promoted to {}", entry.channel),
            Some(b) if b.status != entry.status => entry.status.clone(),
            Some(_) => "reviewed".to_string(),
        };
        events.push(HistoryEvent {
            what,
            leaves,
            tree_size: step.tree_size,
            channel: entry.channel.clone(),
        });
        before = now;
    }
    Ok(events)
}

/// The consumer's question answered from a verified history (`check --since`): the
/// newest step is checked as [`check_entry`] checks a lookup, and the answer, yes or no,
/// carries what happened since the first step. A "no" reads, for example, "revoked:
/// ... since size 2: published on dev at leaf 5 (size 6), promoted to stable at leaf 9
/// (size 10), revoked at leaf 12 (size 13): revoked at leaf 12 after being promoted to
/// stable at leaf 9".
pub fn check_history(steps: &[VerifiedLookup], want: &Expectation) -> Result<String, String> {
    let Some(newest) = steps.last() else {
        return Err("the history proof has no steps".to_string());
    };
    let since = steps[0].tree_size;
    let answer = check_entry(newest, want);
    let events = history_events(steps).map_err(|e| e.to_string())?;
    let mut story = if events.is_empty() {
        format!("no change since size {since}")
    } else {
        let list: Vec<String> = events.iter().map(|e| e.to_string()).collect();
        format!("since size {since}: {}", list.join(", "))
    };
    // The change that ended a publication, after the last move onto a channel.
    if let (Err(_), Some(last)) = (&answer, events.last()) {
        let promoted = events[..events.len() - 1]
            .iter()
            .rev()
            .find(|e| e.what.starts_with("promoted to ") || e.what.starts_with("published on "));
        if let (Some(p), Some(leaf), Some(p_leaf)) = (
            promoted,
            last.leaves.last(),
            promoted.and_then(|p| p.leaves.last()),
        ) {
            let verb = if p.what.starts_with("promoted") {
                "promoted"
            } else {
                "published"
            };
            let channel = &p.channel;
            story.push_str(&format!(
                ": {} at leaf {leaf} after being {verb} {} {channel} at leaf {p_leaf}",
                last.what,
                if verb == "promoted" { "to" } else { "on" },
            ));
        }
    }
    match answer {
        Ok(summary) => Ok(format!("{summary}; {story}")),
        Err(not_met) => Err(format!("{not_met}; {story}")),
    }
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
            leaf_index: 9,
            previous: None,
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
            let got = check_entry(&lookup(value, at), &want)
                .unwrap_err()
                .to_string();
            assert!(got.starts_with(reason), "{got}");
        }
        let mut other = want.clone();
        other.subject_name = Some("quay.io/y".into());
        let got = check_entry(&lookup(Some(entry("stable", "published")), 90_000), &other);
        assert!(got.unwrap_err().to_string().contains("named \"quay.io/x\""));
        let mut other = want.clone();
        other.target = "sourceos://catalog/images/z".into();
        let got = check_entry(&lookup(Some(entry("stable", "published")), 90_000), &other);
        assert!(got
            .unwrap_err()
            .to_string()
            .starts_with("the proof is for another key"));
    }

    fn step(value: Option<EntryValue>, tree_size: u64) -> VerifiedLookup {
        let mut l = lookup(value, 90_000);
        l.tree_size = tree_size;
        l
    }

    fn with_leaves(mut e: EntryValue, leaves: &[u64]) -> EntryValue {
        e.leaf_indices = leaves.to_vec();
        e
    }

    #[test]
    fn histories() {
        let want = Expectation {
            target: T.into(),
            subject_name: None,
            subject_digest: digest(),
            channel: "stable".into(),
            max_age_ms: None,
            now_ms: 100_000,
        };
        let steps = [
            step(None, 2),
            step(Some(with_leaves(entry("dev", "published"), &[5])), 6),
            step(Some(with_leaves(entry("dev", "published"), &[5])), 7),
            step(
                Some(with_leaves(entry("stable", "published"), &[5, 8, 9])),
                10,
            ),
            step(
                Some(with_leaves(entry("stable", "revoked"), &[5, 8, 9, 12])),
                13,
            ),
        ];
        let events = history_events(&steps).unwrap();
        let text: Vec<String> = events.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            text,
            [
                "published on dev at leaf 5 (size 6)",
                "promoted to stable by leaves [8, 9] (size 10)",
                "revoked at leaf 12 (size 13)"
            ]
        );
        let no = check_history(&steps, &want).unwrap_err();
        assert!(
            no.starts_with("revoked: the entry's status is revoked since leaf 12"),
            "{no}"
        );
        assert!(
            no.ends_with(
                "since size 2: published on dev at leaf 5 (size 6), promoted to stable by \
                 leaves [8, 9] (size 10), revoked at leaf 12 (size 13): revoked at leaf 12 \
                 after being promoted to stable at leaf 9"
            ),
            "{no}"
        );
        // Up to the promotion: yes, with the story so far.
        let yes = check_history(&steps[..4], &want).unwrap();
        assert!(yes.starts_with("OK: "), "{yes}");
        assert!(
            yes.ends_with("promoted to stable by leaves [8, 9] (size 10)"),
            "{yes}"
        );
        // One step: no change.
        let yes = check_history(&steps[3..4], &want).unwrap();
        assert!(yes.ends_with("; no change since size 10"), "{yes}");
        // Revoked straight after publication: "after being published on dev".
        let steps = [
            step(None, 2),
            step(Some(with_leaves(entry("dev", "published"), &[5])), 6),
            step(Some(with_leaves(entry("dev", "revoked"), &[5, 7])), 8),
        ];
        let mut dev = want.clone();
        dev.channel = "dev".into();
        let no = check_history(&steps, &dev).unwrap_err();
        assert!(
            no.ends_with("revoked at leaf 7 after being published on dev at leaf 5"),
            "{no}"
        );
        assert!(check_history(&[], &want).is_err());
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
