//! docker's `run`/`create` flags as given (LowArgs), resolved once into CreateOptions
//! (HiArgs). Every front-end fills these: the CLI parses them (clap, the `cli` feature:
//! names, short options and value syntax are docker's; `-h` is --hostname as in docker, so
//! help is `--help` only), the API server maps a create request's JSON onto them, so both
//! are checked by the same code. Values are parsed by crate::parse.

use crate::error::{Error, Result};
use crate::options::{
    CreateOptions, DnsOptions, HealthConfig, HealthOnFailure, NamespaceModes, NetworkAttach,
    NetworkMode, NsMode, Resources, SeccompOpt, Security, MIN_MEMORY,
};
use crate::parse;
use std::collections::BTreeMap;

/// A bad value: the message docker gives.
macro_rules! bail {
    ($($t:tt)*) => {
        return Err(Error::Invalid(format!($($t)*)))
    };
}

#[derive(Debug, Clone, Default)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
#[cfg_attr(feature = "cli", command(disable_help_flag = true))]
pub struct RunFlags {
    /// Print help
    #[cfg_attr(feature = "cli", arg(long, action = clap::ArgAction::Help))]
    pub help: Option<bool>,
    /// Assign a name to the container
    #[cfg_attr(feature = "cli", arg(long))]
    pub name: Option<String>,
    /// Set environment variables (KEY=VALUE, or KEY to pass the caller's value)
    #[cfg_attr(feature = "cli", arg(short = 'e', long = "env"))]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[cfg_attr(feature = "cli", arg(long = "env-file"))]
    pub env_file: Vec<String>,
    /// Working directory inside the container
    #[cfg_attr(feature = "cli", arg(short = 'w', long))]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[cfg_attr(feature = "cli", arg(short = 'u', long))]
    pub user: Option<String>,
    /// Add additional groups to join
    #[cfg_attr(feature = "cli", arg(long = "group-add"))]
    pub group_add: Vec<String>,
    /// Overwrite the default ENTRYPOINT of the image ("" clears it)
    #[cfg_attr(feature = "cli", arg(long, allow_hyphen_values = true))]
    pub entrypoint: Option<String>,
    /// Container host name
    #[cfg_attr(feature = "cli", arg(short = 'h', long))]
    pub hostname: Option<String>,
    /// Set meta data on a container (KEY=VALUE)
    #[cfg_attr(feature = "cli", arg(short = 'l', long = "label"))]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels
    #[cfg_attr(feature = "cli", arg(long = "label-file"))]
    pub label_file: Vec<String>,
    /// Allocate a pseudo-TTY
    #[cfg_attr(feature = "cli", arg(short = 't', long, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set))]
    pub tty: bool,
    /// Keep STDIN open even if not attached
    #[cfg_attr(feature = "cli", arg(short = 'i', long, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set))]
    pub interactive: bool,
    /// Automatically remove the container when it exits
    #[cfg_attr(feature = "cli", arg(long, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set))]
    pub rm: bool,
    /// Run an init inside the container that forwards signals and reaps processes
    #[cfg_attr(feature = "cli", arg(long, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set))]
    pub init: bool,
    /// Mount the container's root filesystem as read only
    #[cfg_attr(feature = "cli", arg(long = "read-only", num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set))]
    pub read_only: bool,
    /// Bind mount a volume ([SOURCE:]DEST[:OPTIONS])
    #[cfg_attr(feature = "cli", arg(short = 'v', long = "volume"))]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container
    #[cfg_attr(feature = "cli", arg(long))]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory (DEST[:OPTIONS])
    #[cfg_attr(feature = "cli", arg(long))]
    pub tmpfs: Vec<String>,
    /// Memory limit
    #[cfg_attr(feature = "cli", arg(short = 'm', long, allow_hyphen_values = true))]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[cfg_attr(feature = "cli", arg(long = "memory-swap", allow_hyphen_values = true))]
    pub memory_swap: Option<String>,
    /// Number of CPUs
    #[cfg_attr(feature = "cli", arg(long))]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[cfg_attr(feature = "cli", arg(short = 'c', long = "cpu-shares"))]
    pub cpu_shares: Option<u64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[cfg_attr(feature = "cli", arg(long = "cpuset-cpus"))]
    pub cpuset_cpus: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[cfg_attr(feature = "cli", arg(long = "pids-limit", allow_hyphen_values = true))]
    pub pids_limit: Option<i64>,
    /// Ulimit options (name=soft[:hard])
    #[cfg_attr(feature = "cli", arg(long))]
    pub ulimit: Vec<String>,
    /// Add a host device to the container
    #[cfg_attr(feature = "cli", arg(long))]
    pub device: Vec<String>,
    /// Size of /dev/shm
    #[cfg_attr(feature = "cli", arg(long = "shm-size"))]
    pub shm_size: Option<String>,
    /// Sysctl options (KEY=VALUE)
    #[cfg_attr(feature = "cli", arg(long))]
    pub sysctl: Vec<String>,
    /// Add Linux capabilities
    #[cfg_attr(feature = "cli", arg(long = "cap-add"))]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[cfg_attr(feature = "cli", arg(long = "cap-drop"))]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[cfg_attr(feature = "cli", arg(long, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set))]
    pub privileged: bool,
    /// Security options (seccomp=FILE|unconfined, no-new-privileges[=true|false])
    #[cfg_attr(feature = "cli", arg(long = "security-opt"))]
    pub security_opt: Vec<String>,
    /// Restart policy to apply when a container exits
    #[cfg_attr(feature = "cli", arg(long))]
    pub restart: Option<String>,
    /// Command to run to check health
    #[cfg_attr(feature = "cli", arg(long = "health-cmd", allow_hyphen_values = true))]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h)
    #[cfg_attr(feature = "cli", arg(long = "health-interval"))]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h)
    #[cfg_attr(feature = "cli", arg(long = "health-timeout"))]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[cfg_attr(feature = "cli", arg(long = "health-retries"))]
    pub health_retries: Option<i64>,
    /// Start period for the container to initialize before counting retries (ms|s|m|h)
    #[cfg_attr(feature = "cli", arg(long = "health-start-period"))]
    pub health_start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h)
    #[cfg_attr(feature = "cli", arg(long = "health-start-interval"))]
    pub health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[cfg_attr(feature = "cli", arg(long = "no-healthcheck", num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set))]
    pub no_healthcheck: bool,
    /// Action when the container turns unhealthy: none, kill, restart, stop
    #[cfg_attr(feature = "cli", arg(long = "health-on-failure"))]
    pub health_on_failure: Option<String>,
    /// Signal to stop the container
    #[cfg_attr(feature = "cli", arg(long = "stop-signal"))]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[cfg_attr(
        feature = "cli",
        arg(long = "stop-timeout", allow_hyphen_values = true)
    )]
    pub stop_timeout: Option<i64>,
    /// Connect a container to a network (bridge, a network's name or ID, host, none,
    /// container:NAME; repeatable; name=NET[,alias=A][,ip=IP][,ip6=IP][,mac-address=MAC])
    #[cfg_attr(feature = "cli", arg(long, visible_alias = "net"))]
    pub network: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104) on the first network
    #[cfg_attr(feature = "cli", arg(long))]
    pub ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33) on the first network
    #[cfg_attr(feature = "cli", arg(long))]
    pub ip6: Option<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[cfg_attr(feature = "cli", arg(long = "mac-address"))]
    pub mac_address: Option<String>,
    /// Add network-scoped alias for the container
    #[cfg_attr(
        feature = "cli",
        arg(long = "network-alias", visible_alias = "net-alias")
    )]
    pub network_alias: Vec<String>,
    /// Set custom DNS servers
    #[cfg_attr(feature = "cli", arg(long))]
    pub dns: Vec<String>,
    /// Set custom DNS search domains
    #[cfg_attr(feature = "cli", arg(long = "dns-search"))]
    pub dns_search: Vec<String>,
    /// Set DNS options
    #[cfg_attr(feature = "cli", arg(long = "dns-option", visible_alias = "dns-opt"))]
    pub dns_option: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip; ip may be host-gateway)
    #[cfg_attr(feature = "cli", arg(long = "add-host"))]
    pub add_host: Vec<String>,
    /// Expose a port or a range of ports
    #[cfg_attr(feature = "cli", arg(long))]
    pub expose: Vec<String>,
    /// Publish a container's port(s) to the host
    #[cfg_attr(feature = "cli", arg(short = 'p', long))]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[cfg_attr(feature = "cli", arg(short = 'P', long = "publish-all", num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set))]
    pub publish_all: bool,
    /// Runtime to use for this container (a path or a name in PATH)
    #[cfg_attr(feature = "cli", arg(long))]
    pub runtime: Option<String>,
    /// Log driver options: max-size (default 10m; -1 for unbounded), max-file (default 3)
    #[cfg_attr(feature = "cli", arg(long = "log-opt"))]
    pub log_opt: Vec<String>,
    /// Logging driver for the container (json-file)
    #[cfg_attr(feature = "cli", arg(long = "log-driver"))]
    pub log_driver: Option<String>,
    /// Parent cgroup for the container (absolute)
    #[cfg_attr(feature = "cli", arg(long = "cgroup-parent"))]
    pub cgroup_parent: Option<String>,
    /// PID namespace to use (host, container:NAME)
    #[cfg_attr(feature = "cli", arg(long))]
    pub pid: Option<String>,
    /// IPC mode to use (private, shareable, host, none, container:NAME)
    #[cfg_attr(feature = "cli", arg(long))]
    pub ipc: Option<String>,
    /// UTS namespace to use (host)
    #[cfg_attr(feature = "cli", arg(long))]
    pub uts: Option<String>,
    /// User namespace to use (host; remapping is not supported)
    #[cfg_attr(feature = "cli", arg(long))]
    pub userns: Option<String>,
    /// Cgroup namespace to use (host, private)
    #[cfg_attr(feature = "cli", arg(long))]
    pub cgroupns: Option<String>,
    /// Write the container ID to the file (which must not exist)
    #[cfg_attr(feature = "cli", arg(long))]
    pub cidfile: Option<String>,
    /// Pull image before running (always, missing, never)
    #[cfg_attr(feature = "cli", arg(long, default_value = "missing"))]
    pub pull: String,
    /// Set platform if server is multi-platform capable (os/arch[/variant])
    #[cfg_attr(feature = "cli", arg(long))]
    pub platform: Option<String>,
    /// Mount volumes from the specified container(s) (CONTAINER[:ro|rw])
    #[cfg_attr(feature = "cli", arg(long = "volumes-from"))]
    pub volumes_from: Vec<String>,
    /// Memory soft limit
    #[cfg_attr(feature = "cli", arg(long = "memory-reservation"))]
    pub memory_reservation: Option<String>,
    /// Disable OOM Killer
    #[cfg_attr(feature = "cli", arg(long = "oom-kill-disable", num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set))]
    pub oom_kill_disable: bool,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[cfg_attr(feature = "cli", arg(long = "cpu-quota", allow_hyphen_values = true))]
    pub cpu_quota: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[cfg_attr(feature = "cli", arg(long = "cpu-period"))]
    pub cpu_period: Option<i64>,
    /// Tune container memory swappiness (0 to 100, -1 for the host's)
    #[cfg_attr(
        feature = "cli",
        arg(long = "memory-swappiness", allow_hyphen_values = true)
    )]
    pub memory_swappiness: Option<i64>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[cfg_attr(feature = "cli", arg(long = "blkio-weight"))]
    pub blkio_weight: Option<u16>,
}

impl RunFlags {
    pub fn pull_policy(&self) -> Result<crate::run::PullPolicy> {
        self.pull.parse()
    }
}

/// docker's container name rule.
fn valid_name(n: &str) -> bool {
    let n = n.strip_prefix('/').unwrap_or(n);
    parse::valid_volume_name(n)
}

/// `KEY=VALUE` stays; a bare `KEY` takes the caller's value (dropped when unset, as docker).
fn env_entry(e: &str) -> Result<Option<String>> {
    if e.is_empty() || e.starts_with('=') {
        bail!("invalid environment variable: {e:?}");
    }
    if e.contains('=') {
        return Ok(Some(e.to_string()));
    }
    Ok(std::env::var_os(e).map(|v| format!("{e}={}", v.to_string_lossy())))
}

fn kv(what: &str, s: &str) -> Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => bail!("invalid {what} {s:?}: expected KEY=VALUE"),
    }
}

fn bool_opt(v: &str, s: &str) -> Result<bool> {
    match s {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => bail!("invalid --security-opt {v:?}: {s:?} is not a boolean"),
    }
}

fn security(f: &RunFlags) -> Result<Security> {
    let mut s = Security {
        cap_add: f.cap_add.clone(),
        cap_drop: f.cap_drop.clone(),
        privileged: f.privileged,
        ..Default::default()
    };
    for o in &f.security_opt {
        if o == "no-new-privileges" {
            s.no_new_privileges = Some(true);
            continue;
        }
        if let Some(b) = o
            .strip_prefix("no-new-privileges:")
            .or_else(|| o.strip_prefix("no-new-privileges="))
        {
            s.no_new_privileges = Some(bool_opt(o, b)?);
            continue;
        }
        match o.split_once(['=', ':']) {
            Some(("seccomp", "unconfined")) => s.seccomp = Some(SeccompOpt::Unconfined),
            Some(("seccomp", path)) if !path.is_empty() => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::Invalid(format!("opening seccomp profile ({path}) failed: {e}"))
                })?;
                s.seccomp = Some(SeccompOpt::Profile(text));
            }
            // Berth applies no AppArmor profile and no SELinux label: asking for none is
            // what it does already (docker accepts these on hosts without either).
            Some(("apparmor", "unconfined")) | Some(("label", "disable")) => {}
            Some((k @ ("apparmor" | "label" | "systempaths" | "mask" | "unmask"), _)) => {
                bail!("invalid --security-opt {o:?}: {k} is not supported by berth")
            }
            _ => bail!(
                "invalid --security-opt {o:?}: expected seccomp=FILE|unconfined or \
                 no-new-privileges[=true|false]"
            ),
        }
    }
    Ok(s)
}

/// `--network` values (and --ip, --ip6, --mac-address, --network-alias for the first
/// network) into the mode and the networks; names are resolved by the engine at create.
fn networks(f: &RunFlags) -> Result<(NetworkMode, Vec<NetworkAttach>)> {
    let mut mode = None;
    let mut nets: Vec<NetworkAttach> = Vec::new();
    for v in &f.network {
        let m = match v.as_str() {
            "host" => Some(NetworkMode::Host),
            "none" => Some(NetworkMode::None),
            c if c.starts_with("container:") => {
                let r = &c["container:".len()..];
                if r.is_empty() {
                    bail!("invalid network mode {c:?}: container: needs a container name or ID");
                }
                Some(NetworkMode::Container(r.to_string()))
            }
            _ => None,
        };
        if let Some(m) = m {
            if mode.is_some() || !nets.is_empty() || f.network.len() > 1 {
                bail!("conflicting options: cannot attach both user-defined and non-user-defined network-modes");
            }
            mode = Some(m);
            continue;
        }
        let mut a = NetworkAttach::default();
        if v.contains('=') {
            for kv in v.split(',') {
                let (k, val) = kv.split_once('=').ok_or_else(|| {
                    Error::Invalid(format!("invalid network option {kv:?} in --network {v:?}"))
                })?;
                match k {
                    "name" => a.name = val.to_string(),
                    "alias" => a.aliases.push(val.to_string()),
                    "ip" => a.ipv4 = Some(val.to_string()),
                    "ip6" => a.ipv6 = Some(val.to_string()),
                    "mac-address" => a.mac = Some(val.to_string()),
                    _ => bail!("invalid network option {k:?} in --network {v:?} (name, alias, ip, ip6, mac-address)"),
                }
            }
            if a.name.is_empty() {
                bail!("invalid --network {v:?}: name= is required");
            }
        } else {
            a.name = if v == "default" {
                "bridge".into()
            } else {
                v.clone()
            };
        }
        nets.push(a);
    }
    let mode = mode.unwrap_or(NetworkMode::Bridge);
    let first_flags =
        f.ip.is_some() || f.ip6.is_some() || f.mac_address.is_some() || !f.network_alias.is_empty();
    if first_flags {
        if nets.is_empty() {
            // On the default network (or a mode): the engine refuses what needs more.
            nets.push(NetworkAttach {
                name: "bridge".into(),
                ..Default::default()
            });
        }
        let a = &mut nets[0];
        if f.ip.is_some() {
            a.ipv4 = f.ip.clone();
        }
        if f.ip6.is_some() {
            a.ipv6 = f.ip6.clone();
        }
        if f.mac_address.is_some() {
            a.mac = f.mac_address.clone();
        }
        a.aliases.extend(f.network_alias.iter().cloned());
        if mode != NetworkMode::Bridge
            && (a.ipv4.is_none() && a.ipv6.is_none() && a.aliases.is_empty())
        {
            // --mac-address alone with host/none: docker ignores nothing; neither do we.
            bail!("conflicting options: mac-address and the network mode");
        }
    }
    Ok((mode, nets))
}

impl RunFlags {
    /// Resolves the flags, the image and the command after it into options.
    pub fn resolve(self, image: String, cmd: Vec<String>) -> Result<CreateOptions> {
        let f = self;
        if let Some(n) = &f.name {
            if !valid_name(n) {
                bail!("Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
            }
        }
        let (network, networks) = networks(&f)?;
        for d in &f.dns {
            if d.parse::<std::net::IpAddr>().is_err() {
                bail!("{d} is not an ip address");
            }
        }
        for h in &f.add_host {
            crate::net::files::parse_extra_host(h).map_err(Error::Invalid)?;
        }
        for e in &f.expose {
            crate::net::parse_expose(e)?;
        }

        let mut env = Vec::new();
        for file in &f.env_file {
            for l in parse::lines_file(file)? {
                env.extend(env_entry(&l)?);
            }
        }
        for e in &f.env {
            env.extend(env_entry(e)?);
        }

        let mut labels = BTreeMap::new();
        for file in &f.label_file {
            for l in parse::lines_file(file)? {
                let (k, v) = l.split_once('=').unwrap_or((&l, ""));
                labels.insert(k.to_string(), v.to_string());
            }
        }
        for l in &f.label {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            if k.is_empty() {
                bail!("invalid label {l:?}: empty name");
            }
            labels.insert(k.to_string(), v.to_string());
        }

        if let Some(w) = &f.workdir {
            if !w.starts_with('/') {
                bail!("the working directory '{w}' is invalid, it needs to be an absolute path");
            }
        }

        let mut mounts = Vec::new();
        for v in &f.volume {
            mounts.push(parse::volume_flag(v)?);
        }
        for m in &f.mount {
            mounts.push(parse::mount_flag(m)?);
        }
        for t in &f.tmpfs {
            mounts.push(parse::tmpfs_flag(t)?);
        }

        let memory = match &f.memory {
            Some(m) => Some(parse::size(m)? as i64).filter(|m| *m > 0),
            None => None,
        };
        if memory.is_some_and(|m| m < MIN_MEMORY) {
            bail!("Minimum memory limit allowed is {}MB", MIN_MEMORY >> 20);
        }
        let memory_reservation = match &f.memory_reservation {
            Some(m) => Some(parse::size(m)? as i64).filter(|m| *m > 0),
            None => None,
        };
        let resources = Resources {
            memory_reservation,
            oom_kill_disable: f.oom_kill_disable,
            cpu_quota: f.cpu_quota.filter(|q| *q != 0),
            cpu_period: f.cpu_period.map(parse::cpu_period).transpose()?.flatten(),
            memory_swappiness: f
                .memory_swappiness
                .map(parse::memory_swappiness)
                .transpose()?,
            blkio_weight: match f.blkio_weight {
                Some(w) if w != 0 && !(10..=1000).contains(&w) => {
                    bail!("invalid --blkio-weight {w}: range of blkio weight is from 10 to 1000")
                }
                w => w,
            },
            memory,
            memory_swap: f
                .memory_swap
                .as_deref()
                .map(parse::memory_swap)
                .transpose()?,
            nano_cpus: f
                .cpus
                .as_deref()
                .map(parse::nano_cpus)
                .transpose()?
                .filter(|n| *n > 0),
            cpu_shares: f.cpu_shares.filter(|s| *s > 0),
            cpuset_cpus: f.cpuset_cpus.clone(),
            pids_limit: f.pids_limit,
            ulimits: f
                .ulimit
                .iter()
                .map(|u| parse::ulimit(u))
                .collect::<Result<_, _>>()?,
            devices: f
                .device
                .iter()
                .map(|d| parse::device(d))
                .collect::<Result<_, _>>()?,
            shm_size: f
                .shm_size
                .as_deref()
                .map(parse::size)
                .transpose()?
                .filter(|s| *s > 0),
        };

        let mut sysctls = BTreeMap::new();
        for s in &f.sysctl {
            let (k, v) = kv("sysctl", s)?;
            sysctls.insert(k, v);
        }

        let restart = match &f.restart {
            Some(r) => parse::restart(r)?,
            None => Default::default(),
        };
        if f.rm && restart != Default::default() {
            bail!("conflicting options: cannot specify both --restart and --rm");
        }

        let any_health = f.health_cmd.is_some()
            || f.health_interval.is_some()
            || f.health_timeout.is_some()
            || f.health_retries.is_some()
            || f.health_start_period.is_some()
            || f.health_start_interval.is_some();
        if f.no_healthcheck && any_health {
            bail!("--no-healthcheck conflicts with --health-* options");
        }
        let dur = |flag: &str, v: &Option<String>| -> Result<i64> {
            let Some(v) = v else { return Ok(0) };
            let n = parse::duration(v)?;
            if n != 0 && n < 1_000_000 {
                bail!("{flag} cannot be less than 1ms");
            }
            Ok(n)
        };
        let health = if any_health {
            let retries = f.health_retries.unwrap_or(0);
            if retries < 0 {
                bail!("--health-retries cannot be negative");
            }
            Some(HealthConfig {
                test: match &f.health_cmd {
                    Some(c) if c.is_empty() => vec![],
                    Some(c) => vec!["CMD-SHELL".into(), c.clone()],
                    None => vec![],
                },
                interval: dur("--health-interval", &f.health_interval)?,
                timeout: dur("--health-timeout", &f.health_timeout)?,
                start_period: dur("--health-start-period", &f.health_start_period)?,
                start_interval: dur("--health-start-interval", &f.health_start_interval)?,
                retries,
                ..Default::default()
            })
        } else {
            None
        };
        let health_on_failure = match f.health_on_failure.as_deref() {
            None | Some("none") => HealthOnFailure::None,
            Some("kill") => HealthOnFailure::Kill,
            Some("restart") => HealthOnFailure::Restart,
            Some("stop") => HealthOnFailure::Stop,
            Some(o) => {
                bail!("invalid --health-on-failure {o:?}: expected none, kill, restart or stop")
            }
        };

        if let Some(s) = &f.stop_signal {
            parse::signal(s)?;
        }

        let log = parse::log_options(f.log_driver.as_deref(), &f.log_opt)?;

        let security = security(&f)?;
        let ns = |flag: &str, v: &Option<String>| match v {
            Some(v) => parse::ns_mode(flag, v),
            None => Ok(NsMode::Default),
        };
        let namespaces = NamespaceModes {
            pid: ns("pid", &f.pid)?,
            ipc: ns("ipc", &f.ipc)?,
            uts: ns("uts", &f.uts)?,
            userns: ns("userns", &f.userns)?,
            cgroupns: ns("cgroupns", &f.cgroupns)?,
        };
        for v in &f.volumes_from {
            parse::volumes_from(v)?;
        }
        if let Some(p) = &f.platform {
            if berth_registry::manifest::Platform::parse(p).is_none() {
                bail!("invalid --platform {p:?} (want os/arch[/variant])");
            }
        }
        let cgroup_parent = match f.cgroup_parent.clone() {
            Some(p) => p,
            None => std::env::var("BERTH_CGROUP_PARENT")
                .ok()
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "/berth".into()),
        };
        if !cgroup_parent.starts_with('/') || cgroup_parent.split('/').any(|c| c == "..") {
            bail!("invalid --cgroup-parent {cgroup_parent:?}: must be an absolute path without \"..\"");
        }

        Ok(CreateOptions {
            image,
            name: f.name.map(|n| n.trim_start_matches('/').to_string()),
            entrypoint: f
                .entrypoint
                .map(|e| if e.is_empty() { vec![] } else { vec![e] }),
            cmd: if cmd.is_empty() { None } else { Some(cmd) },
            env,
            workdir: f.workdir,
            user: f.user,
            group_add: f.group_add,
            hostname: f.hostname,
            labels,
            tty: f.tty,
            open_stdin: f.interactive,
            auto_remove: f.rm,
            init: f.init,
            read_only: f.read_only,
            mounts,
            resources,
            security,
            restart,
            health,
            no_healthcheck: f.no_healthcheck,
            health_on_failure,
            readiness: None,
            stop_signal: f.stop_signal,
            stop_timeout: f.stop_timeout,
            network,
            networks,
            publish: f.publish,
            publish_all: f.publish_all,
            expose: f.expose,
            dns: DnsOptions {
                servers: f.dns,
                search: f.dns_search,
                options: f.dns_option,
                extra_hosts: f.add_host,
            },
            sysctls,
            runtime: f.runtime,
            log,
            cgroup_parent,
            namespaces,
            volumes_from: f.volumes_from,
            platform: f.platform,
        })
    }
}

#[cfg(all(test, feature = "cli"))]
mod tests {
    use super::*;
    use crate::options::{MountSpec, RestartPolicy};
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        f: RunFlags,
        image: String,
        #[cfg_attr(
            feature = "cli",
            arg(trailing_var_arg = true, allow_hyphen_values = true)
        )]
        cmd: Vec<String>,
    }

    fn parse(args: &[&str]) -> Result<CreateOptions> {
        let t = T::try_parse_from(std::iter::once("run").chain(args.iter().copied()))
            .map_err(|e| Error::Invalid(e.to_string()))?;
        t.f.resolve(t.image, t.cmd)
    }

    fn err(args: &[&str], needle: &str) {
        let e = format!("{:#}", parse(args).unwrap_err());
        assert!(
            e.contains(needle),
            "{args:?}: {e:?} should contain {needle:?}"
        );
    }

    /// Issue 17 item 6: docker's boolean forms.
    #[test]
    fn boolean_flags_take_docker_forms() {
        let o = parse(&["--rm=true", "-t=false", "--init=false", "-i", "busybox"]).unwrap();
        assert!(o.auto_remove && !o.tty && !o.init && o.open_stdin);
        let o = parse(&["-it", "--read-only=true", "--privileged=false", "busybox"]).unwrap();
        assert!(o.tty && o.open_stdin && o.read_only && !o.security.privileged);
        let o = parse(&["--rm", "busybox", "sh"]).unwrap();
        assert!(o.auto_remove);
        assert_eq!(o.cmd, Some(vec!["sh".to_string()]));
        assert!(parse(&["--rm=maybe", "busybox"]).is_err());
    }

    #[test]
    fn docker_flags() {
        std::env::set_var("BERTH_H1_TEST_VAR", "from-caller");
        let o = parse(&[
            "--name",
            "web",
            "-e",
            "A=1",
            "-e",
            "BERTH_H1_TEST_VAR",
            "-e",
            "BERTH_H1_UNSET_X",
            "-w",
            "/srv",
            "-u",
            "app:wheel",
            "--group-add",
            "audio",
            "--entrypoint",
            "",
            "-h",
            "box",
            "-l",
            "a=b",
            "-l",
            "flag",
            "-t",
            "-i",
            "--rm",
            "--init",
            "--read-only",
            "-v",
            "/tmp:/h:ro",
            "-v",
            "vol:/v",
            "-v",
            "/anon",
            "--mount",
            "type=tmpfs,dst=/t",
            "--tmpfs",
            "/run:size=1m",
            "-m",
            "5m",
            "--memory-swap",
            "-1",
            "--cpus",
            "0.5",
            "-c",
            "512",
            "--cpuset-cpus",
            "0",
            "--pids-limit",
            "-1",
            "--ulimit",
            "nofile=1024:2048",
            "--device",
            "/dev/null:/dev/n:r",
            "--shm-size",
            "1m",
            "--sysctl",
            "net.ipv4.ping_group_range=0 0",
            "--cap-add",
            "sys_admin",
            "--cap-drop",
            "NET_RAW",
            "--security-opt",
            "no-new-privileges:false",
            "--security-opt",
            "seccomp=unconfined",
            "--health-cmd",
            "true",
            "--health-interval",
            "1s",
            "--health-retries",
            "2",
            "--health-on-failure",
            "restart",
            "--stop-signal",
            "SIGQUIT",
            "--stop-timeout",
            "3",
            "--net",
            "host",
            "--runtime",
            "crun",
            "--log-opt",
            "max-size=1k",
            "--log-opt",
            "max-file=3",
            "--log-driver",
            "json-file",
            "--cgroup-parent",
            "/berth-test/p",
            "busybox",
            "sh",
            "-c",
            "echo hi",
        ])
        .unwrap();
        assert_eq!(o.name.as_deref(), Some("web"));
        assert_eq!(o.env, vec!["A=1", "BERTH_H1_TEST_VAR=from-caller"]);
        assert_eq!(o.workdir.as_deref(), Some("/srv"));
        assert_eq!(o.user.as_deref(), Some("app:wheel"));
        assert_eq!(o.group_add, vec!["audio"]);
        assert_eq!(o.entrypoint, Some(vec![]));
        assert_eq!(o.hostname.as_deref(), Some("box"));
        assert_eq!(o.labels["a"], "b");
        assert_eq!(o.labels["flag"], "");
        assert!(o.tty && o.open_stdin && o.auto_remove && o.init && o.read_only);
        assert_eq!(o.mounts.len(), 5);
        assert!(matches!(&o.mounts[2], MountSpec::Volume { name: None, .. }));
        assert_eq!(o.resources.memory, Some(5 << 20));
        assert_eq!(o.resources.memory_swap, Some(-1));
        assert_eq!(o.resources.nano_cpus, Some(500_000_000));
        assert_eq!(o.resources.cpu_shares, Some(512));
        assert_eq!(o.resources.pids_limit, Some(-1));
        assert_eq!(o.resources.ulimits[0].hard, 2048);
        assert_eq!(o.resources.devices[0].permissions, "r");
        assert_eq!(o.resources.shm_size, Some(1 << 20));
        assert_eq!(o.sysctls["net.ipv4.ping_group_range"], "0 0");
        assert_eq!(o.security.cap_add, vec!["sys_admin"]);
        assert_eq!(o.security.no_new_privileges, Some(false));
        assert_eq!(o.security.seccomp, Some(SeccompOpt::Unconfined));
        let h = o.health.unwrap();
        assert_eq!(h.test, vec!["CMD-SHELL", "true"]);
        assert_eq!((h.interval, h.retries), (1_000_000_000, 2));
        assert_eq!(o.health_on_failure, HealthOnFailure::Restart);
        assert_eq!(o.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(o.stop_timeout, Some(3));
        assert_eq!(o.network, NetworkMode::Host);
        assert_eq!(o.runtime.as_deref(), Some("crun"));
        assert_eq!((o.log.max_size, o.log.max_file), (Some(1024), Some(3)));
        assert_eq!(o.cgroup_parent, "/berth-test/p");
        assert_eq!(
            o.cmd,
            Some(vec!["sh".into(), "-c".into(), "echo hi".into()])
        );
        assert_eq!(o.image, "busybox");
    }

    #[test]
    fn defaults() {
        let o = parse(&["busybox"]).unwrap();
        // docker's default: the bridge network (named by the engine at create).
        assert_eq!(o.network, NetworkMode::Bridge);
        assert!(o.networks.is_empty());
        let o = parse(&[
            "--network",
            "front",
            "--net",
            "name=back,alias=db,ip=10.1.0.9",
            "--ip",
            "172.20.0.5",
            "--network-alias",
            "web",
            "-p",
            "8080:80",
            "-P",
            "--expose",
            "90",
            "--dns",
            "9.9.9.9",
            "--dns-search",
            "example.org",
            "--dns-option",
            "ndots:2",
            "--add-host",
            "gw:host-gateway",
            "busybox",
        ])
        .unwrap();
        assert_eq!(o.networks.len(), 2);
        assert_eq!(o.networks[0].name, "front");
        assert_eq!(o.networks[0].ipv4.as_deref(), Some("172.20.0.5"));
        assert_eq!(o.networks[0].aliases, vec!["web"]);
        assert_eq!(o.networks[1].name, "back");
        assert_eq!(o.networks[1].aliases, vec!["db"]);
        assert_eq!(o.networks[1].ipv4.as_deref(), Some("10.1.0.9"));
        assert_eq!(o.publish, vec!["8080:80"]);
        assert!(o.publish_all);
        assert_eq!(o.expose, vec!["90"]);
        assert_eq!(o.dns.servers, vec!["9.9.9.9"]);
        assert_eq!(o.dns.extra_hosts, vec!["gw:host-gateway"]);
        assert_eq!(
            parse(&["--network", "container:web", "busybox"])
                .unwrap()
                .network,
            NetworkMode::Container("web".into())
        );
        assert_eq!(
            parse(&["--network", "default", "busybox"])
                .unwrap()
                .networks[0]
                .name,
            "bridge"
        );
        let o = parse(&["busybox"]).unwrap();
        assert_eq!(o.cmd, None);
        assert_eq!(o.entrypoint, None);
        assert_eq!(o.restart, RestartPolicy::No);
        assert!(o.health.is_none() && o.security.no_new_privileges.is_none());
        assert!(o.cgroup_parent.starts_with('/'));
        let o = parse(&[
            "--entrypoint",
            "/bin/echo",
            "--restart",
            "on-failure:2",
            "busybox",
        ])
        .unwrap();
        assert_eq!(o.entrypoint, Some(vec!["/bin/echo".to_string()]));
        assert_eq!(o.restart, RestartPolicy::OnFailure(2));
        let o = parse(&["--security-opt", "no-new-privileges", "busybox"]).unwrap();
        assert_eq!(o.security.no_new_privileges, Some(true));
    }

    /// Issue 17 item 6: the namespace, resource, platform and log flags.
    #[test]
    fn item6_flags_parse() {
        let o = parse(&[
            "--pid",
            "container:db",
            "--ipc",
            "shareable",
            "--uts",
            "host",
            "--userns",
            "host",
            "--cgroupns",
            "private",
            "--memory-reservation",
            "20m",
            "--oom-kill-disable",
            "--cpu-quota",
            "-1",
            "--cpu-period",
            "50000",
            "--memory-swappiness",
            "0",
            "--blkio-weight",
            "300",
            "--volumes-from",
            "src:ro",
            "--platform",
            "linux/arm64",
            "--log-driver",
            "none",
            "busybox",
        ])
        .unwrap();
        assert_eq!(o.namespaces.pid, NsMode::Container("db".into()));
        assert_eq!(o.namespaces.ipc, NsMode::Shareable);
        assert_eq!(o.namespaces.cgroupns, NsMode::Private);
        let r = &o.resources;
        assert_eq!(r.memory_reservation, Some(20 << 20));
        assert!(r.oom_kill_disable);
        assert_eq!((r.cpu_quota, r.cpu_period), (Some(-1), Some(50000)));
        assert_eq!((r.memory_swappiness, r.blkio_weight), (Some(0), Some(300)));
        assert_eq!(o.volumes_from, vec!["src:ro"]);
        assert_eq!(o.platform.as_deref(), Some("linux/arm64"));
        assert_eq!(o.log.driver, crate::options::LogDriver::None);
        err(
            &[
                "--log-driver",
                "none",
                "--log-opt",
                "max-size=1m",
                "busybox",
            ],
            "none",
        );
        err(&["--memory-swappiness", "-2", "busybox"], "-2");
        err(&["--blkio-weight", "9", "busybox"], "9");
        err(&["--platform", "arm64", "busybox"], "arm64");
        err(&["--volumes-from", "x:rx", "busybox"], "x:rx");
        err(&["--userns", "private", "busybox"], "private");
    }

    #[test]
    fn logs_are_bounded_by_default() {
        let o = parse(&["busybox"]).unwrap();
        assert_eq!((o.log.max_size, o.log.max_file), (Some(10 << 20), Some(3)));
        let o = parse(&["--log-opt", "max-size=1m", "busybox"]).unwrap();
        assert_eq!((o.log.max_size, o.log.max_file), (Some(1 << 20), Some(3)));
        let o = parse(&["--log-opt", "max-file=5", "busybox"]).unwrap();
        assert_eq!((o.log.max_size, o.log.max_file), (Some(10 << 20), Some(5)));
        let o = parse(&["--log-opt", "max-size=-1", "busybox"]).unwrap();
        assert_eq!((o.log.max_size, o.log.max_file), (None, None));
        err(
            &[
                "--log-opt",
                "max-size=-1",
                "--log-opt",
                "max-file=2",
                "busybox",
            ],
            "unbounded",
        );
        err(&["--log-opt", "max-size=0", "busybox"], "-1 for unbounded");
    }

    #[test]
    fn memory_below_the_minimum_says_it() {
        err(
            &["-m", "1", "busybox"],
            "Minimum memory limit allowed is 1MB",
        );
        err(
            &["-m", "1023k", "busybox"],
            "Minimum memory limit allowed is 1MB",
        );
        assert_eq!(
            parse(&["-m", "1m", "busybox"]).unwrap().resources.memory,
            Some(1 << 20)
        );
    }

    #[test]
    fn env_and_label_files() {
        let d = tempfile::tempdir().unwrap();
        let ef = d.path().join("env");
        std::fs::write(&ef, "# comment\nA=1\n\nB=two words\nA=3\n").unwrap();
        let lf = d.path().join("labels");
        std::fs::write(&lf, "x=1\ny\n").unwrap();
        let o = parse(&[
            "--env-file",
            ef.to_str().unwrap(),
            "-e",
            "C=4",
            "--label-file",
            lf.to_str().unwrap(),
            "busybox",
        ])
        .unwrap();
        assert_eq!(o.env, vec!["A=1", "B=two words", "A=3", "C=4"]);
        assert_eq!(o.labels["x"], "1");
        assert_eq!(o.labels["y"], "");
        err(
            &["--env-file", "/nonexistent/env", "busybox"],
            "/nonexistent/env",
        );
    }

    #[test]
    fn bad_input_is_named() {
        err(
            &["--network", "host", "--network", "front", "busybox"],
            "conflicting options",
        );
        err(
            &["--network", "container:", "busybox"],
            "container: needs a container name",
        );
        err(&["--network", "name=x,color=red", "busybox"], "\"color\"");
        err(&["--network", "alias=a", "busybox"], "name= is required");
        err(
            &["--dns", "not-an-ip", "busybox"],
            "not-an-ip is not an ip address",
        );
        err(
            &["--add-host", "nohost", "busybox"],
            "bad format for add-host",
        );
        err(&["--add-host", "x:1.2.3", "busybox"], "invalid IP address");
        err(&["--expose", "80/icmp", "busybox"], "invalid proto");
        err(
            &[
                "--network",
                "none",
                "--mac-address",
                "02:42:ac:11:00:09",
                "busybox",
            ],
            "mac-address",
        );
        err(&["-m", "lots", "busybox"], "\"lots\"");
        err(&["--cpus", "x", "busybox"], "\"x\"");
        err(&["--ulimit", "nofile=9:1", "busybox"], "nofile=9:1");
        err(&["--device", "dev/x", "busybox"], "dev/x");
        err(&["-v", "a/b:/c", "busybox"], "a/b:/c");
        err(&["--mount", "type=nfs,dst=/x", "busybox"], "type=nfs");
        err(&["--tmpfs", "rel", "busybox"], "rel");
        err(&["--restart", "sometimes", "busybox"], "sometimes");
        err(
            &["--restart", "always", "--rm", "busybox"],
            "--restart and --rm",
        );
        err(&["--stop-signal", "SIGNOPE", "busybox"], "SIGNOPE");
        err(&["--health-interval", "5", "busybox"], "\"5\"");
        err(
            &["--no-healthcheck", "--health-cmd", "true", "busybox"],
            "conflicts",
        );
        err(&["--health-on-failure", "explode", "busybox"], "explode");
        err(
            &["--security-opt", "apparmor=docker-default", "busybox"],
            "apparmor",
        );
        err(
            &["--security-opt", "label=type:svirt_t", "busybox"],
            "label",
        );
        // No profile and no label: what berth does anyway (docker accepts them too).
        parse(&["--security-opt", "apparmor=unconfined", "busybox"]).unwrap();
        parse(&["--security-opt", "label=disable", "busybox"]).unwrap();
        parse(&["--security-opt", "label:disable", "busybox"]).unwrap();
        err(
            &["--security-opt", "no-new-privileges=maybe", "busybox"],
            "maybe",
        );
        err(
            &[
                "--security-opt",
                "seccomp=/nonexistent/prof.json",
                "busybox",
            ],
            "/nonexistent/prof.json",
        );
        err(&["--log-driver", "syslog", "busybox"], "syslog");
        err(&["--log-opt", "compress=true", "busybox"], "compress");
        err(&["--log-opt", "max-file=0", "busybox"], "max-file");
        err(&["-w", "rel", "busybox"], "'rel'");
        err(&["--name", "bad name", "busybox"], "bad name");
        err(&["--sysctl", "novalue", "busybox"], "novalue");
        err(&["--cgroup-parent", "rel", "busybox"], "rel");
    }
}
