//! `kube play`'s translation: generate's supermarket back to the same services, the
//! kinds and fields it maps, and bad input refused naming the kind and the field.

use super::*;
use crate::compose::{self, LoadOptions};
use crate::kube::{generate, to_yaml, GenerateOptions};

fn supermarket() -> Project {
    let f =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/supermarket/compose.yaml");
    compose::load(&LoadOptions {
        files: vec![f.clone()],
        working_dir: f.parent().unwrap().to_path_buf(),
        ..Default::default()
    })
    .unwrap()
}

fn run(yaml: &str) -> Result<Played, KubeError> {
    play(yaml, None, "file", Path::new("/run/kube/p"))
}

fn err(yaml: &str) -> String {
    run(yaml).expect_err("accepted").to_string()
}

#[test]
fn the_supermarket_round_trips() {
    let p = supermarket();
    let y = to_yaml(&generate(&p, &GenerateOptions::default()).unwrap());
    let back = run(&y).unwrap();
    let q = &back.project;
    assert_eq!(q.name, "supermarket");
    assert_eq!(
        q.services.keys().collect::<Vec<_>>(),
        p.services.keys().collect::<Vec<_>>()
    );
    let pay = &q.services["payment"];
    assert_eq!(pay.image, p.services["payment"].image);
    assert_eq!(pay.deploy.replicas, Some(3));
    assert_eq!(pay.ports.len(), 1);
    assert_eq!(pay.ports[0].target, 80);
    assert_eq!(pay.ports[0].published.as_deref(), Some("8080"));
    assert_eq!(pay.expose, vec!["80/tcp".to_string()]);
    assert_eq!(pay.deploy.resources.limits.memory, Some(32 << 20));
    assert_eq!(pay.deploy.resources.limits.cpus, Some(0.5));
    assert_eq!(pay.stop_grace_period, Some(Duration::from_secs(2)));
    let a = pay.autoscale.as_ref().unwrap();
    assert_eq!((a.min, a.max), (3, 6));
    assert_eq!(a.target, AutoscaleTarget::CpuPercent(50.0));
    let h = pay.healthcheck.as_ref().unwrap();
    assert_eq!(
        h.test,
        [
            "CMD",
            "/bin/sh",
            "-c",
            "wget -q -O /dev/null http://127.0.0.1/health"
        ]
    );
    assert_eq!(h.interval, Some(Duration::from_secs(1)));
    assert_eq!(h.retries, Some(2));
    assert!(h.start_period.is_some());
    // The database's claim is a named volume.
    let db = &q.services["db"];
    assert_eq!(db.volumes[0].source.as_deref(), Some("supermarket-db-data"));
    assert_eq!(db.volumes[0].target, "/data");
    assert!(q.volumes.contains_key("supermarket-db-data"));
    // The NetworkPolicies as networks: db reachable from inventory only, and internal.
    let on = |s: &str| q.services[s].networks.keys().cloned().collect::<Vec<_>>();
    assert_eq!(on("db"), ["db-inventory"]);
    assert_eq!(on("inventory"), ["db-inventory", "inventory-payment"]);
    assert_eq!(on("payment"), ["inventory-payment"]);
    assert!(q.networks["db-inventory"].internal);
    assert!(!q.networks["inventory-payment"].internal);
    assert_eq!(q.networks["db-inventory"].name, "supermarket_db-inventory");
}

const CM: &str = "
apiVersion: v1
kind: ConfigMap
metadata: {name: conf}
data: {GREETING: hello, app.conf: \"a=1\\n\"}
---
apiVersion: v1
kind: Secret
metadata: {name: pw}
data: {password: c2VjcmV0}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: store}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
";

#[test]
fn env_files_claims_and_a_nodeport() {
    let y = format!(
        "{CM}---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: web
        image: web:1
        args: [serve]
        envFrom: [{{configMapRef: {{name: conf}}, prefix: C_}}]
        env:
        - {{name: PASSWORD, valueFrom: {{secretKeyRef: {{name: pw, key: password}}}}}}
        - {{name: PLAIN, value: x}}
        volumeMounts:
        - {{name: c, mountPath: /etc/app}}
        - {{name: s, mountPath: /run/secrets}}
        - {{name: d, mountPath: /data}}
        livenessProbe:
          exec: {{command: [test, -f, /tmp/ok]}}
          periodSeconds: 2
          failureThreshold: 4
      volumes:
      - {{name: c, configMap: {{name: conf, items: [{{key: app.conf, path: app.conf}}]}}}}
      - {{name: s, secret: {{secretName: pw, defaultMode: 256}}}}
      - {{name: d, persistentVolumeClaim: {{claimName: store}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: web-out}}
spec:
  type: NodePort
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080, nodePort: 30080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  clusterIP: None
  selector: {{app: web}}
"
    );
    let r = run(&y).unwrap();
    assert_eq!(r.project.name, "file");
    let w = &r.project.services["web"];
    assert_eq!(w.deploy.replicas, Some(2));
    assert_eq!(w.command, Some(vec!["serve".to_string()]));
    let env = |k: &str| w.environment.get(k).cloned().flatten();
    assert_eq!(env("C_GREETING").as_deref(), Some("hello"));
    assert_eq!(env("PASSWORD").as_deref(), Some("secret"));
    assert_eq!(env("PLAIN").as_deref(), Some("x"));
    assert_eq!(w.deploy.endpoint_mode, EndpointMode::Dnsrr);
    assert_eq!(w.ports[0].target, 8080);
    assert_eq!(w.ports[0].published.as_deref(), Some("30080"));
    let h = w.healthcheck.as_ref().unwrap();
    assert_eq!(h.test, ["CMD", "test", "-f", "/tmp/ok"]);
    assert_eq!(
        (h.interval, h.retries),
        (Some(Duration::from_secs(2)), Some(4))
    );
    assert_eq!(w.volumes[0].kind, VolumeKind::Bind);
    assert_eq!(w.volumes[0].source.as_deref(), Some("/run/kube/p/web/c"));
    assert!(w.volumes[0].read_only);
    assert_eq!(w.volumes[2].source.as_deref(), Some("store"));
    assert_eq!(
        r.files,
        vec![
            PlayFile {
                path: "web/c/app.conf".into(),
                data: b"a=1\n".to_vec(),
                mode: 0o644
            },
            PlayFile {
                path: "web/s/password".into(),
                data: b"secret".to_vec(),
                mode: 0o400
            },
        ]
    );
    assert!(r.project.networks.contains_key("default"));
}

#[test]
fn host_pid_and_ipc_round_trip() {
    let y = pod("  hostPID: true\n  hostIPC: true\n", "");
    let s = &run(&y).unwrap().project.services["p"];
    assert_eq!(s.namespaces.pid.as_deref(), Some("host"));
    assert_eq!(s.namespaces.ipc.as_deref(), Some("host"));
    let mut p = run(&y).unwrap().project;
    p.services.get_mut("p").unwrap().namespaces.uts = None;
    let back = to_yaml(&generate(&p, &GenerateOptions::default()).unwrap());
    assert!(
        back.contains("hostPID: true") && back.contains("hostIPC: true"),
        "{back}"
    );
}

fn pod(extra_spec: &str, extra_ctr: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: p}}
spec:
{extra_spec}  containers:
  - name: c
    image: busybox
{extra_ctr}"
    )
}

#[test]
fn bad_input_names_the_kind_and_the_field() {
    let ss = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\nspec: {}\n";
    let e = err(ss);
    assert!(
        e.starts_with("StatefulSet db: kind: kind StatefulSet is not supported"),
        "{e}"
    );
    let e = err(&pod("  shareProcessNamespace: true\n", ""));
    assert_eq!(
        e,
        "Pod p: spec.shareProcessNamespace: not supported by berth kube play"
    );
    let e = err(&pod("  initContainers: [{name: i, image: busybox}]\n", ""));
    assert!(
        e.starts_with("Pod p: spec.initContainers: not supported"),
        "{e}"
    );
    // A field the API does not have at all.
    let e = err(&pod("", "    colour: blue\n"));
    assert_eq!(
        e,
        "Pod p: spec.containers[0].colour: no such field in the API"
    );
    let e = err(&pod(
        "",
        "    lifecycle: {preStop: {exec: {command: [x]}}}\n",
    ));
    assert_eq!(
        e,
        "Pod p: spec.containers[0].lifecycle: not supported by berth kube play"
    );
    let e = err(&pod(
        "  volumes: [{name: n, nfs: {server: s, path: /}}]\n",
        "    volumeMounts: [{name: n, mountPath: /n}]\n",
    ));
    assert!(
        e.starts_with("Pod p: spec.volumes[0]: volume type nfs is not supported"),
        "{e}"
    );
    // Probes: what the engine cannot make, and bad handlers, by their field.
    for (probe, want) in [
        (
            "livenessProbe: {httpGet: {port: 443, scheme: HTTPS}}",
            "Pod p: spec.containers[0].livenessProbe.httpGet.scheme: HTTPS is not supported (only HTTP)",
        ),
        (
            "readinessProbe: {httpGet: {path: /}}",
            "Pod p: spec.containers[0].readinessProbe.httpGet.port: required",
        ),
        (
            "livenessProbe: {tcpSocket: {port: 80, host: db.local}}",
            "Pod p: spec.containers[0].livenessProbe.tcpSocket.host: db.local: only an IP address is supported (no host names)",
        ),
        (
            "livenessProbe: {tcpSocket: {port: http}}",
            "Pod p: spec.containers[0].livenessProbe.tcpSocket.port: \"http\": no port of the container has this name",
        ),
        (
            "livenessProbe: {tcpSocket: {port: 70000}}",
            "Pod p: spec.containers[0].livenessProbe.tcpSocket.port: 70000: must be a port number 1-65535",
        ),
        (
            "livenessProbe: {grpc: {port: 9000}}",
            "Pod p: spec.containers[0].livenessProbe.grpc: not supported (berth runs exec, httpGet and tcpSocket probes)",
        ),
        (
            "livenessProbe: {periodSeconds: 2}",
            "Pod p: spec.containers[0].livenessProbe: needs one of exec, httpGet, tcpSocket",
        ),
        (
            "livenessProbe: {tcpSocket: {port: 80}, exec: {command: [\"true\"]}}",
            "Pod p: spec.containers[0].livenessProbe: has exec and tcpSocket: only one handler is allowed",
        ),
        (
            "livenessProbe: {tcpSocket: {port: 80}, successThreshold: 2}",
            "Pod p: spec.containers[0].livenessProbe.successThreshold: must be 1",
        ),
        (
            "livenessProbe: {httpGet: {port: 80, httpHeaders: [{name: \"a b\", value: x}]}}",
            "Pod p: spec.containers[0].livenessProbe.httpGet.httpHeaders[0].name: must be an HTTP header name",
        ),
        (
            "livenessProbe: {tcpSocket: {port: 80}}\n    startupProbe: {tcpSocket: {port: 81}}",
            "Pod p: spec.containers[0].startupProbe: not supported unless it is the livenessProbe's (or readinessProbe's) check",
        ),
    ] {
        let e = err(&pod("", &format!("    {probe}\n")));
        assert!(e.starts_with(want), "{probe}: {e}");
    }
    let e = err(&pod(
        "",
        "    env: [{name: A, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]\n",
    ));
    assert_eq!(
        e,
        "Pod p: spec.containers[0].env[0].valueFrom.fieldRef: not supported by berth kube play"
    );
    let e = err(&pod(
        "",
        "    env: [{name: A, valueFrom: {configMapKeyRef: {name: nope, key: k}}}]\n",
    ));
    assert!(e.contains("key k of nope is not in the file"), "{e}");
    // A field of another type than the API's, by its path.
    let e = err(&pod("", "    tty: yes please\n"));
    assert!(
        e.starts_with("Pod p: spec.containers[0].tty: not the API's shape"),
        "{e}"
    );
    let two = pod("", "  - {name: d, image: busybox}\n");
    assert!(err(&two).starts_with("Pod p: spec.containers: 2 containers"));
    let svc = format!(
        "{}---\napiVersion: v1\nkind: Service\nmetadata: {{name: other}}\nspec:\n  selector: {{app: x}}\n  ports: [{{port: 80}}]\n",
        pod("", "").replace("metadata: {name: p}", "metadata: {name: p, labels: {app: x}}")
    );
    let e = err(&svc);
    assert!(e.starts_with("Service other: metadata.name: a ClusterIP Service must be named as the workload it selects (p)"), "{e}");
    assert!(
        err("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
            .contains("no Pod or Deployment")
    );
}

#[test]
fn a_readiness_probe_alone_only_gates_the_balancer() {
    let r = run(&pod(
        "",
        "    readinessProbe: {exec: {command: [test, -f, /tmp/ready]}, periodSeconds: 1}\n",
    ))
    .unwrap();
    let s = &r.project.services["p"];
    assert_eq!(s.health_role, HealthRole::Readiness);
    assert_eq!(
        s.healthcheck.as_ref().unwrap().test,
        ["CMD", "test", "-f", "/tmp/ready"]
    );
    let r = run(&pod(
        "",
        "    livenessProbe: {exec: {command: [\"true\"]}}\n",
    ))
    .unwrap();
    assert_eq!(r.project.services["p"].health_role, HealthRole::Liveness);
}

#[test]
fn http_get_and_tcp_socket_probes_and_readiness_beside_liveness() {
    let played = run(&pod(
        "",
        "    ports: [{name: web, containerPort: 8080}]\n    livenessProbe: {tcpSocket: {port: 8080}, periodSeconds: 2, timeoutSeconds: 3, failureThreshold: 1}\n    readinessProbe:\n      httpGet: {path: /ready, port: web, host: 127.0.0.1, httpHeaders: [{name: X-Probe, value: r}]}\n      successThreshold: 2\n      initialDelaySeconds: 4\n",
    ))
    .unwrap();
    let s = &played.project.services["p"];
    assert_eq!(s.health_role, HealthRole::Liveness);
    let h = s.healthcheck.as_ref().unwrap();
    assert_eq!(h.test, ["TCP-SOCKET", "POD_IP:8080"]);
    assert_eq!(
        h.probe,
        Some(NetProbe::TcpSocket {
            host: None,
            port: 8080
        })
    );
    assert_eq!(
        (h.interval, h.timeout, h.retries, h.start_period),
        (
            Some(Duration::from_secs(2)),
            Some(Duration::from_secs(3)),
            Some(1),
            None
        )
    );
    let r = s.readiness.as_ref().unwrap();
    assert_eq!(r.test, ["HTTP-GET", "http://127.0.0.1:8080/ready"]);
    assert_eq!(
        r.probe,
        Some(NetProbe::HttpGet {
            host: Some("127.0.0.1".into()),
            port: 8080,
            path: "/ready".into(),
            headers: vec![("X-Probe".into(), "r".into())],
        })
    );
    assert_eq!(r.success_threshold, Some(2));
    assert_eq!(r.start_period, Some(Duration::from_secs(4)));
    // And back: generate writes the same probes.
    let g = generate(&played.project, &GenerateOptions::default()).unwrap();
    let d = &g
        .manifests
        .iter()
        .find(|m| m.kind == "Deployment")
        .unwrap()
        .value;
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        c["livenessProbe"]["tcpSocket"],
        serde_json::json!({"port": 8080})
    );
    assert_eq!(c["livenessProbe"]["failureThreshold"], 1);
    assert_eq!(
        c["readinessProbe"]["httpGet"],
        serde_json::json!({"path": "/ready", "port": 8080, "host": "127.0.0.1", "httpHeaders": [{"name": "X-Probe", "value": "r"}]})
    );
    assert_eq!(c["readinessProbe"]["successThreshold"], 2);
    assert_eq!(c["readinessProbe"]["initialDelaySeconds"], 4);
    // The same probe twice is one check; a startupProbe of it the start period.
    let r = run(&pod(
        "",
        "    livenessProbe: {httpGet: {port: 80}}\n    readinessProbe: {httpGet: {port: 80}}\n    startupProbe: {httpGet: {port: 80}, periodSeconds: 1, failureThreshold: 30}\n",
    ))
    .unwrap();
    let s = &r.project.services["p"];
    assert!(s.readiness.is_none());
    let h = s.healthcheck.as_ref().unwrap();
    assert_eq!(h.test, ["HTTP-GET", "http://POD_IP:80/"]);
    assert_eq!(h.start_period, Some(Duration::from_secs(30)));
    assert_eq!(h.start_interval, Some(Duration::from_secs(1)));
}

#[test]
fn quantities() {
    assert_eq!(memory("32Mi"), Some(32 << 20));
    assert_eq!(memory("1G"), Some(1_000_000_000));
    assert_eq!(memory("512"), Some(512));
    assert_eq!(memory("x"), None);
    assert_eq!(cpus("500m"), Some(0.5));
    assert_eq!(cpus("2"), Some(2.0));
    assert_eq!(cpus("0"), None);
}
