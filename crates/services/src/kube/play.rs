//! `berth kube play`: Kubernetes manifests run on one host (issue 15 item 4), as the
//! services crate's project model, which the same supervisor as `compose up -d` runs.
//!
//! Each document is first deserialized into its k8s-openapi type (a field the API does
//! not have, or has with another type, is an error), then checked against what play
//! supports (a field outside it is an error naming the kind, the object and the field),
//! and only then translated: nothing starts unless the whole stream is accepted.
//!
//! Mapping: a Deployment or a Pod is a compose service (one container per pod); a Service
//! gives that workload its ports (ClusterIP: the VIP of the supervisor's load balancer;
//! headless: dnsrr; NodePort/LoadBalancer: published host ports); ConfigMaps and Secrets
//! become environment and read-only files; a PersistentVolumeClaim a named volume; a
//! HorizontalPodAutoscaler the supervisor's autoscaler.

use super::{KubeError, PART_OF_LABEL};
use crate::compose::{
    Autoscale, AutoscaleTarget, EndpointMode, HealthRole, Healthcheck, NetworkDef, PortSpec,
    Project, RestartCondition, RestartPolicySpec, Service, ServiceNetwork, ServiceVolume,
    VolumeDef, VolumeKind,
};
use berth_engine::options::NetProbe;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, Secret, Service as KService,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One object of the stream, as given (JSON) and named.
#[derive(Debug, Clone)]
struct Obj {
    kind: String,
    name: String,
    v: Value,
}

/// A file play writes for a ConfigMap or Secret volume (relative to the files dir).
#[derive(Debug, Clone, PartialEq)]
pub struct PlayFile {
    pub path: PathBuf,
    pub data: Vec<u8>,
    pub mode: u32,
}

#[derive(Debug, Clone)]
pub struct Played {
    pub project: Project,
    /// Files of ConfigMap and Secret volumes, to write under the files dir before `up`.
    pub files: Vec<PlayFile>,
    pub warnings: Vec<String>,
}

fn bad(kind: &str, name: &str, field: &str, reason: impl Into<String>) -> KubeError {
    KubeError::Play {
        kind: kind.into(),
        name: name.into(),
        field: field.into(),
        reason: reason.into(),
    }
}

/// The documents of a YAML stream (empty documents skipped).
fn documents(yaml: &str) -> Result<Vec<Value>, KubeError> {
    let mut v = vec![];
    for (i, d) in serde_norway::Deserializer::from_str(yaml).enumerate() {
        let doc = Value::deserialize(d)
            .map_err(|e| KubeError::Parse(format!("document {}: {e}", i + 1)))?;
        if !doc.is_null() {
            v.push(doc);
        }
    }
    Ok(v)
}

/// `v` as the API's type `T`: a type mismatch fails the deserialization, a field `T`
/// does not have is found by comparing `v` with `T` serialized back.
fn strict<T: DeserializeOwned + Serialize>(o: &Obj) -> Result<T, KubeError> {
    let t: T = serde_path_to_error::deserialize(o.v.clone()).map_err(|e| {
        let path = e.path().to_string();
        bad(
            &o.kind,
            &o.name,
            &path,
            format!("not the API's shape: {}", e.into_inner()),
        )
    })?;
    let back = serde_json::to_value(&t).map_err(|e| KubeError::Parse(e.to_string()))?;
    if let Some(path) = unknown_field(&o.v, &back, "") {
        return Err(bad(&o.kind, &o.name, &path, "no such field in the API"));
    }
    Ok(t)
}

/// The first path of `ours` that the API's `back` dropped.
fn unknown_field(ours: &Value, back: &Value, path: &str) -> Option<String> {
    match (ours, back) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match b.get(k) {
                    Some(bv) => {
                        if let Some(x) = unknown_field(v, bv, &p) {
                            return Some(x);
                        }
                    }
                    // The API leaves out nulls and some empty values when serializing.
                    None if is_empty(v) => {}
                    None => return Some(p),
                }
            }
            None
        }
        (Value::Array(a), Value::Array(b)) => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| unknown_field(x, y, &format!("{path}[{i}]"))),
        _ => None,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Checks that the object `v` at `path` has only the `allowed` keys.
fn only(o: &Obj, v: &Value, path: &str, allowed: &[&str]) -> Result<(), KubeError> {
    if let Value::Object(m) = v {
        for (k, x) in m {
            if !allowed.contains(&k.as_str()) && !x.is_null() {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                return Err(bad(
                    &o.kind,
                    &o.name,
                    &p,
                    "not supported by berth kube play",
                ));
            }
        }
    }
    Ok(())
}

fn get<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, k| &v[k])
}

fn s<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    get(v, path).as_str()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `"32Mi"`, `"1G"`, `"1048576"` in bytes.
pub fn memory(q: &str) -> Option<u64> {
    let units: [(&str, u64); 12] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("Pi", 1 << 50),
        ("Ei", 1 << 60),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
        ("P", 1_000_000_000_000_000),
        ("E", 1_000_000_000_000_000_000),
    ];
    for (u, m) in units {
        if let Some(n) = q.strip_suffix(u) {
            let f: f64 = n.parse().ok()?;
            return (f >= 0.0).then_some((f * m as f64) as u64);
        }
    }
    let f: f64 = q.parse().ok()?;
    (f >= 0.0).then_some(f as u64)
}

/// `"500m"`, `"0.5"`, `"2"` in cpus.
pub fn cpus(q: &str) -> Option<f64> {
    let f = match q.strip_suffix('m') {
        Some(n) => n.parse::<f64>().ok()? / 1000.0,
        None => q.parse().ok()?,
    };
    (f > 0.0).then_some(f)
}

/// The project's name: `name`, else the `app.kubernetes.io/part-of` label all objects
/// share (what `kube generate` sets), else `fallback` (the file's stem).
fn project_name(objs: &[Obj], name: Option<&str>, fallback: &str) -> Result<String, KubeError> {
    if let Some(n) = name {
        return Ok(n.to_string());
    }
    let mut parts = objs
        .iter()
        .map(|o| o.v["metadata"]["labels"][PART_OF_LABEL].as_str());
    if let Some(Some(first)) = parts.next() {
        if parts.all(|p| p == Some(first)) {
            return Ok(first.to_string());
        }
    }
    let n: String = fallback
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .collect();
    let n = n.trim_start_matches(['-', '_']).to_string();
    if n.is_empty() {
        return Err(KubeError::Parse(format!(
            "no project name from {fallback:?}: use --project-name"
        )));
    }
    Ok(n)
}

/// The project name play uses for `yaml` (for `--down` on the same file).
pub fn name_of(yaml: &str, name: Option<&str>, fallback: &str) -> Result<String, KubeError> {
    let objs = objects(yaml)?;
    project_name(&objs, name, fallback)
}

fn objects(yaml: &str) -> Result<Vec<Obj>, KubeError> {
    let mut objs = vec![];
    for (i, v) in documents(yaml)?.into_iter().enumerate() {
        let kind = v["kind"]
            .as_str()
            .ok_or_else(|| KubeError::Parse(format!("document {}: no kind", i + 1)))?
            .to_string();
        let name = s(&v, "metadata.name")
            .ok_or_else(|| {
                KubeError::Parse(format!("document {} ({kind}): no metadata.name", i + 1))
            })?
            .to_string();
        if kind == "List" {
            return Err(bad(
                &kind,
                &name,
                "kind",
                "a List is not supported: give its items as documents",
            ));
        }
        objs.push(Obj { kind, name, v });
    }
    Ok(objs)
}

struct Play {
    pname: String,
    files_dir: PathBuf,
    config_maps: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    secrets: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    claims: BTreeMap<String, ()>,
    /// Workload name → its template labels.
    labels: BTreeMap<String, BTreeMap<String, String>>,
    out: Played,
}

/// Translates the manifests of `yaml` into a project. `files_dir` is where the caller
/// writes `Played::files` (the bind mounts' sources); `name` is --project-name.
pub fn play(
    yaml: &str,
    name: Option<&str>,
    fallback: &str,
    files_dir: &Path,
) -> Result<Played, KubeError> {
    let objs = objects(yaml)?;
    let pname = project_name(&objs, name, fallback)?;
    let mut p = Play {
        files_dir: files_dir.to_path_buf(),
        config_maps: BTreeMap::new(),
        secrets: BTreeMap::new(),
        claims: BTreeMap::new(),
        labels: BTreeMap::new(),
        out: Played {
            project: Project {
                name: pname.clone(),
                working_dir: files_dir.to_path_buf(),
                config_files: vec![],
                services: BTreeMap::new(),
                networks: BTreeMap::new(),
                volumes: BTreeMap::new(),
                disabled: BTreeMap::new(),
                environment: BTreeMap::new(),
                warnings: vec![],
                secrets: BTreeMap::new(),
                configs: BTreeMap::new(),
            },
            files: vec![],
            warnings: vec![],
        },
        pname,
    };
    // Every object is the API's first; data objects before the workloads that use them.
    for o in &objs {
        match o.kind.as_str() {
            "ConfigMap" => {
                let c: ConfigMap = strict(o)?;
                only(o, &o.v, "", &["apiVersion", "kind", "metadata", "data", "binaryData"])?;
                let mut d: BTreeMap<String, Vec<u8>> = c
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.into_bytes()))
                    .collect();
                for (k, v) in c.binary_data.unwrap_or_default() {
                    d.insert(k, v.0);
                }
                p.config_maps.insert(o.name.clone(), d);
            }
            "Secret" => {
                let c: Secret = strict(o)?;
                only(o, &o.v, "", &["apiVersion", "kind", "metadata", "data", "stringData", "type"])?;
                if let Some(t) = c.type_.as_deref().filter(|t| *t != "Opaque") {
                    return Err(bad(&o.kind, &o.name, "type", format!("{t}: only Opaque secrets are supported")));
                }
                let mut d: BTreeMap<String, Vec<u8>> = c
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0))
                    .collect();
                for (k, v) in c.string_data.unwrap_or_default() {
                    d.insert(k, v.into_bytes());
                }
                p.secrets.insert(o.name.clone(), d);
            }
            "PersistentVolumeClaim" => {
                strict::<PersistentVolumeClaim>(o)?;
                only(o, &o.v, "", &["apiVersion", "kind", "metadata", "spec"])?;
                only(o, &o.v["spec"], "spec", &["accessModes", "resources", "volumeMode"])?;
                if let Some(m) = s(&o.v, "spec.volumeMode").filter(|m| *m != "Filesystem") {
                    return Err(bad(&o.kind, &o.name, "spec.volumeMode", format!("{m}: only Filesystem")));
                }
                p.claims.insert(o.name.clone(), ());
                p.out.project.volumes.insert(
                    o.name.clone(),
                    VolumeDef {
                        name: o.name.clone(),
                        ..Default::default()
                    },
                );
            }
            "Deployment" => {
                strict::<Deployment>(o)?;
            }
            "Pod" => {
                strict::<Pod>(o)?;
            }
            "Service" => {
                strict::<KService>(o)?;
            }
            "HorizontalPodAutoscaler" => {
                strict::<HorizontalPodAutoscaler>(o)?;
            }
            "NetworkPolicy" => {
                strict::<NetworkPolicy>(o)?;
            }
            k => {
                return Err(bad(
                    k,
                    &o.name,
                    "kind",
                    format!("kind {k} is not supported (Pod, Deployment, Service, ConfigMap, Secret, PersistentVolumeClaim, HorizontalPodAutoscaler, NetworkPolicy are)"),
                ))
            }
        }
    }
    for o in &objs {
        match o.kind.as_str() {
            "Deployment" => p.deployment(o)?,
            "Pod" => p.pod(o)?,
            _ => {}
        }
    }
    for o in objs.iter().filter(|o| o.kind == "Service") {
        p.service(o)?;
    }
    for o in objs.iter().filter(|o| o.kind == "HorizontalPodAutoscaler") {
        p.hpa(o)?;
    }
    if p.out.project.services.is_empty() {
        return Err(KubeError::Parse("no Pod or Deployment to run".into()));
    }
    let policies: Vec<&Obj> = objs.iter().filter(|o| o.kind == "NetworkPolicy").collect();
    if policies.is_empty() {
        let pn = p.pname.clone();
        p.out.project.networks.insert(
            "default".into(),
            NetworkDef {
                name: format!("{pn}_default"),
                ..Default::default()
            },
        );
    } else {
        p.network_policies(&policies)?;
    }
    Ok(p.out)
}

fn labels_of(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

impl Play {
    fn deployment(&mut self, o: &Obj) -> Result<(), KubeError> {
        only(o, &o.v, "", &["apiVersion", "kind", "metadata", "spec"])?;
        let spec = &o.v["spec"];
        // The strategy matters to updates of a running Deployment; play starts afresh
        // (--replace is down, then play).
        only(
            o,
            spec,
            "spec",
            &[
                "replicas",
                "selector",
                "template",
                "strategy",
                "revisionHistoryLimit",
                "progressDeadlineSeconds",
                "minReadySeconds",
            ],
        )?;
        if spec["minReadySeconds"].as_i64().is_some_and(|n| n > 0) {
            return Err(bad(
                &o.kind,
                &o.name,
                "spec.minReadySeconds",
                "not supported",
            ));
        }
        only(o, &spec["selector"], "spec.selector", &["matchLabels"])?;
        let tl = labels_of(get(spec, "template.metadata.labels"));
        for (k, v) in labels_of(get(spec, "selector.matchLabels")) {
            if tl.get(&k) != Some(&v) {
                return Err(bad(
                    &o.kind,
                    &o.name,
                    "spec.selector",
                    format!("{k}={v} does not select the template's labels"),
                ));
            }
        }
        let replicas = spec["replicas"].as_u64().unwrap_or(1) as u32;
        let mut svc = self.pod_spec(o, &spec["template"], "spec.template", true)?;
        svc.deploy.replicas = Some(replicas);
        self.add(o, svc, tl)
    }

    fn pod(&mut self, o: &Obj) -> Result<(), KubeError> {
        only(o, &o.v, "", &["apiVersion", "kind", "metadata", "spec"])?;
        let mut svc = self.pod_spec(o, &o.v, "", false)?;
        svc.deploy.replicas = Some(1);
        let l = labels_of(get(&o.v, "metadata.labels"));
        self.add(o, svc, l)
    }

    fn add(
        &mut self,
        o: &Obj,
        mut svc: Service,
        l: BTreeMap<String, String>,
    ) -> Result<(), KubeError> {
        if self.out.project.services.contains_key(&o.name) {
            return Err(bad(
                &o.kind,
                &o.name,
                "metadata.name",
                "a second Pod or Deployment of this name",
            ));
        }
        svc.name = o.name.clone();
        self.labels.insert(o.name.clone(), l);
        self.out.project.services.insert(o.name.clone(), svc);
        Ok(())
    }

    /// A pod template (`{metadata, spec}`) at `at` as a compose service.
    fn pod_spec(
        &mut self,
        o: &Obj,
        t: &Value,
        at: &str,
        deployment: bool,
    ) -> Result<Service, KubeError> {
        let at = |k: &str| {
            if at.is_empty() {
                k.to_string()
            } else {
                format!("{at}.{k}")
            }
        };
        let meta = &t["metadata"];
        let ps = &t["spec"];
        only(
            o,
            meta,
            &at("metadata"),
            &["name", "labels", "annotations", "namespace", "generateName"],
        )?;
        only(
            o,
            ps,
            &at("spec"),
            &[
                "containers",
                "volumes",
                "restartPolicy",
                "hostNetwork",
                "hostPID",
                "hostIPC",
                "hostname",
                "terminationGracePeriodSeconds",
                "dnsConfig",
                "hostAliases",
                "runtimeClassName",
                "securityContext",
                "enableServiceLinks",
                "dnsPolicy",
            ],
        )?;
        let mut svc = Service {
            labels: labels_of(&meta["annotations"]),
            ..Default::default()
        };
        let restart = s(ps, "restartPolicy").unwrap_or("Always");
        svc.restart = Some(match (restart, deployment) {
            ("Always", _) => "always".into(),
            ("OnFailure", false) => "on-failure".into(),
            ("Never", false) => "no".into(),
            (r, _) => {
                return Err(bad(
                    &o.kind,
                    &o.name,
                    &at("spec.restartPolicy"),
                    format!("{r}: a Deployment's pods restart Always"),
                ))
            }
        });
        svc.deploy.restart_policy = Some(RestartPolicySpec {
            condition: match restart {
                "OnFailure" => RestartCondition::OnFailure,
                "Never" => RestartCondition::None,
                _ => RestartCondition::Any,
            },
            ..Default::default()
        });
        if ps["hostPID"].as_bool() == Some(true) {
            svc.namespaces.pid = Some("host".into());
        }
        if ps["hostIPC"].as_bool() == Some(true) {
            svc.namespaces.ipc = Some("host".into());
        }
        if ps["hostNetwork"].as_bool() == Some(true) {
            svc.network_mode = Some("host".into());
        } else {
            svc.networks
                .insert("default".into(), ServiceNetwork::default());
        }
        if let Some(dp) =
            s(ps, "dnsPolicy").filter(|d| *d != "ClusterFirst" && *d != "ClusterFirstWithHostNet")
        {
            return Err(bad(
                &o.kind,
                &o.name,
                &at("spec.dnsPolicy"),
                format!("{dp}: only ClusterFirst"),
            ));
        }
        if let Some(rc) = s(ps, "runtimeClassName") {
            self.out.warnings.push(format!(
                "{} {}: runtimeClassName {rc}: berth runs its own runtime",
                o.kind, o.name
            ));
        }
        svc.hostname = s(ps, "hostname").map(str::to_string);
        if let Some(g) = ps["terminationGracePeriodSeconds"].as_u64() {
            svc.stop_grace_period = Some(Duration::from_secs(g));
        }
        let dc = &ps["dnsConfig"];
        only(
            o,
            dc,
            &at("spec.dnsConfig"),
            &["nameservers", "searches", "options"],
        )?;
        svc.dns = strings(&dc["nameservers"]);
        svc.dns_search = strings(&dc["searches"]);
        for opt in dc["options"].as_array().into_iter().flatten() {
            let n = opt["name"].as_str().unwrap_or_default();
            svc.dns_opt.push(match opt["value"].as_str() {
                Some(v) => format!("{n}:{v}"),
                None => n.to_string(),
            });
        }
        for h in ps["hostAliases"].as_array().into_iter().flatten() {
            let ip = h["ip"].as_str().unwrap_or_default();
            for n in strings(&h["hostnames"]) {
                svc.extra_hosts.push(format!("{n}:{ip}"));
            }
        }
        let psc = &ps["securityContext"];
        only(
            o,
            psc,
            &at("spec.securityContext"),
            &[
                "sysctls",
                "supplementalGroups",
                "runAsUser",
                "runAsGroup",
                "seccompProfile",
            ],
        )?;
        for sc in psc["sysctls"].as_array().into_iter().flatten() {
            svc.sysctls.insert(
                sc["name"].as_str().unwrap_or_default().into(),
                sc["value"].as_str().unwrap_or_default().into(),
            );
        }
        svc.group_add = psc["supplementalGroups"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|g| g.to_string())
            .collect();

        // The container: one per pod (a compose service is one container).
        let ctrs = ps["containers"].as_array().cloned().unwrap_or_default();
        if ctrs.len() != 1 {
            return Err(bad(
                &o.kind,
                &o.name,
                &at("spec.containers"),
                format!(
                    "{} containers: berth kube play runs pods of one container",
                    ctrs.len()
                ),
            ));
        }
        let c = &ctrs[0];
        let cat = at("spec.containers[0]");
        let cat = |k: &str| format!("{cat}.{k}");
        only(
            o,
            c,
            &at("spec.containers[0]"),
            &[
                "name",
                "image",
                "command",
                "args",
                "env",
                "envFrom",
                "ports",
                "resources",
                "securityContext",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
                "volumeMounts",
                "workingDir",
                "imagePullPolicy",
                "tty",
                "stdin",
                "terminationMessagePath",
                "terminationMessagePolicy",
            ],
        )?;
        svc.image = s(c, "image")
            .ok_or_else(|| bad(&o.kind, &o.name, &cat("image"), "missing"))?
            .to_string();
        if c["command"].is_array() {
            svc.entrypoint = Some(strings(&c["command"]));
        }
        if c["args"].is_array() {
            svc.command = Some(strings(&c["args"]));
        }
        svc.working_dir = s(c, "workingDir").map(str::to_string);
        svc.tty = c["tty"].as_bool() == Some(true);
        svc.stdin_open = c["stdin"].as_bool() == Some(true);
        svc.pull_policy = match s(c, "imagePullPolicy") {
            None => None,
            Some("Always") => Some("always".into()),
            Some("Never") => Some("never".into()),
            Some(_) => Some("missing".into()),
        };
        // Environment: envFrom first, env wins (the kubelet's order).
        for (i, e) in c["envFrom"].as_array().into_iter().flatten().enumerate() {
            let f = cat(&format!("envFrom[{i}]"));
            let prefix = s(e, "prefix").unwrap_or_default();
            let (src, opt) = match (s(e, "configMapRef.name"), s(e, "secretRef.name")) {
                (Some(n), None) => (
                    self.config_maps.get(n),
                    e["configMapRef"]["optional"].as_bool(),
                ),
                (None, Some(n)) => (self.secrets.get(n), e["secretRef"]["optional"].as_bool()),
                _ => {
                    return Err(bad(
                        &o.kind,
                        &o.name,
                        &f,
                        "neither configMapRef nor secretRef",
                    ))
                }
            };
            match src {
                Some(d) => {
                    for (k, v) in d {
                        svc.environment
                            .insert(format!("{prefix}{k}"), Some(text(&o.kind, &o.name, &f, v)?));
                    }
                }
                None if opt == Some(true) => {}
                None => {
                    return Err(bad(
                        &o.kind,
                        &o.name,
                        &f,
                        "its ConfigMap or Secret is not in the file",
                    ))
                }
            }
        }
        for (i, e) in c["env"].as_array().into_iter().flatten().enumerate() {
            let f = cat(&format!("env[{i}]"));
            only(o, e, &f, &["name", "value", "valueFrom"])?;
            let n = s(e, "name").unwrap_or_default().to_string();
            if let Some(v) = s(e, "value") {
                if v.contains("$(") {
                    return Err(bad(
                        &o.kind,
                        &o.name,
                        &format!("{f}.value"),
                        "$(VAR) references are not supported",
                    ));
                }
                svc.environment.insert(n, Some(v.to_string()));
                continue;
            }
            let vf = &e["valueFrom"];
            if vf.is_null() {
                svc.environment.insert(n, Some(String::new()));
                continue;
            }
            only(
                o,
                vf,
                &format!("{f}.valueFrom"),
                &["configMapKeyRef", "secretKeyRef"],
            )?;
            let (d, sel) = if vf["configMapKeyRef"].is_object() {
                (&self.config_maps, &vf["configMapKeyRef"])
            } else {
                (&self.secrets, &vf["secretKeyRef"])
            };
            let key = s(sel, "key").unwrap_or_default();
            match d
                .get(s(sel, "name").unwrap_or_default())
                .and_then(|m| m.get(key))
            {
                Some(v) => {
                    svc.environment
                        .insert(n, Some(text(&o.kind, &o.name, &f, v)?));
                }
                None if sel["optional"].as_bool() == Some(true) => {}
                None => {
                    return Err(bad(
                        &o.kind,
                        &o.name,
                        &format!("{f}.valueFrom"),
                        format!(
                            "key {key} of {} is not in the file",
                            s(sel, "name").unwrap_or_default()
                        ),
                    ))
                }
            }
        }
        // Container ports are informational in Kubernetes; a Service makes them reachable.
        for (i, pt) in c["ports"].as_array().into_iter().flatten().enumerate() {
            only(
                o,
                pt,
                &cat(&format!("ports[{i}]")),
                &["containerPort", "protocol", "name"],
            )?;
        }
        let r = &c["resources"];
        only(o, r, &cat("resources"), &["limits", "requests"])?;
        for (k, at2) in [("limits", true), ("requests", false)] {
            only(
                o,
                &r[k],
                &cat(&format!("resources.{k}")),
                &["cpu", "memory"],
            )?;
            if let Some(q) = s(r, &format!("{k}.cpu")) {
                let n = cpus(q).ok_or_else(|| {
                    bad(
                        &o.kind,
                        &o.name,
                        &cat(&format!("resources.{k}.cpu")),
                        format!("{q} is not a cpu quantity"),
                    )
                })?;
                if at2 {
                    svc.deploy.resources.limits.cpus = Some(n);
                } else {
                    svc.deploy.resources.reservations.cpus = Some(n);
                }
            }
            if let Some(q) = s(r, &format!("{k}.memory")) {
                let n = memory(q).ok_or_else(|| {
                    bad(
                        &o.kind,
                        &o.name,
                        &cat(&format!("resources.{k}.memory")),
                        format!("{q} is not a memory quantity"),
                    )
                })?;
                if at2 {
                    svc.deploy.resources.limits.memory = Some(n);
                } else {
                    svc.deploy.resources.reservations.memory = Some(n);
                }
            }
        }
        // Security: the container's context over the pod's.
        let sc = &c["securityContext"];
        only(
            o,
            sc,
            &cat("securityContext"),
            &[
                "privileged",
                "readOnlyRootFilesystem",
                "runAsUser",
                "runAsGroup",
                "capabilities",
                "allowPrivilegeEscalation",
                "seccompProfile",
            ],
        )?;
        svc.privileged = sc["privileged"].as_bool() == Some(true);
        svc.read_only = sc["readOnlyRootFilesystem"].as_bool() == Some(true);
        let uid = sc["runAsUser"].as_i64().or(psc["runAsUser"].as_i64());
        let gid = sc["runAsGroup"].as_i64().or(psc["runAsGroup"].as_i64());
        svc.user = match (uid, gid) {
            (Some(u), Some(g)) => Some(format!("{u}:{g}")),
            (Some(u), None) => Some(u.to_string()),
            (None, Some(_)) => {
                return Err(bad(
                    &o.kind,
                    &o.name,
                    &cat("securityContext.runAsGroup"),
                    "needs runAsUser",
                ))
            }
            (None, None) => None,
        };
        only(
            o,
            &sc["capabilities"],
            &cat("securityContext.capabilities"),
            &["add", "drop"],
        )?;
        svc.cap_add = strings(&sc["capabilities"]["add"]);
        svc.cap_drop = strings(&sc["capabilities"]["drop"]);
        if sc["allowPrivilegeEscalation"].as_bool() == Some(false) {
            svc.security_opt.push("no-new-privileges:true".into());
        }
        let seccomp = if sc["seccompProfile"].is_object() {
            &sc["seccompProfile"]
        } else {
            &psc["seccompProfile"]
        };
        match s(seccomp, "type") {
            None | Some("RuntimeDefault") => {}
            Some("Unconfined") => svc.security_opt.push("seccomp=unconfined".into()),
            Some(t) => {
                return Err(bad(
                    &o.kind,
                    &o.name,
                    &cat("securityContext.seccompProfile"),
                    format!("{t} profiles are not supported"),
                ))
            }
        }
        (svc.healthcheck, svc.health_role, svc.readiness) = probes(o, c, &cat(""))?;
        self.volumes(o, ps, c, &at, &mut svc)?;
        Ok(svc)
    }

    fn volumes(
        &mut self,
        o: &Obj,
        ps: &Value,
        c: &Value,
        at: &dyn Fn(&str) -> String,
        svc: &mut Service,
    ) -> Result<(), KubeError> {
        let mut by_name: BTreeMap<String, (usize, &Value)> = BTreeMap::new();
        for (i, v) in ps["volumes"].as_array().into_iter().flatten().enumerate() {
            by_name.insert(s(v, "name").unwrap_or_default().to_string(), (i, v));
        }
        for (i, m) in c["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let f = at(&format!("spec.containers[0].volumeMounts[{i}]"));
            only(o, m, &f, &["name", "mountPath", "readOnly"])?;
            let vn = s(m, "name").unwrap_or_default();
            let target = s(m, "mountPath").unwrap_or_default().to_string();
            let ro = m["readOnly"].as_bool() == Some(true);
            let (vi, v) = by_name.get(vn).copied().ok_or_else(|| {
                bad(
                    &o.kind,
                    &o.name,
                    &f,
                    format!("volume {vn} is not in spec.volumes"),
                )
            })?;
            let vf = at(&format!("spec.volumes[{vi}]"));
            let keys: Vec<&str> = v
                .as_object()
                .map(|m| {
                    m.keys()
                        .map(String::as_str)
                        .filter(|k| *k != "name")
                        .collect()
                })
                .unwrap_or_default();
            let mut sv = ServiceVolume {
                kind: VolumeKind::Volume,
                source: None,
                target,
                read_only: ro,
                propagation: None,
                create_host_path: false,
                selinux: None,
                nocopy: false,
                tmpfs_size: None,
                tmpfs_mode: None,
            };
            match keys.as_slice() {
                ["persistentVolumeClaim"] => {
                    let claim = s(v, "persistentVolumeClaim.claimName").unwrap_or_default();
                    if !self.claims.contains_key(claim) {
                        return Err(bad(
                            &o.kind,
                            &o.name,
                            &vf,
                            format!("claim {claim} is not in the file"),
                        ));
                    }
                    sv.source = Some(claim.to_string());
                    sv.read_only |= v["persistentVolumeClaim"]["readOnly"].as_bool() == Some(true);
                }
                ["emptyDir"] => {
                    only(
                        o,
                        &v["emptyDir"],
                        &format!("{vf}.emptyDir"),
                        &["medium", "sizeLimit"],
                    )?;
                    if s(v, "emptyDir.medium") == Some("Memory") {
                        sv.kind = VolumeKind::Tmpfs;
                        sv.tmpfs_size = s(v, "emptyDir.sizeLimit").and_then(memory);
                    }
                }
                ["hostPath"] => {
                    sv.kind = VolumeKind::Bind;
                    sv.source = s(v, "hostPath.path").map(str::to_string);
                    match s(v, "hostPath.type").unwrap_or("") {
                        "" | "Directory" | "File" => {}
                        "DirectoryOrCreate" => sv.create_host_path = true,
                        t => {
                            return Err(bad(
                                &o.kind,
                                &o.name,
                                &format!("{vf}.hostPath.type"),
                                format!("{t} is not supported"),
                            ))
                        }
                    }
                }
                [k @ ("configMap" | "secret")] => {
                    let secret = *k == "secret";
                    let src = &v[*k];
                    only(
                        o,
                        src,
                        &format!("{vf}.{k}"),
                        &["name", "secretName", "items", "defaultMode", "optional"],
                    )?;
                    let name = if secret {
                        s(src, "secretName")
                    } else {
                        s(src, "name")
                    }
                    .unwrap_or_default();
                    let data = if secret {
                        self.secrets.get(name)
                    } else {
                        self.config_maps.get(name)
                    }
                    .ok_or_else(|| {
                        bad(
                            &o.kind,
                            &o.name,
                            &vf,
                            format!("{k} {name} is not in the file"),
                        )
                    })?
                    .clone();
                    let mode = src["defaultMode"].as_u64().unwrap_or(0o644) as u32;
                    // One directory per (workload, volume): the files the kubelet would project.
                    let dir = PathBuf::from(&o.name).join(vn);
                    let items: Vec<(String, String, u32)> = match src["items"].as_array() {
                        Some(items) => items
                            .iter()
                            .map(|it| {
                                (
                                    s(it, "key").unwrap_or_default().to_string(),
                                    s(it, "path").unwrap_or_default().to_string(),
                                    it["mode"].as_u64().map_or(mode, |m| m as u32),
                                )
                            })
                            .collect(),
                        None => data.keys().map(|k| (k.clone(), k.clone(), mode)).collect(),
                    };
                    for (key, path, mode) in items {
                        let d = data.get(&key).ok_or_else(|| {
                            bad(
                                &o.kind,
                                &o.name,
                                &format!("{vf}.{k}.items"),
                                format!("key {key} is not in {name}"),
                            )
                        })?;
                        if path.split('/').any(|c| c == ".." || c.is_empty()) {
                            return Err(bad(
                                &o.kind,
                                &o.name,
                                &format!("{vf}.{k}.items"),
                                format!("path {path:?}"),
                            ));
                        }
                        self.out.files.push(PlayFile {
                            path: dir.join(&path),
                            data: d.clone(),
                            mode,
                        });
                    }
                    if !self.out.files.iter().any(|f| f.path.starts_with(&dir)) {
                        // An empty ConfigMap still mounts (an empty directory).
                        self.out.files.push(PlayFile {
                            path: dir.join(".empty"),
                            data: vec![],
                            mode: 0o644,
                        });
                    }
                    sv.kind = VolumeKind::Bind;
                    sv.source = Some(self.files_dir.join(&dir).to_string_lossy().into_owned());
                    sv.read_only = true;
                }
                _ => {
                    return Err(bad(&o.kind, &o.name, &vf, format!("volume type {} is not supported (persistentVolumeClaim, emptyDir, hostPath, configMap, secret are)", keys.join(","))));
                }
            }
            svc.volumes.push(sv);
        }
        Ok(())
    }

    fn service(&mut self, o: &Obj) -> Result<(), KubeError> {
        only(o, &o.v, "", &["apiVersion", "kind", "metadata", "spec"])?;
        let spec = &o.v["spec"];
        only(
            o,
            spec,
            "spec",
            &["type", "selector", "ports", "clusterIP", "sessionAffinity"],
        )?;
        if s(spec, "sessionAffinity").is_some_and(|a| a != "None") {
            return Err(bad(
                &o.kind,
                &o.name,
                "spec.sessionAffinity",
                "not supported",
            ));
        }
        let sel = labels_of(&spec["selector"]);
        if sel.is_empty() {
            return Err(bad(
                &o.kind,
                &o.name,
                "spec.selector",
                "a Service without a selector is not supported",
            ));
        }
        let targets: Vec<String> = self
            .labels
            .iter()
            .filter(|(_, l)| sel.iter().all(|(k, v)| l.get(k) == Some(v)))
            .map(|(n, _)| n.clone())
            .collect();
        let [target] = targets.as_slice() else {
            return Err(bad(&o.kind, &o.name, "spec.selector", format!("selects {} workloads ({}): play balances over the replicas of one Pod or Deployment", targets.len(), targets.join(", "))));
        };
        let svc = self.out.project.services.get_mut(target).expect("selected");
        let ty = s(spec, "type").unwrap_or("ClusterIP");
        let headless = s(spec, "clusterIP") == Some("None");
        if let Some(ip) = s(spec, "clusterIP").filter(|i| *i != "None" && !i.is_empty()) {
            return Err(bad(
                &o.kind,
                &o.name,
                "spec.clusterIP",
                format!("{ip}: a fixed cluster IP is not supported"),
            ));
        }
        match ty {
            "ClusterIP" => {
                // The service name inside the project is the workload's: a Service must
                // be named as what it selects.
                if o.name != *target {
                    return Err(bad(&o.kind, &o.name, "metadata.name", format!("a ClusterIP Service must be named as the workload it selects ({target})")));
                }
                if headless {
                    svc.deploy.endpoint_mode = EndpointMode::Dnsrr;
                }
            }
            "NodePort" | "LoadBalancer" if !headless => {}
            t => {
                return Err(bad(
                    &o.kind,
                    &o.name,
                    "spec.type",
                    format!("{t} is not supported"),
                ))
            }
        }
        for (i, pt) in spec["ports"].as_array().into_iter().flatten().enumerate() {
            let f = format!("spec.ports[{i}]");
            only(
                o,
                pt,
                &f,
                &["name", "port", "targetPort", "protocol", "nodePort"],
            )?;
            let port = pt["port"].as_u64().unwrap_or(0) as u16;
            let target_port = match &pt["targetPort"] {
                Value::Null => port,
                Value::Number(n) => n.as_u64().unwrap_or(0) as u16,
                Value::String(n) => {
                    return Err(bad(
                        &o.kind,
                        &o.name,
                        &format!("{f}.targetPort"),
                        format!("named port {n} is not supported"),
                    ))
                }
                _ => 0,
            };
            let proto = s(pt, "protocol").unwrap_or("TCP").to_lowercase();
            if proto != "tcp" && proto != "udp" {
                return Err(bad(
                    &o.kind,
                    &o.name,
                    &format!("{f}.protocol"),
                    format!("{proto} is not supported"),
                ));
            }
            if ty == "ClusterIP" {
                // The VIP balances each port to the same port of the replicas.
                if target_port != port {
                    return Err(bad(&o.kind, &o.name, &format!("{f}.targetPort"), format!("{target_port} differs from port {port}: a ClusterIP service forwards to the same port here")));
                }
                let e = format!("{port}/{proto}");
                if !svc.expose.contains(&e) {
                    svc.expose.push(e);
                }
            } else {
                let host = pt["nodePort"]
                    .as_u64()
                    .filter(|_| ty == "NodePort")
                    .unwrap_or(port as u64);
                svc.ports.push(PortSpec {
                    target: target_port,
                    published: Some(host.to_string()),
                    host_ip: None,
                    protocol: proto,
                    mode: "ingress".into(),
                    name: None,
                    app_protocol: None,
                });
            }
        }
        Ok(())
    }

    fn hpa(&mut self, o: &Obj) -> Result<(), KubeError> {
        only(o, &o.v, "", &["apiVersion", "kind", "metadata", "spec"])?;
        let spec = &o.v["spec"];
        only(
            o,
            spec,
            "spec",
            &[
                "scaleTargetRef",
                "minReplicas",
                "maxReplicas",
                "metrics",
                "behavior",
            ],
        )?;
        let target = s(spec, "scaleTargetRef.name").unwrap_or_default();
        if s(spec, "scaleTargetRef.kind") != Some("Deployment")
            || !self.out.project.services.contains_key(target)
        {
            return Err(bad(
                &o.kind,
                &o.name,
                "spec.scaleTargetRef",
                format!("Deployment {target} is not in the file"),
            ));
        }
        let ms = spec["metrics"].as_array().cloned().unwrap_or_default();
        let [m] = ms.as_slice() else {
            return Err(bad(
                &o.kind,
                &o.name,
                "spec.metrics",
                "one metric is supported",
            ));
        };
        let t = match (
            s(m, "type"),
            s(m, "resource.name"),
            s(m, "resource.target.type"),
            s(m, "pods.metric.name"),
        ) {
            (Some("Resource"), Some("cpu"), Some("Utilization"), _) => AutoscaleTarget::CpuPercent(
                get(m, "resource.target.averageUtilization")
                    .as_f64()
                    .unwrap_or(80.0),
            ),
            (Some("Pods"), _, _, Some("berth_connections")) => {
                let v = s(m, "pods.target.averageValue").and_then(|q| q.parse::<f64>().ok());
                AutoscaleTarget::ConnectionsPerReplica(v.ok_or_else(|| {
                    bad(
                        &o.kind,
                        &o.name,
                        "spec.metrics[0].pods.target.averageValue",
                        "not a number",
                    )
                })?)
            }
            _ => {
                return Err(bad(
                    &o.kind,
                    &o.name,
                    "spec.metrics[0]",
                    "only cpu Utilization and the pods metric berth_connections are supported",
                ))
            }
        };
        let b = &spec["behavior"];
        only(o, b, "spec.behavior", &["scaleUp", "scaleDown"])?;
        for k in ["scaleUp", "scaleDown"] {
            only(
                o,
                &b[k],
                &format!("spec.behavior.{k}"),
                &["stabilizationWindowSeconds"],
            )?;
        }
        let win = |k: &str, d: Duration| {
            get(b, &format!("{k}.stabilizationWindowSeconds"))
                .as_u64()
                .map_or(d, Duration::from_secs)
        };
        let min = spec["minReplicas"].as_u64().unwrap_or(1) as u32;
        let svc = self.out.project.services.get_mut(target).expect("checked");
        svc.autoscale = Some(Autoscale {
            min,
            max: spec["maxReplicas"].as_u64().unwrap_or(min as u64) as u32,
            target: t,
            scale_up_after: win("scaleUp", Autoscale::DEFAULT_SCALE_UP_AFTER),
            scale_down_after: win("scaleDown", Autoscale::DEFAULT_SCALE_DOWN_AFTER),
        });
        Ok(())
    }
}

/// What a NetworkPolicy says of its workload: who may reach it, and whether it may only
/// reach those (egress to its peers and DNS).
struct Policy {
    peers: BTreeSet<String>,
    internal: bool,
}

impl Play {
    /// The workloads `sel` (a podSelector: matchLabels, matchExpressions In) selects.
    fn select(&self, o: &Obj, sel: &Value, f: &str) -> Result<BTreeSet<String>, KubeError> {
        only(o, sel, f, &["matchLabels", "matchExpressions"])?;
        let ml = labels_of(&sel["matchLabels"]);
        let mut exprs = vec![];
        for (i, e) in sel["matchExpressions"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            if s(e, "operator") != Some("In") {
                return Err(bad(
                    &o.kind,
                    &o.name,
                    &format!("{f}.matchExpressions[{i}].operator"),
                    "only In is supported",
                ));
            }
            exprs.push((
                s(e, "key").unwrap_or_default().to_string(),
                strings(&e["values"]),
            ));
        }
        Ok(self
            .labels
            .iter()
            .filter(|(_, l)| {
                ml.iter().all(|(k, v)| l.get(k) == Some(v))
                    && exprs
                        .iter()
                        .all(|(k, vs)| l.get(k).is_some_and(|v| vs.contains(v)))
            })
            .map(|(n, _)| n.clone())
            .collect())
    }

    /// NetworkPolicies as compose networks: one network per pair of workloads that may
    /// reach each other (a compose network lets its members reach each other, both
    /// ways), internal when a member may only reach its peers. Policies say what
    /// networks can: ingress from pods of the project (both ways), published ports, and
    /// egress restricted to the same peers and DNS. Anything else is refused.
    fn network_policies(&mut self, policies: &[&Obj]) -> Result<(), KubeError> {
        let mut by: BTreeMap<String, Policy> = BTreeMap::new();
        for o in policies {
            only(o, &o.v, "", &["apiVersion", "kind", "metadata", "spec"])?;
            let spec = &o.v["spec"];
            only(
                o,
                spec,
                "spec",
                &["podSelector", "policyTypes", "ingress", "egress"],
            )?;
            let sel = self.select(o, &spec["podSelector"], "spec.podSelector")?;
            let sel: Vec<String> = sel.into_iter().collect();
            let [w] = sel.as_slice() else {
                return Err(bad(
                    &o.kind,
                    &o.name,
                    "spec.podSelector",
                    format!("selects {} workloads: one is supported", sel.len()),
                ));
            };
            let w = w.clone();
            let types = strings(&spec["policyTypes"]);
            if !types.iter().any(|t| t == "Ingress") {
                return Err(bad(
                    &o.kind,
                    &o.name,
                    "spec.policyTypes",
                    "a policy without Ingress is not supported",
                ));
            }
            let mut peers = BTreeSet::new();
            for (i, r) in spec["ingress"].as_array().into_iter().flatten().enumerate() {
                let f = format!("spec.ingress[{i}]");
                only(o, r, &f, &["from", "ports"])?;
                match (r["from"].as_array(), r["ports"].is_array()) {
                    // From anywhere on some ports: its published ports (the host's).
                    (None, true) => {
                        let published: Vec<u16> = self.out.project.services[&w]
                            .ports
                            .iter()
                            .map(|p| p.target)
                            .collect();
                        for (j, pt) in r["ports"].as_array().into_iter().flatten().enumerate() {
                            let port = pt["port"].as_u64().unwrap_or(0) as u16;
                            if !published.contains(&port) {
                                return Err(bad(&o.kind, &o.name, &format!("{f}.ports[{j}]"), format!("port {port} from anywhere: only ports a NodePort or LoadBalancer Service publishes")));
                            }
                        }
                    }
                    (Some(from), false) => {
                        for (j, peer) in from.iter().enumerate() {
                            only(o, peer, &format!("{f}.from[{j}]"), &["podSelector"])?;
                            peers.extend(self.select(
                                o,
                                &peer["podSelector"],
                                &format!("{f}.from[{j}].podSelector"),
                            )?);
                        }
                    }
                    _ => {
                        return Err(bad(
                            &o.kind,
                            &o.name,
                            &f,
                            "only from (pods, all ports) or ports (from anywhere) is supported",
                        ))
                    }
                }
            }
            let mut internal = false;
            if types.iter().any(|t| t == "Egress") {
                internal = true;
                for (i, r) in spec["egress"].as_array().into_iter().flatten().enumerate() {
                    let f = format!("spec.egress[{i}]");
                    only(o, r, &f, &["to", "ports"])?;
                    match (r["to"].as_array(), r["ports"].as_array()) {
                        (Some(to), None) => {
                            for (j, peer) in to.iter().enumerate() {
                                only(o, peer, &format!("{f}.to[{j}]"), &["podSelector"])?;
                                let sel = self.select(
                                    o,
                                    &peer["podSelector"],
                                    &format!("{f}.to[{j}].podSelector"),
                                )?;
                                if !sel.is_subset(&peers) {
                                    return Err(bad(&o.kind, &o.name, &f, "egress to other pods than its ingress peers is not supported"));
                                }
                            }
                        }
                        (None, Some(ports))
                            if ports.iter().all(|p| p["port"].as_u64() == Some(53)) => {}
                        _ => {
                            return Err(bad(
                                &o.kind,
                                &o.name,
                                &f,
                                "only egress to its peers and to DNS (port 53) is supported",
                            ))
                        }
                    }
                }
            }
            if by.insert(w.clone(), Policy { peers, internal }).is_some() {
                return Err(bad(
                    &o.kind,
                    &o.name,
                    "spec.podSelector",
                    format!("{w} has a second NetworkPolicy: one per workload is supported"),
                ));
            }
        }
        let names: Vec<String> = self
            .out
            .project
            .services
            .iter()
            .filter(|(_, s)| s.network_mode.is_none())
            .map(|(n, _)| n.clone())
            .collect();
        // Who may reach whom: a workload without a policy admits everyone.
        let reach = |a: &String, b: &String| by.get(b).is_none_or(|p| p.peers.contains(a));
        let mut nets: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (i, a) in names.iter().enumerate() {
            for b in &names[i + 1..] {
                if reach(a, b) != reach(b, a) {
                    let (from, to) = if reach(a, b) { (a, b) } else { (b, a) };
                    return Err(KubeError::Parse(format!(
                        "NetworkPolicy: {from} may reach {to} but not the other way: one-way policies are not supported (a network joins both ways)"
                    )));
                }
                if reach(a, b) {
                    nets.insert(format!("{a}-{b}"), [a.clone(), b.clone()].into());
                }
            }
        }
        for n in &names {
            // A workload alone still has a network: its name resolves, its ports publish.
            let internal = by.get(n).is_some_and(|p| p.internal);
            let outside = nets
                .values()
                .any(|m| m.contains(n) && !m.iter().any(|x| by.get(x).is_some_and(|p| p.internal)));
            let has_net = nets.values().any(|m| m.contains(n));
            if !(outside || internal && has_net) {
                nets.insert(n.clone(), [n.clone()].into());
            }
        }
        let pn = self.pname.clone();
        for (k, members) in nets {
            let internal = members
                .iter()
                .any(|x| by.get(x).is_some_and(|p| p.internal));
            for m in &members {
                let s = self.out.project.services.get_mut(m).expect("a workload");
                s.networks.remove("default");
                s.networks.insert(k.clone(), ServiceNetwork::default());
            }
            self.out.project.networks.insert(
                k.clone(),
                NetworkDef {
                    name: format!("{pn}_{k}"),
                    internal,
                    ..Default::default()
                },
            );
        }
        Ok(())
    }
}

fn text(kind: &str, name: &str, f: &str, v: &[u8]) -> Result<String, KubeError> {
    String::from_utf8(v.to_vec()).map_err(|_| {
        bad(
            kind,
            name,
            f,
            "binary data cannot be an environment variable",
        )
    })
}

/// The container's probes as the service's health checks. A livenessProbe (alone, or
/// with a readinessProbe that is the same probe, as `kube generate` writes them) is a
/// check that gates the load balancer and, failing, has the replica replaced; a
/// readinessProbe alone one that only gates the balancer (HealthRole::Readiness). Both,
/// different: the livenessProbe is the health check (its failure replaces the replica)
/// and the readinessProbe a second check that only takes the replica out of the
/// balancer and back (the third value). A startupProbe of the same handler is the start
/// period. exec probes run in the container; httpGet and tcpSocket ones connect to it
/// from the engine's side, as the kubelet's; grpc ones are refused.
fn probes(
    o: &Obj,
    c: &Value,
    at: &str,
) -> Result<(Option<Healthcheck>, HealthRole, Option<Healthcheck>), KubeError> {
    let at = at.trim_end_matches('.');
    let live = &c["livenessProbe"];
    let ready = &c["readinessProbe"];
    let start = &c["startupProbe"];
    let lf = format!("{at}.livenessProbe");
    let rf = format!("{at}.readinessProbe");
    let (main, role, f, readiness) = match (live.is_object(), ready.is_object()) {
        (true, true) if ready != live => (
            live,
            HealthRole::Liveness,
            lf,
            Some(check(o, c, ready, &rf, true)?),
        ),
        (true, _) => (live, HealthRole::Liveness, lf, None),
        (false, true) => (ready, HealthRole::Readiness, rf, None),
        (false, false) => {
            if start.is_object() {
                return Err(bad(
                    &o.kind,
                    &o.name,
                    &format!("{at}.startupProbe"),
                    "a startupProbe without a livenessProbe or readinessProbe is not supported",
                ));
            }
            return Ok((None, HealthRole::Liveness, None));
        }
    };
    let mut h = check(o, c, main, &f, role == HealthRole::Readiness)?;
    if start.is_object() {
        let sf = format!("{at}.startupProbe");
        let s = check(o, c, start, &sf, false)?;
        if (&s.test, &s.probe) != (&h.test, &h.probe) {
            return Err(bad(
                &o.kind,
                &o.name,
                &sf,
                "not supported unless it is the livenessProbe's (or readinessProbe's) check",
            ));
        }
        let every = s.interval.unwrap_or_default();
        let tries = s.retries.unwrap_or(3) as u32;
        h.start_period = Some(s.start_period.unwrap_or_default() + every * tries);
        h.start_interval = Some(every);
    }
    Ok((Some(h), role, readiness))
}

/// One probe as a health check: its handler and timings (the kubelet's defaults). A
/// successThreshold other than 1 only for a readiness probe (as the API server says).
fn check(
    o: &Obj,
    c: &Value,
    p: &Value,
    f: &str,
    readiness: bool,
) -> Result<Healthcheck, KubeError> {
    only(
        o,
        p,
        f,
        &[
            "exec",
            "httpGet",
            "tcpSocket",
            "grpc",
            "periodSeconds",
            "timeoutSeconds",
            "failureThreshold",
            "successThreshold",
            "initialDelaySeconds",
        ],
    )?;
    let (test, probe) = handler(o, c, p, f)?;
    let num = |k: &str, d: u64, min: u64| -> Result<u64, KubeError> {
        match &p[k] {
            Value::Null => Ok(d),
            v => v.as_u64().filter(|n| *n >= min).ok_or_else(|| {
                bad(
                    &o.kind,
                    &o.name,
                    &format!("{f}.{k}"),
                    format!("must be a whole number of at least {min}"),
                )
            }),
        }
    };
    let successes = num("successThreshold", 1, 1)?;
    if successes != 1 && !readiness {
        return Err(bad(
            &o.kind,
            &o.name,
            &format!("{f}.successThreshold"),
            "must be 1",
        ));
    }
    let delay = num("initialDelaySeconds", 0, 0)?;
    Ok(Healthcheck {
        test,
        interval: Some(Duration::from_secs(num("periodSeconds", 10, 1)?)),
        timeout: Some(Duration::from_secs(num("timeoutSeconds", 1, 1)?)),
        retries: Some(num("failureThreshold", 3, 1)?),
        start_period: (delay > 0).then(|| Duration::from_secs(delay)),
        start_interval: None,
        disable: false,
        success_threshold: (successes != 1).then_some(successes),
        probe,
    })
}

/// A probe's handler: an exec probe's command (docker's test), or an httpGet or tcpSocket
/// probe (and a test that only describes it).
fn handler(
    o: &Obj,
    c: &Value,
    p: &Value,
    f: &str,
) -> Result<(Vec<String>, Option<NetProbe>), KubeError> {
    let kinds: Vec<&str> = ["exec", "httpGet", "tcpSocket", "grpc"]
        .into_iter()
        .filter(|k| !p[*k].is_null())
        .collect();
    let e = |field: &str, why: &str| bad(&o.kind, &o.name, field, why.to_string());
    let kind = match kinds[..] {
        [k] => k,
        [] => return Err(e(f, "needs one of exec, httpGet, tcpSocket")),
        _ => {
            return Err(e(
                f,
                &format!("has {}: only one handler is allowed", kinds.join(" and ")),
            ))
        }
    };
    let hf = format!("{f}.{kind}");
    let h = &p[kind];
    if !h.is_object() {
        return Err(e(&hf, "must be an object"));
    }
    match kind {
        "exec" => {
            only(o, h, &hf, &["command"])?;
            let cmd = strings(&h["command"]);
            if cmd.is_empty() {
                return Err(e(&format!("{hf}.command"), "empty"));
            }
            Ok((
                std::iter::once("CMD".to_string()).chain(cmd).collect(),
                None,
            ))
        }
        "grpc" => Err(e(
            &hf,
            "not supported (berth runs exec, httpGet and tcpSocket probes)",
        )),
        "httpGet" => {
            only(
                o,
                h,
                &hf,
                &["path", "port", "host", "scheme", "httpHeaders"],
            )?;
            match &h["scheme"] {
                Value::Null => {}
                Value::String(s) if s == "HTTP" => {}
                Value::String(s) if s == "HTTPS" => {
                    return Err(e(
                        &format!("{hf}.scheme"),
                        "HTTPS is not supported (only HTTP)",
                    ))
                }
                v => return Err(e(&format!("{hf}.scheme"), &format!("{v}: must be HTTP"))),
            }
            let port = probe_port(o, c, &h["port"], &format!("{hf}.port"))?;
            let host = probe_host(o, h, &hf)?;
            let path = opt_str(o, h, "path", &hf)?.unwrap_or_else(|| "/".into());
            if path
                .chars()
                .any(|ch| ch.is_ascii_whitespace() || ch.is_ascii_control())
            {
                return Err(e(
                    &format!("{hf}.path"),
                    "must not have spaces or control characters",
                ));
            }
            let mut headers = Vec::new();
            for (i, x) in h["httpHeaders"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                let xf = format!("{hf}.httpHeaders[{i}]");
                only(o, x, &xf, &["name", "value"])?;
                let name = x["name"].as_str().unwrap_or_default();
                let value = x["value"].as_str().unwrap_or_default();
                if name.is_empty()
                    || !name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_!#$%&'*+.^`|~".contains(&b))
                {
                    return Err(e(&format!("{xf}.name"), "must be an HTTP header name"));
                }
                if value.chars().any(|ch| ch == '\r' || ch == '\n') {
                    return Err(e(&format!("{xf}.value"), "must be one line"));
                }
                headers.push((name.to_string(), value.to_string()));
            }
            if !h["httpHeaders"].is_null() && !h["httpHeaders"].is_array() {
                return Err(e(&format!("{hf}.httpHeaders"), "must be a list"));
            }
            let url = format!(
                "http://{}:{port}{path}",
                host.as_deref().unwrap_or("POD_IP")
            );
            Ok((
                vec!["HTTP-GET".into(), url],
                Some(NetProbe::HttpGet {
                    host,
                    port,
                    path,
                    headers,
                }),
            ))
        }
        _ => {
            only(o, h, &hf, &["port", "host"])?;
            let port = probe_port(o, c, &h["port"], &format!("{hf}.port"))?;
            let host = probe_host(o, h, &hf)?;
            let to = format!("{}:{port}", host.as_deref().unwrap_or("POD_IP"));
            Ok((
                vec!["TCP-SOCKET".into(), to],
                Some(NetProbe::TcpSocket { host, port }),
            ))
        }
    }
}

/// A probe's `host`: an IP address (the pod's own when absent). A name is refused: the
/// monitor connects without a resolver.
fn probe_host(o: &Obj, h: &Value, hf: &str) -> Result<Option<String>, KubeError> {
    let host = opt_str(o, h, "host", hf)?;
    if let Some(n) = &host {
        if n.trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_err()
        {
            return Err(bad(
                &o.kind,
                &o.name,
                &format!("{hf}.host"),
                format!("{n}: only an IP address is supported (no host names)"),
            ));
        }
    }
    Ok(host)
}

fn opt_str(o: &Obj, h: &Value, k: &str, hf: &str) -> Result<Option<String>, KubeError> {
    match &h[k] {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(bad(
            &o.kind,
            &o.name,
            &format!("{hf}.{k}"),
            "must be a string",
        )),
    }
}

/// A probe's port: a number, or the name of one of the container's ports.
fn probe_port(o: &Obj, c: &Value, v: &Value, f: &str) -> Result<u16, KubeError> {
    let e = |why: String| bad(&o.kind, &o.name, f, why);
    match v {
        Value::Null => Err(e("required".into())),
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| e(format!("{n}: must be a port number 1-65535"))),
        Value::String(s) => c["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"].as_str() == Some(s))
            .and_then(|p| p["containerPort"].as_u64())
            .and_then(|n| u16::try_from(n).ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| e(format!("{s:?}: no port of the container has this name"))),
        _ => Err(e("must be a port number or a port's name".into())),
    }
}

#[cfg(test)]
mod tests;
