//! Issue 2, "real clients": podman (and, when installed, dockerd and containerd's ctr) drive the
//! runtime under test. Each test starts its client with private roots, sockets and temp dirs, runs
//! a locally built busybox image, and cleans up after itself.

use berth_tests::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

fn have(bin: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
        .unwrap_or(false)
}

/// Run a command to completion with a timeout; returns Out.
fn run_cmd(c: &mut Command, what: &str) -> Out {
    let dir = tempfile::tempdir().unwrap();
    let (o, e) = (dir.path().join("o"), dir.path().join("e"));
    c.stdin(Stdio::null())
        .stdout(fs::File::create(&o).unwrap())
        .stderr(fs::File::create(&e).unwrap());
    let mut ch = c
        .spawn()
        .unwrap_or_else(|err| panic!("spawn {what}: {err}"));
    let st = wait_timeout(&mut ch, T, what);
    Out {
        cmdline: format!("{c:?}"),
        code: st.code(),
        signal: std::os::unix::process::ExitStatusExt::signal(&st),
        stdout: fs::read_to_string(o).unwrap_or_default(),
        stderr: fs::read_to_string(e).unwrap_or_default(),
        log: String::new(),
    }
}

/// A tarball of the busybox rootfs (with the probe) of a fresh bundle.
fn busybox_tar(dir: &Path) -> PathBuf {
    let b = Bundle::busybox();
    let tar = dir.join("busybox.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(b.rootfs())
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success(), "tar the busybox rootfs");
    tar
}

/// podman with every piece of state private to the test.
struct Podman {
    dir: tempfile::TempDir,
    cgroup_parent: String,
    _bundle_for_lock: Bundle,
}

impl Podman {
    fn new() -> Podman {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-podman.")
            .tempdir()
            .unwrap();
        // podman asks for nofile 1048576 and a huge nproc by default, which this machine cannot grant.
        let conf = format!(
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\nnetns = \"none\"\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\nevents_logfile_path = \"{0}/events.log\"\n\
             tmp_dir = \"{0}/tmp\"\nstatic_dir = \"{0}/static\"\nvolume_path = \"{0}/volumes\"\n",
            dir.path().display()
        );
        fs::write(dir.path().join("containers.conf"), conf).unwrap();
        let lock_holder = Bundle::busybox();
        let cgroup_parent = lock_holder.cgroup_base().to_string();
        Podman {
            dir,
            cgroup_parent,
            _bundle_for_lock: lock_holder,
        }
    }
    fn cmd(&self, args: &[&str]) -> Out {
        let d = self.dir.path();
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("TMPDIR", d)
            .arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("runroot"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .args([
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
            ])
            .arg("--runtime")
            .arg(runtime_path())
            .args(args);
        run_cmd(&mut c, &format!("podman {}", args.join(" ")))
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd(&["rm", "-a", "-f", "-t", "0"]);
        remove_cgroup(&self.cgroup_parent);
        detach_mounts_under(self.dir.path());
    }
}

#[test]
fn podman_runs_containers_with_the_runtime() {
    if !have("podman") || !have("conmon") {
        panic!("podman and conmon are required (apt-get install podman)");
    }
    let pm = Podman::new();
    let tar = busybox_tar(pm.dir.path());
    pm.cmd(&[
        "import",
        tar.to_str().unwrap(),
        "localhost/berth-busybox:test",
    ])
    .ok();
    let cg = format!("--cgroup-parent={}", pm.cgroup_parent);

    // Foreground run, output and exit code.
    let o = pm.cmd(&[
        "run",
        "--rm",
        "--network",
        "none",
        &cg,
        "localhost/berth-busybox:test",
        "/bin/probe",
        "info",
        "3",
    ]);
    o.code_is(3);
    let p = o.probe();
    assert_eq!(p["pid"], 1, "{o}");
    assert_eq!(p["uid"][0], 0, "{o}");

    // Detached: inspect, kill, wait (137), rm.
    let id = pm.cmd(&[
        "run",
        "-d",
        "--name",
        "sleeper",
        "--network",
        "none",
        &cg,
        "localhost/berth-busybox:test",
        "/bin/probe",
        "sleep",
        "60",
    ]);
    id.ok();
    let st = pm.cmd(&[
        "inspect",
        "sleeper",
        "--format",
        "{{.State.Status}} {{.State.Pid}}",
    ]);
    st.ok();
    let f: Vec<&str> = st.stdout.split_whitespace().collect();
    assert_eq!(f.first(), Some(&"running"), "{st}");
    let pid: i32 = f[1].parse().unwrap();
    assert!(pid_alive(pid));
    // issue 4: `podman exec` goes through the runtime's exec.
    let e = pm.cmd(&["exec", "sleeper", "/bin/probe", "info", "7"]);
    e.code_is(7);
    assert_ne!(e.probe()["pid"], 1, "exec'd process must not be init:{e}");
    pm.cmd(&["kill", "sleeper"]).ok();
    let w = pm.cmd(&["wait", "sleeper"]);
    assert_eq!(w.stdout.trim(), "137", "podman wait after kill:{w}");
    pm.cmd(&["rm", "-f", "sleeper"]).ok();
    assert!(!pid_alive(pid));

    // create + start + stop + rm --force.
    pm.cmd(&[
        "create",
        "--name",
        "c2",
        "--network",
        "none",
        &cg,
        "localhost/berth-busybox:test",
        "/bin/probe",
        "sleep",
        "60",
    ])
    .ok();
    pm.cmd(&["start", "c2"]).ok();
    pm.cmd(&["stop", "-t", "1", "c2"]).ok();
    pm.cmd(&["rm", "--force", "c2"]).ok();
    let ps = pm.cmd(&["ps", "-a", "-q"]);
    assert_eq!(ps.stdout.trim(), "", "{ps}");
}

/// A daemon started by a test inside its own private mount namespace (`unshare -m --propagation
/// private`), so its mounts never touch the host's; stopped with SIGTERM, then SIGKILL, and every
/// process whose command line names its private dir (detached shims) is killed.
struct Daemon {
    child: std::process::Child,
    dir: PathBuf,
    name: &'static str,
}

impl Daemon {
    fn start(name: &'static str, dir: &Path, args: &[String]) -> Daemon {
        let log = fs::File::create(dir.join(format!("{name}.log"))).unwrap();
        let child = Command::new("unshare")
            .args(["-m", "--propagation", "private", name])
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Daemon {
            child,
            dir: dir.to_path_buf(),
            name,
        }
    }
    fn log(&self) -> String {
        fs::read_to_string(self.dir.join(format!("{}.log", self.name))).unwrap_or_default()
    }
    /// Wait until `probe` succeeds (the daemon answers), else panic with its log.
    fn wait_ready(&mut self, mut probe: impl FnMut() -> bool) {
        let ok = wait_for(Duration::from_secs(30), || {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("{} exited early ({st}):\n{}", self.name, self.log());
            }
            probe().then_some(())
        });
        assert!(
            ok.is_some(),
            "{} did not come up:\n{}",
            self.name,
            self.log()
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        kill_pid(self.child.id() as i32, 15);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        kill_cmdline_containing(&self.dir.to_string_lossy());
    }
}

#[test]
fn containerd_ctr_runs_containers_with_the_runtime() {
    assert!(
        have("containerd") && have("ctr") && have("containerd-shim-runc-v2"),
        "containerd is required (apt-get install containerd)"
    );
    assert!(
        have("podman"),
        "podman is required to build the image archive"
    );
    let holder = Bundle::busybox(); // holds the cgroup lock; its base is our cgroup parent
    let cg = holder.cgroup_base().to_string();
    let dir = tempfile::Builder::new()
        .prefix("berth-test-ctr.")
        .tempdir()
        .unwrap();
    let d = dir.path().display().to_string();
    let sock = format!("{d}/containerd.sock");
    let conf = format!(
        "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
         disabled_plugins = [\"io.containerd.grpc.v1.cri\", \"io.containerd.snapshotter.v1.btrfs\", \"io.containerd.snapshotter.v1.zfs\", \"io.containerd.snapshotter.v1.devmapper\", \"io.containerd.snapshotter.v1.aufs\"]\n\
         [grpc]\n  address = \"{sock}\"\n[ttrpc]\n  address = \"{sock}.ttrpc\"\n[debug]\n  address = \"\"\n[metrics]\n  address = \"\"\n\
         [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{d}/opt\"\n"
    );
    fs::write(dir.path().join("config.toml"), conf).unwrap();

    // The image: a docker archive of the busybox rootfs, built with a private podman.
    let pm = Podman::new();
    let tar = busybox_tar(pm.dir.path());
    pm.cmd(&[
        "import",
        tar.to_str().unwrap(),
        "localhost/berth-busybox:test",
    ])
    .ok();
    let archive = dir.path().join("image.tar");
    pm.cmd(&[
        "save",
        "--format",
        "docker-archive",
        "-o",
        archive.to_str().unwrap(),
        "localhost/berth-busybox:test",
    ])
    .ok();

    let mut daemon = Daemon::start(
        "containerd",
        dir.path(),
        &["--config".into(), format!("{d}/config.toml")],
    );
    let ctr = |args: &[&str]| {
        let mut c = Command::new("ctr");
        c.args(["-a", &sock, "-n", "berth-test"]).args(args);
        run_cmd(&mut c, &format!("ctr {}", args.join(" ")))
    };
    daemon.wait_ready(|| ctr(&["version"]).success());
    ctr(&["images", "import", archive.to_str().unwrap()]).ok();
    let rt = runtime_path();
    let rts = rt.to_str().unwrap();
    let img = "localhost/berth-busybox:test";

    // Foreground run: output and exit status.
    let o = ctr(&[
        "run",
        "--rm",
        "--snapshotter",
        "native",
        "--runc-binary",
        rts,
        "--cgroup",
        &format!("{cg}/fg"),
        img,
        "fg",
        "/bin/probe",
        "info",
        "5",
    ]);
    o.code_is(5);
    assert_eq!(o.probe()["pid"], 1, "{o}");

    // Detached: task state, kill, delete.
    ctr(&[
        "run",
        "-d",
        "--snapshotter",
        "native",
        "--runc-binary",
        rts,
        "--cgroup",
        &format!("{cg}/bg"),
        img,
        "bg",
        "/bin/probe",
        "sleep",
        "60",
    ])
    .ok();
    let ls = ctr(&["task", "ls"]);
    let row = ls
        .stdout
        .lines()
        .find(|l| l.starts_with("bg "))
        .unwrap_or_else(|| panic!("task bg not listed{ls}"));
    assert!(row.contains("RUNNING"), "{ls}");
    let pid: i32 = row.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(pid_alive(pid));
    // issue 4: `ctr task exec` goes through the runtime's exec.
    let e = ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "bg",
        "/bin/probe",
        "info",
        "6",
    ]);
    e.code_is(6);
    assert_ne!(e.probe()["pid"], 1, "exec'd process must not be init:{e}");
    ctr(&["task", "kill", "-s", "SIGKILL", "bg"]).ok();
    let stopped = wait_for(Duration::from_secs(10), || {
        ctr(&["task", "ls"])
            .stdout
            .lines()
            .any(|l| l.starts_with("bg ") && l.contains("STOPPED"))
            .then_some(())
    });
    assert!(
        stopped.is_some(),
        "task bg never STOPPED{}",
        ctr(&["task", "ls"])
    );
    ctr(&["task", "delete", "bg"]).ok();
    ctr(&["containers", "rm", "bg"]).ok();
    assert!(!pid_alive(pid));
    let left = ctr(&["containers", "ls", "-q"]);
    assert_eq!(left.stdout.trim(), "", "{left}");
    drop(daemon);
    drop(holder);
}

#[test]
fn dockerd_runs_containers_with_the_runtime() {
    assert!(
        have("dockerd") && have("docker"),
        "docker is required (apt-get install docker.io)"
    );
    let holder = Bundle::busybox();
    let cg = holder.cgroup_base().to_string();
    let dir = tempfile::Builder::new()
        .prefix("berth-test-docker.")
        .tempdir()
        .unwrap();
    let d = dir.path().display().to_string();
    let host = format!("unix://{d}/docker.sock");
    let fwd_before = fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let args: Vec<String> = [
        "--data-root",
        &format!("{d}/data"),
        "--exec-root",
        &format!("{d}/exec"),
        "--pidfile",
        &format!("{d}/docker.pid"),
        "-H",
        &host,
        "--add-runtime",
        &format!("berth={}", runtime_path().display()),
        "--exec-opt",
        "native.cgroupdriver=cgroupfs",
        "--cgroup-parent",
        &cg,
        // Without these dockerd turns on the host's forwarding and touches its firewall.
        "--bridge=none",
        "--iptables=false",
        "--ip6tables=false",
        "--ip-forward=false",
        "--ip-masq=false",
        "--userland-proxy=false",
        "--storage-driver",
        "vfs",
        "--containerd-namespace",
        "berth-test",
        "--containerd-plugins-namespace",
        "berth-test-plugins",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut daemon = Daemon::start("dockerd", dir.path(), &args);
    let docker = |a: &[&str]| {
        let mut c = Command::new("docker");
        c.env("DOCKER_CONFIG", format!("{d}/client"))
            .args(["-H", &host])
            .args(a);
        run_cmd(&mut c, &format!("docker {}", a.join(" ")))
    };
    daemon.wait_ready(|| docker(&["version"]).success());
    let tar = busybox_tar(dir.path());
    docker(&["import", tar.to_str().unwrap(), "berth-busybox:test"]).ok();

    let o = docker(&[
        "run",
        "--rm",
        "--runtime",
        "berth",
        "--network",
        "none",
        "berth-busybox:test",
        "/bin/probe",
        "info",
        "4",
    ]);
    o.code_is(4);
    assert_eq!(o.probe()["pid"], 1, "{o}");

    let id = docker(&[
        "run",
        "-d",
        "--runtime",
        "berth",
        "--network",
        "none",
        "berth-busybox:test",
        "/bin/probe",
        "sleep",
        "60",
    ]);
    id.ok();
    let id = id.stdout.trim().to_string();
    let ins = docker(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.Pid}}",
        &id,
    ]);
    let f: Vec<String> = ins.stdout.split_whitespace().map(String::from).collect();
    assert_eq!(f.first().map(String::as_str), Some("running"), "{ins}");
    let pid: i32 = f[1].parse().unwrap();
    docker(&["kill", &id]).ok();
    let w = docker(&["wait", &id]);
    assert_eq!(w.stdout.trim(), "137", "{w}");
    docker(&["rm", "-f", &id]).ok();
    assert!(!pid_alive(pid));

    docker(&[
        "create",
        "--name",
        "c2",
        "--runtime",
        "berth",
        "--network",
        "none",
        "berth-busybox:test",
        "/bin/probe",
        "sleep",
        "60",
    ])
    .ok();
    docker(&["start", "c2"]).ok();
    docker(&["rm", "--force", "c2"]).ok();
    let ps = docker(&["ps", "-a", "-q"]);
    assert_eq!(ps.stdout.trim(), "", "{ps}");
    drop(daemon);
    assert_eq!(
        fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        fwd_before,
        "dockerd changed ip_forward"
    );
    drop(holder);
}
