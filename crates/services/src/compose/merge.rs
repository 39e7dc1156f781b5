//! Merging several compose files as docker compose v2 (compose-go) does: mappings merged
//! key by key, scalars overridden, sequences appended; command, entrypoint and
//! healthcheck.test replaced; environment, labels, sysctls... merged by key; then the
//! sequences that compose keeps unique (ports, volumes by target, expose, dns...) lose
//! their earlier duplicates (the later definition wins, at the earlier position).

use serde_norway::{Mapping, Value};

use super::convert::{parse_port_short, parse_volume_short};
use super::interp::key_string;

fn matches(path: &[String], pattern: &str) -> bool {
    let pat: Vec<&str> = pattern.split('.').collect();
    pat.len() == path.len() && pat.iter().zip(path).all(|(p, s)| *p == "*" || p == s)
}

/// Merges `over` (a later file) onto `base`.
pub fn merge(base: Value, over: Value, path: &mut Vec<String>) -> Result<Value, String> {
    for p in [
        "services.*.command",
        "services.*.entrypoint",
        "services.*.healthcheck.test",
    ] {
        if matches(path, p) {
            return Ok(over);
        }
    }
    for p in [
        "services.*.environment",
        "services.*.labels",
        "services.*.deploy.labels",
        "services.*.sysctls",
        "services.*.tmpfs",
        "services.*.dns",
        "services.*.dns_opt",
        "services.*.dns_search",
        "services.*.env_file",
        "services.*.build.args",
        "services.*.build.labels",
        "networks.*.labels",
        "volumes.*.labels",
    ] {
        if matches(path, p) {
            let mut seq = to_sequence(base);
            seq.extend(to_sequence(over));
            return Ok(Value::Sequence(seq));
        }
    }
    if matches(path, "services.*.extra_hosts") {
        let mut seq = to_sequence(base);
        for v in to_sequence(over) {
            if !seq.contains(&v) {
                seq.push(v);
            }
        }
        return Ok(Value::Sequence(seq));
    }
    if matches(path, "services.*.depends_on") || matches(path, "services.*.networks") {
        let dep = matches(path, "services.*.depends_on");
        let b = to_mapping(base, dep);
        let o = to_mapping(over, dep);
        return merge_mappings(b, o, path).map(Value::Mapping);
    }
    // `build: DIR` is `build: {context: DIR}`, so that a later file's long form merges.
    if matches(path, "services.*.build") {
        let long = |v: Value| match v {
            Value::String(c) => {
                let mut m = Mapping::new();
                m.insert(Value::String("context".into()), Value::String(c));
                Value::Mapping(m)
            }
            v => v,
        };
        if let (Value::Mapping(b), Value::Mapping(o)) = (long(base.clone()), long(over.clone())) {
            return merge_mappings(b, o, path).map(Value::Mapping);
        }
    }
    if matches(path, "services.*.ulimits.*") {
        return Ok(over);
    }
    if matches(path, "networks.*.ipam.config") {
        let (Value::Sequence(mut b), Value::Sequence(o)) = (base.clone(), over.clone()) else {
            return Ok(over);
        };
        for item in o {
            let subnet = item.get("subnet").cloned();
            match b.iter_mut().find(|x| x.get("subnet").cloned() == subnet) {
                Some(existing) => {
                    let merged = merge(existing.clone(), item, path)?;
                    *existing = merged;
                }
                None => b.push(item),
            }
        }
        return Ok(Value::Sequence(b));
    }
    if over.is_null() {
        return Ok(base);
    }
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => merge_mappings(b, o, path).map(Value::Mapping),
        (Value::Mapping(_), _) | (_, Value::Mapping(_)) => Err(format!(
            "{}: cannot override a mapping with a non-mapping value or the reverse",
            path.join(".")
        )),
        (Value::Sequence(mut b), Value::Sequence(o)) => {
            b.extend(o);
            Ok(Value::Sequence(b))
        }
        (_, o) => Ok(o),
    }
}

fn merge_mappings(
    mut base: Mapping,
    over: Mapping,
    path: &mut Vec<String>,
) -> Result<Mapping, String> {
    for (k, v) in over {
        // compose's `!reset` (drop what earlier files set) and `!override` (replace
        // instead of merging).
        if let Value::Tagged(t) = &v {
            if t.tag == "reset" {
                base.remove(&k);
                continue;
            }
            if t.tag == "override" {
                base.insert(k, t.value.clone());
                continue;
            }
        }
        match base.get_mut(&k) {
            None => {
                base.insert(k, v);
            }
            Some(existing) => {
                path.push(key_string(&k));
                let merged = merge(existing.clone(), v, path)?;
                path.pop();
                *existing = merged;
            }
        }
    }
    Ok(base)
}

/// Resolves the `!reset` and `!override` tags left after merging (a `!reset` key is
/// removed, `!override` is its value); any other tag is an error.
pub fn strip_tags(v: &mut Value, path: &mut Vec<String>) -> Result<(), String> {
    match v {
        Value::Mapping(m) => {
            m.retain(|_, x| !matches!(x, Value::Tagged(t) if t.tag == "reset"));
            for (k, x) in m.iter_mut() {
                path.push(key_string(k));
                strip_tags(x, path)?;
                path.pop();
            }
        }
        Value::Sequence(s) => {
            s.retain(|x| !matches!(x, Value::Tagged(t) if t.tag == "reset"));
            for (i, x) in s.iter_mut().enumerate() {
                path.push(i.to_string());
                strip_tags(x, path)?;
                path.pop();
            }
        }
        Value::Tagged(t) if t.tag == "override" => {
            *v = std::mem::take(&mut t.value);
            strip_tags(v, path)?;
        }
        Value::Tagged(t) => {
            return Err(format!(
                "{}: unsupported YAML tag {}",
                path.join("."),
                t.tag
            ))
        }
        _ => {}
    }
    Ok(())
}

/// A list_or_dict as a sequence (`KEY=VALUE`, bare `KEY` for null), mappings sorted by
/// key as compose-go does.
fn to_sequence(v: Value) -> Vec<Value> {
    match v {
        Value::Sequence(s) => s,
        Value::Mapping(m) => {
            let mut out: Vec<String> = Vec::new();
            for (k, v) in m {
                let k = key_string(&k);
                match v {
                    Value::Null => out.push(k),
                    Value::Sequence(items) => {
                        for i in items {
                            out.push(format!("{k}={}", scalar_string(&i)));
                        }
                    }
                    v => out.push(format!("{k}={}", scalar_string(&v))),
                }
            }
            out.sort();
            out.into_iter().map(Value::String).collect()
        }
        Value::Null => Vec::new(),
        v => vec![v],
    }
}

fn scalar_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => key_string(other),
    }
}

fn to_mapping(v: Value, depends_on: bool) -> Mapping {
    match v {
        Value::Mapping(m) => m,
        Value::Sequence(s) => s
            .into_iter()
            .map(|name| {
                let value = if depends_on {
                    let mut m = Mapping::new();
                    m.insert("condition".into(), "service_started".into());
                    m.insert("required".into(), true.into());
                    Value::Mapping(m)
                } else {
                    Value::Null
                };
                (name, value)
            })
            .collect(),
        _ => Mapping::new(),
    }
}

/// Removes earlier duplicates from the sequences compose keeps unique.
pub fn enforce_unicity(v: &mut Value, path: &mut Vec<String>) {
    type Indexer = fn(&Value) -> String;
    let rules: [(&str, Indexer); 14] = [
        ("services.*.environment", key_value),
        ("services.*.labels", key_value),
        ("services.*.deploy.labels", key_value),
        ("services.*.sysctls", key_value),
        ("services.*.tmpfs", key_value),
        ("services.*.cap_add", key_value),
        ("services.*.cap_drop", key_value),
        ("services.*.dns", key_value),
        ("services.*.dns_opt", key_value),
        ("services.*.dns_search", key_value),
        ("services.*.profiles", key_value),
        ("services.*.expose", whole),
        ("services.*.ports", port_key),
        ("services.*.volumes", volume_key),
    ];
    let extra: [(&str, Indexer); 6] = [
        // By where they are mounted, as compose-go's mount indexer.
        ("services.*.secrets", |v| mount_key(v, "/run/secrets")),
        ("services.*.configs", |v| mount_key(v, "")),
        ("services.*.networks.*.aliases", whole),
        ("services.*.env_file", whole),
        ("networks.*.labels", key_value),
        ("volumes.*.labels", key_value),
    ];
    if let Value::Sequence(seq) = v {
        if let Some((_, index)) = rules
            .iter()
            .chain(extra.iter())
            .find(|(p, _)| matches(path, p))
        {
            let mut out: Vec<Value> = Vec::new();
            let mut keys: Vec<String> = Vec::new();
            for item in seq.drain(..) {
                let k = index(&item);
                match keys.iter().position(|x| *x == k) {
                    Some(i) => out[i] = item,
                    None => {
                        keys.push(k);
                        out.push(item);
                    }
                }
            }
            *seq = out;
            return;
        }
    }
    match v {
        Value::Mapping(m) => {
            for (k, item) in m.iter_mut() {
                path.push(key_string(k));
                enforce_unicity(item, path);
                path.pop();
            }
        }
        Value::Sequence(s) => {
            for (i, item) in s.iter_mut().enumerate() {
                path.push(i.to_string());
                enforce_unicity(item, path);
                path.pop();
            }
        }
        _ => {}
    }
}

fn whole(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => serde_norway::to_string(other).unwrap_or_default(),
    }
}

fn key_value(v: &Value) -> String {
    let s = whole(v);
    match s.split_once('=') {
        Some((k, _)) => k.to_string(),
        None => s,
    }
}

fn port_key(v: &Value) -> String {
    let one = |ip: &str, published: &str, target: &str, proto: &str| {
        format!("{ip}:{published}:{target}/{proto}")
    };
    match v {
        Value::String(s) => match parse_port_short(s) {
            Ok(p) if p.len() == 1 => {
                let p = &p[0];
                one(
                    p.host_ip.as_deref().unwrap_or(""),
                    p.published.as_deref().unwrap_or(""),
                    &p.target.to_string(),
                    &p.protocol,
                )
            }
            _ => s.clone(),
        },
        Value::Number(n) => one("", "", &n.to_string(), "tcp"),
        Value::Mapping(_) => {
            let f = |k: &str| v.get(k).map(scalar_string).unwrap_or_default();
            let proto = v
                .get("protocol")
                .map(scalar_string)
                .unwrap_or_else(|| "tcp".into());
            one(&f("host_ip"), &f("published"), &f("target"), &proto)
        }
        other => whole(other),
    }
}

fn volume_key(v: &Value) -> String {
    match v {
        Value::String(s) => parse_volume_short(s, std::path::Path::new("/"), None)
            .map(|v| v.target)
            .unwrap_or_else(|_| s.clone()),
        Value::Mapping(_) => v.get("target").map(scalar_string).unwrap_or_default(),
        other => whole(other),
    }
}

/// A secret's or config's target (a relative one, and the default, under `base`).
fn mount_key(v: &Value, base: &str) -> String {
    let t = match v {
        Value::String(s) => s.clone(),
        Value::Mapping(_) => v
            .get("target")
            .or_else(|| v.get("source"))
            .map(scalar_string)
            .unwrap_or_default(),
        other => whole(other),
    };
    if t.starts_with('/') {
        t
    } else {
        format!("{base}/{t}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn y(s: &str) -> Value {
        serde_norway::from_str(s).unwrap()
    }

    fn merged(a: &str, b: &str) -> Value {
        let mut v = merge(y(a), y(b), &mut Vec::new()).unwrap();
        enforce_unicity(&mut v, &mut Vec::new());
        v
    }

    #[test]
    fn secrets_and_configs_merge_by_target() {
        let v = merged(
            "services:\n  a:\n    secrets: [s, {source: t, target: x}]\n    configs: [c]\n",
            "services:\n  a:\n    secrets: [{source: s, mode: 0400}, {source: u, target: /run/secrets/x}]\n    configs: [{source: c, target: /c}]\n",
        );
        let s = &v["services"]["a"];
        assert_eq!(s["secrets"].as_sequence().unwrap().len(), 2, "{s:?}");
        assert_eq!(s["secrets"][0]["mode"], y("0400"));
        assert_eq!(s["secrets"][1]["source"], y("u"));
        assert_eq!(s["configs"].as_sequence().unwrap().len(), 1, "{s:?}");
    }

    #[test]
    fn scalars_overridden_mappings_merged() {
        let v = merged(
            "services:\n  web:\n    image: a\n    user: x\n",
            "services:\n  web:\n    image: b\n  db:\n    image: c\n",
        );
        assert_eq!(
            v,
            y("services:\n  web:\n    image: b\n    user: x\n  db:\n    image: c\n")
        );
    }

    #[test]
    fn command_replaced_ports_appended_and_unique() {
        let v = merged(
            "services:\n  web:\n    command: [a, b]\n    ports: ['8080:80', '9000:90']\n",
            "services:\n  web:\n    command: [c]\n    ports: ['8080:80', {target: 443, published: '8443'}]\n",
        );
        assert_eq!(
            v,
            y("services:\n  web:\n    command: [c]\n    ports: ['8080:80', '9000:90', {target: 443, published: '8443'}]\n")
        );
    }

    #[test]
    fn environment_merged_by_key_across_forms() {
        let v = merged(
            "services:\n  web:\n    environment: [A=1, B=2]\n",
            "services:\n  web:\n    environment: {B: 3, C: null}\n",
        );
        assert_eq!(v, y("services:\n  web:\n    environment: [A=1, B=3, C]\n"));
    }

    #[test]
    fn build_short_form_merges_with_a_long_one() {
        let v = merged(
            "services:\n  web:\n    build: ./app\n",
            "services:\n  web:\n    build: {args: {A: 1}, target: prod}\n",
        );
        assert_eq!(
            v,
            y("services:\n  web:\n    build: {context: ./app, args: {A: 1}, target: prod}\n")
        );
        let v = merged(
            "services:\n  web:\n    build: {context: a, args: [A=1, B=2]}\n",
            "services:\n  web:\n    build: b\n",
        );
        assert_eq!(
            v,
            y("services:\n  web:\n    build: {context: b, args: [A=1, B=2]}\n")
        );
    }

    #[test]
    fn volumes_merged_by_target() {
        let v = merged(
            "services:\n  web:\n    volumes: ['./a:/data', 'logs:/logs']\n",
            "services:\n  web:\n    volumes: [{type: volume, source: d, target: /data}]\n",
        );
        assert_eq!(
            v,
            y("services:\n  web:\n    volumes: [{type: volume, source: d, target: /data}, 'logs:/logs']\n")
        );
    }

    #[test]
    fn depends_on_and_networks_short_and_long_merge() {
        let v = merged(
            "services:\n  web:\n    depends_on: [db]\n    networks: [front]\n",
            "services:\n  web:\n    depends_on: {db: {condition: service_healthy}}\n    networks: {back: {aliases: [x]}}\n",
        );
        assert_eq!(
            v,
            y("services:\n  web:\n    depends_on: {db: {condition: service_healthy, required: true}}\n    networks: {front: null, back: {aliases: [x]}}\n")
        );
    }

    #[test]
    fn extra_hosts_deduplicated() {
        let v = merged(
            "services:\n  web:\n    extra_hosts: ['a:1.1.1.1']\n",
            "services:\n  web:\n    extra_hosts: ['a:1.1.1.1', 'b:2.2.2.2']\n",
        );
        assert_eq!(
            v,
            y("services:\n  web:\n    extra_hosts: ['a:1.1.1.1', 'b:2.2.2.2']\n")
        );
    }

    #[test]
    fn reset_and_override_tags() {
        let mut v = merged(
            "services:\n  web:\n    ports: ['80:80']\n    environment: {A: '1'}\n    user: x\n",
            "services:\n  web:\n    ports: !override ['81:81']\n    environment: !reset {}\n    user: !reset null\n",
        );
        strip_tags(&mut v, &mut Vec::new()).unwrap();
        assert_eq!(v, y("services:\n  web:\n    ports: ['81:81']\n"));
        let mut bad = y("a: !custom 1");
        assert_eq!(
            strip_tags(&mut bad, &mut Vec::new()).unwrap_err(),
            "a: unsupported YAML tag !custom"
        );
    }

    #[test]
    fn mapping_over_scalar_is_an_error() {
        let err = merge(
            y("services:\n  web:\n    deploy: {replicas: 1}\n"),
            y("services:\n  web:\n    deploy: 3\n"),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(err.starts_with("services.web.deploy:"), "{err}");
    }
}
