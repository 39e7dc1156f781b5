//! The per-project supervisor (`berth compose supervise`): keeps the desired state
//! (`desired.json`) true of the project's containers, after `up -d` has returned.
//!
//! One thread decides; worker threads do the blocking engine calls (create+start, stop+rm)
//! and report back through a channel and a wake-up pipe. The loop sleeps in poll(2) on:
//! - a pidfd per running replica: a replica's death is seen the moment its init exits,
//!   and the replica leaves the load balancer before anything else happens;
//! - inotify on the engine's event log (health changes, exit codes from the monitors) and
//!   on the project directory (a new desired.json);
//! - the wake-up pipe (a worker finished);
//! - the earliest timer (a restart delay, the next batch of a rolling update, the
//!   autoscaler's one-second sample) as poll's timeout.
//!
//! Nothing is polled on a period except the autoscaler's CPU and connection samples.
//! docs/services.md draws the loop and the load balancer's updates.

use crate::compose::{
    AutoscaleTarget, Condition, FailureAction, HealthRole, Order, RestartCondition, Service,
    UpdateConfig,
};
use crate::lb::Balancer;
use crate::replicas::{self, L_HASH, L_SERVICE};
use crate::state::{Desired, ProjectDir, ScaleNote, ServiceStatus, Status};
use crate::{Error, Result};
use berth_engine::layout::Layout;
use berth_image::store::Store;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek};
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a new replica may take to become ready before a rolling update counts it
/// failed (on top of its healthcheck's start period).
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How a service's error from a failed launch begins (cleared by the next launch).
const LAUNCH_ERROR: &str = "create ";
/// The autoscaler's sampling period.
const SAMPLE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    /// Being created and started by a worker.
    Launching,
    /// Running, not yet healthy: no traffic.
    Starting,
    /// In the load balancer.
    Ready,
    /// Its init is gone (or it turned unhealthy); replaced at `replace_at` when its
    /// restart policy says so (decided once the exit code is known).
    Dead {
        at: Instant,
        exit: Option<i32>,
        unhealthy: bool,
        replace_at: Option<Instant>,
    },
    /// Exited and not to be replaced (restart policy, max_attempts): keeps its slot.
    Finished,
    /// Being stopped and removed by a worker (scale down, update, replacement).
    Retiring,
}

#[derive(Debug)]
struct Rep {
    /// The container id ("" while launching).
    id: String,
    service: String,
    number: u32,
    hash: String,
    phase: Phase,
    pidfd: Option<OwnedFd>,
    addrs: BTreeMap<String, Ipv4Addr>,
    has_health: bool,
    /// A readiness check beside the health check (CreateOptions::readiness): it, not the
    /// health check, says when the replica is in the balancer.
    has_readiness: bool,
    since: Instant,
    /// Launched by the current batch of a rolling update.
    batch: bool,
    cpu: Option<(Instant, u64)>,
    cpu_pct: f64,
}

impl Rep {
    fn slot(&self) -> bool {
        !matches!(self.phase, Phase::Retiring)
    }
    fn live(&self) -> bool {
        matches!(
            self.phase,
            Phase::Launching | Phase::Starting | Phase::Ready
        )
    }
}

#[derive(Debug, Default)]
struct Batch {
    /// Old replicas this batch replaces (start-first: retired once the new ones are ready).
    old: Vec<String>,
    /// Extra replicas launched beside the old ones (start-first).
    surge: u32,
    /// New replicas this batch waits for.
    expected: u32,
    /// When the new ones were all ready (the `monitor` window runs from here).
    ready_at: Option<Instant>,
}

#[derive(Debug, Default)]
struct SvcRun {
    /// Replicas wanted now.
    want: u32,
    /// Replacements made (for max_attempts within window).
    attempts: Vec<Instant>,
    batch: Option<Batch>,
    next_batch: Option<Instant>,
    paused: bool,
    update_note: String,
    error: String,
    last_scale: Option<ScaleNote>,
    /// Autoscaler: since when the load has been above / below its target.
    above: Option<Instant>,
    below: Option<Instant>,
    last_change: Option<Instant>,
    conns: BTreeMap<Ipv4Addr, u64>,
    /// Rolling back: the failed definition's rollback_config drives the rollout (swarm's).
    rollback: Option<UpdateConfig>,
    /// After a failed launch: no new one before this (doubling from 100 ms to 10 s,
    /// docker's restart backoff), so a create that keeps failing is not a busy loop.
    launch_after: Option<Instant>,
    launch_backoff: Duration,
}

impl SvcRun {
    /// How the service's replicas are replaced now: its rollback_config while rolling
    /// back, else its update_config.
    fn rollout(&self, svc: &Service) -> UpdateConfig {
        self.rollback.clone().unwrap_or_else(|| update_config(svc))
    }
}

enum Done {
    Launched {
        service: String,
        number: u32,
        result: Result<String>,
    },
    Retired {
        id: String,
    },
}

pub struct Supervisor {
    layout: Layout,
    store: Store,
    pd: ProjectDir,
    desired: Desired,
    reps: Vec<Rep>,
    svcs: BTreeMap<String, SvcRun>,
    lb: Balancer,
    /// Services whose load balancer is to be (re)configured after this loop pass.
    lb_pending: BTreeSet<String>,
    tx: mpsc::Sender<Done>,
    rx: mpsc::Receiver<Done>,
    wake_r: OwnedFd,
    wake_w: std::sync::Arc<OwnedFd>,
    inotify: inotify::Inotify,
    events: std::fs::File,
    events_off: u64,
    next_sample: Option<Instant>,
    log: std::fs::File,
    status: Status,
}

fn io(what: &str, e: impl Into<std::io::Error>) -> Error {
    Error::Io(what.into(), e.into())
}

impl Supervisor {
    /// Takes over project `name`: adopts the containers that exist (they keep running
    /// and serving while no supervisor runs) and rebuilds the load balancer from them.
    pub fn new(layout: Layout, store: Store, name: &str) -> Result<Supervisor> {
        let pd = ProjectDir::new(&layout, name);
        let desired = pd
            .load_desired()?
            .ok_or_else(|| Error::NoSuchProject(name.to_string()))?;
        let (tx, rx) = mpsc::channel();
        let (wake_r, wake_w) = rustix::pipe::pipe_with(
            rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
        )
        .map_err(|e| io("pipe", e))?;
        let inotify = inotify::Inotify::init().map_err(|e| io("inotify", e))?;
        let ev_path = layout.events_path();
        let events = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&ev_path)
            .map_err(|e| Error::Io(ev_path.clone(), e))?;
        let events_off = events.metadata().map(|m| m.len()).unwrap_or(0);
        use inotify::WatchMask;
        inotify
            .watches()
            .add(&ev_path, WatchMask::MODIFY)
            .map_err(|e| Error::Io(ev_path.clone(), e))?;
        inotify
            .watches()
            .add(&pd.dir, WatchMask::MOVED_TO | WatchMask::CLOSE_WRITE)
            .map_err(|e| Error::Io(pd.dir.clone(), e))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(pd.log_path())
            .map_err(|e| Error::Io(pd.log_path(), e))?;
        let lb = Balancer::new(&layout, name);
        let mut s = Supervisor {
            layout,
            store,
            pd,
            desired,
            reps: Vec::new(),
            svcs: BTreeMap::new(),
            lb,
            lb_pending: BTreeSet::new(),
            tx,
            rx,
            wake_r,
            wake_w: std::sync::Arc::new(wake_w),
            inotify,
            events,
            events_off,
            next_sample: None,
            log,
            status: Status::default(),
        };
        s.adopt()?;
        Ok(s)
    }

    fn say(&mut self, msg: &str) {
        use std::io::Write;
        let _ = writeln!(self.log, "{} {msg}", berth_engine::record::now_rfc3339());
    }

    /// Emits a project event (`compose events` shows them with the containers' own).
    fn event(&self, service: &str, action: &str, extra: &[(&str, String)]) {
        let mut at = BTreeMap::new();
        at.insert(replicas::L_PROJECT.to_string(), self.pd.name.clone());
        at.insert(L_SERVICE.to_string(), service.to_string());
        at.insert("name".to_string(), format!("{}-{service}", self.pd.name));
        for (k, v) in extra {
            at.insert(k.to_string(), v.clone());
        }
        let _ = berth_engine::events::emit(&self.layout, "service", action, service, at);
    }

    fn adopt(&mut self) -> Result<()> {
        for m in replicas::members(&self.layout, &self.pd.name)? {
            if m.oneoff() {
                continue;
            }
            let svc = m.service().to_string();
            let mut r = Rep {
                id: m.id().to_string(),
                service: svc,
                number: m.number(),
                hash: m.label(L_HASH).to_string(),
                phase: Phase::Finished,
                pidfd: None,
                addrs: BTreeMap::new(),
                has_health: has_healthcheck(&m.config),
                has_readiness: m.config.options.readiness.is_some(),
                since: Instant::now(),
                batch: false,
                cpu: None,
                cpu_pct: 0.0,
            };
            let readiness = self.readiness_only(&r.service);
            match &m.state {
                Some(st) if berth_engine::status::init_alive(st) => {
                    r.pidfd = pidfd(st.pid);
                    r.addrs = replicas::addresses(st);
                    let healthy = st.health.as_ref().map(|h| h.status.as_str());
                    let ready = st.readiness.as_ref().map(|h| h.status.as_str());
                    r.phase = match (r.has_health, healthy) {
                        (true, Some("unhealthy")) if !readiness => Phase::Dead {
                            at: Instant::now(),
                            exit: None,
                            unhealthy: true,
                            replace_at: None,
                        },
                        _ if r.has_readiness && ready != Some("healthy") => Phase::Starting,
                        _ if r.has_readiness => Phase::Ready,
                        (false, _) | (true, Some("healthy")) => Phase::Ready,
                        _ => Phase::Starting,
                    };
                }
                Some(st) => {
                    r.phase = Phase::Dead {
                        at: Instant::now(),
                        exit: Some(st.exit_code),
                        unhealthy: false,
                        replace_at: None,
                    }
                }
                None => {}
            }
            self.reps.push(r);
        }
        let n = self.reps.len();
        self.say(&format!("adopted {n} containers"));
        self.apply_desired(true)?;
        Ok(())
    }

    /// The desired state changed (or first read): services' wanted replicas and load
    /// balancers.
    fn apply_desired(&mut self, first: bool) -> Result<()> {
        if !first {
            match self.pd.load_desired()? {
                Some(d) => {
                    if d.generation == self.desired.generation {
                        return Ok(());
                    }
                    self.desired = d;
                }
                None => return Ok(()),
            }
        }
        let active: BTreeSet<String> = self.desired.active.iter().cloned().collect();
        for name in active.iter() {
            let Some(svc) = self.desired.project.services.get(name).cloned() else {
                continue;
            };
            let scale = self.desired.scale.get(name).copied().unwrap_or(1);
            let run = self.svcs.entry(name.clone()).or_default();
            run.want = match &svc.autoscale {
                Some(a) if !first || run.want == 0 => scale.clamp(a.min, a.max),
                Some(_) => run.want,
                None => scale,
            };
            run.paused = false;
            self.lb_pending.insert(name.clone());
        }
        // Services no longer wanted: their replicas go.
        let gone: Vec<String> = self
            .svcs
            .keys()
            .filter(|k| !active.contains(*k))
            .cloned()
            .collect();
        for g in gone {
            self.svcs.get_mut(&g).unwrap().want = 0;
        }
        for r in &self.reps {
            if !active.contains(&r.service) {
                self.svcs.entry(r.service.clone()).or_default().want = 0;
            }
        }
        Ok(())
    }

    /// The load balancers of the services whose definition was (re)read, configured after
    /// the loop pass launched their replicas: the nft work overlaps the containers'
    /// start instead of delaying it (no replica is Ready yet when it is new).
    fn configure_pending(&mut self) {
        if self.lb_pending.is_empty() {
            return;
        }
        for name in std::mem::take(&mut self.lb_pending) {
            let Some(svc) = self.desired.project.services.get(&name).cloned() else {
                continue;
            };
            let ready = self.ready_addrs(&name);
            match self.lb.configure(&self.desired.project, &svc, &ready) {
                // A changed balancer has the ready replicas already; their DNS records
                // go back now, not at the next replica's change.
                Ok(true) => self.refresh_lb(&name),
                Ok(false) => {}
                Err(e) => {
                    let msg = e.to_string();
                    self.say(&format!("load balancer of {name}: {msg}"));
                    if let Some(run) = self.svcs.get_mut(&name) {
                        run.error = msg;
                    }
                }
            }
        }
        self.refresh_lb_all();
    }

    /// Runs until the project's desired state is removed (`down`) or SIGTERM.
    pub fn run(mut self) -> Result<()> {
        self.say(&format!(
            "supervising generation {}",
            self.desired.generation
        ));
        loop {
            self.reconcile();
            self.configure_pending();
            self.write_status();
            if !self.pd.exists() {
                self.say("desired state removed: exiting");
                return Ok(());
            }
            let timeout = self
                .next_deadline()
                .map(|t| t.saturating_duration_since(Instant::now()));
            let (fired_pidfds, inotify_ready, wake_ready) = self.wait(timeout)?;
            for i in fired_pidfds {
                self.on_exit(i);
            }
            if wake_ready {
                let mut b = [0u8; 64];
                while matches!(rustix::io::read(&self.wake_r, &mut b), Ok(n) if n > 0) {}
            }
            while let Ok(d) = self.rx.try_recv() {
                self.on_done(d);
            }
            if inotify_ready {
                let mut buf = [0u8; 4096];
                let mut desired_changed = false;
                if let Ok(evs) = self.inotify.read_events(&mut buf) {
                    for e in evs {
                        if e.name.is_some_and(|n| n == "desired.json") {
                            desired_changed = true;
                        }
                    }
                }
                self.read_events();
                if desired_changed {
                    if let Err(e) = self.apply_desired(false) {
                        self.say(&format!("desired state: {e}"));
                    }
                }
            }
            if self.next_sample.is_some_and(|t| t <= Instant::now()) {
                self.sample();
            }
        }
    }

    fn wait(&mut self, timeout: Option<Duration>) -> Result<(Vec<usize>, bool, bool)> {
        use rustix::event::{poll, PollFd, PollFlags};
        let idx: Vec<usize> = (0..self.reps.len())
            .filter(|&i| self.reps[i].pidfd.is_some())
            .collect();
        let ino = self.inotify.as_fd();
        let mut fds = vec![
            PollFd::new(&ino, PollFlags::IN),
            PollFd::new(&self.wake_r, PollFlags::IN),
        ];
        for &i in &idx {
            fds.push(PollFd::new(
                self.reps[i].pidfd.as_ref().unwrap(),
                PollFlags::IN,
            ));
        }
        let ts = timeout.map(|d| rustix::event::Timespec {
            tv_sec: d.as_secs() as i64,
            tv_nsec: d.subsec_nanos() as i64,
        });
        match poll(&mut fds, ts.as_ref()) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(io("poll", e)),
        }
        let ino_ready = !fds[0].revents().is_empty();
        let wake_ready = !fds[1].revents().is_empty();
        let fired = idx
            .iter()
            .enumerate()
            .filter(|(k, _)| !fds[k + 2].revents().is_empty())
            .map(|(_, &i)| i)
            .collect();
        Ok((fired, ino_ready, wake_ready))
    }

    fn next_deadline(&self) -> Option<Instant> {
        let mut t: Option<Instant> = self.next_sample;
        let mut m = |x: Instant| t = Some(t.map_or(x, |y| y.min(x)));
        for r in &self.reps {
            if let Phase::Dead {
                replace_at: Some(at),
                ..
            } = r.phase
            {
                m(at);
            }
            if matches!(r.phase, Phase::Starting) && r.batch {
                m(r.since + READY_TIMEOUT);
            }
        }
        for s in self.svcs.values() {
            // Only a wait still to come (a past one would wake the loop for ever).
            if let Some(n) = s.launch_after.filter(|t| *t > Instant::now()) {
                m(n);
            }
            if let Some(n) = s.next_batch {
                m(n);
            }
        }
        // A rolling update's monitor window.
        for (name, s) in &self.svcs {
            if let (Some(b), Some(svc)) = (&s.batch, self.desired.project.services.get(name)) {
                if let Some(r) = b.ready_at {
                    m(r + s.rollout(svc).monitor);
                }
            }
        }
        t
    }

    /// A replica's init exited: out of the load balancer at once.
    fn on_exit(&mut self, i: usize) {
        let r = &mut self.reps[i];
        r.pidfd = None;
        if matches!(
            r.phase,
            Phase::Retiring | Phase::Finished | Phase::Dead { .. }
        ) {
            return;
        }
        r.phase = Phase::Dead {
            at: Instant::now(),
            exit: None,
            unhealthy: false,
            replace_at: None,
        };
        let svc = r.service.clone();
        self.refresh_lb(&svc);
        let (id, number) = (self.reps[i].id.clone(), self.reps[i].number);
        self.say(&format!("{svc} replica {number} ({}) exited", short(&id)));
        // Its exit code comes with the monitor's die event; read it now if it is there.
        self.exit_code_from_state(i);
    }

    fn exit_code_from_state(&mut self, i: usize) {
        let id = self.reps[i].id.clone();
        if let Ok(st) = berth_engine::status::current(&self.layout, &id) {
            if !berth_engine::status::init_alive(&st)
                && !berth_engine::status::watched(&st)
                && !st.finished_at.is_empty()
            {
                if let Phase::Dead { exit, .. } = &mut self.reps[i].phase {
                    if exit.is_none() {
                        *exit = Some(st.exit_code);
                    }
                }
            }
        }
    }

    /// New lines of the engine's event log: health changes and exit codes.
    fn read_events(&mut self) {
        let _ = self.events.seek(std::io::SeekFrom::Start(self.events_off));
        let mut buf = Vec::new();
        let _ = (&self.events).read_to_end(&mut buf);
        let Some(end) = buf.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        self.events_off += end as u64 + 1;
        for line in buf[..end].split(|&b| b == b'\n') {
            let Ok(ev) = serde_json::from_slice::<berth_engine::events::Event>(line) else {
                continue;
            };
            if ev.kind != "container" {
                continue;
            }
            let Some(i) = self.reps.iter().position(|r| r.id == ev.actor.id) else {
                continue;
            };
            match ev.action.as_str() {
                "die" => {
                    let code = ev
                        .actor
                        .attributes
                        .get("exitCode")
                        .and_then(|c| c.parse().ok());
                    if self.reps[i].live() {
                        self.on_exit(i);
                    }
                    if let Phase::Dead { exit, .. } = &mut self.reps[i].phase {
                        if exit.is_none() {
                            *exit = code;
                        }
                    }
                }
                "health_status: healthy"
                    if self.reps[i].phase == Phase::Starting && !self.reps[i].has_readiness =>
                {
                    self.reps[i].phase = Phase::Ready;
                    let s = self.reps[i].service.clone();
                    self.refresh_lb(&s);
                }
                // A readiness check beside the health check: in the balancer and out.
                "readiness_status: ready" if self.reps[i].phase == Phase::Starting => {
                    self.reps[i].phase = Phase::Ready;
                    let s = self.reps[i].service.clone();
                    self.refresh_lb(&s);
                    let n = self.reps[i].number;
                    self.say(&format!("{s} replica {n} ready: in the balancer"));
                }
                "readiness_status: unready" if self.reps[i].phase == Phase::Ready => {
                    self.reps[i].phase = Phase::Starting;
                    let s = self.reps[i].service.clone();
                    self.refresh_lb(&s);
                    let n = self.reps[i].number;
                    self.say(&format!("{s} replica {n} not ready: out of the balancer"));
                }
                "health_status: unhealthy"
                    if self.readiness_only(&self.reps[i].service)
                        && self.reps[i].phase == Phase::Ready =>
                {
                    // Readiness: out of the balancer until the check passes again.
                    self.reps[i].phase = Phase::Starting;
                    let s = self.reps[i].service.clone();
                    self.refresh_lb(&s);
                    let n = self.reps[i].number;
                    self.say(&format!("{s} replica {n} not ready: out of the balancer"));
                }
                // Readiness, not yet ready: nothing to do (never replaced for it).
                "health_status: unhealthy" if self.readiness_only(&self.reps[i].service) => {}
                "health_status: unhealthy" => {
                    if matches!(self.reps[i].phase, Phase::Starting | Phase::Ready) {
                        self.reps[i].phase = Phase::Dead {
                            at: Instant::now(),
                            exit: None,
                            unhealthy: true,
                            replace_at: None,
                        };
                        let s = self.reps[i].service.clone();
                        self.refresh_lb(&s);
                        let n = self.reps[i].number;
                        self.say(&format!("{s} replica {n} unhealthy: out of the balancer"));
                    }
                }
                _ => {}
            }
        }
    }

    fn on_done(&mut self, d: Done) {
        match d {
            Done::Launched {
                service,
                number,
                result,
            } => {
                let Some(i) = self.reps.iter().position(|r| {
                    r.service == service && r.number == number && r.phase == Phase::Launching
                }) else {
                    return;
                };
                match result {
                    Ok(id) => {
                        // A launch that failed before is not an error of the service now.
                        if let Some(run) = self.svcs.get_mut(&service) {
                            if run.error.starts_with(LAUNCH_ERROR) {
                                run.error.clear();
                            }
                            run.launch_after = None;
                            run.launch_backoff = Duration::ZERO;
                        }
                        self.reps[i].id = id.clone();
                        self.reps[i].since = Instant::now();
                        let st = berth_engine::status::current(&self.layout, &id).ok();
                        match st.filter(berth_engine::status::init_alive) {
                            Some(st) => {
                                let r = &mut self.reps[i];
                                r.pidfd = pidfd(st.pid);
                                r.addrs = replicas::addresses(&st);
                                let cfg = self.layout.load_config(&id).ok();
                                r.has_health = cfg.as_ref().is_some_and(has_healthcheck);
                                r.has_readiness =
                                    cfg.is_some_and(|c| c.options.readiness.is_some());
                                let healthy = if r.has_readiness {
                                    st.readiness.as_ref().map(|h| h.status == "healthy")
                                } else {
                                    st.health.as_ref().map(|h| h.status == "healthy")
                                };
                                r.phase = if !(r.has_health || r.has_readiness)
                                    || healthy == Some(true)
                                {
                                    Phase::Ready
                                } else {
                                    Phase::Starting
                                };
                                if r.pidfd.is_none() {
                                    // Gone already between start and here.
                                    self.on_exit(i);
                                }
                                self.refresh_lb(&service);
                            }
                            None => {
                                self.reps[i].phase = Phase::Dead {
                                    at: Instant::now(),
                                    exit: None,
                                    unhealthy: false,
                                    replace_at: None,
                                };
                                self.exit_code_from_state(i);
                            }
                        }
                        let (phase, n) = (self.reps[i].phase.clone(), number);
                        self.say(&format!("{service} replica {n} started ({phase:?})"));
                    }
                    Err(e) => {
                        // The whole chain: a mount error's cause is in its source.
                        let msg = format!(
                            "{LAUNCH_ERROR}{service} replica {number}: {}",
                            berth_engine::error::chain(&e)
                        );
                        self.say(&msg);
                        self.reps.remove(i);
                        let run = self.svcs.entry(service.clone()).or_default();
                        run.error = msg.clone();
                        run.attempts.push(Instant::now());
                        run.launch_backoff = (run.launch_backoff * 2)
                            .clamp(Duration::from_millis(100), Duration::from_secs(10));
                        run.launch_after = Some(Instant::now() + run.launch_backoff);
                        self.fail_batch(&service, &msg);
                    }
                }
            }
            Done::Retired { id } => {
                self.reps.retain(|r| r.id != id);
            }
        }
    }

    fn spawn_launch(&mut self, service: &str, svc: Service, number: u32, batch: bool) {
        let hash = self.desired.target_hash(service);
        self.reps.push(Rep {
            id: String::new(),
            service: service.to_string(),
            number,
            hash: hash.clone(),
            phase: Phase::Launching,
            pidfd: None,
            addrs: BTreeMap::new(),
            has_health: false,
            has_readiness: false,
            since: Instant::now(),
            batch,
            cpu: None,
            cpu_pct: 0.0,
        });
        let (layout, store, project) = (
            self.layout.clone(),
            self.store.clone(),
            self.desired.project.clone(),
        );
        let (tx, wake) = (self.tx.clone(), self.wake_w.clone());
        let service = service.to_string();
        std::thread::spawn(move || {
            let result = replicas::launch(&layout, &store, &project, &svc, number, &hash);
            let _ = tx.send(Done::Launched {
                service,
                number,
                result,
            });
            let _ = rustix::io::write(&*wake, b"x");
        });
    }

    fn spawn_retire(&mut self, i: usize) {
        let r = &mut self.reps[i];
        if r.phase == Phase::Retiring || r.phase == Phase::Launching {
            return;
        }
        let was_ready = r.phase == Phase::Ready;
        r.phase = Phase::Retiring;
        r.pidfd = None;
        let (id, service) = (r.id.clone(), r.service.clone());
        if was_ready {
            // Out of the balancer first; stopped after its grace period.
            self.refresh_lb(&service);
        }
        let grace = self
            .desired
            .project
            .services
            .get(&service)
            .and_then(|s| s.stop_grace_period)
            .map_or(10, |d| d.as_secs() as i64);
        // A replica that served runs on for its grace period, out of the map, so the
        // connections it holds can finish; then its stop signal, and SIGKILL a grace
        // period later. One that never served (or died) goes at once.
        let drain = if was_ready {
            Duration::from_secs(grace.max(0) as u64)
        } else {
            Duration::ZERO
        };
        let (layout, store) = (self.layout.clone(), self.store.clone());
        let (tx, wake) = (self.tx.clone(), self.wake_w.clone());
        std::thread::spawn(move || {
            if let Err(e) = replicas::retire(&layout, &store, &id, grace, drain) {
                eprintln!("remove {id}: {e}");
            }
            let _ = tx.send(Done::Retired { id });
            let _ = rustix::io::write(&*wake, b"x");
        });
    }

    /// Whether `service`'s health check only gates the balancer (HealthRole::Readiness).
    fn readiness_only(&self, service: &str) -> bool {
        self.desired
            .project
            .services
            .get(service)
            .is_some_and(|s| s.health_role == HealthRole::Readiness)
    }

    /// The addresses (by network id) of `service`'s ready replicas.
    fn ready_addrs(&self, service: &str) -> Vec<BTreeMap<String, Ipv4Addr>> {
        self.reps
            .iter()
            .filter(|r| r.service == service && r.phase == Phase::Ready)
            .map(|r| r.addrs.clone())
            .collect()
    }

    /// The load balancer's members of `service`: its ready replicas.
    fn refresh_lb(&mut self, service: &str) {
        let ready = self.ready_addrs(service);
        if let Err(e) = self.lb.set_ready(service, &ready) {
            self.say(&format!("load balancer of {service}: {e}"));
        }
    }

    fn refresh_lb_all(&mut self) {
        let names: BTreeSet<String> = self
            .svcs
            .keys()
            .cloned()
            .chain(self.reps.iter().map(|r| r.service.clone()))
            .collect();
        for n in names {
            self.refresh_lb(&n);
        }
    }

    fn restart_policy(
        &self,
        name: &str,
    ) -> (RestartCondition, Duration, Option<u32>, Option<Duration>) {
        let Some(svc) = self.desired.project.services.get(name) else {
            return (RestartCondition::None, Duration::ZERO, None, None);
        };
        if let Some(p) = &svc.deploy.restart_policy {
            return (
                p.condition,
                p.delay.unwrap_or(Duration::ZERO),
                p.max_attempts,
                p.window,
            );
        }
        let cond = match svc.restart.as_deref() {
            Some("no") => RestartCondition::None,
            Some(r) if r.starts_with("on-failure") => RestartCondition::OnFailure,
            Some(_) => RestartCondition::Any,
            // A dependency others wait to complete is a job: not restarted.
            None if self.is_job(name) => RestartCondition::None,
            None => RestartCondition::Any,
        };
        (cond, Duration::ZERO, None, None)
    }

    fn is_job(&self, name: &str) -> bool {
        self.desired.project.services.values().any(|s| {
            s.depends_on
                .get(name)
                .is_some_and(|d| d.condition == Condition::ServiceCompletedSuccessfully)
        })
    }

    /// Whether `name`'s dependencies allow starting its replicas.
    fn deps_ready(&self, name: &str) -> bool {
        let Some(svc) = self.desired.project.services.get(name) else {
            return false;
        };
        svc.depends_on.iter().all(|(dep, d)| {
            if !self.desired.active.contains(dep) {
                return true;
            }
            let reps: Vec<&Rep> = self.reps.iter().filter(|r| &r.service == dep).collect();
            match d.condition {
                Condition::ServiceStarted => reps
                    .iter()
                    .any(|r| matches!(r.phase, Phase::Starting | Phase::Ready)),
                Condition::ServiceHealthy => {
                    !reps.is_empty()
                        && reps.iter().any(|r| r.phase == Phase::Ready)
                        && reps
                            .iter()
                            .all(|r| !matches!(r.phase, Phase::Launching | Phase::Starting))
                }
                Condition::ServiceCompletedSuccessfully => {
                    !reps.is_empty()
                        && reps
                            .iter()
                            .all(|r| r.phase == Phase::Finished && self.exit_of(r) == Some(0))
                }
            }
        })
    }

    fn exit_of(&self, r: &Rep) -> Option<i32> {
        berth_engine::status::current(&self.layout, &r.id)
            .ok()
            .map(|s| s.exit_code)
    }

    fn reconcile(&mut self) {
        if self.desired.stopped {
            return;
        }
        self.decide_dead();
        let order = self
            .desired
            .project
            .start_order(&self.desired.active.clone());
        let mut names: Vec<String> = order;
        for k in self.svcs.keys() {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
        for name in names {
            self.reconcile_service(&name);
        }
        let any_autoscale = self.desired.active.iter().any(|n| {
            self.desired
                .project
                .services
                .get(n)
                .is_some_and(|s| s.autoscale.is_some())
        });
        if any_autoscale && self.next_sample.is_none() {
            self.next_sample = Some(Instant::now() + SAMPLE);
        } else if !any_autoscale {
            self.next_sample = None;
        }
    }

    /// Dead replicas: finished for good, or replaced when their delay is over.
    fn decide_dead(&mut self) {
        let now = Instant::now();
        for i in 0..self.reps.len() {
            let Phase::Dead {
                at,
                exit,
                unhealthy,
                replace_at,
            } = self.reps[i].phase.clone()
            else {
                continue;
            };
            let name = self.reps[i].service.clone();
            // A new replica of a rolling update's batch is the update's to judge
            // (fail_batch): replacing it here would retry a broken update for ever.
            if self.reps[i].batch && self.svcs.get(&name).is_some_and(|s| s.batch.is_some()) {
                continue;
            }
            let (cond, delay, max_attempts, window) = self.restart_policy(&name);
            if replace_at.is_none() {
                // Wait for the exit code when the policy depends on it (the die event
                // follows within milliseconds).
                if cond == RestartCondition::OnFailure
                    && exit.is_none()
                    && !unhealthy
                    && now.duration_since(at) < Duration::from_secs(2)
                {
                    continue;
                }
                let failed = unhealthy || exit != Some(0);
                let run = self.svcs.entry(name.clone()).or_default();
                let recent = run
                    .attempts
                    .iter()
                    .filter(|t| window.is_none_or(|w| now.duration_since(**t) <= w))
                    .count() as u32;
                let replace = match cond {
                    RestartCondition::Any => true,
                    RestartCondition::OnFailure => failed,
                    RestartCondition::None => unhealthy,
                } && max_attempts.is_none_or(|m| m == 0 || recent < m);
                if !replace {
                    if max_attempts.is_some_and(|m| recent >= m && m > 0) {
                        run.error = format!(
                            "replica {} not replaced: max_attempts ({}) reached",
                            self.reps[i].number,
                            max_attempts.unwrap()
                        );
                    }
                    self.reps[i].phase = Phase::Finished;
                    continue;
                }
                self.reps[i].phase = Phase::Dead {
                    at,
                    exit,
                    unhealthy,
                    replace_at: Some(at + delay),
                };
            }
        }
        // Due replacements: the dead one goes (its number is free again only once it is
        // removed, so the new one takes the lowest free number now).
        let due: Vec<usize> = (0..self.reps.len())
            .filter(|&i| {
                matches!(self.reps[i].phase, Phase::Dead { replace_at: Some(t), .. } if t <= now)
            })
            .collect();
        for i in due {
            let name = self.reps[i].service.clone();
            let number = self.reps[i].number;
            self.svcs
                .entry(name.clone())
                .or_default()
                .attempts
                .push(now);
            self.event(&name, "replace", &[("number", number.to_string())]);
            self.say(&format!("replacing {name} replica {number}"));
            // Retiring frees the slot: reconcile_service launches the replacement.
            self.spawn_retire(i);
        }
    }

    fn free_number(&self, name: &str) -> u32 {
        let used: BTreeSet<u32> = self
            .reps
            .iter()
            .filter(|r| r.service == name)
            .map(|r| r.number)
            .collect();
        (1..).find(|n| !used.contains(n)).unwrap()
    }

    fn reconcile_service(&mut self, name: &str) {
        let Some(svc) = self.desired.project.services.get(name).cloned() else {
            // Removed from the file: an orphan; its replicas go with --remove-orphans
            // (`up` warned about them otherwise).
            if !self.desired.remove_orphans {
                return;
            }
            let idx: Vec<usize> = (0..self.reps.len())
                .filter(|&i| self.reps[i].service == name && self.reps[i].slot())
                .collect();
            for i in idx {
                self.spawn_retire(i);
            }
            return;
        };
        let target_hash = self.desired.target_hash(name);
        let want = self.svcs.get(name).map_or(0, |s| s.want);
        self.rolling_update(name, &svc, &target_hash);
        let run = self.svcs.entry(name.to_string()).or_default();
        let surge = run.batch.as_ref().map_or(0, |b| b.surge);
        let want_total = want + surge;
        let slots: Vec<usize> = (0..self.reps.len())
            .filter(|&i| self.reps[i].service == name && self.reps[i].slot())
            .collect();
        let n = slots.len() as u32;
        if n < want_total {
            if !self.deps_ready(name) || self.svcs[name].paused && want == 0 {
                return;
            }
            if self.svcs[name]
                .launch_after
                .is_some_and(|t| t > Instant::now())
            {
                return;
            }
            let in_batch = self.svcs[name].batch.is_some();
            for _ in n..want_total {
                let number = self.free_number(name);
                self.spawn_launch(name, svc.clone(), number, in_batch);
            }
        } else if n > want_total {
            // Finished and dead ones first, then those not serving, then the highest numbers.
            let mut v = slots.clone();
            v.sort_by_key(|&i| {
                let r = &self.reps[i];
                let rank = match r.phase {
                    Phase::Finished | Phase::Dead { .. } => 0,
                    Phase::Starting => 1,
                    Phase::Ready => 2,
                    Phase::Launching => 3,
                    Phase::Retiring => 4,
                };
                (rank, u32::MAX - r.number)
            });
            for &i in v.iter().take((n - want_total) as usize) {
                if self.reps[i].phase != Phase::Launching {
                    self.spawn_retire(i);
                }
            }
        }
    }

    /// Rolling updates by update_config: replicas whose config hash differs from the
    /// service's are replaced `parallelism` at a time, start-first (the new one ready and
    /// in the balancer before the old one leaves it) or stop-first.
    fn rolling_update(&mut self, name: &str, svc: &Service, target: &str) {
        let now = Instant::now();
        let run = self.svcs.entry(name.to_string()).or_default();
        let cfg = run.rollout(svc);
        if run.paused {
            return;
        }
        if let Some(b) = &run.batch {
            // The batch's new replicas: all ready -> the old ones go, after the monitor window.
            let new: Vec<&Rep> = self
                .reps
                .iter()
                .filter(|r| r.service == name && r.batch && r.slot())
                .collect();
            let launched = new.len() as u32;
            let expected = b.expected;
            let failed = new.iter().find(|r| {
                matches!(r.phase, Phase::Dead { .. } | Phase::Finished)
                    || (r.phase == Phase::Starting && now.duration_since(r.since) > READY_TIMEOUT)
            });
            if let Some(f) = failed {
                let why = match f.phase {
                    Phase::Dead {
                        unhealthy: true, ..
                    } => "turned unhealthy",
                    Phase::Starting => "did not become healthy in time",
                    _ => "exited",
                };
                let msg = format!("new replica {} {why}", f.number);
                self.fail_batch(name, &msg);
                return;
            }
            let all_ready = launched >= expected && new.iter().all(|r| r.phase == Phase::Ready);
            if !all_ready {
                return;
            }
            let run = self.svcs.get_mut(name).unwrap();
            let b = run.batch.as_mut().unwrap();
            match b.ready_at {
                None => {
                    b.ready_at = Some(now);
                    return;
                }
                Some(t) if now.duration_since(t) < cfg.monitor => return,
                Some(_) => {}
            }
            let old = std::mem::take(&mut b.old);
            run.batch = None;
            run.next_batch = Some(now + cfg.delay);
            for r in self.reps.iter_mut().filter(|r| r.service == name) {
                r.batch = false;
            }
            for id in old {
                if let Some(i) = self.reps.iter().position(|r| r.id == id) {
                    self.spawn_retire(i);
                }
            }
            return;
        }
        let outdated: Vec<usize> = (0..self.reps.len())
            .filter(|&i| {
                let r = &self.reps[i];
                r.service == name && r.slot() && r.hash != target && r.phase != Phase::Launching
            })
            .collect();
        let run = self.svcs.get_mut(name).unwrap();
        if outdated.is_empty() {
            if !run.update_note.is_empty() && !run.update_note.starts_with("rolled back") {
                run.update_note.clear();
            }
            run.rollback = None;
            return;
        }
        if run.next_batch.is_some_and(|t| t > now) {
            return;
        }
        // Not serving ones first (nothing to lose), then from the highest number.
        let mut v = outdated;
        v.sort_by_key(|&i| {
            let r = &self.reps[i];
            (r.phase == Phase::Ready, u32::MAX - r.number)
        });
        let k = if cfg.parallelism == 0 {
            v.len()
        } else {
            (cfg.parallelism as usize).min(v.len())
        };
        let chosen: Vec<usize> = v.into_iter().take(k).collect();
        let total = self
            .reps
            .iter()
            .filter(|r| r.service == name && r.slot())
            .count();
        let run = self.svcs.get_mut(name).unwrap();
        run.update_note = format!("updating ({} of {total} left)", chosen.len());
        let serving_old: Vec<usize> = chosen
            .iter()
            .copied()
            .filter(|&i| self.reps[i].phase == Phase::Ready)
            .collect();
        let dead_old: Vec<usize> = chosen
            .iter()
            .copied()
            .filter(|&i| self.reps[i].phase != Phase::Ready)
            .collect();
        let mut batch = Batch::default();
        if cfg.order == Order::StartFirst {
            batch.old = serving_old
                .iter()
                .map(|&i| self.reps[i].id.clone())
                .collect();
            batch.surge = serving_old.len() as u32;
        } else {
            batch.old = Vec::new();
            batch.surge = 0;
            for &i in &serving_old {
                self.spawn_retire(i);
            }
        }
        // Replicas that serve nothing are replaced at once in both orders.
        for &i in &dead_old {
            self.spawn_retire(i);
        }
        // The retired slots are refilled by reconcile_service, as part of the batch.
        batch.expected = chosen.len() as u32;
        let run = self.svcs.get_mut(name).unwrap();
        run.batch = Some(batch);
        self.event(name, "update", &[("replicas", chosen.len().to_string())]);
    }

    fn fail_batch(&mut self, name: &str, why: &str) {
        let Some(svc) = self.desired.project.services.get(name).cloned() else {
            return;
        };
        let run = self.svcs.entry(name.to_string()).or_default();
        if run.batch.is_none() {
            return;
        }
        let mut cfg = run.rollout(&svc);
        // A rollback that fails pauses (it has nothing left to roll back to).
        if run.rollback.is_some() && cfg.failure_action == FailureAction::Rollback {
            cfg.failure_action = FailureAction::Pause;
        }
        run.batch = None;
        // The failed new replicas go.
        let idx: Vec<usize> = (0..self.reps.len())
            .filter(|&i| self.reps[i].service == name && self.reps[i].batch)
            .collect();
        for i in idx {
            self.reps[i].batch = false;
            self.spawn_retire(i);
        }
        self.say(&format!("update of {name} failed: {why}"));
        match cfg.failure_action {
            FailureAction::Rollback => {
                if let Some(prev) = self.desired.previous.remove(name) {
                    // Rolled out by the failed definition's rollback_config (swarm's),
                    // else by the previous definition's own update_config.
                    let rb = svc.deploy.rollback_config.clone();
                    self.svcs.get_mut(name).unwrap().rollback = rb;
                    self.desired.project.services.insert(name.to_string(), prev);
                    let mut d = self.desired.clone();
                    match self.pd.save_desired(&mut d) {
                        Ok(_) => self.desired = d,
                        Err(e) => self.say(&format!("roll back {name}: {e}")),
                    }
                    let run = self.svcs.get_mut(name).unwrap();
                    run.update_note = format!("rolled back: {why}");
                    self.event(name, "rollback", &[("reason", why.to_string())]);
                } else {
                    let run = self.svcs.get_mut(name).unwrap();
                    run.paused = true;
                    run.update_note = format!("paused: {why} (nothing to roll back to)");
                }
            }
            FailureAction::Pause => {
                let run = self.svcs.get_mut(name).unwrap();
                run.paused = true;
                run.update_note = format!("paused: {why}");
                self.event(name, "update_paused", &[("reason", why.to_string())]);
            }
            FailureAction::Continue => {
                let run = self.svcs.get_mut(name).unwrap();
                run.update_note = format!("continuing after: {why}");
            }
        }
    }

    /// The autoscaler: each replica's CPU (its cgroup) and new connections (the load
    /// balancer's counters) over the last second; a service above its target for
    /// scale_up_after gets more replicas, below for scale_down_after fewer.
    fn sample(&mut self) {
        let now = Instant::now();
        self.next_sample = Some(now + SAMPLE);
        for r in self.reps.iter_mut().filter(|r| r.phase == Phase::Ready) {
            let path = berth_engine::status::cgroup_path(&self.layout, &r.id);
            if let Ok(s) = berth_engine::stats::sample(&path, &r.id, 0, true) {
                if let Some((t0, c0)) = r.cpu {
                    let dt = now.duration_since(t0).as_nanos() as f64;
                    if dt > 0.0 {
                        r.cpu_pct = (s.cpu_ns.saturating_sub(c0)) as f64 * 100.0 / dt;
                    }
                }
                r.cpu = Some((now, s.cpu_ns));
            }
        }
        let names: Vec<String> = self.desired.active.clone();
        for name in names {
            let Some(svc) = self.desired.project.services.get(&name) else {
                continue;
            };
            let Some(a) = svc.autoscale.clone() else {
                continue;
            };
            let ready: Vec<&Rep> = self
                .reps
                .iter()
                .filter(|r| r.service == name && r.phase == Phase::Ready)
                .collect();
            if ready.is_empty() {
                continue;
            }
            // CPU as a share of what a replica may use: its limit (as Kubernetes
            // measures against the request), one CPU without one. A replica capped at
            // 0.5 CPU and using all of it is at 100%.
            let cpus = svc
                .deploy
                .resources
                .limits
                .cpus
                .or(svc.cpus)
                .filter(|c| *c > 0.0)
                .unwrap_or(1.0);
            let (load, target, unit) = match a.target {
                AutoscaleTarget::CpuPercent(t) => (
                    ready.iter().map(|r| r.cpu_pct).sum::<f64>() / ready.len() as f64 / cpus,
                    t,
                    "% of its cpu limit",
                ),
                AutoscaleTarget::ConnectionsPerReplica(t) => {
                    let counters = self.lb.counters(&name);
                    let run = self.svcs.entry(name.clone()).or_default();
                    let mut total = 0u64;
                    for (ip, c) in &counters {
                        let prev = run.conns.get(ip).copied().unwrap_or(*c);
                        total += c.saturating_sub(prev);
                    }
                    run.conns = counters;
                    (
                        total as f64 / SAMPLE.as_secs_f64() / ready.len() as f64,
                        t,
                        " new connections/s",
                    )
                }
            };
            let run = self.svcs.entry(name.clone()).or_default();
            if run.batch.is_some() {
                continue;
            }
            let cooldown_ok = run
                .last_change
                .is_none_or(|t| now.duration_since(t) >= a.scale_up_after.min(a.scale_down_after));
            if load > target {
                run.below = None;
                let since = *run.above.get_or_insert(now);
                if now.duration_since(since) >= a.scale_up_after && run.want < a.max && cooldown_ok
                {
                    // Enough replicas to bring the average back to the target.
                    let n = ready.len() as f64;
                    let to = ((n * load / target).ceil() as u32).clamp(run.want + 1, a.max);
                    let reason = format!(
                        "average {load:.0}{unit} per replica over {:?} > target {target}",
                        a.scale_up_after
                    );
                    self.scale_to(&name, to, reason);
                }
            } else if load < target * 0.5 {
                run.above = None;
                let since = *run.below.get_or_insert(now);
                if now.duration_since(since) >= a.scale_down_after
                    && run.want > a.min
                    && cooldown_ok
                {
                    let to = run.want - 1;
                    let reason = format!(
                        "average {load:.0}{unit} per replica over {:?} < half of target {target}",
                        a.scale_down_after
                    );
                    self.scale_to(&name, to, reason);
                }
            } else {
                run.above = None;
                run.below = None;
            }
        }
    }

    fn scale_to(&mut self, name: &str, to: u32, reason: String) {
        let run = self.svcs.entry(name.to_string()).or_default();
        let from = run.want;
        run.want = to;
        run.last_change = Some(Instant::now());
        run.above = None;
        run.below = None;
        run.last_scale = Some(ScaleNote {
            time: berth_engine::record::now_rfc3339(),
            from,
            to,
            reason: reason.clone(),
        });
        self.say(&format!("autoscale {name}: {from} -> {to}: {reason}"));
        self.event(
            name,
            "scale",
            &[
                ("from", from.to_string()),
                ("to", to.to_string()),
                ("reason", reason),
            ],
        );
    }

    fn write_status(&mut self) {
        let mut st = Status {
            pid: std::process::id(),
            generation: self.desired.generation,
            converged: true,
            services: BTreeMap::new(),
        };
        for (name, run) in &self.svcs {
            let reps: Vec<&Rep> = self.reps.iter().filter(|r| &r.service == name).collect();
            let target = self.desired.target_hash(name);
            let running = reps
                .iter()
                .filter(|r| matches!(r.phase, Phase::Starting | Phase::Ready))
                .count() as u32;
            let ready = reps.iter().filter(|r| r.phase == Phase::Ready).count() as u32;
            let finished = reps.iter().filter(|r| r.phase == Phase::Finished).count() as u32;
            let slots = reps.iter().filter(|r| r.slot()).count() as u32;
            let outdated = reps.iter().any(|r| {
                r.slot() && r.hash != target && self.desired.project.services.contains_key(name)
            });
            let settled = reps.iter().all(|r| {
                matches!(r.phase, Phase::Ready | Phase::Finished)
                    || (r.phase == Phase::Starting && !r.has_health)
            });
            if slots != run.want
                || !settled
                || (outdated && !run.paused)
                || run.batch.is_some()
                || running + finished < run.want
            {
                st.converged = false;
            }
            st.services.insert(
                name.clone(),
                ServiceStatus {
                    desired: run.want,
                    running,
                    ready,
                    update: run.update_note.clone(),
                    last_scale: run.last_scale.clone(),
                    error: run.error.clone(),
                    vips: self.lb.vips(name),
                },
            );
        }
        if st != self.status {
            if let Err(e) = self.pd.save_status(&st) {
                self.say(&format!("status: {e}"));
            }
            self.status = st;
        }
    }
}

/// Whether the container's health check in effect (flags, else image) runs.
fn has_healthcheck(c: &berth_engine::record::ContainerConfig) -> bool {
    c.health
        .as_ref()
        .is_some_and(|h| h.test.first().is_some_and(|t| t != "NONE"))
}

fn update_config(svc: &Service) -> UpdateConfig {
    svc.deploy.update_config.clone().unwrap_or_default()
}

fn pidfd(pid: i32) -> Option<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(pid)?;
    rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
}

fn short(id: &str) -> &str {
    &id[..12.min(id.len())]
}
