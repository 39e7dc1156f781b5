//! Harness for the container engine tests: a private storage root with a busybox image,
//! and a Drop that removes every container, monitor, mount and cgroup the test made, even
//! when the test failed (by pid and by path, never by name patterns on the host).
#![allow(dead_code)]

use super::*;
use std::process::Stdio;

pub const IMAGE: &str = "busybox:latest";

/// A storage root with `busybox:latest` loaded.
pub struct Engine {
    pub dir: tempfile::TempDir,
    pub b: Berth,
    /// Containers' cgroups go under /berth-test/<this> (BERTH_CGROUP_PARENT).
    pub cgroup_parent: String,
    /// The network namespace every `cmd` runs berth in (`ip netns`): the test's own
    /// "host", so tests never share bridges, rules or address pools, and deleting it
    /// takes whatever networking a test left.
    pub netns: String,
    /// False for an engine sharing another's namespace (that one deletes it).
    owns_netns: bool,
}

/// A one-layer busybox image with the given image config ("config" object of the image).
pub fn busybox_archive(tag: &str, config: serde_json::Value) -> Vec<u8> {
    image_archive(tag, "amd64", config, &[])
}

/// A docker-archive of `tag`: the busybox layer, then `extra` layers (tars), with the
/// image config's architecture `arch` and "config" object `config`.
pub fn image_archive(
    tag: &str,
    arch: &str,
    config: serde_json::Value,
    extra: &[Vec<u8>],
) -> Vec<u8> {
    let mut layers = vec![full_busybox_layer()];
    layers.extend(extra.iter().cloned());
    let names: Vec<String> = (1..=layers.len()).map(|i| format!("l{i}.tar.gz")).collect();
    let config = serde_json::json!({
        "architecture": arch, "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| sha(l)).collect::<Vec<_>>()},
    });
    let manifest = serde_json::json!([{
        "Config": "config.json", "RepoTags": [tag], "Layers": names,
    }]);
    let mut a = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        a.append_data(&mut h, name, data).unwrap();
    };
    add("config.json", &serde_json::to_vec(&config).unwrap());
    for (n, l) in names.iter().zip(&layers) {
        add(n, &gzip(l));
    }
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    a.into_inner().unwrap()
}

/// /bin/busybox with a link for every applet, /etc/passwd and /etc/group (SEC-22 needs
/// supplementary groups), /tmp.
pub fn full_busybox_layer() -> Vec<u8> {
    let bb = std::fs::read("/bin/busybox").expect("busybox-static");
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    let mut l = Layer::new().dir("bin").file("bin/busybox", &bb, 0o755);
    for a in String::from_utf8_lossy(&list.stdout).split_whitespace() {
        if a != "busybox" {
            l = l.symlink(&format!("bin/{a}"), "busybox");
        }
    }
    l.dir("etc")
        .file(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
            0o644,
        )
        .file(
            "etc/group",
            b"root:x:0:\napp:x:1000:\nwheel:x:10:app\naudio:x:29:app\n",
            0o644,
        )
        .dir("tmp")
        .dir("root")
        .tar()
}

/// The engine makes bridges, nftables rules and turns forwarding on where its containers
/// run: tests must run in a network namespace of their own (scripts/test.sh runs the
/// suite through scripts/in-netns.sh), never in the host's.
pub fn assert_own_netns() {
    let ino = |p: &str| {
        std::fs::metadata(p)
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
            .ok()
    };
    assert_ne!(
        ino("/proc/self/ns/net"),
        ino("/proc/1/ns/net"),
        "the engine tests run in the host's network namespace: run them through \
         scripts/in-netns.sh (scripts/test.sh does)"
    );
}

impl Engine {
    /// A fresh root with busybox:latest (Cmd ["/bin/sh"], PATH=/bin).
    pub fn new() -> Engine {
        let e = Engine::empty();
        e.load_image(
            IMAGE,
            serde_json::json!({"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]}),
        );
        e
    }

    pub fn empty() -> Engine {
        assert_own_netns();
        let dir = tempfile::Builder::new()
            .prefix("berth-eng")
            .tempdir()
            .unwrap();
        let b = Berth::new(dir.path());
        let tag = dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        let netns = format!("berth-t-{}", tag.trim_start_matches("berth-eng"));
        let st = Command::new("ip")
            .args(["netns", "add", &netns])
            .status()
            .unwrap();
        assert!(st.success(), "ip netns add {netns}");
        Command::new("ip")
            .args(["-n", &netns, "link", "set", "lo", "up"])
            .status()
            .unwrap();
        Engine {
            dir,
            b,
            cgroup_parent: format!("/berth-test/{tag}"),
            netns,
            owns_netns: true,
        }
    }

    /// An empty root whose commands run in `other`'s network namespace (`other` must
    /// outlive it: it deletes the namespace).
    pub fn empty_sharing_netns(other: &Engine) -> Engine {
        let mut e = Engine::empty();
        let _ = Command::new("ip").args(["netns", "del", &e.netns]).status();
        e.netns = other.netns.clone();
        e.owns_netns = false;
        e
    }

    /// Loads a busybox image tagged `tag` with image config `config`.
    pub fn load_image(&self, tag: &str, config: serde_json::Value) {
        let p = self
            .dir
            .path()
            .join(format!("img-{}.tar", &sha(tag.as_bytes())[7..19]));
        std::fs::write(&p, busybox_archive(tag, config)).unwrap();
        self.b.ok(&["load", "-i", p.to_str().unwrap()]);
    }

    pub fn root(&self) -> &Path {
        &self.b.root
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        // nsenter switches only the network namespace (mounts stay shared) and execs
        // berth in place: the child's pid is berth's.
        let inner = self.b.cmd(args);
        let mut c = self.in_netns(inner.get_program());
        c.args(inner.get_args());
        for (k, v) in inner.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c.stdin(Stdio::null());
        c.env("BERTH_CGROUP_PARENT", &self.cgroup_parent);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// `program` run in the test's network namespace.
    pub fn in_netns(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.netns))
            .arg("--")
            .arg(program);
        c
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

    /// Runs and asserts exit code `code`; returns (stdout, stderr).
    pub fn code(&self, code: i32, args: &[&str]) -> (String, String) {
        let o = self.run(args);
        assert_eq!(
            o.status.code(),
            Some(code),
            "berth {args:?}:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        (
            String::from_utf8(o.stdout).unwrap(),
            String::from_utf8(o.stderr).unwrap(),
        )
    }

    /// `berth inspect` of one container, as JSON.
    pub fn inspect(&self, what: &str) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(&self.ok(&["inspect", what])).unwrap();
        v[0].clone()
    }

    /// Polls `f` every 50 ms until it returns Some, or panics after `secs`.
    pub fn wait_for<T>(&self, secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let t = Instant::now();
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(
                t.elapsed() < Duration::from_secs(secs),
                "timed out after {secs}s waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn container_dirs(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.root().join("engine/containers"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    }
}

fn pid_start(pid: i64) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    rest.split(' ').nth(19).map(str::to_string)
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Project supervisors (compose up, kube play) first: left running, they would
        // make new containers after the ones below are removed.
        if let Ok(l) = berth_engine::layout::Layout::open(self.root()) {
            for p in std::fs::read_dir(l.projects_dir())
                .into_iter()
                .flatten()
                .flatten()
            {
                let pd =
                    berth_services::state::ProjectDir::new(&l, &p.file_name().to_string_lossy());
                if let Some(pid) = berth_services::ops::supervisor_pid(&pd) {
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                }
            }
        }
        // The CLI then; then, whatever it left, by recorded pid and path.
        if let Ok(o) = self.cmd(&["ps", "-aq", "--no-trunc"]).output() {
            for id in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = self.cmd(&["rm", "-f", "-v", id]).output();
            }
        }
        for d in self.container_dirs() {
            let st: serde_json::Value = std::fs::read(d.join("state.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            // The keeper first: it would start a new monitor for a killed one.
            for (p, s) in [
                ("keeperPid", "keeperStart"),
                ("monitorPid", "monitorStart"),
                ("pid", "pidStart"),
            ] {
                let pid = st[p].as_i64().unwrap_or(0);
                if pid > 0
                    && pid_start(pid).as_deref() == st[s].as_u64().map(|v| v.to_string()).as_deref()
                {
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                }
            }
        }
        let rt = super::berth_exe().with_file_name("berth-runtime");
        // The runtimes' roots: on the engine's tmpfs (engine/run), or on disk.
        for rts in ["engine/run/runtime", "engine/runtime"]
            .iter()
            .filter_map(|d| std::fs::read_dir(self.root().join(d)).ok())
        {
            for r in rts.flatten() {
                for c in std::fs::read_dir(r.path()).into_iter().flatten().flatten() {
                    let name = c.file_name().to_string_lossy().to_string();
                    if name.starts_with('.') {
                        continue;
                    }
                    let bin = if r.file_name() == "berth-runtime" {
                        rt.clone()
                    } else {
                        PathBuf::from(r.file_name())
                    };
                    let _ = Command::new(bin)
                        .arg("--root")
                        .arg(r.path())
                        .args(["delete", "--force", &name])
                        .stderr(Stdio::null())
                        .status();
                }
            }
        }
        // The root's DNS server; then the test's network namespace, with whatever
        // bridges, veths and rules are left in it.
        let dir = berth_network::dns::NetworksDir::new(self.root());
        if let Ok(Some(pid)) = berth_network::dns::server_pid(&dir) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        if self.owns_netns {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.netns])
                .status();
        }
        // Unmount anything still mounted under the root (deepest first).
        let root = std::fs::canonicalize(self.root()).unwrap_or(self.root().to_path_buf());
        let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|m| m.starts_with(&*root.to_string_lossy()))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = Command::new("umount").args(["-l", &m]).status();
        }
        // Containers' cgroups: <cgroup_parent>/<id>, then the parent itself. A killed
        // process stays in its cgroup until reaped, so retry for a while.
        let t = Instant::now();
        loop {
            let mut left = false;
            for ctl in std::fs::read_dir("/sys/fs/cgroup")
                .into_iter()
                .flatten()
                .flatten()
            {
                let parent = ctl.path().join(self.cgroup_parent.trim_start_matches('/'));
                for c in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
                    if c.path().is_dir() {
                        let _ = std::fs::remove_dir(c.path());
                    }
                }
                if std::fs::remove_dir(&parent).is_err() && parent.exists() {
                    left = true;
                }
            }
            if !left || t.elapsed() > Duration::from_secs(5) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The harness's Engine, plus removal of its (then empty) parent cgroup in every
/// hierarchy once the engine has removed its containers.
pub struct Eng(Option<Engine>);

impl Eng {
    pub fn new() -> Eng {
        Eng(Some(Engine::new()))
    }
}

impl std::ops::Deref for Eng {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        self.0.as_ref().expect("engine")
    }
}

impl Drop for Eng {
    fn drop(&mut self) {
        let Some(e) = self.0.take() else { return };
        let parent = e.cgroup_parent.clone();
        drop(e);
        for d in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            // rmdir only: a cgroup that still holds anything stays.
            let _ = std::fs::remove_dir(d.path().join(parent.trim_start_matches('/')));
        }
    }
}
