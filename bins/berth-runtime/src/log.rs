//! runc's log lines: `time="..." level=error msg="..."` as text, or
//! `{"level":"error","msg":"...","time":"..."}` as JSON, to --log or stderr.

use std::fs::OpenOptions;
use std::io::Write;

use crate::args::Global;

pub struct Logger {
    file: Option<std::fs::File>,
    json: bool,
    debug: bool,
}

fn now() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
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
        });
        Logger {
            file,
            json: g.json,
            debug: g.debug,
        }
    }

    fn line(&self, level: &str, msg: &str) -> String {
        if self.json {
            serde_json::json!({"level": level, "msg": msg, "time": now()}).to_string() + "\n"
        } else {
            format!(
                "time=\"{}\" level={level} msg={}\n",
                now(),
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
        if self.debug {
            self.write("debug", msg);
        }
    }

    pub fn warn(&self, msg: &str) {
        self.write("warning", msg);
    }

    fn write(&self, level: &str, msg: &str) {
        let l = self.line(level, msg);
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
