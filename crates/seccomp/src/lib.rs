#![forbid(unsafe_code)]
//! Compiles OCI `linux.seccomp` profiles to classic BPF in pure Rust (no libseccomp in
//! the product), caches compiled filters, and ships moby's default profile.
//!
//! Typical use by the runtime, as the last step before execve:
//! ```no_run
//! # fn f(profile: &oci_spec::runtime::LinuxSeccomp) -> Result<(), berth_seccomp::Error> {
//! let prog = berth_seccomp::compile_cached(profile, std::path::Path::new("/run/berth/seccomp"))?;
//! // no_new_privs is set (or the caller holds CAP_SYS_ADMIN).
//! let listener = prog.load()?; // Some(fd) when the profile uses SCMP_ACT_NOTIFY
//! # Ok(()) }
//! ```
//!
//! Seccomp notify contract: when [`Program::notify`] is true, [`Program::flags`]
//! contains `SECCOMP_FILTER_FLAG_NEW_LISTENER` and [`Program::load`] returns the
//! listener fd. The runtime must then connect to `listenerPath` (a unix socket) and send
//! one message: the JSON of [`notify_message`] as payload and the listener fd as the
//! only `SCM_RIGHTS` fd, then close its copy. The filter is loaded in the container's
//! init before it reports ready (at `create`), so the fd has to travel from there (runc
//! sends it over its sync pipe; berth's init sends it to `listenerPath` itself). `SCMP_ACT_NOTIFY` is refused as the default action and on
//! `write`, as in runc, because the runtime itself would block on its own filter.

pub mod arch;
pub mod bpf;
mod cache;
mod compile;
mod profile;
mod tables;

use std::os::fd::OwnedFd;

pub use arch::Abi;
pub use bpf::SockFilter;
pub use cache::{compile_cached, compile_cached_with, CacheStatus, COMPILER_VERSION};
pub use compile::{
    compile, compile_with, Options, RET_ALLOW, RET_BADARCH, RET_ERRNO, RET_KILL_PROCESS,
    RET_KILL_THREAD, RET_LOG, RET_TRACE, RET_TRAP, RET_USER_NOTIF,
};
pub use profile::{default_profile, default_profile_for, DEFAULT_PROFILE_JSON};

use berth_sys::seccomp as sys;

/// Errors from compiling or loading a profile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("seccomp architecture {arch} is not supported on native {native}")]
    UnsupportedArch { arch: String, native: &'static str },
    #[error(
        "{what}: errnoRet is only allowed with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {action}"
    )]
    ErrnoNotAllowed { what: String, action: String },
    #[error("{what}: errnoRet {errno} is out of range 0..=4095")]
    ErrnoRange { what: String, errno: u32 },
    #[error("syscalls[{index}] has an empty syscall name")]
    EmptyName { index: usize },
    #[error("seccomp rule for {name}: argument index {index} is out of range 0..=5")]
    ArgIndex { name: String, index: usize },
    #[error("seccomp rule for {name}: valueTwo {value} is only used by SCMP_CMP_MASKED_EQ")]
    ValueTwo { name: String, value: u64 },
    #[error("SCMP_ACT_NOTIFY cannot be the default action")]
    NotifyDefault,
    #[error("SCMP_ACT_NOTIFY cannot be used for the write syscall")]
    NotifyWrite,
    #[error("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs a SCMP_ACT_NOTIFY rule")]
    WaitKillableWithoutNotify,
    #[error("the compiled filter has {0} instructions, the kernel accepts at most 4096")]
    TooLarge(usize),
    #[error("internal error assembling the filter")]
    Asm(#[from] bpf::AsmError),
    #[error("the kernel does not support seccomp action {0}")]
    ActionUnsupported(&'static str),
    #[error("the kernel does not support seccomp filter flags {0:#x}")]
    FlagsUnsupported(u32),
    #[error("loading the seccomp filter")]
    Load(#[source] std::io::Error),
    #[error("seccomp filter cache {path}")]
    Cache {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("encoding the seccomp listener message")]
    Message(#[source] serde_json::Error),
}

/// A compiled filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// The BPF program.
    pub filter: Vec<SockFilter>,
    /// `SECCOMP_FILTER_FLAG_*` the filter must be loaded with (NEW_LISTENER with notify).
    pub flags: u32,
    /// Flags to add only if the kernel has them: SPEC_ALLOW when the profile has no
    /// `flags` list (what runc does).
    pub optional_flags: u32,
    /// The profile uses `SCMP_ACT_NOTIFY`; see the crate docs for the contract.
    pub notify: bool,
    /// Distinct return actions of rules and the default action.
    pub actions: Vec<u32>,
}

fn action_name(a: u32) -> &'static str {
    match a & 0xffff_0000 {
        RET_KILL_PROCESS => "SCMP_ACT_KILL_PROCESS",
        RET_KILL_THREAD => "SCMP_ACT_KILL_THREAD",
        RET_TRAP => "SCMP_ACT_TRAP",
        RET_ERRNO => "SCMP_ACT_ERRNO",
        RET_USER_NOTIF => "SCMP_ACT_NOTIFY",
        RET_TRACE => "SCMP_ACT_TRACE",
        RET_LOG => "SCMP_ACT_LOG",
        _ => "SCMP_ACT_ALLOW",
    }
}

impl Program {
    /// Checks the running kernel supports every action and required flag, and returns
    /// the flags to load with (required plus the supported optional ones).
    pub fn kernel_flags(&self) -> Result<u32, Error> {
        for &a in &self.actions {
            if !sys::action_available(a) {
                return Err(Error::ActionUnsupported(action_name(a)));
            }
        }
        if !sys::flags_supported(self.flags) {
            return Err(Error::FlagsUnsupported(self.flags));
        }
        let mut flags = self.flags;
        for bit in (0..32)
            .map(|i| 1u32 << i)
            .filter(|b| self.optional_flags & b != 0)
        {
            if sys::flags_supported(flags | bit) {
                flags |= bit;
            }
        }
        Ok(flags)
    }

    /// Loads the filter on the calling thread (see [`berth_sys::seccomp`] for the
    /// no_new_privs / CAP_SYS_ADMIN precondition). Returns the listener fd with notify.
    pub fn load(&self) -> Result<Option<OwnedFd>, Error> {
        let flags = self.kernel_flags()?;
        sys::load_filter(&self.filter, flags).map_err(Error::Load)
    }
}

/// The JSON payload the runtime sends to `listenerPath` together with the listener fd
/// (OCI `ContainerProcessState`, fds = ["seccompFd"]).
pub fn notify_message(
    state: &oci_spec::runtime::State,
    pid: i32,
    metadata: Option<&str>,
) -> Result<Vec<u8>, Error> {
    let mut msg = oci_spec::runtime::ContainerProcessState::default();
    msg.set_version(state.version().clone())
        .set_fds(vec![oci_spec::runtime::SECCOMP_FD_NAME.to_string()])
        .set_pid(pid)
        .set_metadata(metadata.map(str::to_string))
        .set_state(state.clone());
    serde_json::to_vec(&msg).map_err(Error::Message)
}

#[cfg(test)]
mod tests;
