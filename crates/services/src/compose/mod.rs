//! The compose model: parse, interpolate, merge, validate and normalise compose files as
//! docker compose v2 (compose-go) does.

pub mod duration;
mod error;
pub mod model;

pub use error::ComposeError;
pub use model::*;

use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Empty: compose.yaml / compose.yml / docker-compose.yaml / docker-compose.yml in
    /// `working_dir`, plus the matching override file.
    pub files: Vec<PathBuf>,
    /// Where to look for the default files and the project dir (empty = the directory of
    /// the first file, else the current directory).
    pub working_dir: PathBuf,
    pub project_name: Option<String>,
    pub profiles: Vec<String>,
    /// The process environment (the caller passes std::env::vars()).
    pub env: BTreeMap<String, String>,
}

/// Parse, interpolate, merge, validate and normalise.
pub fn load(o: &LoadOptions) -> Result<Project, ComposeError> {
    todo!("{o:?}")
}

impl Project {
    /// `config` output: the resolved model as docker compose v2 prints it.
    pub fn to_yaml(&self) -> String {
        todo!()
    }

    /// sha256 hex of the normalised service (com.docker.compose.config-hash); excludes
    /// deploy.replicas and x-berth-autoscale.
    pub fn config_hash(&self, service: &str) -> String {
        todo!("{service}")
    }

    /// The given services and their dependencies, dependencies first.
    pub fn start_order(&self, services: &[String]) -> Vec<String> {
        todo!("{services:?}")
    }
}
