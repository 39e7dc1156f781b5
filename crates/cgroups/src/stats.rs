//! Statistics in the shape of runc's `types.Stats` (`runc events --stats` JSON).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::fs::{Backend, FsManager};
use crate::util::{self, parse_flat_keyed, read_opt, read_u64_opt};
use crate::Error;

fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub cpu: Cpu,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hugetlb {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max: u64,
    #[serde(default)]
    pub failcnt: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioEntry {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub value: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Blkio {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        rename = "ioQueueRecursive"
    )]
    pub io_queued_recursive: Vec<BlkioEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_merged_recursive: Vec<BlkioEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_time_recursive: Vec<BlkioEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sectors_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pids {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub current: u64,
    /// 0 = no limit (as runc).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Nanoseconds.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

/// All in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuUsage {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    #[serde(default)]
    pub kernel: u64,
    #[serde(default)]
    pub user: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cpu {
    #[serde(default)]
    pub usage: CpuUsage,
    #[serde(default)]
    pub throttling: Throttling,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryEntry {
    /// `u64::MAX` when unlimited (as runc).
    #[serde(default)]
    pub limit: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max: u64,
    #[serde(default)]
    pub failcnt: u64,
}

/// memory.events counters (v2), or v1's oom_control `oom_kill` in `oom_kill`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryEventCount {
    #[serde(default)]
    pub low: u64,
    #[serde(default)]
    pub high: u64,
    #[serde(default)]
    pub max: u64,
    #[serde(default)]
    pub oom: u64,
    #[serde(default)]
    pub oom_kill: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache: u64,
    #[serde(default)]
    pub usage: MemoryEntry,
    #[serde(default)]
    pub swap: MemoryEntry,
    #[serde(default)]
    pub kernel: MemoryEntry,
    #[serde(default, rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
    #[serde(default)]
    pub event_count: MemoryEventCount,
}

/// USER_HZ: the unit of v1 cpuacct.stat (100 on every Linux ABI runc supports).
const USER_HZ: u64 = 100;

fn cpu_v1(cpu: Option<&Path>, acct: Option<&Path>, s: &mut Cpu) -> Result<(), Error> {
    if let Some(d) = cpu {
        if let Some(t) = read_opt(d, "cpu.stat")? {
            let m = parse_flat_keyed(&t);
            s.throttling.periods = m.get("nr_periods").copied().unwrap_or(0);
            s.throttling.throttled_periods = m.get("nr_throttled").copied().unwrap_or(0);
            s.throttling.throttled_time = m.get("throttled_time").copied().unwrap_or(0);
        }
    }
    if let Some(d) = acct {
        s.usage.total = read_u64_opt(d, "cpuacct.usage")?.unwrap_or(0);
        let list = |f: &str| -> Result<Vec<u64>, Error> {
            Ok(read_opt(d, f)?
                .map(|t| t.split_whitespace().filter_map(util::parse_u64).collect())
                .unwrap_or_default())
        };
        s.usage.percpu = list("cpuacct.usage_percpu")?;
        s.usage.percpu_kernel = list("cpuacct.usage_percpu_sys")?;
        s.usage.percpu_user = list("cpuacct.usage_percpu_user")?;
        if let Some(t) = read_opt(d, "cpuacct.stat")? {
            let m = parse_flat_keyed(&t);
            let ns = 1_000_000_000 / USER_HZ;
            s.usage.user = m.get("user").copied().unwrap_or(0) * ns;
            s.usage.kernel = m.get("system").copied().unwrap_or(0) * ns;
        }
    }
    Ok(())
}

fn cpu_v2(d: &Path, s: &mut Cpu) -> Result<(), Error> {
    if let Some(t) = read_opt(d, "cpu.stat")? {
        let m = parse_flat_keyed(&t);
        let g = |k: &str| m.get(k).copied().unwrap_or(0);
        s.usage.total = g("usage_usec") * 1000;
        s.usage.user = g("user_usec") * 1000;
        s.usage.kernel = g("system_usec") * 1000;
        s.throttling.periods = g("nr_periods");
        s.throttling.throttled_periods = g("nr_throttled");
        s.throttling.throttled_time = g("throttled_usec") * 1000;
    }
    Ok(())
}

fn mem_entry_v1(d: &Path, prefix: &str) -> Result<MemoryEntry, Error> {
    let g = |f: &str| read_u64_opt(d, &format!("{prefix}{f}")).map(|v| v.unwrap_or(0));
    Ok(MemoryEntry {
        usage: g("usage_in_bytes")?,
        max: g("max_usage_in_bytes")?,
        failcnt: g("failcnt")?,
        limit: g("limit_in_bytes")?,
    })
}

/// v1's "limit_in_bytes" reads as a huge page-rounded number when unlimited.
fn v1_unlimited(v: u64) -> u64 {
    if v >= 0x7FFF_FFFF_FFFF_F000 {
        u64::MAX
    } else {
        v
    }
}

fn memory_v1(d: &Path, s: &mut Memory) -> Result<(), Error> {
    s.usage = mem_entry_v1(d, "memory.")?;
    s.usage.limit = v1_unlimited(s.usage.limit);
    s.swap = mem_entry_v1(d, "memory.memsw.")?;
    s.swap.limit = v1_unlimited(s.swap.limit);
    s.kernel = mem_entry_v1(d, "memory.kmem.")?;
    s.kernel.limit = v1_unlimited(s.kernel.limit);
    s.kernel_tcp = mem_entry_v1(d, "memory.kmem.tcp.")?;
    s.kernel_tcp.limit = v1_unlimited(s.kernel_tcp.limit);
    if let Some(t) = read_opt(d, "memory.stat")? {
        s.raw = parse_flat_keyed(&t);
        s.cache = s
            .raw
            .get("total_cache")
            .or(s.raw.get("cache"))
            .copied()
            .unwrap_or(0);
    }
    if let Some(t) = read_opt(d, "memory.oom_control")? {
        let m = parse_flat_keyed(&t);
        s.event_count.oom_kill = m.get("oom_kill").copied().unwrap_or(0);
        s.event_count.max = s.usage.failcnt;
    }
    Ok(())
}

fn memory_v2(d: &Path, s: &mut Memory) -> Result<(), Error> {
    let g = |f: &str| read_u64_opt(d, f).map(|v| v.unwrap_or(0));
    s.usage.usage = g("memory.current")?;
    s.usage.limit = read_u64_opt(d, "memory.max")?.unwrap_or(u64::MAX);
    s.usage.max = g("memory.peak")?;
    // runc reports swap as memory+swap, like v1's memsw.
    let swap_cur = g("memory.swap.current")?;
    let swap_max = read_u64_opt(d, "memory.swap.max")?.unwrap_or(u64::MAX);
    s.swap.usage = swap_cur + s.usage.usage;
    s.swap.limit = swap_max.saturating_add(s.usage.limit);
    s.swap.max = g("memory.swap.peak")?;
    if let Some(t) = read_opt(d, "memory.stat")? {
        s.raw = parse_flat_keyed(&t);
        s.cache = s.raw.get("file").copied().unwrap_or(0);
    }
    if let Some(t) = read_opt(d, "memory.events")? {
        let m = parse_flat_keyed(&t);
        let e = |k: &str| m.get(k).copied().unwrap_or(0);
        s.event_count = MemoryEventCount {
            low: e("low"),
            high: e("high"),
            max: e("max"),
            oom: e("oom"),
            oom_kill: e("oom_kill"),
        };
        s.usage.failcnt = e("max");
    }
    Ok(())
}

fn pids(d: &Path, s: &mut Pids) -> Result<(), Error> {
    s.current = read_u64_opt(d, "pids.current")?.unwrap_or(0);
    s.limit = match read_u64_opt(d, "pids.max")? {
        Some(u64::MAX) | None => 0,
        Some(v) => v,
    };
    Ok(())
}

/// Parses v1 blkio "8:0 Read 4096" lines (the "Total" lines are skipped).
pub fn parse_blkio_v1(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (ma, mi) = f.first()?.split_once(':')?;
            let (op, v) = match f.len() {
                3 => (f[1].to_string(), f[2]),
                2 => (String::new(), f[1]),
                _ => return None,
            };
            Some(BlkioEntry {
                major: ma.parse().ok()?,
                minor: mi.parse().ok()?,
                op,
                value: v.parse().ok()?,
            })
        })
        .collect()
}

/// Parses v2 io.stat into runc's (bytes, ios) entry lists.
pub fn parse_io_stat(text: &str) -> (Vec<BlkioEntry>, Vec<BlkioEntry>) {
    let mut bytes = Vec::new();
    let mut ios = Vec::new();
    for l in text.lines() {
        let mut it = l.split_whitespace();
        let Some((ma, mi)) = it.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (ma.parse::<u64>(), mi.parse::<u64>()) else {
            continue;
        };
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse::<u64>() else {
                continue;
            };
            let (list, op) = match k {
                "rbytes" => (&mut bytes, "Read"),
                "wbytes" => (&mut bytes, "Write"),
                "dbytes" => (&mut bytes, "Discard"),
                "rios" => (&mut ios, "Read"),
                "wios" => (&mut ios, "Write"),
                "dios" => (&mut ios, "Discard"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.into(),
                value,
            });
        }
    }
    (bytes, ios)
}

fn blkio_v1(d: &Path, s: &mut Blkio) -> Result<(), Error> {
    let pick = |names: &[&str]| -> Result<Vec<BlkioEntry>, Error> {
        for n in names {
            if let Some(t) = read_opt(d, n)? {
                let v = parse_blkio_v1(&t);
                if !v.is_empty() {
                    return Ok(v);
                }
            }
        }
        Ok(Vec::new())
    };
    s.io_service_bytes_recursive = pick(&[
        "blkio.io_service_bytes_recursive",
        "blkio.bfq.io_service_bytes_recursive",
        "blkio.throttle.io_service_bytes_recursive",
    ])?;
    s.io_serviced_recursive = pick(&[
        "blkio.io_serviced_recursive",
        "blkio.bfq.io_serviced_recursive",
        "blkio.throttle.io_serviced_recursive",
    ])?;
    s.io_queued_recursive = pick(&["blkio.io_queued_recursive"])?;
    s.io_service_time_recursive = pick(&["blkio.io_service_time_recursive"])?;
    s.io_wait_time_recursive = pick(&["blkio.io_wait_time_recursive"])?;
    s.io_merged_recursive = pick(&["blkio.io_merged_recursive"])?;
    s.io_time_recursive = pick(&["blkio.time_recursive"])?;
    s.sectors_recursive = pick(&["blkio.sectors_recursive"])?;
    Ok(())
}

/// Hugepage sizes with a control file in `d` ("hugetlb.2MB.<suffix>").
fn hugetlb_sizes(d: &Path, suffix: &str) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(d) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| {
            let size = n.strip_prefix("hugetlb.")?.strip_suffix(suffix)?;
            (!size.contains('.')).then(|| size.to_string())
        })
        .collect();
    v.sort();
    v
}

fn hugetlb(b: Backend<'_>, out: &mut BTreeMap<String, Hugetlb>) -> Result<(), Error> {
    match b {
        Backend::V1(d) => {
            for size in hugetlb_sizes(d, ".limit_in_bytes") {
                let g = |f: &str| {
                    read_u64_opt(d, &format!("hugetlb.{size}.{f}")).map(|v| v.unwrap_or(0))
                };
                out.insert(
                    size.clone(),
                    Hugetlb {
                        usage: g("usage_in_bytes")?,
                        max: g("max_usage_in_bytes")?,
                        failcnt: g("failcnt")?,
                    },
                );
            }
        }
        Backend::V2(d) => {
            for size in hugetlb_sizes(d, ".max") {
                let usage = read_u64_opt(d, &format!("hugetlb.{size}.current"))?.unwrap_or(0);
                let failcnt = read_opt(d, &format!("hugetlb.{size}.events"))?
                    .map(|t| parse_flat_keyed(&t).get("max").copied().unwrap_or(0))
                    .unwrap_or(0);
                out.insert(
                    size,
                    Hugetlb {
                        usage,
                        max: 0,
                        failcnt,
                    },
                );
            }
        }
    }
    Ok(())
}

pub(crate) fn collect(m: &FsManager) -> Result<Stats, Error> {
    let mut s = Stats::default();
    match (m.backend("cpu"), m.backend("cpuacct")) {
        (Some(Backend::V2(d)), _) => cpu_v2(d, &mut s.cpu)?,
        // cpu.stat's usage lines exist in every v2 cgroup, controller or not.
        (None, None) if m.v2.is_some() && m.v1.is_empty() => {
            cpu_v2(m.v2.as_deref().expect("checked"), &mut s.cpu)?
        }
        (c, a) => {
            let v1 = |b: Option<Backend<'_>>| match b {
                Some(Backend::V1(d)) => Some(d.to_path_buf()),
                _ => None,
            };
            cpu_v1(v1(c).as_deref(), v1(a).as_deref(), &mut s.cpu)?
        }
    }
    match m.backend("memory") {
        Some(Backend::V1(d)) => memory_v1(d, &mut s.memory)?,
        Some(Backend::V2(d)) => memory_v2(d, &mut s.memory)?,
        None => {}
    }
    if let Some(Backend::V1(d) | Backend::V2(d)) = m.backend("pids") {
        pids(d, &mut s.pids)?;
    }
    match m.backend("blkio") {
        Some(Backend::V1(d)) => blkio_v1(d, &mut s.blkio)?,
        Some(Backend::V2(d)) => {
            if let Some(t) = read_opt(d, "io.stat")? {
                let (b, i) = parse_io_stat(&t);
                s.blkio.io_service_bytes_recursive = b;
                s.blkio.io_serviced_recursive = i;
            }
        }
        None => {}
    }
    if let Some(b) = m.backend("hugetlb") {
        hugetlb(b, &mut s.hugetlb)?;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkio_lines() {
        let e = parse_blkio_v1("8:0 Read 4096\n8:0 Write 0\n8:16 Total 5\nTotal 4096\n");
        assert_eq!(e.len(), 3);
        assert_eq!(
            e[0],
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "Read".into(),
                value: 4096
            }
        );
        let (b, i) = parse_io_stat("8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n");
        assert_eq!(
            b[1],
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "Write".into(),
                value: 20
            }
        );
        assert_eq!(i.len(), 3);
        assert_eq!(i[0].value, 1);
    }

    #[test]
    fn json_shape_matches_runc() {
        let mut s = Stats::default();
        s.cpu.throttling.throttled_periods = 3;
        s.memory.kernel_tcp.limit = 1;
        s.hugetlb.insert(
            "2MB".into(),
            Hugetlb {
                usage: 1,
                max: 0,
                failcnt: 0,
            },
        );
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["cpu"]["throttling"]["throttledPeriods"], 3);
        assert_eq!(v["memory"]["kernelTCP"]["limit"], 1);
        assert_eq!(v["memory"]["event_count"]["oom_kill"], 0);
        assert_eq!(v["cpu"]["usage"]["kernel"], 0);
        assert!(v["cpu"]["usage"].get("total").is_none());
        assert_eq!(v["hugetlb"]["2MB"]["failcnt"], 0);
        assert!(v["hugetlb"]["2MB"].get("max").is_none());
        let back: Stats = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
    }

    fn mgr(h: &crate::Hierarchy) -> FsManager {
        FsManager::new(&crate::CgroupPath::Absolute("/c".into()), h, None).unwrap()
    }

    fn put(d: &Path, files: &[(&str, &str)]) {
        std::fs::create_dir_all(d).unwrap();
        for (f, c) in files {
            std::fs::write(d.join(f), c).unwrap();
        }
    }

    #[test]
    fn v1_stats_from_files() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        let mounts: BTreeMap<String, std::path::PathBuf> =
            ["cpu", "cpuacct", "memory", "pids", "blkio", "hugetlb"]
                .iter()
                .map(|c| (c.to_string(), r.join(c)))
                .collect();
        let m = mgr(&crate::Hierarchy::V1 { mounts });
        put(
            &r.join("cpu/c"),
            &[(
                "cpu.stat",
                "nr_periods 10\nnr_throttled 4\nthrottled_time 5000\n",
            )],
        );
        put(
            &r.join("cpuacct/c"),
            &[
                ("cpuacct.usage", "123456\n"),
                ("cpuacct.usage_percpu", "100000 23456 \n"),
                ("cpuacct.stat", "user 3\nsystem 2\n"),
            ],
        );
        put(
            &r.join("memory/c"),
            &[
                ("memory.usage_in_bytes", "4096\n"),
                ("memory.max_usage_in_bytes", "8192\n"),
                ("memory.limit_in_bytes", "9223372036854771712\n"),
                ("memory.failcnt", "7\n"),
                ("memory.stat", "cache 11\nrss 22\ntotal_cache 33\n"),
                (
                    "memory.oom_control",
                    "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
                ),
            ],
        );
        put(
            &r.join("pids/c"),
            &[("pids.current", "3\n"), ("pids.max", "max\n")],
        );
        put(
            &r.join("blkio/c"),
            &[(
                "blkio.throttle.io_service_bytes_recursive",
                "8:0 Read 512\n8:0 Write 1024\nTotal 1536\n",
            )],
        );
        put(
            &r.join("hugetlb/c"),
            &[
                ("hugetlb.2MB.limit_in_bytes", "0\n"),
                ("hugetlb.2MB.usage_in_bytes", "2097152\n"),
                ("hugetlb.2MB.failcnt", "1\n"),
            ],
        );
        let s = collect(&m).unwrap();
        assert_eq!(
            s.cpu.throttling,
            Throttling {
                periods: 10,
                throttled_periods: 4,
                throttled_time: 5000
            }
        );
        assert_eq!(s.cpu.usage.total, 123456);
        assert_eq!(s.cpu.usage.percpu, vec![100000, 23456]);
        assert_eq!(s.cpu.usage.user, 30_000_000);
        assert_eq!(s.cpu.usage.kernel, 20_000_000);
        assert_eq!(
            s.memory.usage,
            MemoryEntry {
                limit: u64::MAX,
                usage: 4096,
                max: 8192,
                failcnt: 7
            }
        );
        assert_eq!(s.memory.cache, 33);
        assert_eq!(s.memory.event_count.oom_kill, 2);
        assert_eq!(
            s.pids,
            Pids {
                current: 3,
                limit: 0
            }
        );
        assert_eq!(s.blkio.io_service_bytes_recursive.len(), 2);
        assert_eq!(
            s.hugetlb["2MB"],
            Hugetlb {
                usage: 2097152,
                max: 0,
                failcnt: 1
            }
        );
    }

    #[test]
    fn v2_stats_from_files() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("cg");
        put(
            &root,
            &[("cgroup.controllers", "cpu memory pids io hugetlb\n")],
        );
        put(
            &root,
            &[("cgroup.subtree_control", "cpu memory pids io hugetlb\n")],
        );
        let m = mgr(&crate::Hierarchy::V2 { root: root.clone() });
        put(&root.join("c"), &[
            ("cpu.stat", "usage_usec 100\nuser_usec 60\nsystem_usec 40\nnr_periods 5\nnr_throttled 2\nthrottled_usec 7\n"),
            ("memory.current", "1000\n"),
            ("memory.max", "max\n"),
            ("memory.swap.current", "10\n"),
            ("memory.swap.max", "0\n"),
            ("memory.stat", "anon 5\nfile 6\n"),
            ("memory.events", "low 0\nhigh 1\nmax 2\noom 3\noom_kill 4\n"),
            ("pids.current", "2\n"),
            ("pids.max", "20\n"),
            ("io.stat", "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0\n"),
            ("hugetlb.2MB.max", "max\n"),
            ("hugetlb.2MB.current", "0\n"),
            ("hugetlb.2MB.events", "max 9\n"),
        ]);
        let s = collect(&m).unwrap();
        assert_eq!(s.cpu.usage.total, 100_000);
        assert_eq!(s.cpu.usage.user, 60_000);
        assert_eq!(s.cpu.throttling.throttled_time, 7000);
        assert_eq!(s.memory.usage.usage, 1000);
        assert_eq!(s.memory.usage.limit, u64::MAX);
        assert_eq!(s.memory.swap.usage, 1010);
        assert_eq!(s.memory.cache, 6);
        assert_eq!(
            s.memory.event_count,
            MemoryEventCount {
                low: 0,
                high: 1,
                max: 2,
                oom: 3,
                oom_kill: 4
            }
        );
        assert_eq!(
            s.pids,
            Pids {
                current: 2,
                limit: 20
            }
        );
        assert_eq!(s.blkio.io_serviced_recursive[1].value, 4);
        assert_eq!(s.hugetlb["2MB"].failcnt, 9);
    }
}
