//! Issue 13: `berth build`, black-box. Each test has a storage root of its own with a
//! busybox image (the harness removes its containers, mounts, cgroups and network
//! namespace whatever happens), builds Dockerfiles and checks the images by running them.
//! Run as root: `scripts/in-netns.sh cargo nextest run -p berth --test build`.

mod common;
use common::engine::*;
use std::path::Path;
use std::process::Stdio;

/// A context directory with these files (parents made).
fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (p, data) in files {
        let f = d.path().join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, data).unwrap();
    }
    d
}

/// `berth build -q` of `dir` with `args` (RUN without network unless an arg says); the
/// image ID.
fn build(e: &Engine, dir: &Path, args: &[&str]) -> String {
    let mut a = vec!["build", "-q", "--network", "none"];
    a.extend_from_slice(args);
    a.push(dir.to_str().unwrap());
    let id = e.ok(&a).trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    id
}

/// `berth build` (with progress) of `dir`: (status ok, stderr).
fn build_out(e: &Engine, dir: &Path, args: &[&str]) -> (bool, String) {
    let mut a = vec!["build", "--progress", "plain", "--network", "none"];
    a.extend_from_slice(args);
    a.push(dir.to_str().unwrap());
    let o = e.run(&a);
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn image_config(e: &Engine, image: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&e.ok(&["image", "inspect", image])).unwrap();
    v[0]["Config"].clone()
}

/// What a failed build must leave as it found: images, containers, mounts and the
/// store's temp directory.
fn store_state(e: &Engine) -> (String, String, Vec<String>, Vec<String>) {
    let images = e.ok(&["images", "-a", "--no-trunc"]);
    let ps = e.ok(&["ps", "-aq"]);
    let root = std::fs::canonicalize(e.root()).unwrap();
    let mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m.starts_with(&*root.to_string_lossy()))
        // The engine's run-state tmpfs, mounted once by the first container of a root.
        .filter(|m| !m.ends_with("/engine/run"))
        .collect();
    let tmp: Vec<String> = std::fs::read_dir(e.root().join("tmp"))
        .map(|d| {
            d.flatten()
                .map(|x| x.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    (images, ps, mounts, tmp)
}

#[test]
fn instructions_each_checked_by_running_the_image() {
    let e = Eng::new();
    let df = r#"# escape=\
ARG BASE=busybox
FROM $BASE
ARG WHO=world
ENV GREETING=hello \
    OTHER=x
LABEL org.example.a="one" b=two
WORKDIR /app
COPY --chown=app:app --chmod=0640 data.txt ./
COPY dir/ /copied/
COPY *.cfg /cfgs/
COPY <<EOF /app/inline.txt
inline $GREETING
EOF
RUN echo "$GREETING $WHO" > /app/run.txt && id -u > /app/uid.txt
RUN <<EOT
set -e
echo heredoc > /app/heredoc.txt
EOT
USER app
RUN test "$(id -un)" = app
USER root
SHELL ["/bin/sh", "-ec"]
RUN echo shell-form-through-SHELL > /app/shell.txt
EXPOSE 8080/tcp 53/udp
VOLUME /data
HEALTHCHECK --interval=5s --retries=2 CMD test -f /app/run.txt
STOPSIGNAL SIGUSR1
ONBUILD RUN echo child
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /app/run.txt /app/inline.txt /app/heredoc.txt /app/shell.txt /copied/sub/f /cfgs/a.cfg /cfgs/b.cfg"]
"#;
    let c = context(&[
        ("Dockerfile", df),
        ("data.txt", "data\n"),
        ("dir/sub/f", "in dir\n"),
        ("a.cfg", "A\n"),
        ("b.cfg", "B\n"),
        ("c.txt", "not matched\n"),
    ]);
    build(&e, c.path(), &["-t", "all:1", "--build-arg", "WHO=berth"]);
    let out = e.ok(&["run", "--rm", "all:1"]);
    assert_eq!(
        out,
        "hello berth\ninline hello\nheredoc\nshell-form-through-SHELL\nin dir\nA\nB\n"
    );
    // ownership and mode from --chown/--chmod; WORKDIR; USER as the RUN saw it.
    let look = e.ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "",
        "all:1",
        "sh",
        "-c",
        "stat -c '%u:%g %a' /app/data.txt; pwd; cat /app/uid.txt; ls /cfgs; ls /",
    ]);
    let lines: Vec<&str> = look.lines().collect();
    assert_eq!(
        &lines[..5],
        &["1000:1000 640", "/app", "0", "a.cfg", "b.cfg"],
        "{look}"
    );
    assert!(!look.contains("c.txt"), "{look}");
    let cfg = image_config(&e, "all:1");
    assert_eq!(cfg["Env"][1], "GREETING=hello", "{cfg}");
    assert_eq!(cfg["Env"][2], "OTHER=x", "{cfg}");
    assert_eq!(cfg["Labels"]["org.example.a"], "one");
    assert_eq!(cfg["Labels"]["b"], "two");
    assert_eq!(cfg["WorkingDir"], "/app");
    assert_eq!(cfg["User"], "root");
    assert!(
        cfg["ExposedPorts"]["8080/tcp"].is_object() && cfg["ExposedPorts"]["53/udp"].is_object()
    );
    assert!(cfg["Volumes"]["/data"].is_object());
    assert_eq!(cfg["Healthcheck"]["Test"][0], "CMD-SHELL");
    assert_eq!(cfg["Healthcheck"]["Interval"], 5_000_000_000u64);
    assert_eq!(cfg["Healthcheck"]["Retries"], 2);
    assert_eq!(cfg["StopSignal"], "SIGUSR1");
    assert_eq!(cfg["OnBuild"][0], "RUN echo child");
    assert_eq!(cfg["Shell"][1], "-ec");
    assert_eq!(cfg["Entrypoint"][0], "/bin/sh");
    // History: an entry per instruction, metadata as empty layers, as BuildKit.
    let hist = e.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "all:1",
    ]);
    assert!(
        hist.contains("RUN |1 WHO=berth /bin/sh -c echo \"$GREETING $WHO\""),
        "{hist}"
    );
    assert!(hist.contains("ENV GREETING=hello OTHER=x"), "{hist}");
    assert!(hist.contains("COPY dir/ /copied/ # buildkit"), "{hist}");
    // ONBUILD runs in a child build.
    let child = context(&[("Dockerfile", "FROM all:1\nRUN test ! -e /child\n")]);
    let (ok, err) = build_out(&e, child.path(), &["-t", "child:1"]);
    assert!(ok, "{err}");
    assert!(
        err.contains("ONBUILD RUN echo child") && err.contains(" child\n"),
        "{err}"
    );
    assert!(image_config(&e, "child:1")["OnBuild"].is_null());
}

#[test]
fn user_from_a_name_runs_as_that_user() {
    let e = Eng::new();
    let c = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN mkdir -m 1777 /w\nUSER app\nRUN id -u > /w/uid\nUSER root\nRUN cp /w/uid /uid\nCMD [\"cat\", \"/uid\"]\n",
    )]);
    build(&e, c.path(), &["-t", "u:1"]);
    assert_eq!(e.ok(&["run", "--rm", "u:1"]), "1000\n");
}

#[test]
fn multi_stage_with_target_and_copy_from() {
    let e = Eng::new();
    let df = "FROM busybox AS build\nRUN mkdir /out && echo built > /out/artifact\n\
              FROM busybox AS unused\nRUN exit 7\n\
              FROM scratch AS final\nCOPY --from=build /out/artifact /artifact\n\
              COPY --from=busybox:latest /bin/busybox /bin/busybox\n\
              CMD [\"/bin/busybox\", \"cat\", \"/artifact\"]\n\
              FROM busybox AS debug\nCOPY --from=0 /out /out\nCMD [\"cat\", \"/out/artifact\"]\n";
    let c = context(&[("Dockerfile", df)]);
    // --target final: the failing stage is not needed, so it is not built.
    let (ok, err) = build_out(&e, c.path(), &["--target", "final", "-t", "final:1"]);
    assert!(ok, "{err}");
    assert!(!err.contains("exit 7"), "the unused stage ran: {err}");
    assert_eq!(e.ok(&["run", "--rm", "final:1"]), "built\n");
    // A scratch image has only what was copied: two layers.
    let v: serde_json::Value =
        serde_json::from_str(&e.ok(&["image", "inspect", "final:1"])).unwrap();
    assert_eq!(v[0]["RootFS"]["Layers"].as_array().unwrap().len(), 2, "{v}");
    build(&e, c.path(), &["--target", "debug", "-t", "debug:1"]);
    assert_eq!(e.ok(&["run", "--rm", "debug:1"]), "built\n");
    // The last stage by default; then the unused stage's failure is not reached either.
    let (ok, err) = build_out(&e, c.path(), &["--target", "nope"]);
    assert!(!ok);
    assert!(
        err.contains("target stage \"nope\" could not be found"),
        "{err}"
    );
}

#[test]
fn cache_reuses_unchanged_steps_and_rebuilds_from_a_changed_copy() {
    let e = Eng::new();
    let df = "FROM busybox\nRUN echo one > /one\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\nCMD [\"cat\", \"/b.txt\"]\n";
    let c = context(&[("Dockerfile", df), ("a.txt", "v1\n")]);
    let (ok, first) = build_out(&e, c.path(), &["-t", "c:1"]);
    assert!(ok, "{first}");
    assert!(!first.contains("CACHED"), "{first}");
    let (ok, again) = build_out(&e, c.path(), &["-t", "c:1"]);
    assert!(ok, "{again}");
    assert_eq!(again.matches("CACHED").count(), 3, "{again}");
    let id1 = build(&e, c.path(), &[]);
    // A changed file: the RUN before it is cached, the COPY and what follows are not.
    std::fs::write(c.path().join("a.txt"), "v2\n").unwrap();
    let (ok, changed) = build_out(&e, c.path(), &["-t", "c:2"]);
    assert!(ok, "{changed}");
    assert_eq!(changed.matches("CACHED").count(), 1, "{changed}");
    let one = changed.find("RUN echo one").unwrap();
    let cached = changed.find("CACHED").unwrap();
    let copy = changed.find("COPY a.txt").unwrap();
    assert!(one < cached && cached < copy, "{changed}");
    assert_eq!(e.ok(&["run", "--rm", "c:2"]), "v2\n");
    // --no-cache runs everything, and gives the same image (reproducible).
    let (ok, nc) = build_out(&e, c.path(), &["--no-cache", "-t", "c:3"]);
    assert!(ok, "{nc}");
    assert!(!nc.contains("CACHED"), "{nc}");
    let id2 = e.inspect("c:2")["Id"].clone();
    let id3 = e.inspect("c:3")["Id"].clone();
    assert_eq!(id2, id3);
    assert_ne!(id1, id2.as_str().unwrap());
    // The cache survives image removal and GC: it keeps its own layers.
    e.ok(&["rmi", "c:1", "c:2", "c:3"]);
    let (ok, after) = build_out(&e, c.path(), &["-t", "c:4"]);
    assert!(ok, "{after}");
    assert_eq!(after.matches("CACHED").count(), 3, "{after}");
    assert_eq!(e.ok(&["run", "--rm", "c:4"]), "v2\n");
    // system df counts the cache; builder prune frees it, and the next build runs all.
    let df = e.ok(&["system", "df", "--format", "{{.Type}} {{.TotalCount}}"]);
    assert!(df.contains("Build Cache 5"), "{df}");
    let pruned = e.ok(&["builder", "prune", "-f"]);
    assert!(pruned.starts_with("Total reclaimed space: "), "{pruned}");
    let df = e.ok(&["system", "df", "--format", "{{.Type}} {{.TotalCount}}"]);
    assert!(df.contains("Build Cache 0"), "{df}");
    let (ok, fresh) = build_out(&e, c.path(), &["-t", "c:4"]);
    assert!(ok && !fresh.contains("CACHED"), "{fresh}");
    assert_eq!(e.ok(&["run", "--rm", "c:4"]), "v2\n");
}

/// The inode of `rel` in the top layer (GraphDriver's UpperDir) of `image`.
fn top_layer_ino(e: &Engine, image: &str, rel: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let up = e.inspect(image)["GraphDriver"]["Data"]["UpperDir"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::symlink_metadata(Path::new(&up).join(rel))
        .ok()
        .map(|m| m.ino())
}

/// A COPY rebuilt after some of its files changed shares the unchanged ones with the
/// layer its earlier build made (one inode in both; none made anew), and the image is the
/// one a fresh store builds (the same digest). A changed file, a changed mode, a file
/// become a directory are not shared; a removed file is gone; a --no-cache rebuild shares
/// every file, the directory it copies into included though it is only in a lower layer.
#[test]
fn changed_copy_shares_unchanged_files_with_the_earlier_layer() {
    use std::os::unix::fs::PermissionsExt;
    let e = Eng::new();
    let df = "FROM busybox\nRUN mkdir -p /app/files /app/more && echo base > /app/files/base\nCOPY more/ /app/more/\nCOPY files/ /app/files/\nCMD [\"sh\", \"-c\", \"cd /app/files && for f in *; do [ -f $f ] && echo $f $(stat -c %a $f) $(cat $f); done\"]\n";
    let mut files = vec![
        ("Dockerfile".to_string(), df.to_string()),
        ("more/m1".to_string(), "m1\n".to_string()),
        ("more/m2".to_string(), "m2\n".to_string()),
    ];
    for i in 0..40 {
        files.push((format!("files/f{i:02}"), format!("file {i}\n")));
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let c = context(&refs);
    let f = |n: &str| c.path().join("files").join(n);
    build(&e, c.path(), &["-t", "s:1"]);
    let ino1 = |n: &str| top_layer_ino(&e, "s:1", &format!("app/files/{n}"));
    let before: Vec<Option<u64>> = (0..40).map(|i| ino1(&format!("f{i:02}"))).collect();
    assert!(before.iter().all(Option::is_some));

    std::fs::write(f("f00"), "changed\n").unwrap();
    std::fs::set_permissions(f("f01"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::remove_file(f("f02")).unwrap();
    std::fs::remove_file(f("f03")).unwrap();
    std::fs::create_dir(f("f03")).unwrap();
    std::fs::write(f("f03/inner"), "inner\n").unwrap();
    std::fs::write(f("new"), "new\n").unwrap();
    let (ok, out) = build_out(&e, c.path(), &["-t", "s:2"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("36 unchanged files shared with the earlier build of this step"),
        "{out}"
    );
    let ino2 = |n: &str| top_layer_ino(&e, "s:2", &format!("app/files/{n}"));
    for (i, ino) in before.iter().enumerate().skip(4) {
        let n = format!("f{i:02}");
        assert_eq!(ino2(&n), *ino, "{n} was not shared");
    }
    for n in ["f00", "f01"] {
        assert!(ino2(n).is_some() && ino2(n) != ino1(n), "{n} was shared");
    }
    assert_eq!(ino2("f02"), None);
    let ran = e.ok(&["run", "--rm", "--network", "none", "s:2"]);
    assert!(ran.contains("f00 644 changed\n"), "{ran}");
    assert!(ran.contains("f01 600 file 1\n"), "{ran}");
    assert!(ran.contains("f05 644 file 5\n"), "{ran}");
    assert!(
        ran.contains("base 644 base\n") && ran.contains("new 644 new\n"),
        "{ran}"
    );
    assert!(!ran.contains("f02") && !ran.contains("f03 "), "{ran}");
    assert_eq!(
        e.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "s:2",
            "cat",
            "/app/files/f03/inner"
        ]),
        "inner\n"
    );

    // The same image as a store that never built it makes.
    let fresh = Eng::new();
    let id = e.inspect("s:2")["Id"].clone();
    assert_eq!(build(&fresh, c.path(), &[]), id.as_str().unwrap());

    // --no-cache: every file shared, the same image again; /app/more, only in a lower
    // layer, is copied up for its two shared files as a copy into it would.
    let (ok, out) = build_out(&e, c.path(), &["--no-cache", "-t", "s:3"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("2 unchanged files shared with the earlier build of this step"),
        "{out}"
    );
    assert!(
        out.contains("40 unchanged files shared with the earlier build of this step"),
        "{out}"
    );
    assert_eq!(e.inspect("s:3")["Id"], id);
    assert_eq!(
        e.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "s:3",
            "cat",
            "/app/more/m1",
            "/app/more/m2"
        ]),
        "m1\nm2\n"
    );
    assert_eq!(
        top_layer_ino(&e, "s:3", "app/files/f00"),
        top_layer_ino(&e, "s:2", "app/files/f00")
    );
}

/// `COPY --link` makes its layer on an empty root, as BuildKit: the layer holds only what
/// it copies (and the directories on the way), and a changed step before it leaves it
/// cached, where a plain COPY is built again.
#[test]
fn copy_link_layer_is_independent_of_what_comes_before() {
    let e = Eng::new();
    let df = |n: u32| {
        format!("FROM busybox\nRUN echo {n} > /base\nCOPY --link files/ /app/files/\nCOPY --link one.txt /app/\nCMD [\"sh\", \"-c\", \"cat /base /app/files/a /app/one.txt; stat -c %a /app\"]\n")
    };
    let c = context(&[
        ("Dockerfile", &df(1)),
        ("files/a", "a\n"),
        ("one.txt", "one\n"),
    ]);
    let (ok, out) = build_out(&e, c.path(), &["-t", "k:1"]);
    assert!(ok && !out.contains("CACHED"), "{out}");
    assert_eq!(
        e.ok(&["run", "--rm", "--network", "none", "k:1"]),
        "1\na\none\n755\n"
    );
    // The top layer: one.txt and the directory it went into, nothing of the base.
    let up = e.inspect("k:1")["GraphDriver"]["Data"]["UpperDir"]
        .as_str()
        .unwrap()
        .to_string();
    let mut top: Vec<String> = walk(Path::new(&up));
    top.sort();
    assert_eq!(top, ["app", "app/one.txt"]);
    // A changed RUN before them: both --link steps are still cached.
    std::fs::write(c.path().join("Dockerfile"), df(2)).unwrap();
    let (ok, out) = build_out(&e, c.path(), &["-t", "k:2"]);
    assert!(ok, "{out}");
    assert_eq!(out.matches("CACHED").count(), 2, "{out}");
    assert_eq!(
        e.ok(&["run", "--rm", "--network", "none", "k:2"]),
        "2\na\none\n755\n"
    );
    // Without --link the same change builds the COPY again.
    std::fs::write(c.path().join("Dockerfile"), df(3).replace("--link ", "")).unwrap();
    build(&e, c.path(), &["-t", "k:3"]);
    std::fs::write(c.path().join("Dockerfile"), df(4).replace("--link ", "")).unwrap();
    let (ok, out) = build_out(&e, c.path(), &["-t", "k:4"]);
    assert!(ok && !out.contains("CACHED"), "{out}");
}

/// Paths below `root`, relative.
fn walk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            if p.symlink_metadata().unwrap().is_dir() {
                todo.push(p);
            }
        }
    }
    out
}

/// File capabilities set by a RUN (`setcap`) stay in the layer, as docker's
/// security.capability PAX record: in the layer directory the image runs from and in the
/// saved layer tar.
#[test]
fn run_setcap_keeps_file_capabilities_in_the_layer() {
    let e = Eng::new();
    let c = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=bind,source=tools,target=/tools echo x > /capped && /tools/ld.so --library-path /tools /tools/setcap cap_net_raw+ep /capped\n",
    )]);
    let tools = c.path().join("tools");
    std::fs::create_dir(&tools).unwrap();
    for (from, to) in [
        ("/usr/sbin/setcap", "setcap"),
        ("/lib64/ld-linux-x86-64.so.2", "ld.so"),
        ("/lib/x86_64-linux-gnu/libc.so.6", "libc.so.6"),
        ("/lib/x86_64-linux-gnu/libcap.so.2", "libcap.so.2"),
    ] {
        std::fs::copy(from, tools.join(to)).unwrap();
    }
    let (ok, out) = build_out(&e, c.path(), &["-t", "cap:1"]);
    assert!(ok, "{out}");
    let up = e.inspect("cap:1")["GraphDriver"]["Data"]["UpperDir"]
        .as_str()
        .unwrap()
        .to_string();
    let o = std::process::Command::new("getcap")
        .arg(Path::new(&up).join("capped"))
        .output()
        .unwrap();
    let got = String::from_utf8_lossy(&o.stdout);
    assert!(got.contains("cap_net_raw=ep"), "{got}");
    let tar = tempfile::NamedTempFile::new().unwrap();
    e.ok(&["save", "-o", tar.path().to_str().unwrap(), "cap:1"]);
    let bytes = std::fs::read(tar.path()).unwrap();
    let needle = b"SCHILY.xattr.security.capability";
    assert!(bytes.windows(needle.len()).any(|w| w == needle));
}

/// `--progress tty`: BuildKit's view, redrawn in place, when standard error is a
/// terminal (`script` gives the build one); refused when it is not.
#[test]
fn progress_tty_redraws_on_a_terminal_and_needs_one() {
    let e = Eng::new();
    let c = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN echo hello-from-run\nCMD [\"true\"]\n",
    )]);
    let dir = c.path().to_str().unwrap();
    let o = e.run(&["build", "--progress", "tty", "--network", "none", dir]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--progress tty: standard error is not a terminal"),
        "{err}"
    );
    let inner = e.cmd(&[
        "build",
        "--progress",
        "tty",
        "--network",
        "none",
        "-t",
        "tty:1",
        dir,
    ]);
    let quote = |s: &std::ffi::OsStr| format!("'{}'", s.to_string_lossy().replace('\'', "'\\''"));
    let line: Vec<String> = std::iter::once(quote(inner.get_program()))
        .chain(inner.get_args().map(quote))
        .collect();
    let mut sc = std::process::Command::new("script");
    sc.args(["-qefc", &line.join(" "), "/dev/null"]);
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => sc.env(k, v),
            None => sc.env_remove(k),
        };
    }
    let o = sc.stdin(Stdio::null()).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("[+] Building "), "{out}");
    assert!(out.contains(" FINISHED"), "{out}");
    assert!(
        out.contains("\x1b[2K => [2/3] RUN echo hello-from-run"),
        "{out}"
    );
    assert!(out.contains("\x1b["), "no redraw: {out}");
    assert!(
        !out.contains("#2 [2/3]"),
        "plain lines on a terminal: {out}"
    );
    e.ok(&["image", "inspect", "tty:1"]);
}

/// The earlier layer is read without following its symlinks: a context whose `sub` was a
/// symlink to the host's /etc, then a directory holding a copy of /etc/passwd, never gets
/// the host's file linked into its layer.
#[test]
fn shared_copy_files_never_come_through_an_earlier_layers_symlink() {
    use std::os::unix::fs::MetadataExt;
    let e = Eng::new();
    let c = context(&[
        ("Dockerfile", "FROM busybox\nCOPY files/ /app/\n"),
        ("files/a", "a\n"),
    ]);
    std::os::unix::fs::symlink("/etc", c.path().join("files/sub")).unwrap();
    build(&e, c.path(), &["-t", "l:1"]);
    std::fs::remove_file(c.path().join("files/sub")).unwrap();
    std::fs::create_dir(c.path().join("files/sub")).unwrap();
    std::fs::copy("/etc/passwd", c.path().join("files/sub/passwd")).unwrap();
    let (ok, out) = build_out(&e, c.path(), &["-t", "l:2"]);
    assert!(ok, "{out}");
    let host = std::fs::metadata("/etc/passwd").unwrap().ino();
    assert_ne!(top_layer_ino(&e, "l:2", "app/sub/passwd"), Some(host));
    assert!(top_layer_ino(&e, "l:2", "app/sub/passwd").is_some());
    assert!(
        out.contains("1 unchanged files shared with the earlier build of this step"),
        "{out}"
    );
}

#[test]
fn dockerignore_excludes_with_exceptions() {
    let e = Eng::new();
    let c = context(&[
        (
            "Dockerfile",
            "FROM busybox\nCOPY . /ctx/\nCMD [\"find\", \"/ctx\", \"-type\", \"f\"]\n",
        ),
        (".dockerignore", "secret*\nlogs\n*.tmp\n!keep.tmp\n"),
        ("secret.key", "x"),
        ("logs/a.log", "x"),
        ("junk.tmp", "x"),
        ("keep.tmp", "x"),
        ("src/main.c", "x"),
    ]);
    build(&e, c.path(), &["-t", "ign:1"]);
    let mut files: Vec<String> = e
        .ok(&["run", "--rm", "ign:1"])
        .lines()
        .map(str::to_string)
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "/ctx/.dockerignore",
            "/ctx/Dockerfile",
            "/ctx/keep.tmp",
            "/ctx/src/main.c"
        ]
    );
    // A COPY of an ignored file fails as a missing one.
    std::fs::write(
        c.path().join("Dockerfile"),
        "FROM busybox\nCOPY secret.key /\n",
    )
    .unwrap();
    let (ok, err) = build_out(&e, c.path(), &[]);
    assert!(!ok);
    assert!(
        err.contains("Dockerfile:2") && err.contains("excluded by .dockerignore"),
        "{err}"
    );
}

#[test]
fn build_args_defaults_overrides_and_global_scope() {
    let e = Eng::new();
    let df = "ARG TAG=latest\nFROM busybox:${TAG}\nARG TAG\nARG NAME=default\nARG UNSET\n\
              RUN echo \"$TAG $NAME [$UNSET]\" > /args\nCMD [\"cat\", \"/args\"]\n";
    let c = context(&[("Dockerfile", df)]);
    build(&e, c.path(), &["-t", "a:1"]);
    assert_eq!(e.ok(&["run", "--rm", "a:1"]), "latest default []\n");
    build(
        &e,
        c.path(),
        &[
            "-t",
            "a:2",
            "--build-arg",
            "NAME=given",
            "--build-arg",
            "UNSET=u",
        ],
    );
    assert_eq!(e.ok(&["run", "--rm", "a:2"]), "latest given [u]\n");
    // ARG values are not in the image's environment.
    let env = e.ok(&["run", "--rm", "a:2", "env"]);
    assert!(!env.lines().any(|l| l.starts_with("NAME=")), "{env}");
    // An unused build arg is a warning, as docker's.
    let (ok, err) = build_out(&e, c.path(), &["--build-arg", "NOPE=1"]);
    assert!(ok, "{err}");
    assert!(
        err.contains("[Warning] One or more build-args [\"NOPE\"] were not consumed"),
        "{err}"
    );
}

#[test]
fn two_builds_give_the_same_digest() {
    let e = Eng::new();
    let df = "FROM busybox\nCOPY . /src\nRUN echo fixed > /built && touch /stamp && mkdir -p /made/dir\nCMD [\"ls\", \"/src\"]\n";
    let c = context(&[("Dockerfile", df), ("f", "x\n")]);
    let a = build(&e, c.path(), &["--no-cache"]);
    // Another storage root, the same context with other mtimes: the same digest.
    let e2 = Eng::new();
    std::process::Command::new("touch")
        .args(["-d", "2001-01-01", c.path().join("f").to_str().unwrap()])
        .status()
        .unwrap();
    let b = build(&e2, c.path(), &["--no-cache"]);
    assert_eq!(a, b);
    let cfg: serde_json::Value = serde_json::from_str(&e.ok(&["image", "inspect", &a])).unwrap();
    assert!(
        cfg[0]["Created"]
            .as_str()
            .unwrap()
            .starts_with("1970-01-01T00:00:00"),
        "{cfg}"
    );
    // SOURCE_DATE_EPOCH moves the timestamps; --reproducible=false uses the clock.
    let d = build(
        &e,
        c.path(),
        &["--build-arg", "SOURCE_DATE_EPOCH=1000000000"],
    );
    assert_ne!(d, a);
    let cfg: serde_json::Value = serde_json::from_str(&e.ok(&["image", "inspect", &d])).unwrap();
    assert!(
        cfg[0]["Created"]
            .as_str()
            .unwrap()
            .starts_with("2001-09-09T01:46:40"),
        "{cfg}"
    );
    let x = build(&e, c.path(), &["--reproducible=false"]);
    let y = build(&e, c.path(), &["--reproducible=false", "--no-cache"]);
    assert_ne!(x, y);
}

#[test]
fn context_symlinks_never_lead_out_of_the_context() {
    let e = Eng::new();
    let c = context(&[("Dockerfile", "FROM busybox\nCOPY escape/passwd /stolen\n")]);
    std::os::unix::fs::symlink("/etc", c.path().join("escape")).unwrap();
    let before = store_state(&e);
    let (ok, err) = build_out(&e, c.path(), &[]);
    assert!(!ok, "a symlink led out of the context: {err}");
    assert!(
        err.contains("Dockerfile:2") && err.contains("not found"),
        "{err}"
    );
    // A link to an absolute path resolves inside the context: its own file there.
    std::fs::create_dir_all(c.path().join("etc")).unwrap();
    std::fs::write(c.path().join("etc/passwd"), "the context's own\n").unwrap();
    std::fs::write(
        c.path().join("Dockerfile"),
        "FROM busybox\nCOPY escape/passwd /got\nCOPY ../../../../etc/passwd /got2\nCMD [\"cat\", \"/got\", \"/got2\"]\n",
    )
    .unwrap();
    build(&e, c.path(), &["-t", "esc:1"]);
    assert_eq!(
        e.ok(&["run", "--rm", "esc:1"]),
        "the context's own\nthe context's own\n"
    );
    let _ = before;
}

fn tar_with(entries: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    // (name, symlink target, data); names written raw so hostile ones survive.
    let mut out = Vec::new();
    for (name, link, data) in entries {
        let mut h = tar::Header::new_gnu();
        {
            let raw = h.as_old_mut();
            raw.name[..name.len()].copy_from_slice(name.as_bytes());
        }
        match link {
            Some(t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_link_name(t).unwrap();
                h.set_size(0);
            }
            None => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(data.len() as u64);
            }
        }
        h.set_mode(0o644);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        out.extend(std::iter::repeat_n(0u8, pad));
    }
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}

/// `data` through `prog -c` (bzip2, xz).
fn compressed(prog: &str, data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut c = std::process::Command::new(prog)
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(data).unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(o.status.success(), "{prog}");
    o.stdout
}

#[test]
fn add_unpacks_bzip2_and_xz_tars_and_copies_other_compressed_files() {
    let e = Eng::new();
    let good = tar_with(&[("dir/inner.txt", None, b"inside\n")]);
    let c = context(&[(
        "Dockerfile",
        "FROM busybox\nADD pkg.tar.bz2 /bz/\nADD pkg.tar.xz /xz/\nADD notes.xz /notes/\nCMD [\"sh\", \"-c\", \"cat /bz/dir/inner.txt /xz/dir/inner.txt; ls /notes\"]\n",
    )]);
    std::fs::write(c.path().join("pkg.tar.bz2"), compressed("bzip2", &good)).unwrap();
    std::fs::write(c.path().join("pkg.tar.xz"), compressed("xz", &good)).unwrap();
    std::fs::write(c.path().join("notes.xz"), compressed("xz", b"not a tar\n")).unwrap();
    build(&e, c.path(), &["-t", "addz:1"]);
    assert_eq!(
        e.ok(&["run", "--rm", "addz:1"]),
        "inside\ninside\nnotes.xz\n"
    );
    // A hostile tar is refused inside xz as it is plain.
    let evil = tar_with(&[("../../../../tmp/berth-build-evil-xz", None, b"x")]);
    std::fs::write(c.path().join("pkg.tar.xz"), compressed("xz", &evil)).unwrap();
    let before = store_state(&e);
    let (ok, err) = build_out(&e, c.path(), &["-t", "evilz:1"]);
    assert!(
        !ok && err.contains("Dockerfile:3") && err.contains(".."),
        "{err}"
    );
    assert!(!Path::new("/tmp/berth-build-evil-xz").exists());
    assert_eq!(store_state(&e), before);
}

#[test]
fn add_unpacks_local_tars_and_refuses_hostile_ones() {
    let e = Eng::new();
    let good = tar_with(&[("dir/inner.txt", None, b"inside\n")]);
    let c = context(&[(
        "Dockerfile",
        "FROM busybox\nADD pkg.tar /opt/\nADD plain.txt /plain.txt\nCMD [\"cat\", \"/opt/dir/inner.txt\", \"/plain.txt\"]\n",
    ), ("plain.txt", "plain\n")]);
    std::fs::write(c.path().join("pkg.tar"), &good).unwrap();
    build(&e, c.path(), &["-t", "add:1"]);
    assert_eq!(e.ok(&["run", "--rm", "add:1"]), "inside\nplain\n");
    // A tar that climbs out is refused, and the store is as it was.
    let evil = tar_with(&[("../../../../tmp/berth-build-evil", None, b"x")]);
    std::fs::write(c.path().join("pkg.tar"), &evil).unwrap();
    let before = store_state(&e);
    let (ok, err) = build_out(&e, c.path(), &["-t", "evil:1"]);
    assert!(!ok, "a hostile tar was unpacked: {err}");
    assert!(err.contains("Dockerfile:2") && err.contains(".."), "{err}");
    assert!(!Path::new("/tmp/berth-build-evil").exists());
    assert_eq!(store_state(&e), before);
    // One that writes through its own symlink to /tmp: resolved inside the unpack root
    // as image layers are (where there is no /tmp), never on the host.
    let evil = tar_with(&[
        ("link", Some("/tmp"), b""),
        ("link/berth-build-evil", None, b"x"),
    ]);
    std::fs::write(c.path().join("pkg.tar"), &evil).unwrap();
    let (ok, err) = build_out(&e, c.path(), &["-t", "evil:2"]);
    assert!(!ok, "{err}");
    assert!(
        err.contains("Dockerfile:2") && err.contains("link"),
        "{err}"
    );
    assert!(!Path::new("/tmp/berth-build-evil").exists());
    assert_eq!(store_state(&e), before);
    // ADD of a git repository is refused with the line, not ignored.
    std::fs::write(
        c.path().join("Dockerfile"),
        "FROM busybox\nADD git@github.com:x/y.git /x\n",
    )
    .unwrap();
    let (ok, err) = build_out(&e, c.path(), &[]);
    assert!(
        !ok && err.contains("Dockerfile:2") && err.contains("git"),
        "{err}"
    );
}

#[test]
fn bad_inputs_name_the_line_and_leave_nothing() {
    let e = Eng::new();
    let before = store_state(&e);
    let cases: &[(&str, &str)] = &[
        ("FROM busybox\nRUN echo ok\nCOPPY a b\n", "Dockerfile:3: dockerfile parse error on line 3: unknown instruction: COPPY"),
        ("FROM busybox\nENV\n", "Dockerfile:2"),
        ("FROM busybox\nCOPY --from=127.0.0.1:1/nosuch:1 /x /x\n", "Dockerfile:2"),
        ("FROM busybox\nCOPY missing.txt /x\n", "Dockerfile:2: COPY failed: file not found in build context or excluded by .dockerignore: stat missing.txt: file does not exist"),
        ("FROM busybox\nRUN echo partial > /p\nRUN echo before-fail && exit 3\n", "Dockerfile:3: process \"/bin/sh -c echo before-fail && exit 3\" did not complete successfully: exit code: 3"),
        ("FROM 127.0.0.1:1/nosuch/image:1\n", "Dockerfile:1: failed to resolve source metadata for 127.0.0.1:1/nosuch/image:1"),
        ("FROM busybox\nRUN [\"/no/such/program\"]\n", "Dockerfile:2: process \"/no/such/program\" did not complete successfully"),
    ];
    for (df, want) in cases {
        let c = context(&[("Dockerfile", df)]);
        let (ok, err) = build_out(&e, c.path(), &["-t", "bad:1"]);
        assert!(!ok, "{df} built");
        assert!(err.contains(want), "{df}: want {want:?} in:\n{err}");
        assert_eq!(store_state(&e), before, "{df} left something behind");
    }
    // The failing RUN's output is shown.
    let c = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN echo before-fail && exit 3\n",
    )]);
    let (_, err) = build_out(&e, c.path(), &[]);
    assert!(err.contains(" before-fail\n"), "{err}");
    // Flags Berth cannot honour are refused, not ignored.
    let (ok, err) = build_out(&e, c.path(), &["--platform", "linux/s390x"]);
    assert!(!ok && err.contains("only"), "{err}");
    let (_, err) = e.code(
        1,
        &["build", "--network", "mynet", c.path().to_str().unwrap()],
    );
    assert!(err.contains("mynet"), "{err}");
    let (ok, err) = build_out(&e, c.path(), &["--secret", "id=x"]);
    assert!(!ok && err.contains("src="), "{err}");
}

#[test]
fn context_and_dockerfile_from_stdin() {
    let e = Eng::new();
    // A tar context on stdin.
    let mut t = tar::Builder::new(Vec::new());
    for (n, d) in [
        (
            "Dockerfile",
            "FROM busybox\nCOPY hello /hello\nCMD [\"cat\", \"/hello\"]\n",
        ),
        ("hello", "from a tar\n"),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(d.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        t.append_data(&mut h, n, d.as_bytes()).unwrap();
    }
    let tar = t.into_inner().unwrap();
    let mut cmd = e.cmd(&["build", "-q", "--network", "none", "-t", "tar:1", "-"]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut ch = cmd.spawn().unwrap();
    std::io::Write::write_all(ch.stdin.as_mut().unwrap(), &tar).unwrap();
    drop(ch.stdin.take());
    let o = ch.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(e.ok(&["run", "--rm", "tar:1"]), "from a tar\n");
    // The same tar on disk, named by its path and as a file:// URL.
    let on_disk = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(on_disk.path(), &tar).unwrap();
    let path = on_disk.path().to_str().unwrap().to_string();
    for (ctx, tag) in [(path.clone(), "tar:2"), (format!("file://{path}"), "tar:3")] {
        e.ok(&["build", "-q", "--network", "none", "-t", tag, &ctx]);
        assert_eq!(e.ok(&["run", "--rm", tag]), "from a tar\n");
    }
    // A tar whose Dockerfile is a symlink to a host file: read inside the tar (where
    // there is no such file), never on the host.
    let mut t = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    t.append_link(&mut h, "Dockerfile", "/etc/passwd").unwrap();
    let tar = t.into_inner().unwrap();
    let mut cmd = e.cmd(&["build", "--network", "none", "-"]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut ch = cmd.spawn().unwrap();
    std::io::Write::write_all(ch.stdin.as_mut().unwrap(), &tar).unwrap();
    drop(ch.stdin.take());
    let o = ch.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("failed to read dockerfile"), "{err}");
    assert!(!err.contains("root:"), "{err}");
    // A Dockerfile on stdin, the context a directory.
    let c = context(&[("x", "ctx file\n")]);
    let mut cmd = e.cmd(&[
        "build",
        "-q",
        "--network",
        "none",
        "-t",
        "df:1",
        "-f",
        "-",
        c.path().to_str().unwrap(),
    ]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut ch = cmd.spawn().unwrap();
    std::io::Write::write_all(
        ch.stdin.as_mut().unwrap(),
        b"FROM busybox\nCOPY x /x\nCMD [\"cat\", \"/x\"]\n",
    )
    .unwrap();
    drop(ch.stdin.take());
    let o = ch.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(e.ok(&["run", "--rm", "df:1"]), "ctx file\n");
    // --iidfile and several tags.
    let idf = c.path().join("iid");
    std::fs::write(c.path().join("Dockerfile"), "FROM busybox\nLABEL x=y\n").unwrap();
    let out = e.ok(&[
        "build",
        "-q",
        "-t",
        "m:1",
        "-t",
        "m:2",
        "--label",
        "from=cli",
        "--iidfile",
        idf.to_str().unwrap(),
        c.path().to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read_to_string(&idf).unwrap(), out.trim());
    assert_eq!(e.inspect("m:1")["Id"], e.inspect("m:2")["Id"]);
    assert_eq!(image_config(&e, "m:2")["Labels"]["from"], "cli");
}

#[test]
fn run_mounts_cache_secret_and_network() {
    let e = Eng::new();
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "s3cr3t").unwrap();
    let df = "FROM busybox\n\
              RUN --mount=type=cache,target=/cache echo x >> /cache/count && wc -l < /cache/count > /seen\n\
              RUN --mount=type=secret,id=tok cat /run/secrets/tok > /dev/null && test -s /run/secrets/tok\n\
              RUN --mount=type=tmpfs,target=/scratch touch /scratch/t\n\
              RUN --network=none ip link | grep -c ': ' > /links\n\
              CMD [\"sh\", \"-c\", \"cat /seen /links; ls /run/secrets /scratch 2>&1 | head -n 2\"]\n";
    let c = context(&[("Dockerfile", df)]);
    let sec = format!("id=tok,src={}", secret.path().display());
    build(&e, c.path(), &["-t", "m:1", "--secret", &sec]);
    build(&e, c.path(), &["-t", "m:2", "--secret", &sec, "--no-cache"]);
    let out = e.ok(&["run", "--rm", "m:2"]);
    let lines: Vec<&str> = out.lines().collect();
    // The cache mount kept its content between the builds; only lo without network; the
    // secret's and the tmpfs's mount points are not in the image.
    assert_eq!(lines[0], "2", "{out}");
    assert_eq!(lines[1], "1", "{out}");
    assert!(out.contains("No such file"), "{out}");
    // The secret is in no layer.
    let save = e.root().join("m.tar");
    e.ok(&["save", "-o", save.to_str().unwrap(), "m:2"]);
    let bytes = std::fs::read(&save).unwrap();
    assert!(!bytes.windows(6).any(|w| w == b"s3cr3t"));
    // A required secret that was not given is an error naming the line.
    let (ok, err) = build_out(&e, c.path(), &["--no-cache"]);
    assert!(
        !ok && err.contains("Dockerfile:3") && err.contains("tok"),
        "{err}"
    );
}

/// podman with its own root in a temp dir (vfs), as tests/podman.rs runs it.
struct Podman(tempfile::TempDir);

impl Podman {
    fn cmd(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new("podman");
        c.arg("--root")
            .arg(self.0.path().join("root"))
            .arg("--runroot")
            .arg(self.0.path().join("run"))
            .args(["--storage-driver", "vfs", "--events-backend", "none"])
            .args(args)
            .env("HOME", self.0.path());
        c
    }
    fn ok(&self, args: &[&str]) -> String {
        let o = self.cmd(args).output().expect("podman");
        assert!(
            o.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd(&["image", "unmount", "--all"]).output();
    }
}

#[test]
fn built_image_is_pushed_pulled_read_by_skopeo_and_loaded_by_podman() {
    let e = Eng::new();
    let reg = common::Registry::start_in(&e.netns);
    let tag = format!("{}/built/app:1", reg.addr);
    let c = context(&[
        (
            "Dockerfile",
            "FROM busybox\nCOPY msg /msg\nCOPY tree/ /tree/\nRUN echo ran >> /msg\nCMD [\"cat\", \"/msg\"]\n",
        ),
        ("msg", "copied\n"),
        ("tree/a/b/c", "c\n"),
        ("tree/d", "d\n"),
    ]);
    let id = build(&e, c.path(), &["-t", &tag]);
    let out = e.ok(&["push", &tag]);
    assert!(out.contains("digest: sha256:"), "{out}");
    // skopeo, an independent reader, sees the manifest and its three layers.
    let o = e
        .in_netns("skopeo")
        .args(["inspect", "--tls-verify=false", &format!("docker://{tag}")])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["Layers"].as_array().unwrap().len(), 4, "{v}");
    // Another storage root pulls it back: the same image, and it runs.
    let e2 = Engine::empty_sharing_netns(&e);
    e2.ok(&["pull", &tag]);
    assert_eq!(e2.inspect(&tag)["Id"], id.as_str());
    assert_eq!(e2.ok(&["run", "--rm", &tag]), "copied\nran\n");
    // The builder's own layer directories show the same files, modes and times as the
    // ones unpacked from the pushed tars.
    let look = [
        "run",
        "--rm",
        &tag,
        "ls",
        "-lnR",
        "--full-time",
        "/tree",
        "/msg",
    ];
    assert_eq!(e.ok(&look), e2.ok(&look));
    // A build FROM it in a third root pulls it, as docker does for a missing base.
    let e3 = Engine::empty_sharing_netns(&e);
    let c3 = context(&[(
        "Dockerfile",
        &format!("FROM {tag}\nRUN echo child >> /msg\n"),
    )]);
    let (ok, err) = {
        let o = e3.run(&[
            "build",
            "--network",
            "none",
            "-t",
            "child:1",
            c3.path().to_str().unwrap(),
        ]);
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    assert!(ok, "{err}");
    assert_eq!(e3.ok(&["run", "--rm", "child:1"]), "copied\nran\nchild\n");
    // A new version of the base in the registry: a build uses the stored one, a build
    // with --pull fetches the new one first.
    std::fs::write(c.path().join("msg"), "copied v2\n").unwrap();
    build(&e, c.path(), &["-t", &tag]);
    e.ok(&["push", &tag]);
    let c3_build = |extra: &[&str]| {
        let mut a = vec!["build", "-q", "--network", "none", "-t", "child:2"];
        a.extend_from_slice(extra);
        a.push(c3.path().to_str().unwrap());
        e3.ok(&a);
        e3.ok(&["run", "--rm", "child:2"])
    };
    assert_eq!(c3_build(&[]), "copied\nran\nchild\n");
    assert_eq!(c3_build(&["--pull"]), "copied v2\nran\nchild\n");
    // podman loads `berth save` and finds the built files.
    let p = Podman(tempfile::tempdir().unwrap());
    let tar = p.0.path().join("app.tar");
    e.ok(&["save", "-o", tar.to_str().unwrap(), &tag]);
    p.ok(&["load", "-i", tar.to_str().unwrap()]);
    let mnt = p.ok(&["image", "mount", &tag]);
    let msg = std::fs::read_to_string(Path::new(mnt.trim()).join("msg")).unwrap();
    assert_eq!(msg, "copied v2\nran\n");
    let cmd = p.ok(&["image", "inspect", "--format", "{{.Config.Cmd}}", &tag]);
    assert_eq!(cmd.trim(), "[cat /msg]");
}

#[test]
fn an_interrupted_build_removes_what_it_made() {
    let e = Eng::new();
    let c = context(&[(
        "Dockerfile",
        "FROM busybox\nCOPY Dockerfile /d\nRUN echo started && sleep 30\n",
    )]);
    let before = store_state(&e);
    let mut cmd = e.cmd(&["build", "--network", "none", c.path().to_str().unwrap()]);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let ch = cmd.spawn().unwrap();
    // The RUN's container is up: its output line is in the log.
    e.wait_for(20, "the RUN container", || {
        let ps = e.ok(&["ps", "-q"]);
        (!ps.trim().is_empty()).then_some(())
    });
    let t = std::time::Instant::now();
    send_signal(ch.id(), "INT");
    let o = ch.wait_with_output().unwrap();
    assert!(!o.status.success());
    assert!(
        t.elapsed() < std::time::Duration::from_secs(15),
        "{:?}",
        t.elapsed()
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("build canceled"), "{err}");
    assert_eq!(store_state(&e), before);
}

/// `kill -SIG pid` (no unsafe in the tests).
fn send_signal(pid: u32, sig: &str) {
    let st = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn independent_stages_build_in_parallel() {
    let e = Eng::new();
    // Each stage waits for the other's mark in a shared cache mount: built one after
    // the other, the first would give up and fail.
    let wait = |me: &str, other: &str| {
        format!(
            "RUN --mount=type=cache,id=meet,target=/meet touch /meet/{me} && \
             for i in $(seq 100); do [ -e /meet/{other} ] && break; sleep 0.1; done && \
             test -e /meet/{other} && echo {me} > /{me}\n"
        )
    };
    let df = format!(
        "FROM busybox AS a\n{}FROM busybox AS b\n{}FROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\nCMD [\"cat\", \"/a\", \"/b\"]\n",
        wait("a", "b"),
        wait("b", "a")
    );
    let c = context(&[("Dockerfile", &df)]);
    let (ok, err) = build_out(&e, c.path(), &["-t", "par:1"]);
    assert!(ok, "{err}");
    assert_eq!(e.ok(&["run", "--rm", "par:1"]), "a\nb\n");
}

#[test]
fn run_on_a_named_network() {
    let e = Eng::new();
    e.ok(&["network", "create", "--subnet", "10.231.7.0/24", "buildnet"]);
    let c = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN ip -4 addr | grep -o '10\\.231\\.7\\.[0-9]*' > /addr\nCMD [\"cat\", \"/addr\"]\n",
    )]);
    let o = e.run(&[
        "build",
        "-q",
        "--network",
        "buildnet",
        "-t",
        "net:1",
        c.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let addr = e.ok(&["run", "--rm", "--network", "none", "net:1"]);
    assert!(addr.starts_with("10.231.7."), "{addr}");
    // A network that does not exist is named, with the line.
    let (_, err) = e.code(
        1,
        &[
            "build",
            "--network",
            "nosuchnet",
            c.path().to_str().unwrap(),
        ],
    );
    assert!(
        err.contains("Dockerfile:2") && err.contains("nosuchnet"),
        "{err}"
    );
    e.ok(&["network", "rm", "buildnet"]);
}

/// A child process killed (by its pid) when dropped.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn add_fetches_urls_with_checksums() {
    let e = Eng::new();
    let served = tempfile::tempdir().unwrap();
    std::fs::write(served.path().join("file.txt"), "over http\n").unwrap();
    let port = common::free_port().to_string();
    let _server = Killed(
        e.in_netns("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port,
                "--directory",
            ])
            .arg(served.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}/file.txt");
    e.wait_for(20, "the HTTP server", || {
        let o = e
            .in_netns("busybox")
            .args(["wget", "-q", "-O", "/dev/null", &url])
            .output()
            .ok()?;
        o.status.success().then_some(())
    });
    let sum = common::sha(b"over http\n");
    let df = format!(
        "FROM busybox\nADD --checksum={sum} {url} /fetched/\nADD {url} /renamed.txt\n\
         CMD [\"sh\", \"-c\", \"cat /fetched/file.txt /renamed.txt; stat -c %a /renamed.txt\"]\n"
    );
    let c = context(&[("Dockerfile", &df)]);
    build(&e, c.path(), &["-t", "url:1"]);
    assert_eq!(
        e.ok(&["run", "--rm", "url:1"]),
        "over http\nover http\n600\n"
    );
    // A wrong checksum, a URL in COPY and a missing file are errors with the line.
    let bad = common::sha(b"something else");
    for (df, want) in [
        (
            format!("FROM busybox\nADD --checksum={bad} {url} /x\n"),
            "digest mismatch",
        ),
        (
            format!("FROM busybox\nCOPY {url} /x\n"),
            "source can't be a URL for COPY",
        ),
        (
            format!("FROM busybox\nADD http://127.0.0.1:{port}/missing /x\n"),
            "404",
        ),
        (
            "FROM busybox\nADD --checksum=sha256:00 local /x\n".to_string(),
            "non-HTTP(S)",
        ),
    ] {
        std::fs::write(c.path().join("Dockerfile"), &df).unwrap();
        let before = store_state(&e);
        let (ok, err) = build_out(&e, c.path(), &[]);
        assert!(!ok, "{df}");
        assert!(
            err.contains("Dockerfile:2") && err.contains(want),
            "{df}: {err}"
        );
        assert_eq!(store_state(&e), before);
    }
}

#[test]
fn locked_cache_mounts_are_used_one_run_at_a_time() {
    let e = Eng::new();
    let run = |me: &str, other: &str, sharing: &str| {
        format!(
            "RUN --mount=type=cache,id=l,target=/c,sharing={sharing} touch /c/{me} && sleep 2 && \
             test ! -e /c/{other} && rm /c/{me} && echo {me} > /{me}\n"
        )
    };
    let df = |sharing: &str| {
        format!(
            "FROM busybox AS a\n{}FROM busybox AS b\n{}FROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n",
            run("a", "b", sharing),
            run("b", "a", sharing)
        )
    };
    // The two stages build at once; locked, their RUNs never overlap.
    let c = context(&[("Dockerfile", &df("locked"))]);
    let (ok, err) = build_out(&e, c.path(), &[]);
    assert!(ok, "{err}");
    // Shared, they do (which is what makes the locked case worth a lock).
    std::fs::write(c.path().join("Dockerfile"), df("shared")).unwrap();
    let (ok, err) = build_out(&e, c.path(), &[]);
    assert!(
        !ok && err.contains("did not complete successfully"),
        "{err}"
    );
}
