//! `berth serve`'s transfer endpoints, driven by Debian's docker CLI (20.10) and curl in
//! the test's own network namespace: `docker cp` both ways, `save`/`load`, `push` to a
//! registry with credentials, `history`, `export`, `search`, and hostile archives that
//! must not write outside the container's rootfs.
//! Run as root: `scripts/in-netns.sh cargo nextest run -p berth --test api_transfer`.

mod common;
use common::api::*;
use common::engine::*;
use common::*;
use std::path::Path;

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// The stat header of a HEAD or GET archive, decoded.
fn path_stat(e: &Engine, s: &Serve, ctr: &str, path: &str) -> Option<serde_json::Value> {
    use base64::Engine as _;
    let o = e
        .in_netns("curl")
        .args(["-s", "-I", "--unix-socket", &s.sock])
        .arg(format!(
            "http://berth/v1.41/containers/{ctr}/archive?path={path}"
        ))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let line = text.lines().find(|l| {
        l.to_ascii_lowercase()
            .starts_with("x-docker-container-path-stat:")
    })?;
    let v = line.split_once(':').unwrap().1.trim();
    let raw = base64::engine::general_purpose::STANDARD.decode(v).unwrap();
    Some(serde_json::from_slice(&raw).unwrap())
}

/// PUT of a tar file into `path` of container `ctr`: (status, body).
fn put_archive(e: &Engine, s: &Serve, ctr: &str, path: &str, tar: &Path) -> (u16, String) {
    let o = e
        .in_netns("curl")
        .args(["-s", "-m", "30", "-X", "PUT", "--unix-socket", &s.sock])
        .args(["-H", "Content-Type: application/x-tar", "--data-binary"])
        .arg(format!("@{}", tar.display()))
        .args(["-w", "\n%{http_code}"])
        .arg(format!(
            "http://berth/v1.41/containers/{ctr}/archive?path={path}&noOverwriteDirNonDir=true"
        ))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", &out));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

#[test]
fn docker_cp_both_ways_through_the_api() {
    if !have_docker() {
        return;
    }
    let e = Engine::new();
    let s = Serve::start(&e, &[]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "cc",
        "--network",
        "none",
        "-v",
        "tvol:/data",
        "-v",
        "tro:/ro:ro",
        IMAGE,
        "sleep",
        "1000",
    ]);
    let host = e.dir.path().join("host");
    std::fs::create_dir_all(host.join("d/sub")).unwrap();
    std::fs::write(host.join("f.txt"), "hello file\n").unwrap();
    std::fs::write(host.join("d/a.txt"), "alpha\n").unwrap();
    std::fs::write(host.join("d/sub/b.txt"), "beta\n").unwrap();
    let h = |p: &str| host.join(p).display().to_string();

    // Into the container: a file into a directory, a directory onto a new name.
    s.docker_ok(&e, &["cp", &h("f.txt"), "cc:/tmp/"]);
    s.docker_ok(&e, &["cp", &h("d"), "cc:/tmp/d2"]);
    assert_eq!(e.ok(&["exec", "cc", "cat", "/tmp/f.txt"]), "hello file\n");
    assert_eq!(e.ok(&["exec", "cc", "cat", "/tmp/d2/a.txt"]), "alpha\n");
    assert_eq!(e.ok(&["exec", "cc", "cat", "/tmp/d2/sub/b.txt"]), "beta\n");
    // Owned by the container's root (docker's rule without -a).
    assert_eq!(
        e.ok(&["exec", "cc", "stat", "-c", "%u:%g", "/tmp/d2/a.txt"]),
        "0:0\n"
    );

    // Out of it: a file, a directory under its own name, a directory's contents.
    s.docker_ok(&e, &["cp", "cc:/tmp/f.txt", &h("got.txt")]);
    assert_eq!(read(&host.join("got.txt")), "hello file\n");
    s.docker_ok(&e, &["cp", "cc:/tmp/d2", &h("out")]);
    assert_eq!(read(&host.join("out/a.txt")), "alpha\n");
    assert_eq!(read(&host.join("out/sub/b.txt")), "beta\n");
    std::fs::create_dir(host.join("into")).unwrap();
    s.docker_ok(&e, &["cp", "cc:/tmp/d2", &h("into")]);
    assert_eq!(read(&host.join("into/d2/sub/b.txt")), "beta\n");
    s.docker_ok(&e, &["cp", "cc:/tmp/d2/.", &h("contents")]);
    assert_eq!(read(&host.join("contents/a.txt")), "alpha\n");
    assert_eq!(read(&host.join("contents/sub/b.txt")), "beta\n");

    // -L follows a symlink through the stat's linkTarget; without, the link itself.
    e.ok(&["exec", "cc", "ln", "-s", "/tmp/f.txt", "/tmp/link"]);
    let st = path_stat(&e, &s, "cc", "/tmp/link").expect("stat header");
    assert_eq!(st["name"], "link");
    assert_eq!(st["linkTarget"], "/tmp/f.txt");
    assert_ne!(st["mode"].as_u64().unwrap() & (1 << 27), 0, "{st}");
    s.docker_ok(&e, &["cp", "-L", "cc:/tmp/link", &h("followed.txt")]);
    assert_eq!(read(&host.join("followed.txt")), "hello file\n");
    s.docker_ok(&e, &["cp", "cc:/tmp/link", &h("asis")]);
    assert_eq!(
        std::fs::read_link(host.join("asis")).unwrap(),
        Path::new("/tmp/f.txt")
    );

    // A volume is copied to and from where it lives, not the rootfs; a read-only one
    // refuses, with dockerd's 403.
    s.docker_ok(&e, &["cp", &h("f.txt"), "cc:/data/v.txt"]);
    assert_eq!(e.ok(&["exec", "cc", "cat", "/data/v.txt"]), "hello file\n");
    s.docker_ok(&e, &["cp", "cc:/data/v.txt", &h("v-back.txt")]);
    assert_eq!(read(&host.join("v-back.txt")), "hello file\n");
    let o = s.docker(&e, &["cp", &h("f.txt"), "cc:/ro/"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("mounted volume is marked read-only"), "{err}");

    // A directory's stat, and a missing path: 404 for HEAD and GET, docker's words.
    let st = path_stat(&e, &s, "cc", "/tmp/d2").expect("stat header");
    assert_eq!(st["name"], "d2");
    assert_ne!(st["mode"].as_u64().unwrap() & (1 << 31), 0, "{st}");
    assert_eq!(
        s.curl(&e, "HEAD", "/v1.41/containers/cc/archive?path=/nope", None)
            .0,
        404
    );
    let (code, body) = s.curl(&e, "GET", "/v1.41/containers/cc/archive?path=/nope", None);
    assert_eq!(code, 404, "{body}");
    assert!(
        body.contains("Could not find the file /nope in container cc"),
        "{body}"
    );
    let o = s.docker(&e, &["cp", "cc:/nope", &h("x")]);
    assert!(!o.status.success());
    assert!(!host.join("x").exists());

    // A stopped container's rootfs is mounted for the copy, and the copy is kept.
    e.ok(&["stop", "-t", "0", "cc"]);
    s.docker_ok(&e, &["cp", &h("f.txt"), "cc:/stopped.txt"]);
    s.docker_ok(&e, &["cp", "cc:/stopped.txt", &h("back.txt")]);
    assert_eq!(read(&host.join("back.txt")), "hello file\n");
    e.ok(&["start", "cc"]);
    assert_eq!(e.ok(&["exec", "cc", "cat", "/stopped.txt"]), "hello file\n");
}

/// A raw tar entry (names the tar crate would refuse to write).
fn raw_entry(
    b: &mut tar::Builder<Vec<u8>>,
    name: &str,
    kind: tar::EntryType,
    link: &str,
    data: &[u8],
) {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_size(data.len() as u64);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

/// Everything under `dir` named `name` (a search for a file that escaped).
fn find(dir: &Path, name: &str) -> Vec<String> {
    let o = std::process::Command::new("find")
        .arg(dir)
        .args(["-name", name])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn hostile_put_archive_never_writes_outside_the_rootfs() {
    let e = Engine::new();
    let s = Serve::start(&e, &[]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "hh",
        "--network",
        "none",
        IMAGE,
        "sleep",
        "1000",
    ]);
    let outside = tempfile::tempdir().unwrap();
    let o = outside.path().display().to_string();

    // `../../escape-dotdot`: refused; no such file anywhere.
    let mut b = tar::Builder::new(Vec::new());
    raw_entry(
        &mut b,
        "../../escape-dotdot",
        tar::EntryType::Regular,
        "",
        b"x",
    );
    let t1 = e.dir.path().join("dotdot.tar");
    std::fs::write(&t1, b.into_inner().unwrap()).unwrap();
    let (code, body) = put_archive(&e, &s, "hh", "/tmp", &t1);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("escape-dotdot"), "{body}");
    assert!(find(e.dir.path(), "escape-dotdot").is_empty());
    assert!(!Path::new("/escape-dotdot").exists() && !Path::new("/tmp/escape-dotdot").exists());

    // A symlink to a host directory, then a file through it: refused, the host dir empty.
    let mut b = tar::Builder::new(Vec::new());
    raw_entry(&mut b, "lnk", tar::EntryType::Symlink, &o, b"");
    raw_entry(&mut b, "lnk/pwned", tar::EntryType::Regular, "", b"x");
    let t2 = e.dir.path().join("symlink.tar");
    std::fs::write(&t2, b.into_inner().unwrap()).unwrap();
    let (code, body) = put_archive(&e, &s, "hh", "/tmp", &t2);
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("not a directory (symlinks are not followed)"),
        "{body}"
    );
    assert!(!outside.path().join("pwned").exists());

    // A destination that is a symlink to the host directory resolves inside the rootfs.
    let rel_up = format!("../../../../../../../..{o}");
    e.ok(&["exec", "hh", "ln", "-s", &rel_up, "/tmp/up"]);
    let mut b = tar::Builder::new(Vec::new());
    raw_entry(&mut b, "landed", tar::EntryType::Regular, "", b"inside\n");
    let t3 = e.dir.path().join("plain.tar");
    std::fs::write(&t3, b.into_inner().unwrap()).unwrap();
    e.ok(&["exec", "hh", "mkdir", "-p", &o]);
    let (code, body) = put_archive(&e, &s, "hh", "/tmp/up", &t3);
    assert_eq!(code, 200, "{body}");
    assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none());
    assert_eq!(
        e.ok(&["exec", "hh", "cat", &format!("{o}/landed")]),
        "inside\n"
    );

    // A compressed archive is refused by name, not misread.
    let gz = e.dir.path().join("a.tar.gz");
    std::fs::write(&gz, gzip(&std::fs::read(&t3).unwrap())).unwrap();
    let (code, body) = put_archive(&e, &s, "hh", "/tmp", &gz);
    assert_eq!(code, 501, "{body}");
    assert!(body.contains("gzip"), "{body}");
}

#[test]
fn docker_save_then_load_round_trips() {
    if !have_docker() {
        return;
    }
    let e = Engine::new();
    let s = Serve::start(&e, &[]);
    let id = e.ok(&["image", "inspect", "--format", "{{.Id}}", IMAGE]);
    let tar = e.dir.path().join("saved.tar");
    s.docker_ok(&e, &["save", "-o", tar.to_str().unwrap(), IMAGE]);
    // A docker-archive: manifest.json naming the tag.
    let mut a = tar::Archive::new(std::fs::File::open(&tar).unwrap());
    let mut manifest = String::new();
    for en in a.entries().unwrap() {
        let mut en = en.unwrap();
        if en.path().unwrap() == Path::new("manifest.json") {
            std::io::Read::read_to_string(&mut en, &mut manifest).unwrap();
        }
    }
    assert!(manifest.contains("busybox:latest"), "{manifest}");

    e.ok(&["rmi", IMAGE]);
    assert!(!e.ok(&["images"]).contains("busybox"));
    let out = s.docker_ok(&e, &["load", "-i", tar.to_str().unwrap()]);
    assert!(out.contains("Loaded image: busybox:latest"), "{out}");
    assert_eq!(
        e.ok(&["image", "inspect", "--format", "{{.Id}}", IMAGE]),
        id
    );
    let out = s.docker_ok(&e, &["load", "-q", "-i", tar.to_str().unwrap()]);
    assert!(out.contains("Loaded image: busybox:latest"), "{out}");

    // One image by its name in the path, as the SDKs ask.
    let (code, body) = s.curl(&e, "GET", "/v1.41/images/busybox:latest/get", None);
    assert_eq!(code, 200);
    assert!(body.contains("manifest.json") && body.contains("busybox:latest"));

    // A missing image is the response's 404, before any archive.
    let (code, body) = s.curl(&e, "GET", "/v1.41/images/get?names=nope:1", None);
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("No such image"), "{body}");
    let o = s.docker(&e, &["save", "-o", "/dev/null", "nope:1"]);
    assert!(!o.status.success());
    // Garbage is not loaded.
    let junk = e.dir.path().join("junk.tar");
    std::fs::write(&junk, vec![7u8; 4096]).unwrap();
    let o = s.docker(&e, &["load", "-i", junk.to_str().unwrap()]);
    assert!(!o.status.success(), "{o:?}");
}

#[test]
fn docker_push_with_credentials_then_berth_pulls_it_back() {
    if !have_docker() {
        return;
    }
    use base64::Engine as _;
    let e = Engine::new();
    let pw = std::process::Command::new("htpasswd")
        .args(["-Bbn", "alice", "s3cret"])
        .output()
        .expect("htpasswd (apache2-utils)");
    let reg = Registry::start_with_in(Some(Auth::Htpasswd(pw.stdout)), Some(&e.netns));
    let s = Serve::start(&e, &[]);
    let remote = format!("{}/shop/pushed:1", reg.addr);
    s.docker_ok(&e, &["tag", IMAGE, &remote]);

    // Without credentials the registry refuses: the error is in the stream, after a 200.
    let (code, body) = s.curl(
        &e,
        "POST",
        &format!("/v1.41/images/{}/shop/pushed/push?tag=1", reg.addr),
        None,
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"errorDetail\""), "{body}");
    let o = s.docker(&e, &["push", &remote]);
    assert!(!o.status.success(), "{o:?}");

    // The docker CLI's credentials (its config.json) reach the registry through
    // X-Registry-Auth.
    let cfg = e.dir.path().join("docker-config");
    std::fs::create_dir_all(&cfg).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    std::fs::write(
        cfg.join("config.json"),
        serde_json::json!({"auths": {reg.addr.clone(): {"auth": auth}}}).to_string(),
    )
    .unwrap();
    let out = s.docker_ok(&e, &["push", &remote]);
    assert!(
        out.contains(&format!(
            "The push refers to repository [{}/shop/pushed]",
            reg.addr
        )),
        "{out}"
    );
    assert!(out.contains("1: digest: sha256:"), "{out}");
    let id = e.ok(&["image", "inspect", "--format", "{{.Id}}", &remote]);
    // No tag (`push --all-tags`): every tag of the repository.
    let second = format!("{}/shop/pushed:2", reg.addr);
    s.docker_ok(&e, &["tag", IMAGE, &second]);
    let out = s.docker_ok(
        &e,
        &["push", "--all-tags", &format!("{}/shop/pushed", reg.addr)],
    );
    assert!(
        out.contains("1: digest: sha256:") && out.contains("2: digest: sha256:"),
        "{out}"
    );
    // docker pull with the CLI's stored credentials (X-Registry-Auth), and docker
    // inspect of the image (docker's GraphDriver shape, which the CLI decodes).
    e.ok(&["rmi", &second]);
    let out = s.docker_ok(&e, &["pull", &second]);
    assert!(out.contains("Downloaded newer image"), "{out}");
    let out = s.docker_ok(
        &e,
        &[
            "image",
            "inspect",
            "--format",
            "{{.Id}} {{.GraphDriver.Name}}",
            &second,
        ],
    );
    assert_eq!(out.trim(), format!("{} overlay", id.trim()));
    e.ok(&["rmi", &second]);

    // Back with berth's own client.
    e.ok(&["rmi", &remote]);
    e.ok(&["login", &reg.addr, "-u", "alice", "-p", "s3cret"]);
    e.ok(&["pull", &remote]);
    assert_eq!(
        e.ok(&["image", "inspect", "--format", "{{.Id}}", &remote]),
        id
    );

    // A tag that is not here: docker's 404 before any stream.
    let (code, body) = s.curl(
        &e,
        "POST",
        &format!("/v1.41/images/{}/shop/none/push?tag=9", reg.addr),
        None,
    );
    assert_eq!(code, 404, "{body}");
    assert!(
        body.contains("An image does not exist locally with the tag"),
        "{body}"
    );
}

#[test]
fn docker_history_matches_berth_history() {
    if !have_docker() {
        return;
    }
    let e = Engine::new();
    let s = Serve::start(&e, &[]);
    // A base with a history entry for its layer (`import`), then two commits on it.
    let layer = e.dir.path().join("rootfs.tar");
    std::fs::write(&layer, full_busybox_layer()).unwrap();
    e.ok(&[
        "import",
        "-m",
        "the base",
        layer.to_str().unwrap(),
        "hbase:1",
    ]);
    e.ok(&[
        "run",
        "--name",
        "c0",
        "--network",
        "none",
        "hbase:1",
        "/bin/sh",
        "-c",
        "echo one > /one",
    ]);
    e.ok(&["commit", "-m", "first step", "c0", "hist:1"]);
    e.ok(&[
        "run",
        "--name",
        "c1",
        "--network",
        "none",
        "hist:1",
        "/bin/sh",
        "-c",
        "head -c 3000 /bin/busybox > /two",
    ]);
    e.ok(&["commit", "c1", "hist:2"]);

    let f = "{{.ID}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}";
    let docker = s.docker_ok(&e, &["history", "--format", f, "hist:2"]);
    let berth = e.ok(&["history", "--format", f, "hist:2"]);
    assert_eq!(docker, berth);
    let lines: Vec<&str> = docker.lines().collect();
    assert_eq!(lines.len(), 3, "{docker}");
    assert!(
        lines[0].ends_with("|/bin/sh -c head -c 3000 /bin/busybox > /two|3kB|"),
        "{docker}"
    );
    assert_eq!(
        lines[1], "<missing>|/bin/sh -c echo one > /one|4B|first step",
        "{docker}"
    );
    assert!(
        lines[2].starts_with("<missing>|berth import|") && lines[2].ends_with("|the base"),
        "{docker}"
    );
    for args in [
        vec!["history", "-q", "--no-trunc", "hist:2"],
        vec![
            "history",
            "--no-trunc",
            "--format",
            "{{.ID}} {{.CreatedBy}}",
            "hist:2",
        ],
        vec![
            "history",
            "-H=false",
            "--format",
            "{{.Size}} {{.CreatedAt}}",
            "hist:2",
        ],
    ] {
        assert_eq!(s.docker_ok(&e, &args), e.ok(&args), "{args:?}");
    }
    // The default table: the same header and columns.
    let d = s.docker_ok(&e, &["history", "hist:2"]);
    let b = e.ok(&["history", "hist:2"]);
    assert_eq!(d.lines().next(), b.lines().next(), "{d}\n{b}");
    assert!(d.starts_with("IMAGE"), "{d}");

    let (code, body) = s.curl(&e, "GET", "/v1.41/images/hist:2/history", None);
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v[0]["Tags"], serde_json::json!(["hist:2"]));
    assert!(v[0]["Id"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(v[1]["Id"], "<missing>");
    assert_eq!(v[1]["Tags"], serde_json::Value::Null);
    assert_eq!(v[1]["Comment"], "first step");
    assert_eq!(
        s.curl(&e, "GET", "/v1.41/images/nope:1/history", None).0,
        404
    );
    // An image without history in its config: a row for its one layer.
    let bb = s.docker_ok(
        &e,
        &["history", "--format", "{{.CreatedBy}}|{{.Size}}", IMAGE],
    );
    assert_eq!(
        bb,
        e.ok(&["history", "--format", "{{.CreatedBy}}|{{.Size}}", IMAGE])
    );
    assert_eq!(bb.lines().count(), 1, "{bb}");
    assert!(bb.starts_with('|') && bb.ends_with("MB\n"), "{bb}");
}

#[test]
fn docker_export_gives_the_containers_rootfs() {
    if !have_docker() {
        return;
    }
    let e = Engine::new();
    let s = Serve::start(&e, &[]);
    e.ok(&[
        "run",
        "--name",
        "xx",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "echo marked > /marker",
    ]);
    let out = e.dir.path().join("x.tar");
    s.docker_ok(&e, &["export", "-o", out.to_str().unwrap(), "xx"]);
    let mut a = tar::Archive::new(std::fs::File::open(&out).unwrap());
    let (mut marker, mut busybox) = (None, false);
    for en in a.entries().unwrap() {
        let mut en = en.unwrap();
        let p = en.path().unwrap().to_path_buf();
        if p == Path::new("marker") {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut en, &mut s).unwrap();
            marker = Some(s);
        }
        busybox |= p == Path::new("bin/busybox");
    }
    assert_eq!(marker.as_deref(), Some("marked\n"));
    assert!(busybox);
    assert_eq!(
        s.curl(&e, "GET", "/v1.41/containers/nope/export", None).0,
        404
    );
}

#[test]
fn docker_search_says_why_it_cannot() {
    if !have_docker() {
        return;
    }
    let e = Engine::new();
    let s = Serve::start(&e, &[]);
    let o = s.docker(&e, &["search", "busybox"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(err.contains("berth does not search registries"), "{err}");
    let (code, body) = s.curl(&e, "GET", "/v1.41/images/search?term=busybox", None);
    assert_eq!(code, 500, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["message"].as_str().unwrap().contains("works offline"),
        "{body}"
    );
}
