//! Issue 2, item 3 (cgroups, minimal): init joins cgroupsPath in every hierarchy before user code
//! runs, and delete removes it.

use berth_tests::*;
use std::fs;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

fn cgroup_lines(pid: i32) -> Vec<(String, String)> {
    fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _id = it.next()?;
            Some((it.next()?.to_string(), it.next()?.to_string()))
        })
        .collect()
}

#[test]
fn init_is_in_cgroups_path_in_every_hierarchy_while_created() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.probe(&["sleep"]);
    let cg = b.cgroups_path().unwrap();
    let id = unique("cgcreated");
    rt.create(&id, &b).ok();
    let pid = rt.pid(&id);
    let lines = cgroup_lines(pid);
    assert!(!lines.is_empty());
    let uni = unified_mounted();
    for (ctrl, path) in &lines {
        if ctrl.is_empty() && !uni {
            // The cgroup2 hierarchy is not mounted here (e.g. the private namespace used to run crun).
            continue;
        }
        assert_eq!(
            path, &cg,
            "init {pid} not in {cg} for {ctrl:?} before start: {lines:?}"
        );
    }
    // Every mounted hierarchy (v1 controllers, name=systemd, unified) has the directory.
    let n_mounts = cgroup_mounts().len();
    assert_eq!(
        cgroup_dirs(&cg).len(),
        n_mounts,
        "dirs {:?} vs {n_mounts} hierarchies",
        cgroup_dirs(&cg)
    );
    for d in cgroup_dirs(&cg) {
        let procs = fs::read_to_string(d.join("cgroup.procs")).unwrap();
        assert!(
            procs.lines().any(|l| l.trim() == pid.to_string()),
            "{pid} not in {}/cgroup.procs: {procs}",
            d.display()
        );
    }
}

#[test]
fn user_process_sees_its_cgroup_from_the_first_instruction() {
    let rt = Runtime::new();
    let b = Bundle::busybox();
    let cg = b.cgroups_path().unwrap();
    let o = rt.run(&unique("cgrun"), &b);
    o.ok();
    let p = o.probe();
    // With a cgroup namespace (what `spec` gives on a pure cgroup v2 host, as
    // runc's does) the container's cgroup is its root "/".
    let want = if b.namespaces().iter().any(|n| n == "cgroup") {
        "/".to_string()
    } else {
        cg.clone()
    };
    for l in managed_cgroup_lines(p["cgroup"].as_str().unwrap()) {
        assert!(l.ends_with(&format!(":{want}")), "{l} not in {want}");
    }
}

#[test]
fn delete_removes_the_cgroup_dirs() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.probe(&["sleep"]);
    let cg = b.cgroups_path().unwrap();
    let id = unique("cgdelete");
    rt.run_detached(&id, &b).ok();
    assert!(!cgroup_dirs(&cg).is_empty());
    rt.kill(&id, "KILL").ok();
    rt.wait_status(&id, "stopped", T);
    rt.delete(&id).ok();
    assert!(
        cgroup_dirs(&cg).is_empty(),
        "delete left {:?}",
        cgroup_dirs(&cg)
    );
}

#[test]
fn foreground_run_removes_the_cgroup_dirs() {
    let rt = Runtime::new();
    let b = Bundle::busybox();
    let cg = b.cgroups_path().unwrap();
    rt.run(&unique("cgrunrm"), &b).ok();
    assert!(
        cgroup_dirs(&cg).is_empty(),
        "run left {:?}",
        cgroup_dirs(&cg)
    );
}

#[test]
fn nested_cgroups_path_is_created() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let base = b.cgroup_base().to_string();
    let nested = format!("{base}/a/b");
    b.cgroups_path_set(&nested);
    let o = rt.run(&unique("cgnested"), &b);
    o.ok();
    let p = o.probe();
    let want = if b.namespaces().iter().any(|n| n == "cgroup") {
        "/".to_string()
    } else {
        nested.clone()
    };
    for l in managed_cgroup_lines(p["cgroup"].as_str().unwrap()) {
        assert!(l.ends_with(&format!(":{want}")), "{l}");
    }
}

// Fails under runc 1.1.5, which only warns ("container's cgroup is not empty ... won't be supported
// in runc 1.2"); runc 1.2 refuses. security-bar REL-13: refuse a non-empty cgroup.
#[test]
fn two_containers_cannot_share_a_cgroup_silently() {
    let rt = Runtime::new();
    let mut a = Bundle::busybox();
    a.probe(&["sleep"]);
    rt.run_detached(&unique("cgowner"), &a).ok();
    let mut b = Bundle::busybox();
    b.cgroups_path_set(&a.cgroups_path().unwrap());
    // runc 1.1 (issue 19 item 3): not refused, but not silent either: a warning names it.
    let o = rt.run(&unique("cgintruder"), &b);
    o.ok();
    assert!(
        o.errors().contains("cgroup is not empty"),
        "no warning about the shared cgroup:{o}"
    );
}
