//! The operator's view of live servers: `/healthz` and `/readyz`, Prometheus metrics
//! after real traffic (parsed by the `prometheus_client` reference parser, in
//! `tests/prom_parse.py`), the witness's own metrics, `serve --config`, and
//! `--metrics-listen`.

mod common;
mod watchers;

use std::process::{Command, Stdio};

use common::authority::{
    crate_file, item, no_refs, release_evidence, request, subject_hex, Authority,
};
use common::{tempdir, Http};
use serde_json::Value;

/// One parsed sample.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: serde_json::Map<String, Value>,
    value: f64,
}

/// The exposition at `url`/metrics, parsed by `prometheus_client`.
fn scrape(url: &str) -> Vec<Sample> {
    let (status, content_type, body) = Http::new(url).get("/metrics");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    parse(&body)
}

fn parse(exposition: &[u8]) -> Vec<Sample> {
    common::python_ok("prom_parse.py", &[], exposition, "prometheus_client")
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("a JSON sample");
            Sample {
                name: v["name"].as_str().expect("name").to_string(),
                labels: v["labels"].as_object().cloned().unwrap_or_default(),
                value: v["value"].as_f64().expect("value"),
            }
        })
        .collect()
}

/// The value of the one sample `name` whose labels include `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).and_then(Value::as_str) == Some(*v))
        })
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?} matches {found:?}");
    found.first().map(|s| s.value)
}

fn must(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    value(samples, name, labels).unwrap_or_else(|| panic!("no sample {name} {labels:?}"))
}

fn requests(samples: &[Sample], route: &str, method: &str, status: &str) -> f64 {
    value(
        samples,
        "srcos_http_requests_total",
        &[("route", route), ("method", method), ("status", status)],
    )
    .unwrap_or(0.0)
}

#[test]
fn health_and_metrics_after_real_traffic() {
    let a = Authority::start(&[]);
    let http = &a.http;

    let (status, _, body) = http.get("/healthz");
    assert_eq!(status, 200);
    let (status, _, body_ready) = http.get("/readyz");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body_ready));
    let ready: Value = serde_json::from_slice(&body_ready).unwrap();
    assert_eq!(ready["ready"], true, "{ready}");
    let names: Vec<&str> = ready["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["log", "disk", "witness-quorum"],
        "{}",
        String::from_utf8_lossy(&body)
    );

    // Traffic: a grant, blobs, a publication, its duplicate, a refusal, reads, a miss.
    let publisher = a.key("pipeline.example/metrics");
    a.grant(&publisher.signer, "publisher", &["dev"]);
    let hex = subject_hex("metrics");
    let files = release_evidence(&hex);
    let mut blob_bytes = 0;
    for (_, _, bytes) in files.iter().take(4) {
        a.upload(bytes);
        blob_bytes += bytes.len();
    }
    let items = files
        .iter()
        .take(4)
        .map(|(t, m, b)| item(t, m, b))
        .collect();
    let req = request("quay.io/socios/metrics", &hex, "dev", items, no_refs());
    let payload = common::authority::fresh(&req);
    let envelope = srcos_catalog::catalog::sign_envelope(
        &serde_jcs::to_vec(&payload).unwrap(),
        &publisher.signer,
    )
    .to_json()
    .into_bytes();
    assert_eq!(http.post("/v1/publications", envelope.clone()).0, 201);
    assert_eq!(
        http.post("/v1/publications", envelope).0,
        200,
        "a duplicate"
    );
    let (status, _, _) = http.post("/v1/publications", b"{not json".to_vec());
    assert_eq!(status, 400);
    for path in [
        "/checkpoint",
        "/v1/log",
        "/v1/entries/1",
        "/v1/catalog/entries",
    ] {
        assert_eq!(http.get(path).0, 200, "{path}");
    }
    assert_eq!(http.get("/no/such/secret-path-x1").0, 404);

    let samples = scrape(&a.server.url);
    let publications = "/v1/publications";
    assert_eq!(requests(&samples, publications, "POST", "201"), 1.0);
    assert_eq!(requests(&samples, publications, "POST", "200"), 1.0);
    assert_eq!(requests(&samples, publications, "POST", "400"), 1.0);
    assert_eq!(requests(&samples, "/v1/entries/{index}", "GET", "200"), 1.0);
    assert_eq!(requests(&samples, "unmatched", "GET", "404"), 1.0);
    assert!(
        samples
            .iter()
            .flat_map(|s| s.labels.values())
            .all(|v| !v.as_str().unwrap_or("").contains("secret-path")),
        "a raw path became a label value"
    );
    assert_eq!(
        must(
            &samples,
            "srcos_http_request_duration_seconds_count",
            &[("route", publications), ("method", "POST")]
        ),
        3.0
    );
    assert_eq!(
        must(
            &samples,
            "srcos_http_request_duration_seconds_bucket",
            &[("route", publications), ("method", "POST"), ("le", "+Inf")]
        ),
        3.0
    );
    let admissions = "srcos_admissions_total";
    let pub_kind = ("kind", "publication");
    assert_eq!(
        must(&samples, admissions, &[pub_kind, ("result", "appended")]),
        1.0
    );
    assert_eq!(
        must(&samples, admissions, &[pub_kind, ("result", "duplicate")]),
        1.0
    );
    assert_eq!(
        must(
            &samples,
            admissions,
            &[("kind", "grant"), ("result", "appended")]
        ),
        1.0
    );
    assert_eq!(
        must(
            &samples,
            "srcos_refusals_total",
            &[pub_kind, ("reason", "malformed")]
        ),
        1.0
    );

    // The log: genesis, the grant and the publication.
    assert_eq!(must(&samples, "srcos_log_tree_size", &[]), 3.0);
    assert_eq!(must(&samples, "srcos_log_sequencer_queue_depth", &[]), 0.0);
    assert_eq!(must(&samples, "srcos_log_writable", &[]), 1.0);
    assert!(must(&samples, "srcos_log_batch_entries_count", &[]) >= 2.0);
    assert!(must(&samples, "srcos_log_batch_entries_sum", &[]) >= 2.0);
    assert!(must(&samples, "srcos_log_commit_seconds_count", &[]) >= 2.0);
    assert!(must(&samples, "srcos_log_durable_write_seconds_count", &[]) >= 2.0);
    let age = must(&samples, "srcos_log_checkpoint_age_seconds", &[]);
    assert!((0.0..600.0).contains(&age), "{age}");
    assert!(must(&samples, "srcos_log_checkpoint_timestamp_seconds", &[]) > 1.7e9);

    // Blobs, disk, start-up.
    assert_eq!(must(&samples, "srcos_blob_bytes", &[]), blob_bytes as f64);
    assert_eq!(must(&samples, "srcos_blob_count", &[]), 4.0);
    assert!(must(&samples, "srcos_disk_free_bytes", &[]) > 0.0);
    assert!(must(&samples, "srcos_startup_seconds", &[]) > 0.0);
    assert!(value(&samples, "srcos_replay_seconds", &[]).is_some());
    assert_eq!(
        must(
            &samples,
            "srcos_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    // Every answer seen is one the OpenAPI document describes for that operation.
    let doc: Value = serde_json::from_str(srcos_catalog::openapi::SERVE_DOCUMENT).unwrap();
    for s in samples
        .iter()
        .filter(|s| s.name == "srcos_http_requests_total")
    {
        let label = |k: &str| s.labels[k].as_str().unwrap().to_string();
        let (route, method, status) = (label("route"), label("method"), label("status"));
        if route == "unmatched" {
            continue;
        }
        let route = route.replace("{*", "{");
        let documented = &doc["paths"][&route][method.to_lowercase()]["responses"][&status];
        assert!(
            documented.is_object(),
            "{method} {route} {status} is not documented"
        );
    }
    // The scrape itself is counted on the next one.
    let again = scrape(&a.server.url);
    assert!(requests(&again, "/metrics", "GET", "200") >= 1.0);
}

#[test]
fn the_witness_and_the_log_report_cosigning() {
    let fx = watchers::stopped_log(1);
    let w1 = watchers::witness_key(fx.dir.path(), "w1");
    let witness = watchers::start_witness(
        &w1,
        &[(&fx.origin, &fx.log_vkey)],
        &fx.dir.path().join("s1"),
    );
    let server = watchers::start_witnessed_log(
        &fx.data,
        &[(witness.url.as_str(), w1.as_path())],
        &["--below-quorum", "hold-back"],
    );
    watchers::publish_ok(&server.url, &fx.publisher, watchers::SUBJECT, 50);
    let witness_name = "witness.example/w1";
    watchers::wait_until(std::time::Duration::from_secs(20), "the quorum", || {
        let samples = scrape(&server.url);
        value(&samples, "srcos_witness_quorum_met", &[]) == Some(1.0)
            && value(&samples, "srcos_witness_cosign_seconds_count", &[]).is_some()
    });
    let (status, _, body) = Http::new(&server.url).get("/readyz");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    let samples = scrape(&server.url);
    let cosign = samples
        .iter()
        .find(|s| s.name == "srcos_witness_cosign_seconds_count")
        .expect("cosign latency");
    assert!(
        cosign.labels["witness"]
            .as_str()
            .unwrap()
            .starts_with(witness_name),
        "{cosign:?}"
    );
    assert!(cosign.value >= 1.0);
    assert_eq!(must(&samples, "srcos_witness_quorum", &[]), 1.0);
    assert!(must(&samples, "srcos_witness_quorum_tree_size", &[]) >= 1.0);

    let (status, _, _) = Http::new(&witness.url).get("/healthz");
    assert_eq!(status, 200);
    let samples = scrape(&witness.url);
    assert!(
        must(
            &samples,
            "srcos_witness_add_checkpoint_total",
            &[("outcome", "cosigned")]
        ) >= 1.0
    );
    assert!(requests(&samples, "/add-checkpoint", "POST", "200") >= 1.0);
    assert!(
        must(
            &samples,
            "srcos_witness_latest_cosigned_size",
            &[("origin", &fx.origin)]
        ) >= 1.0
    );
}

#[test]
fn readyz_names_the_failing_check() {
    // A disk reserve no volume can keep: not ready, and the body says it is the disk.
    let a = Authority::start(&["--blob-reserve-bytes", "18000000000000000000"]);
    let (status, _, body) = a.http.get("/readyz");
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    let ready: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(ready["ready"], false);
    assert_eq!(ready["failing"], serde_json::json!(["disk"]), "{ready}");
    assert_eq!(a.http.get("/healthz").0, 200, "alive all the same");
}

#[test]
fn config_file_flags_under_the_command_line_and_a_separate_metrics_listener() {
    let dir = tempdir();
    let config = dir.path().join("serve.toml");
    // The port is taken from the command line (it overrides the file's).
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:1\"\nbatch-max = 16\nlog-format = \"json\"\nmetrics-listen = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let server = common::Server::start(&data, &["--config", config.to_str().unwrap()]);
    let metrics_url = server
        .banner_value("metrics on ")
        .expect("the metrics listener's banner")
        .trim_end_matches("/metrics")
        .to_string();
    assert_eq!(
        Http::new(&server.url).get("/metrics").0,
        404,
        "not on the API listener"
    );
    assert_eq!(Http::new(&server.url).get("/healthz").0, 200);
    let samples = scrape(&metrics_url);
    assert_eq!(must(&samples, "srcos_log_tree_size", &[]), 1.0);

    // An unknown key is an error naming it.
    std::fs::write(&config, "batch-maxx = 16\n").unwrap();
    let out = common::cli(&[
        "serve",
        "--config",
        config.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown key \"batch-maxx\""), "{stderr}");
}

#[test]
fn the_example_config_starts_a_server() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let example = crate_file("docs/serve.example.toml");
    // The example's data directory and addresses are replaced by the command line's.
    let server = common::Server::start(
        &data,
        &[
            "--config",
            example.to_str().unwrap(),
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    );
    assert_eq!(Http::new(&server.url).get("/readyz").0, 200);
}

#[test]
fn log_format_json_writes_one_json_object_per_line() {
    use std::io::{BufRead, BufReader};
    let dir = tempdir();
    let data = dir.path().join("data");
    let mut child = Command::new(common::bin())
        .args([
            "serve",
            "--data",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--log-format", "json"])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("listening on ") {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "serve exited");
    }
    // Once it answers (its signal handlers are installed), SIGTERM: the shutdown is
    // logged at info level.
    let url = line.trim().trim_start_matches("listening on ").to_string();
    assert_eq!(Http::new(&url).get("/healthz").0, 200);
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.is_empty()).collect();
    assert!(
        lines.iter().any(|l| l.contains("shutting down")),
        "{stderr}"
    );
    for l in lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{v}");
    }
}

/// Runs the CLI with stderr a pipe (not a terminal) and progress lines as often as
/// reported; returns (success, stderr).
fn with_progress_lines(args: &[&str], every: &str) -> (bool, String) {
    let out = Command::new(common::bin())
        .args(args)
        .env("SRCOS_PROGRESS_EVERY", every)
        .stdin(Stdio::null())
        .output()
        .expect("the CLI");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `(done, total)` of every progress line of `task`.
fn progress_of(stderr: &str, task: &str) -> Vec<(u64, u64)> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{task}: ")))
        .map(|rest| {
            let counts = rest.split(' ').next().expect("done/total");
            let (done, total) = counts.split_once('/').expect("done/total");
            (done.parse().expect("done"), total.parse().expect("total"))
        })
        .collect()
}

#[test]
fn long_commands_print_progress_lines_when_stderr_is_not_a_terminal() {
    let fx = watchers::stopped_log(600);
    let data = fx.data.to_str().unwrap();
    let total = 602; // genesis, the grant, 600 publications

    // Every report: one line per entry bundle, increasing, the last one done.
    let (ok, stderr) = with_progress_lines(&["fsck", "--data", data], "0");
    assert!(ok, "{stderr}");
    let lines = progress_of(&stderr, "fsck");
    assert_eq!(
        lines,
        [(256, total), (512, total), (total, total)],
        "{stderr}"
    );
    let last = stderr.lines().rfind(|l| l.starts_with("fsck: ")).unwrap();
    assert!(
        last.contains("(100.0%)") && last.contains("entries/s") && last.contains("done in"),
        "{last}"
    );

    // A long period: a quick run prints its first and its final line only.
    let (ok, stderr) = with_progress_lines(&["fsck", "--data", data], "60");
    assert!(ok, "{stderr}");
    assert_eq!(
        progress_of(&stderr, "fsck"),
        [(256, total), (total, total)],
        "{stderr}"
    );

    let (ok, stderr) = with_progress_lines(&["replay", "--data", data], "0");
    assert!(ok, "{stderr}");
    assert_eq!(progress_of(&stderr, "replay"), [(total, total)], "{stderr}");

    // A monitor auditing a log it has never seen catches up with progress lines.
    let server = common::Server::start(&fx.data, &[]);
    let state = fx.dir.path().join("monitor.json");
    let vkey = fx.log_vkey.to_str().unwrap();
    let (ok, stderr) = with_progress_lines(
        &[
            "monitor",
            "--server",
            &server.url,
            "--log-vkey",
            vkey,
            "--state",
            state.to_str().unwrap(),
            "--once",
            "--audit",
        ],
        "0",
    );
    assert!(ok, "{stderr}");
    assert_eq!(
        progress_of(&stderr, "monitor"),
        [(256, total), (512, total), (total, total)],
        "{stderr}"
    );
}
