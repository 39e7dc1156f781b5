//! berth-monitor: one per running container (the role conmon plays for podman).
//!
//! `berth-monitor --root R --id ID --ready-fd N [--attach-wait]`
//! `berth-monitor --root R --id ID --adopt` (what a keeper execs after its monitor died)
//!
//! It becomes a session leader and a child subreaper, then forks: the parent is the
//! keeper (keeper.rs), which only reaps; the child is the monitor. If the monitor is
//! killed, the container's init becomes the keeper's child, and the keeper execs a new
//! keeper + monitor pair that adopts the container, so its real exit status is recorded
//! and stop, kill, wait, health and the restart policy go on working. The monitor runs
//! `runtime create` with stdio it
//! holds (pipes, or the pty master from --console-socket), `runtime start`, writes "ok\n"
//! or "error: MSG\n" on fd N, then serves one single-threaded poll(2) loop: container output
//! to the json-file log and attached clients, the socket (attach, stop, kill, wait), the
//! container's exit (pidfd), health probes and timers. See docs/engine.md and proto.rs.
//! Kept small on purpose: no async runtime, no argument parser, few allocations.
#![forbid(unsafe_code)]

mod health;
mod keeper;
mod run;

use berth_engine::layout::Layout;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

pub struct Args {
    pub root: PathBuf,
    pub id: String,
    /// None with --adopt.
    pub ready_fd: Option<i32>,
    pub attach_wait: bool,
    /// Take over a container whose previous monitor died (exec'd by its keeper).
    pub adopt: bool,
    /// The keeper's report pipe (read, write), inherited across the keeper's exec so that
    /// reports the dead monitor did not read are not lost.
    pub report_fds: Option<(i32, i32)>,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args_os().skip(1);
    let (mut root, mut id, mut fd, mut wait, mut adopt) = (None, None, None, false, false);
    let mut report_fds = None;
    while let Some(a) = it.next() {
        let a = a.to_string_lossy().into_owned();
        let mut val = |name: &str| {
            it.next()
                .map(|v| v.to_string_lossy().into_owned())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "--root" => root = Some(PathBuf::from(val("--root")?)),
            "--id" => id = Some(val("--id")?),
            "--ready-fd" => {
                let v = val("--ready-fd")?;
                fd = Some(v.parse().map_err(|_| format!("bad --ready-fd {v:?}"))?)
            }
            "--attach-wait" => wait = true,
            "--adopt" => adopt = true,
            "--report-fds" => {
                let v = val("--report-fds")?;
                let p = v
                    .split_once(',')
                    .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
                    .ok_or_else(|| format!("bad --report-fds {v:?}"))?;
                report_fds = Some(p)
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let id = id.ok_or("--id is required")?;
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("bad container id {id:?}"));
    }
    if fd.is_none() && !adopt {
        return Err("--ready-fd is required".into());
    }
    Ok(Args {
        root: root.ok_or("--root is required")?,
        id,
        ready_fd: fd,
        attach_wait: wait,
        adopt,
        report_fds,
    })
}

/// The monitor's own error log (R/engine/containers/<id>/monitor.log).
pub struct MonLog(Option<std::fs::File>);

impl MonLog {
    pub fn say(&mut self, msg: &str) {
        if let Some(f) = &mut self.0 {
            let _ = writeln!(f, "{} {msg}", berth_engine::record::now_rfc3339());
        }
    }
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("berth-monitor: {e}");
            std::process::exit(2);
        }
    };
    // The ready pipe, reopened by path so no unsafe is needed; the inherited fd (and any
    // other stray fd) must not leak into the runtime and the container.
    let ready = args.ready_fd.and_then(|fd| {
        std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/self/fd/{fd}"))
            .ok()
    });
    let _ = berth_sys::process::cloexec_from(3);
    // A CLI that blocked signals for itself must not pass that on to the runtime and the
    // container through us.
    let _ = berth_sys::signal::SigMask::empty().restore();
    let layout = match Layout::open(&args.root) {
        Ok(l) => l,
        Err(e) => {
            if let Some(mut r) = ready {
                let _ = writeln!(r, "error: {}", chain(&e));
            }
            std::process::exit(1);
        }
    };
    // stderr is /dev/null: a panic's message goes to monitor.log.
    let mlog_path = layout.monitor_log_path(&args.id);
    std::panic::set_hook(Box::new(move |info| {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .custom_flags(libc_nofollow())
            .open(&mlog_path)
        {
            let _ = writeln!(f, "panic: {info}");
        }
    }));
    let mlog = MonLog(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .custom_flags(libc_nofollow())
            .open(layout.monitor_log_path(&args.id))
            .ok(),
    );
    let _ = std::env::set_current_dir("/");
    // (A keeper that exec'd itself is a session leader already.)
    let _ = rustix::process::setsid();
    if let Err(e) = rustix::process::set_child_subreaper(Some(rustix::process::getpid())) {
        fail_ready(ready, &format!("become a subreaper: {e}"));
        std::process::exit(1);
    }
    // The keeper's reports of children it reaped (an adopted container's init).
    let report = match args.report_fds {
        Some((r, w)) => berth_sys::process::inherited_fd(r)
            .and_then(|r| Ok((r, berth_sys::process::inherited_fd(w)?)))
            .map_err(|e| e.to_string()),
        None => {
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| e.to_string())
        }
    };
    let (report_r, report_w) = match report {
        Ok(p) => p,
        Err(e) => {
            fail_ready(ready, &format!("keeper pipe: {e}"));
            std::process::exit(1);
        }
    };
    match berth_sys::process::fork() {
        Ok(berth_sys::process::Fork::Parent(monitor)) => {
            // The monitor answers on the ready pipe; our copy must not keep it open. The
            // read end of the report pipe stays open here too: what the monitor did not
            // read survives it.
            drop(ready);
            let code = keeper::keep(&args, monitor, report_r, report_w, mlog);
            std::process::exit(code);
        }
        Ok(berth_sys::process::Fork::Child) => {
            drop(report_w);
            // Not inherited across fork: the container's init must become our child.
            if let Err(e) = rustix::process::set_child_subreaper(Some(rustix::process::getpid())) {
                fail_ready(ready, &format!("become a subreaper: {e}"));
                std::process::exit(1);
            }
            let code = run::main(layout, args, ready, mlog, report_r);
            std::process::exit(code);
        }
        Err(e) => {
            fail_ready(ready, &format!("fork the monitor: {e}"));
            std::process::exit(1);
        }
    }
}

fn fail_ready(ready: Option<std::fs::File>, msg: &str) {
    if let Some(mut r) = ready {
        let _ = writeln!(r, "error: {msg}");
    }
}

/// O_NOFOLLOW: files the monitor opens in the container's directory are never reached
/// through a symlink.
fn libc_nofollow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

/// An error and its sources (the engine's one printer).
pub fn chain(e: &dyn std::error::Error) -> String {
    berth_engine::error::chain(e)
}
