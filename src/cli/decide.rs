//! `review`, `promote`, `status`, `revoke` and `policy set|show`: the decisions, each a
//! signed request built from catalog's typed payloads, that prints its receipt or a clear
//! refusal.
//!
//! May import `client` (the authority), `catalog` (through its root), `keyfile` and `note`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::Value;

use super::dest::{describe, open_authority, sign_payload, submit_one, Dest};
use super::{runtime, wire_name, CliError, Context, UnknownValue};
use crate::catalog::{
    format_rfc3339_ms, parse_subject_digest, ApiVersion, ChannelPolicy, DecisionKind,
    DecisionPayload, DigestSet, EntryKey, NewStatus, PolicySetRequest, PromotionRequest,
    ReviewRequest, RevokeRequest, StatusChangeRequest, SubmissionKind, Verdict,
};
use crate::keyfile::{read_signer, read_verifier};
use crate::note::Signer;

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
    fn key(&self) -> Result<EntryKey, CliError> {
        let sha256 =
            parse_subject_digest(&self.subject).map_err(|m| CliError(format!("--subject: {m}")))?;
        Ok(EntryKey {
            target_catalog_ref: self.target.clone(),
            subject_digest: DigestSet { sha256 },
        })
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
    #[arg(long, value_parser = parse_status)]
    status: NewStatus,
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

fn parse_status(text: &str) -> Result<NewStatus, UnknownValue> {
    wire_name(text, "superseded, restricted, archived, revoked")
}

/// Signs a decision with `signer`, submits it to its route, prints the receipt.
fn send(
    payload: &DecisionPayload,
    signer: &Signer,
    dest: &Dest,
    out: Option<&PathBuf>,
    what: &str,
) -> Result<(), CliError> {
    let envelope = match payload {
        DecisionPayload::PolicySet(p) => sign_payload(p, signer),
        DecisionPayload::Revoke(p) => sign_payload(p, signer),
        DecisionPayload::Review(p) => sign_payload(p, signer),
        DecisionPayload::Promotion(p) => sign_payload(p, signer),
        DecisionPayload::StatusChange(p) => sign_payload(p, signer),
    }?;
    let kind = SubmissionKind::Decision(payload.kind());
    submit_one(dest, kind, &envelope, out, what)
}

/// The signed freshness of a new act: `issuedAt` (now, RFC 3339 milliseconds) and a
/// nonce of 16 random bytes as 32 hex characters (`log-format/leaves.md` §9.1), so every
/// act the CLI signs is unique and a resent one is a true duplicate.
pub(super) fn freshness() -> Result<(String, String), CliError> {
    use rand_core::RngCore;
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| CliError(format!("the system clock is before 1970: {e}")))?
        .as_millis();
    let issued_at = u64::try_from(ms)
        .ok()
        .and_then(format_rfc3339_ms)
        .ok_or_else(|| CliError(format!("the system clock ({ms} ms) is past year 9999")))?;
    let mut bytes = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut bytes);
    Ok((issued_at, hex::encode(bytes)))
}

/// `review`.
pub fn run_review(args: ReviewArgs) -> Result<(), CliError> {
    let entry = args.entry.key()?;
    let signer = read_signer(&args.key)?;
    let (issued_at, nonce) = freshness()?;
    let payload = DecisionPayload::Review(ReviewRequest {
        api_version: ApiVersion::V1,
        kind: DecisionKind::Review,
        entry,
        reviewer: signer.verifier().short_id(),
        channel: args.channel.clone(),
        verdict: if args.approve {
            Verdict::Approve
        } else {
            Verdict::Deny
        },
        comment: args.comment.clone(),
        issued_at: Some(issued_at.clone()),
        nonce: Some(nonce.clone()),
    });
    send(&payload, &signer, &args.dest, args.out.as_ref(), "review")
}

/// `promote`.
pub fn run_promote(args: PromoteArgs) -> Result<(), CliError> {
    let (issued_at, nonce) = freshness()?;
    let payload = DecisionPayload::Promotion(PromotionRequest {
        api_version: ApiVersion::V1,
        kind: DecisionKind::Promotion,
        entry: args.entry.key()?,
        from_channel: args.from.clone(),
        to_channel: args.to.clone(),
        issued_at: Some(issued_at.clone()),
        nonce: Some(nonce.clone()),
    });
    let signer = read_signer(&args.key)?;
    send(
        &payload,
        &signer,
        &args.dest,
        args.out.as_ref(),
        "promotion",
    )
}

/// `status`.
pub fn run_status(args: StatusArgs) -> Result<(), CliError> {
    let (issued_at, nonce) = freshness()?;
    let payload = DecisionPayload::StatusChange(StatusChangeRequest {
        api_version: ApiVersion::V1,
        kind: DecisionKind::StatusChange,
        entry: args.entry.key()?,
        status: args.status,
        reason: args.reason.clone(),
        issued_at: Some(issued_at.clone()),
        nonce: Some(nonce.clone()),
    });
    let signer = read_signer(&args.key)?;
    send(
        &payload,
        &signer,
        &args.dest,
        args.out.as_ref(),
        "status change",
    )
}

/// `revoke`.
pub fn run_revoke(args: RevokeArgs) -> Result<(), CliError> {
    let key = read_verifier(&args.key_vkey)?;
    let (issued_at, nonce) = freshness()?;
    let payload = DecisionPayload::Revoke(RevokeRequest {
        api_version: ApiVersion::V1,
        kind: DecisionKind::PublisherRevoke,
        key: key.to_vkey(),
        reason: args.reason.clone(),
        issued_at: Some(issued_at.clone()),
        nonce: Some(nonce.clone()),
    });
    let signer = read_signer(&args.admin_key)?;
    send(
        &payload,
        &signer,
        &args.dest,
        args.out.as_ref(),
        "revocation",
    )
}

/// `policy set|show`.
pub fn run_policy(command: PolicyCommand) -> Result<(), CliError> {
    match command {
        PolicyCommand::Set(args) => policy_set(args),
        PolicyCommand::Show(args) => policy_show(args),
    }
}

/// `policy set`: the channels of a PolicySet payload, `{"channels": …}` or `policy show`
/// output, signed as a `PolicySet`.
fn policy_set(args: PolicySetArgs) -> Result<(), CliError> {
    let file = args.policy.display().to_string();
    let text = std::fs::read(&args.policy).context(|| format!("reading {file}"))?;
    let v: Value = serde_json::from_slice(&text).context(|| file.clone())?;
    let channels = v
        .get("channels")
        .or_else(|| v.pointer("/policy/channels"))
        .cloned()
        .ok_or_else(|| CliError(format!("{file} has no \"channels\"")))?;
    let channels: std::collections::BTreeMap<String, ChannelPolicy> =
        serde_json::from_value(channels).context(|| format!("{file}: channels"))?;
    let (issued_at, nonce) = freshness()?;
    let payload = DecisionPayload::PolicySet(PolicySetRequest {
        api_version: ApiVersion::V1,
        kind: DecisionKind::PolicySet,
        channels,
        decision_window_seconds: v
            .get("decisionWindowSeconds")
            .or_else(|| v.pointer("/policy/decisionWindowSeconds"))
            .and_then(Value::as_u64),
        issued_at: Some(issued_at.clone()),
        nonce: Some(nonce.clone()),
    });
    let signer = read_signer(&args.admin_key)?;
    send(&payload, &signer, &args.dest, args.out.as_ref(), "policy")
}

/// `policy show`: the policy in force, as `GET /v1/policy` answers it, pretty-printed.
fn policy_show(args: PolicyShowArgs) -> Result<(), CliError> {
    let authority = open_authority(&args.server, args.data.as_deref())?;
    let shown = runtime()?.block_on(authority.policy()).map_err(describe)?;
    // Through a JSON value, so members print sorted as before.
    let value = serde_json::to_value(&shown).context(|| "encoding the policy".into())?;
    println!(
        "{}",
        serde_json::to_string_pretty(&value).unwrap_or_default()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn jcs<T: serde::Serialize>(value: &T) -> Vec<u8> {
        serde_jcs::to_vec(value).unwrap()
    }

    fn entry() -> EntryKey {
        EntryKey {
            target_catalog_ref: "sourceos://catalog/images/x".into(),
            subject_digest: DigestSet {
                sha256: "ab".repeat(32),
            },
        }
    }

    /// The typed payloads sign exactly the bytes the JSON maps they replaced did.
    #[test]
    fn typed_decisions_canonicalize_as_the_old_json_maps() {
        let entry_json = json!({"targetCatalogRef": "sourceos://catalog/images/x",
                                "subjectDigest": {"sha256": "ab".repeat(32)}});
        let review = |comment: Option<&str>| ReviewRequest {
            api_version: ApiVersion::V1,
            kind: DecisionKind::Review,
            entry: entry(),
            reviewer: "alice+01020304".into(),
            channel: "dev".into(),
            verdict: Verdict::Deny,
            comment: comment.map(str::to_string),
            issued_at: None,
            nonce: None,
        };
        let cases: Vec<(Vec<u8>, Value)> = vec![
            (
                jcs(&review(None)),
                json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "Review", "entry": entry_json,
                       "reviewer": "alice+01020304", "channel": "dev", "verdict": "deny"}),
            ),
            (
                jcs(&review(Some("ok"))),
                json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "Review", "entry": entry_json,
                       "reviewer": "alice+01020304", "channel": "dev", "verdict": "deny",
                       "comment": "ok"}),
            ),
            (
                jcs(&PromotionRequest {
                    api_version: ApiVersion::V1,
                    kind: DecisionKind::Promotion,
                    entry: entry(),
                    from_channel: "dev".into(),
                    to_channel: "candidate".into(),
                    issued_at: None,
                    nonce: None,
                }),
                json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "Promotion", "entry": entry_json,
                       "fromChannel": "dev", "toChannel": "candidate"}),
            ),
            (
                jcs(&StatusChangeRequest {
                    api_version: ApiVersion::V1,
                    kind: DecisionKind::StatusChange,
                    entry: entry(),
                    status: NewStatus::Superseded,
                    reason: Some("rebuilt".into()),
                    issued_at: None,
                    nonce: None,
                }),
                json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "StatusChange",
                       "entry": entry_json, "status": "superseded", "reason": "rebuilt"}),
            ),
            (
                jcs(&RevokeRequest {
                    api_version: ApiVersion::V1,
                    kind: DecisionKind::PublisherRevoke,
                    key: "k+01020304+AQ".into(),
                    reason: None,
                    issued_at: None,
                    nonce: None,
                }),
                json!({"apiVersion": "catalog.srcos.ai/v1", "kind": "PublisherRevoke",
                       "key": "k+01020304+AQ"}),
            ),
        ];
        for (typed, old) in cases {
            assert_eq!(typed, jcs(&old));
        }
    }

    #[test]
    fn status_flags_take_exactly_the_wire_names() {
        for (text, want) in [
            ("superseded", Some(NewStatus::Superseded)),
            ("restricted", Some(NewStatus::Restricted)),
            ("archived", Some(NewStatus::Archived)),
            ("revoked", Some(NewStatus::Revoked)),
            ("Revoked", None),
            ("published", None),
        ] {
            assert_eq!(parse_status(text).ok(), want, "{text}");
        }
    }
}
