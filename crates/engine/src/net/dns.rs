//! berth-dns, the DNS server of user-defined networks (one per storage root and network
//! namespace): started on demand by the first container whose network needs it; it exits
//! by itself once no container is left on such a network.

use super::store::net_err;
use crate::error::{Error, Result};
use crate::layout::Layout;
use berth_network::dns::{server_pid, NetworksDir, ServiceRecord};
use std::process::Stdio;

/// Starts berth-dns for this root unless it runs; returns once it serves.
pub fn ensure_running(layout: &Layout) -> Result<()> {
    let dir = NetworksDir::new(layout.root());
    if server_pid(&dir).map_err(net_err)?.is_some() {
        return Ok(());
    }
    let bin = crate::bins::locate("berth-dns")?;
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| Error::io("pipe", e.into()))?;
    let mut cmd = std::process::Command::new(&bin);
    cmd.arg("--root")
        .arg(layout.root())
        .args(["--ready-fd", "3"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    use command_fds::{CommandFdExt, FdMapping};
    cmd.fd_mappings(vec![FdMapping {
        parent_fd: w,
        child_fd: 3,
    }])
    .map_err(|e| Error::Invalid(format!("map the ready pipe: {e}")))?;
    // Its own process group: a signal to the caller's group is not for it.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = cmd.spawn().map_err(|e| Error::io(&bin, e))?;
    drop(cmd);
    let line = crate::bins::read_ready_line(r)?;
    // Whoever reaps our children (the monitor's loop) reaps it if it ends; it outlives us.
    drop(child);
    match line.as_str() {
        "ok" => Ok(()),
        "" => Err(Error::Invalid("berth-dns exited without reporting".into())),
        l => Err(Error::Invalid(format!(
            "berth-dns: {}",
            l.strip_prefix("error: ").unwrap_or(l)
        ))),
    }
}

/// Makes service `name` resolve on network `network` (id, name or id prefix) to
/// `addresses`: `name` and `name.<network>`, for that network's containers only. For
/// endpoint_mode vip, the VIP; for dnsrr, every healthy replica's address (the
/// replicas may also carry `name` as an alias: a name given by several records answers
/// with all their addresses). Replaces the previous addresses; berth-dns follows within
/// milliseconds (inotify). Empty `addresses`: the name stays ours with no address (not
/// forwarded upstream). The server itself is started by the containers' endpoints.
pub fn set_service_record(
    layout: &Layout,
    network: &str,
    name: &str,
    addresses: &[std::net::IpAddr],
) -> Result<()> {
    let nets = super::Networks::new(layout);
    let net = nets.find(network)?;
    if !net.dns {
        return Err(Error::Invalid(format!(
            "network {} has no DNS (only user-defined networks resolve names)",
            net.name
        )));
    }
    let mut addrs: Vec<std::net::IpAddr> = Vec::new();
    for a in addresses {
        if !addrs.contains(a) {
            addrs.push(*a);
        }
    }
    nets.dir()
        .write_service(
            &net.id,
            &ServiceRecord {
                name: name.to_string(),
                addresses: addrs,
            },
        )
        .map_err(net_err)
}

/// Removes service `name`'s record from network `network`; idempotent (a network that
/// is gone took its records with it).
pub fn remove_service_record(layout: &Layout, network: &str, name: &str) -> Result<()> {
    let nets = super::Networks::new(layout);
    let net = match nets.find(network) {
        Ok(n) => n,
        Err(Error::NoSuchNetwork(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    nets.dir().remove_service(&net.id, name).map_err(net_err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::store::CreateNetwork;

    #[test]
    fn service_records_are_set_replaced_and_removed() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::open(d.path()).unwrap();
        let nets = super::super::Networks::new(&l);
        let rec = nets
            .create(&CreateNetwork {
                name: "shop_default".into(),
                subnets: vec!["10.86.0.0/24".into()],
                ..Default::default()
            })
            .unwrap();
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        set_service_record(&l, "shop_default", "pay", &[ip("10.86.0.200")]).unwrap();
        set_service_record(
            &l,
            &rec.id,
            "rr",
            &[ip("10.86.0.2"), ip("10.86.0.3"), ip("10.86.0.2")],
        )
        .unwrap();
        let got = nets.dir().services(&rec.id).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].addresses, [ip("10.86.0.2"), ip("10.86.0.3")]);
        set_service_record(&l, "shop_default", "rr", &[ip("10.86.0.3")]).unwrap();
        assert_eq!(
            nets.dir().services(&rec.id).unwrap()[1].addresses,
            [ip("10.86.0.3")]
        );
        remove_service_record(&l, "shop_default", "rr").unwrap();
        remove_service_record(&l, "shop_default", "rr").unwrap();
        remove_service_record(&l, "no-such-net", "rr").unwrap();
        assert_eq!(nets.dir().services(&rec.id).unwrap().len(), 1);
        // Bad input is refused; the default network resolves nothing.
        assert!(set_service_record(&l, "shop_default", "../x", &[]).is_err());
        assert!(set_service_record(&l, "no-such-net", "pay", &[]).is_err());
        let e = set_service_record(&l, "bridge", "pay", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("has no DNS"), "{e}");
    }
}
