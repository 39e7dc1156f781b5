//! `berth exec`: `RUNTIME --root R exec --process FILE ID`, as containerd runs it. The
//! process is the container's own (bundle config.json) with args, env, cwd and user
//! replaced; the user is resolved through the image's /etc/passwd and /etc/group, read
//! with RESOLVE_IN_ROOT from an fd of the mounted rootfs.
//!
//! Without -t the process gets pipes whose other ends the CLI holds and copies (stdin only
//! with -i): no fd of the caller ever enters the container, so a process the exec leaves
//! behind cannot keep the caller's terminal or reopen its files through /proc/self/fd
//! (issue 16, item 1; docker and podman do the same). With -t the runtime sends the pty
//! master over a console socket (SCM_RIGHTS); the CLI puts its terminal in raw mode and
//! copies both ways, passing window size changes on.
//!
//! Exit codes (docker's): the process's status; 126 when it cannot be invoked, 127 when
//! it is not found (from the runtime's error, read from its --log); 1 when the container
//! does not exist or is not running ("container X is not running", as dockerd answers).

use super::{fail, resolve};
use anyhow::{anyhow, bail, Context, Result};
use berth_engine::layout::Layout;
use berth_engine::record::Status;
use std::io::{IsTerminal, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

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

/// `base` with each of `over` replacing the entry of the same name.
fn merge_env(base: &[String], over: &[String]) -> Vec<String> {
    let mut v: Vec<String> = base.to_vec();
    for o in over {
        let k = o.split('=').next().unwrap_or("");
        v.retain(|x| x.split('=').next() != Some(k));
        v.push(o.clone());
    }
    v
}

/// The process document for `runtime exec --process`.
fn process_json(layout: &Layout, id: &str, a: &ExecArgs) -> Result<serde_json::Value> {
    let p = layout.bundle_dir(id).join("config.json");
    let spec: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&p).with_context(|| format!("read {}", p.display()))?,
    )
    .with_context(|| format!("decode {}", p.display()))?;
    let mut proc_ = spec
        .get("process")
        .cloned()
        .ok_or_else(|| anyhow!("{} has no process", p.display()))?;
    proc_["args"] = serde_json::json!(a.command);
    proc_["terminal"] = a.tty.into();
    // The container's own console size (from `run -t`) is not this exec's: the pty
    // starts at the CLI terminal's size (set before the process runs, so its first
    // `stty size` is right), and follows it on SIGWINCH.
    if let Some(o) = proc_.as_object_mut() {
        o.remove("consoleSize");
    }
    if a.tty {
        if let Some(ws) = crate::term::size() {
            proc_["consoleSize"] = serde_json::json!({"height": ws.ws_row, "width": ws.ws_col});
        }
    }
    let base: Vec<String> = proc_
        .get("env")
        .and_then(|e| serde_json::from_value(e.clone()).ok())
        .unwrap_or_default();
    let mut over = env_entries(a)?;
    if a.tty && !over.iter().any(|e| e.starts_with("TERM=")) {
        over.insert(0, "TERM=xterm".into());
    }
    proc_["env"] = serde_json::json!(merge_env(&base, &over));
    if let Some(w) = &a.workdir {
        if !w.starts_with('/') {
            bail!("the working directory {w:?} is invalid, it needs to be an absolute path");
        }
        proc_["cwd"] = w.clone().into();
    }
    if let Some(u) = &a.user {
        let rootfs = spec
            .pointer("/root/path")
            .and_then(|r| r.as_str())
            .ok_or_else(|| anyhow!("{} has no root.path", p.display()))?;
        let fd = rustix::fs::open(
            rootfs,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .with_context(|| format!("open rootfs {rootfs}"))?;
        let user = berth_image::spec::resolve_user(&fd, u)?;
        let mut uj = serde_json::to_value(&user)?;
        if let Some(o) = uj.as_object_mut() {
            o.remove("username");
        }
        proc_["user"] = uj;
    }
    if a.privileged {
        let all = serde_json::json!(berth_engine::spec::kernel_caps());
        proc_["capabilities"] = serde_json::json!({
            "bounding": all, "effective": all, "permitted": all,
        });
    }
    Ok(proc_)
}

/// The runtime's error lines (`--log-format json`, level error).
fn runtime_errors(log: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["level"] == "error")
        .filter_map(|v| v["msg"].as_str().map(str::to_string))
        .collect()
}

/// docker's status for an exec the runtime could not start.
fn invoke_failure_code(msg: &str) -> i32 {
    let m = msg.to_ascii_lowercase();
    // The runtime says it as runc does: "exec failed: <why>".
    let m = m.strip_prefix("exec failed: ").unwrap_or(&m);
    // A missing working directory is "cannot invoke" (126), a missing program 127.
    if m.starts_with("chdir") {
        126
    } else if m.contains("executable file not found") || m.contains("no such file or directory") {
        127
    } else {
        // Found but not runnable (permission denied, exec format error, a bad cwd or
        // user ...): it cannot be invoked.
        126
    }
}

fn status_code(s: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
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
    let cfg = layout.load_config(&id)?;
    let st = berth_engine::status::current(layout, &id)?;
    if !berth_engine::status::is_running(&st) {
        bail!("container {id} is not running");
    }
    match st.status {
        Status::Paused => bail!("container {id} is paused, unpause the container before exec"),
        Status::Restarting => {
            bail!("container {id} is restarting, wait until the container is running")
        }
        _ => {}
    }
    // A user the image does not know: the command cannot be invoked (docker's 126).
    let process = match process_json(layout, &id, a) {
        Ok(p) => p,
        Err(e) if e.to_string().starts_with("user ") => {
            crate::print_error(&e);
            return Ok(126);
        }
        Err(e) => return Err(e),
    };
    let exec_id = berth_engine::create::new_id()?;
    // Files for this exec (short path: the console socket's name must fit sun_path).
    let tmp = TempDir::new(&exec_id)?;
    let pfile = tmp.path().join("process.json");
    std::fs::write(&pfile, serde_json::to_vec(&process)?)
        .with_context(|| format!("write {}", pfile.display()))?;
    let log = tmp.path().join("runtime.log");
    let mut attrs = berth_engine::create::attrs(&cfg);
    attrs.insert("execID".into(), exec_id.clone());
    let _ = berth_engine::events::emit(
        layout,
        "container",
        &format!("exec_start: {}", a.command.join(" ")),
        &id,
        attrs.clone(),
    );

    let mut cmd = Command::new(&cfg.runtime);
    cmd.arg("--root")
        .arg(&cfg.runtime_root)
        .arg("--log")
        .arg(&log)
        .args(["--log-format", "json", "exec", "--process"])
        .arg(&pfile);
    if a.detach {
        cmd.arg("--detach");
    }
    let console = if a.tty {
        let p = tmp.path().join("console.sock");
        let l = std::os::unix::net::UnixListener::bind(&p)
            .with_context(|| format!("bind {}", p.display()))?;
        l.set_nonblocking(true)?;
        cmd.arg("--console-socket").arg(&p);
        Some(l)
    } else {
        None
    };
    cmd.arg(&id);
    // Never the caller's own fds (see the module doc): null, or pipes we copy.
    if a.detach || a.tty {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
    } else {
        cmd.stdin(if a.interactive {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("run {}", cfg.runtime))?;
    let fwd = Forward::install(!std::io::stdin().is_terminal());
    let status = match console {
        Some(l) if !a.detach => tty_session(&mut child, &l, a.interactive, &fwd)?,
        Some(l) => {
            // Detached with a tty: nobody reads it, as docker's `exec -dt`; take the master
            // so the runtime can go on, and drop it.
            let _ = accept_master(&mut child, &l);
            child.wait()?
        }
        None if a.detach => child.wait()?,
        None => pipe_session(&mut child, &fwd)?,
    };
    let errors = runtime_errors(&log);
    let code = if let Some(msg) = errors.last() {
        let code = invoke_failure_code(msg);
        if a.detach || a.tty {
            // (Otherwise the runtime printed it on our stderr already.)
            eprintln!("Error: OCI runtime exec failed: {msg}");
        }
        code
    } else {
        status_code(status)
    };
    if !a.detach {
        attrs.insert("exitCode".into(), code.to_string());
        let _ = berth_engine::events::emit(layout, "container", "exec_die", &id, attrs);
    }
    Ok(code)
}

/// A private directory under the system's temp dir, removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(exec_id: &str) -> Result<TempDir> {
        use std::os::unix::fs::DirBuilderExt;
        let p = std::env::temp_dir().join(format!("berth-exec-{}", &exec_id[..16]));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&p)
            .with_context(|| format!("create {}", p.display()))?;
        Ok(TempDir(p))
    }
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Waits for the runtime to connect to the console socket and send the pty master.
fn accept_master(
    child: &mut std::process::Child,
    l: &std::os::unix::net::UnixListener,
) -> Result<Option<OwnedFd>> {
    loop {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false)?;
                return Ok(Some(
                    berth_engine::proto::recv_fd(s.as_fd()).context("receive the pty")?,
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if child.try_wait()?.is_some() {
                    return Ok(None);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Copies the process's stdout and stderr pipes to ours (and our stdin to its stdin pipe,
/// with -i) until the runtime reports the process's exit. What the process wrote before it
/// exited is copied; a process it left behind keeps only the pipes, which we stop reading.
fn pipe_session(
    child: &mut std::process::Child,
    fwd: &Forward,
) -> Result<std::process::ExitStatus> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    if let Some(to) = child.stdin.take() {
        // EOF on our stdin closes the pipe, which is the process's EOF.
        std::thread::spawn(move || {
            let mut to = to;
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut to);
        });
    }
    let mut out: Option<OwnedFd> = child.stdout.take().map(OwnedFd::from);
    let mut err: Option<OwnedFd> = child.stderr.take().map(OwnedFd::from);
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
    child: &mut std::process::Child,
    l: &std::os::unix::net::UnixListener,
    interactive: bool,
    fwd: &Forward,
) -> Result<std::process::ExitStatus> {
    let Some(master) = accept_master(child, l)? else {
        return Ok(child.wait()?);
    };
    copy_winsize(master.as_fd());
    let winch = Arc::new(AtomicBool::new(false));
    let _ = signal_hook::flag::register(libc::SIGWINCH, winch.clone());
    let _raw = crate::term::RawMode::enter();
    if interactive {
        let to = rustix::io::dup(&master)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_and_codes() {
        let base = vec!["PATH=/bin".to_string(), "A=1".to_string()];
        assert_eq!(
            merge_env(&base, &["A=2".into(), "B=3".into()]),
            vec!["PATH=/bin", "A=2", "B=3"]
        );
        assert_eq!(
            invoke_failure_code(r#"exec: "nope": executable file not found in $PATH"#),
            127
        );
        assert_eq!(invoke_failure_code("exec /etc: permission denied"), 126);
        assert_eq!(
            invoke_failure_code("chdir to cwd /nope: No such file or directory (os error 2)"),
            126
        );
        assert_eq!(
            invoke_failure_code(
                "exec failed: chdir to cwd /nope: No such file or directory (os error 2)"
            ),
            126
        );
    }
}
