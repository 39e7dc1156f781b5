//! Root tests: the real berth-dns binary in a throwaway namespace, with two networks'
//! bridges, a fake upstream resolver on 127.0.0.1:53 (inside the namespace), and records
//! in a temp root. The namespace and the server are removed even when a test fails.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_network::dns::{EndpointRecord, NetworkRecord, NetworksDir, ServiceRecord};
use berth_network::ipam::Pool;
use berth_network::netlink::{self, BridgeSpec, Netlink};
use berth_network::NetNs;
use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};

struct TestNs {
    name: String,
    ns: NetNs,
}

impl TestNs {
    fn new(tag: &str) -> TestNs {
        let name = format!("berth-nt-{tag}-{}", std::process::id());
        assert!(Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap()
            .success());
        let ns = NetNs::named(&name).unwrap();
        Netlink::open_in(&ns).unwrap().loopback_up().unwrap();
        TestNs { name, ns }
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// The server process, killed (by its pid) if the test ends before it does.
struct Dns(Child);

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_dns(ns: &TestNs, root: &Path, resolv: &Path) -> (Child, String, Duration) {
    let t = Instant::now();
    let mut c = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", ns.name))
        .arg(match std::env::var_os("BERTH_BIN_DIR") {
            // scripts/test.sh: the shipped (release) build.
            Some(d) => std::path::Path::new(&d).join("berth-dns"),
            None => env!("CARGO_BIN_EXE_berth-dns").into(),
        })
        .args([
            "--root",
            root.to_str().unwrap(),
            "--ready-fd",
            "1",
            "--timeout-ms",
            "500",
        ])
        .arg("--resolv-conf")
        .arg(resolv)
        // It lingers once idle; the tests wait for its exit.
        .env("BERTH_DNS_LINGER_MS", "300")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(c.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (c, line, t.elapsed())
}

fn network(id: char, name: &str, bridge: &str, v4: &str, v6: Option<&str>) -> NetworkRecord {
    let mut subnets = vec![Pool {
        subnet: format!("{v4}.0/24").parse().unwrap(),
        gateway: format!("{v4}.1").parse().unwrap(),
        ip_range: None,
    }];
    if let Some(v6) = v6 {
        subnets.push(Pool {
            subnet: format!("{v6}::/64").parse().unwrap(),
            gateway: format!("{v6}::1").parse().unwrap(),
            ip_range: None,
        });
    }
    NetworkRecord {
        id: id.to_string().repeat(64),
        name: name.into(),
        driver: "bridge".into(),
        bridge: bridge.into(),
        subnets,
        internal: false,
        ipv6: v6.is_some(),
        dns: true,
        mtu: None,
        labels: Default::default(),
        options: Default::default(),
        created: String::new(),
    }
}

fn endpoint(id: char, name: &str, aliases: &[&str], addrs: &[&str]) -> EndpointRecord {
    EndpointRecord {
        container_id: id.to_string().repeat(64),
        name: name.into(),
        aliases: aliases.iter().map(|s| s.to_string()).collect(),
        addresses: addrs.iter().map(|a| a.parse().unwrap()).collect(),
        mac: None,
        host_ifname: None,
    }
}

fn query_bytes(name: &str, t: RecordType) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    m.to_vec().unwrap()
}

/// Asks `server` over UDP from inside the namespace: (rcode, answers as text).
fn ask(ns: &NetNs, server: &str, name: &str, t: RecordType) -> (ResponseCode, Vec<String>) {
    let server: SocketAddr = server.parse().unwrap();
    let bind = if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let s = ns.run(|| UdpSocket::bind(bind)).unwrap().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let q = query_bytes(name, t);
    s.send_to(&q, server).unwrap();
    let mut buf = [0u8; 4096];
    let n = s.recv(&mut buf).unwrap();
    let m = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(m.metadata.id, u16::from_be_bytes([q[0], q[1]]));
    (
        m.metadata.response_code,
        m.answers.iter().map(|r| r.data.to_string()).collect(),
    )
}

fn ask_tcp(ns: &NetNs, server: &str, name: &str) -> Vec<String> {
    let server: SocketAddr = server.parse().unwrap();
    let mut s = ns
        .run(|| TcpStream::connect_timeout(&server, Duration::from_secs(2)))
        .unwrap()
        .unwrap();
    let q = query_bytes(name, RecordType::A);
    let mut out = (q.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&q);
    s.write_all(&out).unwrap();
    let mut l = [0u8; 2];
    s.read_exact(&mut l).unwrap();
    let mut b = vec![0u8; u16::from_be_bytes(l) as usize];
    s.read_exact(&mut b).unwrap();
    Message::from_vec(&b)
        .unwrap()
        .answers
        .iter()
        .map(|r| r.data.to_string())
        .collect()
}

/// A fake upstream resolver: answers every A question with 192.0.2.99.
fn fake_upstream(ns: &NetNs) -> UdpSocket {
    let s = ns.run(|| UdpSocket::bind("127.0.0.1:53")).unwrap().unwrap();
    let s2 = s.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok((n, peer)) = s2.recv_from(&mut buf) {
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                return;
            };
            if q.queries.is_empty() {
                return; // the test's stop signal
            }
            let mut r = Message::new(q.metadata.id, MessageType::Response, q.metadata.op_code);
            r.add_queries(q.queries.clone());
            r.add_answer(Record::from_rdata(
                q.queries[0].name().clone(),
                60,
                RData::A(A("192.0.2.99".parse().unwrap())),
            ));
            let _ = s2.send_to(&r.to_vec().unwrap(), peer);
        }
    });
    s
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(3);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn dns_answers_forwards_reloads_and_exits() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let h = TestNs::new("dns");
    let mut nl = Netlink::open_in(&h.ns).unwrap();
    for (b, a) in [
        ("br-dns1", vec!["10.88.0.1/24", "fd88::1/64"]),
        ("br-dns2", vec!["10.89.0.1/24"]),
    ] {
        let addresses = a.iter().map(|s| s.parse().unwrap()).collect();
        netlink::ensure_bridge(
            &mut nl,
            &BridgeSpec {
                name: b.into(),
                mtu: None,
                addresses,
            },
        )
        .unwrap();
    }
    let root = tempfile::tempdir().unwrap();
    let nd = NetworksDir::new(root.path());
    let n1 = network('1', "front", "br-dns1", "10.88.0", Some("fd88"));
    let n2 = network('2', "back", "br-dns2", "10.89.0", None);
    nd.write_network(&n1).unwrap();
    nd.write_network(&n2).unwrap();
    nd.write_endpoint(
        &n1.id,
        &endpoint('a', "web", &["api"], &["10.88.0.2", "fd88::2"]),
    )
    .unwrap();
    nd.write_endpoint(&n2.id, &endpoint('b', "db", &[], &["10.89.0.2"]))
        .unwrap();
    let resolv = root.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.1\n").unwrap();
    let upstream = fake_upstream(&h.ns);

    let (child, line, took) = start_dns(&h, root.path(), &resolv);
    let mut dns = Dns(child);
    assert_eq!(line, "ok\n");
    eprintln!("berth-dns start to ready: {took:?}");

    // Names of the network the question came in on.
    let g1 = "10.88.0.1:53";
    assert_eq!(
        ask(&h.ns, g1, "web", RecordType::A),
        (ResponseCode::NoError, vec!["10.88.0.2".into()])
    );
    assert_eq!(
        ask(&h.ns, "[fd88::1]:53", "WEB.", RecordType::AAAA).1,
        ["fd88::2"]
    );
    assert_eq!(ask(&h.ns, g1, "api.", RecordType::A).1, ["10.88.0.2"]);
    assert_eq!(
        ask(&h.ns, g1, "aaaaaaaaaaaa", RecordType::A).1,
        ["10.88.0.2"]
    );
    assert_eq!(ask(&h.ns, g1, "web.front", RecordType::A).1, ["10.88.0.2"]);
    assert_eq!(
        ask(&h.ns, g1, "2.0.88.10.in-addr.arpa", RecordType::PTR).1,
        ["web.front."]
    );
    assert_eq!(ask_tcp(&h.ns, g1, "web"), ["10.88.0.2"]);
    // Not across networks: "db" is back's; front's server forwards it upstream.
    assert_eq!(ask(&h.ns, g1, "db", RecordType::A).1, ["192.0.2.99"]);
    assert_eq!(
        ask(&h.ns, "10.89.0.1:53", "db", RecordType::A).1,
        ["10.89.0.2"]
    );
    // Other names go upstream, over UDP and TCP alike (TCP upstream: none here -> SERVFAIL).
    assert_eq!(
        ask(&h.ns, g1, "example.com", RecordType::A).1,
        ["192.0.2.99"]
    );

    // A new endpoint is served at once (inotify, no polling).
    nd.write_endpoint(&n2.id, &endpoint('c', "late", &[], &["10.89.0.3"]))
        .unwrap();
    wait_until("late to resolve", || {
        ask(&h.ns, "10.89.0.1:53", "late", RecordType::A).1 == ["10.89.0.3"]
    });

    // A second instance finds the first and leaves.
    let (mut second, line, _) = start_dns(&h, root.path(), &resolv);
    assert_eq!(line, "ok\n");
    assert!(second.wait().unwrap().success());
    let pid = std::fs::read_to_string(nd.dns_pidfile()).unwrap();
    assert_eq!(pid.trim(), dns.0.id().to_string());
    assert_eq!(
        berth_network::dns::server_pid(&nd).unwrap(),
        Some(dns.0.id())
    );

    // Upstream gone: SERVFAIL within the timeout, local names still fine.
    upstream.send_to(&[0u8; 12], "127.0.0.1:53").unwrap();
    drop(upstream);
    std::thread::sleep(Duration::from_millis(50));
    let t = Instant::now();
    assert_eq!(
        ask(&h.ns, g1, "example.org", RecordType::A).0,
        ResponseCode::ServFail
    );
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(ask(&h.ns, g1, "web", RecordType::A).1, ["10.88.0.2"]);

    // A network gone: its listener goes.
    for ep in nd.endpoints(&n2.id).unwrap() {
        nd.remove_endpoint(&n2.id, &ep.container_id).unwrap();
    }
    std::fs::remove_dir_all(nd.network_dir(&n2.id)).unwrap();
    wait_until("the back listener to close", || {
        h.ns.run(|| UdpSocket::bind("10.89.0.1:53").is_ok())
            .unwrap()
    });

    // No endpoint left: the server exits, and its sockets are free again.
    nd.remove_endpoint(&n1.id, &"a".repeat(64)).unwrap();
    let end = Instant::now() + Duration::from_secs(3);
    let status = loop {
        if let Some(st) = dns.0.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < end, "berth-dns did not exit");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success());
    assert_eq!(berth_network::dns::server_pid(&nd).unwrap(), None);
    assert!(h
        .ns
        .run(|| UdpSocket::bind("10.88.0.1:53").is_ok())
        .unwrap());
    let _: IpAddr = "10.88.0.1".parse().unwrap();
}

#[test]
fn dns_with_nothing_to_serve_exits_at_once() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let h = TestNs::new("dns0");
    let root = tempfile::tempdir().unwrap();
    let resolv = root.path().join("resolv.conf");
    std::fs::write(&resolv, "").unwrap();
    let (child, line, _) = start_dns(&h, root.path(), &resolv);
    let mut dns = Dns(child);
    assert_eq!(line, "ok\n");
    let st = dns.0.wait().unwrap();
    assert!(st.success());
}

/// Polls until `f` holds; returns how long it took (the records' reload latency).
fn time_until(what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_micros(500));
    }
    t.elapsed()
}

#[test]
fn dns_serves_service_records_and_follows_them_at_once() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let h = TestNs::new("dnssvc");
    let mut nl = Netlink::open_in(&h.ns).unwrap();
    netlink::ensure_bridge(
        &mut nl,
        &BridgeSpec {
            name: "br-svc".into(),
            mtu: None,
            addresses: vec!["10.87.0.1/24".parse().unwrap()],
        },
    )
    .unwrap();
    let root = tempfile::tempdir().unwrap();
    let nd = NetworksDir::new(root.path());
    let n = network('3', "shop", "br-svc", "10.87.0", None);
    nd.write_network(&n).unwrap();
    // dnsrr replicas carry the service's name as an alias.
    for (id, name, ip) in [
        ('a', "shop-pay-1", "10.87.0.2"),
        ('b', "shop-pay-2", "10.87.0.3"),
        ('c', "shop-pay-3", "10.87.0.4"),
    ] {
        nd.write_endpoint(&n.id, &endpoint(id, name, &["pay"], &[ip]))
            .unwrap();
    }
    let resolv = root.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.1\n").unwrap();
    let upstream = fake_upstream(&h.ns);
    let (child, line, _) = start_dns(&h, root.path(), &resolv);
    let _dns = Dns(child);
    assert_eq!(line, "ok\n");
    let g = "10.87.0.1:53";
    let a = |name: &str| {
        let mut v = ask(&h.ns, g, name, RecordType::A).1;
        v.sort();
        v
    };
    assert_eq!(a("pay"), ["10.87.0.2", "10.87.0.3", "10.87.0.4"]);
    assert_eq!(ask_tcp(&h.ns, g, "pay").len(), 3);

    // A VIP service record: name and name.network.
    let stock = ServiceRecord {
        name: "stock".into(),
        addresses: vec!["10.87.0.200".parse().unwrap()],
    };
    nd.write_service(&n.id, &stock).unwrap();
    let took = time_until("stock to resolve", || a("stock") == ["10.87.0.200"]);
    eprintln!("service record written -> answered: {took:?}");
    assert_eq!(a("stock.shop"), ["10.87.0.200"]);
    // A dnsrr service record with several addresses, shrinking.
    let mut rr = ServiceRecord {
        name: "rr".into(),
        addresses: vec!["10.87.0.5".parse().unwrap(), "10.87.0.6".parse().unwrap()],
    };
    nd.write_service(&n.id, &rr).unwrap();
    time_until("rr to resolve", || a("rr") == ["10.87.0.5", "10.87.0.6"]);
    rr.addresses.pop();
    nd.write_service(&n.id, &rr).unwrap();
    let took = time_until("rr to shrink", || a("rr") == ["10.87.0.5"]);
    eprintln!("service record shrunk -> answered: {took:?}");

    // A replica leaving is out of the answer within milliseconds.
    nd.remove_endpoint(&n.id, &"c".repeat(64)).unwrap();
    let took = time_until("pay to lose a replica", || {
        a("pay") == ["10.87.0.2", "10.87.0.3"]
    });
    eprintln!("replica endpoint removed -> out of the answer: {took:?}");
    assert!(took < Duration::from_millis(500), "{took:?}");

    // Removed records: the names are no longer ours (forwarded upstream).
    nd.remove_service(&n.id, "stock").unwrap();
    nd.remove_service(&n.id, "stock").unwrap();
    time_until("stock to go upstream", || a("stock") == ["192.0.2.99"]);
    nd.remove_service(&n.id, "rr").unwrap();
    time_until("rr to go upstream", || a("rr") == ["192.0.2.99"]);
    assert_eq!(a("pay"), ["10.87.0.2", "10.87.0.3"]);
    upstream.send_to(&[0u8; 12], "127.0.0.1:53").unwrap();
}
