//! The compose model: parse, interpolate, merge, validate and normalise compose files as
//! docker compose v2 (compose-go) does.
//!
//! Steps of [`load`]: find the files; read the project dir's `.env`; for each file: YAML
//! (anchors, aliases, `<<` merge keys), interpolation, `extends` (extends.rs), then a check
//! of its keys and types alone (so that an error names the file); merge the files; enforce the sequences'
//! unicity; convert to the typed model; apply profiles; project-level checks (images,
//! references, dependency cycles, host ports, container names).

mod convert;
pub mod duration;
mod error;
mod extends;
mod interp;
mod merge;
pub mod model;
mod output;

pub use error::ComposeError;
pub use model::*;

use serde_norway::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use convert::Obj;

#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Empty: $COMPOSE_FILE, else compose.yaml / compose.yml / docker-compose.yaml /
    /// docker-compose.yml in `working_dir`, plus the matching override file.
    pub files: Vec<PathBuf>,
    /// Where to look for the default files, and the project dir (empty = the directory of
    /// the first file, else the current directory).
    pub working_dir: PathBuf,
    pub project_name: Option<String>,
    /// --profile; empty = $COMPOSE_PROFILES (comma separated).
    pub profiles: Vec<String>,
    /// The process environment (the caller passes std::env::vars()).
    pub env: BTreeMap<String, String>,
}

/// compose-go's default names, in its order of preference.
const DEFAULT_FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];
const OVERRIDE_FILES: &[&str] = &[
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
];

const ROOT_KEYS: &[&str] = &[
    "version", "name", "services", "networks", "volumes", "secrets", "configs",
];
const ROOT_UNSUPPORTED: &[&str] = &["include", "models"];

fn invalid(msg: String) -> ComposeError {
    ComposeError::Invalid(msg)
}

fn absolute(p: &Path, base: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Parse, interpolate, merge, validate and normalise.
pub fn load(o: &LoadOptions) -> Result<Project, ComposeError> {
    let cwd = std::env::current_dir()
        .map_err(|e| ComposeError::File(format!("current directory: {e}")))?;
    let wd_given = !o.working_dir.as_os_str().is_empty();
    let look_in = if wd_given {
        absolute(&o.working_dir, &cwd)
    } else {
        cwd.clone()
    };

    // (shown name, absolute path)
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    // COMPOSE_FILE may also come from the .env of the directory compose looks in.
    let look_in_dotenv = if o.files.is_empty() && !o.env.contains_key("COMPOSE_FILE") {
        read_dotenv(&look_in, &o.env)?
    } else {
        BTreeMap::new()
    };
    let from_env = o
        .env
        .get("COMPOSE_FILE")
        .or_else(|| look_in_dotenv.get("COMPOSE_FILE"))
        .filter(|v| !v.is_empty());
    if !o.files.is_empty() {
        for f in &o.files {
            files.push((f.display().to_string(), absolute(f, &cwd)));
        }
    } else if let Some(list) = from_env {
        let sep = o
            .env
            .get("COMPOSE_PATH_SEPARATOR")
            .map(String::as_str)
            .unwrap_or(":");
        for f in list.split(sep).filter(|f| !f.is_empty()) {
            files.push((f.to_string(), absolute(Path::new(f), &look_in)));
        }
    } else {
        let found = DEFAULT_FILES
            .iter()
            .find(|f| look_in.join(f).is_file())
            .ok_or(ComposeError::NotFound)?;
        files.push((show(&look_in.join(found), &cwd), look_in.join(found)));
        if let Some(ov) = OVERRIDE_FILES.iter().find(|f| look_in.join(f).is_file()) {
            files.push((show(&look_in.join(ov), &cwd), look_in.join(ov)));
        }
    }
    let project_dir = if wd_given {
        look_in
    } else {
        files[0]
            .1
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or(cwd.clone())
    };

    // The environment: the process's over the project dir's .env.
    let mut env = read_dotenv(&project_dir, &o.env)?;
    env.extend(o.env.iter().map(|(k, v)| (k.clone(), v.clone())));

    let mut warnings = Vec::new();
    let mut trees: Vec<(String, Value)> = Vec::new();
    for (shown, path) in &files {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ComposeError::File(format!("{shown}: {e}")))?;
        let tree = parse_file(shown, path, &text, &env, &project_dir, &mut warnings)?;
        trees.push((shown.clone(), tree));
    }

    // Who defines what first, for the messages of project-level checks.
    let mut origin: BTreeMap<String, String> = BTreeMap::new();
    for (shown, t) in &trees {
        for section in ["services", "networks", "volumes"] {
            if let Some(Value::Mapping(m)) = t.get(section) {
                for k in m.keys() {
                    origin
                        .entry(format!("{section}.{}", interp::key_string(k)))
                        .or_insert_with(|| shown.clone());
                }
            }
        }
    }
    let first_file = trees[0].0.clone();
    let mut iter = trees.into_iter();
    let mut merged = iter.next().map(|(_, t)| t).unwrap_or(Value::Null);
    for (shown, t) in iter {
        merged = merge::merge(merged, t, &mut Vec::new())
            .map_err(|e| invalid(format!("{shown}: {e}")))?;
    }
    merge::strip_tags(&mut merged, &mut Vec::new())
        .map_err(|e| invalid(format!("{first_file}: {e}")))?;
    merge::enforce_unicity(&mut merged, &mut Vec::new());

    let name = project_name(o, &merged, &env, &project_dir)
        .map_err(|e| invalid(format!("{first_file}: {e}")))?;
    let file_of = |section: &str, key: &str| {
        origin
            .get(&format!("{section}.{key}"))
            .cloned()
            .unwrap_or(first_file.clone())
    };

    let mut p = Project {
        name: name.clone(),
        working_dir: project_dir.clone(),
        config_files: files.iter().map(|(_, p)| p.clone()).collect(),
        services: BTreeMap::new(),
        networks: BTreeMap::new(),
        volumes: BTreeMap::new(),
        disabled: BTreeMap::new(),
        environment: env.clone(),
        warnings,
        secrets: BTreeMap::new(),
        configs: BTreeMap::new(),
    };
    for section in ["secrets", "configs"] {
        if let Some(Value::Mapping(m)) = merged.get(section) {
            for (k, v) in m {
                let k = interp::key_string(k);
                let f = file_of(section, &k);
                let d = convert::file_def(section, &k, v, &project_dir, &env)
                    .map_err(|e| invalid(format!("{f}: {e}")))?;
                match section {
                    "secrets" => p.secrets.insert(k, d),
                    _ => p.configs.insert(k, d),
                };
            }
        }
    }
    for (section, target_is_net) in [("networks", true), ("volumes", false)] {
        if let Some(Value::Mapping(m)) = merged.get(section) {
            for (k, v) in m {
                let k = interp::key_string(k);
                let f = file_of(section, &k);
                if target_is_net {
                    p.networks.insert(
                        k.clone(),
                        convert::network(&k, v, &name).map_err(|e| invalid(format!("{f}: {e}")))?,
                    );
                } else {
                    p.volumes.insert(
                        k.clone(),
                        convert::volume_def(&k, v, &name)
                            .map_err(|e| invalid(format!("{f}: {e}")))?,
                    );
                }
            }
        }
    }

    let active: BTreeSet<String> = if o.profiles.is_empty() {
        env.get("COMPOSE_PROFILES")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    } else {
        o.profiles.iter().cloned().collect()
    };
    if let Some(Value::Mapping(m)) = merged.get("services") {
        for (k, v) in m {
            let k = interp::key_string(k);
            let f = file_of("services", &k);
            let s = convert::service(&k, v, &project_dir, &env)
                .map_err(|e| invalid(format!("{f}: {e}")))?;
            let enabled = s.profiles.is_empty()
                || active.contains("*")
                || s.profiles.iter().any(|pr| active.contains(pr));
            if enabled {
                p.services.insert(k, s);
            } else {
                p.disabled.insert(k, s);
            }
        }
    }
    let taken: BTreeSet<String> = p
        .services
        .values()
        .chain(p.disabled.values())
        .flat_map(|s| {
            s.environment
                .iter()
                .filter(|(_, v)| v.is_none())
                .map(|(k, _)| k.clone())
        })
        .collect();
    p.environment.retain(|k, _| taken.contains(k));
    normalise(&mut p);
    validate(&mut p, &|svc: &str| file_of("services", svc))?;
    Ok(p)
}

/// The variables of `dir/.env` (none when there is no such file).
fn read_dotenv(
    dir: &Path,
    process: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ComposeError> {
    let path = dir.join(".env");
    if !path.is_file() {
        return Ok(BTreeMap::new());
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| ComposeError::File(format!("{}: {e}", path.display())))?;
    let lookup = |k: &str| process.get(k).cloned();
    let parsed = interp::parse_dotenv(&text, &lookup)
        .map_err(|e| ComposeError::File(format!("{}: {e}", path.display())))?;
    Ok(parsed
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?)))
        .collect())
}

/// A default file's name as shown in messages: relative to the current directory when
/// it is below it.
fn show(path: &Path, cwd: &Path) -> String {
    path.strip_prefix(cwd).unwrap_or(path).display().to_string()
}

/// One file: YAML, merge keys, interpolation, `extends`, and the checks a file can fail
/// alone.
fn parse_file(
    shown: &str,
    file: &Path,
    text: &str,
    env: &BTreeMap<String, String>,
    project_dir: &Path,
    warnings: &mut Vec<String>,
) -> Result<Value, ComposeError> {
    let mut tree = read_tree(shown, text, env, warnings)?;
    let more = std::cell::RefCell::new(Vec::new());
    let read = |p: &Path| -> Result<Value, String> {
        let shown = p.display().to_string();
        let text = std::fs::read_to_string(p).map_err(|e| format!("{shown}: {e}"))?;
        read_tree(&shown, &text, env, &mut more.borrow_mut()).map_err(|e| e.to_string())
    };
    extends::apply(&mut tree, file, &read).map_err(|e| invalid(format!("{shown}: {e}")))?;
    for w in more.into_inner() {
        if !warnings.contains(&w) {
            warnings.push(w);
        }
    }
    check_file(shown, tree, env, project_dir, warnings)
}

/// YAML, merge keys and interpolation of one file.
fn read_tree(
    shown: &str,
    text: &str,
    env: &BTreeMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<Value, ComposeError> {
    let mut tree: Value = serde_norway::from_str(text)
        .map_err(|e| ComposeError::File(format!("{shown}: yaml: {e}")))?;
    tree.apply_merge()
        .map_err(|e| ComposeError::File(format!("{shown}: yaml: {e}")))?;
    if tree.is_null() {
        return Err(invalid(format!("{shown}: empty compose file")));
    }
    if !tree.is_mapping() {
        return Err(invalid(format!(
            "{shown}: top-level object must be a mapping"
        )));
    }
    let lookup = |k: &str| env.get(k).cloned();
    let mut unset = Vec::new();
    interp::interpolate_value(&mut tree, &mut Vec::new(), &lookup, &mut unset)
        .map_err(|e| invalid(format!("{shown}: {e}")))?;
    for var in unset {
        let w = format!("The \"{var}\" variable is not set. Defaulting to a blank string.");
        if !warnings.contains(&w) {
            warnings.push(w);
        }
    }
    Ok(tree)
}

/// The checks a file can fail alone; `x-` entries of its sections dropped.
fn check_file(
    shown: &str,
    mut tree: Value,
    env: &BTreeMap<String, String>,
    project_dir: &Path,
    warnings: &mut Vec<String>,
) -> Result<Value, ComposeError> {
    let err = |e: String| invalid(format!("{shown}: {e}"));
    // The checks see the file as it reads alone (`!reset` keys gone, `!override` values).
    let mut alone = tree.clone();
    merge::strip_tags(&mut alone, &mut Vec::new()).map_err(err)?;
    let root = Obj::new(&alone, "", ROOT_KEYS, ROOT_UNSUPPORTED).map_err(err)?;
    if root.get("version").is_some() {
        warnings.push(format!("{shown}: the attribute `version` is obsolete, it will be ignored, please remove it to avoid potential confusion"));
    }
    if let Some((n, np)) = root.get("name") {
        convert::string(n, &np).map_err(err)?;
    }
    for section in ["services", "networks", "volumes", "secrets", "configs"] {
        let Some((v, sp)) = root.get(section) else {
            continue;
        };
        let Value::Mapping(m) = v else {
            return Err(err(format!("{sp} must be a mapping")));
        };
        for (k, item) in m {
            let key = interp::key_string(k);
            if key.starts_with("x-") {
                continue;
            }
            if !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            {
                return Err(err(format!(
                    "{} Additional property {key} is not allowed",
                    sp
                )));
            }
            // Type and key checks of this file alone ("_" stands for the project name,
            // known only once all files are read).
            match section {
                "services" => convert::service(&key, item, project_dir, env).map(drop),
                "networks" => convert::network(&key, item, "_").map(drop),
                "volumes" => convert::volume_def(&key, item, "_").map(drop),
                kind => convert::file_def(kind, &key, item, project_dir, env).map(drop),
            }
            .map_err(err)?;
        }
    }
    // x- keys of the sections are extensions, not services/networks/volumes.
    if let Value::Mapping(root) = &mut tree {
        for section in ["services", "networks", "volumes", "secrets", "configs"] {
            if let Some(Value::Mapping(m)) = root.get_mut(section) {
                m.retain(|k, _| !interp::key_string(k).starts_with("x-"));
            }
        }
    }
    Ok(tree)
}

const NAME_RULE: &str =
    "must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number";

fn valid_project_name(n: &str) -> bool {
    let mut c = n.chars();
    matches!(c.next(), Some(f) if f.is_ascii_lowercase() || f.is_ascii_digit())
        && c.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// compose-go's NormalizeProjectName: lowercase, drop invalid characters, then leading
/// `-` and `_`.
pub fn normalize_project_name(n: &str) -> String {
    let lower: String = n
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_')
        .collect();
    lower.trim_start_matches(['-', '_']).to_string()
}

fn project_name(
    o: &LoadOptions,
    merged: &Value,
    env: &BTreeMap<String, String>,
    project_dir: &Path,
) -> Result<String, String> {
    let explicit = o
        .project_name
        .clone()
        .or_else(|| {
            merged
                .get("name")
                .and_then(Value::as_str)
                .map(String::from)
                .filter(|s| !s.is_empty())
        })
        .or_else(|| {
            env.get("COMPOSE_PROJECT_NAME")
                .cloned()
                .filter(|s| !s.is_empty())
        });
    if let Some(n) = explicit {
        if !valid_project_name(&n) {
            return Err(format!("invalid project name {n:?}: {NAME_RULE}"));
        }
        return Ok(n);
    }
    let base = project_dir
        .file_name()
        .map(|b| b.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = normalize_project_name(&base);
    if n.is_empty() {
        return Err(format!(
            "project name must not be empty: the directory name {base:?} has no valid character; use -p or `name:`"
        ));
    }
    Ok(n)
}

/// Defaults compose fills in: the `default` network of services that name none.
fn normalise(p: &mut Project) {
    let mut uses_default = false;
    for s in p.services.values_mut().chain(p.disabled.values_mut()) {
        // docker compose v2's name for a built image (v1 joined them with `_`).
        if s.image.is_empty() && s.build.is_some() {
            s.image = format!("{}-{}", p.name, s.name);
        }
        if s.networks.is_empty() && s.network_mode.is_none() {
            s.networks
                .insert("default".into(), ServiceNetwork::default());
        }
        uses_default |= s.networks.contains_key("default");
    }
    if uses_default && !p.networks.contains_key("default") {
        p.networks.insert(
            "default".into(),
            NetworkDef {
                name: format!("{}_default", p.name),
                ..Default::default()
            },
        );
    }
}

fn validate(p: &mut Project, file_of: &dyn Fn(&str) -> String) -> Result<(), ComposeError> {
    let bad = |svc: &str, msg: String| invalid(format!("{}: {msg}", file_of(svc)));
    let mut container_names: BTreeMap<String, String> = BTreeMap::new();
    let names: Vec<String> = p.services.keys().cloned().collect();
    for name in &names {
        let s = &p.services[name];
        if s.image.is_empty() {
            return Err(bad(name, format!("service {name:?} has neither an image nor a build context specified: invalid compose project")));
        }
        if let Some(mode) = &s.network_mode {
            // (normalise adds `default` only without a network_mode)
            if !s.networks.is_empty() {
                return Err(bad(name, format!("services.{name}: service declares mutually exclusive `network_mode` and `networks`: invalid compose project")));
            }
            match mode.as_str() {
                "host" | "none" | "bridge" => {}
                m if m.strip_prefix("container:").is_some_and(|c| !c.is_empty()) => {}
                m if m.starts_with("service:") => {
                    return Err(bad(
                        name,
                        format!("services.{name}.network_mode: {m:?} is not supported yet"),
                    ))
                }
                m => {
                    return Err(bad(
                        name,
                        format!("services.{name}.network_mode: invalid network mode {m:?}"),
                    ))
                }
            }
        }
        for n in s.networks.keys() {
            if !p.networks.contains_key(n) {
                return Err(bad(
                    name,
                    format!(
                        "service {name:?} refers to undefined network {n}: invalid compose project"
                    ),
                ));
            }
        }
        let build_secrets = s.build.iter().flat_map(|b| b.secrets.iter().map(|x| &x.1));
        for (kind, src, defined) in s
            .secrets
            .iter()
            .map(|m| ("secret", &m.source, &p.secrets))
            .chain(s.configs.iter().map(|m| ("config", &m.source, &p.configs)))
            .chain(build_secrets.map(|x| ("secret", x, &p.secrets)))
        {
            if !defined.contains_key(src) {
                return Err(bad(
                    name,
                    format!("service {name:?} refers to undefined {kind} {src}: invalid compose project"),
                ));
            }
        }
        for v in &s.volumes {
            if let (VolumeKind::Volume, Some(src)) = (v.kind, &v.source) {
                if !p.volumes.contains_key(src) {
                    return Err(bad(name, format!("service {name:?} refers to undefined volume {src}: invalid compose project")));
                }
            }
        }
        let max = s
            .autoscale
            .as_ref()
            .map(|a| a.max)
            .unwrap_or(0)
            .max(s.deploy.replicas.unwrap_or(1));
        if max > 1 {
            if let Some((net, _)) = s.networks.iter().find(|(_, n)| {
                n.ipv4_address.is_some() || n.ipv6_address.is_some() || n.mac_address.is_some()
            }) {
                return Err(bad(name, format!("services.{name}.networks.{net}: a fixed address can't be shared by {max} replicas: invalid compose project")));
            }
        }
        if let Some(cn) = &s.container_name {
            if max > 1 {
                return Err(bad(name, format!("services.{name}: can't set container_name and {name} as container name must be unique: invalid compose project")));
            }
            if let Some(other) = container_names.insert(cn.clone(), name.clone()) {
                return Err(bad(name, format!("services.{name}: container name {cn:?} is already in use by service {other:?}: invalid compose project")));
            }
        }
        if let (Some(a), Some(r)) = (&s.autoscale, s.deploy.replicas) {
            if r < a.min || r > a.max {
                return Err(bad(name, format!("services.{name}.deploy.replicas: {r} is outside x-berth-autoscale's range {}..{}", a.min, a.max)));
            }
        }
        // A CPU reservation places a task on a node with room (swarm): one host has no
        // placement to make. Said, not silently dropped.
        if s.deploy.resources.reservations.cpus.is_some() {
            p.warnings.push(format!("services.{name}.deploy.resources.reservations.cpus: a scheduling hint with no scheduler on one host: ignored (reservations.memory is applied as a soft limit)"));
        }
        // volumes_from a service: that service first (as compose-go adds the dependency).
        for (i, v) in s.volumes_from.clone().iter().enumerate() {
            let (src, _) = volumes_from_source(v)
                .map_err(|e| bad(name, format!("services.{name}.volumes_from.{i}: {e}")))?;
            let VolumesFrom::Service(dep) = src else {
                continue;
            };
            if !p.services.contains_key(dep) {
                let why = if p.disabled.contains_key(dep) {
                    "which is disabled by profiles"
                } else {
                    "which is not defined"
                };
                return Err(bad(name, format!("services.{name}.volumes_from.{i}: service {dep:?} {why}: invalid compose project")));
            }
            p.services
                .get_mut(name)
                .unwrap()
                .depends_on
                .entry(dep.to_string())
                .or_insert(Dependency {
                    condition: Condition::ServiceStarted,
                    restart: false,
                    required: true,
                });
        }
        let s = &p.services[name];
        for (dep, d) in s.depends_on.clone() {
            if p.services.contains_key(&dep) {
                continue;
            }
            if !d.required {
                p.warnings.push(format!("service {name:?} depends on undefined service {dep:?}: the optional dependency is ignored"));
                p.services.get_mut(name).unwrap().depends_on.remove(&dep);
            } else if p.disabled.contains_key(&dep) {
                return Err(bad(name, format!("service {name:?} depends on service {dep:?} which is disabled by profiles: invalid compose project")));
            } else {
                return Err(bad(name, format!("services.{name}.depends_on: service {name:?} depends on undefined service {dep:?}: invalid compose project")));
            }
        }
    }
    if let Some(cycle) = find_cycle(&p.services) {
        return Err(bad(
            &cycle[0],
            format!(
                "services.{}.depends_on: dependency cycle detected: {}",
                cycle[0],
                cycle.join(" -> ")
            ),
        ));
    }
    check_host_ports(p, &bad)
}

/// Where a `volumes_from` entry takes its mounts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumesFrom<'a> {
    Service(&'a str),
    Container(&'a str),
}

/// A `volumes_from` entry (`SERVICE[:ro|rw]` or `container:NAME[:ro|rw]`): its source and
/// the mode asked for.
pub fn volumes_from_source(v: &str) -> Result<(VolumesFrom<'_>, Option<&str>), String> {
    let (rest, mode) = match v.rsplit_once(':') {
        Some((r, m @ ("ro" | "rw"))) => (r, Some(m)),
        _ => (v, None),
    };
    let src = match rest.strip_prefix("container:") {
        Some(c) => VolumesFrom::Container(c),
        None if rest.contains(':') => {
            return Err(format!(
                "{v:?} is not SERVICE[:ro|rw] or container:NAME[:ro|rw]"
            ))
        }
        None => VolumesFrom::Service(rest),
    };
    if matches!(src, VolumesFrom::Service("") | VolumesFrom::Container("")) {
        return Err(format!("{v:?} names no service or container"));
    }
    Ok((src, mode))
}

fn find_cycle(services: &BTreeMap<String, Service>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        services: &BTreeMap<String, Service>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(n) {
            Some(2) => return None,
            Some(1) => {
                let start = stack.iter().position(|s| s == n).unwrap_or(0);
                let mut c = stack[start..].to_vec();
                c.push(n.to_string());
                return Some(c);
            }
            _ => {}
        }
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        if let Some(s) = services.get(n) {
            for d in s.depends_on.keys() {
                if let Some(c) = visit(d, services, state, stack) {
                    return Some(c);
                }
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in services.keys() {
        if let Some(c) = visit(n, services, &mut state, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

/// Two ports (of one service or of two) may not publish the same host port, protocol and
/// address (an unspecified address takes them all).
fn check_host_ports(
    p: &Project,
    bad: &dyn Fn(&str, String) -> ComposeError,
) -> Result<(), ComposeError> {
    // (proto, port) -> [(ip, service)]
    type Users = Vec<(Option<String>, String)>;
    let mut seen: BTreeMap<(String, u16), Users> = BTreeMap::new();
    for (name, s) in &p.services {
        for (i, port) in s.ports.iter().enumerate() {
            let Some(published) = &port.published else {
                continue;
            };
            let (a, b) = match published.split_once('-') {
                Some((a, b)) => (a.parse().unwrap_or(0), b.parse().unwrap_or(0)),
                None => {
                    let n: u16 = published.parse().unwrap_or(0);
                    (n, n)
                }
            };
            let ip = port
                .host_ip
                .clone()
                .filter(|ip| ip != "0.0.0.0" && ip != "::");
            for hp in a..=b {
                let entry = seen.entry((port.protocol.clone(), hp)).or_default();
                if let Some((_, other)) = entry
                    .iter()
                    .find(|(oip, _)| oip.is_none() || ip.is_none() || *oip == ip)
                {
                    let shown = ip.as_deref().unwrap_or("0.0.0.0");
                    let by = if other == name {
                        "another port of the same service".to_string()
                    } else {
                        format!("service {other:?}")
                    };
                    return Err(bad(
                        name,
                        format!("services.{name}.ports.{i}: host port {hp}/{} ({shown}) is already published by {by}", port.protocol),
                    ));
                }
                entry.push((ip.clone(), name.clone()));
            }
        }
    }
    Ok(())
}

impl Project {
    /// `config` output: the resolved model as docker compose v2 prints it.
    pub fn to_yaml(&self) -> String {
        output::to_yaml(self)
    }

    /// sha256 hex of the normalised service (com.docker.compose.config-hash): everything
    /// that shapes its containers, with the environment's `KEY: null` resolved. Left out
    /// (they change how many replicas run or how the supervisor acts, not a container):
    /// deploy.replicas, x-berth-autoscale, deploy.restart_policy, deploy.update_config,
    /// deploy.rollback_config, profiles, pull_policy. A built service's `image_id` is in
    /// it (a rebuilt image replaces the containers). An unknown service hashes as "".
    pub fn config_hash(&self, service: &str) -> String {
        use sha2::{Digest, Sha256};
        let Some(s) = self
            .services
            .get(service)
            .or_else(|| self.disabled.get(service))
        else {
            return String::new();
        };
        let mut s = s.clone();
        s.deploy.replicas = None;
        s.deploy.restart_policy = None;
        s.deploy.update_config = None;
        s.deploy.rollback_config = None;
        s.autoscale = None;
        s.profiles.clear();
        s.pull_policy = None;
        for (k, v) in s.environment.iter_mut() {
            if v.is_none() {
                *v = self.environment.get(k).cloned();
            }
        }
        // The real names of what it attaches to.
        let nets: Vec<Option<&NetworkDef>> =
            s.networks.keys().map(|n| self.networks.get(n)).collect();
        let vols: Vec<Option<&VolumeDef>> = s
            .volumes
            .iter()
            .filter_map(|v| v.source.as_ref())
            .map(|v| self.volumes.get(v))
            .collect();
        let json = serde_json::to_vec(&(
            &s,
            nets.iter().map(|n| n.map(|n| &n.name)).collect::<Vec<_>>(),
            vols.iter().map(|v| v.map(|v| &v.name)).collect::<Vec<_>>(),
        ))
        .expect("a service serialises");
        hex::encode(Sha256::digest(&json))
    }

    /// The given services (all enabled ones when empty) and their dependencies,
    /// dependencies first; ties in name order. A name that is no service is left out.
    /// The services an attached `up` follows: those named, else all but the ones with
    /// `attach: false` (empty: all of them); None when every service has `attach: false`.
    pub fn attached(&self, named: &[String]) -> Option<Vec<String>> {
        if !named.is_empty() || self.services.values().all(|s| s.attach != Some(false)) {
            return Some(named.to_vec());
        }
        let v: Vec<String> = self
            .services
            .values()
            .filter(|s| s.attach != Some(false))
            .map(|s| s.name.clone())
            .collect();
        (!v.is_empty()).then_some(v)
    }

    pub fn start_order(&self, services: &[String]) -> Vec<String> {
        fn visit(p: &Project, n: &str, out: &mut Vec<String>, seen: &mut BTreeSet<String>) {
            if !seen.insert(n.to_string()) {
                return;
            }
            let Some(s) = p.services.get(n).or_else(|| p.disabled.get(n)) else {
                return;
            };
            for d in s.depends_on.keys() {
                visit(p, d, out, seen);
            }
            out.push(n.to_string());
        }
        let mut wanted: Vec<String> = if services.is_empty() {
            self.services.keys().cloned().collect()
        } else {
            services.to_vec()
        };
        wanted.sort();
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for n in &wanted {
            visit(self, n, &mut out, &mut seen);
        }
        out
    }

    /// Enables services disabled by profiles, as docker compose does for services named
    /// on its command line: those named and the disabled services they depend on. The
    /// project is validated again (ports, dependencies...). Unknown names are an error.
    pub fn enable_services(&mut self, names: &[String]) -> Result<(), ComposeError> {
        let mut todo: Vec<String> = names.to_vec();
        while let Some(n) = todo.pop() {
            if self.services.contains_key(&n) {
                continue;
            }
            let s = self
                .disabled
                .remove(&n)
                .ok_or_else(|| invalid(format!("no such service: {n}")))?;
            todo.extend(s.depends_on.keys().cloned());
            self.services.insert(n, s);
        }
        let file = self
            .config_files
            .first()
            .map(|f| f.display().to_string())
            .unwrap_or_default();
        validate(self, &|_| file.clone())
    }

    /// A service by name, enabled or disabled by profiles.
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.get(name).or_else(|| self.disabled.get(name))
    }
}

#[cfg(test)]
mod tests;
