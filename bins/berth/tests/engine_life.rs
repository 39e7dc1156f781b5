//! Container lifecycle, black-box: run/create/start/stop/kill/restart/rm/ps/inspect/wait/
//! rename/prune, names, the truth after a monitor dies, -it under a pty, and ^C.
//! Run as root: `cargo test -p berth --test engine_life`.

mod common;
use common::engine::*;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn status(e: &Engine, c: &str) -> String {
    // Empty while the container does not exist yet.
    let o = e.run(&[
        "inspect",
        "--type",
        "container",
        "--format",
        "{{.State.Status}}",
        c,
    ]);
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn wait_status(e: &Engine, c: &str, want: &str) {
    e.wait_for(10, &format!("{c} to be {want}"), || {
        (status(e, c) == want).then_some(())
    });
}

/// A container that runs until it gets SIGTERM (pid 1 has no default handlers).
const LOOP_TERM: &str = "trap 'exit 0' TERM; while :; do sleep 0.1; done";

#[test]
fn run_exit_codes() {
    let e = Engine::new();
    e.code(0, &["run", "--rm", IMAGE, "true"]);
    e.code(3, &["run", "--rm", IMAGE, "sh", "-c", "exit 3"]);
    let (_, err) = e.code(127, &["run", "--rm", IMAGE, "nope-not-here"]);
    assert!(err.contains("nope-not-here"), "{err}");
    // A file that is not executable: 126 (runc words it "permission denied").
    e.code(
        126,
        &["run", "--rm", "--runtime", "runc", IMAGE, "/etc/passwd"],
    );
    let (_, err) = e.code(125, &["run", "--rm", "--name", "-bad", IMAGE, "true"]);
    assert!(!err.is_empty());
    // --rm containers are gone once run returns, whatever their exit.
    assert_eq!(e.ok(&["ps", "-aq"]), "");
    // Without --rm the exited container stays, with its code.
    e.code(4, &["run", "--name", "four", IMAGE, "sh", "-c", "exit 4"]);
    assert_eq!(
        e.ok(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.ExitCode}}",
            "four"
        ]),
        "exited 4\n"
    );
}

#[test]
fn run_streams_and_stdin() {
    let e = Engine::new();
    let o = e.run(&[
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "echo out; echo err >&2; exit 0",
    ]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n");
    let mut c = e.cmd(&["run", "--rm", "-i", IMAGE, "sh", "-c", "tr a-z A-Z"]);
    c.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut ch = c.spawn().unwrap();
    ch.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let o = ch.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "HELLO\n");
}

#[test]
fn run_detached_prints_id_and_rm_removes_at_exit() {
    let e = Engine::new();
    let id = e.ok(&["run", "-d", IMAGE, "sleep", "0.2"]);
    let id = id.trim();
    assert!(is_id(id), "{id:?}");
    assert_eq!(e.ok(&["wait", id]), "0\n");
    let id2 = e.ok(&["run", "-d", "--rm", IMAGE, "sleep", "0.2"]);
    let id2 = id2.trim().to_string();
    e.wait_for(10, "--rm container removed", || {
        (!e.ok(&["ps", "-aq", "--no-trunc"]).contains(&id2)).then_some(())
    });
    assert!(!e.root().join("engine/containers").join(&id2).exists());
}

#[test]
fn create_start_wait() {
    let e = Engine::new();
    let id = e.ok(&["create", "--name", "cs", IMAGE, "sh", "-c", "exit 6"]);
    assert!(is_id(id.trim()));
    assert_eq!(status(&e, "cs"), "created");
    let ps = e.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert_eq!(ps, "cs Created\n");
    // Not running: not in plain ps.
    assert_eq!(e.ok(&["ps", "-q"]), "");
    assert_eq!(e.ok(&["start", "cs"]), "cs\n");
    assert_eq!(e.ok(&["wait", "cs"]), "6\n");
    let v = e.inspect("cs");
    assert_eq!(v["State"]["ExitCode"], 6);
    assert_eq!(v["State"]["Status"], "exited");
    assert_eq!(v["Name"], "/cs");
    assert_eq!(v["Id"], id.trim());
    assert!(v["State"]["FinishedAt"].as_str().unwrap() > v["State"]["StartedAt"].as_str().unwrap());
    // start -a attaches and returns the code.
    let o = e.run(&["start", "-a", "cs"]);
    assert_eq!(o.status.code(), Some(6));
    // A container can be started again after it exited.
    let id2 = e.ok(&["create", IMAGE, "echo", "again"]);
    let o = e.run(&["start", "-a", id2.trim()]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "again\n");
}

#[test]
fn stop_kills_after_timeout() {
    let e = Engine::new();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "stubborn",
        IMAGE,
        "sh",
        "-c",
        "trap '' TERM; while :; do sleep 0.1; done",
    ]);
    wait_status(&e, "stubborn", "running");
    let t = Instant::now();
    assert_eq!(e.ok(&["stop", "-t", "1", "stubborn"]), "stubborn\n");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(8),
        "{took:?}"
    );
    assert_eq!(
        e.ok(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.ExitCode}}",
            "stubborn"
        ]),
        "exited 137\n"
    );

    e.ok(&[
        "run", "-d", "--name", "polite", IMAGE, "sh", "-c", LOOP_TERM,
    ]);
    wait_status(&e, "polite", "running");
    let t = Instant::now();
    e.ok(&["stop", "polite"]);
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(
        e.ok(&["inspect", "--format", "{{.State.ExitCode}}", "polite"]),
        "0\n"
    );
    // Stopping a stopped container is fine, as docker.
    assert_eq!(e.ok(&["stop", "polite"]), "polite\n");
    e.code(1, &["stop", "no-such-container"]);
}

#[test]
fn kill_and_restart() {
    let e = Engine::new();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "kk",
        IMAGE,
        "sh",
        "-c",
        "trap 'exit 7' USR1; while :; do sleep 0.1; done",
    ]);
    wait_status(&e, "kk", "running");
    assert_eq!(e.ok(&["kill", "-s", "USR1", "kk"]), "kk\n");
    assert_eq!(e.ok(&["wait", "kk"]), "7\n");
    let (_, err) = e.code(1, &["kill", "kk"]);
    assert!(err.contains("is not running"), "{err}");

    e.ok(&["run", "-d", "--name", "rr", IMAGE, "sh", "-c", LOOP_TERM]);
    wait_status(&e, "rr", "running");
    let before = e.inspect("rr");
    assert_eq!(e.ok(&["restart", "-t", "2", "rr"]), "rr\n");
    let after = e.inspect("rr");
    assert_eq!(after["State"]["Status"], "running");
    assert_ne!(after["State"]["StartedAt"], before["State"]["StartedAt"]);
    assert_ne!(after["State"]["Pid"], before["State"]["Pid"]);
    e.ok(&["kill", "rr"]);
    assert_eq!(e.ok(&["wait", "rr"]), "137\n");
}

#[test]
fn rm_force_and_volumes() {
    let e = Engine::new();
    e.ok(&["run", "-d", "--name", "busy", IMAGE, "sh", "-c", LOOP_TERM]);
    wait_status(&e, "busy", "running");
    let (_, err) = e.code(1, &["rm", "busy"]);
    assert!(err.contains("container is running"), "{err}");
    assert_eq!(e.ok(&["rm", "-f", "busy"]), "busy\n");
    assert_eq!(e.ok(&["ps", "-aq"]), "");
    e.code(1, &["inspect", "--type", "container", "busy"]);
    // The name is free again.
    e.ok(&["create", "--name", "busy", IMAGE, "true"]);
    // rm -v removes the container's anonymous volumes.
    e.ok(&["create", "--name", "vol", "-v", "/data", IMAGE, "true"]);
    let vols = || {
        std::fs::read_dir(e.root().join("engine/volumes"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    assert_eq!(vols(), 1);
    e.ok(&["rm", "-v", "vol"]);
    assert_eq!(vols(), 0);
    e.ok(&["rm", "busy"]);
    let (_, err) = e.code(1, &["rm", "busy"]);
    assert!(err.contains("No such container: busy"), "{err}");

    // rm -f of a running container is carried out by its monitor at the exit (as --rm):
    // anonymous volumes stay without -v and go with it; the trees go after the reply.
    for (name, flags, left) in [("keep", &["-f"][..], 1), ("drop", &["-f", "-v"][..], 1)] {
        e.ok(&[
            "run", "-d", "--name", name, "-v", "/data", IMAGE, "sh", "-c", LOOP_TERM,
        ]);
        wait_status(&e, name, "running");
        let mut args = vec!["rm"];
        args.extend_from_slice(flags);
        args.push(name);
        assert_eq!(e.ok(&args), format!("{name}\n"));
        e.code(1, &["inspect", "--type", "container", name]);
        assert_eq!(vols(), left, "after rm {flags:?} {name}");
    }
    let t = std::time::Instant::now();
    let trees = || {
        ["engine/containers", "containers"]
            .iter()
            .flat_map(|d| std::fs::read_dir(e.root().join(d)).into_iter().flatten())
            .filter_map(|x| x.ok())
            .map(|x| x.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".removing-"))
            .collect::<Vec<_>>()
    };
    while !trees().is_empty() && t.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        trees(),
        Vec::<String>::new(),
        "the monitors deleted what they renamed"
    );
}

#[test]
fn ps_formats_and_filters() {
    let e = Engine::new();
    e.ok(&[
        "create",
        "--name",
        "alpha",
        "--label",
        "tier=web",
        IMAGE,
        "sh",
        "-c",
        "echo a long command line here",
    ]);
    e.code(
        2,
        &[
            "run", "--name", "beta", "--label", "tier=db", IMAGE, "sh", "-c", "exit 2",
        ],
    );
    e.ok(&["run", "-d", "--name", "gamma", IMAGE, "sh", "-c", LOOP_TERM]);
    wait_status(&e, "gamma", "running");

    let out = e.ok(&["ps"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    for h in [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ] {
        assert!(lines[0].contains(h), "{out}");
    }
    assert!(
        lines[1].contains("gamma") && lines[1].contains("Up "),
        "{out}"
    );
    assert!(
        lines[1].contains(r#""sh -c 'trap 'exit 0…""#) || lines[1].contains("…\""),
        "{out}"
    );

    let all = e.ok(&["ps", "-a", "--format", "{{.Names}}|{{.Status}}"]);
    assert_eq!(all.lines().count(), 3, "{all}");
    assert!(
        all.lines().next().unwrap().starts_with("gamma|Up "),
        "newest first: {all}"
    );
    assert!(all.contains("beta|Exited (2) "), "{all}");
    assert!(all.contains("alpha|Created"), "{all}");

    let names = |f: &[&str]| {
        let mut a = vec!["ps", "-a", "--format", "{{.Names}}"];
        a.extend_from_slice(f);
        let mut v: Vec<String> = e.ok(&a).lines().map(str::to_string).collect();
        v.sort();
        v.join(",")
    };
    assert_eq!(names(&["--filter", "status=exited"]), "beta");
    assert_eq!(
        names(&["--filter", "status=created", "--filter", "status=running"]),
        "alpha,gamma"
    );
    assert_eq!(names(&["--filter", "name=lph"]), "alpha");
    assert_eq!(names(&["--filter", "label=tier"]), "alpha,beta");
    assert_eq!(names(&["--filter", "label=tier=db"]), "beta");
    assert_eq!(names(&["--filter", "exited=2"]), "beta");
    assert_eq!(names(&["--filter", "ancestor=busybox"]), "alpha,beta,gamma");
    assert_eq!(
        names(&["--filter", "label=tier", "--filter", "status=created"]),
        "alpha"
    );
    assert_eq!(names(&["--filter", "before=gamma"]), "alpha,beta");
    assert_eq!(names(&["--filter", "since=alpha"]), "beta,gamma");
    assert_eq!(names(&["--filter", "health=none"]), "alpha,beta,gamma");
    e.code(1, &["ps", "--filter", "before=nobody"]);
    e.code(1, &["ps", "--filter", "bogus=1"]);
    e.code(1, &["ps", "--filter", "status=sleepy"]);

    let id = e.ok(&["inspect", "--format", "{{.Id}}", "alpha"]);
    assert_eq!(names(&["--filter", &format!("id={}", &id[..10])]), "alpha");
    let q = e.ok(&["ps", "-aq"]);
    assert!(q.lines().all(|l| l.len() == 12), "{q}");
    let q = e.ok(&["ps", "-aq", "--no-trunc"]);
    assert!(q.lines().all(is_id), "{q}");
    assert_eq!(e.ok(&["ps", "-l", "--format", "{{.Names}}"]), "gamma\n");
    assert_eq!(
        e.ok(&["ps", "-n", "2", "--format", "{{.Names}}"]),
        "gamma\nbeta\n"
    );
    assert_eq!(
        e.ok(&[
            "ps",
            "-a",
            "--filter",
            "name=alpha",
            "--format",
            "{{.Label \"tier\"}}"
        ]),
        "web\n"
    );

    let t = e.ok(&[
        "ps",
        "-a",
        "--filter",
        "name=beta",
        "--format",
        "table {{.Names}}\\t{{.State}}",
    ]);
    assert_eq!(t, "NAMES     STATE\nbeta      exited\n");
    let j = e.ok(&["ps", "-a", "--filter", "name=beta", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(j.trim()).unwrap();
    assert_eq!(v["Names"], "beta");
    assert_eq!(v["State"], "exited");
    assert_eq!(v["Labels"], "tier=db");
    let (_, err) = e.code(1, &["ps", "--format", "{{.Nope}}"]);
    assert!(err.contains("Nope"), "{err}");
}

#[test]
fn inspect_shape_and_templates() {
    let e = Engine::new();
    e.ok(&[
        "create",
        "--name",
        "insp",
        "--label",
        "k=v",
        "-e",
        "A=1",
        "-w",
        "/tmp",
        "-m",
        "64m",
        "--restart",
        "on-failure:3",
        IMAGE,
        "sh",
        "-c",
        "true",
    ]);
    let v = e.inspect("insp");
    assert!(is_id(v["Id"].as_str().unwrap()));
    assert_eq!(v["Name"], "/insp");
    assert_eq!(v["Path"], "sh");
    assert_eq!(v["Args"], serde_json::json!(["-c", "true"]));
    assert_eq!(v["State"]["Status"], "created");
    assert_eq!(v["State"]["Running"], false);
    assert_eq!(v["State"]["StartedAt"], "0001-01-01T00:00:00Z");
    assert_eq!(v["Config"]["Image"], IMAGE);
    assert_eq!(v["Config"]["Labels"]["k"], "v");
    assert_eq!(v["Config"]["WorkingDir"], "/tmp");
    assert!(v["Config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x == "A=1"));
    assert_eq!(v["Config"]["Cmd"], serde_json::json!(["sh", "-c", "true"]));
    assert_eq!(v["HostConfig"]["Memory"], 64 << 20);
    assert_eq!(v["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(v["HostConfig"]["RestartPolicy"]["MaximumRetryCount"], 3);
    assert!(v["Image"].as_str().unwrap().starts_with("sha256:"));
    let sized = e.ok(&[
        "inspect",
        "-s",
        "--format",
        "{{.SizeRw}} {{.SizeRootFs}}",
        "insp",
    ]);
    let n: Vec<u64> = sized
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    assert!(n[1] > n[0], "{sized}");

    let f = |t: &str| e.ok(&["inspect", "--format", t, "insp"]);
    assert_eq!(f("{{.State.Status}}"), "created\n");
    assert_eq!(f("{{json .Config.Cmd}}"), "[\"sh\",\"-c\",\"true\"]\n");
    assert_eq!(f("{{index .Config.Labels \"k\"}}"), "v\n");
    assert_eq!(
        f("{{.Name}}:{{.HostConfig.RestartPolicy.Name}}"),
        "/insp:on-failure\n"
    );
    let (_, err) = e.code(1, &["inspect", "--format", "{{.State.Nope}}", "insp"]);
    assert!(err.contains("Nope"), "{err}");
    // Containers first, then images; several at once make one array.
    let both: serde_json::Value = serde_json::from_str(&e.ok(&["inspect", "insp", IMAGE])).unwrap();
    assert_eq!(both.as_array().unwrap().len(), 2);
    assert!(both[1]["RepoTags"][0].as_str().unwrap().contains("busybox"));
    assert_eq!(
        e.ok(&["inspect", "--type", "image", "--format", "{{.Id}}", IMAGE])
            .len(),
        72
    );
    let (_, err) = e.code(1, &["inspect", "nothing-here"]);
    assert!(err.contains("No such object: nothing-here"), "{err}");
}

#[test]
fn rename_and_names() {
    let e = Engine::new();
    let id = e.ok(&["create", "--name", "old", IMAGE, "true"]);
    let id = id.trim();
    e.ok(&["create", "--name", "taken", IMAGE, "true"]);
    e.ok(&["rename", "old", "new"]);
    assert_eq!(e.ok(&["inspect", "--format", "{{.Name}}", "new"]), "/new\n");
    assert_eq!(e.ok(&["inspect", "--format", "{{.Name}}", id]), "/new\n");
    e.code(1, &["inspect", "--type", "container", "old"]);
    let (_, err) = e.code(1, &["rename", "new", "taken"]);
    assert!(err.contains("is already in use"), "{err}");
    assert_eq!(e.ok(&["inspect", "--format", "{{.Name}}", id]), "/new\n");
    let (_, err) = e.code(125, &["create", "--name", "taken", IMAGE, "true"]);
    assert!(
        err.contains(r#"Conflict. The container name "/taken" is already in use by container"#),
        "{err}"
    );
    e.code(1, &["rename", "new", "bad name"]);
    // A unique prefix of the ID works as a reference.
    assert_eq!(
        e.ok(&["inspect", "--format", "{{.Name}}", &id[..8]]),
        "/new\n"
    );
    // Generated names are docker-style.
    let gen = e.ok(&["create", IMAGE, "true"]);
    let n = e.ok(&["inspect", "--format", "{{.Name}}", gen.trim()]);
    assert!(n.starts_with('/') && n.contains('_'), "{n}");
}

#[test]
fn concurrent_creates_one_name_one_winner() {
    let e = Engine::new();
    let kids: Vec<_> = (0..6)
        .map(|_| {
            e.cmd(&["create", "--name", "race", IMAGE, "true"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let codes: Vec<i32> = kids
        .into_iter()
        .map(|k| k.wait_with_output().unwrap().status.code().unwrap())
        .collect();
    assert_eq!(codes.iter().filter(|c| **c == 0).count(), 1, "{codes:?}");
    assert!(codes.iter().all(|c| *c == 0 || *c == 125), "{codes:?}");
    assert_eq!(e.ok(&["ps", "-aq"]).lines().count(), 1);
    // Losers left nothing behind.
    assert_eq!(
        std::fs::read_dir(e.root().join("engine/containers"))
            .unwrap()
            .count(),
        1
    );
    assert_eq!(
        std::fs::read_dir(e.root().join("containers"))
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn prune_removes_stopped_only() {
    let e = Engine::new();
    e.ok(&["create", "--name", "c1", IMAGE, "true"]);
    e.ok(&["run", "--name", "c2", IMAGE, "true"]);
    e.ok(&["run", "-d", "--name", "c3", IMAGE, "sh", "-c", LOOP_TERM]);
    wait_status(&e, "c3", "running");
    let out = e.ok(&["container", "prune", "-f"]);
    assert!(out.starts_with("Deleted Containers:\n"), "{out}");
    assert_eq!(out.lines().filter(|l| is_id(l)).count(), 2, "{out}");
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert_eq!(
        e.ok(&["container", "ls", "-a", "--format", "{{.Names}}"]),
        "c3\n"
    );
}

fn state_json(e: &Engine, name: &str) -> serde_json::Value {
    let id = e.ok(&["inspect", "--format", "{{.Id}}", name]);
    let p = e
        .root()
        .join("engine/containers")
        .join(id.trim())
        .join("state.json");
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn ps_truth_after_monitor_is_killed() {
    let e = Engine::new();
    e.ok(&[
        "run", "-d", "--name", "orphan", IMAGE, "sh", "-c", LOOP_TERM,
    ]);
    wait_status(&e, "orphan", "running");
    let st = state_json(&e, "orphan");
    let monitor = st["monitorPid"].as_i64().unwrap();
    let pid = st["pid"].as_i64().unwrap();
    assert!(monitor > 0 && pid > 0);
    Command::new("kill")
        .args(["-9", &monitor.to_string()])
        .status()
        .unwrap();
    e.wait_for(5, "monitor gone", || {
        (!std::path::Path::new(&format!("/proc/{monitor}")).exists()
            || std::fs::read_to_string(format!("/proc/{monitor}/stat"))
                .is_ok_and(|s| s.contains(") Z")))
        .then_some(())
    });
    // The container lives on: ps still shows it running.
    let ps = e.ok(&["ps", "--format", "{{.Names}} {{.State}}"]);
    assert_eq!(ps, "orphan running\n");
    // Its init dies: ps -a says exited, and the record is corrected.
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    e.wait_for(5, "ps shows exited", || {
        let ps = e.ok(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]);
        (ps == "orphan exited\n").then_some(())
    });
    assert_eq!(state_json(&e, "orphan")["status"], "exited");
    assert_eq!(e.ok(&["ps", "-q"]), "");
    e.ok(&["rm", "orphan"]);
}

#[test]
fn stop_without_monitor_signals_the_container() {
    let e = Engine::new();
    // pid 1 without a handler ignores SIGTERM: stop must SIGKILL it after -t.
    e.ok(&["run", "-d", "--name", "lone", IMAGE, "sleep", "1000"]);
    wait_status(&e, "lone", "running");
    let st = state_json(&e, "lone");
    let monitor = st["monitorPid"].as_i64().unwrap();
    let pid = st["pid"].as_i64().unwrap();
    Command::new("kill")
        .args(["-9", &monitor.to_string()])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    e.ok(&["stop", "-t", "1", "lone"]);
    assert!(t.elapsed() >= Duration::from_millis(900));
    let alive =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z"));
    assert!(!alive, "container init {pid} still runs");
    assert_eq!(
        e.ok(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.ExitCode}}",
            "lone"
        ]),
        "exited 137\n"
    );
    e.ok(&["rm", "lone"]);
}

#[test]
fn interactive_tty_under_script() {
    let e = Engine::new();
    let berth = common::berth_exe().display().to_string();
    let cmd = format!(
        "{berth} --root {} run --rm -it {IMAGE} sh",
        e.root().display()
    );
    let mut c = Command::new("script");
    c.args(["-qec", &cmd, "/dev/null"])
        .env("BERTH_CGROUP_PARENT", &e.cgroup_parent)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut ch = c.spawn().expect("script (bsdutils)");
    let mut input = ch.stdin.take().unwrap();
    input.write_all(b"echo $((6*7)); tty; exit 9\n").unwrap();
    // Keep stdin open until the container is done, like a user at a terminal.
    let o = {
        let t = Instant::now();
        loop {
            if ch.try_wait().unwrap().is_some() || t.elapsed() > Duration::from_secs(15) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(input);
        ch.wait_with_output().unwrap()
    };
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("42"), "{out}");
    assert!(out.contains("/dev/pts/"), "a real pty: {out}");
    assert_eq!(o.status.code(), Some(9), "{out}");
}

#[test]
fn sigint_reaches_a_foreground_container() {
    let e = Engine::new();
    let mut ch = e
        .cmd(&[
            "run",
            "--name",
            "fg",
            IMAGE,
            "sh",
            "-c",
            "trap 'echo got INT; exit 5' INT; while :; do sleep 0.1; done",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_status(&e, "fg", "running");
    std::thread::sleep(Duration::from_millis(200));
    Command::new("kill")
        .args(["-INT", &ch.id().to_string()])
        .status()
        .unwrap();
    let t = Instant::now();
    while ch.try_wait().unwrap().is_none() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "berth run did not exit"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = ch.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(5));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "got INT\n");
}

/// Live monitors whose command line names container `id` (a zombie's cmdline is empty).
fn monitors_of(id: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|p| {
            p.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|p| std::fs::read(p.path().join("cmdline")).ok())
        .filter(|c| {
            let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
            args.first().is_some_and(|a| a.ends_with(b"berth-monitor"))
                && args.contains(&id.as_bytes())
        })
        .count()
}

#[test]
fn concurrent_starts_make_one_monitor() {
    let e = Engine::new();
    let id = e.ok(&["create", "--name", "once", IMAGE, "sh", "-c", LOOP_TERM]);
    let id = id.trim().to_string();
    let kids: Vec<_> = (0..4)
        .map(|_| {
            e.cmd(&["start", "once"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for k in kids {
        let o = k.wait_with_output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&o.stdout), "once\n");
    }
    assert_eq!(status(&e, "once"), "running");
    // One monitor and its keeper (the same binary).
    assert_eq!(monitors_of(&id), 2);
    e.ok(&["stop", "once"]);
    assert_eq!(e.ok(&["wait", "once"]), "0\n");
}

/// compose launches replicas as create (the rootfs mounted, then unmounted) and start,
/// many at once. An unmount once failed with EBUSY: the rootfs mount was shared, so it had
/// copies in containers' mount namespaces being set up, and umount checks every copy.
#[test]
fn concurrent_create_then_start_unmounts_cleanly() {
    let e = Engine::new();
    let n = 24;
    std::thread::scope(|s| {
        for i in 0..n {
            let e = &e;
            s.spawn(move || {
                let name = format!("cs{i}");
                e.ok(&["create", "--name", &name, IMAGE, "sleep", "1000"]);
                e.ok(&["start", &name]);
            });
        }
    });
    assert_eq!(e.ok(&["ps", "-q"]).lines().count(), n);
    std::thread::scope(|s| {
        for i in 0..n {
            let e = &e;
            s.spawn(move || e.ok(&["rm", "-f", &format!("cs{i}")]));
        }
    });
    let root = e.root().display().to_string();
    // The engine's own tmpfs (R/engine/run) stays mounted, as podman's runroot does.
    let run = format!("{root}/engine/run ");
    let left: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&root) && !l.contains(&run))
        .map(str::to_string)
        .collect();
    assert!(left.is_empty(), "mounts left: {left:?}");
}
