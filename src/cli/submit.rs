//! `srcos-catalog grant` and `srcos-catalog publish` (with `--upload`, `--dry-run` and
//! local mode `--data`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::decide::fetch_policy;
use super::dest::{deliver, finish, sign_payload, Dest, LocalLog};
use super::{runtime, CliError, Context};
use crate::catalog::{
    analyze, check_publication, parse_publication_request, BlobSource, CatalogPublicationRequest,
    Policy,
};
use crate::client::http::HttpClient;
use crate::keyfile::read_verifier;

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
    #[arg(long, default_value = "publisher")]
    role: String,
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

/// Signs and submits a grant.
pub fn run_grant(args: GrantArgs) -> Result<(), CliError> {
    let grantee = read_verifier(&args.publisher_vkey)?;
    let channels = if args.channels.is_empty() {
        vec!["dev".to_string()]
    } else {
        args.channels.clone()
    };
    let payload = json!({
        "apiVersion": crate::catalog::API_VERSION,
        "kind": "PublisherGrant",
        "publisherKey": grantee.to_vkey(),
        "role": args.role,
        "targetPrefixes": args.target_prefixes,
        "channels": channels,
    });
    let envelope = sign_payload(&payload, &args.admin_key)?;
    let published = deliver(&args.dest, "/v1/admin/grants", &envelope)?;
    finish(&published, args.out.as_ref(), "grant")
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
        return dry_run(&args, &request, &files);
    }
    if args.upload {
        upload(&args.dest, &files)?;
    }
    let key = args
        .key
        .as_ref()
        .ok_or_else(|| CliError("--key is required".into()))?;
    let envelope = sign_payload(&value, key)?;
    let published = deliver(&args.dest, "/v1/publications", &envelope)?;
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
    let all = crate::pipeline::walk(&dir).context(|| format!("reading {}", dir.display()))?;
    let index = crate::pipeline::index_by_digest(&all);
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

fn upload(dest: &Dest, files: &BTreeMap<String, PathBuf>) -> Result<(), CliError> {
    if let Some(dir) = &dest.data {
        let local = LocalLog::open(dir)?;
        for (hex, path) in files {
            let bytes = std::fs::read(path).context(|| format!("reading {}", path.display()))?;
            let new = local
                .blobs
                .put(hex, &bytes)
                .context(|| format!("storing {}", path.display()))?;
            eprintln!(
                "{} sha256:{hex} ({})",
                if new { "stored" } else { "already held" },
                path.display()
            );
        }
        local.log.shutdown();
        return Ok(());
    }
    let rt = runtime()?;
    rt.block_on(async {
        let client = HttpClient::new(&dest.server)?;
        for (hex, path) in files {
            let bytes = std::fs::read(path).context(|| format!("reading {}", path.display()))?;
            let r = client
                .put(
                    &format!("/v1/blobs/sha256:{hex}"),
                    "application/octet-stream",
                    bytes.into(),
                )
                .await?;
            match r.status.as_u16() {
                201 => eprintln!("uploaded sha256:{hex} ({})", path.display()),
                200 => eprintln!("already held sha256:{hex} ({})", path.display()),
                s => {
                    return Err(CliError(format!(
                        "uploading {} refused ({s}): {}",
                        path.display(),
                        String::from_utf8_lossy(&r.body)
                    )))
                }
            }
        }
        Ok(())
    })
}

fn dry_run(
    args: &PublishArgs,
    request: &CatalogPublicationRequest,
    files: &BTreeMap<String, PathBuf>,
) -> Result<(), CliError> {
    let shown = fetch_policy(&args.dest.server, args.dest.data.as_deref())?;
    let policy: Policy = serde_json::from_value(shown["policy"].clone())
        .context(|| "reading the authority's policy".into())?;
    let policy_index = shown["leafIndex"].as_u64().unwrap_or(0);
    let mut held = BTreeMap::new();
    for (hex, path) in files {
        held.insert(
            hex.clone(),
            std::fs::read(path).context(|| format!("reading {}", path.display()))?,
        );
    }
    let id = crate::catalog::entry_local_id(&request.target_catalog_ref, &request.subject_digest());
    let existing = match &args.dest.data {
        Some(dir) => {
            let local = LocalLog::open(dir)?;
            for e in &request.evidence {
                if !held.contains_key(&e.digest.sha256) {
                    if let Some(b) = local.blobs.blob(&e.digest.sha256) {
                        held.insert(e.digest.sha256.clone(), b);
                    }
                }
            }
            let existing = local
                .log
                .read_catalog(|c, at| c.entry_index(&id).map(|i| i.filter(|i| *i < at)));
            local.log.shutdown();
            existing.context(|| "reading the local catalog".into())?
        }
        None => remote_state(&args.dest.server, request, &id, &mut held)?,
    };
    let report = analyze(request, &HeldBlobs(held));
    let failures = check_publication(&policy, request, &report, existing);
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

/// Blobs the server already holds (when not held locally), and the existing entry, if any.
fn remote_state(
    server: &str,
    request: &CatalogPublicationRequest,
    id: &str,
    held: &mut BTreeMap<String, Vec<u8>>,
) -> Result<Option<u64>, CliError> {
    let rt = runtime()?;
    rt.block_on(async {
        let client = HttpClient::new(server)?;
        for e in &request.evidence {
            if held.contains_key(&e.digest.sha256) {
                continue;
            }
            let r = client
                .get(&format!("/v1/blobs/sha256:{}", e.digest.sha256))
                .await?;
            if r.status.as_u16() == 200 {
                held.insert(e.digest.sha256.clone(), r.body.to_vec());
            }
        }
        let r = client.get(&format!("/v1/catalog/entries/{id}")).await?;
        if r.status.as_u16() != 200 {
            return Ok(None);
        }
        let v: serde_json::Value =
            serde_json::from_slice(&r.body).context(|| "reading the entry".into())?;
        Ok(v["leafIndices"][0].as_u64())
    })
}
