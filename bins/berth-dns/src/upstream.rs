//! Forwarding to the host's resolvers: the `nameserver` lines of the host's resolv.conf,
//! read once at start. The server runs in the host's namespace, so loopback resolvers
//! (systemd-resolved's 127.0.0.53) work as they do for the host.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{timeout_at, Instant};

/// The resolvers of a resolv.conf text (glibc reads at most three); scoped IPv6
/// addresses (fe80::1%eth0) are skipped, and so is any of `ours` (our own listening
/// addresses, which would loop).
pub fn parse_resolv_conf(text: &str, ours: &[IpAddr]) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver")).then(|| w.next()).flatten()
        })
        .filter_map(|a| a.parse::<IpAddr>().ok())
        .filter(|a| !ours.contains(a))
        .take(3)
        .map(|a| SocketAddr::new(a, 53))
        .collect()
}

fn same_id(a: &[u8], b: &[u8]) -> bool {
    a.len() >= 2 && b.len() >= 2 && a[..2] == b[..2]
}

/// Asks each upstream in turn over UDP, sharing `total` between them; the first answer
/// with the query's id wins. None when all failed or timed out.
pub async fn udp(upstreams: &[SocketAddr], query: &[u8], total: Duration) -> Option<Vec<u8>> {
    let n = upstreams.len().max(1) as u32;
    for up in upstreams {
        let deadline = Instant::now() + total / n;
        let bind: SocketAddr = if up.is_ipv4() {
            "0.0.0.0:0".parse().unwrap()
        } else {
            "[::]:0".parse().unwrap()
        };
        let Ok(s) = UdpSocket::bind(bind).await else {
            continue;
        };
        if s.connect(up).await.is_err() || s.send(query).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 65535];
        loop {
            match timeout_at(deadline, s.recv(&mut buf)).await {
                Ok(Ok(len)) if same_id(query, &buf[..len]) => return Some(buf[..len].to_vec()),
                Ok(Ok(_)) => continue,
                _ => break,
            }
        }
    }
    None
}

/// The same over TCP (for clients that asked over TCP, e.g. after a truncated answer).
pub async fn tcp(upstreams: &[SocketAddr], query: &[u8], total: Duration) -> Option<Vec<u8>> {
    let n = upstreams.len().max(1) as u32;
    for up in upstreams {
        let deadline = Instant::now() + total / n;
        let attempt = async {
            let mut s = TcpStream::connect(up).await.ok()?;
            let len = u16::try_from(query.len()).ok()?;
            let mut out = len.to_be_bytes().to_vec();
            out.extend_from_slice(query);
            s.write_all(&out).await.ok()?;
            let mut l = [0u8; 2];
            s.read_exact(&mut l).await.ok()?;
            let mut buf = vec![0u8; usize::from(u16::from_be_bytes(l))];
            s.read_exact(&mut buf).await.ok()?;
            same_id(query, &buf).then_some(buf)
        };
        if let Ok(Some(b)) = timeout_at(deadline, attempt).await {
            return Some(b);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_nameservers() {
        let text = "# comment\nsearch example.com\nnameserver 127.0.0.53\nnameserver  fd00::1 \n\
                    nameserver fe80::1%eth0\nnameserver 172.18.0.1\nnameserver bogus\n\
                    options ndots:2\nnameserver 10.0.0.1\nnameserver 10.0.0.2\n";
        let ours: Vec<IpAddr> = vec!["172.18.0.1".parse().unwrap()];
        let got = parse_resolv_conf(text, &ours);
        let want: Vec<SocketAddr> = ["127.0.0.53:53", "[fd00::1]:53", "10.0.0.1:53"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(got, want);
        assert!(parse_resolv_conf("", &[]).is_empty());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn forwarding_returns_the_matching_answer_or_none() {
        // A fake upstream on loopback: answers a wrong id first, then the right one.
        let up = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = up.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut b = [0u8; 512];
            let (n, peer) = up.recv_from(&mut b).await.unwrap();
            let mut wrong = b[..n].to_vec();
            wrong[0] ^= 0xff;
            up.send_to(&wrong, peer).await.unwrap();
            let mut right = b[..n].to_vec();
            right.push(0xaa);
            up.send_to(&right, peer).await.unwrap();
        });
        let q = [0x12, 0x34, 1, 2, 3];
        let got = udp(&[addr], &q, Duration::from_secs(2)).await.unwrap();
        assert_eq!(got, [0x12, 0x34, 1, 2, 3, 0xaa]);
        server.await.unwrap();
        // Nobody answers: None within the time given.
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let t = Instant::now();
        assert!(udp(
            &[silent.local_addr().unwrap()],
            &q,
            Duration::from_millis(200)
        )
        .await
        .is_none());
        assert!(t.elapsed() < Duration::from_secs(1));
        assert!(udp(&[], &q, Duration::from_millis(10)).await.is_none());
    }
}
