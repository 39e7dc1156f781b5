//! `berth port`: a running container's published ports, as docker lists them
//! (`80/tcp -> 0.0.0.0:8080`), or the host addresses of one of them.

use super::resolve;
use anyhow::{bail, Result};
use berth_engine::layout::Layout;

#[derive(clap::Args)]
pub struct PortArgs {
    container: String,
    /// PRIVATE_PORT[/PROTO]
    private_port: Option<String>,
}

/// `80`, `80/tcp`, `53/udp` -> "80/tcp" ...
fn normalize(p: &str) -> Result<String> {
    let (port, proto) = p.split_once('/').unwrap_or((p, "tcp"));
    let n: u32 = port
        .parse()
        .ok()
        .filter(|n| (1..=65535).contains(n))
        .ok_or_else(|| anyhow::anyhow!("invalid port {p:?}"))?;
    match proto {
        "tcp" | "udp" | "sctp" => Ok(format!("{n}/{proto}")),
        _ => bail!("invalid protocol {proto:?} in {p:?}: give tcp, udp or sctp"),
    }
}

pub fn run(layout: &Layout, a: PortArgs) -> Result<()> {
    let id = resolve(layout, &a.container)?;
    let s = berth_engine::status::current(layout, &id)?;
    let ports = s.network.map(|n| n.ports).unwrap_or_default();
    let addr = |p: &berth_engine::record::PortState| {
        if p.host_ip.contains(':') {
            format!("[{}]:{}", p.host_ip, p.host_port)
        } else {
            format!("{}:{}", p.host_ip, p.host_port)
        }
    };
    match &a.private_port {
        Some(p) => {
            let want = normalize(p)?;
            let hits: Vec<_> = ports
                .iter()
                .filter(|x| format!("{}/{}", x.container_port, x.proto) == want)
                .collect();
            if hits.is_empty() {
                bail!("No public port '{want}' published for {}", a.container);
            }
            for h in hits {
                println!("{}", addr(h));
            }
        }
        None => {
            for p in &ports {
                println!("{}/{} -> {}", p.container_port, p.proto, addr(p));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ports() {
        assert_eq!(super::normalize("80").unwrap(), "80/tcp");
        assert_eq!(super::normalize("53/udp").unwrap(), "53/udp");
        assert!(super::normalize("0").is_err());
        assert!(super::normalize("80/foo").is_err());
    }
}
