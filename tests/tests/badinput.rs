//! Issue 2: bad input gets a clear error, never a silent default; misc. global flags.

use berth_tests::*;
use std::fs;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

#[test]
fn missing_config_json_fails_and_names_it() {
    let rt = Runtime::new();
    let b = Bundle::busybox();
    let id = unique("noconfig");
    let bundle = b.path().to_string_lossy().into_owned();
    fs::remove_file(b.path().join("config.json")).unwrap();
    let o = rt.cmd(&["create", "--bundle", &bundle, &id]);
    o.code_is(1).errors_contain("config.json");
    rt.state_out(&id).failed();
}

#[test]
fn invalid_config_json_fails() {
    let rt = Runtime::new();
    let b = Bundle::busybox();
    let id = unique("badjson");
    let bundle = b.path().to_string_lossy().into_owned();
    fs::write(b.path().join("config.json"), "{ not json").unwrap();
    rt.cmd(&["create", "--bundle", &bundle, &id]).code_is(1);
    rt.state_out(&id).failed().errors_contain("does not exist");
}

#[test]
fn missing_rootfs_fails() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.set("/root/path", serde_json::json!("no-such-rootfs"));
    let id = unique("norootfs");
    rt.create(&id, &b).failed();
    rt.state_out(&id).failed().errors_contain("does not exist");
}

#[test]
fn absolute_root_path_outside_bundle_works() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let other = Bundle::busybox();
    b.set(
        "/root/path",
        serde_json::json!(other.rootfs().to_str().unwrap()),
    );
    let id = unique("absroot");
    let o = rt.run(&id, &b);
    o.ok();
}

#[test]
fn empty_args_fails() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&[]);
    rt.run(&unique("noargs"), &b).failed();
}

#[test]
fn invalid_container_id_is_rejected() {
    let rt = Runtime::new();
    let b = Bundle::busybox();
    for bad in ["../escape", "a/b", "", "."] {
        let o = rt.create(bad, &b);
        o.failed();
    }
    assert!(
        !rt.root().parent().unwrap().join("escape").exists(),
        "id with .. escaped the state root"
    );
}

#[test]
fn hostname_too_long_fails() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.hostname(&"h".repeat(100));
    rt.run(&unique("longhost"), &b).failed();
}

#[test]
fn unknown_namespace_type_fails() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.namespace("bogus", None);
    rt.run(&unique("badns"), &b).failed();
}

#[test]
fn duplicate_namespace_type_fails() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let mut ns = b.config["linux"]["namespaces"].as_array().unwrap().clone();
    ns.push(serde_json::json!({"type": "pid"}));
    b.set("/linux/namespaces", serde_json::json!(ns));
    rt.run(&unique("dupns"), &b).failed();
}

#[test]
fn relative_mount_destination_fails_or_is_resolved_in_rootfs() {
    // runc 1.1 warns and treats a relative destination as relative to "/": it must never land outside.
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.mount("mnt/rel", "tmpfs", "tmpfs", &[]);
    let o = rt.run(&unique("reldest"), &b);
    if o.success() {
        let mi = parse_mountinfo(o.probe()["mountinfo"].as_str().unwrap());
        assert!(mi.iter().any(|m| m.mount_point == "/mnt/rel"), "{mi:#?}");
    }
    assert!(host_mounts_under(b.path()).is_empty());
}

#[test]
fn systemd_cgroup_flag_without_systemd_gives_a_clear_error() {
    // No systemd runs on this machine: --systemd-cgroup must fail and say why, not fall back.
    if std::path::Path::new("/run/systemd/system").exists() {
        eprintln!("systemd is running here; nothing to check");
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.set(
        "/linux/cgroupsPath",
        serde_json::json!(format!("system.slice:berth-test:{}", unique("sd"))),
    );
    b.save();
    let id = unique("systemd");
    rt.track(&id, Some(&b));
    let bundle = b.path().to_string_lossy().into_owned();
    let o = rt.cmd(&["--systemd-cgroup", "run", "--bundle", &bundle, &id]);
    o.failed();
    assert!(
        o.errors().to_lowercase().contains("systemd") || o.errors().contains("dbus"),
        "error does not say systemd is unavailable:{o}"
    );
}

#[test]
fn debug_flag_is_accepted() {
    let rt = Runtime::new();
    let b = Bundle::busybox();
    b.save();
    let id = unique("debug");
    rt.track(&id, Some(&b));
    let bundle = b.path().to_string_lossy().into_owned();
    let o = rt.cmd(&["--debug", "run", "--bundle", &bundle, &id]);
    o.ok();
    o.probe();
}

#[test]
fn no_pivot_runs_and_keeps_the_rootfs() {
    let rt = Runtime::new();
    let b = Bundle::busybox();
    let o = rt.run_with(&unique("nopivot"), &b, &["--no-pivot"]);
    o.ok();
    let p = o.probe();
    let mi = parse_mountinfo(p["mountinfo"].as_str().unwrap());
    assert!(
        mi.iter()
            .any(|m| m.mount_point == "/" && m.root.ends_with("/rootfs")),
        "root is not the bundle rootfs: {mi:#?}"
    );
}

#[test]
fn session_keyring_is_new_unless_no_new_keyring() {
    // runc joins a fresh session keyring named "_ses.<id>"; --no-new-keyring keeps the caller's.
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let masked: Vec<serde_json::Value> = b.config["linux"]["maskedPaths"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    b.set(
        "/linux/maskedPaths",
        serde_json::json!(masked
            .into_iter()
            .filter(|p| p != "/proc/keys")
            .collect::<Vec<_>>()),
    );
    b.args(&["/bin/cat", "/proc/keys"]);
    let id = unique("keyring");
    let o = rt.run(&id, &b);
    o.ok();
    assert!(
        o.stdout.contains(&format!("_ses.{id}")),
        "no session keyring _ses.{id}:{o}"
    );
    let id2 = unique("nokeyring");
    let o = rt.run_with(&id2, &b, &["--no-new-keyring"]);
    o.ok();
    assert!(
        !o.stdout.contains(&format!("_ses.{id2}")),
        "--no-new-keyring still created a keyring:{o}"
    );
}

#[test]
fn corrupt_state_is_tolerated_by_list_and_delete_force() {
    let rt = Runtime::new();
    let id = unique("corrupt");
    let dir = rt.root().join(&id);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("state.json"), "{ truncated").unwrap();
    let l = rt.cmd(&["list", "-q"]);
    assert!(l.code.is_some(), "{l}");
    let d = rt.delete_force(&id);
    assert!(
        !dir.exists(),
        "delete --force left the corrupt state dir{d}"
    );
    let mut b = Bundle::busybox();
    b.probe(&["sleep"]);
    rt.create(&id, &b).ok();
}

#[test]
fn state_reports_stopped_when_init_dies_behind_the_runtimes_back() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.probe(&["sleep"]);
    let id = unique("behindback");
    rt.run_detached(&id, &b).ok();
    let pid = rt.pid(&id);
    kill_pid(pid, 9);
    rt.wait_status(&id, "stopped", T);
    rt.delete(&id).ok();
}

#[test]
fn cve_2024_45310_fifo_mount_target_does_not_hang() {
    // security-bar SEC-14 (b): a file bind-mount onto a FIFO in the rootfs must not hang the runtime.
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let st = std::process::Command::new("mkfifo")
        .arg(b.rootfs().join("etc/fifo"))
        .status()
        .unwrap();
    assert!(st.success());
    let src = b.host_dir("files").join("f");
    fs::write(&src, "x").unwrap();
    b.mount("/etc/fifo", "bind", src.to_str().unwrap(), &["bind"]);
    let t0 = std::time::Instant::now();
    let _ = rt.run(&unique("fifo"), &b);
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "runtime hung on a FIFO mount target"
    );
}

#[test]
fn cve_2024_45310_mkdirall_never_creates_outside_rootfs() {
    // security-bar SEC-14 (a): a rootfs symlink pointing at a host directory; the mount below it
    // must be created inside the rootfs, never in the host directory.
    let rt = Runtime::new();
    let victim = Marker::new();
    let mut b = Bundle::busybox();
    std::os::unix::fs::symlink(victim.dir.path(), b.rootfs().join("link")).unwrap();
    b.readonly_root(false)
        .mount("/link/sub/dir", "tmpfs", "tmpfs", &[]);
    let o = rt.run(&unique("mkdirall"), &b);
    let names: Vec<String> = fs::read_dir(victim.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["marker"],
        "runtime created entries in a host directory through a rootfs symlink:{o}"
    );
}

// Fails under runc 1.1.5 (it predates the fix): it creates /dev/{fd,stdin,stdout,stderr,ptmx}
// in the host directory the rootfs /dev symlink points to.
#[test]
fn cve_2026_41579_dev_symlink_to_outside_is_not_followed() {
    // security-bar SEC-18: rootfs /dev is a symlink to a host directory and the config has no /dev
    // tmpfs: device nodes and symlinks must not be created in the host directory.
    let rt = Runtime::new();
    let victim = Marker::new();
    let mut b = Bundle::busybox();
    fs::remove_dir(b.rootfs().join("dev")).unwrap();
    std::os::unix::fs::symlink(victim.dir.path(), b.rootfs().join("dev")).unwrap();
    b.remove_mount("/dev")
        .remove_mount("/dev/pts")
        .remove_mount("/dev/shm")
        .remove_mount("/dev/mqueue");
    let o = rt.run(&unique("devsym"), &b);
    let names: Vec<String> = fs::read_dir(victim.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for n in &names {
        if n != "marker" {
            let _ = fs::remove_file(victim.dir.path().join(n));
        }
    }
    assert_eq!(
        names,
        ["marker"],
        "runtime created device entries in a host directory through rootfs /dev:{o}"
    );
}

// Issue 16, item 8: bad inputs with a poor answer (the runtime's share).

#[test]
fn item8_config_json_array_gets_a_clear_error() {
    // serde reads `[]` as an empty struct: the error named ociVersion, not the real problem.
    let rt = Runtime::new();
    let b = Bundle::busybox();
    let id = unique("cfgarray");
    let bundle = b.path().to_string_lossy().into_owned();
    fs::write(b.path().join("config.json"), "[]\n").unwrap();
    rt.track(&id, Some(&b));
    let o = rt.cmd(&["run", "--bundle", &bundle, &id]);
    o.code_is(1).errors_contain("JSON object");
    assert!(!o.errors().contains("ociVersion"), "misleading message:{o}");
}

#[test]
fn item8_relative_mount_destination_is_refused() {
    // The runtime-spec: a mount destination MUST be absolute (runc only warns, and used to
    // take it as relative to "/").
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.mount("mnt/rel", "tmpfs", "tmpfs", &[]);
    let o = rt.run(&unique("reldest2"), &b);
    o.failed().errors_contain("mnt/rel");
    assert!(o.errors().contains("absolute"), "{o}");
    assert!(host_mounts_under(b.path()).is_empty());
}

#[test]
fn item8_fifo_as_config_json_is_refused_without_hanging() {
    let rt = Runtime::new();
    let b = Bundle::busybox();
    let id = unique("cfgfifo");
    let cfg = b.path().join("config.json");
    let _ = fs::remove_file(&cfg);
    let st = std::process::Command::new("mkfifo")
        .arg(&cfg)
        .status()
        .unwrap();
    assert!(st.success());
    rt.track(&id, Some(&b));
    let bundle = b.path().to_string_lossy().into_owned();
    let (mut c, _out, errp, _log) = rt.command(&["run", "--bundle", &bundle, &id]);
    let mut child = c.spawn().unwrap();
    // Before the fix the open blocked forever (no writer ever comes).
    let st = wait_timeout(
        &mut child,
        Duration::from_secs(10),
        "run with a FIFO config.json",
    );
    let err = fs::read_to_string(errp).unwrap();
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(err.contains("not a regular file"), "{err}");
}
