//! `berth kube generate` against the Kubernetes API's types: every manifest must
//! deserialize into k8s-openapi's type for its kind and serialize back to the same JSON,
//! so that a field the API does not have (or has with another type) fails the test.

use super::*;
use crate::compose::{self, LoadOptions};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Service as KService};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde::{de::DeserializeOwned, Serialize};
use std::path::PathBuf;

fn strict<T: DeserializeOwned + Serialize>(v: &Value) -> Result<(), String> {
    let t: T = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&t).map_err(|e| e.to_string())?;
    if &back == v {
        Ok(())
    } else {
        Err(format!(
            "not the API's shape (unknown or mistyped fields dropped):\nours: {v}\nAPI:  {back}"
        ))
    }
}

fn validate(m: &Manifest) -> Result<(), String> {
    match m.kind {
        "Deployment" => strict::<Deployment>(&m.value),
        "Service" => strict::<KService>(&m.value),
        "ConfigMap" => strict::<ConfigMap>(&m.value),
        "PersistentVolumeClaim" => strict::<PersistentVolumeClaim>(&m.value),
        "HorizontalPodAutoscaler" => strict::<HorizontalPodAutoscaler>(&m.value),
        "NetworkPolicy" => strict::<NetworkPolicy>(&m.value),
        k => Err(format!("no check for kind {k}")),
    }
}

fn load(yaml: &str) -> Project {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("compose.yaml");
    std::fs::write(&f, yaml).unwrap();
    compose::load(&LoadOptions {
        files: vec![f],
        working_dir: dir.path().to_path_buf(),
        ..Default::default()
    })
    .unwrap()
}

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

fn find<'a>(g: &'a Generated, kind: &str, name: &str) -> &'a Value {
    &g.manifests
        .iter()
        .find(|m| m.kind == kind && m.name == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
        .value
}

#[test]
fn supermarket_manifests_are_the_apis_and_keep_the_project() {
    let p = supermarket();
    let g = generate(
        &p,
        &GenerateOptions {
            runtime_class: Some("berth".into()),
            ..Default::default()
        },
    )
    .unwrap();
    for m in &g.manifests {
        validate(m).unwrap_or_else(|e| panic!("{} {}: {e}", m.kind, m.name));
    }
    let kinds: BTreeSet<_> = g
        .manifests
        .iter()
        .map(|m| (m.kind, m.name.as_str()))
        .collect();
    for want in [
        ("Deployment", "payment"),
        ("Deployment", "inventory"),
        ("Deployment", "db"),
        ("Service", "payment-public"),
        ("HorizontalPodAutoscaler", "payment"),
        ("PersistentVolumeClaim", "supermarket-db-data"),
        ("NetworkPolicy", "db-networks"),
    ] {
        assert!(kinds.contains(&want), "{want:?} missing: {kinds:?}");
    }

    let pay = find(&g, "Deployment", "payment");
    assert_eq!(pay["spec"]["replicas"], 3);
    let pod = &pay["spec"]["template"]["spec"];
    assert_eq!(pod["runtimeClassName"], "berth");
    assert_eq!(pod["terminationGracePeriodSeconds"], 2);
    let ctr = &pod["containers"][0];
    assert_eq!(ctr["image"], "supermarket/payment:1");
    assert_eq!(ctr["resources"]["limits"]["cpu"], "500m");
    assert_eq!(ctr["resources"]["limits"]["memory"], "32Mi");
    assert_eq!(ctr["ports"][0]["containerPort"], 80);
    assert_eq!(
        ctr["readinessProbe"]["exec"]["command"],
        json!([
            "/bin/sh",
            "-c",
            "wget -q -O /dev/null http://127.0.0.1/health"
        ])
    );
    assert_eq!(ctr["readinessProbe"]["failureThreshold"], 2);
    assert_eq!(ctr["startupProbe"]["periodSeconds"], 1);
    assert_eq!(
        ctr["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(
        pay["spec"]["strategy"]["rollingUpdate"],
        json!({"maxSurge": 1, "maxUnavailable": 0})
    );

    let public = find(&g, "Service", "payment-public");
    assert_eq!(public["spec"]["type"], "LoadBalancer");
    assert_eq!(public["spec"]["ports"][0]["port"], 8080);
    assert_eq!(public["spec"]["ports"][0]["targetPort"], 80);
    let hpa = find(&g, "HorizontalPodAutoscaler", "payment");
    assert_eq!(hpa["spec"]["minReplicas"], 3);
    assert_eq!(hpa["spec"]["maxReplicas"], 6);
    assert_eq!(
        hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        50
    );
    assert_eq!(
        hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
        30
    );

    // The database: its claim, recreated rather than rolled (one ReadWriteOnce claim),
    // reachable from the inventory API only, and reaching nothing outside "data".
    let db = find(&g, "Deployment", "db");
    assert_eq!(db["spec"]["strategy"]["type"], "Recreate");
    assert_eq!(
        db["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "supermarket-db-data"
    );
    assert_eq!(find(&g, "Service", "db")["spec"]["clusterIP"], "None");
    let pol = find(&g, "NetworkPolicy", "db-networks");
    let from =
        &pol["spec"]["ingress"][0]["from"][0]["podSelector"]["matchExpressions"][0]["values"];
    assert_eq!(from, &json!(["db", "inventory"]));
    assert_eq!(pol["spec"]["ingress"].as_array().unwrap().len(), 1);
    assert_eq!(pol["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    let pay_pol = find(&g, "NetworkPolicy", "payment-networks");
    assert_eq!(
        pay_pol["spec"]["ingress"][0]["from"][0]["podSelector"]["matchExpressions"][0]["values"],
        json!(["inventory", "payment"])
    );
    assert_eq!(pay_pol["spec"]["ingress"][1]["ports"][0]["port"], 80);
    assert!(pay_pol["spec"].get("egress").is_none());
    // init: true and depends_on are said, not dropped.
    assert!(
        g.warnings
            .iter()
            .any(|w| w.contains("payment") && w.contains("init")),
        "{:?}",
        g.warnings
    );
    assert!(to_yaml(&g).matches("\n---\n").count() + 1 == g.manifests.len());
}

#[test]
fn security_env_volumes_and_node_ports() {
    let p = load(
        r#"
name: shop
services:
  web:
    image: web:1
    entrypoint: ["/bin/app"]
    command: ["--port", "8000"]
    environment: {MODE: prod}
    user: "1000:1000"
    read_only: true
    cap_drop: [ALL]
    cap_add: [NET_BIND_SERVICE]
    security_opt: ["no-new-privileges:true", "seccomp=unconfined"]
    ports: ["30080:8000", "9000:9000/udp"]
    expose: ["7000-7001"]
    tmpfs: [/run]
    volumes: [cache:/cache, /srv/static:/static:ro]
    extra_hosts: ["db.local:10.0.0.5"]
    sysctls: {net.core.somaxconn: "1024"}
    deploy:
      endpoint_mode: dnsrr
      resources:
        reservations: {cpus: "0.25", memory: 64M}
volumes:
  cache: {}
"#,
    );
    let g = generate(
        &p,
        &GenerateOptions {
            publish: Publish::NodePort,
            ..Default::default()
        },
    )
    .unwrap();
    for m in &g.manifests {
        validate(m).unwrap_or_else(|e| panic!("{} {}: {e}", m.kind, m.name));
    }
    let d = find(&g, "Deployment", "web");
    let pod = &d["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(c["command"], json!(["/bin/app"]));
    assert_eq!(c["args"], json!(["--port", "8000"]));
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsUser"], 1000);
    assert_eq!(sc["runAsGroup"], 1000);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["seccompProfile"]["type"], "Unconfined");
    assert_eq!(
        sc["capabilities"],
        json!({"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]})
    );
    assert_eq!(c["envFrom"][0]["configMapRef"]["name"], "web-env");
    assert_eq!(find(&g, "ConfigMap", "web-env")["data"]["MODE"], "prod");
    assert_eq!(
        c["resources"]["requests"],
        json!({"cpu": "250m", "memory": "64Mi"})
    );
    assert_eq!(
        pod["hostAliases"],
        json!([{"ip": "10.0.0.5", "hostnames": ["db.local"]}])
    );
    assert_eq!(
        pod["securityContext"]["sysctls"][0]["name"],
        "net.core.somaxconn"
    );
    let ports: Vec<_> = c["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["containerPort"].clone())
        .collect();
    assert_eq!(
        ports,
        vec![json!(8000), json!(9000), json!(7000), json!(7001)]
    );
    let vols = pod["volumes"].as_array().unwrap();
    assert!(vols
        .iter()
        .any(|v| v["persistentVolumeClaim"]["claimName"] == "shop-cache"));
    assert!(vols.iter().any(|v| v["hostPath"]["path"] == "/srv/static"));
    assert!(vols.iter().any(|v| v["emptyDir"]["medium"] == "Memory"));
    assert_eq!(find(&g, "Service", "web")["spec"]["clusterIP"], "None");
    let public = find(&g, "Service", "web-public");
    assert_eq!(public["spec"]["type"], "NodePort");
    assert_eq!(public["spec"]["ports"][0]["nodePort"], 30080);
    assert!(public["spec"]["ports"][1].get("nodePort").is_none());
    assert_eq!(public["spec"]["ports"][1]["protocol"], "UDP");
    assert!(g
        .warnings
        .iter()
        .any(|w| w.contains("9000") && w.contains("node port")));
    assert!(g.warnings.iter().any(|w| w.contains("/srv/static")));
}

#[test]
fn what_kubernetes_cannot_do_is_an_error_naming_service_and_key() {
    for (yaml, want) in [
        (
            "services: {a: {image: x, devices: [/dev/fuse]}}",
            "service a: devices",
        ),
        (
            "services: {a: {image: x, user: nobody}}",
            "service a: user: nobody",
        ),
        (
            "services: {b: {image: x, network_mode: none}}",
            "service b: network_mode",
        ),
        (
            "services: {a: {image: x, extra_hosts: ['h:host-gateway']}}",
            "service a: extra_hosts",
        ),
        (
            "services: {a: {image: x, security_opt: ['label=disable']}}",
            "service a: security_opt",
        ),
        (
            "services: {a: {image: x, pid: 'container:db'}}",
            "service a: pid: container:db has no kubernetes equivalent",
        ),
        (
            "services: {a: {image: x, uts: host}}",
            "service a: uts: host has no kubernetes equivalent",
        ),
    ] {
        let p = load(&format!("name: t\n{yaml}\n"));
        let e = generate(&p, &GenerateOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(want), "{yaml}: {e}");
    }
    let p = load("name: t\nservices: {a: {image: x}}\n");
    let e = generate(
        &p,
        &GenerateOptions {
            services: vec!["nope".into()],
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "no such service: nope");
}

#[test]
fn the_check_catches_a_field_the_api_does_not_have() {
    let p = supermarket();
    let g = generate(&p, &GenerateOptions::default()).unwrap();
    let mut m = g
        .manifests
        .iter()
        .find(|m| m.kind == "Deployment")
        .unwrap()
        .clone();
    m.value["spec"]["template"]["spec"]["containers"][0]["healthcheck"] = json!({"test": "x"});
    assert!(validate(&m).is_err());
    let mut m = g
        .manifests
        .iter()
        .find(|m| m.kind == "Service")
        .unwrap()
        .clone();
    m.value["spec"]["clusterIP"] = json!(1);
    assert!(validate(&m).is_err());
}

#[test]
fn runtime_becomes_the_runtime_class() {
    let p = load("name: t\nservices:\n  a: {image: x, runtime: gvisor}\n  b: {image: x, runtime: /usr/bin/crun}\n");
    let g = generate(&p, &GenerateOptions::default()).unwrap();
    let spec = |n: &str| find(&g, "Deployment", n)["spec"]["template"]["spec"].clone();
    assert_eq!(spec("a")["runtimeClassName"], "gvisor");
    assert!(spec("b").get("runtimeClassName").is_none());
    assert!(
        g.warnings
            .iter()
            .any(|w| w.contains("runtime: /usr/bin/crun is not a RuntimeClass name")),
        "{:?}",
        g.warnings
    );
    // --runtime-class wins.
    let g = generate(
        &p,
        &GenerateOptions {
            runtime_class: Some("berth".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        find(&g, "Deployment", "a")["spec"]["template"]["spec"]["runtimeClassName"],
        "berth"
    );
}
