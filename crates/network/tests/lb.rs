//! Root tests: a service's load balancer (crate::lb) carries real traffic. A throwaway
//! "host" namespace H has the bridge br-lb (10.77.0.1/24), forwarding and berth's table;
//! three "backend" namespaces (10.77.0.2-4) each run a TCP server that greets with its
//! own name and the peer's address, then echoes lines; a fourth "container" (10.77.0.5)
//! uses the VIP; a "client" namespace X (198.51.100.2) is the outside world. Everything
//! goes with the namespaces.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_network::lb::{service_id, LbPort, ServiceLb};
use berth_network::netlink::{self, BridgeSpec, Endpoint, Netlink};
use berth_network::nft::{NetworkRules, Nft};
use berth_network::ports::Proto;
use berth_network::{sysctl, MacAddr};
use common::{sa, TestNs};

const OK: Duration = Duration::from_secs(3);

/// A server greeting each connection with "<name> <peer>\n", then echoing each line as
/// "<name>:<line>\n" until the client closes.
struct Named {
    stop: Arc<AtomicBool>,
    peers: Arc<Mutex<Vec<IpAddr>>>,
    h: Option<std::thread::JoinHandle<()>>,
}

impl Named {
    fn start(name: &str, l: TcpListener) -> Named {
        let stop = Arc::new(AtomicBool::new(false));
        let peers = Arc::new(Mutex::new(Vec::new()));
        let (s2, p2, name) = (stop.clone(), peers.clone(), name.to_string());
        let h = std::thread::spawn(move || {
            l.set_nonblocking(true).unwrap();
            while !s2.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((s, peer)) => {
                        p2.lock().unwrap().push(peer.ip());
                        let name = name.clone();
                        std::thread::spawn(move || {
                            s.set_nonblocking(false).unwrap();
                            let mut w = s.try_clone().unwrap();
                            if w.write_all(format!("{name} {}\n", peer.ip()).as_bytes())
                                .is_err()
                            {
                                return;
                            }
                            for line in BufReader::new(s).lines() {
                                let Ok(line) = line else { return };
                                if w.write_all(format!("{name}:{line}\n").as_bytes()).is_err() {
                                    return;
                                }
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(1)),
                }
            }
        });
        Named {
            stop,
            peers,
            h: Some(h),
        }
    }

    fn peers(&self) -> Vec<IpAddr> {
        self.peers.lock().unwrap().clone()
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.h.take() {
            let _ = h.join();
        }
    }
}

/// An open connection made from namespace `ns`, with the greeting read.
struct Conn {
    r: BufReader<TcpStream>,
    w: TcpStream,
    greeting: String,
}

impl Conn {
    fn open(ns: &TestNs, to: SocketAddr) -> std::io::Result<Conn> {
        let s = ns.ns.run(|| TcpStream::connect_timeout(&to, OK)).unwrap()?;
        s.set_read_timeout(Some(OK))?;
        let w = s.try_clone()?;
        let mut r = BufReader::new(s);
        let mut greeting = String::new();
        r.read_line(&mut greeting)?;
        if greeting.is_empty() {
            return Err(std::io::Error::other("closed without a greeting"));
        }
        Ok(Conn {
            r,
            w,
            greeting: greeting.trim().to_string(),
        })
    }

    /// The backend's name.
    fn name(&self) -> &str {
        self.greeting.split(' ').next().unwrap()
    }

    /// The client address the backend saw.
    fn seen(&self) -> &str {
        self.greeting.split(' ').nth(1).unwrap_or("")
    }

    fn echo(&mut self, line: &str) -> std::io::Result<String> {
        self.w.write_all(format!("{line}\n").as_bytes())?;
        let mut got = String::new();
        self.r.read_line(&mut got)?;
        Ok(got.trim().to_string())
    }
}

struct World {
    h: TestNs,
    x: TestNs,
    nft: Nft,
    backends: Vec<TestNs>,
    client: TestNs,
}

const BRIDGE: &str = "br-lb";
const VIP: &str = "10.77.0.200";

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn plug(h: &TestNs, c: &TestNs, n: usize, host: u8) {
    let ip: Ipv4Addr = format!("10.77.0.{host}").parse().unwrap();
    let ep = Endpoint {
        bridge: BRIDGE.into(),
        host_ifname: netlink::host_veth_name(&format!("{n:08x}"), 0),
        ifname: "eth0".into(),
        mac: MacAddr::for_ip(ip.into()),
        addresses: vec![format!("{ip}/24").parse().unwrap()],
        gateways: vec!["10.77.0.1".parse().unwrap()],
        mtu: None,
    };
    netlink::setup_endpoint(&mut h.nl(), &mut Netlink::open_in(&c.ns).unwrap(), &ep).unwrap();
}

impl World {
    fn new() -> World {
        let h = TestNs::new("lb-h");
        let x = TestNs::new("lb-x");
        sysctl::enable_ipv4_forwarding(&h.ns).unwrap();
        let mut hnl = h.nl();
        let mut xnl = x.nl();
        hnl.create_veth("up0", "up0", &x.ns, None, None, None)
            .unwrap();
        xnl.set_up("up0", true).unwrap();
        let hi = hnl.link_index("up0").unwrap().unwrap();
        let xi = xnl.link_index("up0").unwrap().unwrap();
        hnl.add_address(hi, "198.51.100.1/24".parse().unwrap())
            .unwrap();
        xnl.add_address(xi, "198.51.100.2/24".parse().unwrap())
            .unwrap();
        xnl.add_default_route("198.51.100.1".parse().unwrap(), xi)
            .unwrap();
        netlink::ensure_bridge(
            &mut hnl,
            &BridgeSpec {
                name: BRIDGE.into(),
                mtu: None,
                addresses: vec!["10.77.0.1/24".parse().unwrap()],
            },
        )
        .unwrap();
        sysctl::enable_route_localnet(&h.ns, BRIDGE).unwrap();
        let nft = Nft::in_netns(&h.ns).unwrap();
        nft.add_network(&rules()).unwrap();
        let mut backends = Vec::new();
        for i in 0..3 {
            let b = TestNs::new("lb-b");
            plug(&h, &b, i, 2 + i as u8);
            backends.push(b);
        }
        let client = TestNs::new("lb-c");
        plug(&h, &client, 3, 5);
        World {
            h,
            x,
            nft,
            backends,
            client,
        }
    }
}

fn rules() -> NetworkRules {
    NetworkRules {
        bridge: BRIDGE.into(),
        subnets: vec!["10.77.0.0/24".parse().unwrap()],
        internal: false,
    }
}

fn addrs() -> Vec<Ipv4Addr> {
    (2..5).map(|i| v4(&format!("10.77.0.{i}"))).collect()
}

fn service(id: &str) -> ServiceLb {
    ServiceLb {
        id: id.into(),
        published: vec![LbPort {
            proto: Proto::Tcp,
            host_ip: None,
            host_port: 8080,
            target_port: 80,
        }],
        vip: Some((v4(VIP), BRIDGE.into())),
        vip_ports: vec![(Proto::Tcp, 80)],
        backends: addrs(),
    }
}

fn count(names: &[String], n: &str) -> usize {
    names.iter().filter(|x| *x == n).count()
}

#[test]
fn service_spreads_keeps_clients_follows_membership_and_goes() {
    need_root!();
    let w = World::new();
    let servers: Vec<Named> = w
        .backends
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let addr = sa(&format!("10.77.0.{}:80", 2 + i));
            Named::start(&format!("be{}", i + 1), b.listen(addr))
        })
        .collect();
    let id = service_id("shop", "pay");
    let lb = service(&id);
    w.nft.set_service(&lb).unwrap();
    w.nft.set_service(&lb).unwrap(); // idempotent
    netlink::add_vip(&mut w.h.nl(), BRIDGE, v4(VIP)).unwrap();
    netlink::add_vip(&mut w.h.nl(), BRIDGE, v4(VIP)).unwrap();
    assert_eq!(w.nft.services().unwrap(), std::slice::from_ref(&id));

    // 300 new connections from outside spread over the 3, each seeing the client itself.
    let front = sa("198.51.100.1:8080");
    let mut names = Vec::new();
    for _ in 0..300 {
        let c = Conn::open(&w.x, front).unwrap();
        assert_eq!(c.seen(), "198.51.100.2");
        names.push(c.name().to_string());
    }
    for n in ["be1", "be2", "be3"] {
        let k = count(&names, n);
        eprintln!("{n}: {k} of 300");
        assert!((60..=138).contains(&k), "{n} got {k} of 300");
    }
    // The counters counted exactly those.
    let mut counters = w.nft.backend_counters(&id).unwrap();
    counters.sort();
    let want: Vec<(Ipv4Addr, u64)> = addrs()
        .into_iter()
        .zip(["be1", "be2", "be3"])
        .map(|(a, n)| (a, count(&names, n) as u64))
        .collect();
    assert_eq!(counters, want);

    // Localhost (output chain, masqueraded to the bridge) and hairpin (a backend through
    // the host's address) work as for plain published ports.
    let c = Conn::open(&w.h, sa("127.0.0.1:8080")).unwrap();
    assert_eq!(c.seen(), "10.77.0.1");
    let c = Conn::open(&w.backends[0], front).unwrap();
    assert_eq!(c.seen(), "10.77.0.1");
    // The VIP from a container on the bridge (masqueraded: the reply must come back
    // through the host); not from outside.
    let vip = sa(&format!("{VIP}:80"));
    let mut vnames = Vec::new();
    for _ in 0..30 {
        let c = Conn::open(&w.client, vip).unwrap();
        assert_eq!(c.seen(), "10.77.0.1");
        vnames.push(c.name().to_string());
    }
    assert!(
        ["be1", "be2", "be3"].iter().all(|n| count(&vnames, n) > 0),
        "{vnames:?}"
    );
    w.x.sh(&format!("ip route add {VIP}/32 via 198.51.100.1"));
    assert!(Conn::open(&w.x, vip).is_err(), "VIP answered from outside");

    // A connection held open to be3, then be3 leaves: new connections never reach it,
    // the established one keeps working.
    let mut held = loop {
        let c = Conn::open(&w.x, front).unwrap();
        if c.name() == "be3" {
            break c;
        }
    };
    let t = Instant::now();
    w.nft.set_backends(&id, &addrs()[..2]).unwrap();
    eprintln!("set_backends (one leaves) {:?}", t.elapsed());
    let mut after = Vec::new();
    for _ in 0..60 {
        after.push(Conn::open(&w.x, front).unwrap().name().to_string());
    }
    assert_eq!(count(&after, "be3"), 0, "{after:?}");
    assert!(count(&after, "be1") > 0 && count(&after, "be2") > 0);
    assert_eq!(held.echo("still").unwrap(), "be3:still");
    // Its counter is gone with it; the others kept theirs.
    let c = w.nft.backend_counters(&id).unwrap();
    assert_eq!(c.len(), 2, "{c:?}");
    assert!(c.iter().all(|(a, _)| *a != addrs()[2]));

    // No backend: refused at once (TCP reset), not black-holed; the held one still works.
    w.nft.set_backends(&id, &[]).unwrap();
    for to in [front, vip] {
        let from = if to == vip { &w.client } else { &w.x };
        let t = Instant::now();
        let e = Conn::open(from, to).err().expect("refused");
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
    }
    assert_eq!(held.echo("again").unwrap(), "be3:again");
    assert!(w.nft.backend_counters(&id).unwrap().is_empty());

    // Back to 3, without this Nft's memory of the backends (another process's view).
    let other = Nft::in_netns(&w.h.ns).unwrap();
    other.set_backends(&id, &addrs()).unwrap();
    let mut back = Vec::new();
    for _ in 0..60 {
        back.push(Conn::open(&w.x, front).unwrap().name().to_string());
    }
    assert!(
        ["be1", "be2", "be3"].iter().all(|n| count(&back, n) > 0),
        "{back:?}"
    );
    assert_eq!(w.nft.backend_counters(&id).unwrap().len(), 3);

    // Every server saw only the client, the bridge (localhost, hairpin, VIP) addresses.
    for s in &servers {
        for p in s.peers() {
            assert!(
                ["198.51.100.2", "10.77.0.1"].contains(&p.to_string().as_str()),
                "{p}"
            );
        }
    }

    // Removal leaves nothing of the service: no dispatch element, chain, map, counter,
    // VIP; then the table goes with the network.
    drop(held);
    w.nft.remove_service(&id).unwrap();
    w.nft.remove_service(&id).unwrap();
    netlink::remove_vip(&mut w.h.nl(), BRIDGE, v4(VIP)).unwrap();
    netlink::remove_vip(&mut w.h.nl(), BRIDGE, v4(VIP)).unwrap();
    let text = w.h.sh("nft list table inet berth");
    assert!(!text.contains(&id), "{text}");
    assert!(!text.contains("10.77.0.2"), "{text}");
    assert!(w.nft.services().unwrap().is_empty());
    assert!(w.nft.backend_counters(&id).unwrap().is_empty());
    assert!(!w.h.sh("ip -4 addr show dev br-lb").contains(VIP));
    assert!(Conn::open(&w.x, front).is_err());
    assert!(
        !w.nft.delete_table_if_unused().unwrap(),
        "the network is left"
    );
    w.nft.remove_network(&rules()).unwrap();
    assert!(w.nft.delete_table_if_unused().unwrap());
    assert_eq!(w.h.sh("nft list tables").trim(), "");
    drop(servers);
}

#[test]
fn a_service_keeps_the_table_and_its_ports_are_its_own() {
    need_root!();
    let h = TestNs::new("lb-t");
    let nft = Nft::in_netns(&h.ns).unwrap();
    nft.add_network(&rules()).unwrap();
    let a = ServiceLb {
        vip: None,
        vip_ports: vec![],
        ..service("aaa")
    };
    nft.set_service(&a).unwrap();
    // Another service on the same port: refused, naming the holder.
    let e = nft
        .set_service(&ServiceLb {
            id: "bbb".into(),
            ..a.clone()
        })
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "nft: tcp port 8080 on every address is taken by service aaa already"
    );
    // Replacing a service's ports drops the old one.
    let a2 = ServiceLb {
        published: vec![LbPort {
            proto: Proto::Udp,
            host_ip: Some("127.0.0.1".parse().unwrap()),
            host_port: 5353,
            target_port: 53,
        }],
        ..a.clone()
    };
    nft.set_service(&a2).unwrap();
    let text = h.sh("nft list table inet berth");
    assert!(!text.contains("8080"), "{text}");
    assert!(
        text.contains("127.0.0.1 . udp . 5353 : jump svc-aaa-pub"),
        "{text}"
    );
    assert!(
        text.contains("dnat ip to numgen random mod 64 map @svc-aaa-slots:53"),
        "{text}"
    );
    assert!(text.contains("reject with tcp reset"), "{text}");
    // An unknown service has no backends to set.
    let e = nft.set_backends("zzz", &addrs()).unwrap_err().to_string();
    assert_eq!(e, "no load balancer for service zzz");
    // With the network gone the service still holds the table.
    nft.remove_network(&rules()).unwrap();
    assert!(!nft.delete_table_if_unused().unwrap());
    nft.remove_service("aaa").unwrap();
    assert!(nft.delete_table_if_unused().unwrap());
}

/// The number the report quotes: `set_backends` alternating between 3 and 2 backends
/// (each call flushes and refills the slot map and moves one counter).
#[test]
fn set_backends_latency() {
    need_root!();
    let h = TestNs::new("lb-time");
    let nft = Nft::in_netns(&h.ns).unwrap();
    nft.add_network(&rules()).unwrap();
    nft.set_service(&service("ccc")).unwrap();
    let all = addrs();
    let mut times = Vec::new();
    for i in 0..100 {
        let b = if i % 2 == 0 { &all[..2] } else { &all[..] };
        let t = Instant::now();
        nft.set_backends("ccc", b).unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    eprintln!(
        "set_backends: median {:?}, p90 {:?}, min {:?}, max {:?} (100 calls)",
        times[50], times[90], times[0], times[99]
    );
    let mut counters = nft.backend_counters("ccc").unwrap();
    counters.sort();
    assert_eq!(counters.iter().map(|c| c.0).collect::<Vec<_>>(), all);
}
