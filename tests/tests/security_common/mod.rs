//! Helpers shared by the security regression suite (security.rs, security_def.rs, security_rel.rs):
//! the static in-container attacker (attack.c) and small host-side checks.
#![allow(dead_code)]

use berth_tests::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub const T: Duration = Duration::from_secs(10);
pub const EPERM: i64 = 1;
pub const ENOSYS: i64 = 38;
pub const EROFS: i64 = 30;

const ATTACK_C: &str = include_str!("attack.c");

/// The attacker compiled with `gcc -static` (cached by content hash under the temp dir).
pub fn attack_binary() -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    ATTACK_C.hash(&mut h);
    let out = std::env::temp_dir().join(format!("berth-sec-attack-{:016x}", h.finish()));
    if out.is_file() {
        return out;
    }
    let dir = tempfile::Builder::new()
        .prefix("berth-sec-attack.")
        .tempdir()
        .unwrap();
    let src = dir.path().join("attack.c");
    fs::write(&src, ATTACK_C).unwrap();
    let bin = dir.path().join("attack");
    let o = Command::new("gcc")
        .args(["-static", "-O1", "-Wall", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .expect("run gcc (apt: gcc, libc6-dev)");
    assert!(
        o.status.success(),
        "gcc -static attack.c failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Atomic publish: parallel tests may race to build it.
    let tmp = out.with_extension(format!("tmp{}", std::process::id()));
    fs::copy(&bin, &tmp).unwrap();
    fs::rename(&tmp, &out).unwrap();
    out
}

/// Copy the attacker into the bundle as /bin/attack.
pub fn install_attack(b: &Bundle) {
    let dst = b.rootfs().join("bin/attack");
    fs::copy(attack_binary(), &dst).unwrap();
    fs::set_permissions(&dst, fs::Permissions::from_mode(0o755)).unwrap();
}

/// "SYS name ret errno" lines → name → (ret, errno).
pub fn sys_results(out: &str) -> BTreeMap<String, (i64, i64)> {
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() == 4 && f[0] == "SYS" {
                Some((f[1].to_string(), (f[2].parse().ok()?, f[3].parse().ok()?)))
            } else {
                None
            }
        })
        .collect()
}

/// Each JSON object line of the probe output, in order.
pub fn lines_json(s: &str) -> Vec<Value> {
    s.lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .filter_map(|l| serde_json::from_str(l.trim()).ok())
        .collect()
}

/// Remove `linux.seccomp` (tests that need ptrace/unshare like runc's bats, which have none).
pub fn no_seccomp(b: &mut Bundle) {
    b.unset("/linux/seccomp");
}

/// Remove the spec's /dev mounts so the rootfs /dev is what the runtime sees.
pub fn no_dev_mounts(b: &mut Bundle) {
    b.remove_mount("/dev")
        .remove_mount("/dev/pts")
        .remove_mount("/dev/shm")
        .remove_mount("/dev/mqueue");
}

/// Names in a host directory, sorted.
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// sha256-free content fingerprint: the whole file (runtime binaries are compared byte for byte).
pub fn file_bytes(p: &Path) -> Vec<u8> {
    fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// All caps known to the host kernel, by name.
pub fn all_caps() -> Vec<&'static str> {
    cap_names(host_bounding())
}

/// Give the process every capability the host knows in every set but ambient/inheritable.
pub fn grant_all_caps(b: &mut Bundle) {
    let all = all_caps();
    for set in ["bounding", "effective", "permitted"] {
        b.caps(set, &all);
    }
}

/// Add capabilities to bounding/effective/permitted.
pub fn add_caps(b: &mut Bundle, add: &[&str]) {
    for set in ["bounding", "effective", "permitted"] {
        let mut v: Vec<String> = b.config["process"]["capabilities"][set]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        for c in add {
            if !v.iter().any(|x| x == c) {
                v.push(c.to_string());
            }
        }
        b.set(
            &format!("/process/capabilities/{set}"),
            serde_json::json!(v),
        );
    }
}

/// The host's current kernel.core_pattern (tests that try to change it write this same value back,
/// so a vulnerable runtime is detected without damaging the host).
pub fn core_pattern() -> String {
    fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap()
}

/// Is a Linux security module that can confine containers active on this host?
pub fn host_lsms() -> String {
    fs::read_to_string("/sys/kernel/security/lsm").unwrap_or_default()
}

/// Exec in a running container: `<rt> exec [extra...] ID cmd...`.
pub fn exec(rt: &Runtime, id: &str, extra: &[&str], cmd: &[&str]) -> Out {
    let mut a = vec!["exec"];
    a.extend_from_slice(extra);
    a.push(id);
    a.extend_from_slice(cmd);
    rt.cmd(&a)
}

/// Start a detached container running `/bin/probe sleep 60` (or the bundle's args if already set
/// by the caller) and wait until it runs.
pub fn running(rt: &Runtime, b: &Bundle, tag: &str) -> String {
    let id = unique(tag);
    rt.run_detached(&id, b).ok();
    rt.wait_status(&id, "running", T);
    id
}

/// Processes (host pids) whose state is zombie and whose parent is `ppid`.
pub fn zombies_of(ppid: i32) -> Vec<i32> {
    let mut v = Vec::new();
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                continue;
            };
            if let Ok(s) = fs::read_to_string(format!("/proc/{pid}/stat")) {
                if let Some(i) = s.rfind(')') {
                    let f: Vec<&str> = s[i + 2..].split_whitespace().collect();
                    if f.first() == Some(&"Z")
                        && f.get(1).and_then(|p| p.parse().ok()) == Some(ppid)
                    {
                        v.push(pid);
                    }
                }
            }
        }
    }
    v
}
