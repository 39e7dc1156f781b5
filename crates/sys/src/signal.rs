//! Blocking signals and reading them from a signalfd, for the foreground
//! `run` that forwards signals to the container.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Block every catchable signal for this (single-threaded) process and
/// return a signalfd that reports them. Returns the old mask too, so a forked
/// child can restore it before exec.
pub fn block_all_signalfd() -> io::Result<(OwnedFd, SigMask)> {
    // SAFETY: sigset_t is plain data; sigfillset initialises it fully.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t.
    unsafe { libc::sigfillset(&mut set) };
    let mut old = SigMask::empty();
    // SAFETY: both pointers refer to valid sigset_t values.
    let r = unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, &mut old.0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `set` is valid; -1 asks for a new fd.
    let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: signalfd returned a fresh fd that nothing else owns.
    Ok((unsafe { OwnedFd::from_raw_fd(fd) }, old))
}

/// A saved signal mask.
#[derive(Clone, Copy)]
pub struct SigMask(libc::sigset_t);

impl SigMask {
    pub fn empty() -> Self {
        // SAFETY: sigset_t is plain data; sigemptyset initialises it.
        let mut s: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `s` is a valid sigset_t.
        unsafe { libc::sigemptyset(&mut s) };
        SigMask(s)
    }

    /// Install this mask as the process's mask.
    pub fn restore(&self) -> io::Result<()> {
        // SAFETY: self.0 is an initialised sigset_t.
        let r = unsafe { libc::sigprocmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Read one signal number from a signalfd made by [`block_all_signalfd`].
pub fn read_signal(fd: &OwnedFd) -> io::Result<i32> {
    // SAFETY: signalfd_siginfo is plain data.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    loop {
        // SAFETY: we read at most `size` bytes into `info`, which is that big.
        let n = unsafe {
            libc::read(
                fd.as_raw_fd(),
                &mut info as *mut _ as *mut libc::c_void,
                size,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n as usize != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "short signalfd read",
            ));
        }
        return Ok(info.ssi_signo as i32);
    }
}

/// Reset every signal disposition to default (before exec in the child, so
/// that ignored signals of the caller do not leak into the container).
pub fn reset_dispositions() {
    for sig in 1..libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: SIG_DFL is always a valid disposition; failures for
        // reserved signals are harmless and ignored.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
}
