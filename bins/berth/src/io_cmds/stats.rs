//! `berth stats`: docker's columns from each container's cgroup (berth_engine::stats),
//! CPU % from two samples.

use super::{short, template};
use anyhow::Result;
use berth_engine::layout::Layout;
use berth_engine::stats::{bytes_size, cpu_percent, human_size, Sample, Target};
use std::io::Write;
use std::time::Duration;

#[derive(clap::Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    no_stream: bool,
    /// Do not truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Format output using a custom template ('table', 'json' or a Go template)
    #[arg(long)]
    format: Option<String>,
    containers: Vec<String>,
}

fn targets(layout: &Layout, a: &StatsArgs) -> Result<Vec<Target>> {
    berth_engine::stats::targets(layout, &a.containers, a.all).map_err(|e| match e {
        berth_engine::Error::NoSuchContainer(r) => anyhow::anyhow!("No such container: {r}"),
        e => e.into(),
    })
}

fn sample(t: &Target) -> Sample {
    berth_engine::stats::read(t)
        .map(|r| r.sample)
        .unwrap_or_default()
}

fn row(t: &Target, prev: &Sample, cur: &Sample, no_trunc: bool) -> serde_json::Value {
    let id = if no_trunc { &t.id } else { short(&t.id) };
    let (cpu, mem, memp, net, blk, pids) = if t.running {
        (
            format!("{:.2}%", cpu_percent(prev, cur)),
            format!(
                "{} / {}",
                bytes_size(cur.mem_usage),
                bytes_size(cur.mem_limit)
            ),
            format!("{:.2}%", cur.mem_percent()),
            format!("{} / {}", human_size(cur.net_rx), human_size(cur.net_tx)),
            format!(
                "{} / {}",
                human_size(cur.blk_read),
                human_size(cur.blk_write)
            ),
            cur.pids.to_string(),
        )
    } else {
        // docker's row for a container that is not running.
        (
            "0.00%".into(),
            "0B / 0B".into(),
            "0.00%".into(),
            "0B / 0B".into(),
            "0B / 0B".into(),
            "0".into(),
        )
    };
    serde_json::json!({
        "BlockIO": blk,
        "CPUPerc": cpu,
        "Container": id,
        "ID": id,
        "MemPerc": memp,
        "MemUsage": mem,
        "Name": t.name,
        "NetIO": net,
        "PIDs": pids,
    })
}

fn header(k: &str) -> Option<String> {
    Some(
        match k {
            "ID" => "CONTAINER ID",
            "Container" => "CONTAINER",
            "Name" => "NAME",
            "CPUPerc" => "CPU %",
            "MemUsage" => "MEM USAGE / LIMIT",
            "MemPerc" => "MEM %",
            "NetIO" => "NET I/O",
            "BlockIO" => "BLOCK I/O",
            "PIDs" => "PIDS",
            _ => return None,
        }
        .to_string(),
    )
}

const DEFAULT: &str =
    "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

pub fn run(layout: &Layout, a: StatsArgs) -> Result<()> {
    let fmt = match a.format.as_deref() {
        None | Some("table") | Some("") => DEFAULT,
        Some(f) => f,
    };
    let tpl = template(fmt)?;
    let mut ts = targets(layout, &a)?;
    let mut prev: Vec<Sample> = ts.iter().map(sample).collect();
    loop {
        // The CPU share is a rate: it needs a second reading.
        std::thread::sleep(Duration::from_millis(if a.no_stream { 500 } else { 1000 }));
        let cur: Vec<Sample> = ts.iter().map(sample).collect();
        let rows: Vec<serde_json::Value> = ts
            .iter()
            .zip(prev.iter().zip(cur.iter()))
            .map(|(t, (p, c))| row(t, p, c, a.no_trunc))
            .collect();
        let out = tpl.render_all(&rows, &header)?;
        let mut o = std::io::stdout().lock();
        let w = if a.no_stream {
            o.write_all(out.as_bytes())
        } else {
            // Redraw in place, as docker.
            o.write_all(b"\x1b[2J\x1b[H")
                .and_then(|_| o.write_all(out.as_bytes()))
        };
        if let Err(e) = w.and_then(|_| o.flush()) {
            if super::stdout_closed(&e) {
                return Ok(());
            }
            return Err(e.into());
        }
        if a.no_stream {
            return Ok(());
        }
        prev = cur;
        if a.containers.is_empty() {
            // New containers join the stream; previous samples carry over by ID.
            let nts = targets(layout, &a)?;
            prev = nts
                .iter()
                .map(|n| {
                    ts.iter()
                        .position(|t| t.id == n.id)
                        .map(|i| prev[i].clone())
                        .unwrap_or_else(|| sample(n))
                })
                .collect();
            ts = nts;
        }
    }
}
