//! Container rootfs: the image's layers as lowerdirs plus a fresh upper/work, mounted with
//! the new mount API. Each lowerdir is passed on its own (`lowerdir+`, Linux 6.8+) so deep
//! images do not hit the one-page limit of the mount options string.

use crate::error::{Error, Result};
use crate::layers::lower_dirs;
use crate::store::{check_id, ImageRecord, Store};
use rustix::mount::{self as m, FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// Paths of a container's rootfs under the store.
pub fn container_dir(store: &Store, container_id: &str) -> Result<PathBuf> {
    check_id(container_id)?;
    Ok(store.root().join("containers").join(container_id))
}

fn merr(what: &str, e: rustix::io::Errno) -> Error {
    Error::Mount(format!("mount of {what}"), e.into())
}

/// Mounts an overlay of `lowers` (topmost first) with `upper`/`work` at `target`.
pub fn mount_overlay(lowers: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Result<()> {
    mount_overlay_opts(lowers, upper, work, target, false)
}

/// [`mount_overlay`]; with `volatile` the overlay never syncs its upper filesystem (not at
/// unmount, not on fsync/syncfs): for a rootfs thrown away when the container exits. The
/// kernel refuses to mount that upper/work again (`work/work/incompat/volatile`).
pub fn mount_overlay_opts(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    volatile: bool,
) -> Result<()> {
    let what = target.display().to_string();
    if lowers.is_empty() {
        return Err(Error::Invalid(format!(
            "overlay at {what} needs at least one layer"
        )));
    }
    let fs = m::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).map_err(|e| merr(&what, e))?;
    let set = |k: &str, v: &Path| -> Result<()> {
        m::fsconfig_set_string(&fs, k, v)
            .map_err(|e| merr(&format!("{what} ({k}={})", v.display()), e))
    };
    // `lowerdir+` (Linux 6.8+) takes one layer per call; older kernels get the joined
    // string, which is limited to a page.
    match m::fsconfig_set_string(&fs, "lowerdir+", &lowers[0]) {
        Ok(()) => {
            for l in &lowers[1..] {
                set("lowerdir+", l)?;
            }
        }
        Err(rustix::io::Errno::INVAL) => {
            let mut joined = std::ffi::OsString::new();
            for (i, l) in lowers.iter().enumerate() {
                let b = l.as_os_str().as_encoded_bytes();
                if b.contains(&b':') || b.contains(&b',') {
                    return Err(Error::Invalid(format!(
                        "layer path {} contains ':' or ','",
                        l.display()
                    )));
                }
                if i > 0 {
                    joined.push(":");
                }
                joined.push(l);
            }
            set("lowerdir", Path::new(&joined))?;
        }
        Err(e) => {
            return Err(merr(
                &format!("{what} (lowerdir+={})", lowers[0].display()),
                e,
            ))
        }
    }
    set("upperdir", upper)?;
    set("workdir", work)?;
    // Inode numbers stay unique across layers; no redirect/metacopy from untrusted images.
    let _ = m::fsconfig_set_string(&fs, "xino", "auto");
    m::fsconfig_set_string(&fs, "redirect_dir", "off").map_err(|e| merr(&what, e))?;
    m::fsconfig_set_string(&fs, "metacopy", "off").map_err(|e| merr(&what, e))?;
    if volatile {
        m::fsconfig_set_flag(&fs, "volatile")
            .map_err(|e| merr(&format!("{what} (volatile)"), e))?;
    }
    m::fsconfig_create(&fs).map_err(|e| merr(&format!("{what} (create the overlay)"), e))?;
    let mnt = m::fsmount(
        &fs,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_NODEV,
    )
    .map_err(|e| merr(&format!("{what} (fsmount)"), e))?;
    m::move_mount(
        &mnt,
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| merr(&format!("{what} (attach)"), e))?;
    // Attached under a shared parent, it was copied into the parent's peers and slaves
    // (a container's mount namespace between its clone and its pivot_root is one), and
    // umount checks every copy: one busy there made our unmount fail with EBUSY, now and
    // then, under concurrent launches. A rootfs has no business propagating: private.
    m::mount_change(target, m::MountPropagationFlags::PRIVATE)
        .map_err(|e| merr(&format!("{what} (make private)"), e))
}

/// Mounts a fresh rootfs for `container_id` from `image` and leases the image so GC keeps
/// its layers. Returns the mount point (`containers/<id>/merged`).
pub fn mount_rootfs(store: &Store, image: &ImageRecord, container_id: &str) -> Result<PathBuf> {
    let merged = mount_rootfs_opts(store, image, container_id, false)?;
    crate::store::sync_paths(&[&store.lease_path(container_id)?])?;
    Ok(merged)
}

/// [`mount_rootfs`]; `volatile` mounts it with overlay's `volatile` option (see
/// [`mount_overlay_opts`]): for a container removed at its exit (`run --rm`), whose unmount
/// then does not sync the store's filesystem. Such a rootfs cannot be remounted. The
/// lease is written but not synced: the caller syncs it with its own records, in one
/// batch ([`crate::store::sync_paths`] of [`Store::lease_path`]).
pub fn mount_rootfs_opts(
    store: &Store,
    image: &ImageRecord,
    container_id: &str,
    volatile: bool,
) -> Result<PathBuf> {
    let _gc = store.lock_shared()?;
    let dir = container_dir(store, container_id)?;
    let mut b = std::fs::DirBuilder::new();
    b.mode(0o700);
    b.create(&dir).map_err(|e| Error::io(&dir, e))?;
    let (upper, work, merged) = (dir.join("upper"), dir.join("work"), dir.join("merged"));
    for d in [&upper, &work, &merged] {
        b.create(d).map_err(|e| Error::io(d, e))?;
    }
    std::fs::set_permissions(&upper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(|e| Error::io(&upper, e))?;
    store.lease_opts(container_id, image, false)?;
    let lowers = lower_dirs(store, &image.chain_ids)?;
    if lowers.is_empty() {
        return Err(Error::Invalid(format!(
            "image {} has no layers",
            image.manifest
        )));
    }
    mount_overlay_opts(&lowers, &upper, &work, &merged, volatile)?;
    Ok(merged)
}

/// Mounts the rootfs of a container made by [`mount_rootfs`] again (after
/// [`unmount_rootfs`] without `remove`), keeping its upper layer. Mounting an already
/// mounted rootfs is a no-op. Returns the mount point.
pub fn remount_rootfs(store: &Store, image: &ImageRecord, container_id: &str) -> Result<PathBuf> {
    let _gc = store.lock_shared()?;
    let dir = container_dir(store, container_id)?;
    let (upper, work, merged) = (dir.join("upper"), dir.join("work"), dir.join("merged"));
    if is_mount_point(&merged)? {
        return Ok(merged);
    }
    store.lease(container_id, image)?;
    let lowers = lower_dirs(store, &image.chain_ids)?;
    mount_overlay(&lowers, &upper, &work, &merged)?;
    Ok(merged)
}

/// True when `p` is the root of a mount (its mount ID differs from its parent's).
pub fn is_mount_point(p: &Path) -> Result<bool> {
    use rustix::fs::{statx, AtFlags, StatxFlags, CWD};
    let id = |q: &Path| -> Result<u64> {
        let s = statx(CWD, q, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::MNT_ID)
            .map_err(|e| Error::io(q, e.into()))?;
        Ok(s.stx_mnt_id)
    };
    let parent = p.parent().unwrap_or(Path::new("/"));
    Ok(id(p)? != id(parent)?)
}

/// Unmounts a container's rootfs. With `remove`, also deletes its upper layer and lease.
pub fn unmount_rootfs(store: &Store, container_id: &str, remove: bool) -> Result<()> {
    let dir = container_dir(store, container_id)?;
    let merged = dir.join("merged");
    let mut flags = m::UnmountFlags::empty();
    let mut tries = 0;
    loop {
        match m::unmount(&merged, flags) {
            Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => break,
            // In a threaded caller (berth serve, compose) a child forked by another thread
            // holds our fds into this rootfs until its exec closes them (CLOEXEC): busy for
            // a moment. Wait for it; in the end detach, and the last user takes it along.
            Err(rustix::io::Errno::BUSY) if flags.is_empty() => {
                tries += 1;
                if tries == 25 {
                    flags = m::UnmountFlags::DETACH;
                } else {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
            Err(e) => {
                return Err(Error::Mount(
                    format!("unmount {}", merged.display()),
                    e.into(),
                ))
            }
        }
    }
    if remove {
        crate::store::remove_tree(&dir)?;
        store.release(container_id)?;
    }
    Ok(())
}
