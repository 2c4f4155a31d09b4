//! `review`, `promote`, `status`, `revoke` and `policy set|show`: the decisions, each a
//! signed request that prints its receipt or a clear refusal.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::dest::{deliver, finish, sign_payload, Dest, LocalLog};
use super::{runtime, CliError, Context};
use crate::catalog::parse_subject_digest;
use crate::client::http::HttpClient;
use crate::keyfile::read_verifier;

/// The entry a decision is about.
#[derive(Debug, Args)]
pub struct EntryArgs {
    /// The entry's targetCatalogRef.
    #[arg(long)]
    target: String,
    /// The subject: sha256:HEX or NAME@sha256:HEX.
    #[arg(long)]
    subject: String,
}

impl EntryArgs {
    fn json(&self) -> Result<Value, CliError> {
        let hex =
            parse_subject_digest(&self.subject).map_err(|m| CliError(format!("--subject: {m}")))?;
        Ok(json!({"targetCatalogRef": self.target, "subjectDigest": {"sha256": hex}}))
    }
}

/// Arguments of `review`.
#[derive(Debug, Args)]
pub struct ReviewArgs {
    #[command(flatten)]
    dest: Dest,
    /// The reviewer's private key file.
    #[arg(long)]
    key: PathBuf,
    #[command(flatten)]
    entry: EntryArgs,
    /// The channel the verdict is for.
    #[arg(long)]
    channel: String,
    /// Approve.
    #[arg(long, conflicts_with = "deny", required_unless_present = "deny")]
    approve: bool,
    /// Deny.
    #[arg(long)]
    deny: bool,
    /// A comment recorded with the verdict.
    #[arg(long)]
    comment: Option<String>,
    /// Where to write the receipt (default: stdout).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Arguments of `promote`.
#[derive(Debug, Args)]
pub struct PromoteArgs {
    #[command(flatten)]
    dest: Dest,
    /// The signer's private key file (a reviewer of the destination channel, or an admin).
    #[arg(long)]
    key: PathBuf,
    #[command(flatten)]
    entry: EntryArgs,
    /// The channel the entry is in.
    #[arg(long)]
    from: String,
    /// The channel to move it to.
    #[arg(long)]
    to: String,
    /// Where to write the receipt (default: stdout).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Arguments of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    dest: Dest,
    /// The signer's private key file (a reviewer, or an admin; `revoked` needs an admin).
    #[arg(long)]
    key: PathBuf,
    #[command(flatten)]
    entry: EntryArgs,
    /// superseded, restricted, archived or revoked.
    #[arg(long)]
    status: String,
    /// Why.
    #[arg(long)]
    reason: Option<String>,
    /// Where to write the receipt (default: stdout).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Arguments of `revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    dest: Dest,
    /// The admin's private key file.
    #[arg(long)]
    admin_key: PathBuf,
    /// The verifier key file of the key to revoke.
    #[arg(long)]
    key_vkey: PathBuf,
    /// Why.
    #[arg(long)]
    reason: Option<String>,
    /// Where to write the receipt (default: stdout).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// `policy set|show`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Replace the channel policy (admin-signed PolicySet).
    Set(PolicySetArgs),
    /// Print the policy in force and the leaf that set it.
    Show(PolicyShowArgs),
}

/// Arguments of `policy set`.
#[derive(Debug, Args)]
pub struct PolicySetArgs {
    #[command(flatten)]
    dest: Dest,
    /// The admin's private key file.
    #[arg(long)]
    admin_key: PathBuf,
    /// A JSON file: a PolicySet payload, `{"channels": {...}}`, or `policy show` output.
    policy: PathBuf,
    /// Where to write the receipt (default: stdout).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Arguments of `policy show`.
#[derive(Debug, Args)]
pub struct PolicyShowArgs {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Read the local log in this data directory instead.
    #[arg(long)]
    data: Option<PathBuf>,
}

fn base(kind: &str) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("apiVersion".into(), json!(crate::catalog::API_VERSION));
    m.insert("kind".into(), json!(kind));
    m
}

/// Signs the payload with `key`, delivers it to `endpoint`, prints the receipt.
fn send(
    payload: serde_json::Map<String, Value>,
    key: &std::path::Path,
    dest: &Dest,
    endpoint: &str,
    out: Option<&PathBuf>,
    what: &str,
) -> Result<(), CliError> {
    let envelope = sign_payload(&Value::Object(payload), key)?;
    let published = deliver(dest, endpoint, &envelope)?;
    finish(&published, out, what)
}

/// `review`.
pub fn run_review(args: ReviewArgs) -> Result<(), CliError> {
    let mut p = base("Review");
    p.insert("entry".into(), args.entry.json()?);
    let reviewer = crate::keyfile::read_signer(&args.key)?
        .verifier()
        .short_id();
    p.insert("reviewer".into(), json!(reviewer));
    p.insert("channel".into(), json!(args.channel));
    p.insert(
        "verdict".into(),
        json!(if args.approve { "approve" } else { "deny" }),
    );
    if let Some(c) = &args.comment {
        p.insert("comment".into(), json!(c));
    }
    send(
        p,
        &args.key,
        &args.dest,
        "/v1/reviews",
        args.out.as_ref(),
        "review",
    )
}

/// `promote`.
pub fn run_promote(args: PromoteArgs) -> Result<(), CliError> {
    let mut p = base("Promotion");
    p.insert("entry".into(), args.entry.json()?);
    p.insert("fromChannel".into(), json!(args.from));
    p.insert("toChannel".into(), json!(args.to));
    send(
        p,
        &args.key,
        &args.dest,
        "/v1/promotions",
        args.out.as_ref(),
        "promotion",
    )
}

/// `status`.
pub fn run_status(args: StatusArgs) -> Result<(), CliError> {
    let mut p = base("StatusChange");
    p.insert("entry".into(), args.entry.json()?);
    p.insert("status".into(), json!(args.status));
    if let Some(r) = &args.reason {
        p.insert("reason".into(), json!(r));
    }
    send(
        p,
        &args.key,
        &args.dest,
        "/v1/status-changes",
        args.out.as_ref(),
        "status change",
    )
}

/// `revoke`.
pub fn run_revoke(args: RevokeArgs) -> Result<(), CliError> {
    let key = read_verifier(&args.key_vkey)?;
    let mut p = base("PublisherRevoke");
    p.insert("key".into(), json!(key.to_vkey()));
    if let Some(r) = &args.reason {
        p.insert("reason".into(), json!(r));
    }
    send(
        p,
        &args.admin_key,
        &args.dest,
        "/v1/admin/revocations",
        args.out.as_ref(),
        "revocation",
    )
}

/// `policy set|show`.
pub fn run_policy(command: PolicyCommand) -> Result<(), CliError> {
    match command {
        PolicyCommand::Set(args) => {
            let text = std::fs::read(&args.policy)
                .context(|| format!("reading {}", args.policy.display()))?;
            let v: Value =
                serde_json::from_slice(&text).context(|| args.policy.display().to_string())?;
            let channels = v
                .get("channels")
                .or_else(|| v.pointer("/policy/channels"))
                .cloned()
                .ok_or_else(|| {
                    CliError(format!("{} has no \"channels\"", args.policy.display()))
                })?;
            let mut p = base("PolicySet");
            p.insert("channels".into(), channels);
            send(
                p,
                &args.admin_key,
                &args.dest,
                "/v1/admin/policy",
                args.out.as_ref(),
                "policy",
            )
        }
        PolicyCommand::Show(args) => {
            let shown = fetch_policy(&args.server, args.data.as_deref())?;
            println!(
                "{}",
                serde_json::to_string_pretty(&shown).unwrap_or_default()
            );
            Ok(())
        }
    }
}

/// The policy in force as `GET /v1/policy` answers it, from a server or a local log.
pub fn fetch_policy(server: &str, data: Option<&std::path::Path>) -> Result<Value, CliError> {
    match data {
        Some(dir) => {
            let local = LocalLog::open(dir)?;
            let v = local.log.read_catalog(|c, at| {
                let (policy, index) = c.policy_before(at);
                json!({"policy": policy, "leafIndex": index, "treeSize": at})
            });
            local.log.shutdown();
            Ok(v)
        }
        None => {
            let rt = runtime()?;
            rt.block_on(async {
                let client = HttpClient::new(server)?;
                let r = client.get("/v1/policy").await?;
                if !r.status.is_success() {
                    return Err(CliError(format!(
                        "GET /v1/policy: {}",
                        String::from_utf8_lossy(&r.body)
                    )));
                }
                serde_json::from_slice(&r.body).context(|| "reading /v1/policy".into())
            })
        }
    }
}
