//! N frontends, one sequencer (issue 11, ADR 0004 "Frontends"), with real servers
//! (radosgw and PostgreSQL 15 from `.ci/services.sh`; skipped without them, a failure
//! under `CI`). Every `serve` here shares one bucket and one database; the first holds
//! the lease, the others listen at once as frontends:
//! - publications through the frontends get receipts that verify against the final
//!   checkpoint, and a frontend's reads agree with the sequencer's;
//! - a bad signature sent to a frontend is refused there and never reaches the holder;
//! - `kill -9` of the sequencer under a load through a frontend: another process takes
//!   over, the frontend forwards to it, and nothing acknowledged is lost;
//! - a frontend paused past the lease and resumed never takes the lease or installs a
//!   checkpoint;
//! - evidence blobs live in the bucket: a frontend serves them itself, and they survive
//!   `kill -9` of the sequencer that stored them (ADR 0012);
//! - the holder's per-client limits count the clients behind a frontend it trusts
//!   (`Forwarded: for=`), each apart, and believe the header from no one else;
//! - a frontend answers catalog reads from its own projection of the log, as the holder
//!   does, and goes on answering them with the holder paused, then killed;
//! - so too state proofs and histories (verifying against the log key), the browser's
//!   search and entry pages, and receipts at the head's size; restored from a snapshot,
//!   it proves the commitments it followed since and forwards the older ones;
//! - with a real witness, a frontend serves the holder's cosigned checkpoint of its
//!   head (`/checkpoint` and receipts), only if it knows the witness key, and the
//!   log-signed one once the witness is gone.

mod common;
mod watchers;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::backend::Backend;
use common::load::{self, check_recovered, check_resubmitted, Acked, Load};
use common::{tempdir, Server};
use srcos_catalog::catalog::sign_envelope;
use srcos_catalog::http::{routes, HttpClient};
use srcos_catalog::keyfile::{read_signer, read_verifier};
use srcos_catalog::note::{self, KeyType, Signer, Verifier};
use srcos_catalog::receipt::Receipt;

/// The grant's scope for every publication here.
const SCOPE: &str = "front";

/// The bucket and the database of one test's log.
struct Cluster {
    backend: Backend,
    store: String,
    coordinator: String,
}

impl Cluster {
    fn new(test: &str) -> Option<Cluster> {
        let backend = Backend::cluster(test)?;
        let Backend::Cluster {
            store, coordinator, ..
        } = &backend
        else {
            unreachable!("Backend::cluster is a cluster");
        };
        let (store, coordinator) = (store.clone(), coordinator.clone());
        Some(Cluster {
            backend,
            store,
            coordinator,
        })
    }

    fn command(&self, data: &Path, lease_ms: u64, extra: &[&str]) -> Command {
        let lease_ms = lease_ms.to_string();
        let mut args = vec![
            "--batch-max",
            "64",
            "--lease-ms",
            &lease_ms,
            "--follow-ms",
            "50",
        ];
        args.extend_from_slice(extra);
        self.backend.serve_command(data, &args)
    }

    /// The first `serve`: it takes the lease and creates the log.
    fn sequencer(&self, data: &Path, lease_ms: u64) -> Server {
        self.sequencer_with(data, lease_ms, &[])
    }

    /// [`Cluster::sequencer`] with `extra` flags.
    fn sequencer_with(&self, data: &Path, lease_ms: u64, extra: &[&str]) -> Server {
        Server::spawn_command(self.command(data, lease_ms, extra), data)
    }

    /// A `serve` in `data` beside the sequencer in `sequencer` (its log key copied, as
    /// a deployment copies it), which finds the lease held and listens as a frontend.
    fn frontend(&self, sequencer: &Path, data: &Path, lease_ms: u64) -> Server {
        self.frontend_with(sequencer, data, lease_ms, &[])
    }

    /// [`Cluster::frontend`] with `extra` flags.
    fn frontend_with(
        &self,
        sequencer: &Path,
        data: &Path,
        lease_ms: u64,
        extra: &[&str],
    ) -> Server {
        std::fs::create_dir_all(data).unwrap();
        for file in ["log.key", "log.vkey"] {
            std::fs::copy(sequencer.join(file), data.join(file)).unwrap();
        }
        let command = self.command(data, lease_ms, extra);
        Server::spawn_until(command, data, "frontend listening on ")
    }

    /// The lease row: (epoch, advertised URL).
    fn lease(&self, rt: &tokio::runtime::Runtime) -> (i64, Option<String>) {
        let (url, name) = (self.coordinator.clone(), self.store.clone());
        rt.block_on(async move {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            let row = client
                .query_one(
                    "SELECT epoch, advertised FROM srcos_log WHERE log_name = $1",
                    &[&name],
                )
                .await
                .unwrap();
            (row.get(0), row.get(1))
        })
    }
}

/// A sequencer and `n` frontends on one new log, `publisher` granted through the first
/// frontend; returns them, the log key and the admin.
fn cluster_of(
    rt: &tokio::runtime::Runtime,
    cluster: &Cluster,
    dir: &Path,
    n: usize,
    lease_ms: u64,
    publisher: &Signer,
) -> (Server, Vec<Server>, Verifier, Signer) {
    let seq_data = dir.join("seq");
    let sequencer = cluster.sequencer(&seq_data, lease_ms);
    let log_key = read_verifier(&seq_data.join("log.vkey")).unwrap();
    let admin = read_signer(&seq_data.join("admin.key")).unwrap();
    let frontends: Vec<Server> = (0..n)
        .map(|i| cluster.frontend(&seq_data, &dir.join(format!("front{i}")), lease_ms))
        .collect();
    let client = HttpClient::new(&frontends[0].url).unwrap();
    load::grant(rt, &client, &admin, &publisher.verifier(), SCOPE);
    (sequencer, frontends, log_key, admin)
}

fn get(rt: &tokio::runtime::Runtime, client: &HttpClient, path: &str) -> (u16, Vec<u8>) {
    let r = rt.block_on(client.get(path)).unwrap();
    (r.status.as_u16(), r.body.to_vec())
}

/// Waits until `client` serves the checkpoint `want` (a frontend follows by polling).
fn until_checkpoint(rt: &tokio::runtime::Runtime, client: &HttpClient, want: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if get(rt, client, "/checkpoint").1 == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the frontend did not catch up with the sequencer's checkpoint"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The refusal counters' lines of a server's `/metrics`.
fn refusals(rt: &tokio::runtime::Runtime, client: &HttpClient) -> Vec<String> {
    let (status, body) = get(rt, client, "/metrics");
    assert_eq!(status, 200);
    String::from_utf8(body)
        .unwrap()
        .lines()
        .filter(|l| {
            l.starts_with("srcos_refusals_total") || l.starts_with("srcos_admissions_total")
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn publications_through_frontends_verify_and_reads_agree() {
    let Some(cluster) = Cluster::new("publications_through_frontends_verify") else {
        return;
    };
    let dir = tempdir();
    let rt = common::multi_thread_runtime();
    let publisher = Signer::generate("front.example/publisher", KeyType::Ed25519).unwrap();
    let (sequencer, frontends, log_key, _) =
        cluster_of(&rt, &cluster, dir.path(), 2, 10_000, &publisher);
    let holder = HttpClient::new(&sequencer.url).unwrap();
    let clients: Vec<HttpClient> = frontends
        .iter()
        .map(|f| HttpClient::new(&f.url).unwrap())
        .collect();

    // The lease row names the sequencer's URL (migration 2, `--advertise` defaulting
    // to the bound address).
    assert_eq!(
        cluster.lease(&rt).1.as_deref(),
        Some(sequencer.url.as_str())
    );

    let mut acked: Vec<Acked> = Vec::new();
    for n in 0..30u64 {
        let (via, other) = (&clients[(n % 2) as usize], &clients[((n + 1) % 2) as usize]);
        let (status, body) = load::publish_one(&rt, via, &publisher, SCOPE, n);
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
        let receipt = Receipt::from_json(&body).unwrap();
        receipt.verify(&log_key).unwrap();
        // The other frontend's receipt for the same entry: it waits until its head
        // covers the entry, then proves it against the sequencer's checkpoint.
        let (status, theirs) = get(&rt, other, &format!("/v1/receipts/{}", receipt.log_index));
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&theirs));
        let theirs = Receipt::from_json(&theirs).unwrap();
        theirs.verify(&log_key).unwrap();
        assert_eq!(theirs.entry, receipt.entry);
        acked.push(Acked {
            receipt,
            envelope: load::envelope(&publisher, SCOPE, n).into_bytes(),
        });
    }
    // Resubmitting through a frontend is a duplicate, answered by the sequencer.
    check_resubmitted(&rt, &clients[1], &acked, 5);

    // Every receipt verifies against the final checkpoint, on the sequencer and on
    // both frontends once they caught up.
    let (_, head) = get(&rt, &holder, "/checkpoint");
    check_recovered(
        &rt,
        &holder,
        &log_key,
        &acked,
        &load::checkpoints_of(&acked),
    );
    let (current, _) = note::open_checkpoint(&head, &log_key).unwrap();
    assert_eq!(current.size, 2 + 30, "genesis, grant, 30 publications");
    for client in &clients {
        until_checkpoint(&rt, client, &head);
        check_recovered(&rt, client, &log_key, &acked, &load::checkpoints_of(&acked));
    }

    // Reads agree byte for byte: local ones (tiles, entries, proofs, log info) and
    // forwarded ones (catalog state, inclusion proofs by leaf hash, receipts at a size).
    let leaf_hash = {
        use base64::Engine as _;
        let entry = base64::engine::general_purpose::STANDARD
            .decode(&acked[3].receipt.entry)
            .unwrap();
        hex::encode(srcos_catalog::merkle::leaf_hash(&entry))
    };
    let paths = [
        "/v1/log".to_string(),
        format!("/tile/0/000.p/{}", current.size),
        format!("/tile/entries/000.p/{}", current.size),
        "/v1/entries/5".to_string(),
        format!("/v1/proofs/consistency?first=3&second={}", current.size),
        format!("/v1/receipts/7?tree_size={}", current.size - 1),
        format!(
            "/v1/proofs/inclusion?leaf_hash={leaf_hash}&tree_size={}",
            current.size
        ),
        "/v1/catalog/state".to_string(),
        "/v1/entries/999".to_string(),
    ];
    for path in &paths {
        let want = get(&rt, &holder, path);
        for client in &clients {
            let got = get(&rt, client, path);
            assert_eq!(got.0, want.0, "{path}: status");
            if want.0 == 200 {
                assert_eq!(got.1, want.1, "{path}: body");
            }
        }
    }
    // A frontend says what it is, and where it forwards.
    let (status, ready) = get(&rt, &clients[0], "/readyz");
    assert_eq!(status, 200);
    let ready: serde_json::Value = serde_json::from_slice(&ready).unwrap();
    assert_eq!(ready["role"], "frontend");
    assert_eq!(ready["forwardsTo"], sequencer.url.as_str());

    // Evidence blobs live in the holder's data directory: an upload through one frontend
    // (its signed intent header passed on) is downloaded through the other, byte for
    // byte, with the holder's safety headers.
    {
        use srcos_catalog::client::{Authority as _, BlobPut, HttpAuthority};
        let bytes = b"{\"bomFormat\":\"CycloneDX\",\"specVersion\":\"1.5\"}".to_vec();
        let hex = {
            use sha2::Digest as _;
            hex::encode(sha2::Sha256::digest(&bytes))
        };
        let uploader = HttpAuthority::new(&frontends[0].url).unwrap();
        let put = rt
            .block_on(uploader.put_blob(&publisher, &hex, bytes.clone()))
            .unwrap();
        assert!(
            matches!(put, BlobPut::Created),
            "the upload was not created"
        );
        let (status, got) = get(&rt, &clients[1], &format!("/v1/blobs/sha256:{hex}"));
        assert_eq!(status, 200);
        assert_eq!(got, bytes);
        assert_eq!(
            get(&rt, &holder, &format!("/v1/blobs/sha256:{hex}")).1,
            bytes
        );
    }
}

#[test]
fn a_bad_signature_sent_to_a_frontend_never_reaches_the_sequencer() {
    let Some(cluster) = Cluster::new("a_bad_signature_sent_to_a_frontend") else {
        return;
    };
    let dir = tempdir();
    let rt = common::multi_thread_runtime();
    let publisher = Signer::generate("front.example/publisher", KeyType::Ed25519).unwrap();
    let (sequencer, frontends, _, _) = cluster_of(&rt, &cluster, dir.path(), 1, 10_000, &publisher);
    let holder = HttpClient::new(&sequencer.url).unwrap();
    let front = HttpClient::new(&frontends[0].url).unwrap();
    let (_, head_before) = get(&rt, &holder, "/checkpoint");
    let counted_before = refusals(&rt, &holder);

    // Signed by a key the log never granted.
    let stranger = Signer::generate("front.example/stranger", KeyType::Ed25519).unwrap();
    let unknown = load::envelope(&stranger, SCOPE, 1);
    // The publisher's envelope with its signature damaged.
    let mut damaged: serde_json::Value =
        serde_json::from_str(&load::envelope(&publisher, SCOPE, 2)).unwrap();
    let sig = damaged["signatures"][0]["sig"]
        .as_str()
        .unwrap()
        .to_string();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    damaged["signatures"][0]["sig"] = format!("{flipped}{}", &sig[1..]).into();
    // A grant signed by the publisher (not an admin) is the sequencer's to refuse (it
    // needs the state); a grant posted to the publications endpoint is the wrong kind.
    let admin_like = {
        let payload = serde_json::json!({
            "apiVersion": "catalog.srcos.ai/v1", "kind": "PublisherGrant",
            "publisherKey": stranger.verifier().to_vkey(), "role": "publisher",
            "targetPrefixes": ["sourceos://catalog/front/"], "channels": ["dev"],
        });
        sign_envelope(&serde_jcs::to_vec(&payload).unwrap(), &publisher).to_json()
    };
    let cases: [(&str, Vec<u8>, u16); 4] = [
        ("/v1/publications", unknown.into_bytes(), 403),
        ("/v1/publications", damaged.to_string().into_bytes(), 403),
        ("/v1/publications", b"{not json".to_vec(), 400),
        ("/v1/publications", admin_like.into_bytes(), 422),
    ];
    for (path, body, want) in cases {
        let r = rt
            .block_on(front.post(path, "application/json", body.into()))
            .unwrap();
        assert_eq!(
            r.status.as_u16(),
            want,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    // Too large: the frontend answers 413 from the declared length and may close before
    // the body is sent, so this one goes on a raw socket that ignores write errors.
    let oversize = (1usize << 20) + 1;
    let mut request = format!(
        "POST /v1/publications HTTP/1.1\r\nHost: front\r\nContent-Type: application/json\r\n\
         Content-Length: {oversize}\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    request.resize(request.len() + oversize, b' ');
    let (status, text) = common::raw_http(&frontends[0].url, &request);
    assert_eq!(status, 413, "{text}");
    // The holder saw none of them: no refusal or admission counted, no entry added.
    assert_eq!(refusals(&rt, &holder), counted_before);
    assert_eq!(get(&rt, &holder, "/checkpoint").1, head_before);
    // A good one still goes through the same frontend.
    assert_eq!(load::publish_one(&rt, &front, &publisher, SCOPE, 3).0, 201);
}

#[test]
fn kill_9_of_the_sequencer_under_load_through_a_frontend_loses_nothing() {
    let Some(cluster) = Cluster::new("kill_9_of_the_sequencer_under_load_through_a_frontend")
    else {
        return;
    };
    let dir = tempdir();
    let rt = common::multi_thread_runtime();
    let publisher = Signer::generate("front.example/publisher", KeyType::Ed25519).unwrap();
    let lease_ms = 1_500;
    let (mut sequencer, frontends, log_key, _) =
        cluster_of(&rt, &cluster, dir.path(), 2, lease_ms, &publisher);
    let (epoch_before, _) = cluster.lease(&rt);
    let front = HttpClient::new(&frontends[0].url).unwrap();
    let workload = Load {
        workers: 4,
        base: 0,
        scope: SCOPE,
        retry_503: true,
    };
    let running = load::start(&rt, &front, &publisher, &log_key, &workload);
    std::thread::sleep(Duration::from_millis(1_500));
    let before_kill = running.acknowledged();
    assert!(
        before_kill > 5,
        "only {before_kill} acknowledged before the kill"
    );
    sequencer.kill9();
    let killed = Instant::now();
    // The load goes on through the same frontend: 503s until a frontend takes over,
    // then acknowledgements from the new sequencer.
    let deadline = killed + Duration::from_millis(lease_ms * 4 + 20_000);
    while running.acknowledged() < before_kill + 20 {
        assert!(
            Instant::now() < deadline,
            "no sequencer took writes after the kill ({} acknowledged)",
            running.acknowledged()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "writes through the frontend resumed {:?} after kill -9 (lease {lease_ms} ms)",
        killed.elapsed()
    );
    let acked = running.finish(&rt);
    let (epoch_after, advertised) = cluster.lease(&rt);
    assert!(epoch_after > epoch_before, "the lease was not taken over");
    let urls: Vec<&str> = frontends.iter().map(|f| f.url.as_str()).collect();
    assert!(
        advertised.as_deref().is_some_and(|a| urls.contains(&a)),
        "the new holder {advertised:?} is not one of the frontends {urls:?}"
    );
    let new_holder = HttpClient::new(advertised.as_deref().unwrap()).unwrap();
    let seen = load::checkpoints_of(&acked);
    check_recovered(&rt, &new_holder, &log_key, &acked, &seen);
    check_resubmitted(&rt, &front, &acked, 10);
    let (_, head) = get(&rt, &new_holder, "/checkpoint");
    for f in &frontends {
        let client = HttpClient::new(&f.url).unwrap();
        until_checkpoint(&rt, &client, &head);
        check_recovered(&rt, &client, &log_key, &acked, &seen);
    }
}

#[test]
fn a_paused_frontend_never_writes_a_checkpoint() {
    let Some(cluster) = Cluster::new("a_paused_frontend_never_writes_a_checkpoint") else {
        return;
    };
    let dir = tempdir();
    let rt = common::multi_thread_runtime();
    let publisher = Signer::generate("front.example/publisher", KeyType::Ed25519).unwrap();
    let lease_ms = 1_000;
    let (sequencer, frontends, log_key, _) =
        cluster_of(&rt, &cluster, dir.path(), 1, lease_ms, &publisher);
    let holder = HttpClient::new(&sequencer.url).unwrap();
    let front = HttpClient::new(&frontends[0].url).unwrap();
    let (epoch, advertised) = cluster.lease(&rt);
    for n in 0..5 {
        assert_eq!(load::publish_one(&rt, &front, &publisher, SCOPE, n).0, 201);
    }
    let pid = frontends[0].pid() as i32;
    unsafe {
        libc::kill(pid, libc::SIGSTOP);
    }
    // Paused for several leases while the sequencer goes on.
    let mut seen = Vec::new();
    for n in 100..110 {
        let (status, body) = load::publish_one(&rt, &holder, &publisher, SCOPE, n);
        assert_eq!(status, 201);
        seen.push(Receipt::from_json(&body).unwrap().checkpoint.into_bytes());
        std::thread::sleep(Duration::from_millis(lease_ms * 3 / 10));
    }
    unsafe {
        libc::kill(pid, libc::SIGCONT);
    }
    for n in 200..205 {
        let (status, body) = load::publish_one(&rt, &front, &publisher, SCOPE, n);
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
        seen.push(Receipt::from_json(&body).unwrap().checkpoint.into_bytes());
    }
    // The lease never moved: the frontend took nothing, so it could install nothing,
    // and the sequencer's own swaps (compare-and-swap on its epoch and size) all went
    // through after the resume.
    assert_eq!(cluster.lease(&rt), (epoch, advertised));
    assert_eq!(
        load::publish_one(&rt, &holder, &publisher, SCOPE, 300).0,
        201
    );
    let (_, head) = get(&rt, &holder, "/checkpoint");
    let (current, _) = note::open_checkpoint(&head, &log_key).unwrap();
    assert_eq!(current.size, 2 + 5 + 10 + 5 + 1);
    until_checkpoint(&rt, &front, &head);
    check_recovered(&rt, &front, &log_key, &[], &seen);
}

/// Waits until `client`'s `/readyz` says it answers the catalog reads itself, from a
/// projection at `size`.
fn until_local_catalog(rt: &tokio::runtime::Runtime, client: &HttpClient, size: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = get(rt, client, "/readyz");
        let ready: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let catalog = &ready["catalog"];
        assert!(
            catalog["failed"].is_null(),
            "the projection failed: {ready}"
        );
        if catalog["local"] == true && catalog["treeSize"] == size {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the frontend's catalog did not catch up with size {size}: {ready}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A holder and a frontend of it on one new log, for the tests of what a frontend
/// answers itself.
struct LocalReads {
    sequencer: Server,
    frontend: Server,
    holder: HttpClient,
    front: HttpClient,
    publisher: Signer,
    log_key: Verifier,
}

/// Starts a sequencer in `dir/seq` (with `extra` flags) and a frontend in `dir/front`
/// whose forwarded reads give up after a second (so that a read forwarded to a paused
/// holder fails fast, not after 30 s), grants a publisher and publishes `publications`
/// through the holder.
fn holder_and_frontend(
    cluster: &Cluster,
    dir: &Path,
    rt: &tokio::runtime::Runtime,
    extra: &[&str],
    publications: u64,
) -> LocalReads {
    let publisher = Signer::generate("front.example/publisher", KeyType::Ed25519).unwrap();
    let seq_data = dir.join("seq");
    let sequencer = cluster.sequencer_with(&seq_data, 10_000, extra);
    let admin = read_signer(&seq_data.join("admin.key")).unwrap();
    let log_key = read_verifier(&seq_data.join("log.vkey")).unwrap();
    let frontend = cluster.frontend_with(
        &seq_data,
        &dir.join("front"),
        10_000,
        &["--forward-timeout-ms", "1000"],
    );
    let holder = HttpClient::new(&sequencer.url).unwrap();
    let front = HttpClient::new(&frontend.url).unwrap();
    load::grant(rt, &holder, &admin, &publisher.verifier(), SCOPE);
    for n in 0..publications {
        assert_eq!(load::publish_one(rt, &holder, &publisher, SCOPE, n).0, 201);
    }
    LocalReads {
        sequencer,
        frontend,
        holder,
        front,
        publisher,
        log_key,
    }
}

#[test]
fn a_frontend_answers_catalog_reads_from_its_own_projection() {
    let Some(cluster) = Cluster::new("a_frontend_answers_catalog_reads") else {
        return;
    };
    let dir = tempdir();
    let rt = common::multi_thread_runtime();
    let LocalReads {
        mut sequencer,
        frontend: _frontend,
        holder,
        front,
        log_key,
        ..
    } = holder_and_frontend(&cluster, dir.path(), &rt, &[], 6);
    let (_, head) = get(&rt, &holder, "/checkpoint");
    let (current, _) = note::open_checkpoint(&head, &log_key).unwrap();
    until_checkpoint(&rt, &front, &head);
    until_local_catalog(&rt, &front, current.size);

    let (status, page) = get(&rt, &holder, "/v1/catalog/entries?limit=3");
    assert_eq!(status, 200);
    let page: serde_json::Value = serde_json::from_slice(&page).unwrap();
    let entry = &page["entries"][1]["entry"];
    let (id, bundle) = (
        entry["id"].as_str().unwrap(),
        entry["evidenceBundleRef"].as_str().unwrap(),
    );
    let paths = [
        format!("/v1/catalog/entries/{id}"),
        "/v1/catalog/entries?limit=3".to_string(),
        "/v1/catalog/entries?status=published&limit=2&page_token=3".to_string(),
        format!("/v1/catalog/evidence-bundles/{bundle}"),
        "/v1/policy".to_string(),
        "/v1/catalog/state".to_string(),
        "/v1/catalog/entries/urn:srcos:catalog-entry:nothing".to_string(),
    ];
    let wants: Vec<(u16, Vec<u8>)> = paths.iter().map(|p| get(&rt, &holder, p)).collect();
    let agree = |why: &str| {
        for (path, want) in paths.iter().zip(&wants) {
            let got = get(&rt, &front, path);
            assert_eq!(got.0, want.0, "{why}: {path}: status");
            assert_eq!(got.1, want.1, "{why}: {path}: body");
        }
    };
    agree("holder running");

    // The holder paused, then gone: the frontend still answers, so from its own
    // projection (a forwarded read would time out, then find no holder).
    let pid = sequencer.pid() as i32;
    unsafe {
        libc::kill(pid, libc::SIGSTOP);
    }
    agree("holder paused");
    sequencer.kill9();
    agree("holder killed");
}

/// `s` with every byte but unreserved ones percent-encoded (for a query value).
fn query_value(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Waits until the holder's newest state commitment is the last leaf and names the size
/// before it (an idle commitment: the log is still); returns that size.
fn until_state_settled(rt: &tokio::runtime::Runtime, holder: &HttpClient, key_query: &str) -> u64 {
    use base64::Engine as _;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = get(rt, holder, &format!("/v1/state/proofs?{key_query}"));
        if status == 200 {
            let proof: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let c = &proof["commitment"];
            let entry = base64::engine::general_purpose::STANDARD
                .decode(c["entry"].as_str().unwrap())
                .unwrap();
            let leaf: serde_json::Value = serde_json::from_slice(&entry).unwrap();
            let index = c["logIndex"].as_u64().unwrap();
            if leaf["treeSize"].as_u64() == Some(index) && c["treeSize"].as_u64() == Some(index + 1)
            {
                return index;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the holder's state did not settle: {}",
            String::from_utf8_lossy(&body)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_frontend_answers_state_proofs_and_browser_pages_from_its_projection() {
    use sha2::Digest as _;
    use srcos_catalog::state::{StateHistory, StateProofBundle};
    let Some(cluster) = Cluster::new("a_frontend_answers_state_proofs") else {
        return;
    };
    let dir = tempdir();
    let rt = common::multi_thread_runtime();
    let LocalReads {
        mut sequencer,
        frontend: _frontend,
        holder,
        front,
        publisher,
        log_key,
    } = holder_and_frontend(&cluster, dir.path(), &rt, &["--state-commit-every", "1"], 4);
    let key = format!("key={}", query_value(&publisher.verifier().to_vkey()));
    let settled = until_state_settled(&rt, &holder, &key);
    let (_, head) = get(&rt, &holder, "/checkpoint");
    let (current, _) = note::open_checkpoint(&head, &log_key).unwrap();
    assert_eq!(current.size, settled + 1);
    until_checkpoint(&rt, &front, &head);
    until_local_catalog(&rt, &front, current.size);

    let subject = |n: u64| {
        let digest = sha2::Sha256::digest(format!("quay.io/{SCOPE}/subject:{n}"));
        format!(
            "subject={}",
            query_value(&format!("sha256:{}", hex::encode(digest)))
        )
    };
    let target = format!(
        "target={}",
        query_value(&format!("sourceos://catalog/{SCOPE}/x"))
    );
    // The log's first commitment, after the genesis and the grant, names its own index.
    let first = 2;
    let (status, _) = get(
        &rt,
        &holder,
        &format!("/v1/state/proofs?{key}&tree_size={first}"),
    );
    assert_eq!(status, 200, "the first commitment is at size {first}");
    let (status, page) = get(&rt, &holder, "/v1/catalog/entries?limit=1");
    assert_eq!(status, 200);
    let page: serde_json::Value = serde_json::from_slice(&page).unwrap();
    let id = page["entries"][0]["entry"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let proofs = [
        format!("/v1/state/proofs?{key}"),
        format!("/v1/state/proofs?{}", subject(1)),
        format!("/v1/state/proofs?{target}&{}", subject(2)),
        format!("/v1/state/proofs?{target}&channel=dev"),
        format!("/v1/state/proofs?{target}&{}&tree_size={first}", subject(3)),
        format!("/v1/state/proofs?{}", subject(99)),
    ];
    let histories = [
        format!("/v1/state/proofs/history?{key}&from={first}"),
        format!(
            "/v1/state/proofs/history?{target}&{}&from={first}",
            subject(3)
        ),
    ];
    let pages = [
        "/".to_string(),
        format!("/?channel=dev&q=quay.io%2F{SCOPE}"),
        format!("/browse/entries/{}", query_value(&id)),
        "/browse/entries/00000000000000000000000000000000".to_string(),
        "/browse/style.css".to_string(),
    ];
    let receipts = [format!("/v1/receipts/1?tree_size={}", current.size)];
    let paths: Vec<&String> = proofs
        .iter()
        .chain(&histories)
        .chain(&pages)
        .chain(&receipts)
        .collect();
    let wants: Vec<(u16, Vec<u8>)> = paths.iter().map(|p| get(&rt, &holder, p)).collect();
    // The holder's answers verify: the frontend's, equal to them, then do too.
    for (path, (status, body)) in paths.iter().zip(&wants) {
        let expected = if path.contains("00000000000000000000000000000000") {
            404
        } else {
            200
        };
        assert_eq!(
            *status,
            expected,
            "{path}: {}",
            String::from_utf8_lossy(body)
        );
    }
    for (path, (_, body)) in proofs.iter().zip(&wants) {
        let bundle: StateProofBundle = serde_json::from_slice(body).unwrap();
        let lookup = bundle.verify(&log_key, &[], 0).unwrap();
        let size = if path.contains("tree_size") {
            first
        } else {
            settled
        };
        assert_eq!(lookup.tree_size, size, "{path}");
    }
    for (_, (_, body)) in histories.iter().zip(&wants[proofs.len()..]) {
        let history: StateHistory = serde_json::from_slice(body).unwrap();
        let steps = history.verify(&log_key, &[], 0).unwrap();
        assert_eq!(steps.first().unwrap().tree_size, first);
        assert_eq!(steps.last().unwrap().tree_size, settled);
    }
    let agree = |why: &str| {
        for (path, want) in paths.iter().zip(&wants) {
            let got = get(&rt, &front, path);
            assert_eq!(got.0, want.0, "{why}: {path}: status");
            assert_eq!(
                String::from_utf8_lossy(&got.1),
                String::from_utf8_lossy(&want.1),
                "{why}: {path}: body"
            );
        }
    };
    agree("holder running");
    // A commitment this log never made: a 404 the frontend passes on from the holder.
    let never = format!("/v1/state/proofs?{key}&tree_size=1");
    let (status, body) = get(&rt, &front, &never);
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));

    // The holder paused, then gone: the frontend still answers, so from its own
    // projection (a forwarded read would time out, then find no holder).
    let pid = sequencer.pid() as i32;
    unsafe {
        libc::kill(pid, libc::SIGSTOP);
    }
    agree("holder paused");
    sequencer.kill9();
    agree("holder killed");
    let (status, _) = get(&rt, &front, &never);
    assert_ne!(
        status, 200,
        "a commitment not kept here is the holder's to answer"
    );
}

/// A lock whose `read` answers whatever the test put in it (the follower only reads).
struct Fixed(std::sync::Mutex<Option<Vec<u8>>>);

impl srcos_catalog::storage::CheckpointLock for Fixed {
    fn read(&self) -> Result<Option<Vec<u8>>, srcos_catalog::storage::StorageError> {
        Ok(self.0.lock().unwrap().clone())
    }

    fn swap(
        &self,
        _old: Option<srcos_catalog::storage::LockedCheckpoint<'_>>,
        _new: srcos_catalog::storage::LockedCheckpoint<'_>,
    ) -> Result<(), srcos_catalog::storage::StorageError> {
        unreachable!("a follower never swaps")
    }
}

/// The follower's rules, in process on the memory drivers (no servers needed): it takes
/// a head only if it verifies with the log key, grows, and the tiles rebuild its root;
/// it keeps the old head otherwise, folds the keys the leaves made known, and adds to
/// its head only witness cosignatures of that head that verify.
#[test]
fn a_follower_takes_only_verified_growing_heads_and_folds_the_keys() {
    use srcos_catalog::log::follower::Follower;
    use srcos_catalog::log::{Log, LogOptions};
    use srcos_catalog::note::Checkpoint;
    use srcos_catalog::storage::memory::MemoryLog;
    use srcos_catalog::storage::Backends;

    let dir = tempdir();
    let data = dir.path().join("data");
    let memory = MemoryLog::new();
    let (log, _) = Log::open_with(Backends::memory(&memory), LogOptions::new(&data)).unwrap();
    let log_key = read_verifier(&data.join("log.vkey")).unwrap();
    let admin = read_signer(&data.join("admin.key")).unwrap();
    let fixed = std::sync::Arc::new(Fixed(std::sync::Mutex::new(None)));
    let follower = Follower::new(log_key.clone(), memory.tiles.clone(), fixed.clone());
    let set = |bytes: &[u8]| *fixed.0.lock().unwrap() = Some(bytes.to_vec());
    let size = |f: &Follower| f.head().map(|h| h.checkpoint.size);

    // Nothing installed yet: no head, reads are 404s, not errors of the log.
    follower.refresh().unwrap();
    assert_eq!(size(&follower), None);
    assert!(follower.entry(0).is_err());
    let genesis = log.head().signed.to_vec();
    set(&genesis);
    follower.refresh().unwrap();
    assert_eq!(size(&follower), Some(1));
    assert!(follower.keys().get(&admin.verifier().short_id()).is_some());

    // A grant makes the publisher's key known to the follower once it is followed.
    let publisher = Signer::generate("front.example/publisher", KeyType::Ed25519).unwrap();
    let payload = serde_json::json!({
        "apiVersion": "catalog.srcos.ai/v1", "kind": "PublisherGrant",
        "publisherKey": publisher.verifier().to_vkey(), "role": "publisher",
        "targetPrefixes": ["sourceos://catalog/front/"], "channels": ["dev"],
    });
    let envelope = sign_envelope(&serde_jcs::to_vec(&payload).unwrap(), &admin).to_json();
    let rt = common::multi_thread_runtime();
    rt.block_on(srcos_catalog::log::intake::intake(
        &log,
        None,
        envelope.as_bytes(),
        None,
    ))
    .unwrap();
    assert!(follower
        .keys()
        .get(&publisher.verifier().short_id())
        .is_none());
    let two = log.head().signed.to_vec();
    set(&two);
    follower.refresh().unwrap();
    assert_eq!(size(&follower), Some(2));
    assert!(follower
        .keys()
        .get(&publisher.verifier().short_id())
        .is_some());
    let receipt = follower.receipt(1).unwrap();
    receipt.verify(&log_key).unwrap();

    // Refused, the head of size 2 kept: a rollback, a second root for size 2, a
    // checkpoint by another key, and one whose tiles are not there.
    let signer = read_signer(&data.join("log.key")).unwrap();
    let signed = |size: u64, root: [u8; 32]| {
        Checkpoint {
            origin: log.origin().to_string(),
            size,
            root,
            extensions: Vec::new(),
        }
        .sign(&signer)
        .unwrap()
        .to_bytes()
    };
    let stranger = Signer::generate(log.origin(), KeyType::Ed25519).unwrap();
    let foreign = Checkpoint {
        origin: log.origin().to_string(),
        size: 3,
        root: [7; 32],
        extensions: Vec::new(),
    }
    .sign(&stranger)
    .unwrap()
    .to_bytes();
    let refused = [
        ("rollback", genesis.clone()),
        ("fork", signed(2, [9; 32])),
        ("foreign key", foreign),
        ("missing tiles", signed(5, [9; 32])),
    ];
    for (what, bytes) in refused {
        set(&bytes);
        assert!(follower.refresh().is_err(), "{what} was taken");
        assert_eq!(size(&follower), Some(2), "{what} moved the head");
        assert_eq!(follower.head().unwrap().signed.as_slice(), two.as_slice());
    }
    assert!(
        follower.entry(2).is_err(),
        "an entry beyond the head is not served"
    );

    // Witness cosignatures for the head held: taken only for its own note and only if
    // they verify with a known witness key, then kept by a refresh of the same tree and
    // carried by receipts.
    set(&two);
    follower.refresh().unwrap();
    let witness = Signer::generate("witness.example/w", KeyType::CosignatureV1).unwrap();
    let witnesses = [witness.verifier()];
    let cosigned = |bytes: &[u8]| {
        let mut n = note::Note::parse(bytes).unwrap();
        n.add_signature(note::cosign(n.text(), &witness, 1).unwrap())
            .unwrap();
        n.to_bytes()
    };
    assert!(
        !follower.add_cosignatures(&cosigned(&genesis), &witnesses),
        "another tree"
    );
    assert!(
        !follower.add_cosignatures(&cosigned(&two), &[]),
        "no known witness"
    );
    assert_eq!(follower.head().unwrap().signed.as_slice(), two.as_slice());
    assert!(follower.add_cosignatures(&cosigned(&two), &witnesses));
    assert_eq!(follower.cosigners(&witnesses), 1);
    let served = follower.head().unwrap().signed.to_vec();
    assert_eq!(served, cosigned(&two));
    follower.refresh().unwrap();
    assert_eq!(
        follower.head().unwrap().signed.as_slice(),
        served.as_slice()
    );
    assert_eq!(
        follower.receipt(1).unwrap().checkpoint.as_bytes(),
        served.as_slice()
    );
    log.shutdown();
}

/// PUTs `bytes` under `hex` through `client`, the intent signed by `uploader`.
fn put_blob(
    rt: &tokio::runtime::Runtime,
    client: &HttpClient,
    uploader: &Signer,
    origin: &str,
    hex: &str,
    bytes: &[u8],
) -> u16 {
    let intent = srcos_catalog::client::upload_intent(uploader, origin, hex, bytes.len() as u64);
    let headers = [(srcos_catalog::catalog::BLOB_INTENT_HEADER, intent.as_str())];
    let path = format!("/v1/blobs/sha256:{hex}");
    rt.block_on(client.put_with(
        &path,
        "application/octet-stream",
        &headers,
        bytes.to_vec().into(),
    ))
    .unwrap()
    .status
    .as_u16()
}

/// A publication whose evidence is the blobs `evidence` (each a `build-receipt`, which
/// analysis reads as JSON), plus the types the `dev` channel requires, not uploaded.
fn publication_naming(publisher: &Signer, evidence: &[&[u8]]) -> String {
    use sha2::Digest;
    let item = |ty: &str, media: &str, bytes: &[u8], i: usize| {
        serde_json::json!({
            "type": ty, "mediaType": media,
            "digest": {"sha256": hex::encode(sha2::Sha256::digest(bytes))},
            "uri": format!("file:///{ty}-{i}.json"), "size": bytes.len(),
        })
    };
    let mut items: Vec<serde_json::Value> = evidence
        .iter()
        .enumerate()
        .map(|(i, bytes)| item("build-receipt", "application/json", bytes, i))
        .collect();
    items.push(item(
        "sbom",
        "application/spdx+json",
        b"not uploaded: sbom",
        0,
    ));
    items.push(item(
        "vulnerability-scan",
        "application/vnd.anchore.grype+json",
        b"not uploaded: scan",
        0,
    ));
    items.push(item(
        "provenance",
        "application/json",
        b"not uploaded: provenance",
        0,
    ));
    let request = serde_json::json!({
        "apiVersion": "catalog.srcos.ai/v1", "kind": "CatalogPublicationRequest",
        "subject": {"name": "quay.io/front/evidence",
                    "digest": {"sha256": hex::encode(sha2::Sha256::digest(b"evidence subject"))}},
        "targetCatalogRef": format!("sourceos://catalog/{SCOPE}/x"), "channel": "dev",
        "requesterRef": "socios://pipeline/test",
        "evidence": items,
        "agentplaneRefs": {"validationArtifactRef": null, "runArtifactRef": null,
                           "replayArtifactRef": null},
    });
    sign_envelope(&serde_jcs::to_vec(&request).unwrap(), publisher).to_json()
}

/// Evidence lives in the bucket (ADR 0012): a blob uploaded through a frontend (stored by
/// the sequencer) is served by the frontend itself from the bucket; an identical
/// re-upload is accepted and other bytes under its name refused; after `kill -9` of the
/// sequencer (its data directory deleted too), the frontend that takes over still has
/// every blob, and its analysis of a publication naming them reads them all.
#[test]
fn evidence_in_the_bucket_is_served_by_frontends_and_survives_kill_9() {
    let Some(cluster) = Cluster::new("evidence_in_the_bucket_survives_kill_9") else {
        return;
    };
    let dir = tempdir();
    let rt = common::multi_thread_runtime();
    let publisher = Signer::generate("front.example/publisher", KeyType::Ed25519).unwrap();
    let lease_ms = 1_500;
    let (mut sequencer, frontends, _log_key, admin) =
        cluster_of(&rt, &cluster, dir.path(), 1, lease_ms, &publisher);
    let origin = read_signer(&dir.path().join("seq/log.key"))
        .unwrap()
        .name()
        .to_string();
    let (seq, front) = (
        HttpClient::new(&sequencer.url).unwrap(),
        HttpClient::new(&frontends[0].url).unwrap(),
    );
    let hex_of = |bytes: &[u8]| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(bytes))
    };
    // One blob through the frontend (forwarded: the holder keeps the quotas), one
    // straight to the sequencer.
    let (first, second) = (
        &br#"{"through":"the frontend"}"#[..],
        &br#"{"to":"the sequencer"}"#[..],
    );
    assert_eq!(
        put_blob(&rt, &front, &admin, &origin, &hex_of(first), first),
        201
    );
    assert_eq!(
        put_blob(&rt, &seq, &publisher, &origin, &hex_of(second), second),
        201
    );
    assert_eq!(
        put_blob(&rt, &front, &admin, &origin, &hex_of(first), first),
        200,
        "an identical re-upload is accepted"
    );
    assert_eq!(
        put_blob(
            &rt,
            &front,
            &admin,
            &origin,
            &hex_of(first),
            br#"{"other":"bytes!!!!!!"}"#
        ),
        422,
        "other bytes under the name are refused"
    );
    // The frontend serves the blob from the bucket itself (its cache now holds it).
    let (status, body) = get(&rt, &front, &format!("/v1/blobs/sha256:{}", hex_of(first)));
    assert_eq!((status, body.as_slice()), (200, first));
    assert!(
        dir.path()
            .join("front0/blobs/sha256")
            .join(hex_of(first))
            .is_file(),
        "the frontend fetched the blob from the bucket rather than forwarding"
    );

    sequencer.kill9();
    std::fs::remove_dir_all(dir.path().join("seq/blobs")).unwrap();
    let deadline = Instant::now() + Duration::from_millis(lease_ms * 4 + 20_000);
    let envelope = publication_naming(&publisher, &[first, second]);
    let receipt = loop {
        let r = rt
            .block_on(front.post(
                "/v1/publications",
                "application/json",
                envelope.clone().into(),
            ))
            .unwrap();
        match r.status.as_u16() {
            201 | 200 => break r.body.to_vec(),
            503 => assert!(Instant::now() < deadline, "no sequencer took over"),
            other => panic!("{other}: {}", String::from_utf8_lossy(&r.body)),
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(Receipt::from_json(&receipt).is_ok());
    // The new sequencer (the frontend) analysed both blobs: one it had cached, one only
    // the bucket held.
    let subject = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(b"evidence subject"))
    };
    let (status, body) = get(
        &rt,
        &front,
        &format!("/v1/catalog/entries?subject=sha256:{subject}"),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let id = v["entries"][0]["entry"]["evidenceBundleRef"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = get(&rt, &front, &format!("/v1/catalog/evidence-bundles/{id}"));
    assert_eq!(status, 200);
    let bundle: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        bundle["evidenceReport"]["items"].as_array().map(Vec::len),
        Some(2),
        "every blob was analysed after the failover: {bundle}"
    );
    for bytes in [first, second] {
        let (status, body) = get(&rt, &front, &format!("/v1/blobs/sha256:{}", hex_of(bytes)));
        assert_eq!((status, body.as_slice()), (200, bytes));
    }
}

/// `GET path` from the local address `from` to `server`, with `extra` header lines.
fn get_from(server: &Server, from: &str, path: &str, extra: &str) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n");
    common::raw_http_from(&server.url, from.parse().unwrap(), request.as_bytes())
}

/// Sends up to `n` requests (`send(i)`) until one is refused with 429, which must name
/// the limit `detail`; fails with `why` if none is.
fn assert_limited(why: &str, detail: &str, n: usize, mut send: impl FnMut(usize) -> (u16, String)) {
    for i in 0..n {
        let (status, text) = send(i);
        if status == 429 {
            assert!(text.contains(detail), "{why}: {text}");
            return;
        }
        assert_eq!(status, 200, "{why}: request {i}: {text}");
    }
    panic!("{why}: no request of {n} was refused");
}

/// The holder trusts the frontend (`--trusted-proxy 127.0.0.1`) and limits each client
/// to a burst of 3 requests; the frontend allows 6. Other loopback addresses stand for
/// other client machines. Through the frontend, two clients are limited apart by the
/// holder; a client's own `Forwarded` header is replaced by the frontend and ignored by
/// the holder when it comes straight from an untrusted peer; a malformed one from the
/// trusted peer is a 400; and the frontend still limits the real client itself.
#[test]
fn per_client_limits_see_the_client_behind_a_frontend() {
    let Some(cluster) = Cluster::new("per_client_limits_behind_a_frontend") else {
        return;
    };
    let dir = tempdir();
    let seq_data = dir.path().join("seq");
    let holder_flags = [
        "--limit-loopback",
        "--per-ip-rate",
        "1",
        "--per-ip-burst",
        "3",
        "--trusted-proxy",
        "127.0.0.1",
    ];
    let sequencer = cluster.sequencer_with(&seq_data, 10_000, &holder_flags);
    let front_flags = [
        "--limit-loopback",
        "--per-ip-rate",
        "2",
        "--per-ip-burst",
        "6",
    ];
    let frontend =
        cluster.frontend_with(&seq_data, &dir.path().join("front"), 10_000, &front_flags);
    // A read the frontend forwards (the catalog reads it answers itself).
    let forwarded = routes::BROWSE_LOG;
    // Until the frontend knows the holder (a client of its own, so no one else's budget).
    let deadline = Instant::now() + Duration::from_secs(20);
    while get_from(&frontend, "127.0.0.20", forwarded, "").0 != 200 {
        assert!(Instant::now() < deadline, "the frontend never forwarded");
        std::thread::sleep(Duration::from_millis(1500));
    }
    let holders = "at most 1 requests per second";

    // Client A exhausts its burst at the holder, through the frontend.
    assert_limited("the holder limits client A", holders, 6, |_| {
        get_from(&frontend, "127.0.0.2", forwarded, "")
    });
    // Client B, through the same frontend, is another client to the holder.
    let (status, text) = get_from(&frontend, "127.0.0.3", forwarded, "");
    assert_eq!(status, 200, "client B was limited with client A: {text}");

    // C names another client in each request: the frontend replaces the header, so the
    // holder still counts C.
    let spoofed = |i| format!("Forwarded: for=10.0.0.{i}\r\n");
    assert_limited(
        "a spoofed Forwarded through the frontend",
        holders,
        6,
        |i| get_from(&frontend, "127.0.0.4", forwarded, &spoofed(i)),
    );

    // Straight to the holder from an untrusted peer: the header is ignored, even malformed.
    let (status, text) = get_from(
        &sequencer,
        "127.0.0.5",
        forwarded,
        "Forwarded: for=[nonsense\r\n",
    );
    assert_eq!(status, 200, "{text}");
    assert_limited(
        "a spoofed Forwarded from an untrusted peer",
        holders,
        6,
        |i| get_from(&sequencer, "127.0.0.5", forwarded, &spoofed(i)),
    );

    // From the trusted peer, a malformed header is refused precisely.
    let (status, text) = get_from(
        &sequencer,
        "127.0.0.1",
        forwarded,
        "Forwarded: for=2001:db8::1\r\n",
    );
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("bad-forwarded") && text.contains("must be quoted"),
        "{text}"
    );

    // The frontend's own limits count the real client (a read it answers itself).
    let frontends = "at most 2 requests per second";
    assert_limited("the frontend limits its clients", frontends, 8, |_| {
        get_from(&frontend, "127.0.0.6", routes::CHECKPOINT, "")
    });
}

/// The tree size of the checkpoint `client` serves, and its bytes (the log's signature
/// verified).
fn served(rt: &tokio::runtime::Runtime, client: &HttpClient, log_key: &Verifier) -> (u64, Vec<u8>) {
    let (status, body) = get(rt, client, "/checkpoint");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (checkpoint, _) = note::open_checkpoint(&body, log_key).unwrap();
    (checkpoint.size, body)
}

/// Polls `client`'s checkpoint until `done` says yes (20 s at most); returns the one it
/// took, and records every size seen in `sizes`.
fn until_served(
    rt: &tokio::runtime::Runtime,
    client: &HttpClient,
    log_key: &Verifier,
    sizes: &mut Vec<u64>,
    what: &str,
    done: impl Fn(u64, &[u8]) -> bool,
) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (size, body) = served(rt, client, log_key);
        sizes.push(size);
        if done(size, &body) {
            return body;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The log cosigned by a real witness (the holder collects, ADR 0004 "Frontends"): a
/// frontend given the witness key serves the holder's cosignature on its own head, in
/// `/checkpoint` and in receipts; a frontend without the key serves the log's signature
/// alone; once the witness is gone, the new head is served log-signed, and the size
/// served never goes back.
#[test]
fn frontends_serve_the_holders_witness_cosignatures_for_their_head() {
    use watchers::{cosigners, publish_ok, start_witness, witness_arg, witness_key, SUBJECT};
    let Some(cluster) = Cluster::new("frontends_serve_the_holders_witness_cosignatures") else {
        return;
    };
    // The log is made first: the witness is started with its key.
    let fx = watchers::stopped_log_on(&cluster.backend, 1);
    let w1 = witness_key(fx.dir.path(), "w1");
    let mut witness = start_witness(
        &w1,
        &[(&fx.origin, &fx.log_vkey)],
        &fx.dir.path().join("w1-state"),
    );
    let witnesses = [read_verifier(&w1.with_extension("vkey")).unwrap()];
    let arg = witness_arg(&witness.url, &w1);
    let flags = ["--witness", arg.as_str(), "--witness-timeout-ms", "1000"];
    let sequencer = cluster.sequencer_with(&fx.data, 10_000, &flags);
    let front = cluster.frontend_with(&fx.data, &fx.dir.path().join("front"), 10_000, &flags);
    let keyless = cluster.frontend(&fx.data, &fx.dir.path().join("keyless"), 10_000);
    let rt = common::multi_thread_runtime();
    let log_key = &fx.log_key;
    let holder = HttpClient::new(&sequencer.url).unwrap();
    let [front_client, keyless_client] =
        [&front, &keyless].map(|f| HttpClient::new(&f.url).unwrap());
    let cosigned_by = |note: &[u8]| cosigners(note, log_key, &witnesses);

    for n in 1..4 {
        publish_ok(&front.url, &fx.publisher, SUBJECT, n);
    }
    let size = 2 + 4;
    let wanted = until_served(
        &rt,
        &holder,
        log_key,
        &mut Vec::new(),
        "the holder's cosigned checkpoint",
        |s, note| s == size && cosigned_by(note) == 1,
    );
    // The frontend's head: the same tree, the same cosignature, byte for byte.
    let mut sizes = Vec::new();
    until_served(
        &rt,
        &front_client,
        log_key,
        &mut sizes,
        "the frontend's cosigned checkpoint",
        |_, note| note == wanted.as_slice(),
    );
    let (status, receipt) = get(&rt, &front_client, &format!("/v1/receipts/{}", size - 1));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&receipt));
    let receipt = Receipt::from_json(&receipt).unwrap();
    receipt.verify(log_key).unwrap();
    assert_eq!(receipt.tree_size, size);
    assert_eq!(
        cosigned_by(receipt.checkpoint.as_bytes()),
        1,
        "the frontend's receipt carries the cosignature"
    );
    // Without the witness key the cosignature cannot be checked: the log's signature
    // alone.
    let keyless_note = until_served(
        &rt,
        &keyless_client,
        log_key,
        &mut Vec::new(),
        "the keyless frontend's head",
        |s, _| s == size,
    );
    assert_eq!(cosigned_by(&keyless_note), 0);

    // The witness is gone: the holder settles the new head without it, and the frontend
    // serves that head with the log's signature alone.
    witness.kill9();
    publish_ok(&front.url, &fx.publisher, SUBJECT, 10);
    let latest = until_served(
        &rt,
        &front_client,
        log_key,
        &mut sizes,
        "the frontend's head after the witness died",
        |s, _| s == size + 1,
    );
    assert_eq!(cosigned_by(&latest), 0);
    assert!(
        sizes.windows(2).all(|w| w[0] <= w[1]),
        "the frontend's checkpoint went back: {sizes:?}"
    );
}

/// The size of the newest catalog snapshot (whole or delta) in the data directory `data`.
fn newest_snapshot(data: &Path) -> u64 {
    let dir = srcos_catalog::log::snapshot::dir(data);
    let whole = srcos_catalog::log::snapshot::list(&dir);
    let deltas = srcos_catalog::log::snapshot::delta::list(&dir);
    whole
        .iter()
        .chain(&deltas)
        .map(|(n, _)| *n)
        .max()
        .unwrap_or(0)
}

/// Waits until `data` holds a catalog snapshot of `size` or more; returns the newest.
fn until_snapshot(data: &Path, size: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let newest = newest_snapshot(data);
        if newest >= size {
            return newest;
        }
        assert!(
            Instant::now() < deadline,
            "no snapshot of size {size} in {} (newest {newest})",
            data.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The state digest a server serves at `size`.
fn state_at(rt: &tokio::runtime::Runtime, client: &HttpClient, size: u64) -> Vec<u8> {
    let (status, body) = get(rt, client, &format!("/v1/catalog/state?tree_size={size}"));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    body
}

/// A frontend writes catalog snapshots of its own projection: after a `kill -9` it
/// restarts from them (applying only the leaves after the newest), and when it takes
/// the lease the log opens on them, so the new sequencer replays only the tail.
#[test]
fn a_frontend_restarts_and_takes_over_from_its_own_snapshots() {
    let Some(cluster) = Cluster::new("a_frontend_restarts_and_takes_over_from_snapshots") else {
        return;
    };
    let dir = tempdir();
    let rt = common::multi_thread_runtime();
    let publisher = Signer::generate("front.example/publisher", KeyType::Ed25519).unwrap();
    let lease_ms = 1_500;
    let seq_data = dir.path().join("seq");
    let front_data = dir.path().join("front");
    let mut sequencer = cluster.sequencer(&seq_data, lease_ms);
    let admin = read_signer(&seq_data.join("admin.key")).unwrap();
    let log_key = read_verifier(&seq_data.join("log.vkey")).unwrap();
    // A snapshot once 16 leaves came since the newest: the newest is within 15 of a
    // head the projection applied.
    let every = ["--snapshot-every", "16"];
    let mut frontend = cluster.frontend_with(&seq_data, &front_data, lease_ms, &every);
    let holder = HttpClient::new(&sequencer.url).unwrap();
    load::grant(&rt, &holder, &admin, &publisher.verifier(), SCOPE);
    let publish = |via: &HttpClient, ns: std::ops::Range<u64>| {
        for n in ns {
            assert_eq!(load::publish_one(&rt, via, &publisher, SCOPE, n).0, 201);
        }
        // The holder's head: a frontend's may lag by a poll.
        let (_, head) = get(&rt, &holder, "/checkpoint");
        note::open_checkpoint(&head, &log_key).unwrap().0.size
    };
    let size = publish(&holder, 0..80);
    let front = HttpClient::new(&frontend.url).unwrap();
    until_local_catalog(&rt, &front, size);
    until_snapshot(&front_data, size - 15);

    // kill -9, and a restart from the snapshots it wrote.
    frontend.kill9();
    let newest = newest_snapshot(&front_data);
    let frontend = cluster.frontend_with(&seq_data, &front_data, lease_ms, &every);
    let front = HttpClient::new(&frontend.url).unwrap();
    until_local_catalog(&rt, &front, size);
    let (_, ready) = get(&rt, &front, "/readyz");
    let ready: serde_json::Value = serde_json::from_slice(&ready).unwrap();
    assert_eq!(
        ready["catalog"]["restoredFrom"]["treeSize"], newest,
        "restored from the newest snapshot: {ready}"
    );
    assert_eq!(state_at(&rt, &front, size), state_at(&rt, &holder, size));

    // More leaves (a delta on the snapshots), then a tail shorter than a snapshot's
    // interval, and the sequencer killed: the frontend takes over from its snapshots.
    let size = publish(&front, 80..100);
    until_local_catalog(&rt, &front, size);
    let snapshotted = until_snapshot(&front_data, size - 15);
    let size = publish(&front, 100..105);
    until_local_catalog(&rt, &front, size);
    let want = state_at(&rt, &holder, size);
    sequencer.kill9();
    let started = frontend.until_printed(
        "start-up: catalog restored from the snapshot at size ",
        Duration::from_millis(lease_ms * 4 + 30_000),
    );
    // "N (K deltas), replayed M entries"
    let numbers: Vec<u64> = started
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    let (restored, replayed) = (numbers[0], numbers[2]);
    assert!(
        restored >= snapshotted && restored + replayed == size && replayed < size - 80,
        "the takeover replayed more than the tail after the frontend's snapshots: {started}"
    );
    frontend.until_printed("listening on ", Duration::from_secs(10));
    assert_eq!(state_at(&rt, &front, size), want);
    assert_eq!(
        load::publish_one(&rt, &front, &publisher, SCOPE, 200).0,
        201
    );
}

/// A frontend restored from its own snapshot never saw the commitments before it: it
/// answers the ones it followed since (with the holder paused too), and passes every
/// older one on to the holder rather than answering from what it lacks.
#[test]
fn a_restored_frontend_proves_the_commitments_it_followed_and_forwards_older_ones() {
    let Some(cluster) = Cluster::new("a_restored_frontend_proves_commitments") else {
        return;
    };
    let dir = tempdir();
    let rt = common::multi_thread_runtime();
    let publisher = Signer::generate("front.example/publisher", KeyType::Ed25519).unwrap();
    let seq_data = dir.path().join("seq");
    let front_data = dir.path().join("front");
    let mut sequencer = cluster.sequencer_with(&seq_data, 10_000, &["--state-commit-every", "1"]);
    let admin = read_signer(&seq_data.join("admin.key")).unwrap();
    let log_key = read_verifier(&seq_data.join("log.vkey")).unwrap();
    let flags = ["--snapshot-every", "8", "--forward-timeout-ms", "1000"];
    let mut frontend = cluster.frontend_with(&seq_data, &front_data, 10_000, &flags);
    let holder = HttpClient::new(&sequencer.url).unwrap();
    load::grant(&rt, &holder, &admin, &publisher.verifier(), SCOPE);
    let key = format!("key={}", query_value(&publisher.verifier().to_vkey()));
    let publish = |ns: std::ops::Range<u64>| {
        for n in ns {
            assert_eq!(load::publish_one(&rt, &holder, &publisher, SCOPE, n).0, 201);
        }
        until_state_settled(&rt, &holder, &key)
    };
    let settled = publish(0..20);
    let front = HttpClient::new(&frontend.url).unwrap();
    until_local_catalog(&rt, &front, settled + 1);
    until_snapshot(&front_data, settled - 16);

    frontend.kill9();
    let frontend = cluster.frontend_with(&seq_data, &front_data, 10_000, &flags);
    let front = HttpClient::new(&frontend.url).unwrap();
    let before = publish(20..24);
    let settled = publish(24..28);
    until_local_catalog(&rt, &front, settled + 1);
    let (_, ready) = get(&rt, &front, "/readyz");
    let ready: serde_json::Value = serde_json::from_slice(&ready).unwrap();
    let restored = ready["catalog"]["restoredFrom"]["treeSize"].as_u64();
    assert!(
        restored.is_some_and(|r| r > 2 && r <= before),
        "restored from a snapshot after the first commitment: {ready}"
    );

    // Followed since the restore: the holder's answers, from the frontend itself.
    let followed = [
        format!("/v1/state/proofs?{key}"),
        format!("/v1/state/proofs?{key}&tree_size={before}"),
        format!("/v1/state/proofs/history?{key}&from={before}"),
    ];
    // The log's first commitment, before the snapshot: the holder's to answer.
    let older = [
        format!("/v1/state/proofs?{key}&tree_size=2"),
        format!("/v1/state/proofs/history?{key}&from=2"),
    ];
    let wants: Vec<(u16, Vec<u8>)> = followed
        .iter()
        .chain(&older)
        .map(|p| get(&rt, &holder, p))
        .collect();
    for (path, want) in followed.iter().chain(&older).zip(&wants) {
        assert_eq!(want.0, 200, "{path}: {}", String::from_utf8_lossy(&want.1));
        let got = get(&rt, &front, path);
        assert_eq!(got, *want, "holder running: {path}");
    }
    let history: srcos_catalog::state::StateHistory = serde_json::from_slice(&wants[2].1).unwrap();
    let steps = history.verify(&log_key, &[], 0).unwrap();
    assert_eq!(
        (steps[0].tree_size, steps.last().unwrap().tree_size),
        (before, settled)
    );

    let pid = sequencer.pid() as i32;
    unsafe {
        libc::kill(pid, libc::SIGSTOP);
    }
    for (path, want) in followed.iter().zip(&wants) {
        assert_eq!(get(&rt, &front, path), *want, "holder paused: {path}");
    }
    for path in &older {
        let (status, body) = get(&rt, &front, path);
        assert_ne!(
            status,
            200,
            "{path}: answered without the holder: {}",
            String::from_utf8_lossy(&body)
        );
    }
    sequencer.kill9();
}
