//! From the (interpolated, merged) YAML tree to the typed model, validating as it goes:
//! the keys each mapping may have (the compose specification's, from its JSON schema;
//! the ones berth does not support yet are a clear error), the types, durations, ports,
//! volumes. Messages take docker compose's shape: `services.web Additional property foo
//! is not allowed`, `services.web.read_only must be a boolean`.

use serde_norway::{Mapping, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::duration::{parse_duration, parse_size};
use super::interp::{key_string, parse_dotenv};
use super::model::*;

pub type R<T> = Result<T, String>;

/// A mapping whose keys were checked against the allowed ones.
pub struct Obj<'v> {
    map: &'v Mapping,
    path: String,
}

/// Keys of the compose specification that berth does not implement (yet).
const UNSUPPORTED: &str = "not supported by berth yet";

impl<'v> Obj<'v> {
    /// `allowed`: keys read by the caller; `unsupported`: keys of the specification
    /// rejected with a clear message. `x-` keys are always allowed.
    pub fn new(v: &'v Value, path: &str, allowed: &[&str], unsupported: &[&str]) -> R<Obj<'v>> {
        let Value::Mapping(map) = v else {
            return Err(format!("{path} must be a mapping"));
        };
        let shown = if path.is_empty() { "(root)" } else { path };
        for k in map.keys() {
            let Value::String(k) = k else {
                return Err(format!(
                    "{shown} property name {} must be a string",
                    key_string(k)
                ));
            };
            if k.starts_with("x-") || allowed.contains(&k.as_str()) {
                continue;
            }
            if unsupported.contains(&k.as_str()) {
                return Err(format!("{}: {UNSUPPORTED}", join(path, k)));
            }
            return Err(format!("{shown} Additional property {k} is not allowed"));
        }
        Ok(Obj {
            map,
            path: path.to_string(),
        })
    }

    pub fn get(&self, key: &str) -> Option<(&'v Value, String)> {
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => Some((v, join(&self.path, key))),
        }
    }

    fn str(&self, key: &str) -> R<Option<String>> {
        self.get(key).map(|(v, p)| string(v, &p)).transpose()
    }
    fn str_num(&self, key: &str) -> R<Option<String>> {
        self.get(key).map(|(v, p)| str_or_num(v, &p)).transpose()
    }
    fn bool(&self, key: &str) -> R<Option<bool>> {
        self.get(key).map(|(v, p)| boolean(v, &p)).transpose()
    }
    fn int(&self, key: &str) -> R<Option<i64>> {
        self.get(key).map(|(v, p)| integer(v, &p)).transpose()
    }
    fn dur(&self, key: &str) -> R<Option<Duration>> {
        self.get(key).map(|(v, p)| duration(v, &p)).transpose()
    }
    fn size(&self, key: &str) -> R<Option<u64>> {
        self.get(key).map(|(v, p)| size(v, &p)).transpose()
    }
    fn float(&self, key: &str) -> R<Option<f64>> {
        self.get(key).map(|(v, p)| float(v, &p)).transpose()
    }
    fn strings(&self, key: &str) -> R<Vec<String>> {
        self.get(key)
            .map(|(v, p)| string_or_list(v, &p))
            .transpose()
            .map(Option::unwrap_or_default)
    }
    fn dict(&self, key: &str) -> R<BTreeMap<String, String>> {
        Ok(self
            .get(key)
            .map(|(v, p)| list_or_dict(v, &p))
            .transpose()?
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect())
    }
    fn u32(&self, key: &str) -> R<Option<u32>> {
        self.get(key)
            .map(|(v, p)| {
                let n = integer(v, &p)?;
                u32::try_from(n).map_err(|_| format!("{p} must be a non-negative integer, got {n}"))
            })
            .transpose()
    }
}

pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub fn string(v: &Value, p: &str) -> R<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        _ => Err(format!("{p} must be a string")),
    }
}

fn str_or_num(v: &Value, p: &str) -> R<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(format!("{p} must be a string or number")),
    }
}

/// Scalars of list_or_dict values: string, number, boolean or null.
fn scalar(v: &Value, p: &str) -> R<Option<String>> {
    match v {
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Null => Ok(None),
        _ => Err(format!("{p} must be a string, number, boolean or null")),
    }
}

fn boolean(v: &Value, p: &str) -> R<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        // Interpolated values are strings; compose-go casts them.
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "on" => Ok(true),
            "false" | "no" | "n" | "off" => Ok(false),
            _ => Err(format!("{p} must be a boolean, got {s:?}")),
        },
        _ => Err(format!("{p} must be a boolean")),
    }
}

fn integer(v: &Value, p: &str) -> R<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| format!("{p} must be an integer, got {n}")),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("{p} must be an integer, got {s:?}")),
        _ => Err(format!("{p} must be an integer")),
    }
}

fn float(v: &Value, p: &str) -> R<f64> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| format!("{p} must be a number")),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("{p} must be a number, got {s:?}")),
        _ => Err(format!("{p} must be a number")),
    }
}

/// Durations are strings in Go's format (compose's schema: `format: duration`).
fn duration(v: &Value, p: &str) -> R<Duration> {
    match v {
        Value::String(s) => parse_duration(s).ok_or_else(|| format!("{p}: invalid duration {s:?}")),
        other => Err(format!(
            "{p} must be a string (a duration such as \"10s\" or \"1m30s\"), got {}",
            key_string(other)
        )),
    }
}

fn size(v: &Value, p: &str) -> R<u64> {
    match v {
        Value::Number(n) => n.as_u64().ok_or_else(|| format!("{p}: invalid size {n}")),
        Value::String(s) => parse_size(s).ok_or_else(|| format!("{p}: invalid size {s:?}")),
        _ => Err(format!("{p} must be a string or number")),
    }
}

fn list<'v>(v: &'v Value, p: &str) -> R<&'v Vec<Value>> {
    match v {
        Value::Sequence(s) => Ok(s),
        _ => Err(format!("{p} must be an array")),
    }
}

/// A string or a list of strings (numbers accepted as list items).
fn string_or_list(v: &Value, p: &str) -> R<Vec<String>> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(i, x)| str_or_num(x, &format!("{p}.{i}")))
            .collect(),
        _ => Err(format!("{p} must be a string or an array of strings")),
    }
}

/// command / entrypoint: a string is split as a shell would (compose-go's shellwords).
fn command(v: &Value, p: &str) -> R<Vec<String>> {
    match v {
        Value::String(s) => shell_words::split(s).map_err(|e| format!("{p}: {e}: {s:?}")),
        Value::Sequence(_) => string_or_list(v, p),
        _ => Err(format!("{p} must be a string or an array of strings")),
    }
}

/// list_or_dict: `[K=V, K]` or `{K: V, K: null}`.
fn list_or_dict(v: &Value, p: &str) -> R<Vec<(String, Option<String>)>> {
    match v {
        Value::Mapping(m) => m
            .iter()
            .map(|(k, x)| {
                let k = key_string(k);
                let val = scalar(x, &format!("{p}.{k}"))?;
                Ok((k, val))
            })
            .collect(),
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(i, x)| {
                let s = string(x, &format!("{p}.{i}"))?;
                Ok(match s.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (s, None),
                })
            })
            .collect(),
        _ => Err(format!("{p} must be a mapping or an array of strings")),
    }
}

const SERVICE_KEYS: &[&str] = &[
    "image",
    "build",
    "secrets",
    "configs",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "ports",
    "expose",
    "volumes",
    "networks",
    "network_mode",
    "healthcheck",
    "depends_on",
    "restart",
    "deploy",
    "labels",
    "user",
    "working_dir",
    "cap_add",
    "cap_drop",
    "read_only",
    "security_opt",
    "init",
    "stop_signal",
    "stop_grace_period",
    "ulimits",
    "sysctls",
    "tmpfs",
    "hostname",
    "domainname",
    "dns",
    "dns_search",
    "dns_opt",
    "extra_hosts",
    "profiles",
    "container_name",
    "privileged",
    "group_add",
    "stdin_open",
    "tty",
    "devices",
    "mem_limit",
    "mem_reservation",
    "memswap_limit",
    "cpus",
    "cpu_shares",
    "cpuset",
    "pids_limit",
    "shm_size",
    "scale",
    "pull_policy",
    "pid",
    "ipc",
    "uts",
    "userns_mode",
    "cgroup",
    "cgroup_parent",
    "logging",
    "oom_kill_disable",
    "mem_swappiness",
    "cpu_quota",
    "cpu_period",
    "volumes_from",
    "runtime",
    "attach",
    "label_file",
];

const SERVICE_UNSUPPORTED: &[&str] = &[
    "annotations",
    "blkio_config",
    "cpu_count",
    "cpu_percent",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "credential_spec",
    "develop",
    "device_cgroup_rules",
    "external_links",
    "gpus",
    "isolation",
    "links",
    "mac_address",
    "models",
    "oom_score_adj",
    "platform",
    "post_start",
    "pre_stop",
    "provider",
    "pull_refresh_after",
    "storage_opt",
    "use_api_socket",
];

/// Converts one service. `image` may be empty here (an override file need not repeat it);
/// the project-level checks reject a service without one. `networks` is left empty when
/// the file names none (the project adds `default`).
pub fn service(
    name: &str,
    v: &Value,
    project_dir: &Path,
    env: &BTreeMap<String, String>,
) -> R<Service> {
    let path = format!("services.{name}");
    let o = Obj::new(v, &path, SERVICE_KEYS, SERVICE_UNSUPPORTED)?;
    let mut s = Service {
        name: name.to_string(),
        ..Default::default()
    };
    s.image = o.str("image")?.unwrap_or_default();
    if let Some((v, p)) = o.get("build") {
        s.build = Some(build(v, &p, project_dir, env)?);
    }
    if let Some((v, p)) = o.get("secrets") {
        s.secrets = file_mounts(v, &p, "/run/secrets")?;
    }
    if let Some((v, p)) = o.get("configs") {
        s.configs = file_mounts(v, &p, "")?;
    }
    s.command = o.get("command").map(|(v, p)| command(v, &p)).transpose()?;
    s.entrypoint = o
        .get("entrypoint")
        .map(|(v, p)| command(v, &p))
        .transpose()?;

    // env_file first, then environment over it.
    if let Some((v, p)) = o.get("env_file") {
        for (k, val) in env_files(v, &p, project_dir, env)? {
            s.environment.insert(k, val);
        }
    }
    if let Some((v, p)) = o.get("environment") {
        for (k, val) in list_or_dict(v, &p)? {
            s.environment.insert(k, val);
        }
    }
    if let Some((v, p)) = o.get("ports") {
        for (i, item) in list(v, &p)?.iter().enumerate() {
            s.ports.extend(port(item, &format!("{p}.{i}"))?);
        }
    }
    if let Some((v, p)) = o.get("expose") {
        for (i, item) in list(v, &p)?.iter().enumerate() {
            let ip = format!("{p}.{i}");
            let e = str_or_num(item, &ip)?;
            check_expose(&e).map_err(|m| format!("{ip}: {m}"))?;
            s.expose.push(e);
        }
    }
    if let Some((v, p)) = o.get("volumes") {
        for (i, item) in list(v, &p)?.iter().enumerate() {
            s.volumes
                .push(volume(item, &format!("{p}.{i}"), project_dir, env)?);
        }
    }
    if let Some((v, p)) = o.get("networks") {
        s.networks = service_networks(v, &p)?;
    }
    s.network_mode = o.str("network_mode")?;
    if let Some((v, p)) = o.get("healthcheck") {
        s.healthcheck = Some(healthcheck(v, &p)?);
    }
    if let Some((v, p)) = o.get("depends_on") {
        s.depends_on = depends_on(v, &p)?;
    }
    if let Some(r) = o.str("restart")? {
        check_restart(&r).map_err(|m| format!("{path}.restart: {m}"))?;
        s.restart = Some(r);
    }
    if let Some((v, p)) = o.get("deploy") {
        s.deploy = deploy(v, &p)?;
    }
    if let Some(scale) = o.u32("scale")? {
        match s.deploy.replicas {
            Some(r) if r != scale => {
                return Err(format!(
                    "{path}: can't set distinct values on 'scale' and 'deploy.replicas'"
                ))
            }
            _ => s.deploy.replicas = Some(scale),
        }
    }
    // label_file first, then labels over it.
    if let Some((v, p)) = o.get("label_file") {
        for (k, val) in env_files(v, &p, project_dir, env)? {
            s.labels.insert(k, val.unwrap_or_default());
        }
    }
    s.labels.extend(o.dict("labels")?);
    s.user = o.str_num("user")?;
    s.working_dir = o.str("working_dir")?;
    s.cap_add = o.strings("cap_add")?;
    s.cap_drop = o.strings("cap_drop")?;
    s.read_only = o.bool("read_only")?.unwrap_or(false);
    s.security_opt = o.strings("security_opt")?;
    s.init = o.bool("init")?;
    s.stop_signal = o.str("stop_signal")?;
    s.stop_grace_period = o.dur("stop_grace_period")?;
    if let Some((v, p)) = o.get("ulimits") {
        s.ulimits = ulimits(v, &p)?;
    }
    s.sysctls = o.dict("sysctls")?;
    s.tmpfs = o.strings("tmpfs")?;
    for (i, t) in s.tmpfs.iter().enumerate() {
        if !t.starts_with('/') {
            return Err(format!("{path}.tmpfs.{i}: {t:?} is not an absolute path"));
        }
    }
    s.hostname = o.str("hostname")?;
    s.domainname = o.str("domainname")?;
    s.dns = o.strings("dns")?;
    s.dns_search = o.strings("dns_search")?;
    s.dns_opt = o.strings("dns_opt")?;
    if let Some((v, p)) = o.get("extra_hosts") {
        s.extra_hosts = extra_hosts(v, &p)?;
    }
    s.profiles = o.strings("profiles")?;
    s.container_name = o.str("container_name")?;
    s.privileged = o.bool("privileged")?.unwrap_or(false);
    s.group_add = o.strings("group_add")?;
    s.stdin_open = o.bool("stdin_open")?.unwrap_or(false);
    s.tty = o.bool("tty")?.unwrap_or(false);
    if let Some((v, p)) = o.get("devices") {
        s.devices = devices(v, &p)?;
    }
    s.mem_limit = o.size("mem_limit")?;
    s.mem_reservation = o.size("mem_reservation")?;
    s.memswap_limit = match o.get("memswap_limit") {
        None => None,
        Some((v, p)) => Some(match integer(v, &p) {
            Ok(n) if n >= -1 => n,
            _ => size(v, &p)? as i64,
        }),
    };
    s.cpus = o.float("cpus")?;
    s.cpu_shares = o.int("cpu_shares")?.map(|n| n.max(0) as u64);
    s.cpuset = o.str("cpuset")?;
    s.pids_limit = o.int("pids_limit")?;
    s.shm_size = o.size("shm_size")?;
    s.namespaces = Namespaces {
        pid: o.str("pid")?,
        ipc: o.str("ipc")?,
        uts: o.str("uts")?,
        userns_mode: o.str("userns_mode")?,
        cgroup: o.str("cgroup")?,
    };
    s.cgroup_parent = o.str("cgroup_parent")?;
    s.volumes_from = o.strings("volumes_from")?;
    s.runtime = o.str("runtime")?.filter(|r| !r.is_empty());
    s.attach = o.bool("attach")?;
    if let Some((v, p)) = o.get("logging") {
        let l = Obj::new(v, &p, &["driver", "options"], &[])?;
        s.logging = Some(Logging {
            driver: l.str("driver")?,
            options: l.dict("options")?,
        });
    }
    s.oom_kill_disable = o.bool("oom_kill_disable")?.unwrap_or(false);
    s.mem_swappiness = o.int("mem_swappiness")?;
    s.cpu_quota = o.int("cpu_quota")?;
    s.cpu_period = o.int("cpu_period")?;
    if let Some(pp) = o.str("pull_policy")? {
        match pp.as_str() {
            "always" | "never" | "missing" | "if_not_present" => s.pull_policy = Some(pp),
            "build" if s.build.is_none() => {
                return Err(format!(
                    "{path}.pull_policy: pull policy \"build\" needs a build section"
                ))
            }
            "build" => s.pull_policy = Some(pp),
            other => return Err(format!("{path}.pull_policy: invalid pull policy {other:?}")),
        }
    }
    if let Some((v, p)) = o.get("x-berth-autoscale") {
        s.autoscale = Some(autoscale(v, &p)?);
    }
    Ok(s)
}

const BUILD_KEYS: &[&str] = &[
    "context",
    "dockerfile",
    "dockerfile_inline",
    "args",
    "target",
    "labels",
    "no_cache",
    "pull",
    "network",
    "tags",
    "secrets",
];

const BUILD_UNSUPPORTED: &[&str] = &[
    "additional_contexts",
    "cache_from",
    "cache_to",
    "entitlements",
    "extra_hosts",
    "isolation",
    "platforms",
    "privileged",
    "provenance",
    "sbom",
    "shm_size",
    "ssh",
    "ulimits",
];

/// `build: DIR` or its long form; the context resolved against the project directory.
/// An arg without a value takes the environment's, as compose-go resolves it.
fn build(v: &Value, p: &str, project_dir: &Path, env: &BTreeMap<String, String>) -> R<BuildSpec> {
    let local = |c: String, cp: &str| -> R<std::path::PathBuf> {
        let lower = c.to_ascii_lowercase();
        if lower.contains("://") || lower.starts_with("git@") {
            return Err(format!(
                "{cp}: remote build contexts ({c}) are not supported: give a directory"
            ));
        }
        if c.is_empty() {
            return Err(format!("{cp}: empty build context"));
        }
        Ok(project_dir.join(c))
    };
    if let Value::String(c) = v {
        return Ok(BuildSpec {
            context: local(c.clone(), p)?,
            ..Default::default()
        });
    }
    let o = Obj::new(v, p, BUILD_KEYS, BUILD_UNSUPPORTED)?;
    let mut b = BuildSpec {
        context: local(
            o.str("context")?.unwrap_or_else(|| ".".into()),
            &join(p, "context"),
        )?,
        dockerfile: o.str("dockerfile")?,
        dockerfile_inline: o.str("dockerfile_inline")?,
        target: o.str("target")?,
        labels: o.dict("labels")?,
        no_cache: o.bool("no_cache")?.unwrap_or(false),
        pull: o.bool("pull")?.unwrap_or(false),
        network: o.str("network")?,
        tags: o.strings("tags")?,
        ..Default::default()
    };
    if b.dockerfile.is_some() && b.dockerfile_inline.is_some() {
        return Err(format!(
            "{p}: dockerfile and dockerfile_inline are mutually exclusive"
        ));
    }
    if let Some((v, sp)) = o.get("secrets") {
        b.secrets = file_mounts(v, &sp, "")?
            .into_iter()
            .map(|m| {
                let id = m.target.trim_start_matches('/').to_string();
                (id, m.source)
            })
            .collect();
    }
    if let Some((v, ap)) = o.get("args") {
        b.args = list_or_dict(v, &ap)?
            .into_iter()
            .map(|(k, v)| {
                let v = v.or_else(|| env.get(&k).cloned());
                (k, v)
            })
            .collect();
    }
    Ok(b)
}

/// A service's (or a build's) `secrets:` or `configs:`: names, or mappings of source,
/// target, uid, gid and mode. A relative target (and the default, the name) is under
/// `base` (`/run/secrets` for secrets, `/` for configs).
fn file_mounts(v: &Value, p: &str, base: &str) -> R<Vec<FileMount>> {
    let mut out = Vec::new();
    for (i, item) in list(v, p)?.iter().enumerate() {
        let ip = format!("{p}[{i}]");
        let mut m = match item {
            Value::String(name) => FileMount {
                source: name.clone(),
                ..Default::default()
            },
            _ => {
                let o = Obj::new(item, &ip, &["source", "target", "uid", "gid", "mode"], &[])?;
                let id = |k: &str| -> R<Option<u32>> {
                    o.str_num(k)?
                        .map(|x| {
                            x.parse::<u32>()
                                .map_err(|_| format!("{ip}.{k}: {x:?} is not a numeric id"))
                        })
                        .transpose()
                };
                FileMount {
                    source: o
                        .str("source")?
                        .ok_or_else(|| format!("{ip}.source is required"))?,
                    target: o.str("target")?.unwrap_or_default(),
                    uid: id("uid")?,
                    gid: id("gid")?,
                    mode: o.get("mode").map(|(v, mp)| file_mode(v, &mp)).transpose()?,
                }
            }
        };
        if m.source.is_empty() {
            return Err(format!("{ip}: an empty name"));
        }
        if m.target.is_empty() {
            m.target = m.source.clone();
        }
        if !m.target.starts_with('/') {
            m.target = format!("{base}/{}", m.target);
        }
        out.push(m);
    }
    Ok(out)
}

/// A file mode as compose files write it: `0440` (octal, as YAML 1.1 and compose-go read
/// it), `0o440`, or a string of octal digits.
fn file_mode(v: &Value, p: &str) -> R<u32> {
    let bad = || format!("{p}: invalid file mode {v:?} (octal, e.g. 0440)");
    let digits = match v {
        // A YAML 1.2 reader takes 0440 for the decimal 440: its digits are the octal
        // mode compose meant.
        Value::Number(n) => n.as_u64().ok_or_else(bad)?.to_string(),
        Value::String(t) => t.trim_start_matches("0o").to_string(),
        _ => return Err(bad()),
    };
    u32::from_str_radix(&digits, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(bad)
}

/// A top-level `secrets:` or `configs:` entry (`kind` names the section): a file, an
/// environment variable's value, or (configs) inline content.
pub fn file_def(
    kind: &str,
    key: &str,
    v: &Value,
    project_dir: &Path,
    env: &BTreeMap<String, String>,
) -> R<FileSource> {
    let p = format!("{kind}.{key}");
    let allowed: &[&str] = if kind == "configs" {
        &["file", "environment", "content"]
    } else {
        &["file", "environment"]
    };
    let o = Obj::new(
        v,
        &p,
        allowed,
        &[
            "external",
            "name",
            "labels",
            "driver",
            "driver_opts",
            "template_driver",
        ],
    )?;
    let given: Vec<&str> = allowed
        .iter()
        .copied()
        .filter(|k| o.get(k).is_some())
        .collect();
    if given.len() != 1 {
        return Err(format!(
            "{p}: exactly one of {} is required",
            allowed.join(", ")
        ));
    }
    Ok(match given[0] {
        "file" => FileSource::File(project_dir.join(o.str("file")?.unwrap_or_default())),
        "environment" => {
            let var = o.str("environment")?.unwrap_or_default();
            let value = env
                .get(&var)
                .cloned()
                .ok_or_else(|| format!("{p}.environment: variable {var} is not set"))?;
            FileSource::Env { var, value }
        }
        _ => FileSource::Content(o.str("content")?.unwrap_or_default()),
    })
}

fn env_files(
    v: &Value,
    p: &str,
    project_dir: &Path,
    env: &BTreeMap<String, String>,
) -> R<Vec<(String, Option<String>)>> {
    let items: Vec<(String, bool, String)> = match v {
        Value::String(s) => vec![(s.clone(), true, p.to_string())],
        Value::Sequence(seq) => seq
            .iter()
            .enumerate()
            .map(|(i, x)| {
                let ip = format!("{p}.{i}");
                match x {
                    Value::String(s) => Ok((s.clone(), true, ip)),
                    Value::Mapping(_) => {
                        let o = Obj::new(x, &ip, &["path", "required", "format"], &[])?;
                        let path = o
                            .str("path")?
                            .ok_or_else(|| format!("{ip}: path is required"))?;
                        if let Some(f) = o.str("format")? {
                            if f != "env" {
                                return Err(format!(
                                    "{ip}.format: unsupported env_file format {f:?}"
                                ));
                            }
                        }
                        Ok((path, o.bool("required")?.unwrap_or(true), ip))
                    }
                    _ => Err(format!("{ip} must be a string or a mapping")),
                }
            })
            .collect::<R<_>>()?,
        _ => return Err(format!("{p} must be a string or an array")),
    };
    let mut out = Vec::new();
    for (file, required, ip) in items {
        let full = project_dir.join(&file);
        let text = match std::fs::read_to_string(&full) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => continue,
            Err(e) => return Err(format!("{ip}: env file {}: {e}", full.display())),
        };
        let lookup = |k: &str| env.get(k).cloned();
        out.extend(
            parse_dotenv(&text, &lookup)
                .map_err(|e| format!("{ip}: env file {}: {e}", full.display()))?,
        );
    }
    Ok(out)
}

fn port_number(s: &str) -> Option<u16> {
    s.parse::<u16>().ok().filter(|n| *n > 0)
}

/// `START[-END]` → the inclusive range.
fn port_range(s: &str) -> Option<(u16, u16)> {
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (port_number(a)?, port_number(b)?);
            (a <= b).then_some((a, b))
        }
        None => port_number(s).map(|n| (n, n)),
    }
}

fn check_protocol(p: &str) -> Result<(), String> {
    match p {
        "tcp" | "udp" => Ok(()),
        other => Err(format!("invalid protocol {other:?} (tcp or udp)")),
    }
}

/// The short syntax `[[HOST_IP:]HOST_PORT[-END]:]CONTAINER_PORT[-END][/PROTO]`, expanded
/// to one spec per container port as compose-go does.
pub fn parse_port_short(s: &str) -> Result<Vec<PortSpec>, String> {
    let bad = |why: &str| format!("invalid port {s:?}: {why}");
    let (rest, proto) = match s.rsplit_once('/') {
        Some((r, p)) => (r, p.to_string()),
        None => (s, "tcp".to_string()),
    };
    check_protocol(&proto).map_err(|e| bad(&e))?;
    // An IPv6 host address is bracketed: [::1]:8080:80
    let (host_ip, rest) = if let Some(r) = rest.strip_prefix('[') {
        let (ip, r) = r
            .split_once("]:")
            .ok_or_else(|| bad("unclosed IPv6 address"))?;
        (Some(ip.to_string()), r.to_string())
    } else {
        let parts: Vec<&str> = rest.split(':').collect();
        match parts.len() {
            1 | 2 => (None, rest.to_string()),
            3 => (
                Some(parts[0].to_string()),
                format!("{}:{}", parts[1], parts[2]),
            ),
            _ => return Err(bad("too many colons")),
        }
    };
    if host_ip
        .as_deref()
        .is_some_and(|ip| ip.parse::<std::net::IpAddr>().is_err())
    {
        return Err(bad("invalid host IP"));
    }
    let (published, target) = match rest.split_once(':') {
        Some((p, t)) => (if p.is_empty() { None } else { Some(p) }, t),
        None => (None, rest.as_str()),
    };
    let (t0, t1) = port_range(target).ok_or_else(|| bad("invalid container port"))?;
    let pub_range = published
        .map(|p| port_range(p).ok_or_else(|| bad("invalid host port")))
        .transpose()?;
    let mk = |target: u16, published: Option<String>| PortSpec {
        target,
        published,
        host_ip: host_ip.clone(),
        protocol: proto.clone(),
        mode: "ingress".into(),
        name: None,
        app_protocol: None,
    };
    Ok(match pub_range {
        None => (t0..=t1).map(|t| mk(t, None)).collect(),
        Some((p0, p1)) if t0 == t1 => {
            let published = if p0 == p1 {
                p0.to_string()
            } else {
                format!("{p0}-{p1}")
            };
            vec![mk(t0, Some(published))]
        }
        Some((p0, p1)) => {
            if p1 - p0 != t1 - t0 {
                return Err(bad("host and container port ranges differ in size"));
            }
            (t0..=t1)
                .map(|t| mk(t, Some((p0 + (t - t0)).to_string())))
                .collect()
        }
    })
}

fn port(v: &Value, p: &str) -> R<Vec<PortSpec>> {
    match v {
        Value::Number(n) => {
            let t = n
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .filter(|n| *n > 0);
            let t = t.ok_or_else(|| format!("{p}: invalid port {n}"))?;
            Ok(vec![PortSpec {
                target: t,
                published: None,
                host_ip: None,
                protocol: "tcp".into(),
                mode: "ingress".into(),
                name: None,
                app_protocol: None,
            }])
        }
        Value::String(s) => parse_port_short(s).map_err(|e| format!("{p}: {e}")),
        Value::Mapping(_) => {
            let o = Obj::new(
                v,
                p,
                &[
                    "name",
                    "mode",
                    "host_ip",
                    "target",
                    "published",
                    "protocol",
                    "app_protocol",
                ],
                &[],
            )?;
            let target = o
                .str_num("target")?
                .ok_or_else(|| format!("{p}: target is required"))?;
            let target = port_number(&target)
                .ok_or_else(|| format!("{p}.target: invalid port {target:?}"))?;
            let published = o.str_num("published")?;
            if let Some(pb) = &published {
                port_range(pb).ok_or_else(|| format!("{p}.published: invalid port {pb:?}"))?;
            }
            let protocol = o.str("protocol")?.unwrap_or_else(|| "tcp".into());
            check_protocol(&protocol).map_err(|e| format!("{p}.protocol: {e}"))?;
            let mode = o.str("mode")?.unwrap_or_else(|| "ingress".into());
            if mode != "ingress" && mode != "host" {
                return Err(format!(
                    "{p}.mode: invalid port mode {mode:?} (ingress or host)"
                ));
            }
            let host_ip = o.str("host_ip")?;
            if let Some(ip) = &host_ip {
                ip.parse::<std::net::IpAddr>()
                    .map_err(|_| format!("{p}.host_ip: invalid IP address {ip:?}"))?;
            }
            Ok(vec![PortSpec {
                target,
                published,
                host_ip,
                protocol,
                mode,
                name: o.str("name")?,
                app_protocol: o.str("app_protocol")?,
            }])
        }
        _ => Err(format!("{p} must be a number, a string or a mapping")),
    }
}

fn check_expose(e: &str) -> Result<(), String> {
    let (ports, proto) = match e.split_once('/') {
        Some((a, b)) => (a, b),
        None => (e, "tcp"),
    };
    check_protocol(proto)?;
    port_range(ports)
        .map(|_| ())
        .ok_or_else(|| format!("invalid port {e:?}"))
}

fn is_path(s: &str) -> bool {
    s.starts_with('/') || s.starts_with('.') || s.starts_with('~')
}

/// A bind source made absolute: `~` from HOME, relative paths against the project dir.
fn resolve_bind(src: &str, project_dir: &Path, home: Option<&str>) -> String {
    let expanded = match (src.strip_prefix('~'), home) {
        (Some(rest), Some(h)) if rest.is_empty() || rest.starts_with('/') => format!("{h}{rest}"),
        _ => src.to_string(),
    };
    let p = Path::new(&expanded);
    let full = if p.is_absolute() {
        p.to_path_buf()
    } else {
        project_dir.join(p)
    };
    // Lexical clean-up of `.` and `..` (as Go's filepath.Clean).
    let mut out = std::path::PathBuf::new();
    for c in full.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out.to_string_lossy().into_owned()
}

const PROPAGATIONS: &[&str] = &[
    "shared", "rshared", "slave", "rslave", "private", "rprivate",
];

/// The short syntax `[SOURCE:]TARGET[:MODE]`.
pub fn parse_volume_short(
    s: &str,
    project_dir: &Path,
    home: Option<&str>,
) -> Result<ServiceVolume, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let (src, target, mode) = match parts.as_slice() {
        [t] => (None, *t, None),
        [a, b] => (Some(*a), *b, None),
        [a, b, m] => (Some(*a), *b, Some(*m)),
        _ => {
            return Err(format!(
                "invalid volume specification {s:?}: too many colons"
            ))
        }
    };
    if target.is_empty() || !target.starts_with('/') {
        return Err(format!(
            "invalid volume specification {s:?}: the target must be an absolute path"
        ));
    }
    let mut v = ServiceVolume {
        kind: VolumeKind::Volume,
        source: None,
        target: target.to_string(),
        read_only: false,
        propagation: None,
        create_host_path: false,
        selinux: None,
        nocopy: false,
        tmpfs_size: None,
        tmpfs_mode: None,
    };
    if let Some(src) = src {
        if src.is_empty() {
            return Err(format!("invalid volume specification {s:?}: empty source"));
        }
        if is_path(src) {
            v.kind = VolumeKind::Bind;
            v.source = Some(resolve_bind(src, project_dir, home));
            v.create_host_path = true;
        } else {
            v.source = Some(src.to_string());
        }
    }
    for opt in mode.unwrap_or("").split(',').filter(|o| !o.is_empty()) {
        match opt {
            "ro" => v.read_only = true,
            "rw" => v.read_only = false,
            "z" | "Z" if v.kind == VolumeKind::Bind => v.selinux = Some(opt.to_string()),
            "nocopy" if v.kind == VolumeKind::Volume => v.nocopy = true,
            p if PROPAGATIONS.contains(&p) && v.kind == VolumeKind::Bind => {
                v.propagation = Some(p.to_string())
            }
            other => {
                return Err(format!(
                    "invalid volume specification {s:?}: unknown mode {other:?}"
                ))
            }
        }
    }
    Ok(v)
}

fn volume(
    v: &Value,
    p: &str,
    project_dir: &Path,
    env: &BTreeMap<String, String>,
) -> R<ServiceVolume> {
    let home = env.get("HOME").map(String::as_str);
    let Value::Mapping(_) = v else {
        let s = string(v, p)?;
        return parse_volume_short(&s, project_dir, home).map_err(|e| format!("{p}: {e}"));
    };
    let o = Obj::new(
        v,
        p,
        &[
            "type",
            "source",
            "target",
            "read_only",
            "consistency",
            "bind",
            "volume",
            "tmpfs",
        ],
        &["image"],
    )?;
    let kind = match o.str("type")?.as_deref() {
        Some("bind") => VolumeKind::Bind,
        Some("volume") => VolumeKind::Volume,
        Some("tmpfs") => VolumeKind::Tmpfs,
        Some(other) => {
            return Err(format!(
                "{p}.type: volume type {other:?} is not supported (bind, volume or tmpfs)"
            ))
        }
        None => return Err(format!("{p}: type is required")),
    };
    let target = o
        .str("target")?
        .ok_or_else(|| format!("{p}: target is required"))?;
    if !target.starts_with('/') {
        return Err(format!("{p}.target: {target:?} is not an absolute path"));
    }
    // `consistency` only matters on Docker Desktop's file sharing; docker ignores it on
    // Linux, and so does berth.
    o.str("consistency")?;
    let mut out = ServiceVolume {
        kind,
        source: None,
        target,
        read_only: o.bool("read_only")?.unwrap_or(false),
        propagation: None,
        create_host_path: false,
        selinux: None,
        nocopy: false,
        tmpfs_size: None,
        tmpfs_mode: None,
    };
    let source = o.str("source")?.filter(|s| !s.is_empty());
    match kind {
        VolumeKind::Bind => {
            let src = source.ok_or_else(|| format!("{p}: a bind mount needs a source"))?;
            out.source = Some(resolve_bind(&src, project_dir, home));
            if let Some((b, bp)) = o.get("bind") {
                let b = Obj::new(
                    b,
                    &bp,
                    &["propagation", "create_host_path", "selinux", "recursive"],
                    &[],
                )?;
                if let Some(prop) = b.str("propagation")? {
                    if !PROPAGATIONS.contains(&prop.as_str()) {
                        return Err(format!("{bp}.propagation: invalid propagation {prop:?}"));
                    }
                    out.propagation = Some(prop);
                }
                out.create_host_path = b.bool("create_host_path")?.unwrap_or(false);
                if let Some(z) = b.str("selinux")? {
                    if z != "z" && z != "Z" {
                        return Err(format!("{bp}.selinux: must be \"z\" or \"Z\""));
                    }
                    out.selinux = Some(z);
                }
                if let Some(r) = b.str("recursive")? {
                    if r != "enabled" {
                        return Err(format!("{bp}.recursive: {r:?} is {UNSUPPORTED}"));
                    }
                }
            }
        }
        VolumeKind::Volume => {
            out.source = source;
            if let Some((vo, vp)) = o.get("volume") {
                let vo = Obj::new(vo, &vp, &["nocopy"], &["subpath", "labels"])?;
                out.nocopy = vo.bool("nocopy")?.unwrap_or(false);
            }
        }
        VolumeKind::Tmpfs => {
            if source.is_some() {
                return Err(format!("{p}.source: a tmpfs mount has no source"));
            }
            if let Some((t, tp)) = o.get("tmpfs") {
                let t = Obj::new(t, &tp, &["size", "mode"], &[])?;
                out.tmpfs_size = t.size("size")?;
                out.tmpfs_mode = t
                    .int("mode")?
                    .map(|m| u32::try_from(m).map_err(|_| format!("{tp}.mode: invalid mode {m}")))
                    .transpose()?;
            }
        }
    }
    for (k, kind_ok) in [
        ("bind", kind == VolumeKind::Bind),
        ("volume", kind == VolumeKind::Volume),
        ("tmpfs", kind == VolumeKind::Tmpfs),
    ] {
        if o.get(k).is_some() && !kind_ok {
            return Err(format!("{p}.{k}: not allowed on a mount of this type"));
        }
    }
    Ok(out)
}

fn service_networks(v: &Value, p: &str) -> R<BTreeMap<String, ServiceNetwork>> {
    let mut out = BTreeMap::new();
    match v {
        Value::Sequence(items) => {
            for (i, x) in items.iter().enumerate() {
                out.insert(string(x, &format!("{p}.{i}"))?, ServiceNetwork::default());
            }
        }
        Value::Mapping(m) => {
            for (k, x) in m {
                let k = key_string(k);
                let np = format!("{p}.{k}");
                let mut n = ServiceNetwork::default();
                if !x.is_null() {
                    let o = Obj::new(
                        x,
                        &np,
                        &[
                            "aliases",
                            "ipv4_address",
                            "ipv6_address",
                            "mac_address",
                            "priority",
                        ],
                        &[
                            "interface_name",
                            "link_local_ips",
                            "driver_opts",
                            "gw_priority",
                        ],
                    )?;
                    n.aliases = o.strings("aliases")?;
                    n.ipv4_address = o.str("ipv4_address")?;
                    if let Some(a) = &n.ipv4_address {
                        a.parse::<std::net::Ipv4Addr>().map_err(|_| {
                            format!("{np}.ipv4_address: invalid IPv4 address {a:?}")
                        })?;
                    }
                    n.ipv6_address = o.str("ipv6_address")?;
                    if let Some(a) = &n.ipv6_address {
                        a.parse::<std::net::Ipv6Addr>().map_err(|_| {
                            format!("{np}.ipv6_address: invalid IPv6 address {a:?}")
                        })?;
                    }
                    n.mac_address = o.str("mac_address")?;
                    n.priority = o.int("priority")?.unwrap_or(0);
                }
                out.insert(k, n);
            }
        }
        _ => return Err(format!("{p} must be a mapping or an array of strings")),
    }
    Ok(out)
}

fn healthcheck(v: &Value, p: &str) -> R<Healthcheck> {
    let o = Obj::new(
        v,
        p,
        &[
            "test",
            "interval",
            "timeout",
            "start_period",
            "start_interval",
            "retries",
            "disable",
        ],
        &[],
    )?;
    let mut h = Healthcheck {
        interval: o.dur("interval")?,
        timeout: o.dur("timeout")?,
        start_period: o.dur("start_period")?,
        start_interval: o.dur("start_interval")?,
        retries: o
            .int("retries")?
            .map(|n| u64::try_from(n).map_err(|_| format!("{p}.retries: must not be negative")))
            .transpose()?,
        disable: o.bool("disable")?.unwrap_or(false),
        test: Vec::new(),
        ..Default::default()
    };
    if let Some((t, tp)) = o.get("test") {
        h.test = match t {
            Value::String(s) => vec!["CMD-SHELL".to_string(), s.clone()],
            _ => string_or_list(t, &tp)?,
        };
        match h.test.first().map(String::as_str) {
            Some("CMD" | "CMD-SHELL" | "NONE") => {}
            _ => {
                return Err(format!(
                    "{tp}: the first item must be \"CMD\", \"CMD-SHELL\" or \"NONE\""
                ))
            }
        }
        if h.test[0] == "CMD-SHELL" && h.test.len() != 2 {
            return Err(format!(
                "{tp}: \"CMD-SHELL\" takes exactly one command string"
            ));
        }
    }
    if h.disable {
        if o.get("test").is_some() && h.test != ["NONE"] {
            return Err(format!(
                "{p}: test and disable can't be set at the same time"
            ));
        }
        h.test = vec!["NONE".into()];
    }
    Ok(h)
}

fn depends_on(v: &Value, p: &str) -> R<BTreeMap<String, Dependency>> {
    let mut out = BTreeMap::new();
    match v {
        Value::Sequence(items) => {
            for (i, x) in items.iter().enumerate() {
                out.insert(
                    string(x, &format!("{p}.{i}"))?,
                    Dependency {
                        condition: Condition::ServiceStarted,
                        restart: false,
                        required: true,
                    },
                );
            }
        }
        Value::Mapping(m) => {
            for (k, x) in m {
                let k = key_string(k);
                let dp = format!("{p}.{k}");
                let o = Obj::new(x, &dp, &["condition", "restart", "required"], &[])?;
                let condition = match o.str("condition")?.as_deref() {
                    Some("service_started") => Condition::ServiceStarted,
                    Some("service_healthy") => Condition::ServiceHealthy,
                    Some("service_completed_successfully") => Condition::ServiceCompletedSuccessfully,
                    Some(other) => return Err(format!(
                        "{dp}.condition must be one of the following: \"service_started\", \"service_healthy\", \"service_completed_successfully\", got {other:?}"
                    )),
                    None => return Err(format!("{dp} missing property 'condition'")),
                };
                out.insert(
                    k,
                    Dependency {
                        condition,
                        restart: o.bool("restart")?.unwrap_or(false),
                        required: o.bool("required")?.unwrap_or(true),
                    },
                );
            }
        }
        _ => return Err(format!("{p} must be a mapping or an array of strings")),
    }
    Ok(out)
}

fn check_restart(r: &str) -> Result<(), String> {
    match r {
        "no" | "always" | "on-failure" | "unless-stopped" => Ok(()),
        _ => match r.strip_prefix("on-failure:") {
            Some(n) if n.parse::<u32>().is_ok() => Ok(()),
            _ => Err(format!(
                "invalid restart policy {r:?} (no, always, on-failure[:N], unless-stopped)"
            )),
        },
    }
}

fn deploy(v: &Value, p: &str) -> R<Deploy> {
    let o = Obj::new(
        v,
        p,
        &[
            "mode",
            "replicas",
            "endpoint_mode",
            "resources",
            "restart_policy",
            "update_config",
            "rollback_config",
            "labels",
        ],
        &["placement"],
    )?;
    let mut d = Deploy::default();
    if let Some(m) = o.str("mode")? {
        match m.as_str() {
            "replicated" => {}
            "global" => {
                return Err(format!(
                    "{p}.mode: \"global\" is not supported (berth runs on one host; use replicas)"
                ))
            }
            other => return Err(format!("{p}.mode: invalid mode {other:?}")),
        }
        d.mode = Some(m);
    }
    d.replicas = o.u32("replicas")?;
    d.endpoint_mode = match o.str("endpoint_mode")?.as_deref() {
        None | Some("vip") => EndpointMode::Vip,
        Some("dnsrr") => EndpointMode::Dnsrr,
        Some(other) => {
            return Err(format!(
                "{p}.endpoint_mode: invalid endpoint mode {other:?} (vip or dnsrr)"
            ))
        }
    };
    if let Some((r, rp)) = o.get("resources") {
        let r = Obj::new(r, &rp, &["limits", "reservations"], &[])?;
        if let Some((l, lp)) = r.get("limits") {
            let l = Obj::new(l, &lp, &["cpus", "memory", "pids"], &[])?;
            d.resources.limits = ResourceSpec {
                cpus: l.float("cpus")?,
                memory: l.size("memory")?,
                pids: l.int("pids")?,
            };
        }
        if let Some((l, lp)) = r.get("reservations") {
            let l = Obj::new(
                l,
                &lp,
                &["cpus", "memory"],
                &["generic_resources", "devices", "pids"],
            )?;
            d.resources.reservations = ResourceSpec {
                cpus: l.float("cpus")?,
                memory: l.size("memory")?,
                pids: None,
            };
        }
        for (spec, what) in [
            (&d.resources.limits, "limits"),
            (&d.resources.reservations, "reservations"),
        ] {
            if spec.cpus.is_some_and(|c| c <= 0.0) {
                return Err(format!("{rp}.{what}.cpus: must be greater than 0"));
            }
        }
    }
    if let Some((r, rp)) = o.get("restart_policy") {
        let r = Obj::new(
            r,
            &rp,
            &["condition", "delay", "max_attempts", "window"],
            &[],
        )?;
        d.restart_policy = Some(RestartPolicySpec {
            condition: match r.str("condition")?.as_deref() {
                None | Some("any") => RestartCondition::Any,
                Some("on-failure") => RestartCondition::OnFailure,
                Some("none") => RestartCondition::None,
                Some(other) => {
                    return Err(format!(
                        "{rp}.condition: invalid condition {other:?} (none, on-failure or any)"
                    ))
                }
            },
            delay: r.dur("delay")?,
            max_attempts: r.u32("max_attempts")?,
            window: r.dur("window")?,
        });
    }
    if let Some((u, up)) = o.get("update_config") {
        d.update_config = Some(update_config(u, &up, true)?);
    }
    if let Some((u, up)) = o.get("rollback_config") {
        d.rollback_config = Some(update_config(u, &up, false)?);
    }
    d.labels = o.dict("labels")?;
    Ok(d)
}

fn update_config(v: &Value, p: &str, update: bool) -> R<UpdateConfig> {
    let o = Obj::new(
        v,
        p,
        &[
            "parallelism",
            "delay",
            "failure_action",
            "monitor",
            "max_failure_ratio",
            "order",
        ],
        &[],
    )?;
    let mut u = UpdateConfig::default();
    if let Some(n) = o.u32("parallelism")? {
        u.parallelism = n;
    }
    if let Some(d) = o.dur("delay")? {
        u.delay = d;
    }
    if let Some(d) = o.dur("monitor")? {
        u.monitor = d;
    }
    u.failure_action = match o.str("failure_action")?.as_deref() {
        None | Some("pause") => FailureAction::Pause,
        Some("continue") => FailureAction::Continue,
        Some("rollback") if update => FailureAction::Rollback,
        Some(other) => {
            return Err(format!(
                "{p}.failure_action: invalid failure action {other:?}"
            ))
        }
    };
    if let Some(r) = o.float("max_failure_ratio")? {
        if !(0.0..=1.0).contains(&r) {
            return Err(format!("{p}.max_failure_ratio: must be between 0 and 1"));
        }
        // Failures are not counted against a ratio: the first failed new replica acts.
        if r > 0.0 {
            return Err(format!(
                "{p}.max_failure_ratio: not supported by berth yet (only 0: the first failed replica triggers failure_action)"
            ));
        }
        u.max_failure_ratio = r;
    }
    u.order = match o.str("order")?.as_deref() {
        None | Some("stop-first") => Order::StopFirst,
        Some("start-first") => Order::StartFirst,
        Some(other) => {
            return Err(format!(
                "{p}.order: invalid order {other:?} (start-first or stop-first)"
            ))
        }
    };
    Ok(u)
}

fn ulimits(v: &Value, p: &str) -> R<BTreeMap<String, UlimitSpec>> {
    let Value::Mapping(m) = v else {
        return Err(format!("{p} must be a mapping"));
    };
    let mut out = BTreeMap::new();
    for (k, x) in m {
        let k = key_string(k);
        let up = format!("{p}.{k}");
        let spec = match x {
            Value::Mapping(_) => {
                let o = Obj::new(x, &up, &["soft", "hard"], &[])?;
                let soft = o
                    .int("soft")?
                    .ok_or_else(|| format!("{up} missing property 'soft'"))?;
                let hard = o
                    .int("hard")?
                    .ok_or_else(|| format!("{up} missing property 'hard'"))?;
                if soft > hard && hard >= 0 {
                    return Err(format!(
                        "{up}: soft limit {soft} is greater than hard limit {hard}"
                    ));
                }
                UlimitSpec { soft, hard }
            }
            _ => {
                let n = integer(x, &up)?;
                UlimitSpec { soft: n, hard: n }
            }
        };
        out.insert(k, spec);
    }
    Ok(out)
}

fn extra_hosts(v: &Value, p: &str) -> R<Vec<String>> {
    let mut out = Vec::new();
    let mut push = |host: &str, ip: &str, ip_path: &str| -> R<()> {
        if host.is_empty() || ip.is_empty() {
            return Err(format!("{ip_path}: invalid extra host {host:?}={ip:?}"));
        }
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        out.push(format!("{host}:{ip}"));
        Ok(())
    };
    match v {
        Value::Mapping(m) => {
            for (k, x) in m {
                let host = key_string(k);
                let hp = format!("{p}.{host}");
                for ip in string_or_list(x, &hp)? {
                    push(&host, &ip, &hp)?;
                }
            }
        }
        Value::Sequence(items) => {
            for (i, x) in items.iter().enumerate() {
                let ip_path = format!("{p}.{i}");
                let s = string(x, &ip_path)?;
                // compose-go accepts `host=ip` and docker's `host:ip`.
                let (h, ip) = s
                    .split_once('=')
                    .or_else(|| s.split_once(':'))
                    .ok_or_else(|| format!("{ip_path}: invalid extra host {s:?} (HOST:IP)"))?;
                push(h, ip, &ip_path)?;
            }
        }
        _ => return Err(format!("{p} must be a mapping or an array of strings")),
    }
    Ok(out)
}

fn devices(v: &Value, p: &str) -> R<Vec<String>> {
    let mut out = Vec::new();
    for (i, x) in list(v, p)?.iter().enumerate() {
        let ip = format!("{p}.{i}");
        match x {
            Value::Mapping(_) => {
                let o = Obj::new(x, &ip, &["source", "target", "permissions"], &[])?;
                let src = o
                    .str("source")?
                    .ok_or_else(|| format!("{ip}: source is required"))?;
                let tgt = o.str("target")?.unwrap_or_else(|| src.clone());
                let perms = o.str("permissions")?.unwrap_or_else(|| "rwm".into());
                out.push(format!("{src}:{tgt}:{perms}"));
            }
            _ => out.push(string(x, &ip)?),
        }
    }
    Ok(out)
}

fn autoscale(v: &Value, p: &str) -> R<Autoscale> {
    let o = Obj::new(
        v,
        p,
        &[
            "min",
            "max",
            "target_cpu_percent",
            "target_connections_per_replica",
            "scale_up_after",
            "scale_down_after",
        ],
        &[],
    )?;
    let min = o
        .u32("min")?
        .ok_or_else(|| format!("{p} missing property 'min'"))?;
    let max = o
        .u32("max")?
        .ok_or_else(|| format!("{p} missing property 'max'"))?;
    if min < 1 {
        return Err(format!("{p}.min: must be at least 1"));
    }
    if min > max {
        return Err(format!("{p}: min ({min}) is greater than max ({max})"));
    }
    let cpu = o.float("target_cpu_percent")?;
    let conns = o.float("target_connections_per_replica")?;
    let target = match (cpu, conns) {
        (Some(c), None) => AutoscaleTarget::CpuPercent(c),
        (None, Some(c)) => AutoscaleTarget::ConnectionsPerReplica(c),
        _ => {
            return Err(format!(
            "{p}: exactly one of target_cpu_percent and target_connections_per_replica is required"
        ))
        }
    };
    let t = match target {
        AutoscaleTarget::CpuPercent(c) | AutoscaleTarget::ConnectionsPerReplica(c) => c,
    };
    if t <= 0.0 || !t.is_finite() {
        return Err(format!("{p}: the target must be greater than 0"));
    }
    Ok(Autoscale {
        min,
        max,
        target,
        scale_up_after: o
            .dur("scale_up_after")?
            .unwrap_or(Autoscale::DEFAULT_SCALE_UP_AFTER),
        scale_down_after: o
            .dur("scale_down_after")?
            .unwrap_or(Autoscale::DEFAULT_SCALE_DOWN_AFTER),
    })
}

/// A top-level network definition; `name` is the real name.
pub fn network(key: &str, v: &Value, project: &str) -> R<NetworkDef> {
    let p = format!("networks.{key}");
    let mut n = NetworkDef {
        name: format!("{project}_{key}"),
        ..Default::default()
    };
    if v.is_null() {
        return Ok(n);
    }
    let o = Obj::new(
        v,
        &p,
        &[
            "name",
            "driver",
            "driver_opts",
            "external",
            "internal",
            "enable_ipv6",
            "attachable",
            "ipam",
            "labels",
        ],
        &["enable_ipv4"],
    )?;
    let (external, external_name) = external(&o, &p)?;
    n.external = external;
    n.driver = o.str("driver")?;
    if let Some(d) = &n.driver {
        if d != "bridge" {
            return Err(format!(
                "{p}.driver: network driver {d:?} is not supported (bridge only)"
            ));
        }
    }
    n.driver_opts = o.dict("driver_opts")?;
    n.internal = o.bool("internal")?.unwrap_or(false);
    n.enable_ipv6 = o.bool("enable_ipv6")?.unwrap_or(false);
    n.attachable = o.bool("attachable")?.unwrap_or(false);
    n.labels = o.dict("labels")?;
    if let Some((i, ip)) = o.get("ipam") {
        let i = Obj::new(i, &ip, &["driver", "config"], &["options"])?;
        let mut ipam = Ipam {
            driver: i.str("driver")?,
            config: Vec::new(),
        };
        if let Some(d) = &ipam.driver {
            if d != "default" {
                return Err(format!("{ip}.driver: IPAM driver {d:?} is not supported"));
            }
        }
        if let Some((c, cp)) = i.get("config") {
            for (idx, x) in list(c, &cp)?.iter().enumerate() {
                let xp = format!("{cp}.{idx}");
                let x = Obj::new(
                    x,
                    &xp,
                    &["subnet", "ip_range", "gateway"],
                    &["aux_addresses"],
                )?;
                let conf = IpamConfig {
                    subnet: x.str("subnet")?,
                    gateway: x.str("gateway")?,
                    ip_range: x.str("ip_range")?,
                };
                for (k, val) in [("subnet", &conf.subnet), ("ip_range", &conf.ip_range)] {
                    if let Some(s) = val {
                        check_cidr(s).map_err(|e| format!("{xp}.{k}: {e}"))?;
                    }
                }
                if let Some(g) = &conf.gateway {
                    g.parse::<std::net::IpAddr>()
                        .map_err(|_| format!("{xp}.gateway: invalid IP address {g:?}"))?;
                }
                ipam.config.push(conf);
            }
        }
        n.ipam = Some(ipam);
    }
    if external {
        for k in [
            "driver",
            "driver_opts",
            "internal",
            "ipam",
            "enable_ipv6",
            "attachable",
        ] {
            if o.get(k).is_some() {
                return Err(format!("conflicting parameters \"external\" and \"{k}\" specified for network \"{key}\""));
            }
        }
        n.name = external_name
            .or(o.str("name")?)
            .unwrap_or_else(|| key.to_string());
    } else if let Some(name) = o.str("name")? {
        n.name = name;
    }
    Ok(n)
}

fn check_cidr(s: &str) -> Result<(), String> {
    let (ip, len) = s
        .split_once('/')
        .ok_or_else(|| format!("invalid CIDR {s:?}"))?;
    let ip: std::net::IpAddr = ip.parse().map_err(|_| format!("invalid CIDR {s:?}"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    match len.parse::<u8>() {
        Ok(l) if l <= max => Ok(()),
        _ => Err(format!("invalid CIDR {s:?}")),
    }
}

/// `external: true` or the legacy `external: {name: x}`.
fn external(o: &Obj, p: &str) -> R<(bool, Option<String>)> {
    match o.get("external") {
        None => Ok((false, None)),
        Some((v @ Value::Mapping(_), ep)) => {
            let e = Obj::new(v, &ep, &["name"], &[])?;
            Ok((true, e.str("name")?))
        }
        Some((v, ep)) => Ok((
            boolean(v, &ep).map_err(|_| format!("{p}.external must be a boolean"))?,
            None,
        )),
    }
}

pub fn volume_def(key: &str, v: &Value, project: &str) -> R<VolumeDef> {
    let p = format!("volumes.{key}");
    let mut d = VolumeDef {
        name: format!("{project}_{key}"),
        ..Default::default()
    };
    if v.is_null() {
        return Ok(d);
    }
    let o = Obj::new(
        v,
        &p,
        &["name", "driver", "driver_opts", "external", "labels"],
        &[],
    )?;
    let (external, external_name) = external(&o, &p)?;
    d.external = external;
    d.driver = o.str("driver")?;
    if let Some(dr) = &d.driver {
        if dr != "local" {
            return Err(format!(
                "{p}.driver: volume driver {dr:?} is not supported (local only)"
            ));
        }
    }
    d.driver_opts = o.dict("driver_opts")?;
    if !d.driver_opts.is_empty() {
        return Err(format!(
            "{p}.driver_opts: volume driver options are {UNSUPPORTED}"
        ));
    }
    d.labels = o.dict("labels")?;
    if external {
        for k in ["driver", "driver_opts"] {
            if o.get(k).is_some() {
                return Err(format!("conflicting parameters \"external\" and \"{k}\" specified for volume \"{key}\""));
            }
        }
        d.name = external_name
            .or(o.str("name")?)
            .unwrap_or_else(|| key.to_string());
    } else if let Some(name) = o.str("name")? {
        d.name = name;
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(yaml: &str) -> R<Service> {
        let v: Value = serde_norway::from_str(yaml).unwrap();
        let mut env = BTreeMap::new();
        env.insert("HOME".to_string(), "/home/u".to_string());
        service("web", &v, Path::new("/proj"), &env)
    }

    #[test]
    fn secrets_and_configs_short_and_long() {
        let s = svc("image: x\nsecrets:\n  - token\n  - source: cert\n    target: tls.pem\n    uid: '103'\n    gid: 104\n    mode: 0440\nconfigs:\n  - app\n  - source: nginx\n    target: /etc/nginx.conf\n    mode: '0o600'\n").unwrap();
        assert_eq!(
            s.secrets,
            [
                FileMount {
                    source: "token".into(),
                    target: "/run/secrets/token".into(),
                    ..Default::default()
                },
                FileMount {
                    source: "cert".into(),
                    target: "/run/secrets/tls.pem".into(),
                    uid: Some(103),
                    gid: Some(104),
                    mode: Some(0o440),
                },
            ]
        );
        assert_eq!(s.configs[0].target, "/app");
        assert_eq!(
            (s.configs[1].target.as_str(), s.configs[1].mode),
            ("/etc/nginx.conf", Some(0o600))
        );
        for (bad, want) in [
            (
                "secrets:\n  - source: a\n    mode: 0999\n",
                "invalid file mode",
            ),
            ("secrets:\n  - target: a\n", "source is required"),
            (
                "secrets:\n  - source: a\n    uid: root\n",
                "not a numeric id",
            ),
            ("configs:\n  - source: a\n    labels: {}\n", "labels"),
        ] {
            let e = svc(&format!("image: x\n{bad}")).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
        let b = svc("image: x\nbuild:\n  context: .\n  secrets:\n    - npmrc\n    - source: tok\n      target: api_token\n").unwrap();
        assert_eq!(
            b.build.unwrap().secrets,
            [
                ("npmrc".to_string(), "npmrc".to_string()),
                ("api_token".to_string(), "tok".to_string())
            ]
        );
    }

    #[test]
    fn secret_and_config_definitions() {
        let env: BTreeMap<String, String> = [("TOKEN".to_string(), "s3cret".to_string())].into();
        let def = |kind: &str, y: &str| {
            let v: Value = serde_norway::from_str(y).unwrap();
            file_def(kind, "k", &v, Path::new("/proj"), &env)
        };
        assert_eq!(
            def("secrets", "file: ./a.txt").unwrap(),
            FileSource::File("/proj/./a.txt".into())
        );
        assert_eq!(
            def("secrets", "environment: TOKEN").unwrap(),
            FileSource::Env {
                var: "TOKEN".into(),
                value: "s3cret".into()
            }
        );
        assert_eq!(
            def("configs", "content: hello").unwrap(),
            FileSource::Content("hello".into())
        );
        for (kind, y, want) in [
            ("secrets", "content: x", "content"),
            ("secrets", "external: true", "external"),
            ("secrets", "environment: NOPE", "variable NOPE is not set"),
            ("configs", "file: a\ncontent: b", "exactly one of"),
        ] {
            let e = def(kind, y).unwrap_err();
            assert!(e.contains(want), "{y}: {e}");
        }
    }

    #[test]
    fn ports_short_syntax() {
        let p = parse_port_short("8080:80").unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(
            (
                p[0].target,
                p[0].published.as_deref(),
                p[0].protocol.as_str()
            ),
            (80, Some("8080"), "tcp")
        );
        let p = parse_port_short("127.0.0.1:53:53/udp").unwrap();
        assert_eq!(
            (p[0].host_ip.as_deref(), p[0].protocol.as_str()),
            (Some("127.0.0.1"), "udp")
        );
        let p = parse_port_short("[::1]:8080:80").unwrap();
        assert_eq!(p[0].host_ip.as_deref(), Some("::1"));
        let p = parse_port_short("3000-3002").unwrap();
        assert_eq!(
            p.iter().map(|p| p.target).collect::<Vec<_>>(),
            [3000, 3001, 3002]
        );
        let p = parse_port_short("9090-9091:8080-8081").unwrap();
        assert_eq!(
            p.iter()
                .map(|p| p.published.clone().unwrap())
                .collect::<Vec<_>>(),
            ["9090", "9091"]
        );
        let p = parse_port_short("8000-8010:80").unwrap();
        assert_eq!(p[0].published.as_deref(), Some("8000-8010"));
        let p = parse_port_short("127.0.0.1::80").unwrap();
        assert_eq!(
            (p[0].host_ip.as_deref(), p[0].published.as_deref()),
            (Some("127.0.0.1"), None)
        );
        for bad in [
            "80x",
            "0",
            "70000:80",
            "8080:80/sctp",
            "1-3:1-2",
            "a:b:c:d",
            "300.1.1.1:80:80",
        ] {
            assert!(parse_port_short(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ports_long_syntax_and_errors() {
        let s = svc("ports:\n  - target: 80\n    published: \"8080\"\n    host_ip: 127.0.0.1\n    protocol: udp\n    mode: host\n  - 9000\n").unwrap();
        assert_eq!(s.ports[0].published.as_deref(), Some("8080"));
        assert_eq!(s.ports[0].mode, "host");
        assert_eq!(s.ports[1].target, 9000);
        assert_eq!(
            svc("ports: ['80x:80']").unwrap_err(),
            "services.web.ports.0: invalid port \"80x:80\": invalid host port"
        );
        assert!(svc("ports: [{published: 80}]")
            .unwrap_err()
            .contains("target is required"));
        assert!(svc("ports: [{target: 80, foo: 1}]")
            .unwrap_err()
            .contains("services.web.ports.0 Additional property foo is not allowed"));
    }

    #[test]
    fn volumes_short_and_long() {
        let s = svc("volumes:\n  - ./data:/data:ro\n  - db:/var/lib/db\n  - /anon\n  - ~/x:/x:rshared\n  - type: tmpfs\n    target: /t\n    tmpfs: {size: 64m, mode: 1777}\n  - type: bind\n    source: ../up\n    target: /up\n    bind: {propagation: rslave}\n").unwrap();
        let v = &s.volumes;
        assert_eq!(
            (
                v[0].kind,
                v[0].source.as_deref(),
                v[0].read_only,
                v[0].create_host_path
            ),
            (VolumeKind::Bind, Some("/proj/data"), true, true)
        );
        assert_eq!(
            (v[1].kind, v[1].source.as_deref()),
            (VolumeKind::Volume, Some("db"))
        );
        assert_eq!(
            (v[2].kind, v[2].source.as_deref(), v[2].target.as_str()),
            (VolumeKind::Volume, None, "/anon")
        );
        assert_eq!(
            (v[3].source.as_deref(), v[3].propagation.as_deref()),
            (Some("/home/u/x"), Some("rshared"))
        );
        assert_eq!(
            (v[4].kind, v[4].tmpfs_size, v[4].tmpfs_mode),
            (VolumeKind::Tmpfs, Some(64 << 20), Some(1777))
        );
        assert_eq!(
            (
                v[5].source.as_deref(),
                v[5].propagation.as_deref(),
                v[5].create_host_path
            ),
            (Some("/up"), Some("rslave"), false)
        );
        assert!(svc("volumes: ['a:b']")
            .unwrap_err()
            .contains("absolute path"));
        assert!(svc("volumes: ['./a:/b:bogus']")
            .unwrap_err()
            .contains("unknown mode"));
        assert!(svc("volumes: [{type: npipe, target: /x}]")
            .unwrap_err()
            .contains("not supported"));
    }

    #[test]
    fn healthcheck_forms_and_bad_duration() {
        let s = svc("healthcheck:\n  test: curl -f http://localhost\n  interval: 1m30s\n  timeout: 10s\n  retries: 3\n  start_period: 40s\n").unwrap();
        let h = s.healthcheck.unwrap();
        assert_eq!(h.test, ["CMD-SHELL", "curl -f http://localhost"]);
        assert_eq!(h.interval, Some(Duration::from_secs(90)));
        assert_eq!(h.retries, Some(3));
        let s = svc("healthcheck: {disable: true}").unwrap();
        assert_eq!(s.healthcheck.unwrap().test, ["NONE"]);
        assert_eq!(
            svc("healthcheck: {test: [CMD, true], interval: 10x}").unwrap_err(),
            "services.web.healthcheck.interval: invalid duration \"10x\""
        );
        assert!(svc("healthcheck: {interval: 10}")
            .unwrap_err()
            .starts_with("services.web.healthcheck.interval must be a string"));
        assert!(svc("healthcheck: {test: [echo]}")
            .unwrap_err()
            .contains("first item"));
    }

    #[test]
    fn depends_on_forms() {
        let s = svc("depends_on: [db]").unwrap();
        assert_eq!(
            s.depends_on["db"],
            Dependency {
                condition: Condition::ServiceStarted,
                restart: false,
                required: true
            }
        );
        let s = svc("depends_on:\n  db: {condition: service_healthy, restart: true}\n  init: {condition: service_completed_successfully, required: false}\n").unwrap();
        assert_eq!(s.depends_on["db"].condition, Condition::ServiceHealthy);
        assert!(s.depends_on["db"].restart);
        assert!(!s.depends_on["init"].required);
        assert!(svc("depends_on: {db: {condition: whenever}}")
            .unwrap_err()
            .contains("must be one of"));
        assert!(svc("depends_on: {db: {}}")
            .unwrap_err()
            .contains("missing property 'condition'"));
    }

    #[test]
    fn deploy_everything() {
        let s = svc(
            "deploy:\n  mode: replicated\n  replicas: 3\n  endpoint_mode: dnsrr\n  resources:\n    limits: {cpus: '0.5', memory: 512m, pids: 100}\n    reservations: {cpus: 0.25, memory: 128M}\n  restart_policy: {condition: on-failure, delay: 5s, max_attempts: 3, window: 2m}\n  update_config: {parallelism: 2, delay: 10s, order: start-first, failure_action: rollback, monitor: 30s, max_failure_ratio: 0}\n  rollback_config: {parallelism: 0, order: stop-first}\n  labels: {a: b}\n",
        )
        .unwrap();
        let d = s.deploy;
        assert_eq!(d.replicas, Some(3));
        assert_eq!(d.endpoint_mode, EndpointMode::Dnsrr);
        assert_eq!(
            d.resources.limits,
            ResourceSpec {
                cpus: Some(0.5),
                memory: Some(512 << 20),
                pids: Some(100)
            }
        );
        assert_eq!(d.resources.reservations.memory, Some(128 << 20));
        let rp = d.restart_policy.unwrap();
        assert_eq!(
            (rp.condition, rp.delay, rp.max_attempts, rp.window),
            (
                RestartCondition::OnFailure,
                Some(Duration::from_secs(5)),
                Some(3),
                Some(Duration::from_secs(120))
            )
        );
        let u = d.update_config.unwrap();
        assert_eq!(
            (u.parallelism, u.order, u.failure_action, u.monitor),
            (
                2,
                Order::StartFirst,
                FailureAction::Rollback,
                Duration::from_secs(30)
            )
        );
        assert_eq!(d.rollback_config.unwrap().parallelism, 0);
        assert_eq!(d.labels["a"], "b");
        assert!(svc("deploy: {update_config: {max_failure_ratio: 0.2}}")
            .unwrap_err()
            .contains("max_failure_ratio: not supported"));
        assert!(svc("deploy: {mode: global}")
            .unwrap_err()
            .contains("\"global\" is not supported"));
        assert!(svc("deploy: {placement: {constraints: []}}")
            .unwrap_err()
            .contains("services.web.deploy.placement: not supported"));
        assert!(svc("deploy: {rollback_config: {failure_action: rollback}}").is_err());
    }

    #[test]
    fn build_short_and_long_forms() {
        let b = svc("build: ./web").unwrap().build.unwrap();
        assert_eq!(b.context, Path::new("/proj/./web"));
        let b = svc("build:\n  context: app\n  dockerfile: Dockerfile.dev\n  args: [A=1, FROM_ENV, HOME]\n  target: prod\n  labels: {l: v}\n  no_cache: true\n  pull: true\n  network: none\n  tags: [x:2]\n")
            .unwrap()
            .build
            .unwrap();
        assert_eq!(b.context, Path::new("/proj/app"));
        assert_eq!(b.dockerfile.as_deref(), Some("Dockerfile.dev"));
        assert_eq!(b.args["A"].as_deref(), Some("1"));
        assert_eq!(b.args["FROM_ENV"], None);
        assert_eq!(b.args["HOME"].as_deref(), Some("/home/u"));
        assert_eq!(b.target.as_deref(), Some("prod"));
        assert_eq!(b.labels["l"], "v");
        assert!(b.no_cache && b.pull);
        assert_eq!(b.network.as_deref(), Some("none"));
        assert_eq!(b.tags, ["x:2"]);
        let b = svc("build: {args: {N: 3}, dockerfile_inline: 'FROM scratch'}")
            .unwrap()
            .build
            .unwrap();
        assert_eq!(b.context, Path::new("/proj/."));
        assert_eq!(b.args["N"].as_deref(), Some("3"));
        assert_eq!(b.dockerfile_inline.as_deref(), Some("FROM scratch"));
    }

    #[test]
    fn build_keys_berth_lacks_are_errors_naming_them() {
        assert_eq!(
            svc("build: {context: ., ssh: [default]}").unwrap_err(),
            "services.web.build.ssh: not supported by berth yet"
        );
        assert_eq!(
            svc("build: {context: ., cache_from: [x]}").unwrap_err(),
            "services.web.build.cache_from: not supported by berth yet"
        );
        assert_eq!(
            svc("build: {context: ., bogus: 1}").unwrap_err(),
            "services.web.build Additional property bogus is not allowed"
        );
        assert!(svc("build: https://github.com/x/y.git")
            .unwrap_err()
            .contains("remote build contexts"));
        assert!(svc("build: {dockerfile: a, dockerfile_inline: b}")
            .unwrap_err()
            .contains("mutually exclusive"));
        assert_eq!(
            svc("image: x\npull_policy: build").unwrap_err(),
            "services.web.pull_policy: pull policy \"build\" needs a build section"
        );
        assert_eq!(
            svc("build: .\npull_policy: build")
                .unwrap()
                .pull_policy
                .as_deref(),
            Some("build")
        );
    }

    #[test]
    fn unknown_unsupported_and_build() {
        assert_eq!(
            svc("image: x\nfoo: 1").unwrap_err(),
            "services.web Additional property foo is not allowed"
        );
        assert_eq!(
            svc("image: x\nlinks: [db]").unwrap_err(),
            "services.web.links: not supported by berth yet"
        );
        assert!(svc("image: x\nx-anything: {whatever: 1}").is_ok());
        assert_eq!(
            svc("read_only: maybe").unwrap_err(),
            "services.web.read_only must be a boolean, got \"maybe\""
        );
        assert_eq!(
            svc("image: 3").unwrap_err(),
            "services.web.image must be a string"
        );
    }

    #[test]
    fn simple_keys() {
        let s = svc(
            "image: nginx\ncommand: echo \"a b\" c\nentrypoint: [/bin/sh, -c]\nuser: 1000:1000\nworking_dir: /app\ncap_add: [NET_ADMIN]\ncap_drop: [ALL]\nread_only: 'true'\nsecurity_opt: [no-new-privileges:true]\ninit: true\nstop_signal: SIGINT\nstop_grace_period: 1m30s\nulimits: {nproc: 65535, nofile: {soft: 20000, hard: 40000}}\nsysctls: {net.core.somaxconn: 1024}\ntmpfs: /run\nhostname: h\ndns: 8.8.8.8\ndns_search: [example.com]\nextra_hosts: ['somehost:162.242.195.82', 'v6=::1']\nprofiles: [debug]\ncontainer_name: c\nrestart: on-failure:3\nmem_limit: 1g\ncpus: 1.5\npids_limit: 50\nscale: 2\nlabels: [com.example.a=1, b]\n",
        )
        .unwrap();
        assert_eq!(
            s.command,
            Some(vec!["echo".into(), "a b".into(), "c".into()])
        );
        assert_eq!(s.entrypoint, Some(vec!["/bin/sh".into(), "-c".into()]));
        assert_eq!(s.user.as_deref(), Some("1000:1000"));
        assert!(s.read_only);
        assert_eq!(s.stop_grace_period, Some(Duration::from_secs(90)));
        assert_eq!(
            s.ulimits["nproc"],
            UlimitSpec {
                soft: 65535,
                hard: 65535
            }
        );
        assert_eq!(
            s.ulimits["nofile"],
            UlimitSpec {
                soft: 20000,
                hard: 40000
            }
        );
        assert_eq!(s.sysctls["net.core.somaxconn"], "1024");
        assert_eq!(s.tmpfs, ["/run"]);
        assert_eq!(s.dns, ["8.8.8.8"]);
        assert_eq!(s.extra_hosts, ["somehost:162.242.195.82", "v6:::1"]);
        assert_eq!(s.mem_limit, Some(1 << 30));
        assert_eq!(s.deploy.replicas, Some(2));
        assert_eq!(s.labels["b"], "");
        assert!(svc("restart: sometimes").is_err());
        assert!(svc("scale: 2\ndeploy: {replicas: 3}")
            .unwrap_err()
            .contains("distinct values"));
        assert!(svc("ulimits: {nofile: {soft: 2}}")
            .unwrap_err()
            .contains("missing property 'hard'"));
    }

    #[test]
    fn environment_and_env_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.env"),
            "A=from_file\nB=file\n# c\nNAME=${USER_X:-def}\n",
        )
        .unwrap();
        let v: Value = serde_norway::from_str("env_file: [a.env, {path: missing.env, required: false}]\nenvironment: {B: env, C: null, D: 1}\n").unwrap();
        let s = service("web", &v, dir.path(), &BTreeMap::new()).unwrap();
        assert_eq!(s.environment["A"].as_deref(), Some("from_file"));
        assert_eq!(s.environment["B"].as_deref(), Some("env"));
        assert_eq!(s.environment["C"], None);
        assert_eq!(s.environment["D"].as_deref(), Some("1"));
        assert_eq!(s.environment["NAME"].as_deref(), Some("def"));
        let v: Value = serde_norway::from_str("env_file: nope.env\n").unwrap();
        assert!(service("web", &v, dir.path(), &BTreeMap::new())
            .unwrap_err()
            .starts_with("services.web.env_file: env file"));
    }

    #[test]
    fn networks_forms() {
        let s = svc("networks: [front, back]").unwrap();
        assert_eq!(s.networks.keys().collect::<Vec<_>>(), ["back", "front"]);
        let s = svc("networks:\n  front:\n    aliases: [www]\n    ipv4_address: 172.16.238.10\n    priority: 100\n  back:\n").unwrap();
        assert_eq!(s.networks["front"].aliases, ["www"]);
        assert_eq!(s.networks["front"].priority, 100);
        assert!(svc("networks: {front: {ipv4_address: nope}}")
            .unwrap_err()
            .contains("invalid IPv4"));
    }

    #[test]
    fn autoscale_rules() {
        let s =
            svc("x-berth-autoscale: {min: 3, max: 6, target_cpu_percent: 70, scale_up_after: 10s}")
                .unwrap();
        let a = s.autoscale.unwrap();
        assert_eq!(
            (a.min, a.max, a.target),
            (3, 6, AutoscaleTarget::CpuPercent(70.0))
        );
        assert_eq!(
            (a.scale_up_after, a.scale_down_after),
            (Duration::from_secs(10), Autoscale::DEFAULT_SCALE_DOWN_AFTER)
        );
        assert!(
            svc("x-berth-autoscale: {min: 0, max: 6, target_cpu_percent: 70}")
                .unwrap_err()
                .contains("at least 1")
        );
        assert!(
            svc("x-berth-autoscale: {min: 7, max: 6, target_cpu_percent: 70}")
                .unwrap_err()
                .contains("greater than max")
        );
        assert!(svc("x-berth-autoscale: {min: 1, max: 6}")
            .unwrap_err()
            .contains("exactly one"));
        assert!(svc("x-berth-autoscale: {min: 1, max: 6, target_cpu_percent: 1, target_connections_per_replica: 2}").unwrap_err().contains("exactly one"));
        assert!(svc("x-berth-autoscale: {min: 1, max: 6, target_cpu: 1}")
            .unwrap_err()
            .contains("Additional property target_cpu"));
    }

    #[test]
    fn network_and_volume_defs() {
        let v: Value = serde_norway::from_str("driver: bridge\ninternal: true\nipam:\n  config:\n    - subnet: 172.28.0.0/16\n      gateway: 172.28.0.1\n").unwrap();
        let n = network("back", &v, "p").unwrap();
        assert_eq!(n.name, "p_back");
        assert!(n.internal);
        assert_eq!(
            n.ipam.unwrap().config[0].subnet.as_deref(),
            Some("172.28.0.0/16")
        );
        let v: Value = serde_norway::from_str("external: true\nname: outside").unwrap();
        assert_eq!(network("x", &v, "p").unwrap().name, "outside");
        let v: Value = serde_norway::from_str("external: true\ndriver: bridge").unwrap();
        assert!(network("x", &v, "p")
            .unwrap_err()
            .contains("conflicting parameters"));
        let v: Value = serde_norway::from_str("driver: overlay").unwrap();
        assert!(network("x", &v, "p").is_err());
        let v: Value = serde_norway::from_str("ipam: {config: [{subnet: 10.0.0.0/33}]}").unwrap();
        assert!(network("x", &v, "p").unwrap_err().contains("invalid CIDR"));
        assert_eq!(
            volume_def("data", &Value::Null, "p").unwrap().name,
            "p_data"
        );
        let v: Value = serde_norway::from_str("name: shared").unwrap();
        assert_eq!(volume_def("data", &v, "p").unwrap().name, "shared");
    }
}
