//! `top`: the container's processes (the pids of its cgroup), shown by the host's `ps`
//! (default `-ef`) filtered to them, as dockerd does (daemon/top_unix.go).

use crate::error::{Error, Result};
use crate::layout::Layout;

/// The container's cgroupsPath as written in its bundle (else parent/id).
pub fn cgroups_path(layout: &Layout, id: &str) -> Result<String> {
    let p = layout.bundle_dir(id).join("config.json");
    if let Ok(b) = std::fs::read(&p) {
        let v: serde_json::Value = serde_json::from_slice(&b).map_err(|e| Error::Json(p, e))?;
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

/// `ps`'s column titles and the container's rows (docker's ContainerTopOKBody).
#[derive(Debug, Clone, PartialEq)]
pub struct Top {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

/// docker's parsePSOutput: the header's titles, and the rows whose PID is one of `pids`
/// (the last column takes the rest of the line).
pub fn parse_ps(out: &str, pids: &[i32]) -> Result<Top> {
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
        .ok_or_else(|| Error::Invalid("Couldn't find PID field in ps output".into()))?;
    let mut rows = Vec::new();
    for l in lines {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < titles.len() {
            continue;
        }
        let Ok(pid) = f[pid_col].parse::<i32>() else {
            return Err(Error::Invalid(format!(
                "unexpected pid {:?} in ps output",
                f[pid_col]
            )));
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
    Ok(Top {
        titles,
        processes: rows,
    })
}

/// Columns aligned as docker's top table (tabwriter minwidth 20, padding 3).
pub fn table(t: &Top) -> String {
    let (titles, rows) = (&t.titles, &t.processes);
    let n = titles.len();
    let mut w = vec![0usize; n];
    for r in std::iter::once(titles).chain(rows.iter()) {
        for (i, c) in r.iter().enumerate().take(n.saturating_sub(1)) {
            w[i] = w[i].max((c.chars().count() + 3).max(20));
        }
    }
    let mut out = String::new();
    for r in std::iter::once(titles).chain(rows.iter()) {
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

/// The processes of container `id`, as `ps ARGS` shows them (default `-ef`). A
/// container that is not running is an `Error::Invalid` saying so.
pub fn top(layout: &Layout, id: &str, ps_args: &[String]) -> Result<Top> {
    let st = crate::status::current(layout, id)?;
    if !crate::status::is_running(&st) {
        return Err(Error::Invalid(format!("container {id} is not running")));
    }
    let pids = crate::stats::pids(&cgroups_path(layout, id)?, id)?;
    let args = if ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        ps_args.to_vec()
    };
    let o = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| Error::io("ps", e))?;
    if !o.status.success() {
        return Err(Error::Invalid(format!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        )));
    }
    parse_ps(&String::from_utf8_lossy(&o.stdout), &pids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_output_filtered_like_docker() {
        let out = "UID          PID    PPID  C STIME TTY          TIME CMD\n\
                   root           1       0  0 01:00 ?        00:00:01 /sbin/init splash\n\
                   root         42       1  0 01:00 ?        00:00:00 sleep 100 x\n";
        let t = parse_ps(out, &[42]).unwrap();
        assert_eq!(t.titles.len(), 8);
        assert_eq!(
            t.processes,
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
        let s = table(&t);
        assert!(
            s.starts_with("UID                 PID                 PPID"),
            "{s}"
        );
        assert!(s.ends_with("sleep 100 x\n"));
    }
}
