//! A project's load balancing, on top of berth-network's service load balancer
//! (crates/network/src/lb.rs: nft slot maps, one transaction per membership change):
//! - a service with published ports gets one entry per port on the host, spread over its
//!   ready replicas' addresses on its first network; the host ports are reserved by
//!   sockets the supervisor holds, as a container's monitor holds its own;
//! - on each of its networks, the service name resolves (berth-dns service records) to a
//!   virtual IP (endpoint_mode vip: a lease of that network owned by the service, a /32 on
//!   its bridge, DNATed to the ready replicas' addresses on that network), or to the ready
//!   replicas' own addresses (endpoint_mode dnsrr, and services that declare no port:
//!   a VIP balances the ports it knows of).
//!
//! Membership changes touch elements only (`set_backends`, DNS records), never rules.

use crate::compose::{EndpointMode, Project, Service};
use crate::{Error, Result};
use berth_engine::layout::Layout;
use berth_engine::net::store::Networks;
use berth_network::dns::{NetworkRecord, NetworksDir};
use berth_network::lb::{service_id, LbPort, ServiceLb};
use berth_network::ports::{self, Proto, Reservation};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

/// One network a service is on.
#[derive(Debug)]
struct OnNet {
    rec: NetworkRecord,
    /// The VIP's load balancer id and address (vip mode with known ports).
    vip: Option<(String, Ipv4Addr)>,
}

#[derive(Debug, Default)]
struct SvcLb {
    /// The published ports' load balancer id.
    published: Option<String>,
    nets: Vec<OnNet>,
    /// Holds the published host ports.
    _reservation: Option<Reservation>,
    /// What was last configured (reconfigured only when it changes).
    key: String,
}

pub struct Balancer {
    layout: Layout,
    project: String,
    nft: berth_network::nft::Nft,
    svcs: BTreeMap<String, SvcLb>,
}

impl Balancer {
    pub fn new(layout: &Layout, project: &str) -> Balancer {
        Balancer {
            layout: layout.clone(),
            project: project.to_string(),
            nft: berth_engine::net::store::nft(),
            svcs: BTreeMap::new(),
        }
    }

    /// The networks of `svc`, in the order its containers get them.
    fn networks(&self, p: &Project, svc: &Service) -> Result<Vec<NetworkRecord>> {
        let nets = Networks::new(&self.layout);
        let mut keys: Vec<(&String, i64)> =
            svc.networks.iter().map(|(k, n)| (k, n.priority)).collect();
        keys.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let mut v = Vec::new();
        for (k, _) in keys {
            let name = p.networks.get(k).map_or(k.as_str(), |n| n.name.as_str());
            v.push(nets.find(name)?);
        }
        Ok(v)
    }

    /// Sets up (or updates) the load balancing of `svc`, with `ready` (as `set_ready`
    /// takes them) as its backends from the first packet on: a new supervisor adopting
    /// running replicas never refuses a connection in between. Idempotent. True when it
    /// changed (the caller then gives the ready replicas again for the DNS records).
    pub fn configure(
        &mut self,
        p: &Project,
        svc: &Service,
        ready: &[BTreeMap<String, Ipv4Addr>],
    ) -> Result<bool> {
        if svc.network_mode.is_some() {
            return Ok(false);
        }
        let key = serde_json::to_string(&(
            &svc.ports,
            &svc.expose,
            &svc.networks,
            svc.deploy.endpoint_mode,
        ))
        .unwrap_or_default();
        if self.svcs.get(&svc.name).is_some_and(|s| s.key == key) {
            return Ok(false);
        }
        let recs = self.networks(p, svc)?;
        let nets = Networks::new(&self.layout);
        for r in &recs {
            nets.ensure_up(r)?;
        }
        let old = self.svcs.remove(&svc.name);
        // Published ports: one entry for the service.
        let mut published = Vec::new();
        let mut specs = Vec::new();
        for port in &svc.ports {
            let Some(pubd) = &port.published else {
                continue;
            };
            let raw = match &port.host_ip {
                Some(ip) if ip.contains(':') => {
                    format!("[{ip}]:{pubd}:{}/{}", port.target, port.protocol)
                }
                Some(ip) => format!("{ip}:{pubd}:{}/{}", port.target, port.protocol),
                None => format!("{pubd}:{}/{}", port.target, port.protocol),
            };
            specs.extend(ports::parse_publish(&raw)?);
        }
        let mut reservation = None;
        if !specs.is_empty() {
            // Our own earlier reservation must go before binding the same ports again.
            drop(old);
            let r = ports::reserve(&specs, false)
                .map_err(|e| Error::Invalid(format!("service {}: {}", svc.name, e)))?;
            for b in &r.bindings {
                published.push(LbPort {
                    proto: b.proto,
                    host_ip: (!b.host_ip.is_unspecified()).then_some(b.host_ip),
                    host_port: b.host_port,
                    target_port: b.container_port,
                });
            }
            reservation = Some(r);
        }
        let pub_id = service_id(&self.project, &svc.name);
        if published.is_empty() {
            self.nft.remove_service(&pub_id)?;
        } else {
            self.nft.set_service(&ServiceLb {
                id: pub_id.clone(),
                published,
                vip: None,
                vip_ports: Vec::new(),
                backends: backends_on(ready, recs.first().map(|r| r.id.as_str())),
            })?;
        }
        // The VIP balances the ports the service declares.
        let mut vip_ports: Vec<(Proto, u16)> = Vec::new();
        for port in &svc.ports {
            let proto = Proto::from_name(&port.protocol).unwrap_or(Proto::Tcp);
            if !vip_ports.contains(&(proto, port.target)) {
                vip_ports.push((proto, port.target));
            }
        }
        for e in &svc.expose {
            for (port, proto) in berth_engine::net::parse_expose(e)? {
                let proto = Proto::from_name(&proto).unwrap_or(Proto::Tcp);
                if !vip_ports.contains(&(proto, port)) {
                    vip_ports.push((proto, port));
                }
            }
        }
        let mut on = Vec::new();
        for rec in recs {
            let lb_id = vip_lb_id(&self.project, &svc.name, &rec);
            let vip = if svc.deploy.endpoint_mode == EndpointMode::Vip
                && !vip_ports.is_empty()
                && rec.dns
            {
                let ip = self.lease_vip(&rec, &svc.name)?;
                let mut nl = berth_network::netlink::Netlink::open()?;
                berth_network::netlink::add_vip(&mut nl, &rec.bridge, ip)?;
                self.nft.set_service(&ServiceLb {
                    id: lb_id.clone(),
                    published: Vec::new(),
                    vip: Some((ip, rec.bridge.clone())),
                    vip_ports: vip_ports.clone(),
                    backends: backends_on(ready, Some(&rec.id)),
                })?;
                Some((lb_id, ip))
            } else {
                self.nft.remove_service(&lb_id)?;
                None
            };
            on.push(OnNet { rec, vip });
        }
        self.svcs.insert(
            svc.name.clone(),
            SvcLb {
                published: (!specs.is_empty()).then_some(pub_id),
                nets: on,
                _reservation: reservation,
                key,
            },
        );
        Ok(true)
    }

    fn lease_vip(&self, rec: &NetworkRecord, service: &str) -> Result<Ipv4Addr> {
        let pool = rec
            .subnets
            .iter()
            .find(|p| p.subnet.addr().is_ipv4())
            .ok_or_else(|| Error::Invalid(format!("network {} has no IPv4 subnet", rec.name)))?;
        let owner = berth_engine::net::attach::service_lease_owner(&self.project, service);
        let layout = self.layout.clone();
        let ip = NetworksDir::new(self.layout.root())
            .leases(&rec.id)
            .allocate(pool, &owner, None, |l| {
                berth_engine::net::attach::owner_stale(&layout, &l.owner)
            })?;
        match ip {
            IpAddr::V4(a) => Ok(a),
            IpAddr::V6(_) => Err(Error::Invalid("a VIP must be IPv4".into())),
        }
    }

    /// The ready replicas of `service` (each one's address on each network id): the
    /// members of its load balancers and its DNS answers.
    pub fn set_ready(&mut self, service: &str, ready: &[BTreeMap<String, Ipv4Addr>]) -> Result<()> {
        let Some(s) = self.svcs.get(service) else {
            return Ok(());
        };
        if let (Some(id), Some(first)) = (&s.published, s.nets.first()) {
            self.nft
                .set_backends(id, &backends_on(ready, Some(&first.rec.id)))?;
        }
        for n in &s.nets {
            let b = backends_on(ready, Some(&n.rec.id));
            let answer: Vec<IpAddr> = match &n.vip {
                Some((id, vip)) => {
                    self.nft.set_backends(id, &b)?;
                    vec![IpAddr::V4(*vip)]
                }
                None => b.iter().map(|a| IpAddr::V4(*a)).collect(),
            };
            if n.rec.dns {
                berth_engine::net::dns::set_service_record(
                    &self.layout,
                    &n.rec.id,
                    service,
                    &answer,
                )?;
            }
        }
        Ok(())
    }

    /// New connections given to each backend so far (published ports and VIPs: a
    /// backend's counter belongs to its address, whichever balancer sent the connection,
    /// so one balancer's listing has them all).
    pub fn counters(&self, service: &str) -> BTreeMap<Ipv4Addr, u64> {
        let Some(s) = self.svcs.get(service) else {
            return BTreeMap::new();
        };
        let id = s
            .published
            .as_ref()
            .or_else(|| s.nets.iter().find_map(|n| n.vip.as_ref().map(|v| &v.0)));
        id.map(|id| {
            self.nft
                .backend_counters(id)
                .unwrap_or_default()
                .into_iter()
                .collect()
        })
        .unwrap_or_default()
    }

    /// The service's VIP on each network (by name).
    pub fn vips(&self, service: &str) -> BTreeMap<String, String> {
        self.svcs
            .get(service)
            .map(|s| {
                s.nets
                    .iter()
                    .filter_map(|n| {
                        n.vip
                            .as_ref()
                            .map(|v| (n.rec.name.clone(), v.1.to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Removes everything of every configured service: rules, VIPs and their leases,
    /// DNS records, held ports.
    pub fn remove_all(&mut self) {
        for (name, s) in std::mem::take(&mut self.svcs) {
            let recs: Vec<NetworkRecord> = s.nets.into_iter().map(|n| n.rec).collect();
            remove_service(&self.layout, &self.nft, &self.project, &name, &recs);
        }
    }
}

/// The addresses of `ready` replicas on network `net` (by id).
fn backends_on(ready: &[BTreeMap<String, Ipv4Addr>], net: Option<&str>) -> Vec<Ipv4Addr> {
    let Some(net) = net else {
        return Vec::new();
    };
    ready.iter().filter_map(|m| m.get(net).copied()).collect()
}

/// The load balancer id of a service's VIP on network `rec`.
fn vip_lb_id(project: &str, service: &str, rec: &NetworkRecord) -> String {
    service_id(project, &format!("{service}@{}", &rec.id[..12]))
}

/// Removes a service's load balancing on networks `recs` (idempotent): its published
/// entry, its VIPs (found by their leases), their rules, its DNS records.
fn remove_service(
    layout: &Layout,
    nft: &berth_network::nft::Nft,
    project: &str,
    service: &str,
    recs: &[NetworkRecord],
) {
    let _ = nft.remove_service(&service_id(project, service));
    let owner = berth_engine::net::attach::service_lease_owner(project, service);
    for rec in recs {
        let _ = nft.remove_service(&vip_lb_id(project, service, rec));
        let vips = NetworksDir::new(layout.root())
            .leases(&rec.id)
            .release(&owner)
            .unwrap_or_default();
        for ip in vips {
            if let (IpAddr::V4(a), Ok(mut nl)) = (ip, berth_network::netlink::Netlink::open()) {
                let _ = berth_network::netlink::remove_vip(&mut nl, &rec.bridge, a);
            }
        }
        let _ = berth_engine::net::dns::remove_service_record(layout, &rec.id, service);
    }
}

/// Tears a project's load balancing down (`down`, once its supervisor is gone), from the
/// model and the records alone: nothing is configured to be removed.
pub fn teardown(layout: &Layout, project: &Project) {
    let b = Balancer::new(layout, &project.name);
    for svc in project.services.values() {
        if let Ok(recs) = b.networks(project, svc) {
            remove_service(layout, &b.nft, &project.name, &svc.name, &recs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_are_the_ready_replicas_addresses_on_that_network() {
        let a: Ipv4Addr = "172.17.0.4".parse().unwrap();
        let b: Ipv4Addr = "172.18.0.5".parse().unwrap();
        let c: Ipv4Addr = "172.17.0.6".parse().unwrap();
        let ready = vec![
            BTreeMap::from([("front".to_string(), a), ("back".to_string(), b)]),
            // On "front" only.
            BTreeMap::from([("front".to_string(), c)]),
        ];
        assert_eq!(backends_on(&ready, Some("front")), vec![a, c]);
        assert_eq!(backends_on(&ready, Some("back")), vec![b]);
        assert!(backends_on(&ready, Some("data")).is_empty());
        assert!(backends_on(&ready, None).is_empty());
        assert!(backends_on(&[], Some("front")).is_empty());
    }
}
