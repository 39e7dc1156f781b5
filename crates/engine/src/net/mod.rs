//! Bridge networks in the engine (docs/network.md): the networks' records and commands
//! ([`store`]), a container's attachment at start and exit ([`attach`]), its hosts and
//! resolv.conf ([`files`]), the DNS server ([`dns`]). The kernel work (netlink, nftables,
//! IPAM, port reservation) is berth_network's.

pub mod attach;
pub mod dns;
pub mod files;
pub mod helper;
pub mod store;

pub use store::{Networks, DEFAULT_NETWORK};

use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::options::{CreateOptions, NetworkMode};
use berth_network::ports;

/// docker's words for options that need a user-defined network.
const USER_DEFINED_ONLY: &str = "is supported on user defined networks only";

/// `--expose` / EXPOSE values: `PORT[-END][/PROTO]` to `(port, proto)` pairs.
pub fn parse_expose(v: &str) -> Result<Vec<(u16, String)>> {
    let (p, proto) = v.split_once('/').unwrap_or((v, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !["tcp", "udp", "sctp"].contains(&proto.as_str()) {
        return Err(Error::Invalid(format!("invalid proto: {proto}")));
    }
    let bad = || Error::Invalid(format!("invalid range format for --expose: {v}"));
    let (a, b) = match p.split_once('-') {
        Some((a, b)) => (
            a.parse::<u16>().map_err(|_| bad())?,
            b.parse::<u16>().map_err(|_| bad())?,
        ),
        None => {
            let a = p.parse::<u16>().map_err(|_| bad())?;
            (a, a)
        }
    };
    if a == 0 || b < a {
        return Err(bad());
    }
    Ok((a..=b).map(|x| (x, proto.clone())).collect())
}

/// Resolves and checks the networking options of a container being created: network
/// names to records (the default network when none is named), `-P` against the image's
/// and `--expose`'s ports, every `-p` parsed, and the conflicts docker refuses. Nothing is
/// changed when it fails.
pub fn resolve_create(
    layout: &Layout,
    opts: &mut CreateOptions,
    image_exposed: &[String],
) -> Result<()> {
    let mut exposed: Vec<(u16, String)> = Vec::new();
    for e in image_exposed.iter().chain(opts.expose.iter()) {
        for x in parse_expose(e)? {
            if !exposed.contains(&x) {
                exposed.push(x);
            }
        }
    }
    let mut specs = Vec::new();
    for p in &opts.publish {
        specs.extend(ports::parse_publish(p).map_err(store::net_err)?);
    }
    let publishing = !specs.is_empty() || (opts.publish_all && !exposed.is_empty());
    match &opts.network {
        NetworkMode::Bridge => {}
        mode => {
            if publishing || opts.publish_all {
                return Err(Error::Invalid(
                    "conflicting options: port publishing and the container type network mode"
                        .into(),
                ));
            }
            if let Some(a) = opts.networks.first() {
                if a.ipv4.is_some() || a.ipv6.is_some() {
                    return Err(Error::Invalid(format!(
                        "user specified IP address {USER_DEFINED_ONLY}"
                    )));
                }
                if !a.aliases.is_empty() {
                    return Err(Error::Invalid(format!(
                        "network-scoped alias {USER_DEFINED_ONLY}"
                    )));
                }
            }
            if let NetworkMode::Container(r) = mode {
                if opts.hostname.is_some() {
                    return Err(Error::Invalid(
                        "conflicting options: hostname and the network mode".into(),
                    ));
                }
                if !opts.dns.servers.is_empty() || !opts.dns.extra_hosts.is_empty() {
                    return Err(Error::Invalid(
                        "conflicting options: dns and the network mode".into(),
                    ));
                }
                let other = crate::lookup::resolve(layout, r)?;
                let s = crate::status::current(layout, &other)?;
                if !crate::status::init_alive(&s) {
                    return Err(Error::Invalid(format!(
                        "cannot join network of a non running container: {r}"
                    )));
                }
            }
            opts.networks.clear();
            return Ok(());
        }
    }
    let nets = Networks::new(layout);
    if opts.networks.is_empty() {
        opts.networks.push(Default::default());
    }
    let mut seen = Vec::new();
    for a in opts.networks.iter_mut() {
        let want = if a.network_id.is_empty() {
            if a.name.is_empty() {
                DEFAULT_NETWORK.to_string()
            } else {
                a.name.clone()
            }
        } else {
            a.network_id.clone()
        };
        if want == "host" || want == "none" {
            return Err(Error::Invalid(format!(
                "container cannot be connected to network {want} and to other networks"
            )));
        }
        let rec = nets.find(&want)?;
        if seen.contains(&rec.id) {
            return Err(Error::Invalid(format!(
                "container is connected to network {} twice",
                rec.name
            )));
        }
        seen.push(rec.id.clone());
        let user_defined = rec.name != DEFAULT_NETWORK;
        if !user_defined && (a.ipv4.is_some() || a.ipv6.is_some()) {
            return Err(Error::Invalid(format!(
                "user specified IP address {USER_DEFINED_ONLY}"
            )));
        }
        if !user_defined && !a.aliases.is_empty() {
            return Err(Error::Invalid(format!(
                "network-scoped alias {USER_DEFINED_ONLY}"
            )));
        }
        for (v, six) in [(&a.ipv4, false), (&a.ipv6, true)] {
            let Some(v) = v else { continue };
            let ip: std::net::IpAddr = v.parse().map_err(|_| {
                Error::Invalid(format!(
                    "invalid IPv{} address: {v}",
                    if six { 6 } else { 4 }
                ))
            })?;
            if ip.is_ipv6() != six {
                return Err(Error::Invalid(format!(
                    "invalid IPv{} address: {v}",
                    if six { 6 } else { 4 }
                )));
            }
            let pool = rec
                .subnets
                .iter()
                .find(|p| p.subnet.contains(&ip))
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "invalid address {ip}: it does not belong to any of network {}'s subnets",
                        rec.name
                    ))
                })?;
            if ip == pool.gateway || ip == pool.subnet.network() {
                return Err(Error::Invalid(format!(
                    "invalid address {ip}: it is network {}'s {} address",
                    rec.name,
                    if ip == pool.gateway {
                        "gateway"
                    } else {
                        "network"
                    }
                )));
            }
            let leases = nets
                .dir()
                .leases(&rec.id)
                .leases()
                .map_err(store::net_err)?;
            if let Some(l) = leases.iter().find(|l| l.address == ip) {
                if !attach::owner_stale(layout, &l.owner) {
                    return Err(Error::Invalid(format!(
                        "Address already in use: {ip} is used by container {}",
                        &l.owner[..12.min(l.owner.len())]
                    )));
                }
            }
        }
        if let Some(m) = &a.mac {
            m.parse::<berth_network::MacAddr>()
                .map_err(|_| Error::Invalid(format!("{m} is not a valid mac address")))?;
        }
        a.network_id = rec.id.clone();
        a.name = rec.name.clone();
    }
    let first = nets
        .get(&opts.networks[0].network_id)?
        .ok_or_else(|| Error::NoSuchNetwork(opts.networks[0].name.clone()))?;
    if publishing && first.internal {
        return Err(Error::Invalid(format!(
            "cannot publish ports: network {} is internal (no traffic leaves it)",
            first.name
        )));
    }
    // -P: every exposed port that is not published explicitly, on a free host port.
    if opts.publish_all {
        for (p, proto) in exposed {
            let already = specs
                .iter()
                .any(|s| s.container_port == p && s.proto.name() == proto);
            if !already {
                opts.publish.push(format!("{p}/{proto}"));
            }
        }
    }
    Ok(())
}

/// docker's network connect/disconnect event.
fn network_event(layout: &Layout, action: &str, netid: &str, name: &str, container: &str) {
    let mut at = std::collections::BTreeMap::new();
    at.insert("container".to_string(), container.to_string());
    at.insert("name".to_string(), name.to_string());
    at.insert("type".to_string(), "bridge".to_string());
    let _ = crate::events::emit(layout, "network", action, netid, at);
}

/// `network connect [--ip] [--ip6] [--alias] NET CONTAINER`: the container's config
/// lists the network from now on; a running container gets its interface at once.
pub fn connect(
    layout: &Layout,
    net_ref: &str,
    container: &str,
    mut attach: crate::options::NetworkAttach,
) -> Result<()> {
    let id = crate::lookup::resolve(layout, container)?;
    let nets = Networks::new(layout);
    let rec = nets.find(net_ref)?;
    let lock = layout.lock(&id)?;
    let mut cfg = layout.load_config(&id)?;
    if cfg.options.network != NetworkMode::Bridge {
        return Err(Error::Invalid(
            "container sharing network namespace with another container or host cannot be \
             connected to any other network"
                .into(),
        ));
    }
    if cfg.options.networks.iter().any(|n| n.network_id == rec.id) {
        return Err(Error::Invalid(format!(
            "endpoint with name {} already exists in network {}",
            cfg.name, rec.name
        )));
    }
    attach.network_id = String::new();
    attach.name = rec.id.clone();
    // The same checks as at create, on a copy holding only this network.
    let mut probe = CreateOptions {
        networks: vec![attach],
        ..Default::default()
    };
    resolve_create(layout, &mut probe, &[])?;
    let attach = probe.networks.remove(0);
    cfg.options.networks.push(attach);
    let index = cfg.options.networks.len() - 1;
    let state = crate::status::load(layout, &id)?;
    let running = crate::status::init_alive(&state)
        && matches!(
            state.status,
            crate::record::Status::Running | crate::record::Status::Paused
        );
    if running {
        let ep = attach::connect_running(layout, &cfg, index, state.pid)?;
        let mut s = crate::status::load(layout, &id)?;
        s.network
            .get_or_insert_with(Default::default)
            .endpoints
            .push(ep);
        layout.save_state(&id, &s, &lock)?;
    }
    layout.save_config(&cfg, &lock)?;
    network_event(layout, "connect", &rec.id, &rec.name, &id);
    Ok(())
}

/// `network disconnect [-f] NET CONTAINER`.
pub fn disconnect(layout: &Layout, net_ref: &str, container: &str, force: bool) -> Result<()> {
    let id = crate::lookup::resolve(layout, container)?;
    let nets = Networks::new(layout);
    let rec = match nets.find(net_ref) {
        Ok(r) => r,
        // -f: the network may be gone already; drop it from the container by name.
        Err(Error::NoSuchNetwork(_)) if force => store::bare_record(net_ref, net_ref, "bridge"),
        Err(e) => return Err(e),
    };
    let lock = layout.lock(&id)?;
    let mut cfg = layout.load_config(&id)?;
    let Some(i) = cfg
        .options
        .networks
        .iter()
        .position(|n| n.network_id == rec.id || n.name == rec.name)
    else {
        return Err(Error::Invalid(format!(
            "container {} is not connected to network {}",
            &id[..12],
            rec.name
        )));
    };
    let removed = cfg.options.networks.remove(i);
    let mut s = crate::status::load(layout, &id)?;
    if let Some(n) = s.network.as_mut() {
        if let Some(j) = n
            .endpoints
            .iter()
            .position(|e| e.network_id == removed.network_id)
        {
            let ep = n.endpoints.remove(j);
            if crate::status::init_alive(&s) {
                attach::disconnect_running(layout, &id, &ep)?;
            }
            layout.save_state(&id, &s, &lock)?;
        }
    }
    layout.save_config(&cfg, &lock)?;
    network_event(layout, "disconnect", &removed.network_id, &rec.name, &id);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expose_values() {
        assert_eq!(parse_expose("80").unwrap(), vec![(80, "tcp".to_string())]);
        assert_eq!(
            parse_expose("53/udp").unwrap(),
            vec![(53, "udp".to_string())]
        );
        assert_eq!(parse_expose("8000-8002/tcp").unwrap().len(), 3);
        assert!(parse_expose("x").is_err());
        assert!(parse_expose("80/icmp").is_err());
        assert!(parse_expose("9-8").is_err());
    }
}
