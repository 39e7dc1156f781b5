//! The engine's library: container records, the monitor protocol, run options and how they
//! become a runtime spec. Used by `berth` (the CLI) and `berth-monitor` (one per container).
//! See docs/engine.md for the layout and the protocol.
#![forbid(unsafe_code)]
// serde_json::json! of docker's /info object nests deeper than the default.
#![recursion_limit = "256"]

pub mod bins;
pub mod boot;
pub mod commit;
pub mod control;
pub mod cp;
pub mod create;
pub mod error;
pub mod events;
pub mod exec;
pub mod flags;
pub mod human;
pub mod images;
pub mod info;
pub mod init;
pub mod inspect;
pub mod inventory;
pub mod layout;
pub mod list;
pub mod logfile;
pub mod logs;
pub mod lookup;
pub mod namespaces;
pub mod net;
pub mod options;
pub mod parse;
pub mod probe;
pub mod proto;
pub mod record;
pub mod remove;
pub mod rootfs;
pub mod run;
pub mod spec;
pub mod stats;
pub mod status;
pub mod template;
pub mod top;
pub mod volumes;

pub use error::{Error, Result};

/// The sha256 of `b` as 64 hex digits (ids derived from names: stable, docker-shaped).
pub fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}
