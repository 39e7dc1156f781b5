//! Addresses for bridge networks: picking subnets, validating the user's, and leasing
//! container addresses.
//!
//! Why a lease file per network: berth has no daemon, so the monitors of containers that
//! start at the same moment must agree through the file system. The lease file
//! (`ipam.json`) is read, changed and replaced under an flock of `ipam.lock` held only for
//! that read-modify-write (microseconds). It is not fsynced: after a crash no container is
//! running, so every lease in it is stale anyway (and an empty file reads as no leases).
//!
//! Leases are reclaimed lazily: an address leased to an owner for which the caller's
//! `is_stale` says so (a container that is gone) is free again when allocation meets it.
//! Dynamic allocation is round robin like docker's: the next free address after the last
//! one handed out, so a just-released address is not reused at once.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use crate::error::{invalid, io_err, Error, Result};

// ---- address arithmetic ----

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn from_u128(v: u128, like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(v as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(v)),
    }
}

/// Whether two subnets share an address (one contains the other).
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Parses a CIDR as Go's net.ParseCIDR does for docker: the address with its host bits
/// and the network. Errors read "invalid CIDR address: X".
fn parse_cidr(s: &str) -> Result<(IpAddr, IpNet), String> {
    let n: IpNet = s
        .parse()
        .map_err(|_| format!("invalid CIDR address: {s}"))?;
    Ok((n.addr(), n.trunc()))
}

// ---- user configuration: --subnet, --gateway, --ip-range ----

/// One subnet of a network as the user gave it (`docker network create` flags), after
/// docker's CLI paired up subnets, ranges and gateways.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetConfig {
    pub subnet: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<IpNet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
}

/// Pairs `--subnet`, `--ip-range` and `--gateway` values as docker's CLI does
/// (consolidateIpam), with its messages.
pub fn parse_subnet_flags(
    subnets: &[String],
    ranges: &[String],
    gateways: &[String],
) -> Result<Vec<SubnetConfig>> {
    if subnets.len() < ranges.len() || subnets.len() < gateways.len() {
        return Err(invalid(
            "every ip-range or gateway must have a corresponding subnet",
        ));
    }
    let mut out: Vec<(String, SubnetConfig)> = Vec::new();
    let subnet_of = |s: &str| {
        parse_cidr(s)
            .map(|(_, n)| n)
            .map_err(|e| invalid(format!("invalid subnet: {e}")))
    };
    // subnetMatches(subnet, data): the subnet contains data's address (a CIDR's address
    // part with its host bits, or a plain IP; an unparsable plain IP matches nothing).
    let matches = |s: &str, data: &str| -> Result<bool> {
        let net = subnet_of(s)?;
        let ip = if data.contains('/') {
            Some(parse_cidr(data).map_err(invalid)?.0)
        } else {
            data.parse::<IpAddr>().ok()
        };
        Ok(ip.is_some_and(|ip| net.contains(&ip)))
    };
    for s in subnets {
        for (k, _) in &out {
            if matches(s, k)? || matches(k, s)? {
                return Err(invalid(
                    "multiple overlapping subnet configuration is not supported",
                ));
            }
        }
        out.push((
            s.clone(),
            SubnetConfig {
                subnet: subnet_of(s)?,
                ip_range: None,
                gateway: None,
            },
        ));
    }
    let mut range_src: Vec<Option<String>> = vec![None; out.len()];
    for r in ranges {
        let mut matched = false;
        for (i, s) in subnets.iter().enumerate() {
            if !matches(s, r)? {
                continue;
            }
            if let Some(prev) = &range_src[i] {
                return Err(invalid(format!(
                    "cannot configure multiple ranges ({r}, {prev}) on the same subnet ({s})"
                )));
            }
            out[i].1.ip_range = Some(parse_cidr(r).map_err(invalid)?.1);
            range_src[i] = Some(r.clone());
            matched = true;
        }
        if !matched {
            return Err(invalid(format!("no matching subnet for range {r}")));
        }
    }
    let mut gw_src: Vec<Option<String>> = vec![None; out.len()];
    for g in gateways {
        let mut matched = false;
        for (i, s) in subnets.iter().enumerate() {
            if !matches(s, g)? {
                continue;
            }
            if let Some(prev) = &gw_src[i] {
                return Err(invalid(format!(
                    "cannot configure multiple gateways ({g}, {prev}) for the same subnet ({s})"
                )));
            }
            out[i].1.gateway = g.parse().ok();
            gw_src[i] = Some(g.clone());
            matched = true;
        }
        if !matched {
            return Err(invalid(format!("no matching subnet for gateway {g}")));
        }
    }
    Ok(out.into_iter().map(|(_, c)| c).collect())
}

/// A validated address pool: a subnet, its gateway, and the range dynamic addresses
/// come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    pub subnet: IpNet,
    pub gateway: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<IpNet>,
}

impl Pool {
    /// Validates a subnet's configuration and fills the gateway in (the subnet's first
    /// host address, as docker does).
    pub fn new(cfg: &SubnetConfig) -> Result<Pool> {
        let subnet = cfg.subnet.trunc();
        let v4 = matches!(subnet, IpNet::V4(_));
        if (v4 && subnet.prefix_len() > 30) || (!v4 && subnet.prefix_len() > 126) {
            return Err(invalid(format!(
                "invalid subnet {subnet}: it has no room for a gateway and a container"
            )));
        }
        if let Some(r) = cfg.ip_range {
            let r = r.trunc();
            if !subnet.contains(&r) {
                return Err(invalid(format!(
                    "invalid pool request: ip-range {r} is not contained in subnet {subnet}"
                )));
            }
        }
        let gateway = match cfg.gateway {
            Some(g) => {
                if !subnet.contains(&g) {
                    return Err(invalid(format!("no matching subnet for gateway {g}")));
                }
                if reserved(&subnet, g) {
                    return Err(invalid(format!(
                        "invalid gateway {g}: it is the {} address of subnet {subnet}",
                        if g == subnet.network() {
                            "network"
                        } else {
                            "broadcast"
                        }
                    )));
                }
                g
            }
            None => from_u128(to_u128(subnet.network()) + 1, subnet.network()),
        };
        Ok(Pool {
            subnet,
            gateway,
            ip_range: cfg.ip_range.map(|r| r.trunc()),
        })
    }

    /// The gateway with the subnet's prefix length, as the bridge carries it.
    pub fn gateway_net(&self) -> IpNet {
        IpNet::new(self.gateway, self.subnet.prefix_len()).expect("prefix of a valid subnet")
    }

    /// An address with the subnet's prefix length (an endpoint's interface address).
    pub fn with_prefix(&self, ip: IpAddr) -> IpNet {
        IpNet::new(ip, self.subnet.prefix_len()).expect("prefix of a valid subnet")
    }

    fn family(&self) -> u8 {
        if self.subnet.addr().is_ipv4() {
            4
        } else {
            6
        }
    }
}

/// The network address (both families) and the broadcast address (IPv4) are never
/// handed out.
fn reserved(subnet: &IpNet, ip: IpAddr) -> bool {
    ip == subnet.network() || (ip.is_ipv4() && ip == subnet.broadcast())
}

// ---- picking subnets ----

/// docker's default pools for local networks: 172.17.0.0/16 to 172.31.0.0/16, then
/// 192.168.0.0/16 cut into /20s.
pub fn default_pools() -> impl Iterator<Item = IpNet> {
    let a = (17u8..=31).map(|b| IpNet::V4(Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16).unwrap()));
    let b =
        (0u8..16).map(|i| IpNet::V4(Ipv4Net::new(Ipv4Addr::new(192, 168, i * 16, 0), 20).unwrap()));
    a.chain(b)
}

/// The first default pool that overlaps none of `taken` (the host's routes and the other
/// networks' subnets), with docker's message when there is none.
pub fn pick_subnet(taken: &[IpNet]) -> Result<IpNet> {
    default_pools()
        .find(|p| !taken.iter().any(|t| overlaps(p, t)))
        .ok_or_else(|| {
            invalid(
                "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network",
            )
        })
}

/// An IPv6 subnet for a network created with `--ipv6` but no IPv6 `--subnet`: a /64 of
/// a unique local /48 (fdXX:XXXX:XXXX::/48) derived from `seed` (e.g. the machine id, so
/// that it is stable on a host and differs between hosts), the first not in `taken`.
pub fn pick_subnet_v6(taken: &[IpNet], seed: &str) -> Result<IpNet> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let g = h.to_be_bytes();
    let base = [0xfd, g[0], g[1], g[2], g[3], g[4]];
    for i in 0u16..=u16::MAX {
        let mut o = [0u8; 16];
        o[..6].copy_from_slice(&base);
        o[6..8].copy_from_slice(&i.to_be_bytes());
        let n = IpNet::V6(Ipv6Net::new(Ipv6Addr::from(o), 64).unwrap());
        if !taken.iter().any(|t| overlaps(&n, t)) {
            return Ok(n);
        }
    }
    Err(invalid(
        "could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network",
    ))
}

/// A user-given subnet must not overlap another network's (docker's message). Host routes
/// are not checked for user-given subnets, as docker does not.
pub fn check_overlap(subnet: &IpNet, others: &[IpNet]) -> Result<()> {
    if others.iter().any(|o| overlaps(subnet, o)) {
        return Err(invalid(
            "invalid pool request: Pool overlaps with other one on this address space",
        ));
    }
    Ok(())
}

// ---- leases ----

/// One leased address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub address: IpAddr,
    /// Whoever holds it: a container id.
    pub owner: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PoolState {
    subnet: IpNet,
    /// The last address handed out dynamically (round robin starts after it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last: Option<IpAddr>,
    #[serde(default)]
    leases: Vec<Lease>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct State {
    #[serde(default)]
    pools: Vec<PoolState>,
}

/// The lease file of one network: `<dir>/ipam.json`, guarded by an flock of
/// `<dir>/ipam.lock`.
#[derive(Debug, Clone)]
pub struct Leases {
    file: PathBuf,
    lock: PathBuf,
}

struct Locked {
    _f: File,
}

impl Leases {
    /// The lease file in `dir` (a network's record directory, which must exist).
    pub fn new(dir: &Path) -> Leases {
        Leases {
            file: dir.join("ipam.json"),
            lock: dir.join("ipam.lock"),
        }
    }

    fn lock(&self) -> Result<Locked> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock)
            .map_err(io_err(&self.lock))?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| io_err(&self.lock)(e.into()))?;
        Ok(Locked { _f: f })
    }

    fn read(&self) -> Result<State> {
        match std::fs::read(&self.file) {
            Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(State::default()),
            Ok(b) => serde_json::from_slice(&b).map_err(|e| Error::Record {
                path: self.file.clone(),
                msg: format!("corrupt lease file: {e}"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(io_err(&self.file)(e)),
        }
    }

    fn write(&self, st: &State) -> Result<()> {
        let dir = self.file.parent().unwrap_or(Path::new("."));
        let mut t = tempfile::Builder::new()
            .prefix(".ipam")
            .tempfile_in(dir)
            .map_err(io_err(dir))?;
        let data = serde_json::to_vec(st).expect("leases serialise");
        t.write_all(&data).map_err(io_err(t.path()))?;
        t.persist(&self.file)
            .map_err(|e| io_err(&self.file)(e.error))?;
        Ok(())
    }

    /// Every lease, of every pool.
    pub fn leases(&self) -> Result<Vec<Lease>> {
        let _l = self.lock()?;
        Ok(self
            .read()?
            .pools
            .into_iter()
            .flat_map(|p| p.leases)
            .collect())
    }

    /// Leases an address of `pool` to `owner`: `requested` if given (it must be in the
    /// subnet, not reserved, and not leased to a live owner), else the next free address
    /// of the pool's range after the last one handed out. An owner that holds an address
    /// of this pool already gets it back (a restart), unless it requests another one.
    /// Leases whose owner `is_stale` are taken over when met.
    pub fn allocate(
        &self,
        pool: &Pool,
        owner: &str,
        requested: Option<IpAddr>,
        is_stale: impl Fn(&Lease) -> bool,
    ) -> Result<IpAddr> {
        let _l = self.lock()?;
        let mut st = self.read()?;
        let idx = match st.pools.iter().position(|p| p.subnet == pool.subnet) {
            Some(i) => i,
            None => {
                st.pools.push(PoolState {
                    subnet: pool.subnet,
                    last: None,
                    leases: Vec::new(),
                });
                st.pools.len() - 1
            }
        };
        let ps = &mut st.pools[idx];
        if let Some(mine) = ps.leases.iter().find(|l| l.owner == owner) {
            if requested.is_none() || requested == Some(mine.address) {
                return Ok(mine.address);
            }
        }
        ps.leases.retain(|l| l.owner != owner);
        let ip = match requested {
            Some(ip) => {
                if !pool.subnet.contains(&ip) {
                    return Err(invalid(format!(
                        "Invalid address {ip}: It does not belong to any of this network's subnets"
                    )));
                }
                if ip == pool.gateway {
                    return Err(Error::AddressInUse);
                }
                if reserved(&pool.subnet, ip) {
                    return Err(invalid(format!(
                        "invalid address {ip}: it is the {} address of subnet {}",
                        if ip == pool.subnet.network() {
                            "network"
                        } else {
                            "broadcast"
                        },
                        pool.subnet
                    )));
                }
                if let Some(i) = ps.leases.iter().position(|l| l.address == ip) {
                    if !is_stale(&ps.leases[i]) {
                        return Err(Error::AddressInUse);
                    }
                    ps.leases.remove(i);
                }
                ip
            }
            None => {
                let ip = next_free(pool, ps, &is_stale)?;
                ps.last = Some(ip);
                ip
            }
        };
        ps.leases.push(Lease {
            address: ip,
            owner: owner.to_string(),
        });
        self.write(&st)?;
        Ok(ip)
    }

    /// Releases every address `owner` holds (in every pool); returns them. Releasing
    /// nothing is fine.
    pub fn release(&self, owner: &str) -> Result<Vec<IpAddr>> {
        let _l = self.lock()?;
        let mut st = self.read()?;
        let mut gone = Vec::new();
        for p in &mut st.pools {
            p.leases.retain(|l| {
                if l.owner == owner {
                    gone.push(l.address);
                    false
                } else {
                    true
                }
            });
        }
        if !gone.is_empty() {
            self.write(&st)?;
        }
        Ok(gone)
    }
}

/// The next free address of the pool's range after `last`, wrapping once around; a lease
/// of a stale owner met on the way is dropped and its address taken.
fn next_free(pool: &Pool, ps: &mut PoolState, is_stale: &dyn Fn(&Lease) -> bool) -> Result<IpAddr> {
    let range = pool.ip_range.unwrap_or(pool.subnet);
    let (lo, hi) = (to_u128(range.network()), to_u128(range.broadcast()));
    let like = range.network();
    let start = match ps.last.map(to_u128) {
        Some(l) if l >= lo && l < hi => l + 1,
        _ => lo,
    };
    let leased: std::collections::HashMap<u128, usize> = ps
        .leases
        .iter()
        .enumerate()
        .map(|(i, l)| (to_u128(l.address), i))
        .collect();
    // Every address met before a free one is leased or reserved, so a free address, if
    // any, is met within leases + 4 steps: the walk is short even for a /64.
    let size = (hi - lo).saturating_add(1);
    let steps = size.min(ps.leases.len() as u128 + 4);
    for step in 0..steps {
        let v = lo + (start - lo + step) % size;
        let ip = from_u128(v, like);
        if reserved(&pool.subnet, ip) || ip == pool.gateway {
            continue;
        }
        match leased.get(&v) {
            None => return Ok(ip),
            Some(&i) if is_stale(&ps.leases[i]) => {
                ps.leases.remove(i);
                return Ok(ip);
            }
            Some(_) => {}
        }
    }
    Err(Error::PoolExhausted {
        family: pool.family(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }
    fn pool(subnet: &str, range: Option<&str>, gw: Option<&str>) -> Pool {
        Pool::new(&SubnetConfig {
            subnet: net(subnet),
            ip_range: range.map(net),
            gateway: gw.map(ip),
        })
        .unwrap()
    }
    fn flags_err(s: &[&str], r: &[&str], g: &[&str]) -> String {
        parse_subnet_flags(&strs(s), &strs(r), &strs(g))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn subnet_flags_pair_up() {
        let c = parse_subnet_flags(
            &strs(&["10.1.0.0/16", "fd00:1::/64"]),
            &strs(&["10.1.2.0/24"]),
            &strs(&["fd00:1::fe", "10.1.0.254"]),
        )
        .unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].subnet, net("10.1.0.0/16"));
        assert_eq!(c[0].ip_range, Some(net("10.1.2.0/24")));
        assert_eq!(c[0].gateway, Some(ip("10.1.0.254")));
        assert_eq!(c[1].gateway, Some(ip("fd00:1::fe")));
        // Host bits are dropped, as Go's ParseCIDR does.
        let c = parse_subnet_flags(&strs(&["10.1.2.3/16"]), &[], &[]).unwrap();
        assert_eq!(c[0].subnet, net("10.1.0.0/16"));
    }

    #[test]
    fn subnet_flags_errors_are_dockers() {
        assert_eq!(
            flags_err(&[], &[], &["10.0.0.1"]),
            "every ip-range or gateway must have a corresponding subnet"
        );
        assert_eq!(
            flags_err(&["10.0.0.0/33"], &[], &[]),
            "invalid subnet: invalid CIDR address: 10.0.0.0/33"
        );
        assert_eq!(
            flags_err(&["10.0.0.0/8", "10.1.0.0/16"], &[], &[]),
            "multiple overlapping subnet configuration is not supported"
        );
        assert_eq!(
            flags_err(&["10.0.0.0/16"], &["10.1.0.0/24"], &[]),
            "no matching subnet for range 10.1.0.0/24"
        );
        assert_eq!(
            flags_err(&["10.0.0.0/16"], &["nonsense"], &[]),
            "no matching subnet for range nonsense"
        );
        assert_eq!(
            flags_err(&["10.0.0.0/16"], &["10.0.0.0/99"], &[]),
            "invalid CIDR address: 10.0.0.0/99"
        );
        assert_eq!(
            flags_err(&["10.0.0.0/16", "10.2.0.0/16"], &["10.0.1.0/24", "10.0.2.0/24"], &[]),
            "cannot configure multiple ranges (10.0.2.0/24, 10.0.1.0/24) on the same subnet (10.0.0.0/16)"
        );
        assert_eq!(
            flags_err(&["10.0.0.0/16"], &[], &["10.1.0.1"]),
            "no matching subnet for gateway 10.1.0.1"
        );
        assert_eq!(
            flags_err(&["10.0.0.0/16"], &[], &["gw"]),
            "no matching subnet for gateway gw"
        );
        assert_eq!(
            flags_err(&["10.0.0.0/16", "10.2.0.0/16"], &[], &["10.0.0.1", "10.0.0.2"]),
            "cannot configure multiple gateways (10.0.0.2, 10.0.0.1) for the same subnet (10.0.0.0/16)"
        );
    }

    #[test]
    fn pool_defaults_and_validation() {
        let p = pool("172.18.0.0/16", None, None);
        assert_eq!(p.gateway, ip("172.18.0.1"));
        assert_eq!(p.gateway_net(), net("172.18.0.1/16"));
        let p = pool("fd00:1::/64", None, None);
        assert_eq!(p.gateway, ip("fd00:1::1"));
        let bad = |s: &str, r: Option<&str>, g: Option<&str>| {
            Pool::new(&SubnetConfig {
                subnet: net(s),
                ip_range: r.map(net),
                gateway: g.map(ip),
            })
            .unwrap_err()
            .to_string()
        };
        assert_eq!(
            bad("10.0.0.0/24", Some("10.0.0.0/16"), None),
            "invalid pool request: ip-range 10.0.0.0/16 is not contained in subnet 10.0.0.0/24"
        );
        assert_eq!(
            bad("10.0.0.0/24", None, Some("10.0.1.1")),
            "no matching subnet for gateway 10.0.1.1"
        );
        assert_eq!(
            bad("10.0.0.0/24", None, Some("10.0.0.255")),
            "invalid gateway 10.0.0.255: it is the broadcast address of subnet 10.0.0.0/24"
        );
        assert_eq!(
            bad("10.0.0.0/24", None, Some("10.0.0.0")),
            "invalid gateway 10.0.0.0: it is the network address of subnet 10.0.0.0/24"
        );
        assert!(bad("10.0.0.0/31", None, None).contains("no room"));
    }

    #[test]
    fn default_pools_are_dockers() {
        let v: Vec<IpNet> = default_pools().collect();
        assert_eq!(v.len(), 31);
        assert_eq!(v[0], net("172.17.0.0/16"));
        assert_eq!(v[14], net("172.31.0.0/16"));
        assert_eq!(v[15], net("192.168.0.0/20"));
        assert_eq!(v[30], net("192.168.240.0/20"));
    }

    #[test]
    fn pick_subnet_skips_routes_and_networks() {
        assert_eq!(pick_subnet(&[]).unwrap(), net("172.17.0.0/16"));
        let taken = [
            net("172.17.0.0/16"),
            net("172.18.5.0/24"),
            net("172.16.0.0/12"),
        ];
        assert_eq!(pick_subnet(&taken[..2]).unwrap(), net("172.19.0.0/16"));
        // A wide host route covers all of 172.16/12.
        assert_eq!(pick_subnet(&taken).unwrap(), net("192.168.0.0/20"));
        let all = [net("172.16.0.0/12"), net("192.168.0.0/16")];
        assert_eq!(
            pick_subnet(&all).unwrap_err().to_string(),
            "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network"
        );
    }

    #[test]
    fn pick_subnet_v6_is_stable_ula() {
        let a = pick_subnet_v6(&[], "machine-a").unwrap();
        assert_eq!(a, pick_subnet_v6(&[], "machine-a").unwrap());
        assert_ne!(a, pick_subnet_v6(&[], "machine-b").unwrap());
        assert_eq!(a.prefix_len(), 64);
        assert!(matches!(a, IpNet::V6(n) if n.addr().octets()[0] == 0xfd));
        let b = pick_subnet_v6(&[a], "machine-a").unwrap();
        assert_ne!(a, b);
        assert!(!overlaps(&a, &b));
    }

    #[test]
    fn overlap_check_uses_dockers_message() {
        let others = [net("10.0.0.0/16")];
        assert!(check_overlap(&net("10.1.0.0/16"), &others).is_ok());
        assert_eq!(
            check_overlap(&net("10.0.5.0/24"), &others)
                .unwrap_err()
                .to_string(),
            "invalid pool request: Pool overlaps with other one on this address space"
        );
        assert!(check_overlap(&net("10.0.0.0/8"), &others).is_err());
    }

    fn live(_: &Lease) -> bool {
        false
    }

    #[test]
    fn allocation_is_round_robin_and_skips_reserved() {
        let d = tempfile::tempdir().unwrap();
        let l = Leases::new(d.path());
        let p = pool("10.9.0.0/29", None, None); // .1 gateway, .2-.6 hosts, .7 broadcast
        let a: Vec<IpAddr> = (0..5)
            .map(|i| l.allocate(&p, &format!("c{i}"), None, live).unwrap())
            .collect();
        assert_eq!(
            a,
            ["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"].map(ip)
        );
        assert_eq!(
            l.allocate(&p, "c5", None, live).unwrap_err().to_string(),
            "no available IPv4 addresses on this network's address pools"
        );
        // Released addresses come back only after the round wraps: .3 then .2 are free,
        // and the next pick after .6 wraps to .2.
        assert_eq!(l.release("c1").unwrap(), vec![ip("10.9.0.3")]);
        assert_eq!(l.release("c0").unwrap(), vec![ip("10.9.0.2")]);
        assert_eq!(l.allocate(&p, "c6", None, live).unwrap(), ip("10.9.0.2"));
        assert_eq!(l.allocate(&p, "c7", None, live).unwrap(), ip("10.9.0.3"));
        assert!(l.release("nobody").unwrap().is_empty());
    }

    #[test]
    fn allocation_is_idempotent_per_owner() {
        let d = tempfile::tempdir().unwrap();
        let l = Leases::new(d.path());
        let p = pool("10.9.0.0/24", None, None);
        let a = l.allocate(&p, "c", None, live).unwrap();
        assert_eq!(l.allocate(&p, "c", None, live).unwrap(), a);
        assert_eq!(l.leases().unwrap().len(), 1);
        // Asking for another address moves the lease.
        assert_eq!(
            l.allocate(&p, "c", Some(ip("10.9.0.50")), live).unwrap(),
            ip("10.9.0.50")
        );
        assert_eq!(
            l.leases().unwrap(),
            vec![Lease {
                address: ip("10.9.0.50"),
                owner: "c".into()
            }]
        );
    }

    #[test]
    fn requested_addresses_are_checked() {
        let d = tempfile::tempdir().unwrap();
        let l = Leases::new(d.path());
        let p = pool("10.9.0.0/24", Some("10.9.0.128/25"), None);
        // Outside the ip-range but inside the subnet is allowed (static addresses), as docker.
        assert_eq!(
            l.allocate(&p, "a", Some(ip("10.9.0.10")), live).unwrap(),
            ip("10.9.0.10")
        );
        assert_eq!(
            l.allocate(&p, "b", Some(ip("10.9.0.10")), live)
                .unwrap_err()
                .to_string(),
            "Address already in use"
        );
        assert_eq!(
            l.allocate(&p, "b", Some(ip("10.9.0.1")), live)
                .unwrap_err()
                .to_string(),
            "Address already in use"
        );
        assert_eq!(
            l.allocate(&p, "b", Some(ip("10.8.0.1")), live)
                .unwrap_err()
                .to_string(),
            "Invalid address 10.8.0.1: It does not belong to any of this network's subnets"
        );
        assert!(l
            .allocate(&p, "b", Some(ip("10.9.0.255")), live)
            .unwrap_err()
            .to_string()
            .contains("broadcast"));
        // Dynamic addresses come from the range; only the subnet's own network and
        // broadcast addresses are reserved, not the range's.
        assert_eq!(l.allocate(&p, "d", None, live).unwrap(), ip("10.9.0.128"));
        // A requested address held by a stale owner is taken over.
        assert_eq!(
            l.allocate(&p, "b", Some(ip("10.9.0.10")), |x: &Lease| x.owner == "a")
                .unwrap(),
            ip("10.9.0.10")
        );
        let owners: Vec<String> = l.leases().unwrap().into_iter().map(|x| x.owner).collect();
        assert_eq!(owners, ["d", "b"]);
    }

    #[test]
    fn stale_leases_are_reclaimed_when_met() {
        let d = tempfile::tempdir().unwrap();
        let l = Leases::new(d.path());
        let p = pool("10.9.0.0/29", None, None);
        for i in 0..5 {
            l.allocate(&p, &format!("c{i}"), None, live).unwrap();
        }
        let got = l
            .allocate(&p, "new", None, |x: &Lease| x.owner == "c3")
            .unwrap();
        assert_eq!(got, ip("10.9.0.5"));
        assert!(!l.leases().unwrap().iter().any(|x| x.owner == "c3"));
    }

    #[test]
    fn big_ipv6_pool_allocates_quickly() {
        let d = tempfile::tempdir().unwrap();
        let l = Leases::new(d.path());
        let p = pool("fd00:9::/64", None, None);
        assert_eq!(l.allocate(&p, "a", None, live).unwrap(), ip("fd00:9::2"));
        assert_eq!(l.allocate(&p, "b", None, live).unwrap(), ip("fd00:9::3"));
    }

    #[test]
    fn two_pools_share_one_file() {
        let d = tempfile::tempdir().unwrap();
        let l = Leases::new(d.path());
        let p4 = pool("10.9.0.0/24", None, None);
        let p6 = pool("fd00:9::/64", None, None);
        l.allocate(&p4, "c", None, live).unwrap();
        l.allocate(&p6, "c", None, live).unwrap();
        assert_eq!(
            l.release("c").unwrap(),
            vec![ip("10.9.0.2"), ip("fd00:9::2")]
        );
    }

    #[test]
    fn empty_file_is_no_leases_and_garbage_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let l = Leases::new(d.path());
        std::fs::write(d.path().join("ipam.json"), "").unwrap();
        assert!(l.leases().unwrap().is_empty());
        std::fs::write(d.path().join("ipam.json"), "{nope").unwrap();
        let e = l.leases().unwrap_err().to_string();
        assert!(e.contains("ipam.json: corrupt lease file"), "{e}");
    }

    #[test]
    fn concurrent_allocations_never_share_an_address() {
        let d = tempfile::tempdir().unwrap();
        let p = pool("10.9.0.0/24", None, None);
        let got: Vec<IpAddr> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|t| {
                    let (dir, p) = (d.path(), &p);
                    s.spawn(move || {
                        let l = Leases::new(dir);
                        (0..10)
                            .map(|i| l.allocate(p, &format!("t{t}-{i}"), None, live).unwrap())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        let mut uniq = got.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), 80);
    }
}
