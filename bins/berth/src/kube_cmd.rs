//! `berth kube generate`: Kubernetes manifests from compose files (issue 15 item 3). The
//! mapping is berth_services::kube's; here the flags, the output and the warnings.

use crate::Globals;
use anyhow::{bail, Context, Result};
use berth_engine::layout::Layout;
use berth_services::kube::{self, GenerateOptions, Publish};
use berth_services::state::ProjectDir;
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum Cmd {
    /// Move projects between berth and Kubernetes (generate)
    #[command(subcommand)]
    Kube(KubeCmd),
}

#[derive(Subcommand)]
pub enum KubeCmd {
    /// Generate Kubernetes manifests (Deployments, Services, ...) from compose files
    Generate(GenerateArgs),
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
    /// Services to generate (default: all)
    services: Vec<String>,
}

pub fn dispatch(g: &Globals, c: Cmd) -> i32 {
    let Cmd::Kube(KubeCmd::Generate(a)) = c;
    match generate(g, a) {
        Ok(()) => 0,
        Err(e) => {
            crate::print_error(&e);
            1
        }
    }
}

fn generate(g: &Globals, mut a: GenerateArgs) -> Result<()> {
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
            publish: if a.publish == "nodeport" {
                Publish::NodePort
            } else {
                Publish::LoadBalancer
            },
            runtime_class: a.runtime_class,
            services: a.services,
            volume_size: Some(a.volume_size),
        },
    )?;
    let mut err = std::io::stderr().lock();
    for w in project.warnings.iter().chain(&g.warnings) {
        let _ = writeln!(err, "WARN {w}");
    }
    match a.output {
        None => {
            std::io::stdout()
                .lock()
                .write_all(kube::to_yaml(&g).as_bytes())
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
