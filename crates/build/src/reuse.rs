//! A COPY's files shared with the layer an earlier build of the same step made.
//!
//! A file the copy would create that the earlier layer holds at the same path, byte for
//! byte, with the same owner, mode and (clamped) mtime and no xattrs, is hard-linked from
//! that layer into the new one instead of created. The new layer's tar, and so its
//! digest, is what a plain copy gives: only identical files are shared, and layers are
//! never written once made. Why: making an inode is what a COPY costs on a disk like this
//! one (ext4 without a journal scans past every recently deleted inode for a free one);
//! a link makes none, and deleting it later frees none.
//!
//! The copy writes through the overlay's merged directory, where a link from the store
//! cannot go (another filesystem). So the copy skips what is shared (recording it) and
//! the links are made in the upper directory once the overlay is unmounted; each
//! directory holding one is copied up first, as the copy's own create would. The earlier
//! layer is read through fds, never following a symlink in it.

use berth_engine::cp::Place;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Opens `rel` beneath `root`, refusing every symlink on the way (a layer's symlinks
/// point into an image, not into the host).
fn open_beneath(root: BorrowedFd<'_>, rel: &Path, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    rustix::fs::openat2(
        root,
        rel,
        flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
}

pub struct Reuse {
    /// The earlier layer's unpacked tree.
    donor: OwnedFd,
    /// Where the copy writes (the merged directory, or the upper one without lowers).
    merged: PathBuf,
    clamp: Option<u64>,
    /// Path in the rootfs -> the earlier layer's file at that path, to link there.
    pending: BTreeMap<PathBuf, PathBuf>,
    /// A multiply-linked source taken over -> where it was linked from, so its other
    /// names share that inode, as the copy links them.
    by_source: HashMap<(u64, u64), PathBuf>,
    /// Directories (dev, ino of the merged one) known to be in the upper directory.
    copied_up: HashSet<(u64, u64)>,
}

impl Reuse {
    pub fn new(donor: &Path, merged: &Path, clamp: Option<u64>) -> std::io::Result<Reuse> {
        let donor = rustix::fs::open(
            donor,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Reuse {
            donor,
            // As /proc/self/fd shows paths.
            merged: std::fs::canonicalize(merged)?,
            clamp,
            pending: BTreeMap::new(),
            by_source: HashMap::new(),
            copied_up: HashSet::new(),
        })
    }

    /// `dir`'s path in the rootfs (None: not under the merged directory).
    fn rel_of(&self, dir: BorrowedFd<'_>) -> Option<PathBuf> {
        let p = std::fs::read_link(format!("/proc/self/fd/{}", dir.as_raw_fd())).ok()?;
        p.strip_prefix(&self.merged).ok().map(Path::to_path_buf)
    }

    /// Makes `dir` (merged) present in the upper directory, as a create in it would:
    /// a chown to the same owner copies a lower directory up, metadata unchanged.
    fn copy_up(&mut self, dir: BorrowedFd<'_>) -> std::io::Result<()> {
        let st = rustix::fs::fstat(dir)?;
        if self.copied_up.insert((st.st_dev, st.st_ino)) {
            // By AT_EMPTY_PATH: `dir` may be an O_PATH fd, which fchown refuses.
            rustix::fs::chownat(dir, "", None, None, AtFlags::EMPTY_PATH)?;
        }
        Ok(())
    }

    /// Whether the earlier layer's `rel` is what copying `src` would make.
    fn identical(
        &self,
        rel: &Path,
        src: BorrowedFd<'_>,
        st: &Stat,
        ids: (u32, u32),
    ) -> std::io::Result<bool> {
        let d = match open_beneath(self.donor.as_fd(), rel, OFlags::RDONLY) {
            Ok(d) => d,
            Err(_) => return Ok(false),
        };
        let ds = rustix::fs::fstat(&d)?;
        let (mtime, nsec) = match self.clamp {
            Some(c) if st.st_mtime < 0 || st.st_mtime as u64 > c => (c as i64, 0),
            _ => (st.st_mtime, st.st_mtime_nsec),
        };
        if FileType::from_raw_mode(ds.st_mode) != FileType::RegularFile
            || ds.st_size != st.st_size
            || (ds.st_uid, ds.st_gid) != ids
            || ds.st_mode & 0o7777 != st.st_mode & 0o7777
            || (ds.st_mtime, ds.st_mtime_nsec) != (mtime, nsec)
        {
            return Ok(false);
        }
        let mut names = [0u8; 256];
        if rustix::fs::flistxattr(&d, &mut names).map_or(true, |n| n > 0) {
            return Ok(false);
        }
        same_bytes(src, d.as_fd(), st.st_size as u64)
    }

    /// Links every shared file into `upper` (the overlay unmounted); returns how many.
    pub fn link_into(self, upper: &Path) -> std::io::Result<usize> {
        let up = rustix::fs::open(
            upper,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let n = self.pending.len();
        for (rel, from) in &self.pending {
            let (Some(name), Some(fname)) = (rel.file_name(), from.file_name()) else {
                continue;
            };
            let at = |e: rustix::io::Errno| {
                std::io::Error::new(
                    std::io::Error::from(e).kind(),
                    format!("link {} from the earlier layer: {e}", rel.display()),
                )
            };
            let dir = open_beneath(
                up.as_fd(),
                rel.parent().unwrap_or(Path::new("")),
                OFlags::PATH | OFlags::DIRECTORY,
            )
            .map_err(at)?;
            let src = open_beneath(
                self.donor.as_fd(),
                from.parent().unwrap_or(Path::new("")),
                OFlags::PATH | OFlags::DIRECTORY,
            )
            .map_err(at)?;
            let st = rustix::fs::statat(&src, fname, AtFlags::SYMLINK_NOFOLLOW).map_err(at)?;
            if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
                return Err(at(rustix::io::Errno::INVAL));
            }
            // An earlier source of this copy placed at the same path gives way, as the
            // copy itself replaces it.
            match rustix::fs::unlinkat(&dir, name, AtFlags::empty()) {
                Ok(()) | Err(rustix::io::Errno::NOENT) => {}
                Err(e) => return Err(at(e)),
            }
            rustix::fs::linkat(&src, fname, &dir, name, AtFlags::empty()).map_err(at)?;
        }
        Ok(n)
    }
}

/// Whether the first `len` bytes of `a` and `b` are the same (read from offset 0, so
/// the copy can still read `a` from its start).
fn same_bytes(a: BorrowedFd<'_>, b: BorrowedFd<'_>, len: u64) -> std::io::Result<bool> {
    let (mut x, mut y) = (vec![0u8; 64 << 10], vec![0u8; 64 << 10]);
    let mut off = 0u64;
    while off < len {
        let want = ((len - off) as usize).min(x.len());
        let n = read_full(a, &mut x[..want], off)?;
        let m = read_full(b, &mut y[..want], off)?;
        if n != want || m != want || x[..n] != y[..m] {
            return Ok(false);
        }
        off += n as u64;
    }
    Ok(true)
}

fn read_full(fd: BorrowedFd<'_>, buf: &mut [u8], off: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match rustix::io::pread(fd, &mut buf[done..], off + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(done)
}

impl Place for Reuse {
    fn file(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        src: BorrowedFd<'_>,
        st: &Stat,
        ids: Option<(u32, u32)>,
    ) -> std::io::Result<bool> {
        let Some(rel) = self.rel_of(dir).map(|d| d.join(name)) else {
            return Ok(false);
        };
        self.pending.remove(&rel);
        let Some(ids) = ids else {
            return Ok(false);
        };
        // A directory there: the copy's own error.
        if let Ok(t) = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            if FileType::from_raw_mode(t.st_mode) == FileType::Directory {
                return Ok(false);
            }
        }
        let key = (st.st_dev, st.st_ino);
        let from = match self.by_source.get(&key) {
            Some(from) if st.st_nlink > 1 => from.clone(),
            _ => {
                if !self.identical(&rel, src, st, ids)? {
                    return Ok(false);
                }
                if st.st_nlink > 1 {
                    self.by_source.insert(key, rel.clone());
                }
                rel.clone()
            }
        };
        self.copy_up(dir)?;
        self.pending.insert(rel, from);
        Ok(true)
    }

    fn other(&mut self, dir: BorrowedFd<'_>, name: &OsStr, is_dir: bool) -> std::io::Result<()> {
        let Some(rel) = self.rel_of(dir).map(|d| d.join(name)) else {
            return Ok(());
        };
        if self.pending.remove(&rel).is_none() || !is_dir {
            return Ok(());
        }
        // The copy must meet the file it would have made there, and fail on it as it
        // does: a directory never replaces a file.
        match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(rustix::io::Errno::NOENT) => {
                rustix::fs::openat(
                    dir,
                    name,
                    OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )?;
            }
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        Ok(())
    }
}
