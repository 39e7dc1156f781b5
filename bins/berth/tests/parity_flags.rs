//! Issue 17 item 6 (docker parity): the run/create flags docker 20.10 has, black-box.
//! Namespace flags are checked by comparing /proc/self/ns/* links with the host's or the
//! other container's; resource flags by the files of the container's cgroup.
//! Run as root: `scripts/in-netns.sh cargo nextest run -p berth --test parity_flags`.

mod common;
use common::engine::*;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

fn ns(path: &str) -> String {
    std::fs::read_link(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .to_string_lossy()
        .into_owned()
}

/// The container's own view of `/proc/self/ns/<kind>` for each kind, one per line.
fn ns_inside(e: &Engine, flags: &[&str], kinds: &[&str]) -> Vec<String> {
    let script = kinds
        .iter()
        .map(|k| format!("readlink /proc/self/ns/{k}"))
        .collect::<Vec<_>>()
        .join("; ");
    let mut a = vec!["run", "--rm"];
    a.extend_from_slice(flags);
    a.extend([IMAGE, "sh", "-c", &script]);
    e.ok(&a).lines().map(str::to_string).collect()
}

fn pid_of(e: &Engine, c: &str) -> i64 {
    e.inspect(c)["State"]["Pid"].as_i64().unwrap()
}

/// --pid host|container:, --ipc host|container:|shareable|private|none, --uts host.
#[test]
fn item6_pid_ipc_uts_namespaces() {
    let e = Engine::new();
    let host = |k: &str| ns(&format!("/proc/self/ns/{k}"));
    let own = ns_inside(&e, &[], &["pid", "ipc", "uts"]);
    assert_ne!(own, [host("pid"), host("ipc"), host("uts")]);
    let shared = ns_inside(
        &e,
        &["--pid", "host", "--ipc", "host", "--uts", "host"],
        &["pid", "ipc", "uts"],
    );
    assert_eq!(shared, [host("pid"), host("ipc"), host("uts")]);
    // --uts host: the host's name; with -h it is docker's conflict.
    let name = e.ok(&["run", "--rm", "--uts", "host", IMAGE, "hostname"]);
    assert_eq!(
        name.trim(),
        rustix::system::uname().nodename().to_string_lossy()
    );
    let (_, err) = e.code(
        125,
        &["run", "--rm", "--uts", "host", "-h", "x", IMAGE, "true"],
    );
    assert!(err.contains("hostname and the UTS mode"), "{err}");
    // --ipc host: the host's /dev/shm; none: no /dev/shm at all.
    let marker = format!("berth-ipc-{}", std::process::id());
    std::fs::write(format!("/dev/shm/{marker}"), "x").unwrap();
    let seen = e.run(&[
        "run",
        "--rm",
        "--ipc",
        "host",
        IMAGE,
        "cat",
        &format!("/dev/shm/{marker}"),
    ]);
    let _ = std::fs::remove_file(format!("/dev/shm/{marker}"));
    assert_eq!(String::from_utf8_lossy(&seen.stdout), "x");
    let m = e.ok(&["run", "--rm", "--ipc", "none", IMAGE, "cat", "/proc/mounts"]);
    assert!(!m.contains(" /dev/shm "), "{m}");
    let m = e.ok(&[
        "run",
        "--rm",
        "--ipc",
        "private",
        IMAGE,
        "cat",
        "/proc/mounts",
    ]);
    assert!(m.contains(" /dev/shm "), "{m}");

    // container:NAME: the other container's namespaces; IPC only from a shareable one.
    e.ok(&[
        "run",
        "-d",
        "--name",
        "donor",
        "--ipc",
        "shareable",
        IMAGE,
        "sleep",
        "600",
    ]);
    e.ok(&["run", "-d", "--name", "priv", IMAGE, "sleep", "600"]);
    let p = pid_of(&e, "donor");
    let joined = ns_inside(
        &e,
        &["--pid", "container:donor", "--ipc", "container:donor"],
        &["pid", "ipc"],
    );
    assert_eq!(
        joined,
        [
            ns(&format!("/proc/{p}/ns/pid")),
            ns(&format!("/proc/{p}/ns/ipc"))
        ]
    );
    // The donor's processes are visible in the joined PID namespace.
    let ps = e.ok(&["run", "--rm", "--pid", "container:donor", IMAGE, "ps"]);
    assert!(ps.contains("sleep 600"), "{ps}");
    let (_, err) = e.code(
        125,
        &["run", "--rm", "--ipc", "container:priv", IMAGE, "true"],
    );
    assert!(err.contains("non-shareable IPC"), "{err}");
    let (_, err) = e.code(
        125,
        &["run", "--rm", "--pid", "container:nosuch", IMAGE, "true"],
    );
    assert!(err.contains("nosuch"), "{err}");
    e.ok(&["create", "--name", "stopped", IMAGE, "true"]);
    let (_, err) = e.code(
        125,
        &["run", "--rm", "--pid", "container:stopped", IMAGE, "true"],
    );
    assert!(
        err.contains("cannot join PID of a non running container: stopped"),
        "{err}"
    );
    for (flag, v) in [
        ("--pid", "private"),
        ("--ipc", "other"),
        ("--uts", "private"),
    ] {
        let (_, err) = e.code(125, &["run", "--rm", flag, v, IMAGE, "true"]);
        assert!(err.contains(&format!("{v:?}")), "{flag} {v}: {err}");
    }

    e.ok(&[
        "create",
        "--name",
        "insp",
        "--pid",
        "host",
        "--ipc",
        "container:donor",
        "--uts",
        "host",
        IMAGE,
    ]);
    let hc = &e.inspect("insp")["HostConfig"];
    assert_eq!(hc["PidMode"], "host");
    assert_eq!(hc["IpcMode"], "container:donor");
    assert_eq!(hc["UTSMode"], "host");
    let hc = &e.inspect("priv")["HostConfig"];
    // docker 20.10's defaults.
    assert_eq!(
        (
            hc["PidMode"].as_str(),
            hc["IpcMode"].as_str(),
            hc["UTSMode"].as_str()
        ),
        (Some(""), Some("private"), Some(""))
    );
    assert_eq!(e.inspect("donor")["HostConfig"]["IpcMode"], "shareable");
}

/// --userns host (the only value docker takes without a daemon remapping) and
/// --cgroupns host|private.
#[test]
fn item6_userns_and_cgroupns() {
    let e = Engine::new();
    let host = |k: &str| ns(&format!("/proc/self/ns/{k}"));
    assert_eq!(
        ns_inside(&e, &["--userns", "host"], &["user"]),
        [host("user")]
    );
    let (_, err) = e.code(125, &["run", "--rm", "--userns", "remap", IMAGE, "true"]);
    assert!(
        err.contains("\"remap\"") && err.contains("not supported"),
        "{err}"
    );
    assert_ne!(
        ns_inside(&e, &["--cgroupns", "private"], &["cgroup"]),
        [host("cgroup")]
    );
    assert_eq!(
        ns_inside(&e, &["--cgroupns", "host"], &["cgroup"]),
        [host("cgroup")]
    );
    // A private cgroup namespace sees its own cgroup as the root; the host's shows the
    // path under the parent.
    let memory_line = |mode: &str| {
        let c = e.ok(&[
            "run",
            "--rm",
            "--cgroupns",
            mode,
            IMAGE,
            "cat",
            "/proc/self/cgroup",
        ]);
        c.lines()
            .find(|l| l.split(':').nth(1) == Some("memory"))
            .unwrap_or_else(|| panic!("{c}"))
            .to_string()
    };
    assert!(memory_line("private").ends_with(":memory:/"));
    assert!(memory_line("host").contains(&e.cgroup_parent));
    let (_, err) = e.code(125, &["run", "--rm", "--cgroupns", "shared", IMAGE, "true"]);
    assert!(err.contains("\"shared\""), "{err}");
    e.ok(&[
        "create",
        "--name",
        "c1",
        "--userns",
        "host",
        "--cgroupns",
        "private",
        IMAGE,
    ]);
    let hc = &e.inspect("c1")["HostConfig"];
    assert_eq!(hc["UsernsMode"], "host");
    assert_eq!(hc["CgroupnsMode"], "private");
}

/// --cidfile: the ID written; an existing file refused; removed when create fails.
#[test]
fn item6_cidfile() {
    let e = Engine::new();
    let f = e.dir.path().join("cid");
    let fs = f.to_str().unwrap();
    let id = e.ok(&["create", "--cidfile", fs, IMAGE]);
    assert_eq!(std::fs::read_to_string(&f).unwrap(), id.trim());
    let (_, err) = e.code(125, &["create", "--cidfile", fs, IMAGE]);
    assert!(
        err.contains(
            "container ID file found, make sure the other container isn't running or delete"
        ),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&f).unwrap(), id.trim(), "kept");
    std::fs::remove_file(&f).unwrap();
    let (_, err) = e.code(
        125,
        &[
            "run",
            "--cidfile",
            fs,
            "--pull",
            "never",
            "nosuch:1",
            "true",
        ],
    );
    assert!(err.contains("nosuch"), "{err}");
    assert!(!f.exists(), "a failed create removes the cidfile");
    let out = e.ok(&[
        "run",
        "--rm",
        "--cidfile",
        fs,
        IMAGE,
        "cat",
        "/etc/hostname",
    ]);
    assert!(
        std::fs::read_to_string(&f).unwrap().starts_with(out.trim()),
        "run writes the ID too"
    );
}

/// A busybox image whose config says `arch`.
fn load_arch_image(e: &Engine, tag: &str, arch: &str) {
    let config = serde_json::json!({"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]});
    let p = e.dir.path().join(format!("{arch}.tar"));
    std::fs::write(&p, image_archive(tag, arch, config, &[])).unwrap();
    e.ok(&["load", "-i", p.to_str().unwrap()]);
}

/// --pull always|missing|never and --platform (never silently another platform).
#[test]
fn item6_pull_and_platform() {
    let e = Engine::new();
    // A local image whose registry does not answer: always pulls (and fails), missing
    // and never use the local one.
    e.ok(&["tag", IMAGE, "127.0.0.1:9/bb:1"]);
    let (_, err) = e.code(
        125,
        &[
            "run",
            "--rm",
            "--pull",
            "always",
            "127.0.0.1:9/bb:1",
            "true",
        ],
    );
    assert!(err.contains("127.0.0.1:9"), "{err}");
    e.ok(&[
        "run",
        "--rm",
        "--pull",
        "missing",
        "127.0.0.1:9/bb:1",
        "true",
    ]);
    e.ok(&["run", "--rm", "--pull", "never", "127.0.0.1:9/bb:1", "true"]);
    let (_, err) = e.code(
        125,
        &[
            "run",
            "--rm",
            "--pull",
            "never",
            "127.0.0.1:9/gone:1",
            "true",
        ],
    );
    assert!(!err.contains("Unable to find image"), "never pulls: {err}");
    let (_, err) = e.code(
        125,
        &[
            "run",
            "--rm",
            "--pull",
            "missing",
            "127.0.0.1:9/gone:1",
            "true",
        ],
    );
    assert!(
        err.contains("Unable to find image '127.0.0.1:9/gone:1' locally"),
        "{err}"
    );
    let (_, err) = e.code(125, &["run", "--rm", "--pull", "sometimes", IMAGE, "true"]);
    assert!(err.contains("\"sometimes\""), "{err}");

    // --platform: the local image of another platform is an error (not used).
    let host_arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let other = if host_arch == "amd64" {
        "arm64"
    } else {
        "amd64"
    };
    let (_, err) = e.code(
        125,
        &[
            "run",
            "--rm",
            "--pull",
            "never",
            "--platform",
            &format!("linux/{other}"),
            IMAGE,
            "true",
        ],
    );
    assert!(
        err.contains(&format!(
            "does not match the specified platform: wanted linux/{other}, actual: linux/{host_arch}"
        )),
        "{err}"
    );
    e.ok(&[
        "run",
        "--rm",
        "--platform",
        &format!("linux/{host_arch}"),
        IMAGE,
        "true",
    ]);
    // Without --platform, an image of another platform runs with docker's warning.
    load_arch_image(&e, "foreign:1", other);
    let o = e.run(&["run", "--rm", "foreign:1", "true"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!(
            "WARNING: The requested image's platform (linux/{other}) does not match the detected host platform"
        )),
        "{err}"
    );
    let (_, err) = e.code(125, &["run", "--rm", "--platform", "linux", IMAGE, "true"]);
    assert!(err.contains("\"linux\""), "{err}");
}

/// --volumes-from CONTAINER[:ro|rw]: binds, named and anonymous volumes of the other.
#[test]
fn item6_volumes_from() {
    let e = Engine::new();
    let hostdir = e.dir.path().join("hostdir");
    std::fs::create_dir(&hostdir).unwrap();
    std::fs::write(hostdir.join("h"), "from-host").unwrap();
    let bind = format!("{}:/h", hostdir.display());
    e.ok(&[
        "create",
        "--name",
        "src",
        "-v",
        "named1:/data",
        "-v",
        &bind,
        "-v",
        "/anon",
        IMAGE,
    ]);
    e.ok(&["start", "src"]);
    e.ok(&[
        "run",
        "--rm",
        "--volumes-from",
        "src",
        IMAGE,
        "sh",
        "-c",
        "echo n > /data/n && echo a > /anon/a",
    ]);
    let out = e.ok(&[
        "run",
        "--rm",
        "--volumes-from",
        "src:ro",
        IMAGE,
        "sh",
        "-c",
        "cat /data/n /anon/a /h/h; echo; touch /data/x 2>/dev/null || echo ro",
    ]);
    assert_eq!(out, "n\na\nfrom-host\nro\n", "{out}");
    // -v on the same target wins over --volumes-from (docker).
    let out = e.ok(&[
        "run",
        "--rm",
        "--volumes-from",
        "src",
        "-v",
        "other:/data",
        IMAGE,
        "ls",
        "/data",
    ]);
    assert_eq!(out, "");
    e.ok(&["create", "--name", "vf", "--volumes-from", "src:ro", IMAGE]);
    assert_eq!(
        e.inspect("vf")["HostConfig"]["VolumesFrom"],
        serde_json::json!(["src:ro"])
    );
    let (_, err) = e.code(
        125,
        &["run", "--rm", "--volumes-from", "nosuch", IMAGE, "true"],
    );
    assert!(err.contains("nosuch"), "{err}");
    let (_, err) = e.code(
        125,
        &["run", "--rm", "--volumes-from", "src:rx", IMAGE, "true"],
    );
    assert!(err.contains("src:rx"), "{err}");
}

fn cgroup_file(e: &Engine, ctl: &str, id: &str, file: &str) -> String {
    let p = format!(
        "/sys/fs/cgroup/{ctl}/{}/{id}/{file}",
        e.cgroup_parent.trim_start_matches('/')
    );
    std::fs::read_to_string(&p)
        .unwrap_or_else(|x| panic!("{p}: {x}"))
        .trim()
        .to_string()
}

/// --memory-reservation, --oom-kill-disable, --cpu-quota, --cpu-period,
/// --memory-swappiness, --blkio-weight: in the container's cgroup and in inspect.
#[test]
fn item6_resource_flags_land_in_the_cgroup() {
    let e = Engine::new();
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        eprintln!("cgroup v2 host: this test reads v1 files");
        return;
    }
    let o = e.run(&[
        "run",
        "-d",
        "-m",
        "64m",
        "--memory-reservation",
        "20m",
        "--oom-kill-disable",
        "--cpu-quota",
        "20000",
        "--cpu-period",
        "50000",
        "--memory-swappiness",
        "10",
        "--blkio-weight",
        "300",
        IMAGE,
        "sleep",
        "600",
    ]);
    assert!(o.status.success(), "{o:?}");
    let id = String::from_utf8(o.stdout).unwrap().trim().to_string();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        cgroup_file(&e, "memory", &id, "memory.soft_limit_in_bytes"),
        (20u64 << 20).to_string()
    );
    assert!(
        cgroup_file(&e, "memory", &id, "memory.oom_control")
            .lines()
            .any(|l| l == "oom_kill_disable 1"),
        "oom_control"
    );
    assert_eq!(cgroup_file(&e, "memory", &id, "memory.swappiness"), "10");
    assert_eq!(cgroup_file(&e, "cpu", &id, "cpu.cfs_quota_us"), "20000");
    assert_eq!(cgroup_file(&e, "cpu", &id, "cpu.cfs_period_us"), "50000");
    let hc = &e.inspect(&id)["HostConfig"];
    assert_eq!(hc["MemoryReservation"], 20 << 20);
    assert_eq!(hc["OomKillDisable"], true);
    assert_eq!(hc["CpuQuota"], 20000);
    assert_eq!(hc["CpuPeriod"], 50000);
    assert_eq!(hc["MemorySwappiness"], 10);
    // Weight needs CFQ/BFQ; without them docker discards it with a warning.
    let blkio = std::path::Path::new("/sys/fs/cgroup/blkio");
    if blkio.join("blkio.weight").exists() {
        assert_eq!(cgroup_file(&e, "blkio", &id, "blkio.weight"), "300");
        assert_eq!(hc["BlkioWeight"], 300);
    } else if blkio.join("blkio.bfq.weight").exists() {
        assert_eq!(cgroup_file(&e, "blkio", &id, "blkio.bfq.weight"), "300");
    } else {
        assert!(
            stderr.contains("Your kernel does not support Block I/O weight"),
            "{stderr}"
        );
        assert_eq!(hc["BlkioWeight"], 0);
    }
    // docker's checks, each naming the value.
    for (args, needle) in [
        (
            &["--cpus", "1", "--cpu-quota", "50000"][..],
            "Nano CPUs and CPU Quota",
        ),
        (
            &["--cpus", "1", "--cpu-period", "50000"][..],
            "Nano CPUs and CPU Period",
        ),
        (&["--cpu-period", "999"][..], "999"),
        (&["--cpu-quota", "999"][..], "999"),
        (&["--memory-swappiness", "101"][..], "101"),
        (&["--blkio-weight", "5"][..], "5"),
        (
            &["-m", "8m", "--memory-reservation", "16m"][..],
            "memory reservation",
        ),
    ] {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(args);
        a.extend([IMAGE, "true"]);
        let (_, err) = e.code(125, &a);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // Without -m, --oom-kill-disable is docker's warning, not an error.
    let o = e.run(&["run", "--rm", "--oom-kill-disable", IMAGE, "true"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("may be dangerous"));
}

/// `berth run -it` in a pty made by script(1); `input` is typed after the shell starts.
fn run_in_pty(e: &Engine, flags: &[&str], input: &[&[u8]]) -> (std::process::ExitStatus, String) {
    let mut args = vec!["run", "-it"];
    args.extend_from_slice(flags);
    args.extend([IMAGE, "sh"]);
    let inner = e.cmd(&args);
    let q = |s: &std::ffi::OsStr| format!("'{}'", s.to_string_lossy().replace('\'', "'\\''"));
    let mut line = q(inner.get_program());
    for a in inner.get_args() {
        line.push(' ');
        line.push_str(&q(a));
    }
    let mut c = Command::new("script");
    c.args(["-qfec", &line, "/dev/null"]);
    for (k, v) in inner.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for i in input {
        std::thread::sleep(Duration::from_millis(700));
        stdin.write_all(i).unwrap();
        stdin.flush().unwrap();
    }
    // The pty stays open (script's stdin) until we know how it ended.
    let t = std::time::Instant::now();
    let st = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(stdin);
    let mut out = String::new();
    use std::io::Read;
    let _ = child.stdout.take().unwrap().read_to_string(&mut out);
    (st, out)
}

/// --detach-keys (docker's default ctrl-p,ctrl-q): the CLI leaves, the container runs on.
#[test]
fn item6_detach_keys() {
    let e = Engine::new();
    let (st, out) = run_in_pty(
        &e,
        &["--name", "d1"],
        &[b"echo typed-$((40+2))\r", b"\x10\x11"],
    );
    assert!(st.success(), "{st:?} {out}");
    assert!(out.contains("typed-42"), "{out}");
    assert_eq!(e.inspect("d1")["State"]["Status"], "running");
    // A custom sequence; ctrl-p alone is then typed through.
    let (st, out) = run_in_pty(
        &e,
        &["--name", "d2", "--detach-keys", "ctrl-x,x"],
        &[b"\x10\x11echo still-$((1+1))\r", b"\x18x"],
    );
    assert!(st.success(), "{st:?} {out}");
    assert!(out.contains("still-2"), "{out}");
    assert_eq!(e.inspect("d2")["State"]["Status"], "running");
    let (_, err) = e.code(
        125,
        &["run", "--rm", "--detach-keys", "ctrl-1", IMAGE, "true"],
    );
    assert!(err.contains("ctrl-1"), "{err}");
}

/// --log-driver none|json-file|local: none keeps no log (`logs` says docker's error),
/// local is the json-file log.
#[test]
fn item6_log_driver() {
    let e = Engine::new();
    let out = e.ok(&[
        "run",
        "--rm",
        "--log-driver",
        "none",
        IMAGE,
        "echo",
        "attached",
    ]);
    assert_eq!(out, "attached\n", "attach still gets the output");
    e.ok(&[
        "run",
        "--name",
        "nolog",
        "--log-driver",
        "none",
        IMAGE,
        "echo",
        "hi",
    ]);
    let (_, err) = e.code(1, &["logs", "nolog"]);
    assert!(
        err.contains("configured logging driver does not support reading"),
        "{err}"
    );
    let id = e.inspect("nolog")["Id"].as_str().unwrap().to_string();
    let log = e
        .root()
        .join("engine/containers")
        .join(&id)
        .join(format!("{id}-json.log"));
    assert!(!log.exists(), "no log file with none");
    assert_eq!(
        e.inspect("nolog")["HostConfig"]["LogConfig"]["Type"],
        "none"
    );
    e.ok(&[
        "run",
        "--name",
        "loc",
        "--log-driver",
        "local",
        IMAGE,
        "echo",
        "kept",
    ]);
    assert_eq!(e.ok(&["logs", "loc"]), "kept\n");
    assert_eq!(e.inspect("loc")["HostConfig"]["LogConfig"]["Type"], "local");
    e.ok(&["run", "--name", "jf", IMAGE, "echo", "jf"]);
    assert_eq!(
        e.inspect("jf")["HostConfig"]["LogConfig"]["Type"],
        "json-file"
    );
    let (_, err) = e.code(
        125,
        &["run", "--rm", "--log-driver", "syslog", IMAGE, "true"],
    );
    assert!(err.contains("syslog"), "{err}");
}

/// `--ipc container:NAME` shares the donor's /dev/shm too (docker binds its host tmpfs):
/// a file one writes there the other reads, live; the tmpfs goes with the donor.
#[test]
fn item6_ipc_container_shares_dev_shm() {
    let e = Engine::new();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "donor",
        "--ipc",
        "shareable",
        "--shm-size",
        "8m",
        IMAGE,
        "sh",
        "-c",
        "echo from-donor > /dev/shm/x; exec sleep 1000",
    ]);
    e.wait_for(10, "the donor's file", || {
        e.run(&["exec", "donor", "cat", "/dev/shm/x"])
            .status
            .success()
            .then_some(())
    });
    let o = e.ok(&[
        "run",
        "--rm",
        "--ipc",
        "container:donor",
        IMAGE,
        "sh",
        "-c",
        "cat /dev/shm/x; echo from-joiner > /dev/shm/y; df -k /dev/shm | tail -1",
    ]);
    assert!(o.starts_with("from-donor\n"), "{o}");
    assert!(o.contains(" 8192 "), "the donor's 8 MiB tmpfs: {o}");
    assert_eq!(
        e.ok(&["exec", "donor", "cat", "/dev/shm/y"]),
        "from-joiner\n"
    );
    // A private container keeps its own.
    let o = e.ok(&["run", "--rm", IMAGE, "ls", "/dev/shm"]);
    assert!(o.trim().is_empty(), "{o}");
    let id = e.ok(&["inspect", "--format", "{{.Id}}", "donor"]);
    let dir = e
        .root()
        .join("engine/containers")
        .join(id.trim())
        .join("shm");
    assert!(std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(&dir.display().to_string()));
    e.ok(&["rm", "-f", "donor"]);
    assert!(!std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(&dir.display().to_string()));
}
