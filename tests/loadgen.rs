//! The load generator against a real server: a short fixed-rate run and a short sweep
//! that writes the SVG plot. Checks correctness (everything accepted, sampled receipts
//! verified), not speed — speed is measured by running loadgen by hand (see
//! docs/performance.md), never in a timed test.

mod common;

use common::{cli, tempdir, Server};

#[test]
fn loadgen_drives_a_server_and_verifies_receipts() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    let admin = data.join("admin.key");
    let out = cli(&[
        "loadgen",
        "--server",
        &server.url,
        "--admin-key",
        admin.to_str().unwrap(),
        "--publishers",
        "3",
        "--rate",
        "200",
        "--duration",
        "1s",
        "--verify-every",
        "10",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["sent"], 200);
    assert_eq!(report["accepted"], 200, "{report}");
    assert!(report["receiptsVerified"].as_u64().unwrap() >= 20);
    assert_eq!(report["receiptsFailed"], 0);
    assert!(report["latencyMs"]["p99"].as_f64().unwrap() > 0.0);

    let svg = dir.path().join("sweep.svg");
    let out = cli(&[
        "loadgen",
        "--server",
        &server.url,
        "--admin-key",
        admin.to_str().unwrap(),
        "--publishers",
        "2",
        "--sweep",
        "50,100",
        "--duration",
        "500ms",
        "--svg",
        svg.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().filter(|l| l.starts_with("offered ")).count(),
        2,
        "{text}"
    );
    let plot = std::fs::read_to_string(&svg).unwrap();
    assert_eq!(plot.matches("<circle").count(), 4);
    // Five publishers were granted in all, plus genesis; every request was appended.
    let (_, _, body) = common::Http::new(&server.url).get("/v1/log");
    let info: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(info["treeSize"], 1 + 5 + 200 + 25 + 50);
}
