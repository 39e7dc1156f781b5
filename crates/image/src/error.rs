use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Io(String, #[source] std::io::Error),
    #[error("malformed json in {0}")]
    Json(String, #[source] serde_json::Error),
    #[error("invalid digest {0:?}")]
    BadDigest(String),
    #[error("invalid container id {0:?}")]
    BadId(String),
    #[error("{what} is corrupt: expected {expected}, got {actual}")]
    Corrupt {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("no such image: {0}")]
    NoSuchImage(String),
    #[error("image reference {0:?} matches more than one image")]
    Ambiguous(String),
    #[error("image {image} is in use by container(s) {containers}")]
    InUse { image: String, containers: String },
    #[error("image {0} has several tags; remove them by name or use --force")]
    MultipleTags(String),
    #[error("layer {layer}: {reason}")]
    Unsafe { layer: String, reason: String },
    #[error("layer {layer}: entry {entry:?}")]
    Entry {
        layer: String,
        entry: String,
        #[source]
        source: std::io::Error,
    },
    #[error("layer {0}: unsupported media type {1:?}")]
    LayerType(String, String),
    #[error("layer {layer}: diffID mismatch: config says {expected}, content is {actual}")]
    DiffId {
        layer: String,
        expected: String,
        actual: String,
    },
    #[error("image config lists {diff_ids} diffIDs but the manifest has {layers} layers")]
    LayerCount { diff_ids: usize, layers: usize },
    #[error("no manifest in {index} for platform {platform} (available: {available})")]
    NoPlatform {
        index: String,
        platform: String,
        available: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Registry(#[from] berth_registry::RegistryError),
    #[error(transparent)]
    Manifest(#[from] berth_registry::manifest::ManifestError),
    #[error(transparent)]
    Reference(#[from] berth_registry::reference::ReferenceError),
    /// "mount of PATH (step)" or "unmount PATH".
    #[error("{0}")]
    Mount(String, #[source] std::io::Error),
    /// A path under the storage root that another user could have planted or can change.
    #[error("refusing storage path {path}: {reason}")]
    Untrusted { path: String, reason: String },
}

impl Error {
    pub fn io(p: &Path, e: std::io::Error) -> Error {
        Error::Io(p.display().to_string(), e)
    }
}

pub type Result<T> = std::result::Result<T, Error>;
