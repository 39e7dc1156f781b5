//! Issue 2, item 2 (hooks): each of the six kinds at the right time with the state on stdin, a failing
//! hook fails the operation and cleans up, the timeout is honoured.

use berth_tests::*;
use serde_json::{json, Value};
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(10);

/// A host-side hook that saves its stdin as `<dir>/<name>.json` and appends `<name>` to `<dir>/order`.
fn recording_hook(dir: &Path, name: &str) -> Value {
    let d = dir.display();
    json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {d}/{name}.json; echo {name} >> {d}/order")]})
}

fn order(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("order"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

fn hook_state(dir: &Path, name: &str) -> Value {
    let t = fs::read_to_string(dir.join(format!("{name}.json")))
        .unwrap_or_else(|e| panic!("{name} hook wrote no state ({e}); order {:?}", order(dir)));
    serde_json::from_str(&t).unwrap_or_else(|e| panic!("{name} hook stdin is not JSON ({e}): {t}"))
}

fn hooked_bundle(kinds: &[&str]) -> (Bundle, std::path::PathBuf) {
    let mut b = Bundle::busybox();
    let dir = b.host_dir("hookout");
    for k in kinds {
        let h = recording_hook(&dir, k);
        b.hook(k, h);
    }
    (b, dir)
}

#[test]
fn create_runs_prestart_create_runtime_and_create_container_in_order() {
    let rt = Runtime::new();
    let (mut b, dir) = hooked_bundle(&["prestart", "createRuntime", "createContainer", "poststop"]);
    b.probe(&["sleep"]);
    let id = unique("hookcreate");
    rt.create(&id, &b).ok();
    assert_eq!(
        order(&dir),
        ["prestart", "createRuntime", "createContainer"],
        "hooks run by create"
    );
    let pid = rt.pid(&id);
    for k in ["prestart", "createRuntime", "createContainer"] {
        let s = hook_state(&dir, k);
        assert_eq!(s["id"], id.as_str(), "{k}: {s}");
        assert_eq!(s["bundle"], b.path().to_string_lossy().as_ref(), "{k}: {s}");
        // runtime-tools' hooks_stdin (which crun passes) wants "created"
        // here; runc 1.1 sends "creating".
        assert_eq!(s["status"], "created", "{k}: {s}");
        assert!(s["ociVersion"].is_string(), "{k}: {s}");
    }
    for k in ["prestart", "createRuntime"] {
        assert_eq!(
            hook_state(&dir, k)["pid"],
            pid,
            "{k} runs in the runtime namespace and sees the host pid"
        );
    }
}

#[test]
fn start_container_hook_runs_in_the_container_before_the_user_process() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    // Runs in the container namespace: /bin/sh is the rootfs busybox, /dev/shm the container's tmpfs.
    b.hook(
        "startContainer",
        json!({"path": "/bin/sh", "args": ["sh", "-c", "cat > /dev/shm/start-state.json"]}),
    );
    b.probe(&["read", "/dev/shm/start-state.json"]);
    let id = unique("hookstart");
    rt.create(&id, &b).ok();
    rt.start(&id).ok();
    rt.wait_status(&id, "stopped", T);
    let out = rt.container_stdout(&id);
    let r = parse_probe(&out)
        .unwrap_or_else(|| panic!("no probe output: {out}\n{}", rt.container_stderr(&id)));
    assert_eq!(
        r["ok"], true,
        "startContainer hook had not run before the user process: {out}"
    );
    let s: Value =
        serde_json::from_str(r["data"].as_str().unwrap()).expect("state JSON on the hook's stdin");
    assert_eq!(s["id"], id.as_str(), "{s}");
}

// Fails under runc 1.1.5: it runs poststart hooks during `create` (fixed in runc 1.2). The spec
// says poststart runs after the user process starts, i.e. during `start`.
#[test]
fn poststart_runs_at_start_not_at_create() {
    let rt = Runtime::new();
    let (mut b, dir) = hooked_bundle(&["poststart"]);
    b.probe(&["sleep"]);
    let id = unique("hookpoststart");
    rt.create(&id, &b).ok();
    assert!(
        order(&dir).is_empty(),
        "poststart ran during create: {:?}",
        order(&dir)
    );
    rt.start(&id).ok();
    assert_eq!(
        order(&dir),
        ["poststart"],
        "poststart must have run when start returns"
    );
    let s = hook_state(&dir, "poststart");
    assert_eq!(s["pid"], rt.pid(&id), "{s}");
}

#[test]
fn poststop_runs_on_delete_with_stopped_state() {
    let rt = Runtime::new();
    let (mut b, dir) = hooked_bundle(&["poststop"]);
    b.probe(&["exit", "0"]);
    let id = unique("hookpoststop");
    rt.run_detached(&id, &b).ok();
    rt.wait_status(&id, "stopped", T);
    assert!(
        order(&dir).is_empty(),
        "poststop ran before delete: {:?}",
        order(&dir)
    );
    rt.delete(&id).ok();
    assert_eq!(order(&dir), ["poststop"]);
    let s = hook_state(&dir, "poststop");
    assert_eq!(s["id"], id.as_str());
    assert_eq!(s["status"], "stopped", "{s}");
}

#[test]
fn hook_args_and_env_are_passed() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let dir = b.host_dir("hookout");
    let out = dir.join("env");
    b.hook(
        "prestart",
        json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo \"$0|$1|$BT_VAR\" > {}", out.display()), "arg0", "arg1"], "env": ["BT_VAR=bt-value"]}),
    );
    rt.run(&unique("hookenv"), &b).ok();
    assert_eq!(
        fs::read_to_string(&out).unwrap().trim(),
        "arg0|arg1|bt-value"
    );
}

#[test]
fn failing_prestart_fails_create_and_cleans_up() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.hook(
        "prestart",
        json!({"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}),
    );
    b.probe(&["sleep"]);
    let id = unique("hookfail");
    let o = rt.create(&id, &b);
    o.failed();
    rt.state_out(&id).failed().errors_contain("does not exist");
    let cg = b.cgroups_path().unwrap();
    let left = wait_for(T, || cgroup_dirs(&cg).is_empty().then_some(()));
    assert!(
        left.is_some(),
        "cgroup {cg} left after a failed create: {:?}{o}",
        cgroup_dirs(&cg)
    );
    assert!(
        !rt.root().join(&id).exists(),
        "state dir left after failed create"
    );
}

#[test]
fn failing_create_runtime_hook_fails_create() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.hook(
        "createRuntime",
        json!({"path": "/bin/false", "args": ["false"]}),
    );
    let id = unique("hookfail2");
    rt.create(&id, &b).failed();
    rt.state_out(&id).failed().errors_contain("does not exist");
}

#[test]
fn failing_poststop_does_not_block_delete() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.hook("poststop", json!({"path": "/bin/false", "args": ["false"]}));
    b.probe(&["exit", "0"]);
    let id = unique("hookpoststopfail");
    rt.run_detached(&id, &b).ok();
    rt.wait_status(&id, "stopped", T);
    // runc: poststop errors are logged, the container is deleted anyway.
    let _ = rt.delete(&id);
    rt.state_out(&id).failed().errors_contain("does not exist");
}

#[test]
fn hook_timeout_is_honoured() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.hook(
        "prestart",
        json!({"path": "/bin/sh", "args": ["sh", "-c", "exec sleep 20"], "timeout": 1}),
    );
    let id = unique("hooktimeout");
    let t0 = Instant::now();
    let o = rt.create(&id, &b);
    let took = t0.elapsed();
    o.failed();
    assert!(
        took < Duration::from_secs(8),
        "create took {took:?} with a 1 s hook timeout{o}"
    );
    assert!(
        o.errors().to_lowercase().contains("timed out") || o.errors().contains("timeout"),
        "error does not mention the timeout{o}"
    );
}

#[test]
fn hook_with_relative_path_is_rejected() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.hook(
        "prestart",
        json!({"path": "sh", "args": ["sh", "-c", "true"]}),
    );
    rt.create(&unique("hookrel"), &b).failed();
}

#[test]
fn hooks_run_in_the_right_mount_namespace() {
    // createRuntime and prestart run in the runtime's namespace, createContainer in the container's.
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let dir = b.host_dir("hookout");
    for k in ["prestart", "createRuntime", "createContainer"] {
        b.hook(k, json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat >/dev/null; readlink /proc/self/ns/mnt > {}/{k}.ns", dir.display())]}));
    }
    b.probe(&["sleep"]);
    let id = unique("hookns");
    rt.create(&id, &b).ok();
    let pid = rt.pid(&id);
    let read = |k: &str| {
        fs::read_to_string(dir.join(format!("{k}.ns")))
            .unwrap_or_else(|e| panic!("{k} hook left no output: {e}"))
            .trim()
            .to_string()
    };
    assert_eq!(
        read("prestart"),
        host_ns("mnt"),
        "prestart not in the runtime namespace"
    );
    assert_eq!(
        read("createRuntime"),
        host_ns("mnt"),
        "createRuntime not in the runtime namespace"
    );
    assert_eq!(
        read("createContainer"),
        ns_of(&pid.to_string(), "mnt"),
        "createContainer not in the container namespace"
    );
}
