//! `exec --cgroup`: runc 1.1's sub-cgroup arguments and the directories they name.
//!
//! `PATH` alone puts the process in PATH under the container's cgroup in every
//! hierarchy (cgroup v2: the only form); `CONTROLLER[,CONTROLLER...]:PATH`
//! (repeatable) in the named v1 hierarchies only. The sub-cgroup must exist; it is not
//! made here.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::Error;

/// Parsed `--cgroup` arguments: controller → path below the container's cgroup; the
/// key "" stands for every hierarchy (runc's `SubCgroupPaths`).
pub type SubCgroups = BTreeMap<String, String>;

/// Parse the `--cgroup` arguments as runc's getSubCgroupPaths does.
pub fn parse_sub_cgroups(args: &[String]) -> Result<SubCgroups, Error> {
    let mut out = SubCgroups::new();
    for a in args {
        let parts: Vec<&str> = a.splitn(3, ':').collect();
        match parts[..] {
            [path] if args.len() == 1 => {
                out.insert(String::new(), path.to_string());
            }
            [_] => return Err(Error::SubCgroupPrefix { arg: a.clone() }),
            [ctrls, path] => {
                for c in ctrls.split(',') {
                    out.insert(c.to_string(), path.to_string());
                }
            }
            _ => return Err(Error::SubCgroupArg { arg: a.clone() }),
        }
    }
    Ok(out)
}

/// `rel` joined below `base`, or None when it leaves it ("..", lexically).
fn below(base: &Path, rel: &str) -> Option<PathBuf> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(p) => parts.push(p),
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Some(parts.iter().fold(base.to_path_buf(), |d, p| d.join(p)))
}

/// The directories the process joins: `paths` (a container's [`crate::Manager::paths`],
/// "" the unified one) with the sub-cgroups of `sub` applied. A path that leaves the
/// container's cgroup, or a controller the container has no hierarchy for, is refused
/// in runc's words. Controllers mounted together (one directory) move together.
pub fn sub_cgroup_paths(
    paths: &BTreeMap<String, PathBuf>,
    sub: &SubCgroups,
) -> Result<BTreeMap<String, PathBuf>, Error> {
    let mut out = paths.clone();
    let mut moved: BTreeMap<PathBuf, PathBuf> = BTreeMap::new();
    for (ctrl, rel) in sub {
        let keys: Vec<&String> = if ctrl.is_empty() {
            paths.keys().collect()
        } else if paths.contains_key(ctrl) {
            vec![ctrl]
        } else {
            return Err(Error::UnknownController {
                controller: ctrl.clone(),
            });
        };
        for k in keys {
            let base = &paths[k];
            let d = below(base, rel).ok_or_else(|| Error::NotSubCgroup { path: rel.clone() })?;
            moved.insert(base.clone(), d);
        }
    }
    for dir in out.values_mut() {
        if let Some(d) = moved.get(dir) {
            *dir = d.clone();
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn map(kv: &[(&str, &str)]) -> BTreeMap<String, PathBuf> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), PathBuf::from(v)))
            .collect()
    }

    #[test]
    fn arguments_parse_as_runcs() {
        let p = parse_sub_cgroups(&args(&["sub"])).unwrap();
        assert_eq!(p, SubCgroups::from([(String::new(), "sub".into())]));
        let p = parse_sub_cgroups(&args(&["memory,pids:a/b", "cpu:c"])).unwrap();
        assert_eq!(
            p.iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>(),
            [("cpu", "c"), ("memory", "a/b"), ("pids", "a/b")]
        );
        assert_eq!(parse_sub_cgroups(&[]).unwrap(), SubCgroups::new());
        let e = parse_sub_cgroups(&args(&["a:b:c"])).unwrap_err();
        assert_eq!(e.to_string(), "invalid --cgroup argument: a:b:c");
        let e = parse_sub_cgroups(&args(&["sub", "memory:sub"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid --cgroup argument: sub (missing <controller>: prefix)"
        );
    }

    #[test]
    fn v2_a_path_is_below_the_unified_cgroup() {
        let paths = map(&[("", "/sys/fs/cgroup/berth/c1")]);
        let got = sub_cgroup_paths(&paths, &parse_sub_cgroups(&args(&["sub/x"])).unwrap());
        assert_eq!(got.unwrap(), map(&[("", "/sys/fs/cgroup/berth/c1/sub/x")]));
        // An absolute path is still below the container's cgroup, as runc's path.Join.
        let got = sub_cgroup_paths(&paths, &parse_sub_cgroups(&args(&["/sub"])).unwrap());
        assert_eq!(got.unwrap(), map(&[("", "/sys/fs/cgroup/berth/c1/sub")]));
        // v2 has no per-controller hierarchies.
        let e = sub_cgroup_paths(&paths, &parse_sub_cgroups(&args(&["memory:sub"])).unwrap())
            .unwrap_err();
        assert_eq!(e.to_string(), "unknown controller memory in SubCgroupPaths");
        for escape in ["..", "../c2", "a/../../c2"] {
            let e = sub_cgroup_paths(&paths, &parse_sub_cgroups(&args(&[escape])).unwrap())
                .unwrap_err();
            assert_eq!(e.to_string(), format!("{escape} is not a sub cgroup path"));
        }
        let got = sub_cgroup_paths(&paths, &parse_sub_cgroups(&args(&["a/../b"])).unwrap());
        assert_eq!(got.unwrap(), map(&[("", "/sys/fs/cgroup/berth/c1/b")]));
    }

    #[test]
    fn v1_controllers_move_alone_and_comounted_ones_together() {
        let paths = map(&[
            ("", "/u/c1"),
            ("cpu", "/cg/cpu,cpuacct/c1"),
            ("cpuacct", "/cg/cpu,cpuacct/c1"),
            ("memory", "/cg/memory/c1"),
            ("pids", "/cg/pids/c1"),
        ]);
        let got = sub_cgroup_paths(
            &paths,
            &parse_sub_cgroups(&args(&["cpu,memory:s"])).unwrap(),
        )
        .unwrap();
        assert_eq!(
            got,
            map(&[
                ("", "/u/c1"),
                ("cpu", "/cg/cpu,cpuacct/c1/s"),
                ("cpuacct", "/cg/cpu,cpuacct/c1/s"),
                ("memory", "/cg/memory/c1/s"),
                ("pids", "/cg/pids/c1"),
            ])
        );
        let got = sub_cgroup_paths(&paths, &parse_sub_cgroups(&args(&["s"])).unwrap()).unwrap();
        assert!(got.values().all(|d| d.ends_with("c1/s")), "{got:?}");
        let e = sub_cgroup_paths(&paths, &parse_sub_cgroups(&args(&["memory:../x"])).unwrap())
            .unwrap_err();
        assert_eq!(e.to_string(), "../x is not a sub cgroup path");
    }
}
