//! One writer per log (issue 10 §5): two `serve --data d` on one directory both appended
//! leaf 2 with different roots, a fork signed by the log key. The data directory's lock
//! (`DATA/lock`, an exclusive `flock` holding the writer's PID) makes a second writer,
//! `serve` or any `--data` command, fail at once naming the holder; read-only commands
//! still run beside it.

mod common;

use std::time::{Duration, Instant};

use common::Server;
use srcos_catalog::client::LocalAuthority;

/// The PID the lock file names, checked to be a live `serve` process.
fn holder(data: &std::path::Path) -> u32 {
    let text = std::fs::read_to_string(data.join("lock")).unwrap();
    let pid: u32 = text.trim().parse().unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        String::from_utf8_lossy(&cmdline).contains("serve"),
        "the lock names process {pid}, which is not the server"
    );
    pid
}

#[test]
fn a_second_writer_on_one_data_directory_fails_at_once_naming_the_holder() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    let pid = holder(&data);
    let size_before = common::Http::new(&server.url).get("/checkpoint").2;

    // A second server on the same directory: refused before it touches anything.
    let started = Instant::now();
    let second = common::cli(&[
        "serve",
        "--data",
        data.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(!second.status.success(), "a second writer started");
    assert!(started.elapsed() < Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains(&format!("process {pid}")), "{stderr}");

    // A local `--data` authority (what every `--data` command opens), from this process.
    let error = LocalAuthority::open(&data)
        .err()
        .expect("a local authority opened a directory a server writes")
        .to_string();
    assert!(error.contains(&format!("process {pid}")), "{error}");

    // The first server is untouched, and read-only commands still run beside it.
    assert_eq!(
        common::Http::new(&server.url).get("/checkpoint").2,
        size_before
    );
    let fsck = common::cli_ok(&["fsck", "--data", data.to_str().unwrap()]);
    assert!(fsck.starts_with("OK"), "{fsck}");
    common::cli_ok(&["replay", "--data", data.to_str().unwrap()]);

    // Once the writer is gone (even by kill -9), the directory opens again.
    drop(server);
    let again = Server::start(&data, &[]);
    assert_ne!(holder(&data), pid);
    drop(again);
}
