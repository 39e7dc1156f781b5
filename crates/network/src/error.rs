use std::io;
use std::path::PathBuf;

/// The crate's error. Messages worded by docker (bad `-p`, `--subnet`, a port in use, ...)
/// are kept exactly, so that the CLI can print them as docker does.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input from the user; the message is docker's.
    #[error("{0}")]
    Invalid(String),
    /// A host port that is to be published is taken (docker's words).
    #[error("Bind for {addr} failed: port is already allocated")]
    PortAllocated { addr: String },
    /// No address left in a network's pool (docker's words).
    #[error("no available IPv{family} addresses on this network's address pools")]
    PoolExhausted { family: u8 },
    /// A requested address is leased to another owner (docker's words).
    #[error("Address already in use")]
    AddressInUse,
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A record exists but is not what it should be.
    #[error("{}: {msg}", path.display())]
    Record { path: PathBuf, msg: String },
    /// A netlink request failed; `op` names it and the interface concerned.
    #[error("netlink: {op}: {source}{}", ext.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Netlink {
        op: String,
        #[source]
        source: io::Error,
        /// The kernel's extended ack message, when it sent one.
        ext: Option<String>,
    },
    /// A system call outside netlink failed.
    #[error("{op}: {source}")]
    Sys {
        op: String,
        #[source]
        source: io::Error,
    },
    /// `nft` refused a ruleset or could not be run.
    #[error("nft: {0}")]
    Nft(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}

pub(crate) fn sys_err(op: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let op = op.into();
    move |source| Error::Sys { op, source }
}

pub(crate) fn invalid(msg: impl Into<String>) -> Error {
    Error::Invalid(msg.into())
}
