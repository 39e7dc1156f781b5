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
}

impl Error {
    pub fn io(p: impl Into<PathBuf>, e: std::io::Error) -> Error {
        Error::Io(p.into(), e)
    }
}
