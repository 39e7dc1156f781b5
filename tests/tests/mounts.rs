//! Issue 2, item 2 (root, mounts, propagation) and the mount CVEs of security-bar.md 1.B.

use berth_tests::*;
use serde_json::Value;
use std::fs;
use std::time::Duration;

const EROFS: i64 = 30;

fn run_out(rt: &Runtime, b: &Bundle, tag: &str) -> Out {
    let o = rt.run(&unique(tag), b);
    o.ok();
    o
}

/// Probe lines printed by a `sh -c` that runs several probe commands.
fn lines_json(o: &Out) -> Vec<Value> {
    o.stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn mount_at<'a>(mi: &'a [MountInfo], dest: &str) -> &'a MountInfo {
    mi.iter()
        .rev()
        .find(|m| m.mount_point == dest)
        .unwrap_or_else(|| panic!("no mount at {dest} in {mi:#?}"))
}

fn container_mountinfo(p: &Value) -> Vec<MountInfo> {
    parse_mountinfo(
        p["mountinfo"]
            .as_str()
            .unwrap_or_else(|| panic!("no mountinfo: {p}")),
    )
}

#[test]
fn bind_mounts_rw_and_ro() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let src = b.host_dir("src");
    fs::write(src.join("hello"), "from-host").unwrap();
    let s = src.to_str().unwrap();
    b.mount("/mnt/rw", "bind", s, &["bind"])
        .mount("/mnt/ro", "bind", s, &["bind", "ro"]);
    b.sh("probe read /mnt/ro/hello; probe write /mnt/rw/new from-container; probe write /mnt/ro/new2 x; exit 0");
    let o = run_out(&rt, &b, "bind");
    let r = lines_json(&o);
    assert_eq!(r[0]["data"], "from-host", "{o}");
    assert_eq!(r[1]["ok"], true, "{o}");
    assert_eq!(r[2]["errno"], EROFS, "write to ro bind:{o}");
    assert_eq!(
        fs::read_to_string(src.join("new")).unwrap(),
        "from-container"
    );
    assert!(!src.join("new2").exists());
}

#[test]
fn bind_is_not_recursive_and_rbind_is() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let src = b.host_dir("src");
    let sub = b.host_tmpfs("src/sub");
    fs::write(sub.join("inner"), "in-submount").unwrap();
    let s = src.to_str().unwrap();
    b.mount("/mnt/bind", "bind", s, &["bind"])
        .mount("/mnt/rbind", "bind", s, &["rbind"]);
    b.sh("probe ls /mnt/bind/sub; probe read /mnt/rbind/sub/inner");
    let o = run_out(&rt, &b, "rbind");
    let r = lines_json(&o);
    assert_eq!(
        r[0]["entries"],
        serde_json::json!([]),
        "plain bind must not carry the submount:{o}"
    );
    assert_eq!(
        r[1]["data"], "in-submount",
        "rbind must carry the submount:{o}"
    );
}

// Recursive read-only ("rro", via mount_setattr) exists in runc since 1.1.
#[test]
fn rbind_with_recursive_ro_makes_submounts_ro() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let src = b.host_dir("src");
    b.host_tmpfs("src/sub");
    let s = src.to_str().unwrap();
    b.mount("/mnt/r", "bind", s, &["rbind", "rro"]);
    b.sh("probe write /mnt/r/top x; probe write /mnt/r/sub/deep x; exit 0");
    let o = run_out(&rt, &b, "rro");
    let r = lines_json(&o);
    assert_eq!(r[0]["errno"], EROFS, "top of rro mount writable:{o}");
    assert_eq!(r[1]["errno"], EROFS, "submount of rro mount writable:{o}");
    // The host's submount itself stays writable.
    fs::write(src.join("sub/hostwrite"), "ok").expect("host submount became read-only");
}

#[test]
fn tmpfs_with_options() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.mount(
        "/mnt/t",
        "tmpfs",
        "tmpfs",
        &["nosuid", "nodev", "noexec", "size=1m", "mode=710"],
    );
    b.sh("probe stat /mnt/t; probe info");
    let o = run_out(&rt, &b, "tmpfs");
    let r = lines_json(&o);
    assert_eq!(r[0]["mode"], 0o710, "{o}");
    let mi = container_mountinfo(&r[1]);
    let m = mount_at(&mi, "/mnt/t");
    assert_eq!(m.fstype, "tmpfs");
    for f in ["nosuid", "nodev", "noexec"] {
        assert!(m.options.split(',').any(|o| o == f), "{f} missing: {m:?}");
    }
    assert!(m.super_options.contains("size=1024k"), "{m:?}");
    assert!(m.super_options.contains("mode=710"), "{m:?}");
}

#[test]
fn unknown_mount_option_is_an_error() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.mount("/mnt/t", "tmpfs", "tmpfs", &["berth-bogus-option"]);
    rt.run(&unique("badopt"), &b).failed();
}

#[test]
fn proc_sysfs_devpts_mqueue_cgroup_mounts() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.mount("/mnt/proc2", "proc", "proc", &["nosuid", "nodev", "noexec"]);
    let o = run_out(&rt, &b, "fstypes");
    let mi = container_mountinfo(&o.probe());
    assert_eq!(mount_at(&mi, "/proc").fstype, "proc");
    assert_eq!(mount_at(&mi, "/mnt/proc2").fstype, "proc");
    let sys = mount_at(&mi, "/sys");
    assert_eq!(sys.fstype, "sysfs");
    assert!(
        sys.options.starts_with("ro"),
        "spec mounts /sys ro: {sys:?}"
    );
    let pts = mount_at(&mi, "/dev/pts");
    assert_eq!(pts.fstype, "devpts");
    assert!(
        pts.super_options.contains("ptmxmode=666") && pts.super_options.contains("mode=620"),
        "{pts:?}"
    );
    assert_eq!(mount_at(&mi, "/dev/mqueue").fstype, "mqueue");
    assert_eq!(mount_at(&mi, "/dev/shm").fstype, "tmpfs");
    // cgroup: on v1/hybrid a tmpfs with one ro cgroup mount per hierarchy, on v2 one cgroup2 mount.
    let cgs: Vec<&MountInfo> = mi
        .iter()
        .filter(|m| {
            m.mount_point.starts_with("/sys/fs/cgroup")
                && (m.fstype == "cgroup" || m.fstype == "cgroup2")
        })
        .collect();
    assert!(
        !cgs.is_empty(),
        "no cgroup mounts under /sys/fs/cgroup: {mi:#?}"
    );
    for m in cgs {
        assert!(
            m.options.split(',').next() == Some("ro"),
            "cgroup mount not ro (CVE-2023-25809): {m:?}"
        );
    }
}

#[test]
fn cgroupfs_is_read_only_inside() {
    // security-bar SEC-24 (CVE-2023-25809): the container must not write to its cgroupfs.
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.sh("probe write /sys/fs/cgroup/pids/pids.max 1; probe write /sys/fs/cgroup/memory/memory.limit_in_bytes 1; exit 0");
    let o = run_out(&rt, &b, "cgro");
    for r in lines_json(&o) {
        assert_eq!(r["ok"], false, "cgroupfs writable inside:{o}");
    }
}

#[test]
fn readonly_rootfs() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.readonly_root(true).probe(&["write", "/newfile", "x"]);
    let o = rt.run(&unique("roroot"), &b);
    o.code_is(1);
    assert_eq!(o.probe()["errno"], EROFS, "{o}");
    b.readonly_root(false);
    rt.run(&unique("rwroot"), &b).ok();
    assert_eq!(fs::read_to_string(b.rootfs().join("newfile")).unwrap(), "x");
}

fn root_line(p: &Value) -> MountInfo {
    let mi = container_mountinfo(p);
    mount_at(&mi, "/").clone()
}

// Fails under runc 1.1.5: runc applies rootfsPropagation to "/" before it bind-mounts the rootfs
// and then makes the rootfs' parent private, so the container's "/" is never shared. The spec
// says the value sets the rootfs's propagation (crun does so).
#[test]
fn rootfs_propagation_shared_and_private() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.set("/linux/rootfsPropagation", serde_json::json!("shared"));
    let o = run_out(&rt, &b, "propshared");
    let r = root_line(&o.probe());
    assert!(
        r.optional.contains("shared:"),
        "rootfsPropagation shared not applied: {r:?}"
    );
    b.set("/linux/rootfsPropagation", serde_json::json!("private"));
    let o = run_out(&rt, &b, "propprivate");
    let r = root_line(&o.probe());
    assert!(
        !r.optional.contains("shared:") && !r.optional.contains("master:"),
        "rootfsPropagation private not applied: {r:?}"
    );
}

#[test]
fn mount_propagation_flags() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.mount("/mnt/sh", "tmpfs", "tmpfs", &["rshared"])
        .mount("/mnt/pr", "tmpfs", "tmpfs", &["rprivate"])
        .mount("/mnt/ub", "tmpfs", "tmpfs", &["runbindable"]);
    let o = run_out(&rt, &b, "mprop");
    let mi = container_mountinfo(&o.probe());
    assert!(
        mount_at(&mi, "/mnt/sh").optional.contains("shared:"),
        "{mi:#?}"
    );
    assert!(mount_at(&mi, "/mnt/pr").optional.is_empty(), "{mi:#?}");
    assert!(
        mount_at(&mi, "/mnt/ub").optional.contains("unbindable"),
        "{mi:#?}"
    );
}

#[test]
fn mounts_do_not_leak_to_the_host() {
    // security-bar SEC-29 (crun test_mount_no_leak_to_host). The tmpfs gets a unique source name so
    // a leak is found wherever it lands on the host.
    let rt = Runtime::new();
    let before = HostMounts::snapshot();
    let mut b = Bundle::busybox();
    let src = b.host_dir("src");
    let tag = unique("leaktmpfs");
    b.mount("/mnt/b", "bind", src.to_str().unwrap(), &["rbind"])
        .mount("/mnt/t", "tmpfs", &tag, &[]);
    b.probe(&["sleep"]);
    let id = unique("noleak");
    let check = |when: &str| {
        let new = before.new_since();
        let bundle = b.path().to_string_lossy().into_owned();
        let leaked: Vec<&MountInfo> = new
            .iter()
            .filter(|m| {
                m.source == tag || m.mount_point.starts_with(&bundle) || m.root.contains(&bundle)
            })
            .collect();
        assert!(
            leaked.is_empty(),
            "mounts visible on the host {when}: {leaked:#?}"
        );
    };
    rt.create(&id, &b).ok();
    check("while created");
    rt.start(&id).ok();
    check("while running");
    rt.delete_force(&id).ok();
    check("after delete");
}

#[test]
fn cve_2021_30465_symlinked_mount_destinations_stay_inside_rootfs() {
    // security-bar SEC-09: destinations through absolute and relative symlinks resolve in the rootfs.
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let tag = unique("escape");
    let hostpath = std::path::PathBuf::from(format!("/{tag}"));
    std::os::unix::fs::symlink("/", b.rootfs().join("abs")).unwrap();
    std::os::unix::fs::symlink("../../../../../../../..", b.rootfs().join("rel")).unwrap();
    b.mount(&format!("/abs/{tag}/a"), "tmpfs", "tmpfs", &[])
        .mount(&format!("/rel/{tag}/b"), "tmpfs", "tmpfs", &[]);
    b.readonly_root(false);
    let o = rt.run(&unique("symdest"), &b);
    let escaped = hostpath.exists();
    if escaped {
        let _ = fs::remove_dir_all(&hostpath);
    }
    assert!(
        !escaped,
        "runtime created {} on the host through a rootfs symlink!{o}",
        hostpath.display()
    );
    o.ok();
    let mi = container_mountinfo(&o.probe());
    assert!(
        mi.iter().any(|m| m.mount_point == format!("/{tag}/a")),
        "mount not at /{tag}/a inside: {mi:#?}"
    );
    assert!(
        mi.iter().any(|m| m.mount_point == format!("/{tag}/b")),
        "mount not at /{tag}/b inside: {mi:#?}"
    );
}

#[test]
fn cve_2019_16884_non_procfs_on_proc_is_rejected() {
    // security-bar SEC-11: only a real procfs may be mounted on /proc.
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let src = b.host_dir("fakeproc");
    b.remove_mount("/proc")
        .mount("/proc", "bind", src.to_str().unwrap(), &["rbind"]);
    rt.run(&unique("fakeproc"), &b).failed();
}

// Fails under runc 1.1.5: its checkProcMount only guards bind and generic mounts, a tmpfs under
// /proc is let through. security-bar 1.B CVE-2019-16884 (b) requires the refusal.
#[test]
fn cve_2019_16884_tmpfs_under_proc_is_rejected() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.mount("/proc/self/attr", "tmpfs", "tmpfs", &[]);
    rt.run(&unique("procattr"), &b).failed();
}

#[test]
fn cve_2023_27561_proc_symlink_in_rootfs_is_rejected() {
    // security-bar SEC-12 (also CVE-2019-19921 / CVE-2023-28642).
    let rt = Runtime::new();
    let b = Bundle::busybox();
    fs::remove_dir(b.rootfs().join("proc")).unwrap();
    fs::create_dir(b.rootfs().join("fakeproc")).unwrap();
    std::os::unix::fs::symlink("/fakeproc", b.rootfs().join("proc")).unwrap();
    let o = rt.run(&unique("procsym"), &b);
    o.failed();
}

#[test]
fn mount_into_missing_destination_creates_it() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.mount("/new/deep/dir", "tmpfs", "tmpfs", &[])
        .probe(&["stat", "/new/deep/dir"]);
    let o = run_out(&rt, &b, "mkdirdest");
    assert_eq!(o.probe()["type"], "dir", "{o}");
}

#[test]
fn file_bind_mount() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let d = b.host_dir("files");
    fs::write(d.join("f"), "file-content").unwrap();
    b.mount(
        "/etc/berth-file",
        "bind",
        d.join("f").to_str().unwrap(),
        &["bind", "ro"],
    )
    .probe(&["read", "/etc/berth-file"]);
    let o = run_out(&rt, &b, "filebind");
    assert_eq!(o.probe()["data"], "file-content", "{o}");
    let _ = Duration::from_secs(0);
}

#[test]
fn rbind_with_recursive_nosuid_nodev_noexec() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let src = b.host_dir("src");
    b.host_tmpfs("src/sub");
    b.mount(
        "/mnt/r",
        "bind",
        src.to_str().unwrap(),
        &[
            "rbind",
            "rnosuid",
            "rnodev",
            "rnoexec",
            "rnoatime",
            "rnosymfollow",
        ],
    );
    let o = run_out(&rt, &b, "rflags");
    let mi = container_mountinfo(&o.probe());
    for dest in ["/mnt/r", "/mnt/r/sub"] {
        let m = mount_at(&mi, dest);
        for f in ["nosuid", "nodev", "noexec"] {
            assert!(
                m.options.split(',').any(|x| x == f),
                "{dest} lacks {f}: {m:?}"
            );
        }
    }
}

#[test]
fn atime_options() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.mount("/mnt/na", "tmpfs", "tmpfs", &["noatime"]).mount(
        "/mnt/sa",
        "tmpfs",
        "tmpfs",
        &["strictatime"],
    );
    let o = run_out(&rt, &b, "atime");
    let mi = container_mountinfo(&o.probe());
    let na = mount_at(&mi, "/mnt/na");
    assert!(na.options.split(',').any(|x| x == "noatime"), "{na:?}");
    let sa = mount_at(&mi, "/mnt/sa");
    assert!(
        !sa.options
            .split(',')
            .any(|x| x == "relatime" || x == "noatime"),
        "{sa:?}"
    );
}

#[test]
fn bind_mount_with_type_none() {
    // runc's rootless spec uses {"type": "none", "options": ["rbind", ...]} for /sys.
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    let src = b.host_dir("src");
    fs::write(src.join("f"), "none-type").unwrap();
    b.mount("/mnt/n", "none", src.to_str().unwrap(), &["rbind", "ro"])
        .probe(&["read", "/mnt/n/f"]);
    let o = run_out(&rt, &b, "typenone");
    assert_eq!(o.probe()["data"], "none-type", "{o}");
}

// Issue 16, item 9: systemd-based images ship /etc/resolv.conf as a relative symlink
// (dangling in the image); a file bind-mount onto it follows it inside the rootfs, as runc
// does, and never outside.
#[test]
fn item9_file_mount_on_a_symlinked_etc_file_follows_it_inside_the_rootfs() {
    let rt = Runtime::new();
    let victim = Marker::new();
    let mut b = Bundle::busybox();
    let etc = b.rootfs().join("etc");
    std::os::unix::fs::symlink(
        "../run/systemd/resolve/stub-resolv.conf",
        etc.join("resolv.conf"),
    )
    .unwrap();
    // Links aimed at the host: a relative one full of `..` and an absolute one.
    let v = victim.dir.path().to_str().unwrap().to_string();
    std::os::unix::fs::symlink(
        format!("../../../../../../../..{v}/created"),
        etc.join("hosts"),
    )
    .unwrap();
    std::os::unix::fs::symlink(&victim.path, etc.join("hostname")).unwrap();
    let src = b.host_dir("files");
    for (f, text) in [
        ("resolv", "nameserver 192.0.2.1\n"),
        ("hosts", "h\n"),
        ("name", "n\n"),
    ] {
        fs::write(src.join(f), text).unwrap();
    }
    let s = |f: &str| src.join(f).to_string_lossy().into_owned();
    b.readonly_root(false)
        .mount("/etc/resolv.conf", "bind", &s("resolv"), &["bind", "ro"])
        .mount("/etc/hosts", "bind", &s("hosts"), &["bind", "ro"])
        .mount("/etc/hostname", "bind", &s("name"), &["bind", "ro"])
        .sh("cat /etc/resolv.conf /etc/hosts /etc/hostname");
    let o = rt.run(&unique("etclinks"), &b);
    let names: Vec<String> = fs::read_dir(victim.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["marker"],
        "the runtime created files in a host dir through rootfs symlinks:{o}"
    );
    assert_eq!(fs::read_to_string(&victim.path).unwrap(), victim.secret);
    o.ok();
    assert_eq!(o.stdout, "nameserver 192.0.2.1\nh\nn\n", "{o}");
    assert!(b
        .rootfs()
        .join("run/systemd/resolve/stub-resolv.conf")
        .is_file());
    assert!(b.rootfs().join(&v[1..]).join("created").is_file());
}
