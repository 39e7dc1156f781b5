//! Small file helpers shared by the v1 and v2 code.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::Error;

/// Reads `dir/file` as a string.
pub(crate) fn read(dir: &Path, file: &str) -> Result<String, Error> {
    let path = dir.join(file);
    fs::read_to_string(&path).map_err(|source| Error::Read { path, source })
}

/// Reads `dir/file` and trims surrounding whitespace.
pub(crate) fn read_trim(dir: &Path, file: &str) -> Result<String, Error> {
    read(dir, file).map(|s| s.trim().to_string())
}

/// Reads `dir/file` if it exists.
pub(crate) fn read_opt(dir: &Path, file: &str) -> Result<Option<String>, Error> {
    let path = dir.join(file);
    match fs::read_to_string(&path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Read { path, source }),
    }
}

/// Parses a whole file as one unsigned number; "max" reads as `u64::MAX`.
pub(crate) fn read_u64(dir: &Path, file: &str) -> Result<u64, Error> {
    let s = read_trim(dir, file)?;
    parse_u64(&s).ok_or_else(|| Error::Parse {
        what: "cgroup file",
        text: s.clone(),
        reason: format!("{} is not a number", dir.join(file).display()),
    })
}

/// Like [`read_u64`] but a missing file reads as `None`.
pub(crate) fn read_u64_opt(dir: &Path, file: &str) -> Result<Option<u64>, Error> {
    if !dir.join(file).exists() {
        return Ok(None);
    }
    read_u64(dir, file).map(Some)
}

pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    let s = s.trim();
    if s == "max" {
        return Some(u64::MAX);
    }
    s.parse().ok()
}

/// Writes `value` to an existing cgroup file (never creates it).
pub(crate) fn write(dir: &Path, file: &str, value: &str) -> Result<(), Error> {
    let path = dir.join(file);
    let res = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .and_then(|mut f| io::Write::write_all(&mut f, value.as_bytes()));
    res.map_err(|source| Error::Write {
        path,
        value: value.to_string(),
        source,
    })
}

/// Parses "key value" lines (cpu.stat, memory.stat, memory.events, ...).
pub(crate) fn parse_flat_keyed(text: &str) -> std::collections::BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = parse_u64(it.next()?)?;
            Some((k.to_string(), v))
        })
        .collect()
}

/// Creates `dir` and any missing ancestors below `stop`, returning the ones it created
/// (outermost first). Retries when a concurrent destroy removes a parent under us.
pub(crate) fn mkdir_all(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut missing = Vec::new();
    let mut cur = dir;
    while !cur.exists() {
        missing.push(cur.to_path_buf());
        match cur.parent() {
            Some(p) => cur = p,
            None => break,
        }
    }
    missing.reverse();
    let mut created = Vec::new();
    let mut attempts = 0;
    let mut i = 0;
    while i < missing.len() {
        match fs::create_dir(&missing[i]) {
            Ok(()) => {
                created.push(missing[i].clone());
                i += 1;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => i += 1,
            // A parent vanished (another manager's destroy removed an empty parent).
            Err(e) if e.kind() == io::ErrorKind::NotFound && attempts < 10 && i > 0 => {
                attempts += 1;
                i -= 1;
            }
            Err(source) => {
                return Err(Error::Mkdir {
                    path: missing[i].clone(),
                    source,
                })
            }
        }
    }
    Ok(created)
}

/// Parses a cpuset list such as "0-3,5,7-8" into sorted, deduplicated numbers.
pub fn parse_cpuset_list(s: &str) -> Result<Vec<u16>, Error> {
    let bad = |reason: &str| Error::Parse {
        what: "cpuset list",
        text: s.to_string(),
        reason: reason.to_string(),
    };
    let mut out = Vec::new();
    let t = s.trim();
    if t.is_empty() {
        return Ok(out);
    }
    for part in t.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(bad("empty element"));
        }
        match part.split_once('-') {
            Some((a, b)) => {
                let a: u16 = a
                    .trim()
                    .parse()
                    .map_err(|_| bad("range start is not a number"))?;
                let b: u16 = b
                    .trim()
                    .parse()
                    .map_err(|_| bad("range end is not a number"))?;
                if a > b {
                    return Err(bad("range start is above its end"));
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().map_err(|_| bad("element is not a number"))?),
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuset_lists() {
        assert_eq!(parse_cpuset_list("0-3,5").unwrap(), vec![0, 1, 2, 3, 5]);
        assert_eq!(parse_cpuset_list("7,1-2,2\n").unwrap(), vec![1, 2, 7]);
        assert_eq!(parse_cpuset_list("").unwrap(), Vec::<u16>::new());
        assert!(parse_cpuset_list("3-1").is_err());
        assert!(parse_cpuset_list("a").is_err());
        assert!(parse_cpuset_list("1,,2").is_err());
        assert!(parse_cpuset_list("1-").is_err());
        assert!(parse_cpuset_list("70000").is_err());
    }

    #[test]
    fn flat_keyed() {
        let m = parse_flat_keyed("nr_periods 5\nnr_throttled 2\nbad\nx max\n");
        assert_eq!(m["nr_periods"], 5);
        assert_eq!(m["nr_throttled"], 2);
        assert_eq!(m["x"], u64::MAX);
        assert!(!m.contains_key("bad"));
    }

    #[test]
    fn mkdir_all_reports_created() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a/b/c");
        let c = mkdir_all(&d).unwrap();
        assert_eq!(c, vec![t.path().join("a"), t.path().join("a/b"), d.clone()]);
        assert!(mkdir_all(&d).unwrap().is_empty());
    }
}
