#![recursion_limit = "256"]
//! berth: the engine CLI (images, containers, volumes). Flags and output follow docker's.

use anyhow::{anyhow, bail, Context, Result};
use berth_engine::images::Removed;
use berth_image::archive::{self, Format};
use berth_image::distribution::{short, Progress};
use berth_image::store::{Store, DEFAULT_ROOT};
use berth_registry::auth::{self, Credentials};
use berth_registry::{Client, ClientOptions, Reference};
use clap::{Parser, Subcommand};
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// std's eprintln! panics when stderr is closed or full (berth then aborted, 134): a
/// lost diagnostic line must never change the exit code. Textually first, so every module
/// below uses this one.
macro_rules! eprintln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($t)*);
    }};
}

// musl's malloc maps and unmaps memory at a high rate: `berth --version` (clap builds
// the command tree) takes 3.4 ms of cpu with it, 1.6 ms with mimalloc; `ps -a` 3.7 to
// 2.2 ms (docs/benchmarks.md). Without transparent huge pages (no_thp): with them
// `berth serve` idled at 14.8 MB RSS instead of 8.3 (musl's: 6.9). The monitor and the
// runtime keep musl's: they allocate little, and their peak RSS counts.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod build_cmd;
mod cli_doc;
mod compose_cmd;
mod containers;
mod io_cmds;
mod kube_cmd;
mod network_cmd;
mod system;
mod term;
mod volume_cmd;

/// What every engine command gets: the storage root and how to reach registries (for
/// `run` of an image that is not here yet).
pub struct Globals {
    pub root: PathBuf,
    pub client_opts: ClientOptions,
}

/// The global options, listed once in `berth --help` and not in every command's (docker's
/// layout); they are accepted before or after the command (hidden args, not positional).
const GLOBAL_OPTIONS: &str = "Global Options (before or after the command):
      --root <ROOT>                   Storage root [default: /var/lib/berth]
      --authfile <AUTHFILE>           Credentials file (docker config format)
      --tls-verify <true|false>       Verify registry TLS certificates (false also allows plain HTTP) [default: true]
      --insecure-registry <REGISTRY>  Registry reached without TLS verification (repeatable)
      --log-level <LEVEL>             debug, info, warn, error or fatal; debug logs the phases of
                                      create, start, run, exec and rm in microseconds [default: info]";

#[derive(Parser)]
#[command(name = "berth", version, about = "Berth container engine", after_help = GLOBAL_OPTIONS)]
struct Cli {
    /// Storage root
    #[arg(long, global = true, hide = true, default_value = DEFAULT_ROOT)]
    root: PathBuf,
    /// Credentials file (docker config format)
    #[arg(long, global = true, hide = true)]
    authfile: Option<PathBuf>,
    /// Verify registry TLS certificates (false also allows plain HTTP)
    #[arg(long, global = true, hide = true, default_value_t = true, action = clap::ArgAction::Set)]
    tls_verify: bool,
    /// Registry reached without TLS verification (repeatable)
    #[arg(long = "insecure-registry", global = true, hide = true)]
    insecure_registries: Vec<String>,
    /// Logging level: debug logs each phase of create, start, run, exec and rm (µs)
    #[arg(long = "log-level", global = true, hide = true, default_value = "info",
          value_parser = ["debug", "info", "warn", "error", "fatal"])]
    log_level: String,
    #[command(subcommand)]
    cmd: Cmd,
}

// Parsed once per process: the size of the run flags does not matter. Every command
// enum defers building its commands' arguments to when that command is the one run:
// building the whole docker-sized tree took 1.7 ms of every start (`berth --version`
// 2.76 ms of cpu and 454 page faults before, 1.08 ms and 246 after).
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
#[command(defer = true)]
enum Cmd {
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// List images
    Images(LsArgs),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCmd),
    /// Remove images
    Rmi(RmArgs),
    /// Create a tag TARGET that refers to SOURCE
    Tag(TagArgs),
    /// Log in to a registry
    Login(LoginArgs),
    /// Log out from a registry
    Logout(LogoutArgs),
    /// Save images to a tar archive
    Save(SaveArgs),
    /// Load images from a tar archive
    Load(LoadArgs),
    /// Import a rootfs tarball as an image
    Import(ImportArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Build an image from a Dockerfile
    Build(build_cmd::BuildArgs),
    /// Manage the build cache
    #[command(subcommand)]
    Builder(build_cmd::BuilderCmd),
    #[command(flatten)]
    Containers(containers::Cmd),
    #[command(flatten)]
    Io(io_cmds::Cmd),
    #[command(flatten)]
    Volumes(volume_cmd::Cmd),
    #[command(flatten)]
    Networks(network_cmd::Cmd),
    #[command(flatten)]
    Compose(compose_cmd::Cmd),
    #[command(flatten)]
    Kube(kube_cmd::Cmd),
    /// Manage berth itself (`system boot`: start containers after a reboot; df, info,
    /// prune)
    #[command(subcommand)]
    System(system::Cmd),
    #[command(flatten)]
    Host(system::TopCmd),
    /// Generate the autocompletion script for the specified shell
    Completion { shell: clap_complete::Shell },
    /// (internal) the command reference of docs/cli.md
    #[command(name = "__cli-doc", hide = true)]
    CliDoc,
}

#[derive(Subcommand)]
#[command(defer = true)]
enum ImageCmd {
    /// List images
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more images
    Inspect(InspectArgs),
    /// Remove one or more images
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove unused images
    Prune(PruneArgs),
    /// Create a tag TARGET that refers to SOURCE
    Tag(TagArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Save one or more images to a tar archive
    Save(SaveArgs),
    /// Load an image from a tar archive
    Load(LoadArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Mount an image's rootfs (overlay with a fresh upper layer); prints the mount point
    Mount(MountArgs),
    /// Unmount a rootfs mounted with `image mount` and delete its upper layer
    #[command(alias = "umount")]
    Unmount(UnmountArgs),
}

#[derive(clap::Args)]
struct MountArgs {
    image: String,
    /// Name of the mount (a container ID)
    #[arg(long)]
    name: String,
}

#[derive(clap::Args)]
struct UnmountArgs {
    name: String,
}

#[derive(clap::Args)]
struct PullArgs {
    image: String,
    /// os/arch[/variant] to select from a multi-platform image
    #[arg(long)]
    platform: Option<String>,
    #[arg(short, long)]
    quiet: bool,
    /// Create device nodes found in layers
    #[arg(long)]
    allow_devices: bool,
    /// Status lines go to stderr (`run`/`create` pulling: stdout is the container's).
    #[arg(skip)]
    to_stderr: bool,
}

#[derive(clap::Args)]
struct PushArgs {
    image: String,
    /// Destination (defaults to IMAGE)
    destination: Option<String>,
    #[arg(short, long)]
    quiet: bool,
}

#[derive(clap::Args)]
struct LsArgs {
    /// Show all images (berth makes no intermediate images: the same list)
    #[arg(short, long)]
    all: bool,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// Show digests
    #[arg(long)]
    digests: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Filter output (dangling=true|false, label=K[=V], before=IMG, since=IMG, reference=PATTERN)
    #[arg(short, long)]
    filter: Vec<String>,
    /// Format output using a Go template ("table", "json" or a template)
    #[arg(long)]
    format: Option<String>,
    /// REPOSITORY[:TAG]
    reference: Option<String>,
}

#[derive(clap::Args)]
struct RmArgs {
    #[arg(required = true)]
    images: Vec<String>,
    #[arg(short, long)]
    force: bool,
}

#[derive(clap::Args)]
struct PruneArgs {
    /// Remove all images not used by containers, not just dangling ones
    #[arg(short, long)]
    all: bool,
    /// Do not prompt (prune never prompts; accepted for docker compatibility)
    #[arg(short, long)]
    force: bool,
}

#[derive(clap::Args)]
struct TagArgs {
    source: String,
    target: String,
}

#[derive(clap::Args)]
struct InspectArgs {
    #[arg(required = true)]
    images: Vec<String>,
    /// Format the output using a Go template (or `json`)
    #[arg(short, long)]
    format: Option<String>,
}

#[derive(clap::Args)]
struct LoginArgs {
    server: String,
    #[arg(short, long)]
    username: Option<String>,
    #[arg(short, long)]
    password: Option<String>,
    #[arg(long)]
    password_stdin: bool,
}

#[derive(clap::Args)]
struct LogoutArgs {
    server: String,
}

#[derive(clap::Args)]
struct SaveArgs {
    #[arg(required = true)]
    images: Vec<String>,
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// docker-archive or oci-archive
    #[arg(long, default_value = "docker-archive")]
    format: String,
}

#[derive(clap::Args)]
struct LoadArgs {
    #[arg(short, long)]
    input: Option<PathBuf>,
    #[arg(short, long)]
    quiet: bool,
}

#[derive(clap::Args)]
struct HistoryArgs {
    image: String,
    /// Pretty-print using a Go template
    #[arg(long)]
    format: Option<String>,
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set)]
    human: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
}

#[derive(clap::Args)]
struct ImportArgs {
    /// Tarball path, or - for stdin
    file: String,
    reference: Option<String>,
    /// Apply a Dockerfile instruction to the image (CMD, ENTRYPOINT, ENV, EXPOSE, USER,
    /// WORKDIR, LABEL, VOLUME)
    #[arg(short, long)]
    change: Vec<String>,
    /// Set the commit message for the imported image
    #[arg(short, long)]
    message: Option<String>,
}

/// Global options resolved once.
struct Ctx {
    store: Store,
    client_opts: ClientOptions,
}

/// Insecure registries from `$BERTH_REGISTRIES_CONF` or /etc/berth/registries.json
/// (`{"insecure": ["host:port", ...]}`).
fn config_insecure() -> Result<Vec<String>> {
    let p = std::env::var_os("BERTH_REGISTRIES_CONF")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/berth/registries.json"));
    match std::fs::read(&p) {
        Ok(b) => {
            #[derive(serde::Deserialize)]
            struct C {
                #[serde(default)]
                insecure: Vec<String>,
            }
            let c: C =
                serde_json::from_slice(&b).with_context(|| format!("parse {}", p.display()))?;
            Ok(c.insecure)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vec![]),
        Err(e) => Err(e).with_context(|| format!("read {}", p.display())),
    }
}

fn main() {
    let t0 = berth_sys::timing::now_ns();
    // Usage errors exit 125 like docker's; --help and --version exit 0.
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 125 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    match &cli.cmd {
        Cmd::Completion { shell } => {
            cli_doc::completion(&mut <Cli as clap::CommandFactory>::command(), *shell);
            std::process::exit(0);
        }
        Cmd::CliDoc => {
            let mut c = <Cli as clap::CommandFactory>::command();
            c.build();
            print!("{}", cli_doc::markdown(&c));
            std::process::exit(0);
        }
        _ => {}
    }
    if cli.log_level == "debug" {
        berth_sys::timing::enable(t0);
        berth_sys::timing::mark("argument parsing");
    }
    // Container commands run without tokio: most are a few file reads and a fork.
    if matches!(
        cli.cmd,
        Cmd::Containers(_)
            | Cmd::Io(_)
            | Cmd::Volumes(_)
            | Cmd::System(_)
            | Cmd::Host(_)
            | Cmd::Networks(_)
            | Cmd::Compose(_)
            | Cmd::Kube(_)
            | Cmd::Build(_)
            | Cmd::Builder(_)
    ) {
        let code = match client_options(&cli) {
            Ok(client_opts) => {
                let g = Globals {
                    root: cli.root.clone(),
                    client_opts,
                };
                match cli.cmd {
                    Cmd::Containers(c) => containers::dispatch(&g, c),
                    Cmd::Io(c) => io_cmds::dispatch(&g, c),
                    Cmd::Volumes(c) => volume_cmd::dispatch(&g, c),
                    Cmd::System(c) => system::dispatch(&g, c),
                    Cmd::Host(c) => system::dispatch_top(&g, c),
                    Cmd::Networks(c) => network_cmd::dispatch(&g, c),
                    Cmd::Compose(c) => compose_cmd::dispatch(&g, c),
                    Cmd::Kube(c) => kube_cmd::dispatch(&g, c),
                    Cmd::Build(a) => build_cmd::run(&g, a),
                    Cmd::Builder(c) => build_cmd::builder(&g, c),
                    _ => unreachable!("matched above"),
                }
            }
            Err(e) => {
                print_error(&e);
                125
            }
        };
        log_phases();
        std::process::exit(code);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    // Image commands: the CLI's 1, as docker's.
    if let Err(e) = rt.block_on(run(cli)) {
        print_error(&e);
        std::process::exit(1);
    }
}

/// `--log-level debug`: the phases of this command, one logrus-style line on stderr (as
/// docker's daemon and runc log).
fn log_phases() {
    use std::io::Write;
    if !berth_sys::timing::enabled() {
        return;
    }
    let phases = berth_sys::timing::take();
    if phases.is_empty() {
        return;
    }
    let line = format!(
        "time=\"{}\" level=debug msg=\"phases: {}\"\n",
        berth_engine::record::now_rfc3339(),
        berth_sys::timing::format(&phases)
    );
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// The one error printer: the message and its chain of causes on one line, a cause that
/// the line already says (an error that shows its source) not twice. A stderr that is
/// closed or full loses the line: it never panics (exit codes stay docker's).
pub fn print_error(e: &anyhow::Error) {
    use std::io::Write;
    let msg = format!("Error: {}\n", chain(e));
    let _ = std::io::stderr().lock().write_all(msg.as_bytes());
}

/// The message and its causes on one line (what [`print_error`] prints).
pub fn chain(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for c in e.chain().skip(1) {
        let t = c.to_string();
        if !msg.contains(&t) {
            msg.push_str(": ");
            msg.push_str(&t);
        }
    }
    msg
}

fn client_options(cli: &Cli) -> Result<ClientOptions> {
    let authfile = cli.authfile.clone().unwrap_or_else(auth::default_auth_file);
    let mut insecure = cli.insecure_registries.clone();
    insecure.extend(config_insecure()?);
    Ok(ClientOptions {
        tls_verify: cli.tls_verify,
        insecure_registries: insecure,
        authfile: Some(authfile.clone()),
        certs_dir: Some(
            std::env::var_os("BERTH_CERTS_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/etc/berth/certs.d")),
        ),
        ..Default::default()
    })
}

/// Pulls `image` into the store at `root` (for `run`/`create` of an image not yet here).
pub fn pull_image(g: &Globals, image: &str, quiet: bool) -> Result<()> {
    pull_image_for(g, image, None, quiet)
}

/// [`pull_image`] of one platform (`--platform`).
pub fn pull_image_for(g: &Globals, image: &str, platform: Option<&str>, quiet: bool) -> Result<()> {
    let store = Store::open(&g.root).with_context(|| format!("open store {}", g.root.display()))?;
    let ctx = Ctx {
        store,
        client_opts: g.client_opts.clone(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(pull(
        &ctx,
        PullArgs {
            image: image.to_string(),
            platform: platform.map(str::to_string),
            quiet,
            allow_devices: false,
            to_stderr: true,
        },
    ))
}

async fn run(cli: Cli) -> Result<()> {
    // Commands that need no store.
    let authfile = cli.authfile.clone().unwrap_or_else(auth::default_auth_file);
    let client_opts = client_options(&cli)?;
    match &cli.cmd {
        Cmd::Login(a) => return login(&client_opts, &authfile, a).await,
        Cmd::Logout(a) => {
            let host = registry_host(&a.server);
            auth::remove(&authfile, &host)?;
            println!("Removing login credentials for {host}");
            return Ok(());
        }
        _ => {}
    }
    let store =
        Store::open(&cli.root).with_context(|| format!("open store {}", cli.root.display()))?;
    let ctx = Ctx { store, client_opts };
    match cli.cmd {
        Cmd::Pull(a) | Cmd::Image(ImageCmd::Pull(a)) => pull(&ctx, a).await,
        Cmd::Push(a) | Cmd::Image(ImageCmd::Push(a)) => push(&ctx, a).await,
        Cmd::Images(a) | Cmd::Image(ImageCmd::Ls(a)) => images(&ctx, a),
        Cmd::Rmi(a) | Cmd::Image(ImageCmd::Rm(a)) => rmi(&ctx, a),
        Cmd::Tag(a) | Cmd::Image(ImageCmd::Tag(a)) => tag(&ctx, a),
        Cmd::Image(ImageCmd::Inspect(a)) => inspect(&ctx, a),
        Cmd::Image(ImageCmd::Prune(a)) => prune(&ctx, a),
        Cmd::Image(ImageCmd::Mount(a)) => {
            let recs = ctx.store.records()?;
            let rec = ctx.store.resolve(&recs, &a.image)?;
            let p = berth_image::overlay::mount_rootfs(&ctx.store, &rec, &a.name)?;
            println!("{}", p.display());
            Ok(())
        }
        Cmd::Image(ImageCmd::Unmount(a)) => {
            berth_image::overlay::unmount_rootfs(&ctx.store, &a.name, true)?;
            Ok(())
        }
        Cmd::Save(a) | Cmd::Image(ImageCmd::Save(a)) => save(&ctx, a),
        Cmd::Load(a) | Cmd::Image(ImageCmd::Load(a)) => load(&ctx, a),
        Cmd::History(a) | Cmd::Image(ImageCmd::History(a)) => history(&ctx, a),
        Cmd::Import(a) | Cmd::Image(ImageCmd::Import(a)) => import(&ctx, a),
        Cmd::Login(_) | Cmd::Logout(_) => unreachable!("handled above"),
        Cmd::Containers(_)
        | Cmd::Io(_)
        | Cmd::Volumes(_)
        | Cmd::System(_)
        | Cmd::Host(_)
        | Cmd::Networks(_)
        | Cmd::Compose(_)
        | Cmd::Kube(_)
        | Cmd::Build(_)
        | Cmd::Builder(_)
        | Cmd::Completion { .. }
        | Cmd::CliDoc => {
            unreachable!("run without tokio")
        }
    }
}

/// `docker.io`, `https://host/`, `host:port` → the registry key.
fn registry_host(s: &str) -> String {
    let s = s
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let s = s.split('/').next().unwrap_or(s);
    match s {
        "index.docker.io" | "registry-1.docker.io" | "" => "docker.io".into(),
        o => o.to_string(),
    }
}

async fn login(opts: &ClientOptions, authfile: &std::path::Path, a: &LoginArgs) -> Result<()> {
    let host = registry_host(&a.server);
    let username = match &a.username {
        Some(u) => u.clone(),
        None => bail!("--username is required"),
    };
    let password = if a.password_stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("read password from stdin")?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else {
        a.password
            .clone()
            .ok_or_else(|| anyhow!("--password or --password-stdin is required"))?
    };
    let creds = Credentials { username, password };
    let mut o = opts.clone();
    o.credentials = Some(creds.clone());
    Client::new(o)?
        .check_login(&host)
        .await
        .with_context(|| format!("log in to {host}"))?;
    auth::store(authfile, &host, &creds)?;
    println!("Login Succeeded");
    Ok(())
}

/// Progress as indicatif bars on a terminal, plain lines otherwise.
struct Bars {
    multi: Option<indicatif::MultiProgress>,
    bars: Mutex<std::collections::HashMap<String, indicatif::ProgressBar>>,
    quiet: bool,
}

impl Bars {
    fn new(quiet: bool) -> Arc<Bars> {
        let multi = (!quiet && std::io::stderr().is_terminal()).then(indicatif::MultiProgress::new);
        Arc::new(Bars {
            multi,
            bars: Mutex::new(Default::default()),
            quiet,
        })
    }
}

impl Progress for Bars {
    fn start(&self, id: &str, total: u64, what: &str) {
        if self.quiet {
            return;
        }
        match &self.multi {
            Some(m) => {
                let b = m.add(indicatif::ProgressBar::new(total));
                b.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{prefix}: {msg} [{bar:30}] {bytes}/{total_bytes}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                b.set_prefix(id.to_string());
                b.set_message(what.to_string());
                self.bars.lock().unwrap().insert(id.to_string(), b);
            }
            None => eprintln!("{id}: {what}"),
        }
    }
    fn advance(&self, id: &str, n: u64) {
        if let Some(b) = self.bars.lock().unwrap().get(id) {
            b.inc(n);
        }
    }
    fn finish(&self, id: &str, status: &str) {
        if self.quiet {
            return;
        }
        match self.bars.lock().unwrap().get(id) {
            Some(b) => b.finish_with_message(status.to_string()),
            None => match &self.multi {
                Some(m) => {
                    let _ = m.println(format!("{id}: {status}"));
                }
                None => eprintln!("{id}: {status}"),
            },
        }
    }
}

async fn pull(ctx: &Ctx, a: PullArgs) -> Result<()> {
    let say = |l: String| {
        if a.to_stderr {
            eprintln!("{l}")
        } else {
            println!("{l}")
        }
    };
    let p = berth_engine::run::Pull::new(&a.image, a.platform.as_deref(), a.allow_devices)?;
    let r = &p.reference;
    if !a.quiet {
        say(format!(
            "{}: Pulling from {}",
            r.tag.as_deref().or(r.digest.as_deref()).unwrap_or("latest"),
            r.repository
        ));
    }
    let rec = p
        .run(&ctx.store, &ctx.client_opts, Bars::new(a.quiet))
        .await?;
    if a.quiet {
        say(format!("{r}"));
    } else {
        say(format!(
            "Digest: {}",
            rec.index.as_deref().unwrap_or(&rec.manifest)
        ));
        say(format!("Status: Downloaded newer image for {r}"));
        say(format!("{r}"));
    }
    Ok(())
}

async fn push(ctx: &Ctx, a: PushArgs) -> Result<()> {
    let p = berth_engine::images::Push::new(&ctx.store, &a.image, a.destination.as_deref())?;
    if !a.quiet {
        println!("The push refers to repository [{}]", p.dest.name());
    }
    let d = p
        .run(&ctx.store, &ctx.client_opts, Bars::new(a.quiet))
        .await?;
    println!("{}: digest: {} size: {}", d.tag, d.digest, d.size);
    Ok(())
}

fn images(ctx: &Ctx, a: LsArgs) -> Result<()> {
    let rows = berth_engine::images::list(&ctx.store, &a.filter, a.reference.as_deref())?;
    let id = |full: &str| {
        if a.no_trunc {
            full.to_string()
        } else {
            short(full).to_string()
        }
    };
    if a.quiet {
        let mut seen = std::collections::BTreeSet::new();
        for r in &rows {
            let id = id(&r.id);
            if seen.insert(id.clone()) {
                println!("{id}");
            }
        }
        return Ok(());
    }
    let format = match a.format.as_deref() {
        None | Some("") | Some("table") if a.digests => {
            "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
        }
        None | Some("") | Some("table") => {
            "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
        }
        Some(f) => f,
    };
    let t = berth_engine::template::Template::parse(format)?;
    let now = berth_engine::human::now_secs();
    let size = berth_engine::stats::human_size;
    let values: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let at = |c: i64| {
                let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(c.max(0) as u64);
                let s = berth_engine::record::rfc3339(t);
                format!("{} {} +0000 UTC", &s[..10], &s[11..19])
            };
            serde_json::json!({
                "Containers": "N/A",
                "CreatedAt": r.created.map(at).unwrap_or_default(),
                "CreatedSince": r.created.map_or("N/A".to_string(), |c| ago(now - c)),
                "Digest": r.digest,
                "ID": id(&r.id),
                "Repository": r.repository,
                "SharedSize": "N/A",
                "Size": size(r.size),
                "Tag": r.tag,
                "UniqueSize": "N/A",
                "VirtualSize": size(r.size),
            })
        })
        .collect();
    let header = |k: &str| {
        Some(
            match k {
                "ID" => "IMAGE ID",
                "CreatedSince" => "CREATED",
                "CreatedAt" => "CREATED AT",
                _ => return None,
            }
            .to_string(),
        )
    };
    print!("{}", t.render_all(&values, &header)?);
    Ok(())
}

pub use berth_engine::human::ago;

pub fn human(n: u64) -> String {
    let f = n as f64;
    if f >= 1e9 {
        format!("{:.3}GB", f / 1e9)
    } else if f >= 1e6 {
        format!("{:.3}MB", f / 1e6)
    } else if f >= 1e3 {
        format!("{:.3}kB", f / 1e3)
    } else {
        format!("{n}B")
    }
}

fn rmi(ctx: &Ctx, a: RmArgs) -> Result<()> {
    let mut failed = Vec::new();
    for what in &a.images {
        match berth_engine::images::remove(&ctx.store, what, a.force) {
            Ok(done) => {
                for d in done {
                    match d {
                        Removed::Untagged(t) => println!("Untagged: {t}"),
                        Removed::Deleted(id) => println!("Deleted: {id}"),
                    }
                }
            }
            Err(e) => {
                print_error(&e.into());
                failed.push(what.clone());
            }
        }
    }
    berth_engine::images::gc(&ctx.store)?;
    if !failed.is_empty() {
        bail!("could not remove {}", failed.join(", "));
    }
    Ok(())
}

/// `image prune` for `system prune` (dangling images, or every unused one with `all`).
pub fn prune_images(g: &Globals, all: bool) -> Result<()> {
    let store = Store::open(&g.root).with_context(|| format!("open store {}", g.root.display()))?;
    let ctx = Ctx {
        store,
        client_opts: g.client_opts.clone(),
    };
    prune(&ctx, PruneArgs { all, force: true })
}

fn prune(ctx: &Ctx, a: PruneArgs) -> Result<()> {
    let _ = a.force;
    let (removed, bytes) = berth_engine::images::prune(&ctx.store, a.all)?;
    if !removed.is_empty() {
        println!("Deleted Images:");
        for r in &removed {
            println!("deleted: {r}");
        }
    }
    println!("Total reclaimed space: {}", human(bytes));
    Ok(())
}

fn tag(ctx: &Ctx, a: TagArgs) -> Result<()> {
    Ok(berth_engine::images::tag(&ctx.store, &a.source, &a.target)?)
}

fn inspect(ctx: &Ctx, a: InspectArgs) -> Result<()> {
    let mut out = Vec::new();
    for what in &a.images {
        out.push(berth_engine::images::inspect(&ctx.store, what)?);
    }
    match &a.format {
        Some(f) => {
            let t = berth_engine::template::Template::parse(f)?;
            for v in &out {
                println!("{}", t.render(v)?);
            }
        }
        None => println!("{}", serde_json::to_string_pretty(&out)?),
    }
    Ok(())
}

fn save(ctx: &Ctx, a: SaveArgs) -> Result<()> {
    let format: Format = a.format.parse()?;
    let imgs = berth_engine::images::save_targets(&ctx.store, &a.images)?;
    match &a.output {
        Some(p) => {
            let f = std::fs::File::create(p).with_context(|| format!("create {}", p.display()))?;
            let mut w = std::io::BufWriter::new(f);
            berth_engine::images::save(&ctx.store, &imgs, format, &mut w)?;
            w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        }
        None => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                bail!("refusing to write an archive to a terminal; use -o or redirect");
            }
            let mut w = std::io::BufWriter::new(stdout.lock());
            berth_engine::images::save(&ctx.store, &imgs, format, &mut w)?;
            w.flush()?;
        }
    }
    Ok(())
}

fn load(ctx: &Ctx, a: LoadArgs) -> Result<()> {
    let lines = match &a.input {
        Some(p) => {
            let f = std::fs::File::open(p).with_context(|| format!("open {}", p.display()))?;
            berth_engine::images::load(&ctx.store, std::io::BufReader::new(f))?
        }
        None => berth_engine::images::load(&ctx.store, std::io::stdin().lock())?,
    };
    for l in lines {
        println!("{l}");
    }
    Ok(())
}

/// docker's `history`: one row per entry of the image's history, newest first.
fn history(ctx: &Ctx, a: HistoryArgs) -> Result<()> {
    let rows = berth_engine::images::history(&ctx.store, &a.image)?;
    let id = |full: &str| {
        if a.no_trunc || full == "<missing>" {
            full.to_string()
        } else {
            short(full).to_string()
        }
    };
    if a.quiet {
        for r in &rows {
            println!("{}", id(&r.id));
        }
        return Ok(());
    }
    let format = match a.format.as_deref() {
        None | Some("") | Some("table") => {
            "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
        }
        Some(f) => f,
    };
    let t = berth_engine::template::Template::parse(format)?;
    let now = berth_engine::human::now_secs();
    let at = |c: i64| {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(c.max(0) as u64);
        let s = berth_engine::record::rfc3339(t);
        format!("{}Z", &s[..19])
    };
    let values: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            // docker: tabs in the command become spaces; 45 columns unless --no-trunc.
            let by = r.created_by.replace('\t', " ");
            let by = if a.no_trunc || by.chars().count() <= 45 {
                by
            } else {
                format!("{}…", by.chars().take(44).collect::<String>())
            };
            serde_json::json!({
                "ID": id(&r.id),
                "CreatedSince": if a.human { ago(now - r.created) } else { at(r.created) },
                "CreatedAt": at(r.created),
                "CreatedBy": by,
                "Size": if a.human { berth_engine::stats::human_size(r.size) } else { r.size.to_string() },
                "Comment": r.comment,
            })
        })
        .collect();
    let header = |k: &str| {
        Some(
            match k {
                "ID" => "IMAGE",
                "CreatedSince" => "CREATED",
                "CreatedAt" => "CREATED AT",
                "CreatedBy" => "CREATED BY",
                "Size" => "SIZE",
                "Comment" => "COMMENT",
                _ => return None,
            }
            .to_string(),
        )
    };
    print!("{}", t.render_all(&values, &header)?);
    Ok(())
}

fn import(ctx: &Ctx, a: ImportArgs) -> Result<()> {
    let r = a.reference.as_deref().map(Reference::parse).transpose()?;
    let opts = berth_image::unpack::UnpackOptions::default();
    let config = berth_engine::images::apply_changes(&a.change)?;
    let m = a.message.as_deref();
    let rec = if a.file == "-" {
        let mut input = std::io::stdin().lock();
        archive::import(&ctx.store, &mut input, r.as_ref(), config, m, &opts)?
    } else {
        let mut f = std::fs::File::open(&a.file).with_context(|| format!("open {}", a.file))?;
        archive::import(&ctx.store, &mut f, r.as_ref(), config, m, &opts)?
    };
    println!("{}", rec.config);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 17 item 12: global options once, at the top, with their real default; and
    /// still accepted after the command.
    #[test]
    fn global_options_listed_once_and_accepted_anywhere() {
        use clap::CommandFactory;
        assert!(GLOBAL_OPTIONS.contains(&format!("[default: {DEFAULT_ROOT}]")));
        let mut c = Cli::command();
        let top = c.render_help().to_string();
        assert!(top.contains("--insecure-registry"), "{top}");
        let ps = c
            .find_subcommand_mut("ps")
            .unwrap()
            .render_help()
            .to_string();
        assert!(!ps.contains("--root") && !ps.contains("--authfile"), "{ps}");
        for args in [
            ["berth", "--root", "/x", "ps"],
            ["berth", "ps", "--root", "/x"],
        ] {
            let cli = Cli::try_parse_from(args).unwrap();
            assert_eq!(cli.root, std::path::PathBuf::from("/x"));
        }
    }

    #[test]
    fn ago_words() {
        assert_eq!(ago(0), "Less than a second ago");
        assert_eq!(ago(75), "About a minute ago");
        assert_eq!(ago(3 * 86400), "3 days ago");
        assert_eq!(ago(400 * 86400), "13 months ago");
    }

    #[test]
    fn registry_hosts() {
        assert_eq!(registry_host("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(registry_host("127.0.0.1:5000"), "127.0.0.1:5000");
    }
}
