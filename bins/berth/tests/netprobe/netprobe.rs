//! A tiny static network probe for the networking tests (std only, built by the test
//! harness with plain rustc): servers that answer with the address the connection came
//! from, and clients with timeouts.
//!
//!   netprobe tcp-who PORT        answer each TCP connection "client=IP\n"
//!   netprobe udp-who PORT        answer each datagram "client=IP\n"
//!   netprobe tcp-ask HOST PORT   connect (2 s timeout), print the answer
//!   netprobe udp-ask HOST PORT   send a datagram, print the answer (2 s timeout)
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Duration;

fn addr(host: &str, port: &str) -> SocketAddr {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    let s = if h.contains(':') { format!("[{h}]:{port}") } else { format!("{h}:{port}") };
    s.to_socket_addrs().expect("address").next().expect("an address")
}

fn who(a: SocketAddr) -> String {
    format!("client={}\n", a.ip().to_canonical())
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let t = Duration::from_secs(2);
    match a.get(1).map(String::as_str) {
        Some("tcp-who") => {
            let l = TcpListener::bind(format!("[::]:{}", a[2])).expect("bind");
            for s in l.incoming().flatten() {
                let mut s = s;
                if let Ok(p) = s.peer_addr() {
                    let _ = s.write_all(who(p).as_bytes());
                }
            }
        }
        Some("udp-who") => {
            let s = UdpSocket::bind(format!("[::]:{}", a[2])).expect("bind");
            let mut b = [0u8; 512];
            loop {
                if let Ok((_, p)) = s.recv_from(&mut b) {
                    let _ = s.send_to(who(p).as_bytes(), p);
                }
            }
        }
        Some("tcp-ask") => {
            let mut s = match TcpStream::connect_timeout(&addr(&a[2], &a[3]), t) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("connect: {e}");
                    std::process::exit(1);
                }
            };
            let _ = s.set_read_timeout(Some(t));
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            print!("{out}");
            std::process::exit(if out.is_empty() { 1 } else { 0 });
        }
        Some("udp-ask") => {
            let to = addr(&a[2], &a[3]);
            let bind = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
            let s = UdpSocket::bind(bind).expect("bind");
            s.set_read_timeout(Some(t)).unwrap();
            let _ = s.send_to(b"x", to);
            let mut b = [0u8; 512];
            match s.recv_from(&mut b) {
                Ok((n, _)) => print!("{}", String::from_utf8_lossy(&b[..n])),
                Err(e) => {
                    eprintln!("no answer: {e}");
                    std::process::exit(1);
                }
            }
        }
        _ => {
            eprintln!("usage: netprobe tcp-who|udp-who PORT | tcp-ask|udp-ask HOST PORT");
            std::process::exit(2);
        }
    }
}
