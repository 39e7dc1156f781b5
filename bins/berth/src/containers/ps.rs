//! `ps`: docker's columns, filters and --format. Reads records only (plus /proc for the
//! containers whose monitor may be gone): never the runtime.

use super::{human_duration, secs_since, short_id, Eng};
use anyhow::Result;
pub use berth_engine::human::status_text;
use berth_engine::record::{ContainerConfig, ContainerState};
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

pub fn ps(e: &Eng, a: PsArgs) -> Result<()> {
    let o = berth_engine::list::ListOptions {
        all: a.all,
        last: if a.latest { Some(1) } else { a.last },
        filters: a.filter.clone(),
    };
    let listed = berth_engine::list::containers(&e.layout, &e.store, &o)
        .map_err(|x| super::engine_err(e, x))?;
    let rows: Vec<Value> = listed
        .iter()
        .map(|l| {
            let mut r = row(&l.config, &l.state, !a.no_trunc);
            if l.odd.is_some() {
                r["State"] = json!(l.state_word());
                r["Status"] = json!(l.status_text());
            }
            r
        })
        .collect();
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
    fn quoting() {
        assert_eq!(
            go_quote(&ellipsis("/bin/sh -c 'sleep 100; echo done'", 20)),
            "\"/bin/sh -c 'sleep 1…\""
        );
        assert_eq!(go_quote("a\"b"), "\"a\\\"b\"");
        assert_eq!(
            go_time("2024-01-02T03:04:05.123Z"),
            "2024-01-02 03:04:05 +0000 UTC"
        );
    }
}
