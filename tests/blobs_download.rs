//! Blob downloads stream from disk and are bounded (issue 10 §1): the server's memory
//! stays flat while many clients ask for a large blob and read nothing, and downloads
//! beyond the bound are answered 503 with `Retry-After`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::authority::Authority;

const BLOB_BYTES: usize = 32 << 20;
const CLIENTS: usize = 16;

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS");
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmRSS value");
    kb * 1024
}

/// Sends `GET path` on a new connection and returns it unread.
fn stalled_get(url: &str, path: &str) -> TcpStream {
    let addr = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    stream
}

fn large_blob(a: &Authority) -> String {
    let bytes: Vec<u8> = (0..BLOB_BYTES).map(|i| (i % 251) as u8).collect();
    let (status, hex) = a.upload(&bytes);
    assert_eq!(status, 201);
    hex
}

#[test]
fn memory_stays_flat_while_clients_stall_on_a_large_blob() {
    let a = Authority::start(&[]);
    let hex = large_blob(&a);
    let path = format!("/v1/blobs/sha256:{hex}");
    std::thread::sleep(Duration::from_millis(300));
    let before = rss_bytes(a.server.pid());
    let streams: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| stalled_get(&a.server.url, &path))
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let after = rss_bytes(a.server.pid());
    let grown = after.saturating_sub(before);
    // Reading the blob into memory per request would grow by BLOB_BYTES × CLIENTS
    // (512 MiB), and even one request doing so by BLOB_BYTES; streaming keeps a few
    // chunks per connection (~1 MiB each with mimalloc's per-thread heaps, ADR 0017).
    assert!(
        grown < BLOB_BYTES as u64,
        "RSS grew by {} MiB ({} -> {} MiB) with {CLIENTS} stalled downloads of a {} MiB blob",
        grown >> 20,
        before >> 20,
        after >> 20,
        BLOB_BYTES >> 20
    );
    // A client that reads gets every byte, while the others still stall.
    let addr = a.server.url.trim_start_matches("http://");
    let mut reader = TcpStream::connect(addr).unwrap();
    write!(
        reader,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    reader.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head")
        + 4;
    assert!(response.starts_with(b"HTTP/1.1 200"));
    assert_eq!(response.len() - split, BLOB_BYTES);
    drop(streams);
}

/// A blob is publisher-supplied bytes that the catalog browser links to: a browser must
/// neither sniff it into HTML nor run anything in it.
#[test]
fn a_download_is_never_sniffed_and_is_sandboxed() {
    let a = Authority::start(&[]);
    let (status, hex) = a.upload(b"<html><script>alert(1)</script></html>");
    assert_eq!(status, 201);
    let mut stream = stalled_get(&a.server.url, &format!("/v1/blobs/sha256:{hex}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains("content-type: application/octet-stream"),
        "{head}"
    );
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    assert!(
        head.contains("content-security-policy: sandbox; default-src 'none'"),
        "{head}"
    );
}

#[test]
fn downloads_beyond_the_bound_are_told_to_retry() {
    let a = Authority::start(&["--max-blob-downloads", "2"]);
    let hex = large_blob(&a);
    let path = format!("/v1/blobs/sha256:{hex}");
    let _held: Vec<TcpStream> = (0..2).map(|_| stalled_get(&a.server.url, &path)).collect();
    std::thread::sleep(Duration::from_millis(500));
    let mut third = stalled_get(&a.server.url, &path);
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && third.read(&mut byte).unwrap() == 1 {
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 503"), "{head}");
    assert!(head.contains("retry-after:"), "{head}");
}

#[test]
fn a_client_that_stops_reading_gives_back_its_download_slot() {
    // One download slot, and writes that may wait one second: a client that asks for a
    // large blob and reads nothing is disconnected, and the next client is served.
    let a = Authority::start(&["--max-blob-downloads", "1", "--write-timeout", "1"]);
    let hex = large_blob(&a);
    let path = format!("/v1/blobs/sha256:{hex}");
    let _stalled = stalled_get(&a.server.url, &path);
    std::thread::sleep(Duration::from_millis(300));
    let status_now = first_status(&a.server.url, &path);
    assert_eq!(
        status_now, 503,
        "the only slot is held by the stalled client"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        first_status(&a.server.url, &path),
        200,
        "the stalled client still holds the download slot after the write timeout"
    );
}

/// The status code of `GET path` on a new connection (the body is not read).
fn first_status(url: &str, path: &str) -> u16 {
    let mut stream = stalled_get(url, path);
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).unwrap();
    String::from_utf8_lossy(&head[9..12]).parse().unwrap()
}
