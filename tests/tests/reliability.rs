//! Issue 2, item 4 (state): atomic state, recycled pids, everything in place at `created`.
//! security-bar REL-02, REL-04.

use berth_tests::*;
use serde_json::Value;
use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(10);

#[test]
fn state_is_always_complete_json_under_concurrent_lifecycle() {
    // REL-02: while create/start/kill/delete run, concurrent `state` readers see either a complete
    // JSON document or "does not exist", never a torn file.
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.probe(&["sleep"]);
    b.save();
    let id = unique("atomic");
    rt.track(&id, Some(&b));
    let path = rt.path.clone();
    let root = rt.root().to_path_buf();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..2 {
        let (path, root, id, stop) = (path.clone(), root.clone(), id.clone(), stop.clone());
        readers.push(std::thread::spawn(move || {
            let mut bad = Vec::new();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let o = Command::new(&path)
                    .arg("--root")
                    .arg(&root)
                    .args(["state", &id])
                    .stdin(Stdio::null())
                    .output()
                    .unwrap();
                n += 1;
                let out = String::from_utf8_lossy(&o.stdout).into_owned();
                let err = String::from_utf8_lossy(&o.stderr).into_owned();
                if o.status.success() {
                    if serde_json::from_str::<Value>(out.trim()).is_err() {
                        bad.push(format!("torn state: {out:?}"));
                    }
                } else if !err.contains("does not exist") {
                    bad.push(format!("state failed: {:?} {err}", o.status.code()));
                }
            }
            (n, bad)
        }));
    }
    for _ in 0..3 {
        rt.create(&id, &b).ok();
        rt.start(&id).ok();
        rt.kill(&id, "KILL").ok();
        rt.wait_status(&id, "stopped", T);
        rt.delete(&id).ok();
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for r in readers {
        let (n, bad) = r.join().unwrap();
        assert!(n > 0);
        assert!(
            bad.is_empty(),
            "{} bad reads of {n}: {:?}",
            bad.len(),
            &bad[..bad.len().min(5)]
        );
    }
}

/// Spawn `sleep 60` on the host with exactly `pid` by steering ns_last_pid; None if it did not work
/// out within a few tries (other processes fork concurrently).
fn spawn_with_pid(pid: i32) -> Option<std::process::Child> {
    for _ in 0..50 {
        if fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).is_err() {
            return None;
        }
        let mut c = Command::new("/bin/sleep")
            .arg("60")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        if c.id() as i32 == pid {
            return Some(c);
        }
        let _ = c.kill();
        let _ = c.wait();
        if pid_alive(pid) {
            return None;
        }
    }
    None
}

#[test]
fn recycled_init_pid_is_never_signalled() {
    // REL-04: the init dies behind the runtime's back and its pid is reused by an unrelated host
    // process; kill/delete must recognise the stale pid (start time) and leave that process alone.
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.probe(&["sleep"]);
    let id = unique("recycle");
    rt.run_detached(&id, &b).ok();
    let pid = rt.pid(&id);
    kill_pid(pid, 9);
    let gone = wait_for(T, || {
        (!pid_alive(pid) && !std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    });
    assert!(gone.is_some(), "init {pid} was not reaped");
    let Some(mut imposter) = spawn_with_pid(pid) else {
        eprintln!("could not obtain pid {pid} again; skipping the reuse check");
        return;
    };
    eprintln!("pid {pid} now belongs to a host `sleep`");
    let st = rt.state_out(&id);
    let kill = rt.kill(&id, "KILL");
    let del = rt.delete_force(&id);
    let alive = imposter.try_wait().unwrap().is_none();
    let _ = imposter.kill();
    let _ = imposter.wait();
    assert!(
        alive,
        "the runtime signalled an unrelated process that reused the init pid {pid}{st}{kill}{del}"
    );
    let v: Value = serde_json::from_str(st.stdout.trim()).unwrap_or(Value::Null);
    assert_eq!(
        v["status"], "stopped",
        "state with a recycled pid must say stopped{st}"
    );
}

#[test]
fn created_container_has_everything_in_place() {
    // `create` returns only when init is parked with namespaces, mounts, cgroup and hostname done.
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.hostname("bt-parked")
        .mount("/mnt/t", "tmpfs", "tmpfs", &["size=1m"])
        .probe(&["sleep"]);
    let cg = b.cgroups_path().unwrap();
    let id = unique("inplace");
    let t0 = Instant::now();
    rt.create(&id, &b).ok();
    let pid = rt.pid(&id);
    let ps = pid.to_string();
    for ns in ["pid", "net", "ipc", "uts", "mnt"] {
        assert_ne!(ns_of(&ps, ns), host_ns(ns), "{ns} not set up at created");
    }
    let mi = parse_mountinfo(&fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap());
    assert!(
        mi.iter()
            .any(|m| m.mount_point == "/mnt/t" && m.fstype == "tmpfs"),
        "mounts not in place at created: {mi:#?}"
    );
    assert!(
        mi.iter()
            .any(|m| m.mount_point == "/" && m.root.ends_with("/rootfs")),
        "root not pivoted at created: {mi:#?}"
    );
    let cgl = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for l in managed_cgroup_lines(&cgl) {
        assert!(l.ends_with(&format!(":{cg}")), "{l}");
    }
    // The hostname of the init's uts namespace (nsenter from util-linux).
    let h = Command::new("nsenter")
        .arg(format!("--uts=/proc/{pid}/ns/uts"))
        .arg("hostname")
        .output()
        .expect("nsenter");
    assert_eq!(
        String::from_utf8_lossy(&h.stdout).trim(),
        "bt-parked",
        "hostname not set at created"
    );
    let _ = t0;
}
