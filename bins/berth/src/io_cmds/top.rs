//! `berth top`: the container's processes (the pids of its cgroup), shown by the host's
//! `ps` (default `-ef`) filtered to them, as docker does.

use super::resolve;
use anyhow::{anyhow, bail, Context, Result};
use berth_engine::layout::Layout;

#[derive(clap::Args)]
pub struct TopArgs {
    container: String,
    /// ps options (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_args: Vec<String>,
}

/// The container's cgroupsPath as written in its bundle (else parent/id).
pub fn cgroups_path(layout: &Layout, id: &str) -> Result<String> {
    let p = layout.bundle_dir(id).join("config.json");
    if let Ok(b) = std::fs::read(&p) {
        let v: serde_json::Value =
            serde_json::from_slice(&b).with_context(|| format!("decode {}", p.display()))?;
        if let Some(c) = v.pointer("/linux/cgroupsPath").and_then(|c| c.as_str()) {
            return Ok(c.to_string());
        }
    }
    let cfg = layout.load_config(id)?;
    Ok(format!(
        "{}/{id}",
        cfg.options.cgroup_parent.trim_end_matches('/')
    ))
}

/// docker's parsePSOutput: the header's titles, and the rows whose PID is one of `pids`
/// (the last column takes the rest of the line).
pub fn parse_ps(out: &str, pids: &[i32]) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let mut lines = out.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| anyhow!("Couldn't find PID field in ps output"))?;
    let mut rows = Vec::new();
    for l in lines {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < titles.len() {
            continue;
        }
        let Ok(pid) = f[pid_col].parse::<i32>() else {
            bail!("unexpected pid {:?} in ps output", f[pid_col]);
        };
        if !pids.contains(&pid) {
            continue;
        }
        let mut row: Vec<String> = f[..titles.len() - 1]
            .iter()
            .map(|s| s.to_string())
            .collect();
        row.push(f[titles.len() - 1..].join(" "));
        rows.push(row);
    }
    Ok((titles, rows))
}

/// Columns aligned as docker's top table (tabwriter minwidth 20, padding 3).
pub fn table(titles: &[String], rows: &[Vec<String>]) -> String {
    let n = titles.len();
    let mut w = vec![0usize; n];
    for r in std::iter::once(titles).chain(rows.iter().map(|r| r.as_slice())) {
        for (i, c) in r.iter().enumerate().take(n.saturating_sub(1)) {
            w[i] = w[i].max((c.chars().count() + 3).max(20));
        }
    }
    let mut out = String::new();
    for r in std::iter::once(titles).chain(rows.iter().map(|r| r.as_slice())) {
        for (i, c) in r.iter().enumerate() {
            if i + 1 < n {
                out.push_str(&format!("{c:<width$}", width = w[i]));
            } else {
                out.push_str(c);
            }
        }
        out.push('\n');
    }
    out
}

pub fn run(layout: &Layout, a: TopArgs) -> Result<()> {
    let id = resolve(layout, &a.container)?;
    top_of(layout, &id, &a.ps_args)
}

/// The processes of container `id`, as `ps ARGS` shows them (default `-ef`).
pub fn top_of(layout: &Layout, id: &str, ps_args: &[String]) -> Result<()> {
    let id = id.to_string();
    let st = berth_engine::status::current(layout, &id)?;
    if !berth_engine::status::is_running(&st) {
        bail!("container {id} is not running");
    }
    let pids = berth_engine::stats::pids(&cgroups_path(layout, &id)?, &id)?;
    let args = if ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        ps_args.to_vec()
    };
    let o = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("run ps")?;
    if !o.status.success() {
        bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    let (titles, rows) = parse_ps(&String::from_utf8_lossy(&o.stdout), &pids)?;
    print!("{}", table(&titles, &rows));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_output_filtered_like_docker() {
        let out = "UID          PID    PPID  C STIME TTY          TIME CMD\n\
                   root           1       0  0 01:00 ?        00:00:01 /sbin/init splash\n\
                   root         42       1  0 01:00 ?        00:00:00 sleep 100 x\n";
        let (t, r) = parse_ps(out, &[42]).unwrap();
        assert_eq!(t.len(), 8);
        assert_eq!(
            r,
            vec![vec![
                "root",
                "42",
                "1",
                "0",
                "01:00",
                "?",
                "00:00:00",
                "sleep 100 x"
            ]]
        );
        assert!(parse_ps("USER CMD\nroot x\n", &[1]).is_err());
        let s = table(&t, &r);
        assert!(
            s.starts_with("UID                 PID                 PPID"),
            "{s}"
        );
        assert!(s.ends_with("sleep 100 x\n"));
    }
}
