//! The commands that move data in and out of containers: logs, exec, top, stats, port, cp,
//! events. docker's flags and output; docker's exit codes: 1 when the command fails (what
//! the docker CLI exits with for every daemon error of these commands), and for `exec` the
//! process's own status, 126 when it cannot be invoked, 127 when it is not found.

use crate::Globals;
use anyhow::{anyhow, bail, Result};
use berth_engine::layout::Layout;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod commit;
mod cp;
mod events;
pub mod exec;
mod logs;
mod port;
mod stats;
mod top;
pub use top::top_of;

#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Fetch the logs of a container
    Logs(logs::LogsArgs),
    /// Execute a command in a running container
    Exec(exec::ExecArgs),
    /// Display the running processes of a container
    Top(top::TopArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(stats::StatsArgs),
    /// List port mappings or a specific mapping for the container
    Port(port::PortArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(cp::CpArgs),
    /// Get real time events from the engine
    Events(events::EventsArgs),
    /// Export a container's filesystem as a tar archive
    Export(cp::ExportArgs),
    /// Create a new image from a container's changes
    Commit(commit::CommitArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(commit::DiffArgs),
}

pub fn dispatch(g: &Globals, c: Cmd) -> i32 {
    let layout = match Layout::open(&g.root) {
        Ok(l) => l,
        Err(e) => return fail(anyhow!(e).context(format!("open {}", g.root.display()))),
    };
    let r = match c {
        Cmd::Logs(a) => logs::run(&layout, a),
        Cmd::Exec(a) => return exec::run(&layout, a),
        Cmd::Top(a) => top::run(&layout, a),
        Cmd::Stats(a) => stats::run(&layout, a),
        Cmd::Port(a) => port::run(&layout, a),
        Cmd::Cp(a) => cp::run(g, &layout, a),
        Cmd::Events(a) => events::run(&layout, a),
        Cmd::Export(a) => cp::export(g, &layout, a),
        Cmd::Commit(a) => commit::commit(g, &layout, a),
        Cmd::Diff(a) => commit::diff(g, &layout, a),
    };
    match r {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
}

/// Prints the error like docker and returns docker's status for a failed command (1).
pub fn fail(e: anyhow::Error) -> i32 {
    crate::print_error(&e);
    1
}

/// A container reference -> its ID, with docker's wording for a miss.
pub fn resolve(layout: &Layout, r: &str) -> Result<String> {
    berth_engine::lookup::resolve(layout, r).map_err(|e| match e {
        berth_engine::Error::NoSuchContainer(r) => anyhow!("No such container: {r}"),
        e => anyhow!(e),
    })
}

pub fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// docker's `--since`/`--until` values: RFC 3339 (with or without the time or zone, UTC
/// when no zone), Unix seconds with an optional fraction, or a duration before now
/// (`10m`, `1h30m`, `42s`).
pub fn parse_time(s: &str, now: SystemTime) -> Result<SystemTime> {
    let s = s.trim();
    if let Some(d) = parse_duration(s) {
        return now
            .checked_sub(d)
            .ok_or_else(|| anyhow!("time {s:?} is before the epoch"));
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
        let secs: u64 = secs.parse().map_err(|_| anyhow!("invalid time {s:?}"))?;
        let nanos: u32 = if frac.is_empty() {
            0
        } else {
            let f = &frac[..frac.len().min(9)];
            format!("{f:0<9}")
                .parse()
                .map_err(|_| anyhow!("invalid time {s:?}"))?
        };
        return Ok(UNIX_EPOCH + Duration::new(secs, nanos));
    }
    let full = match s.len() {
        10 => format!("{s}T00:00:00Z"),
        16 => format!("{s}:00Z"),
        _ if s.len() >= 19 && !s.get(19..).unwrap_or("Z").contains(['Z', 'z', '+', '-']) => {
            format!("{s}Z")
        }
        _ => s.to_string(),
    };
    berth_engine::record::parse_rfc3339(&full).ok_or_else(|| {
        anyhow!("invalid time {s:?}: give RFC 3339 (2006-01-02T15:04:05Z), Unix seconds, or a duration such as 10m")
    })
}

/// Go's time.ParseDuration for non-negative values: `1h30m`, `10m`, `1.5s`, `300ms`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    if s.is_empty() || !s.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let v: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += v * unit;
        rest = &rest[u..];
    }
    Some(Duration::from_secs_f64(total))
}

/// `json` / `{{json .}}` and docker's templates through the engine's template module.
pub fn template(format: &str) -> Result<berth_engine::template::Template> {
    Ok(berth_engine::template::Template::parse(format)?)
}

/// Errors from a write to stdout: a closed pipe ends the command quietly.
pub fn stdout_closed(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::BrokenPipe
}

/// A positive count or `all` (docker's `--tail`).
pub fn parse_tail(s: &str) -> Result<Option<usize>> {
    match s {
        "all" | "" => Ok(None),
        n => match n.parse::<i64>() {
            Ok(v) if v < 0 => Ok(None),
            Ok(v) => Ok(Some(v as usize)),
            Err(_) => bail!("invalid value {n:?} for --tail: give a number or \"all\""),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_like_docker() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(
            parse_time("10m", now).unwrap(),
            now - Duration::from_secs(600)
        );
        assert_eq!(
            parse_time("1h30m", now).unwrap(),
            now - Duration::from_secs(5400)
        );
        assert_eq!(
            parse_time("1700000000.5", now).unwrap(),
            UNIX_EPOCH + Duration::from_millis(1_700_000_000_500)
        );
        assert_eq!(
            parse_time("2024-01-01T00:00:00Z", now).unwrap(),
            UNIX_EPOCH + Duration::from_secs(1_704_067_200)
        );
        assert_eq!(
            parse_time("2024-01-01", now).unwrap(),
            UNIX_EPOCH + Duration::from_secs(1_704_067_200)
        );
        assert_eq!(
            parse_time("2024-01-01T01:00:00+01:00", now).unwrap(),
            UNIX_EPOCH + Duration::from_secs(1_704_067_200)
        );
        assert!(parse_time("yesterday", now).is_err());
        assert!(parse_time("10x", now).is_err());
        assert_eq!(parse_tail("all").unwrap(), None);
        assert_eq!(parse_tail("3").unwrap(), Some(3));
        assert!(parse_tail("x").is_err());
    }
}
