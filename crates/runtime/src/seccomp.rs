//! linux.seccomp in the container: compiled by the runtime before it forks
//! (cached on disk under --root), loaded by the container's process (init:
//! before [8], so at `create`, as runc's), and, with SCMP_ACT_NOTIFY, the
//! listener fd sent to `listenerPath` with the container process state.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use berth_oci::Config;

use crate::{tty, Error, Result};

/// A filter ready to load.
pub struct Prepared {
    program: berth_seccomp::Program,
    /// Connected to listenerPath (host side), when the profile notifies.
    listener: Option<OwnedFd>,
    metadata: Option<String>,
}

fn err(e: berth_seccomp::Error) -> Error {
    Error::Invalid(format!("linux.seccomp: {}", crate::error_chain(&e)))
}

/// Compile (or take from the cache) and check the kernel can load it.
pub fn prepare(cfg: &Config, state_root: &Path) -> Result<Option<Prepared>> {
    let Some(profile) = &cfg.seccomp else {
        return Ok(None);
    };
    let cache = state_root.join(".seccomp-cache");
    let program = berth_seccomp::compile_cached(profile, &cache).map_err(err)?;
    program.kernel_flags().map_err(err)?;
    let listener = if program.notify {
        let path = profile
            .listener_path()
            .as_ref()
            .ok_or_else(|| Error::Invalid("linux.seccomp: notify without listenerPath".into()))?;
        Some(tty::connect_console_socket(path).map_err(|e| match e {
            Error::Io { source, .. } => Error::io(
                format!("connect to seccomp listener {}", path.display()),
                source,
            ),
            other => other,
        })?)
    } else {
        None
    };
    Ok(Some(Prepared {
        program,
        listener,
        metadata: profile.listener_metadata().clone(),
    }))
}

impl Prepared {
    /// Load the filter; with notify, hand the listener fd over. `state` is
    /// the runtime-spec state document of the container, `pid` the host pid
    /// of this process, `status` the one the listener is told (runc's: creating
    /// for init, running for exec).
    pub fn install(
        &self,
        state: &str,
        pid: i32,
        status: oci_spec::runtime::ContainerState,
    ) -> Result<()> {
        let fd = self.program.load().map_err(err)?;
        if let (Some(sock), Some(fd)) = (&self.listener, fd) {
            let mut st: oci_spec::runtime::State = serde_json::from_str(state)
                .map_err(|e| Error::Invalid(format!("seccomp notify state: {e}")))?;
            st.set_status(status);
            let msg =
                berth_seccomp::notify_message(&st, pid, self.metadata.as_deref()).map_err(err)?;
            tty::send_fd(sock.as_fd(), fd.as_fd(), &msg)
                .map_err(|e| Error::io("send the seccomp listener fd".into(), e))?;
        }
        Ok(())
    }
}
