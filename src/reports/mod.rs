//! The socios reports importer: turning a build pipeline's `.workstation/reports` tree
//! into a v1 `CatalogPublicationRequest` (`request from-reports`), and finding evidence
//! files by digest (`publish --upload`, `--dry-run`).
//!
//! Owns reading and classifying report files. May import `catalog`'s root (media types,
//! digest checks, the API version) and nothing else of the crate.
//!
//! The socios smoke-runner pipeline writes one JSON receipt per task (each with a `kind`),
//! plus the Syft SPDX SBOM and the Grype scan, which have no `kind`. [`from_reports`]
//! hashes every file, recognises it by its `kind` or its format, and maps it to an
//! evidence type. It tolerates the known v0 inconsistencies: the task image receipt is
//! named `…-task-images.json` (`SmokeRunnerTaskImageReferenceReceipt`) or
//! `…-task-image-digests.json` (`SmokeRunnerTaskImageDigestReceipt`), and booleans such as
//! `enabled` are JSON booleans in some receipts and `"true"`/`"false"` strings in others.
//! agentplane Validation/Run/Replay artifacts found in the tree become `agentplaneRefs`
//! (`agentplane://<kind>/<bundle>` plus the file's digest), never inlined.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Most files walked in a tree.
pub const MAX_FILES: usize = 10_000;
/// Largest file considered (the blob store's default limit).
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// Reading a reports tree failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportsError {
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The tree or the arguments cannot make a request.
    #[error("{0}")]
    Invalid(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReportsError + '_ {
    move |source| ReportsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One file of the tree: its path relative to the root, digest and size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    /// Path relative to the tree root, with `/` separators.
    pub relative: String,
    /// Absolute or caller-relative path to read it.
    pub path: PathBuf,
    /// SHA-256, 64 hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// Every regular file under `root` (sorted by relative path, at most [`MAX_FILES`], each at
/// most [`MAX_FILE_BYTES`]; larger ones are skipped), hashed.
pub fn walk(root: &Path) -> Result<Vec<FileInfo>, ReportsError> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(io(&path))?;
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                if out.len() >= MAX_FILES {
                    return Err(ReportsError::Invalid(format!(
                        "{} holds more than {MAX_FILES} files",
                        root.display()
                    )));
                }
                let size = entry.metadata().map_err(io(&path))?.len();
                if size > MAX_FILE_BYTES {
                    continue;
                }
                let bytes = std::fs::read(&path).map_err(io(&path))?;
                let relative = path
                    .strip_prefix(root)
                    .unwrap_or(&path)
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push(FileInfo {
                    relative,
                    sha256: hex::encode(Sha256::digest(&bytes)),
                    size: bytes.len() as u64,
                    path,
                });
            }
        }
    }
    out.sort_by(|a, b| a.relative.cmp(&b.relative));
    Ok(out)
}

/// Files by digest (the first path wins when two files are identical).
pub fn index_by_digest(files: &[FileInfo]) -> BTreeMap<String, PathBuf> {
    let mut map = BTreeMap::new();
    for f in files {
        map.entry(f.sha256.clone())
            .or_insert_with(|| f.path.clone());
    }
    map
}

/// A socios boolean: a JSON boolean or the strings `"true"`/`"false"` (v0 uses both).
pub fn socios_bool(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// How one file is classified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Classified {
    /// An evidence item of this type and media type.
    Evidence {
        /// The evidence type.
        evidence_type: &'static str,
        /// Its media type.
        media_type: &'static str,
    },
    /// An agentplane artifact: `validationArtifactRef` etc. and its URI.
    Agentplane {
        /// Which ref.
        slot: &'static str,
        /// `agentplane://<kind>/<bundle>`.
        uri: String,
    },
    /// Not evidence (or a disabled, skipped step).
    Skip(String),
}

const JSON: &str = "application/json";

/// Classifies one parsed JSON file by its `kind` or its format.
pub fn classify(v: &Value) -> Classified {
    let evidence = |evidence_type, media_type| Classified::Evidence {
        evidence_type,
        media_type,
    };
    if let Some(kind) = v.get("kind").and_then(Value::as_str) {
        let skipped = socios_bool(v.get("enabled")) == Some(false)
            || v.get("status").and_then(Value::as_str) == Some("skipped");
        return match kind {
            "SmokeRunnerBaseImageReceipt" => evidence("base-image-receipt", JSON),
            "SmokeRunnerTaskImageDigestReceipt" | "SmokeRunnerTaskImageReferenceReceipt" => {
                evidence("task-image-digests", JSON)
            }
            "SmokeRunnerImageBuildReceipt" => evidence("build-receipt", JSON),
            "SmokeRunnerImageProvenance" => evidence("provenance", JSON),
            "SmokeRunnerImageEvidenceBundle" => evidence("evidence-bundle", JSON),
            "SmokeRunnerImageEvidenceAttestation" if skipped => {
                Classified::Skip(format!("{kind} (attestation skipped)"))
            }
            "SmokeRunnerImageEvidenceAttestation" => evidence("attestation", JSON),
            "SmokeRunnerImagePromotionReceipt" if skipped => {
                Classified::Skip(format!("{kind} (promotion skipped)"))
            }
            "SmokeRunnerImagePromotionReceipt" => evidence("promotion-receipt", JSON),
            k if k.ends_with("SmokeReceipt") => evidence("smoke-receipt", JSON),
            "ValidationArtifact" | "RunArtifact" | "ReplayArtifact" => {
                let (slot, path) = match kind {
                    "ValidationArtifact" => ("validationArtifactRef", "validation-artifact"),
                    "RunArtifact" => ("runArtifactRef", "run-artifact"),
                    _ => ("replayArtifactRef", "replay-artifact"),
                };
                match v.get("bundle").and_then(Value::as_str) {
                    Some(bundle) if !bundle.is_empty() => Classified::Agentplane {
                        slot,
                        uri: format!("agentplane://{path}/{bundle}"),
                    },
                    _ => Classified::Skip(format!("{kind} without a bundle name")),
                }
            }
            other => Classified::Skip(format!("kind {other} is not evidence")),
        };
    }
    if v.get("spdxVersion").is_some() {
        return evidence("sbom", crate::catalog::SPDX_JSON);
    }
    if v.get("bomFormat").and_then(Value::as_str) == Some("CycloneDX") {
        return evidence("sbom", crate::catalog::CYCLONEDX_JSON);
    }
    if v.get("matches").is_some_and(Value::is_array) {
        return evidence("vulnerability-scan", "application/vnd.anchore.grype+json");
    }
    match v.get("predicateType").and_then(Value::as_str) {
        Some(t) if t == crate::catalog::SLSA_PROVENANCE_V1 => {
            evidence("provenance", "application/vnd.in-toto+json")
        }
        Some(t) if t.starts_with(crate::catalog::IN_TOTO_VULNS) => {
            evidence("vulnerability-scan", "application/vnd.in-toto+json")
        }
        _ => Classified::Skip("no kind and no recognised format".into()),
    }
}

/// What [`from_reports`] made.
#[derive(Clone, Debug)]
pub struct FromReports {
    /// The request JSON (pretty-printable; sign its canonical form).
    pub request: Value,
    /// The files used, by relative path.
    pub used: Vec<FileInfo>,
    /// Files skipped, with why.
    pub skipped: Vec<(String, String)>,
}

/// Builds a request from the reports tree at `dir`. `subject` is `NAME@sha256:HEX`; evidence
/// URIs are `uri_prefix` + the file's path relative to `dir` (default prefix
/// `.workstation/reports/`, where socios writes them).
pub fn from_reports(
    dir: &Path,
    subject: &str,
    target: &str,
    channel: &str,
    requester: &str,
    uri_prefix: &str,
) -> Result<FromReports, ReportsError> {
    let (name, hex) = subject.rsplit_once("@sha256:").ok_or_else(|| {
        ReportsError::Invalid(format!("--subject {subject:?} is not NAME@sha256:HEX"))
    })?;
    crate::catalog::check_sha256(hex)
        .map_err(|m| ReportsError::Invalid(format!("--subject digest {m}")))?;
    let mut evidence = Vec::new();
    let mut refs: BTreeMap<&'static str, Value> = BTreeMap::new();
    let mut used = Vec::new();
    let mut skipped = Vec::new();
    for file in walk(dir)? {
        let parsed = if file.relative.ends_with(".json") {
            std::fs::read(&file.path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        } else {
            None
        };
        let Some(v) = parsed else {
            skipped.push((file.relative.clone(), "not a JSON file".into()));
            continue;
        };
        match classify(&v) {
            Classified::Evidence {
                evidence_type,
                media_type,
            } => {
                evidence.push(json!({
                    "type": evidence_type,
                    "mediaType": media_type,
                    "digest": {"sha256": file.sha256},
                    "uri": format!("{uri_prefix}{}", file.relative),
                    "size": file.size,
                }));
                used.push(file);
            }
            Classified::Agentplane { slot, uri } => {
                refs.insert(slot, json!({"uri": uri, "digest": {"sha256": file.sha256}}));
                used.push(file);
            }
            Classified::Skip(why) => skipped.push((file.relative.clone(), why)),
        }
    }
    if evidence.is_empty() {
        return Err(ReportsError::Invalid(format!(
            "{} holds no recognisable evidence",
            dir.display()
        )));
    }
    let slot = |s: &str| refs.get(s).cloned().unwrap_or(Value::Null);
    let request = json!({
        "apiVersion": crate::catalog::API_VERSION,
        "kind": "CatalogPublicationRequest",
        "subject": {"name": name, "digest": {"sha256": hex}},
        "targetCatalogRef": target,
        "channel": channel,
        "requesterRef": requester,
        "evidence": evidence,
        "agentplaneRefs": {
            "validationArtifactRef": slot("validationArtifactRef"),
            "runArtifactRef": slot("runArtifactRef"),
            "replayArtifactRef": slot("replayArtifactRef"),
        },
    });
    Ok(FromReports {
        request,
        used,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socios_booleans() {
        assert_eq!(socios_bool(Some(&json!("true"))), Some(true));
        assert_eq!(socios_bool(Some(&json!("FALSE"))), Some(false));
        assert_eq!(socios_bool(Some(&json!(false))), Some(false));
        assert_eq!(socios_bool(Some(&json!("yes"))), None);
        assert_eq!(socios_bool(None), None);
    }

    #[test]
    fn task_image_receipt_names_both_map() {
        for kind in [
            "SmokeRunnerTaskImageDigestReceipt",
            "SmokeRunnerTaskImageReferenceReceipt",
        ] {
            assert_eq!(
                classify(&json!({"kind": kind})),
                Classified::Evidence {
                    evidence_type: "task-image-digests",
                    media_type: JSON
                }
            );
        }
        assert!(matches!(
            classify(&json!({"kind": "SmokeRunnerImagePromotionReceipt", "enabled": "false"})),
            Classified::Skip(_)
        ));
    }
}
