//! What `berth compose` commands do, for any front-end (the CLI today, the API server
//! later): up, down, scale, stop/start, and the supervisor's start and adoption.
//! Containers of a project are only created, replaced and removed by its supervisor;
//! these functions change the desired state and wait for the supervisor to report.

use crate::compose::{Project, Service, VolumeKind};
use crate::replicas::{self, Member, L_PROJECT};
use crate::state::{Desired, ProjectDir, Status};
use crate::{Error, Result};
use berth_engine::layout::Layout;
use berth_engine::net::store::{CreateNetwork, Networks};
use berth_image::store::Store;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

pub const L_NETWORK: &str = "com.docker.compose.network";
pub const L_VOLUME: &str = "com.docker.compose.volume";

pub struct Ctx {
    pub layout: Layout,
    pub store: Store,
}

#[derive(Debug, Default, Clone)]
pub struct UpOptions {
    /// Services named on the command line (empty: every enabled one).
    pub services: Vec<String>,
    pub scale: BTreeMap<String, u32>,
    /// --wait: until every replica is running and healthy.
    pub wait: bool,
    pub remove_orphans: bool,
    pub force_recreate: bool,
    pub no_deps: bool,
    /// How long to wait for the supervisor (--wait-timeout; default 120 s).
    pub timeout: Option<Duration>,
}

/// Progress, in docker compose's words: ("Network p_front", "Created").
pub type Progress<'a> = &'a mut dyn FnMut(&str, &str);

/// Images of `services` (all when empty) that are not in the store.
pub fn missing_images(ctx: &Ctx, p: &Project, services: &[String]) -> Result<Vec<String>> {
    let recs = ctx.store.records()?;
    let mut v = Vec::new();
    for s in p.services.values() {
        if !services.is_empty() && !services.contains(&s.name) {
            continue;
        }
        if ctx.store.resolve(&recs, &s.image).is_err() && !v.contains(&s.image) {
            v.push(s.image.clone());
        }
    }
    Ok(v)
}

/// The services `up SVC...` keeps: the named ones and (unless `no_deps`) what they
/// depend on; a named service disabled by profiles is enabled, as docker compose does.
pub fn active_services(p: &mut Project, named: &[String], no_deps: bool) -> Result<Vec<String>> {
    if named.is_empty() {
        return Ok(p.services.keys().cloned().collect());
    }
    for n in named {
        if !p.services.contains_key(n) {
            match p.disabled.remove(n) {
                Some(s) => {
                    p.services.insert(n.clone(), s);
                }
                None => return Err(Error::NoSuchService(n.clone())),
            }
        }
    }
    let mut want: BTreeSet<String> = named.iter().cloned().collect();
    if !no_deps {
        let mut stack: Vec<String> = named.to_vec();
        while let Some(n) = stack.pop() {
            let deps: Vec<String> = p
                .services
                .get(&n)
                .map(|s| s.depends_on.keys().cloned().collect())
                .unwrap_or_default();
            for d in deps {
                if !p.services.contains_key(&d) {
                    if let Some(s) = p.disabled.remove(&d) {
                        p.services.insert(d.clone(), s);
                    }
                }
                if want.insert(d.clone()) {
                    stack.push(d);
                }
            }
        }
    }
    Ok(want.into_iter().collect())
}

/// Replicas of `s` asked for: --scale, else deploy.replicas, else 1 (an autoscaled
/// service starts at least at its minimum).
fn replicas_of(s: &Service, scale: &BTreeMap<String, u32>) -> u32 {
    let n = scale
        .get(&s.name)
        .copied()
        .or(s.deploy.replicas)
        .unwrap_or(1);
    match &s.autoscale {
        Some(a) => n.clamp(a.min, a.max),
        None => n,
    }
}

/// Checks what `up` needs before anything is made: two replicas with one fixed name,
/// external networks and volumes that do not exist.
fn check(ctx: &Ctx, p: &Project, active: &[String], scale: &BTreeMap<String, u32>) -> Result<()> {
    // Errors name the file as the model's own checks do (the first file: the model does
    // not keep which file defined what).
    let file = p
        .config_files
        .first()
        .map(|f| format!("{}: ", f.display()))
        .unwrap_or_default();
    for name in active {
        let s = &p.services[name];
        if s.container_name.is_some() && replicas_of(s, scale) > 1 {
            return Err(Error::Invalid(format!(
                "{file}services.{name}: container_name {:?} cannot be used with {} replicas: names must be unique",
                s.container_name.as_deref().unwrap_or(""),
                replicas_of(s, scale)
            )));
        }
        // What berth cannot run (e.g. volume nocopy) is refused before anything is made.
        crate::options::create_options(p, s, 1, false)
            .map_err(|e| Error::Invalid(format!("{file}{e}")))?;
    }
    let nets = Networks::new(&ctx.layout);
    for (k, n) in &p.networks {
        if n.external && nets.find(&n.name).is_err() {
            return Err(Error::Invalid(format!(
                "network {k} declared as external, but could not be found"
            )));
        }
    }
    for (k, v) in &p.volumes {
        if v.external && berth_engine::volumes::load(&ctx.layout, &v.name).is_err() {
            return Err(Error::Invalid(format!(
                "external volume \"{}\" not found (volumes.{k})",
                v.name
            )));
        }
    }
    Ok(())
}

/// Networks and named volumes of the project that do not exist yet.
fn make_resources(ctx: &Ctx, p: &Project, active: &[String], progress: Progress) -> Result<()> {
    let used_nets: BTreeSet<&String> = active
        .iter()
        .flat_map(|s| p.services[s].networks.keys())
        .collect();
    let nets = Networks::new(&ctx.layout);
    for (k, n) in &p.networks {
        if n.external || !used_nets.contains(k) {
            continue;
        }
        if nets.find(&n.name).is_ok() {
            continue;
        }
        if let Some(d) = n.driver.as_deref() {
            if d != "bridge" {
                return Err(Error::Invalid(format!(
                    "networks.{k}.driver: driver {d:?} is not supported (only bridge)"
                )));
            }
        }
        let mut labels = n.labels.clone();
        labels.insert(L_PROJECT.into(), p.name.clone());
        labels.insert(L_NETWORK.into(), k.clone());
        let mut c = CreateNetwork {
            name: n.name.clone(),
            driver: n.driver.clone(),
            internal: n.internal,
            ipv6: n.enable_ipv6,
            labels,
            options: n.driver_opts.clone(),
            ..Default::default()
        };
        if let Some(ipam) = &n.ipam {
            for cfg in &ipam.config {
                if let Some(s) = &cfg.subnet {
                    c.subnets.push(s.clone());
                }
                if let Some(g) = &cfg.gateway {
                    c.gateways.push(g.clone());
                }
                if let Some(r) = &cfg.ip_range {
                    c.ip_ranges.push(r.clone());
                }
            }
        }
        nets.create(&c)
            .map_err(|e| Error::Invalid(format!("networks.{k}: {e}")))?;
        progress(&format!("Network {}", n.name), "Created");
    }
    let used_vols: BTreeSet<&String> = active
        .iter()
        .flat_map(|s| p.services[s].volumes.iter())
        .filter(|v| v.kind == VolumeKind::Volume)
        .filter_map(|v| v.source.as_ref())
        .collect();
    for (k, v) in &p.volumes {
        if v.external || !used_vols.contains(k) {
            continue;
        }
        if let Some(d) = v.driver.as_deref() {
            if d != "local" {
                return Err(Error::Invalid(format!(
                    "volumes.{k}.driver: driver {d:?} is not supported (only local)"
                )));
            }
        }
        if !v.driver_opts.is_empty() {
            return Err(Error::Invalid(format!(
                "volumes.{k}.driver_opts: not supported yet"
            )));
        }
        let mut labels = v.labels.clone();
        labels.insert(L_PROJECT.into(), p.name.clone());
        labels.insert(L_VOLUME.into(), k.clone());
        let (_, new) = berth_engine::volumes::create(&ctx.layout, Some(&v.name), labels, false)?;
        if new {
            progress(&format!("Volume \"{}\"", v.name), "Created");
        }
    }
    Ok(())
}

/// `up -d`: the desired state written, the supervisor started (or told), and its report
/// awaited: every replica running (and healthy with `wait`).
pub fn up(ctx: &Ctx, mut p: Project, o: &UpOptions, progress: Progress) -> Result<Status> {
    let active = active_services(&mut p, &o.services, o.no_deps)?;
    for k in o.scale.keys() {
        if !p.services.contains_key(k) {
            return Err(Error::NoSuchService(k.clone()));
        }
    }
    check(ctx, &p, &active, &o.scale)?;
    let pd = ProjectDir::new(&ctx.layout, &p.name);
    pd.create()?;
    let old = pd.load_desired()?;
    let members = replicas::members(&ctx.layout, &p.name)?;
    // Orphans: containers of services no longer in the file.
    let orphans: Vec<&Member> = members
        .iter()
        .filter(|m| !m.oneoff() && !p.services.contains_key(m.service()))
        .collect();
    if !orphans.is_empty() && !o.remove_orphans {
        let names: Vec<&str> = orphans.iter().map(|m| m.config.name.as_str()).collect();
        progress(
            &format!(
                "Found orphan containers ({}) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
                names.join(", ")
            ),
            "Warning",
        );
    }
    make_resources(ctx, &p, &active, progress)?;
    let mut scale = BTreeMap::new();
    for name in &active {
        scale.insert(name.clone(), replicas_of(&p.services[name], &o.scale));
    }
    // Orphans the supervisor should remove: services it knows of but not in the file
    // (kept in the model as "gone" by leaving them out of `active`).
    let mut previous = old.as_ref().map(|d| d.previous.clone()).unwrap_or_default();
    if let Some(old) = &old {
        for (name, s) in &old.project.services {
            let changed = p.services.contains_key(name)
                && old.project.config_hash(name) != p.config_hash(name);
            if changed {
                previous.insert(name.clone(), s.clone());
            }
        }
    }
    let mut recreate = old.as_ref().map(|d| d.recreate.clone()).unwrap_or_default();
    if o.force_recreate {
        for name in &active {
            *recreate.entry(name.clone()).or_insert(0) += 1;
        }
    }
    let mut d = Desired {
        generation: 0,
        project: p.clone(),
        active: active.clone(),
        scale,
        stopped: false,
        previous,
        recreate,
        remove_orphans: o.remove_orphans,
    };
    let gen = pd.save_desired(&mut d)?;
    ensure_supervisor(ctx, &p.name)?;
    wait_converged(ctx, &pd, gen, o.wait, o.timeout, progress)
}

/// Any command on a project that is up: a supervisor that was killed is started again
/// (it adopts the running containers), as the "the next command adopts them".
pub fn revive(ctx: &Ctx, project: &str) -> Result<()> {
    let pd = ProjectDir::new(&ctx.layout, project);
    match pd.load_desired()? {
        Some(d) if !d.stopped => ensure_supervisor(ctx, project),
        _ => Ok(()),
    }
}

/// Starts the project's supervisor unless it runs (it adopts the project's containers).
pub fn ensure_supervisor(ctx: &Ctx, project: &str) -> Result<()> {
    let pd = ProjectDir::new(&ctx.layout, project);
    if supervisor_pid(&pd).is_some() {
        return Ok(());
    }
    let exe = std::env::current_exe().map_err(|e| Error::Io("current_exe".into(), e))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--root")
        .arg(ctx.layout.root())
        .args(["compose", "-p", project, "supervise"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(pd.log_path())
        .map_err(|e| Error::Io(pd.log_path(), e))?;
    cmd.stderr(log);
    // Its own process group: a ^C at the terminal is not for it.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = cmd
        .spawn()
        .map_err(|e| Error::Io("berth compose supervise".into(), e))?;
    drop(child);
    // It holds its pid file's lock once it has adopted what exists.
    let t = Instant::now();
    while supervisor_pid(&pd).is_none() {
        if t.elapsed() > Duration::from_secs(10) {
            return Err(Error::Invalid(format!(
                "the supervisor of project {project} did not start: see {}",
                pd.log_path().display()
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// The running supervisor's pid: the holder of the pid file's lock.
pub fn supervisor_pid(pd: &ProjectDir) -> Option<u32> {
    let p = pd.pid_path();
    let f = std::fs::File::open(&p).ok()?;
    use rustix::fs::{flock, FlockOperation};
    if flock(&f, FlockOperation::NonBlockingLockShared).is_ok() {
        return None;
    }
    std::fs::read_to_string(&p).ok()?.trim().parse().ok()
}

/// Takes the pid file's lock for the life of the returned file (the supervisor's).
pub fn lock_supervisor(pd: &ProjectDir) -> Result<std::fs::File> {
    use rustix::fs::{flock, FlockOperation};
    use std::io::Write;
    let p = pd.pid_path();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .map_err(|e| Error::Io(p.clone(), e))?;
    flock(&f, FlockOperation::NonBlockingLockExclusive)
        .map_err(|_| Error::Invalid(format!("project {} has a supervisor already", pd.name)))?;
    f.set_len(0).map_err(|e| Error::Io(p.clone(), e))?;
    write!(f, "{}", std::process::id()).map_err(|e| Error::Io(p.clone(), e))?;
    Ok(f)
}

/// Waits for the supervisor to report generation `gen` converged (every replica
/// started, or with `healthy` also ready), printing containers as they start.
pub fn wait_converged(
    ctx: &Ctx,
    pd: &ProjectDir,
    gen: u64,
    healthy: bool,
    timeout: Option<Duration>,
    progress: Progress,
) -> Result<Status> {
    let t = Instant::now();
    let limit = timeout.unwrap_or(Duration::from_secs(120));
    let mut shown: BTreeSet<String> = BTreeSet::new();
    let mut shown_healthy: BTreeSet<String> = BTreeSet::new();
    let mut failing_since: Option<Instant> = None;
    loop {
        let st = pd.load_status();
        for m in replicas::members(&ctx.layout, &pd.name)? {
            if m.oneoff() || !m.running() {
                continue;
            }
            if shown.insert(m.config.name.clone()) {
                progress(&format!("Container {}", m.config.name), "Started");
            }
            if healthy
                && m.state
                    .as_ref()
                    .and_then(|s| s.health.as_ref())
                    .is_some_and(|h| h.status == "healthy")
                && shown_healthy.insert(m.config.name.clone())
            {
                progress(&format!("Container {}", m.config.name), "Healthy");
            }
        }
        if let Some(st) = &st {
            if st.generation >= gen {
                let errors: Vec<String> = st
                    .services
                    .iter()
                    .filter(|(_, s)| !s.error.is_empty())
                    .map(|(n, s)| format!("service {n}: {}", s.error))
                    .collect();
                let started = st.services.values().all(|s| {
                    s.running >= s.desired || !s.update.is_empty() && s.update.starts_with("paused")
                });
                // Without --wait, started is enough (as docker compose's up -d: healthchecks
                // are not waited for), unless a rolling update is under way: its progress
                // is shown to the end.
                let updating = st.services.values().any(|s| {
                    s.update.starts_with("updating") || s.update.starts_with("continuing")
                });
                let done = if healthy {
                    st.converged
                } else {
                    started && !updating
                };
                if done {
                    return Ok(st.clone());
                }
                // The supervisor retries a failed launch (backing off from 100 ms): an
                // error that stays 3 s is the answer, a transient one is not.
                if errors.is_empty() {
                    failing_since = None;
                } else if failing_since.get_or_insert_with(Instant::now).elapsed()
                    > Duration::from_secs(3)
                {
                    return Err(Error::Invalid(errors.join("; ")));
                }
            }
        }
        if supervisor_pid(pd).is_none() {
            return Err(Error::Invalid(format!(
                "the supervisor of project {} exited: see {}",
                pd.name,
                pd.log_path().display()
            )));
        }
        if t.elapsed() > limit {
            return Err(Error::Invalid(format!(
                "project {}: not converged after {:?} (see `berth compose ps` and {})",
                pd.name,
                limit,
                pd.log_path().display()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `scale SVC=N...`: new replica counts for the supervisor.
pub fn scale(
    ctx: &Ctx,
    project: &str,
    scale: &BTreeMap<String, u32>,
    progress: Progress,
) -> Result<Status> {
    let pd = ProjectDir::new(&ctx.layout, project);
    let mut d = pd
        .load_desired()?
        .ok_or_else(|| Error::NoSuchProject(project.to_string()))?;
    for (k, n) in scale {
        let Some(s) = d.project.services.get(k) else {
            return Err(Error::NoSuchService(k.clone()));
        };
        if s.container_name.is_some() && *n > 1 {
            return Err(Error::Invalid(format!(
                "services.{k}: container_name cannot be used with {n} replicas"
            )));
        }
        d.scale.insert(k.clone(), *n);
        if !d.active.contains(k) {
            d.active.push(k.clone());
        }
    }
    d.stopped = false;
    let gen = pd.save_desired(&mut d)?;
    ensure_supervisor(ctx, project)?;
    wait_converged(ctx, &pd, gen, false, None, progress)
}

/// The project's containers (not one-off) of `services` (all when empty).
pub fn containers(ctx: &Ctx, project: &str, services: &[String], all: bool) -> Result<Vec<Member>> {
    Ok(replicas::members(&ctx.layout, project)?
        .into_iter()
        .filter(|m| services.is_empty() || services.iter().any(|s| s == m.service()))
        .filter(|m| all || m.running())
        .collect())
}

/// `stop`: the supervisor keeps the containers but runs and replaces none; they are
/// stopped (in parallel).
pub fn stop(
    ctx: &Ctx,
    project: &str,
    services: &[String],
    timeout: Option<i64>,
    progress: Progress,
) -> Result<()> {
    let pd = ProjectDir::new(&ctx.layout, project);
    if let Some(mut d) = pd.load_desired()? {
        if services.is_empty() {
            d.stopped = true;
        } else {
            for s in services {
                d.scale.insert(s.clone(), 0);
            }
        }
        let gen = pd.save_desired(&mut d)?;
        wait_generation(&pd, gen);
    }
    let ms = containers(ctx, project, services, false)?;
    parallel(
        &ms,
        |m| {
            berth_engine::control::stop(&ctx.layout, &ctx.store, m.id(), None, timeout)
                .map_err(Error::from)
        },
        "Stopped",
        progress,
    )
}

/// `start`: stopped replicas start again and the supervisor takes over.
pub fn start(ctx: &Ctx, project: &str, progress: Progress) -> Result<Status> {
    let pd = ProjectDir::new(&ctx.layout, project);
    let mut d = pd
        .load_desired()?
        .ok_or_else(|| Error::NoSuchProject(project.to_string()))?;
    let ms: Vec<Member> = containers(ctx, project, &[], true)?
        .into_iter()
        .filter(|m| !m.oneoff() && !m.running())
        .collect();
    parallel(
        &ms,
        |m| {
            berth_engine::create::start_container(&ctx.layout, &ctx.store, m.id(), false)
                .map(|_| ())
                .map_err(Error::from)
        },
        "Started",
        progress,
    )?;
    d.stopped = false;
    let gen = pd.save_desired(&mut d)?;
    ensure_supervisor(ctx, project)?;
    wait_converged(ctx, &pd, gen, false, None, &mut |_, _| {})
}

/// Waits (a little) for a running supervisor to act on generation `gen`.
fn wait_generation(pd: &ProjectDir, gen: u64) {
    let t = Instant::now();
    while supervisor_pid(pd).is_some() && t.elapsed() < Duration::from_secs(5) {
        if pd.load_status().is_some_and(|s| s.generation >= gen) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn parallel(
    ms: &[Member],
    f: impl Fn(&Member) -> Result<()> + Sync,
    done: &str,
    progress: Progress,
) -> Result<()> {
    let results: Vec<(String, Result<()>)> = std::thread::scope(|sc| {
        let hs: Vec<_> = ms
            .iter()
            .map(|m| {
                let f = &f;
                sc.spawn(move || (m.config.name.clone(), f(m)))
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("worker")).collect()
    });
    let mut first = None;
    for (name, r) in results {
        match r {
            Ok(()) => progress(&format!("Container {name}"), done),
            Err(e) => {
                progress(&format!("Container {name}"), "Error");
                first.get_or_insert(e);
            }
        }
    }
    first.map_or(Ok(()), Err)
}

/// `down`: the supervisor goes first (so nothing is replaced), then the load balancing,
/// the containers, the project's networks, and with `volumes` its named and anonymous
/// volumes. Works on a project that failed half-way, and twice.
pub fn down(
    ctx: &Ctx,
    project: &str,
    model: Option<&Project>,
    volumes: bool,
    timeout: Option<i64>,
    progress: Progress,
) -> Result<()> {
    let pd = ProjectDir::new(&ctx.layout, project);
    let desired = pd.load_desired().ok().flatten();
    // The desired state goes: the supervisor sees it and exits; then make sure.
    let _ = std::fs::remove_file(pd.desired_path());
    if let Some(pid) = supervisor_pid(&pd) {
        let t = Instant::now();
        while supervisor_pid(&pd).is_some() && t.elapsed() < Duration::from_secs(3) {
            std::thread::sleep(Duration::from_millis(10));
        }
        if supervisor_pid(&pd).is_some() {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(pid as i32).expect("pid"),
                rustix::process::Signal::KILL,
            );
            let t = Instant::now();
            while supervisor_pid(&pd).is_some() && t.elapsed() < Duration::from_secs(3) {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    let model = model.cloned().or(desired.map(|d| d.project));
    if let Some(p) = &model {
        crate::lb::teardown(&ctx.layout, p);
    }
    let ms = containers(ctx, project, &[], true)?;
    parallel(
        &ms,
        |m| {
            let _ = berth_engine::control::stop(&ctx.layout, &ctx.store, m.id(), None, timeout);
            berth_engine::control::remove(
                &ctx.layout,
                &ctx.store,
                m.id(),
                &m.config.name,
                true,
                true,
            )
            .map_err(Error::from)
        },
        "Removed",
        progress,
    )?;
    // Networks and volumes the project made (by their labels, so a half-made project's
    // are found too).
    let nets = Networks::new(&ctx.layout);
    for n in nets.list()? {
        if n.labels.get(L_PROJECT).map(|s| s.as_str()) == Some(project) {
            nets.remove(&n.id)?;
            progress(&format!("Network {}", n.name), "Removed");
        }
    }
    if volumes {
        for v in berth_engine::volumes::list(&ctx.layout)? {
            if v.labels.get(L_PROJECT).map(|s| s.as_str()) == Some(project) {
                berth_engine::volumes::remove(&ctx.layout, &v.name)?;
                progress(&format!("Volume {}", v.name), "Removed");
            }
        }
    }
    pd.remove()?;
    Ok(())
}

/// Projects with records or containers here: (name, status text, config files).
pub fn list(ctx: &Ctx, all: bool) -> Result<Vec<(String, String, String)>> {
    let mut names: BTreeSet<String> = crate::state::project_names(&ctx.layout)
        .into_iter()
        .collect();
    let mut by: BTreeMap<String, Vec<Member>> = BTreeMap::new();
    for id in ctx.layout.container_ids()? {
        if let Ok(c) = ctx.layout.load_config(&id) {
            if let Some(p) = c.options.labels.get(L_PROJECT) {
                names.insert(p.clone());
                let state = berth_engine::status::current(&ctx.layout, &id).ok();
                by.entry(p.clone())
                    .or_default()
                    .push(Member { config: c, state });
            }
        }
    }
    let mut v = Vec::new();
    for n in names {
        let ms = by.remove(&n).unwrap_or_default();
        let running = ms.iter().filter(|m| m.running()).count();
        let exited = ms.len() - running;
        if running == 0 && !all {
            continue;
        }
        let mut parts = Vec::new();
        if running > 0 {
            parts.push(format!("running({running})"));
        }
        if exited > 0 {
            parts.push(format!("exited({exited})"));
        }
        let files = ProjectDir::new(&ctx.layout, &n)
            .load_desired()
            .ok()
            .flatten()
            .map(|d| {
                d.project
                    .config_files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        v.push((n, parts.join(", "), files));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What berth cannot run is refused by `up`'s check (before networks and volumes are
    /// made), naming the file, the service and the key.
    #[test]
    fn check_refuses_what_berth_cannot_run() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("compose.yaml");
        std::fs::write(
            &f,
            "services:\n  web:\n    image: busybox\n    volumes:\n      - type: volume\n        source: data\n        target: /data\n        volume:\n          nocopy: true\nvolumes:\n  data:\n",
        )
        .unwrap();
        let p = crate::compose::load(&crate::compose::LoadOptions {
            files: vec![f.clone()],
            working_dir: d.path().to_path_buf(),
            ..Default::default()
        })
        .unwrap();
        let root = d.path().join("root");
        let ctx = Ctx {
            layout: Layout::open(&root).unwrap(),
            store: berth_image::store::Store::open(&root).unwrap(),
        };
        let active: Vec<String> = p.services.keys().cloned().collect();
        let e = check(&ctx, &p, &active, &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("{}: services.web.volumes.0: ", f.display())),
            "{e}"
        );
    }
}
