//! The base of the config `berth-runtime spec` writes: runc's example (three
//! capabilities, no inheritable set, masked and read-only /proc paths,
//! deny-all device rule, no new privileges). Plain `spec` adds runc's ambient
//! set; `spec --hardened` leaves it out and adds moby's seccomp profile.

use serde_json::{json, Value};

/// `cgroupns`: add a cgroup namespace, as runc does on a pure cgroup v2 host.
pub fn default_spec(rootless: bool, uid: u32, gid: u32, cgroupns: bool) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut v = json!({
        "ociVersion": crate::OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "berth",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    });
    if rootless {
        // As runc's ToRootless: a user namespace mapping the caller, no
        // network namespace, /sys bound from the host, no cgroup mount or
        // device rules (an unprivileged user cannot manage them).
        let linux = &mut v["linux"];
        linux["namespaces"] = json!([
            {"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
            {"type": "mount"}, {"type": "user"}
        ]);
        linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        linux.as_object_mut().expect("object").remove("resources");
        let mounts = v["mounts"].as_array_mut().expect("array");
        mounts.retain(|m| m["type"] != "cgroup");
        for m in mounts.iter_mut() {
            if m["destination"] == "/sys" {
                *m = json!({"destination": "/sys", "type": "none", "source": "/sys",
                            "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
            }
            if m["destination"] == "/dev/pts" {
                let opts = m["options"].as_array_mut().expect("array");
                opts.retain(|o| o != "gid=5");
            }
            if m["destination"] == "/dev/mqueue" {
                *m = json!({"destination": "/dev/mqueue", "type": "none", "source": "/dev/mqueue",
                            "options": ["rbind", "nosuid", "noexec", "nodev"]});
            }
        }
    }
    if cgroupns {
        v["linux"]["namespaces"]
            .as_array_mut()
            .expect("array")
            .push(json!({"type": "cgroup"}));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_validates_and_is_hardened() {
        let v = default_spec(false, 0, 0, true);
        let spec: oci_spec::runtime::Spec = serde_json::from_value(v.clone()).unwrap();
        let cfg = crate::validate(spec, std::path::Path::new("/b")).unwrap();
        assert_eq!(cfg.process.caps.inheritable, 0);
        assert_eq!(cfg.process.caps.ambient, 0);
        assert!(cfg.process.no_new_privileges);
        assert!(cfg.rootfs_readonly);
        assert!(v["process"]["capabilities"].get("inheritable").is_none());
    }

    #[test]
    fn rootless_spec_validates() {
        let v = default_spec(true, 1000, 1000, false);
        let spec: oci_spec::runtime::Spec = serde_json::from_value(v).unwrap();
        let cfg = crate::validate(spec, std::path::Path::new("/b")).unwrap();
        assert!(cfg.has_new(crate::LinuxNamespaceType::User));
        assert!(!cfg.has(crate::LinuxNamespaceType::Network));
    }
}
