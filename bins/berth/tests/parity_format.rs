//! Issue 17 items 7, 8 and 9 (docker parity: Go templates, `images`, `import`),
//! black-box against docker's documented behaviour.
//! Run as root: `scripts/in-netns.sh cargo nextest run -p berth --test parity_format`.

mod common;
use common::engine::*;
use common::*;

/// The busybox rootfs of the test image, as a plain tar (what `import` takes).
fn rootfs_tar(e: &Engine) -> String {
    let p = e.dir.path().join("rootfs.tar");
    std::fs::write(&p, full_busybox_layer()).unwrap();
    p.to_str().unwrap().to_string()
}

/// Item 7: docker's common one-liners over `inspect`: range over networks, json, if/eq,
/// len, index, printf in a pipe, variables, with; and .Config.ExposedPorts and
/// .HostConfig.Binds are there.
#[test]
fn item7_inspect_one_liners_and_new_fields() {
    let e = Engine::new();
    let host = e.dir.path().join("hostdir");
    let bind = format!("{}:/data", host.display());
    e.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--label",
        "k=v",
        "--label",
        "tier=db",
        "-p",
        "127.0.0.1:8080:80",
        "--expose",
        "9000",
        "-v",
        &bind,
        "-v",
        "vol1:/v:ro",
        IMAGE,
        "sleep",
        "100",
    ]);
    e.ok(&["create", "--name", "idle", IMAGE, "true"]);
    let f = |t: &str, c: &str| e.ok(&["inspect", "--format", t, c]).trim_end().to_string();

    let ip = f(
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        "web",
    );
    assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "{ip:?}");
    assert_eq!(
        f("{{json .Config.Labels}}", "web"),
        r#"{"k":"v","tier":"db"}"#
    );
    let up = r#"{{if eq .State.Status "running"}}up{{else}}down{{end}}"#;
    assert_eq!(f(up, "web"), "up");
    assert_eq!(f(up, "idle"), "down");
    assert_eq!(f("{{len .Mounts}}", "web"), "2");
    assert_eq!(f("{{len .Mounts}}", "idle"), "0");
    assert_eq!(f(r#"{{index .Config.Labels "k"}}"#, "web"), "v");
    assert_eq!(f(r#"{{.Name | printf "%s-x"}}"#, "web"), "/web-x");
    assert_eq!(
        f(
            "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}",
            "web"
        ),
        "k=v;tier=db;"
    );
    let pid: u32 = f("{{with .State}}{{.Pid}}{{end}}", "web").parse().unwrap();
    assert!(pid > 0);
    assert_eq!(
        f(
            "{{$n := .Name}}{{with .Config}}{{$n}} {{.Image}}{{end}}",
            "web"
        ),
        format!("/web {IMAGE}")
    );
    assert_eq!(
        f(
            "{{range $i, $m := .Mounts}}{{if $i}},{{end}}{{$m.Destination}}{{end}}",
            "web"
        )
        .split(',')
        .collect::<std::collections::BTreeSet<_>>(),
        ["/data", "/v"].into_iter().collect()
    );
    assert_eq!(
        f(
            "{{if and .State.Running (gt .State.Pid 0)}}live{{end}} {{not .State.Paused}}",
            "web"
        ),
        "live true"
    );
    assert_eq!(
        f("{{- /* c */ -}} {{upper (truncate .Name 4)}}", "web"),
        "/WEB"
    );
    // The new fields, in docker's shapes.
    assert_eq!(
        f("{{json .Config.ExposedPorts}}", "web"),
        r#"{"80/tcp":{},"9000/tcp":{}}"#
    );
    assert_eq!(
        f("{{json .HostConfig.Binds}}", "web"),
        format!(r#"["{bind}","vol1:/v:ro"]"#)
    );
    assert_eq!(f("{{json .HostConfig.Binds}}", "idle"), "null");

    // Errors as Go words them, exit 1 (docker's CLI), nothing on stdout.
    let (out, err) = e.code(1, &["inspect", "--format", "{{.Nope}}", "web"]);
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains(r#"template: :1:2: executing "" at <.Nope>: can't evaluate field Nope"#),
        "{err}"
    );
    let (_, err) = e.code(1, &["inspect", "--format", "{{bogus .Name}}", "web"]);
    assert!(err.contains(r#"function "bogus" not defined"#), "{err}");
    let (_, err) = e.code(1, &["inspect", "--format", "{{if .Name}}x", "web"]);
    assert!(err.contains("unexpected EOF"), "{err}");
    e.ok(&["rm", "-f", "web", "idle"]);
}

/// Item 7: the same templates everywhere a `--format` is taken (ps, images, network ls,
/// volume ls, system df, version).
#[test]
fn item7_templates_in_every_format_flag() {
    let e = Engine::new();
    e.ok(&["create", "--name", "one", "--label", "a=1", IMAGE, "true"]);
    e.ok(&["volume", "create", "v1"]);
    assert_eq!(
        e.ok(&[
            "ps",
            "-a",
            "--format",
            r#"{{if eq .State "created"}}{{printf "%-5s|" .Names}}{{end}}{{.Label "a"}}"#,
        ]),
        "one  |1\n"
    );
    // table: the header names docker gives, columns aligned.
    assert_eq!(
        e.ok(&[
            "ps",
            "-a",
            "--format",
            "table {{.Names}}\t{{.State | upper}}"
        ]),
        "NAMES     STATE\none       CREATED\n"
    );
    assert_eq!(
        e.ok(&[
            "images",
            "--format",
            "{{.Repository}}{{with .Tag}}:{{.}}{{end}}"
        ]),
        "busybox:latest\n"
    );
    let nets = e.ok(&[
        "network",
        "ls",
        "--format",
        r#"{{if eq .Name "bridge" "host"}}{{.Name}} {{len .ID}}{{end}}"#,
    ]);
    let nets: Vec<&str> = nets.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(nets.len(), 2, "{nets:?}");
    assert!(nets.iter().all(|l| l.ends_with(" 12")), "{nets:?}");
    assert_eq!(
        e.ok(&["volume", "ls", "--format", "{{.Name | printf \"%q\"}}"]),
        "\"v1\"\n"
    );
    let df = e.ok(&["system", "df", "--format", "{{.Type}}"]);
    assert!(df.starts_with("Images\nContainers\n"), "{df}");
    let v = e.ok(&[
        "version",
        "--format",
        "{{with .Client}}{{if .Version}}ok{{end}}{{end}}",
    ]);
    assert_eq!(v, "ok\n");
    e.ok(&["rm", "one"]);
}

/// Item 8: `images` takes -a, --filter (dangling, label, before, since, reference with
/// docker's glob), a REPOSITORY[:TAG] argument and --format over docker's fields; lists
/// newest first; the table is aligned whatever CREATED says.
#[test]
fn item8_images_filters_argument_and_format() {
    let e = Engine::new(); // busybox:latest, created 2024-01-01
    e.load_image(
        "other:1",
        serde_json::json!({"Labels": {"tier": "db"}, "Cmd": ["sh"]}),
    );
    let tar = rootfs_tar(&e);
    e.ok(&["import", &tar, "example.com/imp:2"]); // created now
    let names = |args: &[&str]| {
        let mut a = vec!["images"];
        a.extend_from_slice(args);
        a.extend(["--format", "{{.Repository}}:{{.Tag}}"]);
        e.ok(&a).lines().map(str::to_string).collect::<Vec<_>>()
    };
    let all = names(&[]);
    assert_eq!(all[0], "example.com/imp:2", "{all:?}");
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(names(&["-a"]), all);
    assert_eq!(names(&["busybox"]), ["busybox:latest"]);
    assert_eq!(names(&["busybox:latest"]), ["busybox:latest"]);
    assert!(names(&["busybox:nope"]).is_empty());
    assert_eq!(names(&["example.com/*"]), ["example.com/imp:2"]);
    assert_eq!(names(&["--filter", "reference=*:1"]), ["other:1"]);
    assert_eq!(names(&["--filter", "reference=[ob]*"]).len(), 2);
    assert!(
        names(&["--filter", "reference=*"]).len() == 2,
        "* stops at /"
    );
    assert_eq!(names(&["--filter", "label=tier"]), ["other:1"]);
    assert_eq!(names(&["--filter", "label=tier=db"]), ["other:1"]);
    assert!(names(&["--filter", "label=tier=web"]).is_empty());
    assert_eq!(names(&["--filter", "since=busybox"]), ["example.com/imp:2"]);
    let before = names(&["--filter", "before=example.com/imp:2"]);
    assert_eq!(before.len(), 2, "{before:?}");
    assert!(!before.contains(&"example.com/imp:2".to_string()));
    assert!(names(&["--filter", "dangling=true"]).is_empty());
    // Re-tagging other:1 leaves the old image untagged: dangling.
    e.load_image("other:1", serde_json::json!({"Cmd": ["sh"], "User": "app"}));
    assert_eq!(names(&["--filter", "dangling=true"]), ["<none>:<none>"]);
    assert_eq!(names(&["--filter", "dangling=false"]).len(), 3);
    assert_eq!(names(&[]).len(), 4);
    assert!(
        names(&["other"]).len() == 1,
        "a reference never matches <none>"
    );
    let q = e.ok(&["images", "-q", "--filter", "dangling=true"]);
    assert_eq!(q.trim().len(), 12, "{q}");
    // Errors name the filter.
    let (_, err) = e.code(1, &["images", "--filter", "colour=red"]);
    assert!(err.contains("invalid filter 'colour'"), "{err}");
    let (_, err) = e.code(1, &["images", "--filter", "dangling=maybe"]);
    assert!(err.contains("dangling=maybe"), "{err}");
    let (_, err) = e.code(1, &["images", "--filter", "since=nosuch:1"]);
    assert!(err.contains("No such image: nosuch:1"), "{err}");

    // --format over docker's fields.
    let line = e.ok(&[
        "images",
        "--no-trunc",
        "--format",
        "{{.ID}}|{{.Digest}}|{{.CreatedAt}}|{{.CreatedSince}}|{{.Size}}",
        "busybox",
    ]);
    let parts: Vec<&str> = line.trim_end().split('|').collect();
    assert!(
        parts[0].starts_with("sha256:") && parts[0].len() == 71,
        "{line}"
    );
    assert_eq!(parts[1], "<none>");
    assert_eq!(parts[2], "2024-01-01 00:00:00 +0000 UTC");
    assert!(parts[3].ends_with(" ago"), "{line}");
    assert!(parts[4].ends_with("MB"), "{line}");
    let j = e.ok(&["images", "--format", "json", "busybox"]);
    let v: serde_json::Value = serde_json::from_str(j.trim()).unwrap();
    assert_eq!(v["Repository"], "busybox");
    assert_eq!(v["Tag"], "latest");
    assert_eq!(v["ID"].as_str().unwrap().len(), 12);
    let t = e.ok(&[
        "images",
        "--format",
        "table {{.Repository}}\t{{.ID}}",
        "busybox",
    ]);
    assert!(t.starts_with("REPOSITORY   IMAGE ID\nbusybox      "), "{t}");

    // The default table: every row's CREATED and SIZE start under their headers, even
    // "Less than a second ago" (docker's tabwriter, padding 3).
    e.ok(&["import", &tar, "fresh:1"]);
    let table = e.ok(&["images"]);
    let mut lines = table.lines();
    let head = lines.next().unwrap();
    assert!(
        head.starts_with("REPOSITORY") && head.contains("   TAG ") && head.ends_with("SIZE"),
        "{table}"
    );
    let (c, s) = (head.find("CREATED").unwrap(), head.find("SIZE").unwrap());
    for l in lines {
        assert_eq!(&l[c - 3..c], "   ", "a column overflows:\n{table}");
        assert_ne!(&l[c..c + 1], " ", "CREATED misplaced:\n{table}");
        assert_eq!(l.rfind(' ').unwrap() + 1, s, "SIZE misplaced:\n{table}");
    }
    assert!(table.contains(" ago "), "{table}");
}

/// Item 8: SIZE is docker's: the unpacked layers' bytes, the same whether the image was
/// pulled (compressed blobs), loaded or imported.
#[test]
fn item8_one_size_pulled_loaded_or_imported() {
    let e = Engine::new();
    // docker's layer size: every non-directory entry's bytes (a symlink's: its target).
    let bb = std::fs::metadata("/bin/busybox").unwrap().len();
    let list = std::process::Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .unwrap();
    let links = String::from_utf8_lossy(&list.stdout)
        .split_whitespace()
        .filter(|a| *a != "busybox")
        .count() as u64;
    let passwd = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n".len();
    let group = "root:x:0:\napp:x:1000:\nwheel:x:10:app\naudio:x:29:app\n".len();
    let want = bb + links * "busybox".len() as u64 + (passwd + group) as u64;
    let size = |e: &Engine, img: &str| -> u64 {
        e.ok(&["inspect", "--type", "image", "--format", "{{.Size}}", img])
            .trim()
            .parse()
            .unwrap()
    };
    // Loaded from a docker-archive with a gzip layer: not the compressed size.
    assert_eq!(size(&e, IMAGE), want);
    assert!(gzip(&full_busybox_layer()).len() as u64 * 3 / 2 < want);

    let reg = Registry::start_in(&e.netns);
    let remote = format!("{}/bb:1", reg.addr);
    e.ok(&["tag", IMAGE, &remote]);
    e.ok(&["push", &remote]);
    let pulled = Engine::empty_sharing_netns(&e);
    pulled.ok(&["pull", "-q", &remote]);
    assert_eq!(size(&pulled, &remote), want, "pulled");

    let tar = rootfs_tar(&e);
    e.ok(&["import", &tar, "imp:1"]);
    assert_eq!(size(&e, "imp:1"), want, "imported");

    // And `images` shows that one size (docker's units, 3 significant digits).
    let human = |n: u64| {
        let mb = n as f64 / 1e6;
        let s = format!("{mb:.*}", if mb < 10.0 { 2 } else { 1 });
        format!("{}MB", s.trim_end_matches('0').trim_end_matches('.'))
    };
    let sizes = |e: &Engine| e.ok(&["images", "--format", "{{.Size}}"]);
    assert_eq!(sizes(&pulled).trim(), human(want));
    for s in sizes(&e).lines() {
        assert_eq!(s, human(want));
    }
    drop(pulled);
}

/// Item 9: `import -c` applies Dockerfile lines (JSON and shell forms) and `-m` the
/// message; an image without CMD makes a plain `run` fail with docker's "No command
/// specified" (125), and with `-c CMD` it runs.
#[test]
fn item9_import_change_and_message() {
    let e = Engine::new();
    let tar = rootfs_tar(&e);
    e.ok(&["import", &tar, "plain:1"]);
    let (_, err) = e.code(125, &["run", "--rm", "plain:1"]);
    assert!(err.to_lowercase().contains("no command specified"), "{err}");
    // With a command given, the same image runs.
    assert_eq!(e.ok(&["run", "--rm", "plain:1", "echo", "ok"]), "ok\n");

    let id = e.ok(&[
        "import",
        "-c",
        r#"CMD ["echo", "hi"]"#,
        "-c",
        r#"ENV A=1 B="two words""#,
        "--change",
        "WORKDIR /srv",
        "-c",
        "USER app",
        "-c",
        "EXPOSE 80 53/udp",
        "-c",
        "LABEL k=v",
        "-c",
        "VOLUME /data",
        "-m",
        "my message",
        &tar,
        "ch:1",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(e.ok(&["run", "--rm", "ch:1"]), "hi\n");
    assert_eq!(
        e.ok(&[
            "run",
            "--rm",
            "ch:1",
            "sh",
            "-c",
            "echo $A $B $(pwd) $(id -u)"
        ]),
        "1 two words /srv 1000\n"
    );
    let f = |t: &str| {
        e.ok(&["inspect", "--type", "image", "--format", t, "ch:1"])
            .trim_end()
            .to_string()
    };
    assert_eq!(
        f("{{json .Config.Cmd}} {{.Config.User}} {{.Config.WorkingDir}}"),
        r#"["echo","hi"] app /srv"#
    );
    assert_eq!(
        f("{{json .Config.ExposedPorts}} {{json .Config.Labels}} {{json .Config.Volumes}}"),
        r#"{"53/udp":{},"80/tcp":{}} {"k":"v"} {"/data":{}}"#
    );
    assert_eq!(f("{{.Comment}}"), "my message");

    // Shell forms run through /bin/sh -c, as docker's.
    e.ok(&["import", "-c", "ENTRYPOINT echo from $0", &tar, "sh:1"]);
    assert_eq!(e.ok(&["run", "--rm", "sh:1"]), "from /bin/sh\n");
    e.ok(&["import", "-c", "CMD echo shell form", &tar, "sh:2"]);
    assert_eq!(e.ok(&["run", "--rm", "sh:2"]), "shell form\n");

    // Anything else is refused, naming it.
    let (_, err) = e.code(1, &["import", "-c", "RUN true", &tar, "bad:1"]);
    assert!(err.contains("RUN is not a valid change command"), "{err}");
    let (_, err) = e.code(1, &["import", "-c", "EXPOSE http", &tar, "bad:1"]);
    assert!(err.contains("http"), "{err}");
    assert!(e.ok(&["images", "-q", "bad"]).is_empty());
}
