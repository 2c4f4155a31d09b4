//! `srcos-catalog loadgen`: drive a server with signed publications and report
//! throughput and latency; with `--sweep`, plot throughput and p99 against offered load.
//!
//! May import `client` (the server's authority, the load generator, the plot) and
//! `keyfile`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::dest::describe;
use super::{runtime, CliError, Context};
use crate::client::loadgen::{self, LoadConfig, LoadReport};
use crate::client::plot::{sweep_svg, SweepPoint};
use crate::client::{Authority, HttpAuthority};
use crate::http::HttpClient;
use crate::keyfile::read_signer;

/// Arguments of `loadgen`.
#[derive(Debug, Args)]
pub struct LoadgenArgs {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// An admin private key of that server (to grant the generated publishers).
    #[arg(long)]
    admin_key: PathBuf,
    /// Publisher keys to generate, grant and sign with (round-robin).
    #[arg(long, default_value_t = 8)]
    publishers: usize,
    /// Requests per second, or `max` (closed loop over --connections).
    #[arg(long, default_value = "max")]
    rate: String,
    /// How long to send for at each rate: `60s`, `500ms`, or seconds.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Most requests in flight at once.
    #[arg(long, default_value_t = 256)]
    connections: usize,
    /// Requests to pre-sign for `--rate max`.
    #[arg(long, default_value_t = 200_000)]
    max_requests: usize,
    /// Verify every Nth accepted receipt offline (0: none).
    #[arg(long, default_value_t = 100)]
    verify_every: usize,
    /// Comma-separated offered rates to run one after the other (overrides --rate).
    #[arg(long, value_delimiter = ',')]
    sweep: Vec<f64>,
    /// With --sweep: write an SVG plot of throughput and p99 against offered load.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Print each report as one JSON line instead of text.
    #[arg(long)]
    json: bool,
    /// Read-load benchmark: run each rate twice, idle and then with this many readers
    /// looping on --read-path, and print publish p99 for both.
    #[arg(long, default_value_t = 0)]
    read_load: usize,
    /// The GET the readers loop on (default: the catalog state digest at half the tree
    /// size when the run starts). `{size}` in it is replaced by a different tree size
    /// (1 to the size when the run starts) for every request, so no answer is cached.
    #[arg(long)]
    read_path: Option<String>,
    /// The local address the readers connect from (for example 127.0.0.2), so that a
    /// server run with `--limit-loopback` holds them to the per-address limits apart
    /// from the publishers.
    #[arg(long)]
    read_from: Option<std::net::IpAddr>,
}

/// A `--duration` that is not one.
#[derive(Debug, PartialEq, thiserror::Error)]
enum DurationError {
    /// Not a number with a unit.
    #[error("{0:?} is not a duration like 60s, 500ms or 2m")]
    Unreadable(String),
    /// Zero, negative or not finite.
    #[error("{0:?} must be positive")]
    NotPositive(String),
}

fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else if let Some(m) = text.strip_suffix('m') {
        (m, 60.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .parse()
        .map_err(|_| DurationError::Unreadable(text.to_string()))?;
    if !(value.is_finite() && value > 0.0) {
        return Err(DurationError::NotPositive(text.to_string()));
    }
    Ok(Duration::from_secs_f64(value * scale))
}

/// Runs the load (or the sweep) and prints the reports.
pub fn run(args: LoadgenArgs) -> Result<(), CliError> {
    let admin = read_signer(&args.admin_key)?;
    let rates: Vec<Option<f64>> = if args.sweep.is_empty() {
        match args.rate.as_str() {
            "max" => vec![None],
            r => vec![Some(r.parse::<f64>().map_err(|_| {
                CliError(format!("--rate {r:?} is neither a number nor `max`"))
            })?)],
        }
    } else {
        args.sweep.iter().map(|r| Some(*r)).collect()
    };
    if rates.iter().flatten().any(|r| !(r.is_finite() && *r > 0.0)) {
        return Err(CliError("rates must be positive numbers".into()));
    }
    let rt = runtime()?;
    let reports = rt.block_on(async {
        let authority = HttpAuthority::new(&args.server)?;
        let log_key = authority.log_info().await.map_err(describe)?.verifier()?;
        let publishers = loadgen::grant_publishers(&authority, &admin, args.publishers.max(1))
            .await
            .context(|| "granting the load generator's publishers".into())?;
        let sizes = authority.log_info().await.map_err(describe)?.tree_size;
        let read_path = match &args.read_path {
            Some(path) => path.clone(),
            None => format!("/v1/catalog/state?tree_size={}", sizes / 2),
        };
        let readers_client = match args.read_from {
            Some(source) => HttpClient::from_source(&args.server, source)
                .map_err(|e| CliError(format!("the readers' client: {e}")))?,
            None => authority.http().clone(),
        };
        let mut reports = Vec::new();
        let modes: &[bool] = if args.read_load > 0 {
            &[false, true]
        } else {
            &[false]
        };
        let rounds = rates.iter().flat_map(|r| modes.iter().map(move |m| (*r, *m)));
        for (round, (rate, loaded)) in rounds.enumerate() {
            let rate = &rate;
            let count = match rate {
                Some(r) => (r * args.duration.as_secs_f64()).ceil() as usize,
                None => args.max_requests,
            };
            let run_id = crate::log::now_ms() ^ (round as u64) << 48;
            eprintln!("pre-signing {count} requests…");
            let requests = loadgen::presign(&publishers, count, run_id);
            let config = LoadConfig {
                publishers: publishers.len(),
                rate: *rate,
                duration: args.duration,
                connections: args.connections,
                max_requests: args.max_requests,
                verify_every: args.verify_every,
            };
            let readers = loaded
                .then(|| loadgen::ReadLoad::start(&readers_client, &read_path, sizes, args.read_load));
            let report = loadgen::run(authority.http(), &config, requests, &log_key).await;
            print_report(&report, args.json);
            if let Some(readers) = readers {
                let reads = readers.stop().await;
                let idle = reports.last().map_or(0.0, |r: &LoadReport| r.latency_ms.p99);
                println!(
                    "read load: publish p99 idle {idle:.2} ms, with {} readers on {read_path} {:.2} ms ({:.2}x; reads answered {}, refused {}, failed {})",
                    args.read_load,
                    report.latency_ms.p99,
                    report.latency_ms.p99 / idle.max(0.001),
                    reads.answered,
                    reads.refused,
                    reads.failed,
                );
            }
            reports.push(report);
        }
        Ok::<_, CliError>(reports)
    })?;
    if reports.iter().any(|r| r.receipts_failed > 0) {
        return Err(CliError("some receipts did not verify".into()));
    }
    if let Some(path) = &args.svg {
        let points: Vec<SweepPoint> = reports
            .iter()
            .filter_map(|r| {
                r.offered_rate.map(|offered| SweepPoint {
                    offered,
                    throughput: r.throughput,
                    p99_ms: r.latency_ms.p99,
                })
            })
            .collect();
        let svg = sweep_svg(
            "srcos-catalog: durable signed publications over HTTP",
            &points,
        );
        std::fs::write(path, svg).context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn print_report(report: &LoadReport, json: bool) {
    if json {
        println!("{}", serde_json::to_string(report).unwrap_or_default());
        return;
    }
    let offered = report
        .offered_rate
        .map(|r| format!("{r:.0}/s"))
        .unwrap_or_else(|| "max".into());
    println!(
        "offered {offered}: sent {} accepted {} in {:.2}s = {:.0}/s; latency ms p50 {:.2} p90 {:.2} p99 {:.2} p99.9 {:.2} max {:.2}; receipts verified {} failed {}; errors {:?}",
        report.sent,
        report.accepted,
        report.elapsed_seconds,
        report.throughput,
        report.latency_ms.p50,
        report.latency_ms.p90,
        report.latency_ms.p99,
        report.latency_ms.p999,
        report.latency_ms.max,
        report.receipts_verified,
        report.receipts_failed,
        report.errors
    );
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_parse_with_units_and_refuse_nonsense() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("NaNs").is_err());
    }
}
