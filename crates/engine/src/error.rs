use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", .0.display())]
    Io(PathBuf, #[source] std::io::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("no such container: {0}")]
    NoSuchContainer(String),
    #[error("container name {0:?} is already in use")]
    NameInUse(String),
    #[error("no such volume: {0}")]
    NoSuchVolume(String),
    // transparent: the image error's own message and sources, once each.
    #[error(transparent)]
    Image(#[from] berth_image::Error),
    #[error("decode {}", .0.display())]
    Json(PathBuf, #[source] serde_json::Error),
    #[error("{0}")]
    Protocol(String),
    /// A container whose creation was cut short (its config.json was never written).
    #[error("container {id} is incomplete: {reason}")]
    Incomplete { id: String, reason: String },
    /// A container whose record cannot be read.
    #[error("container {id}: {reason}")]
    Unreadable { id: String, reason: String },
    /// The container has live processes or a live monitor; the operation needs it stopped.
    #[error("container {0} is running")]
    Busy(String),
    /// --platform and a local image of another platform (docker's message).
    #[error("image with reference {reference} was found but does not match the specified platform: wanted {wanted}, actual: {actual}")]
    PlatformMismatch {
        reference: String,
        wanted: String,
        actual: String,
    },
    #[error("network {0} not found")]
    NoSuchNetwork(String),
    #[error("{0}")]
    Network(#[from] berth_network::Error),
}

impl Error {
    pub fn io(p: impl Into<PathBuf>, e: std::io::Error) -> Error {
        Error::Io(p.into(), e)
    }
}

/// An error and its sources, joined with ": " (a source already at the end of the text
/// is not repeated): the one printer of error chains for the engine's binaries.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.ends_with(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}
