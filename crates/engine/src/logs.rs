//! A container's log as docker's `logs` and the API's `GET /containers/{id}/logs` read it:
//! straight from the json-file log (so it works after the monitor died and after the
//! container exited), `follow` going on across rotation until the container stops. Also
//! docker's `--since`/`--until`/`--tail` values.

use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::logfile::{self, LogEntry};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct LogsOptions {
    pub since: Option<SystemTime>,
    pub until: Option<SystemTime>,
    /// The last N entries only.
    pub tail: Option<usize>,
    pub follow: bool,
}

/// Reads the log of container `id` (resolved) as `o` says, handing entries to `emit`
/// as they come; `emit` returns false to stop (its reader went away).
pub fn read(
    layout: &Layout,
    id: &str,
    o: &LogsOptions,
    emit: &mut dyn FnMut(&[LogEntry]) -> Result<bool>,
) -> Result<()> {
    if layout.load_config(id)?.options.log.driver == crate::options::LogDriver::None {
        return Err(Error::Invalid(
            "configured logging driver does not support reading".into(),
        ));
    }
    let (since, until) = (o.since, o.until);
    let path = layout.log_path(id);
    if !o.follow {
        let v = logfile::read(&path, since, until, o.tail)?;
        emit(&v)?;
        return Ok(());
    }
    let (v, mut fol) = logfile::read_then_follow(&path, since, until, o.tail)?;
    if !emit(&v)? {
        return Ok(());
    }
    let keep = |e: &LogEntry| {
        let t = crate::record::parse_rfc3339(&e.time);
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
        let running = crate::status::peek(layout, id)
            .map(|s| crate::status::is_running(&s))
            .unwrap_or(false);
        let past_until = until.is_some_and(|u| SystemTime::now() >= u);
        let v: Vec<LogEntry> = fol.poll()?.into_iter().filter(|e| keep(e)).collect();
        if !emit(&v)? {
            return Ok(());
        }
        if !running || past_until {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// docker's `--since`/`--until` values: RFC 3339 (with or without the time or zone, UTC
/// when no zone), Unix seconds with an optional fraction, or a duration before now
/// (`10m`, `1h30m`, `42s`).
pub fn parse_time(s: &str, now: SystemTime) -> Result<SystemTime> {
    let s = s.trim();
    if let Some(d) = parse_duration(s) {
        return now
            .checked_sub(d)
            .ok_or_else(|| Error::Invalid(format!("time {s:?} is before the epoch")));
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
        let secs: u64 = secs
            .parse()
            .map_err(|_| Error::Invalid(format!("invalid time {s:?}")))?;
        let nanos: u32 = if frac.is_empty() {
            0
        } else {
            let f = &frac[..frac.len().min(9)];
            format!("{f:0<9}")
                .parse()
                .map_err(|_| Error::Invalid(format!("invalid time {s:?}")))?
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
    crate::record::parse_rfc3339(&full).ok_or_else(|| {
        Error::Invalid(format!("invalid time {s:?}: give RFC 3339 (2006-01-02T15:04:05Z), Unix seconds, or a duration such as 10m"))
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

/// A positive count or `all` (docker's `--tail`).
pub fn parse_tail(s: &str) -> Result<Option<usize>> {
    match s {
        "all" | "" => Ok(None),
        n => match n.parse::<i64>() {
            Ok(v) if v < 0 => Ok(None),
            Ok(v) => Ok(Some(v as usize)),
            Err(_) => Err(Error::Invalid(format!(
                "invalid value {n:?} for --tail: give a number or \"all\""
            ))),
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
