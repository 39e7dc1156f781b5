//! `berth cp`: between a container and the host, done by this process through fds of the
//! container's rootfs (berth_engine::cp): nothing runs in the container and none of its
//! files are executed or loaded (BAD-13, CVE-2019-14271, CVE-2018-15664). `-` as the
//! source extracts a tar stream from stdin into a container directory (entries naming
//! `..` or an absolute path are refused); `-` as the destination writes one to stdout.

use super::resolve;
use crate::Globals;
use anyhow::{anyhow, bail, Context, Result};
use berth_engine::cp::{self, CopyOptions, Owner, Side};
use berth_engine::layout::Layout;
use berth_image::store::Store;
use rustix::fs::{Mode, OFlags};
use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short, long)]
    archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long)]
    follow_link: bool,
    /// Suppress progress output during copy
    #[arg(short, long)]
    quiet: bool,
    /// CONTAINER:SRC_PATH or SRC_PATH
    src: String,
    /// CONTAINER:DEST_PATH or DEST_PATH
    dest: String,
}

/// docker's splitCpArg: `CONTAINER:PATH`, unless the argument is an absolute path or
/// starts with `.` (a local path that happens to hold a colon).
fn split(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.starts_with('.') && !c.is_empty() => (Some(c), p),
        _ => (None, arg),
    }
}

/// The container's rootfs, mounted for the copy when the container is not running (and
/// unmounted after, unless it started meanwhile).
struct Rootfs<'a> {
    merged: PathBuf,
    unmount: Option<(&'a Store, String)>,
    layout: &'a Layout,
    _lock: Option<berth_engine::record::ContainerLock>,
}

impl<'a> Rootfs<'a> {
    fn open(layout: &'a Layout, store: &'a Store, id: &str) -> Result<Rootfs<'a>> {
        let merged = berth_image::overlay::container_dir(store, id)?.join("merged");
        let st = berth_engine::status::current(layout, id)?;
        if berth_engine::status::is_running(&st) {
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
                    anyhow!(
                        "image {} of container {id} is no longer in the store",
                        cfg.image_id
                    )
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
}

impl Drop for Rootfs<'_> {
    fn drop(&mut self) {
        if let Some((store, id)) = self.unmount.take() {
            let started = berth_engine::status::peek(self.layout, &id)
                .map(|s| berth_engine::status::is_running(&s))
                .unwrap_or(true);
            if !started {
                let _ = berth_image::overlay::unmount_rootfs(store, &id, false);
            }
        }
    }
}

fn cpath(p: &str) -> PathBuf {
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
fn in_mount(
    layout: &Layout,
    cfg: &berth_engine::record::ContainerConfig,
    p: &str,
) -> Result<Option<InMount>> {
    use berth_engine::options::MountSpec;
    let clean = cp::clean_in_root(&cpath(p));
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
                let dir = name.map(|n| berth_engine::volumes::data_path(layout, &n));
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
            mounts.push((
                t,
                Some(berth_engine::volumes::data_path(layout, &v.name)),
                false,
            ));
        }
    }
    mounts.sort_by_key(|m| std::cmp::Reverse(m.0.as_os_str().len()));
    for (target, dir, ro) in mounts {
        let Ok(rest) = clean.strip_prefix(&target) else {
            continue;
        };
        let Some(dir) = dir.filter(|d| d.is_dir()) else {
            bail!(
                "cannot copy to or from {}: it is a tmpfs or file mount of the container",
                target.display()
            );
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

pub fn run(g: &Globals, layout: &Layout, a: CpArgs) -> Result<()> {
    let (sc, sp) = split(&a.src);
    let (dc, dp) = split(&a.dest);
    let (container, into) = match (sc, dc) {
        (Some(_), Some(_)) => bail!("copying between containers is not supported"),
        (None, None) => bail!("must specify at least one container source"),
        (Some(c), None) => (c, false),
        (None, Some(c)) => (c, true),
    };
    if !into && dp == "-" && std::io::stdout().is_terminal() {
        bail!("refusing to write a tar stream to a terminal; redirect stdout");
    }
    let id = resolve(layout, container)?;
    let cfg = layout.load_config(&id)?;
    let store = Store::open(&g.root).with_context(|| format!("open store {}", g.root.display()))?;
    let ctr_arg = if into { dp } else { sp };
    // A path inside one of the container's volumes or bind mounts is copied there (they
    // are not part of the rootfs); anything else in the rootfs, mounted if need be.
    let (rootfs, base, ctr_path, mount_target) = match in_mount(layout, &cfg, ctr_arg)? {
        Some(m) => {
            if into && m.read_only {
                bail!("mounted volume is marked read-only");
            }
            (None, m.dir, m.rest, Some(m.target))
        }
        None => {
            if into && cfg.options.read_only {
                bail!("container rootfs is marked read-only");
            }
            let r = Rootfs::open(layout, &store, &id)?;
            let merged = r.merged.clone();
            (Some(r), merged, cpath(ctr_arg), None)
        }
    };
    let root = rustix::fs::open(
        &base,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("open {} of container {}", base.display(), super::short(&id)))?;
    // Messages name paths under a mount with the mount's target, as the user wrote them.
    let side = |p| {
        let s = Side::container(root.as_fd(), p);
        match &mount_target {
            Some(t) => s.under(t),
            None => s,
        }
    };
    let owner = match (a.archive, into) {
        (true, _) => Owner::Source,
        // docker: files copied into a container belong to its root user ...
        (false, true) => Owner::Set(0, 0),
        // ... and copied out, to whoever runs the command.
        (false, false) => Owner::Caller,
    };
    let opts = CopyOptions {
        follow_link: a.follow_link,
        owner,
    };
    let report = if into && sp == "-" {
        let dst = ctr_path;
        cp::extract_tar(std::io::stdin().lock(), side(&dst), &opts)
    } else if !into && dp == "-" {
        let src = ctr_path;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let r = cp::write_tar(side(&src), &opts, &mut out);
        std::io::Write::flush(&mut out).context("write the tar stream")?;
        r
    } else if into {
        let dst = ctr_path;
        cp::copy(Side::host(Path::new(sp)), side(&dst), &opts)
    } else {
        let src = ctr_path;
        cp::copy(side(&src), Side::host(Path::new(dp)), &opts)
    }?;
    drop(root);
    drop(rootfs);
    if !a.quiet && sp != "-" && dp != "-" && std::io::stderr().is_terminal() {
        eprintln!(
            "Successfully copied {} to {}",
            berth_engine::stats::human_size(report.bytes),
            a.dest
        );
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    output: Option<PathBuf>,
    container: String,
}

/// docker's `export`: the container's root filesystem (its image's layers and what the
/// container changed, without its volumes and bind mounts) as a tar stream.
pub fn export(g: &Globals, layout: &Layout, a: ExportArgs) -> Result<()> {
    if a.output.is_none() && std::io::stdout().is_terminal() {
        bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let id = resolve(layout, &a.container)?;
    let store = Store::open(&g.root).with_context(|| format!("open store {}", g.root.display()))?;
    let r = Rootfs::open(layout, &store, &id)?;
    let root = rustix::fs::open(
        &r.merged,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("open the rootfs of container {}", super::short(&id)))?;
    let opts = CopyOptions {
        follow_link: false,
        owner: Owner::Source,
    };
    let src = Side::container(root.as_fd(), Path::new("/."));
    match &a.output {
        Some(p) => {
            // Written beside the target and renamed: a failed export leaves no partial file.
            let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
            let tmp = tempfile::NamedTempFile::new_in(dir.unwrap_or(Path::new(".")))
                .with_context(|| format!("create {}", p.display()))?;
            let mut w = std::io::BufWriter::new(tmp.as_file());
            cp::write_tar(src, &opts, &mut w)?;
            std::io::Write::flush(&mut w).with_context(|| format!("write {}", p.display()))?;
            drop(w);
            use std::os::unix::fs::PermissionsExt;
            // 0644 as docker's file, not the temporary file's 0600.
            std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
                .with_context(|| format!("write {}", p.display()))?;
            tmp.persist(p)
                .with_context(|| format!("write {}", p.display()))?;
        }
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            cp::write_tar(src, &opts, &mut out)?;
            std::io::Write::flush(&mut out).context("write the tar stream")?;
        }
    }
    drop(root);
    drop(r);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn docker_arg_split() {
        assert_eq!(split("c:/etc/x"), (Some("c"), "/etc/x"));
        assert_eq!(split("/abs:x"), (None, "/abs:x"));
        assert_eq!(split("./a:b"), (None, "./a:b"));
        assert_eq!(split("file"), (None, "file"));
        assert_eq!(split("c:"), (Some("c"), ""));
    }
}
