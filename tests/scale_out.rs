//! The log on S3 + PostgreSQL, end to end, with real servers (radosgw and PostgreSQL 15
//! from `.ci/services.sh`; skipped without them, a failure under `CI`):
//! - `kill -9` of a `serve --store s3://… --coordinator postgres://…` under load loses
//!   nothing acknowledged: after each restart every receipt's entry is there with the
//!   same bytes, every checkpoint seen is consistent with the new one, and resubmitting
//!   an acknowledged request returns its entry;
//! - failover: a second `serve` on the same bucket and database waits as a standby while
//!   the first holds the lease, takes over within the lease after the first is killed,
//!   and serves every entry the first acknowledged.

mod common;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::services::{self, unique_prefix};
use common::{request_json, tempdir, Server};
use srcos_catalog::catalog::sign_envelope;
use srcos_catalog::http::HttpClient;
use srcos_catalog::keyfile::{read_signer, read_verifier};
use srcos_catalog::merkle;
use srcos_catalog::note::{self, KeyType, Signer, Verifier};
use srcos_catalog::receipt::Receipt;

/// Where the log lives: the bucket, the database, and the environment to reach them.
struct Cluster {
    store: String,
    coordinator: String,
    env: Vec<(&'static str, String)>,
}

impl Cluster {
    fn new(test: &str) -> Option<Cluster> {
        let s3 = services::s3(test)?;
        let coordinator = services::postgres_url(test)?;
        Some(Cluster {
            store: format!("s3://{}/{}", s3.bucket, unique_prefix(test)),
            coordinator,
            env: vec![
                ("SRCOS_S3_ENDPOINT", s3.endpoint),
                ("AWS_REGION", s3.region),
                ("AWS_ACCESS_KEY_ID", s3.access_key_id),
                ("AWS_SECRET_ACCESS_KEY", s3.secret_access_key),
            ],
        })
    }

    fn command(&self, data: &std::path::Path, lease_ms: u64) -> Command {
        let mut command = Command::new(common::bin());
        command.args([
            "serve",
            "--data",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--batch-max",
            "64",
            "--store",
            &self.store,
            "--coordinator",
            &self.coordinator,
            "--lease-ms",
            &lease_ms.to_string(),
        ]);
        for (k, v) in &self.env {
            command.env(k, v);
        }
        command
    }

    fn start(&self, data: &std::path::Path, lease_ms: u64) -> Server {
        Server::spawn_command(self.command(data, lease_ms), data)
    }
}

#[derive(Clone)]
struct Acked {
    receipt: Receipt,
    envelope: Vec<u8>,
}

fn grant(rt: &tokio::runtime::Runtime, client: &HttpClient, admin: &Signer, publisher: &Verifier) {
    let payload = serde_json::json!({
        "apiVersion": "catalog.srcos.ai/v1", "kind": "PublisherGrant",
        "publisherKey": publisher.to_vkey(), "role": "publisher",
        "targetPrefixes": ["sourceos://catalog/scale/"], "channels": ["dev"],
    });
    let envelope = sign_envelope(&serde_jcs::to_vec(&payload).unwrap(), admin);
    let r = rt
        .block_on(client.post(
            "/v1/admin/grants",
            "application/json",
            envelope.to_json().into(),
        ))
        .unwrap();
    assert_eq!(
        r.status.as_u16(),
        201,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

/// Submits from `workers` tasks until `stop`, keeping every acknowledged receipt (each
/// verified against the log key as it arrives).
fn load(
    rt: &tokio::runtime::Runtime,
    client: &HttpClient,
    publisher: &Signer,
    log_key: &Verifier,
    base: u64,
    stop: Arc<std::sync::atomic::AtomicBool>,
    acked: Arc<Mutex<Vec<Acked>>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..4u64)
        .map(|worker| {
            let (client, acked, stop, log_key) =
                (client.clone(), acked.clone(), stop.clone(), log_key.clone());
            let publisher =
                Signer::from_private_key_string(&publisher.to_private_key_string()).unwrap();
            let mut n = base + worker * 1_000_000;
            rt.spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    n += 1;
                    let request = request_json(
                        "quay.io/scale/subject",
                        n,
                        "sourceos://catalog/scale/x",
                        "dev",
                    );
                    let value: serde_json::Value = serde_json::from_str(&request).unwrap();
                    let envelope =
                        sign_envelope(&serde_jcs::to_vec(&value).unwrap(), &publisher).to_json();
                    match client
                        .post(
                            "/v1/publications",
                            "application/json",
                            envelope.clone().into(),
                        )
                        .await
                    {
                        Ok(r) if r.status.as_u16() == 201 => {
                            let receipt = Receipt::from_json(&r.body).unwrap();
                            receipt.verify(&log_key).expect("a live receipt verifies");
                            acked.lock().unwrap().push(Acked {
                                receipt,
                                envelope: envelope.into_bytes(),
                            });
                        }
                        Ok(r) if r.status.as_u16() == 503 => {
                            tokio::time::sleep(Duration::from_millis(20)).await
                        }
                        Ok(r) => panic!(
                            "unexpected {}: {}",
                            r.status,
                            String::from_utf8_lossy(&r.body)
                        ),
                        Err(_) => break, // the server is gone
                    }
                }
            })
        })
        .collect()
}

/// Every acknowledged entry is there with the same bytes, its receipt verifies, the
/// current checkpoint is consistent with every checkpoint seen, and resubmitting a few
/// acknowledged requests returns their entries.
fn check_recovered(
    rt: &tokio::runtime::Runtime,
    client: &HttpClient,
    log_key: &Verifier,
    acked: &[Acked],
    seen: &[Vec<u8>],
) {
    use base64::Engine as _;
    let r = rt.block_on(client.get("/checkpoint")).unwrap();
    let (current, _) = note::open_checkpoint(&r.body, log_key).unwrap();
    for a in acked {
        a.receipt.verify(log_key).unwrap();
        assert!(
            a.receipt.log_index < current.size,
            "acknowledged entry {} lost",
            a.receipt.log_index
        );
        let r = rt
            .block_on(client.get(&format!("/v1/entries/{}", a.receipt.log_index)))
            .unwrap();
        assert_eq!(r.status.as_u16(), 200);
        let entry = base64::engine::general_purpose::STANDARD
            .decode(&a.receipt.entry)
            .unwrap();
        assert_eq!(
            r.body.as_ref(),
            entry.as_slice(),
            "entry {} changed",
            a.receipt.log_index
        );
    }
    for old in seen {
        let (old, _) = note::open_checkpoint(old, log_key).unwrap();
        assert!(
            old.size <= current.size,
            "rollback from {} to {}",
            old.size,
            current.size
        );
        if old.size == current.size {
            assert_eq!(old.root, current.root, "two roots for size {}", old.size);
            continue;
        }
        let r = rt
            .block_on(client.get(&format!(
                "/v1/proofs/consistency?first={}&second={}",
                old.size, current.size
            )))
            .unwrap();
        let proof: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let hashes: Vec<Vec<u8>> = proof["hashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| hex::decode(h.as_str().unwrap()).unwrap())
            .collect();
        merkle::verify_consistency(old.size, current.size, &old.root, &current.root, &hashes)
            .unwrap_or_else(|e| {
                panic!("{} is not consistent with {}: {e}", old.size, current.size)
            });
    }
    for a in acked.iter().step_by((acked.len() / 10).max(1)) {
        let r = rt
            .block_on(client.post(
                "/v1/publications",
                "application/json",
                a.envelope.clone().into(),
            ))
            .unwrap();
        assert_eq!(
            r.status.as_u16(),
            200,
            "a resubmitted request is a duplicate"
        );
        let receipt = Receipt::from_json(&r.body).unwrap();
        assert_eq!(receipt.log_index, a.receipt.log_index);
    }
}

#[test]
fn acknowledged_entries_survive_kill_9_on_s3_and_postgres() {
    let Some(cluster) = Cluster::new("acknowledged_entries_survive_kill_9_on_s3") else {
        return;
    };
    let mut rng = common::Rng::from_clock("scale-out kill -9");
    let dir = tempdir();
    let data = dir.path().join("data");
    let rt = common::multi_thread_runtime();
    let publisher = Signer::generate("scale.example/publisher", KeyType::Ed25519).unwrap();
    let mut acked: Vec<Acked> = Vec::new();
    let mut seen: Vec<Vec<u8>> = Vec::new();
    for round in 0..3u64 {
        // The killed server's lease lapses after 1 s; the restart waits for it.
        let server = cluster.start(&data, 1_000);
        let log_key = read_verifier(&data.join("log.vkey")).unwrap();
        let client = HttpClient::new(&server.url).unwrap();
        if round == 0 {
            let admin = read_signer(&data.join("admin.key")).unwrap();
            grant(&rt, &client, &admin, &publisher.verifier());
        }
        check_recovered(&rt, &client, &log_key, &acked, &seen);
        let round_acked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tasks = load(
            &rt,
            &client,
            &publisher,
            &log_key,
            round * 10_000_000,
            stop.clone(),
            round_acked.clone(),
        );
        let kill_after = Duration::from_millis(300 + rng.next() % 1200);
        let start = Instant::now();
        while start.elapsed() < kill_after {
            if let Ok(r) = rt.block_on(client.get("/checkpoint")) {
                if r.status.as_u16() == 200 {
                    seen.push(r.body.to_vec());
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut server = server;
        server.kill9();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for task in tasks {
            let _ = rt.block_on(task);
        }
        let mut round_acked = round_acked.lock().unwrap().clone();
        eprintln!(
            "round {round}: {} acknowledged before kill -9 after {kill_after:?}",
            round_acked.len()
        );
        seen.extend(
            round_acked
                .iter()
                .map(|a| a.receipt.checkpoint.clone().into_bytes()),
        );
        acked.append(&mut round_acked);
    }
    let server = cluster.start(&data, 1_000);
    let log_key = read_verifier(&data.join("log.vkey")).unwrap();
    let client = HttpClient::new(&server.url).unwrap();
    check_recovered(&rt, &client, &log_key, &acked, &seen);
    assert!(
        acked.len() > 20,
        "the load acknowledged only {}",
        acked.len()
    );
}

#[test]
fn a_standby_takes_over_when_the_sequencer_is_killed() {
    let Some(cluster) = Cluster::new("a_standby_takes_over_when_the_sequencer_is_killed") else {
        return;
    };
    let dir = tempdir();
    let (data_a, data_b) = (dir.path().join("a"), dir.path().join("b"));
    let rt = common::multi_thread_runtime();
    let publisher = Signer::generate("scale.example/publisher", KeyType::Ed25519).unwrap();
    let lease_ms = 1_500;
    let mut first = cluster.start(&data_a, lease_ms);
    let log_key = read_verifier(&data_a.join("log.vkey")).unwrap();
    let client = HttpClient::new(&first.url).unwrap();
    grant(
        &rt,
        &client,
        &read_signer(&data_a.join("admin.key")).unwrap(),
        &publisher.verifier(),
    );
    // The standby shares the log key (a deployment copies it), nothing else.
    std::fs::create_dir_all(&data_b).unwrap();
    for file in ["log.key", "log.vkey"] {
        std::fs::copy(data_a.join(file), data_b.join(file)).unwrap();
    }
    let standby = {
        let command = cluster.command(&data_b, lease_ms);
        let data_b = data_b.clone();
        std::thread::spawn(move || {
            let server = Server::spawn_command(command, &data_b);
            (server, Instant::now())
        })
    };
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tasks = load(
        &rt,
        &client,
        &publisher,
        &log_key,
        0,
        stop.clone(),
        acked.clone(),
    );
    std::thread::sleep(Duration::from_millis(1_500));
    assert!(
        !standby.is_finished(),
        "the standby listened while the sequencer held the lease"
    );
    first.kill9();
    let killed = Instant::now();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for task in tasks {
        let _ = rt.block_on(task);
    }
    let (second, listening) = standby.join().unwrap();
    let failover = listening.duration_since(killed);
    eprintln!("failover: the standby listened {failover:?} after kill -9 (lease {lease_ms} ms)");
    assert!(failover < Duration::from_millis(lease_ms * 4 + 10_000));
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 5,
        "the load acknowledged only {}",
        acked.len()
    );
    let client = HttpClient::new(&second.url).unwrap();
    let seen: Vec<Vec<u8>> = acked
        .iter()
        .map(|a| a.receipt.checkpoint.clone().into_bytes())
        .collect();
    check_recovered(&rt, &client, &log_key, &acked, &seen);
    // And the new sequencer takes writes.
    let more = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tasks = load(
        &rt,
        &client,
        &publisher,
        &log_key,
        50_000_000,
        stop.clone(),
        more.clone(),
    );
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for task in tasks {
        let _ = rt.block_on(task);
    }
    assert!(
        !more.lock().unwrap().is_empty(),
        "the new sequencer acknowledged nothing"
    );
}

/// Submits one new publication request; returns the status and body.
fn publish_one(
    rt: &tokio::runtime::Runtime,
    client: &HttpClient,
    publisher: &Signer,
    n: u64,
) -> (u16, Vec<u8>) {
    let request = request_json(
        "quay.io/scale/subject",
        n,
        "sourceos://catalog/scale/x",
        "dev",
    );
    let value: serde_json::Value = serde_json::from_str(&request).unwrap();
    let envelope = sign_envelope(&serde_jcs::to_vec(&value).unwrap(), publisher).to_json();
    match rt.block_on(client.post("/v1/publications", "application/json", envelope.into())) {
        Ok(r) => (r.status.as_u16(), r.body.to_vec()),
        Err(_) => (0, Vec::new()),
    }
}

/// Fencing: the sequencer is paused (SIGSTOP) past its lease, a standby takes over and
/// writes, then the old one resumes. It must acknowledge nothing and install no
/// checkpoint: the new sequencer's head stays where it was.
#[test]
fn a_paused_sequencer_is_fenced_when_it_resumes() {
    let Some(cluster) = Cluster::new("a_paused_sequencer_is_fenced_when_it_resumes") else {
        return;
    };
    let dir = tempdir();
    let (data_a, data_b) = (dir.path().join("a"), dir.path().join("b"));
    let rt = common::multi_thread_runtime();
    let publisher = Signer::generate("scale.example/publisher", KeyType::Ed25519).unwrap();
    let lease_ms = 1_000;
    let mut first = cluster.start(&data_a, lease_ms);
    let log_key = read_verifier(&data_a.join("log.vkey")).unwrap();
    let old = HttpClient::new(&first.url).unwrap();
    grant(
        &rt,
        &old,
        &read_signer(&data_a.join("admin.key")).unwrap(),
        &publisher.verifier(),
    );
    for n in 0..5 {
        assert_eq!(publish_one(&rt, &old, &publisher, n).0, 201);
    }
    std::fs::create_dir_all(&data_b).unwrap();
    for file in ["log.key", "log.vkey"] {
        std::fs::copy(data_a.join(file), data_b.join(file)).unwrap();
    }
    let standby = {
        let command = cluster.command(&data_b, lease_ms);
        let data_b = data_b.clone();
        std::thread::spawn(move || Server::spawn_command(command, &data_b))
    };
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !standby.is_finished(),
        "the standby listened while the lease was held"
    );
    let pid = first.pid() as i32;
    unsafe {
        libc::kill(pid, libc::SIGSTOP);
    }
    let second = standby.join().unwrap();
    let new = HttpClient::new(&second.url).unwrap();
    for n in 100..105 {
        assert_eq!(publish_one(&rt, &new, &publisher, n).0, 201);
    }
    let head = rt.block_on(new.get("/checkpoint")).unwrap().body.to_vec();
    unsafe {
        libc::kill(pid, libc::SIGCONT);
    }
    // The old sequencer resumes, believing it still sequences: nothing it is asked to
    // append may be acknowledged.
    for n in 200..205 {
        let (status, body) = publish_one(&rt, &old, &publisher, n);
        assert!(
            !(200..300).contains(&status),
            "a fenced sequencer acknowledged: {status} {}",
            String::from_utf8_lossy(&body)
        );
    }
    // It installed nothing: the new sequencer's next swap (from its head, by size and
    // epoch) still succeeds, which it would not had the stored checkpoint moved.
    let after = rt.block_on(new.get("/checkpoint")).unwrap().body.to_vec();
    assert_eq!(
        head, after,
        "the checkpoint moved while only the fenced sequencer wrote"
    );
    assert_eq!(publish_one(&rt, &new, &publisher, 300).0, 201);
    let (current, _) =
        note::open_checkpoint(&rt.block_on(new.get("/checkpoint")).unwrap().body, &log_key)
            .unwrap();
    assert_eq!(current.size, 1 + 1 + 5 + 5 + 1, "genesis, grant, 5, 5, 1");
    first.kill9();
}
