//! The truth about a container after crashes. state.json is written by the container's
//! monitor; it is trusted while that monitor (pid + start time) lives. When the monitor is
//! gone, the container's own init (pid + start time) decides: alive -> running, dead ->
//! exited. The record is then corrected under the container's lock, so every later reader
//! agrees. Only /proc reads: no runtime calls, no processes spawned (`ps` stays fast).
//!
//! A monitor has a keeper (its parent, also a subreaper): when the monitor is killed, the
//! container's init becomes the keeper's child, and the keeper starts a new monitor that
//! records the real exit status. While the keeper lives the record is trusted too.
//!
//! Exit code when nobody saw the exit (monitor and keeper died first): the recorded code if
//! the monitor recorded one, else 255, which is what docker reports for a container whose
//! exit status was lost (e.g. its shim died).
//!
//! A record that cannot be read (garbage in state.json, or an empty one while the
//! container's cgroup has processes) is [`Error::Unreadable`]: listed as unknown with the
//! reason, and removable with `rm -f` (control::remove), which kills through the cgroup.

use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::record::{now_rfc3339, ContainerState, Status};

/// Exit code recorded when a container died unseen.
pub const LOST_EXIT_CODE: i32 = 255;

/// True when `pid` runs and started at `start` (clock ticks since boot). Unlike
/// record::same_process, a zombie counts as dead: a monitor whose parent has not reaped it
/// yet must not keep its container "running".
pub fn process_alive(pid: i32, start: u64) -> bool {
    if pid <= 0 {
        return false;
    }
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some(rest) = s.rfind(')').and_then(|i| s.get(i + 2..)) else {
        return false;
    };
    let mut f = rest.split(' ');
    let state = f.next().unwrap_or("");
    // Fields after the state: ppid pgrp ... starttime is field 22, the 20th after state.
    let st = f.nth(18).and_then(|v| v.parse::<u64>().ok());
    state != "Z" && state != "X" && st == Some(start)
}

/// True when the state's monitor is alive.
pub fn monitor_alive(s: &ContainerState) -> bool {
    process_alive(s.monitor_pid, s.monitor_start)
}

/// True when the monitor's keeper is alive (it starts a new monitor if the monitor dies).
pub fn keeper_alive(s: &ContainerState) -> bool {
    process_alive(s.keeper_pid, s.keeper_start)
}

/// True when a monitor or its keeper looks after the container.
pub fn watched(s: &ContainerState) -> bool {
    monitor_alive(s) || keeper_alive(s)
}

/// True when the state's container init is alive.
pub fn init_alive(s: &ContainerState) -> bool {
    process_alive(s.pid, s.pid_start)
}

/// States whose truth depends on a live process.
fn is_live(s: &ContainerState) -> bool {
    matches!(
        s.status,
        Status::Running | Status::Restarting | Status::Paused | Status::Removing
    ) || (s.status == Status::Created && (s.monitor_pid > 0 || s.pid > 0 || s.keeper_pid > 0))
}

/// What `s` really is, given which processes are alive; None when it is already right.
pub fn corrected(s: &ContainerState) -> Option<ContainerState> {
    if !is_live(s) || watched(s) {
        return None;
    }
    let mut n = s.clone();
    if init_alive(s) {
        // The monitor died but the container runs on (nobody holds its stdio now).
        if s.status == Status::Running || s.status == Status::Paused {
            return None;
        }
        n.status = Status::Running;
        return Some(n);
    }
    if s.status == Status::Created && s.pid == 0 {
        // A monitor died before creating anything: still just created.
        n.monitor_pid = 0;
        n.monitor_start = 0;
        n.keeper_pid = 0;
        n.keeper_start = 0;
        return Some(n);
    }
    n.status = Status::Exited;
    if n.finished_at.is_empty() {
        n.finished_at = now_rfc3339();
        if n.exit_code == 0 {
            n.exit_code = LOST_EXIT_CODE;
        }
    }
    n.pid = 0;
    n.pid_start = 0;
    n.monitor_pid = 0;
    n.monitor_start = 0;
    n.keeper_pid = 0;
    n.keeper_start = 0;
    Some(n)
}

/// The state as recorded, or [`Error::Unreadable`] naming what is wrong. An empty
/// state.json (a crash right after an unsynced first write) reads as "created" only while
/// nothing runs in the container's cgroup.
pub fn load(layout: &Layout, id: &str) -> Result<ContainerState> {
    let p = layout.state_path(id);
    match crate::record::read_nofollow(&p) {
        Err(Error::Io(_, e)) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok(ContainerState::default())
        }
        Err(e) => Err(Error::Unreadable {
            id: id.to_string(),
            reason: format!("read {}", crate::error::chain(&e)),
        }),
        Ok(b) if b.is_empty() => {
            let n = cgroup_pids(layout, id).len();
            if n > 0 {
                return Err(Error::Unreadable {
                    id: id.to_string(),
                    reason: format!(
                        "{} is empty but {n} processes run in its cgroup",
                        p.display()
                    ),
                });
            }
            Ok(ContainerState::default())
        }
        Ok(b) => serde_json::from_slice(&b).map_err(|e| Error::Unreadable {
            id: id.to_string(),
            reason: format!("decode {}: {e}", p.display()),
        }),
    }
}

/// The container's cgroup path (`linux.cgroupsPath`): from its config, else from its
/// bundle, else the default parent's.
pub fn cgroup_path(layout: &Layout, id: &str) -> String {
    if let Ok(c) = layout.load_config(id) {
        if !c.options.cgroup_parent.is_empty() {
            return format!("{}/{id}", c.options.cgroup_parent.trim_end_matches('/'));
        }
    }
    let spec = layout.bundle_dir(id).join("config.json");
    if let Ok(v) = crate::record::load_json::<serde_json::Value>(&spec) {
        if let Some(p) = v["linux"]["cgroupsPath"].as_str() {
            return p.to_string();
        }
    }
    let parent = std::env::var("BERTH_CGROUP_PARENT")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| crate::create::DEFAULT_CGROUP_PARENT.to_string());
    format!("{}/{id}", parent.trim_end_matches('/'))
}

/// Processes in the container's cgroup (empty when it has none, or no cgroup).
pub fn cgroup_pids(layout: &Layout, id: &str) -> Vec<i32> {
    crate::stats::pids(&cgroup_path(layout, id), id).unwrap_or_default()
}

/// The container's state, corrected (and the record fixed) when its monitor is gone.
pub fn current(layout: &Layout, id: &str) -> Result<ContainerState> {
    let s = load(layout, id)?;
    if corrected(&s).is_none() {
        return Ok(s);
    }
    // Decide again under the lock: a monitor may have written in between.
    let lock = layout.lock(id)?;
    let s = load(layout, id)?;
    match corrected(&s) {
        None => Ok(s),
        Some(n) => {
            layout.save_state(id, &n, &lock)?;
            Ok(n)
        }
    }
}

/// The state without correcting the record (for readers that must not write).
pub fn peek(layout: &Layout, id: &str) -> Result<ContainerState> {
    let s = load(layout, id)?;
    Ok(corrected(&s).unwrap_or(s))
}

/// True when the container has a live init (running, paused or restarting with a pid).
pub fn is_running(s: &ContainerState) -> bool {
    matches!(
        s.status,
        Status::Running | Status::Paused | Status::Restarting
    ) && (watched(s) || init_alive(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::pid_start_time;

    fn me() -> (i32, u64) {
        let p = std::process::id() as i32;
        (p, pid_start_time(p).unwrap())
    }

    #[test]
    fn zombies_are_dead() {
        let (p, st) = me();
        assert!(process_alive(p, st));
        assert!(!process_alive(p, st + 1));
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id() as i32;
        let start = pid_start_time(pid).unwrap();
        // Not reaped yet: a zombie until wait().
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(!process_alive(pid, start));
        c.wait().unwrap();
    }

    #[test]
    fn trusts_a_live_monitor() {
        let (p, st) = me();
        let s = ContainerState {
            status: Status::Running,
            monitor_pid: p,
            monitor_start: st,
            pid: 999_999_999,
            ..Default::default()
        };
        assert_eq!(corrected(&s), None);
    }

    #[test]
    fn dead_monitor_live_init_is_running() {
        let (p, st) = me();
        let s = ContainerState {
            status: Status::Restarting,
            monitor_pid: p,
            monitor_start: st + 1,
            pid: p,
            pid_start: st,
            ..Default::default()
        };
        assert_eq!(corrected(&s).unwrap().status, Status::Running);
    }

    #[test]
    fn dead_monitor_dead_init_is_exited() {
        let (p, st) = me();
        let s = ContainerState {
            status: Status::Running,
            monitor_pid: p,
            monitor_start: st + 1,
            pid: p,
            pid_start: st + 1,
            started_at: now_rfc3339(),
            ..Default::default()
        };
        let n = corrected(&s).unwrap();
        assert_eq!(n.status, Status::Exited);
        assert_eq!(n.exit_code, LOST_EXIT_CODE);
        assert!(!n.finished_at.is_empty());
        assert_eq!((n.pid, n.monitor_pid), (0, 0));
        let exited = ContainerState {
            status: Status::Exited,
            exit_code: 3,
            ..Default::default()
        };
        assert_eq!(corrected(&exited), None);
    }

    #[test]
    fn current_fixes_the_record() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::open(d.path()).unwrap();
        let id = "b".repeat(64);
        std::fs::create_dir(l.container_dir(&id)).unwrap();
        l.update_state(&id, |s| {
            s.status = Status::Running;
            s.pid = i32::MAX;
            s.pid_start = 1;
            s.monitor_pid = i32::MAX;
            s.monitor_start = 1;
            s.exit_code = 7;
            s.finished_at = "2026-01-01T00:00:00.000000000Z".into();
        })
        .unwrap();
        let s = current(&l, &id).unwrap();
        assert_eq!((s.status, s.exit_code), (Status::Exited, 7));
        assert_eq!(l.load_state(&id).unwrap(), s);
    }
}
