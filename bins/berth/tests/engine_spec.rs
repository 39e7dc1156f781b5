//! build_spec driven for real: the spec it builds is written as a bundle over a busybox
//! rootfs directory and run with berth-runtime (no CLI, no monitor), and the container
//! reports what it sees from inside: capabilities, seccomp, no_new_privs, masked and
//! read-only paths, cgroup limits, rlimits, hostname, groups, mounts.
//!
//! Needs root and the berth-runtime binary next to the test's target dir (`cargo build -p
//! berth-runtime` with the same CARGO_TARGET_DIR), or $BERTH_RUNTIME.

use berth_engine::layout::Layout;
use berth_engine::options::{CreateOptions, MountSpec, Resources, Security, Ulimit};
use berth_engine::spec::{build_spec, write_bundle, SpecContext};
use berth_registry::manifest::{ContainerConfig, ImageConfig};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;

fn runtime() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_RUNTIME") {
        return p.into();
    }
    if let Some(d) = std::env::var_os("BERTH_BIN_DIR") {
        return Path::new(&d).join("berth-runtime");
    }
    // target/<triple>/debug/deps/engine_spec-HASH -> target/<triple>/debug/berth-runtime
    let exe = std::env::current_exe().unwrap();
    let p = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("berth-runtime");
    assert!(
        p.is_file(),
        "{} missing: run `cargo build -p berth-runtime` with the same CARGO_TARGET_DIR",
        p.display()
    );
    p
}

const V1: [&str; 10] = [
    "blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "pids", "systemd",
    "unified",
];

/// A storage root, a busybox rootfs and a private cgroup parent, all removed on drop.
struct Fx {
    dir: tempfile::TempDir,
    layout: Layout,
    rootfs: PathBuf,
    cgroup_parent: String,
}

impl Fx {
    fn new() -> Fx {
        let dir = tempfile::Builder::new()
            .prefix("berth-spec")
            .tempdir()
            .unwrap();
        let rootfs = dir.path().join("rootfs");
        for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "data"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
        for a in String::from_utf8_lossy(&list.stdout).split_whitespace() {
            if a != "busybox" {
                let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a));
            }
        }
        std::fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            rootfs.join("etc/group"),
            "root:x:0:\napp:x:1000:\nwheel:x:10:app\naudio:x:29:app\nvideo:x:44:\n",
        )
        .unwrap();
        let layout = Layout::open(dir.path().join("root")).unwrap();
        let tag = dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        Fx {
            layout,
            rootfs,
            cgroup_parent: format!("/berth-test/{tag}"),
            dir,
        }
    }

    fn opts(&self) -> CreateOptions {
        CreateOptions {
            image: "busybox".into(),
            cgroup_parent: self.cgroup_parent.clone(),
            ..Default::default()
        }
    }

    fn id(&self) -> String {
        berth_engine::volumes::random_hex64().unwrap()
    }

    /// Builds the spec for `script`, runs it, returns (exit code, stdout + stderr).
    fn run(&self, mut o: CreateOptions, img: ContainerConfig, script: &str) -> (i32, String) {
        o.cmd = Some(vec!["/bin/sh".into(), "-c".into(), script.into()]);
        let img = ImageConfig {
            config: Some(ContainerConfig {
                env: Some(vec!["PATH=/bin".into()]),
                ..img
            }),
            ..Default::default()
        };
        let id = self.id();
        let rootfs_fd = std::fs::File::open(&self.rootfs).unwrap();
        let init = self.dir.path().join("berth-init");
        if o.init && !init.exists() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::write(&init, berth_engine::init::INIT).unwrap();
            std::fs::set_permissions(&init, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let ctx = SpecContext {
            id: &id,
            layout: &self.layout,
            rootfs_path: &self.rootfs,
            init_path: if o.init { Some(&init) } else { None },
        };
        let b = build_spec(&o, &img, rootfs_fd.as_fd(), &ctx).unwrap();
        let bundle = self.layout.bundle_dir(&id);
        write_bundle(&bundle, &b.spec).unwrap();
        let rt_root = self.dir.path().join("rt");
        let child = Command::new(runtime())
            .arg("--root")
            .arg(&rt_root)
            .args(["run", "--bundle"])
            .arg(&bundle)
            .arg(&id)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Never hang the suite: kill our own runtime process after 20 s.
        let pid = child.id();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let d2 = done.clone();
        let watchdog = std::thread::spawn(move || {
            let t = std::time::Instant::now();
            while !d2.load(std::sync::atomic::Ordering::SeqCst) {
                if t.elapsed() > std::time::Duration::from_secs(20) {
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        });
        let out = child.wait_with_output().unwrap();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        watchdog.join().unwrap();
        let _ = Command::new(runtime())
            .arg("--root")
            .arg(&rt_root)
            .args(["delete", "--force", &id])
            .output();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    fn ok(&self, o: CreateOptions, script: &str) -> String {
        let (code, out) = self.run(o, ContainerConfig::default(), script);
        assert_eq!(code, 0, "script {script:?} failed:\n{out}");
        eprintln!("--- container output ---\n{out}");
        out
    }
}

impl Drop for Fx {
    fn drop(&mut self) {
        // Containers were deleted after each run; remove the (now empty) cgroup dirs,
        // deepest first, only under our own parent.
        for c in V1 {
            let base = Path::new("/sys/fs/cgroup").join(c);
            let p = base.join(self.cgroup_parent.trim_start_matches('/'));
            if let Ok(rd) = std::fs::read_dir(&p) {
                for e in rd.flatten() {
                    if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                        let _ = std::fs::remove_dir(e.path());
                    }
                }
            }
            let _ = std::fs::remove_dir(&p);
        }
        if v2_host() {
            let p = Path::new("/sys/fs/cgroup").join(self.cgroup_parent.trim_start_matches('/'));
            let _ = std::fs::remove_dir(p);
        }
    }
}

fn v2_host() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

fn field<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(str::trim)
        .unwrap_or_else(|| panic!("{key} missing in:\n{out}"))
}

#[test]
fn defaults_as_hardened_as_docker() {
    let f = Fx::new();
    let out = f.ok(
        f.opts(),
        "grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status; \
         echo masked=$(cat /proc/interrupts /proc/timer_list | wc -c); \
         echo keys=$(cat /proc/keys 2>&1 | wc -c); \
         echo -n sysrw=; (echo 1 > /sys/kernel/uevent_helper) 2>/dev/null && echo yes || echo no; \
         echo -n procsys=; (echo 1 > /proc/sys/kernel/ns_last_pid) 2>/dev/null && echo yes || echo no; \
         echo hostname=$(hostname); echo etchostname=$(cat /etc/hostname); \
         echo -n mount=; mount -t tmpfs none /tmp 2>/dev/null && echo yes || echo no; \
         echo -n unshare=; unshare -Urm true 2>/dev/null && echo yes || echo no; \
         echo -n mknod=; mknod /tmp/sda b 8 0 && echo ok; \
         echo -n opensda=; (head -c1 /tmp/sda >/dev/null) 2>/dev/null && echo yes || echo no; \
         echo -n nullok=; echo x > /dev/null && echo yes; \
         echo shm=$(grep ' /dev/shm ' /proc/self/mountinfo | grep -o 'size=[0-9a-z]*'); \
         echo sysro=$(grep ' /sys ' /proc/self/mountinfo | grep -c ' ro,'); grep ' /sys ' /proc/self/mountinfo; \
         echo hosts=$(grep -c localhost /etc/hosts); \
         echo id=$(id); echo cg=$(head -1 /proc/self/cgroup)",
    );
    for k in ["CapBnd:", "CapPrm:", "CapEff:"] {
        assert_eq!(field(&out, k), "00000000a80425fb", "{k}\n{out}");
    }
    assert_eq!(field(&out, "CapInh:"), "0000000000000000");
    assert_eq!(field(&out, "CapAmb:"), "0000000000000000");
    assert_eq!(field(&out, "NoNewPrivs:"), "1");
    assert_eq!(field(&out, "Seccomp:"), "2");
    // (/proc/kcore does not exist on this kernel; these masked files do.)
    assert_eq!(
        field(&out, "masked="),
        "0",
        "masked /proc/interrupts, /proc/timer_list"
    );
    assert_eq!(field(&out, "keys="), "0", "masked /proc/keys");
    assert_eq!(field(&out, "sysrw="), "no", "/sys is read-only");
    assert_eq!(field(&out, "procsys="), "no", "/proc/sys is read-only");
    let id12 = field(&out, "hostname=").to_string();
    assert_eq!(id12.len(), 12);
    assert_eq!(field(&out, "etchostname="), id12);
    assert_eq!(field(&out, "mount="), "no");
    assert_eq!(field(&out, "unshare="), "no", "DEF-12 / CVE-2022-0492");
    assert_eq!(field(&out, "mknod="), "ok", "mknod is allowed (docker)");
    assert_eq!(
        field(&out, "opensda="),
        "no",
        "device cgroup denies the node"
    );
    assert_eq!(field(&out, "nullok="), "yes");
    assert_eq!(field(&out, "shm="), "size=65536k");
    assert_ne!(field(&out, "sysro="), "0");
    assert_eq!(field(&out, "hosts="), "2");
    assert!(
        field(&out, "id=").starts_with("uid=0(root) gid=0(root)"),
        "{out}"
    );
    // docker's cgroupns default: private on a cgroup v2 host, the host's on v1.
    let cg = field(&out, "cg=");
    if v2_host() {
        assert_eq!(cg, "0::/", "private cgroup namespace");
    } else {
        assert!(cg.contains(&f.cgroup_parent), "host cgroup namespace: {cg}");
    }
}

#[test]
fn user_groups_from_the_image_sec_22() {
    let f = Fx::new();
    let mut o = f.opts();
    o.user = Some("app".into());
    o.group_add = vec!["video".into(), "4242".into()];
    let out = f.ok(o, "id; grep -E '^Cap(Eff|Prm)' /proc/self/status");
    let id = field(&out, "uid=");
    assert!(id.starts_with("1000(app) gid=1000(app)"), "{out}");
    for g in ["10(wheel)", "29(audio)", "44(video)", "4242"] {
        assert!(id.contains(g), "{g} in {out}");
    }
    assert_eq!(
        field(&out, "CapEff:"),
        "0000000000000000",
        "non-root has no effective caps"
    );
}

#[test]
fn resources_rlimits_and_hostname() {
    let f = Fx::new();
    let mut o = f.opts();
    o.hostname = Some("box1".into());
    o.resources = Resources {
        memory: Some(32 << 20),
        pids_limit: Some(50),
        nano_cpus: Some(500_000_000),
        ulimits: vec![Ulimit {
            name: "nofile".into(),
            soft: 1024,
            hard: 2048,
        }],
        shm_size: Some(1 << 20),
        ..Default::default()
    };
    o.sysctls = [(
        "net.ipv4.ip_unprivileged_port_start".to_string(),
        "80".to_string(),
    )]
    .into();
    let out = f.ok(
        o,
        "cd /sys/fs/cgroup; if [ -f cgroup.controllers ]; then \
           echo mem=$(cat memory.max); echo pids=$(cat pids.max); \
           echo quota=$(cut -d' ' -f1 cpu.max); p=pids.max; \
         else \
           echo mem=$(cat memory/memory.limit_in_bytes); echo pids=$(cat pids/pids.max); \
           echo quota=$(cat cpu/cpu.cfs_quota_us); p=pids/pids.max; \
         fi; cd /; \
         echo nofile=$(ulimit -n) hard=$(ulimit -Hn); echo hn=$(hostname); \
         echo sysctl=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start); \
         echo shm=$(grep ' /dev/shm ' /proc/self/mountinfo | grep -o 'size=[0-9a-z]*'); \
         echo -n cgroupro=; (echo 1 > /sys/fs/cgroup/$p) 2>/dev/null && echo yes || echo no",
    );
    assert_eq!(field(&out, "mem="), (32u64 << 20).to_string());
    assert_eq!(field(&out, "pids="), "50");
    assert_eq!(field(&out, "quota="), "50000");
    assert_eq!(field(&out, "nofile="), "1024 hard=2048");
    assert_eq!(field(&out, "hn="), "box1");
    assert_eq!(field(&out, "sysctl="), "80");
    assert_eq!(field(&out, "shm="), "size=1024k");
    assert_eq!(field(&out, "cgroupro="), "no");
    // The host keeps its value (the sysctl went to the container's own netns).
    assert_ne!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
            .unwrap()
            .trim(),
        "80"
    );
}

#[test]
fn cap_add_drop_privileged_and_unconfined() {
    let f = Fx::new();
    let mut o = f.opts();
    o.security = Security {
        cap_add: vec!["sys_admin".into()],
        cap_drop: vec!["CAP_NET_RAW".into(), "chown".into()],
        ..Default::default()
    };
    let out = f.ok(
        o,
        "grep CapBnd /proc/self/status; mount -t tmpfs none /tmp && echo mounted",
    );
    // a80425fb - NET_RAW(13) - CHOWN(0) + SYS_ADMIN(21)
    let want = 0xa80425fbu64 & !(1 << 13) & !1 | (1 << 21);
    assert_eq!(field(&out, "CapBnd:"), format!("{want:016x}"));
    assert!(
        out.contains("mounted"),
        "seccomp allows mount with CAP_SYS_ADMIN: {out}"
    );

    let mut o = f.opts();
    o.security = Security {
        seccomp: Some(berth_engine::options::SeccompOpt::Unconfined),
        no_new_privileges: Some(false),
        ..Default::default()
    };
    let out = f.ok(o, "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status");
    assert_eq!(field(&out, "Seccomp:"), "0");
    assert_eq!(field(&out, "NoNewPrivs:"), "0");

    let mut o = f.opts();
    o.security.privileged = true;
    let out = f.ok(
        o,
        "grep -E '^(CapBnd|Seccomp):' /proc/self/status; echo masked=$(cat /proc/interrupts | wc -c); \
         echo sysro=$(grep ' /sys ' /proc/self/mountinfo | grep -c ' ro,'); echo devs=$(ls /dev | wc -l)",
    );
    assert_eq!(field(&out, "Seccomp:"), "0");
    assert_ne!(field(&out, "masked="), "0", "not masked when privileged");
    assert_eq!(field(&out, "sysro="), "0");
    assert!(
        field(&out, "devs=").parse::<u32>().unwrap() > 20,
        "host devices: {out}"
    );
    let bnd = u64::from_str_radix(field(&out, "CapBnd:"), 16).unwrap();
    assert_eq!(
        bnd.count_ones() as usize,
        berth_engine::spec::capabilities(&[], &[], true)
            .unwrap()
            .len()
    );
}

#[test]
fn read_only_mounts_volumes_tmpfs_init() {
    let f = Fx::new();
    let host = f.dir.path().join("hostdir");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("hello"), "from host").unwrap();
    let mut o = f.opts();
    o.read_only = true;
    o.init = true;
    o.mounts = vec![
        MountSpec::Bind {
            source: host.to_string_lossy().into(),
            target: "/h".into(),
            read_only: true,
            propagation: None,
            create_source: false,
        },
        MountSpec::Volume {
            name: Some("vol1".into()),
            target: "/v".into(),
            read_only: false,
        },
        MountSpec::Tmpfs {
            target: "/run".into(),
            size: Some(1 << 20),
            mode: None,
            options: vec![],
        },
    ];
    let img = ContainerConfig {
        volumes: Some([("/data".to_string(), serde_json::json!({}))].into()),
        ..Default::default()
    };
    let (code, out) = f.run(
        o,
        img,
        "echo pid1=$(cat /proc/1/cmdline | tr '\\0' ' '); cat /h/hello; echo; \
         echo -n rootrw=; touch /x 2>/dev/null && echo yes || echo no; \
         echo -n hrw=; touch /h/x 2>/dev/null && echo yes || echo no; \
         echo data > /v/file && echo vok; echo anon > /data/file && echo dok; \
         echo run > /run/file && echo tok; \
         echo runsize=$(grep ' /run ' /proc/self/mountinfo | grep -o 'size=[0-9a-z]*')",
    );
    assert_eq!(code, 0, "{out}");
    assert!(field(&out, "pid1=").starts_with("/dev/init --"), "{out}");
    assert!(out.contains("from host"), "{out}");
    assert_eq!(field(&out, "rootrw="), "no");
    assert_eq!(field(&out, "hrw="), "no");
    assert!(
        out.contains("vok") && out.contains("dok") && out.contains("tok"),
        "{out}"
    );
    assert_eq!(field(&out, "runsize="), "size=1024k");
    let v = berth_engine::volumes::load(&f.layout, "vol1").unwrap();
    assert_eq!(
        std::fs::read_to_string(Path::new(&v.mountpoint).join("file")).unwrap(),
        "data\n"
    );
    let anon: Vec<_> = berth_engine::volumes::list(&f.layout)
        .unwrap()
        .into_iter()
        .filter(|v| v.anonymous())
        .collect();
    assert_eq!(anon.len(), 1);
    assert_eq!(
        std::fs::read_to_string(Path::new(&anon[0].mountpoint).join("file")).unwrap(),
        "anon\n"
    );
}
