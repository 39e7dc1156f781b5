//! Harness for the `berth compose` black-box tests: an [`Engine`] (its own network
//! namespace and storage root) with the supermarket's images loaded, a client namespace
//! joined to the engine's by a veth pair (198.51.100.1 host side, .2 client side), and a
//! [`Compose`] that runs `berth compose -f FILE... -p NAME ...` there and, on drop (even
//! when the test failed), runs `down -v -t 1` for every project it touched and kills what
//! is left by pid.
//!
//! common/mod.rs does not declare this module (other test binaries need not build it);
//! a test file takes it with:
//! ```ignore
//! mod common;
//! #[path = "common/compose.rs"]
//! mod compose_harness;
//! use compose_harness::*;
//! ```
#![allow(dead_code)]

pub use crate::common::engine::Engine;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const HOST_IP: &str = "198.51.100.1";
pub const CLIENT_IP: &str = "198.51.100.2";

/// examples/supermarket in this checkout.
pub fn supermarket_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/supermarket")
}

/// examples/supermarket/compose.yaml.
pub fn supermarket_file() -> PathBuf {
    supermarket_dir().join("compose.yaml")
}

/// Builds the supermarket's images (payment:1, :2, :broken, inventory:1, db:1) with
/// examples/supermarket/build-images.sh and loads them into `e`'s root. Nothing is
/// cached across tests: the script takes about 2 s and each root gets its own copy.
pub fn load_supermarket(e: &Engine) {
    let b = e.b.cmd(&[]);
    let mut c = Command::new("bash");
    c.arg(supermarket_dir().join("build-images.sh"))
        .arg(crate::common::berth_exe())
        .arg("--root")
        .arg(e.root());
    for (k, v) in b.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let o = c.stdin(Stdio::null()).output().unwrap();
    assert!(
        o.status.success(),
        "build-images.sh failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A second network namespace linked to the engine's by a veth pair (vh on the engine's
/// side with HOST_IP, vc here with CLIENT_IP), standing in for another machine. Deleted
/// on drop (the veth goes with it).
pub struct Client {
    pub ns: String,
}

impl Client {
    pub fn new(e: &Engine) -> Client {
        let ns = format!("{}-c", e.netns);
        let ip = |args: &[&str]| {
            let st = Command::new("ip").args(args).status().unwrap();
            assert!(st.success(), "ip {args:?}");
        };
        ip(&["netns", "add", &ns]);
        let c = Client { ns };
        ip(&[
            "-n", &e.netns, "link", "add", "vh", "type", "veth", "peer", "name", "vc", "netns",
            &c.ns,
        ]);
        ip(&[
            "-n",
            &e.netns,
            "addr",
            "add",
            &format!("{HOST_IP}/24"),
            "dev",
            "vh",
        ]);
        ip(&["-n", &e.netns, "link", "set", "vh", "up"]);
        ip(&[
            "-n",
            &c.ns,
            "addr",
            "add",
            &format!("{CLIENT_IP}/24"),
            "dev",
            "vc",
        ]);
        ip(&["-n", &c.ns, "link", "set", "vc", "up"]);
        ip(&["-n", &c.ns, "link", "set", "lo", "up"]);
        c
    }

    /// `program args` in the client's namespace.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.ns))
            .arg("--")
            .args(args)
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// GET `url` from the client (busybox wget under `timeout 5`): the body, or the
    /// error text.
    pub fn get(&self, url: &str) -> Result<String, String> {
        get_with(self, url, 5)
    }
}

fn get_with(c: &Client, url: &str, secs: u32) -> Result<String, String> {
    let o = c.run(&[
        "timeout",
        &secs.to_string(),
        "busybox",
        "wget",
        "-q",
        "-O-",
        url,
    ]);
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    } else {
        Err(format!(
            "wget {url}: {:?}: {}",
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).trim()
        ))
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

/// The value of a flat `"name":"value"` or `"name":number` in a CGI reply.
pub fn field(reply: &str, name: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(reply.trim()).ok()?;
    match &v[name] {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Null => None,
        x => Some(x.to_string()),
    }
}

/// What a [`RequestLoop`] saw.
#[derive(Debug, Default, Clone)]
pub struct LoopStats {
    pub ok: usize,
    pub failed: usize,
    /// Replies by the replica that answered (the reply's "replica": its hostname, the
    /// container's short id).
    pub by_replica: BTreeMap<String, usize>,
    /// Replies by the client address the replica saw ("client", from /cgi-bin/who).
    pub by_client: BTreeMap<String, usize>,
    /// The first few failures' texts.
    pub errors: Vec<String>,
}

/// Requests from the client to one URL, one after another on a thread, until stopped
/// (or `limit` requests were made).
pub struct RequestLoop {
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<LoopStats>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RequestLoop {
    pub fn start(client: &Client, url: &str, limit: Option<usize>) -> RequestLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(LoopStats::default()));
        let (s2, st2) = (stop.clone(), stats.clone());
        let ns = client.ns.clone();
        let url = url.to_string();
        let thread = std::thread::spawn(move || {
            // A Client value that must not delete the namespace it borrows.
            let c = std::mem::ManuallyDrop::new(Client { ns });
            let mut n = 0;
            while !s2.load(Ordering::SeqCst) && limit.is_none_or(|l| n < l) {
                n += 1;
                let r = get_with(&c, &url, 3);
                let mut s = st2.lock().unwrap();
                match r {
                    Ok(body) => {
                        s.ok += 1;
                        let rep = field(&body, "replica").unwrap_or_else(|| "?".into());
                        *s.by_replica.entry(rep).or_default() += 1;
                        if let Some(cl) = field(&body, "client") {
                            *s.by_client.entry(cl).or_default() += 1;
                        }
                    }
                    Err(e) => {
                        s.failed += 1;
                        if s.errors.len() < 10 {
                            s.errors.push(e);
                        }
                    }
                }
            }
        });
        RequestLoop {
            stop,
            stats,
            thread: Some(thread),
        }
    }

    /// The counts so far.
    pub fn stats(&self) -> LoopStats {
        self.stats.lock().unwrap().clone()
    }

    /// Waits for the loop to end by itself (it must have a limit).
    pub fn join(mut self) -> LoopStats {
        if let Some(t) = self.thread.take() {
            t.join().expect("request loop");
        }
        self.stats()
    }

    /// Stops the loop (after its current request) and returns the counts.
    pub fn stop(mut self) -> LoopStats {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("request loop");
        }
        self.stats()
    }
}

impl Drop for RequestLoop {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One row of `compose ps --format json`.
#[derive(Debug, Clone)]
pub struct PsRow(pub serde_json::Value);

impl PsRow {
    pub fn s(&self, k: &str) -> String {
        self.0[k].as_str().unwrap_or_default().to_string()
    }
    pub fn name(&self) -> String {
        self.s("Name")
    }
    pub fn id(&self) -> String {
        self.s("ID")
    }
    /// The first 12 characters of the id: the container's hostname, which the
    /// supermarket's replies name.
    pub fn short_id(&self) -> String {
        self.id().chars().take(12).collect()
    }
    pub fn service(&self) -> String {
        self.s("Service")
    }
    pub fn state(&self) -> String {
        self.s("State")
    }
    pub fn health(&self) -> String {
        self.s("Health")
    }
    pub fn label(&self, k: &str) -> Option<String> {
        self.0["Labels"][k].as_str().map(str::to_string)
    }
    pub fn pid(&self) -> i64 {
        self.0["Pid"].as_i64().unwrap_or(0)
    }
    /// The address on network `net` (the engine's network name, e.g. "proj_front").
    pub fn ip(&self, net: &str) -> Option<String> {
        self.0["Networks"]
            .as_array()?
            .iter()
            .find(|n| n["Network"] == net)
            .and_then(|n| n["IPAddress"].as_str())
            .map(str::to_string)
    }
}

/// A compose test's world: the engine, the client, a directory for compose files, and
/// the project `compose()` acts on. Every project name used is brought down on drop.
pub struct Compose {
    pub e: Engine,
    pub client: Client,
    /// Where tests write their compose files (under the engine's temporary directory).
    pub dir: PathBuf,
    pub project: String,
    pub files: Vec<PathBuf>,
    /// Extra environment for compose commands (interpolation); the test process's own
    /// COMPOSE_* and the supermarket's variables are removed.
    pub env: BTreeMap<String, String>,
    /// The working directory compose commands run in (default: `dir`).
    pub cwd: PathBuf,
    used: Mutex<BTreeSet<String>>,
}

/// Variables of the test process that would change how compose files resolve.
const SCRUB: &[&str] = &[
    "COMPOSE_FILE",
    "COMPOSE_PROJECT_NAME",
    "COMPOSE_PROFILES",
    "COMPOSE_PATH_SEPARATOR",
    "PAYMENT_TAG",
];

impl Compose {
    /// An engine with the supermarket's images, a client, and project `project` on
    /// examples/supermarket/compose.yaml (nothing started).
    pub fn supermarket(project: &str) -> Compose {
        let c = Compose::bare(project);
        load_supermarket(&c.e);
        c.with(project, &[supermarket_file()])
    }

    /// An engine with busybox:latest only (Engine::new), a client, no files yet.
    pub fn bare(project: &str) -> Compose {
        let e = Engine::new();
        let client = Client::new(&e);
        let dir = e.dir.path().join("work");
        std::fs::create_dir_all(&dir).unwrap();
        Compose {
            e,
            client,
            cwd: dir.clone(),
            dir,
            project: project.to_string(),
            files: Vec::new(),
            env: BTreeMap::new(),
            used: Mutex::new(BTreeSet::new()),
        }
    }

    /// Switches to project `project` on `files` (absolute, or relative to `dir`).
    pub fn with(mut self, project: &str, files: &[PathBuf]) -> Compose {
        self.set(project, files);
        self
    }

    pub fn set(&mut self, project: &str, files: &[PathBuf]) {
        self.project = project.to_string();
        self.files = files.iter().map(|f| self.dir.join(f)).collect();
    }

    /// Writes `text` to `dir/name` (creating parent directories); returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    /// `berth --root R compose -f FILE... -p PROJECT args...` in the engine's namespace.
    pub fn cmd(&self, args: &[&str]) -> Command {
        self.used.lock().unwrap().insert(self.project.clone());
        let mut a: Vec<String> = vec!["compose".into()];
        for f in &self.files {
            a.push("-f".into());
            a.push(f.display().to_string());
        }
        a.push("-p".into());
        a.push(self.project.clone());
        a.extend(args.iter().map(|s| s.to_string()));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let mut c = self.e.cmd(&a);
        for k in SCRUB {
            c.env_remove(k);
        }
        c.envs(&self.env);
        c.current_dir(&self.cwd);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs `compose args` and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "berth compose -p {} {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            self.project,
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// Runs `compose args` and asserts failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            !o.status.success(),
            "berth compose -p {} {args:?} succeeded:\nstdout: {}\nstderr: {}",
            self.project,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stderr).into_owned()
    }

    /// `compose ps -a --format json`.
    pub fn ps(&self) -> Vec<PsRow> {
        self.ps_args(&["-a"])
    }

    /// `compose ps --format json ARGS...`.
    pub fn ps_args(&self, args: &[&str]) -> Vec<PsRow> {
        let mut a = vec!["ps", "--format", "json"];
        a.extend_from_slice(args);
        let out = self.ok(&a);
        let v: serde_json::Value = serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("compose ps --format json: {e}: {out}"));
        v.as_array()
            .expect("ps json is an array")
            .iter()
            .cloned()
            .map(PsRow)
            .collect()
    }

    /// The running replicas of `service`, by name order.
    pub fn replicas(&self, service: &str) -> Vec<PsRow> {
        let mut v: Vec<PsRow> = self
            .ps_args(&[])
            .into_iter()
            .filter(|r| r.service() == service && r.state() == "running")
            .collect();
        v.sort_by_key(|r| r.name());
        v
    }

    /// Short id (hostname) -> container name, for every container of the project.
    pub fn hostnames(&self) -> BTreeMap<String, String> {
        self.ps()
            .into_iter()
            .map(|r| (r.short_id(), r.name()))
            .collect()
    }

    /// Polls `f` every 50 ms until Some, or panics after `secs`.
    pub fn wait_for<T>(&self, secs: u64, what: &str, f: impl FnMut() -> Option<T>) -> T {
        self.e.wait_for(secs, what, f)
    }

    /// Waits until the project's running containers are exactly `n`, all healthy.
    pub fn wait_healthy(&self, n: usize, secs: u64) -> Vec<PsRow> {
        let t = Instant::now();
        let last = loop {
            let rows = self.ps_args(&[]);
            if rows.len() == n
                && rows
                    .iter()
                    .all(|r| r.state() == "running" && r.health() == "healthy")
            {
                return rows;
            }
            if t.elapsed() > Duration::from_secs(secs) {
                break rows;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        panic!(
            "timed out after {secs}s waiting for {n} healthy containers; last ps: {:#?}\nsupervisor log: {}",
            last.iter().map(|r| &r.0).collect::<Vec<_>>(),
            self.supervisor_log()
        );
    }

    /// GET from the client until it answers (the load balancer is configured when the
    /// replicas are ready, a little after `up -d` returns).
    pub fn get_eventually(&self, url: &str, secs: u64) -> String {
        let t = Instant::now();
        loop {
            let last = match self.client.get(url) {
                Ok(b) => return b,
                Err(e) => e,
            };
            assert!(
                t.elapsed() < Duration::from_secs(secs),
                "no answer from {url} after {secs}s: {last}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `program args` in the engine's namespace (the "host").
    pub fn host(&self, args: &[&str]) -> Output {
        let mut c = self.e.in_netns(args[0]);
        c.args(&args[1..]).stdin(Stdio::null());
        c.output().unwrap()
    }

    /// R/engine/projects/<project>.
    pub fn project_dir(&self, project: &str) -> PathBuf {
        self.e.root().join("engine/projects").join(project)
    }

    /// The supervisor's status.json of the current project (null when absent).
    pub fn status(&self) -> serde_json::Value {
        std::fs::read(self.project_dir(&self.project).join("status.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Waits until the supervisor reports `n` replicas of `service` ready (in the load
    /// balancer) and `n` running, converged.
    pub fn wait_ready(&self, service: &str, n: u64, secs: u64) {
        self.wait_for(secs, &format!("{n} ready replicas of {service}"), || {
            let st = self.status();
            let s = &st["services"][service];
            (st["converged"] == true
                && s["ready"].as_u64() == Some(n)
                && s["running"].as_u64() == Some(n))
            .then_some(())
        });
    }

    pub fn supervisor_log(&self) -> String {
        std::fs::read_to_string(self.project_dir(&self.project).join("supervisor.log"))
            .unwrap_or_default()
    }

    /// The pid of `project`'s supervisor, if it runs (its pid file names it and the
    /// process is a `compose ... supervise` of this root).
    pub fn supervisor_pid(&self, project: &str) -> Option<i32> {
        let p = self.project_dir(project).join("supervisor.pid");
        let pid: i32 = std::fs::read_to_string(p).ok()?.trim().parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let root = self.e.root().display().to_string();
        (args.iter().any(|a| a == "supervise") && args.contains(&root)).then_some(pid)
    }

    /// What `project` left in the engine: containers, networks, volumes, its records
    /// directory, nftables service chains, leases (its services' VIPs, and those of the
    /// containers `ids`, e.g. taken from `ps` before `down`), its supervisor, cgroups.
    /// Empty when everything went.
    pub fn leftovers(&self, project: &str, ids: &[String]) -> Vec<String> {
        let mut left = Vec::new();
        let label = format!("label=com.docker.compose.project={project}");
        let running = self.e.ok(&["ps", "-aq", "--filter", &label]);
        if !running.trim().is_empty() {
            left.push(format!("containers: {}", running.trim()));
        }
        for what in ["network", "volume"] {
            let out = self.e.ok(&[what, "ls", "-q", "--filter", &label]);
            if !out.trim().is_empty() {
                left.push(format!("{what}s: {}", out.trim()));
            }
        }
        if self.project_dir(project).exists() {
            left.push(format!("{} exists", self.project_dir(project).display()));
        }
        if let Some(pid) = self.supervisor_pid(project) {
            left.push(format!("supervisor {pid} runs"));
        }
        // The project's load balancers: chains and maps named after their service ids,
        // and the published ports' entries.
        let nft = self.host(&["nft", "list", "table", "inet", "berth"]);
        let nft = String::from_utf8_lossy(&nft.stdout);
        let svc_ids = self.service_ids(project);
        for line in nft.lines() {
            if svc_ids.iter().any(|id| line.contains(id.as_str())) {
                left.push(format!("nft: {}", line.trim()));
            }
        }
        // Leases owned by the project's services (VIPs) or containers, in any network's
        // records.
        let owner = format!("svc:{project}:");
        for f in walk(&self.e.root().join("engine/networks")) {
            let t = std::fs::read_to_string(&f).unwrap_or_default();
            let name = f.display().to_string();
            for o in ids.iter().chain(std::iter::once(&owner)) {
                if t.contains(o.as_str()) || name.contains(o.as_str()) {
                    left.push(format!("{o} in {name}"));
                }
            }
        }
        // Containers' cgroups (every container of this engine: tests use one project
        // per engine at a time when they check this).
        for ctl in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let parent = ctl
                .path()
                .join(self.e.cgroup_parent.trim_start_matches('/'));
            for c in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
                if c.path().is_dir() {
                    left.push(format!("cgroup {}", c.path().display()));
                }
            }
        }
        left
    }

    /// The load balancer ids `project`'s services would have (their names as found in
    /// `compose config --services` of the current files, when they load).
    fn service_ids(&self, project: &str) -> Vec<String> {
        let o = self.run(&["config", "--services"]);
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|s| service_id(project, s))
            .collect()
    }
}

/// berth-network's service id (crates/network/src/lb.rs `service_id`): the first 6 bytes
/// of sha256("project/service"), hex.
pub fn service_id(project: &str, service: &str) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(format!("{project}/{service}").as_bytes());
    h.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            v.extend(walk(&p));
        } else {
            v.push(p);
        }
    }
    v
}

impl Drop for Compose {
    fn drop(&mut self) {
        let used: Vec<String> = self.used.lock().unwrap().iter().cloned().collect();
        for p in used {
            self.project = p.clone();
            let ok = self
                .cmd(&["down", "-v", "-t", "1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                // Files that do not load: down by name alone (the records have the model).
                let files = std::mem::take(&mut self.files);
                let _ = self
                    .cmd(&["down", "-v", "-t", "1"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                self.files = files;
            }
            // A supervisor that outlived down would replace what Engine's drop removes.
            if let Some(pid) = self.supervisor_pid(&p) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
        // Then Engine's drop: containers, monitors, mounts, the namespace, cgroups.
    }
}

/// Loads into `e` a two-layer image `tag`: busybox (every applet, /etc/passwd, /tmp) and
/// `files` (path, content, mode; parent directories made), with image config `config`
/// (the "config" object: Cmd, Env, Healthcheck...). For compose files that name images
/// docker's documentation uses (redis, postgres...): a busybox stand-in under that name.
pub fn load_image_with(
    e: &Engine,
    tag: &str,
    config: serde_json::Value,
    files: &[(&str, &str, u32)],
) {
    use crate::common::{sha, Layer};
    let mut l = Layer::new();
    let mut dirs = BTreeSet::new();
    for (p, text, mode) in files {
        let mut d = Path::new(p).parent();
        let mut chain = Vec::new();
        while let Some(x) = d.filter(|x| !x.as_os_str().is_empty()) {
            chain.push(x.to_string_lossy().into_owned());
            d = x.parent();
        }
        for x in chain.into_iter().rev() {
            if dirs.insert(x.clone()) {
                l = l.dir(&x);
            }
        }
        l = l.file(p, text.as_bytes(), *mode);
    }
    let archive = crate::common::engine::image_archive(tag, "amd64", config, &[l.tar()]);
    let p = e
        .dir
        .path()
        .join(format!("img-{}.tar", &sha(tag.as_bytes())[7..19]));
    std::fs::write(&p, archive).unwrap();
    e.ok(&["load", "-i", p.to_str().unwrap()]);
}

/// A busybox image `tag` whose command is `sh -c script` (PATH=/bin).
pub fn load_sh_image(e: &Engine, tag: &str, script: &str) {
    load_image_with(
        e,
        tag,
        serde_json::json!({"Cmd": ["sh", "-c", script], "Env": ["PATH=/bin"]}),
        &[],
    );
}
