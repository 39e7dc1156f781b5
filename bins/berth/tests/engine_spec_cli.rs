//! Black-box tests of `run`/`create` flags and the hardened defaults as seen from inside a
//! container, and of `berth volume`. (engine_spec.rs drives build_spec + berth-runtime
//! directly, without the CLI.)

mod common;
use common::engine::*;

fn status_field(out: &str, key: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("{key} missing in:\n{out}"))
}

#[test]
fn run_defaults_are_hardened() {
    let e = Engine::new();
    let out = e.ok(&[
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status; \
         echo masked=$(cat /proc/interrupts | wc -c); \
         echo -n unshare=; unshare -Urm true 2>/dev/null && echo yes || echo no; \
         echo -n sysrw=; (echo 1 > /sys/kernel/uevent_helper) 2>/dev/null && echo yes || echo no",
    ]);
    for k in ["CapBnd:", "CapPrm:", "CapEff:"] {
        assert_eq!(status_field(&out, k), "00000000a80425fb", "{k}");
    }
    assert_eq!(status_field(&out, "CapInh:"), "0000000000000000");
    assert_eq!(status_field(&out, "NoNewPrivs:"), "1");
    assert_eq!(status_field(&out, "Seccomp:"), "2");
    assert_eq!(status_field(&out, "masked="), "0");
    assert_eq!(status_field(&out, "unshare="), "no");
    assert_eq!(status_field(&out, "sysrw="), "no");
}

#[test]
fn run_flags_reach_the_container() {
    let e = Engine::new();
    let out = e.ok(&[
        "run",
        "--rm",
        "-e",
        "A=1",
        "-w",
        "/tmp",
        "-h",
        "box7",
        "-u",
        "app",
        "--group-add",
        "4242",
        "--read-only",
        "-m",
        "32m",
        "--ulimit",
        "nofile=512:1024",
        "--tmpfs",
        "/run:size=1m",
        "--cap-drop",
        "ALL",
        IMAGE,
        "sh",
        "-c",
        "echo a=$A pwd=$(pwd) hn=$(hostname); id; \
         echo nofile=$(ulimit -n); echo mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes); \
         echo -n rootrw=; touch /x 2>/dev/null && echo yes || echo no; \
         echo run > /run/f && echo runok; grep CapBnd /proc/self/status",
    ]);
    assert!(out.contains("a=1 pwd=/tmp hn=box7"), "{out}");
    let id = status_field(&out, "uid=");
    assert!(id.starts_with("1000(app) gid=1000(app)"), "{out}");
    for g in ["10(wheel)", "29(audio)", "4242"] {
        assert!(id.contains(g), "supplementary group {g} (SEC-22): {out}");
    }
    assert_eq!(status_field(&out, "nofile="), "512");
    assert_eq!(status_field(&out, "mem="), (32u64 << 20).to_string());
    assert_eq!(status_field(&out, "rootrw="), "no");
    assert!(out.contains("runok"), "{out}");
    assert_eq!(status_field(&out, "CapBnd:"), "0000000000000000");
}

#[test]
fn bad_flags_are_clear_errors() {
    let e = Engine::new();
    for (args, needle) in [
        (
            vec!["--network", "no-such-net"],
            "network no-such-net not found",
        ),
        (
            vec!["--network", "host", "-p", "8080:80"],
            "conflicting options: port publishing",
        ),
        (
            vec!["--security-opt", "apparmor=docker-default"],
            "apparmor",
        ),
        (vec!["-m", "lots"], "\"lots\""),
        (vec!["--cap-add", "CAP_NOPE"], "CAP_NOPE"),
        (
            vec!["--sysctl", "kernel.core_pattern=|/x"],
            "kernel.core_pattern",
        ),
        (
            vec![
                "--mount",
                "type=bind,source=/nonexistent/berth-h1,target=/x",
            ],
            "/nonexistent/berth-h1",
        ),
        (vec!["--restart", "sometimes"], "sometimes"),
    ] {
        let mut a = vec!["run", "--rm"];
        a.extend(args.iter().copied());
        a.extend([IMAGE, "true"]);
        let (_, err) = e.code(125, &a);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(err.starts_with("Error"), "{err}");
    }
}

#[test]
fn volume_commands() {
    let e = Engine::new();
    assert_eq!(
        e.ok(&["volume", "create", "--label", "k=v", "vol1"]).trim(),
        "vol1"
    );
    let anon = e.ok(&["volume", "create"]).trim().to_string();
    assert_eq!(anon.len(), 64);
    let ls = e.ok(&["volume", "ls"]);
    let first = ls.lines().next().unwrap();
    assert!(
        first.starts_with("DRIVER") && first.contains("VOLUME NAME"),
        "{ls}"
    );
    assert!(ls.contains("local") && ls.contains("vol1"), "{ls}");
    let q = e.ok(&["volume", "ls", "-q"]);
    let mut names: Vec<&str> = q.lines().collect();
    names.sort();
    let mut want = vec!["vol1", anon.as_str()];
    want.sort();
    assert_eq!(names, want);
    assert_eq!(
        e.ok(&["volume", "ls", "-q", "-f", "label=k=v"]).trim(),
        "vol1"
    );
    assert_eq!(
        e.ok(&["volume", "ls", "-q", "--filter", "name=ol1"]).trim(),
        "vol1"
    );
    assert_eq!(
        e.ok(&["volume", "ls", "-q", "-f", "dangling=true"])
            .lines()
            .count(),
        2
    );
    let (_, err) = e.code(1, &["volume", "ls", "-f", "bogus=1"]);
    assert!(err.contains("bogus"), "{err}");
    let j: serde_json::Value = serde_json::from_str(
        e.ok(&["volume", "ls", "--format", "json"])
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(j["Driver"], "local");
    let v: serde_json::Value = serde_json::from_str(&e.ok(&["volume", "inspect", "vol1"])).unwrap();
    assert_eq!(v[0]["Name"], "vol1");
    assert_eq!(v[0]["Driver"], "local");
    assert_eq!(v[0]["Scope"], "local");
    assert_eq!(v[0]["Labels"]["k"], "v");
    let mp = e.ok(&["volume", "inspect", "--format", "{{.Mountpoint}}", "vol1"]);
    assert!(std::path::Path::new(mp.trim()).is_dir(), "{mp}");
    let (_, err) = e.code(1, &["volume", "inspect", "nope1"]);
    assert!(err.contains("nope1"), "{err}");
    let (_, err) = e.code(1, &["volume", "create", "bad/name"]);
    assert!(err.contains("bad/name"), "{err}");

    // In use by a container (even a stopped one): refused.
    let id = e
        .ok(&["create", "-v", "vol1:/data", IMAGE, "true"])
        .trim()
        .to_string();
    let (_, err) = e.code(1, &["volume", "rm", "vol1"]);
    assert!(err.contains("in use"), "{err}");
    assert_eq!(
        e.ok(&["volume", "ls", "-q", "-f", "dangling=false"]).trim(),
        "vol1"
    );
    e.ok(&["rm", &id]);
    assert_eq!(e.ok(&["volume", "rm", "vol1"]).trim(), "vol1");
    e.code(1, &["volume", "rm", "vol1"]);
    e.ok(&["volume", "rm", "-f", "vol1"]);

    // prune: anonymous ones only (a container's `-v /x`), unless -a. `volume create`
    // without a name makes a named volume with a random name, as docker.
    e.ok(&["volume", "create", "keepme"]);
    let id = e
        .ok(&["create", "-v", "/anon", IMAGE, "true"])
        .trim()
        .to_string();
    e.ok(&["rm", &id]);
    let anon_c: Vec<String> = e
        .ok(&["volume", "ls", "-q"])
        .lines()
        .filter(|n| n.len() == 64 && *n != anon)
        .map(str::to_string)
        .collect();
    assert_eq!(anon_c.len(), 1, "rm without -v keeps the anonymous volume");
    let out = e.ok(&["volume", "prune", "-f"]);
    assert!(
        out.contains("Deleted Volumes:") && out.contains(&anon_c[0]),
        "{out}"
    );
    assert!(!out.contains(&anon), "{out}");
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert!(e.ok(&["volume", "ls", "-q"]).contains("keepme"));
    let out = e.ok(&["volume", "prune", "-f", "-a"]);
    assert!(out.contains("keepme") && out.contains(&anon), "{out}");
    assert_eq!(e.ok(&["volume", "ls", "-q"]), "");
}

#[test]
fn named_and_image_volumes_persist() {
    let e = Engine::new();
    e.load_image(
        "withvol:1",
        serde_json::json!({"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"], "Volumes": {"/data": {}}}),
    );
    e.ok(&[
        "run",
        "--rm",
        "-v",
        "v2:/v",
        IMAGE,
        "sh",
        "-c",
        "echo kept > /v/f",
    ]);
    let out = e.ok(&[
        "run",
        "--rm",
        "-v",
        "v2:/v:ro",
        IMAGE,
        "sh",
        "-c",
        "cat /v/f; touch /v/g || echo ro",
    ]);
    assert!(out.contains("kept") && out.contains("ro"), "{out}");
    // The image's VOLUME gets an anonymous volume, recorded for `rm -v`.
    let id = e
        .ok(&["create", "withvol:1", "sh", "-c", "echo x > /data/f"])
        .trim()
        .to_string();
    let anon: Vec<String> = e
        .ok(&["volume", "ls", "-q"])
        .lines()
        .filter(|n| n.len() == 64)
        .map(str::to_string)
        .collect();
    assert_eq!(anon.len(), 1, "one anonymous volume for /data");
    e.ok(&["rm", "-v", &id]);
    assert!(
        !e.ok(&["volume", "ls", "-q"]).contains(&anon[0]),
        "rm -v removes it"
    );
}

#[test]
fn privileged_init_network_device_seccomp_file() {
    let e = Engine::new();
    let out = e.ok(&[
        "run",
        "--rm",
        "--privileged",
        IMAGE,
        "sh",
        "-c",
        "grep Seccomp: /proc/self/status; mount -t tmpfs none /tmp && echo mounted",
    ]);
    assert_eq!(status_field(&out, "Seccomp:"), "0");
    assert!(out.contains("mounted"), "{out}");

    let out = e.ok(&[
        "run",
        "--rm",
        "--init",
        IMAGE,
        "sh",
        "-c",
        "tr '\\0' ' ' < /proc/1/cmdline",
    ]);
    assert!(out.starts_with("/dev/init -- "), "{out}");

    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let out = e.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        IMAGE,
        "sh",
        "-c",
        "hostname; ls /sys/class/net",
    ]);
    assert_eq!(out.lines().next(), Some(host.as_str()), "{out}");
    assert!(out.lines().count() > 2, "host interfaces: {out}");
    let out = e.ok(&[
        "run",
        "--rm",
        "--sysctl",
        "net.ipv4.ip_unprivileged_port_start=80",
        IMAGE,
        "sh",
        "-c",
        "ls /sys/class/net; cat /proc/sys/net/ipv4/ip_unprivileged_port_start",
    ]);
    // Its own network namespace: lo and its veth on the default network.
    assert_eq!(out, "eth0\nlo\n80\n", "own network namespace");

    let out = e.ok(&[
        "run",
        "--rm",
        "--device",
        "/dev/null:/dev/mynull:rw",
        IMAGE,
        "sh",
        "-c",
        "echo x > /dev/mynull && echo ok",
    ]);
    assert_eq!(out.trim(), "ok");

    let prof = e.dir.path().join("prof.json");
    std::fs::write(&prof, r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#).unwrap();
    let opt = format!("seccomp={}", prof.display());
    let out = e.ok(&[
        "run",
        "--rm",
        "--security-opt",
        &opt,
        IMAGE,
        "sh",
        "-c",
        "mkdir /tmp/d 2>/dev/null && echo made || echo refused",
    ]);
    assert_eq!(out.trim(), "refused");

    let envf = e.dir.path().join("env");
    std::fs::write(&envf, "# c\nFROMFILE=1\n").unwrap();
    let out = e.ok(&[
        "run",
        "--rm",
        "-t",
        "--env-file",
        envf.to_str().unwrap(),
        IMAGE,
        "sh",
        "-c",
        "echo $FROMFILE $TERM $HOSTNAME",
    ]);
    let w: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(&w[..2], &["1", "xterm"], "{out}");
    assert_eq!(w[2].len(), 12, "{out}");
}

#[test]
fn resource_flags_land_in_the_cgroup() {
    let e = Engine::new();
    let out = e.ok(&[
        "run",
        "--rm",
        "-m",
        "32m",
        "--memory-swap",
        "64m",
        "--cpus",
        "0.5",
        "--cpuset-cpus",
        "0",
        "-c",
        "512",
        "--pids-limit",
        "10",
        "--shm-size",
        "2m",
        IMAGE,
        "sh",
        "-c",
        "cd /sys/fs/cgroup; echo mem=$(cat memory/memory.limit_in_bytes) \
         sw=$(cat memory/memory.memsw.limit_in_bytes 2>/dev/null || echo none) \
         quota=$(cat cpu/cpu.cfs_quota_us) period=$(cat cpu/cpu.cfs_period_us) \
         shares=$(cat cpu/cpu.shares) cpus=$(cat cpuset/cpuset.cpus) pids=$(cat pids/pids.max) \
         shm=$(df -k /dev/shm | tail -1 | awk '{print $2}')",
    ]);
    let line = out.trim();
    for want in [
        "mem=33554432",
        "quota=50000",
        "period=100000",
        "shares=512",
        "cpus=0",
        "pids=10",
        "shm=2048",
    ] {
        assert!(line.contains(want), "{want} in {line}");
    }
    assert!(
        line.contains("sw=67108864") || line.contains("sw=none"),
        "{line}"
    );
    let out = e.ok(&[
        "run",
        "--rm",
        "-m",
        "32m",
        "--memory-swap",
        "-1",
        IMAGE,
        "true",
    ]);
    assert_eq!(out, "");
}

#[test]
fn hardened_defaults_under_runc() {
    // (crun 1.8 refuses this hybrid-cgroup host outside a private mount namespace; the
    // lead's engine_crun.rs covers it.)
    let e = Engine::new();
    let rt = "runc";
    {
        let out = e.ok(&[
            "run",
            "--rm",
            "--runtime",
            rt,
            "-u",
            "app",
            "-m",
            "32m",
            "-v",
            "/anon",
            IMAGE,
            "sh",
            "-c",
            "grep -E '^(CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; id; \
             echo masked=$(cat /proc/interrupts | wc -c); echo hn=$(cat /etc/hostname)",
        ]);
        assert_eq!(
            status_field(&out, "CapBnd:"),
            "00000000a80425fb",
            "{rt}: {out}"
        );
        assert_eq!(status_field(&out, "NoNewPrivs:"), "1", "{rt}");
        assert_eq!(status_field(&out, "Seccomp:"), "2", "{rt}");
        assert_eq!(status_field(&out, "masked="), "0", "{rt}");
        assert!(
            status_field(&out, "uid=").contains("10(wheel)"),
            "{rt}: {out}"
        );
        assert_eq!(status_field(&out, "hn=").len(), 12, "{rt}: {out}");
    }
}
