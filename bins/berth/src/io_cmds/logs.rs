//! `berth logs`: the container's json-file log, read straight from the files (so it works
//! after the monitor died and after the container exited), `-f` following across
//! rotation until the container stops.

use super::{parse_tail, parse_time, resolve, stdout_closed};
use anyhow::Result;
use berth_engine::layout::Layout;
use berth_engine::logfile::LogEntry;
use std::io::Write;
use std::time::SystemTime;

#[derive(clap::Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    follow: bool,
    /// Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)
    #[arg(long)]
    since: Option<String>,
    /// Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)
    #[arg(long)]
    until: Option<String>,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show timestamps
    #[arg(short, long)]
    timestamps: bool,
    /// Show extra details provided to logs (Berth's json-file log records none, so this
    /// changes nothing, as in docker without --log-opt labels/env)
    #[arg(long)]
    details: bool,
    container: String,
}

/// Writes entries to stdout/stderr by stream; false when stdout or stderr is closed.
fn emit(entries: &[LogEntry], timestamps: bool) -> Result<bool> {
    let out = std::io::stdout();
    let err = std::io::stderr();
    let (mut o, mut e) = (out.lock(), err.lock());
    for en in entries {
        let w: &mut dyn Write = if en.stream == "stderr" {
            &mut e
        } else {
            &mut o
        };
        let r = if timestamps {
            write!(w, "{} {}", en.time, en.log)
        } else {
            w.write_all(en.log.as_bytes())
        };
        if let Err(x) = r {
            if stdout_closed(&x) {
                return Ok(false);
            }
            return Err(x.into());
        }
    }
    if let Err(x) = o.flush().and_then(|_| e.flush()) {
        if stdout_closed(&x) {
            return Ok(false);
        }
        return Err(x.into());
    }
    Ok(true)
}

pub fn run(layout: &Layout, a: LogsArgs) -> Result<()> {
    let _ = a.details;
    let id = resolve(layout, &a.container)?;
    let now = SystemTime::now();
    let o = berth_engine::logs::LogsOptions {
        since: a.since.as_deref().map(|s| parse_time(s, now)).transpose()?,
        until: a.until.as_deref().map(|s| parse_time(s, now)).transpose()?,
        tail: parse_tail(&a.tail)?,
        follow: a.follow,
    };
    let mut failed = None;
    berth_engine::logs::read(layout, &id, &o, &mut |v| match emit(v, a.timestamps) {
        Ok(more) => Ok(more),
        Err(e) => {
            failed = Some(e);
            Ok(false)
        }
    })?;
    failed.map_or(Ok(()), Err)
}
