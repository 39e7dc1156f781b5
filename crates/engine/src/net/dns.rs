//! berth-dns, the DNS server of user-defined networks (one per storage root and network
//! namespace): started on demand by the first container whose network needs it; it exits
//! by itself once no container is left on such a network.

use super::store::net_err;
use crate::error::{Error, Result};
use crate::layout::Layout;
use berth_network::dns::{server_pid, NetworksDir};
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
