//! The monitor's life: create/start through the runtime, then one poll(2) loop until the
//! container's final exit.

use crate::health::{Checker, Which};
use crate::{chain, Args, MonLog};
use berth_engine::layout::Layout;
use berth_engine::logfile::LogWriter;
use berth_engine::net::helper as net;
use berth_engine::options::{HealthOnFailure, RestartPolicy};
use berth_engine::proto::{self, ExitInfo, Request};
use berth_engine::record::{self, ContainerConfig, Status};
use berth_image::store::Store;
use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

const SIGKILL: i32 = 9;
/// Backoff of the restart policy: 100 ms doubling to 1 min, reset after 10 s of running.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
const BACKOFF_RESET: Duration = Duration::from_secs(10);
/// Buffered stdin beyond this stops reading from clients until the container catches up.
const STDIN_HIGH: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Created; `runtime start` waits for the first attach (--attach-wait).
    WaitAttach,
    Running,
    /// Exited; the restart policy restarts it at `restart_at`.
    Backoff,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    New,
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    Wait,
    Stop,
}

struct Client {
    s: UnixStream,
    buf: Vec<u8>,
    role: Role,
    dead: bool,
}

#[derive(Clone, Copy)]
enum Tag {
    Listener,
    Client(usize),
    Out,
    Err,
    Pty,
    Stdin,
    Init,
    Probe,
    ProbeOut(Which),
    Keeper,
}

pub struct Mon {
    pub layout: Layout,
    pub id: String,
    pub cfg: ContainerConfig,
    store: Store,
    pub mlog: MonLog,
    ready: Option<File>,
    attach_wait: bool,
    listener: UnixListener,
    clients: Vec<Client>,
    log: LogWriter,
    phase: Phase,
    /// The container's init while it lives.
    pid: i32,
    pidfd: Option<OwnedFd>,
    started: Instant,
    out: Option<OwnedFd>,
    err: Option<OwnedFd>,
    pty: Option<OwnedFd>,
    stdin: Option<OwnedFd>,
    stdin_buf: Vec<u8>,
    stdin_close: bool,
    stopped_by_user: bool,
    /// Stopped by `rm -f` (`Some(remove anonymous volumes)`): removed at the exit as a
    /// `--rm` container is.
    removing: Option<bool>,
    stop_deadline: Option<Instant>,
    restart_count: u32,
    backoff: Duration,
    restart_at: Option<Instant>,
    force_restart: bool,
    last: ExitInfo,
    /// The final exit's time while its state write is deferred (--rm).
    finished_at: String,
    pub health: Option<Checker>,
    /// CreateOptions::readiness's check.
    pub readiness: Option<Checker>,
    cgroup: Option<String>,
    buf: Vec<u8>,
    /// What the current run holds of the network (host port sockets among others).
    net: Option<net::Held>,
    /// Counts runs: successive runs get different host veth names.
    generation: u32,
    /// BERTH_TRACE: phase timings in monitor.log.
    trace: bool,
    /// The keeper's reports ("<pid> <code>\n") of children it reaped (keeper.rs).
    report: OwnedFd,
    report_buf: Vec<u8>,
    /// This monitor took over a running container whose monitor died: the init is the
    /// keeper's child (its exit comes as a report) and its output is lost.
    adopted: bool,
    /// Frozen by `pause` (the runtime's freezer) until `unpause` or a signal.
    paused: bool,
    /// An adopted init that was already gone: its exit is reported by the keeper soon,
    /// or it was lost with the old monitor (recorded as 255 at this deadline).
    lost_at: Option<Instant>,
    /// This run was made by `runtime run --detach`: `start` has nothing left to do.
    ran: bool,
    /// A run that can start at once, held until the first client attaches.
    deferred: bool,
}

pub fn main(
    layout: Layout,
    args: Args,
    ready: Option<File>,
    mut mlog: MonLog,
    report: OwnedFd,
) -> i32 {
    nonblock(&report);
    let mut m = match Mon::new(layout, &args, ready, &mut mlog, report) {
        Ok(m) => m,
        Err(msg) => {
            mlog.say(&msg);
            return 1;
        }
    };
    m.mlog = mlog;
    m.run(args.adopt)
}

fn nonblock(fd: &OwnedFd) {
    let _ = rustix::io::ioctl_fionbio(fd, true);
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| format!("pipe: {e}"))
}

/// An event's attributes: the container's labels, name and image (docker's; compose
/// picks its project's events by label).
fn attrs(cfg: &ContainerConfig) -> BTreeMap<String, String> {
    berth_engine::create::attrs(cfg)
}

impl Mon {
    fn new(
        layout: Layout,
        args: &Args,
        mut ready: Option<File>,
        mlog: &mut MonLog,
        report: OwnedFd,
    ) -> Result<Mon, String> {
        let fail = |ready: &mut Option<File>, msg: String| {
            if let Some(r) = ready.as_mut() {
                let _ = writeln!(r, "error: {msg}");
            }
            msg
        };
        let id = args.id.clone();
        let cfg = match layout.load_config(&id) {
            Ok(c) => c,
            Err(e) => return Err(fail(&mut ready, chain(&e))),
        };
        let store = Store::open(layout.root()).map_err(|e| fail(&mut ready, chain(&e)))?;
        let listener = proto::bind(&layout.attach_path(&id))
            .and_then(|l| {
                l.set_nonblocking(true)
                    .map_err(|e| berth_engine::Error::io(layout.attach_path(&id), e))?;
                Ok(l)
            })
            .map_err(|e| fail(&mut ready, chain(&e)))?;
        let log = LogWriter::open(&layout.log_path(&id), &cfg.options.log)
            .map_err(|e| fail(&mut ready, chain(&e)))?;
        // The container's cgroupsPath is `<cgroup_parent>/<id>` (docs/engine.md); a record
        // without a parent falls back to the bundle's spec.
        let cgroup = if cfg.options.cgroup_parent.is_empty() {
            record::load_json::<serde_json::Value>(&layout.bundle_dir(&id).join("config.json"))
                .ok()
                .and_then(|v| v["linux"]["cgroupsPath"].as_str().map(str::to_string))
        } else {
            Some(format!(
                "{}/{id}",
                cfg.options.cgroup_parent.trim_end_matches('/')
            ))
        };
        let health = if cfg.options.no_healthcheck {
            None
        } else {
            cfg.health.as_ref().and_then(Checker::new)
        };
        let readiness = cfg.options.readiness.as_ref().and_then(Checker::new);
        mlog.say("monitor starting");
        Ok(Mon {
            layout,
            id,
            cfg,
            store,
            mlog: MonLog(None),
            ready,
            attach_wait: args.attach_wait,
            listener,
            clients: Vec::new(),
            log,
            phase: Phase::WaitAttach,
            pid: 0,
            pidfd: None,
            started: Instant::now(),
            out: None,
            err: None,
            pty: None,
            stdin: None,
            stdin_buf: Vec::new(),
            stdin_close: false,
            stopped_by_user: false,
            removing: None,
            stop_deadline: None,
            restart_count: 0,
            backoff: BACKOFF_MIN,
            restart_at: None,
            force_restart: false,
            last: ExitInfo::default(),
            finished_at: String::new(),
            health,
            readiness,
            cgroup,
            buf: vec![0; 16 << 10],
            report,
            report_buf: Vec::new(),
            net: None,
            generation: 0,
            trace: std::env::var_os("BERTH_TRACE").is_some(),
            adopted: false,
            paused: false,
            lost_at: None,
            ran: false,
            deferred: false,
        })
    }

    fn run(mut self, adopt: bool) -> i32 {
        if adopt {
            self.adopt();
            while self.phase != Phase::Done {
                self.turn();
            }
            return self.finish();
        }
        if let Err(msg) = self.create() {
            return self.fail_start(msg);
        }
        if self.attach_wait {
            self.say_ready("ok");
            self.phase = Phase::WaitAttach;
        } else {
            if let Err(msg) = self.start() {
                return self.fail_start(msg);
            }
            self.say_ready("ok");
        }
        while self.phase != Phase::Done {
            self.turn();
        }
        self.finish()
    }

    fn say_ready(&mut self, line: &str) {
        if let Some(mut r) = self.ready.take() {
            let _ = writeln!(r, "{line}");
        }
    }

    pub fn update_state(&mut self, f: impl FnOnce(&mut record::ContainerState)) {
        // A --rm container's record is deleted at its exit, as is one stopped by `rm -f`:
        // atomic, but not synced.
        let sync = !self.removed_at_exit();
        self.update_state_synced(sync, f);
    }

    /// Whether this monitor removes the container at its exit: `--rm`, or stopped by
    /// `rm -f` (whose client then finds it gone).
    fn removed_at_exit(&self) -> bool {
        self.cfg.options.auto_remove || self.removing.is_some()
    }

    /// A state that only means something while the container's processes live (pids,
    /// network, "running"): a crash takes the processes too, so nothing waits for the disk;
    /// exits are recorded with [`Self::update_state`]. Except with a restart policy: after a
    /// crash, `system boot` must read that the container ran.
    pub fn update_live_state(&mut self, f: impl FnOnce(&mut record::ContainerState)) {
        let sync = !self.cfg.options.auto_remove
            && self.cfg.options.restart != berth_engine::options::RestartPolicy::No;
        self.update_state_synced(sync, f);
    }

    fn update_state_synced(&mut self, sync: bool, f: impl FnOnce(&mut record::ContainerState)) {
        if let Err(e) = self.layout.update_state_with(&self.id, sync, f) {
            self.mlog.say(&format!("update state: {}", chain(&e)));
        }
    }

    pub fn event(&mut self, action: &str, extra: &[(&str, String)]) {
        let mut a = attrs(&self.cfg);
        for (k, v) in extra {
            a.insert(k.to_string(), v.clone());
        }
        if let Err(e) = berth_engine::events::emit(&self.layout, "container", action, &self.id, a) {
            self.mlog.say(&format!("event {action}: {}", chain(&e)));
        }
    }

    pub fn runtime(&self) -> Command {
        let mut c = Command::new(&self.cfg.runtime);
        c.arg("--root").arg(&self.cfg.runtime_root);
        c
    }

    fn runtime_log(&self) -> PathBuf {
        self.layout.container_dir(&self.id).join("runtime-log.json")
    }

    /// The runtime with `--log` (truncated first) so its error message can be read back.
    fn runtime_logged(&self) -> Command {
        let p = self.runtime_log();
        let _ = std::fs::remove_file(&p);
        let mut c = self.runtime();
        c.arg("--log").arg(p).args(["--log-format", "json"]);
        c
    }

    /// The runtime's last error message (runc/crun/berth-runtime JSON log lines), else
    /// `fallback`.
    fn runtime_error(&self, fallback: &str) -> String {
        let text = std::fs::read_to_string(self.runtime_log()).unwrap_or_default();
        let mut msg = None;
        for l in text.lines() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(l) {
                if v["level"] == "error" || v["level"] == "fatal" {
                    if let Some(m) = v["msg"].as_str() {
                        msg = Some(m.to_string());
                    }
                }
            }
        }
        msg.unwrap_or_else(|| fallback.trim().to_string())
    }

    fn delete_runtime(&mut self) {
        let st = self
            .runtime()
            .args(["delete", "--force", &self.id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !st.as_ref().is_ok_and(|s| s.success()) {
            self.mlog
                .say(&format!("runtime delete {}: {st:?}", self.id));
        }
    }

    /// One run's setup: networking prepared, `runtime create`, the namespace plugged in.
    fn create(&mut self) -> Result<(), String> {
        // A new run is our own child again.
        self.adopted = false;
        self.generation = self.generation.wrapping_add(1);
        let t0 = Instant::now();
        berth_engine::namespaces::join(&self.layout, &self.cfg).map_err(|e| chain(&e))?;
        self.net = net::prepare(&self.layout, &self.cfg, self.generation)
            .map_err(|e| format!("network: {}", chain(&e)))?;
        let t1 = Instant::now();
        let once = self.can_run_at_once();
        if once && self.attach_wait && self.generation == 1 {
            // Nothing to hold parked for the client: the first attach runs it.
            self.deferred = true;
        } else {
            self.ran = once;
            if let Err(m) = self.create_runtime() {
                self.release_net();
                return Err(m);
            }
            let t2 = Instant::now();
            // A run started at once may have ended already: nothing to plug into anyway.
            let plugged = match self.ran {
                true => Ok(()),
                false => net::plug(&self.cfg, self.net.as_ref(), self.pid),
            };
            if self.trace {
                self.trace(&format!(
                    "network prepare {:?}, runtime create {:?}, plug {:?}",
                    t1 - t0,
                    t2 - t1,
                    t2.elapsed()
                ));
            }
            if let Err(e) = plugged {
                self.delete_runtime();
                self.reap_init_blocking();
                self.close_stdio();
                self.release_net();
                return Err(format!("network: {}", chain(&e)));
            }
        }
        let ns = self.net.as_ref().map(|a| a.state.clone());
        self.update_live_state(|s| s.network = ns);
        Ok(())
    }

    /// A timing line: to the file BERTH_TRACE names (an absolute path: it outlives a --rm
    /// container's directory), else to monitor.log.
    fn trace(&mut self, line: &str) {
        match std::env::var_os("BERTH_TRACE").filter(|v| v.to_string_lossy().starts_with('/')) {
            Some(p) => {
                if let Ok(mut f) = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                {
                    let _ = writeln!(f, "{} {line}", &self.id[..12]);
                }
            }
            None => self.mlog.say(&format!("trace: {line}")),
        }
    }

    /// What the run held of the network goes back (an adopted run's, by its id).
    fn release_net(&mut self) {
        self.release_net_keeping(false)
    }

    /// [`Mon::release_net`]; `keep_leases` between two runs of a restart policy, so the
    /// container comes back with its addresses.
    fn release_net_keeping(&mut self, keep_leases: bool) {
        let errs = match self.net.take() {
            Some(a) => net::unplug(&self.layout, &self.cfg, a, keep_leases),
            None if self.adopted => net::unplug_owner(&self.layout, &self.cfg),
            None => vec![],
        };
        for e in errs {
            self.mlog.say(&format!("network: {e}"));
        }
    }

    /// `runtime create`: the init is parked before exec; it becomes our child (subreaper).
    fn create_runtime(&mut self) -> Result<(), String> {
        let dir = self.layout.container_dir(&self.id);
        let pidfile = dir.join("init.pid");
        let _ = std::fs::remove_file(&pidfile);
        // A previous run whose monitor died left the runtime's state behind; the CLI only
        // starts us when nothing of it runs any more.
        if std::path::Path::new(&self.cfg.runtime_root)
            .join(&self.id)
            .exists()
        {
            self.delete_runtime();
        }
        let mut cmd = self.runtime_logged();
        // `run --detach` creates and starts in one exec when the monitor has nothing to
        // do in between (see can_run_at_once).
        if self.ran {
            cmd.args(["run", "--detach"]);
        } else {
            cmd.arg("create");
        }
        cmd.arg("--bundle")
            .arg(self.layout.bundle_dir(&self.id))
            .arg("--pid-file")
            .arg(&pidfile);
        let mut console = None;
        if self.cfg.options.tty {
            let cdir = PathBuf::from(format!("/run/berth-monitor-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&cdir);
            berth_engine::layout::mkdir_private(&cdir).map_err(|e| chain(&e))?;
            let sock = cdir.join("console.sock");
            let l =
                UnixListener::bind(&sock).map_err(|e| format!("bind {}: {e}", sock.display()))?;
            cmd.arg("--console-socket").arg(&sock);
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            console = Some((cdir, l));
        } else {
            let (or, ow) = pipe()?;
            let (er, ew) = pipe()?;
            nonblock(&or);
            nonblock(&er);
            cmd.stdout(Stdio::from(ow)).stderr(Stdio::from(ew));
            if self.cfg.options.open_stdin {
                let (ir, iw) = pipe()?;
                nonblock(&iw);
                cmd.stdin(Stdio::from(ir));
                self.stdin = Some(iw);
            } else {
                cmd.stdin(Stdio::null());
            }
            self.out = Some(or);
            self.err = Some(er);
        }
        cmd.arg(&self.id);
        let st = cmd.status();
        // Our copies of the child's ends go now, so EOF means the container closed them.
        drop(cmd);
        let st = st.map_err(|e| format!("run {}: {e}", self.cfg.runtime))?;
        let pty = console.map(|(cdir, l)| {
            let r = if st.success() {
                recv_pty(&l)
            } else {
                Err(String::new())
            };
            drop(l);
            let _ = std::fs::remove_dir_all(&cdir);
            r
        });
        if !st.success() {
            self.close_stdio();
            let msg = self.runtime_error(&format!("runtime create failed ({st})"));
            if self.ran {
                // A run that failed at its start may leave the created container.
                self.delete_runtime();
                if let Some(pid) = std::fs::read_to_string(&pidfile)
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                {
                    self.pid = pid;
                    self.reap_init_blocking();
                }
            }
            return Err(msg);
        }
        if let Some(p) = pty {
            let p = p?;
            nonblock(&p);
            self.pty = Some(p);
        }
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| format!("runtime wrote no pid to {}", pidfile.display()))?;
        let pidfd = rustix::process::Pid::from_raw(pid)
            .ok_or_else(|| format!("bad pid {pid}"))
            .and_then(|p| {
                rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty())
                    .map_err(|e| format!("pidfd_open {pid}: {e}"))
            })?;
        self.pid = pid;
        self.pidfd = Some(pidfd);
        let pid_start = record::pid_start_time(pid).unwrap_or(0);
        let (me, me_start, keeper, keeper_start) = ids();
        self.update_live_state(|s| {
            s.pid = pid;
            s.pid_start = pid_start;
            s.monitor_pid = me;
            s.monitor_start = me_start;
            s.keeper_pid = keeper;
            s.keeper_start = keeper_start;
        });
        Ok(())
    }

    /// Takes over after a killed monitor (keeper.rs): the record says what the container
    /// was doing; the init, if it still runs or has just died, is the keeper's child.
    fn adopt(&mut self) {
        let (me, me_start, keeper, keeper_start) = ids();
        let st = self.layout.load_state(&self.id).unwrap_or_default();
        self.mlog.say(&format!(
            "adopting container {} (status {}, pid {}) after its monitor died",
            self.id,
            st.status.as_str(),
            st.pid
        ));
        self.update_state(|s| {
            s.monitor_pid = me;
            s.monitor_start = me_start;
            s.keeper_pid = keeper;
            s.keeper_start = keeper_start;
        });
        self.restart_count = st.restart_count;
        self.stopped_by_user = st.stopped_by_user;
        // The init as recorded: alive, or a zombie whose exit the keeper will report.
        let init_known = st.pid > 0 && record::same_process(st.pid, st.pid_start);
        match st.status {
            Status::Running | Status::Paused if st.pid > 0 && !init_known => {
                // Gone already: the keeper may have reaped it just now (its report is on
                // the way), or the old monitor reaped it and died before recording it.
                self.adopted = true;
                self.pid = st.pid;
                self.phase = Phase::Running;
                self.lost_at = Some(Instant::now() + Duration::from_secs(1));
            }
            Status::Running | Status::Paused if init_known => {
                self.adopted = true;
                self.pid = st.pid;
                self.pidfd = rustix::process::Pid::from_raw(st.pid).and_then(|p| {
                    rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok()
                });
                self.phase = Phase::Running;
                self.paused = st.status == Status::Paused;
                for h in [self.health.as_mut(), self.readiness.as_mut()]
                    .into_iter()
                    .flatten()
                {
                    h.on_start(Instant::now());
                    if st.status == Status::Paused {
                        h.pause();
                    }
                }
            }
            Status::Created | Status::Restarting if init_known => {
                // Made but never started (or restarting): nobody attached will come back
                // for it. End it; its exit follows as a report.
                self.adopted = true;
                self.pid = st.pid;
                self.pidfd = rustix::process::Pid::from_raw(st.pid).and_then(|p| {
                    rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok()
                });
                self.phase = Phase::Running;
                self.signal(SIGKILL);
            }

            Status::Restarting => {
                // Between two runs: go on with the restart policy.
                self.phase = Phase::Backoff;
                self.restart_at = Some(Instant::now());
            }
            _ => self.phase = Phase::Done,
        }
    }

    /// Reads the keeper's reports; the adopted init's exit ends its run.
    fn read_reports(&mut self) {
        let mut b = [0u8; 512];
        loop {
            match rustix::io::read(&self.report, &mut b) {
                Ok(0) => break,
                Ok(n) => self.report_buf.extend_from_slice(&b[..n]),
                Err(_) => break,
            }
        }
        while let Some(i) = self.report_buf.iter().position(|c| *c == b'\n') {
            let line: Vec<u8> = self.report_buf.drain(..=i).collect();
            let line = String::from_utf8_lossy(&line);
            let mut it = line.split_whitespace();
            let (Some(pid), Some(code)) = (
                it.next().and_then(|p| p.parse::<i32>().ok()),
                it.next().and_then(|c| c.parse::<i32>().ok()),
            ) else {
                continue;
            };
            if pid == self.pid && self.pid > 0 {
                self.lost_at = None;
                self.on_exit(code);
            }
        }
    }

    fn close_stdio(&mut self) {
        self.out = None;
        self.err = None;
        self.pty = None;
        self.stdin = None;
        self.stdin_buf.clear();
        self.stdin_close = false;
    }

    /// Whether this run is made by one `runtime run --detach` instead of create + start:
    /// when the network needs nothing plugged in between (a client that waits to attach
    /// first defers the whole run to its attach). lo of `--network none` is up already when berth-runtime made the
    /// namespace (as crun, not runc: another runtime still goes through create).
    fn can_run_at_once(&self) -> bool {
        use berth_engine::options::NetworkMode;
        match &self.cfg.options.network {
            NetworkMode::Host | NetworkMode::Container(_) => true,
            NetworkMode::None => self.cfg.options.runtime.is_none(),
            _ => false,
        }
    }

    /// `runtime start` (unless `run --detach` started it already); on failure the
    /// created container is deleted again.
    fn start(&mut self) -> Result<(), String> {
        if std::mem::take(&mut self.deferred) {
            self.ran = true;
            if let Err(m) = self.create_runtime() {
                self.ran = false;
                self.release_net();
                return Err(m);
            }
        }
        if std::mem::take(&mut self.ran) {
            self.mark_started();
            return Ok(());
        }
        if let Err(msg) = self.runtime_step("start") {
            self.delete_runtime();
            self.reap_init_blocking();
            self.close_stdio();
            self.release_net();
            return Err(msg);
        }
        self.mark_started();
        Ok(())
    }

    /// The run is started: its record says running, the health checks begin.
    fn mark_started(&mut self) {
        self.started = Instant::now();
        self.phase = Phase::Running;
        let now = record::now_rfc3339();
        let (count, by_user) = (self.restart_count, self.stopped_by_user);
        let health = self.health.as_mut().map(|h| h.on_start(Instant::now()));
        let readiness = self.readiness.as_mut().map(|h| h.on_start(Instant::now()));
        self.update_live_state(|s| {
            s.status = Status::Running;
            s.started_at = now;
            s.finished_at = String::new();
            s.exit_code = 0;
            s.oom_killed = false;
            s.error = String::new();
            s.restart_count = count;
            s.stopped_by_user = by_user;
            if let Some(h) = health {
                let mut hs = s.health.take().unwrap_or_default();
                hs.status = h;
                hs.failing_streak = 0;
                s.health = Some(hs);
            }
            if let Some(h) = readiness {
                let mut hs = s.readiness.take().unwrap_or_default();
                hs.status = h;
                hs.failing_streak = 0;
                s.readiness = Some(hs);
            }
        });
        self.event("start", &[]);
    }

    fn reap_init_blocking(&mut self) {
        if let Some(p) = rustix::process::Pid::from_raw(self.pid) {
            let _ = rustix::process::waitpid(Some(p), rustix::process::WaitOptions::empty());
        }
        self.pid = 0;
        self.pidfd = None;
    }

    /// The first create/start failed: report it, tidy up, leave.
    fn fail_start(&mut self, msg: String) -> i32 {
        self.mlog.say(&format!("start failed: {msg}"));
        self.say_ready(&format!("error: {msg}"));
        if self.pid > 0 {
            self.delete_runtime();
            self.reap_init_blocking();
        }
        self.release_net();
        self.fail_after_attach(msg);
        self.clients.retain(|c| !c.dead);
        self.finish();
        1
    }

    /// One round of the loop: timers, poll, events.
    fn turn(&mut self) {
        let now = Instant::now();
        if self.stop_deadline.is_some_and(|d| now >= d) {
            self.stop_deadline = None;
            self.signal(SIGKILL);
        }
        if self.phase == Phase::Backoff && self.restart_at.is_some_and(|t| now >= t) {
            self.restart_at = None;
            self.relaunch();
            return;
        }
        if self.lost_at.is_some_and(|t| now >= t) {
            self.lost_at = None;
            if self.adopted && self.pid > 0 {
                self.mlog
                    .say("the container's exit was lost with its monitor; recorded as 255");
                self.on_exit(berth_engine::status::LOST_EXIT_CODE);
                return;
            }
        }
        if self.phase == Phase::Running {
            self.health_tick(now);
        }
        let mut deadline: Option<Instant> = None;
        for d in [
            self.stop_deadline,
            self.restart_at,
            self.lost_at,
            self.health.as_ref().and_then(|h| h.deadline()),
            self.readiness.as_ref().and_then(|h| h.deadline()),
        ]
        .into_iter()
        .flatten()
        {
            deadline = Some(deadline.map_or(d, |x| x.min(d)));
        }
        let timeout = deadline.map(|d| {
            let left = d.saturating_duration_since(Instant::now());
            rustix::fs::Timespec {
                tv_sec: left.as_secs() as i64,
                tv_nsec: left.subsec_nanos() as i64 + 1_000_000,
            }
        });

        let mut ready: Vec<(Tag, PollFlags)> = Vec::with_capacity(8);
        {
            let mut tags = Vec::with_capacity(8);
            let mut fds = Vec::with_capacity(8);
            let inp = PollFlags::IN;
            fds.push(PollFd::new(&self.listener, inp));
            tags.push(Tag::Listener);
            let read_clients = self.stdin_buf.len() < STDIN_HIGH;
            for (i, c) in self.clients.iter().enumerate() {
                if read_clients || c.role == Role::New {
                    fds.push(PollFd::new(&c.s, inp));
                    tags.push(Tag::Client(i));
                }
            }
            if let Some(f) = &self.out {
                fds.push(PollFd::new(f, inp));
                tags.push(Tag::Out);
            }
            if let Some(f) = &self.err {
                fds.push(PollFd::new(f, inp));
                tags.push(Tag::Err);
            }
            if let Some(f) = &self.pty {
                let mut fl = inp;
                if !self.stdin_buf.is_empty() {
                    fl |= PollFlags::OUT;
                }
                fds.push(PollFd::new(f, fl));
                tags.push(Tag::Pty);
            }
            if let Some(f) = &self.stdin {
                if !self.stdin_buf.is_empty() {
                    fds.push(PollFd::new(f, PollFlags::OUT));
                    tags.push(Tag::Stdin);
                }
            }
            // An adopted init is not our child: its exit comes from the keeper.
            if let Some(f) = self.pidfd.as_ref().filter(|_| !self.adopted) {
                fds.push(PollFd::new(f, inp));
                tags.push(Tag::Init);
            }
            fds.push(PollFd::new(&self.report, inp));
            tags.push(Tag::Keeper);
            for (w, h) in [
                (Which::Health, &self.health),
                (Which::Readiness, &self.readiness),
            ] {
                let Some(p) = h.as_ref().and_then(|h| h.probe.as_ref()) else {
                    continue;
                };
                if let Some(fd) = &p.pidfd {
                    fds.push(PollFd::new(fd, inp));
                    tags.push(Tag::Probe);
                }
                if let Some(o) = &p.out {
                    fds.push(PollFd::new(o, inp));
                    tags.push(Tag::ProbeOut(w));
                }
            }
            match rustix::event::poll(&mut fds, timeout.as_ref()) {
                Ok(_) => {}
                Err(Errno::INTR) => return,
                Err(e) => {
                    self.mlog.say(&format!("poll: {e}"));
                    std::thread::sleep(Duration::from_millis(100));
                    return;
                }
            }
            for (f, t) in fds.iter().zip(tags) {
                let r = f.revents();
                if !r.is_empty() {
                    ready.push((t, r));
                }
            }
        }
        let mut init_ready = false;
        for (tag, rev) in ready {
            match tag {
                Tag::Listener => self.accept(),
                Tag::Client(i) => self.read_client(i),
                Tag::Out | Tag::Err => {
                    self.read_output(tag);
                }
                Tag::Pty => {
                    if rev.contains(PollFlags::OUT) {
                        self.flush_stdin();
                    }
                    if rev.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR) {
                        self.read_output(tag);
                    }
                }
                Tag::Stdin => self.flush_stdin(),
                Tag::ProbeOut(w) => crate::health::read(self, w),
                Tag::Init => init_ready = true,
                Tag::Keeper => self.read_reports(),
                Tag::Probe => {}
            }
        }
        self.reap();
        if init_ready && self.pid > 0 {
            self.init_not_reaped();
        }
        self.clients.retain(|c| !c.dead);
    }

    /// The init's pidfd says it ended but waitpid(-1) did not return it: unless it is
    /// still a zombie on its way, it is not our child (a runtime that did not leave it to
    /// us as subreaper). Its status is lost then; do not spin on the pidfd.
    fn init_not_reaped(&mut self) {
        let Some(pid) = rustix::process::Pid::from_raw(self.pid) else {
            return;
        };
        match rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::NOHANG) {
            Ok(Some((_, st))) => {
                let code = st
                    .exit_status()
                    .or_else(|| st.terminating_signal().map(|s| 128 + s))
                    .unwrap_or(255);
                self.on_exit(code);
            }
            Ok(None) => {}
            Err(e) => {
                self.mlog.say(&format!(
                    "container init {} exited but is not our child ({e}); exit code unknown",
                    self.pid
                ));
                self.on_exit(255);
            }
        }
    }

    /// Reaps every child that exited: the init, a health probe, orphans.
    fn reap(&mut self) {
        while let Ok(Some((pid, st))) = rustix::process::wait(rustix::process::WaitOptions::NOHANG)
        {
            let pid = pid.as_raw_nonzero().get();
            let code = st
                .exit_status()
                .or_else(|| st.terminating_signal().map(|s| 128 + s))
                .unwrap_or(255);
            if pid == self.pid {
                self.on_exit(code);
            } else if let Some(w) = crate::health::probe_of(self, pid) {
                crate::health::done(self, w, code);
            }
        }
    }

    fn accept(&mut self) {
        while let Ok((s, _)) = self.listener.accept() {
            let _ = s.set_nonblocking(false);
            let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
            self.clients.push(Client {
                s,
                buf: Vec::new(),
                role: Role::New,
                dead: false,
            });
        }
    }

    fn read_client(&mut self, i: usize) {
        let n = match rustix::net::recv(
            &self.clients[i].s,
            &mut self.buf[..],
            rustix::net::RecvFlags::DONTWAIT,
        ) {
            Ok((n, _)) => n,
            Err(Errno::AGAIN) | Err(Errno::INTR) => return,
            Err(_) => 0,
        };
        if n == 0 {
            let c = &mut self.clients[i];
            c.dead = true;
            // `run -i` ends: its stdin goes with it (docker's StdinOnce).
            if matches!(c.role, Role::Attach { stdin: true, .. }) && self.stdin.is_some() {
                self.stdin_close = true;
                self.flush_stdin();
            }
            return;
        }
        let data = self.buf[..n].to_vec();
        self.clients[i].buf.extend_from_slice(&data);
        loop {
            let b = &self.clients[i].buf;
            if b.len() < 5 {
                break;
            }
            let len = u32::from_be_bytes([b[1], b[2], b[3], b[4]]);
            if len > proto::MAX_FRAME {
                self.clients[i].dead = true;
                return;
            }
            let total = 5 + len as usize;
            if b.len() < total {
                break;
            }
            let kind = b[0];
            let payload: Vec<u8> = b[5..total].to_vec();
            self.clients[i].buf.drain(..total);
            self.frame(i, kind, payload);
            if self.clients[i].dead {
                return;
            }
        }
    }

    fn frame(&mut self, i: usize, kind: u8, payload: Vec<u8>) {
        let role = self.clients[i].role;
        match (role, kind) {
            (Role::New, proto::REQUEST) => match serde_json::from_slice::<Request>(&payload) {
                Ok(r) => self.request(i, r),
                Err(e) => self.reply_error(i, &format!("bad request: {e}")),
            },
            (Role::New, _) => self.reply_error(i, "expected a request"),
            (Role::Attach { stdin: true, .. }, proto::STDIN)
                if (self.stdin.is_some() || self.pty.is_some()) =>
            {
                self.stdin_buf.extend_from_slice(&payload);
                self.flush_stdin();
            }
            (Role::Attach { .. }, proto::RESIZE) => {
                if let (Some(p), Some((rows, cols))) = (&self.pty, proto::parse_resize(&payload)) {
                    let ws = rustix::termios::Winsize {
                        ws_row: rows,
                        ws_col: cols,
                        ws_xpixel: 0,
                        ws_ypixel: 0,
                    };
                    let _ = rustix::termios::tcsetwinsize(p, ws);
                }
            }
            (Role::Attach { stdin: true, .. }, proto::STDIN_EOF) if self.stdin.is_some() => {
                self.stdin_close = true;
                self.flush_stdin();
            }
            _ => {}
        }
    }

    fn reply_error(&mut self, i: usize, msg: &str) {
        let c = &mut self.clients[i];
        let _ = proto::write_frame(&mut c.s, proto::ERROR, msg.as_bytes());
        c.dead = true;
    }

    fn request(&mut self, i: usize, r: Request) {
        match r {
            Request::Attach { .. } if self.adopted => {
                let msg = format!(
                    "container {} runs on, but its output was lost when its monitor was \
                     killed; attach is not possible until it restarts (see `logs` for what \
                     was written before)",
                    self.id
                );
                self.reply_error(i, &msg);
            }
            Request::Attach {
                stdin,
                stdout,
                stderr,
            } => {
                self.clients[i].role = Role::Attach {
                    stdin,
                    stdout,
                    stderr,
                };
                if self.phase == Phase::WaitAttach {
                    if let Err(msg) = self.start() {
                        // fail_start reports to this client and leaves the loop.
                        self.mlog.say(&format!("start failed: {msg}"));
                        self.fail_after_attach(msg);
                    }
                }
            }
            Request::Wait => self.clients[i].role = Role::Wait,
            Request::Start => {
                let r = match self.phase {
                    Phase::WaitAttach => self.start(),
                    _ => Ok(()),
                };
                match r {
                    Ok(()) => {
                        let c = &mut self.clients[i];
                        let _ = proto::write_frame(&mut c.s, proto::OK, b"");
                        c.dead = true;
                    }
                    Err(msg) => {
                        self.mlog.say(&format!("start failed: {msg}"));
                        self.reply_error(i, &msg);
                        self.fail_after_attach(msg);
                    }
                }
            }
            Request::Pause(on) => match self.freeze(on) {
                Ok(()) => {
                    let c = &mut self.clients[i];
                    let _ = proto::write_frame(&mut c.s, proto::OK, b"");
                    c.dead = true;
                }
                Err(msg) => self.reply_error(i, &msg),
            },
            Request::Kill { signal } => {
                self.by_user();
                match self.phase {
                    Phase::Backoff => self.phase = Phase::Done,
                    _ => self.signal(signal),
                }
                let c = &mut self.clients[i];
                let _ = proto::write_frame(&mut c.s, proto::OK, b"");
                c.dead = true;
            }
            Request::Stop {
                signal,
                timeout_secs,
                removing,
                remove_volumes,
            } => {
                if removing {
                    self.removing = Some(remove_volumes);
                }
                self.clients[i].role = Role::Stop;
                let sig = if signal > 0 {
                    signal
                } else {
                    self.cfg.stop_signal
                };
                let secs = if timeout_secs >= 0 {
                    timeout_secs
                } else {
                    self.cfg.options.stop_timeout.unwrap_or(10).max(0)
                };
                self.stop(sig, secs);
            }
        }
    }

    pub fn stop(&mut self, sig: i32, secs: i64) {
        self.by_user();
        match self.phase {
            Phase::Backoff => self.phase = Phase::Done,
            // Never started: nothing to be polite to.
            Phase::WaitAttach => self.signal(SIGKILL),
            Phase::Running => {
                if secs == 0 {
                    self.signal(SIGKILL);
                } else {
                    self.signal(sig);
                    let d = Instant::now() + Duration::from_secs(secs as u64);
                    self.stop_deadline = Some(self.stop_deadline.map_or(d, |x| x.min(d)));
                }
            }
            Phase::Done => {}
        }
    }

    pub fn by_user(&mut self) {
        if !self.stopped_by_user {
            self.stopped_by_user = true;
            self.update_state(|s| s.stopped_by_user = true);
        }
    }

    /// `runtime start` failed after the ready line: the attached clients get the error
    /// (an ERROR frame), the record gets the code docker would give (as the CLI maps it).
    fn fail_after_attach(&mut self, msg: String) {
        for c in self.clients.iter_mut() {
            if matches!(c.role, Role::Attach { .. }) {
                let _ = proto::write_frame(&mut c.s, proto::ERROR, msg.as_bytes());
                c.dead = true;
            }
        }
        let now = record::now_rfc3339();
        // The same mapping the CLI applies to the message.
        let code = berth_engine::create::start_failure_code(&msg);
        self.update_state(|s| {
            s.status = Status::Exited;
            s.pid = 0;
            s.exit_code = code;
            s.error = msg;
            s.finished_at = now;
        });
        self.last = ExitInfo {
            exit_code: code,
            oom_killed: false,
        };
        self.phase = Phase::Done;
    }

    /// Sends `sig` to the container's init (through its pidfd, so never to a recycled pid).
    pub fn signal(&mut self, sig: i32) {
        let Some(fd) = &self.pidfd else { return };
        let r = match rustix::process::Signal::from_named_raw(sig) {
            Some(s) => rustix::process::pidfd_send_signal(fd, s).map_err(|e| e.to_string()),
            None => self
                .runtime()
                .args(["kill", &self.id, &sig.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map_err(|e| e.to_string())
                .map(|_| ()),
        };
        if let Err(e) = r {
            self.mlog.say(&format!("signal {sig}: {e}"));
        }
        // A frozen process gets its signal when thawed (docker unpauses to deliver it).
        if self.paused {
            if let Err(e) = self.freeze(false) {
                self.mlog
                    .say(&format!("unpause to deliver signal {sig}: {e}"));
            }
        }
    }

    /// `runtime STEP <id>` (start, pause, resume): its error message (from its log) when
    /// it fails.
    fn runtime_step(&self, step: &str) -> Result<(), String> {
        let out = self
            .runtime_logged()
            .args([step, &self.id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("run {}: {e}", self.cfg.runtime))?;
        if out.status.success() {
            return Ok(());
        }
        let msg = self.runtime_error(&String::from_utf8_lossy(&out.stderr));
        Err(if msg.is_empty() {
            format!("runtime {step} failed ({})", out.status)
        } else {
            msg
        })
    }

    /// `pause` (on) and `unpause`: the runtime's freezer, the state and an event.
    fn freeze(&mut self, on: bool) -> Result<(), String> {
        if self.phase != Phase::Running {
            return Err(format!("container {} is not running", self.id));
        }
        if on == self.paused {
            return Err(if on {
                format!("container {} is already paused", self.id)
            } else {
                format!("container {} is not paused", self.id)
            });
        }
        self.runtime_step(if on { "pause" } else { "resume" })?;
        self.paused = on;
        for h in [self.health.as_mut(), self.readiness.as_mut()]
            .into_iter()
            .flatten()
        {
            if on {
                h.pause();
            } else {
                h.resume(Instant::now());
            }
        }
        self.update_state(|s| {
            s.status = if on { Status::Paused } else { Status::Running };
        });
        self.event(if on { "pause" } else { "unpause" }, &[]);
        Ok(())
    }

    /// Reads one chunk; false when there was nothing (yet) or the stream ended.
    fn read_output(&mut self, tag: Tag) -> bool {
        let (fd, stream, kind) = match tag {
            Tag::Out => (self.out.as_ref(), "stdout", proto::STDOUT),
            Tag::Err => (self.err.as_ref(), "stderr", proto::STDERR),
            _ => (self.pty.as_ref(), "stdout", proto::STDOUT),
        };
        let Some(fd) = fd else { return false };
        let n = match rustix::io::read(fd, &mut self.buf[..]) {
            Ok(n) => n,
            Err(Errno::AGAIN) | Err(Errno::INTR) => return false,
            // A pty master reads EIO once the last slave fd closed.
            Err(_) => 0,
        };
        if n == 0 {
            match tag {
                Tag::Out => self.out = None,
                Tag::Err => self.err = None,
                _ => self.pty = None,
            }
            return false;
        }
        self.output(stream, kind, n);
        true
    }

    /// Logs `self.buf[..n]` and forwards it to attached clients.
    fn output(&mut self, stream: &str, kind: u8, n: usize) {
        if let Err(e) = self.log.write(stream, &self.buf[..n], SystemTime::now()) {
            self.mlog.say(&format!("log: {}", chain(&e)));
        }
        for c in self.clients.iter_mut() {
            let want = match c.role {
                Role::Attach { stdout, stderr, .. } => {
                    if kind == proto::STDOUT {
                        stdout
                    } else {
                        stderr
                    }
                }
                _ => false,
            };
            if want && !c.dead && proto::write_frame(&mut c.s, kind, &self.buf[..n]).is_err() {
                c.dead = true;
            }
        }
    }

    /// Whatever the container wrote before it exited.
    fn drain_output(&mut self) {
        for tag in [Tag::Out, Tag::Err, Tag::Pty] {
            while self.read_output(tag) {}
        }
    }

    fn flush_stdin(&mut self) {
        let target = self.stdin.as_ref().or(self.pty.as_ref());
        if let Some(fd) = target {
            while !self.stdin_buf.is_empty() {
                match rustix::io::write(fd, &self.stdin_buf) {
                    Ok(n) => {
                        self.stdin_buf.drain(..n);
                    }
                    Err(Errno::AGAIN) | Err(Errno::INTR) => break,
                    Err(_) => {
                        self.stdin_buf.clear();
                        self.stdin = None;
                        break;
                    }
                }
            }
        } else {
            self.stdin_buf.clear();
        }
        if self.stdin_close && self.stdin_buf.is_empty() {
            self.stdin = None;
            self.stdin_close = false;
        }
    }

    /// The oom_kill counter of the container's memory cgroup (read before `runtime delete`
    /// removes the cgroup).
    fn oom_killed(&self) -> bool {
        let Some(cg) = &self.cgroup else { return false };
        let cg = cg.trim_start_matches('/');
        let (file, key) = if std::path::Path::new("/sys/fs/cgroup/memory").is_dir() {
            (
                format!("/sys/fs/cgroup/memory/{cg}/memory.oom_control"),
                "oom_kill ",
            )
        } else {
            (format!("/sys/fs/cgroup/{cg}/memory.events"), "oom_kill ")
        };
        std::fs::read_to_string(file)
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| {
                    l.strip_prefix(key)
                        .and_then(|v| v.trim().parse::<u64>().ok())
                })
            })
            .is_some_and(|n| n > 0)
    }

    fn on_exit(&mut self, code: i32) {
        self.drain_output();
        let oom = self.oom_killed();
        self.pid = 0;
        self.pidfd = None;
        self.close_stdio();
        self.stop_deadline = None;
        self.health_cancel();
        self.last = ExitInfo {
            exit_code: code,
            oom_killed: oom,
        };
        let ran = self.started.elapsed();
        // `update --restart` changes the record, not this process: read it now.
        if let Ok(c) = self.layout.load_config(&self.id) {
            self.cfg.options.restart = c.options.restart;
        }
        let restart = self.phase != Phase::WaitAttach
            && !self.stopped_by_user
            && (std::mem::take(&mut self.force_restart)
                || match self.cfg.options.restart {
                    RestartPolicy::No => false,
                    RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
                    RestartPolicy::OnFailure(n) => code != 0 && (n == 0 || self.restart_count < n),
                });
        let t = Instant::now();
        self.release_net_keeping(restart);
        if self.trace {
            self.trace(&format!("network release {:?}", t.elapsed()));
        }
        // A --rm container's runtime state goes after the EXIT frames (finish()):
        // `run --rm` need not wait for that process.
        if restart || !self.removed_at_exit() {
            self.delete_runtime();
        }
        if restart {
            self.restart_count += 1;
            if ran >= BACKOFF_RESET {
                self.backoff = BACKOFF_MIN;
            }
            self.restart_at = Some(Instant::now() + self.backoff);
            self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
            self.phase = Phase::Backoff;
        } else {
            self.phase = Phase::Done;
        }
        let now = record::now_rfc3339();
        // With --rm the record is about to go: spare a synced write (finish() writes it
        // should the removal fail). Until then the dead pid tells the truth.
        if self.removed_at_exit() && !restart {
            self.finished_at = now;
        } else {
            self.write_exit(restart, now);
        }
        if oom {
            self.event("oom", &[]);
        }
        self.event("die", &[("exitCode", code.to_string())]);
    }

    fn write_exit(&mut self, restart: bool, now: String) {
        let (count, code, oom) = (
            self.restart_count,
            self.last.exit_code,
            self.last.oom_killed,
        );
        self.update_state(|s| {
            s.status = if restart {
                Status::Restarting
            } else {
                Status::Exited
            };
            s.pid = 0;
            s.exit_code = code;
            s.oom_killed = oom;
            s.finished_at = now;
            s.restart_count = count;
            s.network = None;
        });
    }

    fn relaunch(&mut self) {
        self.event("restart", &[]);
        let r = self.create().and_then(|_| self.start());
        if let Err(msg) = r {
            self.mlog.say(&format!("restart failed: {msg}"));
            let now = record::now_rfc3339();
            self.update_state(|s| {
                s.status = Status::Exited;
                s.pid = 0;
                s.error = msg;
                s.finished_at = now;
            });
            self.phase = Phase::Done;
        }
    }

    /// Final exit: unmount, --rm, EXIT to every waiting client, remove the socket.
    fn finish(&mut self) -> i32 {
        // Kept across a restart that does not come (stopped during the backoff).
        net::release_leases(&self.layout, &self.cfg);
        let removed = self.removed_at_exit();
        // With --rm (or rm -f) the removal unmounts it.
        if !removed {
            if let Err(e) = berth_image::overlay::unmount_rootfs(&self.store, &self.id, false) {
                self.mlog.say(&format!("unmount rootfs: {}", chain(&e)));
            }
        }
        // Normally on_exit wrote the final state already; a stop during backoff did not.
        let live = |s: &record::ContainerState| {
            matches!(
                s.status,
                Status::Restarting | Status::Running | Status::Created
            )
        };
        let stale = self
            .layout
            .load_state(&self.id)
            .is_ok_and(|s| s.pid != 0 || live(&s));
        if stale && !removed {
            self.update_state(|s| {
                if live(s) {
                    s.status = Status::Exited;
                }
                s.pid = 0;
            });
        }
        let mut leftovers = None;
        if removed {
            // Gone for every reader once detached; its trees are deleted after the EXIT
            // frames, so `run --rm` does not wait for that.
            // --rm takes the anonymous volumes along (docker's); rm -f only with -v.
            let volumes = self.cfg.options.auto_remove || self.removing == Some(true);
            match berth_engine::remove::detach_container_by_monitor(
                &self.layout,
                &self.store,
                &self.id,
                volumes,
            ) {
                Ok(l) => leftovers = Some(l),
                Err(e) => {
                    self.mlog.say(&format!("remove: {}", chain(&e)));
                    self.delete_runtime();
                    let _ = berth_image::overlay::unmount_rootfs(&self.store, &self.id, false);
                    let now = std::mem::take(&mut self.finished_at);
                    if !now.is_empty() {
                        self.write_exit(false, now);
                    }
                }
            }
        }
        let payload = serde_json::to_vec(&self.last).expect("exit info serialises");
        // Clients that connected while the exit was being handled are still in the
        // backlog or have not sent their request yet: each gets its request read and the
        // EXIT (closing with a request unread would reset the connection).
        self.accept();
        for c in self.clients.iter_mut() {
            if c.dead {
                continue;
            }
            if c.role == Role::New && c.buf.is_empty() {
                let _ = c.s.set_read_timeout(Some(Duration::from_millis(200)));
                let _ = proto::read_frame(&mut c.s);
            }
            let _ = proto::write_frame(&mut c.s, proto::EXIT, &payload);
        }
        self.clients.clear();
        if leftovers.is_some() && Path::new(&self.cfg.runtime_root).join(&self.id).exists() {
            self.delete_runtime();
        }
        if let Some(l) = leftovers {
            // The log is gone with the directory: nowhere to say a failure.
            let _ = l.delete();
        }
        if !removed {
            let _ = std::fs::remove_file(self.layout.attach_path(&self.id));
        }
        0
    }
}

/// This process's and its keeper's (parent's) pid and start time.
fn ids() -> (i32, u64, i32, u64) {
    let me = std::process::id() as i32;
    // Our parent is the keeper unless the keeper died (we were reparented then).
    let keeper = rustix::process::getppid()
        .map_or(0, |p| p.as_raw_nonzero().get())
        .max(0);
    let keeper = if std::fs::read_to_string(format!("/proc/{keeper}/comm"))
        .is_ok_and(|c| c.trim_end() == "berth-monitor")
    {
        keeper
    } else {
        0
    };
    (
        me,
        record::pid_start_time(me).unwrap_or(0),
        keeper,
        record::pid_start_time(keeper).unwrap_or(0),
    )
}

/// The pty master the runtime sent on the console socket (SCM_RIGHTS).
fn recv_pty(l: &UnixListener) -> Result<OwnedFd, String> {
    l.set_nonblocking(true).map_err(|e| e.to_string())?;
    let (s, _) = l
        .accept()
        .map_err(|e| format!("the runtime sent no console: {e}"))?;
    s.set_nonblocking(false).map_err(|e| e.to_string())?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    proto::recv_fd(s.as_fd()).map_err(|e| format!("receive the console: {e}"))
}

impl Mon {
    /// Health events of the loop live in health.rs; these glue them to the monitor.
    fn health_tick(&mut self, now: Instant) {
        crate::health::tick(self, now);
    }
    fn health_cancel(&mut self) {
        for h in [self.health.as_mut(), self.readiness.as_mut()]
            .into_iter()
            .flatten()
        {
            h.cancel();
        }
    }
    /// The container's init while it lives (0 otherwise).
    pub fn pid(&self) -> i32 {
        self.pid
    }
    /// What health_on_failure says to do once the container turned unhealthy.
    pub fn on_unhealthy(&mut self) {
        match self.cfg.options.health_on_failure {
            HealthOnFailure::None => {}
            HealthOnFailure::Kill => {
                self.by_user();
                self.signal(SIGKILL);
            }
            HealthOnFailure::Stop => {
                let secs = self.cfg.options.stop_timeout.unwrap_or(10).max(0);
                let sig = self.cfg.stop_signal;
                self.stop(sig, secs);
            }
            HealthOnFailure::Restart => {
                self.force_restart = true;
                self.signal(SIGKILL);
            }
        }
    }
}
