//! Parsers for `run`/`create` flag values, with docker's syntax. Every error names the value.

use crate::error::{Error, Result};
use crate::options::{DeviceSpec, LogDriver, LogOptions, MountSpec, NsMode, RestartPolicy, Ulimit};

fn bad(what: &str, v: &str, why: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("invalid {what} {v:?}: {why}"))
}

/// A size in bytes, docker's RAMInBytes: `512`, `512b`, `5k`, `5m`, `1.5g`, `1GiB`, `2t`
/// (binary units; a trailing `b`/`ib` is allowed).
pub fn size(v: &str) -> Result<u64> {
    let s = v.trim();
    let lower = s.to_ascii_lowercase();
    let num_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(num_end);
    let unit = unit.trim_start();
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.matches('.').count() > 1
    {
        return Err(bad(
            "size",
            v,
            "expected a number with an optional unit (b, k, m, g, t)",
        ));
    }
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(unit);
    let mult: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => return Err(bad("size", v, "unknown unit")),
    };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let int: u64 = int
        .parse()
        .map_err(|_| bad("size", v, "number too large"))?;
    let mut bytes = int
        .checked_mul(mult)
        .ok_or_else(|| bad("size", v, "number too large"))?;
    if !frac.is_empty() {
        let f: f64 = format!("0.{frac}")
            .parse()
            .map_err(|_| bad("size", v, "bad number"))?;
        bytes = bytes
            .checked_add((f * mult as f64) as u64)
            .ok_or_else(|| bad("size", v, "number too large"))?;
    }
    if bytes > i64::MAX as u64 {
        return Err(bad("size", v, "number too large"));
    }
    Ok(bytes)
}

/// `--memory-swap`: a size, or -1 for unlimited.
pub fn memory_swap(v: &str) -> Result<i64> {
    if v.trim() == "-1" {
        return Ok(-1);
    }
    Ok(size(v)? as i64)
}

/// Go's Duration.String(): "1m30s", "500ms", "0s".
pub fn go_duration(d: std::time::Duration) -> String {
    let n = d.as_nanos();
    if n == 0 {
        return "0s".into();
    }
    if n < 1_000_000_000 {
        // Go prints sub-second durations in the largest unit that keeps an integer part.
        let (div, unit) = if n < 1_000 {
            (1, "ns")
        } else if n < 1_000_000 {
            (1_000, "\u{b5}s")
        } else {
            (1_000_000, "ms")
        };
        return format!("{}{unit}", frac(n, div));
    }
    let h = n / 3_600_000_000_000;
    let m = (n / 60_000_000_000) % 60;
    let s = n % 60_000_000_000;
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{}s", frac(s, 1_000_000_000)));
    out
}

/// `n / div` with the fraction's trailing zeros dropped, as Go prints it.
fn frac(n: u128, div: u128) -> String {
    let int = n / div;
    let rem = n % div;
    if rem == 0 {
        return int.to_string();
    }
    let width = div.to_string().len() - 1;
    let f = format!("{rem:0width$}");
    format!("{int}.{}", f.trim_end_matches('0'))
}

/// A Go duration (`time.ParseDuration`) as docker accepts it: `1s`, `500ms`, `1m30s`, `1.5h`,
/// `0`. A unit is required except for 0. Returns nanoseconds; negative values are refused.
pub fn duration(v: &str) -> Result<i64> {
    let s = v.trim();
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() || s.starts_with('-') {
        return Err(bad("duration", v, "expected e.g. 30s, 500ms or 1m30s"));
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let mut rest = s;
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| bad("duration", v, "missing unit (ns, us, ms, s, m, h)"))?;
        if n == 0 {
            return Err(bad("duration", v, "expected a number before each unit"));
        }
        let num: f64 = rest[..n]
            .parse()
            .map_err(|_| bad("duration", v, "bad number"))?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            other => return Err(bad("duration", v, format!("unknown unit {other:?}"))),
        };
        rest = &rest[u..];
        total += num * mult;
    }
    if total >= i64::MAX as f64 {
        return Err(bad("duration", v, "too long"));
    }
    Ok(total.round() as i64)
}

/// `--cpus 1.5` -> nano CPUs (1_500_000_000), exact decimal arithmetic as docker's big.Rat.
pub fn nano_cpus(v: &str) -> Result<i64> {
    let s = v.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return Err(bad(
            "--cpus value",
            v,
            "expected a decimal number such as 0.5 or 2",
        ));
    }
    let frac_t = frac.trim_end_matches('0');
    if frac_t.len() > 9 {
        return Err(bad("--cpus value", v, "value is too precise"));
    }
    let i: i64 = if int.is_empty() {
        0
    } else {
        int.parse()
            .map_err(|_| bad("--cpus value", v, "too large"))?
    };
    let f: i64 = if frac_t.is_empty() {
        0
    } else {
        format!("{frac_t:0<9}").parse().expect("digits")
    };
    i.checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(f))
        .ok_or_else(|| bad("--cpus value", v, "too large"))
}

const ULIMITS: &[&str] = &[
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// `--ulimit nofile=1024:2048` (soft[:hard]; -1 = unlimited).
pub fn ulimit(v: &str) -> Result<Ulimit> {
    let (name, vals) = v
        .split_once('=')
        .ok_or_else(|| bad("ulimit", v, "expected name=soft[:hard]"))?;
    if !ULIMITS.contains(&name) {
        return Err(bad("ulimit", v, format!("unknown limit {name:?}")));
    }
    let num = |s: &str| -> Result<u64> {
        if s == "-1" {
            return Ok(u64::MAX);
        }
        s.parse::<u64>()
            .map_err(|_| bad("ulimit", v, format!("{s:?} is not a number")))
    };
    let (soft, hard) = match vals.split_once(':') {
        Some((s, h)) => (num(s)?, num(h)?),
        None => {
            let n = num(vals)?;
            (n, n)
        }
    };
    if soft > hard {
        return Err(bad(
            "ulimit",
            v,
            "soft limit is greater than the hard limit",
        ));
    }
    Ok(Ulimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

fn is_perms(s: &str) -> bool {
    !s.is_empty() && s.len() <= 3 && s.chars().all(|c| "rwm".contains(c)) && {
        let mut v: Vec<char> = s.chars().collect();
        v.sort();
        v.dedup();
        v.len() == s.len()
    }
}

/// `--device /dev/x[:/dev/y][:rwm]`.
pub fn device(v: &str) -> Result<DeviceSpec> {
    let parts: Vec<&str> = v.split(':').collect();
    let (host, ctr, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, p] if is_perms(p) => (*h, *h, *p),
        [h, c] => (*h, *c, "rwm"),
        [h, c, p] => (*h, *c, *p),
        _ => {
            return Err(bad(
                "device",
                v,
                "expected /dev/host[:/dev/container][:rwm]",
            ))
        }
    };
    if !is_perms(perms) {
        return Err(bad(
            "device",
            v,
            format!("bad permissions {perms:?} (a subset of rwm)"),
        ));
    }
    for p in [host, ctr] {
        if !p.starts_with('/') {
            return Err(bad("device", v, format!("{p:?} is not an absolute path")));
        }
    }
    Ok(DeviceSpec {
        host_path: host.into(),
        container_path: ctr.into(),
        permissions: perms.into(),
    })
}

/// Docker's volume name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_volume_name(n: &str) -> bool {
    let b = n.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}

fn check_target(what: &str, v: &str, t: &str) -> Result<()> {
    if !t.starts_with('/') {
        return Err(bad(
            what,
            v,
            format!("destination {t:?} is not an absolute path"),
        ));
    }
    if t.contains('\0') {
        return Err(bad(what, v, "destination contains NUL"));
    }
    if t.split('/').all(|c| c.is_empty() || c == "." || c == "..") {
        return Err(bad(what, v, "destination can't be '/'"));
    }
    Ok(())
}

const PROPAGATIONS: &[&str] = &[
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

/// `-v host:ctr[:opts]`, `-v name:ctr[:opts]`, `-v /ctr` (anonymous volume).
/// Options: ro, rw, a propagation, and z/Z (SELinux relabeling: a no-op here, as docker on a
/// host without SELinux).
pub fn volume_flag(v: &str) -> Result<MountSpec> {
    let parts: Vec<&str> = v.split(':').collect();
    let (src, dst, opts) = match parts.as_slice() {
        [d] => (None, *d, ""),
        [s, d] => (Some(*s), *d, ""),
        [s, d, o] => (Some(*s), *d, *o),
        _ => return Err(bad("volume", v, "expected [SOURCE:]DEST[:OPTIONS]")),
    };
    check_target("volume", v, dst)?;
    let mut read_only = false;
    let mut propagation = None;
    let mut seen_mode = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" | "rw" => {
                if seen_mode {
                    return Err(bad("volume", v, "ro and rw given twice"));
                }
                seen_mode = true;
                read_only = o == "ro";
            }
            "z" | "Z" => {}
            p if PROPAGATIONS.contains(&p) => {
                if propagation.replace(p.to_string()).is_some() {
                    return Err(bad("volume", v, "propagation given twice"));
                }
            }
            other => return Err(bad("volume", v, format!("unsupported option {other:?}"))),
        }
    }
    match src {
        None => Ok(MountSpec::Volume {
            name: None,
            target: dst.into(),
            read_only,
        }),
        Some(s) if s.starts_with('/') => Ok(MountSpec::Bind {
            source: s.into(),
            target: dst.into(),
            read_only,
            propagation,
            create_source: true,
        }),
        Some(s) => {
            if !valid_volume_name(s) {
                return Err(bad(
                    "volume",
                    v,
                    format!(
                        "{s:?} includes invalid characters for a local volume name, only \
                         \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed; if you intended to pass a \
                         host directory, use absolute path"
                    ),
                ));
            }
            if propagation.is_some() {
                return Err(bad("volume", v, "propagation applies to bind mounts only"));
            }
            Ok(MountSpec::Volume {
                name: Some(s.into()),
                target: dst.into(),
                read_only,
            })
        }
    }
}

fn parse_bool(what: &str, v: &str, s: &str) -> Result<bool> {
    match s.to_ascii_lowercase().as_str() {
        "" | "1" | "true" | "t" => Ok(true),
        "0" | "false" | "f" => Ok(false),
        _ => Err(bad(what, v, format!("{s:?} is not a boolean"))),
    }
}

/// `--mount type=bind|volume|tmpfs,source=..,target=..,readonly,bind-propagation=..,
/// tmpfs-size=..,tmpfs-mode=..`.
pub fn mount_flag(v: &str) -> Result<MountSpec> {
    let mut ty = "volume".to_string();
    let (mut src, mut dst) = (None::<String>, None::<String>);
    let mut ro = false;
    let mut prop = None;
    let (mut tsize, mut tmode) = (None, None);
    let mut seen_tmpfs_opt = false;
    let mut seen_bind_opt = false;
    for field in v.split(',') {
        let (k, val) = match field.split_once('=') {
            Some((k, val)) => (k.trim().to_ascii_lowercase(), Some(val.trim())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let need = |val: Option<&str>| -> Result<String> {
            val.filter(|x| !x.is_empty())
                .map(str::to_string)
                .ok_or_else(|| bad("mount", v, format!("{k} needs a value")))
        };
        match k.as_str() {
            "type" => ty = need(val)?,
            "source" | "src" => src = Some(need(val)?),
            "target" | "dst" | "destination" => dst = Some(need(val)?),
            "readonly" | "ro" => ro = parse_bool("mount", v, val.unwrap_or(""))?,
            "bind-propagation" => {
                let p = need(val)?;
                if !PROPAGATIONS.contains(&p.as_str()) {
                    return Err(bad("mount", v, format!("bad bind-propagation {p:?}")));
                }
                prop = Some(p);
                seen_bind_opt = true;
            }
            "tmpfs-size" => {
                tsize = Some(size(&need(val)?).map_err(|e| bad("mount", v, e))?);
                seen_tmpfs_opt = true;
            }
            "tmpfs-mode" => {
                let m = need(val)?;
                tmode = Some(
                    u32::from_str_radix(&m, 8)
                        .ok()
                        .filter(|m| *m <= 0o7777)
                        .ok_or_else(|| bad("mount", v, format!("bad tmpfs-mode {m:?}")))?,
                );
                seen_tmpfs_opt = true;
            }
            "" => {}
            other => return Err(bad("mount", v, format!("unsupported key {other:?}"))),
        }
    }
    let dst = dst.ok_or_else(|| bad("mount", v, "target is required"))?;
    check_target("mount", v, &dst)?;
    if seen_tmpfs_opt && ty != "tmpfs" {
        return Err(bad("mount", v, "tmpfs options need type=tmpfs"));
    }
    if seen_bind_opt && ty != "bind" {
        return Err(bad("mount", v, "bind-propagation needs type=bind"));
    }
    match ty.as_str() {
        "bind" => {
            let s = src.ok_or_else(|| bad("mount", v, "source is required for a bind mount"))?;
            if !s.starts_with('/') {
                return Err(bad(
                    "mount",
                    v,
                    format!("bind source {s:?} is not an absolute path"),
                ));
            }
            Ok(MountSpec::Bind {
                source: s,
                target: dst,
                read_only: ro,
                propagation: prop,
                create_source: false,
            })
        }
        "volume" => {
            if let Some(s) = &src {
                if !valid_volume_name(s) {
                    return Err(bad("mount", v, format!("invalid volume name {s:?}")));
                }
            }
            Ok(MountSpec::Volume {
                name: src,
                target: dst,
                read_only: ro,
            })
        }
        "tmpfs" => {
            if src.is_some() {
                return Err(bad("mount", v, "a tmpfs mount has no source"));
            }
            Ok(MountSpec::Tmpfs {
                target: dst,
                size: tsize,
                mode: tmode,
                options: if ro { vec!["ro".into()] } else { vec![] },
            })
        }
        other => Err(bad(
            "mount",
            v,
            format!("unsupported type {other:?} (bind, volume, tmpfs)"),
        )),
    }
}

const TMPFS_FLAGS: &[&str] = &[
    "ro",
    "rw",
    "noexec",
    "exec",
    "nosuid",
    "suid",
    "nodev",
    "dev",
    "sync",
    "async",
    "dirsync",
    "atime",
    "noatime",
    "diratime",
    "nodiratime",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
];

/// `--tmpfs /x[:size=64m,mode=1777,noexec,...]`.
pub fn tmpfs_flag(v: &str) -> Result<MountSpec> {
    let (dst, opts) = v.split_once(':').unwrap_or((v, ""));
    check_target("tmpfs", v, dst)?;
    let (mut sz, mut mode) = (None, None);
    let mut options = Vec::new();
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o.split_once('=') {
            Some(("size", s)) => sz = Some(size(s).map_err(|e| bad("tmpfs", v, e))?),
            Some(("mode", m)) => {
                mode = Some(
                    u32::from_str_radix(m, 8)
                        .ok()
                        .filter(|m| *m <= 0o7777)
                        .ok_or_else(|| bad("tmpfs", v, format!("bad mode {m:?}")))?,
                )
            }
            Some(("uid" | "gid" | "nr_inodes", n)) if n.parse::<u64>().is_ok() => {
                options.push(o.to_string())
            }
            None if TMPFS_FLAGS.contains(&o) => options.push(o.to_string()),
            _ => return Err(bad("tmpfs", v, format!("unsupported option {o:?}"))),
        }
    }
    Ok(MountSpec::Tmpfs {
        target: dst.into(),
        size: sz,
        mode,
        options,
    })
}

/// `--restart no|on-failure[:N]|always|unless-stopped`.
pub fn restart(v: &str) -> Result<RestartPolicy> {
    let (name, n) = match v.split_once(':') {
        Some((a, b)) => (a, Some(b)),
        None => (v, None),
    };
    let p = match name {
        "no" | "" => RestartPolicy::No,
        "always" => RestartPolicy::Always,
        "unless-stopped" => RestartPolicy::UnlessStopped,
        "on-failure" => {
            let n = match n {
                None => 0,
                Some(s) => s
                    .parse::<u32>()
                    .map_err(|_| bad("restart policy", v, format!("{s:?} is not a retry count")))?,
            };
            return Ok(RestartPolicy::OnFailure(n));
        }
        _ => {
            return Err(bad(
                "restart policy",
                v,
                "expected no, on-failure[:N], always or unless-stopped",
            ))
        }
    };
    if n.is_some() {
        return Err(bad(
            "restart policy",
            v,
            format!("maximum retry count cannot be used with restart policy {name:?}"),
        ));
    }
    Ok(p)
}

/// A signal by name (`SIGTERM`, `term`, `RTMIN+3`) or number (1..=64), as the runtime
/// reads them (berth_oci::signal).
pub fn signal(v: &str) -> Result<i32> {
    let s = v.trim();
    match berth_oci::signal::parse(s) {
        Some(n) => Ok(n),
        None if s.parse::<i32>().is_ok() => Err(bad("signal", v, "out of range (1-64)")),
        None => Err(bad("signal", v, "unknown signal name")),
    }
}

/// `--label-file` / `--env-file` lines: skips blank lines and `#` comments.
pub fn lines_file(path: &str) -> Result<Vec<String>> {
    let s = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    Ok(s.lines()
        .map(|l| l.trim_start())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_end_matches('\r').to_string())
        .collect())
}

/// `--pid`, `--ipc`, `--uts`, `--userns`, `--cgroupns` values, as docker accepts them
/// (`--userns` takes only `host`: user namespace remapping is not supported).
pub fn ns_mode(flag: &str, v: &str) -> Result<NsMode> {
    let (kind, allowed) = match flag {
        "pid" => ("PID", "host or container:NAME"),
        "ipc" => ("IPC", "host, container:NAME, shareable, private or none"),
        "uts" => ("UTS", "host"),
        "userns" => ("USER", "host (user namespace remapping is not supported)"),
        "cgroupns" => ("CGROUP", "host or private"),
        _ => unreachable!("namespace flag {flag}"),
    };
    let m = match (flag, v) {
        (_, "") => Some(NsMode::Default),
        (_, "host") => Some(NsMode::Host),
        ("ipc" | "cgroupns", "private") => Some(NsMode::Private),
        ("ipc", "shareable") => Some(NsMode::Shareable),
        ("ipc", "none") => Some(NsMode::None),
        ("pid" | "ipc", c) => c
            .strip_prefix("container:")
            .filter(|r| !r.is_empty())
            .map(|r| NsMode::Container(r.to_string())),
        _ => None,
    };
    m.ok_or_else(|| {
        Error::Invalid(format!(
            "--{flag}: invalid {kind} mode {v:?} (expected {allowed})"
        ))
    })
}

/// `--log-driver` and its `--log-opt KEY=VALUE`s (compose's `logging:` too). Logs are
/// bounded by default (max-size 10m, max-file 3); max-size=-1 is unbounded.
pub fn log_options(driver: Option<&str>, opts: &[String]) -> Result<LogOptions> {
    let driver = match driver {
        None | Some("json-file") => LogDriver::JsonFile,
        Some("local") => LogDriver::Local,
        Some("none") => LogDriver::None,
        Some(d) => {
            return Err(Error::Invalid(format!(
                "logging driver {d:?} is not supported (json-file, local or none)"
            )))
        }
    };
    if driver == LogDriver::None && !opts.is_empty() {
        return Err(Error::Invalid(format!(
            "logging driver \"none\" takes no --log-opt ({:?})",
            opts[0]
        )));
    }
    let mut max_size: Option<Option<u64>> = None;
    let mut max_file = None;
    for o in opts {
        let (k, v) = match o.split_once('=') {
            Some((k, v)) if !k.is_empty() => (k, v),
            _ => return Err(bad("--log-opt", o, "expected KEY=VALUE")),
        };
        match k {
            "max-size" if v.trim() == "-1" => max_size = Some(None),
            "max-size" => {
                let n = size(v)?;
                if n == 0 {
                    return Err(bad(
                        "--log-opt",
                        o,
                        "max-size must be positive (or -1 for unbounded)",
                    ));
                }
                max_size = Some(Some(n));
            }
            "max-file" => {
                let n: u32 = v
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| bad("--log-opt", o, "max-file must be a number >= 1"))?;
                max_file = Some(n);
            }
            _ => {
                return Err(Error::Invalid(format!(
                    "unknown log opt {k:?} for {} log driver (max-size, max-file)",
                    driver.name()
                )))
            }
        }
    }
    let max_size = max_size.unwrap_or(Some(LogOptions::DEFAULT_MAX_SIZE));
    if max_file.is_some_and(|n| n > 1) && max_size.is_none() {
        return Err(Error::Invalid(
            "max-file cannot be set with an unbounded log (max-size=-1)".into(),
        ));
    }
    Ok(LogOptions {
        driver,
        max_size,
        max_file: match max_size {
            Some(_) => Some(max_file.unwrap_or(LogOptions::DEFAULT_MAX_FILE)),
            None => max_file,
        },
    })
}

/// `--cpu-period` in µs: 0 means unset.
pub fn cpu_period(p: i64) -> Result<Option<u64>> {
    match p {
        p if p < 0 => Err(Error::Invalid(format!(
            "invalid --cpu-period {p}: must not be negative"
        ))),
        0 => Ok(None),
        p => Ok(Some(p as u64)),
    }
}

/// `--memory-swappiness`: 0 to 100, or -1 for the host's.
pub fn memory_swappiness(s: i64) -> Result<i64> {
    if (-1..=100).contains(&s) {
        Ok(s)
    } else {
        Err(Error::Invalid(format!(
            "invalid value: {s}, valid memory swappiness range is 0-100"
        )))
    }
}

/// `--volumes-from CONTAINER[:ro|rw]`: the container and the mode asked for (None keeps
/// each mount's own).
pub fn volumes_from(v: &str) -> Result<(String, Option<bool>)> {
    let (c, mode) = match v.rsplit_once(':') {
        Some((c, m @ ("ro" | "rw"))) => (c, Some(m == "ro")),
        Some((_, m)) => {
            return Err(bad(
                "--volumes-from",
                v,
                format!("bad mode {m:?} (ro or rw)"),
            ))
        }
        None => (v, None),
    };
    if c.is_empty() {
        return Err(bad("--volumes-from", v, "no container named"));
    }
    Ok((c.to_string(), mode))
}

/// docker's escape scan: bytes that may start the detach sequence are held until they
/// do not; `feed` returns what to send and whether the whole sequence was typed.
pub struct Escape<'a> {
    keys: &'a [u8],
    held: usize,
}

impl<'a> Escape<'a> {
    pub fn new(keys: &'a [u8]) -> Escape<'a> {
        Escape { keys, held: 0 }
    }

    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        for &b in input {
            if self.keys.is_empty() {
                out.push(b);
                continue;
            }
            if b == self.keys[self.held] {
                self.held += 1;
                if self.held == self.keys.len() {
                    return true;
                }
                continue;
            }
            out.extend_from_slice(&self.keys[..self.held]);
            self.held = 0;
            if b == self.keys[0] {
                self.held = 1;
                if self.keys.len() == 1 {
                    return true;
                }
            } else {
                out.push(b);
            }
        }
        false
    }
}

/// docker's `label=` filter value against `labels`: `K` has the key, `K=V` that value.
pub fn label_matches(filter: &str, labels: &std::collections::BTreeMap<String, String>) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(filter),
    }
}

/// docker's detach keys (`ctrl-p,ctrl-q`, `a,ctrl-@`): one byte per comma-separated key.
pub fn detach_keys(v: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for k in v.split(',') {
        if k.len() == 1 {
            out.push(k.as_bytes()[0]);
            continue;
        }
        let l = k.to_ascii_lowercase();
        let code = match l.strip_prefix("ctrl-").map(str::as_bytes) {
            Some([c @ b'a'..=b'z']) => c - b'a' + 1,
            Some([b'@']) => 0,
            Some([b'[']) => 27,
            Some([b'\\']) => 28,
            Some([b']']) => 29,
            Some([b'^']) => 30,
            Some([b'_']) => 31,
            _ => return Err(bad("detach keys", v, format!("unknown key {k:?}"))),
        };
        out.push(code);
    }
    Ok(out)
}

/// docker's default detach keys, ctrl-p ctrl-q.
pub const DEFAULT_DETACH_KEYS: [u8; 2] = [16, 17];

/// The name of signal `n` (`SIGTERM`), or its number.
pub fn signal_name(n: i32) -> String {
    const NAMES: &[&str] = &[
        "", "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV",
        "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU",
        "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
    ];
    match NAMES.get(n as usize) {
        Some(s) if !s.is_empty() => format!("SIG{s}"),
        _ if (34..=64).contains(&n) => format!("SIGRTMIN+{}", n - 34),
        _ => n.to_string(),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn go_duration_prints_as_go_does() {
        use std::time::Duration;
        for (d, want) in [
            (Duration::ZERO, "0s"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(7200), "2h0m0s"),
            (Duration::from_micros(3), "3\u{b5}s"),
        ] {
            assert_eq!(go_duration(d), want, "{d:?}");
        }
    }

    #[test]
    fn signal_names() {
        assert_eq!(signal_name(15), "SIGTERM");
        assert_eq!(signal_name(36), "SIGRTMIN+2");
        assert_eq!(signal_name(99), "99");
    }
    use super::*;

    fn err_names<T: std::fmt::Debug>(r: Result<T>, v: &str) {
        let e = r.unwrap_err().to_string();
        assert!(e.contains(&format!("{v:?}")), "{e:?} should name {v:?}");
    }

    #[test]
    fn sizes() {
        assert_eq!(size("512").unwrap(), 512);
        assert_eq!(size("512b").unwrap(), 512);
        assert_eq!(size("5k").unwrap(), 5 << 10);
        assert_eq!(size("5m").unwrap(), 5 << 20);
        assert_eq!(size("5M").unwrap(), 5 << 20);
        assert_eq!(size("1g").unwrap(), 1 << 30);
        assert_eq!(size("1GiB").unwrap(), 1 << 30);
        assert_eq!(size("1.5g").unwrap(), 3 << 29);
        assert_eq!(size("64mb").unwrap(), 64 << 20);
        for b in [
            "",
            "m",
            "5x",
            "-5m",
            "1..5g",
            "99999999999999999999",
            "9000000p",
            "5 m m",
        ] {
            err_names(size(b), b);
        }
        assert_eq!(memory_swap("-1").unwrap(), -1);
        assert_eq!(memory_swap("1g").unwrap(), 1 << 30);
    }

    #[test]
    fn durations() {
        assert_eq!(duration("1s").unwrap(), 1_000_000_000);
        assert_eq!(duration("500ms").unwrap(), 500_000_000);
        assert_eq!(duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(duration("1.5h").unwrap(), 5_400_000_000_000);
        assert_eq!(duration("0").unwrap(), 0);
        assert_eq!(duration("10us").unwrap(), 10_000);
        for b in ["", "5", "-1s", "1x", "s", "1s2", "1.2.3s"] {
            err_names(duration(b), b);
        }
    }

    #[test]
    fn cpus() {
        assert_eq!(nano_cpus("0.5").unwrap(), 500_000_000);
        assert_eq!(nano_cpus("2").unwrap(), 2_000_000_000);
        assert_eq!(nano_cpus("1.25").unwrap(), 1_250_000_000);
        assert_eq!(nano_cpus(".5").unwrap(), 500_000_000);
        assert_eq!(nano_cpus("0.000000001").unwrap(), 1);
        for b in ["", "abc", "-1", "0.0000000001", "1e3", "."] {
            err_names(nano_cpus(b), b);
        }
    }

    #[test]
    fn ulimits() {
        let u = ulimit("nofile=1024:2048").unwrap();
        assert_eq!((u.name.as_str(), u.soft, u.hard), ("nofile", 1024, 2048));
        let u = ulimit("nproc=100").unwrap();
        assert_eq!((u.soft, u.hard), (100, 100));
        assert_eq!(ulimit("core=-1").unwrap().hard, u64::MAX);
        for b in [
            "nofile",
            "bogus=1",
            "nofile=2048:1024",
            "nofile=x",
            "nofile=1:2:3",
        ] {
            err_names(ulimit(b), b);
        }
    }

    #[test]
    fn devices() {
        let d = device("/dev/fuse").unwrap();
        assert_eq!(
            (
                d.host_path.as_str(),
                d.container_path.as_str(),
                d.permissions.as_str()
            ),
            ("/dev/fuse", "/dev/fuse", "rwm")
        );
        let d = device("/dev/null:/dev/mynull").unwrap();
        assert_eq!(d.container_path, "/dev/mynull");
        let d = device("/dev/null:r").unwrap();
        assert_eq!(
            (d.container_path.as_str(), d.permissions.as_str()),
            ("/dev/null", "r")
        );
        let d = device("/dev/null:/dev/x:rw").unwrap();
        assert_eq!(d.permissions, "rw");
        for b in [
            "dev/null",
            "/dev/null:/dev/x:rwx",
            "/dev/null:/dev/x:rr",
            "/a:/b:r:w",
            "/a:b",
        ] {
            err_names(device(b), b);
        }
    }

    #[test]
    fn volumes() {
        assert_eq!(
            volume_flag("/data").unwrap(),
            MountSpec::Volume {
                name: None,
                target: "/data".into(),
                read_only: false
            }
        );
        assert_eq!(
            volume_flag("/h:/c:ro").unwrap(),
            MountSpec::Bind {
                source: "/h".into(),
                target: "/c".into(),
                read_only: true,
                propagation: None,
                create_source: true
            }
        );
        assert_eq!(
            volume_flag("/h:/c:rw,rshared,z").unwrap(),
            MountSpec::Bind {
                source: "/h".into(),
                target: "/c".into(),
                read_only: false,
                propagation: Some("rshared".into()),
                create_source: true
            }
        );
        assert_eq!(
            volume_flag("vol1:/c").unwrap(),
            MountSpec::Volume {
                name: Some("vol1".into()),
                target: "/c".into(),
                read_only: false
            }
        );
        for b in [
            "rel",
            "/h:rel",
            "/h:/",
            "/h:/c:bogus",
            "/h:/c:ro,rw",
            "a/b:/c",
            "x:/c:shared",
            "/a:/b:ro:x",
            "-x:/c",
        ] {
            err_names(volume_flag(b), b);
        }
    }

    #[test]
    fn mounts() {
        assert_eq!(
            mount_flag("type=bind,source=/h,target=/c,readonly,bind-propagation=rslave").unwrap(),
            MountSpec::Bind {
                source: "/h".into(),
                target: "/c".into(),
                read_only: true,
                propagation: Some("rslave".into()),
                create_source: false
            }
        );
        assert_eq!(
            mount_flag("type=volume,src=v1,dst=/c,ro=false").unwrap(),
            MountSpec::Volume {
                name: Some("v1".into()),
                target: "/c".into(),
                read_only: false
            }
        );
        assert_eq!(
            mount_flag("destination=/c").unwrap(),
            MountSpec::Volume {
                name: None,
                target: "/c".into(),
                read_only: false
            }
        );
        assert_eq!(
            mount_flag("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770").unwrap(),
            MountSpec::Tmpfs {
                target: "/t".into(),
                size: Some(1 << 20),
                mode: Some(0o1770),
                options: vec![]
            }
        );
        for b in [
            "type=bind,target=/c",
            "type=bind,source=rel,target=/c",
            "type=nfs,target=/c",
            "type=volume,source=/abs,target=/c",
            "type=tmpfs,source=x,target=/t",
            "type=tmpfs,target=/t,tmpfs-mode=99",
            "type=volume,target=/t,tmpfs-size=1m",
            "source=v",
            "type=bind,source=/h,target=/c,readonly=maybe",
            "type=bind,source=/h,target=/c,bogus=1",
            "type=bind,source=/h,target=/c,bind-propagation=sideways",
        ] {
            err_names(mount_flag(b), b);
        }
    }

    #[test]
    fn tmpfs() {
        assert_eq!(
            tmpfs_flag("/run").unwrap(),
            MountSpec::Tmpfs {
                target: "/run".into(),
                size: None,
                mode: None,
                options: vec![]
            }
        );
        assert_eq!(
            tmpfs_flag("/run:size=64m,mode=755,noexec,uid=1000").unwrap(),
            MountSpec::Tmpfs {
                target: "/run".into(),
                size: Some(64 << 20),
                mode: Some(0o755),
                options: vec!["noexec".into(), "uid=1000".into()]
            }
        );
        for b in [
            "run",
            "/run:size=lots",
            "/run:mode=9",
            "/run:bogus",
            "/run:uid=x",
        ] {
            err_names(tmpfs_flag(b), b);
        }
    }

    #[test]
    fn restarts() {
        assert_eq!(restart("no").unwrap(), RestartPolicy::No);
        assert_eq!(restart("always").unwrap(), RestartPolicy::Always);
        assert_eq!(
            restart("unless-stopped").unwrap(),
            RestartPolicy::UnlessStopped
        );
        assert_eq!(restart("on-failure").unwrap(), RestartPolicy::OnFailure(0));
        assert_eq!(
            restart("on-failure:3").unwrap(),
            RestartPolicy::OnFailure(3)
        );
        for b in ["sometimes", "always:3", "on-failure:x", "on-failure:-1"] {
            err_names(restart(b), b);
        }
    }

    #[test]
    fn signals() {
        assert_eq!(signal("SIGTERM").unwrap(), 15);
        assert_eq!(signal("term").unwrap(), 15);
        assert_eq!(signal("KILL").unwrap(), 9);
        assert_eq!(signal("9").unwrap(), 9);
        assert_eq!(signal("SIGRTMIN+3").unwrap(), 37);
        assert_eq!(signal("RTMAX").unwrap(), 64);
        assert_eq!(signal("RTMAX-1").unwrap(), 63);
        for b in ["SIGNOPE", "0", "65", "RTMIN+40", "", "RTMINX"] {
            err_names(signal(b), b);
        }
    }

    #[test]
    fn volume_names() {
        assert!(valid_volume_name("my_vol.1-x"));
        assert!(!valid_volume_name("a"));
        assert!(!valid_volume_name("_a"));
        assert!(!valid_volume_name("a/b"));
        assert!(!valid_volume_name("a b"));
    }

    #[test]
    fn namespace_modes_keys_volumes_from() {
        assert_eq!(ns_mode("pid", "host").unwrap(), NsMode::Host);
        assert_eq!(
            ns_mode("ipc", "container:db").unwrap(),
            NsMode::Container("db".into())
        );
        assert_eq!(ns_mode("ipc", "shareable").unwrap(), NsMode::Shareable);
        assert_eq!(ns_mode("cgroupns", "private").unwrap(), NsMode::Private);
        err_names(ns_mode("uts", "container:x"), "container:x");
        err_names(ns_mode("userns", "remap"), "remap");
        err_names(ns_mode("pid", "container:"), "container:");
        err_names(ns_mode("pid", "private"), "private");
        assert_eq!(detach_keys("ctrl-p,ctrl-q").unwrap(), DEFAULT_DETACH_KEYS);
        assert_eq!(detach_keys("a,ctrl-@,ctrl-\\").unwrap(), [b'a', 0, 28]);
        assert!(detach_keys("ctrl-1").is_err());
        assert!(detach_keys("ab").is_err());
        assert_eq!(volumes_from("c1").unwrap(), ("c1".into(), None));
        assert_eq!(volumes_from("c1:ro").unwrap(), ("c1".into(), Some(true)));
        err_names(volumes_from("c1:rx"), "c1:rx");
    }

    #[test]
    fn detach_sequence_is_held_then_matched_or_passed_on() {
        let keys = [16u8, 17];
        let mut e = Escape::new(&keys);
        let mut out = Vec::new();
        assert!(!e.feed(b"ab\x10", &mut out));
        assert_eq!(out, b"ab");
        out.clear();
        assert!(!e.feed(b"x", &mut out));
        assert_eq!(out, b"\x10x");
        out.clear();
        assert!(!e.feed(b"\x10\x10", &mut out));
        assert_eq!(out, b"\x10");
        out.clear();
        assert!(e.feed(b"\x11", &mut out));
        assert!(out.is_empty());
    }
}
