//! The event log: one JSON object per line in `R/engine/events.jsonl`, in docker's
//! `events --format json` shape. Lines are written with one O_APPEND write each, so
//! concurrent writers (CLIs, monitors) never interleave within a line.

use crate::error::{Error, Result};
use crate::layout::Layout;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// "container" or "volume"
    #[serde(rename = "Type")]
    pub kind: String,
    /// create, start, die, stop, kill, destroy, rename, restart, oom,
    /// health_status: healthy, exec_start: CMD, ...
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    /// seconds and nanoseconds since the epoch
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    /// name, image, exitCode, signal ...
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

/// Appends one event.
pub fn emit(
    layout: &Layout,
    kind: &str,
    action: &str,
    id: &str,
    attributes: BTreeMap<String, String>,
) -> Result<()> {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let ev = Event {
        kind: kind.into(),
        action: action.into(),
        actor: Actor {
            id: id.into(),
            attributes,
        },
        time: d.as_secs() as i64,
        time_nano: d.as_nanos() as i64,
    };
    let mut line = serde_json::to_vec(&ev).expect("events serialise");
    line.push(b'\n');
    use std::os::unix::fs::OpenOptionsExt;
    let p = layout.events_path();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&p)
        .map_err(|e| Error::io(&p, e))?;
    f.write_all(&line).map_err(|e| Error::io(&p, e))
}

/// Every event recorded so far, oldest first (lines that do not parse are skipped).
pub fn read_all(layout: &Layout) -> Result<Vec<Event>> {
    let p = layout.events_path();
    let s = match std::fs::read_to_string(&p) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&p, e)),
    };
    Ok(s.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}
