//! Interop with podman (an independent implementation): `berth save` → `podman load`,
//! `podman save` → `berth load`, and the unpacked rootfs equals podman's, file for file.
//! podman runs with its own --root/--runroot in a temp dir and the vfs driver.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    fn new() -> Podman {
        Podman {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn run(&self, args: &[&str]) -> String {
        let o = Command::new("podman")
            .arg("--root")
            .arg(self.dir.path().join("root"))
            .arg("--runroot")
            .arg(self.dir.path().join("run"))
            .args(["--storage-driver", "vfs", "--events-backend", "none"])
            .args(args)
            .env("HOME", self.dir.path())
            .output()
            .expect("podman");
        assert!(
            o.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }
    fn id(&self, img: &str) -> String {
        self.run(&["image", "inspect", "--format", "{{.Id}}", img])
            .trim()
            .to_string()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // vfs "mounts" are plain dirs, but let podman forget them before the dir goes.
        let _ = Command::new("podman")
            .arg("--root")
            .arg(self.dir.path().join("root"))
            .arg("--runroot")
            .arg(self.dir.path().join("run"))
            .args(["--storage-driver", "vfs", "image", "unmount", "--all"])
            .output();
    }
}

const IMG: &str = "localhost/interop/bb:v1";

fn berth_with_image(dir: &Path) -> Berth {
    let b = Berth::new(dir);
    let p = dir.join("in.tar");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(&p, docker_archive(IMG, b"interop")).unwrap();
    b.ok(&["load", "-i", p.to_str().unwrap()]);
    b
}

#[test]
fn berth_save_then_podman_load() {
    let t = tempfile::tempdir().unwrap();
    let b = berth_with_image(&t.path().join("b"));
    let id = b.inspect(IMG)["Id"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    for fmt in ["docker-archive", "oci-archive"] {
        let p = Podman::new();
        let out = t.path().join(format!("{fmt}.tar"));
        b.ok(&["save", "--format", fmt, "-o", out.to_str().unwrap(), IMG]);
        p.run(&["load", "-i", out.to_str().unwrap()]);
        assert_eq!(p.id(IMG), id, "{fmt}");
    }
}

#[test]
fn podman_save_then_berth_load() {
    let t = tempfile::tempdir().unwrap();
    let src = berth_with_image(&t.path().join("src"));
    let id = src.inspect(IMG);
    let p = Podman::new();
    let arch = t.path().join("src.tar");
    src.ok(&["save", "-o", arch.to_str().unwrap(), IMG]);
    p.run(&["load", "-i", arch.to_str().unwrap()]);
    for fmt in ["docker-archive", "oci-archive"] {
        let out = t.path().join(format!("podman-{fmt}.tar"));
        p.run(&["save", "--format", fmt, "-o", out.to_str().unwrap(), IMG]);
        let b = Berth::new(&t.path().join(format!("b-{fmt}")));
        let o = b.ok(&["load", "-i", out.to_str().unwrap()]);
        assert!(o.contains(IMG), "{fmt}: {o}");
        let got = b.inspect(IMG);
        // podman rewrites the config for oci-archive (OCI media types), so the ID may
        // change; the layers and the container config must not.
        if fmt == "docker-archive" {
            assert_eq!(got["Id"], id["Id"], "{fmt}");
        }
        assert_eq!(got["RootFS"], id["RootFS"], "{fmt}");
        assert_eq!(got["Config"], id["Config"], "{fmt}");
    }
}

type Tree = BTreeMap<PathBuf, String>;

fn describe(p: &Path) -> String {
    let md = std::fs::symlink_metadata(p).unwrap();
    let ft = md.file_type();
    let mut xattrs = Vec::new();
    let mut buf = vec![0u8; 4096];
    if !ft.is_symlink() {
        let n = rustix::fs::listxattr(p, &mut buf).unwrap_or(0);
        for name in buf[..n].split(|c| *c == 0).filter(|n| !n.is_empty()) {
            let name = String::from_utf8_lossy(name).to_string();
            if name.starts_with("user.") || name == "security.capability" {
                let mut v = vec![0u8; 4096];
                let k = rustix::fs::getxattr(p, name.as_str(), &mut v).unwrap();
                xattrs.push(format!("{name}={}", hex::encode(&v[..k])));
            }
        }
    }
    let kind = if ft.is_dir() {
        "dir".to_string()
    } else if ft.is_symlink() {
        format!("link->{}", std::fs::read_link(p).unwrap().display())
    } else if ft.is_file() {
        format!(
            "file {} mtime={}",
            sha(&std::fs::read(p).unwrap()),
            md.mtime()
        )
    } else {
        format!("special rdev={}", md.rdev())
    };
    format!(
        "{kind} mode={:o} {}:{} {}",
        md.mode() & 0o7777,
        md.uid(),
        md.gid(),
        xattrs.join(",")
    )
}

fn walk(root: &Path, rel: &Path, out: &mut Tree) {
    for e in std::fs::read_dir(root.join(rel)).unwrap() {
        let e = e.unwrap();
        let r = rel.join(e.file_name());
        out.insert(r.clone(), describe(&root.join(&r)));
        if e.file_type().unwrap().is_dir() {
            walk(root, &r, out);
        }
    }
}

#[test]
fn unpacked_rootfs_equals_podman_storage() {
    let t = tempfile::tempdir().unwrap();
    let b = berth_with_image(&t.path().join("b"));
    let p = Podman::new();
    p.run(&["load", "-i", t.path().join("b/in.tar").to_str().unwrap()]);
    let theirs = PathBuf::from(p.run(&["image", "mount", IMG]).trim());
    let ours = PathBuf::from(b.ok(&["image", "mount", IMG, "--name", "cmp"]).trim());
    struct Unmount<'a>(&'a Berth);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = self.0.run(&["image", "unmount", "cmp"]);
        }
    }
    let _u = Unmount(&b);
    let (mut a, mut c) = (Tree::new(), Tree::new());
    walk(&ours, Path::new(""), &mut a);
    walk(&theirs, Path::new(""), &mut c);
    // Whiteouts applied, opaque dir applied, xattrs and set-id bits kept.
    assert!(!a.contains_key(Path::new("etc/motd")) && !a.contains_key(Path::new("opt/old")));
    assert!(
        a[Path::new("data/attrs")].contains("user.berth=31"),
        "{}",
        a[Path::new("data/attrs")]
    );
    assert!(a[Path::new("bin/setuid")].contains("mode=4755"));
    let diff: Vec<_> = a
        .iter()
        .filter(|(k, v)| c.get(*k) != Some(v))
        .map(|(k, v)| format!("{}: ours {v} / podman {:?}", k.display(), c.get(k)))
        .chain(
            c.keys()
                .filter(|k| !a.contains_key(*k))
                .map(|k| format!("{}: only in podman", k.display())),
        )
        .collect();
    assert!(
        diff.is_empty(),
        "rootfs differs from podman's:\n{}",
        diff.join("\n")
    );
    drop(_u);
    assert!(!ours.exists());
}
