//! The connection flags shared by `serve` and `witness`: timeouts, the connection cap,
//! per-client limits and the shutdown deadline (see [`crate::http::server`]).

use std::time::Duration;

use clap::Args;

use ipnet::IpNet;

use crate::http::forwarded::{parse_proxy, TrustedProxies};
use crate::http::server::ServerLimits;

/// Connection limits of a server.
#[derive(Debug, Args)]
pub struct ConnectionArgs {
    /// Seconds a client has to send a complete request head; also the longest a
    /// keep-alive connection may stay idle between requests.
    #[arg(long, default_value_t = 10.0, value_parser = seconds)]
    header_timeout: f64,
    /// Seconds a client has to send a request body in full.
    #[arg(long, default_value_t = 30.0, value_parser = seconds)]
    body_timeout: f64,
    /// Seconds a write to a client may wait while the client reads nothing; the
    /// connection is then closed (a stalled download gives back its slot).
    #[arg(long, default_value_t = 30.0, value_parser = seconds)]
    write_timeout: f64,
    /// Most connections open at once (further ones wait to be accepted); lowered to
    /// stay 64 below the descriptor limit.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// Most requests in flight per client IP (429 above; 0: no limit).
    #[arg(long, default_value_t = 64)]
    per_ip_concurrency: usize,
    /// Sustained requests per second per client IP (429 with Retry-After above; 0: no
    /// limit).
    #[arg(long, default_value_t = 200)]
    per_ip_rate: u32,
    /// Requests a client IP may send at once before --per-ip-rate applies.
    #[arg(long, default_value_t = 400)]
    per_ip_burst: u32,
    /// Apply the per-IP limits to loopback clients too (by default they are spared: on
    /// loopback the client is the operator, or a reverse proxy with its own limits).
    #[arg(long)]
    limit_loopback: bool,
    /// A proxy (an address or a CIDR block; repeatable) whose RFC 7239 `Forwarded:
    /// for=` header names the client the per-IP limits count, as a frontend's does.
    /// From any other peer the header is ignored; from a trusted one a malformed header
    /// is answered with 400. Default: none.
    #[arg(long = "trusted-proxy", value_name = "ADDR|CIDR", value_parser = parse_proxy)]
    trusted_proxy: Vec<IpNet>,
    /// Seconds to let requests in flight finish after SIGTERM/SIGINT before closing the
    /// remaining connections.
    #[arg(long, default_value_t = 10.0, value_parser = seconds)]
    shutdown_timeout: f64,
}

/// A number of seconds that is not one.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("{0:?} is not a positive number of seconds")]
struct SecondsError(String);

fn seconds(text: &str) -> Result<f64, SecondsError> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s < 1e9 => Ok(s),
        _ => Err(SecondsError(text.to_string())),
    }
}

impl ConnectionArgs {
    /// The limits these flags ask for.
    pub fn limits(&self) -> ServerLimits {
        ServerLimits {
            header_timeout: Duration::from_secs_f64(self.header_timeout),
            body_timeout: Duration::from_secs_f64(self.body_timeout),
            write_timeout: Duration::from_secs_f64(self.write_timeout),
            max_connections: self.max_connections,
            per_ip_concurrency: self.per_ip_concurrency,
            per_ip_rate: self.per_ip_rate,
            per_ip_burst: self.per_ip_burst,
            limit_loopback: self.limit_loopback,
            trusted_proxies: TrustedProxies::new(self.trusted_proxy.clone()),
            shutdown_timeout: Duration::from_secs_f64(self.shutdown_timeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::seconds;

    #[test]
    fn seconds_are_positive_finite_numbers() {
        assert_eq!(seconds("10"), Ok(10.0));
        assert_eq!(seconds("0.5"), Ok(0.5));
        for bad in ["0", "-1", "NaN", "inf", "1e10", "ten", ""] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
    }
}
