use thiserror::Error;

/// A compose error; the message names the file, the service and the key where there is one.
#[derive(Debug, Error)]
pub enum ComposeError {
    /// A file that cannot be read or parsed.
    #[error("{0}")]
    File(String),
    /// Invalid content (validation, interpolation, unsupported keys).
    #[error("{0}")]
    Invalid(String),
    /// No compose file found.
    #[error("no configuration file provided: not found")]
    NotFound,
}
