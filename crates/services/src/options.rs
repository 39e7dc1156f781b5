//! From a compose service to the engine's CreateOptions of one of its containers.
//!
//! - Published ports are not published by the container: the supervisor's load balancer
//!   publishes them once per service. Their targets, and `expose`, go to `expose`.
//! - The restart policy is `no`: the supervisor replaces replicas (deploy.restart_policy).
//! - Networks are attached in docker compose's order: higher `priority` first, then by
//!   name. `network_id` is left empty for the caller to resolve.
//! - A bind source the short syntax names is created by docker when missing
//!   (`create_host_path`); the caller does that before create, this stays pure.

use berth_engine::options::{
    CreateOptions, DnsOptions, HealthConfig, MountSpec, NamespaceModes, NetworkAttach, NetworkMode,
    NsMode, RestartPolicy, SeccompOpt, Ulimit,
};
use berth_engine::parse;

use crate::compose::{ComposeError, EndpointMode, Project, Service, VolumeKind, VolumesFrom};

/// The `com.docker.compose.version` label berth writes.
pub const COMPOSE_VERSION: &str = "2.0.0-berth";

fn err(s: &Service, key: &str, msg: impl std::fmt::Display) -> ComposeError {
    ComposeError::Invalid(format!("services.{}.{key}: {msg}", s.name))
}

/// The container name of replica `number`: `container_name`, else
/// `<project>-<service>-<number>`; one-off containers (`compose run`) are
/// `<project>-<service>-run-<number>`, as docker compose they ignore container_name.
pub fn container_name(p: &Project, s: &Service, number: u32, oneoff: bool) -> String {
    if oneoff {
        return format!("{}-{}-run-{number}", p.name, s.name);
    }
    s.container_name
        .clone()
        .unwrap_or_else(|| format!("{}-{}-{number}", p.name, s.name))
}

/// The CreateOptions of replica `number` (1-based) of `s`; `oneoff` for `compose run`.
pub fn create_options(
    p: &Project,
    s: &Service,
    number: u32,
    oneoff: bool,
) -> Result<CreateOptions, ComposeError> {
    let mut o = CreateOptions {
        image: s.image.clone(),
        name: Some(container_name(p, s, number, oneoff)),
        entrypoint: s.entrypoint.clone(),
        cmd: s.command.clone(),
        workdir: s.working_dir.clone(),
        user: s.user.clone(),
        group_add: s.group_add.clone(),
        hostname: s.hostname.clone(),
        tty: s.tty,
        open_stdin: s.stdin_open,
        init: s.init.unwrap_or(false),
        read_only: s.read_only,
        restart: RestartPolicy::No,
        stop_signal: s.stop_signal.clone(),
        // docker compose truncates to whole seconds.
        stop_timeout: s.stop_grace_period.map(|d| d.as_secs() as i64),
        sysctls: s.sysctls.clone(),
        ..Default::default()
    };
    o.log = match &s.logging {
        None => parse::log_options(None, &[]),
        Some(l) => {
            let opts: Vec<String> = l.options.iter().map(|(k, v)| format!("{k}={v}")).collect();
            parse::log_options(l.driver.as_deref(), &opts)
        }
    }
    .map_err(|e| err(s, "logging", e))?;
    namespaces(s, &mut o)?;
    o.runtime = s.runtime.clone();
    for (i, v) in s.volumes_from.iter().enumerate() {
        let key = format!("volumes_from.{i}");
        let (src, mode) = crate::compose::volumes_from_source(v).map_err(|e| err(s, &key, e))?;
        let ctr = match src {
            // Its first container, as docker compose takes.
            VolumesFrom::Service(svc) => {
                let dep = p
                    .services
                    .get(svc)
                    .ok_or_else(|| err(s, &key, format!("service {svc:?} is not defined")))?;
                container_name(p, dep, 1, false)
            }
            VolumesFrom::Container(c) => c.to_string(),
        };
        let v = match mode {
            Some(m) => format!("{ctr}:{m}"),
            None => ctr,
        };
        parse::volumes_from(&v).map_err(|e| err(s, &key, e))?;
        o.volumes_from.push(v);
    }
    if let Some(c) = &s.cgroup_parent {
        if c.is_empty() || c.split('/').any(|c| c == "..") {
            return Err(err(
                s,
                "cgroup_parent",
                format!("{c:?} must be a cgroup path without \"..\""),
            ));
        }
        o.cgroup_parent = c.clone();
    }
    if s.domainname.is_some() {
        return Err(err(s, "domainname", "not supported by berth yet"));
    }
    if let Some(sig) = &s.stop_signal {
        parse::signal(sig).map_err(|e| err(s, "stop_signal", e))?;
    }

    // Environment: a key without a value takes the project environment's, else is left
    // out (as compose).
    for (k, v) in &s.environment {
        if let Some(v) = v.clone().or_else(|| p.environment.get(k).cloned()) {
            o.env.push(format!("{k}={v}"));
        }
    }

    o.labels = s.labels.clone();
    let label = |k: &str| format!("com.docker.compose.{k}");
    o.labels.insert(label("project"), p.name.clone());
    o.labels.insert(label("service"), s.name.clone());
    o.labels
        .insert(label("container-number"), number.to_string());
    o.labels
        .insert(label("config-hash"), p.config_hash(&s.name));
    o.labels.insert(
        label("oneoff"),
        if oneoff { "True" } else { "False" }.into(),
    );
    o.labels.insert(
        label("project.working_dir"),
        p.working_dir.display().to_string(),
    );
    o.labels.insert(
        label("project.config_files"),
        p.config_files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(","),
    );
    o.labels.insert(label("version"), COMPOSE_VERSION.into());
    let deps: Vec<String> = s
        .depends_on
        .iter()
        .map(|(n, d)| {
            let cond = serde_json::to_value(d.condition)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            format!("{n}:{cond}:{}", d.restart)
        })
        .collect();
    o.labels.insert(label("depends_on"), deps.join(","));

    mounts(p, s, &mut o)?;
    resources(s, &mut o)?;
    security(p, s, &mut o)?;
    health(s, &mut o)?;
    network(p, s, &mut o)?;

    o.dns = DnsOptions {
        servers: s.dns.clone(),
        search: s.dns_search.clone(),
        options: s.dns_opt.clone(),
        extra_hosts: s.extra_hosts.clone(),
    };
    o.expose = s.expose.clone();
    for port in &s.ports {
        let e = format!("{}/{}", port.target, port.protocol);
        if !o.expose.contains(&e) {
            o.expose.push(e);
        }
    }
    Ok(o)
}

/// Runs [`create_options`] for every enabled service, so that `up` can refuse a project
/// berth cannot run before it creates anything.
pub fn check(p: &Project) -> Result<(), ComposeError> {
    for s in p.services.values() {
        create_options(p, s, 1, false)?;
    }
    Ok(())
}

fn mounts(p: &Project, s: &Service, o: &mut CreateOptions) -> Result<(), ComposeError> {
    for (i, v) in s.volumes.iter().enumerate() {
        let key = format!("volumes.{i}");
        if v.selinux.is_some() {
            return Err(err(
                s,
                &key,
                "SELinux relabeling (z, Z) is not supported by berth yet",
            ));
        }
        o.mounts.push(match v.kind {
            VolumeKind::Bind => MountSpec::Bind {
                source: v
                    .source
                    .clone()
                    .ok_or_else(|| err(s, &key, "a bind mount needs a source"))?,
                target: v.target.clone(),
                read_only: v.read_only,
                propagation: v.propagation.clone(),
                create_source: false,
            },
            VolumeKind::Volume => {
                if v.nocopy {
                    return Err(err(s, &key, "volume nocopy is not supported by berth yet"));
                }
                let name = match &v.source {
                    None => None,
                    Some(src) => Some(
                        p.volumes
                            .get(src)
                            .map(|d| d.name.clone())
                            .ok_or_else(|| err(s, &key, format!("undefined volume {src}")))?,
                    ),
                };
                MountSpec::Volume {
                    name,
                    target: v.target.clone(),
                    read_only: v.read_only,
                }
            }
            VolumeKind::Tmpfs => MountSpec::Tmpfs {
                target: v.target.clone(),
                size: v.tmpfs_size,
                mode: v.tmpfs_mode,
                options: Vec::new(),
            },
        });
    }
    for (i, t) in s.tmpfs.iter().enumerate() {
        o.mounts
            .push(parse::tmpfs_flag(t).map_err(|e| err(s, &format!("tmpfs.{i}"), e))?);
    }
    Ok(())
}

fn resources(s: &Service, o: &mut CreateOptions) -> Result<(), ComposeError> {
    let lim = &s.deploy.resources.limits;
    let r = &mut o.resources;
    let memory = lim.memory.or(s.mem_limit);
    r.memory = memory
        .map(|m| {
            i64::try_from(m).map_err(|_| err(s, "deploy.resources.limits.memory", "too large"))
        })
        .transpose()?;
    r.memory_swap = s.memswap_limit;
    if let Some(c) = lim.cpus.or(s.cpus) {
        if c <= 0.0 {
            return Err(err(s, "cpus", "must be greater than 0"));
        }
        r.nano_cpus = Some((c * 1e9).round() as i64);
    }
    r.pids_limit = lim.pids.or(s.pids_limit);
    // A memory reservation is docker's soft limit (memory.soft_limit_in_bytes).
    r.memory_reservation = s
        .deploy
        .resources
        .reservations
        .memory
        .or(s.mem_reservation)
        .map(|m| {
            i64::try_from(m)
                .map_err(|_| err(s, "deploy.resources.reservations.memory", "too large"))
        })
        .transpose()?;
    r.cpu_shares = s.cpu_shares;
    r.oom_kill_disable = s.oom_kill_disable;
    r.memory_swappiness = s
        .mem_swappiness
        .map(parse::memory_swappiness)
        .transpose()
        .map_err(|e| err(s, "mem_swappiness", e))?;
    r.cpu_quota = s.cpu_quota.filter(|q| *q != 0);
    r.cpu_period = s
        .cpu_period
        .map(parse::cpu_period)
        .transpose()
        .map_err(|e| err(s, "cpu_period", e))?
        .flatten();
    if r.nano_cpus.is_some() && (r.cpu_quota.is_some() || r.cpu_period.is_some()) {
        return Err(err(
            s,
            "cpus",
            "conflicts with cpu_quota and cpu_period (give one or the other)",
        ));
    }
    r.cpuset_cpus = s.cpuset.clone();
    r.shm_size = s.shm_size;
    for (name, u) in &s.ulimits {
        let num = |n: i64| {
            if n < 0 {
                "-1".to_string()
            } else {
                n.to_string()
            }
        };
        let spec = format!("{name}={}:{}", num(u.soft), num(u.hard));
        let parsed: Ulimit =
            parse::ulimit(&spec).map_err(|e| err(s, &format!("ulimits.{name}"), e))?;
        r.ulimits.push(parsed);
    }
    for (i, d) in s.devices.iter().enumerate() {
        r.devices
            .push(parse::device(d).map_err(|e| err(s, &format!("devices.{i}"), e))?);
    }
    Ok(())
}

/// `pid`, `ipc`, `uts`, `userns_mode`, `cgroup`, with docker's values. `service:NAME`
/// (a container of another service of the project) is not supported yet.
fn namespaces(s: &Service, o: &mut CreateOptions) -> Result<(), ComposeError> {
    let n = &s.namespaces;
    let mode = |key: &str, flag: &str, v: &Option<String>| match v.as_deref() {
        None => Ok(NsMode::Default),
        Some(m) if m.starts_with("service:") => Err(err(
            s,
            key,
            format!("{m:?} is not supported yet (container:NAME is)"),
        )),
        Some(m) => parse::ns_mode(flag, m).map_err(|e| err(s, key, e)),
    };
    o.namespaces = NamespaceModes {
        pid: mode("pid", "pid", &n.pid)?,
        ipc: mode("ipc", "ipc", &n.ipc)?,
        uts: mode("uts", "uts", &n.uts)?,
        userns: mode("userns_mode", "userns", &n.userns_mode)?,
        cgroupns: mode("cgroup", "cgroupns", &n.cgroup)?,
    };
    Ok(())
}

fn security(p: &Project, s: &Service, o: &mut CreateOptions) -> Result<(), ComposeError> {
    let sec = &mut o.security;
    sec.cap_add = s.cap_add.clone();
    sec.cap_drop = s.cap_drop.clone();
    sec.privileged = s.privileged;
    for (i, opt) in s.security_opt.iter().enumerate() {
        let key = format!("security_opt.{i}");
        // docker accepts `key=value` and the older `key:value`.
        let (k, v) = match opt.split_once(['=', ':']) {
            Some((k, v)) => (k, Some(v)),
            None => (opt.as_str(), None),
        };
        match (k, v) {
            ("no-new-privileges", None) => sec.no_new_privileges = Some(true),
            ("no-new-privileges", Some(b)) => {
                sec.no_new_privileges = Some(match b {
                    "true" => true,
                    "false" => false,
                    _ => return Err(err(s, &key, format!("invalid value in {opt:?} (true or false)"))),
                })
            }
            ("seccomp", Some("unconfined")) => sec.seccomp = Some(SeccompOpt::Unconfined),
            ("seccomp", Some(path)) if !path.is_empty() => {
                let full = p.working_dir.join(path);
                let text = std::fs::read_to_string(&full)
                    .map_err(|e| err(s, &key, format!("seccomp profile {}: {e}", full.display())))?;
                sec.seccomp = Some(SeccompOpt::Profile(text));
            }
            _ => {
                return Err(err(
                    s,
                    &key,
                    format!("{opt:?} is not supported (seccomp=PATH|unconfined, no-new-privileges[=true|false])"),
                ))
            }
        }
    }
    Ok(())
}

fn nanos(d: Option<std::time::Duration>) -> i64 {
    d.map(|d| d.as_nanos().min(i64::MAX as u128) as i64)
        .unwrap_or(0)
}

fn health(s: &Service, o: &mut CreateOptions) -> Result<(), ComposeError> {
    o.readiness = s.readiness.as_ref().map(health_config);
    let Some(h) = &s.healthcheck else {
        return Ok(());
    };
    if h.disable || h.test.first().is_some_and(|t| t == "NONE") {
        o.no_healthcheck = true;
        return Ok(());
    }
    o.health = Some(health_config(h));
    Ok(())
}

fn health_config(h: &crate::compose::model::Healthcheck) -> HealthConfig {
    HealthConfig {
        test: h.test.clone(),
        interval: nanos(h.interval),
        timeout: nanos(h.timeout),
        start_period: nanos(h.start_period),
        start_interval: nanos(h.start_interval),
        retries: h
            .retries
            .map(|r| r.min(i64::MAX as u64) as i64)
            .unwrap_or(0),
        success_threshold: h
            .success_threshold
            .map(|r| r.min(i64::MAX as u64) as i64)
            .unwrap_or(0),
        probe: h.probe.clone(),
    }
}

fn network(p: &Project, s: &Service, o: &mut CreateOptions) -> Result<(), ComposeError> {
    o.network = match s.network_mode.as_deref() {
        None | Some("bridge") => NetworkMode::Bridge,
        Some("host") => NetworkMode::Host,
        Some("none") => NetworkMode::None,
        Some(m) if m.starts_with("container:") => {
            NetworkMode::Container(m["container:".len()..].to_string())
        }
        Some(m) if m.starts_with("service:") => {
            return Err(err(
                s,
                "network_mode",
                format!("{m:?} is not supported yet"),
            ))
        }
        Some(m) => {
            return Err(err(
                s,
                "network_mode",
                format!("invalid network mode {m:?}"),
            ))
        }
    };
    if s.network_mode.is_some() {
        return Ok(());
    }
    let mut nets: Vec<(&String, &crate::compose::ServiceNetwork)> = s.networks.iter().collect();
    // docker compose: by priority, highest first, then by name (the BTreeMap's order).
    nets.sort_by_key(|n| std::cmp::Reverse(n.1.priority));
    for (key, n) in nets {
        let def = p.networks.get(key).ok_or_else(|| {
            err(
                s,
                &format!("networks.{key}"),
                format!("undefined network {key}"),
            )
        })?;
        let mut aliases = n.aliases.clone();
        if s.deploy.endpoint_mode == EndpointMode::Dnsrr && !aliases.contains(&s.name) {
            aliases.push(s.name.clone());
        }
        o.networks.push(NetworkAttach {
            network_id: String::new(),
            name: def.name.clone(),
            aliases,
            ipv4: n.ipv4_address.clone(),
            ipv6: n.ipv6_address.clone(),
            mac: n.mac_address.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::{load, LoadOptions};
    use std::path::Path;

    fn project(yaml: &str, extra: &[(&str, &str)]) -> (tempfile::TempDir, Project) {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("shop");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("compose.yaml"), yaml).unwrap();
        for (f, t) in extra {
            std::fs::write(dir.join(f), t).unwrap();
        }
        let mut o = LoadOptions {
            working_dir: dir,
            ..Default::default()
        };
        o.env.insert("FROM_ENV".into(), "env-value".into());
        let p = load(&o).unwrap();
        (d, p)
    }

    fn opts_of(yaml: &str, svc: &str) -> Result<CreateOptions, ComposeError> {
        let (_d, p) = project(yaml, &[]);
        create_options(&p, &p.services[svc], 2, false)
    }

    #[test]
    fn names_labels_env_and_ports() {
        let (_d, p) = project(
            "services:\n  web:\n    image: nginx:1\n    labels: {mine: x}\n    environment: {A: '1', FROM_ENV: null, UNSET: null}\n    ports: ['8080:80', '9000/udp']\n    expose: ['3000']\n    depends_on:\n      db: {condition: service_healthy, restart: true}\n  db:\n    image: pg\n",
            &[],
        );
        let o = create_options(&p, &p.services["web"], 2, false).unwrap();
        assert_eq!(o.name.as_deref(), Some("shop-web-2"));
        assert_eq!(o.image, "nginx:1");
        assert_eq!(o.env, ["A=1", "FROM_ENV=env-value"]);
        assert!(o.publish.is_empty());
        assert_eq!(o.expose, ["3000", "80/tcp", "9000/udp"]);
        assert_eq!(o.restart, RestartPolicy::No);
        let l = &o.labels;
        assert_eq!(l["mine"], "x");
        assert_eq!(l["com.docker.compose.project"], "shop");
        assert_eq!(l["com.docker.compose.service"], "web");
        assert_eq!(l["com.docker.compose.container-number"], "2");
        assert_eq!(l["com.docker.compose.oneoff"], "False");
        assert_eq!(l["com.docker.compose.config-hash"], p.config_hash("web"));
        assert_eq!(
            l["com.docker.compose.depends_on"],
            "db:service_healthy:true"
        );
        assert!(l["com.docker.compose.project.working_dir"].ends_with("/shop"));
        assert!(l["com.docker.compose.project.config_files"].ends_with("/shop/compose.yaml"));
        assert_eq!(l["com.docker.compose.version"], COMPOSE_VERSION);
        let run = create_options(&p, &p.services["web"], 1, true).unwrap();
        assert_eq!(run.name.as_deref(), Some("shop-web-run-1"));
        assert_eq!(run.labels["com.docker.compose.oneoff"], "True");
    }

    #[test]
    fn namespaces_logging_and_cgroup_keys_reach_the_engine() {
        use berth_engine::options::{LogDriver, LogOptions};
        let o = opts_of(
            "services:\n  web:\n    image: a\n    pid: host\n    ipc: shareable\n    uts: host\n    userns_mode: host\n    cgroup: private\n    cgroup_parent: shop.slice\n    logging:\n      driver: local\n      options: {max-size: 1m, max-file: '2'}\n    oom_kill_disable: true\n    mem_swappiness: 10\n    cpu_quota: 50000\n    cpu_period: 100000\n  side:\n    image: a\n    ipc: container:shop-web-1\n    logging: {driver: none}\n",
            "web",
        )
        .unwrap();
        let n = &o.namespaces;
        assert_eq!(
            (&n.pid, &n.ipc, &n.uts, &n.userns, &n.cgroupns),
            (
                &NsMode::Host,
                &NsMode::Shareable,
                &NsMode::Host,
                &NsMode::Host,
                &NsMode::Private
            )
        );
        assert_eq!(o.cgroup_parent, "shop.slice");
        assert_eq!(o.runtime, None);
        assert_eq!(
            o.log,
            LogOptions {
                driver: LogDriver::Local,
                max_size: Some(1 << 20),
                max_file: Some(2)
            }
        );
        let r = &o.resources;
        assert!(r.oom_kill_disable);
        assert_eq!(
            (r.memory_swappiness, r.cpu_quota, r.cpu_period),
            (Some(10), Some(50000), Some(100000))
        );
        let yaml = "services:\n  web:\n    image: a\n    ipc: container:shop-web-1\n    logging: {driver: none}\n";
        let side = opts_of(yaml, "web").unwrap();
        let crun = opts_of(
            "services:\n  web:\n    image: a\n    runtime: crun\n",
            "web",
        )
        .unwrap();
        assert_eq!(crun.runtime.as_deref(), Some("crun"));
        assert_eq!(side.namespaces.ipc, NsMode::Container("shop-web-1".into()));
        assert_eq!(side.log.driver, LogDriver::None);
        // Without the keys: docker's defaults, and a bounded json-file log.
        let plain = opts_of("services:\n  web:\n    image: a\n", "web").unwrap();
        assert_eq!(plain.namespaces, NamespaceModes::default());
        assert_eq!(plain.log, parse::log_options(None, &[]).unwrap());
        assert_eq!(plain.log.max_size, Some(LogOptions::DEFAULT_MAX_SIZE));
    }

    #[test]
    fn volumes_from_a_service_is_its_first_container_and_a_dependency() {
        let (_d, p) = project(
            "services:\n  data:\n    image: a\n    volumes: [v:/v]\n  app:\n    image: a\n    volumes_from: ['data:ro', 'container:other', 'container:x:rw']\nvolumes: {v: {}}\n",
            &[],
        );
        let o = create_options(&p, &p.services["app"], 1, false).unwrap();
        assert_eq!(o.volumes_from, ["shop-data-1:ro", "other", "x:rw"]);
        let d = &p.services["app"].depends_on["data"];
        assert_eq!(
            (d.condition, d.required),
            (crate::compose::Condition::ServiceStarted, true)
        );
        assert_eq!(p.start_order(&["app".into()]), ["data", "app"]);
    }

    #[test]
    fn bad_namespace_logging_and_cgroup_values_name_the_key() {
        for (key, yaml, want) in [
            (
                "pid",
                "pid: service:db",
                "services.web.pid: \"service:db\" is not supported yet",
            ),
            ("ipc", "ipc: bogus", "invalid IPC mode \"bogus\""),
            ("uts", "uts: private", "invalid UTS mode"),
            (
                "logging",
                "logging: {driver: syslog}",
                "logging driver \"syslog\" is not supported",
            ),
            (
                "logging",
                "logging: {options: {max-size: 0}}",
                "max-size must be positive",
            ),
            (
                "logging",
                "logging: {options: {labels: a}}",
                "unknown log opt \"labels\"",
            ),
            (
                "mem_swappiness",
                "mem_swappiness: 101",
                "valid memory swappiness range is 0-100",
            ),
            ("cpu_period", "cpu_period: -1", "must not be negative"),
            (
                "cpus",
                "cpus: 0.5\n    cpu_quota: 1000",
                "conflicts with cpu_quota",
            ),
            (
                "cgroup_parent",
                "cgroup_parent: ../up",
                "must be a cgroup path without",
            ),
        ] {
            let e = opts_of(
                &format!("services:\n  web:\n    image: a\n    {yaml}\n"),
                "web",
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains(want) && e.contains(key), "{yaml}: {e}");
        }
    }

    #[test]
    fn networks_in_priority_then_name_order_with_dnsrr_alias() {
        let o = opts_of(
            "services:\n  web:\n    image: a\n    deploy: {endpoint_mode: dnsrr}\n    networks:\n      zeta: {priority: 10, aliases: [z]}\n      alpha: {ipv4_address: 10.1.0.5}\n      beta:\nnetworks:\n  alpha: {ipam: {config: [{subnet: 10.1.0.0/24}]}}\n  beta: {name: custom}\n  zeta: {}\n",
            "web",
        )
        .unwrap();
        assert_eq!(o.network, NetworkMode::Bridge);
        let names: Vec<&str> = o.networks.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["shop_zeta", "shop_alpha", "custom"]);
        assert_eq!(o.networks[0].aliases, ["z", "web"]);
        assert_eq!(o.networks[1].ipv4.as_deref(), Some("10.1.0.5"));
        assert_eq!(o.networks[1].aliases, ["web"]);
        assert!(o.networks.iter().all(|n| n.network_id.is_empty()));
        let o = opts_of("services:\n  web:\n    image: a\n", "web").unwrap();
        assert_eq!(o.networks[0].name, "shop_default");
        assert!(o.networks[0].aliases.is_empty());
        let o = opts_of(
            "services:\n  web:\n    image: a\n    network_mode: host\n",
            "web",
        )
        .unwrap();
        assert_eq!((o.network, o.networks.len()), (NetworkMode::Host, 0));
        let o = opts_of(
            "services:\n  web:\n    image: a\n    network_mode: container:other\n",
            "web",
        )
        .unwrap();
        assert_eq!(o.network, NetworkMode::Container("other".into()));
    }

    #[test]
    fn mounts_resources_and_limits() {
        let o = opts_of(
            "services:\n  web:\n    image: a\n    volumes: ['data:/data:ro', './conf:/etc/conf', '/anon', {type: tmpfs, target: /t, tmpfs: {size: 1m}}]\n    tmpfs: ['/run:size=64k,mode=1777']\n    mem_limit: 1g\n    cpus: 2\n    pids_limit: 10\n    deploy:\n      resources:\n        limits: {memory: 256m, cpus: '0.5'}\n        reservations: {memory: 64m}\n    ulimits: {nofile: {soft: 100, hard: 200}, core: -1}\n    devices: ['/dev/fuse']\n    shm_size: 128m\nvolumes:\n  data: {}\n",
            "web",
        )
        .unwrap();
        assert_eq!(
            o.mounts[0],
            MountSpec::Volume {
                name: Some("shop_data".into()),
                target: "/data".into(),
                read_only: true
            }
        );
        match &o.mounts[1] {
            MountSpec::Bind { source, target, .. } => {
                assert!(source.ends_with("/shop/conf") && Path::new(source).is_absolute());
                assert_eq!(target, "/etc/conf");
            }
            m => panic!("{m:?}"),
        }
        assert_eq!(
            o.mounts[2],
            MountSpec::Volume {
                name: None,
                target: "/anon".into(),
                read_only: false
            }
        );
        assert_eq!(
            o.mounts[3],
            MountSpec::Tmpfs {
                target: "/t".into(),
                size: Some(1 << 20),
                mode: None,
                options: vec![]
            }
        );
        assert_eq!(
            o.mounts[4],
            MountSpec::Tmpfs {
                target: "/run".into(),
                size: Some(64 << 10),
                mode: Some(0o1777),
                options: vec![]
            }
        );
        let r = &o.resources;
        // deploy.resources.limits win over the service-level keys
        assert_eq!(
            (r.memory, r.nano_cpus, r.pids_limit),
            (Some(256 << 20), Some(500_000_000), Some(10))
        );
        assert_eq!(r.shm_size, Some(128 << 20));
        assert_eq!(r.memory_reservation, Some(64 << 20));
        assert_eq!(
            r.ulimits
                .iter()
                .find(|u| u.name == "nofile")
                .map(|u| (u.soft, u.hard)),
            Some((100, 200))
        );
        assert_eq!(
            r.ulimits
                .iter()
                .find(|u| u.name == "core")
                .map(|u| (u.soft, u.hard)),
            Some((u64::MAX, u64::MAX))
        );
        assert_eq!(r.devices[0].host_path, "/dev/fuse");
        assert!(opts_of(
            "services:\n  web:\n    image: a\n    ulimits: {bogus: 1}\n",
            "web"
        )
        .unwrap_err()
        .to_string()
        .contains("services.web.ulimits.bogus"));
    }

    #[test]
    fn security_health_and_the_rest() {
        let (_d, p) = project(
            "services:\n  web:\n    image: a\n    cap_add: [NET_ADMIN]\n    cap_drop: [ALL]\n    read_only: true\n    user: '1000'\n    working_dir: /app\n    init: true\n    hostname: h\n    dns: [1.1.1.1]\n    dns_search: [ex.com]\n    extra_hosts: ['db:10.0.0.2']\n    sysctls: {net.core.somaxconn: 1024}\n    stop_signal: SIGINT\n    stop_grace_period: 2m500ms\n    security_opt: ['seccomp=prof.json', 'no-new-privileges:true']\n    healthcheck: {test: 'true', interval: 2s, timeout: 1s, retries: 5, start_period: 3s}\n    command: [a, b]\n    entrypoint: [/e]\n",
            &[("prof.json", "{\"defaultAction\":\"SCMP_ACT_ALLOW\"}")],
        );
        let o = create_options(&p, &p.services["web"], 1, false).unwrap();
        assert_eq!(
            (o.security.cap_add.clone(), o.security.cap_drop.clone()),
            (vec!["NET_ADMIN".to_string()], vec!["ALL".to_string()])
        );
        assert_eq!(
            o.security.seccomp,
            Some(SeccompOpt::Profile(
                "{\"defaultAction\":\"SCMP_ACT_ALLOW\"}".into()
            ))
        );
        assert_eq!(o.security.no_new_privileges, Some(true));
        assert!(o.read_only && o.init);
        assert_eq!(
            (
                o.user.as_deref(),
                o.workdir.as_deref(),
                o.hostname.as_deref()
            ),
            (Some("1000"), Some("/app"), Some("h"))
        );
        assert_eq!(o.dns.servers, ["1.1.1.1"]);
        assert_eq!(o.dns.search, ["ex.com"]);
        assert_eq!(o.dns.extra_hosts, ["db:10.0.0.2"]);
        assert_eq!(o.sysctls["net.core.somaxconn"], "1024");
        assert_eq!(
            (o.stop_signal.as_deref(), o.stop_timeout),
            (Some("SIGINT"), Some(120))
        );
        let h = o.health.unwrap();
        assert_eq!(h.test, ["CMD-SHELL", "true"]);
        assert_eq!(
            (h.interval, h.timeout, h.start_period, h.retries),
            (2_000_000_000, 1_000_000_000, 3_000_000_000, 5)
        );
        assert_eq!(
            (o.cmd, o.entrypoint),
            (
                Some(vec!["a".to_string(), "b".to_string()]),
                Some(vec!["/e".to_string()])
            )
        );

        let o = opts_of("services:\n  web:\n    image: a\n    healthcheck: {disable: true}\n    security_opt: [seccomp:unconfined, no-new-privileges=false]\n", "web").unwrap();
        assert!(o.no_healthcheck && o.health.is_none());
        assert_eq!(o.security.seccomp, Some(SeccompOpt::Unconfined));
        assert_eq!(o.security.no_new_privileges, Some(false));
    }

    #[test]
    fn unsupported_security_opts_and_missing_profile_are_errors() {
        let e = opts_of(
            "services:\n  web:\n    image: a\n    security_opt: ['apparmor=unconfined']\n",
            "web",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("services.web.security_opt.0: \"apparmor=unconfined\" is not supported"),
            "{e}"
        );
        let e = opts_of(
            "services:\n  web:\n    image: a\n    security_opt: ['seccomp=missing.json']\n",
            "web",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("seccomp profile") && e.contains("missing.json"),
            "{e}"
        );
        let e = opts_of(
            "services:\n  web:\n    image: a\n    stop_signal: SIGNOPE\n",
            "web",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("services.web.stop_signal"), "{e}");
    }

    #[test]
    fn container_name_is_used() {
        let o = opts_of(
            "services:\n  web:\n    image: a\n    container_name: my-web\n",
            "web",
        )
        .unwrap();
        assert_eq!(o.name.as_deref(), Some("my-web"));
    }
}
