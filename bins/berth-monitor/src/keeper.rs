//! The keeper: the monitor's parent, a subreaper that only reaps.
//!
//! While the monitor lives, the container's init is the monitor's child and the keeper
//! sees nothing but the monitor's own exit (it then exits with the monitor's code). When the
//! monitor is killed, the kernel reparents the init (and any other orphan) to the keeper,
//! the nearest living subreaper. The keeper then execs `berth-monitor --adopt`: the same
//! pid, still the init's parent, forks a new monitor and goes on reaping; what it reaps
//! (the init's exit, with its real status) it reports to the new monitor as
//! `"<pid> <code>\n"` lines on a pipe. So a killed monitor loses only the container's
//! output (its pipes died with it), never its exit status or its restart policy.
//! Killing the keeper as well loses the status (docker's 255 then, see status.rs).

use crate::{Args, MonLog};
use rustix::io::Errno;
use std::ffi::CString;
use std::os::fd::OwnedFd;

pub fn keep(
    args: &Args,
    monitor: i32,
    report_r: OwnedFd,
    report: OwnedFd,
    mut mlog: MonLog,
) -> i32 {
    let _ = rustix::io::ioctl_fionbio(&report, true);
    loop {
        match rustix::process::wait(rustix::process::WaitOptions::empty()) {
            Ok(Some((pid, st))) => {
                let pid = pid.as_raw_nonzero().get();
                if pid == monitor {
                    if let Some(code) = st.exit_status() {
                        return code;
                    }
                    let sig = st.terminating_signal().unwrap_or(0);
                    mlog.say(&format!(
                        "monitor {monitor} was killed by signal {sig}; its keeper starts a new one"
                    ));
                    let e = exec_adopt(args, &report_r, &report);
                    mlog.say(&format!("keeper: exec a new monitor: {e}"));
                    return 1;
                }
                let code = st
                    .exit_status()
                    .or_else(|| st.terminating_signal().map(|s| 128 + s))
                    .unwrap_or(255);
                // The monitor reads these; we hold the read end too, so a line the monitor
                // did not read before it died waits for its successor.
                let _ = rustix::io::write(&report, format!("{pid} {code}\n").as_bytes());
            }
            Ok(None) | Err(Errno::INTR) => {}
            Err(Errno::CHILD) => return 0,
            Err(e) => {
                mlog.say(&format!("keeper: wait: {e}"));
                return 1;
            }
        }
    }
}

/// Replaces this process with `berth-monitor --root R --id ID --adopt`; returns only on
/// failure.
fn exec_adopt(args: &Args, r: &OwnedFd, w: &OwnedFd) -> std::io::Error {
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    for fd in [r, w] {
        if let Err(e) = berth_sys::process::clear_cloexec(fd.as_raw_fd()) {
            return e;
        }
    }
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return e,
    };
    let c = |b: &[u8]| CString::new(b).unwrap_or_default();
    let argv = vec![
        c(exe.as_os_str().as_bytes()),
        c(b"--root"),
        c(args.root.as_os_str().as_bytes()),
        c(b"--id"),
        c(args.id.as_bytes()),
        c(b"--adopt"),
        c(b"--report-fds"),
        c(format!("{},{}", r.as_raw_fd(), w.as_raw_fd()).as_bytes()),
    ];
    let envp: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut b = k.as_bytes().to_vec();
            b.push(b'=');
            b.extend_from_slice(v.as_bytes());
            c(&b)
        })
        .collect();
    berth_sys::process::execve(&argv[0], &argv, &envp)
}
