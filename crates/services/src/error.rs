use crate::compose::ComposeError;
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error(transparent)]
    Compose(#[from] ComposeError),
    #[error(transparent)]
    Engine(#[from] berth_engine::Error),
    #[error(transparent)]
    Image(#[from] berth_image::Error),
    #[error("{}", .0.display())]
    Io(PathBuf, #[source] std::io::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("no such service: {0}")]
    NoSuchService(String),
    #[error("project {0} not found")]
    NoSuchProject(String),
}

impl From<berth_network::Error> for Error {
    fn from(e: berth_network::Error) -> Error {
        Error::Engine(berth_engine::Error::Network(e))
    }
}

pub type Result<T> = std::result::Result<T, Error>;
