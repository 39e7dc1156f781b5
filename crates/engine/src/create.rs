//! `create` and `start`: a container's records, rootfs and bundle; then its monitor.
//! See docs/engine.md ("Flows").

use crate::error::{Error, Result};
use crate::layout::{mkdir_private, Layout};
use crate::options::{CreateOptions, MountSpec};
use crate::record::{now_rfc3339, pid_start_time, ContainerConfig, Creating, Status};
use crate::spec::{build_spec, SpecContext};
use crate::status;
use berth_image::overlay;
use berth_image::store::{ImageRecord, Store};
use berth_registry::manifest::ImageConfig;
use berth_sys::timing;
use std::collections::BTreeMap;
use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Default parent of containers' cgroups.
pub const DEFAULT_CGROUP_PARENT: &str = "/berth";

/// docker's rule for object names: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at least `min` and at
/// most 128 characters (containers: 2, networks: 1).
pub fn valid_name(name: &str, min: usize) -> bool {
    let b = name.as_bytes();
    b.len() >= min.max(1)
        && b.len() <= 128
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}

/// docker's rule for container names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn check_name(name: &str) -> Result<()> {
    if valid_name(name, 2) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    let p = Path::new("/dev/urandom");
    std::fs::File::open(p)
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| Error::io(p, e))?;
    Ok(b)
}

/// A new container ID: 64 hex digits from /dev/urandom (never all digits, like docker, so
/// a short ID is never mistaken for a number).
pub fn new_id() -> Result<String> {
    loop {
        let id: String = random_bytes::<32>()?
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if !id[..12].bytes().all(|c| c.is_ascii_digit()) {
            return Ok(id);
        }
    }
}

const ADJECTIVES: &[&str] = &[
    "admiring",
    "adoring",
    "affectionate",
    "agitated",
    "amazing",
    "angry",
    "awesome",
    "beautiful",
    "blissful",
    "bold",
    "brave",
    "busy",
    "charming",
    "clever",
    "compassionate",
    "competent",
    "condescending",
    "confident",
    "cool",
    "cranky",
    "crazy",
    "dazzling",
    "determined",
    "distracted",
    "dreamy",
    "eager",
    "ecstatic",
    "elastic",
    "elated",
    "elegant",
    "eloquent",
    "epic",
    "exciting",
    "fervent",
    "festive",
    "flamboyant",
    "focused",
    "friendly",
    "frosty",
    "funny",
    "gallant",
    "gifted",
    "goofy",
    "gracious",
    "great",
    "happy",
    "hardcore",
    "heuristic",
    "hopeful",
    "hungry",
    "infallible",
    "inspiring",
    "intelligent",
    "interesting",
    "jolly",
    "jovial",
    "keen",
    "kind",
    "laughing",
    "loving",
    "lucid",
    "magical",
    "modest",
    "musing",
    "mystifying",
    "naughty",
    "nervous",
    "nice",
    "nifty",
    "nostalgic",
    "objective",
    "optimistic",
    "peaceful",
    "pedantic",
    "pensive",
    "practical",
    "priceless",
    "quirky",
    "quizzical",
    "recursing",
    "relaxed",
    "reverent",
    "romantic",
    "sad",
    "serene",
    "sharp",
    "silly",
    "sleepy",
    "stoic",
    "strange",
    "stupefied",
    "suspicious",
    "sweet",
    "tender",
    "thirsty",
    "trusting",
    "unruffled",
    "upbeat",
    "vibrant",
    "vigilant",
    "vigorous",
    "wizardly",
    "wonderful",
    "xenodochial",
    "youthful",
    "zealous",
    "zen",
];

const NAMES: &[&str] = &[
    "agnesi",
    "albattani",
    "allen",
    "almeida",
    "archimedes",
    "ardinghelli",
    "aryabhata",
    "austin",
    "babbage",
    "banach",
    "bardeen",
    "bartik",
    "bassi",
    "bell",
    "bhabha",
    "black",
    "blackwell",
    "bohr",
    "booth",
    "borg",
    "bose",
    "bouman",
    "brown",
    "carson",
    "cerf",
    "chandrasekhar",
    "chaum",
    "clarke",
    "colden",
    "cori",
    "cray",
    "curie",
    "darwin",
    "davinci",
    "dijkstra",
    "dubinsky",
    "easley",
    "einstein",
    "elion",
    "engelbart",
    "euclid",
    "euler",
    "faraday",
    "fermat",
    "fermi",
    "feynman",
    "franklin",
    "galileo",
    "gates",
    "goldberg",
    "goldstine",
    "golick",
    "goodall",
    "hamilton",
    "hawking",
    "heisenberg",
    "hermann",
    "hertz",
    "hodgkin",
    "hofstadter",
    "hopper",
    "hugle",
    "hypatia",
    "jackson",
    "jang",
    "jennings",
    "jepsen",
    "johnson",
    "joliot",
    "jones",
    "kalam",
    "keller",
    "kepler",
    "khorana",
    "kilby",
    "knuth",
    "lalande",
    "lamarr",
    "lamport",
    "leakey",
    "leavitt",
    "lederberg",
    "lehmann",
    "lewin",
    "lichterman",
    "liskov",
    "lovelace",
    "lumiere",
    "mahavira",
    "margulis",
    "matsumoto",
    "mayer",
    "mccarthy",
    "mcclintock",
    "meitner",
    "mendel",
    "merkle",
    "minsky",
    "mirzakhani",
    "morse",
    "murdock",
    "napier",
    "nash",
    "neumann",
    "newton",
    "nobel",
    "noether",
    "northcutt",
    "noyce",
    "panini",
    "pare",
    "pascal",
    "pasteur",
    "payne",
    "perlman",
    "pike",
    "poincare",
    "poitras",
    "ptolemy",
    "raman",
    "ramanujan",
    "ride",
    "ritchie",
    "robinson",
    "roentgen",
    "rosalind",
    "rubin",
    "saha",
    "sammet",
    "shamir",
    "shannon",
    "shaw",
    "shirley",
    "shockley",
    "sinoussi",
    "snyder",
    "spence",
    "stonebraker",
    "sutherland",
    "swanson",
    "swartz",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "varahamihira",
    "villani",
    "visvesvaraya",
    "volhard",
    "wescoff",
    "wiles",
    "williams",
    "wilson",
    "wing",
    "wozniak",
    "wright",
    "wu",
    "yalow",
    "yonath",
    "zhukovsky",
];

/// A docker-style random name (`adjective_scientist`).
pub fn random_name() -> Result<String> {
    let r = random_bytes::<4>()?;
    let a = ADJECTIVES[u16::from_le_bytes([r[0], r[1]]) as usize % ADJECTIVES.len()];
    let n = NAMES[u16::from_le_bytes([r[2], r[3]]) as usize % NAMES.len()];
    if a == "boring" && n == "wozniak" {
        return random_name(); // Steve Wozniak is not boring (moby's rule)
    }
    Ok(format!("{a}_{n}"))
}

/// Links `name` -> `id` atomically; `NameInUse` when another container has it.
pub fn link_name(layout: &Layout, name: &str, id: &str) -> Result<()> {
    let p = layout.names_dir().join(name);
    match std::os::unix::fs::symlink(id, &p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(Error::NameInUse(name.to_string()))
        }
        Err(e) => Err(Error::io(&p, e)),
    }
}

/// Removes the name link `name` if it still points at `id`.
pub fn unlink_name(layout: &Layout, name: &str, id: &str) {
    let p = layout.names_dir().join(name);
    if std::fs::read_link(&p).is_ok_and(|t| t.as_os_str() == id) {
        let _ = std::fs::remove_file(&p);
    }
}

/// docker's message for a taken name (it names the owner).
pub fn name_in_use_message(layout: &Layout, name: &str) -> String {
    let owner = crate::lookup::id_of_name(layout, name).unwrap_or_default();
    format!(
        "Conflict. The container name \"/{name}\" is already in use by container \"{owner}\". \
         You have to remove (or rename) that container to be able to reuse that name."
    )
}

/// The image config (`config` blob) of a stored image.
pub fn image_config(store: &Store, rec: &ImageRecord) -> Result<ImageConfig> {
    let b = store.read_blob(&rec.config)?;
    serde_json::from_slice(&b).map_err(|e| Error::Json(rec.config.clone().into(), e))
}

/// What to undo when create fails half-way.
struct Undo<'a> {
    layout: &'a Layout,
    store: &'a Store,
    id: String,
    name: Option<String>,
    dir: bool,
    rootfs: bool,
    /// Anonymous volumes build_spec made for this container.
    anonymous_volumes: Vec<String>,
    done: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if self.rootfs {
            let _ = overlay::unmount_rootfs(self.store, &self.id, true);
        }
        if self.dir {
            // Renamed away first: a signal in the middle of the deletion leaves a dot-named
            // tree (swept once we are gone), never a directory without its records.
            let dir = self.layout.container_dir(&self.id);
            let trash = self
                .layout
                .containers_dir_of(&self.id)
                .join(crate::remove::trash_name(&self.id));
            if std::fs::rename(&dir, &trash).is_ok() {
                let _ = std::fs::remove_dir_all(&trash);
            }
        }
        if let Some(n) = &self.name {
            unlink_name(self.layout, n, &self.id);
        }
        for v in &self.anonymous_volumes {
            let _ = crate::volumes::discard(self.layout, v);
        }
    }
}

/// Creates a container from `opts` (the image must be in the store: `Error::Image(NoSuchImage)`
/// otherwise, so the caller can pull and retry). Returns its config.
pub fn create_container(
    layout: &Layout,
    store: &Store,
    opts: CreateOptions,
) -> Result<ContainerConfig> {
    create_container_with(layout, store, opts, false, &mut Vec::new())
}

/// The image's platform against `--platform` (an error: the caller may pull that
/// platform) or, without one, against the host's (docker's warning).
pub fn check_platform(
    reference: &str,
    image: &ImageConfig,
    want: Option<&str>,
) -> Result<Option<String>> {
    use berth_registry::manifest::Platform;
    let actual = Platform {
        architecture: image.architecture.clone(),
        os: image.os.clone(),
        variant: image.variant.clone(),
        os_version: None,
    };
    if actual.os.is_empty() || actual.architecture.is_empty() {
        return Ok(None);
    }
    match want {
        Some(w) => {
            let p = Platform::parse(w).ok_or_else(|| {
                Error::Invalid(format!("invalid --platform {w:?} (want os/arch[/variant])"))
            })?;
            if p.matches(&actual) {
                Ok(None)
            } else {
                Err(Error::PlatformMismatch {
                    reference: reference.to_string(),
                    wanted: p.to_string(),
                    actual: actual.to_string(),
                })
            }
        }
        None => {
            let host = Platform::host();
            Ok((!host.matches(&actual)).then(|| {
                format!(
                    "WARNING: The requested image's platform ({actual}) does not match the \
                     detected host platform ({host}) and no specific platform was requested"
                )
            }))
        }
    }
}

/// `--volumes-from`: the other container's binds and volumes (its anonymous ones by
/// name), ro/rw as asked or as they are there; a target the flags mount already is skipped
/// (docker: -v and --mount win).
fn volumes_from(layout: &Layout, opts: &mut CreateOptions) -> Result<()> {
    let mut extra = Vec::new();
    for v in &opts.volumes_from {
        let (r, ro) = crate::parse::volumes_from(v)?;
        let other = crate::lookup::resolve(layout, &r)?;
        let cfg = layout.load_config(&other)?;
        let own_ro = |t: &str| {
            cfg.options.mounts.iter().any(|m| match m {
                MountSpec::Bind {
                    target, read_only, ..
                }
                | MountSpec::Volume {
                    target, read_only, ..
                } => target == t && *read_only,
                MountSpec::Tmpfs { .. } => false,
            })
        };
        for m in &cfg.options.mounts {
            if let MountSpec::Bind {
                source,
                target,
                read_only,
                propagation,
                ..
            } = m
            {
                extra.push(MountSpec::Bind {
                    source: source.clone(),
                    target: target.clone(),
                    read_only: ro.unwrap_or(*read_only),
                    propagation: propagation.clone(),
                    create_source: false,
                });
            }
        }
        for u in &cfg.volumes {
            extra.push(MountSpec::Volume {
                name: Some(u.name.clone()),
                target: u.target.clone(),
                read_only: ro.unwrap_or_else(|| own_ro(&u.target)),
            });
        }
    }
    let target = |m: &MountSpec| match m {
        MountSpec::Bind { target, .. }
        | MountSpec::Volume { target, .. }
        | MountSpec::Tmpfs { target, .. } => target.trim_end_matches('/').to_string(),
    };
    for m in extra {
        let t = target(&m);
        if !opts.mounts.iter().any(|x| target(x) == t) {
            opts.mounts.push(m);
        }
    }
    Ok(())
}

/// [`create_container`]; with `keep_mounted` the rootfs stays mounted for a start that
/// follows at once (`run`): unmounting an overlay syncs its upper filesystem (~20 ms here),
/// and start would only mount it again.
pub fn create_container_with(
    layout: &Layout,
    store: &Store,
    mut opts: CreateOptions,
    keep_mounted: bool,
    warnings: &mut Vec<String>,
) -> Result<ContainerConfig> {
    let recs = store.records()?;
    let rec = store.resolve(&recs, &opts.image)?;
    let image = image_config(store, &rec)?;
    timing::mark("image lookup");
    warnings.extend(check_platform(
        &opts.image,
        &image,
        opts.platform.as_deref(),
    )?);
    crate::namespaces::check_create(layout, &opts)?;
    volumes_from(layout, &mut opts)?;
    warnings.extend(crate::spec::adapt(&mut opts));
    if let Some(n) = &opts.name {
        check_name(n.strip_prefix('/').unwrap_or(n))?;
    }
    let image_exposed: Vec<String> = image
        .config
        .as_ref()
        .and_then(|c| c.exposed_ports.as_ref())
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    crate::net::resolve_create(layout, &mut opts, &image_exposed)?;
    if opts.cgroup_parent.is_empty() {
        opts.cgroup_parent = std::env::var("BERTH_CGROUP_PARENT")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_CGROUP_PARENT.to_string());
    }
    if !opts.cgroup_parent.starts_with('/') {
        opts.cgroup_parent.insert(0, '/');
    }
    let runtime = crate::bins::resolve_runtime(opts.runtime.as_deref())?;
    layout.ensure_run_dir()?;
    let runtime_root = layout.runtime_root(&runtime);
    timing::mark("option checks, network options");

    let id = new_id()?;
    let mut undo = Undo {
        layout,
        store,
        id: id.clone(),
        name: None,
        dir: false,
        rootfs: false,
        anonymous_volumes: Vec::new(),
        done: false,
    };
    // The directory appears whole, with its creator's mark: from here on a creation cut
    // short (a signal, a crash) is a half-made container that inventory recognises by its
    // dead creator and sweeps (docs/engine.md, "Crash safety").
    let me = std::process::id() as i32;
    let creating = Creating {
        pid: me,
        pid_start: pid_start_time(me).unwrap_or(0),
        name: opts.name.clone().unwrap_or_default(),
        image: opts.image.clone(),
        created: now_rfc3339(),
    };
    // A `--rm` container's records live on the tmpfs: they go at its exit, and a busy
    // disk must not slow its run down (engine.md, "Off the disk").
    let home = if opts.auto_remove {
        layout.run_containers_dir()
    } else {
        layout.containers_dir()
    };
    let cdir = home.join(&id);
    let staging = home.join(format!(".{id}.creating-{me}"));
    mkdir_private(&staging)?;
    let staged = crate::record::save_json_nosync(&staging.join("creating.json"), &creating)
        .and_then(|_| mkdir_private(&staging.join("bundle")))
        .and_then(|_| std::fs::rename(&staging, &cdir).map_err(|e| Error::io(&cdir, e)));
    if let Err(e) = staged {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    undo.dir = true;
    timing::mark("records dir");

    // A name held by a dangling link or by an abandoned creation is taken back once.
    let link = |n: &str| match link_name(layout, n, &id) {
        Err(Error::NameInUse(_)) if crate::inventory::reclaim_name(layout, store, n) => {
            link_name(layout, n, &id)
        }
        r => r,
    };
    let name = match opts.name.clone() {
        Some(n) => {
            let n = n.strip_prefix('/').unwrap_or(&n).to_string();
            link(&n)?;
            n
        }
        None => {
            let mut tries = 0;
            loop {
                let n = random_name()?;
                match link(&n) {
                    Ok(()) => break n,
                    Err(Error::NameInUse(_)) if tries < 20 => tries += 1,
                    Err(e) => return Err(e),
                }
            }
        }
    };
    undo.name = Some(name.clone());
    opts.name = Some(name.clone());

    // `run --rm`: the rootfs is never mounted again and goes at exit, so its overlay is
    // volatile: unmounting it does not sync the store's whole filesystem (podman does this).
    let volatile = keep_mounted && opts.auto_remove;
    // Undone even if the mount fails: its directories and image lease are made first.
    undo.rootfs = true;
    timing::mark("name");
    let merged = overlay::mount_rootfs_opts(store, &rec, &id, volatile)?;
    timing::mark("image lease, overlay mount");
    let merged = std::path::absolute(&merged).map_err(|e| Error::io(&merged, e))?;
    let rootfs = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(&merged)
        .map_err(|e| Error::io(&merged, e))?;
    let init = if opts.init {
        Some(crate::init::ensure_init(layout)?)
    } else {
        None
    };
    let ctx = SpecContext {
        id: &id,
        layout,
        rootfs_path: &merged,
        init_path: init.as_deref(),
    };
    let built = build_spec(&opts, &image, rootfs.as_fd(), &ctx)?;
    timing::mark("spec");
    undo.anonymous_volumes = built
        .volumes
        .iter()
        .filter(|v| v.anonymous)
        .map(|v| v.name.clone())
        .collect();
    drop(rootfs);
    let spec_path = layout.bundle_dir(&id).join("config.json");
    let spec_json =
        serde_json::to_vec_pretty(&built.spec).map_err(|e| Error::Json(spec_path.clone(), e))?;
    // Synced below with the other records, unless volatile (run at once and thrown away
    // at exit: a crash leaves nothing worth syncing).
    crate::record::write_nosync(&spec_path, &spec_json)?;
    if !keep_mounted {
        overlay::unmount_rootfs(store, &id, false)?;
    }

    let config = ContainerConfig {
        id: id.clone(),
        name: name.clone(),
        created: now_rfc3339(),
        image_id: rec.config.clone(),
        image_manifest: rec.manifest.clone(),
        runtime: runtime.to_string_lossy().into_owned(),
        runtime_root: runtime_root.to_string_lossy().into_owned(),
        path: built.path,
        args: built.args,
        volumes: built.volumes,
        health: built.health,
        stop_signal: built.stop_signal,
        options: opts,
    };
    {
        // No state.json yet: a container without one is `created` (Layout::load_state).
        let _lock = layout.lock(&id)?;
        crate::record::save_json_nosync(&layout.config_path(&id), &config)?;
    }
    if !volatile {
        // The lease, the bundle and the record, written without waiting for the disk, are
        // made durable together: one journal commit instead of three (run -d).
        let lease = store.lease_path(&id)?;
        let cfg = layout.config_path(&id);
        berth_image::store::sync_paths(&[&lease, &spec_path, &cfg])?;
    }
    undo.done = true;
    // Complete now (config.json decides); the mark is only clutter.
    let _ = std::fs::remove_file(layout.creating_path(&id));
    let _ = crate::events::emit(layout, "container", "create", &id, attrs(&config));
    timing::mark("bundle, config.json, event");
    Ok(config)
}

use std::os::unix::fs::OpenOptionsExt;

/// The attributes docker puts on container events.
pub fn attrs(c: &ContainerConfig) -> BTreeMap<String, String> {
    let mut a: BTreeMap<String, String> = c.options.labels.clone();
    a.insert("name".into(), c.name.clone());
    a.insert("image".into(), c.options.image.clone());
    a
}

/// A started container.
#[derive(Debug)]
pub struct StartHandle {
    pub id: String,
    /// It was running already (docker's `start` then does nothing).
    pub already_running: bool,
    /// The monitor's pid (0 when already running).
    pub monitor_pid: u32,
}

/// An unreadable record says how to get rid of the container.
fn cannot_start(e: Error) -> Error {
    match e {
        Error::Unreadable { id, reason } => Error::Unreadable {
            id,
            reason: format!("{reason}: it cannot be started; remove it with `rm -f`"),
        },
        e => e,
    }
}

/// docker's exit code for a start failure reported by the runtime.
pub fn start_failure_code(msg: &str) -> i32 {
    let m = msg.to_ascii_lowercase();
    if m.contains("executable file not found") || m.contains("no such file or directory") {
        127
    } else if m.contains("permission denied") {
        126
    } else {
        125
    }
}

/// Starts container `id`: remounts its rootfs and spawns its monitor, then waits for the
/// monitor's ready line. A failure the monitor reports comes back as `Error::Protocol(msg)`
/// (map it with [`start_failure_code`]). With `attach_wait` the monitor stops after
/// `runtime create` until the first attach request.
pub fn start_container(
    layout: &Layout,
    store: &Store,
    id: &str,
    attach_wait: bool,
) -> Result<StartHandle> {
    // An old monitor may still be finishing (unmount, events) after its container exited.
    let t = Instant::now();
    loop {
        let s = status::current(layout, id).map_err(cannot_start)?;
        if status::watched(&s)
            && !matches!(
                s.status,
                Status::Running | Status::Restarting | Status::Paused
            )
            && t.elapsed() < Duration::from_secs(5)
        {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        break;
    }
    let lock = match layout.lock(id) {
        Ok(l) => l,
        Err(Error::Io(_, e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NoSuchContainer(id.to_string()))
        }
        Err(e) => return Err(e),
    };
    // Under the lock: a removal that held it before us has renamed the directory away.
    let config = match layout.load_config(id) {
        Err(Error::Io(_, e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NoSuchContainer(id.to_string()))
        }
        r => r?,
    };
    let state = status::load(layout, id).map_err(cannot_start)?;
    let state = status::corrected(&state).unwrap_or(state);
    if status::watched(&state) || status::init_alive(&state) {
        return Ok(StartHandle {
            id: id.to_string(),
            already_running: true,
            monitor_pid: 0,
        });
    }
    if state.status == Status::Removing || state.status == Status::Dead {
        return Err(Error::Invalid(format!(
            "container {id} is marked for removal and cannot be started"
        )));
    }
    // Whatever the record says, processes in its cgroup mean it is not stopped.
    let stray = status::cgroup_pids(layout, id);
    if !stray.is_empty() {
        return Err(Error::Invalid(format!(
            "container {id} has {} processes in its cgroup {} although its record says {}: \
             remove it with `rm -f`",
            stray.len(),
            status::cgroup_path(layout, id),
            state.status.as_str()
        )));
    }
    let recs = store.records()?;
    let rec = recs
        .images
        .get(&config.image_manifest)
        .cloned()
        .ok_or_else(|| {
            Error::Invalid(format!(
                "image {} of container {id} is no longer in the store",
                config.image_id
            ))
        })?;
    overlay::remount_rootfs(store, &rec, id)?;
    // After a reboot the runtime's tmpfs is not there yet.
    if Path::new(&config.runtime_root).starts_with(layout.run_dir()) {
        layout.ensure_run_dir()?;
    }
    timing::mark("start checks");

    let monitor = crate::bins::locate("berth-monitor")?;
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| Error::io("pipe", e.into()))?;
    let mut cmd = std::process::Command::new(&monitor);
    cmd.arg("--root")
        .arg(layout.root())
        .args(["--id", id, "--ready-fd", "3"]);
    if attach_wait {
        cmd.arg("--attach-wait");
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    use command_fds::{CommandFdExt, FdMapping};
    cmd.fd_mappings(vec![FdMapping {
        parent_fd: w,
        child_fd: 3,
    }])
    .map_err(|e| Error::Invalid(format!("map the ready pipe: {e}")))?;
    let mut child = cmd.spawn().map_err(|e| Error::io(&monitor, e))?;
    drop(cmd); // closes our copy of the write end
    let pid = child.id();
    // Record the process now, so a concurrent `start` sees it and does nothing. It is the
    // monitor's keeper (it forks the monitor, which records itself).
    let mut s = state.clone();
    s.keeper_pid = pid as i32;
    s.keeper_start = pid_start_time(pid as i32).unwrap_or(0);
    s.monitor_pid = 0;
    s.monitor_start = 0;
    s.error.clear();
    // The keeper's pid means something only while it lives: not synced.
    layout.save_state_nosync(id, &s, &lock)?;
    drop(lock);
    // Reap it if it exits while we still run (attach), so it never lingers as our zombie.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    timing::mark("monitor spawn");

    let line = crate::bins::read_ready_line(r)?;
    timing::mark("monitor: runtime create, start");
    let line = line.as_str();
    if line == "ok" {
        return Ok(StartHandle {
            id: id.to_string(),
            already_running: false,
            monitor_pid: pid,
        });
    }
    if let Some(msg) = line.strip_prefix("error: ") {
        return Err(Error::Protocol(msg.to_string()));
    }
    let log = std::fs::read_to_string(layout.monitor_log_path(id)).unwrap_or_default();
    let last = log.lines().last().unwrap_or("").to_string();
    Err(Error::Invalid(format!(
        "monitor of container {id} exited without reporting{}",
        if last.is_empty() {
            String::new()
        } else {
            format!(": {last}")
        }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["ab", "web_1", "a.b-c", "X9"] {
            check_name(ok).unwrap();
        }
        for bad in ["", "a", "_a", "-a", "a b", "a/b", "ä1"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        let n = random_name().unwrap();
        check_name(&n).unwrap();
        assert!(n.contains('_'));
    }

    #[test]
    fn ids_and_codes() {
        let id = new_id().unwrap();
        assert!(crate::lookup::is_full_id(&id));
        assert_ne!(id, new_id().unwrap());
        assert_eq!(
            start_failure_code(r#"exec: "nope": executable file not found in $PATH"#),
            127
        );
        assert_eq!(
            start_failure_code("exec /x: no such file or directory"),
            127
        );
        assert_eq!(start_failure_code("exec /etc: permission denied"), 126);
        assert_eq!(start_failure_code("cgroup: boom"), 125);
    }

    #[test]
    fn name_links_are_exclusive() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::open(d.path()).unwrap();
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        link_name(&l, "web", &a).unwrap();
        assert!(matches!(link_name(&l, "web", &b), Err(Error::NameInUse(_))));
        assert!(name_in_use_message(&l, "web").contains(&a));
        unlink_name(&l, "web", &b);
        assert!(l.names_dir().join("web").exists() || l.names_dir().join("web").is_symlink());
        unlink_name(&l, "web", &a);
        assert!(!l.names_dir().join("web").is_symlink());
    }
}
