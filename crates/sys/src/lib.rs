//! The only crate with `unsafe`. Every block says why it holds.
pub mod seccomp;
