//! The builder: each planned stage from its base (an image in the store, pulled when
//! missing; `scratch`; an earlier stage), then each instruction. RUN runs in a container
//! of the engine on an overlay of the layers so far, and its upper directory becomes the
//! next layer (berth_engine::commit); COPY and ADD copy into an overlay of the layers so
//! far the same way; the other instructions edit the image config. See docs/build.md.

use crate::context::{self, Context, ContextSource};
use crate::copy;
use crate::dockerfile::{
    self, CommandLine, CopyAdd, Dockerfile, Healthcheck, Instruction, Kind, MountType,
    NetworkMode as RunNet, Run, RunScript, Source,
};
use crate::error::{BuildError, Result};
use crate::expand::{self, BuildArgs, GlobalArgs, Platform as ArgPlatform, StageEnv};
use berth_engine::layout::Layout;
use berth_engine::options::{CreateOptions, MountSpec, NetworkMode};
use berth_engine::run::Frontend;
use berth_image::store::{ImageRecord, Store};
use berth_image::unpack::UnpackOptions;
use berth_registry::manifest::{self as mf, Descriptor, ImageConfig, Platform};
use berth_registry::Reference;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, UNIX_EPOCH};

/// Set by [`cancel`]: the build stops after the step running.
static CANCELLED: AtomicBool = AtomicBool::new(false);
/// The RUN containers running now, for [`cancel`] to kill.
static CURRENT: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Stops the build of this process (a signal handler's thread calls it): the RUN
/// running is killed, and the build returns an error once it has removed what it made.
pub fn cancel(layout: &Layout, store: &Store) {
    CANCELLED.store(true, Ordering::SeqCst);
    let ids = CURRENT.lock().map(|c| c.clone()).unwrap_or_default();
    for id in ids {
        let _ = berth_engine::control::kill(layout, store, &id, &id, 9);
    }
}

fn check_cancelled() -> Result<()> {
    if CANCELLED.load(Ordering::SeqCst) {
        return Err(BuildError::Invalid("build canceled".into()));
    }
    Ok(())
}

/// The network RUN gets unless it says `--network`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RunNetwork {
    /// docker's default: the default bridge network.
    #[default]
    Default,
    None,
    Host,
    /// A network made with `berth network create`.
    Named(String),
}

/// Where the Dockerfile comes from.
pub enum DockerfileSource {
    /// `CONTEXT/Dockerfile`.
    Default,
    /// `-f PATH`.
    Path(PathBuf),
    /// `-f -`: its text.
    Text(String),
}

/// Everything `berth build` takes, resolved.
pub struct BuildOptions {
    pub context: ContextSource,
    pub dockerfile: DockerfileSource,
    /// `-t`, as given.
    pub tags: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    /// Pull base images even when they are in the store.
    pub pull: bool,
    pub labels: BTreeMap<String, String>,
    pub network: RunNetwork,
    /// `--secret id=ID,src=PATH`.
    pub secrets: BTreeMap<String, PathBuf>,
    /// Reproducible output: every timestamp the build writes (config, history, layer
    /// mtimes, clamped) is this many seconds since the epoch. None: wall-clock times and
    /// the files' own mtimes.
    pub epoch: Option<u64>,
}

/// The image built.
#[derive(Debug, Clone)]
pub struct Built {
    /// The image ID (config digest).
    pub id: String,
    pub manifest: String,
    /// Full references it was tagged with.
    pub tags: Vec<String>,
}

/// The image of a stage while it is built.
#[derive(Clone)]
struct State {
    config: Value,
    layers: Vec<Descriptor>,
    chain_ids: Vec<String>,
    env: StageEnv,
    /// CMD was set in this stage (an ENTRYPOINT then keeps it).
    cmd_set: bool,
}

impl State {
    fn cfg(&mut self) -> &mut serde_json::Map<String, Value> {
        if !self.config["config"].is_object() {
            self.config["config"] = json!({});
        }
        self.config["config"].as_object_mut().expect("object")
    }

    fn shell(&self) -> Vec<String> {
        match self.config["config"]["Shell"].as_array() {
            Some(a) if !a.is_empty() => a
                .iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect(),
            _ => vec!["/bin/sh".into(), "-c".into()],
        }
    }
}

/// A rootfs of some layers, mounted for a COPY (with a fresh upper directory that becomes
/// the layer) or to read from (`--from`, mounts). Unmounted and removed when dropped.
struct Mounted {
    dir: PathBuf,
    merged: PathBuf,
    upper: PathBuf,
    lowers: Vec<PathBuf>,
    fd: Option<OwnedFd>,
    mounted: bool,
}

impl Mounted {
    fn new(store: &Store, tmp: &Path, chain_ids: &[String]) -> Result<Mounted> {
        let d = tempfile::Builder::new()
            .prefix(&format!(
                "{}build-rootfs-",
                berth_image::store::temp_prefix()
            ))
            .tempdir_in(tmp)
            .map_err(|e| BuildError::Io(tmp.into(), e))?
            .keep();
        let lowers = berth_image::layers::lower_dirs(store, chain_ids)?;
        let (upper, work, merged) = (d.join("upper"), d.join("work"), d.join("merged"));
        let mut m = Mounted {
            dir: d,
            merged: upper.clone(),
            upper: upper.clone(),
            lowers,
            fd: None,
            mounted: false,
        };
        for p in [&upper, &work, &merged] {
            std::fs::create_dir(p).map_err(|e| BuildError::Io(p.clone(), e))?;
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&upper, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| BuildError::Io(upper.clone(), e))?;
        if !m.lowers.is_empty() {
            // Volatile: the upper directory is read once and thrown away, so the unmount
            // need not sync the store's filesystem.
            berth_image::overlay::mount_overlay_opts(&m.lowers, &upper, &work, &merged, true)?;
            m.mounted = true;
            m.merged = merged;
        }
        m.fd = Some(context::open_root(&m.merged)?);
        Ok(m)
    }

    fn root(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_ref().expect("open").as_fd()
    }

    /// Makes the upper directory the unpacked layer of `blob` (what
    /// `berth_engine::commit::layer_from_upper` wrote from it), so it is not unpacked
    /// again: unmounted, its overlay bookkeeping xattrs dropped (but `opaque`), mtimes
    /// clamped as in the tar. Best effort: on any failure the layer is unpacked from
    /// its tar as usual.
    /// Unmounts the overlay (the upper directory stays); false when it could not.
    fn unmount(&mut self) -> bool {
        self.fd.take();
        if self.mounted {
            if rustix::mount::unmount(&self.merged, rustix::mount::UnmountFlags::empty()).is_err() {
                return false;
            }
            self.mounted = false;
        }
        true
    }

    fn adopt(mut self, store: &Store, layer: &Listed, parent: Option<&str>, clamp: Option<u64>) {
        if self.unmount() {
            adopt_dir(store, &self.upper, layer, parent, clamp);
        }
    }
}

/// A layer written from an upper directory: (blob, size), and the upper's paths it holds.
type Listed = ((String, u64), Vec<PathBuf>);

/// Makes the (unmounted) upper directory `upper` the unpacked layer of what
/// `layer_from_upper_listed` wrote from it: what the tar left out removed (the runtime's
/// mount points, the RUN's mount targets, sockets), overlay bookkeeping xattrs dropped
/// (but `opaque`), mtimes clamped as in the tar; then moved into the layer store.
/// Best effort: on any failure the layer is unpacked from its tar as usual.
fn adopt_dir(
    store: &Store,
    upper: &Path,
    layer: &Listed,
    parent: Option<&str>,
    clamp: Option<u64>,
) {
    let ((blob, size), kept) = layer;
    let kept: std::collections::HashSet<&Path> = kept.iter().map(PathBuf::as_path).collect();
    if prune_unkept(upper, Path::new(""), &kept).is_err() || normalise(upper, clamp).is_err() {
        return;
    }
    let chain = chain_of(parent, blob);
    let desc = Descriptor::new(mf::OCI_LAYER, blob.clone(), *size);
    let _ = berth_image::layers::adopt_layer(store, upper, &desc, blob, &chain, parent);
}

/// Removes from `root/rel` every entry the layer does not hold.
fn prune_unkept(
    root: &Path,
    rel: &Path,
    kept: &std::collections::HashSet<&Path>,
) -> std::io::Result<()> {
    for e in std::fs::read_dir(root.join(rel))? {
        let r = rel.join(e?.file_name());
        let p = root.join(&r);
        let md = std::fs::symlink_metadata(&p)?;
        if !kept.contains(r.as_path()) {
            if md.is_dir() {
                std::fs::remove_dir_all(&p)?;
            } else {
                std::fs::remove_file(&p)?;
            }
        } else if md.is_dir() {
            prune_unkept(root, &r, kept)?;
        }
    }
    Ok(())
}

/// The chain ID of layer `blob` (uncompressed: its diff ID) on `parent`.
fn chain_of(parent: Option<&str>, blob: &str) -> String {
    match parent {
        None => blob.to_string(),
        Some(p) => berth_image::store::sha256_digest(format!("{p} {blob}").as_bytes()),
    }
}

/// An overlay upper directory made fit to be a layer directory holding what its tar
/// holds: every xattr but `trusted.overlay.opaque` removed (the overlay's bookkeeping,
/// and file capabilities the tar does not carry either), mtimes clamped to `clamp`
/// (children before their directory, so the clamp holds).
fn normalise(dir: &Path, clamp: Option<u64>) -> std::io::Result<()> {
    use rustix::fs::{AtFlags, Timespec, Timestamps, UTIME_OMIT};
    use std::os::unix::fs::MetadataExt;
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        let md = std::fs::symlink_metadata(&p)?;
        if md.is_dir() {
            normalise(&p, clamp)?;
        }
        // A device node (not a whiteout): left to the unpacker, which refuses it.
        {
            use std::os::unix::fs::FileTypeExt;
            let ft = md.file_type();
            if (ft.is_char_device() || ft.is_block_device()) && md.rdev() != 0 {
                return Err(std::io::ErrorKind::Unsupported.into());
            }
        }
        let mut buf = vec![0u8; 4096];
        let n = rustix::fs::llistxattr(&p, &mut buf).map_err(std::io::Error::from)?;
        for name in buf[..n].split(|b| *b == 0).filter(|x| !x.is_empty()) {
            // The tar holds no xattrs but file capabilities: none other stay but the
            // opaque marker.
            if name != b"trusted.overlay.opaque"
                && name != berth_engine::commit::CAPS_XATTR.as_bytes()
            {
                let cname = std::ffi::OsStr::from_bytes(name);
                rustix::fs::lremovexattr(&p, cname).map_err(std::io::Error::from)?;
            }
        }
        if let Some(c) = clamp {
            if md.mtime() < 0 || md.mtime() as u64 > c {
                let t = Timestamps {
                    last_access: Timespec {
                        tv_sec: 0,
                        tv_nsec: UTIME_OMIT,
                    },
                    last_modification: Timespec {
                        tv_sec: c as i64,
                        tv_nsec: 0,
                    },
                };
                rustix::fs::utimensat(rustix::fs::CWD, &p, &t, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(std::io::Error::from)?;
            }
        }
    }
    Ok(())
}

impl Drop for Mounted {
    fn drop(&mut self) {
        self.fd.take();
        if self.mounted {
            use rustix::mount::{unmount, UnmountFlags};
            if unmount(&self.merged, UnmountFlags::empty()).is_err() {
                let _ = unmount(&self.merged, UnmountFlags::DETACH);
            }
        }
        let _ = berth_image::store::remove_tree(&self.dir);
    }
}

/// A RUN's container: removed (with what it made) when dropped, whatever happened.
struct RunContainer<'a> {
    layout: &'a Layout,
    store: &'a Store,
    id: String,
}

impl Drop for RunContainer<'_> {
    fn drop(&mut self) {
        if let Ok(mut c) = CURRENT.lock() {
            c.retain(|x| *x != self.id);
        }
        let _ =
            berth_engine::control::remove(self.layout, self.store, &self.id, &self.id, true, true);
    }
}

/// What the stages share while they build, possibly in parallel (one thread per stage
/// whose dependencies are built).
struct Builder<'a> {
    layout: &'a Layout,
    store: &'a Store,
    fe: Mutex<&'a mut (dyn Frontend + Send)>,
    df: Dockerfile,
    file: String,
    ctx: Context,
    globals: GlobalArgs,
    args: BuildArgs,
    opts: Settings,
    tmp: PathBuf,
    step: AtomicUsize,
    started: Instant,
    /// Image records this build made for its RUN containers, removed at the end.
    intermediates: Mutex<Vec<String>>,
    stages: Mutex<BTreeMap<usize, State>>,
    /// Images read by FROM or --from, resolved once.
    images: Mutex<BTreeMap<String, State>>,
}

/// The options the steps read.
struct Settings {
    no_cache: bool,
    pull: bool,
    labels: BTreeMap<String, String>,
    network: RunNetwork,
    secrets: BTreeMap<String, PathBuf>,
    epoch: Option<u64>,
}

/// Builds an image as `opts` says; progress lines go to `fe.say`, pulls to `fe.pull`.
pub fn build(
    layout: &Layout,
    store: &Store,
    opts: BuildOptions,
    fe: &mut (dyn Frontend + Send),
) -> Result<Built> {
    let mut tags = Vec::new();
    for t in &opts.tags {
        let r = Reference::parse(t).map_err(|e| {
            BuildError::Invalid(format!(
                "invalid argument {t:?} for \"-t, --tag\" flag: {e}"
            ))
        })?;
        if r.digest.is_some() {
            return Err(BuildError::Invalid(format!(
                "invalid argument {t:?} for \"-t, --tag\" flag: a tag cannot name a digest"
            )));
        }
        tags.push(r.to_string());
    }
    // GC waits until the build is over: its temp dirs and unreferenced layers stay.
    let _gc = store.lock_shared()?;
    let tmp = store.root().join("tmp");
    let started = Instant::now();
    let mut opts = opts;
    let source = std::mem::replace(&mut opts.context, ContextSource::Dir(PathBuf::new()));
    let dockerfile = std::mem::replace(&mut opts.dockerfile, DockerfileSource::Default);
    let is_dir = match &source {
        ContextSource::Dir(d) => Some(d.clone()),
        ContextSource::Tar(_) => None,
    };
    fe.say("#1 [internal] load build definition from Dockerfile");
    let df_path = match &dockerfile {
        DockerfileSource::Path(p) => Some(p.clone()),
        _ => None,
    };
    let (ctx, _ignore) = context::stage(source, &tmp, df_path.as_deref())?;
    let (name, text) = match dockerfile {
        DockerfileSource::Text(t) => ("Dockerfile".to_string(), t),
        // In a tar context the Dockerfile (default or a relative -f) is read inside the
        // tar, never through a symlink of it out onto the host.
        DockerfileSource::Path(p) if ctx.tar_dir.is_some() && p.is_relative() => {
            let t = read_in_tar(&ctx, &p)?;
            (file_name(&p), t)
        }
        DockerfileSource::Path(p) => {
            let t = std::fs::read_to_string(&p).map_err(|e| {
                BuildError::Invalid(format!("failed to read dockerfile {}: {e}", p.display()))
            })?;
            (file_name(&p), t)
        }
        DockerfileSource::Default if ctx.tar_dir.is_some() => (
            "Dockerfile".to_string(),
            read_in_tar(&ctx, Path::new("Dockerfile"))?,
        ),
        DockerfileSource::Default => {
            let base = is_dir.clone().unwrap_or_else(|| ctx.path().to_path_buf());
            let p = base.join("Dockerfile");
            let t = std::fs::read_to_string(&p).map_err(|e| {
                BuildError::Invalid(format!(
                    "failed to read dockerfile: open {}: {e}",
                    p.display()
                ))
            })?;
            ("Dockerfile".to_string(), t)
        }
    };
    let df = dockerfile::parse(&name, &text)?;
    if let Some(s) = df.directives.foreign_syntax() {
        return Err(BuildError::Invalid(format!(
            "{name}:1: # syntax={s}: berth build runs no frontend images; only the \
             built-in docker/dockerfile syntax is supported"
        )));
    }
    for w in &df.warnings {
        fe.say(&format!("WARNING: {w}"));
    }
    let host = Platform::host();
    let hp = ArgPlatform {
        os: host.os.clone(),
        arch: host.architecture.clone(),
        variant: host.variant.clone(),
    };
    let args = BuildArgs::new(opts.build_args.clone()).with_platforms(&hp, &hp);
    let (globals, plan) = expand::plan(&df, &args, opts.target.as_deref())?;
    let b = Builder {
        layout,
        store,
        fe: Mutex::new(fe),
        file: name,
        df,
        ctx,
        globals,
        args,
        opts: Settings {
            no_cache: opts.no_cache,
            pull: opts.pull,
            labels: opts.labels,
            network: opts.network,
            secrets: opts.secrets,
            epoch: opts.epoch,
        },
        tmp,
        step: AtomicUsize::new(1),
        started,
        intermediates: Mutex::new(Vec::new()),
        stages: Mutex::new(BTreeMap::new()),
        images: Mutex::new(BTreeMap::new()),
    };
    let r = b.run_plan(&plan, &tags);
    b.drop_intermediates(r.as_ref().ok().map(|x| x.manifest.as_str()));
    let built = r?;
    let unused = b.args.unconsumed(&b.df);
    if !unused.is_empty() {
        b.say(&format!(
            "[Warning] One or more build-args {unused:?} were not consumed"
        ));
    }
    Ok(built)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "Dockerfile".into())
}

/// A file of a tar context, read inside the extracted tar.
fn read_in_tar(ctx: &Context, rel: &Path) -> Result<String> {
    let dir = ctx.tar_dir.as_ref().expect("a tar context");
    let fd = context::open_root(dir.path())?;
    let mut t = String::new();
    copy::open_in_root(fd.as_fd(), rel)
        .and_then(|mut f| std::io::Read::read_to_string(&mut f, &mut t))
        .map_err(|e| {
            BuildError::Invalid(format!(
                "failed to read dockerfile {} in the context tar: {e}",
                rel.display()
            ))
        })?;
    Ok(t)
}

fn rfc3339(secs: u64) -> String {
    berth_engine::record::rfc3339(UNIX_EPOCH + Duration::from_secs(secs))
}

fn sha(v: &Value) -> String {
    berth_image::store::sha256_digest(v.to_string().as_bytes())
}

/// A command line as BuildKit's history shows it (Go's `%q` of the list, for exec form).
fn json_list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| json!(s).to_string()).collect();
    format!("[{}]", items.join(" "))
}

impl Builder<'_> {
    fn at(&self, line: usize, msg: impl Into<String>) -> BuildError {
        BuildError::at(&self.file, line, msg)
    }

    fn now(&self) -> String {
        match self.opts.epoch {
            Some(e) => rfc3339(e),
            None => berth_engine::record::now_rfc3339(),
        }
    }

    fn say(&self, s: &str) {
        if let Ok(mut fe) = self.fe.lock() {
            fe.say(s);
        }
    }

    /// The next step number (`#N`).
    fn next_step(&self) -> usize {
        self.step.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn run_plan(&self, plan: &dockerfile::Plan, tags: &[String]) -> Result<Built> {
        // In waves: every stage whose dependencies are built, each in a thread of its own.
        let mut done: Vec<usize> = Vec::new();
        let mut pending: Vec<&dockerfile::PlannedStage> = plan.stages.iter().collect();
        while !pending.is_empty() {
            let (ready, rest): (Vec<_>, Vec<_>) = pending
                .into_iter()
                .partition(|ps| ps.deps.iter().all(|d| done.contains(d)));
            if ready.is_empty() {
                return Err(BuildError::Invalid(
                    "the build plan has stages that wait for each other".into(),
                ));
            }
            pending = rest;
            let results: Vec<Result<State>> = if ready.len() == 1 {
                vec![self.build_stage(ready[0])]
            } else {
                std::thread::scope(|sc| {
                    let hs: Vec<_> = ready
                        .iter()
                        .map(|ps| sc.spawn(move || self.build_stage(ps)))
                        .collect();
                    hs.into_iter()
                        .map(|h| {
                            h.join().unwrap_or_else(|_| {
                                Err(BuildError::Invalid("a stage's thread panicked".into()))
                            })
                        })
                        .collect()
                })
            };
            for (ps, r) in ready.iter().zip(results) {
                let st = r?;
                self.stages.lock().expect("stages").insert(ps.index, st);
                done.push(ps.index);
            }
        }
        let mut st = self
            .stages
            .lock()
            .expect("stages")
            .get(&plan.target)
            .cloned()
            .expect("target built");
        if !self.opts.labels.is_empty() {
            let labels = self.opts.labels.clone();
            let cfg = st.cfg();
            let m = cfg.entry("Labels").or_insert_with(|| json!({}));
            if !m.is_object() {
                *m = json!({});
            }
            for (k, v) in labels {
                m[k.as_str()] = json!(v);
            }
        }
        st.config["created"] = json!(self.now());
        let n = self.next_step();
        self.say(&format!("#{n} exporting to image"));
        let rec = self.materialise(&st, tags)?;
        self.say(&format!("#{n} writing image {} done", rec.config));
        for t in tags {
            self.say(&format!("#{n} naming to {t} done"));
        }
        self.say(&format!(
            "#{n} DONE {:.1}s",
            self.started.elapsed().as_secs_f64()
        ));
        Ok(Built {
            id: rec.config,
            manifest: rec.manifest,
            tags: tags.to_vec(),
        })
    }

    /// A stage's base: the image's config and layers, or an empty one.
    fn base_state(&self, ps: &dockerfile::PlannedStage, line: usize) -> Result<State> {
        let stage = &self.df.stages[ps.index];
        let (_, platform) = self.globals.expand_from(stage)?;
        if let Some(p) = platform {
            let host = Platform::host();
            let want = Platform::parse(&p)
                .ok_or_else(|| self.at(line, format!("invalid platform {p:?}")))?;
            if !want.matches(&host) {
                return Err(self.at(
                    line,
                    format!(
                        "FROM --platform={p}: berth build builds for this host's platform \
                         ({host}) only"
                    ),
                ));
            }
        }
        Ok(match &ps.base {
            dockerfile::Base::Scratch => {
                let host = Platform::host();
                let mut c = json!({
                    "architecture": host.architecture,
                    "os": host.os,
                    "config": {},
                    "rootfs": {"type": "layers", "diff_ids": []},
                    "history": [],
                });
                if let Some(v) = &host.variant {
                    c["variant"] = json!(v);
                }
                State {
                    config: c,
                    layers: vec![],
                    chain_ids: vec![],
                    env: StageEnv::new(&self.df, vec![], "/"),
                    cmd_set: false,
                }
            }
            dockerfile::Base::Stage(i) => {
                let got = self.stages.lock().expect("stages").get(i).cloned();
                let mut s = got.ok_or_else(|| {
                    self.at(line, format!("stage {i} was not built before its use"))
                })?;
                s.env = s.env.child();
                s.cmd_set = false;
                s
            }
            dockerfile::Base::Image(name) => {
                let mut s = self.image_state(name, line)?;
                s.cmd_set = false;
                s
            }
        })
    }

    /// An image from the store (pulled when missing, or always with `--pull`), as a
    /// starting state.
    fn image_state(&self, name: &str, line: usize) -> Result<State> {
        if let Some(s) = self.images.lock().expect("images").get(name) {
            return Ok(s.clone());
        }
        let fail = |e: String| format!("failed to resolve source metadata for {name}: {e}");
        let mut pulled = false;
        let pull = |name: &str| match self.fe.lock() {
            Ok(mut fe) => fe.pull(name, None),
            Err(_) => Err(berth_engine::Error::Invalid("output lock poisoned".into())),
        };
        if self.opts.pull {
            pull(name).map_err(|e| self.at(line, fail(berth_engine::error::chain(&e))))?;
            pulled = true;
        }
        let rec = loop {
            let recs = self.store.records()?;
            match self.store.resolve(&recs, name) {
                Ok(r) => break r,
                Err(berth_image::Error::NoSuchImage(_)) if !pulled => {
                    pull(name).map_err(|e| self.at(line, fail(berth_engine::error::chain(&e))))?;
                    pulled = true;
                }
                Err(e) => return Err(self.at(line, fail(berth_engine::error::chain(&e)))),
            }
        };
        let full: Value = serde_json::from_slice(&self.store.read_blob(&rec.config)?)
            .map_err(|e| self.at(line, format!("config of {name}: {e}")))?;
        let m: mf::Manifest = serde_json::from_slice(&self.store.read_blob(&rec.manifest)?)
            .map_err(|e| self.at(line, format!("manifest of {name}: {e}")))?;
        // What BuildKit keeps of a base's config: not its container, builder or dates.
        let mut config = json!({});
        for k in [
            "architecture",
            "os",
            "variant",
            "os.version",
            "os.features",
            "author",
            "config",
            "rootfs",
            "history",
        ] {
            if let Some(v) = full.get(k) {
                config[k] = v.clone();
            }
        }
        if !config["history"].is_array() {
            config["history"] = json!([]);
        }
        let env: Vec<String> = config["config"]["Env"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect();
        let wd = config["config"]["WorkingDir"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let s = State {
            config,
            layers: m.layers.clone(),
            chain_ids: rec.chain_ids.clone(),
            env: StageEnv::from_config(&self.df, &env, &wd),
            cmd_set: false,
        };
        self.images
            .lock()
            .expect("images")
            .insert(name.to_string(), s.clone());
        Ok(s)
    }

    fn build_stage(&self, ps: &dockerfile::PlannedStage) -> Result<State> {
        let stage = self.df.stages[ps.index].clone();
        let total = stage.instructions.len() + 1;
        let label = if self.df.stages.len() > 1 {
            format!("{} ", stage.display_name())
        } else {
            String::new()
        };
        let (base, _) = self.globals.expand_from(&stage)?;
        let n = self.next_step();
        self.say(&format!("#{n} [{label}1/{total}] FROM {base}"));
        let mut st = self.base_state(ps, stage.line)?;
        // A stage's config carries its environment (BuildKit adds the default PATH).
        let env = st.env.config_env();
        st.cfg().insert("Env".into(), json!(env));
        // The base's ONBUILD triggers run first, then are gone from the new image.
        let triggers: Vec<String> = st.config["config"]["OnBuild"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect();
        st.cfg().remove("OnBuild");
        for t in triggers {
            let ins = dockerfile::parse_trigger(&self.file, stage.line, &t)?;
            let n = self.next_step();
            self.say(&format!("#{n} [{label}1/{total}] ONBUILD {t}"));
            self.instruction(&mut st, &ins, n)?;
        }
        for (i, ins) in stage.instructions.iter().enumerate() {
            let n = self.next_step();
            let shown = ins.original.lines().next().unwrap_or("").trim();
            self.say(&format!("#{n} [{label}{}/{total}] {shown}", i + 2));
            check_cancelled()?;
            let t = Instant::now();
            self.instruction(&mut st, ins, n)?;
            if matches!(ins.kind, Kind::Run(_) | Kind::Copy(_) | Kind::Add(_)) {
                self.say(&format!("#{n} DONE {:.1}s", t.elapsed().as_secs_f64()));
            }
        }
        Ok(st)
    }

    fn history(&self, st: &mut State, created_by: String, empty: bool) {
        let mut h = json!({
            "created": self.now(),
            "created_by": created_by,
            "comment": "buildkit.dockerfile.v0",
        });
        if empty {
            h["empty_layer"] = json!(true);
        }
        if !st.config["history"].is_array() {
            st.config["history"] = json!([]);
        }
        st.config["history"].as_array_mut().expect("array").push(h);
    }

    fn instruction(&self, st: &mut State, ins: &Instruction, n: usize) -> Result<()> {
        let line = ins.line;
        let kind = st.env.expand(ins)?;
        match &kind {
            Kind::From(_) => return Err(self.at(line, "FROM inside a stage")),
            Kind::Run(r) => return self.run(st, ins, r, n),
            Kind::Copy(c) => return self.copy(st, ins, c, false, n),
            Kind::Add(c) => return self.copy(st, ins, c, true, n),
            Kind::Env(kvs) => {
                let pairs = st.env.apply_env(line, kvs)?;
                let env = st.env.config_env();
                st.cfg().insert("Env".into(), json!(env));
                let text: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                self.history(st, format!("ENV {}", text.join(" ")), true);
            }
            Kind::Arg(decls) => {
                let vals = st.env.apply_arg(line, decls, &self.globals, &self.args)?;
                let text: Vec<String> = vals
                    .iter()
                    .map(|(k, v)| match v {
                        Some(v) => format!("{k}={v}"),
                        None => k.clone(),
                    })
                    .collect();
                self.history(st, format!("ARG {}", text.join(" ")), true);
            }
            Kind::Workdir(p) => {
                let w = st.env.apply_workdir(line, p)?;
                st.cfg().insert("WorkingDir".into(), json!(w));
                self.history(st, format!("WORKDIR {w}"), true);
            }
            Kind::User(u) => {
                st.cfg().insert("User".into(), json!(u));
                self.history(st, format!("USER {u}"), true);
            }
            Kind::Cmd(c) => {
                let v = self.command(st, c);
                st.cfg().insert("Cmd".into(), json!(v));
                st.cmd_set = true;
                self.history(st, format!("CMD {}", json_list(&v)), true);
            }
            Kind::Entrypoint(c) => {
                let v = self.command(st, c);
                st.cfg().insert("Entrypoint".into(), json!(v));
                if !st.cmd_set {
                    st.cfg().insert("Cmd".into(), Value::Null);
                }
                self.history(st, format!("ENTRYPOINT {}", json_list(&v)), true);
            }
            Kind::Expose(words) => {
                let ports = st.env.ports(line, words)?;
                let cfg = st.cfg();
                let m = cfg.entry("ExposedPorts").or_insert_with(|| json!({}));
                if !m.is_object() {
                    *m = json!({});
                }
                let mut shown = Vec::new();
                for p in &ports {
                    let k = p.to_string();
                    m[k.as_str()] = json!({});
                    shown.push(format!("{k}:{{}}"));
                }
                self.history(st, format!("EXPOSE map[{}]", shown.join(" ")), true);
            }
            Kind::Volume(vols) => {
                let cfg = st.cfg();
                let m = cfg.entry("Volumes").or_insert_with(|| json!({}));
                if !m.is_object() {
                    *m = json!({});
                }
                for v in vols {
                    if v.trim().is_empty() {
                        return Err(self.at(line, "VOLUME specified can not be an empty string"));
                    }
                    m[v.as_str()] = json!({});
                }
                self.history(st, format!("VOLUME {}", json_list(vols)), true);
            }
            Kind::Label(kvs) => {
                let cfg = st.cfg();
                let m = cfg.entry("Labels").or_insert_with(|| json!({}));
                if !m.is_object() {
                    *m = json!({});
                }
                let mut text = Vec::new();
                for kv in kvs {
                    m[kv.key.as_str()] = json!(kv.value);
                    text.push(format!("{}={}", kv.key, kv.value));
                }
                self.history(st, format!("LABEL {}", text.join(" ")), true);
            }
            Kind::Healthcheck(h) => {
                let v = match h {
                    Healthcheck::None => json!({"Test": ["NONE"]}),
                    Healthcheck::Check {
                        test,
                        interval,
                        timeout,
                        start_period,
                        start_interval,
                        retries,
                    } => {
                        let mut v = json!({"Test": test});
                        for (k, d) in [
                            ("Interval", interval),
                            ("Timeout", timeout),
                            ("StartPeriod", start_period),
                            ("StartInterval", start_interval),
                        ] {
                            if !d.is_zero() {
                                v[k] = json!(d.as_nanos() as u64);
                            }
                        }
                        if *retries != 0 {
                            v["Retries"] = json!(retries);
                        }
                        v
                    }
                };
                let shown = ins.original.trim().to_string();
                st.cfg().insert("Healthcheck".into(), v);
                self.history(st, shown, true);
            }
            Kind::Shell(s) => {
                st.cfg().insert("Shell".into(), json!(s));
                self.history(st, format!("SHELL {}", json_list(s)), true);
            }
            Kind::StopSignal(s) => {
                let sig = st.env.stop_signal(line, s)?;
                st.cfg().insert("StopSignal".into(), json!(sig));
                self.history(st, format!("STOPSIGNAL {sig}"), true);
            }
            Kind::Onbuild(o) => {
                let cfg = st.cfg();
                let m = cfg.entry("OnBuild").or_insert_with(|| json!([]));
                if !m.is_array() {
                    *m = json!([]);
                }
                m.as_array_mut().expect("array").push(json!(o.expression));
                self.history(st, format!("ONBUILD {}", o.expression), true);
            }
            Kind::Maintainer(m) => {
                st.config["author"] = json!(m);
                self.history(st, format!("MAINTAINER {m}"), true);
            }
        }
        Ok(())
    }

    /// CMD/ENTRYPOINT/RUN's argv: exec form as is, shell form through SHELL.
    fn command(&self, st: &State, c: &CommandLine) -> Vec<String> {
        match c {
            CommandLine::Exec(v) => v.clone(),
            CommandLine::Shell(s) => {
                let mut v = st.shell();
                v.push(s.clone());
                v
            }
        }
    }

    /// The cache entry for `key`, unless `--no-cache` or its layer is gone.
    fn cached(&self, key: &str) -> Option<Value> {
        if self.opts.no_cache {
            return None;
        }
        let c = self.store.build_cache().ok()?;
        let e = c["entries"].get(key)?.clone();
        if e["empty"].as_bool() == Some(true) {
            return Some(e);
        }
        let blob = e["blob"].as_str()?;
        self.store.has_blob(blob).then_some(e)
    }

    /// The unpacked layer recorded for `donor_key`, while the store has it.
    fn donor(&self, donor_key: &str) -> Option<PathBuf> {
        let c = self.store.build_cache().ok()?;
        let chain = c["donors"].get(donor_key)?.as_str()?;
        let d = self.store.layer_dir(chain).ok()?.join("diff");
        d.is_dir().then_some(d)
    }

    /// A `COPY --link` step's key: its layer does not depend on what it is put on, so
    /// neither the parent nor the config (its destination and owner are resolved) is
    /// in it, and a changed earlier step still finds it.
    fn link_key(&self, st: &State, step: Value) -> String {
        sha(&json!({
            "v": 1,
            "link": true,
            "platform": [st.config["os"], st.config["architecture"]],
            "step": step,
            "reproducible": self.opts.epoch,
        }))
    }

    fn cache_key(&self, st: &State, step: Value) -> String {
        sha(&json!({
            "v": 1,
            "parent": st.chain_ids.last(),
            "config": st.config["config"],
            "platform": [st.config["os"], st.config["architecture"]],
            "step": step,
            "reproducible": self.opts.epoch,
        }))
    }

    /// Puts a cached result on `st`; true when there was one.
    fn apply_cached(&self, st: &mut State, key: &str, created_by: &str, n: usize) -> Result<bool> {
        let Some(e) = self.cached(key) else {
            return Ok(false);
        };
        self.say(&format!("#{n} CACHED"));
        if e["empty"].as_bool() == Some(true) {
            self.history(st, created_by.to_string(), true);
            return Ok(true);
        }
        let blob = e["blob"].as_str().unwrap_or_default().to_string();
        let size = e["size"].as_u64().unwrap_or_default();
        self.push_layer(st, blob, size, created_by)?;
        Ok(true)
    }

    /// Adds an (uncompressed) layer blob of the store to `st`, unpacked for what follows.
    fn push_layer(
        &self,
        st: &mut State,
        blob: String,
        size: u64,
        created_by: &str,
    ) -> Result<String> {
        let parent = st.chain_ids.last().cloned();
        let chain = chain_of(parent.as_deref(), &blob);
        let desc = Descriptor::new(mf::OCI_LAYER, blob.clone(), size);
        berth_image::layers::ensure_layer(
            self.store,
            &desc,
            &blob,
            &chain,
            parent.as_deref(),
            &UnpackOptions::default(),
        )?;
        st.layers.push(desc);
        st.chain_ids.push(chain.clone());
        if !st.config["rootfs"]["diff_ids"].is_array() {
            st.config["rootfs"] = json!({"type": "layers", "diff_ids": []});
        }
        st.config["rootfs"]["diff_ids"]
            .as_array_mut()
            .expect("array")
            .push(json!(blob));
        self.history(st, created_by.to_string(), false);
        Ok(chain)
    }

    /// Records what a step made in the cache and on `st`. `layer` is (blob, size) from
    /// berth_engine::commit; an empty tar is no layer (an empty_layer history entry).
    fn finish_step(
        &self,
        st: &mut State,
        key: &str,
        layer: (String, u64),
        created_by: &str,
        donor_key: Option<&str>,
    ) -> Result<()> {
        let (blob, size) = layer;
        // Two zero blocks: the tar of nothing.
        let (entry, chain) = if size <= 1024 {
            self.history(st, created_by.to_string(), true);
            (json!({"empty": true}), None)
        } else {
            let chain = self.push_layer(st, blob.clone(), size, created_by)?;
            (
                json!({"blob": blob, "size": size, "chain_id": chain}),
                Some(chain),
            )
        };
        self.store.update_build_cache(|v| {
            if !v["entries"].is_object() {
                v["entries"] = json!({});
            }
            v["entries"][key] = entry;
            // The layer a later build of this step (other content) shares files with.
            if let (Some(dk), Some(chain)) = (donor_key, chain) {
                if !v["donors"].is_object() {
                    v["donors"] = json!({});
                }
                v["donors"][dk] = json!(chain);
            }
            Ok(())
        })?;
        Ok(())
    }

    /// The image record of `st` in the store (tagged with `tags`).
    fn materialise(&self, st: &State, tags: &[String]) -> Result<ImageRecord> {
        let cfg_bytes = serde_json::to_vec(&st.config).expect("json");
        let ic: ImageConfig = serde_json::from_slice(&cfg_bytes)
            .map_err(|e| BuildError::Invalid(format!("image config: {e}")))?;
        let cdigest = self.store.write_blob(&cfg_bytes)?;
        let m = mf::Manifest {
            schema_version: 2,
            media_type: Some(mf::OCI_MANIFEST.into()),
            config: Descriptor::new(mf::OCI_CONFIG, cdigest, cfg_bytes.len() as u64),
            layers: st.layers.clone(),
            annotations: None,
        };
        let mbody = serde_json::to_vec(&m).expect("json");
        let mdigest = berth_image::store::sha256_digest(&mbody);
        let existed = self.store.records()?.images.contains_key(&mdigest);
        let rec = berth_image::archive::commit_image(
            self.store,
            &mbody,
            &m,
            &ic,
            tags,
            &UnpackOptions::default(),
        )?;
        if !existed && tags.is_empty() {
            self.intermediates
                .lock()
                .expect("intermediates")
                .push(rec.manifest.clone());
        }
        Ok(rec)
    }

    /// Removes the records made for RUN containers (not `keep`, nor one tagged since).
    fn drop_intermediates(&self, keep: Option<&str>) {
        let list = std::mem::take(&mut *self.intermediates.lock().expect("intermediates"));
        if list.is_empty() {
            return;
        }
        let _ = self.store.update_records(|r| {
            for m in &list {
                if Some(m.as_str()) != keep && r.tags_of(m).is_empty() {
                    r.images.remove(m);
                }
            }
            Ok(())
        });
    }

    fn clamp(&self) -> Option<u64> {
        self.opts.epoch
    }

    /// A file of the rootfs of `st` (for --chown names), read from its layers.
    fn read_rootfs_file(&self, st: &State, path: &str) -> Option<String> {
        let lowers = berth_image::layers::lower_dirs(self.store, &st.chain_ids).ok()?;
        let rel = path.trim_start_matches('/');
        for l in lowers {
            match std::fs::symlink_metadata(l.join(rel)) {
                Ok(m) if m.is_file() => return std::fs::read_to_string(l.join(rel)).ok(),
                Ok(_) => return None,
                Err(_) => continue,
            }
        }
        None
    }

    fn run(&self, st: &mut State, ins: &Instruction, r: &Run, n: usize) -> Result<()> {
        let line = ins.line;
        let mounts = st.env.mounts(line, r)?;
        let argv = match r.script() {
            RunScript::Plain(c) => self.command(st, &c),
            RunScript::Inline(s) | RunScript::Shell(s) => {
                let mut v = st.shell();
                v.push(s);
                v
            }
            RunScript::Shebang { name, .. } => vec![format!("/dev/pipes/{name}")],
        };
        if argv.is_empty() {
            return Err(self.at(line, "RUN has no command"));
        }
        let env: Vec<String> = st
            .env
            .run_env(&self.args)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let net = match r.network {
            Some(RunNet::None) => RunNetwork::None,
            Some(RunNet::Host) => RunNetwork::Host,
            Some(RunNet::Default) | None => self.opts.network.clone(),
        };
        let args_shown: Vec<String> = st
            .env
            .args
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut created_by = String::from("RUN ");
        if !args_shown.is_empty() {
            created_by.push_str(&format!("|{} {} ", args_shown.len(), args_shown.join(" ")));
        }
        if let RunScript::Plain(CommandLine::Exec(v)) = r.script() {
            created_by.push_str(&json_list(&v));
        } else {
            created_by.push_str(&argv.join(" "));
        }
        created_by.push_str(" # buildkit");
        let key = self.cache_key(
            st,
            json!({
                "run": argv,
                "script": format!("{:?}", r.script()),
                "env": env,
                "network": format!("{net:?}"),
                "mounts": format!("{mounts:?}"),
            }),
        );
        if self.apply_cached(st, &key, &created_by, n)? {
            return Ok(());
        }
        // Mounts: what the container gets, and what its rootfs must not keep.
        let mut specs = Vec::new();
        let mut extra_env = Vec::new();
        let mut keep_alive: Vec<Box<dyn std::any::Any>> = Vec::new();
        let mut targets = Vec::new();
        if let RunScript::Shebang { name, body } = r.script() {
            let d = self.tempdir("build-heredoc-")?;
            let f = d.path().join(&name);
            std::fs::write(&f, body).map_err(|e| BuildError::Io(f.clone(), e))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| BuildError::Io(f.clone(), e))?;
            specs.push(MountSpec::Bind {
                source: d.path().to_string_lossy().into_owned(),
                target: "/dev/pipes".into(),
                read_only: true,
                propagation: None,
                create_source: false,
            });
            keep_alive.push(Box::new(d));
        }
        for m in &mounts {
            let target = match m.kind {
                MountType::Secret => m.secret_target(),
                _ => m.target.clone(),
            };
            let resolve_target = |t: &str| -> String {
                if t.starts_with('/') {
                    t.to_string()
                } else {
                    expand::resolve_workdir(&st.env.workdir, t)
                }
            };
            match m.kind {
                MountType::Tmpfs => {
                    let t = resolve_target(&target.unwrap_or_default());
                    targets.push(t.clone());
                    specs.push(MountSpec::Tmpfs {
                        target: t,
                        size: m.size,
                        mode: None,
                        options: vec![],
                    });
                }
                MountType::Cache => {
                    let t = resolve_target(&target.unwrap_or_default());
                    let id = m.id.clone().unwrap_or_else(|| t.clone());
                    let mut dir = self.cache_mount_dir(&id, m)?;
                    // sharing=: shared users hold a shared flock on the directory, a
                    // locked one an exclusive flock (waiting its turn); a private one
                    // takes a fresh directory when another RUN holds this one.
                    use rustix::fs::FlockOperation as F;
                    let fd =
                        std::fs::File::open(&dir).map_err(|e| BuildError::Io(dir.clone(), e))?;
                    match m.sharing.unwrap_or(dockerfile::CacheSharing::Shared) {
                        dockerfile::CacheSharing::Shared => {
                            rustix::fs::flock(&fd, F::LockShared)
                                .map_err(|e| BuildError::Io(dir.clone(), e.into()))?;
                        }
                        dockerfile::CacheSharing::Locked => {
                            rustix::fs::flock(&fd, F::LockExclusive)
                                .map_err(|e| BuildError::Io(dir.clone(), e.into()))?;
                        }
                        dockerfile::CacheSharing::Private => {
                            if rustix::fs::flock(&fd, F::NonBlockingLockExclusive).is_err() {
                                let d = self.tempdir("build-cache-private-")?;
                                dir = d.path().to_path_buf();
                                keep_alive.push(Box::new(d));
                            }
                        }
                    }
                    keep_alive.push(Box::new(fd));
                    targets.push(t.clone());
                    specs.push(MountSpec::Bind {
                        source: dir.to_string_lossy().into_owned(),
                        target: t,
                        read_only: m.readonly,
                        propagation: None,
                        create_source: false,
                    });
                }
                MountType::Secret => {
                    let id = m.secret_id().unwrap_or_default();
                    let Some(src) = self.opts.secrets.get(&id).cloned() else {
                        if m.required {
                            return Err(self.at(
                                line,
                                format!(
                                    "secret {id} not found: give it with --secret id={id},src=FILE"
                                ),
                            ));
                        }
                        continue;
                    };
                    if let Some(var) = &m.env {
                        let v = std::fs::read_to_string(&src).map_err(|e| {
                            self.at(line, format!("secret {id}: {}: {e}", src.display()))
                        })?;
                        extra_env.push(format!("{var}={v}"));
                    }
                    if let Some(t) = target {
                        let t = resolve_target(&t);
                        targets.push(t.clone());
                        specs.push(MountSpec::Bind {
                            source: src.to_string_lossy().into_owned(),
                            target: t,
                            read_only: true,
                            propagation: None,
                            create_source: false,
                        });
                    }
                }
                MountType::Bind => {
                    let t = resolve_target(&target.unwrap_or_default());
                    let source = m.source.clone().unwrap_or_else(|| "/".into());
                    let (root_fd, mounted): (OwnedFd, Option<Mounted>) = match &m.from {
                        None => (context::open_root(self.ctx.path())?, None),
                        Some(f) => {
                            let s = self.source_state(line, f)?;
                            let mnt = Mounted::new(self.store, &self.tmp, &s.chain_ids)?;
                            (context::open_root(&mnt.merged)?, Some(mnt))
                        }
                    };
                    // A private copy: reads never leave the source root, and writes
                    // (rw) are thrown away with it, as BuildKit does.
                    let d = self.tempdir("build-bind-")?;
                    let dest = d.path().join("src");
                    copy::copy_from_root(
                        root_fd.as_fd(),
                        Path::new(&source),
                        &dest,
                        berth_engine::cp::Owner::Source,
                    )
                    .map_err(|e| {
                        self.at(line, format!("RUN --mount=type=bind,source={source}: {e}"))
                    })?;
                    drop(root_fd);
                    drop(mounted);
                    targets.push(t.clone());
                    specs.push(MountSpec::Bind {
                        source: dest.to_string_lossy().into_owned(),
                        target: t,
                        read_only: m.readonly,
                        propagation: None,
                        create_source: false,
                    });
                    keep_alive.push(Box::new(d));
                }
            }
        }
        let rec = self.materialise(st, &[])?;
        let user = st.config["config"]["User"]
            .as_str()
            .filter(|u| !u.is_empty())
            .map(str::to_string);
        let mut all_env = env.clone();
        all_env.extend(extra_env);
        let copts = CreateOptions {
            image: rec.manifest.clone(),
            entrypoint: Some(vec![]),
            cmd: Some(argv.clone()),
            env: all_env,
            workdir: Some(st.env.workdir.clone()),
            user,
            mounts: specs,
            network: match net {
                RunNetwork::Default | RunNetwork::Named(_) => NetworkMode::Bridge,
                RunNetwork::None => NetworkMode::None,
                RunNetwork::Host => NetworkMode::Host,
            },
            networks: match &net {
                RunNetwork::Named(n) => vec![berth_engine::options::NetworkAttach {
                    name: n.clone(),
                    ..Default::default()
                }],
                _ => vec![],
            },
            no_healthcheck: true,
            ..Default::default()
        };
        let shown = argv.join(" ");
        let fail =
            |msg: String| format!("process \"{shown}\" did not complete successfully: {msg}");
        let mut warnings = Vec::new();
        let mut made = berth_engine::create::create_container_with(
            self.layout,
            self.store,
            copts.clone(),
            true,
            &mut warnings,
        );
        // A concurrent build that made the same state first may have removed its record
        // just now: made again, once.
        if let Err(berth_engine::Error::Image(berth_image::Error::NoSuchImage(_))) = &made {
            self.materialise(st, &[])?;
            made = berth_engine::create::create_container_with(
                self.layout,
                self.store,
                copts,
                true,
                &mut warnings,
            );
        }
        let c = made.map_err(|e| self.at(line, fail(berth_engine::error::chain(&e))))?;
        let guard = RunContainer {
            layout: self.layout,
            store: self.store,
            id: c.id.clone(),
        };
        if let Ok(mut cur) = CURRENT.lock() {
            cur.push(c.id.clone());
        }
        check_cancelled()?;
        let t0 = Instant::now();
        if let Err(e) = berth_engine::create::start_container(self.layout, self.store, &c.id, false)
        {
            return Err(self.at(line, fail(berth_engine::error::chain(&e))));
        }
        // The output as it comes (the log followed until the container stops).
        let _ = berth_engine::logs::read(
            self.layout,
            &c.id,
            &berth_engine::logs::LogsOptions {
                follow: true,
                ..Default::default()
            },
            &mut |entries| {
                for e in entries {
                    for l in e.log.trim_end_matches('\n').split('\n') {
                        self.say(&format!("#{n} {:.3} {l}", t0.elapsed().as_secs_f64()));
                    }
                }
                Ok(true)
            },
        );
        let code = berth_engine::control::wait(self.layout, &c.id)?;
        check_cancelled()?;
        if code != 0 {
            return Err(self.at(line, fail(format!("exit code: {code}"))));
        }
        // The runtime's mount points that were not in the image are not the RUN's work.
        let upper = berth_image::overlay::container_dir(self.store, &c.id)?.join("upper");
        let lowers = berth_image::layers::lower_dirs(self.store, &rec.chain_ids)?;
        let mut skip = Vec::new();
        if matches!(r.script(), RunScript::Shebang { .. }) {
            targets.push("/dev/pipes".into());
        }
        for t in &targets {
            let mut rel = PathBuf::from(t.trim_start_matches('/'));
            loop {
                if rel.as_os_str().is_empty()
                    || lowers
                        .iter()
                        .any(|l| l.join(&rel).symlink_metadata().is_ok())
                {
                    break;
                }
                let p = upper.join(&rel);
                let md = p.symlink_metadata();
                let empty = match &md {
                    Ok(m) if m.is_dir() => std::fs::read_dir(&p)
                        .map(|d| {
                            d.filter_map(|e| e.ok())
                                .all(|e| skip.contains(&rel.join(e.file_name())))
                        })
                        .unwrap_or(false),
                    Ok(m) => m.is_file() && m.len() == 0,
                    Err(_) => false,
                };
                if !empty {
                    break;
                }
                skip.push(rel.clone());
                match rel.parent() {
                    Some(p) => rel = p.to_path_buf(),
                    None => break,
                }
            }
        }
        let listed = berth_engine::commit::layer_from_upper_listed(
            self.store,
            &upper,
            &lowers,
            self.clamp(),
            &skip,
        )?;
        // Its upper directory becomes the layer directory once the rootfs is unmounted
        // (the monitor does that at the exit).
        let merged = upper.with_file_name("merged");
        if listed.0 .1 > 1024 && !berth_image::overlay::is_mount_point(&merged).unwrap_or(true) {
            let parent = st.chain_ids.last().map(String::as_str);
            adopt_dir(self.store, &upper, &listed, parent, self.clamp());
        }
        drop(guard);
        drop(keep_alive);
        self.finish_step(st, &key, listed.0, &created_by, None)
    }

    fn tempdir(&self, prefix: &str) -> Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix(&format!("{}{prefix}", berth_image::store::temp_prefix()))
            .tempdir_in(&self.tmp)
            .map_err(|e| BuildError::Io(self.tmp.clone(), e))
    }

    /// A cache mount's directory, kept between builds under the storage root.
    fn cache_mount_dir(&self, id: &str, m: &dockerfile::Mount) -> Result<PathBuf> {
        let base = self.store.root().join("build-cache-mounts");
        berth_image::store::private_dir(&base)?;
        let hex = berth_image::store::sha256_digest(id.as_bytes());
        shared_dir(&base, &hex[7..], m.mode.unwrap_or(0o755), m.uid, m.gid)
    }

    /// What `--from` names: a stage built before, or an image.
    fn source_state(&self, line: usize, from: &str) -> Result<State> {
        match self.df.resolve_source(line, from)? {
            Source::Stage(i) => self
                .stages
                .lock()
                .expect("stages")
                .get(&i)
                .cloned()
                .ok_or_else(|| self.at(line, format!("stage {from} is not built before its use"))),
            Source::Image(name) => self.image_state(&name, line),
        }
    }

    fn copy(
        &self,
        st: &mut State,
        ins: &Instruction,
        c: &CopyAdd,
        add: bool,
        n: usize,
    ) -> Result<()> {
        let line = ins.line;
        let what = if add { "ADD" } else { "COPY" };
        let urls = c.sources.iter().filter(|s| crate::fetch::is_url(s)).count();
        if urls > 0 && !add {
            return Err(self.at(line, "source can't be a URL for COPY"));
        }
        if c.checksum.is_some() && urls == 0 {
            return Err(self.at(line, "checksum can't be specified for non-HTTP(S) sources"));
        }
        if urls > 0 && urls != c.sources.len() {
            return Err(self.at(
                line,
                "ADD of URLs and local files together is not supported by berth build: split it",
            ));
        }
        if let Some(s) = c.sources.iter().find(|s| s.starts_with("git@")) {
            return Err(self.at(
                line,
                format!("ADD {s}: berth build does not fetch git repositories; clone it in a RUN"),
            ));
        }
        // URLs are fetched first into a directory of their own, which is then the root.
        let url_dir = if urls > 0 {
            let d = self.tempdir("build-url-")?;
            let one_file = c.sources.len() == 1 && !c.dest.ends_with('/');
            for u in &c.sources {
                let name = match crate::fetch::file_name(u) {
                    Ok(n) => n,
                    Err(_) if one_file => "download".to_string(),
                    Err(e) => return Err(self.at(line, e)),
                };
                crate::fetch::fetch(u, d.path(), &name, c.checksum.as_deref())
                    .map_err(|e| self.at(line, format!("ADD failed: {e}")))?;
            }
            Some(d)
        } else {
            None
        };
        // The sources' root: the staged context, or a stage or image rootfs.
        let (src_state, from_other) = match &c.from {
            None => (None, false),
            Some(f) => (Some(self.source_state(line, f)?), true),
        };
        let src_mount = match &src_state {
            Some(s) => Some(Mounted::new(self.store, &self.tmp, &s.chain_ids)?),
            None => None,
        };
        let root_fd = match (&src_mount, &url_dir) {
            (Some(m), _) => context::open_root(&m.merged)?,
            (None, Some(d)) => context::open_root(d.path())?,
            (None, None) => context::open_root(self.ctx.path())?,
        };
        let root = root_fd.as_fd();
        let mut matched: Vec<(PathBuf, bool)> = Vec::new();
        let mut globbed = false;
        for s in &c.sources {
            let found = match &url_dir {
                // A URL's file (no wildcards in URLs).
                Some(_) => {
                    let n = crate::fetch::file_name(s).unwrap_or_else(|_| "download".into());
                    vec![PathBuf::from(n)]
                }
                None => copy::expand_source(root, s),
            };
            if found.is_empty() {
                let msg = if from_other {
                    format!(
                        "{what} failed: \"/{}\" not found in {}",
                        s.trim_start_matches('/'),
                        c.from.as_deref().unwrap_or("")
                    )
                } else {
                    format!("{what} failed: file not found in build context or excluded by .dockerignore: stat {s}: file does not exist")
                };
                return Err(self.at(line, msg));
            }
            globbed |= found.len() > 1 || (url_dir.is_none() && s.contains(['*', '?', '[']));
            for f in found {
                let is_dir = context::resolve_in(root, &f, true).is_ok();
                matched.push((f, is_dir));
            }
        }
        let count = matched.len() + c.inline.len();
        let dest_abs = if c.dest.starts_with('/') {
            c.dest.clone()
        } else {
            let mut d = expand::resolve_workdir(&st.env.workdir, &c.dest);
            if (c.dest.ends_with('/') || c.dest == "." || c.dest.ends_with("/."))
                && !d.ends_with('/')
            {
                d.push('/');
            }
            d
        };
        let dest_is_dir = dest_abs.ends_with('/')
            || c.dest == "."
            || count > 1
            || globbed
            || matched.iter().any(|m| m.1);
        use berth_engine::cp::Owner;
        let owner = match &c.chown {
            Some(spec) => {
                let (u, g) = copy::parse_chown(spec, &|p| self.read_rootfs_file(st, p))
                    .map_err(|e| self.at(line, e))?;
                Owner::Set(u, g)
            }
            None if from_other => Owner::Source,
            None => Owner::Set(0, 0),
        };
        // The cache key's content: each source's files, read in its root (no copy yet).
        let mut content = Vec::new();
        for (rel, is_dir) in &matched {
            let h = copy::hash_in_root(root, rel, from_other)
                .map_err(|e| self.at(line, format!("{what} failed: {e}")))?;
            content.push(json!([rel.to_string_lossy(), is_dir, h]));
        }
        let created_by = format!(
            "{what} {} # buildkit",
            ins.original
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .split_once(char::is_whitespace)
                .map_or("", |x| x.1.trim())
        );
        // --link: the layer is made on an empty root (BuildKit's), then put on the
        // stage; its cache key leaves out what comes before it.
        let step_key = |st: &State, step: Value| {
            if c.link {
                self.link_key(st, step)
            } else {
                self.cache_key(st, step)
            }
        };
        let key = step_key(
            st,
            json!({
                "copy": format!("{c:?}"),
                "dest": dest_abs,
                "add": add,
                "owner": format!("{owner:?}"),
                "content": content,
            }),
        );
        let below = if c.link {
            Vec::new()
        } else {
            st.chain_ids.clone()
        };
        if let Some(m) = &c.chmod {
            copy::parse_chmod(m).map_err(|e| self.at(line, e))?;
        }
        if self.apply_cached(st, &key, &created_by, n)? {
            return Ok(());
        }
        // Without --chmod, heredocs or archives, straight from the source root into the
        // rootfs; otherwise through a private tree that those change first.
        let direct = c.chmod.is_none()
            && c.inline.is_empty()
            && !(add
                && !from_other
                && url_dir.is_none()
                && matched
                    .iter()
                    .any(|(rel, d)| !*d && copy::archive_kind(root, rel).is_some()));
        // Directories COPY makes on the way get --chown's owner (docker's).
        let chown_dirs = match owner {
            Owner::Set(u, g) if c.chown.is_some() => Some((u, g)),
            _ => None,
        };
        let fail = |e: BuildError| {
            self.at(
                line,
                format!("{what} failed: {}", berth_engine::error::chain(&e)),
            )
        };
        if direct {
            let mut rootfs = Mounted::new(self.store, &self.tmp, &below)?;
            // The layer this step made in an earlier build (other content), whose
            // identical files are linked instead of copied (see reuse.rs).
            let donor_key = step_key(
                st,
                json!({
                    "copy-donor": format!("{c:?}"),
                    "dest": dest_abs,
                    "add": add,
                    "owner": format!("{owner:?}"),
                }),
            );
            let mut reuse = self
                .donor(&donor_key)
                .and_then(|d| crate::reuse::Reuse::new(&d, &rootfs.merged, self.clamp()).ok());
            let r = rootfs.root();
            let src_of = |rel: &Path, is_dir: bool| {
                let mut p = format!("/{}", rel.display());
                if is_dir {
                    if !p.ends_with('/') {
                        p.push('/');
                    }
                    p.push('.');
                }
                PathBuf::from(p)
            };
            let dest = Path::new(&dest_abs);
            if dest_is_dir {
                copy::mkdir_in_root(r, dest, chown_dirs).map_err(fail)?;
                for (rel, is_dir) in &matched {
                    let to = if *is_dir {
                        dest.to_path_buf()
                    } else {
                        dest.join(rel.file_name().unwrap_or_default())
                    };
                    let place = reuse
                        .as_mut()
                        .map(|x| x as &mut dyn berth_engine::cp::Place);
                    copy::copy_between_roots(root, &src_of(rel, *is_dir), r, &to, owner, place)
                        .map_err(fail)?;
                }
            } else {
                let (rel, _) = &matched[0];
                if let Some(parent) = dest.parent() {
                    copy::mkdir_in_root(r, parent, chown_dirs).map_err(fail)?;
                }
                // Onto an existing directory: into it under the source's name, as docker.
                let to = if copy::is_dir_in_root(r, dest) {
                    dest.join(rel.file_name().unwrap_or_default())
                } else {
                    dest.to_path_buf()
                };
                let place = reuse
                    .as_mut()
                    .map(|x| x as &mut dyn berth_engine::cp::Place);
                copy::copy_between_roots(root, &src_of(rel, false), r, &to, owner, place)
                    .map_err(fail)?;
            }
            drop(root_fd);
            drop(src_mount);
            if let Some(reuse) = reuse {
                if !rootfs.unmount() {
                    return Err(self.at(line, format!("{what} failed: unmount its rootfs")));
                }
                let linked = reuse
                    .link_into(&rootfs.upper)
                    .map_err(|e| self.at(line, format!("{what} failed: {e}")))?;
                if linked > 0 {
                    self.say(&format!(
                        "#{n} {linked} unchanged files shared with the earlier build of this step"
                    ));
                }
            }
            return self.commit_copy(rootfs, st, &key, &created_by, Some(&donor_key));
        }
        // The tree to copy (the destination directory's new contents, or one file).
        let staged = self.tempdir("build-copy-")?;
        let tree = staged.path().join("t");
        std::fs::create_dir(&tree).map_err(|e| BuildError::Io(tree.clone(), e))?;
        let stage_owner = if from_other {
            Owner::Source
        } else {
            Owner::Caller
        };
        let mut single_name: Option<std::ffi::OsString> = None;
        for (rel, is_dir) in &matched {
            let base = rel
                .file_name()
                .map(|n| n.to_os_string())
                .unwrap_or_else(|| "root".into());
            if *is_dir {
                let mut p = rel.as_os_str().to_os_string();
                p.push(if rel.as_os_str().is_empty() {
                    "."
                } else {
                    "/."
                });
                copy::copy_from_root(root, Path::new(&p), &tree, stage_owner)
                    .map_err(|e| self.at(line, format!("{what} failed: {e}")))?;
                continue;
            }
            // ADD unpacks a local tar archive into the destination directory.
            if add && !from_other && url_dir.is_none() {
                if let Some(kind) = copy::archive_kind(root, rel) {
                    self.unpack_into(line, root, rel, kind, &tree)?;
                    continue;
                }
            }
            single_name = Some(base.clone());
            copy::copy_from_root(root, rel, &tree.join(&base), stage_owner)
                .map_err(|e| self.at(line, format!("{what} failed: {e}")))?;
        }
        for h in &c.inline {
            let p = tree.join(&h.name);
            std::fs::write(&p, h.body()).map_err(|e| BuildError::Io(p.clone(), e))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644))
                .map_err(|e| BuildError::Io(p.clone(), e))?;
            single_name = Some(h.name.clone().into());
        }
        drop(root_fd);
        drop(src_mount);
        if let Some(m) = &c.chmod {
            let mode = copy::parse_chmod(m).map_err(|e| self.at(line, e))?;
            copy::chmod_tree(&tree, mode)?;
        }
        let rootfs = Mounted::new(self.store, &self.tmp, &below)?;
        let r = rootfs.root();
        if dest_is_dir {
            copy::mkdir_in_root(r, Path::new(&dest_abs), chown_dirs).map_err(fail)?;
            copy::copy_into_root(&tree, r, Path::new(&dest_abs), owner).map_err(fail)?;
        } else {
            let name = single_name.expect("one file");
            let dest = Path::new(&dest_abs);
            if let Some(parent) = dest.parent() {
                copy::mkdir_in_root(r, parent, chown_dirs).map_err(fail)?;
            }
            // Onto an existing directory: into it under the source's name, as docker.
            let target = if copy::is_dir_in_root(r, dest) {
                dest.join(&name)
            } else {
                dest.to_path_buf()
            };
            let one = staged.path().join("one");
            std::fs::create_dir(&one).map_err(|e| BuildError::Io(one.clone(), e))?;
            let tname = target
                .file_name()
                .map(|n| n.to_os_string())
                .unwrap_or(name.clone());
            std::fs::rename(tree.join(&name), one.join(&tname))
                .map_err(|e| BuildError::Io(one.clone(), e))?;
            let parent = target.parent().unwrap_or(Path::new("/"));
            copy::copy_into_root(&one, r, parent, owner).map_err(fail)?;
        }
        self.commit_copy(rootfs, st, &key, &created_by, None)
    }

    /// A COPY/ADD step's rootfs made its layer: the upper directory listed into a tar
    /// and, when large, adopted as the layer directory (no unpack).
    fn commit_copy(
        &self,
        rootfs: Mounted,
        st: &mut State,
        key: &str,
        created_by: &str,
        donor_key: Option<&str>,
    ) -> Result<()> {
        let listed = berth_engine::commit::layer_from_upper_listed(
            self.store,
            &rootfs.upper,
            &rootfs.lowers,
            self.clamp(),
            &[],
        )?;
        if listed.0 .1 > 1024 {
            let parent = st.chain_ids.last().map(String::as_str);
            rootfs.adopt(self.store, &listed, parent, self.clamp());
        }
        self.finish_step(st, key, listed.0, created_by, donor_key)
    }

    /// ADD of a local tar: unpacked with the image-layer rules into `into`.
    fn unpack_into(
        &self,
        line: usize,
        root: std::os::fd::BorrowedFd<'_>,
        archive: &Path,
        kind: copy::Archive,
        into: &Path,
    ) -> Result<()> {
        use berth_registry::manifest::Compression;
        let d = self.tempdir("build-add-")?;
        let f = copy::open_in_root(root, archive).map_err(|e| BuildError::Io(archive.into(), e))?;
        let name = archive
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let at = |e: String| self.at(line, format!("ADD {name}: {e}"));
        let unpack = |r: &mut dyn std::io::Read, c: Compression| {
            berth_image::unpack::unpack_layer(r, c, d.path(), &name, &UnpackOptions::default())
                .map_err(|e| at(berth_engine::error::chain(&e)))
        };
        let mut f = std::io::BufReader::new(f);
        match kind {
            copy::Archive::Layer(c) => unpack(&mut f, c)?,
            copy::Archive::Bzip2 => {
                unpack(&mut bzip2::read::MultiBzDecoder::new(f), Compression::None)?
            }
            // lzma-rs only writes: the tar goes through a file of the build's tmp.
            copy::Archive::Xz => {
                let mut t = tempfile::tempfile_in(&self.tmp)
                    .map_err(|e| BuildError::Io(self.tmp.clone(), e))?;
                lzma_rs::xz_decompress(&mut f, &mut t).map_err(|e| at(format!("xz: {e}")))?;
                std::io::Seek::rewind(&mut t).map_err(|e| BuildError::Io(self.tmp.clone(), e))?;
                unpack(&mut std::io::BufReader::new(t), Compression::None)?
            }
        };
        let fd = context::open_root(d.path())?;
        copy::copy_from_root(
            fd.as_fd(),
            Path::new("/."),
            into,
            berth_engine::cp::Owner::Source,
        )
        .map_err(|e| self.at(line, format!("ADD {name}: {e}")))?;
        Ok(())
    }
}

/// `builder prune`: forgets every cache entry and RUN cache mount, then frees what no
/// image holds any more; (entries dropped, bytes freed).
pub fn prune(store: &Store) -> Result<(usize, u64)> {
    let n = store.update_build_cache(|v| {
        let n = v["entries"].as_object().map_or(0, |m| m.len());
        v["entries"] = json!({});
        v["donors"] = json!({});
        Ok(n)
    })?;
    let mounts = store.root().join("build-cache-mounts");
    let mut bytes = 0;
    let mut count = n;
    for m in std::fs::read_dir(&mounts).into_iter().flatten().flatten() {
        bytes += berth_image::layers::diff_size(&m.path());
        berth_image::store::remove_tree(&m.path())?;
        count += 1;
    }
    let rep = berth_engine::images::gc(store)?;
    Ok((count, bytes + rep.bytes))
}

/// Directory `name` under `base` with `mode` and owner, made unless it exists. Made whole
/// under a temporary name, then moved into place unless another build (or a parallel
/// stage) got there first: no one sees it before its mode and owner are set, and two
/// makers never fail on each other (regression: `File exists` from a racing mkdir).
fn shared_dir(
    base: &Path,
    name: &str,
    mode: u32,
    uid: Option<u32>,
    gid: Option<u32>,
) -> Result<PathBuf> {
    let d = base.join(name);
    if d.is_dir() {
        return Ok(d);
    }
    let t = tempfile::Builder::new()
        .prefix(".new-")
        .tempdir_in(base)
        .map_err(|e| BuildError::Io(base.to_path_buf(), e))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(mode))
        .map_err(|e| BuildError::Io(t.path().to_path_buf(), e))?;
    if uid.is_some() || gid.is_some() {
        std::os::unix::fs::chown(t.path(), uid, gid)
            .map_err(|e| BuildError::Io(t.path().to_path_buf(), e))?;
    }
    match rustix::fs::renameat_with(
        rustix::fs::CWD,
        t.path(),
        rustix::fs::CWD,
        &d,
        rustix::fs::RenameFlags::NOREPLACE,
    ) {
        // Ours is in place: the guard must not remove it.
        Ok(()) => {
            let _ = t.keep();
        }
        // Theirs is: ours goes with the guard.
        Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(BuildError::Io(d, e.into())),
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_mount_dir_made_by_racing_builds_is_one_dir_and_no_error() {
        let base = tempfile::tempdir().unwrap();
        let made: Vec<_> = (0..8)
            .map(|_| {
                let b = base.path().to_path_buf();
                std::thread::spawn(move || shared_dir(&b, "cache", 0o750, None, None))
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect();
        assert!(made.iter().all(|d| d == &base.path().join("cache")));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(base.path().join("cache"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o750);
        // Nothing else left: the losers' temporary directories went.
        assert_eq!(std::fs::read_dir(base.path()).unwrap().count(), 1);
    }
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn history_lists_and_chain_ids() {
        assert_eq!(
            json_list(&["/bin/sh".into(), "-c".into(), "echo \"hi\"".into()]),
            r#"["/bin/sh" "-c" "echo \"hi\""]"#
        );
        assert_eq!(chain_of(None, "sha256:a"), "sha256:a");
        assert_eq!(
            chain_of(Some("sha256:a"), "sha256:b"),
            berth_image::store::sha256_digest(b"sha256:a sha256:b")
        );
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
    }

    #[test]
    fn normalise_drops_overlay_bookkeeping_and_clamps_mtimes() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("d");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("f"), "x").unwrap();
        std::os::unix::fs::symlink("f", d.join("l")).unwrap();
        let set = |p: &Path, k: &str, v: &[u8]| {
            rustix::fs::lsetxattr(p, k, v, rustix::fs::XattrFlags::empty())
        };
        // trusted.* needs root (the black-box tests run as root; skip otherwise).
        if set(&d, "trusted.overlay.opaque", b"y").is_err() {
            return;
        }
        set(&d, "trusted.overlay.impure", b"y").unwrap();
        set(&d.join("f"), "trusted.overlay.origin", b"xyz").unwrap();
        set(&d.join("f"), "user.note", b"x").unwrap();
        normalise(t.path(), Some(5)).unwrap();
        let has = |p: &Path, k: &str| {
            let mut b = [0u8; 8];
            rustix::fs::lgetxattr(p, k, &mut b).is_ok()
        };
        assert!(has(&d, "trusted.overlay.opaque"));
        assert!(!has(&d, "trusted.overlay.impure"));
        assert!(!has(&d.join("f"), "trusted.overlay.origin"));
        assert!(!has(&d.join("f"), "user.note"));
        for p in [d.clone(), d.join("f"), d.join("l")] {
            assert_eq!(std::fs::symlink_metadata(&p).unwrap().mtime(), 5, "{p:?}");
        }
    }
}
