//! berth's nftables table, `table inet berth`: published ports (DNAT), masquerade and
//! isolation between networks. See README.md for the chains drawn in order and the paths
//! packets take.
//!
//! Why this shape:
//! - One table of berth's own, never anyone else's (no iptables, no other table touched),
//!   so berth can add and remove it whole and cannot break a host firewall's rules.
//! - Everything goes through `nft -j -f -` (JSON, one transaction per change): the kernel
//!   applies a transaction atomically, so a packet never sees half a change.
//! - Published ports are map ELEMENTS, not rules: starting or stopping a container adds or
//!   deletes a few elements (each with the container id as comment, so a sweep can find
//!   an owner's leftovers), and the DNAT rules never change.
//! - Per-network rules live in per-network chains reached through verdict maps keyed by
//!   bridge name or subnet, so a network is added or removed as a unit by adding or
//!   deleting its chains and its map elements; no rule handles are ever needed.
//! - Every change is idempotent: "add" of a table, set, map or chain that exists is a no-op;
//!   base chains are flushed and refilled inside the same transaction; a deletion first
//!   re-adds what it deletes (same key and value), so deleting what is already gone is
//!   fine. nft 1.0.6 has no `destroy` command; this is how to get its effect.
//! - The forward chain only drops (policy accept): it isolates berth's bridges, it does
//!   not open anything another firewall closes.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use ipnet::IpNet;
use serde_json::{json, Value};

use crate::error::{sys_err, Error, Result};
use crate::ports::Proto;
use crate::NetNs;

/// The table's name (family inet).
pub const TABLE: &str = "berth";

pub(crate) const FAMILY: &str = "inet";

/// A network's part of the ruleset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRules {
    /// The network's bridge; it also names the network's chains.
    pub bridge: String,
    /// Its subnets (IPv4 and/or IPv6).
    pub subnets: Vec<IpNet>,
    /// `--internal`: no traffic to or from any other interface, no masquerade.
    pub internal: bool,
}

/// One published port: traffic to `host_ip` (or any local address of the container's
/// family when None) on `host_port` goes to `container_ip:container_port`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortRule {
    /// Whose it is (the container id), stored as the element's comment.
    pub owner: String,
    pub proto: Proto,
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_ip: IpAddr,
    pub container_port: u16,
}

impl PortRule {
    /// The map pair (container address, container port) this port's key lives in.
    fn maps(&self) -> (&'static str, &'static str) {
        match (self.container_ip.is_ipv4(), self.host_ip.is_some()) {
            (true, false) => ("dnat4-ip", "dnat4-port"),
            (true, true) => ("dnat4-addr-ip", "dnat4-addr-port"),
            (false, false) => ("dnat6-ip", "dnat6-port"),
            (false, true) => ("dnat6-addr-ip", "dnat6-addr-port"),
        }
    }

    fn key(&self) -> Value {
        let proto = self.proto.name();
        match self.host_ip {
            Some(ip) => json!({"concat": [ip.to_string(), proto, self.host_port]}),
            None => json!({"concat": [proto, self.host_port]}),
        }
    }

    fn check(&self) -> Result<()> {
        if let Some(h) = self.host_ip {
            if h.is_ipv4() != self.container_ip.is_ipv4() {
                return Err(Error::Invalid(format!(
                    "cannot publish {h}:{} to {}: the addresses' families differ",
                    self.host_port, self.container_ip
                )));
            }
        }
        if self.owner.contains('"') || self.owner.len() > 128 {
            return Err(Error::Invalid(format!(
                "invalid port owner {:?}",
                self.owner
            )));
        }
        Ok(())
    }
}

// ---- JSON builders (pure; unit tested) ----

pub(crate) fn obj(kind: &str, mut body: Value) -> Value {
    body["family"] = json!(FAMILY);
    body["table"] = json!(TABLE);
    json!({ kind: body })
}

pub(crate) fn add(kind: &str, body: Value) -> Value {
    json!({"add": obj(kind, body)})
}

pub(crate) fn cmd(verb: &str, kind: &str, body: Value) -> Value {
    json!({ verb: obj(kind, body) })
}

pub(crate) fn rule(chain: &str, expr: Vec<Value>) -> Value {
    add("rule", json!({"chain": chain, "expr": expr}))
}

pub(crate) fn m_eq(left: Value, right: Value) -> Value {
    json!({"match": {"op": "==", "left": left, "right": right}})
}

fn m_ne(left: Value, right: Value) -> Value {
    json!({"match": {"op": "!=", "left": left, "right": right}})
}

pub(crate) fn meta(key: &str) -> Value {
    json!({"meta": {"key": key}})
}

pub(crate) fn payload(proto: &str, field: &str) -> Value {
    json!({"payload": {"protocol": proto, "field": field}})
}

pub(crate) fn ct_dnat() -> Value {
    json!({"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}})
}

fn masquerade() -> Value {
    json!({"masquerade": null})
}

/// `dnat ip to <key> map @X-ip : <key> map @X-port`: two lookups with the same key, one
/// for the address and one for the port. (A single map with `ipv4_addr . inet_service`
/// values is shorter, but nft 1.0.6 crashes parsing that rule from JSON.)
fn dnat_maps(ip_family: &str, with_addr: bool, maps: &str) -> Vec<Value> {
    let daddr = payload(if ip_family == "ip" { "ip" } else { "ip6" }, "daddr");
    let mut key = vec![meta("l4proto"), payload("th", "dport")];
    let mut expr = Vec::new();
    if with_addr {
        key.insert(0, daddr);
    } else {
        expr.push(m_eq(
            meta("nfproto"),
            json!(if ip_family == "ip" { "ipv4" } else { "ipv6" }),
        ));
    }
    let lookup = |data: String| json!({"map": {"key": {"concat": key.clone()}, "data": data}});
    expr.push(json!({"dnat": {
        "family": ip_family,
        "addr": lookup(format!("@{maps}-ip")),
        "port": lookup(format!("@{maps}-port")),
    }}));
    expr
}

/// The table, its sets and maps, its base chains and their (fixed) rules. Safe to send
/// again: existing objects are kept, the base chains are flushed and refilled in the
/// same transaction.
pub fn base_commands() -> Vec<Value> {
    let mut v = declarations();
    let hooks = [
        ("prerouting", "nat", "prerouting", -100),
        ("output", "nat", "output", -100),
        ("postrouting", "nat", "postrouting", 100),
        ("forward", "filter", "forward", 0),
    ];
    for (name, ty, hook, prio) in hooks {
        v.push(add(
            "chain",
            json!({"name": name, "type": ty, "hook": hook, "prio": prio, "policy": "accept"}),
        ));
        v.push(cmd("flush", "chain", json!({"name": name})));
    }
    v.push(add("chain", json!({"name": "published"})));
    v.push(cmd("flush", "chain", json!({"name": "published"})));
    // Published ports: only traffic to a local address (of the host namespace) is DNATed,
    // from outside (prerouting) or from the host itself (output).
    let local = m_eq(
        json!({"fib": {"result": "type", "flags": ["daddr"]}}),
        json!("local"),
    );
    for chain in ["prerouting", "output"] {
        v.push(rule(
            chain,
            vec![local.clone(), json!({"jump": {"target": "published"}})],
        ));
    }
    // Services (crate::lb) first: a VIP from its own bridge, a service port published on
    // one address, a service port published on every (IPv4) address.
    v.extend(crate::lb::dispatch_rules());
    v.push(rule("published", dnat_maps("ip", true, "dnat4-addr")));
    v.push(rule("published", dnat_maps("ip", false, "dnat4")));
    v.push(rule("published", dnat_maps("ip6", true, "dnat6-addr")));
    v.push(rule("published", dnat_maps("ip6", false, "dnat6")));
    // New connections DNATed to a service's backend are counted (crate::lb) before any
    // source NAT ends the chain.
    v.push(crate::lb::counter_rule());
    // Source NAT: a connection to a port published on 127.0.0.1 leaves through a bridge
    // with a loopback source, which must become the bridge's address; then each network's
    // chain, chosen by the packet's source subnet.
    v.push(rule(
        "postrouting",
        vec![
            m_eq(
                payload("ip", "saddr"),
                json!({"prefix": {"addr": "127.0.0.0", "len": 8}}),
            ),
            m_eq(meta("oifname"), json!("@bridges")),
            masquerade(),
        ],
    ));
    v.push(rule(
        "postrouting",
        vec![json!({"vmap": {"key": payload("ip", "saddr"), "data": "@snat4"}})],
    ));
    v.push(rule(
        "postrouting",
        vec![json!({"vmap": {"key": payload("ip6", "saddr"), "data": "@snat6"}})],
    ));
    // Isolation: each network's chains, chosen by the bridge the packet comes in by or
    // goes out by.
    v.push(rule(
        "forward",
        vec![json!({"vmap": {"key": meta("iifname"), "data": "@fwd-in"}})],
    ));
    v.push(rule(
        "forward",
        vec![json!({"vmap": {"key": meta("oifname"), "data": "@fwd-out"}})],
    ));
    v
}

/// The table and its sets and maps (idempotent "add"s).
pub(crate) fn declarations() -> Vec<Value> {
    let mut v = vec![json!({"add": {"table": {"family": FAMILY, "name": TABLE}}})];
    v.push(add("set", json!({"name": "bridges", "type": "ifname"})));
    for (name, key) in [("fwd-in", "ifname"), ("fwd-out", "ifname")] {
        v.push(add(
            "map",
            json!({"name": name, "type": key, "map": "verdict"}),
        ));
    }
    for (name, key) in [("snat4", "ipv4_addr"), ("snat6", "ipv6_addr")] {
        v.push(add(
            "map",
            json!({"name": name, "type": key, "map": "verdict", "flags": ["interval"]}),
        ));
    }
    let any = json!(["inet_proto", "inet_service"]);
    for (name, key, addr) in [
        ("dnat4", any.clone(), "ipv4_addr"),
        (
            "dnat4-addr",
            json!(["ipv4_addr", "inet_proto", "inet_service"]),
            "ipv4_addr",
        ),
        ("dnat6", any, "ipv6_addr"),
        (
            "dnat6-addr",
            json!(["ipv6_addr", "inet_proto", "inet_service"]),
            "ipv6_addr",
        ),
    ] {
        v.push(add(
            "map",
            json!({"name": format!("{name}-ip"), "type": key, "map": addr}),
        ));
        v.push(add(
            "map",
            json!({"name": format!("{name}-port"), "type": key, "map": "inet_service"}),
        ));
    }
    v.extend(crate::lb::declarations());
    v
}

fn snat_chain(bridge: &str) -> String {
    format!("snat-{bridge}")
}
fn fwd_in_chain(bridge: &str) -> String {
    format!("fwd-in-{bridge}")
}
fn fwd_out_chain(bridge: &str) -> String {
    format!("fwd-out-{bridge}")
}

fn network_chains(n: &NetworkRules) -> [String; 3] {
    [
        snat_chain(&n.bridge),
        fwd_in_chain(&n.bridge),
        fwd_out_chain(&n.bridge),
    ]
}

pub(crate) fn elem(set: &str, elems: Vec<Value>) -> Value {
    json!({"name": set, "elem": elems})
}

pub(crate) fn jump(chain: String) -> Value {
    json!({"jump": {"target": chain}})
}

fn subnet_key(s: &IpNet) -> Value {
    json!({"prefix": {"addr": s.network().to_string(), "len": s.prefix_len()}})
}

/// The elements that tie a network's chains in: (set or map name, element).
fn network_elements(n: &NetworkRules) -> Vec<(&'static str, Value)> {
    let b = n.bridge.as_str();
    let mut v = vec![
        ("bridges", json!(b)),
        ("fwd-in", json!([b, jump(fwd_in_chain(b))])),
        ("fwd-out", json!([b, jump(fwd_out_chain(b))])),
    ];
    for s in &n.subnets {
        let map = if s.addr().is_ipv4() { "snat4" } else { "snat6" };
        v.push((map, json!([subnet_key(&s.trunc()), jump(snat_chain(b))])));
    }
    v
}

fn check_network(n: &NetworkRules) -> Result<()> {
    let ok = !n.bridge.is_empty()
        && n.bridge.len() <= crate::netlink::IFNAME_MAX
        && n.bridge
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
    if !ok {
        return Err(Error::Invalid(format!(
            "invalid bridge name {:?}",
            n.bridge
        )));
    }
    Ok(())
}

/// The commands that install (or refresh) the base table and network `n`.
pub fn network_commands(n: &NetworkRules) -> Result<Vec<Value>> {
    check_network(n)?;
    let b = n.bridge.as_str();
    let mut v = base_commands();
    let [snat, fwd_in, fwd_out] = network_chains(n);
    for c in [&snat, &fwd_in, &fwd_out] {
        v.push(add("chain", json!({"name": c})));
        v.push(cmd("flush", "chain", json!({"name": c})));
    }
    let oif_is_b = m_eq(meta("oifname"), json!(b));
    // Source NAT of the network's subnet(s), by where the packet goes:
    // back out of its own bridge after DNAT (hairpin, or a neighbour reaching a published
    // port through the host's address): masquerade, else the reply would bypass the host;
    // to another berth bridge: keep the source (only DNATed traffic gets there);
    // anywhere else: masquerade (egress), unless the network is internal.
    v.push(rule(&snat, vec![oif_is_b.clone(), ct_dnat(), masquerade()]));
    v.push(rule(
        &snat,
        vec![
            m_eq(meta("oifname"), json!("@bridges")),
            json!({"return": null}),
        ],
    ));
    if !n.internal {
        v.push(rule(&snat, vec![masquerade()]));
    }
    // Forwarding from the bridge: to itself fine; to another berth bridge only for
    // published ports (DNAT); an internal network nowhere else at all.
    v.push(rule(&fwd_in, vec![oif_is_b, json!({"return": null})]));
    if n.internal {
        v.push(rule(&fwd_in, vec![json!({"drop": null})]));
    } else {
        v.push(rule(&fwd_in, vec![ct_dnat(), json!({"return": null})]));
        v.push(rule(
            &fwd_in,
            vec![
                m_eq(meta("oifname"), json!("@bridges")),
                json!({"drop": null}),
            ],
        ));
    }
    // Forwarding to the bridge: only an internal network refuses what comes from
    // elsewhere.
    if n.internal {
        v.push(rule(
            &fwd_out,
            vec![m_ne(meta("iifname"), json!(b)), json!({"drop": null})],
        ));
    }
    for (set, e) in network_elements(n) {
        if set == "fwd-out" && !n.internal {
            continue;
        }
        v.push(add("element", elem(set, vec![e])));
    }
    Ok(v)
}

/// The commands that remove network `n` (its elements, then its chains). Idempotent: each
/// element and chain is added before it is deleted.
pub fn network_teardown_commands(n: &NetworkRules) -> Result<Vec<Value>> {
    check_network(n)?;
    let mut v = declarations();
    let chains = network_chains(n);
    for c in &chains {
        v.push(add("chain", json!({"name": c})));
    }
    for (set, e) in network_elements(n) {
        v.push(add("element", elem(set, vec![e.clone()])));
        let key = match e {
            Value::Array(kv) => kv[0].clone(),
            k => k,
        };
        v.push(cmd("delete", "element", elem(set, vec![key])));
    }
    for c in &chains {
        v.push(cmd("flush", "chain", json!({"name": c})));
        v.push(cmd("delete", "chain", json!({"name": c})));
    }
    Ok(v)
}

/// A port's two elements: (map, element) for the address map and the port map.
fn port_elems(p: &PortRule) -> [(&'static str, Value); 2] {
    let (ip_map, port_map) = p.maps();
    let k = json!({"elem": {"val": p.key(), "comment": p.owner}});
    [
        (ip_map, json!([k, p.container_ip.to_string()])),
        (port_map, json!([k, p.container_port])),
    ]
}

/// The commands that publish `ports`.
pub fn port_add_commands(ports: &[PortRule]) -> Result<Vec<Value>> {
    let mut v = declarations();
    for p in ports {
        p.check()?;
        for (map, e) in port_elems(p) {
            v.push(add("element", elem(map, vec![e])));
        }
    }
    Ok(v)
}

/// The commands that unpublish `ports` (idempotent: each element is re-added, with the
/// same key and value, before it is deleted).
pub fn port_remove_commands(ports: &[PortRule]) -> Result<Vec<Value>> {
    let mut v = declarations();
    for p in ports {
        p.check()?;
        for (map, e) in port_elems(p) {
            v.push(add("element", elem(map, vec![e])));
            v.push(cmd("delete", "element", elem(map, vec![p.key()])));
        }
    }
    Ok(v)
}

/// Deletes the table (idempotent: added first).
pub fn table_delete_commands() -> Vec<Value> {
    vec![
        json!({"add": {"table": {"family": FAMILY, "name": TABLE}}}),
        json!({"delete": {"table": {"family": FAMILY, "name": TABLE}}}),
    ]
}

/// The document `nft -j -f -` reads.
pub fn document(cmds: Vec<Value>) -> Value {
    let mut all = vec![json!({"metainfo": {"json_schema_version": 1}})];
    all.extend(cmds);
    json!({ "nftables": all })
}

// ---- reading the table back ----

pub(crate) fn elements<'a>(listing: &'a Value, map: &str) -> Vec<(&'a Value, &'a str, &'a Value)> {
    let mut out = Vec::new();
    for it in listing["nftables"].as_array().into_iter().flatten() {
        let Some(m) = it.get("map") else { continue };
        if m["name"] != map {
            continue;
        }
        for e in m["elem"].as_array().into_iter().flatten() {
            let (k, val) = (&e[0], &e[1]);
            match k.get("elem") {
                Some(inner) => {
                    out.push((&inner["val"], inner["comment"].as_str().unwrap_or(""), val))
                }
                None => out.push((k, "", val)),
            }
        }
    }
    out
}

fn proto_of(v: &Value) -> Option<Proto> {
    match v {
        Value::String(s) => Proto::from_name(s),
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .and_then(Proto::from_number),
        _ => None,
    }
}

/// Published ports found in a `nft -j list table inet berth` document: the address map's
/// elements joined with the port map's by key.
pub fn parse_ports(listing: &Value) -> Vec<PortRule> {
    let mut out = Vec::new();
    for (maps, addr_keyed) in [
        ("dnat4", false),
        ("dnat4-addr", true),
        ("dnat6", false),
        ("dnat6-addr", true),
    ] {
        let ports = elements(listing, &format!("{maps}-port"));
        for (key, owner, ip) in elements(listing, &format!("{maps}-ip")) {
            let Some(cport) = ports
                .iter()
                .find(|(k, _, _)| *k == key)
                .and_then(|(_, _, v)| v.as_u64())
            else {
                continue;
            };
            let parts = key["concat"].as_array().cloned().unwrap_or_default();
            let (host_ip, rest) = if addr_keyed {
                match parts
                    .first()
                    .and_then(|x| x.as_str())
                    .and_then(|s| s.parse().ok())
                {
                    Some(h) => (Some(h), &parts[1..]),
                    None => continue,
                }
            } else {
                (None, &parts[..])
            };
            let [proto, hport] = rest else { continue };
            let (Some(proto), Some(hport), Some(cip)) = (
                proto_of(proto),
                hport.as_u64().and_then(|p| u16::try_from(p).ok()),
                ip.as_str().and_then(|s| s.parse().ok()),
            ) else {
                continue;
            };
            out.push(PortRule {
                owner: owner.to_string(),
                proto,
                host_ip,
                host_port: hport,
                container_ip: cip,
                container_port: cport as u16,
            });
        }
    }
    out
}

/// Bridges of the networks in a listing (the `bridges` set).
pub fn parse_bridges(listing: &Value) -> Vec<String> {
    let items = listing["nftables"].as_array().cloned().unwrap_or_default();
    for it in items {
        if let Some(s) = it.get("set") {
            if s["name"] == "bridges" {
                return s["elem"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e.as_str().map(str::to_string))
                    .collect();
            }
        }
    }
    Vec::new()
}

// ---- running nft ----

/// Runs `nft` in one network namespace.
#[derive(Debug)]
pub struct Nft {
    ns: Option<NetNs>,
    bin: PathBuf,
    /// Each service's backends as this instance last wrote them (crate::lb): lets
    /// `set_backends` skip reading the table back. Filled from the kernel when unknown.
    pub(crate) lb_backends:
        std::sync::Mutex<std::collections::HashMap<String, Vec<std::net::Ipv4Addr>>>,
}

impl Nft {
    /// `nft` (found on PATH) in the caller's namespace.
    pub fn new() -> Nft {
        Nft {
            ns: None,
            bin: PathBuf::from("nft"),
            lb_backends: Default::default(),
        }
    }

    /// `nft` in namespace `ns` (spawned from a thread that entered it).
    pub fn in_netns(ns: &NetNs) -> Result<Nft> {
        Ok(Nft {
            ns: Some(ns.try_clone()?),
            bin: PathBuf::from("nft"),
            lb_backends: Default::default(),
        })
    }

    /// Uses `bin` instead of `nft` from PATH.
    pub fn with_binary(mut self, bin: impl Into<PathBuf>) -> Nft {
        self.bin = bin.into();
        self
    }

    pub(crate) fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<Vec<u8>> {
        let go = || -> Result<std::process::Output> {
            let mut c = Command::new(&self.bin);
            c.args(args)
                .stdin(if stdin.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let what = format!("run {}", self.bin.display());
            let mut child = c.spawn().map_err(sys_err(&what))?;
            if let Some(data) = stdin {
                let mut i = child.stdin.take().expect("piped stdin");
                i.write_all(data).map_err(sys_err(&what))?;
            }
            child.wait_with_output().map_err(sys_err(&what))
        };
        let out = match &self.ns {
            Some(ns) => ns.run(go)??,
            None => go()?,
        };
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(Error::Nft(err.trim().to_string()));
        }
        Ok(out.stdout)
    }

    /// Applies `cmds` as one transaction (`nft -j -f -`).
    pub fn apply(&self, cmds: Vec<Value>) -> Result<()> {
        let doc = serde_json::to_vec(&document(cmds)).expect("json");
        self.run(&["-j", "-f", "-"], Some(&doc)).map(|_| ())
    }

    /// `nft -j list table inet berth`, or None when there is no such table.
    pub fn list_table(&self) -> Result<Option<Value>> {
        match self.run(&["-j", "list", "table", FAMILY, TABLE], None) {
            Ok(out) => serde_json::from_slice(&out)
                .map(Some)
                .map_err(|e| Error::Nft(format!("unreadable listing: {e}"))),
            Err(Error::Nft(m)) if m.contains("No such file or directory") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Installs (or refreshes) the base table and network `n`.
    pub fn add_network(&self, n: &NetworkRules) -> Result<()> {
        // Two transactions: nft 1.0.6 fails (ENOENT) to add an element to an interval map
        // created in the same JSON transaction, so the maps are made first.
        self.apply(declarations())?;
        self.apply(network_commands(n)?)
    }

    /// Removes network `n`'s chains and elements (idempotent).
    pub fn remove_network(&self, n: &NetworkRules) -> Result<()> {
        if self.list_table()?.is_none() {
            return Ok(());
        }
        self.apply(network_teardown_commands(n)?)
    }

    /// Publishes `ports` (one transaction).
    /// Publishing a key that another owner holds fails, naming that owner (a stale one
    /// is for the caller to sweep with [`Nft::remove_owner`] before trying again).
    pub fn add_ports(&self, ports: &[PortRule]) -> Result<()> {
        if ports.is_empty() {
            return Ok(());
        }
        let err = match self.apply(port_add_commands(ports)?) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let held = self.list_ports().unwrap_or_default();
        for p in ports {
            if let Some(h) = held
                .iter()
                .find(|h| h.maps() == p.maps() && h.key() == p.key() && *h != p)
            {
                return Err(Error::Nft(format!(
                    "{} port {} on {} is published for {} already",
                    p.proto,
                    p.host_port,
                    p.host_ip
                        .map_or_else(|| "every address".to_string(), |ip| ip.to_string()),
                    h.owner
                )));
            }
        }
        Err(err)
    }

    /// Unpublishes `ports` (one transaction, idempotent). If a port's key now holds
    /// another value (not ours), that one is left alone and ours is known gone.
    pub fn remove_ports(&self, ports: &[PortRule]) -> Result<()> {
        if ports.is_empty() {
            return Ok(());
        }
        match self.apply(port_remove_commands(ports)?) {
            Ok(()) => Ok(()),
            // The re-add of a key held with another value fails the whole transaction:
            // fall back to deleting exactly what the listing shows as ours.
            Err(_) => {
                let mine: Vec<PortRule> = self
                    .list_ports()?
                    .into_iter()
                    .filter(|l| ports.iter().any(|p| p == l))
                    .collect();
                if mine.is_empty() {
                    return Ok(());
                }
                self.apply(port_remove_commands(&mine)?)
            }
        }
    }

    /// Every published port in the table (for a sweep of stale owners).
    pub fn list_ports(&self) -> Result<Vec<PortRule>> {
        Ok(self
            .list_table()?
            .map(|l| parse_ports(&l))
            .unwrap_or_default())
    }

    /// Unpublishes every port of `owner`; returns how many there were.
    pub fn remove_owner(&self, owner: &str) -> Result<usize> {
        let mine: Vec<PortRule> = self
            .list_ports()?
            .into_iter()
            .filter(|p| p.owner == owner)
            .collect();
        if !mine.is_empty() {
            self.apply(port_remove_commands(&mine)?)?;
        }
        Ok(mine.len())
    }

    /// The bridges of the networks installed.
    pub fn bridges(&self) -> Result<Vec<String>> {
        Ok(self
            .list_table()?
            .map(|l| parse_bridges(&l))
            .unwrap_or_default())
    }

    /// Deletes the table if no network, no published port and no service is left in it; returns
    /// whether it is gone. Run it under the lock that guards network creation, or a
    /// network added between the listing and the deletion loses its rules.
    pub fn delete_table_if_unused(&self) -> Result<bool> {
        let Some(l) = self.list_table()? else {
            return Ok(true);
        };
        if !parse_bridges(&l).is_empty()
            || !parse_ports(&l).is_empty()
            || !crate::lb::parse_services(&l).is_empty()
        {
            return Ok(false);
        }
        self.apply(table_delete_commands())?;
        Ok(true)
    }

    /// Deletes the table, whatever is in it (idempotent).
    pub fn delete_table(&self) -> Result<()> {
        self.apply(table_delete_commands())
    }
}

impl Default for Nft {
    fn default() -> Self {
        Nft::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(internal: bool) -> NetworkRules {
        NetworkRules {
            bridge: "br-x".into(),
            subnets: vec![
                "172.18.0.0/16".parse().unwrap(),
                "fd00:1::/64".parse().unwrap(),
            ],
            internal,
        }
    }

    fn port(host: Option<&str>, cip: &str) -> PortRule {
        PortRule {
            owner: "c1".into(),
            proto: Proto::Udp,
            host_ip: host.map(|h| h.parse().unwrap()),
            host_port: 5353,
            container_ip: cip.parse().unwrap(),
            container_port: 53,
        }
    }

    /// The commands as "verb kind name" lines, to compare shapes.
    fn shape(cmds: &[Value]) -> Vec<String> {
        cmds.iter()
            .map(|c| {
                let (verb, body) = c.as_object().unwrap().iter().next().unwrap();
                let (kind, o) = body.as_object().unwrap().iter().next().unwrap();
                let name = o
                    .get("name")
                    .or(o.get("chain"))
                    .and_then(|n| n.as_str())
                    .unwrap_or("");
                format!("{verb} {kind} {name}")
            })
            .collect()
    }

    fn text(cmds: &[Value]) -> String {
        serde_json::to_string(cmds).unwrap()
    }

    #[test]
    fn base_is_only_berths_table_and_refills_its_chains() {
        let b = base_commands();
        let s = text(&b);
        assert!(b.iter().all(|c| {
            let t = c.to_string();
            t.contains(r#""family":"inet""#) && !t.contains(r#""table":"filter""#)
        }));
        assert!(!s.contains(r#""table":"nat""#));
        let sh = shape(&b);
        for chain in [
            "prerouting",
            "output",
            "postrouting",
            "forward",
            "published",
        ] {
            let add = sh
                .iter()
                .position(|l| *l == format!("add chain {chain}"))
                .unwrap();
            assert_eq!(sh[add + 1], format!("flush chain {chain}"), "{chain}");
        }
        // Only the forward chain filters, and it never accepts.
        assert!(s.contains(r#""hook":"forward""#) && s.contains(r#""policy":"accept""#));
        assert!(!s.contains(r#""accept":null"#));
        // Both dnat lookups per family use the same key; the 127/8 masquerade is there.
        assert_eq!(s.matches("@dnat4-ip").count(), 1);
        assert_eq!(s.matches("@dnat6-addr-port").count(), 1);
        assert!(s.contains(r#""addr":"127.0.0.0","len":8"#));
    }

    #[test]
    fn network_rules_depend_on_internal() {
        let open = text(&network_commands(&net(false)).unwrap());
        let closed = text(&network_commands(&net(true)).unwrap());
        // Egress masquerade only for a network that may leave.
        assert_eq!(
            open.matches(r#"{"masquerade":null}"#).count(),
            3,
            "127/8, hairpin, egress"
        );
        assert_eq!(closed.matches(r#"{"masquerade":null}"#).count(), 2);
        // An internal network's bridge is tied into fwd-out too, the other is not.
        assert!(closed
            .contains(r#""name":"fwd-out","elem":[["br-x",{"jump":{"target":"fwd-out-br-x"}}]]"#));
        assert!(!open.contains(r#""name":"fwd-out","elem""#));
        for s in [&open, &closed] {
            assert!(s.contains(
                r#"[{"prefix":{"addr":"172.18.0.0","len":16}},{"jump":{"target":"snat-br-x"}}]"#
            ));
            assert!(s.contains(r#"{"prefix":{"addr":"fd00:1::","len":64}}"#));
            assert!(s.contains(r#""name":"snat6""#));
        }
    }

    #[test]
    fn teardown_readds_before_it_deletes() {
        let t = network_teardown_commands(&net(false)).unwrap();
        let sh = shape(&t);
        for (i, l) in sh.iter().enumerate() {
            if let Some(rest) = l.strip_prefix("delete element ") {
                assert_eq!(sh[i - 1], format!("add element {rest}"));
            }
            if let Some(rest) = l.strip_prefix("delete chain ") {
                assert_eq!(sh[i - 1], format!("flush chain {rest}"));
                assert!(sh.contains(&format!("add chain {rest}")));
            }
        }
        // Chains go after every element that jumps to them.
        let last_elem = sh
            .iter()
            .rposition(|l| l.starts_with("delete element"))
            .unwrap();
        let first_chain = sh
            .iter()
            .position(|l| l.starts_with("delete chain"))
            .unwrap();
        assert!(last_elem < first_chain);
        assert!(!sh.iter().any(|l| l.starts_with("flush chain prerouting")));
    }

    #[test]
    fn ports_go_to_the_right_maps_with_their_owner() {
        let cases = [
            (None, "172.18.0.2", "dnat4"),
            (Some("127.0.0.1"), "172.18.0.2", "dnat4-addr"),
            (None, "fd00:1::2", "dnat6"),
            (Some("fd00:9::1"), "fd00:1::2", "dnat6-addr"),
        ];
        for (h, c, maps) in cases {
            let p = port(h, c);
            let add = text(&port_add_commands(std::slice::from_ref(&p)).unwrap());
            assert!(
                add.contains(&format!(r#""name":"{maps}-ip","elem":[[{{"elem":{{"val":"#)),
                "{add}"
            );
            assert_eq!(add.matches(r#""comment":"c1""#).count(), 2, "{add}");
            assert!(add.contains(&format!(r#""name":"{maps}-port""#)));
            assert!(
                add.contains(&format!(r#""{c}"]"#)) && add.contains(",53]"),
                "{add}"
            );
            let del = port_remove_commands(&[p]).unwrap();
            let sh = shape(&del);
            assert_eq!(
                sh.iter()
                    .filter(|l| l.starts_with("delete element"))
                    .count(),
                2
            );
        }
        let bad = PortRule {
            host_ip: Some("::1".parse().unwrap()),
            ..port(None, "172.18.0.2")
        };
        assert!(port_add_commands(&[bad]).is_err());
        let bad = PortRule {
            owner: "a\"b".into(),
            ..port(None, "172.18.0.2")
        };
        assert!(port_add_commands(&[bad]).is_err());
    }

    #[test]
    fn listing_parses_back_into_ports() {
        let ports = [
            port(None, "172.18.0.2"),
            port(Some("127.0.0.1"), "172.18.0.2"),
            port(Some("fd00:9::1"), "fd00:1::2"),
        ];
        // What `nft -j list table` prints for these: the maps with their elements.
        let mut items = vec![json!({"metainfo": {}})];
        for maps in ["dnat4", "dnat4-addr", "dnat6", "dnat6-addr"] {
            let mine: Vec<&PortRule> = ports
                .iter()
                .filter(|p| p.maps().0 == format!("{maps}-ip"))
                .collect();
            let ip: Vec<Value> = mine.iter().map(|p| port_elems(p)[0].1.clone()).collect();
            let pt: Vec<Value> = mine.iter().map(|p| port_elems(p)[1].1.clone()).collect();
            items.push(json!({"map": {"name": format!("{maps}-ip"), "elem": ip}}));
            items.push(json!({"map": {"name": format!("{maps}-port"), "elem": pt}}));
        }
        items.push(json!({"set": {"name": "bridges", "elem": ["br-a", "br-b"]}}));
        let listing = json!({"nftables": items});
        assert_eq!(parse_ports(&listing), ports.to_vec());
        assert_eq!(parse_bridges(&listing), ["br-a", "br-b"]);
        assert!(parse_ports(&json!({})).is_empty());
    }

    #[test]
    fn bridge_names_are_checked() {
        for bad in ["", "br x", "br\"x", "a-very-long-bridge"] {
            let n = NetworkRules {
                bridge: bad.into(),
                ..net(false)
            };
            assert!(network_commands(&n).is_err(), "{bad:?}");
            assert!(network_teardown_commands(&n).is_err(), "{bad:?}");
        }
    }
}
