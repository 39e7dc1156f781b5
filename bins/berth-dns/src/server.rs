//! Listening on every DNS network's gateway addresses, and following the records.
//!
//! One UDP socket and one TCP listener per gateway address, bound with IP_FREEBIND so
//! that binding does not depend on the bridge having its address yet. The address a
//! query arrived on says which network it is for, and the address it came from which
//! container asked: a container on several DNS networks resolves the names of all of
//! them (resolv.conf names one gateway), any other only those of its own network. Records (endpoints and services) are reloaded on inotify
//! events (no polling); the server ends when no endpoint is left (a service record alone
//! has nobody to answer: its clients are endpoints).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, Result};
use berth_network::dns::NetworksDir;
use hickory_proto::op::ResponseCode;
use inotify::{Inotify, WatchMask, Watches};
use rustix::net::{AddressFamily, SocketFlags, SocketType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::answer::{self, Outcome, Zone};
use crate::upstream;

pub struct Config {
    pub port: u16,
    pub upstreams: Vec<SocketAddr>,
    pub timeout: Duration,
}

/// The zones in force: by the gateway a query arrived on, and, for containers on
/// several DNS networks, by (gateway, the container's address on that network).
#[derive(Default)]
struct ZoneMap {
    by_gateway: HashMap<IpAddr, Arc<Zone>>,
    by_peer: HashMap<(IpAddr, IpAddr), Arc<Zone>>,
}

type Zones = Arc<RwLock<ZoneMap>>;

/// A container on one DNS network: that network's zone, its gateways, the container's
/// addresses there.
type OnNet = (Arc<Zone>, Vec<IpAddr>, Vec<IpAddr>);

struct Listener {
    udp: JoinHandle<()>,
    tcp: JoinHandle<()>,
}

pub struct Server {
    dir: NetworksDir,
    cfg: Arc<Config>,
    zones: Zones,
    listeners: HashMap<IpAddr, Listener>,
    watches: Watches,
    events: mpsc::UnboundedReceiver<()>,
}

fn bind_fd(addr: SocketAddr, ty: SocketType) -> std::io::Result<OwnedFd> {
    let fam = if addr.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let fd = rustix::net::socket_with(fam, ty, SocketFlags::CLOEXEC | SocketFlags::NONBLOCK, None)?;
    if addr.is_ipv4() {
        rustix::net::sockopt::set_ip_freebind(&fd, true)?;
    } else {
        rustix::net::sockopt::set_ipv6_v6only(&fd, true)?;
        rustix::net::sockopt::set_ipv6_freebind(&fd, true)?;
    }
    if ty == SocketType::STREAM {
        rustix::net::sockopt::set_socket_reuseaddr(&fd, true)?;
    }
    rustix::net::bind(&fd, &addr)?;
    if ty == SocketType::STREAM {
        rustix::net::listen(&fd, 128)?;
    }
    Ok(fd)
}

fn zone_of(zones: &Zones, local: IpAddr, peer: IpAddr) -> Option<Arc<Zone>> {
    let z = zones.read().unwrap();
    z.by_peer
        .get(&(local, peer))
        .or_else(|| z.by_gateway.get(&local))
        .cloned()
}

/// What to send back for `req` that arrived on `local` from `peer`; None: nothing.
async fn respond(
    zones: &Zones,
    cfg: &Config,
    (local, peer): (IpAddr, IpAddr),
    req: &[u8],
    udp: bool,
) -> Option<Vec<u8>> {
    let zone = zone_of(zones, local, peer)?;
    match answer::handle(&zone, req, udp) {
        Outcome::Reply(b) => Some(b),
        Outcome::Drop => None,
        Outcome::Forward if zone.internal => answer::error_reply(req, ResponseCode::ServFail),
        Outcome::Forward => {
            let got = if udp {
                upstream::udp(&cfg.upstreams, req, cfg.timeout).await
            } else {
                upstream::tcp(&cfg.upstreams, req, cfg.timeout).await
            };
            got.or_else(|| answer::error_reply(req, ResponseCode::ServFail))
        }
    }
}

async fn serve_udp(sock: Arc<UdpSocket>, local: IpAddr, zones: Zones, cfg: Arc<Config>) {
    let mut buf = vec![0u8; 65535];
    loop {
        let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        let req = buf[..n].to_vec();
        let (sock, zones, cfg) = (sock.clone(), zones.clone(), cfg.clone());
        // Each query on its own: a slow upstream must not hold up the local names.
        tokio::spawn(async move {
            if let Some(r) = respond(&zones, &cfg, (local, peer.ip()), &req, true).await {
                let _ = sock.send_to(&r, peer).await;
            }
        });
    }
}

async fn serve_tcp_conn(mut s: TcpStream, local: IpAddr, zones: Zones, cfg: Arc<Config>) {
    let idle = Duration::from_secs(10);
    let Ok(peer) = s.peer_addr() else {
        return;
    };
    loop {
        let mut l = [0u8; 2];
        if !matches!(
            tokio::time::timeout(idle, s.read_exact(&mut l)).await,
            Ok(Ok(_))
        ) {
            return;
        }
        let mut req = vec![0u8; usize::from(u16::from_be_bytes(l))];
        if !matches!(
            tokio::time::timeout(idle, s.read_exact(&mut req)).await,
            Ok(Ok(_))
        ) {
            return;
        }
        let Some(r) = respond(&zones, &cfg, (local, peer.ip()), &req, false).await else {
            return;
        };
        let Ok(len) = u16::try_from(r.len()) else {
            return;
        };
        let mut out = len.to_be_bytes().to_vec();
        out.extend_from_slice(&r);
        if s.write_all(&out).await.is_err() {
            return;
        }
    }
}

async fn serve_tcp(l: TcpListener, local: IpAddr, zones: Zones, cfg: Arc<Config>) {
    loop {
        if let Ok((s, _)) = l.accept().await {
            tokio::spawn(serve_tcp_conn(s, local, zones.clone(), cfg.clone()));
        }
    }
}

const MASK: WatchMask = WatchMask::CREATE
    .union(WatchMask::DELETE)
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::CLOSE_WRITE)
    .union(WatchMask::ONLYDIR);

impl Server {
    pub fn new(dir: NetworksDir, cfg: Config) -> Result<Server> {
        let mut inotify = Inotify::init().context("inotify")?;
        let watches = inotify.watches();
        // A thread blocks on the inotify fd and pings the server (tokio's AsyncFd would
        // need unsafe to register a raw fd).
        let (tx, events) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(ev) = inotify.read_events_blocking(&mut buf) {
                if ev.count() > 0 && tx.send(()).is_err() {
                    return;
                }
            }
        });
        Ok(Server {
            dir,
            cfg: Arc::new(cfg),
            zones: Arc::default(),
            listeners: HashMap::new(),
            watches,
            events,
        })
    }

    /// Watches the records' directories (before reading them, so that no change falls
    /// between the read and the watch). Watching a directory twice is a no-op.
    fn watch(&self, ids: &[String]) {
        let mut w = self.watches.clone();
        let _ = w.add(self.dir.path(), MASK);
        for id in ids {
            let _ = w.add(self.dir.network_dir(id), MASK);
            let _ = w.add(self.dir.endpoints_dir(id), MASK);
            let _ = w.add(self.dir.services_dir(id), MASK);
        }
    }

    /// Reads the records, installs the zones and (un)binds listeners; returns the number
    /// of endpoints on DNS networks.
    pub fn reload(&mut self) -> Result<usize> {
        let ids = self.dir.network_ids().context("reading the networks")?;
        self.watch(&ids);
        let mut zones = ZoneMap::default();
        // container id -> each of its DNS networks
        let mut seen: HashMap<String, Vec<OnNet>> = HashMap::new();
        let mut count = 0;
        for id in &ids {
            let net = match self.dir.read_network(id) {
                Ok(Some(n)) if n.dns => n,
                Ok(_) => continue,
                Err(e) => {
                    eprintln!("berth-dns: {e}");
                    continue;
                }
            };
            let eps = self.dir.endpoints(id).unwrap_or_else(|e| {
                eprintln!("berth-dns: {e}");
                Vec::new()
            });
            let svcs = self.dir.services(id).unwrap_or_else(|e| {
                eprintln!("berth-dns: {e}");
                Vec::new()
            });
            count += eps.len();
            let z = Arc::new(Zone::new(&net, &eps, &svcs));
            for gw in net.gateways() {
                zones.by_gateway.insert(gw, z.clone());
            }
            for ep in eps {
                seen.entry(ep.container_id).or_default().push((
                    z.clone(),
                    net.gateways(),
                    ep.addresses,
                ));
            }
        }
        for on in seen.values().filter(|on| on.len() > 1) {
            let parts: Vec<&Zone> = on.iter().map(|(z, _, _)| z.as_ref()).collect();
            let merged = Arc::new(Zone::merged(&parts));
            for (_, gws, addrs) in on {
                for gw in gws {
                    for a in addrs.iter().filter(|a| a.is_ipv4() == gw.is_ipv4()) {
                        zones.by_peer.insert((*gw, *a), merged.clone());
                    }
                }
            }
        }
        let want: HashSet<IpAddr> = zones.by_gateway.keys().copied().collect();
        *self.zones.write().unwrap() = zones;
        for gone in self
            .listeners
            .keys()
            .copied()
            .filter(|a| !want.contains(a))
            .collect::<Vec<_>>()
        {
            if let Some(l) = self.listeners.remove(&gone) {
                l.udp.abort();
                l.tcp.abort();
            }
        }
        for ip in want {
            if self.listeners.contains_key(&ip) {
                continue;
            }
            match self.listen(ip) {
                Ok(l) => {
                    self.listeners.insert(ip, l);
                }
                // Tried again at the next change.
                Err(e) => eprintln!("berth-dns: {e:#}"),
            }
        }
        Ok(count)
    }

    fn listen(&self, ip: IpAddr) -> Result<Listener> {
        let addr = SocketAddr::new(ip, self.cfg.port);
        let u = bind_fd(addr, SocketType::DGRAM).with_context(|| format!("bind udp {addr}"))?;
        let t = bind_fd(addr, SocketType::STREAM).with_context(|| format!("bind tcp {addr}"))?;
        let u = Arc::new(UdpSocket::from_std(std::net::UdpSocket::from(u))?);
        let t = TcpListener::from_std(std::net::TcpListener::from(t))?;
        Ok(Listener {
            udp: tokio::spawn(serve_udp(u, ip, self.zones.clone(), self.cfg.clone())),
            tcp: tokio::spawn(serve_tcp(t, ip, self.zones.clone(), self.cfg.clone())),
        })
    }

    /// Closes every socket (and waits until they are closed: the tasks own them).
    pub async fn close(&mut self) {
        for (_, l) in self.listeners.drain() {
            l.udp.abort();
            l.tcp.abort();
            let _ = l.udp.await;
            let _ = l.tcp.await;
        }
    }

    /// Waits for a change under the records' directories, then a few ms more so that a
    /// burst (a rename, a directory with its files) makes one reload.
    pub async fn changed(&mut self) -> Result<()> {
        self.events.recv().await.context("inotify ended")?;
        tokio::time::sleep(Duration::from_millis(2)).await;
        while self.events.try_recv().is_ok() {}
        Ok(())
    }
}
