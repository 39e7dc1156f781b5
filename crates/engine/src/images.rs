//! `images`: the rows docker lists (one per tag, `<none>` for untagged images, newest
//! first) and its filters: `dangling=true|false`, `label=K[=V]`, `before=IMG`, `since=IMG`,
//! `reference=PATTERN` (Go's path.Match against `repo:tag`, then `repo`), which a
//! `REPOSITORY[:TAG]` argument adds to.

use crate::error::{Error, Result};
use berth_image::store::{ImageRecord, Records, Store};
use berth_registry::Reference;
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct ImageRow {
    /// Familiar name (`busybox`, `example.com:5000/x`) or `<none>`.
    pub repository: String,
    pub tag: String,
    /// The manifest digest the registry knows this repository by, or `<none>`.
    pub digest: String,
    /// `sha256:...` (the config digest).
    pub id: String,
    /// Seconds since the epoch, from the image config's `created`.
    pub created: Option<i64>,
    /// The unpacked layers' size (docker's SIZE).
    pub size: u64,
}

/// docker's short form of a name: `docker.io/library/x` is `x`, `docker.io/u/x` is `u/x`.
pub fn familiar_name(r: &Reference) -> String {
    let n = r.name();
    match n.strip_prefix("docker.io/") {
        Some(s) => s.strip_prefix("library/").unwrap_or(s).to_string(),
        None => n,
    }
}

#[derive(Default)]
struct Filters {
    dangling: Option<bool>,
    labels: Vec<(String, Option<String>)>,
    before: Option<i64>,
    since: Option<i64>,
    references: Vec<String>,
}

struct Image<'a> {
    rec: &'a ImageRecord,
    created: Option<i64>,
    labels: serde_json::Map<String, Value>,
}

fn image<'a>(store: &Store, rec: &'a ImageRecord) -> Image<'a> {
    let cfg: Value = store
        .read_blob(&rec.config)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    Image {
        rec,
        created: cfg["created"]
            .as_str()
            .and_then(crate::record::parse_rfc3339)
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64),
        labels: cfg["config"]["Labels"]
            .as_object()
            .cloned()
            .unwrap_or_default(),
    }
}

fn parse_filters(store: &Store, recs: &Records, given: &[String]) -> Result<Filters> {
    let mut f = Filters::default();
    let created_of = |what: &str| -> Result<i64> {
        let rec = store
            .resolve(recs, what)
            .map_err(|_| Error::Invalid(format!("No such image: {what}")))?;
        image(store, &rec)
            .created
            .ok_or_else(|| Error::Invalid(format!("image {what} has no creation time")))
    };
    for g in given {
        let (k, v) = g.split_once('=').ok_or_else(|| {
            Error::Invalid(format!("bad format of filter (expected name=value): {g:?}"))
        })?;
        match k {
            "dangling" => {
                f.dangling = Some(match v.to_ascii_lowercase().as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(Error::Invalid(format!("invalid filter 'dangling={v}'"))),
                })
            }
            "label" => f.labels.push(match v.split_once('=') {
                Some((a, b)) => (a.to_string(), Some(b.to_string())),
                None => (v.to_string(), None),
            }),
            "before" => f.before = Some(created_of(v)?),
            "since" => f.since = Some(created_of(v)?),
            "reference" => f.references.push(v.to_string()),
            _ => return Err(Error::Invalid(format!("invalid filter '{k}'"))),
        }
    }
    Ok(f)
}

/// The rows of `images [REPOSITORY[:TAG]] [--filter ...]`, newest image first.
pub fn list(store: &Store, filters: &[String], reference: Option<&str>) -> Result<Vec<ImageRow>> {
    let recs = store.records()?;
    let mut f = parse_filters(store, &recs, filters)?;
    if let Some(r) = reference {
        f.references.push(r.to_string());
    }
    let mut images: Vec<Image> = recs.images.values().map(|r| image(store, r)).collect();
    images.sort_by(|a, b| {
        b.created
            .cmp(&a.created)
            .then(a.rec.config.cmp(&b.rec.config))
    });
    let mut rows = Vec::new();
    for img in &images {
        let keep = f.labels.iter().all(|(k, v)| match (img.labels.get(k), v) {
            (Some(_), None) => true,
            (Some(x), Some(v)) => x.as_str() == Some(v.as_str()),
            (None, _) => false,
        }) && f.before.is_none_or(|b| img.created.is_some_and(|c| c < b))
            && f.since.is_none_or(|s| img.created.is_some_and(|c| c > s));
        if !keep {
            continue;
        }
        let refs: Vec<Reference> = recs
            .tags_of(&img.rec.manifest)
            .iter()
            .filter_map(|t| Reference::parse(t).ok())
            .collect();
        let row = |repository: String, tag: String, digest: String| ImageRow {
            repository,
            tag,
            digest,
            id: img.rec.config.clone(),
            created: img.created,
            size: img.rec.size,
        };
        if refs.is_empty() {
            // Untagged: dangling; never matched by a reference.
            if f.dangling != Some(false) && f.references.is_empty() {
                rows.push(row("<none>".into(), "<none>".into(), "<none>".into()));
            }
            continue;
        }
        if f.dangling == Some(true) {
            continue;
        }
        for r in &refs {
            let name = familiar_name(r);
            let tag = match (&r.tag, &r.digest) {
                (_, Some(_)) => None,
                (t, None) => t.clone(),
            };
            // A digest reference shows as a `<none>` tag of its repository, unless the
            // repository also has a tag for this image.
            if tag.is_none()
                && refs
                    .iter()
                    .any(|o| o.digest.is_none() && familiar_name(o) == name)
            {
                continue;
            }
            let full = match &tag {
                Some(t) => format!("{name}:{t}"),
                None => name.clone(),
            };
            if !f.references.is_empty()
                && !f
                    .references
                    .iter()
                    .any(|p| glob_match(p, &full) || glob_match(p, &name))
            {
                continue;
            }
            let digest = img
                .rec
                .repo_digests
                .iter()
                .chain(
                    recs.tags_of(&img.rec.manifest)
                        .iter()
                        .filter(|t| t.contains('@')),
                )
                .filter_map(|d| d.split_once('@'))
                .find(|(n, _)| Reference::parse(n).is_ok_and(|x| familiar_name(&x) == name))
                .map(|(_, d)| d.to_string())
                .unwrap_or_else(|| "<none>".into());
            rows.push(row(name, tag.unwrap_or_else(|| "<none>".into()), digest));
        }
    }
    Ok(rows)
}

/// Go's path.Match: `*` any run of non-`/`, `?` one non-`/`, `[...]` classes (`^` negates,
/// ranges), `\` escapes. A malformed pattern matches nothing.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    glob(&p, &n).unwrap_or(false)
}

fn glob(p: &[char], n: &[char]) -> Option<bool> {
    match p.first() {
        None => Some(n.is_empty()),
        Some('*') => {
            let rest = &p[1..];
            for i in 0..=n.len() {
                if glob(rest, &n[i..])? {
                    return Some(true);
                }
                if i < n.len() && n[i] == '/' {
                    break;
                }
            }
            Some(false)
        }
        Some('?') => match n.first() {
            Some(c) if *c != '/' => glob(&p[1..], &n[1..]),
            _ => Some(false),
        },
        Some('[') => {
            let c = *n.first()?;
            let mut i = 1;
            let negate = p.get(i) == Some(&'^');
            if negate {
                i += 1;
            }
            let mut hit = false;
            let mut first = true;
            loop {
                let mut lo = *p.get(i)?;
                if lo == ']' && !first {
                    i += 1;
                    break;
                }
                first = false;
                if lo == '\\' {
                    i += 1;
                    lo = *p.get(i)?;
                }
                i += 1;
                let mut hi = lo;
                if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|x| *x != ']') {
                    hi = p[i + 1];
                    if hi == '\\' {
                        hi = *p.get(i + 2)?;
                        i += 1;
                    }
                    i += 2;
                }
                if lo <= c && c <= hi {
                    hit = true;
                }
            }
            if hit != negate && c != '/' {
                glob(&p[i..], &n[1..])
            } else {
                Some(false)
            }
        }
        Some('\\') => match (p.get(1), n.first()) {
            (Some(a), Some(b)) if a == b => glob(&p[2..], &n[1..]),
            (None, _) => None,
            _ => Some(false),
        },
        Some(c) => match n.first() {
            Some(x) if x == c => glob(&p[1..], &n[1..]),
            _ => Some(false),
        },
    }
}

/// Image `what` in docker's `image inspect` shape (also the API's `GET /images/{name}/json`).
pub fn inspect(store: &Store, what: &str) -> Result<Value> {
    let recs = store.records()?;
    let rec = store.resolve(&recs, what)?;
    let blob = |d: &str| -> Result<Value> {
        serde_json::from_slice(&store.read_blob(d)?)
            .map_err(|e| Error::Invalid(format!("decode blob {d}: {e}")))
    };
    let cfg = blob(&rec.config)?;
    let manifest = blob(&rec.manifest)?;
    let tags: Vec<String> = recs
        .tags_of(&rec.manifest)
        .iter()
        .filter(|t| !t.contains('@'))
        .filter_map(|t| Reference::parse(t).ok())
        .map(|r| {
            format!(
                "{}:{}",
                familiar_name(&r),
                r.tag.as_deref().unwrap_or("<none>")
            )
        })
        .collect();
    let lower: Vec<String> = rec
        .chain_ids
        .iter()
        .rev()
        .map(|c| {
            store
                .layer_dir(c)
                .map(|d| d.join("diff").display().to_string())
                .unwrap_or_default()
        })
        .collect();
    Ok(serde_json::json!({
        "Id": rec.config,
        "RepoTags": tags,
        "RepoDigests": rec.repo_digests,
        "Comment": cfg.get("comment").cloned().unwrap_or_else(|| serde_json::json!("")),
        "Created": cfg.get("created"),
        "Author": cfg.get("author"),
        "Config": cfg.get("config"),
        "Architecture": cfg.get("architecture"),
        "Os": cfg.get("os"),
        "Variant": cfg.get("variant"),
        "Size": rec.size,
        "RootFS": {"Type": "layers", "Layers": cfg.pointer("/rootfs/diff_ids")},
        "Manifest": {"Digest": rec.manifest, "MediaType": manifest.get("mediaType"), "Layers": rec.layers},
        "Index": rec.index,
        "GraphDriver": {"Name": "overlay", "Data": graph_data(&lower)},
    }))
}

/// docker's overlay2 words for an image's layers (a map of strings, which the docker CLI
/// decodes): the top layer is `UpperDir`, those below it `LowerDir`, ':'-joined, top
/// first.
fn graph_data(layers: &[String]) -> serde_json::Value {
    let mut d = serde_json::Map::new();
    if let Some((top, below)) = layers.split_first() {
        d.insert("UpperDir".into(), top.clone().into());
        if !below.is_empty() {
            d.insert("LowerDir".into(), below.join(":").into());
        }
    }
    serde_json::Value::Object(d)
}

/// What removing an image did, in docker's order (`Untagged: repo:tag`, `Deleted: id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    Untagged(String),
    Deleted(String),
}

/// Containers whose creation was cut short hold image leases: swept before deciding that
/// an image is in use.
fn sweep_containers(store: &Store) {
    if let Ok(l) = crate::layout::Layout::open(store.root()) {
        let _ = crate::inventory::sweep(&l, store);
    }
}

/// `rmi WHAT`: a name removes that tag; an ID removes the image (all its tags with
/// `force`, else refused when it has several). The last tag of an image a container uses
/// is refused without `force`. Blobs and layers go at the next [`gc`].
pub fn remove(store: &Store, what: &str, force: bool) -> Result<Vec<Removed>> {
    sweep_containers(store);
    let in_use = store.images_in_use()?;
    let mut done = Vec::new();
    store.update_records(|recs| {
        let rec = store.resolve(recs, what)?;
        let tags = recs.tags_of(&rec.manifest);
        let by_name = Reference::parse(what)
            .ok()
            .map(|r| r.to_string())
            .filter(|t| recs.tags.contains_key(t));
        let removing: Vec<String> = match by_name {
            Some(t) => vec![t],
            None if tags.len() > 1 && !force => {
                return Err(berth_image::Error::MultipleTags(what.to_string()));
            }
            None => tags.clone(),
        };
        let last = removing.len() == tags.len();
        if last && !force {
            if let Some(c) = in_use.get(&rec.manifest) {
                return Err(berth_image::Error::InUse {
                    image: what.to_string(),
                    containers: c.join(", "),
                });
            }
        }
        for t in &removing {
            recs.tags.remove(t);
            let r = Reference::parse(t).expect("stored references parse");
            let tag = r.tag.clone().unwrap_or_else(|| "<none>".into());
            done.push(Removed::Untagged(format!("{}:{tag}", familiar_name(&r))));
        }
        if last {
            recs.images.remove(&rec.manifest);
            done.push(Removed::Deleted(rec.config.clone()));
        }
        Ok(())
    })?;
    Ok(done)
}

/// Frees the blobs and layers no image holds.
pub fn gc(store: &Store) -> Result<berth_image::store::GcReport> {
    let l = store.lock_exclusive()?;
    Ok(store.gc(&l)?)
}

/// `image prune`: dangling images, or with `all` every image no container uses; the
/// removed images' ids and the bytes freed.
pub fn prune(store: &Store, all: bool) -> Result<(Vec<String>, u64)> {
    sweep_containers(store);
    let in_use = store.images_in_use()?;
    let removed = store.update_records(|recs| {
        let mut removed = Vec::new();
        let ids: Vec<String> = recs.images.keys().cloned().collect();
        for m in ids {
            let tagged = !recs.tags_of(&m).is_empty();
            if in_use.contains_key(&m) || (tagged && !all) {
                continue;
            }
            for t in recs.tags_of(&m) {
                recs.tags.remove(&t);
            }
            if let Some(r) = recs.images.remove(&m) {
                removed.push(r.config);
            }
        }
        Ok(removed)
    })?;
    let rep = gc(store)?;
    Ok((removed, rep.bytes))
}

/// `tag SOURCE TARGET`.
pub fn tag(store: &Store, source: &str, target: &str) -> Result<()> {
    let t = Reference::parse(target).map_err(berth_image::Error::from)?;
    if t.digest.is_some() {
        return Err(Error::Invalid(format!(
            "tag {target:?}: a tag cannot contain a digest"
        )));
    }
    let recs = store.records()?;
    let rec = store.resolve(&recs, source)?;
    store.add_image(rec, Some(&t.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_match() {
        assert!(glob_match("busybox", "busybox"));
        assert!(glob_match("busy*", "busybox"));
        assert!(glob_match("*:latest", "busybox:latest"));
        assert!(!glob_match("*", "library/busybox"));
        assert!(glob_match("*/*", "library/busybox"));
        assert!(glob_match("b?sybox", "busybox"));
        assert!(glob_match("[a-c]usybox", "busybox"));
        assert!(!glob_match("[^a-c]usybox", "busybox"));
        assert!(glob_match("a\\*b", "a*b"));
        assert!(!glob_match("[", "a"));
        assert!(!glob_match("busy", "busybox"));
    }
}

/// `import -c/--change`: Dockerfile lines (CMD, ENTRYPOINT, ENV, EXPOSE, USER, WORKDIR,
/// LABEL, VOLUME; CMD/ENTRYPOINT/VOLUME in JSON or shell form) applied in order to an image
/// config's `config` object, as docker's import does.
pub fn apply_changes(changes: &[String]) -> Result<Value> {
    let mut c = serde_json::Map::new();
    for line in changes {
        let line = line.trim();
        let (instr, rest) = line
            .split_once(char::is_whitespace)
            .map(|(a, b)| (a, b.trim()))
            .unwrap_or((line, ""));
        let up = instr.to_ascii_uppercase();
        if !matches!(
            up.as_str(),
            "CMD" | "ENTRYPOINT" | "ENV" | "EXPOSE" | "USER" | "WORKDIR" | "LABEL" | "VOLUME"
        ) {
            return Err(Error::Invalid(format!(
                "{up} is not a valid change command (valid: CMD, ENTRYPOINT, ENV, EXPOSE, USER, WORKDIR, LABEL, VOLUME)"
            )));
        }
        if rest.is_empty() {
            return Err(Error::Invalid(format!(
                "{up} requires at least one argument"
            )));
        }
        let json_list = || -> Option<Vec<String>> {
            rest.starts_with('[')
                .then(|| serde_json::from_str::<Vec<String>>(rest).ok())
                .flatten()
        };
        match up.as_str() {
            "CMD" | "ENTRYPOINT" => {
                let argv = json_list()
                    .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into(), rest.to_string()]);
                let key = if up == "CMD" { "Cmd" } else { "Entrypoint" };
                c.insert(key.into(), serde_json::json!(argv));
            }
            "ENV" | "LABEL" => {
                let pairs = name_values(&up, rest)?;
                if up == "ENV" {
                    let env = c.entry("Env").or_insert_with(|| serde_json::json!([]));
                    if let Some(list) = env.as_array_mut() {
                        for (k, v) in pairs {
                            list.retain(|e| {
                                e.as_str().and_then(|e| e.split_once('=')).map(|x| x.0)
                                    != Some(k.as_str())
                            });
                            list.push(Value::String(format!("{k}={v}")));
                        }
                    }
                } else {
                    let labels = c.entry("Labels").or_insert_with(|| serde_json::json!({}));
                    if let Some(m) = labels.as_object_mut() {
                        for (k, v) in pairs {
                            m.insert(k, Value::String(v));
                        }
                    }
                }
            }
            "EXPOSE" => {
                let ports = c
                    .entry("ExposedPorts")
                    .or_insert_with(|| serde_json::json!({}));
                for w in words(rest)? {
                    for (port, proto) in crate::net::parse_expose(&w)? {
                        if let Some(m) = ports.as_object_mut() {
                            m.insert(format!("{port}/{proto}"), serde_json::json!({}));
                        }
                    }
                }
            }
            "VOLUME" => {
                let list = match json_list() {
                    Some(l) => l,
                    None => words(rest)?,
                };
                let vols = c.entry("Volumes").or_insert_with(|| serde_json::json!({}));
                for v in list {
                    if v.is_empty() {
                        return Err(Error::Invalid(
                            "VOLUME specified can not be an empty string".into(),
                        ));
                    }
                    if let Some(m) = vols.as_object_mut() {
                        m.insert(v, serde_json::json!({}));
                    }
                }
            }
            "USER" => {
                c.insert("User".into(), Value::String(rest.to_string()));
            }
            _ => {
                // WORKDIR: a relative path is relative to the previous one.
                let dir = if rest.starts_with('/') {
                    rest.to_string()
                } else {
                    let prev = c.get("WorkingDir").and_then(|v| v.as_str()).unwrap_or("/");
                    format!("{}/{rest}", prev.trim_end_matches('/'))
                };
                c.insert("WorkingDir".into(), Value::String(dir));
            }
        }
    }
    // Go maps marshal in key order.
    for k in ["ExposedPorts", "Labels", "Volumes"] {
        if let Some(Value::Object(m)) = c.get_mut(k) {
            m.sort_keys();
        }
    }
    Ok(Value::Object(c))
}

/// Splits Dockerfile arguments into words: quotes group and are removed, `\` escapes.
fn words(s: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut it = s.chars();
    while let Some(c) = it.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') | (None, '\\') => {
                if let Some(n) = it.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if let Some(q) = quote {
        return Err(Error::Invalid(format!("unmatched {q} in {s:?}")));
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// ENV/LABEL arguments: `K=V K2="v 2"`, or the legacy `K some value`.
fn name_values(instr: &str, rest: &str) -> Result<Vec<(String, String)>> {
    let first = rest.split_whitespace().next().unwrap_or("");
    if !first.contains('=') {
        let (k, v) = rest
            .split_once(char::is_whitespace)
            .ok_or_else(|| Error::Invalid(format!("{instr} must have two arguments")))?;
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    words(rest)?
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some(("", _)) => Err(Error::Invalid(format!("{instr} names can not be blank"))),
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => Err(Error::Invalid(format!(
                "syntax error - can't find = in {w:?}. Must be of the form: name=value"
            ))),
        })
        .collect()
}

#[cfg(test)]
mod change_tests {
    use super::*;
    use serde_json::json;

    fn ch(lines: &[&str]) -> Result<Value> {
        apply_changes(&lines.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn dockerfile_lines() {
        let c = ch(&[
            r#"CMD ["echo", "hi"]"#,
            "entrypoint /bin/sh -x",
            r#"ENV A=1 B="two words""#,
            "ENV C legacy value",
            "ENV A=3",
            "EXPOSE 80 53/udp",
            "USER nobody",
            "WORKDIR /srv",
            "WORKDIR app",
            r#"LABEL k=v "x y"=z"#,
            r#"VOLUME ["/data"]"#,
            "VOLUME /a /b",
        ])
        .unwrap();
        assert_eq!(c["Cmd"], json!(["echo", "hi"]));
        assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c", "/bin/sh -x"]));
        assert_eq!(c["Env"], json!(["B=two words", "C=legacy value", "A=3"]));
        assert_eq!(
            serde_json::to_string(&c["ExposedPorts"]).unwrap(),
            r#"{"53/udp":{},"80/tcp":{}}"#
        );
        assert_eq!(c["User"], "nobody");
        assert_eq!(c["WorkingDir"], "/srv/app");
        assert_eq!(c["Labels"], json!({"k": "v", "x y": "z"}));
        assert_eq!(c["Volumes"], json!({"/data": {}, "/a": {}, "/b": {}}));
        assert_eq!(
            ch(&["CMD echo hi"]).unwrap()["Cmd"],
            json!(["/bin/sh", "-c", "echo hi"])
        );
        let e = ch(&["RUN true"]).unwrap_err().to_string();
        assert!(e.starts_with("RUN is not a valid change command"), "{e}");
        assert!(ch(&["CMD"])
            .unwrap_err()
            .to_string()
            .contains("CMD requires at least one argument"));
        assert!(ch(&["EXPOSE http"]).is_err());
        assert!(ch(&["ENV =x"]).is_err());
    }
}

/// The images `names` name for `save`, each with the names recorded for it in the archive:
/// the one asked for when it is a tag, else every tag of the image (an ID).
pub fn save_targets(store: &Store, names: &[String]) -> Result<Vec<(ImageRecord, Vec<String>)>> {
    let recs = store.records()?;
    let mut imgs = Vec::new();
    for what in names {
        let rec = store.resolve(&recs, what)?;
        let tags = match Reference::parse(what)
            .ok()
            .map(|r| r.to_string())
            .filter(|t| recs.tags.contains_key(t))
        {
            Some(t) => vec![t],
            None => recs.tags_of(&rec.manifest),
        };
        imgs.push((rec, tags));
    }
    Ok(imgs)
}

/// docker's `save`: `images` (from [`save_targets`]) as one archive of `format`.
pub fn save(
    store: &Store,
    images: &[(ImageRecord, Vec<String>)],
    format: berth_image::archive::Format,
    w: impl std::io::Write,
) -> Result<()> {
    Ok(berth_image::archive::save(store, images, format, w)?)
}

/// docker's `load`: a docker-archive or oci-archive into the store; the lines docker
/// prints for it (`Loaded image: busybox:latest`, `Loaded image ID: sha256:...`).
pub fn load(store: &Store, r: impl std::io::Read) -> Result<Vec<String>> {
    let opts = berth_image::unpack::UnpackOptions::default();
    let loaded = berth_image::archive::load(store, r, &opts)?;
    let mut lines = Vec::new();
    for l in loaded {
        if l.tags.is_empty() {
            lines.push(format!("Loaded image ID: {}", l.id));
        }
        for t in l.tags {
            let r = Reference::parse(&t).map_err(berth_image::Error::from)?;
            let tag = r.tag.clone().unwrap_or_else(|| "<none>".into());
            lines.push(format!("Loaded image: {}:{tag}", familiar_name(&r)));
        }
    }
    Ok(lines)
}

/// A push of a stored image to a registry (docker's `push`).
pub struct Push {
    pub rec: ImageRecord,
    /// Where it goes (`destination`, else the image's own name).
    pub dest: Reference,
}

/// What a push made: the manifest's digest and size, under `tag`.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub tag: String,
    pub digest: String,
    pub size: usize,
}

impl Push {
    pub fn new(store: &Store, image: &str, destination: Option<&str>) -> Result<Push> {
        let recs = store.records()?;
        let rec = store.resolve(&recs, image)?;
        let dest =
            Reference::parse(destination.unwrap_or(image)).map_err(berth_image::Error::from)?;
        Ok(Push { rec, dest })
    }

    /// Pushes with `client_opts` (their credentials, else the auth files'), reporting
    /// each blob to `progress`.
    pub async fn run(
        &self,
        store: &Store,
        client_opts: &berth_registry::ClientOptions,
        progress: std::sync::Arc<dyn berth_image::distribution::Progress>,
    ) -> Result<Pushed> {
        let client =
            berth_registry::Client::new(client_opts.clone()).map_err(berth_image::Error::from)?;
        let digest =
            berth_image::distribution::push(store, &client, &self.rec, &self.dest, progress)
                .await?;
        Ok(Pushed {
            tag: self.dest.tag.clone().unwrap_or_else(|| "latest".into()),
            digest,
            size: store.read_blob(&self.rec.manifest)?.len(),
        })
    }
}

/// One row of docker's `history`, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// The image's ID on the top row, `<missing>` below (Berth keeps no parent images).
    pub id: String,
    /// Seconds since the epoch (Go's zero time when the entry has none).
    pub created: i64,
    pub created_by: String,
    /// The image's tags (familiar names) on the top row.
    pub tags: Vec<String>,
    /// The unpacked size of the layer the entry made; 0 for an empty layer.
    pub size: u64,
    pub comment: String,
}

/// Go's zero time in Unix seconds: what dockerd reports for an entry with no date.
const GO_ZERO_TIME: i64 = -62135596800;

/// docker's `history` of image `what`: its config's history entries, each non-empty one
/// matched with the next layer's size, newest first.
pub fn history(store: &Store, what: &str) -> Result<Vec<HistoryRow>> {
    let recs = store.records()?;
    let rec = store.resolve(&recs, what)?;
    let cfg: Value = serde_json::from_slice(&store.read_blob(&rec.config)?)
        .map_err(|e| Error::Invalid(format!("decode the config of image {}: {e}", rec.config)))?;
    let mut rows = Vec::new();
    let mut layer = 0;
    for h in cfg["history"].as_array().into_iter().flatten() {
        let mut size = 0;
        if !h["empty_layer"].as_bool().unwrap_or(false) {
            let chain = rec.chain_ids.get(layer).ok_or_else(|| {
                Error::Invalid(format!(
                    "image {}: too many non-empty layers in its history",
                    rec.config
                ))
            })?;
            size = berth_image::layers::unpacked_size(store, std::slice::from_ref(chain))?;
            layer += 1;
        }
        let created = h["created"]
            .as_str()
            .and_then(crate::record::parse_rfc3339)
            .map_or(GO_ZERO_TIME, |t| {
                match t.duration_since(std::time::UNIX_EPOCH) {
                    Ok(d) => d.as_secs() as i64,
                    Err(e) => -(e.duration().as_secs() as i64),
                }
            });
        rows.push(HistoryRow {
            id: "<missing>".into(),
            created,
            created_by: h["created_by"].as_str().unwrap_or_default().to_string(),
            tags: Vec::new(),
            size,
            comment: h["comment"].as_str().unwrap_or_default().to_string(),
        });
    }
    // A config without history (made by a tool that writes none): one row per layer, so
    // the layers and their sizes still show (dockerd would list nothing).
    if rows.is_empty() {
        let created = cfg["created"]
            .as_str()
            .and_then(crate::record::parse_rfc3339)
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(GO_ZERO_TIME, |d| d.as_secs() as i64);
        for chain in &rec.chain_ids {
            rows.push(HistoryRow {
                id: "<missing>".into(),
                created,
                created_by: String::new(),
                tags: Vec::new(),
                size: berth_image::layers::unpacked_size(store, std::slice::from_ref(chain))?,
                comment: String::new(),
            });
        }
    }
    rows.reverse();
    if let Some(top) = rows.first_mut() {
        top.id = rec.config.clone();
        top.tags = recs
            .tags_of(&rec.manifest)
            .iter()
            .filter(|t| !t.contains('@'))
            .filter_map(|t| Reference::parse(t).ok())
            .filter_map(|r| Some(format!("{}:{}", familiar_name(&r), r.tag.as_deref()?)))
            .collect();
    }
    Ok(rows)
}
