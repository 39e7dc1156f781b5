//! `update` and `events`: the cgroup side of runc's command line.

use std::time::Duration;

use anyhow::Result;
use berth_runtime_core::state::Root;

/// runc's `update` flags.
#[derive(clap::Args, Debug, Clone)]
pub struct UpdateArgs {
    pub id: String,
    /// Path to a JSON LinuxResources file, or "-" for stdin.
    #[arg(short = 'r', long)]
    pub resources: Option<String>,
}

pub fn update(_root: &Root, args: &UpdateArgs) -> Result<()> {
    anyhow::bail!("update {}: not implemented yet", args.id)
}

pub fn events(_root: &Root, id: &str, _stats: bool, _interval: Duration) -> Result<()> {
    anyhow::bail!("events {id}: not implemented yet")
}
