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
    if paths.is_empty() {
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
    let data = serde_json::to_vec_pretty(&spec).map_err(|e| Error::Json(spec_path.clone(), e))?;
    crate::record::write_nosync(&spec_path, &data)
}
