//! Probes made from the engine's side, as the kubelet makes `kube play`'s httpGet and
//! tcpSocket probes: a connection to the container's address and port, not a command in
//! the container (its image may have no client). The connection is made from inside the
//! container's network namespace (entered by `berth-net probe`, a process of its own), so
//! it reaches the container on any network mode, whether or not this namespace has a
//! route to it.

use crate::options::NetProbe;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How much of a response is read (status line and headers; the kubelet reads 10 KiB).
const MAX_HEAD: usize = 10 * 1024;

/// Where a probe connects: `addr` (the container's address, unless the probe names a
/// host) from inside the network namespace at `netns` (None: this one).
#[derive(Debug, Clone)]
pub struct Target {
    pub netns: Option<PathBuf>,
    pub addr: IpAddr,
}

/// Runs `probe`, entering `target.netns` first: in a process of its own (`berth-net
/// probe`, which the monitor starts), so that the monitor links none of this code (its
/// peak RSS is bounded) and never changes its own namespace.
pub fn run(probe: &NetProbe, target: &Target, timeout: Duration) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    let (host, port) = match probe {
        NetProbe::HttpGet { host, port, .. } | NetProbe::TcpSocket { host, port } => {
            (host.as_deref(), *port)
        }
    };
    // Names are resolved before entering the container's namespace, with this one's
    // resolver (as the kubelet resolves from the node).
    let addr = resolve(host, target.addr, port)?;
    if let Some(ns) = &target.netns {
        let f = std::fs::File::open(ns).map_err(|e| {
            format!(
                "open the container's network namespace {}: {e}",
                ns.display()
            )
        })?;
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&f),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .map_err(|e| format!("enter the container's network namespace: {e}"))?;
    }
    let left = || deadline.saturating_duration_since(Instant::now());
    let timed_out = |e: std::io::Error| {
        if matches!(
            e.kind(),
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
        ) {
            // In milliseconds: a float here linked float formatting into the monitor.
            format!("timeout after {}ms", timeout.as_millis())
        } else {
            e.to_string()
        }
    };
    let mut s = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("dial tcp {addr}: {}", timed_out(e)))?;
    let NetProbe::HttpGet {
        host,
        path,
        headers,
        ..
    } = probe
    else {
        return Ok(format!("connected to {addr}"));
    };
    let req = request(host.as_deref(), addr, path, headers);
    s.set_write_timeout(Some(left().max(Duration::from_millis(1))))
        .and_then(|_| s.write_all(req.as_bytes()))
        .map_err(|e| format!("GET http://{addr}{path}: {}", timed_out(e)))?;
    let mut head = Vec::new();
    let mut b = [0u8; 2048];
    loop {
        if head.windows(2).any(|w| w == b"\r\n") || head.len() >= MAX_HEAD {
            break;
        }
        let _ = s.set_read_timeout(Some(left().max(Duration::from_millis(1))));
        match s.read(&mut b) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&b[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("GET http://{addr}{path}: {}", timed_out(e))),
        }
    }
    let line = String::from_utf8_lossy(head.split(|&c| c == b'\n').next().unwrap_or(&[]))
        .trim_end()
        .to_string();
    match status(&head) {
        Some(code) if (200..400).contains(&code) => Ok(format!("GET {path}: {line}")),
        Some(_) => Err(format!("GET {path}: {line}")),
        None => Err(format!("GET {path}: not an HTTP response: {line:?}")),
    }
}

/// `host` (a name or an address; None: the container's `own` address) and `port`.
fn resolve(host: Option<&str>, own: IpAddr, port: u16) -> Result<SocketAddr, String> {
    let Some(h) = host.filter(|h| !h.is_empty()) else {
        return Ok(SocketAddr::new(own, port));
    };
    // An address only: resolving a name would link musl's resolver into the monitor
    // (its peak RSS is bounded) and ask the host's DNS from the container's namespace.
    h.trim_matches(['[', ']'])
        .parse::<IpAddr>()
        .map(|a| SocketAddr::new(a, port))
        .map_err(|_| format!("host {h}: not an IP address"))
}

/// The kubelet's request: its User-Agent and Accept, `headers` replacing same-named ones.
fn request(
    host: Option<&str>,
    addr: SocketAddr,
    path: &str,
    headers: &[(String, String)],
) -> String {
    let host = match host.filter(|h| !h.is_empty()) {
        Some(h) if addr.port() == 80 => h.to_string(),
        Some(h) => format!("{h}:{}", addr.port()),
        None if addr.port() == 80 => addr.ip().to_string(),
        None => addr.to_string(),
    };
    let mut h: Vec<(String, String)> = vec![
        ("Host".into(), host),
        ("User-Agent".into(), "kube-probe/berth".into()),
        ("Accept".into(), "*/*".into()),
    ];
    for (k, _) in headers {
        h.retain(|(x, _)| !x.eq_ignore_ascii_case(k));
    }
    h.extend(headers.iter().cloned());
    h.push(("Connection".into(), "close".into()));
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let mut r = format!("GET {path} HTTP/1.1\r\n");
    for (k, v) in h {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    r
}

/// The status code of a response's status line (`HTTP/1.1 200 OK`).
fn status(head: &[u8]) -> Option<u16> {
    let line = head.split(|&c| c == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut w = line.split_whitespace();
    if !w.next()?.starts_with("HTTP/") {
        return None;
    }
    w.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, TcpListener};

    #[test]
    fn request_has_the_kubelets_headers_and_the_probes() {
        let a: SocketAddr = "10.0.0.2:8080".parse().unwrap();
        let r = request(None, a, "healthz", &[("X-A".into(), "b".into())]);
        assert!(
            r.starts_with("GET /healthz HTTP/1.1\r\nHost: 10.0.0.2:8080\r\n"),
            "{r}"
        );
        assert!(r.contains("\r\nX-A: b\r\n") && r.ends_with("Connection: close\r\n\r\n"));
        let r = request(Some("web"), "10.0.0.2:80".parse().unwrap(), "/", &[]);
        assert!(r.contains("\r\nHost: web\r\n"), "{r}");
        // A Host header of the probe's replaces the default.
        let r = request(None, a, "/", &[("host".into(), "x.example".into())]);
        assert!(
            !r.contains("Host: 10.0.0.2") && r.contains("\r\nhost: x.example\r\n"),
            "{r}"
        );
    }

    #[test]
    fn status_lines() {
        assert_eq!(status(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(status(b"HTTP/1.0 500 x\r\nA: b\r\n"), Some(500));
        assert_eq!(status(b"SSH-2.0-x\r\n"), None);
        assert_eq!(status(b""), None);
    }

    /// A server answering one request with `answer` (None: accepts and says nothing).
    fn server(answer: Option<&'static str>) -> u16 {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut b = [0u8; 1024];
            let n = s.read(&mut b).unwrap();
            assert!(b[..n].starts_with(b"GET /ok HTTP/1.1\r\n"));
            match answer {
                Some(a) => s.write_all(a.as_bytes()).unwrap(),
                None => std::thread::sleep(Duration::from_secs(2)),
            }
        });
        port
    }

    fn get(port: u16, timeout: Duration) -> Result<String, String> {
        let p = NetProbe::HttpGet {
            host: None,
            port,
            path: "/ok".into(),
            headers: vec![],
        };
        let t = Target {
            netns: None,
            addr: Ipv4Addr::LOCALHOST.into(),
        };
        run(&p, &t, timeout)
    }

    #[test]
    fn http_get_passes_on_2xx_3xx_and_fails_otherwise() {
        let s = Duration::from_secs(5);
        assert!(get(server(Some("HTTP/1.1 200 OK\r\n\r\n")), s).is_ok());
        assert!(get(
            server(Some("HTTP/1.1 302 Found\r\nLocation: /x\r\n\r\n")),
            s
        )
        .is_ok());
        let e = get(server(Some("HTTP/1.1 503 Unavailable\r\n\r\n")), s).unwrap_err();
        assert!(e.contains("503"), "{e}");
        let e = get(server(None), Duration::from_millis(300)).unwrap_err();
        assert!(e.contains("timeout"), "{e}");
    }

    #[test]
    fn tcp_socket_connects_or_fails() {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        let t = Target {
            netns: None,
            addr: Ipv4Addr::LOCALHOST.into(),
        };
        let p = |port| NetProbe::TcpSocket { host: None, port };
        assert!(run(&p(port), &t, Duration::from_secs(2)).is_ok());
        drop(l);
        let e = run(&p(port), &t, Duration::from_secs(2)).unwrap_err();
        assert!(e.contains("dial tcp 127.0.0.1"), "{e}");
    }
}
