//! Named volumes: `R/engine/volumes/<name>/{_data,volume.json}`.
//!
//! A volume is created by building it in a temporary directory beside the others and renaming
//! that into place with RENAME_NOREPLACE, so concurrent creates of one name end with exactly
//! one volume and a reader never sees a volume without its volume.json.
//! Anonymous volumes carry docker's `com.docker.volume.anonymous` label; `prune` removes only
//! those unless asked for all (docker 23+).

use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::parse::valid_volume_name;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// docker's label marking an anonymous volume.
pub const ANON_LABEL: &str = "com.docker.volume.anonymous";

/// volume.json, with docker's `volume inspect` fields.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    pub created_at: String,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    pub mountpoint: String,
    pub name: String,
    pub options: BTreeMap<String, String>,
    pub scope: String,
}

impl Volume {
    pub fn anonymous(&self) -> bool {
        self.labels.contains_key(ANON_LABEL)
    }
}

/// A flock on `R/engine/volumes.lock`. `build_spec` holds it shared from creating a
/// container's volumes until the container's config.json names them (it travels in
/// BuiltSpec); `rm` and `prune` hold it exclusively while they decide what is unused, so a
/// volume being created for a container is never pruned before the container records it.
pub struct VolumesLock {
    _f: std::fs::File,
}

/// Takes the volumes lock (blocking).
pub fn lock(l: &Layout, exclusive: bool) -> Result<VolumesLock> {
    // Beside the volumes, not among them.
    let f = crate::layout::flock_file(&l.engine_dir().join("volumes.lock"), exclusive)?;
    Ok(VolumesLock { _f: f })
}

/// 64 random hex characters (volume names, like docker's anonymous volumes).
pub fn random_hex64() -> Result<String> {
    use std::io::Read;
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| Error::io("/dev/urandom", e))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn check_name(name: &str) -> Result<()> {
    if !valid_volume_name(name) {
        return Err(Error::Invalid(format!(
            "create {name}: {name:?} includes invalid characters for a local volume name, only \
             \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed"
        )));
    }
    Ok(())
}

fn vol_dir(l: &Layout, name: &str) -> PathBuf {
    l.volumes_dir().join(name)
}

/// The host directory mounted for volume `name`.
pub fn data_path(l: &Layout, name: &str) -> PathBuf {
    let p = vol_dir(l, name).join("_data");
    std::path::absolute(&p).unwrap_or(p)
}

/// Loads volume `name` (NoSuchVolume when absent).
pub fn load(l: &Layout, name: &str) -> Result<Volume> {
    if !valid_volume_name(name) {
        return Err(Error::NoSuchVolume(name.into()));
    }
    let p = vol_dir(l, name).join("volume.json");
    match crate::record::load_json(&p) {
        Err(Error::Io(_, e)) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(Error::NoSuchVolume(name.into()))
        }
        r => r,
    }
}

/// Creates volume `name` (a random name when None). An existing volume of that name is
/// returned as it is (as `docker volume create` does); the bool says whether it is new.
pub fn create(
    l: &Layout,
    name: Option<&str>,
    labels: BTreeMap<String, String>,
    anonymous: bool,
) -> Result<(Volume, bool)> {
    let name = match name {
        Some(n) => {
            check_name(n)?;
            n.to_string()
        }
        None => random_hex64()?,
    };
    if let Ok(v) = load(l, &name) {
        return Ok((v, false));
    }
    let dir = l.volumes_dir();
    crate::layout::mkdir_private(&dir)?;
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempdir_in(&dir)
        .map_err(|e| Error::io(&dir, e))?;
    // The volume dir itself is private; _data is what containers see (docker: 0755 root).
    let data = tmp.path().join("_data");
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&data)
            .map_err(|e| Error::io(&data, e))?;
    }
    let mut labels = labels;
    if anonymous {
        labels.insert(ANON_LABEL.into(), String::new());
    }
    let v = Volume {
        created_at: created_now(),
        driver: "local".into(),
        labels,
        mountpoint: data_path(l, &name).to_string_lossy().into_owned(),
        name: name.clone(),
        options: BTreeMap::new(),
        scope: "local".into(),
    };
    crate::record::save_json(&tmp.path().join("volume.json"), &v)?;
    let dest = vol_dir(l, &name);
    match rustix::fs::renameat_with(
        rustix::fs::CWD,
        tmp.path(),
        rustix::fs::CWD,
        &dest,
        rustix::fs::RenameFlags::NOREPLACE,
    ) {
        Ok(()) => {
            // Renamed away: nothing left for TempDir to delete.
            let _ = tmp.keep();
            Ok((v, true))
        }
        Err(rustix::io::Errno::EXIST) | Err(rustix::io::Errno::NOTEMPTY) => {
            // Another create won the race.
            Ok((load(l, &name)?, false))
        }
        Err(e) => Err(Error::io(&dest, e.into())),
    }
}

/// docker's CreatedAt: RFC 3339 in seconds.
fn created_now() -> String {
    let s = crate::record::now_rfc3339();
    match s.find('.') {
        Some(i) => format!("{}Z", &s[..i]),
        None => s,
    }
}

/// Every volume, sorted by name.
pub fn list(l: &Layout) -> Result<Vec<Volume>> {
    let d = l.volumes_dir();
    let mut v = Vec::new();
    let rd = match std::fs::read_dir(&d) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(v),
        Err(e) => return Err(Error::io(&d, e)),
    };
    for e in rd {
        let e = e.map_err(|e| Error::io(&d, e))?;
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with('.') {
            continue;
        }
        match load(l, &n) {
            Ok(vol) => v.push(vol),
            // Removed meanwhile.
            Err(Error::NoSuchVolume(_)) => {}
            Err(e) => return Err(e),
        }
    }
    v.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(v)
}

/// Container IDs whose config.json lists volume `name`.
pub fn users(l: &Layout, name: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for id in l.container_ids()? {
        // A container removed meanwhile has no config any more.
        let Ok(c) = l.load_config(&id) else { continue };
        if c.volumes.iter().any(|u| u.name == name) {
            out.push(id);
        }
    }
    out.sort();
    Ok(out)
}

/// Removes volume `name`, refusing while a container uses it.
pub fn remove(l: &Layout, name: &str) -> Result<()> {
    let _lock = lock(l, true)?;
    load(l, name)?;
    let u = users(l, name)?;
    if !u.is_empty() {
        return Err(Error::Invalid(format!(
            "remove {name}: volume is in use - [{}]",
            u.join(", ")
        )));
    }
    remove_dir(l, name)
}

/// The name of the `n`th anonymous volume of container `id`: 64 hex digits like docker's
/// random ones, but derived from the id, so that the anonymous volumes of a creation cut
/// short can be found and removed (inventory::sweep_half_made).
pub fn anonymous_name(id: &str, n: usize) -> String {
    crate::sha256_hex(format!("berth-anonymous-volume:{id}:{n}").as_bytes())
}

/// How many anonymous volumes one container may have (create refuses more).
pub const MAX_ANONYMOUS: usize = 256;

/// Removes the anonymous volumes [`anonymous_name`] gives for container `id` that exist,
/// are anonymous and that no container lists.
pub fn discard_anonymous_of(l: &Layout, id: &str) {
    let Ok(_lock) = lock(l, true) else { return };
    for n in 0..MAX_ANONYMOUS {
        let name = anonymous_name(id, n);
        match load(l, &name) {
            Ok(v) if v.anonymous() && users(l, &name).is_ok_and(|u| u.is_empty()) => {
                let _ = remove_dir(l, &name);
            }
            _ => {}
        }
    }
}

/// Removes volume `name` without any check or lock (a volume this process just created
/// for a container that then failed).
pub fn discard(l: &Layout, name: &str) -> Result<()> {
    remove_dir(l, name)
}

fn remove_dir(l: &Layout, name: &str) -> Result<()> {
    // Rename first so a half-removed volume is never visible under its name.
    let dir = vol_dir(l, name);
    let trash = l
        .volumes_dir()
        .join(format!(".rm-{name}-{}", std::process::id()));
    match std::fs::rename(&dir, &trash) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NoSuchVolume(name.into()))
        }
        Err(e) => return Err(Error::io(&dir, e)),
    }
    std::fs::remove_dir_all(&trash).map_err(|e| Error::io(&trash, e))
}

/// Bytes used under `p` (regular files; no symlinks followed, stays on one filesystem).
pub fn disk_usage(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(root) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    let dev = root.dev();
    let mut total = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() && m.dev() == dev {
                stack.push(e.path());
            } else if m.is_file() {
                total += m.len();
            }
        }
    }
    total
}

/// Removes unused volumes: anonymous ones, or all with `all`. Returns (names, bytes freed).
pub fn prune(l: &Layout, all: bool) -> Result<(Vec<String>, u64)> {
    let _lock = lock(l, true)?;
    let mut used = std::collections::HashSet::new();
    for id in l.container_ids()? {
        if let Ok(c) = l.load_config(&id) {
            used.extend(c.volumes.into_iter().map(|u| u.name));
        }
    }
    let (mut names, mut bytes) = (Vec::new(), 0);
    for v in list(l)? {
        if used.contains(&v.name) || !(all || v.anonymous()) {
            continue;
        }
        let size = disk_usage(&data_path(l, &v.name));
        match remove_dir(l, &v.name) {
            Ok(()) => {
                names.push(v.name);
                bytes += size;
            }
            Err(Error::NoSuchVolume(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok((names, bytes))
}

/// docker's copy-up: when a volume's `_data` is empty, the image's content at `target` (its
/// files, ownership and modes) is copied into it. The image side is reached only through
/// `rootfs` (RESOLVE_IN_ROOT for `target`, then names opened with O_NOFOLLOW below it), so
/// a symlink in the image never leads outside it; symlinks are copied as symlinks.
/// Other file types (devices, fifos, sockets) are skipped.
pub fn copy_up(rootfs: BorrowedFd<'_>, target: &str, data: &Path) -> Result<()> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let io = |what: &str, e: rustix::io::Errno| {
        Error::io(format!("{} ({what})", data.display()), e.into())
    };
    let dst = rustix::fs::open(
        data,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io("open volume", e))?;
    if rustix::fs::Dir::read_from(&dst)
        .map_err(|e| io("read volume", e))?
        .filter_map(|e| e.ok())
        .any(|e| !matches!(e.file_name().to_bytes(), b"." | b".."))
    {
        return Ok(());
    }
    let src = match rustix::fs::openat2(
        rootfs,
        target,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_XDEV,
    ) {
        Ok(fd) => fd,
        // Nothing (or not a directory) in the image there: nothing to copy.
        Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::NOTDIR) => return Ok(()),
        Err(e) => return Err(io(&format!("open image path {target}"), e)),
    };
    copy_owner_mode(&src, &dst).map_err(|e| io(target, e))?;
    copy_tree(&src, &dst, 0).map_err(|e| io(&format!("copy {target}"), e))
}

fn copy_owner_mode(src: &OwnedFd, dst: &OwnedFd) -> rustix::io::Result<()> {
    let st = rustix::fs::fstat(src)?;
    rustix::fs::fchown(
        dst,
        Some(rustix::fs::Uid::from_raw(st.st_uid)),
        Some(rustix::fs::Gid::from_raw(st.st_gid)),
    )?;
    rustix::fs::fchmod(dst, rustix::fs::Mode::from_raw_mode(st.st_mode & 0o7777))
}

fn copy_tree(src: &OwnedFd, dst: &OwnedFd, depth: u32) -> rustix::io::Result<()> {
    use rustix::fs::{AtFlags, FileType, Mode, OFlags};
    if depth > 128 {
        return Err(rustix::io::Errno::LOOP);
    }
    for e in rustix::fs::Dir::read_from(src)? {
        let e = e?;
        let name = e.file_name();
        if matches!(name.to_bytes(), b"." | b"..") {
            continue;
        }
        let st = rustix::fs::statat(src, name, AtFlags::SYMLINK_NOFOLLOW)?;
        let (uid, gid) = (
            Some(rustix::fs::Uid::from_raw(st.st_uid)),
            Some(rustix::fs::Gid::from_raw(st.st_gid)),
        );
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                rustix::fs::mkdirat(dst, name, Mode::from_raw_mode(0o700))?;
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let s = rustix::fs::openat(src, name, flags, Mode::empty())?;
                let d = rustix::fs::openat(dst, name, flags, Mode::empty())?;
                copy_tree(&s, &d, depth + 1)?;
                copy_owner_mode(&s, &d)?;
            }
            FileType::RegularFile => {
                let s = rustix::fs::openat(
                    src,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let d = rustix::fs::openat(
                    dst,
                    name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )?;
                let (mut sf, mut df) = (std::fs::File::from(s), std::fs::File::from(d));
                std::io::copy(&mut sf, &mut df).map_err(|e| {
                    rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::IO)
                })?;
                let d: OwnedFd = df.into();
                rustix::fs::fchown(&d, uid, gid)?;
                rustix::fs::fchmod(&d, Mode::from_raw_mode(st.st_mode & 0o7777))?;
            }
            FileType::Symlink => {
                let t = rustix::fs::readlinkat(src, name, Vec::new())?;
                rustix::fs::symlinkat(t.as_c_str(), dst, name)?;
                rustix::fs::chownat(dst, name, uid, gid, AtFlags::SYMLINK_NOFOLLOW)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// The volumes `filters` select (docker's `volume ls --filter`).
pub fn list_filtered(l: &Layout, filters: &[String]) -> Result<Vec<Volume>> {
    filter(l, list(l)?, filters)
}

/// docker's `volume ls --filter`: values of one key are ORed, keys ANDed.
fn filter(l: &Layout, vols: Vec<Volume>, filters: &[String]) -> Result<Vec<Volume>> {
    let bad = |m: String| Error::Invalid(m);
    let mut by_key: std::collections::BTreeMap<String, Vec<String>> =
        std::collections::BTreeMap::new();
    for f in filters {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| bad(format!("bad format of filter (expected name=value): {f}")))?;
        match k {
            "dangling" | "name" | "label" | "driver" => {}
            _ => return Err(bad(format!("invalid filter {k:?}"))),
        }
        if k == "dangling" && !["true", "false", "1", "0"].contains(&v) {
            return Err(bad(format!("invalid filter 'dangling={v}'")));
        }
        by_key.entry(k.to_string()).or_default().push(v.to_string());
    }
    let used: std::collections::HashSet<String> = if by_key.contains_key("dangling") {
        let mut u = std::collections::HashSet::new();
        for id in l.container_ids()? {
            if let Ok(c) = l.load_config(&id) {
                u.extend(c.volumes.into_iter().map(|v| v.name));
            }
        }
        u
    } else {
        Default::default()
    };
    Ok(vols
        .into_iter()
        .filter(|v| {
            by_key.iter().all(|(k, vals)| {
                vals.iter().any(|val| match k.as_str() {
                    "dangling" => (val == "true" || val == "1") != used.contains(&v.name),
                    "name" => v.name.contains(val.as_str()),
                    "driver" => v.driver == *val,
                    "label" => crate::parse::label_matches(val, &v.labels),
                    _ => false,
                })
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{ContainerConfig, VolumeUse};
    use std::os::fd::AsFd;

    fn layout() -> (tempfile::TempDir, Layout) {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::open(d.path()).unwrap();
        (d, l)
    }

    fn fake_container(l: &Layout, id: &str, vol: &str) {
        std::fs::create_dir_all(l.container_dir(id)).unwrap();
        let c = ContainerConfig {
            id: id.into(),
            name: "x".into(),
            created: String::new(),
            image_id: String::new(),
            image_manifest: String::new(),
            runtime: String::new(),
            runtime_root: String::new(),
            path: "sh".into(),
            args: vec![],
            volumes: vec![VolumeUse {
                name: vol.into(),
                target: "/d".into(),
                anonymous: false,
            }],
            health: None,
            stop_signal: 15,
            options: Default::default(),
        };
        crate::record::save_json(&l.config_path(id), &c).unwrap();
    }

    #[test]
    fn create_inspect_list_remove() {
        let (_d, l) = layout();
        let (v, new) = create(&l, Some("data1"), [("a".into(), "b".into())].into(), false).unwrap();
        assert!(new);
        assert_eq!(v.driver, "local");
        assert_eq!(v.scope, "local");
        assert!(Path::new(&v.mountpoint).is_dir());
        assert!(v.mountpoint.ends_with("engine/volumes/data1/_data"));
        assert!(v.created_at.ends_with('Z') && !v.created_at.contains('.'));
        let (again, new) = create(&l, Some("data1"), BTreeMap::new(), false).unwrap();
        assert!(!new);
        assert_eq!(again, v);
        let (anon, _) = create(&l, None, BTreeMap::new(), true).unwrap();
        assert_eq!(anon.name.len(), 64);
        assert!(anon.anonymous());
        let names: Vec<_> = list(&l).unwrap().into_iter().map(|v| v.name).collect();
        assert_eq!(names.len(), 2);
        assert!(names.contains(&"data1".to_string()));
        remove(&l, "data1").unwrap();
        assert!(matches!(load(&l, "data1"), Err(Error::NoSuchVolume(_))));
        assert!(matches!(remove(&l, "data1"), Err(Error::NoSuchVolume(_))));
    }

    #[test]
    fn bad_names() {
        let (_d, l) = layout();
        for n in ["a", "../x", "a/b", ".hidden", "-x", "a b"] {
            let e = create(&l, Some(n), BTreeMap::new(), false).unwrap_err();
            assert!(e.to_string().contains(&format!("{n:?}")), "{e}");
        }
        assert!(matches!(load(&l, "../../etc"), Err(Error::NoSuchVolume(_))));
    }

    #[test]
    fn in_use_refused_and_prune() {
        let (_d, l) = layout();
        create(&l, Some("used"), BTreeMap::new(), false).unwrap();
        create(&l, Some("named"), BTreeMap::new(), false).unwrap();
        let (anon, _) = create(&l, None, BTreeMap::new(), true).unwrap();
        std::fs::write(Path::new(&anon.mountpoint).join("f"), b"12345").unwrap();
        let id = "c".repeat(64);
        fake_container(&l, &id, "used");
        let e = remove(&l, "used").unwrap_err().to_string();
        assert!(e.contains("in use") && e.contains(&id), "{e}");
        let (gone, bytes) = prune(&l, false).unwrap();
        assert_eq!(gone, vec![anon.name.clone()]);
        assert_eq!(bytes, 5);
        let (gone, _) = prune(&l, true).unwrap();
        assert_eq!(gone, vec!["named".to_string()]);
        assert!(load(&l, "used").is_ok());
    }

    #[test]
    fn concurrent_creates_make_one_volume() {
        let (_d, l) = layout();
        let news: Vec<bool> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|_| s.spawn(|| create(&l, Some("race"), BTreeMap::new(), false).unwrap().1))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(news.iter().filter(|n| **n).count(), 1);
        let left: Vec<_> = std::fs::read_dir(l.volumes_dir())
            .unwrap()
            .flatten()
            .collect();
        assert_eq!(left.len(), 1, "no temp dirs left behind");
    }

    #[test]
    fn copy_up_copies_once_and_stays_in_the_rootfs() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let (d, l) = layout();
        let root = d.path().join("rootfs");
        let t = root.join("var/lib/db");
        std::fs::create_dir_all(t.join("sub")).unwrap();
        std::fs::write(t.join("sub/f"), "x").unwrap();
        std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o710)).unwrap();
        std::os::unix::fs::chown(&t, Some(999), Some(998)).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", t.join("link")).unwrap();
        // A symlinked target resolves inside the rootfs, not on the host.
        std::os::unix::fs::symlink("/../../../../etc", root.join("escape")).unwrap();
        let rootfd = std::fs::File::open(&root).unwrap();
        let (v, _) = create(&l, None, BTreeMap::new(), true).unwrap();
        let data = Path::new(&v.mountpoint);
        copy_up(rootfd.as_fd(), "/var/lib/db", data).unwrap();
        let m = std::fs::metadata(data).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (999, 998, 0o710));
        assert_eq!(std::fs::read_to_string(data.join("sub/f")).unwrap(), "x");
        assert_eq!(
            std::fs::read_link(data.join("link")).unwrap(),
            Path::new("/etc/shadow")
        );
        // Not empty any more: a second copy-up changes nothing.
        std::fs::write(t.join("new"), "y").unwrap();
        copy_up(rootfd.as_fd(), "/var/lib/db", data).unwrap();
        assert!(!data.join("new").exists());
        let (v2, _) = create(&l, None, BTreeMap::new(), true).unwrap();
        copy_up(rootfd.as_fd(), "/escape", Path::new(&v2.mountpoint)).unwrap();
        assert!(
            std::fs::read_dir(&v2.mountpoint).unwrap().next().is_none(),
            "host /etc not copied"
        );
        copy_up(rootfd.as_fd(), "/missing", Path::new(&v2.mountpoint)).unwrap();
    }

    #[test]
    fn prune_waits_for_a_create_in_progress() {
        let (_d, l) = layout();
        let held = lock(&l, false).unwrap();
        let (v, _) = create(&l, None, BTreeMap::new(), true).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| {
                let r = prune(&l, false).unwrap();
                tx.send(r).unwrap();
            });
            std::thread::sleep(std::time::Duration::from_millis(200));
            assert!(
                rx.try_recv().is_err(),
                "prune must wait for the shared lock"
            );
            // The container records the volume, then lets go.
            let id = "d".repeat(64);
            fake_container(&l, &id, &v.name);
            drop(held);
            let (gone, _) = rx.recv().unwrap();
            assert!(gone.is_empty(), "the recorded volume is in use: {gone:?}");
        });
    }
}
