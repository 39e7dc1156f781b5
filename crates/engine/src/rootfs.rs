//! A container path opened for a copy (`berth cp`, `berth export`, the API's archive
//! endpoints): the container's rootfs (mounted for the copy when the container is not
//! running) or the volume or bind mount that holds the path, as an fd the copy resolves
//! in (crate::cp). The CLI and `berth serve` both open paths here.

use crate::cp::{self, CopyOptions, Owner, Report, Side};
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::record::{ContainerConfig, ContainerLock};
use berth_image::store::Store;
use rustix::fs::{Mode, OFlags};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The container's rootfs, mounted for the copy when the container is not running (and
/// unmounted after, unless it started meanwhile).
pub struct Rootfs<'a> {
    merged: PathBuf,
    unmount: Option<(&'a Store, String)>,
    layout: &'a Layout,
    _lock: Option<ContainerLock>,
}

impl<'a> Rootfs<'a> {
    pub fn open(layout: &'a Layout, store: &'a Store, id: &str) -> Result<Rootfs<'a>> {
        let merged = berth_image::overlay::container_dir(store, id)?.join("merged");
        let st = crate::status::current(layout, id)?;
        if crate::status::is_running(&st) {
            return Ok(Rootfs {
                merged,
                unmount: None,
                layout,
                _lock: None,
            });
        }
        // Holding the container's lock keeps other berth commands from racing the mount.
        let lock = layout.lock(id)?;
        let mounted = berth_image::overlay::is_mount_point(&merged).unwrap_or(false);
        let mut unmount = None;
        if !mounted {
            let cfg = layout.load_config(id)?;
            let recs = store.records()?;
            let rec = recs
                .images
                .get(&cfg.image_manifest)
                .cloned()
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "image {} of container {id} is no longer in the store",
                        cfg.image_id
                    ))
                })?;
            berth_image::overlay::remount_rootfs(store, &rec, id)?;
            unmount = Some((store, id.to_string()));
        }
        Ok(Rootfs {
            merged,
            unmount,
            layout,
            _lock: Some(lock),
        })
    }

    /// Where the rootfs is mounted on the host.
    pub fn merged(&self) -> &Path {
        &self.merged
    }
}

impl Drop for Rootfs<'_> {
    fn drop(&mut self) {
        if let Some((store, id)) = self.unmount.take() {
            let started = crate::status::peek(self.layout, &id)
                .map(|s| crate::status::is_running(&s))
                .unwrap_or(true);
            if !started {
                let _ = berth_image::overlay::unmount_rootfs(store, &id, false);
            }
        }
    }
}

/// A container path as docker takes it: empty is `/`.
pub fn container_path(p: &str) -> PathBuf {
    if p.is_empty() {
        PathBuf::from("/")
    } else {
        PathBuf::from(p)
    }
}

/// A container path that lies in a volume or bind mount: the host directory and the
/// path inside it (with the original `/` or `/.` ending).
struct InMount {
    dir: PathBuf,
    rest: PathBuf,
    read_only: bool,
    /// The mount's target in the container, for messages.
    target: PathBuf,
}

/// The mount (longest target first) that holds container path `p`, judged on the path as
/// written: a symlink in the rootfs that leads into a mount point is resolved in the
/// rootfs, where the mount is not.
fn in_mount(layout: &Layout, cfg: &ContainerConfig, p: &str) -> Result<Option<InMount>> {
    use crate::options::MountSpec;
    let clean = cp::clean_in_root(&container_path(p));
    let mut mounts: Vec<(PathBuf, Option<PathBuf>, bool)> = Vec::new();
    for m in &cfg.options.mounts {
        match m {
            MountSpec::Bind {
                source,
                target,
                read_only,
                ..
            } => mounts.push((
                cp::clean_in_root(Path::new(target)),
                Some(source.into()),
                *read_only,
            )),
            MountSpec::Volume {
                target, read_only, ..
            } => {
                let t = cp::clean_in_root(Path::new(target));
                let name = cfg
                    .volumes
                    .iter()
                    .find(|v| cp::clean_in_root(Path::new(&v.target)) == t)
                    .map(|v| v.name.clone());
                let dir = name.map(|n| crate::volumes::data_path(layout, &n));
                mounts.push((t, dir, *read_only));
            }
            MountSpec::Tmpfs { target, .. } => {
                mounts.push((cp::clean_in_root(Path::new(target)), None, false))
            }
        }
    }
    // The image's anonymous volumes are in the record's volume list only.
    for v in &cfg.volumes {
        let t = cp::clean_in_root(Path::new(&v.target));
        if !mounts.iter().any(|m| m.0 == t) {
            mounts.push((t, Some(crate::volumes::data_path(layout, &v.name)), false));
        }
    }
    mounts.sort_by_key(|m| std::cmp::Reverse(m.0.as_os_str().len()));
    for (target, dir, ro) in mounts {
        let Ok(rest) = clean.strip_prefix(&target) else {
            continue;
        };
        let Some(dir) = dir.filter(|d| d.is_dir()) else {
            return Err(Error::Invalid(format!(
                "cannot copy to or from {}: it is a tmpfs or file mount of the container",
                target.display()
            )));
        };
        let mut r = std::ffi::OsString::from("/");
        r.push(rest.as_os_str());
        if p.ends_with("/.") {
            r.push("/.");
        } else if p.ends_with('/') {
            r.push("/");
        }
        return Ok(Some(InMount {
            dir,
            rest: PathBuf::from(r),
            read_only: ro,
            target,
        }));
    }
    Ok(None)
}

/// Container path `p` opened for a copy: `write` checks that it may be written (a
/// read-only rootfs or mount refuses, as docker).
pub struct ContainerPath<'a> {
    // Declared before the rootfs: the fd is closed before the rootfs is unmounted.
    root: OwnedFd,
    path: PathBuf,
    mount_target: Option<PathBuf>,
    _rootfs: Option<Rootfs<'a>>,
}

impl<'a> ContainerPath<'a> {
    pub fn open(
        layout: &'a Layout,
        store: &'a Store,
        id: &str,
        p: &str,
        write: bool,
    ) -> Result<ContainerPath<'a>> {
        let cfg = layout.load_config(id)?;
        // A path inside one of the container's volumes or bind mounts is copied there
        // (they are not part of the rootfs); anything else in the rootfs, mounted if need be.
        let (rootfs, base, path, mount_target) = match in_mount(layout, &cfg, p)? {
            Some(m) => {
                if write && m.read_only {
                    return Err(Error::Invalid("mounted volume is marked read-only".into()));
                }
                (None, m.dir, m.rest, Some(m.target))
            }
            None => {
                if write && cfg.options.read_only {
                    return Err(Error::Invalid(
                        "container rootfs is marked read-only".into(),
                    ));
                }
                let r = Rootfs::open(layout, store, id)?;
                let merged = r.merged.clone();
                (Some(r), merged, container_path(p), None)
            }
        };
        let root = rustix::fs::open(
            &base,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            Error::io(
                format!("open {} of container {}", base.display(), short(id)),
                e.into(),
            )
        })?;
        Ok(ContainerPath {
            root,
            path,
            mount_target,
            _rootfs: rootfs,
        })
    }

    /// The copy's container side. Messages name paths under a mount with the mount's
    /// target, as the user wrote them.
    pub fn side(&self) -> Side<'_> {
        let s = Side::container(self.root.as_fd(), &self.path);
        match &self.mount_target {
            Some(t) => s.under(t),
            None => s,
        }
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// docker's `export`: the container's root filesystem (its image's layers and what the
/// container changed, without its volumes and bind mounts) as a tar stream.
pub fn export<W: std::io::Write>(layout: &Layout, store: &Store, id: &str, w: W) -> Result<Report> {
    let r = Rootfs::open(layout, store, id)?;
    export_rootfs(&r, id, w)
}

/// [`export`] of a rootfs already open (a server answers its status before streaming).
pub fn export_rootfs<W: std::io::Write>(r: &Rootfs<'_>, id: &str, w: W) -> Result<Report> {
    let root = rustix::fs::open(
        &r.merged,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        Error::io(
            format!("open the rootfs of container {}", short(id)),
            e.into(),
        )
    })?;
    let opts = CopyOptions {
        follow_link: false,
        owner: Owner::Source,
    };
    let src = Side::container(root.as_fd(), Path::new("/."));
    cp::write_tar(src, &opts, w)
}
