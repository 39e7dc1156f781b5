//! `berth kube generate CONTAINER`: a Pod from a container made by `berth run` or
//! `create`, as `podman kube generate` makes one; its published ports as a LoadBalancer
//! (or NodePort) Service, its named volumes as PersistentVolumeClaims, so that `kube play`
//! runs it again. What has no Pod equivalent is an error naming the container and the
//! option, or a warning.

use super::{
    cpu_quantity, kname, memory_quantity, probes, GenerateOptions, Generated, KubeError, Manifest,
    Publish, NAME_LABEL,
};
use crate::compose::Healthcheck;
use berth_engine::options::{HealthConfig, MountSpec, NetworkMode, RestartPolicy, SeccompOpt};
use berth_engine::record::{ContainerConfig, ContainerState};
use serde_json::{json, Map, Value};
use std::time::Duration;

fn bad(name: &str, key: &str, reason: impl Into<String>) -> KubeError {
    KubeError::Container {
        container: name.into(),
        key: key.into(),
        reason: reason.into(),
    }
}

/// The engine's health check as the compose one (durations in nanoseconds there).
fn healthcheck(h: &HealthConfig) -> Healthcheck {
    let d = |ns: i64| (ns > 0).then(|| Duration::from_nanos(ns as u64));
    Healthcheck {
        test: h.test.clone(),
        interval: d(h.interval),
        timeout: d(h.timeout),
        start_period: d(h.start_period),
        start_interval: d(h.start_interval),
        retries: (h.retries > 0).then_some(h.retries as u64),
        disable: false,
        success_threshold: (h.success_threshold > 1).then_some(h.success_threshold as u64),
        probe: h.probe.clone(),
    }
}

/// The Pod (and Service, claims) of container `cfg`; `state` gives the published ports
/// of a running one (else they come from its options).
pub fn container(
    cfg: &ContainerConfig,
    state: Option<&ContainerState>,
    o: &GenerateOptions,
) -> Result<Generated, KubeError> {
    let cname = cfg.name.trim_start_matches('/');
    let name = kname("container", cname)?;
    let opts = &cfg.options;
    let mut out = Generated::default();
    let mut ctr = Map::new();
    ctr.insert("name".into(), json!(name));
    ctr.insert("image".into(), json!(opts.image));
    // command replaces the image's entrypoint, args its cmd (a cleared entrypoint: the
    // cmd is the command).
    match (&opts.entrypoint, &opts.cmd) {
        (Some(e), c) if e.is_empty() => {
            if let Some(c) = c {
                ctr.insert("command".into(), json!(c));
            }
        }
        (e, c) => {
            if let Some(e) = e {
                ctr.insert("command".into(), json!(e));
            }
            if let Some(c) = c {
                ctr.insert("args".into(), json!(c));
            }
        }
    }
    if let Some(w) = &opts.workdir {
        ctr.insert("workingDir".into(), json!(w));
    }
    let env: Vec<Value> = opts
        .env
        .iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            json!({"name": k, "value": v})
        })
        .collect();
    if !env.is_empty() {
        ctr.insert("env".into(), Value::Array(env));
    }
    if opts.tty {
        ctr.insert("tty".into(), json!(true));
    }
    if opts.open_stdin {
        ctr.insert("stdin".into(), json!(true));
    }

    // Resources: the limits.
    let mut limits = Map::new();
    if let Some(n) = opts.resources.nano_cpus.filter(|n| *n > 0) {
        limits.insert("cpu".into(), json!(cpu_quantity(n as f64 / 1e9)));
    }
    if let Some(m) = opts.resources.memory.filter(|m| *m > 0) {
        limits.insert("memory".into(), json!(memory_quantity(m as u64)));
    }
    if !limits.is_empty() {
        ctr.insert("resources".into(), json!({ "limits": limits }));
    }
    for (key, set) in [
        ("--device", !opts.resources.devices.is_empty()),
        ("--ulimit", !opts.resources.ulimits.is_empty()),
        ("--pids-limit", opts.resources.pids_limit.is_some()),
        ("--cpuset-cpus", opts.resources.cpuset_cpus.is_some()),
    ] {
        if set {
            out.warnings.push(format!(
                "container {cname}: {key} has no equivalent in a pod spec: left out"
            ));
        }
    }

    // Security.
    let sec = &opts.security;
    let mut sc = Map::new();
    if sec.privileged {
        sc.insert("privileged".into(), json!(true));
    } else {
        let t = match sec.seccomp {
            Some(SeccompOpt::Unconfined) => "Unconfined",
            Some(SeccompOpt::Profile(_)) => {
                return Err(bad(
                    cname,
                    "--security-opt seccomp",
                    "a profile of its own has no pod equivalent but a node's file",
                ))
            }
            None => "RuntimeDefault",
        };
        sc.insert("seccompProfile".into(), json!({ "type": t }));
    }
    if sec.no_new_privileges != Some(false) && !sec.privileged {
        sc.insert("allowPrivilegeEscalation".into(), json!(false));
    }
    if opts.read_only {
        sc.insert("readOnlyRootFilesystem".into(), json!(true));
    }
    let cap = |v: &[String]| -> Vec<String> {
        v.iter()
            .map(|c| c.trim_start_matches("CAP_").to_uppercase())
            .collect()
    };
    if !sec.cap_add.is_empty() || !sec.cap_drop.is_empty() {
        let mut caps = Map::new();
        if !sec.cap_add.is_empty() {
            caps.insert("add".into(), json!(cap(&sec.cap_add)));
        }
        if !sec.cap_drop.is_empty() {
            caps.insert("drop".into(), json!(cap(&sec.cap_drop)));
        }
        sc.insert("capabilities".into(), Value::Object(caps));
    }
    if let Some(u) = &opts.user {
        let (uid, gid) = u.split_once(':').unwrap_or((u.as_str(), ""));
        let num = |s: &str, what: &str| {
            s.parse::<i64>().map_err(|_| {
                bad(
                    cname,
                    "--user",
                    format!("{u}: kubernetes needs a numeric {what}"),
                )
            })
        };
        sc.insert("runAsUser".into(), json!(num(uid, "uid")?));
        if !gid.is_empty() {
            sc.insert("runAsGroup".into(), json!(num(gid, "gid")?));
        }
    }
    ctr.insert("securityContext".into(), Value::Object(sc));

    // Probes: the health check in effect (the flags', else the image's), the readiness
    // check beside it.
    let health = cfg
        .health
        .as_ref()
        .filter(|_| !opts.no_healthcheck)
        .map(healthcheck);
    let readiness = opts.readiness.as_ref().map(healthcheck);
    for w in probes(cname, health.as_ref(), readiness.as_ref(), &mut ctr)? {
        out.warnings.push(format!("container {cname}: {w}"));
    }

    // Volumes.
    let mut volumes = vec![];
    let mut mounts = vec![];
    let mut claims = vec![];
    for (i, m) in opts.mounts.iter().enumerate() {
        let vname = format!("vol-{i}");
        let (source, target, ro) = match m {
            MountSpec::Bind {
                source,
                target,
                read_only,
                ..
            } => {
                out.warnings.push(format!("container {cname}: bind of {source}: a hostPath volume, which only nodes that have {source} can serve"));
                (json!({"hostPath": {"path": source}}), target, *read_only)
            }
            MountSpec::Volume {
                name: Some(v),
                target,
                read_only,
            } => {
                let claim = kname("volume", v)?;
                if !claims.contains(&claim) {
                    claims.push(claim.clone());
                }
                (
                    json!({"persistentVolumeClaim": {"claimName": claim}}),
                    target,
                    *read_only,
                )
            }
            MountSpec::Volume {
                name: None,
                target,
                read_only,
            } => (json!({"emptyDir": {}}), target, *read_only),
            MountSpec::Tmpfs { target, size, .. } => {
                let mut e = json!({"medium": "Memory"});
                if let Some(s) = size {
                    e["sizeLimit"] = json!(memory_quantity(*s));
                }
                (json!({ "emptyDir": e }), target, false)
            }
        };
        let mut v = json!({ "name": vname });
        if let (Value::Object(v), Value::Object(src)) = (&mut v, source) {
            v.extend(src);
        }
        volumes.push(v);
        let mut mt = json!({"name": vname, "mountPath": target});
        if ro {
            mt["readOnly"] = json!(true);
        }
        mounts.push(mt);
    }
    if !mounts.is_empty() {
        ctr.insert("volumeMounts".into(), Value::Array(mounts));
    }

    // Ports: the published ones (a running container's as bound), as a Service.
    let mut published: Vec<(u16, u16, String)> = match state.and_then(|s| s.network.as_ref()) {
        Some(n) if !n.ports.is_empty() => n
            .ports
            .iter()
            .map(|p| (p.host_port, p.container_port, p.proto.clone()))
            .collect(),
        _ => opts
            .publish
            .iter()
            .map(|p| publish(cname, p))
            .collect::<Result<_, _>>()?,
    };
    published.sort();
    published.dedup();
    let mut ports: Vec<Value> = vec![];
    for (_, c, proto) in &published {
        let p = json!({"containerPort": c, "protocol": proto.to_uppercase()});
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    if !ports.is_empty() {
        ctr.insert("ports".into(), Value::Array(ports));
    }

    let mut spec = json!({
        "containers": [Value::Object(ctr)],
        "restartPolicy": match opts.restart {
            RestartPolicy::No => "Never",
            RestartPolicy::OnFailure(_) => "OnFailure",
            RestartPolicy::Always | RestartPolicy::UnlessStopped => "Always",
        },
    });
    if !volumes.is_empty() {
        spec["volumes"] = Value::Array(volumes);
    }
    if let Some(h) = &opts.hostname {
        spec["hostname"] = json!(h);
    }
    match &opts.network {
        NetworkMode::Bridge => {}
        NetworkMode::Host => spec["hostNetwork"] = json!(true),
        NetworkMode::None => return Err(bad(cname, "--network", "none has no pod equivalent")),
        NetworkMode::Container(c) => {
            return Err(bad(
                cname,
                "--network",
                format!("container:{c} has no equivalent for a pod of one container"),
            ))
        }
    }
    if let Some(rc) = &o.runtime_class {
        spec["runtimeClassName"] = json!(rc);
    }
    let labels = json!({ NAME_LABEL: name });
    out.manifests.push(Manifest {
        kind: "Pod",
        name: name.clone(),
        value: json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": labels},
            "spec": spec,
        }),
    });
    if !published.is_empty() {
        let svc = format!("{name}-public");
        let nodeport = o.publish == Publish::NodePort;
        let ports: Vec<Value> = published
            .iter()
            .map(|(h, c, proto)| {
                let mut p = json!({
                    "name": format!("{}-{h}", proto.to_lowercase()),
                    "port": if nodeport { *c } else { *h },
                    "targetPort": c,
                    "protocol": proto.to_uppercase(),
                });
                if nodeport {
                    p["nodePort"] = json!(h);
                }
                p
            })
            .collect();
        out.manifests.push(Manifest {
            kind: "Service",
            name: svc.clone(),
            value: json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": svc, "labels": labels},
                "spec": {
                    "type": if nodeport { "NodePort" } else { "LoadBalancer" },
                    "selector": labels,
                    "ports": ports,
                },
            }),
        });
    }
    let size = o.volume_size.clone().unwrap_or_else(|| "1Gi".into());
    for c in claims {
        out.manifests.push(Manifest {
            kind: "PersistentVolumeClaim",
            name: c.clone(),
            value: json!({
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": c},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": size}},
                },
            }),
        });
    }
    Ok(out)
}

/// One `-p` value of a container that is not running: (host port, container port,
/// protocol); a random host port is the container's.
fn publish(cname: &str, p: &str) -> Result<(u16, u16, String), KubeError> {
    let (spec, proto) = p.split_once('/').unwrap_or((p, "tcp"));
    let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
    let port = |s: &str| {
        s.parse::<u16>().ok().filter(|n| *n > 0).ok_or_else(|| {
            bad(
                cname,
                "--publish",
                format!("{p}: ranges and names of ports are not supported"),
            )
        })
    };
    let c = port(parts[0])?;
    let h = match parts.get(1) {
        Some(h) if !h.is_empty() => port(h)?,
        _ => c,
    };
    Ok((h, c, proto.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_engine::options::{CreateOptions, NetProbe};

    fn gen(o: CreateOptions, health: Option<HealthConfig>) -> Result<Generated, KubeError> {
        let mut cfg = ContainerConfig::bare("0123", "Web_1", o);
        cfg.health = health;
        container(&cfg, None, &GenerateOptions::default())
    }

    #[test]
    fn a_container_as_a_pod_a_service_and_claims() {
        let mut o = CreateOptions {
            image: "busybox:latest".into(),
            entrypoint: Some(vec!["httpd".into()]),
            cmd: Some(vec!["-f".into(), "-p".into(), "8080".into()]),
            env: vec!["A=b=c".into()],
            publish: vec!["127.0.0.1:9090:8080".into(), "53/udp".into()],
            restart: RestartPolicy::OnFailure(3),
            user: Some("1000:1000".into()),
            ..Default::default()
        };
        o.mounts = vec![
            MountSpec::Volume {
                name: Some("data".into()),
                target: "/data".into(),
                read_only: true,
            },
            MountSpec::Tmpfs {
                target: "/run".into(),
                size: Some(64 << 20),
                mode: None,
                options: vec![],
            },
        ];
        o.readiness = Some(HealthConfig {
            test: vec!["TCP-SOCKET".into(), "POD_IP:8080".into()],
            interval: 2_000_000_000,
            probe: Some(NetProbe::TcpSocket {
                host: None,
                port: 8080,
            }),
            ..Default::default()
        });
        let h = HealthConfig {
            test: vec!["CMD".into(), "true".into()],
            retries: 2,
            ..Default::default()
        };
        let g = gen(o, Some(h)).unwrap();
        let kinds: Vec<(&str, &str)> = g
            .manifests
            .iter()
            .map(|m| (m.kind, m.name.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("Pod", "web-1"),
                ("Service", "web-1-public"),
                ("PersistentVolumeClaim", "data")
            ]
        );
        let pod = &g.manifests[0].value;
        let c = &pod["spec"]["containers"][0];
        assert_eq!(c["command"], json!(["httpd"]));
        assert_eq!(c["args"], json!(["-f", "-p", "8080"]));
        assert_eq!(c["env"], json!([{"name": "A", "value": "b=c"}]));
        assert_eq!(c["securityContext"]["runAsGroup"], 1000);
        assert_eq!(c["livenessProbe"]["exec"]["command"], json!(["true"]));
        assert_eq!(c["livenessProbe"]["failureThreshold"], 2);
        assert_eq!(c["readinessProbe"]["tcpSocket"]["port"], 8080);
        assert_eq!(c["readinessProbe"]["periodSeconds"], 2);
        assert_eq!(pod["spec"]["restartPolicy"], "OnFailure");
        assert_eq!(
            pod["spec"]["volumes"][1]["emptyDir"],
            json!({"medium": "Memory", "sizeLimit": "64Mi"})
        );
        assert_eq!(c["volumeMounts"][0]["readOnly"], true);
        let s = &g.manifests[1].value["spec"];
        assert_eq!(s["type"], "LoadBalancer");
        assert_eq!(
            s["ports"],
            json!([
                {"name": "udp-53", "port": 53, "targetPort": 53, "protocol": "UDP"},
                {"name": "tcp-9090", "port": 9090, "targetPort": 8080, "protocol": "TCP"},
            ])
        );
        // Back through play: the same service.
        let y = super::super::to_yaml(&g);
        let p = super::super::play::play(&y, None, "f", std::path::Path::new("/run/k"))
            .unwrap()
            .project;
        let s = &p.services["web-1"];
        assert_eq!(s.entrypoint.as_deref(), Some(&["httpd".to_string()][..]));
        assert_eq!(
            s.readiness.as_ref().unwrap().probe,
            Some(NetProbe::TcpSocket {
                host: None,
                port: 8080
            })
        );
    }

    #[test]
    fn what_a_pod_cannot_have_is_an_error_naming_the_option() {
        let o = CreateOptions {
            image: "x".into(),
            network: NetworkMode::None,
            ..Default::default()
        };
        assert_eq!(
            gen(o, None).unwrap_err().to_string(),
            "container Web_1: --network: none has no pod equivalent"
        );
        let o = CreateOptions {
            image: "x".into(),
            user: Some("nobody".into()),
            ..Default::default()
        };
        assert_eq!(
            gen(o, None).unwrap_err().to_string(),
            "container Web_1: --user: nobody: kubernetes needs a numeric uid"
        );
        let o = CreateOptions {
            image: "x".into(),
            publish: vec!["8000-8001:80".into()],
            ..Default::default()
        };
        assert!(gen(o, None)
            .unwrap_err()
            .to_string()
            .contains("ranges and names of ports are not supported"));
    }
}
