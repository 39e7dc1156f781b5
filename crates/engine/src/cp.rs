//! `berth cp`: copying between a container's rootfs and the host, race-free (BAD-13).
//!
//! The engine process does the copy itself: nothing runs in the container and none of its
//! libraries are loaded (CVE-2019-14271). Container paths are resolved with openat2
//! `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS` against an fd of the rootfs, so an absolute
//! or `..` symlink can only ever lead to somewhere inside the root; from there on the copy
//! works relative to the directory fds it already holds, opening each entry with
//! `O_NOFOLLOW`, so a component swapped for a symlink mid-copy (CVE-2018-15664) makes the
//! copy fail instead of reaching the host.
//!
//! docker's rules (`docker cp --help`): a file onto a missing path creates it, onto a
//! file overwrites it, into a directory copies under its own name; a directory onto a
//! missing path creates it with the contents, into a directory copies under its own name,
//! or only its contents when the source ends in `/.`; a directory onto a file is an error.

use crate::error::{Error, Result};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat, Timespec, Timestamps};
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Symlinks followed while resolving one destination, as the kernel's own limit.
const MAX_LINKS: u32 = 40;

/// Who owns what the copy creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Whoever creates it (the caller): docker's rule for files copied to the host.
    Caller,
    /// The source's uid/gid (`-a`).
    Source,
    /// Fixed ids: docker's rule for files copied into a container (root).
    Set(u32, u32),
}

#[derive(Debug, Clone, Copy)]
pub struct CopyOptions {
    /// `-L`: follow a symlink named as the source (symlinks inside a copied directory are
    /// always copied as links).
    pub follow_link: bool,
    pub owner: Owner,
}

/// One side of a copy.
#[derive(Clone, Copy)]
pub struct Side<'a> {
    /// The directory paths are resolved in: the container's rootfs (with `in_root`), or
    /// the current directory for a host path.
    pub dir: BorrowedFd<'a>,
    pub path: &'a Path,
    /// Resolve inside `dir` as if it were `/` (a container side).
    pub in_root: bool,
    /// Where `dir` is mounted in the container (a volume or bind mount's target), so that
    /// messages name the path as the user wrote it.
    pub shown_under: Option<&'a Path>,
}

impl<'a> Side<'a> {
    /// A container path (relative ones are relative to the container's `/`, as docker).
    pub fn container(rootfs: BorrowedFd<'a>, path: &'a Path) -> Side<'a> {
        Side {
            dir: rootfs,
            path,
            in_root: true,
            shown_under: None,
        }
    }
    /// A container path inside a mount whose target in the container is `target`;
    /// `self.dir` is the mount's source.
    pub fn under(mut self, target: &'a Path) -> Side<'a> {
        self.shown_under = Some(target);
        self
    }
    /// `p` (a path on this side) as the user sees it.
    fn show(&self, p: &Path) -> PathBuf {
        match self.shown_under {
            Some(m) => match p.strip_prefix("/").unwrap_or(p) {
                r if r.as_os_str().is_empty() => m.to_path_buf(),
                r => m.join(r),
            },
            None => p.to_path_buf(),
        }
    }
    /// A host path, resolved as any other host path.
    pub fn host(path: &'a Path) -> Side<'a> {
        Side {
            dir: rustix::fs::CWD,
            path,
            in_root: false,
            shown_under: None,
        }
    }
}

/// What was copied.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Bytes of regular-file data.
    pub bytes: u64,
    /// Entries created or replaced.
    pub entries: u64,
}

fn io(p: &Path, e: impl Into<std::io::Error>) -> Error {
    Error::io(p, e.into())
}

fn invalid(msg: String) -> Error {
    Error::Invalid(msg)
}

fn file_type(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode as _)
}

/// How a path names its final component.
struct Parsed {
    /// The path without a trailing `/` or `/.`.
    path: PathBuf,
    /// Ended in `/` (or `/.`): must be a directory.
    trailing_slash: bool,
    /// Ended in `/.`: a source directory's contents, not the directory itself.
    contents: bool,
}

fn parse(p: &Path, in_root: bool) -> Result<Parsed> {
    let b = p.as_os_str().as_bytes();
    if b.is_empty() {
        return Err(invalid("empty path".into()));
    }
    if b.contains(&0) {
        return Err(invalid(format!("path {:?} contains a NUL byte", p)));
    }
    let contents = b == b"." || b.ends_with(b"/.");
    let trailing_slash = contents || b.ends_with(b"/");
    let path = if in_root {
        clean_in_root(p)
    } else {
        // Host paths keep their `..` and symlink semantics; only the tail is normalised.
        let mut s = b;
        while s.len() > 1 && (s.ends_with(b"/.") || s.ends_with(b"/")) {
            s = if s.ends_with(b"/.") {
                &s[..s.len() - 2]
            } else {
                &s[..s.len() - 1]
            };
        }
        if s.is_empty() {
            s = b"/";
        }
        PathBuf::from(OsStr::from_bytes(s))
    };
    Ok(Parsed {
        path,
        trailing_slash,
        contents,
    })
}

/// Lexically cleaned absolute path inside a root: `..` never climbs above `/` (the same
/// meaning RESOLVE_IN_ROOT gives it).
pub fn clean_in_root(p: &Path) -> PathBuf {
    let mut out: Vec<&OsStr> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    let mut r = PathBuf::from("/");
    for c in out {
        r.push(c);
    }
    r
}

fn resolve_flags(in_root: bool) -> ResolveFlags {
    if in_root {
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
    } else {
        ResolveFlags::NO_MAGICLINKS
    }
}

/// openat2 of `p` in the side's directory.
fn open_in(side: &Side<'_>, p: &Path, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    let p: &Path = if side.in_root {
        let r = p.strip_prefix("/").unwrap_or(p);
        if r.as_os_str().is_empty() {
            Path::new(".")
        } else {
            r
        }
    } else {
        p
    };
    rustix::fs::openat2(
        side.dir,
        p,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        resolve_flags(side.in_root),
    )
}

/// One end of the copy, resolved: a verified directory fd and the final name in it.
struct Dest {
    dir: OwnedFd,
    name: OsString,
    /// What is there now (symlinks at the final name already followed).
    existing: Option<Stat>,
    shown: PathBuf,
    /// The path resolved to, inside the side (symlinks at the final name followed).
    resolved: PathBuf,
}

/// Resolves `parsed` to its parent directory's fd and final name; a symlink at the final
/// name is followed (re-resolved from the parent, inside the root) when `follow`.
fn resolve(side: &Side<'_>, parsed: &Parsed, follow: bool, source: bool) -> Result<Dest> {
    let shown = side.show(side.path);
    let mut p = parsed.path.clone();
    let mut links = 0;
    loop {
        let (parent, name) = match p.file_name() {
            Some(n) if n != ".." => (
                p.parent()
                    .filter(|x| !x.as_os_str().is_empty())
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| PathBuf::from(".")),
                n.to_os_string(),
            ),
            // `/`, `..`, `.`: the directory itself.
            _ => {
                let fd = open_in(side, &p, OFlags::PATH | OFlags::DIRECTORY)
                    .map_err(|e| io(&shown, e))?;
                let st = rustix::fs::fstat(&fd).map_err(|e| io(&shown, e))?;
                return Ok(Dest {
                    dir: fd,
                    name: ".".into(),
                    existing: Some(st),
                    shown,
                    resolved: p,
                });
            }
        };
        let dir =
            open_in(side, &parent, OFlags::PATH | OFlags::DIRECTORY).map_err(|e| match e {
                rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR if source => not_found(side),
                rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR => invalid(format!(
                    "destination directory {} does not exist",
                    side.show(&parent).display()
                )),
                e => io(&side.show(&parent), e),
            })?;
        match rustix::fs::statat(&dir, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Err(rustix::io::Errno::NOENT) => {
                if source {
                    return Err(not_found(side));
                }
                if parsed.trailing_slash {
                    return Err(invalid(format!(
                        "destination directory {} does not exist",
                        shown.display()
                    )));
                }
                return Ok(Dest {
                    dir,
                    name,
                    existing: None,
                    shown,
                    resolved: p,
                });
            }
            Err(e) => return Err(io(&shown, e)),
            Ok(st) if follow && file_type(&st) == FileType::Symlink => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(io(&shown, rustix::io::Errno::LOOP));
                }
                let t = rustix::fs::readlinkat(&dir, name.as_os_str(), Vec::new())
                    .map_err(|e| io(&shown, e))?;
                let t = PathBuf::from(OsStr::from_bytes(t.as_bytes()));
                let next = if t.is_absolute() { t } else { parent.join(t) };
                // Inside a root the target is re-resolved from the root's `/`.
                p = if side.in_root {
                    clean_in_root(&next)
                } else {
                    next
                };
            }
            Ok(st) => {
                if parsed.trailing_slash && file_type(&st) != FileType::Directory {
                    return Err(invalid(format!("{} is not a directory", shown.display())));
                }
                return Ok(Dest {
                    dir,
                    name,
                    existing: Some(st),
                    shown,
                    resolved: p,
                });
            }
        }
    }
}

fn copy_name(parsed: &Parsed, source: &Dest) -> OsString {
    match parsed.path.file_name() {
        Some(n) if n != ".." => n.to_os_string(),
        _ => source.name.clone(),
    }
}

fn not_found(side: &Side<'_>) -> Error {
    invalid(format!(
        "could not find the file {}{}",
        side.show(side.path).display(),
        if side.in_root {
            " in the container"
        } else {
            ""
        }
    ))
}

/// Lets a caller place some regular files itself instead of the copy (the build links
/// files identical to an earlier layer's instead of creating new inodes).
pub trait Place {
    /// Called before `name` in `dir` is made from the regular file `src` (stat'ed as
    /// `st`, to be owned by `ids`): true when the caller took it over and the copy
    /// skips it.
    fn file(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        src: BorrowedFd<'_>,
        st: &Stat,
        ids: Option<(u32, u32)>,
    ) -> std::io::Result<bool>;
    /// Called before anything else (a directory when `is_dir`) is placed at `name`.
    fn other(&mut self, dir: BorrowedFd<'_>, name: &OsStr, is_dir: bool) -> std::io::Result<()>;
}

/// Copies `src` to `dst` with docker's rules. One side is normally a container.
pub fn copy(src: Side<'_>, dst: Side<'_>, opts: &CopyOptions) -> Result<Report> {
    copy_placing(src, dst, opts, None)
}

/// [`copy`], asking `place` before each entry is placed.
pub fn copy_placing(
    src: Side<'_>,
    dst: Side<'_>,
    opts: &CopyOptions,
    place: Option<&mut dyn Place>,
) -> Result<Report> {
    let mut sp = parse(src.path, src.in_root)?;
    let dp = parse(dst.path, dst.in_root)?;
    // A trailing slash follows a symlink, as the kernel does.
    let follow = opts.follow_link || sp.trailing_slash;
    let source = resolve(&src, &sp, follow, true)?;
    let sst = source.existing.expect("a resolved source exists");
    let src_is_dir = file_type(&sst) == FileType::Directory;
    if sp.trailing_slash && !src_is_dir {
        return Err(invalid(format!(
            "{} is not a directory",
            src.show(src.path).display()
        )));
    }
    // `/`, `.` and `..` have no name of their own to copy under.
    if source.name == "." || source.name == ".." {
        sp.contents = true;
    }
    // A followed link is copied under the link's own name, as docker's -L.
    let as_name = copy_name(&sp, &source);
    let dest = resolve(&dst, &dp, true, false)?;
    let mut c = Copier {
        opts: *opts,
        report: Report::default(),
        shown: dest.shown.clone(),
        linked: Default::default(),
        place,
    };
    match &dest.existing {
        Some(st) if src_is_dir && file_type(st) != FileType::Directory => {
            return Err(invalid(format!(
                "cannot copy a directory to a file: {}",
                dest.shown.display()
            )));
        }
        Some(st) if file_type(st) == FileType::Directory => {
            let into = reopen_dir(dest.dir.as_fd(), &dest.name).map_err(|e| c.err(e))?;
            if src_is_dir && sp.contents {
                // Only the contents; the existing directory keeps its own attributes.
                let from = reopen_dir(source.dir.as_fd(), &source.name).map_err(|e| c.err(e))?;
                c.copy_entries(from.as_fd(), into.as_fd())?;
            } else {
                c.copy_entry(source.dir.as_fd(), &source.name, into.as_fd(), &as_name)?;
            }
        }
        _ => c.copy_entry(
            source.dir.as_fd(),
            &source.name,
            dest.dir.as_fd(),
            &dest.name,
        )?,
    }
    Ok(c.report)
}

/// An O_RDONLY directory fd of `name` in `dir` (never following a symlink).
fn reopen_dir(dir: BorrowedFd<'_>, name: &OsStr) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// An O_PATH source entry, reopened for reading; the inode must be the one we stat'ed.
fn reopen_source_file(dir: BorrowedFd<'_>, name: &OsStr, st: &Stat) -> rustix::io::Result<OwnedFd> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )?;
    let now = rustix::fs::fstat(&fd)?;
    if now.st_ino != st.st_ino
        || now.st_dev != st.st_dev
        || file_type(&now) != FileType::RegularFile
    {
        // Swapped under us.
        return Err(rustix::io::Errno::AGAIN);
    }
    Ok(fd)
}

/// Files with several links seen so far (bounded: past that they are copied apart).
const MAX_LINKED: usize = 256;

struct Copier<'p> {
    opts: CopyOptions,
    report: Report,
    shown: PathBuf,
    /// (dev, ino) of a multiply-linked source file -> where its first copy went, so the
    /// other names become hard links again, as docker's tar-based copy keeps them.
    linked: std::collections::HashMap<(u64, u64), (OwnedFd, OsString)>,
    place: Option<&'p mut dyn Place>,
}

fn times(st: &Stat) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: st.st_atime as _,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: Timespec {
            tv_sec: st.st_mtime as _,
            tv_nsec: st.st_mtime_nsec as _,
        },
    }
}

impl Copier<'_> {
    fn err(&self, e: impl Into<std::io::Error>) -> Error {
        io(&self.shown, e)
    }

    fn ids(&self, st: &Stat) -> Option<(u32, u32)> {
        match self.opts.owner {
            Owner::Caller => None,
            Owner::Source => Some((st.st_uid, st.st_gid)),
            Owner::Set(u, g) => Some((u, g)),
        }
    }

    fn copy_entries(&mut self, from: BorrowedFd<'_>, into: BorrowedFd<'_>) -> Result<()> {
        let dup = rustix::fs::openat(
            from,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.err(e))?;
        let entries = rustix::fs::Dir::new(dup).map_err(|e| self.err(e))?;
        let mut names = Vec::new();
        for e in entries {
            let e = e.map_err(|e| self.err(e))?;
            let n = e.file_name().to_bytes();
            if n == b"." || n == b".." {
                continue;
            }
            names.push(OsStr::from_bytes(n).to_os_string());
        }
        names.sort();
        for n in names {
            self.copy_entry(from, &n, into, &n)?;
        }
        Ok(())
    }

    /// Copies entry `name` of directory `from` to `to` in `into`, never following a
    /// symlink at `name`.
    fn copy_entry(
        &mut self,
        from: BorrowedFd<'_>,
        name: &OsStr,
        into: BorrowedFd<'_>,
        to: &OsStr,
    ) -> Result<()> {
        let st = match rustix::fs::statat(from, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            // Gone meanwhile: nothing to copy.
            Err(rustix::io::Errno::NOENT) => return Ok(()),
            Err(e) => return Err(self.err(e)),
        };
        let ft = file_type(&st);
        if let Some(p) = self.place.as_mut() {
            if ft != FileType::RegularFile && ft != FileType::Socket {
                p.other(into, to, ft == FileType::Directory)
                    .map_err(|e| io(&self.shown, e))?;
            }
        }
        match ft {
            FileType::Directory => {
                let d = reopen_dir(from, name).map_err(|e| self.err(e))?;
                self.place_dir(d.as_fd(), &st, into, to)
            }
            FileType::RegularFile => {
                let key = (st.st_dev as u64, st.st_ino as u64);
                if st.st_nlink as u64 > 1 {
                    if let Some((d, n)) = self.linked.get(&key) {
                        if let Some(p) = self.place.as_mut() {
                            p.other(into, to, false).map_err(|e| io(&self.shown, e))?;
                        }
                        self.clear(into, to, false)?;
                        // Flags 0: a link at the first copy's name is never followed.
                        rustix::fs::linkat(d, n.as_os_str(), into, to, AtFlags::empty())
                            .map_err(|e| self.err(e))?;
                        self.report.entries += 1;
                        return Ok(());
                    }
                }
                let f = reopen_source_file(from, name, &st).map_err(|e| self.err(e))?;
                let ids = self.ids(&st);
                if let Some(p) = self.place.as_mut() {
                    // Taken over: not in `linked`, so another name of the same source
                    // is offered too (and linked to the same inode by the caller).
                    if p.file(into, to, f.as_fd(), &st, ids)
                        .map_err(|e| io(&self.shown, e))?
                    {
                        self.report.bytes += st.st_size as u64;
                        self.report.entries += 1;
                        return Ok(());
                    }
                }
                self.place_file(f, &st, into, to)?;
                if st.st_nlink as u64 > 1 && self.linked.len() < MAX_LINKED {
                    let d = rustix::io::fcntl_dupfd_cloexec(into, 0).map_err(|e| self.err(e))?;
                    self.linked.insert(key, (d, to.to_os_string()));
                }
                Ok(())
            }
            FileType::Symlink => {
                let t = rustix::fs::readlinkat(from, name, Vec::new()).map_err(|e| self.err(e))?;
                self.place_symlink(OsStr::from_bytes(t.as_bytes()), &st, into, to)
            }
            FileType::Socket => Ok(()),
            _ => self.place_special(&st, into, to),
        }
    }

    /// Removes a non-directory at `name` so something new can take its place.
    fn clear(&self, dir: BorrowedFd<'_>, name: &OsStr, new_is_dir: bool) -> Result<bool> {
        match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(rustix::io::Errno::NOENT) => Ok(false),
            Err(e) => Err(self.err(e)),
            Ok(st) if file_type(&st) == FileType::Directory => {
                if new_is_dir {
                    Ok(true)
                } else {
                    Err(invalid(format!(
                        "cannot overwrite directory {:?} with non-directory",
                        name
                    )))
                }
            }
            Ok(_) => {
                if new_is_dir {
                    return Err(invalid(format!(
                        "cannot overwrite non-directory {:?} with directory",
                        name
                    )));
                }
                rustix::fs::unlinkat(dir, name, AtFlags::empty()).map_err(|e| self.err(e))?;
                Ok(false)
            }
        }
    }

    fn place_dir(
        &mut self,
        from: BorrowedFd<'_>,
        st: &Stat,
        dir: BorrowedFd<'_>,
        name: &OsStr,
    ) -> Result<()> {
        let exists = self.clear(dir, name, true)?;
        if !exists {
            rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700)).map_err(|e| self.err(e))?;
        }
        let into = reopen_dir(dir, name).map_err(|e| self.err(e))?;
        self.report.entries += 1;
        self.copy_entries(from, into.as_fd())?;
        if let Some((u, g)) = self.ids(st) {
            rustix::fs::fchown(
                &into,
                Some(rustix::fs::Uid::from_raw(u)),
                Some(rustix::fs::Gid::from_raw(g)),
            )
            .map_err(|e| self.err(e))?;
        }
        rustix::fs::fchmod(&into, Mode::from_raw_mode(st.st_mode & 0o7777))
            .map_err(|e| self.err(e))?;
        rustix::fs::futimens(&into, &times(st)).map_err(|e| self.err(e))
    }

    fn place_file(
        &mut self,
        src: OwnedFd,
        st: &Stat,
        dir: BorrowedFd<'_>,
        name: &OsStr,
    ) -> Result<()> {
        self.clear(dir, name, false)?;
        let out = rustix::fs::openat(
            dir,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| self.err(e))?;
        // The source was opened O_NONBLOCK (a swapped-in FIFO must not hang us); a regular
        // file ignores it.
        let mut r = std::fs::File::from(src);
        let mut w = std::fs::File::from(out);
        let n = std::io::copy(&mut r, &mut w).map_err(|e| self.err(e))?;
        self.report.bytes += n;
        self.report.entries += 1;
        // chown before chmod: chown clears set-id bits.
        if let Some((u, g)) = self.ids(st) {
            rustix::fs::fchown(
                &w,
                Some(rustix::fs::Uid::from_raw(u)),
                Some(rustix::fs::Gid::from_raw(g)),
            )
            .map_err(|e| self.err(e))?;
        }
        rustix::fs::fchmod(&w, Mode::from_raw_mode(st.st_mode & 0o7777))
            .map_err(|e| self.err(e))?;
        rustix::fs::futimens(&w, &times(st)).map_err(|e| self.err(e))
    }

    fn place_symlink(
        &mut self,
        target: &OsStr,
        st: &Stat,
        dir: BorrowedFd<'_>,
        name: &OsStr,
    ) -> Result<()> {
        self.clear(dir, name, false)?;
        rustix::fs::symlinkat(target, dir, name).map_err(|e| self.err(e))?;
        self.report.entries += 1;
        self.finish_at(st, dir, name, false)
    }

    fn place_special(&mut self, st: &Stat, dir: BorrowedFd<'_>, name: &OsStr) -> Result<()> {
        self.clear(dir, name, false)?;
        rustix::fs::mknodat(
            dir,
            name,
            file_type(st),
            Mode::from_raw_mode(0o600),
            st.st_rdev as _,
        )
        .map_err(|e| self.err(e))?;
        self.report.entries += 1;
        self.finish_at(st, dir, name, true)
    }

    /// Owner, mode and times of a just-made link or node (by name, never followed).
    fn finish_at(&self, st: &Stat, dir: BorrowedFd<'_>, name: &OsStr, chmod: bool) -> Result<()> {
        if let Some((u, g)) = self.ids(st) {
            rustix::fs::chownat(
                dir,
                name,
                Some(rustix::fs::Uid::from_raw(u)),
                Some(rustix::fs::Gid::from_raw(g)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| self.err(e))?;
        }
        if chmod {
            // chmod follows symlinks, so never chmod by name: hold the node (O_PATH,
            // not following), check it is not a symlink, and chmod that very inode
            // through its /proc/self/fd link (fchmod refuses O_PATH fds).
            let fd = rustix::fs::openat(
                dir,
                name,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| self.err(e))?;
            let now = rustix::fs::fstat(&fd).map_err(|e| self.err(e))?;
            if file_type(&now) == FileType::Symlink {
                return Err(self.err(rustix::io::Errno::LOOP));
            }
            use std::os::fd::AsRawFd;
            rustix::fs::chmod(
                format!("/proc/self/fd/{}", fd.as_raw_fd()).as_str(),
                Mode::from_raw_mode(st.st_mode & 0o7777),
            )
            .map_err(|e| self.err(e))?;
        }
        rustix::fs::utimensat(dir, name, &times(st), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.err(e))
    }
}

/// A tar header for an entry with `st`'s metadata (docker's archives carry the source's
/// ids and modes).
fn tar_header(st: &Stat, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(st.st_uid as u64);
    h.set_gid(st.st_gid as u64);
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

struct TarOut<W: std::io::Write> {
    b: tar::Builder<W>,
    report: Report,
    shown: PathBuf,
    /// (dev, ino) of multiply-linked files -> their first name in the archive.
    linked: std::collections::HashMap<(u64, u64), PathBuf>,
    /// Names written as given (`./x`, `/x`: dockerd's archives), not normalised.
    raw: bool,
}

/// Sets a name field (`name` or `linkname`, 100 bytes) of `h`, or writes the GNU long-name
/// record of `kind` (`L` or `K`) before it when the name does not fit.
fn raw_name<W: std::io::Write>(
    b: &mut tar::Builder<W>,
    h: &mut tar::Header,
    name: &[u8],
    link: bool,
) -> std::io::Result<()> {
    let field = if link {
        &mut h.as_old_mut().linkname
    } else {
        &mut h.as_old_mut().name
    };
    let max = field.len();
    if name.len() > max {
        let mut l = tar::Header::new_gnu();
        l.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        l.set_mode(0o644);
        l.set_entry_type(if link {
            tar::EntryType::GNULongLink
        } else {
            tar::EntryType::GNULongName
        });
        l.set_size(name.len() as u64 + 1);
        l.set_cksum();
        b.append(&l, std::io::Read::chain(name, &[0u8][..]))?;
    }
    let n = name.len().min(max);
    let field = if link {
        &mut h.as_old_mut().linkname
    } else {
        &mut h.as_old_mut().name
    };
    field.fill(0);
    field[..n].copy_from_slice(&name[..n]);
    Ok(())
}

impl<W: std::io::Write> TarOut<W> {
    fn err(&self, e: impl Into<std::io::Error>) -> Error {
        io(&self.shown, e)
    }

    fn put(&mut self, mut h: tar::Header, path: &Path, data: impl std::io::Read) -> Result<()> {
        let r = if self.raw {
            raw_name(&mut self.b, &mut h, path.as_os_str().as_bytes(), false).and_then(|()| {
                h.set_cksum();
                self.b.append(&h, data)
            })
        } else {
            self.b.append_data(&mut h, path, data)
        };
        r.map_err(|e| self.err(e))
    }

    fn put_link(&mut self, mut h: tar::Header, path: &Path, target: &OsStr) -> Result<()> {
        let r = if self.raw {
            raw_name(&mut self.b, &mut h, path.as_os_str().as_bytes(), false)
                .and_then(|()| raw_name(&mut self.b, &mut h, target.as_bytes(), true))
                .and_then(|()| {
                    h.set_cksum();
                    self.b.append(&h, std::io::empty())
                })
        } else {
            self.b.append_link(&mut h, path, target)
        };
        r.map_err(|e| self.err(e))
    }

    /// Appends entry `name` of `from` as `path`, never following a symlink at `name`.
    fn entry(&mut self, from: BorrowedFd<'_>, name: &OsStr, path: &Path) -> Result<()> {
        let st = match rustix::fs::statat(from, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(rustix::io::Errno::NOENT) => return Ok(()),
            Err(e) => return Err(self.err(e)),
        };
        self.report.entries += 1;
        match file_type(&st) {
            FileType::Directory => {
                let d = reopen_dir(from, name).map_err(|e| self.err(e))?;
                let h = tar_header(&st, tar::EntryType::Directory);
                self.put(h, path, std::io::empty())?;
                self.entries(d.as_fd(), path)
            }
            FileType::RegularFile => {
                let key = (st.st_dev as u64, st.st_ino as u64);
                if st.st_nlink as u64 > 1 {
                    if let Some(first) = self.linked.get(&key) {
                        let h = tar_header(&st, tar::EntryType::Link);
                        let first = first.clone();
                        return self.put_link(h, path, first.as_os_str());
                    }
                    if self.linked.len() < MAX_LINKED {
                        self.linked.insert(key, path.to_path_buf());
                    }
                }
                let f = reopen_source_file(from, name, &st).map_err(|e| self.err(e))?;
                let mut h = tar_header(&st, tar::EntryType::Regular);
                h.set_size(st.st_size as u64);
                // A file that changes size meanwhile still fits its header: take that many.
                let r = std::io::Read::take(std::fs::File::from(f), st.st_size as u64);
                self.put(h, path, r)?;
                self.report.bytes += st.st_size as u64;
                Ok(())
            }
            FileType::Symlink => {
                let t = rustix::fs::readlinkat(from, name, Vec::new()).map_err(|e| self.err(e))?;
                let h = tar_header(&st, tar::EntryType::Symlink);
                self.put_link(h, path, OsStr::from_bytes(t.as_bytes()))
            }
            FileType::Socket | FileType::Unknown => Ok(()),
            ft => {
                let kind = match ft {
                    FileType::CharacterDevice => tar::EntryType::Char,
                    FileType::BlockDevice => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                };
                let mut h = tar_header(&st, kind);
                let dev = st.st_rdev as rustix::fs::Dev;
                let _ = h.set_device_major(rustix::fs::major(dev));
                let _ = h.set_device_minor(rustix::fs::minor(dev));
                self.put(h, path, std::io::empty())
            }
        }
    }

    fn entries(&mut self, dir: BorrowedFd<'_>, prefix: &Path) -> Result<()> {
        let dup = rustix::fs::openat(
            dir,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.err(e))?;
        let mut names = Vec::new();
        for e in rustix::fs::Dir::new(dup).map_err(|e| self.err(e))? {
            let e = e.map_err(|e| self.err(e))?;
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(OsStr::from_bytes(n).to_os_string());
            }
        }
        names.sort();
        for n in names {
            self.entry(dir, &n, &prefix.join(&n))?;
        }
        Ok(())
    }
}

/// Writes `src` as a tar stream (docker's `cp CONTAINER:PATH -`): the source under its
/// own name, or a directory's contents when the path ends in `/.`.
pub fn write_tar<W: std::io::Write>(src: Side<'_>, opts: &CopyOptions, w: W) -> Result<Report> {
    let mut sp = parse(src.path, src.in_root)?;
    let follow = opts.follow_link || sp.trailing_slash;
    let source = resolve(&src, &sp, follow, true)?;
    let sst = source.existing.expect("a resolved source exists");
    if sp.trailing_slash && file_type(&sst) != FileType::Directory {
        return Err(invalid(format!(
            "{} is not a directory",
            src.show(src.path).display()
        )));
    }
    if source.name == "." || source.name == ".." {
        sp.contents = true;
    }
    let mut t = TarOut {
        b: tar::Builder::new(w),
        report: Report::default(),
        shown: src.show(src.path),
        linked: Default::default(),
        raw: false,
    };
    t.b.follow_symlinks(false);
    if sp.contents && file_type(&sst) == FileType::Directory {
        let d = reopen_dir(source.dir.as_fd(), &source.name).map_err(|e| t.err(e))?;
        t.entries(d.as_fd(), Path::new(""))?;
    } else {
        let as_name = copy_name(&sp, &source);
        t.entry(source.dir.as_fd(), &source.name, Path::new(&as_name))?;
    }
    finish_tar(t)
}

fn finish_tar<W: std::io::Write>(t: TarOut<W>) -> Result<Report> {
    let report = t.report;
    let shown = t.shown.clone();
    t.b.into_inner()
        .map_err(|e| io(&shown, e))?
        .flush()
        .map_err(|e| io(&shown, e))?;
    Ok(report)
}

/// The name dockerd gives a container path in its archives and stats: Go's
/// `filepath.Base` of the path made absolute, keeping a trailing `/.` (`.`), `/` for the
/// root.
pub fn docker_base(p: &Path) -> PathBuf {
    let b = p.as_os_str().as_bytes();
    if b == b"." || b.ends_with(b"/.") {
        return PathBuf::from(".");
    }
    let clean = clean_in_root(p);
    match clean.file_name() {
        Some(n) => PathBuf::from(n),
        None => PathBuf::from("/"),
    }
}

/// A container path resolved once for dockerd's archive GET and HEAD, so that the stat
/// header and the tar describe the same file: the final name itself (a symlink is not
/// followed, unless the path ends in `/`).
pub struct DockerSource<'a> {
    side: Side<'a>,
    sp: Parsed,
    source: Dest,
}

/// Resolves `side` for [`DockerSource`]; None: the path does not exist.
pub fn docker_source(side: Side<'_>) -> Result<Option<DockerSource<'_>>> {
    let sp = parse(side.path, side.in_root)?;
    match resolve(&side, &sp, sp.trailing_slash, true) {
        Ok(source) => Ok(Some(DockerSource { side, sp, source })),
        Err(Error::Invalid(m)) if m.starts_with("could not find the file") => Ok(None),
        Err(e) => Err(e),
    }
}

impl DockerSource<'_> {
    fn existing(&self) -> Stat {
        self.source.existing.expect("a resolved source exists")
    }

    /// Writes the path as dockerd's `GET /containers/{id}/archive` does: entries named
    /// from [`docker_base`] of the path (`name`, `name/x`; `.` and `./x` for a directory's
    /// contents; `/x` for the root), which is what the docker CLI's `cp` rebases. A symlink
    /// at the final name is archived as the link unless the path ends in `/`.
    pub fn write_tar<W: std::io::Write>(self, w: W) -> Result<Report> {
        let src = self.side;
        if self.sp.trailing_slash && file_type(&self.existing()) != FileType::Directory {
            return Err(invalid(format!(
                "{} is not a directory",
                src.show(src.path).display()
            )));
        }
        let mut t = TarOut {
            b: tar::Builder::new(w),
            report: Report::default(),
            shown: src.show(src.path),
            linked: Default::default(),
            raw: true,
        };
        t.b.follow_symlinks(false);
        t.entry(
            self.source.dir.as_fd(),
            &self.source.name,
            &docker_base(src.path),
        )?;
        finish_tar(t)
    }

    /// What dockerd's `X-Docker-Container-Path-Stat` header says of it, a symlink's
    /// target resolved inside the root.
    pub fn stat(&self) -> PathStat {
        let (side, sp, st) = (&self.side, &self.sp, self.existing());
        let link_target = if file_type(&st) == FileType::Symlink {
            // A dangling link leads to where it would be (as dockerd's FollowSymlinkInScope).
            let full = resolve(side, sp, true, false).map_or(sp.path.clone(), |f| f.resolved);
            let p = if side.in_root {
                clean_in_root(&full)
            } else {
                full
            };
            side.show(&p).display().to_string()
        } else {
            String::new()
        };
        let mtime = std::time::UNIX_EPOCH
            + std::time::Duration::new(st.st_mtime.max(0) as u64, st.st_mtime_nsec as u32);
        PathStat {
            name: docker_base(side.path).display().to_string(),
            size: st.st_size,
            mode: go_file_mode(st.st_mode),
            mtime,
            link_target,
        }
    }
}

/// What dockerd's `X-Docker-Container-Path-Stat` header says of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathStat {
    /// [`docker_base`] of the path as asked.
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode` bits (type bits high, permissions low).
    pub mode: u32,
    pub mtime: std::time::SystemTime,
    /// For a symlink: where it leads, as an absolute path in the container.
    pub link_target: String,
}

/// `st_mode` as Go's `os.FileMode`, which docker clients decode.
pub fn go_file_mode(st_mode: u32) -> u32 {
    let mut m = st_mode & 0o777;
    m |= match FileType::from_raw_mode(st_mode as _) {
        FileType::Directory => 1 << 31,
        FileType::Symlink => 1 << 27,
        FileType::BlockDevice => 1 << 26,
        FileType::CharacterDevice => (1 << 26) | (1 << 21),
        FileType::Fifo => 1 << 25,
        FileType::Socket => 1 << 24,
        _ => 0,
    };
    for (bit, go) in [(0o4000, 1 << 23), (0o2000, 1 << 22), (0o1000, 1 << 20)] {
        if st_mode & bit != 0 {
            m |= go;
        }
    }
    m
}

/// Stats a container path as dockerd's `HEAD /containers/{id}/archive` ([`DockerSource`]).
/// None: the path does not exist.
pub fn stat(side: Side<'_>) -> Result<Option<PathStat>> {
    Ok(docker_source(side)?.map(|s| s.stat()))
}

/// The components of an archive entry's name, refusing names that leave the destination
/// (absolute, or with `..`): CVE-2026-17106's rule, as moby's go-archive now applies.
pub fn entry_components(raw: &[u8]) -> Result<Vec<OsString>> {
    if raw.starts_with(b"/") {
        return Err(invalid(format!(
            "refusing archive entry {:?}: an absolute name",
            String::from_utf8_lossy(raw)
        )));
    }
    let mut v = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                return Err(invalid(format!(
                    "refusing archive entry {:?}: it leads outside the destination",
                    String::from_utf8_lossy(raw)
                )))
            }
            c if c.contains(&0) => return Err(invalid("archive entry name holds a NUL".into())),
            c => v.push(OsStr::from_bytes(c).to_os_string()),
        }
    }
    Ok(v)
}

/// Walks `comps` from `dir` through real directories only (a symlink or anything else on
/// the way is an error); with `create`, missing ones are made (0755).
fn walk_dirs(
    dir: BorrowedFd<'_>,
    comps: &[OsString],
    create: bool,
    shown: &Path,
) -> Result<OwnedFd> {
    let mut cur = rustix::fs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io(shown, e))?;
    for c in comps {
        let next = match reopen_dir(cur.as_fd(), c) {
            Err(rustix::io::Errno::NOENT) if create => {
                match rustix::fs::mkdirat(&cur, c.as_os_str(), Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(io(shown, e)),
                }
                reopen_dir(cur.as_fd(), c)
            }
            r => r,
        };
        cur = next.map_err(|e| match e {
            rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => invalid(format!(
                "archive entry under {:?} in {}: not a directory (symlinks are not followed)",
                c,
                shown.display()
            )),
            e => io(shown, e),
        })?;
    }
    Ok(cur)
}

/// Extracts a tar stream (docker's `cp - CONTAINER:DIR`) into the existing directory
/// `dst`. Every entry is created relative to directory fds, never through a symlink,
/// and names with `..` or a leading `/` are refused.
pub fn extract_tar<R: std::io::Read>(r: R, dst: Side<'_>, opts: &CopyOptions) -> Result<Report> {
    let dp = parse(dst.path, dst.in_root)?;
    let dest = resolve(&dst, &dp, true, false)?;
    match &dest.existing {
        Some(st) if file_type(st) == FileType::Directory => {}
        _ => {
            return Err(invalid(format!(
                "destination {} must be a directory",
                dest.shown.display()
            )))
        }
    }
    let shown = dest.shown.clone();
    let into = reopen_dir(dest.dir.as_fd(), &dest.name).map_err(|e| io(&shown, e))?;
    let mut c = Copier {
        opts: *opts,
        report: Report::default(),
        shown: shown.clone(),
        linked: Default::default(),
        place: None,
    };
    let mut dir_times: Vec<(Vec<OsString>, Timestamps)> = Vec::new();
    let mut ar = tar::Archive::new(r);
    for e in ar.entries().map_err(|e| io(&shown, e))? {
        let mut e = e.map_err(|e| io(&shown, e))?;
        let comps = entry_components(&e.path_bytes())?;
        let Some((name, parents)) = comps.split_last() else {
            continue; // "." itself: the destination stays as it is
        };
        let h = e.header();
        let mode = h.mode().map_err(|e| io(&shown, e))?;
        let mtime = h.mtime().map_err(|e| io(&shown, e))? as i64;
        let uid = h.uid().map_err(|e| io(&shown, e))? as u32;
        let gid = h.gid().map_err(|e| io(&shown, e))? as u32;
        let kind = h.entry_type();
        let ts = Timestamps {
            last_access: Timespec {
                tv_sec: mtime as _,
                tv_nsec: 0,
            },
            last_modification: Timespec {
                tv_sec: mtime as _,
                tv_nsec: 0,
            },
        };
        // A Stat-like record for the shared helpers.
        let mut st: Stat = rustix::fs::fstat(&into).map_err(|e| io(&shown, e))?;
        st.st_mode = (mode & 0o7777) as _;
        st.st_uid = uid as _;
        st.st_gid = gid as _;
        st.st_atime = mtime as _;
        st.st_atime_nsec = 0;
        st.st_mtime = mtime as _;
        st.st_mtime_nsec = 0;
        let dir = walk_dirs(into.as_fd(), parents, true, &shown)?;
        match kind {
            tar::EntryType::Directory => {
                let exists = c.clear(dir.as_fd(), name, true)?;
                if !exists {
                    rustix::fs::mkdirat(&dir, name.as_os_str(), Mode::from_raw_mode(0o700))
                        .map_err(|e| io(&shown, e))?;
                }
                let d = reopen_dir(dir.as_fd(), name).map_err(|e| io(&shown, e))?;
                if let Some((u, g)) = c.ids(&st) {
                    rustix::fs::fchown(
                        &d,
                        Some(rustix::fs::Uid::from_raw(u)),
                        Some(rustix::fs::Gid::from_raw(g)),
                    )
                    .map_err(|e| io(&shown, e))?;
                }
                rustix::fs::fchmod(&d, Mode::from_raw_mode(mode & 0o7777))
                    .map_err(|e| io(&shown, e))?;
                c.report.entries += 1;
                dir_times.push((comps.clone(), ts));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                c.clear(dir.as_fd(), name, false)?;
                let out = rustix::fs::openat(
                    &dir,
                    name.as_os_str(),
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| io(&shown, e))?;
                let mut w = std::fs::File::from(out);
                let n = std::io::copy(&mut e, &mut w).map_err(|e| io(&shown, e))?;
                c.report.bytes += n;
                c.report.entries += 1;
                if let Some((u, g)) = c.ids(&st) {
                    rustix::fs::fchown(
                        &w,
                        Some(rustix::fs::Uid::from_raw(u)),
                        Some(rustix::fs::Gid::from_raw(g)),
                    )
                    .map_err(|e| io(&shown, e))?;
                }
                rustix::fs::fchmod(&w, Mode::from_raw_mode(mode & 0o7777))
                    .map_err(|e| io(&shown, e))?;
                rustix::fs::futimens(&w, &ts).map_err(|e| io(&shown, e))?;
            }
            tar::EntryType::Symlink => {
                let t = e
                    .link_name_bytes()
                    .ok_or_else(|| invalid(format!("symlink entry {:?} without a target", name)))?
                    .into_owned();
                c.place_symlink(OsStr::from_bytes(&t), &st, dir.as_fd(), name)?;
            }
            tar::EntryType::Link => {
                let t = e
                    .link_name_bytes()
                    .ok_or_else(|| invalid(format!("hard link entry {:?} without a target", name)))?
                    .into_owned();
                let tc = entry_components(&t)?;
                let Some((tname, tparents)) = tc.split_last() else {
                    return Err(invalid(format!(
                        "hard link {:?} to the destination itself",
                        name
                    )));
                };
                let tdir = walk_dirs(into.as_fd(), tparents, false, &shown)?;
                c.clear(dir.as_fd(), name, false)?;
                rustix::fs::linkat(
                    &tdir,
                    tname.as_os_str(),
                    &dir,
                    name.as_os_str(),
                    AtFlags::empty(),
                )
                .map_err(|e| io(&shown, e))?;
                c.report.entries += 1;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let ft = match kind {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                st.st_mode = (ft.as_raw_mode() | (mode & 0o7777)) as _;
                st.st_rdev = rustix::fs::makedev(major, minor) as _;
                c.place_special(&st, dir.as_fd(), name)?;
            }
            // PAX/GNU extension records are read by the tar crate; nothing else is placed.
            _ => {}
        }
    }
    // Directories' times last: their entries changed them.
    for (comps, ts) in dir_times.iter().rev() {
        if let Ok(d) = walk_dirs(into.as_fd(), comps, false, &shown) {
            let _ = rustix::fs::futimens(&d, ts);
        }
    }
    Ok(c.report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    /// A fake rootfs `t/root` with a canary file outside it at `t/canary`.
    struct T {
        t: tempfile::TempDir,
        root: OwnedFd,
    }

    impl T {
        fn new() -> T {
            let t = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(t.path().join("root/etc")).unwrap();
            std::fs::create_dir_all(t.path().join("host")).unwrap();
            std::fs::write(t.path().join("canary"), b"host secret").unwrap();
            let root = rustix::fs::open(
                t.path().join("root"),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .unwrap();
            T { t, root }
        }
        fn p(&self, rel: &str) -> PathBuf {
            self.t.path().join(rel)
        }
        fn canary(&self) -> PathBuf {
            self.p("canary")
        }
        fn out(&self, ctr: &str, host: &Path, follow: bool) -> Result<Report> {
            copy(
                Side::container(self.root.as_fd(), Path::new(ctr)),
                Side::host(host),
                &CopyOptions {
                    follow_link: follow,
                    owner: Owner::Caller,
                },
            )
        }
        fn put(&self, host: &Path, ctr: &str, owner: Owner) -> Result<Report> {
            copy(
                Side::host(host),
                Side::container(self.root.as_fd(), Path::new(ctr)),
                &CopyOptions {
                    follow_link: false,
                    owner,
                },
            )
        }
    }

    fn set_mtime(p: &Path, secs: i64) {
        rustix::fs::utimensat(
            rustix::fs::CWD,
            p,
            &Timestamps {
                last_access: Timespec {
                    tv_sec: secs,
                    tv_nsec: 0,
                },
                last_modification: Timespec {
                    tv_sec: secs,
                    tv_nsec: 0,
                },
            },
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .unwrap();
    }

    #[test]
    fn clean_paths_stay_in_root() {
        assert_eq!(clean_in_root(Path::new("../../etc/x")), Path::new("/etc/x"));
        assert_eq!(clean_in_root(Path::new("/a/./b/../c/")), Path::new("/a/c"));
        assert_eq!(clean_in_root(Path::new("..")), Path::new("/"));
    }

    #[test]
    fn file_in_and_out_keeps_mode_and_mtime_and_sets_root_owner() {
        let t = T::new();
        let f = t.p("host/hello.txt");
        std::fs::write(&f, b"hello").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o4751)).unwrap();
        rustix::fs::chown(
            &f,
            Some(rustix::fs::Uid::from_raw(1234)),
            Some(rustix::fs::Gid::from_raw(99)),
        )
        .unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o4751)).unwrap();
        set_mtime(&f, 1_000_000_000);
        // Into an existing directory: under its own name, owned by root (docker's rule).
        let r = t.put(&f, "/etc", Owner::Set(0, 0)).unwrap();
        assert_eq!(r.bytes, 5);
        let m = std::fs::metadata(t.p("root/etc/hello.txt")).unwrap();
        assert_eq!((m.uid(), m.gid()), (0, 0));
        assert_eq!(m.mode() & 0o7777, 0o4751);
        assert_eq!(m.mtime(), 1_000_000_000);
        // -a keeps the source's owner.
        t.put(&f, "/etc/kept", Owner::Source).unwrap();
        let m = std::fs::metadata(t.p("root/etc/kept")).unwrap();
        assert_eq!((m.uid(), m.gid()), (1234, 99));
        // Onto an existing file: overwritten.
        std::fs::write(t.p("root/etc/over"), b"old old old").unwrap();
        t.put(&f, "/etc/over", Owner::Set(0, 0)).unwrap();
        assert_eq!(std::fs::read(t.p("root/etc/over")).unwrap(), b"hello");
        // Out again, onto a missing name.
        t.out("/etc/hello.txt", &t.p("host/back"), false).unwrap();
        assert_eq!(std::fs::read(t.p("host/back")).unwrap(), b"hello");
        assert_eq!(
            std::fs::metadata(t.p("host/back")).unwrap().mtime(),
            1_000_000_000
        );
        // A missing source, a missing parent, a dir-only destination that is missing.
        let e = t
            .out("/nope", &t.p("host/x"), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("could not find the file /nope"), "{e}");
        assert!(t.put(&f, "/no/such/dir/x", Owner::Set(0, 0)).is_err());
        assert!(t.put(&f, "/newdir/", Owner::Set(0, 0)).is_err());
        assert!(t.out("/etc/hello.txt/", &t.p("host/y"), false).is_err());
    }

    #[test]
    fn directories_follow_dockers_rules() {
        let t = T::new();
        let d = t.p("host/src");
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("a"), b"A").unwrap();
        std::fs::write(d.join("sub/b"), b"B").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.join("link")).unwrap();
        std::fs::set_permissions(d.join("sub"), std::fs::Permissions::from_mode(0o750)).unwrap();
        set_mtime(&d.join("sub"), 1_500_000_000);
        // Missing destination: created, with the contents.
        t.put(&d, "/new", Owner::Set(0, 0)).unwrap();
        assert_eq!(std::fs::read(t.p("root/new/sub/b")).unwrap(), b"B");
        assert_eq!(
            std::fs::read_link(t.p("root/new/link")).unwrap(),
            Path::new("/etc/passwd")
        );
        let m = std::fs::metadata(t.p("root/new/sub")).unwrap();
        assert_eq!((m.mode() & 0o7777, m.mtime()), (0o750, 1_500_000_000));
        // Existing destination: the directory goes inside it...
        t.put(&d, "/etc", Owner::Set(0, 0)).unwrap();
        assert_eq!(std::fs::read(t.p("root/etc/src/a")).unwrap(), b"A");
        // ... or only its contents with "/.".
        let dot = d.join(".");
        t.put(&dot, "/etc", Owner::Set(0, 0)).unwrap();
        assert_eq!(std::fs::read(t.p("root/etc/a")).unwrap(), b"A");
        assert!(t.p("root/etc/sub/b").is_file());
        // A directory onto a file is an error.
        std::fs::write(t.p("root/file"), b"f").unwrap();
        let e = t
            .put(&d, "/file", Owner::Set(0, 0))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot copy a directory to a file"), "{e}");
        // Hard links stay hard links.
        std::fs::write(t.p("root/new/h1"), b"H").unwrap();
        std::fs::hard_link(t.p("root/new/h1"), t.p("root/new/h2")).unwrap();
        t.out("/new", &t.p("host/linked"), false).unwrap();
        let (a, b) = (
            std::fs::metadata(t.p("host/linked/h1")).unwrap(),
            std::fs::metadata(t.p("host/linked/h2")).unwrap(),
        );
        assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));
        // A FIFO keeps its type and exact mode (never opened, so never blocks).
        rustix::fs::mknodat(
            rustix::fs::CWD,
            t.p("root/new/fifo"),
            FileType::Fifo,
            Mode::from_raw_mode(0o666),
            0,
        )
        .unwrap();
        std::fs::set_permissions(t.p("root/new/fifo"), std::fs::Permissions::from_mode(0o662))
            .unwrap();
        t.out("/new/fifo", &t.p("host/fifo"), false).unwrap();
        let m = std::fs::symlink_metadata(t.p("host/fifo")).unwrap();
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(&m.file_type()));
        assert_eq!(m.mode() & 0o7777, 0o662);
        // The whole tree back out.
        t.out("/new", &t.p("host/out"), false).unwrap();
        assert_eq!(std::fs::read(t.p("host/out/sub/b")).unwrap(), b"B");
        t.out("/", &t.p("host/all"), false).unwrap();
        assert_eq!(std::fs::read(t.p("host/all/new/a")).unwrap(), b"A");
    }

    #[test]
    fn bad_13_symlink_out_of_the_root_is_resolved_inside() {
        let t = T::new();
        // The container points a link at the host's canary (absolute and via `..`).
        std::os::unix::fs::symlink(t.canary(), t.p("root/abs")).unwrap();
        std::os::unix::fs::symlink("../../../../../../canary", t.p("root/rel")).unwrap();
        std::os::unix::fs::symlink(t.p(""), t.p("root/hostdir")).unwrap();
        // Inside the root, the same paths hold the container's own file.
        let inside = t.p("root").join(t.canary().strip_prefix("/").unwrap());
        std::fs::create_dir_all(inside.parent().unwrap()).unwrap();
        std::fs::write(&inside, b"container file").unwrap();
        std::fs::write(t.p("root/canary"), b"container canary").unwrap();
        // -L: followed, but inside the root.
        t.out("/abs", &t.p("host/a"), true).unwrap();
        assert_eq!(std::fs::read(t.p("host/a")).unwrap(), b"container file");
        t.out("/rel", &t.p("host/r"), true).unwrap();
        assert_eq!(std::fs::read(t.p("host/r")).unwrap(), b"container canary");
        // Without -L the link itself is copied.
        t.out("/abs", &t.p("host/l"), false).unwrap();
        assert_eq!(std::fs::read_link(t.p("host/l")).unwrap(), t.canary());
        // An intermediate link to the host's directory is resolved inside too.
        let via = "/hostdir/canary";
        let e = t.out(via, &t.p("host/v"), false);
        assert!(e.is_err() || std::fs::read(t.p("host/v")).unwrap() != b"host secret");
        // Copying in through links never writes the host's file.
        let f = t.p("host/payload");
        std::fs::write(&f, b"pwned").unwrap();
        t.put(&f, "/abs", Owner::Set(0, 0)).unwrap();
        t.put(&f, "/rel", Owner::Set(0, 0)).unwrap();
        assert_eq!(std::fs::read(t.canary()).unwrap(), b"host secret");
        assert_eq!(std::fs::read(&inside).unwrap(), b"pwned");
        assert_eq!(std::fs::read(t.p("root/canary")).unwrap(), b"pwned");
    }

    #[test]
    fn bad_13_parent_symlink_to_dotdots_stays_inside() {
        let t = T::new();
        std::os::unix::fs::symlink("/../../..", t.p("root/up")).unwrap();
        std::os::unix::fs::symlink("../../../../../../..", t.p("root/up2")).unwrap();
        let f = t.p("host/payload");
        std::fs::write(&f, b"pwned").unwrap();
        t.put(&f, "/up/dropped", Owner::Set(0, 0)).unwrap();
        t.put(&f, "/up2/dropped2", Owner::Set(0, 0)).unwrap();
        t.put(&f, "/up/", Owner::Set(0, 0)).unwrap();
        assert!(t.p("root/dropped").is_file());
        assert!(t.p("root/dropped2").is_file());
        assert!(t.p("root/payload").is_file());
        assert!(!Path::new("/dropped").exists() && !Path::new("/dropped2").exists());
        assert!(!t.p("dropped").exists() && !t.p("payload").exists());
        // A directory copied out of it stays inside as well.
        std::fs::write(t.p("root/etc/shadow"), b"container shadow").unwrap();
        std::os::unix::fs::symlink("/etc/shadow", t.p("root/shadow")).unwrap();
        t.out("/up/etc/shadow", &t.p("host/s"), false).unwrap();
        assert_eq!(std::fs::read(t.p("host/s")).unwrap(), b"container shadow");
        t.out("/shadow", &t.p("host/s2"), true).unwrap();
        assert_eq!(std::fs::read(t.p("host/s2")).unwrap(), b"container shadow");
        // -L into a directory: under the link's name.
        t.out("/shadow", &t.p("host"), true).unwrap();
        assert_eq!(
            std::fs::read(t.p("host/shadow")).unwrap(),
            b"container shadow"
        );
    }

    /// CVE-2018-15664: a container swaps a directory for a symlink to the host while the
    /// copy runs. Whatever the timing, nothing outside the root is read or written.
    #[test]
    fn cve_2018_15664_symlink_exchange_race() {
        let t = T::new();
        let secret = t.p("hostsecret");
        std::fs::create_dir_all(&secret).unwrap();
        std::fs::write(secret.join("f"), b"host secret").unwrap();
        std::fs::create_dir_all(t.p("root/d")).unwrap();
        std::fs::write(t.p("root/d/f"), b"ok").unwrap();
        std::os::unix::fs::symlink(&secret, t.p("root/evil")).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (s2, root) = (stop.clone(), t.p("root"));
        let racer = std::thread::spawn(move || {
            let (d, evil) = (root.join("d"), root.join("evil"));
            while !s2.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = rustix::fs::renameat_with(
                    rustix::fs::CWD,
                    &d,
                    rustix::fs::CWD,
                    &evil,
                    rustix::fs::RenameFlags::EXCHANGE,
                );
            }
        });
        let payload = t.p("host/payload");
        std::fs::write(&payload, b"pwned").unwrap();
        let t0 = std::time::Instant::now();
        let mut n = 0;
        while t0.elapsed() < std::time::Duration::from_millis(700) {
            let out = t.p(&format!("host/o{n}"));
            // (A copied symlink is a link on the host too: only a real directory counts.)
            if t.out("/d", &out, false).is_ok() && std::fs::symlink_metadata(&out).unwrap().is_dir()
            {
                if let Ok(b) = std::fs::read(out.join("f")) {
                    assert_ne!(b, b"host secret", "read the host's file");
                }
            }
            let _ = t.put(&payload, "/d/f", Owner::Set(0, 0));
            n += 1;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        racer.join().unwrap();
        assert_eq!(std::fs::read(secret.join("f")).unwrap(), b"host secret");
        assert_eq!(std::fs::read_dir(&secret).unwrap().count(), 1);
        assert!(n > 10);
    }

    fn raw_entry(
        b: &mut tar::Builder<Vec<u8>>,
        name: &[u8],
        kind: tar::EntryType,
        link: &[u8],
        data: &[u8],
    ) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        let g = h.as_gnu_mut().unwrap();
        g.name[..name.len()].copy_from_slice(name);
        g.linkname[..link.len()].copy_from_slice(link);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    fn extract(t: &T, tar: &[u8], ctr: &str) -> Result<Report> {
        extract_tar(
            tar,
            Side::container(t.root.as_fd(), Path::new(ctr)),
            &CopyOptions {
                follow_link: false,
                owner: Owner::Set(0, 0),
            },
        )
    }

    #[test]
    fn tar_stream_round_trip() {
        let t = T::new();
        std::fs::create_dir_all(t.p("root/d/sub")).unwrap();
        std::fs::write(t.p("root/d/a"), b"A").unwrap();
        std::fs::write(t.p("root/d/sub/b"), b"BB").unwrap();
        std::fs::set_permissions(t.p("root/d/a"), std::fs::Permissions::from_mode(0o751)).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", t.p("root/d/l")).unwrap();
        set_mtime(&t.p("root/d/a"), 1_200_000_000);
        std::fs::hard_link(t.p("root/d/sub/b"), t.p("root/d/z")).unwrap();
        let mut buf = Vec::new();
        let opts = CopyOptions {
            follow_link: false,
            owner: Owner::Source,
        };
        let r = write_tar(
            Side::container(t.root.as_fd(), Path::new("/d")),
            &opts,
            &mut buf,
        )
        .unwrap();
        assert_eq!(r.bytes, 3);
        let names: Vec<String> = tar::Archive::new(&buf[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["d", "d/a", "d/l", "d/sub", "d/sub/b", "d/z"]);
        std::fs::create_dir_all(t.p("root/into")).unwrap();
        extract(&t, &buf, "/into").unwrap();
        assert_eq!(std::fs::read(t.p("root/into/d/sub/b")).unwrap(), b"BB");
        let z = std::fs::metadata(t.p("root/into/d/z")).unwrap();
        assert_eq!(
            z.ino(),
            std::fs::metadata(t.p("root/into/d/sub/b")).unwrap().ino()
        );
        let m = std::fs::metadata(t.p("root/into/d/a")).unwrap();
        assert_eq!((m.mode() & 0o7777, m.mtime()), (0o751, 1_200_000_000));
        assert_eq!(
            std::fs::read_link(t.p("root/into/d/l")).unwrap(),
            Path::new("/etc/shadow")
        );
        // Contents only, with "/.".
        let mut buf = Vec::new();
        write_tar(
            Side::container(t.root.as_fd(), Path::new("/d/.")),
            &opts,
            &mut buf,
        )
        .unwrap();
        std::fs::create_dir_all(t.p("root/flat")).unwrap();
        extract(&t, &buf, "/flat").unwrap();
        assert!(t.p("root/flat/sub/b").is_file());
        // Not a directory to extract into.
        assert!(extract(&t, &buf, "/d/a").is_err());
    }

    /// CVE-2026-17106 and BAD-13: archive entries naming `..`, absolute paths, or going
    /// through a symlink in the archive never land outside the destination.
    #[test]
    fn tar_entries_leaving_the_destination_are_refused() {
        let t = T::new();
        std::fs::create_dir_all(t.p("root/dst")).unwrap();
        for (name, kind, link) in [
            (
                &b"../../../../canary"[..],
                tar::EntryType::Regular,
                &b""[..],
            ),
            (b"ok/../../canary", tar::EntryType::Regular, b""),
            (b"/canary", tar::EntryType::Regular, b""),
            (b"hl", tar::EntryType::Link, b"../../canary"),
        ] {
            let mut b = tar::Builder::new(Vec::new());
            raw_entry(&mut b, name, kind, link, b"pwned");
            let tar = b.into_inner().unwrap();
            let e = extract(&t, &tar, "/dst").unwrap_err();
            assert!(e.to_string().contains("refusing archive entry"), "{e:?}");
        }
        // A symlink to the host, then a file "through" it.
        let mut b = tar::Builder::new(Vec::new());
        let host = t.t.path().to_str().unwrap().as_bytes().to_vec();
        raw_entry(&mut b, b"esc", tar::EntryType::Symlink, &host, b"");
        raw_entry(
            &mut b,
            b"esc/canary",
            tar::EntryType::Regular,
            b"",
            b"pwned",
        );
        let tar = b.into_inner().unwrap();
        assert!(extract(&t, &tar, "/dst").is_err());
        assert_eq!(std::fs::read(t.canary()).unwrap(), b"host secret");
        assert!(
            std::fs::read_dir(t.p("root")).unwrap().count() <= 2,
            "wrote beside dst"
        );
        assert!(!t.p("root/canary").exists());
    }

    /// Entry names (as raw bytes, before any normalising) and link names of a tar.
    fn tar_names(b: &[u8]) -> Vec<(String, String)> {
        let mut a = tar::Archive::new(b);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let link = e
                    .link_name_bytes()
                    .map(|l| String::from_utf8_lossy(&l).into_owned())
                    .unwrap_or_default();
                (String::from_utf8_lossy(&e.path_bytes()).into_owned(), link)
            })
            .collect()
    }

    #[test]
    fn docker_named_archives_and_stats() {
        let t = T::new();
        std::fs::create_dir_all(t.p("root/d/sub")).unwrap();
        std::fs::write(t.p("root/d/a.txt"), b"alpha").unwrap();
        std::fs::write(t.p("root/d/sub/b"), b"beta").unwrap();
        std::os::unix::fs::symlink("/d/a.txt", t.p("root/d/link")).unwrap();
        std::os::unix::fs::symlink("../../../canary", t.p("root/esc")).unwrap();
        let long = "n".repeat(150);
        std::fs::write(t.p(&format!("root/d/sub/{long}")), b"long").unwrap();
        let tar_of = |p: &str| {
            let mut out = Vec::new();
            docker_source(Side::container(t.root.as_fd(), Path::new(p)))
                .unwrap()
                .expect("the path exists")
                .write_tar(&mut out)
                .unwrap();
            tar_names(&out)
        };
        let names = |v: Vec<(String, String)>| v.into_iter().map(|x| x.0).collect::<Vec<_>>();
        // Under the path's own name; `/.`: `.` and `./x`, which the docker CLI rebases.
        assert_eq!(
            names(tar_of("/d/sub")),
            vec!["sub".to_string(), "sub/b".into(), format!("sub/{long}")]
        );
        let dot = names(tar_of("/d/."));
        assert_eq!(dot[0], ".");
        assert!(dot.contains(&"./a.txt".to_string()), "{dot:?}");
        assert!(dot.contains(&format!("./sub/{long}")), "{dot:?}");
        assert_eq!(names(tar_of("d/")).first().map(String::as_str), Some("d"));
        // A symlink is archived as the link, its target untouched.
        assert_eq!(tar_of("/d/link"), vec![("link".into(), "/d/a.txt".into())]);
        // The root's entries start with `/`, as dockerd's.
        let root = names(tar_of("/"));
        assert_eq!(root[0], "/");
        assert!(root.contains(&"/d/a.txt".to_string()), "{root:?}");

        let st = |p: &str| stat(Side::container(t.root.as_fd(), Path::new(p))).unwrap();
        let s = st("/d/a.txt").unwrap();
        assert_eq!((s.name.as_str(), s.size), ("a.txt", 5));
        assert_eq!(s.mode & !0o777, 0);
        assert_eq!(s.link_target, "");
        let s = st("/d/link").unwrap();
        assert_eq!(s.mode & (1 << 27), 1 << 27);
        assert_eq!(s.link_target, "/d/a.txt");
        // A link that climbs out is resolved inside the root, as everything else.
        assert_eq!(st("/esc").unwrap().link_target, "/canary");
        assert_eq!(st("/d/.").unwrap().name, ".");
        assert_eq!(st("/").unwrap().name, "/");
        assert_ne!(st("/d/").unwrap().mode & (1 << 31), 0);
        assert!(st("/nope").is_none());
        assert!(st("/d/a.txt/x").is_none());
    }

    #[test]
    fn go_file_modes() {
        assert_eq!(go_file_mode(0o100644), 0o644);
        assert_eq!(go_file_mode(0o40755), (1 << 31) | 0o755);
        assert_eq!(go_file_mode(0o120777), (1 << 27) | 0o777);
        assert_eq!(go_file_mode(0o20666), (1 << 26) | (1 << 21) | 0o666);
        assert_eq!(go_file_mode(0o104755), (1 << 23) | 0o755);
        assert_eq!(go_file_mode(0o41777), (1 << 31) | (1 << 20) | 0o777);
        assert_eq!(docker_base(Path::new("/a/b/")), Path::new("b"));
        assert_eq!(docker_base(Path::new("a/..")), Path::new("/"));
    }
}
