//! A project's containers as the engine records them (the observed state), and the
//! blocking engine calls the supervisor hands to worker threads.

use crate::compose::{Project, Service};
use crate::{Error, Result};
use berth_engine::layout::Layout;
use berth_engine::record::{ContainerConfig, ContainerState};
use berth_image::store::Store;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

pub const L_PROJECT: &str = "com.docker.compose.project";
pub const L_SERVICE: &str = "com.docker.compose.service";
pub const L_NUMBER: &str = "com.docker.compose.container-number";
pub const L_HASH: &str = "com.docker.compose.config-hash";
pub const L_ONEOFF: &str = "com.docker.compose.oneoff";

/// One container of the project.
#[derive(Debug, Clone)]
pub struct Member {
    pub config: ContainerConfig,
    pub state: Option<ContainerState>,
}

impl Member {
    pub fn id(&self) -> &str {
        &self.config.id
    }
    pub fn label(&self, k: &str) -> &str {
        self.config
            .options
            .labels
            .get(k)
            .map(|s| s.as_str())
            .unwrap_or("")
    }
    pub fn service(&self) -> &str {
        self.label(L_SERVICE)
    }
    pub fn number(&self) -> u32 {
        self.label(L_NUMBER).parse().unwrap_or(0)
    }
    pub fn oneoff(&self) -> bool {
        self.label(L_ONEOFF) == "True"
    }
    pub fn running(&self) -> bool {
        self.state
            .as_ref()
            .is_some_and(berth_engine::status::is_running)
    }
}

/// The project's containers (one-off ones too), by number within each service.
pub fn members(layout: &Layout, project: &str) -> Result<Vec<Member>> {
    let mut v = Vec::new();
    for id in layout.container_ids()? {
        let Ok(config) = layout.load_config(&id) else {
            continue;
        };
        if config.options.labels.get(L_PROJECT).map(|s| s.as_str()) != Some(project) {
            continue;
        }
        let state = berth_engine::status::current(layout, &id).ok();
        v.push(Member { config, state });
    }
    v.sort_by(|a, b| {
        (a.service(), a.oneoff(), a.number()).cmp(&(b.service(), b.oneoff(), b.number()))
    });
    Ok(v)
}

/// A running container's IPv4 address on each network (network id -> address).
pub fn addresses(state: &ContainerState) -> BTreeMap<String, Ipv4Addr> {
    let mut m = BTreeMap::new();
    if let Some(n) = &state.network {
        for ep in &n.endpoints {
            if let Some(std::net::IpAddr::V4(a)) = ep.ipv4 {
                m.insert(ep.network_id.clone(), a);
            }
        }
    }
    m
}

/// Creates and starts replica `number` of `svc`: its container id. A container left
/// over with the same name (a replica whose removal was cut short) is removed first.
pub fn launch(
    layout: &Layout,
    store: &Store,
    project: &Project,
    svc: &Service,
    number: u32,
    hash: &str,
) -> Result<String> {
    let mut opts = crate::options::create_options(project, svc, number, false)?;
    crate::files::mount(layout, project, svc, &mut opts)?;
    opts.labels.insert(L_HASH.into(), hash.to_string());
    if let Some(name) = &opts.name {
        if let Some(old) = berth_engine::lookup::id_of_name(layout, name) {
            berth_engine::control::remove(layout, store, &old, name, true, true)?;
        }
    }
    let c = berth_engine::create::create_container(layout, store, opts)?;
    if let Err(e) = berth_engine::create::start_container(layout, store, &c.id, false) {
        let _ = berth_engine::control::remove(layout, store, &c.id, &c.name, true, true);
        return Err(Error::Invalid(format!(
            "start {}: {}",
            c.name,
            berth_engine::error::chain(&e)
        )));
    }
    Ok(c.id)
}

/// Stops (its stop signal, then SIGKILL after `grace_secs`) and removes a replica with
/// its anonymous volumes. `drain`: how long it runs on first, out of the load balancer
/// already, so that the connections it holds can finish.
pub fn retire(
    layout: &Layout,
    store: &Store,
    id: &str,
    grace_secs: i64,
    drain: std::time::Duration,
) -> Result<()> {
    if !drain.is_zero() {
        std::thread::sleep(drain);
    }
    if layout.container_dir(id).is_dir() {
        let _ = berth_engine::control::stop(layout, store, id, None, Some(grace_secs));
        berth_engine::control::remove(layout, store, id, id, true, true)?;
    }
    Ok(())
}
