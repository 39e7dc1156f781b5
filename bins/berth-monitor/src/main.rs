//! berth-monitor: one per running container (the role conmon plays for podman).
//!
//! `berth-monitor --root R --id ID --ready-fd N [--attach-wait]`
//!
//! It becomes a session leader and the child subreaper, runs `runtime create` with stdio it
//! holds (pipes, or the pty master from --console-socket), `runtime start`, writes "ok\n"
//! or "error: MSG\n" on fd N, then serves one single-threaded poll(2) loop: container output
//! to the json-file log and attached clients, the socket (attach, stop, kill, wait), the
//! container's exit (pidfd), health probes and timers. See docs/engine.md and proto.rs.
//! Kept small on purpose: no async runtime, no argument parser, few allocations.
#![forbid(unsafe_code)]

mod health;
mod run;

use berth_engine::layout::Layout;
use std::io::Write;
use std::path::PathBuf;

pub struct Args {
    pub root: PathBuf,
    pub id: String,
    pub ready_fd: i32,
    pub attach_wait: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args_os().skip(1);
    let (mut root, mut id, mut fd, mut wait) = (None, None, None, false);
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
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let id = id.ok_or("--id is required")?;
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("bad container id {id:?}"));
    }
    Ok(Args {
        root: root.ok_or("--root is required")?,
        id,
        ready_fd: fd.ok_or("--ready-fd is required")?,
        attach_wait: wait,
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
    let ready = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/self/fd/{}", args.ready_fd))
        .ok();
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
            .open(&mlog_path)
        {
            let _ = writeln!(f, "panic: {info}");
        }
    }));
    let mlog = MonLog(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(layout.monitor_log_path(&args.id))
            .ok(),
    );
    let _ = std::env::set_current_dir("/");
    let _ = rustix::process::setsid();
    let code = run::main(layout, args, ready, mlog);
    std::process::exit(code);
}

/// An error and its sources, joined with ": ".
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.ends_with(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}
