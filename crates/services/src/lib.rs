#![forbid(unsafe_code)]
pub mod compose;
pub mod options;
