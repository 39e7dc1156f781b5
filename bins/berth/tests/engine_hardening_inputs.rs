//! Issue 16, items 6-10: unbounded logs, a storage root another user controls, bad inputs
//! with a poor answer, images with symlinked /etc files, and restart policies after a
//! reboot. Black-box, as root: `cargo nextest run -p berth --test engine_hardening_inputs`.

mod common;
use common::engine::*;
use common::{gzip, sha, Layer};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn stderr_of(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown(p: &Path, uid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), None).unwrap();
}

// ---------------------------------------------------------------------------------------
// Item 6: logs grow without bound by default.

#[test]
fn item6_logs_are_bounded_by_default_and_help_says_so() {
    let e = Engine::new();
    let help = e.ok(&["run", "--help"]);
    assert!(
        help.contains("max-size (default 10m; -1 for unbounded)")
            && help.contains("max-file (default 3)"),
        "run --help does not state the log defaults:\n{help}"
    );
    let id = e
        .ok(&[
            "run",
            "-d",
            IMAGE,
            "sh",
            "-c",
            "yes $(printf '%4000s' | tr ' ' x)",
        ])
        .trim()
        .to_string();
    let log = e
        .root()
        .join(format!("engine/containers/{id}/{id}-json.log"));
    let rot = |n: u32| PathBuf::from(format!("{}.{n}", log.display()));
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    const MAX: u64 = 10 << 20;
    // The writer outruns any poll: by the time .2 exists it has written over 20 MiB. Stop
    // early when the log grows past the limit without rotating (the bug), not at a full disk.
    e.wait_for(60, "the log to rotate twice", || {
        assert!(
            size(&log) <= MAX || rot(1).exists(),
            "the log grew past 10 MiB without rotating ({} bytes)",
            size(&log)
        );
        rot(2).exists().then_some(())
    });
    // Let it write well past three files' worth.
    std::thread::sleep(Duration::from_millis(1500));
    e.ok(&["kill", &id]);
    e.wait_for(20, "the container to stop", || {
        (e.inspect(&id)["State"]["Running"] == false).then_some(())
    });
    for p in [log.clone(), rot(1), rot(2)] {
        assert!(size(&p) <= MAX, "{} is {} bytes", p.display(), size(&p));
    }
    assert!(!rot(3).exists(), "more than 3 log files kept");
    let cfg = &e.inspect(&id)["HostConfig"]["LogConfig"]["Config"];
    assert_eq!(cfg["max-size"], (10u64 << 20).to_string());
    assert_eq!(cfg["max-file"], "3");
    // Still overridable, and max-size=-1 asks for unbounded.
    let u = e
        .ok(&["create", "--log-opt", "max-size=-1", IMAGE, "true"])
        .trim()
        .to_string();
    let cfg = &e.inspect(&u)["HostConfig"]["LogConfig"]["Config"];
    assert!(
        cfg["max-size"].is_null() && cfg["max-file"].is_null(),
        "{cfg}"
    );
    let s = e
        .ok(&[
            "create",
            "--log-opt",
            "max-size=1m",
            "--log-opt",
            "max-file=5",
            IMAGE,
            "true",
        ])
        .trim()
        .to_string();
    let cfg = &e.inspect(&s)["HostConfig"]["LogConfig"]["Config"];
    assert_eq!(
        (cfg["max-size"].as_str(), cfg["max-file"].as_str()),
        (Some("1048576"), Some("5"))
    );
}

// ---------------------------------------------------------------------------------------
// Item 7: a --root owned by another user is trusted.

#[test]
fn item7_root_owned_by_another_user_is_refused() {
    let d = tempfile::Builder::new()
        .prefix("berth-h16-root")
        .tempdir()
        .unwrap();
    let root = d.path().join("root");
    let outside = d.path().join("outside");
    std::fs::create_dir_all(root.join("engine/containers")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let victim = outside.join("victim");
    std::fs::write(&victim, b"").unwrap();
    std::os::unix::fs::symlink(&victim, root.join("engine/events.jsonl")).unwrap();
    chmod(&root, 0o755);
    chmod(&root.join("engine"), 0o777);
    chmod(&root.join("engine/containers"), 0o777);
    for p in [
        root.join("engine/events.jsonl"),
        root.join("engine/containers"),
        root.join("engine"),
        root.clone(),
    ] {
        chown(&p, 65534);
    }
    let b = common::Berth::new(d.path());
    assert_eq!(b.root, root);
    // docker's codes: 125 for run and create, 1 for other commands.
    for (args, code) in [
        (&["ps", "-a"][..], 1),
        (&["images"], 1),
        (&["volume", "ls"], 1),
        (&["create", "busybox", "true"], 125),
        (&["system", "boot"], 1),
    ] {
        let o = b.run(args);
        let err = stderr_of(&o);
        assert_eq!(o.status.code(), Some(code), "berth {args:?}: {err}");
        assert!(
            err.contains(&root.display().to_string()) && err.contains("owned by uid 65534"),
            "berth {args:?}: {err}"
        );
    }
    // Nothing was changed or written: not the mode, not the owner, nothing inside, nothing
    // through the planted link.
    let m = std::fs::metadata(&root).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid()), (0o755, 65534));
    assert!(!root.join("blobs").exists() && !root.join("engine/names").exists());
    assert_eq!(std::fs::read(&victim).unwrap(), b"");
}

#[test]
fn item7_a_directory_inside_the_root_writable_by_others_or_foreign_is_refused() {
    let e = Engine::new();
    e.ok(&["ps", "-a"]); // makes the engine's directories
    let r = e.root().to_path_buf();
    for (dir, args, mode, uid) in [
        ("engine/containers", &["ps", "-a"][..], 0o777, 0),
        ("layers", &["images"][..], 0o770, 0),
        (
            "engine/volumes",
            &["volume", "create", "x1"][..],
            0o700,
            65534,
        ),
        (
            "blobs/sha256",
            &["run", "--rm", IMAGE, "true"][..],
            0o702,
            0,
        ),
    ] {
        let p = r.join(dir);
        let m = std::fs::metadata(&p).unwrap();
        chmod(&p, mode);
        chown(&p, uid);
        let o = e.run(args);
        chmod(&p, m.mode() & 0o7777);
        chown(&p, m.uid());
        let err = stderr_of(&o);
        let code = if args[0] == "run" || args[0] == "create" {
            125
        } else {
            1
        };
        assert_eq!(
            o.status.code(),
            Some(code),
            "berth {args:?} with {dir} {mode:o}/{uid}: {err}"
        );
        let why = if uid != 0 {
            "owned by uid 65534"
        } else {
            "writable by other users"
        };
        assert!(
            err.contains(&p.display().to_string()) && err.contains(why),
            "berth {args:?}: {err}"
        );
    }
    e.ok(&["ps", "-a"]);
}

#[test]
fn item7_a_planted_events_symlink_is_refused_and_not_followed() {
    let e = Engine::new();
    e.ok(&["ps", "-a"]); // makes the engine's directories
    let victim = e.dir.path().join("victim");
    std::fs::write(&victim, b"").unwrap();
    let ev = e.root().join("engine/events.jsonl");
    let _ = std::fs::remove_file(&ev);
    std::os::unix::fs::symlink(&victim, &ev).unwrap();
    let (_, err) = e.code(125, &["create", IMAGE, "true"]);
    assert!(
        err.contains(&ev.display().to_string()) && err.contains("symlink"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        b"",
        "an event was written through the link"
    );
    let made = std::fs::read_dir(e.root().join("engine/containers"))
        .unwrap()
        .count();
    assert_eq!(made, 0, "a container was created: {err}");
    std::fs::remove_file(&ev).unwrap();
}

// ---------------------------------------------------------------------------------------
// Item 8: bad inputs with a poor answer.

#[test]
fn item8_memory_below_the_minimum_says_the_minimum() {
    let e = Engine::new();
    for m in ["1", "4k", "1023k"] {
        let (_, err) = e.code(125, &["run", "--rm", "-m", m, IMAGE, "true"]);
        assert!(
            err.contains("Minimum memory limit allowed is 1MB"),
            "-m {m}: {err}"
        );
        assert!(!err.contains("busy"), "{err}");
    }
    // The minimum itself works.
    e.ok(&["run", "--rm", "-m", "1m", IMAGE, "true"]);
    assert_eq!(e.ok(&["ps", "-aq"]).trim(), "");
}

#[test]
fn item8_env_var_over_128k_says_what_is_wrong() {
    let e = Engine::new();
    let f = e.dir.path().join("big.env");
    std::fs::write(&f, format!("BIGVAR={}\n", "a".repeat(140_000))).unwrap();
    let (_, err) = e.code(
        125,
        &[
            "run",
            "--rm",
            "--env-file",
            f.to_str().unwrap(),
            IMAGE,
            "true",
        ],
    );
    assert!(
        err.contains("\"BIGVAR\"") && err.contains("140007 bytes") && err.contains("131071"),
        "{err}"
    );
    assert!(
        err.len() < 1000,
        "the value was printed: {} bytes",
        err.len()
    );
    assert_eq!(e.ok(&["ps", "-aq"]).trim(), "");
}

#[test]
fn item8_ps_format_with_an_unknown_field_is_an_error() {
    let e = Engine::new();
    // With no container to list, as with some.
    let (out, err) = e.code(1, &["ps", "-a", "--format", "{{.Bogus}}"]);
    assert!(
        out.is_empty() && err.contains("Bogus") && err.contains("Names"),
        "{err}"
    );
    e.ok(&["create", "--name", "one", IMAGE, "true"]);
    let (_, err) = e.code(1, &["ps", "-a", "--format", "{{.Bogus}}"]);
    assert!(err.contains("Bogus"), "{err}");
    assert_eq!(e.ok(&["ps", "-a", "--format", "{{.Names}}"]), "one\n");
}

#[test]
fn item8_load_size_mismatch_names_both_sizes_not_one_digest_twice() {
    let e = Engine::new();
    let a = e.dir.path().join("oci.tar");
    e.ok(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        a.to_str().unwrap(),
        IMAGE,
    ]);
    // Rewrite the manifest with a wrong size for its layer (and the index to match).
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut ar = tar::Archive::new(std::fs::File::open(&a).unwrap());
    for en in ar.entries().unwrap() {
        let mut en = en.unwrap();
        let name = en.path().unwrap().to_string_lossy().into_owned();
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut en, &mut b).unwrap();
        files.push((name, b));
    }
    let get =
        |files: &[(String, Vec<u8>)], n: &str| files.iter().find(|f| f.0 == n).unwrap().1.clone();
    let mut index: serde_json::Value = serde_json::from_slice(&get(&files, "index.json")).unwrap();
    let md = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut m: serde_json::Value =
        serde_json::from_slice(&get(&files, &format!("blobs/sha256/{}", &md[7..]))).unwrap();
    let layer = m["layers"][0]["digest"].as_str().unwrap().to_string();
    let real = m["layers"][0]["size"].as_u64().unwrap();
    m["layers"][0]["size"] = (real + 1).into();
    let mb = serde_json::to_vec(&m).unwrap();
    let nd = sha(&mb);
    index["manifests"][0]["digest"] = nd.clone().into();
    index["manifests"][0]["size"] = mb.len().into();
    files.retain(|f| f.0 != "index.json");
    files.push((format!("blobs/sha256/{}", &nd[7..]), mb));
    files.push(("index.json".into(), serde_json::to_vec(&index).unwrap()));
    let mut t = tar::Builder::new(Vec::new());
    for (n, b) in &files {
        let mut h = tar::Header::new_ustar();
        h.set_size(b.len() as u64);
        h.set_mode(0o644);
        t.append_data(&mut h, n, &b[..]).unwrap();
    }
    let bad = e.dir.path().join("bad.tar");
    std::fs::write(&bad, t.into_inner().unwrap()).unwrap();
    let (_, err) = e.code(1, &["load", "-i", bad.to_str().unwrap()]);
    assert!(
        err.contains(&layer)
            && err.contains(&format!("{} bytes", real + 1))
            && err.contains(&format!("{real} bytes")),
        "{err}"
    );
    assert_eq!(
        err.matches(&layer[7..]).count(),
        1,
        "the digest is printed more than once: {err}"
    );
}

#[test]
fn item8_cp_errors_under_a_mount_keep_the_mount_prefix() {
    let e = Engine::new();
    e.ok(&[
        "create",
        "--name",
        "cpm",
        "-v",
        "h16vol:/data",
        IMAGE,
        "true",
    ]);
    let host = e.dir.path().join("f");
    std::fs::write(&host, b"x").unwrap();
    let (_, err) = e.code(1, &["cp", "cpm:/data/missing", host.to_str().unwrap()]);
    assert!(err.contains("/data/missing"), "{err}");
    let (_, err) = e.code(1, &["cp", host.to_str().unwrap(), "cpm:/data/nodir/x/y"]);
    assert!(err.contains("/data/nodir/x does not exist"), "{err}");
    // Outside any mount the path is the rootfs path, as before.
    let (_, err) = e.code(1, &["cp", "cpm:/etc/missing", host.to_str().unwrap()]);
    assert!(err.contains("/etc/missing"), "{err}");
    e.ok(&["rm", "-v", "cpm"]);
    e.ok(&["volume", "rm", "h16vol"]);
}

// ---------------------------------------------------------------------------------------
// Item 9: an image whose /etc/resolv.conf or /etc/hostname is a symlink cannot run.

/// busybox plus a layer of /etc symlinks.
fn load_with_etc_links(e: &Engine, tag: &str, links: &[(&str, &str)]) {
    let l1 = full_busybox_layer();
    let mut l = Layer::new().dir("etc").dir("run");
    for (p, to) in links {
        l = l.symlink(p, to);
    }
    let l2 = l.tar();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [sha(&l1), sha(&l2)]},
    });
    let manifest = serde_json::json!([{
        "Config": "config.json", "RepoTags": [tag], "Layers": ["l1.tar.gz", "l2.tar"],
    }]);
    let mut a = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("config.json", serde_json::to_vec(&config).unwrap()),
        ("l1.tar.gz", gzip(&l1)),
        ("l2.tar", l2),
        ("manifest.json", serde_json::to_vec(&manifest).unwrap()),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        a.append_data(&mut h, name, &data[..]).unwrap();
    }
    let p = e
        .dir
        .path()
        .join(format!("{}.tar", &sha(tag.as_bytes())[7..19]));
    std::fs::write(&p, a.into_inner().unwrap()).unwrap();
    e.ok(&["load", "-i", p.to_str().unwrap()]);
}

#[test]
fn item9_image_with_symlinked_resolv_conf_and_hostname_runs() {
    let e = Engine::new();
    load_with_etc_links(
        &e,
        "systemdish:1",
        &[
            ("etc/resolv.conf", "../run/systemd/resolve/stub-resolv.conf"),
            ("etc/hostname", "/run/hostname"),
        ],
    );
    let out = e.ok(&[
        "run", "--rm", "-h", "linked", "systemdish:1", "sh", "-c",
        "cat /etc/hostname; cat /etc/resolv.conf >/dev/null && echo resolv-ok; readlink /etc/resolv.conf",
    ]);
    assert_eq!(
        out,
        "linked\nresolv-ok\n../run/systemd/resolve/stub-resolv.conf\n"
    );
}

#[test]
fn item9_etc_symlinks_aimed_at_the_host_stay_inside_the_rootfs() {
    let e = Engine::new();
    let marker = tempfile::Builder::new()
        .prefix("berth-h16-marker")
        .tempdir()
        .unwrap();
    let secret = marker.path().join("secret");
    std::fs::write(&secret, b"host secret").unwrap();
    let m = marker.path().display().to_string();
    let shadow_before = std::fs::metadata("/etc/shadow")
        .map(|m| (m.len(), m.mtime()))
        .ok();
    load_with_etc_links(
        &e,
        "escapes:1",
        &[
            ("etc/resolv.conf", "../../../../../../../../../etc/shadow"),
            ("etc/hostname", &format!("{m}/secret")),
            (
                "etc/hosts",
                &format!("../../../../../../../../..{m}/created"),
            ),
        ],
    );
    let out = e.ok(&[
        "run",
        "--rm",
        "-h",
        "inside",
        "escapes:1",
        "cat",
        "/etc/hostname",
    ]);
    assert_eq!(out, "inside\n");
    assert_eq!(std::fs::read(&secret).unwrap(), b"host secret");
    let names: Vec<_> = std::fs::read_dir(marker.path())
        .unwrap()
        .flatten()
        .map(|x| x.file_name())
        .collect();
    assert_eq!(names, ["secret"], "the runtime created files in a host dir");
    assert_eq!(
        std::fs::metadata("/etc/shadow")
            .map(|m| (m.len(), m.mtime()))
            .ok(),
        shadow_before
    );
}

// ---------------------------------------------------------------------------------------
// Item 10: --restart always / unless-stopped containers don't come back after a reboot.

/// Simulates a reboot for one container: its monitor's keeper, its monitor and its init
/// die by SIGKILL (the keeper first: it would otherwise start a new monitor).
fn crash(e: &Engine, id: &str) {
    // A --rm container's records are on the engine's tmpfs.
    let on_disk = e.root().join(format!("engine/containers/{id}/state.json"));
    let p = if on_disk.exists() {
        on_disk
    } else {
        e.root()
            .join(format!("engine/run/containers/{id}/state.json"))
    };
    let st: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
    for k in ["keeperPid", "monitorPid", "pid"] {
        let pid = st[k].as_i64().unwrap();
        assert!(pid > 0, "{k} of {id}: {st}");
        std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
    }
}

#[test]
fn item10_system_boot_restarts_by_restart_policy() {
    let e = Engine::new();
    let run = |name: &str, policy: &[&str]| -> String {
        let mut a = vec!["run", "-d", "--name", name];
        a.extend_from_slice(policy);
        a.extend([IMAGE, "sleep", "1000"]);
        e.ok(&a).trim().to_string()
    };
    let always = run("always", &["--restart", "always"]);
    let always_stopped = run("always-stopped", &["--restart", "always"]);
    let unless = run("unless", &["--restart", "unless-stopped"]);
    let unless_stopped = run("unless-stopped", &["--restart", "unless-stopped"]);
    let failure = run("failure", &["--restart", "on-failure"]);
    let no = run("no", &[]);
    let rm = run("gone", &["--rm"]);
    e.ok(&["stop", "-t", "0", "always-stopped", "unless-stopped"]);
    for id in [&always, &unless, &failure, &no, &rm] {
        crash(&e, id);
    }
    let status = |id: &str| {
        e.inspect(id)["State"]["Status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    e.wait_for(10, "the crashed containers to read as exited", || {
        [&always, &unless, &failure, &no]
            .iter()
            .all(|id| status(id) == "exited")
            .then_some(())
    });
    let out = e.ok(&["system", "boot"]);
    let mut started: Vec<&str> = out.lines().collect();
    started.sort();
    let mut want = vec![
        always.as_str(),
        always_stopped.as_str(),
        unless.as_str(),
        failure.as_str(),
    ];
    want.sort();
    assert_eq!(
        started, want,
        "system boot started the wrong containers:\n{out}"
    );
    for id in &want {
        assert_eq!(status(id), "running", "{id}");
    }
    assert_eq!(status(&unless_stopped), "exited");
    assert_eq!(status(&no), "exited");
    // The --rm container the reboot left behind is gone.
    assert!(!e.ok(&["ps", "-aq", "--no-trunc"]).contains(&rm));
    // Once is enough: a second boot starts nothing.
    assert_eq!(e.ok(&["system", "boot"]), "");
}
