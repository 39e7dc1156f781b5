//! The event log: one JSON object per line in `R/engine/events.jsonl`, in docker's
//! `events --format json` shape. Lines are written with one O_APPEND write each, so
//! concurrent writers (CLIs, monitors) never interleave within a line.

use crate::error::{Error, Result};
use crate::layout::Layout;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// When an event happened.
pub fn event_time(e: &Event) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(e.time_nano.max(0) as u64)
}

/// docker's text line: `TIME TYPE ACTION ID (k=v, ...)`.
pub fn text_line(e: &Event) -> String {
    let attrs: Vec<String> = e
        .actor
        .attributes
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut s = format!(
        "{} {} {} {}",
        crate::record::rfc3339(event_time(e)),
        e.kind,
        e.action,
        e.actor.id
    );
    if !attrs.is_empty() {
        s.push_str(&format!(" ({})", attrs.join(", ")));
    }
    s
}

/// The event as dockerd sends it (GET /events, `--format`): the event plus the
/// deprecated `status`, `id`, `from` of container and image events, and `scope`.
pub fn message(e: &Event) -> serde_json::Value {
    let mut v = serde_json::to_value(e).expect("events serialise");
    if e.kind == "container" || e.kind == "image" {
        v["status"] = e.action.clone().into();
        v["id"] = e.actor.id.clone().into();
    }
    if e.kind == "container" {
        if let Some(i) = e.actor.attributes.get("image") {
            v["from"] = i.clone().into();
        }
    }
    v["scope"] = "local".into();
    v
}

/// The filter keys events take (dockerd's, less swarm's).
const FILTER_KEYS: [&str; 8] = [
    "container",
    "event",
    "type",
    "image",
    "label",
    "network",
    "volume",
    "scope",
];

/// dockerd's event filters (daemon/events/filter.go): values of one key are
/// alternatives, except `label`, whose values must all match; different keys must all
/// match.
#[derive(Debug, Default, Clone)]
pub struct Filters(BTreeMap<String, Vec<String>>);

impl Filters {
    /// `key=value` pairs; an unknown key is refused, naming it.
    pub fn parse(fs: &[String]) -> Result<Filters> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for f in fs {
            let Some((k, v)) = f.split_once('=') else {
                return Err(Error::Invalid(format!(
                    "bad format of filter (expected name=value): {f}"
                )));
            };
            if !FILTER_KEYS.contains(&k) {
                return Err(Error::Invalid(format!("invalid filter '{k}'")));
            }
            m.entry(k.to_string()).or_default().push(v.to_string());
        }
        Ok(Filters(m))
    }

    /// Absent or empty key: anything; else one of the values exactly.
    fn exact(&self, k: &str, s: &str) -> bool {
        self.0
            .get(k)
            .is_none_or(|vs| vs.is_empty() || vs.iter().any(|v| v == s))
    }

    /// As `exact`, or a value that is a prefix of `s`.
    fn fuzzy(&self, k: &str, s: &str) -> bool {
        self.exact(k, s)
            || self
                .0
                .get(k)
                .is_some_and(|vs| vs.iter().any(|v| s.starts_with(v.as_str())))
    }

    /// The actor's ID or name, fuzzily (container=, network=, volume=).
    fn name(&self, k: &str, e: &Event) -> bool {
        self.fuzzy(k, &e.actor.id)
            || e.actor
                .attributes
                .get("name")
                .is_some_and(|n| self.fuzzy(k, n))
    }

    fn image(&self, e: &Event) -> bool {
        let attr = if e.kind == "image" { "name" } else { "image" };
        let name = e.actor.attributes.get(attr).map_or("", String::as_str);
        self.exact("image", &e.actor.id)
            || self.exact("image", name)
            || self.exact("image", strip_tag(&e.actor.id))
            || self.exact("image", strip_tag(name))
    }

    fn labels(&self, e: &Event) -> bool {
        let Some(vs) = self.0.get("label").filter(|v| !v.is_empty()) else {
            return true;
        };
        vs.iter()
            .all(|v| crate::parse::label_matches(v, &e.actor.attributes))
    }

    pub fn matches(&self, e: &Event) -> bool {
        // dockerd: an event filter naming one of these matches their `x: detail` forms.
        let fuzzy_event = self.0.get("event").is_some_and(|vs| {
            vs.iter().any(|v| {
                [
                    "health_status",
                    "readiness_status",
                    "exec_create",
                    "exec_start",
                ]
                .contains(&v.as_str())
            })
        });
        let event = if fuzzy_event {
            self.fuzzy("event", &e.action)
        } else {
            self.exact("event", &e.action)
        };
        event
            && self.exact("type", &e.kind)
            && self.exact("scope", "local")
            && self.name("container", e)
            && self.name("volume", e)
            && self.name("network", e)
            && self.image(e)
            && self.labels(e)
    }
}

/// `name:tag` -> `name` (a registry's port is not a tag).
fn strip_tag(image: &str) -> &str {
    match image.rfind(':') {
        Some(i) if !image[i..].contains('/') && !image[..i].contains('@') => &image[..i],
        _ => image,
    }
}

/// What to watch: dockerd's `since`/`until` and filters.
#[derive(Debug, Default, Clone)]
pub struct WatchOptions {
    /// Past events from then on; None: only new ones (unless `until` is set: then every
    /// past one, as dockerd).
    pub since: Option<SystemTime>,
    /// Stop at this time (at once when it has passed, after the past events).
    pub until: Option<SystemTime>,
    pub filters: Filters,
}

/// Reads the event log as it grows (polled every 100 ms), calling `emit` after every
/// read with the events that match (maybe none); `emit` returning false ends the watch
/// (the reader went away).
pub fn watch(
    layout: &Layout,
    o: &WatchOptions,
    emit: &mut dyn FnMut(&[Event]) -> Result<bool>,
) -> Result<()> {
    if let (Some(s), Some(u)) = (o.since, o.until) {
        if u < s {
            return Err(Error::Invalid(format!(
                "`since` time ({}) cannot be after `until` time ({})",
                crate::record::rfc3339(s),
                crate::record::rfc3339(u)
            )));
        }
    }
    let path = layout.events_path();
    let mut file: Option<std::fs::File> = None;
    let mut pos: u64 = 0;
    let mut buf: Vec<u8> = Vec::new();
    let mut first = true;
    loop {
        if file.is_none() {
            match std::fs::File::open(&path) {
                Ok(mut f) => {
                    // Neither bound: only what happens from now on. `until` alone is
                    // dockerd's too: the past up to it.
                    if first && o.since.is_none() && o.until.is_none() {
                        pos = f.seek(SeekFrom::End(0)).map_err(|e| Error::io(&path, e))?;
                    }
                    file = Some(f);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        first = false;
        if let Some(f) = file.as_mut() {
            f.seek(SeekFrom::Start(pos))
                .and_then(|_| f.read_to_end(&mut buf))
                .map(|n| pos += n as u64)
                .map_err(|e| Error::io(&path, e))?;
        }
        let mut used = 0;
        let mut out = Vec::new();
        while let Some(nl) = buf[used..].iter().position(|b| *b == b'\n') {
            let line = &buf[used..used + nl];
            used += nl + 1;
            let Ok(e) = serde_json::from_slice::<Event>(line) else {
                continue;
            };
            let t = event_time(&e);
            if o.since.is_some_and(|s| t < s) || o.until.is_some_and(|u| t > u) {
                continue;
            }
            if o.filters.matches(&e) {
                out.push(e);
            }
        }
        buf.drain(..used);
        if !emit(&out)? {
            return Ok(());
        }
        if o.until.is_some_and(|u| SystemTime::now() >= u) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(action: &str, id: &str, name: &str) -> Event {
        Event {
            kind: "container".into(),
            action: action.into(),
            actor: Actor {
                id: id.into(),
                attributes: [
                    ("name".to_string(), name.to_string()),
                    ("image".to_string(), "busybox:latest".to_string()),
                    ("app".to_string(), "shop".to_string()),
                ]
                .into_iter()
                .collect(),
            },
            time: 1_795_000_000,
            time_nano: 1_795_000_000_123_456_789,
        }
    }

    fn f(v: &[&str]) -> Filters {
        Filters::parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn docker_text_and_filters() {
        let e = ev("start", "abc123", "web");
        assert_eq!(
            text_line(&e),
            "2026-11-18T11:06:40.123456789Z container start abc123 (app=shop, image=busybox:latest, name=web)"
        );
        let fl = f(&["container=web", "event=start", "event=die"]);
        assert!(fl.matches(&e));
        assert!(fl.matches(&ev("die", "abc123", "web")));
        assert!(!fl.matches(&ev("stop", "abc123", "web")));
        assert!(!fl.matches(&ev("start", "def", "db")));
        let fl = f(&["container=abc", "event=health_status"]);
        assert!(fl.matches(&ev("health_status: healthy", "abc123", "x")));
        // Exact unless the filter names one of the `x: detail` events.
        assert!(!f(&["event=health"]).matches(&ev("health_status: healthy", "a", "x")));
        assert!(Filters::parse(&["nope=1".into()]).is_err());
        assert!(Filters::parse(&["container".into()]).is_err());
        let m = message(&e);
        assert_eq!(m["status"], "start");
        assert_eq!(m["from"], "busybox:latest");
        assert_eq!(m["scope"], "local");
        assert_eq!(m["Actor"]["ID"], "abc123");
    }

    #[test]
    fn image_label_type_network_filters() {
        let e = ev("start", "abc123", "web");
        assert!(f(&["image=busybox"]).matches(&e));
        assert!(f(&["image=busybox:latest"]).matches(&e));
        assert!(!f(&["image=alpine"]).matches(&e));
        // label: every value must match.
        assert!(f(&["label=app", "label=app=shop"]).matches(&e));
        assert!(!f(&["label=app=shop", "label=tier"]).matches(&e));
        assert!(f(&["type=container"]).matches(&e));
        assert!(!f(&["type=network"]).matches(&e));
        let mut n = ev("connect", "netid1", "front");
        n.kind = "network".into();
        assert!(f(&["network=front"]).matches(&n));
        assert!(f(&["network=netid"]).matches(&n));
        assert!(!f(&["network=back"]).matches(&n));
        assert!(!f(&["volume=v1"]).matches(&n));
        assert_eq!(strip_tag("localhost:5000/x"), "localhost:5000/x");
        assert_eq!(strip_tag("localhost:5000/x:1"), "localhost:5000/x");
    }

    #[test]
    fn watch_reads_the_past_until_then_stops() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::open(d.path()).unwrap();
        emit(&l, "container", "create", "c1", BTreeMap::new()).unwrap();
        emit(&l, "container", "start", "c1", BTreeMap::new()).unwrap();
        let now = SystemTime::now();
        let o = WatchOptions {
            since: Some(now - Duration::from_secs(60)),
            until: Some(now),
            filters: f(&["event=start"]),
        };
        let mut got = Vec::new();
        watch(&l, &o, &mut |v| {
            got.extend(v.iter().map(|e| e.action.clone()));
            Ok(true)
        })
        .unwrap();
        assert_eq!(got, ["start"]);
        // until alone: the past up to it, as dockerd.
        let o = WatchOptions {
            until: Some(now),
            ..Default::default()
        };
        let mut n = 0;
        watch(&l, &o, &mut |v| {
            n += v.len();
            Ok(true)
        })
        .unwrap();
        assert_eq!(n, 2);
        let bad = WatchOptions {
            since: Some(now),
            until: Some(now - Duration::from_secs(1)),
            ..Default::default()
        };
        assert!(watch(&l, &bad, &mut |_| Ok(true)).is_err());
    }
}
