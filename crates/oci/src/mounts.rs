//! Mount entries: type, source, destination and options, parsed once into
//! the new-mount-API shape (mount attributes, superblock flags, propagation,
//! filesystem parameters).

use std::path::{Component, Path, PathBuf};

pub const MS_SHARED: u64 = 1 << 20;
pub const MS_SLAVE: u64 = 1 << 19;
pub const MS_PRIVATE: u64 = 1 << 18;
pub const MS_UNBINDABLE: u64 = 1 << 17;

// MOUNT_ATTR_* (linux/mount.h).
pub const ATTR_RDONLY: u64 = 0x1;
pub const ATTR_NOSUID: u64 = 0x2;
pub const ATTR_NODEV: u64 = 0x4;
pub const ATTR_NOEXEC: u64 = 0x8;
pub const ATTR_ATIME_MASK: u64 = 0x70;
pub const ATTR_RELATIME: u64 = 0x0;
pub const ATTR_NOATIME: u64 = 0x10;
pub const ATTR_STRICTATIME: u64 = 0x20;
pub const ATTR_NODIRATIME: u64 = 0x80;
pub const ATTR_NOSYMFOLLOW: u64 = 0x200000;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("mount {dest}: {msg}")]
    Invalid { dest: String, msg: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    /// A bind mount; `recursive` for rbind.
    Bind { recursive: bool },
    /// A new filesystem instance of the given type (tmpfs, proc, ...).
    Fs,
    /// The cgroup filesystem(s): handled specially by the runtime.
    Cgroup,
}

/// Attribute changes: bits to set and bits to clear.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Attrs {
    pub set: u64,
    pub clr: u64,
}

impl Attrs {
    fn apply(&mut self, set: u64, clr: u64) {
        self.set = (self.set & !clr) | set;
        self.clr = (self.clr & !set) | clr;
    }
    pub fn is_empty(&self) -> bool {
        self.set == 0 && self.clr == 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    pub destination: PathBuf,
    pub fstype: String,
    pub source: Option<PathBuf>,
    pub kind: MountKind,
    /// Attributes of the top mount only.
    pub attrs: Attrs,
    /// Attributes applied recursively (the r* options).
    pub rec_attrs: Attrs,
    /// Superblock flags as fsconfig flag names ("ro", "sync", "dirsync", ...).
    pub sb_flags: Vec<&'static str>,
    /// Filesystem parameters: (key, Some(value)) or (flag, None).
    pub data: Vec<(String, Option<String>)>,
    /// MS_SHARED/SLAVE/PRIVATE/UNBINDABLE, and whether recursive.
    pub propagation: Option<(u64, bool)>,
    /// The options as written, for messages.
    pub options: Vec<String>,
    /// Filesystem data given to a bind mount, which has no filesystem to
    /// take it: reported as a warning.
    pub ignored: Vec<String>,
}

impl MountSpec {
    pub fn readonly(&self) -> bool {
        self.attrs.set & ATTR_RDONLY != 0 || self.rec_attrs.set & ATTR_RDONLY != 0
    }
}

pub fn propagation(name: &str) -> Option<(u64, bool)> {
    Some(match name {
        "shared" => (MS_SHARED, false),
        "rshared" => (MS_SHARED, true),
        "slave" => (MS_SLAVE, false),
        "rslave" => (MS_SLAVE, true),
        "private" => (MS_PRIVATE, false),
        "rprivate" => (MS_PRIVATE, true),
        "unbindable" => (MS_UNBINDABLE, false),
        "runbindable" => (MS_UNBINDABLE, true),
        _ => return None,
    })
}

/// Per-mount attribute options: (name, set, clear).
const ATTR_OPTS: &[(&str, u64, u64)] = &[
    ("ro", ATTR_RDONLY, 0),
    ("rw", 0, ATTR_RDONLY),
    ("nosuid", ATTR_NOSUID, 0),
    ("suid", 0, ATTR_NOSUID),
    ("nodev", ATTR_NODEV, 0),
    ("dev", 0, ATTR_NODEV),
    ("noexec", ATTR_NOEXEC, 0),
    ("exec", 0, ATTR_NOEXEC),
    ("noatime", ATTR_NOATIME, ATTR_ATIME_MASK),
    ("atime", ATTR_RELATIME, ATTR_ATIME_MASK),
    ("relatime", ATTR_RELATIME, ATTR_ATIME_MASK),
    ("norelatime", ATTR_RELATIME, ATTR_ATIME_MASK),
    ("strictatime", ATTR_STRICTATIME, ATTR_ATIME_MASK),
    ("nostrictatime", ATTR_RELATIME, ATTR_ATIME_MASK),
    ("nodiratime", ATTR_NODIRATIME, 0),
    ("diratime", 0, ATTR_NODIRATIME),
    ("nosymfollow", ATTR_NOSYMFOLLOW, 0),
    ("symfollow", 0, ATTR_NOSYMFOLLOW),
];

/// Superblock-only options, as fsconfig understands them.
const SB_OPTS: &[(&str, &str)] = &[
    ("sync", "sync"),
    ("async", "async"),
    ("dirsync", "dirsync"),
    ("mand", "mand"),
    ("nomand", "nomand"),
    ("lazytime", "lazytime"),
    ("nolazytime", "nolazytime"),
];

/// Options that exist in mount(8) but have no effect the runtime can give:
/// refused so nobody believes they took effect.
const REFUSED: &[(&str, &str)] = &[
    ("remount", "a container mount is always a new mount"),
    ("idmap", "id-mapped mounts are not implemented"),
    ("ridmap", "id-mapped mounts are not implemented"),
    ("tmpcopyup", "tmpcopyup is not implemented"),
    ("iversion", "iversion cannot be set through the mount API"),
    (
        "noiversion",
        "noiversion cannot be set through the mount API",
    ),
    ("silent", "silent has no effect through the mount API"),
    ("loud", "loud has no effect through the mount API"),
];

fn clean_destination(dest: &Path) -> Result<PathBuf, String> {
    let mut out = PathBuf::from("/");
    for c in dest.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            // Lexical `..` is clamped at the root, as inside a chroot.
            Component::ParentDir => {
                out.pop();
            }
            Component::Prefix(_) => return Err("prefix in path".into()),
        }
    }
    Ok(out)
}

pub fn parse(m: &oci_spec::runtime::Mount) -> Result<MountSpec, Error> {
    let dest_raw = m.destination().to_string_lossy().into_owned();
    let err = |msg: String| Error::Invalid {
        dest: dest_raw.clone(),
        msg,
    };
    if dest_raw.is_empty() {
        return Err(err("destination is empty".into()));
    }
    // The runtime-spec: "This value MUST be an absolute path" (runc only warns).
    if !m.destination().is_absolute() {
        return Err(err(
            "destination is not an absolute path (the runtime-spec requires one)".into(),
        ));
    }
    if m.uid_mappings().is_some() || m.gid_mappings().is_some() {
        return Err(err(
            "uidMappings/gidMappings (id-mapped mounts) are not implemented".into(),
        ));
    }
    let destination = clean_destination(m.destination()).map_err(err)?;
    let options: Vec<String> = m.options().clone().unwrap_or_default();
    let mut fstype = m.typ().clone().unwrap_or_default();
    let mut kind = None;
    for o in &options {
        match o.as_str() {
            "bind" => kind = Some(MountKind::Bind { recursive: false }),
            "rbind" => kind = Some(MountKind::Bind { recursive: true }),
            _ => {}
        }
    }
    if fstype == "bind" && kind.is_none() {
        kind = Some(MountKind::Bind { recursive: false });
    }
    let kind = match kind {
        Some(k) => {
            if fstype.is_empty() || fstype == "none" {
                fstype = "bind".into();
            }
            k
        }
        None => match fstype.as_str() {
            "" | "none" => {
                return Err(err(
                    "type is missing and the options hold no bind or rbind".into()
                ))
            }
            "cgroup" | "cgroup2" => MountKind::Cgroup,
            _ => MountKind::Fs,
        },
    };
    let source = m.source().clone().filter(|s| !s.as_os_str().is_empty());
    if matches!(kind, MountKind::Bind { .. }) && source.is_none() {
        return Err(err("a bind mount needs a source".into()));
    }
    let mut spec = MountSpec {
        destination,
        fstype,
        source,
        kind,
        attrs: Attrs::default(),
        rec_attrs: Attrs::default(),
        sb_flags: Vec::new(),
        data: Vec::new(),
        propagation: None,
        options: options.clone(),
        ignored: Vec::new(),
    };
    for o in &options {
        let o = o.as_str();
        if o == "bind" || o == "rbind" || o == "defaults" {
            continue;
        }
        if let Some(p) = propagation(o) {
            spec.propagation = Some(p);
            continue;
        }
        if let Some((_, set, clr)) = ATTR_OPTS.iter().find(|(n, _, _)| *n == o) {
            spec.attrs.apply(*set, *clr);
            continue;
        }
        if let Some(rest) = o.strip_prefix('r') {
            if let Some((_, set, clr)) = ATTR_OPTS.iter().find(|(n, _, _)| *n == rest) {
                spec.rec_attrs.apply(*set, *clr);
                continue;
            }
        }
        if let Some((_, flag)) = SB_OPTS.iter().find(|(n, _)| *n == o) {
            if matches!(spec.kind, MountKind::Bind { .. }) {
                return Err(err(format!(
                    "option {o} sets a superblock flag, which a bind mount cannot change"
                )));
            }
            spec.sb_flags.push(flag);
            continue;
        }
        if let Some((_, why)) = REFUSED.iter().find(|(n, _)| *n == o) {
            return Err(err(format!("option {o} is not supported: {why}")));
        }
        if matches!(spec.kind, MountKind::Bind { .. }) {
            // runc and crun drop these; say so instead of failing the config.
            spec.ignored.push(o.to_string());
            continue;
        }
        match o.split_once('=') {
            Some((k, v)) => spec.data.push((k.to_string(), Some(v.to_string()))),
            None => spec.data.push((o.to_string(), None)),
        }
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk(t: &str, src: &str, dst: &str, opts: &[&str]) -> oci_spec::runtime::Mount {
        let mut m = oci_spec::runtime::Mount::default();
        m.set_destination(dst.into());
        m.set_typ(Some(t.into()));
        m.set_source(Some(src.into()));
        m.set_options(Some(opts.iter().map(|s| s.to_string()).collect()));
        m
    }

    #[test]
    fn tmpfs_options() {
        let m = parse(&mk(
            "tmpfs",
            "tmpfs",
            "/dev",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ))
        .unwrap();
        assert_eq!(m.kind, MountKind::Fs);
        assert_eq!(m.attrs.set, ATTR_NOSUID | ATTR_STRICTATIME);
        assert_eq!(m.attrs.clr, ATTR_ATIME_MASK);
        assert_eq!(
            m.data,
            vec![
                ("mode".into(), Some("755".into())),
                ("size".into(), Some("65536k".into()))
            ]
        );
    }

    #[test]
    fn bind_recursive_flags() {
        let m = parse(&mk(
            "none",
            "/src",
            "/x",
            &["rbind", "rro", "nosuid", "rprivate"],
        ))
        .unwrap();
        assert_eq!(m.kind, MountKind::Bind { recursive: true });
        assert_eq!(m.rec_attrs.set, ATTR_RDONLY);
        assert_eq!(m.attrs.set, ATTR_NOSUID);
        assert_eq!(m.propagation, Some((MS_PRIVATE, true)));
        assert!(m.readonly());
    }

    #[test]
    fn relatime_is_not_recursive_elatime() {
        let m = parse(&mk("tmpfs", "tmpfs", "/t", &["relatime"])).unwrap();
        assert!(m.rec_attrs.is_empty());
        assert_eq!(m.attrs.clr, ATTR_ATIME_MASK);
    }

    #[test]
    fn refused_and_invalid() {
        assert!(parse(&mk("tmpfs", "tmpfs", "/t", &["remount"])).is_err());
        assert_eq!(
            parse(&mk("none", "/s", "/t", &["bind", "size=1"]))
                .unwrap()
                .ignored,
            vec!["size=1".to_string()]
        );
        assert!(parse(&mk("none", "/s", "/t", &["bind", "sync"])).is_err());
        assert!(parse(&mk("", "", "/t", &[])).is_err());
        let e = parse(&mk("none", "/s", "/t", &["idmap", "bind"])).unwrap_err();
        assert!(e.to_string().contains("idmap"), "{e}");
    }

    #[test]
    fn destination_is_clamped() {
        let m = parse(&mk("tmpfs", "tmpfs", "/../../etc/../x", &[])).unwrap();
        assert_eq!(m.destination, PathBuf::from("/x"));
        let e = parse(&mk("tmpfs", "tmpfs", "rel/dir", &[])).unwrap_err();
        assert!(e.to_string().contains("absolute"), "{e}");
    }

    #[test]
    fn sb_flags_for_new_fs() {
        let m = parse(&mk("tmpfs", "tmpfs", "/t", &["sync", "dirsync", "ro"])).unwrap();
        assert_eq!(m.sb_flags, vec!["sync", "dirsync"]);
        assert!(m.readonly());
    }
}
