//! Issue 19: berth-runtime as a drop-in for runc. Each test runs one scenario under runc 1.1
//! (`/usr/sbin/runc`, skipped with a printed reason when absent) and under the runtime under
//! test, and asserts that the two agree (exit status, output shape, effect). Named `itemN_...`
//! after the issue's numbering.

use berth_tests::*;
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

const RUNC: &str = "/usr/sbin/runc";
const T: Duration = Duration::from_secs(10);

/// runc, or None (with the reason printed) when it is not installed.
fn runc() -> Option<PathBuf> {
    let p = PathBuf::from(RUNC);
    if p.is_file() {
        Some(p)
    } else {
        eprintln!("skipped: {RUNC} is not installed (apt-get install runc)");
        None
    }
}

/// Run `f` once per runtime: runc first, then the runtime under test. Each gets its own guard
/// (state root, cleanup). Returns (runc's result, ours), or None when runc is missing.
fn both<R>(f: impl Fn(&Runtime) -> R) -> Option<(R, R)> {
    let runc = runc()?;
    let a = {
        let mut rt = Runtime::new();
        rt.path = runc;
        f(&rt)
    };
    let b = {
        let rt = Runtime::new();
        f(&rt)
    };
    Some((a, b))
}

/// A busybox bundle whose process sleeps (a container that stays running).
fn sleeper() -> Bundle {
    let mut b = Bundle::busybox();
    b.args(&["sleep", "100"]);
    b
}

/// The exit code and the first error line's message (runc's `msg="..."` or the text).
fn code_msg(o: &Out) -> (Option<i32>, String) {
    (o.code, msg(o))
}

/// The message of the first error line on stderr: `msg="..."` of runc's logrus shape, unescaped.
fn msg(o: &Out) -> String {
    let e = o.errors();
    let line = e
        .lines()
        .find(|l| l.contains("level=error"))
        .or_else(|| e.lines().find(|l| !l.trim().is_empty()))
        .unwrap_or("")
        .to_string();
    match line.split_once("msg=\"") {
        Some((_, rest)) => {
            let mut out = String::new();
            let mut it = rest.chars();
            while let Some(c) = it.next() {
                match c {
                    '\\' => match it.next() {
                        Some('n') => out.push('\n'),
                        Some('t') => out.push('\t'),
                        Some(n) => out.push(n),
                        None => {}
                    },
                    '"' => break,
                    c => out.push(c),
                }
            }
            out.trim_end().to_string()
        }
        None => line,
    }
}

#[test]
fn item6_failing_exec_exits_255() {
    let Some((runc, ours)) = both(|rt| {
        let b = sleeper();
        let id = unique("i6");
        rt.run_detached(&id, &b).ok();
        // Unknown container, missing binary, bad --pid-file, no command.
        let mut v = vec![
            ("unknown", rt.cmd(&["exec", "no-such-ctr", "true"])),
            ("missing binary", rt.cmd(&["exec", &id, "/no/such/binary"])),
            (
                "bad pid file",
                rt.cmd(&["exec", "--pid-file", "/nonexistent-dir/x/p", &id, "true"]),
            ),
            ("no command", rt.cmd(&["exec", &id])),
        ];
        // A paused container.
        rt.cmd(&["pause", &id]).ok();
        v.push(("paused", rt.cmd(&["exec", &id, "true"])));
        rt.cmd(&["resume", &id]).ok();
        // And the process's own status still comes through.
        v.push(("exit 7", rt.cmd(&["exec", &id, "sh", "-c", "exit 7"])));
        v
    }) else {
        return;
    };
    for ((what, r), (_, o)) in runc.iter().zip(&ours) {
        assert_eq!(
            o.code, r.code,
            "{what}: exit status differs\nrunc:{r}\nours:{o}"
        );
        if r.code == Some(255) {
            assert!(
                msg(o).starts_with("exec failed: "),
                "{what}: runc's \"exec failed: \" prefix missing:{o}"
            );
        }
    }
    let codes: Vec<_> = ours.iter().map(|(w, o)| (*w, o.code)).collect();
    assert_eq!(
        codes,
        [
            ("unknown", Some(255)),
            ("missing binary", Some(255)),
            ("bad pid file", Some(255)),
            ("no command", Some(255)),
            ("paused", Some(255)),
            ("exit 7", Some(7)),
        ]
    );
    // The paused refusal in runc's words.
    assert_eq!(msg(&ours[4].1), msg(&runc[4].1));
}

#[test]
fn item2_kill_all_of_a_stopped_container_exits_0() {
    let Some((runc, ours)) = both(|rt| {
        let mut b = Bundle::busybox();
        b.args(&["true"]);
        let id = unique("i2");
        rt.create(&id, &b).ok();
        rt.start(&id).ok();
        rt.wait_status(&id, "stopped", T);
        let all = rt.cmd(&["kill", "--all", &id, "KILL"]);
        let all_short = rt.cmd(&["kill", "-a", &id, "TERM"]);
        let plain = rt.cmd(&["kill", &id, "KILL"]);
        (code_msg(&all), code_msg(&all_short), code_msg(&plain))
    }) else {
        return;
    };
    assert_eq!(ours, runc);
    assert_eq!(ours.0 .0, Some(0), "kill --all of a stopped container");
    assert_eq!(ours.1 .0, Some(0), "kill -a of a stopped container");
    assert_eq!(
        ours.2,
        (Some(1), "container not running".to_string()),
        "kill without --all keeps the spec's error"
    );
}

#[test]
fn item22_kill_signal_0_is_a_liveness_check() {
    let Some((runc, ours)) = both(|rt| {
        let b = sleeper();
        let id = unique("i22");
        rt.run_detached(&id, &b).ok();
        let live = rt.cmd(&["kill", &id, "0"]);
        let live_all = rt.cmd(&["kill", "--all", &id, "0"]);
        // Signal 0 sends nothing: the container still runs.
        let status = rt.status(&id);
        rt.kill(&id, "KILL").ok();
        rt.wait_status(&id, "stopped", T);
        let dead = rt.cmd(&["kill", &id, "0"]);
        (
            code_msg(&live),
            code_msg(&live_all),
            status,
            code_msg(&dead),
        )
    }) else {
        return;
    };
    assert_eq!(ours, runc);
    assert_eq!(ours.0 .0, Some(0));
    assert_eq!(ours.2.as_deref(), Some("running"));
    assert_eq!(ours.3, (Some(1), "container not running".to_string()));
}

#[test]
fn item8_exec_process_json_without_user_runs_as_root() {
    let Some((runc, ours)) = both(|rt| {
        let mut b = sleeper();
        // The container's own user is not root: the default must not come from it.
        b.user(1000, 1000);
        let id = unique("i8");
        rt.run_detached(&id, &b).ok();
        let p = rt.work().join("process.json");
        fs::write(
            &p,
            serde_json::to_vec(&json!({"args": ["/bin/id"], "cwd": "/"})).unwrap(),
        )
        .unwrap();
        let o = rt.cmd(&["exec", "--process", p.to_str().unwrap(), &id]);
        (o.code, o.stdout.trim().to_string())
    }) else {
        return;
    };
    assert_eq!(ours, runc);
    assert_eq!(ours.0, Some(0));
    assert!(ours.1.starts_with("uid=0(root) gid=0(root)"), "{}", ours.1);
}

#[test]
fn item7_exec_ignore_paused_runs_once_resumed() {
    let Some((runc, ours)) = both(|rt| {
        let b = sleeper();
        let id = unique("i7");
        rt.run_detached(&id, &b).ok();
        rt.cmd(&["pause", &id]).ok();
        let (_, idx, outp, errp) = rt.spawn(&["exec", "--ignore-paused", &id, "echo", "thawed"]);
        // Frozen with the container: no output while it is paused.
        std::thread::sleep(Duration::from_millis(1500));
        let early = fs::read_to_string(&outp).unwrap_or_default();
        rt.cmd(&["resume", &id]).ok();
        let st = rt.wait_child(idx, T);
        (
            early,
            st.code(),
            fs::read_to_string(&outp).unwrap_or_default(),
            msg_of(&errp),
        )
    }) else {
        return;
    };
    assert_eq!(ours, runc);
    assert_eq!(
        ours,
        (
            String::new(),
            Some(0),
            "thawed\n".to_string(),
            String::new()
        )
    );
}

fn msg_of(p: &Path) -> String {
    fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("level=error"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `<rt> spec ARGS` in a fresh directory of the guard's; the config.json it wrote.
fn spec_of(rt: &Runtime, name: &str, args: &[&str]) -> Value {
    let dir = rt.work().join(name);
    fs::create_dir_all(&dir).unwrap();
    let mut a = vec!["spec"];
    a.extend_from_slice(args);
    rt.cmd_in(Some(&dir), &a).ok();
    serde_json::from_slice(&fs::read(dir.join("config.json")).unwrap()).unwrap()
}

/// Every JSON pointer below `v` with its leaf value, for a readable difference.
fn leaves(v: &Value, at: String, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                leaves(x, format!("{at}/{k}"), out);
            }
        }
        x => out.push((at, x.clone())),
    }
}

#[test]
fn item23_plain_spec_is_runcs_and_hardened_is_behind_a_flag() {
    let Some(runc) = runc() else { return };
    let mut r = Runtime::new();
    r.path = runc;
    let theirs = spec_of(&r, "runc", &[]);
    let rt = Runtime::new();
    let ours = spec_of(&rt, "ours", &[]);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    leaves(&theirs, String::new(), &mut a);
    leaves(&ours, String::new(), &mut b);
    // Deliberate: the spec version berth implements and the example hostname.
    let own = |p: &str| p == "/ociVersion" || p == "/hostname";
    a.retain(|(p, _)| !own(p));
    b.retain(|(p, _)| !own(p));
    let only_runc: Vec<_> = a.iter().filter(|x| !b.contains(x)).collect();
    let only_ours: Vec<_> = b.iter().filter(|x| !a.contains(x)).collect();
    assert!(
        only_runc.is_empty() && only_ours.is_empty(),
        "plain spec differs from runc's:\nonly runc: {only_runc:#?}\nonly ours: {only_ours:#?}"
    );
    assert!(
        ours["linux"]["seccomp"].is_null(),
        "plain spec has a seccomp profile"
    );
    // The hardened default: moby's profile, no ambient capabilities.
    let h = spec_of(&rt, "hardened", &["--hardened"]);
    assert_eq!(
        h["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO",
        "{h}"
    );
    assert!(
        h["linux"]["seccomp"]["syscalls"]
            .as_array()
            .is_some_and(|s| s.len() > 10),
        "{h}"
    );
    assert!(
        strs(&h["process"]["capabilities"]["ambient"]).is_empty(),
        "{h}"
    );
    // And a container runs from runc's config unchanged, as from ours.
    let mut b = Bundle::busybox();
    let tag = b.tag().to_string();
    let cg = format!("{}/c", b.cgroup_base());
    b.config = theirs;
    let mut env = strs(&b.config["process"]["env"]);
    env.push(tag);
    b.set("/process/env", json!(env))
        .set("/process/terminal", json!(false))
        .args(&["/bin/probe", "info"])
        .cgroups_path_set(&cg);
    let o = rt.run(&unique("i23"), &b);
    o.ok();
    assert_eq!(
        o.probe()["seccomp"],
        "0",
        "runc's config has no seccomp filter:{o}"
    );
}

/// The section headers of urfave/cli's help in `text`, in order: "NAME:", "USAGE:", "VERSION:",
/// "COMMANDS:", "GLOBAL OPTIONS:", "OPTIONS:" (runc's free-text sections such as a command's
/// EXAMPLE are its own prose and not compared).
fn sections(text: &str) -> Vec<String> {
    const SHAPE: [&str; 6] = [
        "NAME:",
        "USAGE:",
        "VERSION:",
        "COMMANDS:",
        "GLOBAL OPTIONS:",
        "OPTIONS:",
    ];
    text.lines()
        .filter(|l| SHAPE.contains(l))
        .map(String::from)
        .collect()
}

#[test]
fn item20_help_version_unknown_command_and_ps_args_in_runcs_shapes() {
    let Some((runc, ours)) = both(|rt| {
        let name = rt.path.file_name().unwrap().to_string_lossy().into_owned();
        let mut v: Vec<(String, Value)> = Vec::new();
        for flag in ["-v", "--version"] {
            let o = rt.cmd(&[flag]);
            let lines: Vec<&str> = o.stdout.lines().collect();
            v.push((
                flag.into(),
                json!([
                    o.code,
                    lines
                        .first()
                        .is_some_and(|l| l.starts_with(&format!("{name} version "))),
                    lines.get(1).is_some_and(|l| l.starts_with("commit: ")),
                    lines.get(2).is_some_and(|l| l.starts_with("spec: ")),
                    lines.len() >= 4,
                ]),
            ));
        }
        for args in [&["-h"][..], &["--help"], &["kill", "-h"], &["help", "kill"]] {
            let o = rt.cmd(args);
            v.push((args.join(" "), json!([o.code, sections(&o.stdout)])));
        }
        let o = rt.cmd(&["no-such-command"]);
        v.push((
            "unknown".into(),
            json!([o.code, msg(&o), o.stdout.is_empty()]),
        ));
        // ps arguments right after the id, without "--".
        let b = sleeper();
        let id = unique("i20");
        rt.run_detached(&id, &b).ok();
        let o = rt.cmd(&["ps", &id, "-e", "-x"]);
        let header = o.stdout.lines().next().unwrap_or("").to_string();
        let rows = o
            .stdout
            .lines()
            .skip(1)
            .filter(|l| l.contains("sleep 100"))
            .count();
        v.push(("ps -e -x".into(), json!([o.code, header, rows])));
        v
    }) else {
        return;
    };
    assert_eq!(ours, runc);
    let get = |k: &str| ours.iter().find(|(w, _)| w == k).unwrap().1.clone();
    assert_eq!(get("-v"), json!([0, true, true, true, true]));
    assert_eq!(
        get("-h")[1],
        json!([
            "NAME:",
            "USAGE:",
            "VERSION:",
            "COMMANDS:",
            "GLOBAL OPTIONS:"
        ])
    );
    assert_eq!(get("kill -h")[1], json!(["NAME:", "USAGE:", "OPTIONS:"]));
    assert_eq!(
        get("unknown"),
        json!([3, "No help topic for 'no-such-command'", true])
    );
    assert_eq!(get("ps -e -x")[0], 0);
    assert_eq!(get("ps -e -x")[2], 1, "{:?}", get("ps -e -x"));
}

#[test]
fn item21_refusals_in_runcs_words() {
    // One id for both (each runtime has its own state root): messages that name it compare.
    let id = unique("i21");
    let Some((runc, ours)) = both(|rt| {
        let b = sleeper();
        let mut v: Vec<(&str, Out)> = Vec::new();
        rt.run_detached(&id, &b).ok();
        v.push(("exists", rt.run_detached(&id, &b)));
        v.push(("state unknown", rt.cmd(&["state", "no-such-ctr"])));
        v.push(("kill unknown", rt.cmd(&["kill", "no-such-ctr"])));
        v.push(("start running", rt.start(&id)));
        v.push(("resume running", rt.cmd(&["resume", &id])));
        v.push(("delete running", rt.delete(&id)));
        v.push(("unknown signal", rt.cmd(&["kill", &id, "NOSUCHSIG"])));
        rt.cmd(&["pause", &id]).ok();
        v.push(("pause paused", rt.cmd(&["pause", &id])));
        v.push(("start paused", rt.start(&id)));
        v.push(("exec paused", rt.cmd(&["exec", &id, "true"])));
        v.push(("delete paused", rt.delete(&id)));
        rt.cmd(&["resume", &id]).ok();
        rt.kill(&id, "KILL").ok();
        rt.wait_status(&id, "stopped", T);
        v.push(("kill stopped", rt.kill(&id, "TERM")));
        v.push(("pause stopped", rt.cmd(&["pause", &id])));
        v.push(("start stopped", rt.start(&id)));
        v.push(("exec stopped", rt.cmd(&["exec", &id, "true"])));
        v
    }) else {
        return;
    };
    let mut wrong = Vec::new();
    for ((what, r), (_, o)) in runc.iter().zip(&ours) {
        // runc's words, without its "runc run failed: " prefix; ours may name the id after them.
        let theirs = msg(r);
        let theirs = match theirs.split_once(" failed: ") {
            Some((pre, rest)) if pre.starts_with("runc ") => rest.to_string(),
            _ => theirs,
        };
        assert!(!theirs.is_empty(), "{what}: runc printed no error:{r}");
        if o.code != r.code || !msg(o).contains(&theirs) {
            wrong.push(format!(
                "{what}: runc {:?} {theirs:?}, ours {:?} {:?}",
                r.code,
                o.code,
                msg(o)
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn item3_a_cgroup_with_processes_is_warned_about_and_used() {
    let Some((runc, ours)) = both(|rt| {
        let a = sleeper();
        let first = unique("i3a");
        rt.run_detached(&first, &a).ok();
        let mut b = sleeper();
        b.cgroups_path_set(&a.cgroups_path().unwrap());
        let second = unique("i3b");
        let o = rt.run_detached(&second, &b);
        let warned = o
            .errors()
            .lines()
            .any(|l| l.contains("level=warning") && l.contains("cgroup is not empty"));
        // Both containers run, in the one cgroup.
        let cg = |id: &str| {
            fs::read_to_string(format!("/proc/{}/cgroup", rt.pid(id)))
                .unwrap()
                .lines()
                .find(|l| l.contains(":memory:"))
                .map(String::from)
        };
        let same = o.success() && cg(&first).is_some() && cg(&first) == cg(&second);
        let statuses = (rt.status(&first), rt.status(&second));
        // The second is removed first (its delete empties the shared cgroup), then the first.
        rt.delete_force(&second);
        rt.delete_force(&first);
        (o.code, warned, same, statuses)
    }) else {
        return;
    };
    assert_eq!(ours, runc);
    assert_eq!(
        ours,
        (
            Some(0),
            true,
            true,
            (Some("running".to_string()), Some("running".to_string()))
        )
    );
}

#[test]
fn item4_run_keep_keeps_state_and_cgroup_until_delete() {
    let Some((runc, ours)) = both(|rt| {
        let mut b = Bundle::busybox();
        b.args(&["sh", "-c", "exit 3"]);
        let id = unique("i4");
        let o = rt.run_with(&id, &b, &["--keep"]);
        let status = rt.status(&id);
        let cg = b.cgroups_path().unwrap();
        let kept = !cgroup_dirs(&cg).is_empty();
        let listed = rt.list_json().to_string().contains(&id);
        let del = rt.delete(&id);
        let after = (rt.state_out(&id).code, cgroup_dirs(&cg).is_empty());
        (o.code, status, kept, listed, del.code, after)
    }) else {
        return;
    };
    assert_eq!(ours, runc);
    assert_eq!(
        ours,
        (
            Some(3),
            Some("stopped".to_string()),
            true,
            true,
            Some(0),
            (Some(1), true)
        )
    );
}

#[test]
fn item25_rwa_devices_memory_policy_scheduler_io_priority_exec_cpu_affinity() {
    // runc 1.1 predates process.scheduler, ioPriority and execCPUAffinity and ignores them (as
    // any unknown field); the issue asks berth to apply them. So both must run these configs
    // (same exit status), and berth's effect is checked against the kernel's own view.
    let Some((runc, ours)) = both(|rt| {
        let mut b = Bundle::busybox();
        b.args(&[
            "sh",
            "-c",
            "cut -d' ' -f19,41 /proc/$$/stat; ionice -p $$; sleep 100",
        ]);
        let mut devices = b.config["linux"]["resources"]["devices"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        devices.push(json!({"allow": true, "type": "c", "major": 1, "minor": 1, "access": "rwa"}));
        b.set("/linux/resources/devices", json!(devices))
            .set(
                "/linux/memoryPolicy",
                json!({"mode": "MPOL_PREFERRED", "nodes": "0"}),
            )
            .set(
                "/process/scheduler",
                json!({"policy": "SCHED_BATCH", "nice": 5}),
            )
            .set(
                "/process/ioPriority",
                json!({"class": "IOPRIO_CLASS_BE", "priority": 6}),
            )
            .set("/process/execCPUAffinity", json!({"final": "0"}));
        let id = unique("i25");
        let o = rt.run_detached(&id, &b);
        let warned = o
            .errors()
            .lines()
            .any(|l| l.contains("level=warning") && l.contains("memoryPolicy"));
        let mut init = String::new();
        let mut rule = None;
        let mut exec = (None, String::new());
        if o.success() {
            init = rt.wait_stdout(&id, "prio", T);
            let cg = b.cgroups_path().unwrap();
            rule = cgroup_dirs(&cg)
                .iter()
                .find(|d| d.starts_with("/sys/fs/cgroup/devices"))
                .and_then(|d| fs::read_to_string(d.join("devices.list")).ok())
                .and_then(|l| {
                    l.lines()
                        .find(|l| l.starts_with("c 1:1 "))
                        .map(String::from)
                });
            let e = rt.cmd(&[
                "exec",
                &id,
                "grep",
                "Cpus_allowed_list",
                "/proc/self/status",
            ]);
            exec = (e.code, e.stdout.trim().to_string());
        }
        (o.code, warned, rule, init, exec)
    }) else {
        return;
    };
    // Agreement with runc: the config runs, "rwa" is "rw", exec works.
    assert_eq!(ours.0, runc.0, "run status\nrunc: {runc:?}\nours: {ours:?}");
    assert_eq!(ours.0, Some(0));
    assert_eq!(ours.2, runc.2, "device rule");
    assert_eq!(ours.2.as_deref(), Some("c 1:1 rw"));
    assert_eq!(ours.4 .0, runc.4 .0, "exec status");
    // memoryPolicy: ignored as runc does, but said.
    assert!(ours.1, "no warning about linux.memoryPolicy: {ours:?}");
    // Our effects: SCHED_BATCH (3) at nice 5, best-effort I/O at 6, exec on cpu 0 only.
    assert_eq!(
        ours.3.lines().take(2).collect::<Vec<_>>(),
        ["5 3", "best-effort: prio 6"],
        "{ours:?}"
    );
    assert_eq!(ours.4 .1, "Cpus_allowed_list:\t0", "{ours:?}");
}

/// Event types in an `events` output so far (one JSON object a line).
fn event_types(p: &Path) -> Vec<String> {
    fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["type"].as_str().map(String::from))
        .collect()
}

#[test]
fn item24_events_stats_have_no_oom_key_and_oom_events_only_on_oom() {
    let Some((runc, ours)) = both(|rt| {
        // 1. One stats snapshot of a quiet container.
        let b = sleeper();
        let id = unique("i24");
        rt.run_detached(&id, &b).ok();
        let o = rt.cmd(&["events", "--stats", &id]);
        let v: Value = serde_json::from_str(o.stdout.trim()).unwrap_or(Value::Null);
        let mut mem_keys: Vec<String> = v["data"]["memory"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        mem_keys.sort();
        let stats = (
            o.code,
            v["type"].clone(),
            o.stdout.contains("oom"),
            mem_keys,
            v["data"]["memory"]["usage"]["failcnt"].is_u64(),
        );
        // 2. A stream over a container that does not run out of memory: stats, no oom.
        let (_, _, quiet, _) = rt.spawn(&["events", "--interval", "1s", &id]);
        std::thread::sleep(Duration::from_millis(2500));
        let quiet_types = event_types(&quiet);
        // 3. One that does: its process is OOM-killed, and one oom event comes.
        let mut b = Bundle::busybox();
        b.set(
            "/linux/resources/memory",
            json!({"limit": 16 << 20, "swap": 16 << 20}),
        )
        .args(&[
            "sh",
            "-c",
            "sleep 1; x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived; sleep 100",
        ]);
        let oid = unique("i24oom");
        rt.run_detached(&oid, &b).ok();
        let (_, _, loud, _) = rt.spawn(&["events", "--interval", "60s", &oid]);
        rt.wait_status(&oid, "stopped", Duration::from_secs(20));
        let oom_types = wait_for(Duration::from_secs(5), || {
            let t = event_types(&loud);
            (!t.is_empty()).then_some(t)
        })
        .unwrap_or_default();
        // The kernel may signal more than one OOM for one episode (each failed charge
        // before the kill lands; runc and berth report each eventfd read): the shape is
        // "oom" events, at least one, and nothing else.
        let oom_shape = (!oom_types.is_empty(), oom_types.iter().all(|t| t == "oom"));
        (stats, quiet_types.contains(&"oom".to_string()), oom_shape)
    }) else {
        return;
    };
    assert_eq!(ours, runc);
    assert_eq!(ours.0 .0, Some(0));
    assert_eq!(ours.0 .1, json!("stats"));
    assert!(
        !ours.0 .2,
        "\"oom\" in the stats of a container that had none"
    );
    assert!(ours.0 .4, "memory.usage.failcnt missing");
    assert!(!ours.1, "an oom event without an OOM");
    assert_eq!(ours.2, (true, true), "no oom event for an OOM kill");
}

/// `mounts` with the options of the entry at `dest` replaced by `f(options)`.
fn with_mount_options(b: &mut Bundle, dest: &str, f: impl Fn(&mut Vec<Value>)) {
    let mut ms = b.config["mounts"].as_array().cloned().unwrap_or_default();
    for m in ms.iter_mut().filter(|m| m["destination"] == dest) {
        let mut o = m["options"].as_array().cloned().unwrap_or_default();
        f(&mut o);
        m["options"] = json!(o);
    }
    b.set("/mounts", json!(ms));
}

#[test]
fn item12_read_only_dev_tmpfs_is_made_read_only_at_the_end() {
    let Some((runc, ours)) = both(|rt| {
        let mut b = Bundle::busybox();
        with_mount_options(&mut b, "/dev", |o| o.push(json!("ro")));
        // And a read-only tmpfs elsewhere with a mount below it: the same rule in runc.
        b.mount("/mnt", "tmpfs", "tmpfs", &["ro", "size=1m"]).mount(
            "/mnt/sub",
            "tmpfs",
            "tmpfs",
            &["size=1m"],
        );
        b.args(&[
            "sh",
            "-c",
            "for d in /dev /dev/pts /dev/shm /mnt /mnt/sub; do \
               awk -v d=$d '$5==d{split($6,o,\",\"); print d, o[1]}' /proc/self/mountinfo; done; \
             test -c /dev/pts/ptmx && echo ptmx; test -c /dev/null && echo null; \
             test -L /dev/fd && echo fd-link; \
             touch /dev/x 2>/dev/null || echo dev-refused; \
             touch /dev/shm/x && echo shm-written; \
             touch /mnt/x 2>/dev/null || echo mnt-refused; \
             touch /mnt/sub/x && echo sub-written",
        ]);
        let o = rt.run(&unique("i12"), &b);
        (o.code, o.stdout.clone())
    }) else {
        return;
    };
    assert_eq!(ours, runc);
    assert_eq!(ours.0, Some(0), "{ours:?}");
    assert_eq!(
        ours.1,
        "/dev ro\n/dev/pts rw\n/dev/shm rw\n/mnt ro\n/mnt/sub rw\n\
         ptmx\nnull\nfd-link\ndev-refused\nshm-written\nmnt-refused\nsub-written\n"
    );
}

/// `env` output lines, sorted, with the bundle's unique test tag made one fixed line.
fn env_lines(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("BERTH_TEST_TAG=") {
                "BERTH_TEST_TAG=*".to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    v.sort();
    v
}

#[test]
fn item16_start_container_hooks_without_env_get_the_containers() {
    let Some((runc, ours)) = both(|rt| {
        let mut b = Bundle::busybox();
        b.env(&["PATH=/bin:/usr/bin", "FROM_SPEC=yes"]);
        let mut env = strs(&b.config["process"]["env"]);
        env.push(b.tag().to_string());
        b.set("/process/env", json!(env));
        // Runs in the container: /bin/env is busybox's, /dev/shm the container's tmpfs.
        b.hook(
            "startContainer",
            json!({"path": "/bin/sh", "args": ["sh", "-c", "env > /dev/shm/none"]}),
        )
        .hook(
            "startContainer",
            json!({"path": "/bin/sh", "args": ["sh", "-c", "env > /dev/shm/own"],
                   "env": ["HOOK_OWN=1"]}),
        )
        .hook(
            "startContainer",
            json!({"path": "/bin/sh", "args": ["sh", "-c", "env > /dev/shm/empty"], "env": []}),
        );
        b.args(&[
            "sh",
            "-c",
            "cat /dev/shm/none; echo --; cat /dev/shm/own; echo --; cat /dev/shm/empty",
        ]);
        let o = rt.run(&unique("i16"), &b);
        let parts: Vec<Vec<String>> = o.stdout.split("--\n").map(env_lines).collect();
        (o.code, parts)
    }) else {
        return;
    };
    assert_eq!(ours, runc);
    assert_eq!(ours.0, Some(0));
    let none = &ours.1[0];
    // HOME as the process gets it (runc adds it from /etc/passwd before these hooks run).
    for want in [
        "FROM_SPEC=yes",
        "PATH=/bin:/usr/bin",
        "BERTH_TEST_TAG=*",
        "HOME=/root",
    ] {
        assert!(none.contains(&want.to_string()), "{want} missing: {none:?}");
    }
    assert!(ours.1[1].contains(&"HOOK_OWN=1".to_string()), "{ours:?}");
    assert!(
        !ours.1[1].contains(&"FROM_SPEC=yes".to_string()),
        "{ours:?}"
    );
    assert!(
        !ours.1[2].contains(&"FROM_SPEC=yes".to_string()),
        "{ours:?}"
    );
}

#[test]
fn item15_create_container_hooks_run_in_the_root_filesystem() {
    let Some((runc, ours)) = both(|rt| {
        let mut b = sleeper();
        let out = b.host_dir("hookout");
        let rootfs = b.rootfs().canonicalize().unwrap();
        let script = format!(
            "pwd > {o}/cwd; test -x bin/busybox && echo rootfs-here > {o}/rel; env > {o}/env",
            o = out.display()
        );
        b.hook(
            "createContainer",
            json!({"path": "/bin/sh", "args": ["sh", "-c", script]}),
        );
        let id = unique("i15");
        let o = rt.create(&id, &b);
        let read = |n: &str| fs::read_to_string(out.join(n)).unwrap_or_default();
        let cwd = read("cwd").trim().to_string();
        let env: Vec<String> = env_lines(&read("env"))
            .into_iter()
            .map(|l| l.replace(&*rootfs.to_string_lossy(), "ROOTFS"))
            .collect();
        (o.code, cwd == rootfs.to_string_lossy(), read("rel"), env)
    }) else {
        return;
    };
    assert_eq!(ours, runc);
    assert_eq!(
        (ours.0, ours.1, ours.2.as_str()),
        (Some(0), true, "rootfs-here\n"),
        "{ours:?}"
    );
    // Without `env`, the container's environment (item 16's rule; no HOME yet at create).
    assert!(ours.3.contains(&"BERTH_TEST_TAG=*".to_string()), "{ours:?}");
    assert!(ours.3.contains(&"PWD=ROOTFS".to_string()), "{ours:?}");
}

#[test]
fn item10_cwd_is_entered_while_privileged_first() {
    use std::os::unix::fs::PermissionsExt;
    let Some((runc, ours)) = both(|rt| {
        let mut b = sleeper();
        // Only root may search it; the process is uid 1000 without CAP_DAC_OVERRIDE.
        let private = b.rootfs().join("private");
        fs::create_dir(&private).unwrap();
        fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).unwrap();
        b.user(1000, 1000).cwd("/private");
        let id = unique("i10");
        let run = rt.run_detached(&id, &b);
        // The process runs there: its cwd as the kernel names it.
        let cwd = if run.success() {
            fs::read_link(format!("/proc/{}/cwd", rt.pid(&id)))
                .ok()
                .map(|p| p.ends_with("private"))
        } else {
            None
        };
        // exec as runc does the same, and the user still cannot list it.
        let e = rt.cmd(&[
            "exec",
            "--user",
            "1000:1000",
            "--cwd",
            "/private",
            &id,
            "sh",
            "-c",
            "pwd; ls . >/dev/null 2>&1 && echo listed || echo not-listed",
        ]);
        // And a cwd that does not exist is still an error.
        let missing = rt.cmd(&["exec", "--cwd", "/no/such/dir", &id, "true"]);
        (run.code, cwd, e.code, e.stdout.clone(), missing.code)
    }) else {
        return;
    };
    assert_eq!(ours, runc);
    assert_eq!(
        ours,
        (
            Some(0),
            Some(true),
            Some(0),
            "/private\nnot-listed\n".to_string(),
            Some(255)
        )
    );
}

/// `<rt> ARGS` started from a shell that opens `open_fds` (each on the bundle's config.json)
/// first, so they are the caller's fds 3, 4, ...; run to completion.
fn with_fds(rt: &Runtime, open_fds: &[u32], args: &[&str]) -> (Out, PathBuf) {
    let (c, outp, errp, _) = rt.command(args);
    let redirs: String = open_fds
        .iter()
        .map(|n| format!(" {n}</etc/hostname"))
        .collect();
    let mut sh = std::process::Command::new("/bin/sh");
    sh.arg("-c")
        .arg(format!("exec{redirs} \"$@\""))
        .arg("sh")
        .arg(c.get_program())
        .args(c.get_args());
    sh.stdin(std::process::Stdio::null());
    sh.stdout(fs::File::create(&outp).unwrap());
    sh.stderr(fs::File::create(&errp).unwrap());
    let mut child = sh.spawn().unwrap();
    let st = wait_timeout(&mut child, CMD_TIMEOUT, "runtime with fds");
    let o = Out {
        cmdline: format!("{args:?} with fds {open_fds:?}"),
        code: st.code(),
        signal: None,
        stdout: fs::read_to_string(&outp).unwrap_or_default(),
        stderr: fs::read_to_string(&errp).unwrap_or_default(),
        log: String::new(),
    };
    (o, outp)
}

/// A shell command that prints each of its open fds and what it is (file, socket, pipe, ...).
const LIST_FDS: &str = "for f in /proc/$$/fd/*; do case $(readlink $f) in \
    socket:*) t=socket;; pipe:*) t=pipe;; anon_inode:*) t=anon;; /*) t=file;; *) t=other;; esac; \
    echo ${f##*/} $t; done";

#[test]
fn item14_preserve_fds_passes_only_stdio_and_the_preserved_fds() {
    let Some((runc, ours)) = both(|rt| {
        let mut v = Vec::new();
        for (verb, open, n) in [
            ("run", &[3u32][..], "1"),
            ("run", &[3, 4, 5][..], "2"),
            ("run -d", &[3, 4][..], "1"),
            ("create", &[3, 4][..], "2"),
            ("run", &[][..], "1"),
            ("run -d", &[][..], "2"),
            ("create", &[3][..], "2"),
            ("run", &[3][..], "0"),
            ("run -d", &[][..], "0"),
            ("create", &[3, 4][..], "0"),
        ] {
            let mut b = Bundle::busybox();
            b.args(&["sh", "-c", LIST_FDS]);
            b.save();
            let id = unique("i14");
            rt.track(&id, Some(&b));
            let bundle = b.path().to_string_lossy().into_owned();
            let mut args: Vec<&str> = verb.split(' ').collect();
            args.extend(["--preserve-fds", n, "--bundle", &bundle, &id]);
            let (o, outp) = with_fds(rt, open, &args);
            if verb == "create" {
                rt.start(&id).ok();
            }
            if verb != "run" {
                rt.wait_status(&id, "stopped", T);
            }
            let text = wait_for(T, || {
                let t = fs::read_to_string(&outp).unwrap_or_default();
                t.lines().any(|l| l.starts_with("3 ")).then_some(t)
            })
            .unwrap_or_default();
            v.push(case(
                format!("{verb} {open:?} --preserve-fds {n}"),
                o.code,
                &text,
                open,
                n,
            ));
        }
        // With a terminal: the console socket is the runtime's own.
        {
            let mut b = Bundle::busybox();
            b.terminal(true).args(&["sh", "-c", LIST_FDS]);
            b.save();
            let id = unique("i14t");
            rt.track(&id, Some(&b));
            let bundle = b.path().to_string_lossy().into_owned();
            let sock = ConsoleSocket::new(rt.work());
            let sp = sock.path.to_string_lossy().into_owned();
            let (o, _) = with_fds(
                rt,
                &[3],
                &[
                    "create",
                    "--console-socket",
                    &sp,
                    "--preserve-fds",
                    "1",
                    "--bundle",
                    &bundle,
                    &id,
                ],
            );
            let text = if o.success() {
                let master = sock.recv_master(T);
                rt.start(&id).ok();
                read_pty(master, T)
            } else {
                String::new()
            };
            v.push(case(
                "create -t [3] --preserve-fds 1".into(),
                o.code,
                &text,
                &[3],
                "1",
            ));
        }
        // exec too.
        let b = sleeper();
        let id = unique("i14x");
        rt.run_detached(&id, &b).ok();
        let (o, _) = with_fds(
            rt,
            &[3, 4],
            &["exec", "--preserve-fds", "1", &id, "sh", "-c", LIST_FDS],
        );
        v.push(case(
            "exec [3, 4] --preserve-fds 1".into(),
            o.code,
            &o.stdout,
            &[3, 4],
            "1",
        ));
        // With a terminal of its own (exec -t, detached, through a console socket).
        let sock = ConsoleSocket::new(rt.work());
        let sp = sock.path.to_string_lossy().into_owned();
        let (o, _) = with_fds(
            rt,
            &[3],
            &[
                "exec",
                "-t",
                "-d",
                "--console-socket",
                &sp,
                "--preserve-fds",
                "1",
                &id,
                "sh",
                "-c",
                LIST_FDS,
            ],
        );
        let text = if o.success() {
            read_pty(sock.recv_master(T), T)
        } else {
            String::new()
        };
        v.push(case(
            "exec -t [3] --preserve-fds 1".into(),
            o.code,
            &text,
            &[3],
            "1",
        ));
        // Detached: the output goes to a file in the container.
        let (o, _) = with_fds(
            rt,
            &[3],
            &[
                "exec",
                "-d",
                "--preserve-fds",
                "2",
                &id,
                "sh",
                "-c",
                &format!("({LIST_FDS}) > /dev/shm/fds"),
            ],
        );
        let text = wait_for(T, || {
            let t = rt.cmd(&["exec", &id, "cat", "/dev/shm/fds"]).stdout;
            t.lines().any(|l| l.starts_with("3 ")).then_some(t)
        })
        .unwrap_or_default();
        v.push(case(
            "exec -d [3] --preserve-fds 2".into(),
            o.code,
            &text,
            &[3],
            "2",
        ));
        v
    }) else {
        return;
    };
    for (r, o) in runc.iter().zip(&ours) {
        // Only the caller's fds in range, then the shell's own (LIST_FDS's pipe).
        assert_eq!((o.1, &o.2), (Some(0), &o.3), "{}: ours", o.0);
        // Where the caller left a gap in the range, runc hands the container whatever fd of
        // its own has that number (its log file, an epoll fd): berth leaves it out, on purpose.
        if !o.4 {
            assert_eq!((o.1, &o.2), (r.1, &r.2), "{}: ours, then runc's", o.0);
        }
    }
    assert!(ours.iter().any(|o| o.4) && ours.iter().any(|o| !o.4));
}

/// One item-14 case: (what, exit code, the fds seen beyond stdio, those wanted, a gap in the
/// caller's range).
fn case(
    what: String,
    code: Option<i32>,
    text: &str,
    open: &[u32],
    n: &str,
) -> (String, Option<i32>, String, String, bool) {
    let n: u32 = n.parse().unwrap();
    let kept: Vec<u32> = open.iter().copied().filter(|f| *f < 3 + n).collect();
    let mut want: String = kept.iter().map(|f| format!("{f} file\n")).collect();
    want.push_str(&format!("{} pipe\n", 3 + kept.len()));
    (
        what,
        code,
        beyond_stdio(text),
        want,
        (kept.len() as u32) < n,
    )
}

/// LIST_FDS lines of fds 3 and up (runc's foreground `run` gives stdio as pipes of its own,
/// berth the caller's: not this item). The last fd is the shell's own: the glob's directory,
/// a pipe by the time `$(readlink)` looks at it.
fn beyond_stdio(text: &str) -> String {
    text.lines()
        .filter(|l| {
            l.split(' ')
                .next()
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n >= 3)
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn item17_start_container_hooks_run_under_the_seccomp_filter() {
    let Some((runc, ours)) = both(|rt| {
        let mut v = Vec::new();
        for nnp in [true, false] {
            let mut b = Bundle::busybox();
            b.no_new_privileges(nnp).set(
                "/linux/seccomp",
                json!({
                    "defaultAction": "SCMP_ACT_ALLOW",
                    "architectures": ["SCMP_ARCH_X86_64"],
                    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                                  "errnoRet": 1}]
                }),
            );
            b.hook(
                "startContainer",
                json!({"path": "/bin/sh", "args": ["sh", "-c",
                    "mkdir /dev/shm/h 2>/dev/null && echo made > /dev/shm/r || echo refused > /dev/shm/r"]}),
            );
            b.args(&[
                "sh",
                "-c",
                "cat /dev/shm/r; mkdir /dev/shm/p 2>/dev/null && echo made || echo refused",
            ]);
            let o = rt.run(&unique("i17"), &b);
            v.push((nnp, o.code, o.stdout.clone()));
        }
        v
    }) else {
        return;
    };
    assert_eq!(ours, runc);
    for (nnp, code, out) in &ours {
        assert_eq!(
            (*code, out.as_str()),
            (Some(0), "refused\nrefused\n"),
            "noNewPrivileges {nnp}"
        );
    }
}

/// In the container: the owner of the process's terminal, and its size.
const TTY_INFO: &str = "stat -L -c '%u %g' /proc/self/fd/0; stty size";

#[test]
fn item11_console_is_owned_by_the_process_user_and_sized_as_runc() {
    let lines = |text: &str| -> Vec<String> {
        text.lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    };
    let Some((runc, ours)) = both(|rt| {
        let mut v = Vec::new();
        for (user, size) in [(1000, None), (0, None), (1000, Some((33, 111)))] {
            let mut b = Bundle::busybox();
            b.terminal(true).user(user, user);
            if let Some((h, w)) = size {
                b.set("/process/consoleSize", json!({"height": h, "width": w}));
            }
            b.sh(TTY_INFO);
            let sock = ConsoleSocket::new(rt.work());
            let id = unique("i11");
            let o = rt.create_with(&id, &b, &["--console-socket", sock.path.to_str().unwrap()]);
            let mut text = String::new();
            if o.success() {
                let master = sock.recv_master(T);
                rt.start(&id).ok();
                text = read_pty(master, T);
            }
            v.push((
                format!("create user {user} size {size:?}"),
                o.code,
                lines(&text),
            ));
        }
        // exec -t through a console socket, as a user, with and without a size.
        let b = sleeper();
        let id = unique("i11x");
        rt.run_detached(&id, &b).ok();
        let p = rt.work().join("tty-process.json");
        fs::write(
            &p,
            serde_json::to_vec(&json!({"args": ["sh", "-c", TTY_INFO], "cwd": "/",
                "terminal": true, "user": {"uid": 1000, "gid": 1000},
                "consoleSize": {"height": 21, "width": 77}, "env": ["PATH=/bin"]}))
            .unwrap(),
        )
        .unwrap();
        for (what, extra) in [
            (
                "exec --user 1000:1000",
                vec!["--user", "1000:1000", &id, "sh", "-c", TTY_INFO],
            ),
            (
                "exec -p with consoleSize",
                vec!["-p", p.to_str().unwrap(), &id],
            ),
        ] {
            let sock = ConsoleSocket::new(rt.work());
            let sp = sock.path.to_string_lossy().into_owned();
            let mut args = vec!["exec", "-t", "-d", "--console-socket", &sp];
            args.extend(extra.iter().copied());
            let o = rt.cmd(&args);
            let text = if o.success() {
                read_pty(sock.recv_master(T), T)
            } else {
                String::new()
            };
            v.push((what.to_string(), o.code, lines(&text)));
        }
        v
    }) else {
        return;
    };
    assert_eq!(ours, runc);
    assert_eq!(
        ours[0].2.first().map(|l| l.split(' ').next()),
        Some(Some("1000"))
    );
}

/// Item 18's agent: one message with one fd (SCM_RIGHTS) on an accepted connection, or None
/// when nothing came within `timeout`.
fn agent_recv(
    sock: &std::os::unix::net::UnixStream,
    timeout: Duration,
) -> Option<(Value, std::os::fd::OwnedFd)> {
    use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    sock.set_read_timeout(Some(timeout)).unwrap();
    let mut space = [std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut cmsg = RecvAncillaryBuffer::new(&mut space);
    let mut buf = vec![0u8; 64 * 1024];
    let r = recvmsg(
        sock,
        &mut [std::io::IoSliceMut::new(&mut buf)],
        &mut cmsg,
        RecvFlags::CMSG_CLOEXEC,
    )
    .ok()?;
    let fd = cmsg.drain().find_map(|m| match m {
        RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
        _ => None,
    })?;
    let v = serde_json::from_slice(&buf[..r.bytes])
        .unwrap_or_else(|e| panic!("agent payload is not JSON ({e})"));
    Some((v, fd))
}

/// The keys of a JSON object, sorted.
fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    k.sort();
    k
}

#[test]
fn item18_seccomp_listener_gets_state_and_fd_at_create() {
    let Some((runc, ours)) = both(|rt| {
        let mut v = Vec::new();
        for nnp in [true, false] {
            let path = rt.work().join(format!("agent-{nnp}.sock"));
            let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
            listener.set_nonblocking(true).unwrap();
            let mut b = Bundle::busybox();
            b.no_new_privileges(nnp).set(
                "/linux/seccomp",
                json!({
                    "defaultAction": "SCMP_ACT_ALLOW",
                    "architectures": ["SCMP_ARCH_X86_64"],
                    "listenerPath": path.to_str().unwrap(),
                    "listenerMetadata": "item18",
                    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
                }),
            );
            b.sh("mkdir /tmp/x; echo rc=$?");
            let id = unique("i18");
            let created = rt.create(&id, &b);
            // Before `start`: the agent has the connection, the state and the fd.
            let conn = wait_for(T, || listener.accept().ok().map(|(s, _)| s));
            let early = conn
                .as_ref()
                .and_then(|s| agent_recv(s, Duration::from_secs(3)));
            let before_start = early.is_some();
            let state_pid = rt.state(&id)["pid"].as_i64();
            let started = rt.start(&id);
            // Late (berth before the fix: at `start`), so that the container is not left
            // waiting for an answer.
            let got = match (&early, &conn) {
                (Some(_), _) => early,
                (None, Some(s)) => agent_recv(s, T),
                (None, None) => None,
            };
            let mut shape = json!(null);
            if let Some((msg, fd)) = got {
                // Answer the container's mkdir with ENOMSG through the fd it sent.
                let n = berth_sys::seccomp::notif_recv(std::os::fd::AsFd::as_fd(&fd))
                    .expect("a notification from the container's mkdir");
                berth_sys::seccomp::notif_respond(
                    std::os::fd::AsFd::as_fd(&fd),
                    n.id,
                    0,
                    42,
                    false,
                )
                .unwrap();
                let st = &msg["state"];
                shape = json!({
                    "keys": keys(&msg),
                    "state keys": keys(st),
                    "ociVersion is a string": msg["ociVersion"].is_string()
                        && st["ociVersion"].is_string(),
                    "fds": msg["fds"],
                    "metadata": msg["metadata"],
                    "status": st["status"],
                    "id is the container's": st["id"] == json!(id),
                    "pid is init's": msg["pid"].as_i64() == state_pid && st["pid"].as_i64() == state_pid,
                    "bundle": st["bundle"] == json!(b.path().to_str().unwrap()),
                });
            }
            rt.wait_status(&id, "stopped", T);
            v.push(json!({
                "noNewPrivileges": nnp,
                "create": created.code,
                "start": started.code,
                "state and fd before start": before_start,
                "message": shape,
                "stdout": rt.container_stdout(&id),
                "mkdir answered by the agent": rt.container_stderr(&id)
                    .contains("No message of desired type"),
            }));
            rt.delete(&id);
        }
        v
    }) else {
        return;
    };
    eprintln!("runc: {runc:#?}\nours: {ours:#?}");
    assert_eq!(ours, runc);
    for o in &ours {
        assert_eq!(o["state and fd before start"], true, "{o:#}");
        assert_eq!(o["mkdir answered by the agent"], true, "{o:#}");
    }
}

#[test]
fn item9_exec_cgroup_puts_the_process_in_a_sub_cgroup() {
    let Some((runc, ours)) = both(|rt| {
        let b = sleeper();
        let id = unique("i9");
        rt.run_detached(&id, &b).ok();
        let cg = b.cgroups_path().expect("the test bundle sets cgroupsPath");
        // The sub-cgroups exist beforehand in every hierarchy, as runc wants them; a v1
        // cpuset one needs cpus and mems before a task may join.
        for d in cgroup_dirs(&cg) {
            let sub = d.join("sub");
            fs::create_dir(&sub).unwrap();
            for f in ["cpuset.cpus", "cpuset.mems"] {
                if let Ok(v) = fs::read_to_string(d.join(f)) {
                    fs::write(sub.join(f), v.trim()).unwrap();
                }
            }
        }
        // The process's cgroups, the container's path written as <ctr>.
        let cgroups = |o: &Out| -> Vec<String> {
            let mut v: Vec<String> = managed_cgroup_lines(&o.stdout)
                .iter()
                .map(|l| l.replace(&cg, "<ctr>"))
                .collect();
            v.sort();
            v
        };
        let mut v = Vec::new();
        for (what, args) in [
            ("no --cgroup", vec![]),
            ("every hierarchy", vec!["--cgroup", "sub"]),
            ("absolute path", vec!["--cgroup", "/sub"]),
            ("two controllers", vec!["--cgroup", "memory,pids:sub"]),
            (
                "repeated",
                vec!["--cgroup", "memory:sub", "--cgroup", "cpu:sub"],
            ),
        ] {
            let mut a = vec!["exec"];
            a.extend(args);
            a.extend([id.as_str(), "cat", "/proc/self/cgroup"]);
            let o = rt.cmd(&a);
            v.push(json!({"case": what, "code": o.code, "cgroups": cgroups(&o)}));
        }
        // Refusals: the message's shape (runc's words; pids and paths vary).
        for (what, arg) in [
            ("missing sub-cgroup", vec!["--cgroup", "nosuch"]),
            ("escapes", vec!["--cgroup", "../escape"]),
            (
                "escapes, per controller",
                vec!["--cgroup", "memory:../../x"],
            ),
            ("unknown controller", vec!["--cgroup", "nosuchctl:sub"]),
            ("too many colons", vec!["--cgroup", "a:b:c"]),
            (
                "no prefix with two",
                vec!["--cgroup", "sub", "--cgroup", "memory:sub"],
            ),
        ] {
            let mut a = vec!["exec"];
            a.extend(arg);
            a.extend([id.as_str(), "true"]);
            let o = rt.cmd(&a);
            let text = msg(&o);
            let parts = text.split(": ").collect::<Vec<_>>();
            // An errno as Go prints it ("no such file or directory"), not Rust's
            // "No such file or directory (os error 2)".
            let last = parts.last().map(|l| {
                let l = l.split(" (os error ").next().unwrap_or(l);
                let mut c = l.chars();
                c.next()
                    .map(|f| f.to_lowercase().chain(c).collect::<String>())
                    .unwrap_or_default()
            });
            let says: Vec<&str> = [
                "not a sub cgroup path",
                "unknown controller",
                "invalid --cgroup argument",
                "missing <controller>: prefix",
                "error adding pid",
            ]
            .into_iter()
            .filter(|w| text.contains(w))
            .collect();
            v.push(json!({"case": what, "code": o.code,
                "first": parts.first(), "last": last, "says": says}));
        }
        rt.delete_force(&id);
        v
    }) else {
        return;
    };
    eprintln!("runc: {runc:#?}\nours: {ours:#?}");
    assert_eq!(ours, runc);
    // Not vacuous: the process did land in the sub-cgroup.
    assert!(
        ours[1]["cgroups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().ends_with("<ctr>/sub")),
        "{:#}",
        ours[1]
    );
}

/// The fields of one logfmt line (`time="..." level=debug msg="..." k=v`), in order, or None
/// when it is not of that shape.
fn logfmt(line: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut it = line.trim_end().chars().peekable();
    loop {
        let key: String = std::iter::from_fn(|| it.next_if(|c| *c != '=' && *c != ' ')).collect();
        if key.is_empty() || it.next() != Some('=') {
            return None;
        }
        let mut val = String::new();
        if it.peek() == Some(&'"') {
            it.next();
            loop {
                match it.next()? {
                    '\\' => val.push(it.next()?),
                    '"' => break,
                    c => val.push(c),
                }
            }
        } else {
            val = std::iter::from_fn(|| it.next_if(|c| *c != ' ')).collect();
        }
        out.push((key, val));
        match it.next() {
            None => return Some(out),
            Some(' ') => {}
            Some(_) => return None,
        }
    }
}

/// (level, msg) of every line of a --log file, or a panic naming the line that is not of
/// runc's shape (JSON with string level, msg and an RFC 3339 time; or logfmt starting with
/// time, level, msg).
fn log_lines(who: &str, what: &str, text: &str, json: bool) -> Vec<(String, String)> {
    let rfc3339 = |t: &str| {
        t.len() >= 20
            && t.as_bytes()[4] == b'-'
            && t.as_bytes()[10] == b'T'
            && (t.ends_with('Z') || t.contains('+'))
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (time, level, msg) = if json {
                let v: Value = serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("{who} {what}: not JSON ({e}): {l}"));
                let s = |k: &str| {
                    v[k].as_str()
                        .unwrap_or_else(|| panic!("{who} {what}: no string {k:?}: {l}"))
                        .to_string()
                };
                (s("time"), s("level"), s("msg"))
            } else {
                let f = logfmt(l).unwrap_or_else(|| panic!("{who} {what}: not logfmt: {l}"));
                let keys: Vec<&str> = f.iter().take(3).map(|(k, _)| k.as_str()).collect();
                assert_eq!(keys, ["time", "level", "msg"], "{who} {what}: {l}");
                (f[0].1.clone(), f[1].1.clone(), f[2].1.clone())
            };
            assert!(
                rfc3339(&time),
                "{who} {what}: time {time:?} is not RFC 3339: {l}"
            );
            (level, msg)
        })
        .collect()
}

#[test]
fn item19_debug_logs_each_step_in_runcs_shapes() {
    // Each case: (name, log format, its log file's text, exit status).
    let Some((runc, ours)) = both(|rt| {
        let mut logs: Vec<(&str, bool, String, Option<i32>)> = Vec::new();
        let log = |name: &str| rt.work().join(format!("{name}.log"));
        let read = |name: &str| fs::read_to_string(log(name)).unwrap_or_default();
        let flags = |name: &str, fmt: &str, debug: bool| -> Vec<String> {
            let mut v = Vec::new();
            if debug {
                v.push("--debug".to_string());
            }
            let p = log(name).to_string_lossy().into_owned();
            v.extend(["--log".into(), p, "--log-format".into(), fmt.into()]);
            v
        };
        let with = |f: &[String], verb: &[&str]| -> Vec<String> {
            f.iter()
                .cloned()
                .chain(verb.iter().map(|s| s.to_string()))
                .collect()
        };
        let mut echo = Bundle::busybox();
        echo.args(&["echo", "hi"]);
        for (name, fmt, debug) in [
            ("run-json", "json", true),
            ("run-text", "text", true),
            ("run-quiet", "json", false),
        ] {
            let v = with(&flags(name, fmt, debug), &["run"]);
            let v: Vec<&str> = v.iter().map(String::as_str).collect();
            let o = rt.container_cmd(&v, &unique("i19r"), &echo, &[]);
            logs.push((name, fmt == "json", read(name), o.code));
        }
        let b = sleeper();
        let id = unique("i19e");
        rt.run_detached(&id, &b).ok();
        for (name, fmt, debug) in [
            ("exec-json", "json", true),
            ("exec-text", "text", true),
            ("exec-quiet", "text", false),
        ] {
            let v = with(&flags(name, fmt, debug), &["exec", &id, "echo", "hi"]);
            let v: Vec<&str> = v.iter().map(String::as_str).collect();
            let o = rt.cmd(&v);
            logs.push((name, fmt == "json", read(name), o.code));
        }
        rt.kill(&id, "KILL");
        rt.wait_status(&id, "stopped", T);
        rt.delete(&id).ok();
        // create, start, delete of another container.
        let id = unique("i19c");
        let v = with(&flags("create", "json", true), &["create"]);
        let v: Vec<&str> = v.iter().map(String::as_str).collect();
        let o = rt.container_cmd(&v, &id, &b, &[]);
        logs.push(("create", true, read("create"), o.code));
        for verb in ["start", "delete"] {
            if verb == "delete" {
                rt.kill(&id, "KILL");
                rt.wait_status(&id, "stopped", T);
            }
            let v = with(&flags(verb, "json", true), &[verb, &id]);
            let v: Vec<&str> = v.iter().map(String::as_str).collect();
            let o = rt.cmd(&v);
            logs.push((verb, true, read(verb), o.code));
        }
        logs
    }) else {
        return;
    };
    for (who, logs) in [("runc", &runc), ("ours", &ours)] {
        for (name, json, text, code) in logs.iter() {
            assert_eq!(*code, Some(0), "{who} {name} failed:\n{text}");
            let lines = log_lines(who, name, text, *json);
            let debug = lines.iter().filter(|(l, _)| l == "debug").count();
            match *name {
                n if n.ends_with("-quiet") => {
                    assert_eq!(
                        debug, 0,
                        "{who} {name}: debug lines without --debug:\n{text}"
                    )
                }
                "run-json" | "run-text" | "exec-json" | "exec-text" | "create" => assert!(
                    debug >= 5,
                    "{who} {name}: {debug} debug lines, want a line per step:\n{text}"
                ),
                // runc 1.1 logs no step of start and delete; berth logs its phases.
                _ if who == "ours" => {
                    assert!(debug >= 2, "{who} {name}: {debug} debug lines:\n{text}")
                }
                _ => {}
            }
        }
    }
    for ((name, _, _, r), (_, _, _, o)) in runc.iter().zip(&ours) {
        assert_eq!(o, r, "{name}: exit status differs");
    }
}

/// The message of the last error line (runc logs a deferred cleanup's complaint before the
/// error itself), unescaped, with runs of spaces as one.
fn last_error(o: &Out) -> String {
    let e = o.errors();
    let line = e
        .lines()
        .rev()
        .find(|l| l.contains("level=error"))
        .unwrap_or("");
    let m = logfmt(line)
        .and_then(|f| f.into_iter().find(|(k, _)| k == "msg"))
        .map(|(_, v)| v)
        .unwrap_or_default();
    m.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn item5_checkpoint_and_restore_refuse_as_runc() {
    // (case, exit status, last error message, whether the running container is still running)
    let Some((runc, ours)) = both(|rt| {
        let b = sleeper();
        b.save();
        let id = unique("i5r");
        rt.run_detached(&id, &b).ok();
        let cid = unique("i5c");
        rt.create(&cid, &sleeper()).ok();
        let img = rt.work().join("img");
        fs::create_dir_all(img.join("dir")).unwrap();
        fs::write(img.join("afile"), "").unwrap();
        let img = img.to_string_lossy().into_owned();
        // Restores get a bundle (and cgroup) of their own.
        let rb = sleeper();
        rb.save();
        let bundle = rb.path().to_string_lossy().into_owned();
        let nocriu = rt
            .work()
            .join("no-criu/criu")
            .to_string_lossy()
            .into_owned();
        let fresh = unique("i5n");
        rt.track(&fresh, Some(&rb));
        let ck = |extra: &[&str]| -> Vec<String> {
            let mut v = vec!["checkpoint", "--image-path", &img];
            v.extend_from_slice(extra);
            v.push(&id);
            v.into_iter().map(String::from).collect()
        };
        let s = |v: &[&str]| -> Vec<String> { v.iter().map(|x| x.to_string()).collect() };
        let cases: Vec<(&str, Vec<String>)> = vec![
            ("checkpoint without an id", s(&["checkpoint"])),
            ("checkpoint with two ids", s(&["checkpoint", "a", "b"])),
            (
                "checkpoint of an unknown container",
                s(&["checkpoint", "--image-path", &img, "no-such-ctr"]),
            ),
            (
                "checkpoint of a created container",
                s(&["checkpoint", "--image-path", &img, &cid]),
            ),
            (
                "absolute --parent-path",
                ck(&["--pre-dump", "--parent-path", "/abs"]),
            ),
            (
                "missing --parent-path",
                ck(&["--pre-dump", "--parent-path", "nope"]),
            ),
            (
                "--parent-path not a directory",
                ck(&["--pre-dump", "--parent-path", "afile"]),
            ),
            (
                "--page-server without a port",
                ck(&["--page-server", "foo"]),
            ),
            (
                "--page-server with a bad port",
                ck(&["--page-server", "foo:bar"]),
            ),
            (
                "bad --manage-cgroups-mode",
                ck(&["--manage-cgroups-mode", "bad"]),
            ),
            ("--empty-ns pid", ck(&["--empty-ns", "pid"])),
            ("--status-fd not a number", ck(&["--status-fd", "x"])),
            ("criu missing (checkpoint)", {
                let mut v = s(&["--criu", &nocriu]);
                v.extend(ck(&[
                    "--leave-running",
                    "--parent-path",
                    "dir",
                    "--pre-dump",
                ]));
                v
            }),
            ("restore without an id", s(&["restore"])),
            (
                "restore of an existing id",
                s(&["restore", "--image-path", &img, "-b", &bundle, &id]),
            ),
            (
                "restore --empty-ns pid",
                s(&[
                    "restore",
                    "--image-path",
                    &img,
                    "-b",
                    &bundle,
                    "--empty-ns",
                    "pid",
                    &fresh,
                ]),
            ),
            (
                "criu missing (restore)",
                s(&[
                    "--criu",
                    &nocriu,
                    "restore",
                    "--image-path",
                    &img,
                    "-b",
                    &bundle,
                    "-d",
                    &fresh,
                ]),
            ),
        ];
        let out: Vec<(&str, Option<i32>, String)> = cases
            .iter()
            .map(|(what, args)| {
                let a: Vec<&str> = args.iter().map(String::as_str).collect();
                let o = rt.cmd(&a);
                // Each runtime has its own work dir.
                let work = rt.work().to_string_lossy().into_owned();
                (*what, o.code, last_error(&o).replace(&work, "<work>"))
            })
            .collect();
        // Nothing above touched the container, and the failed restore left nothing behind.
        let after = (rt.status(&id), rt.status(&fresh));
        (out, after)
    }) else {
        return;
    };
    let (runc, runc_after) = runc;
    let (ours, ours_after) = ours;
    for ((what, rc, rm), (_, oc, om)) in runc.iter().zip(&ours) {
        assert_eq!(
            oc, rc,
            "{what}: exit status differs (runc {rm:?}, ours {om:?})"
        );
        // Usage errors are clap's words and urfave/cli's; the rest are runc's.
        if !rm.contains("requires exactly") && !rm.contains("invalid value") {
            assert!(
                !rm.is_empty() && om.contains(rm.as_str()),
                "{what}: runc says {rm:?}, ours {om:?}"
            );
        }
    }
    assert!(ours.iter().all(|(_, c, _)| *c == Some(1)), "{ours:?}");
    assert_eq!(ours_after, runc_after);
    assert_eq!(ours_after, (Some("running".to_string()), None));
}

/// A stand-in criu that reports version 3.17.1 and fails every dump and restore (criu cannot dump
/// on this kernel): the error must name criu's log file.
#[test]
fn item5_a_failing_criu_is_reported_with_its_log_file() {
    let rt = Runtime::new();
    let fake = rt.work().join("criu");
    fs::write(
        &fake,
        "#!/bin/sh\ncase \"$1\" in --version) echo 'Version: 3.17.1';; *) echo failed >&2; exit 1;; esac\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    let fake = fake.to_string_lossy().into_owned();
    let b = sleeper();
    let id = unique("i5f");
    rt.run_detached(&id, &b).ok();
    let img = rt.work().join("img").to_string_lossy().into_owned();
    let o = rt.cmd(&["--criu", &fake, "checkpoint", "--image-path", &img, &id]);
    assert_eq!(o.code, Some(1), "{o}");
    o.errors_contain("criu failed")
        .errors_contain(&format!("log file: {img}/dump.log"));
    // The container was not touched.
    assert_eq!(rt.status(&id).as_deref(), Some("running"));
    let fresh = unique("i5g");
    let rb = sleeper();
    rb.save();
    rt.track(&fresh, Some(&rb));
    let o = rt.cmd(&[
        "--criu",
        &fake,
        "restore",
        "--image-path",
        &img,
        "-b",
        &rb.path().to_string_lossy(),
        "-d",
        &fresh,
    ]);
    assert_eq!(o.code, Some(1), "{o}");
    o.errors_contain(&format!("log file: {img}/restore.log"));
    // Undone: no state, no cgroup.
    assert_eq!(rt.status(&fresh), None);
    // Into the running container's cgroup: undone without removing that cgroup (nor killing
    // what runs in it).
    let o = rt.cmd(&[
        "--criu",
        &fake,
        "restore",
        "--image-path",
        &img,
        "-b",
        &b.path().to_string_lossy(),
        "-d",
        &fresh,
    ]);
    assert_eq!(o.code, Some(1), "{o}");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(rt.status(&id).as_deref(), Some("running"), "{o}");
    assert!(
        rt.list_json().as_array().map(Vec::len) == Some(1),
        "{}",
        rt.list_json()
    );
}

/// The peer group of a mountinfo optional-fields string (`shared:N` -> N).
fn peer_group(optional: &str) -> Option<&str> {
    optional
        .split_whitespace()
        .find_map(|f| f.strip_prefix("shared:"))
}

#[test]
fn item1_rshared_bind_is_a_peer_of_the_hosts_mount_and_propagates_back() {
    // Kubernetes' Bidirectional: rootfsPropagation rshared and an rshared bind of a shared host
    // mount. The bind is in the host's peer group, and a mount made inside the container under it
    // appears on the host.
    let Some((runc, ours)) = both(|rt| {
        let mut b = Bundle::busybox();
        let host = b.host_tmpfs("shared");
        let st = std::process::Command::new("mount")
            .arg("--make-shared")
            .arg(&host)
            .status()
            .unwrap();
        assert!(st.success(), "mount --make-shared {}", host.display());
        fs::create_dir(host.join("sub")).unwrap();
        let tag = unique("i1in");
        let all = [
            "CAP_SYS_ADMIN",
            "CAP_KILL",
            "CAP_AUDIT_WRITE",
            "CAP_NET_BIND_SERVICE",
        ];
        b.set("/linux/rootfsPropagation", json!("rshared"))
            .mount(
                "/mnt/b",
                "bind",
                host.to_str().unwrap(),
                &["rbind", "rshared"],
            )
            .caps("bounding", &all)
            .caps("effective", &all)
            .caps("permitted", &all)
            .sh(&format!(
                "mount -t tmpfs {tag} /mnt/b/sub && cat /proc/self/mountinfo"
            ));
        let o = rt.run(&unique("i1"), &b);
        let inside = parse_mountinfo(&o.stdout);
        let host_mi = host_mounts_under(&host);
        let host_line = host_mi
            .iter()
            .find(|m| m.mount_point == host.to_string_lossy())
            .cloned()
            .expect("the host tmpfs");
        // The bind's propagation relative to the host's: "peer" (same group, no master),
        // "slave+own group", or what it is.
        let bind = inside.iter().rfind(|m| m.mount_point == "/mnt/b");
        let shape = match bind {
            None => "no /mnt/b".to_string(),
            Some(m) if peer_group(&m.optional) == peer_group(&host_line.optional) => {
                format!("peer ({})", m.optional.contains("master:"))
            }
            Some(m) => format!("other: {} (host: {})", m.optional, host_line.optional),
        };
        let sub = inside.iter().rfind(|m| m.mount_point == "/mnt/b/sub");
        let sub_shape = sub.map(|m| {
            (
                m.source.clone() == tag,
                peer_group(&m.optional).is_some(),
                m.optional.contains("master:"),
            )
        });
        let on_host = host_mi
            .iter()
            .any(|m| m.mount_point == host.join("sub").to_string_lossy() && m.source == tag);
        // The container's mount on the host goes now (the bundle's drop detaches the rest).
        let _ = rustix::mount::unmount(host.join("sub"), rustix::mount::UnmountFlags::DETACH);
        (o.code, shape, sub_shape, on_host, o.to_string())
    }) else {
        return;
    };
    assert_eq!(
        (&ours.0, &ours.1, &ours.2, &ours.3),
        (&runc.0, &runc.1, &runc.2, &runc.3),
        "runc:{}\nours:{}",
        runc.4,
        ours.4
    );
    assert_eq!(
        (&ours.0, ours.1.as_str(), ours.3),
        (&Some(0), "peer (false)", true),
        "{}",
        ours.4
    );
}

#[test]
fn item13_userns_bind_source_only_host_root_can_reach() {
    // The source is below a 0700 root-owned directory: only host root can look it up. The
    // container's root is host uid 100000; runc opens the source before the switch, so both bind
    // it and read a file in it.
    use std::os::unix::fs::PermissionsExt;
    let Some((runc, ours)) = both(|rt| {
        let mut b = Bundle::busybox();
        let data = b.host_dir("private/data");
        fs::write(data.join("f"), "only-host-root-can-reach\n").unwrap();
        fs::set_permissions(data.join("f"), fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(&data, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(b.path().join("private"), fs::Permissions::from_mode(0o700)).unwrap();
        // The target exists: the container's root may not create it in the host-owned rootfs.
        fs::create_dir_all(b.rootfs().join("mnt/s")).unwrap();
        b.userns(0, 100000, 65536)
            .mount("/mnt/s", "bind", data.to_str().unwrap(), &["rbind", "ro"])
            .sh("cat /mnt/s/f && grep ' /mnt/s ' /proc/self/mountinfo | cut -d' ' -f5-7");
        let o = rt.run(&unique("i13"), &b);
        (o.code, o.stdout.clone(), o.to_string())
    }) else {
        return;
    };
    assert_eq!(
        (&ours.0, &ours.1),
        (&runc.0, &runc.1),
        "runc:{}\nours:{}",
        runc.2,
        ours.2
    );
    assert_eq!(ours.0, Some(0), "{}", ours.2);
    assert!(
        ours.1.starts_with("only-host-root-can-reach\n") && ours.1.contains("\n/mnt/s ro,"),
        "{}",
        ours.2
    );
}
