//! Root tests: packets take the paths README.md draws. A throwaway "host" namespace H
//! carries the bridges, forwarding and berth's table; "containers" are namespaces plugged
//! in with setup_endpoint; a "client" namespace X stands for the outside world, linked to
//! H by a veth (198.51.100.0/24 and 2001:db8:1::/64, documentation ranges, only inside
//! these namespaces).

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use berth_network::netlink::{self, BridgeSpec, Endpoint, Netlink};
use berth_network::nft::{NetworkRules, Nft};
use berth_network::ports::{self, Reservation};
use berth_network::{sysctl, MacAddr};
use common::{sa, Server, TestNs};

const OK: Duration = Duration::from_secs(3);
const DROP: Duration = Duration::from_millis(400);

struct Net {
    bridge: String,
    v4: String, // "10.77.0" prefix
    v6: Option<String>,
    internal: bool,
}

struct World {
    h: TestNs,
    x: TestNs,
    nft: Nft,
    containers: Vec<(TestNs, Endpoint)>,
}

impl World {
    fn new() -> World {
        let h = TestNs::new("w-h");
        let x = TestNs::new("w-x");
        sysctl::enable_ipv4_forwarding(&h.ns).unwrap();
        sysctl::enable_ipv6_forwarding(&h.ns).unwrap();
        // Uplink H <-> X.
        let mut hnl = h.nl();
        let mut xnl = x.nl();
        hnl.create_veth("up0", "up0", &x.ns, None, None, None)
            .unwrap();
        xnl.set_up("up0", true).unwrap();
        let hi = hnl.link_index("up0").unwrap().unwrap();
        let xi = xnl.link_index("up0").unwrap().unwrap();
        hnl.add_address(hi, "198.51.100.1/24".parse().unwrap())
            .unwrap();
        hnl.add_address(hi, "2001:db8:1::1/64".parse().unwrap())
            .unwrap();
        xnl.add_address(xi, "198.51.100.2/24".parse().unwrap())
            .unwrap();
        xnl.add_address(xi, "2001:db8:1::2/64".parse().unwrap())
            .unwrap();
        xnl.add_default_route("198.51.100.1".parse().unwrap(), xi)
            .unwrap();
        xnl.add_default_route("2001:db8:1::1".parse().unwrap(), xi)
            .unwrap();
        let nft = Nft::in_netns(&h.ns).unwrap();
        World {
            h,
            x,
            nft,
            containers: Vec::new(),
        }
    }

    fn network(&self, n: &Net) {
        let mut addrs = vec![format!("{}.1/24", n.v4).parse().unwrap()];
        let mut subnets = vec![format!("{}.0/24", n.v4).parse().unwrap()];
        if let Some(v6) = &n.v6 {
            addrs.push(format!("{v6}::1/64").parse().unwrap());
            subnets.push(format!("{v6}::/64").parse().unwrap());
        }
        netlink::ensure_bridge(
            &mut self.h.nl(),
            &BridgeSpec {
                name: n.bridge.clone(),
                mtu: None,
                addresses: addrs,
            },
        )
        .unwrap();
        sysctl::enable_route_localnet(&self.h.ns, &n.bridge).unwrap();
        self.nft
            .add_network(&NetworkRules {
                bridge: n.bridge.clone(),
                subnets,
                internal: n.internal,
            })
            .unwrap();
    }

    /// A container with address .`host` on network `n`; returns its index.
    fn container(&mut self, n: &Net, host: u8) -> usize {
        let c = TestNs::new("w-c");
        let v4: Ipv4Addr = format!("{}.{host}", n.v4).parse().unwrap();
        let mut addresses = vec![format!("{v4}/24").parse().unwrap()];
        let mut gateways: Vec<IpAddr> = Vec::new();
        if !n.internal {
            gateways.push(format!("{}.1", n.v4).parse().unwrap());
        }
        if let Some(v6) = &n.v6 {
            addresses.push(format!("{v6}::{host}/64").parse().unwrap());
            if !n.internal {
                gateways.push(format!("{v6}::1").parse().unwrap());
            }
        }
        let ep = Endpoint {
            bridge: n.bridge.clone(),
            host_ifname: netlink::host_veth_name(&format!("{:08x}", self.containers.len()), 0),
            ifname: "eth0".into(),
            mac: MacAddr::for_ip(v4.into()),
            addresses,
            gateways,
            mtu: None,
        };
        let mut cnl = Netlink::open_in(&c.ns).unwrap();
        netlink::setup_endpoint(&mut self.h.nl(), &mut cnl, &ep).unwrap();
        self.containers.push((c, ep));
        self.containers.len() - 1
    }

    fn c(&self, i: usize) -> &TestNs {
        &self.containers[i].0
    }

    /// Publishes `specs` (docker -p forms) for container `i` (owner "c<i>").
    fn publish(&self, i: usize, specs: &[&str]) -> Reservation {
        let specs: Vec<_> = specs
            .iter()
            .flat_map(|s| ports::parse_publish(s).unwrap())
            .collect();
        let r = self
            .h
            .ns
            .run(|| ports::reserve(&specs, true))
            .unwrap()
            .unwrap();
        let ep = &self.containers[i].1;
        let v4 = ep.addresses.iter().find_map(|a| match a.addr() {
            IpAddr::V4(v) => Some(v),
            _ => None,
        });
        let v6: Option<Ipv6Addr> = ep.addresses.iter().find_map(|a| match a.addr() {
            IpAddr::V6(v) => Some(v),
            _ => None,
        });
        let rules = ports::port_rules(&format!("c{i}"), &r.bindings, v4, v6).unwrap();
        self.nft.add_ports(&rules).unwrap();
        r
    }
}

fn net1() -> Net {
    Net {
        bridge: "br-one".into(),
        v4: "10.77.0".into(),
        v6: Some("fd77".into()),
        internal: false,
    }
}

#[test]
fn published_port_keeps_the_client_address() {
    need_root!();
    let mut w = World::new();
    let n = net1();
    w.network(&n);
    let a = w.container(&n, 2);
    let s4 = Server::start(w.c(a).listen(sa("10.77.0.2:80")));
    let s6 = Server::start(w.c(a).listen(sa("[fd77::2]:80")));
    let _r = w.publish(a, &["8080:80"]);
    // From outside, v4 and v6: the container sees the client itself.
    assert_eq!(
        w.x.connect(sa("198.51.100.1:8080"), OK).unwrap(),
        "198.51.100.2"
    );
    assert_eq!(
        w.x.connect(sa("[2001:db8:1::1]:8080"), OK).unwrap(),
        "2001:db8:1::2"
    );
    // From the host itself, to its own outside address (output chain).
    assert_eq!(
        w.h.connect(sa("198.51.100.1:8080"), OK).unwrap(),
        "198.51.100.1"
    );
    // A port nobody published is not forwarded (and nothing listens on the host).
    assert!(w.x.connect(sa("198.51.100.1:8081"), DROP).is_err());
    // Unpublished: gone.
    assert_eq!(w.nft.remove_owner("c0").unwrap(), 2);
    assert!(w.x.connect(sa("198.51.100.1:8080"), DROP).is_err());
    assert_eq!(s4.stop().len(), 2);
    assert_eq!(s6.stop().len(), 1);
}

#[test]
fn localhost_publishing_works_and_stays_local() {
    need_root!();
    let mut w = World::new();
    let n = net1();
    w.network(&n);
    let a = w.container(&n, 2);
    let s = Server::start(w.c(a).listen(sa("10.77.0.2:80")));
    let _r = w.publish(a, &["127.0.0.1:8081:80", "8080:80"]);
    // 127.0.0.1 on the host reaches the container (route_localnet + masquerade: the
    // container sees the bridge's address, as a reply to 127.0.0.1 could not come back).
    assert_eq!(w.h.connect(sa("127.0.0.1:8081"), OK).unwrap(), "10.77.0.1");
    // A port published on every address answers on 127.0.0.1 too.
    assert_eq!(w.h.connect(sa("127.0.0.1:8080"), OK).unwrap(), "10.77.0.1");
    // The 127.0.0.1 port is not published on the outside address.
    assert!(w.x.connect(sa("198.51.100.1:8081"), DROP).is_err());
    assert_eq!(s.stop().len(), 2);
}

#[test]
fn hairpin_and_neighbours_reach_a_published_port() {
    need_root!();
    let mut w = World::new();
    let n = net1();
    w.network(&n);
    let a = w.container(&n, 2);
    let b = w.container(&n, 3);
    let s = Server::start(w.c(a).listen(sa("10.77.0.2:80")));
    let _r = w.publish(a, &["8080:80"]);
    // The container reaches its own published port through the host's address...
    assert_eq!(
        w.c(a).connect(sa("198.51.100.1:8080"), OK).unwrap(),
        "10.77.0.1"
    );
    // ...and so does a neighbour on the same bridge (masqueraded: the reply must go
    // back through the host to be un-DNATed).
    assert_eq!(
        w.c(b).connect(sa("198.51.100.1:8080"), OK).unwrap(),
        "10.77.0.1"
    );
    // Directly, neighbours see each other as they are.
    assert_eq!(w.c(b).connect(sa("10.77.0.2:80"), OK).unwrap(), "10.77.0.3");
    assert_eq!(s.stop().len(), 3);
}

#[test]
fn egress_is_masqueraded() {
    need_root!();
    let mut w = World::new();
    let n = net1();
    w.network(&n);
    let a = w.container(&n, 2);
    let s4 = Server::start(w.x.listen(sa("198.51.100.2:9000")));
    let s6 = Server::start(w.x.listen(sa("[2001:db8:1::2]:9000")));
    assert_eq!(
        w.c(a).connect(sa("198.51.100.2:9000"), OK).unwrap(),
        "198.51.100.1"
    );
    assert_eq!(
        w.c(a).connect(sa("[2001:db8:1::2]:9000"), OK).unwrap(),
        "2001:db8:1::1"
    );
    s4.stop();
    s6.stop();
}

#[test]
fn networks_are_isolated_and_internal_ones_closed() {
    need_root!();
    let mut w = World::new();
    let one = net1();
    let two = Net {
        bridge: "br-two".into(),
        v4: "10.78.0".into(),
        v6: None,
        internal: false,
    };
    let int = Net {
        bridge: "br-int".into(),
        v4: "10.79.0".into(),
        v6: None,
        internal: true,
    };
    w.network(&one);
    w.network(&two);
    w.network(&int);
    let a = w.container(&one, 2);
    let d = w.container(&two, 2);
    let i = w.container(&int, 2);
    let i2 = w.container(&int, 3);
    let sa_ = Server::start(w.c(a).listen(sa("10.77.0.2:80")));
    let si = Server::start(w.c(i).listen(sa("10.79.0.2:80")));
    let sx = Server::start(w.x.listen(sa("198.51.100.2:9000")));
    let _r = w.publish(a, &["8080:80"]);

    // Network two cannot reach network one directly...
    assert!(w.c(d).connect(sa("10.77.0.2:80"), DROP).is_err());
    // ...but can reach its published port, with its own address kept.
    assert_eq!(
        w.c(d).connect(sa("198.51.100.1:8080"), OK).unwrap(),
        "10.78.0.2"
    );
    // The internal network reaches its own members, not the outside nor the others...
    assert_eq!(
        w.c(i2).connect(sa("10.79.0.2:80"), OK).unwrap(),
        "10.79.0.3"
    );
    assert!(w.c(i).connect(sa("198.51.100.2:9000"), DROP).is_err());
    assert!(w.c(i).connect(sa("10.77.0.2:80"), DROP).is_err());
    // ...and nothing reaches into it.
    let mut xnl = w.x.nl();
    let xi = xnl.link_index("up0").unwrap().unwrap();
    w.x.sh(&format!(
        "ip route add 10.79.0.0/24 via 198.51.100.1 dev up0 # {xi}"
    ));
    assert!(w.x.connect(sa("10.79.0.2:80"), DROP).is_err());
    assert!(w.c(a).connect(sa("10.79.0.2:80"), DROP).is_err());
    // Removing network two's rules lifts nothing for the others.
    w.nft
        .remove_network(&NetworkRules {
            bridge: "br-two".into(),
            subnets: vec!["10.78.0.0/24".parse().unwrap()],
            internal: false,
        })
        .unwrap();
    assert!(w.c(i).connect(sa("198.51.100.2:9000"), DROP).is_err());
    assert_eq!(sa_.stop(), vec!["10.78.0.2".parse::<IpAddr>().unwrap()]);
    assert_eq!(si.stop().len(), 1);
    assert!(sx.stop().is_empty());
}
