//! [`HttpAuthority`]: the typed HTTP client of the catalog API, the [`Authority`] of a
//! server. Every path comes from [`crate::http::routes`], the table the server's router
//! mounts; error answers are read as problem+json ([`refused`]).
//!
//! May import `http`, `catalog` (through its root) and `receipt`.

use axum::body::Bytes;
use hyper::StatusCode;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::authority::{
    upload_intent, Authority, BlobPut, LogInfo, PolicyInForce, Receipted, Reply,
};
use super::ClientError;
use crate::catalog::{DecisionKind, Envelope, SubmissionKind, BLOB_INTENT_HEADER};
use crate::http::{routes, HttpClient, HttpError, HttpResponse};
use crate::note::Signer;
use crate::receipt::Receipt;

/// The route a submission of `kind` is posted to.
pub fn submission_route(kind: SubmissionKind) -> &'static str {
    match kind {
        SubmissionKind::Publication => routes::PUBLICATIONS,
        SubmissionKind::Grant => routes::GRANTS,
        SubmissionKind::Decision(DecisionKind::PolicySet) => routes::POLICY_SET,
        SubmissionKind::Decision(DecisionKind::PublisherRevoke) => routes::REVOCATIONS,
        SubmissionKind::Decision(DecisionKind::Review) => routes::REVIEWS,
        SubmissionKind::Decision(DecisionKind::Promotion) => routes::PROMOTIONS,
        SubmissionKind::Decision(DecisionKind::StatusChange) => routes::STATUS_CHANGES,
    }
}

/// Turns an error answer into a [`ClientError::Refused`], reading problem+json if present.
pub fn refused(status: u16, body: &[u8]) -> ClientError {
    #[derive(serde::Deserialize)]
    struct ProblemBody {
        detail: Option<String>,
        #[serde(default)]
        errors: Vec<String>,
    }
    match serde_json::from_slice::<ProblemBody>(body) {
        Ok(problem) => ClientError::Refused {
            status,
            detail: problem.detail.unwrap_or_default(),
            errors: problem.errors,
        },
        Err(_) => ClientError::Refused {
            status,
            detail: String::from_utf8_lossy(body).chars().take(500).collect(),
            errors: Vec::new(),
        },
    }
}

/// The catalog authority behind a server's base URL (`http://host:port`).
#[derive(Clone)]
pub struct HttpAuthority {
    http: HttpClient,
    /// The log's origin, asked once: upload intents name it, and it never changes.
    origin: tokio::sync::OnceCell<String>,
}

impl HttpAuthority {
    /// A client for the server at `base`.
    pub fn new(base: &str) -> Result<HttpAuthority, HttpError> {
        Ok(HttpAuthority {
            http: HttpClient::new(base)?,
            origin: tokio::sync::OnceCell::new(),
        })
    }

    /// The log's origin, from `/v1/log` the first time it is needed.
    async fn origin(&self) -> Result<&str, ClientError> {
        let origin = self
            .origin
            .get_or_try_init(|| async { self.log_info().await.map(|info| info.origin) })
            .await?;
        Ok(origin)
    }

    /// The underlying HTTP client (for raw exchanges, e.g. the load generator's).
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// `GET path`; a 404 is `None`, any other error answer a refusal.
    async fn get_found(&self, path: &str) -> Result<Option<HttpResponse>, ClientError> {
        let response = self.http.get(path).await?;
        match response.status {
            StatusCode::NOT_FOUND => Ok(None),
            status if status.is_success() => Ok(Some(response)),
            status => Err(refused(status.as_u16(), &response.body)),
        }
    }

    /// `GET path` of a JSON answer.
    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let response = success(self.http.get(path).await?)?;
        read_json(path, &response.body)
    }
}

/// The answer if it is a success, else the refusal it carries.
fn success(response: HttpResponse) -> Result<HttpResponse, ClientError> {
    if response.status.is_success() {
        Ok(response)
    } else {
        Err(refused(response.status.as_u16(), &response.body))
    }
}

fn read_json<T: DeserializeOwned>(path: &str, body: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(body).map_err(|e| ClientError::Unreadable {
        route: path.to_string(),
        reason: e.to_string(),
    })
}

/// The part of `GET /v1/catalog/entries/<id>` a client needs.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntryAnswer {
    leaf_indices: Vec<u64>,
}

impl Authority for HttpAuthority {
    fn submit<'a>(&'a self, kind: SubmissionKind, envelope: &'a Envelope) -> Reply<'a, Receipted> {
        Box::pin(async move {
            let body = Bytes::from(envelope.to_json());
            let route = submission_route(kind);
            let response = success(self.http.post(route, "application/json", body).await?)?;
            Ok(Receipted {
                receipt: Receipt::from_json(&response.body)?,
                duplicate: response.status == StatusCode::OK,
            })
        })
    }

    fn put_blob<'a>(
        &'a self,
        uploader: &'a Signer,
        sha256_hex: &'a str,
        bytes: Vec<u8>,
    ) -> Reply<'a, BlobPut> {
        Box::pin(async move {
            let origin = self.origin().await?;
            let intent = upload_intent(uploader, origin, sha256_hex, bytes.len() as u64);
            let path = routes::blob(sha256_hex);
            let headers = [(BLOB_INTENT_HEADER, intent.as_str())];
            let response = self
                .http
                .put_with(&path, "application/octet-stream", &headers, bytes.into())
                .await?;
            match response.status {
                StatusCode::CREATED => Ok(BlobPut::Created),
                StatusCode::OK => Ok(BlobPut::Held),
                status => Err(refused(status.as_u16(), &response.body)),
            }
        })
    }

    fn blob<'a>(&'a self, sha256_hex: &'a str) -> Reply<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let found = self.get_found(&routes::blob(sha256_hex)).await?;
            Ok(found.map(|r| r.body.to_vec()))
        })
    }

    fn policy(&self) -> Reply<'_, PolicyInForce> {
        Box::pin(self.get_json(routes::POLICY))
    }

    fn entry_index<'a>(&'a self, id: &'a str) -> Reply<'a, Option<u64>> {
        Box::pin(async move {
            let path = routes::entry(id);
            let Some(response) = self.get_found(&path).await? else {
                return Ok(None);
            };
            let answer: EntryAnswer = read_json(&path, &response.body)?;
            Ok(answer.leaf_indices.first().copied())
        })
    }

    fn log_info(&self) -> Reply<'_, LogInfo> {
        Box::pin(self.get_json(routes::LOG_INFO))
    }

    fn checkpoint(&self) -> Reply<'_, Vec<u8>> {
        Box::pin(async move {
            let response = success(self.http.get(routes::CHECKPOINT).await?)?;
            Ok(response.body.to_vec())
        })
    }
}
