//! P and C of the hand-off (see `sync`): the runtime side of `create`, and
//! the intermediate child that makes the namespaces and forks init.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use berth_cgroups::{CgroupConfig, Manager};
use berth_oci::{Config, LinuxNamespaceType as NS};
use berth_sys::process::{exit_now, fork, Fork};
use rustix::thread::{LinkNameSpaceType, UnshareFlags};

use crate::hooks::{self, HookKind};
use crate::state::{self, ContainerDir, Phase, Root, State};
use crate::sync::{self, IntermediateSync, ParentSync};
use crate::{error_chain, init, timing, Error, Result};

/// What `create` (and `run`) were asked for, beyond the config.
#[derive(Debug, Clone, Default)]
pub struct CreateOpts {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    pub systemd_cgroup: bool,
    /// `run`: the caller starts the container at once. Init is released
    /// over the sync socket (no exec fifo), and the `created` state, which
    /// nobody could observe, is not written.
    pub run: bool,
}

/// Everything init needs that is not in the config.
pub struct InitContext {
    pub id: String,
    pub console: Option<OwnedFd>,
    /// O_PATH fd of the exec fifo; None for `run`, where P releases init
    /// over the sync socket.
    pub fifo: Option<OwnedFd>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    pub cgroup_paths: BTreeMap<String, PathBuf>,
    pub seccomp: Option<crate::seccomp::Prepared>,
    /// With a user namespace: each bind mount's source (by index in
    /// `config.mounts`) as an O_PATH fd that P, still host root, opened in
    /// init's mount namespace at [5], so that a source only host root can
    /// reach still binds (as runc's mount fds). Filled in by init.
    pub bind_sources: Vec<Option<OwnedFd>>,
}

/// A container parked in `created`, still owned by this process.
pub struct Created {
    pub dir: ContainerDir,
    pub state: State,
    pub config: Config,
    pub cgroup: Box<dyn Manager>,
    /// `run`: P's end of the sync socket, over which init is released.
    pub release: Option<ParentSync>,
}

/// Undo-on-drop for a create in progress.
struct Undo<'a> {
    dir: Option<&'a ContainerDir>,
    cgroup: Option<&'a dyn Manager>,
    init_pid: i32,
    armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if self.init_pid > 0 {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(self.init_pid).expect("positive pid"),
                rustix::process::Signal::KILL,
            );
            crate::container::wait_gone(self.init_pid, 2000);
        }
        if let Some(cg) = self.cgroup {
            let _ = cg.destroy();
        }
        if let Some(d) = self.dir {
            let _ = std::fs::remove_dir_all(&d.path);
        }
    }
}

/// `create`: returns once init is parked before exec, with everything in
/// place (or an error, after undoing everything).
pub fn create(root: &Root, opts: &CreateOpts, console: Option<OwnedFd>) -> Result<Created> {
    check_bundle(opts)?;
    let (config, raw) = berth_oci::load_with_bytes(&opts.bundle)?;
    timing::mark("config load and validation");
    create_loaded(root, opts, console, config, &raw)
}

fn check_bundle(opts: &CreateOpts) -> Result<()> {
    if !opts.bundle.is_absolute() {
        return Err(Error::Invalid(format!(
            "bundle {} is not absolute",
            opts.bundle.display()
        )));
    }
    Ok(())
}

/// [`create`] with the bundle's config already loaded (`run` reads it
/// first); `raw` is the config.json that was parsed.
pub fn create_loaded(
    root: &Root,
    opts: &CreateOpts,
    console: Option<OwnedFd>,
    mut config: Config,
    raw: &[u8],
) -> Result<Created> {
    check_bundle(opts)?;
    if config.process.terminal && opts.console_socket.is_none() && console.is_none() {
        // `run` in the foreground makes its own console socket; `create`
        // cannot give a tty to nobody.
        return Err(Error::Invalid(
            "cannot allocate tty if berth-runtime will detach without setting console socket"
                .into(),
        ));
    }
    if !config.process.terminal && opts.console_socket.is_some() {
        return Err(Error::Invalid(
            "cannot use console socket if berth-runtime will not detach or allocate tty".into(),
        ));
    }
    let cgroup = berth_cgroups::new_manager(
        &CgroupConfig {
            path: config.cgroups_path.as_deref(),
            id: &opts.id,
            systemd: opts.systemd_cgroup,
        },
        crate::container::hierarchy()?,
    )?;
    timing::mark("cgroup hierarchy");
    let mut dir = root.create(&opts.id)?;
    let mut st = State {
        id: opts.id.clone(),
        pid: 0,
        pid_start_time: 0,
        bundle: opts.bundle.clone(),
        rootfs: config.rootfs.clone(),
        created: state::now_rfc3339(),
        owner: String::new(),
        phase: Phase::Creating,
        cgroup_paths: cgroup.paths(),
        annotations: config.annotations.clone(),
        host_pidns: !config.has(NS::Pid),
        systemd_cgroup: opts.systemd_cgroup,
        hooks: Some(config.hooks.clone()),
    };
    // The state comes first, so that delete --force can undo what follows.
    // exec starts from the container's own config (the very bytes parsed),
    // whatever becomes of the bundle afterwards.
    root.publish(&mut dir, &st, &[(state::CONFIG_FILE, raw)])?;
    timing::mark("state dir");
    let mut undo = Undo {
        dir: Some(&dir),
        cgroup: None,
        init_pid: 0,
        armed: true,
    };
    // runc 1.1: a cgroup that already has processes is warned about and used.
    let found = cgroup.create_shared()?;
    if found == 0 {
        undo.cgroup = Some(cgroup.as_ref());
    } else {
        // Not ours to remove if this create fails: others live in it.
        config.warnings.push(format!(
            "container's cgroup is not empty: {found} process(es) found"
        ));
    }
    timing::mark("cgroup creation");

    // `run` releases init over the sync socket; `create` parks it on the
    // exec fifo until `start`.
    let fifo = if opts.run {
        None
    } else {
        Some(make_fifo(&dir)?)
    };

    let console = match (&opts.console_socket, console) {
        (_, Some(fd)) => Some(fd),
        (Some(p), None) => Some(crate::tty::connect_console_socket(p)?),
        (None, None) => None,
    };
    timing::mark("exec fifo, console");
    let seccomp = crate::seccomp::prepare(&config, &root.path)?;
    timing::mark("seccomp compile");
    let ctx = InitContext {
        id: opts.id.clone(),
        console,
        fifo,
        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
        preserve_fds: opts.preserve_fds,
        cgroup_paths: cgroup.paths(),
        seccomp,
        bind_sources: Vec::new(),
    };

    let joins = self_join_files(&*cgroup, &config);
    let (parent, child) = sync::pair()?;
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
        .map_err(|e| Error::io("become child subreaper".into(), e.into()))?;
    // On cgroup2, C starts inside the container's cgroup (CLONE_INTO_CGROUP).
    let v2 = cgroup.v2_dir().and_then(|d| {
        rustix::fs::open(
            &d,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .ok()
    });
    // With nothing to join and no time offsets to write, the child can be
    // made in its new namespaces at once and be init itself (no C).
    let direct_flags = direct_clone_flags(&config);
    let ns_flags = direct_flags.unwrap_or(0);
    let forked = match (&v2, direct_flags) {
        (Some(fd), _) => match berth_sys::process::clone3(ns_flags, Some(fd.as_fd())) {
            Ok(f) => Ok((f, true)),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EINVAL)) => {
                clone_plain(ns_flags).map(|f| (f, false))
            }
            Err(e) => Err(e),
        },
        (None, _) => clone_plain(ns_flags).map(|f| (f, false)),
    };
    let (forked, in_cgroup) = forked.map_err(|e| Error::io("fork".into(), e))?;
    drop(v2);
    timing::mark("clone, namespaces");
    let c_pid = match forked {
        Fork::Child => {
            // C: drop what belongs to P, above all the state lock and P's
            // end of the socket (so that P's death is seen as EOF).
            drop(parent);
            std::mem::forget(undo);
            drop(dir);
            if direct_flags.is_some() {
                direct_init(&config, child.into_intermediate(), ctx, joins)
            }
            intermediate(&config, child.into_intermediate(), ctx, joins)
        }
        Fork::Parent(pid) => pid,
    };
    timing::note(|| match direct_flags {
        Some(f) => format!(
            "cloned init {c_pid} in its new namespaces (flags {f:#x}): no intermediate process"
        ),
        None => format!(
            "cloned intermediate process {c_pid}: it enters or makes the namespaces and forks init"
        ),
    });
    drop(child);
    drop(ctx);
    let self_joined = !joins.is_empty();
    drop(joins);

    let res = drive_parent(
        &parent,
        &config,
        &*cgroup,
        c_pid,
        Placement {
            in_v2: in_cgroup,
            in_v1: self_joined,
        },
        direct_flags.is_some(),
        opts.run,
        &dir,
        &mut st,
        &mut undo,
    );
    // A setup process killed by the OOM killer shows up as a closed socket;
    // say what happened, as runc does.
    let res = res.map_err(|e| match cgroup.stats() {
        Ok(s) if s.memory.event_count.oom_kill > 0 => Error::Child(format!(
            "container init was OOM-killed (memory limit too low?): {}",
            crate::error_chain(&e)
        )),
        _ => e,
    });
    if let Err(e) = res {
        parent.abort(&error_chain(&e));
        reap(c_pid);
        return Err(e);
    }
    undo.armed = false;
    drop(undo);
    if let Some(p) = &opts.pid_file {
        if let Err(e) = state::write_pid_file(p, st.pid) {
            kill_and_clean(&dir, &*cgroup, st.pid);
            return Err(e);
        }
    }
    Ok(Created {
        dir,
        state: st,
        config,
        cgroup,
        release: opts.run.then_some(parent),
    })
}

/// The exec fifo, and an O_PATH fd of it for init.
fn make_fifo(dir: &ContainerDir) -> Result<OwnedFd> {
    let path = dir.fifo_path();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o622),
        0,
    )
    .map_err(|e| Error::io(format!("mkfifo {}", path.display()), e.into()))?;
    // Mode 0622 lets an unprivileged container user open it for writing.
    let _ = rustix::fs::chmod(&path, rustix::fs::Mode::from_raw_mode(0o622));
    rustix::fs::open(
        &path,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| Error::io(format!("open exec fifo {}", path.display()), e.into()))
}

fn kill_and_clean(dir: &ContainerDir, cg: &dyn Manager, pid: i32) {
    let _ = Undo {
        dir: Some(dir),
        cgroup: Some(cg),
        init_pid: pid,
        armed: true,
    };
}

fn reap(pid: i32) -> Option<rustix::process::WaitStatus> {
    let p = rustix::process::Pid::from_raw(pid)?;
    loop {
        match rustix::process::waitpid(Some(p), rustix::process::WaitOptions::empty()) {
            Ok(Some((_, st))) => return Some(st),
            Ok(None) => return None,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return None,
        }
    }
}

/// The v1 `tasks` files through which C moves itself into the container's cgroups
/// ([`join_self`]), opened by P before the clone; none (P places C) on a pure v2 host,
/// with a new user namespace, or when one cannot be opened.
///
/// Why: P's write of C's pid to a `cgroup.procs` takes the kernel's global threadgroup
/// lock, whose first taking waits for an RCU grace period: 10-20 ms of every create on
/// a v1 host. A single thread that moves itself (`0` to `tasks`) skips that lock
/// (Linux 6.0, "cgroup: Optimize single thread migration"); C is single-threaded.
fn self_join_files(cgroup: &dyn Manager, config: &Config) -> Vec<OwnedFd> {
    if config.has_new(NS::User) {
        return Vec::new();
    }
    let open = |d: PathBuf| {
        rustix::fs::open(
            d.join("tasks"),
            rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
    };
    v1_dirs(cgroup.paths(), cgroup.v2_dir().as_deref())
        .into_iter()
        .map(open)
        .collect::<std::result::Result<Vec<_>, _>>()
        .unwrap_or_default()
}

/// The distinct v1 directories of a manager's `paths()` (co-mounted controllers share
/// one), without the unified one.
fn v1_dirs(paths: BTreeMap<String, PathBuf>, v2: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = paths
        .into_iter()
        .filter(|(ctrl, d)| !ctrl.is_empty() && Some(d.as_path()) != v2)
        .map(|(_, d)| d)
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// C, first thing after the clone: into each of `files` ([`self_join_files`]). An error
/// is reported after [1], where P listens.
fn join_self(files: Vec<OwnedFd>) -> Result<()> {
    for f in files {
        rustix::io::write(&f, b"0")
            .map_err(|e| Error::io("join the container's cgroup".into(), e.into()))?;
    }
    Ok(())
}

/// Where C already is when P takes over: in the unified cgroup (CLONE_INTO_CGROUP),
/// in the v1 ones ([`join_self`]).
struct Placement {
    in_v2: bool,
    in_v1: bool,
}

/// P's half of the protocol, sync points [1] to [8].
#[allow(clippy::too_many_arguments)]
fn drive_parent<'a>(
    sync: &ParentSync,
    config: &Config,
    cgroup: &dyn Manager,
    c_pid: i32,
    placed: Placement,
    direct: bool,
    run: bool,
    dir: &ContainerDir,
    st: &mut State,
    undo: &mut Undo<'a>,
) -> Result<()> {
    match (placed.in_v2, placed.in_v1) {
        (true, true) => {}
        (true, false) => cgroup.add_task_v1(c_pid)?,
        (false, true) => {
            if let Some(d) = cgroup.v2_dir() {
                let p = d.join("cgroup.procs");
                std::fs::write(&p, c_pid.to_string())
                    .map_err(|e| Error::io(format!("write {}", p.display()), e))?;
            }
        }
        (false, false) => cgroup.add_task(c_pid)?,
    }
    if let Some(res) = effective_resources(config) {
        cgroup.apply(&res)?;
    }
    timing::mark("cgroup placement, resources");
    timing::note(|| {
        if placed.in_v1 {
            format!("[1] {c_pid} joins its v1 cgroups itself: go")
        } else {
            format!("[1] {c_pid} is in the container's cgroups: go")
        }
    });
    sync.go()?; // [1]
    if config.has_new(NS::User) {
        sync.wait_userns_ready()?; // [2]
        write_id_maps(c_pid, config)?;
        sync.userns_mapped()?; // [3]
        timing::mark("[2]/[3] id maps");
    }
    let pid = if direct {
        // The child is init itself: there is no [4].
        c_pid
    } else {
        let pid = sync.wait_init_pid()?; // [4]
        match reap(c_pid) {
            Some(ws) if ws.exit_status() == Some(0) => {}
            other => {
                undo.init_pid = pid;
                return Err(Error::Child(format!(
                    "intermediate process {c_pid} ended badly: {other:?}"
                )));
            }
        }
        timing::mark("[4] init pid");
        timing::note(|| {
            format!("[4] init pid {pid} forwarded by intermediate process {c_pid}, which exited")
        });
        pid
    };
    undo.init_pid = pid;
    st.pid = pid;
    st.pid_start_time = state::process_start_time(pid)
        .ok_or_else(|| Error::Child(format!("container init {pid} died during setup")))?;
    // `run` without hooks up to startContainer: nothing of the container's
    // reads the state before start, which records the pid with the phase (a
    // write less). If P dies meanwhile, init sees the socket close and exits.
    let early_hooks = hooks::has_runtime_hooks(&config.hooks)
        || [HookKind::CreateContainer, HookKind::StartContainer]
            .into_iter()
            .any(|k| !hooks::list(&config.hooks, k).is_empty());
    if !run || early_hooks {
        dir.save(st)?;
    }
    timing::mark("state with pid");

    // runtime-tools (and crun) expect "created" here.
    let hook_state = hooks::state_json(config, &st.id, "created", pid);
    let binds = if config.has(NS::User) && config.has(NS::Mount) {
        crate::rootfs::open_bind_sources(config, pid)?
    } else {
        Vec::new()
    };
    timing::note(|| {
        format!(
            "[5] init {pid}: set up the container (mounts, devices, pivot_root, console, masks)"
        )
    });
    sync.setup(hook_state.clone(), binds)?; // [5]
    if hooks::has_runtime_hooks(&config.hooks) {
        sync.wait_runtime_hooks()?; // [6]
        hooks::run(&config.hooks, HookKind::Prestart, &hook_state)?;
        hooks::run(&config.hooks, HookKind::CreateRuntime, &hook_state)?;
        sync.hooks_done()?; // [7]
        timing::mark("[6]/[7] prestart, createRuntime hooks");
    }
    let init_phases = sync.wait_ready()?; // [8]
    timing::mark("[5]-[8] init setup");
    timing::note(|| {
        format!("[8] init {pid} is ready, waiting to be started; its own steps follow")
    });
    timing::merge("init:", init_phases);
    st.phase = Phase::Created;
    if !run {
        dir.save(st)?;
        timing::mark("state created");
    }
    Ok(())
}

fn write_id_maps(pid: i32, config: &Config) -> Result<()> {
    let fmt = |maps: &[berth_oci::LinuxIdMapping]| {
        maps.iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect::<String>()
    };
    for (file, data) in [
        ("uid_map", fmt(&config.uid_mappings)),
        ("gid_map", fmt(&config.gid_mappings)),
    ] {
        let path = format!("/proc/{pid}/{file}");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(format!("open {path}"), e))?;
        f.write_all(data.as_bytes())
            .map_err(|e| Error::io(format!("write {path} ({})", data.trim()), e))?;
    }
    Ok(())
}

/// clone flags for making init directly in all its new namespaces, or None
/// when C is needed: a namespace joined by path, or time offsets to write
/// before any process enters the time namespace.
fn direct_clone_flags(config: &Config) -> Option<u64> {
    if config.namespaces.iter().any(|n| n.path.is_some()) || !config.time_offsets.is_empty() {
        return None;
    }
    // The cgroup namespace is unshared by init itself, once P has put it in
    // its v1 cgroups: its root must be the container's cgroup.
    Some(
        config
            .namespaces
            .iter()
            .filter(|n| n.kind != NS::Cgroup)
            .map(|n| ns_link_type(n.kind).1.bits() as u64)
            .fold(0, |a, b| a | b),
    )
}

fn clone_plain(flags: u64) -> std::io::Result<Fork> {
    if flags == 0 {
        fork()
    } else {
        berth_sys::process::clone3(flags, None)
    }
}

/// I made directly in its namespaces: sync points [1] to [3] as C would
/// do them, then init.
fn direct_init(
    config: &Config,
    sync: IntermediateSync,
    ctx: InitContext,
    joins: Vec<OwnedFd>,
) -> ! {
    timing::restart();
    let joined = join_self(joins);
    timing::mark("cgroups joined");
    // Without a new user namespace, mounts need nothing from P: make the
    // rootfs while P places this process in its cgroups (runtime code only;
    // the container's own runs after [9], in the cgroups).
    let early = (!config.has_new(NS::User) && config.has(NS::Mount)).then(|| {
        // Modes are exact during setup, as in `init::run`.
        rustix::process::umask(rustix::fs::Mode::empty());
        let p = crate::rootfs::prepare(config, &ctx);
        timing::mark("mounts (early)");
        p
    });
    let res = sync
        .wait_go()
        .map_err(|e| Error::io("[1] wait for go".into(), e))
        .and(joined)
        .and_then(|()| {
            if config.has_new(NS::User) {
                sync.userns_ready_and_wait()
                    .map_err(|e| Error::io("[2]/[3] user namespace mapping".into(), e))?;
                berth_sys::process::set_res_ids(0, 0)
                    .map_err(|e| Error::io("become root in the user namespace".into(), e))?;
            }
            if config.has_new(NS::Cgroup) {
                berth_sys::process::unshare(libc::CLONE_NEWCGROUP)
                    .map_err(|e| Error::io("unshare cgroup namespace".into(), e))?;
            }
            timing::mark("[1]-[3] wait go, userns, cgroupns");
            Ok(())
        });
    match res {
        Ok(()) => init::run(config, sync.into_init(), ctx, early),
        Err(e) => {
            sync.error(&error_chain(&e));
            exit_now(1)
        }
    }
}

/// C: enter or make the namespaces, fork init, report its pid, exit.
fn intermediate(
    config: &Config,
    sync: IntermediateSync,
    ctx: InitContext,
    joins: Vec<OwnedFd>,
) -> ! {
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    let joined = join_self(joins);
    let prep = sync
        .wait_go()
        .map_err(|e| Error::io("[1] wait for go".into(), e))
        .and(joined)
        .and_then(|()| enter_namespaces(config, &sync));
    let res = match prep {
        Err(e) => Err(e),
        Ok(()) => match fork().map_err(|e| Error::io("fork init".into(), e)) {
            Ok(Fork::Child) => {
                timing::restart();
                init::run(config, sync.into_init(), ctx, None)
            }
            Ok(Fork::Parent(pid)) => Ok(pid),
            Err(e) => Err(e),
        },
    };
    match res {
        Ok(pid) => {
            if sync.init_pid(pid).is_err() {
                exit_now(1);
            }
            exit_now(0)
        }
        Err(e) => {
            sync.error(&error_chain(&e));
            exit_now(1)
        }
    }
}

fn ns_link_type(k: NS) -> (LinkNameSpaceType, UnshareFlags) {
    match k {
        NS::Mount => (LinkNameSpaceType::Mount, UnshareFlags::NEWNS),
        NS::Cgroup => (LinkNameSpaceType::ControlGroup, UnshareFlags::NEWCGROUP),
        NS::Uts => (
            LinkNameSpaceType::HostNameAndNISDomainName,
            UnshareFlags::NEWUTS,
        ),
        NS::Ipc => (
            LinkNameSpaceType::InterProcessCommunication,
            UnshareFlags::NEWIPC,
        ),
        NS::User => (LinkNameSpaceType::User, UnshareFlags::NEWUSER),
        NS::Pid => (LinkNameSpaceType::ProcessID, UnshareFlags::NEWPID),
        NS::Network => (LinkNameSpaceType::Network, UnshareFlags::NEWNET),
        NS::Time => (LinkNameSpaceType::Time, UnshareFlags::NEWTIME),
    }
}

fn enter_namespaces(config: &Config, sync: &IntermediateSync) -> Result<()> {
    // Open every path first: after setns(mnt) the paths may mean something else.
    let mut joins: Vec<(NS, File)> = Vec::new();
    for ns in &config.namespaces {
        if let Some(p) = &ns.path {
            let f = File::open(p)
                .map_err(|e| Error::io(format!("open {} namespace {}", ns.kind, p.display()), e))?;
            joins.push((ns.kind, f));
        }
    }
    // The user namespace first: it decides what the others may do.
    joins.sort_by_key(|(k, _)| if *k == NS::User { 0 } else { 1 });
    for (k, f) in &joins {
        let (t, _) = ns_link_type(*k);
        rustix::thread::move_into_link_name_space(f.as_fd(), Some(t))
            .map_err(|e| Error::io(format!("join {k} namespace"), e.into()))?;
    }
    if config.has_new(NS::User) {
        berth_sys::process::unshare(libc::CLONE_NEWUSER)
            .map_err(|e| Error::io("unshare user namespace".into(), e))?;
        sync.userns_ready_and_wait()
            .map_err(|e| Error::io("[2]/[3] user namespace mapping".into(), e))?;
        berth_sys::process::set_res_ids(0, 0)
            .map_err(|e| Error::io("become root in the user namespace".into(), e))?;
    }
    if config.has_new(NS::Time) {
        berth_sys::process::unshare(libc::CLONE_NEWTIME)
            .map_err(|e| Error::io("unshare time namespace".into(), e))?;
        if !config.time_offsets.is_empty() {
            let data: String = config
                .time_offsets
                .iter()
                .map(|(clock, s, ns)| format!("{clock} {s} {ns}\n"))
                .collect();
            std::fs::write("/proc/self/timens_offsets", &data)
                .map_err(|e| Error::io(format!("write time offsets {:?}", data.trim()), e))?;
        }
    }
    let mut flags = UnshareFlags::empty();
    for ns in &config.namespaces {
        if ns.path.is_none() && ns.kind != NS::User && ns.kind != NS::Time {
            flags |= ns_link_type(ns.kind).1;
        }
    }
    if !flags.is_empty() {
        berth_sys::process::unshare(flags.bits() as i32)
            .map_err(|e| Error::io(format!("unshare namespaces {flags:?}"), e))?;
    }
    Ok(())
}

/// Resolve the bundle the way runc does: relative to the caller's cwd.
pub fn absolute_bundle(b: &Path) -> Result<PathBuf> {
    let p = if b.is_absolute() {
        b.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::io("get cwd".into(), e))?
            .join(b)
    };
    std::fs::canonicalize(&p).map_err(|e| Error::io(format!("bundle {}", p.display()), e))
}

/// linux.resources with runc's implicit device rules appended (mknod of
/// anything, the standard nodes, ptys), as runc does. Nodes listed in
/// linux.devices are created but get no rule of their own: the resources'
/// allow list decides, as with runc.
fn effective_resources(config: &Config) -> Option<berth_oci::LinuxResources> {
    use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
    let mut res = config.resources.clone()?;
    if let Some(spec_rules) = res.devices().clone() {
        let mut rules = spec_rules;
        let rule = |t: LinuxDeviceType, major: Option<i64>, minor: Option<i64>, access: &str| {
            let mut r = LinuxDeviceCgroup::default();
            r.set_allow(true);
            r.set_typ(Some(t));
            r.set_major(major);
            r.set_minor(minor);
            r.set_access(Some(access.to_string()));
            r
        };
        for (_, d) in berth_cgroups::devices::runc_default_rules() {
            let v1 = d.to_v1();
            let mut it = v1.split_whitespace();
            let (t, mm, acc) = (it.next(), it.next(), it.next());
            let (Some(t), Some(mm), Some(acc)) = (t, mm, acc) else {
                continue;
            };
            let (maj, min) = mm.split_once(':').unwrap_or(("*", "*"));
            let num = |x: &str| x.parse::<i64>().ok();
            let t = if t == "b" {
                LinuxDeviceType::B
            } else {
                LinuxDeviceType::C
            };
            rules.push(rule(t, num(maj), num(min), acc));
        }
        res.set_devices(Some(rules));
    }
    Some(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_join_takes_each_v1_directory_once_and_not_the_unified_one() {
        let p = |s: &str| PathBuf::from(s);
        let paths: BTreeMap<String, PathBuf> = [
            ("cpu", "/sys/fs/cgroup/cpu,cpuacct/x"),
            ("cpuacct", "/sys/fs/cgroup/cpu,cpuacct/x"),
            ("memory", "/sys/fs/cgroup/memory/x"),
            ("", "/sys/fs/cgroup/unified/x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), p(v)))
        .collect();
        assert_eq!(
            v1_dirs(paths.clone(), Some(Path::new("/sys/fs/cgroup/unified/x"))),
            vec![
                p("/sys/fs/cgroup/cpu,cpuacct/x"),
                p("/sys/fs/cgroup/memory/x")
            ]
        );
        // Pure v2: nothing to join itself (CLONE_INTO_CGROUP or P's write).
        let v2: BTreeMap<String, PathBuf> = [(String::new(), p("/sys/fs/cgroup/x"))].into();
        assert!(v1_dirs(v2, Some(Path::new("/sys/fs/cgroup/x"))).is_empty());
    }

    #[test]
    fn join_self_writes_zero_and_says_what_failed() {
        let (r, w) = rustix::pipe::pipe().unwrap();
        join_self(vec![w]).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(rustix::io::read(&r, &mut buf).unwrap(), 1);
        assert_eq!(buf[0], b'0');
        // The read end takes no write.
        let e = join_self(vec![r]).unwrap_err().to_string();
        assert!(e.contains("join the container's cgroup"), "{e}");
    }
}
