//! The OCI runtime-spec boundary: `config.json` is read here, once, and turned
//! into a validated [`Config`] whose parts are ready to use. Everything the
//! runtime does not support is refused here with a message naming the field,
//! so nothing is ignored silently.
#![forbid(unsafe_code)]

pub mod caps;
pub mod mounts;
pub mod signal;
pub mod spec;
pub mod sysctl;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use oci_spec::runtime::{
    Hook, Hooks, LinuxIdMapping, LinuxNamespaceType, LinuxResources, Spec,
};

/// The runtime-spec process document, for `exec --process`.
pub mod oci_spec_process {
    pub use oci_spec::runtime::Process;
}

pub use caps::CapSet;
pub use mounts::{MountKind, MountSpec};

/// Spec versions this runtime accepts in `ociVersion`.
pub const OCI_VERSION: &str = "1.2.0";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("read config {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parse config {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid config: {0}")]
    Invalid(String),
    #[error("{field} is not supported: {reason}")]
    Unsupported { field: String, reason: String },
    #[error(transparent)]
    Mount(#[from] mounts::Error),
    #[error(transparent)]
    Sysctl(#[from] sysctl::Error),
    #[error(transparent)]
    Cap(#[from] caps::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn invalid(msg: impl Into<String>) -> Error {
    Error::Invalid(msg.into())
}

fn unsupported(field: &str, reason: &str) -> Error {
    Error::Unsupported {
        field: field.to_string(),
        reason: reason.to_string(),
    }
}

/// Largest config.json we read: a guard against absurd input (CVE-2021-43784
/// class), far above anything real.
const MAX_CONFIG_BYTES: u64 = 16 << 20;
const MAX_HOSTNAME: usize = 64;
const MAX_IDMAPS: usize = 340;

/// A namespace the container gets: created anew or joined by path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub kind: LinuxNamespaceType,
    pub path: Option<PathBuf>,
}

/// The resolved process part of the config.
#[derive(Debug, Clone)]
pub struct Process {
    pub terminal: bool,
    pub console_size: Option<(u16, u16)>,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub umask: Option<u32>,
    pub additional_gids: Vec<u32>,
    pub caps: CapSet,
    pub rlimits: Vec<Rlimit>,
    pub no_new_privileges: bool,
    pub oom_score_adj: Option<i32>,
    /// `process.scheduler`, ready for sched_setattr.
    pub scheduler: Option<Sched>,
    /// `process.ioPriority`: (class, level) for ioprio_set.
    pub io_priority: Option<(u32, u32)>,
    /// `process.execCPUAffinity` (exec only): the initial and the final CPU lists.
    pub exec_cpu_affinity: Option<ExecCpuAffinity>,
}

/// `process.execCPUAffinity`: CPU lists for an exec'd process, on joining
/// the container and for the program itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecCpuAffinity {
    pub initial: Option<Vec<usize>>,
    pub last: Option<Vec<usize>>,
}

/// `process.scheduler` in sched_setattr(2)'s numbers (SCHED_* policy,
/// SCHED_FLAG_* bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sched {
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    /// The RLIMIT_* number.
    pub resource: u32,
    pub name: &'static str,
    pub soft: u64,
    pub hard: u64,
}

/// A validated container config.
#[derive(Debug, Clone)]
pub struct Config {
    /// The spec as read, kept for hooks and state.
    pub spec: Spec,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub rootfs_readonly: bool,
    pub process: Process,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub namespaces: Vec<Namespace>,
    pub uid_mappings: Vec<LinuxIdMapping>,
    pub gid_mappings: Vec<LinuxIdMapping>,
    pub time_offsets: Vec<(String, i64, u32)>,
    pub mounts: Vec<MountSpec>,
    pub devices: Vec<Device>,
    pub sysctls: BTreeMap<String, String>,
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
    /// MS_* propagation for the rootfs (`rootfsPropagation`); default rslave.
    pub rootfs_propagation: u64,
    pub rootfs_propagation_recursive: bool,
    pub personality: Option<u64>,
    pub cgroups_path: Option<String>,
    pub resources: Option<LinuxResources>,
    pub seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
    pub hooks: Hooks,
    pub annotations: BTreeMap<String, String>,
    /// Things accepted but adjusted, for the caller to log (as runc warns).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub path: PathBuf,
    /// 'c', 'b', 'u' or 'p'.
    pub kind: char,
    pub major: i64,
    pub minor: i64,
    pub file_mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Config {
    pub fn has_new(&self, kind: LinuxNamespaceType) -> bool {
        self.namespaces
            .iter()
            .any(|n| n.kind == kind && n.path.is_none())
    }

    pub fn has(&self, kind: LinuxNamespaceType) -> bool {
        self.namespaces.iter().any(|n| n.kind == kind)
    }

    /// The runtime-spec state's annotations.
    pub fn annotations(&self) -> &BTreeMap<String, String> {
        &self.annotations
    }
}

/// Read and validate `<bundle>/config.json`. `bundle` must be absolute.
pub fn load(bundle: &Path) -> Result<Config> {
    load_with_bytes(bundle).map(|(c, _)| c)
}

/// [`load`], also returning the bytes that were parsed, so that a copy of
/// the config needs no serialising back.
pub fn load_with_bytes(bundle: &Path) -> Result<(Config, Vec<u8>)> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let path = bundle.join("config.json");
    // O_NONBLOCK: a FIFO (or a device) here must not block the open; only a regular file
    // is read.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path)
        .map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
    let meta = file.metadata().map_err(|source| Error::Read {
        path: path.clone(),
        source,
    })?;
    if !meta.file_type().is_file() {
        return Err(invalid(format!("{} is not a regular file", path.display())));
    }
    let too_big = |len: u64| {
        invalid(format!(
            "{} is {} bytes, more than the {} allowed",
            path.display(),
            len,
            MAX_CONFIG_BYTES
        ))
    };
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(too_big(meta.len()));
    }
    // One read of the whole file, then a parse from memory (faster than
    // from a reader).
    let mut data = Vec::with_capacity(meta.len() as usize + 1);
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
    if data.len() as u64 > MAX_CONFIG_BYTES {
        return Err(too_big(data.len() as u64));
    }
    // serde would read a JSON array as a struct's fields in order: `[]` would become an
    // empty spec, refused later for a misleading reason.
    match data.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        first => {
            let what = match first {
                None => "empty",
                Some(b'[') => "a JSON array",
                Some(b'"') => "a JSON string",
                Some(_) => "not a JSON object",
            };
            return Err(invalid(format!(
                "{} must hold a JSON object (the runtime-spec config), but it is {what}",
                path.display()
            )));
        }
    }
    let spec: Spec =
        serde_json::from_slice(&data).map_err(|source| Error::Parse { path, source })?;
    Ok((validate(spec, bundle)?, data))
}

/// Validate an already parsed spec for a bundle directory.
pub fn validate(spec: Spec, bundle: &Path) -> Result<Config> {
    let version = spec.version();
    if !version.starts_with("1.") {
        return Err(invalid(format!(
            "ociVersion {version:?} is not a 1.x runtime-spec version"
        )));
    }
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid("root is required"))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    let rootfs_readonly = root.readonly().unwrap_or(false);
    let linux = spec
        .linux()
        .clone()
        .ok_or_else(|| invalid("linux is required on Linux"))?;
    let proc = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process is required"))?;
    let mut process = process(proc)?;
    let mut warnings = Vec::new();
    // runc ignores linux.memoryPolicy (set_mempolicy is not done); so do we, aloud.
    if linux.memory_policy().is_some() {
        warnings.push("linux.memoryPolicy is not applied: ignored, as runc 1.1 does".to_string());
    }
    // Ambient capabilities need to be permitted and inheritable; runc drops
    // the others with a warning, and so do we.
    let lost = process.caps.ambient & !(process.caps.inheritable & process.caps.permitted);
    if lost != 0 {
        warnings.push(format!(
            "ambient capabilities {:?} are not both permitted and inheritable, so they are not set",
            caps::mask_names(lost)
        ));
        process.caps.ambient &= !lost;
    }

    if spec.solaris().is_some() || spec.windows().is_some() || spec.vm().is_some() {
        return Err(unsupported("solaris/windows/vm", "this is a Linux runtime"));
    }

    let seccomp = linux.seccomp().clone();
    if let Some(sc) = &seccomp {
        use oci_spec::runtime::LinuxSeccompAction as A;
        let notify = sc.default_action() == A::ScmpActNotify
            || sc
                .syscalls()
                .as_deref()
                .unwrap_or(&[])
                .iter()
                .any(|s| s.action() == A::ScmpActNotify);
        let listener = sc
            .listener_path()
            .as_ref()
            .filter(|p| !p.as_os_str().is_empty());
        if notify && listener.is_none() {
            return Err(invalid(
                "linux.seccomp uses SCMP_ACT_NOTIFY but sets no listenerPath",
            ));
        }
        if let Some(p) = listener {
            if !p.is_absolute() {
                return Err(invalid(format!(
                    "linux.seccomp.listenerPath {} is not absolute",
                    p.display()
                )));
            }
        }
    }
    if linux.intel_rdt().is_some() {
        return Err(unsupported("linux.intelRdt", "no resctrl support"));
    }
    if linux.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
        return Err(unsupported("linux.netDevices", "not implemented"));
    }
    if proc
        .apparmor_profile()
        .as_ref()
        .is_some_and(|p| !p.is_empty())
    {
        return Err(unsupported(
            "process.apparmorProfile",
            "AppArmor is not enabled on this host",
        ));
    }
    if proc.selinux_label().as_ref().is_some_and(|p| !p.is_empty()) {
        return Err(unsupported(
            "process.selinuxLabel",
            "SELinux is not enabled on this host",
        ));
    }

    let namespaces = namespaces(linux.namespaces().as_deref().unwrap_or(&[]))?;
    let has_new =
        |k: LinuxNamespaceType| namespaces.iter().any(|n| n.kind == k && n.path.is_none());
    let has = |k: LinuxNamespaceType| namespaces.iter().any(|n| n.kind == k);

    let uid_mappings = linux.uid_mappings().clone().unwrap_or_default();
    let gid_mappings = linux.gid_mappings().clone().unwrap_or_default();
    if uid_mappings.len() > MAX_IDMAPS || gid_mappings.len() > MAX_IDMAPS {
        return Err(invalid(format!(
            "too many id mappings: at most {MAX_IDMAPS} are allowed"
        )));
    }
    if has_new(LinuxNamespaceType::User) {
        if uid_mappings.is_empty() || gid_mappings.is_empty() {
            return Err(invalid(
                "a new user namespace needs linux.uidMappings and linux.gidMappings",
            ));
        }
    } else if !uid_mappings.is_empty() || !gid_mappings.is_empty() {
        return Err(invalid(
            "linux.uidMappings/gidMappings are given but no new user namespace is",
        ));
    }

    let hostname = spec.hostname().clone().filter(|h| !h.is_empty());
    let domainname = spec.domainname().clone().filter(|h| !h.is_empty());
    for (field, v) in [("hostname", &hostname), ("domainname", &domainname)] {
        if let Some(v) = v {
            if v.len() > MAX_HOSTNAME {
                return Err(invalid(format!(
                    "{field} is longer than {MAX_HOSTNAME} bytes"
                )));
            }
            if !has(LinuxNamespaceType::Uts) {
                return Err(invalid(format!(
                    "unable to set {field} without a private UTS namespace"
                )));
            }
        }
    }

    let mut time_offsets = Vec::new();
    if let Some(offs) = linux.time_offsets() {
        if !offs.is_empty() && !has_new(LinuxNamespaceType::Time) {
            return Err(invalid("linux.timeOffsets needs a new time namespace"));
        }
        for (clock, off) in offs {
            if clock != "monotonic" && clock != "boottime" {
                return Err(invalid(format!(
                    "linux.timeOffsets: unknown clock {clock:?} (monotonic or boottime)"
                )));
            }
            let nanos = off.nanosecs().unwrap_or(0);
            if nanos >= 1_000_000_000 {
                return Err(invalid(format!(
                    "linux.timeOffsets.{clock}.nanosecs {nanos} is not below one second"
                )));
            }
            time_offsets.push((clock.clone(), off.secs().unwrap_or(0), nanos));
        }
    }

    let mut mounts = Vec::new();
    for (i, m) in spec.mounts().as_deref().unwrap_or(&[]).iter().enumerate() {
        mounts.push(
            mounts::parse(m).map_err(|mounts::Error::Invalid { dest, msg }| {
                mounts::Error::Invalid {
                    dest,
                    msg: format!("mounts[{i}]: {msg}"),
                }
            })?,
        );
    }
    for m in &mounts {
        if !m.ignored.is_empty() {
            warnings.push(format!(
                "mount {}: options {:?} are filesystem data, which a bind mount does not take; they are not applied",
                m.destination.display(),
                m.ignored
            ));
        }
    }
    if !has(LinuxNamespaceType::Mount) {
        // The spec: an absent namespace is the runtime's own. Mounting into it would
        // change the caller's view (and the host's, through shared propagation), so
        // nothing filesystem-related is set up, as runc does.
        warnings.push(
            "linux.namespaces has no mount namespace: the container shares the runtime's \
             mount namespace (berth-runtime only chroots into root.path), so mounts, \
             devices, maskedPaths, readonlyPaths and root.readonly are not applied"
                .to_string(),
        );
    }
    if let Some(l) = linux.mount_label().as_ref().filter(|l| !l.is_empty()) {
        // Without SELinux a mount label means nothing; runc and crun drop it.
        warnings.push(format!(
            "linux.mountLabel {l:?} is not applied: SELinux is not enabled on this host"
        ));
    }

    let sysctls = sysctl::validate(
        linux.sysctl().as_ref(),
        &sysctl::Namespaces {
            ipc: has_new(LinuxNamespaceType::Ipc) || has(LinuxNamespaceType::Ipc),
            net: has(LinuxNamespaceType::Network),
            uts: has(LinuxNamespaceType::Uts),
        },
    )?;

    let mut devices = Vec::new();
    for d in linux.devices().as_deref().unwrap_or(&[]) {
        let kind = match d.typ() {
            oci_spec::runtime::LinuxDeviceType::C => 'c',
            oci_spec::runtime::LinuxDeviceType::B => 'b',
            oci_spec::runtime::LinuxDeviceType::U => 'u',
            oci_spec::runtime::LinuxDeviceType::P => 'p',
            other => {
                return Err(invalid(format!(
                    "linux.devices: type {other:?} of {} is not c, b, u or p",
                    d.path().display()
                )))
            }
        };
        let path = d.path().clone();
        if !path.is_absolute()
            || path
                .components()
                .any(|c| c == std::path::Component::ParentDir)
        {
            return Err(invalid(format!(
                "linux.devices: path {} must be absolute, without ..",
                path.display()
            )));
        }
        if !path.starts_with("/dev") {
            return Err(invalid(format!(
                "linux.devices: {} is not under /dev",
                path.display()
            )));
        }
        devices.push(Device {
            path,
            kind,
            major: d.major(),
            minor: d.minor(),
            file_mode: d.file_mode().unwrap_or(0o666),
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }

    let (rootfs_propagation, rootfs_propagation_recursive) =
        match linux.rootfs_propagation().as_deref().unwrap_or("") {
            "" => (mounts::MS_SLAVE, true),
            p => match mounts::propagation(p) {
                Some(v) => v,
                None => {
                    return Err(invalid(format!(
                        "linux.rootfsPropagation: unknown mode {p:?}"
                    )))
                }
            },
        };

    let personality = match linux.personality() {
        None => None,
        Some(p) => {
            use oci_spec::runtime::LinuxPersonalityDomain as D;
            let base: u64 = match p.domain() {
                D::PerLinux => 0x0000,
                D::PerLinux32 => 0x0008,
            };
            if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
                return Err(unsupported(
                    "linux.personality.flags",
                    "no flags are defined by the runtime-spec",
                ));
            }
            Some(base)
        }
    };

    let cgroups_path = linux
        .cgroups_path()
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|p| !p.is_empty());

    let annotations: BTreeMap<String, String> = spec
        .annotations()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();

    let hooks = spec.hooks().clone().unwrap_or_default();
    for h in all_hooks(&hooks) {
        if !h.path().is_absolute() {
            return Err(invalid(format!(
                "hook path {} is not absolute",
                h.path().display()
            )));
        }
        if let Some(t) = h.timeout() {
            if t <= 0 {
                return Err(invalid(format!(
                    "hook {} has timeout {t}, which is not positive",
                    h.path().display()
                )));
            }
        }
    }

    Ok(Config {
        bundle: bundle.to_path_buf(),
        rootfs,
        rootfs_readonly,
        process,
        hostname,
        domainname,
        namespaces,
        uid_mappings,
        gid_mappings,
        time_offsets,
        mounts,
        devices,
        sysctls,
        masked_paths: linux.masked_paths().clone().unwrap_or_default(),
        readonly_paths: linux.readonly_paths().clone().unwrap_or_default(),
        rootfs_propagation,
        rootfs_propagation_recursive,
        personality,
        cgroups_path,
        resources: linux.resources().clone(),
        seccomp,
        hooks,
        annotations,
        warnings,
        spec,
    })
}

fn all_hooks(h: &Hooks) -> impl Iterator<Item = &Hook> {
    #[allow(deprecated)]
    let prestart = h.prestart();
    [
        prestart,
        h.create_runtime(),
        h.create_container(),
        h.start_container(),
        h.poststart(),
        h.poststop(),
    ]
    .into_iter()
    .flat_map(|v| v.as_deref().unwrap_or(&[]).iter())
}

fn namespaces(list: &[oci_spec::runtime::LinuxNamespace]) -> Result<Vec<Namespace>> {
    let mut out: Vec<Namespace> = Vec::new();
    for ns in list {
        if out.iter().any(|n| n.kind == ns.typ()) {
            return Err(invalid(format!(
                "linux.namespaces: {} is listed twice",
                ns.typ()
            )));
        }
        let path = ns.path().clone().filter(|p| !p.as_os_str().is_empty());
        if let Some(p) = &path {
            if !p.is_absolute() {
                return Err(invalid(format!(
                    "linux.namespaces: {} path {} is not absolute",
                    ns.typ(),
                    p.display()
                )));
            }
        }
        out.push(Namespace {
            kind: ns.typ(),
            path,
        });
    }
    Ok(out)
}

/// Validate a process document (config.json's, or `exec --process`).
pub fn process(p: &oci_spec::runtime::Process) -> Result<Process> {
    let args = p.args().clone().unwrap_or_default();
    if p.command_line().is_some() {
        return Err(unsupported("process.commandLine", "it is for Windows"));
    }
    if args.is_empty() {
        return Err(invalid("process.args must not be empty"));
    }
    let cwd = p.cwd().clone();
    if !cwd.is_absolute() {
        return Err(invalid(format!(
            "process.cwd {} is not absolute",
            cwd.display()
        )));
    }
    let user = p.user();
    if user.username().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(unsupported("process.user.username", "it is for Windows"));
    }
    let caps = match p.capabilities() {
        Some(c) => CapSet::from_spec(c)?,
        None => CapSet::default(),
    };
    let mut rlimits = Vec::new();
    for r in p.rlimits().as_deref().unwrap_or(&[]) {
        let (resource, name) = rlimit_number(r.typ());
        if rlimits.iter().any(|x: &Rlimit| x.resource == resource) {
            return Err(invalid(format!("process.rlimits: {name} is listed twice")));
        }
        if r.soft() > r.hard() {
            return Err(invalid(format!(
                "process.rlimits: {name} soft limit {} is above its hard limit {}",
                r.soft(),
                r.hard()
            )));
        }
        rlimits.push(Rlimit {
            resource,
            name,
            soft: r.soft(),
            hard: r.hard(),
        });
    }
    let console_size = p.console_size().map(|b| {
        (
            b.height().min(u16::MAX as u64) as u16,
            b.width().min(u16::MAX as u64) as u16,
        )
    });
    if let Some(adj) = p.oom_score_adj() {
        if !(-1000..=1000).contains(&adj) {
            return Err(invalid(format!(
                "process.oomScoreAdj {adj} is outside -1000..1000"
            )));
        }
    }
    let scheduler = p.scheduler().as_ref().map(scheduler).transpose()?;
    let io_priority = p.io_priority().as_ref().map(io_priority).transpose()?;
    let exec_cpu_affinity = match p.exec_cpu_affinity() {
        Some(a) => Some(ExecCpuAffinity {
            initial: a
                .initial()
                .as_deref()
                .map(|l| cpu_list("process.execCPUAffinity.initial", l))
                .transpose()?,
            last: a
                .cpu_affinity_final()
                .as_deref()
                .map(|l| cpu_list("process.execCPUAffinity.final", l))
                .transpose()?,
        }),
        None => None,
    };
    for e in p.env().as_deref().unwrap_or(&[]) {
        if !e.contains('=') || e.starts_with('=') || e.contains('\0') {
            return Err(invalid(format!(
                "process.env entry {e:?} is not NAME=VALUE"
            )));
        }
    }
    Ok(Process {
        terminal: p.terminal().unwrap_or(false),
        console_size,
        args,
        env: p.env().clone().unwrap_or_default(),
        cwd,
        uid: user.uid(),
        gid: user.gid(),
        umask: user.umask(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        caps,
        rlimits,
        no_new_privileges: p.no_new_privileges().unwrap_or(false),
        oom_score_adj: p.oom_score_adj(),
        scheduler,
        io_priority,
        exec_cpu_affinity,
    })
}

/// `process.scheduler` as sched_setattr(2)'s attributes.
fn scheduler(s: &oci_spec::runtime::Scheduler) -> Result<Sched, Error> {
    use oci_spec::runtime::{LinuxSchedulerFlag as F, LinuxSchedulerPolicy as P};
    let policy = match s.policy() {
        P::SchedOther => 0,
        P::SchedFifo => 1,
        P::SchedRr => 2,
        P::SchedBatch => 3,
        P::SchedIso => 4,
        P::SchedIdle => 5,
        P::SchedDeadline => 6,
    };
    let mut flags = 0u64;
    for f in s.flags().as_deref().unwrap_or(&[]) {
        flags |= match f {
            F::SchedResetOnFork => 0x01,
            F::SchedFlagReclaim => 0x02,
            F::SchedFlagDLOverrun => 0x04,
            F::SchedFlagKeepPolicy => 0x08,
            F::SchedFlagKeepParams => 0x10,
            F::SchedFlagUtilClampMin => 0x20,
            F::SchedFlagUtilClampMax => 0x40,
        };
    }
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(invalid(format!(
            "process.scheduler.nice {nice} is outside -20..19"
        )));
    }
    let priority = s.priority().unwrap_or(0);
    let realtime = policy == 1 || policy == 2;
    if !(0..=99).contains(&priority) || (!realtime && priority != 0) {
        return Err(invalid(format!(
            "process.scheduler.priority {priority} is invalid for policy {:?} (1..99 for SCHED_FIFO and SCHED_RR, else 0)",
            s.policy()
        )));
    }
    let deadline = policy == 6;
    if !deadline && (s.runtime().is_some() || s.deadline().is_some() || s.period().is_some()) {
        return Err(invalid(format!(
            "process.scheduler: runtime, deadline and period are for SCHED_DEADLINE only, not {:?}",
            s.policy()
        )));
    }
    Ok(Sched {
        policy,
        flags,
        nice,
        priority: priority as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
    })
}

/// `process.ioPriority` as ioprio_set's (class, level).
fn io_priority(p: &oci_spec::runtime::LinuxIOPriority) -> Result<(u32, u32), Error> {
    use oci_spec::runtime::IOPriorityClass as C;
    let class = match p.class() {
        C::IoprioClassRt => 1,
        C::IoprioClassBe => 2,
        C::IoprioClassIdle => 3,
    };
    let level = p.priority();
    if !(0..=7).contains(&level) {
        return Err(invalid(format!(
            "process.ioPriority.priority {level} is outside 0..7"
        )));
    }
    Ok((class, level as u32))
}

/// A CPU list such as "0-3,7".
fn cpu_list(field: &str, s: &str) -> Result<Vec<usize>, Error> {
    let bad = || invalid(format!("{field} {s:?} is not a CPU list such as \"0-3,7\""));
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let a: usize = a.parse().map_err(|_| bad())?;
        let b: usize = b.parse().map_err(|_| bad())?;
        if a > b || b >= 8192 {
            return Err(bad());
        }
        out.extend(a..=b);
    }
    Ok(out)
}

fn rlimit_number(t: oci_spec::runtime::PosixRlimitType) -> (u32, &'static str) {
    use oci_spec::runtime::PosixRlimitType as T;
    match t {
        T::RlimitCpu => (0, "RLIMIT_CPU"),
        T::RlimitFsize => (1, "RLIMIT_FSIZE"),
        T::RlimitData => (2, "RLIMIT_DATA"),
        T::RlimitStack => (3, "RLIMIT_STACK"),
        T::RlimitCore => (4, "RLIMIT_CORE"),
        T::RlimitRss => (5, "RLIMIT_RSS"),
        T::RlimitNproc => (6, "RLIMIT_NPROC"),
        T::RlimitNofile => (7, "RLIMIT_NOFILE"),
        T::RlimitMemlock => (8, "RLIMIT_MEMLOCK"),
        T::RlimitAs => (9, "RLIMIT_AS"),
        T::RlimitLocks => (10, "RLIMIT_LOCKS"),
        T::RlimitSigpending => (11, "RLIMIT_SIGPENDING"),
        T::RlimitMsgqueue => (12, "RLIMIT_MSGQUEUE"),
        T::RlimitNice => (13, "RLIMIT_NICE"),
        T::RlimitRtprio => (14, "RLIMIT_RTPRIO"),
        T::RlimitRttime => (15, "RLIMIT_RTTIME"),
    }
}

/// Parse runc's `--user uid[:gid]` strings (exec, later). Values above
/// u32::MAX - 1 or negative are refused, never wrapped to 0.
pub fn parse_user(s: &str) -> Result<(u32, u32)> {
    let bad = || invalid(format!("user {s:?} is not uid[:gid] with numeric ids"));
    let (u, g) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    let num = |v: &str| -> Result<u32> {
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let n: u64 = v.parse().map_err(|_| bad())?;
        if n >= u32::MAX as u64 {
            return Err(bad());
        }
        Ok(n as u32)
    };
    let uid = num(u)?;
    let gid = match g {
        Some(g) => num(g)?,
        None => 0,
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(cpu_list("f", "0-2,5").unwrap(), vec![0, 1, 2, 5]);
        assert_eq!(cpu_list("f", " 3 ").unwrap(), vec![3]);
        for bad in ["", "a", "3-1", "1-", "0-9000"] {
            assert!(cpu_list("f", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn scheduler_and_io_priority_numbers() {
        let s: oci_spec::runtime::Scheduler = serde_json::from_value(serde_json::json!(
            {"policy": "SCHED_RR", "priority": 10, "flags": ["SCHED_RESET_ON_FORK"]}
        ))
        .unwrap();
        let got = scheduler(&s).unwrap();
        assert_eq!((got.policy, got.priority, got.flags), (2, 10, 1));
        for bad in [
            serde_json::json!({"policy": "SCHED_OTHER", "priority": 5}),
            serde_json::json!({"policy": "SCHED_FIFO", "priority": 100}),
            serde_json::json!({"policy": "SCHED_BATCH", "nice": 20}),
            serde_json::json!({"policy": "SCHED_OTHER", "runtime": 1}),
        ] {
            let s: oci_spec::runtime::Scheduler = serde_json::from_value(bad.clone()).unwrap();
            assert!(scheduler(&s).is_err(), "{bad}");
        }
        let p: oci_spec::runtime::LinuxIOPriority = serde_json::from_value(
            serde_json::json!({"class": "IOPRIO_CLASS_IDLE", "priority": 7}),
        )
        .unwrap();
        assert_eq!(io_priority(&p).unwrap(), (3, 7));
        let p: oci_spec::runtime::LinuxIOPriority =
            serde_json::from_value(serde_json::json!({"class": "IOPRIO_CLASS_BE", "priority": 8}))
                .unwrap();
        assert!(io_priority(&p).is_err());
    }

    #[test]
    fn user_strings() {
        assert_eq!(parse_user("1").unwrap(), (1, 0));
        assert_eq!(parse_user("1:2").unwrap(), (1, 2));
        assert_eq!(parse_user("0").unwrap(), (0, 0));
        assert_eq!(parse_user("65534:65534").unwrap(), (65534, 65534));
        for bad in [
            "",
            "-1",
            "1:",
            ":1",
            "4294967296",
            "4294967295",
            "a",
            "1:b",
            " 1",
        ] {
            assert!(parse_user(bad).is_err(), "{bad:?} accepted");
        }
    }
}
