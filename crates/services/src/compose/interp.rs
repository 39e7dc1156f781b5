//! Variable interpolation (`${VAR}`, `$VAR`, `${VAR:-d}`, `${VAR-d}`, `${VAR:?e}`,
//! `${VAR?e}`, `${VAR:+a}`, `${VAR+a}`, `$$`) and the `.env` file syntax, as compose-go
//! reads them.

use serde_norway::Value;

/// Where variables come from: `Some` when set (possibly empty).
pub trait Lookup {
    fn get(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> Lookup for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// Result of one interpolation: the text, and the names used while unset (compose warns
/// "The X variable is not set. Defaulting to a blank string.").
pub fn interpolate(s: &str, env: &dyn Lookup, unset: &mut Vec<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            // Copy the run up to the next '$' (keeps UTF-8 intact).
            let next = s[i..].find('$').map(|n| i + n).unwrap_or(b.len());
            out.push_str(&s[i..next]);
            i = next;
            continue;
        }
        match b.get(i + 1) {
            Some(b'$') => {
                out.push('$');
                i += 2;
            }
            Some(b'{') => {
                let end = closing_brace(s, i + 2).ok_or_else(|| invalid(s))?;
                out.push_str(&braced(&s[i + 2..end], s, env, unset)?);
                i = end + 1;
            }
            Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {
                let len = s[i + 1..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(s.len() - i - 1);
                let name = &s[i + 1..i + 1 + len];
                match env.get(name) {
                    Some(v) => out.push_str(&v),
                    None => unset.push(name.to_string()),
                }
                i += 1 + len;
            }
            _ => return Err(invalid(s)),
        }
    }
    Ok(out)
}

fn invalid(s: &str) -> String {
    format!("invalid interpolation format for {s:?}: you may need to escape any $ with another $")
}

/// The index of the `}` closing a `${` whose content starts at `start` (nested `${..}`
/// in defaults count).
fn closing_brace(s: &str, start: usize) -> Option<usize> {
    let b = s.as_bytes();
    let mut depth = 0;
    let mut i = start;
    while i < b.len() {
        match b[i] {
            b'$' if b.get(i + 1) == Some(&b'$') => i += 1,
            b'$' if b.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn braced(
    inner: &str,
    whole: &str,
    env: &dyn Lookup,
    unset: &mut Vec<String>,
) -> Result<String, String> {
    let len = inner
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(inner.len());
    let name = &inner[..len];
    if name.is_empty() || name.as_bytes()[0].is_ascii_digit() {
        return Err(invalid(whole));
    }
    let rest = &inner[len..];
    let value = env.get(name);
    let (op, arg) = if rest.is_empty() {
        ("", "")
    } else if let Some(op) = [":-", ":?", ":+"]
        .into_iter()
        .find(|op| rest.starts_with(op))
    {
        (op, &rest[2..])
    } else if let Some(op) = ["-", "?", "+"].into_iter().find(|op| rest.starts_with(op)) {
        (op, &rest[1..])
    } else {
        return Err(invalid(whole));
    };
    let set_nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
    Ok(match op {
        "" => match value {
            Some(v) => v,
            None => {
                unset.push(name.to_string());
                String::new()
            }
        },
        ":-" if !set_nonempty => interpolate(arg, env, unset)?,
        "-" if value.is_none() => interpolate(arg, env, unset)?,
        ":?" if !set_nonempty => return Err(required(name, &interpolate(arg, env, unset)?)),
        "?" if value.is_none() => return Err(required(name, &interpolate(arg, env, unset)?)),
        ":+" => {
            if set_nonempty {
                interpolate(arg, env, unset)?
            } else {
                String::new()
            }
        }
        "+" => {
            if value.is_some() {
                interpolate(arg, env, unset)?
            } else {
                String::new()
            }
        }
        _ => value.unwrap_or_default(),
    })
}

fn required(name: &str, msg: &str) -> String {
    if msg.is_empty() {
        format!("required variable {name} is missing a value")
    } else {
        format!("required variable {name} is missing a value: {msg}")
    }
}

/// Interpolates every string scalar of `v` (not mapping keys), naming the key path in
/// errors: `services.db.environment.PASSWORD: required variable ...`.
pub fn interpolate_value(
    v: &mut Value,
    path: &mut Vec<String>,
    env: &dyn Lookup,
    unset: &mut Vec<String>,
) -> Result<(), String> {
    match v {
        Value::String(s) => {
            if s.contains('$') {
                *s = interpolate(s, env, unset).map_err(|e| format!("{}: {e}", path.join(".")))?;
            }
        }
        Value::Sequence(seq) => {
            for (i, item) in seq.iter_mut().enumerate() {
                path.push(i.to_string());
                interpolate_value(item, path, env, unset)?;
                path.pop();
            }
        }
        Value::Mapping(m) => {
            for (k, item) in m.iter_mut() {
                path.push(key_string(k));
                interpolate_value(item, path, env, unset)?;
                path.pop();
            }
        }
        Value::Tagged(t) => interpolate_value(&mut t.value, path, env, unset)?,
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    Ok(())
}

pub fn key_string(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        other => format!("{other:?}"),
    }
}

/// Parses a `.env` / env_file text as docker compose does: `KEY=VALUE`, `export KEY=VALUE`,
/// `#` comments, single quotes (literal), double quotes (escapes, may span lines,
/// interpolated), unquoted values (inline ` #` comments, interpolated), a bare `KEY`
/// (the value of `lookup`, else left out). Variables in values are looked up in the
/// file's earlier lines first, then in `lookup`.
pub fn parse_dotenv(
    text: &str,
    lookup: &dyn Lookup,
) -> Result<Vec<(String, Option<String>)>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut n = 0;
    while n < lines.len() {
        let lineno = n + 1;
        let line = lines[n].trim_start();
        n += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line
            .strip_prefix("export ")
            .map(str::trim_start)
            .unwrap_or(line);
        let (key, rest) = match line.find(['=', ':']) {
            Some(i) => (line[..i].trim(), Some(&line[i + 1..])),
            None => (line.trim(), None),
        };
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-[]".contains(c))
        {
            return Err(format!(
                "line {lineno}: unexpected character in variable name {key:?}"
            ));
        }
        let Some(rest) = rest else {
            out.push((key.to_string(), lookup.get(key)));
            continue;
        };
        let rest = rest.trim_start();
        let file_then_env = |name: &str| {
            out.iter()
                .rev()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.clone())
                .or_else(|| lookup.get(name))
        };
        let mut unset = Vec::new();
        let value = if let Some(body) = rest.strip_prefix('\'') {
            let end = body
                .find('\'')
                .ok_or_else(|| format!("line {lineno}: unterminated quoted value"))?;
            body[..end].to_string()
        } else if let Some(body) = rest.strip_prefix('"') {
            let mut raw = String::new();
            let mut cur = body.to_string();
            let closed = loop {
                if let Some(end) = closing_quote(&cur) {
                    raw.push_str(&cur[..end]);
                    break true;
                }
                raw.push_str(&cur);
                if n >= lines.len() {
                    break false;
                }
                raw.push('\n');
                cur = lines[n].to_string();
                n += 1;
            };
            if !closed {
                return Err(format!("line {lineno}: unterminated quoted value"));
            }
            let unescaped = unescape(&raw);
            interpolate(&unescaped, &file_then_env, &mut unset)
                .map_err(|e| format!("line {lineno}: {e}"))?
        } else {
            let v = match rest.find(" #") {
                Some(i) => &rest[..i],
                None => rest,
            };
            interpolate(v.trim(), &file_then_env, &mut unset)
                .map_err(|e| format!("line {lineno}: {e}"))?
        };
        out.push((key.to_string(), Some(value)));
    }
    Ok(out)
}

fn closing_quote(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'"' => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some(c @ ('"' | '\\' | '\'' | '$')) => {
                if c == '$' {
                    // keep `\$` literal through interpolation
                    out.push_str("$$");
                } else {
                    out.push(c);
                }
            }
            Some(c) => {
                out.push('\\');
                out.push(c);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| m.get(k).cloned()
    }

    fn i(s: &str, e: &dyn Lookup) -> Result<String, String> {
        interpolate(s, e, &mut Vec::new())
    }

    #[test]
    fn all_forms() {
        let e = env(&[("A", "a"), ("EMPTY", "")]);
        assert_eq!(i("${A}", &e).unwrap(), "a");
        assert_eq!(i("$A-x", &e).unwrap(), "a-x");
        assert_eq!(i("x$A.y", &e).unwrap(), "xa.y");
        assert_eq!(i("${EMPTY:-d}", &e).unwrap(), "d");
        assert_eq!(i("${EMPTY-d}", &e).unwrap(), "");
        assert_eq!(i("${NOPE-d}", &e).unwrap(), "d");
        assert_eq!(i("${NOPE:-d}", &e).unwrap(), "d");
        assert_eq!(i("${A:+alt}", &e).unwrap(), "alt");
        assert_eq!(i("${EMPTY:+alt}", &e).unwrap(), "");
        assert_eq!(i("${EMPTY+alt}", &e).unwrap(), "alt");
        assert_eq!(i("${NOPE+alt}", &e).unwrap(), "");
        assert_eq!(i("$$A $${A}", &e).unwrap(), "$A ${A}");
        assert_eq!(i("${A?err}", &e).unwrap(), "a");
        assert_eq!(i("${EMPTY?err}", &e).unwrap(), "");
        assert_eq!(i("héllo ${A} wörld", &e).unwrap(), "héllo a wörld");
    }

    #[test]
    fn nested_defaults() {
        let e = env(&[("B", "b")]);
        assert_eq!(i("${NOPE:-${B}}", &e).unwrap(), "b");
        assert_eq!(i("${NOPE:-${NOPE2:-deep}/x}", &e).unwrap(), "deep/x");
        assert_eq!(i("${B:-${NOPE:?never evaluated}}", &e).unwrap(), "b");
    }

    #[test]
    fn required_errors() {
        let e = env(&[("EMPTY", "")]);
        assert_eq!(
            i("${PASSWORD:?need a password}", &e).unwrap_err(),
            "required variable PASSWORD is missing a value: need a password"
        );
        assert!(i("${EMPTY:?x}", &e).is_err());
        assert_eq!(
            i("${NOPE:?}", &e).unwrap_err(),
            "required variable NOPE is missing a value"
        );
        assert!(i("${NOPE?x}", &e).is_err());
    }

    #[test]
    fn unset_is_reported_and_blank() {
        let mut unset = Vec::new();
        assert_eq!(
            interpolate("a${NOPE}b$NOPE2", &env(&[]), &mut unset).unwrap(),
            "ab"
        );
        assert_eq!(unset, ["NOPE", "NOPE2"]);
    }

    #[test]
    fn invalid_templates() {
        let e = env(&[]);
        for bad in ["${", "${A", "${}", "${1A}", "$1", "${A!x}", "a $ b"] {
            assert!(i(bad, &e).is_err(), "{bad}");
        }
    }

    #[test]
    fn value_errors_name_the_path() {
        let mut v: Value = serde_norway::from_str(
            "services:\n  db:\n    environment:\n      PASSWORD: ${PASSWORD:?need a password}\n",
        )
        .unwrap();
        let err =
            interpolate_value(&mut v, &mut Vec::new(), &env(&[]), &mut Vec::new()).unwrap_err();
        assert_eq!(
            err,
            "services.db.environment.PASSWORD: required variable PASSWORD is missing a value: need a password"
        );
    }

    #[test]
    fn dotenv_syntax() {
        let text = "# comment\n\nA=1\nexport B=two\nC='lit $A'\nD=\"q $A\\n\"\nE=x #comment\nF\nG=${A}-${NOPE:-d}\nH=\"multi\nline\"\nI:colon\n";
        let got = parse_dotenv(text, &env(&[("F", "fromenv")])).unwrap();
        let m: BTreeMap<_, _> = got.into_iter().collect();
        assert_eq!(m["A"].as_deref(), Some("1"));
        assert_eq!(m["B"].as_deref(), Some("two"));
        assert_eq!(m["C"].as_deref(), Some("lit $A"));
        assert_eq!(m["D"].as_deref(), Some("q 1\n"));
        assert_eq!(m["E"].as_deref(), Some("x"));
        assert_eq!(m["F"].as_deref(), Some("fromenv"));
        assert_eq!(m["G"].as_deref(), Some("1-d"));
        assert_eq!(m["H"].as_deref(), Some("multi\nline"));
        assert_eq!(m["I"].as_deref(), Some("colon"));
    }

    #[test]
    fn dotenv_bad_lines() {
        assert!(parse_dotenv("A B=1\n", &env(&[])).is_err());
        assert!(parse_dotenv("A=\"open\n", &env(&[])).is_err());
    }
}
