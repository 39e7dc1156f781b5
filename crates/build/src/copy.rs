//! COPY and ADD: their sources gathered into a private tree (wildcards expanded,
//! `--chmod` applied, local tars unpacked with the image-layer rules), hashed for the
//! cache, then copied into the rootfs. Sources resolve inside their root (the staged
//! context or another stage's rootfs) and the destination inside the image's rootfs,
//! both with `RESOLVE_IN_ROOT` (berth_engine::cp).

use crate::context::resolve_in;
use crate::error::{BuildError, Result};
use berth_engine::cp::{self, CopyOptions, Owner, Side};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use sha2::{Digest as _, Sha256};
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
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
    let Ok(fd) = rustix::fs::openat2(
        root,
        if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        },
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) else {
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
        let pfd = rustix::fs::openat2(
            root,
            if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                &parent
            },
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
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

/// A digest of a tree: paths, types, modes, owners (when `owners`), contents and link
/// targets, in sorted order; never timestamps.
pub fn hash_tree(dir: &Path, owners: bool) -> Result<String> {
    fn walk(h: &mut Sha256, root: &Path, rel: &Path, owners: bool) -> Result<()> {
        let d = root.join(rel);
        let mut names: Vec<_> = std::fs::read_dir(&d)
            .map_err(|e| BuildError::Io(d.clone(), e))?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        names.sort();
        for n in names {
            let r = rel.join(&n);
            let p = root.join(&r);
            let md = std::fs::symlink_metadata(&p).map_err(|e| BuildError::Io(p.clone(), e))?;
            h.update(r.as_os_str().as_bytes());
            h.update([0]);
            h.update(format!("{:o}", md.mode()).as_bytes());
            if owners {
                h.update(format!(" {}:{}", md.uid(), md.gid()).as_bytes());
            }
            h.update([0]);
            let ft = md.file_type();
            if ft.is_file() {
                let mut f = std::fs::File::open(&p).map_err(|e| BuildError::Io(p.clone(), e))?;
                let mut hw = HashWriter(h);
                std::io::copy(&mut f, &mut hw).map_err(|e| BuildError::Io(p.clone(), e))?;
            } else if ft.is_symlink() {
                let t = std::fs::read_link(&p).map_err(|e| BuildError::Io(p.clone(), e))?;
                h.update(t.as_os_str().as_bytes());
            } else if ft.is_dir() {
                walk(h, root, &r, owners)?;
            }
            h.update([0xff]);
        }
        Ok(())
    }
    struct HashWriter<'a>(&'a mut Sha256);
    impl std::io::Write for HashWriter<'_> {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.update(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut h = Sha256::new();
    walk(&mut h, dir, Path::new(""), owners)?;
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

/// A local archive ADD unpacks: its compression, when it is a tar.
pub fn archive_kind(path: &Path) -> Option<berth_registry::manifest::Compression> {
    use berth_registry::manifest::Compression;
    use std::io::Read;
    let mut f = std::fs::File::open(path).ok()?;
    let mut head = [0u8; 512];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return None,
        }
    }
    let h = &head[..n];
    if h.starts_with(&[0x1f, 0x8b]) {
        Some(Compression::Gzip)
    } else if h.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(Compression::Zstd)
    } else if n >= 262 && &h[257..262] == b"ustar" {
        Some(Compression::None)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn hash_ignores_mtime_but_not_mode_or_content() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("f"), "x").unwrap();
        let a = hash_tree(t.path(), false).unwrap();
        let f = std::fs::File::options()
            .write(true)
            .open(t.path().join("f"))
            .unwrap();
        f.set_modified(std::time::UNIX_EPOCH).unwrap();
        assert_eq!(hash_tree(t.path(), false).unwrap(), a);
        std::fs::set_permissions(t.path().join("f"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        let b = hash_tree(t.path(), false).unwrap();
        assert_ne!(b, a);
        std::fs::write(t.path().join("f"), "y").unwrap();
        assert_ne!(hash_tree(t.path(), false).unwrap(), b);
    }
}
