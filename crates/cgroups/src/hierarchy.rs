//! Finding the cgroup hierarchies: /proc/self/mountinfo and /proc/self/cgroup.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::Error;

/// The cgroup layout of the host, probed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hierarchy {
    /// Only cgroup v1; `mounts` maps each controller (and named hierarchies such as
    /// "name=systemd") to its mount point. Co-mounted controllers share a path.
    V1 { mounts: BTreeMap<String, PathBuf> },
    /// Only the unified hierarchy, mounted at `root`.
    V2 { root: PathBuf },
    /// v1 controllers plus a cgroup2 mount (e.g. /sys/fs/cgroup/unified) holding the
    /// controllers that are not bound to v1.
    Hybrid {
        v1: BTreeMap<String, PathBuf>,
        v2: PathBuf,
    },
}

impl Hierarchy {
    /// The v1 controller mounts, if any.
    pub fn v1_mounts(&self) -> Option<&BTreeMap<String, PathBuf>> {
        match self {
            Hierarchy::V1 { mounts } => Some(mounts),
            Hierarchy::Hybrid { v1, .. } => Some(v1),
            Hierarchy::V2 { .. } => None,
        }
    }

    /// The cgroup2 mount point, if any.
    pub fn v2_root(&self) -> Option<&Path> {
        match self {
            Hierarchy::V2 { root } => Some(root),
            Hierarchy::Hybrid { v2, .. } => Some(v2),
            Hierarchy::V1 { .. } => None,
        }
    }
}

/// One cgroup filesystem mount from mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    pub mount_point: PathBuf,
    /// The mount's root inside the hierarchy ("/" unless a subtree is bind-mounted).
    pub root: String,
    pub v2: bool,
    /// v1 controllers (and "name=..." for named hierarchies); empty for v2.
    pub controllers: Vec<String>,
}

/// v1 super options that are not controllers.
const NON_CONTROLLER_OPTS: &[&str] = &[
    "rw",
    "ro",
    "xattr",
    "noprefix",
    "clone_children",
    "cpuset_v2_mode",
    "all",
    "none",
    "favordynmods",
];

/// Undoes mountinfo's octal escapes (`\040` for space etc.).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses the cgroup and cgroup2 entries of a mountinfo text.
pub fn parse_mountinfo(text: &str) -> Result<Vec<CgroupMount>, Error> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let bad = |reason: &str| Error::Parse {
            what: "mountinfo line",
            text: line.to_string(),
            reason: reason.to_string(),
        };
        let (pre, post) = line
            .split_once(" - ")
            .ok_or_else(|| bad("no ' - ' separator"))?;
        let pre: Vec<&str> = pre.split(' ').collect();
        if pre.len() < 6 {
            return Err(bad("fewer than 6 fields before the separator"));
        }
        let mut post = post.split(' ');
        let fstype = post.next().ok_or_else(|| bad("no filesystem type"))?;
        let _source = post.next();
        let superopts = post.next().unwrap_or("");
        let v2 = match fstype {
            "cgroup2" => true,
            "cgroup" => false,
            _ => continue,
        };
        let controllers = if v2 {
            Vec::new()
        } else {
            superopts
                .split(',')
                .filter(|o| !NON_CONTROLLER_OPTS.contains(o) && !o.starts_with("release_agent="))
                .map(str::to_string)
                .collect()
        };
        out.push(CgroupMount {
            mount_point: PathBuf::from(unescape(pre[4])),
            root: unescape(pre[3]),
            v2,
            controllers,
        });
    }
    Ok(out)
}

/// Builds the [`Hierarchy`] from a mountinfo text (first mount of each hierarchy wins).
pub fn hierarchy_from_mountinfo(text: &str) -> Result<Hierarchy, Error> {
    let mut v1 = BTreeMap::new();
    let mut v2 = None;
    for m in parse_mountinfo(text)? {
        if m.v2 {
            if v2.is_none() {
                v2 = Some(m.mount_point);
            }
        } else {
            for c in m.controllers {
                v1.entry(c).or_insert_with(|| m.mount_point.clone());
            }
        }
    }
    match (v1.is_empty(), v2) {
        (true, Some(root)) => Ok(Hierarchy::V2 { root }),
        (false, Some(v2)) => Ok(Hierarchy::Hybrid { v1, v2 }),
        (false, None) => Ok(Hierarchy::V1 { mounts: v1 }),
        (true, None) => Err(Error::NoCgroupFs),
    }
}

/// Probes the host's cgroup layout from /proc/self/mountinfo.
pub fn probe() -> Result<Hierarchy, Error> {
    let path = PathBuf::from("/proc/self/mountinfo");
    // procfs reports size 0: read into a buffer sized for a typical table
    // rather than growing one from 32 bytes, a syscall per doubling.
    let mut text = String::with_capacity(16 * 1024);
    fs::File::open(&path)
        .and_then(|mut f| std::io::Read::read_to_string(&mut f, &mut text))
        .map_err(|source| Error::Read { path, source })?;
    hierarchy_from_mountinfo(&text)
}

/// A process's cgroup membership (/proc/PID/cgroup).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcCgroups {
    /// v1 controller (or "name=...") → path.
    pub v1: BTreeMap<String, String>,
    /// The unified ("0::") path.
    pub v2: Option<String>,
}

/// Parses /proc/PID/cgroup.
pub fn parse_proc_cgroup(text: &str) -> Result<ProcCgroups, Error> {
    let mut out = ProcCgroups::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let bad = |reason: &str| Error::Parse {
            what: "/proc/PID/cgroup line",
            text: line.to_string(),
            reason: reason.to_string(),
        };
        let mut it = line.splitn(3, ':');
        let id = it.next().ok_or_else(|| bad("no hierarchy id"))?;
        let ctrls = it.next().ok_or_else(|| bad("no controller list"))?;
        let path = it.next().ok_or_else(|| bad("no path"))?;
        id.parse::<u32>()
            .map_err(|_| bad("hierarchy id is not a number"))?;
        if !path.starts_with('/') {
            return Err(bad("path is not absolute"));
        }
        if id == "0" && ctrls.is_empty() {
            out.v2 = Some(path.to_string());
        } else {
            for c in ctrls.split(',').filter(|c| !c.is_empty()) {
                out.v1.insert(c.to_string(), path.to_string());
            }
        }
    }
    Ok(out)
}

/// Reads this process's cgroup membership.
pub fn self_cgroups() -> Result<ProcCgroups, Error> {
    let path = PathBuf::from("/proc/self/cgroup");
    let text = fs::read_to_string(&path).map_err(|source| Error::Read { path, source })?;
    parse_proc_cgroup(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,release_agent=/x,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
50 31 0:32 / /mnt/my\\040mem rw,relatime - cgroup cgroup rw,memory
";

    #[test]
    fn mountinfo_hybrid() {
        let h = hierarchy_from_mountinfo(HYBRID).unwrap();
        let Hierarchy::Hybrid { v1, v2 } = h else {
            panic!("{h:?}")
        };
        assert_eq!(v2, PathBuf::from("/sys/fs/cgroup/unified"));
        assert_eq!(v1["cpu"], PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(v1["cpuacct"], PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(v1["cpuset"], PathBuf::from("/sys/fs/cgroup/cpuset"));
        assert_eq!(v1["memory"], PathBuf::from("/sys/fs/cgroup/memory"));
        assert_eq!(v1["name=systemd"], PathBuf::from("/sys/fs/cgroup/systemd"));
        assert_eq!(v1.len(), 5);
    }

    #[test]
    fn mountinfo_escapes_and_v2_only() {
        let m = parse_mountinfo(HYBRID).unwrap();
        assert_eq!(m.last().unwrap().mount_point, PathBuf::from("/mnt/my mem"));
        let h = hierarchy_from_mountinfo(
            "29 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n",
        )
        .unwrap();
        assert_eq!(
            h,
            Hierarchy::V2 {
                root: "/sys/fs/cgroup".into()
            }
        );
        assert!(matches!(
            hierarchy_from_mountinfo("1 0 8:1 / / rw - ext4 /dev/sda rw\n"),
            Err(Error::NoCgroupFs)
        ));
        assert!(parse_mountinfo("garbage line\n").is_err());
    }

    #[test]
    fn proc_cgroup() {
        let p = parse_proc_cgroup(
            "9:name=systemd:/\n4:memory:/process_api/abc\n2:cpu,cpuacct:/x\n0::/u\n",
        )
        .unwrap();
        assert_eq!(p.v1["memory"], "/process_api/abc");
        assert_eq!(p.v1["cpu"], "/x");
        assert_eq!(p.v1["cpuacct"], "/x");
        assert_eq!(p.v1["name=systemd"], "/");
        assert_eq!(p.v2.as_deref(), Some("/u"));
        assert!(parse_proc_cgroup("x:memory:/\n").is_err());
        assert!(parse_proc_cgroup("4:memory\n").is_err());
        assert!(parse_proc_cgroup("4:memory:rel\n").is_err());
    }

    #[test]
    fn probe_this_host() {
        // Every Linux test host has some cgroup filesystem.
        probe().unwrap();
        self_cgroups().unwrap();
    }
}
