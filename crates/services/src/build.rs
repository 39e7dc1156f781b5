//! `build:` of compose services: which services `up` builds, and the build itself
//! (berth_build's, the same as `berth build`'s).

use crate::compose::{FileSource, Project, Service};
use crate::ops::Ctx;
use crate::{Error, Result};
use berth_build::{BuildOptions, Built, ContextSource, DockerfileSource};
use berth_engine::run::Frontend;
use std::collections::BTreeMap;
use std::path::Path;

/// What `compose build` and `up --build` add to every service's `build:`.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub no_cache: bool,
    pub pull: bool,
    /// `--build-arg`, over the file's `args`.
    pub build_args: BTreeMap<String, String>,
    /// SOURCE_DATE_EPOCH of the caller's environment (builds are reproducible, as
    /// `berth build`'s are by default).
    pub source_date_epoch: Option<String>,
}

/// The services `names` (every enabled one when empty; a named one a profile left out
/// too) that have a `build:`; an unknown name is an error.
pub fn buildable(p: &Project, names: &[String]) -> Result<Vec<String>> {
    let svcs: Vec<&Service> = if names.is_empty() {
        p.services.values().collect()
    } else {
        names
            .iter()
            .map(|n| {
                p.services
                    .get(n)
                    .or_else(|| p.disabled.get(n))
                    .ok_or_else(|| Error::NoSuchService(n.clone()))
            })
            .collect::<Result<_>>()?
    };
    Ok(svcs
        .into_iter()
        .filter(|s| s.build.is_some())
        .map(|s| s.name.clone())
        .collect())
}

/// Those of `buildable(p, services)` that `up` builds: all with `force` (`up --build`),
/// else those with `pull_policy: build` or an image not in the store.
pub fn to_build(ctx: &Ctx, p: &Project, services: &[String], force: bool) -> Result<Vec<String>> {
    let recs = ctx.store.records()?;
    let mut out = Vec::new();
    for name in buildable(p, services)? {
        let s = p.services.get(&name).or_else(|| p.disabled.get(&name));
        let Some(s) = s else { continue };
        if force
            || s.pull_policy.as_deref() == Some("build")
            || ctx.store.resolve(&recs, &s.image).is_err()
        {
            out.push(name);
        }
    }
    Ok(out)
}

/// Builds service `name`'s image, tagged with its `image` and `build.tags`.
pub fn build(
    ctx: &Ctx,
    p: &Project,
    name: &str,
    o: &Overrides,
    fe: &mut (dyn Frontend + Send),
) -> Result<Built> {
    let s = p
        .services
        .get(name)
        .or_else(|| p.disabled.get(name))
        .ok_or_else(|| Error::NoSuchService(name.to_string()))?;
    // Secrets given by value live in a private directory for the build's length.
    let held = tempfile::Builder::new()
        .prefix("berth-build-secrets-")
        .tempdir()
        .map_err(|e| Error::Io(std::env::temp_dir(), e))?;
    let opts = options(p, s, o, held.path())?;
    berth_build::build(&ctx.layout, &ctx.store, opts, fe).map_err(|e| {
        let e = berth_engine::error::chain(&e);
        Error::Invalid(format!("service {name:?} failed to build: {e}"))
    })
}

fn options(p: &Project, s: &Service, o: &Overrides, held: &Path) -> Result<BuildOptions> {
    let b = s
        .build
        .as_ref()
        .ok_or_else(|| Error::Invalid(format!("service {:?} has no build section", s.name)))?;
    let bad = |m: String| Error::Invalid(format!("services.{}.build: {m}", s.name));
    if !b.context.is_dir() {
        return Err(bad(format!(
            "context {} is not a directory",
            b.context.display()
        )));
    }
    let dockerfile = match (&b.dockerfile, &b.dockerfile_inline) {
        (_, Some(text)) => DockerfileSource::Text(text.clone()),
        (Some(f), None) => DockerfileSource::Path(b.context.join(f)),
        (None, None) => DockerfileSource::Default,
    };
    // An arg left without a value (unset in the environment) is not passed, as docker.
    let mut build_args: BTreeMap<String, String> = b
        .args
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
        .collect();
    build_args.extend(o.build_args.clone());
    let epoch =
        berth_build::flags::epoch(true, &build_args, o.source_date_epoch.clone()).map_err(bad)?;
    let mut secrets = BTreeMap::new();
    for (id, name) in &b.secrets {
        let path = match p.secrets.get(name) {
            Some(FileSource::File(f)) => f.clone(),
            Some(FileSource::Content(c)) | Some(FileSource::Env { value: c, .. }) => {
                use std::os::unix::fs::OpenOptionsExt;
                let f = held.join(name);
                std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&f)
                    .and_then(|mut w| std::io::Write::write_all(&mut w, c.as_bytes()))
                    .map_err(|e| Error::Io(f.clone(), e))?;
                f
            }
            None => return Err(bad(format!("secret {name} is not defined"))),
        };
        secrets.insert(id.clone(), path);
    }
    let mut tags = vec![s.image.clone()];
    tags.extend(b.tags.iter().cloned());
    Ok(BuildOptions {
        context: ContextSource::Dir(b.context.clone()),
        dockerfile,
        tags,
        build_args,
        target: b.target.clone(),
        no_cache: b.no_cache || o.no_cache,
        pull: b.pull || o.pull,
        labels: b.labels.clone(),
        network: berth_build::flags::network(b.network.as_deref()).map_err(bad)?,
        secrets,
        epoch,
    })
}

/// Records in the model the ID of each built service's image in the store, so that a
/// rebuilt image changes the service's config hash and `up` replaces its containers.
pub fn record_image_ids(ctx: &Ctx, p: &mut Project) -> Result<()> {
    let recs = ctx.store.records()?;
    for s in p.services.values_mut().chain(p.disabled.values_mut()) {
        if s.build.is_some() {
            s.image_id = ctx.store.resolve(&recs, &s.image).ok().map(|r| r.config);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::BuildSpec;

    #[test]
    fn buildable_takes_named_services_a_profile_left_out_and_refuses_unknown_ones() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("compose.yaml"),
            "services:\n  web: {build: .}\n  db: {image: pg}\n  tool: {build: ., profiles: [x]}\n",
        )
        .unwrap();
        let p = crate::compose::load(&crate::compose::LoadOptions {
            working_dir: d.path().to_path_buf(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(buildable(&p, &[]).unwrap(), ["web"]);
        let named = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(buildable(&p, &named(&["tool", "db"])).unwrap(), ["tool"]);
        assert_eq!(
            buildable(&p, &named(&["nope"])).unwrap_err().to_string(),
            "no such service: nope"
        );
    }

    fn svc(b: BuildSpec) -> Service {
        Service {
            name: "web".into(),
            image: "p-web".into(),
            build: Some(b),
            ..Default::default()
        }
    }

    #[test]
    fn options_merge_the_file_and_the_command_line() {
        let d = tempfile::tempdir().unwrap();
        let mut b = BuildSpec {
            context: d.path().to_path_buf(),
            dockerfile: Some("Dockerfile.dev".into()),
            tags: vec!["extra:1".into()],
            network: Some("none".into()),
            ..Default::default()
        };
        b.args.insert("A".into(), Some("file".into()));
        b.args.insert("UNSET".into(), None);
        b.args.insert("KEEP".into(), Some("k".into()));
        let mut o = Overrides {
            no_cache: true,
            ..Default::default()
        };
        o.build_args.insert("A".into(), "cli".into());
        let opts = options(&Project::default(), &svc(b), &o, Path::new("/nowhere")).unwrap();
        assert_eq!(opts.tags, ["p-web", "extra:1"]);
        assert_eq!(opts.build_args["A"], "cli");
        assert_eq!(opts.build_args["KEEP"], "k");
        assert!(!opts.build_args.contains_key("UNSET"));
        assert!(opts.no_cache && !opts.pull);
        assert_eq!(opts.network, berth_build::RunNetwork::None);
        assert_eq!(opts.epoch, Some(0));
        match opts.dockerfile {
            DockerfileSource::Path(p) => assert_eq!(p, d.path().join("Dockerfile.dev")),
            _ => panic!("want the Dockerfile's path"),
        }
    }

    #[test]
    fn a_missing_context_is_an_error_naming_it() {
        let b = BuildSpec {
            context: "/no/such/dir".into(),
            ..Default::default()
        };
        let e = options(
            &Project::default(),
            &svc(b),
            &Overrides::default(),
            Path::new("/nowhere"),
        )
        .err()
        .unwrap();
        assert_eq!(
            e.to_string(),
            "services.web.build: context /no/such/dir is not a directory"
        );
    }
}
