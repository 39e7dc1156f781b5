//! `berth events`: the engine's event log (R/engine/events.jsonl). Like docker, without
//! `--since` only new events are shown; without `--until` it keeps following the file
//! (until interrupted or stdout closes).

use super::{parse_time, stdout_closed, template};
use anyhow::{bail, Result};
use berth_engine::events::Event;
use berth_engine::layout::Layout;
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(clap::Args)]
pub struct EventsArgs {
    /// Show all events created since timestamp
    #[arg(long)]
    since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long)]
    until: Option<String>,
    /// Filter output based on conditions provided (container=, event=, type=, image=)
    #[arg(short, long = "filter")]
    filter: Vec<String>,
    /// Format output using a custom template ('json' or a Go template)
    #[arg(long)]
    format: Option<String>,
}

/// docker's filters: values of one key are alternatives, different keys must all match.
#[derive(Default)]
struct Filters(BTreeMap<String, Vec<String>>);

impl Filters {
    fn parse(fs: &[String]) -> Result<Filters> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for f in fs {
            let Some((k, v)) = f.split_once('=') else {
                bail!("bad format of filter (expected name=value): {f}");
            };
            match k {
                "container" | "event" | "type" | "image" => {
                    m.entry(k.to_string()).or_default().push(v.to_string())
                }
                _ => bail!("invalid filter '{k}'"),
            }
        }
        Ok(Filters(m))
    }

    fn matches(&self, e: &Event) -> bool {
        self.0.iter().all(|(k, vals)| {
            vals.iter().any(|v| match k.as_str() {
                "container" => {
                    e.kind == "container"
                        && (e.actor.id.starts_with(v.as_str())
                            || e.actor.attributes.get("name").is_some_and(|n| n == v))
                }
                "event" => e.action == *v || e.action.split(':').next().is_some_and(|a| a == v),
                "type" => e.kind == *v,
                "image" => e.actor.attributes.get("image").is_some_and(|i| i == v),
                _ => false,
            })
        })
    }
}

fn event_time(e: &Event) -> SystemTime {
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
        berth_engine::record::rfc3339(event_time(e)),
        e.kind,
        e.action,
        e.actor.id
    );
    if !attrs.is_empty() {
        s.push_str(&format!(" ({})", attrs.join(", ")));
    }
    s
}

/// The value templates see: the event plus docker's legacy fields.
fn value(e: &Event) -> serde_json::Value {
    let mut v = serde_json::to_value(e).expect("events serialise");
    if e.kind == "container" {
        v["status"] = e.action.clone().into();
        v["id"] = e.actor.id.clone().into();
        if let Some(i) = e.actor.attributes.get("image") {
            v["from"] = i.clone().into();
        }
    }
    v["scope"] = "local".into();
    v
}

pub fn run(layout: &Layout, a: EventsArgs) -> Result<()> {
    let now = SystemTime::now();
    let since = a.since.as_deref().map(|s| parse_time(s, now)).transpose()?;
    let until = a.until.as_deref().map(|s| parse_time(s, now)).transpose()?;
    let filters = Filters::parse(&a.filter)?;
    let tpl = a.format.as_deref().map(template).transpose()?;
    let path = layout.events_path();
    let mut file: Option<std::fs::File> = None;
    let mut pos: u64 = 0;
    let mut buf: Vec<u8> = Vec::new();
    let mut first = true;
    let stdout = std::io::stdout();
    loop {
        if file.is_none() {
            match std::fs::File::open(&path) {
                Ok(mut f) => {
                    // Without --since only what happens from now on.
                    if first && since.is_none() {
                        pos = f.seek(SeekFrom::End(0))?;
                    }
                    file = Some(f);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(anyhow::Error::new(e).context(path.display().to_string())),
            }
        }
        first = false;
        if let Some(f) = file.as_mut() {
            f.seek(SeekFrom::Start(pos))?;
            let n = f.read_to_end(&mut buf)?;
            pos += n as u64;
        }
        let mut used = 0;
        let mut out = String::new();
        while let Some(nl) = buf[used..].iter().position(|b| *b == b'\n') {
            let line = &buf[used..used + nl];
            used += nl + 1;
            let Ok(e) = serde_json::from_slice::<Event>(line) else {
                continue;
            };
            let t = event_time(&e);
            if since.is_some_and(|s| t < s) || until.is_some_and(|u| t > u) {
                continue;
            }
            if !filters.matches(&e) {
                continue;
            }
            match &tpl {
                Some(t) => out.push_str(&t.render(&value(&e))?),
                None => out.push_str(&text_line(&e)),
            }
            out.push('\n');
        }
        buf.drain(..used);
        if !out.is_empty() {
            let mut o = stdout.lock();
            if let Err(e) = o.write_all(out.as_bytes()).and_then(|_| o.flush()) {
                if stdout_closed(&e) {
                    return Ok(());
                }
                return Err(e.into());
            }
        }
        if until.is_some_and(|u| SystemTime::now() >= u) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_engine::events::Actor;

    fn ev(action: &str, id: &str, name: &str) -> Event {
        Event {
            kind: "container".into(),
            action: action.into(),
            actor: Actor {
                id: id.into(),
                attributes: [
                    ("name".to_string(), name.to_string()),
                    ("image".to_string(), "busybox".to_string()),
                ]
                .into_iter()
                .collect(),
            },
            time: 1_795_000_000,
            time_nano: 1_795_000_000_123_456_789,
        }
    }

    #[test]
    fn docker_text_and_filters() {
        let e = ev("start", "abc123", "web");
        assert_eq!(
            text_line(&e),
            "2026-11-18T11:06:40.123456789Z container start abc123 (image=busybox, name=web)"
        );
        let f = Filters::parse(&[
            "container=web".into(),
            "event=start".into(),
            "event=die".into(),
        ])
        .unwrap();
        assert!(f.matches(&e));
        assert!(f.matches(&ev("die", "abc123", "web")));
        assert!(!f.matches(&ev("stop", "abc123", "web")));
        assert!(!f.matches(&ev("start", "def", "db")));
        let f = Filters::parse(&["container=abc".into(), "event=health_status".into()]).unwrap();
        assert!(f.matches(&ev("health_status: healthy", "abc123", "x")));
        assert!(Filters::parse(&["nope=1".into()]).is_err());
        assert!(Filters::parse(&["container".into()]).is_err());
        assert_eq!(value(&e)["status"], "start");
    }
}
