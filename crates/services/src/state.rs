//! A project's records under `R/engine/projects/<name>/`:
//! - `desired.json`: what the user asked for (the resolved model, the scale of each
//!   service, a generation bumped by every change). Written by the CLI (`up`, `scale`,
//!   `stop`, `start`), read by the supervisor, which never writes it except to roll a
//!   service back.
//! - `status.json`: what the supervisor observed and did (written by it only).
//! - `supervisor.pid`: flock'd by the running supervisor.
//!
//! Desired and observed state are kept apart: the CLI never touches containers the
//! supervisor owns except through these files (and `down`, which stops the supervisor
//! first).

use crate::compose::{Project, Service};
use crate::Error;
use berth_engine::layout::Layout;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Desired {
    /// Bumped by every write; the supervisor reports the one it has acted on.
    pub generation: u64,
    pub project: Project,
    /// Services the supervisor keeps (the others in `project` are ignored, e.g. services
    /// not named by `up SVC...` and their dependencies).
    pub active: Vec<String>,
    /// Replicas per service (deploy.replicas, `--scale`, `scale`; autoscaled services are
    /// kept between their min and max by the supervisor, starting from this).
    pub scale: BTreeMap<String, u32>,
    /// `compose stop`: keep the containers but do not run or replace them.
    pub stopped: bool,
    /// The previous definition of each service whose definition changed at the last
    /// `up` (rollback target).
    #[serde(default)]
    pub previous: BTreeMap<String, Service>,
    /// `up --force-recreate` bumps a service's count: part of its replicas' config hash.
    #[serde(default)]
    pub recreate: BTreeMap<String, u64>,
    /// `up --remove-orphans`: containers of services not in the file go.
    #[serde(default)]
    pub remove_orphans: bool,
}

impl Desired {
    /// The config hash replicas of `service` must carry (its definition's, and the
    /// --force-recreate count).
    pub fn target_hash(&self, service: &str) -> String {
        let h = self.project.config_hash(service);
        match self.recreate.get(service) {
            Some(n) if *n > 0 => format!("{h}-{n}"),
            _ => h,
        }
    }
}

/// What the supervisor reports.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Status {
    pub pid: u32,
    /// The desired generation it has converged to (or is working on, see `converged`).
    pub generation: u64,
    pub converged: bool,
    pub services: BTreeMap<String, ServiceStatus>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ServiceStatus {
    /// Replicas wanted now (autoscaling moves it).
    pub desired: u32,
    pub running: u32,
    /// In the load balancer (running, and healthy when there is a healthcheck).
    pub ready: u32,
    /// "updating 2/3", "paused: ...", "rolled back: ...", "" when steady.
    pub update: String,
    /// The last scaling decision: when, from, to and why.
    pub last_scale: Option<ScaleNote>,
    /// Why the supervisor cannot do what is asked (e.g. max_attempts reached).
    pub error: String,
    /// The service's virtual IP on each network (endpoint_mode vip).
    #[serde(default)]
    pub vips: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ScaleNote {
    pub time: String,
    pub from: u32,
    pub to: u32,
    pub reason: String,
}

/// The directory of project `name`.
#[derive(Debug, Clone)]
pub struct ProjectDir {
    pub name: String,
    pub dir: PathBuf,
}

impl ProjectDir {
    pub fn new(layout: &Layout, name: &str) -> ProjectDir {
        ProjectDir {
            name: name.to_string(),
            dir: layout.projects_dir().join(name),
        }
    }
    pub fn desired_path(&self) -> PathBuf {
        self.dir.join("desired.json")
    }
    pub fn status_path(&self) -> PathBuf {
        self.dir.join("status.json")
    }
    pub fn pid_path(&self) -> PathBuf {
        self.dir.join("supervisor.pid")
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("supervisor.log")
    }
    pub fn exists(&self) -> bool {
        self.desired_path().is_file()
    }

    pub fn create(&self) -> Result<(), Error> {
        berth_engine::layout::mkdir_private(self.dir.parent().expect("projects dir"))?;
        berth_engine::layout::mkdir_private(&self.dir)?;
        Ok(())
    }

    pub fn load_desired(&self) -> Result<Option<Desired>, Error> {
        read_json(&self.desired_path())
    }

    /// Writes `d` with the next generation; returns it.
    pub fn save_desired(&self, d: &mut Desired) -> Result<u64, Error> {
        let prev = self
            .load_desired()
            .ok()
            .flatten()
            .map_or(0, |p| p.generation);
        d.generation = prev.max(d.generation) + 1;
        write_json(&self.desired_path(), d)?;
        Ok(d.generation)
    }

    pub fn load_status(&self) -> Option<Status> {
        read_json(&self.status_path()).ok().flatten()
    }

    pub fn save_status(&self, s: &Status) -> Result<(), Error> {
        write_json(&self.status_path(), s)
    }

    /// Removes the project's records (after `down`).
    pub fn remove(&self) -> Result<(), Error> {
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Io(self.dir.clone(), e)),
        }
    }
}

/// Every project with records under this root.
pub fn project_names(layout: &Layout) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(layout.projects_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect();
    v.sort();
    v
}

pub fn read_json<T: for<'de> Deserialize<'de>>(p: &Path) -> Result<Option<T>, Error> {
    match std::fs::read(p) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Error::Invalid(format!("{}: {e}", p.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Io(p.to_path_buf(), e)),
    }
}

/// Written whole or not at all (a reader never sees half a file).
pub fn write_json<T: Serialize>(p: &Path, v: &T) -> Result<(), Error> {
    Ok(berth_engine::record::save_json(p, v)?)
}
