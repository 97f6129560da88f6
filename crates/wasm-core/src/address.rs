//! Which IP addresses a sandboxed component may reach when the operator refuses
//! private destinations (`--refuse-private-addresses`,
//! `Sandbox::refuse_private_addresses`): only globally routable unicast addresses.
//!
//! ```
//! use airssys_wasm_core::address::is_globally_routable;
//!
//! assert!(is_globally_routable("93.184.216.34".parse().unwrap()));
//! assert!(!is_globally_routable("169.254.169.254".parse().unwrap())); // cloud metadata
//! assert!(!is_globally_routable("64:ff9b::a9fe:a9fe".parse().unwrap())); // NAT64
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `ip` is a globally routable unicast address: not loopback, private (RFC
/// 1918, unique local), link-local, shared (carrier-grade NAT, 100.64/10),
/// unspecified, broadcast, multicast, documentation, benchmarking (198.18/15), IETF
/// protocol assignments (192.0.0/24), reserved (240/4, and 0/8), IPv6 site-local
/// (fec0::/10), discard-only (100::/64); and none of the IPv6 forms that carry or
/// reach an IPv4 address — IPv4-mapped and IPv4-compatible (`::a.b.c.d`), NAT64
/// (64:ff9b::/96, 64:ff9b:1::/48), 6to4 (2002::/16), Teredo (2001::/32) — since
/// through them a private IPv4 address can be reached.
pub fn is_globally_routable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_global(v4),
        IpAddr::V6(v6) => v6_global(v6),
    }
}

fn v4_global(v4: Ipv4Addr) -> bool {
    let [a, b, c, _] = v4.octets();
    !(v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn v6_global(v6: Ipv6Addr) -> bool {
    let s = v6.segments();
    // IPv4 carried in IPv6: ::ffff:a.b.c.d, ::a.b.c.d.
    if v6.to_ipv4_mapped().is_some() || (s[..6] == [0; 6] && !v6.is_loopback()) {
        return false;
    }
    !(v6.is_loopback()
        || v6.is_unspecified()
        || v6.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local fec0::/10
        || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64 64:ff9b::/96 and 64:ff9b:1::/48
        || s[0] == 0x2002 // 6to4
        || (s[0] == 0x2001 && s[1] == 0) // Teredo 2001::/32
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0100 && s[1..4] == [0; 3])) // discard-only 100::/64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_global_unicast_is_routable() {
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "240.0.0.1",
            "250.1.2.3",
            "::1",
            "::",
            "::ffff:127.0.0.1",
            "::ffff:8.8.8.8",
            "::127.0.0.1",
            "::10.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::808:808",
            "64:ff9b:1::1",
            "2002:7f00:1::1",
            "2001::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "100::1",
        ] {
            assert!(!is_globally_routable(refused.parse().unwrap()), "{refused}");
        }
        for global in [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "192.0.1.1",
            "198.20.0.1",
            "2606:4700::1111",
            "2a00:1450::1",
        ] {
            assert!(is_globally_routable(global.parse().unwrap()), "{global}");
        }
    }
}
