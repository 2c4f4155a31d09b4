//! Crash safety: `kill -9` a real server in the middle of a load, several times, at
//! random moments. After each restart, every acknowledged entry must still be there
//! with the same bytes, the new checkpoint must be consistent with every checkpoint
//! seen before the crash, and resubmitting an acknowledged request must return the
//! existing entry instead of appending a new one.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::load::{self, check_recovered, check_resubmitted, Acked, Load};
use common::{tempdir, Server};
use srcos_catalog::http::HttpClient;
use srcos_catalog::keyfile::{read_signer, read_verifier};
use srcos_catalog::note::{KeyType, Signer};

#[test]
fn acknowledged_entries_survive_kill_9_at_random_moments() {
    let mut rng = common::Rng::from_clock("crash test");
    let dir = tempdir();
    let data = dir.path().join("data");
    let rt = common::multi_thread_runtime();
    let publisher = Signer::generate("crash.example/publisher", KeyType::Ed25519).unwrap();
    let mut acked: Vec<Acked> = Vec::new();
    let mut seen_checkpoints: Vec<Vec<u8>> = Vec::new();
    let rounds = 5;

    for round in 0..rounds {
        let server = Server::start(&data, &["--batch-max", "64"]);
        let log_key = read_verifier(&data.join("log.vkey")).unwrap();
        let client = HttpClient::new(&server.url).unwrap();
        if round == 0 {
            let admin = read_signer(&data.join("admin.key")).unwrap();
            load::grant(&rt, &client, &admin, &publisher.verifier(), "crash");
        }
        check_recovered(&rt, &client, &log_key, &acked, &seen_checkpoints);
        fsck_ok(&data);

        // Load: 8 concurrent submitters until the kill.
        let round_acked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let workload = Load {
            workers: 8,
            base: round * 10_000_000,
            scope: "crash",
            retry_503: false,
        };
        let tasks = load::run(
            &rt,
            &client,
            &publisher,
            &log_key,
            &workload,
            stop.clone(),
            round_acked.clone(),
        );
        // Watch checkpoints while the load runs, then kill at a random moment.
        let kill_after = Duration::from_millis(100 + rng.next() % 900);
        load::watch_checkpoints(
            &rt,
            &client,
            kill_after,
            || Duration::from_millis(10 + rng.next() % 40),
            &mut seen_checkpoints,
        );
        let mut server = server;
        server.kill9();
        load::stop(&rt, &stop, tasks);
        let mut round_acked = round_acked.lock().unwrap().clone();
        eprintln!(
            "round {round}: {} acknowledged before kill -9 after {kill_after:?}",
            round_acked.len()
        );
        seen_checkpoints.extend(load::checkpoints_of(&round_acked));
        acked.append(&mut round_acked);
    }

    let server = Server::start(&data, &[]);
    let log_key = read_verifier(&data.join("log.vkey")).unwrap();
    let client = HttpClient::new(&server.url).unwrap();
    check_recovered(&rt, &client, &log_key, &acked, &seen_checkpoints);
    assert!(
        acked.len() > 20,
        "the load should have acknowledged entries, got {}",
        acked.len()
    );
    check_resubmitted(&rt, &client, &acked, 20);
    fsck_ok(&data);
}

fn fsck_ok(data: &std::path::Path) {
    let report = srcos_catalog::log::fsck::fsck(data).unwrap();
    assert!(report.problems.is_empty(), "fsck: {:?}", report.problems);
}
