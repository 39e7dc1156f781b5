//! `berth kube generate` through the CLI (issue 15 item 3): the supermarket's manifests
//! on stdout and as files, warnings on stderr, bad input refused before anything is
//! written. `berth kube play` (item 4, as root, each test in its engine's network
//! namespace): generate's supermarket played back answers the same requests; ConfigMaps,
//! Secrets, a NodePort Service and a liveness probe; bad input refused before anything
//! starts (item 5). The manifests' shapes are checked against the API's types in
//! crates/services (kube::tests); when `kubernetes-validate` (PyPI) is on PATH, the
//! stream is also checked with its --strict JSON schemas.

mod common;
#[path = "common/compose.rs"]
mod compose_harness;
use common::*;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn supermarket() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/supermarket/compose.yaml")
        .to_string_lossy()
        .into_owned()
}

fn kinds(stream: &str) -> Vec<(String, String)> {
    stream
        .split("\n---\n")
        .map(|doc| {
            let kind = doc
                .lines()
                .find_map(|l| l.strip_prefix("kind: "))
                .unwrap_or("?")
                .to_string();
            let name = doc
                .lines()
                .find_map(|l| l.strip_prefix("  name: "))
                .unwrap_or("?")
                .to_string();
            (kind, name)
        })
        .collect()
}

#[test]
fn generate_the_supermarket() {
    let dir = tempfile::tempdir().unwrap();
    let b = Berth::new(dir.path());
    let f = supermarket();
    let o = b.run(&["kube", "generate", "-f", &f, "--runtime-class", "berth"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(out.starts_with("---\n"), "{out}");
    let k = kinds(&out);
    for want in [
        ("Deployment", "payment"),
        ("Deployment", "inventory"),
        ("Deployment", "db"),
        ("Service", "payment-public"),
        ("HorizontalPodAutoscaler", "payment"),
        ("PersistentVolumeClaim", "supermarket-db-data"),
        ("NetworkPolicy", "db-networks"),
    ] {
        assert!(
            k.contains(&(want.0.to_string(), want.1.to_string())),
            "{want:?} not in {k:?}"
        );
    }
    assert_eq!(out.matches("runtimeClassName: berth").count(), 3);
    assert!(err.contains("WARN service payment: init:"), "{err}");

    // Checked with the API's JSON schemas when the tool is here.
    let file = dir.path().join("all.yaml");
    std::fs::write(&file, &out).unwrap();
    match Command::new("kubernetes-validate")
        .args(["--strict", "--quiet"])
        .arg(&file)
        .output()
    {
        Ok(v) => {
            let text = String::from_utf8_lossy(&v.stdout).to_string()
                + &String::from_utf8_lossy(&v.stderr);
            assert!(
                v.status.success() && !text.contains("ERROR"),
                "kubernetes-validate: {text}"
            );
        }
        Err(_) => eprintln!(
            "kubernetes-validate is not installed: the schema check is kube::tests' alone"
        ),
    }

    // One file per manifest; a second run does not overwrite them.
    let outdir = dir.path().join("k8s");
    let outdir_s = outdir.to_string_lossy().into_owned();
    b.ok(&[
        "kube",
        "generate",
        "-f",
        &f,
        "--publish",
        "nodeport",
        "-o",
        &outdir_s,
    ]);
    let mut files: Vec<_> = std::fs::read_dir(&outdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files.len(), k.len(), "{files:?}");
    let public = std::fs::read_to_string(outdir.join("payment-public-service.yaml")).unwrap();
    assert!(public.contains("type: NodePort"), "{public}");
    let e = b.fails(&["kube", "generate", "-f", &f, "-o", &outdir_s]);
    assert!(e.contains("exists already"), "{e}");

    // Only the services named.
    let one = b.ok(&["kube", "generate", "-f", &f, "db"]);
    assert!(
        kinds(&one)
            .iter()
            .all(|(_, n)| n.starts_with("db") || n.starts_with("supermarket-db")),
        "{one}"
    );
}

#[test]
fn generate_refuses_what_kubernetes_cannot_run() {
    let dir = tempfile::tempdir().unwrap();
    let b = Berth::new(dir.path());
    let f = dir.path().join("compose.yaml");
    std::fs::write(
        &f,
        "name: t\nservices:\n  a:\n    image: x\n    devices: [/dev/fuse]\n",
    )
    .unwrap();
    let f = f.to_string_lossy().into_owned();
    let o = b.run(&["kube", "generate", "-f", &f]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        o.stdout.is_empty(),
        "wrote {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("Error: service a: devices: "), "{err}");
    let e = b.fails(&["kube", "generate", "-f", &f, "nope"]);
    assert!(e.contains("no such service: nope"), "{e}");
}

/// `--project NAME`: a project berth compose runs, with its active services and their
/// current scale.
#[test]
fn generate_from_a_running_project() {
    let mut c = compose_harness::Compose::bare("kp");
    compose_harness::load_sh_image(&c.e, "app:1", "exec sleep 1d");
    let f = c.write(
        "compose.yaml",
        "services:\n  app:\n    image: app:1\n  extra:\n    image: app:1\n    profiles: [x]\n",
    );
    c.set("kp", &[f]);
    c.ok(&["up", "-d"]);
    c.ok(&["scale", "app=2"]);
    let out = c.e.b.ok(&["kube", "generate", "--project", "kp"]);
    let k = kinds(&out);
    assert!(k.contains(&("Deployment".into(), "app".into())), "{k:?}");
    assert!(!k.iter().any(|(_, n)| n.starts_with("extra")), "{k:?}");
    assert!(out.contains("replicas: 2"), "{out}");
    let e = c.e.b.fails(&["kube", "generate", "--project", "nope"]);
    assert!(e.contains("project nope not found"), "{e}");
}

/// `kube generate CONTAINER`: a container made by `berth run` as a Pod (its published
/// port a LoadBalancer Service, its environment, its health check as probes), which
/// `kube play` runs again.
#[test]
fn generate_a_pod_from_a_container_and_play_it() {
    let mut c = compose_harness::Compose::bare("solo");
    c.e.ok(&[
        "run",
        "-d",
        "--name",
        "solo",
        "-p",
        "8085:8080",
        "-e",
        "GREETING=hi",
        "--health-cmd",
        "test -f /tmp/www/who",
        "--health-interval",
        "1s",
        "busybox:latest",
        "sh",
        "-c",
        "mkdir -p /tmp/www; echo $GREETING > /tmp/www/who; exec httpd -f -p 8080 -h /tmp/www",
    ]);
    let out = c.e.ok(&["kube", "generate", "solo"]);
    assert_eq!(
        kinds(&out),
        [
            ("Pod".to_string(), "solo".to_string()),
            ("Service".to_string(), "solo-public".to_string())
        ],
        "{out}"
    );
    for want in [
        "name: GREETING",
        "value: hi",
        "livenessProbe:",
        "test -f /tmp/www/who",
        "port: 8085",
        "targetPort: 8080",
    ] {
        assert!(out.contains(want), "{want} not in {out}");
    }
    // The id names it too; a name that is no container's is a compose service.
    let id = c.e.ok(&["inspect", "-f", "{{.Id}}", "solo"]);
    assert_eq!(c.e.ok(&["kube", "generate", &id.trim()[..12]]), out);
    let (o, e) = c.e.code(1, &["kube", "generate", "solo", "nosuch"]);
    assert!(o.is_empty() && e.contains("no configuration file"), "{e}");
    c.e.ok(&["rm", "-f", "solo"]);

    let f = c.write("solo.yaml", &out);
    let f = f.to_str().unwrap();
    c.set("solo", &[]);
    c.e.ok(&["kube", "play", f]);
    c.wait_healthy(1, 30);
    let body = c.get_eventually("http://198.51.100.1:8085/who", 20);
    assert_eq!(body, "hi\n");
    c.e.ok(&["kube", "play", "--down", f]);
    assert!(c.e.ok(&["ps", "-aq"]).trim().is_empty());
}

const PAY_URL: &str = "http://198.51.100.1:8080/cgi-bin/pay?item=apples";

/// The supermarket through `kube generate`, then `kube play` of that stream: the same
/// requests answered by the same services, the NetworkPolicies kept (db reachable from
/// inventory only); a second play refused, `--replace` brings it back anew, `--down`
/// leaves nothing but the claim's volume.
#[test]
fn play_the_generated_supermarket() {
    let mut c = compose_harness::Compose::supermarket("supermarket");
    let y = c.e.ok(&["kube", "generate", "-f", &supermarket()]);
    let f = c.write("k8s.yaml", &y);
    let f = f.to_str().unwrap();
    // The project play makes is named by generate's part-of label; down on drop by name.
    c.set("supermarket", &[]);
    let out = c.e.ok(&["kube", "play", f]);
    assert_eq!(out.trim(), "supermarket");
    let rows = c.wait_healthy(5, 60);
    let body = c.get_eventually(PAY_URL, 20);
    let host = c.hostnames();
    let named = |k: &str| {
        host.get(&compose_harness::field(&body, k).unwrap_or_default())
            .cloned()
    };
    assert!(
        named("replica").is_some_and(|n| n.starts_with("supermarket-payment-")),
        "{body}"
    );
    assert_eq!(
        named("inventory_replica").as_deref(),
        Some("supermarket-inventory-1"),
        "{body}"
    );
    assert_eq!(
        named("db_replica").as_deref(),
        Some("supermarket-db-1"),
        "{body}"
    );
    assert_eq!(
        compose_harness::field(&body, "paid").as_deref(),
        Some("true"),
        "{body}"
    );
    let get_db = |svc: &str| {
        c.run(&[
            "exec",
            "-T",
            svc,
            "timeout",
            "3",
            "wget",
            "-q",
            "-O-",
            "http://db/cgi-bin/get?key=milk",
        ])
    };
    assert!(get_db("inventory").status.success(), "inventory -> db");
    assert!(!get_db("payment").status.success(), "payment reached db");

    let (_, e) = c.e.code(1, &["kube", "play", f]);
    assert!(
        e.contains("project supermarket is running: use --replace"),
        "{e}"
    );
    c.e.ok(&["kube", "play", "--replace", f]);
    let again = c.wait_healthy(5, 60);
    let ids: Vec<String> = rows.iter().map(|r| r.id()).collect();
    assert!(again.iter().all(|r| !ids.contains(&r.id())), "not replaced");
    c.get_eventually(PAY_URL, 20);

    let ids: Vec<String> = again.iter().map(|r| r.id()).chain(ids).collect();
    c.e.ok(&["kube", "play", "--down", f]);
    let left: Vec<String> = c
        .leftovers("supermarket", &ids)
        .into_iter()
        .filter(|l| !l.starts_with("volumes: "))
        .collect();
    assert!(left.is_empty(), "left after --down: {left:#?}");
    assert!(!c.e.root().join("kube/supermarket").exists());
    // The claim's data is kept, as kube down keeps volumes.
    let vols = c.e.ok(&["volume", "ls", "-q"]);
    assert!(vols.contains("supermarket-db-data"), "{vols}");
    c.e.ok(&["volume", "rm", "supermarket-db-data"]);
}

const WEB: &str = "
apiVersion: v1
kind: ConfigMap
metadata: {name: site}
data:
  index.html: \"hello from a configmap\\n\"
  GREETING: hi
---
apiVersion: v1
kind: Secret
metadata: {name: pw}
stringData: {password: s3cret}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: busybox:latest
        command: [sh, -c, \"touch /tmp/alive; exec httpd -f -p 8080 -h /www\"]
        env:
        - {name: GREETING, valueFrom: {configMapKeyRef: {name: site, key: GREETING}}}
        - {name: PASSWORD, valueFrom: {secretKeyRef: {name: pw, key: password}}}
        volumeMounts:
        - {name: www, mountPath: /www}
        - {name: secrets, mountPath: /run/secrets}
        livenessProbe:
          exec: {command: [test, -f, /tmp/alive]}
          periodSeconds: 1
          failureThreshold: 1
      volumes:
      - {name: www, configMap: {name: site, items: [{key: index.html, path: index.html}]}}
      - {name: secrets, secret: {secretName: pw}}
---
apiVersion: v1
kind: Service
metadata: {name: web-public}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 8080, targetPort: 8080, nodePort: 30080}]
";

/// ConfigMap and Secret as environment and files, a NodePort Service, and a liveness
/// probe whose failure replaces the replica (the kubelet restarts it).
#[test]
fn play_configmaps_secrets_nodeport_and_liveness() {
    let mut c = compose_harness::Compose::bare("web");
    let f = c.write("web.yaml", WEB);
    let f = f.to_str().unwrap();
    c.set("web", &[]);
    c.e.ok(&["kube", "play", f]);
    let rows = c.wait_healthy(2, 30);
    let body = c.get_eventually("http://198.51.100.1:30080/index.html", 20);
    assert_eq!(body, "hello from a configmap\n");
    let o = c.ok(&[
        "exec",
        "-T",
        "web",
        "sh",
        "-c",
        "echo $GREETING $PASSWORD; cat /run/secrets/password",
    ]);
    assert_eq!(o, "hi s3cret\ns3cret");
    // Read-only, as the kubelet mounts them.
    let o = c.run(&["exec", "-T", "web", "sh", "-c", "echo x > /www/index.html"]);
    assert!(!o.status.success(), "the configMap volume is writable");

    // Liveness: replica 1 fails its probe and is replaced by a new container (the
    // supervisor gives it the lowest free number); replica 2 is untouched.
    let id_of = |name: &str| {
        rows.iter()
            .find(|r| r.name() == name)
            .unwrap_or_else(|| panic!("no {name}"))
            .id()
    };
    let (first, second) = (id_of("web-web-1"), id_of("web-web-2"));
    c.ok(&["exec", "-T", "--index", "1", "web", "rm", "/tmp/alive"]);
    c.wait_for(30, "replica 1 replaced", || {
        let rows = c.ps_args(&[]);
        let ids: Vec<String> = rows.iter().map(|r| r.id()).collect();
        (rows.len() == 2
            && !ids.contains(&first)
            && ids.contains(&second)
            && rows.iter().all(|r| r.health() == "healthy"))
        .then_some(())
    });
    c.get_eventually("http://198.51.100.1:30080/index.html", 20);
    c.e.ok(&["kube", "play", "--down", f]);
    assert!(c.e.ok(&["ps", "-aq"]).trim().is_empty());
    assert!(!c.e.root().join("kube/web").exists());
}

const READY: &str = "
apiVersion: apps/v1
kind: Deployment
metadata: {name: who}
spec:
  replicas: 2
  selector: {matchLabels: {app: who}}
  template:
    metadata: {labels: {app: who}}
    spec:
      containers:
      - name: who
        image: busybox:latest
        command: [sh, -c, \"mkdir /tmp/www; hostname > /tmp/www/who; touch /tmp/ready; exec httpd -f -p 8080 -h /tmp/www\"]
        readinessProbe:
          exec: {command: [test, -f, /tmp/ready]}
          periodSeconds: 1
          failureThreshold: 1
---
apiVersion: v1
kind: Service
metadata: {name: who-public}
spec:
  type: LoadBalancer
  selector: {app: who}
  ports: [{port: 8081, targetPort: 8080}]
";

/// A readinessProbe alone: a replica that fails it leaves the load balancer and is not
/// restarted; it comes back when it passes again.
#[test]
fn play_readiness_takes_a_replica_out_of_the_balancer_and_back() {
    let mut c = compose_harness::Compose::bare("who");
    let f = c.write("who.yaml", READY);
    let f = f.to_str().unwrap();
    c.set("who", &[]);
    c.e.ok(&["kube", "play", f]);
    let rows = c.wait_healthy(2, 30);
    let url = "http://198.51.100.1:8081/who";
    c.get_eventually(url, 20);
    let host = |r: &compose_harness::PsRow| r.short_id();
    let (one, two) = (
        rows.iter().find(|r| r.name() == "who-who-1").unwrap(),
        rows.iter().find(|r| r.name() == "who-who-2").unwrap(),
    );
    let answers = |n: usize| -> BTreeSet<String> {
        (0..n)
            .map(|_| c.client.get(url).unwrap_or_default().trim().to_string())
            .collect()
    };
    c.wait_for(20, "both replicas answering", || {
        (answers(12).len() == 2).then_some(())
    });
    c.ok(&["exec", "-T", "--index", "1", "who", "rm", "/tmp/ready"]);
    c.wait_for(20, "replica 1 out of the balancer", || {
        (answers(12) == BTreeSet::from([host(two)])).then_some(())
    });
    // Not restarted: the same container runs, unhealthy.
    let now = c.ps_args(&[]);
    let r1 = now.iter().find(|r| r.name() == "who-who-1").unwrap();
    assert_eq!(r1.id(), one.id());
    assert_eq!(r1.state(), "running");
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(answers(12), BTreeSet::from([host(two)]));
    assert_eq!(c.ps_args(&[]).len(), 2);
    c.ok(&["exec", "-T", "--index", "1", "who", "touch", "/tmp/ready"]);
    c.wait_for(20, "replica 1 back in the balancer", || {
        (answers(12) == BTreeSet::from([host(one), host(two)])).then_some(())
    });
    let ids: Vec<String> = c.ps_args(&[]).iter().map(|r| r.id()).collect();
    assert!(
        ids.contains(&one.id()) && ids.contains(&two.id()),
        "{ids:?}"
    );
    c.e.ok(&["kube", "play", "--down", f]);
    assert!(c.e.ok(&["ps", "-aq"]).trim().is_empty());
}

const PROBED: &str = "
apiVersion: apps/v1
kind: Deployment
metadata: {name: who}
spec:
  replicas: 2
  selector: {matchLabels: {app: who}}
  template:
    metadata: {labels: {app: who}}
    spec:
      containers:
      - name: who
        image: busybox:latest
        command: [sh, -c, \"mkdir -p /tmp/www /tmp/live; hostname > /tmp/www/who; echo ok > /tmp/www/ready; httpd -f -p 9000 -h /tmp/live & echo $! > /tmp/live.pid; exec httpd -f -p 8080 -h /tmp/www\"]
        ports: [{name: web, containerPort: 8080}]
        readinessProbe:
          httpGet: {path: /ready, port: web, httpHeaders: [{name: X-Probe, value: ready}]}
          periodSeconds: 1
          failureThreshold: 1
        livenessProbe:
          tcpSocket: {port: 9000}
          periodSeconds: 1
          failureThreshold: 2
---
apiVersion: v1
kind: Service
metadata: {name: who-public}
spec:
  type: LoadBalancer
  selector: {app: who}
  ports: [{port: 8081, targetPort: 8080}]
";

/// An httpGet readinessProbe beside a different tcpSocket livenessProbe, both made from
/// the engine's side (no client in the container is used): failing readiness (a 404)
/// takes a replica out of the balancer without restarting it and passing puts it back;
/// failing liveness (nothing listening) replaces it.
#[test]
fn play_http_readiness_beside_tcp_liveness() {
    let mut c = compose_harness::Compose::bare("who");
    let f = c.write("who.yaml", PROBED);
    let f = f.to_str().unwrap();
    c.set("who", &[]);
    c.e.ok(&["kube", "play", f]);
    let rows = c.wait_healthy(2, 30);
    let url = "http://198.51.100.1:8081/who";
    c.get_eventually(url, 20);
    let host = |r: &compose_harness::PsRow| r.short_id();
    let (one, two) = (
        rows.iter().find(|r| r.name() == "who-who-1").unwrap(),
        rows.iter().find(|r| r.name() == "who-who-2").unwrap(),
    );
    let answers = |n: usize| -> BTreeSet<String> {
        (0..n)
            .map(|_| c.client.get(url).unwrap_or_default().trim().to_string())
            .collect()
    };
    c.wait_for(20, "both replicas answering", || {
        (answers(12).len() == 2).then_some(())
    });
    c.ok(&["exec", "-T", "--index", "1", "who", "rm", "/tmp/www/ready"]);
    c.wait_for(20, "replica 1 out of the balancer", || {
        (answers(12) == BTreeSet::from([host(two)])).then_some(())
    });
    // Not restarted, and its liveness still passes.
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(answers(12), BTreeSet::from([host(two)]));
    let now = c.ps_args(&[]);
    assert_eq!(now.len(), 2);
    let r1 = now.iter().find(|r| r.name() == "who-who-1").unwrap();
    assert_eq!(
        (r1.id(), r1.state(), r1.health()),
        (one.id(), "running".to_string(), "healthy".to_string())
    );
    c.ok(&[
        "exec",
        "-T",
        "--index",
        "1",
        "who",
        "sh",
        "-c",
        "echo ok > /tmp/www/ready",
    ]);
    c.wait_for(20, "replica 1 back in the balancer", || {
        (answers(12) == BTreeSet::from([host(one), host(two)])).then_some(())
    });

    // Liveness: nothing listens on 9000 any more in replica 1: it is replaced.
    c.ok(&[
        "exec",
        "-T",
        "--index",
        "1",
        "who",
        "sh",
        "-c",
        "kill $(cat /tmp/live.pid)",
    ]);
    c.wait_for(30, "replica 1 replaced", || {
        let rows = c.ps_args(&[]);
        let ids: Vec<String> = rows.iter().map(|r| r.id()).collect();
        (rows.len() == 2
            && !ids.contains(&one.id())
            && ids.contains(&two.id())
            && rows.iter().all(|r| r.health() == "healthy"))
        .then_some(())
    });
    c.wait_for(20, "two replicas answering again", || {
        (answers(12).len() == 2).then_some(())
    });
    c.e.ok(&["kube", "play", "--down", f]);
    assert!(c.e.ok(&["ps", "-aq"]).trim().is_empty());
}

/// Item 5: an unsupported kind or field is an error naming them, and nothing starts
/// (no container, network, volume, project record or file), even when the bad object
/// comes after good ones.
#[test]
fn play_refuses_bad_input_before_anything_starts() {
    let c = compose_harness::Compose::bare("bad");
    let good = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\nspec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec:\n  selector: {matchLabels: {app: a}}\n  template:\n    metadata: {labels: {app: a}}\n    spec:\n      containers: [{name: a, image: busybox:latest, volumeMounts: [{name: d, mountPath: /d}]}]\n      volumes: [{name: d, persistentVolumeClaim: {claimName: data}}]\n";
    for (extra, want) in [
        (
            "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\nspec: {selector: {}, serviceName: db, template: {}}\n",
            "Error: StatefulSet db: kind: kind StatefulSet is not supported",
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {shareProcessNamespace: true, containers: [{name: c, image: busybox:latest}]}\n",
            "Error: Pod p: spec.shareProcessNamespace: not supported by berth kube play",
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  initContainers: [{name: i, image: busybox:latest}]\n  containers: [{name: c, image: busybox:latest}]\n",
            "Error: Pod p: spec.initContainers: not supported by berth kube play",
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: busybox:latest, volumeMounts: [{name: n, mountPath: /n}]}]\n  volumes: [{name: n, nfs: {server: s, path: /}}]\n",
            "Error: Pod p: spec.volumes[0]: volume type nfs is not supported",
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: busybox:latest, readinessProbe: {exec: {command: [\"true\"]}}, livenessProbe: {httpGet: {port: 443, scheme: HTTPS}}}]\n",
            "Error: Pod p: spec.containers[0].livenessProbe.httpGet.scheme: HTTPS is not supported (only HTTP)",
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: busybox:latest, readinessProbe: {tcpSocket: {host: 127.0.0.1}}}]\n",
            "Error: Pod p: spec.containers[0].readinessProbe.tcpSocket.port: required",
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: busybox:latest, livenessProbe: {grpc: {port: 9000}}}]\n",
            "Error: Pod p: spec.containers[0].livenessProbe.grpc: not supported",
        ),
    ] {
        let f = c.write("bad.yaml", &format!("{good}---\n{extra}"));
        let (out, err) = c.e.code(1, &["kube", "play", f.to_str().unwrap()]);
        assert!(out.is_empty(), "{out}");
        assert!(err.starts_with(want), "{err}");
        assert!(c.e.ok(&["ps", "-aq"]).trim().is_empty());
        let nets = c.e.ok(&["network", "ls", "-q", "--filter", "label=com.docker.compose.project=bad"]);
        assert!(nets.trim().is_empty(), "{nets}");
        assert!(c.e.ok(&["volume", "ls", "-q"]).trim().is_empty());
        assert!(!c.e.root().join("kube").exists());
        assert!(c.e.ok(&["compose", "ls", "-a", "-q"]).trim().is_empty());
    }
}
