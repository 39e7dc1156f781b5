//! Loading seccomp filters with seccomp(2), kernel feature probes and the
//! user-notification ioctls.
//!
//! Contract for callers: before [`load_filter`] the calling thread must either have
//! `no_new_privs` set (`prctl(PR_SET_NO_NEW_PRIVS, 1)`) or hold `CAP_SYS_ADMIN` in its
//! user namespace; otherwise the kernel refuses the filter with `EACCES`. The filter
//! applies to the calling thread (all threads with `SECCOMP_FILTER_FLAG_TSYNC`) and to
//! everything it later forks or execs, so the runtime loads it last, right before execve.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// One classic BPF instruction, laid out like the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

pub const SECCOMP_SET_MODE_FILTER: u32 = 1;
pub const SECCOMP_GET_ACTION_AVAIL: u32 = 2;

pub const FILTER_FLAG_TSYNC: u32 = 1 << 0;
pub const FILTER_FLAG_LOG: u32 = 1 << 1;
pub const FILTER_FLAG_SPEC_ALLOW: u32 = 1 << 2;
pub const FILTER_FLAG_NEW_LISTENER: u32 = 1 << 3;
pub const FILTER_FLAG_TSYNC_ESRCH: u32 = 1 << 4;
pub const FILTER_FLAG_WAIT_KILLABLE_RECV: u32 = 1 << 5;

/// Largest filter the kernel accepts (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

fn seccomp(op: u32, flags: u32, arg: *mut libc::c_void) -> io::Result<libc::c_long> {
    // SAFETY: seccomp(2) takes (op, flags, pointer); every caller passes a pointer that is
    // either null or points to a live object of the type the operation expects, and the
    // kernel does not keep the pointer after returning.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            op as libc::c_ulong,
            flags as libc::c_ulong,
            arg,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Installs `prog` as a seccomp filter on the calling thread.
///
/// Returns the user-notification fd when `flags` contains
/// [`FILTER_FLAG_NEW_LISTENER`]. See the module docs for the privilege contract.
pub fn load_filter(prog: &[SockFilter], flags: u32) -> io::Result<Option<OwnedFd>> {
    if prog.is_empty() || prog.len() > MAX_INSNS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "seccomp filter has {} instructions, must be 1..={MAX_INSNS}",
                prog.len()
            ),
        ));
    }
    let mut fprog = libc::sock_fprog {
        len: prog.len() as libc::c_ushort,
        // The kernel only reads the program; the cast to *mut is what the C type demands.
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    let ret = seccomp(
        SECCOMP_SET_MODE_FILTER,
        flags,
        (&mut fprog as *mut libc::sock_fprog).cast(),
    )?;
    if flags & FILTER_FLAG_NEW_LISTENER != 0 {
        // SAFETY: with NEW_LISTENER a successful seccomp() returns a new fd owned by
        // nobody else; wrapping it transfers that ownership.
        Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as libc::c_int) }))
    } else {
        Ok(None)
    }
}

/// Whether the kernel knows the filter return action `action` (a `SECCOMP_RET_*`
/// value without its data bits), via `SECCOMP_GET_ACTION_AVAIL`.
pub fn action_available(action: u32) -> bool {
    let mut act: u32 = action & 0xffff_0000;
    seccomp(SECCOMP_GET_ACTION_AVAIL, 0, (&mut act as *mut u32).cast()).is_ok()
}

/// Whether the kernel accepts the filter flags `flags` together.
///
/// Probes with a null program: the kernel validates the flags (`EINVAL`) before it
/// copies the program (`EFAULT`), so `EFAULT` means the flags are known. Nothing is
/// installed either way.
pub fn flags_supported(flags: u32) -> bool {
    match seccomp(SECCOMP_SET_MODE_FILTER, flags, std::ptr::null_mut()) {
        Err(e) => e.raw_os_error() == Some(libc::EFAULT),
        // Cannot happen with a null program; treat it as unsupported rather than guess.
        Ok(_) => false,
    }
}

/// The syscall data of a notification (`struct seccomp_data`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotifData {
    pub nr: i32,
    pub arch: u32,
    pub instruction_pointer: u64,
    pub args: [u64; 6],
}

/// One pending user notification (`struct seccomp_notif`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Notif {
    pub id: u64,
    pub pid: u32,
    pub flags: u32,
    pub data: NotifData,
}

/// Waits for the next notification on a listener fd (`SECCOMP_IOCTL_NOTIF_RECV`).
pub fn notif_recv(listener: BorrowedFd<'_>) -> io::Result<Notif> {
    // SAFETY: seccomp_notif is plain old data; the kernel requires it zeroed on input.
    let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: the ioctl writes at most sizeof(seccomp_notif) bytes into `n`, which is a
    // live, correctly sized and aligned local; the fd is borrowed for the call.
    let ret = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV as _,
            &mut n as *mut libc::seccomp_notif,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Notif {
        id: n.id,
        pid: n.pid,
        flags: n.flags,
        data: NotifData {
            nr: n.data.nr,
            arch: n.data.arch,
            instruction_pointer: n.data.instruction_pointer,
            args: n.data.args,
        },
    })
}

/// Answers notification `id`: the syscall returns `val`, or fails with `errno` when it
/// is non-zero. With `continue_syscall` the kernel runs the syscall instead
/// (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`; `val` and `errno` must then be 0).
pub fn notif_respond(
    listener: BorrowedFd<'_>,
    id: u64,
    val: i64,
    errno: i32,
    continue_syscall: bool,
) -> io::Result<()> {
    let mut resp = libc::seccomp_notif_resp {
        id,
        val,
        // The kernel wants the negated errno.
        error: -errno,
        flags: if continue_syscall {
            libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32
        } else {
            0
        },
    };
    // SAFETY: the ioctl reads sizeof(seccomp_notif_resp) bytes from `resp`, a live local of
    // exactly that type; the fd is borrowed for the call.
    let ret = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND as _,
            &mut resp as *mut libc::seccomp_notif_resp,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_actions_are_available() {
        // Every kernel we support (>= 4.14) knows these.
        assert!(action_available(0x7fff_0000)); // ALLOW
        assert!(action_available(0x0005_0000)); // ERRNO
        assert!(action_available(0x7ffc_0000)); // LOG
        assert!(!action_available(0x1234_0000));
    }

    #[test]
    fn flag_probe_tells_known_from_unknown() {
        assert!(flags_supported(0));
        assert!(flags_supported(FILTER_FLAG_LOG));
        assert!(!flags_supported(1 << 30));
        // WAIT_KILLABLE_RECV alone is invalid by definition; with a listener it is fine on >= 5.19.
        assert!(!flags_supported(FILTER_FLAG_WAIT_KILLABLE_RECV));
    }

    #[test]
    fn load_filter_rejects_bad_lengths_before_the_kernel() {
        assert_eq!(
            load_filter(&[], 0).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        let big = vec![SockFilter::default(); MAX_INSNS + 1];
        assert_eq!(
            load_filter(&big, 0).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }
}
