//! A synchronous rtnetlink socket, and the bridge/veth plumbing built on it.
//!
//! Why not `ip`: one request on a socket costs microseconds, a process costs a millisecond
//! or more, and a container start does a dozen of them. Why not the async `rtnetlink`
//! crate: the monitor that links this is a small sync process without tokio. Every
//! operation is one request and its ack (or one dump); requests name links by name where
//! the kernel allows it (it looks `IFLA_IFNAME` up when the index is 0), which saves a
//! lookup each.
//!
//! A [`Netlink`] belongs to the namespace it was opened in: [`Netlink::open`] uses the
//! caller's, [`Netlink::open_in`] creates the socket inside another (see [`crate::netns`]).
//!
//! An endpoint (a container's attachment to a bridge network) is one veth pair:
//!
//! ```text
//!  namespace of `berth` (the "host")          container's namespace
//!  bridge br-xxxx (gateway 172.18.0.1/16)
//!    └─ vb<cid8><n> (port, hairpin on) ═══ eth0 (172.18.0.2/16, 02:42:ac:12:00:02)
//!                                           default via 172.18.0.1; lo up
//! ```
//!
//! The peer is created directly inside the container's namespace (`IFLA_NET_NS_FD` in the
//! peer's attributes) under its final name, with its MAC and MTU, in the same request
//! that creates the host end with its master and up flag: nothing needs moving or
//! renaming afterwards (the namespace is the container's own, so its name is free). Only
//! its up flag must wait for a request from inside (the kernel refuses to open a veth
//! whose pair is not linked yet). A failure leaves nothing in the host namespace but the
//! host end, which [`setup_endpoint`] deletes again.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd};

use ipnet::IpNet;
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use netlink_packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoPortKind, InfoVeth, LinkAttribute,
    LinkFlags, LinkInfo as NlLinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::error::{sys_err, Error, Result};
use crate::{MacAddr, NetNs};

/// Kernel limit on interface names (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

/// One link as a dump or lookup shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `IFLA_INFO_KIND`: "bridge", "veth", ... (None for a plain device like `lo`).
    pub kind: Option<String>,
    /// Index of the bridge it is a port of.
    pub master: Option<u32>,
    /// `IFLA_IFALIAS` (berth stores a marker there, see [`Netlink::set_alias`]).
    pub alias: Option<String>,
    pub up: bool,
    pub mtu: Option<u32>,
    pub mac: Option<MacAddr>,
}

/// One route as a dump shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dst: IpNet,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
    pub table: u32,
    /// Unicast, local, broadcast...: only unicast routes are "subnets in use".
    pub unicast: bool,
}

/// A synchronous rtnetlink socket in one network namespace.
pub struct Netlink {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
    ns: Option<NetNs>,
}

impl std::fmt::Debug for Netlink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netlink").field("ns", &self.ns).finish()
    }
}

fn socket() -> Result<Socket> {
    let mut s = Socket::new(NETLINK_ROUTE).map_err(sys_err("netlink socket"))?;
    s.bind_auto().map_err(sys_err("netlink bind"))?;
    s.connect(&SocketAddr::new(0, 0))
        .map_err(sys_err("netlink connect"))?;
    // Extended acks carry the kernel's own words for a refusal; capped acks keep the
    // echoed request out of them. Both are best effort (old kernels lack them).
    let _ = s.set_ext_ack(true);
    let _ = s.set_cap_ack(true);
    Ok(s)
}

fn nl_err(op: impl Into<String>, source: io::Error, ext: Option<String>) -> Error {
    Error::Netlink {
        op: op.into(),
        source,
        ext,
    }
}

/// NLMSGERR_ATTR_MSG from an error's TLVs (present with NETLINK_EXT_ACK; the request
/// header before them is 16 bytes with NETLINK_CAP_ACK).
fn ext_ack_msg(payload: &[u8]) -> Option<String> {
    let mut tlvs = payload.get(16..)?;
    while tlvs.len() >= 4 {
        let len = u16::from_ne_bytes([tlvs[0], tlvs[1]]) as usize;
        let kind = u16::from_ne_bytes([tlvs[2], tlvs[3]]) & 0x3fff;
        if len < 4 || len > tlvs.len() {
            return None;
        }
        if kind == 1 {
            let v = &tlvs[4..len];
            let v = v.split(|b| *b == 0).next().unwrap_or(v);
            return Some(String::from_utf8_lossy(v).into_owned());
        }
        tlvs = tlvs.get((len + 3) & !3..).unwrap_or(&[]);
    }
    None
}

fn errno(e: &Error) -> Option<i32> {
    match e {
        Error::Netlink { source, .. } => source.raw_os_error(),
        _ => None,
    }
}

fn family_of(ip: IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// The message naming `addr` on link `index` (to add or delete it).
fn address_message(index: u32, addr: IpNet) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.family = family_of(addr.addr());
    m.header.prefix_len = addr.prefix_len();
    m.header.index = index;
    m.attributes.push(AddressAttribute::Local(addr.addr()));
    m.attributes.push(AddressAttribute::Address(addr.addr()));
    m
}

fn link_by_name(name: &str) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.to_string()));
    m
}

impl Netlink {
    /// A socket in the calling thread's namespace.
    pub fn open() -> Result<Self> {
        Ok(Netlink {
            sock: socket()?,
            seq: 0,
            buf: Vec::with_capacity(64 * 1024),
            ns: None,
        })
    }

    /// A socket inside `ns` (created there by a short-lived thread).
    pub fn open_in(ns: &NetNs) -> Result<Self> {
        let sock = ns.run(socket)??;
        Ok(Netlink {
            sock,
            seq: 0,
            buf: Vec::with_capacity(64 * 1024),
            ns: Some(ns.try_clone()?),
        })
    }

    /// The namespace given to [`Netlink::open_in`].
    pub fn netns(&self) -> Option<&NetNs> {
        self.ns.as_ref()
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let mut hdr = NetlinkHeader::default();
        hdr.flags = NLM_F_REQUEST | flags;
        hdr.sequence_number = self.seq;
        let mut m = NetlinkMessage::new(hdr, NetlinkPayload::InnerMessage(msg));
        m.finalize();
        let mut b = vec![0u8; m.buffer_len()];
        m.serialize(&mut b);
        self.sock.send(&b, 0)?;
        Ok(self.seq)
    }

    /// Receives until the reply to `seq` is complete, handing each inner message to `each`.
    /// Ends at the ack (for requests) or NLMSG_DONE (for dumps); a NACK is an error.
    fn receive(
        &mut self,
        seq: u32,
        op: &dyn Fn() -> String,
        mut each: impl FnMut(RouteNetlinkMessage),
        single: bool,
    ) -> Result<()> {
        loop {
            self.buf.clear();
            let n = self
                .sock
                .recv(&mut self.buf, 0)
                .map_err(|e| nl_err(op(), e, None))?;
            let mut off = 0;
            while off < n {
                let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[off..n])
                    .map_err(|e| {
                        nl_err(
                            op(),
                            io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
                            None,
                        )
                    })?;
                let len = m.header.length as usize;
                if len == 0 {
                    break;
                }
                off += (len + 3) & !3;
                if m.header.sequence_number != seq {
                    continue;
                }
                match m.payload {
                    NetlinkPayload::Error(e) if e.code.is_none() => return Ok(()),
                    NetlinkPayload::Error(e) => {
                        return Err(nl_err(op(), e.to_io(), ext_ack_msg(&e.header)));
                    }
                    NetlinkPayload::Done(_) => return Ok(()),
                    NetlinkPayload::InnerMessage(inner) => {
                        each(inner);
                        if single {
                            return Ok(());
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// A request that changes something: waits for its ack.
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        op: &dyn Fn() -> String,
    ) -> Result<()> {
        let seq = self
            .send(msg, NLM_F_ACK | flags)
            .map_err(|e| nl_err(op(), e, None))?;
        self.receive(seq, op, |_| {}, false)
    }

    fn dump(
        &mut self,
        msg: RouteNetlinkMessage,
        op: &dyn Fn() -> String,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        let seq = self
            .send(msg, NLM_F_DUMP)
            .map_err(|e| nl_err(op(), e, None))?;
        let mut out = Vec::new();
        self.receive(seq, op, |m| out.push(m), false)?;
        Ok(out)
    }

    // ---- links ----

    /// The link named `name`, or None.
    pub fn link(&mut self, name: &str) -> Result<Option<Link>> {
        let op = || format!("get link {name}");
        let seq = self
            .send(RouteNetlinkMessage::GetLink(link_by_name(name)), 0)
            .map_err(|e| nl_err(op(), e, None))?;
        let mut found = None;
        match self.receive(
            seq,
            &op,
            |m| {
                if let RouteNetlinkMessage::NewLink(l) = m {
                    found = Some(parse_link(&l));
                }
            },
            true,
        ) {
            Ok(()) => Ok(found),
            Err(e) if errno(&e) == Some(ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The index of the link named `name`, or None.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>> {
        Ok(self.link(name)?.map(|l| l.index))
    }

    /// Every link of the namespace (to find stale veths by their name prefix).
    pub fn links(&mut self) -> Result<Vec<Link>> {
        let msgs = self.dump(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            &|| "dump links".to_string(),
        )?;
        Ok(msgs
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(parse_link(l)),
                _ => None,
            })
            .collect())
    }

    /// Creates bridge `name` (with a MAC of its own, so it does not change as ports come
    /// and go) and returns its index; an existing bridge of that name is kept and its
    /// index returned; an existing link of another kind is an error.
    pub fn create_bridge(&mut self, name: &str, mtu: Option<u32>) -> Result<u32> {
        check_ifname(name)?;
        let mut m = link_by_name(name);
        m.attributes
            .push(LinkAttribute::Address(MacAddr::from_seed(name).0.to_vec()));
        if let Some(mtu) = mtu {
            m.attributes.push(LinkAttribute::Mtu(mtu));
        }
        m.attributes
            .push(LinkAttribute::LinkInfo(vec![NlLinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        let op = || format!("create bridge {name}");
        match self.request(
            RouteNetlinkMessage::NewLink(m),
            NLM_F_CREATE | NLM_F_EXCL,
            &op,
        ) {
            Ok(()) => {}
            Err(e) if errno(&e) == Some(EEXIST) => {}
            Err(e) => return Err(e),
        }
        // Either way, look it up: its index, and that it is a bridge.
        match self.link(name)? {
            Some(l) if l.kind.as_deref() == Some("bridge") => Ok(l.index),
            Some(l) => Err(nl_err(
                op(),
                io::Error::from_raw_os_error(EEXIST),
                Some(format!(
                    "{name} exists and is a {}, not a bridge",
                    l.kind.as_deref().unwrap_or("device")
                )),
            )),
            None => Err(nl_err(op(), io::Error::from_raw_os_error(ENODEV), None)),
        }
    }

    fn set_link(&mut self, mut m: LinkMessage, op: &dyn Fn() -> String) -> Result<()> {
        // RTM_NEWLINK on an existing link (no NLM_F_CREATE): unlike RTM_SETLINK it also
        // applies IFLA_LINKINFO (the bridge port options).
        m.header.interface_family = AddressFamily::Unspec;
        self.request(RouteNetlinkMessage::NewLink(m), 0, op)
    }

    /// Sets link `name` up or down.
    pub fn set_up(&mut self, name: &str, up: bool) -> Result<()> {
        let mut m = link_by_name(name);
        m.header.change_mask = LinkFlags::Up;
        if up {
            m.header.flags = LinkFlags::Up;
        }
        self.set_link(m, &|| {
            format!("set {name} {}", if up { "up" } else { "down" })
        })
    }

    /// Sets the MTU of link `name`.
    pub fn set_mtu(&mut self, name: &str, mtu: u32) -> Result<()> {
        let mut m = link_by_name(name);
        m.attributes.push(LinkAttribute::Mtu(mtu));
        self.set_link(m, &|| format!("set mtu {mtu} on {name}"))
    }

    /// Sets `IFLA_IFALIAS` of link `name` (berth uses it as a "rules installed" marker
    /// on a bridge: it goes away with the bridge, as the need to reinstall arises).
    pub fn set_alias(&mut self, name: &str, alias: &str) -> Result<()> {
        let mut m = link_by_name(name);
        m.attributes.push(LinkAttribute::IfAlias(alias.to_string()));
        self.set_link(m, &|| format!("set alias of {name}"))
    }

    /// Makes link `name` a port of bridge index `master`.
    pub fn set_master(&mut self, name: &str, master: u32) -> Result<()> {
        let mut m = link_by_name(name);
        m.attributes.push(LinkAttribute::Controller(master));
        self.set_link(m, &|| format!("attach {name} to bridge {master}"))
    }

    /// Turns hairpin mode of bridge port `name` on or off: with it on, the bridge sends a
    /// frame back out of the port it came in by, which a container reaching its own
    /// published port through the host's address needs.
    pub fn set_hairpin(&mut self, name: &str, on: bool) -> Result<()> {
        let mut m = link_by_name(name);
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            NlLinkInfo::PortKind(InfoPortKind::Bridge),
            NlLinkInfo::PortData(InfoPortData::BridgePort(vec![InfoBridgePort::HairpinMode(
                on,
            )])),
        ]));
        self.set_link(m, &|| format!("set hairpin on bridge port {name}"))
    }

    /// Deletes link `name`; a missing link is fine (idempotent teardown).
    pub fn delete_link(&mut self, name: &str) -> Result<()> {
        match self.request(RouteNetlinkMessage::DelLink(link_by_name(name)), 0, &|| {
            format!("delete link {name}")
        }) {
            Err(e) if errno(&e) == Some(ENODEV) => Ok(()),
            r => r,
        }
    }

    /// Creates a veth pair: `host` here, `peer` directly inside `peer_ns` with its MAC;
    /// both get `mtu`, the host end comes up and becomes a port of bridge index `master`
    /// when given. The peer stays down (see below): bring it up from inside `peer_ns`.
    pub fn create_veth(
        &mut self,
        host: &str,
        peer: &str,
        peer_ns: &NetNs,
        peer_mac: Option<MacAddr>,
        mtu: Option<u32>,
        master: Option<u32>,
    ) -> Result<()> {
        check_ifname(host)?;
        check_ifname(peer)?;
        let mut p = link_by_name(peer);
        // Not IFF_UP on the peer: the kernel configures the peer before it links the pair,
        // and opening a veth without its peer fails (ENOTCONN). The caller brings it up.
        p.attributes
            .push(LinkAttribute::NetNsFd(peer_ns.as_fd().as_raw_fd()));
        if let Some(mac) = peer_mac {
            p.attributes.push(LinkAttribute::Address(mac.0.to_vec()));
        }
        let mut m = link_by_name(host);
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        if let Some(mtu) = mtu {
            m.attributes.push(LinkAttribute::Mtu(mtu));
            p.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(master) = master {
            m.attributes.push(LinkAttribute::Controller(master));
        }
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            NlLinkInfo::Kind(InfoKind::Veth),
            NlLinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))),
        ]));
        self.request(
            RouteNetlinkMessage::NewLink(m),
            NLM_F_CREATE | NLM_F_EXCL,
            &|| {
                format!(
                    "create veth {host} (peer {peer} in {})",
                    peer_ns.path().display()
                )
            },
        )
    }

    // ---- addresses and routes ----

    /// Adds `addr` (address and prefix length) to link index `index`. IPv6 addresses skip
    /// duplicate address detection (IFA_F_NODAD) so that they are usable at once: the
    /// IPAM already made them unique. An address already there is fine.
    pub fn add_address(&mut self, index: u32, addr: IpNet) -> Result<()> {
        let mut m = address_message(index, addr);
        match addr {
            IpNet::V4(v4) => {
                if v4.prefix_len() < 31 {
                    m.attributes
                        .push(AddressAttribute::Broadcast(v4.broadcast()));
                }
            }
            IpNet::V6(_) => {
                m.header.flags = AddressHeaderFlags::Nodad;
                m.attributes
                    .push(AddressAttribute::Flags(AddressFlags::Nodad));
            }
        }
        match self.request(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_EXCL,
            &|| format!("add address {addr} to link {index}"),
        ) {
            Err(e) if errno(&e) == Some(EEXIST) => Ok(()),
            r => r,
        }
    }

    /// Removes `addr` (address and prefix length) from link index `index`. An address
    /// or a link already gone is fine.
    pub fn delete_address(&mut self, index: u32, addr: IpNet) -> Result<()> {
        let m = address_message(index, addr);
        match self.request(RouteNetlinkMessage::DelAddress(m), 0, &|| {
            format!("delete address {addr} from link {index}")
        }) {
            Err(e) if matches!(errno(&e), Some(EADDRNOTAVAIL | ENODEV)) => Ok(()),
            r => r,
        }
    }

    /// Adds a default route via `gateway` out of link index `oif`.
    pub fn add_default_route(&mut self, gateway: IpAddr, oif: u32) -> Result<()> {
        let mut m = RouteMessage::default();
        m.header.address_family = family_of(gateway);
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Boot;
        m.header.scope = RouteScope::Universe;
        m.header.kind = RouteType::Unicast;
        m.attributes
            .push(RouteAttribute::Gateway(RouteAddress::from(gateway)));
        m.attributes.push(RouteAttribute::Oif(oif));
        match self.request(
            RouteNetlinkMessage::NewRoute(m),
            NLM_F_CREATE | NLM_F_EXCL,
            &|| format!("add default route via {gateway}"),
        ) {
            Err(e) if errno(&e) == Some(EEXIST) => Ok(()),
            r => r,
        }
    }

    /// Routes of the main table (both families), e.g. to know which subnets the host uses.
    pub fn routes(&mut self) -> Result<Vec<Route>> {
        let mut out = Vec::new();
        for fam in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut m = RouteMessage::default();
            m.header.address_family = fam;
            for msg in self.dump(RouteNetlinkMessage::GetRoute(m), &|| {
                "dump routes".to_string()
            })? {
                if let RouteNetlinkMessage::NewRoute(r) = msg {
                    if let Some(r) = parse_route(&r) {
                        out.push(r);
                    }
                }
            }
        }
        Ok(out)
    }

    /// The destinations of the main table's unicast routes other than default routes:
    /// the subnets a new network must not overlap (docker's check against host routes).
    pub fn route_subnets(&mut self) -> Result<Vec<IpNet>> {
        Ok(self
            .routes()?
            .into_iter()
            .filter(|r| r.unicast && r.table == u32::from(RouteHeader::RT_TABLE_MAIN))
            .filter(|r| r.dst.prefix_len() > 0)
            .filter(|r| !matches!(r.dst, IpNet::V6(n) if n.addr().segments()[0] & 0xffc0 == 0xfe80))
            .map(|r| r.dst)
            .collect())
    }

    /// Brings `lo` up (a new namespace has it down).
    pub fn loopback_up(&mut self) -> Result<()> {
        self.set_up("lo", true)
    }
}

const EEXIST: i32 = 17;
const ENODEV: i32 = 19;
const EADDRNOTAVAIL: i32 = 99;

fn check_ifname(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > IFNAME_MAX || name.contains(['/', ' ', ':']) {
        return Err(Error::Invalid(format!("invalid interface name {name:?}")));
    }
    Ok(())
}

fn parse_link(l: &LinkMessage) -> Link {
    let mut link = Link {
        index: l.header.index,
        name: String::new(),
        kind: None,
        master: None,
        alias: None,
        up: l.header.flags.contains(LinkFlags::Up),
        mtu: None,
        mac: None,
    };
    for a in &l.attributes {
        match a {
            LinkAttribute::IfName(n) => link.name = n.clone(),
            LinkAttribute::Controller(m) => link.master = Some(*m),
            LinkAttribute::IfAlias(s) => link.alias = Some(s.clone()),
            LinkAttribute::Mtu(m) => link.mtu = Some(*m),
            LinkAttribute::Address(b) if b.len() == 6 => {
                link.mac = Some(MacAddr([b[0], b[1], b[2], b[3], b[4], b[5]]))
            }
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let NlLinkInfo::Kind(k) = i {
                        link.kind = Some(k.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    link
}

fn parse_route(r: &RouteMessage) -> Option<Route> {
    let mut dst = None;
    let mut gateway = None;
    let mut oif = None;
    let mut table = u32::from(r.header.table);
    for a in &r.attributes {
        match a {
            RouteAttribute::Destination(RouteAddress::Inet(v4)) => dst = Some(IpAddr::V4(*v4)),
            RouteAttribute::Destination(RouteAddress::Inet6(v6)) => dst = Some(IpAddr::V6(*v6)),
            RouteAttribute::Gateway(RouteAddress::Inet(v4)) => gateway = Some(IpAddr::V4(*v4)),
            RouteAttribute::Gateway(RouteAddress::Inet6(v6)) => gateway = Some(IpAddr::V6(*v6)),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Table(t) => table = *t,
            _ => {}
        }
    }
    let dst = dst.or(match r.header.address_family {
        AddressFamily::Inet => Some(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
        AddressFamily::Inet6 => Some(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)),
        _ => None,
    })?;
    Some(Route {
        dst: IpNet::new(dst, r.header.destination_prefix_length)
            .ok()?
            .trunc(),
        gateway,
        oif,
        table,
        unicast: r.header.kind == RouteType::Unicast,
    })
}

// ---- bridges and endpoints ----

/// A bridge network's bridge in the host namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeSpec {
    /// Interface name (at most 15 bytes).
    pub name: String,
    pub mtu: Option<u32>,
    /// Gateway addresses with the subnet's prefix length (172.18.0.1/16, fd00:1::1/64).
    pub addresses: Vec<IpNet>,
}

/// Creates the bridge (or keeps the existing one), gives it its gateway addresses and
/// brings it up; returns its index. Idempotent.
pub fn ensure_bridge(nl: &mut Netlink, spec: &BridgeSpec) -> Result<u32> {
    let index = nl.create_bridge(&spec.name, spec.mtu)?;
    for a in &spec.addresses {
        nl.add_address(index, *a)?;
    }
    nl.set_up(&spec.name, true)?;
    Ok(index)
}

/// A container's attachment to a bridge network (serialised within the engine's
/// attachment, which the monitor keeps for berth-net).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Endpoint {
    /// The network's bridge (in the host namespace).
    pub bridge: String,
    /// The host end of the veth pair; see [`host_veth_name`].
    pub host_ifname: String,
    /// The interface inside the container: eth0, eth1...
    pub ifname: String,
    pub mac: MacAddr,
    /// The container's addresses with the subnet's prefix length.
    pub addresses: Vec<IpNet>,
    /// Default routes: at most one gateway per family (none for --internal networks).
    pub gateways: Vec<IpAddr>,
    pub mtu: Option<u32>,
}

/// The host-side veth name of attachment number `attachment` of container `container_id`:
/// `vb` + 8 hex of the id + 3 hex of the attachment (13 bytes; the limit is 15). The
/// prefix lets a sweep find berth's veths among the links.
pub fn host_veth_name(container_id: &str, attachment: u16) -> String {
    let id: String = container_id.chars().take(8).collect();
    format!("{HOST_VETH_PREFIX}{id}{:03x}", attachment & 0xfff)
}

/// The prefix of every host-side veth berth makes.
pub const HOST_VETH_PREFIX: &str = "vb";

/// Plugs a container into a bridge: the veth pair (host end a hairpin port of the bridge,
/// peer `ep.ifname` in the container with its MAC), the container's addresses and default
/// routes. `container` is a [`Netlink`] opened in the container's namespace with
/// [`Netlink::open_in`]. A host end left by an earlier attempt is replaced.
pub fn setup_endpoint(host: &mut Netlink, container: &mut Netlink, ep: &Endpoint) -> Result<()> {
    let ns = container.netns().ok_or_else(|| {
        Error::Invalid("setup_endpoint: the container's netlink was not opened with open_in".into())
    })?;
    let ns = ns.try_clone()?;
    let bridge = host.link_index(&ep.bridge)?.ok_or_else(|| Error::Netlink {
        op: format!("attach {} to bridge {}", ep.host_ifname, ep.bridge),
        source: io::Error::from_raw_os_error(ENODEV),
        ext: Some(format!("bridge {} does not exist", ep.bridge)),
    })?;
    let create = |host: &mut Netlink| {
        host.create_veth(
            &ep.host_ifname,
            &ep.ifname,
            &ns,
            Some(ep.mac),
            ep.mtu,
            Some(bridge),
        )
    };
    match create(host) {
        Err(e) if errno(&e) == Some(EEXIST) && host.link_index(&ep.host_ifname)?.is_some() => {
            host.delete_link(&ep.host_ifname)?;
            create(host)?;
        }
        r => r?,
    }
    let plumb = (|| {
        host.set_hairpin(&ep.host_ifname, true)?;
        container.set_up(&ep.ifname, true)?;
        let index = container
            .link_index(&ep.ifname)?
            .ok_or_else(|| Error::Netlink {
                op: format!("find {} in {}", ep.ifname, ns.path().display()),
                source: io::Error::from_raw_os_error(ENODEV),
                ext: None,
            })?;
        for a in &ep.addresses {
            container.add_address(index, *a)?;
        }
        for g in &ep.gateways {
            container.add_default_route(*g, index)?;
        }
        Ok(())
    })();
    if plumb.is_err() {
        let _ = host.delete_link(&ep.host_ifname);
    }
    plumb
}

/// Gives bridge `bridge` the virtual IP `vip` of a service (crate::lb) as a /32: the host
/// then answers the containers' ARP for it and the VIP is a local address, so its traffic
/// meets the DNAT of the `published` chain. A /32 adds no prefix route. Idempotent.
pub fn add_vip(nl: &mut Netlink, bridge: &str, vip: std::net::Ipv4Addr) -> Result<()> {
    let index = nl.link_index(bridge)?.ok_or_else(|| Error::Netlink {
        op: format!("add VIP {vip} to bridge {bridge}"),
        source: io::Error::from_raw_os_error(ENODEV),
        ext: Some(format!("bridge {bridge} does not exist")),
    })?;
    nl.add_address(index, IpNet::new(vip.into(), 32).expect("/32"))
}

/// Takes the virtual IP `vip` off bridge `bridge`. Idempotent (a bridge already gone too).
pub fn remove_vip(nl: &mut Netlink, bridge: &str, vip: std::net::Ipv4Addr) -> Result<()> {
    match nl.link_index(bridge)? {
        Some(index) => nl.delete_address(index, IpNet::new(vip.into(), 32).expect("/32")),
        None => Ok(()),
    }
}

/// Unplugs an endpoint: deleting the host end deletes its peer too. Idempotent (the pair
/// is also gone once the container's namespace is).
pub fn teardown_endpoint(host: &mut Netlink, host_ifname: &str) -> Result<()> {
    host.delete_link(host_ifname)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_veth_names_fit_and_differ_per_attachment() {
        let id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(host_veth_name(id, 0), "vb01234567000");
        assert_eq!(host_veth_name(id, 1), "vb01234567001");
        assert_eq!(host_veth_name(id, 0xabc), "vb01234567abc");
        assert!(host_veth_name(id, 0xfff).len() <= IFNAME_MAX);
    }

    #[test]
    fn interface_names_are_checked() {
        assert!(check_ifname("br-0123456789ab").is_ok());
        for bad in ["", "br-0123456789abc", "a/b", "a b", "a:b"] {
            assert!(check_ifname(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ext_ack_message_is_read_from_tlvs() {
        let mut p = vec![0u8; 16];
        let msg = b"Invalid name\0";
        let len = (4 + msg.len()) as u16;
        p.extend_from_slice(&len.to_ne_bytes());
        p.extend_from_slice(&1u16.to_ne_bytes());
        p.extend_from_slice(msg);
        assert_eq!(ext_ack_msg(&p).as_deref(), Some("Invalid name"));
        assert_eq!(ext_ack_msg(&p[..16]), None);
        assert_eq!(ext_ack_msg(&[0u8; 8]), None);
    }

    #[test]
    fn route_dump_entries_parse() {
        let mut r = RouteMessage::default();
        r.header.address_family = AddressFamily::Inet;
        r.header.destination_prefix_length = 16;
        r.header.table = RouteHeader::RT_TABLE_MAIN;
        r.header.kind = RouteType::Unicast;
        r.attributes
            .push(RouteAttribute::Destination(RouteAddress::Inet(
                "172.17.0.0".parse().unwrap(),
            )));
        r.attributes.push(RouteAttribute::Oif(3));
        let p = parse_route(&r).unwrap();
        assert_eq!(p.dst, "172.17.0.0/16".parse::<IpNet>().unwrap());
        assert_eq!(p.oif, Some(3));
        assert!(p.unicast);
        let mut d = RouteMessage::default();
        d.header.address_family = AddressFamily::Inet6;
        assert_eq!(
            parse_route(&d).unwrap().dst,
            "::/0".parse::<IpNet>().unwrap()
        );
    }
}
