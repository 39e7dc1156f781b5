//! Safe layer unpacking into a layer directory used as an overlayfs lowerdir.
//!
//! Every entry is created relative to a directory fd that was resolved with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` inside the layer directory, so no
//! name, symlink or hardlink can reach outside it. Metadata is applied through fds of the
//! object we created (or `*at(AT_SYMLINK_NOFOLLOW)` for symlinks), never through a path.
//! Whiteouts become overlayfs whiteouts (char 0:0) and opaque markers
//! `trusted.overlay.opaque=y`.

use crate::error::{Error, Result};
use berth_registry::manifest::Compression;
use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use sha2::{Digest as _, Sha256};
use std::cell::Cell;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};
use std::rc::Rc;

/// Limits and policy for one layer.
#[derive(Debug, Clone)]
pub struct UnpackOptions {
    /// Create block/char device nodes (other than whiteouts). Off by default.
    pub allow_devices: bool,
    /// Most uncompressed bytes a layer may expand to.
    pub max_size: u64,
    /// Most uncompressed/compressed ratio, checked once `ratio_grace` bytes are out.
    pub max_ratio: u64,
    pub ratio_grace: u64,
    /// Most tar entries in one layer.
    pub max_entries: u64,
    /// Most opaque-whiteout markers in one layer.
    pub max_opaque: u64,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        UnpackOptions {
            allow_devices: false,
            max_size: 64 << 30,
            max_ratio: 1000,
            ratio_grace: 64 << 20,
            max_entries: 2_000_000,
            max_opaque: 65_536,
        }
    }
}

/// What unpacking produced.
#[derive(Debug, Clone)]
pub struct Unpacked {
    /// sha256 of the uncompressed tar stream.
    pub diff_id: String,
    pub entries: u64,
    pub uncompressed: u64,
}

/// Counts bytes read from the compressed source.
struct Counting<R> {
    inner: R,
    n: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(b)?;
        self.n.set(self.n.get() + k as u64);
        Ok(k)
    }
}

/// Hashes the uncompressed stream and enforces the bomb limits.
struct Guard<R> {
    inner: R,
    compressed: Rc<Cell<u64>>,
    out: u64,
    hasher: Sha256,
    opts: UnpackOptions,
    tripped: Rc<Cell<bool>>,
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(b)?;
        self.out += k as u64;
        self.hasher.update(&b[..k]);
        let c = self.compressed.get().max(1);
        if self.out > self.opts.max_size
            || (self.out > self.opts.ratio_grace && self.out / c > self.opts.max_ratio)
        {
            self.tripped.set(true);
            return Err(io::Error::other("decompression bound exceeded"));
        }
        Ok(k)
    }
}

/// Most bytes of a PAX or GNU long-name/long-link header. The tar crate reads these into
/// memory whole, so a layer could otherwise declare a multi-gigabyte one (Go's archive/tar
/// has the same 1 MiB bound).
pub const MAX_SPECIAL_HEADER: u64 = 1 << 20;

/// Watches the tar block structure as it passes (without changing it) and refuses special
/// headers larger than [`MAX_SPECIAL_HEADER`].
struct TarBound<R> {
    inner: R,
    header: Vec<u8>,
    /// Data bytes (padded to 512) still to pass before the next header.
    skip: u64,
    /// Capturing a local PAX header's data, to learn a `size` override for the next entry.
    pax: Option<Vec<u8>>,
    pax_size: Option<u64>,
    /// Inside old-GNU sparse extension blocks (they follow an 'S' header, no data).
    sparse_ext: bool,
    pending_skip: u64,
    tripped: Rc<Cell<bool>>,
}

fn octal_or_base256(f: &[u8]) -> Option<u64> {
    if f.first().is_some_and(|b| b & 0x80 != 0) {
        let mut v: u64 = u64::from(f[0] & 0x7f);
        for b in &f[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(*b))?;
        }
        return Some(v);
    }
    let t: Vec<u8> = f
        .iter()
        .copied()
        .skip_while(|c| *c == b' ')
        .take_while(|c| (b'0'..=b'7').contains(c))
        .collect();
    if t.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(std::str::from_utf8(&t).ok()?, 8).ok()
}

fn pax_size(data: &[u8]) -> Option<u64> {
    for rec in tar::PaxExtensions::new(data).flatten() {
        if rec.key_bytes() == b"size" {
            return rec.value().ok()?.parse().ok();
        }
    }
    None
}

impl<R: Read> TarBound<R> {
    fn observe(&mut self, mut b: &[u8]) -> io::Result<()> {
        while !b.is_empty() {
            if self.skip > 0 {
                let n = (self.skip.min(b.len() as u64)) as usize;
                if let Some(p) = &mut self.pax {
                    p.extend_from_slice(&b[..n]);
                }
                self.skip -= n as u64;
                b = &b[n..];
                if self.skip == 0 {
                    if let Some(p) = self.pax.take() {
                        self.pax_size = pax_size(&p);
                    }
                }
                continue;
            }
            let n = (512 - self.header.len()).min(b.len());
            self.header.extend_from_slice(&b[..n]);
            b = &b[n..];
            if self.header.len() < 512 {
                continue;
            }
            let h = std::mem::take(&mut self.header);
            if self.sparse_ext {
                self.sparse_ext = h[504] != 0;
                if !self.sparse_ext {
                    self.skip = std::mem::take(&mut self.pending_skip);
                }
                continue;
            }
            if h.iter().all(|c| *c == 0) {
                continue;
            }
            let kind = h[156];
            let declared = octal_or_base256(&h[124..136]).unwrap_or(0);
            let special = matches!(kind, b'x' | b'g' | b'L' | b'K' | b'X');
            if special && declared > MAX_SPECIAL_HEADER {
                self.tripped.set(true);
                return Err(io::Error::other("tar extended header too large"));
            }
            let size = if special {
                declared
            } else {
                self.pax_size.take().unwrap_or(declared)
            };
            // Links, dirs and devices carry no data whatever their size field says.
            let size = if matches!(kind, b'1' | b'2' | b'3' | b'4' | b'5' | b'6') {
                0
            } else {
                size
            };
            let padded = size.div_ceil(512).saturating_mul(512);
            if kind == b'S' && h[482] != 0 {
                self.sparse_ext = true;
                self.pending_skip = padded;
            } else {
                self.skip = padded;
            }
            self.pax = (kind == b'x' && size > 0).then(Vec::new);
        }
        Ok(())
    }
}

impl<R: Read> Read for TarBound<R> {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(b)?;
        self.observe(&b[..k])?;
        Ok(k)
    }
}

fn decoder<'a, R: Read + 'a>(r: R, c: Compression) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match c {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(r)?),
    })
}

/// Unpacks one layer stream into `dest` (an existing empty directory).
pub fn unpack_layer(
    src: impl Read,
    compression: Compression,
    dest: &Path,
    layer: &str,
    opts: &UnpackOptions,
) -> Result<Unpacked> {
    let compressed = Rc::new(Cell::new(0));
    let tripped = Rc::new(Cell::new(false));
    let counted = Counting {
        inner: src,
        n: compressed.clone(),
    };
    let dec = decoder(counted, compression).map_err(|e| Error::io(dest, e))?;
    let guard = Guard {
        inner: dec,
        compressed: compressed.clone(),
        out: 0,
        hasher: Sha256::new(),
        opts: opts.clone(),
        tripped: tripped.clone(),
    };
    let header_tripped = Rc::new(Cell::new(false));
    let bounded = TarBound {
        inner: guard,
        header: Vec::with_capacity(512),
        skip: 0,
        pax: None,
        pax_size: None,
        sparse_ext: false,
        pending_skip: 0,
        tripped: header_tripped.clone(),
    };
    let root = rfs::open(
        dest,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io(dest, e.into()))?;
    let mut u = Unpacker {
        root,
        layer: layer.to_string(),
        opts: opts.clone(),
        opaque: 0,
        dirs: Vec::new(),
    };
    let mut archive = tar::Archive::new(bounded);
    let bomb = || Error::Unsafe {
        layer: layer.to_string(),
        reason: format!(
            "decompression bomb: output exceeds {} bytes or ratio {}:1",
            opts.max_size, opts.max_ratio
        ),
    };
    let mut entries = 0u64;
    let result = (|| -> Result<()> {
        let it = archive.entries().map_err(|e| Error::io(dest, e))?;
        for e in it {
            let mut e = e.map_err(|e| Error::Entry {
                layer: layer.into(),
                entry: "<header>".into(),
                source: e,
            })?;
            entries += 1;
            if entries > opts.max_entries {
                return Err(u.unsafe_(format!("more than {} entries", opts.max_entries)));
            }
            u.entry(&mut e)?;
        }
        Ok(())
    })();
    if tripped.get() {
        return Err(bomb());
    }
    if header_tripped.get() {
        return Err(Error::Unsafe {
            layer: layer.to_string(),
            reason: format!("a PAX or GNU long-name header exceeds {MAX_SPECIAL_HEADER} bytes"),
        });
    }
    result?;
    // Trailing padding after the end-of-archive blocks is part of the diffID.
    let mut guard = archive.into_inner().inner;
    io::copy(&mut guard, &mut io::sink()).map_err(|e| {
        if tripped.get() {
            bomb()
        } else {
            Error::io(dest, e)
        }
    })?;
    u.finish_dirs();
    Ok(Unpacked {
        diff_id: format!("sha256:{}", hex::encode(guard.hasher.finalize())),
        entries,
        uncompressed: guard.out,
    })
}

struct Unpacker {
    root: OwnedFd,
    layer: String,
    opts: UnpackOptions,
    opaque: u64,
    /// Directories whose times are set last (creating children changes them).
    dirs: Vec<(OsString, i64)>,
}

/// Splits an entry name into clean components: leading `/` and `.` are dropped, `..` refused.
fn clean(p: &Path) -> std::result::Result<Vec<OsString>, String> {
    let mut out = Vec::new();
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => return Err(format!("{:?} contains \"..\"", p)),
            Component::Normal(n) => out.push(n.to_os_string()),
            Component::Prefix(_) => return Err(format!("{:?} has a prefix", p)),
        }
    }
    Ok(out)
}

fn join(c: &[OsString]) -> OsString {
    let mut s = OsString::new();
    for (i, p) in c.iter().enumerate() {
        if i > 0 {
            s.push("/");
        }
        s.push(p);
    }
    if s.is_empty() {
        s.push(".");
    }
    s
}

const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

impl Unpacker {
    fn unsafe_(&self, reason: String) -> Error {
        Error::Unsafe {
            layer: self.layer.clone(),
            reason,
        }
    }

    fn ioerr(&self, entry: &OsStr, e: impl Into<io::Error>) -> Error {
        Error::Entry {
            layer: self.layer.clone(),
            entry: entry.to_string_lossy().into(),
            source: e.into(),
        }
    }

    /// Opens (creating missing components 0755) a directory inside the root.
    fn ensure_dir(&self, comps: &[OsString]) -> Result<OwnedFd> {
        let path = join(comps);
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        match rfs::openat2(&self.root, &path, flags, Mode::empty(), RESOLVE) {
            Ok(fd) => Ok(fd),
            Err(Errno::NOENT) if !comps.is_empty() => {
                let parent = self.ensure_dir(&comps[..comps.len() - 1])?;
                let last = &comps[comps.len() - 1];
                match rfs::mkdirat(&parent, last, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(self.ioerr(&path, e)),
                }
                rfs::openat2(&self.root, &path, flags, Mode::empty(), RESOLVE)
                    .map_err(|e| self.ioerr(&path, e))
            }
            Err(e) => Err(self.ioerr(&path, e)),
        }
    }

    fn entry<R: Read>(&mut self, e: &mut tar::Entry<R>) -> Result<()> {
        let raw = e
            .path()
            .map_err(|er| self.ioerr(OsStr::new("<name>"), er))?
            .into_owned();
        let comps = clean(&raw).map_err(|r| self.unsafe_(r))?;
        let kind = e.header().entry_type();
        let display = raw.as_os_str().to_os_string();

        let Some((name, parent)) = comps.split_last() else {
            // The root itself: only a directory may describe it (umoci CVE-2021-29136).
            if !kind.is_dir() {
                return Err(self.unsafe_(format!("root entry {:?} is not a directory", raw)));
            }
            let fd = rfs::openat(
                &self.root,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|er| self.ioerr(&display, er))?;
            return self.apply_meta(&fd, e, &display);
        };

        let nb = name.as_bytes();
        if let Some(target) = nb.strip_prefix(b".wh.") {
            let pfd = self.ensure_dir(parent)?;
            if target == b".wh..opq" {
                self.opaque += 1;
                if self.opaque > self.opts.max_opaque {
                    return Err(self.unsafe_(format!(
                        "more than {} opaque whiteouts",
                        self.opts.max_opaque
                    )));
                }
                return rfs::fsetxattr(
                    &pfd,
                    "trusted.overlay.opaque",
                    b"y",
                    rfs::XattrFlags::empty(),
                )
                .map_err(|er| self.ioerr(&display, er));
            }
            if target.starts_with(b".wh.") {
                // aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): no meaning for overlay.
                return Ok(());
            }
            if target.is_empty() || target == b"." || target == b".." {
                return Err(self.unsafe_(format!("invalid whiteout {:?}", raw)));
            }
            let t = OsStr::from_bytes(target);
            self.remove_at(&pfd, t, &display)?;
            return rfs::mknodat(
                &pfd,
                t,
                FileType::CharacterDevice,
                Mode::empty(),
                rfs::makedev(0, 0),
            )
            .map_err(|er| self.ioerr(&display, er));
        }

        let pfd = self.ensure_dir(parent)?;
        let existing = rfs::statat(&pfd, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW).ok();
        let existing_dir = existing
            .as_ref()
            .map(|s| FileType::from_raw_mode(s.st_mode) == FileType::Directory)
            .unwrap_or(false);
        if existing.is_some() && !(kind.is_dir() && existing_dir) && !kind.is_hard_link() {
            self.remove_at(&pfd, name, &display)?;
        }
        let header = e.header().clone();
        let mode =
            Mode::from_raw_mode(header.mode().map_err(|er| self.ioerr(&display, er))? & 0o7777);
        use tar::EntryType as T;
        match kind {
            T::Regular | T::Continuous | T::GNUSparse => {
                let fd = rfs::openat(
                    &pfd,
                    name.as_os_str(),
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|er| self.ioerr(&display, er))?;
                // A large buffer: io::copy would otherwise write in 8 KiB pieces.
                let cap = (header.size().unwrap_or(0) as usize).clamp(8 << 10, 1 << 20);
                let mut w = io::BufWriter::with_capacity(cap, std::fs::File::from(fd));
                io::copy(e, &mut w).map_err(|er| self.ioerr(&display, er))?;
                let f = w
                    .into_inner()
                    .map_err(|er| self.ioerr(&display, er.into_error()))?;
                // Metadata last: writing would clear set-id bits and change mtime.
                self.apply_meta(&f, e, &display)?;
            }
            T::Directory => {
                if !existing_dir {
                    rfs::mkdirat(&pfd, name.as_os_str(), Mode::from_raw_mode(0o700))
                        .map_err(|er| self.ioerr(&display, er))?;
                }
                let fd = rfs::openat(
                    &pfd,
                    name.as_os_str(),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|er| self.ioerr(&display, er))?;
                self.apply_meta(&fd, e, &display)?;
                self.dirs
                    .push((join(&comps), header.mtime().unwrap_or(0) as i64));
            }
            T::Symlink => {
                let target = e
                    .link_name()
                    .map_err(|er| self.ioerr(&display, er))?
                    .ok_or_else(|| self.unsafe_(format!("symlink {:?} has no target", raw)))?;
                rfs::symlinkat(target.as_os_str(), &pfd, name.as_os_str())
                    .map_err(|er| self.ioerr(&display, er))?;
                let (u, g) = owner(&header);
                rfs::chownat(
                    &pfd,
                    name.as_os_str(),
                    Some(u),
                    Some(g),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(|er| self.ioerr(&display, er))?;
                let ts = times(header.mtime().unwrap_or(0) as i64);
                rfs::utimensat(&pfd, name.as_os_str(), &ts, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|er| self.ioerr(&display, er))?;
            }
            T::Link => {
                let target = e
                    .link_name()
                    .map_err(|er| self.ioerr(&display, er))?
                    .ok_or_else(|| self.unsafe_(format!("hardlink {:?} has no target", raw)))?;
                // Absolute targets mean "inside the root" (kaniko writes them); ".." is refused.
                let tcomps =
                    clean(&target).map_err(|r| self.unsafe_(format!("hardlink target {r}")))?;
                if tcomps.is_empty() {
                    return Err(self.unsafe_(format!("hardlink {:?} points at the root", raw)));
                }
                if tcomps == comps {
                    return Ok(());
                }
                let tfd = rfs::openat2(
                    &self.root,
                    join(&tcomps),
                    OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                    RESOLVE,
                )
                .map_err(|er| self.ioerr(&display, er))?;
                let st = rfs::fstat(&tfd).map_err(|er| self.ioerr(&display, er))?;
                if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                    return Err(self.unsafe_(format!("hardlink {:?} to a directory", raw)));
                }
                if existing.is_some() {
                    self.remove_at(&pfd, name, &display)?;
                }
                rfs::linkat(&tfd, "", &pfd, name.as_os_str(), AtFlags::EMPTY_PATH)
                    .map_err(|er| self.ioerr(&display, er))?;
            }
            T::Char | T::Block | T::Fifo => {
                let (ft, dev) = match kind {
                    T::Fifo => (FileType::Fifo, 0),
                    _ => {
                        if !self.opts.allow_devices {
                            return Err(
                                self.unsafe_(format!("device node {:?} is not allowed", raw))
                            );
                        }
                        let maj = header.device_major().ok().flatten().unwrap_or(0);
                        let min = header.device_minor().ok().flatten().unwrap_or(0);
                        let ft = if kind == T::Char {
                            FileType::CharacterDevice
                        } else {
                            FileType::BlockDevice
                        };
                        (ft, rfs::makedev(maj, min))
                    }
                };
                rfs::mknodat(&pfd, name.as_os_str(), ft, Mode::from_raw_mode(0o600), dev)
                    .map_err(|er| self.ioerr(&display, er))?;
                // Opening a device could have side effects: hold it by O_PATH and change it
                // through the fd's /proc link, which names exactly this inode.
                let fd = rfs::openat(
                    &pfd,
                    name.as_os_str(),
                    OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|er| self.ioerr(&display, er))?;
                let (u, g) = owner(&header);
                rfs::chownat(&fd, "", Some(u), Some(g), AtFlags::EMPTY_PATH)
                    .map_err(|er| self.ioerr(&display, er))?;
                let proc = format!(
                    "/proc/thread-self/fd/{}",
                    std::os::fd::AsRawFd::as_raw_fd(&fd)
                );
                rfs::chmod(proc.as_str(), mode).map_err(|er| self.ioerr(&display, er))?;
            }
            other => {
                return Err(
                    self.unsafe_(format!("entry {:?} has unsupported type {:?}", raw, other))
                );
            }
        }
        Ok(())
    }

    /// Owner, mode, xattrs and mtime through the object's own fd.
    fn apply_meta<R: Read>(
        &self,
        fd: &impl AsFd,
        e: &mut tar::Entry<R>,
        display: &OsStr,
    ) -> Result<()> {
        let h = e.header();
        let (u, g) = owner(h);
        let mode = Mode::from_raw_mode(h.mode().map_err(|er| self.ioerr(display, er))? & 0o7777);
        let mtime = h.mtime().unwrap_or(0) as i64;
        let is_dir = h.entry_type().is_dir();
        rfs::fchown(fd, Some(u), Some(g)).map_err(|er| self.ioerr(display, er))?;
        // After chown, which clears set-id bits.
        rfs::fchmod(fd, mode).map_err(|er| self.ioerr(display, er))?;
        if let Some(exts) = e.pax_extensions().map_err(|er| self.ioerr(display, er))? {
            for ext in exts {
                let ext = ext.map_err(|er| self.ioerr(display, er))?;
                let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") else {
                    continue;
                };
                if name.starts_with(b"trusted.overlay.") {
                    return Err(self.unsafe_(format!(
                        "{:?} carries overlay xattr {}",
                        display,
                        String::from_utf8_lossy(name)
                    )));
                }
                if name == b"security.selinux" {
                    continue; // labels are the host's policy, not the image's
                }
                rfs::fsetxattr(
                    fd,
                    OsStr::from_bytes(name),
                    ext.value_bytes(),
                    rfs::XattrFlags::empty(),
                )
                .map_err(|er| self.ioerr(display, er))?;
            }
        }
        if !is_dir {
            rfs::futimens(fd, &times(mtime)).map_err(|er| self.ioerr(display, er))?;
        }
        Ok(())
    }

    /// Removes `name` under `parent` (recursively, never following symlinks).
    fn remove_at(&self, parent: &OwnedFd, name: &OsStr, display: &OsStr) -> Result<()> {
        remove_all_at(parent, name).map_err(|er| self.ioerr(display, er))
    }

    fn finish_dirs(&mut self) {
        for (p, mtime) in std::mem::take(&mut self.dirs).into_iter().rev() {
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            if let Ok(fd) = rfs::openat2(
                &self.root,
                &p,
                flags,
                Mode::empty(),
                RESOLVE | ResolveFlags::NO_SYMLINKS,
            ) {
                let _ = rfs::futimens(&fd, &times(mtime));
            }
        }
    }
}

fn owner(h: &tar::Header) -> (rfs::Uid, rfs::Gid) {
    // Numeric ids only: names would mean NSS lookups.
    let u = h.uid().unwrap_or(0).min(u32::MAX as u64 - 1) as u32;
    let g = h.gid().unwrap_or(0).min(u32::MAX as u64 - 1) as u32;
    (rfs::Uid::from_raw(u), rfs::Gid::from_raw(g))
}

fn times(mtime: i64) -> rfs::Timestamps {
    let t = rfs::Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    rfs::Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// `rm -rf parent/name` through fds only.
pub fn remove_all_at(parent: &impl AsFd, name: &OsStr) -> io::Result<()> {
    let st = match rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(s) => s,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        let dfd = rfs::openat(
            parent,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut names = Vec::new();
        for ent in rfs::Dir::read_from(&dfd)? {
            let ent = ent?;
            let n = ent.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(OsStr::from_bytes(n).to_os_string());
            }
        }
        for n in names {
            remove_all_at(&dfd, &n)?;
        }
        rfs::unlinkat(parent, name, AtFlags::REMOVEDIR)?;
    } else {
        rfs::unlinkat(parent, name, AtFlags::empty())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unpack_bytes(tar: &[u8]) -> (tempfile::TempDir, Result<Unpacked>) {
        let d = tempfile::tempdir().unwrap();
        let r = unpack_layer(
            tar,
            Compression::None,
            d.path(),
            "t",
            &UnpackOptions::default(),
        );
        (d, r)
    }

    #[test]
    fn long_names_and_pax_pass_the_header_bound() {
        let mut b = tar::Builder::new(Vec::new());
        let long = format!("{}/{}/f", "d".repeat(150), "e".repeat(150));
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, &long, &b"abc"[..]).unwrap();
        // Large but allowed PAX data (a comment), with an xattr.
        let big = vec![b'v'; 900_000];
        b.append_pax_extensions([
            ("comment", big.as_slice()),
            ("SCHILY.xattr.user.k", b"v".as_slice()),
        ])
        .unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, "x", &b"xy"[..]).unwrap();
        let (d, r) = unpack_bytes(&b.into_inner().unwrap());
        r.unwrap();
        assert_eq!(std::fs::read(d.path().join(&long)).unwrap(), b"abc");
        assert_eq!(std::fs::read(d.path().join("x")).unwrap(), b"xy");
    }

    #[test]
    fn huge_pax_header_refused() {
        for kind in [b'x', b'L'] {
            let mut h = tar::Header::new_ustar();
            h.set_size(MAX_SPECIAL_HEADER + 1);
            h.set_entry_type(tar::EntryType::new(kind));
            h.set_cksum();
            let mut v = h.as_bytes().to_vec();
            v.extend(std::iter::repeat_n(
                b'a',
                (MAX_SPECIAL_HEADER + 1024) as usize,
            ));
            let (_d, r) = unpack_bytes(&v);
            assert!(
                matches!(r, Err(Error::Unsafe { ref reason, .. }) if reason.contains("header")),
                "{r:?}"
            );
        }
    }

    #[test]
    fn gnu_sparse_archive_from_system_tar() {
        // Many holes force old-GNU sparse extension headers.
        let Ok(_) = std::process::Command::new("tar").arg("--version").output() else {
            return;
        };
        let src = tempfile::tempdir().unwrap();
        let f = std::fs::File::create(src.path().join("sparse")).unwrap();
        use std::os::unix::fs::FileExt;
        for i in 0..40u64 {
            f.write_all_at(b"data", i * 1_000_000).unwrap();
        }
        std::fs::write(src.path().join("after"), b"after").unwrap();
        let out = src.path().join("s.tar");
        let st = std::process::Command::new("tar")
            .args(["--format=gnu", "--sparse", "-cf"])
            .arg(&out)
            .arg("-C")
            .arg(src.path())
            .args(["sparse", "after"])
            .status()
            .unwrap();
        assert!(st.success());
        let data = std::fs::read(&out).unwrap();
        assert!(data.len() < 1_000_000, "tar did not write a sparse archive");
        let (d, r) = unpack_bytes(&data);
        r.unwrap();
        let got = std::fs::read(d.path().join("sparse")).unwrap();
        assert_eq!(got.len(), 39_000_004);
        assert_eq!(&got[39_000_000..], b"data");
        assert_eq!(std::fs::read(d.path().join("after")).unwrap(), b"after");
    }

    #[test]
    fn clean_paths() {
        assert_eq!(
            clean(Path::new("/a/./b/")).unwrap(),
            vec![OsString::from("a"), "b".into()]
        );
        assert!(clean(Path::new("a/../../b")).is_err());
        assert!(clean(Path::new("./")).unwrap().is_empty());
    }
}
