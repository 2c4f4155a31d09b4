//! Who the client is when a request came through a proxy (a frontend passing a
//! submission to the sequencer, or an operator's reverse proxy): the RFC 7239
//! `Forwarded` header, believed only from a configured trusted proxy.
//!
//! - [`client_address`]: the peer's address, unless the peer is a trusted proxy that sent
//!   `Forwarded`; then the `for=` of the last element (the one the nearest proxy added),
//!   and on leftwards while that address is itself a trusted proxy. A `for=` that is
//!   `unknown`, obfuscated (`_name`) or absent ends the walk at the proxy that sent it.
//!   From an untrusted peer the header is ignored, so a client cannot choose its own key
//!   for the per-client limits. From a trusted one, a header that does not follow the
//!   RFC's grammar is an error (the server answers 400): a proxy that sends garbage is
//!   misconfigured, and guessing would key the limits on something it did not mean.
//! - [`forwarded_for`]: the header a proxy of this crate sends, replacing what its
//!   client sent (never appending to it).
//! - [`parse_proxy`]: a trusted proxy as an address or a CIDR block.
//!
//! Accepted beyond the RFC's strict grammar, as common proxies write it: optional
//! whitespace around `,` and `;`, empty list elements, and parameter names in any case.
//!
//! May import nothing of the crate.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use axum::http::header::FORWARDED;
use axum::http::{HeaderMap, HeaderValue};
use ipnet::IpNet;

/// The client a request is attributed to, after [`client_address`]: what the per-client
/// limits count, and what a frontend forwards in `Forwarded: for=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// The proxies whose `Forwarded` header is believed (none by default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Trusts every address in `nets`.
    pub fn new(nets: Vec<IpNet>) -> TrustedProxies {
        TrustedProxies(nets)
    }

    /// Whether `ip` is a trusted proxy (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// A `--trusted-proxy` value that is neither an address nor a CIDR block.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP address or a CIDR block (10.0.0.5, 10.0.0.0/8, fd00::/8)")]
pub struct ProxyError(String);

/// A trusted proxy: one address, or a CIDR block (host bits set are refused, since they
/// usually mean a mistyped prefix length).
pub fn parse_proxy(text: &str) -> Result<IpNet, ProxyError> {
    let refused = || ProxyError(text.to_string());
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(IpNet::from(ip.to_canonical()));
    }
    let net: IpNet = text.parse().map_err(|_| refused())?;
    if net.trunc() != net {
        return Err(refused());
    }
    Ok(net)
}

/// Why a trusted proxy's `Forwarded` header was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ForwardedError {
    /// The header holds bytes other than visible ASCII, space and tab.
    #[error("the Forwarded header is not ASCII text")]
    NotText,
    /// Something other than what the grammar allows at a position.
    #[error("the Forwarded header has {found} at byte {at} where {expected} was expected")]
    Unexpected {
        /// Byte offset in the header (values of several headers joined by ", ").
        at: usize,
        /// What is there (a quoted character, or "the end").
        found: String,
        /// What the grammar allows there.
        expected: &'static str,
    },
    /// A quoted string is not closed.
    #[error("the Forwarded header has an unterminated quoted string at byte {0}")]
    Unterminated(usize),
    /// A parameter appears twice in one element (RFC 7239 section 4).
    #[error("the Forwarded header names {0:?} twice in one element")]
    Repeated(String),
    /// A `for=` or `by=` value is not a node.
    #[error(
        "the Forwarded header's {param}={value:?} is not an IPv4 address, a bracketed \
         IPv6 address, \"unknown\" or an obfuscated _name, with an optional port"
    )]
    BadNode {
        /// `for` or `by`.
        param: String,
        /// The value, unquoted.
        value: String,
    },
}

/// A `for=` or `by=` value (RFC 7239 section 6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// An address (its port, if any, dropped).
    Ip(IpAddr),
    /// `unknown`, or an obfuscated identifier: no address.
    Hidden,
}

/// One element of the list: the `for=` node, if the element has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// The node the element says the request came from.
    pub for_node: Option<Node>,
}

/// The client of a request from `peer` (see the module documentation).
pub fn client_address(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> Result<IpAddr, ForwardedError> {
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        return Ok(peer);
    }
    let mut text = String::new();
    for value in headers.get_all(FORWARDED) {
        let value = value.to_str().map_err(|_| ForwardedError::NotText)?;
        if !text.is_empty() {
            text.push_str(", ");
        }
        text.push_str(value);
    }
    let mut client = peer;
    for element in parse(&text)?.iter().rev() {
        match element.for_node {
            Some(Node::Ip(ip)) => client = ip.to_canonical(),
            _ => break,
        }
        if !trusted.contains(client) {
            break;
        }
    }
    Ok(client)
}

/// `Forwarded: for=…` naming `client`, as a proxy of this crate sends it.
pub fn forwarded_for(client: IpAddr) -> HeaderValue {
    let text = match client.to_canonical() {
        IpAddr::V4(ip) => format!("for={ip}"),
        IpAddr::V6(ip) => format!("for=\"[{ip}]\""),
    };
    // Digits, dots, colons, brackets and quotes only: always a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("for=unknown"))
}

/// The elements of a `Forwarded` list (RFC 7239 section 4, with the leniencies the
/// module documentation lists).
pub fn parse(text: &str) -> Result<Vec<Element>, ForwardedError> {
    let mut cursor = Cursor {
        bytes: text.as_bytes(),
        at: 0,
    };
    let mut elements = Vec::new();
    loop {
        cursor.skip_space();
        match cursor.peek() {
            None => return Ok(elements),
            Some(b',') => {
                cursor.at += 1;
                continue;
            }
            Some(_) => {}
        }
        elements.push(element(&mut cursor)?);
        cursor.skip_space();
        match cursor.peek() {
            None => return Ok(elements),
            Some(b',') => cursor.at += 1,
            Some(_) => return Err(cursor.unexpected("\",\" or the end")),
        }
    }
}

/// One element: `pair *( ";" [pair] )`, up to the next `,` or the end.
fn element(cursor: &mut Cursor<'_>) -> Result<Element, ForwardedError> {
    let mut seen: Vec<String> = Vec::new();
    let mut for_node = None;
    loop {
        cursor.skip_space();
        if matches!(cursor.peek(), Some(b';')) {
            cursor.at += 1;
            continue;
        }
        if matches!(cursor.peek(), None | Some(b',')) {
            return Ok(Element { for_node });
        }
        let name = cursor.token("a parameter name")?.to_ascii_lowercase();
        if cursor.peek() != Some(b'=') {
            return Err(cursor.unexpected("\"=\""));
        }
        cursor.at += 1;
        let value = cursor.value()?;
        cursor.skip_space();
        let last = match cursor.peek() {
            None | Some(b',') => true,
            Some(b';') => false,
            Some(b':') => {
                return Err(cursor
                    .unexpected("\";\", \",\" or the end (a value with \":\" must be quoted)"))
            }
            Some(_) => return Err(cursor.unexpected("\";\", \",\" or the end")),
        };
        if seen.contains(&name) {
            return Err(ForwardedError::Repeated(name));
        }
        if name == "for" || name == "by" {
            let node = node(&value).ok_or_else(|| ForwardedError::BadNode {
                param: name.clone(),
                value: value.clone(),
            })?;
            if name == "for" {
                for_node = Some(node);
            }
        }
        seen.push(name);
        if last {
            return Ok(Element { for_node });
        }
        cursor.at += 1;
    }
}

/// A node: `nodename [ ":" node-port ]` (RFC 7239 section 6).
fn node(value: &str) -> Option<Node> {
    let (name, port) = if let Some(rest) = value.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let ip: Ipv6Addr = inside.parse().ok()?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (Node::Ip(IpAddr::V6(ip)), port)
    } else {
        let (name, port) = match value.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (value, None),
        };
        let node = if name.eq_ignore_ascii_case("unknown") || obfuscated(name) {
            Node::Hidden
        } else {
            Node::Ip(IpAddr::V4(name.parse::<Ipv4Addr>().ok()?))
        };
        (node, port)
    };
    match port {
        None => Some(name),
        Some(p) if (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(name)
        }
        Some(p) if obfuscated(p) => Some(name),
        Some(_) => None,
    }
}

/// `"_" 1*( ALPHA / DIGIT / "." / "_" / "-" )`.
fn obfuscated(text: &str) -> bool {
    text.strip_prefix('_').is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    })
}

/// A position in the header being parsed.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    fn unexpected(&self, expected: &'static str) -> ForwardedError {
        ForwardedError::Unexpected {
            at: self.at,
            found: match self.peek() {
                Some(b) => format!("{:?}", char::from(b)),
                None => "the end".into(),
            },
            expected,
        }
    }

    /// `1*tchar` (RFC 9110 section 5.6.2).
    fn token(&mut self, expected: &'static str) -> Result<String, ForwardedError> {
        let start = self.at;
        while self.peek().is_some_and(is_tchar) {
            self.at += 1;
        }
        if self.at == start {
            return Err(self.unexpected(expected));
        }
        Ok(String::from_utf8_lossy(&self.bytes[start..self.at]).into_owned())
    }

    /// `token / quoted-string`, unquoted.
    fn value(&mut self) -> Result<String, ForwardedError> {
        if self.peek() != Some(b'"') {
            return self.token("a value (a token or a quoted string)");
        }
        let start = self.at;
        self.at += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(ForwardedError::Unterminated(start)),
                Some(b'"') => {
                    self.at += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                Some(b'\\') => {
                    self.at += 1;
                    match self.peek() {
                        Some(b) if b == b'\t' || (b' '..=b'~').contains(&b) => out.push(b),
                        _ => return Err(self.unexpected("a quoted character")),
                    }
                    self.at += 1;
                }
                Some(b) if b == b'\t' || (b' '..=b'~').contains(&b) => {
                    out.push(b);
                    self.at += 1;
                }
                Some(_) => return Err(self.unexpected("a character of a quoted string")),
            }
        }
    }
}

/// A token character (RFC 9110 section 5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn fors(text: &str) -> Result<Vec<Option<Node>>, ForwardedError> {
        parse(text).map(|elements| elements.into_iter().map(|e| e.for_node).collect())
    }

    #[test]
    fn well_formed_headers_parse() {
        let at = |s: &str| Some(Node::Ip(ip(s)));
        for (text, want) in [
            ("", vec![]),
            ("for=192.0.2.60", vec![at("192.0.2.60")]),
            ("For=\"192.0.2.60:47011\"", vec![at("192.0.2.60")]),
            ("for=\"[2001:db8:cafe::17]\"", vec![at("2001:db8:cafe::17")]),
            (
                "for=\"[2001:db8:cafe::17]:4711\"",
                vec![at("2001:db8:cafe::17")],
            ),
            (
                "for=192.0.2.43, for=198.51.100.17",
                vec![at("192.0.2.43"), at("198.51.100.17")],
            ),
            (
                "for=192.0.2.60;proto=http;by=203.0.113.43",
                vec![at("192.0.2.60")],
            ),
            (
                "for=192.0.2.60; proto=https ; host=\"a,b\"",
                vec![at("192.0.2.60")],
            ),
            ("proto=https", vec![None]),
            ("for=unknown", vec![Some(Node::Hidden)]),
            ("for=_hidden, for=_SEVKISEK", vec![Some(Node::Hidden); 2]),
            ("for=\"_gazonk:_port\"", vec![Some(Node::Hidden)]),
            (", ,for=10.0.0.1,,", vec![at("10.0.0.1")]),
            ("for=\"10.0.0\\.1\"", vec![at("10.0.0.1")]),
            (";for=10.0.0.1;", vec![at("10.0.0.1")]),
        ] {
            assert_eq!(fors(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn malformed_headers_are_refused_precisely() {
        let unexpected = |at: usize, found: &str, expected: &'static str| {
            Err(ForwardedError::Unexpected {
                at,
                found: found.into(),
                expected,
            })
        };
        let bad_for = |value: &str| {
            Err(ForwardedError::BadNode {
                param: "for".into(),
                value: value.into(),
            })
        };
        for (text, want) in [
            ("for", unexpected(3, "the end", "\"=\"")),
            (
                "for=",
                unexpected(4, "the end", "a value (a token or a quoted string)"),
            ),
            ("=1.2.3.4", unexpected(0, "'='", "a parameter name")),
            (
                "for=2001:db8::1",
                unexpected(
                    8,
                    "':'",
                    "\";\", \",\" or the end (a value with \":\" must be quoted)",
                ),
            ),
            (
                "for=1.2.3.4 x",
                unexpected(12, "'x'", "\";\", \",\" or the end"),
            ),
            ("for=\"1.2.3.4", Err(ForwardedError::Unterminated(4))),
            (
                "for=1.2.3.4;For=5.6.7.8",
                Err(ForwardedError::Repeated("for".into())),
            ),
            ("for=example.com", bad_for("example.com")),
            ("for=1.2.3.256", bad_for("1.2.3.256")),
            ("for=01.2.3.4", bad_for("01.2.3.4")),
            ("for=\"1.2.3.4:123456\"", bad_for("1.2.3.4:123456")),
            ("for=\"1.2.3.4:\"", bad_for("1.2.3.4:")),
            ("for=\"[::1\"", bad_for("[::1")),
            ("for=\"[::1]x\"", bad_for("[::1]x")),
            ("for=\"[1.2.3.4]\"", bad_for("[1.2.3.4]")),
            ("for=_", bad_for("_")),
            (
                "by=nowhere",
                Err(ForwardedError::BadNode {
                    param: "by".into(),
                    value: "nowhere".into(),
                }),
            ),
        ] {
            assert_eq!(fors(text), want, "{text}");
        }
    }

    #[test]
    fn only_trusted_peers_are_believed() {
        let trusted = TrustedProxies::new(vec![
            parse_proxy("10.0.0.0/8").unwrap(),
            parse_proxy("192.0.2.1").unwrap(),
        ]);
        let headers = |values: &[&str]| {
            let mut map = HeaderMap::new();
            for v in values {
                map.append(FORWARDED, HeaderValue::from_str(v).unwrap());
            }
            map
        };
        for (peer, values, want) in [
            // An untrusted peer: its header, even malformed, is ignored.
            ("203.0.113.9", &["for=198.51.100.1"][..], Ok("203.0.113.9")),
            ("203.0.113.9", &["for=garbage"][..], Ok("203.0.113.9")),
            // A trusted peer without a header is the client.
            ("10.1.2.3", &[][..], Ok("10.1.2.3")),
            ("10.1.2.3", &["for=198.51.100.1"][..], Ok("198.51.100.1")),
            (
                "::ffff:10.1.2.3",
                &["for=198.51.100.1"][..],
                Ok("198.51.100.1"),
            ),
            (
                "192.0.2.1",
                &["for=\"[2001:db8::5]:80\""][..],
                Ok("2001:db8::5"),
            ),
            // The nearest proxy's element counts; trusted hops are walked past.
            (
                "10.1.2.3",
                &["for=198.51.100.7, for=198.51.100.1"][..],
                Ok("198.51.100.1"),
            ),
            (
                "10.1.2.3",
                &["for=198.51.100.7", "for=10.9.9.9"][..],
                Ok("198.51.100.7"),
            ),
            (
                "10.1.2.3",
                &["for=unknown, for=10.9.9.9"][..],
                Ok("10.9.9.9"),
            ),
            (
                "10.1.2.3",
                &["for=198.51.100.7, for=_x"][..],
                Ok("10.1.2.3"),
            ),
            ("10.1.2.3", &["proto=https"][..], Ok("10.1.2.3")),
            // A trusted peer's malformed header is refused.
            (
                "10.1.2.3",
                &["for=198.51.100.1", "for=1.2.3"][..],
                Err(ForwardedError::BadNode {
                    param: "for".into(),
                    value: "1.2.3".into(),
                }),
            ),
        ] {
            assert_eq!(
                client_address(ip(peer), &headers(values), &trusted),
                want.map(ip),
                "{peer} {values:?}"
            );
        }
        let mut not_text = HeaderMap::new();
        not_text.insert(FORWARDED, HeaderValue::from_bytes(b"for=\xff").unwrap());
        assert_eq!(
            client_address(ip("10.0.0.1"), &not_text, &trusted),
            Err(ForwardedError::NotText)
        );
        // Nothing is trusted by default.
        assert_eq!(
            client_address(
                ip("10.1.2.3"),
                &headers(&["for=1.1.1.1"]),
                &TrustedProxies::default()
            ),
            Ok(ip("10.1.2.3"))
        );
    }

    #[test]
    fn what_a_proxy_sends_parses_back() {
        for client in ["198.51.100.1", "2001:db8::1", "::ffff:192.0.2.9", "::1"] {
            let value = forwarded_for(ip(client));
            let parsed = parse(value.to_str().unwrap()).unwrap();
            assert_eq!(
                parsed,
                vec![Element {
                    for_node: Some(Node::Ip(ip(client).to_canonical()))
                }],
                "{client}"
            );
        }
    }

    #[test]
    fn trusted_proxies_are_addresses_or_blocks() {
        for (text, ok) in [
            ("10.0.0.5", true),
            ("10.0.0.0/8", true),
            ("fd00::/8", true),
            ("::1", true),
            ("::ffff:10.0.0.5", true),
            ("10.0.0.5/8", false),
            ("10.0.0.0/33", false),
            ("localhost", false),
            ("", false),
        ] {
            assert_eq!(parse_proxy(text).is_ok(), ok, "{text}");
        }
        let mapped = TrustedProxies::new(vec![parse_proxy("::ffff:10.0.0.5").unwrap()]);
        assert!(mapped.contains(ip("10.0.0.5")));
    }
}
