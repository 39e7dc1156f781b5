//! berth-runtime: an OCI runtime with runc's command line.
//!
//! Raw flags are parsed by clap (`args`; the plain forms of the lifecycle
//! commands without it, to the same result), resolved once into ready options,
//! and each command runs against the runtime library. Errors go to stderr
//! and, with `--log`, to the log file in runc's text or JSON shape, which is
//! what containerd reads back.

mod args;
mod cgroup_cmds;
mod criu_cmds;
mod log;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use berth_runtime_core::container::{self, Container};
use berth_runtime_core::spawn::{self, CreateOpts};
use berth_runtime_core::state::{Root, Status};
use berth_runtime_core::{error_chain, timing, Error as RtError};

use args::{Command, Global};

// musl's malloc maps and unmaps a page for most small allocations; a run made 55 such
// calls. The runtime allocates little and exits: a bump arena first (crates/sys/arena.rs).
#[global_allocator]
static ALLOC: berth_sys::arena::Arena<{ 256 * 1024 }> = berth_sys::arena::Arena::new();

/// println! that does not panic when the reader went away (`state | head`):
/// the runtime keeps SIGPIPE ignored, since hooks may not read their stdin.
macro_rules! outln {
    ($($a:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($a)*);
    }};
}

fn main() {
    // When the command began: the first image's start, carried over the
    // re-exec below (for --debug's phase timings).
    let t_main = timing::now_ns();
    let t0 = match std::env::var(timing::START_ENV) {
        Ok(v) => {
            std::env::remove_var(timing::START_ENV);
            v.parse().unwrap_or(t_main)
        }
        Err(_) => t_main,
    };
    // Errors are printed as a chain of messages, never with a backtrace: with
    // RUST_BACKTRACE set, anyhow would capture one per error (a sort of every
    // unwind table of the binary, about 1 ms).
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    // Re-exec from the sealed copy before any parsing, so that the first
    // image does nothing the second one repeats.
    if let Some(root) = early_seal_root() {
        std::env::set_var(timing::START_ENV, t0.to_string());
        let _ = berth_runtime_core::selfexe::ensure_sealed(&root);
        std::env::remove_var(timing::START_ENV);
    }
    let (global, cmd) = args::parse();
    if global.debug {
        timing::enable(t0);
        if t_main > t0 {
            timing::mark_at("re-exec from the sealed copy", t_main);
        }
        timing::mark("argument parsing");
    }
    let what = cmd.name();
    // The caller's fds beyond stdio and --preserve-fds must not reach the container:
    // closed before anything of ours is opened (a created init holds what it inherited
    // until its exec; close-on-exec alone would leave them there till start), as runc.
    let preserve = match &cmd {
        Command::Create(c) | Command::Run(c, ..) => Some(c.preserve_fds),
        Command::Exec(a) => Some(a.preserve_fds),
        _ => None,
    };
    if let Some(n) = preserve {
        let _ = berth_sys::process::close_from(3 + n as i32);
    }
    let logger = log::Logger::new(&global);
    if timing::enabled() {
        // Each step as a debug line as it happens, stamped with the wall
        // time of its monotonic mark (runc logs its steps likewise).
        // One offset between the clocks, so that the stamps keep the marks' order.
        let l = logger.clone();
        let (wall0, mono0) = (std::time::SystemTime::now(), timing::now_ns());
        timing::set_sink(Box::new(move |step, t_ns| {
            let t = if t_ns >= mono0 {
                wall0 + std::time::Duration::from_nanos(t_ns - mono0)
            } else {
                wall0 - std::time::Duration::from_nanos(mono0 - t_ns)
            };
            l.debug_at(&format!("{what}: {step}"), t);
        }));
    }
    let code = match run(&global, cmd, &logger) {
        Ok(code) => code,
        // runc: a failing exec exits 255 ("exec failed: ..."), a status
        // containerd and podman tell from the process's own.
        Err(e) if what == "exec" => {
            logger.error(&format!("exec failed: {}", chain(&e)));
            255
        }
        Err(e) => {
            let msg = chain(&e);
            logger.error(&msg);
            1
        }
    };
    if timing::enabled() {
        logger.debug(&format!(
            "{what} phases: {}",
            timing::format(&timing::take())
        ));
    }
    std::process::exit(code);
}

/// The state root of a command that makes setup processes (create, run,
/// exec), read from argv without the full parser. None when in doubt: then
/// `hygiene` seals after parsing.
fn early_seal_root() -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let mut root = PathBuf::from(args::DEFAULT_ROOT);
    let mut it = std::env::args_os().skip(1);
    while let Some(a) = it.next() {
        let b = a.as_bytes();
        match b {
            b"--root" => root = it.next()?.into(),
            b"--log" | b"--log-format" | b"--criu" | b"--rootless" => {
                it.next()?;
            }
            b"--debug" | b"--systemd-cgroup" => {}
            // A global --root after the command would change the root.
            b"create" | b"run" | b"exec" => {
                return it
                    .all(|x| !x.as_bytes().starts_with(b"--root"))
                    .then_some(root)
            }
            _ => {
                if let Some(v) = b.strip_prefix(b"--root=") {
                    root = std::ffi::OsStr::from_bytes(v).into();
                } else if ![&b"--log="[..], b"--log-format=", b"--criu=", b"--rootless="]
                    .iter()
                    .any(|p| b.starts_with(p))
                {
                    return None;
                }
            }
        }
    }
    None
}

/// One line: the error and each cause, without repeating a cause that the
/// message above already ends with.
fn chain(e: &anyhow::Error) -> String {
    error_chain(e.as_ref())
}

fn run(g: &Global, cmd: Command, logger: &log::Logger) -> Result<i32> {
    let root = Root::new(g.root.clone());
    match cmd {
        Command::Create(c) => {
            hygiene(&root, c.preserve_fds);
            let opts = c.to_opts(g)?;
            let created = spawn::create(&root, &opts, None)?;
            logger.debug(&format!(
                "created container {} with init pid {} (runs from a sealed memfd: {})",
                opts.id,
                created.state.pid,
                berth_runtime_core::selfexe::is_sealed()
            ));
            for w in &created.config.warnings {
                logger.warn(w);
            }
            if let Some(sock) = &c.pidfd_socket {
                send_pidfd(sock, created.state.pid)?;
            }
            Ok(0)
        }
        Command::Run(c, detach, keep) => {
            hygiene(&root, c.preserve_fds);
            let mut opts = c.to_opts(g)?;
            opts.run = true;
            let (cfg, raw) = berth_oci::load_with_bytes(&opts.bundle)?;
            timing::mark("config load and validation");
            let mut pty_end = None;
            let mut console = None;
            if cfg.process.terminal && opts.console_socket.is_none() {
                if detach {
                    anyhow::bail!("cannot allocate tty if berth-runtime will detach without setting console socket");
                }
                let (a, b) = rustix::net::socketpair(
                    rustix::net::AddressFamily::UNIX,
                    rustix::net::SocketType::STREAM,
                    rustix::net::SocketFlags::CLOEXEC,
                    None,
                )
                .context("make the console socket pair")?;
                pty_end = Some(a);
                console = Some(b);
            }
            let created = spawn::create_loaded(&root, &opts, console, cfg, &raw)?;
            for w in &created.config.warnings {
                logger.warn(w);
            }
            if let Some(sock) = &c.pidfd_socket {
                send_pidfd(sock, created.state.pid)?;
            }
            if detach {
                let mut ctr = Container {
                    dir: created.dir,
                    state: created.state,
                };
                let warnings = match &created.release {
                    Some(sync) => ctr.start_run(sync)?,
                    None => ctr.start()?,
                };
                for w in warnings {
                    logger.warn(&w);
                }
                return Ok(0);
            }
            let pty = match pty_end {
                Some(s) => Some(
                    berth_runtime_core::tty::recv_fd(rustix::fd::AsFd::as_fd(&s))
                        .context("receive the pty")?,
                ),
                None => None,
            };
            let (code, warnings) = container::run_foreground(created, pty, keep)?;
            for w in warnings {
                logger.warn(&w);
            }
            Ok(code)
        }
        Command::Start { id } => {
            let mut c = Container::open(&root, &id)?;
            timing::mark("open state");
            logger.debug(&format!(
                "starting container {id} (init pid {})",
                c.state.pid
            ));
            for w in c.start()? {
                logger.warn(&w);
            }
            Ok(0)
        }
        Command::State { id } => {
            let c = open_ro(&root, &id)?;
            let v = c.runc_state();
            outln!("{}", serde_json::to_string_pretty(&v)?);
            Ok(0)
        }
        Command::Kill { id, signal, all } => {
            // 0 is the liveness check (runc sends it as given).
            let sig = match signal.as_str() {
                "0" => 0,
                s => berth_oci::signal::parse(s)
                    .with_context(|| format!("unknown signal {signal:?}"))?,
            };
            let c = open_ro(&root, &id)?;
            c.kill(sig, all)?;
            Ok(0)
        }
        Command::Delete { id, force } => {
            let c = match Container::open(&root, &id) {
                Ok(c) => {
                    timing::mark("open state");
                    Ok(c)
                }
                e => e,
            };
            let c = match c {
                Ok(c) => c,
                Err(RtError::NotExist(_)) if force => return Ok(0),
                Err(RtError::NoState(_) | RtError::CorruptState { .. }) if force => {
                    container::force_remove_broken(&root, &id)?;
                    return Ok(0);
                }
                Err(e) => return Err(e.into()),
            };
            for w in c.delete(force)? {
                logger.warn(&w);
            }
            Ok(0)
        }
        Command::Pause { id } => {
            let c = open_ro(&root, &id)?;
            match c.status() {
                Status::Running => {}
                // runc 1.1's wording, which scripts match on.
                Status::Paused => return Err(RtError::NotRunning.into()),
                _ => return Err(RtError::NotRunning.into()),
            }
            let cg = container::cgroup_of(&c.state).context("container has no cgroup")?;
            cg.freeze()?;
            Ok(0)
        }
        Command::Resume { id } => {
            let c = open_ro(&root, &id)?;
            if c.status() != Status::Paused {
                anyhow::bail!("container not paused");
            }
            let cg = container::cgroup_of(&c.state).context("container has no cgroup")?;
            cg.thaw()?;
            Ok(0)
        }
        Command::List { format, quiet } => {
            list(&root, &format, quiet)?;
            Ok(0)
        }
        Command::Ps {
            id,
            format,
            ps_args,
        } => {
            ps(&root, &id, &format, &ps_args)?;
            Ok(0)
        }
        Command::Spec {
            bundle,
            rootless,
            hardened,
        } => {
            let path = bundle.join("config.json");
            if path.exists() {
                anyhow::bail!("file {} exists; remove it first", path.display());
            }
            let mut v = berth_oci::spec::default_spec(
                rootless,
                rustix::process::getuid().as_raw(),
                rustix::process::getgid().as_raw(),
                matches!(
                    berth_cgroups::probe(),
                    Ok(berth_cgroups::Hierarchy::V2 { .. })
                ),
            );
            if hardened {
                // moby's default seccomp profile, with the rules its capabilities allow.
                let caps: Vec<String> = v["process"]["capabilities"]["bounding"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|c| c.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                v["linux"]["seccomp"] =
                    serde_json::to_value(berth_seccomp::default_profile(&caps))?;
            } else {
                // runc's config as `runc spec` writes it: the three capabilities
                // in the ambient set too, and no seccomp profile.
                let caps = v["process"]["capabilities"]["bounding"].clone();
                v["process"]["capabilities"]["ambient"] = caps;
            }
            std::fs::write(&path, serde_json::to_string_pretty(&v)? + "\n")
                .with_context(|| format!("write {}", path.display()))?;
            Ok(0)
        }
        Command::Exec(e) => exec(&root, &e, logger),
        Command::Checkpoint(a) => {
            criu_cmds::checkpoint(&root, g, &a)?;
            Ok(0)
        }
        Command::Restore(a) => criu_cmds::restore(&root, g, &a),
        Command::Update(u) => {
            cgroup_cmds::update(&root, &u)?;
            Ok(0)
        }
        Command::Events {
            id,
            stats,
            interval,
        } => {
            cgroup_cmds::events(&root, &id, stats, interval)?;
            Ok(0)
        }
        Command::Features => {
            outln!(
                "{}",
                serde_json::to_string_pretty(&berth_runtime_core::features::features())?
            );
            Ok(0)
        }
    }
}

/// Every inherited fd above stdio (and the preserved ones) is closed on
/// exec, so nothing of the caller leaks into the container.
fn hygiene(root: &Root, preserve: u32) {
    // Setup processes will exist inside the container: run them from a
    // sealed copy of this binary (CVE-2019-5736).
    if let Err(e) = berth_runtime_core::selfexe::ensure_sealed(&root.path) {
        eprintln!("warning: {}", error_chain(&e));
    }
    let _ = berth_sys::process::cloexec_from(3 + preserve as i32);
    let _ = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    timing::mark("fd hygiene, not dumpable");
}

fn open_ro(root: &Root, id: &str) -> Result<Container, RtError> {
    // Readers do not take the lock: state.json is replaced atomically.
    Container::open_unlocked(root, id)
}

fn send_pidfd(sock: &Path, pid: i32) -> Result<()> {
    let s = berth_runtime_core::tty::connect_console_socket(sock)?;
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(pid).context("bad pid")?,
        rustix::process::PidfdFlags::empty(),
    )
    .context("open a pidfd for init")?;
    berth_runtime_core::tty::send_fd(
        rustix::fd::AsFd::as_fd(&s),
        rustix::fd::AsFd::as_fd(&pidfd),
        b"pidfd",
    )
    .with_context(|| format!("send the pidfd to {}", sock.display()))?;
    Ok(())
}

fn list(root: &Root, format: &str, quiet: bool) -> Result<()> {
    let mut rows = Vec::new();
    for id in root.list()? {
        let Ok(dir) = root.open_unlocked(&id) else {
            continue;
        };
        // Corrupt or half-made entries are skipped, not fatal (REL-05).
        let Ok(st) = dir.load() else { continue };
        let status = container::status_of(&dir, &st);
        rows.push((st, status));
    }
    let mut out = std::io::stdout().lock();
    if quiet {
        for (st, _) in &rows {
            writeln!(out, "{}", st.id)?;
        }
        return Ok(());
    }
    match format {
        "json" => {
            let v: Vec<serde_json::Value> = rows
                .iter()
                .map(|(st, s)| container::runc_state(st, *s))
                .collect();
            writeln!(out, "{}", serde_json::to_string(&v)?)?;
        }
        "table" => {
            let mut table = vec![vec![
                "ID".to_string(),
                "PID".into(),
                "STATUS".into(),
                "BUNDLE".into(),
                "CREATED".into(),
                "OWNER".into(),
            ]];
            for (st, s) in &rows {
                let pid = if *s == Status::Stopped { 0 } else { st.pid };
                table.push(vec![
                    st.id.clone(),
                    pid.to_string(),
                    s.as_str().into(),
                    st.bundle.display().to_string(),
                    st.created.clone(),
                    owner_name(root, &st.id),
                ]);
            }
            write!(out, "{}", tabwrite(&table))?;
        }
        other => anyhow::bail!("invalid format option {other:?}: use table or json"),
    }
    Ok(())
}

fn owner_name(root: &Root, id: &str) -> String {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata(root.path.join(id))
        .map(|m| m.uid())
        .unwrap_or(0);
    if uid == 0 {
        return "root".into();
    }
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
            })
        })
        .unwrap_or_else(|| format!("#{uid}"))
}

/// Go's tabwriter with runc's settings (minwidth 12, padding 3): every
/// column but the last is padded.
fn tabwrite(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut width = vec![0usize; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count() + 3).max(12);
        }
    }
    let mut s = String::new();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                s.push_str(c);
            } else {
                s.push_str(c);
                s.push_str(&" ".repeat(width[i] - c.chars().count()));
            }
        }
        s.push('\n');
    }
    s
}

fn ps(root: &Root, id: &str, format: &str, ps_args: &[String]) -> Result<()> {
    let c = open_ro(root, id)?;
    let pids = match container::cgroup_of(&c.state) {
        Some(cg) => cg.pids()?,
        None => Vec::new(),
    };
    match format {
        "json" => {
            outln!("{}", serde_json::to_string(&pids)?);
            Ok(())
        }
        "table" => {
            let args: Vec<String> = if ps_args.is_empty() {
                vec!["-ef".into()]
            } else {
                ps_args.to_vec()
            };
            let out = std::process::Command::new("ps")
                .args(&args)
                .output()
                .context("run ps")?;
            if !out.status.success() {
                anyhow::bail!(
                    "ps {} failed: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or_default();
            let pid_col = header
                .split_whitespace()
                .position(|h| h == "PID")
                .context("ps output has no PID column")?;
            let mut o = std::io::stdout().lock();
            writeln!(o, "{header}")?;
            for l in lines {
                let p: Option<i32> = l
                    .split_whitespace()
                    .nth(pid_col)
                    .and_then(|p| p.parse().ok());
                if p.is_some_and(|p| pids.contains(&p)) {
                    writeln!(o, "{l}")?;
                }
            }
            Ok(())
        }
        other => anyhow::bail!("invalid format option {other:?}: use table or json"),
    }
}

impl args::CreateArgs {
    fn to_opts(&self, g: &Global) -> Result<CreateOpts> {
        let bundle = spawn::absolute_bundle(&self.bundle)?;
        Ok(CreateOpts {
            id: self.id.clone(),
            bundle,
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds,
            systemd_cgroup: g.systemd_cgroup,
            run: false,
        })
    }
}

fn exec(root: &Root, a: &args::ExecArgs, logger: &log::Logger) -> Result<i32> {
    use berth_runtime_core::exec as ex;
    hygiene(root, a.preserve_fds);
    if a.process_label.is_some() {
        anyhow::bail!("--process-label is not supported: SELinux is not enabled on this host");
    }
    if a.apparmor.is_some() {
        anyhow::bail!("--apparmor is not supported: AppArmor is not enabled on this host");
    }
    let c = open_ro(root, &a.id)?;
    let cfg = ex::container_config(&c)?;
    timing::mark("open state, config");
    let mut p = match &a.process {
        Some(path) => {
            if !a.command.is_empty() {
                anyhow::bail!("give either --process or a command, not both");
            }
            let data = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
            let mut v: serde_json::Value = serde_json::from_slice(&data)
                .with_context(|| format!("parse process {}", path.display()))?;
            // runc: a process without `user` runs as 0:0.
            if let Some(o) = v.as_object_mut() {
                o.entry("user")
                    .or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
            }
            let doc: berth_oci::oci_spec_process::Process = serde_json::from_value(v)
                .with_context(|| format!("parse process {}", path.display()))?;
            berth_oci::process(&doc)?
        }
        None => {
            if a.command.is_empty() {
                anyhow::bail!("process args cannot be empty");
            }
            let mut p = cfg.process.clone();
            p.args = a.command.clone();
            p.terminal = a.tty;
            p
        }
    };
    if let Some(cwd) = &a.cwd {
        p.cwd = cwd.clone();
    }
    for e in &a.env {
        if !e.contains('=') {
            anyhow::bail!("--env {e:?} is not NAME=VALUE");
        }
        let name = e.split('=').next().unwrap_or_default();
        p.env.retain(|x| x.split('=').next() != Some(name));
        p.env.push(e.clone());
    }
    if let Some(u) = &a.user {
        let (uid, gid) = berth_oci::parse_user(u)?;
        p.uid = uid;
        p.gid = gid;
    }
    for g in &a.additional_gids {
        let n: u32 = g
            .parse()
            .ok()
            .filter(|n| *n != u32::MAX)
            .with_context(|| format!("invalid --additional-gids value {g:?}"))?;
        p.additional_gids.push(n);
    }
    if !a.cap.is_empty() {
        // Added to bounding, effective and permitted; never inheritable
        // (CVE-2022-29162).
        let m = berth_oci::CapSet::names_to_mask(a.cap.iter().map(String::as_str))?;
        p.caps.bounding |= m;
        p.caps.effective |= m;
        p.caps.permitted |= m;
    }
    if a.no_new_privs {
        p.no_new_privileges = true;
    }
    if a.tty {
        p.terminal = true;
    }
    if p.terminal && a.detach && a.console_socket.is_none() {
        anyhow::bail!(
            "cannot allocate tty if berth-runtime will detach without setting console socket"
        );
    }
    if !p.terminal && a.console_socket.is_some() {
        anyhow::bail!("cannot use console socket if berth-runtime will not detach or allocate tty");
    }
    let mut pty_end = None;
    let console = match (&a.console_socket, p.terminal) {
        (Some(s), true) => Some(berth_runtime_core::tty::connect_console_socket(s)?),
        (None, true) => {
            let (x, y) = rustix::net::socketpair(
                rustix::net::AddressFamily::UNIX,
                rustix::net::SocketType::STREAM,
                rustix::net::SocketFlags::CLOEXEC,
                None,
            )
            .context("make the console socket pair")?;
            pty_end = Some(x);
            Some(y)
        }
        _ => None,
    };
    let seccomp = berth_runtime_core::seccomp::prepare(&cfg, &root.path)?;
    timing::mark("process options, seccomp compile");
    let (pid, _) = ex::exec(
        &c,
        cfg,
        ex::ExecOpts {
            process: p,
            seccomp,
            detach: a.detach,
            pid_file: a.pid_file.clone(),
            console,
            preserve_fds: a.preserve_fds,
            cgroup: a.cgroup.clone(),
            ignore_paused: a.ignore_paused,
        },
    )?;
    if let Some(sock) = &a.pidfd_socket {
        send_pidfd(sock, pid)?;
    }
    let _ = logger;
    if a.detach {
        return Ok(0);
    }
    let pty = match pty_end {
        Some(s) => Some(
            berth_runtime_core::tty::recv_fd(rustix::fd::AsFd::as_fd(&s))
                .context("receive the pty")?,
        ),
        None => None,
    };
    let code = ex::wait_foreground(pid, pty)?;
    timing::mark("process ran");
    timing::note(|| format!("process {pid} exited: status {code}"));
    Ok(code)
}
