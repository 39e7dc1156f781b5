//! run, create, start, stop, restart, kill, rm, wait, rename, attach, container prune.

use super::{engine_err, report, Eng};
use crate::run_flags::RunFlags;
use crate::Globals;
use anyhow::{anyhow, bail, Context, Result};
use berth_engine::create::{self, start_failure_code};
use berth_engine::proto::{self, ExitInfo, Request};
use berth_engine::record::{now_rfc3339, ContainerConfig, Status};
use berth_engine::{lookup, status, Error as EngErr};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short, long)]
    pub detach: bool,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short, long)]
    pub attach: Vec<String>,
    /// Proxy received signals to the process
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    #[command(flatten)]
    pub flags: RunFlags,
    /// The image
    pub image: String,
    /// Command and arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub cmd: Vec<String>,
}

#[derive(clap::Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub flags: RunFlags,
    pub image: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub cmd: Vec<String>,
}

#[derive(clap::Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short, long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short, long)]
    pub interactive: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(clap::Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "timeout", visible_alias = "time")]
    pub timeout: Option<i64>,
    /// Signal to send to the container
    #[arg(short, long)]
    pub signal: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(clap::Args)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(clap::Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(clap::Args)]
pub struct RefsArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(clap::Args)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

#[derive(clap::Args)]
pub struct AttachArgs {
    /// Do not attach STDIN
    #[arg(long)]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    pub container: String,
}

#[derive(clap::Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation (prune never prompts)
    #[arg(short, long)]
    pub force: bool,
}

fn resolve(e: &Eng, r: &str) -> Result<String> {
    lookup::resolve(&e.layout, r).map_err(|x| engine_err(e, x))
}

/// Creates, pulling the image first when it is not here (docker's "Unable to find image").
fn create_pulling(
    g: &Globals,
    e: &Eng,
    opts: berth_engine::options::CreateOptions,
    keep_mounted: bool,
) -> Result<ContainerConfig> {
    let create = |o| create::create_container_with(&e.layout, &e.store, o, keep_mounted);
    match create(opts.clone()) {
        Err(EngErr::Image(berth_image::Error::NoSuchImage(_))) => {
            eprintln!("Unable to find image '{}' locally", opts.image);
            crate::pull_image(g, &opts.image, false)?;
            create(opts).map_err(|x| engine_err(e, x))
        }
        r => r.map_err(|x| engine_err(e, x)),
    }
}

pub fn create(g: &Globals, e: &Eng, a: CreateArgs) -> Result<()> {
    let opts = a.flags.resolve(a.image, a.cmd)?;
    let c = create_pulling(g, e, opts, false)?;
    println!("{}", c.id);
    Ok(())
}

/// A start failure: the message, and docker's exit code for it.
fn start_error(e: &Eng, x: EngErr) -> (anyhow::Error, i32) {
    match x {
        EngErr::Protocol(m) => {
            let code = start_failure_code(&m);
            (anyhow!(m), code)
        }
        x => (engine_err(e, x), 125),
    }
}

pub fn run(g: &Globals, e: &Eng, a: RunArgs) -> i32 {
    for s in &a.attach {
        if !["stdin", "stdout", "stderr"].contains(&s.to_ascii_lowercase().as_str()) {
            return report(Err(anyhow!(
                "invalid argument \"{s}\" for \"-a, --attach\": valid streams are STDIN, STDOUT and STDERR"
            )));
        }
    }
    if a.detach && !a.attach.is_empty() {
        return report(Err(anyhow!(
            "conflicting options: cannot specify both --attach and --detach"
        )));
    }
    let opts = match a.flags.resolve(a.image, a.cmd) {
        Ok(o) => o,
        Err(x) => return report(Err(x)),
    };
    let c = match create_pulling(g, e, opts, true) {
        Ok(c) => c,
        Err(x) => return report(Err(x)),
    };
    let fail = |x: EngErr| -> i32 {
        let (m, code) = start_error(e, x);
        crate::print_error(&m);
        // Tidy only what never ran (a lost attach leaves a running container alone); the
        // monitor, if one started, has finished first.
        settle(e, &c.id);
        let s = status::current(&e.layout, &c.id).unwrap_or_default();
        if !status::is_running(&s) && !status::monitor_alive(&s) {
            if c.options.auto_remove {
                if e.layout.config_path(&c.id).exists() {
                    let _ =
                        berth_engine::remove::remove_container(&e.layout, &e.store, &c.id, true);
                }
            } else {
                // create left it mounted for this start.
                let _ = berth_image::overlay::unmount_rootfs(&e.store, &c.id, false);
            }
        }
        code
    };
    if a.detach {
        return match create::start_container(&e.layout, &e.store, &c.id, false) {
            Ok(_) => {
                println!("{}", c.id);
                0
            }
            Err(x) => fail(x),
        };
    }
    if let Err(x) = create::start_container(&e.layout, &e.store, &c.id, true) {
        return fail(x);
    }
    let streams =
        |n: &str| a.attach.is_empty() || a.attach.iter().any(|s| s.eq_ignore_ascii_case(n));
    let stdin = c.options.open_stdin && (a.attach.is_empty() || streams("stdin"));
    let opts = super::attach::Opts {
        stdin,
        stdout: streams("stdout"),
        stderr: streams("stderr"),
        tty: c.options.tty,
        sig_proxy: a.sig_proxy,
    };
    match super::attach::attach(&e.layout, &c.id, &opts) {
        Ok(code) => code,
        Err(x) => fail(x),
    }
}

pub fn start(e: &Eng, a: StartArgs) -> i32 {
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            return report(Err(anyhow!(
                "you cannot start and attach multiple containers at once"
            )));
        }
        let r = &a.containers[0];
        let id = match resolve(e, r) {
            Ok(id) => id,
            Err(x) => return report(Err(x)),
        };
        let c = match e.layout.load_config(&id) {
            Ok(c) => c,
            Err(x) => return report(Err(x.into())),
        };
        let h = match create::start_container(&e.layout, &e.store, &id, true) {
            Ok(h) => h,
            Err(x) => {
                let (m, code) = start_error(e, x);
                crate::print_error(&m);
                return code;
            }
        };
        let _ = h.already_running;
        let opts = super::attach::Opts {
            stdin: a.interactive && c.options.open_stdin,
            stdout: true,
            stderr: true,
            tty: c.options.tty,
            sig_proxy: true,
        };
        return match super::attach::attach(&e.layout, &id, &opts) {
            Ok(code) => code,
            Err(x) => {
                let (m, code) = start_error(e, x);
                crate::print_error(&m);
                code
            }
        };
    }
    let mut code = 0;
    for r in &a.containers {
        let res = resolve(e, r).and_then(|id| {
            create::start_container(&e.layout, &e.store, &id, false)
                .map_err(|x| start_error(e, x).0)
        });
        match res {
            Ok(_) => println!("{r}"),
            Err(x) => {
                crate::print_error(&x);
                code = 125;
            }
        }
    }
    if code != 0 && a.containers.len() > 1 {
        eprintln!(
            "Error: failed to start containers: {}",
            a.containers.join(", ")
        );
    }
    code
}

fn parse_signal(s: &str) -> Result<i32> {
    Ok(berth_engine::parse::signal(s)?)
}

/// Reads frames until EXIT (Some), OK (None) or an ERROR.
fn await_reply(s: &mut std::os::unix::net::UnixStream) -> Result<Option<ExitInfo>> {
    loop {
        match proto::read_frame(s).context("read from the monitor")? {
            None => bail!("the monitor closed the connection"),
            Some((proto::EXIT, p)) => {
                return Ok(Some(serde_json::from_slice(&p).unwrap_or_default()))
            }
            Some((proto::OK, _)) => return Ok(None),
            Some((proto::ERROR, p)) => bail!("{}", String::from_utf8_lossy(&p)),
            Some(_) => {}
        }
    }
}

/// Sends one request to the container's monitor and waits for its reply.
fn ask_monitor(e: &Eng, id: &str, req: &Request) -> Result<Option<ExitInfo>> {
    let mut s = proto::connect(&e.layout.attach_path(id))?;
    proto::send_request(&mut s, req).context("write to the monitor")?;
    await_reply(&mut s)
}

/// Signals the container's init directly (its monitor is gone), through a pidfd opened
/// before checking the start time, so a recycled pid is never signalled.
fn signal_init(pid: i32, start: u64, sig: i32) -> Result<Option<std::os::fd::OwnedFd>> {
    use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal};
    let Some(p) = Pid::from_raw(pid) else {
        return Ok(None);
    };
    let fd = match pidfd_open(p, PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::SRCH) => return Ok(None),
        Err(x) => return Err(anyhow!(std::io::Error::from(x)).context(format!("pidfd_open {pid}"))),
    };
    if !status::process_alive(pid, start) {
        return Ok(None);
    }
    let s = Signal::from_named_raw(sig)
        .ok_or_else(|| anyhow!("signal {sig} cannot be sent directly"))?;
    match pidfd_send_signal(&fd, s) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(Some(fd)),
        Err(x) => Err(anyhow!(std::io::Error::from(x)).context(format!("signal {pid}"))),
    }
}

/// Waits until the pidfd's process exits; false on timeout.
fn wait_pidfd(fd: &std::os::fd::OwnedFd, timeout: Duration) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut fds = [PollFd::new(fd, PollFlags::IN)];
    let ts = Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: timeout.subsec_nanos() as i64,
    };
    matches!(poll(&mut fds, Some(&ts)), Ok(n) if n > 0)
}

/// Records the exit of a container whose monitor is gone, deletes it from the runtime and
/// unmounts its rootfs (what the monitor would have done).
fn tidy_without_monitor(e: &Eng, c: &ContainerConfig, exit_code: i32) -> Result<()> {
    let _ = std::process::Command::new(&c.runtime)
        .arg("--root")
        .arg(&c.runtime_root)
        .args(["delete", "--force", &c.id])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    let _ = berth_image::overlay::unmount_rootfs(&e.store, &c.id, false);
    e.layout.update_state(&c.id, |s| {
        if s.status != Status::Exited || s.finished_at.is_empty() {
            s.status = Status::Exited;
            s.finished_at = now_rfc3339();
            s.exit_code = exit_code;
        }
        s.pid = 0;
        s.pid_start = 0;
        s.monitor_pid = 0;
        s.monitor_start = 0;
        s.stopped_by_user = true;
    })?;
    let mut at = create::attrs(c);
    at.insert("exitCode".into(), exit_code.to_string());
    let _ = berth_engine::events::emit(&e.layout, "container", "die", &c.id, at);
    Ok(())
}

/// Stops a container whose monitor is gone: signal, wait, SIGKILL, then tidy. The exit code
/// cannot be read by a non-parent: it is recorded as 128 + the signal that ended it.
fn stop_direct(
    e: &Eng,
    c: &ContainerConfig,
    s: &berth_engine::record::ContainerState,
    sig: i32,
    timeout: i64,
) -> Result<()> {
    let mut code = 128 + sig;
    if let Some(fd) = signal_init(s.pid, s.pid_start, sig)? {
        let limit = Duration::from_secs(timeout.max(0) as u64);
        if !wait_pidfd(&fd, limit) {
            signal_init(s.pid, s.pid_start, libc::SIGKILL)?;
            wait_pidfd(&fd, Duration::from_secs(10));
            code = 137;
        }
    }
    tidy_without_monitor(e, c, code)?;
    if c.options.auto_remove {
        berth_engine::remove::remove_container(&e.layout, &e.store, &c.id, true)?;
    }
    Ok(())
}

/// Waits (up to 5 s) for a monitor that is finishing after its container exited.
fn settle(e: &Eng, id: &str) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(5) {
        let s = e.layout.load_state(id).unwrap_or_default();
        if !status::monitor_alive(&s) || status::is_running(&s) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Stops container `id`: its stop signal, `timeout` seconds, then SIGKILL.
pub fn stop_one(e: &Eng, id: &str, signal: Option<i32>, timeout: Option<i64>) -> Result<()> {
    let c = e.layout.load_config(id)?;
    let s = status::current(&e.layout, id)?;
    let sig = signal
        .or((c.stop_signal > 0).then_some(c.stop_signal))
        .unwrap_or(libc::SIGTERM);
    let timeout = timeout.or(c.options.stop_timeout).unwrap_or(10);
    if status::monitor_alive(&s) {
        let r = ask_monitor(
            e,
            id,
            &Request::Stop {
                signal: sig,
                timeout_secs: timeout,
            },
        );
        if let Err(x) = r {
            // A monitor that just died or finished refuses the connection: the processes
            // decide what is left to do.
            let now = status::current(&e.layout, id)?;
            if status::monitor_alive(&now) && status::is_running(&now) {
                return Err(x.context(format!("stop container {id}")));
            }
            if status::init_alive(&now) {
                stop_direct(e, &c, &now, sig, timeout)?;
            }
        }
    } else if status::init_alive(&s) {
        stop_direct(e, &c, &s, sig, timeout)?;
    } else {
        return Ok(());
    }
    let _ = berth_engine::events::emit(&e.layout, "container", "stop", id, create::attrs(&c));
    Ok(())
}

pub fn stop(e: &Eng, a: StopArgs, restart: bool) -> i32 {
    let sig = match a.signal.as_deref().map(parse_signal).transpose() {
        Ok(s) => s,
        Err(x) => return report(Err(x)),
    };
    let mut code = 0;
    for r in &a.containers {
        let res = resolve(e, r).and_then(|id| {
            stop_one(e, &id, sig, a.timeout)?;
            if restart {
                create::start_container(&e.layout, &e.store, &id, false)
                    .map_err(|x| start_error(e, x).0)?;
                let c = e.layout.load_config(&id)?;
                let _ = berth_engine::events::emit(
                    &e.layout,
                    "container",
                    "restart",
                    &id,
                    create::attrs(&c),
                );
            }
            Ok(())
        });
        match res {
            Ok(()) => println!("{r}"),
            Err(x) => {
                crate::print_error(&x);
                code = 125;
            }
        }
    }
    code
}

pub fn kill(e: &Eng, a: KillArgs) -> i32 {
    let sig = match parse_signal(&a.signal) {
        Ok(s) => s,
        Err(x) => return report(Err(x)),
    };
    let mut code = 0;
    for r in &a.containers {
        let res = resolve(e, r).and_then(|id| {
            let s = status::current(&e.layout, &id)?;
            if !status::is_running(&s) {
                bail!("cannot kill container: {r}: container {id} is not running");
            }
            if status::monitor_alive(&s) {
                ask_monitor(e, &id, &Request::Kill { signal: sig })?;
            } else if let Some(fd) = signal_init(s.pid, s.pid_start, sig)? {
                // Nobody else will record this exit: do it if it dies of this signal.
                if wait_pidfd(&fd, Duration::from_millis(200)) {
                    let c = e.layout.load_config(&id)?;
                    tidy_without_monitor(e, &c, 128 + sig)?;
                }
            }
            let c = e.layout.load_config(&id)?;
            let mut at = create::attrs(&c);
            at.insert("signal".into(), sig.to_string());
            let _ = berth_engine::events::emit(&e.layout, "container", "kill", &id, at);
            Ok(())
        });
        match res {
            Ok(()) => println!("{r}"),
            Err(x) => {
                crate::print_error(&x);
                code = 125;
            }
        }
    }
    code
}

/// Removes one container (killing it first with `force`).
fn rm_one(e: &Eng, r: &str, force: bool, volumes: bool) -> Result<()> {
    let id = resolve(e, r)?;
    let s = status::current(&e.layout, &id)?;
    if status::is_running(&s) || (status::monitor_alive(&s) && s.status != Status::Exited) {
        if !force {
            bail!(
                "cannot remove container \"{r}\": container is running: stop the container before removing or force remove"
            );
        }
        stop_one(e, &id, Some(libc::SIGKILL), Some(0))?;
    }
    // A monitor may still be finishing (or removing an --rm container itself).
    settle(e, &id);
    if !e.layout.config_path(&id).exists() {
        return Ok(());
    }
    berth_engine::remove::remove_container(&e.layout, &e.store, &id, volumes)?;
    Ok(())
}

pub fn rm(e: &Eng, a: RmArgs) -> i32 {
    let mut code = 0;
    for r in &a.containers {
        match rm_one(e, r, a.force, a.volumes) {
            Ok(()) => println!("{r}"),
            Err(x) => {
                crate::print_error(&x);
                code = 125;
            }
        }
    }
    code
}

/// Waits for container `id` to exit; its exit code.
fn wait_one(e: &Eng, id: &str) -> Result<i32> {
    loop {
        let s = status::current(&e.layout, id)?;
        // docker's default condition, "not-running": a created container returns at once.
        let live = status::is_running(&s) || status::monitor_alive(&s);
        if !live {
            return Ok(s.exit_code);
        }
        if status::monitor_alive(&s) && s.status != Status::Exited {
            if let Ok(Some(x)) = ask_monitor(e, id, &Request::Wait) {
                return Ok(x.exit_code);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
        if !e.layout.config_path(id).exists() {
            bail!("No such container: {id}");
        }
    }
}

pub fn wait(e: &Eng, a: RefsArgs) -> i32 {
    let mut code = 0;
    for r in &a.containers {
        match resolve(e, r).and_then(|id| wait_one(e, &id)) {
            Ok(c) => println!("{c}"),
            Err(x) => {
                crate::print_error(&x);
                code = 125;
            }
        }
    }
    code
}

pub fn rename(e: &Eng, a: RenameArgs) -> Result<()> {
    let id = resolve(e, &a.container)?;
    let new = a
        .new_name
        .strip_prefix('/')
        .unwrap_or(&a.new_name)
        .to_string();
    create::check_name(&new)?;
    let lock = e.layout.lock(&id)?;
    let mut c = e.layout.load_config(&id)?;
    let old = c.name.clone();
    if old == new {
        bail!("Renaming a container with the same name as its current name");
    }
    // New link first, so the container always has a name; then the record; then the old link.
    create::link_name(&e.layout, &new, &id).map_err(|x| engine_err(e, x))?;
    c.name = new.clone();
    c.options.name = Some(new.clone());
    if let Err(x) = e.layout.save_config(&c, &lock) {
        create::unlink_name(&e.layout, &new, &id);
        return Err(x.into());
    }
    create::unlink_name(&e.layout, &old, &id);
    drop(lock);
    let mut at = create::attrs(&c);
    at.insert("oldName".into(), format!("/{old}"));
    let _ = berth_engine::events::emit(&e.layout, "container", "rename", &id, at);
    Ok(())
}

pub fn prune(e: &Eng, a: PruneArgs) -> Result<()> {
    let _ = a.force;
    let mut deleted = Vec::new();
    let mut bytes = 0;
    for id in e.layout.container_ids()? {
        settle(e, &id);
        let s = status::current(&e.layout, &id)?;
        if status::is_running(&s) || status::monitor_alive(&s) {
            continue;
        }
        let upper = e.store.root().join("containers").join(&id).join("upper");
        let size = super::dir_size(&upper);
        match berth_engine::remove::remove_container(&e.layout, &e.store, &id, false) {
            Ok(()) => {
                bytes += size;
                deleted.push(id);
            }
            Err(x) => crate::print_error(&anyhow!(x).context(format!("remove {id}"))),
        }
    }
    if !deleted.is_empty() {
        println!("Deleted Containers:");
        for d in &deleted {
            println!("{d}");
        }
        println!();
    }
    println!("Total reclaimed space: {}", crate::human(bytes));
    Ok(())
}

pub fn attach_cmd(e: &Eng, a: AttachArgs) -> i32 {
    let res = resolve(e, &a.container).and_then(|id| {
        let c = e.layout.load_config(&id)?;
        let s = status::current(&e.layout, &id)?;
        if !status::is_running(&s) || !status::monitor_alive(&s) {
            bail!("You cannot attach to a stopped container, start it first");
        }
        Ok((id, c))
    });
    let (id, c) = match res {
        Ok(x) => x,
        Err(x) => return report(Err(x)),
    };
    let opts = super::attach::Opts {
        stdin: !a.no_stdin && c.options.open_stdin,
        stdout: true,
        stderr: true,
        tty: c.options.tty,
        sig_proxy: a.sig_proxy,
    };
    match super::attach::attach(&e.layout, &id, &opts) {
        Ok(code) => code,
        Err(x) => {
            let (m, code) = start_error(e, x);
            crate::print_error(&m);
            code
        }
    }
}
