//! Paths inside the container's rootfs, resolved once to fds.
//!
//! Resolution is openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), so a
//! symlink (absolute or with `..`) can never lead outside the root. Creating
//! missing directories walks one component at a time from fds, following
//! symlinks inside the root itself, so a swapped component can only ever
//! redirect the walk within the root (CVE-2021-30465, CVE-2024-45310).

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};

/// Symlinks followed while creating one path, as the kernel's own limit.
const MAX_LINKS: u32 = 40;

/// A directory that paths are resolved inside of.
pub struct Root {
    fd: OwnedFd,
}

impl AsFd for Root {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn rel(p: &Path) -> &Path {
    p.strip_prefix("/").unwrap_or(p)
}

impl Root {
    pub fn open(path: impl AsRef<Path>) -> io::Result<Root> {
        let fd = rustix::fs::open(
            path.as_ref(),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root { fd })
    }

    fn openat2(&self, p: &Path, flags: OFlags) -> io::Result<OwnedFd> {
        let p = rel(p);
        let p: &Path = if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        };
        Ok(rustix::fs::openat2(
            &self.fd,
            p,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )?)
    }

    /// An O_PATH fd for `p`, symlinks followed inside the root.
    pub fn resolve(&self, p: impl AsRef<Path>) -> io::Result<OwnedFd> {
        self.openat2(p.as_ref(), OFlags::PATH)
    }

    /// As `resolve`, but a final symlink is returned itself.
    pub fn resolve_nofollow(&self, p: impl AsRef<Path>) -> io::Result<OwnedFd> {
        self.openat2(p.as_ref(), OFlags::PATH | OFlags::NOFOLLOW)
    }

    /// Open `p` with `flags` (symlinks followed inside the root).
    pub fn open_file(&self, p: impl AsRef<Path>, flags: OFlags) -> io::Result<OwnedFd> {
        self.openat2(p.as_ref(), flags)
    }

    /// `mkdir -p` inside the root; returns an O_PATH fd of the directory.
    pub fn mkdir_all(&self, p: impl AsRef<Path>, mode: u32) -> io::Result<OwnedFd> {
        if let Ok(fd) = self.openat2(p.as_ref(), OFlags::PATH | OFlags::DIRECTORY) {
            return Ok(fd);
        }
        let mut todo: Vec<OsString> = components(p.as_ref());
        todo.reverse(); // a stack: the next component is last
                        // The walk so far, as fds: `..` pops one, never past the root.
        let mut stack: Vec<OwnedFd> = Vec::new();
        let mut links = 0;
        while let Some(c) = todo.pop() {
            if c == ".." {
                stack.pop();
                continue;
            }
            let cur: BorrowedFd<'_> = stack.last().map(|f| f.as_fd()).unwrap_or(self.fd.as_fd());
            let next = match rustix::fs::openat2(
                cur,
                c.as_os_str(),
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
            ) {
                Ok(fd) => fd,
                Err(rustix::io::Errno::NOENT) => {
                    match rustix::fs::mkdirat(cur, c.as_os_str(), Mode::from_raw_mode(mode)) {
                        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    todo.push(c);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let st = rustix::fs::fstat(&next)?;
            match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => stack.push(next),
                FileType::Symlink => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(io::Error::from_raw_os_error(libc::ELOOP));
                    }
                    let target = rustix::fs::readlinkat(&next, "", Vec::new())?;
                    let target = Path::new(OsStr::from_bytes(target.as_bytes()));
                    if target.is_absolute() {
                        stack.clear();
                    }
                    let mut t = components(target);
                    t.reverse();
                    todo.extend(t);
                }
                _ => return Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
            }
        }
        match stack.pop() {
            Some(fd) => Ok(fd),
            None => Ok(rustix::io::fcntl_dupfd_cloexec(&self.fd, 0)?),
        }
    }

    /// Create (or open) a regular file at `p` for a bind-mount target. A symlink
    /// at the final component (`/etc/resolv.conf -> ../run/systemd/resolve/...`,
    /// dangling in the image) is followed inside the root, as runc does: its
    /// target is resolved again from the root, so it can only ever land beneath
    /// it. Every open is O_NOFOLLOW, so a link is read, never followed by the
    /// kernel from outside the root.
    pub fn create_file(&self, p: impl AsRef<Path>, mode: u32) -> io::Result<OwnedFd> {
        let mut p = p.as_ref().to_path_buf();
        let mut links = 0;
        loop {
            let name = p
                .file_name()
                .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?
                .to_os_string();
            let dir = p.parent().map(Path::to_path_buf);
            let parent = match &dir {
                Some(d) => self.mkdir_all(d, 0o755)?,
                None => rustix::io::fcntl_dupfd_cloexec(&self.fd, 0)?,
            };
            match rustix::fs::openat(
                &parent,
                &name,
                OFlags::CREATE | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::from_raw_mode(mode),
            ) {
                Ok(fd) => return Ok(fd),
                Err(rustix::io::Errno::LOOP) => {
                    let st = rustix::fs::statat(&parent, &name, AtFlags::SYMLINK_NOFOLLOW)?;
                    if FileType::from_raw_mode(st.st_mode) != FileType::Symlink {
                        return Err(io::Error::from_raw_os_error(libc::ELOOP));
                    }
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(io::Error::from_raw_os_error(libc::ELOOP));
                    }
                    let target = rustix::fs::readlinkat(&parent, &name, Vec::new())?;
                    let target = Path::new(OsStr::from_bytes(target.as_bytes()));
                    // Relative to the link's directory; `..` is taken physically by
                    // the walk in mkdir_all and never climbs above the root.
                    p = if target.is_absolute() {
                        target.to_path_buf()
                    } else {
                        dir.unwrap_or_else(|| Path::new("/").to_path_buf())
                            .join(target)
                    };
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

fn components(p: &Path) -> Vec<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

pub fn is_dir(fd: BorrowedFd<'_>) -> bool {
    rustix::fs::fstat(fd)
        .map(|s| FileType::from_raw_mode(s.st_mode) == FileType::Directory)
        .unwrap_or(false)
}

/// A private procfs instance of the caller's pid namespace, never the
/// container's /proc path (which the container controls).
pub struct Procfs {
    fd: OwnedFd,
}

impl Procfs {
    pub fn new() -> io::Result<Procfs> {
        use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};
        let fs = rustix::mount::fsopen("proc", FsOpenFlags::FSOPEN_CLOEXEC)?;
        rustix::mount::fsconfig_create(&fs)?;
        let fd = rustix::mount::fsmount(
            &fs,
            FsMountFlags::FSMOUNT_CLOEXEC,
            MountAttrFlags::MOUNT_ATTR_NOSUID
                | MountAttrFlags::MOUNT_ATTR_NODEV
                | MountAttrFlags::MOUNT_ATTR_NOEXEC,
        )?;
        let sfs = rustix::fs::fstatfs(&fd)?;
        if sfs.f_type as i64 != 0x9fa0 {
            return Err(io::Error::other("the private procfs is not procfs"));
        }
        Ok(Procfs { fd })
    }

    /// Open a plain file of this procfs (no symlinks, no mount crossings).
    pub fn open(&self, rel: &str, flags: OFlags) -> io::Result<OwnedFd> {
        Ok(rustix::fs::openat2(
            &self.fd,
            rel,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_XDEV,
        )?)
    }

    /// Write a value to a file of this procfs.
    pub fn write(&self, rel: &str, val: &str) -> io::Result<()> {
        let fd = self.open(rel, OFlags::WRONLY)?;
        let n = rustix::io::write(&fd, val.as_bytes())?;
        if n != val.len() {
            return Err(io::Error::other("short write"));
        }
        Ok(())
    }

    /// Follow /proc/<pid>/fd/<n> (a magic link) to reopen an fd we hold.
    pub fn reopen_fd(&self, fd: BorrowedFd<'_>, flags: OFlags) -> io::Result<OwnedFd> {
        use std::os::fd::AsRawFd;
        let pid = rustix::process::getpid().as_raw_nonzero().get();
        Ok(rustix::fs::openat(
            &self.fd,
            format!("{pid}/fd/{}", fd.as_raw_fd()),
            flags | OFlags::CLOEXEC,
            Mode::empty(),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!(
            "berth-inroot-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(p.join("root")).unwrap();
        std::fs::create_dir_all(p.join("outside")).unwrap();
        p
    }

    #[test]
    fn cve_2021_30465_symlinked_targets_stay_inside() {
        let t = tmp();
        let root_dir = t.join("root");
        let outside = t.join("outside");
        std::os::unix::fs::symlink(&outside, root_dir.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../outside", root_dir.join("rel")).unwrap();
        let r = Root::open(&root_dir).unwrap();
        r.mkdir_all("/abs/x", 0o755).unwrap();
        r.mkdir_all("/rel/y", 0o755).unwrap();
        assert!(
            std::fs::read_dir(&outside).unwrap().next().is_none(),
            "wrote outside"
        );
        assert!(root_dir
            .join(outside.strip_prefix("/").unwrap())
            .join("x")
            .is_dir());
        assert!(root_dir.join("outside/y").is_dir());
        let _ = std::fs::remove_dir_all(&t);
    }

    #[test]
    fn dangling_symlink_target_is_created_inside() {
        let t = tmp();
        let root_dir = t.join("root");
        std::os::unix::fs::symlink("/nonexistent/dir", root_dir.join("mnt")).unwrap();
        let r = Root::open(&root_dir).unwrap();
        let fd = r.mkdir_all("/mnt/sub", 0o755).unwrap();
        assert!(is_dir(fd.as_fd()));
        assert!(root_dir.join("nonexistent/dir/sub").is_dir());
        let _ = std::fs::remove_dir_all(&t);
    }

    #[test]
    fn symlink_loop_fails() {
        let t = tmp();
        let root_dir = t.join("root");
        std::os::unix::fs::symlink("b", root_dir.join("a")).unwrap();
        std::os::unix::fs::symlink("a", root_dir.join("b")).unwrap();
        let r = Root::open(&root_dir).unwrap();
        assert!(r.mkdir_all("/a/x", 0o755).is_err());
        let _ = std::fs::remove_dir_all(&t);
    }

    #[test]
    fn create_file_follows_a_final_symlink_inside_the_root_only() {
        let t = tmp();
        let root_dir = t.join("root");
        std::fs::write(t.join("outside/secret"), b"x").unwrap();
        std::os::unix::fs::symlink(t.join("outside/secret"), root_dir.join("f")).unwrap();
        std::os::unix::fs::symlink("../../../../../outside/new", root_dir.join("g")).unwrap();
        let r = Root::open(&root_dir).unwrap();
        r.create_file("/f", 0o644).unwrap();
        r.create_file("/g", 0o644).unwrap();
        // Both links land beneath the root; the host side is untouched.
        assert!(root_dir
            .join(t.join("outside/secret").strip_prefix("/").unwrap())
            .is_file());
        assert!(root_dir.join("outside/new").is_file());
        assert_eq!(std::fs::read(t.join("outside/secret")).unwrap(), b"x");
        assert!(!t.join("outside/new").exists());
        assert!(r.create_file("/d/e/g", 0o644).is_ok());
        assert!(root_dir.join("d/e/g").is_file());
        let _ = std::fs::remove_dir_all(&t);
    }

    #[test]
    fn create_file_follows_a_dangling_relative_link_as_systemd_images_ship() {
        let t = tmp();
        let root_dir = t.join("root");
        std::fs::create_dir_all(root_dir.join("etc")).unwrap();
        std::os::unix::fs::symlink(
            "../run/systemd/resolve/stub-resolv.conf",
            root_dir.join("etc/resolv.conf"),
        )
        .unwrap();
        std::os::unix::fs::symlink("a", root_dir.join("etc/loop")).unwrap();
        std::os::unix::fs::symlink("loop", root_dir.join("etc/a")).unwrap();
        let r = Root::open(&root_dir).unwrap();
        r.create_file("/etc/resolv.conf", 0o644).unwrap();
        assert!(root_dir
            .join("run/systemd/resolve/stub-resolv.conf")
            .is_file());
        assert!(root_dir.join("etc/resolv.conf").is_symlink());
        let e = r.create_file("/etc/loop", 0o644).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
        let _ = std::fs::remove_dir_all(&t);
    }
}
