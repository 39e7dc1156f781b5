//! Removing a container that no longer runs: what `berth rm` does after stopping it, and
//! what the monitor does on exit with `--rm`.

use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::record::Status;
use berth_image::store::Store;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Removes container `id`: its runtime state (if the runtime still has it), rootfs and image
/// lease, name link (if it still names this id), anonymous volumes (with
/// `remove_anonymous_volumes`) and, last, its directory; then emits "destroy".
///
/// Idempotent: a missing part is skipped. Two concurrent calls are safe: the directory is
/// renamed away (under the container's lock) before it is deleted, and only the caller
/// whose rename wins emits the event. [`Error::Busy`] when anything of it still runs
/// (control::remove stops it first).
pub fn remove_container(
    layout: &Layout,
    store: &Store,
    id: &str,
    remove_anonymous_volumes: bool,
) -> Result<()> {
    detach_container(layout, store, id, remove_anonymous_volumes)?.delete()
}

/// What [`detach_container`] renamed away: trees no name leads to any more.
#[derive(Debug, Default)]
#[must_use = "the renamed trees stay on disk until delete()"]
pub struct Leftovers {
    trees: Vec<PathBuf>,
}

impl Leftovers {
    /// Deletes the renamed trees.
    pub fn delete(self) -> Result<()> {
        for t in &self.trees {
            // A writer that still held a directory of the tree (a dying monitor's last
            // record, through its fd) can add an entry while the tree is deleted, which
            // then fails with ENOTEMPTY (engine_hardening's interrupted creates): the
            // deletion is tried again, a while.
            let mut tries = 0;
            loop {
                match berth_image::store::remove_tree(t) {
                    Err(berth_image::Error::Io(_, e))
                        if tries < 50 && e.kind() == std::io::ErrorKind::DirectoryNotEmpty =>
                    {
                        tries += 1;
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                    r => {
                        r?;
                        break;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Who removes a container: a command (which must find nothing alive, and takes back
/// the network of a container whose monitor was killed), or its own monitor at the exit
/// of a `--rm` container (the monitor is alive, its container not, its network taken
/// back already).
#[derive(Clone, Copy)]
enum Remover {
    Command { unplug_owner: UnplugOwner },
    Monitor,
}

/// [`remove_container`] up to the deletion of its trees: once this returns, the container
/// is gone for every reader (records, name, lease, rootfs mount), and what is left on disk
/// sits under dot-names that nothing lists. The monitor of a `--rm` container replies EXIT
/// in between, so `run --rm` does not wait for the deletion.
pub fn detach_container(
    layout: &Layout,
    store: &Store,
    id: &str,
    remove_anonymous_volumes: bool,
) -> Result<Leftovers> {
    detach(
        layout,
        store,
        id,
        remove_anonymous_volumes,
        Remover::Command {
            unplug_owner: crate::net::attach::unplug_owner,
        },
    )
}

/// What takes back the network of a container whose monitor was killed (DNAT elements,
/// DNS records, leases, by its id).
pub type UnplugOwner = fn(&Layout, &crate::record::ContainerConfig) -> Vec<String>;

/// [`detach_container`] by the container's own monitor, which took its network back
/// already: without the network code (which the monitor does not link; see
/// [`crate::net::helper`]).
pub fn detach_container_by_monitor(
    layout: &Layout,
    store: &Store,
    id: &str,
    remove_anonymous_volumes: bool,
) -> Result<Leftovers> {
    detach(
        layout,
        store,
        id,
        remove_anonymous_volumes,
        Remover::Monitor,
    )
}

/// The container's lock is held from the check that nothing of it runs to the rename of
/// its directory, so a `start` racing the removal either wins (and the removal says
/// [`Error::Busy`]) or finds the container gone. With [`Remover::Monitor`] the runtime's
/// own state (and the cgroup it removes) is left to the caller, who knows the container
/// is dead and deletes it after answering.
fn detach(
    layout: &Layout,
    store: &Store,
    id: &str,
    remove_anonymous_volumes: bool,
    by: Remover,
) -> Result<Leftovers> {
    berth_image::store::check_id(id).map_err(Error::from)?;
    let dir = layout.container_dir(id);
    let lock = match layout.lock(id) {
        Ok(l) => l,
        // Removed meanwhile (the lock file goes with the directory).
        Err(Error::Io(_, e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Leftovers::default())
        }
        Err(e) => return Err(e),
    };
    // A removal that held the lock before us renamed the directory away.
    if !dir.is_dir() {
        return Ok(Leftovers::default());
    }
    let state = crate::status::load(layout, id).ok();
    if matches!(by, Remover::Command { .. }) {
        let alive = match &state {
            Some(s) => {
                crate::status::watched(s)
                    || crate::status::init_alive(s)
                    || !crate::status::cgroup_pids(layout, id).is_empty()
            }
            None => !crate::status::cgroup_pids(layout, id).is_empty(),
        };
        if alive {
            return Err(Error::Busy(id.to_string()));
        }
    }
    let mut left = Leftovers::default();
    let cfg = tidy(
        layout,
        store,
        id,
        remove_anonymous_volumes,
        match by {
            Remover::Command { unplug_owner } => Some(unplug_owner),
            Remover::Monitor => None,
        },
        &lock,
        &mut left,
    )?;
    // The directory goes last, through a rename, with the lock still held.
    let gone = dir
        .parent()
        .map(|p| p.join(trash_name(id)))
        .unwrap_or_else(|| layout.containers_dir().join(trash_name(id)));
    match std::fs::rename(&dir, &gone) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(left),
        Err(e) => return Err(Error::io(&dir, e)),
    }
    drop(lock);
    left.trees.push(gone);
    // Its labels too, as dockerd's (a label filter sees the destroy).
    let attrs = cfg.as_ref().map(crate::create::attrs).unwrap_or_default();
    if let Err(e) = crate::events::emit(layout, "container", "destroy", id, attrs) {
        let _ = left.delete();
        return Err(e);
    }
    Ok(left)
}

/// A dot-name for a tree being deleted: unique per process and call, so a leftover of a
/// crashed removal never blocks the rename (inventory::sweep deletes it once the process
/// is gone).
pub(crate) fn trash_name(id: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    format!(".{id}.removing-{}-{n}", std::process::id())
}

/// The runtime binary and --root that know container `id`: from its config, else the
/// runtime state directory that holds `id` (a config that cannot be read).
pub fn runtime_of(
    layout: &Layout,
    id: &str,
    cfg: Option<&crate::record::ContainerConfig>,
) -> Option<(PathBuf, PathBuf)> {
    if let Some(c) = cfg {
        return Some((PathBuf::from(&c.runtime), PathBuf::from(&c.runtime_root)));
    }
    let base = layout.engine_dir().join("runtime");
    for e in std::fs::read_dir(&base).ok()?.flatten() {
        if e.path().join(id).exists() {
            let name = e.file_name().to_string_lossy().into_owned();
            let bin = crate::bins::resolve_runtime(Some(&name)).ok()?;
            return Some((bin, e.path()));
        }
    }
    None
}

/// `runtime delete --force id`, when the runtime's state dir says it knows `id`.
fn runtime_delete(
    layout: &Layout,
    id: &str,
    cfg: Option<&crate::record::ContainerConfig>,
) -> Result<()> {
    let Some((bin, rt_root)) = runtime_of(layout, id, cfg) else {
        return Ok(());
    };
    // Asking the runtime costs a process: only when its state dir says it knows `id`.
    if !rt_root.join(id).exists() {
        return Ok(());
    }
    let st = Command::new(&bin)
        .arg("--root")
        .arg(&rt_root)
        .args(["delete", "--force", id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| Error::io(&bin, e))?;
    if !st.success() && rt_root.join(id).exists() {
        return Err(Error::Invalid(format!(
            "{} delete --force {id} failed ({st})",
            bin.display()
        )));
    }
    Ok(())
}

/// Everything but the directory itself; returns the config if it could be read.
fn tidy(
    layout: &Layout,
    store: &Store,
    id: &str,
    remove_anonymous_volumes: bool,
    runtime_delete_too: Option<UnplugOwner>,
    lock: &crate::record::ContainerLock,
    left: &mut Leftovers,
) -> Result<Option<crate::record::ContainerConfig>> {
    let cfg = layout.load_config(id).ok();
    // The mark tells readers (and a concurrent start) what is going on; the record goes
    // soon: no fsync. A record that cannot be read is simply replaced.
    let mut s = crate::status::load(layout, id).unwrap_or_default();
    s.status = Status::Removing;
    s.pid = 0;
    layout.save_state_nosync(id, &s, lock)?;
    // With the runtime's state goes what a killed monitor could not take back of its
    // network, by the container's id. (Its own exit path did it otherwise.)
    if let Some(unplug_owner) = runtime_delete_too {
        runtime_delete(layout, id, cfg.as_ref())?;
        if let Some(e) = cfg
            .as_ref()
            .and_then(|c| unplug_owner(layout, c).into_iter().next())
        {
            return Err(Error::Invalid(format!("remove container {id}: {e}")));
        }
    }
    // A shareable container's /dev/shm tmpfs goes before its directory.
    crate::namespaces::unmount_shm(layout, id);
    // The rootfs (upper layer) is renamed away now and deleted with the directory.
    berth_image::overlay::unmount_rootfs(store, id, false)?;
    let rootfs = berth_image::overlay::container_dir(store, id)?;
    let trash = rootfs.with_file_name(trash_name(id));
    match std::fs::rename(&rootfs, &trash) {
        Ok(()) => left.trees.push(trash),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(&rootfs, e)),
    }
    store.release(id)?;
    // Every name that leads here (the config's, or any when it cannot be read).
    let names = match &cfg {
        Some(c) => vec![c.name.clone()],
        None => crate::inventory::names_of(layout, id),
    };
    for n in names {
        let link = layout.names_dir().join(&n);
        if std::fs::read_link(&link).is_ok_and(|t| t.as_os_str() == id) {
            match std::fs::remove_file(&link) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(link, e)),
            }
        }
    }
    if remove_anonymous_volumes {
        match &cfg {
            Some(c) => {
                for v in c.volumes.iter().filter(|v| v.anonymous) {
                    if v.name.is_empty() || v.name.contains('/') || v.name.starts_with('.') {
                        continue;
                    }
                    berth_image::store::remove_tree(&layout.volumes_dir().join(&v.name))?;
                }
            }
            None => crate::volumes::discard_anonymous_of(layout, id),
        }
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{ContainerConfig, VolumeUse};

    fn config(l: &Layout, id: &str, name: &str, dir: &std::path::Path) {
        let cfg = ContainerConfig {
            id: id.to_string(),
            name: name.into(),
            created: String::new(),
            image_id: String::new(),
            image_manifest: String::new(),
            runtime: "/nonexistent/runtime".into(),
            runtime_root: dir.join("rt").display().to_string(),
            path: "sh".into(),
            args: vec![],
            volumes: vec![],
            health: None,
            stop_signal: 15,
            options: Default::default(),
        };
        std::fs::create_dir(l.container_dir(id)).unwrap();
        let lock = l.lock(id).unwrap();
        l.save_config(&cfg, &lock).unwrap();
        let upper = dir.join("containers").join(id).join("upper");
        for i in 0..50 {
            std::fs::create_dir_all(upper.join(format!("d{i}"))).unwrap();
            std::fs::write(upper.join(format!("d{i}/f")), b"x").unwrap();
        }
    }

    #[test]
    fn concurrent_removals_one_destroy() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::open(d.path()).unwrap();
        let store = Store::open(d.path()).unwrap();
        for round in 0..10 {
            let id = format!("{round:064x}");
            config(&l, &id, &format!("n{round}"), d.path());
            std::thread::scope(|s| {
                for _ in 0..3 {
                    s.spawn(|| remove_container(&l, &store, &id, true).unwrap());
                }
            });
            assert!(!l.container_dir(&id).exists());
            assert!(!d.path().join("containers").join(&id).exists());
        }
        let ev = crate::events::read_all(&l).unwrap();
        assert_eq!(ev.iter().filter(|e| e.action == "destroy").count(), 10);
    }

    #[test]
    fn removes_everything_once() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::open(d.path()).unwrap();
        let store = Store::open(d.path()).unwrap();
        let id = "b".repeat(64);
        std::fs::create_dir(l.container_dir(&id)).unwrap();
        let cfg = ContainerConfig {
            id: id.clone(),
            name: "web".into(),
            created: String::new(),
            image_id: String::new(),
            image_manifest: String::new(),
            runtime: "/nonexistent/runtime".into(),
            runtime_root: d.path().join("rt").display().to_string(),
            path: "sh".into(),
            args: vec![],
            volumes: vec![
                VolumeUse {
                    name: "anon1".into(),
                    target: "/data".into(),
                    anonymous: true,
                },
                VolumeUse {
                    name: "named".into(),
                    target: "/n".into(),
                    anonymous: false,
                },
            ],
            health: None,
            stop_signal: 15,
            options: Default::default(),
        };
        let lock = l.lock(&id).unwrap();
        l.save_config(&cfg, &lock).unwrap();
        drop(lock);
        std::os::unix::fs::symlink(&id, l.names_dir().join("web")).unwrap();
        // A link that now names another container stays.
        std::os::unix::fs::symlink("c".repeat(64), l.names_dir().join("other")).unwrap();
        for v in ["anon1", "named"] {
            std::fs::create_dir_all(l.volumes_dir().join(v).join("_data")).unwrap();
        }
        std::fs::create_dir_all(d.path().join("containers").join(&id).join("upper")).unwrap();

        remove_container(&l, &store, &id, true).unwrap();
        assert!(!l.container_dir(&id).exists());
        assert!(!l.names_dir().join("web").exists());
        assert!(l.names_dir().join("other").symlink_metadata().is_ok());
        assert!(!l.volumes_dir().join("anon1").exists());
        assert!(l.volumes_dir().join("named").exists());
        assert!(!d.path().join("containers").join(&id).exists());
        remove_container(&l, &store, &id, true).unwrap();
        let ev = crate::events::read_all(&l).unwrap();
        assert_eq!(ev.iter().filter(|e| e.action == "destroy").count(), 1);
        assert!(std::fs::read_dir(l.containers_dir())
            .unwrap()
            .next()
            .is_none());
    }
}
