//! berth-init: `berth run --init`'s pid 1. Runs the command after `--` as its child in its
//! own process group, forwards every signal it can catch to that group, reaps every zombie
//! that the kernel hands it, and exits with the child's status (128+N when killed by N).
//!
//! Built by crates/engine/build.rs with plain rustc as a static binary (std only; the few
//! libc calls std lacks are declared below).

use std::os::raw::c_int;
use std::os::unix::process::CommandExt;

/// glibc's sigset_t on x86_64 is 1024 bits.
#[repr(C)]
struct SigSet([u64; 16]);

extern "C" {
    fn sigfillset(set: *mut SigSet) -> c_int;
    fn sigdelset(set: *mut SigSet, sig: c_int) -> c_int;
    fn sigprocmask(how: c_int, set: *const SigSet, old: *mut SigSet) -> c_int;
    fn sigwait(set: *const SigSet, sig: *mut c_int) -> c_int;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
    fn kill(pid: c_int, sig: c_int) -> c_int;
    fn tcsetpgrp(fd: c_int, pgrp: c_int) -> c_int;
    fn isatty(fd: c_int) -> c_int;
}

const SIG_SETMASK: c_int = 2;
const WNOHANG: c_int = 1;
const SIGCHLD: c_int = 17;
// Synchronous faults are about init itself; job-control stops from the terminal are not
// forwarded either (tini does the same).
const NOT_FORWARDED: [c_int; 9] = [4, 5, 6, 7, 8, 11, 31, 21, 22]; // ILL TRAP ABRT BUS FPE SEGV SYS TTIN TTOU

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = match args.iter().position(|a| a == "--") {
        Some(i) => &args[i + 1..],
        None => &args[..],
    };
    if cmd.is_empty() {
        eprintln!("berth-init: usage: berth-init -- COMMAND [ARG...]");
        std::process::exit(125);
    }

    let mut set = SigSet([0; 16]);
    // SAFETY: `set` is a valid, writable sigset_t-sized buffer.
    unsafe { sigfillset(&mut set) };
    for s in [4, 5, 7, 8, 11, 31] {
        // SAFETY: as above; deleting a valid signal number from our own set.
        unsafe { sigdelset(&mut set, s) };
    }
    // Block everything catchable before the child exists, so no signal and no SIGCHLD is
    // lost between spawn and sigwait. The child gets an empty mask back (pre_exec below).
    // SAFETY: `set` is initialised; the old mask is not wanted (null is allowed).
    if unsafe { sigprocmask(SIG_SETMASK, &set, std::ptr::null_mut()) } != 0 {
        eprintln!(
            "berth-init: sigprocmask: {}",
            std::io::Error::last_os_error()
        );
        std::process::exit(125);
    }

    let mut command = std::process::Command::new(&cmd[0]);
    command.args(&cmd[1..]).process_group(0);
    // SAFETY: the closure runs between fork and exec and only calls sigprocmask, which is
    // async-signal-safe, on a set that lives on its own stack.
    unsafe {
        command.pre_exec(|| {
            let empty = SigSet([0; 16]);
            if sigprocmask(SIG_SETMASK, &empty, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berth-init: exec {}: {e}", cmd[0]);
            std::process::exit(match e.kind() {
                std::io::ErrorKind::NotFound => 127,
                _ => 126,
            });
        }
    };
    let pid = child.id() as c_int;
    // SAFETY: plain integer arguments.
    if unsafe { isatty(0) } == 1 {
        // The child's group takes the terminal, so it can read it and gets ^C from it.
        // SAFETY: plain integer arguments; SIGTTOU is blocked, so this cannot stop us.
        unsafe { tcsetpgrp(0, pid) };
    }

    loop {
        let mut sig: c_int = 0;
        // SAFETY: `set` is initialised and `sig` is a valid out pointer.
        if unsafe { sigwait(&set, &mut sig) } != 0 {
            continue;
        }
        if sig != SIGCHLD {
            if !NOT_FORWARDED.contains(&sig) {
                // SAFETY: plain integer arguments; -pid is the child's process group.
                if unsafe { kill(-pid, sig) } != 0 {
                    // SAFETY: as above; the group may be gone while the child lingers.
                    unsafe { kill(pid, sig) };
                }
            }
            continue;
        }
        loop {
            let mut status: c_int = 0;
            // SAFETY: `status` is a valid out pointer.
            let r = unsafe { waitpid(-1, &mut status, WNOHANG) };
            if r <= 0 {
                break;
            }
            if r == pid {
                // Reap what is left (orphans exiting at the same time) and leave.
                loop {
                    let mut st: c_int = 0;
                    // SAFETY: `st` is a valid out pointer.
                    if unsafe { waitpid(-1, &mut st, WNOHANG) } <= 0 {
                        break;
                    }
                }
                let code = if status & 0x7f == 0 {
                    (status >> 8) & 0xff
                } else {
                    128 + (status & 0x7f)
                };
                std::process::exit(code);
            }
        }
    }
}
