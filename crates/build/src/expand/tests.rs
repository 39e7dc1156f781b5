use super::*;
use crate::dockerfile::{parse, Base, MountType};

fn df(text: &str) -> Dockerfile {
    parse("Dockerfile", text).unwrap()
}

fn args(kv: &[(&str, &str)]) -> BuildArgs {
    BuildArgs::new(
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// Walks stage `i` as the builder will: ARG, ENV and WORKDIR change the
/// scope; returns the scope and the other instructions expanded.
fn walk(d: &Dockerfile, i: usize, a: &BuildArgs) -> Result<(StageEnv, Vec<Kind>), Error> {
    let globals = GlobalArgs::resolve(d, a)?;
    let mut env = StageEnv::new(d, vec![("HOME".into(), "/root".into())], "");
    let mut out = Vec::new();
    for ins in &d.stages[i].instructions {
        match &ins.kind {
            Kind::Arg(decls) => {
                env.apply_arg(ins.line, decls, &globals, a)?;
            }
            Kind::Env(kvs) => {
                env.apply_env(ins.line, kvs)?;
            }
            Kind::Workdir(p) => {
                env.apply_workdir(ins.line, p)?;
            }
            _ => out.push(env.expand(ins)?),
        }
    }
    Ok((env, out))
}

fn user_of(kinds: &[Kind]) -> Vec<String> {
    kinds
        .iter()
        .filter_map(|k| match k {
            Kind::User(u) => Some(u.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn global_args_in_from() {
    let d = df("ARG BASE=alpine\nARG TAG=${BASE}-3\nARG PLAT\nFROM --platform=$TARGETPLATFORM ${BASE}:${TAG} AS x\nFROM $UNSET_BASE\n");
    let a = args(&[]).with_platforms(
        &Platform {
            os: "linux".into(),
            arch: "amd64".into(),
            variant: None,
        },
        &Platform {
            os: "linux".into(),
            arch: "arm".into(),
            variant: Some("v7".into()),
        },
    );
    let g = GlobalArgs::resolve(&d, &a).unwrap();
    assert_eq!(
        g.expand_from(&d.stages[0]).unwrap(),
        (
            "alpine:alpine-3".to_string(),
            Some("linux/arm/v7".to_string())
        )
    );
    assert_eq!(g.get("PLAT"), None);
    assert_eq!(g.get("TARGETVARIANT"), Some("v7"));
    assert_eq!(
        g.expand_from(&d.stages[1]).unwrap_err().to_string(),
        "Dockerfile:5: base name ($UNSET_BASE) should not be blank"
    );
    // a build arg replaces the default and an automatic arg
    let mut a2 = a.clone();
    a2.values.insert("BASE".into(), "debian".into());
    a2.values
        .insert("TARGETPLATFORM".into(), "linux/s390x".into());
    let g = GlobalArgs::resolve(&d, &a2).unwrap();
    assert_eq!(
        g.expand_from(&d.stages[0]).unwrap(),
        (
            "debian:debian-3".to_string(),
            Some("linux/s390x".to_string())
        )
    );
}

#[test]
fn build_arg_means_default_not_evaluated() {
    let d = df("ARG X=\"${NEEDED:?set NEEDED}\"\nFROM scratch\n");
    assert_eq!(
        GlobalArgs::resolve(&d, &args(&[])).unwrap_err().to_string(),
        "Dockerfile:1: failed to process \"\\\"${NEEDED:?set NEEDED}\\\"\": NEEDED: set NEEDED"
    );
    assert!(GlobalArgs::resolve(&d, &args(&[("X", "1")])).is_ok());
    let d = df("FROM scratch\nARG Y=${NEEDED:?}\n");
    assert_eq!(
        walk(&d, 0, &args(&[])).unwrap_err().to_string(),
        "Dockerfile:2: failed to process \"${NEEDED:?}\": NEEDED: is not allowed to be unset"
    );
    assert!(walk(&d, 0, &args(&[("Y", "y")])).is_ok());
}

#[test]
fn global_args_need_redeclaring_in_a_stage() {
    let d = df("ARG V=1\nARG W=2\nFROM scratch\nUSER a$V\nARG V\nUSER b$V\nARG W=3\nUSER c$W\n");
    let (_, k) = walk(&d, 0, &args(&[])).unwrap();
    assert_eq!(user_of(&k), ["a", "b1", "c3"]);
    let (_, k) = walk(&d, 0, &args(&[("V", "9"), ("W", "8")])).unwrap();
    assert_eq!(user_of(&k), ["a", "b9", "c8"]);
}

#[test]
fn env_wins_over_arg() {
    let d = df("FROM scratch\nARG A=arg\nUSER $A\nENV A=env\nUSER $A\nARG A=again\nUSER $A\n");
    let (env, k) = walk(&d, 0, &args(&[("A", "cli")])).unwrap();
    assert_eq!(user_of(&k), ["cli", "env", "env"]);
    let run = env.run_env(&args(&[]));
    assert_eq!(lookup(&run, "A"), Some("env"));
    assert_eq!(run.iter().filter(|(k, _)| k == "A").count(), 1);
}

#[test]
fn env_sees_values_from_before_the_instruction() {
    let d = df(
        "FROM scratch\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\nENV LEGACY a $abc c\n",
    );
    let (env, _) = walk(&d, 0, &args(&[])).unwrap();
    assert_eq!(lookup(&env.env, "def"), Some("hello"));
    assert_eq!(lookup(&env.env, "ghi"), Some("bye"));
    assert_eq!(lookup(&env.env, "LEGACY"), Some("a bye c"));
    assert_eq!(lookup(&env.env, "PATH"), Some(DEFAULT_PATH));
    // the base's PATH is kept
    let s = StageEnv::new(&d, vec![("PATH".into(), "/x".into())], "/w");
    assert_eq!(lookup(&s.env, "PATH"), Some("/x"));
    assert_eq!(s.workdir, "/w");
}

#[test]
fn args_in_one_line_see_each_other_and_children_inherit() {
    let d = df("FROM scratch AS a\nARG A=1 B=${A}2\nFROM a\nUSER $B\n");
    let a = args(&[]);
    let (parent, _) = walk(&d, 0, &a).unwrap();
    assert_eq!(lookup(&parent.args, "B"), Some("12"));
    let child = parent.child();
    assert_eq!(child.word(4, "$B").unwrap(), "12");
}

#[test]
fn proxy_args() {
    let d = df("FROM scratch\nUSER x$HTTP_PROXY\nARG https_proxy\nUSER y$https_proxy\n");
    let a = args(&[
        ("HTTP_PROXY", "http://p:3128"),
        ("https_proxy", "http://s:3128"),
        ("NOPE", "1"),
    ]);
    let (env, k) = walk(&d, 0, &a).unwrap();
    assert_eq!(user_of(&k), ["x", "yhttp://s:3128"]);
    let run = env.run_env(&a);
    assert_eq!(lookup(&run, "HTTP_PROXY"), Some("http://p:3128"));
    assert_eq!(lookup(&run, "https_proxy"), Some("http://s:3128"));
    assert_eq!(lookup(&run, "NOPE"), None);
    assert_eq!(a.unconsumed(&d), ["NOPE"]);
}

#[test]
fn what_each_instruction_expands() {
    let d = df(
        "FROM scratch\nENV D=/data P=\"80 443/udp\" U=app S=SIGTERM X=x\n\
        COPY --chown=$U:$U --chmod=0$X src/$X /dst/$X/\n\
        ADD --checksum=sha256:$X http://h/$X.tgz /t/\n\
        LABEL \"k$X\"=\"v $X\"\n\
        VOLUME $D /other\n\
        USER $U\n\
        STOPSIGNAL $S\n\
        EXPOSE $P 8080\n\
        RUN echo $X\n\
        CMD echo $X\n\
        ONBUILD USER $X\n\
        COPY <<A <<'B' /h/\n$X \"q\" \\$X\nA\n$X\nB\n",
    );
    let (env, k) = walk(&d, 0, &args(&[])).unwrap();
    let Kind::Copy(c) = &k[0] else {
        panic!("{k:?}")
    };
    assert_eq!(c.chown.as_deref(), Some("app:app"));
    assert_eq!(c.chmod.as_deref(), Some("0x"));
    assert_eq!(c.sources, ["src/x"]);
    assert_eq!(c.dest, "/dst/x/");
    let Kind::Add(a) = &k[1] else { panic!() };
    assert_eq!(a.checksum.as_deref(), Some("sha256:x"));
    assert_eq!(a.sources, ["http://h/x.tgz"]);
    let Kind::Label(l) = &k[2] else { panic!() };
    assert_eq!((l[0].key.as_str(), l[0].value.as_str()), ("kx", "v x"));
    assert_eq!(k[3], Kind::Volume(vec!["/data".into(), "/other".into()]));
    assert_eq!(k[4], Kind::User("app".into()));
    assert_eq!(k[5], Kind::StopSignal("SIGTERM".into()));
    assert_eq!(
        k[6],
        Kind::Expose(vec!["80".into(), "443/udp".into(), "8080".into()])
    );
    let Kind::Expose(words) = &d.stages[0].instructions[7].kind else {
        panic!()
    };
    let ports: Vec<String> = env
        .ports(9, words)
        .unwrap()
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(ports, ["80/tcp", "443/udp", "8080/tcp"]);
    // left to the shell or the child build
    assert_eq!(k[7], d.stages[0].instructions[8].kind);
    assert_eq!(k[8], d.stages[0].instructions[9].kind);
    assert_eq!(k[9], d.stages[0].instructions[10].kind);
    // heredoc bodies: unquoted delimiter expands, quotes kept, `\` escapes
    let Kind::Copy(h) = &k[10] else { panic!() };
    assert_eq!(h.inline[0].content, "x \"q\" $X\n");
    assert_eq!(h.inline[1].content, "$X\n");
}

#[test]
fn mounts_after_substitution() {
    let d = df("FROM scratch\nARG UID=1000\nRUN --mount=type=cache,target=$HOME/.cache,uid=$UID,id=c-${UID} true\nRUN --mount=type=cache,target=/x,uid=$NOPE true\n");
    let (env, _) = walk(&d, 0, &args(&[])).unwrap();
    let Kind::Run(r) = &d.stages[0].instructions[1].kind else {
        panic!()
    };
    let m = env.mounts(3, r).unwrap();
    assert_eq!(m[0].kind, MountType::Cache);
    assert_eq!(m[0].target.as_deref(), Some("/root/.cache"));
    assert_eq!(m[0].uid, Some(1000));
    assert_eq!(m[0].id.as_deref(), Some("c-1000"));
    let Kind::Run(r) = &d.stages[0].instructions[2].kind else {
        panic!()
    };
    assert_eq!(
        env.mounts(4, r).unwrap_err().to_string(),
        "Dockerfile:4: invalid value  for uid"
    );
}

#[test]
fn workdirs() {
    assert_eq!(resolve_workdir("/", "app"), "/app");
    assert_eq!(resolve_workdir("/a/b", "../c/./d/"), "/a/c/d");
    assert_eq!(resolve_workdir("/a", "/x//y/.."), "/x");
    assert_eq!(resolve_workdir("/a", "../../.."), "/");
    let d = df("FROM scratch\nENV DIR=srv\nWORKDIR /opt\nWORKDIR $DIR\nWORKDIR ${DIR}2\n");
    let (env, _) = walk(&d, 0, &args(&[])).unwrap();
    assert_eq!(env.workdir, "/opt/srv/srv2");
}

#[test]
fn escape_directive_applies_to_substitution() {
    let d = df("# escape=`\nFROM scratch\nENV A=a\nUSER `$A\\$A\n");
    let (_, k) = walk(&d, 0, &args(&[])).unwrap();
    assert_eq!(user_of(&k), ["$A\\a"]);
}

#[test]
fn plan_through_global_args() {
    let d = df("ARG SRC=build\nFROM scratch AS build\nFROM scratch AS other\nFROM ${SRC}\nRUN x\n");
    let (_, p) = plan(&d, &args(&[]), None).unwrap();
    assert_eq!(p.stages.iter().map(|s| s.index).collect::<Vec<_>>(), [0, 2]);
    assert_eq!(p.stages[1].base, Base::Stage(0));
    let (_, p) = plan(&d, &args(&[("SRC", "other")]), None).unwrap();
    assert_eq!(p.stages.iter().map(|s| s.index).collect::<Vec<_>>(), [1, 2]);
    let (_, p) = plan(&d, &args(&[("SRC", "busybox")]), None).unwrap();
    assert_eq!(p.stages.len(), 1);
    assert_eq!(p.stages[0].base, Base::Image("busybox".into()));
}

#[test]
fn config_env_and_stop_signals() {
    let d = df("FROM scratch\n");
    let env = StageEnv::from_config(&d, &["A=1=2".into(), "B".into(), "PATH=/p".into()], "/srv");
    assert_eq!(lookup(&env.env, "A"), Some("1=2"));
    assert_eq!(lookup(&env.env, "B"), Some(""));
    assert_eq!(env.config_env(), ["A=1=2", "B=", "PATH=/p"]);
    assert_eq!(env.workdir, "/srv");
    for ok in [
        "SIGTERM",
        "term",
        "SigKill",
        "9",
        "RTMIN+3",
        "SIGRTMAX-1",
        "USR2",
    ] {
        assert_eq!(env.stop_signal(2, ok).unwrap(), ok);
    }
    for bad in ["0", "SIGFOO", "", "RTMIN+16", "-"] {
        assert_eq!(
            env.stop_signal(2, bad).unwrap_err().to_string(),
            format!("Dockerfile:2: invalid signal: {bad}")
        );
    }
    let mut env = env;
    env.apply_env(
        3,
        &[crate::dockerfile::KeyValue {
            key: "S".into(),
            value: "SIGINT".into(),
            legacy: false,
        }],
    )
    .unwrap();
    assert_eq!(env.stop_signal(4, "$S").unwrap(), "SIGINT");
}
