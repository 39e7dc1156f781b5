//! `berth stats`: a container's resource use from its cgroup (v1, v2 or hybrid, through
//! berth-cgroups), computed the way docker's CLI computes its columns.
//!
//! CPU % needs two samples: `(container CPU delta / host CPU delta) * online CPUs * 100`,
//! the host's CPU time coming from /proc/stat. Memory usage excludes the inactive page
//! cache as docker does (`total_inactive_file` on v1, `inactive_file` on v2); an
//! unlimited cgroup shows the host's memory as its limit.

use crate::error::{Error, Result};
use crate::layout::Layout;
use std::path::Path;
use std::time::Instant;

/// One reading of a container's counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// Container CPU time, nanoseconds.
    pub cpu_ns: u64,
    /// Host CPU time (all CPUs, all states), nanoseconds; 0 when unknown.
    pub system_ns: u64,
    pub online_cpus: u32,
    /// Bytes in use, page cache that can be dropped excluded.
    pub mem_usage: u64,
    /// The cgroup's limit, or the host's memory when unlimited.
    pub mem_limit: u64,
    pub blk_read: u64,
    pub blk_write: u64,
    pub net_rx: u64,
    pub net_tx: u64,
    pub pids: u64,
    /// When it was taken (for a second sample's interval).
    pub at: Option<Instant>,
}

impl Sample {
    pub fn mem_percent(&self) -> f64 {
        if self.mem_limit == 0 {
            0.0
        } else {
            self.mem_usage as f64 / self.mem_limit as f64 * 100.0
        }
    }
}

/// docker's CPU %: the container's share of the host's CPU time between two samples,
/// scaled to the number of CPUs (so one busy CPU of four is 100 %).
pub fn cpu_percent(prev: &Sample, cur: &Sample) -> f64 {
    let cpu = cur.cpu_ns.saturating_sub(prev.cpu_ns) as f64;
    let sys = cur.system_ns.saturating_sub(prev.system_ns) as f64;
    if cpu > 0.0 && sys > 0.0 {
        cpu / sys * cur.online_cpus.max(1) as f64 * 100.0
    } else {
        0.0
    }
}

/// Host CPU time in ns and the number of CPUs, from /proc/stat.
pub fn host_cpu(proc_stat: &str) -> (u64, u32) {
    // USER_HZ is 100 on every Linux ABI.
    const NS_PER_TICK: u64 = 10_000_000;
    let mut total = 0;
    let mut cpus = 0;
    for l in proc_stat.lines() {
        if let Some(rest) = l.strip_prefix("cpu ") {
            total = rest
                .split_whitespace()
                .take(7) // user nice system idle iowait irq softirq (as docker)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum::<u64>()
                * NS_PER_TICK;
        } else if l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit) {
            cpus += 1;
        }
    }
    (total, cpus)
}

/// MemTotal of /proc/meminfo in bytes.
pub fn host_memory(meminfo: &str) -> u64 {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Received and sent bytes of every interface but `lo` in a /proc/PID/net/dev.
pub fn net_bytes(net_dev: &str) -> (u64, u64) {
    let mut rx = 0;
    let mut tx = 0;
    for l in net_dev.lines().skip(2) {
        let Some((iface, rest)) = l.split_once(':') else {
            continue;
        };
        if iface.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        if f.len() >= 9 {
            rx += f[0];
            tx += f[8];
        }
    }
    (rx, tx)
}

/// Builds a sample from cgroup statistics plus the host's counters.
pub fn from_stats(
    s: &berth_cgroups::Stats,
    proc_stat: &str,
    meminfo: &str,
    net: (u64, u64),
) -> Sample {
    let (system_ns, cpus) = host_cpu(proc_stat);
    let online = if s.cpu.usage.percpu.is_empty() {
        cpus
    } else {
        // percpu lists every possible CPU; count those the host has online.
        cpus.min(s.cpu.usage.percpu.len() as u32).max(1)
    };
    let usage = s.memory.usage.usage;
    let inactive = s
        .memory
        .raw
        .get("total_inactive_file")
        .or_else(|| s.memory.raw.get("inactive_file"))
        .copied()
        .unwrap_or(0);
    let mem_usage = if inactive < usage {
        usage - inactive
    } else {
        usage
    };
    let host = host_memory(meminfo);
    let limit = s.memory.usage.limit;
    let mem_limit = if limit == 0 || limit == u64::MAX || (host > 0 && limit > host) {
        host
    } else {
        limit
    };
    let (mut blk_read, mut blk_write) = (0, 0);
    for e in &s.blkio.io_service_bytes_recursive {
        match e.op.to_ascii_lowercase().as_str() {
            "read" => blk_read += e.value,
            "write" => blk_write += e.value,
            _ => {}
        }
    }
    Sample {
        cpu_ns: s.cpu.usage.total,
        system_ns,
        online_cpus: online.max(1),
        mem_usage,
        mem_limit,
        blk_read,
        blk_write,
        net_rx: net.0,
        net_tx: net.1,
        pids: s.pids.current,
        at: Some(Instant::now()),
    }
}

/// The manager of the cgroup `cgroups_path` of container `id` (nothing is created).
pub fn manager(cgroups_path: &str, id: &str) -> Result<Box<dyn berth_cgroups::Manager>> {
    let h = berth_cgroups::probe().map_err(|e| Error::Invalid(format!("cgroups: {e}")))?;
    manager_in(&h, cgroups_path, id)
}

fn manager_in(
    h: &berth_cgroups::Hierarchy,
    cgroups_path: &str,
    id: &str,
) -> Result<Box<dyn berth_cgroups::Manager>> {
    berth_cgroups::new_manager(
        &berth_cgroups::CgroupConfig {
            path: Some(cgroups_path),
            id,
            systemd: false,
        },
        h,
    )
    .map_err(|e| Error::Invalid(format!("cgroup {cgroups_path}: {e}")))
}

/// Every process in the container's cgroup (for `top`).
/// Without a boxed manager ([`berth_cgroups::pids_of`]): the monitor needs this and
/// nothing else of the manager.
pub fn pids(cgroups_path: &str, id: &str) -> Result<Vec<i32>> {
    let cfg = berth_cgroups::CgroupConfig {
        path: Some(cgroups_path),
        id,
        systemd: false,
    };
    berth_cgroups::probe()
        .and_then(|h| berth_cgroups::pids_of(&cfg, &h))
        .map_err(|e| Error::Invalid(format!("pids of cgroup {cgroups_path}: {e}")))
}

/// Reads the cgroup at `cgroups_path` (absolute, as in the bundle) on this host. `pid` is
/// the container's init (for its network namespace's counters) or 0; `host_net` skips
/// them (a host-network container has none of its own, as docker shows).
pub fn sample(cgroups_path: &str, id: &str, pid: i32, host_net: bool) -> Result<Sample> {
    let h = berth_cgroups::probe().map_err(|e| Error::Invalid(format!("cgroups: {e}")))?;
    sample_in(&h, cgroups_path, id, pid, host_net)
}

/// [`sample`] on hierarchy `h` (the host's, or a fake tree in tests).
pub fn sample_in(
    h: &berth_cgroups::Hierarchy,
    cgroups_path: &str,
    id: &str,
    pid: i32,
    host_net: bool,
) -> Result<Sample> {
    read_in(h, cgroups_path, id, pid, host_net).map(|r| r.sample)
}

/// One interface's counters, as /proc/net/dev has them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetDev {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// Every interface but `lo` of a /proc/PID/net/dev.
pub fn net_devs(net_dev: &str) -> Vec<(String, NetDev)> {
    let mut v = Vec::new();
    for l in net_dev.lines().skip(2) {
        let Some((iface, rest)) = l.split_once(':') else {
            continue;
        };
        let iface = iface.trim();
        if iface == "lo" {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        if f.len() >= 12 {
            v.push((
                iface.to_string(),
                NetDev {
                    rx_bytes: f[0],
                    rx_packets: f[1],
                    rx_errors: f[2],
                    rx_dropped: f[3],
                    tx_bytes: f[8],
                    tx_packets: f[9],
                    tx_errors: f[10],
                    tx_dropped: f[11],
                },
            ));
        }
    }
    v
}

/// A full reading: the columns' sample, and what docker's stats JSON carries besides.
#[derive(Debug, Clone)]
pub struct Reading {
    pub sample: Sample,
    pub cgroup: berth_cgroups::Stats,
    pub nets: Vec<(String, NetDev)>,
    pub read: std::time::SystemTime,
}

/// [`sample`] with the cgroup's statistics and the interfaces kept.
pub fn read_in(
    h: &berth_cgroups::Hierarchy,
    cgroups_path: &str,
    id: &str,
    pid: i32,
    host_net: bool,
) -> Result<Reading> {
    let st = manager_in(h, cgroups_path, id)?
        .stats()
        .map_err(|e| Error::Invalid(format!("cgroup {cgroups_path}: {e}")))?;
    let read = |p: &str| std::fs::read_to_string(p).map_err(|e| Error::io(Path::new(p), e));
    let nets = if pid > 0 && !host_net {
        std::fs::read_to_string(format!("/proc/{pid}/net/dev"))
            .map(|t| net_devs(&t))
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let net = nets
        .iter()
        .fold((0, 0), |(r, t), (_, n)| (r + n.rx_bytes, t + n.tx_bytes));
    Ok(Reading {
        sample: from_stats(&st, &read("/proc/stat")?, &read("/proc/meminfo")?, net),
        cgroup: st,
        nets,
        read: std::time::SystemTime::now(),
    })
}

/// A container `stats` reads.
#[derive(Debug, Clone)]
pub struct Target {
    pub id: String,
    pub name: String,
    pub cgroups_path: String,
    /// Its init, 0 when not running.
    pub pid: i32,
    pub host_net: bool,
    pub running: bool,
}

/// Container `id` as stats sees it now; None when it is gone (or its record unreadable).
pub fn target(layout: &Layout, id: &str) -> Result<Option<Target>> {
    let Ok(cfg) = layout.load_config(id) else {
        return Ok(None);
    };
    let st = crate::status::peek(layout, id)?;
    let running = crate::status::is_running(&st);
    Ok(Some(Target {
        cgroups_path: crate::top::cgroups_path(layout, id)?,
        name: cfg.name.clone(),
        pid: if running { st.pid } else { 0 },
        host_net: cfg.options.network == crate::options::NetworkMode::Host,
        running,
        id: id.to_string(),
    }))
}

/// The containers `refs` names (whatever their state, as docker), else the running ones
/// (`all`: every one).
pub fn targets(layout: &Layout, refs: &[String], all: bool) -> Result<Vec<Target>> {
    let ids: Vec<String> = if refs.is_empty() {
        layout.container_ids()?
    } else {
        refs.iter()
            .map(|r| crate::lookup::resolve(layout, r))
            .collect::<Result<_>>()?
    };
    let mut v = Vec::new();
    for id in ids {
        let Some(t) = target(layout, &id)? else {
            continue;
        };
        if !t.running && !all && refs.is_empty() {
            continue;
        }
        v.push(t);
    }
    Ok(v)
}

/// A reading of `t`, None when it is not running (or its cgroup cannot be read: it has
/// just stopped).
pub fn read(t: &Target) -> Option<Reading> {
    if !t.running {
        return None;
    }
    let h = berth_cgroups::probe().ok()?;
    read_in(&h, &t.cgroups_path, &t.id, t.pid, t.host_net).ok()
}

/// docker's `0001-01-01T00:00:00Z`: a time never set.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn cpu_json(r: Option<&Reading>) -> serde_json::Value {
    let Some(r) = r else {
        return serde_json::json!({
            "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        });
    };
    let c = &r.cgroup.cpu;
    let mut usage = serde_json::json!({
        "total_usage": c.usage.total,
        "usage_in_kernelmode": c.usage.kernel,
        "usage_in_usermode": c.usage.user,
    });
    if !c.usage.percpu.is_empty() {
        usage["percpu_usage"] = serde_json::json!(c.usage.percpu);
    }
    serde_json::json!({
        "cpu_usage": usage,
        "system_cpu_usage": r.sample.system_ns,
        "online_cpus": r.sample.online_cpus,
        "throttling_data": {
            "periods": c.throttling.periods,
            "throttled_periods": c.throttling.throttled_periods,
            "throttled_time": c.throttling.throttled_time,
        },
    })
}

/// GET /containers/{id}/stats's object (docker's types.StatsJSON): `cur` the reading
/// shown (None: not running, docker's zeros), `prev` the one before (precpu_stats).
/// The docker CLI computes its columns from these as `berth stats` does from samples.
pub fn docker_json(t: &Target, prev: Option<&Reading>, cur: Option<&Reading>) -> serde_json::Value {
    use serde_json::json;
    let blk = |v: &[berth_cgroups::stats::BlkioEntry]| {
        v.iter()
            .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
            .collect::<Vec<_>>()
    };
    let mut v = json!({
        "name": format!("/{}", t.name),
        "id": t.id,
        "read": cur.map_or(ZERO_TIME.to_string(), |r| crate::record::rfc3339(r.read)),
        "preread": prev.map_or(ZERO_TIME.to_string(), |r| crate::record::rfc3339(r.read)),
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu_json(cur),
        "precpu_stats": cpu_json(prev),
    });
    let Some(r) = cur else {
        v["pids_stats"] = json!({});
        v["memory_stats"] = json!({});
        v["blkio_stats"] = json!({
            "io_service_bytes_recursive": null, "io_serviced_recursive": null,
            "io_queue_recursive": null, "io_service_time_recursive": null,
            "io_wait_time_recursive": null, "io_merged_recursive": null,
            "io_time_recursive": null, "sectors_recursive": null,
        });
        return v;
    };
    let s = &r.cgroup;
    let mut pids = json!({"current": s.pids.current});
    if s.pids.limit > 0 {
        pids["limit"] = json!(s.pids.limit);
    }
    v["pids_stats"] = pids;
    let b = &s.blkio;
    v["blkio_stats"] = json!({
        "io_service_bytes_recursive": blk(&b.io_service_bytes_recursive),
        "io_serviced_recursive": blk(&b.io_serviced_recursive),
        "io_queue_recursive": blk(&b.io_queued_recursive),
        "io_service_time_recursive": blk(&b.io_service_time_recursive),
        "io_wait_time_recursive": blk(&b.io_wait_time_recursive),
        "io_merged_recursive": blk(&b.io_merged_recursive),
        "io_time_recursive": blk(&b.io_time_recursive),
        "sectors_recursive": blk(&b.sectors_recursive),
    });
    // The raw usage and the cgroup's stat file: the client drops the inactive cache.
    let mut mem = json!({
        "usage": s.memory.usage.usage,
        "stats": s.memory.raw,
        "limit": r.sample.mem_limit,
    });
    if s.memory.usage.max > 0 {
        mem["max_usage"] = json!(s.memory.usage.max);
    }
    if s.memory.usage.failcnt > 0 {
        mem["failcnt"] = json!(s.memory.usage.failcnt);
    }
    v["memory_stats"] = mem;
    if !r.nets.is_empty() {
        let nets: serde_json::Map<String, serde_json::Value> = r
            .nets
            .iter()
            .map(|(name, n)| {
                (
                    name.clone(),
                    json!({
                        "rx_bytes": n.rx_bytes, "rx_packets": n.rx_packets,
                        "rx_errors": n.rx_errors, "rx_dropped": n.rx_dropped,
                        "tx_bytes": n.tx_bytes, "tx_packets": n.tx_packets,
                        "tx_errors": n.tx_errors, "tx_dropped": n.tx_dropped,
                    }),
                )
            })
            .collect();
        v["networks"] = serde_json::Value::Object(nets);
    }
    v
}

/// docker's memory sizes (go-units BytesSize): binary units, 4 significant digits:
/// "1.5MiB", "512KiB", "23.35GiB", "0B".
pub fn bytes_size(n: u64) -> String {
    const U: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{}{}", g4(v, 4), U[i])
}

/// docker's I/O sizes (go-units HumanSizeWithPrecision(v, 3)): decimal units, 3
/// significant digits: "0B", "1.23kB", "45.1MB".
pub fn human_size(n: u64) -> String {
    const U: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < U.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{}{}", g4(v, 3), U[i])
}

/// Go's `%.Ng`: N significant digits, trailing zeros dropped.
fn g4(v: f64, digits: i32) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let mag = v.abs().log10().floor() as i32;
    let decimals = (digits - 1 - mag).max(0) as usize;
    let s = format!("{v:.decimals$}");
    // Rounding can add a digit (999.95 -> "1000.0"); fine for display.
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_sizes() {
        assert_eq!(bytes_size(0), "0B");
        assert_eq!(bytes_size(1536 * 1024), "1.5MiB");
        assert_eq!(bytes_size(524288), "512KiB");
        assert_eq!(bytes_size(25_070_000_000), "23.35GiB");
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(1234), "1.23kB");
        assert_eq!(human_size(45_100_000), "45.1MB");
        assert_eq!(human_size(999), "999B");
    }

    #[test]
    fn host_counters() {
        let stat = "cpu  100 0 50 850 0 0 0 0 0 0\ncpu0 50 0 25 425 0 0 0 0 0 0\ncpu1 50 0 25 425 0 0 0 0 0 0\nintr 1\n";
        assert_eq!(host_cpu(stat), (1000 * 10_000_000, 2));
        assert_eq!(
            host_memory("MemTotal:       1024 kB\nMemFree: 1 kB\n"),
            1024 * 1024
        );
        let dev = "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes\n    lo:  100 1 0 0 0 0 0 0  100 1 0 0 0 0 0 0\n  eth0:  2000 3 0 0 0 0 0 0  500 2 0 0 0 0 0 0\n";
        assert_eq!(net_bytes(dev), (2000, 500));
    }

    /// cgroup v2 files (a fake unified tree): cpu.stat, memory.current/max/stat, io.stat,
    /// pids.current.
    #[test]
    fn v2_files() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("unified");
        let cg = root.join("berth-test/c");
        std::fs::create_dir_all(&cg).unwrap();
        std::fs::write(
            root.join("berth-test/cgroup.subtree_control"),
            "cpu io memory pids\n",
        )
        .unwrap();
        for (f, v) in [
            ("cgroup.controllers", "cpu io memory pids\n"),
            (
                "cpu.stat",
                "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
            ),
            ("memory.current", "10485760\n"),
            ("memory.max", "67108864\n"),
            (
                "memory.stat",
                "anon 1\nfile 4194304\ninactive_file 2097152\n",
            ),
            (
                "io.stat",
                "8:0 rbytes=4096 wbytes=1000000 rios=1 wios=2 dbytes=0 dios=0\n",
            ),
            ("pids.current", "3\n"),
        ] {
            std::fs::write(cg.join(f), v).unwrap();
        }
        let h = berth_cgroups::Hierarchy::V2 { root };
        let s = sample_in(&h, "/berth-test/c", "c", 0, false).unwrap();
        assert_eq!(s.cpu_ns, 1_500_000);
        assert_eq!(s.mem_usage, 8 << 20);
        assert_eq!(s.mem_limit, 64 << 20);
        assert_eq!((s.blk_read, s.blk_write, s.pids), (4096, 1_000_000, 3));
        assert_eq!(human_size(s.blk_write), "1MB");
    }

    /// A real cgroup v2 hierarchy (this host is hybrid: run it in the v2 VM, e.g.
    /// `tests/vm/v2vm.sh DIR ./engine-lib-tests --ignored --exact stats::tests::v2_host`).
    #[test]
    #[ignore = "needs a pure cgroup v2 host (the v2 VM)"]
    fn v2_host() {
        use std::io::Write;
        let root = Path::new("/sys/fs/cgroup");
        assert!(root.join("cgroup.controllers").exists(), "not cgroup v2");
        let dir = root.join("berth-stats-test");
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = std::process::Command::new("sh")
            .args([
                "-c",
                "read x; i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done; echo done; read y",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::fs::write(dir.join("cgroup.procs"), child.id().to_string()).unwrap();
        std::fs::write(dir.join("memory.max"), "67108864").unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"go\n").unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let s = sample("/berth-stats-test", "t", 0, true);
        let p = pids("/berth-stats-test", "t");
        drop(stdin);
        child.wait().unwrap();
        std::fs::remove_dir(&dir).unwrap();
        let (s, p) = (s.unwrap(), p.unwrap());
        eprintln!("v2 sample: {s:?}");
        assert_eq!(p, vec![child.id() as i32]);
        assert_eq!(s.pids, 1);
        assert!(s.cpu_ns > 0);
        assert!(s.mem_usage > 0);
        assert_eq!(s.mem_limit, 64 << 20);
    }

    #[test]
    fn columns_from_cgroup_stats() {
        let mut s = berth_cgroups::Stats::default();
        s.cpu.usage.total = 2_000_000_000;
        s.memory.usage.usage = 10 << 20;
        s.memory.usage.limit = 100 << 20;
        s.memory.raw.insert("total_inactive_file".into(), 2 << 20);
        s.pids.current = 3;
        s.blkio.io_service_bytes_recursive = vec![
            berth_cgroups::stats::BlkioEntry {
                major: 8,
                minor: 0,
                op: "Read".into(),
                value: 4096,
            },
            berth_cgroups::stats::BlkioEntry {
                major: 8,
                minor: 0,
                op: "Write".into(),
                value: 8192,
            },
        ];
        let stat0 = "cpu  0 0 0 0 0 0 0\ncpu0 0\ncpu1 0\n";
        let stat1 = "cpu  200 0 0 200 0 0 0\ncpu0 0\ncpu1 0\n";
        let mem = "MemTotal: 1048576 kB\n";
        let a = from_stats(&berth_cgroups::Stats::default(), stat0, mem, (0, 0));
        let b = from_stats(&s, stat1, mem, (1, 2));
        // 2 s of container CPU over 4 s of host CPU time on 2 CPUs: 100 %.
        assert!((cpu_percent(&a, &b) - 100.0).abs() < 1e-9);
        assert_eq!(b.mem_usage, 8 << 20);
        assert_eq!(b.mem_limit, 100 << 20);
        assert!((b.mem_percent() - 8.0).abs() < 1e-9);
        assert_eq!((b.blk_read, b.blk_write, b.pids), (4096, 8192, 3));
        // Unlimited: the host's memory.
        s.memory.usage.limit = u64::MAX;
        assert_eq!(from_stats(&s, stat1, mem, (0, 0)).mem_limit, 1 << 30);
    }

    #[test]
    fn docker_stats_json() {
        let mut s = berth_cgroups::Stats::default();
        s.cpu.usage.total = 2_000_000_000;
        s.memory.usage.usage = 10 << 20;
        s.memory.usage.limit = 100 << 20;
        s.memory.raw.insert("inactive_file".into(), 2 << 20);
        s.pids.current = 3;
        let mem = "MemTotal: 1048576 kB\n";
        let reading = |st: &berth_cgroups::Stats, stat: &str| Reading {
            sample: from_stats(st, stat, mem, (0, 0)),
            cgroup: st.clone(),
            nets: net_devs("h\nh\n  eth0: 7 1 0 0 0 0 0 0 9 2 0 0 0 0 0 0\n"),
            read: std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_000_000),
        };
        let a = reading(
            &berth_cgroups::Stats::default(),
            "cpu  0 0 0 0 0 0 0\ncpu0 0\ncpu1 0\n",
        );
        let b = reading(&s, "cpu  200 0 0 200 0 0 0\ncpu0 0\ncpu1 0\n");
        let t = Target {
            id: "abc".into(),
            name: "web".into(),
            cgroups_path: "/x/abc".into(),
            pid: 1,
            host_net: false,
            running: true,
        };
        let v = docker_json(&t, Some(&a), Some(&b));
        assert_eq!(v["name"], "/web");
        assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 2_000_000_000u64);
        assert_eq!(v["cpu_stats"]["system_cpu_usage"], 4_000_000_000u64);
        assert_eq!(v["cpu_stats"]["online_cpus"], 2);
        assert_eq!(v["precpu_stats"]["system_cpu_usage"], 0);
        assert_eq!(v["memory_stats"]["usage"], 10u64 << 20);
        assert_eq!(v["memory_stats"]["stats"]["inactive_file"], 2u64 << 20);
        assert_eq!(v["memory_stats"]["limit"], 100u64 << 20);
        assert_eq!(v["pids_stats"]["current"], 3);
        assert_eq!(v["networks"]["eth0"]["rx_bytes"], 7);
        assert_eq!(v["networks"]["eth0"]["tx_packets"], 2);
        assert_eq!(v["read"], "2026-11-18T11:06:40.000000000Z");
        let z = docker_json(&t, None, None);
        assert_eq!(z["read"], "0001-01-01T00:00:00Z");
        assert_eq!(z["cpu_stats"]["cpu_usage"]["total_usage"], 0);
        assert!(z.get("networks").is_none());
    }
}
