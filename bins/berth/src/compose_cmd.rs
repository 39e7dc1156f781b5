//! `berth compose ...`: docker compose's command line over berth_services (the model,
//! the operations and the per-project supervisor). Flags are resolved here; the work is
//! the services crate's and the engine's.

use crate::Globals;
use anyhow::{anyhow, bail, Context, Result};
use berth_engine::layout::Layout;
use berth_image::store::Store;
use berth_services::compose::{self, LoadOptions, Project};
use berth_services::ops::{self, Ctx, UpOptions};
use berth_services::replicas::{self, Member};
use berth_services::state::ProjectDir;
use clap::{Args, Parser, Subcommand};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Subcommand)]
#[command(defer = true)]
pub enum Cmd {
    /// Define and run multi-container applications (docker compose)
    Compose(ComposeArgs),
}

#[derive(Args)]
pub struct ComposeArgs {
    /// Compose configuration files
    #[arg(short = 'f', long = "file")]
    file: Vec<PathBuf>,
    /// Project name
    #[arg(short = 'p', long = "project-name")]
    project_name: Option<String>,
    /// Specify a profile to enable
    #[arg(long)]
    profile: Vec<String>,
    /// Specify an alternate working directory (default: the path of the first compose file)
    #[arg(long)]
    project_directory: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Sub,
}

#[derive(Subcommand)]
#[command(defer = true)]
enum Sub {
    /// Create and start containers
    Up(UpArgs),
    /// Stop and remove containers, networks
    Down(DownArgs),
    /// List containers
    Ps(PsArgs),
    /// View output from containers
    Logs(LogsArgs),
    /// Scale services
    Scale(ScaleArgs),
    /// Start services
    Start(SvcArgs),
    /// Stop services
    Stop(StopArgs),
    /// Restart service containers
    Restart(StopArgs),
    /// Parse, resolve and render compose file in canonical format
    #[command(alias = "convert")]
    Config(ConfigArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Run a one-off command on a service
    Run(RunArgs),
    /// Display the running processes
    Top(SvcArgs),
    /// Receive real time events from containers
    Events(EventsArgs),
    /// Pull service images
    Pull(SvcArgs),
    /// Build or rebuild services
    Build(BuildArgs),
    /// List images used by the created containers
    Images(ImagesArgs),
    /// List running compose projects
    Ls(LsArgs),
    /// Show the Docker Compose version information
    Version,
    /// (internal) the project's supervisor
    #[command(hide = true)]
    Supervise,
}

#[derive(Args)]
struct UpArgs {
    /// Detached mode: run containers in the background
    #[arg(short = 'd', long)]
    detach: bool,
    /// Scale SERVICE to NUM instances (SERVICE=NUM)
    #[arg(long)]
    scale: Vec<String>,
    /// Wait for services to be running|healthy
    #[arg(long)]
    wait: bool,
    /// Maximum duration to wait for the project to be running|healthy (seconds)
    #[arg(long)]
    wait_timeout: Option<u64>,
    /// Remove containers for services not defined in the Compose file
    #[arg(long)]
    remove_orphans: bool,
    /// Recreate containers even if their configuration and image haven't changed
    #[arg(long)]
    force_recreate: bool,
    /// Don't start linked services
    #[arg(long)]
    no_deps: bool,
    /// Build images before starting containers
    #[arg(long, conflicts_with = "no_build")]
    build: bool,
    /// Don't build an image, even if it's missing or its pull_policy is build
    #[arg(long)]
    no_build: bool,
    services: Vec<String>,
}

#[derive(Args)]
struct BuildArgs {
    /// Do not use cache when building the image
    #[arg(long)]
    no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pull: bool,
    /// Set build-time variables for services (KEY=VALUE, or KEY to take it from the
    /// environment)
    #[arg(long = "build-arg")]
    build_arg: Vec<String>,
    /// Don't print anything to STDOUT or STDERR but errors
    #[arg(short = 'q', long)]
    quiet: bool,
    services: Vec<String>,
}

#[derive(Args)]
struct DownArgs {
    /// Remove named volumes declared in the "volumes" section and anonymous volumes
    #[arg(short = 'v', long)]
    volumes: bool,
    /// Remove containers for services not defined in the Compose file (down removes every
    /// container of the project, so this is what it does anyway)
    #[arg(long)]
    remove_orphans: bool,
    /// Specify a shutdown timeout in seconds
    #[arg(short = 't', long)]
    timeout: Option<i64>,
}

#[derive(Args)]
struct PsArgs {
    /// Show all stopped containers
    #[arg(short = 'a', long)]
    all: bool,
    /// Only display IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Display services
    #[arg(long)]
    services: bool,
    /// Format the output: table or json
    #[arg(long, default_value = "table")]
    format: String,
    service: Vec<String>,
}

#[derive(Args)]
struct LogsArgs {
    /// Follow log output
    #[arg(short = 'f', long)]
    follow: bool,
    /// Number of lines to show from the end of the logs for each container
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show timestamps
    #[arg(short = 't', long)]
    timestamps: bool,
    /// Don't print prefix in logs
    #[arg(long)]
    no_log_prefix: bool,
    service: Vec<String>,
}

#[derive(Args)]
struct ScaleArgs {
    /// SERVICE=REPLICAS
    #[arg(required = true)]
    scale: Vec<String>,
}

#[derive(Args)]
struct SvcArgs {
    service: Vec<String>,
}

#[derive(Args)]
struct StopArgs {
    /// Specify a shutdown timeout in seconds
    #[arg(short = 't', long)]
    timeout: Option<i64>,
    service: Vec<String>,
}

#[derive(Args)]
struct ConfigArgs {
    /// Print the service names, one per line
    #[arg(long)]
    services: bool,
    /// Only validate the configuration, don't print anything
    #[arg(short = 'q', long)]
    quiet: bool,
}

#[derive(Args)]
struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long)]
    detach: bool,
    /// Disable pseudo-TTY allocation (default: a TTY when stdin is one)
    #[arg(short = 'T', long = "no-TTY")]
    no_tty: bool,
    /// Index of the container if service has multiple replicas
    #[arg(long, default_value_t = 1)]
    index: u32,
    /// Run the command as this user
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Path to workdir directory for this command
    #[arg(short = 'w', long)]
    workdir: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long)]
    env: Vec<String>,
    /// Give extended privileges to the process
    #[arg(long)]
    privileged: bool,
    service: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Args)]
struct RunArgs {
    /// Automatically remove the container when it exits
    #[arg(long)]
    rm: bool,
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    detach: bool,
    /// Disable pseudo-TTY allocation
    #[arg(short = 'T', long = "no-TTY")]
    no_tty: bool,
    /// Set environment variables
    #[arg(short = 'e', long)]
    env: Vec<String>,
    /// Assign a name to the container
    #[arg(long)]
    name: Option<String>,
    /// Override the entrypoint of the image
    #[arg(long)]
    entrypoint: Option<String>,
    /// Run as specified username or uid
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long)]
    workdir: Option<String>,
    /// Don't start linked services
    #[arg(long)]
    no_deps: bool,
    service: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Args)]
struct EventsArgs {
    /// Output events as a stream of json objects
    #[arg(long)]
    json: bool,
    /// Only the events so far, then exit (Berth's addition, for scripts and tests)
    #[arg(long)]
    no_follow: bool,
    service: Vec<String>,
}

#[derive(Args)]
struct ImagesArgs {
    /// Only display IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    service: Vec<String>,
}

#[derive(Args)]
struct LsArgs {
    /// Show all stopped Compose projects
    #[arg(short = 'a', long)]
    all: bool,
    /// Only display IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Format the output: table or json
    #[arg(long, default_value = "table")]
    format: String,
}

pub(crate) fn progress(what: &str, state: &str) {
    if state == "Warning" {
        eprintln!("WARN[0000] {what}");
    } else {
        eprintln!(" \u{2714} {what:<40} {state}");
    }
}

struct Resolved {
    ctx: Ctx,
    /// The model when a compose file was found (commands that need one fail without).
    project: Result<Project>,
    name: String,
}

fn load_model(a: &ComposeArgs) -> Result<Project> {
    load_project(
        &a.file,
        a.project_name.clone(),
        &a.profile,
        a.project_directory.clone(),
    )
}

/// The compose model as `-f`, `-p`, `--profile` and `--project-directory` give it (also
/// `berth kube generate`'s).
pub(crate) fn load_project(
    file: &[PathBuf],
    project_name: Option<String>,
    profile: &[String],
    project_directory: Option<PathBuf>,
) -> Result<Project> {
    let cwd = std::env::current_dir().context("current directory")?;
    let working_dir = project_directory.unwrap_or_else(|| {
        file.first()
            .filter(|f| f.as_os_str() != "-")
            .and_then(|f| std::path::absolute(f).ok())
            .and_then(|f| f.parent().map(|p| p.to_path_buf()))
            .unwrap_or(cwd.clone())
    });
    let mut profiles = profile.to_vec();
    if profiles.is_empty() {
        if let Ok(p) = std::env::var("COMPOSE_PROFILES") {
            profiles = p
                .split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
        }
    }
    let files = file
        .iter()
        .map(|f| std::path::absolute(f).unwrap_or(f.clone()))
        .collect();
    Ok(compose::load(&LoadOptions {
        files,
        working_dir,
        project_name,
        profiles,
        env: std::env::vars().collect(),
    })?)
}

fn resolve(g: &Globals, a: &ComposeArgs) -> Result<Resolved> {
    let store = Store::open(&g.root).with_context(|| format!("open store {}", g.root.display()))?;
    let layout = Layout::open(&g.root)?;
    let project = load_model(a);
    // docker compose's warnings (unset variables, obsolete `version`...), as it prints them.
    if let Ok(p) = &project {
        for w in &p.warnings {
            progress(w, "Warning");
        }
    }
    let name = match (&a.project_name, &project) {
        (Some(n), _) => n.clone(),
        (None, Ok(p)) => p.name.clone(),
        (None, Err(e)) => return Err(anyhow!("{e:#}")),
    };
    Ok(Resolved {
        ctx: Ctx { layout, store },
        project,
        name,
    })
}

pub fn dispatch(g: &Globals, c: Cmd) -> i32 {
    let Cmd::Compose(a) = c;
    match run(g, a) {
        Ok(code) => code,
        Err(e) => {
            crate::print_error(&e);
            1
        }
    }
}

fn parse_scale(v: &[String]) -> Result<BTreeMap<String, u32>> {
    let mut m = BTreeMap::new();
    for s in v {
        let (k, n) = s
            .split_once('=')
            .ok_or_else(|| anyhow!("invalid scale specifier: {s:?}: expected SERVICE=REPLICAS"))?;
        let n: u32 = n
            .parse()
            .map_err(|_| anyhow!("invalid scale specifier: {s:?}: {n:?} is not a number"))?;
        m.insert(k.to_string(), n);
    }
    Ok(m)
}

fn run(g: &Globals, a: ComposeArgs) -> Result<i32> {
    if let Sub::Version = a.cmd {
        println!("Berth Compose version {}", env!("CARGO_PKG_VERSION"));
        return Ok(0);
    }
    if let Sub::Ls(l) = &a.cmd {
        let store = Store::open(&g.root)?;
        let ctx = Ctx {
            layout: Layout::open(&g.root)?,
            store,
        };
        let rows = ops::list(&ctx, l.all)?;
        if l.quiet {
            for r in rows {
                println!("{}", r.0);
            }
        } else if l.format == "json" {
            let v: Vec<_> = rows
                .iter()
                .map(|r| serde_json::json!({"Name": r.0, "Status": r.1, "ConfigFiles": r.2}))
                .collect();
            println!("{}", serde_json::Value::Array(v));
        } else {
            println!("{:<20}{:<20}CONFIG FILES", "NAME", "STATUS");
            for r in rows {
                println!("{:<20}{:<20}{}", r.0, r.1, r.2);
            }
        }
        return Ok(0);
    }
    let r = resolve(g, &a)?;
    let ctx = &r.ctx;
    let model = || -> Result<Project> {
        match &r.project {
            Ok(p) => Ok(p.clone()),
            Err(e) => Err(anyhow!("{e:#}")),
        }
    };
    // Commands that look at or into a project that is up bring back a killed supervisor
    // first (up, scale, start and restart do it themselves; down and stop end it).
    if matches!(
        a.cmd,
        Sub::Ps(_)
            | Sub::Logs(_)
            | Sub::Exec(_)
            | Sub::Run(_)
            | Sub::Top(_)
            | Sub::Events(_)
            | Sub::Images(_)
            | Sub::Pull(_)
    ) {
        ops::revive(ctx, &r.name)?;
    }
    match a.cmd {
        Sub::Up(u) => {
            let p = model()?;
            let opts = UpOptions {
                services: u.services.clone(),
                scale: parse_scale(&u.scale)?,
                wait: u.wait,
                remove_orphans: u.remove_orphans,
                force_recreate: u.force_recreate,
                no_deps: u.no_deps,
                timeout: u.wait_timeout.map(Duration::from_secs),
            };
            let mut p = p;
            if !u.no_build {
                // What up starts: named services (also ones a profile left out) and,
                // unless --no-deps, their dependencies.
                let mut q = p.clone();
                let names = ops::active_services(&mut q, &u.services, u.no_deps)?;
                let todo = berth_services::build::to_build(ctx, &q, &names, u.build)?;
                build_services(g, ctx, &q, &todo, &Default::default(), false)?;
            }
            berth_services::build::record_image_ids(ctx, &mut p)?;
            for image in ops::missing_images(ctx, &p, &[])? {
                crate::pull_image(g, &image, false).with_context(|| image_context(&p, &image))?;
            }
            let attached = p.attached(&u.services);
            ops::up(ctx, p, &opts, &mut progress)?;
            if u.detach {
                return Ok(0);
            }
            let Some(follow_services) = attached else {
                eprintln!("every service has attach: false: nothing to follow, detached");
                return Ok(0);
            };
            // Attached: the containers' logs until they all end or ^C, which stops the
            // project as docker compose does (a second ^C exits at once).
            let stop = Arc::new(AtomicBool::new(false));
            for sig in [libc::SIGINT, libc::SIGTERM] {
                signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone())?;
                signal_hook::flag::register(sig, stop.clone())?;
            }
            let follow = LogsArgs {
                follow: true,
                tail: "all".into(),
                timestamps: false,
                no_log_prefix: false,
                service: follow_services,
            };
            logs(ctx, &r.name, follow, &stop)?;
            if !stop.load(Ordering::SeqCst) {
                return Ok(0);
            }
            eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
            ops::stop(ctx, &r.name, &[], None, &mut |w, _| progress(w, "Stopped"))?;
            Ok(130)
        }
        Sub::Down(d) => {
            ops::down(
                ctx,
                &r.name,
                r.project.as_ref().ok(),
                d.volumes,
                d.timeout,
                &mut progress,
            )?;
            Ok(0)
        }
        Sub::Ps(p) => ps(ctx, &r.name, p),
        Sub::Logs(l) => logs(ctx, &r.name, l, &AtomicBool::new(false)),
        Sub::Scale(s) => {
            ops::scale(ctx, &r.name, &parse_scale(&s.scale)?, &mut progress)?;
            Ok(0)
        }
        Sub::Start(_) => {
            ops::start(ctx, &r.name, &mut progress)?;
            Ok(0)
        }
        Sub::Stop(s) => {
            ops::stop(ctx, &r.name, &s.service, s.timeout, &mut progress)?;
            Ok(0)
        }
        Sub::Restart(s) => {
            ops::stop(ctx, &r.name, &s.service, s.timeout, &mut |_, _| {})?;
            ops::start(ctx, &r.name, &mut |w, _| progress(w, "Started"))?;
            Ok(0)
        }
        Sub::Config(c) => {
            let p = model()?;
            if c.quiet {
            } else if c.services {
                for s in p.services.keys() {
                    println!("{s}");
                }
            } else {
                print!("{}", p.to_yaml());
            }
            Ok(0)
        }
        Sub::Exec(e) => exec(g, ctx, &r.name, e),
        Sub::Run(x) => run_oneoff(g, ctx, model()?, x),
        Sub::Top(s) => {
            for m in ops::containers(ctx, &r.name, &s.service, false)? {
                println!("{}", m.config.name);
                crate::io_cmds::top_of(&ctx.layout, m.id(), &[])?;
                println!();
            }
            Ok(0)
        }
        Sub::Events(e) => events(ctx, &r.name, e),
        Sub::Pull(s) => {
            let p = model()?;
            for svc in p.services.values() {
                if !s.service.is_empty() && !s.service.contains(&svc.name) {
                    continue;
                }
                let pulled = crate::pull_image(g, &svc.image, true)
                    .with_context(|| format!("pull image {} of service {}", svc.image, svc.name));
                match pulled {
                    Ok(()) => progress(&format!("{} Pulled", svc.name), ""),
                    // As docker compose: a service that builds its image may have none to pull.
                    Err(e) if svc.build.is_some() => progress(
                        &format!(
                            "{} {}; it is built by compose build or up",
                            svc.name,
                            crate::chain(&e)
                        ),
                        "Warning",
                    ),
                    Err(e) => return Err(e),
                }
            }
            Ok(0)
        }
        Sub::Images(i) => images(ctx, &r.name, i),
        Sub::Build(b) => {
            let p = model()?;
            let todo = berth_services::build::buildable(&p, &b.services)?;
            let env = |k: &str| std::env::var(k).ok();
            let o = berth_services::build::Overrides {
                no_cache: b.no_cache,
                pull: b.pull,
                build_args: berth_build::flags::build_args(&b.build_arg, &env)
                    .map_err(|m| anyhow!(m))?,
                source_date_epoch: None,
            };
            build_services(g, ctx, &p, &todo, &o, b.quiet)?;
            Ok(0)
        }
        Sub::Supervise => {
            let pd = ProjectDir::new(&ctx.layout, &r.name);
            let _lock = ops::lock_supervisor(&pd)?;
            let sup = berth_services::supervisor::Supervisor::new(
                ctx.layout.clone(),
                ctx.store.clone(),
                &r.name,
            )?;
            sup.run()?;
            Ok(0)
        }
        Sub::Version | Sub::Ls(_) => unreachable!("handled above"),
    }
}

/// Builds `names`' images one after the other, their build output on stderr.
fn build_services(
    g: &Globals,
    ctx: &Ctx,
    p: &Project,
    names: &[String],
    o: &berth_services::build::Overrides,
    quiet: bool,
) -> Result<()> {
    let mut o = o.clone();
    if o.source_date_epoch.is_none() {
        o.source_date_epoch = std::env::var("SOURCE_DATE_EPOCH").ok();
    }
    for name in names {
        let mut fe = crate::build_cmd::Cli::new(g, quiet);
        berth_services::build::build(ctx, p, name, &o, &mut fe)?;
        if !quiet {
            progress(&format!("Service {name}"), "Built");
        }
    }
    Ok(())
}

/// Where a missing image comes from: "FILE: services.SVC.image: pull image IMAGE".
fn image_context(p: &Project, image: &str) -> String {
    let file = p
        .config_files
        .first()
        .map(|f| format!("{}: ", f.display()))
        .unwrap_or_default();
    let svcs: Vec<String> = p
        .services
        .values()
        .filter(|s| s.image == image)
        .map(|s| format!("services.{}.image", s.name))
        .collect();
    format!("{file}{}: pull image {image}", svcs.join(", "))
}

fn status_text(m: &Member) -> String {
    let Some(s) = &m.state else {
        return "unknown".into();
    };
    crate::containers::status_text(s)
}

/// The service's published ports as docker compose shows them on each container.
fn ports_text(p: Option<&Project>, m: &Member) -> String {
    let Some(svc) = p.and_then(|p| p.services.get(m.service())) else {
        return String::new();
    };
    svc.ports
        .iter()
        .filter_map(|port| {
            let pubd = port.published.as_ref()?;
            let ip = port.host_ip.clone().unwrap_or_else(|| "0.0.0.0".into());
            Some(format!("{ip}:{pubd}->{}/{}", port.target, port.protocol))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn ps(ctx: &Ctx, name: &str, a: PsArgs) -> Result<i32> {
    let pd = ProjectDir::new(&ctx.layout, name);
    let desired = pd.load_desired().ok().flatten();
    let p = desired.as_ref().map(|d| &d.project);
    let ms = ops::containers(ctx, name, &a.service, a.all)?;
    if a.services {
        let mut seen = Vec::new();
        for m in &ms {
            if !seen.contains(&m.service().to_string()) {
                seen.push(m.service().to_string());
                println!("{}", m.service());
            }
        }
        return Ok(0);
    }
    if a.quiet {
        for m in &ms {
            println!("{}", m.id());
        }
        return Ok(0);
    }
    let status = pd.load_status();
    if a.format == "json" {
        let v: Vec<serde_json::Value> = ms
            .iter()
            .map(|m| {
                let st = m.state.as_ref();
                serde_json::json!({
                    "ID": m.id(),
                    "Name": m.config.name,
                    "Image": m.config.options.image,
                    "Command": format!("{} {}", m.config.path, m.config.args.join(" ")).trim().to_string(),
                    "Project": name,
                    "Service": m.service(),
                    "Number": m.number(),
                    "Created": m.config.created,
                    "State": st.map(|s| s.status.as_str()).unwrap_or("unknown"),
                    "Health": st.and_then(|s| s.health.as_ref()).map(|h| h.status.clone()).unwrap_or_default(),
                    "ExitCode": st.map(|s| s.exit_code).unwrap_or(0),
                    "Status": status_text(m),
                    "Publishers": ports_text(p, m),
                    "Labels": m.config.options.labels,
                    "Pid": st.map(|s| s.pid).unwrap_or(0),
                    "Networks": st.and_then(|s| s.network.as_ref()).map(|n| n.endpoints.iter().map(|e| serde_json::json!({"Network": e.network, "IPAddress": e.ipv4})).collect::<Vec<_>>()).unwrap_or_default(),
                })
            })
            .collect();
        // docker compose v2 prints one JSON array; the services' state follows as
        // Berth's addition in `compose ls`-like form on request only.
        println!("{}", serde_json::Value::Array(v));
        return Ok(0);
    }
    let mut out = std::io::stdout().lock();
    // Columns as docker compose's tabwriter lays them out: as wide as their widest cell.
    let mut table = String::from("NAME\tIMAGE\tCOMMAND\tSERVICE\tCREATED\tSTATUS\tPORTS\n");
    for m in &ms {
        let cmd = format!("{} {}", m.config.path, m.config.args.join(" "));
        let cmd = format!("\"{}\"", truncate(cmd.trim(), 20));
        let created = crate::containers::secs_since(&m.config.created)
            .map(|s| format!("{} ago", crate::containers::human_duration(s)))
            .unwrap_or_default();
        table.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            m.config.name,
            m.config.options.image,
            cmd,
            m.service(),
            created,
            status_text(m),
            ports_text(p, m)
        ));
    }
    out.write_all(berth_engine::template::tabwrite(&table).as_bytes())?;
    // The supervisor's view: scaling decisions and updates (Berth's addition).
    if let Some(st) = status {
        for (svc, s) in &st.services {
            if let Some(n) = &s.last_scale {
                writeln!(
                    out,
                    "# {svc}: {} replicas ({} ready); autoscaled {} -> {} at {}: {}",
                    s.desired, s.ready, n.from, n.to, n.time, n.reason
                )?;
            }
            if !s.update.is_empty() {
                writeln!(out, "# {svc}: {}", s.update)?;
            }
            if !s.error.is_empty() {
                writeln!(out, "# {svc}: {}", s.error)?;
            }
        }
    }
    Ok(0)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

/// The project's logs; following ends when no container runs and no supervisor does, or
/// when `stop` is set.
fn logs(ctx: &Ctx, name: &str, a: LogsArgs, stop: &AtomicBool) -> Result<i32> {
    use berth_engine::logfile;
    let ms = ops::containers(ctx, name, &a.service, true)?;
    let tail = crate::io_cmds::parse_tail(&a.tail)?;
    let width = ms.iter().map(|m| m.config.name.len()).max().unwrap_or(0);
    let prefix = |m: &Member| {
        if a.no_log_prefix {
            String::new()
        } else {
            format!("{:<width$} | ", m.config.name)
        }
    };
    let print = |pre: &str, e: &logfile::LogEntry| {
        let line = if a.timestamps {
            format!("{pre}{} {}", e.time, e.log)
        } else {
            format!("{pre}{}", e.log)
        };
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(line.as_bytes());
        if !line.ends_with('\n') {
            let _ = o.write_all(b"\n");
        }
    };
    if !a.follow {
        for m in &ms {
            for e in logfile::read(&ctx.layout.log_path(m.id()), None, None, tail)? {
                print(&prefix(m), &e);
            }
        }
        return Ok(0);
    }
    // Follow every container (and replicas that appear) until none runs and no
    // supervisor does.
    let mut followers: BTreeMap<String, (String, logfile::Follower)> = BTreeMap::new();
    let pd = ProjectDir::new(&ctx.layout, name);
    loop {
        for m in ops::containers(ctx, name, &a.service, true)? {
            if followers.contains_key(m.id()) {
                continue;
            }
            let (v, f) = logfile::read_then_follow(&ctx.layout.log_path(m.id()), None, None, tail)?;
            let pre = prefix(&m);
            for e in &v {
                print(&pre, e);
            }
            followers.insert(m.id().to_string(), (pre, f));
        }
        for (pre, f) in followers.values_mut() {
            for e in f.poll().unwrap_or_default() {
                print(pre, &e);
            }
        }
        let any = !ops::containers(ctx, name, &a.service, false)?.is_empty();
        if (!any && ops::supervisor_pid(&pd).is_none()) || stop.load(Ordering::SeqCst) {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn find_replica(ctx: &Ctx, project: &str, service: &str, index: u32) -> Result<Member> {
    let ms = ops::containers(ctx, project, &[service.to_string()], true)?;
    if ms.is_empty() {
        bail!("service {service:?} is not running");
    }
    ms.into_iter()
        .find(|m| m.number() == index && !m.oneoff())
        .ok_or_else(|| anyhow!("service {service:?} has no container with index {index}"))
}

#[derive(Parser)]
struct ExecOnly {
    #[command(flatten)]
    a: crate::io_cmds::exec::ExecArgs,
}

fn exec(_g: &Globals, ctx: &Ctx, project: &str, e: ExecArgs) -> Result<i32> {
    let m = find_replica(ctx, project, &e.service, e.index)?;
    let mut argv: Vec<String> = vec!["exec".into()];
    if e.detach {
        argv.push("-d".into());
    }
    if !e.no_tty && std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        argv.push("-it".into());
    } else if !e.detach {
        argv.push("-i".into());
    }
    if let Some(u) = e.user {
        argv.extend(["-u".into(), u]);
    }
    if let Some(w) = e.workdir {
        argv.extend(["-w".into(), w]);
    }
    for x in e.env {
        argv.extend(["-e".into(), x]);
    }
    if e.privileged {
        argv.push("--privileged".into());
    }
    argv.push(m.id().to_string());
    argv.extend(e.command);
    let parsed = ExecOnly::try_parse_from(argv).map_err(|x| anyhow!("{x}"))?;
    Ok(crate::io_cmds::exec::run(&ctx.layout, parsed.a))
}

fn run_oneoff(g: &Globals, ctx: &Ctx, p: Project, x: RunArgs) -> Result<i32> {
    let svc = p
        .services
        .get(&x.service)
        .or_else(|| p.disabled.get(&x.service))
        .ok_or_else(|| anyhow!("no such service: {}", x.service))?
        .clone();
    let one = std::slice::from_ref(&x.service);
    let todo = berth_services::build::to_build(ctx, &p, one, false)?;
    build_services(g, ctx, &p, &todo, &Default::default(), false)?;
    if ops::missing_images(ctx, &p, one)?.contains(&svc.image) {
        crate::pull_image(g, &svc.image, false)?;
    }
    if !x.no_deps && !svc.depends_on.is_empty() {
        let deps: Vec<String> = svc.depends_on.keys().cloned().collect();
        let opts = UpOptions {
            services: deps,
            ..Default::default()
        };
        ops::up(ctx, p.clone(), &opts, &mut progress)?;
    }
    let mut o = berth_services::options::create_options(&p, &svc, 0, true)?;
    berth_services::files::mount(&ctx.layout, &p, &svc, &mut o)?;
    o.name = Some(x.name.clone().unwrap_or_else(|| {
        format!(
            "{}-{}-run-{}",
            p.name,
            svc.name,
            &berth_engine::create::new_id().unwrap_or_default()[..12]
        )
    }));
    if !x.command.is_empty() {
        o.cmd = Some(x.command.clone());
    }
    if let Some(ep) = &x.entrypoint {
        o.entrypoint = Some(if ep.is_empty() {
            vec![]
        } else {
            vec![ep.clone()]
        });
    }
    o.env.extend(x.env.iter().cloned());
    if let Some(u) = x.user {
        o.user = Some(u);
    }
    if let Some(w) = x.workdir {
        o.workdir = Some(w);
    }
    o.auto_remove = x.rm;
    o.tty = !x.no_tty && std::io::IsTerminal::is_terminal(&std::io::stdin());
    o.open_stdin = !x.detach;
    crate::containers::run_options(g, o, x.detach)
}

fn events(ctx: &Ctx, name: &str, a: EventsArgs) -> Result<i32> {
    let mut off = 0usize;
    let path = ctx.layout.events_path();
    loop {
        // Only what was appended since the last read.
        let text = std::fs::File::open(&path)
            .and_then(|mut f| {
                use std::io::{Read, Seek};
                f.seek(std::io::SeekFrom::Start(off as u64))?;
                let mut s = String::new();
                f.read_to_string(&mut s).map(|_| s)
            })
            .unwrap_or_default();
        if !text.is_empty() {
            let new = &text[..];
            let end = new.rfind('\n').map_or(0, |i| i + 1);
            for line in new[..end].lines() {
                let Ok(ev) = serde_json::from_str::<berth_engine::events::Event>(line) else {
                    continue;
                };
                let at = &ev.actor.attributes;
                if at.get(replicas::L_PROJECT).map(|s| s.as_str()) != Some(name) {
                    continue;
                }
                let svc = at.get(replicas::L_SERVICE).cloned().unwrap_or_default();
                if !a.service.is_empty() && !a.service.contains(&svc) {
                    continue;
                }
                let time = berth_engine::record::rfc3339(
                    std::time::UNIX_EPOCH + Duration::from_nanos(ev.time_nano as u64),
                );
                if a.json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "time": time, "type": ev.kind, "action": ev.action,
                            "id": ev.actor.id, "service": svc, "attributes": at,
                        })
                    );
                } else {
                    let attrs: Vec<String> = at
                        .iter()
                        .filter(|(k, _)| {
                            !k.starts_with("com.docker.compose.") || k.ends_with(".service")
                        })
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    println!(
                        "{time} {} {} {} ({})",
                        ev.kind,
                        ev.action,
                        ev.actor.id,
                        attrs.join(", ")
                    );
                }
            }
            off += end;
        }
        if a.no_follow {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn images(ctx: &Ctx, name: &str, a: ImagesArgs) -> Result<i32> {
    let ms = ops::containers(ctx, name, &a.service, true)?;
    let recs = ctx.store.records()?;
    if !a.quiet {
        println!(
            "{:<28}{:<28}{:<12}{:<16}SIZE",
            "CONTAINER", "REPOSITORY", "TAG", "IMAGE ID"
        );
    }
    for m in ms {
        let (repo, tag) = match m.config.options.image.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r.to_string(), t.to_string()),
            _ => (m.config.options.image.clone(), "latest".into()),
        };
        let id = m.config.image_id.trim_start_matches("sha256:");
        if a.quiet {
            println!("{id}");
            continue;
        }
        let size = ctx
            .store
            .resolve(&recs, &m.config.image_id)
            .map(|r| berth_engine::stats::human_size(r.size))
            .unwrap_or_default();
        println!(
            "{:<28}{:<28}{:<12}{:<16}{}",
            m.config.name,
            repo,
            tag,
            &id[..12.min(id.len())],
            size
        );
    }
    Ok(0)
}
