//! Vulnerability severities: the ordered scale a scan report's findings are folded to and
//! a channel policy sets its threshold on, with the parse of the names and CVSS scores
//! scanners write.
//!
//! Layer 1 of `catalog` (`wire`): imports nothing of the crate.

use serde::{Deserialize, Serialize};

/// Vulnerability severities, ordered from least to most severe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Grype's `Negligible` (and CVSS 0.0).
    Negligible,
    /// `Low` (CVSS 0.1–3.9).
    Low,
    /// `Medium` (CVSS 4.0–6.9).
    Medium,
    /// `High` (CVSS 7.0–8.9).
    High,
    /// `Critical` (CVSS 9.0–10.0).
    Critical,
}

impl Severity {
    /// Every severity in wire form, least severe first.
    pub const ALL: &'static [&'static str] = &["negligible", "low", "medium", "high", "critical"];

    /// Parses a qualitative name (any case) or a CVSS base score; `None` for `Unknown` and
    /// anything unrecognised.
    pub fn parse(text: &str) -> Option<Severity> {
        let t = text.trim().to_ascii_lowercase();
        match t.as_str() {
            "negligible" | "none" => return Some(Severity::Negligible),
            "low" => return Some(Severity::Low),
            "medium" | "moderate" => return Some(Severity::Medium),
            "high" | "important" => return Some(Severity::High),
            "critical" => return Some(Severity::Critical),
            _ => {}
        }
        let score: f64 = t.parse().ok()?;
        Some(match score {
            s if !(0.0..=10.0).contains(&s) => return None,
            0.0 => Severity::Negligible,
            s if s < 4.0 => Severity::Low,
            s if s < 7.0 => Severity::Medium,
            s if s < 9.0 => Severity::High,
            _ => Severity::Critical,
        })
    }

    /// The wire form (`"high"`, ...).
    pub fn as_str(self) -> &'static str {
        Severity::ALL[self as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_parse_names_and_scores() {
        assert_eq!(Severity::parse("High"), Some(Severity::High));
        assert_eq!(Severity::parse("CRITICAL"), Some(Severity::Critical));
        assert_eq!(Severity::parse("7.5"), Some(Severity::High));
        assert_eq!(Severity::parse("3.9"), Some(Severity::Low));
        assert_eq!(Severity::parse("9.0"), Some(Severity::Critical));
        assert_eq!(Severity::parse("Unknown"), None);
        assert_eq!(Severity::parse("11"), None);
        assert_eq!(Severity::parse("NaN"), None);
        assert_eq!(Severity::High.as_str(), "high");
    }
}
