//! runc's log lines: `time="..." level=error msg="..."` as text, or
//! `{"level":"error","msg":"...","time":"..."}` as JSON, to --log or stderr.

use std::fs::OpenOptions;
use std::io::Write;

use crate::args::Global;

#[derive(Clone)]
pub struct Logger {
    file: Option<std::sync::Arc<std::fs::File>>,
    json: bool,
    debug: bool,
}

fn stamp(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_nanos(t).to_string()
}

impl Logger {
    pub fn new(g: &Global) -> Self {
        let file = g.log.as_ref().and_then(|p| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| eprintln!("open log file {}: {e}", p.display()))
                .ok()
                .map(std::sync::Arc::new)
        });
        Logger {
            file,
            json: g.json,
            debug: g.debug,
        }
    }

    fn line(&self, level: &str, msg: &str, t: std::time::SystemTime) -> String {
        if self.json {
            serde_json::json!({"level": level, "msg": msg, "time": stamp(t)}).to_string() + "\n"
        } else {
            format!(
                "time=\"{}\" level={level} msg={}\n",
                stamp(t),
                serde_json::to_string(msg).unwrap_or_default()
            )
        }
    }

    pub fn error(&self, msg: &str) {
        self.write("error", msg);
        if self.file.is_some() {
            // The log is for the caller's program; the terminal gets it too.
            eprintln!("{msg}");
        }
    }

    /// Only with --debug.
    pub fn debug(&self, msg: &str) {
        self.debug_at(msg, std::time::SystemTime::now());
    }

    /// A debug line for something that happened at `t` (a step said late).
    pub fn debug_at(&self, msg: &str, t: std::time::SystemTime) {
        if self.debug {
            self.write_at("debug", msg, t);
        }
    }

    pub fn warn(&self, msg: &str) {
        self.write("warning", msg);
    }

    fn write(&self, level: &str, msg: &str) {
        self.write_at(level, msg, std::time::SystemTime::now());
    }

    fn write_at(&self, level: &str, msg: &str, t: std::time::SystemTime) {
        let l = self.line(level, msg, t);
        match &self.file {
            Some(f) => {
                let mut f: &std::fs::File = f;
                let _ = f.write_all(l.as_bytes());
            }
            None => {
                let _ = std::io::stderr().write_all(l.as_bytes());
            }
        }
    }
}
