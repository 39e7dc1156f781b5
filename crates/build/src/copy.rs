//! COPY and ADD: their sources gathered into a private tree (wildcards expanded,
//! `--chmod` applied, local tars unpacked with the image-layer rules), hashed for the
//! cache, then copied into the rootfs. Sources resolve inside their root (the staged
//! context or another stage's rootfs) and the destination inside the image's rootfs,
//! both with `RESOLVE_IN_ROOT` (berth_engine::cp).

use crate::context::{open_in, resolve_in};
use crate::error::{BuildError, Result};
use berth_engine::cp::{self, CopyOptions, Owner, Side};
use rustix::fs::{Mode, OFlags};
use sha2::{Digest as _, Sha256};
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// filepath.Match: `*`, `?`, `[...]` (with `^`/`!` and ranges) and `\` escapes, within
/// one path element.
pub fn glob_match(pat: &str, name: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let n: Vec<char> = name.chars().collect();
    fn class(p: &[char], c: char) -> Option<(bool, usize)> {
        // p starts after '['; returns (matched, chars consumed including ']').
        let mut i = 0;
        let neg = matches!(p.first(), Some('^') | Some('!'));
        if neg {
            i += 1;
        }
        let mut hit = false;
        let mut first = true;
        while i < p.len() {
            if p[i] == ']' && !first {
                return Some((hit != neg, i + 1));
            }
            first = false;
            let mut lo = p[i];
            if lo == '\\' {
                i += 1;
                lo = *p.get(i)?;
            }
            let mut hi = lo;
            if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|x| *x != ']') {
                hi = p[i + 2];
                if hi == '\\' {
                    hi = *p.get(i + 3)?;
                    i += 1;
                }
                i += 2;
            }
            if lo <= c && c <= hi {
                hit = true;
            }
            i += 1;
        }
        None
    }
    fn m(p: &[char], n: &[char]) -> bool {
        if p.is_empty() {
            return n.is_empty();
        }
        match p[0] {
            '*' => (0..=n.len()).any(|k| m(&p[1..], &n[k..])),
            '?' => !n.is_empty() && m(&p[1..], &n[1..]),
            '[' => match (n.first(), class(&p[1..], *n.first().unwrap_or(&'\0'))) {
                (Some(_), Some((true, used))) => m(&p[1 + used..], &n[1..]),
                _ => false,
            },
            '\\' if p.len() > 1 => !n.is_empty() && n[0] == p[1] && m(&p[2..], &n[1..]),
            c => !n.is_empty() && n[0] == c && m(&p[1..], &n[1..]),
        }
    }
    m(&p, &n)
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Path elements of `p` inside a root (`..` never climbs above it).
fn elements(p: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(s) => out.push(s.to_string_lossy().into_owned()),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Names in directory `rel` of `root` (resolved in root), sorted.
fn list_dir(root: BorrowedFd<'_>, rel: &Path) -> Vec<String> {
    let Ok(fd) = open_in(root, rel, OFlags::RDONLY | OFlags::DIRECTORY) else {
        return vec![];
    };
    let Ok(dir) = rustix::fs::Dir::read_from(&fd) else {
        return vec![];
    };
    let mut v: Vec<String> = dir
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "." && n != "..")
        .collect();
    v.sort();
    v
}

/// The paths (relative to the root) a source names: itself, or what its wildcards
/// match, sorted. Empty when nothing matches.
pub fn expand_source(root: BorrowedFd<'_>, src: &str) -> Vec<PathBuf> {
    let els = elements(src);
    if !has_glob(src) {
        let p: PathBuf = els.iter().collect();
        return if resolve_in(root, &p, false).is_ok() {
            vec![p]
        } else {
            vec![]
        };
    }
    let mut found = vec![PathBuf::new()];
    for e in &els {
        let mut next = Vec::new();
        for base in &found {
            if has_glob(e) {
                for n in list_dir(root, base) {
                    if glob_match(e, &n) {
                        next.push(base.join(n));
                    }
                }
            } else {
                let p = base.join(e);
                if resolve_in(root, &p, false).is_ok() {
                    next.push(p);
                }
            }
        }
        found = next;
    }
    found
}

/// Opens regular file `rel` of `root` for reading, resolved inside the root.
pub fn open_in_root(root: BorrowedFd<'_>, rel: &Path) -> std::io::Result<std::fs::File> {
    let fd = open_in(root, rel, OFlags::RDONLY | OFlags::NONBLOCK)?;
    let st = rustix::fs::fstat(&fd)?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(std::io::ErrorKind::InvalidInput.into());
    }
    Ok(std::fs::File::from(fd))
}

/// Makes directory `path` (absolute in the rootfs) and its missing parents, 0755,
/// resolving every step inside `root`.
pub fn mkdir_in_root(root: BorrowedFd<'_>, path: &Path, owner: Option<(u32, u32)>) -> Result<()> {
    let els = elements(&path.to_string_lossy());
    let mut cur = PathBuf::new();
    for e in els {
        let parent = cur.clone();
        cur.push(&e);
        match resolve_in(root, &cur, true) {
            Ok(_) => continue,
            Err(err) if err.raw_os_error() == Some(rustix::io::Errno::NOTDIR.raw_os_error()) => {
                return Err(BuildError::Invalid(format!(
                    "cannot create directory /{}: a file is in the way",
                    cur.display()
                )))
            }
            Err(_) => {}
        }
        let pfd = open_in(root, &parent, OFlags::RDONLY | OFlags::DIRECTORY)
            .map_err(|x| BuildError::Io(PathBuf::from("/").join(&parent), x.into()))?;
        match rustix::fs::mkdirat(&pfd, e.as_str(), Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(x) => return Err(BuildError::Io(PathBuf::from("/").join(&cur), x.into())),
        }
        // mkdirat obeys the umask: the mode is set again.
        let _ = rustix::fs::chmodat(
            &pfd,
            e.as_str(),
            Mode::from_raw_mode(0o755),
            rustix::fs::AtFlags::empty(),
        );
        if let Some((u, g)) = owner {
            let _ = rustix::fs::chownat(
                &pfd,
                e.as_str(),
                Some(rustix::process::Uid::from_raw(u)),
                Some(rustix::process::Gid::from_raw(g)),
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            );
        }
    }
    Ok(())
}

/// Whether `path` (absolute in the rootfs) is a directory there.
pub fn is_dir_in_root(root: BorrowedFd<'_>, path: &Path) -> bool {
    let els = elements(&path.to_string_lossy());
    let p: PathBuf = els.iter().collect();
    resolve_in(root, &p, true).is_ok()
}

/// Copies `rel` of `root` into the host path `to` (a missing path: made; an existing
/// directory: with `/.` in `rel`, its contents merged).
pub fn copy_from_root(
    root: BorrowedFd<'_>,
    rel: &Path,
    to: &Path,
    owner: Owner,
) -> Result<berth_engine::cp::Report> {
    let src = PathBuf::from("/").join(rel);
    let opts = CopyOptions {
        follow_link: true,
        owner,
    };
    Ok(cp::copy(
        Side::container(root, &src),
        Side::host(to),
        &opts,
    )?)
}

/// Copies host directory `from`'s contents into `dest` (absolute) of the rootfs `root`.
pub fn copy_into_root(
    from: &Path,
    root: BorrowedFd<'_>,
    dest: &Path,
    owner: Owner,
) -> Result<berth_engine::cp::Report> {
    let mut s = from.as_os_str().to_os_string();
    s.push("/.");
    let src = PathBuf::from(s);
    let opts = CopyOptions {
        follow_link: false,
        owner,
    };
    Ok(cp::copy(
        Side::host(&src),
        Side::container(root, dest),
        &opts,
    )?)
}

/// Copies `src` of root `from` to `dst` of root `to` (both resolved in their roots), with
/// docker's rules: a `/.` source merges a directory's contents into an existing one.
/// `place` may take over some files (see `reuse`).
pub fn copy_between_roots(
    from: BorrowedFd<'_>,
    src: &Path,
    to: BorrowedFd<'_>,
    dst: &Path,
    owner: Owner,
    place: Option<&mut dyn cp::Place>,
) -> Result<berth_engine::cp::Report> {
    let opts = CopyOptions {
        follow_link: true,
        owner,
    };
    Ok(cp::copy_placing(
        Side::container(from, src),
        Side::container(to, dst),
        &opts,
        place,
    )?)
}

/// `--chmod`: octal only (as the stable Dockerfile frontend).
pub fn parse_chmod(s: &str) -> std::result::Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("invalid chmod parameter: {s:?}: use an octal mode such as 0755"))
}

/// Applies a `--chmod` mode to every entry under `dir` (not symlinks).
pub fn chmod_tree(dir: &Path, mode: u32) -> Result<()> {
    for e in std::fs::read_dir(dir).map_err(|e| BuildError::Io(dir.into(), e))? {
        let e = e.map_err(|x| BuildError::Io(dir.into(), x))?;
        let p = e.path();
        let md = std::fs::symlink_metadata(&p).map_err(|x| BuildError::Io(p.clone(), x))?;
        if md.file_type().is_symlink() {
            continue;
        }
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
            .map_err(|x| BuildError::Io(p.clone(), x))?;
        if md.is_dir() {
            chmod_tree(&p, mode)?;
        }
    }
    Ok(())
}

/// A digest of what `rel` names inside `root` (resolved there, a final symlink
/// followed as COPY follows it): paths below it, types, modes, owners (when `owners`),
/// contents and link targets, sorted; never timestamps. Reads through directory fds,
/// never following a symlink below `rel`.
pub fn hash_in_root(root: BorrowedFd<'_>, rel: &Path, owners: bool) -> Result<String> {
    use rustix::fs::{AtFlags, FileType};
    fn ioe(p: &Path, e: rustix::io::Errno) -> BuildError {
        BuildError::Io(p.to_path_buf(), e.into())
    }
    fn entry(
        h: &mut Sha256,
        fd: std::os::fd::OwnedFd,
        st: &rustix::fs::Stat,
        path: &Path,
        owners: bool,
    ) -> Result<()> {
        h.update(path.as_os_str().as_bytes());
        h.update(format!("\0{:o}", st.st_mode).as_bytes());
        if owners {
            h.update(format!(" {}:{}", st.st_uid, st.st_gid).as_bytes());
        }
        h.update([0]);
        match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => {
                let mut f = std::fs::File::from(fd);
                let mut buf = [0u8; 65536];
                loop {
                    let n = std::io::Read::read(&mut f, &mut buf)
                        .map_err(|e| BuildError::Io(path.to_path_buf(), e))?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                }
            }
            FileType::Directory => {
                let dir = rustix::fs::Dir::read_from(&fd).map_err(|e| ioe(path, e))?;
                let mut names: Vec<std::ffi::OsString> = Vec::new();
                for e in dir {
                    let e = e.map_err(|e| ioe(path, e))?;
                    let n = std::ffi::OsStr::from_bytes(e.file_name().to_bytes()).to_os_string();
                    if n != "." && n != ".." {
                        names.push(n);
                    }
                }
                names.sort();
                for n in names {
                    let p = path.join(&n);
                    let cst = rustix::fs::statat(&fd, n.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(|e| ioe(&p, e))?;
                    match FileType::from_raw_mode(cst.st_mode) {
                        FileType::Symlink => {
                            let t = rustix::fs::readlinkat(&fd, n.as_os_str(), Vec::new())
                                .map_err(|e| ioe(&p, e))?;
                            h.update(p.as_os_str().as_bytes());
                            h.update(format!("\0{:o}", cst.st_mode).as_bytes());
                            if owners {
                                h.update(format!(" {}:{}", cst.st_uid, cst.st_gid).as_bytes());
                            }
                            h.update([0]);
                            h.update(t.as_bytes());
                        }
                        FileType::RegularFile | FileType::Directory => {
                            let mut fl = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                            if FileType::from_raw_mode(cst.st_mode) == FileType::Directory {
                                fl |= OFlags::DIRECTORY;
                            } else {
                                fl |= OFlags::NONBLOCK;
                            }
                            let cfd = rustix::fs::openat(&fd, n.as_os_str(), fl, Mode::empty())
                                .map_err(|e| ioe(&p, e))?;
                            let now = rustix::fs::fstat(&cfd).map_err(|e| ioe(&p, e))?;
                            if now.st_ino != cst.st_ino {
                                return Err(BuildError::Invalid(format!(
                                    "{} changed while it was read",
                                    p.display()
                                )));
                            }
                            entry(h, cfd, &now, &p, owners)?;
                        }
                        _ => {
                            h.update(p.as_os_str().as_bytes());
                            h.update(format!("\0{:o} {}", cst.st_mode, cst.st_rdev).as_bytes());
                        }
                    }
                    h.update([0xff]);
                }
            }
            _ => {}
        }
        Ok(())
    }
    let fd = open_in(root, rel, OFlags::RDONLY | OFlags::NONBLOCK).map_err(|e| ioe(rel, e))?;
    let st = rustix::fs::fstat(&fd).map_err(|e| ioe(rel, e))?;
    let mut h = Sha256::new();
    entry(&mut h, fd, &st, Path::new(""), owners)?;
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

/// A `--chown` value: `user[:group]`, names looked up in the rootfs's /etc/passwd and
/// /etc/group (`read` gives a file of the rootfs). A user without a group gets the
/// user's primary group (a number: the same number).
pub fn parse_chown(
    spec: &str,
    read: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<(u32, u32), String> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = || read("/etc/passwd").unwrap_or_default();
    let lookup = |file: &str, name: &str, field: usize| -> Option<u32> {
        file.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&name)).then(|| f.get(field)?.parse().ok())?
        })
    };
    let (uid, primary) = match u.parse::<u32>() {
        Ok(n) => (n, n),
        Err(_) => {
            let pw = passwd();
            let uid = lookup(&pw, u, 2).ok_or_else(|| {
                format!("unable to find user {u}: no matching entries in passwd file")
            })?;
            (uid, lookup(&pw, u, 3).unwrap_or(uid))
        }
    };
    let gid = match g {
        None | Some("") => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup(&read("/etc/group").unwrap_or_default(), g, 2).ok_or_else(|| {
                format!("unable to find group {g}: no matching entries in group file")
            })?,
        },
    };
    Ok((uid, gid))
}

/// A local archive ADD unpacks: a tar, plain or compressed, as docker's
/// `archive.DetectCompression` tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Archive {
    /// Plain, gzip or zstd: what image layers are, unpacked as one.
    Layer(berth_registry::manifest::Compression),
    Bzip2,
    Xz,
}

const BZIP2_MAGIC: &[u8] = b"BZh";
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];

/// Whether `h` (an archive's first bytes, uncompressed) starts a tar, as a tar reader's
/// first header would be read: ustar or GNU magic, or an old v7 header whose checksum
/// holds.
fn is_tar(h: &[u8]) -> bool {
    if h.len() < 512 {
        return false;
    }
    if &h[257..262] == b"ustar" {
        return true;
    }
    let field = String::from_utf8_lossy(&h[148..156]);
    let Ok(sum) = u32::from_str_radix(field.trim_matches(|c: char| c == '\0' || c == ' '), 8)
    else {
        return false;
    };
    let computed: u32 = h[..512]
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(*b)
            }
        })
        .sum();
    h[0] != 0 && sum == computed
}

/// Up to `n` bytes from `r` (fewer at its end or at an error).
fn head_of(mut r: impl std::io::Read, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    let mut got = 0;
    while got < n {
        match r.read(&mut out[got..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => got += k,
        }
    }
    out.truncate(got);
    out
}

/// A writer that keeps the first 512 bytes and then refuses more (stops a decoder that
/// only writes).
struct Head(Vec<u8>);

impl std::io::Write for Head {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.0.len() >= 512 {
            return Err(std::io::Error::other("enough"));
        }
        let k = b.len().min(512 - self.0.len());
        self.0.extend_from_slice(&b[..k]);
        Ok(k)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The first 512 bytes of an xz stream, uncompressed.
fn xz_head(r: impl std::io::Read) -> Vec<u8> {
    let mut h = Head(Vec::new());
    let _ = lzma_rs::xz_decompress(&mut std::io::BufReader::new(r), &mut h);
    h.0
}

/// A local file ADD unpacks: a tar, plain or compressed (gzip, zstd, bzip2, xz), whose
/// uncompressed start is a tar header; else None (it is copied as a file). Gzip and zstd
/// are told by their magic alone, as before.
pub fn archive_kind(root: BorrowedFd<'_>, rel: &Path) -> Option<Archive> {
    use berth_registry::manifest::Compression;
    let f = open_in_root(root, rel).ok()?;
    let h = head_of(f, 512);
    let again = || open_in_root(root, rel).ok();
    if h.starts_with(&[0x1f, 0x8b]) {
        Some(Archive::Layer(Compression::Gzip))
    } else if h.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(Archive::Layer(Compression::Zstd))
    } else if h.starts_with(BZIP2_MAGIC) {
        let inner = head_of(bzip2::read::MultiBzDecoder::new(again()?), 512);
        is_tar(&inner).then_some(Archive::Bzip2)
    } else if h.starts_with(XZ_MAGIC) {
        is_tar(&xz_head(again()?)).then_some(Archive::Xz)
    } else if is_tar(&h) {
        Some(Archive::Layer(Compression::None))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn archive_kind_tells_bzip2_and_xz_tars_from_other_files() {
        use berth_registry::manifest::Compression;
        let t = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(3);
        h.set_mode(0o644);
        b.append_data(&mut h, "f", &b"abc"[..]).unwrap();
        let tar = b.into_inner().unwrap();
        let bz = |data: &[u8]| {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            std::io::Write::write_all(&mut e, data).unwrap();
            e.finish().unwrap()
        };
        let xz = |data: &[u8]| {
            let mut out = Vec::new();
            lzma_rs::xz_compress(&mut &data[..], &mut out).unwrap();
            out
        };
        let text = b"just text, not a tar\n".repeat(40);
        for (name, data) in [
            ("a.tar", tar.clone()),
            ("a.tar.bz2", bz(&tar)),
            ("a.tar.xz", xz(&tar)),
            ("t.bz2", bz(&text)),
            ("t.xz", xz(&text)),
            ("t.txt", text.clone()),
        ] {
            std::fs::write(t.path().join(name), data).unwrap();
        }
        let root = crate::context::open_root(t.path()).unwrap();
        let k = |p: &str| archive_kind(root.as_fd(), Path::new(p));
        assert_eq!(k("a.tar"), Some(Archive::Layer(Compression::None)));
        assert_eq!(k("a.tar.bz2"), Some(Archive::Bzip2));
        assert_eq!(k("a.tar.xz"), Some(Archive::Xz));
        assert_eq!(k("t.bz2"), None);
        assert_eq!(k("t.xz"), None);
        assert_eq!(k("t.txt"), None);
    }

    #[test]
    fn glob_matches_as_filepath_match() {
        assert!(glob_match("*.txt", "a.txt"));
        assert!(!glob_match("*.txt", "a.txt.bak"));
        assert!(glob_match("a?c", "abc"));
        assert!(glob_match("[a-c]x", "bx"));
        assert!(!glob_match("[^a-c]x", "bx"));
        assert!(glob_match("\\*", "*"));
        assert!(!glob_match("\\*", "a"));
    }

    #[test]
    fn chown_looks_names_up_in_the_rootfs() {
        let read = |p: &str| match p {
            "/etc/passwd" => Some("root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/:/bin/sh\n".into()),
            "/etc/group" => Some("root:x:0:\nstaff:x:50:\n".into()),
            _ => None,
        };
        assert_eq!(parse_chown("app", &read), Ok((1000, 1001)));
        assert_eq!(parse_chown("app:staff", &read), Ok((1000, 50)));
        assert_eq!(parse_chown("7", &read), Ok((7, 7)));
        assert_eq!(parse_chown("7:8", &read), Ok((7, 8)));
        assert!(parse_chown("nobody", &read).unwrap_err().contains("nobody"));
    }

    #[test]
    fn hash_ignores_mtime_but_not_mode_content_or_link_targets() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("d")).unwrap();
        std::fs::write(t.path().join("d/f"), "x").unwrap();
        std::os::unix::fs::symlink("/etc", t.path().join("d/l")).unwrap();
        let root = crate::context::open_root(t.path()).unwrap();
        let h = |p: &str| hash_in_root(root.as_fd(), Path::new(p), false).unwrap();
        let a = h("d");
        let f = std::fs::File::options()
            .write(true)
            .open(t.path().join("d/f"))
            .unwrap();
        f.set_modified(std::time::UNIX_EPOCH).unwrap();
        assert_eq!(h("d"), a);
        std::fs::set_permissions(t.path().join("d/f"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        let b = h("d");
        assert_ne!(b, a);
        std::fs::write(t.path().join("d/f"), "y").unwrap();
        let c = h("d");
        assert_ne!(c, b);
        // A link below the source is hashed as a link, never followed.
        std::fs::remove_file(t.path().join("d/l")).unwrap();
        std::os::unix::fs::symlink("/usr", t.path().join("d/l")).unwrap();
        assert_ne!(h("d"), c);
        // The named source resolves in the root: a link to /etc is the root's etc.
        std::os::unix::fs::symlink("/etc", t.path().join("out")).unwrap();
        assert!(hash_in_root(root.as_fd(), Path::new("out/passwd"), false).is_err());
    }
}
