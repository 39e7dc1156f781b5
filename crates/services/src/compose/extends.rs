//! `extends:` as compose-go applies it: within each file, before the files are merged, a
//! service that extends another (of the same file, or of `file:`, relative to the file
//! that names it) becomes the other's definition with its own merged over it, under the
//! rules that merge several files. The base's relative paths (build context, env_file,
//! label_file, bind sources) stay relative to the base's own file: they are made absolute.

use serde_norway::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::interp::key_string;
use super::merge;

const KEY: &str = "extends";

/// What a service extends: (file, service).
fn target(v: &Value, at: &str) -> Result<(Option<String>, String), String> {
    match v {
        Value::String(s) => Ok((None, s.clone())),
        Value::Mapping(m) => {
            for k in m.keys() {
                let k = key_string(k);
                if k != "service" && k != "file" {
                    return Err(format!("{at} Additional property {k} is not allowed"));
                }
            }
            let service = match m.get("service") {
                Some(Value::String(s)) => s.clone(),
                _ => return Err(format!("{at}.service must be a string")),
            };
            let file = match m.get("file") {
                None | Some(Value::Null) => None,
                Some(Value::String(f)) => Some(f.clone()),
                Some(_) => return Err(format!("{at}.file must be a string")),
            };
            Ok((file, service))
        }
        _ => Err(format!("{at} must be a string or a mapping")),
    }
}

/// Reads a file named by `extends.file` as [`super::parse_file`] reads a compose file:
/// YAML, merge keys, interpolation.
pub type Reader<'a> = dyn Fn(&Path) -> Result<Value, String> + 'a;

/// Applies every `extends` of `tree` (the file `file`).
pub fn apply(tree: &mut Value, file: &Path, read: &Reader) -> Result<(), String> {
    let mut cache: BTreeMap<PathBuf, Value> = BTreeMap::new();
    let names: Vec<String> = match tree.get("services") {
        Some(Value::Mapping(m)) => m.keys().map(key_string).collect(),
        _ => return Ok(()),
    };
    for name in names {
        let mut chain = Vec::new();
        let resolved = resolve(tree, file, &name, read, &mut cache, &mut chain)?;
        if let Some(Value::Mapping(m)) = tree.get_mut("services") {
            m.insert(Value::String(name), resolved);
        }
    }
    Ok(())
}

/// The service `name` of `tree` (the file `file`) with its `extends` applied.
fn resolve(
    tree: &Value,
    file: &Path,
    name: &str,
    read: &Reader,
    cache: &mut BTreeMap<PathBuf, Value>,
    chain: &mut Vec<(PathBuf, String)>,
) -> Result<Value, String> {
    let at = format!("services.{name}");
    let here = (file.to_path_buf(), name.to_string());
    if chain.contains(&here) {
        let path: Vec<String> = chain
            .iter()
            .chain(std::iter::once(&here))
            .map(|(_, s)| s.clone())
            .collect();
        return Err(format!(
            "{at}.{KEY}: circular reference: {}",
            path.join(" -> ")
        ));
    }
    let svc = tree
        .get("services")
        .and_then(|s| s.get(name))
        .cloned()
        .ok_or_else(|| format!("service {name:?} not found in {}", file.display()))?;
    let Value::Mapping(mut svc) = svc else {
        return Ok(svc);
    };
    let Some(ext) = svc.remove(KEY) else {
        return Ok(Value::Mapping(svc));
    };
    let (base_file, base_name) = target(&ext, &format!("{at}.{KEY}"))?;
    let dir = file.parent().unwrap_or(Path::new("/"));
    chain.push(here);
    let base = match base_file {
        None => resolve(tree, file, &base_name, read, cache, chain),
        Some(f) => {
            let path = dir.join(&f);
            if !cache.contains_key(&path) {
                let t = read(&path).map_err(|e| format!("{at}.{KEY}.file: {e}"))?;
                cache.insert(path.clone(), t);
            }
            let other = cache[&path].clone();
            resolve(&other, &path, &base_name, read, cache, chain).map(|mut b| {
                let bdir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
                if bdir != dir {
                    rebase(&mut b, &bdir);
                }
                b
            })
        }
    }
    .map_err(|e| {
        if e.starts_with("service ") {
            format!("{at}.{KEY}: cannot extend: {e}")
        } else {
            e
        }
    })?;
    chain.pop();
    let mut path = vec!["services".to_string(), name.to_string()];
    merge::merge(base, Value::Mapping(svc), &mut path)
}

/// Makes the relative paths of a service taken from another directory's file absolute.
fn rebase(svc: &mut Value, dir: &Path) {
    let abs = |v: &mut Value| {
        if let Value::String(s) = v {
            if !s.starts_with('/') && !s.starts_with('~') && !s.contains("://") {
                *s = dir.join(&*s).display().to_string();
            }
        }
    };
    let Value::Mapping(m) = svc else { return };
    match m.get_mut("build") {
        Some(b @ Value::String(_)) => abs(b),
        Some(Value::Mapping(b)) => {
            if let Some(c) = b.get_mut("context") {
                abs(c);
            }
        }
        _ => {}
    }
    for k in ["env_file", "label_file"] {
        match m.get_mut(k) {
            Some(v @ Value::String(_)) => abs(v),
            Some(Value::Sequence(list)) => {
                for e in list {
                    match e {
                        Value::Mapping(em) => {
                            if let Some(p) = em.get_mut("path") {
                                abs(p);
                            }
                        }
                        e => abs(e),
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(Value::Sequence(vols)) = m.get_mut("volumes") {
        for v in vols {
            match v {
                // Short syntax: a source that is a relative path (not a volume name).
                Value::String(s) if s.starts_with('.') => {
                    if let Some((src, rest)) = s.split_once(':') {
                        *s = format!("{}:{rest}", dir.join(src).display());
                    }
                }
                Value::Mapping(vm) => {
                    let bind = vm.get("type").and_then(Value::as_str) == Some("bind");
                    if bind {
                        if let Some(src) = vm.get_mut("source") {
                            abs(src);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}
