//! Test helpers: a real docker-registry on a free port, the berth binary, and images built
//! from /bin/busybox.
#![allow(dead_code)]

use sha2::Digest;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

/// The berth binary under test: `$BERTH_BIN_DIR/berth` when set (scripts/test.sh points it
/// at the release build it ships, with berth-runtime and berth-monitor beside it), else
/// cargo's build of this profile.
pub fn berth_exe() -> std::path::PathBuf {
    match std::env::var_os("BERTH_BIN_DIR") {
        Some(d) => std::path::Path::new(&d).join("berth"),
        None => env!("CARGO_BIN_EXE_berth").into(),
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub enum Auth {
    Htpasswd(Vec<u8>),
    /// Token auth: tokens from `realm`, signed by a cert in the `ca` bundle.
    Token {
        realm: String,
        ca: PathBuf,
    },
}

/// A docker-registry process, killed by pid on drop.
pub struct Registry {
    pub child: Child,
    pub addr: String,
    pub dir: tempfile::TempDir,
}

impl Registry {
    pub fn start(htpasswd: Option<(&str, &str)>) -> Registry {
        Self::start_with(htpasswd.map(|(u, p)| {
            let out = Command::new("htpasswd")
                .args(["-Bbn", u, p])
                .output()
                .expect("htpasswd (apache2-utils)");
            assert!(out.status.success());
            Auth::Htpasswd(out.stdout)
        }))
    }

    pub fn start_with(auth_cfg: Option<Auth>) -> Registry {
        Self::start_with_in(auth_cfg, None)
    }

    /// A registry without auth inside network namespace `netns` (`ip netns` name): the
    /// engine tests run berth there.
    pub fn start_in(netns: &str) -> Registry {
        Self::start_with_in(None, Some(netns))
    }

    pub fn start_with_in(auth_cfg: Option<Auth>, netns: Option<&str>) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let auth = match auth_cfg {
            None => String::new(),
            Some(Auth::Htpasswd(file)) => {
                std::fs::write(dir.path().join("htpasswd"), file).unwrap();
                format!("auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n", dir.path().join("htpasswd").display())
            }
            Some(Auth::Token { realm, ca }) => format!(
                "auth:\n  token:\n    realm: {realm}\n    service: test-registry\n    issuer: berth-test\n    rootcertbundle: {}\n",
                ca.display()
            ),
        };
        let cfg = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth}",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("config.yml"), cfg).unwrap();
        let in_ns = |prog: &str| match netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net=/run/netns/{ns}")).arg("--").arg(prog);
                c
            }
            None => Command::new(prog),
        };
        let child = in_ns("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(std::fs::File::create(dir.path().join("access.log")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
            .spawn()
            .expect("docker-registry (Debian package docker-registry)");
        let r = Registry { child, addr, dir };
        let t = Instant::now();
        let up = || match netns {
            None => std::net::TcpStream::connect(&r.addr).is_ok(),
            Some(_) => in_ns("bash")
                .arg("-c")
                .arg(format!("exec 3<>/dev/tcp/127.0.0.1/{port}"))
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
        };
        while !up() {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "registry did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs berth with `--root root`, an isolated auth file and HOME.
pub struct Berth {
    pub root: PathBuf,
    pub home: PathBuf,
}

impl Berth {
    pub fn new(dir: &Path) -> Berth {
        let b = Berth {
            root: dir.join("root"),
            home: dir.join("home"),
        };
        std::fs::create_dir_all(&b.home).unwrap();
        b
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(berth_exe());
        c.arg("--root").arg(&self.root);
        c.args(args);
        c.env("HOME", &self.home)
            .env("BERTH_AUTH_FILE", self.home.join("auth.json"))
            .env("DOCKER_CONFIG", self.home.join(".docker"))
            .env("BERTH_REGISTRIES_CONF", self.home.join("registries.json"))
            .env_remove("XDG_CONFIG_HOME");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "berth {:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            args,
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// Runs and asserts docker's exit code for a failed image command (1); returns
    /// stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        self.fails_with(1, args)
    }

    /// Runs and asserts exit code `code`; returns stderr.
    pub fn fails_with(&self, code: i32, args: &[&str]) -> String {
        let o = self.run(args);
        assert_eq!(
            o.status.code(),
            Some(code),
            "berth {args:?}: stdout {}",
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8(o.stderr).unwrap()
    }

    pub fn inspect(&self, image: &str) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(&self.ok(&["inspect", image])).unwrap();
        v[0].clone()
    }
}

pub fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)))
}

/// Tar builder for rootfs layers.
pub struct Layer {
    b: tar::Builder<Vec<u8>>,
}

impl Layer {
    pub fn new() -> Layer {
        Layer {
            b: tar::Builder::new(Vec::new()),
        }
    }
    fn h(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h
    }
    pub fn dir(mut self, p: &str) -> Self {
        let mut h = Self::h(tar::EntryType::Directory, 0o755, 0);
        self.b.append_data(&mut h, p, std::io::empty()).unwrap();
        self
    }
    pub fn file(mut self, p: &str, data: &[u8], mode: u32) -> Self {
        let mut h = Self::h(tar::EntryType::Regular, mode, data.len() as u64);
        self.b.append_data(&mut h, p, data).unwrap();
        self
    }
    pub fn symlink(mut self, p: &str, to: &str) -> Self {
        let mut h = Self::h(tar::EntryType::Symlink, 0o777, 0);
        self.b.append_link(&mut h, p, to).unwrap();
        self
    }
    /// A file carrying PAX xattrs.
    pub fn file_xattr(mut self, p: &str, data: &[u8], xattrs: &[(&str, &[u8])]) -> Self {
        let ext: Vec<(String, &[u8])> = xattrs
            .iter()
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), *v))
            .collect();
        self.b
            .append_pax_extensions(ext.iter().map(|(k, v)| (k.as_str(), *v)))
            .unwrap();
        let mut h = Self::h(tar::EntryType::Regular, 0o640, data.len() as u64);
        h.set_uid(1000);
        h.set_gid(10);
        self.b.append_data(&mut h, p, data).unwrap();
        self
    }
    pub fn tar(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

pub fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

pub fn zstd(b: &[u8]) -> Vec<u8> {
    zstd::encode_all(b, 3).unwrap()
}

/// The base busybox layer: /bin/busybox, sh, etc/passwd, group, motd.
pub fn busybox_layer() -> Vec<u8> {
    let bb = std::fs::read("/bin/busybox").expect("busybox-static");
    Layer::new()
        .dir("bin")
        .file("bin/busybox", &bb, 0o755)
        .symlink("bin/sh", "busybox")
        .symlink("bin/ls", "busybox")
        .dir("etc")
        .file(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
            0o644,
        )
        .file(
            "etc/group",
            b"root:x:0:\napp:x:1000:\nwheel:x:10:app\n",
            0o644,
        )
        .file("etc/motd", b"hello\n", 0o644)
        .dir("opt")
        .file("opt/old", b"old", 0o644)
        .tar()
}

/// A docker-archive with a gzip, a zstd and an uncompressed layer (the last with a
/// whiteout and an opaque dir). Returns the archive bytes.
pub fn docker_archive(tag: &str, extra: &[u8]) -> Vec<u8> {
    let l1 = busybox_layer();
    let l2 = Layer::new()
        .dir("data")
        .file("data/extra", extra, 0o600)
        .file_xattr("data/attrs", b"x", &[("user.berth", b"1")])
        .file("bin/setuid", b"#!/bin/sh\n", 0o4755)
        .tar();
    let l3 = Layer::new()
        .dir("etc")
        .file("etc/.wh.motd", b"", 0o644)
        .dir("opt")
        .file("opt/.wh..wh..opq", b"", 0o644)
        .file("opt/new", b"new", 0o644)
        .tar();
    let diff_ids = [sha(&l1), sha(&l2), sha(&l3)];
    let blobs = [
        ("l1.tar.gz", gzip(&l1)),
        ("l2.tar.zst", zstd(&l2)),
        ("l3.tar", l3.clone()),
    ];
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"], "User": "app", "Labels": {"t": tag}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let cfg = serde_json::to_vec(&config).unwrap();
    let manifest = serde_json::json!([{
        "Config": "config.json", "RepoTags": [tag], "Layers": ["l1.tar.gz", "l2.tar.zst", "l3.tar"],
    }]);
    let mut a = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        a.append_data(&mut h, name, data).unwrap();
    };
    add("config.json", &cfg);
    for (n, b) in &blobs {
        add(n, b);
    }
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    a.into_inner().unwrap()
}

/// Deterministic incompressible bytes.
pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(n);
    v
}

/// Every blob in a store hashes to its name (no partial blob is visible as complete).
pub fn assert_blobs_verified(root: &Path) {
    let d = root.join("blobs/sha256");
    for e in std::fs::read_dir(&d).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().to_string();
        let got = sha(&std::fs::read(e.path()).unwrap());
        assert_eq!(
            got,
            format!("sha256:{name}"),
            "blob {name} does not match its digest"
        );
    }
}
pub mod api;
pub mod engine;
