//! Bridge networks, black-box through the CLI. Each test's engine runs in a network
//! namespace of its own (the harness's "host"), and a "client" namespace joined to it by a
//! veth pair stands in for another machine (198.51.100.1 host, .2 client; fd00:99::1/::2).
//! Run as root: `scripts/in-netns.sh cargo nextest run -p berth --test engine_network`.

mod common;
use common::engine::*;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const NET_IMAGE: &str = "netbox:latest";
const HOST_IP: &str = "198.51.100.1";
const CLIENT_IP: &str = "198.51.100.2";

/// The static probe (tests/netprobe/netprobe.rs), built once per test run with plain rustc.
fn netprobe() -> &'static str {
    static P: OnceLock<String> = OnceLock::new();
    P.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
        let bin = dir.join("netprobe");
        let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/netprobe/netprobe.rs");
        // Several test processes build it at once: one builds, under a lock.
        let lock = std::fs::File::create(dir.join("netprobe.lock")).unwrap();
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).unwrap();
        let fresh = bin
            .metadata()
            .and_then(|b| Ok(b.modified()? >= std::fs::metadata(src)?.modified()?));
        if !fresh.unwrap_or(false) {
            let tmp = dir.join(format!("netprobe.{}", std::process::id()));
            let st = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
                .args([
                    "--edition",
                    "2021",
                    "-O",
                    "-C",
                    "target-feature=+crt-static",
                ])
                .args(["--target", "x86_64-unknown-linux-musl", "-o"])
                .arg(&tmp)
                .arg(src)
                .status()
                .expect("rustc");
            assert!(st.success(), "building netprobe");
            std::fs::rename(&tmp, &bin).unwrap();
        }
        bin.display().to_string()
    })
}

/// An engine with busybox + netprobe loaded as NET_IMAGE.
fn engine() -> Engine {
    let e = Engine::new();
    let probe = std::fs::read(netprobe()).unwrap();
    let l1 = full_busybox_layer();
    let l2 = common::Layer::new()
        .dir("bin")
        .file("bin/netprobe", &probe, 0o755)
        .tar();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"], "ExposedPorts": {"7000/tcp": {}}},
        "rootfs": {"type": "layers", "diff_ids": [common::sha(&l1), common::sha(&l2)]},
    });
    let manifest = serde_json::json!([{
        "Config": "config.json", "RepoTags": [NET_IMAGE], "Layers": ["l1.tar.gz", "l2.tar.gz"],
    }]);
    let mut a = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        a.append_data(&mut h, name, data).unwrap();
    };
    add("config.json", &serde_json::to_vec(&config).unwrap());
    add("l1.tar.gz", &common::gzip(&l1));
    add("l2.tar.gz", &common::gzip(&l2));
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    let p = e.dir.path().join("netbox.tar");
    std::fs::write(&p, a.into_inner().unwrap()).unwrap();
    e.ok(&["load", "-i", p.to_str().unwrap()]);
    e
}

/// A second namespace linked to the engine's by a veth pair; deleted on drop (the veth
/// goes with it).
struct Client {
    ns: String,
}

impl Client {
    fn new(e: &Engine) -> Client {
        let ns = format!("{}-c", e.netns);
        let sh = |args: &[&str]| {
            let st = Command::new("ip").args(args).status().unwrap();
            assert!(st.success(), "ip {args:?}");
        };
        sh(&["netns", "add", &ns]);
        let c = Client { ns };
        sh(&[
            "-n", &e.netns, "link", "add", "vh", "type", "veth", "peer", "name", "vc", "netns",
            &c.ns,
        ]);
        sh(&[
            "-n",
            &e.netns,
            "addr",
            "add",
            &format!("{HOST_IP}/24"),
            "dev",
            "vh",
        ]);
        sh(&[
            "-n",
            &e.netns,
            "addr",
            "add",
            "fd00:99::1/64",
            "dev",
            "vh",
            "nodad",
        ]);
        sh(&["-n", &e.netns, "link", "set", "vh", "up"]);
        sh(&[
            "-n",
            &c.ns,
            "addr",
            "add",
            &format!("{CLIENT_IP}/24"),
            "dev",
            "vc",
        ]);
        sh(&[
            "-n",
            &c.ns,
            "addr",
            "add",
            "fd00:99::2/64",
            "dev",
            "vc",
            "nodad",
        ]);
        sh(&["-n", &c.ns, "link", "set", "vc", "up"]);
        sh(&["-n", &c.ns, "link", "set", "lo", "up"]);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.ns))
            .arg("--")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// netprobe tcp-ask/udp-ask from the client: the answer, or None.
    fn ask(&self, kind: &str, host: &str, port: u16) -> Option<String> {
        let o = self.run(&[netprobe(), kind, host, &port.to_string()]);
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

/// A process killed (and reaped) when the test ends, even when it fails.
struct Proc(std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// netprobe in the engine's namespace (the host itself).
fn host_ask(e: &Engine, kind: &str, host: &str, port: u16) -> Option<String> {
    let o = e
        .in_netns(netprobe())
        .args([kind, host, &port.to_string()])
        .output()
        .unwrap();
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

fn ip_of(e: &Engine, c: &str, net: &str) -> String {
    e.ok(&[
        "inspect",
        "--format",
        &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
        c,
    ])
    .trim()
    .to_string()
}

/// A container serving netprobe tcp-who on 7000 (and udp-who on 7001).
fn server(e: &Engine, name: &str, extra: &[&str]) -> String {
    let mut a = vec!["run", "-d", "--name", name];
    a.extend_from_slice(extra);
    a.extend([
        NET_IMAGE,
        "sh",
        "-c",
        "netprobe udp-who 7001 & exec netprobe tcp-who 7000",
    ]);
    e.ok(&a).trim().to_string()
}

fn wait_for_answer(mut f: impl FnMut() -> Option<String>, what: &str) -> String {
    let t = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "no answer: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn forwarding(e: &Engine) -> String {
    let o = e
        .in_netns("cat")
        .arg("/proc/sys/net/ipv4/ip_forward")
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn nft_ruleset(e: &Engine) -> String {
    let o = e
        .in_netns("nft")
        .args(["list", "table", "inet", "berth"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn links(e: &Engine) -> String {
    let o = e.in_netns("ip").args(["-br", "link"]).output().unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn published_port_keeps_the_clients_address() {
    let e = engine();
    let c = Client::new(&e);
    e.ok(&["network", "create", "front"]);
    server(
        &e,
        "web",
        &[
            "--network",
            "front",
            "-p",
            "8080:7000",
            "-p",
            "8081:7001/udp",
        ],
    );
    let got = wait_for_answer(|| c.ask("tcp-ask", HOST_IP, 8080), "tcp through 8080");
    assert_eq!(
        got,
        format!("client={CLIENT_IP}"),
        "the container saw the client itself"
    );
    assert_eq!(
        c.ask("udp-ask", HOST_IP, 8081).as_deref(),
        Some(format!("client={CLIENT_IP}").as_str()),
        "udp"
    );
    assert_eq!(
        forwarding(&e),
        "1",
        "forwarding is on in the engine's namespace"
    );
    // docker's views of it.
    assert_eq!(
        e.ok(&["port", "web"]),
        "7000/tcp -> 0.0.0.0:8080\n7001/udp -> 0.0.0.0:8081\n"
    );
    assert_eq!(e.ok(&["port", "web", "7000"]), "0.0.0.0:8080\n");
    let (_, err) = e.code(1, &["port", "web", "9999"]);
    assert!(
        err.contains("No public port '9999/tcp' published for web"),
        "{err}"
    );
    assert_eq!(
        e.ok(&["ps", "--format", "{{.Ports}} {{.Networks}}"]),
        "0.0.0.0:8080->7000/tcp, 0.0.0.0:8081->7001/udp front\n"
    );
    let v = e.inspect("web");
    let ns = &v["NetworkSettings"];
    assert_eq!(ns["Ports"]["7000/tcp"][0]["HostPort"], "8080");
    let ip = ns["Networks"]["front"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(ip.starts_with("172."), "{ns}");
    assert_eq!(ns["Networks"]["front"]["IPPrefixLen"], 16);
    assert!(ns["Networks"]["front"]["MacAddress"]
        .as_str()
        .unwrap()
        .starts_with("02:42:"));
    assert_eq!(v["HostConfig"]["NetworkMode"], "front");
    // The container's own address, from the host.
    assert_eq!(
        host_ask(&e, "tcp-ask", &ip, 7000).map(|s| s.starts_with("client=")),
        Some(true)
    );
    // Stopping takes the DNAT away; starting brings it back.
    e.ok(&["stop", "-t", "0", "web"]);
    assert!(!nft_ruleset(&e).contains("8080"), "{}", nft_ruleset(&e));
    assert_eq!(e.ok(&["port", "web"]), "");
    e.ok(&["start", "web"]);
    wait_for_answer(|| c.ask("tcp-ask", HOST_IP, 8080), "after restart");
}

#[test]
fn localhost_publishing_hairpin_and_random_ports() {
    let e = engine();
    let c = Client::new(&e);
    e.ok(&["network", "create", "front"]);
    server(
        &e,
        "local",
        &["--network", "front", "-p", "127.0.0.1:9000:7000"],
    );
    // -P: exposed ports not published with -p get a free host port (EXPOSE 7000 of the
    // image is published with -p here, so only --expose 7001/udp gets one).
    server(
        &e,
        "all",
        &[
            "--network",
            "front",
            "-p",
            "9001:7000",
            "-P",
            "--expose",
            "7001/udp",
        ],
    );
    // Published on 127.0.0.1: the host reaches it, a client does not.
    let got = wait_for_answer(|| host_ask(&e, "tcp-ask", "127.0.0.1", 9000), "localhost");
    assert!(got.starts_with("client="), "{got}");
    assert_eq!(c.ask("tcp-ask", HOST_IP, 9000), None, "127.0.0.1 only");
    // The host itself through its own address.
    let got = wait_for_answer(
        || host_ask(&e, "tcp-ask", HOST_IP, 9001),
        "host via its address",
    );
    assert!(got.starts_with("client="), "{got}");
    // Hairpin: the container reaches its own published port through the host's address.
    let o = e.run(&["exec", "all", "netprobe", "tcp-ask", HOST_IP, "9001"]);
    assert!(
        o.status.success(),
        "hairpin: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    // A neighbour on the same network through the published port.
    let o = e.run(&["exec", "local", "netprobe", "tcp-ask", HOST_IP, "9001"]);
    assert!(
        o.status.success(),
        "neighbour: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let ports = e.ok(&["port", "all"]);
    let random: Vec<&str> = ports
        .lines()
        .filter(|l| l.starts_with("7001/udp"))
        .collect();
    assert_eq!(random.len(), 1, "{ports}");
    assert_eq!(ports.lines().count(), 2, "{ports}");
    let port: u16 = random[0].rsplit(':').next().unwrap().parse().unwrap();
    assert!(port > 1024, "{ports}");
    wait_for_answer(|| c.ask("udp-ask", HOST_IP, port), "the -P port");
}

#[test]
fn ipv6_network_and_published_port() {
    let e = engine();
    let c = Client::new(&e);
    e.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:12::/64",
        "v6",
    ]);
    server(&e, "six", &["--network", "v6", "-p", "8080:7000"]);
    let v = e.inspect("six");
    let ip6 = v["NetworkSettings"]["Networks"]["v6"]["GlobalIPv6Address"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(ip6.starts_with("fd00:12::"), "{v}");
    assert!(v["NetworkSettings"]["Networks"]["v6"]["IPAddress"]
        .as_str()
        .unwrap()
        .starts_with("172."));
    let got = wait_for_answer(|| c.ask("tcp-ask", "fd00:99::1", 8080), "v6 published port");
    assert_eq!(got, "client=fd00:99::2");
    let got = wait_for_answer(|| c.ask("tcp-ask", HOST_IP, 8080), "v4 published port");
    assert_eq!(got, format!("client={CLIENT_IP}"));
    assert!(e.ok(&["port", "six"]).contains("[::]:8080"));
}

#[test]
fn names_resolve_on_user_networks_only() {
    let e = engine();
    e.ok(&["network", "create", "front"]);
    e.ok(&["network", "create", "other"]);
    server(&e, "web", &["--network", "front", "--network-alias", "www"]);
    server(&e, "plain", &[]);
    let ask = |net: &str, name: &str| {
        e.run(&[
            "run",
            "--rm",
            "--network",
            net,
            NET_IMAGE,
            "netprobe",
            "tcp-ask",
            name,
            "7000",
        ])
    };
    for name in ["web", "www", "web.front"] {
        let o = ask("front", name);
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // The short id resolves too.
    let id = e.ok(&["inspect", "--format", "{{.Id}}", "web"]);
    assert!(ask("front", &id.trim()[..12]).status.success());
    // Not from another network, not on the default one.
    assert!(!ask("other", "web").status.success());
    assert!(!ask("bridge", "plain").status.success());
    // resolv.conf: the network's gateway on user networks.
    let rc = e.ok(&[
        "run",
        "--rm",
        "--network",
        "front",
        NET_IMAGE,
        "cat",
        "/etc/resolv.conf",
    ]);
    let gw = e.ok(&[
        "network",
        "inspect",
        "--format",
        "{{(index .IPAM.Config 0).Gateway}}",
        "front",
    ]);
    assert!(rc.contains(&format!("nameserver {}", gw.trim())), "{rc}");
    // --dns, --dns-search, --dns-option, --add-host (host-gateway), --hostname.
    let out = e.ok(&[
        "run",
        "--rm",
        "--dns",
        "9.9.9.9",
        "--dns-search",
        "corp.example",
        "--dns-option",
        "ndots:3",
        "--add-host",
        "db:10.9.8.7",
        "--add-host",
        "gw:host-gateway",
        "-h",
        "box",
        NET_IMAGE,
        "sh",
        "-c",
        "cat /etc/resolv.conf /etc/hosts; hostname",
    ]);
    assert!(out.contains("nameserver 9.9.9.9"), "{out}");
    assert!(out.contains("search corp.example"), "{out}");
    assert!(out.contains("options ndots:3"), "{out}");
    assert!(out.contains("10.9.8.7\tdb"), "{out}");
    let bridge_gw = e.ok(&[
        "network",
        "inspect",
        "--format",
        "{{(index .IPAM.Config 0).Gateway}}",
        "bridge",
    ]);
    assert!(out.contains(&format!("{}\tgw", bridge_gw.trim())), "{out}");
    assert!(out.trim_end().ends_with("box"), "{out}");
}

/// resolv.conf names the first network's gateway only: a container on several networks
/// still resolves the names of all of them (compose's payment -> inventory was refused).
#[test]
fn a_container_on_two_networks_resolves_names_on_both() {
    let e = engine();
    e.ok(&["network", "create", "front"]);
    e.ok(&["network", "create", "--internal", "data"]);
    server(&e, "web", &["--network", "front"]);
    server(&e, "db", &["--network", "data", "--network-alias", "store"]);
    let ask = |nets: &[&str], name: &str| {
        let mut args = vec!["run", "--rm"];
        for n in nets {
            args.extend(["--network", n]);
        }
        args.extend([NET_IMAGE, "netprobe", "tcp-ask", name, "7000"]);
        e.run(&args).status.success()
    };
    // The servers are listening once each answers a container on its own network.
    wait_for_answer(|| ask(&["front"], "web").then_some(String::new()), "web");
    wait_for_answer(|| ask(&["data"], "db").then_some(String::new()), "db");
    for first in [["front", "data"], ["data", "front"]] {
        for name in ["web", "db", "store", "db.data", "web.front"] {
            assert!(ask(&first, name), "{name} from {first:?}");
        }
    }
    // One network: only its own names.
    assert!(ask(&["front"], "web"));
    assert!(!ask(&["front"], "db"));
    assert!(!ask(&["data"], "web"));
}

#[test]
fn networks_are_isolated_internal_has_no_egress() {
    let e = engine();
    let c = Client::new(&e);
    // A server in the client namespace stands in for the world beyond the host.
    let _world = Proc(
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", c.ns))
            .args(["--", netprobe(), "tcp-who", "6000"])
            .spawn()
            .unwrap(),
    );
    e.ok(&["network", "create", "a"]);
    e.ok(&["network", "create", "b"]);
    e.ok(&["network", "create", "--internal", "inner"]);
    server(&e, "sa", &["--network", "a"]);
    server(&e, "sb", &["--network", "b"]);
    server(&e, "si", &["--network", "inner"]);
    let ip_a = ip_of(&e, "sa", "a");
    let ip_i = ip_of(&e, "si", "inner");
    let from = |net: &str, host: &str, port: &str| {
        e.run(&[
            "run",
            "--rm",
            "--network",
            net,
            NET_IMAGE,
            "netprobe",
            "tcp-ask",
            host,
            port,
        ])
    };
    // Same network: yes; across networks: no.
    assert!(from("a", &ip_a, "7000").status.success());
    assert!(!from("b", &ip_a, "7000").status.success(), "b reached a");
    // Egress, masqueraded: the world sees the host's address.
    let o = from("a", CLIENT_IP, "6000");
    assert!(
        o.status.success(),
        "egress: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        format!("client={HOST_IP}")
    );
    // Internal: no egress, nobody from another network, and no published ports.
    assert!(
        !from("inner", CLIENT_IP, "6000").status.success(),
        "internal egress"
    );
    assert!(!from("a", &ip_i, "7000").status.success(), "into internal");
    assert!(
        from("inner", &ip_i, "7000").status.success(),
        "inside internal"
    );
    let (_, err) = e.code(
        125,
        &[
            "run",
            "--rm",
            "--network",
            "inner",
            "-p",
            "8000:7000",
            NET_IMAGE,
            "true",
        ],
    );
    assert!(err.contains("internal"), "{err}");
}

#[test]
fn no_forwarding_when_asked_and_warned() {
    let e = engine();
    let c = Client::new(&e);
    let _world = Proc(
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", c.ns))
            .args(["--", netprobe(), "tcp-who", "6000"])
            .spawn()
            .unwrap(),
    );
    let o = e
        .cmd(&[
            "run", "--rm", NET_IMAGE, "netprobe", "tcp-ask", CLIENT_IP, "6000",
        ])
        .env("BERTH_IP_FORWARD", "0")
        .output()
        .unwrap();
    assert!(!o.status.success(), "egress without forwarding");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("IPv4 forwarding is disabled"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(forwarding(&e), "0");
}

#[test]
fn container_network_mode_and_restart_keeps_reachability() {
    let e = engine();
    let c = Client::new(&e);
    server(&e, "web", &["-p", "8080:7000", "--restart", "always"]);
    let ip = ip_of(&e, "web", "bridge");
    // Another container in web's network namespace sees its address.
    let out = e.ok(&[
        "run",
        "--rm",
        "--network",
        "container:web",
        NET_IMAGE,
        "sh",
        "-c",
        "ip -4 -o addr show eth0",
    ]);
    assert!(out.contains(&ip), "{out}");
    e.ok(&["create", "--name", "stopped", NET_IMAGE, "true"]);
    let (_, err) = e.code(
        125,
        &[
            "run",
            "--rm",
            "--network",
            "container:stopped",
            NET_IMAGE,
            "true",
        ],
    );
    assert!(
        err.contains("cannot join network of a non running container"),
        "{err}"
    );
    // The restart policy brings it back, reachable as before (same address).
    wait_for_answer(|| c.ask("tcp-ask", HOST_IP, 8080), "before");
    let pid = e.inspect("web")["State"]["Pid"].as_i64().unwrap();
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    e.wait_for(10, "the restart", || {
        let v = e.inspect("web");
        (v["RestartCount"] == 1 && v["State"]["Running"] == true).then_some(())
    });
    wait_for_answer(|| c.ask("tcp-ask", HOST_IP, 8080), "after the restart");
    assert_eq!(ip_of(&e, "web", "bridge"), ip);
}

/// Every berth process killed with SIGKILL (monitors, keepers, berth-dns, containers):
/// the next commands find what is stale (leases, DNAT elements, DNS records) and take it
/// back, and removal leaves no veth, rule or lease.
#[test]
fn kill9_of_everything_leaves_nothing_stale() {
    let e = engine();
    let c = Client::new(&e);
    e.ok(&["network", "create", "front"]);
    for i in 0..3 {
        server(
            &e,
            &format!("s{i}"),
            &["--network", "front", "-p", &format!("{}:7000", 8000 + i)],
        );
    }
    wait_for_answer(|| c.ask("tcp-ask", HOST_IP, 8000), "s0");
    let mut pids = Vec::new();
    for i in 0..3 {
        let st: serde_json::Value = serde_json::from_slice(
            &std::fs::read(
                e.root()
                    .join("engine/containers")
                    .join(
                        e.ok(&["inspect", "--format", "{{.Id}}", &format!("s{i}")])
                            .trim(),
                    )
                    .join("state.json"),
            )
            .unwrap(),
        )
        .unwrap();
        for k in ["keeperPid", "monitorPid", "pid"] {
            pids.push(st[k].as_i64().unwrap());
        }
    }
    let dns = std::fs::read_to_string(e.root().join("engine/networks/dns.pid")).unwrap();
    pids.push(dns.trim().parse().unwrap());
    for p in &pids {
        let _ = Command::new("kill").args(["-9", &p.to_string()]).status();
    }
    std::thread::sleep(Duration::from_millis(300));
    // The same port and a new container: the stale DNAT elements and leases are taken
    // back, and a new DNS server answers.
    server(&e, "new", &["--network", "front", "-p", "8000:7000"]);
    let got = wait_for_answer(|| c.ask("tcp-ask", HOST_IP, 8000), "the new container");
    assert_eq!(got, format!("client={CLIENT_IP}"));
    let o = e.run(&[
        "run",
        "--rm",
        "--network",
        "front",
        NET_IMAGE,
        "netprobe",
        "tcp-ask",
        "new",
        "7000",
    ]);
    assert!(
        o.status.success(),
        "dns after kill: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    for n in ["s0", "s1", "s2", "new"] {
        e.ok(&["rm", "-f", n]);
    }
    e.ok(&["network", "rm", "front"]);
    let l = links(&e);
    assert!(!l.contains("vb"), "veths left: {l}");
    assert!(!l.contains("br-"), "bridge left: {l}");
    let rules = nft_ruleset(&e);
    assert!(!rules.contains("comment"), "port elements left: {rules}");
    assert!(!rules.contains("br-"), "network chains left: {rules}");
    // The default network's leases: none left either.
    let ipam = std::fs::read_dir(e.root().join("engine/networks"))
        .unwrap()
        .flatten()
        .filter_map(|d| std::fs::read_to_string(d.path().join("ipam.json")).ok())
        .collect::<String>();
    assert!(!ipam.contains("\"owner\""), "leases left: {ipam}");
}

#[test]
fn hundred_concurrent_runs_get_distinct_addresses() {
    let e = engine();
    e.ok(&["network", "create", "front"]);
    let n = std::env::var("BERTH_CONCURRENT_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let ids: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..n)
            .map(|i| {
                let e = &e;
                s.spawn(move || {
                    e.ok(&[
                        "run",
                        "-d",
                        "--name",
                        &format!("c{i}"),
                        "--network",
                        "front",
                        NET_IMAGE,
                        "sleep",
                        "1000",
                    ])
                    .trim()
                    .to_string()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut ips: Vec<String> = ids.iter().map(|id| ip_of(&e, id, "front")).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), n, "addresses: {ips:?}");
    std::thread::scope(|s| {
        for id in &ids {
            let e = &e;
            s.spawn(move || e.ok(&["rm", "-f", id]));
        }
    });
    e.ok(&["network", "rm", "front"]);
    assert!(!links(&e).contains("vb"), "{}", links(&e));
}

#[test]
fn bad_network_input_is_refused_and_changes_nothing() {
    let e = engine();
    e.ok(&["network", "create", "--subnet", "10.30.0.0/16", "taken"]);
    server(
        &e,
        "holder",
        &["--network", "taken", "--ip", "10.30.0.9", "-p", "8080:7000"],
    );
    // A program of the host listening on 8090.
    let _squatter = Proc(
        e.in_netns(netprobe())
            .args(["tcp-who", "8090"])
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(200));
    let nets_before = e.ok(&["network", "ls", "-q"]);
    let ps_before = e.ok(&["ps", "-aq"]);
    for (args, needle) in [
        (
            vec!["network", "create", "--subnet", "10.30.5.0/24", "x"],
            "Pool overlaps",
        ),
        (
            vec!["network", "create", "--subnet", "10.300.0.0/16", "x"],
            "invalid",
        ),
        (
            vec![
                "network",
                "create",
                "--subnet",
                "10.40.0.0/16",
                "--gateway",
                "10.41.0.1",
                "x",
            ],
            "10.41.0.1",
        ),
        (vec!["network", "create", "taken"], "already exists"),
        (vec!["network", "create", "bridge"], "already exists"),
        (vec!["network", "create", "-d", "overlay", "x"], "overlay"),
        (
            vec!["network", "create", "-o", "com.example.x=1", "x"],
            "com.example.x",
        ),
    ] {
        let (_, err) = {
            let o = e.run(&args);
            assert_eq!(o.status.code(), Some(1), "{args:?}");
            (o.stdout, String::from_utf8_lossy(&o.stderr).into_owned())
        };
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    for (args, needle) in [
        (
            vec!["--network", "taken", "--ip", "10.99.0.5"],
            "does not belong",
        ),
        (
            vec!["--network", "taken", "--ip", "10.30.0.9"],
            "already in use",
        ),
        (vec!["--ip", "172.17.0.50"], "user defined networks only"),
        (
            vec!["--network", "taken", "-p", "8080:7000"],
            "port is already allocated",
        ),
        (
            vec!["--network", "taken", "-p", "8090:7000"],
            "port is already allocated",
        ),
        (
            vec!["--network", "taken", "-p", "8000-8002:7000-7001"],
            "Invalid ranges",
        ),
        (vec!["--network", "nope"], "network nope not found"),
        (vec!["--network", "container:nope"], "No such container"),
        (vec!["--network", "host", "-p", "80:80"], "port publishing"),
        (vec!["--network", "none", "-p", "80:80"], "port publishing"),
        (vec!["-p", "99999:80"], "invalid hostPort: 99999"),
    ] {
        let mut a = vec!["run", "-d"];
        a.extend(args.iter().copied());
        a.extend([NET_IMAGE, "sleep", "10"]);
        let o = e.run(&a);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {err}");
        assert!(
            err.to_lowercase().contains(&needle.to_lowercase()),
            "{args:?}: {err}"
        );
        // Nothing of it is left.
        let ps = e.ok(&["ps", "-aq"]);
        for line in ps.lines() {
            assert!(ps_before.contains(line), "{args:?} left a container: {ps}");
        }
    }
    assert_eq!(e.ok(&["network", "ls", "-q"]), nets_before);
    let (_, err) = e.code(1, &["network", "rm", "taken"]);
    assert!(err.contains("has active endpoints"), "{err}");
}

#[test]
fn network_commands_like_docker() {
    let e = engine();
    let id = e
        .ok(&[
            "network",
            "create",
            "--label",
            "tier=web",
            "-o",
            "com.docker.network.bridge.name=brfront",
            "front",
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64);
    let ls = e.ok(&["network", "ls"]);
    let lines: Vec<&str> = ls.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    );
    let names: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(names, ["bridge", "front", "host", "none"]);
    assert_eq!(
        e.ok(&["network", "ls", "-q", "--filter", "label=tier=web"])
            .trim(),
        &id[..12]
    );
    assert_eq!(
        e.ok(&[
            "network",
            "ls",
            "--filter",
            "type=custom",
            "--format",
            "{{.Name}}"
        ]),
        "front\n"
    );
    let v: serde_json::Value =
        serde_json::from_str(&e.ok(&["network", "inspect", "front"])).unwrap();
    assert_eq!(v[0]["Name"], "front");
    assert_eq!(v[0]["Driver"], "bridge");
    assert_eq!(v[0]["Options"]["com.docker.network.bridge.name"], "brfront");
    assert!(v[0]["IPAM"]["Config"][0]["Subnet"]
        .as_str()
        .unwrap()
        .contains('/'));
    // connect/disconnect a running container: a second interface, and its name on it.
    server(&e, "web", &[]);
    e.ok(&["network", "connect", "--alias", "api", "front", "web"]);
    let out = e.ok(&["exec", "web", "ls", "/sys/class/net"]);
    assert_eq!(out, "eth0\neth1\nlo\n");
    let o = e.run(&[
        "run",
        "--rm",
        "--network",
        "front",
        NET_IMAGE,
        "netprobe",
        "tcp-ask",
        "api",
        "7000",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value =
        serde_json::from_str(&e.ok(&["network", "inspect", "front"])).unwrap();
    assert_eq!(v[0]["Containers"].as_object().unwrap().len(), 1);
    let (_, err) = e.code(1, &["network", "connect", "front", "web"]);
    assert!(err.contains("already exists"), "{err}");
    e.ok(&["network", "disconnect", "front", "web"]);
    assert_eq!(e.ok(&["exec", "web", "ls", "/sys/class/net"]), "eth0\nlo\n");
    assert!(!links(&e).contains("brfront") || e.ok(&["network", "ls", "-q"]).contains(&id[..12]));
    // rm and prune.
    e.ok(&["network", "create", "unused"]);
    assert_eq!(
        e.ok(&["network", "prune", "-f"]),
        "Deleted Networks:\nfront\nunused\n"
    );
    let (_, err) = e.code(1, &["network", "rm", "bridge"]);
    assert!(err.contains("pre-defined"), "{err}");
    let (_, err) = e.code(1, &["network", "rm", "nope"]);
    assert!(err.contains("network nope not found"), "{err}");
    e.ok(&["rm", "-f", "web"]);
}

#[test]
fn system_prune_leaves_no_bridge_rule_or_lease() {
    let e = engine();
    e.ok(&["network", "create", "front"]);
    server(&e, "web", &["--network", "front", "-p", "8080:7000"]);
    e.ok(&[
        "run",
        "--name",
        "done",
        "--network",
        "front",
        NET_IMAGE,
        "true",
    ]);
    e.ok(&["stop", "-t", "0", "web"]);
    let out = e.ok(&["system", "prune", "-f"]);
    assert!(out.contains("Deleted Networks:\nfront\n"), "{out}");
    assert_eq!(e.ok(&["ps", "-aq"]), "");
    let l = links(&e);
    assert!(!l.contains("vb") && !l.contains("br-"), "{l}");
    let rules = nft_ruleset(&e);
    assert!(
        !rules.contains("comment") && !rules.contains("br-"),
        "{rules}"
    );
    assert!(!e
        .root()
        .join("engine/networks")
        .read_dir()
        .unwrap()
        .flatten()
        .any(|d| {
            std::fs::read_to_string(d.path().join("ipam.json"))
                .is_ok_and(|s| s.contains("\"owner\""))
        }));
}

/// `run -d` with a published port on a DNS network killed with SIGKILL at random points
/// of its setup (the CLI, then the monitor and keeper it started, if any), many times:
/// afterwards `rm -f` and `network rm` leave no veth, DNAT element, lease or DNS record.
#[test]
fn kill9_at_random_points_of_setup_leaves_nothing() {
    let e = engine();
    e.ok(&["network", "create", "front"]);
    let n: u64 = std::env::var("BERTH_FAULT_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("seed {seed}");
    let mut rnd = |m: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % m
    };
    for i in 0..n {
        let name = format!("k{i}");
        let port = (8000 + i).to_string();
        let mut c = e
            .cmd(&[
                "run",
                "-d",
                "--name",
                &name,
                "--network",
                "front",
                "-p",
                &format!("{port}:7000"),
                NET_IMAGE,
                "sleep",
                "1000",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(rnd(60_000)));
        let _ = c.kill();
        let _ = c.wait();
        // The monitor and keeper it may have started die too (a crash of everything).
        if rnd(2) == 0 {
            let o = e.run(&["inspect", "--format", "{{.Id}}", &name]);
            let id = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if o.status.success() {
                let p = e
                    .root()
                    .join("engine/containers")
                    .join(&id)
                    .join("state.json");
                if let Ok(b) = std::fs::read(p) {
                    let st: serde_json::Value = serde_json::from_slice(&b).unwrap_or_default();
                    for k in ["keeperPid", "monitorPid", "pid"] {
                        if let Some(pid) = st[k].as_i64().filter(|p| *p > 0) {
                            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                        }
                    }
                }
            }
        }
    }
    for i in 0..n {
        let o = e.run(&["rm", "-f", &format!("k{i}")]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            o.status.success() || err.contains("No such container"),
            "{err}"
        );
    }
    assert_eq!(e.ok(&["ps", "-aq"]), "");
    e.ok(&["network", "rm", "front"]);
    // A port any of them had is free again, for a new container.
    server(&e, "after", &["-p", "8000:7000"]);
    e.ok(&["rm", "-f", "after"]);
    let l = links(&e);
    assert!(!l.contains("vb"), "veths left: {l}");
    let rules = nft_ruleset(&e);
    assert!(!rules.contains("comment"), "port elements left: {rules}");
    let dir = e.root().join("engine/networks");
    for d in std::fs::read_dir(&dir).unwrap().flatten() {
        let ipam = std::fs::read_to_string(d.path().join("ipam.json")).unwrap_or_default();
        assert!(
            !ipam.contains("\"owner\""),
            "leases left in {}: {ipam}",
            d.path().display()
        );
        let eps = std::fs::read_dir(d.path().join("endpoints"))
            .map(|r| r.count())
            .unwrap_or(0);
        assert_eq!(eps, 0, "DNS records left in {}", d.path().display());
    }
}

/// Whether TCP `port` on every address can be bound in the engine's namespace now.
fn port_free(e: &Engine, port: u16) -> bool {
    let st = e
        .in_netns("python3")
        .arg("-c")
        .arg(format!(
            "import socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, \
             socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', {port}))"
        ))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    st.success()
}

/// berth-net binds the published ports and hands the sockets to the monitor, which holds
/// them while the container runs: a range of 250 ports (more sockets than ride on one
/// SCM_RIGHTS message) is held to its last port, and all of it is free again after.
#[test]
fn port_range_wider_than_one_fd_message_is_held_then_freed() {
    let e = engine();
    e.ok(&["network", "create", "wide"]);
    for p in [21000, 21249] {
        assert!(port_free(&e, p), "port {p} free before");
    }
    e.ok(&[
        "run",
        "-d",
        "--name",
        "wide",
        "--network",
        "wide",
        "-p",
        "21000-21249:7000-7249",
        NET_IMAGE,
        "sleep",
        "60",
    ]);
    let ports = e.ok(&["port", "wide"]);
    assert_eq!(ports.lines().count(), 250, "{ports}");
    for p in [21000, 21199, 21200, 21249] {
        assert!(!port_free(&e, p), "port {p} held while it runs");
    }
    e.ok(&["rm", "-f", "wide"]);
    for p in [21000, 21200, 21249] {
        assert!(port_free(&e, p), "port {p} free after");
    }
}

/// Without berth-net the start of a bridge container fails naming it, and leaves no
/// lease, record or process behind; `--network none` does not need it.
#[test]
fn missing_berth_net_fails_the_start_clearly() {
    let e = engine();
    e.ok(&["network", "create", "nonet"]);
    let o = e
        .cmd(&[
            "run",
            "--name",
            "nobn",
            "--network",
            "nonet",
            NET_IMAGE,
            "true",
        ])
        .env("BERTH_NET", "/nonexistent/berth-net")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("berth-net"), "{err}");
    assert_eq!(e.ok(&["ps", "-aq"]).trim(), "", "nothing left");
    let ipam = std::fs::read_dir(e.root().join("engine/networks"))
        .unwrap()
        .flatten()
        .filter_map(|d| std::fs::read_to_string(d.path().join("ipam.json")).ok())
        .collect::<String>();
    assert!(!ipam.contains("\"owner\""), "leases left: {ipam}");
    let o = e
        .cmd(&["run", "--rm", "--network", "none", NET_IMAGE, "true"])
        .env("BERTH_NET", "/nonexistent/berth-net")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Two storage roots in one network namespace: each picks its default subnet at `network
/// create`, before either bridge exists, so both may pick the same one. The second
/// root's first start then says so (instead of nftables' "File exists") and leaves
/// nothing; with another --subnet it works beside the first.
#[test]
fn two_roots_in_one_namespace_with_one_subnet_get_a_clear_error() {
    let a = engine();
    let b = Engine::empty_sharing_netns(&a);
    let p = a.dir.path().join("netbox.tar");
    b.ok(&["load", "-i", p.to_str().unwrap()]);
    a.ok(&["network", "create", "--subnet", "10.89.7.0/24", "one"]);
    b.ok(&["network", "create", "--subnet", "10.89.7.0/24", "two"]);
    a.ok(&["run", "--rm", "--network", "one", NET_IMAGE, "true"]);
    let o = b.run(&[
        "run",
        "--name",
        "second",
        "--network",
        "two",
        NET_IMAGE,
        "true",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("10.89.7.0/24") && err.contains("another storage root"),
        "{err}"
    );
    assert!(!err.contains("File exists"), "{err}");
    let l = links(&b);
    assert_eq!(
        l.matches("br-").count(),
        1,
        "only the first root's bridge: {l}"
    );
    b.ok(&["network", "create", "--subnet", "10.89.8.0/24", "three"]);
    b.ok(&["run", "--rm", "--network", "three", NET_IMAGE, "true"]);
    let _ = b.run(&["rm", "-f", "second"]);
    for (e, n) in [(&b, "two"), (&b, "three"), (&a, "one")] {
        e.ok(&["network", "rm", n]);
    }
    let l = links(&a);
    assert!(!l.contains("br-"), "bridges left: {l}");
}
