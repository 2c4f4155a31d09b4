//! Serving a router to the open internet: the connection limits every server of the crate
//! (the catalog API and the witness) needs so that slow, idle or greedy clients cannot
//! hold its sockets, file descriptors or workers.
//!
//! - hyper's header-read timeout: a request head must arrive within it. hyper starts the
//!   timer whenever it waits for a head, so it also closes keep-alive connections that
//!   sit idle between requests (the idle timeout) and connections that never send a byte;
//! - tower-http's request body timeout: a body that stalls is cut;
//! - a write timeout on the socket (tokio-io-timeout): a client that stops reading its
//!   answer (a blob download, a large tile) is disconnected once a write has waited that
//!   long, so it cannot hold a download slot or a connection slot for ever;
//! - a cap on open connections (a semaphore around `accept`; beyond it new connections
//!   wait in the kernel's backlog), kept below the descriptor limit so a flood of sockets
//!   can never leave the log without descriptors for its own files;
//! - per client IP: at most N requests in flight and a token-bucket rate (governor),
//!   both answered with 429 and `Retry-After`. The client is the peer, or, for a peer
//!   that is a configured trusted proxy, the address its `Forwarded` header names
//!   ([`super::forwarded`]; a malformed one from a trusted proxy is answered with 400);
//!   handlers find it as the request's [`ClientAddr`] extension;
//! - shutdown within a deadline: stop accepting, let requests in flight finish, then
//!   close what is left when the deadline expires.
//!
//! May import only [`super::problem`] and [`super::forwarded`].

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_io_timeout::TimeoutStream;
use tower::ServiceExt as _;
use tower_http::timeout::RequestBodyTimeoutLayer;

use super::forwarded::{client_address, ClientAddr, TrustedProxies};
use super::problem::Problem;

/// Descriptors kept free for the server's own files (tiles, records, blobs, the state
/// store) whatever the connection cap says.
pub const FD_RESERVE: u64 = 64;

/// The connection limits of one server (see the module comment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLimits {
    /// Longest wait for a complete request head, and so also the longest a keep-alive
    /// connection may stay idle between requests.
    pub header_timeout: Duration,
    /// Longest wait for a request body to arrive in full.
    pub body_timeout: Duration,
    /// Longest a write to the client may wait (the client reads nothing): the connection
    /// is then closed, and the answer's resources (a download slot) freed.
    pub write_timeout: Duration,
    /// Most connections open at once (further ones wait to be accepted). It is lowered
    /// to stay [`FD_RESERVE`] below the descriptor limit.
    pub max_connections: usize,
    /// Most requests in flight per client IP (429 above; 0: no limit).
    pub per_ip_concurrency: usize,
    /// Requests per second per client IP, sustained (429 above; 0: no limit).
    pub per_ip_rate: u32,
    /// Requests a client IP may send at once before the sustained rate applies.
    pub per_ip_burst: u32,
    /// Apply the per-IP limits to loopback clients too (off by default: on loopback the
    /// client is the operator, or a reverse proxy that carries its own limits).
    pub limit_loopback: bool,
    /// The peers whose `Forwarded` header names the client (none by default).
    pub trusted_proxies: TrustedProxies,
    /// After a shutdown signal, how long requests in flight may take before the
    /// remaining connections are closed.
    pub shutdown_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            max_connections: 1024,
            per_ip_concurrency: 64,
            per_ip_rate: 200,
            per_ip_burst: 400,
            limit_loopback: false,
            trusted_proxies: TrustedProxies::default(),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// The connection cap actually applied: `wanted`, lowered so that the connections and
/// [`FD_RESERVE`] descriptors fit in `fd_limit` (at least 1).
pub fn connection_cap(wanted: usize, fd_limit: u64) -> usize {
    let room = fd_limit.saturating_sub(FD_RESERVE).max(1);
    usize::try_from(room)
        .map_or(wanted, |room| wanted.min(room))
        .max(1)
}

/// Raises the soft limit on open descriptors to the hard limit; returns the soft limit
/// now in force (`None` when unlimited or unknown).
pub fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(error = %e, "could not raise the descriptor limit");
        }
    }
    getrlimit(Resource::Nofile).current
}

/// Per-client-IP limits: requests in flight and a token-bucket rate.
struct PerIp {
    concurrency: usize,
    rate: Option<(u32, DefaultKeyedRateLimiter<IpAddr>)>,
    loopback_too: bool,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// Releases one in-flight slot of an IP when dropped.
struct Slot {
    per_ip: Arc<PerIp>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut counts) = self.per_ip.counts.lock() {
            if let Some(n) = counts.get_mut(&self.ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    counts.remove(&self.ip);
                }
            }
        }
    }
}

impl PerIp {
    fn new(limits: &ServerLimits) -> PerIp {
        let rate = NonZeroU32::new(limits.per_ip_rate).map(|rate| {
            let burst = NonZeroU32::new(limits.per_ip_burst).unwrap_or(rate);
            let quota = Quota::per_second(rate).allow_burst(burst);
            (rate.get(), RateLimiter::keyed(quota))
        });
        PerIp {
            concurrency: limits.per_ip_concurrency,
            rate,
            loopback_too: limits.limit_loopback,
            counts: Mutex::default(),
        }
    }

    /// Takes a slot for one request from `ip`, or says why not (the 429).
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Option<Slot>, Refusal> {
        if ip.is_loopback() && !self.loopback_too {
            return Ok(None);
        }
        if let Some((rate, limiter)) = &self.rate {
            if let Err(not_until) = limiter.check_key(&ip) {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                return Err(Refusal {
                    retry_after: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
                    detail: format!("at most {rate} requests per second per client address"),
                });
            }
        }
        if self.concurrency == 0 {
            return Ok(None);
        }
        let busy = || Refusal {
            retry_after: 1,
            detail: format!(
                "at most {} requests in flight per client address",
                self.concurrency
            ),
        };
        let mut counts = self.counts.lock().map_err(|_| busy())?;
        let n = counts.entry(ip).or_insert(0);
        if *n >= self.concurrency {
            return Err(busy());
        }
        *n += 1;
        Ok(Some(Slot {
            per_ip: self.clone(),
            ip,
        }))
    }
}

/// Why a client's request is refused with 429.
#[derive(Debug)]
struct Refusal {
    /// Seconds until it may try again.
    retry_after: u64,
    /// Which limit it exceeded.
    detail: String,
}

/// The 429 answer, with `Retry-After` in whole seconds (at least 1).
pub fn too_many_requests(retry_after_secs: u64, detail: impl Into<String>) -> Response {
    let mut response = Problem::new(
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        "too-many-requests",
        "Too many requests",
        detail,
    )
    .into_response();
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        retry_after_secs.max(1).into(),
    );
    response
}

/// Finds the request's client ([`client_address`]) and records it as its [`ClientAddr`];
/// a trusted proxy's malformed `Forwarded` header is answered with 400.
async fn resolve_client(
    trusted: Arc<TrustedProxies>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(peer) = peer {
        match client_address(peer, request.headers(), &trusted) {
            Ok(client) => {
                request.extensions_mut().insert(ClientAddr(client));
            }
            Err(e) => {
                return Problem::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    "bad-forwarded",
                    "Malformed Forwarded header",
                    format!("{e} (from a trusted proxy, RFC 7239)"),
                )
                .into_response()
            }
        }
    }
    next.run(request).await
}

async fn limit_per_ip(per_ip: Arc<PerIp>, request: Request, next: Next) -> Response {
    let ip = request.extensions().get::<ClientAddr>().map(|c| c.0);
    let _slot = match ip.map(|ip| per_ip.admit(ip)) {
        Some(Err(refusal)) => return too_many_requests(refusal.retry_after, refusal.detail),
        Some(Ok(slot)) => slot,
        None => None,
    };
    next.run(request).await
}

/// `router` with the per-request limits of `limits`: the body timeout and the per-IP
/// concurrency and rate, keyed on each request's client (the [`ClientAddr`] it records
/// for the handlers too). The router must see each request's `ConnectInfo<SocketAddr>`
/// ([`serve`] inserts it). Call it inside a Tokio runtime (it starts the task that
/// forgets quiet clients).
pub fn with_request_limits(router: Router, limits: &ServerLimits) -> Router {
    let router = router.layer(RequestBodyTimeoutLayer::new(limits.body_timeout));
    let router = with_per_ip_limits(router, limits);
    let trusted = Arc::new(limits.trusted_proxies.clone());
    // The outermost layer: the per-IP limits and the handlers see the client it found.
    router.layer(axum::middleware::from_fn(
        move |request: Request, next: Next| resolve_client(trusted.clone(), request, next),
    ))
}

/// `router` with the per-IP concurrency and rate of `limits`, if any.
fn with_per_ip_limits(router: Router, limits: &ServerLimits) -> Router {
    if limits.per_ip_rate == 0 && limits.per_ip_concurrency == 0 {
        return router;
    }
    let per_ip = Arc::new(PerIp::new(limits));
    if per_ip.rate.is_some() {
        let weak = Arc::downgrade(&per_ip);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                let Some(per_ip) = weak.upgrade() else { break };
                if let Some((_, limiter)) = &per_ip.rate {
                    limiter.retain_recent();
                }
            }
        });
    }
    router.layer(axum::middleware::from_fn(
        move |request: Request, next: Next| limit_per_ip(per_ip.clone(), request, next),
    ))
}

/// Serves `router` on `listener` under `limits` until `shutdown` resolves; then stops
/// accepting, lets requests in flight finish for at most `limits.shutdown_timeout`, and
/// closes what is left. The router should already carry [`with_request_limits`].
pub async fn serve(
    router: Router,
    listener: tokio::net::TcpListener,
    limits: &ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let cap = match raise_fd_limit() {
        Some(fds) => connection_cap(limits.max_connections, fds),
        None => limits.max_connections,
    };
    let slots = Arc::new(Semaphore::new(cap));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // A client that sends its request and then shuts its side still gets the answer.
        .half_close(true);
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, remote) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // EMFILE/ENFILE and aborted handshakes: wait a little, keep serving.
                    tracing::warn!(error = %e, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = tower::service_fn(move |mut request: Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(remote));
            router.clone().oneshot(request.map(axum::body::Body::new))
        });
        let mut stream = TimeoutStream::new(stream);
        stream.set_write_timeout(Some(limits.write_timeout));
        let connection = builder.serve_connection(
            TokioIo::new(Box::pin(stream)),
            TowerToHyperService::new(service),
        );
        let connection = graceful.watch(connection);
        connections.spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %remote, "connection ended");
            }
            drop(permit);
        });
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    tracing::info!(
        open = connections.len(),
        "stopped accepting; finishing requests in flight"
    );
    if tokio::time::timeout(limits.shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "shutdown deadline reached: closing the remaining connections"
        );
    }
    connections.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_cap_stays_below_the_descriptor_limit() {
        for (wanted, fds, cap) in [
            (1024, 1_048_576, 1024),
            (1024, 256, 192),
            (1024, 1024 + FD_RESERVE, 1024),
            (10, 256, 10),
            (1024, 10, 1),
            (0, 256, 1),
        ] {
            assert_eq!(connection_cap(wanted, fds), cap, "{wanted} {fds}");
        }
    }

    #[test]
    fn per_ip_limits_count_each_ip_and_spare_loopback() {
        let limits = ServerLimits {
            per_ip_concurrency: 2,
            per_ip_rate: 1000,
            per_ip_burst: 1000,
            ..ServerLimits::default()
        };
        let per_ip = Arc::new(PerIp::new(&limits));
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let first = per_ip.admit(a).ok().flatten();
        let second = per_ip.admit(a).ok().flatten();
        assert!(first.is_some() && second.is_some());
        assert!(per_ip.admit(a).is_err());
        assert!(per_ip.admit(b).is_ok());
        assert!(per_ip.admit(IpAddr::from([127, 0, 0, 1])).is_ok());
        drop(first);
        assert!(per_ip.admit(a).is_ok());
        drop(second);
        assert!(per_ip.counts.lock().unwrap().get(&a).is_none());
    }

    #[test]
    fn the_rate_is_enforced_with_retry_after() {
        let limits = ServerLimits {
            per_ip_concurrency: 0,
            per_ip_rate: 1,
            per_ip_burst: 2,
            limit_loopback: true,
            ..ServerLimits::default()
        };
        let per_ip = Arc::new(PerIp::new(&limits));
        let ip: IpAddr = [127, 0, 0, 1].into();
        assert!(per_ip.admit(ip).is_ok());
        assert!(per_ip.admit(ip).is_ok());
        let refused = per_ip.admit(ip).err().expect("third request refused");
        assert_eq!(refused.retry_after, 1);
        let answer = too_many_requests(refused.retry_after, refused.detail);
        assert_eq!(answer.status().as_u16(), 429);
        assert_eq!(answer.headers()["retry-after"], "1");
    }
}
