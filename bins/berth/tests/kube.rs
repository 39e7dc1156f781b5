//! `berth kube generate` through the CLI (issue 15 item 3): the supermarket's manifests
//! on stdout and as files, warnings on stderr, bad input refused before anything is
//! written. The manifests' shapes are checked against the API's types in
//! crates/services (kube::tests); when `kubernetes-validate` (PyPI) is on PATH, the
//! stream is also checked with its --strict JSON schemas.

mod common;
#[path = "common/compose.rs"]
mod compose_harness;
use common::*;
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
