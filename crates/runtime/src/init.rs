//! I: the container's init, from fork to execve. Runs inside every new
//! namespace; its errors travel to P over the sync socket.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::inroot::Procfs;
use berth_oci::{Config, LinuxNamespaceType as NS};
use berth_sys::process::exit_now;
use oci_spec::runtime::ContainerState;

use crate::hooks::{self, HookKind};
use crate::spawn::InitContext;
use crate::sync::InitSync;
use crate::{error_chain, rootfs, timing, tty, Error, Result};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn err(what: impl Into<String>, e: impl Into<std::io::Error>) -> Error {
    Error::io(what.into(), e.into())
}

/// The rootfs, made ahead of [5] while P still places init in its cgroups
/// (see `spawn::direct_init`); an error of it is reported where it would
/// have arisen otherwise.
pub type Early = Option<Result<rootfs::Prepared>>;

/// Entry point of I. Never returns: it execs the container process or
/// exits after reporting an error.
pub fn run(config: &Config, sync: InitSync, ctx: InitContext, early: Early) -> ! {
    match setup(config, &sync, ctx, early) {
        Ok(never) => match never {},
        Err(e) => {
            let msg = error_chain(&e);
            // After [8] nobody listens on the socket: the container's own
            // stderr is where the message can still be seen.
            if !sync.error(&msg) {
                use std::io::Write;
                let _ = writeln!(std::io::stderr(), "berth-runtime init: {msg}");
            }
            exit_now(1)
        }
    }
}

enum Never {}

fn setup(cfg: &Config, sync: &InitSync, mut ctx: InitContext, early: Early) -> Result<Never> {
    let (state, binds) = sync
        .wait_setup()
        .map_err(|e| err("[5] wait for setup", e))?; // [5]
    ctx.bind_sources = (0..cfg.mounts.len()).map(|_| None).collect();
    for (i, fd) in binds {
        if let Some(slot) = ctx.bind_sources.get_mut(i) {
            *slot = Some(fd);
        }
    }
    timing::mark("[5] wait setup");
    // Modes below are exact; the process's umask is set at the end.
    rustix::process::umask(rustix::fs::Mode::empty());
    rustix::process::setsid().map_err(|e| err("setsid", e))?;

    // The exec fifo, opened by P (O_PATH) in the host's state dir, which
    // init may not be allowed to search from a user namespace (none for `run`).
    let fifo = ctx.fifo.take();

    // A mount namespace joined by path gets the rootfs set up too.
    let mut prepared = match early {
        Some(p) => Some(p?),
        None if cfg.has(NS::Mount) => Some(rootfs::prepare(cfg, &ctx)?),
        None => None,
    };
    timing::mark("mounts");
    if let Some(p) = &prepared {
        rootfs::devices(p, cfg)?;
    }
    timing::mark("devices");
    if hooks::has_runtime_hooks(&cfg.hooks) {
        sync.runtime_hooks()
            .map_err(|e| err("[6]/[7] runtime hooks", e))?; // [6] [7]
        timing::mark("[6]/[7] runtime hooks");
    }
    if !hooks::list(&cfg.hooks, HookKind::CreateContainer).is_empty() {
        // In the container's root filesystem, as the spec says and runc does (its path
        // still resolves in the runtime's namespace: the rootfs is not entered yet).
        rustix::process::chdir(&cfg.rootfs)
            .map_err(|e| err(format!("chdir to rootfs {}", cfg.rootfs.display()), e))?;
        hooks::run_with_env(
            &cfg.hooks,
            HookKind::CreateContainer,
            &state,
            &cfg.process.env,
        )?;
        timing::mark("createContainer hooks");
    }
    let mut early_procfs = None;
    if let Some(p) = &prepared {
        rootfs::enter(p, cfg, ctx.no_pivot)?;
    } else {
        // No mount namespace: the caller's mount table stays as it is; chroot only.
        // A chrooted process may not make a procfs, so make the private one first.
        early_procfs = Some(Procfs::new().map_err(|e| err("mount a private procfs", e))?);
        rustix::process::chdir(&cfg.rootfs).map_err(|e| err("chdir to rootfs", e))?;
        rustix::process::chroot(".").map_err(|e| err("chroot to rootfs", e))?;
        rustix::process::chdir("/").map_err(|e| err("chdir /", e))?;
    }
    let late_readonly = prepared
        .as_mut()
        .map(|p| p.take_late_readonly())
        .unwrap_or_default();
    drop(prepared);
    timing::mark("pivot_root");

    if cfg.process.terminal {
        setup_console(cfg, ctx.console.take(), cfg.has(NS::Mount))?;
        timing::mark("console");
    }
    if cfg.has(NS::Mount) {
        rootfs::finalize(cfg, late_readonly)?;
        timing::mark("masks, read-only paths");
    }

    // A private procfs, never the container's /proc, for the writes below
    // (CVE-2025-52881); made only when something needs it.
    let procfs = if early_procfs.is_some() {
        early_procfs
    } else if !cfg.sysctls.is_empty() || cfg.process.oom_score_adj.is_some() {
        Some(Procfs::new().map_err(|e| err("mount a private procfs", e))?)
    } else {
        None
    };
    for (k, v) in &cfg.sysctls {
        let p = format!("sys/{}", berth_oci::sysctl::proc_path(k));
        let pfs = procfs.as_ref().expect("made above");
        pfs.write(&p, v)
            .map_err(|e| err(format!("set sysctl {k}={v}"), e))?;
    }
    if let Some(h) = &cfg.hostname {
        rustix::system::sethostname(h.as_bytes())
            .map_err(|e| err(format!("set hostname {h}"), e))?;
    }
    if cfg.has_new(NS::Network) {
        loopback_up()?;
    }
    if let Some(d) = &cfg.domainname {
        rustix::system::setdomainname(d.as_bytes())
            .map_err(|e| err(format!("set domainname {d}"), e))?;
    }
    if let Some(adj) = cfg.process.oom_score_adj {
        let pid = rustix::process::getpid().as_raw_nonzero().get();
        let pfs = procfs.as_ref().expect("made above");
        pfs.write(&format!("{pid}/oom_score_adj"), &adj.to_string())
            .map_err(|e| err(format!("set oom_score_adj {adj}"), e))?;
    }
    if !ctx.no_new_keyring {
        let name = CString::new(format!("_ses.{}", ctx.id)).unwrap_or_default();
        match berth_sys::process::join_session_keyring(&name) {
            Ok(()) => {}
            // Keyrings may be unavailable (disabled, or a userns without
            // quota); runc ignores ENOSYS and EACCES too.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOSYS) | Some(libc::EACCES) | Some(libc::EDQUOT)
                ) => {}
            Err(e) => return Err(err("join a new session keyring", e)),
        }
    }
    if let Some(p) = cfg.personality {
        berth_sys::process::set_personality(p)
            .map_err(|e| err(format!("set personality {p:#x}"), e))?;
    }
    for r in &cfg.process.rlimits {
        set_rlimit(r)?;
    }
    set_scheduling(&cfg.process)?;

    timing::mark("sysctls, hostname, keyring, rlimits");
    let exe = find_executable(cfg)?;
    let (argv, envp) = argv_envp(&cfg.process)?;
    timing::mark("find executable");

    // Only stdio and the preserved fds reach the container. Done before any
    // filter is loaded: a profile need not allow close_range.
    let keep = 3 + ctx.preserve_fds as i32;
    berth_sys::process::cloexec_from(keep).map_err(|e| err("mark fds close-on-exec", e))?;
    clear_cloexec(3, keep);

    // Without no_new_privs only CAP_SYS_ADMIN may load a filter, and the
    // user switch may drop it: load before the switch then (as runc does),
    // after the cwd check so that a profile need not allow getcwd.
    let early_filter = !cfg.process.no_new_privileges && ctx.seccomp.is_some();
    // runc's order: the cwd is entered while still privileged (a directory only root may
    // search), and again as the user only when that was refused.
    let entered = chdir_privileged(&cfg.process.cwd)?;
    if early_filter {
        if let Some(sc) = &ctx.seccomp {
            sc.install(&state, hook_pid(&state), ContainerState::Creating)?;
        }
        timing::mark("seccomp load");
    }
    set_user_and_caps(cfg)?;
    timing::mark("user, capabilities");
    if !entered {
        cwd_as_user(&cfg.process.cwd, early_filter)?;
    }
    if let Some(m) = cfg.process.umask {
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(m & 0o777));
    } else {
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
    }
    timing::mark("cwd, umask");
    // With noNewPrivileges the filter is loaded last before [8], as runc's: at `create`, so
    // that a listener gets the state and the fd before `create` returns; the startContainer
    // hooks run under it.
    if cfg.process.no_new_privileges {
        rustix::thread::set_no_new_privs(true).map_err(|e| err("set no_new_privs", e))?;
        if let Some(sc) = &ctx.seccomp {
            sc.install(&state, hook_pid(&state), ContainerState::Creating)?;
            timing::mark("seccomp load");
        }
    }
    sync.ready().map_err(|e| err("[8] report ready", e))?; // [8]

    // [9]: parked until `start` opens the fifo for reading (`run`: until P
    // says so on the socket).
    // The writer stays open (CLOEXEC) until execve closes it: `start` waits for that
    // EOF, so poststart hooks run after the process is executed, as the spec says.
    let _exec_fifo_writer = match fifo {
        Some(fifo) => {
            let w = reopen_fifo(&fifo, procfs)?;
            rustix::io::write(&w, b"0").map_err(|e| err("write exec fifo", e))?;
            Some(w)
        }
        None => {
            drop(procfs);
            sync.wait_start()
                .map_err(|e| err("[9] wait for start", e))?;
            None
        }
    };

    // In the environment the process gets (with HOME), as runc's init has it by then.
    hooks::run_with_env(
        &cfg.hooks,
        HookKind::StartContainer,
        &state,
        &process_env(&cfg.process),
    )?;
    berth_sys::signal::reset_dispositions();
    let _ = berth_sys::signal::SigMask::empty().restore();
    let e = berth_sys::process::execve(&exe, &argv, &envp);
    Err(err(format!("exec {}", exe.to_string_lossy()), e))
}

/// Clear FD_CLOEXEC on the preserved fds [from, to); absent ones are skipped.
fn clear_cloexec(from: i32, to: i32) {
    for fd in from..to {
        let _ = berth_sys::process::clear_cloexec(fd);
    }
}

/// `process.scheduler` and `process.ioPriority`, while still privileged
/// (a realtime policy needs CAP_SYS_NICE), before any seccomp filter.
pub(crate) fn set_scheduling(p: &berth_oci::Process) -> Result<()> {
    if let Some(s) = &p.scheduler {
        let attr = berth_sys::sched::SchedAttr {
            size: 0,
            policy: s.policy,
            flags: s.flags,
            nice: s.nice,
            priority: s.priority,
            runtime: s.runtime,
            deadline: s.deadline,
            period: s.period,
        };
        berth_sys::sched::set_sched_attr(&attr).map_err(|e| {
            err(
                format!(
                    "set process.scheduler (policy {}, nice {}, priority {})",
                    s.policy, s.nice, s.priority
                ),
                e,
            )
        })?;
    }
    if let Some((class, level)) = p.io_priority {
        berth_sys::sched::set_io_priority(class, level).map_err(|e| {
            err(
                format!("set process.ioPriority (class {class}, priority {level})"),
                e,
            )
        })?;
    }
    Ok(())
}

pub(crate) fn set_rlimit(r: &berth_oci::Rlimit) -> Result<()> {
    let res = rlimit_resource(r.resource);
    let lim = rustix::process::Rlimit {
        current: (r.soft != u64::MAX).then_some(r.soft),
        maximum: (r.hard != u64::MAX).then_some(r.hard),
    };
    match rustix::process::setrlimit(res, lim) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::PERM) => {
            let cur = rustix::process::getrlimit(res);
            Err(Error::Invalid(format!(
                "set {} soft={} hard={}: operation not permitted: the hard limit is {} and raising it needs CAP_SYS_RESOURCE",
                r.name,
                r.soft,
                r.hard,
                cur.maximum.map(|m| m.to_string()).unwrap_or_else(|| "unlimited".into())
            )))
        }
        Err(e) => Err(err(
            format!("set {} soft={} hard={}", r.name, r.soft, r.hard),
            e,
        )),
    }
}

fn rlimit_resource(n: u32) -> rustix::process::Resource {
    use rustix::process::Resource as R;
    match n {
        0 => R::Cpu,
        1 => R::Fsize,
        2 => R::Data,
        3 => R::Stack,
        4 => R::Core,
        5 => R::Rss,
        6 => R::Nproc,
        7 => R::Nofile,
        8 => R::Memlock,
        9 => R::As,
        10 => R::Locks,
        11 => R::Sigpending,
        12 => R::Msgqueue,
        13 => R::Nice,
        14 => R::Rtprio,
        _ => R::Rttime,
    }
}

/// Resolve args[0] through the container's PATH now, so that a missing
/// binary fails `create` with runc's message instead of failing later.
pub(crate) fn find_executable(cfg: &Config) -> Result<CString> {
    let a0 = &cfg.process.args[0];
    let check = |p: &Path| -> bool {
        rustix::fs::access(p, rustix::fs::Access::EXEC_OK).is_ok()
            && std::fs::metadata(p).map(|m| m.is_file()).unwrap_or(false)
    };
    let found: Option<PathBuf> = if a0.contains('/') {
        let p = if a0.starts_with('/') {
            PathBuf::from(a0)
        } else {
            cfg.process.cwd.join(a0)
        };
        // runc's wording, which engines map to 127 (missing) and 126 (not runnable).
        match std::fs::metadata(&p) {
            Err(_) => {
                return Err(Error::Invalid(format!(
                    "exec: {a0:?}: stat {a0}: no such file or directory"
                )))
            }
            Ok(_) if !check(&p) => {
                return Err(Error::Invalid(format!("exec: {a0:?}: permission denied")))
            }
            Ok(_) => Some(PathBuf::from(a0)),
        }
    } else {
        let path = cfg
            .process
            .env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH);
        path.split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join(a0))
            .find(|p| check(p))
    };
    match found {
        Some(p) => CString::new(p.as_os_str().as_encoded_bytes())
            .map_err(|_| Error::Invalid("process.args[0] holds a NUL byte".into())),
        None => Err(Error::Invalid(format!(
            "exec: {a0:?}: executable file not found in $PATH"
        ))),
    }
}

/// Bounding set, user switch (keeping caps across it), then the other four
/// capability sets, as runc orders it.
pub(crate) fn set_user_and_caps(cfg: &Config) -> Result<()> {
    let caps = cfg.process.caps;
    let last = last_cap();
    for c in 0..=last {
        if caps.bounding & (1 << c) == 0 {
            match rustix::thread::remove_capability_from_bounding_set(
                rustix::thread::CapabilitySet::from_bits_retain(1 << c),
            ) {
                Ok(()) => {}
                Err(e) => return Err(err(format!("drop capability {c} from the bounding set"), e)),
            }
        }
    }
    rustix::thread::set_keep_capabilities(true).map_err(|e| err("keep capabilities", e))?;
    let p = &cfg.process;
    let setgroups_allowed = !cfg.has(NS::User)
        || std::fs::read_to_string("/proc/self/setgroups")
            .map(|s| s.trim() != "deny")
            .unwrap_or(true);
    if setgroups_allowed {
        berth_sys::process::set_groups(&p.additional_gids).map_err(|e| {
            err(
                format!("set supplementary groups {:?}", p.additional_gids),
                e,
            )
        })?;
    } else if !p.additional_gids.is_empty() {
        return Err(Error::Invalid(
            "additionalGids cannot be set: setgroups is denied in this user namespace".into(),
        ));
    }
    berth_sys::process::set_res_ids(p.uid, p.gid)
        .map_err(|e| err(format!("switch to uid {} gid {}", p.uid, p.gid), e))?;
    rustix::thread::set_keep_capabilities(false)
        .map_err(|e| err("stop keeping capabilities", e))?;
    let sets = rustix::thread::CapabilitySets {
        effective: rustix::thread::CapabilitySet::from_bits_retain(caps.effective),
        permitted: rustix::thread::CapabilitySet::from_bits_retain(caps.permitted),
        inheritable: rustix::thread::CapabilitySet::from_bits_retain(caps.inheritable),
    };
    rustix::thread::set_capabilities(None, sets).map_err(|e| {
        err(
            format!(
                "set capabilities (effective {:#x}, permitted {:#x}, inheritable {:#x})",
                caps.effective, caps.permitted, caps.inheritable
            ),
            e,
        )
    })?;
    for c in 0..=last {
        if caps.ambient & (1 << c) != 0 {
            rustix::thread::configure_capability_in_ambient_set(
                rustix::thread::CapabilitySet::from_bits_retain(1 << c),
                true,
            )
            .map_err(|e| {
                err(
                    format!("raise ambient capability {c} (it must be permitted and inheritable)"),
                    e,
                )
            })?;
        }
    }
    Ok(())
}

fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// chdir, then make sure the kernel can name the result from inside the
/// root: a cwd outside it (a leaked fd, CVE-2024-21626) cannot be named.
pub(crate) fn chdir_checked(cwd: &Path) -> Result<()> {
    rustix::process::chdir(cwd).map_err(|e| err(format!("chdir to cwd {}", cwd.display()), e))?;
    check_cwd(cwd)
}

/// The first, privileged attempt at the cwd (before the user switch): Ok(false) when it was
/// refused for permission (EACCES, EPERM), to be tried again as the user, as runc does; any
/// other failure is final.
pub(crate) fn chdir_privileged(cwd: &Path) -> Result<bool> {
    match rustix::process::chdir(cwd) {
        Ok(()) => check_cwd(cwd).map(|()| true),
        Err(rustix::io::Errno::ACCESS | rustix::io::Errno::PERM) => Ok(false),
        Err(e) => Err(err(format!("chdir to cwd {}", cwd.display()), e)),
    }
}

/// The second attempt, as the user. After a seccomp filter the check by getcwd is left out
/// (a profile need not allow getcwd); the path was resolved from the container's root.
pub(crate) fn cwd_as_user(cwd: &Path, filtered: bool) -> Result<()> {
    if filtered {
        rustix::process::chdir(cwd).map_err(|e| err(format!("chdir to cwd {}", cwd.display()), e))
    } else {
        chdir_checked(cwd)
    }
}

fn check_cwd(cwd: &Path) -> Result<()> {
    let now = rustix::process::getcwd(Vec::new())
        .map_err(|e| err(format!("getcwd after chdir to {}", cwd.display()), e))?;
    if !now.as_bytes().starts_with(b"/") {
        return Err(Error::Invalid(format!(
            "cwd {} is outside the container root",
            cwd.display()
        )));
    }
    Ok(())
}

pub(crate) fn setup_console(cfg: &Config, sock: Option<OwnedFd>, mount: bool) -> Result<()> {
    let sock = sock
        .ok_or_else(|| Error::Invalid("terminal is set but no console socket was given".into()))?;
    let master = rootfs::open_ptmx()?;
    rustix::pty::unlockpt(&master).map_err(|e| err("unlockpt", e))?;
    let peer = rustix::pty::ioctl_tiocgptpeer(
        &master,
        rustix::pty::OpenptFlags::RDWR
            | rustix::pty::OpenptFlags::NOCTTY
            | rustix::pty::OpenptFlags::CLOEXEC,
    )
    .map_err(|e| err("open the pty peer (TIOCGPTPEER)", e))?;
    // The process's user owns its console, the group stays (devpts' gid=), as runc's
    // fixStdioPermissions; EINVAL (the gid is not mapped) and EPERM (the owner is not) are
    // ignored as runc does.
    let gid = rustix::fs::fstat(&peer)
        .map(|s| s.st_gid)
        .map_err(|e| err("stat the pty peer", e))?;
    match rustix::fs::fchown(
        &peer,
        Some(rustix::fs::Uid::from_raw(cfg.process.uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
    ) {
        Ok(()) | Err(rustix::io::Errno::INVAL | rustix::io::Errno::PERM) => {}
        Err(e) => {
            return Err(err(
                format!("chown the pty peer to uid {}", cfg.process.uid),
                e,
            ))
        }
    }
    if let Some((rows, cols)) = cfg.process.console_size {
        tty::set_winsize(&peer, rows, cols).map_err(|e| err("set console size", e))?;
    }
    if mount {
        rootfs::mount_console(peer.as_fd())?;
    }
    let name = rustix::pty::ptsname(&master, Vec::new())
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = if name.is_empty() {
        "/dev/ptmx".to_string()
    } else {
        name
    };
    tty::send_fd(sock.as_fd(), master.as_fd(), name.as_bytes())
        .map_err(|e| err("send the pty over the console socket", e))?;
    drop(master);
    drop(sock);
    rustix::stdio::dup2_stdin(&peer).map_err(|e| err("dup pty to stdin", e))?;
    rustix::stdio::dup2_stdout(&peer).map_err(|e| err("dup pty to stdout", e))?;
    rustix::stdio::dup2_stderr(&peer).map_err(|e| err("dup pty to stderr", e))?;
    rustix::process::ioctl_tiocsctty(&peer)
        .map_err(|e| err("make the pty the controlling terminal", e))?;
    Ok(())
}

/// Reopen the O_PATH exec fifo for writing; this blocks until `start`.
/// Through the container's own /proc when it is a real procfs, so that the
/// parked init holds no extra procfs fd; through a private procfs
/// otherwise. Either way the result must be the fifo itself.
fn reopen_fifo(fifo: &OwnedFd, procfs: Option<Procfs>) -> Result<OwnedFd> {
    let want = rustix::fs::fstat(fifo).map_err(|e| err("stat exec fifo", e))?;
    let own_proc = rustix::fs::statfs("/proc")
        .map(|s| s.f_type == 0x9fa0)
        .unwrap_or(false);
    let w: OwnedFd = if own_proc {
        drop(procfs);
        rustix::fs::open(
            format!("/proc/self/fd/{}", fifo.as_raw_fd()),
            rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| err("reopen exec fifo", e))?
    } else {
        let pfs = match procfs {
            Some(p) => p,
            None => Procfs::new().map_err(|e| err("mount a private procfs", e))?,
        };
        pfs.reopen_fd(fifo.as_fd(), rustix::fs::OFlags::WRONLY)
            .map_err(|e| err("reopen exec fifo", e))?
    };
    let got = rustix::fs::fstat(&w).map_err(|e| err("stat exec fifo", e))?;
    if (got.st_dev, got.st_ino) != (want.st_dev, want.st_ino) {
        return Err(Error::Invalid(
            "reopened exec fifo is not the exec fifo".into(),
        ));
    }
    Ok(w)
}

/// This process's host pid, as P put it in the state document.
pub(crate) fn hook_pid(state: &str) -> i32 {
    serde_json::from_str::<serde_json::Value>(state)
        .ok()
        .and_then(|v| v["pid"].as_i64())
        .unwrap_or(0) as i32
}

/// process.args and process.env as C strings for execve.
pub(crate) fn argv_envp(p: &berth_oci::Process) -> Result<(Vec<CString>, Vec<CString>)> {
    let c = |v: &[String], what: &str| -> Result<Vec<CString>> {
        v.iter()
            .map(|a| CString::new(a.as_bytes()))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| Error::Invalid(format!("process.{what} holds a NUL byte")))
    };
    Ok((c(&p.args, "args")?, c(&process_env(p), "env")?))
}

/// The process's environment as runc gives it: process.env, plus `HOME` when it has none
/// (the user's home in the container's /etc/passwd, else "/"). Read inside the container's
/// root.
pub(crate) fn process_env(p: &berth_oci::Process) -> Vec<String> {
    let mut env = p.env.clone();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        let home = std::fs::read_to_string("/etc/passwd")
            .ok()
            .and_then(|t| home_of(&t, p.uid))
            .unwrap_or_else(|| "/".to_string());
        env.push(format!("HOME={home}"));
    }
    env
}

/// The home directory of `uid` in passwd text, if it has a non-empty one.
fn home_of(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 7 && f[2].parse() == Ok(uid) && !f[5].is_empty()).then(|| f[5].to_string())
    })
}

/// lo up in a network namespace the runtime made, as crun does: a container without
/// other interfaces (an engine's `--network none`) can still talk to itself, and the
/// engine needs no step between create and start for it. One ioctl.
fn loopback_up() -> Result<()> {
    let sock = rustix::net::socket_with(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::DGRAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| err("open a socket to set lo up", e))?;
    match berth_sys::netdev::set_up(sock.as_fd(), "lo") {
        Ok(()) => Ok(()),
        // A namespace whose owner we are not may refuse it; the container still runs.
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => Ok(()),
        Err(e) => Err(err("set lo up", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::home_of;

    #[test]
    fn home_from_passwd() {
        let t = "root:x:0:0:root:/root:/bin/sh\nu:x:1000:1000::/home/u:/bin/sh\nn:x:7:7:::\n";
        assert_eq!(home_of(t, 0).as_deref(), Some("/root"));
        assert_eq!(home_of(t, 1000).as_deref(), Some("/home/u"));
        assert_eq!(home_of(t, 7), None);
        assert_eq!(home_of(t, 42), None);
    }
}
