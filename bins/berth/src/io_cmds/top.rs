//! `berth top`: thin over berth_engine::top.

use super::resolve;
use anyhow::Result;
use berth_engine::layout::Layout;

#[derive(clap::Args)]
pub struct TopArgs {
    container: String,
    /// ps options (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_args: Vec<String>,
}

pub fn run(layout: &Layout, a: TopArgs) -> Result<()> {
    let id = resolve(layout, &a.container)?;
    top_of(layout, &id, &a.ps_args)
}

/// The processes of container `id`, as `ps ARGS` shows them (default `-ef`).
pub fn top_of(layout: &Layout, id: &str, ps_args: &[String]) -> Result<()> {
    let t = berth_engine::top::top(layout, id, ps_args)?;
    print!("{}", berth_engine::top::table(&t));
    Ok(())
}
