//! The monitor's side of berth-net (bins/berth-net), which does a container's network
//! setup and teardown ([`super::attach`]) in a process of its own, as podman runs
//! netavark: the monitor lives as long as its container, and this way it carries none
//! of the netlink, nftables, IPAM or DNS-record code (docs/engine.md, "The monitor stays
//! small"). The monitor keeps what must live with the container ([`Held`]): the
//! attachment as berth-net sent it (opaque to the monitor, handed back to berth-net),
//! the state the record shows, and the sockets that hold its published host ports.
//!
//! ```text
//! berth-net prepare --root R --id ID --generation G    stdout: a SOCK_SEQPACKET socket:
//!     the attachment as JSON (or null), then its port sockets, FDS_PER_MESSAGE per message
//! berth-net plug --pid PID                             stdin: the attachment
//! berth-net unplug --root R --id ID [--keep-leases]    stdin: the attachment
//! berth-net unplug-owner --root R --id ID
//! berth-net release --root R --id ID
//! ```
//! Exit 0, or 1 with the error(s) on stderr, one per line.

use super::attach::{self, Attachment};
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::options::NetworkMode;
use crate::record::ContainerConfig;
use crate::record::NetworkState;
use std::io::{IoSlice, IoSliceMut, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::{Command, Stdio};

/// At most this many fds ride on one message (SCM_MAX_FD is 253).
pub const FDS_PER_MESSAGE: usize = 200;

/// The largest attachment message (a container on many networks is a few KiB).
const MAX_MESSAGE: usize = 256 * 1024;

/// What the monitor holds of a container's network while it runs.
pub struct Held {
    /// berth-net's attachment, as it came: only berth-net reads it.
    json: Vec<u8>,
    /// What the container's record shows (`NetworkSettings`).
    pub state: NetworkState,
    /// The published host ports, held (closed with this).
    _sockets: Vec<OwnedFd>,
}

/// The part of an attachment the monitor reads.
#[derive(serde::Deserialize)]
struct View {
    state: NetworkState,
    reservation: ReservationView,
}

#[derive(serde::Deserialize)]
struct ReservationView {
    bindings: Vec<serde::de::IgnoredAny>,
}

fn berth_net() -> Result<Command> {
    Ok(Command::new(crate::bins::locate("berth-net")?))
}

/// Runs `cmd` (stdin `input`, stderr collected), calls `during` once it is spawned (our
/// copy of what its stdout was given already closed), and waits: Err(its stderr's lines)
/// when it fails.
fn run_with(
    mut cmd: Command,
    input: Option<&[u8]>,
    during: impl FnOnce(),
) -> std::result::Result<(), Vec<String>> {
    let what = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args()
            .next()
            .map(|a| a.to_string_lossy())
            .unwrap_or_default()
    );
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| vec![format!("{what}: {e}")])?;
    drop(cmd);
    if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
        // One that failed before reading says why on stderr.
        let _ = stdin.write_all(data);
    }
    during();
    let out = child
        .wait_with_output()
        .map_err(|e| vec![format!("{what}: {e}")])?;
    if out.status.success() {
        return Ok(());
    }
    let lines: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    Err(if lines.is_empty() {
        vec![format!("{what}: {}", out.status)]
    } else {
        lines
    })
}

fn run(cmd: Command, input: Option<&[u8]>) -> std::result::Result<(), Vec<String>> {
    run_with(cmd, input, || {})
}

fn one_error(errs: Vec<String>) -> Error {
    Error::Invalid(errs.join("; "))
}

fn root_id(cmd: &mut Command, layout: &Layout, id: &str) {
    cmd.arg("--root").arg(layout.root()).arg("--id").arg(id);
}

/// [`attach::prepare`]: by berth-net for bridge networks.
pub fn prepare(layout: &Layout, cfg: &ContainerConfig, generation: u32) -> Result<Option<Held>> {
    match &cfg.options.network {
        NetworkMode::Bridge => {}
        // No netlink in that one: done here, without an exec.
        NetworkMode::Container(r) => return attach::join_container(layout, cfg, r).map(|()| None),
        NetworkMode::None | NetworkMode::Host => return Ok(None),
    }
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let (mine, theirs) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| Error::Invalid(format!("socketpair for berth-net: {e}")))?;
    let mut cmd = berth_net()?;
    cmd.arg("prepare");
    root_id(&mut cmd, layout, &cfg.id);
    cmd.arg("--generation")
        .arg(generation.to_string())
        .stdout(Stdio::from(theirs));
    // The child has its end; reading ours sees EOF once berth-net is gone.
    let mut got = None;
    let r = run_with(cmd, None, || got = Some(receive(mine.as_fd())));
    r.map_err(one_error)?;
    let (json, fds) = got
        .unwrap_or_else(|| Err(std::io::ErrorKind::UnexpectedEof.into()))
        .map_err(|e| Error::Invalid(format!("berth-net prepare: {e}")))?;
    let view: Option<View> = serde_json::from_slice(&json)
        .map_err(|e| Error::Invalid(format!("berth-net prepare: bad attachment: {e}")))?;
    let Some(view) = view else { return Ok(None) };
    let held = Held {
        json,
        state: view.state,
        _sockets: fds,
    };
    if held._sockets.len() != view.reservation.bindings.len() {
        let msg = format!(
            "berth-net prepare: {} port sockets arrived for {} bindings",
            held._sockets.len(),
            view.reservation.bindings.len()
        );
        // Take back what it set up.
        let _ = unplug(layout, cfg, held, false);
        return Err(Error::Invalid(msg));
    }
    Ok(Some(held))
}

/// The first message (JSON) and every fd of the messages after it, until EOF.
fn receive(sock: BorrowedFd<'_>) -> std::io::Result<(Vec<u8>, Vec<OwnedFd>)> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut json = vec![0u8; MAX_MESSAGE];
    let mut fds = Vec::new();
    let mut first = true;
    loop {
        let mut space =
            [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(FDS_PER_MESSAGE))];
        let mut anc = RecvAncillaryBuffer::new(&mut space);
        let mut small = [0u8; 8];
        let buf: &mut [u8] = if first { &mut json } else { &mut small };
        let r = rustix::net::recvmsg(
            sock,
            &mut [IoSliceMut::new(buf)],
            &mut anc,
            RecvFlags::CMSG_CLOEXEC,
        )?;
        for m in anc.drain() {
            if let RecvAncillaryMessage::ScmRights(got) = m {
                fds.extend(got);
            }
        }
        if r.flags.contains(rustix::net::ReturnFlags::CTRUNC)
            || r.flags.contains(rustix::net::ReturnFlags::TRUNC)
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "a message from berth-net was truncated",
            ));
        }
        if r.bytes == 0 {
            if first {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            return Ok((json, fds));
        }
        if first {
            json.truncate(r.bytes);
            first = false;
        }
    }
}

/// berth-net's side of [`prepare`]: the attachment and its sockets on `sock`.
pub fn send(sock: BorrowedFd<'_>, att: Option<&Attachment>) -> std::io::Result<()> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let json = serde_json::to_vec(&att).map_err(std::io::Error::other)?;
    if json.len() > MAX_MESSAGE {
        return Err(std::io::Error::other(format!(
            "the attachment is {} bytes, more than {MAX_MESSAGE}",
            json.len()
        )));
    }
    rustix::net::send(sock, &json, SendFlags::NOSIGNAL)?;
    let fds: Vec<BorrowedFd> = att
        .map(|a| a.sockets().iter().map(|f| f.as_fd()).collect())
        .unwrap_or_default();
    for chunk in fds.chunks(FDS_PER_MESSAGE) {
        let mut space =
            [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(FDS_PER_MESSAGE))];
        let mut anc = SendAncillaryBuffer::new(&mut space);
        if !anc.push(SendAncillaryMessage::ScmRights(chunk)) {
            return Err(std::io::Error::other("ancillary buffer too small"));
        }
        rustix::net::sendmsg(sock, &[IoSlice::new(b"F")], &mut anc, SendFlags::NOSIGNAL)?;
    }
    Ok(())
}

/// [`attach::plug`]: lo alone here (an ioctl), veths by berth-net.
pub fn plug(cfg: &ContainerConfig, held: Option<&Held>, pid: i32) -> Result<()> {
    if !matches!(cfg.options.network, NetworkMode::Bridge | NetworkMode::None) {
        return Ok(());
    }
    let Some(held) = held.filter(|h| !h.state.endpoints.is_empty()) else {
        return attach::loopback_up(pid);
    };
    let mut cmd = berth_net()?;
    cmd.arg("plug").arg("--pid").arg(pid.to_string());
    run(cmd, Some(&held.json)).map_err(one_error)
}

/// [`attach::unplug_keeping`], by berth-net; the sockets close here.
pub fn unplug(
    layout: &Layout,
    cfg: &ContainerConfig,
    held: Held,
    keep_leases: bool,
) -> Vec<String> {
    let mut cmd = match berth_net() {
        Ok(c) => c,
        Err(e) => return vec![e.to_string()],
    };
    cmd.arg("unplug");
    root_id(&mut cmd, layout, &cfg.id);
    if keep_leases {
        cmd.arg("--keep-leases");
    }
    let r = run(cmd, Some(&held.json));
    drop(held);
    r.err().unwrap_or_default()
}

/// [`attach::unplug_owner`], by berth-net (nothing to do off bridge networks).
pub fn unplug_owner(layout: &Layout, cfg: &ContainerConfig) -> Vec<String> {
    if cfg.options.network != NetworkMode::Bridge {
        return vec![];
    }
    simple("unplug-owner", layout, cfg)
        .err()
        .unwrap_or_default()
}

/// [`attach::release_leases`], by berth-net.
pub fn release_leases(layout: &Layout, cfg: &ContainerConfig) {
    if !cfg.options.networks.is_empty() {
        let _ = simple("release", layout, cfg);
    }
}

fn simple(
    verb: &str,
    layout: &Layout,
    cfg: &ContainerConfig,
) -> std::result::Result<(), Vec<String>> {
    let mut cmd = berth_net().map_err(|e| vec![e.to_string()])?;
    cmd.arg(verb);
    root_id(&mut cmd, layout, &cfg.id);
    run(cmd, None)
}
