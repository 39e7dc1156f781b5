//! OOM notifications: an eventfd registered on memory.oom_control (v1) or an inotify
//! watch on memory.events (v2).

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::event::{eventfd, poll, EventfdFlags, PollFd, PollFlags, Timespec};
use rustix::fs::inotify;

use crate::fs::{Backend, FsManager};
use crate::util::{self, write};
use crate::Error;

/// What [`OomWatcher::wait`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OomEvent {
    /// `n` new OOM events (v1: notifications; v2: increase of memory.events oom_kill).
    Oom(u64),
    /// Nothing within the timeout.
    Timeout,
    /// The cgroup was removed; no more events will come.
    Gone,
}

enum Kind {
    V1 { efd: OwnedFd, _ctl: File },
    V2 { ino: OwnedFd, last: u64 },
}

/// Watches one cgroup for OOM kills. [`OomWatcher::fd`] can go into the runtime's own
/// poll loop; then call [`OomWatcher::wait`] with a zero timeout.
pub struct OomWatcher {
    kind: Kind,
    dir: PathBuf,
}

fn watch_err(dir: &Path) -> impl FnOnce(rustix::io::Errno) -> Error + '_ {
    move |e| Error::Watch {
        path: dir.into(),
        source: e.into(),
    }
}

/// The oom_kill counter of a v2 memory.events file.
fn oom_kills(dir: &Path) -> Result<Option<u64>, Error> {
    Ok(util::read_opt(dir, "memory.events")?.map(|t| {
        util::parse_flat_keyed(&t)
            .get("oom_kill")
            .copied()
            .unwrap_or(0)
    }))
}

impl OomWatcher {
    pub(crate) fn new(m: &FsManager) -> Result<OomWatcher, Error> {
        match m.backend("memory") {
            Some(Backend::V1(d)) => {
                let path = d.join("memory.oom_control");
                let ctl = File::open(&path).map_err(|source| Error::Read { path, source })?;
                let efd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
                    .map_err(watch_err(d))?;
                write(
                    d,
                    "cgroup.event_control",
                    &format!("{} {}", efd.as_raw_fd(), ctl.as_raw_fd()),
                )?;
                Ok(OomWatcher {
                    kind: Kind::V1 { efd, _ctl: ctl },
                    dir: d.into(),
                })
            }
            Some(Backend::V2(d)) => {
                let ino =
                    inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)
                        .map_err(watch_err(d))?;
                inotify::add_watch(&ino, d.join("memory.events"), inotify::WatchFlags::MODIFY)
                    .map_err(watch_err(d))?;
                let last = oom_kills(d)?.unwrap_or(0);
                Ok(OomWatcher {
                    kind: Kind::V2 { ino, last },
                    dir: d.into(),
                })
            }
            None => Err(Error::Unsupported {
                field: "oom events".into(),
                reason: "no memory controller in any hierarchy".into(),
            }),
        }
    }

    /// The pollable descriptor (readable when something may have happened).
    pub fn fd(&self) -> BorrowedFd<'_> {
        match &self.kind {
            Kind::V1 { efd, .. } => efd.as_fd(),
            Kind::V2 { ino, .. } => ino.as_fd(),
        }
    }

    /// Waits up to `timeout` (`None`: forever) for OOM events.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<OomEvent, Error> {
        let ts = timeout.map(|t| Timespec {
            tv_sec: t.as_secs() as _,
            tv_nsec: t.subsec_nanos() as _,
        });
        let dir = self.dir.clone();
        loop {
            // v2: check first, a kill may have happened before the first poll.
            if let Kind::V2 { last, .. } = &mut self.kind {
                match oom_kills(&dir)? {
                    None => return Ok(OomEvent::Gone),
                    Some(n) if n > *last => {
                        let new = n - *last;
                        *last = n;
                        return Ok(OomEvent::Oom(new));
                    }
                    _ => {}
                }
            }
            let r = {
                let fd = self.fd();
                let mut fds = [PollFd::new(&fd, PollFlags::IN)];
                poll(&mut fds, ts.as_ref())
            };
            match r {
                Ok(0) => return Ok(OomEvent::Timeout),
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(watch_err(&dir)(e)),
            }
            match &mut self.kind {
                Kind::V1 { efd, .. } => {
                    let mut buf = [0u8; 8];
                    match rustix::io::read(&*efd, &mut buf) {
                        Ok(8) => {}
                        Ok(_) | Err(rustix::io::Errno::AGAIN) => continue,
                        Err(e) => return Err(watch_err(&dir)(e)),
                    }
                    // The eventfd also fires when the cgroup is removed.
                    if !dir.join("cgroup.event_control").exists() {
                        return Ok(OomEvent::Gone);
                    }
                    return Ok(OomEvent::Oom(u64::from_ne_bytes(buf)));
                }
                Kind::V2 { ino, .. } => {
                    let mut buf = [0u8; 4096];
                    // Drain; the counter itself is re-read at the top of the loop.
                    let _ = rustix::io::read(&*ino, &mut buf);
                    if timeout.is_some_and(|t| t.is_zero()) {
                        // One more check for poll-style callers, then report.
                        if let Kind::V2 { last, .. } = &mut self.kind {
                            return Ok(match oom_kills(&dir)? {
                                None => OomEvent::Gone,
                                Some(n) if n > *last => {
                                    let new = n - *last;
                                    *last = n;
                                    OomEvent::Oom(new)
                                }
                                _ => OomEvent::Timeout,
                            });
                        }
                    }
                }
            }
        }
    }
}
