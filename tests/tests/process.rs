//! Issue 2, item 2 (process, hostname/domainname, sysctl): what the container's process looks like
//! from inside, reported by the probe.

use berth_tests::*;
use serde_json::Value;
use std::fs;

fn run_probe(rt: &Runtime, b: &Bundle, tag: &str) -> Value {
    let id = unique(tag);
    let o = rt.run(&id, b);
    o.ok();
    o.probe()
}

#[test]
fn args_are_passed_and_path_is_searched() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.args(&["probe", "info", "7", "two words", ""]);
    let id = unique("args");
    let o = rt.run(&id, &b);
    o.code_is(7);
    let p = o.probe();
    assert_eq!(
        p["args"],
        serde_json::json!(["probe", "info", "7", "two words", ""]),
        "{o}"
    );
}

#[test]
fn env_is_exactly_passed() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.env(&["PATH=/bin", "A=1", "B=two words", "EMPTY="]);
    let p = run_probe(&rt, &b, "env");
    let env: Vec<&str> = p["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for want in ["PATH=/bin", "A=1", "B=two words", "EMPTY="] {
        assert!(env.contains(&want), "{want} missing from {env:?}");
    }
    // runc adds only HOME (from /etc/passwd or "/") when it is missing.
    let extra: Vec<&&str> = env
        .iter()
        .filter(|e| {
            !["PATH=", "A=", "B=", "EMPTY="]
                .iter()
                .any(|p| e.starts_with(p))
        })
        .collect();
    assert!(
        extra.iter().all(|e| e.starts_with("HOME=")),
        "unexpected env {extra:?}"
    );
}

#[test]
fn cwd_is_applied_and_getcwd_works() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.cwd("/home/user");
    let p = run_probe(&rt, &b, "cwd");
    assert_eq!(p["cwd"], "/home/user", "{p}");
}

#[test]
fn user_uid_gid_and_additional_gids() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.user(1000, 1001).additional_gids(&[10, 20, 65534]);
    let p = run_probe(&rt, &b, "user");
    assert_eq!(
        p["uid"],
        serde_json::json!([1000, 1000, 1000, 1000]),
        "real/effective/saved/fs uid"
    );
    assert_eq!(
        p["gid"],
        serde_json::json!([1001, 1001, 1001, 1001]),
        "real/effective/saved/fs gid"
    );
    let mut groups: Vec<i64> = p["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_i64().unwrap())
        .collect();
    groups.sort();
    groups.dedup();
    groups.retain(|g| *g != 1001);
    assert_eq!(
        groups,
        [10, 20, 65534],
        "supplementary groups {:?}",
        p["groups"]
    );
}

#[test]
fn user_without_additional_gids_has_no_root_group() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.user(1000, 1000);
    let p = run_probe(&rt, &b, "nogroups");
    let groups: Vec<i64> = p["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_i64().unwrap())
        .collect();
    assert!(
        !groups.contains(&0),
        "container process kept the root group: {groups:?}"
    );
}

#[test]
fn umask_is_applied() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.umask(0o027);
    let p = run_probe(&rt, &b, "umask");
    assert_eq!(p["umask"], "0027", "{p}");
    let mut b2 = Bundle::busybox();
    b2.unset("/process/user/umask");
    let p2 = run_probe(&rt, &b2, "umaskdef");
    assert_eq!(p2["umask"], "0022", "default umask is 0022 like runc: {p2}");
}

fn caps_of(p: &Value, set: &str) -> u64 {
    cap_hex(
        p["caps"][set]
            .as_str()
            .unwrap_or_else(|| panic!("no caps.{set} in {p}")),
    )
}

#[test]
fn capabilities_all_five_sets_as_root() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.caps(
        "bounding",
        &[
            "CAP_CHOWN",
            "CAP_KILL",
            "CAP_NET_RAW",
            "CAP_SETPCAP",
            "CAP_SYS_CHROOT",
        ],
    )
    .caps("permitted", &["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"])
    .caps("effective", &["CAP_CHOWN", "CAP_KILL"])
    .caps("inheritable", &["CAP_KILL", "CAP_NET_RAW"])
    .caps("ambient", &["CAP_KILL"]);
    b.no_new_privileges(true);
    let p = run_probe(&rt, &b, "capsroot");
    assert_eq!(
        caps_of(&p, "bounding"),
        cap_mask(&[
            "CAP_CHOWN",
            "CAP_KILL",
            "CAP_NET_RAW",
            "CAP_SETPCAP",
            "CAP_SYS_CHROOT"
        ]),
        "bounding {p}"
    );
    assert_eq!(
        caps_of(&p, "inheritable"),
        cap_mask(&["CAP_KILL", "CAP_NET_RAW"]),
        "inheritable {p}"
    );
    assert_eq!(
        caps_of(&p, "ambient"),
        cap_mask(&["CAP_KILL"]),
        "ambient {p}"
    );
    // uid 0 execve: permitted = bounding | inheritable, but noNewPrivileges caps it to the old
    // permitted set, and root's effective = permitted.
    let pe = cap_mask(&["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"]);
    assert_eq!(caps_of(&p, "permitted"), pe, "permitted {p}");
    assert_eq!(caps_of(&p, "effective"), pe, "effective {p}");
}

#[test]
fn capabilities_all_five_sets_as_non_root() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.user(1000, 1000)
        .caps(
            "bounding",
            &[
                "CAP_CHOWN",
                "CAP_KILL",
                "CAP_NET_RAW",
                "CAP_NET_BIND_SERVICE",
            ],
        )
        .caps(
            "permitted",
            &["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        )
        .caps(
            "effective",
            &["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        )
        .caps("inheritable", &["CAP_KILL", "CAP_NET_BIND_SERVICE"])
        .caps("ambient", &["CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let p = run_probe(&rt, &b, "capsuser");
    let amb = cap_mask(&["CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    assert_eq!(
        caps_of(&p, "bounding"),
        cap_mask(&[
            "CAP_CHOWN",
            "CAP_KILL",
            "CAP_NET_RAW",
            "CAP_NET_BIND_SERVICE"
        ]),
        "{p}"
    );
    assert_eq!(caps_of(&p, "inheritable"), amb, "{p}");
    assert_eq!(caps_of(&p, "ambient"), amb, "{p}");
    // Non-root execve of a file without file caps: permitted = effective = ambient.
    assert_eq!(caps_of(&p, "permitted"), amb, "{p}");
    assert_eq!(caps_of(&p, "effective"), amb, "{p}");
}

#[test]
fn capabilities_default_spec_and_empty_inheritable() {
    // CVE-2022-29162 (runc) / CVE-2022-27650 (crun): inheritable must be empty unless asked for.
    let rt = Runtime::new();
    let b = Bundle::busybox();
    let p = run_probe(&rt, &b, "capsdef");
    assert_eq!(
        caps_of(&p, "inheritable"),
        0,
        "CapInh not empty by default: {p}"
    );
    let want = cap_mask(&["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    assert_eq!(
        caps_of(&p, "bounding"),
        want,
        "default spec bounding set: {p}"
    );
    assert_eq!(
        caps_of(&p, "effective"),
        want,
        "default spec effective set: {p}"
    );
}

#[test]
fn unknown_capability_is_refused_or_warned() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.caps("bounding", &["CAP_KILL", "CAP_NO_SUCH_THING"]);
    let id = unique("badcap");
    let o = rt.run(&id, &b);
    // Never silently ignored: either refused, or (runc's choice, for caps unknown to an older
    // kernel) a warning that names it.
    o.errors_contain("CAP_NO_SUCH_THING");
}

#[test]
fn rlimits_are_applied() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.rlimit("RLIMIT_NOFILE", 100, 200)
        .rlimit("RLIMIT_NPROC", 500, 1000)
        .rlimit("RLIMIT_CORE", 0, 0)
        .rlimit("RLIMIT_MSGQUEUE", 4096, 8192);
    let p = run_probe(&rt, &b, "rlimit");
    for (k, s, h) in [
        ("RLIMIT_NOFILE", 100, 200),
        ("RLIMIT_NPROC", 500, 1000),
        ("RLIMIT_CORE", 0, 0),
        ("RLIMIT_MSGQUEUE", 4096, 8192),
    ] {
        assert_eq!(p["rlimits"][k]["soft"], s, "{k} soft: {}", p["rlimits"]);
        assert_eq!(p["rlimits"][k]["hard"], h, "{k} hard: {}", p["rlimits"]);
    }
}

#[test]
fn unknown_rlimit_is_rejected() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.rlimit("RLIMIT_BOGUS", 1, 1);
    let o = rt.run(&unique("badrlimit"), &b);
    o.failed().errors_contain("RLIMIT_BOGUS");
}

#[test]
fn no_new_privileges_on_and_off() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.no_new_privileges(true);
    assert_eq!(run_probe(&rt, &b, "nnp1")["no_new_privs"], "1");
    b.no_new_privileges(false);
    assert_eq!(run_probe(&rt, &b, "nnp0")["no_new_privs"], "0");
}

#[test]
fn oom_score_adj_is_applied() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.oom_score_adj(523);
    assert_eq!(run_probe(&rt, &b, "oom")["oom_score_adj"], "523");
}

// runc 1.1.5 ignores `domainname` (added in runc 1.2): this test fails there.
#[test]
fn hostname_and_domainname() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.hostname("bt-host").domainname("bt.example");
    let p = run_probe(&rt, &b, "uts");
    assert_eq!(p["hostname"], "bt-host");
    assert_eq!(p["domainname"], "bt.example");
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_ne!(host.trim(), "bt-host", "hostname leaked to the host");
}

#[test]
fn hostname_without_uts_namespace_is_rejected() {
    let rt = Runtime::new();
    let before = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let mut b = Bundle::busybox();
    b.remove_namespace("uts").hostname("bt-must-not-apply");
    let o = rt.run(&unique("utsless"), &b);
    o.failed();
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        before,
        "host hostname changed!{o}"
    );
}

#[test]
fn sysctl_valid_is_applied_in_the_container_only() {
    let rt = Runtime::new();
    let host_shm = fs::read_to_string("/proc/sys/kernel/shm_rmid_forced").unwrap();
    let host_port = fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").unwrap();
    let mut b = Bundle::busybox();
    b.sysctl("kernel.shm_rmid_forced", "1")
        .sysctl("net.ipv4.ip_unprivileged_port_start", "555");
    b.sh("cat /proc/sys/kernel/shm_rmid_forced /proc/sys/net/ipv4/ip_unprivileged_port_start");
    let id = unique("sysctl");
    let o = rt.run(&id, &b);
    o.ok();
    let vals: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(vals, ["1", "555"], "{o}");
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/shm_rmid_forced").unwrap(),
        host_shm,
        "host ipc sysctl changed"
    );
    assert_eq!(
        fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").unwrap(),
        host_port,
        "host net sysctl changed"
    );
}

#[test]
fn sysctl_not_namespaced_is_rejected() {
    let rt = Runtime::new();
    let cur = fs::read_to_string("/proc/sys/kernel/panic").unwrap();
    let mut b = Bundle::busybox();
    // The same value as the host's, so a runtime that wrongly applies it changes nothing.
    b.sysctl("kernel.panic", cur.trim());
    rt.run(&unique("sysctlhost"), &b).failed();
}

#[test]
fn sysctl_net_without_netns_is_rejected() {
    let rt = Runtime::new();
    let path = "/proc/sys/net/ipv4/ip_unprivileged_port_start";
    let before = fs::read_to_string(path).unwrap();
    let mut b = Bundle::busybox();
    b.remove_namespace("network")
        .sysctl("net.ipv4.ip_unprivileged_port_start", "777");
    let o = rt.run(&unique("sysctlnonet"), &b);
    let after = fs::read_to_string(path).unwrap();
    if after != before {
        let _ = fs::write(path, &before);
    }
    assert_eq!(
        after, before,
        "runtime wrote a net sysctl into the host's netns!{o}"
    );
    o.failed();
}

#[test]
fn sysctl_unknown_key_is_rejected() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.sysctl("kernel.berth_no_such_sysctl", "1");
    rt.run(&unique("sysctlbad"), &b).failed();
}

#[test]
fn cve_2025_52881_sysctl_key_traversal_is_rejected() {
    // A namespaced-looking key that walks out of its subtree. runc 1.1.5 predates the fix and may
    // fail this test; the value equals the host's so a wrong write changes nothing.
    let rt = Runtime::new();
    let cur = fs::read_to_string("/proc/sys/kernel/panic").unwrap();
    let mut b = Bundle::busybox();
    b.sysctl("net/ipv4/../../kernel/panic", cur.trim());
    rt.run(&unique("sysctltrav"), &b).failed();
}

#[test]
fn personality_linux32() {
    // Not supported by runc 1.1.5 (added in runc 1.2): runc ignores the field, so this fails there.
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.set(
        "/linux/personality",
        serde_json::json!({"domain": "LINUX32"}),
    );
    let p = run_probe(&rt, &b, "pers");
    assert_eq!(p["personality"], "00000008", "{p}");
}

#[test]
fn annotations_are_accepted() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.set(
        "/annotations",
        serde_json::json!({"org.example.key": "value"}),
    );
    let id = unique("annot");
    rt.create(&id, &b).ok();
    let st = rt.state(&id);
    assert_eq!(
        st["annotations"]["org.example.key"], "value",
        "runc reports annotations in state: {st}"
    );
}
