//! `srcos-catalog check`: the admission controller's question, answered offline from a
//! state proof (`log-format/state.md`): is `NAME@sha256:HEX` published on this channel
//! of this target, in a commitment no older than `--max-age`? Exit 0 only then; 1 with
//! the reason otherwise (including a proof that does not verify).

use std::path::PathBuf;

use clap::Args;

use super::{CliError, Context};
use crate::http::routes;
use crate::http::HttpClient;
use crate::keyfile::read_verifier;
use crate::state::{
    check_entry, parse_duration_ms, Expectation, StateProofBundle, MAX_BUNDLE_BYTES,
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
            let bytes = fetch(url, &args.target, &digest)?;
            if let Some(path) = &args.save {
                std::fs::write(path, &bytes).context(|| format!("writing {}", path.display()))?;
            }
            bytes
        }
        (None, None) => return Err(CliError("give --proof FILE or --server URL".into())),
    };
    let bundle = match StateProofBundle::from_json(&bytes) {
        Ok(b) => b,
        Err(e) => return Ok(Answer::No(format!("the proof does not verify: {e}"))),
    };
    let lookup = match bundle.verify(&log_key, &witnesses, quorum) {
        Ok(l) => l,
        Err(e) => return Ok(Answer::No(format!("the proof does not verify: {e}"))),
    };
    let want = Expectation {
        target: args.target.clone(),
        subject_name: name,
        subject_digest: digest,
        channel: args.channel.clone(),
        max_age_ms,
        now_ms: crate::log::now_ms(),
    };
    Ok(match check_entry(&lookup, &want) {
        Ok(summary) => Answer::Yes(summary),
        Err(not_met) => Answer::No(not_met.to_string()),
    })
}

/// Fetches the entry proof for `target` and `digest` from `url`.
fn fetch(url: &str, target: &str, digest: &str) -> Result<Vec<u8>, CliError> {
    let client = HttpClient::new(url)?;
    let path = format!(
        "{}?target={}&subject={}",
        routes::STATE_PROOFS,
        percent_encode(target),
        percent_encode(digest)
    );
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
    if response.body.len() > MAX_BUNDLE_BYTES {
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
