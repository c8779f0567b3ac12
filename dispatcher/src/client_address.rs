//! Who a client is, for limits counted per client: an IPv4 address as itself (also when
//! written as IPv4-mapped IPv6), an IPv6 address by its /64, the block one host usually
//! holds — so an attacker cannot multiply its allowance by the addresses of its /64.

use std::net::{IpAddr, Ipv6Addr};

/// The key `client` is counted under.
pub fn counted_as(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !(u128::MAX >> 64);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}
