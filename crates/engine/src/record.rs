//! Container records: `config.json` (what the container is; written at create and rename)
//! and `state.json` (what it is doing; written by its monitor, or by the CLI when no monitor
//! runs). Both are replaced atomically (temp, fsync, rename) under the container's flock, so
//! readers never see half a record and concurrent `berth` commands do not lose updates.
//! The state of a `--rm` container, and the `removing` mark, skip the fsyncs (still
//! temp + rename): such a record is thrown away soon, durability buys nothing, and each
//! fsync costs `run --rm` milliseconds. An unsynced new file can read back empty after a
//! crash: an empty state.json reads as "no state yet".

use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::options::CreateOptions;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::fs::File;
use std::path::Path;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ContainerConfig {
    /// 64 hex characters.
    pub id: String,
    pub name: String,
    /// RFC 3339 with nanoseconds, UTC.
    pub created: String,
    /// The image's ID (config digest) and manifest digest it was created from.
    pub image_id: String,
    pub image_manifest: String,
    /// The runtime binary, resolved to an absolute path at create.
    pub runtime: String,
    /// The runtime's --root.
    pub runtime_root: String,
    /// The command as resolved from the image and the flags (for ps/inspect).
    pub path: String,
    pub args: Vec<String>,
    /// Named and anonymous volumes this container uses (anonymous ones go with `rm -v`).
    #[serde(default)]
    pub volumes: Vec<VolumeUse>,
    /// The health check in effect (from the flags, else the image), if any.
    #[serde(default)]
    pub health: Option<crate::options::HealthConfig>,
    /// Stop signal in effect (flag, else image, else SIGTERM), as a number.
    pub stop_signal: i32,
    pub options: CreateOptions,
}

impl ContainerConfig {
    /// A config with only an id, a name and options (the rest empty): what is shown of a
    /// container whose own config cannot be read, and a base for tests.
    pub fn bare(id: &str, name: &str, options: CreateOptions) -> ContainerConfig {
        ContainerConfig {
            id: id.to_string(),
            name: name.to_string(),
            created: String::new(),
            image_id: String::new(),
            image_manifest: String::new(),
            runtime: String::new(),
            runtime_root: String::new(),
            path: String::new(),
            args: vec![],
            volumes: vec![],
            health: None,
            stop_signal: 0,
            options,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VolumeUse {
    pub name: String,
    pub target: String,
    pub anonymous: bool,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ContainerState {
    pub status: Status,
    /// Host pid of the container's init while it runs (0 otherwise).
    pub pid: i32,
    /// Its start time in clock ticks since boot (/proc/PID/stat field 22), so a recycled pid
    /// is never mistaken for the container.
    pub pid_start: u64,
    /// The monitor's pid and start time, same reasoning.
    pub monitor_pid: i32,
    pub monitor_start: u64,
    /// The monitor's keeper (its parent, a subreaper too): it outlives a killed monitor,
    /// reaps the container's init in its place and starts a new monitor (docs/engine.md).
    #[serde(default)]
    pub keeper_pid: i32,
    #[serde(default)]
    pub keeper_start: u64,
    /// RFC 3339 nanoseconds, UTC; "" when never.
    pub started_at: String,
    pub finished_at: String,
    pub exit_code: i32,
    pub oom_killed: bool,
    /// Set by `stop`/`kill` through the monitor so restart policies leave it stopped.
    pub stopped_by_user: bool,
    pub restart_count: u32,
    /// An engine error (what `inspect` shows as State.Error).
    pub error: String,
    pub health: Option<Health>,
    /// The readiness check's (CreateOptions::readiness), as `health`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<Health>,
    /// Its addresses and published ports while it runs (inspect's NetworkSettings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkState>,
}

/// What a running container's networking is (written by its monitor at start).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkState {
    pub endpoints: Vec<EndpointState>,
    pub ports: Vec<PortState>,
}

/// One network the container is on.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EndpointState {
    pub network_id: String,
    pub network: String,
    /// eth0, eth1 ... in the container; the veth's host end.
    pub ifname: String,
    pub host_ifname: String,
    pub mac: String,
    pub ipv4: Option<std::net::IpAddr>,
    pub ipv4_prefix: u8,
    pub gateway: Option<std::net::IpAddr>,
    pub ipv6: Option<std::net::IpAddr>,
    pub ipv6_prefix: u8,
    pub ipv6_gateway: Option<std::net::IpAddr>,
    pub aliases: Vec<String>,
}

/// One published port: host address and port -> the container's port.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PortState {
    pub container_port: u16,
    /// tcp, udp, sctp
    pub proto: String,
    pub host_ip: String,
    pub host_port: u16,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// "starting", "healthy" or "unhealthy"
    pub status: String,
    pub failing_streak: u32,
    /// The last five probes, oldest first.
    pub log: Vec<HealthProbe>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HealthProbe {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    /// At most 4 KiB of the probe's output, as docker.
    pub output: String,
}

/// `creating.json`: who is creating a container whose config.json is not written yet.
/// The directory appears with it (made under a dot-name, then renamed into place), so a
/// creation cut short is always recognisable: its creator (pid + start time) is gone.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Creating {
    pub pid: i32,
    pub pid_start: u64,
    pub name: String,
    pub image: String,
    pub created: String,
}

/// An exclusive flock on a container's `lock` file, released on drop.
pub struct ContainerLock {
    _f: File,
}

impl Layout {
    /// Locks container `id` (blocking).
    pub fn lock(&self, id: &str) -> Result<ContainerLock> {
        Ok(ContainerLock {
            _f: crate::layout::flock_file(&self.lock_path(id), true)?,
        })
    }

    pub fn load_config(&self, id: &str) -> Result<ContainerConfig> {
        match load_json(&self.config_path(id)) {
            Err(Error::Io(_, e))
                if e.kind() == std::io::ErrorKind::NotFound && self.creating_path(id).exists() =>
            {
                let who: Option<Creating> = load_json(&self.creating_path(id)).ok();
                let reason = match who {
                    Some(c) if same_process(c.pid, c.pid_start) => {
                        format!("it is being created (by pid {})", c.pid)
                    }
                    Some(c) => format!(
                        "its creation was cut short (pid {} is gone); remove it with `rm -f`",
                        c.pid
                    ),
                    None => "its creation was cut short; remove it with `rm -f`".to_string(),
                };
                Err(Error::Incomplete {
                    id: id.to_string(),
                    reason,
                })
            }
            r => r,
        }
    }
    pub fn save_config(&self, c: &ContainerConfig, _lock: &ContainerLock) -> Result<()> {
        save_json(&self.config_path(&c.id), c)
    }
    /// The state; a container without state.json yet is `created`.
    pub fn load_state(&self, id: &str) -> Result<ContainerState> {
        let p = self.state_path(id);
        match std::fs::read(&p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ContainerState::default()),
            Err(e) => Err(Error::io(&p, e)),
            // Left by a crash right after an unsynced first write (see the module doc).
            Ok(b) if b.is_empty() => Ok(ContainerState::default()),
            Ok(b) => serde_json::from_slice(&b).map_err(|e| Error::Json(p, e)),
        }
    }
    pub fn save_state(&self, id: &str, s: &ContainerState, _lock: &ContainerLock) -> Result<()> {
        save_json(&self.state_path(id), s)
    }
    /// [`Layout::save_state`] without fsync (atomic still): for `--rm` containers and marks
    /// that are about to be deleted.
    pub fn save_state_nosync(
        &self,
        id: &str,
        s: &ContainerState,
        _lock: &ContainerLock,
    ) -> Result<()> {
        save_json_nosync(&self.state_path(id), s)
    }
    /// Read-modify-write of the state under the lock.
    pub fn update_state<T>(&self, id: &str, f: impl FnOnce(&mut ContainerState) -> T) -> Result<T> {
        self.update_state_with(id, true, f)
    }
    /// [`Layout::update_state`]; `sync: false` skips the fsyncs (see the module doc).
    pub fn update_state_with<T>(
        &self,
        id: &str,
        sync: bool,
        f: impl FnOnce(&mut ContainerState) -> T,
    ) -> Result<T> {
        let l = self.lock(id)?;
        let mut s = self.load_state(id)?;
        let r = f(&mut s);
        if sync {
            self.save_state(id, &s, &l)?;
        } else {
            self.save_state_nosync(id, &s, &l)?;
        }
        Ok(r)
    }

    /// IDs of every container with a config.
    pub fn container_ids(&self) -> Result<Vec<String>> {
        let mut v = Vec::new();
        for d in self.all_containers_dirs() {
            let rd = match std::fs::read_dir(&d) {
                // The tmpfs's directory exists once a `--rm` container was made.
                Err(e)
                    if e.kind() == std::io::ErrorKind::NotFound && d != self.containers_dir() =>
                {
                    continue
                }
                r => r.map_err(|e| Error::io(&d, e))?,
            };
            for e in rd {
                let e = e.map_err(|e| Error::io(&d, e))?;
                let name = e.file_name().to_string_lossy().into_owned();
                if !name.starts_with('.') && e.path().join("config.json").exists() {
                    v.push(name);
                }
            }
        }
        Ok(v)
    }
}

pub fn load_json<T: DeserializeOwned>(p: &Path) -> Result<T> {
    let b = read_nofollow(p)?;
    serde_json::from_slice(&b).map_err(|e| Error::Json(p.to_path_buf(), e))
}

/// The bytes of regular file `p`, never through a symlink (O_NOFOLLOW) and never
/// blocking on a FIFO planted in its place (O_NONBLOCK).
pub fn read_nofollow(p: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(p)
        .map_err(|e| Error::io(p, e))?;
    let m = f.metadata().map_err(|e| Error::io(p, e))?;
    if !m.is_file() {
        return Err(Error::io(
            p,
            std::io::Error::new(std::io::ErrorKind::InvalidData, "not a regular file"),
        ));
    }
    let mut b = Vec::with_capacity(m.len() as usize);
    f.read_to_end(&mut b).map_err(|e| Error::io(p, e))?;
    Ok(b)
}

/// Temp file beside `p`, fsync, rename over `p`.
pub fn save_json<T: Serialize>(p: &Path, v: &T) -> Result<()> {
    let data = serde_json::to_vec_pretty(v).expect("records serialise");
    berth_image::store::atomic_write(p, &data).map_err(Error::from)
}

/// Temp file beside `p`, rename over `p`; no fsync: readers see the old or the new
/// record, but a crash may lose the update (or leave a new file empty).
pub fn save_json_nosync<T: Serialize>(p: &Path, v: &T) -> Result<()> {
    let data = serde_json::to_vec_pretty(v).expect("records serialise");
    write_nosync(p, &data)
}

/// Atomic replace of `p` by `data` without fsync (see [`save_json_nosync`]).
pub fn write_nosync(p: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = p.parent().unwrap_or(Path::new("."));
    let mut t = tempfile::Builder::new()
        .prefix(&berth_image::store::temp_prefix())
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    t.write_all(data).map_err(|e| Error::io(t.path(), e))?;
    t.persist(p).map_err(|e| Error::io(p, e.error))?;
    Ok(())
}

/// Start time of `pid` in clock ticks since boot, or None when it does not exist.
pub fn pid_start_time(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces and parens: the fields start after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// True when `pid` is alive and is the process that started at `start`.
pub fn same_process(pid: i32, start: u64) -> bool {
    pid > 0 && pid_start_time(pid) == Some(start)
}

/// RFC 3339 UTC with nanoseconds (docker's time format) for a SystemTime.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let (y, m, dd) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

pub fn now_rfc3339() -> String {
    rfc3339(std::time::SystemTime::now())
}

/// Parses what rfc3339() writes (and offsets like +01:00) back into a SystemTime.
pub fn parse_rfc3339(s: &str) -> Option<std::time::SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || (b[10] != b'T' && b[10] != b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut nanos: u32 = 0;
    if b.get(i) == Some(&b'.') {
        let st = i + 1;
        i = st;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = &s[st..i];
        let digits = frac.get(..9.min(frac.len()))?;
        nanos = format!("{digits:0<9}").parse().ok()?;
    }
    let off = match s.get(i..)? {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (o[1..3].parse::<i64>().ok()? * 3600 + o[4..6].parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off;
    if secs < 0 {
        return None;
    }
    Some(std::time::UNIX_EPOCH + std::time::Duration::new(secs as u64, nanos))
}

// Howard Hinnant's civil calendar algorithms.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_round_trip() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::new(1_795_000_000, 123_456_789);
        let s = rfc3339(t);
        assert_eq!(s, "2026-11-18T11:06:40.123456789Z");
        assert_eq!(parse_rfc3339(&s), Some(t));
        assert_eq!(
            parse_rfc3339("2026-11-18T12:06:40+01:00"),
            Some(std::time::UNIX_EPOCH + std::time::Duration::new(1_795_000_000, 0))
        );
        assert_eq!(parse_rfc3339("nope"), None);
    }

    #[test]
    fn own_start_time() {
        let me = std::process::id() as i32;
        let st = pid_start_time(me).unwrap();
        assert!(same_process(me, st));
        assert!(!same_process(me, st + 1));
    }

    #[test]
    fn state_round_trip_and_lock() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::open(d.path()).unwrap();
        let id = "a".repeat(64);
        std::fs::create_dir(l.container_dir(&id)).unwrap();
        assert_eq!(l.load_state(&id).unwrap().status, Status::Created);
        l.update_state(&id, |s| {
            s.status = Status::Running;
            s.pid = 7;
        })
        .unwrap();
        let s = l.load_state(&id).unwrap();
        assert_eq!((s.status, s.pid), (Status::Running, 7));
        l.update_state_with(&id, false, |s| s.pid = 8).unwrap();
        let s = l.load_state(&id).unwrap();
        assert_eq!((s.status, s.pid), (Status::Running, 8));
        // No temp file is left beside the record.
        let names: Vec<_> = std::fs::read_dir(l.container_dir(&id))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with(".tmp")), "{names:?}");
    }

    #[test]
    fn empty_state_after_crash_reads_as_created() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::open(d.path()).unwrap();
        let id = "c".repeat(64);
        std::fs::create_dir(l.container_dir(&id)).unwrap();
        std::fs::write(l.state_path(&id), b"").unwrap();
        assert_eq!(l.load_state(&id).unwrap(), ContainerState::default());
        std::fs::write(l.state_path(&id), b"{").unwrap();
        assert!(l.load_state(&id).is_err());
    }
}
