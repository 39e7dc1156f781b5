//! Where the engine keeps things under the storage root `R` (default /var/lib/berth):
//!
//! ```text
//! R/engine/containers/<id>/config.json   what the container is (written by create, rename)
//! R/engine/containers/<id>/state.json    what it is doing (written by the monitor)
//! R/engine/containers/<id>/creating.json who is creating it, until config.json exists
//! R/engine/containers/<id>/lock          flock guarding read-modify-write of both files
//! R/engine/containers/<id>/bundle/       the OCI bundle handed to the runtime (config.json)
//! R/engine/containers/<id>/<id>-json.log docker's json-file log (+ .1, .2 ... when rotated)
//! R/engine/containers/<id>/attach        the monitor's unix socket (see proto.rs)
//! R/engine/containers/<id>/monitor.log   the monitor's own errors
//! R/engine/names/<name>                  symlink -> <id>; created atomically, so names are unique
//! R/engine/volumes/<name>/{_data,volume.json}
//! R/engine/events.jsonl                  one JSON event per line, appended with O_APPEND
//! R/engine/run/                          a tmpfs, mounted on first use (engine.md, "Off the disk"):
//! R/engine/run/runtime/<runtime-name>/   the runtime's --root
//! R/engine/run/containers/<id>/          the records of a `--rm` container (as above)
//! R/engine/runtime/<runtime-name>/       the runtime's --root of containers made before that
//! R/containers/<id>/{upper,work,merged}  the rootfs (berth_image::overlay)
//! ```

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout under storage root `root`; creates the engine's directories (0700).
    /// The root, those directories and the shared files must belong to the user running
    /// berth and be writable by nobody else (berth_image::store::check_owned): another
    /// user's tree could redirect root's writes with a planted symlink. A few lstat calls.
    pub fn open(root: impl Into<PathBuf>) -> Result<Layout> {
        use berth_image::store::{check_if_present, private_dir, private_root, Kind};
        let l = Layout { root: root.into() };
        private_root(&l.root)?;
        for d in [
            l.engine_dir(),
            l.containers_dir(),
            l.names_dir(),
            l.volumes_dir(),
        ] {
            private_dir(&d)?;
        }
        for d in ["runtime", "bin"] {
            check_if_present(&l.engine_dir().join(d), Kind::Dir)?;
        }
        for f in [l.events_path(), l.engine_dir().join("volumes.lock")] {
            check_if_present(&f, Kind::File)?;
        }
        Ok(l)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn engine_dir(&self) -> PathBuf {
        self.root.join("engine")
    }
    pub fn containers_dir(&self) -> PathBuf {
        self.engine_dir().join("containers")
    }
    /// The records of `id`: under the tmpfs for a `--rm` container, else on the disk (also
    /// for an id that does not exist yet).
    pub fn container_dir(&self, id: &str) -> PathBuf {
        let r = self.run_containers_dir().join(id);
        if std::fs::symlink_metadata(&r).is_ok() {
            return r;
        }
        self.containers_dir().join(id)
    }
    /// The directory holding `id`'s records (where its trash name goes: same filesystem).
    pub fn containers_dir_of(&self, id: &str) -> PathBuf {
        let d = self.container_dir(id);
        d.parent().map(Path::to_path_buf).unwrap_or(d)
    }
    /// Where containers' records are: the disk's directory, then the tmpfs's.
    pub fn all_containers_dirs(&self) -> [PathBuf; 2] {
        [self.containers_dir(), self.run_containers_dir()]
    }
    /// A tmpfs for what must stay off the disk's write-back path: the runtime's state and
    /// the records of `--rm` containers (a busy disk must not slow `run --rm` down).
    pub fn run_dir(&self) -> PathBuf {
        self.engine_dir().join("run")
    }
    pub fn run_containers_dir(&self) -> PathBuf {
        self.run_dir().join("containers")
    }
    /// [`Layout::run_dir`], a tmpfs mounted there on first use (one statfs after that).
    /// Where no tmpfs can be mounted (no CAP_SYS_ADMIN), a plain directory does.
    pub fn ensure_run_dir(&self) -> Result<PathBuf> {
        let d = self.run_dir();
        if !is_tmpfs(&d) {
            mkdir_private(&d)?;
            // Two first uses at once must not stack two mounts.
            let _l = flock_file(&self.engine_dir().join("run.lock"), true)?;
            if !is_tmpfs(&d) {
                let _ = rustix::mount::mount(
                    "berth-run",
                    &d,
                    "tmpfs",
                    rustix::mount::MountFlags::NOSUID | rustix::mount::MountFlags::NODEV,
                    c"mode=0700",
                );
            }
        }
        mkdir_private(&self.run_containers_dir())?;
        Ok(d)
    }
    pub fn config_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("config.json")
    }
    /// Present while a create is under way (see record::Creating).
    pub fn creating_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("creating.json")
    }
    pub fn state_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("state.json")
    }
    pub fn lock_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("lock")
    }
    pub fn bundle_dir(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("bundle")
    }
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(format!("{id}-json.log"))
    }
    /// The monitor's socket. Its path can exceed sun_path's 108 bytes; bind and connect
    /// through `/proc/self/fd/<dirfd>/attach` (see proto::connect).
    pub fn attach_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("attach")
    }
    pub fn monitor_log_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("monitor.log")
    }
    pub fn names_dir(&self) -> PathBuf {
        self.engine_dir().join("names")
    }
    pub fn volumes_dir(&self) -> PathBuf {
        self.engine_dir().join("volumes")
    }
    /// Compose projects: `projects/<name>/` holds the desired state, the supervisor's
    /// status and its pid file (crates/services).
    pub fn projects_dir(&self) -> PathBuf {
        self.engine_dir().join("projects")
    }
    pub fn events_path(&self) -> PathBuf {
        self.engine_dir().join("events.jsonl")
    }
    /// The runtime's `--root` for runtime binary `runtime` (one state dir per runtime), on
    /// the tmpfs ([`Layout::ensure_run_dir`] first).
    pub fn runtime_root(&self, runtime: &Path) -> PathBuf {
        let name = runtime
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "runtime".into());
        self.run_dir().join("runtime").join(name)
    }
}

fn is_tmpfs(d: &Path) -> bool {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    rustix::fs::statfs(d).is_ok_and(|s| s.f_type == TMPFS_MAGIC)
}

pub fn mkdir_private(d: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(d)
        .map_err(|e| Error::io(d, e))
}

/// Opens (creating, never through a symlink) and flocks `p`: exclusive or shared,
/// blocking. The lock goes with the returned file.
pub fn flock_file(p: &Path, exclusive: bool) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(p)
        .map_err(|e| Error::io(p, e))?;
    let op = if exclusive {
        rustix::fs::FlockOperation::LockExclusive
    } else {
        rustix::fs::FlockOperation::LockShared
    };
    rustix::fs::flock(&f, op).map_err(|e| Error::io(p, e.into()))?;
    Ok(f)
}
