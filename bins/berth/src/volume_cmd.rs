//! `berth volume create/ls/inspect/rm/prune`, with docker's flags and output. Errors exit 1,
//! as docker's volume commands do.

use crate::Globals;
use anyhow::{anyhow, bail, Result};
use berth_engine::layout::Layout;
use berth_engine::template::Template;
use berth_engine::volumes::{self, Volume};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;

#[derive(clap::Subcommand)]
#[command(defer = true)]
pub enum Cmd {
    /// Manage volumes
    #[command(subcommand)]
    Volume(VolumeCmd),
}

#[derive(clap::Subcommand)]
#[command(defer = true)]
pub enum VolumeCmd {
    /// Create a volume
    Create(CreateArgs),
    /// List volumes
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectArgs),
    /// Remove one or more volumes
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove unused local volumes
    Prune(PruneArgs),
}

#[derive(clap::Args)]
pub struct CreateArgs {
    /// Specify volume driver name
    #[arg(short = 'd', long, default_value = "local")]
    driver: String,
    /// Set metadata for a volume (KEY=VALUE)
    #[arg(long)]
    label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt")]
    opt: Vec<String>,
    /// The volume's name (random when omitted)
    name: Option<String>,
}

#[derive(clap::Args)]
pub struct LsArgs {
    /// Only display volume names
    #[arg(short, long)]
    quiet: bool,
    /// Format output using a custom template ('json', or a Go template)
    #[arg(long)]
    format: Option<String>,
    /// Filter output (dangling=true|false, name=SUBSTRING, label=KEY[=VALUE], driver=local)
    #[arg(short, long)]
    filter: Vec<String>,
}

#[derive(clap::Args)]
pub struct InspectArgs {
    /// Format output using a custom template ('json', or a Go template)
    #[arg(short, long)]
    format: Option<String>,
    #[arg(required = true)]
    names: Vec<String>,
}

#[derive(clap::Args)]
pub struct RmArgs {
    /// Do not error when a volume does not exist
    #[arg(short, long)]
    force: bool,
    #[arg(required = true)]
    names: Vec<String>,
}

#[derive(clap::Args)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
}

pub fn dispatch(g: &Globals, c: Cmd) -> i32 {
    let Cmd::Volume(c) = c;
    let layout = match Layout::open(&g.root) {
        Ok(l) => l,
        Err(e) => return fail(anyhow!(e)),
    };
    let r = match c {
        VolumeCmd::Create(a) => create(&layout, a),
        VolumeCmd::Ls(a) => ls(&layout, a),
        VolumeCmd::Inspect(a) => return inspect(&layout, a),
        VolumeCmd::Rm(a) => return rm(&layout, a),
        VolumeCmd::Prune(a) => prune(&layout, a),
    };
    match r {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
}

fn fail(e: anyhow::Error) -> i32 {
    crate::print_error(&e);
    1
}

fn create(l: &Layout, a: CreateArgs) -> Result<()> {
    if a.driver != "local" {
        bail!("volume driver {:?} is not supported (only local)", a.driver);
    }
    if let Some(o) = a.opt.first() {
        bail!("volume option {o:?} is not supported (the local driver takes no options here)");
    }
    let mut labels = BTreeMap::new();
    for s in &a.label {
        let (k, v) = s.split_once('=').unwrap_or((s, ""));
        if k.is_empty() {
            bail!("invalid label {s:?}: empty name");
        }
        labels.insert(k.to_string(), v.to_string());
    }
    let (v, _) = volumes::create(l, a.name.as_deref(), labels, false)?;
    println!("{}", v.name);
    Ok(())
}

fn labels_string(v: &Volume) -> String {
    v.labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// What `volume ls --format` sees (docker's volume list fields).
fn ls_value(v: &Volume) -> Value {
    json!({
        "Availability": "N/A",
        "CreatedAt": v.created_at,
        "Driver": v.driver,
        "Group": "N/A",
        "Labels": labels_string(v),
        "Links": "N/A",
        "Mountpoint": v.mountpoint,
        "Name": v.name,
        "Scope": v.scope,
        "Size": "N/A",
        "Status": "N/A",
    })
}

fn header_names(f: &str) -> Option<String> {
    Some(
        match f {
            "Name" => "VOLUME NAME",
            "Driver" => "DRIVER",
            "Scope" => "SCOPE",
            "Mountpoint" => "MOUNTPOINT",
            "Labels" => "LABELS",
            "CreatedAt" => "CREATED AT",
            _ => return None,
        }
        .to_string(),
    )
}

fn ls(l: &Layout, a: LsArgs) -> Result<()> {
    let vols = volumes::list_filtered(l, &a.filter)?;
    let format = match (&a.format, a.quiet) {
        (Some(f), _) => f.clone(),
        (None, true) => "{{.Name}}".into(),
        (None, false) => "table {{.Driver}}\t{{.Name}}".into(),
    };
    let t = Template::parse(&format)?;
    let values: Vec<Value> = vols.iter().map(ls_value).collect();
    let out = t.render_all(&values, &header_names)?;
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(())
}

/// docker's inspect JSON: an array, 4-space indented.
fn pretty(v: &Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    serde::Serialize::serialize(v, &mut ser).expect("json values serialise");
    String::from_utf8(buf).expect("json is utf-8")
}

fn inspect(l: &Layout, a: InspectArgs) -> i32 {
    let t = match a.format.as_deref().map(Template::parse).transpose() {
        Ok(t) => t,
        Err(e) => return fail(anyhow!(e)),
    };
    let mut found = Vec::new();
    let mut code = 0;
    for n in &a.names {
        match volumes::load(l, n) {
            Ok(v) => found.push(serde_json::to_value(&v).expect("volume serialises")),
            Err(e) => {
                code = 1;
                crate::print_error(&anyhow!(e));
            }
        }
    }
    let out = match &t {
        None => format!("{}\n", pretty(&Value::Array(found))),
        Some(t) => match t.render_all(&found, &|_| None) {
            Ok(s) => s,
            Err(e) => return fail(anyhow!(e)),
        },
    };
    let _ = std::io::stdout().write_all(out.as_bytes());
    code
}

fn rm(l: &Layout, a: RmArgs) -> i32 {
    let mut code = 0;
    for n in &a.names {
        match volumes::remove(l, n) {
            Ok(()) => println!("{n}"),
            Err(berth_engine::Error::NoSuchVolume(_)) if a.force => {}
            Err(e) => {
                code = 1;
                crate::print_error(&anyhow!(e));
            }
        }
    }
    code
}

/// docker's units.HumanSize: decimal units, 4 significant digits.
pub fn human_size(b: u64) -> String {
    const U: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1000.0 && i < U.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    // %.4g
    let digits = if v >= 100.0 {
        1
    } else if v >= 10.0 {
        2
    } else {
        3
    };
    let s = if v >= 1000.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.digits$}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    format!("{s}{}", U[i])
}

fn prune(l: &Layout, a: PruneArgs) -> Result<()> {
    if !a.force {
        let what = if a.all {
            "all local volumes"
        } else {
            "anonymous local volumes"
        };
        print!(
            "WARNING! This will remove {what} not used by at least one container.\n\
             Are you sure you want to continue? [y/N] "
        );
        std::io::stdout().flush()?;
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        if !matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            return Ok(());
        }
    }
    let (names, bytes) = volumes::prune(l, a.all)?;
    let mut out = String::new();
    if !names.is_empty() {
        out.push_str("Deleted Volumes:\n");
        for n in &names {
            out.push_str(n);
            out.push('\n');
        }
        out.push('\n');
    }
    out.push_str(&format!("Total reclaimed space: {}\n", human_size(bytes)));
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(5), "5B");
        assert_eq!(human_size(1234), "1.234kB");
        assert_eq!(human_size(12_345), "12.35kB");
        assert_eq!(human_size(1_000_000), "1MB");
        assert_eq!(human_size(999), "999B");
    }

    #[test]
    fn ls_fields() {
        let v = Volume {
            created_at: "2026-01-01T00:00:00Z".into(),
            driver: "local".into(),
            labels: [
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), "".to_string()),
            ]
            .into(),
            mountpoint: "/x/_data".into(),
            name: "v1".into(),
            options: Default::default(),
            scope: "local".into(),
        };
        let t = Template::parse("table {{.Driver}}\t{{.Name}}").unwrap();
        let out = t.render_all(&[ls_value(&v)], &header_names).unwrap();
        assert_eq!(
            out.lines().next().unwrap().trim_end(),
            "DRIVER    VOLUME NAME"
        );
        assert_eq!(out.lines().nth(1).unwrap().trim_end(), "local     v1");
        let t = Template::parse("{{.Labels}} {{.Label \"a\"}}").unwrap();
        assert_eq!(t.render(&ls_value(&v)).unwrap(), "a=1,b= 1");
    }
}
