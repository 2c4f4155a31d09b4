//! `srcos-catalog mirror`: a log copied between a data directory and a bucket (Ceph
//! radosgw from `.ci/services.sh`; those tests skip without it, and fail under `CI`),
//! verified against its signed checkpoint as it goes:
//! - POSIX → S3 → POSIX round-trips byte for byte (every tile of the checkpoint's tree,
//!   and the checkpoint), and a second run writes nothing;
//! - a mirror killed with `kill -9` midway leaves no checkpoint at the destination and,
//!   run again, skips what is there and completes;
//! - a tampered entry bundle or hash tile in the source is refused with an error naming
//!   it, before it (or, for a hash tile, anything) reaches the destination;
//! - with `--coordinator`, the mirrored log is continued by `serve` on S3 + PostgreSQL.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::load::{self, Load};
use common::services::{self, unique_prefix, S3Env};
use common::{tempdir, Server};
use srcos_catalog::http::HttpClient;
use srcos_catalog::keyfile::{read_signer, read_verifier};
use srcos_catalog::note::{KeyType, Signer};

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
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let workload = Load {
            workers: 8,
            base: 0,
            scope: "mirror",
            retry_503: false,
        };
        let tasks = load::run(
            &rt,
            &client,
            &publisher,
            &log_key,
            &workload,
            stop.clone(),
            acked.clone(),
        );
        while acked.lock().unwrap().len() < 2_500 {
            std::thread::sleep(Duration::from_millis(50));
        }
        load::stop(&rt, &stop, tasks);
        assert!(server.terminate(), "clean shutdown");
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
    let out = mirror(
        &[
            "--from",
            source.to_str().unwrap(),
            "--to",
            to.to_str().unwrap(),
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
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
    let out = mirror(
        &[
            "--from",
            source.to_str().unwrap(),
            "--to",
            to.to_str().unwrap(),
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
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
    let out = mirror(
        &[
            "--from",
            source.to_str().unwrap(),
            "--to",
            dir.path().join("to").to_str().unwrap(),
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("does not verify with the log key"),
        "{stderr}"
    );
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
    let mut command = Command::new(common::bin());
    command.args([
        "serve",
        "--data",
        data.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--store",
        &bucket,
        "--coordinator",
        &coordinator,
    ]);
    for (k, v) in s3.client_env() {
        command.env(k, v);
    }
    let server = Server::spawn_command(command, &data);
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
