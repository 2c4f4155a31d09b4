//! File modes (issue 10 §7): with `umask 000` the data directory, tiles and blobs were
//! world-writable. Directories are created 0700 and files 0600 or 0644 whatever the
//! umask; a private key that group or others may read is refused, as ssh does.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// `serve` under `umask 000`, once it listens.
fn serve_with_umask_000(data: &Path) -> (Child, String) {
    let mut child = Command::new("sh")
        .args([
            "-c",
            "umask 000; exec \"$0\" serve --data \"$1\" --listen 127.0.0.1:0",
        ])
        .arg(common::bin())
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("serve exited before listening")
            .unwrap();
        if let Some(url) = line.strip_prefix("listening on ") {
            break url.to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, url)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        out.push(path.clone());
        if path.is_dir() {
            walk(&path, out);
        }
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn a_data_directory_created_under_umask_000_is_private() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    let (mut child, url) = serve_with_umask_000(&data);
    // Genesis is written and the server answers.
    let http = common::Http::new(&url);
    assert_eq!(http.get("/checkpoint").0, 200);
    let _ = child.kill();
    let _ = child.wait();

    assert_eq!(mode(&data), 0o700, "the data directory");
    let mut paths = Vec::new();
    walk(&data, &mut paths);
    assert!(paths.iter().any(|p| p.ends_with("log/checkpoint")));
    for path in &paths {
        let m = mode(path);
        let name = path.strip_prefix(&data).unwrap().display().to_string();
        // sled (the catalog's records, rebuilt at every open) creates its own files; they
        // sit in a 0700 directory no one else can enter.
        if name.starts_with("projection/records/") {
            continue;
        }
        if path.is_dir() {
            assert_eq!(m, 0o700, "{name} is {m:04o}");
            continue;
        }
        let expected = if name.ends_with(".key") || name == "lock" || name.starts_with("projection")
        {
            0o600
        } else {
            0o644
        };
        assert_eq!(m, expected, "{name} is {m:04o}");
    }
}

#[test]
fn a_log_key_readable_by_others_is_refused_at_start() {
    let dir = common::tempdir();
    let data = dir.path().join("data");
    let (mut child, _) = serve_with_umask_000(&data);
    let _ = child.kill();
    let _ = child.wait();
    let key = data.join("log.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = common::cli(&[
        "serve",
        "--data",
        data.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(!out.status.success(), "serve started with a 0644 log key");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("log.key") && stderr.contains("0644"),
        "{stderr}"
    );
}
