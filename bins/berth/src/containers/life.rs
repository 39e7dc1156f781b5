//! run, create, start, stop, restart, kill, rm, wait, rename, attach, container prune.

use super::{engine_err, report, report_run, Eng};
use crate::Globals;
use anyhow::{anyhow, bail, Result};
use berth_engine::create;
use berth_engine::flags::RunFlags;
use berth_engine::options::CreateOptions;
use berth_engine::record::ContainerConfig;
use berth_engine::run::{self, PullPolicy};
use berth_engine::{lookup, parse, status, Error as EngErr};

#[derive(clap::Args)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short, long, num_args = 0..=1, require_equals = true, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub detach: bool,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short, long)]
    pub attach: Vec<String>,
    /// Proxy received signals to the process
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container (default ctrl-p,ctrl-q)
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
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
    /// Override the key sequence for detaching a container (default ctrl-p,ctrl-q)
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(clap::Args)]
pub struct UpdateArgs {
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    pub restart: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

impl UpdateArgs {
    /// The flags as the engine's update (sizes and policies parsed once).
    fn options(&self) -> Result<berth_engine::control::UpdateOptions> {
        use berth_engine::parse;
        let size = |v: &Option<String>| -> Result<Option<i64>> {
            v.as_deref()
                .map(|m| parse::size(m).map(|b| b as i64))
                .transpose()
                .map_err(Into::into)
        };
        // Values are checked by the engine, as create's (engine::spec::linux_resources).
        let memory = size(&self.memory)?;
        if self.cpus.is_some() && (self.cpu_period.is_some() || self.cpu_quota.is_some()) {
            bail!("conflicting options: Nano CPUs and CPU Period/Quota cannot both be set");
        }
        let u = berth_engine::control::UpdateOptions {
            memory,
            memory_swap: self
                .memory_swap
                .as_deref()
                .map(parse::memory_swap)
                .transpose()?,
            memory_reservation: size(&self.memory_reservation)?,
            nano_cpus: self.cpus.as_deref().map(parse::nano_cpus).transpose()?,
            cpu_shares: self.cpu_shares,
            cpu_period: self.cpu_period,
            cpu_quota: self.cpu_quota,
            cpuset_cpus: self.cpuset_cpus.clone(),
            pids_limit: self.pids_limit,
            blkio_weight: self.blkio_weight,
            restart: self.restart.as_deref().map(parse::restart).transpose()?,
        };
        u.check()?;
        if u.is_empty() {
            bail!("you must provide one or more flags when using this command");
        }
        Ok(u)
    }
}

/// docker's `update`: each container's name as given, or its error (exit 1).
pub fn update(e: &Eng, a: UpdateArgs) -> i32 {
    let u = match a.options() {
        Ok(u) => u,
        Err(x) => return report(Err(x)),
    };
    let mut code = 0;
    for r in &a.containers {
        let res = resolve(e, r).and_then(|id| {
            berth_engine::control::update(&e.layout, &id, &u).map_err(|x| engine_err(e, x))
        });
        match res {
            Ok(warnings) => {
                for w in warnings {
                    eprintln!("{w}");
                }
                println!("{r}");
            }
            Err(x) => {
                crate::print_error(&x);
                code = 1;
            }
        }
    }
    code
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
    /// Override the key sequence for detaching a container (default ctrl-p,ctrl-q)
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    pub container: String,
}

#[derive(clap::Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation (prune never prompts)
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. 'until=<timestamp>', 'label=k=v')
    #[arg(long = "filter")]
    pub filter: Vec<String>,
}

fn resolve(e: &Eng, r: &str) -> Result<String> {
    lookup::resolve(&e.layout, r).map_err(|x| engine_err(e, x))
}

/// The CLI's side of a run: pulls with progress on stderr (stdout is the container's),
/// docker's messages on stderr.
struct Cli<'a>(&'a Globals);

impl berth_engine::run::Frontend for Cli<'_> {
    fn pull(&mut self, image: &str, platform: Option<&str>) -> berth_engine::Result<()> {
        crate::pull_image_for(self.0, image, platform, false)
            .map_err(|e| EngErr::Invalid(crate::chain(&e)))
    }
    fn say(&mut self, line: &str) {
        eprintln!("{line}")
    }
}

/// Creates, pulling the image as `--pull` says (berth_engine::run::create).
fn create_pulling(
    g: &Globals,
    e: &Eng,
    opts: berth_engine::options::CreateOptions,
    keep_mounted: bool,
    pull: PullPolicy,
) -> Result<ContainerConfig> {
    run::create(&e.layout, &e.store, opts, keep_mounted, pull, &mut Cli(g))
        .map_err(|x| engine_err(e, x))
}

/// docker's --cidfile: refused when the file exists; made before the container, its ID
/// written once created, removed if the creation fails.
struct CidFile(Option<std::path::PathBuf>);

impl CidFile {
    fn new(path: Option<&str>) -> Result<CidFile> {
        let Some(p) = path else {
            return Ok(CidFile(None));
        };
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(p)
        {
            Ok(_) => Ok(CidFile(Some(p.into()))),
            Err(x) if x.kind() == std::io::ErrorKind::AlreadyExists => bail!(
                "container ID file found, make sure the other container isn't running or delete {p}"
            ),
            Err(x) => bail!("failed to create the container ID file {p}: {x}"),
        }
    }

    /// Writes the ID; on `Err` removes the file and passes the error on.
    fn finish(self, r: Result<ContainerConfig>) -> Result<ContainerConfig> {
        let Some(p) = self.0 else { return r };
        let written = r.as_ref().map(|c| std::fs::write(&p, &c.id));
        match written {
            Ok(Ok(())) => r,
            Ok(Err(x)) => {
                let _ = std::fs::remove_file(&p);
                Err(anyhow!(
                    "failed to write the container ID to {}: {x}",
                    p.display()
                ))
            }
            Err(_) => {
                let _ = std::fs::remove_file(&p);
                r
            }
        }
    }
}

pub fn create(g: &Globals, e: &Eng, a: CreateArgs) -> Result<()> {
    let pull = a.flags.pull_policy()?;
    let cid = CidFile::new(a.flags.cidfile.as_deref())?;
    let r = a
        .flags
        .resolve(a.image, a.cmd)
        .map_err(anyhow::Error::from)
        .and_then(|opts| create_pulling(g, e, opts, false, pull));
    let c = cid.finish(r)?;
    println!("{}", c.id);
    Ok(())
}

/// A start failure: the message, and docker's exit code for it.
fn start_error(e: &Eng, x: EngErr) -> (anyhow::Error, i32) {
    let f = run::StartFailure::new(x);
    let m = match f.error {
        EngErr::Protocol(m) => anyhow!(m),
        x => engine_err(e, x),
    };
    (m, f.code)
}

pub fn run(g: &Globals, e: &Eng, a: RunArgs) -> i32 {
    for s in &a.attach {
        if !["stdin", "stdout", "stderr"].contains(&s.to_ascii_lowercase().as_str()) {
            return report_run(Err(anyhow!(
                "invalid argument \"{s}\" for \"-a, --attach\": valid streams are STDIN, STDOUT and STDERR"
            )));
        }
    }
    if a.detach && !a.attach.is_empty() {
        return report_run(Err(anyhow!(
            "conflicting options: cannot specify both --attach and --detach"
        )));
    }
    let (pull, keys) = match (
        a.flags.pull_policy(),
        a.detach_keys.as_deref().map(parse::detach_keys).transpose(),
    ) {
        (Ok(p), Ok(k)) => (p, k),
        (Err(x), _) => return report_run(Err(x.into())),
        (_, Err(x)) => return report_run(Err(x.into())),
    };
    let cid = match CidFile::new(a.flags.cidfile.as_deref()) {
        Ok(c) => c,
        Err(x) => return report_run(Err(x)),
    };
    let opts = match a.flags.resolve(a.image, a.cmd) {
        Ok(o) => o,
        Err(x) => {
            let _ = cid.finish(Err(anyhow!("")));
            return report_run(Err(x.into()));
        }
    };
    let run = RunHow {
        detach: a.detach,
        attach: &a.attach,
        sig_proxy: a.sig_proxy,
        pull,
        cidfile: cid,
        detach_keys: keys,
    };
    run_with(g, e, opts, run)
}

/// How `run` runs what it created.
pub struct RunHow<'a> {
    pub detach: bool,
    pub attach: &'a [String],
    pub sig_proxy: bool,
    pub pull: PullPolicy,
    cidfile: CidFile,
    /// --detach-keys (None: docker's ctrl-p,ctrl-q)
    pub detach_keys: Option<Vec<u8>>,
}

/// `run` of resolved options (also `compose run`).
pub fn run_resolved(
    g: &Globals,
    e: &Eng,
    opts: CreateOptions,
    detach: bool,
    attach: &[String],
    sig_proxy: bool,
) -> i32 {
    let how = RunHow {
        detach,
        attach,
        sig_proxy,
        pull: PullPolicy::Missing,
        cidfile: CidFile(None),
        detach_keys: None,
    };
    run_with(g, e, opts, how)
}

fn run_with(g: &Globals, e: &Eng, opts: CreateOptions, how: RunHow<'_>) -> i32 {
    let RunHow {
        detach,
        attach,
        sig_proxy,
        pull,
        cidfile,
        detach_keys,
    } = how;
    let c = match cidfile.finish(create_pulling(g, e, opts, true, pull)) {
        Ok(c) => c,
        Err(x) => return report_run(Err(x)),
    };
    // A lost attach is tidied as a failed start: a running container is left alone.
    let fail = |f: run::StartFailure| -> i32 {
        let (m, code) = start_error(e, f.error);
        crate::print_error(&m);
        code
    };
    if detach {
        return match run::start(&e.layout, &e.store, &c, false) {
            Ok(_) => {
                println!("{}", c.id);
                0
            }
            Err(x) => fail(x),
        };
    }
    if let Err(f) = run::start(&e.layout, &e.store, &c, true) {
        return fail(f);
    }
    let streams = |n: &str| attach.is_empty() || attach.iter().any(|s| s.eq_ignore_ascii_case(n));
    let stdin = c.options.open_stdin && (attach.is_empty() || streams("stdin"));
    let opts = super::attach::Opts {
        stdin,
        stdout: streams("stdout"),
        stderr: streams("stderr"),
        tty: c.options.tty,
        sig_proxy,
        detach_keys: detach_keys.unwrap_or_else(|| parse::DEFAULT_DETACH_KEYS.to_vec()),
    };
    let r = match super::attach::attach(&e.layout, &c.id, &opts) {
        Ok(code) => code,
        Err(x) => {
            run::tidy_after_failure(&e.layout, &e.store, &c, &x);
            fail(run::StartFailure::new(x))
        }
    };
    berth_sys::timing::mark("attach: the container ran, exit");
    r
}

pub fn start(e: &Eng, a: StartArgs) -> i32 {
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            return report(Err(anyhow!(
                "you cannot start and attach multiple containers at once"
            )));
        }
        let keys = match a.detach_keys.as_deref().map(parse::detach_keys).transpose() {
            Ok(k) => k.unwrap_or_else(|| parse::DEFAULT_DETACH_KEYS.to_vec()),
            Err(x) => return report(Err(x.into())),
        };
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
            detach_keys: keys,
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
                code = 1;
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

fn settle(e: &Eng, id: &str) {
    berth_engine::control::settle(&e.layout, id)
}

/// Stops container `id`: its stop signal, `timeout` seconds, then SIGKILL.
pub fn stop_one(e: &Eng, id: &str, signal: Option<i32>, timeout: Option<i64>) -> Result<()> {
    berth_engine::control::stop(&e.layout, &e.store, id, signal, timeout)
        .map_err(|x| engine_err(e, x))
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
                code = 1;
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
            berth_engine::control::kill(&e.layout, &e.store, &id, r, sig)
                .map_err(|x| engine_err(e, x))
        });
        match res {
            Ok(()) => println!("{r}"),
            Err(x) => {
                crate::print_error(&x);
                code = 1;
            }
        }
    }
    code
}

/// Removes one container (killing it first with `force`).
fn rm_one(e: &Eng, r: &str, force: bool, volumes: bool) -> Result<()> {
    let id = resolve(e, r)?;
    berth_engine::control::remove(&e.layout, &e.store, &id, r, force, volumes)
        .map_err(|x| engine_err(e, x))
}

pub fn rm(e: &Eng, a: RmArgs) -> i32 {
    let mut code = 0;
    for r in &a.containers {
        match rm_one(e, r, a.force, a.volumes) {
            Ok(()) => println!("{r}"),
            Err(x) => {
                crate::print_error(&x);
                code = 1;
            }
        }
    }
    code
}

fn wait_one(e: &Eng, id: &str) -> Result<i32> {
    berth_engine::control::wait(&e.layout, id).map_err(|x| engine_err(e, x))
}

/// `pause` / `unpause`: each container's name as given, or its error (exit 1).
pub fn pause(e: &Eng, a: RefsArgs, on: bool) -> i32 {
    let mut code = 0;
    for r in &a.containers {
        let res = resolve(e, r).and_then(|id| {
            berth_engine::control::pause(&e.layout, &id, on).map_err(|x| engine_err(e, x))
        });
        match res {
            Ok(()) => println!("{r}"),
            Err(x) => {
                crate::print_error(&x);
                code = 1;
            }
        }
    }
    code
}

pub fn wait(e: &Eng, a: RefsArgs) -> i32 {
    let mut code = 0;
    for r in &a.containers {
        match resolve(e, r).and_then(|id| wait_one(e, &id)) {
            Ok(c) => println!("{c}"),
            Err(x) => {
                crate::print_error(&x);
                code = 1;
            }
        }
    }
    code
}

pub fn rename(e: &Eng, a: RenameArgs) -> Result<()> {
    let id = resolve(e, &a.container)?;
    berth_engine::control::rename(&e.layout, &id, &a.new_name).map_err(|x| engine_err(e, x))
}

pub fn prune(e: &Eng, a: PruneArgs) -> Result<()> {
    let _ = a.force;
    let p = berth_engine::control::prune(&e.layout, &e.store, &a.filter)?;
    for (id, x) in p.failed {
        crate::print_error(&anyhow!(x).context(format!("remove {id}")));
    }
    if !p.deleted.is_empty() {
        println!("Deleted Containers:");
        for d in &p.deleted {
            println!("{d}");
        }
        println!();
    }
    println!("Total reclaimed space: {}", crate::human(p.space));
    Ok(())
}

pub fn attach_cmd(e: &Eng, a: AttachArgs) -> i32 {
    let keys = match a.detach_keys.as_deref().map(parse::detach_keys).transpose() {
        Ok(k) => k.unwrap_or_else(|| parse::DEFAULT_DETACH_KEYS.to_vec()),
        Err(x) => return report(Err(x.into())),
    };
    let res = resolve(e, &a.container).and_then(|id| {
        let c = e.layout.load_config(&id)?;
        settle(e, &id);
        let s = status::current(&e.layout, &id)?;
        if !status::is_running(&s) {
            bail!("You cannot attach to a stopped container, start it first");
        }
        if !status::monitor_alive(&s) {
            // Not stopped: its monitor (and keeper) were killed, so nobody holds its
            // output any more.
            bail!(
                "container {id} is running, but its monitor is gone: its output is no longer \
                 collected and it cannot be attached; stop or restart it"
            );
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
        detach_keys: keys,
    };
    match super::attach::attach(&e.layout, &id, &opts) {
        Ok(code) => code,
        // attach's own failure: the CLI's 1 (docker's), whatever the engine said.
        Err(x) => report(Err(start_error(e, x).0)),
    }
}
