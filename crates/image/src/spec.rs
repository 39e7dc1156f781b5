//! Image config → OCI runtime config. Users and groups are resolved from the image's own
//! /etc/passwd and /etc/group, read through the rootfs fd with RESOLVE_IN_ROOT (never the
//! host's NSS).

use crate::error::{Error, Result};
use berth_registry::manifest::ImageConfig;
use oci_spec::runtime::{Spec, User};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use std::collections::BTreeMap;
use std::io::Read;
use std::os::fd::AsFd;
use std::path::{Component, Path, PathBuf};

pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
pub const ANN_STOP_SIGNAL: &str = "org.opencontainers.image.stopSignal";
pub const ANN_EXPOSED_PORTS: &str = "org.opencontainers.image.exposedPorts";
pub const ANN_VOLUMES: &str = "io.berth.image.volumes";
pub const ANN_HEALTHCHECK: &str = "io.berth.image.healthcheck";
/// Most bytes read from /etc/passwd or /etc/group.
const MAX_DB: u64 = 4 << 20;

/// What `run` flags override.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Replaces the image Entrypoint (and then drops the image Cmd, as docker does).
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    /// `KEY=VALUE` entries, replacing image entries with the same key.
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
}

/// Lexically cleans an absolute in-container path; `..` never climbs above `/`.
fn clean_abs(p: &str) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Image `Volumes`, validated: absolute, no `..` (containerd CVE-2022-23648).
pub fn image_volumes(cfg: &ImageConfig) -> Result<Vec<String>> {
    let mut v = Vec::new();
    if let Some(vols) = cfg.config.as_ref().and_then(|c| c.volumes.as_ref()) {
        for k in vols.keys() {
            let p = Path::new(k);
            if !p.is_absolute()
                || p.components().any(|c| c == Component::ParentDir)
                || k.contains('\0')
            {
                return Err(Error::Invalid(format!(
                    "image volume {k:?} must be an absolute path without \"..\""
                )));
            }
            v.push(clean_abs(k).to_string_lossy().into_owned());
        }
    }
    Ok(v)
}

fn read_db(rootfs: impl AsFd, path: &str) -> Result<Option<String>> {
    let fd = match rustix::fs::openat2(
        rootfs,
        path,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_XDEV,
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(Error::Io(format!("rootfs {path}"), e.into())),
    };
    let st = rustix::fs::fstat(&fd).map_err(|e| Error::Io(format!("rootfs {path}"), e.into()))?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(Error::Invalid(format!(
            "rootfs {path} is not a regular file"
        )));
    }
    let mut s = String::new();
    std::fs::File::from(fd)
        .take(MAX_DB)
        .read_to_string(&mut s)
        .map_err(|e| Error::Io(format!("rootfs {path}"), e))?;
    Ok(Some(s))
}

struct Passwd {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct Group {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn parse_id(s: &str) -> Option<u32> {
    // u32::MAX is the kernel's "no id" (-1); refuse it.
    s.parse::<u32>().ok().filter(|v| *v != u32::MAX)
}

fn parse_passwd(s: &str) -> Vec<Passwd> {
    s.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 || l.starts_with('#') {
                return None;
            }
            Some(Passwd {
                name: f[0].into(),
                uid: parse_id(f[2])?,
                gid: parse_id(f[3])?,
                home: f.get(5).copied().unwrap_or_default().to_string(),
            })
        })
        .collect()
}

fn parse_group(s: &str) -> Vec<Group> {
    s.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 3 || l.starts_with('#') {
                return None;
            }
            let members = f
                .get(3)
                .map(|m| {
                    m.split(',')
                        .filter(|x| !x.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            Some(Group {
                name: f[0].into(),
                gid: parse_id(f[2])?,
                members,
            })
        })
        .collect()
}

/// Resolves `user[:group]` (names or numbers) against the image's own databases.
pub fn resolve_user(rootfs: impl AsFd, spec: &str) -> Result<User> {
    resolve_user_home(rootfs, spec).map(|(u, _)| u)
}

/// As `resolve_user`, with the user's home directory: its passwd entry's, else "/"
/// (docker's HOME when neither the image nor the caller sets one).
pub fn resolve_user_home(rootfs: impl AsFd, spec: &str) -> Result<(User, String)> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let bad = |why: &str| Error::Invalid(format!("user {spec:?}: {why}"));
    let passwd_home = |passwd: &[Passwd], uid: u32| {
        passwd
            .iter()
            .find(|p| p.uid == uid)
            .map(|p| p.home.clone())
            .filter(|h| h.starts_with('/'))
            .unwrap_or_else(|| "/".into())
    };
    if u.is_empty() && g.is_none() {
        let passwd = read_db(rootfs.as_fd(), "/etc/passwd")?
            .map(|s| parse_passwd(&s))
            .unwrap_or_default();
        return Ok((User::default(), passwd_home(&passwd, 0)));
    }
    let passwd = read_db(rootfs.as_fd(), "/etc/passwd")?
        .map(|s| parse_passwd(&s))
        .unwrap_or_default();
    let groups = read_db(rootfs.as_fd(), "/etc/group")?
        .map(|s| parse_group(&s))
        .unwrap_or_default();
    let (uid, mut gid, name) = if u.is_empty() {
        (0, 0, Some("root".to_string()))
    } else if u.chars().all(|c| c.is_ascii_digit()) {
        let uid = parse_id(u).ok_or_else(|| bad("uid out of range"))?;
        match passwd.iter().find(|p| p.uid == uid) {
            Some(p) => (uid, p.gid, Some(p.name.clone())),
            None => (uid, 0, None),
        }
    } else {
        let p = passwd
            .iter()
            .find(|p| p.name == u)
            .ok_or_else(|| bad("no such user in the image's /etc/passwd"))?;
        (p.uid, p.gid, Some(p.name.clone()))
    };
    if let Some(g) = g {
        gid = if g.chars().all(|c| c.is_ascii_digit()) && !g.is_empty() {
            parse_id(g).ok_or_else(|| bad("gid out of range"))?
        } else {
            groups
                .iter()
                .find(|x| x.name == g)
                .ok_or_else(|| bad("no such group in the image's /etc/group"))?
                .gid
        };
    }
    let mut extra: Vec<u32> = Vec::new();
    // An explicit group replaces supplementary groups, as in docker.
    if let (Some(n), None) = (&name, g) {
        for grp in &groups {
            if grp.members.iter().any(|m| m == n) && grp.gid != gid && !extra.contains(&grp.gid) {
                extra.push(grp.gid);
            }
        }
    }
    let mut user = User::default();
    user.set_uid(uid);
    user.set_gid(gid);
    user.set_additional_gids(if extra.is_empty() { None } else { Some(extra) });
    user.set_username(name);
    Ok((user, passwd_home(&passwd, uid)))
}

/// Builds the runtime spec for a container of this image. `rootfs` is an fd of the
/// container's mounted rootfs (used only to read /etc/passwd and /etc/group).
pub fn runtime_spec_from_image(
    cfg: &ImageConfig,
    rootfs: impl AsFd,
    ov: &Overrides,
) -> Result<Spec> {
    let c = cfg.config.clone().unwrap_or_default();
    let (entry, cmd) = match &ov.entrypoint {
        Some(e) => (e.clone(), ov.cmd.clone().unwrap_or_default()),
        None => (
            c.entrypoint.clone().unwrap_or_default(),
            ov.cmd.clone().or(c.cmd.clone()).unwrap_or_default(),
        ),
    };
    let args: Vec<String> = entry.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(Error::Invalid(
            // docker's words (its daemon says "No command specified").
            "no command specified: the image has no Entrypoint or Cmd and none was given".into(),
        ));
    }
    let mut env: Vec<String> = Vec::new();
    let mut set = |kv: &str| {
        let k = kv.split('=').next().unwrap_or(kv);
        env.retain(|e| e.split('=').next() != Some(k));
        env.push(kv.to_string());
    };
    for e in c.env.iter().flatten() {
        set(e);
    }
    for e in &ov.env {
        set(e);
    }
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    let wd = ov
        .workdir
        .clone()
        .or(c.working_dir.clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    if wd.contains('\0') {
        return Err(Error::Invalid(format!("working dir {wd:?} is invalid")));
    }
    let cwd = clean_abs(&wd);
    let user_spec = ov.user.clone().or(c.user.clone()).unwrap_or_default();
    let (user, home) = resolve_user_home(rootfs.as_fd(), &user_spec)?;
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={home}"));
    }

    let mut spec = Spec::default();
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_args(Some(args));
    process.set_env(Some(env));
    process.set_cwd(cwd);
    process.set_user(user);
    spec.set_process(Some(process));

    let mut ann: BTreeMap<String, String> = BTreeMap::new();
    if let Some(l) = &c.labels {
        for (k, v) in l {
            ann.insert(k.clone(), v.clone());
        }
    }
    if let Some(s) = &c.stop_signal {
        ann.insert(ANN_STOP_SIGNAL.into(), s.clone());
    }
    if let Some(p) = &c.exposed_ports {
        let ports: Vec<&str> = p.keys().map(String::as_str).collect();
        ann.insert(ANN_EXPOSED_PORTS.into(), ports.join(","));
    }
    let vols = image_volumes(cfg)?;
    if !vols.is_empty() {
        ann.insert(
            ANN_VOLUMES.into(),
            serde_json::to_string(&vols).expect("strings serialise"),
        );
    }
    if let Some(h) = &c.healthcheck {
        ann.insert(
            ANN_HEALTHCHECK.into(),
            serde_json::to_string(h).expect("healthcheck serialises"),
        );
    }
    let annotations: std::collections::HashMap<String, String> = ann.into_iter().collect();
    spec.set_annotations(if annotations.is_empty() {
        None
    } else {
        Some(annotations)
    });
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_registry::manifest::ContainerConfig;

    fn rootfs() -> (tempfile::TempDir, std::fs::File) {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\napp:x:1000:\nwheel:x:10:app,root\naudio:x:29:app\n",
        )
        .unwrap();
        let f = std::fs::File::open(d.path()).unwrap();
        (d, f)
    }

    fn cfg(c: ContainerConfig) -> ImageConfig {
        ImageConfig {
            config: Some(c),
            ..Default::default()
        }
    }

    #[test]
    fn user_from_image_db() {
        let (_d, fd) = rootfs();
        let u = resolve_user(&fd, "app").unwrap();
        assert_eq!((u.uid(), u.gid()), (1000, 1000));
        assert_eq!(u.additional_gids().clone().unwrap(), vec![10, 29]);
        let u = resolve_user(&fd, "app:wheel").unwrap();
        assert_eq!(
            (u.uid(), u.gid(), u.additional_gids().clone()),
            (1000, 10, None)
        );
        let u = resolve_user(&fd, "4242:4343").unwrap();
        assert_eq!((u.uid(), u.gid()), (4242, 4343));
        assert!(resolve_user(&fd, "nobody-here").is_err());
        assert!(resolve_user(&fd, "4294967295").is_err());
        assert!(resolve_user(&fd, "99999999999").is_err());
    }

    #[test]
    fn home_from_passwd_unless_set() {
        let (_d, fd) = rootfs();
        let c = cfg(ContainerConfig {
            cmd: Some(vec!["x".into()]),
            ..Default::default()
        });
        let home = |user: Option<&str>, env: &[&str], image_env: Option<&str>| {
            let mut c = c.clone();
            if let Some(e) = image_env {
                c.config.as_mut().unwrap().env = Some(vec![e.into()]);
            }
            let ov = Overrides {
                user: user.map(str::to_string),
                env: env.iter().map(|e| e.to_string()).collect(),
                ..Default::default()
            };
            let s = runtime_spec_from_image(&c, &fd, &ov).unwrap();
            let env = s.process().clone().unwrap().env().clone().unwrap();
            let h: Vec<String> = env.into_iter().filter(|e| e.starts_with("HOME=")).collect();
            assert_eq!(h.len(), 1, "{h:?}");
            h[0].clone()
        };
        assert_eq!(home(None, &[], None), "HOME=/root");
        assert_eq!(home(Some("app"), &[], None), "HOME=/home/app");
        assert_eq!(home(Some("1000:10"), &[], None), "HOME=/home/app");
        assert_eq!(home(Some("4242"), &[], None), "HOME=/");
        assert_eq!(home(Some("app"), &["HOME=/x"], None), "HOME=/x");
        assert_eq!(home(None, &[], Some("HOME=/img")), "HOME=/img");
        // No passwd at all: "/".
        let d = tempfile::tempdir().unwrap();
        let bare = std::fs::File::open(d.path()).unwrap();
        let s = runtime_spec_from_image(&c, &bare, &Overrides::default()).unwrap();
        let env = s.process().clone().unwrap().env().clone().unwrap();
        assert!(env.contains(&"HOME=/".to_string()), "{env:?}");
    }

    #[test]
    fn passwd_symlink_out_of_root_stays_inside() {
        // /etc/passwd -> /../../../etc/passwd resolves inside the rootfs, not on the host.
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("/../../../../etc/passwd", d.path().join("etc/passwd")).unwrap();
        let fd = std::fs::File::open(d.path()).unwrap();
        // The host has "root" in its passwd; the image has no such file.
        assert!(resolve_user(&fd, "root").is_err());
    }

    #[test]
    fn entrypoint_cmd_env_workdir() {
        let (_d, fd) = rootfs();
        let c = cfg(ContainerConfig {
            entrypoint: Some(vec!["/bin/sh".into(), "-c".into()]),
            cmd: Some(vec!["echo hi".into()]),
            env: Some(vec!["A=1".into(), "PATH=/bin".into()]),
            working_dir: Some("/srv/../app".into()),
            stop_signal: Some("SIGQUIT".into()),
            labels: Some([("l".to_string(), "v".to_string())].into()),
            exposed_ports: Some([("80/tcp".to_string(), serde_json::json!({}))].into()),
            ..Default::default()
        });
        let s = runtime_spec_from_image(
            &c,
            &fd,
            &Overrides {
                env: vec!["A=2".into()],
                ..Default::default()
            },
        )
        .unwrap();
        let p = s.process().clone().unwrap();
        assert_eq!(p.args().clone().unwrap(), vec!["/bin/sh", "-c", "echo hi"]);
        assert_eq!(
            p.env().clone().unwrap(),
            vec!["PATH=/bin", "A=2", "HOME=/root"]
        );
        assert_eq!(p.cwd(), Path::new("/app"));
        let a = s.annotations().clone().unwrap();
        assert_eq!(a[ANN_STOP_SIGNAL], "SIGQUIT");
        assert_eq!(a["l"], "v");
        assert_eq!(a[ANN_EXPOSED_PORTS], "80/tcp");
        let ov = Overrides {
            entrypoint: Some(vec!["/bin/true".into()]),
            ..Default::default()
        };
        let s = runtime_spec_from_image(&c, &fd, &ov).unwrap();
        assert_eq!(
            s.process().clone().unwrap().args().clone().unwrap(),
            vec!["/bin/true"]
        );
        assert!(runtime_spec_from_image(
            &cfg(ContainerConfig::default()),
            &fd,
            &Overrides::default()
        )
        .is_err());
    }

    #[test]
    fn volumes_traversal_cve_2022_23648() {
        let (_d, fd) = rootfs();
        for bad in ["/../../../../../etc", "relative", "/data/../../x"] {
            let c = cfg(ContainerConfig {
                cmd: Some(vec!["x".into()]),
                volumes: Some([(bad.to_string(), serde_json::json!({}))].into()),
                ..Default::default()
            });
            assert!(
                runtime_spec_from_image(&c, &fd, &Overrides::default()).is_err(),
                "{bad}"
            );
        }
        let c = cfg(ContainerConfig {
            cmd: Some(vec!["x".into()]),
            volumes: Some([("/data".to_string(), serde_json::json!({}))].into()),
            ..Default::default()
        });
        let s = runtime_spec_from_image(&c, &fd, &Overrides::default()).unwrap();
        assert_eq!(
            s.annotations().clone().unwrap()[ANN_VOLUMES],
            r#"["/data"]"#
        );
    }
}
