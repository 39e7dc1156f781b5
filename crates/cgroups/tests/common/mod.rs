//! Shared helpers for the root integration tests (host and v2 VM).
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use berth_cgroups::{new_manager, probe, CgroupConfig, Hierarchy, Manager};

static N: AtomicUsize = AtomicUsize::new(0);

/// Root check: these tests need to write cgroupfs.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Skips (returns true) when not root, saying so.
pub fn skip() -> bool {
    if !is_root() {
        eprintln!("skipped: needs root");
        return true;
    }
    false
}

pub fn busybox() -> PathBuf {
    for p in ["/bin/busybox", "/usr/bin/busybox", "/sbin/busybox"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    panic!("busybox not found (apt-get install busybox-static)");
}

/// A test cgroup under /berth-test/cgt-PID-N; destroyed (and its parent removed) on drop,
/// also when the test panics.
pub struct Cg {
    pub mgr: Box<dyn Manager>,
    pub h: Hierarchy,
    pub parent: String,
    pub path: String,
}

/// On a hybrid host: the unified mount alone, seen as a pure v2 hierarchy, so the v2
/// code paths (cgroup.freeze, cgroup.kill, BPF device filter) run for real.
pub fn unified_only() -> Option<Hierarchy> {
    match probe().expect("probe") {
        Hierarchy::Hybrid { v2, .. } => Some(Hierarchy::V2 { root: v2 }),
        _ => None,
    }
}

impl Cg {
    pub fn new(name: &str) -> Cg {
        Cg::new_in(probe().expect("probe"), name)
    }

    pub fn new_in(h: Hierarchy, name: &str) -> Cg {
        let parent = format!(
            "/berth-test/cgt-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let path = format!("{parent}/{name}");
        let mgr = new_manager(
            &CgroupConfig {
                path: Some(&path),
                id: name,
                systemd: false,
            },
            &h,
        )
        .expect("new_manager");
        mgr.create().expect("create");
        Cg {
            mgr,
            h,
            parent,
            path,
        }
    }

    /// Every directory of the parent, one per hierarchy mount.
    pub fn parent_dirs(&self) -> Vec<PathBuf> {
        let mut mounts: Vec<PathBuf> = self
            .h
            .v1_mounts()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        mounts.extend(self.h.v2_root().map(Path::to_path_buf));
        mounts.sort();
        mounts.dedup();
        mounts
            .iter()
            .map(|m| m.join(self.parent.trim_start_matches('/')))
            .collect()
    }

    /// Spawns `sh -c script` that waits on stdin until it is in the cgroup.
    pub fn spawn(&self, script: &str) -> Child {
        let mut c = Command::new(busybox())
            .args(["sh", "-c", &format!("read _go; {script}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn busybox");
        self.mgr.add_task(c.id() as i32).expect("add_task");
        c.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
        c
    }

    /// The directory of a v1 controller, or the unified dir.
    pub fn dir(&self, ctrl: &str) -> PathBuf {
        let p = self.mgr.paths();
        p.get(ctrl).or_else(|| p.get("")).cloned().unwrap()
    }
}

impl Drop for Cg {
    fn drop(&mut self) {
        let r = self.mgr.destroy();
        for d in self.parent_dirs() {
            let _ = std::fs::remove_dir(&d);
        }
        if let Err(e) = r {
            if !std::thread::panicking() {
                panic!("destroy: {e}");
            }
        }
    }
}

/// Waits for `child` with a deadline, killing it if it overruns.
pub fn wait_timeout(child: &mut Child, t: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if start.elapsed() > t {
            let _ = child.kill();
            panic!("child {} did not exit within {t:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Number of directories at and under cgroup path `cg` in every hierarchy (0 if absent).
pub fn dir_count(h: &Hierarchy, cg: &str) -> usize {
    let mut mounts: Vec<PathBuf> = h
        .v1_mounts()
        .map(|m| m.values().cloned().collect())
        .unwrap_or_default();
    mounts.extend(h.v2_root().map(Path::to_path_buf));
    mounts.sort();
    mounts.dedup();
    let mut n = 0;
    let mut stack: Vec<PathBuf> = mounts
        .iter()
        .map(|m| m.join(cg.trim_start_matches('/')))
        .collect();
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        n += 1;
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(e.path());
            }
        }
    }
    n
}

pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}
