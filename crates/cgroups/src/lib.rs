#![forbid(unsafe_code)]
//! One cgroup manager for cgroup v1, v2 (unified) and hybrid hosts.
//!
//! [`probe`] reads the host layout once; [`new_manager`] resolves a container's
//! `cgroupsPath` against it and returns a [`Manager`] that creates the cgroup in every
//! hierarchy, places processes, applies `linux.resources`, freezes, kills, reports
//! stats and destroys. Unit tests run the same code on a fake cgroupfs tree (a
//! [`Hierarchy`] whose mount points are temporary directories).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

mod apply;
pub mod devices;
pub mod events;
mod fs;
pub mod hierarchy;
pub mod path;
pub mod stats;
pub mod sub;
mod util;

pub use apply::{blkio_weight_to_io_weight, check_unified_key, shares_to_weight, swap_to_v2};
pub use hierarchy::{
    hierarchy_from_mountinfo, parse_mountinfo, parse_proc_cgroup, probe, self_cgroups, CgroupMount,
    Hierarchy, ProcCgroups,
};
pub use path::CgroupPath;
pub use stats::Stats;
pub use sub::{parse_sub_cgroups, sub_cgroup_paths, SubCgroups};
pub use util::parse_cpuset_list;

/// Errors of this crate. Messages name the path/field/value; causes are chained.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("write {value:?} to {path}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
    #[error("create cgroup directory {path}")]
    Mkdir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("remove cgroup directory {path}")]
    Rmdir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("list cgroup directory {path}")]
    ReadDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("signal {sig} to pid {pid}")]
    Signal {
        pid: i32,
        sig: i32,
        #[source]
        source: io::Error,
    },
    #[error("parse {what} {text:?}: {reason}")]
    Parse {
        what: &'static str,
        text: String,
        reason: String,
    },
    #[error("no cgroup filesystem is mounted")]
    NoCgroupFs,
    #[error("invalid cgroup path {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },
    #[error("systemd cgroup path {path:?} requested but systemd is not running (no /run/systemd/system)")]
    SystemdUnavailable { path: String },
    #[error("cgroup {path} is frozen")]
    Frozen { path: PathBuf },
    #[error("cgroup {path} already contains processes")]
    NotEmpty { path: PathBuf },
    #[error("cgroup {path} still has processes {pids:?} after {waited_ms} ms")]
    StillPopulated {
        path: PathBuf,
        pids: Vec<i32>,
        waited_ms: u64,
    },
    #[error("cgroup {path} did not reach state {state} within {waited_ms} ms")]
    StateTimeout {
        path: PathBuf,
        state: &'static str,
        waited_ms: u64,
    },
    #[error("resource {field} is not supported here: {reason}")]
    Unsupported { field: String, reason: String },
    #[error("resource {field} has invalid value {value}: {reason}")]
    Invalid {
        field: String,
        value: String,
        reason: String,
    },
    #[error("invalid --cgroup argument: {arg}")]
    SubCgroupArg { arg: String },
    #[error("invalid --cgroup argument: {arg} (missing <controller>: prefix)")]
    SubCgroupPrefix { arg: String },
    #[error("{path} is not a sub cgroup path")]
    NotSubCgroup { path: String },
    #[error("unknown controller {controller} in SubCgroupPaths")]
    UnknownController { controller: String },
    #[error("bpf device program for {path}")]
    Bpf {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("watch oom events of {path}")]
    Watch {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// How the container's cgroup is named.
///
/// `path` is the OCI `linux.cgroupsPath`: absolute ("/berth-test/x": under each
/// hierarchy's root), relative ("x": under this process's own cgroup in each
/// hierarchy, as runc does), absent (`/berth/<id>`), or with `systemd` set
/// "slice:prefix:name" (→ "/slice.../prefix-name.scope"; absent → `system.slice:berth:<id>`).
/// The systemd form needs /run/systemd/system ([`Error::SystemdUnavailable`] otherwise)
/// and is then managed through cgroupfs at the path systemd would use (no D-Bus
/// transient unit is created).
#[derive(Debug, Clone, Copy)]
pub struct CgroupConfig<'a> {
    pub path: Option<&'a str>,
    pub id: &'a str,
    pub systemd: bool,
}

/// A container's cgroup in every hierarchy of the host.
pub trait Manager: Send + Sync {
    /// mkdir -p in every hierarchy (idempotent). Refuses a cgroup that exists and is
    /// frozen ([`Error::Frozen`]) or holds processes ([`Error::NotEmpty`]).
    fn create(&self) -> Result<(), Error>;
    /// As [`Manager::create`], but a cgroup that already holds processes is used as it
    /// is (runc 1.1 warns and goes on); returns how many processes it holds. A frozen
    /// one is still refused.
    fn create_shared(&self) -> Result<usize, Error>;
    /// Moves `pid` into the cgroup in every hierarchy (cgroup.procs).
    fn add_task(&self, pid: i32) -> Result<(), Error>;
    /// Moves `pid` into the cgroup in the v1 hierarchies only: for a child
    /// made with CLONE_INTO_CGROUP, already in the unified one.
    fn add_task_v1(&self, pid: i32) -> Result<(), Error>;
    /// The unified-hierarchy directory (v2 or the hybrid unified part), e.g. for
    /// CLONE_INTO_CGROUP.
    fn v2_dir(&self) -> Option<PathBuf>;
    /// Applies `linux.resources`. Fields the host cannot honour give
    /// [`Error::Unsupported`] naming the field, bad values [`Error::Invalid`]; both are
    /// detected before anything is written.
    fn apply(&self, res: &oci_spec::runtime::LinuxResources) -> Result<(), Error>;
    /// Every process in the cgroup and its descendants (sorted, deduplicated).
    fn pids(&self) -> Result<Vec<i32>, Error>;
    /// Freezes all processes and waits until the kernel reports the cgroup frozen.
    fn freeze(&self) -> Result<(), Error>;
    /// Thaws and waits until thawed.
    fn thaw(&self) -> Result<(), Error>;
    /// Whether the cgroup is (fully) frozen.
    fn is_frozen(&self) -> Result<bool, Error>;
    /// Sends `sig` to every process: cgroup.kill on v2 for SIGKILL, else signals each
    /// pid under a freeze (so nothing forks past it). A frozen cgroup is thawed after a
    /// SIGKILL so the processes can die.
    fn kill_all(&self, sig: i32) -> Result<(), Error>;
    /// SIGKILLs what is left, waits (bounded) until empty, removes the cgroup and its
    /// sub-cgroups leaf-first in every hierarchy, then removes now-empty parents this
    /// manager created (and the default "/berth" parent). Idempotent.
    fn destroy(&self) -> Result<(), Error>;
    /// runc-shaped statistics (see [`Stats`]).
    fn stats(&self) -> Result<Stats, Error>;
    /// The resolved cgroup path as it appears in /proc/PID/cgroup (the unified path if
    /// there is a unified hierarchy, else the "memory"/first v1 one).
    fn path(&self) -> String;
    /// Absolute directory per hierarchy: v1 controller name → dir, "" → unified dir
    /// (runc's state.json `cgroup_paths` shape).
    fn paths(&self) -> BTreeMap<String, PathBuf>;
    /// A watcher for OOM kills (eventfd on v1, memory.events on v2).
    fn oom_events(&self) -> Result<events::OomWatcher, Error>;
}

/// Creates a manager for `cfg` on hierarchy `h` (which may be a fake tree).
/// A relative path is resolved against /proc/self/cgroup.
pub fn new_manager(cfg: &CgroupConfig, h: &Hierarchy) -> Result<Box<dyn Manager>, Error> {
    new_manager_with(cfg, h, None, Path::new("/run/systemd/system"))
}

/// [`new_manager`] with this process's cgroups (`own`, read from /proc/self/cgroup when
/// `None` and needed) and the systemd marker directory given explicitly: for tests on a
/// fake tree.
pub fn new_manager_with(
    cfg: &CgroupConfig,
    h: &Hierarchy,
    own: Option<&ProcCgroups>,
    systemd_dir: &Path,
) -> Result<Box<dyn Manager>, Error> {
    let p = path::resolve(cfg, systemd_dir)?;
    Ok(Box::new(fs::FsManager::new(&p, h, own)?))
}

/// Every process in the cgroup `cfg` names, as [`Manager::pids`] of [`new_manager`]'s,
/// without a boxed manager: a caller that needs only this (the monitor, which lives as
/// long as its container) does not link the rest of the trait's methods.
pub fn pids_of(cfg: &CgroupConfig, h: &Hierarchy) -> Result<Vec<i32>, Error> {
    let p = path::resolve(cfg, Path::new("/run/systemd/system"))?;
    fs::FsManager::new(&p, h, None)?.pids()
}

/// Reopens a manager from the directories recorded by [`Manager::paths`] (e.g. from a
/// container state file), so later commands act on the same cgroup whatever their own
/// cgroup is.
pub fn load_manager(
    paths: &BTreeMap<String, PathBuf>,
    h: &Hierarchy,
) -> Result<Box<dyn Manager>, Error> {
    Ok(Box::new(fs::FsManager::from_paths(paths, h)?))
}
