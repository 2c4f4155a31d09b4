//! `srcos-catalog check`: the admission controller's question, answered offline from a
//! state proof (`log-format/state.md`): is `NAME@sha256:HEX` published on this channel
//! of this target, in a commitment no older than `--max-age`? Exit 0 only then; 1 with
//! the reason otherwise (including a proof that does not verify).
//!
//! With `--since SIZE` it verifies a history proof instead (`state.md` §8): the entry's
//! value at every commitment from the one to SIZE on, proved complete, so the answer
//! also says what happened since ("revoked at leaf i after being promoted to stable at
//! leaf j"). A saved history proof (`--proof FILE`) is recognised by its media type.

use std::path::PathBuf;

use clap::Args;

use super::{CliError, Context};
use crate::http::routes;
use crate::http::HttpClient;
use crate::keyfile::read_verifier;
use crate::state::{
    check_entry, check_history, parse_duration_ms, Expectation, StateHistory, StateProofBundle,
    MAX_BUNDLE_BYTES, MAX_HISTORY_BYTES, STATE_HISTORY_MEDIA_TYPE,
};

/// Arguments of `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The target (`targetCatalogRef`), e.g. `sourceos://catalog/images/NAME`.
    #[arg(long)]
    target: String,
    /// The subject: `NAME@sha256:HEX` (or `sha256:HEX` to skip the name check).
    #[arg(long)]
    subject: String,
    /// The channel it must be published on.
    #[arg(long)]
    channel: String,
    /// The log's verifier key file.
    #[arg(long)]
    log_vkey: PathBuf,
    #[command(flatten)]
    witnesses: super::verify::WitnessPolicyArgs,
    /// The oldest commitment accepted: `90s`, `15m`, `24h`, `7d` (default: any age).
    #[arg(long)]
    max_age: Option<String>,
    /// A saved proof bundle (offline).
    #[arg(long, conflicts_with = "server", required_unless_present = "server")]
    proof: Option<PathBuf>,
    /// The authority's URL, to fetch the proof from.
    #[arg(long)]
    server: Option<String>,
    /// Also save the fetched proof bundle here (with `--server`).
    #[arg(long, requires = "server")]
    save: Option<PathBuf>,
    /// Check with a history proof from the commitment to this tree size on, and say
    /// what changed since (fetched with `--server`; with `--proof`, the saved history
    /// must start there).
    #[arg(long)]
    since: Option<u64>,
}

/// The answer to the consumer's question.
enum Answer {
    /// Yes, with a one-line summary of what was proved.
    Yes(String),
    /// No, with the reason (the first requirement that fails, or why the proof does not
    /// verify).
    No(String),
}

/// Answers the question; `Err` when it could not be asked (bad flags, unreadable key,
/// unreachable server).
fn answer(args: &CheckArgs) -> Result<Answer, CliError> {
    let log_key = read_verifier(&args.log_vkey)?;
    let (witnesses, quorum) = super::verify::witness_policy(&args.witnesses)?;
    let max_age_ms = args
        .max_age
        .as_deref()
        .map(|d| {
            parse_duration_ms(d)
                .ok_or_else(|| CliError(format!("--max-age {d:?}: use 90s, 15m, 24h or 7d")))
        })
        .transpose()?;
    let (name, digest) = match args.subject.rsplit_once('@') {
        Some((name, digest)) => (Some(name.to_string()), digest.to_string()),
        None => (None, args.subject.clone()),
    };
    let hex = digest.strip_prefix("sha256:").ok_or_else(|| {
        CliError(format!(
            "--subject {:?}: expected NAME@sha256:HEX",
            args.subject
        ))
    })?;
    crate::catalog::check_sha256(hex).context(|| format!("--subject {:?}", args.subject))?;

    let bytes = match (&args.proof, &args.server) {
        (Some(path), _) => std::fs::read(path).context(|| format!("reading {}", path.display()))?,
        (None, Some(url)) => {
            let bytes = fetch(url, &args.target, &digest, args.since)?;
            if let Some(path) = &args.save {
                std::fs::write(path, &bytes).context(|| format!("writing {}", path.display()))?;
            }
            bytes
        }
        (None, None) => return Err(CliError("give --proof FILE or --server URL".into())),
    };
    let want = Expectation {
        target: args.target.clone(),
        subject_name: name,
        subject_digest: digest,
        channel: args.channel.clone(),
        max_age_ms,
        now_ms: crate::log::now_ms(),
    };
    if args.since.is_some() || is_history(&bytes) {
        return Ok(answer_history(
            &bytes, args.since, &log_key, &witnesses, quorum, &want,
        ));
    }
    let bundle = match StateProofBundle::from_json(&bytes) {
        Ok(b) => b,
        Err(e) => return Ok(Answer::No(format!("the proof does not verify: {e}"))),
    };
    let lookup = match bundle.verify(&log_key, &witnesses, quorum) {
        Ok(l) => l,
        Err(e) => return Ok(Answer::No(format!("the proof does not verify: {e}"))),
    };
    Ok(match check_entry(&lookup, &want) {
        Ok(summary) => Answer::Yes(summary),
        Err(not_met) => Answer::No(not_met.to_string()),
    })
}

/// True when `bytes` is a history proof (its media type says so).
fn is_history(bytes: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct MediaType {
        media_type: String,
    }
    serde_json::from_slice::<MediaType>(bytes)
        .is_ok_and(|m| m.media_type == STATE_HISTORY_MEDIA_TYPE)
}

/// The answer from a history proof: every step verified and chained, the first at
/// `since` (when given), the newest checked as a lookup is.
fn answer_history(
    bytes: &[u8],
    since: Option<u64>,
    log_key: &crate::note::Verifier,
    witnesses: &[crate::note::Verifier],
    quorum: usize,
    want: &Expectation,
) -> Answer {
    let steps =
        match StateHistory::from_json(bytes).and_then(|h| h.verify(log_key, witnesses, quorum)) {
            Ok(steps) => steps,
            Err(e) => return Answer::No(format!("the history proof does not verify: {e}")),
        };
    let first = steps.first().map_or(0, |s| s.tree_size);
    if let Some(since) = since.filter(|&s| s != first) {
        return Answer::No(format!(
            "the history proof starts at the commitment to size {first}, not --since {since}"
        ));
    }
    match check_history(&steps, want) {
        Ok(summary) => Answer::Yes(summary),
        Err(reason) => Answer::No(reason),
    }
}

/// Fetches the entry proof for `target` and `digest` from `url`, or with `since` its
/// history proof from the commitment to that size.
fn fetch(url: &str, target: &str, digest: &str, since: Option<u64>) -> Result<Vec<u8>, CliError> {
    let client = HttpClient::new(url)?;
    let (route, limit) = match since {
        Some(_) => (routes::STATE_HISTORY, MAX_HISTORY_BYTES),
        None => (routes::STATE_PROOFS, MAX_BUNDLE_BYTES),
    };
    let mut path = format!(
        "{route}?target={}&subject={}",
        percent_encode(target),
        percent_encode(digest)
    );
    if let Some(since) = since {
        path.push_str(&format!("&from={since}"));
    }
    let response = super::runtime()?
        .block_on(client.get(&path))
        .context(|| format!("GET {url}{path}"))?;
    if !response.status.is_success() {
        return Err(CliError(format!(
            "GET {url}{path}: {} {}",
            response.status,
            String::from_utf8_lossy(&response.body[..response.body.len().min(512)])
        )));
    }
    if response.body.len() > limit {
        return Err(CliError(format!("GET {url}{path}: the proof is too large")));
    }
    Ok(response.body.to_vec())
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Runs `check` and returns its exit code: 0 yes, 1 no (with the reason on stderr).
pub fn run(args: CheckArgs) -> std::process::ExitCode {
    match answer(&args) {
        Ok(Answer::Yes(summary)) => {
            println!("{summary}");
            std::process::ExitCode::SUCCESS
        }
        Ok(Answer::No(reason)) => {
            eprintln!("NOT OK: {reason}");
            std::process::ExitCode::FAILURE
        }
        Err(CliError(message)) => {
            eprintln!("error: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}
