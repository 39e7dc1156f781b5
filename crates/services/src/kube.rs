//! `berth kube generate`: Kubernetes manifests from a compose project (issue 15 item 3).
//! One Deployment per service, Services for its ports (published ports: a LoadBalancer or
//! NodePort service), a ConfigMap for its environment, a HorizontalPodAutoscaler from
//! `x-berth-autoscale`, PersistentVolumeClaims for named volumes, NetworkPolicies from the
//! compose networks. What has no Kubernetes equivalent is an error naming the service and
//! the key, or a warning the caller prints: never dropped silently.

use crate::compose::{
    AutoscaleTarget, EndpointMode, FailureAction, Healthcheck, Order, Project, RestartCondition,
    Service, VolumeKind,
};
use berth_engine::options::NetProbe;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use thiserror::Error;

pub mod container;
pub mod play;

/// How published ports are exposed outside the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Publish {
    #[default]
    LoadBalancer,
    NodePort,
}

#[derive(Debug, Clone, Default)]
pub struct GenerateOptions {
    pub publish: Publish,
    /// `spec.runtimeClassName` of every pod (e.g. "berth").
    pub runtime_class: Option<String>,
    /// Only these services (empty: all active ones).
    pub services: Vec<String>,
    /// The storage request of each PersistentVolumeClaim (default 1Gi).
    pub volume_size: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Manifest {
    pub kind: &'static str,
    pub name: String,
    pub value: Value,
}

#[derive(Debug, Clone, Default)]
pub struct Generated {
    pub manifests: Vec<Manifest>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Error)]
pub enum KubeError {
    #[error("service {service}: {key}: {reason}")]
    Unsupported {
        service: String,
        key: String,
        reason: String,
    },
    /// `kube play`: what a manifest has that play does not run.
    #[error("{kind} {name}: {field}: {reason}")]
    Play {
        kind: String,
        name: String,
        field: String,
        reason: String,
    },
    /// `kube generate CONTAINER`: what the container has that a pod cannot.
    #[error("container {container}: {key}: {reason}")]
    Container {
        container: String,
        key: String,
        reason: String,
    },
    #[error("{0}")]
    Parse(String),
    #[error("no such service: {0}")]
    NoSuchService(String),
    #[error("{what} {name:?} cannot be a kubernetes name (lowercase letters, digits and '-', at most 63)")]
    BadName { what: &'static str, name: String },
}

const NAME_LABEL: &str = "app.kubernetes.io/name";
const PART_OF_LABEL: &str = "app.kubernetes.io/part-of";

/// A compose name as a DNS-1123 label: lowercase, `_` and `.` become `-`.
fn kname(what: &'static str, s: &str) -> Result<String, KubeError> {
    let n: String = s
        .to_lowercase()
        .chars()
        .map(|c| if c == '_' || c == '.' { '-' } else { c })
        .collect();
    let ok = !n.is_empty()
        && n.len() <= 63
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !n.starts_with('-')
        && !n.ends_with('-');
    if ok {
        Ok(n)
    } else {
        Err(KubeError::BadName {
            what,
            name: s.into(),
        })
    }
}

fn unsupported(service: &str, key: &str, reason: impl Into<String>) -> KubeError {
    KubeError::Unsupported {
        service: service.into(),
        key: key.into(),
        reason: reason.into(),
    }
}

/// Whole seconds, at least `min` (Kubernetes probes count in seconds, 1 at least).
fn secs(d: Option<Duration>, default: u64, min: u64) -> i64 {
    d.map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
        .unwrap_or(default)
        .max(min) as i64
}

fn cpu_quantity(cpus: f64) -> String {
    format!("{}m", (cpus * 1000.0).round() as u64)
}

fn memory_quantity(bytes: u64) -> String {
    if bytes.is_multiple_of(1 << 20) {
        format!("{}Mi", bytes >> 20)
    } else if bytes.is_multiple_of(1024) {
        format!("{}Ki", bytes >> 10)
    } else {
        bytes.to_string()
    }
}

fn protocol(p: &str) -> &'static str {
    if p.eq_ignore_ascii_case("udp") {
        "UDP"
    } else {
        "TCP"
    }
}

/// `"8000"`, `"8000-8002/udp"` → (port, protocol) pairs.
fn expose_ports(svc: &str, s: &str) -> Result<Vec<(u16, &'static str)>, KubeError> {
    let (range, proto) = s.split_once('/').unwrap_or((s, "tcp"));
    let bad = || unsupported(svc, "expose", format!("{s:?} is not a port or a range"));
    let (a, b) = range.split_once('-').unwrap_or((range, range));
    let (a, b): (u16, u16) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    if a > b || a == 0 {
        return Err(bad());
    }
    Ok((a..=b).map(|p| (p, protocol(proto))).collect())
}

fn labels(project: &str, svc: &str) -> Value {
    json!({ NAME_LABEL: svc, PART_OF_LABEL: project })
}

struct Ctx<'a> {
    project: &'a Project,
    pname: String,
    o: &'a GenerateOptions,
    out: Generated,
}

impl Ctx<'_> {
    fn warn(&mut self, svc: &str, msg: impl std::fmt::Display) {
        self.out.warnings.push(format!("service {svc}: {msg}"));
    }

    fn push(&mut self, kind: &'static str, name: &str, value: Value) {
        self.out.manifests.push(Manifest {
            kind,
            name: name.into(),
            value,
        });
    }
}

/// The manifests for `project` (its active services, or `o.services`).
pub fn generate(project: &Project, o: &GenerateOptions) -> Result<Generated, KubeError> {
    let names: Vec<String> = if o.services.is_empty() {
        project.services.keys().cloned().collect()
    } else {
        for s in &o.services {
            if !project.services.contains_key(s) {
                return Err(KubeError::NoSuchService(s.clone()));
            }
        }
        o.services.clone()
    };
    let mut c = Ctx {
        project,
        pname: kname("project", &project.name)?,
        o,
        out: Generated::default(),
    };
    let mut claims = BTreeSet::new();
    for n in &names {
        let s = &project.services[n];
        service(&mut c, s, &mut claims)?;
    }
    for v in claims {
        let def = &project.volumes[&v];
        let name = kname("volume", &def.name)?;
        let size = o.volume_size.clone().unwrap_or_else(|| "1Gi".into());
        if let Some(d) = &def.driver {
            c.out.warnings.push(format!(
                "volume {v}: driver {d} has no kubernetes equivalent: the claim takes the cluster's default storage class"
            ));
        }
        let value = json!({
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "labels": {PART_OF_LABEL: c.pname}},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": size}},
            },
        });
        c.push("PersistentVolumeClaim", &name, value);
    }
    network_policies(&mut c, &names)?;
    Ok(c.out)
}

fn service(c: &mut Ctx, s: &Service, claims: &mut BTreeSet<String>) -> Result<(), KubeError> {
    let svc = s.name.as_str();
    let name = kname("service", svc)?;
    let project = c.project;
    let mut host_network = false;
    match s.network_mode.as_deref() {
        None | Some("bridge") | Some("default") => {}
        Some("host") => host_network = true,
        Some(m) => {
            return Err(unsupported(
                svc,
                "network_mode",
                format!("{m} has no kubernetes equivalent (containers of one pod share a network; put them in one service)"),
            ))
        }
    }
    // The host's pid and ipc namespaces are pod fields; nothing else of these maps.
    let ns = &s.namespaces;
    let (host_pid, host_ipc) = (
        ns.pid.as_deref() == Some("host"),
        ns.ipc.as_deref() == Some("host"),
    );
    for (key, v, ok) in [
        ("pid", &ns.pid, host_pid),
        (
            "ipc",
            &ns.ipc,
            host_ipc
                || ns
                    .ipc
                    .as_deref()
                    .is_some_and(|m| m == "private" || m == "shareable"),
        ),
        ("uts", &ns.uts, host_network),
        (
            "userns_mode",
            &ns.userns_mode,
            ns.userns_mode.as_deref() == Some("host"),
        ),
    ] {
        if let Some(m) = v.as_deref().filter(|_| !ok) {
            return Err(unsupported(
                svc,
                key,
                format!("{m} has no kubernetes equivalent (hostPID and hostIPC are; uts host comes with network_mode host)"),
            ));
        }
    }
    if !s.volumes_from.is_empty() {
        return Err(unsupported(
            svc,
            "volumes_from",
            "kubernetes has no volumes_from (mount the same named volume in both services)",
        ));
    }
    if !s.devices.is_empty() {
        return Err(unsupported(
            svc,
            "devices",
            "kubernetes has no device passthrough in a pod spec (use a device plugin)",
        ));
    }
    for (key, set) in [
        ("ulimits", !s.ulimits.is_empty()),
        (
            "pids_limit / deploy.resources.limits.pids",
            s.pids_limit.is_some() || s.deploy.resources.limits.pids.is_some(),
        ),
        ("cpu_shares", s.cpu_shares.is_some()),
        ("cpuset", s.cpuset.is_some()),
        ("memswap_limit", s.memswap_limit.is_some()),
        ("init", s.init == Some(true)),
        ("domainname", s.domainname.is_some()),
        ("container_name", s.container_name.is_some()),
        ("stop_signal", s.stop_signal.is_some()),
        ("depends_on", !s.depends_on.is_empty()),
        ("secrets", !s.secrets.is_empty()),
        ("configs", !s.configs.is_empty()),
        ("cgroup_parent", s.cgroup_parent.is_some()),
        ("logging", s.logging.is_some()),
        ("oom_kill_disable", s.oom_kill_disable),
        ("mem_swappiness", s.mem_swappiness.is_some()),
        (
            "cpu_quota / cpu_period",
            s.cpu_quota.is_some() || s.cpu_period.is_some(),
        ),
        ("cgroup", s.namespaces.cgroup.is_some()),
        ("attach", s.attach.is_some()),
    ] {
        if set {
            let why = match key {
                "init" => "kubernetes starts no init in the container (add tini to the image, or shareProcessNamespace)",
                "depends_on" => "kubernetes starts pods in no order (readiness probes and retries stand in)",
                "secrets" | "configs" => "not generated: make a kubernetes Secret or ConfigMap of each and mount it at the same targets",
                "logging" => "the kubelet keeps container logs and rotates them by its own settings; left out",
                "cpu_quota / cpu_period" => "left out: give cpus (a cpu limit) instead",
                _ => "has no kubernetes equivalent; left out",
            };
            c.warn(svc, format!("{key}: {why}"));
        }
    }
    if let Some(u) = &s.deploy.update_config {
        if u.delay > Duration::ZERO
            || u.failure_action != FailureAction::Pause
            || u.max_failure_ratio > 0.0
        {
            c.warn(svc, "deploy.update_config: delay, failure_action and max_failure_ratio have no Deployment equivalent (progressDeadlineSeconds and `kubectl rollout undo` stand in); parallelism and order become the rolling update's maxSurge/maxUnavailable");
        }
    }
    if s.deploy.rollback_config.is_some() {
        c.warn(svc, "deploy.rollback_config: a Deployment rolls back with `kubectl rollout undo`, under its rolling update strategy");
    }
    if let Some(p) = &s.deploy.restart_policy {
        if p.delay.is_some() || p.max_attempts.is_some() || p.window.is_some() {
            c.warn(svc, "deploy.restart_policy: delay, max_attempts and window have no kubernetes equivalent (the kubelet backs off by itself)");
        }
    }
    match s.restart_policy().condition {
        RestartCondition::Any => {}
        other => c.warn(
            svc,
            format!("restart condition {other:?}: a Deployment always restarts its pods (use a Job for run-once work)"),
        ),
    }
    for (net, sn) in &s.networks {
        if !sn.aliases.is_empty()
            || sn.ipv4_address.is_some()
            || sn.ipv6_address.is_some()
            || sn.mac_address.is_some()
        {
            c.warn(svc, format!("networks.{net}: aliases and fixed addresses have no kubernetes equivalent; the service's name resolves"));
        }
    }

    // The container.
    let mut ctr = Map::new();
    ctr.insert("name".into(), json!(name));
    ctr.insert("image".into(), json!(s.image));
    if let Some(e) = &s.entrypoint {
        ctr.insert("command".into(), json!(e));
    }
    if let Some(cmd) = &s.command {
        ctr.insert("args".into(), json!(cmd));
    }
    match s.pull_policy.as_deref() {
        None => {}
        Some("always") => {
            ctr.insert("imagePullPolicy".into(), json!("Always"));
        }
        Some("never") => {
            ctr.insert("imagePullPolicy".into(), json!("Never"));
        }
        Some("missing" | "if_not_present") => {
            ctr.insert("imagePullPolicy".into(), json!("IfNotPresent"));
        }
        Some(p) => {
            return Err(unsupported(
                svc,
                "pull_policy",
                format!("{p} has no kubernetes equivalent"),
            ))
        }
    }
    if let Some(w) = &s.working_dir {
        ctr.insert("workingDir".into(), json!(w));
    }
    if s.tty {
        ctr.insert("tty".into(), json!(true));
    }
    if s.stdin_open {
        ctr.insert("stdin".into(), json!(true));
    }
    // Environment: a ConfigMap of the service's, the container takes it all (envFrom).
    let mut env = Map::new();
    for (k, v) in &s.environment {
        match v.clone().or_else(|| project.environment.get(k).cloned()) {
            Some(v) => {
                env.insert(k.clone(), json!(v));
            }
            None => c.warn(
                svc,
                format!("environment.{k}: unset in the environment; left out"),
            ),
        }
    }
    if !env.is_empty() {
        let cm = format!("{name}-env");
        c.push(
            "ConfigMap",
            &cm,
            json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": cm, "labels": labels(&c.pname, &name)},
                "data": env,
            }),
        );
        ctr.insert("envFrom".into(), json!([{"configMapRef": {"name": cm}}]));
    }
    // Ports: the published ones' targets and `expose`.
    let mut ports: Vec<(u16, &'static str)> = vec![];
    for p in &s.ports {
        let pp = (p.target, protocol(&p.protocol));
        if !ports.contains(&pp) {
            ports.push(pp);
        }
    }
    for e in &s.expose {
        for pp in expose_ports(svc, e)? {
            if !ports.contains(&pp) {
                ports.push(pp);
            }
        }
    }
    if !ports.is_empty() {
        ctr.insert(
            "ports".into(),
            Value::Array(
                ports
                    .iter()
                    .map(|(p, proto)| json!({"containerPort": p, "protocol": proto}))
                    .collect(),
            ),
        );
    }
    // Resources: deploy.resources wins over the service-level keys.
    let r = &s.deploy.resources;
    let mut limits = Map::new();
    let mut requests = Map::new();
    if let Some(cpus) = r.limits.cpus.or(s.cpus) {
        limits.insert("cpu".into(), json!(cpu_quantity(cpus)));
    }
    if let Some(m) = r.limits.memory.or(s.mem_limit) {
        limits.insert("memory".into(), json!(memory_quantity(m)));
    }
    if let Some(cpus) = r.reservations.cpus {
        requests.insert("cpu".into(), json!(cpu_quantity(cpus)));
    }
    if let Some(m) = r.reservations.memory.or(s.mem_reservation) {
        requests.insert("memory".into(), json!(memory_quantity(m)));
    }
    if !limits.is_empty() || !requests.is_empty() {
        let mut res = Map::new();
        if !limits.is_empty() {
            res.insert("limits".into(), Value::Object(limits));
        }
        if !requests.is_empty() {
            res.insert("requests".into(), Value::Object(requests));
        }
        ctr.insert("resources".into(), Value::Object(res));
    }
    // Security: as docker runs it (seccomp RuntimeDefault unless unconfined).
    let mut sc = Map::new();
    let mut seccomp = json!({"type": "RuntimeDefault"});
    for o in &s.security_opt {
        let (k, v) = o.split_once(['=', ':']).unwrap_or((o.as_str(), ""));
        match (k, v) {
            ("seccomp", "unconfined") => seccomp = json!({"type": "Unconfined"}),
            ("seccomp", path) => {
                let file = path.rsplit('/').next().unwrap_or(path);
                c.warn(svc, format!("security_opt seccomp={path}: a Localhost profile {file}, which must be in the kubelet's seccomp directory"));
                seccomp = json!({"type": "Localhost", "localhostProfile": file});
            }
            ("no-new-privileges", "" | "true") => {
                sc.insert("allowPrivilegeEscalation".into(), json!(false));
            }
            ("no-new-privileges", "false") => {}
            _ => {
                return Err(unsupported(
                    svc,
                    "security_opt",
                    format!("{o} has no kubernetes equivalent here"),
                ))
            }
        }
    }
    if s.privileged {
        sc.insert("privileged".into(), json!(true));
    } else {
        sc.insert("seccompProfile".into(), seccomp);
    }
    if s.read_only {
        sc.insert("readOnlyRootFilesystem".into(), json!(true));
    }
    let cap = |v: &[String]| -> Vec<String> {
        v.iter()
            .map(|c| c.trim_start_matches("CAP_").to_uppercase())
            .collect()
    };
    if !s.cap_add.is_empty() || !s.cap_drop.is_empty() {
        let mut caps = Map::new();
        if !s.cap_add.is_empty() {
            caps.insert("add".into(), json!(cap(&s.cap_add)));
        }
        if !s.cap_drop.is_empty() {
            caps.insert("drop".into(), json!(cap(&s.cap_drop)));
        }
        sc.insert("capabilities".into(), Value::Object(caps));
    }
    if let Some(u) = &s.user {
        let (uid, gid) = u.split_once(':').unwrap_or((u.as_str(), ""));
        match uid.parse::<i64>() {
            Ok(n) => {
                sc.insert("runAsUser".into(), json!(n));
            }
            Err(_) => {
                return Err(unsupported(
                    svc,
                    "user",
                    format!("{u}: kubernetes needs a numeric uid (runAsUser)"),
                ))
            }
        }
        if !gid.is_empty() {
            let g = gid.parse::<i64>().map_err(|_| {
                unsupported(
                    svc,
                    "user",
                    format!("{u}: kubernetes needs a numeric gid (runAsGroup)"),
                )
            })?;
            sc.insert("runAsGroup".into(), json!(g));
        }
    }
    ctr.insert("securityContext".into(), Value::Object(sc));
    for w in probes(svc, s.healthcheck.as_ref(), s.readiness.as_ref(), &mut ctr)? {
        c.warn(svc, w);
    }

    // Volumes.
    let mut volumes = vec![];
    let mut mounts = vec![];
    for (i, v) in s.volumes.iter().enumerate() {
        let vname = format!("vol-{i}");
        let source = match v.kind {
            VolumeKind::Volume => match &v.source {
                Some(key) => {
                    let def = project.volumes.get(key).ok_or_else(|| {
                        unsupported(svc, "volumes", format!("volume {key} is not declared"))
                    })?;
                    if !def.external {
                        claims.insert(key.clone());
                    }
                    if s.replicas() > 1 {
                        c.warn(svc, format!("volumes: {key} is a ReadWriteOnce claim shared by {} replicas: they must land on one node", s.replicas()));
                    }
                    json!({"persistentVolumeClaim": {"claimName": kname("volume", &def.name)?}})
                }
                None => json!({"emptyDir": {}}),
            },
            VolumeKind::Tmpfs => match v.tmpfs_size {
                Some(n) => {
                    json!({"emptyDir": {"medium": "Memory", "sizeLimit": memory_quantity(n)}})
                }
                None => json!({"emptyDir": {"medium": "Memory"}}),
            },
            VolumeKind::Bind => {
                let path = v.source.clone().unwrap_or_default();
                c.warn(svc, format!("volumes: bind of {path}: a hostPath volume, which only nodes that have {path} can serve"));
                let t = if v.create_host_path {
                    "DirectoryOrCreate"
                } else {
                    ""
                };
                if t.is_empty() {
                    json!({"hostPath": {"path": path}})
                } else {
                    json!({"hostPath": {"path": path, "type": t}})
                }
            }
        };
        let mut vol = Map::new();
        vol.insert("name".into(), json!(vname));
        if let Value::Object(src) = source {
            vol.extend(src);
        }
        volumes.push(Value::Object(vol));
        let mut m = json!({"name": vname, "mountPath": v.target});
        if v.read_only {
            m["readOnly"] = json!(true);
        }
        mounts.push(m);
    }
    for (i, t) in s.tmpfs.iter().enumerate() {
        let path = t.split(':').next().unwrap_or(t);
        let vname = format!("tmpfs-{i}");
        volumes.push(json!({"name": vname, "emptyDir": {"medium": "Memory"}}));
        mounts.push(json!({"name": vname, "mountPath": path}));
    }
    if let Some(shm) = s.shm_size {
        volumes.push(json!({"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": memory_quantity(shm)}}));
        mounts.push(json!({"name": "dshm", "mountPath": "/dev/shm"}));
    }
    if !mounts.is_empty() {
        ctr.insert("volumeMounts".into(), Value::Array(mounts));
    }

    // The pod.
    let mut pod = Map::new();
    pod.insert("containers".into(), json!([Value::Object(ctr)]));
    if !volumes.is_empty() {
        pod.insert("volumes".into(), Value::Array(volumes));
    }
    // --runtime-class, else the service's runtime as a RuntimeClass of that name.
    let rc = match (&c.o.runtime_class, &s.runtime) {
        (Some(rc), _) => Some(rc.clone()),
        (None, Some(r)) => match kname("runtime", r) {
            Ok(n) if !r.contains('/') => Some(n),
            _ => {
                c.warn(
                    svc,
                    format!("runtime: {r} is not a RuntimeClass name; left out"),
                );
                None
            }
        },
        (None, None) => None,
    };
    if let Some(rc) = rc {
        pod.insert("runtimeClassName".into(), json!(rc));
    }
    if host_network {
        pod.insert("hostNetwork".into(), json!(true));
    }
    if host_pid {
        pod.insert("hostPID".into(), json!(true));
    }
    if host_ipc {
        pod.insert("hostIPC".into(), json!(true));
    }
    if let Some(g) = s.stop_grace_period {
        pod.insert(
            "terminationGracePeriodSeconds".into(),
            json!(secs(Some(g), 0, 0)),
        );
    }
    if let Some(h) = &s.hostname {
        pod.insert("hostname".into(), json!(kname("hostname", h)?));
    }
    let mut psc = Map::new();
    if !s.sysctls.is_empty() {
        let v: Vec<Value> = s
            .sysctls
            .iter()
            .map(|(k, v)| json!({"name": k, "value": v}))
            .collect();
        psc.insert("sysctls".into(), Value::Array(v));
    }
    if !s.group_add.is_empty() {
        let mut g = vec![];
        for x in &s.group_add {
            g.push(x.parse::<i64>().map_err(|_| {
                unsupported(
                    svc,
                    "group_add",
                    format!("{x}: kubernetes needs numeric groups (supplementalGroups)"),
                )
            })?);
        }
        psc.insert("supplementalGroups".into(), json!(g));
    }
    if !psc.is_empty() {
        pod.insert("securityContext".into(), Value::Object(psc));
    }
    if !s.extra_hosts.is_empty() {
        let mut by_ip: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for e in &s.extra_hosts {
            let (h, ip) = e
                .split_once(':')
                .ok_or_else(|| unsupported(svc, "extra_hosts", format!("{e} is not NAME:IP")))?;
            if ip == "host-gateway" {
                return Err(unsupported(
                    svc,
                    "extra_hosts",
                    format!("{e}: kubernetes has no host-gateway"),
                ));
            }
            by_ip.entry(ip.into()).or_default().push(h.into());
        }
        let v: Vec<Value> = by_ip
            .into_iter()
            .map(|(ip, hosts)| json!({"ip": ip, "hostnames": hosts}))
            .collect();
        pod.insert("hostAliases".into(), Value::Array(v));
    }
    if !s.dns.is_empty() || !s.dns_search.is_empty() || !s.dns_opt.is_empty() {
        let mut d = Map::new();
        if !s.dns.is_empty() {
            d.insert("nameservers".into(), json!(s.dns));
        }
        if !s.dns_search.is_empty() {
            d.insert("searches".into(), json!(s.dns_search));
        }
        if !s.dns_opt.is_empty() {
            let o: Vec<Value> = s
                .dns_opt
                .iter()
                .map(|o| match o.split_once(':') {
                    Some((n, v)) => json!({"name": n, "value": v}),
                    None => json!({"name": o}),
                })
                .collect();
            d.insert("options".into(), Value::Array(o));
        }
        pod.insert("dnsConfig".into(), Value::Object(d));
    }

    let mut template_meta = json!({"labels": labels(&c.pname, &name)});
    if !s.labels.is_empty() {
        template_meta["annotations"] = json!(s.labels);
    }
    let mut deploy_meta = json!({"name": name, "labels": labels(&c.pname, &name)});
    if !s.deploy.labels.is_empty() {
        deploy_meta["annotations"] = json!(s.deploy.labels);
    }
    let replicas = s.replicas();
    let strategy = match &s.deploy.update_config {
        _ if s
            .volumes
            .iter()
            .any(|v| v.kind == VolumeKind::Volume && v.source.is_some()) =>
        {
            // A ReadWriteOnce claim cannot be held by the old and the new pod at once.
            json!({"type": "Recreate"})
        }
        Some(u) => {
            let n = if u.parallelism == 0 {
                replicas.max(1)
            } else {
                u.parallelism
            };
            match u.order {
                Order::StartFirst => {
                    json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": n, "maxUnavailable": 0}})
                }
                Order::StopFirst => {
                    json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": n}})
                }
            }
        }
        None => {
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}})
        }
    };
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": deploy_meta,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels(&c.pname, &name)},
            "strategy": strategy,
            "template": {"metadata": template_meta, "spec": Value::Object(pod)},
        },
    });
    c.push("Deployment", &name, deployment);

    // The service's name in the cluster: a ClusterIP service on its ports (vip), or
    // headless (dnsrr, or no ports declared: its name resolves to the pods, any port
    // answers, as on a compose network).
    let headless = s.deploy.endpoint_mode == EndpointMode::Dnsrr || ports.is_empty();
    if ports.is_empty() && s.deploy.endpoint_mode == EndpointMode::Vip && !host_network {
        c.warn(
            svc,
            "no ports or expose: a headless Service (its name resolves to the pods' addresses)",
        );
    }
    let mut spec = json!({"selector": labels(&c.pname, &name)});
    if headless {
        spec["clusterIP"] = json!("None");
    }
    if !ports.is_empty() {
        spec["ports"] = Value::Array(
            ports
                .iter()
                .map(|(p, proto)| {
                    json!({"name": format!("{}-{p}", proto.to_lowercase()), "port": p, "targetPort": p, "protocol": proto})
                })
                .collect(),
        );
    }
    c.push(
        "Service",
        &name,
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "labels": labels(&c.pname, &name)},
            "spec": spec,
        }),
    );

    // Published ports: reachable from outside the cluster.
    let mut public = vec![];
    for p in &s.ports {
        let Some(published) = &p.published else {
            continue;
        };
        let (a, b) = published.split_once('-').unwrap_or((published, published));
        let bad = || {
            unsupported(
                svc,
                "ports",
                format!("published {published:?} is not a port or a range"),
            )
        };
        let (a, b): (u16, u16) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
        if p.host_ip.is_some() {
            c.warn(svc, format!("ports: host_ip of {published}: kubernetes publishes on the load balancer or every node"));
        }
        for (i, port) in (a..=b).enumerate() {
            let target = if a == b {
                p.target
            } else {
                p.target + i as u16
            };
            let proto = protocol(&p.protocol);
            let mut e = json!({"name": format!("{}-{port}", proto.to_lowercase()), "port": port, "targetPort": target, "protocol": proto});
            if c.o.publish == Publish::NodePort {
                if (30000..=32767).contains(&port) {
                    e["nodePort"] = json!(port);
                } else {
                    c.warn(svc, format!("ports: {port} is outside the node port range 30000-32767; the cluster picks the node port"));
                }
            }
            public.push(e);
        }
    }
    if !public.is_empty() {
        let pub_name = format!("{name}-public");
        let kind = match c.o.publish {
            Publish::LoadBalancer => "LoadBalancer",
            Publish::NodePort => "NodePort",
        };
        c.push(
            "Service",
            &pub_name,
            json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": pub_name, "labels": labels(&c.pname, &name)},
                "spec": {"type": kind, "selector": labels(&c.pname, &name), "ports": public},
            }),
        );
    }

    // Autoscaling.
    if let Some(a) = &s.autoscale {
        let metric = match a.target {
            AutoscaleTarget::CpuPercent(p) => {
                if s.deploy.resources.reservations.cpus.is_none()
                    && s.deploy.resources.limits.cpus.or(s.cpus).is_none()
                {
                    c.warn(svc, "x-berth-autoscale: a cpu target needs a cpu request or limit to measure against");
                }
                json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": p.round() as i32}}})
            }
            AutoscaleTarget::ConnectionsPerReplica(n) => {
                c.warn(svc, "x-berth-autoscale: connections per replica becomes the pods metric berth_connections, which needs a custom metrics adapter");
                json!({"type": "Pods", "pods": {"metric": {"name": "berth_connections"}, "target": {"type": "AverageValue", "averageValue": format!("{}", n.round() as u64)}}})
            }
        };
        c.push(
            "HorizontalPodAutoscaler",
            &name,
            json!({
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": name, "labels": labels(&c.pname, &name)},
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                    "minReplicas": a.min,
                    "maxReplicas": a.max,
                    "metrics": [metric],
                    "behavior": {
                        "scaleUp": {"stabilizationWindowSeconds": secs(Some(a.scale_up_after), 0, 0)},
                        "scaleDown": {"stabilizationWindowSeconds": secs(Some(a.scale_down_after), 0, 0)},
                    },
                },
            }),
        );
    }
    Ok(())
}

/// Compose networks as NetworkPolicies: a service's pods admit traffic from the services
/// that share one of its networks (and from anywhere on its published ports); a service
/// only on internal networks may only reach those services (and the cluster's DNS).
/// A health check's handler as a probe's: exec of its command, or the httpGet or
/// tcpSocket probe `kube play` made of one. None for a disabled check.
fn handler(svc: &str, h: &Healthcheck) -> Result<Option<Value>, KubeError> {
    if h.disable {
        return Ok(None);
    }
    match &h.probe {
        Some(NetProbe::HttpGet {
            host,
            port,
            path,
            headers,
        }) => {
            let mut g = json!({"path": path, "port": port});
            if let Some(h) = host {
                g["host"] = json!(h);
            }
            if !headers.is_empty() {
                g["httpHeaders"] = headers
                    .iter()
                    .map(|(k, v)| json!({"name": k, "value": v}))
                    .collect();
            }
            return Ok(Some(json!({"httpGet": g})));
        }
        Some(NetProbe::TcpSocket { host, port }) => {
            let mut t = json!({"port": port});
            if let Some(h) = host {
                t["host"] = json!(h);
            }
            return Ok(Some(json!({"tcpSocket": t})));
        }
        None => {}
    }
    let cmd = match h.test.first().map(String::as_str) {
        Some("CMD") => h.test[1..].to_vec(),
        Some("CMD-SHELL") => vec!["/bin/sh".into(), "-c".into(), h.test[1..].join(" ")],
        Some("NONE") | None => return Ok(None),
        Some(t) => {
            return Err(unsupported(
                svc,
                "healthcheck.test",
                format!("{t} is neither CMD nor CMD-SHELL"),
            ))
        }
    };
    Ok(Some(json!({"exec": {"command": cmd}})))
}

/// Probes from the healthcheck: readiness (out of the Service's endpoints) and liveness
/// (restarted), as the compose supervisor does; start_period as a startup probe that
/// holds both off. A separate readiness check (`kube play` of a readinessProbe beside a
/// different livenessProbe) is the readinessProbe. The warnings are returned.
fn probes(
    svc: &str,
    health: Option<&Healthcheck>,
    readiness: Option<&Healthcheck>,
    ctr: &mut Map<String, Value>,
) -> Result<Vec<String>, KubeError> {
    let mut warnings = vec![];
    let timed = |h: &Healthcheck, hd: Value| {
        let mut p = hd;
        p["periodSeconds"] = json!(secs(h.interval, 30, 1));
        p["timeoutSeconds"] = json!(secs(h.timeout, 30, 1));
        p["failureThreshold"] = json!(h.retries.unwrap_or(3).max(1));
        p
    };
    if let Some(h) = health {
        if let Some(hd) = handler(svc, h)? {
            if h.interval.is_some_and(|d| d < Duration::from_secs(1)) {
                warnings.push(
                    "healthcheck.interval: below a second; kubernetes probes every second at most"
                        .to_string(),
                );
            }
            let probe = timed(h, hd.clone());
            ctr.insert("readinessProbe".into(), probe.clone());
            ctr.insert("livenessProbe".into(), probe);
            if let Some(sp) = h.start_period.filter(|d| !d.is_zero()) {
                let every = secs(h.start_interval.or(h.interval), 5, 1);
                let tries = (secs(Some(sp), 0, 1) + every - 1) / every;
                let mut p = hd;
                p["periodSeconds"] = json!(every);
                p["timeoutSeconds"] = json!(secs(h.timeout, 30, 1));
                p["failureThreshold"] = json!(tries + h.retries.unwrap_or(3) as i64);
                ctr.insert("startupProbe".into(), p);
            }
        }
    }
    if let Some(r) = readiness {
        if let Some(hd) = handler(svc, r)? {
            let mut p = timed(r, hd);
            if let Some(n) = r.success_threshold.filter(|n| *n > 1) {
                p["successThreshold"] = json!(n);
            }
            if let Some(d) = r.start_period.filter(|d| !d.is_zero()) {
                p["initialDelaySeconds"] = json!(secs(Some(d), 0, 0));
            }
            ctr.insert("readinessProbe".into(), p);
        }
    }
    Ok(warnings)
}

fn network_policies(c: &mut Ctx, names: &[String]) -> Result<(), KubeError> {
    let project = c.project;
    for n in names {
        let s = &project.services[n];
        if s.network_mode.as_deref() == Some("host") {
            continue;
        }
        let name = kname("service", n)?;
        let mut peers = BTreeSet::new();
        for (other_name, other) in &project.services {
            if other.networks.keys().any(|k| s.networks.contains_key(k)) {
                peers.insert(kname("service", other_name)?);
            }
        }
        let peers: Vec<String> = peers.into_iter().collect();
        let from_peers = json!({"podSelector": {
            "matchLabels": {PART_OF_LABEL: c.pname},
            "matchExpressions": [{"key": NAME_LABEL, "operator": "In", "values": peers}],
        }});
        let mut ingress = vec![json!({"from": [from_peers.clone()]})];
        let published: Vec<Value> = s
            .ports
            .iter()
            .filter(|p| p.published.is_some())
            .map(|p| json!({"port": p.target, "protocol": protocol(&p.protocol)}))
            .collect();
        if !published.is_empty() {
            ingress.push(json!({"ports": published}));
        }
        let mut spec = json!({
            "podSelector": {"matchLabels": labels(&c.pname, &name)},
            "policyTypes": ["Ingress"],
            "ingress": ingress,
        });
        let internal_only = !s.networks.is_empty()
            && s.networks
                .keys()
                .all(|k| project.networks.get(k).is_some_and(|d| d.internal));
        if internal_only {
            spec["policyTypes"] = json!(["Ingress", "Egress"]);
            spec["egress"] = json!([
                {"to": [from_peers]},
                {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
            ]);
        }
        let pname = format!("{name}-networks");
        c.push(
            "NetworkPolicy",
            &pname,
            json!({
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": pname, "labels": labels(&c.pname, &name)},
                "spec": spec,
            }),
        );
    }
    Ok(())
}

/// The manifests as one YAML stream (`---` between documents).
pub fn to_yaml(g: &Generated) -> String {
    let mut out = String::new();
    for m in &g.manifests {
        out.push_str("---\n");
        out.push_str(&serde_norway::to_string(&m.value).unwrap_or_default());
    }
    out
}

#[cfg(test)]
mod tests;
