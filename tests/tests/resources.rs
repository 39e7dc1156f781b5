//! Issue 3: cgroup resources measured on this hybrid host (v1 controllers + cgroup2 with
//! hugetlb only): the OOM kill and its event, pids, cpu throttling, update, pause/resume,
//! delete --force of a paused container, stats, device rules, and 500 cycles without a leak.
//! The same checks run on cgroup v2 in tests/v2vm/run.sh.

use berth_tests::*;
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(10);

/// The container's directory in the hierarchy that holds `file` (v1 controller dir or unified).
fn cg_file(b: &Bundle, file: &str) -> PathBuf {
    let cg = b.cgroups_path().expect("cgroupsPath");
    cgroup_dirs(&cg)
        .into_iter()
        .map(|d| d.join(file))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no {file} in any hierarchy for {cg}"))
}

fn read(p: &Path) -> String {
    fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// A key of a flat-keyed cgroup file ("nr_throttled 5").
fn keyed(p: &Path, key: &str) -> u64 {
    read(p)
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("no {key} in {}", p.display()))
}

/// `events --stats ID` parsed, checking runc's envelope.
#[track_caller]
fn stats(rt: &Runtime, id: &str) -> Value {
    let o = rt.cmd(&["events", "--stats", id]);
    o.ok();
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one event line expected:{o}");
    let v: Value = serde_json::from_str(lines[0]).expect("event is JSON");
    assert_eq!(v["type"], "stats", "{v}");
    assert_eq!(v["id"], id, "{v}");
    for k in [
        "cpu",
        "cpuset",
        "memory",
        "pids",
        "blkio",
        "hugetlb",
        "intel_rdt",
    ] {
        assert!(v["data"].get(k).is_some(), "no data.{k} in {v}");
    }
    v["data"].clone()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// A counter the container writes to /tmp/c in a loop, read from the host through the rootfs.
fn counter(b: &Bundle) -> Option<u64> {
    fs::read_to_string(b.rootfs().join("tmp/c"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Wait until the counter has advanced past `from`.
fn advances(b: &Bundle, from: u64, within: Duration) -> Option<u64> {
    wait_for(within, || counter(b).filter(|c| *c > from))
}

/// Event lines written so far by a spawned `events`.
fn event_lines(p: &Path) -> Vec<Value> {
    fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

const MIB: i64 = 1024 * 1024;

#[test]
fn memory_limit_oom_kills_init_run_exits_137_and_events_reports_oom() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let id = unique("oom");
    b.set("/linux/resources/memory", json!({"limit": 5 * MIB}));
    // Wait for the host's go (so `events` is attached first), then allocate 50 MB as init.
    b.sh("while [ ! -e /tmp/go ]; do sleep 0.05; done; exec dd if=/dev/zero of=/dev/null bs=50M count=1");
    let (_, run) = rt.spawn_run(&id, &b);
    rt.wait_status(&id, "running", T);
    assert_eq!(
        read(&cg_file(&b, "memory.limit_in_bytes")),
        (5 * MIB).to_string(),
        "the limit is in the cgroup"
    );
    let (_, ev, ev_out, ev_err) = rt.spawn(&["events", "--interval", "100ms", &id]);
    // The first stats line shows the watcher is armed (it is set up before the loop).
    let first = wait_for(T, || event_lines(&ev_out).into_iter().next()).unwrap_or_else(|| {
        panic!(
            "events printed nothing; stderr: {}",
            fs::read_to_string(&ev_err).unwrap_or_default()
        )
    });
    assert_eq!(first["type"], "stats");
    assert_eq!(
        u(&first["data"]["memory"]["usage"]["limit"]),
        5 * MIB as u64
    );
    fs::write(b.rootfs().join("tmp/go"), "").unwrap();
    let st = rt.wait_child(run, Duration::from_secs(30));
    assert_eq!(
        st.code(),
        Some(137),
        "run must exit 128+SIGKILL; stderr: {}",
        rt.container_stderr(&id)
    );
    let est = rt.wait_child(ev, T);
    assert!(
        est.success(),
        "events must end cleanly when the container stops: {est:?}"
    );
    let lines = event_lines(&ev_out);
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "oom" && l["id"] == id.as_str() && l.get("data").is_none()),
        "no oom event in {lines:?}; stderr: {}",
        fs::read_to_string(&ev_err).unwrap_or_default()
    );
}

#[test]
fn pids_limit_stops_a_fork_bomb() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let id = unique("pids");
    let limit = 20;
    b.set("/linux/resources/pids", json!({"limit": limit}));
    // A bounded bomb (harmless should the limit not hold): 200 background sleeps from a
    // child shell, which dies at its first failed fork; init then sleeps on.
    b.sh("sh -c 'i=0; while [ $i -lt 200 ]; do sleep 60 & i=$((i+1)); done'; echo bomb-over; exec sleep 60");
    rt.run_detached(&id, &b).ok();
    rt.wait_stdout(&id, "bomb-over", T);
    assert!(
        rt.container_stderr(&id).contains("can't fork"),
        "the bomb should have hit the limit; stderr: {}",
        rt.container_stderr(&id)
    );
    let cur: u64 = read(&cg_file(&b, "pids.current")).parse().unwrap();
    let max = read(&cg_file(&b, "pids.max"));
    let events = keyed(&cg_file(&b, "pids.events"), "max");
    println!("pids.max {max}, pids.current {cur}, pids.events max {events}");
    assert_eq!(max, limit.to_string());
    assert!(cur <= limit, "pids.current {cur} over the limit {limit}");
    assert!(
        cur >= limit - 2,
        "the bomb should have filled the limit: {cur}"
    );
    assert!(events > 0, "pids.events max should count refused forks");
    let s = stats(&rt, &id);
    assert_eq!(u(&s["pids"]["limit"]), limit);
    assert_eq!(u(&s["pids"]["current"]), cur);
}

#[test]
fn cpu_quota_throttles() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let id = unique("cpu");
    // 10% of one CPU.
    b.set(
        "/linux/resources/cpu",
        json!({"quota": 10000, "period": 100000}),
    );
    b.sh("while :; do :; done");
    rt.run_detached(&id, &b).ok();
    let s0 = stats(&rt, &id);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    let s1 = stats(&rt, &id);
    let wall = t0.elapsed().as_nanos() as f64;
    let used = (u(&s1["cpu"]["usage"]["total"]) - u(&s0["cpu"]["usage"]["total"])) as f64;
    let share = used / wall;
    let thr = &s1["cpu"]["throttling"];
    println!(
        "cpu share {:.3} of one cpu, periods {}, throttled {} ({} ns)",
        share, thr["periods"], thr["throttledPeriods"], thr["throttledTime"]
    );
    assert!(u(&thr["throttledPeriods"]) > 0, "not throttled: {thr}");
    assert!(u(&thr["throttledTime"]) > 0, "no throttled time: {thr}");
    assert!(
        keyed(&cg_file(&b, "cpu.stat"), "nr_throttled") > 0,
        "cpu.stat nr_throttled"
    );
    assert!(
        share < 0.25,
        "a busy loop under a 10% quota used {share:.2} of a cpu"
    );
    assert!(
        share > 0.02,
        "the busy loop did not run at all ({share:.3})"
    );
}

#[test]
fn update_changes_limits_of_a_running_container() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let id = unique("upd");
    b.set("/linux/resources/memory", json!({"limit": 256 * MIB}));
    b.set("/linux/resources/pids", json!({"limit": 100}));
    b.probe(&["sleep", "60"]);
    rt.run_detached(&id, &b).ok();
    rt.cmd(&[
        "update",
        "--memory",
        "64m",
        "--memory-reservation",
        "32M",
        "--cpu-quota",
        "20000",
        "--cpu-period",
        "100000",
        "--cpu-share",
        "512",
        "--pids-limit",
        "33",
        &id,
    ])
    .ok();
    assert_eq!(
        read(&cg_file(&b, "memory.limit_in_bytes")),
        (64 * MIB).to_string()
    );
    assert_eq!(
        read(&cg_file(&b, "memory.soft_limit_in_bytes")),
        (32 * MIB).to_string()
    );
    assert_eq!(read(&cg_file(&b, "cpu.cfs_quota_us")), "20000");
    assert_eq!(read(&cg_file(&b, "cpu.cfs_period_us")), "100000");
    assert_eq!(read(&cg_file(&b, "cpu.shares")), "512");
    assert_eq!(read(&cg_file(&b, "pids.max")), "33");
    // Unlimited again, with runc's -1.
    rt.cmd(&["update", "--cpu-quota", "-1", "--pids-limit", "-1", &id])
        .ok();
    assert_eq!(read(&cg_file(&b, "cpu.cfs_quota_us")), "-1");
    assert_eq!(read(&cg_file(&b, "pids.max")), "max");
    // -r FILE with a LinuxResources document.
    let f = rt.work().join("res.json");
    fs::write(
        &f,
        r#"{"memory":{"limit":100000000},"cpu":{"shares":0,"quota":0,"cpus":"0"},"blockIO":{"weight":0},"pids":{"limit":44}}"#,
    )
    .unwrap();
    rt.cmd(&["update", "-r", f.to_str().unwrap(), &id]).ok();
    let lim: u64 = read(&cg_file(&b, "memory.limit_in_bytes")).parse().unwrap();
    assert!(
        (99_995_000..=100_000_000).contains(&lim),
        "limit {lim} (rounded to pages)"
    );
    assert_eq!(read(&cg_file(&b, "cpuset.cpus")), "0");
    assert_eq!(read(&cg_file(&b, "pids.max")), "44");
    assert_eq!(read(&cg_file(&b, "cpu.shares")), "512", "0 means unchanged");
    // Clear refusals, and the container keeps its limits.
    for (args, needle) in [
        (vec!["--kernel-memory", "1m"], "kernel-memory"),
        (vec!["--l3-cache-schema", "L3:0=f"], "RDT"),
        (vec!["--mem-bw-schema", "MB:0=50"], "RDT"),
        (vec!["--memory", "12q"], "--memory"),
        (vec!["--cpu-share", "x"], "--cpu-share"),
    ] {
        let mut a = vec!["update"];
        a.extend(args);
        a.push(&id);
        rt.cmd(&a).failed().errors_contain(needle);
    }
    let bad = rt.work().join("bad.json");
    fs::write(&bad, r#"{"memory":{"limit":"lots"}}"#).unwrap();
    rt.cmd(&["update", "-r", bad.to_str().unwrap(), &id])
        .failed();
    assert_eq!(read(&cg_file(&b, "pids.max")), "44");
    // A stopped container cannot be updated.
    rt.kill(&id, "KILL").ok();
    rt.wait_status(&id, "stopped", T);
    rt.cmd(&["update", "--memory", "32m", &id])
        .failed()
        .errors_contain("container not running");
    rt.cmd(&["events", "--stats", &id]).failed();
}

#[test]
fn pause_freezes_the_counter_and_resume_thaws_it() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let id = unique("pause");
    b.readonly_root(false);
    b.sh("i=0; while :; do i=$((i+1)); echo $i > /tmp/c.new; mv /tmp/c.new /tmp/c; done");
    rt.run_detached(&id, &b).ok();
    let c0 = advances(&b, 0, T).expect("counter starts");
    advances(&b, c0, T).expect("counter advances");
    rt.cmd(&["pause", &id]).ok();
    assert_eq!(rt.status(&id).as_deref(), Some("paused"));
    assert_eq!(read(&cg_file(&b, "freezer.state")), "FROZEN");
    let p0 = counter(&b).expect("counter");
    std::thread::sleep(Duration::from_millis(700));
    let p1 = counter(&b).expect("counter");
    println!("paused: counter {p0} -> {p1} in 700 ms");
    assert_eq!(p0, p1, "the counter advanced while paused");
    rt.cmd(&["resume", &id]).ok();
    assert_eq!(rt.status(&id).as_deref(), Some("running"));
    let r = advances(&b, p1, T).expect("the counter does not advance after resume");
    println!("resumed: counter {p1} -> {r}");
}

#[test]
fn delete_force_removes_a_paused_container() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let id = unique("pausedel");
    b.sh("sleep 60 & sleep 60 & exec sleep 60");
    rt.run_detached(&id, &b).ok();
    let pid = rt.pid(&id);
    rt.cmd(&["pause", &id]).ok();
    assert_eq!(rt.status(&id).as_deref(), Some("paused"));
    let cg = b.cgroups_path().unwrap();
    let pids: Vec<i32> = read(&cg_file(&b, "cgroup.procs"))
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect();
    assert!(pids.len() >= 3, "{pids:?}");
    rt.delete_force(&id).ok();
    assert!(!rt.state_out(&id).success(), "state after delete --force");
    assert!(
        cgroup_dirs(&cg).is_empty(),
        "cgroup left: {:?}",
        cgroup_dirs(&cg)
    );
    for p in pids.iter().chain([&pid]) {
        assert!(
            wait_for(T, || (!pid_alive(*p)).then_some(())).is_some(),
            "process {p} survived delete --force"
        );
    }
}

#[test]
fn stats_numbers_move_when_the_container_works() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let id = unique("stats");
    b.readonly_root(false);
    b.sh("while [ ! -e /tmp/go ]; do sleep 0.05; done; i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; dd if=/dev/zero of=/tmp/big bs=1M count=16 2>/dev/null; sleep 60 & touch /tmp/done; exec sleep 60");
    rt.run_detached(&id, &b).ok();
    let s0 = stats(&rt, &id);
    fs::write(b.rootfs().join("tmp/go"), "").unwrap();
    wait_for(Duration::from_secs(30), || {
        b.rootfs().join("tmp/done").exists().then_some(())
    })
    .expect("the work finished");
    let s1 = stats(&rt, &id);
    let cpu = |s: &Value| u(&s["cpu"]["usage"]["total"]);
    let maxmem = |s: &Value| u(&s["memory"]["usage"]["max"]);
    println!(
        "cpu total {} -> {} ns, memory max {} -> {}, pids {} -> {}",
        cpu(&s0),
        cpu(&s1),
        maxmem(&s0),
        maxmem(&s1),
        s0["pids"]["current"],
        s1["pids"]["current"]
    );
    assert!(cpu(&s1) > cpu(&s0) + 50_000_000, "cpu usage did not move");
    assert!(
        maxmem(&s1) > maxmem(&s0) + 8 * MIB as u64,
        "memory high-water mark did not move"
    );
    assert!(u(&s0["pids"]["current"]) >= 1);
    assert!(u(&s1["pids"]["current"]) >= 2);
    assert!(!s1["cpuset"]["cpus"].as_array().unwrap().is_empty());
}

/// The host's /dev/kmsg (char 1:11, not one of runc's implicit allows) bind-mounted to
/// /dev/kmsgx, so that only linux.resources.devices decides (berth-runtime also allows every
/// linux.devices entry, which runc does not: see docs/cgroups.md). Opening it for writing
/// writes nothing.
fn kmsg_bundle(allow: bool) -> Bundle {
    let mut b = Bundle::busybox();
    b.mount("/dev/kmsgx", "bind", "/dev/kmsg", &["bind"]);
    if allow {
        let mut rules = b.config["linux"]["resources"]["devices"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        rules.push(json!({"allow": true, "type": "c", "major": 1, "minor": 11, "access": "w"}));
        b.set("/linux/resources/devices", json!(rules));
    }
    b.sh("if true > /dev/null; then echo null-ok; fi; if true > /dev/kmsgx; then echo kmsgx-open; else echo kmsgx-denied; fi; sleep 60");
    b
}

#[test]
fn device_rules_deny_open_outside_the_allow_list_and_allow_inside() {
    let rt = Runtime::new();
    let deny = kmsg_bundle(false);
    let allow = kmsg_bundle(true);
    let (d, a) = (unique("devdeny"), unique("devallow"));
    rt.run_detached(&d, &deny).ok();
    rt.run_detached(&a, &allow).ok();
    let out = rt.wait_stdout(&d, "kmsgx-", T);
    assert!(out.contains("null-ok"), "implicit /dev/null denied: {out}");
    assert!(
        out.contains("kmsgx-denied"),
        "open outside the allow list worked: {out}"
    );
    assert!(
        rt.container_stderr(&d).contains("Operation not permitted"),
        "EPERM expected: {}",
        rt.container_stderr(&d)
    );
    let out = rt.wait_stdout(&a, "kmsgx-", T);
    assert!(
        out.contains("kmsgx-open"),
        "open inside the allow list failed: {out} {}",
        rt.container_stderr(&a)
    );
    // The rule is in the v1 devices controller of the allowed container only.
    let list = |b: &Bundle| read(&cg_file(b, "devices.list"));
    assert!(
        list(&allow).lines().any(|l| l == "c 1:11 w"),
        "{}",
        list(&allow)
    );
    assert!(!list(&deny).contains("1:11"), "{}", list(&deny));
}

/// Every cgroup directory (any hierarchy) at or below `/berth-test/<base>`.
fn dirs_below(base: &str) -> usize {
    fn walk(d: &Path) -> usize {
        1 + fs::read_dir(d)
            .map(|it| {
                it.filter_map(Result::ok)
                    .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                    .map(|e| walk(&e.path()))
                    .sum()
            })
            .unwrap_or(0)
    }
    cgroup_dirs(base).iter().map(|d| walk(d)).sum()
}

/// Every cgroup directory of the host whose name carries `token` (a leak outside the base).
fn dirs_named(token: &str) -> Vec<PathBuf> {
    fn walk(d: &Path, token: &str, out: &mut Vec<PathBuf>) {
        if let Ok(it) = fs::read_dir(d) {
            for e in it.filter_map(Result::ok) {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    let p = e.path();
                    if e.file_name().to_string_lossy().contains(token) {
                        out.push(p.clone());
                    }
                    walk(&p, token, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    for mp in cgroup_mounts() {
        walk(&mp, token, &mut out);
    }
    out
}

#[test]
fn five_hundred_cycles_leave_no_cgroup_behind() {
    const N: usize = 500;
    const WORKERS: usize = 4;
    let b0 = Bundle::busybox();
    let base = b0.cgroup_base().to_string();
    let token = unique("cyc");
    // The shared parent exists first in every hierarchy (removed by b0's guard), so that no
    // worker's cgroup manager owns it and the count below is a fixed baseline.
    for mp in cgroup_mounts() {
        fs::create_dir_all(mp.join(base.trim_start_matches('/'))).unwrap();
    }
    let before = dirs_below(&base);
    let named_before = dirs_named(&token).len();
    let t0 = Instant::now();
    // A few workers in parallel, each with its own runtime root and bundle, cycling
    // create/start/delete with a fresh container id and cgroup below the shared base.
    std::thread::scope(|s| {
        for w in 0..WORKERS {
            let (base, token) = (base.clone(), token.clone());
            s.spawn(move || {
                let rt = Runtime::new();
                let mut b = Bundle::busybox();
                b.args(&["/bin/true"]);
                for i in (w..N).step_by(WORKERS) {
                    let id = format!("{token}-{i}");
                    b.cgroups_path_set(&format!("{base}/{id}"));
                    rt.create(&id, &b).ok();
                    rt.start(&id).ok();
                    rt.delete_force(&id).ok();
                    assert!(!rt.state_out(&id).success(), "{id} still exists");
                }
            });
        }
    });
    let took = t0.elapsed();
    let after = dirs_below(&base);
    let named = dirs_named(&token);
    println!(
        "{N} create/start/delete cycles ({WORKERS} workers) in {:.1} s ({:.0} ms/cycle); \
         cgroup dirs under {base}: {before} before, {after} after; named dirs: {named_before} -> {}",
        took.as_secs_f64(),
        took.as_secs_f64() * 1000.0 / N as f64,
        named.len()
    );
    assert_eq!(after, before, "cgroup directories leaked under {base}");
    assert!(named.is_empty(), "cgroup directories leaked: {named:?}");
}

/// The first real block device's "major:minor" (the root disk here).
fn a_block_device() -> Option<(String, u64, u64)> {
    let mut names: Vec<String> = fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("loop") && !n.starts_with("ram") && !n.starts_with("zram"))
        .collect();
    names.sort();
    let name = names.into_iter().next()?;
    let dev = fs::read_to_string(format!("/sys/block/{name}/dev")).ok()?;
    let (ma, mi) = dev.trim().split_once(':')?;
    Some((name, ma.parse().ok()?, mi.parse().ok()?))
}

#[test]
fn io_weight_and_throttles_land_in_the_right_files() {
    // issue 3: blockIO weight and throttle rules, read back from the cgroup files.
    let (name, ma, mi) = a_block_device().expect("this machine has a block device");
    let rt = Runtime::new();
    // A weight needs CFQ or BFQ (blkio.weight / blkio.bfq.weight); with mq-deadline or
    // kyber the kernel has no such control, and asking for one is a clear error.
    let weight_ok = ["blkio.weight", "blkio.bfq.weight"].iter().any(|f| {
        std::path::Path::new("/sys/fs/cgroup/blkio")
            .join(f)
            .exists()
    });
    if !weight_ok {
        let mut b = Bundle::busybox();
        b.set("/linux/resources/blockIO", json!({"weight": 300}));
        b.probe(&["true"]);
        let o = rt.run_detached(&unique("iow"), &b);
        assert_ne!(
            o.code,
            Some(0),
            "a weight without CFQ/BFQ was accepted: {o}"
        );
        assert!(
            o.stderr.contains("blockIO.weight is not supported here"),
            "{o}"
        );
    }
    let mut b = Bundle::busybox();
    let id = unique("io");
    let mut io = json!({
        "throttleReadBpsDevice": [{"major": ma, "minor": mi, "rate": 1048576}],
        "throttleWriteIOPSDevice": [{"major": ma, "minor": mi, "rate": 77}],
    });
    if weight_ok {
        io["weight"] = json!(300);
    }
    b.set("/linux/resources/blockIO", io);
    b.probe(&["sleep"]);
    rt.run_detached(&id, &b).ok();
    let dev = format!("{ma}:{mi}");
    let rbps = read(&cg_file(&b, "blkio.throttle.read_bps_device"));
    assert!(
        rbps.lines().any(|l| l.trim() == format!("{dev} 1048576")),
        "blkio.throttle.read_bps_device for {name} ({dev}): {rbps:?}"
    );
    let wiops = read(&cg_file(&b, "blkio.throttle.write_iops_device"));
    assert!(
        wiops.lines().any(|l| l.trim() == format!("{dev} 77")),
        "blkio.throttle.write_iops_device: {wiops:?}"
    );
    if !weight_ok {
        return;
    }
    // The weight goes to blkio.weight (CFQ) or blkio.bfq.weight (BFQ).
    let cg = b.cgroups_path().expect("cgroupsPath");
    let w = ["blkio.weight", "blkio.bfq.weight"]
        .iter()
        .flat_map(|f| cgroup_dirs(&cg).into_iter().map(move |d| d.join(f)))
        .find(|p| p.exists())
        .expect("a blkio weight file");
    let wv = read(&w);
    assert!(
        wv.lines()
            .any(|l| l.trim() == "300" || l.trim() == "default 300"),
        "{}: {wv:?}",
        w.display()
    );
}
