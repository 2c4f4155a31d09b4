//! The monitor as a real process against real servers and static mirrors: following a
//! log across monitor restarts with `--audit` and `--watch`, the rollback, fork,
//! bad-signature and unreachable alerts (each with its evidence, each keeping the last
//! good state), and an audit that catches a tampered entry bundle and an admission the
//! authority's rules refuse, neither of which a consistency check can see.

mod common;
mod watchers;

use common::backend::Backend;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use common::{tempdir, Server};
use sha2::{Digest, Sha256};
use srcos_catalog::keyfile::read_signer;
use srcos_catalog::log::commit;
use srcos_catalog::log::integrator::Integrator;
use srcos_catalog::note::{Checkpoint, KeyType, Signer};
use srcos_catalog::storage::posix::{PosixLock, PosixTiles};
use srcos_catalog::storage::LockedCheckpoint;
use srcos_catalog::tiles::decode_bundle;
use watchers::{
    binary, checkpoint, copy_dir, grant, monitor_once, new_log, origin, publish_ok, publisher,
    status_change, wait_until, BlackHole, StaticMirror, SUBJECT,
};

const OTHER: &str = "quay.io/other/thing";

fn state_size(state: &Path) -> u64 {
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(state).unwrap()).unwrap();
    let note = json["checkpoint"].as_str().unwrap();
    note.lines().nth(1).unwrap().parse().unwrap()
}

fn state_note(state: &Path) -> String {
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(state).unwrap()).unwrap();
    json["checkpoint"].as_str().unwrap().to_string()
}

fn events(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .filter_map(|l| l.strip_prefix("event "))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The alert printed, with both checkpoints as evidence, and the state kept.
fn assert_alert(code: i32, out: &str, kind: &str, evidence: &[&str], state: &Path, kept: u64) {
    assert_eq!(code, 2, "{out}");
    assert!(out.contains(&format!("ALERT {kind}:")), "{out}");
    for note in evidence {
        assert!(out.contains(note), "evidence {note:?} missing from:\n{out}");
    }
    assert_eq!(
        state_size(state),
        kept,
        "the state keeps the last good checkpoint"
    );
}

/// On the POSIX data directory and on S3 + PostgreSQL.
#[test]
fn follows_a_log_across_monitor_restarts_and_reports_watched_subjects() {
    for backend in Backend::all("monitor") {
        eprintln!("monitor on {}", backend.name());
        follows_across_restarts(&backend);
    }
}

fn follows_across_restarts(backend: &Backend) {
    let dir = tempdir();
    let data = dir.path().join("data");
    let server = backend.start(&data, &[]);
    let publisher = publisher();
    grant(&server.url, &data, &publisher);
    for n in 0..3 {
        publish_ok(&server.url, &publisher, SUBJECT, n);
        publish_ok(&server.url, &publisher, OTHER, n);
    }
    let state = dir.path().join("monitor.json");
    let watch = format!("subject={SUBJECT}");
    let args = ["--audit", "--watch", &watch];
    let (code, out) = monitor_once(&server.url, &data, &state, &args);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ok: first checkpoint"), "{out}");
    assert!(out.contains("8 admissions re-checked"), "{out}");
    let seen = events(&out);
    assert_eq!(seen.len(), 3, "{out}");
    assert!(seen
        .iter()
        .all(|e| e["subject"] == SUBJECT && e["kind"] == "Publication"));

    // A monitor running in the background follows new entries; kill -9 it.
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut child = Command::new(binary())
        .args([
            "monitor",
            "--server",
            &server.url,
            "--log-vkey",
            data.join("log.vkey").to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
            "--interval",
            "100ms",
            "--audit",
            "--watch",
            &watch,
        ])
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    publish_ok(&server.url, &publisher, SUBJECT, 10);
    publish_ok(&server.url, &publisher, SUBJECT, 11);
    // The monitor prints a poll's events before it saves the state (at least once), and
    // the reader thread may still be draining the pipe: wait for both.
    wait_until(
        Duration::from_secs(30),
        "the monitor to reach size 10 and report both events",
        || state_size(&state) == 10 && events(&lines.lock().unwrap().join("\n")).len() >= 2,
    );
    let _ = child.kill();
    let _ = child.wait();
    let background = lines.lock().unwrap().join("\n");
    let indices: Vec<u64> = events(&background)
        .iter()
        .map(|e| e["leafIndex"].as_u64().unwrap())
        .collect();
    assert_eq!(indices, vec![8, 9], "{background}");

    // A restarted monitor continues from its state: only the new events are reported,
    // including a decision about a watched publication, and its audit rebuilds the
    // catalog from entry 0 first.
    publish_ok(&server.url, &publisher, SUBJECT, 12);
    status_change(&server.url, &data, SUBJECT, 0, "archived");
    status_change(&server.url, &data, OTHER, 0, "archived");
    let (code, out) = monitor_once(&server.url, &data, &state, &args);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("grew from size 10 to 13"), "{out}");
    assert!(out.contains("13 admissions re-checked"), "{out}");
    let seen = events(&out);
    assert_eq!(seen.len(), 2, "{out}");
    assert_eq!(
        (seen[0]["leafIndex"].as_u64(), seen[0]["kind"].as_str()),
        (Some(10), Some("Publication"))
    );
    assert_eq!(seen[1]["kind"], "StatusChange");
    assert_eq!(seen[1]["leafIndex"], 11);
    assert_eq!(seen[1]["publicationIndex"], 2);
    assert_eq!(seen[1]["status"], "archived");
    assert_eq!(seen[1]["subject"], SUBJECT);

    // Without --audit, --watch alone also re-reads from entry 0 after a restart (to know
    // which publications are watched), and reports only what is new.
    publish_ok(&server.url, &publisher, SUBJECT, 13);
    let (code, out) = monitor_once(&server.url, &data, &state, &["--watch", &watch]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("entries 0..14 match"), "{out}");
    let seen = events(&out);
    assert_eq!(seen.len(), 1, "{out}");
    assert_eq!(seen[0]["leafIndex"], 13);
}

#[test]
fn rollback_and_fork_are_alerts_with_both_checkpoints_as_evidence() {
    let dir = tempdir();
    let a = dir.path().join("a");
    let publisher = new_log(&a, 3);
    let b = dir.path().join("b");
    copy_dir(&a, &b);
    let state = dir.path().join("monitor.json");

    let mut server_a = Server::start(&a, &[]);
    publish_ok(&server_a.url, &publisher, SUBJECT, 10);
    publish_ok(&server_a.url, &publisher, SUBJECT, 11);
    let (code, out) = monitor_once(&server_a.url, &a, &state, &[]);
    assert_eq!(code, 0, "{out}");
    let good = state_note(&state);
    assert_eq!(state_size(&state), 7);
    assert!(server_a.terminate());

    // B is the copy at size 5, signed by the same key: a rollback.
    let server_b = Server::start(&b, &[]);
    let served = String::from_utf8(checkpoint(&server_b.url)).unwrap();
    let (code, out) = monitor_once(&server_b.url, &b, &state, &[]);
    assert_alert(code, &out, "rollback", &[&good, &served], &state, 7);

    // B grows differently to size 7: same size, another root.
    publish_ok(&server_b.url, &publisher, OTHER, 10);
    publish_ok(&server_b.url, &publisher, OTHER, 11);
    let served = String::from_utf8(checkpoint(&server_b.url)).unwrap();
    let (code, out) = monitor_once(&server_b.url, &b, &state, &[]);
    assert_alert(code, &out, "fork", &[&good, &served], &state, 7);
    assert!(out.contains("two checkpoints of size 7"), "{out}");

    // B at size 8: its consistency proof from 7 cannot lead to A's root.
    publish_ok(&server_b.url, &publisher, OTHER, 12);
    let served = String::from_utf8(checkpoint(&server_b.url)).unwrap();
    let (code, out) = monitor_once(&server_b.url, &b, &state, &[]);
    assert_alert(code, &out, "fork", &[&good, &served], &state, 7);
    assert!(out.contains("is not an extension"), "{out}");

    // A itself is still fine.
    let server_a = Server::start(&a, &[]);
    let (code, out) = monitor_once(&server_a.url, &a, &state, &[]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_checkpoint_not_signed_by_the_log_key_is_an_alert() {
    let dir = tempdir();
    let data = dir.path().join("data");
    new_log(&data, 2);
    let mirror_dir = dir.path().join("mirror");
    copy_dir(&data.join("log"), &mirror_dir);
    let mirror = StaticMirror::serve(&mirror_dir);
    let state = dir.path().join("monitor.json");
    let (code, out) = monitor_once(&mirror.url, &data, &state, &[]);
    assert_eq!(code, 0, "a static mirror is enough: {out}");
    let good = state_note(&state);

    // The same origin and tree, signed by another key.
    let impostor = Signer::generate(&origin(&data), KeyType::Ed25519).unwrap();
    let body = std::fs::read_to_string(mirror_dir.join("checkpoint")).unwrap();
    let text = body.split("\n\n").next().unwrap().to_string() + "\n";
    let forged = Checkpoint::parse(&text)
        .unwrap()
        .sign(&impostor)
        .unwrap()
        .to_bytes();
    std::fs::write(mirror_dir.join("checkpoint"), &forged).unwrap();
    let (code, out) = monitor_once(&mirror.url, &data, &state, &[]);
    let forged = String::from_utf8(forged).unwrap();
    assert_alert(code, &out, "bad-signature", &[&good, &forged], &state, 4);

    // A corrupted signature of the real key.
    let mut corrupted = body.into_bytes();
    let at = corrupted.len() - 8;
    corrupted[at] = if corrupted[at] == b'A' { b'B' } else { b'A' };
    std::fs::write(mirror_dir.join("checkpoint"), &corrupted).unwrap();
    let (code, out) = monitor_once(&mirror.url, &data, &state, &[]);
    assert_alert(code, &out, "bad-signature", &[&good], &state, 4);
}

#[test]
fn an_unreachable_server_is_an_alert_only_after_the_threshold() {
    let dir = tempdir();
    let data = dir.path().join("data");
    new_log(&data, 1);
    let state = dir.path().join("monitor.json");
    let mut server = Server::start(&data, &[]);
    let url = server.url.clone();
    assert_eq!(monitor_once(&url, &data, &state, &[]).0, 0);
    let good = state_note(&state);
    assert!(server.terminate());

    let (code, out) = monitor_once(&url, &data, &state, &["--unreachable-after", "1h"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("warning: no verifiable checkpoint"), "{out}");
    std::thread::sleep(Duration::from_millis(1100));
    let (code, out) = monitor_once(&url, &data, &state, &["--unreachable-after", "1s"]);
    assert_alert(code, &out, "unreachable", &[&good], &state, 3);

    // A server that accepts connections and never answers is unreachable too, after the
    // request timeout.
    let hung = BlackHole::new();
    let args = ["--unreachable-after", "0s", "--timeout", "300ms"];
    let (code, out) = monitor_once(&hung.url, &data, &state, &args);
    assert_alert(code, &out, "unreachable", &[&good], &state, 3);
    assert!(out.contains("no answer within 300 ms"), "{out}");

    // A state file of another log is refused, not overwritten.
    let other = dir.path().join("other");
    new_log(&other, 0);
    let server = Server::start(&other, &[]);
    let (code, _) = monitor_once(&server.url, &other, &state, &[]);
    assert_eq!(code, 1);
    assert_eq!(state_note(&state), good);
}

/// Rebuilds a tiles directory holding `entries`, with a checkpoint signed by `key`.
fn write_log(dir: &Path, entries: &[Vec<u8>], key: &Signer) {
    let (store, lock) = (
        PosixTiles::open(dir).unwrap(),
        PosixLock::open(dir).unwrap(),
    );
    let (integrator, writes) = Integrator::from_entries(entries).unwrap();
    let note = Checkpoint {
        origin: key.name().to_string(),
        size: integrator.size(),
        root: integrator.root(),
        extensions: Vec::new(),
    }
    .sign(key)
    .unwrap();
    let new = LockedCheckpoint {
        size: integrator.size(),
        signed: &note.to_bytes(),
    };
    commit(&store, &lock, &writes, &[], None, new).unwrap();
}

/// A publication leaf whose request was changed after the publisher signed it, with an
/// admission record the catalog projection accepts: only re-checking the signature, as
/// the audit does, shows the authority should have refused it.
fn forge(leaf: &[u8]) -> Vec<u8> {
    let mut leaf: serde_json::Value = serde_json::from_slice(leaf).unwrap();
    let payload = BASE64
        .decode(leaf["envelope"]["payload"].as_str().unwrap())
        .unwrap();
    let mut request: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    request["subject"]["digest"]["sha256"] = hex::encode(Sha256::digest(b"not signed")).into();
    let payload = serde_jcs::to_vec(&request).unwrap();
    leaf["envelope"]["payload"] = BASE64.encode(&payload).into();
    leaf["admission"]["requestDigest"]["sha256"] = hex::encode(Sha256::digest(&payload)).into();
    serde_jcs::to_vec(&leaf).unwrap()
}

#[test]
fn the_audit_catches_in_a_static_mirror_what_consistency_cannot() {
    let dir = tempdir();
    let data = dir.path().join("data");
    new_log(&data, 5);
    let watch = format!("subject={SUBJECT}");

    // An honest mirror audits clean.
    let good = dir.path().join("good");
    copy_dir(&data.join("log"), &good);
    let mirror = StaticMirror::serve(&good);
    let state = dir.path().join("good.json");
    let (code, out) = monitor_once(&mirror.url, &data, &state, &["--audit"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("entries 0..7 match the tiles and the root; 7 admissions re-checked"));
    let bundle = good.join("tile/entries/000.p/7");
    let entries: Vec<Vec<u8>> = decode_bundle(&std::fs::read(&bundle).unwrap())
        .unwrap()
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect();

    // One byte of an entry changed in the mirror: its hash no longer matches tile 0.
    let tampered = dir.path().join("tampered");
    copy_dir(&good, &tampered);
    let path = tampered.join("tile/entries/000.p/7");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes
        .windows(14)
        .rposition(|w| w == b"\"acceptedAt\":\"")
        .unwrap()
        + 15;
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    std::fs::write(&path, bytes).unwrap();
    let mirror = StaticMirror::serve(&tampered);
    let fresh = dir.path().join("tampered.json");
    let (code, out) = monitor_once(&mirror.url, &data, &fresh, &[]);
    assert_eq!(
        code, 0,
        "without --audit the checkpoint alone looks fine: {out}"
    );
    std::fs::remove_file(&fresh).unwrap();
    let (code, out) = monitor_once(&mirror.url, &data, &fresh, &["--audit"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("ALERT audit: entry 6 in /tile/entries/000.p/7 does not hash"),
        "{out}"
    );

    // A forged admission, in tiles and a checkpoint properly signed with the log key: the
    // log is append-only and consistent, so only the audit sees it.
    let forged_dir = dir.path().join("forged");
    let mut forged_entries = entries.clone();
    forged_entries.push(forge(&entries[6]));
    write_log(
        &forged_dir,
        &forged_entries,
        &read_signer(&data.join("log.key")).unwrap(),
    );
    let mirror = StaticMirror::serve(&forged_dir);
    let (code, out) = monitor_once(&mirror.url, &data, &state, &["--watch", &watch]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("grew from size 7 to 8"),
        "proof from the tiles: {out}"
    );
    let seen = events(&out);
    assert_eq!(seen.len(), 1, "{out}");
    assert_eq!(seen[0]["leafIndex"], 7);
    let audited = dir.path().join("audited.json");
    let (code, out) = monitor_once(&mirror.url, &data, &audited, &["--audit"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(
            "ALERT audit: entry 7 was accepted by the log, but the authority's rules refuse it"
        ),
        "{out}"
    );
    assert!(!audited.exists(), "nothing verified, nothing saved");
}
