//! The container's filesystem, built inside its new mount namespace.
//!
//! Every path inside the rootfs is resolved once, with openat2 (and
//! RESOLVE_IN_ROOT), to an fd; mounts are made with the new mount API and
//! attached to those fds. Nothing is re-resolved by name after the check.

use std::ffi::CStr;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::inroot::Root;
use berth_oci::mounts::{self, Attrs, MountKind, MountSpec};
use berth_oci::{Config, LinuxNamespaceType as NS};
use berth_sys::mount::{mount_setattr, MountAttr, AT_EMPTY_PATH, AT_RECURSIVE};
use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, OpenTreeFlags};

use crate::spawn::InitContext;
use crate::{Error, Result};

const PROC_SUPER_MAGIC: i64 = 0x9fa0;
const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;

fn err(what: impl Into<String>, e: impl Into<std::io::Error>) -> Error {
    Error::io(what.into(), e.into())
}

fn perr(what: impl Into<String>, e: std::io::Error) -> Error {
    Error::io(what.into(), e)
}

fn is_enoent(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOENT)
}

const EMPTY: &CStr = c"";

/// The rootfs, mounted on itself, as a root for in-root resolution.
pub struct Prepared {
    pub root: Root,
    /// /dev is not bound from elsewhere: make the device nodes in it.
    make_devices: bool,
    /// A devpts is mounted on /dev/pts (for the /dev/ptmx link).
    devpts: bool,
    /// Read-only tmpfs mounts and /dev, mounted read-write so that mounts, device nodes and
    /// links can be made in them: [`finalize`] makes them read-only (runc's order).
    late_readonly: Vec<(PathBuf, OwnedFd)>,
}

impl Prepared {
    /// The mounts [`finalize`] makes read-only; they outlive the [`Prepared`].
    pub fn take_late_readonly(&mut self) -> Vec<(PathBuf, OwnedFd)> {
        std::mem::take(&mut self.late_readonly)
    }
}

/// Paths under /proc that may be bind-mounted over (lxcfs and friends), as
/// runc allows; anything else under /proc is refused (CVE-2019-16884).
const PROC_ALLOWED: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

pub fn prepare(cfg: &Config, ctx: &InitContext) -> Result<Prepared> {
    // Nothing we mount may reach the host: make everything a slave (or
    // what rootfsPropagation asks) first. Shared keeps the host's peer
    // groups, as runc's: an rshared bind of a shared host mount is then a
    // peer of it (Kubernetes' Bidirectional).
    // Shared and unbindable are also applied to the new root after
    // pivot_root: a clone of an unbindable rootfs is impossible.
    let (prop, rec) = match cfg.rootfs_propagation {
        p @ (mounts::MS_PRIVATE | mounts::MS_SHARED) => (p, cfg.rootfs_propagation_recursive),
        _ => (mounts::MS_SLAVE, true),
    };
    set_propagation(rustix::fs::CWD, c"/", prop, rec)
        .map_err(|e| err("set propagation of /", e))?;
    if prop == mounts::MS_SHARED || !rec {
        // Shared mounts may remain: the rootfs' bind on itself must not
        // reach the host, and pivot_root refuses a shared parent.
        rootfs_mount_private(&cfg.rootfs).map_err(|e| {
            err(
                format!("make the mount of rootfs {} private", cfg.rootfs.display()),
                e,
            )
        })?;
    }

    // pivot_root needs the rootfs to be a mount point.
    let tree = rustix::mount::open_tree(
        rustix::fs::CWD,
        &cfg.rootfs,
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::AT_RECURSIVE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )
    .map_err(|e| err(format!("clone rootfs {}", cfg.rootfs.display()), e))?;
    rustix::mount::move_mount(
        tree.as_fd(),
        EMPTY,
        rustix::fs::CWD,
        &cfg.rootfs,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| err(format!("bind rootfs {} on itself", cfg.rootfs.display()), e))?;
    // Its parent must not be shared for pivot_root (it is a slave now).
    let root = Root::open(&cfg.rootfs)
        .map_err(|e| perr(format!("open rootfs {}", cfg.rootfs.display()), e))?;

    // /proc and /sys must be real directories (CVE-2019-19921, 2023-27561).
    for top in ["/proc", "/sys"] {
        if cfg.mounts.iter().any(|m| m.destination == Path::new(top)) {
            if let Ok(h) = root.resolve_nofollow(top) {
                if !is_dir(h.as_fd()) {
                    return Err(Error::Invalid(format!(
                        "{top} in the rootfs is not a directory: it must be mounted on ordinary directory"
                    )));
                }
            }
        }
    }

    let mut dev_bound = false;
    let mut devpts = false;
    let mut late_readonly = Vec::new();
    for (i, m) in cfg.mounts.iter().enumerate() {
        if m.destination == Path::new("/dev") && matches!(m.kind, MountKind::Bind { .. }) {
            dev_bound = true;
        }
        if m.destination == Path::new("/dev/pts") && m.fstype == "devpts" {
            devpts = true;
        }
        let pre = ctx.bind_sources.get(i).and_then(Option::as_ref);
        mount_one(cfg, ctx, &root, m, pre, &mut late_readonly).map_err(|e| in_mount(m, e))?;
    }
    Ok(Prepared {
        root,
        make_devices: !dev_bound,
        devpts,
        late_readonly,
    })
}

fn in_mount(m: &MountSpec, e: Error) -> Error {
    match e {
        Error::Io { what, source } => Error::Io {
            what: format!("mount {} on {}: {what}", m.fstype, m.destination.display()),
            source,
        },
        other => other,
    }
}

/// P at [5], with a user namespace: each bind source opened (O_PATH) in
/// init's mount namespace, through its root (still the host's, before
/// pivot_root), by P while host root, so that a source only host root can
/// reach binds, as runc's. Resolved as init would: absolute links stay in
/// that root. A source that does not resolve so (a magic link, the limit of
/// fds reached) is left to init, which opens it as before.
pub fn open_bind_sources(cfg: &Config, pid: i32) -> Result<Vec<(usize, OwnedFd)>> {
    use rustix::fs::{OFlags, ResolveFlags};
    let mut v = Vec::new();
    if !cfg
        .mounts
        .iter()
        .any(|m| matches!(m.kind, MountKind::Bind { .. }))
    {
        return Ok(v);
    }
    let path = format!("/proc/{pid}/root");
    let root = rustix::fs::open(
        path.as_str(),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| err(format!("open {path}"), e))?;
    for (i, m) in cfg.mounts.iter().enumerate() {
        if !matches!(m.kind, MountKind::Bind { .. }) || v.len() == crate::sync::MAX_FDS {
            continue;
        }
        let src = bind_source_path(cfg, m);
        let rel = src.strip_prefix("/").unwrap_or(&src);
        if let Ok(fd) = rustix::fs::openat2(
            &root,
            rel,
            OFlags::PATH | OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
            ResolveFlags::IN_ROOT,
        ) {
            v.push((i, fd));
        }
    }
    Ok(v)
}

fn bind_source_path(cfg: &Config, m: &MountSpec) -> PathBuf {
    let src = m.source.as_ref().expect("bind has a source");
    if src.is_absolute() {
        src.clone()
    } else {
        cfg.bundle.join(src)
    }
}

/// A bind source as a detached clone (of `pre`, its fd opened by P, when
/// given), and whether it is a file (not a directory).
fn open_bind(
    cfg: &Config,
    m: &MountSpec,
    pre: Option<&OwnedFd>,
    recursive: bool,
) -> Result<(OwnedFd, bool)> {
    let src = bind_source_path(cfg, m);
    let mut fl = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
    if recursive {
        fl |= OpenTreeFlags::AT_RECURSIVE;
    }
    let t = match pre {
        Some(fd) => rustix::mount::open_tree(fd.as_fd(), EMPTY, fl | OpenTreeFlags::AT_EMPTY_PATH),
        None => rustix::mount::open_tree(rustix::fs::CWD, &src, fl),
    }
    .map_err(|e| err(format!("open bind source {}", src.display()), e))?;
    let md = rustix::fs::fstat(&t).map_err(|e| err("stat bind source", e))?;
    let is_file =
        rustix::fs::FileType::from_raw_mode(md.st_mode) != rustix::fs::FileType::Directory;
    // Only a real procfs may go on /proc; under /proc only the allow list.
    if m.destination == Path::new("/proc") && !is_procfs(t.as_fd()) {
        return Err(Error::Invalid(format!(
            "{} cannot be mounted on /proc: it is not of type proc",
            src.display()
        )));
    }
    Ok((t, is_file))
}

fn bind_attrs(mnt: &OwnedFd, m: &MountSpec, recursive: bool) -> Result<()> {
    setattr(mnt.as_fd(), m.attrs, false)
        .map_err(|e| err(format!("set attributes {:?}", m.options), e))?;
    if !m.rec_attrs.is_empty() {
        setattr(mnt.as_fd(), m.rec_attrs, recursive)
            .map_err(|e| err(format!("set recursive attributes {:?}", m.options), e))?;
    }
    Ok(())
}

/// The device nodes and /dev links, once init is in its cgroups: mknod is
/// subject to the devices controller, whose rules P writes before [1].
pub fn devices(prep: &Prepared, cfg: &Config) -> Result<()> {
    if prep.make_devices {
        create_devices(cfg, &prep.root, cfg.has(NS::User), prep.devpts)?;
    }
    Ok(())
}

/// The mount holding `rootfs` (itself when it is a mount point) made private, as runc's
/// rootfsParentMountPrivate; found by walking up from an fd, not by matching paths.
fn rootfs_mount_private(rootfs: &Path) -> std::io::Result<()> {
    use rustix::fs::{AtFlags, OFlags, StatxAttributes, StatxFlags};
    let fl = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut dir = rustix::fs::open(rootfs, fl, rustix::fs::Mode::empty())?;
    // A path has fewer components than this; the namespace's root is a mount root.
    for _ in 0..4096 {
        let st = rustix::fs::statx(
            &dir,
            EMPTY,
            AtFlags::EMPTY_PATH | AtFlags::NO_AUTOMOUNT,
            StatxFlags::empty(),
        )?;
        if !st.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT) {
            return Err(std::io::Error::from_raw_os_error(libc::ENOSYS));
        }
        if st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT) {
            return set_propagation(dir.as_fd(), EMPTY, mounts::MS_PRIVATE, false);
        }
        dir = rustix::fs::openat(&dir, "..", fl, rustix::fs::Mode::empty())?;
    }
    Err(std::io::Error::from_raw_os_error(libc::ELOOP))
}

fn set_propagation(dir: BorrowedFd<'_>, path: &CStr, prop: u64, rec: bool) -> std::io::Result<()> {
    let flags =
        if path.is_empty() { AT_EMPTY_PATH } else { 0 } | if rec { AT_RECURSIVE } else { 0 };
    mount_setattr(
        dir,
        path,
        flags,
        &MountAttr {
            propagation: prop,
            ..Default::default()
        },
    )
}

fn setattr(fd: BorrowedFd<'_>, a: Attrs, recursive: bool) -> std::io::Result<()> {
    if a.is_empty() {
        return Ok(());
    }
    let mut clr = a.clr & !a.set;
    if a.clr & mounts::ATTR_ATIME_MASK != 0 {
        clr |= mounts::ATTR_ATIME_MASK;
    }
    let set = a.set;
    let flags = AT_EMPTY_PATH | if recursive { AT_RECURSIVE } else { 0 };
    mount_setattr(
        fd,
        EMPTY,
        flags,
        &MountAttr {
            attr_set: set,
            attr_clr: clr,
            ..Default::default()
        },
    )
}

/// Attach a detached mount `mnt` onto the directory or file `target`.
fn attach(mnt: BorrowedFd<'_>, target: BorrowedFd<'_>) -> std::io::Result<()> {
    rustix::mount::move_mount(
        mnt,
        EMPTY,
        target,
        EMPTY,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )?;
    Ok(())
}

fn is_dir(fd: BorrowedFd<'_>) -> bool {
    rustix::fs::fstat(fd)
        .map(|s| rustix::fs::FileType::from_raw_mode(s.st_mode) == rustix::fs::FileType::Directory)
        .unwrap_or(false)
}

fn is_procfs(fd: BorrowedFd<'_>) -> bool {
    rustix::fs::fstatfs(fd)
        .map(|s| s.f_type == PROC_SUPER_MAGIC)
        .unwrap_or(false)
}

fn mount_one(
    cfg: &Config,
    ctx: &InitContext,
    root: &Root,
    m: &MountSpec,
    pre: Option<&OwnedFd>,
    late_readonly: &mut Vec<(PathBuf, OwnedFd)>,
) -> Result<()> {
    let dest = &m.destination;
    let dest_s = dest.to_string_lossy();
    if m.kind == MountKind::Cgroup {
        return mount_cgroup(ctx, root, m);
    }
    // A read-only tmpfs or /dev is made read-write, and read-only at the end, as runc does:
    // /dev/pts, the device nodes and mounts below it need it writable first.
    let delay_ro = m.kind == MountKind::Fs
        && m.attrs.set & mounts::ATTR_RDONLY != 0
        && (m.fstype == "tmpfs" || dest == Path::new("/dev"));
    let writable;
    let m = if delay_ro {
        let mut w = m.clone();
        w.attrs.set &= !mounts::ATTR_RDONLY;
        writable = w;
        &writable
    } else {
        m
    };
    // What will be mounted, as a detached mount fd.
    let (mnt, source_is_file) = match m.kind {
        MountKind::Bind { recursive } => open_bind(cfg, m, pre, recursive)?,
        MountKind::Fs => {
            if m.fstype == "proc" && dest != Path::new("/proc") && dest.starts_with("/proc") {
                return Err(Error::Invalid(format!(
                    "proc cannot be mounted at {dest_s}: it is inside /proc"
                )));
            }
            if dest == Path::new("/proc") && m.fstype != "proc" {
                return Err(Error::Invalid(format!(
                    "a {} filesystem cannot be mounted on /proc: it is not of type proc",
                    m.fstype
                )));
            }
            (new_fs(m)?, false)
        }
        MountKind::Cgroup => unreachable!(),
    };
    if dest.starts_with("/proc") && dest != Path::new("/proc") {
        let ok = PROC_ALLOWED.iter().any(|p| Path::new(p) == dest) || is_procfs(mnt.as_fd());
        if !ok {
            return Err(Error::Invalid(format!(
                "{dest_s} cannot be mounted because it is inside /proc"
            )));
        }
    }
    let target = mount_target(root, dest, source_is_file)?;
    if let MountKind::Bind { recursive } = m.kind {
        bind_attrs(&mnt, m, recursive)?;
    } else if !m.rec_attrs.is_empty() {
        setattr(mnt.as_fd(), m.rec_attrs, true)
            .map_err(|e| err(format!("set recursive attributes {:?}", m.options), e))?;
    }
    attach(mnt.as_fd(), target.as_fd()).map_err(|e| err("attach", e))?;
    if let Some((p, rec)) = m.propagation {
        // `mnt` still names the mount, now attached: no lookup by path.
        set_propagation(mnt.as_fd(), EMPTY, p, rec).map_err(|e| err("set propagation", e))?;
    }
    if delay_ro {
        late_readonly.push((dest.clone(), mnt));
    }
    Ok(())
}

/// Resolve (creating if needed) a mount target inside the root.
fn mount_target(root: &Root, dest: &Path, file: bool) -> Result<OwnedFd> {
    let ds = dest.display();
    if file {
        match root.resolve(dest) {
            Ok(h) => return Ok(h),
            Err(e) if is_enoent(&e) => {}
            Err(e) => return Err(perr(format!("resolve {ds}"), e)),
        }
        // Never follows a final symlink.
        return root
            .create_file(dest, 0o644)
            .map_err(|e| perr(format!("create mount target {ds}"), e));
    }
    root.mkdir_all(dest, 0o755)
        .map_err(|e| perr(format!("create mount target {ds}"), e))
}

fn new_fs(m: &MountSpec) -> Result<OwnedFd> {
    let fs = rustix::mount::fsopen(m.fstype.as_str(), FsOpenFlags::FSOPEN_CLOEXEC)
        .map_err(|e| err(format!("open filesystem type {}", m.fstype), e))?;
    if let Some(src) = &m.source {
        // Not every filesystem takes a source; those that ignore it say so.
        let _ = rustix::mount::fsconfig_set_string(&fs, "source", src.as_path());
    }
    for flag in &m.sb_flags {
        rustix::mount::fsconfig_set_flag(&fs, *flag)
            .map_err(|e| err(format!("option {flag}"), e))?;
    }
    for (k, v) in &m.data {
        match v {
            Some(v) => rustix::mount::fsconfig_set_string(&fs, k.as_str(), v.as_str())
                .map_err(|e| err(format!("option {k}={v}"), e))?,
            None => rustix::mount::fsconfig_set_flag(&fs, k.as_str())
                .map_err(|e| err(format!("option {k}"), e))?,
        }
    }
    rustix::mount::fsconfig_create(&fs)
        .map_err(|e| err(format!("create {} superblock", m.fstype), e))?;
    // Mount attributes only: a superblock "ro" would reach other mounts of a
    // shared superblock (sysfs or proc of the host's namespaces).
    let attrs = MountAttrFlags::from_bits_retain(m.attrs.set as u32);
    let mnt = rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs)
        .map_err(|e| err(format!("mount {} with {:?}", m.fstype, m.options), e))?;
    Ok(mnt)
}

/// `cgroup` mounts: the container's own cgroup directories, read-only as
/// asked. On v1 (and hybrid) a tmpfs holds one bind per hierarchy, as runc
/// does; on pure v2 the unified directory is bound directly.
fn mount_cgroup(ctx: &InitContext, root: &Root, m: &MountSpec) -> Result<()> {
    let dest = &m.destination;
    let target = mount_target(root, dest, false)?;
    let v1 = ctx.cgroup_paths.keys().any(|k| !k.is_empty());
    let bind = |dir: &Path, to: BorrowedFd<'_>| -> Result<()> {
        let t = rustix::mount::open_tree(
            rustix::fs::CWD,
            dir,
            OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
        )
        .map_err(|e| err(format!("open cgroup {}", dir.display()), e))?;
        let mut a = m.attrs;
        a.set |= mounts::ATTR_NOSUID | mounts::ATTR_NODEV | mounts::ATTR_NOEXEC;
        setattr(t.as_fd(), a, false).map_err(|e| err("set cgroup mount attributes", e))?;
        attach(t.as_fd(), to).map_err(|e| err(format!("attach cgroup {}", dir.display()), e))
    };
    if !v1 {
        let dir = ctx
            .cgroup_paths
            .get("")
            .ok_or_else(|| Error::Invalid("no cgroup directory for the container".into()))?;
        return bind(dir, target.as_fd());
    }
    let tmp = MountSpec {
        destination: dest.clone(),
        fstype: "tmpfs".into(),
        source: Some("cgroup".into()),
        kind: MountKind::Fs,
        attrs: Attrs {
            set: mounts::ATTR_NOSUID | mounts::ATTR_NODEV | mounts::ATTR_NOEXEC,
            clr: 0,
        },
        rec_attrs: Attrs::default(),
        sb_flags: vec![],
        data: vec![("mode".into(), Some("755".into()))],
        propagation: None,
        options: vec![],
        ignored: vec![],
    };
    let t = new_fs(&tmp)?;
    attach(t.as_fd(), target.as_fd()).map_err(|e| err("attach cgroup tmpfs", e))?;
    for (ctrl, dir) in &ctx.cgroup_paths {
        let name = if ctrl.is_empty() {
            "unified".to_string()
        } else {
            ctrl.trim_start_matches("name=").to_string()
        };
        // In the tmpfs just made (nobody else can reach it yet): one
        // component each, no resolution from the root again.
        let sub = dest.join(&name);
        let serr = |e| err(format!("create {}", sub.display()), e);
        match rustix::fs::mkdirat(
            t.as_fd(),
            name.as_str(),
            rustix::fs::Mode::from_raw_mode(0o755),
        ) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(serr(e)),
        }
        let h = rustix::fs::openat(
            t.as_fd(),
            name.as_str(),
            rustix::fs::OFlags::PATH
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::NOFOLLOW
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(serr)?;
        bind(dir, h.as_fd())?;
    }
    if m.readonly() {
        // `t` still names the tmpfs mount, now attached.
        setattr(
            t.as_fd(),
            Attrs {
                set: mounts::ATTR_RDONLY,
                clr: 0,
            },
            false,
        )
        .map_err(|e| err("make cgroup tmpfs read-only", e))?;
    }
    Ok(())
}

struct DefaultDev {
    name: &'static str,
    major: u32,
    minor: u32,
}

const DEFAULT_DEVICES: &[DefaultDev] = &[
    DefaultDev {
        name: "null",
        major: 1,
        minor: 3,
    },
    DefaultDev {
        name: "zero",
        major: 1,
        minor: 5,
    },
    DefaultDev {
        name: "full",
        major: 1,
        minor: 7,
    },
    DefaultDev {
        name: "random",
        major: 1,
        minor: 8,
    },
    DefaultDev {
        name: "urandom",
        major: 1,
        minor: 9,
    },
    DefaultDev {
        name: "tty",
        major: 5,
        minor: 0,
    },
];

/// Device nodes and /dev symlinks, made relative to an fd of the rootfs's
/// /dev that is not a symlink (CVE-2026-41579 class).
fn create_devices(cfg: &Config, root: &Root, in_userns: bool, devpts: bool) -> Result<()> {
    if let Ok(h) = root.resolve_nofollow("/dev") {
        let link = rustix::fs::fstat(&h)
            .map(|s| {
                rustix::fs::FileType::from_raw_mode(s.st_mode) == rustix::fs::FileType::Symlink
            })
            .unwrap_or(false);
        if link {
            return Err(Error::Invalid(
                "/dev in the rootfs is a symlink; refusing to create devices through it".into(),
            ));
        }
    }
    let dev = root
        .mkdir_all("/dev", 0o755)
        .map_err(|e| perr("create /dev", e))?;
    let mut list: Vec<berth_oci::Device> = DEFAULT_DEVICES
        .iter()
        .map(|d| berth_oci::Device {
            path: PathBuf::from("/dev").join(d.name),
            kind: 'c',
            major: d.major as i64,
            minor: d.minor as i64,
            file_mode: 0o666,
            uid: 0,
            gid: 0,
        })
        .collect();
    for d in &cfg.devices {
        list.retain(|x| x.path != d.path);
        list.push(d.clone());
    }
    for d in &list {
        make_device(root, d, in_userns)?;
    }
    let links: &[(&str, &str)] = &[
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ];
    for (name, target) in links {
        symlink_in(dev.as_fd(), name, target)?;
    }
    if Path::new("/proc/kcore").exists() {
        symlink_in(dev.as_fd(), "core", "/proc/kcore")?;
    }
    if devpts {
        match rustix::fs::unlinkat(dev.as_fd(), "ptmx", rustix::fs::AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(err("remove /dev/ptmx", e)),
        }
        symlink_in(dev.as_fd(), "ptmx", "pts/ptmx")?;
    }
    Ok(())
}

fn symlink_in(dir: BorrowedFd<'_>, name: &str, target: &str) -> Result<()> {
    match rustix::fs::symlinkat(target, dir, name) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => Ok(()),
        Err(e) => Err(err(format!("symlink /dev/{name} -> {target}"), e)),
    }
}

fn make_device(root: &Root, d: &berth_oci::Device, in_userns: bool) -> Result<()> {
    let ds = d.path.display();
    let parent = d.path.parent().unwrap_or(Path::new("/dev"));
    let name = d
        .path
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("device path {ds} has no name")))?;
    let pdir = root
        .mkdir_all(parent, 0o755)
        .map_err(|e| perr(format!("create {}", parent.display()), e))?;
    if in_userns {
        // No mknod in a user namespace: bind the host's node instead.
        let host = Path::new("/dev").join(d.path.strip_prefix("/dev").unwrap_or(&d.path));
        let src = rustix::mount::open_tree(
            rustix::fs::CWD,
            &host,
            OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
        )
        .map_err(|e| err(format!("open host device {}", host.display()), e))?;
        let f = match rustix::fs::openat(
            pdir.as_fd(),
            name,
            rustix::fs::OFlags::CREATE
                | rustix::fs::OFlags::NOFOLLOW
                | rustix::fs::OFlags::WRONLY
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::from_raw_mode(0o644),
        ) {
            Ok(f) => f,
            Err(e) => return Err(err(format!("create bind target {ds}"), e)),
        };
        return attach(src.as_fd(), f.as_fd()).map_err(|e| err(format!("bind device {ds}"), e));
    }
    let ft = match d.kind {
        'c' | 'u' => rustix::fs::FileType::CharacterDevice,
        'b' => rustix::fs::FileType::BlockDevice,
        'p' => rustix::fs::FileType::Fifo,
        other => return Err(Error::Invalid(format!("device {ds} has type {other}"))),
    };
    let dev = rustix::fs::makedev(d.major as u32, d.minor as u32);
    match rustix::fs::mknodat(
        pdir.as_fd(),
        name,
        ft,
        rustix::fs::Mode::from_raw_mode(d.file_mode & 0o7777),
        dev,
    ) {
        Ok(()) => {}
        Err(rustix::io::Errno::EXIST) => return Ok(()),
        Err(e) => return Err(err(format!("mknod {ds}"), e)),
    }
    rustix::fs::chownat(
        pdir.as_fd(),
        name,
        Some(rustix::fs::Uid::from_raw(d.uid)),
        Some(rustix::fs::Gid::from_raw(d.gid)),
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| err(format!("chown {ds}"), e))?;
    Ok(())
}

/// pivot_root into the prepared rootfs (or, with --no-pivot, move it onto /
/// and chroot after detaching every mount outside it).
pub fn enter(prep: &Prepared, cfg: &Config, no_pivot: bool) -> Result<()> {
    rustix::process::fchdir(prep.root.as_fd()).map_err(|e| err("chdir to rootfs", e))?;
    if no_pivot {
        return move_root(cfg);
    }
    // Held across pivot_root to reach the old root afterwards: "." from the
    // new root would name the new root, not the old one stacked on it.
    let old_root = rustix::fs::open(
        "/",
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| err("open old root", e))?;
    rustix::process::pivot_root(".", ".").map_err(|e| err("pivot_root", e))?;
    rustix::process::fchdir(&old_root).map_err(|e| err("chdir to old root", e))?;
    drop(old_root);
    // Make the old root a slave so its unmount does not propagate to the
    // host, then detach it.
    set_propagation(rustix::fs::CWD, c".", mounts::MS_SLAVE, true)
        .map_err(|e| err("make old root a slave", e))?;
    rustix::mount::unmount(".", rustix::mount::UnmountFlags::DETACH)
        .map_err(|e| err("detach old root", e))?;
    rustix::process::chdir("/").map_err(|e| err("chdir /", e))?;
    late_propagation(cfg)
}

fn late_propagation(cfg: &Config) -> Result<()> {
    if matches!(
        cfg.rootfs_propagation,
        mounts::MS_SHARED | mounts::MS_UNBINDABLE
    ) {
        set_propagation(
            rustix::fs::CWD,
            c"/",
            cfg.rootfs_propagation,
            cfg.rootfs_propagation_recursive,
        )
        .map_err(|e| err("apply rootfsPropagation to /", e))?;
    }
    Ok(())
}

fn move_root(cfg: &Config) -> Result<()> {
    // Everything a slave first, so that neither the unmounts nor the move
    // reach the host through a shared mount (rootfsPropagation shared):
    // without pivot_root, rshared binds end up slaves of the host's group.
    set_propagation(rustix::fs::CWD, c"/", mounts::MS_SLAVE, true)
        .map_err(|e| err("make / a slave before moving the rootfs", e))?;
    // Detach everything outside the rootfs, deepest first, so that no bare
    // host /proc or /sys stays reachable (runc's no_pivot.bats).
    let info =
        std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| err("read mountinfo", e))?;
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|p| {
            p != Path::new("/") && !p.starts_with(&cfg.rootfs) && !cfg.rootfs.starts_with(p)
        })
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        let _ = rustix::mount::unmount(&p, rustix::mount::UnmountFlags::DETACH);
    }
    rustix::mount::mount_move(".", "/").map_err(|e| err("move rootfs onto /", e))?;
    rustix::process::chroot(".").map_err(|e| err("chroot", e))?;
    rustix::process::chdir("/").map_err(|e| err("chdir /", e))?;
    late_propagation(cfg)
}

fn unescape_mountinfo(s: &str) -> PathBuf {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    PathBuf::from(std::ffi::OsString::from(
        <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&out),
    ))
}

/// After pivot_root: the read-only tmpfs mounts and /dev made read-only, masked and read-only
/// paths, then the read-only root.
pub fn finalize(cfg: &Config, late_readonly: Vec<(PathBuf, OwnedFd)>) -> Result<()> {
    for (dest, mnt) in late_readonly {
        // The fd names the mount where it is attached: no lookup by path.
        setattr(
            mnt.as_fd(),
            Attrs {
                set: mounts::ATTR_RDONLY,
                clr: 0,
            },
            false,
        )
        .map_err(|e| err(format!("make {} read-only", dest.display()), e))?;
    }
    let root = Root::open("/").map_err(|e| perr("open /", e))?;
    if !cfg.masked_paths.is_empty() {
        mask_paths(&root, &cfg.masked_paths)?;
    }
    for p in &cfg.readonly_paths {
        let h = match root.resolve(p) {
            Ok(h) => h,
            Err(e) if is_enoent(&e) => continue,
            Err(e) => return Err(perr(format!("resolve read-only path {p}"), e)),
        };
        let t = rustix::mount::open_tree(
            h.as_fd(),
            EMPTY,
            OpenTreeFlags::OPEN_TREE_CLONE
                | OpenTreeFlags::AT_RECURSIVE
                | OpenTreeFlags::AT_EMPTY_PATH
                | OpenTreeFlags::OPEN_TREE_CLOEXEC,
        )
        .map_err(|e| err(format!("clone read-only path {p}"), e))?;
        setattr(
            t.as_fd(),
            Attrs {
                set: mounts::ATTR_RDONLY
                    | mounts::ATTR_NOSUID
                    | mounts::ATTR_NODEV
                    | mounts::ATTR_NOEXEC,
                clr: 0,
            },
            true,
        )
        .map_err(|e| err(format!("make {p} read-only"), e))?;
        attach(t.as_fd(), h.as_fd()).map_err(|e| err(format!("attach read-only {p}"), e))?;
    }
    if cfg.rootfs_readonly {
        mount_setattr(
            rustix::fs::CWD,
            c"/",
            0,
            &MountAttr {
                attr_set: mounts::ATTR_RDONLY,
                ..Default::default()
            },
        )
        .map_err(|e| err("make the rootfs read-only", e))?;
    }
    Ok(())
}

/// Mask files with the container's /dev/null, verified to be the null
/// device (CVE-2025-31133), and directories with one shared read-only tmpfs.
fn mask_paths(root: &Root, paths: &[String]) -> Result<()> {
    let null = root
        .resolve_nofollow("/dev/null")
        .map_err(|e| perr("open /dev/null for masking", e))?;
    let f: OwnedFd = null;
    let md = rustix::fs::fstat(&f).map_err(|e| err("stat /dev/null", e))?;
    if rustix::fs::FileType::from_raw_mode(md.st_mode) != rustix::fs::FileType::CharacterDevice
        || md.st_rdev != rustix::fs::makedev(1, 3)
    {
        return Err(Error::Invalid(
            "/dev/null in the container is not the null device (char 1:3); refusing to mask with it".into(),
        ));
    }
    let mut tmpfs: Option<OwnedFd> = None;
    for p in paths {
        let h = match root.resolve(p) {
            Ok(h) => h,
            Err(e) if is_enoent(&e) => continue,
            Err(e) => return Err(perr(format!("resolve masked path {p}"), e)),
        };
        let is_dir = rustix::fs::fstat(h.as_fd())
            .map(|s| {
                rustix::fs::FileType::from_raw_mode(s.st_mode) == rustix::fs::FileType::Directory
            })
            .map_err(|e| err(format!("stat masked path {p}"), e))?;
        let src: OwnedFd = if is_dir {
            match &tmpfs {
                // Later directories share the first one's tmpfs: a clone of
                // it where it is attached (a detached mount cannot be
                // cloned on older kernels).
                Some(first) => rustix::mount::open_tree(
                    first.as_fd(),
                    EMPTY,
                    OpenTreeFlags::OPEN_TREE_CLONE
                        | OpenTreeFlags::AT_EMPTY_PATH
                        | OpenTreeFlags::OPEN_TREE_CLOEXEC,
                )
                .map_err(|e| err("clone mask tmpfs", e))?,
                None => {
                    let fs = rustix::mount::fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC)
                        .map_err(|e| err("open tmpfs", e))?;
                    rustix::mount::fsconfig_set_string(&fs, "size", "0")
                        .map_err(|e| err("tmpfs size", e))?;
                    rustix::mount::fsconfig_set_string(&fs, "mode", "0755")
                        .map_err(|e| err("tmpfs mode", e))?;
                    rustix::mount::fsconfig_create(&fs).map_err(|e| err("create tmpfs", e))?;
                    rustix::mount::fsmount(
                        &fs,
                        FsMountFlags::FSMOUNT_CLOEXEC,
                        MountAttrFlags::MOUNT_ATTR_RDONLY
                            | MountAttrFlags::MOUNT_ATTR_NOSUID
                            | MountAttrFlags::MOUNT_ATTR_NODEV
                            | MountAttrFlags::MOUNT_ATTR_NOEXEC,
                    )
                    .map_err(|e| err("mount mask tmpfs", e))?
                }
            }
        } else {
            rustix::mount::open_tree(
                f.as_fd(),
                EMPTY,
                OpenTreeFlags::OPEN_TREE_CLONE
                    | OpenTreeFlags::AT_EMPTY_PATH
                    | OpenTreeFlags::OPEN_TREE_CLOEXEC,
            )
            .map_err(|e| err("clone /dev/null", e))?
        };
        attach(src.as_fd(), h.as_fd()).map_err(|e| err(format!("mask {p}"), e))?;
        if is_dir && tmpfs.is_none() {
            // The fd names the mount, now attached, which can be cloned.
            tmpfs = Some(src);
        }
    }
    Ok(())
}

/// Open the container's pty master from its own devpts, verified.
pub fn open_ptmx() -> Result<OwnedFd> {
    let f: File = rustix::fs::openat2(
        rustix::fs::CWD,
        "/dev/pts/ptmx",
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
        rustix::fs::ResolveFlags::IN_ROOT
            | rustix::fs::ResolveFlags::NO_SYMLINKS
            | rustix::fs::ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| err("open /dev/pts/ptmx", e))?
    .into();
    let sfs = rustix::fs::fstatfs(&f).map_err(|e| err("statfs /dev/pts/ptmx", e))?;
    let md = f.metadata().map_err(|e| err("stat /dev/pts/ptmx", e))?;
    if sfs.f_type as i64 != DEVPTS_SUPER_MAGIC || md.rdev() != rustix::fs::makedev(5, 2) {
        return Err(Error::Invalid("/dev/pts/ptmx is not a devpts ptmx".into()));
    }
    Ok(f.into())
}

/// Bind the pty peer onto /dev/console (created without following links).
pub fn mount_console(peer: BorrowedFd<'_>) -> Result<()> {
    let root = Root::open("/").map_err(|e| perr("open /", e))?;
    let dev = root
        .resolve_nofollow("/dev")
        .map_err(|e| perr("resolve /dev", e))?;
    let f = rustix::fs::openat(
        dev.as_fd(),
        "console",
        rustix::fs::OFlags::CREATE
            | rustix::fs::OFlags::NOFOLLOW
            | rustix::fs::OFlags::RDONLY
            | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .map_err(|e| err("create /dev/console (a symlink there is refused)", e))?;
    let t = rustix::mount::open_tree(
        peer,
        EMPTY,
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::AT_EMPTY_PATH
            | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )
    .map_err(|e| err("clone pty peer", e))?;
    attach(t.as_fd(), f.as_fd()).map_err(|e| err("bind pty on /dev/console", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/a\\040b"), PathBuf::from("/a b"));
        assert_eq!(unescape_mountinfo("/plain"), PathBuf::from("/plain"));
    }
}
