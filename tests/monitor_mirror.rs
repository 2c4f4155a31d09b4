//! Mirrors and forks (issue 10 §7): a mirror that served wrong hash tiles for a
//! correctly signed checkpoint raised `ALERT fork`. Data that does not verify against a
//! signed checkpoint is `bad-mirror-data`; a fork is only two signed checkpoints that are
//! not consistent.

mod common;
mod watchers;

use std::path::Path;

use common::{tempdir, Server};
use watchers::{copy_dir, monitor_once, new_log, publish_ok, StaticMirror, SUBJECT};

fn state_size(state: &Path) -> u64 {
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(state).unwrap()).unwrap();
    let note = json["checkpoint"].as_str().unwrap();
    note.lines().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_mirror_serving_a_tampered_hash_tile_is_bad_mirror_data_not_a_fork() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let publisher = new_log(&data, 2);
    let mirror_dir = dir.path().join("mirror");
    copy_dir(&data.join("log"), &mirror_dir);
    let mirror = StaticMirror::serve(&mirror_dir);
    let state = dir.path().join("monitor.json");
    let (code, out) = monitor_once(&mirror.url, &data, &state, &[]);
    assert_eq!(code, 0, "{out}");
    let first = state_size(&state);

    // The log grows honestly; the mirror copies it, then one hash in the level-0 tile of
    // the new, correctly signed checkpoint is changed.
    let mut server = Server::start(&data, &[]);
    publish_ok(&server.url, &publisher, SUBJECT, 10);
    publish_ok(&server.url, &publisher, SUBJECT, 11);
    assert!(server.terminate());
    copy_dir(&data.join("log"), &mirror_dir);
    let size = first + 2;
    let tile = mirror_dir.join(format!("tile/0/000.p/{size}"));
    let honest = std::fs::read(&tile).unwrap();
    let mut tampered = honest.clone();
    // The newest leaf's hash: the consistency proof from the old size is built on it.
    tampered[(size as usize - 1) * 32] ^= 0xff;
    std::fs::write(&tile, &tampered).unwrap();

    let (code, out) = monitor_once(&mirror.url, &data, &state, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("ALERT bad-mirror-data:"), "{out}");
    assert!(!out.contains("ALERT fork"), "{out}");
    assert_eq!(
        state_size(&state),
        first,
        "the state keeps the last good checkpoint"
    );

    // The honest tile again: the same checkpoint is proven consistent.
    std::fs::write(&tile, &honest).unwrap();
    let (code, out) = monitor_once(&mirror.url, &data, &state, &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(state_size(&state), size);
}
