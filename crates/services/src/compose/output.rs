//! `config` output: the resolved model in compose's canonical (long) syntax, as
//! `docker compose config` prints it: name, services, networks, volumes; empty and
//! default values left out.

use serde_json::{json, Map, Value};

use super::duration::format_duration;
use super::model::*;

pub fn to_yaml(p: &Project) -> String {
    let mut root = Map::new();
    root.insert("name".into(), json!(p.name));
    let services: Map<String, Value> = p
        .services
        .iter()
        .map(|(k, s)| (k.clone(), service(p, s)))
        .collect();
    root.insert("services".into(), Value::Object(services));
    if !p.networks.is_empty() {
        root.insert(
            "networks".into(),
            Value::Object(
                p.networks
                    .iter()
                    .map(|(k, n)| (k.clone(), network(n)))
                    .collect(),
            ),
        );
    }
    if !p.volumes.is_empty() {
        root.insert(
            "volumes".into(),
            Value::Object(
                p.volumes
                    .iter()
                    .map(|(k, v)| (k.clone(), volume(v)))
                    .collect(),
            ),
        );
    }
    for (key, defs) in [("secrets", &p.secrets), ("configs", &p.configs)] {
        if defs.is_empty() {
            continue;
        }
        let m: Map<String, Value> = defs
            .iter()
            .map(|(k, d)| {
                let v = match d {
                    FileSource::File(f) => json!({"file": f}),
                    // The variable, never its value.
                    FileSource::Env { var, .. } => json!({"environment": var}),
                    FileSource::Content(c) => json!({"content": c}),
                };
                (k.clone(), v)
            })
            .collect();
        root.insert(key.into(), Value::Object(m));
    }
    let mut root = Value::Object(root);
    escape_dollars(&mut root);
    serde_norway::to_string(&root).expect("the model serialises")
}

/// Values are printed interpolated; `$` is doubled so that the output loads again to the
/// same model (as docker compose config does).
fn escape_dollars(v: &mut Value) {
    match v {
        Value::String(s) if s.contains('$') => *s = s.replace('$', "$$"),
        Value::Array(a) => a.iter_mut().for_each(escape_dollars),
        Value::Object(o) => o.values_mut().for_each(escape_dollars),
        _ => {}
    }
}

/// Inserts only what is set.
struct Obj(Map<String, Value>);

impl Obj {
    fn new() -> Obj {
        Obj(Map::new())
    }
    fn set(&mut self, k: &str, v: Value) -> &mut Obj {
        let empty = match &v {
            Value::Null => true,
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            Value::Bool(b) => !b,
            _ => false,
        };
        if !empty {
            self.0.insert(k.into(), v);
        }
        self
    }
    fn dur(&mut self, k: &str, d: Option<std::time::Duration>) -> &mut Obj {
        self.set(
            k,
            d.map(|d| json!(format_duration(d))).unwrap_or(Value::Null),
        )
    }
    fn done(&mut self) -> Value {
        Value::Object(std::mem::take(&mut self.0))
    }
}

fn service(p: &Project, s: &Service) -> Value {
    let mut o = Obj::new();
    if let Some(b) = &s.build {
        let mut bo = Obj::new();
        bo.set("context", json!(b.context.display().to_string()));
        // compose-go's default, shown as docker compose config does.
        let df = match (&b.dockerfile, &b.dockerfile_inline) {
            (None, None) => Some("Dockerfile".to_string()),
            (d, _) => d.clone(),
        };
        bo.set("dockerfile", json!(df))
            .set("dockerfile_inline", json!(b.dockerfile_inline));
        bo.set("args", json!(b.args)).set("target", json!(b.target));
        bo.set("labels", json!(b.labels))
            .set("no_cache", json!(b.no_cache));
        bo.set("pull", json!(b.pull))
            .set("network", json!(b.network));
        bo.set("tags", json!(b.tags));
        o.set("build", bo.done());
    }
    if s.attach == Some(false) {
        o.set("attach", json!(false));
    }
    o.set("cap_add", json!(s.cap_add));
    o.set("cap_drop", json!(s.cap_drop));
    o.set("cgroup", json!(s.namespaces.cgroup));
    o.set("cgroup_parent", json!(s.cgroup_parent));
    o.set("command", json!(s.command));
    o.set("container_name", json!(s.container_name));
    o.set("cpu_period", json!(s.cpu_period));
    o.set("cpu_quota", json!(s.cpu_quota));
    o.set("cpu_shares", json!(s.cpu_shares));
    o.set("cpus", json!(s.cpus));
    o.set("cpuset", json!(s.cpuset));
    let deps: serde_json::Map<String, Value> = s
        .depends_on
        .iter()
        .map(|(k, d)| {
            let cond = serde_json::to_value(d.condition).unwrap();
            (
                k.clone(),
                json!({"condition": cond, "required": d.required, "restart": d.restart}),
            )
        })
        .collect();
    o.set("depends_on", Value::Object(deps));
    o.set("deploy", deploy(&s.deploy));
    o.set("devices", json!(s.devices));
    o.set("dns", json!(s.dns));
    o.set("dns_opt", json!(s.dns_opt));
    o.set("dns_search", json!(s.dns_search));
    o.set("domainname", json!(s.domainname));
    o.set("entrypoint", json!(s.entrypoint));
    o.set("environment", json!(s.environment));
    o.set("expose", json!(s.expose));
    o.set("extra_hosts", json!(s.extra_hosts));
    o.set("group_add", json!(s.group_add));
    if let Some(h) = &s.healthcheck {
        let mut ho = Obj::new();
        ho.set("test", json!(h.test))
            .dur("timeout", h.timeout)
            .dur("interval", h.interval);
        ho.set("retries", json!(h.retries))
            .dur("start_period", h.start_period)
            .dur("start_interval", h.start_interval);
        ho.set("disable", json!(h.disable));
        o.set("healthcheck", ho.done());
    }
    o.set("hostname", json!(s.hostname));
    o.set("image", json!(s.image));
    o.set("init", json!(s.init));
    o.set("ipc", json!(s.namespaces.ipc));
    o.set("labels", json!(s.labels));
    if let Some(l) = &s.logging {
        let mut lo = Obj::new();
        lo.set("driver", json!(l.driver))
            .set("options", json!(l.options));
        o.set("logging", lo.done());
    }
    o.set("mem_limit", json!(s.mem_limit.map(|m| m.to_string())));
    o.set(
        "mem_reservation",
        json!(s.mem_reservation.map(|m| m.to_string())),
    );
    o.set("mem_swappiness", json!(s.mem_swappiness));
    o.set("memswap_limit", json!(s.memswap_limit));
    o.set("network_mode", json!(s.network_mode));
    let nets: Map<String, Value> = s
        .networks
        .iter()
        .map(|(k, n)| {
            let mut no = Obj::new();
            no.set("aliases", json!(n.aliases))
                .set("ipv4_address", json!(n.ipv4_address));
            no.set("ipv6_address", json!(n.ipv6_address))
                .set("mac_address", json!(n.mac_address));
            if n.priority != 0 {
                no.set("priority", json!(n.priority));
            }
            let v = no.done();
            (
                k.clone(),
                if v.as_object().is_some_and(|m| m.is_empty()) {
                    Value::Null
                } else {
                    v
                },
            )
        })
        .collect();
    if !nets.is_empty() {
        o.0.insert("networks".into(), Value::Object(nets));
    }
    o.set("oom_kill_disable", json!(s.oom_kill_disable));
    o.set("pid", json!(s.namespaces.pid));
    o.set("pids_limit", json!(s.pids_limit));
    let ports: Vec<Value> = s
        .ports
        .iter()
        .map(|pt| {
            let mut po = Obj::new();
            po.set("name", json!(pt.name))
                .set("mode", json!(pt.mode))
                .set("host_ip", json!(pt.host_ip));
            po.set("target", json!(pt.target))
                .set("published", json!(pt.published));
            po.set("protocol", json!(pt.protocol))
                .set("app_protocol", json!(pt.app_protocol));
            po.done()
        })
        .collect();
    o.set("ports", json!(ports));
    o.set("privileged", json!(s.privileged));
    o.set("profiles", json!(s.profiles));
    o.set("pull_policy", json!(s.pull_policy));
    o.set("read_only", json!(s.read_only));
    o.set("restart", json!(s.restart));
    o.set("runtime", json!(s.runtime));
    o.set("security_opt", json!(s.security_opt));
    o.set("shm_size", json!(s.shm_size.map(|m| m.to_string())));
    o.set("stdin_open", json!(s.stdin_open));
    o.dur("stop_grace_period", s.stop_grace_period);
    o.set("stop_signal", json!(s.stop_signal));
    o.set("sysctls", json!(s.sysctls));
    o.set("tmpfs", json!(s.tmpfs));
    o.set("tty", json!(s.tty));
    let ulimits: Map<String, Value> = s
        .ulimits
        .iter()
        .map(|(k, u)| {
            (
                k.clone(),
                if u.soft == u.hard {
                    json!(u.soft)
                } else {
                    json!({"soft": u.soft, "hard": u.hard})
                },
            )
        })
        .collect();
    o.set("ulimits", Value::Object(ulimits));
    o.set("user", json!(s.user));
    o.set("userns_mode", json!(s.namespaces.userns_mode));
    o.set("uts", json!(s.namespaces.uts));
    let vols: Vec<Value> = s
        .volumes
        .iter()
        .map(|v| {
            let mut vo = Obj::new();
            vo.set("type", serde_json::to_value(v.kind).unwrap())
                .set("source", json!(v.source));
            vo.set("target", json!(v.target))
                .set("read_only", json!(v.read_only));
            match v.kind {
                VolumeKind::Bind => {
                    let mut b = Obj::new();
                    b.set("propagation", json!(v.propagation))
                        .set("create_host_path", json!(v.create_host_path));
                    b.set("selinux", json!(v.selinux));
                    vo.set("bind", b.done());
                }
                VolumeKind::Volume => {
                    vo.set(
                        "volume",
                        if v.nocopy {
                            json!({"nocopy": true})
                        } else {
                            json!({})
                        },
                    );
                }
                VolumeKind::Tmpfs => {
                    let mut t = Obj::new();
                    t.set("size", json!(v.tmpfs_size))
                        .set("mode", json!(v.tmpfs_mode));
                    vo.set("tmpfs", t.done());
                }
            }
            vo.done()
        })
        .collect();
    o.set("volumes", json!(vols));
    o.set("volumes_from", json!(s.volumes_from));
    for (key, mounts) in [("secrets", &s.secrets), ("configs", &s.configs)] {
        let v: Vec<Value> = mounts
            .iter()
            .map(|m| {
                let mut mo = Obj::new();
                mo.set("source", json!(m.source))
                    .set("target", json!(m.target))
                    .set("uid", json!(m.uid.map(|u| u.to_string())))
                    .set("gid", json!(m.gid.map(|g| g.to_string())))
                    .set("mode", json!(m.mode.map(|x| format!("0{x:o}"))));
                mo.done()
            })
            .collect();
        o.set(key, json!(v));
    }
    o.set("working_dir", json!(s.working_dir));
    if let Some(a) = &s.autoscale {
        let mut ao = Obj::new();
        ao.set("min", json!(a.min)).set("max", json!(a.max));
        match a.target {
            AutoscaleTarget::CpuPercent(c) => ao.set("target_cpu_percent", json!(c)),
            AutoscaleTarget::ConnectionsPerReplica(c) => {
                ao.set("target_connections_per_replica", json!(c))
            }
        };
        ao.dur("scale_up_after", Some(a.scale_up_after))
            .dur("scale_down_after", Some(a.scale_down_after));
        o.set("x-berth-autoscale", ao.done());
    }
    let _ = p;
    o.done()
}

fn deploy(d: &Deploy) -> Value {
    let mut o = Obj::new();
    o.set("mode", json!(d.mode));
    o.set("replicas", json!(d.replicas));
    if d.endpoint_mode == EndpointMode::Dnsrr {
        o.set("endpoint_mode", json!("dnsrr"));
    }
    o.set("labels", json!(d.labels));
    let spec = |r: &ResourceSpec| {
        let mut ro = Obj::new();
        ro.set("cpus", json!(r.cpus))
            .set("memory", json!(r.memory.map(|m| m.to_string())))
            .set("pids", json!(r.pids));
        ro.done()
    };
    let mut res = Obj::new();
    res.set("limits", spec(&d.resources.limits))
        .set("reservations", spec(&d.resources.reservations));
    o.set("resources", res.done());
    if let Some(r) = &d.restart_policy {
        let mut ro = Obj::new();
        ro.set("condition", serde_json::to_value(r.condition).unwrap())
            .dur("delay", r.delay);
        ro.set("max_attempts", json!(r.max_attempts))
            .dur("window", r.window);
        o.set("restart_policy", ro.done());
    }
    for (k, u) in [
        ("update_config", &d.update_config),
        ("rollback_config", &d.rollback_config),
    ] {
        if let Some(u) = u {
            let mut uo = Obj::new();
            uo.0.insert("parallelism".into(), json!(u.parallelism));
            uo.dur("delay", Some(u.delay));
            uo.set(
                "failure_action",
                serde_json::to_value(u.failure_action).unwrap(),
            );
            uo.dur("monitor", Some(u.monitor));
            uo.0.insert("max_failure_ratio".into(), json!(u.max_failure_ratio));
            uo.set("order", serde_json::to_value(u.order).unwrap());
            o.set(k, uo.done());
        }
    }
    o.done()
}

fn network(n: &NetworkDef) -> Value {
    let mut o = Obj::new();
    o.set("name", json!(n.name))
        .set("driver", json!(n.driver))
        .set("driver_opts", json!(n.driver_opts));
    o.set("internal", json!(n.internal))
        .set("external", json!(n.external))
        .set("enable_ipv6", json!(n.enable_ipv6));
    o.set("attachable", json!(n.attachable));
    if let Some(i) = &n.ipam {
        let conf: Vec<Value> = i
            .config
            .iter()
            .map(|c| {
                let mut co = Obj::new();
                co.set("subnet", json!(c.subnet))
                    .set("gateway", json!(c.gateway))
                    .set("ip_range", json!(c.ip_range));
                co.done()
            })
            .collect();
        let mut io = Obj::new();
        io.set("driver", json!(i.driver)).set("config", json!(conf));
        o.set("ipam", io.done());
    }
    o.set("labels", json!(n.labels));
    o.done()
}

fn volume(v: &VolumeDef) -> Value {
    let mut o = Obj::new();
    o.set("name", json!(v.name))
        .set("driver", json!(v.driver))
        .set("driver_opts", json!(v.driver_opts));
    o.set("external", json!(v.external))
        .set("labels", json!(v.labels));
    o.done()
}
