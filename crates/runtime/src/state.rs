//! The state directory: one directory per container under `--root`, holding
//! `state.json` (updated in place under a flock, or replaced through a temp
//! file when it outgrows a page: readers never see half of one), the exec fifo
//! that parks init until `start`, and a per-container lock (flock on the
//! directory itself).
//!
//! The state is written before any side effect (status `creating`), so that
//! `delete --force` can always find and undo a half-made container.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// runc's default `--root`, ours.
pub const DEFAULT_ROOT: &str = "/run/berth-runtime";
pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";
pub const CONFIG_FILE: &str = "config.json";

/// What the runtime records about a container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct State {
    pub id: String,
    /// Host pid of the container's init, 0 until known.
    pub pid: i32,
    /// Start time of `pid` (field 22 of /proc/PID/stat) so that a recycled
    /// pid is never taken for the container.
    pub pid_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 creation time.
    pub created: String,
    pub owner: String,
    /// Recorded phase: creating, created (the live status is derived).
    pub phase: Phase,
    /// The container's cgroup directory in each hierarchy, so that later
    /// commands find it whatever their own cgroup is.
    pub cgroup_paths: std::collections::BTreeMap<String, PathBuf>,
    pub systemd_cgroup: bool,
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
    /// Whether init runs in the host's pid namespace (then delete must kill
    /// the whole cgroup, since init's death does not take the rest along).
    #[serde(default)]
    pub host_pidns: bool,
    /// Hooks that run after create (poststart, poststop), kept so that
    /// they do not depend on the bundle still being there.
    #[serde(default)]
    pub hooks: Option<berth_oci::Hooks>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Creating,
    Created,
    Started,
}

/// The live status, as runc reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// `--root`: where container directories live.
#[derive(Debug, Clone)]
pub struct Root {
    pub path: PathBuf,
}

/// One container's directory, locked while held.
pub struct ContainerDir {
    pub id: String,
    pub path: PathBuf,
    /// The flock'd directory fd; None for readers, which take a shared
    /// lock on state.json itself while they read it.
    lock: Option<File>,
}

pub fn validate_id(id: &str) -> Result<()> {
    // A leading dot is kept for the runtime's own temporary entries.
    let ok = !id.is_empty()
        && id.len() <= 1024
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId(id.to_string()))
    }
}

impl Root {
    pub fn new(path: PathBuf) -> Self {
        Root { path }
    }

    fn ensure(&self) -> Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.path)
            .map_err(|e| Error::io(format!("create state root {}", self.path.display()), e))
    }

    /// Make the directory of a new container. Exactly one of two racing
    /// creators wins: mkdir is atomic.
    pub fn create(&self, id: &str) -> Result<ContainerDir> {
        validate_id(id)?;
        self.ensure()?;
        let path = self.path.join(id);
        if path.exists() {
            return Err(Error::Exists(id.to_string()));
        }
        Ok(ContainerDir {
            id: id.to_string(),
            path,
            lock: None,
        })
    }

    /// Publish a new container: its directory is made under a temporary
    /// name with `first` as state.json (and `files`), locked, then renamed
    /// into place, so that a reader never sees a directory without state.
    /// Of two racing creators exactly one rename succeeds.
    pub fn publish(
        &self,
        dir: &mut ContainerDir,
        first: &State,
        files: &[(&str, &[u8])],
    ) -> Result<()> {
        let tmp = self.path.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        fs::DirBuilder::new()
            .mode(0o711)
            .create(&tmp)
            .map_err(|e| Error::io(format!("create state dir {}", tmp.display()), e))?;
        let lock = lock_dir(&tmp, true)?;
        let data = serde_json::to_vec(first).expect("state serialises");
        // Nobody sees the directory before the rename: no temp files needed.
        let res = std::iter::once((STATE_FILE, &data[..]))
            .chain(files.iter().copied())
            .try_for_each(|(name, data)| write_new(&tmp, name, data, 0o600))
            .and_then(|()| {
                // renameat2(RENAME_NOREPLACE): fails if the id appeared meanwhile.
                rustix::fs::renameat_with(
                    rustix::fs::CWD,
                    &tmp,
                    rustix::fs::CWD,
                    &dir.path,
                    rustix::fs::RenameFlags::NOREPLACE,
                )
                .map_err(|e| match e {
                    rustix::io::Errno::EXIST | rustix::io::Errno::NOTEMPTY => {
                        Error::Exists(dir.id.clone())
                    }
                    e => Error::io(
                        format!("publish state dir {}", dir.path.display()),
                        e.into(),
                    ),
                })
            });
        if let Err(e) = res {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        dir.lock = Some(lock);
        Ok(())
    }

    /// Open and lock an existing container's directory.
    pub fn open(&self, id: &str) -> Result<ContainerDir> {
        validate_id(id)?;
        let path = self.path.join(id);
        let lock = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotExist(id.to_string()))
            }
            Err(e) => return Err(Error::io(format!("open state dir {}", path.display()), e)),
        };
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| Error::io(format!("lock {}", path.display()), e.into()))?;
        // The directory may have been removed while we waited for the lock.
        if !path.exists() {
            return Err(Error::NotExist(id.to_string()));
        }
        Ok(ContainerDir {
            id: id.to_string(),
            path,
            lock: Some(lock),
        })
    }

    /// Open an existing container's directory without locking it.
    pub fn open_unlocked(&self, id: &str) -> Result<ContainerDir> {
        validate_id(id)?;
        let path = self.path.join(id);
        if !path.is_dir() {
            return Err(Error::NotExist(id.to_string()));
        }
        Ok(ContainerDir {
            id: id.to_string(),
            path,
            lock: None,
        })
    }

    /// Container ids present under the root (directories only).
    pub fn list(&self) -> Result<Vec<String>> {
        let rd = match fs::read_dir(&self.path) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("read {}", self.path.display()), e)),
        };
        let mut ids: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| validate_id(id).is_ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

fn lock_dir(path: &Path, nonblock: bool) -> Result<File> {
    let f = File::open(path).map_err(|e| Error::io(format!("open {}", path.display()), e))?;
    let op = if nonblock {
        rustix::fs::FlockOperation::NonBlockingLockExclusive
    } else {
        rustix::fs::FlockOperation::LockExclusive
    };
    rustix::fs::flock(&f, op)
        .map_err(|e| Error::io(format!("lock {}", path.display()), e.into()))?;
    Ok(f)
}

impl ContainerDir {
    pub fn state_path(&self) -> PathBuf {
        self.path.join(STATE_FILE)
    }

    pub fn fifo_path(&self) -> PathBuf {
        self.path.join(EXEC_FIFO)
    }

    /// Read state.json; a missing or corrupt file is reported as such so
    /// that `delete --force` can still clean up.
    pub fn load(&self) -> Result<State> {
        let p = self.state_path();
        // A shared lock: an update in place (`save`) holds the exclusive one.
        let data = File::open(&p).and_then(|mut f| {
            rustix::fs::flock(&f, rustix::fs::FlockOperation::LockShared)?;
            let mut d = Vec::with_capacity(4096);
            std::io::Read::read_to_end(&mut f, &mut d)?;
            Ok(d)
        });
        let data = match data {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NoState(self.id.clone()))
            }
            Err(e) => return Err(Error::io(format!("read {}", p.display()), e)),
        };
        serde_json::from_slice(&data).map_err(|e| Error::CorruptState { path: p, source: e })
    }

    /// Write state.json. An update that fits in one page is written in
    /// place, padded with spaces to the old length, by one pwrite under an
    /// exclusive flock that readers share: no file is created or unlinked
    /// (each a search of ext4's inode table where /run is on disk; 0.15-0.6
    /// ms per update here), and a page written by one call is never torn by
    /// a signal. A larger one is replaced through a temp file.
    pub fn save(&self, st: &State) -> Result<()> {
        let data = serde_json::to_vec(st).expect("state serialises");
        let p = self.state_path();
        match update_in_place(&p, &data) {
            Ok(true) => Ok(()),
            Ok(false) => write_atomic(&self.path, STATE_FILE, &data, 0o600),
            Err(e) => Err(Error::io(format!("write {}", p.display()), e)),
        }
    }

    /// Remove the directory (after everything else is gone). It is first
    /// renamed out of the way, so that readers see it whole or not at all.
    pub fn remove(self) -> Result<()> {
        let parent = self.path.parent().unwrap_or(Path::new("/"));
        let gone = parent.join(format!(".gone-{}-{}", std::process::id(), self.id));
        let target = match fs::rename(&self.path, &gone) {
            Ok(()) => gone,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(_) => self.path.clone(),
        };
        // The runtime's own files, then the directory: no directory walk
        // unless something else was left there.
        for f in [STATE_FILE, CONFIG_FILE, EXEC_FIFO] {
            let _ = fs::remove_file(target.join(f));
        }
        if fs::remove_dir(&target).is_ok() {
            return Ok(());
        }
        match fs::remove_dir_all(&target) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("remove {}", target.display()), e)),
        }
    }

    /// Drop the lock while a long wait goes on (foreground `run`).
    pub fn unlock(&mut self) {
        self.lock = None;
    }

    /// Take the lock again.
    pub fn relock(&mut self) -> Result<()> {
        if self.lock.is_none() {
            self.lock = Some(lock_dir(&self.path, false)?);
        }
        Ok(())
    }
}

/// Write `dir/name` atomically: a temp file in the same directory, renamed
/// over the target.
pub fn write_atomic(dir: &Path, name: &str, data: &[u8], mode: u32) -> Result<()> {
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let target = dir.join(name);
    let res = (|| -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(data)?;
        // No fsync: the swap alone makes the update atomic for readers, and
        // state lives on /run, which a reboot empties anyway. The new file
        // is exchanged with the old one rather than renamed over it: ext4
        // writes out the data of a file renamed over another (auto_da_alloc),
        // a disk write per update; readers see one whole file either way.
        match rustix::fs::renameat_with(
            rustix::fs::CWD,
            &tmp,
            rustix::fs::CWD,
            &target,
            rustix::fs::RenameFlags::EXCHANGE,
        ) {
            Ok(()) => {
                let _ = fs::remove_file(&tmp);
            }
            // No old file yet, or no exchange on this filesystem.
            Err(_) => fs::rename(&tmp, &target)?,
        }
        Ok(())
    })();
    if let Err(e) = res {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(format!("write {}", target.display()), e));
    }
    Ok(())
}

/// One page: a pwrite of it at offset 0 is copied in one step, so a
/// signal cannot leave half of it written.
const PAGE: usize = 4096;

/// Overwrite `path` with `data` padded by spaces (which JSON ignores) to the
/// file's length, when that fits in one page; false when it does not, or
/// when there is no file yet.
fn update_in_place(path: &Path, data: &[u8]) -> std::io::Result<bool> {
    if data.len() > PAGE {
        return Ok(false);
    }
    let f = match OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)?;
    let old = f.metadata()?.len() as usize;
    if old > PAGE {
        return Ok(false);
    }
    let mut page = [b' '; PAGE];
    page[..data.len()].copy_from_slice(data);
    let n = data.len().max(old);
    std::os::unix::fs::FileExt::write_all_at(&f, &page[..n], 0)?;
    Ok(true)
}

/// Write `dir/name`, which must not exist yet.
fn write_new(dir: &Path, name: &str, data: &[u8], mode: u32) -> Result<()> {
    let path = dir.join(name);
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)
        .and_then(|mut f| f.write_all(data))
        .map_err(|e| Error::io(format!("write {}", path.display()), e))
}

/// Write the pid file atomically. A relative path is relative to the
/// caller's cwd, as with runc.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::io("get cwd".into(), e))?
            .join(path)
    };
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("pid file {} has no file name", path.display())))?
        .to_string_lossy()
        .into_owned();
    write_atomic(dir, &name, pid.to_string().as_bytes(), 0o644)
}

/// Start time of a process in clock ticks since boot (field 22 of stat), or
/// None if it is gone. A zombie counts as gone.
pub fn process_start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    // procfs reports size 0: one read into a buffer that fits the line,
    // not a syscall per doubling from 32 bytes.
    let mut stat = String::with_capacity(1024);
    File::open(format!("/proc/{pid}/stat"))
        .and_then(|mut f| std::io::Read::read_to_string(&mut f, &mut stat))
        .ok()?;
    parse_stat(&stat).and_then(|(state, start)| (state != 'Z' && state != 'X').then_some(start))
}

/// (state char, start time) from a /proc/PID/stat line. The comm field may
/// hold spaces and parentheses, so parse from the last ')'.
pub fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); start time is field 22.
    let state = fields.first()?.chars().next()?;
    let start = fields.get(22 - 3)?.parse().ok()?;
    Some((state, start))
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing() {
        let s =
            "1234 (a) b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 98765 1000 100";
        assert_eq!(parse_stat(s), Some(('S', 98765)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn ids() {
        assert!(validate_id("abc-1_2.3+x").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "x\n"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn atomic_write_and_pidfile_relative() {
        let d = tempfile_dir();
        write_atomic(&d, "f", b"one", 0o600).unwrap();
        write_atomic(&d, "f", b"two", 0o600).unwrap();
        assert_eq!(fs::read(d.join("f")).unwrap(), b"two");
        write_pid_file(&d.join("pid"), 42).unwrap();
        assert_eq!(fs::read_to_string(d.join("pid")).unwrap(), "42");
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn one_of_two_creates_wins() {
        let d = tempfile_dir();
        let root = Root::new(d.join("root"));
        let st = state;
        let mut a = root.create("same").unwrap();
        let mut b = root.create("same").unwrap();
        assert!(root.publish(&mut a, &st("same"), &[]).is_ok());
        assert!(matches!(
            root.publish(&mut b, &st("same"), &[]),
            Err(Error::Exists(_))
        ));
        assert!(matches!(root.create("same"), Err(Error::Exists(_))));
        assert_eq!(a.load().unwrap().id, "same");
        a.remove().unwrap();
        assert!(root.list().unwrap().is_empty());
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn updates_in_place_pad_and_fall_back_past_a_page() {
        let d = tempfile_dir();
        let root = Root::new(d.join("root"));
        let mut st = State {
            annotations: [("a".to_string(), "x".repeat(2000))].into(),
            ..state("c")
        };
        let mut c = root.create("c").unwrap();
        root.publish(&mut c, &st, &[]).unwrap();
        let ino = |c: &ContainerDir| {
            std::os::unix::fs::MetadataExt::ino(&fs::metadata(c.state_path()).unwrap())
        };
        let first = ino(&c);
        let len = |c: &ContainerDir| fs::metadata(c.state_path()).unwrap().len();
        // Shorter: the same file, padded to its old length.
        st.annotations.clear();
        st.pid = 42;
        st.phase = Phase::Started;
        let before = len(&c);
        c.save(&st).unwrap();
        assert_eq!((ino(&c), len(&c)), (first, before));
        assert_eq!(c.load().unwrap(), st);
        // Past a page: replaced through a temp file.
        st.annotations = [("a".to_string(), "y".repeat(5000))].into();
        c.save(&st).unwrap();
        assert_ne!(ino(&c), first);
        assert_eq!(c.load().unwrap(), st);
        // Back under a page from a file over one: replaced again, not padded.
        st.annotations.clear();
        c.save(&st).unwrap();
        assert!(len(&c) < 4096);
        assert_eq!(c.load().unwrap(), st);
        let tmp: Vec<_> = fs::read_dir(&c.path)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(tmp, vec![std::ffi::OsString::from(STATE_FILE)]);
        c.remove().unwrap();
        let _ = fs::remove_dir_all(&d);
    }

    /// A container's state in its first phase.
    fn state(id: &str) -> State {
        State {
            id: id.into(),
            pid: 0,
            pid_start_time: 0,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: now_rfc3339(),
            owner: String::new(),
            phase: Phase::Creating,
            cgroup_paths: Default::default(),
            systemd_cgroup: false,
            annotations: Default::default(),
            host_pidns: false,
            hooks: None,
        }
    }

    fn tempfile_dir() -> PathBuf {
        let p = std::env::temp_dir().join(format!(
            "berth-state-test-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        fs::create_dir_all(&p).unwrap();
        p
    }
}
