//! Regression tests for the engine hardening issue (attack run): exec's stdio, creations
//! cut short by signals, run/rm races, killed monitors, corrupt records. Run as root:
//! `cargo nextest run -p berth --test engine_hardening`.
//! The fault tests repeat their fault many times; `BERTH_FAULT_ITERS` scales them.

mod common;
use common::engine::*;
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The harness's Engine, plus removal of its (then empty) parent cgroup.
struct Eng(Option<Engine>);

impl Eng {
    fn new() -> Eng {
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
            let _ = std::fs::remove_dir(d.path().join(parent.trim_start_matches('/')));
        }
    }
}

fn iters(default: usize) -> usize {
    std::env::var("BERTH_FAULT_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Mount points under `root` (canonical path prefix).
fn mounts_under(root: &std::path::Path) -> Vec<String> {
    let root = std::fs::canonicalize(root).unwrap();
    let root = root.to_string_lossy().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m.starts_with(&root))
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
    assert!(!stolen.contains("host input"), "host stdin was read: {stolen}");
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
        .cmd(&["exec", "-i", "ex", "sh", "-c", "tr a-z A-Z; echo oops >&2; exit 5"])
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
