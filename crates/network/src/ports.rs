//! Published ports: docker's `-p` syntax, and reserving host ports by binding them.
//!
//! Why bind: berth has no userland proxy (published ports are DNATed by nftables, which
//! keeps the client's address), but a published port must still be kept from other
//! programs and other containers, and a port must be chosen for `-p 80` and `-P`. So the
//! monitor binds a socket on each published host address and port (no SO_REUSEADDR, no
//! listen) and holds it while the port is published: a second bind fails with
//! EADDRINUSE, port 0 lets the kernel pick a free ephemeral port, and since DNAT happens
//! before the socket lookup these sockets never receive a packet (a TCP SYN that is not
//! DNATed meets a socket that does not listen, and is refused).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::OwnedFd;

use rustix::net::{AddressFamily, SocketFlags, SocketType};

use crate::error::{invalid, Error, Result};
use crate::nft::PortRule;

/// A transport protocol a port can be published for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    /// "tcp", "udp", "sctp" (docker's and nft's names).
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }

    pub fn from_name(s: &str) -> Option<Proto> {
        match s {
            "tcp" => Some(Proto::Tcp),
            "udp" => Some(Proto::Udp),
            "sctp" => Some(Proto::Sctp),
            _ => None,
        }
    }

    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Sctp => 132,
        }
    }

    pub fn from_number(n: u8) -> Option<Proto> {
        match n {
            6 => Some(Proto::Tcp),
            17 => Some(Proto::Udp),
            132 => Some(Proto::Sctp),
            _ => None,
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One container port of a `-p` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// The host address; None publishes on every address (0.0.0.0 and [::]).
    pub host_ip: Option<IpAddr>,
    /// The host port(s): None for any free port; `(p, p)` for port p; `(a, b)` with
    /// a < b for the first free port of that range (a single container port with a host
    /// range, docker's "dynamic host port range").
    pub host_ports: Option<(u16, u16)>,
    pub container_port: u16,
    pub proto: Proto,
}

fn split_parts(raw: &str) -> (String, String, String) {
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    match n {
        1 => (String::new(), String::new(), parts[0].into()),
        2 => (String::new(), parts[0].into(), parts[1].into()),
        3 => (parts[0].into(), parts[1].into(), parts[2].into()),
        _ => (
            parts[..n - 2].join(":"),
            parts[n - 2].into(),
            parts[n - 1].into(),
        ),
    }
}

fn parse_port_number(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// docker's parsePortRange: "p" or "a-b" with a <= b.
fn parse_port_range(s: &str) -> Option<(u16, u16)> {
    if s.is_empty() {
        return None;
    }
    let (start, end) = match s.split_once('-') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let a = parse_port_number(start)?;
    match end {
        None => Some((a, a)),
        Some(e) if e == start => Some((a, a)),
        Some(e) => {
            let b = parse_port_number(e)?;
            (b >= a).then_some((a, b))
        }
    }
}

/// Go's net.SplitHostPort(ip + ":") as docker uses it to strip the brackets of "[::1]",
/// with Go's messages.
fn strip_brackets(ip: &str) -> Result<String, String> {
    let hp = format!("{ip}:");
    let err = |m: &str| format!("address {hp}: {m}");
    let i = hp.len() - 1;
    let end = hp.find(']').ok_or_else(|| err("missing ']' in address"))?;
    if end + 1 != i {
        return Err(err(if hp.as_bytes()[end + 1] == b':' {
            "too many colons in address"
        } else {
            "missing port in address"
        }));
    }
    let host = &hp[1..end];
    if host.contains('[') {
        return Err(err("unexpected '[' in address"));
    }
    Ok(host.to_string())
}

/// Parses one `-p`/`--publish` value, `[ip:][hostPort[-end]:]containerPort[-end][/proto]`
/// (an IPv6 host address in brackets), into one [`PortSpec`] per container port, with
/// docker's error messages (go-connections nat.ParsePortSpec).
pub fn parse_publish(raw: &str) -> Result<Vec<PortSpec>> {
    let (ip, host_port, container) = split_parts(raw);
    let (port, proto) = match container.split_once('/') {
        Some((p, pr)) => (p.to_string(), pr.to_string()),
        None => (container.clone(), String::new()),
    };
    if port.is_empty() {
        return Err(invalid(format!("no port specified: {raw}<empty>")));
    }
    let proto_l = if proto.is_empty() {
        "tcp".to_string()
    } else {
        proto.to_lowercase()
    };
    let proto =
        Proto::from_name(&proto_l).ok_or_else(|| invalid(format!("invalid proto: {proto_l}")))?;
    let mut ip_s = ip.clone();
    if ip_s.starts_with('[') {
        ip_s = strip_brackets(&ip).map_err(|e| invalid(format!("invalid IP address {ip}: {e}")))?;
    }
    let host_ip = if ip_s.is_empty() {
        None
    } else {
        Some(
            ip_s.parse::<IpAddr>()
                .map_err(|_| invalid(format!("invalid IP address: {ip_s}")))?,
        )
    };
    let (cstart, cend) = parse_port_range(&port)
        .filter(|(a, _)| *a != 0)
        .ok_or_else(|| invalid(format!("invalid containerPort: {port}")))?;
    let mut hrange = None;
    if !host_port.is_empty() {
        let (hs, he) = parse_port_range(&host_port)
            .ok_or_else(|| invalid(format!("invalid hostPort: {host_port}")))?;
        if cend - cstart != he - hs && cend != cstart {
            return Err(invalid(format!(
                "invalid ranges specified for container and host Ports: {port} and {host_port}"
            )));
        }
        hrange = Some((hs, he));
    }
    let count = cend - cstart;
    Ok((0..=count)
        .map(|i| PortSpec {
            host_ip,
            host_ports: match hrange {
                None => None,
                // Port 0 is "any", as when no host port is given.
                Some((0, 0)) => None,
                Some((hs, he)) if count == 0 => Some((hs, he)),
                Some((hs, _)) => Some((hs + i, hs + i)),
            },
            container_port: cstart + i,
            proto,
        })
        .collect())
}

/// A host port held for a published port.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Binding {
    /// The bound address: 0.0.0.0 or :: for "every address".
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

impl Binding {
    /// docker's `HostIP:HostPort` text (":::8080" for IPv6, as docker prints it).
    pub fn host_addr(&self) -> String {
        format!("{}:{}", self.host_ip, self.host_port)
    }
}

/// The sockets that keep published host ports reserved, and what they bind. Dropping it
/// releases the ports.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Reservation {
    pub bindings: Vec<Binding>,
    /// One per binding; they travel as fds, not in the serialised form.
    #[serde(skip)]
    sockets: Vec<OwnedFd>,
}

impl Reservation {
    /// The bound sockets, one per binding.
    pub fn sockets(&self) -> &[OwnedFd] {
        &self.sockets
    }

    /// Adds the ports of another reservation (keeping its sockets).
    pub fn extend(&mut self, other: Reservation) {
        self.bindings.extend(other.bindings);
        self.sockets.extend(other.sockets);
    }
}

fn bind_one(ip: IpAddr, port: u16, proto: Proto) -> std::io::Result<(OwnedFd, u16)> {
    let family = if ip.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let (ty, p) = match proto {
        Proto::Tcp => (SocketType::STREAM, rustix::net::ipproto::TCP),
        Proto::Udp => (SocketType::DGRAM, rustix::net::ipproto::UDP),
        Proto::Sctp => (SocketType::STREAM, rustix::net::ipproto::SCTP),
    };
    // CLOEXEC: the monitor holds these; the container must not inherit them.
    let fd = rustix::net::socket_with(family, ty, SocketFlags::CLOEXEC, Some(p))?;
    if ip.is_ipv6() {
        // [::] must not also take the IPv4 port: 0.0.0.0 is bound on its own.
        rustix::net::sockopt::set_ipv6_v6only(&fd, true)?;
    }
    rustix::net::bind(&fd, &SocketAddr::new(ip, port))?;
    let got = SocketAddr::try_from(rustix::net::getsockname(&fd)?)
        .map(|a| a.port())
        .unwrap_or(port);
    Ok((fd, got))
}

fn in_use(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::ADDRINUSE.raw_os_error())
}

/// The host has no IPv6 (module off, or disabled): [::] is then skipped.
fn no_ipv6(e: &std::io::Error) -> bool {
    [
        rustix::io::Errno::AFNOSUPPORT,
        rustix::io::Errno::ADDRNOTAVAIL,
    ]
    .iter()
    .any(|x| e.raw_os_error() == Some(x.raw_os_error()))
}

/// Reserves the host ports of `specs` in the caller's network namespace (run it with
/// [`crate::NetNs::run`] to aim at another). A spec without host address binds 0.0.0.0
/// and, with `ipv6`, [::] too, on the same port. The reservation holds the sockets.
pub fn reserve(specs: &[PortSpec], ipv6: bool) -> Result<Reservation> {
    let mut r = Reservation::default();
    for s in specs {
        r.extend(reserve_one(s, ipv6)?);
    }
    Ok(r)
}

fn reserve_one(s: &PortSpec, ipv6: bool) -> Result<Reservation> {
    let ips: Vec<IpAddr> = match s.host_ip {
        Some(ip) => vec![ip],
        None if ipv6 => vec![Ipv4Addr::UNSPECIFIED.into(), Ipv6Addr::UNSPECIFIED.into()],
        None => vec![Ipv4Addr::UNSPECIFIED.into()],
    };
    let sys = |e: std::io::Error, ip: IpAddr, port: u16| Error::Sys {
        op: format!("bind {} {}", s.proto, SocketAddr::new(ip, port)),
        source: e,
    };
    // Binds every address on one port; Ok(None) when the port is taken on one of them.
    let try_port = |port: u16| -> Result<Option<Reservation>> {
        let mut r = Reservation::default();
        let mut chosen = port;
        for (i, ip) in ips.iter().enumerate() {
            match bind_one(*ip, chosen, s.proto) {
                Ok((fd, got)) => {
                    chosen = got;
                    r.sockets.push(fd);
                    r.bindings.push(Binding {
                        host_ip: *ip,
                        host_port: got,
                        container_port: s.container_port,
                        proto: s.proto,
                    });
                }
                Err(e) if in_use(&e) => return Ok(None),
                Err(e) if i > 0 && ip.is_ipv6() && s.host_ip.is_none() && no_ipv6(&e) => {}
                Err(e) => return Err(sys(e, *ip, chosen)),
            }
        }
        Ok(Some(r))
    };
    let first_ip = ips[0];
    match s.host_ports {
        None => {
            // An ephemeral port free on 0.0.0.0 may be taken on [::]: try a few.
            for _ in 0..16 {
                if let Some(r) = try_port(0)? {
                    return Ok(r);
                }
            }
            Err(Error::PortAllocated {
                addr: format!("{first_ip}:0"),
            })
        }
        Some((a, b)) if a == b => try_port(a)?.ok_or_else(|| Error::PortAllocated {
            addr: format!("{first_ip}:{a}"),
        }),
        Some((a, b)) => {
            for p in a..=b {
                if let Some(r) = try_port(p)? {
                    return Ok(r);
                }
            }
            Err(Error::PortAllocated {
                addr: format!("{first_ip}:{a}-{b}"),
            })
        }
    }
}

/// The nftables elements for `bindings` of container `owner` with addresses `v4`/`v6`.
/// A binding on every address of a family the container lacks is skipped (its socket
/// still keeps the port); one on a specific address of a family the container lacks is
/// an error, and so is [::1], which the kernel never routes out of the host.
pub fn port_rules(
    owner: &str,
    bindings: &[Binding],
    v4: Option<Ipv4Addr>,
    v6: Option<Ipv6Addr>,
) -> Result<Vec<PortRule>> {
    let mut out = Vec::new();
    for b in bindings {
        let target: Option<IpAddr> = if b.host_ip.is_ipv4() {
            v4.map(IpAddr::V4)
        } else {
            v6.map(IpAddr::V6)
        };
        let all = b.host_ip.is_unspecified();
        if b.host_ip == IpAddr::V6(Ipv6Addr::LOCALHOST) {
            return Err(invalid(format!(
                "cannot publish on {}: IPv6 loopback cannot be forwarded to a container",
                b.host_addr()
            )));
        }
        let Some(target) = target else {
            if all {
                continue;
            }
            return Err(invalid(format!(
                "cannot publish on {}: the container has no IPv{} address",
                b.host_addr(),
                if b.host_ip.is_ipv4() { 4 } else { 6 }
            )));
        };
        out.push(PortRule {
            owner: owner.to_string(),
            proto: b.proto,
            host_ip: (!all).then_some(b.host_ip),
            host_port: b.host_port,
            container_ip: target,
            container_port: b.container_port,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(raw: &str) -> PortSpec {
        let v = parse_publish(raw).unwrap();
        assert_eq!(v.len(), 1, "{raw}");
        v.into_iter().next().unwrap()
    }
    fn err(raw: &str) -> String {
        parse_publish(raw).unwrap_err().to_string()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn every_docker_form_parses() {
        assert_eq!(
            one("80"),
            PortSpec {
                host_ip: None,
                host_ports: None,
                container_port: 80,
                proto: Proto::Tcp
            }
        );
        assert_eq!(one("8080:80").host_ports, Some((8080, 8080)));
        assert_eq!(one("8080:80/udp").proto, Proto::Udp);
        assert_eq!(one("8080:80/SCTP").proto, Proto::Sctp);
        let s = one("127.0.0.1:8080:80");
        assert_eq!(
            (s.host_ip, s.host_ports),
            (Some(ip("127.0.0.1")), Some((8080, 8080)))
        );
        let s = one("127.0.0.1::80");
        assert_eq!((s.host_ip, s.host_ports), (Some(ip("127.0.0.1")), None));
        let s = one("[::1]:8080:80");
        assert_eq!(s.host_ip, Some(ip("::1")));
        let s = one("::1:8080:80");
        assert_eq!(s.host_ip, Some(ip("::1")));
        let s = one("[fd00::5]::80/udp");
        assert_eq!(
            (s.host_ip, s.host_ports, s.proto),
            (Some(ip("fd00::5")), None, Proto::Udp)
        );
        assert_eq!(one("0:80").host_ports, None);
        assert_eq!(one("80-80").container_port, 80);
        // A host range for one container port: pick from it.
        assert_eq!(one("8000-8010:80").host_ports, Some((8000, 8010)));
        // Equal ranges map one to one.
        let v = parse_publish("8000-8002:80-82/udp").unwrap();
        let pairs: Vec<_> = v.iter().map(|s| (s.host_ports, s.container_port)).collect();
        assert_eq!(
            pairs,
            vec![
                (Some((8000, 8000)), 80),
                (Some((8001, 8001)), 81),
                (Some((8002, 8002)), 82)
            ]
        );
        assert!(v.iter().all(|s| s.proto == Proto::Udp));
        // A container range without host ports: each gets any port.
        let v = parse_publish("1.2.3.4::80-81").unwrap();
        assert_eq!(v.len(), 2);
        assert!(v
            .iter()
            .all(|s| s.host_ports.is_none() && s.host_ip == Some(ip("1.2.3.4"))));
    }

    #[test]
    fn every_docker_error_is_worded_as_docker() {
        assert_eq!(err(""), "no port specified: <empty>");
        assert_eq!(err("8080:"), "no port specified: 8080:<empty>");
        assert_eq!(err("8080:/tcp"), "no port specified: 8080:/tcp<empty>");
        assert_eq!(err("80/xyz"), "invalid proto: xyz");
        assert_eq!(err("1.2.3:8080:80"), "invalid IP address: 1.2.3");
        assert_eq!(err("localhost:8080:80"), "invalid IP address: localhost");
        assert_eq!(
            err("[::1:8080:80"),
            "invalid IP address [::1: address [::1:: missing ']' in address"
        );
        assert_eq!(
            err("[::1]x:8080:80"),
            "invalid IP address [::1]x: address [::1]x:: missing port in address"
        );
        assert_eq!(
            err("[::1]:::8080:80"),
            "invalid IP address [::1]::: address [::1]:::: too many colons in address"
        );
        assert_eq!(err("abc"), "invalid containerPort: abc");
        assert_eq!(err("8080:70000"), "invalid containerPort: 70000");
        assert_eq!(err("8080:90-80"), "invalid containerPort: 90-80");
        assert_eq!(err("8080:0"), "invalid containerPort: 0");
        assert_eq!(err("x:80"), "invalid hostPort: x");
        assert_eq!(err("-1:80"), "invalid hostPort: -1");
        assert_eq!(err("99999:80"), "invalid hostPort: 99999");
        assert_eq!(
            err("8000-8001:80-83"),
            "invalid ranges specified for container and host Ports: 80-83 and 8000-8001"
        );
    }

    #[test]
    fn proto_names_and_numbers() {
        for p in [Proto::Tcp, Proto::Udp, Proto::Sctp] {
            assert_eq!(Proto::from_name(p.name()), Some(p));
            assert_eq!(Proto::from_number(p.number()), Some(p));
        }
        assert_eq!(Proto::from_name("icmp"), None);
    }

    #[test]
    fn rules_follow_the_container_families() {
        let b = |h: &str, p: u16| Binding {
            host_ip: ip(h),
            host_port: p,
            container_port: 80,
            proto: Proto::Tcp,
        };
        let v4 = Some("172.18.0.2".parse().unwrap());
        let v6 = Some("fd00::2".parse().unwrap());
        let r = port_rules("c", &[b("0.0.0.0", 8080), b("::", 8080)], v4, None).unwrap();
        assert_eq!(r.len(), 1, "[::] is skipped for a v4-only container");
        assert_eq!((r[0].host_ip, r[0].container_ip), (None, ip("172.18.0.2")));
        let r = port_rules("c", &[b("0.0.0.0", 8080), b("::", 8080)], v4, v6).unwrap();
        assert_eq!(r[1].container_ip, ip("fd00::2"));
        let r = port_rules("c", &[b("127.0.0.1", 8080)], v4, None).unwrap();
        assert_eq!(r[0].host_ip, Some(ip("127.0.0.1")));
        assert!(port_rules("c", &[b("fd00::9", 1)], v4, None)
            .unwrap_err()
            .to_string()
            .contains("has no IPv6 address"));
        assert!(port_rules("c", &[b("::1", 1)], v4, v6).is_err());
    }

    #[test]
    fn binding_addresses_print_as_docker() {
        let b = Binding {
            host_ip: ip("::"),
            host_port: 8080,
            container_port: 80,
            proto: Proto::Tcp,
        };
        assert_eq!(b.host_addr(), ":::8080");
        assert_eq!(
            Error::PortAllocated {
                addr: "0.0.0.0:8080".into()
            }
            .to_string(),
            "Bind for 0.0.0.0:8080 failed: port is already allocated"
        );
    }

    // Binding on 127.0.0.1 with ephemeral ports touches nothing shared: safe without root
    // and in the host namespace.
    #[test]
    fn reservation_holds_the_port_until_dropped() {
        let s = PortSpec {
            host_ip: Some(ip("127.0.0.1")),
            host_ports: None,
            container_port: 80,
            proto: Proto::Tcp,
        };
        let r = reserve(std::slice::from_ref(&s), false).unwrap();
        let port = r.bindings[0].host_port;
        assert_ne!(port, 0);
        let again = PortSpec {
            host_ports: Some((port, port)),
            ..s.clone()
        };
        assert_eq!(
            reserve(std::slice::from_ref(&again), false)
                .unwrap_err()
                .to_string(),
            format!("Bind for 127.0.0.1:{port} failed: port is already allocated")
        );
        // Another program is kept off too, even with SO_REUSEADDR (ours does not set it).
        assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_err());
        // Not listening: a connection is refused, never accepted by the reservation.
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
        drop(r);
        let r2 = reserve(&[again], false).unwrap();
        assert_eq!(r2.bindings[0].host_port, port);
    }

    #[test]
    fn host_range_takes_the_first_free_port() {
        let hold = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = hold.local_addr().unwrap().port();
        if p == u16::MAX {
            return;
        }
        let s = PortSpec {
            host_ip: Some(ip("127.0.0.1")),
            host_ports: Some((p, p + 1)),
            container_port: 53,
            proto: Proto::Udp,
        };
        match reserve(std::slice::from_ref(&s), false) {
            Ok(r) => assert_eq!(r.bindings[0].host_port, p + 1),
            // p+1 may be someone else's: then the whole range is taken.
            Err(e) => assert_eq!(
                e.to_string(),
                format!(
                    "Bind for 127.0.0.1:{p}-{} failed: port is already allocated",
                    p + 1
                )
            ),
        }
    }
}
