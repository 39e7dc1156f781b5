//! A container's networking, set up and torn down by its monitor at each start and exit
//! (docs/network.md):
//!
//! ```text
//! prepare (before `runtime create`)
//!   each network: ensure_up (bridge, rules; once per namespace) -> IPAM lease
//!   -> ports: reserve the host ports (bound sockets the monitor holds), DNAT elements
//!   -> /etc/hosts and /etc/resolv.conf of the container -> DNS records, berth-dns running
//! plug (after `runtime create`, before `runtime start`: the runtime made the netns)
//!   lo up; each network: veth pair, peer as ethN in the container's netns, addresses,
//!   default route (first network)
//! unplug (at exit)
//!   DNAT elements, DNS records, leases; the sockets close; the veth dies with the netns
//! ```
//!
//! The monitor runs all of this through berth-net ([`super::helper`]), so that a
//! process that lives as long as its container does not carry the netlink and nftables
//! code; `network connect` runs it here.
//!
//! Everything a crash can leave behind is recognised by its owner (the container id):
//! leases and DNAT elements of a container that no longer runs are taken back when met
//! (see [`owner_stale`]), DNS records are swept at each start on the network.

use super::files;
use super::store::{net_err, nft, Networks};
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::options::NetworkMode;
use crate::record::{ContainerConfig, EndpointState, NetworkState, PortState};
use berth_network::dns::{EndpointRecord, NetworkRecord};
use berth_network::ipnet::IpNet;
use berth_network::netlink::{self, Endpoint, Netlink};
use berth_network::nft::PortRule;
use berth_network::ports::{self, Reservation};
use berth_network::{MacAddr, NetNs};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What a running container holds of the network: its host port sockets among others.
/// Serialised (without the sockets, which go as fds) for the monitor, which hands it back
/// to berth-net for the plug and the unplug.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Attachment {
    pub state: NetworkState,
    planned: Vec<Planned>,
    reservation: Reservation,
    port_rules: Vec<PortRule>,
}

impl Attachment {
    /// The host port sockets it holds (to pass them to the monitor).
    pub fn sockets(&self) -> &[std::os::fd::OwnedFd] {
        self.reservation.sockets()
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Planned {
    net: NetworkRecord,
    endpoint: Endpoint,
}

/// True when the container `owner` no longer runs: its records are gone, or neither its
/// monitor (nor keeper) nor its init lives. A record that cannot be read is not stale
/// (`rm -f` decides about that container).
pub fn owner_stale(layout: &Layout, owner: &str) -> bool {
    if let Some((project, _)) = service_owner(owner) {
        // A service's virtual IP lives as long as its project's desired state.
        return !layout
            .projects_dir()
            .join(project)
            .join("desired.json")
            .is_file();
    }
    if !crate::lookup::is_full_id(owner) || !layout.container_dir(owner).is_dir() {
        return true;
    }
    match crate::status::load(layout, owner) {
        Ok(s) => !(crate::status::watched(&s) || crate::status::init_alive(&s)),
        Err(_) => false,
    }
}

/// The lease owner of a compose service's virtual IP on a network.
pub fn service_lease_owner(project: &str, service: &str) -> String {
    format!("svc:{project}:{service}")
}

/// (project, service) of a [`service_lease_owner`] string.
pub fn service_owner(owner: &str) -> Option<(&str, &str)> {
    owner.strip_prefix("svc:")?.split_once(':')
}

fn parse_ip(v: &str, what: &str) -> Result<IpAddr> {
    v.parse()
        .map_err(|_| Error::Invalid(format!("invalid {what} address {v:?}")))
}

/// The container's hostname (what spec.rs gives it).
fn hostname_of(cfg: &ContainerConfig) -> String {
    cfg.options
        .hostname
        .clone()
        .unwrap_or_else(|| cfg.id[..12].to_string())
}

/// Network `net` brought up here, the container's addresses leased on it, and what its
/// interface `eth<index>` will be (`default_route`: the first network's gateways).
fn plan(
    layout: &Layout,
    net: &NetworkRecord,
    a: &crate::options::NetworkAttach,
    id: &str,
    index: usize,
    host_ifname: String,
    default_route: bool,
) -> Result<(Endpoint, EndpointState)> {
    Networks::new(layout).ensure_up(net)?;
    let leases = berth_network::dns::NetworksDir::new(layout.root()).leases(&net.id);
    let mut addrs: Vec<IpNet> = Vec::new();
    let r = (|| -> Result<()> {
        for pool in &net.subnets {
            let want = if pool.subnet.addr().is_ipv4() {
                a.ipv4.as_deref().map(|v| parse_ip(v, "IPv4")).transpose()?
            } else {
                a.ipv6.as_deref().map(|v| parse_ip(v, "IPv6")).transpose()?
            };
            let ip = leases
                .allocate(pool, id, want, |l| owner_stale(layout, &l.owner))
                .map_err(net_err)?;
            addrs.push(pool.with_prefix(ip));
        }
        Ok(())
    })();
    if let Err(e) = r {
        let _ = leases.release(id);
        return Err(e);
    }
    let v4 = addrs.iter().find(|x| x.addr().is_ipv4()).map(|x| x.addr());
    let mac = match &a.mac {
        Some(m) => m
            .parse::<MacAddr>()
            .map_err(|_| Error::Invalid(format!("invalid MAC address {m:?}")))?,
        None => match v4 {
            Some(ip) => MacAddr::for_ip(ip),
            None => MacAddr::from_seed(&format!("{id}{}", net.id)),
        },
    };
    let gateways = if default_route && !net.internal {
        net.subnets.iter().map(|p| p.gateway).collect()
    } else {
        vec![]
    };
    let endpoint = Endpoint {
        bridge: net.bridge.clone(),
        host_ifname,
        ifname: format!("eth{index}"),
        mac,
        addresses: addrs.clone(),
        gateways,
        mtu: net.mtu,
    };
    let find = |v6: bool| addrs.iter().find(|x| x.addr().is_ipv6() == v6);
    let pool_gw = |v6: bool| {
        net.subnets
            .iter()
            .find(|p| p.subnet.addr().is_ipv6() == v6)
            .map(|p| p.gateway)
    };
    let state = EndpointState {
        network_id: net.id.clone(),
        network: net.name.clone(),
        ifname: endpoint.ifname.clone(),
        host_ifname: endpoint.host_ifname.clone(),
        mac: mac.to_string(),
        ipv4: find(false).map(|x| x.addr()),
        ipv4_prefix: find(false).map_or(0, |x| x.prefix_len()),
        gateway: pool_gw(false),
        ipv6: find(true).map(|x| x.addr()),
        ipv6_prefix: find(true).map_or(0, |x| x.prefix_len()),
        ipv6_gateway: pool_gw(true),
        aliases: a.aliases.clone(),
    };
    Ok((endpoint, state))
}

/// The DNS record of a container on network `net` (a DNS network).
fn endpoint_record(cfg_id: &str, name: &str, aliases: &[String], ep: &Endpoint) -> EndpointRecord {
    EndpointRecord {
        container_id: cfg_id.to_string(),
        name: name.to_string(),
        aliases: aliases.to_vec(),
        addresses: ep.addresses.iter().map(|x| x.addr()).collect(),
        mac: Some(ep.mac),
        host_ifname: Some(ep.host_ifname.clone()),
    }
}

/// Sets up what must exist before the container's process does: see the module doc.
/// `generation` makes the host veth names of successive runs differ, so a restart never
/// waits for the previous namespace's veth to go.
pub fn prepare(
    layout: &Layout,
    cfg: &ContainerConfig,
    generation: u32,
) -> Result<Option<Attachment>> {
    match &cfg.options.network {
        NetworkMode::Bridge => {}
        NetworkMode::Container(r) => {
            join_container(layout, cfg, r)?;
            return Ok(None);
        }
        NetworkMode::None | NetworkMode::Host => return Ok(None),
    }
    let nets = Networks::new(layout);
    let id = &cfg.id;
    let mut planned: Vec<Planned> = Vec::new();
    let mut att = Attachment {
        state: NetworkState::default(),
        planned: Vec::new(),
        reservation: Reservation::default(),
        port_rules: Vec::new(),
    };
    let r = (|| -> Result<()> {
        for (i, a) in cfg.options.networks.iter().enumerate() {
            let net = nets.get(&a.network_id)?.ok_or_else(|| {
                Error::Invalid(format!(
                    "network {} ({}) of container {} no longer exists",
                    a.name,
                    &a.network_id[..12.min(a.network_id.len())],
                    cfg.name
                ))
            })?;
            let host_ifname = netlink::host_veth_name(id, ((generation * 16) as u16) | i as u16);
            let (endpoint, state) = plan(layout, &net, a, id, i, host_ifname, i == 0)?;
            att.state.endpoints.push(state);
            planned.push(Planned { net, endpoint });
        }
        publish(layout, cfg, &planned, &mut att)?;
        write_files(layout, cfg, &planned, false)?;
        register_dns(layout, cfg, &planned)?;
        Ok(())
    })();
    att.planned = planned;
    if let Err(e) = r {
        unplug(layout, cfg, att);
        return Err(e);
    }
    Ok(Some(att))
}

/// Reserves the host ports and publishes them (DNAT to the first network's addresses).
fn publish(
    layout: &Layout,
    cfg: &ContainerConfig,
    planned: &[Planned],
    att: &mut Attachment,
) -> Result<()> {
    if cfg.options.publish.is_empty() {
        return Ok(());
    }
    let Some(first) = planned.first() else {
        return Ok(());
    };
    let mut specs = Vec::new();
    for p in &cfg.options.publish {
        specs.extend(ports::parse_publish(p).map_err(net_err)?);
    }
    let ep = &att.state.endpoints[0];
    let v4 = match ep.ipv4 {
        Some(IpAddr::V4(a)) => Some(a),
        _ => None,
    };
    let v6: Option<Ipv6Addr> = match ep.ipv6 {
        Some(IpAddr::V6(a)) => Some(a),
        _ => None,
    };
    let _ = first;
    att.reservation = ports::reserve(&specs, v6.is_some()).map_err(net_err)?;
    att.port_rules =
        ports::port_rules(&cfg.id, &att.reservation.bindings, v4, v6).map_err(net_err)?;
    let nft = nft();
    if let Err(e) = nft.add_ports(&att.port_rules) {
        // A crashed container's elements hold the key: sweep those owners, try again.
        let stale: Vec<String> = nft
            .list_ports()
            .unwrap_or_default()
            .into_iter()
            .map(|p| p.owner)
            .filter(|o| o != &cfg.id && owner_stale(layout, o))
            .collect();
        if stale.is_empty() {
            att.port_rules.clear();
            return Err(net_err(e));
        }
        for o in stale {
            nft.remove_owner(&o).map_err(net_err)?;
        }
        if let Err(e) = nft.add_ports(&att.port_rules) {
            att.port_rules.clear();
            return Err(net_err(e));
        }
    }
    att.state.ports = att
        .reservation
        .bindings
        .iter()
        .map(|b| PortState {
            container_port: b.container_port,
            proto: b.proto.name().to_string(),
            host_ip: b.host_ip.to_string(),
            host_port: b.host_port,
        })
        .collect();
    Ok(())
}

/// /etc/hosts and /etc/resolv.conf of a container on bridge networks.
fn write_files(
    layout: &Layout,
    cfg: &ContainerConfig,
    planned: &[Planned],
    in_place: bool,
) -> Result<()> {
    let hostname = hostname_of(cfg);
    let own: Vec<IpAddr> = planned
        .first()
        .map(|p| p.endpoint.addresses.iter().map(|a| a.addr()).collect())
        .unwrap_or_default();
    let gateway_v4 = planned.first().and_then(|p| {
        p.net
            .subnets
            .iter()
            .find(|s| s.gateway.is_ipv4())
            .map(|s| s.gateway)
    });
    let mut extra = Vec::new();
    for h in &cfg.options.dns.extra_hosts {
        let (n, ip) = files::parse_extra_host(h).map_err(Error::Invalid)?;
        let ip: IpAddr = if ip == "host-gateway" {
            gateway_v4.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
        } else {
            parse_ip(&ip, "add-host")?
        };
        extra.push((n, ip));
    }
    let dir = layout.container_dir(&cfg.id);
    files::write_file(
        &dir.join("hosts"),
        &files::hosts(&hostname, &own, &extra),
        in_place,
    )?;
    let dns_gw = planned
        .iter()
        .find(|p| p.net.dns)
        .and_then(|p| p.net.subnets.first().map(|s| s.gateway));
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let d = &cfg.options.dns;
    files::write_file(
        &dir.join("resolv.conf"),
        &files::resolv_conf(&host, dns_gw, &d.servers, &d.search, &d.options),
        in_place,
    )?;
    Ok(())
}

/// The container's names on its DNS networks, and berth-dns serving them.
fn register_dns(layout: &Layout, cfg: &ContainerConfig, planned: &[Planned]) -> Result<()> {
    let nets = Networks::new(layout);
    let dir = nets.dir();
    let mut any = false;
    for (p, a) in planned.iter().zip(&cfg.options.networks) {
        if !p.net.dns {
            continue;
        }
        // Records of containers that no longer run (a crash) go first.
        for e in dir.endpoints(&p.net.id).unwrap_or_default() {
            if e.container_id != cfg.id && owner_stale(layout, &e.container_id) {
                let _ = dir.remove_endpoint(&p.net.id, &e.container_id);
            }
        }
        dir.write_endpoint(
            &p.net.id,
            &endpoint_record(&cfg.id, &cfg.name, &a.aliases, &p.endpoint),
        )
        .map_err(net_err)?;
        any = true;
    }
    if any {
        super::dns::ensure_running(layout)?;
    }
    Ok(())
}

/// The netns exists (made by `runtime create`, init is `pid`): lo up, and each network's
/// veth. Also for `--network none`, whose netns has only lo (docker brings it up too).
pub fn plug(cfg: &ContainerConfig, att: Option<&Attachment>, pid: i32) -> Result<()> {
    if !matches!(cfg.options.network, NetworkMode::Bridge | NetworkMode::None) {
        return Ok(());
    }
    match att.map(plug_request).filter(|r| !r.endpoints.is_empty()) {
        Some(req) => plug_endpoints(pid, &req),
        None => loopback_up(pid),
    }
}

/// lo up in the namespace of init `pid`, all a `--network none` container gets: no
/// netlink needed (the monitor does this one itself).
pub fn loopback_up(pid: i32) -> Result<()> {
    NetNs::of_pid(pid as u32)
        .and_then(|ns| ns.loopback_up())
        .map_err(net_err)
}

/// What [`plug_endpoints`] needs of an attachment.
#[derive(Debug)]
pub struct PlugRequest {
    pub endpoints: Vec<Endpoint>,
    pub ipv6: bool,
}

/// The [`PlugRequest`] of an attachment.
pub fn plug_request(att: &Attachment) -> PlugRequest {
    PlugRequest {
        endpoints: att.planned.iter().map(|p| p.endpoint.clone()).collect(),
        ipv6: att.planned.iter().any(|p| p.net.ipv6),
    }
}

/// [`plug`] of a bridge container: lo up and each endpoint's veth in the namespace of
/// init `pid`.
pub fn plug_endpoints(pid: i32, req: &PlugRequest) -> Result<()> {
    let ns = NetNs::of_pid(pid as u32).map_err(net_err)?;
    let mut cnl = Netlink::open_in(&ns).map_err(net_err)?;
    cnl.loopback_up().map_err(net_err)?;
    // No IPv6 on its interfaces when none of its networks has IPv6 (as docker): the
    // kernel skips link-local addresses, DAD and router solicitations for them.
    if !req.ipv6 {
        berth_network::sysctl::set(&ns, "net.ipv6.conf.default.disable_ipv6", "1")
            .map_err(net_err)?;
    }
    let mut hnl = Netlink::open().map_err(net_err)?;
    for ep in &req.endpoints {
        netlink::setup_endpoint(&mut hnl, &mut cnl, ep).map_err(net_err)?;
    }
    Ok(())
}

/// Takes back what [`prepare`] gave (best effort; what fails is said in the result and
/// taken back later as stale): DNAT elements, DNS records, leases, host ports.
pub fn unplug(layout: &Layout, cfg: &ContainerConfig, att: Attachment) -> Vec<String> {
    unplug_keeping(layout, cfg, att, false)
}

/// [`unplug`]; with `keep_leases` the addresses stay the container's (a restart by its
/// restart policy comes back with the same ones; [`release_leases`] ends that).
pub fn unplug_keeping(
    layout: &Layout,
    cfg: &ContainerConfig,
    att: Attachment,
    keep_leases: bool,
) -> Vec<String> {
    let mut errs = Vec::new();
    if !att.port_rules.is_empty() {
        if let Err(e) = nft().remove_ports(&att.port_rules) {
            errs.push(format!("unpublish ports: {e}"));
        }
    }
    let dir = berth_network::dns::NetworksDir::new(layout.root());
    for p in &att.planned {
        if p.net.dns {
            if let Err(e) = dir.remove_endpoint(&p.net.id, &cfg.id) {
                errs.push(format!("dns record on {}: {e}", p.net.name));
            }
        }
        if !keep_leases {
            if let Err(e) = dir.leases(&p.net.id).release(&cfg.id) {
                errs.push(format!("release address on {}: {e}", p.net.name));
            }
        }
    }
    drop(att.reservation);
    // Networks connected while it ran (`network connect`) are the config's, not the
    // attachment's.
    if let Ok(now) = layout.load_config(&cfg.id) {
        for a in &now.options.networks {
            if att.planned.iter().any(|p| p.net.id == a.network_id) {
                continue;
            }
            let _ = dir.remove_endpoint(&a.network_id, &cfg.id);
            if let Err(e) = dir.leases(&a.network_id).release(&cfg.id) {
                errs.push(format!("release address on {}: {e}", a.name));
            }
        }
    }
    errs
}

/// `--network container:REF`: the bundle's network namespace becomes the running
/// container REF's, and its hosts and resolv.conf are copied (docker shares them).
pub fn join_container(layout: &Layout, cfg: &ContainerConfig, reference: &str) -> Result<()> {
    let other = crate::lookup::resolve(layout, reference)?;
    let s = crate::status::current(layout, &other)?;
    if !crate::status::init_alive(&s) {
        return Err(Error::Invalid(format!(
            "cannot join network of a non running container: {reference}"
        )));
    }
    let spec_path = layout.bundle_dir(&cfg.id).join("config.json");
    let mut spec: serde_json::Value = crate::record::load_json(&spec_path)?;
    let path = format!("/proc/{}/ns/net", s.pid);
    if let Some(nss) = spec["linux"]["namespaces"].as_array_mut() {
        nss.retain(|n| n["type"] != "network");
        nss.push(serde_json::json!({"type": "network", "path": path}));
    }
    let data = serde_json::to_vec_pretty(&spec).map_err(|e| Error::Json(spec_path.clone(), e))?;
    crate::record::write_nosync(&spec_path, &data)?;
    let (src, dst) = (layout.container_dir(&other), layout.container_dir(&cfg.id));
    for f in ["hosts", "resolv.conf"] {
        if let Ok(t) = std::fs::read_to_string(src.join(f)) {
            files::write_file(&dst.join(f), &t, false)?;
        }
    }
    Ok(())
}

/// [`unplug`] for a container whose [`Attachment`] was lost with a killed monitor (an
/// adopted one): its DNAT elements, DNS records and leases, found by its id.
pub fn unplug_owner(layout: &Layout, cfg: &ContainerConfig) -> Vec<String> {
    let mut errs = Vec::new();
    if cfg.options.network != NetworkMode::Bridge {
        return errs;
    }
    if !cfg.options.publish.is_empty() {
        if let Err(e) = nft().remove_owner(&cfg.id) {
            errs.push(format!("unpublish ports: {e}"));
        }
    }
    let dir = berth_network::dns::NetworksDir::new(layout.root());
    for a in &cfg.options.networks {
        let _ = dir.remove_endpoint(&a.network_id, &cfg.id);
        if let Err(e) = dir.leases(&a.network_id).release(&cfg.id) {
            errs.push(format!("release address on {}: {e}", a.name));
        }
    }
    errs
}

/// `network connect` of a running container: the network's veth into its namespace now
/// (the config already lists the network; the next start sets it up as the others).
pub fn connect_running(
    layout: &Layout,
    cfg: &ContainerConfig,
    index: usize,
    pid: i32,
) -> Result<EndpointState> {
    let a = &cfg.options.networks[index];
    let nets = Networks::new(layout);
    let net = nets
        .get(&a.network_id)?
        .ok_or_else(|| Error::NoSuchNetwork(a.name.clone()))?;
    // Apart from the monitor's names (generation * 16 + index).
    let host_ifname = netlink::host_veth_name(&cfg.id, 0xf00 | index as u16);
    let (endpoint, state) = plan(layout, &net, a, &cfg.id, index, host_ifname, false)?;
    let r = (|| -> Result<()> {
        let ns = NetNs::of_pid(pid as u32).map_err(net_err)?;
        let mut cnl = Netlink::open_in(&ns).map_err(net_err)?;
        let mut hnl = Netlink::open().map_err(net_err)?;
        netlink::setup_endpoint(&mut hnl, &mut cnl, &endpoint).map_err(net_err)?;
        if net.dns {
            nets.dir()
                .write_endpoint(
                    &net.id,
                    &endpoint_record(&cfg.id, &cfg.name, &a.aliases, &endpoint),
                )
                .map_err(net_err)?;
            super::dns::ensure_running(layout)?;
        }
        Ok(())
    })();
    if let Err(e) = r {
        let _ = nets.dir().leases(&net.id).release(&cfg.id);
        let _ = nets.dir().remove_endpoint(&net.id, &cfg.id);
        return Err(e);
    }
    Ok(state)
}

/// `network disconnect` of a running container: its interface on that network goes
/// (deleting the host end deletes the pair), with its DNS record and lease.
pub fn disconnect_running(layout: &Layout, cid: &str, ep: &EndpointState) -> Result<()> {
    let mut hnl = Netlink::open().map_err(net_err)?;
    netlink::teardown_endpoint(&mut hnl, &ep.host_ifname).map_err(net_err)?;
    let dir = berth_network::dns::NetworksDir::new(layout.root());
    let _ = dir.remove_endpoint(&ep.network_id, cid);
    dir.leases(&ep.network_id).release(cid).map_err(net_err)?;
    Ok(())
}

/// The container's addresses on every network of its config go back to the pools.
pub fn release_leases(layout: &Layout, cfg: &ContainerConfig) {
    let dir = berth_network::dns::NetworksDir::new(layout.root());
    for a in &cfg.options.networks {
        let _ = dir.leases(&a.network_id).release(&cfg.id);
    }
}
