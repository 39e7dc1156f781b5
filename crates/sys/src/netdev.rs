//! Interface flags through the classic socket ioctls: the one netdevice operation the
//! monitor does itself (loopback up in a `--network none` container), without the
//! netlink code, which lives in berth-net (docs/engine.md, "The monitor stays small").

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Sets IFF_UP on interface `name` in the network namespace of socket `sock` (any
/// AF_INET socket opened there); a no-op when it is up already.
pub fn set_up(sock: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    let b = name.as_bytes();
    if b.is_empty() || b.len() >= libc::IFNAMSIZ || b.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid interface name {name:?}"),
        ));
    }
    // SAFETY: ifreq is plain old data; all zeroes is a valid value of it.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b) {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads ifr_name (NUL-terminated: the name is shorter than
    // IFNAMSIZ and the rest is zero) and writes only ifr_flags of `req`, which lives
    // across the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel filled ifr_ifru as flags just above.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    if flags & libc::IFF_UP as libc::c_short != 0 {
        return Ok(());
    }
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    // SAFETY: as above; SIOCSIFFLAGS only reads `req`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as _, &req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
