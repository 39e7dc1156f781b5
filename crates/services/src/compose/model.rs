//! The resolved compose model: what `load` returns after parsing, interpolation, merging,
//! validation and normalisation. Every compose key berth accepts has a field here; keys
//! the compose specification has but berth does not support are rejected by the loader.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::duration::{serde_duration, serde_duration_opt};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Project {
    pub name: String,
    pub working_dir: PathBuf,
    pub config_files: Vec<PathBuf>,
    pub services: BTreeMap<String, Service>,
    pub networks: BTreeMap<String, NetworkDef>,
    pub volumes: BTreeMap<String, VolumeDef>,
    /// Services excluded by profiles (not active): the CLI may enable one named explicitly.
    pub disabled: BTreeMap<String, Service>,
    /// The variables of the environment interpolation used (process env over `.env`)
    /// that a service's `environment: {KEY: null}` takes; only those, so that a stored
    /// project does not hold the whole environment of the shell that loaded it.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// What docker compose prints as warnings (unset variables, obsolete `version`,
    /// optional dependencies left out); the CLI prints them on stderr.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Top-level `secrets:` and `configs:` (what services mount by name).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, FileSource>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub configs: BTreeMap<String, FileSource>,
}

/// Where a secret's or config's content comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileSource {
    /// `file:`, resolved against the project directory.
    File(PathBuf),
    /// `environment:`: the variable, and its value when the file was read.
    Env { var: String, value: String },
    /// A config's `content:`.
    Content(String),
}

/// A secret or config mounted into a service's containers (a read-only file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FileMount {
    /// The name in `Project::secrets` or `Project::configs`.
    pub source: String,
    /// Absolute path in the container.
    pub target: String,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub mode: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Service {
    pub name: String,
    /// `image:`, else (with `build:`) `<project>-<service>` as docker compose v2 names it.
    pub image: String,
    /// `build:`; not serialized when absent, so the config hash of other services stays.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildSpec>,
    /// The ID of the image built for the service (set by `compose::build` before `up`):
    /// part of the config hash, so a rebuilt image replaces the service's containers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// `secrets:` and `configs:` (not serialized when none: other services' hashes stay).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<FileMount>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<FileMount>,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    /// env_file merged in, environment wins; None = take the value from the project env.
    pub environment: BTreeMap<String, Option<String>>,
    pub ports: Vec<PortSpec>,
    /// As given (`"3000"`, `"8000-8010/udp"`).
    pub expose: Vec<String>,
    pub volumes: Vec<ServiceVolume>,
    /// Empty in the file (and no network_mode) => {"default": ..}.
    pub networks: BTreeMap<String, ServiceNetwork>,
    pub network_mode: Option<String>,
    pub healthcheck: Option<Healthcheck>,
    pub depends_on: BTreeMap<String, Dependency>,
    /// `no`, `always`, `on-failure[:N]`, `unless-stopped` (validated).
    pub restart: Option<String>,
    pub deploy: Deploy,
    pub labels: BTreeMap<String, String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub read_only: bool,
    pub security_opt: Vec<String>,
    pub init: Option<bool>,
    pub stop_signal: Option<String>,
    #[serde(with = "serde_duration_opt", default)]
    pub stop_grace_period: Option<Duration>,
    pub ulimits: BTreeMap<String, UlimitSpec>,
    pub sysctls: BTreeMap<String, String>,
    /// `/path[:opts]` as given.
    pub tmpfs: Vec<String>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_opt: Vec<String>,
    /// `NAME:IP` (the mapping form is normalised to this).
    pub extra_hosts: Vec<String>,
    pub profiles: Vec<String>,
    pub container_name: Option<String>,
    pub privileged: bool,
    pub group_add: Vec<String>,
    pub stdin_open: bool,
    pub tty: bool,
    /// `HOST[:CONTAINER[:PERMS]]` as given.
    pub devices: Vec<String>,
    /// Service-level resource keys (deploy.resources.limits wins when both are set).
    pub mem_limit: Option<u64>,
    pub mem_reservation: Option<u64>,
    /// bytes, -1 = unlimited
    pub memswap_limit: Option<i64>,
    pub cpus: Option<f64>,
    pub cpu_shares: Option<u64>,
    pub cpuset: Option<String>,
    pub pids_limit: Option<i64>,
    pub shm_size: Option<u64>,
    /// always | never | missing | if_not_present | build
    pub pull_policy: Option<String>,
    /// `pid`, `ipc`, `uts`, `userns_mode`, `cgroup` as given (docker's modes; checked by
    /// the engine's parser). Like every key added after the first release, not serialized
    /// when unset, so that the config hashes of running projects stay.
    #[serde(default, skip_serializing_if = "Namespaces::is_empty")]
    pub namespaces: Namespaces,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_parent: Option<String>,
    /// `SERVICE[:ro|rw]` or `container:NAME[:ro|rw]`, as given; a service named here is
    /// also a dependency (started first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes_from: Vec<String>,
    /// `runtime:` the OCI runtime (a name found in PATH, or a path), as `berth run --runtime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// `attach: false`: `up` does not follow this service's logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<Logging>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub oom_kill_disable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_swappiness: Option<i64>,
    /// µs
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_quota: Option<i64>,
    /// µs
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_period: Option<i64>,
    /// `x-berth-autoscale`
    pub autoscale: Option<Autoscale>,
    /// What a failing health check does (compose: replace; `kube play` of a
    /// readinessProbe alone: out of the balancer only). Not serialized at its default,
    /// so compose projects' stored models and config hashes are unchanged.
    #[serde(skip_serializing_if = "HealthRole::is_default")]
    pub health_role: HealthRole,
    /// `kube play`'s readinessProbe beside a different livenessProbe (`healthcheck`): a
    /// second check that only takes a replica out of the balancer and back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readiness: Option<Healthcheck>,
}

/// A service's namespace keys, as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Namespaces {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipc: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uts: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub userns_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
}

impl Namespaces {
    pub fn is_empty(&self) -> bool {
        *self == Namespaces::default()
    }
}

/// A service's `logging:`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Logging {
    pub driver: Option<String>,
    pub options: BTreeMap<String, String>,
}

/// A service's `build:` (the short form is `context` alone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct BuildSpec {
    /// Absolute (resolved against the project directory).
    pub context: PathBuf,
    /// Relative to the context, or absolute.
    pub dockerfile: Option<String>,
    pub dockerfile_inline: Option<String>,
    /// None: the value is taken from the environment (dropped when unset), as docker does.
    pub args: BTreeMap<String, Option<String>>,
    pub target: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub no_cache: bool,
    pub pull: bool,
    pub network: Option<String>,
    /// Further names to tag the image with.
    pub tags: Vec<String>,
    /// `secrets:`: (id in the Dockerfile's RUN --mount, name in `Project::secrets`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<(String, String)>,
}

/// The role of a service's health check in the supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HealthRole {
    /// Gates the load balancer and, failing, has the replica replaced (compose's, and a
    /// Kubernetes readiness and liveness probe in one).
    #[default]
    Liveness,
    /// Gates the load balancer only: a failing replica leaves it and comes back when it
    /// passes again (a Kubernetes readinessProbe).
    Readiness,
}

impl HealthRole {
    fn is_default(&self) -> bool {
        *self == HealthRole::Liveness
    }
}

impl Service {
    /// The policy the supervisor follows when a replica exits or turns unhealthy:
    /// deploy.restart_policy, else the service's `restart:` (no → none, on-failure[:N] →
    /// on-failure with N attempts, always / unless-stopped → any), else swarm's default
    /// (any). A delay of None is the supervisor's default.
    pub fn restart_policy(&self) -> RestartPolicySpec {
        if let Some(p) = &self.deploy.restart_policy {
            return p.clone();
        }
        let condition = match self.restart.as_deref() {
            Some("no") => RestartCondition::None,
            Some(r) if r.starts_with("on-failure") => RestartCondition::OnFailure,
            _ => RestartCondition::Any,
        };
        let max_attempts = self
            .restart
            .as_deref()
            .and_then(|r| r.strip_prefix("on-failure:"))
            .and_then(|n| n.parse().ok())
            .filter(|n| *n > 0);
        RestartPolicySpec {
            condition,
            delay: None,
            max_attempts,
            window: None,
        }
    }

    /// How many replicas `up` starts: deploy.replicas, else autoscale's min, else 1.
    pub fn replicas(&self) -> u32 {
        self.deploy
            .replicas
            .or(self.autoscale.as_ref().map(|a| a.min))
            .unwrap_or(1)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortSpec {
    pub target: u16,
    /// "8080" or "8080-8081"; None = not published.
    pub published: Option<String>,
    pub host_ip: Option<String>,
    /// tcp | udp
    pub protocol: String,
    /// ingress | host
    pub mode: String,
    pub name: Option<String>,
    pub app_protocol: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VolumeKind {
    Bind,
    Volume,
    Tmpfs,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceVolume {
    pub kind: VolumeKind,
    /// bind: an absolute host path (resolved against the project dir); volume: the compose
    /// name (a key of `Project::volumes`), None = anonymous; tmpfs: None.
    pub source: Option<String>,
    pub target: String,
    pub read_only: bool,
    /// bind: propagation (rprivate, shared, ...)
    pub propagation: Option<String>,
    /// bind: create the host path when missing (short syntax: true, as compose)
    pub create_host_path: bool,
    /// bind: SELinux relabel `z`/`Z`
    pub selinux: Option<String>,
    /// volume: nocopy
    pub nocopy: bool,
    /// tmpfs: size in bytes
    pub tmpfs_size: Option<u64>,
    /// tmpfs: mode
    pub tmpfs_mode: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ServiceNetwork {
    pub aliases: Vec<String>,
    pub ipv4_address: Option<String>,
    pub ipv6_address: Option<String>,
    pub mac_address: Option<String>,
    /// Higher first, as docker compose orders a container's networks (ties: by name).
    pub priority: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Healthcheck {
    /// docker's form: ["CMD", ..] | ["CMD-SHELL", ".."] | ["NONE"]
    pub test: Vec<String>,
    #[serde(with = "serde_duration_opt", default)]
    pub interval: Option<Duration>,
    #[serde(with = "serde_duration_opt", default)]
    pub timeout: Option<Duration>,
    #[serde(with = "serde_duration_opt", default)]
    pub start_period: Option<Duration>,
    #[serde(with = "serde_duration_opt", default)]
    pub start_interval: Option<Duration>,
    pub retries: Option<u64>,
    pub disable: bool,
    /// Not from compose files: `kube play`'s successThreshold and its httpGet/tcpSocket
    /// probes, which the monitor makes from the engine's side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_threshold: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<berth_engine::options::NetProbe>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    ServiceStarted,
    ServiceHealthy,
    ServiceCompletedSuccessfully,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    pub condition: Condition,
    pub restart: bool,
    pub required: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EndpointMode {
    #[default]
    Vip,
    Dnsrr,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Deploy {
    pub replicas: Option<u32>,
    /// `replicated` only (`global` is an error).
    pub mode: Option<String>,
    pub endpoint_mode: EndpointMode,
    pub resources: Resources,
    pub restart_policy: Option<RestartPolicySpec>,
    pub update_config: Option<UpdateConfig>,
    pub rollback_config: Option<UpdateConfig>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Resources {
    pub limits: ResourceSpec,
    pub reservations: ResourceSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ResourceSpec {
    pub cpus: Option<f64>,
    /// bytes
    pub memory: Option<u64>,
    pub pids: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RestartCondition {
    None,
    OnFailure,
    #[default]
    Any,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RestartPolicySpec {
    pub condition: RestartCondition,
    #[serde(with = "serde_duration_opt", default)]
    pub delay: Option<Duration>,
    pub max_attempts: Option<u32>,
    #[serde(with = "serde_duration_opt", default)]
    pub window: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FailureAction {
    #[default]
    Pause,
    Continue,
    Rollback,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Order {
    #[default]
    StopFirst,
    StartFirst,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateConfig {
    /// 0 = all at once (as swarm)
    pub parallelism: u32,
    #[serde(with = "serde_duration")]
    pub delay: Duration,
    pub failure_action: FailureAction,
    /// swarm's default: 5s
    #[serde(with = "serde_duration")]
    pub monitor: Duration,
    pub max_failure_ratio: f64,
    pub order: Order,
}

impl Default for UpdateConfig {
    fn default() -> Self {
        UpdateConfig {
            parallelism: 1,
            delay: Duration::ZERO,
            failure_action: FailureAction::Pause,
            monitor: Duration::from_secs(5),
            max_failure_ratio: 0.0,
            order: Order::StopFirst,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UlimitSpec {
    pub soft: i64,
    pub hard: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AutoscaleTarget {
    CpuPercent(f64),
    ConnectionsPerReplica(f64),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Autoscale {
    pub min: u32,
    pub max: u32,
    pub target: AutoscaleTarget,
    #[serde(with = "serde_duration")]
    pub scale_up_after: Duration,
    #[serde(with = "serde_duration")]
    pub scale_down_after: Duration,
}

impl Autoscale {
    pub const DEFAULT_SCALE_UP_AFTER: Duration = Duration::from_secs(30);
    pub const DEFAULT_SCALE_DOWN_AFTER: Duration = Duration::from_secs(60);
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct NetworkDef {
    /// The real name: `<project>_<key>`, or `name:`, or the external network's name.
    pub name: String,
    pub driver: Option<String>,
    pub internal: bool,
    pub external: bool,
    pub enable_ipv6: bool,
    pub attachable: bool,
    pub ipam: Option<Ipam>,
    pub labels: BTreeMap<String, String>,
    pub driver_opts: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Ipam {
    pub driver: Option<String>,
    pub config: Vec<IpamConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct IpamConfig {
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub ip_range: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct VolumeDef {
    /// The real name: `<project>_<key>`, or `name:`, or the external volume's name.
    pub name: String,
    pub external: bool,
    pub driver: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub driver_opts: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policy_from_deploy_or_restart() {
        let mut s = Service::default();
        assert_eq!(s.restart_policy().condition, RestartCondition::Any);
        s.restart = Some("no".into());
        assert_eq!(s.restart_policy().condition, RestartCondition::None);
        s.restart = Some("on-failure:4".into());
        let p = s.restart_policy();
        assert_eq!(
            (p.condition, p.max_attempts),
            (RestartCondition::OnFailure, Some(4))
        );
        s.deploy.restart_policy = Some(RestartPolicySpec {
            condition: RestartCondition::Any,
            delay: Some(Duration::from_secs(1)),
            max_attempts: None,
            window: None,
        });
        assert_eq!(s.restart_policy().delay, Some(Duration::from_secs(1)));
    }

    #[test]
    fn replicas_default() {
        let mut s = Service::default();
        assert_eq!(s.replicas(), 1);
        s.autoscale = Some(Autoscale {
            min: 3,
            max: 6,
            target: AutoscaleTarget::CpuPercent(50.0),
            scale_up_after: Duration::from_secs(1),
            scale_down_after: Duration::from_secs(1),
        });
        assert_eq!(s.replicas(), 3);
        s.deploy.replicas = Some(4);
        assert_eq!(s.replicas(), 4);
    }
}
