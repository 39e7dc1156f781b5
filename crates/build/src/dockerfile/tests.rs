use super::*;

fn p(text: &str) -> Dockerfile {
    match parse("Dockerfile", text) {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    }
}

fn err(text: &str) -> String {
    parse("Dockerfile", text).unwrap_err().to_string()
}

/// The kinds of the first stage's instructions.
fn kinds(text: &str) -> Vec<Kind> {
    p(text).stages[0]
        .instructions
        .iter()
        .map(|i| i.kind.clone())
        .collect()
}

fn one(text: &str) -> Kind {
    let k = kinds(&format!("FROM scratch\n{text}"));
    assert_eq!(k.len(), 1, "{k:?}");
    k.into_iter().next().unwrap()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn kv(k: &str, v: &str, legacy: bool) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: v.into(),
        legacy,
    }
}

#[test]
fn directives() {
    let d = p("# syntax=docker/dockerfile:1.7\n#escape=`\n# check=skip=JSONArgsRecommended;error=true\nFROM scratch\n");
    assert_eq!(
        d.directives.syntax.as_deref(),
        Some("docker/dockerfile:1.7")
    );
    assert_eq!(d.directives.escape, '`');
    assert_eq!(
        d.directives.check.as_deref(),
        Some("skip=JSONArgsRecommended;error=true")
    );
    assert_eq!(d.directives.foreign_syntax(), None);
    // whitespace around the parts, case of the name
    let d = p("#\t ESCAPE =\t` \nFROM scratch\n");
    assert_eq!(d.directives.escape, '`');
    // after a comment, a blank line or an unknown directive: comments
    for t in [
        "# hello\n# escape=`\nFROM scratch\n",
        "\n# escape=`\nFROM scratch\n",
        "# foo=bar\n# escape=`\nFROM scratch\n",
        "FROM scratch\n# escape=`\n",
    ] {
        assert_eq!(p(t).directives.escape, '\\', "{t:?}");
    }
    let d = p("# check=skip=JSONArgsRecommended;error=true\nFROM scratch\n");
    assert_eq!(d.warnings.len(), 1);
    assert!(d.warnings[0].contains("lint rules, which berth does not run"));
    assert_eq!(
        CheckOptions::parse(d.directives.check.as_deref().unwrap()).unwrap(),
        CheckOptions {
            skip: s(&["JSONArgsRecommended"]),
            error: true,
            ..CheckOptions::default()
        }
    );
    assert!(CheckOptions::parse("skip=all").unwrap().skip_all);
    assert_eq!(
        err("# check=skip=all;bogus=1\nFROM scratch\n"),
        "Dockerfile:1: dockerfile parse error on line 1: invalid check option \"bogus\""
    );
    assert_eq!(
        err("# check=error=maybe\nFROM scratch\n"),
        "Dockerfile:1: dockerfile parse error on line 1: failed to parse check option \"error=maybe\": strconv.ParseBool: parsing \"maybe\": invalid syntax"
    );
    assert_eq!(
        err("# check=skip\nFROM scratch\n"),
        "Dockerfile:1: dockerfile parse error on line 1: invalid check option \"skip\""
    );
    let d = p("# syntax=example.com/frontend:2\nFROM scratch\n");
    assert_eq!(
        d.directives.foreign_syntax(),
        Some("example.com/frontend:2")
    );
    assert_eq!(
        err("# escape=`\n# escape=\\\nFROM scratch\n"),
        "Dockerfile:2: dockerfile parse error on line 2: only one escape parser directive can be used"
    );
    assert_eq!(
        err("# escape=x\nFROM scratch\n"),
        "Dockerfile:1: dockerfile parse error on line 1: invalid escape token 'x' does not match ` or \\"
    );
}

#[test]
fn comments_blank_lines_bom_and_lines() {
    let d = p(
        "\u{feff}# c\n\n   \nFROM scratch AS a\n  # indented comment\nRUN true\n\n\tLABEL a=b\n",
    );
    let st = &d.stages[0];
    assert_eq!(st.line, 4);
    assert_eq!(st.instructions[0].line, 6);
    assert_eq!(st.instructions[1].line, 8);
    assert_eq!(
        st.instructions[1].kind,
        Kind::Label(vec![kv("a", "b", false)])
    );
}

#[test]
fn continuations() {
    let d = p("FROM scratch\nRUN a \\\n  b \\  \n# comment inside\n\n  c\nUSER x\n");
    let run = &d.stages[0].instructions[0];
    assert_eq!(run.line, 2);
    assert_eq!(run.end_line, 6);
    assert_eq!(
        run.kind,
        Kind::Run(Run {
            command: CommandLine::Shell("a   b   c".into()),
            heredocs: vec![],
            mount_specs: vec![],
            network: None,
        })
    );
    assert_eq!(d.stages[0].instructions[1].line, 7);
    assert_eq!(d.warnings.len(), 1);
    assert!(d.warnings[0].contains("Empty continuation line"));
    // backtick escape
    let d = p("# escape=`\nFROM scratch\nRUN dir c:\\ `\n  && echo hi\n");
    assert_eq!(
        d.stages[0].instructions[0].kind,
        Kind::Run(Run {
            command: CommandLine::Shell("dir c:\\   && echo hi".into()),
            heredocs: vec![],
            mount_specs: vec![],
            network: None,
        })
    );
    // an escaped escape ends the line
    let d = p("FROM scratch\nRUN echo a\\\\\nUSER b\n");
    assert_eq!(d.stages[0].instructions.len(), 2);
    assert_eq!(d.stages[0].instructions[1].kind, Kind::User("b".into()));
    // a lone escape on a line continues
    assert_eq!(one("USER a \\\n\\\nb"), Kind::User("a b".into()));
    // continuation at end of file
    assert_eq!(one("USER a\\"), Kind::User("a".into()));
    // CRLF
    let d = p("FROM scratch\r\nUSER a \\\r\n b\r\n");
    assert_eq!(d.stages[0].instructions[0].kind, Kind::User("a  b".into()));
}

#[test]
fn run_forms_and_json_fallback() {
    let run = |k: Kind| match k {
        Kind::Run(r) => r.command,
        o => panic!("{o:?}"),
    };
    assert_eq!(
        run(one(r#"RUN ["echo", "a b"]"#)),
        CommandLine::Exec(s(&["echo", "a b"]))
    );
    assert_eq!(
        run(one("RUN echo [\"x\"")),
        CommandLine::Shell("echo [\"x\"".into())
    );
    // not valid JSON: shell form, as docker
    assert_eq!(
        run(one("RUN ['echo', 'x']")),
        CommandLine::Shell("['echo', 'x']".into())
    );
    assert_eq!(
        run(one("RUN [\"a\",]")),
        CommandLine::Shell("[\"a\",]".into())
    );
    assert_eq!(
        err("FROM scratch\nRUN [\"a\", 1]\n"),
        "Dockerfile:2: dockerfile parse error on line 2: when using JSON array syntax, arrays must be comprised of strings only"
    );
    assert_eq!(
        err("FROM scratch\nRUN\n"),
        "Dockerfile:2: dockerfile parse error on line 2: RUN requires at least one argument"
    );
    assert_eq!(one("CMD [\"a\"]"), Kind::Cmd(CommandLine::Exec(s(&["a"]))));
    assert_eq!(
        one("CMD a  b"),
        Kind::Cmd(CommandLine::Shell("a  b".into()))
    );
    assert_eq!(
        one("ENTRYPOINT []"),
        Kind::Entrypoint(CommandLine::Exec(vec![]))
    );
    assert_eq!(
        one("entrypoint"),
        Kind::Entrypoint(CommandLine::Exec(vec![]))
    );
}

#[test]
fn run_flags_and_mounts() {
    let Kind::Run(r) = one(
        "RUN --mount=type=cache,target=/root/.cache,id=pip,sharing=locked,uid=1000,mode=0700 \\\n    --mount=type=secret,id=tok,required \\\n    --mount=type=tmpfs,target=/t,size=64m \\\n    --mount=from=build,source=/out,target=/in,rw \\\n    --network=none pip install x",
    ) else {
        panic!()
    };
    assert_eq!(r.network, Some(NetworkMode::None));
    assert_eq!(r.command, CommandLine::Shell("pip install x".into()));
    let m = r.mounts().unwrap();
    assert_eq!(m.len(), 4);
    assert_eq!(m[0].kind, MountType::Cache);
    assert_eq!(m[0].target.as_deref(), Some("/root/.cache"));
    assert_eq!(m[0].id.as_deref(), Some("pip"));
    assert_eq!(m[0].sharing, Some(CacheSharing::Locked));
    assert_eq!(m[0].uid, Some(1000));
    assert_eq!(m[0].mode, Some(0o700));
    assert!(!m[0].readonly);
    assert_eq!(m[1].kind, MountType::Secret);
    assert!(m[1].required);
    assert!(m[1].readonly);
    assert_eq!(m[1].secret_id().as_deref(), Some("tok"));
    assert_eq!(m[1].secret_target().as_deref(), Some("/run/secrets/tok"));
    assert_eq!(m[0].secret_target(), None);
    assert_eq!(m[2].size, Some(64 << 20));
    assert!(!m[2].readonly);
    assert_eq!(m[3].kind, MountType::Bind);
    assert_eq!(m[3].from.as_deref(), Some("build"));
    assert!(!m[3].readonly);
    // a bind mount is read-only unless told
    let Kind::Run(r) = one("RUN --mount=target=/src true") else {
        panic!()
    };
    let m = r.mounts().unwrap();
    assert!(m[0].readonly);
    assert_eq!(m[0].kind, MountType::Bind);
    // cache defaults to shared
    let Kind::Run(r) = one("RUN --mount=type=cache,dst=/c true") else {
        panic!()
    };
    assert_eq!(r.mounts().unwrap()[0].sharing, Some(CacheSharing::Shared));
    // quoted CSV fields
    let Kind::Run(r) = one("RUN --mount='type=bind,\"target=/a,b\"' true") else {
        panic!()
    };
    assert_eq!(r.mounts().unwrap()[0].target.as_deref(), Some("/a,b"));
    // values with variables are typed later
    let Kind::Run(r) = one("RUN --mount=type=cache,target=$HOME/.c,uid=$UID true") else {
        panic!()
    };
    assert_eq!(r.mount_specs, s(&["type=cache,target=$HOME/.c,uid=$UID"]));
}

#[test]
fn mount_errors() {
    let e = |m: &str| err(&format!("FROM scratch\nRUN --mount={m} true\n"));
    let pre = "Dockerfile:2: dockerfile parse error on line 2: ";
    assert_eq!(
        e("type=cahce,target=/x"),
        format!("{pre}unsupported mount type \"cahce\" (did you mean cache?)")
    );
    assert_eq!(
        e("type=bind,target=/x,foo"),
        format!("{pre}invalid field 'foo' must be a key=value pair")
    );
    assert_eq!(
        e("type=bind,target=/x,bogus=1"),
        format!("{pre}unexpected key 'bogus' in 'bogus=1'")
    );
    assert_eq!(
        e("type=bind,target=/x,mode=0600"),
        format!("{pre}mode not allowed for \"bind\" type mounts")
    );
    assert_eq!(
        e("type=bind,target=/x,size=1m"),
        format!("{pre}unexpected key 'size' for mount type 'bind'")
    );
    assert_eq!(
        e("type=tmpfs,target=/x,sharing=locked"),
        format!("{pre}invalid cache sharing set for tmpfs mount")
    );
    assert_eq!(
        e("type=cache,target=/x,uid=me"),
        format!("{pre}invalid value me for uid")
    );
    assert_eq!(
        e("type=bind,target=/x,ro=maybe"),
        format!("{pre}invalid value for ro: maybe")
    );
    assert_eq!(
        e("type=secret,from=x,id=a"),
        format!("{pre}secret mount should not have a from")
    );
    assert_eq!(
        e("type=secret,required"),
        format!("{pre}invalid secret mount. one of source, target required")
    );
    assert_eq!(
        e("type=cache"),
        format!("{pre}mount type cache requires a target")
    );
    assert_eq!(
        e("type=bind,target=/x,required"),
        format!("{pre}unexpected key 'required' for mount type 'bind'")
    );
    assert_eq!(
        e("from=$STAGE,target=/x"),
        format!("{pre}'from' doesn't support variable expansion, define alias stage instead")
    );
    assert_eq!(
        e("type=ssh"),
        "Dockerfile:2: mount type \"ssh\" is not supported: berth forwards no ssh agent into a build"
    );
    assert_eq!(
        err("FROM scratch\nRUN --network=bridge true\n"),
        format!("{pre}unsupported network mode \"bridge\"")
    );
    assert_eq!(
        err("FROM scratch\nRUN --security=insecure true\n"),
        format!("{pre}unknown flag: --security")
    );
    assert_eq!(
        err("FROM scratch\nRUN --netwrk=none true\n"),
        format!("{pre}unknown flag: --netwrk (did you mean network?)")
    );
}

#[test]
fn flags_in_general() {
    let pre = "Dockerfile:2: dockerfile parse error on line 2: ";
    let Kind::Copy(c) = one("COPY --link --chown=\"a b\" --chmod=0755 x /y") else {
        panic!()
    };
    assert!(c.link);
    assert_eq!(c.chown.as_deref(), Some("a b"));
    assert_eq!(c.chmod.as_deref(), Some("0755"));
    let Kind::Copy(c) = one("COPY --link=false x /y") else {
        panic!()
    };
    assert!(!c.link);
    // `--` ends the flags
    let Kind::Copy(c) = one("COPY -- --weird /y") else {
        panic!()
    };
    assert_eq!(c.sources, s(&["--weird"]));
    assert_eq!(
        err("FROM scratch\nCOPY --link=yes a b\n"),
        format!("{pre}expecting boolean value for flag --link, not: yes")
    );
    assert_eq!(
        err("FROM scratch\nCOPY --from a b\n"),
        format!("{pre}missing a value on flag: --from")
    );
    assert_eq!(
        err("FROM scratch\nCOPY --from=a --from=b a b\n"),
        format!("{pre}duplicate flag specified: --from")
    );
    assert_eq!(
        err("FROM scratch\nADD --from=a a b\n"),
        format!("{pre}unknown flag: --from")
    );
    assert_eq!(
        err("FROM scratch\nENV --x=1 A=b\n"),
        format!("{pre}unknown flag: --x")
    );
    assert_eq!(
        err("FROM scratch\nADD --keep-git-dir https://x/y.git /y\n"),
        "Dockerfile:2: ADD --keep-git-dir is not supported: berth's ADD fetches no git repositories"
    );
}

#[test]
fn from_and_stages() {
    let d = p("ARG BASE=alpine\nARG V\nFROM --platform=$BUILDPLATFORM ${BASE}:3 AS Build\nRUN x\nFROM build as second\nFROM scratch\nCOPY --from=build /a /b\n");
    assert_eq!(d.global_args.len(), 2);
    assert_eq!(d.stages.len(), 3);
    assert_eq!(d.stages[0].name.as_deref(), Some("build"));
    assert_eq!(d.stages[0].base, "${BASE}:3");
    assert_eq!(d.stages[0].platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(d.stages[0].instructions.len(), 1);
    assert_eq!(d.stages[1].index, 1);
    assert_eq!(d.stages[2].name, None);
    assert_eq!(d.stages[2].display_name(), "stage-2");
    let pre = "Dockerfile:1: dockerfile parse error on line 1: ";
    assert_eq!(
        err("FROM a b\n"),
        format!("{pre}FROM requires either one or three arguments")
    );
    assert_eq!(
        err("FROM a AS\n"),
        format!("{pre}FROM requires either one or three arguments")
    );
    assert_eq!(
        err("FROM\n"),
        format!("{pre}FROM requires either one or three arguments")
    );
    assert_eq!(
        err("FROM a AS 1x\n"),
        format!("{pre}invalid name for build stage: \"1x\", name can't start with a number or contain symbols")
    );
    assert_eq!(
        err("FROM a AS x\nFROM b AS X\n"),
        "Dockerfile:2: duplicate stage name \"x\" (first defined on line 1)"
    );
    assert_eq!(
        err("RUN x\nFROM a\n"),
        "Dockerfile:1: no build stage in current context"
    );
    assert_eq!(
        err("ARG A\n"),
        "Dockerfile: dockerfile contains no stages to build"
    );
    assert_eq!(
        err("# just a comment\n\n"),
        "Dockerfile: file with no instructions"
    );
    assert_eq!(err(""), "Dockerfile: the Dockerfile cannot be empty");
    assert_eq!(err("\n"), "Dockerfile: file with no instructions");
}

#[test]
fn unknown_instructions() {
    assert_eq!(
        err("FROM a\nFOO bar\n"),
        "Dockerfile:2: dockerfile parse error on line 2: unknown instruction: FOO (did you mean FROM?)"
    );
    assert_eq!(
        err("FROM a\nCOPPY a b\n"),
        "Dockerfile:2: dockerfile parse error on line 2: unknown instruction: COPPY (did you mean COPY?)"
    );
    // instruction names are case-insensitive
    assert_eq!(one("user nobody"), Kind::User("nobody".into()));
    assert_eq!(
        err("FROM a\nzzzzzz\n"),
        "Dockerfile:2: dockerfile parse error on line 2: unknown instruction: zzzzzz"
    );
    assert_eq!(
        err("FROM a\nRn x\n"),
        "Dockerfile:2: dockerfile parse error on line 2: unknown instruction: Rn (did you mean run?)"
    );
    let long = format!("FROM a\nRUN {}\n", "x".repeat(70000));
    assert_eq!(
        err(&long),
        "Dockerfile:2: dockerfile parse error on line 2: dockerfile line greater than max allowed size of 65535"
    );
}

#[test]
fn json_edge_cases() {
    // trailing text after the array: not JSON, so shell form
    assert_eq!(
        one("CMD [\"echo\",\"hi\"] # c"),
        Kind::Cmd(CommandLine::Shell("[\"echo\",\"hi\"] # c".into()))
    );
    assert_eq!(
        err("FROM a\nVOLUME [\"/a\", null]\n"),
        "Dockerfile:2: dockerfile parse error on line 2: when using JSON array syntax, arrays must be comprised of strings only"
    );
    assert_eq!(
        one("RUN [ \"a\" ]"),
        Kind::Run(Run {
            command: CommandLine::Exec(s(&["a"])),
            heredocs: vec![],
            mount_specs: vec![],
            network: None,
        })
    );
    // lower-case instructions and `as`
    let d = p("from alpine as Build\nfrom build\n");
    assert_eq!(d.stages[0].name.as_deref(), Some("build"));
}

#[test]
fn env_and_label() {
    assert_eq!(one("ENV A b c"), Kind::Env(vec![kv("A", "b c", true)]));
    assert_eq!(
        one("ENV A=1 B=\"two words\" C='x y' D=a\\ b"),
        Kind::Env(vec![
            kv("A", "1", false),
            kv("B", "\"two words\"", false),
            kv("C", "'x y'", false),
            kv("D", "a\\ b", false),
        ])
    );
    assert_eq!(
        one("LABEL \"com.x.y\"=\"v 1\" multi.line=a"),
        Kind::Label(vec![
            kv("\"com.x.y\"", "\"v 1\"", false),
            kv("multi.line", "a", false)
        ])
    );
    let pre = "Dockerfile:2: dockerfile parse error on line 2: ";
    assert_eq!(
        err("FROM a\nENV A\n"),
        format!("{pre}ENV must have two arguments")
    );
    assert_eq!(
        err("FROM a\nENV\n"),
        format!("{pre}ENV requires at least one argument")
    );
    assert_eq!(
        err("FROM a\nENV =x\n"),
        format!("{pre}ENV names can not be blank")
    );
    assert_eq!(
        err("FROM a\nLABEL =x\n"),
        format!("{pre}LABEL names can not be blank")
    );
    assert_eq!(
        err("FROM a\nENV A=1 B\n"),
        format!("{pre}Syntax error - can't find = in \"B\". Must be of the form: name=value")
    );
}

#[test]
fn arg() {
    assert_eq!(
        one("ARG A B=2 C=\"x y\""),
        Kind::Arg(vec![
            ArgDecl {
                name: "A".into(),
                default: None
            },
            ArgDecl {
                name: "B".into(),
                default: Some("2".into())
            },
            ArgDecl {
                name: "C".into(),
                default: Some("\"x y\"".into())
            },
        ])
    );
    assert_eq!(
        one("ARG E="),
        Kind::Arg(vec![ArgDecl {
            name: "E".into(),
            default: Some(String::new())
        }])
    );
    assert_eq!(
        err("FROM a\nARG =1\n"),
        "Dockerfile:2: dockerfile parse error on line 2: ARG names can not be blank"
    );
    assert_eq!(
        err("FROM a\nARG\n"),
        "Dockerfile:2: dockerfile parse error on line 2: ARG requires at least one argument"
    );
}

#[test]
fn single_argument_instructions() {
    assert_eq!(one("WORKDIR /a b"), Kind::Workdir("/a b".into()));
    assert_eq!(one("USER 1000:1000"), Kind::User("1000:1000".into()));
    assert_eq!(
        one("STOPSIGNAL SIGTERM"),
        Kind::StopSignal("SIGTERM".into())
    );
    assert_eq!(
        one("MAINTAINER Jo <jo@x>"),
        Kind::Maintainer("Jo <jo@x>".into())
    );
    for i in ["WORKDIR", "USER", "STOPSIGNAL", "MAINTAINER"] {
        assert_eq!(
            err(&format!("FROM a\n{i}\n")),
            format!(
                "Dockerfile:2: dockerfile parse error on line 2: {i} requires exactly one argument"
            )
        );
    }
}

#[test]
fn expose_and_volume() {
    assert_eq!(
        one("EXPOSE 80 53/udp $P"),
        Kind::Expose(s(&["80", "53/udp", "$P"]))
    );
    assert_eq!(
        one("VOLUME [\"/a\", \"/b c\"]"),
        Kind::Volume(s(&["/a", "/b c"]))
    );
    assert_eq!(one("VOLUME /a /b"), Kind::Volume(s(&["/a", "/b"])));
    assert_eq!(
        err("FROM a\nVOLUME [\"\"]\n"),
        "Dockerfile:2: dockerfile parse error on line 2: VOLUME specified can not be an empty string"
    );
    assert_eq!(
        err("FROM a\nEXPOSE\n"),
        "Dockerfile:2: dockerfile parse error on line 2: EXPOSE requires at least one argument"
    );
    let tcp = |n| Port {
        number: n,
        proto: Proto::Tcp,
    };
    assert_eq!(parse_port("80").unwrap(), [tcp(80)]);
    assert_eq!(
        parse_port("8000-8002").unwrap(),
        [tcp(8000), tcp(8001), tcp(8002)]
    );
    assert_eq!(parse_port("53/UDP").unwrap()[0].to_string(), "53/udp");
    assert_eq!(parse_port("1/sctp").unwrap()[0].proto, Proto::Sctp);
    assert_eq!(parse_port("80/xyz").unwrap_err(), "invalid proto: xyz");
    assert_eq!(
        parse_port("http").unwrap_err(),
        "invalid containerPort: http"
    );
    assert_eq!(parse_port("0").unwrap_err(), "invalid containerPort: 0");
    assert!(parse_port("9-8").is_err());
    assert!(parse_port("8080:80")
        .unwrap_err()
        .contains("container ports only"));
}

#[test]
fn shell_stopsignal_maintainer() {
    assert_eq!(
        one("SHELL [\"/bin/bash\", \"-c\"]"),
        Kind::Shell(s(&["/bin/bash", "-c"]))
    );
    assert_eq!(
        err("FROM a\nSHELL /bin/bash -c\n"),
        "Dockerfile:2: dockerfile parse error on line 2: SHELL requires the arguments to be in JSON form"
    );
    assert_eq!(
        err("FROM a\nSHELL []\n"),
        "Dockerfile:2: dockerfile parse error on line 2: SHELL requires at least one argument"
    );
}

#[test]
fn healthcheck() {
    assert_eq!(
        one("HEALTHCHECK NONE"),
        Kind::Healthcheck(Healthcheck::None)
    );
    assert_eq!(
        one("healthcheck none"),
        Kind::Healthcheck(Healthcheck::None)
    );
    assert_eq!(
        one("HEALTHCHECK --interval=5s --timeout=1m30s --start-period=100ms --start-interval=2s --retries=4 CMD curl -f http://x/ || exit 1"),
        Kind::Healthcheck(Healthcheck::Check {
            test: s(&["CMD-SHELL", "curl -f http://x/ || exit 1"]),
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(90),
            start_period: Duration::from_millis(100),
            start_interval: Duration::from_secs(2),
            retries: 4,
        })
    );
    assert_eq!(
        one("HEALTHCHECK CMD [\"/bin/check\", \"-q\"]"),
        Kind::Healthcheck(Healthcheck::Check {
            test: s(&["CMD", "/bin/check", "-q"]),
            interval: Duration::ZERO,
            timeout: Duration::ZERO,
            start_period: Duration::ZERO,
            start_interval: Duration::ZERO,
            retries: 0,
        })
    );
    let pre = "Dockerfile:2: dockerfile parse error on line 2: ";
    let e = |t: &str| err(&format!("FROM a\n{t}\n"));
    assert_eq!(
        e("HEALTHCHECK"),
        format!("{pre}HEALTHCHECK requires at least one argument")
    );
    assert_eq!(
        e("HEALTHCHECK NONE x"),
        format!("{pre}HEALTHCHECK NONE takes no arguments")
    );
    assert_eq!(
        e("HEALTHCHECK --interval=1s NONE"),
        format!("{pre}HEALTHCHECK NONE takes no options")
    );
    assert_eq!(
        e("HEALTHCHECK CMD"),
        format!("{pre}Missing command after HEALTHCHECK CMD")
    );
    assert_eq!(
        e("HEALTHCHECK RUN x"),
        format!("{pre}Unknown type \"RUN\" in HEALTHCHECK (try CMD)")
    );
    assert_eq!(
        e("HEALTHCHECK --interval=10us CMD x"),
        format!("{pre}Interval \"interval\" cannot be less than 1ms")
    );
    assert_eq!(
        e("HEALTHCHECK --timeout=5 CMD x"),
        format!("{pre}time: missing unit in duration \"5\"")
    );
    assert_eq!(
        e("HEALTHCHECK --timeout=5y CMD x"),
        format!("{pre}time: unknown unit \"y\" in duration \"5y\"")
    );
    assert_eq!(
        e("HEALTHCHECK --retries=-1 CMD x"),
        format!("{pre}--retries cannot be negative (-1)")
    );
    assert_eq!(
        e("HEALTHCHECK --retris=1 CMD x"),
        format!("{pre}unknown flag: --retris (did you mean retries?)")
    );
}

#[test]
fn go_durations() {
    let d = |s: &str| parse_go_duration(s).unwrap().1;
    assert_eq!(d("1h2m3s"), Duration::from_secs(3723));
    assert_eq!(d("1.5s"), Duration::from_millis(1500));
    assert_eq!(d("250us"), Duration::from_micros(250));
    assert_eq!(d("0"), Duration::ZERO);
    assert!(parse_go_duration("-1s").unwrap().0);
    assert_eq!(
        parse_go_duration("").unwrap_err(),
        "time: invalid duration \"\""
    );
    assert_eq!(
        parse_go_duration("s").unwrap_err(),
        "time: invalid duration \"s\""
    );
}

#[test]
fn copy_add() {
    let Kind::Copy(c) = one("COPY --from=0 a b* /dst/") else {
        panic!()
    };
    assert_eq!(c.from.as_deref(), Some("0"));
    assert_eq!(c.sources, s(&["a", "b*"]));
    assert_eq!(c.dest, "/dst/");
    let Kind::Copy(c) = one("COPY [\"a b\", \"/d e/\"]") else {
        panic!()
    };
    assert_eq!(c.sources, s(&["a b"]));
    assert_eq!(c.dest, "/d e/");
    let Kind::Add(a) = one("ADD --checksum=sha256:abc https://x/y.tgz /y") else {
        panic!()
    };
    assert_eq!(a.checksum.as_deref(), Some("sha256:abc"));
    let pre = "Dockerfile:2: dockerfile parse error on line 2: ";
    assert_eq!(
        err("FROM a\nCOPY a\n"),
        format!("{pre}COPY requires at least two arguments, but only one was provided. Destination could not be determined")
    );
    assert_eq!(
        err("FROM a\nCOPY --from=$X a b\n"),
        format!("{pre}variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround")
    );
}

#[test]
fn heredocs_run() {
    let d = p("FROM a\nRUN <<EOF\necho $HOME\n  # not a comment here\nEOF\nUSER x\n");
    let ins = &d.stages[0].instructions[0];
    assert_eq!((ins.line, ins.end_line), (2, 5));
    let Kind::Run(r) = &ins.kind else { panic!() };
    assert_eq!(r.heredocs.len(), 1);
    assert_eq!(r.heredocs[0].name, "EOF");
    assert!(r.heredocs[0].expand);
    assert_eq!(
        r.heredocs[0].content,
        "echo $HOME\n  # not a comment here\n"
    );
    assert_eq!(
        r.script(),
        RunScript::Inline("echo $HOME\n  # not a comment here\n".into())
    );
    assert_eq!(d.stages[0].instructions[1].line, 6);

    // shebang
    let Kind::Run(r) = one("RUN <<'PY'\n#!/usr/bin/env python3\nprint(1)\nPY") else {
        panic!()
    };
    assert!(!r.heredocs[0].expand);
    assert_eq!(
        r.script(),
        RunScript::Shebang {
            name: "PY".into(),
            body: "#!/usr/bin/env python3\nprint(1)\n".into()
        }
    );
    // chomp: leading tabs go, in the body and before the terminator
    let Kind::Run(r) = one("RUN <<-EOT\n\techo a\n\t\techo b\n\tEOT") else {
        panic!()
    };
    assert_eq!(r.heredocs[0].content, "\techo a\n\t\techo b\n");
    assert_eq!(r.script(), RunScript::Inline("echo a\necho b\n".into()));
    // several heredocs, a command around them
    let Kind::Run(r) = one("RUN <<A cat > /a && <<\"B\" cat > /b\nfirst\nA\nsecond\nB") else {
        panic!()
    };
    assert_eq!(r.heredocs.len(), 2);
    assert!(r.heredocs[0].expand);
    assert!(!r.heredocs[1].expand);
    assert_eq!(
        r.script(),
        RunScript::Shell("<<A cat > /a && <<\"B\" cat > /b\nfirst\nA\nsecond\nB".into())
    );
    // partially quoted delimiter, fd
    let Kind::Run(r) = one("RUN 3<<E\"O\"F cat <&3\nx\nEOF") else {
        panic!()
    };
    assert_eq!(r.heredocs[0].name, "EOF");
    assert_eq!(r.heredocs[0].fd, 3);
    assert!(!r.heredocs[0].expand);
    // not heredocs: JSON form, `cat<<EOF`, quoted
    let Kind::Run(r) = one("RUN [\"sh\", \"-c\", \"cat <<EOF\"]") else {
        panic!()
    };
    assert!(r.heredocs.is_empty());
    let Kind::Run(r) = one("RUN echo \"<<EOF\"") else {
        panic!()
    };
    assert!(r.heredocs.is_empty());
    assert_eq!(
        err("FROM a\nRUN cat<<EOF\nhello\nEOF\n"),
        "Dockerfile:3: dockerfile parse error on line 3: unknown instruction: hello (did you mean shell?)"
    );
    assert_eq!(
        err("FROM a\nRUN <<EOF\nnever ends\n"),
        "Dockerfile:2: dockerfile parse error on line 2: unterminated heredoc"
    );
}

#[test]
fn heredocs_copy() {
    let Kind::Copy(c) =
        one("COPY --chmod=755 <<one <<-\"two\" extra /dst/\nhello $X\none\n\tline\n\ttwo")
    else {
        panic!()
    };
    assert_eq!(c.sources, s(&["extra"]));
    assert_eq!(c.dest, "/dst/");
    assert_eq!(c.inline.len(), 2);
    assert_eq!(c.inline[0].name, "one");
    assert_eq!(c.inline[0].content, "hello $X\n");
    assert!(c.inline[0].expand);
    assert_eq!(c.inline[1].name, "two");
    assert_eq!(c.inline[1].content, "line\n");
    assert!(!c.inline[1].expand);
    assert_eq!(
        err("FROM a\nCOPY a <<EOF\nx\nEOF\n"),
        "Dockerfile:2: dockerfile parse error on line 2: COPY cannot accept a heredoc as a destination"
    );
}

#[test]
fn onbuild() {
    let Kind::Onbuild(o) = one("ONBUILD RUN --network=none make") else {
        panic!()
    };
    assert_eq!(o.expression, "RUN --network=none make");
    let Kind::Run(r) = &o.trigger.kind else {
        panic!()
    };
    assert_eq!(r.network, Some(NetworkMode::None));
    let d = p("FROM a\n\nONBUILD RUN a \\\n  b\n");
    let Kind::Onbuild(o) = &d.stages[0].instructions[0].kind else {
        panic!()
    };
    assert_eq!((o.trigger.line, o.trigger.end_line), (3, 4));
    let Kind::Onbuild(o) = one("onbuild COPY <<EOF /x\nhi\nEOF") else {
        panic!()
    };
    assert_eq!(o.expression, "COPY <<EOF /x\nhi\nEOF");
    let Kind::Copy(c) = &o.trigger.kind else {
        panic!()
    };
    assert_eq!(c.inline[0].content, "hi\n");
    let pre = "Dockerfile:2: dockerfile parse error on line 2: ";
    let e = |t: &str| err(&format!("FROM a\n{t}\n"));
    assert_eq!(
        e("ONBUILD ONBUILD RUN x"),
        format!("{pre}Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    );
    assert_eq!(
        e("ONBUILD FROM x"),
        format!("{pre}FROM isn't allowed as an ONBUILD trigger")
    );
    assert_eq!(
        e("ONBUILD maintainer x"),
        format!("{pre}MAINTAINER isn't allowed as an ONBUILD trigger")
    );
    assert_eq!(
        e("ONBUILD"),
        format!("{pre}ONBUILD requires at least one argument")
    );
    assert_eq!(
        e("ONBUILD BOGUS x"),
        format!("{pre}unknown instruction: BOGUS")
    );
}

#[test]
fn onbuild_triggers_in_a_child_build() {
    let Kind::Onbuild(o) = one("ONBUILD COPY <<EOF /x\nhi $A\nEOF") else {
        panic!()
    };
    let t = parse_trigger("Dockerfile", 4, &o.expression).unwrap();
    assert_eq!(t.line, 4);
    assert_eq!(t.kind, o.trigger.kind);
    let t = parse_trigger("Dockerfile", 1, "RUN make \\\n  install").unwrap();
    let Kind::Run(r) = t.kind else { panic!() };
    assert_eq!(r.command, CommandLine::Shell("make   install".into()));
    assert_eq!(
        parse_trigger("Dockerfile", 2, "RUN a\nRUN b")
            .unwrap_err()
            .to_string(),
        "Dockerfile:2: onbuild trigger should be a single expression"
    );
    assert_eq!(
        parse_trigger("Dockerfile", 2, "FROM x")
            .unwrap_err()
            .to_string(),
        "Dockerfile:2: FROM isn't allowed as an ONBUILD trigger"
    );
    assert_eq!(
        parse_trigger("Dockerfile", 3, "BOGUS x")
            .unwrap_err()
            .to_string(),
        "Dockerfile:3: onbuild trigger \"BOGUS x\": unknown instruction: BOGUS"
    );
}

#[test]
fn words_and_flags_lexing() {
    assert_eq!(
        parse_words("a 'b c' \"d\\\" e\" f\\ g", '\\'),
        s(&["a", "'b c'", "\"d\\\" e\"", "f\\ g"])
    );
    assert_eq!(parse_words("  ", '\\'), Vec::<String>::new());
    assert_eq!(parse_words("a=\"\"", '\\'), s(&["a=\"\""]));
    let (rest, flags) = extract_flags("--a=1 --b='x y' --c rest of line");
    assert_eq!(flags, s(&["--a=1", "--b=x y", "--c"]));
    assert_eq!(rest, "rest of line");
    let (rest, flags) = extract_flags("--only");
    assert_eq!((rest.as_str(), flags), ("", s(&["--only"])));
}

#[test]
fn plans() {
    let d = p("ARG IMG=busybox\nFROM $IMG AS base\nFROM base AS a\nRUN x\nFROM scratch AS b\nFROM golang AS c\nRUN --mount=from=b,target=/b true\nCOPY --from=0 /x /y\nFROM scratch AS unused\nFROM c\nCOPY --from=a /a /a\nCOPY --from=alpine:3 /etc/os-release /\n");
    let names: Vec<String> = d
        .stages
        .iter()
        .map(|s| s.base.replace("$IMG", "busybox"))
        .collect();
    let plan = d.plan(None, &names).unwrap();
    assert_eq!(plan.target, 5);
    let order: Vec<usize> = plan.stages.iter().map(|s| s.index).collect();
    assert_eq!(order, [0, 1, 2, 3, 5]);
    let last = plan.stages.last().unwrap();
    assert_eq!(last.base, Base::Stage(3));
    assert_eq!(last.deps, [3, 1]);
    assert_eq!(last.images, s(&["alpine:3"]));
    assert_eq!(plan.stages[0].base, Base::Image("busybox".into()));
    let plan = d.plan(Some("A"), &names).unwrap();
    assert_eq!(
        plan.stages.iter().map(|s| s.index).collect::<Vec<_>>(),
        [0, 1]
    );
    let plan = d.plan(Some("b"), &names).unwrap();
    assert_eq!(plan.stages[0].base, Base::Scratch);
    assert_eq!(
        d.plan(Some("nope"), &names).unwrap_err().to_string(),
        "Dockerfile: target stage \"nope\" could not be found"
    );
    // FROM a later stage's name is an image
    let d = p("FROM later AS first\nFROM scratch AS later\n");
    assert_eq!(
        d.plan(Some("first"), &s(&["later", "scratch"]))
            .unwrap()
            .stages[0]
            .base,
        Base::Image("later".into())
    );
    // cycles and bad indexes
    let d = p("FROM scratch AS a\nCOPY --from=b / /\nFROM scratch AS b\nCOPY --from=a / /\n");
    assert_eq!(
        d.plan(None, &s(&["scratch", "scratch"]))
            .unwrap_err()
            .to_string(),
        "Dockerfile:3: circular dependency detected on stage: b"
    );
    let d = p("FROM scratch\nCOPY --from=0 / /\n");
    assert!(d
        .plan(None, &s(&["scratch"]))
        .unwrap_err()
        .to_string()
        .contains("circular dependency detected on stage: stage-0"));
    let d = p("FROM scratch\nCOPY --from=7 / /\n");
    assert_eq!(
        d.plan(None, &s(&["scratch"])).unwrap_err().to_string(),
        "Dockerfile:2: invalid stage index 7"
    );
}

#[test]
fn whole_dockerfile_lines() {
    let text = "# syntax=docker/dockerfile:1\nARG V=1\n\nFROM alpine:3.20 AS build\nWORKDIR /src\nCOPY . .\nRUN --mount=type=cache,target=/root/.cache \\\n    make\n\nFROM scratch\nCOPY --from=build /src/out /out\nENV A=1\nEXPOSE 80\nVOLUME /data\nLABEL x=y\nUSER 1000\nSTOPSIGNAL SIGINT\nHEALTHCHECK NONE\nSHELL [\"/bin/sh\", \"-c\"]\nONBUILD RUN x\nMAINTAINER me\nENTRYPOINT [\"/out\"]\nCMD [\"--help\"]\n";
    let d = p(text);
    let lines: Vec<(usize, &str)> = d
        .stages
        .iter()
        .flat_map(|s| s.instructions.iter().map(|i| (i.line, i.kind.name())))
        .collect();
    assert_eq!(
        lines,
        [
            (5, "WORKDIR"),
            (6, "COPY"),
            (7, "RUN"),
            (11, "COPY"),
            (12, "ENV"),
            (13, "EXPOSE"),
            (14, "VOLUME"),
            (15, "LABEL"),
            (16, "USER"),
            (17, "STOPSIGNAL"),
            (18, "HEALTHCHECK"),
            (19, "SHELL"),
            (20, "ONBUILD"),
            (21, "MAINTAINER"),
            (22, "ENTRYPOINT"),
            (23, "CMD"),
        ]
    );
    assert_eq!(d.global_args[0].line, 2);
    assert_eq!((d.stages[0].line, d.stages[1].line), (4, 10));
}
