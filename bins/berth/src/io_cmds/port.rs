//! `berth port`: published ports. Berth's networks (none, host) publish nothing, so the
//! list is empty and asking for one port is docker's "No public port" error.

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
    // Nothing is published on `none` or `host` (the only networks there are).
    let _cfg = layout.load_config(&id)?;
    if let Some(p) = &a.private_port {
        let p = normalize(p)?;
        bail!("No public port '{p}' published for {}", a.container);
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
