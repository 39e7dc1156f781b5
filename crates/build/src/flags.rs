//! `berth build`'s flag values, checked once into [`crate::BuildOptions`] fields.

use crate::builder::RunNetwork;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `--build-arg K=V` (a bare `K` takes the caller's environment value, and is dropped
/// when the caller has none, as docker does).
pub fn build_args(
    list: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for a in list {
        match a.split_once('=') {
            Some(("", _)) => {
                return Err(format!(
                    "invalid argument {a:?} for \"--build-arg\" flag: empty name"
                ))
            }
            Some((k, v)) => {
                out.insert(k.to_string(), v.to_string());
            }
            None => {
                if let Some(v) = env(a) {
                    out.insert(a.clone(), v);
                }
            }
        }
    }
    Ok(out)
}

/// `--label K=V` (a bare `K` is an empty value).
pub fn labels(list: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for l in list {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        if k.is_empty() {
            return Err(format!(
                "invalid argument {l:?} for \"--label\" flag: empty name"
            ));
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// `--network`: `default` (or `bridge`), `none`, `host`, or a network's name (checked
/// when the first RUN is created: `network X not found`).
pub fn network(v: Option<&str>) -> Result<RunNetwork, String> {
    match v {
        None | Some("default") | Some("bridge") => Ok(RunNetwork::Default),
        Some("none") => Ok(RunNetwork::None),
        Some("host") => Ok(RunNetwork::Host),
        Some(o) if o.starts_with("container:") => Err(format!(
            "network mode {o:?} not supported by berth build: use default, none, host or a network's name"
        )),
        Some("") => Err("invalid --network \"\": give default, none, host or a network's name".into()),
        Some(o) => Ok(RunNetwork::Named(o.to_string())),
    }
}

/// `--secret id=ID,src=PATH` (also `source=`; `type=file` only; a missing id is the
/// file's name, as BuildKit).
pub fn secret(spec: &str) -> Result<(String, PathBuf), String> {
    let mut id = None;
    let mut src = None;
    for part in spec.split(',') {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("invalid secret {spec:?}: {part:?} is not KEY=VALUE"))?;
        match k.trim().to_ascii_lowercase().as_str() {
            "id" => id = Some(v.to_string()),
            "src" | "source" => src = Some(PathBuf::from(v)),
            "type" if v == "file" => {}
            "type" => {
                return Err(format!(
                    "invalid secret {spec:?}: type {v:?} is not supported (only file)"
                ))
            }
            "env" => {
                return Err(format!(
                    "invalid secret {spec:?}: secrets from the environment are not supported; write it to a file and give src="
                ))
            }
            other => return Err(format!("invalid secret {spec:?}: unknown key {other:?}")),
        }
    }
    let src = src.ok_or_else(|| format!("invalid secret {spec:?}: src= is required"))?;
    let id = match id {
        Some(i) if !i.is_empty() => i,
        _ => src
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| format!("invalid secret {spec:?}: id= is required"))?,
    };
    if !src.is_file() {
        return Err(format!(
            "failed to stat secret {}: not a readable file",
            src.display()
        ));
    }
    Ok((id, src))
}

/// `--platform`: only this host's platform.
pub fn platform(v: Option<&str>) -> Result<(), String> {
    use berth_registry::manifest::Platform;
    let Some(v) = v else { return Ok(()) };
    let host = Platform::host();
    for p in v.split(',') {
        let want = Platform::parse(p.trim()).ok_or_else(|| format!("invalid --platform {p:?}"))?;
        if !want.matches(&host) {
            return Err(format!(
                "--platform {p}: berth build builds for this host's platform ({host}) only"
            ));
        }
    }
    Ok(())
}

/// The reproducible epoch: `SOURCE_DATE_EPOCH` (a build arg wins over the environment),
/// else 0; None when reproducibility is off.
pub fn epoch(
    reproducible: bool,
    args: &BTreeMap<String, String>,
    env: Option<String>,
) -> Result<Option<u64>, String> {
    if !reproducible {
        return Ok(None);
    }
    match args.get("SOURCE_DATE_EPOCH").cloned().or(env) {
        None => Ok(Some(0)),
        Some(s) if s.is_empty() => Ok(Some(0)),
        Some(s) => s
            .parse::<u64>()
            .map(Some)
            .map_err(|_| format!("invalid SOURCE_DATE_EPOCH {s:?}: want seconds since 1970")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_args_take_bare_names_from_the_environment() {
        let env = |k: &str| (k == "HOME").then(|| "/root".to_string());
        let a = build_args(&["A=1".into(), "HOME".into(), "NOPE".into()], &env).unwrap();
        assert_eq!(a.get("A").map(String::as_str), Some("1"));
        assert_eq!(a.get("HOME").map(String::as_str), Some("/root"));
        assert!(!a.contains_key("NOPE"));
        assert!(build_args(&["=x".into()], &env).is_err());
    }

    #[test]
    fn network_and_secret_values_are_checked() {
        assert_eq!(network(Some("none")), Ok(RunNetwork::None));
        assert_eq!(
            network(Some("mynet")),
            Ok(RunNetwork::Named("mynet".into()))
        );
        assert!(network(Some("container:x"))
            .unwrap_err()
            .contains("container:x"));
        let f = tempfile::NamedTempFile::new().unwrap();
        let p = f.path().display().to_string();
        let (id, src) = secret(&format!("id=tok,src={p}")).unwrap();
        assert_eq!((id.as_str(), src), ("tok", f.path().to_path_buf()));
        assert!(secret("id=tok").is_err());
        assert!(secret("id=tok,src=/no/such/file").is_err());
    }

    #[test]
    fn epoch_defaults_to_zero_and_can_be_off() {
        let none = BTreeMap::new();
        assert_eq!(epoch(true, &none, None), Ok(Some(0)));
        assert_eq!(epoch(true, &none, Some("5".into())), Ok(Some(5)));
        let mut a = BTreeMap::new();
        a.insert("SOURCE_DATE_EPOCH".to_string(), "7".to_string());
        assert_eq!(epoch(true, &a, Some("5".into())), Ok(Some(7)));
        assert_eq!(epoch(false, &a, None), Ok(None));
        assert!(epoch(true, &none, Some("x".into())).is_err());
    }

    #[test]
    fn only_the_host_platform_builds() {
        let host = berth_registry::manifest::Platform::host().to_string();
        assert!(platform(Some(&host)).is_ok());
        assert!(platform(Some("linux/s390x")).unwrap_err().contains("only"));
    }
}
