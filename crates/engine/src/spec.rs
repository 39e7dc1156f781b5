//! CreateOptions + image config -> the OCI runtime spec, with docker's hardened defaults
//! (moby `daemon/oci_linux.go` and `daemon/pkg/oci/defaults.go`):
//!
//! - the 14 default capabilities in the bounding, effective and permitted sets (inheritable
//!   and ambient empty), `--cap-add/--cap-drop` as moby's TweakCapabilities;
//! - moby's default seccomp profile for the bounding set; no_new_privileges on (Berth's
//!   default, as containerd; docker's is off);
//! - docker's masked and read-only paths, default mounts, device cgroup rules;
//! - namespaces pid, ipc, uts, mount, network (not with `--network host`), and cgroup only
//!   on a cgroup v2 host (docker's default cgroupns mode is "private" on v2 and "host" on v1;
//!   this machine is v1/hybrid, so no cgroup namespace here, exactly as docker would do);
//! - no rlimits unless `--ulimit` (docker's: the container inherits the monitor's limits);
//! - /etc/hostname, /etc/hosts and /etc/resolv.conf generated in the container's directory
//!   and bind-mounted (read-only with --read-only), as docker does. hosts: docker's default
//!   entries (`--network host`: a copy of the host's). resolv.conf: `--network host` copies
//!   the host's; `--network none` keeps the host's search/options lines without any
//!   nameserver (there is no network to reach one).
//!
//! Image labels never become OCI annotations: runtimes act on some annotations
//! (`org.systemd.property.*`, crun's `run.oci.*`), so an image must not be able to set them.

use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::options::{CreateOptions, HealthConfig, MountSpec, NetworkMode, NsMode, SeccompOpt};
use crate::record::VolumeUse;
use berth_image::spec::{image_volumes, resolve_user, runtime_spec_from_image, Overrides};
use berth_registry::manifest::ImageConfig;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};

/// What build_spec needs besides the options and the image.
pub struct SpecContext<'a> {
    /// The container's ID (64 hex).
    pub id: &'a str,
    pub layout: &'a Layout,
    /// Absolute path of the mounted rootfs (root.path of the spec).
    pub rootfs_path: &'a Path,
    /// Host path of the static berth-init binary; Some when options.init.
    pub init_path: Option<&'a Path>,
}

/// The spec and what the records keep of it.
pub struct BuiltSpec {
    pub spec: oci_spec::runtime::Spec,
    /// Volumes used (named ones created if missing, anonymous ones created).
    pub volumes: Vec<VolumeUse>,
    /// The health check in effect: flags, else the image's; None with --no-healthcheck.
    pub health: Option<HealthConfig>,
    /// Stop signal number: --stop-signal, else the image's StopSignal, else SIGTERM.
    pub stop_signal: i32,
    /// process.args[0] and the rest, for ps/inspect (Path and Args).
    pub path: String,
    pub args: Vec<String>,
    /// Held (shared) while volumes were created: keep it until config.json is saved, so a
    /// concurrent `volume prune`/`rm` cannot take a volume the record does not name yet.
    /// Dropping `BuiltSpec` (or this field) releases it.
    pub volumes_lock: Option<crate::volumes::VolumesLock>,
}

// Every capability Linux defines, by number.
use berth_oci::caps::CAP_NAMES as ALL_CAPS;

/// Docker's 14 default capabilities (moby caps/defaults.go), mask 0xa80425fb.
pub const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// moby daemon/pkg/oci/defaults.go (+ per-CPU thermal_throttle, added at build time).
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
];

pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

const DEFAULT_SHM: u64 = 64 << 20;
const CPU_PERIOD: u64 = 100_000;

fn invalid(s: impl Into<String>) -> Error {
    Error::Invalid(s.into())
}

/// Capabilities the running kernel knows (docker's GetAllCapabilities), limited to the
/// engine's own bounding set: what is not there cannot be granted (this machine, for one,
/// has no CAP_SYS_RESOURCE), so `--privileged` and `--cap-add ALL` mean "all we have".
pub fn kernel_caps() -> Vec<String> {
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(ALL_CAPS.len() - 1);
    let bnd = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    ALL_CAPS
        .iter()
        .enumerate()
        .take(last + 1)
        .filter(|(i, _)| bnd & (1u64 << i) != 0)
        .map(|(_, s)| s.to_string())
        .collect()
}

/// `sys_admin`, `CAP_SYS_ADMIN`, `Sys_Admin` -> `CAP_SYS_ADMIN`; `all` -> `ALL`.
fn normalize_cap(c: &str) -> Result<String> {
    let up = c.trim().to_ascii_uppercase();
    if up == "ALL" {
        return Ok(up);
    }
    let name = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    if ALL_CAPS.contains(&name.as_str()) {
        Ok(name)
    } else {
        Err(invalid(format!("unknown capability: {c:?}")))
    }
}

/// moby's TweakCapabilities.
pub fn capabilities(add: &[String], drop: &[String], privileged: bool) -> Result<Vec<String>> {
    let adds = add
        .iter()
        .map(|c| normalize_cap(c))
        .collect::<Result<Vec<_>>>()?;
    let drops = drop
        .iter()
        .map(|c| normalize_cap(c))
        .collect::<Result<Vec<_>>>()?;
    let has = |v: &[String], c: &str| v.iter().any(|x| x == c);
    let mut caps: Vec<String> = if privileged {
        kernel_caps()
    } else if has(&adds, "ALL") {
        kernel_caps()
            .into_iter()
            .filter(|c| !has(&drops, c))
            .collect()
    } else if has(&drops, "ALL") {
        adds
    } else {
        DEFAULT_CAPS
            .iter()
            .filter(|c| !has(&drops, c))
            .map(|c| c.to_string())
            .chain(adds)
            .collect()
    };
    let mut seen = BTreeSet::new();
    caps.retain(|c| seen.insert(c.clone()));
    Ok(caps)
}

/// True when /sys/fs/cgroup is cgroup2 (unified); docker then defaults to a private
/// cgroup namespace.
// f_type's type differs between architectures.
#[allow(clippy::unnecessary_cast)]
pub fn cgroup_v2_host() -> bool {
    rustix::fs::statfs("/sys/fs/cgroup")
        .map(|s| s.f_type as i64 == 0x63677270)
        .unwrap_or(false)
}

/// Whether the memory controller can limit swap (v1 needs swap accounting; docker drops
/// the swap limit with a warning otherwise).
fn swap_limit_supported() -> bool {
    cgroup_v2_host() || Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
}

fn online_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn check_cpuset(s: &str) -> Result<()> {
    let bad = || {
        invalid(format!(
            "invalid --cpuset-cpus {s:?}: expected e.g. 0-3 or 0,1"
        ))
    };
    if s.is_empty() {
        return Err(bad());
    }
    let n = online_cpus();
    for part in s.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let a: usize = a.parse().map_err(|_| bad())?;
        let b: usize = b.parse().map_err(|_| bad())?;
        if a > b {
            return Err(bad());
        }
        if b >= n {
            return Err(invalid(format!(
                "requested CPUs are not available - requested {s}, available: 0-{}",
                n - 1
            )));
        }
    }
    Ok(())
}

/// docker's sysctl whitelist (namespaced ones only).
fn check_sysctl(k: &str, v: &str, net: &NetworkMode) -> Result<()> {
    if k.contains('/') || k.contains("..") || k.starts_with('.') || k.is_empty() {
        return Err(invalid(format!("sysctl {k:?} is not a valid name")));
    }
    if v.contains('\n') || v.contains('\0') {
        return Err(invalid(format!("sysctl {k:?}: value {v:?} is invalid")));
    }
    if berth_oci::sysctl::IPC_KEYS.contains(&k) || k.starts_with("fs.mqueue.") {
        return Ok(());
    }
    if k.starts_with("net.") {
        if *net == NetworkMode::Host {
            return Err(invalid(format!(
                "sysctl {k:?} not allowed in host network namespace"
            )));
        }
        return Ok(());
    }
    Err(invalid(format!(
        "sysctl {k:?} is not whitelisted (only namespaced ones: kernel.msg*, kernel.sem, \
         kernel.shm*, fs.mqueue.*, net.*)"
    )))
}

/// A hard limit above the engine's own can only be set with CAP_SYS_RESOURCE (which this
/// machine, for one, lacks): say so now rather than let the runtime fail with EPERM.
fn check_ulimit(u: &crate::options::Ulimit) -> Result<()> {
    use rustix::process::Resource as R;
    let res = match u.name.as_str() {
        "as" => R::As,
        "core" => R::Core,
        "cpu" => R::Cpu,
        "data" => R::Data,
        "fsize" => R::Fsize,
        "locks" => R::Locks,
        "memlock" => R::Memlock,
        "msgqueue" => R::Msgqueue,
        "nice" => R::Nice,
        "nofile" => R::Nofile,
        "nproc" => R::Nproc,
        "rss" => R::Rss,
        "rtprio" => R::Rtprio,
        "rttime" => R::Rttime,
        "sigpending" => R::Sigpending,
        "stack" => R::Stack,
        n => return Err(invalid(format!("unknown ulimit {n:?}"))),
    };
    let have_sys_resource = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|c| c & (1 << 24) != 0);
    if have_sys_resource {
        return Ok(());
    }
    let cur = rustix::process::getrlimit(res).maximum.unwrap_or(u64::MAX);
    if u.hard > cur {
        let show = |v: u64| {
            if v == u64::MAX {
                "unlimited".to_string()
            } else {
                v.to_string()
            }
        };
        return Err(invalid(format!(
            "ulimit {}={}:{}: the hard limit exceeds this host's {} (raising it needs \
             CAP_SYS_RESOURCE)",
            u.name,
            show(u.soft),
            show(u.hard),
            show(cur)
        )));
    }
    Ok(())
}

fn check_hostname(h: &str) -> Result<()> {
    let ok = !h.is_empty()
        && h.len() <= 64
        && h.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.' || c == b'_')
        && !h.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(invalid(format!("invalid hostname {h:?}")))
    }
}

/// The health check in effect (docker's merge of the flags over the image's Healthcheck).
fn health(opts: &CreateOptions, image: &ImageConfig) -> Option<HealthConfig> {
    if opts.no_healthcheck {
        return None;
    }
    let img = image.config.as_ref().and_then(|c| c.healthcheck.as_ref());
    let mut h = opts.health.clone().unwrap_or_default();
    if let Some(i) = img {
        if h.test.is_empty() {
            h.test = i.test.clone().unwrap_or_default();
        }
        if h.interval == 0 {
            h.interval = i.interval.unwrap_or(0);
        }
        if h.timeout == 0 {
            h.timeout = i.timeout.unwrap_or(0);
        }
        if h.start_period == 0 {
            h.start_period = i.start_period.unwrap_or(0);
        }
        if h.start_interval == 0 {
            h.start_interval = i.start_interval.unwrap_or(0);
        }
        if h.retries == 0 {
            h.retries = i.retries.unwrap_or(0);
        }
    }
    if h.test.is_empty() || h.test[0] == "NONE" {
        return None;
    }
    Some(h)
}

/// Reads a docker (moby) seccomp profile file's JSON into an OCI LinuxSeccomp, evaluating
/// `archMap` and each rule's includes/excludes for this host and `caps`, as moby does.
pub fn seccomp_from_profile(text: &str, caps: &[String]) -> Result<Value> {
    let bad = |why: String| invalid(format!("seccomp profile: {why}"));
    let mut p: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let o = p
        .as_object_mut()
        .ok_or_else(|| bad("not a JSON object".into()))?;
    if !o.contains_key("defaultAction") {
        return Err(bad("defaultAction is missing".into()));
    }
    let native = berth_seccomp::Abi::native();
    let go_arch = match native {
        berth_seccomp::Abi::X86_64 => "amd64",
        berth_seccomp::Abi::X86 => "386",
        berth_seccomp::Abi::X32 => "amd64",
        berth_seccomp::Abi::Aarch64 => "arm64",
    };
    if let Some(map) = o.remove("archMap") {
        let mut arches = Vec::new();
        for m in map.as_array().into_iter().flatten() {
            if m["architecture"] == native.oci_name() {
                arches.push(m["architecture"].clone());
                arches.extend(
                    m["subArchitectures"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default(),
                );
            }
        }
        if !o.contains_key("architectures") {
            o.insert("architectures".into(), Value::Array(arches));
        }
    }
    let kernel = {
        let u = rustix::system::uname();
        let r = u.release().to_string_lossy().into_owned();
        let mut it = r.split(|c: char| !c.is_ascii_digit());
        (
            it.next().and_then(|x| x.parse::<u64>().ok()).unwrap_or(0),
            it.next().and_then(|x| x.parse::<u64>().ok()).unwrap_or(0),
        )
    };
    let at_least = |m: &Value| -> bool {
        let s = m.as_str().unwrap_or("");
        let mut it = s.split('.');
        let a = it.next().and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
        let b = it.next().and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
        kernel >= (a, b)
    };
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect()
    };
    if let Some(calls) = o.get_mut("syscalls").and_then(Value::as_array_mut) {
        calls.retain_mut(|s| {
            let Some(so) = s.as_object_mut() else {
                return true;
            };
            let inc = so.remove("includes").unwrap_or(Value::Null);
            let exc = so.remove("excludes").unwrap_or(Value::Null);
            so.remove("comment");
            if !exc.is_null()
                && (strs(&exc["arches"]).iter().any(|a| a == go_arch)
                    || strs(&exc["caps"]).iter().any(|c| caps.contains(c))
                    || (!exc["minKernel"].is_null() && at_least(&exc["minKernel"])))
            {
                return false;
            }
            if !inc.is_null() {
                let arches = strs(&inc["arches"]);
                if (!arches.is_empty() && !arches.iter().any(|a| a == go_arch))
                    || !strs(&inc["caps"]).iter().all(|c| caps.contains(c))
                    || (!inc["minKernel"].is_null() && !at_least(&inc["minKernel"]))
                {
                    return false;
                }
            }
            true
        });
    }
    // Validate against the OCI schema now, not at start.
    serde_json::from_value::<oci_spec::runtime::LinuxSeccomp>(p.clone())
        .map_err(|e| bad(e.to_string()))?;
    Ok(p)
}

fn stat_device(host: &str) -> Result<(char, i64, i64, u32, u32, u32)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let m = std::fs::metadata(host).map_err(|e| {
        invalid(format!(
            "error gathering device information while adding custom device {host:?}: {e}"
        ))
    })?;
    let ft = m.file_type();
    let ty = if ft.is_char_device() {
        'c'
    } else if ft.is_block_device() {
        'b'
    } else {
        return Err(invalid(format!(
            "device {host:?} is not a character or block device"
        )));
    };
    let rdev = m.rdev();
    Ok((
        ty,
        rustix::fs::major(rdev) as i64,
        rustix::fs::minor(rdev) as i64,
        m.mode() & 0o777,
        m.uid(),
        m.gid(),
    ))
}

/// Every device node under /dev (privileged containers), skipping what runc's HostDevices
/// skips.
fn host_devices() -> Vec<Value> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::from("/dev")];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                let n = e.file_name();
                if !matches!(
                    n.to_str(),
                    Some("pts" | "shm" | "fd" | "mqueue" | ".lxc" | ".lxd-mounts" | ".udev")
                ) {
                    stack.push(p);
                }
                continue;
            }
            if p == Path::new("/dev/console") {
                continue;
            }
            let s = p.to_string_lossy().into_owned();
            if let Ok((ty, maj, min, mode, uid, gid)) = stat_device(&s) {
                out.push(
                    json!({"path": s, "type": ty.to_string(), "major": maj, "minor": min,
                    "fileMode": mode, "uid": uid, "gid": gid}),
                );
            }
        }
    }
    out.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    out
}

fn dev_rule(allow: bool, ty: &str, major: Option<i64>, minor: Option<i64>, access: &str) -> Value {
    let mut r = json!({"allow": allow, "access": access});
    if ty != "a" {
        r["type"] = json!(ty);
    }
    if let Some(m) = major {
        r["major"] = json!(m);
    }
    if let Some(m) = minor {
        r["minor"] = json!(m);
    }
    r
}

/// docker's device cgroup: deny everything, then allow mknod and the default devices
/// (what runc adds for docker: null, zero, full, random, urandom, tty, console, ptmx,
/// pts, tun); fuse stays denied.
fn default_device_rules() -> Vec<Value> {
    let mut v = vec![
        dev_rule(false, "a", None, None, "rwm"),
        dev_rule(true, "c", None, None, "m"),
        dev_rule(true, "b", None, None, "m"),
    ];
    for (maj, min) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 1),
        (5, 2),
    ] {
        v.push(dev_rule(true, "c", Some(maj), Some(min), "rwm"));
    }
    v.push(dev_rule(true, "c", Some(136), None, "rwm"));
    v.push(dev_rule(true, "c", Some(10), Some(200), "rwm"));
    v
}

fn default_mounts(opts: &CreateOptions) -> Vec<Value> {
    let shm = opts.resources.shm_size.unwrap_or(DEFAULT_SHM);
    let priv_ = opts.security.privileged;
    let ro = |mut o: Vec<&'static str>| -> Vec<&'static str> {
        if !priv_ {
            o.push("ro");
        }
        o
    };
    vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ro(vec!["nosuid", "noexec", "nodev"])}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
               "options": ro(vec!["nosuid", "noexec", "nodev"])}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
    ]
    .into_iter()
    .chain(match opts.namespaces.ipc {
        // The host's /dev/shm with its IPC namespace (docker's ShmPath for ipc host).
        NsMode::Host => Some(bind(Path::new("/dev/shm"), "/dev/shm", false, None)),
        NsMode::None => None,
        _ => Some(
            json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm}")]}),
        ),
    })
    .collect()
}

/// The OCI `linux.resources` (without devices) for `r`, checked as docker checks them:
/// for `create` and for `update` of a running container alike.
pub fn linux_resources(r: &crate::options::Resources) -> Result<Value> {
    let mut res = json!({});
    let mut mem = json!({});
    if let Some(m) = r.memory {
        if m <= 0 {
            return Err(invalid(format!("invalid memory limit {m}")));
        }
        if m < crate::options::MIN_MEMORY {
            return Err(invalid(format!(
                "Minimum memory limit allowed is {}MB",
                crate::options::MIN_MEMORY >> 20
            )));
        }
        mem["limit"] = json!(m);
    }
    match (r.memory, r.memory_swap) {
        (None, Some(_)) => {
            return Err(invalid(
                "you should always set the memory limit when using a memory-swap limit",
            ))
        }
        (Some(m), Some(sw)) if sw != -1 && sw < m => {
            return Err(invalid(format!(
                "minimum memory-swap limit should be larger than the memory limit ({sw} < {m})"
            )))
        }
        (Some(m), sw) if swap_limit_supported() => {
            // docker: unset swap means swap may equal memory (total 2x).
            mem["swap"] = json!(match sw {
                None => m.saturating_mul(2),
                Some(v) => v,
            });
        }
        _ => {}
    }
    if let Some(rv) = r.memory_reservation {
        if rv < crate::options::MIN_MEMORY {
            return Err(invalid(format!(
                "minimum memory reservation allowed is {}MB (got {rv} bytes)",
                crate::options::MIN_MEMORY >> 20
            )));
        }
        if r.memory.is_some_and(|m| m < rv) {
            return Err(invalid(
                "minimum memory limit can not be less than memory reservation limit, see usage",
            ));
        }
        mem["reservation"] = json!(rv);
    }
    if let Some(sw) = r.memory_swappiness {
        if !(0..=100).contains(&sw) {
            return Err(invalid(format!(
                "invalid value: {sw}, valid memory swappiness range is 0-100"
            )));
        }
        mem["swappiness"] = json!(sw);
    }
    if r.oom_kill_disable {
        mem["disableOOMKiller"] = json!(true);
    }
    if mem.as_object().is_some_and(|o| !o.is_empty()) {
        res["memory"] = mem;
    }
    let mut cpu = json!({});
    if let Some(n) = r.nano_cpus {
        let max = online_cpus() as i64 * 1_000_000_000;
        if n < 10_000_000 || n > max {
            return Err(invalid(format!(
                "range of CPUs is from 0.01 to {}.00, as there are only {} CPUs available",
                online_cpus(),
                online_cpus()
            )));
        }
        cpu["period"] = json!(CPU_PERIOD);
        cpu["quota"] = json!(n as i128 * CPU_PERIOD as i128 / 1_000_000_000);
    }
    if r.nano_cpus.is_some() && r.cpu_period.is_some() {
        return Err(invalid(
            "conflicting options: Nano CPUs and CPU Period cannot both be set",
        ));
    }
    if r.nano_cpus.is_some() && r.cpu_quota.is_some() {
        return Err(invalid(
            "conflicting options: Nano CPUs and CPU Quota cannot both be set",
        ));
    }
    if let Some(p) = r.cpu_period {
        if !(1000..=1_000_000).contains(&p) {
            return Err(invalid(format!(
                "invalid --cpu-period {p}: CPU cfs period can not be less than 1ms (i.e. 1000) \
                 or larger than 1s (i.e. 1000000)"
            )));
        }
        cpu["period"] = json!(p);
    }
    if let Some(q) = r.cpu_quota {
        if q != -1 && q < 1000 {
            return Err(invalid(format!(
                "invalid --cpu-quota {q}: CPU cfs quota can not be less than 1ms (i.e. 1000)"
            )));
        }
        cpu["quota"] = json!(q);
    }
    if let Some(sh) = r.cpu_shares {
        cpu["shares"] = json!(sh);
    }
    if let Some(c) = &r.cpuset_cpus {
        check_cpuset(c)?;
        cpu["cpus"] = json!(c);
    }
    if cpu.as_object().is_some_and(|o| !o.is_empty()) {
        res["cpu"] = cpu;
    }
    if let Some(p) = r.pids_limit {
        // docker: 0 and -1 mean unlimited.
        if p > 0 {
            res["pids"] = json!({"limit": p});
        }
    }

    if let Some(w) = r.blkio_weight {
        if !(10..=1000).contains(&w) {
            return Err(invalid(format!(
                "invalid --blkio-weight {w}: range of blkio weight is from 10 to 1000"
            )));
        }
        res["blockIO"] = json!({"weight": w});
    }
    Ok(res)
}

/// What a host cannot apply is dropped with docker's warning (and so is not recorded);
/// the rest is checked by build_spec.
pub fn adapt(opts: &mut CreateOptions) -> Vec<String> {
    let mut w = Vec::new();
    let v2 = cgroup_v2_host();
    let r = &mut opts.resources;
    if r.blkio_weight.is_some_and(|x| x > 0) && !blkio_weight_supported(v2) {
        w.push(
            "WARNING: Your kernel does not support Block I/O weight or the cgroup is not \
             mounted. Weight discarded."
                .to_string(),
        );
        r.blkio_weight = None;
    }
    if r.blkio_weight == Some(0) {
        r.blkio_weight = None;
    }
    if r.oom_kill_disable && v2 {
        w.push(
            "WARNING: Your kernel does not support OomKillDisable. OomKillDisable discarded."
                .into(),
        );
        r.oom_kill_disable = false;
    }
    if r.oom_kill_disable && r.memory.is_none() {
        w.push(
            "WARNING: Disabling the OOM killer on containers without setting a '-m/--memory' \
             limit may be dangerous."
                .into(),
        );
    }
    if r.memory_swappiness.is_some_and(|s| s != -1) && v2 {
        w.push(
            "WARNING: Your kernel does not support memory swappiness capabilities or the \
             cgroup is not mounted. Memory swappiness discarded."
                .into(),
        );
        r.memory_swappiness = None;
    }
    if r.memory_swappiness == Some(-1) {
        r.memory_swappiness = None;
    }
    w
}

/// Whether the block I/O controller has a weight file (none with the mq-deadline or none
/// schedulers: only CFQ and BFQ weigh).
fn blkio_weight_supported(v2: bool) -> bool {
    let d = Path::new("/sys/fs/cgroup");
    if v2 {
        d.join("io.bfq.weight").exists() || d.join("io.weight").exists()
    } else {
        let b = d.join("blkio");
        b.join("blkio.weight").exists() || b.join("blkio.bfq.weight").exists()
    }
}

fn bind(src: &Path, dst: &str, ro: bool, prop: Option<&str>) -> Value {
    let mut o = vec!["rbind".to_string(), prop.unwrap_or("rprivate").to_string()];
    if ro {
        o.push("ro".into());
    }
    json!({"destination": dst, "type": "bind", "source": src, "options": o})
}

fn clean_target(t: &str) -> String {
    let mut out = String::new();
    for c in t.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if let Some(i) = out.rfind('/') {
                    out.truncate(i);
                }
            }
            c => {
                out.push('/');
                out.push_str(c);
            }
        }
    }
    if out.is_empty() {
        "/".into()
    } else {
        out
    }
}

const HOSTS_NONE: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// Writes hostname, hosts and resolv.conf into the container's directory.
fn network_files(ctx: &SpecContext<'_>, hostname: &str, net: &NetworkMode) -> Result<[PathBuf; 3]> {
    let dir = ctx.layout.container_dir(ctx.id);
    crate::layout::mkdir_private(&dir)?;
    let host_file = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    // Bridge networks: what a start writes again once its addresses are known
    // (net::attach); `container:` modes copy the other container's at start.
    let hosts = match net {
        NetworkMode::Host => host_file("/etc/hosts"),
        NetworkMode::None | NetworkMode::Bridge | NetworkMode::Container(_) => {
            HOSTS_NONE.to_string()
        }
    };
    let resolv = match net {
        NetworkMode::Host => host_file("/etc/resolv.conf"),
        NetworkMode::Bridge => {
            crate::net::files::resolv_conf(&host_file("/etc/resolv.conf"), None, &[], &[], &[])
        }
        NetworkMode::None | NetworkMode::Container(_) => host_file("/etc/resolv.conf")
            .lines()
            .filter(|l| !l.trim_start().starts_with("nameserver"))
            .map(|l| format!("{l}\n"))
            .collect(),
    };
    let files = [
        (dir.join("hostname"), format!("{hostname}\n")),
        (dir.join("hosts"), hosts),
        (dir.join("resolv.conf"), resolv),
    ];
    for (p, data) in &files {
        // Replaced atomically but not fsynced: they are regenerated with the container,
        // and three fsyncs would cost `run` milliseconds. 0644 like docker's, so any user
        // in the container can read them.
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let mut t = tempfile::Builder::new()
            .prefix(".tmp")
            .tempfile_in(&dir)
            .map_err(|e| Error::io(&dir, e))?;
        // fchmod: not subject to the umask.
        t.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .and_then(|_| t.write_all(data.as_bytes()))
            .map_err(|e| Error::io(t.path(), e))?;
        t.persist(p).map_err(|e| Error::io(p, e.error))?;
    }
    let [a, b, c] = files;
    Ok([a.0, b.0, c.0])
}

/// The kernel's limit on one argument or environment string, NUL included
/// (MAX_ARG_STRLEN, 32 pages): execve fails with E2BIG beyond it.
pub const MAX_ARG_STRLEN: usize = 32 * 4096;

/// A string execve would refuse is an error now, naming it, rather than an exit 1 with no
/// error from inside the container after it started.
fn check_exec_strings(args: &[String], env: &[String]) -> Result<()> {
    let max = MAX_ARG_STRLEN - 1;
    for e in env {
        if e.len() > max {
            let k = e.split('=').next().unwrap_or_default();
            return Err(invalid(format!(
                "environment variable {k:?} is {} bytes long: the kernel limits one variable \
                 (NAME=value) to {max} bytes",
                e.len()
            )));
        }
    }
    for (i, a) in args.iter().enumerate() {
        if a.len() > max {
            return Err(invalid(format!(
                "argument {i} of the command is {} bytes long: the kernel limits one argument \
                 to {max} bytes",
                a.len()
            )));
        }
    }
    Ok(())
}

/// `mkdir -p cwd` inside `rootfs` (each step resolved in the root: a symlink cannot lead
/// out), the directories it makes owned by `uid:gid`, mode 0755.
fn ensure_workdir(rootfs: BorrowedFd<'_>, cwd: &str, uid: u32, gid: u32) -> Result<()> {
    use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};
    use rustix::io::Errno;
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let in_root = |p: &str| {
        let p = if p.is_empty() { "." } else { p };
        let r = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
        rustix::fs::openat2(rootfs, p, flags, Mode::empty(), r)
    };
    // One step down from `dir`, no symlink followed.
    let child = |dir: &std::os::fd::OwnedFd, name: &str| {
        let r = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        rustix::fs::openat2(dir, name, flags, Mode::empty(), r)
    };
    let fail = |e: Errno| {
        invalid(format!(
            "working directory {cwd}: {}",
            std::io::Error::from(e)
        ))
    };
    let rel = cwd.trim_start_matches('/');
    if in_root(rel).is_ok() {
        return Ok(());
    }
    // Walk down holding each directory's fd; only a symlinked component is resolved by
    // name again (inside the root, from its top, where its target is meant).
    let mut cur = in_root("").map_err(fail)?;
    let mut done = String::new();
    for part in rel.split('/').filter(|c| !c.is_empty() && *c != ".") {
        done = if done.is_empty() {
            part.to_string()
        } else {
            format!("{done}/{part}")
        };
        cur = match child(&cur, part) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                match rustix::fs::mkdirat(&cur, part, Mode::from_raw_mode(0o755)) {
                    Ok(()) => {
                        let fd = child(&cur, part).map_err(fail)?;
                        rustix::fs::chownat(
                            &fd,
                            "",
                            Some(rustix::fs::Uid::from_raw(uid)),
                            Some(rustix::fs::Gid::from_raw(gid)),
                            AtFlags::EMPTY_PATH,
                        )
                        .map_err(fail)?;
                        fd
                    }
                    // Made meanwhile by someone else: theirs, as it is.
                    Err(Errno::EXIST) => child(&cur, part).map_err(fail)?,
                    Err(e) => return Err(fail(e)),
                }
            }
            Err(Errno::LOOP) => in_root(&done).map_err(fail)?,
            Err(e) => return Err(fail(e)),
        };
    }
    Ok(())
}

/// Builds the spec. `rootfs` is an fd of the mounted rootfs, used (only) to read the
/// image's /etc/passwd and /etc/group with RESOLVE_IN_ROOT.
///
/// Named volumes are created when missing and anonymous ones are created, last, after
/// everything else validated; an empty volume gets the image's content at its target
/// (docker's copy-up). The caller removes the anonymous ones if it fails later.
pub fn build_spec(
    opts: &CreateOptions,
    image: &ImageConfig,
    rootfs: BorrowedFd<'_>,
    ctx: &SpecContext<'_>,
) -> Result<BuiltSpec> {
    let ov = Overrides {
        entrypoint: opts.entrypoint.clone(),
        cmd: opts.cmd.clone(),
        env: opts.env.clone(),
        user: opts.user.clone(),
        workdir: opts.workdir.clone(),
    };
    let base = runtime_spec_from_image(image, rootfs, &ov)?;
    let mut s = serde_json::to_value(&base).expect("spec serialises");

    // process
    let args: Vec<String> = base
        .process()
        .as_ref()
        .and_then(|p| p.args().clone())
        .unwrap_or_default();
    let path = args.first().cloned().unwrap_or_default();
    let rest = args.iter().skip(1).cloned().collect::<Vec<_>>();
    let mut run_args = args.clone();
    if opts.init {
        let init = ctx
            .init_path
            .ok_or_else(|| invalid("--init: the init binary is missing"))?;
        if !init.is_absolute() {
            return Err(invalid(format!(
                "init binary {} is not absolute",
                init.display()
            )));
        }
        run_args.splice(0..0, ["/dev/init".to_string(), "--".to_string()]);
    }
    let p = &mut s["process"];
    p["args"] = json!(run_args);
    // username is Windows-only in the OCI spec (runtimes may refuse it).
    if let Some(u) = p["user"].as_object_mut() {
        u.remove("username");
    }
    p["terminal"] = json!(opts.tty);
    if let Some(o) = p.as_object_mut() {
        o.remove("rlimits");
        o.remove("apparmorProfile");
        o.remove("selinuxLabel");
        o.remove("consoleSize");
    }

    // --group-add: numbers, or names from the image's /etc/group.
    for g in &opts.group_add {
        let gid = if !g.is_empty() && g.bytes().all(|c| c.is_ascii_digit()) {
            g.parse::<u32>()
                .ok()
                .filter(|g| *g != u32::MAX)
                .ok_or_else(|| invalid(format!("--group-add {g:?}: gid out of range")))?
        } else {
            resolve_user(rootfs, &format!("0:{g}"))
                .map_err(|_| {
                    invalid(format!(
                        "unable to find group {g}: no matching entries in the image's /etc/group"
                    ))
                })?
                .gid()
        };
        let user = &mut s["process"]["user"];
        let mut extra: Vec<u32> =
            serde_json::from_value(user["additionalGids"].clone()).unwrap_or_default();
        if !extra.contains(&gid) {
            extra.push(gid);
        }
        user["additionalGids"] = json!(extra);
    }

    // capabilities, seccomp, nnp
    let sec = &opts.security;
    let caps = capabilities(&sec.cap_add, &sec.cap_drop, sec.privileged)?;
    s["process"]["capabilities"] = json!({
        "bounding": caps, "effective": caps, "permitted": caps,
        "inheritable": [], "ambient": [],
    });
    s["process"]["noNewPrivileges"] = json!(sec.no_new_privileges.unwrap_or(true));
    let seccomp = if sec.privileged {
        None
    } else {
        match &sec.seccomp {
            Some(SeccompOpt::Unconfined) => None,
            Some(SeccompOpt::Profile(text)) => Some(seccomp_from_profile(text, &caps)?),
            None => Some(
                serde_json::to_value(berth_seccomp::default_profile(&caps))
                    .expect("profile serialises"),
            ),
        }
    };

    // hostname
    let nsm = &opts.namespaces;
    let uts_host = nsm.uts == NsMode::Host;
    if uts_host && opts.hostname.is_some() {
        return Err(invalid("conflicting options: hostname and the UTS mode"));
    }
    let hostname = match (&opts.hostname, &opts.network) {
        (Some(h), _) => h.clone(),
        (None, _) if uts_host => rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned(),
        (None, NetworkMode::Host) => rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned(),
        (None, _) => ctx.id.chars().take(12).collect(),
    };
    check_hostname(&hostname)?;
    // --uts host: no namespace of its own, so no hostname to set.
    if uts_host {
        if let Some(o) = s.as_object_mut() {
            o.remove("hostname");
        }
    } else {
        s["hostname"] = json!(hostname);
    }
    // docker's HOSTNAME (and TERM with a tty), unless the image or -e set them.
    let mut env: Vec<String> =
        serde_json::from_value(s["process"]["env"].clone()).unwrap_or_default();
    let has = |env: &[String], k: &str| env.iter().any(|e| e.split('=').next() == Some(k));
    if opts.tty && !has(&env, "TERM") {
        env.insert(1.min(env.len()), "TERM=xterm".into());
    }
    if !has(&env, "HOSTNAME") {
        env.insert(1.min(env.len()), format!("HOSTNAME={hostname}"));
    }
    check_exec_strings(&run_args, &env)?;
    s["process"]["env"] = json!(env);

    // root
    s["root"] = json!({"path": ctx.rootfs_path, "readonly": opts.read_only});

    // namespaces
    // `host`: none of its own; `container:`: the other's path is set at each start
    // (namespaces::join, net::attach for the network).
    let mut ns = vec!["mount"];
    if nsm.pid != NsMode::Host {
        ns.push("pid");
    }
    if nsm.ipc != NsMode::Host {
        ns.push("ipc");
    }
    if !uts_host {
        ns.push("uts");
    }
    // Bridge networks: the runtime makes the namespace, the monitor plugs it in before
    // `runtime start`.
    if opts.network != NetworkMode::Host {
        ns.push("network");
    }
    let cgroupns = match nsm.cgroupns {
        NsMode::Host => false,
        NsMode::Private => true,
        _ => cgroup_v2_host(),
    };
    if cgroupns {
        ns.push("cgroup");
    }
    let namespaces: Vec<Value> = ns.iter().map(|t| json!({"type": t})).collect();

    // sysctls
    for (k, v) in &opts.sysctls {
        check_sysctl(k, v, &opts.network)?;
        let ipc_key =
            berth_oci::sysctl::IPC_KEYS.contains(&k.as_str()) || k.starts_with("fs.mqueue.");
        if ipc_key && matches!(nsm.ipc, NsMode::Host | NsMode::Container(_)) {
            return Err(invalid(format!(
                "sysctl {k:?} is not allowed with --ipc {}",
                nsm.ipc.docker("")
            )));
        }
    }

    // resources
    let r = &opts.resources;
    let mut res = linux_resources(r)?;

    // devices
    let mut devices: Vec<Value> = Vec::new();
    let mut rules = if sec.privileged {
        devices = host_devices();
        vec![dev_rule(true, "a", None, None, "rwm")]
    } else {
        default_device_rules()
    };
    for d in &r.devices {
        let (ty, maj, min, mode, uid, gid) = stat_device(&d.host_path)?;
        devices.retain(|x| x["path"] != json!(d.container_path));
        devices.push(
            json!({"path": d.container_path, "type": ty.to_string(), "major": maj,
            "minor": min, "fileMode": mode, "uid": uid, "gid": gid}),
        );
        rules.push(dev_rule(
            true,
            &ty.to_string(),
            Some(maj),
            Some(min),
            &d.permissions,
        ));
    }
    res["devices"] = json!(rules);

    // rlimits (none by default, as docker)
    for u in &r.ulimits {
        check_ulimit(u)?;
    }
    if !r.ulimits.is_empty() {
        let rl: Vec<Value> = r
            .ulimits
            .iter()
            .map(|u| {
                json!({"type": format!("RLIMIT_{}", u.name.to_ascii_uppercase()),
                       "soft": u.soft, "hard": u.hard})
            })
            .collect();
        s["process"]["rlimits"] = json!(rl);
    }

    let cgroup_parent = if opts.cgroup_parent.is_empty() {
        "/berth".to_string()
    } else {
        opts.cgroup_parent.clone()
    };
    if !cgroup_parent.starts_with('/') || cgroup_parent.split('/').any(|c| c == "..") {
        return Err(invalid(format!(
            "cgroup parent {cgroup_parent:?} must be an absolute path without \"..\""
        )));
    }
    let mut masked: Vec<String> = Vec::new();
    let mut readonly: Vec<String> = Vec::new();
    if !sec.privileged {
        masked = MASKED_PATHS.iter().map(|s| s.to_string()).collect();
        if let Ok(rd) = std::fs::read_dir("/sys/devices/system/cpu") {
            let mut tt: Vec<String> = rd
                .flatten()
                .map(|e| e.path().join("thermal_throttle"))
                .filter(|p| p.exists())
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            tt.sort();
            masked.extend(tt);
        }
        readonly = READONLY_PATHS.iter().map(|s| s.to_string()).collect();
    }
    let mut linux = json!({
        "namespaces": namespaces,
        "resources": res,
        "cgroupsPath": format!("{}/{}", cgroup_parent.trim_end_matches('/'), ctx.id),
        "maskedPaths": masked,
        "readonlyPaths": readonly,
    });
    if !devices.is_empty() {
        linux["devices"] = json!(devices);
    }
    if let Some(sc) = seccomp {
        linux["seccomp"] = sc;
    }
    if !opts.sysctls.is_empty() {
        linux["sysctl"] = json!(opts.sysctls);
    }
    s["linux"] = linux;

    // Health and stop signal.
    let health = health(opts, image);
    let stop_signal = match (
        &opts.stop_signal,
        image.config.as_ref().and_then(|c| c.stop_signal.as_ref()),
    ) {
        (Some(f), _) => crate::parse::signal(f)?,
        (None, Some(i)) => {
            crate::parse::signal(i).map_err(|e| invalid(format!("image StopSignal: {e}")))?
        }
        (None, None) => 15,
    };
    // Image labels and Berth's own image annotations stay out of the runtime spec.
    if let Some(o) = s.as_object_mut() {
        o.remove("annotations");
    }

    // Mounts: validate user mounts first; volumes are created at the end.
    let mut user_targets: Vec<String> = Vec::new();
    for m in &opts.mounts {
        let t = match m {
            MountSpec::Bind { target, .. }
            | MountSpec::Volume { target, .. }
            | MountSpec::Tmpfs { target, .. } => target,
        };
        if !t.starts_with('/') {
            return Err(invalid(format!(
                "mount destination {t:?} is not an absolute path"
            )));
        }
        let t = clean_target(t);
        if t == "/" {
            return Err(invalid("invalid mount: destination can't be '/'"));
        }
        if user_targets.contains(&t) {
            return Err(invalid(format!("duplicate mount point: {t}")));
        }
        user_targets.push(t);
        if let MountSpec::Bind {
            source,
            create_source: false,
            ..
        } = m
        {
            if !Path::new(source).exists() {
                return Err(invalid(format!(
                    "invalid mount config for type \"bind\": bind source path does not exist: {source}"
                )));
            }
        }
    }
    let image_vols: Vec<String> = image_volumes(image)?
        .into_iter()
        .filter(|v| !user_targets.contains(v))
        .collect();
    let mut mounts: Vec<Value> = default_mounts(opts)
        .into_iter()
        .filter(|m| !user_targets.iter().any(|t| m["destination"] == json!(t)))
        .collect();
    let files = network_files(ctx, &hostname, &opts.network)?;
    for (f, dst) in files
        .iter()
        .zip(["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"])
    {
        if !user_targets.iter().any(|t| t == dst) {
            mounts.push(bind(f, dst, opts.read_only, None));
        }
    }
    if let Some(init) = ctx.init_path.filter(|_| opts.init) {
        mounts.push(bind(init, "/dev/init", true, None));
    }

    // Create volumes (after all validation).
    let needs_volumes = !image_vols.is_empty()
        || opts
            .mounts
            .iter()
            .any(|m| matches!(m, MountSpec::Volume { .. }));
    let volumes_lock = if needs_volumes {
        Some(crate::volumes::lock(ctx.layout, false)?)
    } else {
        None
    };
    let mut volumes: Vec<VolumeUse> = Vec::new();
    let mut user_mounts: Vec<Value> = Vec::new();
    let anon_count = std::cell::Cell::new(0usize);
    let next_anonymous = || -> Result<String> {
        let n = anon_count.get();
        if n >= crate::volumes::MAX_ANONYMOUS {
            return Err(Error::Invalid(format!(
                "too many anonymous volumes (at most {})",
                crate::volumes::MAX_ANONYMOUS
            )));
        }
        anon_count.set(n + 1);
        Ok(crate::volumes::anonymous_name(ctx.id, n))
    };
    let created = (|| -> Result<()> {
        for m in &opts.mounts {
            match m {
                MountSpec::Bind {
                    source,
                    target,
                    read_only,
                    propagation,
                    create_source,
                } => {
                    // -v of a missing host path: docker makes it a directory.
                    if *create_source && !Path::new(source).exists() {
                        std::fs::create_dir_all(source).map_err(|e| {
                            invalid(format!(
                                "error while creating mount source path {source}: {e}"
                            ))
                        })?;
                    }
                    user_mounts.push(bind(
                        Path::new(source),
                        &clean_target(target),
                        *read_only,
                        propagation.as_deref(),
                    ))
                }
                MountSpec::Volume {
                    name,
                    target,
                    read_only,
                } => {
                    let anon;
                    let vname = match name {
                        Some(n) => n.as_str(),
                        None => {
                            anon = next_anonymous()?;
                            anon.as_str()
                        }
                    };
                    let (v, _) = crate::volumes::create(
                        ctx.layout,
                        Some(vname),
                        Default::default(),
                        name.is_none(),
                    )?;
                    volumes.push(VolumeUse {
                        name: v.name.clone(),
                        target: clean_target(target),
                        anonymous: name.is_none(),
                    });
                    crate::volumes::copy_up(
                        rootfs,
                        &clean_target(target),
                        Path::new(&v.mountpoint),
                    )?;
                    user_mounts.push(bind(
                        Path::new(&v.mountpoint),
                        &clean_target(target),
                        *read_only,
                        None,
                    ));
                }
                MountSpec::Tmpfs {
                    target,
                    size,
                    mode,
                    options,
                } => {
                    let mut o: Vec<String> = Vec::new();
                    for d in [("noexec", "exec"), ("nosuid", "suid"), ("nodev", "dev")] {
                        if !options.iter().any(|x| x == d.1) {
                            o.push(d.0.into());
                        }
                    }
                    for x in options {
                        if !o.contains(x) && !["exec", "suid", "dev"].contains(&x.as_str()) {
                            o.push(x.clone());
                        }
                    }
                    if let Some(sz) = size {
                        o.push(format!("size={sz}"));
                    }
                    if let Some(md) = mode {
                        o.push(format!("mode={md:o}"));
                    }
                    user_mounts.push(json!({"destination": clean_target(target), "type": "tmpfs",
                        "source": "tmpfs", "options": o}));
                }
            }
        }
        for t in &image_vols {
            let anon = next_anonymous()?;
            let (v, _) = crate::volumes::create(ctx.layout, Some(&anon), Default::default(), true)?;
            volumes.push(VolumeUse {
                name: v.name.clone(),
                target: t.clone(),
                anonymous: true,
            });
            crate::volumes::copy_up(rootfs, t, Path::new(&v.mountpoint))?;
            user_mounts.push(bind(Path::new(&v.mountpoint), t, false, None));
        }
        Ok(())
    })();
    if let Err(e) = created {
        for v in volumes.iter().filter(|v| v.anonymous) {
            let _ = crate::volumes::discard(ctx.layout, &v.name);
        }
        return Err(e);
    }
    // Parents before children (docker sorts mounts by depth).
    user_mounts.sort_by_key(|m| {
        m["destination"]
            .as_str()
            .map(|d| d.matches('/').count())
            .unwrap_or(0)
    });
    mounts.extend(user_mounts);
    s["mounts"] = json!(mounts);

    // The working directory is made when missing (docker's -w and WORKDIR), owned by
    // the process's user.
    let cwd = s["process"]["cwd"].as_str().unwrap_or("/").to_string();
    let uid = s["process"]["user"]["uid"].as_u64().unwrap_or(0) as u32;
    let gid = s["process"]["user"]["gid"].as_u64().unwrap_or(0) as u32;
    ensure_workdir(rootfs, &cwd, uid, gid)?;

    let spec: oci_spec::runtime::Spec = serde_json::from_value(s)
        .map_err(|e| invalid(format!("generated spec is invalid: {e}")))?;
    Ok(BuiltSpec {
        spec,
        volumes,
        health,
        stop_signal,
        path,
        args: rest,
        volumes_lock,
    })
}

/// Writes `spec` as `<bundle>/config.json` (atomically; the bundle dir is created 0700).
pub fn write_bundle(bundle: &Path, spec: &oci_spec::runtime::Spec) -> Result<()> {
    crate::layout::mkdir_private(bundle)?;
    crate::record::save_json(&bundle.join("config.json"), spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::{DeviceSpec, Resources, Security, Ulimit};
    use berth_registry::manifest::{ContainerConfig, Healthcheck};
    use std::os::fd::AsFd;

    struct Fx {
        _d: tempfile::TempDir,
        layout: Layout,
        rootfs: std::fs::File,
        rootfs_path: PathBuf,
    }

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn fx() -> Fx {
        let d = tempfile::tempdir().unwrap();
        let r = d.path().join("rootfs");
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::write(
            r.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            r.join("etc/group"),
            "root:x:0:\napp:x:1000:\nwheel:x:10:app\naudio:x:29:app\nvideo:x:44:\n",
        )
        .unwrap();
        let layout = Layout::open(d.path().join("root")).unwrap();
        let rootfs = std::fs::File::open(&r).unwrap();
        Fx {
            _d: d,
            layout,
            rootfs,
            rootfs_path: r,
        }
    }

    fn image(c: ContainerConfig) -> ImageConfig {
        ImageConfig {
            config: Some(ContainerConfig {
                cmd: c.cmd.clone().or(Some(vec!["/bin/sh".into()])),
                ..c
            }),
            ..Default::default()
        }
    }

    fn build(f: &Fx, o: &CreateOptions, img: &ImageConfig) -> Result<(BuiltSpec, Value)> {
        let ctx = SpecContext {
            id: ID,
            layout: &f.layout,
            rootfs_path: &f.rootfs_path,
            init_path: Some(Path::new("/usr/bin/true")),
        };
        let b = build_spec(o, img, f.rootfs.as_fd(), &ctx)?;
        let v = serde_json::to_value(&b.spec).unwrap();
        Ok((b, v))
    }

    fn opts() -> CreateOptions {
        CreateOptions {
            image: "busybox".into(),
            cgroup_parent: "/berth-test/x".into(),
            ..Default::default()
        }
    }

    fn strs(v: &Value) -> Vec<String> {
        let mut s: Vec<String> = serde_json::from_value(v.clone()).unwrap_or_default();
        s.sort();
        s
    }

    fn mount<'a>(v: &'a Value, dst: &str) -> Option<&'a Value> {
        v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == dst)
    }

    #[test]
    fn strings_execve_would_refuse_are_named() {
        let f = fx();
        let mut o = opts();
        o.env = vec![format!("BIG={}", "a".repeat(MAX_ARG_STRLEN))];
        let Err(e) = build(&f, &o, &image(ContainerConfig::default())) else {
            panic!("built")
        };
        assert!(e.to_string().contains("\"BIG\""), "{e}");
        assert!(!e.to_string().contains("aaaa"), "{e}");
        o.env = vec![format!("OK={}", "a".repeat(MAX_ARG_STRLEN - 5))];
        build(&f, &o, &image(ContainerConfig::default())).unwrap();
        o.cmd = Some(vec!["echo".into(), "b".repeat(MAX_ARG_STRLEN)]);
        let Err(e) = build(&f, &o, &image(ContainerConfig::default())) else {
            panic!("built")
        };
        assert!(e.to_string().contains("argument 1"), "{e}");
    }

    #[test]
    fn docker_defaults() {
        let f = fx();
        let (b, v) = build(&f, &opts(), &image(ContainerConfig::default())).unwrap();
        let mut want: Vec<String> = DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
        want.sort();
        let caps = &v["process"]["capabilities"];
        for set in ["bounding", "effective", "permitted"] {
            assert_eq!(strs(&caps[set]), want, "{set}");
        }
        assert!(strs(&caps["inheritable"]).is_empty());
        assert!(strs(&caps["ambient"]).is_empty());
        assert_eq!(v["process"]["noNewPrivileges"], true);
        assert!(v["process"].get("rlimits").is_none());
        assert_eq!(v["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(strs(&v["linux"]["readonlyPaths"]), READONLY_PATHS.to_vec());
        for m in MASKED_PATHS {
            assert!(
                strs(&v["linux"]["maskedPaths"]).contains(&m.to_string()),
                "{m}"
            );
        }
        let ns: Vec<String> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap().to_string())
            .collect();
        for n in ["pid", "ipc", "uts", "mount", "network"] {
            assert!(ns.contains(&n.to_string()), "{n}");
        }
        assert_eq!(ns.contains(&"cgroup".to_string()), cgroup_v2_host());
        assert_eq!(v["linux"]["cgroupsPath"], format!("/berth-test/x/{ID}"));
        assert_eq!(v["hostname"], &ID[..12]);
        assert_eq!(v["root"]["path"], json!(f.rootfs_path));
        assert_eq!(v["root"]["readonly"], false);
        assert!(v.get("annotations").is_none());
        assert!(strs(&v["process"]["env"]).contains(&format!("HOSTNAME={}", &ID[..12])));
        assert!(!strs(&v["process"]["env"])
            .iter()
            .any(|e| e.starts_with("TERM=")));
        assert_eq!(
            mount(&v, "/sys").unwrap()["options"],
            json!(["nosuid", "noexec", "nodev", "ro"])
        );
        assert_eq!(
            mount(&v, "/dev/shm").unwrap()["options"],
            json!(["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"])
        );
        assert_eq!(mount(&v, "/sys/fs/cgroup").unwrap()["type"], "cgroup");
        assert!(mount(&v, "/dev/pts").unwrap()["options"]
            .as_array()
            .unwrap()
            .contains(&json!("ptmxmode=0666")));
        let hosts = mount(&v, "/etc/hosts").unwrap();
        assert_eq!(hosts["options"], json!(["rbind", "rprivate"]));
        let hn = f.layout.container_dir(ID).join("hostname");
        {
            use std::os::unix::fs::PermissionsExt;
            let m = std::fs::metadata(&hn).unwrap().permissions().mode();
            assert_eq!(m & 0o777, 0o644);
        }
        assert_eq!(
            std::fs::read_to_string(hn).unwrap(),
            format!("{}\n", &ID[..12])
        );
        let rules = v["linux"]["resources"]["devices"].as_array().unwrap();
        assert_eq!(rules[0], json!({"allow": false, "access": "rwm"}));
        assert!(
            !rules.iter().any(|r| r["major"] == 10 && r["minor"] == 229),
            "fuse denied"
        );
        assert_eq!(
            (b.path.as_str(), b.args.len(), b.stop_signal),
            ("/bin/sh", 0, 15)
        );
        assert!(b.health.is_none() && b.volumes.is_empty());
    }

    #[test]
    fn cap_add_drop() {
        let c = |a: &[&str], d: &[&str]| {
            let s = |x: &[&str]| x.iter().map(|y| y.to_string()).collect::<Vec<_>>();
            capabilities(&s(a), &s(d), false)
        };
        let v = c(&["sys_admin"], &["CAP_NET_RAW", "chown"]).unwrap();
        assert!(v.contains(&"CAP_SYS_ADMIN".into()));
        assert!(!v.contains(&"CAP_NET_RAW".into()) && !v.contains(&"CAP_CHOWN".into()));
        assert_eq!(v.len(), 13);
        assert_eq!(c(&[], &["ALL"]).unwrap(), Vec::<String>::new());
        assert_eq!(
            c(&["Kill"], &["all"]).unwrap(),
            vec!["CAP_KILL".to_string()]
        );
        let all = c(&["ALL"], &["CAP_SYS_ADMIN"]).unwrap();
        assert_eq!(all.len(), kernel_caps().len() - 1);
        let e = c(&["CAP_FOO"], &[]).unwrap_err().to_string();
        assert!(e.contains("\"CAP_FOO\""), "{e}");
        // seccomp follows the bounding set: mount is allowed with CAP_SYS_ADMIN.
        let f = fx();
        let mut o = opts();
        o.security.cap_add = vec!["SYS_ADMIN".into()];
        let (_, v) = build(&f, &o, &image(ContainerConfig::default())).unwrap();
        let allows_mount = v["linux"]["seccomp"]["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| {
                s["action"] == "SCMP_ACT_ALLOW" && strs(&s["names"]).contains(&"mount".into())
            });
        assert!(allows_mount);
    }

    #[test]
    fn privileged_and_security_opts() {
        let f = fx();
        let mut o = opts();
        o.security = Security {
            privileged: true,
            ..Default::default()
        };
        let (_, v) = build(&f, &o, &image(ContainerConfig::default())).unwrap();
        assert_eq!(
            strs(&v["process"]["capabilities"]["bounding"]).len(),
            kernel_caps().len()
        );
        assert!(v["linux"].get("seccomp").is_none());
        assert!(strs(&v["linux"]["maskedPaths"]).is_empty());
        assert!(strs(&v["linux"]["readonlyPaths"]).is_empty());
        assert_eq!(
            mount(&v, "/sys").unwrap()["options"],
            json!(["nosuid", "noexec", "nodev"])
        );
        assert!(v["linux"]["devices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["path"] == "/dev/null"));
        o.security = Security {
            seccomp: Some(SeccompOpt::Unconfined),
            no_new_privileges: Some(false),
            ..Default::default()
        };
        let (_, v) = build(&f, &o, &image(ContainerConfig::default())).unwrap();
        assert!(v["linux"].get("seccomp").is_none());
        assert_eq!(v["process"]["noNewPrivileges"], false);
        // A moby-format profile file: archMap and includes evaluated.
        let prof = r#"{"defaultAction":"SCMP_ACT_ERRNO","archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86"]},{"architecture":"SCMP_ARCH_AARCH64"}],
            "syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"},
                        {"names":["mount"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}}]}"#;
        o.security.seccomp = Some(SeccompOpt::Profile(prof.into()));
        let (_, v) = build(&f, &o, &image(ContainerConfig::default())).unwrap();
        let sc = &v["linux"]["seccomp"];
        assert_eq!(sc["syscalls"].as_array().unwrap().len(), 1);
        if cfg!(target_arch = "x86_64") {
            assert_eq!(
                strs(&sc["architectures"]),
                vec!["SCMP_ARCH_X86", "SCMP_ARCH_X86_64"]
            );
        }
        o.security.seccomp = Some(SeccompOpt::Profile("{not json".into()));
        assert!(build(&f, &o, &image(ContainerConfig::default())).is_err());
    }

    #[test]
    fn user_groups_sec_22() {
        let f = fx();
        let mut o = opts();
        o.user = Some("app".into());
        o.group_add = vec!["video".into(), "4242".into()];
        let (_, v) = build(&f, &o, &image(ContainerConfig::default())).unwrap();
        let u = &v["process"]["user"];
        assert_eq!(
            (u["uid"].as_u64(), u["gid"].as_u64()),
            (Some(1000), Some(1000))
        );
        assert_eq!(u["additionalGids"], json!([10, 29, 44, 4242]));
        o.group_add = vec!["nosuchgroup".into()];
        let e = build(&f, &o, &image(ContainerConfig::default()))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("nosuchgroup"), "{e}");
    }

    #[test]
    fn resources_and_limits() {
        let f = fx();
        let mut o = opts();
        o.resources = Resources {
            memory: Some(64 << 20),
            nano_cpus: Some(500_000_000),
            cpu_shares: Some(512),
            cpuset_cpus: Some("0".into()),
            pids_limit: Some(100),
            ulimits: vec![Ulimit {
                name: "nofile".into(),
                soft: 1024,
                hard: 2048,
            }],
            shm_size: Some(1 << 20),
            devices: vec![DeviceSpec {
                host_path: "/dev/null".into(),
                container_path: "/dev/mynull".into(),
                permissions: "rw".into(),
            }],
            ..Default::default()
        };
        o.sysctls = [("net.ipv4.ip_forward".to_string(), "0".to_string())].into();
        o.read_only = true;
        let (_, v) = build(&f, &o, &image(ContainerConfig::default())).unwrap();
        let r = &v["linux"]["resources"];
        assert_eq!(r["memory"]["limit"], 64 << 20);
        if swap_limit_supported() {
            assert_eq!(r["memory"]["swap"], 128 << 20);
        }
        assert_eq!(
            (r["cpu"]["quota"].as_i64(), r["cpu"]["period"].as_u64()),
            (Some(50_000), Some(100_000))
        );
        assert_eq!(r["cpu"]["shares"], 512);
        assert_eq!(r["cpu"]["cpus"], "0");
        assert_eq!(r["pids"]["limit"], 100);
        assert_eq!(
            v["process"]["rlimits"],
            json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2048}])
        );
        assert!(mount(&v, "/dev/shm").unwrap()["options"]
            .as_array()
            .unwrap()
            .contains(&json!("size=1048576")));
        assert_eq!(v["root"]["readonly"], true);
        assert_eq!(
            mount(&v, "/etc/hosts").unwrap()["options"],
            json!(["rbind", "rprivate", "ro"])
        );
        let d = &v["linux"]["devices"][0];
        assert_eq!(
            (
                d["path"].as_str(),
                d["type"].as_str(),
                d["major"].as_i64(),
                d["minor"].as_i64()
            ),
            (Some("/dev/mynull"), Some("c"), Some(1), Some(3))
        );
        assert!(r["devices"].as_array().unwrap().contains(
            &json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"})
        ));
        assert_eq!(v["linux"]["sysctl"]["net.ipv4.ip_forward"], "0");

        // Bad values are refused with the value named.
        let bad = |o: CreateOptions, needle: &str| {
            let e = build(&f, &o, &image(ContainerConfig::default()))
                .err()
                .expect(needle)
                .to_string();
            assert!(e.contains(needle), "{e:?} should contain {needle:?}");
        };
        let mut b = opts();
        b.sysctls = [("kernel.core_pattern".to_string(), "|/x".to_string())].into();
        bad(b, "kernel.core_pattern");
        let mut b = opts();
        b.network = NetworkMode::Host;
        b.sysctls = [("net.ipv4.ip_forward".to_string(), "1".to_string())].into();
        bad(b, "host network namespace");
        let mut b = opts();
        b.resources.memory_swap = Some(1 << 30);
        bad(b, "memory limit");
        let mut b = opts();
        b.resources.memory = Some(1 << 30);
        b.resources.memory_swap = Some(1 << 20);
        bad(b, "memory-swap");
        let mut b = opts();
        b.resources.nano_cpus = Some(1000 * 1_000_000_000);
        bad(b, "CPUs");
        let mut b = opts();
        b.resources.cpuset_cpus = Some("0-999".into());
        bad(b, "0-999");
        let mut b = opts();
        b.resources.devices = vec![DeviceSpec {
            host_path: "/etc/passwd".into(),
            container_path: "/dev/x".into(),
            permissions: "rwm".into(),
        }];
        bad(b, "/etc/passwd");
        let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
        if let Some(h) = hard.filter(|_| {
            !std::fs::read_to_string("/proc/self/status")
                .unwrap()
                .lines()
                .any(|l| {
                    l.starts_with("CapEff:")
                        && u64::from_str_radix(l[7..].trim(), 16).unwrap() & (1 << 24) != 0
                })
        }) {
            let mut b = opts();
            b.resources.ulimits = vec![Ulimit {
                name: "nofile".into(),
                soft: 1024,
                hard: h + 1,
            }];
            bad(b, &format!("nofile=1024:{}", h + 1));
        }
        let mut b = opts();
        b.hostname = Some("bad host".into());
        bad(b, "bad host");
        let mut b = opts();
        b.cgroup_parent = "relative".into();
        bad(b, "relative");
    }

    #[test]
    fn mounts_volumes_tmpfs() {
        let f = fx();
        let host = f._d.path().join("hostdir");
        std::fs::create_dir(&host).unwrap();
        let mut o = opts();
        o.mounts = vec![
            MountSpec::Bind {
                source: host.to_string_lossy().into(),
                target: "/data/host".into(),
                read_only: true,
                propagation: None,
                create_source: false,
            },
            MountSpec::Volume {
                name: Some("named1".into()),
                target: "/data".into(),
                read_only: false,
            },
            MountSpec::Volume {
                name: None,
                target: "/anon".into(),
                read_only: false,
            },
            MountSpec::Tmpfs {
                target: "/run".into(),
                size: Some(1 << 20),
                mode: Some(0o1777),
                options: vec!["exec".into()],
            },
        ];
        let img = image(ContainerConfig {
            volumes: Some(
                [
                    ("/var/lib/x".to_string(), json!({})),
                    ("/data".to_string(), json!({})),
                ]
                .into(),
            ),
            ..Default::default()
        });
        std::fs::create_dir_all(f.rootfs_path.join("var/lib/x")).unwrap();
        std::fs::write(f.rootfs_path.join("var/lib/x/seed"), "s").unwrap();
        let (b, v) = build(&f, &o, &img).unwrap();
        let h = mount(&v, "/data/host").unwrap();
        assert_eq!(h["options"], json!(["rbind", "rprivate", "ro"]));
        let ms = v["mounts"].as_array().unwrap();
        let pos = |d: &str| ms.iter().position(|m| m["destination"] == d).unwrap();
        assert!(pos("/data") < pos("/data/host"), "parents first");
        let named = crate::volumes::load(&f.layout, "named1").unwrap();
        assert_eq!(
            mount(&v, "/data").unwrap()["source"],
            json!(named.mountpoint)
        );
        assert_eq!(
            mount(&v, "/run").unwrap()["options"],
            json!(["nosuid", "nodev", "size=1048576", "mode=1777"])
        );
        // /data from the image is covered by the named volume; /var/lib/x gets an anonymous one.
        assert_eq!(b.volumes.len(), 3);
        let anon: Vec<_> = b.volumes.iter().filter(|v| v.anonymous).collect();
        assert_eq!(anon.len(), 2);
        assert!(anon
            .iter()
            .any(|a| a.target == "/var/lib/x" && a.name.len() == 64));
        assert!(crate::volumes::load(&f.layout, &anon[0].name)
            .unwrap()
            .anonymous());
        let x = anon.iter().find(|a| a.target == "/var/lib/x").unwrap();
        let xm = crate::volumes::data_path(&f.layout, &x.name);
        assert_eq!(
            std::fs::read_to_string(xm.join("seed")).unwrap(),
            "s",
            "copy-up"
        );

        let mut bad = opts();
        bad.mounts = vec![MountSpec::Bind {
            source: "/nonexistent/berth".into(),
            target: "/x".into(),
            read_only: false,
            propagation: None,
            create_source: false,
        }];
        let e = build(&f, &bad, &img).err().unwrap().to_string();
        assert!(e.contains("/nonexistent/berth"), "{e}");
        let before = crate::volumes::list(&f.layout).unwrap().len();
        bad.mounts.push(MountSpec::Volume {
            name: None,
            target: "/x".into(),
            read_only: false,
        });
        assert!(build(&f, &bad, &img).is_err());
        assert_eq!(
            crate::volumes::list(&f.layout).unwrap().len(),
            before,
            "no volume leaked"
        );
    }

    #[test]
    fn init_health_stop_signal_entrypoint() {
        let f = fx();
        let img = image(ContainerConfig {
            entrypoint: Some(vec!["/bin/echo".into()]),
            cmd: Some(vec!["hi".into()]),
            stop_signal: Some("SIGQUIT".into()),
            labels: Some([("org.systemd.property.x".to_string(), "y".to_string())].into()),
            healthcheck: Some(Healthcheck {
                test: Some(vec!["CMD-SHELL".into(), "true".into()]),
                interval: Some(5_000_000_000),
                retries: Some(7),
                ..Default::default()
            }),
            ..Default::default()
        });
        let mut o = opts();
        o.init = true;
        let (b, v) = build(&f, &o, &img).unwrap();
        assert_eq!(
            v["process"]["args"],
            json!(["/dev/init", "--", "/bin/echo", "hi"])
        );
        assert_eq!(
            (b.path.as_str(), b.args.clone()),
            ("/bin/echo", vec!["hi".to_string()])
        );
        let m = mount(&v, "/dev/init").unwrap();
        assert_eq!(
            (m["source"].as_str(), m["options"].clone()),
            (Some("/usr/bin/true"), json!(["rbind", "rprivate", "ro"]))
        );
        assert_eq!(b.stop_signal, 3);
        assert!(
            v.get("annotations").is_none(),
            "image labels stay out of the spec"
        );
        let h = b.health.unwrap();
        assert_eq!(
            (h.test[0].as_str(), h.interval, h.retries),
            ("CMD-SHELL", 5_000_000_000, 7)
        );

        o.health = Some(HealthConfig {
            test: vec!["CMD".into(), "false".into()],
            timeout: 1_000_000_000,
            ..Default::default()
        });
        o.stop_signal = Some("KILL".into());
        o.entrypoint = Some(vec![]);
        o.cmd = Some(vec!["/bin/true".into()]);
        let (b, v) = build(&f, &o, &img).unwrap();
        assert_eq!(
            v["process"]["args"],
            json!(["/dev/init", "--", "/bin/true"])
        );
        let h = b.health.unwrap();
        assert_eq!(
            (h.test[1].as_str(), h.timeout, h.interval, h.retries),
            ("false", 1_000_000_000, 5_000_000_000, 7)
        );
        assert_eq!(b.stop_signal, 9);
        o.no_healthcheck = true;
        assert!(build(&f, &o, &img).unwrap().0.health.is_none());
        o.no_healthcheck = false;
        o.health = Some(HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        });
        assert!(build(&f, &o, &img).unwrap().0.health.is_none());
        o.stop_signal = Some("SIGBOGUS".into());
        assert!(build(&f, &o, &img).is_err());
    }

    #[test]
    fn network_host_files() {
        let f = fx();
        let mut o = opts();
        o.network = NetworkMode::Host;
        let (_, v) = build(&f, &o, &image(ContainerConfig::default())).unwrap();
        let ns = v["linux"]["namespaces"].as_array().unwrap();
        assert!(!ns.iter().any(|n| n["type"] == "network"));
        assert_eq!(
            v["hostname"],
            rustix::system::uname()
                .nodename()
                .to_string_lossy()
                .as_ref()
        );
        let dir = f.layout.container_dir(ID);
        assert_eq!(
            std::fs::read_to_string(dir.join("resolv.conf")).unwrap(),
            std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
        );
        o.network = NetworkMode::None;
        build(&f, &o, &image(ContainerConfig::default())).unwrap();
        let r = std::fs::read_to_string(dir.join("resolv.conf")).unwrap();
        assert!(!r.contains("nameserver"));
        assert!(std::fs::read_to_string(dir.join("hosts"))
            .unwrap()
            .contains("localhost"));
    }
}
