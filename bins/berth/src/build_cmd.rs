//! `berth build`: docker's flags resolved into berth_build::BuildOptions; the build
//! itself is berth_build::build.

use crate::Globals;
use anyhow::{anyhow, bail, Result};
use berth_build::{BuildOptions, ContextSource, DockerfileSource};
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct BuildArgs {
    /// Name and optionally a tag in the 'name:tag' format (repeatable)
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// Name of the Dockerfile (default: 'PATH/Dockerfile'; '-' reads it from stdin)
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    /// Set build-time variables (KEY=VALUE, or KEY to take it from the environment)
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// Set the target build stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use the build cache
    #[arg(long)]
    pub no_cache: bool,
    /// Always pull the base images, even when they are in the store
    #[arg(long)]
    pub pull: bool,
    /// Set metadata for an image (KEY=VALUE, repeatable)
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Suppress the build output and print the image ID on success
    #[arg(short, long)]
    pub quiet: bool,
    /// Write the image ID to the file
    #[arg(long)]
    pub iidfile: Option<PathBuf>,
    /// Type of progress output: auto (tty on a terminal, else plain), plain or tty
    #[arg(long, default_value = "auto", value_parser = ["auto", "plain", "tty"])]
    pub progress: String,
    /// Networking for the RUN instructions: default, none, host or a network's name
    #[arg(long)]
    pub network: Option<String>,
    /// Target platform (only this host's platform)
    #[arg(long)]
    pub platform: Option<String>,
    /// Secret file exposed to RUN --mount=type=secret (id=ID,src=PATH)
    #[arg(long = "secret")]
    pub secrets: Vec<String>,
    /// Reproducible image: timestamps from SOURCE_DATE_EPOCH (or 0) in the config, the
    /// history and the layers; false keeps the clock's and the files' own
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "true|false")]
    pub reproducible: bool,
    /// Build context: a directory, a tar archive (a path or a file:// URL), or '-' for a tar on stdin
    pub context: String,
}

/// The CLI's side of a build: pulls with their progress on stderr, build lines on
/// stderr unless quiet (also `compose build`'s).
pub(crate) struct Cli<'a> {
    g: &'a Globals,
    quiet: bool,
    /// `--progress tty`: the view redrawn in place.
    tty: Option<berth_build::progress::Tty>,
}

impl<'a> Cli<'a> {
    pub(crate) fn new(g: &'a Globals, quiet: bool) -> Cli<'a> {
        Cli {
            g,
            quiet,
            tty: None,
        }
    }

    /// The tty view's last frame, once the build ended.
    fn finish(&mut self, ok: bool) {
        if let Some(t) = self.tty.as_mut() {
            let _ = write!(std::io::stderr().lock(), "{}", t.finish(ok));
        }
    }
}

/// `--progress`: the tty view's width, or None for plain lines.
fn progress(mode: &str, quiet: bool) -> Result<Option<usize>> {
    use std::io::IsTerminal;
    let term = std::io::stderr().is_terminal();
    if mode == "tty" && !term {
        bail!("--progress tty: standard error is not a terminal (use --progress plain)");
    }
    if quiet || mode == "plain" || !term {
        return Ok(None);
    }
    let width = rustix::termios::tcgetwinsize(std::io::stderr())
        .map(|w| w.ws_col as usize)
        .ok()
        .filter(|w| *w > 0)
        .unwrap_or(80);
    Ok(Some(width))
}

impl berth_engine::run::Frontend for Cli<'_> {
    fn pull(&mut self, image: &str, platform: Option<&str>) -> berth_engine::Result<()> {
        crate::pull_image_for(self.g, image, platform, self.quiet)
            .map_err(|e| berth_engine::Error::Invalid(crate::chain(&e)))
    }
    fn say(&mut self, line: &str) {
        if self.quiet {
            return;
        }
        match self.tty.as_mut() {
            Some(t) => {
                if let Some(frame) = t.line(line) {
                    let _ = write!(std::io::stderr().lock(), "{frame}");
                }
            }
            None => {
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
        }
    }
}

fn options(a: &BuildArgs) -> Result<BuildOptions> {
    let e = |m: String| anyhow!(m);
    let stdin_df = a.file.as_deref() == Some("-");
    if stdin_df && a.context == "-" {
        bail!("invalid argument: can't use stdin for both build context and dockerfile");
    }
    let lower = a.context.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("git@") {
        bail!(
            "unable to prepare context: remote contexts ({}) are not supported: give a \
             directory, a tar archive or - for a tar on stdin",
            a.context
        );
    }
    let context = if a.context == "-" {
        ContextSource::Tar(Box::new(std::io::stdin()))
    } else {
        // A file:// URL names a directory or a tar on this machine.
        let local = match a.context.get(..7) {
            Some(s) if s.eq_ignore_ascii_case("file://") => &a.context[7..],
            _ => a.context.as_str(),
        };
        let p = PathBuf::from(local);
        if p.is_file() {
            let f = std::fs::File::open(&p)
                .map_err(|x| anyhow!("unable to prepare context: {}: {x}", p.display()))?;
            ContextSource::Tar(Box::new(f))
        } else {
            ContextSource::Dir(p)
        }
    };
    let dockerfile = match a.file.as_deref() {
        None => DockerfileSource::Default,
        Some("-") => {
            let mut t = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut t)
                .map_err(|x| anyhow!("read the Dockerfile from stdin: {x}"))?;
            DockerfileSource::Text(t)
        }
        Some(f) => DockerfileSource::Path(PathBuf::from(f)),
    };
    berth_build::flags::platform(a.platform.as_deref()).map_err(e)?;
    let build_args =
        berth_build::flags::build_args(&a.build_args, &|k| std::env::var(k).ok()).map_err(e)?;
    let mut secrets = std::collections::BTreeMap::new();
    for s in &a.secrets {
        let (id, src) = berth_build::flags::secret(s).map_err(e)?;
        secrets.insert(id, src);
    }
    let epoch = berth_build::flags::epoch(
        a.reproducible,
        &build_args,
        std::env::var("SOURCE_DATE_EPOCH").ok(),
    )
    .map_err(e)?;
    Ok(BuildOptions {
        context,
        dockerfile,
        tags: a.tags.clone(),
        build_args,
        target: a.target.clone(),
        no_cache: a.no_cache,
        pull: a.pull,
        labels: berth_build::flags::labels(&a.labels).map_err(e)?,
        network: berth_build::flags::network(a.network.as_deref()).map_err(e)?,
        secrets,
        epoch,
    })
}

pub fn run(g: &Globals, a: BuildArgs) -> i32 {
    match build(g, &a) {
        Ok(()) => 0,
        Err(e) => {
            crate::print_error(&e);
            1
        }
    }
}

fn build(g: &Globals, a: &BuildArgs) -> Result<()> {
    let width = progress(&a.progress, a.quiet)?;
    let opts = options(a)?;
    let eng = crate::containers::open(g)?;
    // A signal stops the build: its RUN container is killed, and what it made removed.
    let (layout, store) = (eng.layout.clone(), eng.store.clone());
    let sigs = [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ];
    if let Ok(mut signals) = signal_hook::iterator::Signals::new(sigs) {
        std::thread::spawn(move || {
            for _ in signals.forever() {
                berth_build::cancel(&layout, &store);
            }
        });
    }
    let mut fe = Cli::new(g, a.quiet);
    fe.tty = width.map(berth_build::progress::Tty::new);
    let built = berth_build::build(&eng.layout, &eng.store, opts, &mut fe);
    fe.finish(built.is_ok());
    let built = built.map_err(|x| anyhow!(berth_engine::error::chain(&x)))?;
    if let Some(p) = &a.iidfile {
        std::fs::write(p, &built.id)
            .map_err(|x| anyhow!("write the image ID to {}: {x}", p.display()))?;
    }
    if a.quiet {
        println!("{}", built.id);
    }
    Ok(())
}

#[derive(clap::Subcommand)]
#[command(defer = true)]
pub enum BuilderCmd {
    /// Remove the build cache (cached layers and RUN cache mounts)
    Prune(BuilderPruneArgs),
}

#[derive(clap::Args)]
pub struct BuilderPruneArgs {
    /// Remove all build cache (the only kind Berth keeps)
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation (prune never prompts)
    #[arg(short, long)]
    pub force: bool,
}

pub fn builder(g: &Globals, c: BuilderCmd) -> i32 {
    let BuilderCmd::Prune(_) = c;
    let r = crate::containers::open(g).and_then(|eng| {
        berth_build::prune(&eng.store).map_err(|x| anyhow!(berth_engine::error::chain(&x)))
    });
    match r {
        Ok((_, bytes)) => {
            println!(
                "Total reclaimed space: {}",
                berth_engine::stats::human_size(bytes)
            );
            0
        }
        Err(e) => {
            crate::print_error(&e);
            1
        }
    }
}
