//! The only crate with `unsafe`: thin wrappers over the few syscalls that
//! rustix does not cover safely. Every block says why it holds.
//!
//! The runtime is single-threaded by design (no tokio, no helper threads), and
//! several wrappers here rely on that: `fork` in particular.

pub mod arena;
pub mod bpf;
pub mod mount;
pub mod netdev;
pub mod process;
pub mod sched;
pub mod seccomp;
pub mod signal;
pub mod timing;

pub use std::io::{Error, Result};
