//! CVE-2019-5736: the runtime runs from a sealed memfd copy of itself, so a
//! container that gets hold of /proc/<setup pid>/exe reaches an immutable
//! anonymous file, never the host binary.

use std::ffi::CString;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{MemfdFlags, SealFlags};

use crate::{Error, Result};

const SEALS: SealFlags = SealFlags::SEAL
    .union(SealFlags::SHRINK)
    .union(SealFlags::GROW)
    .union(SealFlags::WRITE);

/// Whether this process already runs from a sealed copy.
pub fn is_sealed() -> bool {
    File::open("/proc/self/exe")
        .ok()
        .and_then(|f| rustix::fs::fcntl_get_seals(&f).ok())
        .is_some_and(|s| s.contains(SEALS))
}

/// Re-exec from a sealed memfd copy unless already there. Returns only
/// when nothing needed doing (or on error).
pub fn ensure_sealed() -> Result<()> {
    if is_sealed() {
        return Ok(());
    }
    let io = |what: &str, e: std::io::Error| Error::io(what.to_string(), e);
    let mut src = File::open("/proc/self/exe").map_err(|e| io("open /proc/self/exe", e))?;
    let fd = rustix::fs::memfd_create(
        "berth-runtime",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )
    .map_err(|e| io("memfd_create", e.into()))?;
    let mut dst = File::from(fd);
    std::io::copy(&mut src, &mut dst).map_err(|e| io("copy the runtime into a memfd", e))?;
    rustix::fs::fcntl_add_seals(&dst, SEALS).map_err(|e| io("seal the memfd", e.into()))?;
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
    let e = berth_sys::process::execveat_fd(rustix::fd::AsFd::as_fd(&dst), &argv, &envp);
    Err(io("re-exec from the sealed memfd", e))
}
