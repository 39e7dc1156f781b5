//! Services' load balancers, in berth's own `table inet berth` (see [`crate::nft`]): a
//! service's published ports and its virtual IP spread new connections over its backends
//! in the kernel (DNAT; no userland proxy, no SNAT of outside clients), and every backend
//! has a counter of the new connections it was given.
//!
//! API (all on [`Nft`], each one `nft` run unless said otherwise):
//! - [`Nft::set_service`]: create or replace a service (its ports, VIP ports, backends);
//!   idempotent. Reads the table, declares the service's slot map (see below), then ONE
//!   JSON transaction: packets see the old service or the new one, never a mix.
//! - [`Nft::set_backends`]: membership only: the slot map's elements and the counters,
//!   one transaction, never a rule. Called on every replica change.
//! - [`Nft::remove_service`] (idempotent), [`Nft::services`] (ids present, for stale
//!   sweeps), [`Nft::backend_counters`] (new connections DNATed to each backend so far).
//! - [`crate::netlink::add_vip`] / [`crate::netlink::remove_vip`]: the VIP as a /32 on the
//!   bridge (no prefix route), so the host answers the containers' ARP for it.
//! - [`service_id`]: a stable short id from project and service names.
//!
//! ```text
//! table inet berth
//!   map svc-vip4  { ifname . ipv4_addr . inet_proto . inet_service : verdict }
//!                 bridge . VIP . proto . port      -> jump svc-<id>-vip
//!   map svc-addr4 { ipv4_addr . inet_proto . inet_service : verdict }
//!                 host address . proto . port      -> jump svc-<id>-pub
//!   map svc-port4 { inet_proto . inet_service : verdict }
//!                 proto . port (every address)     -> jump svc-<id>-pub
//!   set svc-be4   { ipv4_addr; counter }           backend, comment "<id>"
//!   map svc-<id>-slots { typeof numgen random mod 64 : ip daddr }   slot -> backend
//!
//!   chain published   (reached from prerouting/output for `fib daddr type local`)
//!     iifname . ip daddr . meta l4proto . th dport vmap @svc-vip4
//!     ip daddr . meta l4proto . th dport vmap @svc-addr4
//!     nfproto ipv4 meta l4proto . th dport vmap @svc-port4
//!     ... the containers' published ports (crate::nft)
//!   chain svc-<id>-pub
//!     [ip daddr H] meta l4proto P th dport HP dnat ip to numgen random mod 64 map @svc-<id>-slots : TP
//!     meta l4proto tcp reject with tcp reset      (no backend: refused at once,
//!     reject                                        not black-holed)
//!   chain svc-<id>-vip
//!     dnat ip to numgen random mod 64 map @svc-<id>-slots        (same port)
//!     meta l4proto tcp reject with tcp reset
//!     reject
//!   chain postrouting (first rule)
//!     ct status dnat ip daddr @svc-be4             (the element's counter counts)
//! ```
//!
//! Why this shape:
//! - Spreading: `numgen random mod 64` into a 64-slot map filled round robin with the
//!   backends. Random rather than `jhash` of the addresses: a few clients (a load test,
//!   a proxy in front) would hash to few backends; random spreads every client. Random
//!   rather than `numgen inc`: no counter shared by every CPU. 64 slots: with n backends
//!   each gets 64/n slots, at worst ceil/floor apart (3 backends: 22/21/21 = 34/33/33%);
//!   hence at most 64 backends. Only the first packet of a connection passes a nat chain:
//!   conntrack keeps established connections on their backend whatever the map says, so
//!   membership changes never touch them.
//! - No backend: the slot lookup fails, the DNAT rule does not match, and the reject rules
//!   answer (TCP reset, ICMP port unreachable), instead of the packet falling through to
//!   the host.
//! - Membership is elements only: `set_backends` flushes and refills the slot map (and
//!   adds/deletes counter elements) in one transaction; the rules never change. The map's
//!   key is numgen's 32-bit integer, which nft 1.0.6 can only declare with `typeof` in its
//!   text syntax (its JSON has no typeof), hence one `nft -f -` line declaring the (empty)
//!   map before the JSON transaction in `set_service`; it has no effect on packets.
//! - Paths are the published ports' ones (crate::nft, README.md): the client's address is
//!   kept from outside; 127.0.0.1 works through the output chain, route_localnet and the
//!   127/8 masquerade; hairpin and the VIP (which goes back out of the bridge it came in
//!   by) are masqueraded by the network's `oifname B ct status dnat masquerade`. The VIP
//!   answers only traffic coming in by its own bridge (its key holds the bridge name).
//! - Counting: in postrouting (a nat chain: first packet of each connection only), after
//!   DNAT, `ip daddr @svc-be4` updates the backend's element counter: its packet count is
//!   the number of new connections DNATed to it (through any service or published port:
//!   a service's replicas publish nothing of their own). A backend's element goes when it
//!   leaves, so a backend address belongs to one service at a time.
//! - IPv4 only: backends and VIPs are `Ipv4Addr`; a published port on an IPv6 host
//!   address is an error, and one on every address answers IPv4 only.
//!
//! Cost: a transaction that deletes anything (a departing backend's slots) returns only
//! once the kernel has freed the old elements: nft's closing of its netlink socket waits
//! for an RCU grace period (~10 ms here); the change itself is in force as soon as the
//! transaction commits, a few ms after the call starts.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::nft::{self, add, cmd, ct_dnat, elem, jump, m_eq, meta, payload, rule, Nft, TABLE};
use crate::ports::Proto;

/// Slots of a service's map (new connections pick one at random).
pub const SLOTS: usize = 64;
/// The most backends a service can have (one slot each at least).
pub const MAX_BACKENDS: usize = SLOTS;

const VIP_MAP: &str = "svc-vip4";
const ADDR_MAP: &str = "svc-addr4";
const PORT_MAP: &str = "svc-port4";
const COUNTERS: &str = "svc-be4";

/// One published port of a service: traffic to `host_ip` (every IPv4 address of the host
/// when None) on `host_port` goes to a backend's `target_port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbPort {
    pub proto: Proto,
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub target_port: u16,
}

/// A service's load balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceLb {
    /// Stable short key (see [`service_id`]): `[a-z0-9]`, at most 32 characters.
    pub id: String,
    pub published: Vec<LbPort>,
    /// The virtual IP and the bridge it is on; containers on that bridge reach
    /// `vip:port` for each of `vip_ports`, DNATed to a backend's same port.
    pub vip: Option<(Ipv4Addr, String)>,
    pub vip_ports: Vec<(Proto, u16)>,
    /// In order; duplicates are dropped.
    pub backends: Vec<Ipv4Addr>,
}

/// The id of service `service` of project `project`: 12 hex digits of
/// sha256("project/service").
pub fn service_id(project: &str, service: &str) -> String {
    let h = Sha256::digest(format!("{project}/{service}").as_bytes());
    h.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 32
        && id
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "invalid service id {id:?}: 1 to 32 characters of [a-z0-9]"
        )))
    }
}

fn slots_map(id: &str) -> String {
    format!("svc-{id}-slots")
}
fn pub_chain(id: &str) -> String {
    format!("svc-{id}-pub")
}
fn vip_chain(id: &str) -> String {
    format!("svc-{id}-vip")
}

/// `backends` without duplicates, checked against [`MAX_BACKENDS`].
fn dedup(id: &str, backends: &[Ipv4Addr]) -> Result<Vec<Ipv4Addr>> {
    let mut v: Vec<Ipv4Addr> = Vec::new();
    for b in backends {
        if !v.contains(b) {
            v.push(*b);
        }
    }
    if v.len() > MAX_BACKENDS {
        return Err(Error::Invalid(format!(
            "service {id}: {} backends, at most {MAX_BACKENDS} are supported",
            v.len()
        )));
    }
    Ok(v)
}

impl ServiceLb {
    fn check(&self) -> Result<()> {
        check_id(&self.id)?;
        let id = &self.id;
        let mut keys = BTreeSet::new();
        for p in &self.published {
            if let Some(IpAddr::V6(h)) = p.host_ip {
                return Err(Error::Invalid(format!(
                    "service {id}: cannot publish on IPv6 address {h}: load-balanced services are IPv4 only"
                )));
            }
            if p.host_port == 0 || p.target_port == 0 {
                return Err(Error::Invalid(format!(
                    "service {id}: invalid port {}:{} (0)",
                    p.host_port, p.target_port
                )));
            }
            if !keys.insert((p.host_ip, p.proto, p.host_port)) {
                return Err(Error::Invalid(format!(
                    "service {id}: {} port {} is published twice",
                    p.proto, p.host_port
                )));
            }
        }
        if let Some((_, bridge)) = &self.vip {
            let ok = !bridge.is_empty()
                && bridge.len() <= crate::netlink::IFNAME_MAX
                && bridge
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c));
            if !ok {
                return Err(Error::Invalid(format!(
                    "service {id}: invalid bridge name {bridge:?}"
                )));
            }
        } else if !self.vip_ports.is_empty() {
            return Err(Error::Invalid(format!(
                "service {id}: VIP ports without a VIP"
            )));
        }
        if self.vip_ports.iter().any(|(_, p)| *p == 0) {
            return Err(Error::Invalid(format!("service {id}: invalid VIP port 0")));
        }
        dedup(id, &self.backends)?;
        Ok(())
    }

    /// Its dispatch elements: (map, key, chain jumped to).
    fn dispatch(&self) -> Vec<(&'static str, Value, String)> {
        let mut v = Vec::new();
        for p in &self.published {
            let proto = p.proto.name();
            match p.host_ip {
                Some(h) => v.push((
                    ADDR_MAP,
                    json!({"concat": [h.to_string(), proto, p.host_port]}),
                    pub_chain(&self.id),
                )),
                None => v.push((
                    PORT_MAP,
                    json!({"concat": [proto, p.host_port]}),
                    pub_chain(&self.id),
                )),
            }
        }
        if let Some((vip, bridge)) = &self.vip {
            for (proto, port) in &self.vip_ports {
                v.push((
                    VIP_MAP,
                    json!({"concat": [bridge, vip.to_string(), proto.name(), port]}),
                    vip_chain(&self.id),
                ));
            }
        }
        v
    }
}

// ---- JSON builders (pure; unit tested) ----

/// The shared maps and the counter set (part of [`nft::declarations`]).
pub(crate) fn declarations() -> Vec<Value> {
    vec![
        add(
            "map",
            json!({"name": VIP_MAP, "type": ["ifname", "ipv4_addr", "inet_proto", "inet_service"], "map": "verdict"}),
        ),
        add(
            "map",
            json!({"name": ADDR_MAP, "type": ["ipv4_addr", "inet_proto", "inet_service"], "map": "verdict"}),
        ),
        add(
            "map",
            json!({"name": PORT_MAP, "type": ["inet_proto", "inet_service"], "map": "verdict"}),
        ),
        add(
            "set",
            json!({"name": COUNTERS, "type": "ipv4_addr", "stmt": [{"counter": null}]}),
        ),
    ]
}

/// The `published` chain's service rules (part of [`nft::base_commands`]).
pub(crate) fn dispatch_rules() -> Vec<Value> {
    let vmap = |key: Vec<Value>, map: &str| json!({"vmap": {"key": {"concat": key}, "data": format!("@{map}")}});
    let (daddr, l4, dport) = (
        payload("ip", "daddr"),
        meta("l4proto"),
        payload("th", "dport"),
    );
    vec![
        rule(
            "published",
            vec![vmap(
                vec![meta("iifname"), daddr.clone(), l4.clone(), dport.clone()],
                VIP_MAP,
            )],
        ),
        rule(
            "published",
            vec![vmap(vec![daddr, l4.clone(), dport.clone()], ADDR_MAP)],
        ),
        rule(
            "published",
            vec![
                m_eq(meta("nfproto"), json!("ipv4")),
                vmap(vec![l4, dport], PORT_MAP),
            ],
        ),
    ]
}

/// The postrouting rule that counts new DNATed connections per backend.
pub(crate) fn counter_rule() -> Value {
    rule(
        "postrouting",
        vec![
            ct_dnat(),
            m_eq(payload("ip", "daddr"), json!(format!("@{COUNTERS}"))),
        ],
    )
}

fn dnat_to_slot(id: &str, port: Option<u16>) -> Value {
    let mut d = json!({
        "family": "ip",
        "addr": {"map": {
            "key": {"numgen": {"mode": "random", "mod": SLOTS, "offset": 0}},
            "data": format!("@{}", slots_map(id)),
        }},
    });
    if let Some(p) = port {
        d["port"] = json!(p);
    }
    json!({ "dnat": d })
}

fn rejects(chain: &str) -> [Value; 2] {
    [
        rule(
            chain,
            vec![
                m_eq(meta("l4proto"), json!("tcp")),
                json!({"reject": {"type": "tcp reset"}}),
            ],
        ),
        rule(chain, vec![json!({"reject": null})]),
    ]
}

/// The slot map's elements: slot i -> backends[i % n].
fn slot_elements(backends: &[Ipv4Addr]) -> Vec<Value> {
    if backends.is_empty() {
        return Vec::new();
    }
    (0..SLOTS)
        .map(|i| json!([i, backends[i % backends.len()].to_string()]))
        .collect()
}

fn counter_elem(id: &str, b: Ipv4Addr) -> Value {
    json!({"elem": {"val": b.to_string(), "comment": id}})
}

/// The membership commands: refill the slot map, counters of departed backends out, of
/// new ones in. `old`: the backends the service had (their counters exist).
pub fn backends_commands(id: &str, backends: &[Ipv4Addr], old: &[Ipv4Addr]) -> Vec<Value> {
    let mut v = vec![cmd("flush", "map", json!({"name": slots_map(id)}))];
    let slots = slot_elements(backends);
    if !slots.is_empty() {
        v.push(add("element", elem(&slots_map(id), slots)));
    }
    for b in old.iter().filter(|b| !backends.contains(b)) {
        // Added first: deleting what is already gone would fail the transaction.
        v.push(add("element", elem(COUNTERS, vec![counter_elem(id, *b)])));
        v.push(cmd(
            "delete",
            "element",
            elem(COUNTERS, vec![json!(b.to_string())]),
        ));
    }
    let new: Vec<Value> = backends
        .iter()
        .filter(|b| !old.contains(b))
        .map(|b| counter_elem(id, *b))
        .collect();
    if !new.is_empty() {
        v.push(add("element", elem(COUNTERS, new)));
    }
    v
}

/// What a table listing says about services.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Listed {
    /// (map, key, chain jumped to).
    pub dispatch: Vec<(String, Value, String)>,
    /// (backend, service id, new connections).
    pub counters: Vec<(Ipv4Addr, String, u64)>,
    pub chains: Vec<String>,
    pub maps: Vec<String>,
}

impl Listed {
    fn of(&self, id: &str) -> Listed {
        let (p, v, s) = (pub_chain(id), vip_chain(id), slots_map(id));
        Listed {
            dispatch: self
                .dispatch
                .iter()
                .filter(|d| d.2 == p || d.2 == v)
                .cloned()
                .collect(),
            counters: self
                .counters
                .iter()
                .filter(|c| c.1 == id)
                .cloned()
                .collect(),
            chains: self
                .chains
                .iter()
                .filter(|c| **c == p || **c == v)
                .cloned()
                .collect(),
            maps: self.maps.iter().filter(|m| **m == s).cloned().collect(),
        }
    }
}

fn items(listing: &Value) -> impl Iterator<Item = &Value> {
    listing["nftables"].as_array().into_iter().flatten()
}

/// Reads the services' objects out of a `nft -j list table` document.
pub fn parse_listing(listing: &Value) -> Listed {
    let mut l = Listed::default();
    for it in items(listing) {
        if let Some(c) = it.get("chain") {
            if let Some(n) = c["name"].as_str().filter(|n| n.starts_with("svc-")) {
                l.chains.push(n.to_string());
            }
        }
        if let Some(m) = it.get("map") {
            let Some(name) = m["name"].as_str() else {
                continue;
            };
            if name.starts_with("svc-") && name.ends_with("-slots") {
                l.maps.push(name.to_string());
            }
            if [VIP_MAP, ADDR_MAP, PORT_MAP].contains(&name) {
                for e in m["elem"].as_array().into_iter().flatten() {
                    let key = e[0].get("elem").map_or(&e[0], |i| &i["val"]);
                    if let Some(t) = e[1]["jump"]["target"].as_str() {
                        l.dispatch
                            .push((name.to_string(), key.clone(), t.to_string()));
                    }
                }
            }
        }
        if let Some(s) = it.get("set") {
            if s["name"] == COUNTERS {
                l.counters.extend(parse_counters(s));
            }
        }
    }
    l
}

fn parse_counters(set: &Value) -> Vec<(Ipv4Addr, String, u64)> {
    let mut out = Vec::new();
    for e in set["elem"].as_array().into_iter().flatten() {
        let inner = e.get("elem").unwrap_or(e);
        let val = inner.get("val").unwrap_or(inner);
        let Some(ip) = val.as_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        out.push((
            ip,
            inner["comment"].as_str().unwrap_or("").to_string(),
            inner["counter"]["packets"].as_u64().unwrap_or(0),
        ));
    }
    out
}

/// The ids of the services in a listing (those with a slot map).
pub fn parse_services(listing: &Value) -> Vec<String> {
    parse_listing(listing)
        .maps
        .iter()
        .filter_map(|m| m.strip_prefix("svc-")?.strip_suffix("-slots"))
        .map(str::to_string)
        .collect()
}

/// The nft text that declares a service's slot map (no JSON form in nft 1.0.6).
pub fn slot_map_declaration(id: &str) -> Result<String> {
    check_id(id)?;
    Ok(format!(
        "add table inet {TABLE}\nadd map inet {TABLE} {} {{ typeof numgen random mod {SLOTS} : ip daddr ; }}\n",
        slots_map(id)
    ))
}

/// The JSON transaction of [`Nft::set_service`]: the base table refreshed, the service's
/// chains (re)filled, its dispatch elements replaced, its slots and counters set. `now`:
/// what the table holds (from [`parse_listing`]).
pub fn service_commands(lb: &ServiceLb, now: &Listed) -> Result<Vec<Value>> {
    lb.check()?;
    let id = &lb.id;
    let backends = dedup(id, &lb.backends)?;
    let mine = now.of(id);
    let mut v = nft::base_commands();
    let (pc, vc) = (pub_chain(id), vip_chain(id));
    for c in [&pc, &vc] {
        v.push(add("chain", json!({"name": c})));
        v.push(cmd("flush", "chain", json!({"name": c})));
    }
    for p in &lb.published {
        let mut e = Vec::new();
        if let Some(h) = p.host_ip {
            e.push(m_eq(payload("ip", "daddr"), json!(h.to_string())));
        }
        e.push(m_eq(meta("l4proto"), json!(p.proto.name())));
        e.push(m_eq(payload("th", "dport"), json!(p.host_port)));
        e.push(dnat_to_slot(id, Some(p.target_port)));
        v.push(rule(&pc, e));
    }
    v.extend(rejects(&pc));
    v.push(rule(&vc, vec![dnat_to_slot(id, None)]));
    v.extend(rejects(&vc));
    // Dispatch: ours that are no longer wanted go, the wanted ones are added (adding one
    // that is there with the same verdict is a no-op).
    let want = lb.dispatch();
    for (map, key, chain) in &mine.dispatch {
        if !want
            .iter()
            .any(|(m, k, c)| m == map && k == key && c == chain)
        {
            v.push(cmd("delete", "element", elem(map, vec![key.clone()])));
        }
    }
    for (map, key, chain) in &want {
        v.push(add(
            "element",
            elem(map, vec![json!([key, jump(chain.clone())])]),
        ));
    }
    let old: Vec<Ipv4Addr> = mine.counters.iter().map(|c| c.0).collect();
    v.extend(backends_commands(id, &backends, &old));
    Ok(v)
}

/// The commands that remove service `id` as the listing shows it (empty when nothing of
/// it is left).
pub fn remove_commands(id: &str, now: &Listed) -> Result<Vec<Value>> {
    check_id(id)?;
    let mine = now.of(id);
    let mut v = Vec::new();
    for (map, key, _) in &mine.dispatch {
        v.push(cmd("delete", "element", elem(map, vec![key.clone()])));
    }
    for (b, _, _) in &mine.counters {
        v.push(cmd(
            "delete",
            "element",
            elem(COUNTERS, vec![json!(b.to_string())]),
        ));
    }
    for c in &mine.chains {
        v.push(cmd("flush", "chain", json!({"name": c})));
    }
    for c in &mine.chains {
        v.push(cmd("delete", "chain", json!({"name": c})));
    }
    for m in &mine.maps {
        v.push(cmd("delete", "map", json!({"name": m})));
    }
    Ok(v)
}

fn describe(map: &str, key: &Value) -> String {
    let parts: Vec<String> = key["concat"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| match p {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    match (map, parts.as_slice()) {
        (ADDR_MAP, [h, proto, port]) => format!("{proto} port {port} on {h}"),
        (PORT_MAP, [proto, port]) => format!("{proto} port {port} on every address"),
        (VIP_MAP, [b, vip, proto, port]) => format!("{proto} port {port} of VIP {vip} on {b}"),
        _ => key.to_string(),
    }
}

impl Nft {
    fn listed(&self) -> Result<Listed> {
        Ok(self
            .list_table()?
            .map(|l| parse_listing(&l))
            .unwrap_or_default())
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Vec<Ipv4Addr>>> {
        self.lb_backends.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates or replaces service `lb` (idempotent). A port or VIP port that another
    /// service holds is an error naming that service; the host ports themselves are for
    /// the caller to reserve (crate::ports), as for a container's published ports.
    pub fn set_service(&self, lb: &ServiceLb) -> Result<()> {
        lb.check()?;
        let now = self.listed()?;
        for (map, key, chain) in lb.dispatch() {
            if let Some((_, _, other)) = now
                .dispatch
                .iter()
                .find(|(m, k, c)| *m == map && *k == key && *c != chain)
            {
                let owner = other
                    .strip_prefix("svc-")
                    .and_then(|o| o.rsplit_once('-'))
                    .map_or(other.as_str(), |(o, _)| o);
                return Err(Error::Nft(format!(
                    "{} is taken by service {owner} already",
                    describe(map, &key)
                )));
            }
        }
        let decl = slot_map_declaration(&lb.id)?;
        self.run(&["-f", "-"], Some(decl.as_bytes()))?;
        let r = self.apply(service_commands(lb, &now)?);
        let mut cache = self.cache();
        match r {
            Ok(()) => {
                cache.insert(lb.id.clone(), dedup(&lb.id, &lb.backends)?);
                Ok(())
            }
            Err(e) => {
                cache.remove(&lb.id);
                Err(e)
            }
        }
    }

    /// Sets service `id`'s backends: new connections go to these only (none: refused),
    /// established ones stay where they are. One transaction of elements only.
    pub fn set_backends(&self, id: &str, backends: &[Ipv4Addr]) -> Result<()> {
        check_id(id)?;
        let backends = dedup(id, backends)?;
        let known = self.cache().get(id).cloned();
        let old = match known {
            Some(o) => o,
            None => self.counters_of(id)?.into_iter().map(|(b, _)| b).collect(),
        };
        let r = self.apply(backends_commands(id, &backends, &old));
        let mut cache = self.cache();
        match r {
            Ok(()) => {
                cache.insert(id.to_string(), backends);
                Ok(())
            }
            Err(e) => {
                cache.remove(id);
                match e {
                    Error::Nft(m) if m.contains("No such file or directory") => {
                        Err(Error::Invalid(format!("no load balancer for service {id}")))
                    }
                    e => Err(e),
                }
            }
        }
    }

    /// Removes service `id`: its dispatch elements, chains, slot map and counters
    /// (idempotent). The VIP address is [`crate::netlink::remove_vip`]'s.
    pub fn remove_service(&self, id: &str) -> Result<()> {
        check_id(id)?;
        self.cache().remove(id);
        let cmds = remove_commands(id, &self.listed()?)?;
        if cmds.is_empty() {
            return Ok(());
        }
        self.apply(cmds)
    }

    /// The ids of the services present (for a sweep of stale ones).
    pub fn services(&self) -> Result<Vec<String>> {
        Ok(self
            .list_table()?
            .map(|l| parse_services(&l))
            .unwrap_or_default())
    }

    /// The new connections DNATed to each of service `id`'s backends so far.
    pub fn backend_counters(&self, id: &str) -> Result<Vec<(Ipv4Addr, u64)>> {
        check_id(id)?;
        self.counters_of(id)
    }

    fn counters_of(&self, id: &str) -> Result<Vec<(Ipv4Addr, u64)>> {
        let out = match self.run(&["-j", "list", "set", nft::FAMILY, TABLE, COUNTERS], None) {
            Ok(out) => out,
            Err(Error::Nft(m)) if m.contains("No such file or directory") => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let l: Value = serde_json::from_slice(&out)
            .map_err(|e| Error::Nft(format!("unreadable listing: {e}")))?;
        Ok(items(&l)
            .filter_map(|it| it.get("set"))
            .flat_map(parse_counters)
            .filter(|c| c.1 == id)
            .map(|(b, _, n)| (b, n))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn lb() -> ServiceLb {
        ServiceLb {
            id: service_id("shop", "pay"),
            published: vec![
                LbPort {
                    proto: Proto::Tcp,
                    host_ip: None,
                    host_port: 8080,
                    target_port: 80,
                },
                LbPort {
                    proto: Proto::Udp,
                    host_ip: Some("127.0.0.1".parse().unwrap()),
                    host_port: 5353,
                    target_port: 53,
                },
            ],
            vip: Some((ip("10.77.0.200"), "br-one".into())),
            vip_ports: vec![(Proto::Tcp, 80)],
            backends: vec![ip("10.77.0.2"), ip("10.77.0.3"), ip("10.77.0.2")],
        }
    }

    fn text(v: &[Value]) -> String {
        serde_json::to_string(v).unwrap()
    }

    #[test]
    fn service_ids_are_short_stable_and_distinct() {
        let a = service_id("shop", "pay");
        assert_eq!(a.len(), 12);
        assert_eq!(a, service_id("shop", "pay"));
        assert_ne!(a, service_id("shop", "stock"));
        assert_ne!(service_id("a/b", "c"), service_id("a", "b/d"));
        check_id(&a).unwrap();
        for bad in ["", "A1", "a-b", &"a".repeat(33)] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn slots_are_filled_round_robin() {
        let b = [ip("10.0.0.2"), ip("10.0.0.3"), ip("10.0.0.4")];
        let s = slot_elements(&b);
        assert_eq!(s.len(), SLOTS);
        assert_eq!(s[0], json!([0, "10.0.0.2"]));
        assert_eq!(s[4], json!([4, "10.0.0.3"]));
        assert_eq!(s[63], json!([63, "10.0.0.2"]));
        let count = |a: &str| s.iter().filter(|e| e[1] == a).count();
        assert_eq!(
            (count("10.0.0.2"), count("10.0.0.3"), count("10.0.0.4")),
            (22, 21, 21)
        );
        assert!(slot_elements(&[]).is_empty());
    }

    #[test]
    fn service_rules_dnat_through_the_slot_map_and_reject_when_empty() {
        let l = lb();
        let id = l.id.clone();
        let s = text(&service_commands(&l, &Listed::default()).unwrap());
        // One DNAT per published port, with the target port; the VIP keeps the port.
        assert!(s.contains(&format!(
            r#"{{"dnat":{{"family":"ip","addr":{{"map":{{"key":{{"numgen":{{"mode":"random","mod":64,"offset":0}}}},"data":"@svc-{id}-slots"}}}},"port":80}}}}"#
        )), "{s}");
        assert!(s.contains(r#""right":"127.0.0.1""#) && s.contains(r#""port":53}"#));
        assert_eq!(s.matches(r#""reject":{"type":"tcp reset"}"#).count(), 2);
        assert_eq!(s.matches(r#"{"reject":null}"#).count(), 2);
        // Dispatch elements jump to the service's chains.
        assert!(s.contains(&format!(
            r#"[{{"concat":["tcp",8080]}},{{"jump":{{"target":"svc-{id}-pub"}}}}]"#
        )));
        assert!(s.contains(&format!(
            r#"[{{"concat":["127.0.0.1","udp",5353]}},{{"jump":{{"target":"svc-{id}-pub"}}}}]"#
        )));
        assert!(s.contains(&format!(
            r#"[{{"concat":["br-one","10.77.0.200","tcp",80]}},{{"jump":{{"target":"svc-{id}-vip"}}}}]"#
        )));
        // Backends deduplicated: 2 counters, slots alternate.
        assert_eq!(s.matches(&format!(r#""comment":"{id}""#)).count(), 2);
        assert!(s.contains(r#"[1,"10.77.0.3"],[2,"10.77.0.2"]"#));
        // The base rules (dispatch and counting) are refreshed with it.
        assert!(s.contains(r#""data":"@svc-vip4""#) && s.contains(r#""right":"@svc-be4""#));
    }

    #[test]
    fn replacing_a_service_drops_only_what_is_no_longer_wanted() {
        let l = lb();
        let id = l.id.clone();
        let now = Listed {
            dispatch: vec![
                (
                    PORT_MAP.into(),
                    json!({"concat": ["tcp", 8080]}),
                    pub_chain(&id),
                ),
                (
                    PORT_MAP.into(),
                    json!({"concat": ["tcp", 9090]}),
                    pub_chain(&id),
                ),
                (
                    PORT_MAP.into(),
                    json!({"concat": ["tcp", 7070]}),
                    "svc-other-pub".into(),
                ),
            ],
            counters: vec![
                (ip("10.77.0.2"), id.clone(), 5),
                (ip("10.77.0.9"), id.clone(), 7),
                (ip("10.77.0.8"), "other".into(), 1),
            ],
            chains: vec![pub_chain(&id), vip_chain(&id)],
            maps: vec![slots_map(&id)],
        };
        let v = service_commands(&l, &now).unwrap();
        let dels: Vec<String> = v
            .iter()
            .filter_map(|c| c.get("delete"))
            .map(|d| d["element"]["elem"][0].to_string())
            .collect();
        assert_eq!(dels, [r#"{"concat":["tcp",9090]}"#, r#""10.77.0.9""#]);
        let s = text(&v);
        // The kept backend's counter is not re-added (it keeps its count); the new one is.
        assert!(s.contains(&format!(
            r#"{{"elem":{{"val":"10.77.0.3","comment":"{id}"}}}}"#
        )));
        assert!(!s.contains(&format!(
            r#"{{"elem":{{"val":"10.77.0.2","comment":"{id}"}}}}"#
        )));
    }

    #[test]
    fn membership_changes_are_elements_only() {
        let id = "abc";
        let v = backends_commands(
            id,
            &[ip("10.0.0.3"), ip("10.0.0.4")],
            &[ip("10.0.0.2"), ip("10.0.0.3")],
        );
        let s = text(&v);
        assert!(!s.contains(r#""rule""#) && !s.contains(r#""chain""#));
        assert_eq!(v[0], cmd("flush", "map", json!({"name": "svc-abc-slots"})));
        assert!(s.contains(r#"[63,"10.0.0.4"]"#));
        // 10.0.0.2 leaves (re-added then deleted), 10.0.0.4 arrives, 10.0.0.3 is untouched.
        assert!(
            s.contains(r#"{"delete":{"element":{"name":"svc-be4","elem":["10.0.0.2"]"#),
            "{s}"
        );
        assert!(s.contains(r#""val":"10.0.0.4""#) && !s.contains(r#""val":"10.0.0.3""#));
        // Empty: only the flush (and the counters out).
        let v = backends_commands(id, &[], &[ip("10.0.0.2")]);
        assert_eq!(v.len(), 3);
        assert_eq!(dedup(id, &[ip("10.0.0.1"); 3]).unwrap().len(), 1);
        let many: Vec<Ipv4Addr> = (0..65u32)
            .map(|i| Ipv4Addr::from(0x0a00_0000 + i))
            .collect();
        assert!(dedup(id, &many).is_err());
    }

    #[test]
    fn bad_services_are_refused() {
        let cases: Vec<(ServiceLb, &str)> = vec![
            (
                ServiceLb {
                    published: vec![LbPort {
                        proto: Proto::Tcp,
                        host_ip: Some("::1".parse().unwrap()),
                        host_port: 80,
                        target_port: 80,
                    }],
                    ..lb()
                },
                "IPv6",
            ),
            (
                ServiceLb {
                    published: vec![lb().published[0].clone(), lb().published[0].clone()],
                    ..lb()
                },
                "published twice",
            ),
            (ServiceLb { vip: None, ..lb() }, "VIP ports without a VIP"),
            (
                ServiceLb {
                    vip: Some((ip("10.0.0.9"), "br x".into())),
                    ..lb()
                },
                "invalid bridge name",
            ),
            (
                ServiceLb {
                    id: "X".into(),
                    ..lb()
                },
                "invalid service id",
            ),
        ];
        for (l, want) in cases {
            let e = service_commands(&l, &Listed::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn listings_parse_back() {
        let id = "abc";
        let listing = json!({"nftables": [
            {"metainfo": {}},
            {"map": {"name": "svc-abc-slots", "elem": [[0, "10.0.0.2"]]}},
            {"map": {"name": "svc-zzz-slots"}},
            {"map": {"name": PORT_MAP, "elem": [[{"concat": ["tcp", 8080]}, {"jump": {"target": "svc-abc-pub"}}]]}},
            {"map": {"name": VIP_MAP, "elem": [[{"concat": ["br-one", "10.0.0.200", "tcp", 80]}, {"jump": {"target": "svc-abc-vip"}}]]}},
            {"set": {"name": COUNTERS, "elem": [
                {"elem": {"val": "10.0.0.2", "comment": "abc", "counter": {"packets": 7, "bytes": 420}}},
                {"elem": {"val": "10.0.0.3", "counter": {"packets": 1, "bytes": 60}}},
                "10.0.0.4"
            ]}},
            {"chain": {"name": "svc-abc-pub"}},
            {"chain": {"name": "svc-abc-vip"}},
            {"chain": {"name": "published"}},
        ]});
        let l = parse_listing(&listing);
        assert_eq!(parse_services(&listing), ["abc", "zzz"]);
        assert_eq!(l.dispatch.len(), 2);
        assert_eq!(
            l.counters,
            [
                (ip("10.0.0.2"), "abc".to_string(), 7),
                (ip("10.0.0.3"), String::new(), 1),
                (ip("10.0.0.4"), String::new(), 0)
            ]
        );
        let rm = remove_commands(id, &l).unwrap();
        let sh: Vec<String> = rm
            .iter()
            .map(|c| {
                let (verb, body) = c.as_object().unwrap().iter().next().unwrap();
                let (kind, _) = body.as_object().unwrap().iter().next().unwrap();
                format!("{verb} {kind}")
            })
            .collect();
        assert_eq!(
            sh,
            [
                "delete element",
                "delete element",
                "delete element",
                "flush chain",
                "flush chain",
                "delete chain",
                "delete chain",
                "delete map"
            ]
        );
        assert!(remove_commands("zzz", &Listed::default())
            .unwrap()
            .is_empty());
        assert_eq!(
            describe(
                VIP_MAP,
                &json!({"concat": ["br-one", "10.0.0.200", "tcp", 80]})
            ),
            "tcp port 80 of VIP 10.0.0.200 on br-one"
        );
        assert_eq!(
            slot_map_declaration("abc").unwrap(),
            "add table inet berth\nadd map inet berth svc-abc-slots { typeof numgen random mod 64 : ip daddr ; }\n"
        );
    }
}
