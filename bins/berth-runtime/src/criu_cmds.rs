//! `checkpoint` and `restore`: runc 1.1's argument checks, in its order and
//! words (checkpoint.go, restore.go), then criu through the runtime library.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use berth_runtime_core::container::Container;
use berth_runtime_core::criu;
use berth_runtime_core::state::Root;
use berth_runtime_core::state::Status;

use crate::args::{CheckpointArgs, Global, RestoreArgs};

/// The images dir (default ./checkpoint, made here as runc's MkdirAll) and
/// the parent images dir, which must be a directory relative to it.
fn image_paths(image: Option<&Path>, parent: Option<&str>) -> Result<(PathBuf, Option<String>)> {
    let image = match image {
        Some(p) => p.to_path_buf(),
        None => std::env::current_dir()
            .context("current directory")?
            .join("checkpoint"),
    };
    std::fs::create_dir_all(&image).with_context(|| format!("mkdir {}", image.display()))?;
    let Some(parent) = parent.filter(|p| !p.is_empty()) else {
        return Ok((image, None));
    };
    if Path::new(parent).is_absolute() {
        bail!("--parent-path must be relative");
    }
    let real = image.join(parent);
    match std::fs::metadata(&real) {
        Ok(m) if m.is_dir() => Ok((image, Some(parent.to_string()))),
        Ok(_) => bail!("invalid --parent-path: {}: not a directory", real.display()),
        Err(e) => bail!(
            "invalid --parent-path: stat {}: {}",
            real.display(),
            criu::go_words(&e)
        ),
    }
}

/// ADDRESS:PORT (Go's net.SplitHostPort, `[v6]:port` too).
fn page_server(v: &str) -> Result<(String, u16)> {
    let usage = "Use --page-server ADDRESS:PORT to specify page server";
    let (host, port) = if let Some(rest) = v.strip_prefix('[') {
        let (h, p) = rest.split_once(']').context(usage)?;
        (h, p.strip_prefix(':').context(usage)?)
    } else {
        let (h, p) = v.rsplit_once(':').context(usage)?;
        if h.contains(':') {
            bail!(usage);
        }
        (h, p)
    };
    if host.is_empty() || port.is_empty() {
        bail!(usage);
    }
    let port: u16 = port.parse().ok().context("Invalid port number")?;
    Ok((host.to_string(), port))
}

fn cgroups_mode(m: Option<&str>) -> Result<Option<String>> {
    match m.filter(|m| !m.is_empty()) {
        None => Ok(None),
        Some(m @ ("soft" | "full" | "strict")) => Ok(Some(m.to_string())),
        Some(_) => bail!("Invalid manage cgroups mode"),
    }
}

/// runc: only the network namespace can be left empty (and always is).
fn empty_ns(list: &[String]) -> Result<Vec<String>> {
    for ns in list {
        if ns != "network" {
            bail!("namespace {ns:?} is not supported");
        }
    }
    Ok(vec!["net".into()])
}

pub fn checkpoint(root: &Root, g: &Global, a: &CheckpointArgs) -> Result<()> {
    let c = Container::open(root, &a.id)?;
    match c.status() {
        s @ (Status::Created | Status::Stopped | Status::Creating) => {
            bail!("Container cannot be checkpointed in {} state", s.as_str())
        }
        Status::Running | Status::Paused => {}
    }
    let (image_path, parent_path) = image_paths(a.image_path.as_deref(), a.parent_path.as_deref())?;
    let page_server = a
        .page_server
        .as_deref()
        .filter(|p| !p.is_empty())
        .map(page_server)
        .transpose()?;
    let opts = criu::Opts {
        criu: g.criu.clone(),
        image_path,
        work_path: a.work_path.clone(),
        parent_path,
        leave_running: a.leave_running,
        tcp_established: a.tcp_established,
        ext_unix_sk: a.ext_unix_sk,
        shell_job: a.shell_job,
        file_locks: a.file_locks,
        pre_dump: a.pre_dump,
        auto_dedup: a.auto_dedup,
        lazy_pages: a.lazy_pages,
        status_fd: a.status_fd,
        page_server,
        manage_cgroups_mode: cgroups_mode(a.manage_cgroups_mode.as_deref())?,
        empty_ns: empty_ns(&a.empty_ns)?,
    };
    let cfg = berth_runtime_core::exec::container_config(&c)?;
    criu::checkpoint(c, &cfg, &opts)?;
    Ok(())
}

/// The container's exit status (not detached), or 0.
pub fn restore(root: &Root, g: &Global, a: &RestoreArgs) -> Result<i32> {
    let (image_path, _) = image_paths(a.image_path.as_deref(), None)?;
    let empty_ns = empty_ns(&a.empty_ns)?;
    let manage_cgroups_mode = cgroups_mode(a.manage_cgroups_mode.as_deref())?;
    if a.lsm_profile.is_some() || a.lsm_mount_context.is_some() {
        bail!(
            "--lsm-profile and --lsm-mount-context are not supported: no SELinux or AppArmor here"
        );
    }
    if a.console_socket.is_some() {
        bail!(
            "--console-socket is not supported by restore: a terminal is restored with --shell-job"
        );
    }
    let bundle = berth_runtime_core::spawn::absolute_bundle(&a.bundle)?;
    let (cfg, raw) = berth_oci::load_with_bytes(&bundle)?;
    let opts = criu::Opts {
        criu: g.criu.clone(),
        image_path,
        work_path: a.work_path.clone(),
        tcp_established: a.tcp_established,
        ext_unix_sk: a.ext_unix_sk,
        shell_job: a.shell_job,
        file_locks: a.file_locks,
        auto_dedup: a.auto_dedup,
        lazy_pages: a.lazy_pages,
        status_fd: -1,
        manage_cgroups_mode,
        empty_ns,
        ..Default::default()
    };
    let r = criu::RestoreOpts {
        id: a.id.clone(),
        bundle,
        detach: a.detach,
        pid_file: a.pid_file.clone(),
        no_subreaper: a.no_subreaper,
        systemd_cgroup: g.systemd_cgroup,
    };
    Ok(criu::restore(root, cfg, &raw, &r, &opts)?.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_server_as_go_splits_it() {
        assert_eq!(page_server("a:1").unwrap(), ("a".into(), 1));
        assert_eq!(page_server("[::1]:2").unwrap(), ("::1".into(), 2));
        for bad in ["a", ":1", "a:", "a:b:1"] {
            assert_eq!(
                page_server(bad).unwrap_err().to_string(),
                "Use --page-server ADDRESS:PORT to specify page server",
                "{bad}"
            );
        }
        assert_eq!(
            page_server("a:x").unwrap_err().to_string(),
            "Invalid port number"
        );
    }
}
