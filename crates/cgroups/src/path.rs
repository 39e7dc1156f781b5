//! Interpreting the OCI `cgroupsPath`.

use std::path::Path;

use crate::Error;

/// A parsed `cgroupsPath`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupPath {
    /// "/a/b": relative to each hierarchy's root. Stored normalised, with a leading '/'.
    Absolute(String),
    /// "a/b": relative to the calling process's own cgroup in each hierarchy (as runc).
    Relative(String),
}

/// Normalises a cgroup path: drops empty and "." components, refuses "..", NUL and
/// newlines (a path must never climb out of its hierarchy).
pub fn normalize(path: &str) -> Result<String, Error> {
    let bad = |reason: &str| Error::InvalidPath {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    if path.contains('\0') || path.contains('\n') {
        return Err(bad("contains NUL or newline"));
    }
    let mut parts = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(bad("contains a '..' component")),
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// Expands a systemd slice name like runc: "a-b.slice" → "/a.slice/a-b.slice".
pub fn expand_slice(slice: &str) -> Result<String, Error> {
    let bad = |reason: &str| Error::InvalidPath {
        path: slice.to_string(),
        reason: reason.to_string(),
    };
    let name = slice
        .strip_suffix(".slice")
        .ok_or_else(|| bad("a slice name must end in \".slice\""))?;
    if slice.contains('/') {
        return Err(bad("a slice name cannot contain '/'"));
    }
    if name == "-" {
        return Ok("/".to_string());
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for comp in name.split('-') {
        if comp.is_empty() {
            return Err(bad("a slice name has an empty '-' component"));
        }
        path.push('/');
        path.push_str(&prefix);
        path.push_str(comp);
        path.push_str(".slice");
        prefix.push_str(comp);
        prefix.push('-');
    }
    Ok(path)
}

/// Parses a systemd "slice:prefix:name" cgroupsPath into the cgroupfs path systemd
/// would give the unit ("/system.slice/berth-ID.scope").
pub fn parse_systemd(path: &str) -> Result<String, Error> {
    let parts: Vec<&str> = path.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        return Err(Error::InvalidPath {
            path: path.to_string(),
            reason: "a systemd cgroupsPath has the form slice:prefix:name".into(),
        });
    };
    if name.is_empty() || name.contains('/') {
        return Err(Error::InvalidPath {
            path: path.to_string(),
            reason: "the unit name part is empty or contains '/'".into(),
        });
    }
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    let base = expand_slice(slice)?;
    // A name ending in ".slice" is itself the unit (runc's getUnitName).
    let unit = if name.ends_with(".slice") {
        name.to_string()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    Ok(format!("{}/{unit}", base.trim_end_matches('/')))
}

/// Resolves the configuration into a [`CgroupPath`]. `systemd_dir` is normally
/// /run/systemd/system (a parameter so tests can fake it).
pub fn resolve(cfg: &crate::CgroupConfig, systemd_dir: &Path) -> Result<CgroupPath, Error> {
    if cfg.systemd {
        let spec = match cfg.path {
            Some(p) => p.to_string(),
            None => format!("system.slice:berth:{}", cfg.id),
        };
        if !systemd_dir.is_dir() {
            return Err(Error::SystemdUnavailable { path: spec });
        }
        return Ok(CgroupPath::Absolute(format!(
            "/{}",
            normalize(&parse_systemd(&spec)?)?
        )));
    }
    match cfg.path {
        None => {
            let id = normalize(cfg.id)?;
            if id.is_empty() || id.contains('/') {
                return Err(Error::InvalidPath {
                    path: cfg.id.to_string(),
                    reason: "a container id used as cgroup name must be one path component".into(),
                });
            }
            Ok(CgroupPath::Absolute(format!("/berth/{id}")))
        }
        Some(p) if p.starts_with('/') => Ok(CgroupPath::Absolute(format!("/{}", normalize(p)?))),
        Some(p) => {
            let n = normalize(p)?;
            if n.is_empty() {
                return Err(Error::InvalidPath {
                    path: p.to_string(),
                    reason: "empty relative path".into(),
                });
            }
            Ok(CgroupPath::Relative(n))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CgroupConfig;

    fn cfg<'a>(path: Option<&'a str>, systemd: bool) -> CgroupConfig<'a> {
        CgroupConfig {
            path,
            id: "c1",
            systemd,
        }
    }

    #[test]
    fn slices() {
        assert_eq!(expand_slice("system.slice").unwrap(), "/system.slice");
        assert_eq!(
            expand_slice("a-b-c.slice").unwrap(),
            "/a.slice/a-b.slice/a-b-c.slice"
        );
        assert_eq!(expand_slice("-.slice").unwrap(), "/");
        assert!(expand_slice("foo").is_err());
        assert!(expand_slice("a--b.slice").is_err());
        assert!(expand_slice("a/b.slice").is_err());
    }

    #[test]
    fn systemd_paths() {
        assert_eq!(
            parse_systemd("system.slice:docker:abc").unwrap(),
            "/system.slice/docker-abc.scope"
        );
        assert_eq!(
            parse_systemd("user-1000.slice::abc").unwrap(),
            "/user.slice/user-1000.slice/abc.scope"
        );
        assert_eq!(
            parse_systemd(":berth:x").unwrap(),
            "/system.slice/berth-x.scope"
        );
        assert_eq!(
            parse_systemd("machine.slice:p:sub.slice").unwrap(),
            "/machine.slice/sub.slice"
        );
        assert!(parse_systemd("a:b").is_err());
        assert!(parse_systemd("a.slice:b:c:d").is_err());
        assert!(parse_systemd("a.slice:b:").is_err());
        assert!(parse_systemd("nope:b:c").is_err());
    }

    #[test]
    fn resolve_forms() {
        let t = tempfile::tempdir().unwrap();
        let none = t.path().join("absent");
        assert_eq!(
            resolve(&cfg(Some("/a//b/./c"), false), &none).unwrap(),
            CgroupPath::Absolute("/a/b/c".into())
        );
        assert_eq!(
            resolve(&cfg(Some("x/y"), false), &none).unwrap(),
            CgroupPath::Relative("x/y".into())
        );
        assert_eq!(
            resolve(&cfg(None, false), &none).unwrap(),
            CgroupPath::Absolute("/berth/c1".into())
        );
        assert!(matches!(
            resolve(&cfg(Some("/a/../../etc"), false), &none),
            Err(Error::InvalidPath { .. })
        ));
        assert!(matches!(
            resolve(&cfg(Some("system.slice:berth:c1"), true), &none),
            Err(Error::SystemdUnavailable { .. })
        ));
        assert_eq!(
            resolve(&cfg(Some("system.slice:berth:c1"), true), t.path()).unwrap(),
            CgroupPath::Absolute("/system.slice/berth-c1.scope".into())
        );
        assert_eq!(
            resolve(&cfg(None, true), t.path()).unwrap(),
            CgroupPath::Absolute("/system.slice/berth-c1.scope".into())
        );
        let bad_id = CgroupConfig {
            path: None,
            id: "../x",
            systemd: false,
        };
        assert!(resolve(&bad_id, &none).is_err());
    }
}
