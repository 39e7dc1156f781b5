//! A network namespace, held as an open fd of its nsfs file.
//!
//! `setns(CLONE_NEWNET)` changes only the calling thread, and a socket belongs to the
//! namespace it was created in for its whole life. So [`NetNs::run`] enters the namespace
//! on the calling thread, runs the closure there (create a netlink socket, bind a port,
//! spawn `nft`, write `/proc/sys/net/...`) and goes back; what the closure made keeps
//! working from the caller's own namespace after.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{io_err, sys_err, Result};

/// A network namespace (`/proc/PID/ns/net`, `/run/netns/NAME`, or the caller's own).
#[derive(Debug)]
pub struct NetNs {
    file: File,
    path: PathBuf,
}

impl NetNs {
    /// Opens the namespace file at `path` (an nsfs file or a bind mount of one).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(io_err(&path))?;
        Ok(NetNs { file, path })
    }

    /// The namespace of process `pid` (a container's init, once `runtime create` made it).
    pub fn of_pid(pid: u32) -> Result<Self> {
        Self::open(format!("/proc/{pid}/ns/net"))
    }

    /// A namespace named by `ip netns add NAME` (`/run/netns/NAME`).
    pub fn named(name: &str) -> Result<Self> {
        Self::open(Path::new("/run/netns").join(name))
    }

    /// The calling thread's namespace.
    pub fn current() -> Result<Self> {
        Self::open("/proc/thread-self/ns/net")
    }

    /// Brings `lo` up here (every container's namespace gets it, `--network none` too)
    /// through the SIOCSIFFLAGS ioctl on a socket opened in the namespace: the monitor
    /// does this itself, without linking the netlink code (berth-net has that).
    pub fn loopback_up(&self) -> Result<()> {
        let what = |op: &str| format!("{op} in {}", self.path.display());
        let sock = self
            .run(|| {
                rustix::net::socket(
                    rustix::net::AddressFamily::INET,
                    rustix::net::SocketType::DGRAM,
                    None,
                )
            })?
            .map_err(|e| sys_err(what("socket"))(e.into()))?;
        berth_sys::netdev::set_up(sock.as_fd(), "lo").map_err(sys_err(what("set lo up")))
    }

    /// The path it was opened from (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Another handle on the same namespace.
    pub fn try_clone(&self) -> Result<Self> {
        Ok(NetNs {
            file: self.file.try_clone().map_err(io_err(&self.path))?,
            path: self.path.clone(),
        })
    }

    /// (device, inode) of the namespace: equal for two handles on the same namespace.
    pub fn id(&self) -> Result<(u64, u64)> {
        let m = self.file.metadata().map_err(io_err(&self.path))?;
        Ok((m.dev(), m.ino()))
    }

    /// Whether the calling thread is in this namespace already.
    pub fn is_current(&self) -> Result<bool> {
        Ok(self.id()? == NetNs::current()?.id()?)
    }

    /// Runs `f` inside this namespace, on the calling thread: it enters the namespace
    /// (setns affects only the calling thread) and returns to its own afterwards, even
    /// when `f` panics. No thread is made: the monitor, a small single-threaded process,
    /// would pay for one in memory (a stack, a malloc arena) at every container start.
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        if self.is_current()? {
            return Ok(f());
        }
        let home = NetNs::current()?;
        let enter = |ns: &NetNs| {
            rustix::thread::move_into_link_name_space(
                ns.file.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .map_err(|e| sys_err(format!("setns {}", ns.path.display()))(e.into()))
        };
        enter(self)?;
        struct Back<'a>(&'a NetNs);
        impl Drop for Back<'_> {
            fn drop(&mut self) {
                // Our own namespace, by an fd we hold: setns cannot fail for lack of it;
                // a thread left elsewhere would be worse than stopping here.
                rustix::thread::move_into_link_name_space(
                    self.0.file.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .expect("setns back to the thread's own network namespace");
            }
        }
        let _back = Back(&home);
        Ok(f())
    }
}

impl AsFd for NetNs {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_is_current_and_run_stays_inline() {
        let ns = NetNs::current().unwrap();
        assert!(ns.is_current().unwrap());
        let me = std::thread::current().id();
        assert_eq!(ns.run(|| std::thread::current().id()).unwrap(), me);
        // (Entering another namespace and coming back is tested as root in
        // tests/netlink.rs: sysctl_writes_land_in_the_given_namespace.)
        assert_eq!(ns.try_clone().unwrap().id().unwrap(), ns.id().unwrap());
    }

    #[test]
    fn open_missing_names_the_path() {
        let e = NetNs::named("berth-no-such-netns").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/run/netns/berth-no-such-netns: "),
            "{e}"
        );
    }
}
