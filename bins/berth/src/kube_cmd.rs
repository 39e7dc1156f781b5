//! `berth kube generate`: Kubernetes manifests from compose files (issue 15 item 3), and
//! `berth kube play`: manifests run by the compose supervisor (item 4). The mappings are
//! berth_services::kube's; here the flags, the output and the warnings.

use crate::Globals;
use anyhow::{bail, Context, Result};
use berth_engine::layout::Layout;
use berth_image::store::Store;
use berth_services::kube::{self, GenerateOptions, Publish};
use berth_services::ops::{self, Ctx, UpOptions};
use berth_services::state::ProjectDir;
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::PathBuf;

#[derive(Subcommand)]
#[command(defer = true)]
pub enum Cmd {
    /// Move projects between berth and Kubernetes (generate, play)
    #[command(subcommand)]
    Kube(KubeCmd),
}

#[derive(Subcommand)]
#[command(defer = true)]
pub enum KubeCmd {
    /// Generate Kubernetes manifests (Deployments, Services, ...) from compose files, or a
    /// Pod from a container
    Generate(GenerateArgs),
    /// Run Kubernetes manifests (Pods, Deployments, Services, ConfigMaps, Secrets,
    /// PersistentVolumeClaims) as a compose project
    Play(PlayArgs),
}

#[derive(Args)]
pub struct PlayArgs {
    /// The manifests (a multi-document YAML file)
    file: PathBuf,
    /// Tear down what play made of this file (the project's containers, networks and files)
    #[arg(long, conflicts_with = "replace")]
    down: bool,
    /// Tear down the project first, then play
    #[arg(long)]
    replace: bool,
    /// Project name (default: the app.kubernetes.io/part-of label all objects share, else
    /// the file's name)
    #[arg(short = 'p', long = "project-name")]
    project_name: Option<String>,
}

#[derive(Args)]
pub struct GenerateArgs {
    /// Compose configuration files
    #[arg(short = 'f', long = "file")]
    file: Vec<PathBuf>,
    /// Project name
    #[arg(short = 'p', long = "project-name")]
    project_name: Option<String>,
    /// A project that berth compose runs: its model, active services and current scale
    /// (instead of compose files)
    #[arg(long, conflicts_with_all = ["file", "project_name", "profile", "project_directory"])]
    project: Option<String>,
    /// Specify a profile to enable
    #[arg(long)]
    profile: Vec<String>,
    /// Specify an alternate working directory (default: the path of the first compose file)
    #[arg(long)]
    project_directory: Option<PathBuf>,
    /// Write one file per manifest into this directory instead of one stream on stdout
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    /// How published ports leave the cluster: loadbalancer or nodeport
    #[arg(long, default_value = "loadbalancer", value_parser = ["loadbalancer", "nodeport"])]
    publish: String,
    /// The RuntimeClass of every pod (e.g. berth)
    #[arg(long)]
    runtime_class: Option<String>,
    /// The storage request of each PersistentVolumeClaim
    #[arg(long, default_value = "1Gi")]
    volume_size: String,
    /// Services to generate (default: all). Without --file and --project, when every name
    /// is a container's (name or ID): a Pod of each container, as podman kube generate
    #[arg(value_name = "SERVICE|CONTAINER")]
    services: Vec<String>,
}

pub fn dispatch(g: &Globals, c: Cmd) -> i32 {
    let r = match c {
        Cmd::Kube(KubeCmd::Generate(a)) => generate(g, a),
        Cmd::Kube(KubeCmd::Play(a)) => play(g, a),
    };
    match r {
        Ok(()) => 0,
        Err(e) => {
            crate::print_error(&e);
            1
        }
    }
}

/// The containers `names` name, when the generate arguments are containers: no compose
/// file or project is named and every name resolves to a container.
fn containers_named(g: &Globals, a: &GenerateArgs) -> Result<Option<Vec<String>>> {
    if a.services.is_empty()
        || a.project.is_some()
        || !a.file.is_empty()
        || a.project_name.is_some()
        || !a.profile.is_empty()
        || a.project_directory.is_some()
        || !g.root.join("engine").is_dir()
    {
        return Ok(None);
    }
    let layout = Layout::open(&g.root).with_context(|| format!("open {}", g.root.display()))?;
    Ok(a.services
        .iter()
        .map(|n| berth_engine::lookup::resolve(&layout, n).ok())
        .collect())
}

fn generate(g: &Globals, mut a: GenerateArgs) -> Result<()> {
    let opts = GenerateOptions {
        publish: if a.publish == "nodeport" {
            Publish::NodePort
        } else {
            Publish::LoadBalancer
        },
        runtime_class: a.runtime_class.clone(),
        services: vec![],
        volume_size: Some(a.volume_size.clone()),
    };
    if let Some(ids) = containers_named(g, &a)? {
        let layout = Layout::open(&g.root).with_context(|| format!("open {}", g.root.display()))?;
        let mut out = kube::Generated::default();
        for id in ids {
            let cfg = layout.load_config(&id)?;
            let st = berth_engine::status::peek(&layout, &id).ok();
            let one = kube::container::container(&cfg, st.as_ref(), &opts)?;
            for m in one.manifests {
                // Two containers on one volume: one claim.
                if !out
                    .manifests
                    .iter()
                    .any(|x| x.kind == m.kind && x.name == m.name)
                {
                    out.manifests.push(m);
                }
            }
            out.warnings.extend(one.warnings);
        }
        return emit(&out, &[], a.output);
    }
    let project = match &a.project {
        // A running project: what its supervisor keeps (active services, their scale).
        Some(name) => {
            let layout =
                Layout::open(&g.root).with_context(|| format!("open {}", g.root.display()))?;
            let d = ProjectDir::new(&layout, name)
                .load_desired()?
                .with_context(|| format!("project {name} not found"))?;
            let mut p = d.project;
            for (svc, n) in &d.scale {
                if let Some(s) = p.services.get_mut(svc) {
                    s.deploy.replicas = Some(*n);
                }
            }
            if a.services.is_empty() {
                a.services = d.active;
            }
            p
        }
        None => crate::compose_cmd::load_project(
            &a.file,
            a.project_name.clone(),
            &a.profile,
            a.project_directory.clone(),
        )?,
    };
    let g = kube::generate(
        &project,
        &GenerateOptions {
            services: a.services,
            ..opts
        },
    )?;
    emit(&g, &project.warnings, a.output)
}

/// The manifests on stdout, or one file each in `output`; the warnings on stderr.
fn emit(g: &kube::Generated, warnings: &[String], output: Option<PathBuf>) -> Result<()> {
    let mut err = std::io::stderr().lock();
    for w in warnings.iter().chain(&g.warnings) {
        let _ = writeln!(err, "WARN {w}");
    }
    match output {
        None => {
            std::io::stdout()
                .lock()
                .write_all(kube::to_yaml(g).as_bytes())
                .context("write stdout")?;
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
            for m in &g.manifests {
                let f = dir.join(format!("{}-{}.yaml", m.name, m.kind.to_lowercase()));
                if f.exists() {
                    bail!("{} exists already", f.display());
                }
                let one = kube::Generated {
                    manifests: vec![m.clone()],
                    warnings: vec![],
                };
                std::fs::write(&f, kube::to_yaml(&one))
                    .with_context(|| format!("write {}", f.display()))?;
            }
        }
    }
    Ok(())
}

/// Where play writes the files of ConfigMap and Secret volumes of `project`.
fn files_dir(g: &Globals, project: &str) -> PathBuf {
    g.root.join("kube").join(project)
}

fn down(ctx: &Ctx, g: &Globals, project: &str) -> Result<()> {
    ops::down(
        ctx,
        project,
        None,
        false,
        None,
        &mut crate::compose_cmd::progress,
    )?;
    let dir = files_dir(g, project);
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("remove {}", dir.display()))
        }
        _ => Ok(()),
    }
}

fn play(g: &Globals, a: PlayArgs) -> Result<()> {
    let yaml =
        std::fs::read_to_string(&a.file).with_context(|| format!("read {}", a.file.display()))?;
    let stem = a
        .file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = kube::play::name_of(&yaml, a.project_name.as_deref(), &stem)?;
    let ctx = Ctx {
        layout: Layout::open(&g.root).with_context(|| format!("open {}", g.root.display()))?,
        store: Store::open(&g.root).with_context(|| format!("open store {}", g.root.display()))?,
    };
    if a.down {
        return down(&ctx, g, &name);
    }
    let dir = files_dir(g, &name);
    // Everything is translated (and refused) before anything starts.
    let played = kube::play::play(&yaml, Some(&name), &stem, &dir)?;
    let mut err = std::io::stderr().lock();
    for w in &played.warnings {
        let _ = writeln!(err, "WARN {w}");
    }
    drop(err);
    if a.replace {
        down(&ctx, g, &name)?;
    } else if ProjectDir::new(&ctx.layout, &name)
        .load_desired()?
        .is_some()
    {
        bail!("project {name} is running: use --replace, or --down first");
    }
    for image in ops::missing_images(&ctx, &played.project, &[])? {
        crate::pull_image(g, &image, false).with_context(|| format!("pull {image}"))?;
    }
    let r = write_files(&dir, &played.files).and_then(|()| {
        ops::up(
            &ctx,
            played.project,
            &UpOptions::default(),
            &mut crate::compose_cmd::progress,
        )
        .map_err(anyhow::Error::from)
    });
    if let Err(e) = r {
        // Nothing left behind of a play that did not come up.
        let _ = down(&ctx, g, &name);
        return Err(e);
    }
    println!("{name}");
    Ok(())
}

fn write_files(dir: &std::path::Path, files: &[kube::play::PlayFile]) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    // Secrets are in there: only root passes; containers see them through bind mounts
    // of the subdirectories.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("create {}", dir.display()))?;
    for f in files {
        let p = dir.join(&f.path);
        let parent = p.parent().unwrap_or(dir);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .with_context(|| format!("create {}", parent.display()))?;
        std::fs::write(&p, &f.data).with_context(|| format!("write {}", p.display()))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(f.mode))
            .with_context(|| format!("chmod {}", p.display()))?;
    }
    Ok(())
}
