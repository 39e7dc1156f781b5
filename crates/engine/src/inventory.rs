//! What is under `R/engine/containers/`, whatever state a crash left it in, and the sweep
//! that removes what a dead process left half-made:
//!
//! - a container directory with `config.json`: a container (its records may still be
//!   unreadable: see [`Entry::Broken`]);
//! - one with `creating.json` and no `config.json`: a creation under way, or cut short when
//!   its creator (pid + start time) is gone ([`Entry::HalfMade`]);
//! - dot-names: `.<id>.creating-<pid>` (a directory being prepared by create, renamed into
//!   place once `creating.json` is in it) and `.<id>.removing-<pid>-<n>` (a tree being
//!   deleted). Either is stale once its pid is gone.
//!
//! Temp files of atomic writes (`.tmp-<pid>-...`) whose process is gone are deleted too.
//!
//! A half-made container may hold a name link, an overlay mount of its rootfs, an image
//! lease and anonymous volumes (named after its id, see volumes::anonymous_name); the
//! sweep removes each, in the order create made them, reversed.

use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::record::{self, ContainerConfig, Creating};
use berth_image::store::Store;
use std::path::Path;
use std::time::Duration;

/// A creation whose `creating.json` cannot be read (a crash before it was synced) is
/// taken as abandoned once its directory is this old.
const UNKNOWN_CREATOR_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub enum Entry {
    /// config.json reads.
    Container(Box<ContainerConfig>),
    /// No config.json; `creator` is None when creating.json is unreadable too.
    HalfMade {
        id: String,
        creator: Option<Creating>,
        /// The creator is gone: nothing will finish it.
        abandoned: bool,
    },
    /// config.json exists but cannot be read.
    Broken { id: String, reason: String },
}

impl Entry {
    pub fn id(&self) -> &str {
        match self {
            Entry::Container(c) => &c.id,
            Entry::HalfMade { id, .. } | Entry::Broken { id, .. } => id,
        }
    }
}

/// The entry for container directory `id` (None when there is no such directory).
pub fn entry(layout: &Layout, id: &str) -> Option<Entry> {
    let dir = layout.container_dir(id);
    match layout.load_config(id) {
        Ok(c) => Some(Entry::Container(Box::new(c))),
        Err(Error::Incomplete { .. }) => half_made(layout, id),
        Err(Error::Io(_, e)) if e.kind() == std::io::ErrorKind::NotFound => half_made(layout, id),
        Err(e) => {
            if !dir.is_dir() {
                return None;
            }
            Some(Entry::Broken {
                id: id.to_string(),
                reason: crate::error::chain(&e),
            })
        }
    }
}

/// The entry of a directory without config.json (None when it is gone).
fn half_made(layout: &Layout, id: &str) -> Option<Entry> {
    let dir = layout.container_dir(id);
    if !dir.is_dir() {
        return None;
    }
    let creator: Option<Creating> = record::load_json(&layout.creating_path(id)).ok();
    // config.json may have appeared since we looked (the create finished).
    if layout.config_path(id).exists() {
        return entry(layout, id);
    }
    let abandoned = match &creator {
        Some(c) => !record::same_process(c.pid, c.pid_start),
        None => older_than(&dir, UNKNOWN_CREATOR_GRACE),
    };
    Some(Entry::HalfMade {
        id: id.to_string(),
        creator,
        abandoned,
    })
}

fn older_than(p: &Path, d: Duration) -> bool {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > d)
}

/// The IDs of every container directory (complete, half-made or broken).
pub fn ids(layout: &Layout) -> Result<Vec<String>> {
    let mut v = Vec::new();
    for d in layout.all_containers_dirs() {
        let rd = match std::fs::read_dir(&d) {
            // The tmpfs's directory exists once a `--rm` container was made.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && d != layout.containers_dir() => {
                continue
            }
            r => r.map_err(|e| Error::io(&d, e))?,
        };
        for e in rd {
            let e = e.map_err(|e| Error::io(&d, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if crate::lookup::is_full_id(&name) {
                v.push(name);
            }
        }
    }
    Ok(v)
}

/// Every entry; abandoned half-made containers are swept on the way (not listed).
pub fn entries(layout: &Layout, store: &Store) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for id in ids(layout)? {
        match entry(layout, &id) {
            None => {}
            Some(Entry::HalfMade {
                abandoned: true, ..
            }) => {
                let _ = sweep_half_made(layout, store, &id);
            }
            Some(e) => out.push(e),
        }
    }
    Ok(out)
}

/// Names that link to `id`.
pub fn names_of(layout: &Layout, id: &str) -> Vec<String> {
    let mut v = Vec::new();
    if let Ok(d) = std::fs::read_dir(layout.names_dir()) {
        for e in d.flatten() {
            if std::fs::read_link(e.path()).is_ok_and(|t| t.as_os_str() == id) {
                v.push(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    v
}

/// Removes an abandoned half-made container `id`: name links, anonymous volumes, rootfs
/// mount, lease, directory. Refuses one whose creator still runs. Idempotent.
pub fn sweep_half_made(layout: &Layout, store: &Store, id: &str) -> Result<()> {
    berth_image::store::check_id(id).map_err(Error::from)?;
    let _lock = match layout.lock(id) {
        Ok(l) => l,
        // Gone already.
        Err(Error::Io(_, e)) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    match entry(layout, id) {
        None | Some(Entry::Container(_)) | Some(Entry::Broken { .. }) => return Ok(()),
        Some(Entry::HalfMade {
            abandoned: false,
            creator,
            ..
        }) => {
            return Err(Error::Invalid(format!(
                "container {id} is still being created{}",
                creator
                    .map(|c| format!(" (by pid {})", c.pid))
                    .unwrap_or_default()
            )))
        }
        Some(Entry::HalfMade { .. }) => {}
    }
    for n in names_of(layout, id) {
        crate::create::unlink_name(layout, &n, id);
    }
    crate::volumes::discard_anonymous_of(layout, id);
    berth_image::overlay::unmount_rootfs(store, id, true)?;
    let trash = layout
        .containers_dir_of(id)
        .join(crate::remove::trash_name(id));
    match std::fs::rename(layout.container_dir(id), &trash) {
        Ok(()) => berth_image::store::remove_tree(&trash)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(layout.container_dir(id), e)),
    }
    Ok(())
}

/// The pid in a dot-name `.<id>.creating-<pid>` or `.<id>.removing-<pid>-<n>`.
fn dot_name_pid(name: &str) -> Option<i32> {
    let rest = name.strip_prefix('.')?;
    let (_, tail) = rest.split_once('.')?;
    let num = tail
        .strip_prefix("creating-")
        .or_else(|| tail.strip_prefix("removing-"))?;
    num.split('-').next()?.parse().ok()
}

/// Deletes dot-named trees under `dir` whose process is gone.
fn sweep_dot_trees(dir: &Path) {
    let Ok(d) = std::fs::read_dir(dir) else {
        return;
    };
    for e in d.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = dot_name_pid(&name) else {
            continue;
        };
        // The name was made by that process: once it is gone, nobody finishes the tree.
        let alive = pid > 0 && std::path::Path::new(&format!("/proc/{pid}")).exists();
        if !alive {
            let _ = berth_image::store::remove_tree(&e.path());
        }
    }
}

/// Temp files (`.tmp-<pid>-...`, see store::temp_prefix) of processes that are gone.
fn sweep_temp_files(dir: &Path) {
    let Ok(d) = std::fs::read_dir(dir) else {
        return;
    };
    for e in d.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = berth_image::store::temp_owner(&name) else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists()
            && older_than(&e.path(), Duration::from_millis(100))
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Name links whose container directory does not exist.
fn sweep_dangling_names(layout: &Layout) {
    let Ok(d) = std::fs::read_dir(layout.names_dir()) else {
        return;
    };
    for e in d.flatten() {
        let Ok(t) = std::fs::read_link(e.path()) else {
            continue;
        };
        let id = t.to_string_lossy().into_owned();
        if crate::lookup::is_full_id(&id) && !layout.container_dir(&id).exists() {
            let name = e.file_name().to_string_lossy().into_owned();
            crate::create::unlink_name(layout, &name, &id);
        }
    }
}

/// After a reboot the tmpfs that held the records of `--rm` containers is gone, and their
/// rootfs trees, image leases and names are orphans: a create makes the records before
/// the rootfs, and a removal takes the rootfs first, so a rootfs without records is one.
/// Only for `system boot`: another mount namespace may not see a live tmpfs.
pub fn sweep_orphan_rootfs(layout: &Layout, store: &Store) -> Result<()> {
    let d = store.root().join("containers");
    let Ok(rd) = std::fs::read_dir(&d) else {
        return Ok(());
    };
    for e in rd.flatten() {
        let id = e.file_name().to_string_lossy().into_owned();
        if crate::lookup::is_full_id(&id) && !layout.container_dir(&id).exists() {
            berth_image::overlay::unmount_rootfs(store, &id, true)?;
        }
    }
    sweep_dangling_names(layout);
    Ok(())
}

/// Everything a crash can leave: abandoned half-made containers, dangling name links,
/// dot-named trees of dead processes (engine records and rootfs upper layers).
pub fn sweep(layout: &Layout, store: &Store) -> Result<()> {
    for id in ids(layout)? {
        if let Some(Entry::HalfMade {
            abandoned: true, ..
        }) = entry(layout, &id)
        {
            sweep_half_made(layout, store, &id)?;
        }
    }
    sweep_dangling_names(layout);
    for d in layout.all_containers_dirs() {
        sweep_dot_trees(&d);
    }
    sweep_dot_trees(&store.root().join("containers"));
    sweep_temp_files(&store.root().join("leases"));
    sweep_temp_files(layout.names_dir().as_path());
    sweep_temp_files(&layout.engine_dir());
    Ok(())
}

/// Frees `name` if the container holding it is a dangling link or an abandoned
/// half-made container. True when something was freed (create retries then).
pub fn reclaim_name(layout: &Layout, store: &Store, name: &str) -> bool {
    let Some(id) = crate::lookup::id_of_name(layout, name) else {
        return false;
    };
    match entry(layout, &id) {
        None => {
            crate::create::unlink_name(layout, name, &id);
            true
        }
        Some(Entry::HalfMade {
            abandoned: true, ..
        }) => sweep_half_made(layout, store, &id).is_ok(),
        _ => false,
    }
}

/// Bytes under `p` (files as they are, symlinks not followed).
pub fn dir_size(p: &std::path::Path) -> u64 {
    let Ok(m) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    if !m.is_dir() {
        return m.len();
    }
    std::fs::read_dir(p)
        .map(|d| d.flatten().map(|x| dir_size(&x.path())).sum())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_names() {
        assert_eq!(
            dot_name_pid(&format!(".{}.creating-42", "a".repeat(64))),
            Some(42)
        );
        assert_eq!(
            dot_name_pid(&format!(".{}.removing-7-123456", "a".repeat(64))),
            Some(7)
        );
        assert_eq!(dot_name_pid(".tmpabc"), None);
        assert_eq!(dot_name_pid("abc"), None);
    }

    #[test]
    fn boot_sweeps_rootfs_trees_without_records() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::open(d.path()).unwrap();
        let store = Store::open(d.path()).unwrap();
        let (orphan, kept, on_tmpfs) = ("e".repeat(64), "f".repeat(64), "a".repeat(64));
        for id in [&orphan, &kept, &on_tmpfs] {
            std::fs::create_dir_all(d.path().join("containers").join(id).join("upper")).unwrap();
        }
        std::fs::create_dir(l.container_dir(&kept)).unwrap();
        std::fs::create_dir_all(l.run_containers_dir().join(&on_tmpfs)).unwrap();
        sweep_orphan_rootfs(&l, &store).unwrap();
        assert!(!d.path().join("containers").join(&orphan).exists());
        assert!(d.path().join("containers").join(&kept).exists());
        assert!(d.path().join("containers").join(&on_tmpfs).exists());
    }

    #[test]
    fn half_made_with_dead_creator_is_swept() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::open(d.path()).unwrap();
        let store = Store::open(d.path()).unwrap();
        let id = "d".repeat(64);
        std::fs::create_dir(l.container_dir(&id)).unwrap();
        // A pid that is not running now (start time 1 never matches).
        let c = Creating {
            pid: std::process::id() as i32,
            pid_start: 1,
            name: "web".into(),
            ..Default::default()
        };
        record::save_json(&l.creating_path(&id), &c).unwrap();
        std::os::unix::fs::symlink(&id, l.names_dir().join("web")).unwrap();
        assert!(matches!(
            entry(&l, &id),
            Some(Entry::HalfMade {
                abandoned: true,
                ..
            })
        ));
        assert!(reclaim_name(&l, &store, "web"));
        assert!(!l.container_dir(&id).exists());
        assert!(l.names_dir().join("web").symlink_metadata().is_err());

        // A live creator: kept, and not removable.
        let id2 = "e".repeat(64);
        std::fs::create_dir(l.container_dir(&id2)).unwrap();
        let me = std::process::id() as i32;
        let c = Creating {
            pid: me,
            pid_start: record::pid_start_time(me).unwrap(),
            ..Default::default()
        };
        record::save_json(&l.creating_path(&id2), &c).unwrap();
        assert!(sweep_half_made(&l, &store, &id2).is_err());
        sweep(&l, &store).unwrap();
        assert!(l.container_dir(&id2).exists());
    }

    #[test]
    fn broken_config_is_listed_with_its_reason() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::open(d.path()).unwrap();
        let store = Store::open(d.path()).unwrap();
        let id = "f".repeat(64);
        std::fs::create_dir(l.container_dir(&id)).unwrap();
        std::fs::write(l.config_path(&id), b"garbage").unwrap();
        let e = entries(&l, &store).unwrap();
        match &e[..] {
            [Entry::Broken { reason, .. }] => assert!(reason.contains("config.json"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
}
