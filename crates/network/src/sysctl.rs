//! The few sysctls bridge networks need, written through `/proc/sys/net` of a given
//! namespace (the kernel resolves `/proc/sys/net` by the namespace of the thread that
//! opens it, so [`NetNs::run`] is enough to aim them).
//!
//! Why explicit: turning forwarding on changes what a machine does with other people's
//! packets. Nothing here runs unless the caller asks, always naming the namespace.

use std::path::PathBuf;

use crate::error::{io_err, Error, Result};
use crate::NetNs;

fn path_of(key: &str) -> Result<PathBuf> {
    // net.ipv4.conf.br-x.route_localnet: dots separate, an interface name may not hold one
    // (berth's never do), so a plain replace is exact for the keys used here.
    if key.is_empty() || key.contains(['/', '\0']) || !key.starts_with("net.") {
        return Err(Error::Invalid(format!("invalid network sysctl {key:?}")));
    }
    Ok(PathBuf::from("/proc/sys").join(key.replace('.', "/")))
}

/// Reads sysctl `key` (e.g. `net.ipv4.ip_forward`) of namespace `ns`.
pub fn get(ns: &NetNs, key: &str) -> Result<String> {
    let p = path_of(key)?;
    ns.run(|| std::fs::read_to_string(&p).map_err(io_err(&p)))?
        .map(|s| s.trim_end().to_string())
}

/// Writes sysctl `key` of namespace `ns`, unless it holds `value` already.
pub fn set(ns: &NetNs, key: &str, value: &str) -> Result<()> {
    let p = path_of(key)?;
    ns.run(|| {
        let cur = std::fs::read_to_string(&p).map_err(io_err(&p))?;
        if cur.trim_end() != value {
            std::fs::write(&p, value).map_err(io_err(&p))?;
        }
        Ok(())
    })?
}

/// `net.ipv4.ip_forward=1` in `ns`: containers' traffic leaves through the host.
pub fn enable_ipv4_forwarding(ns: &NetNs) -> Result<()> {
    set(ns, "net.ipv4.ip_forward", "1")
}

/// `net.ipv6.conf.all.forwarding=1` in `ns` (for networks with IPv6).
pub fn enable_ipv6_forwarding(ns: &NetNs) -> Result<()> {
    set(ns, "net.ipv6.conf.all.forwarding", "1")
}

/// `net.ipv4.conf.<bridge>.route_localnet=1` in `ns`: a port published on 127.0.0.1 is
/// DNATed to the container with its 127.0.0.1 source still on (masquerade rewrites it
/// only at postrouting), which the kernel drops as martian on a bridge without this.
pub fn enable_route_localnet(ns: &NetNs, bridge: &str) -> Result<()> {
    if bridge.contains('.') {
        return Err(Error::Invalid(format!("invalid bridge name {bridge:?}")));
    }
    set(ns, &format!("net.ipv4.conf.{bridge}.route_localnet"), "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_proc_paths() {
        assert_eq!(
            path_of("net.ipv4.conf.br-1.route_localnet").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/conf/br-1/route_localnet")
        );
        for bad in ["", "kernel.pid_max", "net/../x", "net.a\0"] {
            assert!(path_of(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn read_in_current_namespace() {
        let ns = NetNs::current().unwrap();
        let v = get(&ns, "net.ipv4.ip_forward").unwrap();
        assert!(v == "0" || v == "1", "{v}");
    }
}
