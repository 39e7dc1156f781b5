//! The init hand-off protocol.
//!
//! Three processes take part: P, the runtime (`create` or `run`), C, an
//! intermediate child that enters or makes the namespaces, and I, the
//! container's init, forked by C so that it is pid 1 of a new pid namespace
//! and a member of a new time namespace. All three share one SOCK_SEQPACKET
//! socketpair; each message is one JSON datagram. The sync points are
//! numbered and both ends name them.
//!
//! ```text
//!  P (runtime, host ns)            C (intermediate)               I (init)
//!  ----------------------------    ---------------------------    ---------------------------
//!  socketpair, fork C -----------> v1: joins its cgroups ('0' to
//!  put C in the cgroup (unless       tasks), then waits for [1]
//!  it joins itself), apply
//!  resources
//!  [1] Go ---------------------->  setns() every joined ns (user first)
//!                                  unshare(NEWUSER) if asked
//!  [2] <------------------------   UsernsReady     (only with a new userns)
//!  write uid_map, gid_map
//!  [3] UsernsMapped ------------>  become root in it
//!                                  unshare(NEWTIME), write offsets
//!                                  unshare(the other new ns)
//!                                  fork I ----------------------> waits for [5]
//!  [4] <------------------------   InitPid(pid); C exits
//!  reap C, record pid in state
//!  open bind sources in I's mount
//!  ns (only with a user namespace)
//!  [5] Setup(state for hooks, ---------------------------------->  mounts, devices, /dev links,
//!      bind source fds)                                            console
//!  [6] <----------------------------------------------------------  RuntimeHooks (prestart and
//!  run them in the runtime ns                                        createRuntime exist)
//!  [7] HooksDone ----------------------------------------------->  createContainer hooks,
//!                                                                  pivot_root, masks, sysctls,
//!                                                                  hostname, rlimits, user,
//!                                                                  caps, cwd check, seccomp
//!                                                                  (listener fd to listenerPath)
//!  [8] <----------------------------------------------------------  Ready (parked before exec)
//!  state "created", pid file; exit                                 opens exec.fifo for writing
//!  `start` opens exec.fifo for reading ------------------------->  [9] released: startContainer
//!  (`run`: no fifo; [9] Start on the socket)                        hooks, exec
//! ```
//!
//! When no namespace is joined by path and no time offsets must be written
//! first, C is skipped: P makes I directly with clone3 and every CLONE_NEW*
//! flag (and CLONE_INTO_CGROUP on cgroup2); I then plays C's part of [1] to
//! [3], unshares its cgroup namespace once placed, and there is no [4].
//! Without a new user namespace I joins its v1 cgroups itself (spawn.rs,
//! `self_join_files`) and builds the rootfs before [1], and reports a
//! failure of the mounts after [5].
//!
//! At any point C or I may send `Error{msg}` instead and exit; P prints the
//! message and undoes everything. If P dies, C dies with it (pdeathsig) and
//! I sees the socket close at its next step and exits.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t")]
enum Msg {
    /// [1] P → C.
    Go,
    /// [2] C → P.
    UsernsReady,
    /// [3] P → C.
    UsernsMapped,
    /// [4] C → P.
    InitPid { pid: i32 },
    /// [5] P → I, with the state JSON for hooks run inside. With a user
    /// namespace, O_PATH fds of bind sources (SCM_RIGHTS), opened by P in
    /// init's mount namespace: `binds` are their indexes in the mounts.
    Setup {
        state: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        binds: Vec<usize>,
    },
    /// [6] I → P.
    RuntimeHooks,
    /// [7] P → I.
    HooksDone,
    /// [8] I → P, with init's phase timings when `--debug` asked for them.
    Ready {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        phases: Vec<(String, u64)>,
    },
    /// [9] P → I, for `run` (no exec fifo): exec now.
    Start,
    /// C or I → P: setup failed.
    Error { msg: String },
}

const MAX_MSG: usize = 1 << 20;

fn send(fd: &OwnedFd, m: &Msg) -> io::Result<()> {
    let data = serde_json::to_vec(m).expect("sync message serialises");
    rustix::net::send(fd, &data, rustix::net::SendFlags::NOSIGNAL)?;
    Ok(())
}

fn recv(fd: &OwnedFd) -> io::Result<Msg> {
    match recv_packet(fd)? {
        None => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "peer closed the sync socket",
        )),
        Some(p) => {
            serde_json::from_slice(&p).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
        }
    }
}

/// Most fds one SCM_RIGHTS message carries (the kernel's SCM_MAX_FD).
pub const MAX_FDS: usize = 253;

fn send_with_fds(fd: &OwnedFd, m: &Msg, fds: &[OwnedFd]) -> io::Result<()> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    if fds.is_empty() {
        return send(fd, m);
    }
    if fds.len() > MAX_FDS {
        return Err(io::Error::other(format!(
            "{} fds in one message (at most {MAX_FDS})",
            fds.len()
        )));
    }
    let data = serde_json::to_vec(m).expect("sync message serialises");
    let b: Vec<std::os::fd::BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
    let mut space = vec![std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(b.len()))];
    let mut anc = SendAncillaryBuffer::new(&mut space);
    anc.push(SendAncillaryMessage::ScmRights(&b));
    rustix::net::sendmsg(
        fd,
        &[io::IoSlice::new(&data)],
        &mut anc,
        SendFlags::NOSIGNAL,
    )?;
    Ok(())
}

fn recv_with_fds(fd: &OwnedFd) -> io::Result<(Msg, Vec<OwnedFd>)> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let len = loop {
        match rustix::net::recv(fd, &mut [0u8; 0], RecvFlags::PEEK | RecvFlags::TRUNC) {
            Ok((_, len)) => break len,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    if len > MAX_MSG {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("sync message of {len} bytes"),
        ));
    }
    let mut buf = vec![0u8; len];
    let mut space = vec![std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut anc = RecvAncillaryBuffer::new(&mut space);
    let r = loop {
        match rustix::net::recvmsg(
            fd,
            &mut [io::IoSliceMut::new(&mut buf)],
            &mut anc,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Err(rustix::io::Errno::INTR) => continue,
            r => break r?,
        }
    };
    let fds: Vec<OwnedFd> = anc
        .drain()
        .filter_map(|m| match m {
            RecvAncillaryMessage::ScmRights(f) => Some(f.collect::<Vec<_>>()),
            _ => None,
        })
        .flatten()
        .collect();
    if r.bytes == 0 && len == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "peer closed the sync socket",
        ));
    }
    if r.flags.contains(rustix::net::ReturnFlags::CTRUNC) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "sync message's fds truncated",
        ));
    }
    buf.truncate(r.bytes);
    let m =
        serde_json::from_slice(&buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok((m, fds))
}

/// One datagram of a SEQPACKET socket in a buffer of its size (peeked first:
/// a fixed large buffer costs a page fault per 4 KiB touched), None at EOF.
pub(crate) fn recv_packet(fd: &OwnedFd) -> io::Result<Option<Vec<u8>>> {
    use rustix::net::RecvFlags;
    loop {
        let len = match rustix::net::recv(fd, &mut [0u8; 0], RecvFlags::PEEK | RecvFlags::TRUNC) {
            Ok((_, len)) => len,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        };
        if len > MAX_MSG {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("sync message of {len} bytes"),
            ));
        }
        let mut buf = vec![0u8; len];
        match rustix::net::recv(fd, &mut buf, RecvFlags::empty()) {
            Ok((0, _)) => return Ok(None),
            Ok((n, _)) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Make the socketpair: (parent end, child end). Both CLOEXEC; the child
/// end survives fork, not exec.
pub fn pair() -> Result<(ParentSync, ChildEnd)> {
    let (a, b) = rustix::net::socketpair(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::SEQPACKET,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| Error::io("create sync socketpair".into(), e.into()))?;
    Ok((ParentSync { fd: a }, ChildEnd { fd: b }))
}

/// The child end before fork; it becomes [`IntermediateSync`] in C and
/// [`InitSync`] in I.
pub struct ChildEnd {
    fd: OwnedFd,
}

impl ChildEnd {
    pub fn into_intermediate(self) -> IntermediateSync {
        IntermediateSync { fd: self.fd }
    }
}

/// P's end.
pub struct ParentSync {
    fd: OwnedFd,
}

impl ParentSync {
    fn expect(&self, step: &str, want: fn(&Msg) -> bool) -> Result<Msg> {
        match recv(&self.fd) {
            Ok(Msg::Error { msg }) => Err(Error::Child(msg)),
            Ok(m) if want(&m) => Ok(m),
            Ok(m) => Err(Error::Protocol(format!("{step}: unexpected {m:?}"))),
            Err(e) => Err(Error::io(format!("sync {step}"), e)),
        }
    }

    fn send(&self, step: &str, m: Msg) -> Result<()> {
        send(&self.fd, &m).map_err(|e| Error::io(format!("sync {step}"), e))
    }

    /// [1]
    pub fn go(&self) -> Result<()> {
        self.send("[1] go", Msg::Go)
    }
    /// [2]
    pub fn wait_userns_ready(&self) -> Result<()> {
        self.expect("[2] userns ready", |m| matches!(m, Msg::UsernsReady))
            .map(|_| ())
    }
    /// [3]
    pub fn userns_mapped(&self) -> Result<()> {
        self.send("[3] userns mapped", Msg::UsernsMapped)
    }
    /// [4]
    pub fn wait_init_pid(&self) -> Result<i32> {
        match self.expect("[4] init pid", |m| matches!(m, Msg::InitPid { .. }))? {
            Msg::InitPid { pid } => Ok(pid),
            _ => unreachable!(),
        }
    }
    /// [5], with the bind sources' fds (index in the mounts, fd).
    pub fn setup(&self, state: String, binds: Vec<(usize, OwnedFd)>) -> Result<()> {
        let (idx, fds): (Vec<usize>, Vec<OwnedFd>) = binds.into_iter().unzip();
        let m = Msg::Setup { state, binds: idx };
        send_with_fds(&self.fd, &m, &fds).map_err(|e| Error::io("sync [5] setup".into(), e))
    }
    /// [6]
    pub fn wait_runtime_hooks(&self) -> Result<()> {
        self.expect("[6] runtime hooks", |m| matches!(m, Msg::RuntimeHooks))
            .map(|_| ())
    }
    /// [7]
    pub fn hooks_done(&self) -> Result<()> {
        self.send("[7] hooks done", Msg::HooksDone)
    }
    /// [8]: init's own phase timings (empty unless recorded).
    pub fn wait_ready(&self) -> Result<Vec<(String, u64)>> {
        match self.expect("[8] ready", |m| matches!(m, Msg::Ready { .. }))? {
            Msg::Ready { phases } => Ok(phases),
            _ => unreachable!(),
        }
    }
    /// [9] for `run`: release init. Fails if init is gone.
    pub fn start(&self) -> Result<()> {
        send(&self.fd, &Msg::Start)
            .map_err(|_| Error::BadState("container init exited before it could be started".into()))
    }
    /// Forward an error of P's own to I, so that it stops waiting.
    pub fn abort(&self, msg: &str) {
        let _ = send(
            &self.fd,
            &Msg::Error {
                msg: msg.to_string(),
            },
        );
    }
}

/// C's end.
pub struct IntermediateSync {
    fd: OwnedFd,
}

impl IntermediateSync {
    /// [1]
    pub fn wait_go(&self) -> io::Result<()> {
        match recv(&self.fd)? {
            Msg::Go => Ok(()),
            m => Err(unexpected("[1] go", m)),
        }
    }
    /// [2] then [3]
    pub fn userns_ready_and_wait(&self) -> io::Result<()> {
        send(&self.fd, &Msg::UsernsReady)?;
        match recv(&self.fd)? {
            Msg::UsernsMapped => Ok(()),
            m => Err(unexpected("[3] userns mapped", m)),
        }
    }
    /// [4]
    pub fn init_pid(&self, pid: i32) -> io::Result<()> {
        send(&self.fd, &Msg::InitPid { pid })
    }
    pub fn error(&self, msg: &str) {
        let _ = send(
            &self.fd,
            &Msg::Error {
                msg: msg.to_string(),
            },
        );
    }
    /// In I, right after fork: the same socket, I's protocol.
    pub fn into_init(self) -> InitSync {
        InitSync { fd: self.fd }
    }
}

fn unexpected(step: &str, m: Msg) -> io::Error {
    match m {
        Msg::Error { msg } => io::Error::other(format!("{step}: runtime aborted: {msg}")),
        m => io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{step}: unexpected {m:?}"),
        ),
    }
}

/// I's end.
pub struct InitSync {
    fd: OwnedFd,
}

impl InitSync {
    /// [5]: returns the state JSON for in-container hooks and the bind
    /// sources P opened (index in the mounts, O_PATH fd).
    pub fn wait_setup(&self) -> io::Result<(String, Vec<(usize, OwnedFd)>)> {
        let (m, fds) = recv_with_fds(&self.fd)?;
        match m {
            Msg::Setup { state, binds } if binds.len() == fds.len() => {
                Ok((state, binds.into_iter().zip(fds).collect()))
            }
            Msg::Setup { binds, .. } => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "[5] setup: {} bind fds for {} sources",
                    fds.len(),
                    binds.len()
                ),
            )),
            m => Err(unexpected("[5] setup", m)),
        }
    }
    /// [6] then [7]
    pub fn runtime_hooks(&self) -> io::Result<()> {
        send(&self.fd, &Msg::RuntimeHooks)?;
        match recv(&self.fd)? {
            Msg::HooksDone => Ok(()),
            m => Err(unexpected("[7] hooks done", m)),
        }
    }
    /// [8], with the phases init recorded (see `timing`).
    pub fn ready(&self) -> io::Result<()> {
        send(
            &self.fd,
            &Msg::Ready {
                phases: crate::timing::take(),
            },
        )
    }
    /// [9] for `run`.
    pub fn wait_start(&self) -> io::Result<()> {
        match recv(&self.fd)? {
            Msg::Start => Ok(()),
            m => Err(unexpected("[9] start", m)),
        }
    }
    /// Whether the message could be sent (P may be gone after [8]).
    pub fn error(&self, msg: &str) -> bool {
        send(
            &self.fd,
            &Msg::Error {
                msg: msg.to_string(),
            },
        )
        .is_ok()
    }
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
