//! End-to-end tests of `berth` image commands against Debian's docker-registry and skopeo.
//! Run as root. Each test starts its own registry and kills it on drop.

mod common;
use common::*;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::process::Command;

fn skopeo(args: &[&str]) -> std::process::Output {
    let o = Command::new("skopeo").args(args).output().expect("skopeo");
    assert!(
        o.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn load_archive(b: &Berth, dir: &std::path::Path, tag: &str, extra: &[u8]) {
    let p = dir.join(format!("in-{}.tar", &sha(tag.as_bytes())[7..19]));
    std::fs::write(&p, docker_archive(tag, extra)).unwrap();
    let out = b.ok(&["load", "-i", p.to_str().unwrap()]);
    assert!(out.contains("Loaded image:"), "{out}");
}

#[test]
fn push_pull_round_trip_skopeo_and_shared_layers() {
    let reg = Registry::start(None);
    let t = tempfile::tempdir().unwrap();
    let a = Berth::new(&t.path().join("a"));
    let img = format!("{}/test/bb:v1", reg.addr);
    load_archive(&a, t.path(), &img, b"one");
    let out = a.ok(&["push", &img]);
    assert!(out.contains("digest: sha256:"), "{out}");
    let ia = a.inspect(&img);
    // Small blobs go up monolithically: POST, then one PUT with the body; no PATCH.
    let access = std::fs::read_to_string(reg.dir.path().join("access.log")).unwrap();
    assert!(
        access.contains("\"PUT /v2/test/bb/blobs/uploads/"),
        "{access}"
    );
    assert!(!access.contains("\"PATCH "), "{access}");

    // Fresh root: identical digests, layers unpacked with whiteouts.
    let b = Berth::new(&t.path().join("b"));
    b.ok(&["pull", &img]);
    let ib = b.inspect(&img);
    assert_eq!(ia["Id"], ib["Id"]);
    assert_eq!(ia["Manifest"]["Digest"], ib["Manifest"]["Digest"]);
    assert_eq!(ia["RootFS"], ib["RootFS"]);
    // docker's shape: the top layer is UpperDir, the rest LowerDir (':'-joined).
    let gd = &ib["GraphDriver"]["Data"];
    let mut lowers = vec![gd["UpperDir"].as_str().unwrap().to_string()];
    lowers.extend(
        gd["LowerDir"]
            .as_str()
            .unwrap()
            .split(':')
            .map(str::to_string),
    );
    assert_eq!(lowers.len(), 3);
    let top = std::path::Path::new(&lowers[0]);
    let wh = std::fs::symlink_metadata(top.join("etc/motd")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
    let mut v = [0u8; 2];
    let n = rustix::fs::getxattr(top.join("opt"), "trusted.overlay.opaque", &mut v).unwrap();
    assert_eq!(&v[..n], b"y");
    let base = std::path::Path::new(&lowers[2]);
    assert_eq!(
        std::fs::read(base.join("bin/busybox")).unwrap(),
        std::fs::read("/bin/busybox").unwrap()
    );
    assert_eq!(
        std::fs::metadata(std::path::Path::new(&lowers[1]).join("data/extra"))
            .unwrap()
            .mode()
            & 0o777,
        0o600
    );

    // Pull by digest into another root: recorded under name@digest, not dangling.
    let c = Berth::new(&t.path().join("c"));
    let by_digest = format!(
        "{}/test/bb@{}",
        reg.addr,
        ia["Manifest"]["Digest"].as_str().unwrap()
    );
    c.ok(&["pull", &by_digest]);
    c.ok(&["image", "prune"]);
    assert_eq!(c.inspect(&by_digest)["Id"], ia["Id"]);
    assert!(c.ok(&["images"]).contains("<none>"));

    // skopeo reads what berth pushed, and copies within the registry for berth to pull.
    let oci = t.path().join("skopeo-oci");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{img}"),
        &format!("oci:{}:x", oci.display()),
    ]);
    let copied = format!("{}/test/copied:v2", reg.addr);
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{img}"),
        &format!("docker://{copied}"),
    ]);
    b.ok(&["pull", &copied]);
    assert_eq!(b.inspect(&copied)["Id"], ia["Id"]);

    // Cross-repository mount, then an image sharing all but one layer downloads only that one.
    let other = format!("{}/test/other:v1", reg.addr);
    a.ok(&["tag", &img, &other]);
    let out = a.ok(&["push", &other]);
    assert!(
        String::from_utf8_lossy(&a.run(&["push", &other]).stderr).contains("already exists"),
        "{out}"
    );
    let img2 = format!("{}/test/bb:v2", reg.addr);
    load_archive(&a, t.path(), &img2, b"two");
    let o = a.run(&["push", &img2]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        err.matches(": Pushed").count(),
        2,
        "only the new layer and config are uploaded: {err}"
    );
    let o = b.run(&["pull", &img2]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.matches("Already exists").count(), 2, "{err}");
    assert_eq!(err.matches("Download complete").count(), 1, "{err}");

    // Cross-repo mount: b pushes an image it pulled from test/bb to a new repo.
    let mounted = format!("{}/test/mounted:v1", reg.addr);
    b.ok(&["tag", &img, &mounted]);
    let err = String::from_utf8_lossy(&b.run(&["push", &mounted]).stderr).to_string();
    assert!(err.contains("Mounted from other repository"), "{err}");
    assert_blobs_verified(&a.root);
    assert_blobs_verified(&b.root);
}

#[test]
fn platform_selection_from_index() {
    let reg = Registry::start(None);
    let t = tempfile::tempdir().unwrap();
    let a = Berth::new(&t.path().join("a"));
    let amd = format!("{}/multi/x:amd", reg.addr);
    let arm = format!("{}/multi/x:arm", reg.addr);
    load_archive(&a, t.path(), &amd, b"amd64");
    load_archive(&a, t.path(), &arm, b"arm64");
    a.ok(&["push", &amd]);
    a.ok(&["push", &arm]);
    let (ma, mr) = (a.inspect(&amd), a.inspect(&arm));
    let desc = |m: &serde_json::Value, arch: &str| {
        let d = m["Manifest"]["Digest"].as_str().unwrap().to_string();
        let hex = d.trim_start_matches("sha256:").to_string();
        let size = std::fs::metadata(a.root.join("blobs/sha256").join(hex))
            .unwrap()
            .len();
        serde_json::json!({"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": d, "size": size,
            "platform": {"os": "linux", "architecture": arch}})
    };
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [desc(&ma, "amd64"), desc(&mr, "arm64")]});
    let idx_path = t.path().join("index.json");
    std::fs::write(&idx_path, serde_json::to_vec(&index).unwrap()).unwrap();
    let st = Command::new("curl")
        .args([
            "-sf",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/vnd.oci.image.index.v1+json",
            "--data-binary",
        ])
        .arg(format!("@{}", idx_path.display()))
        .arg(format!("http://{}/v2/multi/x/manifests/latest", reg.addr))
        .status()
        .unwrap();
    assert!(st.success());
    let multi = format!("{}/multi/x:latest", reg.addr);
    let b = Berth::new(&t.path().join("b"));
    b.ok(&["pull", &multi]);
    assert_eq!(b.inspect(&multi)["Id"], ma["Id"]);
    assert!(b.inspect(&multi)["Index"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    b.ok(&["pull", "--platform", "linux/arm64", &multi]);
    assert_eq!(b.inspect(&multi)["Id"], mr["Id"]);
    let err = b.fails(&["pull", "--platform", "linux/s390x", &multi]);
    assert!(
        err.contains("linux/s390x") && err.contains("linux/arm64"),
        "{err}"
    );
    let err = b.fails(&["pull", "--platform", "nonsense", &multi]);
    assert!(err.contains("--platform"), "{err}");
}

#[test]
fn basic_auth_login_logout() {
    let reg = Registry::start(Some(("alice", "s3cret")));
    let t = tempfile::tempdir().unwrap();
    let a = Berth::new(&t.path().join("a"));
    let img = format!("{}/private/bb:v1", reg.addr);
    load_archive(&a, t.path(), &img, b"p");
    let err = a.fails(&["push", &img]);
    assert!(err.contains("authentication required"), "{err}");
    let err = a.fails(&["login", "-u", "alice", "-p", "wrong", &reg.addr]);
    assert!(err.contains("rejected the credentials"), "{err}");
    assert!(a
        .ok(&["login", "-u", "alice", "-p", "s3cret", &reg.addr])
        .contains("Login Succeeded"));
    let auth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.home.join("auth.json")).unwrap()).unwrap();
    assert_eq!(auth["auths"][&reg.addr]["auth"], "YWxpY2U6czNjcmV0");
    a.ok(&["push", &img]);
    a.ok(&["logout", &reg.addr]);
    let b = Berth::new(&t.path().join("b"));
    assert!(b.fails(&["pull", &img]).contains("authentication required"));
    // docker's own config.json is read too.
    std::fs::create_dir_all(b.home.join(".docker")).unwrap();
    std::fs::write(
        b.home.join(".docker/config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"YWxpY2U6czNjcmV0"}}}}}}"#,
            reg.addr
        ),
    )
    .unwrap();
    b.ok(&["pull", &img]);
    assert_eq!(b.inspect(&img)["Id"], a.inspect(&img)["Id"]);
}

/// A token server plus a registry front that demands `Bearer` tokens: checks the
/// WWW-Authenticate dance (realm, service, scope, basic creds to the token server).
#[test]
fn bearer_token_dance() {
    use std::io::{BufRead, BufReader, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen2 = seen.clone();
    let a2 = addr.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let mut auth = String::new();
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                    break;
                }
                if h.to_ascii_lowercase().starts_with("authorization:") {
                    auth = h[14..].trim().to_string();
                }
            }
            seen2
                .lock()
                .unwrap()
                .push(format!("{} | {}", line.trim(), auth));
            let resp = if line.starts_with("GET /token?") {
                if auth == "Basic Ym9iOnB3" {
                    let body = r#"{"token":"tok-123"}"#;
                    format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
                } else {
                    "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_string()
                }
            } else if auth == "Bearer tok-123" {
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".to_string()
            } else {
                format!("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"http://{a2}/token\",service=\"test-registry\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            };
            let _ = s.write_all(resp.as_bytes());
        }
    });
    let t = tempfile::tempdir().unwrap();
    let b = Berth::new(t.path());
    assert!(b
        .fails(&["login", "-u", "bob", "-p", "nope", &addr])
        .contains("rejected the credentials"));
    b.ok(&["login", "-u", "bob", "-p", "pw", &addr]);
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|s| s.starts_with("GET /token?service=test-registry")
                && s.ends_with("Basic Ym9iOnB3")),
        "{seen:#?}"
    );
    assert!(
        seen.iter()
            .any(|s| s.starts_with("GET /v2/ ") && s.ends_with("Bearer tok-123")),
        "{seen:#?}"
    );
}

#[test]
fn sigkill_mid_pull_leaves_no_partial_blob() {
    let reg = Registry::start(None);
    let t = tempfile::tempdir().unwrap();
    let a = Berth::new(&t.path().join("a"));
    let big = Layer::new()
        .file("big", &random_bytes(64 << 20, 7), 0o644)
        .tar();
    let p = t.path().join("big.tar");
    std::fs::write(&p, &big).unwrap();
    drop(big);
    let img = format!("{}/big/x:v1", reg.addr);
    a.ok(&["import", p.to_str().unwrap(), &img]);
    a.ok(&["push", &img]);
    // 64 MiB is above the 16 MiB chunk size: uploaded in chunks (PATCH), unlike the
    // small blobs of the other tests (one PUT).
    let log = std::fs::read_to_string(reg.dir.path().join("access.log")).unwrap();
    assert!(
        log.matches("\"PATCH /v2/big/x/blobs/uploads/").count() >= 4,
        "{log}"
    );
    let b = Berth::new(&t.path().join("b"));
    let mut child = b
        .cmd(&["pull", &img])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let tmp = b.root.join("tmp");
    let start = std::time::Instant::now();
    let mut partial = 0;
    while start.elapsed() < std::time::Duration::from_secs(30) {
        if let Ok(rd) = std::fs::read_dir(&tmp) {
            partial = rd
                .filter_map(|e| e.ok())
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .max()
                .unwrap_or(0);
        }
        if partial > (1 << 20) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    let st = child.wait().unwrap();
    assert!(
        partial > (1 << 20) && partial < (64 << 20),
        "did not catch the pull mid-download ({partial} bytes)"
    );
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&st),
        Some(9),
        "pull finished before the kill"
    );
    assert_blobs_verified(&b.root);
    let layer = a.inspect(&img)["Manifest"]["Layers"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!b.root.join("blobs/sha256").join(&layer[7..]).exists());
    b.ok(&["pull", &img]);
    assert_eq!(b.inspect(&img)["Id"], a.inspect(&img)["Id"]);
    assert_blobs_verified(&b.root);
    // The leftover temp file is removed by GC.
    b.ok(&["image", "prune"]);
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}

#[test]
fn local_image_commands_and_gc() {
    let t = tempfile::tempdir().unwrap();
    let a = Berth::new(&t.path().join("a"));
    load_archive(&a, t.path(), "example.com/x/bb:1", b"1");
    load_archive(&a, t.path(), "example.com/x/bb:2", b"2");
    a.ok(&["tag", "example.com/x/bb:1", "bb:alias"]);
    let ls = a.ok(&["images"]);
    assert!(ls.starts_with("REPOSITORY"), "{ls}");
    assert!(
        ls.contains("example.com/x/bb") && ls.contains("bb ") && ls.contains("alias"),
        "{ls}"
    );
    let ids = a.ok(&["images", "-q"]);
    assert_eq!(ids.lines().count(), 2, "{ids}");
    let id1 = a.inspect("bb:alias")["Id"].as_str().unwrap().to_string();
    assert_eq!(a.inspect(&id1[7..19])["Id"], id1.as_str());
    // Removing by ID with two tags needs --force.
    assert!(a.fails(&["rmi", &id1[7..19]]).contains("several tags"));
    let blobs_before = std::fs::read_dir(a.root.join("blobs/sha256"))
        .unwrap()
        .count();
    let out = a.ok(&["rmi", "bb:alias"]);
    assert!(
        out.contains("Untagged: bb:alias") && !out.contains("Deleted"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_dir(a.root.join("blobs/sha256"))
            .unwrap()
            .count(),
        blobs_before
    );
    let out = a.ok(&["image", "rm", "example.com/x/bb:1"]);
    assert!(out.contains("Deleted: sha256:"), "{out}");
    // The shared base layers stay for image 2; image 1's own layer, config and manifest go.
    assert_eq!(
        std::fs::read_dir(a.root.join("blobs/sha256"))
            .unwrap()
            .count(),
        blobs_before - 3
    );
    assert_blobs_verified(&a.root);
    a.fails(&["inspect", "example.com/x/bb:1"]);
    // Dangling images are pruned; tagged ones stay unless --all.
    a.ok(&["image", "prune"]);
    assert_eq!(a.ok(&["images", "-q"]).lines().count(), 1);
    a.ok(&["image", "prune", "--all", "--force"]);
    assert_eq!(a.ok(&["images", "-q"]).lines().count(), 0);
    assert_eq!(
        std::fs::read_dir(a.root.join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(std::fs::read_dir(a.root.join("layers")).unwrap().count(), 0);
    assert!(a.fails(&["rmi", "nothere"]).contains("no such image"));
    assert!(a
        .fails(&["pull", "UPPER/case"])
        .contains("invalid image reference"));
    // Usage errors are 125, as in docker; --help is not an error.
    a.fails_with(125, &["pull", "--no-such-flag", "x"]);
    assert!(a.run(&["--help"]).status.success());
}

#[test]
fn save_load_archives_and_import_with_skopeo_interop() {
    let t = tempfile::tempdir().unwrap();
    let a = Berth::new(&t.path().join("a"));
    let img = "localhost/arch/bb:v1";
    load_archive(&a, t.path(), img, b"x");
    let ia = a.inspect(img);
    for fmt in ["docker-archive", "oci-archive"] {
        let out = t.path().join(format!("{fmt}.tar"));
        a.ok(&["save", "--format", fmt, "-o", out.to_str().unwrap(), img]);
        // berth → berth
        let b = Berth::new(&t.path().join(format!("b-{fmt}")));
        let o = b.ok(&["load", "-i", out.to_str().unwrap()]);
        assert!(o.contains("Loaded image: localhost/arch/bb:v1"), "{o}");
        assert_eq!(b.inspect(img)["Id"], ia["Id"]);
        // berth → skopeo (an independent reader) → berth
        let via = t.path().join(format!("via-{fmt}.tar"));
        let src = if fmt == "docker-archive" {
            format!("docker-archive:{}", out.display())
        } else {
            format!("oci-archive:{}", out.display())
        };
        let dst = if fmt == "docker-archive" {
            format!("docker-archive:{}:localhost/arch/bb:v1", via.display())
        } else {
            format!("oci-archive:{}:localhost/arch/bb:v1", via.display())
        };
        skopeo(&["copy", &src, &dst]);
        let c = Berth::new(&t.path().join(format!("c-{fmt}")));
        c.ok(&["load", "-i", via.to_str().unwrap()]);
        assert_eq!(c.inspect(img)["Id"], ia["Id"], "{fmt} via skopeo");
    }
    // import: a rootfs tarball (gzip) becomes a one-layer image.
    let rootfs = gzip(&busybox_layer());
    let p = t.path().join("rootfs.tar.gz");
    std::fs::write(&p, &rootfs).unwrap();
    let id = a.ok(&["import", p.to_str().unwrap(), "imported:latest"]);
    let ii = a.inspect("imported");
    assert_eq!(ii["Id"], id.trim());
    assert_eq!(ii["RootFS"]["Layers"][0], sha(&busybox_layer()));
    let lower = ii["GraphDriver"]["Data"]["UpperDir"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(std::path::Path::new(&lower).join("bin/busybox").is_file());
    // Garbage in: clear errors, exit 1 (docker's).
    std::fs::write(t.path().join("junk.tar"), b"not a tar").unwrap();
    a.fails(&["load", "-i", t.path().join("junk.tar").to_str().unwrap()]);
}

#[test]
fn concurrent_commands_on_one_root() {
    let reg = Registry::start(None);
    let t = tempfile::tempdir().unwrap();
    let a = Berth::new(&t.path().join("a"));
    let imgs: Vec<String> = (0..3)
        .map(|i| format!("{}/conc/bb:v{i}", reg.addr))
        .collect();
    for (i, img) in imgs.iter().enumerate() {
        load_archive(&a, t.path(), img, format!("c{i}").as_bytes());
        a.ok(&["push", img]);
    }
    // Several pulls of overlapping images, a prune and listings at once on one root.
    let b = Berth::new(&t.path().join("b"));
    let handles: Vec<_> = imgs
        .iter()
        .cycle()
        .take(6)
        .map(|img| {
            b.cmd(&["pull", "-q", img])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .chain((0..3).map(|_| {
            b.cmd(&["image", "prune"])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        }))
        .chain((0..3).map(|_| {
            b.cmd(&["images"])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        }))
        .collect();
    for h in handles {
        let o = h.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    for img in &imgs {
        assert_eq!(b.inspect(img)["Id"], a.inspect(img)["Id"]);
    }
    assert_blobs_verified(&b.root);
    // Layers shared by the three images were unpacked once: 3 shared... plus one own each.
    let layers = std::fs::read_dir(b.root.join("layers")).unwrap().count();
    assert_eq!(
        layers,
        1 + 3 * 2,
        "one base chain, then per image its own two chains"
    );
    assert_eq!(
        std::fs::read_dir(b.root.join("layers-tmp"))
            .unwrap()
            .count(),
        0
    );
}
