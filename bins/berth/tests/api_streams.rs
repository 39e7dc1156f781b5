//! `berth serve`'s hijacked streams: attach (docker run attached, -i, -it in a real pty,
//! docker attach, resize), exec (create, start attached, -i, -it, detached, inspect,
//! exit codes), driven by Debian's docker CLI, and clients that hang up mid-stream
//! leaving nothing behind in the server.

mod common;
use common::api::*;
use common::engine::*;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The docker CLI with `input` on its stdin.
fn docker_in(s: &Serve, e: &Engine, args: &[&str], input: &[u8]) -> Output {
    let mut c = e
        .in_netns("timeout")
        .args(["60", DOCKER, "-H"])
        .arg(format!("unix://{}", s.sock))
        .args(args)
        .env("DOCKER_CONFIG", e.dir.path().join("docker-config"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(input).unwrap();
    c.wait_with_output().unwrap()
}

/// The docker CLI in a real pty (util-linux `script`) of `rows` x `cols`, `input` typed
/// into it: (what the terminal showed, docker's exit code).
fn docker_tty(s: &Serve, e: &Engine, args: &str, input: &str) -> (String, i32) {
    let cmd = format!(
        "stty rows 33 cols 101; exec {DOCKER} -H unix://{} {args}",
        s.sock
    );
    let mut c = e
        .in_netns("timeout")
        .args(["60", "script", "-qefc", &cmd, "/dev/null"])
        .env("DOCKER_CONFIG", e.dir.path().join("docker-config"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut w = c.stdin.take().unwrap();
    // Typed after the shell is up, as a user would.
    let input = input.to_string();
    let typist = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        let _ = w.write_all(input.as_bytes());
        let _ = w.flush();
        std::thread::sleep(Duration::from_secs(20));
    });
    let o = c.wait_with_output().unwrap();
    drop(typist);
    (
        String::from_utf8_lossy(&o.stdout).to_string(),
        o.status.code().unwrap_or(-1),
    )
}

#[test]
fn docker_run_attached_interactive_and_in_a_pty() {
    if !have_docker() {
        return;
    }
    let e = Engine::new();
    let s = Serve::start(&e, &[]);
    // Attached (the attach comes before the start): both streams, the exit code.
    let o = s.docker(
        &e,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n");
    // The first line of output is not lost to a race with the start.
    for i in 0..5 {
        let o = s.docker(
            &e,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "busybox",
                "echo",
                &format!("n{i}"),
            ],
        );
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            format!("n{i}\n"),
            "{o:?}"
        );
    }
    // -i: stdin to the container, its EOF the container's.
    let o = docker_in(
        &s,
        &e,
        &[
            "run",
            "-i",
            "--rm",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "cat; echo done",
        ],
        b"hello\nworld\n",
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hello\nworld\ndone\n");
    // -it in a real terminal: the container's tty has the client's size (resize), input
    // typed reaches it, the exit code comes back.
    let (screen, code) = docker_tty(
        &s,
        &e,
        "run -it --rm --network none busybox sh",
        "stty size; echo typed-$((6*7)); exit 5\n",
    );
    assert_eq!(code, 5, "{screen}");
    assert!(screen.contains("33 101"), "{screen}");
    assert!(screen.contains("typed-42"), "{screen}");
    assert_eq!(e.ok(&["ps", "-aq"]).trim(), "", "--rm containers are gone");
}

/// The mounts of container `id`'s rootfs in this mount namespace (the server's).
fn rootfs_mounts(id: &str) -> usize {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(id))
        .count()
}

#[test]
fn created_rm_containers_start_later_or_go_unstarted_and_waits_see_any_start() {
    if !have_docker() {
        return;
    }
    let e = Engine::new();
    let s = Serve::start(&e, &[]);
    let create = |args: &[&str]| {
        let mut a = vec!["create", "--network", "none"];
        a.extend_from_slice(args);
        s.docker_ok(&e, &a).trim().to_string()
    };
    // A --rm container keeps its rootfs mounted from its create to its start (docker's
    // run is the two): a copy into it in between leaves it so, the start runs on it, the
    // exit code comes back and the container goes with its mount.
    let id = create(&["--rm", "busybox", "sh", "-c", "cat /f; exit 4"]);
    let f = e.dir.path().join("f");
    std::fs::write(&f, "copied\n").unwrap();
    s.docker_ok(&e, &["cp", &f.display().to_string(), &format!("{id}:/f")]);
    let o = s.docker(&e, &["start", "-a", &id]);
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "copied\n");
    e.wait_for(10, "the --rm container gone", || {
        e.ok(&["ps", "-aq"]).trim().is_empty().then_some(())
    });
    assert_eq!(rootfs_mounts(&id), 0);
    // Removed without ever running: nothing of it is left mounted.
    let id = create(&["--rm", "busybox", "true"]);
    s.docker_ok(&e, &["rm", &id]);
    assert_eq!(rootfs_mounts(&id), 0);
    assert_eq!(e.ok(&["ps", "-aq"]).trim(), "");
    // A next-exit wait sees a start by berth's CLI (not through the server) too; a removed
    // wait on the exited container answers at its removal.
    let id = create(&["busybox", "sh", "-c", "exit 7"]);
    std::thread::scope(|t| {
        let w = t.spawn(|| {
            s.curl(
                &e,
                "POST",
                &format!("/containers/{id}/wait?condition=next-exit"),
                None,
            )
        });
        std::thread::sleep(Duration::from_millis(300));
        e.ok(&["start", &id]);
        let (code, body) = w.join().unwrap();
        assert_eq!(code, 200, "{body}");
        assert!(body.contains(r#""StatusCode":7"#), "{body}");
        let w = t.spawn(|| {
            s.curl(
                &e,
                "POST",
                &format!("/containers/{id}/wait?condition=removed"),
                None,
            )
        });
        std::thread::sleep(Duration::from_millis(300));
        s.docker_ok(&e, &["rm", &id]);
        let (code, body) = w.join().unwrap();
        assert_eq!(code, 200, "{body}");
        assert!(body.contains(r#""StatusCode":7"#), "{body}");
    });
}

#[test]
fn docker_attach_and_start_attached() {
    if !have_docker() {
        return;
    }
    let e = Engine::new();
    let s = Serve::start(&e, &[]);
    // docker attach to a running container: what it writes from then on, its exit code.
    s.docker_ok(
        &e,
        &[
            "run",
            "-d",
            "--name",
            "late",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "sleep 2; echo late; exit 7",
        ],
    );
    let o = s.docker(&e, &["attach", "late"]);
    assert_eq!(o.status.code(), Some(7), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "late\n");
    // docker logs -f follows to the end: what is written after it started, and returns.
    s.docker_ok(
        &e,
        &[
            "run",
            "-d",
            "--name",
            "follow",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "echo first; sleep 1; echo second >&2; sleep 1; echo third",
        ],
    );
    let o = s.docker(&e, &["logs", "-f", "-t", "follow"]);
    assert!(o.status.success(), "{o:?}");
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    );
    assert!(
        out.contains("Z first\n") && out.ends_with("Z third\n"),
        "{out}"
    );
    assert!(err.ends_with("Z second\n"), "{err}");
    assert_eq!(e.ok(&["logs", "follow"]), "first\nthird\n");
    // start -a of a container made by `berth create`: the CLIs share the containers.
    e.ok(&[
        "create",
        "--name",
        "made",
        "--network",
        "none",
        "busybox",
        "echo",
        "from-berth",
    ]);
    let o = s.docker(&e, &["start", "-a", "made"]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "from-berth\n");
    // logs=1 on attach: what was written before comes first.
    let (code, body) = s.curl(
        &e,
        "POST",
        "/containers/made/attach?logs=1&stdout=1&stderr=1",
        None,
    );
    assert_eq!(code, 200);
    assert!(body.ends_with("from-berth\n"), "{body:?}");
    assert!(
        body.as_bytes()[0] == 1,
        "a multiplexed stdout frame: {body:?}"
    );
    // Bad requests.
    let (code, body) = s.curl(&e, "POST", "/containers/made/attach", None);
    assert_eq!(code, 400, "{body}");
    let (code, _) = s.curl(&e, "POST", "/containers/nope/attach?stream=1", None);
    assert_eq!(code, 404);
    let (code, body) = s.curl(&e, "POST", "/containers/made/resize?h=10&w=x", None);
    assert_eq!(code, 400, "{body}");
    let (code, body) = s.curl(&e, "POST", "/containers/made/resize?h=10&w=20", None);
    assert_eq!(code, 409, "not running: {body}");
    // The websocket form (websocket-client, Debian's python3-websocket): stdin in,
    // output out, raw.
    e.ok(&[
        "run",
        "-d",
        "-i",
        "--name",
        "echoer",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "read l; echo got-$l; echo err-$l >&2",
    ]);
    let py = format!(
        r#"
import socket, websocket
s = socket.socket(socket.AF_UNIX); s.connect({sock:?})
ws = websocket.create_connection("ws://localhost/v1.41/containers/echoer/attach/ws?stream=1&stdin=1&stdout=1&stderr=1", socket=s)
ws.send_binary(b"ws\n")
got = b""
while b"err-ws" not in got or b"got-ws" not in got:
    got += ws.recv()
print(got.decode().replace("\n", " "))
"#,
        sock = s.sock
    );
    let o = Command::new("timeout")
        .args(["30", "/usr/bin/python3", "-c", &py])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("got-ws") && out.contains("err-ws"), "{out}");
    assert!(!out.contains('\u{1}'), "raw, not framed: {out:?}");
    let (code, _) = s.curl(&e, "GET", "/containers/made/attach/ws?stream=1", None);
    assert_eq!(code, 400, "not a websocket handshake");
    // docker commit: the container's changes and a CMD, run by berth.
    e.ok(&[
        "run",
        "-d",
        "--name",
        "src",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo kept > /kept; sleep 60",
    ]);
    e.wait_for(10, "the file", || {
        e.run(&["exec", "src", "test", "-e", "/kept"])
            .status
            .success()
            .then_some(())
    });
    let id = s.docker_ok(
        &e,
        &[
            "commit",
            "-c",
            "CMD [\"cat\", \"/kept\"]",
            "-m",
            "via api",
            "src",
            "shop/committed:1",
        ],
    );
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(
        e.ok(&["run", "--rm", "--network", "none", "shop/committed:1"]),
        "kept\n"
    );
    let (code, body) = s.curl(
        &e,
        "POST",
        "/commit?container=src&repo=x&changes=BOGUS%201",
        None,
    );
    assert_eq!(code, 400, "{body}");
    let (code, body) = s.curl(&e, "POST", "/build", None);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("no build context"), "{body}");
    s.docker_ok(&e, &["rm", "-f", "late", "made", "src", "echoer", "follow"]);
}

#[test]
fn docker_exec_attached_interactive_tty_detached_and_codes() {
    if !have_docker() {
        return;
    }
    let e = Engine::new();
    let s = Serve::start(&e, &[]);
    // A container made by `berth run`, exec'd by the docker CLI.
    e.ok(&[
        "run",
        "-d",
        "--name",
        "box",
        "--network",
        "none",
        "busybox",
        "sleep",
        "300",
    ]);
    let o = s.docker(
        &e,
        &["exec", "box", "sh", "-c", "echo out; echo err >&2; exit 4"],
    );
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n");
    let o = docker_in(
        &s,
        &e,
        &["exec", "-i", "box", "sh", "-c", "tr a-z A-Z"],
        b"quiet\n",
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "QUIET\n");
    let o = s.docker(
        &e,
        &[
            "exec",
            "-e",
            "X=1",
            "-w",
            "/tmp",
            "-u",
            "65534",
            "box",
            "sh",
            "-c",
            "echo $X $(pwd) $(id -u)",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "1 /tmp 65534\n",
        "{o:?}"
    );
    let o = s.docker(&e, &["exec", "box", "not-a-program"]);
    assert_eq!(o.status.code(), Some(127), "{o:?}");
    // -it in a real terminal, its size from the client.
    let (screen, code) = docker_tty(&s, &e, "exec -it box sh", "stty size; tty; exit 9\n");
    assert_eq!(code, 9, "{screen}");
    assert!(screen.contains("33 101"), "{screen}");
    assert!(screen.contains("/dev/pts/"), "{screen}");
    // -d: the process runs on its own; its end is seen by the `berth` CLI.
    s.docker_ok(
        &e,
        &[
            "exec",
            "-d",
            "box",
            "sh",
            "-c",
            "sleep 1; touch /tmp/detached",
        ],
    );
    e.wait_for(20, "the detached exec", || {
        e.run(&["exec", "box", "test", "-e", "/tmp/detached"])
            .status
            .success()
            .then_some(())
    });
    // The API's exec objects: create, inspect before and after.
    let (code, body) = s.curl(
        &e,
        "POST",
        "/v1.41/containers/box/exec",
        Some(r#"{"AttachStdout":true,"Cmd":["sh","-c","exit 6"]}"#),
    );
    assert_eq!(code, 201, "{body}");
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, body) = s.curl(&e, "GET", &format!("/exec/{id}/json"), None);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["Running"], false);
    assert!(v["ExitCode"].is_null(), "{v}");
    assert_eq!(v["ProcessConfig"]["entrypoint"], "sh");
    let (code, _) = s.curl(
        &e,
        "POST",
        &format!("/exec/{id}/start"),
        Some(r#"{"Detach":false}"#),
    );
    assert_eq!(code, 200);
    let v: serde_json::Value = e.wait_for(10, "the exec's exit code", || {
        let (_, body) = s.curl(&e, "GET", &format!("/exec/{id}/json"), None);
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        (v["Running"] == false && !v["ExitCode"].is_null()).then_some(v)
    });
    assert_eq!(v["ExitCode"], 6);
    let (code, body) = s.curl(&e, "POST", &format!("/exec/{id}/start"), Some("{}"));
    assert_eq!(code, 409, "{body}");
    let (code, _) = s.curl(&e, "GET", "/exec/nope/json", None);
    assert_eq!(code, 404);
    let (code, body) = s.curl(&e, "POST", "/containers/box/exec", Some(r#"{"Cmd":[]}"#));
    assert_eq!(code, 400, "{body}");
    // Not running: dockerd's 409.
    e.ok(&["stop", "-t", "0", "box"]);
    let (code, body) = s.curl(
        &e,
        "POST",
        "/containers/box/exec",
        Some(r#"{"Cmd":["true"]}"#),
    );
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("is not running"), "{body}");
    e.ok(&["rm", "-f", "box"]);
}

/// Regression: the exec session polled its detach oneshot again after the client's stdin
/// ended (a tokio panic: with the release build's panic=abort it took the whole server
/// down, "connection reset by peer" for the next request).
#[test]
fn exec_output_after_stdin_eof_regression_oneshot_polled_twice() {
    if !have_docker() {
        return;
    }
    let e = Engine::new();
    let mut s = Serve::start(&e, &[]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "box",
        "--network",
        "none",
        "busybox",
        "sleep",
        "300",
    ]);
    for _ in 0..3 {
        let o = docker_in(
            &s,
            &e,
            &[
                "exec",
                "-i",
                "box",
                "sh",
                "-c",
                "cat >/dev/null; sleep 0.3; echo after-eof; exit 2",
            ],
            b"input\n",
        );
        assert_eq!(o.status.code(), Some(2), "{o:?}");
        assert_eq!(String::from_utf8_lossy(&o.stdout), "after-eof\n");
    }
    assert!(s.child.try_wait().unwrap().is_none(), "berth serve died");
    e.ok(&["rm", "-f", "box"]);
}

fn fds_and_threads(pid: u32) -> (usize, usize) {
    let n = |d: String| std::fs::read_dir(d).map(|r| r.count()).unwrap_or(0);
    (n(format!("/proc/{pid}/fd")), n(format!("/proc/{pid}/task")))
}

/// Item 4: 1,000 clients that hang up mid-stream (log follows, attaches hijacked and
/// not) leave no fd and no thread behind in the server.
#[test]
fn aborted_follows_and_attaches_leave_nothing_behind() {
    let e = Engine::new();
    let s = Serve::start(&e, &[]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "talker",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "while true; do echo tick; sleep 0.2; done",
    ]);
    let pid = s.child.id();
    // Warm up the runtime's pools, then the baseline.
    let (code, _) = s.curl(&e, "GET", "/_ping", None);
    assert_eq!(code, 200);
    std::thread::sleep(Duration::from_millis(500));
    let (fd0, _) = fds_and_threads(pid);
    let py = format!(
        r#"
import socket, sys
paths = ["/containers/talker/logs?follow=1&stdout=1",
         "/containers/talker/attach?stream=1&stdout=1&stderr=1",
         "/containers/talker/attach?stream=1&stdin=1&stdout=1"]
for i in range(1000):
    p = paths[i % 3]
    s = socket.socket(socket.AF_UNIX)
    s.connect({sock:?})
    m = "POST" if "attach" in p else "GET"
    up = "Connection: Upgrade\r\nUpgrade: tcp\r\n" if i % 2 == 0 else ""
    s.sendall(f"{{m}} {{p}} HTTP/1.1\r\nHost: x\r\n{{up}}Content-Length: 0\r\n\r\n".encode())
    s.recv(64)
    s.close()
print("ok")
"#,
        sock = s.sock
    );
    let t = Instant::now();
    let o = Command::new("/usr/bin/python3")
        .args(["-c", &py])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    eprintln!("MEASURED 1000 aborted streams in {:?}", t.elapsed());
    // Each session notices its client at its next write (a tick every 0.2 s).
    // tokio's blocking pool keeps an idle thread 10 s; never one per client for good.
    let (fd1, th1) = e.wait_for(40, "the server's fds and threads back down", || {
        let (f, t) = fds_and_threads(pid);
        (f <= fd0 + 2 && t < 40).then_some((f, t))
    });
    eprintln!("MEASURED server fds {fd0} -> {fd1}, threads {th1}");
    // The server still answers and the container was never disturbed.
    assert_eq!(s.curl(&e, "GET", "/_ping", None).0, 200);
    assert_eq!(e.inspect("talker")["State"]["Running"], true);
    e.ok(&["rm", "-f", "talker"]);
}
