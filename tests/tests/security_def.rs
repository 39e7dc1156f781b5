//! Security regression suite, part 2: the default hardening DEF-01 … DEF-12 (security-bar.md
//! sections 2 and 5) checked inside a container run with the config `<runtime> spec --hardened`
//! writes (Bundle::hardened uses it unchanged except for args, terminal and cgroupsPath; plain
//! `spec` is runc's, without a seccomp profile).

mod security_common;

use berth_tests::*;
use security_common::*;
use serde_json::json;
use std::fs;

/// Docker's default set (14 caps); `spec` may be stricter, never wider.
const DOCKER_DEFAULT_CAPS: u64 = 0xa80425fb;

#[test]
fn def_01_capability_sets_of_spec_config() {
    let rt = Runtime::new();
    let b = Bundle::hardened();
    let caps = &b.config["process"]["capabilities"];
    let bnd = strs(&caps["bounding"]);
    let want = cap_mask(&bnd.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        want & !DOCKER_DEFAULT_CAPS,
        0,
        "spec grants caps beyond Docker's default set: {:?}",
        cap_names(want & !DOCKER_DEFAULT_CAPS)
    );
    let o = rt.run(&unique("def01"), &b);
    o.ok();
    let p = o.probe();
    let c = |s: &str| cap_hex(p["caps"][s].as_str().unwrap());
    for s in ["bounding", "permitted", "effective"] {
        assert_eq!(c(s), want, "{s} = {:?}:{o}", cap_names(c(s)));
    }
    assert_eq!(c("inheritable"), 0, "{o}");
    assert_eq!(c("ambient"), 0, "{o}");
    // Non-root: no permitted/effective caps at all.
    let mut b = Bundle::hardened();
    b.user(1000, 1000);
    let o = rt.run(&unique("def01u"), &b);
    o.ok();
    let p = o.probe();
    let c = |s: &str| cap_hex(p["caps"][s].as_str().unwrap());
    for s in ["permitted", "effective", "inheritable", "ambient"] {
        assert_eq!(c(s), 0, "uid 1000 has {s} caps {:?}:{o}", cap_names(c(s)));
    }
}

/// The 67 syscalls moby's default profile blocks for a default container (security-bar 2.1).
const BLOCKED: [&str; 67] = [
    "_sysctl",
    "acct",
    "add_key",
    "afs_syscall",
    "bpf",
    "clock_settime",
    "clone3",
    "create_module",
    "delete_module",
    "fanotify_init",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "get_mempolicy",
    "getpmsg",
    "init_module",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "migrate_pages",
    "mount",
    "mount_setattr",
    "move_mount",
    "move_pages",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pidfd_getfd",
    "pivot_root",
    "process_madvise",
    "putpmsg",
    "query_module",
    "quotactl",
    "quotactl_fd",
    "reboot",
    "request_key",
    "security",
    "set_mempolicy",
    "set_mempolicy_home_node",
    "setdomainname",
    "sethostname",
    "setns",
    "settimeofday",
    "swapoff",
    "swapon",
    "sysfs",
    "syslog",
    "tuxcall",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vhangup",
    "vserver",
];

/// Blocked even with every capability (no allow rule at all in the profile).
const BLOCKED_ALWAYS: [&str; 30] = [
    "_sysctl",
    "add_key",
    "afs_syscall",
    "create_module",
    "get_kernel_syms",
    "getpmsg",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "migrate_pages",
    "move_pages",
    "nfsservctl",
    "pivot_root",
    "putpmsg",
    "query_module",
    "request_key",
    "security",
    "swapoff",
    "swapon",
    "sysfs",
    "tuxcall",
    "uselib",
    "userfaultfd",
    "ustat",
    "vserver",
    "getpid",
    "getppid",
];

fn run_syscalls(
    rt: &Runtime,
    b: &mut Bundle,
    names: &[&str],
) -> (Out, std::collections::BTreeMap<String, (i64, i64)>) {
    install_attack(b);
    let mut a = vec!["/bin/attack", "syscalls"];
    a.extend_from_slice(names);
    b.args(&a);
    let o = rt.run(&unique("sys"), b);
    o.ok();
    let r = sys_results(&o.stdout);
    assert_eq!(r.len(), names.len(), "missing results:{o}");
    (o, r)
}

#[test]
fn def_02_seccomp_mode_and_blocked_syscalls() {
    let rt = Runtime::new();
    let b = Bundle::hardened();
    let o = rt.run(&unique("def02"), &b);
    o.ok();
    assert_eq!(o.probe()["seccomp"], "2", "not in seccomp filter mode:{o}");

    let mut b = Bundle::hardened();
    let mut names: Vec<&str> = BLOCKED.to_vec();
    names.push("getpid");
    let (o, r) = run_syscalls(&rt, &mut b, &names);
    let mut wrong = Vec::new();
    for n in BLOCKED {
        let want = if n == "clone3" { ENOSYS } else { EPERM };
        let (ret, errno) = r[n];
        if ret != -1 || errno != want {
            wrong.push(format!("{n}: ret {ret} errno {errno} (want errno {want})"));
        }
    }
    assert!(r["getpid"].0 > 0, "control getpid failed:{o}");
    assert!(
        wrong.is_empty(),
        "syscalls not blocked as moby's profile does: {wrong:#?}"
    );

    // AF_ALG (38) and AF_VSOCK (40) sockets are refused; AF_UNIX is not.
    for (dom, want_ok) in [(38, false), (40, false), (1, true)] {
        let mut b = Bundle::hardened();
        install_attack(&b);
        b.args(&["/bin/attack", "socket", &dom.to_string(), "5"]);
        let o = rt.run(&unique("sock"), &b);
        o.ok();
        let (ret, errno) = sys_results(&o.stdout)["socket"];
        if want_ok {
            assert!(ret >= 0, "control socket(AF_UNIX) failed:{o}");
        } else {
            assert_eq!((ret, errno), (-1, EPERM), "socket({dom}) not refused:{o}");
        }
    }
}

#[test]
fn def_02_seccomp_blocks_unconditional_denials_even_with_all_caps() {
    // With every capability the cap-gated rules open, but 28 syscalls have no allow rule at all.
    // Zero arguments make the kernel answer EFAULT/EINVAL/ENOSYS, so EPERM here is the filter.
    let rt = Runtime::new();
    let mut b = Bundle::hardened();
    grant_all_caps(&mut b);
    let (o, r) = run_syscalls(&rt, &mut b, &BLOCKED_ALWAYS);
    let mut wrong = Vec::new();
    for n in BLOCKED_ALWAYS.iter().filter(|n| !n.starts_with("getp")) {
        let (ret, errno) = r[*n];
        if ret != -1 || errno != EPERM {
            wrong.push(format!("{n}: ret {ret} errno {errno}"));
        }
    }
    assert!(r["getpid"].0 > 0, "{o}");
    assert!(wrong.is_empty(), "allowed with all caps: {wrong:#?}");
}

#[test]
fn def_03_syscalls_unknown_to_the_profile_get_enosys() {
    // A number beyond every syscall table: a default-EPERM filter without runc's -ENOSYS patch
    // would answer EPERM and make libc/Go skip their fallbacks.
    let rt = Runtime::new();
    let mut b = Bundle::hardened();
    let (o, r) = run_syscalls(&rt, &mut b, &["nr:1000", "nr:4000", "clone3"]);
    for n in ["nr:1000", "nr:4000", "clone3"] {
        assert_eq!(r[n], (-1, ENOSYS), "{n}:{o}");
    }
}

#[test]
fn def_03_syscalls_the_profile_allows_are_not_enosys() {
    // The other side of the -ENOSYS stub: syscalls the spec profile names as allowed must reach
    // the kernel on this kernel (6.x implements them all), not be answered ENOSYS/EPERM because
    // the runtime's syscall table is older than the profile. With zero arguments the kernel
    // answers EFAULT/EINVAL/EBADF/EOPNOTSUPP or 0.
    let rt = Runtime::new();
    let mut b = Bundle::hardened();
    let named: Vec<String> = b.config["linux"]["seccomp"]["syscalls"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|r| {
                    r["action"] == "SCMP_ACT_ALLOW"
                        && r["args"].as_array().is_none_or(|x| x.is_empty())
                })
                .flat_map(|r| strs(&r["names"]))
                .collect()
        })
        .unwrap_or_default();
    let newer = [
        ("cachestat", 451),
        ("fchmodat2", 452),
        ("map_shadow_stack", 453),
        ("futex_wake", 454),
        ("futex_wait", 455),
        ("futex_requeue", 456),
        ("statmount", 457),
        ("listmount", 458),
        ("mseal", 462),
    ];
    // The host kernel's own answer (this process has no filter): a syscall the kernel lacks
    // (e.g. map_shadow_stack without user shadow stacks) answers ENOSYS anyway and is skipped.
    let all: Vec<String> = newer.iter().map(|(_, nr)| format!("nr:{nr}")).collect();
    let host = std::process::Command::new(attack_binary())
        .arg("syscalls")
        .args(&all)
        .output()
        .expect("run the attacker on the host");
    let host = sys_results(&String::from_utf8_lossy(&host.stdout));
    let want: Vec<(&str, String)> = newer
        .iter()
        .filter(|(n, _)| named.iter().any(|x| x == n))
        .map(|(n, nr)| (*n, format!("nr:{nr}")))
        .filter(|(_, a)| host.get(a).is_some_and(|(_, e)| *e != ENOSYS))
        .collect();
    assert!(
        !want.is_empty(),
        "profile allows none of the newer syscalls; nothing to check"
    );
    let args: Vec<&str> = want.iter().map(|(_, a)| a.as_str()).collect();
    let (o, r) = run_syscalls(&rt, &mut b, &args);
    let wrong: Vec<String> = want
        .iter()
        .filter(|(_, a)| {
            let (ret, errno) = r[a.as_str()];
            ret == -1 && (errno == ENOSYS || errno == EPERM)
        })
        .map(|(n, a)| format!("{n} ({a}): {:?}", r[a.as_str()]))
        .collect();
    assert!(
        wrong.is_empty(),
        "syscalls the profile allows are refused by the filter: {wrong:?}{o}"
    );
}

#[test]
fn def_04_masked_paths_of_spec_are_masked() {
    let rt = Runtime::new();
    let mut b = Bundle::hardened();
    let masked = strs(&b.config["linux"]["maskedPaths"]);
    for m in [
        "/proc/acpi",
        "/proc/asound",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/sys/firmware",
        "/proc/scsi",
    ] {
        assert!(
            masked.iter().any(|x| x == m),
            "spec maskedPaths lacks {m}: {masked:?}"
        );
    }
    let mut script = String::new();
    let mut checks = Vec::new();
    for m in &masked {
        match fs::metadata(m) {
            Ok(md) if md.is_dir() => {
                script.push_str(&format!("probe ls {m}; probe write {m}/berth-x x; "));
                checks.push((m.clone(), true));
            }
            Ok(_) => {
                script.push_str(&format!("probe stat {m}; probe read {m}; "));
                checks.push((m.clone(), false));
            }
            Err(_) => {}
        }
    }
    script.push_str("exit 0");
    b.sh(&script);
    let o = rt.run(&unique("def04"), &b);
    o.ok();
    let r = lines_json(&o.stdout);
    assert_eq!(r.len(), checks.len() * 2, "{o}");
    for (i, (m, dir)) in checks.iter().enumerate() {
        let (a, c) = (&r[2 * i], &r[2 * i + 1]);
        if *dir {
            assert_eq!(a["entries"], json!([]), "{m} not empty:{o}");
            assert_eq!(c["ok"], false, "masked dir {m} writable:{o}");
        } else {
            assert!(
                a["type"] == "char" && a["major"] == 1 && a["minor"] == 3,
                "{m} not masked with /dev/null: {a}"
            );
            assert_eq!(c["data"], "", "{m} readable:{o}");
        }
    }
}

#[test]
fn def_05_readonly_paths_of_spec_are_readonly() {
    let rt = Runtime::new();
    let mut b = Bundle::hardened();
    let ro = strs(&b.config["linux"]["readonlyPaths"]);
    for m in [
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ] {
        assert!(
            ro.iter().any(|x| x == m),
            "spec readonlyPaths lacks {m}: {ro:?}"
        );
    }
    // 'h' only prints sysrq help should the write ever reach the kernel. This host's kernel may
    // lack /proc/sysrq-trigger (CONFIG_MAGIC_SYSRQ=n); then a sysctl stands in for it.
    let sysrq = if fs::metadata("/proc/sysrq-trigger").is_ok() {
        "probe write /proc/sysrq-trigger h"
    } else {
        "probe write /proc/sys/kernel/domainname x"
    };
    b.sh(&format!("probe write /proc/sys/kernel/hostname x; {sysrq}; probe write /proc/sys/vm/drop_caches 0; probe info"));
    let o = rt.run(&unique("def05"), &b);
    o.ok();
    let r = lines_json(&o.stdout);
    for (i, w) in r.iter().take(3).enumerate() {
        assert_eq!(w["errno"], EROFS, "write {i} not EROFS:{o}");
    }
    let mi = parse_mountinfo(o.probe()["mountinfo"].as_str().unwrap());
    for m in &ro {
        if fs::metadata(m).is_err() {
            continue;
        }
        let top = mi.iter().rev().find(|x| &x.mount_point == m);
        assert!(
            top.is_some_and(|x| x.options.split(',').any(|f| f == "ro")),
            "{m} is not a read-only mount: {top:?}"
        );
    }
}

#[test]
fn def_06_mount_options_match_the_spec_table() {
    let rt = Runtime::new();
    let b = Bundle::hardened();
    let o = rt.run(&unique("def06"), &b);
    o.ok();
    let mi = parse_mountinfo(o.probe()["mountinfo"].as_str().unwrap());
    // security-bar 2.7 (runc spec column; /proc carries no options there).
    let table: [(&str, &str, &[&str]); 6] = [
        ("/dev", "tmpfs", &["nosuid"]),
        ("/dev/pts", "devpts", &["nosuid", "noexec"]),
        ("/dev/shm", "tmpfs", &["nosuid", "noexec", "nodev"]),
        ("/dev/mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
        ("/sys", "sysfs", &["nosuid", "noexec", "nodev", "ro"]),
        ("/proc", "proc", &[]),
    ];
    for (dest, fstype, flags) in table {
        let m = mi
            .iter()
            .rev()
            .find(|m| m.mount_point == dest)
            .unwrap_or_else(|| panic!("no mount at {dest}: {mi:#?}"));
        assert_eq!(m.fstype, fstype, "{dest}: {m:?}");
        for f in flags {
            assert!(
                m.options.split(',').any(|x| x == *f),
                "{dest} lacks {f}: {m:?}"
            );
        }
    }
    let devpts = mi
        .iter()
        .rev()
        .find(|m| m.mount_point == "/dev/pts")
        .unwrap();
    for f in ["ptmxmode=666", "mode=620", "gid=5"] {
        assert!(
            devpts.super_options.split(',').any(|x| x == f),
            "/dev/pts lacks {f}: {devpts:?}"
        );
    }
    let cg: Vec<&MountInfo> = mi
        .iter()
        .filter(|m| {
            m.mount_point == "/sys/fs/cgroup" || m.mount_point.starts_with("/sys/fs/cgroup/")
        })
        .collect();
    assert!(!cg.is_empty(), "no cgroup mounts: {mi:#?}");
    for m in cg {
        for f in ["ro", "nosuid", "noexec", "nodev"] {
            assert!(
                m.options.split(',').any(|x| x == f),
                "{} lacks {f}: {m:?}",
                m.mount_point
            );
        }
    }
}

#[test]
fn def_07_device_nodes_are_exactly_the_oci_set() {
    let rt = Runtime::new();
    let mut b = Bundle::hardened();
    b.probe(&["ls", "/dev"]);
    let o = rt.run(&unique("def07"), &b);
    o.ok();
    let mut got = strs(&o.probe()["entries"]);
    got.retain(|n| n != "core"); // runc adds /dev/core -> /proc/kcore when kcore exists
    let want = [
        "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin",
        "stdout", "tty", "urandom", "zero",
    ];
    assert_eq!(
        got, want,
        "unexpected /dev contents (no console without a terminal):{o}"
    );
}

#[test]
fn def_08_device_cgroup_denies_open_of_new_nodes() {
    let rt = Runtime::new();
    let mut b = Bundle::hardened();
    add_caps(&mut b, &["CAP_MKNOD"]);
    b.sh("mknod /dev/sda b 8 0 && echo mknod-ok; probe read /dev/sda; mknod /dev/fuse c 10 229 && echo mknod-fuse-ok; probe read /dev/fuse; probe write /dev/null x; exit 0");
    let o = rt.run(&unique("def08"), &b);
    o.ok();
    assert!(
        o.stdout.contains("mknod-ok"),
        "mknod denied (devices 'm' is allowed by runc):{o}"
    );
    let r = lines_json(&o.stdout);
    assert_eq!(r[0]["errno"], EPERM, "/dev/sda (8:0) opened:{o}");
    assert_eq!(r[1]["ok"], false, "/dev/fuse opened:{o}");
    if o.stdout.contains("mknod-fuse-ok") {
        assert_eq!(r[1]["errno"], EPERM, "{o}");
    }
    assert_eq!(r[2]["ok"], true, "/dev/null not writable:{o}");
}

#[test]
fn def_09_rlimits_of_spec_config() {
    let rt = Runtime::new();
    let b = Bundle::hardened();
    let o = rt.run(&unique("def09"), &b);
    o.ok();
    let p = o.probe();
    assert_eq!(
        (
            p["rlimits"]["RLIMIT_NOFILE"]["soft"].as_u64(),
            p["rlimits"]["RLIMIT_NOFILE"]["hard"].as_u64()
        ),
        (Some(1024), Some(1024)),
        "{o}"
    );
}

#[test]
fn def_10_no_new_privileges_by_default() {
    let rt = Runtime::new();
    let b = Bundle::hardened();
    assert_eq!(b.config["process"]["noNewPrivileges"], true);
    let o = rt.run(&unique("def10"), &b);
    o.ok();
    assert_eq!(o.probe()["no_new_privs"], "1", "{o}");
}

#[test]
fn def_11_lsm_profile_refused_without_lsm() {
    // No AppArmor/SELinux on this host: a profile must be refused, not silently dropped.
    let lsm = host_lsms();
    assert!(
        !lsm.contains("apparmor"),
        "host has AppArmor ({lsm}); check /proc/self/attr/current = the profile instead"
    );
    let rt = Runtime::new();
    let b = Bundle::hardened();
    assert!(
        b.config["process"]["apparmorProfile"].is_null()
            && b.config["process"]["selinuxLabel"].is_null(),
        "spec sets an LSM label on a host without LSM"
    );
    let mut b = Bundle::hardened();
    b.set("/process/apparmorProfile", json!("docker-default"));
    let o = rt.run(&unique("def11"), &b);
    o.failed();
    assert!(
        parse_probe(&o.stdout).is_none(),
        "process ran unconfined:{o}"
    );
    assert!(o.errors().to_lowercase().contains("apparmor"), "{o}");
}

#[test]
fn def_12_kernel_escape_smoke() {
    let rt = Runtime::new();
    let mut b = Bundle::hardened();
    let (o, r) = run_syscalls(
        &rt,
        &mut b,
        &[
            "unshare",
            "open_by_handle_at",
            "keyctl",
            "bpf",
            "userfaultfd",
            "io_uring_setup",
            "fsopen",
            "getpid",
        ],
    );
    let ok: Vec<String> = r
        .iter()
        .filter(|(n, (ret, _))| *n != "getpid" && *ret != -1)
        .map(|(n, v)| format!("{n}: {v:?}"))
        .collect();
    assert!(ok.is_empty(), "escape primitives available: {ok:?}{o}");
    let mut b = Bundle::hardened();
    b.readonly_root(false).sh(
        "unshare -Urm true && echo unshare-ok; mkdir -p /tmp/cg; mount -t cgroup -o memory cgroup /tmp/cg && echo cgroup-ok; \
         mount -t cgroup2 none /tmp/cg && echo cgroup2-ok; mount -t tmpfs none /tmp/cg && echo tmpfs-ok; exit 0",
    );
    let o = rt.run(&unique("def12"), &b);
    o.ok();
    for bad in ["unshare-ok", "cgroup-ok", "cgroup2-ok", "tmpfs-ok"] {
        assert!(!o.stdout.contains(bad), "{bad}:{o}");
    }
}
