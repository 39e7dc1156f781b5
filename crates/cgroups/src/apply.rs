//! `linux.resources` → cgroup file writes, for v1 and v2 (and hybrid: each controller
//! where the host has it). Everything is planned and validated first, then written.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxResources, LinuxThrottleDevice};

use crate::devices::emulator::Emulator;
use crate::devices::DeviceRule;
use crate::fs::{Backend, FsManager};
use crate::util::{self, write};
use crate::Error;

/// One planned change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Write `value` to `dir/file`; a missing file means the kernel lacks the feature.
    Write {
        field: String,
        dir: PathBuf,
        file: String,
        value: String,
    },
    /// Write only where the kernel has the file (companion settings such as hugetlb
    /// reservation limits).
    WriteIfExists {
        dir: PathBuf,
        file: String,
        value: String,
    },
    /// v1 CFS period+quota, written in whichever order the kernel accepts (as runc).
    CfsV1 {
        dir: PathBuf,
        period: Option<u64>,
        quota: Option<i64>,
    },
    /// v2 device filter: generate, load and attach a BPF program.
    DevicesV2 { dir: PathBuf, state: Emulator },
}

fn w(field: &str, dir: &Path, file: &str, value: impl ToString) -> Action {
    Action::Write {
        field: field.to_string(),
        dir: dir.to_path_buf(),
        file: file.to_string(),
        value: value.to_string(),
    }
}

fn unsupported(field: &str, reason: impl Into<String>) -> Error {
    Error::Unsupported {
        field: field.to_string(),
        reason: reason.into(),
    }
}

fn invalid(field: &str, value: impl ToString, reason: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

fn no_controller(field: &str, ctrl: &str) -> Error {
    unsupported(
        field,
        format!("no {ctrl} controller in any cgroup hierarchy of this host"),
    )
}

/// runc's cpu.shares → cpu.weight conversion ([2, 262144] → [1, 10000]).
pub fn shares_to_weight(shares: u64) -> u64 {
    1 + ((shares.saturating_sub(2)) * 9999) / 262142
}

/// runc's blkio.weight → io.weight conversion ([10, 1000] → [1, 10000]).
pub fn blkio_weight_to_io_weight(w: u16) -> u64 {
    1 + (u64::from(w).saturating_sub(10)) * 9999 / 990
}

/// runc's memory.swap (memory+swap) → memory.swap.max (swap only) conversion.
pub fn swap_to_v2(swap: i64, limit: i64) -> Result<i64, String> {
    if limit == -1 && swap == 0 {
        return Ok(-1);
    }
    if swap == -1 || swap == 0 {
        return Ok(swap);
    }
    if limit == 0 || limit == -1 {
        return Err("a swap limit needs a memory limit".into());
    }
    if limit < 0 {
        return Err(format!("invalid memory limit {limit}"));
    }
    if swap < limit {
        return Err("memory+swap limit must be >= the memory limit".into());
    }
    Ok(swap - limit)
}

fn v2_num(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// Checks a hugepage size such as "2MB" or "1GB".
fn valid_page_size(s: &str) -> bool {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[digits.len()..];
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && ["KB", "MB", "GB"].contains(&unit)
}

/// Validates a `unified` key (GHSA-5g49-rx9x-qfc6: no '/' or '..' may reach a path).
pub fn check_unified_key(key: &str) -> Result<(&str, &str), Error> {
    let bad = |r: &str| invalid("unified", key, r);
    if key.contains('/') || key.contains("..") || key.contains('\0') {
        return Err(bad("a key may not contain '/' or '..'"));
    }
    let (ctrl, param) = key
        .split_once('.')
        .ok_or_else(|| bad("a key has the form CONTROLLER.PARAMETER"))?;
    if ctrl.is_empty() || param.is_empty() {
        return Err(bad("a key has the form CONTROLLER.PARAMETER"));
    }
    Ok((ctrl, param))
}

/// Builds the write plan and the v2 controllers to enable (hybrid).
pub(crate) fn plan(
    m: &FsManager,
    res: &LinuxResources,
) -> Result<(Vec<Action>, Vec<String>), Error> {
    let mut p = Vec::new();
    let mut enable: Vec<String> = Vec::new();
    let mut need = |m: &FsManager, v1: &str| -> Option<(bool, PathBuf)> {
        match m.backend(v1)? {
            Backend::V1(d) => Some((false, d.to_path_buf())),
            Backend::V2(d) => {
                let n = crate::fs::v2_name(v1).to_string();
                if !enable.contains(&n) {
                    enable.push(n);
                }
                Some((true, d.to_path_buf()))
            }
        }
    };

    // cpuset + cpu
    if let Some(cpu) = res.cpu() {
        for (field, val, file) in [
            ("cpu.cpus", cpu.cpus(), "cpuset.cpus"),
            ("cpu.mems", cpu.mems(), "cpuset.mems"),
        ] {
            if let Some(v) = val {
                if v.trim().is_empty() {
                    continue;
                }
                crate::util::parse_cpuset_list(v).map_err(|e| invalid(field, v, e.to_string()))?;
                let (_, d) = need(m, "cpuset").ok_or_else(|| no_controller(field, "cpuset"))?;
                p.push(w(field, &d, file, v.trim()));
            }
        }
        let wants_cpu = cpu.shares().is_some()
            || cpu.quota().is_some()
            || cpu.period().is_some()
            || cpu.burst().is_some()
            || cpu.realtime_period().is_some()
            || cpu.realtime_runtime().is_some()
            || cpu.idle().is_some();
        if wants_cpu {
            let (v2, d) = need(m, "cpu").ok_or_else(|| no_controller("cpu", "cpu"))?;
            if let Some(s) = cpu.shares().filter(|s| *s != 0) {
                if v2 {
                    if !(2..=262144).contains(&s) {
                        return Err(invalid("cpu.shares", s, "must be in [2, 262144]"));
                    }
                    p.push(w("cpu.shares", &d, "cpu.weight", shares_to_weight(s)));
                } else {
                    p.push(w("cpu.shares", &d, "cpu.shares", s));
                }
            }
            let quota = cpu.quota().filter(|q| *q != 0);
            let period = cpu.period().filter(|q| *q != 0);
            if quota.is_some() || period.is_some() {
                if let Some(q) = quota.filter(|q| *q < -1) {
                    return Err(invalid(
                        "cpu.quota",
                        q,
                        "must be -1 (unlimited) or positive",
                    ));
                }
                if v2 {
                    let mut s = match quota {
                        Some(q) if q > 0 => q.to_string(),
                        _ => "max".into(),
                    };
                    if let Some(per) = period {
                        s.push_str(&format!(" {per}"));
                    }
                    p.push(w("cpu.quota", &d, "cpu.max", s));
                } else {
                    p.push(Action::CfsV1 {
                        dir: d.clone(),
                        period,
                        quota,
                    });
                }
            }
            if let Some(b) = cpu.burst() {
                p.push(w(
                    "cpu.burst",
                    &d,
                    if v2 {
                        "cpu.max.burst"
                    } else {
                        "cpu.cfs_burst_us"
                    },
                    b,
                ));
            }
            if cpu.realtime_period().is_some() || cpu.realtime_runtime().is_some() {
                if v2 {
                    return Err(unsupported(
                        "cpu.realtimeRuntime",
                        "cgroup v2 has no real-time group scheduling",
                    ));
                }
                if let Some(rp) = cpu.realtime_period().filter(|v| *v != 0) {
                    p.push(w("cpu.realtimePeriod", &d, "cpu.rt_period_us", rp));
                }
                if let Some(rr) = cpu.realtime_runtime().filter(|v| *v != 0) {
                    p.push(w("cpu.realtimeRuntime", &d, "cpu.rt_runtime_us", rr));
                }
            }
            if let Some(i) = cpu.idle() {
                if !(0..=1).contains(&i) {
                    return Err(invalid("cpu.idle", i, "must be 0 or 1"));
                }
                p.push(w("cpu.idle", &d, "cpu.idle", i));
            }
        }
    }

    // memory
    if let Some(mem) = res.memory() {
        let any = mem.limit().is_some()
            || mem.reservation().is_some()
            || mem.swap().is_some()
            || mem.kernel().is_some()
            || mem.kernel_tcp().is_some()
            || mem.swappiness().is_some()
            || mem.disable_oom_killer().is_some()
            || mem.use_hierarchy().is_some();
        if any {
            let (v2, d) = need(m, "memory").ok_or_else(|| no_controller("memory", "memory"))?;
            plan_memory(&mut p, mem, v2, &d)?;
        }
    }

    // pids
    if let Some(pids) = res.pids() {
        let (_, d) = need(m, "pids").ok_or_else(|| no_controller("pids.limit", "pids"))?;
        p.push(w(
            "pids.limit",
            &d,
            "pids.max",
            v2_num(if pids.limit() <= 0 { -1 } else { pids.limit() }),
        ));
    }

    // block io
    if let Some(b) = res.block_io() {
        let any = b.weight().is_some()
            || b.leaf_weight().is_some()
            || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
            || [
                b.throttle_read_bps_device(),
                b.throttle_write_bps_device(),
                b.throttle_read_iops_device(),
                b.throttle_write_iops_device(),
            ]
            .iter()
            .any(|v| v.as_ref().is_some_and(|v| !v.is_empty()));
        if any {
            let (v2, d) = need(m, "blkio").ok_or_else(|| no_controller("blockIO", "blkio/io"))?;
            plan_blkio(&mut p, b, v2, &d)?;
        }
    }

    // hugetlb
    if let Some(hp) = res.hugepage_limits().as_ref().filter(|v| !v.is_empty()) {
        let (v2, d) =
            need(m, "hugetlb").ok_or_else(|| no_controller("hugepageLimits", "hugetlb"))?;
        for (i, h) in hp.iter().enumerate() {
            let field = format!("hugepageLimits[{i}]");
            if !valid_page_size(h.page_size()) {
                return Err(invalid(
                    &field,
                    h.page_size(),
                    "page size must look like 2MB or 1GB",
                ));
            }
            let file = if v2 {
                format!("hugetlb.{}.max", h.page_size())
            } else {
                format!("hugetlb.{}.limit_in_bytes", h.page_size())
            };
            let v = if v2 {
                v2_num(h.limit())
            } else {
                h.limit().to_string()
            };
            p.push(w(&field, &d, &file, &v));
            // Keep the reservation limit in step where the kernel has one (as runc).
            let rsvd = if v2 {
                format!("hugetlb.{}.rsvd.max", h.page_size())
            } else {
                format!("hugetlb.{}.rsvd.limit_in_bytes", h.page_size())
            };
            p.push(Action::WriteIfExists {
                dir: d.clone(),
                file: rsvd,
                value: v,
            });
        }
    }

    // network
    if let Some(net) = res.network() {
        if let Some(cid) = net.class_id() {
            let Some(Backend::V1(d)) = m.backend("net_cls") else {
                return Err(unsupported(
                    "network.classID",
                    "no v1 net_cls controller is mounted (cgroup v2 has none)",
                ));
            };
            p.push(w("network.classID", d, "net_cls.classid", cid));
        }
        if let Some(prios) = net.priorities().as_ref().filter(|v| !v.is_empty()) {
            let Some(Backend::V1(d)) = m.backend("net_prio") else {
                return Err(unsupported(
                    "network.priorities",
                    "no v1 net_prio controller is mounted (cgroup v2 has none)",
                ));
            };
            for (i, pr) in prios.iter().enumerate() {
                let field = format!("network.priorities[{i}]");
                if pr.name().is_empty() || pr.name().contains(char::is_whitespace) {
                    return Err(invalid(&field, pr.name(), "bad interface name"));
                }
                p.push(w(
                    &field,
                    d,
                    "net_prio.ifpriomap",
                    format!("{} {}", pr.name(), pr.priority()),
                ));
            }
        }
    }

    // rdma
    if let Some(rdma) = res.rdma().as_ref().filter(|v| !v.is_empty()) {
        let (_, d) = need(m, "rdma").ok_or_else(|| no_controller("rdma", "rdma"))?;
        let mut devs: Vec<_> = rdma.iter().collect();
        devs.sort_by(|a, b| a.0.cmp(b.0));
        for (dev, lim) in devs {
            let field = format!("rdma.{dev}");
            if dev.is_empty() || dev.contains(char::is_whitespace) {
                return Err(invalid("rdma", dev, "bad device name"));
            }
            let n = |v: Option<u32>| v.map_or("max".to_string(), |x| x.to_string());
            p.push(w(
                &field,
                &d,
                "rdma.max",
                format!(
                    "{dev} hca_handle={} hca_object={}",
                    n(lim.hca_handles()),
                    n(lim.hca_objects())
                ),
            ));
        }
    }

    // devices: modelled like the v1 controller, then written as a v1 transition or
    // compiled to a v2 BPF program.
    if let Some(devs) = res.devices() {
        let rules = devs
            .iter()
            .enumerate()
            .map(|(i, r)| DeviceRule::from_oci(r, i))
            .collect::<Result<Vec<_>, _>>()?;
        let target = Emulator::from_rules(&rules)?;
        match (m.v1.get("devices"), &m.v2) {
            (Some(d), _) => {
                let current = match util::read_opt(d, "devices.list")? {
                    Some(t) => Emulator::from_v1_list(&t)?,
                    None => None,
                };
                for (allow, line) in target.v1_transition(current.as_ref()) {
                    let file = if allow {
                        "devices.allow"
                    } else {
                        "devices.deny"
                    };
                    p.push(w("devices", d, file, line));
                }
            }
            // Pure v2, or hybrid without a v1 devices controller: the processes are in
            // the unified cgroup too, where the BPF filter applies.
            (None, Some(d)) => p.push(Action::DevicesV2 {
                dir: d.clone(),
                state: target,
            }),
            (None, None) => return Err(no_controller("devices", "devices")),
        }
    }

    // unified (last, so it can refine the converted values above, as runc)
    if let Some(u) = res.unified().as_ref().filter(|u| !u.is_empty()) {
        let Some(d) = m.v2.clone() else {
            return Err(unsupported(
                "unified",
                "no unified (cgroup v2) hierarchy on this host",
            ));
        };
        let mut keys: Vec<_> = u.iter().collect();
        keys.sort();
        for (k, v) in keys {
            let (ctrl, _) = check_unified_key(k)?;
            if ctrl != "cgroup" {
                if !m.v2_available(ctrl) {
                    return Err(unsupported(
                        &format!("unified.{k}"),
                        format!("controller {ctrl} is not available in the unified hierarchy"),
                    ));
                }
                if !m.pure_v2 && !enable.iter().any(|e| e == ctrl) {
                    enable.push(ctrl.to_string());
                }
            }
            p.push(w(&format!("unified.{k}"), &d, k, v));
        }
    }
    Ok((p, enable))
}

fn plan_memory(
    p: &mut Vec<Action>,
    mem: &oci_spec::runtime::LinuxMemory,
    v2: bool,
    d: &Path,
) -> Result<(), Error> {
    let limit = mem.limit().unwrap_or(0);
    let swap = mem.swap().unwrap_or(0);
    if limit < -1 {
        return Err(invalid(
            "memory.limit",
            limit,
            "must be -1 (unlimited) or >= 0",
        ));
    }
    if swap < -1 {
        return Err(invalid(
            "memory.swap",
            swap,
            "must be -1 (unlimited) or >= 0",
        ));
    }
    if mem.check_before_update() == Some(true) && limit > 0 {
        let usage = util::read_u64(
            d,
            if v2 {
                "memory.current"
            } else {
                "memory.usage_in_bytes"
            },
        )?;
        if (limit as u64) < usage {
            return Err(invalid(
                "memory.limit",
                limit,
                format!("below the current usage of {usage} bytes (checkBeforeUpdate)"),
            ));
        }
    }
    if v2 {
        let sw = swap_to_v2(swap, limit).map_err(|r| invalid("memory.swap", swap, r))?;
        if sw != 0 {
            p.push(w("memory.swap", d, "memory.swap.max", v2_num(sw)));
        }
        if limit != 0 {
            p.push(w("memory.limit", d, "memory.max", v2_num(limit)));
        }
        if let Some(r) = mem.reservation().filter(|r| *r != 0) {
            p.push(w("memory.reservation", d, "memory.low", v2_num(r)));
        }
        if mem.swappiness().is_some() {
            return Err(unsupported(
                "memory.swappiness",
                "cgroup v2 has no per-cgroup swappiness",
            ));
        }
        if mem.disable_oom_killer() == Some(true) {
            return Err(unsupported(
                "memory.disableOOMKiller",
                "cgroup v2 cannot disable the OOM killer",
            ));
        }
        if mem.use_hierarchy() == Some(false) {
            return Err(unsupported(
                "memory.useHierarchy",
                "cgroup v2 is always hierarchical",
            ));
        }
        if mem.kernel().is_some_and(|k| k != 0) || mem.kernel_tcp().is_some_and(|k| k != 0) {
            return Err(unsupported(
                "memory.kernel",
                "cgroup v2 has no separate kernel memory limit",
            ));
        }
        return Ok(());
    }
    // v1: "swap" is memory+swap (memsw).
    let has_memsw = d.join("memory.memsw.limit_in_bytes").exists();
    let swap = if limit == -1 && swap == 0 && has_memsw {
        -1
    } else {
        swap
    };
    if swap != 0 && !has_memsw {
        return Err(unsupported(
            "memory.swap",
            "swap accounting is off (no memory.memsw.limit_in_bytes)",
        ));
    }
    let set_mem = w("memory.limit", d, "memory.limit_in_bytes", limit);
    let set_swap = w("memory.swap", d, "memory.memsw.limit_in_bytes", swap);
    if limit != 0 && swap != 0 {
        // memsw must stay >= limit at every step: raise memsw first when growing.
        let cur = util::read_u64(d, "memory.limit_in_bytes")?;
        if swap == -1 || cur < swap as u64 {
            p.push(set_swap);
            p.push(set_mem);
        } else {
            p.push(set_mem);
            p.push(set_swap);
        }
    } else {
        if limit != 0 {
            p.push(set_mem);
        }
        if swap != 0 {
            p.push(set_swap);
        }
    }
    if let Some(r) = mem.reservation().filter(|r| *r != 0) {
        p.push(w("memory.reservation", d, "memory.soft_limit_in_bytes", r));
    }
    if let Some(k) = mem.kernel().filter(|k| *k != 0) {
        p.push(w("memory.kernel", d, "memory.kmem.limit_in_bytes", k));
    }
    if let Some(k) = mem.kernel_tcp().filter(|k| *k != 0) {
        p.push(w(
            "memory.kernelTCP",
            d,
            "memory.kmem.tcp.limit_in_bytes",
            k,
        ));
    }
    if let Some(s) = mem.swappiness() {
        if s > 100 {
            return Err(invalid("memory.swappiness", s, "must be in [0, 100]"));
        }
        p.push(w("memory.swappiness", d, "memory.swappiness", s));
    }
    if let Some(o) = mem.disable_oom_killer() {
        p.push(w(
            "memory.disableOOMKiller",
            d,
            "memory.oom_control",
            u8::from(o),
        ));
    }
    if let Some(h) = mem.use_hierarchy() {
        p.push(w(
            "memory.useHierarchy",
            d,
            "memory.use_hierarchy",
            u8::from(h),
        ));
    }
    Ok(())
}

fn plan_blkio(
    p: &mut Vec<Action>,
    b: &oci_spec::runtime::LinuxBlockIo,
    v2: bool,
    d: &Path,
) -> Result<(), Error> {
    let check_w = |field: &str, v: u16| -> Result<(), Error> {
        if (10..=1000).contains(&v) {
            Ok(())
        } else {
            Err(invalid(field, v, "must be in [10, 1000]"))
        }
    };
    let bfq = if v2 {
        d.join("io.bfq.weight").exists()
    } else {
        !d.join("blkio.weight").exists() && d.join("blkio.bfq.weight").exists()
    };
    if let Some(wt) = b.weight() {
        check_w("blockIO.weight", wt)?;
        match (v2, bfq) {
            (true, true) => p.push(w("blockIO.weight", d, "io.bfq.weight", wt)),
            (true, false) => p.push(w(
                "blockIO.weight",
                d,
                "io.weight",
                blkio_weight_to_io_weight(wt),
            )),
            (false, true) => p.push(w("blockIO.weight", d, "blkio.bfq.weight", wt)),
            (false, false) => p.push(w("blockIO.weight", d, "blkio.weight", wt)),
        }
    }
    if let Some(lw) = b.leaf_weight() {
        if v2 || bfq {
            return Err(unsupported(
                "blockIO.leafWeight",
                "leaf weights exist only with the legacy CFQ scheduler on cgroup v1",
            ));
        }
        check_w("blockIO.leafWeight", lw)?;
        p.push(w("blockIO.leafWeight", d, "blkio.leaf_weight", lw));
    }
    for (i, wd) in b.weight_device().iter().flatten().enumerate() {
        let field = format!("blockIO.weightDevice[{i}]");
        if wd.major() < 0 || wd.minor() < 0 {
            return Err(invalid(
                &field,
                format!("{}:{}", wd.major(), wd.minor()),
                "negative device number",
            ));
        }
        if let Some(wt) = wd.weight() {
            check_w(&field, wt)?;
            let (file, val) = match (v2, bfq) {
                (true, true) => ("io.bfq.weight", u64::from(wt)),
                (true, false) => ("io.weight", blkio_weight_to_io_weight(wt)),
                (false, true) => ("blkio.bfq.weight_device", u64::from(wt)),
                (false, false) => ("blkio.weight_device", u64::from(wt)),
            };
            p.push(w(
                &field,
                d,
                file,
                format!("{}:{} {val}", wd.major(), wd.minor()),
            ));
        }
        if let Some(lw) = wd.leaf_weight() {
            if v2 || bfq {
                return Err(unsupported(
                    &format!("{field}.leafWeight"),
                    "leaf weights exist only with the legacy CFQ scheduler on cgroup v1",
                ));
            }
            check_w(&field, lw)?;
            p.push(w(
                &field,
                d,
                "blkio.leaf_weight_device",
                format!("{}:{} {lw}", wd.major(), wd.minor()),
            ));
        }
    }
    let lists: [(&str, &Option<Vec<LinuxThrottleDevice>>, &str, &str); 4] = [
        (
            "throttleReadBpsDevice",
            b.throttle_read_bps_device(),
            "blkio.throttle.read_bps_device",
            "rbps",
        ),
        (
            "throttleWriteBpsDevice",
            b.throttle_write_bps_device(),
            "blkio.throttle.write_bps_device",
            "wbps",
        ),
        (
            "throttleReadIOPSDevice",
            b.throttle_read_iops_device(),
            "blkio.throttle.read_iops_device",
            "riops",
        ),
        (
            "throttleWriteIOPSDevice",
            b.throttle_write_iops_device(),
            "blkio.throttle.write_iops_device",
            "wiops",
        ),
    ];
    for (name, list, v1file, key) in lists {
        for (i, t) in list.iter().flatten().enumerate() {
            let field = format!("blockIO.{name}[{i}]");
            if t.major() < 0 || t.minor() < 0 {
                return Err(invalid(
                    &field,
                    format!("{}:{}", t.major(), t.minor()),
                    "negative device number",
                ));
            }
            if v2 {
                // rate 0 means "no limit" in the spec (as in v1), "max" in io.max.
                let rate = if t.rate() == 0 {
                    "max".to_string()
                } else {
                    t.rate().to_string()
                };
                p.push(w(
                    &field,
                    d,
                    "io.max",
                    format!("{}:{} {key}={rate}", t.major(), t.minor()),
                ));
            } else {
                p.push(w(
                    &field,
                    d,
                    v1file,
                    format!("{}:{} {}", t.major(), t.minor(), t.rate()),
                ));
            }
        }
    }
    Ok(())
}

/// The file the last write went to, kept open: a run of writes to one file (the v1
/// device rules: a dozen lines to devices.allow) opens it once. Each write(2) to a cgroup
/// file is its own request to the kernel.
#[derive(Default)]
struct Open {
    at: Option<(PathBuf, std::fs::File)>,
}

impl Open {
    fn write(&mut self, dir: &Path, file: &str, value: &str) -> Result<(), Error> {
        let path = dir.join(file);
        let err = |path: PathBuf, source| Error::Write {
            path,
            value: value.to_string(),
            source,
        };
        if self.at.as_ref().is_none_or(|(p, _)| *p != path) {
            self.at = None;
            let f = std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&path)
                .map_err(|e| err(path.clone(), e))?;
            self.at = Some((path, f));
        }
        let (path, f) = self.at.as_mut().expect("opened above");
        std::io::Write::write_all(f, value.as_bytes()).map_err(|e| err(path.clone(), e))
    }
}

fn exec(a: &Action, open: &mut Open) -> Result<(), Error> {
    match a {
        Action::Write {
            field,
            dir,
            file,
            value,
        } => match open.write(dir, file, value) {
            // Written without a look first: a missing file shows as ENOENT.
            Err(Error::Write { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Err(unsupported(
                    field,
                    format!(
                        "{} does not exist (the kernel lacks this control)",
                        dir.join(file).display()
                    ),
                ))
            }
            // v1 refuses a memory limit under what the cgroup already holds (EBUSY).
            Err(Error::Write { source, .. })
                if source.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error())
                    && field.starts_with("memory.") =>
            {
                Err(invalid(
                    field,
                    value,
                    format!(
                        "the memory limit is below what the cgroup {} already uses",
                        dir.display()
                    ),
                ))
            }
            r => r,
        },
        Action::WriteIfExists { dir, file, value } => match write(dir, file, value) {
            Err(Error::Write { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Ok(())
            }
            r => r,
        },
        Action::CfsV1 { dir, period, quota } => {
            let set_p =
                || period.map_or(Ok(()), |v| write(dir, "cpu.cfs_period_us", &v.to_string()));
            let set_q = || quota.map_or(Ok(()), |v| write(dir, "cpu.cfs_quota_us", &v.to_string()));
            // A new period can be refused while the old quota exceeds what it allows
            // (and vice versa): try period first, then the other order.
            match set_p() {
                Ok(()) => set_q(),
                Err(first) => {
                    set_q()?;
                    set_p().map_err(|_| first)
                }
            }
        }
        Action::DevicesV2 { dir, state } => crate::devices::ebpf::apply(dir, state),
    }
}

/// runc (and so docker and containerd) write 0 for "not set" in these
/// fields; a literal 0 would be out of range or mean "nothing allowed".
pub fn zero_is_unset(res: &LinuxResources) -> LinuxResources {
    let mut r = res.clone();
    if let Some(b) = r.block_io().clone() {
        let mut b = b;
        if b.weight() == Some(0) {
            b.set_weight(None);
        }
        if b.leaf_weight() == Some(0) {
            b.set_leaf_weight(None);
        }
        r.set_block_io(Some(b));
    }
    if let Some(c) = r.cpu().clone() {
        let mut c = c;
        if c.shares() == Some(0) {
            c.set_shares(None);
        }
        if c.quota() == Some(0) {
            c.set_quota(None);
        }
        if c.period() == Some(0) {
            c.set_period(None);
        }
        if c.realtime_runtime() == Some(0) {
            c.set_realtime_runtime(None);
        }
        if c.realtime_period() == Some(0) {
            c.set_realtime_period(None);
        }
        if c.cpus().as_deref() == Some("") {
            c.set_cpus(None);
        }
        if c.mems().as_deref() == Some("") {
            c.set_mems(None);
        }
        r.set_cpu(Some(c));
    }
    if let Some(mm) = *r.memory() {
        let mut mm = mm;
        if mm.limit() == Some(0) {
            mm.set_limit(None);
        }
        if mm.reservation() == Some(0) {
            mm.set_reservation(None);
        }
        if mm.swap() == Some(0) {
            mm.set_swap(None);
        }
        if mm.kernel() == Some(0) {
            mm.set_kernel(None);
        }
        if mm.kernel_tcp() == Some(0) {
            mm.set_kernel_tcp(None);
        }
        r.set_memory(Some(mm));
    }
    if let Some(p) = *r.pids() {
        if p.limit() == 0 {
            r.set_pids(None);
        }
    }
    r
}

pub(crate) fn apply(m: &FsManager, res: &LinuxResources) -> Result<(), Error> {
    let res = &zero_is_unset(res);
    let (plan, enable) = plan(m, res)?;
    if !m.pure_v2 && !enable.is_empty() {
        let e: Vec<&str> = enable.iter().map(String::as_str).collect();
        m.v2_enable(&e)?;
    }
    let mut open = Open::default();
    for a in &plan {
        if !matches!(a, Action::Write { .. }) {
            open = Open::default();
        }
        exec(a, &mut open)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hierarchy::Hierarchy;
    use crate::path::CgroupPath;
    use oci_spec::runtime::{
        LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxHugepageLimitBuilder, LinuxMemoryBuilder,
        LinuxPidsBuilder, LinuxResourcesBuilder, LinuxThrottleDeviceBuilder,
        LinuxWeightDeviceBuilder,
    };
    use std::collections::{BTreeMap, HashMap};
    use std::fs;

    /// A fake cgroupfs: mount dirs plus the leaf "/t/c" holding `files`.
    fn fake(h_kind: &str, files: &[(&str, &str, &str)]) -> (tempfile::TempDir, FsManager) {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        let v1: BTreeMap<String, PathBuf> = [
            "cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "devices", "freezer",
        ]
        .iter()
        .map(|c| (c.to_string(), r.join(c)))
        .collect();
        let h = match h_kind {
            "v1" => Hierarchy::V1 { mounts: v1 },
            "v2" => Hierarchy::V2 {
                root: r.join("unified"),
            },
            _ => Hierarchy::Hybrid {
                v1,
                v2: r.join("unified"),
            },
        };
        let m = FsManager::new(&CgroupPath::Absolute("/t/c".into()), &h, None).unwrap();
        for d in m.dirs() {
            fs::create_dir_all(d).unwrap();
        }
        let u = r.join("unified");
        fs::create_dir_all(&u).unwrap();
        for (dir, name, content) in files {
            let d = if dir.is_empty() {
                u.join("t/c")
            } else {
                r.join(dir)
            };
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join(name), content).unwrap();
        }
        (t, m)
    }

    fn writes(p: &[Action]) -> Vec<(String, String)> {
        p.iter()
            .filter_map(|a| match a {
                Action::Write { file, value, .. } => Some((file.clone(), value.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn conversions() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262144), 10000);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10000);
        assert_eq!(swap_to_v2(0, -1), Ok(-1));
        assert_eq!(swap_to_v2(-1, 100), Ok(-1));
        assert_eq!(swap_to_v2(300, 100), Ok(200));
        assert!(swap_to_v2(50, 100).is_err());
        assert!(swap_to_v2(50, 0).is_err());
        assert!(valid_page_size("2MB") && valid_page_size("1GB") && valid_page_size("64KB"));
        assert!(!valid_page_size("2M") && !valid_page_size("MB") && !valid_page_size("2MB/../x"));
    }

    #[test]
    fn unified_keys_gsha_5g49() {
        assert!(check_unified_key("memory.max").is_ok());
        for k in [
            "../memory.max",
            "memory.max/x",
            "memory..max",
            "nodot",
            ".max",
            "memory.",
            "a/b.c",
        ] {
            assert!(check_unified_key(k).is_err(), "{k}");
        }
    }

    #[test]
    fn v1_memory_order_and_values() {
        let (_t, m) = fake(
            "v1",
            &[
                (
                    "memory/t/c",
                    "memory.limit_in_bytes",
                    "9223372036854771712\n",
                ),
                (
                    "memory/t/c",
                    "memory.memsw.limit_in_bytes",
                    "9223372036854771712\n",
                ),
            ],
        );
        let mem = LinuxMemoryBuilder::default()
            .limit(5i64 << 20)
            .swap(10i64 << 20)
            .swappiness(10u64)
            .disable_oom_killer(true)
            .reservation(1i64 << 20)
            .build()
            .unwrap();
        let res = LinuxResourcesBuilder::default()
            .memory(mem)
            .build()
            .unwrap();
        let (p, _) = plan(&m, &res).unwrap();
        let w = writes(&p);
        // Current limit is huge, new memsw is smaller than it: limit first.
        assert_eq!(
            w[0],
            ("memory.limit_in_bytes".into(), (5 << 20).to_string())
        );
        assert_eq!(
            w[1],
            ("memory.memsw.limit_in_bytes".into(), (10 << 20).to_string())
        );
        assert!(w.contains(&("memory.oom_control".into(), "1".into())));
        assert!(w.contains(&("memory.swappiness".into(), "10".into())));
        assert!(w.contains(&("memory.soft_limit_in_bytes".into(), (1 << 20).to_string())));
        // Growing from a small current limit: memsw first.
        fs::write(m.v1["memory"].join("memory.limit_in_bytes"), "1048576\n").unwrap();
        let (p, _) = plan(&m, &res).unwrap();
        assert_eq!(writes(&p)[0].0, "memory.memsw.limit_in_bytes");
        // Bad swappiness.
        let mem = LinuxMemoryBuilder::default()
            .swappiness(101u64)
            .build()
            .unwrap();
        let res = LinuxResourcesBuilder::default()
            .memory(mem)
            .build()
            .unwrap();
        assert!(matches!(plan(&m, &res), Err(Error::Invalid { .. })));
    }

    #[test]
    fn v1_swap_without_accounting_is_refused() {
        let (_t, m) = fake("v1", &[("memory/t/c", "memory.limit_in_bytes", "0\n")]);
        let mem = LinuxMemoryBuilder::default()
            .limit(100i64)
            .swap(200i64)
            .build()
            .unwrap();
        let res = LinuxResourcesBuilder::default()
            .memory(mem)
            .build()
            .unwrap();
        match plan(&m, &res) {
            Err(Error::Unsupported { field, .. }) => assert_eq!(field, "memory.swap"),
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn check_before_update() {
        let (_t, m) = fake("v1", &[("memory/t/c", "memory.usage_in_bytes", "2000\n")]);
        let mem = LinuxMemoryBuilder::default()
            .limit(1000i64)
            .check_before_update(true)
            .build()
            .unwrap();
        let res = LinuxResourcesBuilder::default()
            .memory(mem)
            .build()
            .unwrap();
        assert!(matches!(plan(&m, &res), Err(Error::Invalid { .. })));
        let mem = LinuxMemoryBuilder::default()
            .limit(3000i64)
            .check_before_update(true)
            .build()
            .unwrap();
        let res = LinuxResourcesBuilder::default()
            .memory(mem)
            .build()
            .unwrap();
        assert!(plan(&m, &res).is_ok());
    }

    #[test]
    fn v2_conversions() {
        let (_t, m) = fake(
            "v2",
            &[
                (
                    "unified",
                    "cgroup.controllers",
                    "cpu memory pids io cpuset hugetlb\n",
                ),
                (
                    "unified/t",
                    "cgroup.subtree_control",
                    "cpu memory pids io cpuset hugetlb\n",
                ),
            ],
        );
        let cpu = LinuxCpuBuilder::default()
            .shares(1024u64)
            .quota(50000i64)
            .period(100000u64)
            .cpus("0-1")
            .burst(1000u64)
            .idle(1i64)
            .build()
            .unwrap();
        let mem = LinuxMemoryBuilder::default()
            .limit(100i64 << 20)
            .swap(150i64 << 20)
            .reservation(10i64 << 20)
            .build()
            .unwrap();
        let bio = LinuxBlockIoBuilder::default()
            .weight(500u16)
            .weight_device(vec![LinuxWeightDeviceBuilder::default()
                .major(8)
                .minor(0)
                .weight(100u16)
                .build()
                .unwrap()])
            .throttle_read_bps_device(vec![LinuxThrottleDeviceBuilder::default()
                .major(8)
                .minor(0)
                .rate(1000u64)
                .build()
                .unwrap()])
            .throttle_write_iops_device(vec![LinuxThrottleDeviceBuilder::default()
                .major(8)
                .minor(16)
                .rate(0u64)
                .build()
                .unwrap()])
            .build()
            .unwrap();
        let hp = LinuxHugepageLimitBuilder::default()
            .page_size("2MB")
            .limit(-1i64)
            .build()
            .unwrap();
        let res = LinuxResourcesBuilder::default()
            .cpu(cpu)
            .memory(mem)
            .block_io(bio)
            .pids(LinuxPidsBuilder::default().limit(0i64).build().unwrap())
            .hugepage_limits(vec![hp])
            .unified(HashMap::from([(
                "memory.high".to_string(),
                "max".to_string(),
            )]))
            .build()
            .unwrap();
        let (p, _) = plan(&m, &res).unwrap();
        let w = writes(&p);
        for want in [
            ("cpu.weight", "39"),
            ("cpu.max", "50000 100000"),
            ("cpu.max.burst", "1000"),
            ("cpu.idle", "1"),
            ("cpuset.cpus", "0-1"),
            ("memory.swap.max", &(50u64 << 20).to_string()),
            ("memory.max", &(100u64 << 20).to_string()),
            ("memory.low", &(10u64 << 20).to_string()),
            ("pids.max", "max"),
            ("io.weight", "4950"),
            ("io.weight", "8:0 910"),
            ("io.max", "8:0 rbps=1000"),
            ("io.max", "8:16 wiops=max"),
            ("hugetlb.2MB.max", "max"),
            ("memory.high", "max"),
        ] {
            assert!(
                w.contains(&(want.0.to_string(), want.1.to_string())),
                "{want:?} not in {w:?}"
            );
        }
        // unified comes last so it wins over converted values.
        assert_eq!(w.last().unwrap().0, "memory.high");
    }

    #[test]
    fn v2_refusals_name_the_field() {
        let (_t, m) = fake(
            "v2",
            &[
                ("unified", "cgroup.controllers", "cpu memory\n"),
                ("unified/t", "cgroup.subtree_control", "cpu memory\n"),
            ],
        );
        let cases: Vec<(LinuxResources, &str)> = vec![
            (
                LinuxResourcesBuilder::default()
                    .cpu(
                        LinuxCpuBuilder::default()
                            .realtime_runtime(100i64)
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
                "cpu.realtimeRuntime",
            ),
            (
                LinuxResourcesBuilder::default()
                    .memory(
                        LinuxMemoryBuilder::default()
                            .swappiness(5u64)
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
                "memory.swappiness",
            ),
            (
                LinuxResourcesBuilder::default()
                    .memory(
                        LinuxMemoryBuilder::default()
                            .disable_oom_killer(true)
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
                "memory.disableOOMKiller",
            ),
            (
                LinuxResourcesBuilder::default()
                    .pids(LinuxPidsBuilder::default().limit(5i64).build().unwrap())
                    .build()
                    .unwrap(),
                "pids.limit",
            ),
            (
                LinuxResourcesBuilder::default()
                    .block_io(
                        LinuxBlockIoBuilder::default()
                            .leaf_weight(100u16)
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
                "blockIO",
            ),
            (
                LinuxResourcesBuilder::default()
                    .unified(HashMap::from([("pids.max".to_string(), "5".to_string())]))
                    .build()
                    .unwrap(),
                "unified.pids.max",
            ),
        ];
        for (res, field) in cases {
            match plan(&m, &res) {
                Err(Error::Unsupported { field: f, .. }) => assert_eq!(f, field),
                o => panic!("{field}: {o:?}"),
            }
        }
        let res = LinuxResourcesBuilder::default()
            .unified(HashMap::from([("../x.y".to_string(), "1".to_string())]))
            .build()
            .unwrap();
        assert!(matches!(plan(&m, &res), Err(Error::Invalid { .. })));
    }

    #[test]
    fn v1_refuses_unified_and_missing_controllers() {
        let (_t, m) = fake("v1", &[]);
        let res = LinuxResourcesBuilder::default()
            .unified(HashMap::from([("memory.max".to_string(), "1".to_string())]))
            .build()
            .unwrap();
        assert!(matches!(plan(&m, &res), Err(Error::Unsupported { .. })));
        let hp = LinuxHugepageLimitBuilder::default()
            .page_size("2MB")
            .limit(1i64)
            .build()
            .unwrap();
        let res = LinuxResourcesBuilder::default()
            .hugepage_limits(vec![hp])
            .build()
            .unwrap();
        match plan(&m, &res) {
            Err(Error::Unsupported { field, .. }) => assert_eq!(field, "hugepageLimits"),
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn hybrid_hugetlb_goes_to_unified_and_is_enabled() {
        let (t, m) = fake(
            "hybrid",
            &[
                ("unified", "cgroup.controllers", "hugetlb\n"),
                ("unified", "cgroup.subtree_control", ""),
                ("unified/t", "cgroup.controllers", "hugetlb\n"),
                ("unified/t", "cgroup.subtree_control", ""),
                ("", "hugetlb.2MB.max", "max\n"),
            ],
        );
        let hp = LinuxHugepageLimitBuilder::default()
            .page_size("2MB")
            .limit(4i64 << 20)
            .build()
            .unwrap();
        let res = LinuxResourcesBuilder::default()
            .hugepage_limits(vec![hp])
            .build()
            .unwrap();
        let (p, en) = plan(&m, &res).unwrap();
        assert_eq!(en, vec!["hugetlb".to_string()]);
        assert_eq!(
            writes(&p)[0],
            ("hugetlb.2MB.max".into(), (4u64 << 20).to_string())
        );
        apply(&m, &res).unwrap();
        let u = t.path().join("unified");
        assert_eq!(
            fs::read_to_string(u.join("cgroup.subtree_control")).unwrap(),
            "+hugetlb"
        );
        assert_eq!(
            fs::read_to_string(u.join("t/cgroup.subtree_control")).unwrap(),
            "+hugetlb"
        );
        assert_eq!(
            fs::read_to_string(u.join("t/c/hugetlb.2MB.max")).unwrap(),
            (4u64 << 20).to_string()
        );
    }

    #[test]
    fn v1_cpu_and_missing_file_is_unsupported() {
        let (_t, m) = fake(
            "v1",
            &[
                ("cpu/t/c", "cpu.shares", "1024\n"),
                ("cpu/t/c", "cpu.cfs_period_us", "100000\n"),
                ("cpu/t/c", "cpu.cfs_quota_us", "-1\n"),
            ],
        );
        let cpu = LinuxCpuBuilder::default()
            .shares(512u64)
            .quota(20000i64)
            .period(50000u64)
            .build()
            .unwrap();
        let res = LinuxResourcesBuilder::default().cpu(cpu).build().unwrap();
        apply(&m, &res).unwrap();
        let d = &m.v1["cpu"];
        assert_eq!(fs::read_to_string(d.join("cpu.shares")).unwrap(), "512");
        assert_eq!(
            fs::read_to_string(d.join("cpu.cfs_quota_us")).unwrap(),
            "20000"
        );
        assert_eq!(
            fs::read_to_string(d.join("cpu.cfs_period_us")).unwrap(),
            "50000"
        );
        let cpu = LinuxCpuBuilder::default().burst(5u64).build().unwrap();
        let res = LinuxResourcesBuilder::default().cpu(cpu).build().unwrap();
        match apply(&m, &res) {
            Err(Error::Unsupported { field, .. }) => assert_eq!(field, "cpu.burst"),
            o => panic!("{o:?}"),
        }
        let cpu = LinuxCpuBuilder::default().cpus("0-").build().unwrap();
        let res = LinuxResourcesBuilder::default().cpu(cpu).build().unwrap();
        assert!(matches!(plan(&m, &res), Err(Error::Invalid { .. })));
    }

    #[test]
    fn v1_blkio_network_rdma() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        let v1: BTreeMap<String, PathBuf> = ["blkio", "net_cls", "net_prio", "rdma"]
            .iter()
            .map(|c| (c.to_string(), r.join(c)))
            .collect();
        let m = FsManager::new(
            &CgroupPath::Absolute("/c".into()),
            &Hierarchy::V1 { mounts: v1 },
            None,
        )
        .unwrap();
        for d in m.dirs() {
            fs::create_dir_all(d).unwrap();
        }
        // BFQ-only kernel: no blkio.weight, only blkio.bfq.weight.
        fs::write(r.join("blkio/c/blkio.bfq.weight"), "100").unwrap();
        let bio = LinuxBlockIoBuilder::default()
            .weight(300u16)
            .weight_device(vec![LinuxWeightDeviceBuilder::default()
                .major(8)
                .minor(0)
                .weight(200u16)
                .build()
                .unwrap()])
            .throttle_write_bps_device(vec![LinuxThrottleDeviceBuilder::default()
                .major(8)
                .minor(0)
                .rate(1048576u64)
                .build()
                .unwrap()])
            .build()
            .unwrap();
        let net = oci_spec::runtime::LinuxNetworkBuilder::default()
            .class_id(0x100001u32)
            .priorities(vec![
                oci_spec::runtime::LinuxInterfacePriorityBuilder::default()
                    .name("eth0")
                    .priority(5u32)
                    .build()
                    .unwrap(),
            ])
            .build()
            .unwrap();
        let rdma = HashMap::from([(
            "mlx5_0".to_string(),
            oci_spec::runtime::LinuxRdmaBuilder::default()
                .hca_handles(3u32)
                .build()
                .unwrap(),
        )]);
        let res = LinuxResourcesBuilder::default()
            .block_io(bio)
            .network(net)
            .rdma(rdma)
            .build()
            .unwrap();
        let (p, _) = plan(&m, &res).unwrap();
        let w = writes(&p);
        for want in [
            ("blkio.bfq.weight", "300"),
            ("blkio.bfq.weight_device", "8:0 200"),
            ("blkio.throttle.write_bps_device", "8:0 1048576"),
            ("net_cls.classid", "1048577"),
            ("net_prio.ifpriomap", "eth0 5"),
            ("rdma.max", "mlx5_0 hca_handle=3 hca_object=max"),
        ] {
            assert!(
                w.contains(&(want.0.to_string(), want.1.to_string())),
                "{want:?} not in {w:?}"
            );
        }
        // Leaf weights need CFQ's blkio.leaf_weight.
        let bio = LinuxBlockIoBuilder::default()
            .leaf_weight(100u16)
            .build()
            .unwrap();
        let res = LinuxResourcesBuilder::default()
            .block_io(bio)
            .build()
            .unwrap();
        assert!(matches!(plan(&m, &res), Err(Error::Unsupported { .. })));
        let bio = LinuxBlockIoBuilder::default().weight(5u16).build().unwrap();
        let res = LinuxResourcesBuilder::default()
            .block_io(bio)
            .build()
            .unwrap();
        assert!(matches!(plan(&m, &res), Err(Error::Invalid { .. })));
    }

    #[test]
    fn network_on_a_host_without_net_cls() {
        let (_t, m) = fake("hybrid", &[("unified", "cgroup.controllers", "hugetlb\n")]);
        let net = oci_spec::runtime::LinuxNetworkBuilder::default()
            .class_id(1u32)
            .build()
            .unwrap();
        let res = LinuxResourcesBuilder::default()
            .network(net)
            .build()
            .unwrap();
        match plan(&m, &res) {
            Err(Error::Unsupported { field, .. }) => assert_eq!(field, "network.classID"),
            o => panic!("{o:?}"),
        }
        let rdma = HashMap::from([(
            "d".to_string(),
            oci_spec::runtime::LinuxRdmaBuilder::default()
                .build()
                .unwrap(),
        )]);
        let res = LinuxResourcesBuilder::default().rdma(rdma).build().unwrap();
        match plan(&m, &res) {
            Err(Error::Unsupported { field, .. }) => assert_eq!(field, "rdma"),
            o => panic!("{o:?}"),
        }
    }
}
