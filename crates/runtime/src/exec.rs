//! `exec`: a new process inside a running container.
//!
//! ```text
//!  P (runtime)                      C (joiner)                     X (the process)
//!  fork C ----------------------->  waits for [E1]
//!  put C in the cgroup
//!  [E1] Go ---------------------->  setns() into init's namespaces
//!                                   (user first, mount last)
//!                                   fork X -------------------->  waits for [E3]
//!  [E2] <-----------------------   Pid(pid); C exits
//!  reap C, pid file
//!  [E3] Go ------------------------------------------------------>  console, rlimits, user, caps,
//!                                                                  cwd check, no_new_privs, execve
//!  EOF on the socket <------------------------------------------  (CLOEXEC: closed by execve)
//!  or Error{msg}
//! ```
//!
//! X never holds a host fd beyond stdio, the console socket and the sync
//! socket, and is non-dumpable until execve (CVE-2016-9962).

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use berth_oci::{Config, LinuxNamespaceType as NS};
use berth_sys::process::{exit_now, fork, Fork};
use serde::{Deserialize, Serialize};

use crate::container::{self, Container};
use crate::state::{self, Status};
use crate::{error_chain, init, timing, Error, Result};

/// What `exec` was asked for.
pub struct ExecOpts {
    pub process: berth_oci::Process,
    pub seccomp: Option<crate::seccomp::Prepared>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console: Option<OwnedFd>,
    pub preserve_fds: u32,
    /// `--cgroup` arguments (runc's): "path" (every hierarchy) or
    /// "controller[,controller...]:path", repeatable.
    pub cgroup: Vec<String>,
    /// Exec into a paused container too (runc's --ignore-paused): the new
    /// process joins the frozen cgroup and runs once the container is resumed.
    pub ignore_paused: bool,
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(tag = "t")]
enum Msg {
    Go {
        /// [E3]: the state document for a seccomp listener.
        state: Option<String>,
    },
    Pid {
        pid: i32,
    },
    Error {
        msg: String,
    },
}

fn send(fd: &OwnedFd, m: &Msg) -> std::io::Result<()> {
    let d = serde_json::to_vec(m).expect("serialises");
    rustix::net::send(fd, &d, rustix::net::SendFlags::NOSIGNAL)?;
    Ok(())
}

/// None on EOF.
fn recv(fd: &OwnedFd) -> std::io::Result<Option<Msg>> {
    match crate::sync::recv_packet(fd)? {
        None => Ok(None),
        Some(p) => serde_json::from_slice(&p)
            .map(Some)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
    }
}

/// The container's config as it was created, with this process in place.
pub fn container_config(c: &Container) -> Result<Config> {
    let p = c.dir.path.join(state::CONFIG_FILE);
    let data = std::fs::read(&p).map_err(|e| Error::io(format!("read {}", p.display()), e))?;
    let spec: berth_oci::Spec = serde_json::from_slice(&data).map_err(|e| Error::CorruptState {
        path: p.clone(),
        source: e,
    })?;
    Ok(berth_oci::validate(spec, &c.state.bundle)?)
}

/// Run `opts.process` in container `c`; returns the host pid and, when not
/// detached, the exit status.
pub fn exec(c: &Container, mut cfg: Config, mut opts: ExecOpts) -> Result<(i32, Option<i32>)> {
    match c.status() {
        Status::Running | Status::Created => {}
        Status::Paused if opts.ignore_paused => {}
        Status::Paused => {
            return Err(Error::BadState(
                "cannot exec in a paused container (use --ignore-paused to override)".into(),
            ))
        }
        _ => return Err(Error::BadState("cannot exec in a stopped container".into())),
    }
    if opts.process.terminal && opts.console.is_none() {
        return Err(Error::Invalid(
            "cannot allocate tty if berth-runtime will detach without setting console socket"
                .into(),
        ));
    }
    cfg.process = opts.process.clone();
    let init_pid = c.state.pid;
    // Namespaces of init that differ from ours, opened now, by the pid whose
    // start time we just checked.
    let mut joins: Vec<(NS, File)> = Vec::new();
    for (kind, name) in [
        (NS::User, "user"),
        (NS::Ipc, "ipc"),
        (NS::Uts, "uts"),
        (NS::Network, "net"),
        (NS::Pid, "pid"),
        (NS::Cgroup, "cgroup"),
        (NS::Time, "time"),
        (NS::Mount, "mnt"),
    ] {
        let theirs = format!("/proc/{init_pid}/ns/{name}");
        let f = File::open(&theirs).map_err(|e| Error::io(format!("open {theirs}"), e))?;
        let same = std::fs::metadata(format!("/proc/self/ns/{name}"))
            .ok()
            .zip(f.metadata().ok())
            .is_some_and(|(a, b)| a.ino() == b.ino() && a.dev() == b.dev());
        if !same {
            joins.push((kind, f));
        }
    }
    if !container::same_process(init_pid, c.state.pid_start_time) {
        return Err(Error::BadState("cannot exec in a stopped container".into()));
    }
    let sub = berth_cgroups::parse_sub_cgroups(&opts.cgroup)?;
    let mut cgroup_dirs: Vec<PathBuf> =
        berth_cgroups::sub_cgroup_paths(&c.state.cgroup_paths, &sub)?
            .into_values()
            .collect();
    cgroup_dirs.sort();
    cgroup_dirs.dedup();
    timing::mark("namespaces, cgroups of init");
    timing::note(|| {
        let names: Vec<String> = joins
            .iter()
            .map(|(k, _)| format!("{k:?}").to_lowercase())
            .collect();
        format!(
            "joining namespaces [{}] of init {init_pid}",
            names.join(" ")
        )
    });

    let (p_end, c_end) = rustix::net::socketpair(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::SEQPACKET,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| Error::io("create exec socketpair".into(), e.into()))?;
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
        .map_err(|e| Error::io("become child subreaper".into(), e.into()))?;
    let console = opts.console.take();
    let c_pid = match fork().map_err(|e| Error::io("fork".into(), e))? {
        Fork::Child => {
            drop(p_end);
            joiner(
                &cfg,
                c_end,
                joins,
                console,
                opts.preserve_fds,
                opts.seccomp.take(),
            )
        }
        Fork::Parent(pid) => pid,
    };
    drop(c_end);
    drop(console);
    timing::mark("fork");
    timing::note(|| format!("forked {c_pid}: it joins the namespaces and forks the process"));
    let kill_c = |pid: i32| {
        if let Some(p) = rustix::process::Pid::from_raw(pid) {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            let _ = rustix::process::waitpid(Some(p), rustix::process::WaitOptions::empty());
        }
    };
    for d in &cgroup_dirs {
        // Not created: a missing sub-cgroup is refused in runc's words.
        let procs = d.join("cgroup.procs");
        let w = std::fs::OpenOptions::new()
            .write(true)
            .open(&procs)
            .map_err(|e| (format!("open {}", procs.display()), e))
            .and_then(|mut f| {
                std::io::Write::write_all(&mut f, c_pid.to_string().as_bytes())
                    .map_err(|e| (format!("write {}", procs.display()), e))
            });
        if let Err((what, e)) = w {
            kill_c(c_pid);
            return Err(Error::io(
                format!("error adding pid {c_pid} to cgroups: failed to write {c_pid}: {what}"),
                e,
            ));
        }
    }
    let step = |m: std::io::Result<Option<Msg>>| -> Result<Option<Msg>> {
        match m {
            Ok(Some(Msg::Error { msg })) => Err(Error::Child(msg)),
            Ok(m) => Ok(m),
            Err(e) => Err(Error::io("exec sync".into(), e)),
        }
    };
    timing::mark("cgroup placement");
    send(&p_end, &Msg::Go { state: None }).map_err(|e| Error::io("[E1] go".into(), e))?;
    let x_pid = match step(recv(&p_end)) {
        Ok(Some(Msg::Pid { pid })) => pid,
        Ok(other) => {
            kill_c(c_pid);
            return Err(Error::Protocol(format!("[E2] unexpected {other:?}")));
        }
        Err(e) => {
            kill_c(c_pid);
            return Err(e);
        }
    };
    let _ = rustix::process::waitpid(
        rustix::process::Pid::from_raw(c_pid),
        rustix::process::WaitOptions::empty(),
    );
    timing::mark("[E1]/[E2] setns, fork");
    timing::note(|| format!("[E2] process {x_pid} forked in the container, {c_pid} exited"));
    let fail = |e: Error| -> Error {
        if let Some(p) = rustix::process::Pid::from_raw(x_pid) {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        }
        e
    };
    let state = crate::hooks::state_json(&cfg, &c.state.id, "running", x_pid);
    send(&p_end, &Msg::Go { state: Some(state) })
        .map_err(|e| fail(Error::io("[E3] go".into(), e)))?;
    // EOF means execve closed X's end: the program runs.
    match step(recv(&p_end)) {
        Ok(None) => {}
        Ok(Some(m)) => return Err(fail(Error::Protocol(format!("[E3] unexpected {m:?}")))),
        Err(e) => {
            let _ = rustix::process::waitpid(
                rustix::process::Pid::from_raw(x_pid),
                rustix::process::WaitOptions::empty(),
            );
            return Err(e);
        }
    }
    timing::mark("[E3] user, caps, seccomp, exec");
    timing::note(|| {
        format!(
            "[E3] process {x_pid} executed {:?}",
            cfg.process.args.first().map(String::as_str).unwrap_or("")
        )
    });
    if let Some(p) = &opts.pid_file {
        state::write_pid_file(p, x_pid).map_err(fail)?;
    }
    Ok((x_pid, None))
}

/// C: join the namespaces, fork X, report its pid.
fn joiner(
    cfg: &Config,
    sock: OwnedFd,
    joins: Vec<(NS, File)>,
    console: Option<OwnedFd>,
    preserve_fds: u32,
    seccomp: Option<crate::seccomp::Prepared>,
) -> ! {
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    let fail = |sock: &OwnedFd, e: Error| -> ! {
        let _ = send(
            sock,
            &Msg::Error {
                msg: error_chain(&e),
            },
        );
        exit_now(1)
    };
    match recv(&sock) {
        Ok(Some(Msg::Go { .. })) => {}
        _ => exit_now(1),
    }
    for (kind, f) in &joins {
        let t = match kind {
            NS::User => rustix::thread::LinkNameSpaceType::User,
            NS::Ipc => rustix::thread::LinkNameSpaceType::InterProcessCommunication,
            NS::Uts => rustix::thread::LinkNameSpaceType::HostNameAndNISDomainName,
            NS::Network => rustix::thread::LinkNameSpaceType::Network,
            NS::Pid => rustix::thread::LinkNameSpaceType::ProcessID,
            NS::Cgroup => rustix::thread::LinkNameSpaceType::ControlGroup,
            NS::Time => rustix::thread::LinkNameSpaceType::Time,
            NS::Mount => rustix::thread::LinkNameSpaceType::Mount,
        };
        if let Err(e) = rustix::thread::move_into_link_name_space(f.as_fd(), Some(t)) {
            fail(&sock, Error::io(format!("join {kind} namespace"), e.into()));
        }
    }
    drop(joins);
    match fork() {
        Ok(Fork::Child) => process(cfg, sock, console, preserve_fds, seccomp),
        Ok(Fork::Parent(pid)) => {
            if send(&sock, &Msg::Pid { pid }).is_err() {
                exit_now(1)
            }
            exit_now(0)
        }
        Err(e) => fail(&sock, Error::io("fork".into(), e)),
    }
}

/// X: become the requested process.
fn process(
    cfg: &Config,
    sock: OwnedFd,
    console: Option<OwnedFd>,
    preserve_fds: u32,
    seccomp: Option<crate::seccomp::Prepared>,
) -> ! {
    let res = (|| -> Result<std::io::Error> {
        let state = match recv(&sock) {
            Ok(Some(Msg::Go { state })) => state.unwrap_or_default(),
            _ => exit_now(1),
        };
        let pid = init::hook_pid(&state);
        rustix::process::setsid().map_err(|e| Error::io("setsid".into(), e.into()))?;
        if cfg.process.terminal {
            init::setup_console(cfg, console, false)?;
        }
        for r in &cfg.process.rlimits {
            init::set_rlimit(r)?;
        }
        init::set_scheduling(&cfg.process)?;
        // execCPUAffinity: the initial set on joining, the final one for the
        // program (both here, in the container's cgroup, before execve).
        if let Some(a) = &cfg.process.exec_cpu_affinity {
            for (what, cpus) in [("initial", &a.initial), ("final", &a.last)] {
                if let Some(cpus) = cpus {
                    berth_sys::sched::set_cpu_affinity(cpus).map_err(|e| {
                        Error::io(format!("set execCPUAffinity.{what} {cpus:?}"), e)
                    })?;
                }
            }
        }
        let exe = init::find_executable(cfg)?;
        let (argv, envp) = init::argv_envp(&cfg.process)?;
        // As init: the cwd while still privileged, again as the user only if refused.
        let entered = init::chdir_privileged(&cfg.process.cwd)?;
        let early_filter = !cfg.process.no_new_privileges && seccomp.is_some();
        if early_filter {
            if let Some(sc) = &seccomp {
                sc.install(&state, pid, oci_spec::runtime::ContainerState::Running)?;
            }
        }
        init::set_user_and_caps(cfg)?;
        if !entered {
            init::cwd_as_user(&cfg.process.cwd, early_filter)?;
        }
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(
            cfg.process.umask.unwrap_or(0o022) & 0o777,
        ));
        if cfg.process.no_new_privileges {
            rustix::thread::set_no_new_privs(true)
                .map_err(|e| Error::io("set no_new_privs".into(), e.into()))?;
            if let Some(sc) = &seccomp {
                sc.install(&state, pid, oci_spec::runtime::ContainerState::Running)?;
            }
        }
        let keep = 3 + preserve_fds as i32;
        berth_sys::process::cloexec_from(keep)
            .map_err(|e| Error::io("mark fds close-on-exec".into(), e))?;
        for fd in 3..keep {
            let _ = berth_sys::process::clear_cloexec(fd);
        }
        berth_sys::signal::reset_dispositions();
        let _ = berth_sys::signal::SigMask::empty().restore();
        // The sync socket is CLOEXEC: a successful execve closes it, and the
        // runtime sees EOF.
        Ok(berth_sys::process::execve(&exe, &argv, &envp))
    })();
    let e = match res {
        Ok(io) => Error::io(format!("exec {}", cfg.process.args[0]), io),
        Err(e) => e,
    };
    let _ = send(
        &sock,
        &Msg::Error {
            msg: error_chain(&e),
        },
    );
    exit_now(1)
}

/// Wait for an exec'd process in the foreground, forwarding signals and
/// proxying its pty; returns its exit status.
pub fn wait_foreground(pid: i32, pty: Option<OwnedFd>) -> Result<i32> {
    let (sigfd, _old) = berth_sys::signal::block_all_signalfd()
        .map_err(|e| Error::io("block signals".into(), e))?;
    container::attend(pid, &sigfd, pty.as_ref())
}
