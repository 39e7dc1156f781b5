//! `run`/`create` options after the CLI has parsed and resolved its flags (the "HiArgs").
//! Stored in the container's config.json, so `start`, `restart`, the monitor and `inspect`
//! see exactly what was asked for.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CreateOptions {
    /// The image as the user named it (`busybox`, `127.0.0.1:5000/x:1`, an ID).
    pub image: String,
    pub name: Option<String>,
    /// --entrypoint ("" clears the image's entrypoint, as docker).
    pub entrypoint: Option<Vec<String>>,
    /// Arguments after the image; None keeps the image's Cmd.
    pub cmd: Option<Vec<String>>,
    /// -e and --env-file, resolved to KEY=VALUE (a bare KEY takes the caller's value).
    pub env: Vec<String>,
    pub workdir: Option<String>,
    /// -u user[:group]
    pub user: Option<String>,
    /// --group-add (names resolved through the image's /etc/group, or numbers)
    pub group_add: Vec<String>,
    pub hostname: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub tty: bool,
    /// -i
    pub open_stdin: bool,
    /// --rm
    pub auto_remove: bool,
    /// --init
    pub init: bool,
    pub read_only: bool,
    pub mounts: Vec<MountSpec>,
    pub resources: Resources,
    pub security: Security,
    pub restart: RestartPolicy,
    pub health: Option<HealthConfig>,
    /// --no-healthcheck
    pub no_healthcheck: bool,
    pub health_on_failure: HealthOnFailure,
    /// A second check that only reports readiness (kube play's readinessProbe beside a
    /// different livenessProbe): the record's `readiness`, `readiness_status` events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<HealthConfig>,
    /// --stop-signal (name or number, as given)
    pub stop_signal: Option<String>,
    /// --stop-timeout in seconds
    pub stop_timeout: Option<i64>,
    pub network: NetworkMode,
    /// The networks of NetworkMode::Bridge, in order (the first one gives the default
    /// route, the hostname's address and the published ports' target).
    #[serde(default)]
    pub networks: Vec<NetworkAttach>,
    /// -p values as given, plus (-P) one `PORT/PROTO` per exposed port (resolved at
    /// create, with the image's ExposedPorts); parsed again at each start.
    #[serde(default)]
    pub publish: Vec<String>,
    /// -P
    #[serde(default)]
    pub publish_all: bool,
    /// --expose values as given (PORT[-END][/PROTO]).
    #[serde(default)]
    pub expose: Vec<String>,
    #[serde(default)]
    pub dns: DnsOptions,
    /// --sysctl
    pub sysctls: BTreeMap<String, String>,
    /// --runtime: a path or a name found in PATH; None = berth-runtime next to berth.
    pub runtime: Option<String>,
    /// --log-opt max-size / max-file
    pub log: LogOptions,
    /// --cgroup-parent, else $BERTH_CGROUP_PARENT, else "/berth" (resolved at create);
    /// the container's cgroupsPath is `<parent>/<id>`.
    pub cgroup_parent: String,
    /// --pid, --ipc, --uts, --userns, --cgroupns
    #[serde(default)]
    pub namespaces: NamespaceModes,
    /// --volumes-from CONTAINER[:ro|rw], as given (resolved into `mounts` at create).
    #[serde(default)]
    pub volumes_from: Vec<String>,
    /// --platform os/arch[/variant]: the image must be of this platform.
    #[serde(default)]
    pub platform: Option<String>,
}

/// How a container gets one kind of namespace (docker's PidMode, IpcMode, UTSMode,
/// UsernsMode, CgroupnsMode). Which values a kind takes is checked by `parse::ns_mode`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum NsMode {
    /// Not asked for: the engine's default for the kind.
    #[default]
    Default,
    /// Its own namespace (ipc: not joinable; cgroupns: its own).
    Private,
    /// The host's namespace.
    Host,
    /// ipc: its own namespace, which other containers may join.
    Shareable,
    /// ipc: its own namespace without /dev/shm.
    None,
    /// `container:NAME|ID`: the namespace of another (running) container.
    Container(String),
}

impl NsMode {
    /// docker's name of the mode (`host`, `container:db`...); `default` for Default.
    pub fn docker(&self, default: &str) -> String {
        match self {
            NsMode::Default => default.to_string(),
            NsMode::Private => "private".into(),
            NsMode::Host => "host".into(),
            NsMode::Shareable => "shareable".into(),
            NsMode::None => "none".into(),
            NsMode::Container(r) => format!("container:{r}"),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct NamespaceModes {
    pub pid: NsMode,
    pub ipc: NsMode,
    pub uts: NsMode,
    pub userns: NsMode,
    pub cgroupns: NsMode,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum MountSpec {
    /// -v /host:/ctr[:ro] or --mount type=bind
    Bind {
        source: String,
        target: String,
        read_only: bool,
        /// bind-propagation (private by default)
        propagation: Option<String>,
        /// -v: a missing source directory is made (docker's -v); --mount refuses it.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        create_source: bool,
    },
    /// -v name:/ctr or --mount type=volume; name None = anonymous (from -v /ctr or the image)
    Volume {
        name: Option<String>,
        target: String,
        read_only: bool,
    },
    /// --tmpfs /ctr[:opts] or --mount type=tmpfs
    Tmpfs {
        target: String,
        size: Option<u64>,
        mode: Option<u32>,
        options: Vec<String>,
    },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    /// -m bytes
    pub memory: Option<i64>,
    /// --memory-swap bytes (-1 unlimited)
    pub memory_swap: Option<i64>,
    /// --cpus as nano-cpus (docker's NanoCPUs)
    pub nano_cpus: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub pids_limit: Option<i64>,
    /// --ulimit name=soft[:hard]
    pub ulimits: Vec<Ulimit>,
    /// --device host[:ctr[:rwm]]
    pub devices: Vec<DeviceSpec>,
    /// --shm-size bytes (default 64 MiB)
    pub shm_size: Option<u64>,
    /// --memory-reservation bytes (the soft limit)
    #[serde(default)]
    pub memory_reservation: Option<i64>,
    /// --oom-kill-disable
    #[serde(default)]
    pub oom_kill_disable: bool,
    /// --memory-swappiness 0..=100 (None or -1: the host's)
    #[serde(default)]
    pub memory_swappiness: Option<i64>,
    /// --cpu-quota and --cpu-period in microseconds (CFS)
    #[serde(default)]
    pub cpu_quota: Option<i64>,
    #[serde(default)]
    pub cpu_period: Option<u64>,
    /// --blkio-weight 10..=1000 (0: unset)
    #[serde(default)]
    pub blkio_weight: Option<u16>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ulimit {
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DeviceSpec {
    pub host_path: String,
    pub container_path: String,
    /// "rwm" subset
    pub permissions: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Security {
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    /// --security-opt seccomp=...: None = moby's default profile.
    pub seccomp: Option<SeccompOpt>,
    /// --security-opt no-new-privileges[=true|false]; docker's default is false, Berth's
    /// is true (DEF-*): None means the default.
    pub no_new_privileges: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", tag = "kind", content = "value")]
pub enum SeccompOpt {
    Unconfined,
    /// The profile's JSON, read at create time (the file may go away later).
    Profile(String),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    #[default]
    No,
    /// on-failure[:N]; N = 0 means no limit
    OnFailure(u32),
    Always,
    UnlessStopped,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HealthConfig {
    /// docker's Test: ["CMD", args...] or ["CMD-SHELL", "cmd"] or ["NONE"]
    pub test: Vec<String>,
    /// nanoseconds, as docker (0 = default: 30 s interval, 30 s timeout, 0 start period)
    pub interval: i64,
    pub timeout: i64,
    pub start_period: i64,
    /// Between checks while starting within the start period (0 = the interval).
    #[serde(default)]
    pub start_interval: i64,
    /// 0 = default 3
    pub retries: i64,
    /// Successes in a row that make an unhealthy (or starting) container healthy again
    /// (the kubelet's successThreshold); 0 = 1.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub success_threshold: i64,
    /// A check made from the engine's side instead of running `test` in the container
    /// (`kube play`'s httpGet and tcpSocket probes); `test` then only describes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<NetProbe>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// A probe the monitor makes by connecting to the container, as the kubelet does.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum NetProbe {
    /// An HTTP GET of `path`; a status 200-399 passes.
    #[serde(rename_all = "camelCase")]
    HttpGet {
        /// None: the container's own address.
        host: Option<String>,
        port: u16,
        path: String,
        /// Extra request headers, in order (a `Host` one replaces the default).
        headers: Vec<(String, String)>,
    },
    /// A TCP connect.
    #[serde(rename_all = "camelCase")]
    TcpSocket { host: Option<String>, port: u16 },
}

/// podman's --health-on-failure.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum HealthOnFailure {
    #[default]
    None,
    Kill,
    Restart,
    Stop,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkMode {
    /// On bridge networks (`CreateOptions::networks`; `bridge`, the default network,
    /// when none is named), as docker.
    #[default]
    Bridge,
    /// Its own network namespace with only `lo`.
    None,
    /// The host's network namespace.
    Host,
    /// `container:NAME|ID`: the network namespace of another (running) container.
    Container(String),
}

/// One network a container is on (`--network NAME`, `network connect`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkAttach {
    /// The network's id (resolved at create, so a rename or a new network of the same
    /// name does not change what the container is on) and its name.
    pub network_id: String,
    pub name: String,
    /// --network-alias (user-defined networks only, as docker).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// --ip / --ip6 (user-defined networks only, as docker).
    #[serde(default)]
    pub ipv4: Option<String>,
    #[serde(default)]
    pub ipv6: Option<String>,
    /// --mac-address
    #[serde(default)]
    pub mac: Option<String>,
}

/// DNS and hosts options (--dns, --dns-search, --dns-option, --add-host).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DnsOptions {
    pub servers: Vec<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
    /// NAME:IP (IP may be `host-gateway`)
    pub extra_hosts: Vec<String>,
}

/// The smallest `-m` accepted: below it the runtime's own setup does not fit (measured for
/// berth-runtime on cgroup v1: 256-384 KiB already fails now and then), so `-m 1` gets this
/// message instead of the kernel's EBUSY or an OOM kill. docker's floor is 6 MiB.
pub const MIN_MEMORY: i64 = 1 << 20;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LogOptions {
    /// --log-driver
    #[serde(default)]
    pub driver: LogDriver,
    /// bytes; None = no rotation (as stored; the CLI fills in the defaults below)
    pub max_size: Option<u64>,
    /// files kept, including the current one
    pub max_file: Option<u32>,
}

impl LogOptions {
    /// `--log-opt max-size` when none is given: logs are bounded by default (docker's are
    /// not; `max-size=-1` asks for that).
    pub const DEFAULT_MAX_SIZE: u64 = 10 << 20;
    /// `--log-opt max-file` when none is given and the log is bounded.
    pub const DEFAULT_MAX_FILE: u32 = 3;
}

/// --log-driver: json-file (the default), local (documented as the same json-file log:
/// bounded and rotated by default), none (output dropped; `logs` refuses, as docker).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum LogDriver {
    #[default]
    JsonFile,
    Local,
    None,
}

impl LogDriver {
    pub fn name(self) -> &'static str {
        match self {
            LogDriver::JsonFile => "json-file",
            LogDriver::Local => "local",
            LogDriver::None => "none",
        }
    }
}
