//! `berth logs`: the container's json-file log, read straight from the files (so it works
//! after the monitor died and after the container exited), `-f` following across
//! rotation until the container stops.

use super::{parse_tail, parse_time, resolve, stdout_closed};
use anyhow::Result;
use berth_engine::layout::Layout;
use berth_engine::logfile::{self, LogEntry};
use std::io::Write;
use std::time::{Duration, SystemTime};

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
    if layout.load_config(&id)?.options.log.driver == berth_engine::options::LogDriver::None {
        anyhow::bail!("configured logging driver does not support reading");
    }
    let now = SystemTime::now();
    let since = a.since.as_deref().map(|s| parse_time(s, now)).transpose()?;
    let until = a.until.as_deref().map(|s| parse_time(s, now)).transpose()?;
    let tail = parse_tail(&a.tail)?;
    let path = layout.log_path(&id);
    if !a.follow {
        let v = logfile::read(&path, since, until, tail)?;
        emit(&v, a.timestamps)?;
        return Ok(());
    }
    let (v, mut fol) = logfile::read_then_follow(&path, since, until, tail)?;
    if !emit(&v, a.timestamps)? {
        return Ok(());
    }
    let keep = |e: &LogEntry| {
        let t = berth_engine::record::parse_rfc3339(&e.time);
        let after = match since {
            Some(s) => t.is_some_and(|t| t >= s),
            None => true,
        };
        let before = match until {
            Some(u) => t.is_some_and(|t| t < u),
            None => true,
        };
        after && before
    };
    loop {
        // Check first, then read: lines written before the exit are all read below.
        let running = berth_engine::status::peek(layout, &id)
            .map(|s| berth_engine::status::is_running(&s))
            .unwrap_or(false);
        let past_until = until.is_some_and(|u| SystemTime::now() >= u);
        let v: Vec<LogEntry> = fol.poll()?.into_iter().filter(|e| keep(e)).collect();
        if !emit(&v, a.timestamps)? {
            return Ok(());
        }
        if !running || past_until {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
