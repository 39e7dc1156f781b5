//! The container lifecycle behind `berth-runtime`: state, the init
//! hand-off, rootfs, hooks and the operations runc's commands map to.
//! Synchronous and single-threaded by design: the runtime forks, and a fork
//! is only simple in a process with one thread.
#![forbid(unsafe_code)]

pub mod container;
pub mod criu;
pub mod exec;
pub mod features;
pub mod hooks;
pub mod init;
pub mod inroot;
pub mod rootfs;
pub mod seccomp;
pub mod selfexe;
pub mod spawn;
pub mod state;
pub mod sync;
pub use berth_sys::timing;
pub mod tty;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container does not exist: {0}")]
    NotExist(String),
    #[error("container with given ID already exists: {0}")]
    Exists(String),
    #[error("invalid container id {0:?}: use letters, digits, '_', '+', '-' and '.'")]
    InvalidId(String),
    #[error("container does not exist: {0} (its state directory holds no state)")]
    NoState(String),
    #[error("corrupt state file {path}")]
    CorruptState {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("container not running")]
    NotRunning,
    #[error("{0}")]
    BadState(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] berth_oci::Error),
    #[error(transparent)]
    Cgroup(#[from] berth_cgroups::Error),
    #[error("{0}")]
    Child(String),
    #[error("sync protocol: {0}")]
    Protocol(String),
    #[error("{0}")]
    Hook(String),
}

impl Error {
    pub fn io(what: String, source: std::io::Error) -> Self {
        Error::Io { what, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Render an error and its chain on one line, the way every message of the
/// runtime is printed (in the child too, before it travels to the parent).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.ends_with(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}
