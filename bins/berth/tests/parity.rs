//! Issue 17 (docker parity), black-box: each test names the item it pins and checks
//! docker's documented behaviour.
//! Run as root: `scripts/in-netns.sh cargo nextest run -p berth --test parity`.

mod common;
use common::engine::*;

/// Item 2: HOME from the user's passwd entry, "/" without one, unless the image or -e
/// sets it.
#[test]
fn item2_home_is_the_users_unless_set() {
    let e = Engine::new();
    let home = |args: &[&str]| {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(args);
        a.extend([IMAGE, "sh", "-c", "echo $HOME"]);
        e.ok(&a).trim().to_string()
    };
    assert_eq!(home(&[]), "/root");
    assert_eq!(home(&["-u", "app"]), "/home/app");
    assert_eq!(home(&["-u", "1000"]), "/home/app");
    assert_eq!(home(&["-u", "4242"]), "/");
    assert_eq!(home(&["-u", "app", "-e", "HOME=/x"]), "/x");
    e.load_image(
        "homed:1",
        serde_json::json!({"Cmd": ["/bin/sh"], "Env": ["PATH=/bin", "HOME=/img"]}),
    );
    let o = e.ok(&["run", "--rm", "homed:1", "sh", "-c", "echo $HOME"]);
    assert_eq!(o.trim(), "/img");
}

/// Item 3: a named user gets its supplementary groups from the image's /etc/group, and
/// --group-add adds to them.
#[test]
fn item3_user_gets_its_groups() {
    let e = Engine::new();
    let o = e.ok(&["run", "--rm", "-u", "app", IMAGE, "id", "-G"]);
    assert_eq!(
        o.split_whitespace().collect::<Vec<_>>(),
        ["1000", "10", "29"]
    );
    let o = e.ok(&[
        "run",
        "--rm",
        "-u",
        "app",
        "--group-add",
        "4242",
        IMAGE,
        "id",
        "-G",
    ]);
    assert_eq!(
        o.split_whitespace().collect::<Vec<_>>(),
        ["1000", "10", "29", "4242"]
    );
}

/// Item 4: -w of a missing directory makes it, owned by the user; so does an image's
/// WORKDIR.
#[test]
fn item4_missing_workdir_is_made_for_the_user() {
    let e = Engine::new();
    let o = e.ok(&[
        "run",
        "--rm",
        "-u",
        "1000:1000",
        "-w",
        "/new/dir",
        IMAGE,
        "sh",
        "-c",
        "pwd; stat -c '%u:%g %a' /new /new/dir",
    ]);
    assert_eq!(
        o.lines().collect::<Vec<_>>(),
        ["/new/dir", "1000:1000 755", "1000:1000 755"]
    );
    // An image's WORKDIR that its layers lack.
    e.load_image(
        "wd:1",
        serde_json::json!({"Cmd": ["pwd"], "Env": ["PATH=/bin"], "WorkingDir": "/srv/app"}),
    );
    assert_eq!(e.ok(&["run", "--rm", "wd:1"]).trim(), "/srv/app");
    // A file in the way is a clear error.
    let (_, err) = e.code(125, &["run", "--rm", "-w", "/etc/passwd/x", IMAGE, "true"]);
    assert!(err.contains("/etc/passwd/x"), "{err}");
}

/// Item 4: -v of a missing host path makes the directory (docker's -v); --mount refuses.
#[test]
fn item4_v_makes_a_missing_host_dir_mount_refuses() {
    let e = Engine::new();
    let host = e.dir.path().join("made/by/v");
    let spec = format!("{}:/data", host.display());
    e.ok(&["run", "--rm", "-v", &spec, IMAGE, "touch", "/data/f"]);
    assert!(host.join("f").is_file());
    assert!(std::fs::metadata(&host).unwrap().is_dir());
    let missing = e.dir.path().join("not/made");
    let m = format!("type=bind,source={},target=/data", missing.display());
    let (_, err) = e.code(125, &["run", "--rm", "--mount", &m, IMAGE, "true"]);
    assert!(err.contains("bind source path does not exist"), "{err}");
    assert!(!missing.exists());
}

/// Item 10: commands other than run/create exit 1 on failure, as docker's CLI; exec's
/// "cannot invoke" is 126 (unknown user, missing -w), a missing program 127; a usage
/// error is 125.
#[test]
fn item10_exit_codes_are_dockers() {
    let e = Engine::new();
    for args in [
        &["rm", "nosuch"][..],
        &["kill", "nosuch"],
        &["stop", "nosuch"],
        &["start", "nosuch"],
        &["inspect", "nosuch"],
        &["rmi", "nosuch:1"],
        &["wait", "nosuch"],
        &["rename", "nosuch", "other"],
        &["logs", "nosuch"],
        &["exec", "nosuch", "true"],
        &["network", "rm", "nosuch"],
        &["volume", "rm", "nosuch"],
    ] {
        let (_, err) = e.code(1, args);
        assert!(err.to_lowercase().contains("nosuch"), "{args:?}: {err}");
    }
    e.code(125, &["run", "--rm", "nosuch:1"]);
    e.code(125, &["create", "nosuch:1"]);
    e.code(125, &["rm", "--no-such-flag", "x"]);
    e.ok(&["run", "-d", "--name", "ex", IMAGE, "sleep", "30"]);
    let (_, err) = e.code(126, &["exec", "-u", "nosuchuser", "ex", "true"]);
    assert!(err.contains("nosuchuser"), "{err}");
    e.code(126, &["exec", "-w", "/nope", "ex", "true"]);
    e.code(127, &["exec", "ex", "/nope"]);
    e.code(126, &["exec", "ex", "/etc/passwd"]);
    e.code(3, &["exec", "ex", "sh", "-c", "exit 3"]);
    e.ok(&["rm", "-f", "ex"]);
}

/// Item 5: pause and unpause freeze and thaw every process (a paused container's loop
/// writes nothing), report docker's states and errors, and a paused container still stops.
#[test]
fn item5_pause_unpause() {
    let e = Engine::new();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "pz",
        IMAGE,
        "sh",
        "-c",
        "trap 'exit 7' TERM; while :; do echo x >> /tmp/ticks; sleep 0.05; done",
    ]);
    let ticks = || {
        e.ok(&["exec", "pz", "sh", "-c", "wc -l < /tmp/ticks"])
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    e.wait_for(10, "ticks", || (ticks() > 0).then_some(()));
    assert_eq!(e.ok(&["pause", "pz"]).trim(), "pz");
    let st = |e: &Engine| e.ok(&["inspect", "--format", "{{.State.Status}}", "pz"]);
    assert_eq!(st(&e).trim(), "paused");
    assert!(e
        .ok(&["ps", "--format", "{{.Status}}"])
        .contains("(Paused)"));
    // Frozen: nothing runs (read from the host: exec is refused).
    let id = e.ok(&["inspect", "--format", "{{.Id}}", "pz"]);
    let file = e
        .root()
        .join("containers")
        .join(id.trim())
        .join("merged/tmp/ticks");
    let lines = || std::fs::read_to_string(&file).unwrap().lines().count();
    let n = lines();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(lines(), n, "the paused loop went on");
    let (_, err) = e.code(1, &["exec", "pz", "true"]);
    assert!(err.contains("paused"), "{err}");
    let (_, err) = e.code(1, &["pause", "pz"]);
    assert!(err.contains("already paused"), "{err}");
    assert_eq!(e.ok(&["unpause", "pz"]).trim(), "pz");
    assert_eq!(st(&e).trim(), "running");
    let a = ticks();
    e.wait_for(10, "ticks after unpause", || (ticks() > a).then_some(()));
    let (_, err) = e.code(1, &["unpause", "pz"]);
    assert!(err.contains("not paused"), "{err}");
    // A paused container stops: its signal is delivered once thawed.
    e.ok(&["pause", "pz"]);
    e.ok(&["stop", "-t", "5", "pz"]);
    assert_eq!(
        e.ok(&["inspect", "--format", "{{.State.ExitCode}}", "pz"])
            .trim(),
        "7"
    );
    let (_, err) = e.code(1, &["pause", "pz"]);
    assert!(err.contains("not running"), "{err}");
    let ev = e.ok(&["events", "--since", "1h", "--until", "0s"]);
    assert!(ev.contains(" pause ") && ev.contains(" unpause "), "{ev}");
    e.code(1, &["pause", "nosuch"]);
}

/// Item 5: info, version and system df in docker's layouts, and --format.
#[test]
fn item5_info_version_df() {
    let e = Engine::new();
    e.ok(&["run", "-d", "--name", "up1", IMAGE, "sleep", "30"]);
    e.ok(&["create", "--name", "made", IMAGE, "true"]);
    let info = e.ok(&["info"]);
    for want in [
        "Server:",
        " Containers: 2",
        "  Running: 1",
        "  Stopped: 1",
        " Images: 1",
        " Storage Driver: overlay2",
        " Cgroup Driver: cgroupfs",
        " Default Runtime: berth-runtime",
    ] {
        assert!(info.contains(want), "{want:?} in\n{info}");
    }
    let cg = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    };
    assert!(info.contains(&format!(" Cgroup Version: {cg}")), "{info}");
    assert!(
        info.contains(&format!(" Berth Root Dir: {}", e.root().display())),
        "{info}"
    );
    assert_eq!(
        e.ok(&["info", "--format", "{{.ContainersRunning}}/{{.Images}}"])
            .trim(),
        "1/1"
    );
    assert_eq!(
        e.ok(&["system", "info", "--format", "{{.Containers}}"])
            .trim(),
        "2"
    );
    let v = e.ok(&["version"]);
    assert!(v.starts_with("Client:\n Version:"), "{v}");
    assert!(
        v.contains(" berth-runtime:\n  Version:          berth-runtime"),
        "{v}"
    );
    assert_eq!(
        e.ok(&["version", "--format", "{{.Server.ApiVersion}}"])
            .trim(),
        "1.41"
    );
    let df = e.ok(&["system", "df"]);
    let lines: Vec<&str> = df.lines().collect();
    assert!(lines[0].starts_with("TYPE"), "{df}");
    let row = |t: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(t))
            .unwrap_or_else(|| panic!("{t} in {df}"))
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    // busybox:latest, used by both containers.
    assert_eq!(&row("Images")[1..3], ["1", "1"]);
    assert_eq!(&row("Containers")[1..3], ["2", "1"]);
    assert_eq!(&row("Local Volumes")[2..4], ["0", "0"]);
    let f = e.ok(&["system", "df", "--format", "{{.Type}}:{{.TotalCount}}"]);
    assert_eq!(
        f.lines().collect::<Vec<_>>(),
        [
            "Images:1",
            "Containers:2",
            "Local Volumes:0",
            "Build Cache:0"
        ]
    );
    e.code(1, &["system", "df", "-v"]);
}

/// Item 5: export writes the container's filesystem (with its changes, without its
/// volumes) as a tar, to stdout or -o, running or not.
#[test]
fn item5_export() {
    let e = Engine::new();
    e.ok(&[
        "run",
        "--name",
        "ex",
        "-v",
        "/vol",
        IMAGE,
        "sh",
        "-c",
        "echo changed > /etc/motd; echo v > /vol/inside",
    ]);
    let out = e.dir.path().join("ex.tar");
    e.ok(&["export", "-o", out.to_str().unwrap(), "ex"]);
    let list = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&out)
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&list.stdout);
    assert!(names.lines().any(|l| l == "bin/busybox"), "{names}");
    assert!(names.lines().any(|l| l == "etc/motd"), "{names}");
    assert!(
        !names.contains("vol/inside"),
        "a volume was exported: {names}"
    );
    let motd = std::process::Command::new("tar")
        .arg("-xOf")
        .arg(&out)
        .arg("etc/motd")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&motd.stdout), "changed\n");
    // stdout of a running one, through `container export`.
    e.ok(&["run", "-d", "--name", "live", IMAGE, "sleep", "30"]);
    let o = e.cmd(&["container", "export", "live"]).output().unwrap();
    assert!(o.status.success());
    assert!(o.stdout.len() > 100_000, "{}", o.stdout.len());
    e.code(1, &["export", "nosuch"]);
}

/// Item 11: messages say each thing once and in docker's words; a stderr that is a
/// broken pipe never turns an error into an abort.
#[test]
fn item11_messages() {
    let e = Engine::new();
    e.load_image("nocmd:1", serde_json::json!({"Env": ["PATH=/bin"]}));
    let (_, err) = e.code(125, &["run", "--rm", "nocmd:1"]);
    assert_eq!(err.matches("no command").count(), 1, "{err}");
    let (_, err) = e.code(125, &["run", "--rm", "-u", "nosuchuser", IMAGE, "true"]);
    assert_eq!(err.matches("no such user").count(), 1, "{err}");
    let (_, err) = e.code(1, &["pull", "bb:lat:est"]);
    assert!(err.contains("invalid reference format"), "{err}");
    let (_, err) = e.code(1, &["pull", "UPPER/case"]);
    assert!(err.contains("must be lowercase"), "{err}");
    let (_, err) = e.code(125, &["run", "--rm", "-m", "-1", IMAGE, "true"]);
    assert!(err.contains("invalid size \"-1\""), "{err}");
    let (_, err) = e.code(125, &["run", "--rm", "-m", "1k", IMAGE, "true"]);
    assert!(err.contains("Minimum memory limit"), "{err}");
    // stderr whose reader is gone: the error is lost, the exit code is still docker's.
    let (r, w) = rustix::pipe::pipe().unwrap();
    drop(r);
    let st = e
        .cmd(&["rm", "nosuch"])
        .stderr(std::process::Stdio::from(w))
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(1), "{st:?}");
    let (r, w) = rustix::pipe::pipe().unwrap();
    drop(r);
    let st = e
        .cmd(&["run", "--rm", "nocmd:1"])
        .stderr(std::process::Stdio::from(w))
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(125), "{st:?}");
}

/// Item 12: docs/cli.md is the CLI's own reference (regenerate with `berth __cli-doc`),
/// and completions come for bash, zsh and fish.
#[test]
fn item12_cli_reference_and_completions() {
    let doc = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/cli.md");
    let want = std::fs::read_to_string(&doc).unwrap();
    let o = std::process::Command::new(common::berth_exe())
        .arg("__cli-doc")
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stdout) == want,
        "docs/cli.md is out of date: run `berth __cli-doc > docs/cli.md`"
    );
    for (shell, marker) in [
        ("bash", "_berth()"),
        ("zsh", "#compdef berth"),
        ("fish", "complete -c berth"),
    ] {
        let o = std::process::Command::new(common::berth_exe())
            .args(["completion", shell])
            .output()
            .unwrap();
        let s = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && s.contains(marker),
            "{shell}: {s:.200}"
        );
        assert!(s.contains("compose"), "{shell} lacks subcommands");
    }
}

/// Item 5: update changes a running container's cgroup and its record (kept across a
/// restart), a stopped one's record; --restart reaches the monitor; bad values are
/// refused as create refuses them.
#[test]
fn item5_update() {
    let e = Engine::new();
    let id = e
        .ok(&[
            "run", "-d", "--name", "up", "-m", "64m", IMAGE, "sleep", "1000",
        ])
        .trim()
        .to_string();
    let cg = |ctl: &str, file: &str| {
        let parent = e.inspect("up")["HostConfig"]["CgroupParent"]
            .as_str()
            .unwrap()
            .trim_start_matches('/')
            .to_string();
        std::fs::read_to_string(format!("/sys/fs/cgroup/{ctl}/{parent}/{id}/{file}"))
            .or_else(|_| std::fs::read_to_string(format!("/sys/fs/cgroup/{parent}/{id}/{file}")))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    assert_eq!(
        e.ok(&[
            "update",
            "-m",
            "128m",
            "--cpus",
            "0.5",
            "--pids-limit",
            "50",
            "up"
        ])
        .trim(),
        "up"
    );
    if v2 {
        assert_eq!(cg("", "memory.max"), (128u64 << 20).to_string());
        assert_eq!(cg("", "pids.max"), "50");
    } else {
        assert_eq!(
            cg("memory", "memory.limit_in_bytes"),
            (128u64 << 20).to_string()
        );
        assert_eq!(cg("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(cg("pids", "pids.max"), "50");
    }
    let hc = &e.inspect("up")["HostConfig"];
    assert_eq!(hc["Memory"], 128 << 20);
    assert_eq!(hc["NanoCpus"], 500_000_000);
    assert_eq!(hc["PidsLimit"], 50);
    // Kept across a restart (the record was changed).
    e.ok(&["restart", "-t", "0", "up"]);
    assert_eq!(e.inspect("up")["HostConfig"]["Memory"], 128 << 20);
    // --restart reaches the monitor: the container comes back after its process dies.
    e.ok(&["update", "--restart", "always", "up"]);
    let pid = e.ok(&["inspect", "--format", "{{.State.Pid}}", "up"]);
    let pid: i32 = pid.trim().parse().unwrap();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    e.wait_for(15, "the restart", || {
        let s = e.inspect("up")["State"].clone();
        (s["Running"] == true && s["Pid"].as_i64() != Some(pid as i64)).then_some(())
    });
    assert_eq!(e.inspect("up")["RestartCount"], 1);
    // A stopped container: the record only.
    e.ok(&["create", "--name", "cold", IMAGE, "true"]);
    e.ok(&["update", "--memory-reservation", "32m", "cold"]);
    assert_eq!(
        e.inspect("cold")["HostConfig"]["MemoryReservation"],
        32 << 20
    );
    // Refused as create refuses; nothing changes.
    let (_, err) = e.code(1, &["update", "-m", "1k", "up"]);
    assert!(err.contains("Minimum memory limit"), "{err}");
    let (_, err) = e.code(1, &["update", "--cpus", "99999", "up"]);
    assert!(err.contains("range of CPUs"), "{err}");
    let (_, err) = e.code(1, &["update", "up"]);
    assert!(err.contains("one or more flags"), "{err}");
    e.ok(&["run", "-d", "--rm", "--name", "gone", IMAGE, "sleep", "100"]);
    let (_, err) = e.code(1, &["update", "--restart", "always", "gone"]);
    assert!(err.contains("AutoRemove"), "{err}");
    assert_eq!(e.inspect("up")["HostConfig"]["Memory"], 128 << 20);
    e.code(1, &["update", "-m", "64m", "nosuch"]);
    e.ok(&["rm", "-f", "up", "cold", "gone"]);
}

/// Item 1: loopback is up in every network mode (`--network none` too): a server binds
/// 127.0.0.1 and a client reaches it.
#[test]
fn item1_loopback_is_up_in_every_mode() {
    let e = Engine::new();
    for net in ["none", "bridge"] {
        let o = e.ok(&[
            "run",
            "--rm",
            "--network",
            net,
            IMAGE,
            "sh",
            "-c",
            "ip -o link show lo; mkdir /w; echo hi > /w/x; httpd -p 127.0.0.1:8080 -h /w; \
             timeout 5 wget -qO- http://127.0.0.1:8080/x",
        ]);
        assert!(
            o.contains("state UNKNOWN") || o.contains(",UP"),
            "{net}: {o}"
        );
        assert!(o.trim_end().ends_with("hi"), "{net}: {o}");
    }
}
