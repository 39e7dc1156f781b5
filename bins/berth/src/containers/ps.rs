//! `ps`: docker's columns, filters and --format. Reads records only (plus /proc for the
//! containers whose monitor may be gone): never the runtime.

use super::{human_duration, secs_since, short_id, Eng};
use anyhow::{bail, Result};
use berth_engine::inventory::Entry;
use berth_engine::record::{ContainerConfig, ContainerState, Status};
use berth_engine::status;
use berth_engine::template::Template;
use serde_json::{json, Value};

#[derive(clap::Args, Clone)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last")]
    pub last: Option<usize>,
    /// Show the latest created container (includes all states)
    #[arg(short, long)]
    pub latest: bool,
    /// Filter output based on conditions provided
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a Go template, `table`, or `json`
    #[arg(long)]
    pub format: Option<String>,
}

const DEFAULT_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

/// docker's column headers.
pub fn header_name(field: &str) -> Option<String> {
    Some(
        match field {
            "ID" => "CONTAINER ID",
            "Image" => "IMAGE",
            "Command" => "COMMAND",
            "CreatedAt" => "CREATED AT",
            "RunningFor" => "CREATED",
            "Ports" => "PORTS",
            "State" => "STATE",
            "Status" => "STATUS",
            "Size" => "SIZE",
            "Names" => "NAMES",
            "Labels" => "LABELS",
            "Label" => "LABEL",
            "Mounts" => "MOUNTS",
            "Networks" => "NETWORKS",
            "LocalVolumes" => "LOCAL VOLUMES",
            _ => return None,
        }
        .to_string(),
    )
}

/// docker's STATUS column.
pub fn status_text(s: &ContainerState) -> String {
    let since = |t: &str| secs_since(t).map(human_duration).unwrap_or_default();
    match s.status {
        Status::Created => "Created".into(),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
        Status::Restarting => format!("Restarting ({}) {} ago", s.exit_code, since(&s.finished_at)),
        Status::Exited => {
            if s.finished_at.is_empty() {
                format!("Exited ({})", s.exit_code)
            } else {
                format!("Exited ({}) {} ago", s.exit_code, since(&s.finished_at))
            }
        }
        Status::Running | Status::Paused => {
            let mut t = format!("Up {}", since(&s.started_at));
            if s.status == Status::Paused {
                t.push_str(" (Paused)");
            } else if let Some(h) = &s.health {
                match h.status.as_str() {
                    "starting" => t.push_str(" (health: starting)"),
                    "" => {}
                    x => t.push_str(&format!(" ({x})")),
                }
            }
            t
        }
    }
}

fn ellipsis(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut t: String = s.chars().take(n - 1).collect();
    t.push('…');
    t
}

/// Go's time.Time.String() for a UTC time: "2024-01-02 03:04:05 +0000 UTC".
fn go_time(rfc: &str) -> String {
    match rfc.get(..19) {
        Some(d) => format!("{} +0000 UTC", d.replacen('T', " ", 1)),
        None => String::new(),
    }
}

/// docker's NETWORKS column: the mode's name, or the networks (comma-separated).
fn network_names(c: &ContainerConfig) -> String {
    use berth_engine::options::NetworkMode;
    match &c.options.network {
        NetworkMode::Host => "host".into(),
        NetworkMode::None => "none".into(),
        NetworkMode::Container(r) => format!("container:{r}"),
        NetworkMode::Bridge => c
            .options
            .networks
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// docker's PORTS column: `0.0.0.0:8080->80/tcp, :::8080->80/tcp` (ranges are listed
/// port by port, not folded as docker folds them).
pub fn ports_text(s: &ContainerState) -> String {
    let Some(n) = &s.network else {
        return String::new();
    };
    n.ports
        .iter()
        .map(|p| {
            // docker: "0.0.0.0:8080", ":::8080" (the address, then ':' and the port).
            let ip = format!("{}:", p.host_ip);
            format!("{ip}{}->{}/{}", p.host_port, p.container_port, p.proto)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One `ps` row, in docker's `ps --format json` shape.
pub fn row(c: &ContainerConfig, s: &ContainerState, trunc: bool) -> Value {
    let mut command = c.path.clone();
    for a in &c.args {
        command.push(' ');
        command.push_str(a);
    }
    if trunc {
        command = ellipsis(&command, 20);
    }
    let labels: Vec<String> = c
        .options
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mounts: Vec<String> = c
        .volumes
        .iter()
        .map(|v| {
            if trunc {
                ellipsis(&v.name, 15)
            } else {
                v.name.clone()
            }
        })
        .collect();
    json!({
        "Command": berth_engine::template::go_quote(&command),
        "CreatedAt": go_time(&c.created),
        "ID": if trunc { short_id(&c.id).to_string() } else { c.id.clone() },
        "Image": c.options.image,
        "Labels": labels.join(","),
        "LocalVolumes": c.volumes.len().to_string(),
        "Mounts": mounts.join(","),
        "Names": c.name,
        "Networks": network_names(c),
        "Ports": ports_text(s),
        "RunningFor": secs_since(&c.created).map(|x| format!("{} ago", human_duration(x))).unwrap_or_default(),
        "Size": "0B",
        "State": s.status.as_str(),
        "Status": status_text(s),
    })
}

/// A row with every field, for checking a template when there is nothing to list.
fn sample_row() -> Value {
    let c = ContainerConfig {
        stop_signal: 15,
        ..ContainerConfig::bare(&"0".repeat(64), "", Default::default())
    };
    row(&c, &ContainerState::default(), true)
}

struct Filters {
    by: Vec<(String, String)>,
    /// `before=`/`since=` references resolved to the created time of that container.
    created_of: std::collections::BTreeMap<String, String>,
}

impl Filters {
    fn parse(f: &[String]) -> Result<Filters> {
        let mut by = Vec::new();
        for x in f {
            let Some((k, v)) = x.split_once('=') else {
                bail!("invalid filter '{x}'");
            };
            let k = k.trim().to_ascii_lowercase();
            match k.as_str() {
                "status" => {
                    if ![
                        "created",
                        "restarting",
                        "running",
                        "removing",
                        "paused",
                        "exited",
                        "dead",
                        "unknown",
                    ]
                    .contains(&v)
                    {
                        bail!("invalid filter 'status={v}'");
                    }
                }
                "exited" => {
                    if v.parse::<i32>().is_err() {
                        bail!("invalid filter 'exited={v}'");
                    }
                }
                "health" => {
                    if !["starting", "healthy", "unhealthy", "none"].contains(&v) {
                        bail!("invalid filter 'health={v}'");
                    }
                }
                "name" | "id" | "label" | "ancestor" | "before" | "since" | "volume" => {}
                _ => bail!("invalid filter '{k}'"),
            }
            by.push((k, v.to_string()));
        }
        Ok(Filters {
            by,
            created_of: Default::default(),
        })
    }

    /// Resolves the containers named by `before=`/`since=` (docker's error when missing).
    fn resolve_refs(&mut self, e: &Eng) -> Result<()> {
        for (k, v) in &self.by {
            if k == "before" || k == "since" {
                let id = berth_engine::lookup::resolve(&e.layout, v)
                    .map_err(|x| super::engine_err(e, x))?;
                let c = e.layout.load_config(&id)?;
                self.created_of.insert(v.clone(), c.created);
            }
        }
        Ok(())
    }

    fn wants_status(&self, v: &str) -> bool {
        self.by.iter().any(|(k, x)| k == "status" && x == v)
    }

    fn has(&self, key: &str) -> bool {
        self.by.iter().any(|(k, _)| k == key)
    }

    /// Values of one key are OR-ed, different keys AND-ed, and every label must match
    /// (docker's rules).
    fn matches(&self, c: &ContainerConfig, s: &ContainerState) -> bool {
        let keys: std::collections::BTreeSet<&str> =
            self.by.iter().map(|(k, _)| k.as_str()).collect();
        keys.into_iter().all(|key| {
            let mut vals = self.by.iter().filter(|(k, _)| k == key);
            let one = |(_, v): &(String, String)| match key {
                "status" => s.status.as_str() == v,
                "name" => c.name.contains(v.trim_start_matches('/')),
                "id" => c.id.starts_with(v.as_str()),
                "exited" => s.status == Status::Exited && v.parse() == Ok(s.exit_code),
                "health" => match &s.health {
                    Some(h) if !h.status.is_empty() => h.status == *v,
                    _ => v == "none",
                },
                "before" => self.created_of.get(v).is_some_and(|t| c.created < *t),
                "since" => self.created_of.get(v).is_some_and(|t| c.created > *t),
                "volume" => {
                    c.volumes.iter().any(|u| u.name == *v || u.target == *v)
                        || c.options.mounts.iter().any(|m| match m {
                            berth_engine::options::MountSpec::Bind { source, target, .. } => {
                                source == v || target == v
                            }
                            berth_engine::options::MountSpec::Tmpfs { target, .. } => target == v,
                            berth_engine::options::MountSpec::Volume { target, .. } => target == v,
                        })
                }
                "label" => match v.split_once('=') {
                    Some((lk, lv)) => c.options.labels.get(lk).map(String::as_str) == Some(lv),
                    None => c.options.labels.contains_key(v.as_str()),
                },
                "ancestor" => {
                    let img = v.as_str();
                    let hex = img.strip_prefix("sha256:").unwrap_or(img);
                    c.options.image == img
                        || c.options.image == format!("{img}:latest")
                        || img == format!("{}:latest", c.options.image)
                        || (hex.len() >= 4
                            && c.image_id.trim_start_matches("sha256:").starts_with(hex))
                }
                _ => false,
            };
            if key == "label" {
                vals.all(one)
            } else {
                vals.any(one)
            }
        })
    }
}

/// A config to list a container whose own cannot be read: its id, the name that links
/// to it, and what its creator recorded.
fn placeholder(
    layout: &berth_engine::layout::Layout,
    id: &str,
    creator: Option<&berth_engine::record::Creating>,
) -> ContainerConfig {
    let name = berth_engine::inventory::names_of(layout, id)
        .into_iter()
        .next()
        .or_else(|| creator.map(|c| c.name.clone()))
        .unwrap_or_default();
    let options = berth_engine::options::CreateOptions {
        image: creator.map(|c| c.image.clone()).unwrap_or_default(),
        ..Default::default()
    };
    ContainerConfig {
        created: creator.map(|c| c.created.clone()).unwrap_or_default(),
        ..ContainerConfig::bare(id, &name, options)
    }
}

pub fn ps(e: &Eng, a: PsArgs) -> Result<()> {
    let mut filters = Filters::parse(&a.filter)?;
    filters.resolve_refs(e)?;
    let mut items: Vec<(ContainerConfig, ContainerState)> = Vec::new();
    // What cannot be read is listed too, as unknown with the reason (docker has no such
    // state; its `dead` is a removal that failed).
    let mut odd: std::collections::BTreeMap<String, (&'static str, String)> = Default::default();
    for ent in berth_engine::inventory::entries(&e.layout, &e.store)? {
        match ent {
            Entry::Container(c) => match status::current(&e.layout, &c.id) {
                Ok(s) => items.push((*c, s)),
                Err(berth_engine::Error::Unreadable { reason, .. }) => {
                    odd.insert(c.id.clone(), ("unknown", format!("Unknown ({reason})")));
                    items.push((*c, ContainerState::default()));
                }
                // Removed meanwhile.
                Err(_) => {}
            },
            Entry::Broken { id, reason } => {
                odd.insert(id.clone(), ("unknown", format!("Unknown ({reason})")));
                items.push((placeholder(&e.layout, &id, None), ContainerState::default()));
            }
            Entry::HalfMade { id, creator, .. } => {
                odd.insert(id.clone(), ("created", "Creating".to_string()));
                items.push((
                    placeholder(&e.layout, &id, creator.as_ref()),
                    ContainerState::default(),
                ));
            }
        }
    }
    items.sort_by(|x, y| y.0.created.cmp(&x.0.created));
    let last = if a.latest {
        Some(1)
    } else {
        a.last.filter(|n| *n > 0)
    };
    let all = a.all || last.is_some() || filters.has("status") || filters.has("exited");
    let mut rows = Vec::new();
    for (c, s) in &items {
        let unknown = odd.get(&c.id).is_some_and(|o| o.0 == "unknown");
        if !all
            && !unknown
            && !matches!(
                s.status,
                Status::Running | Status::Paused | Status::Restarting
            )
        {
            continue;
        }
        if unknown && filters.has("status") && !filters.wants_status("unknown") {
            continue;
        }
        if !filters.matches(c, s) {
            continue;
        }
        let mut r = row(c, s, !a.no_trunc);
        if let Some((state, text)) = odd.get(&c.id) {
            r["State"] = json!(state);
            r["Status"] = json!(text);
        }
        rows.push(r);
        if last.is_some_and(|n| rows.len() >= n) {
            break;
        }
    }
    let fmt = if a.quiet {
        "{{.ID}}".to_string()
    } else {
        match a.format.as_deref() {
            None | Some("") | Some("table") => DEFAULT_TABLE.to_string(),
            Some(f) => f.to_string(),
        }
    };
    let t = Template::parse(&fmt)?;
    // An unknown field is an error even with no rows to render (docker checks it too).
    if rows.is_empty() {
        t.render(&sample_row())?;
    }
    let out = t.render_all(&rows, &header_name)?;
    use std::io::Write;
    let mut so = std::io::stdout().lock();
    let _ = so.write_all(out.as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_engine::template::go_quote;

    #[test]
    fn quoting_and_status() {
        assert_eq!(
            go_quote(&ellipsis("/bin/sh -c 'sleep 100; echo done'", 20)),
            "\"/bin/sh -c 'sleep 1…\""
        );
        assert_eq!(go_quote("a\"b"), "\"a\\\"b\"");
        assert_eq!(
            go_time("2024-01-02T03:04:05.123Z"),
            "2024-01-02 03:04:05 +0000 UTC"
        );
        let s = ContainerState {
            status: Status::Exited,
            exit_code: 3,
            finished_at: berth_engine::record::now_rfc3339(),
            ..Default::default()
        };
        assert_eq!(status_text(&s), "Exited (3) Less than a second ago");
        assert_eq!(status_text(&ContainerState::default()), "Created");
        let s = ContainerState {
            status: Status::Running,
            started_at: berth_engine::record::rfc3339(
                std::time::SystemTime::now() - std::time::Duration::from_secs(5),
            ),
            health: Some(berth_engine::record::Health {
                status: "healthy".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(status_text(&s), "Up 5 seconds (healthy)");
    }
}
