//! CVE-2019-5736: the processes that set a container up must not be the
//! host's runtime binary, or a process in the container could reopen
//! /proc/<pid>/exe for writing once the runtime is gone. The runtime
//! re-executes itself from a sealed copy first, as runc does:
//!
//! - a private, read-only overlayfs over the binary's directory, made with
//!   fsopen and never attached to any mount namespace: no copy, and an
//!   overlay without an upper layer can never be made writable;
//! - else a memfd copy sealed against writes.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{MemfdFlags, SealFlags};

use crate::{Error, Result};

const SEALS: SealFlags = SealFlags::SEAL
    .union(SealFlags::SHRINK)
    .union(SealFlags::GROW)
    .union(SealFlags::WRITE);

const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c7630;
/// Set in the environment of the re-executed runtime, with the device and
/// inode of the sealed file, so that it knows where it runs from.
const MARK: &str = "_BERTH_SEALED_EXE";

fn exe_id(f: &File) -> Option<String> {
    let st = rustix::fs::fstat(f).ok()?;
    Some(format!("{}:{}", st.st_dev, st.st_ino))
}

/// Whether this process already runs from a sealed copy (worked out once:
/// the mark is taken out of the environment after the first look).
pub fn is_sealed() -> bool {
    static SEALED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SEALED.get_or_init(check_sealed)
}

fn check_sealed() -> bool {
    let Ok(f) = File::open("/proc/self/exe") else {
        return false;
    };
    if rustix::fs::fcntl_get_seals(&f).is_ok_and(|s| s.contains(SEALS)) {
        return true;
    }
    // Our private overlay: read-only overlayfs, and the very file we made.
    let overlay = rustix::fs::fstatfs(&f).is_ok_and(|s| s.f_type == OVERLAYFS_SUPER_MAGIC);
    overlay && std::env::var(MARK).ok() == exe_id(&f)
}

/// Re-exec from a sealed copy unless already there. `scratch` is a
/// directory of the runtime's own (the state root) for the overlay's
/// second, empty layer. Returns only when nothing needed doing.
pub fn ensure_sealed(scratch: &Path) -> Result<()> {
    if is_sealed() {
        std::env::remove_var(MARK);
        return Ok(());
    }
    let io = |what: &str, e: std::io::Error| Error::io(what.to_string(), e);
    let sealed = match overlay_copy(scratch) {
        Ok(f) => f,
        Err(_) => memfd_copy().map_err(|e| io("copy the runtime into a sealed memfd", e))?,
    };
    let f = File::from(sealed);
    if let Some(id) = exe_id(&f) {
        std::env::set_var(MARK, id);
    }
    let argv: Vec<CString> = std::env::args_os()
        .filter_map(|a| CString::new(a.as_bytes()).ok())
        .collect();
    let envp: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    let e = berth_sys::process::execveat_fd(f.as_fd(), &argv, &envp);
    Err(io("re-exec from the sealed copy", e))
}

/// The binary, opened through a detached read-only overlay of its
/// directory and an empty directory.
fn overlay_copy(scratch: &Path) -> std::io::Result<OwnedFd> {
    use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};
    let exe = std::fs::read_link("/proc/self/exe")?;
    let (dir, name) = match (exe.parent(), exe.file_name()) {
        (Some(d), Some(n)) => (d, n),
        _ => return Err(std::io::Error::other("no binary directory")),
    };
    // overlayfs refuses layers inside one another: a state root under the
    // binary's directory takes the default root's (else a 3 ms memfd copy).
    let empty = [scratch, Path::new(crate::state::DEFAULT_ROOT)]
        .into_iter()
        .map(|s| s.join(".exe-empty"))
        .find(|e| !e.starts_with(dir))
        .ok_or_else(|| std::io::Error::other("the state root is in the binary's directory"))?;
    {
        use std::os::unix::fs::DirBuilderExt;
        // Made once; later runs find it (one mkdir, no stat).
        match std::fs::DirBuilder::new().mode(0o700).create(&empty) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&empty)?;
            }
            _ => {}
        }
    }
    let (d, e) = (dir.as_os_str().as_bytes(), empty.as_os_str().as_bytes());
    // overlayfs option syntax has no escapes for these.
    if [d, e]
        .iter()
        .any(|p| p.iter().any(|b| matches!(b, b':' | b',' | b'\\')))
        || exe.to_string_lossy().ends_with(" (deleted)")
    {
        return Err(std::io::Error::other("path not usable as an overlay layer"));
    }
    let fs = rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    let mut lower = d.to_vec();
    lower.push(b':');
    lower.extend_from_slice(e);
    rustix::mount::fsconfig_set_string(&fs, "lowerdir", std::ffi::OsStr::from_bytes(&lower))?;
    rustix::mount::fsconfig_create(&fs)?;
    let mnt = rustix::mount::fsmount(
        &fs,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_RDONLY
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOSUID,
    )?;
    let f = rustix::fs::openat(
        &mnt,
        name,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC | rustix::fs::OFlags::NOFOLLOW,
        rustix::fs::Mode::empty(),
    )?;
    Ok(f)
}

fn memfd_copy() -> std::io::Result<OwnedFd> {
    let mut src = File::open("/proc/self/exe")?;
    let fd = rustix::fs::memfd_create(
        "berth-runtime",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )?;
    let mut dst = File::from(fd);
    std::io::copy(&mut src, &mut dst)?;
    rustix::fs::fcntl_add_seals(&dst, SEALS)?;
    Ok(dst.into())
}
