//! Where outgoing requests may go: a script's allow list of origins (Spin's format,
//! `scheme://host[:port]` with `*` wildcards) and the addresses no script may reach
//! unless the server's config opens them (private, loopback, link-local, CGNAT, cloud
//! metadata, multicast, reserved, and the IPv6 forms that embed such an IPv4 address).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use http::Uri;
use ipnet::IpNet;

/// One allowed origin.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedOrigin {
    /// `None`: any scheme.
    scheme: Option<String>,
    host: HostPattern,
    /// `None`: any port; otherwise the port, or the scheme's default when not written.
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    Exact(String),
    /// `*.example.com`: any subdomain of `example.com` (not `example.com` itself).
    SubdomainOf(String),
}

/// The origins a script restricted by `outbound set --allow` may reach.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AllowList(Vec<AllowedOrigin>);

impl AllowList {
    /// Parses `outbound set --allow` patterns, naming the first bad one.
    pub fn parse(patterns: &[String]) -> Result<AllowList, String> {
        patterns
            .iter()
            .map(|p| parse_origin(p).map_err(|why| format!("bad --allow `{p}`: {why}")))
            .collect::<Result<_, _>>()
            .map(AllowList)
    }

    pub fn allows(&self, uri: &Uri) -> bool {
        let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let Some(host) = uri.host() else {
            return false;
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = host.to_ascii_lowercase();
        let port = uri.port_u16().or(default_port(&scheme));
        self.0.iter().any(|origin| {
            origin.scheme.as_ref().is_none_or(|s| *s == scheme)
                && origin.port.is_none_or(|p| Some(p) == port)
                && match &origin.host {
                    HostPattern::Any => true,
                    HostPattern::Exact(h) => *h == host,
                    HostPattern::SubdomainOf(domain) => host
                        .strip_suffix(domain.as_str())
                        .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
                }
        })
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

fn parse_origin(pattern: &str) -> Result<AllowedOrigin, &'static str> {
    let (scheme, rest) = pattern
        .split_once("://")
        .ok_or("write it as scheme://host[:port]")?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "*" => None,
        s @ ("http" | "https") => Some(s.to_string()),
        _ => return Err("the scheme must be http, https or *"),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#', '@']) {
        return Err("only scheme://host[:port] is allowed, without path or user");
    }
    // `[v6]:port`, `host:port`, `host`.
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port))
            if !port.contains(']') && (!host.contains(':') || host.ends_with(']')) =>
        {
            (host, Some(port))
        }
        _ => (rest, None),
    };
    let port = match port {
        Some("*") => None,
        Some(port) => Some(
            port.parse::<u16>()
                .map_err(|_| "the port must be a number or *")?,
        ),
        None => match &scheme {
            Some(s) => default_port(s),
            None => return Err("with scheme *, write the port (a number or *)"),
        },
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let host = if host == "*" {
        HostPattern::Any
    } else if let Some(domain) = host.strip_prefix("*.") {
        if !valid_host(domain) {
            return Err("the host is not a valid name");
        }
        HostPattern::SubdomainOf(format!(".{domain}"))
    } else if host.parse::<IpAddr>().is_ok() || valid_host(&host) {
        HostPattern::Exact(host)
    } else {
        return Err("the host is not a valid name or IP address");
    };
    Ok(AllowedOrigin { scheme, host, port })
}

fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Which resolved addresses scripts may connect to.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    /// Ranges opened by the server's config although they are not public.
    pub allowed_private: Vec<IpNet>,
}

impl AddressPolicy {
    /// The address to connect to (IPv4-mapped forms unwrapped), or why it is refused.
    pub fn check(&self, ip: IpAddr) -> Result<IpAddr, String> {
        let ip = ip.to_canonical();
        if is_public(ip) || self.allowed_private.iter().any(|net| net.contains(&ip)) {
            Ok(ip)
        } else {
            Err(format!(
                "{ip} is a private, loopback, link-local or reserved address"
            ))
        }
    }
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0                                   // "this network"
        || a == 10                             // private
        || a == 127                            // loopback
        || (a == 100 && (64..128).contains(&b)) // CGNAT
        || (a == 169 && b == 254)              // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 168)              // private
        || (a == 192 && b == 0 && c == 0)      // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)      // documentation
        || (a == 198 && (b == 18 || b == 19))  // benchmarking
        || (a == 198 && b == 51 && c == 100)   // documentation
        || (a == 203 && b == 0 && c == 113)    // documentation
        || a >= 224) // multicast, reserved, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    let embedded_v4 = || {
        let [.., a, b, c, d] = ip.octets();
        Ipv4Addr::new(a, b, c, d)
    };
    if ip.is_unspecified() || ip.is_loopback() {
        return false;
    }
    match segments[0] {
        // IPv4-compatible (::a.b.c.d), IPv4-mapped (::ffff:a.b.c.d) and SIIT forms.
        0 => segments[1..5] == [0; 4] && is_public_v4(embedded_v4()),
        // NAT64 (64:ff9b::/96 and the local-use 64:ff9b:1::/48).
        0x64 if segments[1] == 0xff9b => is_public_v4(embedded_v4()),
        // 6to4 embeds an IPv4 address in bits 16..48.
        0x2002 => {
            let [_, _, a, b, c, d, ..] = ip.octets();
            is_public_v4(Ipv4Addr::new(a, b, c, d))
        }
        0x2001 if segments[1] == 0x0db8 => false, // documentation
        0x0100 if segments[1..4] == [0; 3] => false, // discard-only
        first => {
            !((first & 0xfe00) == 0xfc00   // unique local (incl. fd00:ec2::254)
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first & 0xffc0) == 0xfec0 // site-local
                || (first & 0xff00) == 0xff00) // multicast
        }
    }
}
