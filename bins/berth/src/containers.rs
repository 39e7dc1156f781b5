//! Container lifecycle commands with docker's flags, output and exit codes: run, create,
//! start, stop, kill, restart, rm, ps, inspect, wait, rename, attach, container prune, and
//! the `container` group that holds them (plus the io commands).

use crate::Globals;
use anyhow::{anyhow, Result};
use berth_engine::layout::Layout;
use berth_image::store::Store;

mod attach;
mod inspect;
mod life;
mod ps;

pub use ps::status_text;

/// `run` of options resolved elsewhere (`compose run`): docker's exit codes.
pub fn run_options(
    g: &Globals,
    opts: berth_engine::options::CreateOptions,
    detach: bool,
) -> anyhow::Result<i32> {
    let e = open(g)?;
    Ok(life::run_resolved(g, &e, opts, detach, &[], true))
}

#[derive(clap::Subcommand)]
#[command(defer = true)]
pub enum Cmd {
    /// Create and run a new container from an image
    Run(life::RunArgs),
    /// Create a new container
    Create(life::CreateArgs),
    /// Start one or more stopped containers
    Start(life::StartArgs),
    /// Stop one or more running containers
    Stop(life::StopArgs),
    /// Kill one or more running containers
    Kill(life::KillArgs),
    /// Restart one or more containers
    Restart(life::StopArgs),
    /// Remove one or more containers
    Rm(life::RmArgs),
    /// List containers
    Ps(ps::PsArgs),
    /// Return low-level information on containers or images
    Inspect(inspect::InspectArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(life::RefsArgs),
    /// Rename a container
    Rename(life::RenameArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(life::AttachArgs),
    /// Pause all processes within one or more containers
    Pause(life::RefsArgs),
    /// Unpause all processes within one or more containers
    Unpause(life::RefsArgs),
    /// Update configuration of one or more containers
    Update(life::UpdateArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCmd),
}

#[derive(clap::Subcommand)]
#[command(defer = true)]
pub enum ContainerCmd {
    /// List containers
    #[command(visible_aliases = ["ps", "list"])]
    Ls(ps::PsArgs),
    /// Create and run a new container from an image
    Run(life::RunArgs),
    /// Create a new container
    Create(life::CreateArgs),
    /// Start one or more stopped containers
    Start(life::StartArgs),
    /// Stop one or more running containers
    Stop(life::StopArgs),
    /// Kill one or more running containers
    Kill(life::KillArgs),
    /// Restart one or more containers
    Restart(life::StopArgs),
    /// Remove one or more containers
    #[command(visible_alias = "remove")]
    Rm(life::RmArgs),
    /// Display detailed information on one or more containers
    Inspect(inspect::InspectArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(life::RefsArgs),
    /// Rename a container
    Rename(life::RenameArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(life::AttachArgs),
    /// Remove all stopped containers
    Prune(life::PruneArgs),
    /// Pause all processes within one or more containers
    Pause(life::RefsArgs),
    /// Unpause all processes within one or more containers
    Unpause(life::RefsArgs),
    /// Update configuration of one or more containers
    Update(life::UpdateArgs),
    #[command(flatten)]
    Io(crate::io_cmds::Cmd),
}

pub fn dispatch(g: &Globals, c: Cmd) -> i32 {
    let c = match c {
        Cmd::Container(cc) => match cc {
            ContainerCmd::Ls(a) => Cmd::Ps(a),
            ContainerCmd::Run(a) => Cmd::Run(a),
            ContainerCmd::Create(a) => Cmd::Create(a),
            ContainerCmd::Start(a) => Cmd::Start(a),
            ContainerCmd::Stop(a) => Cmd::Stop(a),
            ContainerCmd::Kill(a) => Cmd::Kill(a),
            ContainerCmd::Restart(a) => Cmd::Restart(a),
            ContainerCmd::Rm(a) => Cmd::Rm(a),
            ContainerCmd::Inspect(mut a) => {
                // `container inspect` is about containers only, as docker's.
                a.kind.get_or_insert_with(|| "container".into());
                Cmd::Inspect(a)
            }
            ContainerCmd::Wait(a) => Cmd::Wait(a),
            ContainerCmd::Rename(a) => Cmd::Rename(a),
            ContainerCmd::Attach(a) => Cmd::Attach(a),
            ContainerCmd::Pause(a) => Cmd::Pause(a),
            ContainerCmd::Unpause(a) => Cmd::Unpause(a),
            ContainerCmd::Update(a) => Cmd::Update(a),
            ContainerCmd::Prune(a) => return report(open(g).and_then(|e| life::prune(&e, a))),
            ContainerCmd::Io(c) => return crate::io_cmds::dispatch(g, c),
        },
        c => c,
    };
    let e = match open(g) {
        Ok(e) => e,
        Err(e) if matches!(c, Cmd::Run(_) | Cmd::Create(_)) => return report_run(Err(e)),
        Err(e) => return report(Err(e)),
    };
    match c {
        Cmd::Run(a) => life::run(g, &e, a),
        Cmd::Create(a) => report_run(life::create(g, &e, a)),
        Cmd::Start(a) => life::start(&e, a),
        Cmd::Stop(a) => life::stop(&e, a, false),
        Cmd::Restart(a) => life::stop(&e, a, true),
        Cmd::Kill(a) => life::kill(&e, a),
        Cmd::Rm(a) => life::rm(&e, a),
        Cmd::Ps(a) => report(ps::ps(&e, a)),
        Cmd::Inspect(a) => inspect::inspect(&e, a),
        Cmd::Wait(a) => life::wait(&e, a),
        Cmd::Rename(a) => report(life::rename(&e, a)),
        Cmd::Attach(a) => life::attach_cmd(&e, a),
        Cmd::Pause(a) => life::pause(&e, a, true),
        Cmd::Unpause(a) => life::pause(&e, a, false),
        Cmd::Update(a) => life::update(&e, a),
        Cmd::Container(_) => unreachable!("mapped above"),
    }
}

/// `container prune` for `system prune`.
pub fn prune_containers(e: &Eng) -> Result<()> {
    life::prune(
        e,
        life::PruneArgs {
            force: true,
            filter: vec![],
        },
    )
}

/// What every container command works on.
pub struct Eng {
    pub layout: Layout,
    pub store: Store,
}

pub fn open(g: &Globals) -> Result<Eng> {
    let store = Store::open(&g.root)
        .map_err(|e| anyhow!(e).context(format!("open store {}", g.root.display())))?;
    let layout = Layout::open(&g.root)?;
    Ok(Eng { layout, store })
}

/// Prints an error like docker and returns 125 (the engine failed).
/// docker's exit code for a failed command: 1 (the CLI's), except `run` and `create`,
/// whose own failures are 125 (`report_run`); usage errors are 125 everywhere.
pub fn report(r: Result<()>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => {
            crate::print_error(&e);
            1
        }
    }
}

/// `run` and `create`: 125 for a failure of the engine (docker's StatusError).
pub fn report_run(r: Result<()>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => {
            crate::print_error(&e);
            125
        }
    }
}

/// Engine errors in docker's words.
pub fn engine_err(eng: &Eng, e: berth_engine::Error) -> anyhow::Error {
    use berth_engine::Error as E;
    match e {
        E::NoSuchContainer(r) => anyhow!("No such container: {r}"),
        E::NameInUse(n) => anyhow!(berth_engine::create::name_in_use_message(&eng.layout, &n)),
        E::Busy(id) => anyhow!("container {id} is running"),
        e => anyhow::Error::new(e),
    }
}

/// docker's short ID.
pub fn short_id(id: &str) -> &str {
    &id[..12.min(id.len())]
}

pub use berth_engine::human::{duration as human_duration, secs_since};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(3), "3 seconds");
        assert_eq!(human_duration(61), "About a minute");
    }
}
