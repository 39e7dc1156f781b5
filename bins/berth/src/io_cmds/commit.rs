//! `commit` and `diff`: thin over berth_engine::commit.

use super::resolve;
use crate::Globals;
use anyhow::{Context, Result};
use berth_engine::layout::Layout;
use berth_image::store::Store;

#[derive(clap::Args)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short, long)]
    author: Option<String>,
    /// Apply Dockerfile instruction to the created image (CMD, ENTRYPOINT, ENV, EXPOSE,
    /// USER, WORKDIR, LABEL, VOLUME)
    #[arg(short, long)]
    change: Vec<String>,
    /// Commit message
    #[arg(short, long)]
    message: Option<String>,
    /// Pause container during commit
    #[arg(short, long, default_value_t = true, num_args = 0..=1, default_missing_value = "true",
          require_equals = true, action = clap::ArgAction::Set)]
    pause: bool,
    container: String,
    /// REPOSITORY[:TAG]
    reference: Option<String>,
}

#[derive(clap::Args)]
pub struct DiffArgs {
    container: String,
}

fn store(g: &Globals) -> Result<Store> {
    Store::open(&g.root).with_context(|| format!("open store {}", g.root.display()))
}

pub fn commit(g: &Globals, layout: &Layout, a: CommitArgs) -> Result<()> {
    let id = resolve(layout, &a.container)?;
    let o = berth_engine::commit::CommitOptions {
        author: a.author,
        message: a.message,
        changes: a.change,
        pause: a.pause,
        reference: a.reference,
    };
    let image = berth_engine::commit::commit(layout, &store(g)?, &id, &o)?;
    println!("{image}");
    Ok(())
}

pub fn diff(g: &Globals, layout: &Layout, a: DiffArgs) -> Result<()> {
    let id = resolve(layout, &a.container)?;
    for c in berth_engine::commit::diff(layout, &store(g)?, &id)? {
        println!("{} {}", c.kind, c.path);
    }
    Ok(())
}
