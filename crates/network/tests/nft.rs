//! Root tests: berth's nftables table really loads with the installed nft, in a
//! throwaway namespace, and goes away again.

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use berth_network::nft::{NetworkRules, Nft, PortRule};
use berth_network::ports::Proto;
use common::TestNs;

fn net(bridge: &str, subnets: &[&str], internal: bool) -> NetworkRules {
    NetworkRules {
        bridge: bridge.into(),
        subnets: subnets.iter().map(|s| s.parse().unwrap()).collect(),
        internal,
    }
}

fn port(owner: &str, proto: Proto, host: Option<&str>, hp: u16, cip: &str, cp: u16) -> PortRule {
    PortRule {
        owner: owner.into(),
        proto,
        host_ip: host.map(|h| h.parse::<IpAddr>().unwrap()),
        host_port: hp,
        container_ip: cip.parse().unwrap(),
        container_port: cp,
    }
}

fn sorted(mut v: Vec<PortRule>) -> Vec<PortRule> {
    v.sort_by_key(|p| {
        (
            p.owner.clone(),
            p.host_port,
            p.proto,
            p.host_ip,
            p.container_ip,
        )
    });
    v
}

#[test]
fn ruleset_loads_is_idempotent_and_goes() {
    need_root!();
    let h = TestNs::new("nft");
    let nft = Nft::in_netns(&h.ns).unwrap();
    let n1 = net("br-one", &["172.18.0.0/16"], false);
    let n2 = net("br-two", &["172.19.0.0/16", "fd00:2::/64"], true);
    nft.add_network(&n1).unwrap();
    nft.add_network(&n1).unwrap();
    nft.add_network(&n2).unwrap();
    let text = h.sh("nft list table inet berth");
    // The base rules are there once, however often a network was added.
    assert_eq!(text.matches("jump published").count(), 2, "{text}");
    assert_eq!(text.matches("@snat4").count(), 1, "{text}");
    for want in [
        "chain snat-br-one",
        "chain fwd-in-br-one",
        "chain fwd-out-br-two",
        "172.18.0.0/16 : jump snat-br-one",
        "fd00:2::/64 : jump snat-br-two",
        "\"br-two\" : jump fwd-out-br-two",
        "fib daddr type local jump published",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    let mut bridges = nft.bridges().unwrap();
    bridges.sort();
    assert_eq!(bridges, ["br-one", "br-two"]);

    let a = vec![
        port("aaa", Proto::Tcp, None, 8080, "172.18.0.2", 80),
        port("aaa", Proto::Udp, Some("127.0.0.1"), 5353, "172.18.0.2", 53),
        port("aaa", Proto::Sctp, None, 9999, "172.18.0.2", 9),
        port("aaa", Proto::Tcp, None, 8080, "fd00:2::2", 80),
        port("aaa", Proto::Tcp, Some("fd00:9::1"), 8443, "fd00:2::2", 443),
    ];
    let b = vec![port("bbb", Proto::Tcp, None, 8081, "172.19.0.2", 80)];
    nft.add_ports(&a).unwrap();
    nft.add_ports(&b).unwrap();
    nft.add_ports(&a).unwrap(); // again: same elements, fine
    let all: Vec<PortRule> = a.iter().chain(&b).cloned().collect();
    assert_eq!(sorted(nft.list_ports().unwrap()), sorted(all.clone()));

    // Unpublishing is idempotent; the sweep by owner finds the rest.
    nft.remove_ports(&a[..2]).unwrap();
    nft.remove_ports(&a[..2]).unwrap();
    assert_eq!(nft.remove_owner("aaa").unwrap(), 3);
    assert_eq!(nft.remove_owner("aaa").unwrap(), 0);
    assert_eq!(nft.list_ports().unwrap(), b);
    // A key held by someone else (stale) makes our removal a no-op, not an error, and
    // our publishing an error naming the holder.
    let other = port("ccc", Proto::Tcp, None, 8081, "172.19.0.9", 80);
    nft.remove_ports(std::slice::from_ref(&other)).unwrap();
    assert_eq!(
        nft.add_ports(&[other]).unwrap_err().to_string(),
        "nft: tcp port 8081 on every address is published for bbb already"
    );
    assert_eq!(nft.list_ports().unwrap(), b);

    // With a network or a port left, the table stays.
    assert!(!nft.delete_table_if_unused().unwrap());
    nft.remove_network(&n1).unwrap();
    nft.remove_network(&n1).unwrap();
    nft.remove_network(&n2).unwrap();
    assert!(nft.bridges().unwrap().is_empty());
    let text = h.sh("nft list table inet berth");
    assert!(
        !text.contains("br-one") && !text.contains("br-two"),
        "{text}"
    );
    assert!(!nft.delete_table_if_unused().unwrap(), "bbb's port is left");
    nft.remove_ports(&b).unwrap();
    assert!(nft.delete_table_if_unused().unwrap());
    assert!(nft.delete_table_if_unused().unwrap());
    assert_eq!(h.sh("nft list tables").trim(), "");
    nft.delete_table().unwrap();
    // Ports without a network still load (the maps exist without base chains).
    nft.add_ports(&b).unwrap();
    nft.delete_table().unwrap();
    assert_eq!(h.sh("nft list tables").trim(), "");
}

#[test]
fn nft_errors_carry_nfts_words() {
    need_root!();
    let h = TestNs::new("nfterr");
    let nft = Nft::in_netns(&h.ns).unwrap();
    let e = nft
        .apply(vec![
            serde_json::json!({"add": {"chain": {"family": "inet", "table": "nope", "name": "x"}}}),
        ])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("nft: ") && e.contains("No such file or directory"),
        "{e}"
    );
    let missing = Nft::in_netns(&h.ns)
        .unwrap()
        .with_binary("/nonexistent/nft");
    let e = missing.list_ports().unwrap_err().to_string();
    assert!(e.starts_with("run /nonexistent/nft: "), "{e}");
}

/// The numbers the report quotes: one transaction adding, one removing a container's
/// port elements (two ports on 0.0.0.0 and [::]).
#[test]
fn port_transaction_time() {
    need_root!();
    let h = TestNs::new("nfttime");
    let nft = Nft::in_netns(&h.ns).unwrap();
    nft.add_network(&net("br-t", &["172.18.0.0/16", "fd00:1::/64"], false))
        .unwrap();
    let rounds = 20;
    let (mut add, mut del) = (Duration::ZERO, Duration::ZERO);
    for i in 0..rounds {
        let ports = vec![
            port("c", Proto::Tcp, None, 8000 + i, "172.18.0.2", 80),
            port("c", Proto::Tcp, None, 8000 + i, "fd00:1::2", 80),
            port("c", Proto::Udp, None, 9000 + i, "172.18.0.2", 53),
            port("c", Proto::Udp, None, 9000 + i, "fd00:1::2", 53),
        ];
        let t0 = Instant::now();
        nft.add_ports(&ports).unwrap();
        let t1 = Instant::now();
        nft.remove_ports(&ports).unwrap();
        let t2 = Instant::now();
        add += t1 - t0;
        del += t2 - t1;
    }
    let n = u32::from(rounds);
    eprintln!(
        "nft add 4 port elements {:?}, remove {:?} (mean of {n})",
        add / n,
        del / n
    );
    let t = Instant::now();
    nft.add_network(&net("br-u", &["172.20.0.0/16"], false))
        .unwrap();
    eprintln!("nft add_network {:?}", t.elapsed());
    assert!(nft.list_ports().unwrap().is_empty());
}
