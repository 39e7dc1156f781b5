//! The cgroupfs manager behind [`crate::Manager`] for v1, v2 and hybrid layouts.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::hierarchy::{Hierarchy, ProcCgroups};
use crate::path::CgroupPath;
use crate::util::{self, read, read_trim, write};
use crate::{Error, Manager, Stats};

const SIGKILL: i32 = 9;
/// How long destroy waits for killed processes to leave.
const DESTROY_WAIT: Duration = Duration::from_secs(10);
/// How long freeze/thaw wait for the kernel to report the new state.
const FREEZE_WAIT: Duration = Duration::from_secs(5);

/// Where a controller's files live and in which dialect.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Backend<'a> {
    V1(&'a Path),
    V2(&'a Path),
}

pub(crate) struct FsManager {
    pub(crate) cg_path: String,
    /// v1 controller (or "name=...") → cgroup directory.
    pub(crate) v1: BTreeMap<String, PathBuf>,
    /// v1 controller → mount point.
    pub(crate) v1_mounts: BTreeMap<String, PathBuf>,
    /// The unified cgroup directory (v2 or hybrid).
    pub(crate) v2: Option<PathBuf>,
    pub(crate) v2_root: Option<PathBuf>,
    /// Pure v2: every controller is enabled on the way down at create time. In hybrid
    /// mode only the controllers a resource needs are enabled, when it is applied.
    pub(crate) pure_v2: bool,
    /// Parents created by this manager (outermost first), removed again by destroy.
    created: Mutex<Vec<PathBuf>>,
}

fn join_cg(base: &Path, cg: &str) -> PathBuf {
    let rel = cg.trim_start_matches('/');
    if rel.is_empty() {
        base.to_path_buf()
    } else {
        base.join(rel)
    }
}

fn join_rel(own: &str, rel: &str) -> String {
    let own = own.trim_end_matches('/');
    format!("{own}/{rel}")
}

impl FsManager {
    pub(crate) fn new(
        p: &CgroupPath,
        h: &Hierarchy,
        own: Option<&ProcCgroups>,
    ) -> Result<FsManager, Error> {
        let loaded;
        let own = match (p, own) {
            (CgroupPath::Relative(_), None) => {
                loaded = crate::hierarchy::self_cgroups()?;
                Some(&loaded)
            }
            (_, o) => o,
        };
        // Cgroup path per hierarchy key ("" = unified).
        let cg_for = |key: &str| -> String {
            match p {
                CgroupPath::Absolute(a) => a.clone(),
                CgroupPath::Relative(r) => {
                    let own = own.expect("own cgroups loaded for relative paths");
                    let base = if key.is_empty() {
                        own.v2.as_deref()
                    } else {
                        own.v1.get(key).map(String::as_str)
                    };
                    join_rel(base.unwrap_or("/"), r)
                }
            }
        };
        let mut v1 = BTreeMap::new();
        if let Some(m) = h.v1_mounts() {
            for (ctrl, mnt) in m {
                v1.insert(ctrl.clone(), join_cg(mnt, &cg_for(ctrl)));
            }
        }
        let v2 = h.v2_root().map(|r| join_cg(r, &cg_for("")));
        let cg_path = if h.v2_root().is_some() {
            cg_for("")
        } else if v1.contains_key("memory") {
            cg_for("memory")
        } else {
            v1.keys().next().map(|k| cg_for(k)).unwrap_or_default()
        };
        Ok(FsManager {
            cg_path,
            v1_mounts: h.v1_mounts().cloned().unwrap_or_default(),
            v1,
            v2,
            v2_root: h.v2_root().map(Path::to_path_buf),
            pure_v2: matches!(h, Hierarchy::V2 { .. }),
            created: Mutex::new(Vec::new()),
        })
    }

    pub(crate) fn from_paths(
        paths: &BTreeMap<String, PathBuf>,
        h: &Hierarchy,
    ) -> Result<FsManager, Error> {
        let mut v1 = BTreeMap::new();
        let mut v2 = None;
        for (k, d) in paths {
            if k.is_empty() {
                v2 = Some(d.clone());
            } else {
                v1.insert(k.clone(), d.clone());
            }
        }
        let rel = |root: &Path, d: &Path| -> Option<String> {
            d.strip_prefix(root)
                .ok()
                .map(|r| format!("/{}", r.display()))
        };
        let cg_path = match (h.v2_root(), &v2) {
            (Some(r), Some(d)) => rel(r, d),
            _ => h.v1_mounts().and_then(|m| {
                let (k, d) = v1.get_key_value("memory").or_else(|| v1.iter().next())?;
                rel(m.get(k)?, d)
            }),
        }
        .ok_or_else(|| Error::InvalidPath {
            path: format!("{paths:?}"),
            reason: "recorded cgroup directories do not lie under this host's cgroup mounts".into(),
        })?;
        Ok(FsManager {
            cg_path,
            v1_mounts: h.v1_mounts().cloned().unwrap_or_default(),
            v1,
            v2,
            v2_root: h.v2_root().map(Path::to_path_buf),
            pure_v2: matches!(h, Hierarchy::V2 { .. }),
            created: Mutex::new(Vec::new()),
        })
    }

    /// Distinct directories, v1 ones first, then the unified one.
    pub(crate) fn dirs(&self) -> Vec<&Path> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for d in self.v1.values().chain(self.v2.iter()) {
            if seen.insert(d.as_path()) {
                out.push(d.as_path());
            }
        }
        out
    }

    /// The backend for a v1 controller name (v2 names: blkio→io, cpuacct→cpu).
    pub(crate) fn backend(&self, v1_name: &str) -> Option<Backend<'_>> {
        if let Some(d) = self.v1.get(v1_name) {
            return Some(Backend::V1(d));
        }
        let v2 = self.v2.as_deref()?;
        let name = v2_name(v1_name);
        if self.v2_available(name) {
            Some(Backend::V2(v2))
        } else {
            None
        }
    }

    /// Whether the unified hierarchy offers `ctrl` to this cgroup (enabled, or enableable
    /// from the root in hybrid mode).
    pub(crate) fn v2_available(&self, ctrl: &str) -> bool {
        let (Some(root), Some(_)) = (&self.v2_root, &self.v2) else {
            return false;
        };
        let list = if self.pure_v2 {
            // Enabled at create time: it is there if the leaf's parent enabled it.
            self.v2
                .as_deref()
                .and_then(|d| d.parent())
                .and_then(|p| util::read_opt(p, "cgroup.subtree_control").ok().flatten())
        } else {
            util::read_opt(root, "cgroup.controllers").ok().flatten()
        };
        list.is_some_and(|l| l.split_whitespace().any(|c| c == ctrl))
    }

    /// Enables `ctrls` in cgroup.subtree_control from the v2 root down to the leaf's parent.
    pub(crate) fn v2_enable(&self, ctrls: &[&str]) -> Result<(), Error> {
        let (Some(root), Some(leaf)) = (&self.v2_root, &self.v2) else {
            return Ok(());
        };
        let Ok(rel) = leaf.strip_prefix(root) else {
            return Ok(());
        };
        let mut cur = root.clone();
        // Every ancestor of the leaf, root included, enables them for its children.
        for c in rel.components() {
            let enabled = read(&cur, "cgroup.subtree_control")?;
            let available = read(&cur, "cgroup.controllers")?;
            for ctrl in ctrls {
                let on = enabled.split_whitespace().any(|e| e == *ctrl);
                let avail = available.split_whitespace().any(|e| e == *ctrl);
                if !on && avail {
                    write(&cur, "cgroup.subtree_control", &format!("+{ctrl}"))?;
                }
            }
            cur = cur.join(c);
        }
        Ok(())
    }

    /// `create`/`create_shared`: the number of processes already inside
    /// (0 unless `populated_ok`).
    fn create_in(&self, populated_ok: bool) -> Result<usize, Error> {
        if self.create_fresh()? {
            return Ok(0);
        }
        let mut found = 0;
        for d in self.dirs() {
            if populated_ok {
                if d.exists() {
                    found = found.max(procs_recursive(d)?.len());
                }
            } else {
                self.check_reusable(d)?;
            }
        }
        if self.any_exists() && self.is_frozen()? {
            let d = match self.freezer() {
                Some(Backend::V1(d)) | Some(Backend::V2(d)) => d.to_path_buf(),
                None => PathBuf::new(),
            };
            return Err(Error::Frozen { path: d });
        }
        let mut created = Vec::new();
        for d in self.dirs() {
            created.extend(util::mkdir_all(d)?);
        }
        self.fill_new()?;
        self.created
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(created);
        Ok(found)
    }

    fn check_reusable(&self, dir: &Path) -> Result<(), Error> {
        if !dir.exists() {
            return Ok(());
        }
        if !procs_recursive(dir)?.is_empty() {
            return Err(Error::NotEmpty { path: dir.into() });
        }
        Ok(())
    }

    fn freezer(&self) -> Option<Backend<'_>> {
        if let Some(d) = self.v1.get("freezer") {
            return Some(Backend::V1(d));
        }
        self.v2.as_deref().map(Backend::V2)
    }

    fn wait_state(&self, want_frozen: bool) -> Result<(), Error> {
        let start = Instant::now();
        let mut sleep = Duration::from_millis(1);
        loop {
            if self.state_is(want_frozen)? {
                return Ok(());
            }
            if start.elapsed() > FREEZE_WAIT {
                let (path, state) = match self.freezer() {
                    Some(Backend::V1(d)) | Some(Backend::V2(d)) => (
                        d.to_path_buf(),
                        if want_frozen { "frozen" } else { "thawed" },
                    ),
                    None => (PathBuf::new(), "frozen"),
                };
                return Err(Error::StateTimeout {
                    path,
                    state,
                    waited_ms: FREEZE_WAIT.as_millis() as u64,
                });
            }
            std::thread::sleep(sleep);
            sleep = (sleep * 2).min(Duration::from_millis(20));
        }
    }

    fn state_is(&self, frozen: bool) -> Result<bool, Error> {
        // A cgroup that does not exist (yet) runs nothing frozen.
        if let Some(Backend::V1(d) | Backend::V2(d)) = self.freezer() {
            if !d.exists() {
                return Ok(!frozen);
            }
        }
        match self.freezer() {
            Some(Backend::V1(d)) => {
                let s = read_trim(d, "freezer.state")?;
                Ok(if frozen { s == "FROZEN" } else { s == "THAWED" })
            }
            Some(Backend::V2(d)) => {
                let ev = util::parse_flat_keyed(&read(d, "cgroup.events")?);
                Ok(ev.get("frozen").copied().unwrap_or(0) == u64::from(frozen))
            }
            None => Ok(!frozen),
        }
    }

    fn set_frozen(&self, frozen: bool) -> Result<(), Error> {
        match self.freezer() {
            Some(Backend::V1(d)) => {
                write(d, "freezer.state", if frozen { "FROZEN" } else { "THAWED" })?
            }
            Some(Backend::V2(d)) => write(d, "cgroup.freeze", if frozen { "1" } else { "0" })?,
            None => {
                return Err(Error::Unsupported {
                    field: "freezer".into(),
                    reason: "no v1 freezer controller and no unified hierarchy".into(),
                })
            }
        }
        self.wait_state(frozen)
    }

    /// The usual case of [`Manager::create`]: every leaf is new and its
    /// parent exists, so one mkdir each makes it, with nothing to check for
    /// reuse. Ok(false), with nothing left behind, when that is not so.
    fn create_fresh(&self) -> Result<bool, Error> {
        let undo = |made: &[PathBuf]| {
            for m in made.iter().rev() {
                let _ = fs::remove_dir(m);
            }
        };
        let mut made = Vec::new();
        for d in self.dirs() {
            if fs::create_dir(d).is_err() {
                undo(&made);
                return Ok(false);
            }
            made.push(d.to_path_buf());
        }
        if let Err(e) = self.fill_new() {
            undo(&made);
            return Err(e);
        }
        self.created
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(made);
        Ok(true)
    }

    /// What new directories need before they take tasks.
    fn fill_new(&self) -> Result<(), Error> {
        if let (Some(leaf), Some(mnt)) = (self.v1.get("cpuset"), self.v1_mounts.get("cpuset")) {
            cpuset_fill(mnt, leaf)?;
        }
        if self.pure_v2 {
            if let Some(root) = &self.v2_root {
                let avail = read(root, "cgroup.controllers")?;
                let all: Vec<&str> = avail.split_whitespace().collect();
                self.v2_enable(&all)?;
            }
        }
        Ok(())
    }

    fn any_exists(&self) -> bool {
        self.dirs().iter().any(|d| d.exists())
    }

    fn signal_each(&self, sig: i32) -> Result<usize, Error> {
        // 0 is kill(2)'s existence check: nothing is sent.
        let s = match sig {
            0 => None,
            _ => Some(rustix::process::Signal::from_named_raw(sig).ok_or_else(|| {
                Error::Invalid {
                    field: "signal".into(),
                    value: sig.to_string(),
                    reason: "not a known signal number".into(),
                }
            })?),
        };
        let mut n = 0;
        for pid in self.pids()? {
            let Some(p) = rustix::process::Pid::from_raw(pid) else {
                continue;
            };
            let sent = match s {
                Some(s) => rustix::process::kill_process(p, s),
                None => rustix::process::test_kill_process(p),
            };
            match sent {
                Ok(()) => n += 1,
                Err(rustix::io::Errno::SRCH) => {}
                Err(e) => {
                    return Err(Error::Signal {
                        pid,
                        sig,
                        source: e.into(),
                    })
                }
            }
        }
        Ok(n)
    }
}

pub(crate) fn v2_name(v1: &str) -> &str {
    match v1 {
        "blkio" => "io",
        "cpuacct" => "cpu",
        o => o,
    }
}

/// All pids in `dir` and its sub-cgroups; a missing dir has none.
pub(crate) fn procs_recursive(dir: &Path) -> Result<Vec<i32>, Error> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let text = match util::read_opt(&d, "cgroup.procs")? {
            Some(t) => t,
            None => continue,
        };
        for l in text.lines() {
            if let Ok(p) = l.trim().parse::<i32>() {
                out.push(p);
            }
        }
        for sub in subdirs(&d)? {
            stack.push(sub);
        }
    }
    Ok(out)
}

fn subdirs(d: &Path) -> Result<Vec<PathBuf>, Error> {
    let rd = match fs::read_dir(d) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::ReadDir {
                path: d.into(),
                source,
            })
        }
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|source| Error::ReadDir {
            path: d.into(),
            source,
        })?;
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            out.push(e.path());
        }
    }
    Ok(out)
}

/// rmdir with a short retry on EBUSY (v1 memory cgroups linger briefly after exit).
fn rmdir_retry(d: &Path) -> Result<(), Error> {
    let start = Instant::now();
    loop {
        match fs::remove_dir(d) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e)
                if e.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error())
                    && start.elapsed() < Duration::from_secs(2) =>
            {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(source) => {
                return Err(Error::Rmdir {
                    path: d.into(),
                    source,
                })
            }
        }
    }
}

/// Removes `d` and every sub-cgroup, deepest first.
fn rmdir_tree(d: &Path) -> Result<(), Error> {
    for sub in subdirs(d)? {
        rmdir_tree(&sub)?;
    }
    rmdir_retry(d)
}

/// rmdir that ignores "not empty", "busy" and "missing" (for shared parents).
fn rmdir_if_empty(d: &Path) -> Result<(), Error> {
    match fs::remove_dir(d) {
        Ok(()) => Ok(()),
        Err(e)
            if e.kind() == io::ErrorKind::NotFound
                || matches!(
                    e.raw_os_error(),
                    Some(x) if x == rustix::io::Errno::NOTEMPTY.raw_os_error()
                        || x == rustix::io::Errno::BUSY.raw_os_error()
                ) =>
        {
            Ok(())
        }
        Err(source) => Err(Error::Rmdir {
            path: d.into(),
            source,
        }),
    }
}

/// v1 cpuset: a new cgroup has empty cpus/mems and refuses tasks; copy them down from
/// the nearest ancestor (as runc does), level by level.
fn cpuset_fill(mount: &Path, leaf: &Path) -> Result<(), Error> {
    let Ok(rel) = leaf.strip_prefix(mount) else {
        return Ok(());
    };
    let mut parent = mount.to_path_buf();
    for c in rel.components() {
        let cur = parent.join(c);
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if read_trim(&cur, f)?.is_empty() {
                let v = read_trim(&parent, f)?;
                write(&cur, f, &v)?;
            }
        }
        parent = cur;
    }
    Ok(())
}

impl Manager for FsManager {
    fn create(&self) -> Result<(), Error> {
        self.create_in(false).map(|_| ())
    }

    fn create_shared(&self) -> Result<usize, Error> {
        self.create_in(true)
    }

    fn add_task(&self, pid: i32) -> Result<(), Error> {
        for d in self.dirs() {
            write(d, "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    fn add_task_v1(&self, pid: i32) -> Result<(), Error> {
        for d in self.v1.values() {
            write(d, "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    fn v2_dir(&self) -> Option<PathBuf> {
        self.v2.clone()
    }

    fn apply(&self, res: &oci_spec::runtime::LinuxResources) -> Result<(), Error> {
        crate::apply::apply(self, res)
    }

    fn pids(&self) -> Result<Vec<i32>, Error> {
        let mut all = Vec::new();
        for d in self.dirs() {
            all.extend(procs_recursive(d)?);
        }
        all.sort_unstable();
        all.dedup();
        Ok(all)
    }

    fn freeze(&self) -> Result<(), Error> {
        self.set_frozen(true)
    }

    fn thaw(&self) -> Result<(), Error> {
        self.set_frozen(false)
    }

    fn is_frozen(&self) -> Result<bool, Error> {
        self.state_is(true)
    }

    fn kill_all(&self, sig: i32) -> Result<(), Error> {
        if !self.any_exists() {
            return Ok(());
        }
        if sig == SIGKILL {
            if let Some(d) = &self.v2 {
                if d.join("cgroup.kill").exists() {
                    write(d, "cgroup.kill", "1")?;
                    // A v1-frozen task (hybrid) only dies once thawed.
                    if self.v1.contains_key("freezer") && self.is_frozen()? {
                        self.thaw()?;
                    }
                    return Ok(());
                }
            }
        }
        if sig == 0 {
            return self.signal_each(0).map(|_| ());
        }
        let can_freeze = self.freezer().is_some();
        let was_frozen = can_freeze && self.is_frozen()?;
        // Freezing first means no process can fork past the signalling loop. It is
        // best effort: a task stuck in the kernel can keep a freeze from completing,
        // and the signal must still go out.
        let froze = can_freeze && !was_frozen && {
            let ok = self.freeze().is_ok();
            if !ok {
                let _ = self.thaw();
            }
            ok
        };
        let res = self.signal_each(sig);
        if froze || (was_frozen && sig == SIGKILL) {
            self.thaw()?;
        }
        res.map(|_| ())
    }

    fn destroy(&self) -> Result<(), Error> {
        // The usual case: nothing left inside, so rmdir succeeds at once (it
        // fails with EBUSY while a task or a sub-cgroup remains).
        let gone = self.dirs().iter().all(|d| match fs::remove_dir(d) {
            Ok(()) => true,
            Err(e) => e.kind() == io::ErrorKind::NotFound,
        });
        if !gone && self.any_exists() {
            let mut left = self.pids()?;
            if !left.is_empty() {
                self.kill_all(SIGKILL)?;
            }
            let start = Instant::now();
            let mut last_kill = Instant::now();
            while !left.is_empty() {
                std::thread::sleep(Duration::from_millis(1));
                left = self.pids()?;
                if left.is_empty() {
                    break;
                }
                if start.elapsed() > DESTROY_WAIT {
                    return Err(Error::StillPopulated {
                        path: PathBuf::from(&self.cg_path),
                        pids: left,
                        waited_ms: DESTROY_WAIT.as_millis() as u64,
                    });
                }
                // A process frozen by someone else never dies; keep it thawed.
                if self.is_frozen().unwrap_or(false) {
                    let _ = self.thaw();
                }
                // Catch processes cgroup.kill could not reach (e.g. only in v1 dirs).
                if last_kill.elapsed() > Duration::from_millis(200) {
                    self.signal_each(SIGKILL)?;
                    last_kill = Instant::now();
                }
            }
            for d in self.dirs() {
                rmdir_tree(d)?;
            }
        }
        let created: Vec<PathBuf> =
            std::mem::take(&mut *self.created.lock().unwrap_or_else(|e| e.into_inner()));
        for p in created.iter().rev() {
            rmdir_if_empty(p)?;
        }
        // The default "/berth" parent is shared by all default-path containers.
        if self.cg_path.starts_with("/berth/") && self.cg_path.matches('/').count() == 2 {
            for d in self.dirs() {
                if let Some(p) = d.parent() {
                    rmdir_if_empty(p)?;
                }
            }
        }
        Ok(())
    }

    fn stats(&self) -> Result<Stats, Error> {
        crate::stats::collect(self)
    }

    fn path(&self) -> String {
        self.cg_path.clone()
    }

    fn paths(&self) -> BTreeMap<String, PathBuf> {
        let mut m = self.v1.clone();
        if let Some(d) = &self.v2 {
            m.insert(String::new(), d.clone());
        }
        m
    }

    fn oom_events(&self) -> Result<crate::events::OomWatcher, Error> {
        crate::events::OomWatcher::new(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{new_manager_with, CgroupConfig};

    fn v1_fake(r: &Path) -> Hierarchy {
        let mut m = BTreeMap::new();
        for c in [
            "cpu",
            "cpuacct",
            "cpuset",
            "memory",
            "freezer",
            "name=systemd",
        ] {
            let mnt = r.join(if c == "cpuacct" { "cpu" } else { c });
            fs::create_dir_all(&mnt).unwrap();
            m.insert(c.to_string(), mnt);
        }
        Hierarchy::Hybrid {
            v1: m,
            v2: r.join("unified"),
        }
    }

    #[test]
    fn relative_paths_follow_own_cgroups() {
        let t = tempfile::tempdir().unwrap();
        let h = v1_fake(t.path());
        let own = crate::parse_proc_cgroup(
            "5:memory:/process_api/x\n2:cpu,cpuacct:/\n1:name=systemd:/s\n0::/u/v\n",
        )
        .unwrap();
        let cfg = CgroupConfig {
            path: Some("c/d"),
            id: "i",
            systemd: false,
        };
        let m = new_manager_with(&cfg, &h, Some(&own), &t.path().join("nosd")).unwrap();
        let p = m.paths();
        assert_eq!(p["memory"], t.path().join("memory/process_api/x/c/d"));
        assert_eq!(p["cpu"], t.path().join("cpu/c/d"));
        assert_eq!(p["cpuacct"], t.path().join("cpu/c/d"));
        assert_eq!(p["name=systemd"], t.path().join("name=systemd/s/c/d"));
        assert_eq!(p[""], t.path().join("unified/u/v/c/d"));
        assert_eq!(m.path(), "/u/v/c/d");
        // Reloading from the recorded paths gives the same manager.
        let again = crate::load_manager(&p, &h).unwrap();
        assert_eq!(again.paths(), p);
        assert_eq!(again.path(), "/u/v/c/d");
        assert!(crate::load_manager(
            &BTreeMap::from([(String::new(), PathBuf::from("/elsewhere"))]),
            &h
        )
        .is_err());
    }

    #[test]
    fn create_on_fake_tree_fills_cpuset_and_records_parents() {
        let t = tempfile::tempdir().unwrap();
        let h = v1_fake(t.path());
        let cs = t.path().join("cpuset");
        fs::write(cs.join("cpuset.cpus"), "0-1\n").unwrap();
        fs::write(cs.join("cpuset.mems"), "0\n").unwrap();
        // The kernel would create these files with the directories; pre-create them.
        for d in ["a", "a/b"] {
            fs::create_dir_all(cs.join(d)).unwrap();
            fs::write(cs.join(d).join("cpuset.cpus"), "").unwrap();
            fs::write(cs.join(d).join("cpuset.mems"), "").unwrap();
        }
        let cfg = CgroupConfig {
            path: Some("/a/b"),
            id: "i",
            systemd: false,
        };
        let m = FsManager::new(
            &crate::path::resolve(&cfg, Path::new("/nonexistent")).unwrap(),
            &h,
            None,
        )
        .unwrap();
        m.create().unwrap();
        assert_eq!(
            fs::read_to_string(cs.join("a/b/cpuset.cpus")).unwrap(),
            "0-1"
        );
        assert_eq!(fs::read_to_string(cs.join("a/cpuset.mems")).unwrap(), "0");
        let created = m.created.lock().unwrap().clone();
        assert!(created.contains(&t.path().join("memory/a")));
        assert!(created.contains(&t.path().join("unified/a/b")));
        assert!(!created.contains(&cs.join("a")), "existed before");
        // Populated: a second create refuses.
        fs::write(t.path().join("memory/a/b/cgroup.procs"), "42\n").unwrap();
        assert!(matches!(m.create(), Err(Error::NotEmpty { .. })));
        assert_eq!(m.pids().unwrap(), vec![42]);
        // ... and create_shared uses it (when not frozen), saying how many it holds.
        fs::write(t.path().join("freezer/a/b/freezer.state"), "THAWED\n").unwrap();
        assert_eq!(m.create_shared().unwrap(), 1);
    }

    #[test]
    fn freezer_states_on_fake_tree() {
        let t = tempfile::tempdir().unwrap();
        let h = v1_fake(t.path());
        let cfg = CgroupConfig {
            path: Some("/f"),
            id: "i",
            systemd: false,
        };
        let m = FsManager::new(
            &crate::path::resolve(&cfg, Path::new("/nonexistent")).unwrap(),
            &h,
            None,
        )
        .unwrap();
        let fz = t.path().join("freezer/f");
        fs::create_dir_all(&fz).unwrap();
        fs::write(fz.join("freezer.state"), "THAWED\n").unwrap();
        assert!(!m.is_frozen().unwrap());
        m.freeze().unwrap();
        assert_eq!(
            fs::read_to_string(fz.join("freezer.state")).unwrap(),
            "FROZEN"
        );
        assert!(m.is_frozen().unwrap());
        // A frozen cgroup is not reused.
        assert!(matches!(m.create(), Err(Error::Frozen { .. })));
        m.thaw().unwrap();
        assert!(!m.is_frozen().unwrap());
    }

    #[test]
    fn pure_v2_create_enables_controllers_down_the_path() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("cg");
        fs::create_dir_all(root.join("x")).unwrap();
        for d in [root.clone(), root.join("x")] {
            fs::write(d.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
            fs::write(d.join("cgroup.subtree_control"), "").unwrap();
        }
        let h = Hierarchy::V2 { root: root.clone() };
        let cfg = CgroupConfig {
            path: Some("/x/y"),
            id: "i",
            systemd: false,
        };
        let m = FsManager::new(
            &crate::path::resolve(&cfg, Path::new("/nonexistent")).unwrap(),
            &h,
            None,
        )
        .unwrap();
        m.create().unwrap();
        // The fake file keeps only the last write; the real one accumulates.
        assert_eq!(
            fs::read_to_string(root.join("x/cgroup.subtree_control")).unwrap(),
            "+pids"
        );
        assert!(root.join("x/y").is_dir());
        assert_eq!(m.v2_dir(), Some(root.join("x/y")));
        assert!(m.paths().len() == 1);
    }
}
