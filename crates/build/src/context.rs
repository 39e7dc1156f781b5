//! The build context: a directory or a tar on stdin, staged into a private directory
//! with `.dockerignore` applied (what docker's client sends to its daemon). Every later
//! read of the context resolves inside that directory with `RESOLVE_IN_ROOT`, so a
//! symlink or a `..` in the context can never lead out of it.

use crate::dockerignore::Dockerignore;
use crate::error::{BuildError, Result};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where the context comes from.
pub enum ContextSource {
    Dir(PathBuf),
    /// A tar stream (`berth build -`).
    Tar(Box<dyn Read>),
}

/// The staged context.
pub struct Context {
    dir: tempfile::TempDir,
    root: OwnedFd,
    /// The Dockerfile found in a tar context (`Dockerfile` at its top), if any.
    pub tar_dir: Option<tempfile::TempDir>,
}

impl Context {
    /// The staged directory (only berth writes there).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// An fd of the staged directory, for in-root resolution.
    pub fn root(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }
}

fn io(p: &Path, e: std::io::Error) -> BuildError {
    BuildError::Io(p.to_path_buf(), e)
}

/// Opens `p` as a directory fd for in-root resolution.
pub fn open_root(p: &Path) -> Result<OwnedFd> {
    rustix::fs::open(
        p,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io(p, e.into()))
}

/// Resolves `rel` inside `root` (as if `root` were `/`) to an O_PATH fd.
pub fn resolve_in(root: BorrowedFd<'_>, rel: &Path, dir: bool) -> std::io::Result<OwnedFd> {
    let mut flags = OFlags::PATH;
    if dir {
        flags |= OFlags::DIRECTORY;
    }
    open_in(root, rel, flags).map_err(Into::into)
}

/// openat2 of `rel` (empty: `root` itself) resolved inside `root`, magic links refused;
/// always close-on-exec.
pub fn open_in(root: BorrowedFd<'_>, rel: &Path, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    rustix::fs::openat2(
        root,
        rel,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
}

/// Stages the context under `parent` (a directory of the store): a directory is copied
/// with `.dockerignore` applied (`dockerfile` names the Dockerfile, whose own
/// `<Dockerfile>.dockerignore` wins), a tar is first extracted safely.
pub fn stage(
    src: ContextSource,
    parent: &Path,
    dockerfile: Option<&Path>,
) -> Result<(Context, Dockerignore)> {
    let dir = tempfile::Builder::new()
        .prefix(&format!(
            "{}build-context-",
            berth_image::store::temp_prefix()
        ))
        .tempdir_in(parent)
        .map_err(|e| io(parent, e))?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .map_err(|e| io(dir.path(), e))?;
    let (from, tar_dir) = match src {
        ContextSource::Dir(d) => {
            let md = std::fs::metadata(&d).map_err(|e| {
                BuildError::Invalid(format!(
                    "unable to prepare context: path {:?} not found: {e}",
                    d.display().to_string()
                ))
            })?;
            if !md.is_dir() {
                return Err(BuildError::Invalid(format!(
                    "unable to prepare context: context must be a directory: {}",
                    d.display()
                )));
            }
            (d, None)
        }
        ContextSource::Tar(r) => {
            let raw = tempfile::Builder::new()
                .prefix(&format!("{}build-tar-", berth_image::store::temp_prefix()))
                .tempdir_in(parent)
                .map_err(|e| io(parent, e))?;
            let fd = open_root(raw.path())?;
            let opts = berth_engine::cp::CopyOptions {
                follow_link: false,
                owner: berth_engine::cp::Owner::Caller,
            };
            berth_engine::cp::extract_tar(
                TarTail::new(r),
                berth_engine::cp::Side::container(fd.as_fd(), Path::new("/")),
                &opts,
            )
            .map_err(|e| {
                BuildError::Invalid(format!(
                    "context tar from stdin: {}",
                    berth_engine::error::chain(&e)
                ))
            })?;
            (raw.path().to_path_buf(), Some(raw))
        }
    };
    let ignore = match &tar_dir {
        // A tar's own files are read inside it: its `.dockerignore` may be a symlink.
        Some(t) => {
            let fd = open_root(t.path())?;
            match crate::copy::open_in_root(fd.as_fd(), Path::new(".dockerignore")) {
                Ok(mut f) => {
                    let mut text = String::new();
                    f.read_to_string(&mut text)
                        .map_err(|e| BuildError::Invalid(format!("read .dockerignore: {e}")))?;
                    Dockerignore::parse(".dockerignore", &text)
                        .map_err(|e| BuildError::Invalid(format!("read .dockerignore: {e}")))?
                }
                Err(_) => Dockerignore::default(),
            }
        }
        None => Dockerignore::load(&from, dockerfile)
            .map_err(|e| BuildError::Invalid(format!("read .dockerignore: {e}")))?,
    };
    // The storage root (and so this staging directory) may lie inside the context: it
    // is berth's own state, never part of a context.
    let own: Vec<(u64, u64)> = [parent.parent().unwrap_or(parent), dir.path()]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino())))
        .collect();
    copy_tree(&from, dir.path(), "", &ignore, &own)?;
    let root = open_root(dir.path())?;
    Ok((Context { dir, root, tar_dir }, ignore))
}

/// Copies `src/rel` into `dst/rel` without following symlinks, skipping what the
/// ignore file excludes (entering an excluded directory only when an exception may
/// match below it).
fn copy_tree(
    src: &Path,
    dst: &Path,
    rel: &str,
    ignore: &Dockerignore,
    own: &[(u64, u64)],
) -> Result<()> {
    let sdir = src.join(rel);
    let mut names: Vec<_> = std::fs::read_dir(&sdir)
        .map_err(|e| io(&sdir, e))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .map_err(|e| io(&sdir, e))?;
    names.sort();
    for n in names {
        let Some(name) = n.to_str() else {
            return Err(BuildError::Invalid(format!(
                "context path {:?} is not UTF-8",
                sdir.join(&n)
            )));
        };
        let r = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        let sp = src.join(&r);
        let dp = dst.join(&r);
        let md = std::fs::symlink_metadata(&sp).map_err(|e| io(&sp, e))?;
        let excluded = ignore.matches(&r);
        let ft = md.file_type();
        if ft.is_dir() {
            if (excluded && !ignore.may_include_under(&r)) || own.contains(&(md.dev(), md.ino())) {
                continue;
            }
            std::fs::create_dir(&dp).map_err(|e| io(&dp, e))?;
            copy_tree(src, dst, &r, ignore, own)?;
            std::fs::set_permissions(&dp, std::fs::Permissions::from_mode(md.mode() & 0o7777))
                .map_err(|e| io(&dp, e))?;
            continue;
        }
        if excluded {
            continue;
        }
        if ft.is_file() {
            // A hard link where the filesystem allows (nothing writes staged files): no
            // data copied. Otherwise a copy.
            if std::fs::hard_link(&sp, &dp).is_ok() {
                continue;
            }
            let mut from = std::fs::File::options()
                .read(true)
                .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                .open(&sp)
                .map_err(|e| io(&sp, e))?;
            let mut to = std::fs::File::create_new(&dp).map_err(|e| io(&dp, e))?;
            std::io::copy(&mut from, &mut to).map_err(|e| io(&dp, e))?;
            to.set_permissions(std::fs::Permissions::from_mode(md.mode() & 0o7777))
                .map_err(|e| io(&dp, e))?;
            if let Ok(t) = md.modified() {
                let _ = to.set_modified(t);
            }
        } else if ft.is_symlink() {
            let t = std::fs::read_link(&sp).map_err(|e| io(&sp, e))?;
            std::os::unix::fs::symlink(&t, &dp).map_err(|e| io(&dp, e))?;
        }
        // Sockets, fifos and devices are not part of a context (docker skips them too).
    }
    Ok(())
}

/// A tar stream that may stop right after its last entry's data, with no padding and
/// no end-of-archive blocks: the docker CLI sends its context so when it adds a
/// Dockerfile from stdin (`-f -`), and Go's tar reader (dockerd's) takes it. At such an
/// end this reader supplies the missing zeros; a stream cut inside a header or an
/// entry's data still ends there (the tar reader's error).
struct TarTail<R> {
    inner: R,
    state: Tail,
    header: Vec<u8>,
    /// Zeros still to give once the inner stream has ended.
    zeros: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tail {
    Header,
    Data {
        left: u64,
        pad: u64,
    },
    Pad(u64),
    /// Past the end-of-archive block: nothing more is looked at.
    Done,
}

impl<R: Read> TarTail<R> {
    fn new(inner: R) -> TarTail<R> {
        TarTail {
            inner,
            state: Tail::Header,
            header: Vec::with_capacity(512),
            zeros: None,
        }
    }

    /// An entry's data size from its header: octal, or GNU's base-256.
    fn size(h: &[u8]) -> u64 {
        let f = &h[124..136];
        if f[0] & 0x80 != 0 {
            return f[4..].iter().fold(0u64, |n, b| (n << 8) | u64::from(*b));
        }
        let t = String::from_utf8_lossy(f);
        u64::from_str_radix(t.trim_matches(|c: char| c == '\0' || c == ' '), 8).unwrap_or(0)
    }

    fn observe(&mut self, mut b: &[u8]) {
        while !b.is_empty() {
            match self.state {
                Tail::Header => {
                    let take = (512 - self.header.len()).min(b.len());
                    self.header.extend_from_slice(&b[..take]);
                    b = &b[take..];
                    if self.header.len() == 512 {
                        self.state = if self.header.iter().all(|x| *x == 0) {
                            Tail::Done
                        } else {
                            let size = Self::size(&self.header);
                            let pad = (512 - size % 512) % 512;
                            match (size, pad) {
                                (0, _) => Tail::Header,
                                (left, pad) => Tail::Data { left, pad },
                            }
                        };
                        self.header.clear();
                    }
                }
                Tail::Data { left, pad } => {
                    let take = left.min(b.len() as u64);
                    b = &b[take as usize..];
                    self.state = match (left - take, pad) {
                        (0, 0) => Tail::Header,
                        (0, pad) => Tail::Pad(pad),
                        (left, pad) => Tail::Data { left, pad },
                    };
                }
                Tail::Pad(left) => {
                    let take = left.min(b.len() as u64);
                    b = &b[take as usize..];
                    self.state = match left - take {
                        0 => Tail::Header,
                        left => Tail::Pad(left),
                    };
                }
                Tail::Done => return,
            }
        }
    }
}

impl<R: Read> Read for TarTail<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.zeros.is_none() {
            let n = self.inner.read(out)?;
            if n > 0 || out.is_empty() {
                self.observe(&out[..n]);
                return Ok(n);
            }
            self.zeros = Some(match self.state {
                Tail::Header if self.header.is_empty() => 1024,
                Tail::Pad(left) => left + 1024,
                _ => 0,
            });
        }
        let left = self.zeros.as_mut().expect("set above");
        let n = (*left).min(out.len() as u64) as usize;
        out[..n].fill(0);
        *left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn a_context_tar_cut_after_its_last_data_is_read_as_dockerd_reads_it() {
        let t = tempfile::tempdir().unwrap();
        let full = tar_of(&[("Dockerfile", b"FROM scratch\n"), ("a", &[7u8; 600])]);
        // Header, data (600 bytes), no padding, no end blocks: what `docker build -f -` sends.
        let cut = full[..512 + 512 + 512 + 600].to_vec();
        let (ctx, _) = stage(
            ContextSource::Tar(Box::new(std::io::Cursor::new(cut))),
            t.path(),
            None,
        )
        .unwrap();
        let dir = ctx.tar_dir.as_ref().unwrap().path().to_path_buf();
        assert_eq!(std::fs::read(dir.join("a")).unwrap(), vec![7u8; 600]);
        assert_eq!(
            std::fs::read(dir.join("Dockerfile")).unwrap(),
            b"FROM scratch\n"
        );
        // Cut inside the data: an error, never a file filled up with zeros.
        let short = full[..512 + 512 + 512 + 300].to_vec();
        assert!(stage(
            ContextSource::Tar(Box::new(std::io::Cursor::new(short))),
            t.path(),
            None
        )
        .is_err());
        // Cut inside a header too.
        let short = full[..512 + 512 + 100].to_vec();
        assert!(stage(
            ContextSource::Tar(Box::new(std::io::Cursor::new(short))),
            t.path(),
            None
        )
        .is_err());
    }

    #[test]
    fn staging_applies_dockerignore_and_keeps_symlinks_as_links() {
        let t = tempfile::tempdir().unwrap();
        let ctx = t.path().join("ctx");
        std::fs::create_dir_all(ctx.join("keep/sub")).unwrap();
        std::fs::create_dir_all(ctx.join("skip")).unwrap();
        std::fs::write(ctx.join("keep/sub/a"), "a").unwrap();
        std::fs::write(ctx.join("skip/b"), "b").unwrap();
        std::fs::write(ctx.join("x.log"), "l").unwrap();
        std::fs::write(ctx.join(".dockerignore"), "skip\n*.log\n").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", ctx.join("link")).unwrap();
        let (c, _) = stage(ContextSource::Dir(ctx), t.path(), None).unwrap();
        assert_eq!(
            std::fs::read_to_string(c.path().join("keep/sub/a")).unwrap(),
            "a"
        );
        assert!(!c.path().join("skip").exists());
        assert!(!c.path().join("x.log").exists());
        assert_eq!(
            std::fs::read_link(c.path().join("link")).unwrap(),
            Path::new("/etc/passwd")
        );
        // In-root resolution keeps the link inside the staged context.
        assert!(resolve_in(c.root(), Path::new("link"), false).is_err());
        // A storage root inside the context is left out (its staging dir with it).
        let t2 = tempfile::tempdir().unwrap();
        std::fs::write(t2.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        let store_tmp = t2.path().join("store/tmp");
        std::fs::create_dir_all(&store_tmp).unwrap();
        let (c2, _) = stage(ContextSource::Dir(t2.path().into()), &store_tmp, None).unwrap();
        assert!(c2.path().join("Dockerfile").is_file());
        assert!(!c2.path().join("store").exists());
    }
}
