//! Secrets and configs in a service's containers: each a read-only file bind-mounted at
//! its target, as docker compose does without swarm. A `file:` source with no uid, gid
//! or mode is the user's file itself; any other (an environment variable's value, a
//! config's `content:`, a file with an owner or mode) is written under the project's
//! directory (`files/`, root's alone), with the uid, gid and mode asked (root and 0444 by
//! default), and bound from there. `down` removes it with the project's directory.

use crate::compose::{FileMount, FileSource, Project, Service};
use crate::state::ProjectDir;
use crate::{Error, Result};
use berth_engine::layout::Layout;
use berth_engine::options::{CreateOptions, MountSpec};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Adds the bind mounts of `s`'s secrets and configs to `o`, writing the files they
/// need first.
pub fn mount(layout: &Layout, p: &Project, s: &Service, o: &mut CreateOptions) -> Result<()> {
    let kinds = [
        ("secret", &s.secrets, &p.secrets),
        ("config", &s.configs, &p.configs),
    ];
    for (kind, mounts, defs) in kinds {
        for m in mounts {
            let def = defs.get(&m.source).ok_or_else(|| {
                Error::Invalid(format!(
                    "service {:?} refers to undefined {kind} {}",
                    s.name, m.source
                ))
            })?;
            let source = materialise(layout, p, kind, m, def)?;
            o.mounts.push(MountSpec::Bind {
                source: source.to_string_lossy().into_owned(),
                target: m.target.clone(),
                read_only: true,
                propagation: None,
                create_source: false,
            });
        }
    }
    Ok(())
}

/// The host file to bind for `m`.
fn materialise(
    layout: &Layout,
    p: &Project,
    kind: &str,
    m: &FileMount,
    def: &FileSource,
) -> Result<PathBuf> {
    let plain = m.uid.is_none() && m.gid.is_none() && m.mode.is_none();
    let content = match def {
        FileSource::File(f) if plain => {
            if !f.is_file() {
                return Err(Error::Invalid(format!(
                    "{kind} {}: file {} not found",
                    m.source,
                    f.display()
                )));
            }
            return Ok(f.clone());
        }
        FileSource::File(f) => std::fs::read(f).map_err(|e| {
            Error::Invalid(format!("{kind} {}: read {}: {e}", m.source, f.display()))
        })?,
        FileSource::Content(c) | FileSource::Env { value: c, .. } => c.as_bytes().to_vec(),
    };
    let (uid, gid, mode) = (
        m.uid.unwrap_or(0),
        m.gid.unwrap_or(0),
        m.mode.unwrap_or(0o444),
    );
    let dir = ProjectDir::new(layout, &p.name)
        .dir
        .join("files")
        .join(kind);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| Error::Io(dir.clone(), e))?;
    let path = dir.join(format!("{}-{uid}-{gid}-{mode:o}", m.source));
    write_file(&path, &content, uid, gid, mode)?;
    Ok(path)
}

/// Writes `path` whole (a new file renamed over it, so a running container's mount keeps
/// the file it had).
fn write_file(path: &Path, content: &[u8], uid: u32, gid: u32, mode: u32) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let io = |e: std::io::Error| Error::Io(path.to_path_buf(), e);
    let r = (|| {
        std::fs::write(&tmp, content)?;
        std::os::unix::fs::chown(&tmp, Some(uid), Some(gid))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
        std::fs::rename(&tmp, path)
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r.map_err(io)
}
