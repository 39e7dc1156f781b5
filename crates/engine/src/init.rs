//! `--init`: Berth's static pid 1 (init/berth-init.rs, built by build.rs), embedded here
//! and written once under the storage root, where the spec bind-mounts it at /dev/init.

use crate::error::{Error, Result};
use crate::layout::Layout;
use std::path::PathBuf;

/// The static berth-init binary.
pub static INIT: &[u8] = include_bytes!(env!("BERTH_INIT_PATH"));

/// Writes the embedded init to `R/engine/bin/berth-init-<sha256 prefix>` (0755, atomic)
/// unless it is there already; returns its path. The content hash in the name means a
/// newer berth never reuses an older init, and a file once there never changes.
pub fn ensure_init(layout: &Layout) -> Result<PathBuf> {
    let digest = berth_image::store::sha256_digest(INIT);
    let hex = digest.trim_start_matches("sha256:");
    let dir = layout.engine_dir().join("bin");
    let p = dir.join(format!("berth-init-{}", &hex[..16]));
    if std::fs::metadata(&p).is_ok_and(|m| m.len() == INIT.len() as u64) {
        return Ok(p);
    }
    crate::layout::mkdir_private(&dir)?;
    // 0700 dir, 0755 file: only root reaches it; the bind mount makes it readable inside.
    let mut t = tempfile::Builder::new()
        .prefix(".berth-init")
        .tempfile_in(&dir)
        .map_err(|e| Error::io(&dir, e))?;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    t.write_all(INIT)
        .and_then(|_| {
            t.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o755))
        })
        .and_then(|_| t.as_file().sync_all())
        .map_err(|e| Error::io(t.path(), e))?;
    t.persist(&p).map_err(|e| Error::io(&p, e.error))?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_once_executable() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::open(d.path()).unwrap();
        let p = ensure_init(&l).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), INIT);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o755
        );
        assert_eq!(ensure_init(&l).unwrap(), p);
        // Runs as a plain program too: exit status passes through.
        let st = std::process::Command::new(&p)
            .args(["--", "/bin/sh", "-c", "exit 7"])
            .status()
            .unwrap();
        assert_eq!(st.code(), Some(7));
        let st = std::process::Command::new(&p)
            .args(["--", "/bin/sh", "-c", "kill -9 $$"])
            .status()
            .unwrap();
        assert_eq!(st.code(), Some(137));
    }
}
