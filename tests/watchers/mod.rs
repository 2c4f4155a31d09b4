//! Helpers for the witness, cosigning, monitor and split-view tests: a log with a
//! granted publisher, witness processes, monitor runs, data-directory copies, a static
//! tlog-tiles mirror and a witness that never answers.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use srcos_catalog::catalog::sign_envelope;
use srcos_catalog::keyfile::read_signer;
use srcos_catalog::note::{KeyType, Note, Signer, Verifier};

use crate::common::backend::Backend;
use crate::common::{bin, cli, cli_ok, request_json, Http, Server};

/// The subject most tests publish under.
pub const SUBJECT: &str = "quay.io/socios/sourceos-smoke-runner";
/// Its catalog target.
pub const TARGET: &str = "sourceos://catalog/images/sourceos-smoke-runner";

/// A new publisher key.
pub fn publisher() -> Signer {
    Signer::generate("pipeline.example/test", KeyType::Ed25519).expect("publisher key")
}

/// Has the log's admin (`DATA/admin.key`) grant `publisher` the `sourceos://catalog/`
/// prefix on `dev`.
pub fn grant(url: &str, data: &Path, publisher: &Signer) {
    let admin = read_signer(&data.join("admin.key")).expect("admin key");
    let grant = serde_json::json!({
        "apiVersion": "catalog.srcos.ai/v1", "kind": "PublisherGrant",
        "publisherKey": publisher.verifier().to_vkey(), "role": "publisher",
        "targetPrefixes": ["sourceos://catalog/"], "channels": ["dev"],
    });
    let payload = serde_jcs::to_vec(&grant).expect("grant json");
    let envelope = sign_envelope(&payload, &admin).to_json();
    let (status, _, body) = Http::new(url).post("/v1/admin/grants", envelope.into_bytes());
    assert_eq!(status, 201, "grant: {}", String::from_utf8_lossy(&body));
}

/// Submits publication `n` of `subject`; returns (status, body).
pub fn publish(url: &str, publisher: &Signer, subject: &str, n: u64) -> (u16, Vec<u8>) {
    let request: serde_json::Value =
        serde_json::from_str(&request_json(subject, n, TARGET, "dev")).expect("request json");
    let payload = serde_jcs::to_vec(&request).expect("canonical request");
    let envelope = sign_envelope(&payload, publisher).to_json();
    let (status, _, body) = Http::new(url).post("/v1/publications", envelope.into_bytes());
    (status, body)
}

/// Submits publication `n` and insists on a 201; returns the receipt JSON.
pub fn publish_ok(url: &str, publisher: &Signer, subject: &str, n: u64) -> Vec<u8> {
    let (status, body) = publish(url, publisher, subject, n);
    assert_eq!(status, 201, "publish: {}", String::from_utf8_lossy(&body));
    body
}

/// The server's current tree size (`GET /v1/log`).
pub fn tree_size(url: &str) -> u64 {
    let (status, _, body) = Http::new(url).get("/v1/log");
    assert_eq!(status, 200);
    let info: serde_json::Value = serde_json::from_slice(&body).expect("log info");
    info["treeSize"].as_u64().expect("treeSize")
}

/// The served `/checkpoint` bytes (200 required).
pub fn checkpoint(url: &str) -> Vec<u8> {
    let (status, _, body) = Http::new(url).get("/checkpoint");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    body
}

/// A new log in `data` with a granted publisher and `entries` publications of
/// [`SUBJECT`]; the server is stopped cleanly before returning.
pub fn new_log(data: &Path, entries: u64) -> Signer {
    new_log_on(&Backend::Posix, data, entries)
}

/// [`new_log`] on `backend`.
pub fn new_log_on(backend: &Backend, data: &Path, entries: u64) -> Signer {
    let mut server = backend.start(data, &[]);
    let publisher = publisher();
    grant(&server.url, data, &publisher);
    for n in 0..entries {
        publish_ok(&server.url, &publisher, SUBJECT, n);
    }
    assert!(server.terminate(), "clean shutdown");
    publisher
}

/// The log's origin (the name of `DATA/log.vkey`).
pub fn origin(data: &Path) -> String {
    let vkey = std::fs::read_to_string(data.join("log.vkey")).expect("log.vkey");
    vkey.split('+').next().expect("origin").to_string()
}

/// A witness key pair `DIR/NAME.key` / `.vkey` made with `keygen --witness`.
pub fn witness_key(dir: &Path, name: &str) -> PathBuf {
    let prefix = dir.join(name);
    cli_ok(&[
        "keygen",
        "--witness",
        "--name",
        &format!("witness.example/{name}"),
        "--out",
        prefix.to_str().expect("path"),
    ]);
    prefix
}

/// Starts `witness` with key `PREFIX.key`, following the logs `(origin, vkey file)`.
pub fn start_witness(prefix: &Path, logs: &[(&str, &Path)], state: &Path) -> Server {
    let mut args: Vec<String> = vec![
        "witness".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--key".into(),
        prefix.with_extension("key").display().to_string(),
        "--state".into(),
        state.display().to_string(),
    ];
    for (origin, vkey) in logs {
        args.push("--log".into());
        args.push(format!("{origin}={}", vkey.display()));
    }
    Server::spawn(&args, state)
}

/// The `--witness URL=VKEY` value for a witness.
pub fn witness_arg(witness_url: &str, prefix: &Path) -> String {
    format!("{witness_url}={}", prefix.with_extension("vkey").display())
}

/// Runs `monitor` with `args` and returns (exit code, stdout).
pub fn monitor(args: &[&str]) -> (i32, String) {
    let out: Output = cli(&[&["monitor"], args].concat());
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.code() == Some(1) {
        eprintln!("monitor stderr: {}", String::from_utf8_lossy(&out.stderr));
    }
    (out.status.code().unwrap_or(-1), stdout)
}

/// `monitor --once` against `url` with `state` and the log key of `data`, plus `extra`.
pub fn monitor_once(url: &str, data: &Path, state: &Path, extra: &[&str]) -> (i32, String) {
    let vkey = data.join("log.vkey");
    let mut args = vec![
        "--server",
        url,
        "--log-vkey",
        vkey.to_str().expect("path"),
        "--state",
        state.to_str().expect("path"),
        "--once",
    ];
    args.extend_from_slice(extra);
    monitor(&args)
}

/// Copies a directory tree (a stopped log's data directory).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Polls `check` every 50 ms until it holds; fails the test after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A static HTTP server for a directory, as a CDN or a plain web server would serve a
/// copy of `DATA/log/`: GET of existing files, 404 for everything else.
pub struct StaticMirror {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    _runtime: tokio::runtime::Runtime,
}

impl StaticMirror {
    /// Serves `root` until dropped.
    pub fn serve(root: &Path) -> StaticMirror {
        use axum::http::{StatusCode, Uri};
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let root = root.to_path_buf();
        let app = axum::Router::new().fallback(move |uri: Uri| {
            let path = uri.path().trim_start_matches('/').to_string();
            let file = root.join(&path);
            async move {
                let found = (!path.split('/').any(|p| p == ".."))
                    .then(|| std::fs::read(&file).ok())
                    .flatten()
                    .filter(|_| file.is_file());
                match found {
                    Some(bytes) => (StatusCode::OK, bytes),
                    None => (StatusCode::NOT_FOUND, Vec::new()),
                }
            }
        });
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        StaticMirror {
            url,
            _runtime: runtime,
        }
    }
}

/// A witness URL that accepts connections and never answers (a hung witness).
pub struct BlackHole {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    _listener: TcpListener,
}

impl BlackHole {
    /// Listens; the kernel completes connections into the backlog, nobody reads them.
    pub fn new() -> BlackHole {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        BlackHole {
            url,
            _listener: listener,
        }
    }
}

/// The binary's path (for spawning monitors in the background).
pub fn binary() -> PathBuf {
    bin()
}

/// Starts `serve` on `data` asking the witnesses `(url, key prefix)` to cosign, with
/// `extra` options (quorum, mode, timeouts).
pub fn start_witnessed_log(data: &Path, witnesses: &[(&str, &Path)], extra: &[&str]) -> Server {
    start_witnessed_log_on(&Backend::Posix, data, witnesses, extra)
}

/// [`start_witnessed_log`] on `backend`.
pub fn start_witnessed_log_on(
    backend: &Backend,
    data: &Path,
    witnesses: &[(&str, &Path)],
    extra: &[&str],
) -> Server {
    let mut args: Vec<String> = Vec::new();
    for (url, prefix) in witnesses {
        args.push("--witness".into());
        args.push(witness_arg(url, prefix));
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    backend.start(data, &args)
}

/// How many of `witnesses` cosigned the signed checkpoint `note`; the log's own
/// signature must verify too.
pub fn cosigners(note: &[u8], log: &Verifier, witnesses: &[Verifier]) -> usize {
    let note = Note::parse(note).expect("a signed note");
    let mut keys = vec![log.clone()];
    keys.extend_from_slice(witnesses);
    let verified = note.verify(&keys).expect("the note verifies");
    assert!(verified.iter().any(|v| v.verifier == *log), "log signature");
    verified.len() - 1
}

/// Runs `verify --log-vkey LOG_VKEY EXTRA... RECEIPT` on receipt bytes; returns whether
/// it succeeded and everything it printed.
pub fn verify_receipt(
    receipt: &[u8],
    dir: &Path,
    log_vkey: &Path,
    extra: &[&str],
) -> (bool, String) {
    let path = dir.join("receipt-under-test.json");
    std::fs::write(&path, receipt).expect("write receipt");
    let mut args = vec!["verify", "--log-vkey", log_vkey.to_str().expect("path")];
    args.extend_from_slice(extra);
    args.push(path.to_str().expect("path"));
    let out = cli(&args);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// Has the admin set the status of publication `n` of `subject` (see [`publish`]).
pub fn status_change(url: &str, data: &Path, subject: &str, n: u64, status: &str) {
    use sha2::Digest;
    let admin = read_signer(&data.join("admin.key")).expect("admin key");
    let digest = hex::encode(sha2::Sha256::digest(format!("{subject}:{n}")));
    let change = serde_json::json!({
        "apiVersion": "catalog.srcos.ai/v1", "kind": "StatusChange",
        "entry": {"targetCatalogRef": TARGET, "subjectDigest": {"sha256": digest}},
        "status": status,
    });
    let payload =
        serde_jcs::to_vec(&crate::common::authority::fresh(&change)).expect("status change json");
    let envelope = sign_envelope(&payload, &admin).to_json();
    let (code, _, body) = Http::new(url).post("/v1/status-changes", envelope.into_bytes());
    assert_eq!(
        code,
        201,
        "status change: {}",
        String::from_utf8_lossy(&body)
    );
}

/// A stopped log made by [`new_log`] in a fresh temporary directory, with what tests
/// need to start it again and to check what it serves.
pub struct StoppedLog {
    /// The temporary directory (the data directory is `data` inside it).
    pub dir: tempfile::TempDir,
    /// The data directory.
    pub data: PathBuf,
    /// The granted publisher.
    pub publisher: Signer,
    /// `DATA/log.vkey`.
    pub log_vkey: PathBuf,
    /// The log's verifier key.
    pub log_key: Verifier,
    /// The log's origin.
    pub origin: String,
}

/// [`new_log`] with `entries` publications in a fresh temporary directory.
pub fn stopped_log(entries: u64) -> StoppedLog {
    stopped_log_on(&Backend::Posix, entries)
}

/// [`stopped_log`] on `backend`.
pub fn stopped_log_on(backend: &Backend, entries: u64) -> StoppedLog {
    let dir = crate::common::tempdir();
    let data = dir.path().join("data");
    let publisher = new_log_on(backend, &data, entries);
    let log_vkey = data.join("log.vkey");
    let log_key = srcos_catalog::keyfile::read_verifier(&log_vkey).expect("log vkey");
    let origin = origin(&data);
    StoppedLog {
        dir,
        data,
        publisher,
        log_vkey,
        log_key,
        origin,
    }
}
