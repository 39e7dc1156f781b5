//! Networks: their records (`R/engine/networks/<id>/network.json`, see berth_network::dns),
//! `network create/ls/inspect/rm/prune`, the default `bridge` network (made on first use,
//! as docker's exists from the start), and bringing a network's bridge and nftables rules
//! up in the caller's network namespace when a container needs them.
//!
//! Every change of the set of networks happens under `R/engine/networks/lock` (flock), so
//! two `network create` of one name, or a create racing an `rm`, cannot both win, and
//! the nftables table is only dropped while no other change is under way.

use crate::error::{Error, Result};
use crate::layout::Layout;
use berth_network::dns::{NetworkRecord, NetworksDir};
use berth_network::ipam::{self, Pool};
use berth_network::ipnet::IpNet;
use berth_network::netlink::{self, BridgeSpec, Netlink};
use berth_network::nft::{NetworkRules, Nft};
use berth_network::{sysctl, NetNs};
use std::collections::BTreeMap;
use std::path::Path;

/// The default network's name (docker's).
pub const DEFAULT_NETWORK: &str = "bridge";
/// Names that are not networks of their own but network modes.
pub const PREDEFINED: &[&str] = &["bridge", "host", "none"];
/// The bridge of the default network under the default storage root (docker0's twin).
pub const DEFAULT_BRIDGE: &str = "berth0";
/// `-o` options a bridge network understands.
pub const OPT_BRIDGE_NAME: &str = "com.docker.network.bridge.name";
pub const OPT_MTU: &str = "com.docker.network.driver.mtu";

pub fn net_err(e: berth_network::Error) -> Error {
    Error::Network(e)
}

/// nft from Debian's nftables (sbin may be missing from a user's PATH).
pub fn nft() -> Nft {
    if Path::new("/usr/sbin/nft").exists() {
        Nft::new().with_binary("/usr/sbin/nft")
    } else {
        Nft::new()
    }
}

/// What `network create` asks for (the CLI's flags, unparsed values kept as given).
#[derive(Debug, Clone, Default)]
pub struct CreateNetwork {
    pub name: String,
    pub driver: Option<String>,
    pub subnets: Vec<String>,
    pub gateways: Vec<String>,
    pub ip_ranges: Vec<String>,
    pub internal: bool,
    pub ipv6: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
}

/// The networks of one storage root.
pub struct Networks<'a> {
    layout: &'a Layout,
    dir: NetworksDir,
}

/// docker's rule for network names (the same as for containers, one character allowed).
fn check_network_name(n: &str) -> Result<()> {
    if crate::create::valid_name(n, 1) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "invalid network name {n:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

fn check_ifname(n: &str) -> Result<()> {
    let ok = !n.is_empty()
        && n.len() <= netlink::IFNAME_MAX
        && n.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c))
        && n != "."
        && n != "..";
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "invalid bridge name {n:?}: at most {} characters of [a-zA-Z0-9_.-]",
            netlink::IFNAME_MAX
        )))
    }
}

/// The default network's bridge: `berth0` under the default root; under another root a
/// name of its own (two roots in one network namespace must not share a bridge).
fn default_bridge_name(layout: &Layout) -> String {
    let root = std::path::absolute(layout.root()).unwrap_or_else(|_| layout.root().to_path_buf());
    if root == Path::new(berth_image::store::DEFAULT_ROOT) {
        return DEFAULT_BRIDGE.to_string();
    }
    let hex = crate::sha256_hex(root.as_os_str().as_encoded_bytes());
    format!("berth-{}", &hex[..8])
}

/// The marker a ready bridge carries in its ifalias: its rules are installed.
fn marker(rec: &NetworkRecord) -> String {
    format!("{MARKER_PREFIX}{}", &rec.id[..12])
}

/// What every berth bridge's alias starts with, whatever its storage root.
const MARKER_PREFIX: &str = "berth:";

impl<'a> Networks<'a> {
    pub fn new(layout: &'a Layout) -> Networks<'a> {
        Networks {
            layout,
            dir: NetworksDir::new(layout.root()),
        }
    }

    pub fn dir(&self) -> &NetworksDir {
        &self.dir
    }

    /// The networks lock (exclusive, blocking), held while the set of networks changes.
    pub fn lock(&self) -> Result<std::fs::File> {
        crate::layout::mkdir_private(self.dir.path())?;
        crate::layout::flock_file(&self.dir.path().join("lock"), true)
    }

    /// Every network of the root (the default one only once it was used), by name.
    pub fn list(&self) -> Result<Vec<NetworkRecord>> {
        let mut v = Vec::new();
        for id in self.dir.network_ids().map_err(net_err)? {
            if let Some(r) = self.dir.read_network(&id).map_err(net_err)? {
                v.push(r);
            }
        }
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    /// Like [`Networks::list`], with the default network made if it was not yet.
    pub fn list_all(&self) -> Result<Vec<NetworkRecord>> {
        self.default_network()?;
        self.list()
    }

    fn by_name(&self, name: &str) -> Result<Option<NetworkRecord>> {
        Ok(self.list()?.into_iter().find(|r| r.name == name))
    }

    /// The default `bridge` network, made on first use: 172.17.0.0/16 unless that
    /// overlaps a route of this namespace or another network (then the next free pool).
    pub fn default_network(&self) -> Result<NetworkRecord> {
        if let Some(r) = self.by_name(DEFAULT_NETWORK)? {
            return Ok(r);
        }
        let _l = self.lock()?;
        if let Some(r) = self.by_name(DEFAULT_NETWORK)? {
            return Ok(r);
        }
        let subnet = ipam::pick_subnet(&self.taken_subnets()?).map_err(net_err)?;
        let pool = Pool::new(&ipam::SubnetConfig {
            subnet,
            ip_range: None,
            gateway: None,
        })
        .map_err(net_err)?;
        let rec = NetworkRecord {
            bridge: default_bridge_name(self.layout),
            subnets: vec![pool],
            created: crate::record::now_rfc3339(),
            ..bare_record(&crate::create::new_id()?, DEFAULT_NETWORK, "bridge")
        };
        self.dir.write_network(&rec).map_err(net_err)?;
        Ok(rec)
    }

    /// Subnets in use: routes of this network namespace (not our own bridges') and every
    /// network of this root.
    fn taken_subnets(&self) -> Result<Vec<IpNet>> {
        let mut taken: Vec<IpNet> = Vec::new();
        let ours: Vec<NetworkRecord> = self.list()?;
        let bridges: Vec<&str> = ours.iter().map(|r| r.bridge.as_str()).collect();
        let mut nl = Netlink::open().map_err(net_err)?;
        for (dst, via) in routed_subnets(&mut nl)? {
            if !via.is_some_and(|l| bridges.contains(&l.name.as_str())) {
                taken.push(dst);
            }
        }
        for r in &ours {
            taken.extend(r.subnets.iter().map(|p| p.subnet));
        }
        Ok(taken)
    }

    /// `network create`.
    pub fn create(&self, c: &CreateNetwork) -> Result<NetworkRecord> {
        check_network_name(&c.name)?;
        match c.driver.as_deref() {
            None | Some("bridge") => {}
            Some(d) => {
                return Err(Error::Invalid(format!(
                    "driver {d:?} is not supported: berth has bridge networks only"
                )))
            }
        }
        let mut options = BTreeMap::new();
        let mut bridge = None;
        let mut mtu = None;
        for (k, v) in &c.options {
            match k.as_str() {
                OPT_BRIDGE_NAME => {
                    check_ifname(v)?;
                    bridge = Some(v.clone());
                }
                OPT_MTU => {
                    let m: u32 = v
                        .parse()
                        .ok()
                        .filter(|m| (68..=65535).contains(m))
                        .ok_or_else(|| {
                            Error::Invalid(format!("invalid {OPT_MTU} {v:?}: 68 to 65535"))
                        })?;
                    mtu = Some(m);
                }
                _ => {
                    return Err(Error::Invalid(format!(
                        "network option {k:?} is not supported (berth knows {OPT_BRIDGE_NAME} \
                         and {OPT_MTU})"
                    )))
                }
            }
            options.insert(k.clone(), v.clone());
        }
        let cfgs =
            ipam::parse_subnet_flags(&c.subnets, &c.ip_ranges, &c.gateways).map_err(net_err)?;
        let mut pools: Vec<Pool> = cfgs
            .iter()
            .map(Pool::new)
            .collect::<std::result::Result<_, _>>()
            .map_err(net_err)?;
        let has_v6 = pools.iter().any(|p| p.subnet.addr().is_ipv6());
        if has_v6 && !c.ipv6 {
            return Err(Error::Invalid(
                "an IPv6 subnet needs --ipv6 (to enable IPv6 on the network)".into(),
            ));
        }
        let _l = self.lock()?;
        if PREDEFINED.contains(&c.name.as_str()) || self.by_name(&c.name)?.is_some() {
            return Err(Error::Invalid(format!(
                "network with name {} already exists",
                c.name
            )));
        }
        let taken = self.taken_subnets()?;
        for p in &pools {
            ipam::check_overlap(&p.subnet, &taken).map_err(net_err)?;
        }
        let id = crate::create::new_id()?;
        if !pools.iter().any(|p| p.subnet.addr().is_ipv4()) {
            let subnet = ipam::pick_subnet(&taken).map_err(net_err)?;
            pools.insert(
                0,
                Pool::new(&ipam::SubnetConfig {
                    subnet,
                    ip_range: None,
                    gateway: None,
                })
                .map_err(net_err)?,
            );
        }
        if c.ipv6 && !has_v6 {
            let subnet = ipam::pick_subnet_v6(&taken, &id).map_err(net_err)?;
            pools.push(
                Pool::new(&ipam::SubnetConfig {
                    subnet,
                    ip_range: None,
                    gateway: None,
                })
                .map_err(net_err)?,
            );
        }
        let bridge = bridge.unwrap_or_else(|| format!("br-{}", &id[..12]));
        if let Some(o) = self.list()?.iter().find(|r| r.bridge == bridge) {
            return Err(Error::Invalid(format!(
                "bridge name {bridge:?} is used by network {} already",
                o.name
            )));
        }
        let rec = NetworkRecord {
            id,
            name: c.name.clone(),
            driver: "bridge".into(),
            bridge,
            subnets: pools,
            internal: c.internal,
            ipv6: c.ipv6,
            dns: true,
            mtu,
            labels: c.labels.clone(),
            options,
            created: crate::record::now_rfc3339(),
        };
        self.dir.write_network(&rec).map_err(net_err)?;
        let _ = crate::events::emit(self.layout, "network", "create", &rec.id, attrs(&rec));
        Ok(rec)
    }

    /// A network by full id, exact name, or unique id prefix (docker's order); `bridge`
    /// is the default network, made if needed.
    pub fn find(&self, reference: &str) -> Result<NetworkRecord> {
        if reference == DEFAULT_NETWORK {
            return self.default_network();
        }
        let all = self.list()?;
        if let Some(r) = all
            .iter()
            .find(|r| r.id == reference || r.name == reference)
        {
            return Ok(r.clone());
        }
        let hits: Vec<&NetworkRecord> = if reference.bytes().all(|b| b.is_ascii_hexdigit()) {
            all.iter().filter(|r| r.id.starts_with(reference)).collect()
        } else {
            vec![]
        };
        match hits.len() {
            1 => Ok(hits[0].clone()),
            0 => Err(Error::NoSuchNetwork(reference.to_string())),
            _ => Err(Error::Invalid(format!(
                "network {reference} is ambiguous ({} matches found based on ID prefix)",
                hits.len()
            ))),
        }
    }

    /// A network by id, if it exists.
    pub fn get(&self, id: &str) -> Result<Option<NetworkRecord>> {
        self.dir.read_network(id).map_err(net_err)
    }

    /// The containers (ids) whose config lists network `id`.
    pub fn users(&self, id: &str) -> Result<Vec<String>> {
        let mut v = Vec::new();
        for cid in self.layout.container_ids()? {
            if let Ok(c) = self.layout.load_config(&cid) {
                if c.options.networks.iter().any(|n| n.network_id == id) {
                    v.push(cid);
                }
            }
        }
        Ok(v)
    }

    /// `network rm`: refused while a container is on it (docker's message); its rules,
    /// bridge and records go.
    pub fn remove(&self, reference: &str) -> Result<NetworkRecord> {
        if reference == "host" || reference == "none" {
            return Err(Error::Invalid(format!(
                "{reference} is a pre-defined network and cannot be removed"
            )));
        }
        let rec = self.find(reference)?;
        if rec.name == DEFAULT_NETWORK {
            return Err(Error::Invalid(
                "bridge is a pre-defined network and cannot be removed".into(),
            ));
        }
        let _l = self.lock()?;
        let users = self.users(&rec.id)?;
        if !users.is_empty() {
            return Err(Error::Invalid(format!(
                "error while removing network: network {} id {} has active endpoints",
                rec.name, rec.id
            )));
        }
        self.teardown(&rec)?;
        berth_image::store::remove_tree(&self.dir.network_dir(&rec.id))?;
        let _ = crate::events::emit(self.layout, "network", "destroy", &rec.id, attrs(&rec));
        Ok(rec)
    }

    /// `network prune`: user-defined networks no container is on.
    pub fn prune(&self) -> Result<Vec<String>> {
        let mut gone = Vec::new();
        for r in self.list()? {
            if r.name == DEFAULT_NETWORK {
                continue;
            }
            match self.remove(&r.id) {
                Ok(r) => gone.push(r.name),
                Err(Error::Invalid(m)) if m.contains("active endpoints") => {}
                Err(e) => return Err(e),
            }
        }
        Ok(gone)
    }

    /// The network's rules and bridge removed from this namespace (idempotent).
    pub fn teardown(&self, rec: &NetworkRecord) -> Result<()> {
        let nft = nft();
        let mut nl = Netlink::open().map_err(net_err)?;
        // Never brought up here, and its subnet is another root's network's: the rules
        // for that subnet are the other's.
        let others = nl.link(&rec.bridge).map_err(net_err)?.is_none()
            && check_routes_free(&mut nl, rec).is_err();
        if !others {
            nft.remove_network(&rules(rec)).map_err(net_err)?;
        }
        nl.delete_link(&rec.bridge).map_err(net_err)?;
        nft.delete_table_if_unused().map_err(net_err)?;
        Ok(())
    }

    /// Makes the network usable in this network namespace: its bridge with the gateway
    /// addresses, its nftables rules, forwarding (unless BERTH_IP_FORWARD=0) and
    /// route_localnet on the bridge. Cheap when done already: one netlink request sees the
    /// marker the bridge gets once all of it is in place.
    pub fn ensure_up(&self, rec: &NetworkRecord) -> Result<()> {
        let mut nl = Netlink::open().map_err(net_err)?;
        let want = marker(rec);
        let ready = |nl: &mut Netlink| -> Result<bool> {
            Ok(nl
                .link(&rec.bridge)
                .map_err(net_err)?
                .is_some_and(|l| l.alias.as_deref() == Some(want.as_str())))
        };
        if ready(&mut nl)? {
            return Ok(());
        }
        let _l = self.lock()?;
        if ready(&mut nl)? {
            return Ok(());
        }
        check_routes_free(&mut nl, rec)?;
        let spec = BridgeSpec {
            name: rec.bridge.clone(),
            mtu: rec.mtu,
            addresses: rec.subnets.iter().map(|p| p.gateway_net()).collect(),
        };
        netlink::ensure_bridge(&mut nl, &spec).map_err(net_err)?;
        let ns = NetNs::current().map_err(net_err)?;
        if forwarding_wanted() {
            sysctl::enable_ipv4_forwarding(&ns).map_err(net_err)?;
            if rec.ipv6 {
                sysctl::enable_ipv6_forwarding(&ns).map_err(net_err)?;
            }
        }
        sysctl::enable_route_localnet(&ns, &rec.bridge).map_err(net_err)?;
        nft().add_network(&rules(rec)).map_err(net_err)?;
        nl.set_alias(&rec.bridge, &want).map_err(net_err)?;
        Ok(())
    }
}

/// Before a network's bridge is first brought up in this namespace: none of its subnets
/// may be routed here through another berth bridge (a network of another storage root:
/// bridges come up at the first start, so `network create` could not see it, and the two
/// would share the `inet berth` table's maps). Said plainly, rather than as nftables'
/// "File exists". Routes of other programs are left alone, as docker leaves them for a
/// given --subnet.
fn check_routes_free(nl: &mut Netlink, rec: &NetworkRecord) -> Result<()> {
    for (dst, via) in routed_subnets(nl)? {
        let Some(via) = via.filter(|l| l.name != rec.bridge).filter(|l| {
            l.alias
                .as_deref()
                .is_some_and(|a| a.starts_with(MARKER_PREFIX))
        }) else {
            continue;
        };
        if let Some(p) = rec.subnets.iter().find(|p| ipam::overlaps(&p.subnet, &dst)) {
            return Err(Error::Invalid(format!(
                "network {}: its subnet {} overlaps {} of bridge {}, another storage root's \
                 network in this network namespace: remove one of them, or create this \
                 network with another --subnet",
                rec.name, p.subnet, dst, via.name
            )));
        }
    }
    Ok(())
}

/// The unicast, non-default routes of this namespace, each with the link it goes out of.
fn routed_subnets(nl: &mut Netlink) -> Result<Vec<(IpNet, Option<netlink::Link>)>> {
    let links = nl.links().map_err(net_err)?;
    let routes = nl.routes().map_err(net_err)?;
    Ok(routes
        .into_iter()
        .filter(|r| r.unicast && r.dst.prefix_len() != 0)
        .map(|r| {
            let via = r.oif.and_then(|i| links.iter().find(|l| l.index == i));
            (r.dst, via.cloned())
        })
        .collect())
}

/// Berth turns forwarding on where it sets up a bridge (as docker and podman do) unless
/// BERTH_IP_FORWARD=0.
pub fn forwarding_wanted() -> bool {
    std::env::var("BERTH_IP_FORWARD").map_or(true, |v| v != "0")
}

/// docker's warning when containers cannot reach beyond the host.
pub fn forwarding_warning() -> Option<&'static str> {
    let on =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").is_ok_and(|v| v.trim() == "1");
    (!on && !forwarding_wanted()).then_some(
        "WARNING: IPv4 forwarding is disabled (BERTH_IP_FORWARD=0). Networking will not work \
         beyond this host.",
    )
}

/// The nftables view of a network.
pub fn rules(rec: &NetworkRecord) -> NetworkRules {
    NetworkRules {
        bridge: rec.bridge.clone(),
        subnets: rec.subnets.iter().map(|p| p.subnet).collect(),
        internal: rec.internal,
    }
}

fn attrs(rec: &NetworkRecord) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    a.insert("name".into(), rec.name.clone());
    a.insert("type".into(), rec.driver.clone());
    a
}

/// A network record with only its id, name and driver (the rest empty).
pub fn bare_record(id: &str, name: &str, driver: &str) -> NetworkRecord {
    NetworkRecord {
        id: id.into(),
        name: name.into(),
        driver: driver.into(),
        bridge: String::new(),
        subnets: vec![],
        internal: false,
        ipv6: false,
        dns: false,
        mtu: None,
        labels: BTreeMap::new(),
        options: BTreeMap::new(),
        created: String::new(),
    }
}

/// Stand-ins for docker's predefined `host` and `none` networks (modes, not networks
/// here; listed and inspectable as docker lists them). IDs are stable per name.
pub fn predefined(name: &str) -> Option<NetworkRecord> {
    if name != "host" && name != "none" {
        return None;
    }
    let id = crate::sha256_hex(format!("berth-predefined-network:{name}").as_bytes());
    let driver = if name == "host" { "host" } else { "null" };
    Some(bare_record(&id, name, driver))
}

/// A network in `docker network inspect`'s shape, with the running containers on it.
pub fn inspect_value(layout: &Layout, rec: &NetworkRecord) -> serde_json::Value {
    use serde_json::json;
    let mut containers = serde_json::Map::new();
    for cid in layout.container_ids().unwrap_or_default() {
        let Ok(s) = crate::status::peek(layout, &cid) else {
            continue;
        };
        let Some(n) = &s.network else { continue };
        for e in n.endpoints.iter().filter(|e| e.network_id == rec.id) {
            let name = layout.load_config(&cid).map(|c| c.name).unwrap_or_default();
            containers.insert(
                cid.clone(),
                json!({
                    "Name": name,
                    "EndpointID": endpoint_id(&cid, &rec.id),
                    "MacAddress": e.mac,
                    "IPv4Address": e.ipv4.map(|ip| format!("{ip}/{}", e.ipv4_prefix)).unwrap_or_default(),
                    "IPv6Address": e.ipv6.map(|ip| format!("{ip}/{}", e.ipv6_prefix)).unwrap_or_default(),
                }),
            );
        }
    }
    let config: Vec<serde_json::Value> = rec
        .subnets
        .iter()
        .map(|p| {
            let mut c = json!({"Subnet": p.subnet.to_string(), "Gateway": p.gateway.to_string()});
            if let Some(r) = p.ip_range {
                c["IPRange"] = json!(r.to_string());
            }
            c
        })
        .collect();
    let mut options = rec.options.clone();
    // dockerd shows the bridge's name for the default network only; a user network's
    // Options are what its creator gave (docker-compose compares them with its file's).
    if rec.driver == "bridge" && rec.name == DEFAULT_NETWORK {
        options
            .entry(OPT_BRIDGE_NAME.to_string())
            .or_insert_with(|| rec.bridge.clone());
    }
    json!({
        "Name": rec.name,
        "Id": rec.id,
        "Created": if rec.created.is_empty() { "0001-01-01T00:00:00Z" } else { &rec.created },
        "Scope": "local",
        "Driver": rec.driver,
        "EnableIPv6": rec.ipv6,
        "IPAM": {"Driver": "default", "Options": {}, "Config": config},
        "Internal": rec.internal,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": options,
        "Labels": rec.labels,
    })
}

/// docker's EndpointID: 64 hex, here derived from the container and the network.
pub fn endpoint_id(cid: &str, netid: &str) -> String {
    crate::sha256_hex(format!("{cid}:{netid}").as_bytes())
}

/// Every network `network ls` knows (the root's, the default one included, and host,
/// none) that `filters` select (docker's: values of one key ORed, keys ANDed), by name.
pub fn list(l: &Layout, filters: &[String]) -> Result<Vec<NetworkRecord>> {
    let mut v = Networks::new(l).list_all()?;
    v.extend(["host", "none"].iter().filter_map(|n| predefined(n)));
    v.sort_by(|a, b| a.name.cmp(&b.name));
    filter(l, v, filters)
}

/// A network by name or id, the predefined host and none included.
pub fn find_any(l: &Layout, n: &str) -> Result<NetworkRecord> {
    if let Some(p) = predefined(n) {
        return Ok(p);
    }
    Networks::new(l).find(n)
}

/// docker's `network ls --filter`: values of one key ORed, keys ANDed.
fn filter(l: &Layout, v: Vec<NetworkRecord>, filters: &[String]) -> Result<Vec<NetworkRecord>> {
    let bad = |m: String| Error::Invalid(m);
    let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in filters {
        let (k, val) = f
            .split_once('=')
            .ok_or_else(|| bad(format!("bad format of filter (expected name=value): {f}")))?;
        match k {
            "driver" | "id" | "label" | "name" | "scope" => {}
            "type" if ["custom", "builtin"].contains(&val) => {}
            "type" => return Err(bad(format!("invalid filter: 'type'='{val}'"))),
            "dangling" if ["true", "false", "1", "0"].contains(&val) => {}
            "dangling" => return Err(bad(format!("invalid filter 'dangling={val}'"))),
            _ => return Err(bad(format!("invalid filter '{k}'"))),
        }
        by.entry(k.to_string()).or_default().push(val.to_string());
    }
    let used: Vec<String> = if by.contains_key("dangling") {
        let mut u = Vec::new();
        for id in l.container_ids()? {
            if let Ok(c) = l.load_config(&id) {
                u.extend(c.options.networks.into_iter().map(|n| n.network_id));
            }
        }
        u
    } else {
        vec![]
    };
    Ok(v.into_iter()
        .filter(|r| {
            let builtin = ["bridge", "host", "none"].contains(&r.name.as_str());
            by.iter().all(|(k, vals)| {
                vals.iter().any(|x| match k.as_str() {
                    "driver" => r.driver == *x,
                    "id" => r.id.starts_with(x.as_str()),
                    "name" => r.name.contains(x.as_str()),
                    "scope" => x == "local",
                    "type" => (x == "builtin") == builtin,
                    "dangling" => {
                        let dangling = !builtin && !used.contains(&r.id);
                        (x == "true" || x == "1") == dangling
                    }
                    "label" => crate::parse::label_matches(x, &r.labels),
                    _ => false,
                })
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_bridges() {
        check_network_name("a").unwrap();
        check_network_name("front_end-1.x").unwrap();
        assert!(check_network_name("-a").is_err());
        assert!(check_network_name("a/b").is_err());
        check_ifname("br-0123456789a").unwrap();
        assert!(check_ifname("0123456789abcdef").is_err());
        assert!(check_ifname("a b").is_err());
        let d = tempfile::tempdir().unwrap();
        let l = Layout::open(d.path()).unwrap();
        let n = default_bridge_name(&l);
        assert!(n.starts_with("berth-") && n.len() == 14, "{n}");
    }
}
