//! Compose projects: the compose model (`compose`), its mapping to the engine's options
//! (`options`), and the per-project supervisor that keeps services' replicas running,
//! balanced, scaled and updated (`supervisor`, `lb`). docs/services.md.
#![forbid(unsafe_code)]
pub mod build;
pub mod compose;
mod error;
pub mod files;
pub mod kube;
pub mod lb;
pub mod ops;
pub mod options;
pub mod replicas;
pub mod state;
pub mod supervisor;

pub use error::{Error, Result};
