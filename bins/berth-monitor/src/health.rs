//! The health check: `runtime exec` of the configured test on its interval, killed at its
//! timeout; status starting -> healthy | unhealthy after `retries` failures in a row
//! (failures inside the start period do not count), the last five probes in state.json.
//! A check with a [`NetProbe`] (kube play's httpGet, tcpSocket) connects to the container
//! from a thread of ours instead (berth_engine::probe). A second check, the readiness one
//! (kube play's readinessProbe beside a different livenessProbe), runs the same way; its
//! status goes to the record's `readiness` and to `readiness_status` events, and it never
//! acts on the container.

use crate::run::Mon;
use berth_engine::options::{HealthConfig, NetProbe};
use berth_engine::record::{self, HealthProbe};
use rustix::io::Errno;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

/// docker keeps at most 4 KiB of a probe's output.
const MAX_OUTPUT: usize = 4096;
const KEEP_PROBES: usize = 5;

/// Which of the container's checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// docker's health check (and kube play's livenessProbe).
    Health,
    /// kube play's readinessProbe beside a different livenessProbe.
    Readiness,
}

impl Which {
    pub const ALL: [Which; 2] = [Which::Health, Which::Readiness];
}

pub struct Checker {
    argv: Vec<String>,
    net: Option<NetProbe>,
    interval: Duration,
    timeout: Duration,
    start_period: Duration,
    /// Between probes while "starting" within the start period.
    start_interval: Duration,
    retries: u32,
    /// Successes in a row that make it healthy (the kubelet's successThreshold).
    successes: u32,
    started: Instant,
    next: Option<Instant>,
    status: &'static str,
    streak: u32,
    ok_streak: u32,
    pub probe: Option<Probe>,
}

pub struct Probe {
    /// The runtime's exec, or `berth-net probe` for a network probe.
    pub pid: i32,
    pub pidfd: Option<OwnedFd>,
    /// The probe's output.
    pub out: Option<OwnedFd>,
    buf: Vec<u8>,
    start: SystemTime,
    began: Instant,
    deadline: Instant,
    pidfile: PathBuf,
    timed_out: bool,
}

fn dur(ns: i64, default: Duration) -> Duration {
    if ns > 0 {
        Duration::from_nanos(ns as u64)
    } else {
        default
    }
}

impl Checker {
    /// None for ["NONE"] or an empty test (unless it has a probe).
    pub fn new(h: &HealthConfig) -> Option<Checker> {
        let argv = match h.test.first().map(String::as_str) {
            _ if h.probe.is_some() => Vec::new(),
            Some("CMD-SHELL") => vec!["/bin/sh".into(), "-c".into(), h.test.get(1)?.clone()],
            Some("CMD") if h.test.len() > 1 => h.test[1..].to_vec(),
            _ => return None,
        };
        Some(Checker {
            argv,
            net: h.probe.clone(),
            interval: dur(h.interval, Duration::from_secs(30)),
            timeout: dur(h.timeout, Duration::from_secs(30)),
            start_period: dur(h.start_period, Duration::ZERO),
            start_interval: dur(h.start_interval, dur(h.interval, Duration::from_secs(30))),
            retries: if h.retries > 0 { h.retries as u32 } else { 3 },
            successes: h.success_threshold.clamp(1, u32::MAX as i64) as u32,
            started: Instant::now(),
            next: None,
            status: "starting",
            streak: 0,
            ok_streak: 0,
            probe: None,
        })
    }

    /// The container (re)started: status "starting", first probe one interval from now.
    pub fn on_start(&mut self, now: Instant) -> String {
        self.cancel();
        self.started = now;
        self.status = "starting";
        self.next = Some(now + self.gap(now));
        self.streak = 0;
        self.ok_streak = 0;
        self.status.to_string()
    }

    /// The time to the next probe: the start interval while starting within the start
    /// period (docker's StartInterval), else the interval.
    fn gap(&self, now: Instant) -> Duration {
        if self.status == "starting" && now.duration_since(self.started) < self.start_period {
            self.start_interval
        } else {
            self.interval
        }
    }

    /// When the loop must wake up for us next.
    pub fn deadline(&self) -> Option<Instant> {
        match &self.probe {
            Some(p) if !p.timed_out => Some(p.deadline),
            Some(_) => None,
            None => self.next,
        }
    }

    /// Paused: no probe runs (it would hang in the frozen cgroup); after `unpause` the
    /// next one is an interval away, the status as it was (docker's).
    pub fn pause(&mut self) {
        self.cancel();
    }

    pub fn resume(&mut self, now: Instant) {
        self.next = Some(now + self.interval);
    }

    /// Stops any running probe (the container is gone) and the schedule.
    pub fn cancel(&mut self) {
        if let Some(p) = self.probe.take() {
            p.kill();
        }
        self.next = None;
    }
}

impl Probe {
    fn read(&mut self) {
        let mut b = [0u8; 1024];
        while let Some(fd) = &self.out {
            match rustix::io::read(fd, &mut b) {
                Ok(0) => self.out = None,
                Ok(n) => {
                    let room = MAX_OUTPUT.saturating_sub(self.buf.len());
                    self.buf.extend_from_slice(&b[..n.min(room)]);
                }
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => break,
                Err(_) => self.out = None,
            }
        }
    }

    /// SIGKILL to the probe's process in the container (its pid file, if any) and to the
    /// process we started (the runtime's exec, or berth-net).
    fn kill(&self) {
        if let Some(pid) = std::fs::read_to_string(&self.pidfile)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
        if let Some(fd) = &self.pidfd {
            let _ = rustix::process::pidfd_send_signal(fd, rustix::process::Signal::KILL);
        }
    }
}

fn checker(m: &mut Mon, w: Which) -> Option<&mut Checker> {
    match w {
        Which::Health => m.health.as_mut(),
        Which::Readiness => m.readiness.as_mut(),
    }
}

/// Starts due probes, or ends those past their timeout.
pub fn tick(m: &mut Mon, now: Instant) {
    for w in Which::ALL {
        tick_one(m, w, now);
    }
}

fn tick_one(m: &mut Mon, w: Which, now: Instant) {
    let Some(h) = checker(m, w) else { return };
    if let Some(p) = h.probe.as_mut() {
        if !p.timed_out && now >= p.deadline {
            p.timed_out = true;
            p.kill();
        }
        return;
    }
    if h.next.is_none_or(|n| now < n) {
        return;
    }
    h.next = None;
    let (net, timeout) = (h.net.clone(), h.timeout);
    let (r, w1) = match rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            m.mlog.say(&format!("health pipe: {e}"));
            return;
        }
    };
    let _ = rustix::io::ioctl_fionbio(&r, true);
    let pidfile = m.layout.container_dir(&m.id).join(match w {
        Which::Health => "health.pid",
        Which::Readiness => "readiness.pid",
    });
    let _ = std::fs::remove_file(&pidfile);
    let w2 = match w1.try_clone() {
        Ok(w2) => w2,
        Err(e) => {
            m.mlog.say(&format!("health pipe: {e}"));
            return;
        }
    };
    let mut cmd = match net {
        // A network probe: `berth-net probe`, a process of ours outside the container.
        Some(net) => {
            let Some(c) = net_probe(m, &net, timeout) else {
                let h = checker(m, w).expect("checked above");
                h.next = Some(now + h.gap(now));
                return;
            };
            c
        }
        None => {
            let mut c = m.runtime();
            c.arg("exec")
                .arg("--pid-file")
                .arg(&pidfile)
                .arg(&m.id)
                .args(&checker(m, w).expect("checked above").argv);
            c
        }
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(w1))
        .stderr(Stdio::from(w2));
    let spawned = cmd.spawn();
    drop(cmd);
    let child = match spawned {
        Ok(c) => c,
        Err(e) => {
            m.mlog.say(&format!("health check exec: {e}"));
            let h = checker(m, w).expect("checked above");
            h.next = Some(now + h.gap(now));
            return;
        }
    };
    let h = checker(m, w).expect("checked above");
    let pid = child.id() as i32;
    // The loop reaps it (waitpid(-1)); the Child handle is not needed.
    drop(child);
    let Some(pidfd) = rustix::process::Pid::from_raw(pid)
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok())
    else {
        return;
    };
    h.probe = Some(Probe {
        pid,
        pidfd: Some(pidfd),
        out: Some(r),
        buf: Vec::new(),
        start: SystemTime::now(),
        began: now,
        deadline: now + h.timeout,
        pidfile,
        timed_out: false,
    });
}

/// `berth-net probe` for `net`: to the container's first address (else its loopback),
/// from inside its network namespace. None (said in the log) when it cannot be made.
fn net_probe(
    m: &mut Mon,
    net: &berth_engine::options::NetProbe,
    timeout: std::time::Duration,
) -> Option<std::process::Command> {
    let addr: std::net::IpAddr = berth_engine::status::peek(&m.layout, &m.id)
        .ok()
        .and_then(|s| s.network)
        .and_then(|n| n.endpoints.iter().find_map(|e| e.ipv4))
        .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into());
    let helper = match berth_engine::bins::locate("berth-net") {
        Ok(p) => p,
        Err(e) => {
            m.mlog.say(&format!("health check: {}", crate::chain(&e)));
            return None;
        }
    };
    let mut c = std::process::Command::new(helper);
    c.arg("probe")
        .arg("--probe")
        .arg(serde_json::to_string(net).expect("probes serialise"))
        .arg("--addr")
        .arg(addr.to_string())
        .arg("--timeout-ms")
        .arg(timeout.as_millis().to_string());
    if m.pid() > 0 {
        c.arg("--netns").arg(format!("/proc/{}/ns/net", m.pid()));
    }
    Some(c)
}

/// Reads a probe's output (its end is its process's exit).
pub fn read(m: &mut Mon, w: Which) {
    let Some(h) = checker(m, w) else { return };
    let Some(p) = h.probe.as_mut() else { return };
    p.read();
}

/// The probe whose process `pid` is, if any.
pub fn probe_of(m: &Mon, pid: i32) -> Option<Which> {
    Which::ALL.into_iter().find(|&w| {
        let h = match w {
            Which::Health => m.health.as_ref(),
            Which::Readiness => m.readiness.as_ref(),
        };
        h.and_then(|h| h.probe.as_ref())
            .is_some_and(|p| p.pid == pid)
    })
}

/// A probe ended with `code`: record it, update the status, act on "unhealthy".
pub fn done(m: &mut Mon, w: Which, code: i32) {
    let Some(h) = checker(m, w) else { return };
    let Some(mut p) = h.probe.take() else { return };
    p.read();
    let now = Instant::now();
    let (code, output) = if p.timed_out {
        (
            -1,
            format!(
                "Health check exceeded timeout ({})",
                berth_engine::parse::go_duration(h.timeout)
            ),
        )
    } else {
        (code, String::from_utf8_lossy(&p.buf).into_owned())
    };
    let old = h.status;
    if code == 0 {
        h.streak = 0;
        h.ok_streak = h.ok_streak.saturating_add(1);
        if h.status == "healthy" || h.ok_streak >= h.successes {
            h.status = "healthy";
        }
    } else if now.duration_since(h.started) >= h.start_period || h.status == "healthy" {
        h.ok_streak = 0;
        h.streak += 1;
        if h.streak >= h.retries {
            h.status = "unhealthy";
        }
    }
    h.next = Some((p.began + h.gap(now)).max(now));
    let probe = HealthProbe {
        start: record::rfc3339(p.start),
        end: record::now_rfc3339(),
        exit_code: code,
        output,
    };
    let (status, streak) = (h.status, h.streak);
    m.update_state(|s| {
        let hs = match w {
            Which::Health => s.health.get_or_insert_with(Default::default),
            Which::Readiness => s.readiness.get_or_insert_with(Default::default),
        };
        hs.status = status.to_string();
        hs.failing_streak = streak;
        hs.log.push(probe);
        let extra = hs.log.len().saturating_sub(KEEP_PROBES);
        hs.log.drain(..extra);
    });
    if status != old {
        match w {
            Which::Health => {
                m.event(&format!("health_status: {status}"), &[]);
                if status == "unhealthy" {
                    m.on_unhealthy();
                }
            }
            Which::Readiness => {
                let r = if status == "healthy" {
                    "ready"
                } else {
                    "unready"
                };
                if status != "starting" {
                    m.event(&format!("readiness_status: {r}"), &[]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_interval_while_starting_in_the_start_period() {
        let ms = |n: u64| Duration::from_millis(n);
        let mut h = Checker::new(&HealthConfig {
            test: vec!["CMD".into(), "true".into()],
            interval: ms(1000).as_nanos() as i64,
            start_period: ms(5000).as_nanos() as i64,
            start_interval: ms(100).as_nanos() as i64,
            ..Default::default()
        })
        .unwrap();
        let t = Instant::now();
        h.on_start(t);
        assert_eq!(h.next, Some(t + ms(100)));
        assert_eq!(h.gap(t + ms(4900)), ms(100));
        // Past the start period, or healthy: the interval.
        assert_eq!(h.gap(t + ms(5000)), ms(1000));
        h.status = "healthy";
        assert_eq!(h.gap(t + ms(200)), ms(1000));
        // Without a start interval: the interval throughout.
        let mut h = Checker::new(&HealthConfig {
            test: vec!["CMD".into(), "true".into()],
            interval: ms(1000).as_nanos() as i64,
            start_period: ms(5000).as_nanos() as i64,
            ..Default::default()
        })
        .unwrap();
        h.on_start(t);
        assert_eq!(h.next, Some(t + ms(1000)));
    }
}
