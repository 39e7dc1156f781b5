//! `--pid container:NAME` and `--ipc container:NAME`: the other container's namespaces,
//! checked at create (it must exist) and joined at each start (it must run: its init's
//! /proc/PID/ns path goes into the bundle's spec, as net::attach does for the network).

use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::options::{CreateOptions, NsMode};
use crate::record::ContainerConfig;

/// The kinds that can name another container: (flag, OCI type, /proc/PID/ns name, docker's word).
const JOINABLE: [(&str, &str, &str, &str); 2] =
    [("pid", "pid", "pid", "PID"), ("ipc", "ipc", "ipc", "IPC")];

fn mode<'a>(o: &'a CreateOptions, flag: &str) -> &'a NsMode {
    match flag {
        "pid" => &o.namespaces.pid,
        _ => &o.namespaces.ipc,
    }
}

/// Create-time checks: a named container exists; an IPC donor is shareable (or on the
/// host's IPC namespace), as docker's default "private" IPC cannot be joined.
pub fn check_create(layout: &Layout, opts: &CreateOptions) -> Result<()> {
    for (flag, ..) in JOINABLE {
        if let NsMode::Container(r) = mode(opts, flag) {
            let other = crate::lookup::resolve(layout, r)?;
            if flag == "ipc" {
                let cfg = layout.load_config(&other)?;
                if !matches!(cfg.options.namespaces.ipc, NsMode::Shareable | NsMode::Host) {
                    return Err(Error::Invalid(format!(
                        "cannot join IPC of container {r}: non-shareable IPC (hint: use \
                         --ipc shareable for the donor container)"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Start-time: points the spec's pid/ipc namespaces at the named containers' inits.
pub fn join(layout: &Layout, cfg: &ContainerConfig) -> Result<()> {
    let mut paths = Vec::new();
    for (flag, oci, proc_ns, word) in JOINABLE {
        if let NsMode::Container(r) = mode(&cfg.options, flag) {
            let other = crate::lookup::resolve(layout, r)?;
            let s = crate::status::current(layout, &other)?;
            if !crate::status::init_alive(&s) {
                return Err(Error::Invalid(format!(
                    "cannot join {word} of a non running container: {r}"
                )));
            }
            paths.push((oci, format!("/proc/{}/ns/{proc_ns}", s.pid)));
        }
    }
    // /dev/shm shared as docker shares it: the donor's host tmpfs, bound.
    let shm = match &cfg.options.namespaces.ipc {
        NsMode::Shareable => {
            let dir = shm_dir(layout, &cfg.id);
            let size = cfg.options.resources.shm_size.unwrap_or(64 << 20);
            ensure_shm(&dir, size)?;
            Some(dir)
        }
        NsMode::Container(r) => {
            let other = crate::lookup::resolve(layout, r)?;
            let dir = shm_dir(layout, &other);
            // A donor on the host's IPC namespace shares the host's /dev/shm (the spec's).
            berth_image::overlay::is_mount_point(&dir)
                .unwrap_or(false)
                .then_some(dir)
        }
        _ => None,
    };
    if paths.is_empty() && shm.is_none() {
        return Ok(());
    }
    let spec_path = layout.bundle_dir(&cfg.id).join("config.json");
    let mut spec: serde_json::Value = crate::record::load_json(&spec_path)?;
    if let Some(nss) = spec["linux"]["namespaces"].as_array_mut() {
        for (oci, path) in paths {
            nss.retain(|n| n["type"] != oci);
            nss.push(serde_json::json!({"type": oci, "path": path}));
        }
    }
    if let (Some(dir), Some(mounts)) = (shm, spec["mounts"].as_array_mut()) {
        for m in mounts.iter_mut().filter(|m| m["destination"] == "/dev/shm") {
            *m = serde_json::json!({"destination": "/dev/shm", "type": "bind",
                "source": dir, "options": ["rbind", "rprivate", "nosuid", "nodev", "noexec"]});
        }
    }
    let data = serde_json::to_vec_pretty(&spec).map_err(|e| Error::Json(spec_path.clone(), e))?;
    crate::record::write_nosync(&spec_path, &data)
}

/// A shareable container's /dev/shm: a tmpfs on the host under its directory (docker's
/// `mounts/shm`), bound into it and into the containers that join its IPC namespace (a
/// container's own tmpfs lives in its mount namespace, where nothing else can bind it).
pub fn shm_dir(layout: &Layout, id: &str) -> std::path::PathBuf {
    layout.container_dir(id).join("shm")
}

fn ensure_shm(dir: &std::path::Path, size: u64) -> Result<()> {
    use rustix::mount::{mount, mount_change, MountFlags, MountPropagationFlags};
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    if berth_image::overlay::is_mount_point(dir).unwrap_or(false) {
        return Ok(());
    }
    let data = std::ffi::CString::new(format!("mode=1777,size={size}"))
        .map_err(|_| Error::Invalid("shm size".into()))?;
    mount(
        "shm",
        dir,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        Some(data.as_c_str()),
    )
    .map_err(|e| Error::io(dir, e.into()))?;
    // Not copied into containers' mount namespaces as they are made (see the rootfs).
    mount_change(dir, MountPropagationFlags::PRIVATE).map_err(|e| Error::io(dir, e.into()))
}

/// Unmounts a shareable container's /dev/shm (at its removal); nothing if there is none.
pub fn unmount_shm(layout: &Layout, id: &str) {
    let _ = rustix::mount::unmount(shm_dir(layout, id), rustix::mount::UnmountFlags::DETACH);
}
