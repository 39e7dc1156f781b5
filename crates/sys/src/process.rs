//! fork/exec and the small process-wide knobs rustix lacks.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::RawFd;

/// The result of [`fork`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fork {
    Parent(i32),
    Child,
}

/// fork(2).
///
/// The caller must be single-threaded: after a fork in a multi-threaded
/// process only async-signal-safe calls are allowed in the child. The runtime
/// never starts threads, so its child may allocate and run ordinary code.
pub fn fork() -> io::Result<Fork> {
    debug_assert!(thread_count() <= 1, "fork from a multi-threaded process");
    // SAFETY: fork has no memory-safety preconditions of its own; the
    // single-thread invariant above means no other thread can hold a lock
    // (allocator, stdio) that the child would inherit locked.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Fork::Child),
        p => Ok(Fork::Parent(p)),
    }
}

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(1)
}

/// execve(2). Returns only on failure.
pub fn execve(path: &CStr, argv: &[CString], envp: &[CString]) -> io::Error {
    let mut a: Vec<*const libc::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
    a.push(std::ptr::null());
    let mut e: Vec<*const libc::c_char> = envp.iter().map(|s| s.as_ptr()).collect();
    e.push(std::ptr::null());
    // SAFETY: `path` and every element of `a`/`e` are NUL-terminated C
    // strings that outlive the call, and both arrays end with a null pointer
    // as execve requires.
    unsafe { libc::execve(path.as_ptr(), a.as_ptr(), e.as_ptr()) };
    io::Error::last_os_error()
}

/// Mark every fd >= `first` close-on-exec (close_range with CLOSE_RANGE_CLOEXEC).
pub fn cloexec_from(first: RawFd) -> io::Result<()> {
    // SAFETY: close_range only changes fd flags; it touches no memory.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC as libc::c_uint,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Close every fd >= `first` (close_range).
pub fn close_from(first: RawFd) -> io::Result<()> {
    // SAFETY: close_range closes fds only; callers own no fd at or above `first` that
    // they still use (it runs before anything of theirs is opened).
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            0 as libc::c_uint,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// personality(2) with a full persona value.
pub fn set_personality(persona: u64) -> io::Result<()> {
    // SAFETY: personality takes a plain integer and touches no memory.
    let r = unsafe { libc::personality(persona as libc::c_ulong) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Join a fresh anonymous session keyring, so containers do not share the
/// caller's keys (runc does the same unless --no-new-keyring).
pub fn join_session_keyring(name: &CStr) -> io::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the
    // call; keyctl reads it and returns a key serial.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// setgroups(2) for the calling thread. The runtime is single-threaded, so
/// this is the whole process.
pub fn set_groups(gids: &[u32]) -> io::Result<()> {
    // SAFETY: the pointer and length describe a valid slice of gid_t (u32).
    let r = unsafe { libc::syscall(libc::SYS_setgroups, gids.len(), gids.as_ptr()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// setresuid/setresgid for the calling thread (single-threaded runtime).
pub fn set_res_ids(uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: plain integer arguments, no memory is touched.
    let r = unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    let r = unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// _exit(2): leave a forked child without running the parent's atexit
/// handlers or flushing its stdio buffers twice.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// Clear FD_CLOEXEC on an fd number (a preserved fd the caller passed in).
pub fn clear_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl(F_SETFD) on an integer fd touches no memory; a closed fd
    // gives EBADF.
    let r = unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Takes ownership of fd number `fd` that this process inherited across exec (named on its
/// command line), marking it close-on-exec. Fails with EBADF when no such fd is open.
/// The caller must not take the same number twice, nor one it already owns.
pub fn inherited_fd(fd: RawFd) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    if fd < 3 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: fcntl(F_SETFD) on an integer fd touches no memory; a closed fd gives EBADF.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the fd is open (checked above) and, per this function's contract, owned by
    // nothing else in this process: an inherited fd named on the command line.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// unshare(2). Safe here because the runtime is single-threaded: no other
/// thread shares the fd table or fs info that CLONE_FILES/CLONE_FS would
/// split.
pub fn unshare(flags: i32) -> io::Result<()> {
    // SAFETY: unshare takes a flag word and touches no memory.
    let r = unsafe { libc::unshare(flags) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// execveat(fd, "", argv, envp, AT_EMPTY_PATH): run the program an fd holds.
/// Returns only on failure.
pub fn execveat_fd(
    fd: std::os::fd::BorrowedFd<'_>,
    argv: &[CString],
    envp: &[CString],
) -> io::Error {
    use std::os::fd::AsRawFd;
    let mut a: Vec<*const libc::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
    a.push(std::ptr::null());
    let mut e: Vec<*const libc::c_char> = envp.iter().map(|s| s.as_ptr()).collect();
    e.push(std::ptr::null());
    // SAFETY: the path is an empty C string, the arrays hold valid C strings
    // that outlive the call and end with a null pointer, and the fd is open.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            c"".as_ptr(),
            a.as_ptr(),
            e.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    io::Error::last_os_error()
}

/// struct clone_args (linux/sched.h), the fields up to `cgroup`.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// clone3 without CLONE_VM, that is a fork, with namespace `flags`
/// (CLONE_NEW*) and, if `cgroup` is given, CLONE_INTO_CGROUP: the child
/// starts inside the new namespaces and the cgroup2 directory, so it never
/// runs outside them and pays no migration. Same single-thread contract as
/// [`fork`].
pub fn clone3(flags: u64, cgroup: Option<std::os::fd::BorrowedFd<'_>>) -> io::Result<Fork> {
    use std::os::fd::AsRawFd;
    debug_assert!(thread_count() <= 1, "fork from a multi-threaded process");
    let mut args = CloneArgs {
        flags,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: without CLONE_VM this is a fork: the child gets a copy of the
    // address space, so no stack is shared; `args` is a valid clone_args of
    // the size passed. The single-thread invariant (as for fork) means no
    // lock is held in the child.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Fork::Child),
        p => Ok(Fork::Parent(p as i32)),
    }
}
