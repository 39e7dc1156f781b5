//! The front half of `berth build` (issue 13): a Dockerfile parser that
//! behaves as BuildKit's `dockerfile/parser` and `instructions` packages do,
//! the variable substitution of its shell lexer with docker's ARG and ENV
//! scoping, and `.dockerignore` matching as moby's patternmatcher does it.
//! Nothing here touches the store or runs anything: the builder reads the
//! typed plan this crate makes. See docs/build.md.
#![forbid(unsafe_code)]

pub mod dockerfile;
pub mod dockerignore;
pub mod expand;

pub use dockerfile::{parse, parse_trigger, Dockerfile, Instruction, Kind, Stage};
pub use dockerignore::Dockerignore;
pub use expand::{BuildArgs, GlobalArgs, Lexer, StageEnv};
