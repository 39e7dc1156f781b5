//! `berth exec`: the CLI's front-end over the engine's exec (crates/engine/src/exec.rs,
//! which says how the process is made). Here: the flags, the caller's env, and the copy
//! of the streams to the caller's terminal. With -t the CLI puts its terminal in raw mode
//! and copies both ways, passing window size changes on; signals the CLI gets go to the
//! runtime, which passes them to the process.
//!
//! Exit codes (docker's): the process's status; 126 when it cannot be invoked, 127 when
//! it is not found; 1 when the container does not exist or is not running ("container X
//! is not running", as dockerd answers).

use super::{fail, resolve};
use anyhow::{bail, Context, Result};
use berth_engine::exec::{ExecSpec, Started};
use berth_engine::layout::Layout;
use std::io::{IsTerminal, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(clap::Args)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short, long)]
    user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    workdir: Option<String>,
    /// Set environment variables
    #[arg(short, long)]
    env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long)]
    env_file: Vec<std::path::PathBuf>,
    /// Give extended privileges to the command
    #[arg(long)]
    privileged: bool,
    container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// `-e`/`--env-file` entries: KEY=VALUE, or a bare KEY taking the caller's value (and
/// dropped when the caller has none), as docker.
fn env_entries(a: &ExecArgs) -> Result<Vec<String>> {
    let mut raw: Vec<String> = Vec::new();
    for f in &a.env_file {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("read env file {}", f.display()))?;
        for l in text.lines() {
            let l = l.trim_start();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            raw.push(l.to_string());
        }
    }
    raw.extend(a.env.iter().cloned());
    let mut out = Vec::new();
    for e in raw {
        match e.split_once('=') {
            Some(("", _)) => bail!("invalid environment variable {e:?}: empty name"),
            Some(_) => out.push(e),
            None => {
                if let Ok(v) = std::env::var(&e) {
                    out.push(format!("{e}={v}"));
                }
            }
        }
    }
    Ok(out)
}

fn copy_winsize(master: BorrowedFd<'_>) {
    if let Some(ws) = crate::term::size() {
        let _ = rustix::termios::tcsetwinsize(master, ws);
    }
}

/// Signals the CLI receives are passed to the runtime (which passes them to the process)
/// instead of ending the CLI.
struct Forward {
    flags: Vec<(i32, Arc<AtomicBool>)>,
}

impl Forward {
    fn install(from_terminal_too: bool) -> Forward {
        let mut sigs = vec![libc::SIGTERM, libc::SIGHUP];
        let mut ignore = vec![];
        if from_terminal_too {
            sigs.extend([libc::SIGINT, libc::SIGQUIT]);
        } else {
            // The terminal sends these to the runtime as well (same process group).
            ignore.extend([libc::SIGINT, libc::SIGQUIT]);
        }
        let mut flags = Vec::new();
        for s in sigs {
            let f = Arc::new(AtomicBool::new(false));
            if signal_hook::flag::register(s, f.clone()).is_ok() {
                flags.push((s, f));
            }
        }
        for s in ignore {
            let _ = signal_hook::flag::register(s, Arc::new(AtomicBool::new(false)));
        }
        Forward { flags }
    }

    fn pass(&self, pid: u32) {
        for (s, f) in &self.flags {
            if f.swap(false, Ordering::SeqCst) {
                if let (Some(p), Some(sig)) = (
                    rustix::process::Pid::from_raw(pid as i32),
                    rustix::process::Signal::from_named_raw(*s),
                ) {
                    let _ = rustix::process::kill_process(p, sig);
                }
            }
        }
    }
}

pub fn run(layout: &Layout, a: ExecArgs) -> i32 {
    match exec(layout, &a) {
        Ok(code) => code,
        Err(e) => fail(e),
    }
}

fn exec(layout: &Layout, a: &ExecArgs) -> Result<i32> {
    if a.tty && a.interactive && !a.detach && !std::io::stdin().is_terminal() {
        bail!("the input device is not a TTY");
    }
    let id = resolve(layout, &a.container)?;
    let spec = ExecSpec {
        command: a.command.clone(),
        tty: a.tty,
        stdin: a.interactive,
        detach: a.detach,
        user: a.user.clone(),
        workdir: a.workdir.clone(),
        env: env_entries(a)?,
        privileged: a.privileged,
        console_size: crate::term::size().map(|w| (w.ws_row, w.ws_col)),
    };
    let mut started = match berth_engine::exec::spawn(layout, &id, &spec) {
        Ok(s) => s,
        // A user the image does not know: the command cannot be invoked (docker's 126).
        Err(e) if berth_engine::exec::is_user_error(&e) => {
            crate::print_error(&e.into());
            return Ok(126);
        }
        Err(e) => return Err(e.into()),
    };
    let fwd = Forward::install(!std::io::stdin().is_terminal());
    let status = if a.detach {
        started.child.wait()?
    } else if a.tty {
        tty_session(&mut started, a.interactive, &fwd)?
    } else {
        pipe_session(&mut started, &fwd)?
    };
    let ended = started.finish(layout, status);
    if let (Some(msg), true) = (&ended.runtime_error, a.detach || a.tty) {
        // (Otherwise the runtime printed it on our stderr already.)
        eprintln!("Error: OCI runtime exec failed: {msg}");
    }
    Ok(ended.code)
}

/// Copies the process's stdout and stderr pipes to ours (and our stdin to its stdin pipe,
/// with -i) until the runtime reports the process's exit. What the process wrote before it
/// exited is copied; a process it left behind keeps only the pipes, which we stop reading.
fn pipe_session(st: &mut Started, fwd: &Forward) -> Result<std::process::ExitStatus> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    if let Some(to) = st.stdin.take() {
        // EOF on our stdin closes the pipe, which is the process's EOF.
        std::thread::spawn(move || {
            let mut to = std::fs::File::from(to);
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut to);
        });
    }
    let child = &mut st.child;
    let mut out: Option<OwnedFd> = st.stdout.take();
    let mut err: Option<OwnedFd> = st.stderr.take();
    for f in out.iter().chain(err.iter()) {
        rustix::io::ioctl_fionbio(f, true)?;
    }
    let mut buf = vec![0u8; 32 << 10];
    let mut done: Option<std::process::ExitStatus> = None;
    loop {
        fwd.pass(child.id());
        if done.is_none() {
            done = child.try_wait()?;
        }
        // Once the runtime is gone, copy what is buffered and stop.
        let timeout = Timespec {
            tv_sec: 0,
            tv_nsec: if done.is_some() { 0 } else { 20_000_000 },
        };
        let mut fds = Vec::with_capacity(2);
        if let Some(f) = &out {
            fds.push(PollFd::new(f, PollFlags::IN));
        }
        if let Some(f) = &err {
            fds.push(PollFd::new(f, PollFlags::IN));
        }
        if fds.is_empty() {
            break;
        }
        let n = match poll(&mut fds, Some(&timeout)) {
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        };
        let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
        drop(fds);
        if n == 0 {
            if done.is_some() {
                break;
            }
            continue;
        }
        let mut i = 0;
        for (slot, is_err) in [(&mut out, false), (&mut err, true)] {
            let Some(f) = slot.as_ref() else { continue };
            let r = ready[i];
            i += 1;
            if !r {
                continue;
            }
            match rustix::io::read(f, &mut buf) {
                Ok(0) => *slot = None,
                Ok(k) => {
                    let w = if is_err {
                        std::io::stderr().write_all(&buf[..k])
                    } else {
                        let mut o = std::io::stdout();
                        o.write_all(&buf[..k]).and_then(|_| o.flush())
                    };
                    if w.is_err() {
                        // Our reader went away: stop copying this stream.
                        *slot = None;
                    }
                }
                Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => {}
                Err(_) => *slot = None,
            }
        }
    }
    Ok(match done {
        Some(s) => s,
        None => child.wait()?,
    })
}

/// Proxies the pty to the CLI's terminal until the process is done.
fn tty_session(
    st: &mut Started,
    interactive: bool,
    fwd: &Forward,
) -> Result<std::process::ExitStatus> {
    let child = &mut st.child;
    let Some(master) = st.master.take() else {
        return Ok(child.wait()?);
    };
    copy_winsize(master.as_fd());
    let winch = Arc::new(AtomicBool::new(false));
    let _ = signal_hook::flag::register(libc::SIGWINCH, winch.clone());
    let _raw = crate::term::RawMode::enter();
    if interactive {
        let to = rustix::io::fcntl_dupfd_cloexec(&master, 0)?;
        std::thread::spawn(move || {
            let mut to = std::fs::File::from(to);
            let mut buf = [0u8; 4096];
            let mut stdin = std::io::stdin();
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
        });
    }
    let mut out = std::io::stdout();
    let mut buf = [0u8; 8192];
    let mut done: Option<std::process::ExitStatus> = None;
    loop {
        if winch.swap(false, Ordering::SeqCst) {
            copy_winsize(master.as_fd());
        }
        fwd.pass(child.id());
        let mut fds = [rustix::event::PollFd::new(
            &master,
            rustix::event::PollFlags::IN,
        )];
        let ts = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        let n = match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => 0,
            Err(e) => return Err(e.into()),
        };
        if n > 0 {
            match rustix::io::read(&master, &mut buf) {
                Ok(0) | Err(rustix::io::Errno::IO) => break,
                Ok(k) => {
                    if out.write_all(&buf[..k]).and_then(|_| out.flush()).is_err() {
                        break;
                    }
                    continue;
                }
                Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        if done.is_some() {
            // The runtime is gone and nothing more is pending.
            break;
        }
        if let Some(s) = child.try_wait()? {
            done = Some(s);
        }
    }
    Ok(match done {
        Some(s) => s,
        None => child.wait()?,
    })
}
