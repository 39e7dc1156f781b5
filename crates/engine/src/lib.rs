//! The engine's library: container records, the monitor protocol, run options and how they
//! become a runtime spec. Used by `berth` (the CLI) and `berth-monitor` (one per container).
//! See docs/engine.md for the layout and the protocol.
#![forbid(unsafe_code)]

pub mod bins;
pub mod error;
pub mod events;
pub mod layout;
pub mod options;
pub mod proto;
pub mod record;
pub mod spec;

pub use error::{Error, Result};
