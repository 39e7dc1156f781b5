//! The records of bridge networks under the storage root, which `berth-dns` serves.
//!
//! ```text
//! R/engine/networks/
//!   dns.pid                  berth-dns's pidfile, flock'd by the running instance
//!   <netid>/network.json     NetworkRecord: what the network is (the engine writes it)
//!   <netid>/ipam.json, .lock the leases (crate::ipam::Leases)
//!   <netid>/endpoints/<cid>.json
//!                            EndpointRecord: a container attached, with the names it
//!                            answers to (written at start, removed at stop)
//!   <netid>/services/<name>.json
//!                            ServiceRecord: a service's name on this network and its
//!                            addresses (its VIP, or every replica's for dnsrr); written
//!                            and removed by the services' supervisor
//! ```
//!
//! A name given by several records (endpoints sharing an alias, a service) answers with
//! the addresses of all of them.
//!
//! Why files: berth has no daemon; the DNS server is one more process that watches these
//! directories (inotify) and reloads, so the engine only writes a file to make a name
//! resolvable. Records are replaced atomically (temp file + rename) without fsync: they
//! describe running containers, which a crash ends anyway.
//!
//! Starting the server (the engine's part): write the endpoint first, then if
//! [`server_pid`] says none is running, spawn `berth-dns --root R --ready-fd N` detached
//! and wait for "ok\n" on the fd. The server exits by itself when no endpoint is left;
//! before it does it closes its sockets, unlocks the pidfile and looks once more, so an
//! endpoint written while it was deciding to exit is never left without a server.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{io_err, Error, Result};
use crate::ipam::Pool;
use crate::MacAddr;

/// `R/engine/networks/<netid>/network.json`. Unknown fields are kept out of the way
/// (ignored on read), so the engine may store more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    /// 64 hex digits, like docker's network ids.
    pub id: String,
    pub name: String,
    /// "bridge".
    #[serde(default = "bridge_driver")]
    pub driver: String,
    /// The bridge interface (br-<12 hex of the id>, or berth0 for the default network).
    pub bridge: String,
    /// The address pools (IPv4 and, with --ipv6, IPv6).
    #[serde(default)]
    pub subnets: Vec<Pool>,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub ipv6: bool,
    /// Whether berth-dns serves names on it: user-defined networks yes, the default
    /// bridge network no (as docker).
    #[serde(default)]
    pub dns: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    /// RFC 3339 creation time.
    #[serde(default)]
    pub created: String,
}

fn bridge_driver() -> String {
    "bridge".into()
}

impl NetworkRecord {
    /// The gateway addresses, where berth-dns listens for this network.
    pub fn gateways(&self) -> Vec<IpAddr> {
        self.subnets.iter().map(|p| p.gateway).collect()
    }
}

/// `R/engine/networks/<netid>/endpoints/<cid>.json`: one container on the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRecord {
    /// The container's full id (64 hex); its first 12 are a name too.
    pub container_id: String,
    /// The container's name (without docker's leading "/").
    pub name: String,
    /// `--network-alias` values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Its addresses on this network (IPv4 and/or IPv6).
    pub addresses: Vec<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<MacAddr>,
    /// The host end of its veth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ifname: Option<String>,
}

impl EndpointRecord {
    /// The names it answers to on network `network`: its name, its aliases, its short
    /// id, and `<name>.<network>` (all lowercase: DNS names are case-insensitive).
    pub fn dns_names(&self, network: &str) -> Vec<String> {
        let mut v = Vec::new();
        let mut push = |s: String| {
            let s = s.trim_end_matches('.').to_ascii_lowercase();
            if !s.is_empty() && !v.contains(&s) {
                v.push(s);
            }
        };
        if !self.name.is_empty() {
            push(self.name.clone());
            push(format!("{}.{network}", self.name));
        }
        for a in &self.aliases {
            push(a.clone());
        }
        if self.container_id.len() >= 12 {
            push(self.container_id[..12].to_string());
        }
        v
    }
}

/// `R/engine/networks/<netid>/services/<name>.json`: a service's name on the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRecord {
    /// The service's name (compose's service name).
    pub name: String,
    /// What the name resolves to: the VIP (endpoint_mode vip) or every healthy replica's
    /// address (dnsrr). Empty: the name is ours but has no address now (answered with no
    /// data, never forwarded upstream).
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
}

impl ServiceRecord {
    /// The names it answers to on network `network`: `name` and `name.<network>`,
    /// lowercase.
    pub fn dns_names(&self, network: &str) -> Vec<String> {
        let n = self.name.trim_end_matches('.').to_ascii_lowercase();
        if n.is_empty() {
            return Vec::new();
        }
        let full = format!("{n}.{}", network.to_ascii_lowercase());
        vec![n, full]
    }
}

/// A service name is a file name here and a DNS name: compose's service names
/// (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`), at most 63 characters (one DNS label... or several).
fn check_service_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!("invalid service name {name:?}")))
    }
}

/// Where the records of a storage root live.
#[derive(Debug, Clone)]
pub struct NetworksDir {
    dir: PathBuf,
}

fn check_id(what: &str, id: &str) -> Result<()> {
    if id.is_empty() || id.starts_with('.') || id.contains(['/', '\0']) {
        return Err(Error::Invalid(format!("invalid {what} id {id:?}")));
    }
    Ok(())
}

/// Replaces `path` with `data` atomically (temp file in the same directory + rename).
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut t = tempfile::Builder::new()
        .prefix(".tmp")
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    t.write_all(data).map_err(io_err(t.path()))?;
    t.persist(path).map_err(|e| io_err(path)(e.error))?;
    Ok(())
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Error::Record {
                path: path.to_path_buf(),
                msg: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// The JSON records in directory `d` (none when it does not exist), skipping temp and
/// dot files; one removed between the listing and the read is gone, not an error.
fn read_records<T: for<'de> Deserialize<'de>>(d: &Path) -> Result<Vec<T>> {
    let rd = match std::fs::read_dir(d) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(d)(e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(io_err(d))?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || !name.ends_with(".json") {
            continue;
        }
        if let Some(r) = read_json::<T>(&e.path())? {
            out.push(r);
        }
    }
    Ok(out)
}

impl NetworksDir {
    /// `<root>/engine/networks`.
    pub fn new(root: &Path) -> NetworksDir {
        NetworksDir {
            dir: root.join("engine").join("networks"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn network_dir(&self, netid: &str) -> PathBuf {
        self.dir.join(netid)
    }

    pub fn network_json(&self, netid: &str) -> PathBuf {
        self.network_dir(netid).join("network.json")
    }

    pub fn endpoints_dir(&self, netid: &str) -> PathBuf {
        self.network_dir(netid).join("endpoints")
    }

    pub fn endpoint_json(&self, netid: &str, cid: &str) -> PathBuf {
        self.endpoints_dir(netid).join(format!("{cid}.json"))
    }

    pub fn services_dir(&self, netid: &str) -> PathBuf {
        self.network_dir(netid).join("services")
    }

    pub fn service_json(&self, netid: &str, name: &str) -> PathBuf {
        self.services_dir(netid).join(format!("{name}.json"))
    }

    /// berth-dns's pidfile.
    pub fn dns_pidfile(&self) -> PathBuf {
        self.dir.join("dns.pid")
    }

    /// The lease file of a network (see [`crate::ipam::Leases`]).
    pub fn leases(&self, netid: &str) -> crate::ipam::Leases {
        crate::ipam::Leases::new(&self.network_dir(netid))
    }

    /// Writes a network's record (creating its directories).
    pub fn write_network(&self, rec: &NetworkRecord) -> Result<()> {
        check_id("network", &rec.id)?;
        let d = self.endpoints_dir(&rec.id);
        std::fs::create_dir_all(&d).map_err(io_err(&d))?;
        write_atomic(
            &self.network_json(&rec.id),
            &serde_json::to_vec_pretty(rec).expect("record serialises"),
        )
    }

    pub fn read_network(&self, netid: &str) -> Result<Option<NetworkRecord>> {
        check_id("network", netid)?;
        read_json(&self.network_json(netid))
    }

    /// Writes a container's endpoint on network `netid`.
    pub fn write_endpoint(&self, netid: &str, rec: &EndpointRecord) -> Result<()> {
        check_id("network", netid)?;
        check_id("container", &rec.container_id)?;
        let d = self.endpoints_dir(netid);
        std::fs::create_dir_all(&d).map_err(io_err(&d))?;
        write_atomic(
            &self.endpoint_json(netid, &rec.container_id),
            &serde_json::to_vec(rec).expect("record serialises"),
        )
    }

    /// Removes a container's endpoint; a missing one is fine.
    pub fn remove_endpoint(&self, netid: &str, cid: &str) -> Result<()> {
        check_id("network", netid)?;
        check_id("container", cid)?;
        let p = self.endpoint_json(netid, cid);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(&p)(e)),
            _ => Ok(()),
        }
    }

    /// Writes (or replaces) service `rec.name`'s record on network `netid`.
    pub fn write_service(&self, netid: &str, rec: &ServiceRecord) -> Result<()> {
        check_id("network", netid)?;
        check_service_name(&rec.name)?;
        let d = self.services_dir(netid);
        std::fs::create_dir_all(&d).map_err(io_err(&d))?;
        write_atomic(
            &self.service_json(netid, &rec.name),
            &serde_json::to_vec(rec).expect("record serialises"),
        )
    }

    /// Removes service `name`'s record from network `netid`; a missing one is fine.
    pub fn remove_service(&self, netid: &str, name: &str) -> Result<()> {
        check_id("network", netid)?;
        check_service_name(name)?;
        let p = self.service_json(netid, name);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(&p)(e)),
            _ => Ok(()),
        }
    }

    /// The service records of network `netid`, by name.
    pub fn services(&self, netid: &str) -> Result<Vec<ServiceRecord>> {
        let mut v: Vec<ServiceRecord> = read_records(&self.services_dir(netid))?;
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    /// The endpoints of network `netid` (skipping temp and dot files).
    pub fn endpoints(&self, netid: &str) -> Result<Vec<EndpointRecord>> {
        let mut out: Vec<EndpointRecord> = read_records(&self.endpoints_dir(netid))?;
        out.sort_by(|a, b| a.container_id.cmp(&b.container_id));
        Ok(out)
    }

    /// The ids of the networks with a record (dot-named directories are being removed).
    pub fn network_ids(&self) -> Result<Vec<String>> {
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&self.dir)(e)),
        };
        let mut ids = Vec::new();
        for e in rd {
            let e = e.map_err(io_err(&self.dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') && e.path().join("network.json").is_file() {
                ids.push(name);
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Every network with its endpoints (what berth-dns loads).
    pub fn load(&self) -> Result<Vec<(NetworkRecord, Vec<EndpointRecord>)>> {
        let mut out = Vec::new();
        for id in self.network_ids()? {
            if let Some(n) = self.read_network(&id)? {
                let eps = self.endpoints(&id)?;
                out.push((n, eps));
            }
        }
        Ok(out)
    }
}

/// The pid of the running berth-dns of this root, if one runs (its pidfile is locked).
pub fn server_pid(dir: &NetworksDir) -> Result<Option<u32>> {
    let p = dir.dns_pidfile();
    let f = match OpenOptions::new().read(true).open(&p) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&p)(e)),
    };
    // A shared lock is refused while the server holds its exclusive one. (Taken for
    // microseconds; a server starting meanwhile retries its lock briefly.)
    match rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockShared) {
        Ok(()) => Ok(None),
        Err(rustix::io::Errno::WOULDBLOCK) => {
            let s = std::fs::read_to_string(&p).map_err(io_err(&p))?;
            Ok(s.trim().parse().ok())
        }
        Err(e) => Err(io_err(&p)(e.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(id: &str, name: &str, aliases: &[&str], addrs: &[&str]) -> EndpointRecord {
        EndpointRecord {
            container_id: id.into(),
            name: name.into(),
            aliases: aliases.iter().map(|s| s.to_string()).collect(),
            addresses: addrs.iter().map(|a| a.parse().unwrap()).collect(),
            mac: None,
            host_ifname: None,
        }
    }

    fn net(id: &str) -> NetworkRecord {
        NetworkRecord {
            id: id.into(),
            name: "appnet".into(),
            driver: "bridge".into(),
            bridge: format!("br-{}", &id[..12]),
            subnets: vec![Pool {
                subnet: "172.18.0.0/16".parse().unwrap(),
                gateway: "172.18.0.1".parse().unwrap(),
                ip_range: None,
            }],
            internal: false,
            ipv6: false,
            dns: true,
            mtu: None,
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            created: String::new(),
        }
    }

    #[test]
    fn names_of_an_endpoint() {
        let e = ep(
            "0123456789abcdef",
            "Web",
            &["api", "API", "db."],
            &["172.18.0.2"],
        );
        assert_eq!(
            e.dns_names("appnet"),
            ["web", "web.appnet", "api", "db", "0123456789ab"]
        );
        assert_eq!(
            ep("short", "", &[], &[]).dns_names("n"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn records_round_trip_through_the_layout() {
        let d = tempfile::tempdir().unwrap();
        let nd = NetworksDir::new(d.path());
        assert!(nd.load().unwrap().is_empty());
        let id = "a".repeat(64);
        let n = net(&id);
        nd.write_network(&n).unwrap();
        assert_eq!(nd.read_network(&id).unwrap(), Some(n.clone()));
        assert_eq!(n.gateways(), vec!["172.18.0.1".parse::<IpAddr>().unwrap()]);
        let e1 = ep(&"1".repeat(64), "one", &[], &["172.18.0.2"]);
        let e2 = ep(&"2".repeat(64), "two", &["b"], &["172.18.0.3", "fd00::3"]);
        nd.write_endpoint(&id, &e2).unwrap();
        nd.write_endpoint(&id, &e1).unwrap();
        // Leftovers of an interrupted write and a directory being removed are skipped.
        std::fs::write(nd.endpoints_dir(&id).join(".tmpXYZ"), "{").unwrap();
        std::fs::create_dir_all(nd.path().join(".gone")).unwrap();
        let all = nd.load().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].1, vec![e1.clone(), e2.clone()]);
        nd.remove_endpoint(&id, &e1.container_id).unwrap();
        nd.remove_endpoint(&id, &e1.container_id).unwrap();
        assert_eq!(nd.endpoints(&id).unwrap(), vec![e2]);
        assert!(nd.write_endpoint("../x", &e1).is_err());
        assert!(nd.remove_endpoint(&id, "a/b").is_err());
        // Unknown fields (the engine's own) do not break reading.
        let mut v: serde_json::Value = serde_json::to_value(&n).unwrap();
        v["engine_only"] = serde_json::json!({"x": 1});
        std::fs::write(nd.network_json(&id), v.to_string()).unwrap();
        assert_eq!(nd.read_network(&id).unwrap(), Some(n));
    }

    #[test]
    fn service_records_round_trip_and_go() {
        let d = tempfile::tempdir().unwrap();
        let nd = NetworksDir::new(d.path());
        let id = "c".repeat(64);
        nd.write_network(&net(&id)).unwrap();
        assert!(nd.services(&id).unwrap().is_empty());
        let web = ServiceRecord {
            name: "Web".into(),
            addresses: vec!["172.18.0.200".parse().unwrap()],
        };
        let api = ServiceRecord {
            name: "api".into(),
            addresses: vec!["172.18.0.2".parse().unwrap(), "172.18.0.3".parse().unwrap()],
        };
        nd.write_service(&id, &web).unwrap();
        nd.write_service(&id, &api).unwrap();
        nd.write_service(&id, &api).unwrap();
        assert_eq!(nd.services(&id).unwrap(), vec![web.clone(), api.clone()]);
        assert_eq!(web.dns_names("AppNet"), ["web", "web.appnet"]);
        nd.remove_service(&id, "Web").unwrap();
        nd.remove_service(&id, "Web").unwrap();
        assert_eq!(nd.services(&id).unwrap(), vec![api]);
        for bad in ["", "../x", "a/b", ".x", "-x", &"x".repeat(64)] {
            let r = ServiceRecord {
                name: bad.into(),
                addresses: vec![],
            };
            assert!(nd.write_service(&id, &r).is_err(), "{bad:?}");
            assert!(nd.remove_service(&id, bad).is_err(), "{bad:?}");
        }
        assert!(nd.remove_service("../n", "api").is_err());
    }

    #[test]
    fn a_corrupt_record_names_its_file() {
        let d = tempfile::tempdir().unwrap();
        let nd = NetworksDir::new(d.path());
        let id = "b".repeat(64);
        nd.write_network(&net(&id)).unwrap();
        std::fs::write(nd.endpoint_json(&id, "c"), "nope").unwrap();
        let e = nd.load().unwrap_err().to_string();
        assert!(e.contains("endpoints/c.json: "), "{e}");
    }

    #[test]
    fn server_pid_follows_the_pidfile_lock() {
        let d = tempfile::tempdir().unwrap();
        let nd = NetworksDir::new(d.path());
        assert_eq!(server_pid(&nd).unwrap(), None);
        std::fs::create_dir_all(nd.path()).unwrap();
        std::fs::write(nd.dns_pidfile(), "4242\n").unwrap();
        assert_eq!(
            server_pid(&nd).unwrap(),
            None,
            "a pidfile nobody locks is stale"
        );
        let f = std::fs::File::open(nd.dns_pidfile()).unwrap();
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive).unwrap();
        assert_eq!(server_pid(&nd).unwrap(), Some(4242));
        drop(f);
        assert_eq!(server_pid(&nd).unwrap(), None);
    }
}
