//! Regression tests for the engine hardening issue (attack run): exec's stdio, creations
//! cut short by signals, run/rm races, killed monitors, corrupt records. Run as root:
//! `cargo nextest run -p berth --test engine_hardening`.
//! The fault tests repeat their fault many times; `BERTH_FAULT_ITERS` scales them.

mod common;
use common::engine::*;
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn iters(default: usize) -> usize {
    std::env::var("BERTH_FAULT_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Mount points under `root` (canonical path prefix), but the engine's own tmpfs
/// (R/engine/run), which stays mounted as podman's runroot does.
fn mounts_under(root: &std::path::Path) -> Vec<String> {
    let root = std::fs::canonicalize(root).unwrap();
    let run = root.join("engine/run").to_string_lossy().to_string();
    let root = root.to_string_lossy().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m.starts_with(&root) && *m != run)
        .collect()
}

// ---- item 1: exec's stdio ----------------------------------------------------------------

/// `exec` without -t used to hand the CLI's own stdin/stdout/stderr to the process: a
/// process left behind kept them, read the host terminal and truncated the file `exec`'s
/// output was appended to. Now it gets pipes the CLI copies.
#[test]
fn exec_without_tty_gives_pipes_not_the_callers_fds() {
    let e = Eng::new();
    e.ok(&["run", "-d", "--name", "ex", IMAGE, "sleep", "1000"]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.txt");
    let input = dir.path().join("in.txt");
    std::fs::write(&out, "precious host data\n").unwrap();
    std::fs::write(&input, "host input\n").unwrap();
    let append = std::fs::OpenOptions::new().append(true).open(&out).unwrap();
    let errf = std::fs::File::create(dir.path().join("err.txt")).unwrap();
    // The fds the process sees, and an attacker left behind that tries to reopen them.
    // The subshell keeps the exec's fds 0 and 1 after the exec returns.
    let script = "for f in 0 1 2; do readlink /proc/self/fd/$f; done; \
        ( sleep 1; timeout 2 cat /proc/self/fd/0 > /tmp/stolen 2>&1; \
          timeout 2 sh -c ': > /proc/self/fd/1' 2>/dev/null ) & \
        echo left-behind";
    let st = e
        .cmd(&["exec", "-i", "ex", "sh", "-c", script])
        .stdin(std::fs::File::open(&input).unwrap())
        .stdout(append)
        .stderr(errf)
        .status()
        .unwrap();
    assert!(st.success());
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.starts_with("precious host data\n"), "{text}");
    let links: Vec<&str> = text.lines().skip(1).take(3).collect();
    for l in &links {
        assert!(
            l.starts_with("pipe:") || *l == "/dev/null",
            "the process saw a host fd: {links:?}"
        );
    }
    assert!(text.contains("left-behind"), "{text}");
    // Give the left-behind process time to try.
    std::thread::sleep(Duration::from_millis(3500));
    let after = std::fs::read_to_string(&out).unwrap();
    assert_eq!(after, text, "the host file was changed after exec returned");
    let stolen = e.run(&["exec", "ex", "cat", "/tmp/stolen"]);
    let stolen = String::from_utf8_lossy(&stolen.stdout);
    assert!(
        !stolen.contains("host input"),
        "host stdin was read: {stolen}"
    );
}

/// The same check for `run` (attached) and `start -a`: the process's stdio are pipes
/// the monitor holds.
#[test]
fn run_and_start_attached_give_pipes() {
    let e = Eng::new();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.txt");
    let f = std::fs::File::create(&out).unwrap();
    let st = e
        .cmd(&[
            "run",
            "--rm",
            "-i",
            IMAGE,
            "sh",
            "-c",
            "for f in 0 1 2; do readlink /proc/self/fd/$f; done",
        ])
        .stdin(std::fs::File::open("/etc/hostname").unwrap())
        .stdout(f)
        .status()
        .unwrap();
    assert!(st.success());
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.lines().all(|l| l.starts_with("pipe:")), "{text}");
    e.ok(&[
        "create",
        "--name",
        "sa",
        IMAGE,
        "sh",
        "-c",
        "readlink /proc/self/fd/1; readlink /proc/self/fd/2",
    ]);
    let o = e.ok(&["start", "-a", "sa"]);
    assert!(o.lines().all(|l| l.starts_with("pipe:")), "{o}");
}

/// exec -i still forwards stdin to EOF, and exit status and stderr behave as before.
#[test]
fn exec_pipes_keep_stdin_eof_status_and_stderr() {
    let e = Eng::new();
    e.ok(&["run", "-d", "--name", "ex", IMAGE, "sleep", "1000"]);
    let mut c = e
        .cmd(&[
            "exec",
            "-i",
            "ex",
            "sh",
            "-c",
            "tr a-z A-Z; echo oops >&2; exit 5",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut i = c.stdin.take().unwrap();
    // More than a pipe's buffer, so the copy must really stream.
    let big = "abc\n".repeat(50_000);
    let writer = std::thread::spawn(move || {
        i.write_all(big.as_bytes()).unwrap();
    });
    let o = c.wait_with_output().unwrap();
    writer.join().unwrap();
    assert_eq!(o.status.code(), Some(5));
    assert_eq!(o.stdout.len(), 200_000);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("ABC\nABC\n"));
    assert_eq!(String::from_utf8_lossy(&o.stderr), "oops\n");
    // A command that does not exist: the runtime's error reaches our stderr, 127.
    let (_, err) = e.code(127, &["exec", "ex", "no-such-cmd"]);
    assert!(err.contains("no-such-cmd"), "{err}");
}

// ---- helpers for the fault tests -----------------------------------------------------------

/// A small deterministic PRNG (xorshift), seeded from the clock; the seed is printed so a
/// failing sequence can be replayed with BERTH_FAULT_SEED.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("BERTH_FAULT_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("BERTH_FAULT_SEED={seed}");
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn send(pid: u32, sig: &str) {
    let _ = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

fn state_of(e: &Engine, name: &str) -> serde_json::Value {
    let id = e.ok(&["inspect", "--format", "{{.Id}}", name]);
    let p = e
        .root()
        .join("engine/containers")
        .join(id.trim())
        .join("state.json");
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z"))
}

/// Dot-named trees (creations and removals in progress) under the root.
/// The dot-named trees left under the storage root. A monitor that removes its container
/// (`run --rm`, `rm -f`) deletes them after its reply: they may take a moment to go.
fn trash(e: &Engine) -> Vec<String> {
    let t = Instant::now();
    loop {
        let v = trash_now(e);
        if v.is_empty() || t.elapsed() > Duration::from_secs(10) {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn trash_now(e: &Engine) -> Vec<String> {
    let mut v = Vec::new();
    for d in [
        e.root().join("engine/containers"),
        e.root().join("containers"),
    ] {
        for x in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let n = x.file_name().to_string_lossy().to_string();
            if n.starts_with('.') {
                v.push(n);
            }
        }
    }
    v
}

/// Container IDs whose cgroup (under the test's parent) holds processes.
fn cgroups_with_processes(e: &Engine) -> Vec<String> {
    let mut v = Vec::new();
    let base =
        std::path::Path::new("/sys/fs/cgroup/pids").join(e.cgroup_parent.trim_start_matches('/'));
    for c in std::fs::read_dir(&base).into_iter().flatten().flatten() {
        let procs = std::fs::read_to_string(c.path().join("cgroup.procs")).unwrap_or_default();
        if !procs.trim().is_empty() {
            v.push(c.file_name().to_string_lossy().to_string());
        }
    }
    v
}

// ---- item 2: a create or run cut short by a signal -----------------------------------------

/// `create`/`run -d` killed (SIGINT, SIGTERM or SIGKILL) at random points used to leave
/// ghosts: a name in use forever, a directory no command could remove, the overlay
/// mounted and the image leased. Now every half-made container is swept.
#[test]
fn create_interrupted_by_signals_leaves_no_ghost() {
    let e = Eng::new();
    let mut rng = Rng::new();
    let n = iters(200);
    let t0 = Instant::now();
    for i in 0..n {
        let name = format!("g{}", i % 20);
        let verb: &[&str] = if rng.below(3) == 0 {
            &["run", "-d"]
        } else {
            &["create"]
        };
        let mut args: Vec<&str> = verb.to_vec();
        args.extend(["--name", &name, IMAGE, "sleep", "1000"]);
        let mut c = e
            .cmd(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(rng.below(25_000)));
        let sig = ["-INT", "-TERM", "-KILL"][rng.below(3) as usize];
        send(c.id(), sig);
        let _ = c.wait();
        // Every fifth round, the name is taken back at once (the next create finds the
        // ghost); otherwise it waits for the final check.
        if i % 5 == 4 {
            let o = e.run(&["rm", "-f", &name]);
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                o.status.success() || err.contains("No such container"),
                "rm -f {name}: {err}"
            );
        }
    }
    eprintln!("{n} interrupted creates in {:?}", t0.elapsed());
    // Every name can be removed, then created again.
    for k in 0..20 {
        let name = format!("g{k}");
        let o = e.run(&["rm", "-f", &name]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            o.status.success() || err.contains("No such container"),
            "rm -f {name}: {err}"
        );
        e.ok(&["create", "--name", &name, IMAGE, "true"]);
    }
    let all = e.ok(&[
        "ps",
        "-a",
        "--format",
        "{{.ID}} {{.Names}} {{.State}} {{.Status}}",
    ]);
    assert_eq!(all.lines().count(), 20, "{all}");
    for k in 0..20 {
        e.ok(&["rm", "-f", &format!("g{k}")]);
    }
    // Nothing holds the image, nothing is mounted, no tree is left.
    e.ok(&["rmi", IMAGE]);
    assert_eq!(mounts_under(e.root()), Vec::<String>::new());
    assert_eq!(trash(&e), Vec::<String>::new());
    assert_eq!(e.ok(&["ps", "-aq"]), "");
    let leases: Vec<String> = std::fs::read_dir(e.root().join("leases"))
        .map(|d| {
            d.flatten()
                .map(|x| x.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(leases, Vec::<String>::new());
}

// ---- item 3: run -d racing rm -f -------------------------------------------------------------

/// Workers doing random `run -d --name mN` and `rm -f mN`: a start that slipped in between
/// a removal's mark and its end used to remount the rootfs and spawn a monitor for a
/// container whose records were then deleted (leaked mounts, unknown running containers).
/// Removal now holds the container's lock to the end.
#[test]
fn run_rm_race_leaks_no_mount_and_no_unknown_container() {
    let e = Eng::new();
    let secs: u64 = std::env::var("BERTH_RACE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let ops = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for w in 0..10u64 {
            let e = &e;
            let ops = &ops;
            s.spawn(move || {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((w + 1) * 0x1000_0001));
                while Instant::now() < deadline {
                    let name = format!("m{}", rng.below(4));
                    let args: Vec<&str> = if rng.below(2) == 0 {
                        vec!["run", "-d", "--name", &name, IMAGE, "sleep", "1000"]
                    } else {
                        vec!["rm", "-f", &name]
                    };
                    let _ = e.run(&args);
                    ops.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    eprintln!(
        "{} operations in {secs} s",
        ops.load(std::sync::atomic::Ordering::Relaxed)
    );
    // Every process in the test's cgroups belongs to a container the engine lists.
    let known = e.ok(&["ps", "-aq", "--no-trunc"]);
    for id in cgroups_with_processes(&e) {
        assert!(
            known.contains(&id),
            "a running container the engine does not know: {id}"
        );
    }
    for k in 0..4 {
        let name = format!("m{k}");
        let o = e.run(&["rm", "-f", &name]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            o.status.success() || err.contains("No such container"),
            "rm -f {name}: {err}"
        );
    }
    assert_eq!(e.ok(&["ps", "-aq"]), "");
    assert_eq!(mounts_under(e.root()), Vec::<String>::new());
    assert_eq!(trash(&e), Vec::<String>::new());
    assert_eq!(cgroups_with_processes(&e), Vec::<String>::new());
}

// ---- item 4: a killed monitor ----------------------------------------------------------------

/// The monitor SIGKILLed: the container's later death used to be recorded as 255 and
/// `attach` said "stopped container". Its keeper now starts a new monitor, which records
/// the real status (137 for SIGKILL); attach says why it cannot attach.
#[test]
fn monitor_killed_real_exit_status_and_clear_attach_error() {
    let e = Eng::new();
    e.ok(&["run", "-d", "--name", "mk", IMAGE, "sleep", "1000"]);
    let st = state_of(&e, "mk");
    let (mon, pid) = (
        st["monitorPid"].as_i64().unwrap(),
        st["pid"].as_i64().unwrap(),
    );
    assert!(st["keeperPid"].as_i64().unwrap() > 0);
    send(mon as u32, "-KILL");
    e.wait_for(5, "a new monitor", || {
        let n = state_of(&e, "mk")["monitorPid"].as_i64().unwrap();
        (n != mon && alive(n)).then_some(())
    });
    let (_, err) = e.code(1, &["attach", "mk"]);
    assert!(err.contains("monitor was killed"), "{err}");
    assert!(!err.contains("stopped container"), "{err}");
    // stop, wait and ps keep working through the new monitor.
    assert_eq!(
        e.ok(&["ps", "--format", "{{.Names}} {{.State}}"]),
        "mk running\n"
    );
    send(pid as u32, "-KILL");
    assert_eq!(e.ok(&["wait", "mk"]), "137\n");
    assert_eq!(
        e.ok(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.ExitCode}}",
            "mk"
        ]),
        "exited 137\n"
    );

    // Monitor and keeper both killed: nobody holds the output; attach says so, stop works.
    e.ok(&["run", "-d", "--name", "mk2", IMAGE, "sleep", "1000"]);
    let st = state_of(&e, "mk2");
    send(st["keeperPid"].as_i64().unwrap() as u32, "-KILL");
    send(st["monitorPid"].as_i64().unwrap() as u32, "-KILL");
    std::thread::sleep(Duration::from_millis(200));
    let (_, err) = e.code(1, &["attach", "mk2"]);
    assert!(err.contains("its monitor is gone"), "{err}");
    e.ok(&["stop", "-t", "0", "mk2"]);
    assert_eq!(
        e.ok(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.ExitCode}}",
            "mk2"
        ]),
        "exited 137\n"
    );
}

/// A killed monitor does not end the restart policy: the adopted container is restarted
/// when it dies.
#[test]
fn monitor_killed_restart_policy_goes_on() {
    let e = Eng::new();
    e.ok(&[
        "run",
        "-d",
        "--restart",
        "always",
        "--name",
        "ra",
        IMAGE,
        "sleep",
        "1000",
    ]);
    let st = state_of(&e, "ra");
    send(st["monitorPid"].as_i64().unwrap() as u32, "-KILL");
    e.wait_for(5, "a new monitor", || {
        let n = state_of(&e, "ra")["monitorPid"].as_i64().unwrap();
        (n != st["monitorPid"].as_i64().unwrap() && alive(n)).then_some(())
    });
    send(st["pid"].as_i64().unwrap() as u32, "-KILL");
    e.wait_for(10, "the restart", || {
        let n = state_of(&e, "ra");
        (n["status"] == "running"
            && n["restartCount"] == 1
            && n["pid"] != st["pid"]
            && alive(n["pid"].as_i64().unwrap()))
        .then_some(())
    });
    // The new run is the monitor's own child again: its output is attached and logged.
    e.ok(&["rm", "-f", "ra"]);
}

/// Killing the monitor at random moments of a container's life, many times: every death
/// is recorded with its real status, and nothing is left after `rm -f`.
#[test]
fn monitor_killed_at_random_points_loses_no_exit_status() {
    let e = Eng::new();
    let mut rng = Rng::new();
    let n = iters(100);
    for i in 0..n {
        let name = format!("r{i}");
        e.ok(&["run", "-d", "--name", &name, IMAGE, "sleep", "1000"]);
        let st = state_of(&e, &name);
        std::thread::sleep(Duration::from_micros(rng.below(20_000)));
        send(st["monitorPid"].as_i64().unwrap() as u32, "-KILL");
        std::thread::sleep(Duration::from_micros(rng.below(20_000)));
        send(st["pid"].as_i64().unwrap() as u32, "-KILL");
        let code = e.ok(&["wait", &name]);
        assert_eq!(code, "137\n", "round {i}");
        e.ok(&["rm", "-f", &name]);
    }
    assert_eq!(mounts_under(e.root()), Vec::<String>::new());
    assert_eq!(trash(&e), Vec::<String>::new());
}

// ---- item 5: corrupt records -----------------------------------------------------------------

fn container_file(e: &Engine, name: &str, file: &str) -> std::path::PathBuf {
    let id = e.ok(&["inspect", "--format", "{{.Id}}", name]);
    e.root()
        .join("engine/containers")
        .join(id.trim())
        .join(file)
}

/// A garbage state.json used to hide a running container from `ps -a` and make `rm -f`
/// fail with a decode error; an empty one showed it as created, and `start` then failed
/// with a bogus "executable file not found" (exit 127).
#[test]
fn corrupt_state_is_listed_inspected_and_removed_by_rm_f() {
    let e = Eng::new();
    e.ok(&["run", "-d", "--name", "cs", IMAGE, "sleep", "1000"]);
    let id = e
        .ok(&["inspect", "--format", "{{.Id}}", "cs"])
        .trim()
        .to_string();
    let pid = state_of(&e, "cs")["pid"].as_i64().unwrap();
    let state = container_file(&e, "cs", "state.json");
    std::fs::write(&state, b"\x00garbage{").unwrap();
    let ps = e.ok(&["ps", "-a", "--format", "{{.Names}}|{{.State}}|{{.Status}}"]);
    assert!(ps.starts_with("cs|unknown|Unknown ("), "{ps}");
    assert!(ps.contains("state.json"), "{ps}");
    // Listed without -a too: it may well run.
    assert!(e.ok(&["ps", "--format", "{{.Names}}"]).contains("cs"));
    let err = e.ok(&[
        "inspect",
        "--format",
        "{{.State.Status}}|{{.State.Error}}",
        "cs",
    ]);
    assert!(err.starts_with("unknown|"), "{err}");
    assert!(err.contains("state.json"), "{err}");
    let (_, rmerr) = e.code(1, &["rm", "cs"]);
    assert!(rmerr.contains("rm -f"), "{rmerr}");
    e.ok(&["rm", "-f", "cs"]);
    e.wait_for(5, "the container's end", || (!alive(pid)).then_some(()));
    assert_eq!(e.ok(&["ps", "-aq"]), "");
    assert!(!e.root().join("engine/containers").join(&id).exists());

    // An empty state.json while it runs: unknown, start refuses it, rm -f removes it.
    e.ok(&["run", "-d", "--name", "ce", IMAGE, "sleep", "1000"]);
    let pid = state_of(&e, "ce")["pid"].as_i64().unwrap();
    std::fs::write(container_file(&e, "ce", "state.json"), b"").unwrap();
    let ps = e.ok(&["ps", "-a", "--format", "{{.Names}}|{{.State}}|{{.Status}}"]);
    assert!(ps.starts_with("ce|unknown|Unknown ("), "{ps}");
    assert!(ps.contains("processes"), "{ps}");
    let (_, err) = e.code(1, &["start", "ce"]);
    assert!(!err.contains("executable file not found"), "{err}");
    assert!(err.contains("rm -f"), "{err}");
    assert!(alive(pid));
    e.ok(&["rm", "-f", "ce"]);
    e.wait_for(5, "the container's end", || (!alive(pid)).then_some(()));

    // A garbage config.json: listed, inspected, removed with everything it had.
    e.ok(&["run", "-d", "--name", "cc", IMAGE, "sleep", "1000"]);
    let pid = state_of(&e, "cc")["pid"].as_i64().unwrap();
    std::fs::write(container_file(&e, "cc", "config.json"), b"[1,2").unwrap();
    let ps = e.ok(&["ps", "-a", "--format", "{{.Names}}|{{.State}}|{{.Status}}"]);
    assert!(ps.starts_with("cc|unknown|Unknown ("), "{ps}");
    let v = e.inspect("cc");
    assert_eq!(v["State"]["Status"], "unknown");
    assert!(v["State"]["Error"]
        .as_str()
        .unwrap()
        .contains("config.json"));
    e.ok(&["rm", "-f", "cc"]);
    e.wait_for(5, "the container's end", || (!alive(pid)).then_some(()));
    assert_eq!(e.ok(&["ps", "-aq"]), "");
    assert_eq!(mounts_under(e.root()), Vec::<String>::new());
    assert_eq!(cgroups_with_processes(&e), Vec::<String>::new());
}

/// Records damaged in every way at random, many times: `rm -f` always removes the
/// container and its processes, and nothing is left.
#[test]
fn corrupt_records_at_random_are_always_removable() {
    let e = Eng::new();
    let mut rng = Rng::new();
    let n = iters(100);
    for i in 0..n {
        let name = format!("k{i}");
        e.ok(&["run", "-d", "--name", &name, IMAGE, "sleep", "1000"]);
        let file = ["state.json", "config.json", "bundle/config.json"][rng.below(3) as usize];
        let p = container_file(&e, &name, file);
        let body = std::fs::read(&p).unwrap();
        let damaged: Vec<u8> = match rng.below(4) {
            0 => Vec::new(),
            1 => body[..rng.below(body.len() as u64) as usize].to_vec(),
            2 => b"null".to_vec(),
            _ => (0..64).map(|_| rng.below(256) as u8).collect(),
        };
        std::fs::write(&p, damaged).unwrap();
        let o = e.run(&["rm", "-f", &name]);
        assert!(
            o.status.success(),
            "round {i} ({file}): {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(e.ok(&["ps", "-aq"]), "", "round {i} ({file})");
    }
    assert_eq!(mounts_under(e.root()), Vec::<String>::new());
    assert_eq!(trash(&e), Vec::<String>::new());
    assert_eq!(cgroups_with_processes(&e), Vec::<String>::new());
}
