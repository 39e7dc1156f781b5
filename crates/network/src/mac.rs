//! MAC addresses: docker's, derived from the container's IPv4 address, so that a
//! container keeps its MAC with its address and neighbours' caches stay right.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A 48-bit Ethernet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// docker's MAC for an endpoint address: 02:42 then the four bytes of the IPv4
    /// address (02:42:ac:11:00:02 for 172.17.0.2). For an IPv6-only endpoint the last
    /// four bytes of the IPv6 address stand in.
    pub fn for_ip(ip: IpAddr) -> MacAddr {
        let tail: [u8; 4] = match ip {
            IpAddr::V4(v4) => v4.octets(),
            IpAddr::V6(v6) => {
                let o = v6.octets();
                [o[12], o[13], o[14], o[15]]
            }
        };
        MacAddr([0x02, 0x42, tail[0], tail[1], tail[2], tail[3]])
    }

    /// A stable, locally administered unicast MAC derived from `seed` (a bridge's name):
    /// a bridge with a MAC of its own does not change it as ports come and go.
    pub fn from_seed(seed: &str) -> MacAddr {
        // FNV-1a, 64 bits: stable across builds (std's hasher is not).
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in seed.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        let b = h.to_be_bytes();
        MacAddr([(b[0] & 0xfe) | 0x02, b[1], b[2], b[3], b[4], b[5]])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl FromStr for MacAddr {
    type Err = crate::Error;

    /// Parses `aa:bb:cc:dd:ee:ff` (docker's `--mac-address` form; `-` also accepted).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || crate::Error::Invalid(format!("{s} is not a valid mac address"));
        let parts: Vec<&str> = s.split([':', '-']).collect();
        if parts.len() != 6 {
            return Err(bad());
        }
        let mut m = [0u8; 6];
        for (o, p) in m.iter_mut().zip(parts) {
            if p.len() != 2 {
                return Err(bad());
            }
            *o = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        Ok(MacAddr(m))
    }
}

impl Serialize for MacAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_mac_for_default_bridge_address() {
        let m = MacAddr::for_ip("172.17.0.2".parse().unwrap());
        assert_eq!(m.to_string(), "02:42:ac:11:00:02");
        let m = MacAddr::for_ip("fd00::1:a0b:c0d".parse().unwrap());
        assert_eq!(m.to_string(), "02:42:0a:0b:0c:0d");
    }

    #[test]
    fn seeded_mac_is_local_unicast_and_stable() {
        let a = MacAddr::from_seed("berth0");
        assert_eq!(a, MacAddr::from_seed("berth0"));
        assert_ne!(a, MacAddr::from_seed("berth1"));
        assert_eq!(a.0[0] & 0x03, 0x02, "{a}");
    }

    #[test]
    fn parse_and_print_round_trip() {
        let m: MacAddr = "02:42:AC:11:00:02".parse().unwrap();
        assert_eq!(m.to_string(), "02:42:ac:11:00:02");
        assert_eq!(serde_json::to_string(&m).unwrap(), "\"02:42:ac:11:00:02\"");
        for bad in [
            "",
            "02:42:ac:11:00",
            "02:42:ac:11:00:zz",
            "02:42:ac:11:00:002",
        ] {
            assert_eq!(
                bad.parse::<MacAddr>().unwrap_err().to_string(),
                format!("{bad} is not a valid mac address")
            );
        }
    }
}
