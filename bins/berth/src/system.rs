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
}

pub fn dispatch(g: &Globals, c: Cmd) -> i32 {
    let e = match open(g) {
        Ok(e) => e,
        Err(x) => return report(Err(x)),
    };
    match c {
        Cmd::Boot => boot_all(&e),
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
