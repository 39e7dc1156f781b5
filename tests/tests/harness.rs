//! The harness itself: guards leave nothing behind, also when the test panics.

use berth_tests::*;
use std::process::Command;
use std::sync::Mutex;

#[test]
fn guards_clean_up_after_a_panicking_test() {
    let seen: Mutex<Option<(i32, String, std::path::PathBuf, std::path::PathBuf)>> =
        Mutex::new(None);
    let r = std::panic::catch_unwind(|| {
        let rt = Runtime::new();
        let mut b = Bundle::busybox();
        b.probe(&["sleep"]);
        let id = unique("guard");
        rt.run_detached(&id, &b).ok();
        let pid = rt.pid(&id);
        *seen.lock().unwrap() = Some((
            pid,
            b.cgroups_path().unwrap(),
            b.path().to_path_buf(),
            rt.root().to_path_buf(),
        ));
        panic!("simulated test failure");
    });
    assert!(r.is_err());
    let (pid, cg, bundle, root) = seen.lock().unwrap().clone().expect("container was started");
    assert!(!pid_alive(pid), "container init {pid} survived the guards");
    assert!(
        cgroup_dirs(&cg).is_empty(),
        "cgroup {cg} left: {:?}",
        cgroup_dirs(&cg)
    );
    assert!(!bundle.exists(), "bundle dir left");
    assert!(!root.exists(), "state root left");
}

#[test]
fn tagged_processes_outside_the_cgroup_are_killed() {
    let b = Bundle::busybox();
    let (k, v) = b.tag().split_once('=').unwrap();
    let mut stray = Command::new("/bin/sleep")
        .arg("60")
        .env(k, v)
        .spawn()
        .unwrap();
    drop(b);
    let st = wait_timeout(
        &mut stray,
        std::time::Duration::from_secs(5),
        "tagged stray process",
    );
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&st), Some(9));
}

#[test]
fn probe_is_static() {
    let data = std::fs::read(probe_path()).unwrap();
    // A static binary has no PT_INTERP program header, so no interpreter path string.
    let s = String::from_utf8_lossy(&data);
    assert!(
        !s.contains("/lib64/ld-linux-x86-64.so.2"),
        "probe is dynamically linked"
    );
}
