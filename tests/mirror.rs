//! `srcos-catalog mirror`: a log copied between a data directory and a bucket (Ceph
//! radosgw from `.ci/services.sh`; those tests skip without it, and fail under `CI`),
//! verified against its signed checkpoint as it goes:
//! - POSIX → S3 → POSIX round-trips byte for byte (every tile of the checkpoint's tree,
//!   the checkpoint, and the evidence blobs with their uploaders), and a second run
//!   writes nothing;
//! - a mirror killed with `kill -9` midway leaves no checkpoint at the destination and,
//!   run again, skips what is there and completes;
//! - a tampered entry bundle or hash tile in the source is refused with an error naming
//!   it, before it (or, for a hash tile, anything) reaches the destination;
//! - a tampered evidence blob in the source stops the mirror before it, or any tile,
//!   reaches the destination, and a destination holding other bytes under a blob's name
//!   is refused, never overwritten;
//! - with `--coordinator`, the mirrored log is continued by `serve` on S3 + PostgreSQL.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use common::backend::Backend;
use common::load::{self, Load};
use common::services::{self, unique_prefix, S3Env};
use common::{tempdir, Server};
use srcos_catalog::http::HttpClient;
use srcos_catalog::keyfile::{read_signer, read_verifier};
use srcos_catalog::note::{KeyType, Signer};
use srcos_catalog::storage::blobs::BlobStore;

/// The evidence blobs in the source log's store: (bytes, uploader). One is empty, one
/// spans several read chunks.
fn evidence() -> Vec<(Vec<u8>, &'static str)> {
    vec![
        (b"the first piece of evidence".to_vec(), "uploader+0001"),
        (
            (0..300_000u32).map(|i| (i % 251) as u8).collect(),
            "uploader+0002",
        ),
        (Vec::new(), "uploader+0001"),
        (vec![7u8; 70_000], "-"),
    ]
}

/// A blob's name: its SHA-256 as hex.
fn blob_name(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A stopped log of at least `entries` entries (more than a few entry bundles), made once
/// per test binary by a real server under a concurrent load.
fn source_log() -> &'static Path {
    static LOG: OnceLock<tempfile::TempDir> = OnceLock::new();
    LOG.get_or_init(|| {
        let dir = tempdir();
        let data = dir.path();
        let mut server = Server::start(data, &["--batch-max", "256"]);
        let rt = common::multi_thread_runtime();
        let client = HttpClient::new(&server.url).unwrap();
        let publisher = Signer::generate("mirror.example/publisher", KeyType::Ed25519).unwrap();
        let admin = read_signer(&data.join("admin.key")).unwrap();
        load::grant(&rt, &client, &admin, &publisher.verifier(), "mirror");
        let log_key = read_verifier(&data.join("log.vkey")).unwrap();
        let workload = Load {
            workers: 8,
            base: 0,
            scope: "mirror",
            retry_503: false,
        };
        let running = load::start(&rt, &client, &publisher, &log_key, &workload);
        while running.acknowledged() < 2_500 {
            std::thread::sleep(Duration::from_millis(50));
        }
        running.finish(&rt);
        assert!(server.terminate(), "clean shutdown");
        let blobs = BlobStore::open(&data.join("blobs"), 1 << 20).unwrap();
        for (bytes, uploader) in evidence() {
            assert!(blobs.put(&blob_name(&bytes), &bytes, uploader).unwrap());
        }
        dir
    })
    .path()
}

/// `srcos-catalog mirror ARGS` with the bucket's environment and progress lines on
/// every report.
fn mirror_command(args: &[&str], s3: Option<&S3Env>) -> Command {
    let mut command = Command::new(common::bin());
    command
        .arg("mirror")
        .args(args)
        .env("SRCOS_PROGRESS_EVERY", "0")
        .stdin(Stdio::null());
    for (k, v) in s3.map(S3Env::client_env).unwrap_or_default() {
        command.env(k, v);
    }
    command
}

fn mirror(args: &[&str], s3: Option<&S3Env>) -> Output {
    mirror_command(args, s3).output().expect("running mirror")
}

/// A mirror from directory `from` to directory `to` that must fail; its stderr.
fn mirror_fails(from: &Path, to: &Path) -> String {
    let out = mirror(
        &[
            "--from",
            from.to_str().unwrap(),
            "--to",
            to.to_str().unwrap(),
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{stderr}");
    stderr
}

fn mirror_ok(args: &[&str], s3: Option<&S3Env>) -> String {
    let out = mirror(args, s3);
    assert!(
        out.status.success(),
        "mirror {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every file under `dir`, by relative path.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path.strip_prefix(root).unwrap().display().to_string();
                out.insert(relative, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    if dir.is_dir() {
        walk(dir, dir, &mut out);
    }
    out
}

/// The copy holds exactly the source's checkpoint and tiles, byte for byte, except the
/// stale partial tiles the source kept (tlog-tiles allows them; the checkpoint's tree
/// does not need them, so they are not copied).
fn assert_same_log(source: &Path, copy: &Path) {
    let (source, copy) = (tree(&source.join("log")), tree(&copy.join("log")));
    assert!(copy.contains_key("checkpoint"), "no checkpoint copied");
    for (path, bytes) in &copy {
        assert_eq!(source.get(path), Some(bytes), "{path} differs or is extra");
    }
    for path in source.keys().filter(|p| !copy.contains_key(*p)) {
        assert!(path.contains(".p/"), "{path} was not copied");
    }
    assert!(copy.len() > 20, "only {} files", copy.len());
}

/// The copy holds exactly the source's evidence blobs and their uploaders.
fn assert_same_blobs(source: &Path, copy: &Path) {
    for dir in ["blobs/sha256", "blobs/owner"] {
        let (source, copy) = (tree(&source.join(dir)), tree(&copy.join(dir)));
        assert_eq!(source.len(), evidence().len(), "{dir}");
        assert_eq!(source, copy, "{dir} differs");
    }
}

fn s3_env(test: &str) -> Option<(S3Env, String)> {
    let s3 = services::s3(test)?;
    let url = format!("s3://{}/{}", s3.bucket, unique_prefix(test));
    Some((s3, url))
}

#[test]
fn a_log_round_trips_posix_to_s3_to_posix_byte_for_byte() {
    let Some((s3, bucket)) = s3_env("a_log_round_trips_posix_to_s3_to_posix") else {
        return;
    };
    let source = source_log();
    let dir = tempdir();
    let back = dir.path().join("back");
    let vkey = source.join("log.vkey");
    let out = mirror_ok(
        &["--from", source.to_str().unwrap(), "--to", &bucket],
        Some(&s3),
    );
    assert!(out.contains("checkpoint written"), "{out}");
    assert!(out.contains(": 4 evidence blobs written"), "{out}");
    let out = mirror_ok(
        &[
            "--from",
            &bucket,
            "--to",
            back.to_str().unwrap(),
            "--log-vkey",
            vkey.to_str().unwrap(),
        ],
        Some(&s3),
    );
    assert!(out.contains("checkpoint written"), "{out}");
    assert_same_log(source, &back);
    assert_same_blobs(source, &back);
    let fsck = srcos_catalog::log::fsck::fsck(&back).unwrap();
    assert!(fsck.problems.is_empty(), "fsck: {:?}", fsck.problems);
    assert_eq!(
        std::fs::read(back.join("log.vkey")).unwrap(),
        std::fs::read(&vkey).unwrap()
    );
    // Again: everything is there already.
    let out = mirror_ok(
        &["--from", source.to_str().unwrap(), "--to", &bucket],
        Some(&s3),
    );
    assert!(
        out.contains(" 0 objects written") && out.contains("checkpoint unchanged"),
        "{out}"
    );
    assert!(
        out.contains(": 0 evidence blobs written (0 bytes), 4 already there"),
        "{out}"
    );
    // The copy back needs no key flag: the directory has the log's verifier key.
    let again = dir.path().join("again");
    mirror_ok(
        &[
            "--from",
            back.to_str().unwrap(),
            "--to",
            again.to_str().unwrap(),
        ],
        None,
    );
    assert_same_log(&back, &again);
    assert_same_blobs(source, &again);
}

#[test]
fn a_mirror_killed_midway_resumes_and_completes() {
    let Some((s3, bucket)) = s3_env("a_mirror_killed_midway_resumes_and_completes") else {
        return;
    };
    let source = source_log();
    let mut child = mirror_command(
        &["--from", source.to_str().unwrap(), "--to", &bucket],
        Some(&s3),
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Killed at the first progress line past the start: some objects copied, not all.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let progress = loop {
        let line = lines
            .next()
            .expect("mirror finished before reporting progress")
            .unwrap();
        let Some(counts) = line
            .strip_prefix("mirror: ")
            .and_then(|rest| rest.split_whitespace().next())
        else {
            continue;
        };
        let (done, total) = counts.split_once('/').unwrap();
        let (done, total): (u64, u64) = (done.parse().unwrap(), total.parse().unwrap());
        if done > 0 {
            assert!(done < total, "the mirror ran to the end before the kill");
            break line;
        }
    };
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "not killed: {status}");
    eprintln!("killed after {progress:?}");

    // The checkpoint goes last, so the interrupted copy is no log yet: a reader of the
    // bucket sees nothing.
    let dir = tempdir();
    let back = dir.path().join("back");
    let vkey = source.join("log.vkey");
    let from_bucket = [
        "--from",
        &bucket,
        "--to",
        back.to_str().unwrap(),
        "--log-vkey",
        vkey.to_str().unwrap(),
    ];
    let out = mirror(&from_bucket, Some(&s3));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the source has no checkpoint"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = mirror_ok(
        &["--from", source.to_str().unwrap(), "--to", &bucket],
        Some(&s3),
    );
    let skipped: u64 = out
        .trim_end()
        .split(", ")
        .find_map(|part| part.strip_suffix(" already there; checkpoint written"))
        .unwrap_or_else(|| panic!("{out}"))
        .parse()
        .unwrap();
    assert!(skipped > 0, "nothing was resumed: {out}");
    mirror_ok(&from_bucket, Some(&s3));
    assert_same_log(source, &back);
}

/// Copies the source's log directory (and key) to a fresh directory to tamper with.
fn tamperable_copy(dir: &Path) -> PathBuf {
    let copy = dir.join("tampered");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::copy(source_log().join("log.vkey"), copy.join("log.vkey")).unwrap();
    copy_tree(&source_log().join("log"), &copy.join("log"));
    copy_tree(&source_log().join("blobs"), &copy.join("blobs"));
    copy
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn flip_byte(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_tampered_source_tile_is_refused_before_it_is_copied() {
    let dir = tempdir();
    // An entry's byte: the bundle no longer hashes to its level-0 tile.
    let source = tamperable_copy(dir.path());
    flip_byte(&source.join("log/tile/entries/001"), 100);
    let to = dir.path().join("to");
    let stderr = mirror_fails(&source, &to);
    assert!(
        stderr.contains("tile/entries/001 in the source does not match the signed checkpoint"),
        "{stderr}"
    );
    let copied = tree(&to.join("log"));
    assert!(
        copied.contains_key("tile/entries/000"),
        "bundles before it are copied"
    );
    assert!(
        !copied.contains_key("tile/entries/001"),
        "the tampered bundle was copied"
    );
    assert!(
        !copied.contains_key("checkpoint"),
        "a checkpoint was written"
    );

    // A hash in a level-0 tile: found before anything is written.
    let dir = tempdir();
    let source = tamperable_copy(dir.path());
    flip_byte(&source.join("log/tile/0/002"), 64);
    let to = dir.path().join("to");
    let stderr = mirror_fails(&source, &to);
    assert!(
        stderr.contains("does not match the signed checkpoint"),
        "{stderr}"
    );
    assert!(tree(&to.join("log")).is_empty(), "something was copied");

    // The honest source then mirrors into the same destination.
    let out = mirror_ok(
        &[
            "--from",
            source_log().to_str().unwrap(),
            "--to",
            to.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.contains("checkpoint written"), "{out}");
    assert_same_log(source_log(), &to);

    // A checkpoint the log key does not verify is refused.
    let dir = tempdir();
    let source = tamperable_copy(dir.path());
    let checkpoint = source.join("log/checkpoint");
    let text = std::fs::read_to_string(&checkpoint).unwrap();
    let (_, size_and_rest) = text.split_once('\n').unwrap();
    std::fs::write(&checkpoint, format!("another.example/log\n{size_and_rest}")).unwrap();
    let stderr = mirror_fails(&source, &dir.path().join("to"));
    assert!(
        stderr.contains("does not verify with the log key"),
        "{stderr}"
    );
}

#[test]
fn a_tampered_source_blob_stops_the_mirror_and_no_blob_is_replaced() {
    let big = blob_name(&evidence()[1].0);
    // A byte of a blob: refused before it, or any tile, is copied.
    let dir = tempdir();
    let source = tamperable_copy(dir.path());
    flip_byte(&source.join("blobs/sha256").join(&big), 1000);
    let to = dir.path().join("to");
    let stderr = mirror_fails(&source, &to);
    assert!(
        stderr.contains(&format!(
            "evidence blob sha256:{big} in the source does not hash to its name"
        )),
        "{stderr}"
    );
    assert!(
        !to.join("blobs/sha256").join(&big).exists(),
        "it was copied"
    );
    assert!(tree(&to.join("log")).is_empty(), "tiles were copied");
    assert_eq!(
        tree(&to.join("blobs/tmp")).len(),
        0,
        "the refused copy was left staged"
    );

    // The honest source: every blob copied; then a copy damaged at the destination is
    // refused, not replaced, and the mirror fails.
    mirror_ok(
        &[
            "--from",
            source_log().to_str().unwrap(),
            "--to",
            to.to_str().unwrap(),
        ],
        None,
    );
    assert_same_blobs(source_log(), &to);
    let copy = to.join("blobs/sha256").join(&big);
    flip_byte(&copy, 5);
    let damaged = std::fs::read(&copy).unwrap();
    let stderr = mirror_fails(source_log(), &to);
    assert!(
        stderr.contains(&format!(
            "the destination holds other bytes under evidence blob sha256:{big}"
        )),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&copy).unwrap(), damaged, "it was replaced");
}

/// Moving to the cluster: the embedded log mirrored into a bucket with `--coordinator`
/// (its checkpoint installed in PostgreSQL too), then `serve --store … --coordinator …`
/// continues it: the same checkpoint, and new entries on top.
#[test]
fn a_mirrored_log_is_continued_on_s3_and_postgres() {
    let test = "a_mirrored_log_is_continued_on_s3_and_postgres";
    let Some((s3, bucket)) = s3_env(test) else {
        return;
    };
    let Some(coordinator) = services::postgres_url(test) else {
        return;
    };
    let source = source_log();
    let out = mirror_ok(
        &[
            "--from",
            source.to_str().unwrap(),
            "--to",
            &bucket,
            "--coordinator",
            &coordinator,
        ],
        Some(&s3),
    );
    assert!(out.contains("checkpoint written"), "{out}");
    let dir = tempdir();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    for key in ["log.key", "log.vkey", "admin.key", "admin.vkey"] {
        if source.join(key).exists() {
            std::fs::copy(source.join(key), data.join(key)).unwrap();
        }
    }
    let cluster = Backend::Cluster {
        store: bucket.clone(),
        coordinator: coordinator.clone(),
        env: s3.client_env(),
    };
    let server = cluster.start(&data, &[]);
    let rt = common::multi_thread_runtime();
    let client = HttpClient::new(&server.url).unwrap();
    let served = rt
        .block_on(client.get("/checkpoint"))
        .unwrap()
        .body
        .to_vec();
    assert_eq!(
        served,
        std::fs::read(source.join("log/checkpoint")).unwrap(),
        "the server did not continue the mirrored log"
    );
    let log_key = read_verifier(&data.join("log.vkey")).unwrap();
    let (before, _) = srcos_catalog::note::open_checkpoint(&served, &log_key).unwrap();
    let publisher = Signer::generate("mirror.example/second", KeyType::Ed25519).unwrap();
    let admin = read_signer(&data.join("admin.key")).unwrap();
    load::grant(&rt, &client, &admin, &publisher.verifier(), "moved");
    let envelope = load::envelope(&publisher, "moved", 1);
    let r = rt
        .block_on(client.post("/v1/publications", "application/json", envelope.into()))
        .unwrap();
    assert_eq!(
        r.status.as_u16(),
        201,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let (after, _) = srcos_catalog::note::open_checkpoint(
        &rt.block_on(client.get("/checkpoint")).unwrap().body,
        &log_key,
    )
    .unwrap();
    assert_eq!(after.size, before.size + 2, "the grant and the publication");
}
