//! Stopping, killing, waiting for and removing containers: through the container's monitor
//! while it lives, directly (pidfd, cgroup) when it is gone. The CLI, and later the API
//! server and the compose supervisor, call these; none of them talks to monitors itself.

use crate::error::{Error, Result};
use crate::inventory::{self, Entry};
use crate::layout::Layout;
use crate::proto::{self, ExitInfo, Request};
use crate::record::{now_rfc3339, ContainerConfig, ContainerState, Status};
use crate::status;
use berth_image::store::Store;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a command waits for a keeper to bring up a new monitor.
const KEEPER_GRACE: Duration = Duration::from_secs(3);

/// Reads frames until EXIT (Some), OK (None) or an ERROR.
fn await_reply(s: &mut std::os::unix::net::UnixStream) -> Result<Option<ExitInfo>> {
    loop {
        match proto::read_frame(s).map_err(|e| Error::io("read from the monitor", e))? {
            None => return Err(Error::Protocol("the monitor closed the connection".into())),
            Some((proto::EXIT, p)) => {
                return Ok(Some(serde_json::from_slice(&p).unwrap_or_default()))
            }
            Some((proto::OK, _)) => return Ok(None),
            Some((proto::ERROR, p)) => {
                return Err(Error::Protocol(String::from_utf8_lossy(&p).into_owned()))
            }
            Some(_) => {}
        }
    }
}

/// Sends one request to the container's monitor and waits for its reply (a stop: its
/// timeout and 10 s more; a kill: 10 s; a wait: as long as it takes), so a monitor that
/// no longer answers does not hang the caller.
pub fn ask_monitor(layout: &Layout, id: &str, req: &Request) -> Result<Option<ExitInfo>> {
    let mut s = proto::connect(&layout.attach_path(id))?;
    let limit = match req {
        Request::Stop { timeout_secs, .. } => Some(Duration::from_secs(
            (*timeout_secs).clamp(0, 3600) as u64 + 10,
        )),
        Request::Kill { .. } | Request::Pause(_) => Some(Duration::from_secs(10)),
        _ => None,
    };
    let _ = s.set_read_timeout(limit);
    proto::send_request(&mut s, req).map_err(|e| Error::io("write to the monitor", e))?;
    await_reply(&mut s)
}

/// Waits (up to 5 s) for a monitor that is finishing after its container exited, and for
/// a keeper that is bringing up a new monitor after the old one was killed.
pub fn settle(layout: &Layout, id: &str) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(5) {
        let Ok(s) = status::load(layout, id) else {
            return;
        };
        let replacing = !status::monitor_alive(&s) && status::keeper_alive(&s);
        if !replacing && (!status::watched(&s) || status::is_running(&s)) {
            return;
        }
        // A finishing monitor, then its keeper, exits: wait for that exit (a pidfd), not
        // for the next tick of a poll. A keeper whose monitor is gone is either exiting too
        // or starting a new monitor (which no exit announces): look again within 10 ms.
        let cap = Duration::from_millis(if replacing { 10 } else { 200 });
        let finishing = [
            (s.monitor_pid, s.monitor_start),
            (s.keeper_pid, s.keeper_start),
        ]
        .into_iter()
        .find(|&(p, st)| status::process_alive(p, st))
        .and_then(|(p, st)| open_pidfd(p, st));
        match finishing {
            Some(fd) => {
                let left = Duration::from_secs(5).saturating_sub(t.elapsed());
                wait_pidfd(&fd, left.min(cap));
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// A pidfd of `pid` if it is still the process that started at `start`.
fn open_pidfd(pid: i32, start: u64) -> Option<std::os::fd::OwnedFd> {
    let fd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(pid)?,
        rustix::process::PidfdFlags::empty(),
    )
    .ok()?;
    status::process_alive(pid, start).then_some(fd)
}

/// The state once a killed monitor's keeper has started the new one (bounded wait).
fn with_monitor(layout: &Layout, id: &str) -> Result<ContainerState> {
    let t = Instant::now();
    loop {
        let s = status::current(layout, id)?;
        if status::monitor_alive(&s) || !status::keeper_alive(&s) || t.elapsed() > KEEPER_GRACE {
            return Ok(s);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Signals the container's init directly (its monitor is gone), through a pidfd opened
/// before checking the start time, so a recycled pid is never signalled.
fn signal_init(pid: i32, start: u64, sig: i32) -> Result<Option<std::os::fd::OwnedFd>> {
    use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal};
    let Some(p) = Pid::from_raw(pid) else {
        return Ok(None);
    };
    let fd = match pidfd_open(p, PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::SRCH) => return Ok(None),
        Err(x) => return Err(Error::io(format!("pidfd_open {pid}"), x.into())),
    };
    if !status::process_alive(pid, start) {
        return Ok(None);
    }
    let s = Signal::from_named_raw(sig)
        .ok_or_else(|| Error::Invalid(format!("signal {sig} cannot be sent directly")))?;
    match pidfd_send_signal(&fd, s) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(Some(fd)),
        Err(x) => Err(Error::io(format!("signal {pid}"), x.into())),
    }
}

/// Waits until the pidfd's process exits; false on timeout.
fn wait_pidfd(fd: &std::os::fd::OwnedFd, timeout: Duration) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut fds = [PollFd::new(fd, PollFlags::IN)];
    let ts = Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: timeout.subsec_nanos() as i64,
    };
    matches!(poll(&mut fds, Some(&ts)), Ok(n) if n > 0)
}

/// Records the exit of a container that nobody watches any more (monitor and keeper
/// gone), deletes it from the runtime and unmounts its rootfs (what the monitor would
/// have done).
fn tidy_unwatched(
    layout: &Layout,
    store: &Store,
    c: &ContainerConfig,
    exit_code: i32,
) -> Result<()> {
    let _ = std::process::Command::new(&c.runtime)
        .arg("--root")
        .arg(&c.runtime_root)
        .args(["delete", "--force", &c.id])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    let _ = berth_image::overlay::unmount_rootfs(store, &c.id, false);
    layout.update_state(&c.id, |s| {
        if s.status != Status::Exited || s.finished_at.is_empty() {
            s.status = Status::Exited;
            s.finished_at = now_rfc3339();
            s.exit_code = exit_code;
        }
        s.pid = 0;
        s.pid_start = 0;
        s.monitor_pid = 0;
        s.monitor_start = 0;
        s.keeper_pid = 0;
        s.keeper_start = 0;
        s.stopped_by_user = true;
    })?;
    let mut at = crate::create::attrs(c);
    at.insert("exitCode".into(), exit_code.to_string());
    let _ = crate::events::emit(layout, "container", "die", &c.id, at);
    Ok(())
}

/// Stops an unwatched container: signal, wait, SIGKILL, then tidy. The exit code cannot be
/// read by a non-parent: it is recorded as 128 + the signal that ended it.
fn stop_direct(
    layout: &Layout,
    store: &Store,
    c: &ContainerConfig,
    s: &ContainerState,
    sig: i32,
    timeout: i64,
) -> Result<()> {
    let mut code = 128 + sig;
    if let Some(fd) = signal_init(s.pid, s.pid_start, sig)? {
        let limit = Duration::from_secs(timeout.max(0) as u64);
        if !wait_pidfd(&fd, limit) {
            signal_init(s.pid, s.pid_start, libc::SIGKILL)?;
            wait_pidfd(&fd, Duration::from_secs(10));
            code = 137;
        }
    }
    tidy_unwatched(layout, store, c, code)?;
    if c.options.auto_remove {
        crate::remove::remove_container(layout, store, &c.id, true)?;
    }
    Ok(())
}

/// Stops container `id`: its stop signal (or `signal`), `timeout` seconds (or its own,
/// else 10), then SIGKILL. Nothing to do for a container that does not run.
pub fn stop(
    layout: &Layout,
    store: &Store,
    id: &str,
    signal: Option<i32>,
    timeout: Option<i64>,
) -> Result<()> {
    stop_opts(layout, store, id, signal, timeout, None)
}

/// [`stop`]; `remove`: the container is removed right after (`Some(volumes)`), which its
/// monitor then does itself at the exit, as for a `--rm` container.
fn stop_opts(
    layout: &Layout,
    store: &Store,
    id: &str,
    signal: Option<i32>,
    timeout: Option<i64>,
    remove: Option<bool>,
) -> Result<()> {
    let c = layout.load_config(id)?;
    let s = with_monitor(layout, id)?;
    let sig = signal
        .or((c.stop_signal > 0).then_some(c.stop_signal))
        .unwrap_or(libc::SIGTERM);
    let timeout = timeout.or(c.options.stop_timeout).unwrap_or(10);
    if status::monitor_alive(&s) {
        let r = ask_monitor(
            layout,
            id,
            &Request::Stop {
                signal: sig,
                timeout_secs: timeout,
                removing: remove.is_some(),
                remove_volumes: remove.unwrap_or(false),
            },
        );
        if let Err(x) = r {
            // A monitor that just died or finished refuses the connection: the processes
            // decide what is left to do.
            let now = with_monitor(layout, id)?;
            if status::monitor_alive(&now) && status::is_running(&now) {
                return Err(Error::Invalid(format!(
                    "stop container {id}: {}",
                    crate::error::chain(&x)
                )));
            }
            if status::init_alive(&now) && !status::watched(&now) {
                stop_direct(layout, store, &c, &now, sig, timeout)?;
            }
        }
    } else if status::init_alive(&s) {
        stop_direct(layout, store, &c, &s, sig, timeout)?;
    } else {
        return Ok(());
    }
    let _ = crate::events::emit(layout, "container", "stop", id, crate::create::attrs(&c));
    Ok(())
}

/// Sends `sig` to a running container (docker's kill: no restart after).
pub fn kill(layout: &Layout, store: &Store, id: &str, reference: &str, sig: i32) -> Result<()> {
    let s = with_monitor(layout, id)?;
    if !status::is_running(&s) {
        return Err(Error::Invalid(format!(
            "cannot kill container: {reference}: container {id} is not running"
        )));
    }
    if status::monitor_alive(&s) {
        ask_monitor(layout, id, &Request::Kill { signal: sig })?;
    } else if let Some(fd) = signal_init(s.pid, s.pid_start, sig)? {
        // Nobody else will record this exit: do it if it dies of this signal.
        if wait_pidfd(&fd, Duration::from_millis(200)) && !status::keeper_alive(&s) {
            let c = layout.load_config(id)?;
            tidy_unwatched(layout, store, &c, 128 + sig)?;
        }
    }
    let c = layout.load_config(id)?;
    let mut at = crate::create::attrs(&c);
    at.insert("signal".into(), sig.to_string());
    let _ = crate::events::emit(layout, "container", "kill", id, at);
    Ok(())
}

/// `pause` (on) or `unpause`: the container's monitor freezes or thaws it with the
/// runtime and records the state (docker's Paused); only a running container with a
/// monitor can be paused.
pub fn pause(layout: &Layout, id: &str, on: bool) -> Result<()> {
    let s = with_monitor(layout, id)?;
    if !status::is_running(&s) {
        return Err(Error::Invalid(format!("container {id} is not running")));
    }
    if !status::monitor_alive(&s) {
        return Err(Error::Invalid(format!(
            "container {id} has no monitor (it is being adopted): try again"
        )));
    }
    ask_monitor(layout, id, &Request::Pause(on))?;
    Ok(())
}

/// Waits for container `id` to exit; its exit code (docker's "not-running" condition: a
/// created container returns at once).
pub fn wait(layout: &Layout, id: &str) -> Result<i32> {
    loop {
        let s = status::current(layout, id)?;
        let live = status::is_running(&s) || status::watched(&s);
        if !live {
            return Ok(s.exit_code);
        }
        if status::monitor_alive(&s) && s.status != Status::Exited {
            if let Ok(Some(x)) = ask_monitor(layout, id, &Request::Wait) {
                return Ok(x.exit_code);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
        if !layout.container_dir(id).exists() {
            return Err(Error::NoSuchContainer(id.to_string()));
        }
    }
}

/// docker's refusal to remove a running container without force.
fn running_refusal(reference: &str) -> Error {
    Error::Invalid(format!(
        "cannot remove container \"{reference}\": container is running: stop the container \
         before removing or force remove"
    ))
}

/// The children of process `pid` (/proc/PID/task/*/children).
fn children(pid: i32) -> Vec<i32> {
    let mut v = Vec::new();
    if let Ok(d) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in d.flatten() {
            if let Ok(c) = std::fs::read_to_string(t.path().join("children")) {
                v.extend(c.split_whitespace().filter_map(|x| x.parse::<i32>().ok()));
            }
        }
    }
    v
}

/// Kills everything of a container whose records cannot be trusted: its monitor and keeper
/// (when the state names them), then every process in its cgroup.
fn kill_everything(layout: &Layout, id: &str) {
    if let Ok(s) = status::load(layout, id) {
        // The keeper's own children first: a monitor that never recorded itself.
        if status::keeper_alive(&s) {
            for c in children(s.keeper_pid) {
                if let Some(st) = crate::record::pid_start_time(c) {
                    let _ = signal_init(c, st, libc::SIGKILL);
                }
            }
        }
        for (p, st) in [
            (s.keeper_pid, s.keeper_start),
            (s.monitor_pid, s.monitor_start),
            (s.pid, s.pid_start),
        ] {
            let _ = signal_init(p, st, libc::SIGKILL);
        }
    }
    let path = status::cgroup_path(layout, id);
    if let Ok(m) = crate::stats::manager(&path, id) {
        let t = Instant::now();
        while m.pids().is_ok_and(|p| !p.is_empty()) && t.elapsed() < Duration::from_secs(5) {
            let _ = m.kill_all(libc::SIGKILL);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Removes container `id` (`reference` is what the user typed). With `force` a running
/// container is killed first, and a container whose records cannot be read is killed
/// through its cgroup and removed whatever its files say. A half-made container (its
/// creation cut short) is swept. A start racing the removal is stopped again.
pub fn remove(
    layout: &Layout,
    store: &Store,
    id: &str,
    reference: &str,
    force: bool,
    volumes: bool,
) -> Result<()> {
    for round in 0..20 {
        match inventory::entry(layout, id) {
            None => return Ok(()),
            Some(Entry::HalfMade { .. }) => return inventory::sweep_half_made(layout, store, id),
            Some(Entry::Broken { reason, .. }) => {
                if !force {
                    return Err(Error::Unreadable {
                        id: id.to_string(),
                        reason: format!("{reason}; remove it with `rm -f`"),
                    });
                }
                kill_everything(layout, id);
            }
            Some(Entry::Container(_)) => match status::current(layout, id) {
                Err(Error::Unreadable { reason, .. }) => {
                    if !force {
                        return Err(Error::Unreadable {
                            id: id.to_string(),
                            reason: format!("{reason}; remove it with `rm -f`"),
                        });
                    }
                    kill_everything(layout, id);
                }
                Err(e) => return Err(e),
                Ok(s) => {
                    let running = status::is_running(&s)
                        || (status::watched(&s) && s.status != Status::Exited);
                    if running {
                        if !force {
                            return Err(running_refusal(reference));
                        }
                        let r = Some(volumes);
                        stop_opts(layout, store, id, Some(libc::SIGKILL), Some(0), r)?;
                        berth_sys::timing::mark("stop: SIGKILL, the exit recorded");
                    }
                    // A monitor may still be finishing (or removing an --rm container).
                    settle(layout, id);
                    berth_sys::timing::mark("the monitor finishing");
                }
            },
        }
        match crate::remove::remove_container(layout, store, id, volumes) {
            Ok(()) => {
                berth_sys::timing::mark("removal: records, rootfs, lease, name");
                return Ok(());
            }
            // Something of it runs again (a racing start, stray processes): again.
            Err(Error::Busy(_)) if force => {
                let unwatched = status::load(layout, id).is_ok_and(|s| !status::watched(&s));
                // Stray processes nobody watches, or a monitor that does not get its
                // container stopped (hung, or not yet recorded): force means force.
                if (unwatched && !status::cgroup_pids(layout, id).is_empty()) || round >= 2 {
                    kill_everything(layout, id);
                }
                continue;
            }
            Err(Error::Busy(_)) => return Err(running_refusal(reference)),
            Err(e) => return Err(e),
        }
    }
    Err(Error::Invalid(format!(
        "remove container {id}: it kept being started again"
    )))
}

/// What `container prune` removed, and what it could not.
#[derive(Debug, Default)]
pub struct Pruned {
    pub deleted: Vec<String>,
    /// Bytes of the removed containers' writable layers.
    pub space: u64,
    /// Containers whose removal failed (the others are still pruned).
    pub failed: Vec<(String, Error)>,
}

/// docker's prune filters: `until=` (a time or a duration before now: containers created
/// before it), `label=K[=V]` (all must match), `label!=K[=V]` (none may).
#[derive(Debug, Default)]
struct PruneFilters {
    until: Option<std::time::SystemTime>,
    labels: Vec<String>,
    not_labels: Vec<String>,
}

impl PruneFilters {
    fn parse(fs: &[String]) -> Result<PruneFilters> {
        let mut p = PruneFilters::default();
        for f in fs {
            let Some((k, v)) = f.split_once('=') else {
                return Err(Error::Invalid(format!(
                    "bad format of filter (expected name=value): {f}"
                )));
            };
            match k {
                "until" => {
                    p.until = Some(crate::logs::parse_time(v, std::time::SystemTime::now())?)
                }
                "label" => p.labels.push(v.to_string()),
                // `label!=x` arrives split at its first `=`.
                "label!" => p.not_labels.push(v.to_string()),
                _ => return Err(Error::Invalid(format!("invalid filter '{k}'"))),
            }
        }
        Ok(p)
    }

    /// dockerd's MatchKVList: every `k` or `k=v` is among `labels`.
    fn all_match(want: &[String], labels: &std::collections::BTreeMap<String, String>) -> bool {
        want.iter().all(|w| crate::parse::label_matches(w, labels))
    }

    fn keeps(&self, c: &ContainerConfig) -> bool {
        let labels = &c.options.labels;
        if !Self::all_match(&self.labels, labels) {
            return true;
        }
        if !self.not_labels.is_empty() && Self::all_match(&self.not_labels, labels) {
            return true;
        }
        match (self.until, crate::record::parse_rfc3339(&c.created)) {
            (Some(u), Some(t)) => t > u,
            _ => false,
        }
    }
}

/// `container prune`: every container that is not running (nor watched by a monitor
/// about to restart it) and passes `filters` is removed (docker's `until`, `label`,
/// `label!`; anything else is refused before anything is removed).
pub fn prune(layout: &Layout, store: &Store, filters: &[String]) -> Result<Pruned> {
    let f = PruneFilters::parse(filters)?;
    // What crashes left (creations cut short, trees of dead removals) goes first.
    inventory::sweep(layout, store)?;
    let mut p = Pruned::default();
    for id in layout.container_ids()? {
        settle(layout, &id);
        // An unreadable record is left to `rm -f` (listed by ps as unknown).
        let Ok(s) = status::current(layout, &id) else {
            continue;
        };
        if status::is_running(&s) || status::watched(&s) {
            continue;
        }
        if f.until.is_some() || !f.labels.is_empty() || !f.not_labels.is_empty() {
            match layout.load_config(&id) {
                Ok(c) if !f.keeps(&c) => {}
                _ => continue,
            }
        }
        let upper = store.root().join("containers").join(&id).join("upper");
        let size = inventory::dir_size(&upper);
        match crate::remove::remove_container(layout, store, &id, false) {
            Ok(()) => {
                p.space += size;
                p.deleted.push(id);
            }
            // Started meanwhile: not prunable.
            Err(Error::Busy(_)) => {}
            Err(e) => p.failed.push((id, e)),
        }
    }
    Ok(p)
}

/// docker's `update`: what may change on a container that exists. `None` keeps the value.
#[derive(Debug, Default, Clone)]
pub struct UpdateOptions {
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub cpu_period: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
    pub restart: Option<crate::options::RestartPolicy>,
}

impl UpdateOptions {
    /// Nothing to change.
    pub fn is_empty(&self) -> bool {
        self.memory.is_none()
            && self.memory_swap.is_none()
            && self.memory_reservation.is_none()
            && self.nano_cpus.is_none()
            && self.cpu_shares.is_none()
            && self.cpu_period.is_none()
            && self.cpu_quota.is_none()
            && self.cpuset_cpus.is_none()
            && self.pids_limit.is_none()
            && self.blkio_weight.is_none()
            && self.restart.is_none()
    }

    /// What docker refuses before looking at a container: CPUs given both ways.
    pub fn check(&self) -> Result<()> {
        if self.nano_cpus.is_some() && (self.cpu_period.is_some() || self.cpu_quota.is_some()) {
            return Err(Error::Invalid(
                "conflicting options: Nano CPUs and CPU Period/Quota cannot both be set".into(),
            ));
        }
        Ok(())
    }
}

/// Applies `u` to container `id`: checked as `create` checks them, written to its record
/// (a restart or a start later keeps them), and for a running container set on its cgroup
/// by the runtime (`update -r`). The restart policy reaches the monitor through the
/// record, read when the container exits. Returns docker's warnings.
pub fn update(layout: &Layout, id: &str, u: &UpdateOptions) -> Result<Vec<String>> {
    let lock = layout.lock(id)?;
    let mut c = layout.load_config(id)?;
    let mut o = c.options.clone();
    let r = &mut o.resources;
    if u.memory.is_some() {
        r.memory = u.memory;
    }
    if u.memory_swap.is_some() {
        r.memory_swap = u.memory_swap;
    }
    if u.memory_reservation.is_some() {
        r.memory_reservation = u.memory_reservation;
    }
    if let Some(n) = u.nano_cpus {
        // --cpus replaces a period/quota pair, as docker's update.
        r.nano_cpus = Some(n);
        r.cpu_period = None;
        r.cpu_quota = None;
    }
    if u.cpu_period.is_some() || u.cpu_quota.is_some() {
        if u.nano_cpus.is_none() {
            r.nano_cpus = None;
        }
        if u.cpu_period.is_some() {
            r.cpu_period = u.cpu_period;
        }
        if u.cpu_quota.is_some() {
            r.cpu_quota = u.cpu_quota;
        }
    }
    if u.cpu_shares.is_some() {
        r.cpu_shares = u.cpu_shares;
    }
    if u.cpuset_cpus.is_some() {
        r.cpuset_cpus = u.cpuset_cpus.clone();
    }
    if u.pids_limit.is_some() {
        r.pids_limit = u.pids_limit;
    }
    if u.blkio_weight.is_some() {
        r.blkio_weight = u.blkio_weight;
    }
    if let Some(p) = &u.restart {
        if o.auto_remove && *p != crate::options::RestartPolicy::No {
            return Err(Error::Invalid(
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
                    .into(),
            ));
        }
        o.restart = p.clone();
    }
    let warnings = crate::spec::adapt(&mut o);
    let res = crate::spec::linux_resources(&o.resources)?;
    let s = status::current(layout, id)?;
    if status::is_running(&s) {
        let mut child = std::process::Command::new(&c.runtime)
            .arg("--root")
            .arg(&c.runtime_root)
            .args(["update", "-r", "-", id])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| Error::io(Path::new(&c.runtime), e))?;
        if let Some(mut w) = child.stdin.take() {
            let _ = std::io::Write::write_all(&mut w, res.to_string().as_bytes());
        }
        let out = child
            .wait_with_output()
            .map_err(|e| Error::io(Path::new(&c.runtime), e))?;
        if !out.status.success() {
            return Err(Error::Invalid(format!(
                "cannot update container {id}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    }
    c.options = o;
    layout.save_config(&c, &lock)?;
    let _ = crate::events::emit(layout, "container", "update", id, crate::create::attrs(&c));
    Ok(warnings)
}

/// Renames container `id` to `new` (a leading `/` dropped, docker's name rule). The new
/// name is linked first, so the container always has one; then the record; then the old
/// link goes.
pub fn rename(layout: &Layout, id: &str, new: &str) -> Result<()> {
    use crate::create;
    let new = new.strip_prefix('/').unwrap_or(new).to_string();
    create::check_name(&new)?;
    let lock = layout.lock(id)?;
    let mut c = layout.load_config(id)?;
    let old = c.name.clone();
    if old == new {
        return Err(Error::Invalid(
            "Renaming a container with the same name as its current name".into(),
        ));
    }
    create::link_name(layout, &new, id)?;
    c.name = new.clone();
    c.options.name = Some(new.clone());
    if let Err(x) = layout.save_config(&c, &lock) {
        create::unlink_name(layout, &new, id);
        return Err(x);
    }
    create::unlink_name(layout, &old, id);
    drop(lock);
    let mut at = create::attrs(&c);
    at.insert("oldName".into(), format!("/{old}"));
    let _ = crate::events::emit(layout, "container", "rename", id, at);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::CreateOptions;

    fn cfg(labels: &[(&str, &str)], created: &str) -> ContainerConfig {
        ContainerConfig {
            created: created.into(),
            ..ContainerConfig::bare(
                &"a".repeat(64),
                "c",
                CreateOptions {
                    labels: labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    ..Default::default()
                },
            )
        }
    }

    fn f(v: &[&str]) -> PruneFilters {
        PruneFilters::parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn prune_filters_as_dockerd() {
        let old = cfg(&[("app", "shop")], "2020-01-01T00:00:00.000000000Z");
        let new = cfg(&[], &now_rfc3339());
        // until: only what was created before it.
        let u = f(&["until=1h"]);
        assert!(!u.keeps(&old) && u.keeps(&new));
        assert!(!f(&["label=app"]).keeps(&old) && f(&["label=app"]).keeps(&new));
        assert!(f(&["label=app=other"]).keeps(&old));
        assert!(f(&["label!=app"]).keeps(&old) && !f(&["label!=app"]).keeps(&new));
        assert!(!f(&[]).keeps(&new));
        assert!(PruneFilters::parse(&["status=exited".into()]).is_err());
        assert!(PruneFilters::parse(&["until=never".into()]).is_err());
    }

    #[test]
    fn update_checks() {
        assert!(UpdateOptions::default().is_empty());
        let u = UpdateOptions {
            nano_cpus: Some(1),
            cpu_quota: Some(1),
            ..Default::default()
        };
        assert!(u.check().unwrap_err().to_string().contains("conflicting"));
        let u = UpdateOptions {
            memory: Some(1 << 26),
            ..Default::default()
        };
        assert!(u.check().is_ok() && !u.is_empty());
    }
}
