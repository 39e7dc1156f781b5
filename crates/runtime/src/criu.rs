//! `checkpoint` and `restore` through the `criu` binary's command line, with
//! the options runc 1.1 passes over criu's RPC (libcontainer's Checkpoint and
//! Restore). The argument checks are the caller's; this module finds criu,
//! checks its version (3.0 or later, as runc) and runs `criu dump`,
//! `criu pre-dump` or `criu restore`. When criu fails, the error names its
//! log file.

use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_cgroups::CgroupConfig;
use berth_oci::mounts::MountKind;
use berth_oci::{Config, LinuxNamespaceType as NS};

use crate::container::{self, Container};
use crate::state::{self, Phase, Root, State, Status};
use crate::{Error, Result};

/// runc's CriuOpts, resolved.
#[derive(Debug, Clone, Default)]
pub struct Opts {
    /// The criu binary (`--criu`, default `criu` from $PATH).
    pub criu: PathBuf,
    pub image_path: PathBuf,
    pub work_path: Option<PathBuf>,
    /// Relative to `image_path` (checked by the caller).
    pub parent_path: Option<String>,
    pub leave_running: bool,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub pre_dump: bool,
    pub auto_dedup: bool,
    pub lazy_pages: bool,
    pub status_fd: i32,
    pub page_server: Option<(String, u16)>,
    /// soft, full or strict.
    pub manage_cgroups_mode: Option<String>,
    /// Namespaces made empty on restore (runc: always the network one).
    pub empty_ns: Vec<String>,
}

/// Restore's own options.
#[derive(Debug, Clone, Default)]
pub struct RestoreOpts {
    pub id: String,
    pub bundle: PathBuf,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub no_subreaper: bool,
    pub systemd_cgroup: bool,
}

/// runc's minimum: the version RPC came with criu 3.0.
const MIN_VERSION: u32 = 30000;

/// criu's version as runc counts it (major*10000 + minor*100 + sublevel).
pub fn version(criu: &Path) -> Result<u32> {
    // runc's words (Go's exec errors), naming the binary.
    let bare = !criu.as_os_str().as_encoded_bytes().contains(&b'/');
    let out = Command::new(criu).arg("--version").output().map_err(|e| {
        let why = if bare && e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "exec: {:?}: executable file not found in $PATH",
                criu.display().to_string()
            )
        } else {
            format!("fork/exec {}: {}", criu.display(), go_words(&e))
        };
        Error::Invalid(format!("CRIU version check failed: {why}"))
    })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v = text
        .lines()
        .find_map(|l| l.strip_prefix("Version:"))
        .map(str::trim)
        .and_then(|v| {
            let mut n = v.split('.').map(|x| x.parse::<u32>().ok());
            let (a, b) = (n.next()??, n.next()??);
            let c = n.next().flatten().unwrap_or(0);
            Some(a * 10000 + b * 100 + c)
        })
        .ok_or_else(|| {
            Error::Invalid(format!(
                "CRIU version check failed: {} --version printed no version: {}",
                criu.display(),
                text.trim()
            ))
        })?;
    if v < MIN_VERSION {
        return Err(Error::Invalid(format!(
            "CRIU version {v} must be {MIN_VERSION} or higher"
        )));
    }
    Ok(v)
}

/// An io error as Go says it ("no such file or directory"), as runc's messages have it.
pub fn go_words(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = s.split(" (os error").next().unwrap_or(&s);
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_lowercase().chain(c).collect())
        .unwrap_or_default()
}

fn mkdir(p: &Path) -> Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(p) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            Err(Error::io(format!("create {}", p.display()), e))
        }
        _ => Ok(()),
    }
}

/// Options both directions take.
fn common(cmd: &mut Command, o: &Opts, log: &str) -> Result<()> {
    cmd.arg("--images-dir").arg(&o.image_path);
    if let Some(w) = &o.work_path {
        mkdir(w)?;
        cmd.arg("--work-dir").arg(w);
    }
    cmd.args(["--log-file", log, "-v4"]);
    cmd.arg(match &o.manage_cgroups_mode {
        Some(m) => format!("--manage-cgroups={m}"),
        None => "--manage-cgroups".into(),
    });
    for (on, flag) in [
        (o.shell_job, "--shell-job"),
        (o.tcp_established, "--tcp-established"),
        (o.ext_unix_sk, "--ext-unix-sk"),
        (o.file_locks, "--file-locks"),
        (o.auto_dedup, "--auto-dedup"),
        (o.lazy_pages, "--lazy-pages"),
    ] {
        if on {
            cmd.arg(flag);
        }
    }
    Ok(())
}

/// Where criu writes `log`: the work dir, else the images dir.
fn log_path(o: &Opts, log: &str) -> PathBuf {
    o.work_path.as_deref().unwrap_or(&o.image_path).join(log)
}

/// Run criu; a failure names its log (runc: "criu failed: ... log file: P").
fn run_criu(mut cmd: Command, what: &str, log: &Path) -> Result<()> {
    crate::timing::note(|| format!("running {cmd:?}"));
    let st = cmd
        .status()
        .map_err(|e| Error::io(format!("run criu {what}"), e))?;
    if !st.success() {
        return Err(Error::Child(format!(
            "criu failed: {what} exited with {st}\nlog file: {}",
            log.display()
        )));
    }
    Ok(())
}

/// Bind mounts, masked paths and device nodes are external to the image:
/// criu records them by destination (runc's addCriuDumpMount).
fn external_mounts(cfg: &Config) -> Vec<String> {
    let mut v: Vec<String> = cfg
        .mounts
        .iter()
        .filter(|m| matches!(m.kind, MountKind::Bind { .. }))
        .map(|m| m.destination.display().to_string())
        .collect();
    v.extend(cfg.devices.iter().map(|d| d.path.display().to_string()));
    v
}

/// `checkpoint`: the container must be running or paused.
pub fn checkpoint(c: Container, cfg: &Config, o: &Opts) -> Result<Vec<String>> {
    version(&o.criu)?;
    mkdir(&o.image_path)?;
    let log = if o.pre_dump {
        "pre-dump.log"
    } else {
        "dump.log"
    };
    let mut cmd = Command::new(&o.criu);
    cmd.arg(if o.pre_dump { "pre-dump" } else { "dump" })
        .arg("--tree")
        .arg(c.state.pid.to_string());
    common(&mut cmd, o, log)?;
    cmd.arg("--root").arg(&c.state.rootfs);
    if o.leave_running {
        cmd.arg("--leave-running");
    }
    if let Some(p) = c.state.cgroup_paths.get("freezer") {
        cmd.arg("--freeze-cgroup").arg(p);
    }
    if let Some((addr, port)) = &o.page_server {
        cmd.args(["--page-server", "--address", addr, "--port"])
            .arg(port.to_string());
    }
    if let Some(p) = &o.parent_path {
        cmd.args(["--prev-images-dir", p, "--track-mem"]);
    }
    if o.lazy_pages && o.status_fd >= 0 {
        check_status_fd(o.status_fd)?;
        cmd.arg("--status-fd").arg(o.status_fd.to_string());
    }
    if !o.pre_dump {
        for m in external_mounts(cfg) {
            cmd.arg("--external").arg(format!("mnt[{m}]:{m}"));
        }
        // A network namespace joined by path stays outside the image.
        if let Some(p) = cfg
            .namespaces
            .iter()
            .find(|n| n.kind == NS::Network)
            .and_then(|n| n.path.as_ref())
        {
            use std::os::unix::fs::MetadataExt;
            let ino = std::fs::metadata(p)
                .map_err(|e| Error::io(format!("stat {}", p.display()), e))?
                .ino();
            cmd.arg("--external")
                .arg(format!("net[{ino}]:extRootNetNS"));
        }
        // How stdio was connected, for restore (runc's descriptors.json).
        let fds: Vec<String> = (0..3)
            .map(|i| {
                std::fs::read_link(format!("/proc/{}/fd/{i}", c.state.pid))
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            })
            .collect();
        let data = serde_json::to_vec(&fds).unwrap_or_default();
        state::write_atomic(&o.image_path, "descriptors.json", &data, 0o600)?;
    }
    run_criu(
        cmd,
        if o.pre_dump { "pre-dump" } else { "dump" },
        &log_path(o, log),
    )?;
    if o.pre_dump || o.leave_running {
        return Ok(Vec::new());
    }
    // criu killed the tree: the container is gone (runc destroys it).
    c.delete(true)
}

/// runc's check of --status-fd: open, and opened O_WRONLY (its open flags
/// read from fdinfo, octal).
fn check_status_fd(fd: i32) -> Result<()> {
    let bad = |why: &str| Error::Invalid(format!("invalid --status-fd argument {fd}: {why}"));
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))
        .map_err(|_| bad("bad file descriptor"))?;
    let flags = info
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
        .ok_or_else(|| bad("unreadable flags"))?;
    if flags & libc::O_WRONLY as u32 == 0 {
        return Err(bad("not writable"));
    }
    Ok(())
}

/// `restore`: make the container's state and cgroup, let criu restore the
/// tree into them, record the restored init. Returns the container's exit
/// status when not detached (runc exits with it).
pub fn restore(
    root: &Root,
    cfg: Config,
    raw: &[u8],
    r: &RestoreOpts,
    o: &Opts,
) -> Result<Option<i32>> {
    if container::exists(root, &r.id) {
        return Err(Error::Exists(r.id.clone()));
    }
    version(&o.criu)?;
    let cgroup = berth_cgroups::new_manager(
        &CgroupConfig {
            path: cfg.cgroups_path.as_deref(),
            id: &r.id,
            systemd: r.systemd_cgroup,
        },
        container::hierarchy()?,
    )?;
    let mut dir = root.create(&r.id)?;
    let mut st = State {
        id: r.id.clone(),
        pid: 0,
        pid_start_time: 0,
        bundle: r.bundle.clone(),
        rootfs: cfg.rootfs.clone(),
        created: state::now_rfc3339(),
        owner: String::new(),
        phase: Phase::Creating,
        cgroup_paths: cgroup.paths(),
        annotations: cfg.annotations.clone(),
        host_pidns: !cfg.has(NS::Pid),
        systemd_cgroup: r.systemd_cgroup,
        hooks: Some(cfg.hooks.clone()),
    };
    root.publish(&mut dir, &st, &[(state::CONFIG_FILE, raw)])?;
    // A cgroup that already had processes is not ours to remove (as create).
    let own_cgroup = std::cell::Cell::new(false);
    let undo = |dir: &state::ContainerDir| {
        if own_cgroup.get() {
            let _ = cgroup.destroy();
        }
        let _ = std::fs::remove_dir_all(&dir.path);
    };
    let res = (|| -> Result<i32> {
        own_cgroup.set(cgroup.create_shared()? == 0);
        let pidfile = dir.path.join("restored.pid");
        let mut cmd = Command::new(&o.criu);
        cmd.arg("restore");
        common(&mut cmd, o, "restore.log")?;
        cmd.arg("--root").arg(&cfg.rootfs);
        cmd.args(["--restore-detached", "--restore-sibling"]);
        cmd.arg("--pidfile").arg(&pidfile);
        // criu puts the restored tree under the container's cgroup.
        if let Some(p) = cfg.cgroups_path.as_deref() {
            cmd.arg("--cgroup-root").arg(p);
        }
        for ns in &o.empty_ns {
            cmd.arg("--empty-ns").arg(ns);
        }
        // Bind mounts and devices come from the host again.
        let sources: BTreeMap<String, String> = cfg
            .mounts
            .iter()
            .filter(|m| matches!(m.kind, MountKind::Bind { .. }))
            .filter_map(|m| {
                Some((
                    m.destination.display().to_string(),
                    m.source.as_ref()?.display().to_string(),
                ))
            })
            .chain(
                cfg.devices
                    .iter()
                    .map(|d| (d.path.display().to_string(), d.path.display().to_string())),
            )
            .collect();
        for (dest, src) in &sources {
            cmd.arg("--external").arg(format!("mnt[{dest}]:{src}"));
        }
        if !r.no_subreaper {
            rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
                .map_err(|e| Error::io("become child subreaper".into(), e.into()))?;
        }
        run_criu(cmd, "restore", &log_path(o, "restore.log"))?;
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| {
                Error::Child(format!(
                    "criu restore wrote no pid to {}",
                    pidfile.display()
                ))
            })?;
        Ok(pid)
    })();
    let pid = match res {
        Ok(p) => p,
        Err(e) => {
            undo(&dir);
            return Err(e);
        }
    };
    st.pid = pid;
    st.pid_start_time = state::process_start_time(pid).unwrap_or(0);
    st.phase = Phase::Started;
    dir.save(&st)?;
    if let Some(p) = &r.pid_file {
        state::write_pid_file(p, pid)?;
    }
    if r.detach {
        return Ok(None);
    }
    // runc waits for the restored process and exits with its status.
    let ws = rustix::process::waitpid(
        rustix::process::Pid::from_raw(pid),
        rustix::process::WaitOptions::empty(),
    )
    .map_err(|e| Error::io(format!("wait for {pid}"), e.into()))?;
    let code = ws
        .and_then(|w| {
            w.1.exit_status()
                .or_else(|| w.1.terminating_signal().map(|s| 128 + s))
        })
        .unwrap_or(0);
    let c = Container { dir, state: st };
    if c.status() == Status::Stopped {
        c.destroy()?;
    }
    Ok(Some(code as i32))
}
