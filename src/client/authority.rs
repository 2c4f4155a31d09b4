//! The [`Authority`] interface: one method per request a client makes of the catalog
//! publication authority, as sigsum-go's client interface has one method per endpoint.
//! A server ([`super::HttpAuthority`]) and a local log ([`super::LocalAuthority`]) both
//! implement it, so a command is written once for either.
//!
//! Methods return boxed futures ([`Reply`]) so the trait can be used as `dyn Authority`
//! (the CLI chooses the implementation at run time).
//!
//! May import `catalog` (through its root), `note` and `receipt`.

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

use super::{ClientError, Published};
use crate::catalog::{BlobIntent, Envelope, Policy, SubmissionKind};
use crate::note::{NoteError, Signer, Verifier};
use crate::receipt::Receipt;

/// The answer of an [`Authority`] call, boxed so the trait is object safe.
pub type Reply<'a, T> = Pin<Box<dyn Future<Output = Result<T, ClientError>> + Send + 'a>>;

/// The catalog publication authority, as a client sees it.
pub trait Authority: Send + Sync {
    /// Submits a signed request of `kind` (publication, grant or a decision); the receipt
    /// is returned as the authority gave it, not yet verified (see [`submit_verified`]).
    fn submit<'a>(&'a self, kind: SubmissionKind, envelope: &'a Envelope) -> Reply<'a, Receipted>;

    /// Stores an evidence blob under its SHA-256 (64 lowercase hex), which the authority
    /// checks against the bytes; the upload intent is signed by `uploader` (a publisher
    /// or admin key, see `log-format/blobs.md`).
    fn put_blob<'a>(
        &'a self,
        uploader: &'a Signer,
        sha256_hex: &'a str,
        bytes: Vec<u8>,
    ) -> Reply<'a, BlobPut>;

    /// The evidence blob with this SHA-256, if the authority holds it.
    fn blob<'a>(&'a self, sha256_hex: &'a str) -> Reply<'a, Option<Vec<u8>>>;

    /// The policy in force at the committed tree size, and the leaf that set it.
    fn policy(&self) -> Reply<'_, PolicyInForce>;

    /// The leaf index of the publication behind the catalog entry with local id `id`
    /// (`catalog::entry_local_id`), if that entry exists at the committed tree size.
    fn entry_index<'a>(&'a self, id: &'a str) -> Reply<'a, Option<u64>>;

    /// The log's origin, verifier key and committed size.
    fn log_info(&self) -> Reply<'_, LogInfo>;

    /// The signed checkpoint the authority serves (note bytes).
    fn checkpoint(&self) -> Reply<'_, Vec<u8>>;
}

/// A receipt as an authority returned it.
#[derive(Debug, Clone)]
pub struct Receipted {
    /// The receipt, not yet verified.
    pub receipt: Receipt,
    /// The request was already in the log (HTTP 200 rather than 201).
    pub duplicate: bool,
}

/// The `Blob-Intent` header value for uploading `size` bytes hashing to `sha256_hex` to
/// the log `origin`, signed by `uploader` now, with a random nonce.
pub fn upload_intent(uploader: &Signer, origin: &str, sha256_hex: &str, size: u64) -> String {
    use rand_core::RngCore;
    let mut nonce = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut nonce);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    BlobIntent::new(origin, sha256_hex, size, now_ms, &hex::encode(nonce)).sign_header(uploader)
}

/// What storing a blob did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobPut {
    /// The blob is new (HTTP 201).
    Created,
    /// The authority already held it (HTTP 200).
    Held,
}

/// The policy in force: the answer of `GET /v1/policy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyInForce {
    /// The policy.
    pub policy: Policy,
    /// The leaf of the `PolicySet` that set it (0: the genesis defaults).
    pub leaf_index: u64,
    /// The committed tree size it was read at.
    pub tree_size: u64,
}

/// The log's identity: the answer of `GET /v1/log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogInfo {
    /// The log's origin.
    pub origin: String,
    /// The log's verifier key string.
    pub verifier_key: String,
    /// The committed tree size.
    pub tree_size: u64,
}

impl LogInfo {
    /// The verifier key, parsed.
    pub fn verifier(&self) -> Result<Verifier, NoteError> {
        Verifier::from_vkey(&self.verifier_key)
    }
}

/// Submits `envelope` as a request of `kind` and verifies the receipt offline with the
/// log key: a receipt that does not verify is an error, whoever issued it.
pub async fn submit_verified(
    authority: &dyn Authority,
    kind: SubmissionKind,
    envelope: &Envelope,
    log_key: &Verifier,
) -> Result<Published, ClientError> {
    let Receipted { receipt, duplicate } = authority.submit(kind, envelope).await?;
    let verified = receipt.verify(log_key)?;
    Ok(Published {
        receipt,
        verified,
        duplicate,
    })
}
