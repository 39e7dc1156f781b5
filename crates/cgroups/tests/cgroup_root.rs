//! Root integration tests: real cgroups, real processes, measured effects. They run on
//! whatever layout the host has (hybrid here, pure v2 in the VM via tests/v2vm/run.sh).
//! Every test uses its own cgroup under /berth-test and removes it even on panic.

mod common;

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use berth_cgroups::events::OomEvent;
use berth_cgroups::{Error, Hierarchy};
use common::*;
use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxMemoryBuilder,
    LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder,
};

fn mem_res(limit: i64, swap: Option<i64>) -> LinuxResources {
    let mut m = LinuxMemoryBuilder::default().limit(limit);
    if let Some(s) = swap {
        m = m.swap(s);
    }
    LinuxResourcesBuilder::default()
        .memory(m.build().unwrap())
        .build()
        .unwrap()
}

#[test]
fn oom_kill_is_measured_and_reported() {
    if skip() {
        return;
    }
    let cg = Cg::new("oom");
    // memory+swap = memory, so the allocation cannot escape into swap.
    match cg.mgr.apply(&mem_res(5 << 20, Some(5 << 20))) {
        Ok(()) => {}
        Err(Error::Unsupported { field, .. }) if field == "memory.swap" => {
            cg.mgr.apply(&mem_res(5 << 20, None)).unwrap()
        }
        Err(e) => panic!("apply: {e}"),
    }
    let mut w = cg.mgr.oom_events().expect("oom watcher");
    assert_eq!(w.wait(Some(Duration::ZERO)).unwrap(), OomEvent::Timeout);
    let bb = busybox();
    let mut child = cg.spawn(&format!(
        "exec {} dd if=/dev/zero of=/dev/null bs=50M count=1",
        bb.display()
    ));
    let st = wait_timeout(&mut child, Duration::from_secs(30));
    eprintln!("MEASURED oom: child status {st:?} signal {:?}", st.signal());
    assert_eq!(
        st.signal(),
        Some(9),
        "allocating 50 MB under a 5 MB limit must be OOM-killed"
    );
    let ev = w.wait(Some(Duration::from_secs(5))).unwrap();
    eprintln!("MEASURED oom: watcher event {ev:?}");
    assert!(matches!(ev, OomEvent::Oom(n) if n >= 1), "{ev:?}");
    let s = cg.mgr.stats().unwrap();
    eprintln!(
        "MEASURED oom: stats oom_kill={} failcnt={}",
        s.memory.event_count.oom_kill, s.memory.usage.failcnt
    );
    assert!(s.memory.event_count.oom_kill >= 1);
    assert_eq!(s.memory.usage.limit, 5 << 20);
}

#[test]
fn pids_limit_stops_fork_bomb() {
    if skip() {
        return;
    }
    let cg = Cg::new("pids");
    let res = LinuxResourcesBuilder::default()
        .pids(LinuxPidsBuilder::default().limit(10i64).build().unwrap())
        .build()
        .unwrap();
    cg.mgr.apply(&res).unwrap();
    // A shell bomb: keeps forking sleepers; forks beyond the limit fail.
    let mut child =
        cg.spawn("i=0; while [ $i -lt 60 ]; do (sleep 3) & i=$((i+1)); done; echo spawned; wait");
    let mut peak = 0;
    let start = Instant::now();
    // Sample for a fixed time: the shell itself may die of a failed fork.
    while start.elapsed() < Duration::from_secs(1) {
        peak = peak.max(cg.mgr.pids().unwrap().len());
        std::thread::sleep(Duration::from_millis(20));
    }
    let s = cg.mgr.stats().unwrap();
    let events = std::fs::read_to_string(cg.dir("pids").join("pids.events")).unwrap_or_default();
    eprintln!(
        "MEASURED pids: peak {peak} pids, stats current={} limit={}, pids.events {:?}",
        s.pids.current,
        s.pids.limit,
        events.trim()
    );
    assert!(peak <= 10, "peak {peak} above pids.max 10");
    assert!(peak >= 5, "the bomb did not run (peak {peak})");
    assert_eq!(s.pids.limit, 10);
    let max_events: u64 = events
        .lines()
        .find_map(|l| l.strip_prefix("max ").and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0);
    assert!(
        max_events > 0,
        "pids.events max should count refused forks: {events:?}"
    );
    cg.mgr.kill_all(9).unwrap();
    let st = wait_timeout(&mut child, Duration::from_secs(10));
    let err = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    eprintln!(
        "MEASURED pids: bomb shell {st:?}, stderr {:?}",
        err.lines().next()
    );
    assert!(!st.success());
}

#[test]
fn cpu_quota_throttles() {
    if skip() {
        return;
    }
    let cg = Cg::new("cpu");
    let cpu = LinuxCpuBuilder::default()
        .quota(10000i64)
        .period(100000u64)
        .build()
        .unwrap();
    cg.mgr
        .apply(&LinuxResourcesBuilder::default().cpu(cpu).build().unwrap())
        .unwrap();
    let mut child = cg.spawn("while :; do :; done");
    std::thread::sleep(Duration::from_millis(1500));
    let s = cg.mgr.stats().unwrap();
    cg.mgr.kill_all(9).unwrap();
    wait_timeout(&mut child, Duration::from_secs(10));
    eprintln!(
        "MEASURED cpu: periods={} nr_throttled={} throttled_time={}ns usage={}ns in 1.5s wall",
        s.cpu.throttling.periods,
        s.cpu.throttling.throttled_periods,
        s.cpu.throttling.throttled_time,
        s.cpu.usage.total
    );
    assert!(s.cpu.throttling.throttled_periods > 0);
    // 10% of one CPU for 1.5 s is 150 ms; allow generous slack but far below 1.5 s.
    assert!(
        s.cpu.usage.total < 600_000_000,
        "usage {}",
        s.cpu.usage.total
    );
}

#[test]
fn freeze_stops_and_thaw_resumes() {
    if skip() {
        return;
    }
    let cg = Cg::new("freeze");
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("count");
    // The counter is the file's size: appends never leave it unreadable mid-write.
    let mut child = cg.spawn(&format!("while :; do echo x >> {}; done", f.display()));
    let read_n = || -> u64 { std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0) };
    std::thread::sleep(Duration::from_millis(200));
    let before = read_n();
    cg.mgr.freeze().unwrap();
    assert!(cg.mgr.is_frozen().unwrap());
    let a = read_n();
    std::thread::sleep(Duration::from_millis(300));
    let b = read_n();
    cg.mgr.thaw().unwrap();
    assert!(!cg.mgr.is_frozen().unwrap());
    std::thread::sleep(Duration::from_millis(300));
    let c = read_n();
    eprintln!("MEASURED freeze: before={before} frozen {a}->{b} after thaw {c}");
    assert!(a >= before);
    assert_eq!(a, b, "counter moved while frozen");
    assert!(c > b, "counter did not resume after thaw");
    // A frozen cgroup still dies on destroy.
    cg.mgr.freeze().unwrap();
    cg.mgr.destroy().unwrap();
    let st = wait_timeout(&mut child, Duration::from_secs(10));
    assert_eq!(st.signal(), Some(9));
}

#[test]
fn create_refuses_populated_and_destroy_leaves_nothing() {
    if skip() {
        return;
    }
    let cg = Cg::new("busy");
    let sub = cg.dir("memory").join("sub");
    std::fs::create_dir(&sub).unwrap();
    let mut child = cg.spawn("sleep 30");
    let again = berth_cgroups::new_manager(
        &berth_cgroups::CgroupConfig {
            path: Some(&cg.path),
            id: "x",
            systemd: false,
        },
        &cg.h,
    )
    .unwrap();
    assert!(matches!(again.create(), Err(Error::NotEmpty { .. })));
    assert_eq!(cg.mgr.pids().unwrap(), vec![child.id() as i32]);
    cg.mgr.destroy().unwrap();
    let st = wait_timeout(&mut child, Duration::from_secs(10));
    assert_eq!(st.signal(), Some(9));
    for d in cg.mgr.paths().values() {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    // The parents this manager created are gone as well.
    for d in cg.parent_dirs() {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    cg.mgr.destroy().unwrap(); // idempotent
}

#[test]
fn create_destroy_cycles_return_to_baseline() {
    if skip() {
        return;
    }
    let h = berth_cgroups::probe().unwrap();
    let n = 500;
    let parent = format!("/berth-test/cycles-{}", std::process::id());
    let start = Instant::now();
    let base = dir_count(&h, &parent);
    for i in 0..n {
        let p = format!("{parent}/c{i}");
        let m = berth_cgroups::new_manager(
            &berth_cgroups::CgroupConfig {
                path: Some(&p),
                id: "c",
                systemd: false,
            },
            &h,
        )
        .unwrap();
        m.create().unwrap();
        m.destroy().unwrap();
    }
    let after = dir_count(&h, &parent);
    eprintln!("MEASURED cycles: {n} create/destroy in {:?}, dirs of {parent} in all hierarchies before {base} after {after}", start.elapsed());
    assert_eq!(base, after);
}

#[test]
fn default_path_removes_berth_parent() {
    if skip() {
        return;
    }
    let h = berth_cgroups::probe().unwrap();
    let id = format!("cgt-default-{}", std::process::id());
    let m = berth_cgroups::new_manager(
        &berth_cgroups::CgroupConfig {
            path: None,
            id: &id,
            systemd: false,
        },
        &h,
    )
    .unwrap();
    assert_eq!(m.path(), format!("/berth/{id}"));
    let parent_existed: Vec<bool> = m
        .paths()
        .values()
        .map(|d| d.parent().unwrap().exists())
        .collect();
    m.create().unwrap();
    m.destroy().unwrap();
    for (d, existed) in m.paths().values().zip(parent_existed) {
        assert!(!d.exists());
        if !existed {
            assert!(
                !d.parent().unwrap().exists(),
                "{} left",
                d.parent().unwrap().display()
            );
        }
    }
}

#[test]
fn device_rules_are_enforced() {
    if skip() {
        return;
    }
    device_rules_on(Cg::new("dev"));
}

#[test]
fn device_rules_are_enforced_by_bpf_on_unified_mount() {
    if skip() {
        return;
    }
    let Some(h) = unified_only() else {
        eprintln!("not hybrid: the v2 path is covered by device_rules_are_enforced");
        return;
    };
    device_rules_on(Cg::new_in(h, "devbpf"));
}

fn device_rules_on(cg: Cg) {
    let rules = vec![
        LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .unwrap(),
        LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .access("rw")
            .build()
            .unwrap(),
    ];
    match cg.mgr.apply(
        &LinuxResourcesBuilder::default()
            .devices(rules)
            .build()
            .unwrap(),
    ) {
        Ok(()) => {}
        Err(Error::Unsupported { field, reason })
            if !cfg!(feature = "bpf") && !cg.mgr.paths().contains_key("devices") =>
        {
            eprintln!("v2 devices need the bpf feature: {field}: {reason}");
            return;
        }
        Err(e) => panic!("apply devices: {e} ({:?})", std::error::Error::source(&e)),
    }
    if let Some(d) = cg.mgr.paths().get("devices") {
        let list = read(&d.join("devices.list"));
        eprintln!("MEASURED devices.list: {:?}", list.trim());
        assert_eq!(list.trim(), "c 1:3 rw");
    }
    let t = tempfile::tempdir().unwrap();
    let allowed = t.path().join("null");
    let denied = t.path().join("zero");
    for (p, minor) in [(&allowed, 3), (&denied, 5)] {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            p.as_path(),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o666),
            rustix::fs::makedev(1, minor),
        )
        .unwrap();
    }
    let mut child = cg.spawn(&format!(
        "echo hi > {a} && echo ALLOWED_OK; head -c 1 {d} >/dev/null && echo DENIED_OPENED; exit 0",
        a = allowed.display(),
        d = denied.display()
    ));
    let st = wait_timeout(&mut child, Duration::from_secs(10));
    let out = std::io::read_to_string(child.stdout.take().unwrap()).unwrap();
    let err = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    eprintln!("MEASURED devices: status {st:?} stdout {out:?} stderr {err:?}");
    assert!(out.contains("ALLOWED_OK"), "allowed node unusable: {err}");
    assert!(!out.contains("DENIED_OPENED"), "denied node opened");
    assert!(err.contains("Operation not permitted"), "{err}");

    // Updating the rules replaces the old policy (v1: a transition; v2: the old program
    // is detached after the new one is attached).
    let rules = vec![
        LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .unwrap(),
        LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .access("rw")
            .build()
            .unwrap(),
        LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(5)
            .access("r")
            .build()
            .unwrap(),
    ];
    cg.mgr
        .apply(
            &LinuxResourcesBuilder::default()
                .devices(rules)
                .build()
                .unwrap(),
        )
        .unwrap();
    let mut child = cg.spawn(&format!(
        "head -c 1 {d} >/dev/null && echo ZERO_READ; echo x > {d} || echo ZERO_WRITE_DENIED",
        d = denied.display()
    ));
    wait_timeout(&mut child, Duration::from_secs(10));
    let out = std::io::read_to_string(child.stdout.take().unwrap()).unwrap();
    eprintln!("MEASURED devices after update: stdout {out:?}");
    assert!(
        out.contains("ZERO_READ") && out.contains("ZERO_WRITE_DENIED"),
        "{out}"
    );
    if let Some(d) = cg.mgr.paths().get("devices") {
        let list = read(&d.join("devices.list"));
        let mut lines: Vec<&str> = list.lines().collect();
        lines.sort();
        assert_eq!(lines, vec!["c 1:3 rw", "c 1:5 r"]);
    }
}

#[test]
fn unified_keys_with_traversal_are_rejected() {
    if skip() {
        return;
    }
    let cg = Cg::new("unified");
    for k in ["../../cgroup.procs", "hugetlb.2MB/../../x"] {
        let res = LinuxResourcesBuilder::default()
            .unified(HashMap::from([(k.to_string(), "1".to_string())]))
            .build()
            .unwrap();
        let e = cg.mgr.apply(&res).unwrap_err();
        assert!(
            matches!(e, Error::Invalid { .. } | Error::Unsupported { .. }),
            "{k}: {e}"
        );
    }
}

#[test]
fn hugetlb_limit_lands_where_the_controller_is() {
    if skip() {
        return;
    }
    let cg = Cg::new("huge");
    let hp = oci_spec::runtime::LinuxHugepageLimitBuilder::default()
        .page_size("2MB")
        .limit(4i64 << 20)
        .build()
        .unwrap();
    match cg.mgr.apply(
        &LinuxResourcesBuilder::default()
            .hugepage_limits(vec![hp])
            .build()
            .unwrap(),
    ) {
        Ok(()) => {}
        Err(Error::Unsupported { field, reason }) => {
            eprintln!("no hugetlb here ({field}: {reason})");
            return;
        }
        Err(e) => panic!("{e}"),
    }
    let p = cg.mgr.paths();
    let file = match (&cg.h, p.get("hugetlb")) {
        (_, Some(d)) => d.join("hugetlb.2MB.limit_in_bytes"),
        (Hierarchy::Hybrid { .. } | Hierarchy::V2 { .. }, None) => p[""].join("hugetlb.2MB.max"),
        _ => unreachable!(),
    };
    assert_eq!(read(&file).trim(), (4u64 << 20).to_string());
    eprintln!(
        "MEASURED hugetlb: {} = {}",
        file.display(),
        read(&file).trim()
    );
}

#[test]
fn stats_and_kill_all_with_sigterm() {
    if skip() {
        return;
    }
    let cg = Cg::new("stats");
    let mut child = cg.spawn("trap 'exit 7' TERM; while :; do sleep 0.05; done");
    std::thread::sleep(Duration::from_millis(200));
    let s = cg.mgr.stats().unwrap();
    assert!(s.pids.current >= 1);
    assert!(s.memory.usage.usage > 0);
    let json = serde_json::to_value(&s).unwrap();
    assert!(json["memory"]["usage"]["limit"].is_u64());
    cg.mgr.kill_all(15).unwrap();
    let st = wait_timeout(&mut child, Duration::from_secs(10));
    assert_eq!(st.code(), Some(7), "{st:?}");
    assert!(
        !cg.mgr.is_frozen().unwrap(),
        "kill_all must leave the cgroup thawed"
    );
}

#[test]
fn v2_freeze_and_kill_on_unified_mount() {
    if skip() {
        return;
    }
    let Some(h) = unified_only() else {
        eprintln!("not hybrid: v2 freeze/kill are covered by the other tests");
        return;
    };
    let cg = Cg::new_in(h, "v2fk");
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("count");
    let mut child = cg.spawn(&format!("while :; do echo x >> {}; done", f.display()));
    let n = || std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0);
    std::thread::sleep(Duration::from_millis(200));
    cg.mgr.freeze().unwrap();
    assert!(cg.mgr.is_frozen().unwrap());
    let a = n();
    std::thread::sleep(Duration::from_millis(300));
    let b = n();
    cg.mgr.thaw().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let c = n();
    eprintln!("MEASURED v2 freeze (unified mount): frozen {a}->{b}, after thaw {c}");
    assert_eq!(a, b);
    assert!(c > b);
    cg.mgr.freeze().unwrap();
    cg.mgr.kill_all(9).unwrap(); // cgroup.kill, works on frozen v2 cgroups
    let st = wait_timeout(&mut child, Duration::from_secs(10));
    assert_eq!(st.signal(), Some(9));
}

#[test]
fn oom_watcher_reports_gone_after_destroy() {
    if skip() {
        return;
    }
    let cg = Cg::new("oomgone");
    let mut w = cg.mgr.oom_events().unwrap();
    assert_eq!(
        w.wait(Some(Duration::from_millis(10))).unwrap(),
        OomEvent::Timeout
    );
    cg.mgr.destroy().unwrap();
    let ev = w.wait(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(ev, OomEvent::Gone);
}

/// `exec --cgroup sub` on cgroup v2 (the unified mount alone on a hybrid host): the
/// process lands in the existing sub-cgroup; a missing one cannot be joined.
#[test]
fn v2_exec_sub_cgroup_is_joined_below_the_container() {
    if skip() {
        return;
    }
    let h = unified_only().unwrap_or_else(|| berth_cgroups::probe().expect("probe"));
    let cg = Cg::new_in(h, "v2sub");
    let paths = cg.mgr.paths();
    let Some(base) = paths.get("").cloned() else {
        eprintln!("no cgroup v2 hierarchy here");
        return;
    };
    std::fs::create_dir(base.join("sub")).unwrap();
    let mut child = cg.spawn("sleep 30");
    let sub = berth_cgroups::parse_sub_cgroups(&["sub".to_string()]).unwrap();
    let dirs = berth_cgroups::sub_cgroup_paths(&paths, &sub).unwrap();
    assert_eq!(dirs[""], base.join("sub"));
    std::fs::write(dirs[""].join("cgroup.procs"), child.id().to_string()).unwrap();
    let own = read(std::path::Path::new(&format!(
        "/proc/{}/cgroup",
        child.id()
    )));
    let line = own.lines().find(|l| l.starts_with("0::")).unwrap_or("");
    assert_eq!(line, format!("0::{}/sub", cg.path), "{own}");
    // A missing sub-cgroup is not made: joining it fails.
    let none = berth_cgroups::parse_sub_cgroups(&["nosuch".to_string()]).unwrap();
    let dirs = berth_cgroups::sub_cgroup_paths(&paths, &none).unwrap();
    let e = std::fs::OpenOptions::new()
        .write(true)
        .open(dirs[""].join("cgroup.procs"))
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    cg.mgr.destroy().unwrap();
    let st = wait_timeout(&mut child, Duration::from_secs(10));
    assert_eq!(st.signal(), Some(9));
}
