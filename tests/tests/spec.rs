//! Issue 2, item 1: `spec`, `spec --rootless`, `spec --bundle`, `features`.

use berth_tests::*;
use serde_json::Value;
use std::fs;

fn spec_in(rt: &Runtime, args: &[&str], name: &str) -> Value {
    let dir = rt.work().join(name);
    fs::create_dir_all(&dir).unwrap();
    let mut a = vec!["spec"];
    a.extend_from_slice(args);
    let o = rt.cmd_in(Some(&dir), &a);
    o.ok();
    serde_json::from_slice(
        &fs::read(dir.join("config.json")).unwrap_or_else(|e| panic!("no config.json ({e}){o}")),
    )
    .unwrap_or_else(|e| panic!("config.json not JSON: {e}"))
}

#[test]
fn spec_default_is_runc_hardened() {
    let rt = Runtime::new();
    let c = spec_in(&rt, &[], "default");
    assert!(c["ociVersion"].as_str().unwrap().starts_with("1."), "{c}");
    assert_eq!(c["process"]["terminal"], true);
    assert_eq!(strs(&c["process"]["args"]), ["sh"]);
    assert_eq!(c["process"]["cwd"], "/");
    assert_eq!(c["process"]["user"]["uid"], 0);
    assert_eq!(c["process"]["noNewPrivileges"], true);
    assert_eq!(c["root"]["path"], "rootfs");
    assert_eq!(c["root"]["readonly"], true);
    let caps = &c["process"]["capabilities"];
    for set in ["bounding", "effective", "permitted"] {
        let mut v = strs(&caps[set]);
        v.sort();
        assert_eq!(
            v,
            ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "{set}: {caps}"
        );
    }
    assert!(
        strs(&caps["inheritable"]).is_empty(),
        "inheritable caps in spec: {caps}"
    );
    let rl = &c["process"]["rlimits"][0];
    assert_eq!(
        (
            rl["type"].as_str(),
            rl["soft"].as_u64(),
            rl["hard"].as_u64()
        ),
        (Some("RLIMIT_NOFILE"), Some(1024), Some(1024))
    );
    let mut ns: Vec<String> = c["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap().to_string())
        .collect();
    ns.sort();
    for want in ["ipc", "mount", "network", "pid", "uts"] {
        assert!(
            ns.iter().any(|n| n == want),
            "namespace {want} missing: {ns:?}"
        );
    }
    assert!(!ns.iter().any(|n| n == "user"), "{ns:?}");
    let masked = strs(&c["linux"]["maskedPaths"]);
    for m in [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/sys/firmware",
        "/proc/acpi",
        "/proc/scsi",
    ] {
        assert!(masked.iter().any(|x| x == m), "{m} not masked: {masked:?}");
    }
    let ro = strs(&c["linux"]["readonlyPaths"]);
    for m in [
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ] {
        assert!(ro.iter().any(|x| x == m), "{m} not read-only: {ro:?}");
    }
    let dests: Vec<String> = c["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["destination"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        dests,
        [
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys",
            "/sys/fs/cgroup"
        ],
        "mount list"
    );
    let sys = &c["mounts"][5];
    assert!(
        strs(&sys["options"]).iter().any(|o| o == "ro"),
        "/sys not ro: {sys}"
    );
}

#[test]
fn spec_rootless_maps_the_caller() {
    let rt = Runtime::new();
    let c = spec_in(&rt, &["--rootless"], "rootless");
    let ns: Vec<String> = c["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap().to_string())
        .collect();
    assert!(
        ns.iter().any(|n| n == "user"),
        "rootless spec lacks a user namespace: {ns:?}"
    );
    assert!(
        !ns.iter().any(|n| n == "network"),
        "runc's rootless spec shares the network namespace: {ns:?}"
    );
    let uid = proc_status(std::process::id() as i32)["Uid"]
        .split_whitespace()
        .next()
        .unwrap()
        .parse::<u64>()
        .unwrap();
    for k in ["uidMappings", "gidMappings"] {
        let m = &c["linux"][k][0];
        assert_eq!(m["containerID"], 0, "{k}: {m}");
        assert_eq!(m["size"], 1, "{k}: {m}");
        if k == "uidMappings" {
            assert_eq!(m["hostID"], uid, "{k}: {m}");
        }
    }
    let sys = c["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/sys")
        .expect("/sys mount");
    assert!(
        strs(&sys["options"]).iter().any(|o| o == "rbind"),
        "rootless /sys must be a bind: {sys}"
    );
    assert!(
        c["linux"]["resources"].is_null() || c["linux"]["resources"]["devices"].is_null(),
        "rootless spec cannot set device rules"
    );
}

#[test]
fn spec_bundle_flag_and_refuses_to_overwrite() {
    let rt = Runtime::new();
    let dir = rt.work().join("bundle-flag");
    fs::create_dir_all(&dir).unwrap();
    rt.cmd(&["spec", "--bundle", dir.to_str().unwrap()]).ok();
    assert!(dir.join("config.json").is_file());
    fs::write(dir.join("config.json"), "keep").unwrap();
    let o = rt.cmd(&["spec", "-b", dir.to_str().unwrap()]);
    o.code_is(1).errors_contain("exists");
    assert_eq!(
        fs::read_to_string(dir.join("config.json")).unwrap(),
        "keep",
        "spec overwrote config.json"
    );
}

#[test]
fn features_json_is_truthful_shape() {
    let rt = Runtime::new();
    let o = rt.cmd(&["features"]);
    o.ok();
    let f = o.json();
    for k in ["ociVersionMin", "ociVersionMax"] {
        assert!(
            f[k].as_str().is_some_and(|v| v.starts_with("1.")),
            "{k}: {f}"
        );
    }
    let hooks = strs(&f["hooks"]);
    for h in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        assert!(hooks.iter().any(|x| x == h), "hook {h} missing: {hooks:?}");
    }
    let opts = strs(&f["mountOptions"]);
    for m in [
        "ro", "rw", "bind", "rbind", "nosuid", "nodev", "noexec", "private", "rprivate", "shared",
        "rshared", "slave", "rslave", "rro",
    ] {
        assert!(
            opts.iter().any(|x| x == m),
            "mount option {m} missing: {opts:?}"
        );
    }
    let ns = strs(&f["linux"]["namespaces"]);
    for n in ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"] {
        assert!(ns.iter().any(|x| x == n), "namespace {n} missing: {ns:?}");
    }
    assert!(
        f["linux"]["capabilities"]
            .as_array()
            .is_some_and(|a| a.iter().any(|c| c == "CAP_SYS_ADMIN")),
        "{f}"
    );
    assert!(
        f["linux"]["cgroup"].is_object(),
        "linux.cgroup missing: {f}"
    );
}
