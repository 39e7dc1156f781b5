//! Issue 2, item 1/2: `--console-socket`, process.terminal and consoleSize, /dev/console (SEC-16).

use berth_tests::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

#[test]
fn terminal_via_console_socket_with_console_size() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.terminal(true).set(
        "/process/consoleSize",
        serde_json::json!({"height": 33, "width": 111}),
    );
    b.sh("stty size; probe stat /dev/console; probe info");
    let sock = ConsoleSocket::new(rt.work());
    let id = unique("tty");
    let o = rt.create_with(&id, &b, &["--console-socket", sock.path.to_str().unwrap()]);
    o.ok();
    let master = sock.recv_master(T);
    rt.start(&id).ok();
    let out = read_pty(master, T);
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    assert_eq!(
        lines.next().map(str::trim),
        Some("33 111"),
        "consoleSize not applied; pty output:\n{out}"
    );
    let console: serde_json::Value = serde_json::from_str(lines.next().unwrap_or(""))
        .unwrap_or_else(|e| panic!("no stat of /dev/console ({e}):\n{out}"));
    let info = parse_probe(&out).unwrap_or_else(|| panic!("no probe output on the pty:\n{out}"));
    let fds = info["fds"].as_object().unwrap();
    for fd in ["0", "1", "2"] {
        let t = fds[fd].as_str().unwrap();
        assert!(t.starts_with("/dev/pts/"), "fd {fd} is {t}, not the pty");
    }
    // /dev/console is the container's pty (char major 136), not the host console.
    assert_eq!(console["type"], "char", "{console}");
    assert_eq!(
        console["major"], 136,
        "/dev/console is not a pts: {console}"
    );
    let pts = fds["0"]
        .as_str()
        .unwrap()
        .trim_start_matches("/dev/pts/")
        .parse::<i64>()
        .unwrap();
    assert_eq!(
        console["minor"], pts,
        "/dev/console is not the process's pty: {console}"
    );
    rt.wait_status(&id, "stopped", T);
}

#[test]
fn terminal_without_console_socket_fails_for_create() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.terminal(true);
    let o = rt.create(&unique("ttynosock"), &b);
    o.failed().errors_contain("console");
}

#[test]
fn console_socket_that_does_not_exist_fails() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.terminal(true);
    let missing = rt.work().join("missing.sock");
    let o = rt.create_with(
        &unique("ttymissing"),
        &b,
        &["--console-socket", missing.to_str().unwrap()],
    );
    o.failed();
}

#[test]
fn foreground_run_with_terminal_passes_sigwinch_on() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.terminal(true)
        .sh("trap 'echo size=$(stty size)' WINCH; echo ready; i=0; while [ $i -lt 2400 ]; do sleep 0.05; i=$((i+1)); done");
    b.save();
    let id = unique("winch");
    rt.track(&id, Some(&b));
    let (master, slave) = pty_pair();
    set_winsize(&slave, 24, 80);
    let bundle = b.path().to_string_lossy().into_owned();
    let (mut c, _, _, _) = rt.command(&["run", "--bundle", &bundle, &id]);
    c.stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave);
    let mut child = c.spawn().expect("spawn run");
    let reader = PtyReader::new(master.try_clone().unwrap());
    reader.wait("ready", T);
    set_winsize(&master, 41, 123);
    kill_pid(child.id() as i32, signum("WINCH"));
    let out = reader.wait("size=41 123", T);
    assert!(out.contains("size=41 123"), "{out}");
    rt.kill(&id, "KILL");
    let st = wait_timeout(&mut child, T, "run with terminal");
    assert_eq!(
        st.code(),
        Some(137),
        "run returns 128+9 after SIGKILL; output:\n{}",
        reader.text()
    );
    drop(master);
}
