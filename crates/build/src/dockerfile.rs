//! A Dockerfile parser that behaves as BuildKit's frontend: the line parser
//! of `frontend/dockerfile/parser` (directives, comments, continuations,
//! heredocs, JSON or shell forms, instruction flags) and the typed
//! instructions of `frontend/dockerfile/instructions`, then the split into
//! stages and the stages a target needs.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::expand::lex::{Lexer, NoVars};

/// A Dockerfile error: the file, the 1-based line where the instruction
/// starts, and docker's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// What BuildKit reports as `dockerfile parse error on line N: ...`.
    #[error("{file}:{line}: dockerfile parse error on line {line}: {message}")]
    Parse {
        file: String,
        line: usize,
        message: String,
    },
    /// A well-formed instruction or option that Berth cannot carry out.
    #[error("{file}:{line}: {message}")]
    Unsupported {
        file: String,
        line: usize,
        message: String,
    },
    /// Any other error tied to a line (stages, substitution).
    #[error("{file}:{line}: {message}")]
    At {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{file}: the Dockerfile cannot be empty")]
    EmptyFile { file: String },
    #[error("{file}: file with no instructions")]
    Empty { file: String },
    #[error("{file}: dockerfile contains no stages to build")]
    NoStages { file: String },
    #[error("{file}: target stage \"{target}\" could not be found")]
    TargetNotFound { file: String, target: String },
}

/// The parser directives found at the top of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// `# syntax=`: recorded; Berth has one frontend, its own.
    pub syntax: Option<String>,
    /// `# escape=`: `\` (the default) or a backtick.
    pub escape: char,
    /// `# check=`: BuildKit's linter settings, as written (see
    /// [`CheckOptions`]).
    pub check: Option<String>,
}

/// The `# check=` directive, as BuildKit's `ParseLintOptions` reads it:
/// `skip=<rules|all>;error=<bool>;experimental=<rules|all>`. Berth runs no
/// lint rules, so nothing is skipped or raised; the parser says so in a
/// warning instead of passing over it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckOptions {
    pub skip: Vec<String>,
    pub skip_all: bool,
    pub error: bool,
    pub experimental: Vec<String>,
    pub experimental_all: bool,
}

impl CheckOptions {
    pub fn parse(value: &str) -> Result<CheckOptions, String> {
        let mut o = CheckOptions::default();
        let value = value.trim();
        if value.is_empty() {
            return Ok(o);
        }
        let list =
            |v: &str| -> Vec<String> { v.split(',').map(|r| r.trim().to_string()).collect() };
        for part in value.splitn(3, ';') {
            let Some((k, v)) = part.split_once('=') else {
                return Err(format!("invalid check option {part:?}"));
            };
            let v = v.trim();
            match k.trim() {
                "skip" if v == "all" => o.skip_all = true,
                "skip" => o.skip = list(v),
                "experimental" if v == "all" => o.experimental_all = true,
                "experimental" => o.experimental = list(v),
                "error" => {
                    o.error = parse_go_bool(v).ok_or_else(|| {
                        format!("failed to parse check option {part:?}: strconv.ParseBool: parsing {v:?}: invalid syntax")
                    })?
                }
                k => return Err(format!("invalid check option {k:?}")),
            }
        }
        Ok(o)
    }
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            syntax: None,
            escape: '\\',
            check: None,
        }
    }
}

impl Directives {
    /// A `# syntax=` naming a frontend other than docker's own Dockerfile
    /// frontend (which this parser is), whose instructions Berth cannot know.
    pub fn foreign_syntax(&self) -> Option<&str> {
        let s = self.syntax.as_deref()?;
        let name = s.split(['@', ':']).next().unwrap_or(s);
        let name = name.strip_prefix("docker.io/").unwrap_or(name);
        match name {
            "docker/dockerfile" | "docker/dockerfile-upstream" => None,
            _ => Some(s),
        }
    }
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The name errors use (`Dockerfile`, `build/app.Dockerfile`, `-`).
    pub file: String,
    pub directives: Directives,
    /// The ARG instructions before the first FROM.
    pub global_args: Vec<Instruction>,
    pub stages: Vec<Stage>,
    /// What docker prints as warnings (empty continuation lines).
    pub warnings: Vec<String>,
}

/// One build stage: a FROM and the instructions up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub index: usize,
    /// The `AS` name, lowercased as BuildKit does.
    pub name: Option<String>,
    /// The base as written (ARGs not yet substituted).
    pub base: String,
    pub platform: Option<String>,
    pub line: usize,
    pub instructions: Vec<Instruction>,
}

impl Stage {
    /// The name BuildKit uses for the stage in messages.
    pub fn display_name(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => format!("stage-{}", self.index),
        }
    }
}

/// One instruction with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line where the instruction starts.
    pub line: usize,
    /// 1-based line where it ends (continuations and heredocs included).
    pub end_line: usize,
    /// The instruction's text with its continuations joined.
    pub original: String,
    pub kind: Kind,
}

/// The typed instructions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    From(From),
    Run(Run),
    Cmd(CommandLine),
    Entrypoint(CommandLine),
    Copy(CopyAdd),
    Add(CopyAdd),
    /// Keys and values as written; substitution happens at build time.
    Env(Vec<KeyValue>),
    Arg(Vec<ArgDecl>),
    Workdir(String),
    User(String),
    /// Port words as written (`80`, `53/udp`, `$PORT`).
    Expose(Vec<String>),
    Volume(Vec<String>),
    Label(Vec<KeyValue>),
    Healthcheck(Healthcheck),
    Shell(Vec<String>),
    StopSignal(String),
    Onbuild(Onbuild),
    Maintainer(String),
}

impl Kind {
    /// The instruction's name, upper case.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::From(_) => "FROM",
            Kind::Run(_) => "RUN",
            Kind::Cmd(_) => "CMD",
            Kind::Entrypoint(_) => "ENTRYPOINT",
            Kind::Copy(_) => "COPY",
            Kind::Add(_) => "ADD",
            Kind::Env(_) => "ENV",
            Kind::Arg(_) => "ARG",
            Kind::Workdir(_) => "WORKDIR",
            Kind::User(_) => "USER",
            Kind::Expose(_) => "EXPOSE",
            Kind::Volume(_) => "VOLUME",
            Kind::Label(_) => "LABEL",
            Kind::Healthcheck(_) => "HEALTHCHECK",
            Kind::Shell(_) => "SHELL",
            Kind::StopSignal(_) => "STOPSIGNAL",
            Kind::Onbuild(_) => "ONBUILD",
            Kind::Maintainer(_) => "MAINTAINER",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    pub base: String,
    pub name: Option<String>,
    pub platform: Option<String>,
}

/// Exec form (JSON) or shell form (one string for the stage's SHELL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    Exec(Vec<String>),
    Shell(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    /// Written in the legacy `KEY value` form.
    pub legacy: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    /// The default as written, if any.
    pub default: Option<String>,
}

/// A heredoc: `<<[-]NAME` on the instruction's line and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    pub name: String,
    /// The body as read, each line with its newline.
    pub content: String,
    /// No part of the delimiter was quoted: the body is expanded.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the body's lines.
    pub chomp: bool,
    /// The file descriptor written before `<<` (`3<<EOF`), 0 when none.
    pub fd: u32,
}

impl Heredoc {
    /// The body with `<<-` tab stripping applied.
    pub fn body(&self) -> String {
        if self.chomp {
            chomp_tabs(&self.content)
        } else {
            self.content.clone()
        }
    }
}

fn chomp_tabs(s: &str) -> String {
    s.split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub command: CommandLine,
    pub heredocs: Vec<Heredoc>,
    /// The `--mount` values as written; [`Run::mounts`] types them, and the
    /// builder types them again after substitution (BuildKit expands them).
    pub mount_specs: Vec<String>,
    pub network: Option<NetworkMode>,
}

/// What a RUN with heredocs hands to the shell, as BuildKit's dispatcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunScript {
    /// No heredoc: the command line as parsed.
    Plain(CommandLine),
    /// `RUN <<EOF` alone: the body is the `-c` script.
    Inline(String),
    /// `RUN <<EOF` alone with a `#!` body: written 0755 as NAME under a
    /// read-only mount at `/dev/pipes/` and run by path.
    Shebang { name: String, body: String },
    /// Anything else: the line and the bodies for the shell to read.
    Shell(String),
}

impl Run {
    pub fn mounts(&self) -> Result<Vec<Mount>, String> {
        self.mount_specs
            .iter()
            .map(|s| Mount::parse(s, &mut |v: &str| Ok(v.to_string())))
            .collect()
    }

    pub fn script(&self) -> RunScript {
        let CommandLine::Shell(line) = &self.command else {
            return RunScript::Plain(self.command.clone());
        };
        if self.heredocs.is_empty() {
            return RunScript::Plain(self.command.clone());
        }
        if self.heredocs.len() == 1 && parse_heredoc_word(line).ok().flatten().is_some() {
            let h = &self.heredocs[0];
            let body = h.body();
            if body.starts_with("#!") {
                return RunScript::Shebang {
                    name: h.name.clone(),
                    body,
                };
            }
            return RunScript::Inline(body);
        }
        let mut full = line.clone();
        for h in &self.heredocs {
            full.push('\n');
            full.push_str(&h.content);
            full.push_str(&h.name);
        }
        RunScript::Shell(full)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    Default,
    None,
    Host,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
}

impl MountType {
    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheSharing {
    Shared,
    Private,
    Locked,
}

/// A `RUN --mount=` as BuildKit's `parseMount` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub kind: MountType,
    /// `from=`: a stage name or index, or an image.
    pub from: Option<String>,
    pub source: Option<String>,
    pub target: Option<String>,
    pub readonly: bool,
    /// `id=`: the cache or secret id.
    pub id: Option<String>,
    /// Cache mounts only; `shared` when not given.
    pub sharing: Option<CacheSharing>,
    pub required: bool,
    /// tmpfs `size=` in bytes.
    pub size: Option<u64>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Secret mounts: also (or only) into this environment variable.
    pub env: Option<String>,
}

const MOUNT_KEYS: &[&str] = &[
    "type",
    "from",
    "source",
    "target",
    "readonly",
    "id",
    "sharing",
    "required",
    "size",
    "mode",
    "uid",
    "gid",
    "src",
    "dst",
    "destination",
    "ro",
    "rw",
    "readwrite",
    "env",
];

impl Mount {
    /// Types a mount spec after substituting each value with `expand`.
    pub fn parse(
        spec: &str,
        expand: &mut dyn FnMut(&str) -> Result<String, String>,
    ) -> Result<Mount, String> {
        let mut m = Mount {
            kind: MountType::Bind,
            from: None,
            source: None,
            target: None,
            readonly: false,
            id: None,
            sharing: None,
            required: false,
            size: None,
            mode: None,
            uid: None,
            gid: None,
            env: None,
        };
        let mut ro_auto = true;
        let secretish = |m: &Mount| m.kind == MountType::Secret;
        let unexpected = |k: &str, m: &Mount| {
            format!("unexpected key '{k}' for mount type '{}'", m.kind.as_str())
        };
        for field in csv_fields(spec)? {
            let (key, value) = match field.split_once('=') {
                Some((k, v)) => (k.to_ascii_lowercase(), v.to_string()),
                None => {
                    match field.to_ascii_lowercase().as_str() {
                        "readonly" | "ro" => {
                            m.readonly = true;
                            ro_auto = false;
                        }
                        "readwrite" | "rw" => {
                            m.readonly = false;
                            ro_auto = false;
                        }
                        "required" if secretish(&m) => m.required = true,
                        "required" => return Err(unexpected("required", &m)),
                        _ => {
                            return Err(format!("invalid field '{field}' must be a key=value pair"))
                        }
                    }
                    continue;
                }
            };
            let value = expand(&value)?;
            let bool_of =
                |v: &str| parse_go_bool(v).ok_or_else(|| format!("invalid value for {key}: {v}"));
            match key.as_str() {
                "type" => {
                    m.kind = match value.to_ascii_lowercase().as_str() {
                        "bind" => MountType::Bind,
                        "cache" => MountType::Cache,
                        "tmpfs" => MountType::Tmpfs,
                        "secret" => MountType::Secret,
                        "ssh" => {
                            return Err("mount type \"ssh\" is not supported: berth forwards no ssh agent into a build".into())
                        }
                        _ => {
                            return Err(with_suggestion(
                                format!("unsupported mount type {value:?}"),
                                &value,
                                &["bind", "cache", "tmpfs", "secret", "ssh"],
                                true,
                            ))
                        }
                    }
                }
                "from" => m.from = Some(value),
                "source" | "src" => m.source = Some(value),
                "target" | "dst" | "destination" => m.target = Some(value),
                "readonly" | "ro" => {
                    m.readonly = bool_of(&value)?;
                    ro_auto = false;
                }
                "readwrite" | "rw" => {
                    m.readonly = !bool_of(&value)?;
                    ro_auto = false;
                }
                "required" if secretish(&m) => m.required = bool_of(&value)?,
                "required" => return Err(unexpected(&key, &m)),
                "size" if m.kind == MountType::Tmpfs => {
                    m.size = Some(
                        parse_ram_bytes(&value)
                            .ok_or_else(|| format!("invalid value for {key}: {value}"))?,
                    )
                }
                "size" => return Err(unexpected(&key, &m)),
                "id" => m.id = Some(value),
                "sharing" => {
                    if m.kind != MountType::Cache {
                        return Err(format!(
                            "invalid cache sharing set for {} mount",
                            m.kind.as_str()
                        ));
                    }
                    m.sharing = Some(match value.to_ascii_lowercase().as_str() {
                        "shared" => CacheSharing::Shared,
                        "private" => CacheSharing::Private,
                        "locked" => CacheSharing::Locked,
                        _ => return Err(format!("unrecognized sharing mode {value:?}")),
                    })
                }
                "mode" => {
                    m.mode = Some(
                        u32::from_str_radix(&value, 8)
                            .map_err(|_| format!("invalid value {value} for mode"))?,
                    )
                }
                "uid" => {
                    m.uid = Some(
                        value
                            .parse()
                            .map_err(|_| format!("invalid value {value} for uid"))?,
                    )
                }
                "gid" => {
                    m.gid = Some(
                        value
                            .parse()
                            .map_err(|_| format!("invalid value {value} for gid"))?,
                    )
                }
                "env" => m.env = Some(value),
                _ => {
                    return Err(with_suggestion(
                        format!("unexpected key '{key}' in '{field}'"),
                        &key,
                        MOUNT_KEYS,
                        true,
                    ))
                }
            }
        }
        let file_info = matches!(m.kind, MountType::Secret | MountType::Cache);
        if !file_info {
            for (what, set) in [
                ("mode", m.mode.is_some()),
                ("uid", m.uid.is_some()),
                ("gid", m.gid.is_some()),
            ] {
                if set {
                    return Err(format!(
                        "{what} not allowed for {:?} type mounts",
                        m.kind.as_str()
                    ));
                }
            }
        }
        if ro_auto {
            m.readonly = !matches!(m.kind, MountType::Cache | MountType::Tmpfs);
        }
        if m.kind == MountType::Secret {
            if m.from.is_some() {
                return Err("secret mount should not have a from".into());
            }
            if m.source.is_none() && m.target.is_none() && m.id.is_none() {
                return Err("invalid secret mount. one of source, target required".into());
            }
            if m.source.is_some() && m.id.is_some() {
                return Err("both source and id can't be set".into());
            }
        }
        if m.kind == MountType::Cache && m.sharing.is_none() {
            m.sharing = Some(CacheSharing::Shared);
        }
        if m.target.is_none() && m.kind != MountType::Secret {
            return Err(format!("mount type {} requires a target", m.kind.as_str()));
        }
        Ok(m)
    }

    /// Where a secret is mounted: `target=`, else `/run/secrets/<id>`
    /// (none when it goes only into `env=`).
    pub fn secret_target(&self) -> Option<String> {
        if self.kind != MountType::Secret {
            return None;
        }
        if let Some(t) = &self.target {
            return Some(t.clone());
        }
        if self.env.is_some() {
            return None;
        }
        let id = self.secret_id()?;
        Some(format!(
            "/run/secrets/{}",
            id.rsplit('/').next().unwrap_or(&id)
        ))
    }

    /// The secret's id: `id=`, else `source=`, else the base name of
    /// `target=` (BuildKit's `dispatchSecret`).
    pub fn secret_id(&self) -> Option<String> {
        if self.kind != MountType::Secret {
            return None;
        }
        self.id.clone().or_else(|| {
            self.source.clone().or_else(|| {
                self.target
                    .as_ref()
                    .map(|t| t.rsplit('/').next().unwrap_or(t).to_string())
            })
        })
    }
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// docker's `units.RAMInBytes`: `64m`, `1.5g`, `512k`, `100` (binary units).
fn parse_ram_bytes(v: &str) -> Option<u64> {
    let v = v.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        "p" | "pb" | "pib" => 1 << 50,
        _ => return None,
    };
    Some((n * mult as f64) as u64)
}

/// Go's `encoding/csv` reading one record: fields split on `,`, a field
/// starting with `"` is quoted (`""` is a quote inside it).
fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => {
                        return Err(format!(
                        "failed to parse csv mounts: extraneous or missing \" in quoted-field: {s}"
                    ))
                    }
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    out.push(field);
                    return Ok(out);
                }
                Some(',') => {}
                Some(_) => {
                    return Err(format!(
                        "failed to parse csv mounts: extraneous or missing \" in quoted-field: {s}"
                    ))
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        out.push(field);
                        return Ok(out);
                    }
                    Some(',') => break,
                    Some('"') => {
                        return Err(format!(
                            "failed to parse csv mounts: bare \" in non-quoted-field: {s}"
                        ))
                    }
                    Some(c) => field.push(c),
                }
            }
        }
        out.push(field);
    }
}

/// COPY and ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyAdd {
    /// `--from=` (COPY only): a stage name or index, or an image.
    pub from: Option<String>,
    pub sources: Vec<String>,
    /// Heredoc sources: files named after their delimiter (bodies already
    /// tab-stripped for `<<-`).
    pub inline: Vec<Heredoc>,
    pub dest: String,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    /// `--checksum=` (ADD only).
    pub checksum: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    None,
    Check {
        /// `["CMD", args...]` or `["CMD-SHELL", line]`, as docker stores it.
        test: Vec<String>,
        interval: Duration,
        timeout: Duration,
        start_period: Duration,
        start_interval: Duration,
        retries: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Onbuild {
    /// The trigger, parsed (docker checks it only when a child uses it).
    pub trigger: Box<Instruction>,
    /// The trigger's text as stored in the image config's `OnBuild`.
    pub expression: String,
}

/// One port of EXPOSE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Port {
    pub number: u16,
    pub proto: Proto,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl std::fmt::Display for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = match self.proto {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        };
        write!(f, "{}/{p}", self.number)
    }
}

/// An EXPOSE word after substitution: `80`, `80/udp`, `8000-8002/tcp`.
pub fn parse_port(spec: &str) -> Result<Vec<Port>, String> {
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    let proto = match proto.as_str() {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        "sctp" => Proto::Sctp,
        _ => return Err(format!("invalid proto: {proto}")),
    };
    if ports.contains(':') {
        return Err(format!(
            "EXPOSE {spec}: an image exposes container ports only, publish host ports with run -p"
        ));
    }
    let num = |s: &str| {
        s.parse::<u16>()
            .ok()
            .filter(|n| *n != 0)
            .ok_or_else(|| format!("invalid containerPort: {ports}"))
    };
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(ports)?, num(ports)?),
    };
    if hi < lo {
        return Err(format!(
            "invalid range specified for container port: {ports}"
        ));
    }
    Ok((lo..=hi).map(|number| Port { number, proto }).collect())
}

/// Go's `time.ParseDuration`, for HEALTHCHECK's options.
pub fn parse_go_duration(s: &str) -> Result<(bool, Duration), String> {
    let bad = || format!("time: invalid duration {s:?}");
    let mut rest = s;
    let neg = rest.starts_with('-');
    rest = rest.strip_prefix(['-', '+']).unwrap_or(rest);
    if rest == "0" {
        return Ok((false, Duration::ZERO));
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if n == 0 || rest[..n] == *"." {
            return Err(bad());
        }
        let v: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..u];
        rest = &rest[u..];
        let nanos = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("time: missing unit in duration {s:?}")),
            _ => return Err(format!("time: unknown unit {unit:?} in duration {s:?}")),
        };
        total += v * nanos;
    }
    Ok((
        neg && total > 0.0,
        Duration::from_nanos(total.round() as u64),
    ))
}

// ---------------------------------------------------------------------------
// The line parser.

/// bufio.Scanner's buffer in BuildKit's parser.
const MAX_LINE: usize = 65535;

const INSTRUCTIONS: &[&str] = &[
    "add",
    "arg",
    "cmd",
    "copy",
    "entrypoint",
    "env",
    "expose",
    "from",
    "healthcheck",
    "label",
    "maintainer",
    "onbuild",
    "run",
    "shell",
    "stopsignal",
    "user",
    "volume",
    "workdir",
];

struct DirectiveParser {
    done: bool,
    seen: Vec<String>,
    directives: Directives,
}

impl DirectiveParser {
    /// BuildKit's `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` on each line
    /// until the first line that is not a known directive.
    fn line(&mut self, line: &str) -> Result<(), String> {
        if self.done {
            return Ok(());
        }
        let Some((name, value)) = directive_of(line) else {
            self.done = true;
            return Ok(());
        };
        let name = name.to_ascii_lowercase();
        if !matches!(name.as_str(), "syntax" | "escape" | "check") {
            self.done = true;
            return Ok(());
        }
        if self.seen.contains(&name) {
            return Err(format!("only one {name} parser directive can be used"));
        }
        self.seen.push(name.clone());
        match name.as_str() {
            "escape" => {
                self.directives.escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(format!(
                            "invalid escape token '{value}' does not match ` or \\"
                        ))
                    }
                }
            }
            "syntax" => self.directives.syntax = Some(value.to_string()),
            _ => {
                CheckOptions::parse(value)?;
                self.directives.check = Some(value.to_string());
            }
        }
        Ok(())
    }
}

fn directive_of(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let name_len = rest
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(rest.len());
    let name = &rest[..name_len];
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let value = rest[name_len..].trim_start().strip_prefix('=')?.trim();
    if value.is_empty() {
        return None;
    }
    Some((name, value))
}

fn trim_newline(s: &str) -> &str {
    s.strip_suffix("\r\n")
        .or_else(|| s.strip_suffix('\n'))
        .unwrap_or(s)
}

fn is_comment(s: &str) -> bool {
    trim_newline(s).trim_start().starts_with('#')
}

/// Removes a trailing escape token (and blanks after it): the line goes
/// on. An escaped escape token (two at the end) is no continuation, as
/// with BuildKit's regular expression.
fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    match t.strip_suffix(escape) {
        Some(s) if !s.ends_with(escape) => (s.to_string(), false),
        _ => (line.to_string(), true),
    }
}

/// The word splitting of BuildKit's `splitCommand` and `extractBuilderFlags`.
struct RawNode {
    cmd: String,
    flags: Vec<String>,
    rest: String,
}

fn is_go_ws(c: char) -> bool {
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ')
}

fn split_command(line: &str) -> RawNode {
    let line = line.trim();
    match line.find(is_go_ws) {
        None => RawNode {
            cmd: line.to_string(),
            flags: Vec::new(),
            rest: String::new(),
        },
        Some(i) => {
            let after = line[i..].trim_start_matches(is_go_ws);
            let (rest, flags) = extract_flags(after);
            RawNode {
                cmd: line[..i].to_string(),
                flags,
                rest: rest.trim().to_string(),
            }
        }
    }
}

fn extract_flags(line: &str) -> (String, Vec<String>) {
    #[derive(PartialEq)]
    enum Ph {
        Spaces,
        Word,
        Quote,
    }
    let b: Vec<char> = line.chars().collect();
    let byte_at = |pos: usize| -> usize { b[..pos].iter().map(|c| c.len_utf8()).sum() };
    let mut words = Vec::new();
    let mut phase = Ph::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut pos = 0;
    while pos <= b.len() {
        let ch = b.get(pos).copied().unwrap_or('\0');
        if phase == Ph::Spaces {
            if pos == b.len() {
                break;
            }
            if ch.is_whitespace() {
                pos += 1;
                continue;
            }
            if ch != '-' || b.get(pos + 1) != Some(&'-') {
                return (line[byte_at(pos)..].to_string(), words);
            }
            phase = Ph::Word;
        }
        if pos == b.len() {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        }
        if phase == Ph::Word {
            if ch.is_whitespace() {
                phase = Ph::Spaces;
                if word == "--" {
                    return (line[byte_at(pos)..].to_string(), words);
                }
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Ph::Quote;
                pos += 1;
                continue;
            }
            let mut c = ch;
            if ch == '\\' {
                if pos + 1 == b.len() {
                    pos += 1;
                    continue;
                }
                pos += 1;
                c = b[pos];
            }
            word.push(c);
            pos += 1;
            continue;
        }
        // in a quote
        if ch == quote {
            phase = Ph::Word;
            pos += 1;
            continue;
        }
        let mut c = ch;
        if ch == '\\' {
            if pos + 1 == b.len() {
                phase = Ph::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            c = b[pos];
        }
        word.push(c);
        pos += 1;
    }
    (String::new(), words)
}

/// BuildKit's `parseWords`: quote-aware words, quotes and escapes kept.
fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut blank_ok = false;
    let mut it = rest.chars().peekable();
    while let Some(ch) = it.next() {
        if let Some(q) = quote {
            if ch == q {
                quote = None;
            }
            if ch == escape && q != '\'' {
                match it.next() {
                    None => {
                        quote = None;
                        continue;
                    }
                    Some(n) => {
                        word.push(ch);
                        word.push(n);
                        continue;
                    }
                }
            }
            word.push(ch);
            continue;
        }
        if !in_word {
            if ch.is_whitespace() {
                continue;
            }
            in_word = true;
        }
        if ch.is_whitespace() {
            if blank_ok || !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            in_word = false;
            blank_ok = false;
            continue;
        }
        if ch == '\'' || ch == '"' {
            quote = Some(ch);
            blank_ok = true;
        }
        if ch == escape {
            match it.next() {
                None => continue,
                Some(n) => {
                    word.push(ch);
                    word.push(n);
                    continue;
                }
            }
        }
        word.push(ch);
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

fn split_ws(rest: &str) -> Vec<String> {
    rest.trim()
        .split(is_go_ws)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

const NOT_STRING_ARRAY: &str =
    "when using JSON array syntax, arrays must be comprised of strings only";

enum Json {
    No,
    NotStrings,
}

fn parse_json(rest: &str) -> Result<Vec<String>, Json> {
    let r = rest.trim_start();
    if !r.starts_with('[') {
        return Err(Json::No);
    }
    let v: Vec<serde_json::Value> = serde_json::from_str(r).map_err(|_| Json::No)?;
    v.into_iter()
        .map(|x| match x {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(Json::NotStrings),
        })
        .collect()
}

/// RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK CMD: JSON, else the whole text.
fn maybe_json(rest: &str) -> Result<(Vec<String>, bool), String> {
    if rest.is_empty() {
        return Ok((Vec::new(), false));
    }
    match parse_json(rest) {
        Ok(v) => Ok((v, true)),
        Err(Json::NotStrings) => Err(NOT_STRING_ARRAY.into()),
        Err(Json::No) => Ok((vec![rest.to_string()], false)),
    }
}

/// COPY, ADD, VOLUME: JSON, else words split on blanks.
fn maybe_json_list(rest: &str) -> Result<(Vec<String>, bool), String> {
    match parse_json(rest) {
        Ok(v) => Ok((v, true)),
        Err(Json::NotStrings) => Err(NOT_STRING_ARRAY.into()),
        Err(Json::No) => Ok((split_ws(rest), false)),
    }
}

/// A heredoc word `[fd]<<[-]NAME` (BuildKit's `ParseHeredoc`).
fn parse_heredoc_word(word: &str) -> Result<Option<Heredoc>, String> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let Some(rest) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start();
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let fd = word[..digits].parse().unwrap_or(0);
    let lx = Lexer {
        skip_unset: true,
        ..Lexer::new('\\')
    };
    let words = lx.process_words(rest, &NoVars)?;
    if words.len() != 1 {
        return Ok(None);
    }
    let raw = Lexer {
        raw_quotes: true,
        ..lx
    }
    .process_words(rest, &NoVars)?;
    if raw.len() != 1 {
        return Err(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        ));
    }
    let quotes = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    Ok(Some(Heredoc {
        name: words[0].clone(),
        content: String::new(),
        expand: quotes(&words[0]) == quotes(&raw[0]),
        chomp,
        fd,
    }))
}

fn heredocs_of_line(line: &str) -> Result<Vec<Heredoc>, String> {
    let lx = Lexer {
        raw_quotes: true,
        raw_escapes: true,
        ..Lexer::new('\\')
    };
    let Ok(words) = lx.process_words(line, &NoVars) else {
        return Ok(Vec::new());
    };
    let mut docs = Vec::new();
    for w in words {
        if let Some(h) = parse_heredoc_word(&w)? {
            docs.push(h);
        }
    }
    Ok(docs)
}

fn can_contain_heredoc(node: &RawNode) -> bool {
    let mut node = node;
    let nested;
    if node.cmd.eq_ignore_ascii_case("onbuild") {
        nested = split_command(&node.rest);
        node = &nested;
    }
    matches!(
        node.cmd.to_ascii_lowercase().as_str(),
        "run" | "copy" | "add"
    ) && parse_json(&node.rest).is_err()
}

/// Parses a Dockerfile. `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Dockerfile, Error> {
    let (directives, parsed, mut warnings) = parse_lines(file, text)?;
    if parsed.is_empty() {
        return Err(Error::Empty {
            file: file.to_string(),
        });
    }
    if directives.check.is_some() {
        warnings.push(format!(
            "{file}: the check directive configures BuildKit's lint rules, which berth does not run"
        ));
    }
    split_stages(file, directives, parsed, warnings)
}

/// Parses an ONBUILD trigger from a base image's config (`OnBuild`) as the
/// child build does: a file of its own that must hold one instruction
/// (heredoc bodies included), which may be neither FROM, ONBUILD nor
/// MAINTAINER. `file` and `line` are where the child's FROM is.
pub fn parse_trigger(file: &str, line: usize, expression: &str) -> Result<Instruction, Error> {
    let at = |message: String| Error::At {
        file: file.to_string(),
        line,
        message,
    };
    let (_, mut parsed, _) = parse_lines(file, expression).map_err(|e| {
        at(match e {
            Error::Parse { message, .. } | Error::Unsupported { message, .. } => {
                format!("onbuild trigger {expression:?}: {message}")
            }
            other => other.to_string(),
        })
    })?;
    if parsed.len() != 1 {
        return Err(at("onbuild trigger should be a single expression".into()));
    }
    let mut ins = parsed.remove(0);
    if let Kind::From(_) | Kind::Onbuild(_) | Kind::Maintainer(_) = ins.kind {
        return Err(at(format!(
            "{} isn't allowed as an ONBUILD trigger",
            ins.kind.name()
        )));
    }
    ins.line = line;
    ins.end_line = line;
    Ok(ins)
}

type Lines = (Directives, Vec<Instruction>, Vec<String>);

fn parse_lines(file: &str, text: &str) -> Result<Lines, Error> {
    let perr = |line: usize, message: String| Error::Parse {
        file: file.to_string(),
        line,
        message,
    };
    if text.is_empty() {
        return Err(Error::EmptyFile {
            file: file.to_string(),
        });
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    if let Some(n) = lines.iter().position(|l| l.len() > MAX_LINE) {
        return Err(perr(
            n + 1,
            format!("dockerfile line greater than max allowed size of {MAX_LINE}"),
        ));
    }
    let mut dp = DirectiveParser {
        done: false,
        seen: Vec::new(),
        directives: Directives::default(),
    };
    let mut warnings = Vec::new();
    let mut parsed: Vec<Instruction> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let raw = trim_newline(lines[i]).trim_start();
        i += 1;
        let start = i;
        dp.line(raw).map_err(|m| perr(start, m))?;
        let escape = dp.directives.escape;
        if is_comment(raw) {
            continue;
        }
        let (mut line, mut end) = trim_continuation(raw, escape);
        if end && line.is_empty() {
            continue;
        }
        let mut empty_continuation = false;
        while !end && i < lines.len() {
            let next = lines[i];
            i += 1;
            let t = trim_newline(next);
            dp.line(t).map_err(|m| perr(i, m))?;
            if is_comment(next) {
                continue;
            }
            if t.trim_start().is_empty() {
                empty_continuation = true;
                continue;
            }
            let (l, e) = trim_continuation(t, escape);
            line.push_str(&l);
            end = e;
        }
        if empty_continuation {
            warnings.push(format!(
                "{file}:{start}: [WARNING]: Empty continuation line found in: {line}"
            ));
        }
        let node = split_command(&line);
        let mut heredocs = Vec::new();
        if can_contain_heredoc(&node) && line.contains("<<") {
            for mut h in heredocs_of_line(&line).map_err(|m| perr(start, m))? {
                let mut terminated = false;
                while i < lines.len() {
                    let body_line = lines[i];
                    i += 1;
                    let mut cand = trim_newline(body_line);
                    if h.chomp {
                        cand = cand.trim_start_matches('\t');
                    }
                    if cand == h.name {
                        terminated = true;
                        break;
                    }
                    h.content.push_str(body_line);
                }
                if !terminated {
                    return Err(perr(start, "unterminated heredoc".into()));
                }
                heredocs.push(h);
            }
        }
        let mut kind = typed(file, &node, &line, heredocs, escape, start)?;
        if let Kind::Onbuild(o) = &mut kind {
            o.trigger.line = start;
            o.trigger.end_line = i;
        }
        parsed.push(Instruction {
            line: start,
            end_line: i,
            original: line,
            kind,
        });
    }
    Ok((dp.directives, parsed, warnings))
}

fn typed(
    file: &str,
    node: &RawNode,
    original: &str,
    heredocs: Vec<Heredoc>,
    escape: char,
    line: usize,
) -> Result<Kind, Error> {
    typed_inner(node, original, heredocs, escape).map_err(|e| match e {
        Fail::Parse(message) => Error::Parse {
            file: file.to_string(),
            line,
            message,
        },
        Fail::Unsupported(message) => Error::Unsupported {
            file: file.to_string(),
            line,
            message,
        },
    })
}

enum Fail {
    Parse(String),
    Unsupported(String),
}

impl std::convert::From<String> for Fail {
    fn from(s: String) -> Fail {
        Fail::Parse(s)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum FlagKind {
    Bool,
    Str,
    Strings,
}

struct Flags(BTreeMap<&'static str, Vec<String>>);

impl Flags {
    fn parse(raw: &[String], spec: &[(&'static str, FlagKind)]) -> Result<Flags, String> {
        let mut got: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        for a in raw {
            let Some(body) = a.strip_prefix("--") else {
                return Err(format!("arg should start with -- : {a}"));
            };
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(&(key, kind)) = spec.iter().find(|(n, _)| *n == name) else {
                let names: Vec<&str> = spec.iter().map(|(n, _)| *n).collect();
                return Err(with_suggestion(
                    format!("unknown flag: --{name}"),
                    name,
                    &names,
                    true,
                ));
            };
            if got.contains_key(key) && kind != FlagKind::Strings {
                return Err(format!("duplicate flag specified: --{name}"));
            }
            let v = match kind {
                FlagKind::Bool => match value {
                    Some("") => return Err(format!("missing a value on flag: --{name}")),
                    None => "true".to_string(),
                    Some(v) if v.eq_ignore_ascii_case("true") => "true".to_string(),
                    Some(v) if v.eq_ignore_ascii_case("false") => "false".to_string(),
                    Some(v) => {
                        return Err(format!(
                            "expecting boolean value for flag --{name}, not: {v}"
                        ))
                    }
                },
                FlagKind::Str | FlagKind::Strings => match value {
                    None => return Err(format!("missing a value on flag: --{name}")),
                    Some(v) => v.to_string(),
                },
            };
            got.entry(key).or_default().push(v);
        }
        Ok(Flags(got))
    }
    fn string(&self, name: &str) -> Option<String> {
        self.0.get(name).and_then(|v| v.last().cloned())
    }
    fn strings(&self, name: &str) -> Vec<String> {
        self.0.get(name).cloned().unwrap_or_default()
    }
    fn bool(&self, name: &str) -> bool {
        self.string(name).as_deref() == Some("true")
    }
}

fn least_one(name: &str) -> String {
    format!("{name} requires at least one argument")
}
fn exactly_one(name: &str) -> String {
    format!("{name} requires exactly one argument")
}

fn command_line(args: Vec<String>, json: bool) -> CommandLine {
    if json {
        CommandLine::Exec(args)
    } else {
        CommandLine::Shell(args.join(" "))
    }
}

fn typed_inner(
    node: &RawNode,
    original: &str,
    heredocs: Vec<Heredoc>,
    escape: char,
) -> Result<Kind, Fail> {
    use FlagKind::*;
    let cmd = node.cmd.to_ascii_lowercase();
    let rest = node.rest.as_str();
    let flags = |spec: &[(&'static str, FlagKind)]| Flags::parse(&node.flags, spec);
    let one_string = |name: &str| -> Result<String, Fail> {
        flags(&[])?;
        if rest.is_empty() {
            return Err(exactly_one(name).into());
        }
        Ok(rest.to_string())
    };
    Ok(match cmd.as_str() {
        "from" => {
            let f = flags(&[("platform", Str)])?;
            let args = split_ws(rest);
            let name = match args.len() {
                3 if args[1].eq_ignore_ascii_case("as") => {
                    let n = args[2].to_ascii_lowercase();
                    let ok = n.starts_with(|c: char| c.is_ascii_lowercase())
                        && n.chars().all(|c| {
                            c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c)
                        });
                    if !ok {
                        return Err(format!("invalid name for build stage: {:?}, name can't start with a number or contain symbols", args[2]).into());
                    }
                    Some(n)
                }
                1 => None,
                _ => {
                    return Err("FROM requires either one or three arguments"
                        .to_string()
                        .into())
                }
            };
            Kind::From(From {
                base: args[0].clone(),
                name,
                platform: f.string("platform"),
            })
        }
        "run" => {
            let f = flags(&[("mount", Strings), ("network", Str)])?;
            let (args, json) = maybe_json(rest)?;
            if args.is_empty() {
                return Err(least_one("RUN").into());
            }
            let mount_specs = f.strings("mount");
            for spec in &mount_specs {
                validate_mount(spec)?;
            }
            let network = match f.string("network").as_deref() {
                None => None,
                Some("default") => Some(NetworkMode::Default),
                Some("none") => Some(NetworkMode::None),
                Some("host") => Some(NetworkMode::Host),
                Some(o) => return Err(format!("unsupported network mode {o:?}").into()),
            };
            Kind::Run(Run {
                command: command_line(args, json),
                heredocs,
                mount_specs,
                network,
            })
        }
        "cmd" | "entrypoint" => {
            flags(&[])?;
            let (args, json) = maybe_json(rest)?;
            let c = if args.is_empty() {
                CommandLine::Exec(Vec::new())
            } else {
                command_line(args, json)
            };
            if cmd == "cmd" {
                Kind::Cmd(c)
            } else {
                Kind::Entrypoint(c)
            }
        }
        "shell" => {
            flags(&[])?;
            let (args, json) = maybe_json(rest)?;
            if args.is_empty() {
                return Err(least_one("SHELL").into());
            }
            if !json {
                return Err("SHELL requires the arguments to be in JSON form"
                    .to_string()
                    .into());
            }
            Kind::Shell(args)
        }
        "copy" | "add" => {
            let name = cmd.to_ascii_uppercase();
            let f = if cmd == "copy" {
                flags(&[
                    ("chown", Str),
                    ("from", Str),
                    ("chmod", Str),
                    ("link", Bool),
                ])?
            } else {
                flags(&[
                    ("chown", Str),
                    ("chmod", Str),
                    ("link", Bool),
                    ("keep-git-dir", Bool),
                    ("checksum", Str),
                ])?
            };
            if f.0.contains_key("keep-git-dir") {
                return Err(Fail::Unsupported(
                    "ADD --keep-git-dir is not supported: berth's ADD fetches no git repositories"
                        .into(),
                ));
            }
            let (args, json) = maybe_json_list(rest)?;
            if args.len() < 2 {
                return Err(format!("{name} requires at least two arguments, but only one was provided. Destination could not be determined").into());
            }
            let dest = args[args.len() - 1].clone();
            if !json && parse_heredoc_word(&dest)?.is_some() {
                return Err(format!("{name} cannot accept a heredoc as a destination").into());
            }
            let mut sources = Vec::new();
            let mut inline = Vec::new();
            for src in &args[..args.len() - 1] {
                match (json, parse_heredoc_word(src)?) {
                    (false, Some(h)) => {
                        let Some(doc) = heredocs.iter().find(|d| d.name == h.name) else {
                            return Err(format!("{name}: no body for heredoc {}", h.name).into());
                        };
                        inline.push(Heredoc {
                            content: doc.body(),
                            ..h
                        });
                    }
                    _ => sources.push(src.clone()),
                }
            }
            let from = f.string("from");
            if let Some(fr) = &from {
                if fr.contains('$') {
                    return Err("variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround".to_string().into());
                }
            }
            let c = CopyAdd {
                from,
                sources,
                inline,
                dest,
                chown: f.string("chown"),
                chmod: f.string("chmod"),
                link: f.bool("link"),
                checksum: f.string("checksum"),
            };
            if cmd == "copy" {
                Kind::Copy(c)
            } else {
                Kind::Add(c)
            }
        }
        "env" | "label" => {
            flags(&[])?;
            let name = cmd.to_ascii_uppercase();
            let kvs = parse_name_val(rest, &name, escape)?;
            if kvs.is_empty() {
                return Err(least_one(&name).into());
            }
            if kvs.iter().any(|kv| kv.key.is_empty()) {
                return Err(format!("{name} names can not be blank").into());
            }
            if cmd == "env" {
                Kind::Env(kvs)
            } else {
                Kind::Label(kvs)
            }
        }
        "arg" => {
            flags(&[])?;
            let words = parse_words(rest, escape);
            if words.is_empty() {
                return Err(least_one("ARG").into());
            }
            let mut decls = Vec::new();
            for w in words {
                let d = match w.split_once('=') {
                    Some((k, v)) => ArgDecl {
                        name: k.to_string(),
                        default: Some(v.to_string()),
                    },
                    None => ArgDecl {
                        name: w,
                        default: None,
                    },
                };
                if d.name.is_empty() {
                    return Err("ARG names can not be blank".to_string().into());
                }
                decls.push(d);
            }
            Kind::Arg(decls)
        }
        "workdir" => Kind::Workdir(one_string("WORKDIR")?),
        "user" => Kind::User(one_string("USER")?),
        "stopsignal" => Kind::StopSignal(one_string("STOPSIGNAL")?),
        "maintainer" => Kind::Maintainer(one_string("MAINTAINER")?),
        "expose" => {
            flags(&[])?;
            let ports = split_ws(rest);
            if ports.is_empty() {
                return Err(least_one("EXPOSE").into());
            }
            Kind::Expose(ports)
        }
        "volume" => {
            flags(&[])?;
            let (args, _) = maybe_json_list(rest)?;
            if args.is_empty() {
                return Err(least_one("VOLUME").into());
            }
            let mut vols = Vec::new();
            for v in args {
                let v = v.trim();
                if v.is_empty() {
                    return Err("VOLUME specified can not be an empty string"
                        .to_string()
                        .into());
                }
                vols.push(v.to_string());
            }
            Kind::Volume(vols)
        }
        "healthcheck" => healthcheck(node)?,
        "onbuild" => {
            flags(&[])?;
            if rest.is_empty() {
                return Err(least_one("ONBUILD").into());
            }
            let inner = split_command(rest);
            let trig = inner.cmd.to_ascii_uppercase();
            match trig.as_str() {
                "ONBUILD" => {
                    return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
                        .to_string()
                        .into())
                }
                "MAINTAINER" | "FROM" => {
                    return Err(format!("{trig} isn't allowed as an ONBUILD trigger").into())
                }
                _ => {}
            }
            let mut expression = strip_onbuild(original).to_string();
            for h in &heredocs {
                expression.push('\n');
                expression.push_str(&h.content);
                expression.push_str(&h.name);
            }
            let kind = typed_inner(&inner, rest, heredocs, escape)?;
            Kind::Onbuild(Onbuild {
                trigger: Box::new(Instruction {
                    line: 0,
                    end_line: 0,
                    original: rest.to_string(),
                    kind,
                }),
                expression,
            })
        }
        _ => {
            return Err(with_suggestion(
                format!("unknown instruction: {}", node.cmd),
                &node.cmd,
                INSTRUCTIONS,
                false,
            )
            .into())
        }
    })
}

fn strip_onbuild(original: &str) -> &str {
    let t = original.trim_start();
    let t = if t.len() >= 7 && t[..7].eq_ignore_ascii_case("onbuild") {
        &t[7..]
    } else {
        t
    };
    t.trim_start()
}

/// The parse-time check of a mount (BuildKit's first `parseMount`, without
/// an expander), and its full typing when no value needs substitution.
fn validate_mount(spec: &str) -> Result<(), Fail> {
    let to_fail = |e: String| {
        if e.contains("is not supported") {
            Fail::Unsupported(e)
        } else {
            Fail::Parse(e)
        }
    };
    for field in csv_fields(spec)? {
        if let Some((k, v)) = field.split_once('=') {
            if k.eq_ignore_ascii_case("from") {
                if let Some(i) = v.find('$') {
                    if i != v.len() - 1 {
                        return Err(
                            "'from' doesn't support variable expansion, define alias stage instead"
                                .to_string()
                                .into(),
                        );
                    }
                }
            }
        }
    }
    if !spec.contains('$') {
        Mount::parse(spec, &mut |v: &str| Ok(v.to_string())).map_err(to_fail)?;
    }
    Ok(())
}

fn parse_name_val(rest: &str, key: &str, escape: char) -> Result<Vec<KeyValue>, String> {
    let words = parse_words(rest, escape);
    if words.is_empty() {
        return Ok(Vec::new());
    }
    if !words[0].contains('=') {
        let r = rest.trim_start_matches(is_go_ws);
        let Some(i) = r.find(is_go_ws) else {
            return Err(format!("{key} must have two arguments"));
        };
        return Ok(vec![KeyValue {
            key: r[..i].to_string(),
            value: r[i..].trim_start_matches(is_go_ws).to_string(),
            legacy: true,
        }]);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => Ok(KeyValue {
                key: k.to_string(),
                value: v.to_string(),
                legacy: false,
            }),
            None => Err(format!(
                "Syntax error - can't find = in {w:?}. Must be of the form: name=value"
            )),
        })
        .collect()
}

fn healthcheck(node: &RawNode) -> Result<Kind, Fail> {
    let rest = node.rest.as_str();
    let sep = rest.find(char::is_whitespace).unwrap_or(rest.len());
    if sep == 0 {
        return Err(least_one("HEALTHCHECK").into());
    }
    let typ = rest[..sep].to_ascii_uppercase();
    let cmd_text = rest[sep..].trim_start();
    if typ == "NONE" {
        if !cmd_text.is_empty() {
            return Err("HEALTHCHECK NONE takes no arguments".to_string().into());
        }
        if !node.flags.is_empty() {
            return Err("HEALTHCHECK NONE takes no options".to_string().into());
        }
        return Ok(Kind::Healthcheck(Healthcheck::None));
    }
    use FlagKind::Str;
    let f = Flags::parse(
        &node.flags,
        &[
            ("interval", Str),
            ("timeout", Str),
            ("start-period", Str),
            ("start-interval", Str),
            ("retries", Str),
        ],
    )?;
    if typ != "CMD" {
        return Err(format!("Unknown type {typ:?} in HEALTHCHECK (try CMD)").into());
    }
    let (args, json) = maybe_json(cmd_text)?;
    if args.is_empty() {
        return Err("Missing command after HEALTHCHECK CMD".to_string().into());
    }
    let test = if json {
        std::iter::once("CMD".to_string()).chain(args).collect()
    } else {
        vec!["CMD-SHELL".to_string(), args.join(" ")]
    };
    let interval = |name: &str| -> Result<Duration, String> {
        let Some(v) = f.string(name) else {
            return Ok(Duration::ZERO);
        };
        let (neg, d) = parse_go_duration(&v)?;
        if d.is_zero() && !neg {
            return Ok(d);
        }
        if neg || d < Duration::from_millis(1) {
            return Err(format!("Interval {name:?} cannot be less than 1ms"));
        }
        Ok(d)
    };
    let retries = match f.string("retries") {
        None => 0,
        Some(v) => {
            let n: i64 = v
                .parse()
                .map_err(|_| format!("strconv.ParseInt: parsing {v:?}: invalid syntax"))?;
            if n < 0 {
                return Err(format!("--retries cannot be negative ({n})").into());
            }
            u32::try_from(n)
                .map_err(|_| format!("strconv.ParseInt: parsing {v:?}: value out of range"))?
        }
    };
    Ok(Kind::Healthcheck(Healthcheck::Check {
        test,
        interval: interval("interval")?,
        timeout: interval("timeout")?,
        start_period: interval("start-period")?,
        start_interval: interval("start-interval")?,
        retries,
    }))
}

/// Appends ` (did you mean X?)` for the closest of `known` within two
/// edits, as BuildKit's `suggest.WrapError` (nothing on an exact match; a
/// case-insensitive match takes the case of what was written).
fn with_suggestion(msg: String, got: &str, known: &[&str], case_sensitive: bool) -> String {
    let val = if case_sensitive {
        got.to_string()
    } else {
        got.to_ascii_lowercase()
    };
    let mut best: Option<(usize, &str)> = None;
    for k in known {
        if val == *k {
            return msg;
        }
        let d = levenshtein(&val, k);
        if d < best.map_or(3, |b| b.0) {
            best = Some((d, k));
        }
    }
    let Some((_, k)) = best else {
        return msg;
    };
    let k = if !case_sensitive && got == got.to_ascii_uppercase() {
        k.to_ascii_uppercase()
    } else {
        k.to_string()
    };
    format!("{msg} (did you mean {k}?)")
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let v = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
            cur.push(v);
        }
        prev = cur;
    }
    prev[b.len()]
}

// ---------------------------------------------------------------------------
// Stages.

fn split_stages(
    file: &str,
    directives: Directives,
    parsed: Vec<Instruction>,
    warnings: Vec<String>,
) -> Result<Dockerfile, Error> {
    let mut global_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for ins in parsed {
        match ins.kind {
            Kind::From(f) => {
                if let Some(name) = &f.name {
                    if let Some(prev) = stages.iter().find(|s| s.name.as_ref() == Some(name)) {
                        return Err(Error::At {
                            file: file.to_string(),
                            line: ins.line,
                            message: format!(
                                "duplicate stage name {name:?} (first defined on line {})",
                                prev.line
                            ),
                        });
                    }
                }
                stages.push(Stage {
                    index: stages.len(),
                    name: f.name,
                    base: f.base,
                    platform: f.platform,
                    line: ins.line,
                    instructions: Vec::new(),
                });
            }
            Kind::Arg(_) if stages.is_empty() => global_args.push(ins),
            _ => match stages.last_mut() {
                Some(s) => s.instructions.push(ins),
                None => {
                    return Err(Error::At {
                        file: file.to_string(),
                        line: ins.line,
                        message: "no build stage in current context".into(),
                    })
                }
            },
        }
    }
    if stages.is_empty() {
        return Err(Error::NoStages {
            file: file.to_string(),
        });
    }
    Ok(Dockerfile {
        file: file.to_string(),
        directives,
        global_args,
        stages,
        warnings,
    })
}

/// What a stage starts from, once its base name is substituted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    Scratch,
    /// An earlier stage.
    Stage(usize),
    Image(String),
}

/// Where a COPY --from or a RUN --mount from= reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Stage(usize),
    Image(String),
}

/// The stages a target needs, in an order that builds each after what it
/// reads; the others are not built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub target: usize,
    pub stages: Vec<PlannedStage>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedStage {
    pub index: usize,
    pub base: Base,
    /// Stages this one reads: its base stage, COPY --from, mounts.
    pub deps: Vec<usize>,
    /// Images read by COPY --from or mounts (besides the base).
    pub images: Vec<String>,
}

impl Dockerfile {
    /// A stage by its `AS` name, case-insensitively (as BuildKit).
    pub fn stage_by_name(&self, name: &str) -> Option<&Stage> {
        let n = name.to_ascii_lowercase();
        self.stages.iter().find(|s| s.name.as_deref() == Some(&n))
    }

    /// `--target`: a stage name; none means the last stage.
    pub fn target(&self, target: Option<&str>) -> Result<usize, Error> {
        match target {
            None | Some("") => Ok(self.stages.len() - 1),
            Some(t) => {
                self.stage_by_name(t)
                    .map(|s| s.index)
                    .ok_or_else(|| Error::TargetNotFound {
                        file: self.file.clone(),
                        target: t.to_string(),
                    })
            }
        }
    }

    /// The base of stage `index` given its substituted base name: an
    /// earlier stage of that name, `scratch`, or an image.
    pub fn resolve_base(&self, index: usize, base_name: &str) -> Base {
        let n = base_name.to_ascii_lowercase();
        if let Some(s) = self.stages[..index]
            .iter()
            .rev()
            .find(|s| s.name.as_deref() == Some(&n))
        {
            return Base::Stage(s.index);
        }
        if n == "scratch" {
            return Base::Scratch;
        }
        Base::Image(base_name.to_string())
    }

    /// Where a `--from` value reads: a stage by name (any stage) or index,
    /// else an image.
    pub fn resolve_source(&self, line: usize, from: &str) -> Result<Source, Error> {
        if let Ok(i) = from.parse::<i64>() {
            return usize::try_from(i)
                .ok()
                .filter(|i| *i < self.stages.len())
                .map(Source::Stage)
                .ok_or_else(|| Error::At {
                    file: self.file.clone(),
                    line,
                    message: format!("invalid stage index {i}"),
                });
        }
        Ok(match self.stage_by_name(from) {
            Some(s) => Source::Stage(s.index),
            None => Source::Image(from.to_string()),
        })
    }

    /// The plan for `target`, given each stage's substituted base name
    /// (see [`crate::expand::GlobalArgs::base_names`]).
    pub fn plan(&self, target: Option<&str>, base_names: &[String]) -> Result<Plan, Error> {
        let target = self.target(target)?;
        let mut all = Vec::with_capacity(self.stages.len());
        for s in &self.stages {
            let name = base_names
                .get(s.index)
                .map(String::as_str)
                .unwrap_or(&s.base);
            let base = self.resolve_base(s.index, name);
            let mut deps = Vec::new();
            let mut images = Vec::new();
            if let Base::Stage(b) = base {
                deps.push(b);
            }
            let mut add = |src: Source| match src {
                Source::Stage(i) => {
                    if !deps.contains(&i) {
                        deps.push(i)
                    }
                }
                Source::Image(n) => {
                    if !images.contains(&n) {
                        images.push(n)
                    }
                }
            };
            for ins in &s.instructions {
                for from in sources_of(ins) {
                    add(self.resolve_source(ins.line, &from)?);
                }
            }
            all.push(PlannedStage {
                index: s.index,
                base,
                deps,
                images,
            });
        }
        // Depth-first from the target, refusing cycles.
        let mut state = vec![0u8; all.len()];
        fn visit(i: usize, all: &[PlannedStage], state: &mut [u8]) -> Result<(), usize> {
            match state[i] {
                2 => return Ok(()),
                1 => return Err(i),
                _ => {}
            }
            state[i] = 1;
            for &d in &all[i].deps {
                visit(d, all, state)?;
            }
            state[i] = 2;
            Ok(())
        }
        visit(target, &all, &mut state).map_err(|i| Error::At {
            file: self.file.clone(),
            line: self.stages[i].line,
            message: format!(
                "circular dependency detected on stage: {}",
                self.stages[i].display_name()
            ),
        })?;
        // The needed stages, each after its dependencies, lowest index first.
        let mut order: Vec<usize> = Vec::new();
        let needed: Vec<usize> = (0..all.len()).filter(|i| state[*i] == 2).collect();
        while order.len() < needed.len() {
            let next = needed
                .iter()
                .copied()
                .find(|i| !order.contains(i) && all[*i].deps.iter().all(|d| order.contains(d)))
                .expect("an acyclic graph always has a ready stage");
            order.push(next);
        }
        Ok(Plan {
            target,
            stages: order.into_iter().map(|i| all[i].clone()).collect(),
        })
    }
}

/// The `--from` values of COPY and of RUN mounts in an instruction.
fn sources_of(ins: &Instruction) -> Vec<String> {
    match &ins.kind {
        Kind::Copy(c) => c.from.iter().cloned().collect(),
        Kind::Run(r) => r
            .mount_specs
            .iter()
            .filter_map(|s| {
                csv_fields(s).ok()?.into_iter().find_map(|f| {
                    let (k, v) = f.split_once('=')?;
                    k.eq_ignore_ascii_case("from").then(|| v.to_string())
                })
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests;
