//! `srcos-catalog keygen`.

use std::path::PathBuf;

use clap::Args;

use super::{CliError, Context};
use crate::keyfile::generate_key_pair;
use crate::note::KeyType;

/// Arguments of `keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// The key name (for a log: its origin; for a witness: its name).
    #[arg(long)]
    name: String,
    /// Output prefix: writes PREFIX.key and PREFIX.vkey.
    #[arg(long)]
    out: PathBuf,
    /// Make a witness cosigner key (tlog-cosignature, type 0x04) instead of a signing key.
    #[arg(long)]
    witness: bool,
}

/// Generates the key pair and prints the verifier key.
pub fn run(args: KeygenArgs) -> Result<(), CliError> {
    let key_type = if args.witness {
        KeyType::CosignatureV1
    } else {
        KeyType::Ed25519
    };
    let (signer, paths) = generate_key_pair(&args.out, &args.name, key_type)
        .context(|| format!("writing the key pair {}", args.out.display()))?;
    eprintln!(
        "wrote {} (private, mode 0600) and {}",
        paths.private.display(),
        paths.public.display()
    );
    println!("{}", signer.verifier().to_vkey());
    Ok(())
}
