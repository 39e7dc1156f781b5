//! CreateOptions + image config -> the OCI runtime spec, with docker's hardened defaults.
//! (Placeholder signature; its owner fills it in.)

use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::options::{CreateOptions, HealthConfig};
use crate::record::VolumeUse;
use berth_registry::manifest::ImageConfig;
use std::os::fd::BorrowedFd;
use std::path::Path;

/// What build_spec needs besides the options and the image.
pub struct SpecContext<'a> {
    /// The container's ID (64 hex).
    pub id: &'a str,
    pub layout: &'a Layout,
    /// Absolute path of the mounted rootfs (root.path of the spec).
    pub rootfs_path: &'a Path,
    /// Host path of the static berth-init binary; Some when options.init.
    pub init_path: Option<&'a Path>,
}

/// The spec and what the records keep of it.
pub struct BuiltSpec {
    pub spec: oci_spec::runtime::Spec,
    /// Volumes used (named ones created if missing, anonymous ones created).
    pub volumes: Vec<VolumeUse>,
    /// The health check in effect: flags, else the image's; None with --no-healthcheck.
    pub health: Option<HealthConfig>,
    /// Stop signal number: --stop-signal, else the image's StopSignal, else SIGTERM.
    pub stop_signal: i32,
    /// process.args[0] and the rest, for ps/inspect (Path and Args).
    pub path: String,
    pub args: Vec<String>,
}

/// Builds the spec. `rootfs` is an fd of the mounted rootfs, used (only) to read the
/// image's /etc/passwd and /etc/group with RESOLVE_IN_ROOT.
pub fn build_spec(
    _opts: &CreateOptions,
    _image: &ImageConfig,
    _rootfs: BorrowedFd<'_>,
    _ctx: &SpecContext<'_>,
) -> Result<BuiltSpec> {
    Err(Error::Invalid("build_spec is not written yet".into()))
}
