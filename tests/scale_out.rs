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

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::backend::Backend;
use common::load::{self, check_recovered, check_resubmitted, Acked, Load};
use common::services;
use common::{tempdir, Server};
use srcos_catalog::http::HttpClient;
use srcos_catalog::keyfile::{read_signer, read_verifier};
use srcos_catalog::note::{self, KeyType, Signer, Verifier};

/// The grant's scope for every publication here.
const SCOPE: &str = "scale";

/// Where the log lives: the bucket and the database (the cluster backend of the
/// end-to-end suite, `tests/common/backend.rs`).
struct Cluster {
    backend: Backend,
    /// `s3://BUCKET/PREFIX`.
    store: String,
}

impl Cluster {
    fn new(test: &str) -> Option<Cluster> {
        let backend = Backend::cluster(test)?;
        let Backend::Cluster { store, .. } = &backend else {
            unreachable!("Backend::cluster is a cluster");
        };
        let store = store.clone();
        Some(Cluster { backend, store })
    }

    fn command(&self, data: &Path, lease_ms: u64) -> Command {
        self.backend.serve_command(
            data,
            &["--batch-max", "64", "--lease-ms", &lease_ms.to_string()],
        )
    }

    fn start(&self, data: &Path, lease_ms: u64) -> Server {
        Server::spawn_command(self.command(data, lease_ms), data)
    }

    /// Starts a standby in `standby` beside the sequencer in `sequencer` (sharing its
    /// log key, as a deployment copies it, and nothing else) on a thread, since it does
    /// not listen until it holds the lease; the thread returns it and when it listened.
    fn standby(
        &self,
        sequencer: &Path,
        standby: &Path,
        lease_ms: u64,
    ) -> std::thread::JoinHandle<(Server, Instant)> {
        std::fs::create_dir_all(standby).unwrap();
        for file in ["log.key", "log.vkey"] {
            std::fs::copy(sequencer.join(file), standby.join(file)).unwrap();
        }
        let command = self.command(standby, lease_ms);
        let standby = standby.to_path_buf();
        std::thread::spawn(move || {
            let server = Server::spawn_command(command, &standby);
            (server, Instant::now())
        })
    }
}

/// The first sequencer of a new log in `data`: started, its log key, a client, and
/// `publisher` granted.
fn first_sequencer(
    rt: &tokio::runtime::Runtime,
    cluster: &Cluster,
    data: &Path,
    lease_ms: u64,
    publisher: &Signer,
) -> (Server, Verifier, HttpClient) {
    let server = cluster.start(data, lease_ms);
    let log_key = read_verifier(&data.join("log.vkey")).unwrap();
    let client = HttpClient::new(&server.url).unwrap();
    let admin = read_signer(&data.join("admin.key")).unwrap();
    load::grant(rt, &client, &admin, &publisher.verifier(), SCOPE);
    (server, log_key, client)
}

/// The load every test here runs: four workers, retrying 503s.
fn workload(base: u64) -> Load {
    Load {
        workers: 4,
        base,
        scope: SCOPE,
        retry_503: true,
    }
}

/// Runs the load on `client` for `duration`, then stops it; returns what was acknowledged.
fn load_for(
    rt: &tokio::runtime::Runtime,
    client: &HttpClient,
    publisher: &Signer,
    log_key: &Verifier,
    base: u64,
    duration: Duration,
) -> Vec<Acked> {
    let running = load::start(rt, client, publisher, log_key, &workload(base));
    std::thread::sleep(duration);
    running.finish(rt)
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
        let (server, log_key, client) = if round == 0 {
            first_sequencer(&rt, &cluster, &data, 1_000, &publisher)
        } else {
            let server = cluster.start(&data, 1_000);
            let client = HttpClient::new(&server.url).unwrap();
            (
                server,
                read_verifier(&data.join("log.vkey")).unwrap(),
                client,
            )
        };
        check_recovered(&rt, &client, &log_key, &acked, &seen);
        check_resubmitted(&rt, &client, &acked, 10);
        let running = load::start(
            &rt,
            &client,
            &publisher,
            &log_key,
            &workload(round * 10_000_000),
        );
        let kill_after = Duration::from_millis(300 + rng.next() % 1200);
        load::watch_checkpoints(
            &rt,
            &client,
            kill_after,
            || Duration::from_millis(20),
            &mut seen,
        );
        let mut server = server;
        server.kill9();
        let mut round_acked = running.finish(&rt);
        eprintln!(
            "round {round}: {} acknowledged before kill -9 after {kill_after:?}",
            round_acked.len()
        );
        seen.extend(load::checkpoints_of(&round_acked));
        acked.append(&mut round_acked);
    }
    let server = cluster.start(&data, 1_000);
    let log_key = read_verifier(&data.join("log.vkey")).unwrap();
    let client = HttpClient::new(&server.url).unwrap();
    check_recovered(&rt, &client, &log_key, &acked, &seen);
    check_resubmitted(&rt, &client, &acked, 10);
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
    let (mut first, log_key, client) =
        first_sequencer(&rt, &cluster, &data_a, lease_ms, &publisher);
    let standby = cluster.standby(&data_a, &data_b, lease_ms);
    // The load runs on through the kill: requests are in flight when it lands.
    let running = load::start(&rt, &client, &publisher, &log_key, &workload(0));
    std::thread::sleep(Duration::from_millis(1_500));
    assert!(
        !standby.is_finished(),
        "the standby listened while the sequencer held the lease"
    );
    first.kill9();
    let killed = Instant::now();
    let acked = running.finish(&rt);
    let (second, listening) = standby.join().unwrap();
    let failover = listening.duration_since(killed);
    eprintln!("failover: the standby listened {failover:?} after kill -9 (lease {lease_ms} ms)");
    assert!(failover < Duration::from_millis(lease_ms * 4 + 10_000));
    assert!(
        acked.len() > 5,
        "the load acknowledged only {}",
        acked.len()
    );
    let client = HttpClient::new(&second.url).unwrap();
    check_recovered(
        &rt,
        &client,
        &log_key,
        &acked,
        &load::checkpoints_of(&acked),
    );
    check_resubmitted(&rt, &client, &acked, 10);
    // And the new sequencer takes writes.
    let more = load_for(
        &rt,
        &client,
        &publisher,
        &log_key,
        50_000_000,
        Duration::from_millis(500),
    );
    assert!(!more.is_empty(), "the new sequencer acknowledged nothing");
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
    let (mut first, log_key, old) = first_sequencer(&rt, &cluster, &data_a, lease_ms, &publisher);
    for n in 0..5 {
        assert_eq!(load::publish_one(&rt, &old, &publisher, SCOPE, n).0, 201);
    }
    let standby = cluster.standby(&data_a, &data_b, lease_ms);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !standby.is_finished(),
        "the standby listened while the lease was held"
    );
    let pid = first.pid() as i32;
    unsafe {
        libc::kill(pid, libc::SIGSTOP);
    }
    let (second, _) = standby.join().unwrap();
    let new = HttpClient::new(&second.url).unwrap();
    for n in 100..105 {
        assert_eq!(load::publish_one(&rt, &new, &publisher, SCOPE, n).0, 201);
    }
    let head = rt.block_on(new.get("/checkpoint")).unwrap().body.to_vec();
    unsafe {
        libc::kill(pid, libc::SIGCONT);
    }
    // The old sequencer resumes, believing it still sequences: nothing it is asked to
    // append may be acknowledged.
    for n in 200..205 {
        let (status, body) = load::publish_one(&rt, &old, &publisher, SCOPE, n);
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
    assert_eq!(load::publish_one(&rt, &new, &publisher, SCOPE, 300).0, 201);
    let (current, _) =
        note::open_checkpoint(&rt.block_on(new.get("/checkpoint")).unwrap().body, &log_key)
            .unwrap();
    assert_eq!(current.size, 1 + 1 + 5 + 5 + 1, "genesis, grant, 5, 5, 1");
    first.kill9();
}

/// The bucket alone is a complete tlog-tiles log: the sequencer writes the served
/// `checkpoint` object after each swap, so `monitor` (with `--audit`, reading every
/// entry bundle) and `verify --log` work against the bucket's static URL (radosgw
/// serves it to anonymous GETs once the bucket policy allows them).
#[test]
fn monitor_and_verify_read_the_log_straight_from_the_bucket() {
    let Some(cluster) = Cluster::new("monitor_and_verify_read_the_log_straight_from_the_bucket")
    else {
        return;
    };
    let s3 = services::s3("monitor_and_verify_read_the_log_straight_from_the_bucket").unwrap();
    let policy = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/s3check.py"))
        .arg("public-read")
        .output()
        .unwrap();
    assert!(
        policy.status.success(),
        "{}",
        String::from_utf8_lossy(&policy.stderr)
    );
    let static_url = format!(
        "{}/{}",
        s3.endpoint,
        cluster.store.trim_start_matches("s3://")
    );
    let dir = tempdir();
    let data = dir.path().join("data");
    let rt = common::multi_thread_runtime();
    let publisher = Signer::generate("scale.example/publisher", KeyType::Ed25519).unwrap();
    let (_server, _, client) = first_sequencer(&rt, &cluster, &data, 5_000, &publisher);
    let receipt = dir.path().join("receipt.json");
    for n in 0..300 {
        let (status, body) = load::publish_one(&rt, &client, &publisher, SCOPE, n);
        assert_eq!(status, 201);
        if n == 10 {
            std::fs::write(&receipt, body).unwrap();
        }
    }
    let served = rt
        .block_on(client.get("/checkpoint"))
        .unwrap()
        .body
        .to_vec();
    let http = common::Http::new(&static_url);
    let (status, _, in_bucket) = http.get("/checkpoint");
    assert_eq!(status, 200);
    assert_eq!(
        in_bucket, served,
        "the bucket's checkpoint is the installed one"
    );

    let state = dir.path().join("monitor.json");
    let vkey = data.join("log.vkey");
    let monitor = |extra: &[&str]| {
        let mut args = vec![
            "monitor",
            "--server",
            &static_url,
            "--log-vkey",
            vkey.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
            "--once",
        ];
        args.extend_from_slice(extra);
        common::cli_ok(&args)
    };
    let out = monitor(&["--audit"]);
    assert!(out.contains("302"), "{out}");
    for n in 300..310 {
        assert_eq!(load::publish_one(&rt, &client, &publisher, SCOPE, n).0, 201);
    }
    // Grown: proven consistent from the bucket's hash tiles (radosgw has no proof API).
    let out = monitor(&["--audit"]);
    assert!(out.contains("312"), "{out}");
    let out = common::cli_ok(&[
        "verify",
        "--log-vkey",
        vkey.to_str().unwrap(),
        "--log",
        &static_url,
        receipt.to_str().unwrap(),
    ]);
    assert!(
        out.contains("is at size 312, consistent with the receipt's checkpoint"),
        "{out}"
    );
}

/// Failover under load: two `serve` processes on one bucket and database; the
/// sequencer is killed (`kill -9`) three times under a concurrent load, each time the
/// standby takes over and the killed one comes back as the new standby. Every
/// acknowledged receipt then verifies against the final checkpoint, with its entry
/// there byte for byte, and every checkpoint served along the way is consistent with
/// the final one. Failover times are printed (measured properly in benches/failover.sh).
#[test]
fn failover_under_load_loses_nothing_acknowledged() {
    let Some(cluster) = Cluster::new("failover_under_load_loses_nothing_acknowledged") else {
        return;
    };
    let mut rng = common::Rng::from_clock("failover under load");
    let dir = tempdir();
    let datas = [dir.path().join("a"), dir.path().join("b")];
    let rt = common::multi_thread_runtime();
    let publisher = Signer::generate("scale.example/publisher", KeyType::Ed25519).unwrap();
    let lease_ms = 1_000;
    let (mut sequencer, log_key, mut client) =
        first_sequencer(&rt, &cluster, &datas[0], lease_ms, &publisher);
    let mut standby = cluster.standby(&datas[0], &datas[1], lease_ms);
    let mut acked: Vec<Acked> = Vec::new();
    let mut seen: Vec<Vec<u8>> = Vec::new();
    for round in 0..3usize {
        let running = load::start(
            &rt,
            &client,
            &publisher,
            &log_key,
            &workload(round as u64 * 10_000_000),
        );
        let kill_after = Duration::from_millis(400 + rng.next() % 800);
        load::watch_checkpoints(
            &rt,
            &client,
            kill_after,
            || Duration::from_millis(20),
            &mut seen,
        );
        sequencer.kill9();
        let killed = Instant::now();
        let round_acked = running.finish(&rt);
        let (next, listening) = standby.join().unwrap();
        eprintln!(
            "round {round}: {} acknowledged; the standby listened {:?} after kill -9 (lease \
             {lease_ms} ms)",
            round_acked.len(),
            listening.duration_since(killed)
        );
        assert!(
            !round_acked.is_empty(),
            "round {round}: nothing acknowledged"
        );
        seen.extend(load::checkpoints_of(&round_acked));
        acked.extend(round_acked);
        // The new sequencer has every entry acknowledged so far.
        client = HttpClient::new(&next.url).unwrap();
        check_recovered(&rt, &client, &log_key, &acked, &seen);
        // The killed server comes back as the standby.
        let (new_data, old_data) = if round % 2 == 0 {
            (&datas[1], &datas[0])
        } else {
            (&datas[0], &datas[1])
        };
        standby = cluster.standby(new_data, old_data, lease_ms);
        sequencer = next;
    }
    check_recovered(&rt, &client, &log_key, &acked, &seen);
    check_resubmitted(&rt, &client, &acked, 20);
    // Every receipt verifies against the final checkpoint: an inclusion proof in it.
    let (last, _) = note::open_checkpoint(
        &rt.block_on(client.get("/checkpoint")).unwrap().body,
        &log_key,
    )
    .unwrap();
    for a in acked.iter().step_by((acked.len() / 50).max(1)) {
        let r = rt
            .block_on(client.get(&format!(
                "/v1/receipts/{}?tree_size={}",
                a.receipt.log_index, last.size
            )))
            .unwrap();
        assert_eq!(
            r.status.as_u16(),
            200,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        let fresh = srcos_catalog::receipt::Receipt::from_json(&r.body).unwrap();
        let verified = fresh.verify(&log_key).unwrap();
        assert_eq!(verified.checkpoint.root, last.root);
        assert_eq!(fresh.entry, a.receipt.entry);
    }
    // The standby takes over once the sequencer is gone; then it is stopped too.
    drop(sequencer);
    drop(standby.join().unwrap());
}

/// The bucket's checkpoint copy is written after the swap, so a crash in between leaves
/// it a batch behind: the next start brings it up to date, without waiting for a write.
#[test]
fn a_lagging_bucket_checkpoint_is_brought_up_to_date_at_start() {
    let test = "a_lagging_bucket_checkpoint_is_brought_up_to_date_at_start";
    let Some(cluster) = Cluster::new(test) else {
        return;
    };
    let s3 = services::s3(test).unwrap();
    let (bucket, prefix) = cluster
        .store
        .trim_start_matches("s3://")
        .split_once('/')
        .unwrap();
    let static_url = format!("{}/{bucket}/{prefix}", s3.endpoint);
    let dir = tempdir();
    let data = dir.path().join("data");
    let rt = common::multi_thread_runtime();
    let publisher = Signer::generate("scale.example/publisher", KeyType::Ed25519).unwrap();
    let (mut server, _, client) = first_sequencer(&rt, &cluster, &data, 1_000, &publisher);
    assert_eq!(load::publish_one(&rt, &client, &publisher, SCOPE, 1).0, 201);
    let older = rt
        .block_on(client.get("/checkpoint"))
        .unwrap()
        .body
        .to_vec();
    assert_eq!(load::publish_one(&rt, &client, &publisher, SCOPE, 2).0, 201);
    let newest = rt
        .block_on(client.get("/checkpoint"))
        .unwrap()
        .body
        .to_vec();
    server.kill9();
    // As if the crash came between the swap of `newest` and its copy to the bucket.
    let put = Command::new("python3")
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci"))
        .args([
            "-c",
            "import sys, s3check; s, b = s3check.S3().request('PUT', sys.argv[1], \
             open(sys.argv[2], 'rb').read()); sys.exit(s != 200)",
            &format!("{prefix}/checkpoint"),
        ])
        .arg({
            let file = dir.path().join("older");
            std::fs::write(&file, &older).unwrap();
            file
        })
        .status()
        .unwrap();
    assert!(put.success());
    let http = common::Http::new(&static_url);
    assert_eq!(http.get("/checkpoint").2, older);
    let _server = cluster.start(&data, 1_000);
    assert_eq!(
        http.get("/checkpoint").2,
        newest,
        "the bucket still serves the older checkpoint"
    );
}
