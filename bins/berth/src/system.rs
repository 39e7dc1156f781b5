//! `berth system`: host-wide chores. `boot` starts, after a reboot, the containers whose
//! restart policy asks for it (berth has no daemon to do it when it starts; a boot unit
//! runs this, see contrib/berth-boot.service and berth_engine::boot for the rules).

use crate::containers::{engine_err, open, report, short_id, Eng};
use crate::Globals;
use anyhow::{anyhow, bail, Result};
use berth_engine::boot::{self, Action};
use berth_engine::{create, status, Error as EngErr};

#[derive(clap::Subcommand)]
#[command(defer = true)]
pub enum Cmd {
    /// Start the containers a reboot stopped, by their restart policy (always;
    /// unless-stopped unless stopped by the user; on-failure after a failure), and remove
    /// the --rm containers it left behind. Run once at boot (contrib/berth-boot.service).
    Boot,
    /// Remove stopped containers, unused networks, dangling images (all unused ones with
    /// -a) and, with --volumes, unused anonymous volumes
    Prune(PruneArgs),
    /// Show disk usage: images, containers, local volumes, build cache
    Df(DfArgs),
    /// Display system-wide information
    Info(FormatArgs),
    /// Serve the Docker Engine API on a unix socket (the same as `berth serve`)
    Service(ServeArgs),
}

/// `info` and `version` at the top level, as docker has them.
#[derive(clap::Subcommand)]
#[command(defer = true)]
pub enum TopCmd {
    /// Display system-wide information
    Info(FormatArgs),
    /// Show the Berth version information
    Version(FormatArgs),
    /// Serve the Docker Engine API (v1.41) on a unix socket, for the docker CLI,
    /// docker-compose and the Docker SDKs; containers outlive the server
    Serve(ServeArgs),
}

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Where to listen: unix:///PATH, or tcp://ADDRESS:PORT with --tlsverify
    #[arg(
        short = 'H',
        long = "host",
        default_value = "unix:///run/berth/berth.sock"
    )]
    host: String,
    /// A group whose members may use the socket (mode 0660; else root only, 0600)
    #[arg(long)]
    group: Option<String>,
    /// Exit after this many seconds without a request (0: never)
    #[arg(short = 't', long = "timeout", default_value_t = 0)]
    timeout: u64,
    /// Use TLS and verify the client's certificate (the only way to listen on tcp://)
    #[arg(long)]
    tlsverify: bool,
    /// Trust client certificates signed by this CA only
    #[arg(long, value_name = "FILE")]
    tlscacert: Option<std::path::PathBuf>,
    /// The server's TLS certificate
    #[arg(long, value_name = "FILE")]
    tlscert: Option<std::path::PathBuf>,
    /// The server's TLS key
    #[arg(long, value_name = "FILE")]
    tlskey: Option<std::path::PathBuf>,
}

/// `berth serve`: runs the API server until SIGINT/SIGTERM or `--timeout` of quiet.
fn serve(g: &Globals, a: ServeArgs) -> Result<()> {
    let tls = match (a.tlsverify, a.tlscacert, a.tlscert, a.tlskey) {
        (false, None, None, None) => None,
        (true, Some(ca), Some(cert), Some(key)) => Some(berth_api::TlsFiles { ca, cert, key }),
        (false, ..) => bail!("--tlscacert, --tlscert and --tlskey need --tlsverify (TLS without client verification is not offered)"),
        (true, ..) => bail!("--tlsverify needs --tlscacert, --tlscert and --tlskey"),
    };
    let o = berth_api::ServeOptions {
        listen: berth_api::listen_of(&a.host, tls)?,
        group: a.group,
        idle: (a.timeout > 0).then(|| std::time::Duration::from_secs(a.timeout)),
        root: g.root.clone(),
        client_opts: g.client_opts.clone(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow!("tokio runtime: {e}"))?;
    let served = rt.block_on(berth_api::serve(o, |p| {
        eprintln!(
            "berth serve: API v{} listening on {p}",
            berth_api::API_VERSION
        )
    }));
    // A stream's blocking reader (logs -f, events) would hold the runtime's drop; the
    // process exits instead.
    rt.shutdown_background();
    served?;
    Ok(())
}

#[derive(clap::Args)]
pub struct FormatArgs {
    /// Format the output using the given Go template
    #[arg(short, long)]
    format: Option<String>,
}

#[derive(clap::Args)]
pub struct DfArgs {
    /// Show detailed information on space usage
    #[arg(short, long)]
    verbose: bool,
    /// Format the output using the given Go template
    #[arg(long)]
    format: Option<String>,
}

#[derive(clap::Args)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
    /// Prune anonymous volumes
    #[arg(long)]
    volumes: bool,
}

pub fn dispatch(g: &Globals, c: Cmd) -> i32 {
    let e = match open(g) {
        Ok(e) => e,
        Err(x) => return report(Err(x)),
    };
    match c {
        Cmd::Service(a) => report(serve(g, a)),
        Cmd::Boot => boot_all(&e),
        Cmd::Prune(a) => report(prune(g, &e, a)),
        Cmd::Df(a) => report(df(&e, a)),
        Cmd::Info(a) => report(info(&e, a)),
    }
}

pub fn dispatch_top(g: &Globals, c: TopCmd) -> i32 {
    match c {
        TopCmd::Serve(a) => report(serve(g, a)),
        // version needs no storage root.
        TopCmd::Version(a) => report(version(a)),
        TopCmd::Info(a) => match open(g) {
            Ok(e) => report(info(&e, a)),
            Err(x) => report(Err(x)),
        },
    }
}

fn print_template(format: &str, v: &serde_json::Value) -> Result<()> {
    let t = berth_engine::template::Template::parse(format)?;
    println!("{}", t.render(v)?);
    Ok(())
}

/// docker's `version`: the client (this binary) and the engine (the same code: Berth has
/// no daemon) with its runtime.
fn version(a: FormatArgs) -> Result<()> {
    use berth_engine::info;
    let server = info::version();
    let client = serde_json::json!({
        "Platform": {"Name": "Berth"},
        "Version": info::VERSION,
        "ApiVersion": info::API_VERSION,
        "Os": "linux",
        "Arch": info::go_arch(),
    });
    let v = serde_json::json!({"Client": client, "Server": server});
    if let Some(f) = &a.format {
        return print_template(f, &v);
    }
    let rt = &server["Components"][1];
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    println!("Client:");
    println!(" Version:           {}", info::VERSION);
    println!(" API version:       {}", info::API_VERSION);
    println!(" OS/Arch:           linux/{}", info::go_arch());
    println!();
    println!("Server: Berth (daemonless: the engine runs in each command)");
    println!(" Engine:");
    println!("  Version:          {}", info::VERSION);
    println!(
        "  API version:      {} (minimum version {})",
        info::API_VERSION,
        s(&server["MinAPIVersion"])
    );
    println!("  OS/Arch:          linux/{}", info::go_arch());
    println!("  Kernel Version:   {}", s(&server["KernelVersion"]));
    println!(" berth-runtime:");
    println!("  Version:          {}", s(&rt["Version"]));
    println!("  Path:             {}", s(&rt["Details"]["Path"]));
    Ok(())
}

/// docker's `info` layout.
fn info(e: &Eng, a: FormatArgs) -> Result<()> {
    let v = berth_engine::info::info(&e.layout, &e.store).map_err(|x| engine_err(e, x))?;
    if let Some(f) = &a.format {
        return print_template(f, &v);
    }
    let s = |k: &str| berth_engine::template::to_text(&v[k]);
    let list = |k: &str| {
        v[k].as_array()
            .map(|a| {
                a.iter()
                    .map(berth_engine::template::to_text)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
            .join(" ")
    };
    let mut o = String::new();
    let mut w = |l: String| {
        o.push_str(&l);
        o.push('\n');
    };
    w("Client:".into());
    w(format!(" Version:    {}", berth_engine::info::VERSION));
    w(" Debug Mode: false".into());
    w(String::new());
    w("Server:".into());
    w(format!(" Containers: {}", s("Containers")));
    w(format!("  Running: {}", s("ContainersRunning")));
    w(format!("  Paused: {}", s("ContainersPaused")));
    w(format!("  Stopped: {}", s("ContainersStopped")));
    w(format!(" Images: {}", s("Images")));
    w(format!(" Server Version: {}", s("ServerVersion")));
    w(format!(" Storage Driver: {}", s("Driver")));
    for kv in v["DriverStatus"].as_array().into_iter().flatten() {
        w(format!(
            "  {}: {}",
            berth_engine::template::to_text(&kv[0]),
            berth_engine::template::to_text(&kv[1])
        ));
    }
    w(format!(" Logging Driver: {}", s("LoggingDriver")));
    w(format!(" Cgroup Driver: {}", s("CgroupDriver")));
    w(format!(" Cgroup Version: {}", s("CgroupVersion")));
    w(" Plugins:".into());
    let plugins = &v["Plugins"];
    for k in ["Volume", "Network", "Log"] {
        let names: Vec<String> = plugins[k]
            .as_array()
            .into_iter()
            .flatten()
            .map(berth_engine::template::to_text)
            .collect();
        w(format!("  {k}: {}", names.join(" ")));
    }
    w(format!(" Runtimes: {}", s("DefaultRuntime")));
    w(format!(" Default Runtime: {}", s("DefaultRuntime")));
    w(format!(" Runtime Version: {}", s("RuntimeVersion")));
    w(format!(" Init Binary: {}", s("InitBinary")));
    w(" Security Options:".into());
    w("  seccomp".into());
    w("   Profile: default".into());
    w("  no-new-privileges".into());
    w(format!(" Kernel Version: {}", s("KernelVersion")));
    w(format!(" Operating System: {}", s("OperatingSystem")));
    w(format!(" OSType: {}", s("OSType")));
    w(format!(" Architecture: {}", s("Architecture")));
    w(format!(" CPUs: {}", s("NCPU")));
    w(format!(
        " Total Memory: {}",
        berth_engine::stats::bytes_size(v["MemTotal"].as_u64().unwrap_or(0))
    ));
    w(format!(" Name: {}", s("Name")));
    w(format!(" Berth Root Dir: {}", s("DockerRootDir")));
    w(" Debug Mode: false".into());
    w(format!(" Labels: {}", list("Labels")));
    w(" Experimental: false".into());
    w(format!(
        " Live Restore Enabled: {}",
        s("LiveRestoreEnabled")
    ));
    if s("IPv4Forwarding") != "true" {
        w(String::new());
        w("WARNING: IPv4 forwarding is disabled (published ports reach containers only where berth turns it on: the namespace its networks live in)".into());
    }
    print!("{o}");
    Ok(())
}

/// docker's `system df`.
fn df(e: &Eng, a: DfArgs) -> Result<()> {
    use berth_engine::stats::human_size;
    if a.verbose {
        anyhow::bail!("berth system df: -v/--verbose is not supported yet");
    }
    let d = berth_engine::info::disk_usage(&e.layout, &e.store).map_err(|x| engine_err(e, x))?;
    let rows = [
        ("Images", &d.images),
        ("Containers", &d.containers),
        ("Local Volumes", &d.volumes),
        ("Build Cache", &d.build_cache),
    ];
    let pct = |r: &berth_engine::info::DfRow| {
        (r.reclaimable * 100)
            .checked_div(r.size)
            .map_or(String::new(), |p| format!(" ({p}%)"))
    };
    let values: Vec<serde_json::Value> = rows
        .iter()
        .map(|(t, r)| {
            serde_json::json!({
                "Type": t,
                "TotalCount": r.total.to_string(),
                "Active": r.active.to_string(),
                "Size": human_size(r.size),
                "Reclaimable": format!("{}{}", human_size(r.reclaimable), pct(r)),
            })
        })
        .collect();
    if let Some(f) = &a.format {
        let t = berth_engine::template::Template::parse(f)?;
        for v in &values {
            println!("{}", t.render(v)?);
        }
        return Ok(());
    }
    println!(
        "{:<16}{:<10}{:<10}{:<10}RECLAIMABLE",
        "TYPE", "TOTAL", "ACTIVE", "SIZE"
    );
    for v in &values {
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        println!(
            "{:<16}{:<10}{:<10}{:<10}{}",
            s("Type"),
            s("TotalCount"),
            s("Active"),
            s("Size"),
            s("Reclaimable")
        );
    }
    Ok(())
}

/// Prints the ID of each container started; a failure is reported and the rest still
/// handled (exit 125 if any failed).
fn boot_all(e: &Eng) -> i32 {
    // What the crash or reboot left half-made goes first.
    if let Err(x) = berth_engine::inventory::sweep(&e.layout, &e.store)
        .and_then(|()| berth_engine::inventory::sweep_orphan_rootfs(&e.layout, &e.store))
    {
        crate::print_error(&engine_err(e, x).context("boot: sweep"));
    }
    let ids = match e.layout.container_ids() {
        Ok(ids) => ids,
        Err(x) => return report(Err(x.into())),
    };
    let mut failed = Vec::new();
    for id in ids {
        // A container removed meanwhile is simply skipped.
        let Ok(c) = e.layout.load_config(&id) else {
            continue;
        };
        let Ok(s) = status::current(&e.layout, &id) else {
            continue;
        };
        let r: Result<()> = match boot::action(&c, &s) {
            Action::Leave => Ok(()),
            Action::Start => match create::start_container(&e.layout, &e.store, &id, false) {
                Ok(h) => {
                    if !h.already_running {
                        println!("{id}");
                    }
                    Ok(())
                }
                Err(EngErr::Protocol(m)) => Err(anyhow!(m)),
                Err(x) => Err(engine_err(e, x)),
            },
            Action::Remove => {
                berth_engine::remove::remove_container(&e.layout, &e.store, &id, true)
                    .map_err(|x| engine_err(e, x))
            }
        };
        if let Err(x) = r {
            crate::print_error(&x.context(format!("boot: container {}", short_id(&id))));
            failed.push(c.name);
        }
    }
    if failed.is_empty() {
        0
    } else {
        eprintln!("Error: failed to start containers: {}", failed.join(", "));
        125
    }
}

/// docker's `system prune`: containers first (so their networks, images and volumes are
/// unused after), then networks (bridges and rules go with them), images, volumes.
fn prune(g: &Globals, e: &Eng, a: PruneArgs) -> Result<()> {
    if !a.force {
        use std::io::Write;
        let mut what = vec![
            "all stopped containers",
            "all networks not used by at least one container",
        ];
        if a.volumes {
            what.push("all anonymous volumes not used by at least one container");
        }
        what.push(if a.all {
            "all images without at least one container associated to them"
        } else {
            "all dangling images"
        });
        println!("WARNING! This will remove:");
        for w in &what {
            println!("  - {w}");
        }
        print!("\nAre you sure you want to continue? [y/N] ");
        std::io::stdout().flush()?;
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        if !matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            return Ok(());
        }
    }
    crate::containers::prune_containers(e)?;
    let gone = berth_engine::net::Networks::new(&e.layout)
        .prune()
        .map_err(|x| engine_err(e, x))?;
    if !gone.is_empty() {
        println!("Deleted Networks:");
        for n in gone {
            println!("{n}");
        }
        println!();
    }
    if a.volumes {
        let (names, _) = berth_engine::volumes::prune(&e.layout, false)?;
        if !names.is_empty() {
            println!("Deleted Volumes:");
            for n in names {
                println!("{n}");
            }
            println!();
        }
    }
    crate::prune_images(g, a.all)
}
