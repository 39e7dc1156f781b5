//! docker's `--format` templates (a subset of Go's text/template) over JSON values:
//! `{{.Field}}`, `{{.A.B}}`, `{{.}}`, `{{json .X}}`, `{{index .Labels "k"}}`,
//! `{{.Label "k"}}`, `{{join .Args " "}}`, `{{upper .X}}`, `{{lower .X}}`, `{{len .X}}`,
//! pipes (`{{.Name | upper}}`), parentheses, `{{- -}}` trimming, a `table` prefix (headers,
//! columns aligned like docker's tabwriter) and the `\t` / `\n` escapes. `json` alone prints
//! every value as one JSON line. Anything else (if, range, with, ...) is a clear error.

use crate::error::{Error, Result};
use serde_json::Value;

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipeline),
}

type Pipeline = Vec<Command>;

#[derive(Debug, Clone)]
struct Command {
    terms: Vec<Term>,
}

#[derive(Debug, Clone)]
enum Term {
    /// `.A.B` (empty for `.`)
    Field(Vec<String>),
    Str(String),
    Num(f64),
    Bool(bool),
    Func(String),
    Sub(Pipeline),
    /// `(pipeline).A.B`: fields of a parenthesized value.
    SubField(Pipeline, Vec<String>),
}

#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
    table: bool,
    /// `json`: one JSON value per line.
    json_lines: bool,
}

fn err(msg: impl Into<String>) -> Error {
    Error::Invalid(format!("template: {}", msg.into()))
}

const FUNCS: &[&str] = &[
    "json", "index", "join", "upper", "lower", "len", "println", "title",
];

impl Template {
    /// Parses a `--format` value.
    pub fn parse(format: &str) -> Result<Template> {
        if format.trim() == "json" {
            return Ok(Template {
                nodes: vec![],
                table: false,
                json_lines: true,
            });
        }
        let mut s = format.replace("\\t", "\t").replace("\\n", "\n");
        let mut table = false;
        if let Some(rest) = s.strip_prefix("table") {
            if rest.is_empty() || rest.starts_with(char::is_whitespace) {
                table = true;
                s = rest.trim_start_matches([' ']).to_string();
            }
        }
        Ok(Template {
            nodes: parse_nodes(&s)?,
            table,
            json_lines: false,
        })
    }

    pub fn is_table(&self) -> bool {
        self.table
    }

    /// Renders one value.
    pub fn render(&self, v: &Value) -> Result<String> {
        if self.json_lines {
            return Ok(serde_json::to_string(v).expect("json values serialise"));
        }
        let mut out = String::new();
        for n in &self.nodes {
            match n {
                Node::Text(t) => out.push_str(t),
                Node::Action(p) => out.push_str(&to_text(&eval_pipeline(p, v)?)),
            }
        }
        Ok(out)
    }

    /// The header row of a table: each action becomes `names(field)` (e.g. "ID" ->
    /// "CONTAINER ID"), else the field's name in capitals.
    pub fn header(&self, names: &dyn Fn(&str) -> Option<String>) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            match n {
                Node::Text(t) => out.push_str(t),
                Node::Action(p) => out.push_str(&header_of(p, names)),
            }
        }
        out
    }

    /// Renders every value: a table (header + aligned rows), or one rendering per line.
    pub fn render_all(
        &self,
        values: &[Value],
        names: &dyn Fn(&str) -> Option<String>,
    ) -> Result<String> {
        let mut out = String::new();
        if self.table {
            out.push_str(&self.header(names));
            out.push('\n');
        }
        for v in values {
            out.push_str(&self.render(v)?);
            out.push('\n');
        }
        Ok(if self.table { tabwrite(&out) } else { out })
    }
}

fn header_of(p: &Pipeline, names: &dyn Fn(&str) -> Option<String>) -> String {
    let key = p
        .first()
        .and_then(|c| {
            c.terms.iter().find_map(|t| match t {
                Term::Field(f) if !f.is_empty() => Some(f.join(".")),
                _ => None,
            })
        })
        .unwrap_or_default();
    names(&key).unwrap_or_else(|| {
        // "RunningFor" -> "RUNNING FOR"
        let last = key.rsplit('.').next().unwrap_or("");
        let mut h = String::new();
        let mut prev_upper = true;
        for c in last.chars() {
            if c.is_uppercase() && !prev_upper {
                h.push(' ');
            }
            prev_upper = c.is_uppercase();
            h.extend(c.to_uppercase());
        }
        h
    })
}

/// Aligns tab-separated columns like Go's tabwriter (minwidth 10, padding 3), as docker.
pub fn tabwrite(s: &str) -> String {
    let lines: Vec<Vec<&str>> = s.lines().map(|l| l.split('\t').collect()).collect();
    let cols = lines.iter().map(|l| l.len()).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for l in &lines {
        // The last cell of a line is not part of a column.
        for (i, c) in l.iter().enumerate().take(l.len().saturating_sub(1)) {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for l in &lines {
        for (i, c) in l.iter().enumerate() {
            out.push_str(c);
            if i + 1 < l.len() {
                let w = (widths[i] + 3).max(10);
                out.extend(std::iter::repeat_n(' ', w - c.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

fn parse_nodes(s: &str) -> Result<Vec<Node>> {
    let mut nodes = Vec::new();
    let mut rest = s;
    let mut trim_next = false;
    while !rest.is_empty() {
        let Some(open) = rest.find("{{") else {
            let t = if trim_next { rest.trim_start() } else { rest };
            nodes.push(Node::Text(t.to_string()));
            break;
        };
        let mut text = &rest[..open];
        if trim_next {
            text = text.trim_start();
        }
        let mut inner_start = open + 2;
        if rest[inner_start..].starts_with("- ") {
            text = text.trim_end();
            inner_start += 2;
        }
        if !text.is_empty() {
            nodes.push(Node::Text(text.to_string()));
        }
        let close = find_close(&rest[inner_start..])
            .ok_or_else(|| err(format!("unclosed action in {s:?}")))?;
        let mut inner = &rest[inner_start..inner_start + close];
        trim_next = false;
        if let Some(i) = inner.strip_suffix(" -") {
            inner = i;
            trim_next = true;
        }
        rest = &rest[inner_start + close + 2..];
        let inner = inner.trim();
        if inner.starts_with("/*") {
            continue;
        }
        nodes.push(Node::Action(parse_pipeline(inner)?));
    }
    Ok(nodes)
}

/// Position of the `}}` closing an action, skipping quoted strings.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < b.len() {
        match quote {
            Some(q) => {
                if b[i] == b'\\' && q == b'"' {
                    i += 1;
                } else if b[i] == q {
                    quote = None;
                }
            }
            None if b[i] == b'"' || b[i] == b'`' => quote = Some(b[i]),
            None if b[i..].starts_with(b"}}") => return Some(i),
            None => {}
        }
        i += 1;
    }
    None
}

#[derive(Debug, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Open,
    Close,
    /// `.A.B` written right after `)`: fields of the parenthesized value.
    Chain(String),
    Pipe,
}

fn tokenize(s: &str) -> Result<Vec<Tok>> {
    let mut toks = Vec::new();
    let mut it = s.chars().peekable();
    while let Some(&c) = it.peek() {
        match c {
            c if c.is_whitespace() => {
                it.next();
            }
            '(' => {
                it.next();
                toks.push(Tok::Open)
            }
            ')' => {
                it.next();
                toks.push(Tok::Close);
                if it.peek() == Some(&'.') {
                    let mut w = String::new();
                    while let Some(&c) = it.peek() {
                        if c.is_whitespace() || "()|\"`".contains(c) {
                            break;
                        }
                        w.push(c);
                        it.next();
                    }
                    toks.push(Tok::Chain(w));
                }
            }
            '|' => {
                it.next();
                toks.push(Tok::Pipe)
            }
            '"' => {
                it.next();
                let mut v = String::new();
                loop {
                    match it.next() {
                        None => return Err(err(format!("unterminated string in {s:?}"))),
                        Some('"') => break,
                        Some('\\') => match it.next() {
                            Some('n') => v.push('\n'),
                            Some('t') => v.push('\t'),
                            Some(o) => v.push(o),
                            None => return Err(err(format!("unterminated string in {s:?}"))),
                        },
                        Some(o) => v.push(o),
                    }
                }
                toks.push(Tok::Str(v));
            }
            '`' => {
                it.next();
                let mut v = String::new();
                loop {
                    match it.next() {
                        None => return Err(err(format!("unterminated string in {s:?}"))),
                        Some('`') => break,
                        Some(o) => v.push(o),
                    }
                }
                toks.push(Tok::Str(v));
            }
            _ => {
                let mut w = String::new();
                while let Some(&c) = it.peek() {
                    if c.is_whitespace() || "()|\"`".contains(c) {
                        break;
                    }
                    w.push(c);
                    it.next();
                }
                toks.push(Tok::Word(w));
            }
        }
    }
    Ok(toks)
}

fn parse_pipeline(s: &str) -> Result<Pipeline> {
    let toks = tokenize(s)?;
    let mut pos = 0;
    let p = pipeline(&toks, &mut pos, s)?;
    if pos != toks.len() {
        return Err(err(format!("unexpected {:?} in {s:?}", toks[pos])));
    }
    Ok(p)
}

fn pipeline(toks: &[Tok], pos: &mut usize, src: &str) -> Result<Pipeline> {
    let mut cmds = Vec::new();
    loop {
        let mut terms = Vec::new();
        while *pos < toks.len() && toks[*pos] != Tok::Pipe && toks[*pos] != Tok::Close {
            terms.push(term(toks, pos, src)?);
        }
        if terms.is_empty() {
            return Err(err(format!("missing value in {src:?}")));
        }
        cmds.push(Command { terms });
        if *pos < toks.len() && toks[*pos] == Tok::Pipe {
            *pos += 1;
            continue;
        }
        return Ok(cmds);
    }
}

/// `.A.B` -> ["A", "B"].
fn field_path(w: &str, src: &str) -> Result<Vec<String>> {
    let parts: Vec<String> = w[1..].split('.').map(str::to_string).collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || !p.chars().all(|c| c.is_alphanumeric() || c == '_'))
    {
        return Err(err(format!("bad field {w:?} in {src:?}")));
    }
    Ok(parts)
}

fn term(toks: &[Tok], pos: &mut usize, src: &str) -> Result<Term> {
    let t = &toks[*pos];
    *pos += 1;
    Ok(match t {
        Tok::Str(s) => Term::Str(s.clone()),
        Tok::Open => {
            let p = pipeline(toks, pos, src)?;
            if toks.get(*pos) != Some(&Tok::Close) {
                return Err(err(format!("unclosed '(' in {src:?}")));
            }
            *pos += 1;
            if let Some(Tok::Chain(w)) = toks.get(*pos) {
                *pos += 1;
                Term::SubField(p, field_path(w, src)?)
            } else {
                Term::Sub(p)
            }
        }
        Tok::Word(w) if w == "." => Term::Field(vec![]),
        Tok::Word(w) if w.starts_with('.') => Term::Field(field_path(w, src)?),
        Tok::Word(w) if w == "true" || w == "false" => Term::Bool(w == "true"),
        Tok::Word(w) if w.parse::<f64>().is_ok() => Term::Num(w.parse().expect("checked")),
        Tok::Word(w) if FUNCS.contains(&w.as_str()) => Term::Func(w.clone()),
        Tok::Word(w) => {
            return Err(err(format!(
                "function {w:?} not defined (supported: .Field, {})",
                FUNCS.join(", ")
            )))
        }
        other => return Err(err(format!("unexpected {other:?} in {src:?}"))),
    })
}

fn eval_pipeline(p: &Pipeline, dot: &Value) -> Result<Value> {
    let mut prev: Option<Value> = None;
    for c in p {
        prev = Some(eval_command(c, dot, prev)?);
    }
    Ok(prev.unwrap_or(Value::Null))
}

fn eval_term(t: &Term, dot: &Value) -> Result<Value> {
    match t {
        Term::Field(f) => field(dot, f),
        Term::Str(s) => Ok(Value::String(s.clone())),
        Term::Num(n) => Ok(serde_json::Number::from_f64(*n)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        Term::Bool(b) => Ok(Value::Bool(*b)),
        Term::Sub(p) => eval_pipeline(p, dot),
        Term::SubField(p, f) => field(&eval_pipeline(p, dot)?, f),
        Term::Func(f) => Err(err(format!("{f} needs arguments"))),
    }
}

fn eval_command(c: &Command, dot: &Value, piped: Option<Value>) -> Result<Value> {
    match &c.terms[0] {
        Term::Func(f) => {
            let mut args = c.terms[1..]
                .iter()
                .map(|t| eval_term(t, dot))
                .collect::<Result<Vec<_>>>()?;
            args.extend(piped);
            call(f, &args)
        }
        // `.Label "k"` and friends: a method-like lookup with arguments.
        Term::Field(f) if c.terms.len() > 1 && !f.is_empty() => {
            let base = field(dot, &f[..f.len() - 1])?;
            let mut args = c.terms[1..]
                .iter()
                .map(|t| eval_term(t, dot))
                .collect::<Result<Vec<_>>>()?;
            args.extend(piped);
            method(&base, &f[f.len() - 1], &args)
        }
        t if c.terms.len() == 1 && piped.is_none() => eval_term(t, dot),
        _ => Err(err("can't give arguments to a non-function")),
    }
}

fn method(base: &Value, name: &str, args: &[Value]) -> Result<Value> {
    let key = match args {
        [Value::String(k)] => k.as_str(),
        _ => return Err(err(format!(".{name} takes one string argument"))),
    };
    let map = match (name, base.get(name)) {
        ("Label", _) => base.get("Labels").cloned().unwrap_or(Value::Null),
        (_, Some(v)) => v.clone(),
        (_, None) => return Err(err(format!("can't evaluate field {name}"))),
    };
    Ok(match map {
        Value::Object(m) => m.get(key).cloned().unwrap_or(Value::String(String::new())),
        // ps rows carry labels as "k=v,k2=v2", like docker's.
        Value::String(s) => Value::String(
            s.split(',')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
                .unwrap_or_default(),
        ),
        _ => Value::String(String::new()),
    })
}

/// Keys whose values are free-form maps: a missing key there is "<no value>", not an error.
const FREE_MAPS: &[&str] = &[
    "Labels",
    "Attributes",
    "Options",
    "Data",
    "Volumes",
    "ExposedPorts",
];

fn field(dot: &Value, path: &[String]) -> Result<Value> {
    let mut cur = dot;
    let mut parent = "";
    for (i, k) in path.iter().enumerate() {
        match cur {
            Value::Object(m) => match m.get(k) {
                Some(v) => cur = v,
                None if FREE_MAPS.contains(&parent) => {
                    return Ok(Value::String("<no value>".into()))
                }
                None => {
                    let mut known: Vec<&str> = m.keys().map(String::as_str).collect();
                    known.sort_unstable();
                    return Err(err(format!(
                        "can't evaluate field {k} in .{} (fields: {})",
                        path[..i].join("."),
                        known.join(", ")
                    )));
                }
            },
            Value::Null => return Ok(Value::Null),
            _ => {
                return Err(err(format!(
                    "can't evaluate field {k}: .{} is not an object",
                    path[..i].join(".")
                )))
            }
        }
        parent = k;
    }
    Ok(cur.clone())
}

fn call(f: &str, args: &[Value]) -> Result<Value> {
    let one = || -> Result<&Value> {
        match args {
            [v] => Ok(v),
            _ => Err(err(format!("{f} takes one argument, got {}", args.len()))),
        }
    };
    match f {
        "json" => Ok(Value::String(
            serde_json::to_string(one()?).expect("json values serialise"),
        )),
        "upper" => Ok(Value::String(to_text(one()?).to_uppercase())),
        "lower" => Ok(Value::String(to_text(one()?).to_lowercase())),
        "title" => {
            let t = to_text(one()?);
            let mut c = t.chars();
            Ok(Value::String(match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect(),
                None => t,
            }))
        }
        "len" => match one()? {
            Value::Array(a) => Ok(a.len().into()),
            Value::Object(m) => Ok(m.len().into()),
            Value::String(s) => Ok(s.len().into()),
            v => Err(err(format!("len of {}", to_text(v)))),
        },
        "println" => Ok(Value::String(
            args.iter().map(to_text).collect::<Vec<_>>().join(" ") + "\n",
        )),
        "join" => match args {
            [Value::Array(a), Value::String(sep)] => Ok(Value::String(
                a.iter().map(to_text).collect::<Vec<_>>().join(sep),
            )),
            [Value::Null, Value::String(_)] => Ok(Value::String(String::new())),
            _ => Err(err("join takes a list and a separator")),
        },
        "index" => {
            let (first, keys) = args
                .split_first()
                .ok_or_else(|| err("index takes a value and keys"))?;
            let mut cur = first.clone();
            for k in keys {
                cur = match (&cur, k) {
                    (Value::Object(m), Value::String(s)) => m
                        .get(s)
                        .cloned()
                        .unwrap_or(Value::String("<no value>".into())),
                    (Value::Array(a), Value::Number(n)) => n
                        .as_f64()
                        .and_then(|i| a.get(i as usize))
                        .cloned()
                        .ok_or_else(|| err(format!("index {n} out of range")))?,
                    (Value::Null, _) => Value::Null,
                    (v, k) => {
                        return Err(err(format!(
                            "can't index {} with {}",
                            to_text(v),
                            to_text(k)
                        )))
                    }
                };
            }
            Ok(cur)
        }
        _ => Err(err(format!("function {f:?} not defined"))),
    }
}

/// How Go prints a value with {{.}}.
pub fn to_text(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        Value::Array(a) => format!("[{}]", a.iter().map(to_text).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => format!(
            "map[{}]",
            m.iter()
                .map(|(k, v)| format!("{k}:{}", to_text(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(f: &str, v: &Value) -> String {
        Template::parse(f).unwrap().render(v).unwrap()
    }

    #[test]
    fn fields_and_functions() {
        let v = json!({"Name": "/web", "State": {"Status": "running", "Pid": 42},
            "Config": {"Labels": {"a": "1"}, "Cmd": ["sh", "-c", "x"]}, "Labels": "a=1,b=2"});
        assert_eq!(r("{{.Name}} {{.State.Status}}", &v), "/web running");
        assert_eq!(r("{{.State.Pid}}", &v), "42");
        let n = json!({"Networks": {"my-net": {"IPAddress": "10.0.0.2"}}});
        assert_eq!(
            r("{{(index .Networks \"my-net\").IPAddress}}", &n),
            "10.0.0.2"
        );
        assert_eq!(r("{{json .State}}", &v), r#"{"Status":"running","Pid":42}"#);
        assert_eq!(r(r#"{{index .Config.Labels "a"}}"#, &v), "1");
        assert_eq!(r(r#"{{.Label "b"}}"#, &v), "2");
        assert_eq!(r(r#"{{join .Config.Cmd " "}}"#, &v), "sh -c x");
        assert_eq!(r("{{.Name | upper}}", &v), "/WEB");
        assert_eq!(r("{{len .Config.Cmd}}", &v), "3");
        assert_eq!(r("{{.Config.Cmd}}", &v), "[sh -c x]");
        assert_eq!(r("{{.Config.Labels.zz}}", &v), "<no value>");
        assert_eq!(r("a\\tb\\n{{- \" x\" }}", &v), "a\tb x");
        assert_eq!(r("{{json (index .Config.Labels \"a\")}}", &v), "\"1\"");
        let e = Template::parse("{{.Nope}}")
            .unwrap()
            .render(&v)
            .unwrap_err();
        assert!(e.to_string().contains("can't evaluate field Nope"), "{e}");
        let e = Template::parse("{{.State.Nope}}")
            .unwrap()
            .render(&v)
            .unwrap_err();
        assert!(e.to_string().contains("field Nope in .State"), "{e}");
        assert!(Template::parse("{{range .X}}").is_err());
        assert!(Template::parse("{{.Name").is_err());
    }

    #[test]
    fn tables_and_json_lines() {
        let rows = vec![
            json!({"ID": "abc", "Names": "web"}),
            json!({"ID": "d", "Names": "x"}),
        ];
        let t = Template::parse("table {{.ID}}\\t{{.Names}}").unwrap();
        assert!(t.is_table());
        let names = |k: &str| (k == "ID").then(|| "CONTAINER ID".to_string());
        let out = t.render_all(&rows, &names).unwrap();
        assert_eq!(
            out,
            "CONTAINER ID   NAMES\nabc            web\nd              x\n"
        );
        let j = Template::parse("json")
            .unwrap()
            .render_all(&rows, &names)
            .unwrap();
        assert_eq!(j.lines().count(), 2);
        assert!(j.starts_with(r#"{"ID":"abc""#));
        assert_eq!(
            Template::parse("table {{.RunningFor}}")
                .unwrap()
                .header(&|_| None),
            "RUNNING FOR"
        );
    }
}
