//! A minimal HTTP/1.1 client (hyper), bound to one base URL: the catalog client, the
//! monitor, the load generator and the log's witness workers all talk through it.
//!
//! Owns transport and the response size limit; imports nothing of the crate.

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::time::Duration;

/// Largest response body a client reads (tiles and receipts are far smaller).
pub const MAX_RESPONSE_BYTES: usize = 16 << 20;

/// An HTTP exchange failed before an answer was read.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL is not usable.
    #[error("bad URL {url:?}: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// Connecting, sending or receiving failed.
    #[error("{url}: {reason}")]
    Transport {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
}

/// A status and body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// HTTP status.
    pub status: StatusCode,
    /// Content-Type, if any.
    pub content_type: Option<String>,
    /// The body.
    pub body: Bytes,
}

/// How long an idle pooled connection is kept: less than the servers' idle limit.
const POOL_IDLE: Duration = Duration::from_secs(5);

/// A keep-alive HTTP client bound to one server base URL (`http://host:port`).
#[derive(Clone)]
pub struct HttpClient {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl HttpClient {
    /// A client for `base` (e.g. `http://127.0.0.1:8080`); a trailing slash is ignored.
    pub fn new(base: &str) -> Result<HttpClient, HttpError> {
        HttpClient::build(base, None)
    }

    /// A client for `base` whose connections leave from the local address `source`
    /// (the read-load benchmark's readers: a client address of their own, so the
    /// server's per-address limits tell them apart from the publishers).
    pub fn from_source(base: &str, source: std::net::IpAddr) -> Result<HttpClient, HttpError> {
        HttpClient::build(base, Some(source))
    }

    fn build(base: &str, source: Option<std::net::IpAddr>) -> Result<HttpClient, HttpError> {
        let base = base.trim_end_matches('/').to_string();
        if !base.starts_with("http://") {
            return Err(HttpError::Url {
                url: base,
                reason: "only http:// URLs are supported; terminate TLS in a proxy".into(),
            });
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_local_address(source);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(64)
            // Below our servers' idle limit (`ServerLimits::header_timeout`, 10 s): a
            // connection reused just as the server closes it fails the request with
            // "connection closed before message completed", seen in a test whose client
            // paused ~10 s between requests under load.
            .pool_idle_timeout(POOL_IDLE)
            .pool_timer(TokioTimer::new())
            .build(connector);
        Ok(HttpClient { base, client })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET base + path`.
    pub async fn get(&self, path: &str) -> Result<HttpResponse, HttpError> {
        self.send(Method::GET, path, None, &[], Bytes::new()).await
    }

    /// `PUT base + path` with a body.
    pub async fn put(
        &self,
        path: &str,
        content_type: &str,
        body: Bytes,
    ) -> Result<HttpResponse, HttpError> {
        self.send(Method::PUT, path, Some(content_type), &[], body)
            .await
    }

    /// `PUT base + path` with a body and extra request headers.
    pub async fn put_with(
        &self,
        path: &str,
        content_type: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<HttpResponse, HttpError> {
        self.send(Method::PUT, path, Some(content_type), headers, body)
            .await
    }

    /// `POST base + path` with a body.
    pub async fn post(
        &self,
        path: &str,
        content_type: &str,
        body: Bytes,
    ) -> Result<HttpResponse, HttpError> {
        self.send(Method::POST, path, Some(content_type), &[], body)
            .await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<HttpResponse, HttpError> {
        let url = format!("{}{}", self.base, path);
        let mut builder = Request::builder().method(method).uri(&url);
        if let Some(content_type) = content_type {
            builder = builder.header(hyper::header::CONTENT_TYPE, content_type);
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder.body(Full::new(body)).map_err(|e| HttpError::Url {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        let transport = |reason: String| HttpError::Transport {
            url: url.clone(),
            reason,
        };
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| transport(format!("{e:?}")))?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = http_body_util::Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| transport(e.to_string()))?
            .to_bytes();
        Ok(HttpResponse {
            status,
            content_type,
            body,
        })
    }
}
