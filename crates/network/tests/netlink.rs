//! Root tests: bridges, veths, addresses and routes in throwaway namespaces.

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use berth_network::netlink::{self, BridgeSpec, Endpoint, Netlink};
use berth_network::{sysctl, MacAddr};
use common::{sa, Server, TestNs};

fn bridge(name: &str) -> BridgeSpec {
    BridgeSpec {
        name: name.into(),
        mtu: Some(1500),
        addresses: vec![
            "10.77.0.1/24".parse().unwrap(),
            "fd77::1/64".parse().unwrap(),
        ],
    }
}

fn endpoint(cid: &str, n: u16, v4: &str, v6: &str) -> Endpoint {
    let ip4: IpAddr = v4.parse().unwrap();
    Endpoint {
        bridge: "br-test".into(),
        host_ifname: netlink::host_veth_name(cid, n),
        ifname: format!("eth{n}"),
        mac: MacAddr::for_ip(ip4),
        addresses: vec![
            format!("{v4}/24").parse().unwrap(),
            format!("{v6}/64").parse().unwrap(),
        ],
        gateways: vec!["10.77.0.1".parse().unwrap(), "fd77::1".parse().unwrap()],
        mtu: Some(1500),
    }
}

#[test]
fn sysctl_writes_land_in_the_given_namespace() {
    need_root!();
    let before = std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap();
    let h = TestNs::new("sysctl");
    // The namespace's own /proc/sys/net: it has no eth0 of the machine's.
    let seen =
        h.ns.run(|| std::path::Path::new("/proc/sys/net/ipv4/conf/eth0").exists())
            .unwrap();
    assert!(!seen);
    let v = if before.trim() == "1234" {
        "1235"
    } else {
        "1234"
    };
    sysctl::set(&h.ns, "net.core.somaxconn", v).unwrap();
    assert_eq!(sysctl::get(&h.ns, "net.core.somaxconn").unwrap(), v);
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap(),
        before
    );
    sysctl::enable_ipv4_forwarding(&h.ns).unwrap();
    assert_eq!(sysctl::get(&h.ns, "net.ipv4.ip_forward").unwrap(), "1");
    assert_eq!(h.sh("cat /proc/sys/net/ipv4/ip_forward").trim(), "1");
}

#[test]
fn bridge_is_idempotent_and_carries_a_marker() {
    need_root!();
    let h = TestNs::new("br");
    let mut nl = h.nl();
    let i1 = netlink::ensure_bridge(&mut nl, &bridge("br-test")).unwrap();
    let i2 = netlink::ensure_bridge(&mut nl, &bridge("br-test")).unwrap();
    assert_eq!(i1, i2);
    let l = nl.link("br-test").unwrap().unwrap();
    assert_eq!(l.kind.as_deref(), Some("bridge"));
    assert!(l.up);
    assert_eq!(l.mac, Some(MacAddr::from_seed("br-test")));
    assert_eq!(l.alias, None);
    nl.set_alias("br-test", "berth:rules=1").unwrap();
    assert_eq!(
        nl.link("br-test").unwrap().unwrap().alias.as_deref(),
        Some("berth:rules=1")
    );
    let addrs = h.sh("ip -o addr show dev br-test");
    assert!(addrs.contains("10.77.0.1/24"), "{addrs}");
    assert!(addrs.contains("fd77::1/64"), "{addrs}");
    assert!(!addrs.contains("tentative"), "{addrs}");
    // The bridge's subnet shows up among the route subnets; a link of another kind with
    // the name is refused.
    let subnets = nl.route_subnets().unwrap();
    assert!(
        subnets.contains(&"10.77.0.0/24".parse().unwrap()),
        "{subnets:?}"
    );
    assert!(
        subnets.contains(&"fd77::/64".parse().unwrap()),
        "{subnets:?}"
    );
    h.sh("ip link add dummy-x type veth peer name dummy-y");
    let e = nl.create_bridge("dummy-x", None).unwrap_err().to_string();
    assert!(
        e.contains("dummy-x exists and is a veth, not a bridge"),
        "{e}"
    );
    assert!(nl.link("nonexistent0").unwrap().is_none());
    nl.delete_link("br-test").unwrap();
    nl.delete_link("br-test").unwrap();
    assert!(nl.link_index("br-test").unwrap().is_none());
}

#[test]
fn endpoint_connects_a_container_to_its_bridge() {
    need_root!();
    let h = TestNs::new("ep-h");
    let c = TestNs::new("ep-c");
    let mut hnl = h.nl();
    let mut cnl = Netlink::open_in(&c.ns).unwrap();
    netlink::ensure_bridge(&mut hnl, &bridge("br-test")).unwrap();
    let cid = "abcdef0123456789";
    let ep = endpoint(cid, 0, "10.77.0.2", "fd77::2");
    netlink::setup_endpoint(&mut hnl, &mut cnl, &ep).unwrap();

    // Host end: a hairpin port of the bridge.
    let host_end = hnl.link(&ep.host_ifname).unwrap().unwrap();
    let br = hnl.link_index("br-test").unwrap().unwrap();
    assert_eq!(host_end.master, Some(br));
    assert!(host_end.up);
    let detail = h.sh(&format!("ip -d link show dev {}", ep.host_ifname));
    assert!(detail.contains("hairpin on"), "{detail}");
    // Peer: eth0 in the container, MAC, addresses, routes.
    let eth0 = cnl.link("eth0").unwrap().unwrap();
    assert_eq!(
        eth0.mac,
        Some(MacAddr::for_ip("10.77.0.2".parse().unwrap()))
    );
    assert_eq!(eth0.mtu, Some(1500));
    assert!(eth0.up);
    let routes = c.sh("ip route; ip -6 route");
    assert!(
        routes.contains("default via 10.77.0.1 dev eth0"),
        "{routes}"
    );
    assert!(routes.contains("default via fd77::1 dev eth0"), "{routes}");

    // Traffic both ways at once, IPv6 too (NODAD: no wait for duplicate detection).
    let l4 = h.listen(sa("10.77.0.1:7001"));
    let l6 = h.listen(sa("[fd77::1]:7001"));
    let s4 = Server::start(l4);
    let s6 = Server::start(l6);
    assert_eq!(
        c.connect(sa("10.77.0.1:7001"), Duration::from_secs(2))
            .unwrap(),
        "10.77.0.2"
    );
    assert_eq!(
        c.connect(sa("[fd77::1]:7001"), Duration::from_secs(2))
            .unwrap(),
        "fd77::2"
    );
    assert_eq!(s4.stop().len(), 1);
    assert_eq!(s6.stop().len(), 1);

    // A stale host end of the same name is replaced on the next setup.
    let c2 = TestNs::new("ep-c2");
    let mut c2nl = Netlink::open_in(&c2.ns).unwrap();
    netlink::setup_endpoint(&mut hnl, &mut c2nl, &ep).unwrap();
    assert!(
        cnl.link("eth0").unwrap().is_none(),
        "the old pair went with its host end"
    );
    assert!(c2nl.link("eth0").unwrap().is_some());

    netlink::teardown_endpoint(&mut hnl, &ep.host_ifname).unwrap();
    netlink::teardown_endpoint(&mut hnl, &ep.host_ifname).unwrap();
    assert!(hnl.link(&ep.host_ifname).unwrap().is_none());
    assert!(c2nl.link("eth0").unwrap().is_none());
    let stale: Vec<_> = hnl
        .links()
        .unwrap()
        .into_iter()
        .filter(|l| l.name.starts_with(netlink::HOST_VETH_PREFIX))
        .collect();
    assert!(stale.is_empty(), "{stale:?}");
}

#[test]
fn endpoint_on_a_missing_bridge_fails_cleanly() {
    need_root!();
    let h = TestNs::new("nobr-h");
    let c = TestNs::new("nobr-c");
    let mut hnl = h.nl();
    let mut cnl = Netlink::open_in(&c.ns).unwrap();
    let ep = endpoint("0011223344", 0, "10.77.0.2", "fd77::2");
    let e = netlink::setup_endpoint(&mut hnl, &mut cnl, &ep)
        .unwrap_err()
        .to_string();
    assert!(e.contains("bridge br-test does not exist"), "{e}");
    // A socket not opened inside a namespace cannot stand for the container.
    let mut plain = Netlink::open().unwrap();
    assert!(netlink::setup_endpoint(&mut hnl, &mut plain, &ep).is_err());
    assert!(hnl
        .links()
        .unwrap()
        .iter()
        .all(|l| !l.name.starts_with("vb")));
}

/// Not a pass/fail bound (the machine is shared), but the numbers the report quotes.
#[test]
fn endpoint_setup_and_teardown_time() {
    need_root!();
    let h = TestNs::new("time-h");
    let mut hnl = h.nl();
    netlink::ensure_bridge(&mut hnl, &bridge("br-test")).unwrap();
    let rounds = 30;
    let mut setup = Duration::ZERO;
    let mut teardown = Duration::ZERO;
    let mut open = Duration::ZERO;
    for i in 0..rounds {
        let c = TestNs::new("time-c");
        let t0 = Instant::now();
        let mut cnl = Netlink::open_in(&c.ns).unwrap();
        cnl.loopback_up().unwrap();
        let t1 = Instant::now();
        let ep = endpoint("feedbeef", i, "10.77.0.2", "fd77::2");
        netlink::setup_endpoint(&mut hnl, &mut cnl, &ep).unwrap();
        let t2 = Instant::now();
        netlink::teardown_endpoint(&mut hnl, &ep.host_ifname).unwrap();
        let t3 = Instant::now();
        open += t1 - t0;
        setup += t2 - t1;
        teardown += t3 - t2;
    }
    let per = |d: Duration| d / rounds as u32;
    eprintln!(
        "open_in+lo up {:?}, setup_endpoint {:?}, teardown_endpoint {:?} (mean of {rounds})",
        per(open),
        per(setup),
        per(teardown)
    );
    assert!(per(setup) < Duration::from_millis(500));
}
