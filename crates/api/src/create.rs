//! `POST /containers/create`: docker's create body (Config, HostConfig, NetworkingConfig)
//! mapped onto the engine's run flags (berth_engine::flags), so a request is checked by
//! the same code as `berth run`'s flags. A field Berth does not support is a 400 naming it
//! when it asks for anything; its default (null, false, 0, "", [], {}) passes.

use crate::params::is_default;
use crate::ApiError;
use berth_engine::flags::RunFlags;
use berth_engine::options::{CreateOptions, HealthConfig};
use serde_json::{Map, Value};

/// Fields that only matter elsewhere (attach, the client, Windows) and so take any value.
const CLIENT_SIDE: &[&str] = &[
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "ArgsEscaped",
    "ContainerIDFile",
];

/// The options of create body `b` named `name`, and warnings for what was accepted but
/// changes nothing (docker's `Warnings`).
pub fn options(b: &Value, name: Option<&str>) -> Result<(CreateOptions, Vec<String>), ApiError> {
    let mut warnings = Vec::new();
    let mut links: Vec<String> = Vec::new();
    let cfg = b
        .as_object()
        .ok_or_else(|| ApiError::bad("the request body must be a JSON object"))?;
    let empty = Map::new();
    let host = match cfg.get("HostConfig") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(m)) => m,
        Some(_) => return Err(ApiError::bad("HostConfig must be an object")),
    };
    let netcfg = match cfg.get("NetworkingConfig") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(m)) => m,
        Some(_) => return Err(ApiError::bad("NetworkingConfig must be an object")),
    };
    let mut f = RunFlags {
        name: name.filter(|n| !n.is_empty()).map(str::to_string),
        ..Default::default()
    };
    let mut entrypoint: Option<Vec<String>> = None;
    let mut cmd: Vec<String> = Vec::new();
    let mut health: Option<HealthConfig> = None;
    let mut image = String::new();
    // Config.Volumes: anonymous volumes, unless a bind or mount names the same target.
    let mut anon: Vec<String> = Vec::new();

    for (k, v) in cfg {
        let at = |m: &str| ApiError::bad(format!("{k}: {m}"));
        match k.as_str() {
            "HostConfig" | "NetworkingConfig" => {}
            "Image" => image = string(k, v)?,
            "Hostname" => f.hostname = opt_string(k, v)?,
            "User" => f.user = opt_string(k, v)?,
            "Env" => f.env = strings(k, v)?,
            "Cmd" => cmd = string_or_strings(k, v)?,
            "Entrypoint" => {
                if !v.is_null() {
                    entrypoint = Some(string_or_strings(k, v)?)
                }
            }
            "WorkingDir" => f.workdir = opt_string(k, v)?,
            "Labels" => f.label = pairs(k, v, "=")?,
            "Tty" => f.tty = boolean(k, v)?,
            "OpenStdin" => f.interactive = boolean(k, v)?,
            "StdinOnce" => {
                if boolean(k, v)? {
                    warnings.push(
                        "StdinOnce: the container's stdin stays open after the first attach \
                         ends (berth keeps it for the next one)"
                            .into(),
                    );
                }
            }
            "ExposedPorts" => f.expose = keys(k, v)?,
            "Volumes" => anon = keys(k, v)?,
            "StopSignal" => f.stop_signal = opt_string(k, v)?,
            "StopTimeout" => f.stop_timeout = opt_int(k, v)?,
            "NetworkDisabled" => {
                if boolean(k, v)? {
                    f.network = vec!["none".into()];
                }
            }
            "MacAddress" => f.mac_address = opt_string(k, v)?,
            "Healthcheck" => health = healthcheck(v).map_err(|m| at(&m))?,
            c if CLIENT_SIDE.contains(&c) => {}
            "Domainname" | "OnBuild" | "Shell" => unsupported_unless_default(k, v)?,
            _ => unsupported_unless_default(k, v)?,
        }
    }
    if image.is_empty() {
        return Err(ApiError::bad("Config.Image must be set (no image given)"));
    }

    for (k, v) in host {
        match k.as_str() {
            "Binds" => f.volume.extend(strings(k, v)?),
            "Mounts" => {
                for m in array(k, v)? {
                    f.mount.push(mount(m)?);
                }
            }
            "Tmpfs" => {
                for (p, o) in object(k, v)? {
                    let o = o.as_str().unwrap_or("");
                    f.tmpfs.push(if o.is_empty() {
                        p.clone()
                    } else {
                        format!("{p}:{o}")
                    });
                }
            }
            "LogConfig" => {
                if let Some(m) = v.as_object() {
                    f.log_driver = m
                        .get("Type")
                        .and_then(Value::as_str)
                        .filter(|t| !t.is_empty())
                        .map(str::to_string);
                    if let Some(c) = m.get("Config").filter(|c| !c.is_null()) {
                        f.log_opt = pairs("LogConfig.Config", c, "=")?;
                    }
                }
            }
            "Links" => {
                links = strings(k, v)?;
            }
            "NetworkMode" => {
                let m = opt_string(k, v)?.unwrap_or_default();
                if !m.is_empty() && m != "default" && f.network.is_empty() {
                    f.network.push(m);
                }
            }
            "PortBindings" => {
                for (port, binds) in object(k, v)? {
                    let binds = binds.as_array().cloned().unwrap_or_default();
                    if binds.is_empty() {
                        f.publish.push(port.clone());
                    }
                    for b in binds {
                        let ip = b.get("HostIp").and_then(Value::as_str).unwrap_or("");
                        let hp = b.get("HostPort").and_then(Value::as_str).unwrap_or("");
                        f.publish.push(match (ip, hp) {
                            ("", "") => port.clone(),
                            ("", hp) => format!("{hp}:{port}"),
                            (ip, hp) => format!("{ip}:{hp}:{port}"),
                        });
                    }
                }
            }
            "RestartPolicy" => {
                let name = v.get("Name").and_then(Value::as_str).unwrap_or("");
                let n = v
                    .get("MaximumRetryCount")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                f.restart = match name {
                    "" | "no" => None,
                    "on-failure" if n > 0 => Some(format!("on-failure:{n}")),
                    other => Some(other.to_string()),
                };
            }
            "AutoRemove" => f.rm = boolean(k, v)?,
            "VolumesFrom" => f.volumes_from = strings(k, v)?,
            "CapAdd" => f.cap_add = strings(k, v)?,
            "CapDrop" => f.cap_drop = strings(k, v)?,
            "CgroupnsMode" => f.cgroupns = opt_string(k, v)?,
            "Dns" => f.dns = strings(k, v)?,
            "DnsOptions" => f.dns_option = strings(k, v)?,
            "DnsSearch" => f.dns_search = strings(k, v)?,
            "ExtraHosts" => f.add_host = strings(k, v)?,
            "GroupAdd" => f.group_add = strings(k, v)?,
            "IpcMode" => f.ipc = opt_string(k, v)?,
            "PidMode" => f.pid = opt_string(k, v)?,
            "UTSMode" => f.uts = opt_string(k, v)?,
            "UsernsMode" => f.userns = opt_string(k, v)?,
            "Privileged" => f.privileged = boolean(k, v)?,
            "PublishAllPorts" => f.publish_all = boolean(k, v)?,
            "ReadonlyRootfs" => f.read_only = boolean(k, v)?,
            "SecurityOpt" => f.security_opt = strings(k, v)?,
            "ShmSize" => f.shm_size = opt_int(k, v)?.filter(|n| *n > 0).map(|n| n.to_string()),
            "Sysctls" => f.sysctl = pairs(k, v, "=")?,
            "Runtime" => f.runtime = opt_string(k, v)?,
            "CpuShares" => f.cpu_shares = opt_int(k, v)?.filter(|n| *n > 0).map(|n| n as u64),
            "Memory" => f.memory = opt_int(k, v)?.filter(|n| *n > 0).map(|n| n.to_string()),
            "MemoryReservation" => {
                f.memory_reservation = opt_int(k, v)?.filter(|n| *n > 0).map(|n| n.to_string())
            }
            "MemorySwap" => {
                f.memory_swap = opt_int(k, v)?.filter(|n| *n != 0).map(|n| n.to_string())
            }
            "MemorySwappiness" => f.memory_swappiness = opt_int(k, v)?,
            "NanoCpus" => {
                f.cpus = opt_int(k, v)?
                    .filter(|n| *n > 0)
                    .map(|n| format!("{}.{:09}", n / 1_000_000_000, n % 1_000_000_000))
            }
            "CpuPeriod" => f.cpu_period = opt_int(k, v)?,
            "CpuQuota" => f.cpu_quota = opt_int(k, v)?,
            "CpusetCpus" => f.cpuset_cpus = opt_string(k, v)?.filter(|s| !s.is_empty()),
            "CgroupParent" => f.cgroup_parent = opt_string(k, v)?.filter(|s| !s.is_empty()),
            "BlkioWeight" => f.blkio_weight = opt_int(k, v)?.filter(|n| *n != 0).map(|n| n as u16),
            "PidsLimit" => f.pids_limit = opt_int(k, v)?.filter(|n| *n != 0),
            "OomKillDisable" => f.oom_kill_disable = !v.is_null() && boolean(k, v)?,
            "Init" => f.init = !v.is_null() && boolean(k, v)?,
            "Devices" => {
                for d in array(k, v)? {
                    let s = |n: &str| d.get(n).and_then(Value::as_str).unwrap_or("").to_string();
                    let (h, c, p) = (
                        s("PathOnHost"),
                        s("PathInContainer"),
                        s("CgroupPermissions"),
                    );
                    let c = if c.is_empty() { h.clone() } else { c };
                    f.device.push(if p.is_empty() {
                        format!("{h}:{c}")
                    } else {
                        format!("{h}:{c}:{p}")
                    });
                }
            }
            "Ulimits" => {
                for u in array(k, v)? {
                    let name = u.get("Name").and_then(Value::as_str).unwrap_or("");
                    let soft = u.get("Soft").and_then(Value::as_i64).unwrap_or(0);
                    let hard = u.get("Hard").and_then(Value::as_i64).unwrap_or(soft);
                    f.ulimit.push(format!("{name}={soft}:{hard}"));
                }
            }
            "ConsoleSize" => {
                let size: Vec<i64> = v
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_i64).collect())
                    .unwrap_or_default();
                if size.iter().any(|n| *n != 0) {
                    warnings.push(
                        "ConsoleSize: the tty gets its size from the first resize after start"
                            .into(),
                    );
                }
            }
            "Isolation" => {
                let i = opt_string(k, v)?.unwrap_or_default();
                if !i.is_empty() && i != "default" {
                    return Err(ApiError::bad(format!(
                        "HostConfig.Isolation {i:?}: only the default isolation exists on linux"
                    )));
                }
            }
            c if CLIENT_SIDE.contains(&c) => {}
            _ => unsupported_unless_default(&format!("HostConfig.{k}"), v)?,
        }
    }

    let targets: Vec<String> = f
        .volume
        .iter()
        .filter_map(|b| b.split(':').nth(1).map(str::to_string))
        .chain(f.mount.iter().filter_map(|m| {
            m.split(',')
                .find_map(|kv| kv.strip_prefix("target="))
                .map(str::to_string)
        }))
        .chain(
            f.tmpfs
                .iter()
                .map(|t| t.split(':').next().unwrap_or("").to_string()),
        )
        .collect();
    let norm = |p: &str| p.trim_end_matches('/').to_string();
    f.volume.extend(
        anon.into_iter()
            .filter(|a| !targets.iter().any(|t| norm(t) == norm(a))),
    );

    // NetworkingConfig.EndpointsConfig: the networks, their aliases and addresses.
    if let Some(eps) = netcfg.get("EndpointsConfig").and_then(Value::as_object) {
        for (net, ep) in eps {
            let mut spec = format!("name={net}");
            for a in ep
                .get("Aliases")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(a) = a.as_str() {
                    spec.push_str(&format!(",alias={a}"));
                }
            }
            if let Some(ipam) = ep.get("IPAMConfig").and_then(Value::as_object) {
                for (key, flag) in [("IPv4Address", "ip"), ("IPv6Address", "ip6")] {
                    if let Some(a) = ipam
                        .get(key)
                        .and_then(Value::as_str)
                        .filter(|a| !a.is_empty())
                    {
                        spec.push_str(&format!(",{flag}={a}"));
                    }
                }
            }
            // The mode's own name (`--network NET`) is this endpoint: one entry, not two.
            f.network.retain(|n| n != net);
            if !["host", "none", "bridge", "default"].contains(&net.as_str()) || spec.contains(',')
            {
                f.network.push(spec);
            } else if f.network.is_empty() {
                f.network.push(net.clone());
            }
        }
    }

    if !links.is_empty() {
        // dockerd's legacy links on a user-defined network are only names, which the
        // network's DNS already answers (docker-compose run adds them); on the default
        // network they would need /etc/hosts entries and env, which Berth has not.
        let user_net = f.network.iter().any(|n| {
            let n = n
                .split(',')
                .next()
                .unwrap_or("")
                .trim_start_matches("name=");
            !["", "host", "none", "bridge", "default"].contains(&n) && !n.starts_with("container:")
        });
        if !user_net {
            return Err(ApiError::bad(format!(
                "HostConfig.Links is not supported by berth on the default network (given \
                 {links:?}); put the containers on a user-defined network, whose DNS answers \
                 their names"
            )));
        }
        let aliases: Vec<&str> = links
            .iter()
            .filter_map(|l| l.split_once(':'))
            .filter(|(c, a)| c.trim_start_matches('/') != *a)
            .map(|(_, a)| a)
            .collect();
        if !aliases.is_empty() {
            warnings.push(format!(
                "HostConfig.Links: the linked containers resolve by their names on the \
                 network; the link aliases {aliases:?} are not added"
            ));
        }
    }
    let mut o = f
        .resolve(image, cmd)
        .map_err(|e| ApiError::bad(crate::error::chain(&e)))?;
    if let Some(ep) = entrypoint {
        o.entrypoint = Some(if ep.len() == 1 && ep[0].is_empty() {
            vec![]
        } else {
            ep
        });
    }
    if let Some(h) = health {
        if h.test.first().map(String::as_str) == Some("NONE") {
            o.no_healthcheck = true;
        } else {
            o.health = Some(h);
        }
    }
    Ok((o, warnings))
}

/// A `HostConfig.Mounts` entry as a `--mount` value.
fn mount(m: &Value) -> Result<String, ApiError> {
    let o = m
        .as_object()
        .ok_or_else(|| ApiError::bad("HostConfig.Mounts: each mount must be an object"))?;
    let s = |n: &str| o.get(n).and_then(Value::as_str).unwrap_or("");
    let mut v = format!("type={}", s("Type").to_ascii_lowercase());
    if !s("Source").is_empty() {
        v.push_str(&format!(",source={}", s("Source")));
    }
    v.push_str(&format!(",target={}", s("Target")));
    if o.get("ReadOnly").and_then(Value::as_bool) == Some(true) {
        v.push_str(",readonly");
    }
    for (key, val) in o {
        match key.as_str() {
            "Type" | "Source" | "Target" | "ReadOnly" | "Consistency" => {}
            "BindOptions" => {
                if let Some(p) = val.get("Propagation").and_then(Value::as_str) {
                    if !p.is_empty() {
                        v.push_str(&format!(",bind-propagation={p}"));
                    }
                }
                for (bk, bv) in val.as_object().into_iter().flatten() {
                    if bk != "Propagation" {
                        unsupported_unless_default(&format!("Mounts.BindOptions.{bk}"), bv)?;
                    }
                }
            }
            "TmpfsOptions" => {
                if let Some(n) = val
                    .get("SizeBytes")
                    .and_then(Value::as_i64)
                    .filter(|n| *n > 0)
                {
                    v.push_str(&format!(",tmpfs-size={n}"));
                }
                if let Some(n) = val.get("Mode").and_then(Value::as_u64).filter(|n| *n > 0) {
                    v.push_str(&format!(",tmpfs-mode={n:o}"));
                }
            }
            "VolumeOptions" => {
                for (vk, vv) in val.as_object().into_iter().flatten() {
                    unsupported_unless_default(&format!("Mounts.VolumeOptions.{vk}"), vv)?;
                }
            }
            _ => unsupported_unless_default(&format!("Mounts.{key}"), val)?,
        }
    }
    Ok(v)
}

/// docker's Healthcheck (durations in nanoseconds).
fn healthcheck(v: &Value) -> Result<Option<HealthConfig>, String> {
    if v.is_null() {
        return Ok(None);
    }
    let n = |k: &str| -> Result<i64, String> {
        match v.get(k) {
            None | Some(Value::Null) => Ok(0),
            Some(x) => x
                .as_i64()
                .filter(|n| *n >= 0)
                .ok_or_else(|| format!("{k} must be a non-negative number of nanoseconds")),
        }
    };
    let test = match v.get("Test") {
        None | Some(Value::Null) => vec![],
        Some(t) => t
            .as_array()
            .and_then(|a| a.iter().map(|x| x.as_str().map(str::to_string)).collect())
            .ok_or("Test must be an array of strings")?,
    };
    Ok(Some(HealthConfig {
        test,
        interval: n("Interval")?,
        timeout: n("Timeout")?,
        start_period: n("StartPeriod")?,
        start_interval: n("StartInterval")?,
        retries: n("Retries")?,
        ..Default::default()
    }))
}

fn unsupported_unless_default(k: &str, v: &Value) -> Result<(), ApiError> {
    if is_default(v) {
        return Ok(());
    }
    Err(ApiError::bad(format!(
        "{k} is not supported by berth (given {v})"
    )))
}

fn string(k: &str, v: &Value) -> Result<String, ApiError> {
    Ok(opt_string(k, v)?.unwrap_or_default())
}

fn opt_string(k: &str, v: &Value) -> Result<Option<String>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(ApiError::bad(format!("{k} must be a string"))),
    }
}

fn opt_int(k: &str, v: &Value) -> Result<Option<i64>, ApiError> {
    match v {
        Value::Null => Ok(None),
        v => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| ApiError::bad(format!("{k} must be an integer"))),
    }
}

fn boolean(k: &str, v: &Value) -> Result<bool, ApiError> {
    match v {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(*b),
        _ => Err(ApiError::bad(format!("{k} must be true or false"))),
    }
}

fn array<'a>(k: &str, v: &'a Value) -> Result<&'a [Value], ApiError> {
    match v {
        Value::Null => Ok(&[]),
        Value::Array(a) => Ok(a),
        _ => Err(ApiError::bad(format!("{k} must be an array"))),
    }
}

fn object<'a>(k: &str, v: &'a Value) -> Result<Vec<(&'a String, &'a Value)>, ApiError> {
    match v {
        Value::Null => Ok(vec![]),
        Value::Object(o) => Ok(o.iter().collect()),
        _ => Err(ApiError::bad(format!("{k} must be an object"))),
    }
}

fn strings(k: &str, v: &Value) -> Result<Vec<String>, ApiError> {
    array(k, v)?
        .iter()
        .map(|x| {
            x.as_str()
                .map(str::to_string)
                .ok_or_else(|| ApiError::bad(format!("{k} must be an array of strings")))
        })
        .collect()
}

/// docker's StrSlice: a string or an array of strings.
fn string_or_strings(k: &str, v: &Value) -> Result<Vec<String>, ApiError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        v => strings(k, v),
    }
}

fn keys(k: &str, v: &Value) -> Result<Vec<String>, ApiError> {
    Ok(object(k, v)?.into_iter().map(|(n, _)| n.clone()).collect())
}

/// `{"k": "v"}` as `k=v` (`sep`).
fn pairs(k: &str, v: &Value, sep: &str) -> Result<Vec<String>, ApiError> {
    object(k, v)?
        .into_iter()
        .map(|(n, x)| match x {
            Value::String(s) => Ok(format!("{n}{sep}{s}")),
            Value::Null => Ok(format!("{n}{sep}")),
            _ => Err(ApiError::bad(format!("{k}.{n} must be a string"))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_docker_cli_body_maps_onto_the_flags() {
        let b = json!({
            "Hostname": "", "Domainname": "", "User": "1000", "AttachStdin": false,
            "AttachStdout": true, "AttachStderr": true, "ExposedPorts": {"80/tcp": {}},
            "Tty": false, "OpenStdin": false, "StdinOnce": false, "Env": ["A=1"],
            "Cmd": ["sleep", "30"], "Image": "busybox", "Volumes": {"/data": {}},
            "WorkingDir": "/tmp", "Entrypoint": null, "OnBuild": null,
            "Labels": {"app": "web"}, "StopSignal": "SIGINT",
            "HostConfig": {
                "Binds": ["/srv:/srv:ro"], "ContainerIDFile": "",
                "LogConfig": {"Type": "", "Config": {}}, "NetworkMode": "none",
                "PortBindings": {}, "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
                "AutoRemove": false, "VolumeDriver": "", "VolumesFrom": null, "CapAdd": ["NET_ADMIN"],
                "CapDrop": null, "CgroupnsMode": "", "Dns": [], "DnsOptions": [], "DnsSearch": [],
                "ExtraHosts": null, "GroupAdd": null, "IpcMode": "", "Cgroup": "", "Links": null,
                "OomScoreAdj": 0, "PidMode": "", "Privileged": false, "PublishAllPorts": false,
                "ReadonlyRootfs": true, "SecurityOpt": null, "UTSMode": "", "UsernsMode": "",
                "ShmSize": 0, "ConsoleSize": [0, 0], "Isolation": "", "CpuShares": 0,
                "Memory": 67108864, "NanoCpus": 1500000000, "CgroupParent": "", "BlkioWeight": 0,
                "BlkioWeightDevice": [], "CpuPeriod": 0, "CpuQuota": 0, "CpusetCpus": "",
                "Devices": [], "DeviceCgroupRules": null, "KernelMemory": 0,
                "MemoryReservation": 0, "MemorySwap": 0, "MemorySwappiness": null,
                "OomKillDisable": false, "PidsLimit": null, "Ulimits": null,
                "MaskedPaths": null, "ReadonlyPaths": null, "Tmpfs": {"/run": "size=1m"}
            },
            "NetworkingConfig": {"EndpointsConfig": {}}
        });
        let (o, w) = options(&b, Some("web")).unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(o.name.as_deref(), Some("web"));
        assert_eq!(o.cmd, Some(vec!["sleep".into(), "30".into()]));
        assert_eq!(o.user.as_deref(), Some("1000"));
        assert_eq!(o.resources.memory, Some(64 << 20));
        assert_eq!(o.resources.nano_cpus, Some(1_500_000_000));
        assert_eq!(o.network, berth_engine::options::NetworkMode::None);
        assert_eq!(
            o.restart,
            berth_engine::options::RestartPolicy::OnFailure(3)
        );
        assert!(o.read_only);
        assert_eq!(o.security.cap_add, vec!["NET_ADMIN".to_string()]);
        assert_eq!(o.labels.get("app").map(String::as_str), Some("web"));
        assert_eq!(o.mounts.len(), 3, "{:?}", o.mounts);
        assert_eq!(o.expose, vec!["80/tcp".to_string()]);
    }

    #[test]
    fn a_declared_volume_under_a_mount_is_that_mount() {
        // docker-compose sends the named volume as a mount and its path in Config.Volumes.
        let b = json!({"Image": "x", "Volumes": {"/data": {}, "/cache": {}},
            "HostConfig": {"Mounts": [{"Type": "volume", "Source": "p_data", "Target": "/data"}]}});
        let (o, _) = options(&b, None).unwrap();
        assert_eq!(o.mounts.len(), 2, "{:?}", o.mounts);
    }

    #[test]
    fn what_berth_lacks_is_named_and_bad_values_are_refused() {
        let e = options(
            &json!({"Image": "x", "HostConfig": {"Links": ["db:db"]}}),
            None,
        )
        .unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("HostConfig.Links"), "{}", e.message);
        // On a user network links are names its DNS answers: accepted, aliases said.
        let (_, w) = options(
            &json!({"Image": "x", "HostConfig": {"NetworkMode": "shop", "Links": ["p_web_1:web_1", "p_db_1:p_db_1"]}}),
            None,
        )
        .unwrap();
        assert!(
            w.iter()
                .any(|w| w.contains("web_1") && !w.contains("p_db_1")),
            "{w:?}"
        );
        let e = options(
            &json!({"Image": "x", "HostConfig": {"OomScoreAdj": 500}}),
            None,
        )
        .unwrap_err();
        assert!(e.message.contains("OomScoreAdj"), "{}", e.message);
        let e = options(&json!({"Image": "x", "Frobnicate": 1}), None).unwrap_err();
        assert!(e.message.contains("Frobnicate"), "{}", e.message);
        let e = options(&json!({"Image": "x", "HostConfig": {"Memory": 1}}), None).unwrap_err();
        assert!(e.message.contains("Minimum memory"), "{}", e.message);
        let e = options(&json!({"Cmd": ["true"]}), None).unwrap_err();
        assert!(e.message.contains("Image"), "{}", e.message);
        let e = options(&json!({"Image": "x", "Env": "A=1"}), None).unwrap_err();
        assert!(e.message.contains("Env"), "{}", e.message);
    }

    #[test]
    fn ports_networks_entrypoint_and_health() {
        let b = json!({
            "Image": "x", "Entrypoint": [""],
            "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 2000000000, "Retries": 2},
            "HostConfig": {"NetworkMode": "front", "PortBindings": {
                "80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}]}},
            "NetworkingConfig": {"EndpointsConfig": {"front": {"Aliases": ["web"]}}}
        });
        let (o, _) = options(&b, None).unwrap();
        assert_eq!(o.entrypoint, Some(vec![]));
        let mut p = o.publish.clone();
        p.sort();
        assert_eq!(
            p,
            vec![
                "127.0.0.1:5353:53/udp".to_string(),
                "8080:80/tcp".to_string()
            ]
        );
        assert_eq!(o.networks.len(), 1);
        assert_eq!(o.networks[0].name, "front");
        assert_eq!(o.networks[0].aliases, vec!["web".to_string()]);
        let h = o.health.unwrap();
        assert_eq!((h.interval, h.retries), (2_000_000_000, 2));
        let (o, _) = options(
            &json!({"Image": "x", "Healthcheck": {"Test": ["NONE"]}}),
            None,
        )
        .unwrap();
        assert!(o.no_healthcheck && o.health.is_none());
    }
}
