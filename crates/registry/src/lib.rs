//! Registry client for the OCI distribution API v2, with docker-style credentials.
#![forbid(unsafe_code)]

pub mod auth;
pub mod client;
pub mod manifest;
pub mod reference;

pub use client::{Client, ClientOptions, PushOutcome, RegistryError};
pub use reference::Reference;
