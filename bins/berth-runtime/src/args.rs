//! Raw command-line flags (runc's), resolved into ready options.

use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

pub use berth_runtime_core::state::DEFAULT_ROOT;

#[derive(Parser, Debug)]
#[command(
    name = "berth-runtime",
    // runc's shape (`runc version`, `commit:`, `spec:`, then its toolchain).
    version = concat!(
        "version ", env!("CARGO_PKG_VERSION"),
        "\ncommit: ", env!("BERTH_BUILD_COMMIT"),
        "\nspec: 1.2.0",
        "\nrustc: ", env!("BERTH_BUILD_RUSTC"),
        "\nbuild: ", env!("BERTH_BUILD_INFO"),
        "\nseccomp: built in (no libseccomp)"
    ),
    about = "Open Container Initiative runtime (runc's command line)",
    // runc's -v as well as --version.
    disable_version_flag = true
)]
struct Low {
    /// print the version
    #[arg(short = 'v', long = "version", action = clap::ArgAction::Version)]
    version: Option<bool>,
    /// Root directory for container state.
    #[arg(long, global = true, default_value = DEFAULT_ROOT)]
    root: PathBuf,
    /// Log file (default: stderr).
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long = "log-format", global = true, default_value = "text")]
    log_format: String,
    /// Debug logging.
    #[arg(long, global = true)]
    debug: bool,
    /// Use systemd for cgroups (needs a running systemd).
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// runc's --rootless (auto, true, false); only "auto" and "false" are meaningful as root.
    #[arg(long = "rootless", id = "rootless_global")]
    rootless: Option<String>,
    /// Path to the criu binary for checkpoint and restore.
    #[arg(long, global = true, default_value = "criu")]
    criu: PathBuf,
    #[command(subcommand)]
    cmd: Low2,
}

#[derive(clap::Args, Debug, Clone)]
pub struct CreateArgs {
    pub id: String,
    /// Bundle directory (default: cwd).
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Unix socket that receives a pidfd of init.
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    /// File to write init's pid to.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Do not use pivot_root (move the rootfs and chroot).
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N fds beyond stdio (3..3+N) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ExecArgs {
    pub id: String,
    /// The command and its arguments (unless --process).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// A JSON runtime-spec process document.
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// NAME=VALUE, repeatable.
    #[arg(short = 'e', long)]
    pub env: Vec<String>,
    #[arg(short = 't', long)]
    pub tty: bool,
    /// uid[:gid]
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<String>,
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    #[arg(long)]
    pub apparmor: Option<String>,
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Add a capability, repeatable.
    #[arg(short = 'c', long = "cap")]
    pub cap: Vec<String>,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Run the process in an (existing) sub-cgroup(s). Format is [<controller>:]<cgroup>.
    #[arg(long)]
    pub cgroup: Vec<String>,
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
}

/// runc 1.1's checkpoint flags.
#[derive(clap::Args, Debug, Clone)]
pub struct CheckpointArgs {
    pub id: String,
    /// path for saving criu image files
    #[arg(long = "image-path")]
    pub image_path: Option<PathBuf>,
    /// path for saving work files and logs
    #[arg(long = "work-path")]
    pub work_path: Option<PathBuf>,
    /// path for previous criu image files in pre-dump
    #[arg(long = "parent-path")]
    pub parent_path: Option<String>,
    /// leave the process running after checkpointing
    #[arg(long = "leave-running")]
    pub leave_running: bool,
    /// allow open tcp connections
    #[arg(long = "tcp-established")]
    pub tcp_established: bool,
    /// allow external unix sockets
    #[arg(long = "ext-unix-sk")]
    pub ext_unix_sk: bool,
    /// allow shell jobs
    #[arg(long = "shell-job")]
    pub shell_job: bool,
    /// use userfaultfd to lazily restore memory pages
    #[arg(long = "lazy-pages")]
    pub lazy_pages: bool,
    /// criu writes \0 to this FD once lazy-pages is ready
    #[arg(long = "status-fd", default_value_t = -1, allow_negative_numbers = true)]
    pub status_fd: i32,
    /// ADDRESS:PORT of the page server
    #[arg(long = "page-server")]
    pub page_server: Option<String>,
    /// handle file locks, for safety
    #[arg(long = "file-locks")]
    pub file_locks: bool,
    /// dump container's memory information only, leave the container running after this
    #[arg(long = "pre-dump")]
    pub pre_dump: bool,
    /// cgroups mode: 'soft' (default), 'full' and 'strict'
    #[arg(long = "manage-cgroups-mode")]
    pub manage_cgroups_mode: Option<String>,
    /// create a namespace, but don't restore its properties
    #[arg(long = "empty-ns")]
    pub empty_ns: Vec<String>,
    /// enable auto deduplication of memory images
    #[arg(long = "auto-dedup")]
    pub auto_dedup: bool,
}

/// runc 1.1's restore flags.
#[derive(clap::Args, Debug, Clone)]
pub struct RestoreArgs {
    pub id: String,
    /// path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// path to criu image files for restoring
    #[arg(long = "image-path")]
    pub image_path: Option<PathBuf>,
    /// path for saving work files and logs
    #[arg(long = "work-path")]
    pub work_path: Option<PathBuf>,
    /// allow open tcp connections
    #[arg(long = "tcp-established")]
    pub tcp_established: bool,
    /// allow external unix sockets
    #[arg(long = "ext-unix-sk")]
    pub ext_unix_sk: bool,
    /// allow shell jobs
    #[arg(long = "shell-job")]
    pub shell_job: bool,
    /// handle file locks, for safety
    #[arg(long = "file-locks")]
    pub file_locks: bool,
    /// cgroups mode: 'soft' (default), 'full' and 'strict'
    #[arg(long = "manage-cgroups-mode")]
    pub manage_cgroups_mode: Option<String>,
    /// path to the root of the bundle directory
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// detach from the container's process
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// specify the file to write the process id to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// disable the use of the subreaper used to reap reparented processes
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    /// do not use pivot root to jail process inside rootfs (criu restores the mounts: no effect)
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// create a namespace, but don't restore its properties
    #[arg(long = "empty-ns")]
    pub empty_ns: Vec<String>,
    /// enable auto deduplication of memory images
    #[arg(long = "auto-dedup")]
    pub auto_dedup: bool,
    /// use userfaultfd to lazily restore memory pages
    #[arg(long = "lazy-pages")]
    pub lazy_pages: bool,
    /// Specify an LSM profile to be used during restore in the form of TYPE:NAME.
    #[arg(long = "lsm-profile")]
    pub lsm_profile: Option<String>,
    /// Specify an LSM mount context to be used during restore.
    #[arg(long = "lsm-mount-context")]
    pub lsm_mount_context: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Low2 {
    /// checkpoint a running container
    Checkpoint(CheckpointArgs),
    /// restore a container from a previous checkpoint
    Restore(RestoreArgs),
    /// Create a container (parked before exec until `start`).
    Create(CreateArgs),
    /// Create and start a container.
    Run {
        #[command(flatten)]
        c: CreateArgs,
        /// Detach from the container's process.
        #[arg(short = 'd', long)]
        detach: bool,
        /// Do not delete the container after it exits.
        #[arg(long)]
        keep: bool,
    },
    /// Start a created container.
    Start { id: String },
    /// Print a container's state as JSON.
    State { id: String },
    /// Send a signal to a container's init (or all its processes).
    Kill {
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
        #[arg(short = 'a', long)]
        all: bool,
    },
    /// Delete a container.
    Delete {
        id: String,
        #[arg(short = 'f', long)]
        force: bool,
    },
    /// Freeze every process of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// List containers.
    List {
        #[arg(short = 'f', long, default_value = "table")]
        format: String,
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Processes of a container.
    Ps {
        id: String,
        #[arg(short = 'f', long, default_value = "table")]
        format: String,
        /// ps(1) options, after the id as runc takes them (`ps ID -e -x`; `--` allowed).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Create a new specification file (config.json): runc's.
    Spec {
        /// Path to the root of the bundle directory.
        #[arg(short = 'b', long, default_value = ".")]
        bundle: PathBuf,
        /// Generate a configuration for a rootless container.
        #[arg(long)]
        rootless: bool,
        /// berth's hardened default instead: moby's seccomp profile, no ambient capabilities.
        #[arg(long)]
        hardened: bool,
    },
    /// Print the runtime-spec features document.
    Features,
    /// Run a new process inside a container.
    Exec(ExecArgs),
    /// Change a running container's resource limits.
    Update(crate::cgroup_cmds::UpdateArgs),
    /// Stream a container's events (oom, stats) as JSON.
    Events {
        id: String,
        /// Print one stats snapshot and exit.
        #[arg(long)]
        stats: bool,
        /// Interval between stats events.
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        interval: std::time::Duration,
    },
}

/// Global options, resolved.
#[derive(Debug, Clone)]
pub struct Global {
    pub root: PathBuf,
    pub log: Option<PathBuf>,
    pub json: bool,
    pub debug: bool,
    pub systemd_cgroup: bool,
    pub criu: PathBuf,
}

/// A command with its options resolved.
#[derive(Debug)]
pub enum Command {
    Checkpoint(CheckpointArgs),
    Restore(RestoreArgs),
    Create(CreateArgs),
    Run(CreateArgs, bool, bool),
    Start {
        id: String,
    },
    State {
        id: String,
    },
    Kill {
        id: String,
        signal: String,
        all: bool,
    },
    Delete {
        id: String,
        force: bool,
    },
    Pause {
        id: String,
    },
    Resume {
        id: String,
    },
    List {
        format: String,
        quiet: bool,
    },
    Ps {
        id: String,
        format: String,
        ps_args: Vec<String>,
    },
    Spec {
        bundle: PathBuf,
        rootless: bool,
        hardened: bool,
    },
    Features,
    Exec(ExecArgs),
    Update(crate::cgroup_cmds::UpdateArgs),
    Events {
        id: String,
        stats: bool,
        interval: std::time::Duration,
    },
}

impl Command {
    /// runc's name of the command, for log lines.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Checkpoint(_) => "checkpoint",
            Command::Restore(_) => "restore",
            Command::Create(_) => "create",
            Command::Run(..) => "run",
            Command::Start { .. } => "start",
            Command::State { .. } => "state",
            Command::Kill { .. } => "kill",
            Command::Delete { .. } => "delete",
            Command::Pause { .. } => "pause",
            Command::Resume { .. } => "resume",
            Command::List { .. } => "list",
            Command::Ps { .. } => "ps",
            Command::Spec { .. } => "spec",
            Command::Features => "features",
            Command::Exec(_) => "exec",
            Command::Update(_) => "update",
            Command::Events { .. } => "events",
        }
    }
}

pub fn parse() -> (Global, Command) {
    if let Some(parsed) = parse_plain() {
        return parsed;
    }
    // runc (urfave/cli) exits 3 for an unknown command and 1 for other
    // usage errors.
    let low = match runc_shaped()
        .try_get_matches()
        .and_then(|m| Low::from_arg_matches(&m))
    {
        Ok(l) => l,
        Err(e) => {
            use clap::error::{ContextKind, ContextValue, ErrorKind as K};
            let code = match e.kind() {
                K::DisplayHelp | K::DisplayVersion => 0,
                K::InvalidSubcommand => 3,
                _ => 1,
            };
            if e.kind() == K::InvalidSubcommand {
                // runc (urfave/cli): an error line, no usage text.
                if let Some(ContextValue::String(name)) = e.get(ContextKind::InvalidSubcommand) {
                    let g = Global {
                        root: DEFAULT_ROOT.into(),
                        log: None,
                        json: false,
                        debug: false,
                        systemd_cgroup: false,
                        criu: "criu".into(),
                    };
                    crate::log::Logger::new(&g).error(&format!("No help topic for '{name}'"));
                    std::process::exit(code);
                }
            }
            let _ = e.print();
            std::process::exit(code);
        }
    };
    resolve(low)
}

/// The command tree with runc's (urfave/cli's) help shape: NAME, USAGE,
/// VERSION, COMMANDS and GLOBAL OPTIONS at the top; NAME, USAGE and OPTIONS
/// for each command.
fn runc_shaped() -> clap::Command {
    let version = Low::command()
        .get_version()
        .unwrap_or_default()
        .trim_start_matches("version ")
        .to_string();
    let top = format!(
        "NAME:\n   {{name}} - {{about}}\n\nUSAGE:\n   {{name}} [global options] command [command options] [arguments...]\n\nVERSION:\n   {version}\n\nCOMMANDS:\n{{subcommands}}\n\nGLOBAL OPTIONS:\n{{options}}\n"
    );
    Low::command()
        .help_template(top)
        .mut_subcommands(|c| {
            c.help_template(
                "NAME:\n   berth-runtime {name} - {about}\n\nUSAGE:\n   {usage}\n\nOPTIONS:\n{options}\n",
            )
        })
}

fn resolve(low: Low) -> (Global, Command) {
    let json = match low.log_format.as_str() {
        "json" => true,
        "text" => false,
        other => {
            eprintln!("invalid log format {other:?}: use text or json");
            std::process::exit(1);
        }
    };
    let g = Global {
        root: low.root,
        log: low.log,
        json,
        debug: low.debug,
        systemd_cgroup: low.systemd_cgroup,
        criu: low.criu,
    };
    if let Some(r) = &low.rootless {
        if r == "true" {
            fail(
                &g,
                "--rootless=true is not supported: run as root, or leave it at auto",
            );
        }
        if r != "auto" && r != "false" {
            fail(
                &g,
                &format!("invalid --rootless value {r:?}: use auto, true or false"),
            );
        }
    }
    let cmd = match low.cmd {
        Low2::Checkpoint(c) => Command::Checkpoint(c),
        Low2::Restore(r) => Command::Restore(r),
        Low2::Create(c) => Command::Create(c),
        Low2::Run { c, detach, keep } => Command::Run(c, detach, keep),
        Low2::Start { id } => Command::Start { id },
        Low2::State { id } => Command::State { id },
        Low2::Kill { id, signal, all } => Command::Kill { id, signal, all },
        Low2::Delete { id, force } => Command::Delete { id, force },
        Low2::Pause { id } => Command::Pause { id },
        Low2::Resume { id } => Command::Resume { id },
        Low2::List { format, quiet } => Command::List { format, quiet },
        Low2::Ps {
            id,
            format,
            ps_args,
        } => Command::Ps {
            id,
            format,
            ps_args,
        },
        Low2::Spec {
            bundle,
            rootless,
            hardened,
        } => Command::Spec {
            bundle,
            rootless,
            hardened,
        },
        Low2::Features => Command::Features,
        Low2::Exec(e) => Command::Exec(e),
        Low2::Update(u) => Command::Update(u),
        Low2::Events {
            id,
            stats,
            interval,
        } => Command::Events {
            id,
            stats,
            interval,
        },
    };
    (g, cmd)
}

/// create, run, start, state and delete in their plain spelling, read
/// without building clap's command tree (about 0.1 ms of cpu and 64 KiB
/// windows of the binary touched, per command). Anything else (other
/// commands, help, repeated or unknown flags, odd values, every error) is
/// left to clap: None.
fn parse_plain() -> Option<(Global, Command)> {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.into_string().ok())
        .collect::<Option<_>>()?;
    parse_plain_from(&args)
}

fn parse_plain_from(args: &[String]) -> Option<(Global, Command)> {
    let mut g = Global {
        root: DEFAULT_ROOT.into(),
        log: None,
        json: false,
        debug: false,
        systemd_cgroup: false,
        criu: "criu".into(),
    };
    let mut c = CreateArgs {
        id: String::new(),
        bundle: ".".into(),
        console_socket: None,
        pidfd_socket: None,
        pid_file: None,
        no_pivot: false,
        no_new_keyring: false,
        preserve_fds: 0,
    };
    let (mut detach, mut keep, mut force) = (false, false, false);
    let mut log_format = "text";
    let mut cmd: Option<&str> = None;
    let mut id: Option<&str> = None;
    let mut seen: Vec<&str> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if !a.starts_with('-') {
            match (cmd, id) {
                (None, _) => cmd = Some(a),
                (Some(_), None) => id = Some(a),
                _ => return None,
            }
            continue;
        }
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v)),
            _ => (a.as_str(), None),
        };
        let name = match (name, cmd) {
            ("-b", Some("create" | "run")) => "--bundle",
            ("-d", Some("run")) => "--detach",
            ("-f", Some("delete")) => "--force",
            (n, _) => n,
        };
        // clap refuses a flag given twice.
        if seen.contains(&name) {
            return None;
        }
        seen.push(name);
        let takes_value = matches!(
            name,
            "--root"
                | "--log"
                | "--log-format"
                | "--bundle"
                | "--console-socket"
                | "--pidfd-socket"
                | "--pid-file"
                | "--preserve-fds"
        );
        let value = match (takes_value, inline) {
            (true, Some(v)) => Some(v),
            (true, None) => Some(it.next()?.as_str()),
            (false, Some(_)) => return None,
            (false, None) => None,
        };
        if value.is_some_and(|v| v.is_empty() || v.starts_with('-')) {
            return None;
        }
        let path = || value.map(std::path::PathBuf::from);
        let create = matches!(cmd, Some("create" | "run"));
        match name {
            "--root" => g.root = path()?,
            "--log" => g.log = path(),
            "--log-format" => log_format = value?,
            "--debug" => g.debug = true,
            "--systemd-cgroup" => g.systemd_cgroup = true,
            "--bundle" if create => c.bundle = path()?,
            "--console-socket" if create => c.console_socket = path(),
            "--pidfd-socket" if create => c.pidfd_socket = path(),
            "--pid-file" if create => c.pid_file = path(),
            "--no-pivot" if create => c.no_pivot = true,
            "--no-new-keyring" if create => c.no_new_keyring = true,
            "--preserve-fds" if create => {
                let v = value?;
                if !v.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                c.preserve_fds = v.parse().ok()?;
            }
            "--detach" if cmd == Some("run") => detach = true,
            "--keep" if cmd == Some("run") => keep = true,
            "--force" if cmd == Some("delete") => force = true,
            _ => return None,
        }
    }
    g.json = match log_format {
        "json" => true,
        "text" => false,
        _ => return None,
    };
    let id = id?.to_string();
    let cmd = match cmd? {
        "create" => Command::Create(CreateArgs { id, ..c }),
        "run" => Command::Run(CreateArgs { id, ..c }, detach, keep),
        "start" => Command::Start { id },
        "state" => Command::State { id },
        "delete" => Command::Delete { id, force },
        _ => return None,
    };
    Some((g, cmd))
}

fn fail(g: &Global, msg: &str) -> ! {
    crate::log::Logger::new(g).error(msg);
    std::process::exit(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn via_clap(args: &[&str]) -> String {
        let low = Low::try_parse_from(std::iter::once("berth-runtime").chain(args.iter().copied()))
            .expect("clap accepts it");
        format!("{:?}", resolve(low))
    }

    fn plain(args: &[&str]) -> Option<String> {
        let v: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        parse_plain_from(&v).map(|r| format!("{r:?}"))
    }

    #[test]
    fn plain_parse_matches_clap() {
        for args in [
            &["run", "-b", "/b", "x"][..],
            &["--root", "/r", "run", "--bundle=/b", "-d", "--keep", "x"],
            &[
                "--root=/r",
                "--log",
                "/l",
                "--log-format",
                "json",
                "create",
                "x",
                "--pid-file",
                "p",
            ],
            &[
                "create",
                "--console-socket",
                "/s",
                "--pidfd-socket=/q",
                "--no-pivot",
                "x",
            ],
            &[
                "--debug",
                "create",
                "--no-new-keyring",
                "--preserve-fds",
                "2",
                "x",
                "--root",
                "/r",
            ],
            &["--systemd-cgroup", "start", "x"],
            &["state", "x"],
            &["delete", "-f", "x"],
            &["delete", "--force", "x", "--log-format=text"],
        ] {
            assert_eq!(plain(args), Some(via_clap(args)), "{args:?}");
        }
    }

    #[test]
    fn plain_parse_leaves_the_rest_to_clap() {
        for args in [
            &[][..],
            &["--help"],
            &["--version"],
            &["run"],
            &["run", "x", "y"],
            &["run", "-b", "/b", "-b", "/c", "x"],
            &["run", "--bundle", "/b", "-b", "/c", "x"],
            &["-d", "run", "x"],
            &["run", "-bd", "x"],
            &["run", "-b=/b", "x"],
            &["run", "--bundle=", "x"],
            &["run", "--bundle", "-x", "x"],
            &["run", "--preserve-fds", "+1", "x"],
            &["run", "--preserve-fds", "99999999999", "x"],
            &["run", "--", "x"],
            &["create", "-d", "x"],
            &["start", "-f", "x"],
            &["kill", "x"],
            &["list"],
            &["--log-format", "xml", "state", "x"],
            &["--criu", "/c", "state", "x"],
            &["--rootless", "false", "state", "x"],
            &["--debug", "--debug", "state", "x"],
            &["state", "x", "--unknown"],
            &["help", "run"],
        ] {
            assert_eq!(plain(args), None, "{args:?}");
        }
    }
}
