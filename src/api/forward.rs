//! [`Forwarder`]: a frontend's requests passed on to the sequencer that holds the lease,
//! at the URL it advertised, and its answer passed back (ADR 0004 "Frontends").
//!
//! Its one job is the hop, bounded: at most `concurrency` requests in flight, each given
//! up after `timeout` (until the answer's head arrives), bodies the caller has already
//! capped. When no live holder is known, the holder is this process itself (it is
//! taking over), the cap is reached, or the holder cannot be reached in time, the answer
//! is 503 with `Retry-After`: a resubmission is deduplicated by the sequencer, so
//! retrying is always safe. The holder's own answers (a fenced holder's 503 included)
//! are passed on unchanged.
//!
//! The holder learns who the client is from `Forwarded: for=` (RFC 7239), set here from
//! the client this server found ([`ClientAddr`], itself behind the operator's own trusted
//! proxies, if any) and replacing whatever the client sent, so a client cannot choose
//! the address the holder's per-client limits count; the holder believes it only from
//! the proxies it trusts (`--trusted-proxy`, `http::forwarded`).
//!
//! May import `http` (problem+json, the client address) and the blob intent header's name from `catalog`;
//! nothing of the log.

use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Semaphore;

use crate::http::forwarded::forwarded_for;
use crate::http::Problem;

/// How a frontend forwards.
#[derive(Debug, Clone)]
pub struct ForwardLimits {
    /// Longest wait for the holder's answer (its status and headers).
    pub timeout: Duration,
    /// Most forwarded requests in flight at once.
    pub concurrency: usize,
}

impl Default for ForwardLimits {
    fn default() -> Self {
        ForwardLimits {
            timeout: Duration::from_secs(30),
            concurrency: 256,
        }
    }
}

/// Request headers passed on to the holder (the rest are hop-by-hop, or the frontend's;
/// `Forwarded` is this server's own, never the client's):
/// `Content-Length` lets the holder refuse an oversized upload before reading it, and
/// `Blob-Intent` carries an evidence upload's signed intent.
const PASSED_ON: [&str; 6] = [
    "content-type",
    "content-length",
    "accept",
    "accept-encoding",
    "if-none-match",
    crate::catalog::BLOB_INTENT_HEADER,
];

/// Response headers passed back to the client, the holder's safety headers on evidence
/// downloads (`X-Content-Type-Options`, `Content-Security-Policy`) included.
const PASSED_BACK: [header::HeaderName; 10] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_ENCODING,
    header::CACHE_CONTROL,
    header::RETRY_AFTER,
    header::ETAG,
    header::LOCATION,
    header::VARY,
    header::X_CONTENT_TYPE_OPTIONS,
    header::CONTENT_SECURITY_POLICY,
];

/// Where to forward, and how (see the module documentation).
pub struct Forwarder {
    client: Client<HttpConnector, Body>,
    /// The live holder's base URL (`http://host:port`), if one is known.
    holder: RwLock<Option<String>>,
    /// This process's own advertised URL: never forwarded to.
    own: Option<String>,
    permits: Arc<Semaphore>,
    timeout: Duration,
}

/// The 503 a frontend answers when it cannot forward, with `Retry-After: 1`.
pub fn unavailable(detail: impl Into<String>) -> Response {
    let mut response = Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "Sequencer unavailable",
        detail,
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

impl Forwarder {
    /// A forwarder that never forwards to `own` (this process's advertised URL).
    pub fn new(own: Option<String>, limits: &ForwardLimits) -> Forwarder {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(limits.timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(64)
            .build(connector);
        Forwarder {
            client,
            holder: RwLock::new(None),
            own: own.map(|u| u.trim_end_matches('/').to_string()),
            permits: Arc::new(Semaphore::new(limits.concurrency.max(1))),
            timeout: limits.timeout,
        }
    }

    /// Sets where to forward: the live holder's advertised URL, or `None` (no live
    /// holder, or it advertised none).
    pub fn set_holder(&self, url: Option<&str>) {
        let url = url.map(|u| u.trim_end_matches('/').to_string());
        *self.holder.write().unwrap_or_else(|p| p.into_inner()) = url;
    }

    /// The URL forwarded to now, if any.
    pub fn holder(&self) -> Option<String> {
        self.holder
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Sends `method path_and_query` with `body` (already capped by the caller), the
    /// passed-on `headers` and `Forwarded: for=client` to the holder; its answer, or a
    /// 503 (see the module documentation).
    pub async fn forward(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &HeaderMap,
        client: Option<IpAddr>,
        body: Body,
    ) -> Response {
        let Some(holder) = self.holder() else {
            return unavailable("no sequencer holds the lease now; retry shortly");
        };
        if self.own.as_deref() == Some(holder.as_str()) {
            return unavailable("this server is taking over as the sequencer; retry shortly");
        }
        let Ok(_permit) = self.permits.clone().try_acquire_owned() else {
            return unavailable("too many requests are being forwarded; retry shortly");
        };
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{holder}{path_and_query}"));
        for name in PASSED_ON {
            if let Some(value) = headers.get(name) {
                request = request.header(name, value);
            }
        }
        if let Some(client) = client {
            request = request.header(header::FORWARDED, forwarded_for(client));
        }
        let request = match request.body(body) {
            Ok(request) => request,
            Err(e) => return unavailable(format!("the sequencer's URL is not usable: {e}")),
        };
        let answer = match tokio::time::timeout(self.timeout, self.client.request(request)).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                tracing::debug!(holder = %holder, error = %e, "forwarding to the sequencer");
                return unavailable("the sequencer could not be reached; retry shortly");
            }
            Err(_) => return unavailable("the sequencer did not answer in time; retry shortly"),
        };
        let (parts, incoming) = answer.into_parts();
        let mut response = Response::new(Body::new(incoming));
        *response.status_mut() = parts.status;
        for name in PASSED_BACK {
            if let Some(value) = parts.headers.get(&name) {
                response.headers_mut().insert(name, value.clone());
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a live holder, or when the holder is this process, nothing is sent and
    /// the answer is a 503 with Retry-After.
    #[test]
    fn no_holder_or_self_is_503_with_retry_after() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let forwarder = Forwarder::new(
            Some("http://127.0.0.1:9/".into()),
            &ForwardLimits::default(),
        );
        let cases = [None, Some("http://127.0.0.1:9")];
        for holder in cases {
            forwarder.set_holder(holder);
            let response = rt.block_on(forwarder.forward(
                Method::GET,
                "/v1/catalog/state",
                &HeaderMap::new(),
                None,
                Body::empty(),
            ));
            assert_eq!(
                response.status(),
                StatusCode::SERVICE_UNAVAILABLE,
                "{holder:?}"
            );
            assert_eq!(
                response.headers().get(header::RETRY_AFTER),
                Some(&HeaderValue::from_static("1"))
            );
        }
    }
}
