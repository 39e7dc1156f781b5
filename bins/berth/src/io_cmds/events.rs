//! `berth events`: the engine's event log (R/engine/events.jsonl), read by
//! berth_engine::events::watch. Like docker, without `--since` (or `--until`) only new
//! events are shown; without `--until` it keeps following the file (until interrupted or
//! stdout closes).

use super::{parse_time, stdout_closed, template};
use anyhow::Result;
use berth_engine::events::{message, text_line, watch, Filters, WatchOptions};
use berth_engine::layout::Layout;
use std::io::Write;
use std::time::SystemTime;

#[derive(clap::Args)]
pub struct EventsArgs {
    /// Show all events created since timestamp
    #[arg(long)]
    since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long)]
    until: Option<String>,
    /// Filter output based on conditions provided (container=, event=, type=, image=,
    /// label=, network=, volume=)
    #[arg(short, long = "filter")]
    filter: Vec<String>,
    /// Format output using a custom template ('json' or a Go template)
    #[arg(long)]
    format: Option<String>,
}

pub fn run(layout: &Layout, a: EventsArgs) -> Result<()> {
    let now = SystemTime::now();
    let o = WatchOptions {
        since: a.since.as_deref().map(|s| parse_time(s, now)).transpose()?,
        until: a.until.as_deref().map(|s| parse_time(s, now)).transpose()?,
        filters: Filters::parse(&a.filter)?,
    };
    let tpl = a.format.as_deref().map(template).transpose()?;
    let stdout = std::io::stdout();
    watch(layout, &o, &mut |evs| {
        let mut out = String::new();
        for e in evs {
            match &tpl {
                Some(t) => out.push_str(&t.render(&message(e))?),
                None => out.push_str(&text_line(e)),
            }
            out.push('\n');
        }
        if out.is_empty() {
            return Ok(true);
        }
        let mut o = stdout.lock();
        match o.write_all(out.as_bytes()).and_then(|_| o.flush()) {
            Ok(()) => Ok(true),
            Err(e) if stdout_closed(&e) => Ok(false),
            Err(e) => Err(berth_engine::Error::io("stdout", e)),
        }
    })?;
    Ok(())
}
