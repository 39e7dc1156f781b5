//! Throwaway network namespaces for the root tests. Each test makes its own (named
//! `berth-nt-...`), and Drop deletes them even when the test fails; everything made
//! inside (bridges, veths, routes, nft tables, sysctls) goes with them. Nothing here ever
//! touches the namespace the tests run in.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use berth_network::netlink::Netlink;
use berth_network::NetNs;

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Skips (returns early from) a test that needs root when not root.
#[macro_export]
macro_rules! need_root {
    () => {
        if !common::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

pub struct TestNs {
    pub name: String,
    pub ns: NetNs,
}

impl TestNs {
    pub fn new(tag: &str) -> TestNs {
        let name = format!(
            "berth-nt-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
                % 100_000
        );
        let st = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(st.success(), "ip netns add {name}");
        let ns = NetNs::named(&name).unwrap();
        let t = TestNs { name, ns };
        t.nl().loopback_up().unwrap();
        t
    }

    pub fn nl(&self) -> Netlink {
        Netlink::open_in(&self.ns).unwrap()
    }

    /// Runs a command inside (nsenter --net only, so mounts stay as they are).
    pub fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.name)).arg(prog);
        c
    }

    pub fn sh(&self, script: &str) -> String {
        let out = self.cmd("sh").args(["-c", script]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }

    pub fn listen(&self, addr: SocketAddr) -> TcpListener {
        self.ns.run(|| TcpListener::bind(addr)).unwrap().unwrap()
    }

    /// Connects from inside; Ok(what the server said) or Err on failure/timeout.
    pub fn connect(&self, addr: SocketAddr, timeout: Duration) -> Result<String, String> {
        self.ns
            .run(|| {
                let mut s =
                    TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
                s.set_read_timeout(Some(timeout)).unwrap();
                let mut buf = String::new();
                s.read_to_string(&mut buf).map_err(|e| e.to_string())?;
                Ok(buf)
            })
            .unwrap()
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A TCP server that answers each connection with the peer's address, until stopped.
pub struct Server {
    stop: Arc<AtomicBool>,
    h: std::thread::JoinHandle<Vec<IpAddr>>,
}

impl Server {
    pub fn start(l: TcpListener) -> Server {
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let h = std::thread::spawn(move || {
            l.set_nonblocking(true).unwrap();
            let mut seen = Vec::new();
            while !s2.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut s, peer)) => {
                        let _ = s.write_all(peer.ip().to_string().as_bytes());
                        seen.push(peer.ip());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
            seen
        });
        Server { stop, h }
    }

    /// Stops it; returns the peers it saw.
    pub fn stop(self) -> Vec<IpAddr> {
        self.stop.store(true, Ordering::Relaxed);
        self.h.join().unwrap()
    }
}

pub fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The host namespace's view, for "nothing changed" checks.
pub fn host_snapshot() -> (String, String) {
    let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    let fwd = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    (
        String::from_utf8_lossy(&links.stdout)
            .lines()
            .map(|l| {
                l.split('@')
                    .next()
                    .unwrap_or(l)
                    .split(':')
                    .nth(1)
                    .unwrap_or("")
                    .trim()
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join(","),
        fwd.trim().to_string(),
    )
}
