//! `inspect` of a container in docker's shape (docker's `inspect` and the API's
//! `GET /containers/{id}/json`); images are `images::inspect`.

use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::options::{LogDriver, MountSpec, NetworkMode, RestartPolicy};
use crate::parse::signal_name;
use crate::record::{ContainerConfig, ContainerState, Status};
use crate::status;
use berth_image::store::Store;
use serde_json::{json, Value};

/// Container `id` (resolved) as docker's inspect shows it; `size` adds SizeRw (its own
/// layer) and SizeRootFs (with the image). A record that cannot be read is shown, with
/// what is wrong, not refused.
pub fn container(layout: &Layout, store: &Store, id: &str, size: bool) -> Result<Value> {
    let c = match layout.load_config(id) {
        Ok(c) => c,
        Err(x) => return Ok(unreadable_json(layout, id, &x)),
    };
    let s = match status::current(layout, id) {
        Ok(s) => s,
        Err(x @ Error::Unreadable { .. }) => {
            let mut v = container_json(layout, store, &c, &ContainerState::default());
            v["State"]["Status"] = json!("unknown");
            v["State"]["Error"] = json!(crate::error::chain(&x));
            return Ok(v);
        }
        Err(x) => return Err(x),
    };
    let mut v = container_json(layout, store, &c, &s);
    if size {
        let upper = store.root().join("containers").join(id).join("upper");
        let rw = crate::inventory::dir_size(&upper);
        let image = store
            .records()
            .ok()
            .and_then(|r| r.images.get(&c.image_manifest).map(|i| i.size))
            .unwrap_or(0);
        v["SizeRw"] = json!(rw);
        v["SizeRootFs"] = json!(rw + image);
    }
    Ok(v)
}

/// docker's zero time for "never".
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn time_or_zero(t: &str) -> &str {
    if t.is_empty() {
        ZERO_TIME
    } else {
        t
    }
}

/// A container in `docker inspect`'s shape.
pub fn container_json(
    layout: &Layout,
    store: &Store,
    c: &ContainerConfig,
    s: &ContainerState,
) -> Value {
    let o = &c.options;
    // What the image contributed, for Config.
    let image: Value = store
        .records()
        .ok()
        .and_then(|r| r.images.get(&c.image_manifest).cloned())
        .and_then(|rec| store.read_blob(&rec.config).ok())
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v.get("config").cloned())
        .unwrap_or(Value::Null);
    // The process as the runtime gets it (env, cwd, user after resolution).
    let spec: Value = std::fs::read(layout.bundle_dir(&c.id).join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let process = &spec["process"];
    let env = process
        .get("env")
        .cloned()
        .unwrap_or_else(|| json!(o.env.clone()));
    let cmd = match &o.cmd {
        Some(c) => json!(c),
        None if o.entrypoint.is_some() => Value::Null,
        None => image.get("Cmd").cloned().unwrap_or(Value::Null),
    };
    let entrypoint = match &o.entrypoint {
        Some(e) if e.is_empty() => Value::Null,
        Some(e) => json!(e),
        None => image.get("Entrypoint").cloned().unwrap_or(Value::Null),
    };
    let mut labels = image
        .get("Labels")
        .and_then(|l| l.as_object().cloned())
        .unwrap_or_default();
    for (k, v) in &o.labels {
        labels.insert(k.clone(), json!(v));
    }
    // Go maps marshal in key order.
    labels.sort_keys();
    let health = c.health.as_ref().map(|h| {
        json!({"Test": h.test, "Interval": h.interval, "Timeout": h.timeout,
               "StartPeriod": h.start_period, "StartInterval": h.start_interval,
               "Retries": h.retries})
    });
    let (policy, retries) = match &o.restart {
        RestartPolicy::No => ("no", 0),
        RestartPolicy::OnFailure(n) => ("on-failure", *n),
        RestartPolicy::Always => ("always", 0),
        RestartPolicy::UnlessStopped => ("unless-stopped", 0),
    };
    let mut mounts = Vec::new();
    for m in &o.mounts {
        match m {
            MountSpec::Bind {
                source,
                target,
                read_only,
                propagation,
                ..
            } => mounts.push(json!({
                "Type": "bind", "Source": source, "Destination": target, "Mode": "",
                "RW": !read_only, "Propagation": propagation.clone().unwrap_or_else(|| "rprivate".into()),
            })),
            MountSpec::Tmpfs { target, .. } => mounts.push(json!({
                "Type": "tmpfs", "Source": "", "Destination": target, "Mode": "", "RW": true,
                "Propagation": "",
            })),
            MountSpec::Volume { .. } => {}
        }
    }
    for v in &c.volumes {
        let ro = o.mounts.iter().any(|m| {
            matches!(m, MountSpec::Volume { target, read_only: true, .. } if *target == v.target)
        });
        mounts.push(json!({
            "Type": "volume", "Name": v.name,
            "Source": layout.volumes_dir().join(&v.name).join("_data"),
            "Destination": v.target, "Driver": "local", "Mode": "", "RW": !ro, "Propagation": "",
        }));
    }
    // docker's HostConfig.Binds: -v's host paths and named volumes ("src:dst[:ro]"), null
    // if none (--mount binds and anonymous volumes are not listed there).
    let ro = |r: &bool| if *r { ":ro" } else { "" };
    let binds: Vec<String> = o
        .mounts
        .iter()
        .filter_map(|m| match m {
            MountSpec::Bind {
                source,
                target,
                read_only,
                create_source: true,
                ..
            } => Some(format!("{source}:{target}{}", ro(read_only))),
            MountSpec::Volume {
                name: Some(n),
                target,
                read_only,
            } => Some(format!("{n}:{target}{}", ro(read_only))),
            _ => None,
        })
        .collect();
    // Config.ExposedPorts: the image's, --expose's and -p's container ports.
    let mut exposed = image
        .get("ExposedPorts")
        .and_then(|p| p.as_object().cloned())
        .unwrap_or_default();
    for e in &o.expose {
        for (port, proto) in crate::net::parse_expose(e).unwrap_or_default() {
            exposed.insert(format!("{port}/{proto}"), json!({}));
        }
    }
    for p in &o.publish {
        for spec in berth_network::ports::parse_publish(p).unwrap_or_default() {
            exposed.insert(format!("{}/{}", spec.container_port, spec.proto), json!({}));
        }
    }
    exposed.sort_keys();
    let tmpfs: serde_json::Map<String, Value> = o
        .mounts
        .iter()
        .filter_map(|m| match m {
            MountSpec::Tmpfs {
                target, options, ..
            } => Some((target.clone(), json!(options.join(",")))),
            _ => None,
        })
        .collect();
    let rootfs_dir = store.root().join("containers").join(&c.id);
    let mut state = json!({
        "Status": s.status.as_str(),
        "Running": matches!(s.status, Status::Running | Status::Paused),
        "Paused": s.status == Status::Paused,
        "Restarting": s.status == Status::Restarting,
        "OOMKilled": s.oom_killed,
        "Dead": s.status == Status::Dead,
        "Pid": if status::is_running(s) { s.pid } else { 0 },
        "ExitCode": s.exit_code,
        "Error": s.error,
        "StartedAt": time_or_zero(&s.started_at),
        "FinishedAt": time_or_zero(&s.finished_at),
    });
    if let Some(h) = &s.health {
        state["Health"] = json!({
            "Status": h.status, "FailingStreak": h.failing_streak,
            "Log": h.log.iter().map(|p| json!({"Start": p.start, "End": p.end,
                "ExitCode": p.exit_code, "Output": p.output})).collect::<Vec<_>>(),
        });
    }
    let user = process["user"]["username"]
        .as_str()
        .map(str::to_string)
        .or_else(|| o.user.clone())
        .or_else(|| {
            image
                .get("User")
                .and_then(|u| u.as_str())
                .map(str::to_string)
        })
        .unwrap_or_default();
    let workdir = o
        .workdir
        .clone()
        .or_else(|| process["cwd"].as_str().map(str::to_string))
        .unwrap_or_default();
    json!({
        "Id": c.id,
        "Created": c.created,
        "Path": c.path,
        "Args": c.args,
        "State": state,
        "Image": c.image_id,
        "ResolvConfPath": "",
        "HostnamePath": "",
        "HostsPath": "",
        "LogPath": layout.log_path(&c.id),
        "Name": format!("/{}", c.name),
        "RestartCount": s.restart_count,
        "Driver": "overlay",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": Value::Null,
        "HostConfig": {
            "Binds": if binds.is_empty() { Value::Null } else { json!(binds) },
            "LogConfig": {"Type": o.log.driver.name(), "Config": if o.log.driver == LogDriver::None {
                json!({})
            } else {
                json!({"max-size": o.log.max_size.map(|v| v.to_string()),
                       "max-file": o.log.max_file.map(|v| v.to_string())})
            }},
            "PidMode": o.namespaces.pid.docker(""),
            "IpcMode": o.namespaces.ipc.docker("private"),
            "UTSMode": o.namespaces.uts.docker(""),
            "UsernsMode": o.namespaces.userns.docker(""),
            "CgroupnsMode": o.namespaces.cgroupns.docker(
                if crate::spec::cgroup_v2_host() { "private" } else { "host" }),
            "VolumesFrom": if o.volumes_from.is_empty() { Value::Null } else { json!(o.volumes_from) },
            "MemoryReservation": o.resources.memory_reservation.unwrap_or(0),
            "OomKillDisable": o.resources.oom_kill_disable,
            "CpuQuota": o.resources.cpu_quota.unwrap_or(0),
            "CpuPeriod": o.resources.cpu_period.unwrap_or(0),
            "MemorySwappiness": o.resources.memory_swappiness,
            "BlkioWeight": o.resources.blkio_weight.unwrap_or(0),
            "NetworkMode": match &o.network {
                NetworkMode::Host => "host".to_string(),
                NetworkMode::None => "none".to_string(),
                NetworkMode::Container(r) => format!("container:{r}"),
                NetworkMode::Bridge => o.networks.first().map_or("bridge".to_string(), |n| {
                    if n.name == "bridge" { "default".to_string() } else { n.name.clone() }
                }),
            },
            "RestartPolicy": {"Name": policy, "MaximumRetryCount": retries},
            "AutoRemove": o.auto_remove,
            "CapAdd": o.security.cap_add,
            "CapDrop": o.security.cap_drop,
            "GroupAdd": o.group_add,
            "Privileged": o.security.privileged,
            "ReadonlyRootfs": o.read_only,
            "SecurityOpt": security_opts(c),
            "Tmpfs": tmpfs,
            "ShmSize": o.resources.shm_size.unwrap_or(64 << 20),
            "Runtime": c.runtime,
            "Sysctls": o.sysctls,
            "CgroupParent": o.cgroup_parent,
            "Memory": o.resources.memory.unwrap_or(0),
            "MemorySwap": o.resources.memory_swap.unwrap_or(0),
            "NanoCpus": o.resources.nano_cpus.unwrap_or(0),
            "CpuShares": o.resources.cpu_shares.unwrap_or(0),
            "CpusetCpus": o.resources.cpuset_cpus.clone().unwrap_or_default(),
            "PidsLimit": o.resources.pids_limit,
            "Ulimits": o.resources.ulimits.iter().map(|u| json!({"Name": u.name, "Soft": u.soft, "Hard": u.hard})).collect::<Vec<_>>(),
            "Devices": o.resources.devices.iter().map(|d| json!({"PathOnHost": d.host_path, "PathInContainer": d.container_path, "CgroupPermissions": d.permissions})).collect::<Vec<_>>(),
            "Init": o.init,
            "HealthOnFailure": format!("{:?}", o.health_on_failure).to_lowercase(),
        },
        "GraphDriver": {"Name": "overlay", "Data": {
            "UpperDir": rootfs_dir.join("upper"), "WorkDir": rootfs_dir.join("work"),
            "MergedDir": rootfs_dir.join("merged")}},
        "Mounts": mounts,
        "Config": {
            "Hostname": o.hostname.clone().unwrap_or_else(|| c.id[..12].to_string()),
            "Domainname": "",
            "User": user,
            "AttachStdin": o.open_stdin,
            "AttachStdout": true,
            "AttachStderr": true,
            "Tty": o.tty,
            "ExposedPorts": if exposed.is_empty() { Value::Null } else { Value::Object(exposed) },
            "OpenStdin": o.open_stdin,
            "StdinOnce": o.open_stdin,
            "Env": env,
            "Cmd": cmd,
            "Healthcheck": health,
            "Image": o.image,
            "Volumes": image.get("Volumes").cloned().unwrap_or(Value::Null),
            "WorkingDir": workdir,
            "Entrypoint": entrypoint,
            "Labels": labels,
            "StopSignal": signal_name(c.stop_signal),
            "StopTimeout": o.stop_timeout,
        },
        "NetworkSettings": network_settings(c, s),
    })
}

/// docker's NetworkSettings: per network the addresses while it runs (the config's
/// networks, empty, while it does not); the top-level address fields only for the default
/// network, as docker; Ports: the published ones, and exposed ones as null.
fn network_settings(c: &ContainerConfig, s: &ContainerState) -> Value {
    let o = &c.options;
    let eps = s
        .network
        .as_ref()
        .map(|n| n.endpoints.as_slice())
        .unwrap_or(&[]);
    let ip_s = |ip: &Option<std::net::IpAddr>| ip.map(|i| i.to_string()).unwrap_or_default();
    let mut networks = serde_json::Map::new();
    for a in &o.networks {
        let e = eps.iter().find(|e| e.network_id == a.network_id);
        let running = e.is_some();
        let e = e.cloned().unwrap_or_default();
        let ipam = if a.ipv4.is_some() || a.ipv6.is_some() {
            json!({"IPv4Address": a.ipv4.clone().unwrap_or_default(),
                   "IPv6Address": a.ipv6.clone().unwrap_or_default()})
        } else {
            Value::Null
        };
        let mut aliases: Vec<String> = a.aliases.clone();
        if a.name != "bridge" {
            aliases.push(c.id[..12].to_string());
        }
        networks.insert(
            a.name.clone(),
            json!({
                "IPAMConfig": ipam,
                "Links": null,
                "Aliases": if aliases.is_empty() { Value::Null } else { json!(aliases) },
                "NetworkID": a.network_id,
                "EndpointID": if running { crate::net::store::endpoint_id(&c.id, &a.network_id) } else { String::new() },
                "Gateway": ip_s(&e.gateway),
                "IPAddress": ip_s(&e.ipv4),
                "IPPrefixLen": e.ipv4_prefix,
                "IPv6Gateway": ip_s(&e.ipv6_gateway),
                "GlobalIPv6Address": ip_s(&e.ipv6),
                "GlobalIPv6PrefixLen": e.ipv6_prefix,
                "MacAddress": e.mac,
                "DriverOpts": null,
            }),
        );
    }
    let mut ports = serde_json::Map::new();
    if let Some(n) = &s.network {
        for p in &n.ports {
            let k = format!("{}/{}", p.container_port, p.proto);
            let entry = ports.entry(k).or_insert_with(|| json!([]));
            if let Some(arr) = entry.as_array_mut() {
                arr.push(json!({"HostIp": p.host_ip, "HostPort": p.host_port.to_string()}));
            }
        }
    }
    for e in &o.expose {
        for (port, proto) in crate::net::parse_expose(e).unwrap_or_default() {
            ports
                .entry(format!("{port}/{proto}"))
                .or_insert(Value::Null);
        }
    }
    let default = eps
        .iter()
        .find(|e| e.network == "bridge")
        .cloned()
        .unwrap_or_default();
    json!({
        "Bridge": "",
        "SandboxID": if eps.is_empty() { String::new() } else { c.id.clone() },
        "HairpinMode": false,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "Ports": ports,
        "SandboxKey": if s.pid > 0 && o.network != NetworkMode::Host { format!("/proc/{}/ns/net", s.pid) } else { String::new() },
        "SecondaryIPAddresses": null,
        "SecondaryIPv6Addresses": null,
        "EndpointID": if default.network_id.is_empty() { String::new() } else { crate::net::store::endpoint_id(&c.id, &default.network_id) },
        "Gateway": ip_s(&default.gateway),
        "GlobalIPv6Address": ip_s(&default.ipv6),
        "GlobalIPv6PrefixLen": default.ipv6_prefix,
        "IPAddress": ip_s(&default.ipv4),
        "IPPrefixLen": default.ipv4_prefix,
        "IPv6Gateway": ip_s(&default.ipv6_gateway),
        "MacAddress": default.mac,
        "Networks": networks,
    })
}

fn security_opts(c: &ContainerConfig) -> Vec<String> {
    let s = &c.options.security;
    let mut v = Vec::new();
    match &s.seccomp {
        Some(crate::options::SeccompOpt::Unconfined) => v.push("seccomp=unconfined".into()),
        Some(crate::options::SeccompOpt::Profile(_)) => v.push("seccomp=<profile>".into()),
        None => {}
    }
    if let Some(b) = s.no_new_privileges {
        v.push(format!("no-new-privileges={b}"));
    }
    v
}

/// What inspect shows of a container whose config cannot be read (or was never written).
fn unreadable_json(layout: &Layout, id: &str, why: &Error) -> Value {
    let name = crate::inventory::names_of(layout, id)
        .into_iter()
        .next()
        .map(|n| format!("/{n}"))
        .unwrap_or_default();
    json!({
        "Id": id,
        "Name": name,
        "State": {
            "Status": "unknown",
            "Running": false, "Paused": false, "Restarting": false, "OOMKilled": false,
            "Dead": false, "Pid": 0, "ExitCode": 0,
            "Error": crate::error::chain(why),
            "StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME,
        },
    })
}
