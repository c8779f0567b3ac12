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
                    // `domain` is `.example.com`: one label or more before it.
                    HostPattern::SubdomainOf(domain) => host
                        .strip_suffix(domain.as_str())
                        .is_some_and(|sub| !sub.is_empty()),
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
        // The well-known NAT64 prefix 64:ff9b::/96 embeds an IPv4 address at the end.
        0x64 if segments[1] == 0xff9b && segments[2..6] == [0; 4] => is_public_v4(embedded_v4()),
        // The rest of 64:ff9b::/32, the local-use 64:ff9b:1::/48 among it, translates to
        // whatever its operator chose: never global.
        0x64 if segments[1] == 0xff9b => false,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(address: &str) -> bool {
        AddressPolicy::default()
            .check(address.parse().unwrap())
            .is_err()
    }

    #[test]
    fn ipv6_forms_that_embed_a_private_ipv4_address_are_refused() {
        for private in [
            "::ffff:127.0.0.1",  // IPv4-mapped
            "::127.0.0.1",       // IPv4-compatible
            "::ffff:0:10.0.0.1", // SIIT (IPv4-translated)
            "::ffff:0:8.8.8.8",  // SIIT of a public address: still not routable
            "64:ff9b::10.1.2.3", // NAT64 well-known prefix
            "64:ff9b::169.254.169.254",
            "64:ff9b:1::8.8.8.8", // NAT64 local-use: never global
            "2002:7f00:1::",      // 6to4 of 127.0.0.1
            "2002:a9fe:a9fe::1",  // 6to4 of 169.254.169.254
            "2002:c0a8:101::",    // 6to4 of 192.168.1.1
            "fd00:ec2::254",      // AWS metadata over IPv6 (unique local)
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "100::1",
            "::",
            "::1",
        ] {
            assert!(refused(private), "{private} must be refused");
        }
        for public in [
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
            "2002:808:808::1",
            "2606:4700:4700::1111",
        ] {
            assert!(!refused(public), "{public} must be allowed");
        }
    }

    #[test]
    fn ipv4_ranges_no_script_may_reach() {
        for private in [
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "127.0.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.1",
            "192.0.2.1",
            "192.168.0.1",
            "198.18.0.1",
            "198.51.100.1",
            "203.0.113.1",
            "224.0.0.1",
            "255.255.255.255",
        ] {
            assert!(refused(private), "{private} must be refused");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.0.1",
            "100.128.0.1",
            "172.32.0.1",
        ] {
            assert!(!refused(public), "{public} must be allowed");
        }
    }

    #[test]
    fn the_config_opens_private_ranges_it_names() {
        let policy = AddressPolicy {
            allowed_private: vec!["127.0.0.0/8".parse().unwrap()],
        };
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(policy.check(mapped), Ok("127.0.0.1".parse().unwrap()));
        assert!(policy.check("10.0.0.1".parse().unwrap()).is_err());
    }

    fn allows(patterns: &[&str], uri: &str) -> bool {
        let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        AllowList::parse(&patterns)
            .unwrap()
            .allows(&uri.parse().unwrap())
    }

    #[test]
    fn allow_list_patterns_match_scheme_host_and_port() {
        assert!(allows(
            &["https://api.example.com"],
            "https://api.example.com/x"
        ));
        assert!(!allows(
            &["https://api.example.com"],
            "http://api.example.com/x"
        ));
        assert!(!allows(
            &["https://api.example.com"],
            "https://api.example.com:8443/"
        ));
        assert!(allows(
            &["https://api.example.com:*"],
            "https://api.example.com:8443/"
        ));
        assert!(allows(
            &["*://api.example.com:443"],
            "https://api.example.com/"
        ));
        assert!(allows(
            &["https://*.example.com"],
            "https://a.b.example.com/"
        ));
        assert!(!allows(&["https://*.example.com"], "https://example.com/"));
        assert!(!allows(
            &["https://*.example.com"],
            "https://evilexample.com/"
        ));
        assert!(allows(&["http://[::1]:8080"], "http://[::1]:8080/"));
        assert!(allows(&["https://*"], "https://anything.test/"));
        assert!(allows(
            &["https://API.Example.com"],
            "https://api.example.COM/"
        ));
    }

    #[test]
    fn bad_allow_list_patterns_are_named() {
        for bad in [
            "api.example.com",
            "ftp://example.com",
            "https://example.com/path",
            "https://user@example.com",
            "https://example.com:port",
            "*://example.com",
            "https://exa mple.com",
            "https://*.",
        ] {
            let error = AllowList::parse(&[bad.to_string()]).unwrap_err();
            assert!(error.contains(bad), "{error}");
        }
    }
}
