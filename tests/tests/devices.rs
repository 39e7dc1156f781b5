//! Issue 2, item 2 (devices): defaults, /dev symlinks, config devices, devices in a user namespace.

use berth_tests::*;
use serde_json::{json, Value};

fn stats(rt: &Runtime, b: &mut Bundle, paths: &[&str], tag: &str) -> Vec<Value> {
    let script: String = paths
        .iter()
        .map(|p| format!("probe stat {p}; "))
        .collect::<String>()
        + "exit 0";
    b.sh(&script);
    let o = rt.run(&unique(tag), b);
    o.ok();
    let v: Vec<Value> = o
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(v.len(), paths.len(), "one stat per path:{o}");
    v
}

#[test]
fn default_devices_exist_with_right_numbers() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let want = [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ];
    let paths: Vec<&str> = want.iter().map(|w| w.0).collect();
    let got = stats(&rt, &mut b, &paths, "defdev");
    for ((p, maj, min), s) in want.iter().zip(got) {
        assert_eq!(s["type"], "char", "{p}: {s}");
        assert_eq!(
            (s["major"].as_i64(), s["minor"].as_i64()),
            (Some(*maj), Some(*min)),
            "{p}: {s}"
        );
        assert_eq!(s["mode"], 0o666, "{p}: {s}");
        assert_eq!(s["uid"], 0, "{p}: {s}");
    }
}

#[test]
fn dev_symlinks() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let want = [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
        ("/dev/ptmx", "pts/ptmx"),
    ];
    let paths: Vec<&str> = want.iter().map(|w| w.0).collect();
    let got = stats(&rt, &mut b, &paths, "devlinks");
    for ((p, target), s) in want.iter().zip(got) {
        assert_eq!(s["type"], "symlink", "{p}: {s}");
        assert_eq!(s["target"], *target, "{p}: {s}");
    }
}

#[test]
fn default_devices_are_usable() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.sh("echo x > /dev/null && head -c 4 /dev/zero | wc -c && head -c 4 /dev/urandom | wc -c");
    let o = rt.run(&unique("devuse"), &b);
    o.ok();
    assert_eq!(
        o.stdout.split_whitespace().collect::<Vec<_>>(),
        ["4", "4"],
        "{o}"
    );
}

#[test]
fn config_devices_are_created_with_mode_and_owner() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.device(json!({"path": "/dev/bt-null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 1000, "gid": 1001}))
        .device(json!({"path": "/dev/sub/bt-zero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o600, "uid": 0, "gid": 0}))
        .device(json!({"path": "/dev/bt-fifo", "type": "p"}));
    let got = stats(
        &rt,
        &mut b,
        &["/dev/bt-null", "/dev/sub/bt-zero", "/dev/bt-fifo"],
        "cfgdev",
    );
    assert_eq!(got[0]["type"], "char", "{}", got[0]);
    assert_eq!(
        (got[0]["major"].as_i64(), got[0]["minor"].as_i64()),
        (Some(1), Some(3))
    );
    assert_eq!(got[0]["mode"], 0o640, "{}", got[0]);
    assert_eq!(
        (got[0]["uid"].as_i64(), got[0]["gid"].as_i64()),
        (Some(1000), Some(1001)),
        "{}",
        got[0]
    );
    assert_eq!(got[1]["type"], "char", "{}", got[1]);
    assert_eq!(
        (got[1]["major"].as_i64(), got[1]["minor"].as_i64()),
        (Some(1), Some(5))
    );
    assert_eq!(got[1]["mode"], 0o600, "{}", got[1]);
    assert_eq!(got[2]["type"], "fifo", "{}", got[2]);
}

#[test]
fn config_device_outside_dev_is_created_where_asked() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.device(
        json!({"path": "/dev/bt-full", "type": "c", "major": 1, "minor": 7, "fileMode": 0o666}),
    );
    b.sh("echo x > /dev/bt-full; echo rc=$?");
    let o = rt.run(&unique("devfull"), &b);
    assert!(
        o.stdout.contains("rc=1"),
        "writing to a full device must fail with ENOSPC:{o}"
    );
}

#[test]
fn devices_in_user_namespace_are_bind_mounted() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    // In a user namespace mknod is impossible: the host's node at the same path is bind-mounted.
    b.userns(0, 100000, 65536).device(
        json!({"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 0o644}),
    );
    b.sh("probe stat /dev/kmsg; probe stat /dev/null; echo x > /dev/null && echo write-ok");
    let o = rt.run(&unique("usernsdev"), &b);
    o.ok();
    let v: Vec<Value> = o
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(v.len(), 2, "{o}");
    assert_eq!(v[0]["type"], "char", "{o}");
    assert_eq!(
        (v[0]["major"].as_i64(), v[0]["minor"].as_i64()),
        (Some(1), Some(11)),
        "{o}"
    );
    assert_eq!(v[1]["type"], "char", "{o}");
    assert_eq!(
        (v[1]["major"].as_i64(), v[1]["minor"].as_i64()),
        (Some(1), Some(3)),
        "{o}"
    );
    assert!(o.stdout.contains("write-ok"), "{o}");
}

#[test]
fn invalid_device_type_is_rejected() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.device(json!({"path": "/dev/bt-bad", "type": "x", "major": 1, "minor": 3}));
    rt.run(&unique("baddev"), &b).failed();
}
