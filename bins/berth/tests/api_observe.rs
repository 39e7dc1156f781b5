//! `berth serve`'s watching and tuning endpoints (events, system df, top, stats, diff,
//! container prune, update) driven by Debian's docker CLI (20.10) and curl, compared with
//! what `berth` itself prints for the same store.

mod common;
use common::api::*;
use common::engine::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A docker CLI left running (events, streamed stats); SIGTERM to its `timeout` (which
/// passes it on) at drop, so a failing test leaves nothing behind.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Running {
    fn start(s: &Serve, e: &Engine, args: &[&str]) -> Running {
        let mut child = e
            .in_netns("timeout")
            .args(["60", DOCKER, "-H"])
            .arg(format!("unix://{}", s.sock))
            .args(args)
            .env("DOCKER_CONFIG", e.dir.path().join("docker-config"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { return };
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        Running { child, lines }
    }

    /// Lines until one satisfies `f` (returned with those before it), or `secs` pass.
    fn until(&self, secs: u64, f: impl Fn(&str) -> bool) -> (Vec<String>, bool) {
        let t = Instant::now();
        let mut seen = Vec::new();
        while let Some(left) = Duration::from_secs(secs).checked_sub(t.elapsed()) {
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let hit = f(&l);
                    seen.push(l);
                    if hit {
                        return (seen, true);
                    }
                }
                Err(_) => break,
            }
        }
        (seen, false)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .arg(self.child.id().to_string())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

fn unix_now() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// "12.5%" -> 12.5
fn percent(s: &str) -> f64 {
    s.trim()
        .trim_end_matches('%')
        .parse()
        .unwrap_or_else(|_| panic!("{s:?}"))
}

/// docker's sizes ("1.5MiB", "2.36MB", "0B") in bytes.
fn bytes(s: &str) -> f64 {
    let s = s.trim();
    let i = s
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or_else(|| panic!("{s:?}"));
    let (n, u) = s.split_at(i);
    let n: f64 = n.parse().unwrap_or_else(|_| panic!("{s:?}"));
    let m = match u {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => panic!("unit of {s:?}"),
    };
    n * m
}

#[test]
fn events_past_filtered_and_followed() {
    if !have_docker() {
        return;
    }
    let e = Eng::new();
    let s = Serve::start(&e, &[]);
    let t0 = unix_now();
    e.ok(&[
        "run",
        "--name",
        "ev",
        "--network",
        "none",
        "--label",
        "app=shop",
        IMAGE,
        "true",
    ]);
    let id = e.ok(&["inspect", "-f", "{{.Id}}", "ev"]).trim().to_string();
    assert_eq!(id.len(), 64);
    e.ok(&["network", "create", "evnet"]);
    e.ok(&["rm", "ev"]);
    let t1 = unix_now();

    // The same past through both front-ends, line for line (this host's zone is UTC, as
    // berth prints).
    let past = |extra: &[&str]| {
        let mut a = vec!["events", "--since", &t0, "--until", &t1];
        a.extend_from_slice(extra);
        (s.docker_ok(&e, &a), e.ok(&a))
    };
    let (d, b) = past(&[]);
    assert_eq!(d, b);
    let d_all = d.lines().count();
    let actions: Vec<&str> = d
        .lines()
        .filter(|l| l.contains(&id))
        .map(|l| l.split(' ').nth(2).unwrap())
        .collect();
    assert_eq!(actions, ["create", "start", "die", "destroy"], "{d}");
    assert!(d.contains(" network create "), "{d}");
    assert!(
        d.contains(&format!(
            "container start {id} (app=shop, image={IMAGE}, name=ev)"
        )),
        "{d}"
    );

    // Filters: dockerd's, the same on both sides.
    for f in [
        vec!["--filter", "event=start", "--filter", "container=ev"],
        vec!["--filter", "label=app=shop"],
        vec!["--filter", "label=app=other"],
        vec!["--filter", "type=network"],
        vec!["--filter", "network=evnet"],
        vec!["--filter", "image=busybox"],
        vec!["--filter", "volume=nothing"],
    ] {
        let (d, b) = past(&f);
        assert_eq!(d, b, "{f:?}");
    }
    let (d, _) = past(&["--filter", "event=start", "--filter", "container=ev"]);
    assert_eq!(d.lines().count(), 1, "{d}");
    assert!(d.contains(&format!("container start {id}")), "{d}");
    let (d, _) = past(&["--filter", "label=app=shop"]);
    assert_eq!(d.lines().count(), 4, "{d}");
    assert_eq!(past(&["--filter", "label=app=other"]).0, "");
    let (d, _) = past(&["--filter", "type=network"]);
    assert!(
        !d.is_empty() && d.lines().all(|l| l.split(' ').nth(1) == Some("network")),
        "{d}"
    );
    let (d, _) = past(&["--filter", "image=busybox"]);
    assert_eq!(d.lines().count(), 4, "{d}");

    // The API's objects: dockerd's fields, deprecated ones included.
    let q =
        format!("/v1.41/events?since={t0}&until={t1}&filters=%7B%22event%22%3A%5B%22die%22%5D%7D");
    let (code, body) = s.curl(&e, "GET", &q, None);
    assert_eq!(code, 200, "{body}");
    let v = json(body.lines().next().unwrap());
    assert_eq!(v["Type"], "container");
    assert_eq!(v["Action"], "die");
    assert_eq!(v["status"], "die");
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["from"], IMAGE);
    assert_eq!(v["scope"], "local");
    assert_eq!(v["Actor"]["Attributes"]["exitCode"], "0");
    assert!(v["timeNano"].as_i64().unwrap() > 0);
    assert_eq!(body.lines().count(), 1, "{body}");
    let (code, body) = s.curl(
        &e,
        "GET",
        "/v1.41/events?until=1&filters=%7B%22bogus%22%3A%5B%221%22%5D%7D",
        None,
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("invalid filter 'bogus'"), "{body}");
    // until alone: every past event up to it, as dockerd.
    let (code, body) = s.curl(&e, "GET", &format!("/events?until={t1}"), None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body.lines().count(), d_all, "{body}");
    let (code, body) = s.curl(&e, "GET", &format!("/events?since={t1}&until={t0}"), None);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("cannot be after"), "{body}");

    // Followed: `docker events` shows what happens after it starts, and nothing from
    // before its --since. (A second container made once the first was seen is surely
    // read from the stream, however slowly the CLI connected.)
    let t2 = unix_now();
    let r = Running::start(
        &s,
        &e,
        &["events", "--since", &t2, "--filter", "type=container"],
    );
    std::thread::sleep(Duration::from_millis(300));
    for name in ["later1", "later2"] {
        let id = e.ok(&["create", "--name", name, IMAGE, "true"]);
        let (lines, hit) = r.until(15, |l| l.contains(" container create "));
        assert!(hit, "{name}: {lines:?}");
        assert!(
            lines.len() == 1 && lines[0].contains(id.trim()) && lines[0].contains(name),
            "{lines:?}"
        );
    }
    drop(r);
    e.ok(&["rm", "later1", "later2"]);
    e.ok(&["network", "rm", "evnet"]);
}

#[test]
fn system_df_plain_and_verbose() {
    if !have_docker() {
        return;
    }
    let e = Eng::new();
    let s = Serve::start(&e, &[]);
    e.ok(&["volume", "create", "dfvol"]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "up",
        "--network",
        "none",
        "-v",
        "dfvol:/data",
        IMAGE,
        "sh",
        "-c",
        "head -c 300000 /dev/zero > /data/f; sleep 1000",
    ]);
    e.ok(&[
        "run",
        "--name",
        "writer",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "head -c 200000 /dev/zero > /big",
    ]);
    e.wait_for(10, "the volume's file", || {
        let v = json(&s.curl(&e, "GET", "/system/df", None).1);
        (v["Volumes"][0]["UsageData"]["Size"].as_u64() >= Some(300_000)).then_some(())
    });

    let d = s.docker_ok(&e, &["system", "df"]);
    let b = e.ok(&["system", "df"]);
    let rows = |t: &str| -> Vec<Vec<String>> {
        t.lines()
            .skip(1)
            .map(|l| {
                // TYPE may be two words ("Local Volumes", "Build Cache").
                let l = l.replacen("Local Volumes", "Local-Volumes", 1);
                let l = l.replacen("Build Cache", "Build-Cache", 1);
                l.split_whitespace().map(str::to_string).collect()
            })
            .collect()
    };
    let (dr, br) = (rows(&d), rows(&b));
    assert_eq!(dr.len(), 4, "{d}");
    assert!(d.starts_with("TYPE"), "{d}");
    for (x, y) in dr.iter().zip(&br) {
        // TYPE, TOTAL, ACTIVE the same; sizes the same within docker's rounding.
        assert_eq!(x[..3], y[..3], "{d}\n{b}");
        let (sx, sy) = (bytes(&x[3]), bytes(&y[3]));
        assert!((sx - sy).abs() <= sx.max(sy) * 0.01, "{d}\n{b}");
    }
    assert_eq!(dr[0][1..3], ["1", "1"], "{d}");
    assert_eq!(dr[1][1..3], ["2", "1"], "{d}");
    assert_eq!(dr[2][1..3], ["1", "1"], "{d}");
    // The stopped writer's 200 kB are reclaimable; the volume's 300 kB are in use.
    assert!(bytes(&dr[1][3]) >= 200_000.0, "{d}");
    assert!(bytes(&dr[2][3]) >= 300_000.0, "{d}");
    assert_eq!(dr[2][4], "0B", "{d}");

    let v = s.docker_ok(&e, &["system", "df", "-v"]);
    assert!(v.starts_with("Images space usage:"), "{v}");
    let line = |start: &str| {
        v.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("{start} in {v}"))
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let img = line("busybox");
    assert_eq!(img[1], "latest", "{v}");
    assert_eq!(img.last().unwrap(), "2", "{v}"); // CONTAINERS
    let writer = v.lines().find(|l| l.ends_with(" writer")).expect("writer");
    assert!(writer.contains("Exited (0)"), "{writer}");
    let up = v.lines().find(|l| l.ends_with(" up")).expect("up");
    assert!(up.contains(" Up "), "{up}");
    let vol = line("dfvol");
    assert_eq!(vol[1], "1", "{v}"); // LINKS
    assert!(bytes(&vol[2]) >= 300_000.0, "{v}");
    assert!(v.contains("Build cache usage: 0B"), "{v}");
    e.ok(&["rm", "-f", "up", "writer"]);
    e.ok(&["volume", "rm", "dfvol"]);
}

#[test]
fn top_and_diff_match_berth() {
    if !have_docker() {
        return;
    }
    let e = Eng::new();
    let s = Serve::start(&e, &[]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "tp",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "echo x > /added; mkdir -p /etc; echo y >> /etc/motd; rm -f /bin/true; sleep 1000 & wait",
    ]);
    let out = e.wait_for(10, "the sleep", || {
        let o = s.docker_ok(&e, &["top", "tp"]);
        o.lines()
            .any(|l| l.trim_end().ends_with(" sleep 1000"))
            .then_some(o)
    });
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    );
    assert_eq!(out.lines().count(), 3, "{out}");
    // Columns that do not move between two calls: both front-ends print the same.
    assert_eq!(
        s.docker_ok(&e, &["top", "tp", "-o", "pid,ppid,comm"]),
        e.ok(&["top", "tp", "-o", "pid,ppid,comm"])
    );
    let (code, body) = s.curl(&e, "GET", "/containers/tp/top?ps_args=-o%20pid,comm", None);
    assert_eq!(code, 200, "{body}");
    let v = json(&body);
    assert_eq!(v["Titles"], serde_json::json!(["PID", "COMMAND"]));
    let comms: Vec<&str> = v["Processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_str().unwrap())
        .collect();
    assert_eq!(comms, ["sh", "sleep"], "{body}");

    let d = s.docker_ok(&e, &["diff", "tp"]);
    assert_eq!(d, e.ok(&["diff", "tp"]));
    for want in ["A /added", "C /bin", "D /bin/true", "C /etc"] {
        assert!(d.lines().any(|l| l == want), "{want} in {d}");
    }
    let v = json(&s.curl(&e, "GET", "/containers/tp/changes", None).1);
    let kinds: Vec<(String, i64)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["Path"].as_str().unwrap().to_string(),
                c["Kind"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(kinds.contains(&("/added".into(), 1)), "{kinds:?}");
    assert!(kinds.contains(&("/bin/true".into(), 2)), "{kinds:?}");
    assert!(kinds.contains(&("/bin".into(), 0)), "{kinds:?}");

    s.docker_ok(&e, &["kill", "tp"]);
    // kill returns once the signal is sent (as dockerd's): the exit comes after.
    s.docker_ok(&e, &["wait", "tp"]);
    let o = s.docker(&e, &["top", "tp"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("is not running"), "{err}");
    assert_eq!(s.curl(&e, "GET", "/containers/tp/top", None).0, 409);
    assert_eq!(s.curl(&e, "GET", "/containers/nope/top", None).0, 404);
    assert_eq!(s.curl(&e, "GET", "/containers/nope/changes", None).0, 404);
    // A stopped container's changes are still there.
    assert_eq!(s.docker_ok(&e, &["diff", "tp"]), d);
    e.ok(&["rm", "tp"]);
}

#[test]
fn stats_show_real_cpu_and_memory() {
    if !have_docker() {
        return;
    }
    let e = Eng::new();
    let s = Serve::start(&e, &[]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "burn",
        "--network",
        "none",
        "-m",
        "64m",
        IMAGE,
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    e.ok(&[
        "create",
        "--name",
        "idle",
        "--network",
        "none",
        IMAGE,
        "sleep",
        "1000",
    ]);

    let fmt = "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.MemPerc}}|{{.PIDs}}|{{.NetIO}}";
    let d = s.docker_ok(&e, &["stats", "--no-stream", "--format", fmt, "burn"]);
    let b = e.ok(&["stats", "--no-stream", "--format", fmt, "burn"]);
    for out in [&d, &b] {
        let f: Vec<&str> = out.trim().split('|').collect();
        assert_eq!(f[0], "burn", "{out}");
        // A busy loop: most of a CPU.
        assert!(percent(f[1]) > 10.0, "{out}");
        let (used, limit) = f[2].split_once(" / ").unwrap();
        assert_eq!(limit, "64MiB", "{out}");
        assert!(bytes(used) > 0.0, "{out}");
        assert!(percent(f[3]) > 0.0 && percent(f[3]) < 100.0, "{out}");
        assert!(f[4].parse::<u32>().unwrap() >= 1, "{out}");
        assert_eq!(f[5], "0B / 0B", "{out}");
    }
    // No names: the running ones (-a: all), as berth's.
    let names = |a: &[&str]| {
        let mut v: Vec<String> = a.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    };
    for args in [
        &["stats", "--no-stream", "--format", "{{.Name}}"][..],
        &["stats", "--no-stream", "-a", "--format", "{{.Name}}"][..],
    ] {
        let d = s.docker_ok(&e, args);
        let b = e.ok(args);
        assert_eq!(
            names(&d.lines().collect::<Vec<_>>()),
            names(&b.lines().collect::<Vec<_>>()),
            "{args:?}"
        );
        assert!(d.contains("burn"), "{d}");
    }
    // A container that is not running: docker's zeros.
    let z = s.docker_ok(&e, &["stats", "--no-stream", "--format", fmt, "idle"]);
    assert_eq!(z.trim(), "idle|0.00%|0B / 0B|0.00%|0|0B / 0B");

    // The object: two readings a second apart, the CLI's inputs.
    let (code, body) = s.curl(&e, "GET", "/v1.41/containers/burn/stats?stream=false", None);
    assert_eq!(code, 200, "{body}");
    let v = json(&body);
    assert_eq!(v["name"], "/burn");
    let cpu = |k: &str| v[k]["cpu_usage"]["total_usage"].as_u64().unwrap();
    let sys = |k: &str| v[k]["system_cpu_usage"].as_u64().unwrap();
    assert!(
        cpu("cpu_stats") > cpu("precpu_stats") && cpu("precpu_stats") > 0,
        "{v}"
    );
    assert!(sys("cpu_stats") > sys("precpu_stats"), "{v}");
    assert!(v["cpu_stats"]["online_cpus"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(v["memory_stats"]["limit"], 64u64 << 20, "{v}");
    assert!(v["memory_stats"]["usage"].as_u64().unwrap() > 0, "{v}");
    assert!(v["memory_stats"]["stats"].is_object(), "{v}");
    assert!(v["pids_stats"]["current"].as_u64().unwrap() >= 1, "{v}");
    assert!(
        v["blkio_stats"]["io_service_bytes_recursive"].is_array(),
        "{v}"
    );
    assert_ne!(v["read"], v["preread"]);
    let (_, body) = s.curl(
        &e,
        "GET",
        "/containers/burn/stats?stream=false&one-shot=true",
        None,
    );
    let v = json(&body);
    assert_eq!(v["precpu_stats"]["cpu_usage"]["total_usage"], 0, "{v}");
    assert_eq!(v["preread"], "0001-01-01T00:00:00Z");
    assert!(v["cpu_stats"]["cpu_usage"]["total_usage"].as_u64().unwrap() > 0);
    let (code, _) = s.curl(
        &e,
        "GET",
        "/containers/burn/stats?stream=true&one-shot=true",
        None,
    );
    assert_eq!(code, 400);
    assert_eq!(
        s.curl(&e, "GET", "/containers/nope/stats?stream=0", None).0,
        404
    );

    // Streamed: the CLI redraws its table every second with live numbers.
    let r = Running::start(&s, &e, &["stats", "--format", fmt, "burn"]);
    // (Each frame starts with the CLI's clear-screen sequence.)
    let live = |l: &str| {
        l.split_once("burn|")
            .is_some_and(|(_, rest)| percent(rest.split('|').next().unwrap()) > 10.0)
    };
    let (lines, hit) = r.until(20, live);
    assert!(hit, "{lines:?}");
    let (more, hit) = r.until(10, |l| l.contains("burn|"));
    assert!(hit, "a second frame: {more:?}");
    drop(r);
    // No names: the CLI lists the running containers and follows /events for the ones
    // that start later.
    let r = Running::start(&s, &e, &["stats", "--format", fmt]);
    let (lines, hit) = r.until(20, live);
    assert!(hit, "{lines:?}");
    e.ok(&["start", "idle"]);
    let (more, hit) = r.until(20, |l| l.contains("idle|"));
    assert!(hit, "a container started later: {more:?}");
    drop(r);
    e.ok(&["rm", "-f", "burn", "idle"]);
}

#[test]
fn container_prune_and_update() {
    if !have_docker() {
        return;
    }
    let e = Eng::new();
    let s = Serve::start(&e, &[]);
    let keep = e.ok(&["create", "--name", "pa", "--label", "keep=1", IMAGE, "true"]);
    let b = e.ok(&["create", "--name", "pb", IMAGE, "true"]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "pc",
        "--network",
        "none",
        IMAGE,
        "sleep",
        "1000",
    ]);
    let out = s.docker_ok(
        &e,
        &["container", "prune", "-f", "--filter", "label=keep=1"],
    );
    assert!(
        out.starts_with(&format!("Deleted Containers:\n{}\n\n", keep.trim())),
        "{out}"
    );
    assert!(out.contains("Total reclaimed space: "), "{out}");
    let names = e.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(names, ["pb", "pc"]);
    // until: nothing was made a day ago.
    let out = s.docker_ok(&e, &["container", "prune", "-f", "--filter", "until=24h"]);
    assert_eq!(out.trim(), "Total reclaimed space: 0B");
    let (code, body) = s.curl(&e, "POST", "/v1.41/containers/prune", None);
    assert_eq!(code, 200, "{body}");
    let v = json(&body);
    assert_eq!(v["ContainersDeleted"], serde_json::json!([b.trim()]));
    assert!(v["SpaceReclaimed"].is_u64(), "{v}");
    assert_eq!(e.ok(&["ps", "-a", "--format", "{{.Names}}"]).trim(), "pc");
    let (code, body) = s.curl(
        &e,
        "POST",
        "/containers/prune?filters=%7B%22status%22%3A%5B%22exited%22%5D%7D",
        None,
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("invalid filter 'status'"), "{body}");

    // update: the record, and the cgroup the stats read.
    let out = s.docker_ok(&e, &["update", "--memory", "128m", "--cpus", "0.5", "pc"]);
    assert_eq!(out.trim(), "pc");
    let hc = &e.inspect("pc")["HostConfig"];
    assert_eq!(hc["Memory"], 128u64 << 20, "{hc}");
    assert_eq!(hc["NanoCpus"], 500_000_000u64, "{hc}");
    let mem = s.docker_ok(
        &e,
        &["stats", "--no-stream", "--format", "{{.MemUsage}}", "pc"],
    );
    assert!(mem.trim().ends_with("/ 128MiB"), "{mem}");
    s.docker_ok(
        &e,
        &[
            "update",
            "--restart",
            "on-failure:3",
            "--pids-limit",
            "50",
            "pc",
        ],
    );
    let hc = &e.inspect("pc")["HostConfig"];
    assert_eq!(hc["RestartPolicy"]["Name"], "on-failure", "{hc}");
    assert_eq!(hc["RestartPolicy"]["MaximumRetryCount"], 3, "{hc}");
    assert_eq!(hc["PidsLimit"], 50, "{hc}");
    // What the engine cannot change, set, is refused naming it; nothing changes.
    let (code, body) = s.curl(
        &e,
        "POST",
        "/v1.41/containers/pc/update",
        Some(r#"{"Memory":67108864,"CpusetMems":"0"}"#),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("CpusetMems"), "{body}");
    let o = s.docker(&e, &["update", "--kernel-memory", "64m", "pc"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("KernelMemory"),
        "{o:?}"
    );
    assert_eq!(e.inspect("pc")["HostConfig"]["Memory"], 128u64 << 20);
    // Nothing set: nothing changes (dockerd's 200).
    let (code, body) = s.curl(&e, "POST", "/containers/pc/update", Some("{}"));
    assert_eq!(code, 200, "{body}");
    assert_eq!(e.inspect("pc")["HostConfig"]["Memory"], 128u64 << 20);
    let (code, body) = s.curl(&e, "POST", "/containers/nope/update", Some("{}"));
    assert_eq!(code, 404, "{body}");
    let o = s.docker(&e, &["update", "-m", "64m", "nope"]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("No such container: nope"),
        "{o:?}"
    );
    e.ok(&["rm", "-f", "pc"]);
}
