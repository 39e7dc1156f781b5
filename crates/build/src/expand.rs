//! Variable substitution as BuildKit does it at dispatch time, with the
//! scoping rules of ARG and ENV:
//!
//! - global ARGs (before the first FROM) and the automatic platform args
//!   are seen by FROM only, unless a stage declares `ARG NAME` again;
//! - a `--build-arg` replaces a default, which is then not evaluated;
//! - ENV wins over ARG of the same name, whatever their order;
//! - the proxy args (`HTTP_PROXY` ...) reach RUN's environment without a
//!   declaration, but substitution only after an `ARG`;
//! - the instructions that substitute are those with an `Expand` in
//!   BuildKit: ENV, ARG defaults, LABEL, WORKDIR, USER, VOLUME, STOPSIGNAL,
//!   EXPOSE (then split again), COPY/ADD (sources, destination, `--chown`,
//!   `--chmod`, `--checksum`, unquoted heredoc bodies), RUN's `--mount`
//!   values, and FROM (its image and `--platform`, from global ARGs).
//!   RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK, MAINTAINER and ONBUILD are
//!   left to the shell or to the child build.

pub mod lex;

use std::collections::{BTreeMap, BTreeSet};

pub use lex::{lookup, Lexer, NoVars, Vars};

use crate::dockerfile::{
    parse_port, ArgDecl, CopyAdd, Dockerfile, Error, Heredoc, Instruction, KeyValue, Kind, Mount,
    Plan, Port, Run, Stage,
};
use crate::dockerignore::clean_path;

/// The args docker passes to RUN without an ARG (any of these spellings).
pub const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The PATH BuildKit gives a stage whose base sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// The build's args: `--build-arg` values and the automatic ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildArgs {
    /// `--build-arg NAME=VALUE`.
    pub values: BTreeMap<String, String>,
    /// BUILDPLATFORM, TARGETOS, ... (see [`BuildArgs::with_platforms`]);
    /// a `--build-arg` of the same name replaces one.
    pub automatic: BTreeMap<String, String>,
}

impl BuildArgs {
    pub fn new(values: BTreeMap<String, String>) -> BuildArgs {
        BuildArgs {
            values,
            automatic: BTreeMap::new(),
        }
    }

    /// Adds BuildKit's automatic platform args.
    pub fn with_platforms(mut self, build: &Platform, target: &Platform) -> BuildArgs {
        for (prefix, p) in [("BUILD", build), ("TARGET", target)] {
            let a = &mut self.automatic;
            a.insert(format!("{prefix}PLATFORM"), p.to_string());
            a.insert(format!("{prefix}OS"), p.os.clone());
            a.insert(format!("{prefix}ARCH"), p.arch.clone());
            a.insert(
                format!("{prefix}VARIANT"),
                p.variant.clone().unwrap_or_default(),
            );
        }
        self
    }

    /// The value of an automatic arg, a build arg replacing it.
    fn automatic(&self, name: &str) -> Option<&str> {
        self.automatic
            .get(name)
            .map(|v| self.values.get(name).unwrap_or(v).as_str())
    }

    /// `--build-arg` names that no ARG of the Dockerfile declares (docker's
    /// classic builder warned "One or more build-args [...] were not
    /// consumed"); proxy args and automatic args are always consumed.
    pub fn unconsumed(&self, df: &Dockerfile) -> Vec<String> {
        let mut declared = BTreeSet::new();
        let all = df
            .global_args
            .iter()
            .chain(df.stages.iter().flat_map(|s| s.instructions.iter()));
        for ins in all {
            if let Kind::Arg(decls) = &ins.kind {
                declared.extend(decls.iter().map(|d| d.name.as_str()));
            }
        }
        self.values
            .keys()
            .filter(|k| {
                !declared.contains(k.as_str())
                    && !PROXY_ARGS.contains(&k.as_str())
                    && !self.automatic.contains_key(k.as_str())
            })
            .cloned()
            .collect()
    }
}

fn at(file: &str, line: usize, message: String) -> Error {
    Error::At {
        file: file.to_string(),
        line,
        message,
    }
}

/// The global scope: automatic args and the ARGs before the first FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalArgs {
    file: String,
    escape: char,
    vars: Vec<(String, String)>,
}

impl GlobalArgs {
    pub fn resolve(df: &Dockerfile, args: &BuildArgs) -> Result<GlobalArgs, Error> {
        let lx = Lexer::new(df.directives.escape);
        let mut vars: Vec<(String, String)> = args
            .automatic
            .keys()
            .filter_map(|k| Some((k.clone(), args.automatic(k)?.to_string())))
            .collect();
        for ins in &df.global_args {
            let Kind::Arg(decls) = &ins.kind else {
                continue;
            };
            for d in decls {
                let value = match (args.values.get(&d.name), &d.default) {
                    (Some(v), _) => Some(v.clone()),
                    (None, Some(def)) => Some(
                        lx.process_word(def, &vars)
                            .map_err(|m| at(&df.file, ins.line, m))?,
                    ),
                    (None, None) => None,
                };
                if let Some(v) = value {
                    vars.push((d.name.clone(), v));
                }
            }
        }
        Ok(GlobalArgs {
            file: df.file.clone(),
            escape: df.directives.escape,
            vars,
        })
    }

    /// A global value (a declared global ARG or an automatic arg).
    pub fn get(&self, name: &str) -> Option<&str> {
        lookup(&self.vars, name)
    }

    /// The stage's base name and `--platform` with global ARGs substituted.
    pub fn expand_from(&self, stage: &Stage) -> Result<(String, Option<String>), Error> {
        let lx = Lexer::new(self.escape);
        let err = |m: String| at(&self.file, stage.line, m);
        let base = lx.process_word(&stage.base, &self.vars).map_err(err)?;
        if base.is_empty() {
            return Err(err(format!(
                "base name ({}) should not be blank",
                stage.base
            )));
        }
        let platform = match &stage.platform {
            None => None,
            Some(p) => Some(lx.process_word(p, &self.vars).map_err(err)?),
        };
        Ok((base, platform))
    }

    /// Every stage's substituted base name, for [`Dockerfile::plan`].
    pub fn base_names(&self, df: &Dockerfile) -> Result<Vec<String>, Error> {
        df.stages
            .iter()
            .map(|s| self.expand_from(s).map(|(b, _)| b))
            .collect()
    }
}

/// Resolves the global args and plans the stages `target` needs.
pub fn plan(
    df: &Dockerfile,
    args: &BuildArgs,
    target: Option<&str>,
) -> Result<(GlobalArgs, Plan), Error> {
    let globals = GlobalArgs::resolve(df, args)?;
    let bases = globals.base_names(df)?;
    let plan = df.plan(target, &bases)?;
    Ok((globals, plan))
}

/// A stage's variables while the builder walks its instructions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageEnv {
    file: String,
    escape: char,
    /// The image config's environment: the base's, then each ENV.
    pub env: Vec<(String, String)>,
    /// ARGs of the stage (and of its parent stage) that have a value.
    pub args: Vec<(String, String)>,
    /// The working directory, `/` when the base sets none.
    pub workdir: String,
}

impl Vars for StageEnv {
    fn get(&self, name: &str) -> Option<&str> {
        lookup(&self.env, name).or_else(|| lookup(&self.args, name))
    }
}

impl StageEnv {
    /// A stage on an image (or scratch) with this config environment and
    /// working directory; PATH is added when the base sets none.
    pub fn new(df: &Dockerfile, mut base_env: Vec<(String, String)>, workdir: &str) -> StageEnv {
        if lookup(&base_env, "PATH").is_none() {
            base_env.push(("PATH".into(), DEFAULT_PATH.into()));
        }
        StageEnv {
            file: df.file.clone(),
            escape: df.directives.escape,
            env: base_env,
            args: Vec::new(),
            workdir: if workdir.is_empty() {
                "/".into()
            } else {
                workdir.into()
            },
        }
    }

    /// A stage on an image whose config has `Env` (`NAME=value` strings)
    /// and `WorkingDir`.
    pub fn from_config(df: &Dockerfile, env: &[String], workdir: &str) -> StageEnv {
        let pairs = env
            .iter()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (e.clone(), String::new()),
            })
            .collect();
        StageEnv::new(df, pairs, workdir)
    }

    /// The environment as an image config's `Env`.
    pub fn config_env(&self) -> Vec<String> {
        self.env.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    /// STOPSIGNAL: substituted and checked as moby's `signal.ParseSignal`
    /// (a nonzero number, or a name with or without `SIG` in any case); the
    /// config keeps it as written.
    pub fn stop_signal(&self, line: usize, raw: &str) -> Result<String, Error> {
        let s = self.word(line, raw)?;
        let ok = match s.parse::<i64>() {
            Ok(n) => n != 0,
            Err(_) => {
                let up = s.to_ascii_uppercase();
                is_signal_name(up.strip_prefix("SIG").unwrap_or(&up))
            }
        };
        if !ok {
            return Err(self.err(line)(format!("invalid signal: {s}")));
        }
        Ok(s)
    }

    /// A stage `FROM` another stage: its environment, ARGs and directory.
    pub fn child(&self) -> StageEnv {
        self.clone()
    }

    fn err(&self, line: usize) -> impl Fn(String) -> Error + '_ {
        move |m| at(&self.file, line, m)
    }

    /// One word, as BuildKit's `ProcessWord`.
    pub fn word(&self, line: usize, word: &str) -> Result<String, Error> {
        Lexer::new(self.escape)
            .process_word(word, self)
            .map_err(self.err(line))
    }

    /// Words split after substitution, as BuildKit's `ProcessWords`.
    pub fn words(&self, line: usize, word: &str) -> Result<Vec<String>, Error> {
        Lexer::new(self.escape)
            .process_words(word, self)
            .map_err(self.err(line))
    }

    fn set(list: &mut Vec<(String, String)>, k: &str, v: String) {
        match list.iter_mut().find(|(n, _)| n == k) {
            Some(e) => e.1 = v,
            None => list.push((k.to_string(), v)),
        }
    }

    /// ENV: every pair substituted with the environment before the
    /// instruction (`ENV a=1 b=$a` sees the old `a`), then set in order.
    pub fn apply_env(
        &mut self,
        line: usize,
        kvs: &[KeyValue],
    ) -> Result<Vec<(String, String)>, Error> {
        let pairs = self.key_values(line, kvs)?;
        for (k, v) in &pairs {
            Self::set(&mut self.env, k, v.clone());
        }
        Ok(pairs)
    }

    fn key_values(&self, line: usize, kvs: &[KeyValue]) -> Result<Vec<(String, String)>, Error> {
        kvs.iter()
            .map(|kv| Ok((self.word(line, &kv.key)?, self.word(line, &kv.value)?)))
            .collect()
    }

    /// ARG in a stage: the build arg if given, else the substituted default,
    /// else the global ARG's value; names without any stay unset. Returns
    /// each name with its value, as the history entry shows them.
    pub fn apply_arg(
        &mut self,
        line: usize,
        decls: &[ArgDecl],
        globals: &GlobalArgs,
        args: &BuildArgs,
    ) -> Result<Vec<(String, Option<String>)>, Error> {
        let mut out = Vec::new();
        for d in decls {
            let value = match (args.values.get(&d.name), &d.default) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(def)) => Some(self.word(line, def)?),
                (None, None) => globals.get(&d.name).map(str::to_string),
            };
            if let Some(v) = &value {
                Self::set(&mut self.args, &d.name, v.clone());
            }
            out.push((d.name.clone(), value));
        }
        Ok(out)
    }

    /// WORKDIR: substituted, joined to the current directory when relative,
    /// cleaned; becomes the current directory.
    pub fn apply_workdir(&mut self, line: usize, path: &str) -> Result<String, Error> {
        let p = self.word(line, path)?;
        self.workdir = resolve_workdir(&self.workdir, &p);
        Ok(self.workdir.clone())
    }

    /// RUN's environment: ENV, then ARGs that ENV does not set, then the
    /// proxy build args not otherwise set.
    pub fn run_env(&self, args: &BuildArgs) -> Vec<(String, String)> {
        let mut out = self.env.clone();
        for (k, v) in &self.args {
            if lookup(&out, k).is_none() {
                out.push((k.clone(), v.clone()));
            }
        }
        for p in PROXY_ARGS {
            if let Some(v) = args.values.get(*p) {
                if lookup(&out, p).is_none() {
                    out.push((p.to_string(), v.clone()));
                }
            }
        }
        out
    }

    /// RUN's mounts typed after substituting their values.
    pub fn mounts(&self, line: usize, run: &Run) -> Result<Vec<Mount>, Error> {
        let lx = Lexer::new(self.escape);
        run.mount_specs
            .iter()
            .map(|s| {
                Mount::parse(s, &mut |v: &str| lx.process_word(v, self)).map_err(self.err(line))
            })
            .collect()
    }

    /// EXPOSE's ports after substitution and splitting.
    pub fn ports(&self, line: usize, words: &[String]) -> Result<Vec<Port>, Error> {
        let mut out = Vec::new();
        for w in words {
            for p in self.words(line, w)? {
                out.extend(parse_port(&p).map_err(self.err(line))?);
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The instruction with what docker substitutes substituted; the state
    /// is not changed. ARG is returned as written: its defaults are
    /// evaluated by `apply_arg` only when no build arg replaces them.
    pub fn expand(&self, ins: &Instruction) -> Result<Kind, Error> {
        let l = ins.line;
        let w = |s: &str| self.word(l, s);
        let opt = |s: &Option<String>| s.as_deref().map(w).transpose();
        Ok(match &ins.kind {
            Kind::Env(kvs) => Kind::Env(self.expand_kvs(l, kvs)?),
            Kind::Label(kvs) => Kind::Label(self.expand_kvs(l, kvs)?),
            Kind::Workdir(p) => Kind::Workdir(w(p)?),
            Kind::User(u) => Kind::User(w(u)?),
            Kind::StopSignal(s) => Kind::StopSignal(w(s)?),
            Kind::Volume(v) => Kind::Volume(v.iter().map(|s| w(s)).collect::<Result<_, _>>()?),
            Kind::Expose(p) => {
                let mut out = Vec::new();
                for x in p {
                    out.extend(self.words(l, x)?);
                }
                Kind::Expose(out)
            }
            Kind::Copy(c) | Kind::Add(c) => {
                let e = CopyAdd {
                    from: c.from.clone(),
                    sources: c.sources.iter().map(|s| w(s)).collect::<Result<_, _>>()?,
                    inline: c
                        .inline
                        .iter()
                        .map(|h| self.heredoc(l, h))
                        .collect::<Result<_, _>>()?,
                    dest: w(&c.dest)?,
                    chown: opt(&c.chown)?,
                    chmod: opt(&c.chmod)?,
                    link: c.link,
                    checksum: opt(&c.checksum)?,
                };
                if matches!(ins.kind, Kind::Copy(_)) {
                    Kind::Copy(e)
                } else {
                    Kind::Add(e)
                }
            }
            other => other.clone(),
        })
    }

    fn expand_kvs(&self, line: usize, kvs: &[KeyValue]) -> Result<Vec<KeyValue>, Error> {
        Ok(self
            .key_values(line, kvs)?
            .into_iter()
            .zip(kvs)
            .map(|((key, value), kv)| KeyValue {
                key,
                value,
                legacy: kv.legacy,
            })
            .collect())
    }

    /// A COPY/ADD heredoc body: substituted when its delimiter was not
    /// quoted, with quotes left alone and `\` as the escape (BuildKit's
    /// `ExpandRaw`).
    fn heredoc(&self, line: usize, h: &Heredoc) -> Result<Heredoc, Error> {
        if !h.expand {
            return Ok(h.clone());
        }
        let lx = Lexer {
            skip_process_quotes: true,
            ..Lexer::new('\\')
        };
        Ok(Heredoc {
            content: lx.process_word(&h.content, self).map_err(self.err(line))?,
            ..h.clone()
        })
    }
}

/// Linux's signal names as moby's `signal.SignalMap` has them.
fn is_signal_name(n: &str) -> bool {
    const NAMES: &[&str] = &[
        "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
        "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
        "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
        "RTMIN", "RTMAX",
    ];
    if NAMES.contains(&n) {
        return true;
    }
    let rt = |prefix: &str, sep: char| {
        n.strip_prefix(prefix)
            .and_then(|r| r.strip_prefix(sep))
            .and_then(|d| d.parse::<u8>().ok())
            .is_some_and(|d| (1..=15).contains(&d))
    };
    rt("RTMIN", '+') || rt("RTMAX", '-')
}

/// WORKDIR's path against the current one: relative paths are joined,
/// the result cleaned and absolute.
pub fn resolve_workdir(current: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{current}/{path}")
    };
    clean_path(&joined)
}

#[cfg(test)]
mod tests;
