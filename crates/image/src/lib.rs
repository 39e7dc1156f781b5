//! Images: the content store, safe layer unpacking, overlay rootfs, archives, pull/push
//! and the image-config to runtime-spec conversion.
#![forbid(unsafe_code)]

pub mod archive;
pub mod distribution;
pub mod error;
pub mod layers;
pub mod overlay;
pub mod spec;
pub mod store;
pub mod unpack;

pub use error::{Error, Result};
pub use store::{ImageRecord, Store};
