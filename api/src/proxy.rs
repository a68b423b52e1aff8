//! Who a request really comes from. Behind a reverse proxy or a load balancer every TCP peer is
//! the proxy; when (and only when) the peer is one of `INCUBASE_TRUSTED_PROXIES`, the client's
//! address is read from `Forwarded` (RFC 7239) or, without it, `X-Forwarded-For`: the
//! rightmost address that is not itself a trusted proxy, since everything left of it was
//! written by whoever sent the request and may be made up. The scheme comes from the same
//! `Forwarded` element's `proto`, or `X-Forwarded-Proto`. From any other peer these headers
//! are ignored, so a client cannot choose the address its rate limits count under.
//!
//! The resolved [`Client`] is put in the request's extensions by [`ResolveClient`], and every
//! request is logged inside a span carrying it.
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use ipnet::IpNet;
use poem::http::HeaderMap;
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};
use tracing::Instrument;

/// The addresses and networks whose forwarding headers are believed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// `10.0.0.5, 10.1.0.0/16, ::1`: addresses and CIDR networks, separated by commas or spaces.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for part in raw.split([',', ' ']).map(str::trim).filter(|p| !p.is_empty()) {
            let net = match IpNet::from_str(part) {
                Ok(net) => net.trunc(),
                Err(_) => match IpAddr::from_str(part) {
                    Ok(ip) => IpNet::from(canonical(ip)),
                    Err(_) => return Err(format!("{part:?} is neither an address nor a CIDR network (10.0.0.0/8)")),
                },
            };
            nets.push(net);
        }
        Ok(Self(nets))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client behind `peer`, from the request's headers when `peer` is trusted.
    pub fn resolve(&self, peer: Option<SocketAddr>, scheme: &str, headers: &HeaderMap) -> Client {
        let Some(peer) = peer.map(|p| canonical(p.ip())) else {
            return Client { address: None, scheme: scheme.to_owned() };
        };
        let direct = Client { address: Some(peer), scheme: scheme.to_owned() };
        if !self.contains(peer) {
            return direct;
        }
        let hops = match forwarded_hops(headers) {
            Some(hops) => hops,
            None => x_forwarded_hops(headers),
        };
        // Nearest hop first: the first that is not a trusted proxy is the client. An entry that
        // is no address (`unknown`, an obfuscated name) stops the walk at the hop that wrote it.
        let mut client = direct;
        // Every hop reached was written by a trusted proxy, so its `proto` is believed.
        for hop in hops.into_iter().rev() {
            if let Some(proto) = hop.proto {
                client.scheme = proto;
            }
            let Some(address) = hop.address else { break };
            client.address = Some(address);
            if !self.contains(address) {
                break;
            }
        }
        client
    }
}

/// Where a request comes from once forwarding headers are weighed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client {
    /// The client's address; `None` only for peers without one (Unix sockets).
    pub address: Option<IpAddr>,
    /// `http` or `https` as the client used it.
    pub scheme: String,
}

impl Client {
    /// The address as the rate limits, the logs and the audit trail write it.
    pub fn address_text(&self) -> String {
        self.address.map(|a| a.to_string()).unwrap_or_default()
    }

    /// The client of a request that went through [`ResolveClient`] (its TCP peer otherwise).
    pub fn of(req: &Request) -> Self {
        req.extensions().get::<Client>().cloned().unwrap_or_else(|| Client {
            address: req.remote_addr().as_socket_addr().map(|a| canonical(a.ip())),
            scheme: req.scheme().as_str().to_owned(),
        })
    }
}

/// One proxy's account of the hop before it.
struct Hop {
    address: Option<IpAddr>,
    proto: Option<String>,
}

/// `Forwarded: for=192.0.2.60;proto=https, for="[2001:db8::1]:4711"` over every header line,
/// in order; `None` when the request has no such header.
fn forwarded_hops(headers: &HeaderMap) -> Option<Vec<Hop>> {
    let mut lines = headers.get_all("forwarded").iter().peekable();
    lines.peek()?;
    let mut hops = Vec::new();
    for line in lines {
        let Ok(line) = line.to_str() else {
            // A header that is not text cannot be weighed: trust nothing of it.
            return Some(vec![Hop { address: None, proto: None }]);
        };
        for element in split_outside_quotes(line, ',') {
            let mut hop = Hop { address: None, proto: None };
            for pair in split_outside_quotes(element, ';') {
                let Some((name, value)) = pair.split_once('=') else { continue };
                let value = value.trim().trim_matches('"');
                match name.trim().to_ascii_lowercase().as_str() {
                    "for" => hop.address = node_address(value),
                    "proto" => hop.proto = scheme(value),
                    _ => {}
                }
            }
            hops.push(hop);
        }
    }
    Some(hops)
}

/// `X-Forwarded-For: client, proxy1, proxy2` over every header line, with `X-Forwarded-Proto`
/// lined up from the right (a proxy that overwrites it leaves one value: the nearest hop's).
fn x_forwarded_hops(headers: &HeaderMap) -> Vec<Hop> {
    let list = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect()
    };
    let addresses = list("x-forwarded-for");
    let protos = list("x-forwarded-proto");
    let n = addresses.len();
    addresses
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let from_right = n - 1 - i;
            let proto = if protos.len() == n {
                protos.get(i).and_then(|p| scheme(p))
            } else if from_right == 0 {
                protos.last().and_then(|p| scheme(p))
            } else {
                None
            };
            Hop { address: node_address(a), proto }
        })
        .collect()
}

/// A node as RFC 7239 writes it: `192.0.2.43`, `192.0.2.43:47011`, `[2001:db8::17]:4711`,
/// `2001:db8::17` (X-Forwarded-For style); `unknown` and `_obfuscated` are no address.
fn node_address(raw: &str) -> Option<IpAddr> {
    let raw = raw.trim();
    if let Some(v6) = raw.strip_prefix('[') {
        return v6.split_once(']').and_then(|(ip, _)| ip.parse().ok()).map(canonical);
    }
    if let Ok(ip) = raw.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    raw.parse::<SocketAddr>().ok().map(|s| canonical(s.ip()))
}

fn scheme(raw: &str) -> Option<String> {
    let raw = raw.trim().to_ascii_lowercase();
    matches!(raw.as_str(), "http" | "https").then_some(raw)
}

/// An IPv4 peer of a dual-stack socket arrives as `::ffff:a.b.c.d`: the same client.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

fn split_outside_quotes(raw: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in raw.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(raw[start..i].trim());
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(raw[start..].trim());
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

/// Resolves every request's [`Client`] once, and runs the request inside a `request` span
/// carrying the client's address and scheme, so every log line of it names the real client.
pub struct ResolveClient {
    pub proxies: TrustedProxies,
}

impl<E: Endpoint> Middleware<E> for ResolveClient {
    type Output = ResolveClientEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        ResolveClientEndpoint { inner, proxies: self.proxies.clone() }
    }
}

pub struct ResolveClientEndpoint<E> {
    inner: E,
    proxies: TrustedProxies,
}

impl<E: Endpoint> Endpoint for ResolveClientEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let client =
            self.proxies.resolve(req.remote_addr().as_socket_addr().copied(), req.scheme().as_str(), req.headers());
        let span = tracing::info_span!("request", client = %client.address_text(), scheme = %client.scheme);
        req.extensions_mut().insert(client);
        self.inner.call(req).instrument(span).await.map(IntoResponse::into_response)
    }
}
