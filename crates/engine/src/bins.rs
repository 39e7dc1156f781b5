//! Finding the helper binaries: `$BERTH_<NAME>` (e.g. BERTH_MONITOR), else next to the
//! running `berth`, else PATH.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Resolves `name` (e.g. "berth-monitor") to an absolute path.
pub fn locate(name: &str) -> Result<PathBuf> {
    let var = format!(
        "BERTH_{}",
        name.trim_start_matches("berth-")
            .to_uppercase()
            .replace('-', "_")
    );
    if let Some(p) = std::env::var_os(&var) {
        return Ok(PathBuf::from(p));
    }
    if let Ok(exe) = std::env::current_exe() {
        let p = exe.with_file_name(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    find_in_path(name)
        .ok_or_else(|| Error::Invalid(format!("{name} not found next to berth or in PATH")))
}

/// A runtime given as a path or a name found in PATH, made absolute.
pub fn resolve_runtime(spec: Option<&str>) -> Result<PathBuf> {
    match spec {
        None => locate("berth-runtime"),
        Some(s) if s.contains('/') => {
            let p = Path::new(s);
            let abs = std::path::absolute(p).map_err(|e| Error::io(p, e))?;
            if !abs.is_file() {
                return Err(Error::Invalid(format!("runtime {s} not found")));
            }
            Ok(abs)
        }
        Some(s) => find_in_path(s)
            .ok_or_else(|| Error::Invalid(format!("runtime {s:?} not found in PATH"))),
    }
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The first line a helper writes on its ready pipe ("ok", "error: MSG"), without
/// waiting for EOF: a server keeps the pipe open while it serves. Empty when the writer
/// closed it without a line.
pub fn read_ready_line(r: std::os::fd::OwnedFd) -> Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::from(r);
    let mut line = Vec::new();
    let mut b = [0u8; 512];
    loop {
        match f.read(&mut b) {
            Ok(0) => break,
            Ok(n) => {
                line.extend_from_slice(&b[..n]);
                if line.contains(&b'\n') || line.len() > 64 * 1024 {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("ready pipe", e)),
        }
    }
    let line = String::from_utf8_lossy(&line);
    Ok(line.lines().next().unwrap_or("").trim_end().to_string())
}
