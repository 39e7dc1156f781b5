//! Placeholder; filled in by its owner (see docs/engine.md).

use crate::Globals;

#[derive(clap::Subcommand)]
pub enum Cmd {}

pub fn dispatch(_g: &Globals, c: Cmd) -> i32 {
    match c {}
}
