//! A running authority for the catalog tests: a real server, its admin key, and helpers
//! that sign requests with the library and send them over HTTP.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use srcos_catalog::catalog::sign_envelope;
use srcos_catalog::client::upload_intent;
use srcos_catalog::keyfile::{key_pair_paths, read_signer, write_key_pair};
use srcos_catalog::note::{KeyType, Signer};

use super::{tempdir, Http, Server};

/// The target prefix every test grant uses.
pub const PREFIX: &str = "sourceos://catalog/images/";

/// The `issuedAt` [`fresh`] gives decisions that lack one: a fixed time before every
/// test's acceptance times (no window is set unless a test sets one).
pub const ISSUED_AT: &str = "2000-01-01T00:00:00.000Z";

/// `payload` with the signed freshness rules version 2 requires of decisions (`issuedAt`
/// [`ISSUED_AT`] and a new random `nonce`) when it is a decision without them; any other
/// payload unchanged.
pub fn fresh(payload: &Value) -> Value {
    const DECISIONS: [&str; 5] = [
        "PolicySet",
        "PublisherRevoke",
        "Review",
        "Promotion",
        "StatusChange",
    ];
    let mut v = payload.clone();
    let is_decision = v["kind"].as_str().is_some_and(|k| DECISIONS.contains(&k));
    if let (true, Some(obj)) = (is_decision, v.as_object_mut()) {
        obj.entry("issuedAt").or_insert_with(|| json!(ISSUED_AT));
        obj.entry("nonce").or_insert_with(|| json!(nonce()));
    }
    v
}

/// A new random nonce (32 hex characters).
pub fn nonce() -> String {
    hex::encode(
        &Signer::generate("n", KeyType::Ed25519)
            .unwrap()
            .verifier()
            .public_key()[..16],
    )
}

/// A server with helpers.
pub struct Authority {
    /// Keeps the directory alive.
    pub dir: tempfile::TempDir,
    /// The data directory.
    pub data: PathBuf,
    /// The server process.
    pub server: Server,
    /// HTTP client.
    pub http: Http,
    /// The generated admin key.
    pub admin: Signer,
}

/// A key with its files.
pub struct Key {
    /// The signer.
    pub signer: Signer,
    /// `PREFIX.key`.
    pub key_file: PathBuf,
    /// `PREFIX.vkey`.
    pub vkey_file: PathBuf,
}

impl Authority {
    /// Starts a fresh server.
    pub fn start(extra: &[&str]) -> Authority {
        let dir = tempdir();
        let data = dir.path().join("data");
        let server = Server::start(&data, extra);
        let http = Http::new(&server.url);
        let admin = read_signer(&data.join("admin.key")).unwrap();
        Authority {
            dir,
            data,
            server,
            http,
            admin,
        }
    }

    /// A new key named `name`, written under the temp dir.
    pub fn key(&self, name: &str) -> Key {
        let signer = Signer::generate(name, KeyType::Ed25519).unwrap();
        let file = name.replace('/', "_");
        let mut prefix = self.dir.path().join(&file);
        let mut n = 0;
        while key_pair_paths(&prefix).private.exists() {
            n += 1;
            prefix = self.dir.path().join(format!("{file}-{n}"));
        }
        let paths = key_pair_paths(&prefix);
        write_key_pair(&paths, &signer).unwrap();
        Key {
            signer,
            key_file: paths.private,
            vkey_file: paths.public,
        }
    }

    /// POSTs `payload` signed by `signer` to `endpoint`; returns (status, JSON body).
    pub fn send(&self, endpoint: &str, signer: &Signer, payload: &Value) -> (u16, Value) {
        let bytes = serde_jcs::to_vec(&fresh(payload)).unwrap();
        let envelope = sign_envelope(&bytes, signer);
        let (status, _, body) = self.http.post(endpoint, envelope.to_json().into_bytes());
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// Grants `key` `role` on [`PREFIX`] for `channels`; panics unless 201.
    pub fn grant(&self, key: &Signer, role: &str, channels: &[&str]) {
        let (status, body) = self.send(
            "/v1/admin/grants",
            &self.admin,
            &json!({
                "apiVersion": "catalog.srcos.ai/v1", "kind": "PublisherGrant",
                "publisherKey": key.verifier().to_vkey(), "role": role,
                "targetPrefixes": [PREFIX], "channels": channels,
            }),
        );
        assert_eq!(status, 201, "grant: {body}");
    }

    /// Publishes `request` signed by `signer`.
    pub fn publish(&self, signer: &Signer, request: &Value) -> (u16, Value) {
        self.send("/v1/publications", signer, request)
    }

    /// A review.
    pub fn review(
        &self,
        signer: &Signer,
        target: &str,
        hex: &str,
        channel: &str,
        verdict: &str,
    ) -> (u16, Value) {
        self.send(
            "/v1/reviews",
            signer,
            &json!({
                "apiVersion": "catalog.srcos.ai/v1", "kind": "Review",
                "entry": {"targetCatalogRef": target, "subjectDigest": {"sha256": hex}},
                "reviewer": signer.verifier().short_id(),
                "channel": channel, "verdict": verdict,
            }),
        )
    }

    /// A promotion.
    pub fn promote(
        &self,
        signer: &Signer,
        target: &str,
        hex: &str,
        from: &str,
        to: &str,
    ) -> (u16, Value) {
        self.send(
            "/v1/promotions",
            signer,
            &json!({
                "apiVersion": "catalog.srcos.ai/v1", "kind": "Promotion",
                "entry": {"targetCatalogRef": target, "subjectDigest": {"sha256": hex}},
                "fromChannel": from, "toChannel": to,
            }),
        )
    }

    /// A status change.
    pub fn status(&self, signer: &Signer, target: &str, hex: &str, status: &str) -> (u16, Value) {
        self.send(
            "/v1/status-changes",
            signer,
            &json!({
                "apiVersion": "catalog.srcos.ai/v1", "kind": "StatusChange",
                "entry": {"targetCatalogRef": target, "subjectDigest": {"sha256": hex}},
                "status": status,
            }),
        )
    }

    /// PUTs a blob under its own digest; returns (status, digest hex).
    pub fn upload(&self, bytes: &[u8]) -> (u16, String) {
        let hex = hex::encode(Sha256::digest(bytes));
        let (status, _) = self.put_blob(&hex, bytes);
        (status, hex)
    }

    /// PUTs `bytes` under `hex`, the upload intent signed by the admin.
    pub fn put_blob(&self, hex: &str, bytes: &[u8]) -> (u16, Value) {
        self.put_blob_as(&self.admin, hex, bytes)
    }

    /// PUTs `bytes` under `hex`, the upload intent signed by `uploader`.
    pub fn put_blob_as(&self, uploader: &Signer, hex: &str, bytes: &[u8]) -> (u16, Value) {
        let intent = upload_intent(uploader, &self.origin(), hex, bytes.len() as u64);
        self.put_blob_with(hex, bytes, &[("blob-intent", &intent)])
    }

    /// PUTs `bytes` under `hex` with these headers (no intent unless given).
    pub fn put_blob_with(&self, hex: &str, bytes: &[u8], headers: &[(&str, &str)]) -> (u16, Value) {
        let (status, body) =
            self.http
                .put_with(&format!("/v1/blobs/sha256:{hex}"), bytes.to_vec(), headers);
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// The log's origin (its key's name).
    pub fn origin(&self) -> String {
        read_signer(&self.data.join("log.key"))
            .unwrap()
            .name()
            .to_string()
    }

    /// GET a JSON document.
    pub fn get_json(&self, path: &str) -> (u16, Value) {
        let (status, _, body) = self.http.get(path);
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// The entry for `target` + subject (`hex`) through the list query.
    pub fn entry(&self, hex: &str) -> Value {
        let (status, v) = self.get_json(&format!("/v1/catalog/entries?subject=sha256:{hex}"));
        assert_eq!(status, 200, "{v}");
        v["entries"][0].clone()
    }

    /// Waits until the newest commitment covers the whole log. A commitment names the size
    /// the map thread had finished (usually the batch before its own); once the log is idle,
    /// a commitment of its own size follows (`state.md` §5).
    pub fn state_settled(&self) {
        use base64::Engine as _;
        let vkey = std::fs::read_to_string(self.data.join("log.vkey")).unwrap();
        let escaped: String = vkey
            .trim()
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let mut last = serde_json::Value::Null;
        for _ in 0..500 {
            let (status, body) = self.get_json(&format!("/v1/state/proofs?key={escaped}"));
            if status == 200 {
                let c = &body["commitment"];
                let entry = base64::engine::general_purpose::STANDARD
                    .decode(c["entry"].as_str().unwrap())
                    .unwrap();
                let leaf: serde_json::Value = serde_json::from_slice(&entry).unwrap();
                let index = c["logIndex"].as_u64().unwrap();
                if leaf["treeSize"].as_u64() == Some(index)
                    && c["treeSize"].as_u64() == Some(index + 1)
                {
                    return;
                }
            }
            last = body;
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("no commitment covered the log within 10 s: {last}");
    }

    /// Runs `replay` against the server, checked with the log's verifier key: every
    /// leaf re-applied, every root and state commitment recomputed.
    pub fn replay(&self) -> std::process::Output {
        let vkey = self.data.join("log.vkey");
        super::cli(&[
            "replay",
            "--server",
            &self.server.url,
            "--log-vkey",
            vkey.to_str().unwrap(),
        ])
    }
}

/// The 422 `errors` of an answer.
pub fn errors(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_else(|| vec![body["detail"].as_str().unwrap_or_default().to_string()])
}

/// An evidence item for `bytes`.
pub fn item(ty: &str, media: &str, bytes: &[u8]) -> Value {
    json!({
        "type": ty, "mediaType": media,
        "digest": {"sha256": hex::encode(Sha256::digest(bytes))},
        "uri": format!("file:///{ty}.json"), "size": bytes.len(),
    })
}

/// A request for subject `hex` with these evidence items and agentplane refs.
pub fn request(name: &str, hex: &str, channel: &str, evidence: Vec<Value>, refs: Value) -> Value {
    json!({
        "apiVersion": "catalog.srcos.ai/v1", "kind": "CatalogPublicationRequest",
        "subject": {"name": name, "digest": {"sha256": hex}},
        "targetCatalogRef": format!("{PREFIX}{}", name.rsplit('/').next().unwrap()),
        "channel": channel, "requesterRef": "socios://pipeline/test",
        "evidence": evidence, "agentplaneRefs": refs,
    })
}

/// No agentplane refs.
pub fn no_refs() -> Value {
    json!({"validationArtifactRef": null, "runArtifactRef": null, "replayArtifactRef": null})
}

/// A subject digest derived from `seed`.
pub fn subject_hex(seed: &str) -> String {
    hex::encode(Sha256::digest(seed.as_bytes()))
}

/// The evidence files of a complete, content-checked release: (type, media type, bytes).
pub fn release_evidence(subject: &str) -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let base = subject_hex("base");
    let t = subject_hex("task");
    vec![
        ("build-receipt", "application/json", json!({"kind": "SmokeRunnerImageBuildReceipt", "imageRef": "x:dev", "pushed": "false"}).to_string().into_bytes()),
        ("sbom", "application/spdx+json", json!({"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "x", "packages": []}).to_string().into_bytes()),
        ("vulnerability-scan", "application/vnd.anchore.grype+json", json!({"matches": [{"vulnerability": {"id": "CVE-1", "severity": "Low"}}]}).to_string().into_bytes()),
        ("provenance", "application/json", json!({"kind": "SmokeRunnerImageProvenance", "imageRef": format!("quay.io/x@sha256:{subject}")}).to_string().into_bytes()),
        ("smoke-receipt", "application/json", json!({"kind": "SmokeRunnerLiveIsoSmokeReceipt", "result": "passed", "n": subject}).to_string().into_bytes()),
        ("base-image-receipt", "application/json", json!({"kind": "SmokeRunnerBaseImageReceipt", "baseImage": format!("f@sha256:{base}")}).to_string().into_bytes()),
        ("task-image-digests", "application/json", json!({"kind": "SmokeRunnerTaskImageDigestReceipt", "builderImage": {"ref": "b", "digest": format!("sha256:{t}")}}).to_string().into_bytes()),
    ]
}

/// agentplane validation and run refs.
pub fn agentplane_refs(seed: &str) -> Value {
    json!({
        "validationArtifactRef": {"uri": format!("agentplane://validation-artifact/{seed}"), "digest": {"sha256": subject_hex(&format!("v{seed}"))}},
        "runArtifactRef": {"uri": format!("agentplane://run-artifact/{seed}"), "digest": {"sha256": subject_hex(&format!("r{seed}"))}},
        "replayArtifactRef": null,
    })
}

/// Reads a file relative to the crate root.
pub fn crate_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}
