//! Replay determinism after a random mix of thousands of catalog operations (grants,
//! policies, publications with and without blobs, reviews, promotions, status changes,
//! revocations), with the real server killed with `kill -9` at random moments. After
//! every restart, and at the end, replaying the entries alone reproduces the live catalog
//! state at the committed size, and two replays give the same digest byte for byte.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::authority::*;
use common::{cli_ok, Rng, Server};
use serde_json::{json, Value};
use srcos_catalog::catalog::{sign_envelope, Catalog};
use srcos_catalog::client::upload_intent;
use srcos_catalog::http::HttpClient;
use srcos_catalog::keyfile::read_signer;
use srcos_catalog::log::replay::replay_dir;
use srcos_catalog::note::{KeyType, Signer};
use srcos_catalog::storage::records::DiskRecordStore;

/// Everything the workers share.
struct Pool {
    admin: Signer,
    origin: String,
    publishers: Vec<Signer>,
    reviewers: Vec<Signer>,
    entries: Mutex<Vec<(String, String)>>,
    statuses: Mutex<std::collections::BTreeMap<u16, usize>>,
}

async fn post(
    client: &HttpClient,
    endpoint: &str,
    signer: &Signer,
    payload: &Value,
) -> Option<u16> {
    let envelope = sign_envelope(&serde_jcs::to_vec(&fresh(payload)).unwrap(), signer);
    let r = client
        .post(endpoint, "application/json", envelope.to_json().into())
        .await
        .ok()?;
    let status = r.status.as_u16();
    assert!(
        matches!(status, 200 | 201 | 403 | 422 | 503),
        "{endpoint} answered {status}: {}",
        String::from_utf8_lossy(&r.body)
    );
    Some(status)
}

/// One random operation; `None` when the server is gone.
async fn operation(client: &HttpClient, pool: &Pool, rng: &mut Rng, n: u64) -> Option<()> {
    let entry = {
        let e = pool.entries.lock().unwrap();
        (!e.is_empty()).then(|| e[rng.below(e.len() as u64) as usize].clone())
    };
    let reviewer = &pool.reviewers[rng.below(pool.reviewers.len() as u64) as usize];
    let channel = ["dev", "candidate", "stable"][rng.below(3) as usize];
    let roll = rng.below(100);
    let (endpoint, signer, payload) = match (roll, &entry) {
        (0..=39, _) | (_, None) => {
            // A publication: complete (blobs uploaded) or dev-only, sometimes invalid.
            let hex = subject_hex(&format!("replay-{n}-{}", rng.next()));
            let full = rng.below(2) == 0;
            let files = release_evidence(&hex);
            if full {
                for (_, _, b) in &files {
                    let hex = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b));
                    let intent = upload_intent(&pool.admin, &pool.origin, &hex, b.len() as u64);
                    client
                        .put_with(
                            &format!("/v1/blobs/sha256:{hex}"),
                            "application/octet-stream",
                            &[("blob-intent", &intent)],
                            b.clone().into(),
                        )
                        .await
                        .ok()?;
                }
            }
            let take = if full {
                7
            } else {
                4 - (rng.below(8) == 0) as usize
            };
            let items = files
                .iter()
                .take(take)
                .map(|(t, m, b)| item(t, m, b))
                .collect();
            let refs = if full {
                agentplane_refs("r")
            } else {
                no_refs()
            };
            let publisher = &pool.publishers[rng.below(pool.publishers.len() as u64) as usize];
            let req = request(
                &format!("quay.io/replay/s{}", rng.below(5)),
                &hex,
                "dev",
                items,
                refs,
            );
            let status = post(client, "/v1/publications", publisher, &req).await?;
            if status == 201 {
                let target = req["targetCatalogRef"].as_str().unwrap().to_string();
                pool.entries.lock().unwrap().push((target, hex));
            }
            *pool.statuses.lock().unwrap().entry(status).or_default() += 1;
            return Some(());
        }
        (40..=74, Some((target, hex))) => (
            "/v1/reviews",
            reviewer,
            json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "Review",
                "entry": {"targetCatalogRef": target, "subjectDigest": {"sha256": hex}},
                "reviewer": reviewer.verifier().short_id(), "channel": channel,
                "verdict": if rng.below(6) == 0 { "deny" } else { "approve" }, "comment": format!("{n}")}),
        ),
        (75..=89, Some((target, hex))) => {
            let (from, to) = [
                ("dev", "candidate"),
                ("candidate", "stable"),
                ("dev", "stable"),
            ][rng.below(3) as usize];
            (
                "/v1/promotions",
                reviewer,
                json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "Promotion",
                    "entry": {"targetCatalogRef": target, "subjectDigest": {"sha256": hex}},
                    "fromChannel": from, "toChannel": to}),
            )
        }
        (90..=95, Some((target, hex))) => {
            let status = ["superseded", "restricted", "archived", "revoked"][rng.below(4) as usize];
            let signer = if rng.below(2) == 0 {
                &pool.admin
            } else {
                reviewer
            };
            (
                "/v1/status-changes",
                signer,
                json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "StatusChange",
                    "entry": {"targetCatalogRef": target, "subjectDigest": {"sha256": hex}}, "status": status}),
            )
        }
        (96..=97, _) => {
            // A policy that keeps the default shape but varies the dev threshold.
            let mut policy =
                serde_json::to_value(srcos_catalog::catalog::Policy::defaults()).unwrap();
            policy["channels"]["dev"]["approvals"] = json!(1 + rng.below(2));
            (
                "/v1/admin/policy",
                &pool.admin,
                json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "PolicySet", "channels": policy["channels"]}),
            )
        }
        _ => {
            // Revoke a throwaway key granted just before (real keys stay usable).
            let victim = Signer::generate(&format!("victim-{n}"), KeyType::Ed25519).unwrap();
            post(client, "/v1/admin/grants", &pool.admin, &json!({"apiVersion": "catalog.srcos.ai/v1",
                "kind": "PublisherGrant", "publisherKey": victim.verifier().to_vkey(), "role": "publisher",
                "targetPrefixes": [PREFIX], "channels": ["dev"]})).await?;
            (
                "/v1/admin/revocations",
                &pool.admin,
                json!({"apiVersion": "catalog.srcos.ai/v1",
                "kind": "PublisherRevoke", "key": victim.verifier().to_vkey()}),
            )
        }
    };
    let status = post(client, endpoint, signer, &payload).await?;
    *pool.statuses.lock().unwrap().entry(status).or_default() += 1;
    Some(())
}

/// The live state digest at the committed size equals the replay of the stored tiles,
/// and a replay into a scratch store on disk (what `fsck --full` and `replay` run)
/// reaches the same state as one in memory.
fn check_replay(url: &str, data: &std::path::Path, rt: &tokio::runtime::Runtime) -> (u64, String) {
    let replayed = replay_dir(data, None, Catalog::new(), data).unwrap();
    let size = replayed.checkpoint.size;
    let client = HttpClient::new(url).unwrap();
    let r = rt
        .block_on(client.get(&format!("/v1/catalog/state?tree_size={size}")))
        .unwrap();
    let live: Value = serde_json::from_slice(&r.body).unwrap();
    let digest = hex::encode(replayed.state_digest);
    assert_eq!(
        live["stateDigest"], digest,
        "live and replayed states differ at size {size}"
    );
    let scratch = tempfile::tempdir().unwrap();
    let on_disk = DiskRecordStore::scratch(scratch.path()).unwrap();
    let again = replay_dir(data, None, Catalog::with_store(Box::new(on_disk)), data).unwrap();
    assert_eq!(again.state_digest, replayed.state_digest);
    assert_eq!(
        again.catalog.state_json().unwrap(),
        replayed.catalog.state_json().unwrap()
    );
    drop(again);
    assert_eq!(
        std::fs::read_dir(scratch.path()).unwrap().count(),
        0,
        "the scratch store was not removed"
    );
    (size, digest)
}

#[test]
fn replay_reproduces_the_live_catalog_after_random_operations_and_crashes() {
    let mut rng = Rng::from_clock("replay test");
    let dir = common::tempdir();
    let data = dir.path().join("data");
    let rt = common::multi_thread_runtime();
    let total = Arc::new(AtomicUsize::new(0));
    let mut pool: Option<Arc<Pool>> = None;
    let rounds = 4;
    for round in 0..=rounds {
        let mut server = Server::start(&data, &["--batch-max", "64"]);
        let client = HttpClient::new(&server.url).unwrap();
        let pool = pool
            .get_or_insert_with(|| {
                let admin = read_signer(&data.join("admin.key")).unwrap();
                let mk = |name: &str| Signer::generate(name, KeyType::Ed25519).unwrap();
                let p = Pool {
                    admin,
                    origin: read_signer(&data.join("log.key")).unwrap().name().to_string(),
                    publishers: vec![mk("pub-a"), mk("pub-b")],
                    reviewers: vec![mk("rev-a"), mk("rev-b"), mk("rev-c")],
                    entries: Mutex::new(Vec::new()),
                    statuses: Mutex::new(Default::default()),
                };
                for (keys, role) in [(&p.publishers, "publisher"), (&p.reviewers, "reviewer")] {
                    for k in keys {
                        let payload = json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "PublisherGrant",
                            "publisherKey": k.verifier().to_vkey(), "role": role,
                            "targetPrefixes": [PREFIX], "channels": ["*"]});
                        assert_eq!(rt.block_on(post(&client, "/v1/admin/grants", &p.admin, &payload)), Some(201));
                    }
                }
                Arc::new(p)
            })
            .clone();
        let (size, _) = check_replay(&server.url, &data, &rt);
        eprintln!("round {round}: restarted at tree size {size}; replay matches the live state");
        if round == rounds {
            // Two replays through the CLI, of the served log and of the directory, agree.
            let log_vkey = data.join("log.vkey");
            let a = cli_ok(&[
                "replay",
                "--server",
                &server.url,
                "--log-vkey",
                log_vkey.to_str().unwrap(),
            ]);
            let b = cli_ok(&[
                "replay",
                "--data",
                data.to_str().unwrap(),
                "--compare",
                &server.url,
            ]);
            let digest = |out: &str| {
                out.lines()
                    .find_map(|l| l.strip_prefix("state digest: "))
                    .unwrap()
                    .to_string()
            };
            assert_eq!(digest(&a), digest(&b));
            break;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for worker in 0..4u64 {
            let (client, pool, stop, total) =
                (client.clone(), pool.clone(), stop.clone(), total.clone());
            let mut rng = Rng(rng.next() | 1);
            tasks.push(rt.spawn(async move {
                let mut n = (round as u64) << 32 | worker << 24;
                while !stop.load(Ordering::Relaxed) && total.load(Ordering::Relaxed) < 4000 {
                    n += 1;
                    if operation(&client, &pool, &mut rng, n).await.is_none() {
                        break;
                    }
                    total.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        // Kill at a random moment once this round has done some work.
        let start_ops = total.load(Ordering::Relaxed);
        // At least 400 per round, so the 4 rounds reach the 1,500 asserted below whatever
        // the seed.
        let want = 400 + rng.below(600) as usize;
        let deadline = Instant::now() + Duration::from_secs(60);
        while total.load(Ordering::Relaxed) < (start_ops + want).min(4000)
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rng.below(20)));
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            let _ = rt.block_on(t);
        }
    }
    let statuses = pool.as_ref().unwrap().statuses.lock().unwrap().clone();
    eprintln!(
        "{} operations; answers by status: {statuses:?}",
        total.load(Ordering::Relaxed)
    );
    assert!(
        total.load(Ordering::Relaxed) >= 1500,
        "thousands of operations expected"
    );
    assert!(
        statuses.get(&201).copied().unwrap_or(0) > 300,
        "{statuses:?}"
    );
    assert!(
        statuses.get(&422).copied().unwrap_or(0) > 10,
        "refusals were exercised: {statuses:?}"
    );
    assert!(pool.unwrap().entries.lock().unwrap().len() > 100);
}
