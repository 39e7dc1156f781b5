//! `update` and `events`: the cgroup side of runc's command line.
//!
//! `update` turns runc's flags (or a JSON LinuxResources from `-r`) into a
//! `LinuxResources` and applies it through the container's cgroup manager.
//! `events` prints runc's event lines: `stats` every interval and `oom` when
//! the OOM watcher fires, until the container stops.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use berth_cgroups::Manager;
use berth_runtime_core::container::{self, Container};
use berth_runtime_core::state::{Root, Status};
use berth_runtime_core::Error as RtError;
use serde_json::{json, Map, Value};

/// runc's `update` flags. Numbers are taken as strings and parsed the way
/// runc parses them (memory sizes like "512m" through go-units' RAMInBytes).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct UpdateArgs {
    pub id: String,
    /// Path to a JSON LinuxResources file, or "-" for stdin.
    #[arg(short = 'r', long)]
    pub resources: Option<String>,
    /// Per-cgroup block IO weight, 10 to 1000.
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<String>,
    /// CFS period (µs).
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<String>,
    /// CFS quota (µs per period); -1 for none.
    #[arg(long = "cpu-quota", allow_negative_numbers = true)]
    pub cpu_quota: Option<String>,
    /// CFS burst (µs).
    #[arg(long = "cpu-burst")]
    pub cpu_burst: Option<String>,
    /// CPU shares (relative weight).
    #[arg(long = "cpu-share", visible_alias = "cpu-shares")]
    pub cpu_share: Option<String>,
    /// Real-time period (µs).
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<String>,
    /// Real-time runtime (µs per period).
    #[arg(long = "cpu-rt-runtime", allow_negative_numbers = true)]
    pub cpu_rt_runtime: Option<String>,
    /// CPUs to use (e.g. "0-2,4").
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes to use.
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// SCHED_IDLE for the cgroup: 0 or 1.
    #[arg(long = "cpu-idle", allow_negative_numbers = true)]
    pub cpu_idle: Option<String>,
    /// Memory limit (bytes, or with a unit: 512m, 1g); -1 for none.
    #[arg(long, allow_negative_numbers = true)]
    pub memory: Option<String>,
    /// Memory soft limit.
    #[arg(long = "memory-reservation", allow_negative_numbers = true)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit; -1 for unlimited swap.
    #[arg(long = "memory-swap", allow_negative_numbers = true)]
    pub memory_swap: Option<String>,
    /// Obsolete; refused.
    #[arg(long = "kernel-memory", hide = true)]
    pub kernel_memory: Option<String>,
    /// Obsolete; refused.
    #[arg(long = "kernel-memory-tcp", hide = true)]
    pub kernel_memory_tcp: Option<String>,
    /// Maximum number of tasks.
    #[arg(long = "pids-limit", allow_negative_numbers = true)]
    pub pids_limit: Option<String>,
    /// Intel RDT/CAT L3 cache schema (not supported).
    #[arg(long = "l3-cache-schema")]
    pub l3_cache_schema: Option<String>,
    /// Intel RDT/MBA memory bandwidth schema (not supported).
    #[arg(long = "mem-bw-schema")]
    pub mem_bw_schema: Option<String>,
}

impl UpdateArgs {
    /// Whether any resource flag (besides `-r`) was given.
    fn has_flags(&self) -> bool {
        [
            &self.blkio_weight,
            &self.cpu_period,
            &self.cpu_quota,
            &self.cpu_burst,
            &self.cpu_share,
            &self.cpu_rt_period,
            &self.cpu_rt_runtime,
            &self.cpuset_cpus,
            &self.cpuset_mems,
            &self.cpu_idle,
            &self.memory,
            &self.memory_reservation,
            &self.memory_swap,
            &self.kernel_memory,
            &self.kernel_memory_tcp,
            &self.pids_limit,
            &self.l3_cache_schema,
            &self.mem_bw_schema,
        ]
        .iter()
        .any(|f| f.is_some())
    }

    /// Flags that berth-runtime cannot honour at all.
    fn refuse_unsupported(&self) -> Result<()> {
        for (flag, v) in [
            ("--kernel-memory", &self.kernel_memory),
            ("--kernel-memory-tcp", &self.kernel_memory_tcp),
        ] {
            if v.is_some() {
                bail!("{flag} is not supported: kernel memory limits are obsolete (deprecated on cgroup v1, absent on v2)");
            }
        }
        for (flag, v) in [
            ("--l3-cache-schema", &self.l3_cache_schema),
            ("--mem-bw-schema", &self.mem_bw_schema),
        ] {
            if v.is_some() {
                bail!("{flag} is not supported: berth-runtime has no Intel RDT support");
            }
        }
        Ok(())
    }

    /// The flags as a LinuxResources JSON object (only what was given).
    fn to_resources(&self) -> Result<Value> {
        let mut cpu = Map::new();
        let mut memory = Map::new();
        let mut r = Map::new();
        if let Some(v) = &self.blkio_weight {
            let w = parse_int(v, "blkio-weight")?;
            // runc treats 0 as "not given".
            if w != 0 {
                let w = u16::try_from(w).map_err(|_| {
                    anyhow::anyhow!("invalid value {v:?} for --blkio-weight: out of range")
                })?;
                r.insert("blockIO".into(), json!({ "weight": w }));
            }
        }
        if let Some(v) = self.cpuset_cpus.as_ref().filter(|v| !v.is_empty()) {
            cpu.insert("cpus".into(), json!(v));
        }
        if let Some(v) = self.cpuset_mems.as_ref().filter(|v| !v.is_empty()) {
            cpu.insert("mems".into(), json!(v));
        }
        if let Some(v) = &self.cpu_idle {
            cpu.insert("idle".into(), json!(parse_int(v, "cpu-idle")?));
        }
        for (flag, key, v) in [
            ("cpu-burst", "burst", &self.cpu_burst),
            ("cpu-period", "period", &self.cpu_period),
            ("cpu-rt-period", "realtimePeriod", &self.cpu_rt_period),
            ("cpu-share", "shares", &self.cpu_share),
        ] {
            if let Some(v) = v {
                cpu.insert(key.into(), json!(parse_uint(v, flag)?));
            }
        }
        for (flag, key, v) in [
            ("cpu-quota", "quota", &self.cpu_quota),
            ("cpu-rt-runtime", "realtimeRuntime", &self.cpu_rt_runtime),
        ] {
            if let Some(v) = v {
                cpu.insert(key.into(), json!(parse_int(v, flag)?));
            }
        }
        for (flag, key, v) in [
            ("memory", "limit", &self.memory),
            ("memory-swap", "swap", &self.memory_swap),
            (
                "memory-reservation",
                "reservation",
                &self.memory_reservation,
            ),
        ] {
            if let Some(v) = v {
                let n = if v == "-1" {
                    -1
                } else {
                    ram_in_bytes(v)
                        .map_err(|e| anyhow::anyhow!("invalid value {v:?} for --{flag}: {e}"))?
                };
                memory.insert(key.into(), json!(n));
            }
        }
        if let Some(v) = &self.pids_limit {
            r.insert(
                "pids".into(),
                json!({ "limit": parse_int(v, "pids-limit")? }),
            );
        }
        if !cpu.is_empty() {
            r.insert("cpu".into(), Value::Object(cpu));
        }
        if !memory.is_empty() {
            r.insert("memory".into(), Value::Object(memory));
        }
        Ok(Value::Object(r))
    }
}

fn parse_int(v: &str, flag: &str) -> Result<i64> {
    v.parse::<i64>()
        .map_err(|e| anyhow::anyhow!("invalid value {v:?} for --{flag}: {e}"))
}

fn parse_uint(v: &str, flag: &str) -> Result<u64> {
    v.parse::<u64>()
        .map_err(|e| anyhow::anyhow!("invalid value {v:?} for --{flag}: {e}"))
}

/// go-units' RAMInBytes, as runc uses it: a decimal number, an optional
/// space, and an optional case-insensitive binary unit k/m/g/t/p with an
/// optional "b" or "ib" ("512m", "1.5GiB", "10 KB", "100b").
pub fn ram_in_bytes(s: &str) -> Result<i64, String> {
    let sep = s
        .rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ')
        .ok_or_else(|| format!("invalid size {s:?}"))?;
    let (num, sfx) = if s.as_bytes()[sep] == b' ' {
        (&s[..sep], &s[sep + 1..])
    } else {
        (&s[..=sep], &s[sep + 1..])
    };
    let size: f64 = num.parse().map_err(|_| format!("invalid number {num:?}"))?;
    if !size.is_finite() || size < 0.0 {
        return Err(format!("invalid size {s:?}"));
    }
    let bad = || format!("invalid suffix {sfx:?}");
    let sfx_l = sfx.to_ascii_lowercase();
    let b = sfx_l.as_bytes();
    let mul: f64 = match b.first() {
        None => 1.0,
        Some(b'b') if b.len() == 1 => 1.0,
        Some(c) => {
            let shift = match c {
                b'k' => 10,
                b'm' => 20,
                b'g' => 30,
                b't' => 40,
                b'p' => 50,
                _ => return Err(bad()),
            };
            match &sfx_l[1..] {
                "" | "b" | "ib" => {}
                _ => return Err(bad()),
            }
            (1u64 << shift) as f64
        }
    };
    let bytes = size * mul;
    if bytes >= i64::MAX as f64 {
        return Err(format!("size {s:?} is too large"));
    }
    Ok(bytes as i64)
}

/// Reads `-r FILE|-` as a JSON object.
fn read_resources(src: &str) -> Result<Value> {
    let text = if src == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("read resources from stdin")?;
        s
    } else {
        std::fs::read_to_string(src).with_context(|| format!("read resources file {src}"))?
    };
    let v: Value = serde_json::from_str(&text)
        .with_context(|| format!("parse resources from {src} as JSON"))?;
    if !v.is_object() {
        bail!("resources from {src} must be a JSON object (a LinuxResources)");
    }
    Ok(v)
}

/// Drops the fields runc's update format treats as "unchanged" when zero,
/// and refuses what cannot be updated. Returns warnings.
fn normalize(v: &mut Value) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    let obj = v.as_object_mut().expect("checked to be an object");
    // runc's update never changes device rules (it sets SkipDevices); say so
    // instead of dropping them silently.
    if obj.remove("devices").is_some_and(|d| !d.is_null()) {
        warnings.push(
            "update does not change device rules (as runc): linux.resources.devices ignored".into(),
        );
    }
    if let Some(b) = obj.get_mut("blockIO").and_then(Value::as_object_mut) {
        for k in ["weight", "leafWeight"] {
            if b.get(k).and_then(Value::as_u64) == Some(0) {
                b.remove(k);
            }
        }
    }
    if let Some(m) = obj.get_mut("memory").and_then(Value::as_object_mut) {
        for k in ["kernel", "kernelTCP"] {
            match m.get(k) {
                None | Some(Value::Null) => {}
                Some(x) if x.as_i64() == Some(0) => {
                    m.remove(k);
                }
                Some(x) => bail!("memory.{k} ({x}) is not supported: kernel memory limits are obsolete (deprecated on cgroup v1, absent on v2)"),
            }
        }
    }
    Ok(warnings)
}

fn read_trim(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

/// The unified directory when `ctrl_file` is served by cgroup v2 there (and
/// not by a v1 controller), e.g. cpu.max on a pure v2 host.
fn v2_dir_for<'a>(
    paths: &'a BTreeMap<String, PathBuf>,
    v1_ctrl: &str,
    file: &str,
) -> Option<&'a PathBuf> {
    if paths.contains_key(v1_ctrl) {
        return None;
    }
    paths.get("").filter(|d| d.join(file).exists())
}

/// cgroup v2 writes quota and period together (cpu.max) and the swap limit
/// relative to the memory limit: when an update gives only one of a pair,
/// take the other from the cgroup, as runc takes it from its saved config.
fn fill_from_cgroup(v: &mut Value, paths: &BTreeMap<String, PathBuf>) -> Result<()> {
    let obj = v.as_object_mut().expect("checked to be an object");
    if let Some(cpu) = obj.get_mut("cpu").and_then(Value::as_object_mut) {
        let p = cpu.get("period").and_then(Value::as_u64).unwrap_or(0);
        let q = cpu.get("quota").and_then(Value::as_i64).unwrap_or(0);
        if (p == 0) != (q == 0) {
            if let Some(d) = v2_dir_for(paths, "cpu", "cpu.max") {
                let cur = read_trim(&d.join("cpu.max"))
                    .with_context(|| format!("read {}", d.join("cpu.max").display()))?;
                let mut it = cur.split_whitespace();
                let (cq, cp) = (it.next().unwrap_or("max"), it.next().unwrap_or("100000"));
                if p == 0 {
                    let cp: u64 = cp
                        .parse()
                        .with_context(|| format!("parse cpu.max {cur:?}"))?;
                    cpu.insert("period".into(), json!(cp));
                } else {
                    let cq: i64 = if cq == "max" {
                        -1
                    } else {
                        cq.parse()
                            .with_context(|| format!("parse cpu.max {cur:?}"))?
                    };
                    cpu.insert("quota".into(), json!(cq));
                }
            }
        }
    }
    if let Some(mem) = obj.get_mut("memory").and_then(Value::as_object_mut) {
        let swap = mem.get("swap").and_then(Value::as_i64).unwrap_or(0);
        let limit = mem.get("limit").and_then(Value::as_i64).unwrap_or(0);
        if swap != 0 && limit == 0 {
            if let Some(d) = v2_dir_for(paths, "memory", "memory.max") {
                let cur = read_trim(&d.join("memory.max"))
                    .with_context(|| format!("read {}", d.join("memory.max").display()))?;
                let l: i64 = if cur == "max" {
                    -1
                } else {
                    cur.parse()
                        .with_context(|| format!("parse memory.max {cur:?}"))?
                };
                mem.insert("limit".into(), json!(l));
            }
        }
    }
    Ok(())
}

/// A live container's cgroup manager, or why there is none.
fn live_cgroup(c: &Container, id: &str) -> Result<Box<dyn Manager>> {
    match c.status() {
        Status::Stopped => return Err(RtError::NotRunning.into()),
        Status::Creating => bail!("container {id} is still being created"),
        Status::Created | Status::Running | Status::Paused => {}
    }
    container::cgroup_of(&c.state).with_context(|| format!("container {id} has no cgroup"))
}

pub fn update(root: &Root, args: &UpdateArgs) -> Result<()> {
    args.refuse_unsupported()?;
    let mut v = match &args.resources {
        Some(src) => {
            if args.has_flags() {
                bail!("-r/--resources cannot be combined with other update flags: put every change into the JSON");
            }
            read_resources(src)?
        }
        None => args.to_resources()?,
    };
    for w in normalize(&mut v)? {
        eprintln!("warning: {w}");
    }
    // Readers and updaters do not take the lock (as pause): `run` keeps a
    // foreground container unlocked while it waits.
    let c = Container::open_unlocked(root, &args.id)?;
    let cg = live_cgroup(&c, &args.id)?;
    fill_from_cgroup(&mut v, &cg.paths())?;
    let res: berth_oci::LinuxResources =
        serde_json::from_value(v).context("invalid linux resources")?;
    cg.apply(&res)
        .with_context(|| format!("update resources of container {}", args.id))?;
    Ok(())
}

/// `{"type":...,"id":...,"data":...}` with runc's key order.
fn event_line(kind: &str, id: &str, data: Option<&str>) -> String {
    let id = serde_json::to_string(id).expect("a string serializes");
    match data {
        Some(d) => format!("{{\"type\":\"{kind}\",\"id\":{id},\"data\":{d}}}"),
        None => format!("{{\"type\":\"{kind}\",\"id\":{id}}}"),
    }
}

fn read_u64(d: &Path, f: &str) -> u64 {
    read_trim(&d.join(f))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn read_list(d: &Path, f: &str) -> Vec<u16> {
    read_trim(&d.join(f))
        .and_then(|s| berth_cgroups::parse_cpuset_list(&s).ok())
        .unwrap_or_default()
}

/// runc's `cpuset` stats: the v1 cpuset files, or on v2 the effective
/// cpus/mems (as runc's fs2 driver).
fn cpuset_stats(paths: &BTreeMap<String, PathBuf>) -> Value {
    let mut s = Map::new();
    let (cpus, mems, v1) = match (paths.get("cpuset"), paths.get("")) {
        (Some(d), _) => (
            read_list(d, "cpuset.cpus"),
            read_list(d, "cpuset.mems"),
            Some(d),
        ),
        (None, Some(d)) => (
            read_list(d, "cpuset.cpus.effective"),
            read_list(d, "cpuset.mems.effective"),
            None,
        ),
        (None, None) => (Vec::new(), Vec::new(), None),
    };
    let flag = |f: &str| v1.map_or(0, |d| read_u64(d, f));
    if !cpus.is_empty() {
        s.insert("cpus".into(), json!(cpus));
    }
    s.insert("cpu_exclusive".into(), json!(flag("cpuset.cpu_exclusive")));
    if !mems.is_empty() {
        s.insert("mems".into(), json!(mems));
    }
    for k in [
        "mem_hardwall",
        "mem_exclusive",
        "memory_migrate",
        "memory_spread_page",
        "memory_spread_slab",
        "memory_pressure",
        "sched_load_balance",
    ] {
        s.insert(k.into(), json!(flag(&format!("cpuset.{k}"))));
    }
    let relax: i64 = v1
        .and_then(|d| read_trim(&d.join("cpuset.sched_relax_domain_level")))
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    s.insert("sched_relax_domain_level".into(), json!(relax));
    Value::Object(s)
}

/// The `data` of a stats event: runc's types.Stats (cpu, cpuset, memory,
/// pids, blkio, hugetlb, intel_rdt, network_interfaces) and nothing else:
/// the crate's memory.event_count stays inside (its `oom` key would set off
/// a script that greps the stats for "oom"); OOM counts show where runc
/// shows them, memory.usage.failcnt and the raw memory.stat keys.
fn stats_data(cg: &dyn Manager) -> Result<String> {
    let s = cg.stats()?;
    let mut d = Map::new();
    d.insert("cpu".into(), serde_json::to_value(&s.cpu)?);
    d.insert("cpuset".into(), cpuset_stats(&cg.paths()));
    let mut memory = serde_json::to_value(&s.memory)?;
    if let Some(m) = memory.as_object_mut() {
        m.remove("event_count");
    }
    d.insert("memory".into(), memory);
    d.insert("pids".into(), serde_json::to_value(&s.pids)?);
    d.insert("blkio".into(), serde_json::to_value(&s.blkio)?);
    d.insert("hugetlb".into(), serde_json::to_value(&s.hugetlb)?);
    // No Intel RDT and no network statistics (runc fills the latter only
    // for its own veth setups).
    d.insert("intel_rdt".into(), json!({}));
    d.insert("network_interfaces".into(), Value::Null);
    Ok(serde_json::to_string(&Value::Object(d))?)
}

fn emit(out: &mut impl Write, line: &str) -> Result<()> {
    writeln!(out, "{line}").context("write event to stdout")?;
    out.flush().context("write event to stdout")?;
    Ok(())
}

/// How often a streaming `events` checks whether the container is still alive.
const LIVENESS_TICK: Duration = Duration::from_millis(100);
/// The tick while a v2 cgroup is at its memory limit (see [`PressureWatch`]).
const PRESSURE_TICK: Duration = Duration::from_millis(1);
/// How long the fast tick lasts after the last sign of pressure.
const PRESSURE_HOLD: Duration = Duration::from_secs(2);

/// On cgroup v2 the oom_kill counter lives in the container's own memory.events, which
/// is gone as soon as `run` or `delete` removes the cgroup after the kill; and the
/// kernel rate-limits its change notifications (20 ms), so the notification for the kill
/// can arrive after the removal. While memory.events shows the cgroup hitting its limit
/// ("max" rising), look at the counter every millisecond so the kill is seen before the
/// cgroup goes.
struct PressureWatch {
    file: Option<PathBuf>,
    last_max: u64,
    until: Option<Instant>,
}

impl PressureWatch {
    fn new(paths: &BTreeMap<String, PathBuf>) -> PressureWatch {
        let file = v2_dir_for(paths, "memory", "memory.events").map(|d| d.join("memory.events"));
        let mut w = PressureWatch {
            file,
            last_max: 0,
            until: None,
        };
        w.last_max = w.max_events();
        w
    }

    fn max_events(&self) -> u64 {
        self.file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("max ").and_then(|v| v.trim().parse().ok()))
            })
            .unwrap_or(0)
    }

    /// The tick to use now.
    fn tick(&mut self) -> Duration {
        if self.file.is_none() {
            return LIVENESS_TICK;
        }
        let m = self.max_events();
        let now = Instant::now();
        if m != self.last_max {
            self.last_max = m;
            self.until = Some(now + PRESSURE_HOLD);
        }
        match self.until {
            Some(u) if now < u => PRESSURE_TICK,
            _ => LIVENESS_TICK,
        }
    }
}

pub fn events(root: &Root, id: &str, stats: bool, interval: Duration) -> Result<()> {
    if interval.is_zero() {
        bail!("duration interval must be greater than 0");
    }
    let c = Container::open_unlocked(root, id)?;
    if c.status() == Status::Stopped {
        bail!("container with id {id} is not running");
    }
    let cg = live_cgroup(&c, id)?;
    let mut out = std::io::stdout().lock();
    if stats {
        let d = stats_data(cg.as_ref()).with_context(|| format!("stats of container {id}"))?;
        return emit(&mut out, &event_line("stats", id, Some(&d)));
    }
    let mut oom = cg
        .oom_events()
        .with_context(|| format!("watch oom events of container {id}"))?;
    let alive = || container::same_process(c.state.pid, c.state.pid_start_time);
    let mut pressure = PressureWatch::new(&cg.paths());
    let mut next = Instant::now() + interval;
    loop {
        let now = Instant::now();
        if now >= next {
            // As runc: a failed snapshot is logged and the stream goes on.
            match stats_data(cg.as_ref()) {
                Ok(d) => emit(&mut out, &event_line("stats", id, Some(&d)))?,
                Err(e) => eprintln!(
                    "stats of container {id}: {}",
                    berth_runtime_core::error_chain(e.as_ref())
                ),
            }
            next += interval;
            if next <= now {
                next = now + interval;
            }
            continue;
        }
        let wait = (next - now).min(pressure.tick());
        match oom.wait(Some(wait))? {
            berth_cgroups::events::OomEvent::Oom(_) => {
                emit(&mut out, &event_line("oom", id, None))?;
            }
            berth_cgroups::events::OomEvent::Gone => return Ok(()),
            berth_cgroups::events::OomEvent::Timeout => {}
        }
        if !alive() {
            // The kill that ended the container may have been an OOM kill
            // noticed after the last wait: report it before leaving.
            if let berth_cgroups::events::OomEvent::Oom(_) = oom.wait(Some(Duration::ZERO))? {
                emit(&mut out, &event_line("oom", id, None))?;
            }
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ram_in_bytes_matches_go_units() {
        let ok = [
            ("32", 32),
            ("32b", 32),
            ("32B", 32),
            ("32k", 32 << 10),
            ("32K", 32 << 10),
            ("32kb", 32 << 10),
            ("32Kb", 32 << 10),
            ("32Kib", 32 << 10),
            ("32KIB", 32 << 10),
            ("32Mb", 32 << 20),
            ("512m", 512 << 20),
            ("32Gb", 32 << 30),
            ("32Tb", 32 << 40),
            ("32PB", 32 << 50),
            ("32.5", 32),
            ("32.3Kb", 33075),
            ("10 MB", 10 << 20),
            ("0.5g", 1 << 29),
            ("0", 0),
        ];
        for (s, want) in ok {
            assert_eq!(ram_in_bytes(s), Ok(want), "{s}");
        }
        for s in [
            "", "hello", "-32", " 32 ", "32b ", "32 b ", "32 # ", "32xb", "32ii", "32bb", "32kbb",
            "32kib ", "32 mb a", "32m!", "1e400", "9000000p",
        ] {
            assert!(ram_in_bytes(s).is_err(), "{s:?} accepted");
        }
    }

    fn args(f: impl FnOnce(&mut UpdateArgs)) -> UpdateArgs {
        let mut a = UpdateArgs {
            id: "c".into(),
            ..Default::default()
        };
        f(&mut a);
        a
    }

    #[test]
    fn flags_become_linux_resources() {
        let a = args(|a| {
            a.memory = Some("512m".into());
            a.memory_swap = Some("-1".into());
            a.memory_reservation = Some("1g".into());
            a.cpu_quota = Some("-1".into());
            a.cpu_period = Some("100000".into());
            a.cpu_share = Some("512".into());
            a.cpu_rt_runtime = Some("950".into());
            a.cpu_rt_period = Some("1000".into());
            a.cpuset_cpus = Some("0-1".into());
            a.cpuset_mems = Some("0".into());
            a.pids_limit = Some("33".into());
            a.blkio_weight = Some("300".into());
        });
        let v = a.to_resources().unwrap();
        assert_eq!(
            v,
            json!({
                "blockIO": {"weight": 300},
                "pids": {"limit": 33},
                "cpu": {"cpus": "0-1", "mems": "0", "period": 100000, "realtimePeriod": 1000,
                        "shares": 512, "quota": -1, "realtimeRuntime": 950},
                "memory": {"limit": 536870912, "swap": -1, "reservation": 1073741824},
            })
        );
        let r: berth_oci::LinuxResources = serde_json::from_value(v).unwrap();
        assert_eq!(r.memory().as_ref().unwrap().limit(), Some(536870912));
        assert_eq!(r.pids().as_ref().unwrap().limit(), 33);
        assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(-1));
    }

    #[test]
    fn zero_blkio_weight_means_unchanged() {
        let v = args(|a| a.blkio_weight = Some("0".into()))
            .to_resources()
            .unwrap();
        assert_eq!(v, json!({}));
        let mut v = json!({"blockIO": {"weight": 0}, "cpu": {"shares": 0}});
        normalize(&mut v).unwrap();
        assert_eq!(v, json!({"blockIO": {}, "cpu": {"shares": 0}}));
    }

    #[test]
    fn bad_flag_values_name_the_flag() {
        for a in [
            args(|a| a.memory = Some("12q".into())),
            args(|a| a.cpu_period = Some("-5".into())),
            args(|a| a.cpu_quota = Some("lots".into())),
            args(|a| a.pids_limit = Some("x".into())),
            args(|a| a.blkio_weight = Some("70000".into())),
        ] {
            let e = a.to_resources().unwrap_err().to_string();
            assert!(e.contains("invalid value") && e.contains("--"), "{e}");
        }
    }

    #[test]
    fn obsolete_and_rdt_flags_are_refused() {
        for a in [
            args(|a| a.kernel_memory = Some("1m".into())),
            args(|a| a.kernel_memory_tcp = Some("1m".into())),
            args(|a| a.l3_cache_schema = Some("L3:0=f".into())),
            args(|a| a.mem_bw_schema = Some("MB:0=50".into())),
        ] {
            let e = a.refuse_unsupported().unwrap_err().to_string();
            assert!(e.contains("not supported"), "{e}");
        }
        let mut v = json!({"memory": {"kernel": 1048576}});
        assert!(normalize(&mut v)
            .unwrap_err()
            .to_string()
            .contains("memory.kernel"));
        let mut v = json!({"memory": {"kernel": 0, "limit": 5}});
        normalize(&mut v).unwrap();
        assert_eq!(v, json!({"memory": {"limit": 5}}));
    }

    #[test]
    fn device_rules_in_resources_are_dropped_with_a_warning() {
        let mut v = json!({"devices": [{"allow": false, "access": "rwm"}], "pids": {"limit": 5}});
        let w = normalize(&mut v).unwrap();
        assert_eq!(w.len(), 1);
        assert_eq!(v, json!({"pids": {"limit": 5}}));
    }

    /// A scratch directory removed on drop (no tempfile dependency here).
    struct Scratch(PathBuf);
    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let p = std::env::temp_dir().join(format!(
                "berth-cgroup-cmds-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Scratch(p)
        }
        fn path(&self) -> &Path {
            &self.0
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn v2_pairs_are_completed_from_the_cgroup() {
        let t = Scratch::new("v2pairs");
        std::fs::write(t.path().join("cpu.max"), "25000 50000\n").unwrap();
        std::fs::write(t.path().join("memory.max"), "1048576\n").unwrap();
        let mut paths = BTreeMap::new();
        paths.insert(String::new(), t.path().to_path_buf());
        let mut v = json!({"cpu": {"period": 100000}, "memory": {"swap": 2097152}});
        fill_from_cgroup(&mut v, &paths).unwrap();
        assert_eq!(
            v,
            json!({"cpu": {"period": 100000, "quota": 25000},
                   "memory": {"swap": 2097152, "limit": 1048576}})
        );
        let mut v = json!({"cpu": {"quota": 10000}});
        fill_from_cgroup(&mut v, &paths).unwrap();
        assert_eq!(v, json!({"cpu": {"quota": 10000, "period": 50000}}));
        std::fs::write(t.path().join("cpu.max"), "max 100000\n").unwrap();
        let mut v = json!({"cpu": {"period": 20000}});
        fill_from_cgroup(&mut v, &paths).unwrap();
        assert_eq!(v, json!({"cpu": {"period": 20000, "quota": -1}}));
        // A v1 cpu controller takes quota and period separately: left alone.
        paths.insert("cpu".into(), t.path().to_path_buf());
        let mut v = json!({"cpu": {"period": 20000}});
        fill_from_cgroup(&mut v, &paths).unwrap();
        assert_eq!(v, json!({"cpu": {"period": 20000}}));
    }

    #[test]
    fn pressure_on_v2_memory_speeds_up_the_tick() {
        let t = Scratch::new("pressure");
        let ev = t.path().join("memory.events");
        std::fs::write(&ev, "low 0\nhigh 0\nmax 3\noom 0\noom_kill 0\n").unwrap();
        let mut paths = BTreeMap::new();
        paths.insert(String::new(), t.path().to_path_buf());
        let mut w = PressureWatch::new(&paths);
        assert_eq!(w.tick(), LIVENESS_TICK);
        std::fs::write(&ev, "low 0\nhigh 0\nmax 9\noom 0\noom_kill 0\n").unwrap();
        assert_eq!(w.tick(), PRESSURE_TICK);
        assert_eq!(w.tick(), PRESSURE_TICK, "held after the last rise");
        // A v1 memory controller has its own (synchronous) eventfd: no fast tick.
        paths.insert("memory".into(), t.path().to_path_buf());
        let mut w = PressureWatch::new(&paths);
        std::fs::write(&ev, "max 20\n").unwrap();
        assert_eq!(w.tick(), LIVENESS_TICK);
    }

    #[test]
    fn event_lines_have_runcs_shape() {
        assert_eq!(
            event_line("oom", "a\"b", None),
            r#"{"type":"oom","id":"a\"b"}"#
        );
        let l = event_line("stats", "x", Some(r#"{"pids":{}}"#));
        let v: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v, json!({"type": "stats", "id": "x", "data": {"pids": {}}}));
    }

    #[test]
    fn cpuset_stats_read_v1_files() {
        let t = Scratch::new("cpuset");
        let d = t.path();
        std::fs::write(d.join("cpuset.cpus"), "0-2,5\n").unwrap();
        std::fs::write(d.join("cpuset.mems"), "0\n").unwrap();
        std::fs::write(d.join("cpuset.sched_load_balance"), "1\n").unwrap();
        std::fs::write(d.join("cpuset.sched_relax_domain_level"), "-1\n").unwrap();
        let mut paths = BTreeMap::new();
        paths.insert("cpuset".to_string(), d.to_path_buf());
        let v = cpuset_stats(&paths);
        assert_eq!(v["cpus"], json!([0, 1, 2, 5]));
        assert_eq!(v["mems"], json!([0]));
        assert_eq!(v["sched_load_balance"], json!(1));
        assert_eq!(v["sched_relax_domain_level"], json!(-1));
        assert_eq!(v["cpu_exclusive"], json!(0));
    }
}
