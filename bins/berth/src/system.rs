//! `berth system`: host-wide chores. `boot` starts, after a reboot, the containers whose
//! restart policy asks for it (berth has no daemon to do it when it starts; a boot unit
//! runs this, see contrib/berth-boot.service and berth_engine::boot for the rules).

use crate::containers::{engine_err, open, report, short_id, Eng};
use crate::Globals;
use anyhow::{anyhow, Result};
use berth_engine::boot::{self, Action};
use berth_engine::{create, status, Error as EngErr};

#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Start the containers a reboot stopped, by their restart policy (always;
    /// unless-stopped unless stopped by the user; on-failure after a failure), and remove
    /// the --rm containers it left behind. Run once at boot (contrib/berth-boot.service).
    Boot,
    /// Remove stopped containers, unused networks, dangling images (all unused ones with
    /// -a) and, with --volumes, unused anonymous volumes
    Prune(PruneArgs),
}

#[derive(clap::Args)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
    /// Prune anonymous volumes
    #[arg(long)]
    volumes: bool,
}

pub fn dispatch(g: &Globals, c: Cmd) -> i32 {
    let e = match open(g) {
        Ok(e) => e,
        Err(x) => return report(Err(x)),
    };
    match c {
        Cmd::Boot => boot_all(&e),
        Cmd::Prune(a) => report(prune(g, &e, a)),
    }
}

/// Prints the ID of each container started; a failure is reported and the rest still
/// handled (exit 125 if any failed).
fn boot_all(e: &Eng) -> i32 {
    // What the crash or reboot left half-made goes first.
    if let Err(x) = berth_engine::inventory::sweep(&e.layout, &e.store) {
        crate::print_error(&engine_err(e, x).context("boot: sweep"));
    }
    let ids = match e.layout.container_ids() {
        Ok(ids) => ids,
        Err(x) => return report(Err(x.into())),
    };
    let mut failed = Vec::new();
    for id in ids {
        // A container removed meanwhile is simply skipped.
        let Ok(c) = e.layout.load_config(&id) else {
            continue;
        };
        let Ok(s) = status::current(&e.layout, &id) else {
            continue;
        };
        let r: Result<()> = match boot::action(&c, &s) {
            Action::Leave => Ok(()),
            Action::Start => match create::start_container(&e.layout, &e.store, &id, false) {
                Ok(h) => {
                    if !h.already_running {
                        println!("{id}");
                    }
                    Ok(())
                }
                Err(EngErr::Protocol(m)) => Err(anyhow!(m)),
                Err(x) => Err(engine_err(e, x)),
            },
            Action::Remove => {
                berth_engine::remove::remove_container(&e.layout, &e.store, &id, true)
                    .map_err(|x| engine_err(e, x))
            }
        };
        if let Err(x) = r {
            crate::print_error(&x.context(format!("boot: container {}", short_id(&id))));
            failed.push(c.name);
        }
    }
    if failed.is_empty() {
        0
    } else {
        eprintln!("Error: failed to start containers: {}", failed.join(", "));
        125
    }
}

/// docker's `system prune`: containers first (so their networks, images and volumes are
/// unused after), then networks (bridges and rules go with them), images, volumes.
fn prune(g: &Globals, e: &Eng, a: PruneArgs) -> Result<()> {
    if !a.force {
        use std::io::Write;
        let mut what = vec![
            "all stopped containers",
            "all networks not used by at least one container",
        ];
        if a.volumes {
            what.push("all anonymous volumes not used by at least one container");
        }
        what.push(if a.all {
            "all images without at least one container associated to them"
        } else {
            "all dangling images"
        });
        println!("WARNING! This will remove:");
        for w in &what {
            println!("  - {w}");
        }
        print!("\nAre you sure you want to continue? [y/N] ");
        std::io::stdout().flush()?;
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        if !matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            return Ok(());
        }
    }
    crate::containers::prune_containers(e)?;
    let gone = berth_engine::net::Networks::new(&e.layout)
        .prune()
        .map_err(|x| engine_err(e, x))?;
    if !gone.is_empty() {
        println!("Deleted Networks:");
        for n in gone {
            println!("{n}");
        }
        println!();
    }
    if a.volumes {
        let (names, _) = berth_engine::volumes::prune(&e.layout, false)?;
        if !names.is_empty() {
            println!("Deleted Volumes:");
            for n in names {
                println!("{n}");
            }
            println!();
        }
    }
    crate::prune_images(g, a.all)
}
