//! The builder's errors: a Dockerfile line when one is to blame, docker's wording where a
//! user would search for it.

use std::path::PathBuf;

pub type Result<T, E = BuildError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Dockerfile(#[from] crate::dockerfile::Error),
    /// Something that went wrong carrying out the instruction at `file:line`.
    #[error("{file}:{line}: {message}")]
    At {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("{}: {err}", path.display())]
    Io { path: PathBuf, err: std::io::Error },
    #[error(transparent)]
    Engine(#[from] berth_engine::Error),
    #[error(transparent)]
    Image(#[from] berth_image::Error),
}

#[allow(non_snake_case)]
impl BuildError {
    /// An I/O error on `path`.
    pub fn Io(path: PathBuf, err: std::io::Error) -> BuildError {
        BuildError::Io { path, err }
    }

    pub fn at(file: &str, line: usize, message: impl Into<String>) -> BuildError {
        BuildError::At {
            file: file.to_string(),
            line,
            message: message.into(),
        }
    }

    /// This error tied to `file:line` unless it already names a line.
    pub fn located(self, file: &str, line: usize) -> BuildError {
        match self {
            e @ (BuildError::At { .. } | BuildError::Dockerfile(_)) => e,
            e => BuildError::at(file, line, berth_engine::error::chain(&e)),
        }
    }
}
