//! The front half of `berth build` (issue 13): a Dockerfile parser that
//! behaves as BuildKit's `dockerfile/parser` and `instructions` packages do,
//! the variable substitution of its shell lexer with docker's ARG and ENV
//! scoping, and `.dockerignore` matching as moby's patternmatcher does it;
//! and the builder that carries the plan out on Berth's store, overlay and
//! runtime (`builder`). See docs/build.md.
#![forbid(unsafe_code)]

pub mod builder;
pub mod context;
pub mod copy;
pub mod dockerfile;
pub mod dockerignore;
pub mod error;
pub mod expand;
pub mod fetch;
pub mod flags;
pub mod progress;
pub mod reuse;

pub use builder::{build, cancel, prune, BuildOptions, Built, DockerfileSource, RunNetwork};
pub use context::ContextSource;
pub use dockerfile::{parse, parse_trigger, Dockerfile, Instruction, Kind, Stage};
pub use dockerignore::Dockerignore;
pub use error::BuildError;
pub use expand::{BuildArgs, GlobalArgs, Lexer, StageEnv};
