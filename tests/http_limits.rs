//! Connection limits under hostile clients, over raw sockets: slow headers, stalled
//! bodies and idle keep-alive connections are closed on time, the connection cap holds
//! and keeps the log writable (also under a low descriptor limit), a greedy client gets
//! 429 with `Retry-After`, and SIGTERM returns within its deadline with stalled clients.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{bin, request_json, tempdir, Http, Server};
use srcos_catalog::catalog::sign_envelope;
use srcos_catalog::keyfile::read_signer;
use srcos_catalog::note::{KeyType, Signer};

fn connect(url: &str) -> TcpStream {
    TcpStream::connect(url.trim_start_matches("http://")).expect("connect")
}

/// Reads until the server closes the connection (or `limit` passes); returns how long
/// that took and what was read. `None` when the connection was still open at `limit`.
fn time_to_close(stream: &mut TcpStream, limit: Duration) -> Option<(Duration, Vec<u8>)> {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.checked_sub(start.elapsed())?;
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return Some((start.elapsed(), got)),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some((start.elapsed(), got))
            }
            Err(_) => return None,
        }
    }
}

/// Grants a fresh publisher and publishes one entry; returns the publication's status.
fn publish(url: &str, data: &Path, n: u64) -> u16 {
    let http = Http::new(url);
    let admin = read_signer(&data.join("admin.key")).unwrap();
    let publisher = Signer::generate("limits.example/publisher", KeyType::Ed25519).unwrap();
    let grant = serde_json::json!({
        "apiVersion": "catalog.srcos.ai/v1", "kind": "PublisherGrant",
        "publisherKey": publisher.verifier().to_vkey(), "role": "publisher",
        "targetPrefixes": ["sourceos://catalog/images/"], "channels": ["dev"],
    });
    let grant = sign_envelope(&serde_jcs::to_vec(&grant).unwrap(), &admin);
    let (status, _, body) = http.post("/v1/admin/grants", grant.to_json().into_bytes());
    assert_eq!(status, 201, "grant: {}", String::from_utf8_lossy(&body));
    let request: serde_json::Value = serde_json::from_str(&request_json(
        "quay.io/limits/s",
        n,
        "sourceos://catalog/images/limits",
        "dev",
    ))
    .unwrap();
    let envelope = sign_envelope(&serde_jcs::to_vec(&request).unwrap(), &publisher);
    let (status, _, body) = http.post("/v1/publications", envelope.to_json().into_bytes());
    assert!(
        (200..300).contains(&status),
        "publication: {status} {}",
        String::from_utf8_lossy(&body)
    );
    status
}

fn start(extra: &[&str]) -> (tempfile::TempDir, Server) {
    let dir = tempdir();
    let data = dir.path().join("data");
    let server = Server::start(&data, extra);
    (dir, server)
}

#[test]
fn a_slowloris_header_is_cut_at_the_header_timeout() {
    let (_dir, server) = start(&["--header-timeout", "1"]);
    let mut slow = connect(&server.url);
    slow.write_all(b"GET /v1/log HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    let closed = time_to_close(&mut slow, Duration::from_secs(8));
    let (after, _) = closed.expect("a half-sent header must not hold the connection");
    assert!(after < Duration::from_secs(4), "closed after {after:?}");
    // A connection that never sends a byte is closed too.
    let mut silent = connect(&server.url);
    assert!(time_to_close(&mut silent, Duration::from_secs(8)).is_some());
}

#[test]
fn a_stalled_body_is_cut_at_the_body_timeout() {
    let (_dir, server) = start(&["--body-timeout", "1"]);
    let mut stalled = connect(&server.url);
    stalled
        .write_all(
            b"POST /v1/publications HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 1000\r\n\r\n{\"payloadType\":",
        )
        .unwrap();
    let closed = time_to_close(&mut stalled, Duration::from_secs(8));
    let (after, answer) = closed.expect("a stalled body must not hold the connection");
    assert!(after < Duration::from_secs(4), "closed after {after:?}");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "{answer}"
    );
}

#[test]
fn an_idle_keep_alive_connection_is_closed() {
    let (_dir, server) = start(&["--header-timeout", "1"]);
    let mut idle = connect(&server.url);
    idle.write_all(b"GET /v1/log HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let closed = time_to_close(&mut idle, Duration::from_secs(8));
    let (after, answer) = closed.expect("an idle keep-alive connection must be closed");
    assert!(after < Duration::from_secs(4), "closed after {after:?}");
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
}

#[test]
fn the_connection_cap_holds_and_publications_still_succeed() {
    let (_dir, server) = start(&["--max-connections", "4", "--header-timeout", "2"]);
    let held: Vec<TcpStream> = (0..4 + 16).map(|_| connect(&server.url)).collect();
    std::thread::sleep(Duration::from_millis(300));
    // Over the cap: a request waits for a slot instead of being served at once...
    let mut late = connect(&server.url);
    late.write_all(b"GET /v1/log HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    late.set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let mut first = [0u8; 1];
    assert!(
        late.read(&mut first).is_err(),
        "a connection over the cap was served at once"
    );
    // ... and is served once the idle ones are cut.
    let closed = time_to_close(&mut late, Duration::from_secs(15));
    let (_, answer) = closed.expect("the waiting request was never served");
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    // A real publication goes through while the attacker holds its sockets.
    publish(&server.url, &server.data, 1);
    drop(held);
}

#[test]
fn a_greedy_client_gets_429_with_retry_after() {
    let (_dir, server) = start(&[
        "--per-ip-rate",
        "2",
        "--per-ip-burst",
        "3",
        "--limit-loopback",
    ]);
    let mut refused = None;
    for _ in 0..10 {
        let (status, text) = common::raw_http(
            &server.url,
            b"GET /v1/log HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        if status == 429 {
            refused = Some(text);
            break;
        }
        assert_eq!(status, 200, "{text}");
    }
    let text = refused.expect("10 requests at once must exceed 2/s with a burst of 3");
    let retry_after = text
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("retry-after: ")
                .map(str::to_string)
        })
        .expect("Retry-After");
    assert!(retry_after.trim().parse::<u64>().unwrap() >= 1, "{text}");
    // Other limits are per client: loopback is spared when not asked for.
    let (_dir2, open) = start(&["--per-ip-rate", "2", "--per-ip-burst", "3"]);
    for _ in 0..10 {
        let (status, _) = common::raw_http(
            &open.url,
            b"GET /v1/log HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(status, 200);
    }
}

#[test]
fn sigterm_with_stalled_clients_exits_within_the_deadline() {
    let (_dir, mut server) = start(&[
        "--shutdown-timeout",
        "1",
        "--body-timeout",
        "120",
        "--header-timeout",
        "120",
    ]);
    // Two requests in flight whose bodies never finish, and one half-sent header.
    let mut stalled: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = connect(&server.url);
            s.write_all(
                b"POST /v1/publications HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{",
            )
            .unwrap();
            s
        })
        .collect();
    let mut half = connect(&server.url);
    half.write_all(b"GET /v1/log HTTP/1.1\r\n").unwrap();
    stalled.push(half);
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    let (done, wait) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let clean = server.terminate();
        let _ = done.send(clean);
    });
    let clean = wait
        .recv_timeout(Duration::from_secs(10))
        .expect("SIGTERM did not return within 10 s with stalled clients");
    assert!(clean, "the server did not exit cleanly");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

/// `serve` under `ulimit -n 256`, started through the shell.
fn start_under_ulimit(data: &Path, extra: &str) -> Server {
    let script = format!(
        "ulimit -n 256 && exec '{}' serve --data '{}' --listen 127.0.0.1:0 {extra}",
        bin().display(),
        data.display()
    );
    let mut command = Command::new("sh");
    command.args(["-c", &script]);
    Server::spawn_command(command, data)
}

#[test]
fn three_hundred_idle_sockets_under_ulimit_256_do_not_stop_publications() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let server = start_under_ulimit(&data, "--header-timeout 2");
    let url = server.url.clone();
    publish(&url, &data, 1);
    let held: Vec<TcpStream> = (0..300).map(|_| connect(&url)).collect();
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let status = publish(&url, &data, 2);
    assert!((200..300).contains(&status));
    assert!(started.elapsed() < Duration::from_secs(20));
    // The log stayed healthy: a third publication after the attacker left.
    drop(held);
    publish(&url, &data, 3);
}

/// GET `path` with or without `Accept-Encoding: gzip`; returns (content-encoding, body).
fn get_encoded(url: &str, path: &str, gzip: bool) -> (Option<String>, Vec<u8>) {
    let mut stream = connect(url);
    let accept = if gzip {
        "Accept-Encoding: gzip\r\n"
    } else {
        ""
    };
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{accept}Connection: close\r\n\r\n"
    )
    .unwrap();
    let (_, raw) = time_to_close(&mut stream, Duration::from_secs(10)).expect("answer");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let mut body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    let encoding = head
        .lines()
        .find_map(|l| l.strip_prefix("content-encoding: ").map(str::to_string));
    (encoding, body)
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line = body.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&body[..line]).unwrap(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[line + 2..line + 2 + size]);
        body = &body[line + 2 + size + 2..];
    }
}

#[test]
fn entry_bundles_are_gzipped_only_for_clients_that_ask() {
    let (_dir, server) = start(&[]);
    for n in 0..3 {
        publish(&server.url, &server.data, n);
    }
    let (_, _, log) = Http::new(&server.url).get("/v1/log");
    let size = serde_json::from_slice::<serde_json::Value>(&log).unwrap()["treeSize"]
        .as_u64()
        .unwrap();
    let path = format!("/tile/entries/000.p/{size}");
    let (plain_encoding, plain) = get_encoded(&server.url, &path, false);
    assert_eq!(plain_encoding, None);
    let (encoding, compressed) = get_encoded(&server.url, &path, true);
    assert_eq!(encoding.as_deref(), Some("gzip"));
    let mut inflated = Vec::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_end(&mut inflated)
        .unwrap();
    assert_eq!(inflated, plain);
    assert!(compressed.len() < plain.len());
    // Hash tiles do not compress: they are served as they are.
    let (hash_encoding, _) = get_encoded(&server.url, &format!("/tile/0/000.p/{size}"), true);
    assert_eq!(hash_encoding, None);
}

#[test]
fn the_witness_cuts_slow_headers_and_stalled_bodies_too() {
    let dir = tempdir();
    let witness_key = dir.path().join("w1");
    let log_key = dir.path().join("log");
    common::cli_ok(&[
        "keygen",
        "--name",
        "w1.example",
        "--witness",
        "--out",
        witness_key.to_str().unwrap(),
    ]);
    common::cli_ok(&[
        "keygen",
        "--name",
        "limits.example/log",
        "--out",
        log_key.to_str().unwrap(),
    ]);
    let state = dir.path().join("state");
    let args: Vec<String> = [
        "witness",
        "--listen",
        "127.0.0.1:0",
        "--key",
        witness_key.with_extension("key").to_str().unwrap(),
        "--log",
        &format!(
            "limits.example/log={}",
            log_key.with_extension("vkey").display()
        ),
        "--state",
        state.to_str().unwrap(),
        "--header-timeout",
        "1",
        "--body-timeout",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let witness = Server::spawn(&args, &state);
    let mut slow = connect(&witness.url);
    slow.write_all(b"POST /add-checkpoint HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let (after, _) = time_to_close(&mut slow, Duration::from_secs(8)).expect("slow head held");
    assert!(after < Duration::from_secs(4), "{after:?}");
    let mut stalled = connect(&witness.url);
    stalled
        .write_all(
            b"POST /add-checkpoint HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\nold 0\n",
        )
        .unwrap();
    let (after, _) =
        time_to_close(&mut stalled, Duration::from_secs(8)).expect("stalled body held");
    assert!(after < Duration::from_secs(4), "{after:?}");
}
