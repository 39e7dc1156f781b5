//! Operations on an existing container: status, start, kill, delete, and
//! the foreground `run` loop.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use berth_cgroups::Manager;

use crate::hooks::{self, HookKind};
use crate::spawn::Created;
use crate::state::{self, ContainerDir, Phase, Root, State, Status};
use crate::{timing, Error, Result};

pub struct Container {
    pub dir: ContainerDir,
    pub state: State,
}

/// Is `pid` still the process recorded at create time?
pub fn same_process(pid: i32, start: u64) -> bool {
    pid > 0 && state::process_start_time(pid) == Some(start)
}

/// Wait until `pid` is gone (or a zombie), at most `ms` milliseconds.
pub fn wait_gone(pid: i32, ms: u64) -> bool {
    // A pidfd reads as ready when the process exits, child or not: no naps in between.
    if let Some(fd) = rustix::process::Pid::from_raw(pid)
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok())
    {
        if state::process_start_time(pid).is_none() {
            return true;
        }
        let ts = rustix::event::Timespec {
            tv_sec: (ms / 1000) as i64,
            tv_nsec: ((ms % 1000) * 1_000_000) as i64,
        };
        loop {
            let mut pfd = [rustix::event::PollFd::new(
                &fd,
                rustix::event::PollFlags::IN,
            )];
            match rustix::event::poll(&mut pfd, Some(&ts)) {
                Ok(n) => return n > 0,
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => break,
            }
        }
    }
    let end = Instant::now() + Duration::from_millis(ms);
    let mut nap = Duration::from_micros(200);
    while state::process_start_time(pid).is_some() {
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(10));
    }
    true
}

pub fn status_of(dir: &ContainerDir, st: &State) -> Status {
    let alive = same_process(st.pid, st.pid_start_time);
    match st.phase {
        Phase::Creating => {
            if alive {
                Status::Creating
            } else {
                Status::Stopped
            }
        }
        Phase::Created | Phase::Started => {
            if !alive {
                return Status::Stopped;
            }
            if st.phase == Phase::Created && dir.fifo_path().exists() {
                return Status::Created;
            }
            if cgroup_of(st).is_some_and(|c| c.is_frozen().unwrap_or(false)) {
                return Status::Paused;
            }
            Status::Running
        }
    }
}

pub fn cgroup_of(st: &State) -> Option<Box<dyn Manager>> {
    if st.cgroup_paths.is_empty() {
        return None;
    }
    berth_cgroups::load_manager(&st.cgroup_paths, hierarchy().ok()?).ok()
}

/// The host's cgroup hierarchy. It does not change while a command runs:
/// probe it (read mountinfo) once per process, not at every status check.
pub(crate) fn hierarchy() -> Result<&'static berth_cgroups::Hierarchy> {
    static HIERARCHY: std::sync::OnceLock<berth_cgroups::Hierarchy> = std::sync::OnceLock::new();
    if let Some(h) = HIERARCHY.get() {
        return Ok(h);
    }
    let h = berth_cgroups::probe()?;
    Ok(HIERARCHY.get_or_init(|| h))
}

impl Container {
    /// Open (and lock) an existing container.
    pub fn open(root: &Root, id: &str) -> Result<Self> {
        let dir = root.open(id)?;
        let state = dir.load()?;
        Ok(Container { dir, state })
    }

    /// Open for reading or signalling, without the lock.
    pub fn open_unlocked(root: &Root, id: &str) -> Result<Self> {
        let dir = root.open_unlocked(id)?;
        let state = dir.load()?;
        Ok(Container { dir, state })
    }

    pub fn status(&self) -> Status {
        status_of(&self.dir, &self.state)
    }

    /// runc's `state` document.
    pub fn runc_state(&self) -> serde_json::Value {
        runc_state(&self.state, self.status())
    }

    pub fn start(&mut self) -> Result<Vec<String>> {
        match self.status() {
            Status::Created => {}
            Status::Stopped => {
                return Err(Error::BadState(
                    "cannot start a container that has stopped".into(),
                ))
            }
            Status::Running => {
                return Err(Error::BadState(
                    "cannot start an already running container".into(),
                ))
            }
            Status::Paused => {
                return Err(Error::BadState(
                    "cannot start a container in the paused state".into(),
                ))
            }
            Status::Creating => {
                return Err(Error::BadState(
                    "cannot start a container that is still being created".into(),
                ))
            }
        }
        timing::note(|| {
            format!(
                "[9] releasing init {} through the exec fifo",
                self.state.pid
            )
        });
        release_init(&self.dir, &self.state)?;
        timing::mark("[9] release, startContainer hooks, exec");
        self.state.phase = Phase::Started;
        self.dir.save(&self.state)?;
        let _ = std::fs::remove_file(self.dir.fifo_path());
        timing::mark("state started");
        Ok(self.poststart())
    }

    /// `run`: release init over the sync socket (no exec fifo was made).
    pub fn start_run(&mut self, sync: &crate::sync::ParentSync) -> Result<Vec<String>> {
        timing::note(|| format!("[9] releasing init {} over the sync socket", self.state.pid));
        sync.start()?;
        timing::mark("[9] release");
        self.state.phase = Phase::Started;
        self.dir.save(&self.state)?;
        timing::mark("state started");
        Ok(self.poststart())
    }

    fn poststart(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if let Some(h) = &self.state.hooks {
            if !hooks::list(h, HookKind::Poststart).is_empty() {
                let st = hook_state(&self.state, "running");
                if let Err(e) = hooks::run(h, HookKind::Poststart, &st) {
                    warnings.push(crate::error_chain(&e));
                }
                timing::mark("poststart hooks");
            }
        }
        warnings
    }

    pub fn kill(&self, sig: i32, all: bool) -> Result<()> {
        let status = self.status();
        if status == Status::Stopped && !all {
            return Err(Error::NotRunning);
        }
        if all {
            // runc: `kill --all` of a stopped container is no error (containerd's
            // shim sends it after every exit in a pod sharing a pid namespace).
            let Some(cg) = cgroup_of(&self.state) else {
                return if status == Status::Stopped {
                    Ok(())
                } else {
                    Err(Error::NotRunning)
                };
            };
            if status == Status::Stopped && cg.pids().map(|p| p.is_empty()).unwrap_or(true) {
                return Ok(());
            }
            cg.kill_all(sig)?;
            return Ok(());
        }
        signal_init(&self.state, sig)
    }

    /// Delete; `force` kills a live container first.
    pub fn delete(self, force: bool) -> Result<Vec<String>> {
        let status = self.status();
        match status {
            Status::Stopped => {}
            Status::Created | Status::Creating => {
                let _ = signal_init(&self.state, libc::SIGKILL);
                wait_gone(self.state.pid, 5000);
            }
            Status::Running | Status::Paused => {
                if !force {
                    return Err(Error::BadState(format!(
                        "cannot delete container {} that is not stopped: {}",
                        self.state.id,
                        status.as_str()
                    )));
                }
                if let Some(cg) = cgroup_of(&self.state) {
                    let _ = cg.kill_all(libc::SIGKILL);
                }
                let _ = signal_init(&self.state, libc::SIGKILL);
                wait_gone(self.state.pid, 5000);
            }
        }
        timing::mark("status, kill");
        self.destroy()
    }

    /// Remove everything: the cgroup (killing what is left in it), the
    /// state dir; poststop hooks run after.
    pub fn destroy(self) -> Result<Vec<String>> {
        let mut warnings = Vec::new();
        if let Some(cg) = cgroup_of(&self.state) {
            cg.destroy()?;
        }
        timing::mark("cgroup removal");
        if let Some(h) = &self.state.hooks {
            if !hooks::list(h, HookKind::Poststop).is_empty() {
                let st = hook_state(&self.state, "stopped");
                if let Err(e) = hooks::run(h, HookKind::Poststop, &st) {
                    warnings.push(crate::error_chain(&e));
                }
                timing::mark("poststop hooks");
            }
        }
        self.dir.remove()?;
        timing::mark("state removal");
        Ok(warnings)
    }
}

/// `delete --force` of a container whose state is missing or corrupt:
/// nothing to signal, so remove the directory.
pub fn force_remove_broken(root: &Root, id: &str) -> Result<()> {
    let dir = root.open(id)?;
    dir.remove()
}

fn hook_state(st: &State, status: &str) -> String {
    let mut v = serde_json::json!({
        "ociVersion": berth_oci::OCI_VERSION,
        "id": st.id,
        "status": status,
        "bundle": st.bundle,
    });
    if st.pid > 0 && status != "stopped" {
        v["pid"] = st.pid.into();
    }
    if !st.annotations.is_empty() {
        v["annotations"] = serde_json::to_value(&st.annotations).unwrap_or_default();
    }
    v.to_string()
}

pub fn runc_state(st: &State, status: Status) -> serde_json::Value {
    let pid = if status == Status::Stopped { 0 } else { st.pid };
    let mut v = serde_json::json!({
        "ociVersion": berth_oci::OCI_VERSION,
        "id": st.id,
        "pid": pid,
        "status": status.as_str(),
        "bundle": st.bundle,
        "rootfs": st.rootfs,
        "created": st.created,
        "owner": st.owner,
    });
    if !st.annotations.is_empty() {
        v["annotations"] = serde_json::to_value(&st.annotations).unwrap_or_default();
    }
    v
}

/// Signal init through a pidfd taken after checking the start time, so a
/// recycled pid is never hit.
fn signal_init(st: &State, sig: i32) -> Result<()> {
    let pid = rustix::process::Pid::from_raw(st.pid).ok_or(Error::NotRunning)?;
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .map_err(|_| Error::NotRunning)?;
    if !same_process(st.pid, st.pid_start_time) {
        return Err(Error::NotRunning);
    }
    if sig == 0 {
        // Signal 0: a liveness check (kill(2) sends nothing). The pidfd pins
        // the process, so the pid cannot have been reused since the check above.
        return rustix::process::test_kill_process(pid).map_err(|e| match e {
            rustix::io::Errno::SRCH => Error::NotRunning,
            e => Error::io(format!("signal 0 to pid {}", st.pid), e.into()),
        });
    }
    let s = rustix::process::Signal::from_named_raw(sig)
        .ok_or_else(|| Error::Invalid(format!("invalid signal {sig}")))?;
    rustix::process::pidfd_send_signal(&pidfd, s).map_err(|e| match e {
        rustix::io::Errno::SRCH => Error::NotRunning,
        e => Error::io(format!("signal {sig} to pid {}", st.pid), e.into()),
    })
}

/// [9]: open the exec fifo for reading, which lets init's blocking open
/// for writing finish; init then writes one byte and execs. The end of the
/// fifo (init's CLOEXEC writer closed by execve, or init gone) tells that the
/// process has been executed.
fn release_init(dir: &ContainerDir, st: &State) -> Result<()> {
    let path = dir.fifo_path();
    let fd = rustix::fs::open(
        &path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| Error::io(format!("open exec fifo {}", path.display()), e.into()))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut released = false;
    loop {
        let mut pfd = [rustix::event::PollFd::new(
            &fd,
            rustix::event::PollFlags::IN,
        )];
        let ts = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 50_000_000,
        };
        match rustix::event::poll(&mut pfd, Some(&ts)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(Error::io("poll exec fifo".into(), e.into())),
        }
        let mut b = [0u8; 1];
        match rustix::io::read(&fd, &mut b) {
            Ok(1) => released = true,
            // EOF: no writer left. Before the byte, init never opened it (keep waiting).
            Ok(_) if released => return Ok(()),
            Ok(_) | Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(Error::io("read exec fifo".into(), e.into())),
        }
        if !same_process(st.pid, st.pid_start_time) {
            // It may have written, executed and exited since the read above.
            if released || matches!(rustix::io::read(&fd, &mut b), Ok(1)) {
                return Ok(());
            }
            return Err(Error::BadState(
                "container init exited before it could be started".into(),
            ));
        }
        if Instant::now() > deadline {
            return Err(Error::BadState(
                "container init did not answer on the exec fifo within 30 s".into(),
            ));
        }
    }
}

/// The foreground part of `run`: start, forward signals (SIGWINCH resizes
/// the pty), proxy the pty if there is one, reap, delete; return the exit
/// status the shell expects (128+N for a signal).
/// `keep` (runc's `run --keep`): leave the stopped container, its state and
/// cgroup, for `delete`.
pub fn run_foreground(
    created: Created,
    pty: Option<OwnedFd>,
    keep: bool,
) -> Result<(i32, Vec<String>)> {
    let (sigfd, _old) = berth_sys::signal::block_all_signalfd()
        .map_err(|e| Error::io("block signals".into(), e))?;
    let Created {
        dir,
        state,
        release,
        ..
    } = created;
    let mut c = Container { dir, state };
    let mut warnings = match &release {
        Some(sync) => c.start_run(sync)?,
        None => c.start()?,
    };
    drop(release);
    c.dir.unlock();
    let pid = c.state.pid;
    let code = attend(pid, &sigfd, pty.as_ref());
    let code = code?;
    timing::mark("container process ran");
    timing::note(|| format!("process {pid} exited: status {code}"));
    c.dir.relock()?;
    // runc deletes a foreground container when it exits (destroy kills
    // whatever is left in the cgroup).
    if let Some(cg) = cgroup_of(&c.state) {
        if code == 128 + libc::SIGKILL
            && cg.stats().is_ok_and(|s| s.memory.event_count.oom_kill > 0)
        {
            warnings.push(format!(
                "container {} was OOM-killed (its memory limit was reached)",
                c.state.id
            ));
        }
    }
    if !keep {
        warnings.extend(c.destroy()?);
    }
    Ok((code, warnings))
}

/// Stay with a foreground process until it exits: raw mode and window
/// size for a pty, signals forwarded; returns its exit status.
pub fn attend(pid: i32, sigfd: &OwnedFd, pty: Option<&OwnedFd>) -> Result<i32> {
    let stdin_tty = rustix::termios::isatty(std::io::stdin());
    let saved = if pty.is_some() && stdin_tty {
        let t = rustix::termios::tcgetattr(std::io::stdin()).ok();
        if let Some(orig) = &t {
            let mut raw = orig.clone();
            raw.make_raw();
            let _ = rustix::termios::tcsetattr(
                std::io::stdin(),
                rustix::termios::OptionalActions::Now,
                &raw,
            );
        }
        t
    } else {
        None
    };
    if let (Some(p), true) = (pty, stdin_tty) {
        if let Ok(ws) = rustix::termios::tcgetwinsize(std::io::stdin()) {
            let _ = rustix::termios::tcsetwinsize(p, ws);
        }
    }
    let code = forward_loop(pid, sigfd, pty);
    if let Some(orig) = saved {
        let _ = rustix::termios::tcsetattr(
            std::io::stdin(),
            rustix::termios::OptionalActions::Now,
            &orig,
        );
    }
    code
}

fn forward_loop(pid: i32, sigfd: &OwnedFd, pty: Option<&OwnedFd>) -> Result<i32> {
    use rustix::event::{poll, PollFd, PollFlags};
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut stdin_open = pty.is_some();
    let mut pty_open = pty.is_some();
    // Only a pty is copied through: without one, no buffer (its pages would fault in).
    let mut buf = vec![0u8; if pty.is_some() { 32 * 1024 } else { 0 }];
    loop {
        // Reap: init is ours (we are its subreaper); others are orphans.
        loop {
            match rustix::process::wait(rustix::process::WaitOptions::NOHANG) {
                Ok(Some((p, ws))) => {
                    if p.as_raw_nonzero().get() == pid {
                        if let Some(p) = pty {
                            drain(p, &stdout, &mut buf);
                        }
                        if let Some(sig) = ws.terminating_signal() {
                            return Ok(128 + sig);
                        }
                        return Ok(ws.exit_status().unwrap_or(255));
                    }
                }
                Ok(None) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::CHILD) => {
                    return Err(Error::BadState("container init is not our child".into()))
                }
                Err(e) => return Err(Error::io("waitpid".into(), e.into())),
            }
        }
        let mut fds = vec![PollFd::new(sigfd, PollFlags::IN)];
        if let (Some(p), true) = (pty, pty_open) {
            fds.push(PollFd::new(p, PollFlags::IN));
        }
        if stdin_open {
            fds.push(PollFd::new(&stdin, PollFlags::IN));
        }
        match poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(Error::io("poll".into(), e.into())),
        }
        let revents: Vec<PollFlags> = fds.iter().map(|f| f.revents()).collect();
        drop(fds);
        if !revents[0].is_empty() {
            let sig = berth_sys::signal::read_signal(sigfd)
                .map_err(|e| Error::io("read signalfd".into(), e))?;
            match sig {
                libc::SIGCHLD => {}
                libc::SIGWINCH => {
                    if let Some(p) = pty {
                        if let Ok(ws) = rustix::termios::tcgetwinsize(&stdin) {
                            let _ = rustix::termios::tcsetwinsize(p, ws);
                        }
                    } else {
                        let _ = forward(pid, sig);
                    }
                }
                s => {
                    let _ = forward(pid, s);
                }
            }
        }
        let mut i = 1;
        if let (Some(p), true) = (pty, pty_open) {
            if !revents[i].is_empty() {
                match rustix::io::read(p, &mut buf) {
                    Ok(0) | Err(_) => pty_open = false,
                    Ok(n) => write_all(&stdout, &buf[..n]),
                }
            }
            i += 1;
        }
        if stdin_open && !revents[i].is_empty() {
            match rustix::io::read(&stdin, &mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    if let Some(p) = pty {
                        write_all(p, &buf[..n]);
                    }
                }
            }
        }
    }
}

fn drain(p: &OwnedFd, out: &std::io::Stdout, buf: &mut [u8]) {
    let _ = rustix::fs::fcntl_setfl(p, rustix::fs::OFlags::NONBLOCK);
    while let Ok(n) = rustix::io::read(p, &mut *buf) {
        if n == 0 {
            break;
        }
        write_all(out, &buf[..n]);
    }
}

fn write_all(fd: impl AsFd, mut data: &[u8]) {
    while !data.is_empty() {
        match rustix::io::write(&fd, data) {
            Ok(0) => return,
            Ok(n) => data = &data[n..],
            Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => continue,
            Err(_) => return,
        }
    }
}

fn forward(pid: i32, sig: i32) -> std::io::Result<()> {
    let p = rustix::process::Pid::from_raw(pid).ok_or_else(|| std::io::Error::other("bad pid"))?;
    let s = rustix::process::Signal::from_named_raw(sig)
        .ok_or_else(|| std::io::Error::other("bad signal"))?;
    rustix::process::kill_process(p, s)?;
    Ok(())
}

/// A directory exists for `id` (even without state).
pub fn exists(root: &Root, id: &str) -> bool {
    Path::new(&root.path).join(id).is_dir()
}
