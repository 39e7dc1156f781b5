//! The commands that move data in and out of containers: logs, exec, top, stats, port, cp,
//! events. docker's flags and output; docker's exit codes: 1 when the command fails (what
//! the docker CLI exits with for every daemon error of these commands), and for `exec` the
//! process's own status, 126 when it cannot be invoked, 127 when it is not found.

use crate::Globals;
use anyhow::{anyhow, Result};
use berth_engine::layout::Layout;

mod commit;
mod cp;
mod events;
pub mod exec;
mod logs;
mod port;
mod stats;
mod top;
pub use top::top_of;

#[derive(clap::Subcommand)]
#[command(defer = true)]
pub enum Cmd {
    /// Fetch the logs of a container
    Logs(logs::LogsArgs),
    /// Execute a command in a running container
    Exec(exec::ExecArgs),
    /// Display the running processes of a container
    Top(top::TopArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(stats::StatsArgs),
    /// List port mappings or a specific mapping for the container
    Port(port::PortArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(cp::CpArgs),
    /// Get real time events from the engine
    Events(events::EventsArgs),
    /// Export a container's filesystem as a tar archive
    Export(cp::ExportArgs),
    /// Create a new image from a container's changes
    Commit(commit::CommitArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(commit::DiffArgs),
}

pub fn dispatch(g: &Globals, c: Cmd) -> i32 {
    let layout = match Layout::open(&g.root) {
        Ok(l) => l,
        Err(e) => return fail(anyhow!(e).context(format!("open {}", g.root.display()))),
    };
    let r = match c {
        Cmd::Logs(a) => logs::run(&layout, a),
        Cmd::Exec(a) => return exec::run(&layout, a),
        Cmd::Top(a) => top::run(&layout, a),
        Cmd::Stats(a) => stats::run(&layout, a),
        Cmd::Port(a) => port::run(&layout, a),
        Cmd::Cp(a) => cp::run(g, &layout, a),
        Cmd::Events(a) => events::run(&layout, a),
        Cmd::Export(a) => cp::export(g, &layout, a),
        Cmd::Commit(a) => commit::commit(g, &layout, a),
        Cmd::Diff(a) => commit::diff(g, &layout, a),
    };
    match r {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
}

/// Prints the error like docker and returns docker's status for a failed command (1).
pub fn fail(e: anyhow::Error) -> i32 {
    crate::print_error(&e);
    1
}

/// A container reference -> its ID, with docker's wording for a miss.
pub fn resolve(layout: &Layout, r: &str) -> Result<String> {
    berth_engine::lookup::resolve(layout, r).map_err(|e| match e {
        berth_engine::Error::NoSuchContainer(r) => anyhow!("No such container: {r}"),
        e => anyhow!(e),
    })
}

pub fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

pub use berth_engine::logs::{parse_tail, parse_time};

/// `json` / `{{json .}}` and docker's templates through the engine's template module.
pub fn template(format: &str) -> Result<berth_engine::template::Template> {
    Ok(berth_engine::template::Template::parse(format)?)
}

/// Errors from a write to stdout: a closed pipe ends the command quietly.
pub fn stdout_closed(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::BrokenPipe
}
