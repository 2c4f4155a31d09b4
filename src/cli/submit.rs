//! `srcos-catalog grant` and `srcos-catalog publish` (with `--upload`, `--dry-run` and
//! local mode `--data`): argument parsing, the typed payload, and printing; the requests
//! go through the one [`Authority`] the command opens.
//!
//! May import `client` (the authority), `catalog` (through its root), `reports` (evidence
//! files by digest) and `keyfile`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;

use super::dest::{deliver, describe, finish, sign_payload, submit_one, Dest};
use super::{runtime, wire_name, CliError, Context, UnknownValue};
use crate::catalog::{
    analyze, check_publication, entry_local_id, parse_publication_request, ApiVersion, BlobSource,
    CatalogPublicationRequest, PublisherGrantKind, PublisherGrantRequest, Role, SubmissionKind,
};
use crate::client::{Authority, BlobPut, ClientError};
use crate::keyfile::{read_signer, read_verifier};
use crate::note::Signer;

/// Arguments of `grant`.
#[derive(Debug, Args)]
pub struct GrantArgs {
    #[command(flatten)]
    dest: Dest,
    /// The admin's private key file.
    #[arg(long)]
    admin_key: PathBuf,
    /// The granted key's verifier key file (publisher or reviewer).
    #[arg(long)]
    publisher_vkey: PathBuf,
    /// The role: publisher (submits publications) or reviewer (reviews, promotes,
    /// changes status).
    #[arg(long, default_value = "publisher", value_parser = parse_role)]
    role: Role,
    /// A targetCatalogRef prefix the key may use (repeatable, at least one).
    #[arg(long = "target-prefix", required = true)]
    target_prefixes: Vec<String>,
    /// A channel the key may use (repeatable; `*` for any). Default: dev.
    #[arg(long = "channel")]
    channels: Vec<String>,
    /// Where to write the receipt (default: stdout).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Arguments of `publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    #[command(flatten)]
    dest: Dest,
    /// The publisher's private key file (not needed with --dry-run).
    #[arg(long, required_unless_present = "dry_run")]
    key: Option<PathBuf>,
    /// The CatalogPublicationRequest JSON file.
    request: PathBuf,
    /// A directory holding the evidence files (found by digest); default: the request
    /// file's directory.
    #[arg(long)]
    evidence_dir: Option<PathBuf>,
    /// Upload the evidence files the request references as blobs first, so the authority
    /// checks their contents.
    #[arg(long)]
    upload: bool,
    /// Run every policy check locally against the authority's published policy, and
    /// submit nothing.
    #[arg(long)]
    dry_run: bool,
    /// Where to write the receipt (default: stdout).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn parse_role(text: &str) -> Result<Role, UnknownValue> {
    wire_name(text, "publisher, reviewer")
}

/// Signs and submits a grant.
pub fn run_grant(args: GrantArgs) -> Result<(), CliError> {
    let grantee = read_verifier(&args.publisher_vkey)?;
    let channels = if args.channels.is_empty() {
        vec!["dev".to_string()]
    } else {
        args.channels.clone()
    };
    let (issued_at, nonce) = super::decide::freshness()?;
    let payload = PublisherGrantRequest {
        api_version: ApiVersion::V1,
        kind: PublisherGrantKind::PublisherGrant,
        publisher_key: grantee.to_vkey(),
        role: args.role,
        target_prefixes: args.target_prefixes.clone(),
        channels,
        issued_at: Some(issued_at),
        nonce: Some(nonce),
    };
    let envelope = sign_payload(&payload, &read_signer(&args.admin_key)?)?;
    submit_one(
        &args.dest,
        SubmissionKind::Grant,
        &envelope,
        args.out.as_ref(),
        "grant",
    )
}

/// Blobs held in memory by digest (for `--dry-run`).
struct HeldBlobs(BTreeMap<String, Vec<u8>>);

impl BlobSource for HeldBlobs {
    fn blob(&self, sha256_hex: &str) -> Option<Vec<u8>> {
        self.0.get(sha256_hex).cloned()
    }
}

/// Signs and submits a publication request (or only checks it, with `--dry-run`).
pub fn run_publish(args: PublishArgs) -> Result<(), CliError> {
    let bytes =
        std::fs::read(&args.request).context(|| format!("reading {}", args.request.display()))?;
    // Validate locally first: a bad request is reported before anything is signed.
    let request = parse_publication_request(&bytes)
        .map_err(|e| CliError(format!("{}: {e}", args.request.display())))?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).context(|| args.request.display().to_string())?;
    let files = evidence_files(&args, &request)?;
    if args.dry_run {
        let authority = args.dest.open()?;
        return runtime()?.block_on(dry_run(authority.as_ref(), &request, &files));
    }
    let key = args
        .key
        .as_ref()
        .ok_or_else(|| CliError("--key is required".into()))?;
    // The file's own JSON is signed (canonicalized), so the publisher signs what it wrote.
    let signer = read_signer(key)?;
    let envelope = sign_payload(&value, &signer)?;
    let authority = args.dest.open()?;
    let rt = runtime()?;
    let published = rt.block_on(async {
        if args.upload {
            let local = args.dest.data.is_some();
            upload(authority.as_ref(), &signer, local, &files).await?;
        }
        deliver(
            &args.dest,
            authority.as_ref(),
            SubmissionKind::Publication,
            &envelope,
        )
        .await
    })?;
    finish(&published, args.out.as_ref(), "publication")
}

/// The local files of the request's evidence, by digest (only with `--upload`/`--dry-run`
/// or an explicit `--evidence-dir`).
fn evidence_files(
    args: &PublishArgs,
    request: &CatalogPublicationRequest,
) -> Result<BTreeMap<String, PathBuf>, CliError> {
    if !(args.upload || args.dry_run || args.evidence_dir.is_some()) {
        return Ok(BTreeMap::new());
    }
    let dir = match &args.evidence_dir {
        Some(d) => d.clone(),
        None => args
            .request
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    let all = crate::reports::walk(&dir).context(|| format!("reading {}", dir.display()))?;
    let index = crate::reports::index_by_digest(&all);
    let mut files = BTreeMap::new();
    for e in &request.evidence {
        match index.get(&e.digest.sha256) {
            Some(path) => {
                files.insert(e.digest.sha256.clone(), path.clone());
            }
            None if args.upload => eprintln!(
                "warning: no file under {} has the digest of {} ({}); not uploaded",
                dir.display(),
                e.uri,
                e.evidence_type
            ),
            None => {}
        }
    }
    Ok(files)
}

/// Stores every evidence file with the authority (`stored` in a local log, `uploaded` to
/// a server), each upload intent signed by the publisher's key.
async fn upload(
    authority: &dyn Authority,
    signer: &Signer,
    local: bool,
    files: &BTreeMap<String, PathBuf>,
) -> Result<(), CliError> {
    for (hex, path) in files {
        let bytes = std::fs::read(path).context(|| format!("reading {}", path.display()))?;
        let put = authority
            .put_blob(signer, hex, bytes)
            .await
            .map_err(|e| upload_error(path, e))?;
        let done = match put {
            BlobPut::Created if local => "stored",
            BlobPut::Created => "uploaded",
            BlobPut::Held => "already held",
        };
        eprintln!("{done} sha256:{hex} ({})", path.display());
    }
    Ok(())
}

fn upload_error(path: &std::path::Path, error: ClientError) -> CliError {
    match error {
        ClientError::Refused { status, detail, .. } => CliError(format!(
            "uploading {} refused ({status}): {detail}",
            path.display()
        )),
        other => CliError(format!("storing {}: {other}", path.display())),
    }
}

/// Checks the request against the authority's policy, the blobs it holds or the local
/// files, and the entry it may already have; submits nothing.
async fn dry_run(
    authority: &dyn Authority,
    request: &CatalogPublicationRequest,
    files: &BTreeMap<String, PathBuf>,
) -> Result<(), CliError> {
    let shown = authority.policy().await.map_err(describe)?;
    let policy_index = shown.leaf_index;
    let mut held = BTreeMap::new();
    for (hex, path) in files {
        held.insert(
            hex.clone(),
            std::fs::read(path).context(|| format!("reading {}", path.display()))?,
        );
    }
    for e in &request.evidence {
        let hex = &e.digest.sha256;
        if !held.contains_key(hex) {
            if let Some(bytes) = authority.blob(hex).await.map_err(describe)? {
                held.insert(hex.clone(), bytes);
            }
        }
    }
    let id = entry_local_id(&request.target_catalog_ref, &request.subject_digest());
    let existing = authority.entry_index(&id).await.map_err(describe)?;
    let report = analyze(request, &HeldBlobs(held));
    let failures = check_publication(&shown.policy, request, &report, existing);
    if failures.is_empty() {
        println!(
            "dry run: the request meets the policy of channel {} (policy leaf {policy_index}); {} of {} evidence blobs checked; nothing was submitted",
            request.channel,
            report.items.len(),
            request.evidence.len()
        );
        return Ok(());
    }
    let mut message = format!(
        "dry run: the request fails {} requirement(s) of channel {} (policy leaf {policy_index}); nothing was submitted",
        failures.len(),
        request.channel
    );
    for f in failures {
        message.push_str("\n  - ");
        message.push_str(&f);
    }
    Err(CliError(message))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The typed grant signs exactly the bytes the JSON map it replaced did.
    #[test]
    fn typed_grant_canonicalizes_as_the_old_json_map() {
        let typed = PublisherGrantRequest {
            api_version: ApiVersion::V1,
            kind: PublisherGrantKind::PublisherGrant,
            publisher_key: "p+01020304+AQ".into(),
            role: Role::Reviewer,
            target_prefixes: vec!["sourceos://catalog/images/".into()],
            channels: vec!["dev".into(), "*".into()],
            issued_at: None,
            nonce: None,
        };
        let old = json!({
            "apiVersion": "catalog.srcos.ai/v1",
            "kind": "PublisherGrant",
            "publisherKey": "p+01020304+AQ",
            "role": "reviewer",
            "targetPrefixes": ["sourceos://catalog/images/"],
            "channels": ["dev", "*"],
        });
        assert_eq!(
            serde_jcs::to_vec(&typed).unwrap(),
            serde_jcs::to_vec(&old).unwrap()
        );
    }

    #[test]
    fn role_flags_take_exactly_the_wire_names() {
        for (text, want) in [
            ("publisher", Some(Role::Publisher)),
            ("reviewer", Some(Role::Reviewer)),
            ("admin", None),
            ("Publisher", None),
        ] {
            assert_eq!(parse_role(text).ok(), want, "{text}");
        }
    }
}
