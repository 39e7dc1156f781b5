//! `create` and `run` as the engine does them for every front-end (the CLI, compose, the
//! API server): the image pulled as the pull policy says, the container created and
//! started, and a container that never ran tidied away. A front-end only says how a pull
//! shows its progress and where docker's messages go.

use crate::control;
use crate::create::{self, StartHandle};
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::options::{CreateOptions, NetworkMode};
use crate::record::ContainerConfig;
use crate::{remove, status};
use berth_image::distribution::{self, Progress, PullOptions};
use berth_image::store::{ImageRecord, Store};
use berth_registry::manifest::Platform;
use berth_registry::{Client, ClientOptions, Reference};
use std::sync::Arc;

/// docker's `--pull`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    Always,
    /// docker's default: pull an image that is not here (or not of the platform asked).
    #[default]
    Missing,
    Never,
}

impl std::str::FromStr for PullPolicy {
    type Err = Error;
    fn from_str(s: &str) -> Result<PullPolicy> {
        match s {
            "always" => Ok(PullPolicy::Always),
            "missing" => Ok(PullPolicy::Missing),
            "never" => Ok(PullPolicy::Never),
            p => Err(Error::Invalid(format!(
                "invalid pull option: {p:?}: must be one of \"always\", \"missing\" or \"never\""
            ))),
        }
    }
}

/// What a front-end provides to a run: the pull itself (with its own progress display:
/// bars on a terminal, docker's JSON stream over the API) and the lines docker prints on
/// the way ("Unable to find image ... locally", warnings).
pub trait Frontend {
    fn pull(&mut self, image: &str, platform: Option<&str>) -> Result<()>;
    fn say(&mut self, line: &str);
}

/// A pull, checked before anything is fetched (a front-end says "Pulling from" between).
pub struct Pull {
    pub reference: Reference,
    opts: PullOptions,
}

impl Pull {
    /// `image` of `platform` (else this host's); `allow_devices` makes the device nodes
    /// layers carry.
    pub fn new(image: &str, platform: Option<&str>, allow_devices: bool) -> Result<Pull> {
        let reference = Reference::parse(image).map_err(berth_image::Error::from)?;
        let mut opts = PullOptions::default();
        if let Some(p) = platform {
            opts.platform = Platform::parse(p).ok_or_else(|| {
                Error::Invalid(format!("invalid --platform {p:?} (want os/arch[/variant])"))
            })?;
        }
        opts.unpack.allow_devices = allow_devices;
        Ok(Pull { reference, opts })
    }

    /// Pulls it into `store` and tags it; the stored record.
    pub async fn run(
        &self,
        store: &Store,
        client_opts: &ClientOptions,
        progress: Arc<dyn Progress>,
    ) -> Result<ImageRecord> {
        let client = Client::new(client_opts.clone()).map_err(berth_image::Error::from)?;
        Ok(distribution::pull(store, &client, &self.reference, &self.opts, progress).await?)
    }
}

/// `keep_mounted` for a create whose start the client sends next (the API: docker's `run`
/// is a create, then a start): a `--rm` container's rootfs stays mounted, volatile, as
/// `berth run`'s does. It is removed at its exit and never mounted again, so unmounting it
/// now and mounting it again at the start would only cost a sync of the store's
/// filesystem (the overlay's unmount) and synced lease writes each way. Any other
/// container is unmounted until its start, as `berth create` leaves it.
pub fn keep_mounted_for_start(opts: &CreateOptions) -> bool {
    opts.auto_remove
}

/// Creates a container of `opts`, pulling its image as `policy` says. `keep_mounted`
/// leaves the rootfs mounted for a start that follows at once (`run`).
pub fn create(
    layout: &Layout,
    store: &Store,
    opts: CreateOptions,
    keep_mounted: bool,
    policy: PullPolicy,
    fe: &mut dyn Frontend,
) -> Result<ContainerConfig> {
    let mut warnings = Vec::new();
    if opts.network == NetworkMode::Bridge {
        if let Some(w) = crate::net::store::forwarding_warning() {
            fe.say(w);
        }
    }
    let platform = opts.platform.clone();
    if policy == PullPolicy::Always {
        fe.pull(&opts.image, platform.as_deref())?;
    }
    let mut create =
        |o| create::create_container_with(layout, store, o, keep_mounted, &mut warnings);
    let r = match create(opts.clone()) {
        Err(Error::Image(berth_image::Error::NoSuchImage(_))) if policy == PullPolicy::Missing => {
            fe.say(&format!("Unable to find image '{}' locally", opts.image));
            fe.pull(&opts.image, platform.as_deref())?;
            create(opts)
        }
        Err(Error::PlatformMismatch { .. }) if policy == PullPolicy::Missing => {
            fe.pull(&opts.image, platform.as_deref())?;
            create(opts)
        }
        r => r,
    };
    for w in &warnings {
        fe.say(w);
    }
    r
}

/// A start that failed: the error and docker's exit status for it (125 the engine, 126
/// a command that cannot be invoked, 127 one not found).
#[derive(Debug)]
pub struct StartFailure {
    pub error: Error,
    pub code: i32,
}

impl StartFailure {
    pub fn new(error: Error) -> StartFailure {
        let code = match &error {
            Error::Protocol(m) => create::start_failure_code(m),
            _ => 125,
        };
        StartFailure { error, code }
    }
}

/// Starts container `c` just created by [`create`]; when that fails, what never ran is
/// tidied as [`tidy_after_failure`] says. `attach_wait`: the monitor waits for a client.
pub fn start(
    layout: &Layout,
    store: &Store,
    c: &ContainerConfig,
    attach_wait: bool,
) -> std::result::Result<StartHandle, StartFailure> {
    create::start_container(layout, store, &c.id, attach_wait).map_err(|e| {
        let f = StartFailure::new(e);
        tidy_after_failure(layout, store, c, &f.error);
        f
    })
}

/// After a failed start (or a lost attach) of `c`: once its monitor has finished, a
/// container that is not running goes if it was `--rm` or its network could not be set
/// up (bad input changes nothing), else its rootfs is unmounted. A running container is
/// left alone.
pub fn tidy_after_failure(layout: &Layout, store: &Store, c: &ContainerConfig, e: &Error) {
    control::settle(layout, &c.id);
    let s = status::current(layout, &c.id).unwrap_or_default();
    if status::is_running(&s) || status::watched(&s) {
        return;
    }
    let network_failure = e.to_string().starts_with("network: ");
    if c.options.auto_remove || network_failure {
        if layout.config_path(&c.id).exists() {
            let _ = remove::remove_container(layout, store, &c.id, true);
        }
    } else {
        // create left it mounted for this start.
        let _ = berth_image::overlay::unmount_rootfs(store, &c.id, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_parses_dockers_words_and_names_a_bad_one() {
        assert_eq!("always".parse::<PullPolicy>().unwrap(), PullPolicy::Always);
        assert_eq!(
            "missing".parse::<PullPolicy>().unwrap(),
            PullPolicy::Missing
        );
        assert_eq!("never".parse::<PullPolicy>().unwrap(), PullPolicy::Never);
        let e = "sometimes".parse::<PullPolicy>().unwrap_err().to_string();
        assert!(
            e.contains("\"sometimes\"") && e.contains("\"never\""),
            "{e}"
        );
    }

    #[test]
    fn only_rm_containers_stay_mounted_for_a_later_start() {
        let mut o = CreateOptions::default();
        assert!(!keep_mounted_for_start(&o));
        o.auto_remove = true;
        assert!(keep_mounted_for_start(&o));
    }

    #[test]
    fn start_failure_codes_are_dockers() {
        let code = |m: &str| StartFailure::new(Error::Protocol(m.into())).code;
        assert_eq!(
            code("exec: \"nope\": executable file not found in $PATH"),
            127
        );
        assert_eq!(code("exec /x: permission denied"), 126);
        assert_eq!(code("cgroup: something else"), 125);
        assert_eq!(StartFailure::new(Error::Invalid("x".into())).code, 125);
    }
}
