//! The canonical key and value encodings of the state map (`log-format/state.md` §3).
//! Keys are RFC 8785 JSON arrays whose first member names the kind, so no two kinds can
//! share a key; values are RFC 8785 JSON objects. A key's path in the tree is the
//! SHA-256 of its bytes; a leaf commits to the SHA-256 of the value's bytes.

use serde::{Deserialize, Serialize};

use sha2::{Digest, Sha256};

use crate::catalog::{to_canonical_vec, CatalogError};
use crate::merkle::Hash;

/// A key of the state map.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MapKey {
    /// `["entry", target, subject]`: the entry for a target and a subject digest.
    Entry {
        /// `targetCatalogRef`.
        target: String,
        /// `sha256:<64 hex>`.
        subject: String,
    },
    /// `["head", target, channel]`: the entry most recently put on a channel of a target
    /// and still published there.
    Head {
        /// `targetCatalogRef`.
        target: String,
        /// The channel.
        channel: String,
    },
    /// `["subject", subject]`: the targets that carry a subject digest.
    Subject {
        /// `sha256:<64 hex>`.
        subject: String,
    },
    /// `["key", vkey]`: a public key's roles and revocation.
    Key {
        /// The C2SP verifier key string `name+hex8+base64`.
        vkey: String,
    },
}

impl MapKey {
    /// The key as the strings of its JSON array.
    pub fn parts(&self) -> Vec<String> {
        let parts: Vec<&str> = match self {
            MapKey::Entry { target, subject } => vec!["entry", target, subject],
            MapKey::Head { target, channel } => vec!["head", target, channel],
            MapKey::Subject { subject } => vec!["subject", subject],
            MapKey::Key { vkey } => vec!["key", vkey],
        };
        parts.into_iter().map(String::from).collect()
    }

    /// The key whose JSON array is `parts`, if it has one of the four shapes.
    pub fn from_parts(parts: &[String]) -> Option<MapKey> {
        match parts {
            [k, target, subject] if k == "entry" => Some(MapKey::Entry {
                target: target.clone(),
                subject: subject.clone(),
            }),
            [k, target, channel] if k == "head" => Some(MapKey::Head {
                target: target.clone(),
                channel: channel.clone(),
            }),
            [k, subject] if k == "subject" => Some(MapKey::Subject {
                subject: subject.clone(),
            }),
            [k, vkey] if k == "key" => Some(MapKey::Key { vkey: vkey.clone() }),
            _ => None,
        }
    }

    /// The canonical key bytes (an RFC 8785 array of strings).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    /// Writes [`MapKey::encode`] to `out`.
    fn write(&self, out: &mut impl std::io::Write) {
        match self {
            MapKey::Entry { target, subject } => write_strings(out, &["entry", target, subject]),
            MapKey::Head { target, channel } => write_strings(out, &["head", target, channel]),
            MapKey::Subject { subject } => write_strings(out, &["subject", subject]),
            MapKey::Key { vkey } => write_strings(out, &["key", vkey]),
        }
    }

    /// SHA-256 of [`MapKey::encode`]: the key's path in the tree (the bytes go straight
    /// into the hasher).
    pub fn hash(&self) -> Hash {
        let mut h = Sha256::new();
        self.write(&mut h);
        h.finalize().into()
    }

    /// The hash of `["entry", target, subject]`, without building the key or its bytes.
    pub fn entry_hash(target: &str, subject: &str) -> Hash {
        let mut h = Sha256::new();
        write_strings(&mut h, &["entry", target, subject]);
        h.finalize().into()
    }

    /// The hash of `["subject", subject]`, without building the key or its bytes.
    pub fn subject_hash(subject: &str) -> Hash {
        let mut h = Sha256::new();
        write_strings(&mut h, &["subject", subject]);
        h.finalize().into()
    }
}

/// Writes the RFC 8785 encoding of an array of strings to `out`. Compact `serde_json`
/// output of strings is already canonical (it escapes exactly as RFC 8785 does; an
/// array has no member names to sort and no numbers), so it needs neither the general
/// encoder nor the check of `to_canonical_vec` (`key_encodings` compares both).
fn write_strings(out: &mut impl std::io::Write, parts: &[&str]) {
    // Writing strings into a `Vec` or a hasher cannot fail.
    let _ = serde_json::to_writer(out, parts);
}

/// A digest as the catalog writes them: `{"sha256": "<64 hex>"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sha256Digest {
    /// Lowercase hex.
    pub sha256: String,
}

/// The value of an [`MapKey::Entry`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EntryValue {
    /// The current channel.
    pub channel: String,
    /// SHA-256 of the entry's sourceos-spec EvidenceBundle as RFC 8785 JSON
    /// (`GET /v1/catalog/entries/{id}/evidence` serves the same document).
    pub evidence_bundle: Sha256Digest,
    /// Every leaf behind the state: the publication, then each decision, in log order.
    pub leaf_indices: Vec<u64>,
    /// `draft`, `published`, `superseded`, `restricted`, `archived` or `revoked`.
    pub status: String,
    /// The subject's name (`subject.name` of the publication).
    pub subject_name: String,
}

/// The value of a [`MapKey::Head`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeadValue {
    /// The head entry's publication leaf.
    pub publication_index: u64,
    /// The leaf that put it on the channel (its publication or its last promotion).
    pub since: u64,
    /// Its subject digest, `sha256:<64 hex>`.
    pub subject: String,
}

/// The value of a [`MapKey::Subject`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectValue {
    /// The targets with an entry for the subject, in byte order.
    pub targets: Vec<String>,
}

/// One grant in a [`KeyRoles`] value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrantValue {
    /// Channels; `"*"` is any.
    pub channels: Vec<String>,
    /// The `PublisherGrant` leaf.
    pub leaf_index: u64,
    /// `publisher` or `reviewer`.
    pub role: String,
    /// Target prefixes.
    pub target_prefixes: Vec<String>,
}

/// The value of a [`MapKey::Key`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyRoles {
    /// An admin key of the authority (genesis).
    pub admin: bool,
    /// The grants given to the key, in leaf order.
    pub grants: Vec<GrantValue>,
    /// The log key (signs checkpoints).
    pub log: bool,
    /// The `PublisherRevoke` leaf that revoked it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<u64>,
}

/// The canonical value bytes of any of the value types.
pub fn encode_value<T: Serialize>(value: &T) -> Result<Vec<u8>, CatalogError> {
    to_canonical_vec(value)
}

#[cfg(test)]
mod tests {
    use super::super::hash::key_hash;
    use super::*;

    #[test]
    fn key_encodings() {
        let cases = [
            (
                MapKey::Entry {
                    target: "t".into(),
                    subject: "sha256:00".into(),
                },
                r#"["entry","t","sha256:00"]"#,
            ),
            (
                MapKey::Head {
                    target: "t".into(),
                    channel: "stable".into(),
                },
                r#"["head","t","stable"]"#,
            ),
            (
                MapKey::Subject {
                    subject: "sha256:00".into(),
                },
                r#"["subject","sha256:00"]"#,
            ),
            (
                MapKey::Key {
                    vkey: "a+01020304+AQ==".into(),
                },
                r#"["key","a+01020304+AQ=="]"#,
            ),
            (
                MapKey::Head {
                    target: "q\"\n".into(),
                    channel: "".into(),
                },
                r#"["head","q\"\n",""]"#,
            ),
            (
                MapKey::Entry {
                    target: "\u{1}\u{7f}é/\\\u{2028}".into(),
                    subject: "𝄞\t".into(),
                },
                "[\"entry\",\"\\u0001\u{7f}é/\\\\\u{2028}\",\"𝄞\\t\"]",
            ),
        ];
        for (k, want) in cases {
            assert_eq!(String::from_utf8(k.encode()).unwrap(), want, "{k:?}");
            assert_eq!(k.encode(), to_canonical_vec(&k.parts()).unwrap(), "{k:?}");
            assert_eq!(k.encode(), serde_jcs::to_vec(&k.parts()).unwrap(), "{k:?}");
            assert_eq!(k.hash(), key_hash(&k.encode()), "{k:?}");
            match &k {
                MapKey::Entry { target, subject } => {
                    assert_eq!(MapKey::entry_hash(target, subject), k.hash());
                }
                MapKey::Subject { subject } => assert_eq!(MapKey::subject_hash(subject), k.hash()),
                _ => {}
            }
        }
    }

    #[test]
    fn value_encodings() {
        let v = KeyRoles {
            admin: false,
            grants: vec![GrantValue {
                channels: vec!["dev".into()],
                leaf_index: 1,
                role: "publisher".into(),
                target_prefixes: vec!["p/".into()],
            }],
            log: false,
            revoked: None,
        };
        assert_eq!(
            String::from_utf8(encode_value(&v).unwrap()).unwrap(),
            r#"{"admin":false,"grants":[{"channels":["dev"],"leafIndex":1,"role":"publisher","targetPrefixes":["p/"]}],"log":false}"#
        );
        let e = EntryValue {
            channel: "stable".into(),
            evidence_bundle: Sha256Digest {
                sha256: "ab".into(),
            },
            leaf_indices: vec![2, 5],
            status: "published".into(),
            subject_name: "quay.io/x".into(),
        };
        assert_eq!(
            String::from_utf8(encode_value(&e).unwrap()).unwrap(),
            r#"{"channel":"stable","evidenceBundle":{"sha256":"ab"},"leafIndices":[2,5],"status":"published","subjectName":"quay.io/x"}"#
        );
    }
}
