//! Issue 2, item 2 (maskedPaths, readonlyPaths) and security-bar SEC-15/SEC-28.

use berth_tests::*;
use serde_json::Value;
use std::fs;

const EROFS: i64 = 30;

fn lines_json(o: &Out) -> Vec<Value> {
    o.stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn masked_file_reads_empty_and_masked_dir_is_empty() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    fs::create_dir_all(b.rootfs().join("secretdir")).unwrap();
    fs::write(b.rootfs().join("secretdir/inside"), "hidden").unwrap();
    fs::write(b.rootfs().join("secretfile"), "hidden").unwrap();
    b.masked_paths(&[
        "/secretdir",
        "/secretfile",
        "/proc/timer_list",
        "/does/not/exist",
    ]);
    b.sh("probe ls /secretdir; probe read /secretfile; probe read /proc/timer_list; probe stat /proc/timer_list; probe write /secretdir/new x; exit 0");
    let o = rt.run(&unique("mask"), &b);
    o.ok();
    let r = lines_json(&o);
    assert_eq!(r.len(), 5, "{o}");
    assert_eq!(
        r[0]["entries"],
        serde_json::json!([]),
        "masked dir not empty:{o}"
    );
    assert_eq!(r[1]["data"], "", "masked file not empty:{o}");
    assert_eq!(r[2]["data"], "", "/proc/timer_list not masked:{o}");
    // Masking uses /dev/null (char 1:3) for files.
    assert_eq!(r[3]["type"], "char", "{o}");
    assert_eq!(
        (r[3]["major"].as_i64(), r[3]["minor"].as_i64()),
        (Some(1), Some(3)),
        "{o}"
    );
    assert_eq!(r[4]["errno"], EROFS, "masked dir must be read-only:{o}");
}

#[test]
fn default_masked_paths_of_spec_are_applied() {
    let rt = Runtime::new();
    let b = Bundle::busybox();
    let masked: Vec<String> = b.config["linux"]["maskedPaths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(
        masked.iter().any(|m| m == "/proc/timer_list"),
        "spec maskedPaths lacks /proc/timer_list: {masked:?}"
    );
    let o = rt.run(&unique("maskdef"), &b);
    o.ok();
    let mi = parse_mountinfo(o.probe()["mountinfo"].as_str().unwrap());
    for m in masked {
        if fs::metadata(&m).is_ok() {
            assert!(
                mi.iter().any(|x| x.mount_point == m),
                "{m} exists but is not masked: {mi:#?}"
            );
        }
    }
}

#[test]
fn readonly_paths_fail_with_erofs() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    b.mount("/data", "tmpfs", "tmpfs", &[]).readonly_paths(&[
        "/data",
        "/proc/sys",
        "/does/not/exist",
    ]);
    b.sh("probe write /data/x 1; probe write /proc/sys/kernel/hostname x; probe read /proc/sys/kernel/ostype; exit 0");
    let o = rt.run(&unique("ro"), &b);
    o.ok();
    let r = lines_json(&o);
    assert_eq!(r[0]["errno"], EROFS, "{o}");
    assert_eq!(r[1]["errno"], EROFS, "{o}");
    assert_eq!(
        r[2]["data"], "Linux\n",
        "readonly path must stay readable:{o}"
    );
}

#[test]
fn masked_and_readonly_with_readonly_rootfs_and_duplicates() {
    // SEC-28: duplicates are fine, a read-only rootfs is fine.
    let rt = Runtime::new();
    let mut b = Bundle::busybox();
    fs::write(b.rootfs().join("dupfile"), "hidden").unwrap();
    b.readonly_root(true)
        .masked_paths(&["/dupfile", "/dupfile", "/proc/timer_list"])
        .readonly_paths(&["/proc/sys", "/proc/sys"]);
    b.probe(&["read", "/dupfile"]);
    let o = rt.run(&unique("dups"), &b);
    o.ok();
    assert_eq!(o.probe()["data"], "", "{o}");
}

#[test]
fn cve_2025_31133_masking_never_uses_a_fake_dev_null() {
    // SEC-15: if the rootfs plants /dev/null as a symlink or regular file, masking must not bind that
    // (which would expose or write the target). The spec's /dev tmpfs hides the rootfs /dev, so use
    // a config without it: the runtime creates /dev/null itself or refuses.
    let rt = Runtime::new();
    let marker = Marker::new();
    let mut b = Bundle::busybox();
    b.remove_mount("/dev")
        .remove_mount("/dev/pts")
        .remove_mount("/dev/shm")
        .remove_mount("/dev/mqueue");
    std::os::unix::fs::symlink(&marker.path, b.rootfs().join("dev/null")).unwrap();
    fs::write(b.rootfs().join("masked"), "hidden").unwrap();
    b.masked_paths(&["/masked"]).probe(&["read", "/masked"]);
    let o = rt.run(&unique("fakenull"), &b);
    assert!(
        !o.stdout.contains(&marker.secret),
        "container read the host marker through a fake /dev/null:{o}"
    );
    assert_eq!(
        fs::read_to_string(&marker.path).unwrap(),
        marker.secret,
        "host marker changed"
    );
    if o.success() {
        assert_eq!(o.probe()["data"], "", "masked file not empty:{o}");
    }
}
