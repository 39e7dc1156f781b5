//! `berth compose` under failure (issue 12), black-box through the CLI as root: a replica
//! killed or unhealthy, a CPU burst (autoscale), a start-first rolling update, a rollback,
//! the supervisor killed. Each test is its own project in its own engine network namespace;
//! a "client" namespace joined to it by a veth sends requests to the published port
//! (198.51.100.1 host, .2 client). The harness is common/compose.rs; the request loop
//! here is this file's own: in-process sockets from threads moved into the client's
//! namespace, so it is fast enough to see a few milliseconds without backends, and it
//! keeps each reply's time, replica and version.
//! Run: `scripts/in-netns.sh cargo nextest run -p berth --test compose_failures`.

mod common;
#[path = "common/compose.rs"]
mod compose_harness;
use compose_harness::*;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A load balancer map's members, stamped (ns since the epoch) when nft returned.
type MapSnapshot = (u128, BTreeSet<String>);

/// One reply (or failure) seen by a client loop.
#[derive(Debug, Clone)]
struct Outcome {
    at: Instant,
    /// (replica, version) of a 200 reply; the error otherwise.
    reply: Result<(String, i64), String>,
}

/// A running replica as `compose ps --format json` shows it.
#[derive(Debug, Clone)]
struct Replica {
    id: String,
    image: String,
    health: String,
    /// Its address on each of its networks.
    addrs: Vec<String>,
}

fn replicas(c: &Compose, svc: &str) -> Vec<Replica> {
    c.replicas(svc)
        .into_iter()
        .map(|r| Replica {
            id: r.id(),
            image: r.s("Image"),
            health: r.health(),
            addrs: r.0["Networks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n["IPAddress"].as_str().map(str::to_string))
                .collect(),
        })
        .collect()
}

/// The last lines of the supervisor's log (for failure messages).
fn log_tail(c: &Compose) -> String {
    let s = c.supervisor_log();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Waits until `svc` has `n` running healthy replicas, exactly those in its map.
fn wait_serving(c: &Compose, svc: &str, n: usize, secs: u64) -> Vec<Replica> {
    let t = Instant::now();
    loop {
        let reps = replicas(c, svc);
        let healthy = reps.iter().filter(|r| r.health == "healthy").count();
        let want: BTreeSet<String> = reps.iter().flat_map(|r| r.addrs.clone()).collect();
        let map = lb_members(c, svc);
        if reps.len() == n && healthy == n && map.len() == n && map.is_subset(&want) {
            return reps;
        }
        assert!(
            t.elapsed() < Duration::from_secs(secs),
            "{svc}: not {n} healthy replicas in the map after {secs}s: {reps:?}, map {map:?}\n{}\nsupervisor log:\n{}",
            c.ok(&["ps", "-a"]),
            log_tail(c)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Client loops (`threads` of them) requesting `path` on the published port until
/// stopped.
fn client_loop(c: &Compose, port: u16, path: &str, threads: usize) -> Loop {
    Loop::start(&c.client.ns, &format!("{HOST_IP}:{port}"), path, threads)
}

/// Start times (ns since the epoch) of containers, from the engine's event log.
fn start_times(c: &Compose) -> BTreeMap<String, u128> {
    let until = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let out = c.e.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until.to_string(),
        "--format",
        "json",
        "--filter",
        "event=start",
    ]);
    out.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|e| {
            Some((
                e["Actor"]["ID"].as_str()?.to_string(),
                e["timeNano"].as_u64()? as u128,
            ))
        })
        .collect()
}

/// The addresses in the published load balancer's slot map of `svc` (nft, inside the
/// engine's namespace).
fn lb_members(c: &Compose, svc: &str) -> BTreeSet<String> {
    lb_members_in(&c.e.netns, &c.project, svc)
}

fn lb_members_in(netns: &str, project: &str, svc: &str) -> BTreeSet<String> {
    let map = format!("svc-{}-slots", service_id(project, svc));
    let o = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{netns}"))
        .args(["--", "nft", "-j", "list", "map", "inet", "berth", &map])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "nft list map {map}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut s = BTreeSet::new();
    for item in v["nftables"].as_array().into_iter().flatten() {
        for e in item["map"]["elem"].as_array().into_iter().flatten() {
            if let Some(a) = e[1].as_str() {
                s.insert(a.to_string());
            }
        }
    }
    s
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// One HTTP/1.0 GET: (replica, version) from a 200 reply's JSON.
fn get(addr: &str, path: &str) -> Result<(String, i64), String> {
    let sa: std::net::SocketAddr = addr.parse().unwrap();
    let mut s = std::net::TcpStream::connect_timeout(&sa, Duration::from_secs(3))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&buf);
    if !text.starts_with("HTTP/1.0 200") && !text.starts_with("HTTP/1.1 200") {
        return Err(format!(
            "reply: {:?}",
            text.lines().next().unwrap_or("(empty)")
        ));
    }
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    let v: serde_json::Value =
        serde_json::from_str(body.trim()).map_err(|e| format!("body {body:?}: {e}"))?;
    Ok((
        v["replica"].as_str().unwrap_or("").to_string(),
        v["version"].as_i64().unwrap_or(-1),
    ))
}

/// Request loops in the client namespace (a thread each, moved there with setns(2)),
/// bounded in time; each request's outcome is kept.
struct Loop {
    stop: Arc<AtomicBool>,
    out: Arc<Mutex<Vec<Outcome>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Loop {
    fn start(netns: &str, addr: &str, path: &str, n: usize) -> Loop {
        let stop = Arc::new(AtomicBool::new(false));
        let out = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for _ in 0..n {
            let (stop, out) = (stop.clone(), out.clone());
            let (ns, addr, path) = (
                format!("/run/netns/{netns}"),
                addr.to_string(),
                path.to_string(),
            );
            threads.push(std::thread::spawn(move || {
                let f = std::fs::File::open(&ns).unwrap();
                let r =
                    unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&f), libc::CLONE_NEWNET) };
                assert_eq!(r, 0, "setns {ns}");
                let t = Instant::now();
                // Bounded: a test that forgets to stop it still ends.
                while !stop.load(Ordering::Relaxed) && t.elapsed() < Duration::from_secs(150) {
                    let reply = get(&addr, &path);
                    let failed = reply.is_err();
                    out.lock().unwrap().push(Outcome {
                        at: Instant::now(),
                        reply,
                    });
                    if failed {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            }));
        }
        Loop { stop, out, threads }
    }

    fn snapshot(&self) -> Vec<Outcome> {
        self.out.lock().unwrap().clone()
    }

    /// Waits for `n` more successful replies than now (the service answers).
    fn wait_ok(&self, n: usize, secs: u64) {
        let ok = |v: &[Outcome]| v.iter().filter(|o| o.reply.is_ok()).count();
        let base = ok(&self.snapshot());
        let t = Instant::now();
        while ok(&self.snapshot()) < base + n {
            assert!(
                t.elapsed() < Duration::from_secs(secs),
                "the client got fewer than {n} replies in {secs}s: {:?}",
                self.snapshot().iter().rev().take(5).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn finish(mut self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
        self.snapshot()
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn failures(v: &[Outcome]) -> Vec<&Outcome> {
    v.iter().filter(|o| o.reply.is_err()).collect()
}

fn summary(v: &[Outcome]) -> String {
    let mut by: BTreeMap<String, usize> = BTreeMap::new();
    for o in v {
        let k = match &o.reply {
            Ok((r, ver)) => format!("{r} v{ver}"),
            Err(e) => format!("FAILED {e}"),
        };
        *by.entry(k).or_default() += 1;
    }
    format!("{} requests: {by:?}", v.len())
}

fn kill9(pid: i32) {
    let st = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill -9 {pid}");
}

fn pid_of(c: &Compose, id: &str) -> i32 {
    let pid: i32 =
        c.e.ok(&["inspect", "--format", "{{.State.Pid}}", id])
            .trim()
            .parse()
            .unwrap();
    assert!(pid > 0, "{id} has no pid");
    pid
}

/// Waits until none of `addrs` is in `svc`'s map: how long it took.
fn wait_out_of_map(c: &Compose, svc: &str, addrs: &[String], secs: u64) -> Duration {
    let t = Instant::now();
    loop {
        let m = lb_members(c, svc);
        if addrs.iter().all(|a| !m.contains(a)) {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < Duration::from_secs(secs),
            "{addrs:?} still in {svc}'s map after {secs}s: {m:?}\nsupervisor log:\n{}",
            log_tail(c)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// kill -9 of a payment replica's process while a client sends requests: its address
/// leaves the map, a replacement joins, and the client loses at most the requests that
/// were open on the killed replica (one per client thread).
#[test]
fn kill9_replica_is_replaced_and_client_keeps_being_served() {
    let t0 = Instant::now();
    let p = Compose::supermarket("kill");
    p.ok(&["up", "-d", "--wait"]);
    let before = wait_serving(&p, "payment", 3, 30);
    let lp = client_loop(&p, 8080, "/cgi-bin/who", 2);
    lp.wait_ok(30, 20);

    let victim = before[1].clone();
    let pid = pid_of(&p, &victim.id);
    let killed_at = Instant::now();
    kill9(pid);
    let out = wait_out_of_map(&p, "payment", &victim.addrs, 5);
    eprintln!("killed replica out of the map after {out:?}");

    let after = wait_serving(&p, "payment", 3, 30);
    let joined = killed_at.elapsed();
    eprintln!("3 healthy replicas in the map again after {joined:?}");
    let old: BTreeSet<&str> = before.iter().map(|r| r.id.as_str()).collect();
    let new: Vec<&Replica> = after
        .iter()
        .filter(|r| !old.contains(r.id.as_str()))
        .collect();
    assert_eq!(new.len(), 1, "one replacement: {after:?}");
    assert!(after.iter().all(|r| r.id != victim.id));
    let joined_at = Instant::now();
    lp.wait_ok(60, 20);
    let v = lp.finish();

    let fails = failures(&v);
    eprintln!("{}", summary(&v));
    assert!(
        fails.len() <= 2,
        "more failures than requests open on the killed replica: {fails:?}"
    );
    assert!(
        fails.iter().all(|o| o.at >= killed_at),
        "a request failed before the kill: {fails:?}"
    );
    // The replacement serves (its hostname is its short id).
    let short = &new[0].id[..12];
    assert!(
        v.iter()
            .any(|o| o.at > joined_at && matches!(&o.reply, Ok((r, _)) if r == short)),
        "the replacement {short} never answered: {}",
        summary(&v)
    );
    assert!(
        !v.iter()
            .any(|o| o.at > killed_at + out
                && matches!(&o.reply, Ok((r, _)) if *r == victim.id[..12])),
        "the killed replica answered after leaving the map"
    );
    let ps = p.ok(&["ps"]);
    assert_eq!(
        ps.lines().filter(|l| l.contains("kill-payment-")).count(),
        3,
        "{ps}"
    );
    eprintln!("test took {:?}", t0.elapsed());
}

/// A replica whose healthcheck fails leaves the map before its replacement starts, and
/// is replaced.
#[test]
fn unhealthy_replica_leaves_the_map_before_its_replacement_starts() {
    let t0 = Instant::now();
    let p = Compose::supermarket("sick");
    p.ok(&["up", "-d", "--wait"]);
    let before = wait_serving(&p, "payment", 3, 30);
    let victim = before[0].clone();

    // Snapshots of the map, each stamped when nft returned (the change happened before).
    let stop = Arc::new(AtomicBool::new(false));
    let snaps: Arc<Mutex<Vec<MapSnapshot>>> = Arc::default();
    let poller = {
        let (stop, snaps) = (stop.clone(), snaps.clone());
        let (ns, name) = (p.e.netns.clone(), p.project.clone());
        std::thread::spawn(move || {
            let t = Instant::now();
            while !stop.load(Ordering::Relaxed) && t.elapsed() < Duration::from_secs(90) {
                let m = lb_members_in(&ns, &name, "payment");
                snaps.lock().unwrap().push((now_ns(), m));
            }
        })
    };
    p.e.ok(&["exec", &victim.id, "rm", "/www/health"]);
    let out = wait_out_of_map(&p, "payment", &victim.addrs, 20);
    eprintln!("unhealthy replica out of the map {out:?} after its /health went");
    let after = wait_serving(&p, "payment", 3, 30);
    stop.store(true, Ordering::Relaxed);
    poller.join().unwrap();

    let old: BTreeSet<&str> = before.iter().map(|r| r.id.as_str()).collect();
    let new: Vec<&Replica> = after
        .iter()
        .filter(|r| !old.contains(r.id.as_str()))
        .collect();
    assert_eq!(new.len(), 1, "one replacement: {after:?}");
    assert!(
        replicas(&p, "payment").iter().all(|r| r.id != victim.id),
        "the unhealthy replica still runs"
    );
    let starts = start_times(&p);
    let started = *starts
        .get(&new[0].id)
        .unwrap_or_else(|| panic!("no start event of {}", new[0].id));
    let snaps = snaps.lock().unwrap();
    let left = snaps
        .iter()
        .find(|(_, m)| victim.addrs.iter().all(|a| !m.contains(a)))
        .map(|(t, _)| *t)
        .expect("the poller never saw the unhealthy replica out of the map");
    eprintln!(
        "out of the map at least {:.1} ms before the replacement started ({} map snapshots)",
        (started as f64 - left as f64) / 1e6,
        snaps.len()
    );
    assert!(
        left < started,
        "the replacement started {:.1} ms before the unhealthy replica was seen out of the map",
        (left as f64 - started as f64) / 1e6
    );
    // Once out, it never came back.
    let first = snaps.iter().position(|(t, _)| *t == left).unwrap();
    assert!(
        snaps[first..]
            .iter()
            .all(|(_, m)| victim.addrs.iter().all(|a| !m.contains(a))),
        "the unhealthy replica went back into the map"
    );
    eprintln!("test took {:?}", t0.elapsed());
}

/// A burst of CPU-heavy requests scales the service out, calm scales it back in, and
/// `compose ps` / `compose events` say when and why.
#[test]
fn autoscale_out_under_cpu_burst_and_back_in() {
    let t0 = Instant::now();
    let mut p = Compose::supermarket("burst");
    let f = p.write(
        "burst.yaml",
        r#"
services:
  web:
    image: supermarket/payment:1
    ports: ["8080:80"]
    init: true
    stop_grace_period: 1s
    healthcheck:
      test: wget -q -O /dev/null http://127.0.0.1/health
      interval: 1s
      timeout: 1s
      retries: 2
    deploy:
      replicas: 1
      resources:
        limits:
          cpus: "0.5"
    x-berth-autoscale:
      min: 1
      max: 3
      target_cpu_percent: 30
      scale_up_after: 2s
      scale_down_after: 4s
"#,
    );
    let project = p.project.clone();
    p.set(&project, &[f]);
    p.ok(&["up", "-d", "--wait"]);
    wait_serving(&p, "web", 1, 30);
    // Each request burns 300 ms of CPU; one replica is held to half a CPU.
    let burst = client_loop(&p, 8080, "/cgi-bin/burn?ms=300", 4);
    let t = Instant::now();
    let peak = loop {
        let n = replicas(&p, "web").len();
        if n >= 2 {
            break n;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "no scale out under the burst\n{}\nsupervisor log:\n{}",
            p.ok(&["ps"]),
            log_tail(&p)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!("scaled out to {peak} after {:?} of burst", t.elapsed());
    let ps_out = p.ok(&["ps"]);
    let v = burst.finish();
    eprintln!("burst: {}", summary(&v));
    assert!(
        ps_out.contains("autoscaled 1 -> ") && ps_out.contains("cpu"),
        "compose ps does not say why it scaled:\n{ps_out}"
    );

    // Calm: back to min (one step per cooldown).
    let calm = Instant::now();
    loop {
        let reps = replicas(&p, "web");
        if reps.len() == 1 && lb_members(&p, "web").len() == 1 {
            break;
        }
        assert!(
            calm.elapsed() < Duration::from_secs(40),
            "not back to 1 replica after the burst: {reps:?}\nsupervisor log:\n{}",
            log_tail(&p)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("back to 1 replica {:?} after the burst", calm.elapsed());
    let ev = p.ok(&["events", "--json", "--no-follow"]);
    let scales: Vec<serde_json::Value> = ev
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["type"] == "service" && e["action"] == "scale")
        .collect();
    let ups: Vec<&serde_json::Value> = scales
        .iter()
        .filter(|e| e["attributes"]["from"] == "1" && e["attributes"]["to"] != "1")
        .collect();
    let downs: Vec<&serde_json::Value> = scales
        .iter()
        .filter(|e| e["attributes"]["to"] == "1")
        .collect();
    assert!(
        !ups.is_empty() && !downs.is_empty(),
        "scale events (out and in) missing: {scales:?}"
    );
    for e in &scales {
        let why = e["attributes"]["reason"].as_str().unwrap_or("");
        assert!(why.contains("cpu"), "scale event without a reason: {e}");
    }
    let ps_out = p.ok(&["ps"]);
    assert!(
        ps_out.contains(" -> 1 at "),
        "compose ps does not say it scaled back in:\n{ps_out}"
    );
    eprintln!("test took {:?}", t0.elapsed());
}

/// Waits until every running replica of `svc` is on `image` and healthy in the map, with
/// at least `n` of them (the supermarket's autoscaler may add one under the request
/// loop's load: it is on the new image too), and no update is in progress.
fn wait_all_on(c: &Compose, svc: &str, image: &str, n: usize, secs: u64) -> Vec<Replica> {
    let t = Instant::now();
    loop {
        let reps = replicas(c, svc);
        let done = reps.len() >= n
            && reps
                .iter()
                .all(|r| r.image == image && r.health == "healthy")
            && lb_members(c, svc).len() == reps.len()
            && !c.ok(&["ps"]).contains("updating");
        if done {
            return reps;
        }
        assert!(
            t.elapsed() < Duration::from_secs(secs),
            "{svc}: not all {n} replicas on {image} after {secs}s: {reps:?}\n{}\nsupervisor log:\n{}",
            c.ok(&["ps", "-a"]),
            log_tail(c)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A start-first rolling update (PAYMENT_TAG=2 `up -d`) under a constant request loop:
/// no request fails, every replica ends on the new image, replies say version 2.
#[test]
fn start_first_rolling_update_loses_no_request() {
    let t0 = Instant::now();
    let mut p = Compose::supermarket("roll");
    p.ok(&["up", "-d", "--wait"]);
    let before = wait_serving(&p, "payment", 3, 30);
    let lp = client_loop(&p, 8080, "/cgi-bin/who", 2);
    lp.wait_ok(20, 20);
    p.env.insert("PAYMENT_TAG".into(), "2".into());
    let t = Instant::now();
    p.ok(&["up", "-d"]);
    let after = wait_all_on(&p, "payment", "supermarket/payment:2", 3, 75);
    eprintln!("rolling update done in {:?}", t.elapsed());
    let done_at = Instant::now();
    lp.wait_ok(30, 20);
    let v = lp.finish();
    eprintln!("{}", summary(&v));
    let fails = failures(&v);
    assert!(
        fails.is_empty(),
        "requests failed during the update: {fails:?}"
    );
    let old: BTreeSet<&str> = before.iter().map(|r| r.id.as_str()).collect();
    assert!(after.iter().all(|r| !old.contains(r.id.as_str())));
    let late: Vec<i64> = v
        .iter()
        .filter(|o| o.at > done_at)
        .filter_map(|o| o.reply.as_ref().ok().map(|r| r.1))
        .collect();
    assert!(
        !late.is_empty() && late.iter().all(|&ver| ver == 2),
        "replies after the update are not all version 2: {late:?}"
    );
    eprintln!("test took {:?}", t0.elapsed());
}

/// An update to an image that fails its healthcheck rolls back: the replicas end on the
/// old image and the service answers throughout.
#[test]
fn failed_update_rolls_back() {
    let t0 = Instant::now();
    let mut p = Compose::supermarket("rollback");
    p.ok(&["up", "-d", "--wait"]);
    let before = wait_serving(&p, "payment", 3, 30);
    let lp = client_loop(&p, 8080, "/cgi-bin/who", 2);
    lp.wait_ok(20, 20);
    p.env.insert("PAYMENT_TAG".into(), "broken".into());
    let up = p.cmd(&["up", "-d"]).output().unwrap();
    eprintln!(
        "up -d to the broken image: {:?}\n{}",
        up.status.code(),
        String::from_utf8_lossy(&up.stderr)
    );
    let t = Instant::now();
    let ev = loop {
        let ev = p.ok(&["events", "--json", "--no-follow"]);
        if ev.contains("\"action\":\"rollback\"") {
            break ev;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "no rollback after 60s\n{}\nsupervisor log:\n{}",
            p.ok(&["ps", "-a"]),
            log_tail(&p)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!("rolled back after {:?}", t.elapsed());
    let created_broken = ev
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .any(|e| {
            e["action"] == "create" && e["attributes"]["image"] == "supermarket/payment:broken"
        });
    assert!(created_broken, "no replica of the new image was tried");
    let after = wait_all_on(&p, "payment", "supermarket/payment:1", 3, 40);
    let ps = p.ok(&["ps"]);
    assert!(ps.contains("rolled back"), "compose ps says nothing:\n{ps}");
    // The failed new replica is stopped (its grace period) and removed.
    p.wait_for(15, "the broken replica's removal", || {
        p.ps()
            .iter()
            .all(|c| c.s("Image") != "supermarket/payment:broken")
            .then_some(())
    });
    // The old replicas were kept (an autoscaled extra one may have joined them).
    let now: BTreeSet<&str> = after.iter().map(|r| r.id.as_str()).collect();
    assert!(
        before.iter().all(|r| now.contains(r.id.as_str())),
        "the old replicas were replaced: {after:?}"
    );
    lp.wait_ok(20, 20);
    let v = lp.finish();
    eprintln!("{}", summary(&v));
    let fails = failures(&v);
    assert!(fails.is_empty(), "requests failed: {fails:?}");
    assert!(
        v.iter().all(|o| matches!(o.reply, Ok((_, 1)))),
        "a reply from another version: {}",
        summary(&v)
    );
    // The next `up -d` with the old tag is a no-op (the rollback is the desired state).
    p.env.clear();
    p.ok(&["up", "-d"]);
    let again = wait_serving(&p, "payment", 3, 20);
    let ids = |v: &[Replica]| v.iter().map(|r| r.id.clone()).collect::<BTreeSet<_>>();
    assert_eq!(ids(&again), ids(&after));
    eprintln!("test took {:?}", t0.elapsed());
}

/// kill -9 of the supervisor while requests flow: nothing fails; the next command starts
/// a new one, which adopts the containers (same ids) and replaces a replica killed later.
#[test]
fn killed_supervisor_is_restarted_and_adopts_the_containers() {
    let t0 = Instant::now();
    let p = Compose::supermarket("adopt");
    p.ok(&["up", "-d", "--wait"]);
    let before = wait_serving(&p, "payment", 3, 30);
    let ids = |p: &Compose| -> BTreeSet<String> { p.ps_args(&[]).iter().map(|c| c.id()).collect() };
    let all_before = ids(&p);
    // Through payment to inventory's VIP and db (both balancers are rebuilt on
    // adoption), and a fast path that makes many connections.
    let lp = client_loop(&p, 8080, "/cgi-bin/pay?item=apples", 2);
    let fast = client_loop(&p, 8080, "/cgi-bin/who", 2);
    lp.wait_ok(20, 20);
    let sup = p.supervisor_pid(&p.project).expect("no supervisor runs");
    kill9(sup);
    let t = Instant::now();
    while std::path::Path::new(&format!("/proc/{sup}")).exists() {
        // A zombie until its parent (gone: init) reaps it.
        let stat = std::fs::read_to_string(format!("/proc/{sup}/stat")).unwrap_or_default();
        if stat.contains(") Z ") {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "supervisor {sup} still alive"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Without it, the containers keep serving.
    lp.wait_ok(30, 20);
    assert_eq!(p.supervisor_pid(&p.project), None);

    // The next command, whichever (here `ps`), starts a new one, which adopts them.
    let restart_at = Instant::now();
    assert_eq!(ids(&p), all_before);
    let sup2 = p
        .supervisor_pid(&p.project)
        .expect("the next command started no supervisor");
    assert_ne!(sup2, sup);
    eprintln!("new supervisor {sup2} after {:?}", restart_at.elapsed());
    wait_serving(&p, "payment", 3, 20);
    assert_eq!(
        ids(&p),
        all_before,
        "the new supervisor did not adopt the containers"
    );
    lp.wait_ok(30, 20);
    let mut v = lp.finish();
    v.extend(fast.finish());
    eprintln!("{}", summary(&v));
    let fails = failures(&v);
    assert!(
        fails.is_empty(),
        "requests failed while the supervisor was killed and restarted: {fails:?}"
    );

    // The new supervisor watches the adopted replicas.
    let victim = before[2].clone();
    kill9(pid_of(&p, &victim.id));
    let out = wait_out_of_map(&p, "payment", &victim.addrs, 5);
    eprintln!("adopted replica out of the map {out:?} after its kill");
    let after = wait_serving(&p, "payment", 3, 30);
    assert!(after.iter().all(|r| r.id != victim.id));
    assert_eq!(p.supervisor_pid(&p.project), Some(sup2));
    eprintln!("test took {:?}", t0.elapsed());
}
