//! `srcos-catalog grant` and `srcos-catalog publish`.

use std::path::PathBuf;

use clap::Args;

use super::{runtime, CliError, Context};
use crate::catalog::{parse_publication_request, sign_envelope};
use crate::client::http::HttpClient;
use crate::client::{submit_envelope, ClientError, Published};
use crate::keyfile::{read_signer, read_verifier};
use crate::note::Verifier;

/// Arguments of `grant`.
#[derive(Debug, Args)]
pub struct GrantArgs {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// The admin's private key file.
    #[arg(long)]
    admin_key: PathBuf,
    /// The publisher's verifier key file.
    #[arg(long)]
    publisher_vkey: PathBuf,
    /// A targetCatalogRef prefix the publisher may use (repeatable, at least one).
    #[arg(long = "target-prefix", required = true)]
    target_prefixes: Vec<String>,
    /// A channel the publisher may use (repeatable; `*` for any). Default: dev.
    #[arg(long = "channel")]
    channels: Vec<String>,
    /// The log's verifier key file, to verify the receipt. Without it the key the
    /// server reports is used, which only checks consistency, not authenticity.
    #[arg(long)]
    log_vkey: Option<PathBuf>,
    /// Where to write the receipt (default: stdout).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Arguments of `publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// The publisher's private key file.
    #[arg(long)]
    key: PathBuf,
    /// The log's verifier key file.
    #[arg(long)]
    log_vkey: PathBuf,
    /// The CatalogPublicationRequest JSON file.
    request: PathBuf,
    /// Where to write the receipt (default: stdout).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Signs and submits a grant.
pub fn run_grant(args: GrantArgs) -> Result<(), CliError> {
    let admin = read_signer(&args.admin_key)?;
    let publisher = read_verifier(&args.publisher_vkey)?;
    let channels = if args.channels.is_empty() {
        vec!["dev".to_string()]
    } else {
        args.channels.clone()
    };
    let payload = serde_json::json!({
        "apiVersion": "catalog.srcos.ai/v1",
        "kind": "PublisherGrant",
        "publisherKey": publisher.to_vkey(),
        "role": "publisher",
        "targetPrefixes": args.target_prefixes,
        "channels": channels,
    });
    let payload = serde_jcs::to_vec(&payload).context(|| "encoding the grant".into())?;
    let envelope = sign_envelope(&payload, &admin);
    let rt = runtime()?;
    rt.block_on(async {
        let client = HttpClient::new(&args.server)?;
        let log_key = match &args.log_vkey {
            Some(path) => read_verifier(path)?,
            None => {
                eprintln!(
                    "warning: no --log-vkey; checking the receipt with the key the server reports"
                );
                server_log_key(&client).await?
            }
        };
        let published = submit_envelope(&client, "/v1/admin/grants", &envelope, &log_key)
            .await
            .map_err(describe)?;
        finish(&published, args.out.as_ref(), "grant")
    })
}

/// Signs and submits a publication request.
pub fn run_publish(args: PublishArgs) -> Result<(), CliError> {
    let publisher = read_signer(&args.key)?;
    let log_key = read_verifier(&args.log_vkey)?;
    let bytes =
        std::fs::read(&args.request).context(|| format!("reading {}", args.request.display()))?;
    // Validate locally first: a bad request is reported before anything is signed.
    parse_publication_request(&bytes)
        .map_err(|e| CliError(format!("{}: {e}", args.request.display())))?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).context(|| args.request.display().to_string())?;
    // The payload is the canonical (RFC 8785) form, so the same request always has the
    // same bytes and resubmitting it is recognised as a duplicate.
    let payload = serde_jcs::to_vec(&value).context(|| "canonicalizing the request".into())?;
    let envelope = sign_envelope(&payload, &publisher);
    let rt = runtime()?;
    rt.block_on(async {
        let client = HttpClient::new(&args.server)?;
        let published = submit_envelope(&client, "/v1/publications", &envelope, &log_key)
            .await
            .map_err(describe)?;
        finish(&published, args.out.as_ref(), "publication")
    })
}

async fn server_log_key(client: &HttpClient) -> Result<Verifier, CliError> {
    let response = client.get("/v1/log").await?;
    let info: serde_json::Value =
        serde_json::from_slice(&response.body).context(|| "reading /v1/log".into())?;
    let vkey = info
        .get("verifierKey")
        .and_then(|v| v.as_str())
        .ok_or_else(|| CliError("/v1/log has no verifierKey".into()))?;
    Ok(Verifier::from_vkey(vkey)?)
}

fn describe(error: ClientError) -> CliError {
    match error {
        ClientError::Refused {
            status,
            detail,
            errors,
        } => {
            let mut message = format!("refused ({status}): {detail}");
            if errors.len() > 1 {
                for error in errors {
                    message.push_str("\n  - ");
                    message.push_str(&error);
                }
            }
            CliError(message)
        }
        other => CliError(other.to_string()),
    }
}

fn finish(published: &Published, out: Option<&PathBuf>, what: &str) -> Result<(), CliError> {
    let json = published.receipt.to_json();
    match out {
        Some(path) => std::fs::write(path, format!("{json}\n"))
            .context(|| format!("writing {}", path.display()))?,
        None => println!("{json}"),
    }
    eprintln!(
        "{} {what}: entry {} at tree size {} (receipt verified)",
        if published.duplicate {
            "already logged"
        } else {
            "logged"
        },
        published.verified.index,
        published.verified.checkpoint.size
    );
    Ok(())
}
