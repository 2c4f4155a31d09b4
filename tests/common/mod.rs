//! Shared helpers for the integration tests: a real `srcos-catalog serve` process on a
//! loopback port, and the real CLI.
#![allow(dead_code)]

pub mod authority;
pub mod backend;
pub mod contracts;
pub mod faults;
pub mod load;
pub mod services;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_srcos-catalog"))
}

/// Runs the CLI and returns its output.
pub fn cli(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running srcos-catalog")
}

/// Runs the CLI and insists it succeeds; returns stdout.
pub fn cli_ok(args: &[&str]) -> String {
    let out = cli(args);
    assert!(
        out.status.success(),
        "srcos-catalog {args:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A running server.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its data directory.
    pub data: PathBuf,
    /// Everything it printed on stdout before it started listening.
    pub banner: Vec<String>,
    /// What it printed on stdout after that (a frontend's takeover banner, say).
    later: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// The server process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Starts `serve` on an ephemeral loopback port and waits until it listens.
    pub fn start(data: &Path, extra: &[&str]) -> Server {
        let mut args: Vec<String> = vec![
            "serve".into(),
            "--data".into(),
            data.display().to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        Server::spawn(&args, data)
    }

    /// Runs the binary with `args` (a command that prints `listening on <url>` once it
    /// listens, like `serve` and `witness`) and waits until it listens.
    pub fn spawn(args: &[String], data: &Path) -> Server {
        let mut command = Command::new(bin());
        command.args(args);
        Server::spawn_command(command, data)
    }

    /// [`Server::spawn`] for a prepared command (e.g. the binary run through a shell).
    pub fn spawn_command(command: Command, data: &Path) -> Server {
        Server::spawn_until(command, data, "listening on ")
    }

    /// [`Server::spawn_command`], waiting for the line `<ready><url>` instead (a
    /// frontend prints `frontend listening on <url>`).
    pub fn spawn_until(mut command: Command, data: &Path, ready: &str) -> Server {
        let mut child = command
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning the server");
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        let mut banner = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        let url = loop {
            let mut line = String::new();
            let n = reader.read_line(&mut line).expect("reading server stdout");
            assert!(n > 0, "server exited before listening; printed {banner:?}");
            let line = line.trim_end().to_string();
            if let Some(url) = line.strip_prefix(ready) {
                break url.to_string();
            }
            banner.push(line);
            assert!(Instant::now() < deadline, "server did not start");
        };
        // Keep draining stdout so the server never blocks on a full pipe; the lines
        // are kept for `until_printed`.
        let later = Arc::new(Mutex::new(Vec::new()));
        let kept = later.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                kept.lock().unwrap().push(line.trim_end().to_string());
                line.clear();
            }
        });
        Server {
            child: Some(child),
            url,
            data: data.to_path_buf(),
            banner,
            later,
        }
    }

    /// Waits up to `timeout` for a line starting with `prefix` printed after the server
    /// started listening; returns it without the prefix.
    pub fn until_printed(&self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self
                .later
                .lock()
                .unwrap()
                .iter()
                .find_map(|l| l.strip_prefix(prefix).map(str::to_string));
            if let Some(rest) = found {
                return rest;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not print {prefix:?}; printed {:?}",
                self.later.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The line of the banner that starts with `prefix`, without the prefix.
    pub fn banner_value(&self, prefix: &str) -> Option<String> {
        self.banner
            .iter()
            .find_map(|l| l.strip_prefix(prefix).map(|s| s.trim().to_string()))
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then wait for a clean exit; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        match self.child.take() {
            Some(mut child) => {
                unsafe {
                    libc::kill(child.id() as i32, libc::SIGTERM);
                }
                child.wait().map(|s| s.success()).unwrap_or(false)
            }
            None => false,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A blocking HTTP helper on top of the library client.
pub struct Http {
    rt: tokio::runtime::Runtime,
    client: srcos_catalog::http::HttpClient,
}

impl Http {
    /// A client for `url`.
    pub fn new(url: &str) -> Http {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        Http {
            rt,
            client: srcos_catalog::http::HttpClient::new(url).expect("client"),
        }
    }

    /// GET; returns (status, content type, body).
    pub fn get(&self, path: &str) -> (u16, String, Vec<u8>) {
        let r = self.rt.block_on(self.client.get(path)).expect("GET");
        (
            r.status.as_u16(),
            r.content_type.unwrap_or_default(),
            r.body.to_vec(),
        )
    }

    /// PUT raw bytes; returns (status, body).
    pub fn put(&self, path: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
        let r = self
            .rt
            .block_on(
                self.client
                    .put(path, "application/octet-stream", body.into()),
            )
            .expect("PUT");
        (r.status.as_u16(), r.body.to_vec())
    }

    /// PUT raw bytes with extra headers; returns (status, body).
    pub fn put_with(&self, path: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> (u16, Vec<u8>) {
        let r = self
            .rt
            .block_on(
                self.client
                    .put_with(path, "application/octet-stream", headers, body.into()),
            )
            .expect("PUT");
        (r.status.as_u16(), r.body.to_vec())
    }

    /// POST JSON; returns (status, content type, body).
    pub fn post(&self, path: &str, body: Vec<u8>) -> (u16, String, Vec<u8>) {
        let r = self
            .rt
            .block_on(self.client.post(path, "application/json", body.into()))
            .expect("POST");
        (
            r.status.as_u16(),
            r.content_type.unwrap_or_default(),
            r.body.to_vec(),
        )
    }
}

/// A fresh temporary directory.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// A valid publication request for `subject` with a digest derived from `n`, carrying the
/// evidence types the default `dev` policy requires (build receipt, SBOM, scan,
/// provenance) by digest only.
pub fn request_json(subject: &str, n: u64, target: &str, channel: &str) -> String {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(format!("{subject}:{n}")));
    let ev = |ty: &str, media: &str| {
        let d = hex::encode(sha2::Sha256::digest(format!("{ty}:{subject}:{n}")));
        format!(
            r#"{{"type":"{ty}","mediaType":"{media}","digest":{{"sha256":"{d}"}},"uri":"file:///{ty}.json","size":1234}}"#
        )
    };
    let evidence = [
        ev("build-receipt", "application/json"),
        ev("sbom", "application/spdx+json"),
        ev("vulnerability-scan", "application/vnd.anchore.grype+json"),
        ev("provenance", "application/json"),
    ]
    .join(",");
    format!(
        r#"{{"apiVersion":"catalog.srcos.ai/v1","kind":"CatalogPublicationRequest",
"subject":{{"name":"{subject}","digest":{{"sha256":"{digest}"}}}},
"targetCatalogRef":"{target}","channel":"{channel}",
"requesterRef":"socios://pipeline/test",
"evidence":[{evidence}],
"agentplaneRefs":{{"validationArtifactRef":null,"runArtifactRef":null,"replayArtifactRef":null}}}}"#
    )
}

/// Sends raw bytes on a fresh TCP connection and returns (status, headers+body text).
/// Write errors are ignored: a server may answer (e.g. 413) and close before the client
/// has sent everything, and the answer is what the test checks.
pub fn raw_http(url: &str, request: &[u8]) -> (u16, String) {
    let addr = url.trim_start_matches("http://");
    exchange(
        std::net::TcpStream::connect(addr).expect("connect"),
        request,
    )
}

/// [`raw_http`] from the local address `source` (another loopback address, 127.0.0.2 and
/// up, stands for another client machine).
pub fn raw_http_from(url: &str, source: std::net::IpAddr, request: &[u8]) -> (u16, String) {
    let addr: std::net::SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stream = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(std::net::SocketAddr::new(source, 0)).unwrap();
        socket.connect(addr).await.expect("connect")
    });
    let stream = stream.into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    exchange(stream, request)
}

fn exchange(mut stream: std::net::TcpStream, request: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let _ = stream.write_all(request);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// A tiny xorshift generator for the randomized crash tests. Seeded from the clock, so
/// the moments vary run to run; the seed is printed so a failing run can be replayed.
pub struct Rng(pub u64);

impl Rng {
    /// A generator seeded from the clock; prints the seed under `label`.
    pub fn from_clock(label: &str) -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            | 1;
        eprintln!("{label} seed {seed}");
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A two-worker multi-threaded runtime, for tests that drive concurrent load.
pub fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Runs the Python script `tests/SCRIPT` with `args`, `stdin` on its standard input, and
/// insists it succeeds (`needs` names the packages `.ci/run` installs for it); returns
/// its stdout.
pub fn python_ok(script: &str, args: &[&str], stdin: &[u8], needs: &str) -> String {
    use std::io::Write as _;
    let mut child = Command::new("python3")
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests")
                .join(script),
        )
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("python3 (with {needs}: .ci/run installs it): {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("writing to the script");
    let out = child.wait_with_output().expect("the script");
    assert!(
        out.status.success(),
        "{script} {args:?} failed (needs {needs}):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
