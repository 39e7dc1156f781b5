//! logs, exec, top, stats, port, cp, events, black-box. Run as root:
//! `cargo test -p berth --test engine_io`.

mod common;
use common::engine::*;
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

/// A container that runs until it gets SIGTERM (pid 1 has no default handlers).
const LOOP_TERM: &str = "trap 'exit 0' TERM; while :; do sleep 0.1; done";

fn run_d(e: &Engine, name: &str, script: &str) -> String {
    e.ok(&["run", "-d", "--name", name, IMAGE, "sh", "-c", script])
        .trim()
        .to_string()
}

fn state(e: &Engine, id: &str) -> serde_json::Value {
    let p = e.root().join(format!("engine/containers/{id}/state.json"));
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn logs_streams_tail_timestamps_since() {
    let e = Eng::new();
    e.code(
        0,
        &[
            "run",
            "--name",
            "lg",
            IMAGE,
            "sh",
            "-c",
            "echo one; echo two >&2; sleep 0.2; echo three",
        ],
    );
    let o = e.run(&["logs", "lg"]);
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout), "one\nthree\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "two\n");
    assert_eq!(e.ok(&["logs", "--tail", "1", "lg"]), "three\n");
    assert_eq!(e.ok(&["logs", "-n", "0", "lg"]), "");
    let ts = e.ok(&["logs", "-t", "lg"]);
    let first = ts.lines().next().unwrap();
    let (t, rest) = first.split_once(' ').unwrap();
    assert_eq!(rest, "one");
    assert!(t.ends_with('Z') && t.len() == 30, "{t}");
    // --since in the future: nothing; --until in the past: nothing; relative works.
    assert_eq!(e.ok(&["logs", "--since", "2099-01-01T00:00:00Z", "lg"]), "");
    assert_eq!(e.ok(&["logs", "--until", "1000000000", "lg"]), "");
    assert_eq!(e.ok(&["logs", "--since", "10m", "lg"]), "one\nthree\n");
    // -f on an exited container prints what is there and returns.
    assert_eq!(e.ok(&["logs", "-f", "lg"]), "one\nthree\n");
    let (_, err) = e.code(1, &["logs", "nope"]);
    assert!(err.contains("No such container: nope"), "{err}");
    e.code(1, &["logs", "--since", "yesterday", "lg"]);
}

#[test]
fn logs_follow_until_exit_and_survive_the_monitor() {
    let e = Eng::new();
    let id = run_d(&e, "fo", "for i in 1 2 3; do echo line$i; sleep 0.3; done");
    let o = e.cmd(&["logs", "-f", "fo"]).output().unwrap();
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout), "line1\nline2\nline3\n");

    // The monitor is SIGKILLed: the log is still there, and so it stays after the exit.
    let id2 = run_d(&e, "km", "echo before; sleep 1; echo after; sleep 30");
    e.wait_for(10, "the first line", || {
        e.ok(&["logs", "km"]).contains("before").then_some(())
    });
    let mon = state(&e, &id2)["monitorPid"].as_i64().unwrap();
    assert!(mon > 0);
    std::process::Command::new("kill")
        .args(["-9", &mon.to_string()])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(e.ok(&["logs", "km"]).starts_with("before\n"));
    e.ok(&["rm", "-f", "km"]);
    let _ = id;
}

#[test]
fn exec_codes_env_user_workdir() {
    let e = Eng::new();
    run_d(&e, "ex", LOOP_TERM);
    assert_eq!(e.ok(&["exec", "ex", "echo", "hi"]), "hi\n");
    e.code(7, &["exec", "ex", "sh", "-c", "exit 7"]);
    let o = e.run(&["exec", "ex", "sh", "-c", "echo out; echo err >&2"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n");
    e.code(127, &["exec", "ex", "nope-not-here"]);
    // A file that is not executable: 126 (runc words it "permission denied").
    e.ok(&[
        "run",
        "-d",
        "--runtime",
        "runc",
        "--name",
        "rc",
        IMAGE,
        "sh",
        "-c",
        LOOP_TERM,
    ]);
    e.code(126, &["exec", "rc", "/etc/passwd"]);
    assert_eq!(e.ok(&["exec", "rc", "echo", "via runc"]), "via runc\n");
    e.ok(&["rm", "-f", "rc"]);
    assert_eq!(e.ok(&["exec", "-u", "app", "ex", "id", "-u"]), "1000\n");
    assert_eq!(
        e.ok(&["exec", "-u", "app", "ex", "id", "-G"]),
        "1000 10 29\n"
    );
    assert_eq!(e.ok(&["exec", "-u", "1000:29", "ex", "id", "-g"]), "29\n");
    e.code(126, &["exec", "-u", "nobody-here", "ex", "true"]);
    assert_eq!(e.ok(&["exec", "-w", "/tmp", "ex", "pwd"]), "/tmp\n");
    assert_eq!(
        e.ok(&[
            "exec",
            "-e",
            "A=1",
            "-e",
            "PATH=/bin:/x",
            "ex",
            "sh",
            "-c",
            "echo $A $PATH"
        ]),
        "1 /bin:/x\n"
    );
    let envf = e.dir.path().join("env");
    std::fs::write(&envf, "# c\nB=2\n").unwrap();
    assert_eq!(
        e.ok(&[
            "exec",
            "--env-file",
            envf.to_str().unwrap(),
            "ex",
            "sh",
            "-c",
            "echo $B"
        ]),
        "2\n"
    );
    // --privileged: every capability (the container itself has docker's 14).
    let caps = |args: &[&str]| -> u64 {
        let out = e.ok(args);
        let l = out
            .lines()
            .find(|l| l.starts_with("CapEff:"))
            .unwrap()
            .to_string();
        u64::from_str_radix(l.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    let plain = caps(&["exec", "ex", "cat", "/proc/self/status"]);
    let all = caps(&["exec", "--privileged", "ex", "cat", "/proc/self/status"]);
    assert_eq!(plain.count_ones(), 14, "{plain:x}");
    // (All that the host lets this process have.)
    let own = std::fs::read_to_string("/proc/self/status").unwrap();
    let bnd = own
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim();
    assert_eq!(all, u64::from_str_radix(bnd, 16).unwrap(), "{all:x}");
    // stdin only with -i.
    let (_, err) = e.code(1, &["exec", "-it", "ex", "true"]);
    assert!(err.contains("the input device is not a TTY"), "{err}");
    let mut c = e.cmd(&["exec", "-i", "ex", "tr", "a-z", "A-Z"]);
    c.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut ch = c.spawn().unwrap();
    ch.stdin.take().unwrap().write_all(b"shout\n").unwrap();
    let o = ch.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "SHOUT\n");
    // -d: returns at once, the process runs on.
    e.code(
        0,
        &[
            "exec",
            "-d",
            "ex",
            "sh",
            "-c",
            "sleep 0.2; touch /tmp/detached",
        ],
    );
    e.wait_for(5, "the detached exec", || {
        e.run(&["exec", "ex", "test", "-f", "/tmp/detached"])
            .status
            .success()
            .then_some(())
    });
    // The event is recorded.
    let ev = std::fs::read_to_string(e.root().join("engine/events.jsonl")).unwrap();
    assert!(ev.contains("exec_start: echo hi"), "{ev}");
    // Not running / not there: docker's error, exit 1.
    e.ok(&["stop", "-t", "1", "ex"]);
    let (_, err) = e.code(1, &["exec", "ex", "true"]);
    assert!(err.contains("is not running"), "{err}");
    e.code(1, &["exec", "nope", "true"]);
}

#[test]
fn exec_tty_under_a_pty() {
    let e = Eng::new();
    run_d(&e, "tt", LOOP_TERM);
    // `script` gives the CLI a terminal; the process sees a tty of its own.
    let berth = common::berth_exe().display().to_string();
    let cmdline = format!(
        "stty rows 33 cols 77; {berth} --root {} exec -it tt sh -c 'tty; stty size; exit 3'",
        e.root().display()
    );
    let o = std::process::Command::new("script")
        .args(["-qec", &cmdline, "/dev/null"])
        .env("BERTH_CGROUP_PARENT", &e.cgroup_parent)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("/dev/pts/"), "{out}");
    // The pty got the CLI terminal's size.
    assert!(out.contains("33 77"), "{out}");
    assert_eq!(o.status.code(), Some(3), "{out}");
    // A container started with -t, exec'd into without one: plain pipes.
    e.ok(&[
        "run", "-d", "-t", "--name", "tty2", IMAGE, "sh", "-c", LOOP_TERM,
    ]);
    let o = e.run(&["exec", "tty2", "sh", "-c", "tty; echo plain"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "not a tty\nplain\n");
}

#[test]
fn top_lists_the_containers_processes() {
    let e = Eng::new();
    run_d(&e, "tp", "sleep 1000 & sleep 2000 & wait");
    let out = e.wait_for(10, "both sleeps", || {
        let o = e.ok(&["top", "tp"]);
        // (The shell's own command line names both sleeps too: wait for the processes.)
        let has = |c: &str| {
            o.lines()
                .any(|l| l.trim_end().ends_with(&format!(" {c}")) && !l.contains("sh -c"))
        };
        (has("sleep 1000") && has("sleep 2000")).then_some(o)
    });
    let header = out.lines().next().unwrap();
    for col in ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"] {
        assert!(header.split_whitespace().any(|h| h == col), "{header}");
    }
    // Nothing of the host's.
    assert!(!out.contains("cargo"), "{out}");
    assert_eq!(out.lines().count(), 4, "{out}");
    let o = e.ok(&["top", "tp", "-o", "pid,comm"]);
    assert!(o.starts_with("PID"), "{o}");
    e.ok(&["kill", "tp"]);
    e.wait_for(10, "top to refuse a stopped container", || {
        let o = e.run(&["top", "tp"]);
        (o.status.code() == Some(1)
            && String::from_utf8_lossy(&o.stderr).contains("is not running"))
        .then_some(())
    });
}

#[test]
fn stats_no_stream_and_json() {
    let e = Eng::new();
    e.ok(&[
        "run", "-d", "--name", "st", "-m", "64m", IMAGE, "sh", "-c", LOOP_TERM,
    ]);
    let out = e.ok(&["stats", "--no-stream", "st"]);
    let mut l = out.lines();
    let h = l.next().unwrap();
    for col in [
        "CONTAINER ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "NET I/O",
        "BLOCK I/O",
        "PIDS",
    ] {
        assert!(h.contains(col), "{h}");
    }
    let row = l.next().unwrap();
    assert!(row.contains(" st "), "{row}");
    assert!(row.contains("/ 64MiB"), "{row}");
    let j: serde_json::Value = serde_json::from_str(
        e.ok(&["stats", "--no-stream", "--format", "json", "st"])
            .trim(),
    )
    .unwrap();
    assert_eq!(j["Name"], "st");
    assert!(j["CPUPerc"].as_str().unwrap().ends_with('%'));
    assert!(j["MemUsage"].as_str().unwrap().ends_with("/ 64MiB"), "{j}");
    let pids: u32 = j["PIDs"].as_str().unwrap().parse().unwrap();
    assert!(pids >= 1, "{j}");
    assert_eq!(
        e.ok(&["stats", "--no-stream", "--format", "{{.Name}}", "st"]),
        "st\n"
    );
    e.ok(&["rm", "-f", "st"]);
}

#[test]
fn port_publishes_nothing() {
    let e = Eng::new();
    e.ok(&["create", "--name", "np", IMAGE, "true"]);
    assert_eq!(e.ok(&["port", "np"]), "");
    let (_, err) = e.code(1, &["port", "np", "80"]);
    assert!(
        err.contains("No public port '80/tcp' published for np"),
        "{err}"
    );
    e.code(1, &["port", "nope"]);
}

#[test]
fn events_since_filter_format() {
    let e = Eng::new();
    e.ok(&["run", "--name", "ev", IMAGE, "true"]);
    let out = e.ok(&[
        "events",
        "--since",
        "1m",
        "--until",
        "0s",
        "--filter",
        "container=ev",
    ]);
    assert!(
        out.lines()
            .any(|l| l.contains(" container create ") && l.contains("name=ev")),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.contains(" container start ")),
        "{out}"
    );
    let die = e.ok(&[
        "events",
        "--since",
        "1m",
        "--until",
        "0s",
        "--filter",
        "event=die",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(die.lines().next().unwrap()).unwrap();
    assert_eq!(v["Action"], "die");
    assert_eq!(v["Actor"]["Attributes"]["name"], "ev");
    assert_eq!(
        e.ok(&[
            "events",
            "--since",
            "1m",
            "--until",
            "0s",
            "--filter",
            "event=die",
            "--format",
            "{{.Actor.Attributes.name}}"
        ]),
        "ev\n"
    );
    // Following: a new event shows up, then the reader is stopped.
    // (--since from before the reader starts: a slow start cannot miss the event.)
    let since = format!(
        "{:.3}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    );
    let mut f = e
        .cmd(&["events", "--since", &since, "--filter", "event=create"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    e.ok(&["create", "--name", "later", IMAGE, "true"]);
    let mut out = f.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut b = [0u8; 4096];
        let n = std::io::Read::read(&mut out, &mut b).unwrap_or(0);
        let _ = tx.send(String::from_utf8_lossy(&b[..n]).to_string());
    });
    let line = rx.recv_timeout(Duration::from_secs(5));
    let _ = f.kill();
    let _ = f.wait();
    let line = line.expect("a followed event");
    assert!(
        line.contains("container create") && line.contains("name=later"),
        "{line}"
    );
    e.code(1, &["events", "--filter", "bogus=1", "--until", "0s"]);
}

/// BAD-13: cp resolves every container path inside the container's root, both ways, and
/// never runs anything in the container.
#[test]
fn cp_both_ways_stays_inside_the_root() {
    let e = Eng::new();
    let host = e.dir.path().join("host");
    std::fs::create_dir_all(&host).unwrap();
    // A canary beside the storage root the container tries to reach.
    let canary = e.dir.path().join("canary");
    std::fs::write(&canary, b"host secret").unwrap();
    let script = format!(
        "mkdir -p {cdir}; ln -s {c} /abs; ln -s ../../../../../../../../{rel} /rel; ln -s /../../.. /up; \
         ln -s /etc/shadow /shadow; echo container-shadow > /etc/shadow; \
         mkdir -p /data/sub; echo A > /data/a; echo B > /data/sub/b; chmod 640 /data/a; \
         touch -d '2020-01-02 03:04:05' /data/a; touch /ready; {LOOP_TERM}",
        c = canary.display(),
        cdir = e.dir.path().display(),
        rel = canary.display().to_string().trim_start_matches('/'),
    );
    run_d(&e, "cc", &script);
    e.wait_for(10, "the setup", || {
        e.run(&["exec", "cc", "test", "-f", "/ready"])
            .status
            .success()
            .then_some(())
    });
    // Out: a file, a directory, a symlink (as a link, or followed with -L inside the root).
    let h = |p: &str| host.join(p).to_str().unwrap().to_string();
    e.ok(&["cp", "cc:/data/a", &h("a")]);
    assert_eq!(std::fs::read(host.join("a")).unwrap(), b"A\n");
    let m = std::fs::metadata(host.join("a")).unwrap();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!(m.permissions().mode() & 0o777, 0o640);
    assert_eq!(m.mtime(), 1_577_934_245);
    e.ok(&["cp", "cc:/data", &h("data")]);
    assert_eq!(std::fs::read(host.join("data/sub/b")).unwrap(), b"B\n");
    e.ok(&["cp", "cc:/shadow", &h("shadow-link")]);
    assert_eq!(
        std::fs::read_link(host.join("shadow-link"))
            .unwrap()
            .to_str(),
        Some("/etc/shadow")
    );
    e.ok(&["cp", "-L", "cc:/shadow", &h("shadow")]);
    assert_eq!(
        std::fs::read(host.join("shadow")).unwrap(),
        b"container-shadow\n"
    );
    e.code(1, &["cp", "-L", "cc:/abs", &h("abs")]);
    assert!(!host.join("abs").exists());
    e.code(1, &["cp", "-L", "cc:/rel", &h("rel")]);
    e.ok(&["cp", "cc:/up/etc/shadow", &h("up-shadow")]);
    assert_eq!(
        std::fs::read(host.join("up-shadow")).unwrap(),
        b"container-shadow\n"
    );
    // In: through the links, never onto the host's files.
    let payload = host.join("payload");
    std::fs::write(&payload, b"pwned").unwrap();
    let p = payload.to_str().unwrap();
    e.ok(&["cp", p, "cc:/abs"]);
    e.ok(&["cp", p, "cc:/rel"]);
    e.ok(&["cp", p, "cc:/up/dropped"]);
    e.ok(&["cp", p, "cc:/shadow"]);
    assert_eq!(std::fs::read(&canary).unwrap(), b"host secret");
    assert!(!std::path::Path::new("/dropped").exists());
    assert_eq!(e.ok(&["exec", "cc", "cat", "/dropped"]), "pwned");
    assert_eq!(e.ok(&["exec", "cc", "cat", "/etc/shadow"]), "pwned");
    assert_eq!(
        e.ok(&["exec", "cc", "cat", &canary.display().to_string()]),
        "pwned"
    );
    // Owned by root in the container (docker's rule), by the source's ids with -a.
    std::os::unix::fs::chown(&payload, Some(1000), Some(1000)).unwrap();
    e.ok(&["cp", p, "cc:/tmp/rootowned"]);
    e.ok(&["cp", "-a", p, "cc:/tmp/kept"]);
    assert_eq!(
        e.ok(&["exec", "cc", "stat", "-c", "%u:%g", "/tmp/rootowned"]),
        "0:0\n"
    );
    assert_eq!(
        e.ok(&["exec", "cc", "stat", "-c", "%u:%g", "/tmp/kept"]),
        "1000:1000\n"
    );
    // A directory in, then only its contents with "/.".
    e.ok(&["cp", &h("data"), "cc:/tmp"]);
    assert_eq!(e.ok(&["exec", "cc", "cat", "/tmp/data/sub/b"]), "B\n");
    e.ok(&["exec", "cc", "mkdir", "/contents"]);
    e.ok(&["cp", &format!("{}/.", h("data")), "cc:/contents"]);
    assert_eq!(e.ok(&["exec", "cc", "cat", "/contents/a"]), "A\n");
    // docker's errors.
    let (_, err) = e.code(1, &["cp", "cc:/nope", &h("x")]);
    assert!(err.contains("could not find the file /nope"), "{err}");
    e.code(1, &["cp", &h("data"), "cc:/data/a"]);
    e.code(1, &["cp", p, "cc:/no/such/dir/x"]);
    e.code(1, &["cp", p, &h("y")]);
    e.code(1, &["cp", "cc:/a", "cc:/b"]);
    // A stopped container's rootfs is mounted for the copy and unmounted after.
    e.ok(&["stop", "-t", "1", "cc"]);
    e.ok(&["cp", "cc:/dropped", &h("after-stop")]);
    assert_eq!(std::fs::read(host.join("after-stop")).unwrap(), b"pwned");
    e.ok(&["cp", p, "cc:/while-stopped"]);
    let id = e.ok(&["inspect", "--format", "{{.Id}}", "cc"]);
    let merged = e.root().join(format!("containers/{}/merged", id.trim()));
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(merged.to_str().unwrap()), "left mounted");
    e.ok(&["start", "cc"]);
    assert_eq!(e.ok(&["exec", "cc", "cat", "/while-stopped"]), "pwned");
}

fn raw_entry(
    b: &mut tar::Builder<Vec<u8>>,
    name: &[u8],
    kind: tar::EntryType,
    link: &[u8],
    data: &[u8],
) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    let g = h.as_gnu_mut().unwrap();
    g.name[..name.len()].copy_from_slice(name);
    g.linkname[..link.len()].copy_from_slice(link);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn cp_stdin(e: &Engine, tar: &[u8], dest: &str) -> std::process::Output {
    let mut c = e.cmd(&["cp", "-", dest]);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut ch = c.spawn().unwrap();
    ch.stdin.take().unwrap().write_all(tar).unwrap();
    ch.wait_with_output().unwrap()
}

/// `cp -` both ways; an archive entry with `..`, an absolute name, or a path through a
/// symlink it planted is refused (CVE-2026-17106, BAD-13).
#[test]
fn cp_tar_streams_refuse_entries_leaving_the_destination() {
    let e = Eng::new();
    let canary = e.dir.path().join("canary");
    std::fs::write(&canary, b"host secret").unwrap();
    run_d(
        &e,
        "ts",
        &format!("mkdir -p /in/d; echo hi > /in/d/f; {LOOP_TERM}"),
    );
    e.wait_for(10, "the setup", || {
        e.run(&["exec", "ts", "test", "-f", "/in/d/f"])
            .status
            .success()
            .then_some(())
    });
    // Out as a tar stream, back in somewhere else.
    let o = e.run(&["cp", "ts:/in/d", "-"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let names: Vec<String> = tar::Archive::new(&o.stdout[..])
        .entries()
        .unwrap()
        .map(|x| x.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(names, ["d", "d/f"]);
    e.ok(&["exec", "ts", "mkdir", "/copy"]);
    let r = cp_stdin(&e, &o.stdout, "ts:/copy");
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(e.ok(&["exec", "ts", "cat", "/copy/d/f"]), "hi\n");
    // Malicious archives.
    let rel = format!("../../../../../../../../..{}", canary.display());
    let cases: Vec<(Vec<u8>, tar::EntryType, Vec<u8>)> = vec![
        (rel.clone().into_bytes(), tar::EntryType::Regular, vec![]),
        (
            canary.display().to_string().into_bytes(),
            tar::EntryType::Regular,
            vec![],
        ),
        (
            b"hl".to_vec(),
            tar::EntryType::Link,
            rel.clone().into_bytes(),
        ),
    ];
    for (name, kind, link) in cases {
        let mut b = tar::Builder::new(Vec::new());
        raw_entry(&mut b, &name, kind, &link, b"pwned");
        let r = cp_stdin(&e, &b.into_inner().unwrap(), "ts:/copy");
        assert_eq!(r.status.code(), Some(1));
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(err.contains("refusing archive entry"), "{err}");
    }
    let mut b = tar::Builder::new(Vec::new());
    raw_entry(
        &mut b,
        b"esc",
        tar::EntryType::Symlink,
        e.dir.path().to_str().unwrap().as_bytes(),
        b"",
    );
    raw_entry(
        &mut b,
        b"esc/canary",
        tar::EntryType::Regular,
        b"",
        b"pwned",
    );
    let r = cp_stdin(&e, &b.into_inner().unwrap(), "ts:/copy");
    assert_eq!(r.status.code(), Some(1));
    assert_eq!(std::fs::read(&canary).unwrap(), b"host secret");
}

/// Volumes and bind mounts are not in the rootfs: cp goes to their own directories.
#[test]
fn cp_into_volumes_and_binds() {
    let e = Eng::new();
    let bind = e.dir.path().join("bind");
    let robind = e.dir.path().join("robind");
    std::fs::create_dir_all(&bind).unwrap();
    std::fs::create_dir_all(&robind).unwrap();
    let host = e.dir.path().join("f");
    std::fs::write(&host, b"data").unwrap();
    let (b, rb, f) = (
        format!("{}:/bind", bind.display()),
        format!("{}:/ro:ro", robind.display()),
        host.to_str().unwrap(),
    );
    e.ok(&[
        "run",
        "-d",
        "--name",
        "vm",
        "-v",
        "named:/vol",
        "-v",
        &b,
        "-v",
        &rb,
        IMAGE,
        "sh",
        "-c",
        LOOP_TERM,
    ]);
    e.ok(&["cp", f, "vm:/vol/in-volume"]);
    e.ok(&["cp", f, "vm:/bind/"]);
    assert_eq!(e.ok(&["exec", "vm", "cat", "/vol/in-volume"]), "data");
    assert_eq!(e.ok(&["exec", "vm", "cat", "/bind/f"]), "data");
    assert_eq!(std::fs::read(bind.join("f")).unwrap(), b"data");
    let (_, err) = e.code(1, &["cp", f, "vm:/ro/x"]);
    assert!(err.contains("read-only"), "{err}");
    // A --read-only container: its rootfs refuses, its volumes do not.
    e.ok(&[
        "create",
        "--name",
        "rofs",
        "--read-only",
        "-v",
        "rv:/rv",
        IMAGE,
        "true",
    ]);
    let (_, err) = e.code(1, &["cp", f, "rofs:/x"]);
    assert!(
        err.contains("container rootfs is marked read-only"),
        "{err}"
    );
    e.ok(&["cp", f, "rofs:/rv/x"]);
    e.ok(&["exec", "vm", "sh", "-c", "echo made > /vol/made"]);
    let out = e.dir.path().join("made");
    e.ok(&["cp", "vm:/vol/made", out.to_str().unwrap()]);
    assert_eq!(std::fs::read(&out).unwrap(), b"made\n");
}
