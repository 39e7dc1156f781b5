//! `info` and `version`: what the engine is and what it holds, as the JSON objects of
//! docker's `/info` and `/version` (the CLI prints them in docker's layout; the API
//! server will serve them as they are).

use crate::error::Result;
use crate::layout::Layout;
use crate::record::Status;
use berth_image::store::Store;
use serde_json::{json, Value};
use std::path::Path;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The Docker Engine API version Berth's shapes follow.
pub const API_VERSION: &str = "1.41";

/// How many containers are in each state.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: usize,
    pub running: usize,
    pub paused: usize,
    pub stopped: usize,
}

pub fn container_counts(layout: &Layout) -> Result<Counts> {
    let mut c = Counts::default();
    for id in layout.container_ids()? {
        // One removed meanwhile is not counted.
        let Ok(s) = crate::status::current(layout, &id) else {
            continue;
        };
        c.total += 1;
        match s.status {
            Status::Paused => c.paused += 1,
            Status::Running | Status::Restarting => c.running += 1,
            _ => c.stopped += 1,
        }
    }
    Ok(c)
}

/// `berth-runtime --version`'s first line, or why there is none.
fn runtime_version(path: &Path) -> String {
    match std::process::Command::new(path).arg("--version").output() {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
        Ok(o) => format!("unknown ({})", o.status),
        Err(e) => format!("unknown ({e})"),
    }
}

fn os_release() -> String {
    std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The filesystem `p` is on, as docker's "Backing Filesystem" names it.
// f_type is i64 here but u32 or i32 on other targets.
#[allow(clippy::unnecessary_cast)]
fn fs_name(p: &Path) -> String {
    match rustix::fs::statfs(p).map(|s| s.f_type as i64) {
        Ok(0xEF53) => "extfs".into(),
        Ok(0x58465342) => "xfs".into(),
        Ok(0x9123683E) => "btrfs".into(),
        Ok(0x01021994) => "tmpfs".into(),
        Ok(0x794c7630) => "overlayfs".into(),
        Ok(t) => format!("{t:#x}"),
        Err(_) => "unknown".into(),
    }
}

fn cgroup_version() -> &'static str {
    match berth_cgroups::hierarchy::probe() {
        Ok(h) if h.v1_mounts().is_none() => "2",
        _ => "1",
    }
}

fn arch() -> &'static str {
    std::env::consts::ARCH
}

/// docker's GOARCH name for this machine.
pub fn go_arch() -> &'static str {
    match arch() {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    }
}

/// docker's `/info` object.
pub fn info(layout: &Layout, store: &Store) -> Result<Value> {
    let c = container_counts(layout)?;
    let images = store.records()?.images.len();
    let runtime = crate::bins::locate("berth-runtime").ok();
    let runtime_path = runtime
        .as_ref()
        .map_or_else(String::new, |p| p.display().to_string());
    let uname = rustix::system::uname();
    let kernel = uname.release().to_string_lossy().into_owned();
    let name = uname.nodename().to_string_lossy().into_owned();
    let cgroup = cgroup_version();
    let root = layout.root();
    let fwd = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
        .map(|s| s.trim() == "1")
        .unwrap_or(false);
    Ok(json!({
        "ID": "",
        "Containers": c.total,
        "ContainersRunning": c.running,
        "ContainersPaused": c.paused,
        "ContainersStopped": c.stopped,
        "Images": images,
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", fs_name(root)], ["Supports d_type", "true"]],
        "Plugins": {
            "Volume": ["local"],
            "Network": ["bridge", "host", "none"],
            "Authorization": null,
            "Log": ["json-file", "none"],
        },
        "MemoryLimit": true,
        "SwapLimit": Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
            || cgroup == "2",
        "CpuCfsPeriod": true,
        "CpuCfsQuota": true,
        "CPUShares": true,
        "CPUSet": true,
        "PidsLimit": true,
        "IPv4Forwarding": fwd,
        "Debug": false,
        "SystemTime": crate::record::now_rfc3339(),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup,
        "KernelVersion": kernel,
        "OperatingSystem": os_release(),
        "OSVersion": "",
        "OSType": "linux",
        "Architecture": arch(),
        "NCPU": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "MemTotal": mem_total(),
        "DockerRootDir": root.display().to_string(),
        "Name": name,
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": VERSION,
        "Runtimes": {"berth-runtime": {"path": runtime_path}},
        "DefaultRuntime": "berth-runtime",
        "RuntimeVersion": runtime.as_deref().map(runtime_version).unwrap_or_default(),
        "LiveRestoreEnabled": true,
        "Isolation": "",
        "InitBinary": "berth-init (built in)",
        "SecurityOptions": ["name=seccomp,profile=default", "name=no-new-privileges"],
        "Warnings": [],
    }))
}

/// docker's `/version` object (the engine's half: Berth has no daemon, the CLI is it).
pub fn version() -> Value {
    let runtime = crate::bins::locate("berth-runtime").ok();
    let uname = rustix::system::uname();
    json!({
        "Platform": {"Name": "Berth"},
        "Version": VERSION,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": "1.24",
        "Os": "linux",
        "Arch": go_arch(),
        "KernelVersion": uname.release().to_string_lossy(),
        "Components": [
            {"Name": "Engine", "Version": VERSION, "Details": {
                "ApiVersion": API_VERSION, "MinAPIVersion": "1.24", "Os": "linux",
                "Arch": go_arch(), "KernelVersion": uname.release().to_string_lossy(),
                "Experimental": "false", "GitCommit": "", "GoVersion": "", "BuildTime": "",
            }},
            {
                "Name": "berth-runtime",
                "Version": runtime.as_deref().map(runtime_version).unwrap_or_default(),
                "Details": {"Path": runtime.map(|p| p.display().to_string()).unwrap_or_default()},
            },
        ],
    })
}

/// One row of `system df`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DfRow {
    pub total: usize,
    pub active: usize,
    pub size: u64,
    pub reclaimable: u64,
}

/// `system df`: images (active: used by a container), containers (their writable
/// layers; active: running), local volumes (active: used by a container), and the build
/// cache (`berth build`'s cached layers and RUN cache mounts, all reclaimable by
/// `builder prune`). Each image counts its layers whole (no
/// layer is shared in the sums), as `berth images` sizes them.
#[derive(Debug, Default)]
pub struct Df {
    pub images: DfRow,
    pub containers: DfRow,
    pub volumes: DfRow,
    pub build_cache: DfRow,
    /// The rows' items, for `system df -v` and GET /system/df.
    pub image_items: Vec<DfImage>,
    /// Container ID -> bytes of its writable layer.
    pub container_sizes: std::collections::BTreeMap<String, u64>,
    pub volume_items: Vec<DfVolume>,
}

/// One image of `system df -v`.
#[derive(Debug, Default, Clone)]
pub struct DfImage {
    /// `sha256:...` (the config digest).
    pub id: String,
    /// `name:tag`, familiar names.
    pub repo_tags: Vec<String>,
    /// `name@sha256:...`.
    pub repo_digests: Vec<String>,
    /// Seconds since the epoch (0: unknown).
    pub created: i64,
    pub size: u64,
    /// Containers using it.
    pub containers: usize,
}

/// One volume of `system df -v`.
#[derive(Debug, Clone)]
pub struct DfVolume {
    pub volume: crate::volumes::Volume,
    pub size: u64,
    /// Containers using it.
    pub ref_count: usize,
}

pub fn disk_usage(layout: &Layout, store: &Store) -> Result<Df> {
    let mut df = Df::default();
    let recs = store.records()?;
    let in_use = store.images_in_use()?;
    let rows = crate::images::list(store, &[], None)?;
    for (m, i) in &recs.images {
        df.images.total += 1;
        df.images.size += i.size;
        let users = in_use.get(m).map_or(0, Vec::len);
        if users > 0 {
            df.images.active += 1;
        } else {
            df.images.reclaimable += i.size;
        }
        let mut item = DfImage {
            id: i.id().to_string(),
            size: i.size,
            containers: users,
            ..Default::default()
        };
        for r in rows.iter().filter(|r| r.id == item.id) {
            item.created = r.created.unwrap_or(0);
            if r.repository != "<none>" {
                let t = format!("{}:{}", r.repository, r.tag);
                if !item.repo_tags.contains(&t) {
                    item.repo_tags.push(t);
                }
                if r.digest != "<none>" {
                    let d = format!("{}@{}", r.repository, r.digest);
                    if !item.repo_digests.contains(&d) {
                        item.repo_digests.push(d);
                    }
                }
            }
        }
        df.image_items.push(item);
    }
    for id in layout.container_ids()? {
        let Ok(s) = crate::status::current(layout, &id) else {
            continue;
        };
        let upper = berth_image::overlay::container_dir(store, &id)?.join("upper");
        let size = crate::volumes::disk_usage(&upper);
        df.containers.total += 1;
        df.containers.size += size;
        if crate::status::is_running(&s) {
            df.containers.active += 1;
        } else {
            df.containers.reclaimable += size;
        }
        df.container_sizes.insert(id, size);
    }
    for v in crate::volumes::list(layout)? {
        let size = crate::volumes::disk_usage(&crate::volumes::data_path(layout, &v.name));
        let refs = crate::volumes::users(layout, &v.name)?.len();
        df.volumes.total += 1;
        df.volumes.size += size;
        if refs == 0 {
            df.volumes.reclaimable += size;
        } else {
            df.volumes.active += 1;
        }
        df.volume_items.push(DfVolume {
            volume: v,
            size,
            ref_count: refs,
        });
    }
    let cache = store.build_cache()?;
    for e in cache["entries"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|x| x.1)
    {
        df.build_cache.total += 1;
        df.build_cache.size += e["size"].as_u64().unwrap_or(0);
    }
    let mounts = store.root().join("build-cache-mounts");
    for m in std::fs::read_dir(&mounts).into_iter().flatten().flatten() {
        df.build_cache.total += 1;
        df.build_cache.size += crate::volumes::disk_usage(&m.path());
    }
    df.build_cache.reclaimable = df.build_cache.size;
    Ok(df)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_facts_are_read() {
        assert!(mem_total() > 0);
        assert!(!os_release().is_empty());
        assert!(["1", "2"].contains(&cgroup_version()));
        assert_eq!(fs_name(Path::new("/proc")), "0x9fa0");
    }
}
