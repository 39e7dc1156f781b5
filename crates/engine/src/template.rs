//! docker's `--format`: Go's text/template over JSON values (written here rather than
//! taken from the `gtmpl` crate: the `table` header needs the parse tree, ps rows need the
//! `.Label "k"` method, and maps must keep Go's missing-key rules).
//!
//! The whole grammar: text and `{{pipeline}}` actions, `{{- -}}` trimming, comments,
//! `if / else if / else / end`, `range` (`$i, $v :=`, `else`, `break`, `continue`, over
//! lists, maps in key order and integers), `with / else with / else`, variables (`$`,
//! `$x := ...`, `$x = ...`), pipelines with `|`, parentheses and `(...).Field`, `define`,
//! `template` and `block`. Go's functions: `and or not len index slice print printf println
//! html js urlquery call eq ne lt le gt ge`; docker's: `json join split lower upper title
//! truncate pad`. A `table` prefix gives a header row and columns aligned like docker's
//! tabwriter; `\t` / `\n` are escapes (as docker's CLI) and `json` alone prints every
//! value as one JSON line. Errors are worded as Go's (`template: :1:2: executing "" at
//! <.X>: ...`).

use crate::error::{Error, Result};
use serde_json::{Number, Value};
use std::collections::HashMap;

/// A value under evaluation: `None` is Go's invalid value (a missing map key), printed
/// `<no value>` and false.
type V = Option<Value>;

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipe),
    If(Pipe, Vec<Node>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
    Range(Pipe, Vec<Node>, Vec<Node>),
    Template(usize, String, Option<Pipe>),
    Break,
    Continue,
}

#[derive(Debug, Clone)]
struct Pipe {
    decl: Vec<String>,
    /// `$x = v` (an assignment) rather than `$x := v`.
    assign: bool,
    cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
struct Cmd {
    pos: usize,
    text: String,
    args: Vec<Arg>,
}

#[derive(Debug, Clone)]
enum Arg {
    Dot,
    Nil,
    Const(Value),
    Field(Vec<String>),
    Var(String, Vec<String>),
    Func(String),
    /// `(pipeline)` and the fields chained after it.
    Sub(Box<Pipe>, Vec<String>),
}

#[derive(Debug, Clone)]
pub struct Template {
    src: String,
    nodes: Vec<Node>,
    defs: HashMap<String, Vec<Node>>,
    table: bool,
    /// `json`: one JSON value per line.
    json_lines: bool,
}

fn err(msg: impl Into<String>) -> Error {
    Error::Invalid(format!("template: {}", msg.into()))
}

const FUNCS: &[&str] = &[
    "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "html", "js",
    "urlquery", "call", "eq", "ne", "lt", "le", "gt", "ge", // Go's
    "json", "join", "split", "lower", "upper", "title", "truncate", "pad", // docker's
];

/// Go's limit on nested `template` calls is 100000; each level here is Rust stack frames
/// (a few KiB in a debug build), so the limit is lower.
const MAX_DEPTH: usize = 100;

impl Template {
    /// Parses a `--format` value.
    pub fn parse(format: &str) -> Result<Template> {
        if format.trim() == "json" {
            return Ok(Template {
                src: String::new(),
                nodes: vec![],
                defs: HashMap::new(),
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
        let items = split_items(&s)?;
        let mut p = Parser {
            src: &s,
            items,
            i: 0,
            vars: vec!["$".into()],
            ranges: 0,
            nested: 0,
            defs: HashMap::new(),
        };
        let nodes = match p.list()? {
            (nodes, Stop::Eof) => nodes,
            (_, Stop::End(pos)) => return Err(p.perr(pos, "unexpected {{end}}")),
            (_, Stop::Else(_, pos)) => return Err(p.perr(pos, "unexpected {{else}}")),
        };
        let defs = p.defs;
        for n in all_template_calls(&nodes).chain(defs.values().flat_map(|d| all_template_calls(d)))
        {
            if !defs.contains_key(n) {
                return Err(err(format!(":1: no such template {n:?}")));
            }
        }
        Ok(Template {
            src: s,
            nodes,
            defs,
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
        let mut x = Exec {
            t: self,
            vars: vec![("$".into(), Some(v.clone()))],
            out: String::new(),
            name: String::new(),
            depth: 0,
        };
        x.walk(v, &self.nodes).map_err(|f| Error::Invalid(f.msg))?;
        Ok(x.out)
    }

    /// The header row of a table: each action becomes `names(field)` (e.g. "ID" ->
    /// "CONTAINER ID"), else the field's name in capitals.
    pub fn header(&self, names: &dyn Fn(&str) -> Option<String>) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            match n {
                Node::Text(t) => out.push_str(t),
                Node::Action(p) if p.decl.is_empty() => out.push_str(&header_of(p, names)),
                _ => {}
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

fn all_template_calls(nodes: &[Node]) -> Box<dyn Iterator<Item = &String> + '_> {
    Box::new(
        nodes
            .iter()
            .flat_map(|n| -> Box<dyn Iterator<Item = &String>> {
                match n {
                    Node::Template(_, name, _) => Box::new(std::iter::once(name)),
                    Node::If(_, a, b) | Node::With(_, a, b) | Node::Range(_, a, b) => {
                        Box::new(all_template_calls(a).chain(all_template_calls(b)))
                    }
                    _ => Box::new(std::iter::empty()),
                }
            }),
    )
}

fn header_of(p: &Pipe, names: &dyn Fn(&str) -> Option<String>) -> String {
    let key = p
        .cmds
        .first()
        .and_then(|c| {
            c.args.iter().find_map(|t| match t {
                Arg::Field(f) if !f.is_empty() => Some(f.join(".")),
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

// ---- lexing ----

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Dot,
    Field(Vec<String>),
    /// `.A.B` written right after `)`: fields of the parenthesized value.
    Chain(Vec<String>),
    Var(String, Vec<String>),
    Ident(String),
    Const(Value),
    Nil,
    Open,
    Close,
    Pipe,
    Decl,
    Assign,
    Comma,
}

type Toks = Vec<(Tok, usize)>;

#[derive(Debug)]
enum Item {
    Text(String),
    /// An action's tokens and the offset of its first byte.
    Action(Toks, usize),
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn line_of(src: &str, pos: usize) -> usize {
    1 + src[..pos.min(src.len())].matches('\n').count()
}

/// Splits the source into text and actions (comments dropped, trim markers applied).
fn split_items(s: &str) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    let mut cur = 0;
    let mut trim_next = false;
    loop {
        let open = s[cur..].find("{{").map(|o| cur + o);
        let mut text = &s[cur..open.unwrap_or(s.len())];
        if trim_next {
            text = text.trim_start_matches(is_space);
        }
        let Some(open) = open else {
            if !text.is_empty() {
                items.push(Item::Text(text.to_string()));
            }
            return Ok(items);
        };
        let mut inner = open + 2;
        let rest = &s[inner..];
        if rest.starts_with('-') && rest[1..].starts_with(is_space) {
            text = text.trim_end_matches(is_space);
            inner += 1;
        }
        if !text.is_empty() {
            items.push(Item::Text(text.to_string()));
        }
        let body = s[inner..].trim_start_matches(is_space);
        if body.starts_with("/*") {
            let start = s.len() - body.len();
            let end = s[start..]
                .find("*/")
                .map(|e| start + e + 2)
                .ok_or_else(|| err(format!(":{}: unclosed comment", line_of(s, open))))?;
            let after = s[end..].trim_start_matches(is_space);
            trim_next = after.starts_with("-}}") && after.len() < s.len() - end;
            let after = if trim_next { &after[1..] } else { after };
            if !after.starts_with("}}") {
                return Err(err(format!(
                    ":{}: comment ends before closing delimiter",
                    line_of(s, open)
                )));
            }
            cur = s.len() - after.len() + 2;
            continue;
        }
        let close = find_close(&s[inner..]).map(|c| inner + c).ok_or_else(|| {
            // A `}}` hidden by an open quote: Go's lexer reports the quote.
            let what = if s[inner..].contains("}}") {
                "unterminated quoted string"
            } else {
                "unclosed action"
            };
            err(format!(":{}: {what}", line_of(s, open)))
        })?;
        let mut end = close;
        trim_next = false;
        if s[inner..close].ends_with('-') && s[inner..close - 1].ends_with(is_space) {
            trim_next = true;
            end -= 1;
        }
        items.push(Item::Action(lex(s, inner, end)?, inner));
        cur = close + 2;
    }
}

/// Position of the `}}` closing an action, skipping quoted strings and characters.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < b.len() {
        match quote {
            Some(q) => {
                if b[i] == b'\\' && q != b'`' {
                    i += 1;
                } else if b[i] == q {
                    quote = None;
                }
            }
            None if matches!(b[i], b'"' | b'`' | b'\'') => quote = Some(b[i]),
            None if b[i..].starts_with(b"}}") => return Some(i),
            None => {}
        }
        i += 1;
    }
    None
}

fn ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Lexes the action `src[from..to]`; positions are offsets in `src`.
fn lex(src: &str, from: usize, to: usize) -> Result<Toks> {
    let s = &src[..to];
    let line = || line_of(src, from);
    let mut toks: Toks = Vec::new();
    let mut i = from;
    let mut spaced = true;
    // Reads `.a.b.c` from i: the names.
    let fields = |i: &mut usize| -> Result<Vec<String>> {
        let mut path = Vec::new();
        while s[*i..].starts_with('.') && s[*i + 1..].starts_with(ident_char) {
            let n = s[*i + 1..]
                .find(|c| !ident_char(c))
                .unwrap_or(s.len() - *i - 1);
            path.push(s[*i + 1..*i + 1 + n].to_string());
            *i += 1 + n;
        }
        if !path.is_empty() && s[*i..].starts_with('.') {
            return Err(err(format!(":{}: bad character after field", line())));
        }
        Ok(path)
    };
    while i < s.len() {
        let c = s[i..].chars().next().expect("in bounds");
        let start = i;
        let after_close = !spaced && matches!(toks.last(), Some((Tok::Close, _)));
        spaced = false;
        let tok = match c {
            c if is_space(c) => {
                i += 1;
                spaced = true;
                continue;
            }
            '(' => {
                i += 1;
                Tok::Open
            }
            ')' => {
                i += 1;
                Tok::Close
            }
            '|' => {
                i += 1;
                Tok::Pipe
            }
            ',' => {
                i += 1;
                Tok::Comma
            }
            '=' => {
                i += 1;
                Tok::Assign
            }
            ':' if s[i..].starts_with(":=") => {
                i += 2;
                Tok::Decl
            }
            '"' | '`' | '\'' => {
                let (v, n) = quoted(&s[i..])
                    .ok_or_else(|| err(format!(":{}: unterminated quoted string", line())))?;
                i += n;
                if c == '\'' {
                    let mut ch = v.chars();
                    match (ch.next(), ch.next()) {
                        (Some(x), None) => Tok::Const(Value::from(x as u32)),
                        _ => {
                            return Err(err(format!(
                                ":{}: malformed character constant: {}",
                                line(),
                                &s[start..i]
                            )))
                        }
                    }
                } else {
                    Tok::Const(Value::String(v))
                }
            }
            '.' if s[i + 1..].starts_with(|c: char| c.is_ascii_digit()) => {
                number(s, &mut i, line())?
            }
            '.' => {
                let path = fields(&mut i)?;
                if path.is_empty() {
                    i += 1;
                    Tok::Dot
                } else if after_close {
                    Tok::Chain(path)
                } else {
                    Tok::Field(path)
                }
            }
            '$' => {
                i += 1;
                let n = s[i..].find(|c| !ident_char(c)).unwrap_or(s.len() - i);
                let name = format!("${}", &s[i..i + n]);
                i += n;
                Tok::Var(name, fields(&mut i)?)
            }
            '+' | '-' | '0'..='9' => number(s, &mut i, line())?,
            c if ident_char(c) => {
                let n = s[i..].find(|c| !ident_char(c)).unwrap_or(s.len() - i);
                let w = &s[i..i + n];
                i += n;
                match w {
                    "true" | "false" => Tok::Const(Value::Bool(w == "true")),
                    "nil" => Tok::Nil,
                    _ => Tok::Ident(w.to_string()),
                }
            }
            c => return Err(err(format!(":{}: unexpected {c:?} in command", line()))),
        };
        toks.push((tok, start));
    }
    Ok(toks)
}

/// A Go string (`"..."` with escapes, or raw in backquotes) or character literal at the
/// start of `s`: its value and length.
fn quoted(s: &str) -> Option<(String, usize)> {
    let q = s.chars().next()?;
    let mut v = String::new();
    let mut it = s.char_indices().skip(1);
    while let Some((i, c)) = it.next() {
        match c {
            c if c == q => return Some((v, i + 1)),
            '\\' if q != '`' => {
                let (_, e) = it.next()?;
                match e {
                    'n' => v.push('\n'),
                    't' => v.push('\t'),
                    'r' => v.push('\r'),
                    'a' => v.push('\x07'),
                    'b' => v.push('\x08'),
                    'f' => v.push('\x0c'),
                    'v' => v.push('\x0b'),
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let hex: String = (0..n).filter_map(|_| it.next().map(|x| x.1)).collect();
                        v.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                    }
                    '0'..='7' => {
                        let mut oct = e.to_string();
                        for _ in 0..2 {
                            oct.push(it.next()?.1);
                        }
                        v.push(char::from_u32(u32::from_str_radix(&oct, 8).ok()?)?);
                    }
                    o => v.push(o),
                }
            }
            c => v.push(c),
        }
    }
    None
}

/// A Go number literal (ints in any base, floats, a sign).
fn number(s: &str, i: &mut usize, line: usize) -> Result<Tok> {
    let start = *i;
    let b = s.as_bytes();
    let mut j = *i;
    if matches!(b[j], b'+' | b'-') {
        j += 1;
    }
    let hex = s[j..].starts_with("0x") || s[j..].starts_with("0X");
    while j < b.len() {
        let c = b[j];
        let exp_sign = matches!(c, b'+' | b'-')
            && matches!(b[j - 1], b'e' | b'E' | b'p' | b'P')
            && !(hex && matches!(b[j - 1], b'e' | b'E'));
        if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || exp_sign {
            j += 1;
        } else {
            break;
        }
    }
    *i = j;
    let text = &s[start..j];
    let t = text.replace('_', "");
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, &t[..]),
    };
    let radix = |p: &str, r| {
        digits
            .get(2..)
            .filter(|_| digits.len() > 2 && digits[..2].eq_ignore_ascii_case(p))
            .and_then(|d| i64::from_str_radix(d, r).ok())
    };
    let int = radix("0x", 16)
        .or_else(|| radix("0o", 8))
        .or_else(|| radix("0b", 2))
        .or_else(|| {
            if digits.len() > 1
                && digits.starts_with('0')
                && digits.bytes().all(|c| c.is_ascii_digit())
            {
                i64::from_str_radix(&digits[1..], 8).ok()
            } else {
                digits.parse::<i64>().ok()
            }
        });
    if let Some(n) = int {
        return Ok(Tok::Const(Value::from(if neg { -n } else { n })));
    }
    match t.parse::<f64>().ok().and_then(Number::from_f64) {
        Some(n) if !digits.starts_with(|c: char| c.is_alphabetic()) => {
            Ok(Tok::Const(Value::Number(n)))
        }
        _ => Err(err(format!(":{line}: bad number syntax: {text:?}"))),
    }
}

// ---- parsing ----

enum Stop {
    Eof,
    End(usize),
    Else(Toks, usize),
}

struct Parser<'a> {
    src: &'a str,
    items: Vec<Item>,
    i: usize,
    /// Variables in scope.
    vars: Vec<String>,
    ranges: usize,
    /// Depth inside control structures (define is only allowed at the top).
    nested: usize,
    defs: HashMap<String, Vec<Node>>,
}

impl Parser<'_> {
    fn perr(&self, pos: usize, msg: impl std::fmt::Display) -> Error {
        err(format!(":{}: {msg}", line_of(self.src, pos)))
    }

    fn list(&mut self) -> Result<(Vec<Node>, Stop)> {
        let mut nodes = Vec::new();
        while self.i < self.items.len() {
            let item = std::mem::replace(&mut self.items[self.i], Item::Text(String::new()));
            self.i += 1;
            let (toks, pos) = match item {
                Item::Text(t) => {
                    nodes.push(Node::Text(t));
                    continue;
                }
                Item::Action(t, p) => (t, p),
            };
            let kw = match toks.first() {
                None => return Err(self.perr(pos, "missing value for command")),
                Some((Tok::Ident(k), _)) => k.as_str(),
                Some(_) => "",
            };
            let rest = &toks[1.min(toks.len())..];
            let node = match kw {
                "end" => {
                    if !rest.is_empty() {
                        return Err(self.perr(pos, "unexpected token in end"));
                    }
                    return Ok((nodes, Stop::End(pos)));
                }
                "else" => return Ok((nodes, Stop::Else(rest.to_vec(), pos))),
                "if" | "with" | "range" => self.control(kw, rest, pos)?,
                "break" | "continue" => {
                    if self.ranges == 0 {
                        return Err(self.perr(pos, format!("{{{{{kw}}}}} outside {{{{range}}}}")));
                    }
                    if !rest.is_empty() {
                        return Err(self.perr(pos, format!("unexpected token in {{{{{kw}}}}}")));
                    }
                    if kw == "break" {
                        Node::Break
                    } else {
                        Node::Continue
                    }
                }
                "define" | "block" | "template" => {
                    let name = match rest.first() {
                        Some((Tok::Const(Value::String(n)), _)) => n.clone(),
                        _ => return Err(self.perr(pos, format!("missing name in {kw} clause"))),
                    };
                    let pipe = match &rest[1..] {
                        [] if kw != "block" => None,
                        [] => return Err(self.perr(pos, "missing pipeline in block clause")),
                        p if kw == "define" => {
                            return Err(self.perr(p[0].1, "unexpected token in define clause"))
                        }
                        p => Some(self.pipe(p, pos, 0)?),
                    };
                    if kw != "template" {
                        if kw == "define" && self.nested > 0 {
                            return Err(self.perr(pos, "unexpected <define> in command"));
                        }
                        let saved = std::mem::replace(&mut self.vars, vec!["$".into()]);
                        let ranges = std::mem::replace(&mut self.ranges, 0);
                        self.nested += 1;
                        let body = self.list_to_end(kw)?;
                        self.nested -= 1;
                        self.vars = saved;
                        self.ranges = ranges;
                        self.defs.insert(name.clone(), body);
                        if kw == "define" {
                            continue;
                        }
                    }
                    Node::Template(pos, name, pipe)
                }
                _ => Node::Action(self.pipe(&toks, pos, 1)?),
            };
            nodes.push(node);
        }
        Ok((nodes, Stop::Eof))
    }

    fn list_to_end(&mut self, kw: &str) -> Result<Vec<Node>> {
        match self.list()? {
            (l, Stop::End(_)) => Ok(l),
            (_, Stop::Else(_, pos)) => {
                Err(self.perr(pos, format!("unexpected {{{{else}}}} in {kw}")))
            }
            (_, Stop::Eof) => Err(err(format!(
                ":{}: unexpected EOF",
                line_of(self.src, self.src.len())
            ))),
        }
    }

    /// `if`, `with`, `range` after their keyword (also an `else if` / `else with`).
    fn control(&mut self, kw: &str, toks: &[(Tok, usize)], pos: usize) -> Result<Node> {
        if toks.is_empty() {
            return Err(self.perr(pos, format!("missing value for {kw}")));
        }
        let mark = self.vars.len();
        let pipe = self.pipe(toks, pos, if kw == "range" { 2 } else { 1 })?;
        self.nested += 1;
        if kw == "range" {
            self.ranges += 1;
        }
        let body = self.list();
        if kw == "range" {
            self.ranges -= 1;
        }
        let (body, stop) = body?;
        let els = match stop {
            Stop::End(_) => vec![],
            Stop::Else(rest, epos) => match rest.first() {
                None => self.list_to_end(kw)?,
                Some((Tok::Ident(k), _)) if k == kw && kw != "range" => {
                    vec![self.control(kw, &rest[1..], epos)?]
                }
                Some(_) => return Err(self.perr(epos, "unexpected token in else")),
            },
            Stop::Eof => {
                return Err(err(format!(
                    ":{}: unexpected EOF",
                    line_of(self.src, self.src.len())
                )))
            }
        };
        self.nested -= 1;
        self.vars.truncate(mark);
        Ok(match kw {
            "if" => Node::If(pipe, body, els),
            "with" => Node::With(pipe, body, els),
            _ => Node::Range(pipe, body, els),
        })
    }

    /// A pipeline, with up to `max_decl` declared variables.
    fn pipe(&mut self, toks: &[(Tok, usize)], pos: usize, max_decl: usize) -> Result<Pipe> {
        let mut decl = Vec::new();
        let mut assign = false;
        let mut rest = toks;
        let var = |t: Option<&(Tok, usize)>| match t {
            Some((Tok::Var(n, f), _)) if f.is_empty() => Some(n.clone()),
            _ => None,
        };
        if max_decl > 0 {
            let eq = |t: Option<&(Tok, usize)>| matches!(t, Some((Tok::Decl | Tok::Assign, _)));
            if let (Some(v), true) = (var(toks.first()), eq(toks.get(1))) {
                assign = toks[1].0 == Tok::Assign;
                decl.push(v);
                rest = &toks[2..];
            } else if let (2, Some(a), Some((Tok::Comma, _)), Some(b), true) = (
                max_decl,
                var(toks.first()),
                toks.get(1),
                var(toks.get(2)),
                eq(toks.get(3)),
            ) {
                assign = toks[3].0 == Tok::Assign;
                decl = vec![a, b];
                rest = &toks[4..];
            }
        }
        if assign {
            if let Some(v) = decl.iter().find(|v| !self.vars.contains(v)) {
                return Err(self.perr(pos, format!("undefined variable {v:?}")));
            }
        }
        let mut at = 0;
        let cmds = self.cmds(rest, &mut at, pos)?;
        if at != rest.len() {
            return Err(self.perr(rest[at].1, "unexpected right paren"));
        }
        if !assign {
            self.vars.extend(decl.iter().cloned());
        }
        Ok(Pipe { decl, assign, cmds })
    }

    /// Commands separated by `|`, up to the end or an unmatched `)`.
    fn cmds(&mut self, toks: &[(Tok, usize)], at: &mut usize, pos: usize) -> Result<Vec<Cmd>> {
        let mut cmds = Vec::new();
        loop {
            let start = toks.get(*at).map(|t| t.1).unwrap_or(pos);
            let mut args = Vec::new();
            while let Some((t, p)) = toks.get(*at) {
                if matches!(t, Tok::Pipe | Tok::Close) {
                    break;
                }
                *at += 1;
                args.push(match t {
                    Tok::Dot => Arg::Dot,
                    Tok::Nil => Arg::Nil,
                    Tok::Const(v) => Arg::Const(v.clone()),
                    Tok::Field(f) => Arg::Field(f.clone()),
                    Tok::Var(n, f) => {
                        if !self.vars.contains(n) {
                            return Err(self.perr(*p, format!("undefined variable {n:?}")));
                        }
                        Arg::Var(n.clone(), f.clone())
                    }
                    Tok::Ident(f) if FUNCS.contains(&f.as_str()) => Arg::Func(f.clone()),
                    Tok::Ident(f) if KEYWORDS.contains(&f.as_str()) => {
                        return Err(self.perr(*p, format!("unexpected <{f}> in command")))
                    }
                    Tok::Ident(f) => {
                        return Err(self.perr(*p, format!("function {f:?} not defined")))
                    }
                    Tok::Open => {
                        let inner = self.cmds(toks, at, *p)?;
                        if !matches!(toks.get(*at), Some((Tok::Close, _))) {
                            return Err(self.perr(*p, "unclosed left paren"));
                        }
                        *at += 1;
                        let chain = match toks.get(*at) {
                            Some((Tok::Chain(c), _)) => {
                                *at += 1;
                                c.clone()
                            }
                            _ => vec![],
                        };
                        let sub = Pipe {
                            decl: vec![],
                            assign: false,
                            cmds: inner,
                        };
                        Arg::Sub(Box::new(sub), chain)
                    }
                    Tok::Chain(_) => return Err(self.perr(*p, "unexpected . after term")),
                    Tok::Decl | Tok::Assign | Tok::Comma => {
                        return Err(self.perr(*p, "unexpected declaration or comma in command"))
                    }
                    Tok::Pipe | Tok::Close => unreachable!("stopped above"),
                });
            }
            if args.is_empty() {
                return Err(self.perr(start, "missing value for command"));
            }
            if !cmds.is_empty() && matches!(args[0], Arg::Dot | Arg::Nil | Arg::Const(_)) {
                return Err(self.perr(
                    start,
                    format!(
                        "non executable command in pipeline stage {}",
                        cmds.len() + 1
                    ),
                ));
            }
            if args.len() > 1 && matches!(args[0], Arg::Nil) {
                return Err(self.perr(start, "nil is not a command"));
            }
            let end = toks
                .get(*at)
                .map(|t| t.1)
                .unwrap_or_else(|| self.action_end(start));
            cmds.push(Cmd {
                pos: start,
                text: self.src[start..end].trim_end().to_string(),
                args,
            });
            match toks.get(*at) {
                Some((Tok::Pipe, _)) => *at += 1,
                _ => return Ok(cmds),
            }
        }
    }

    /// The end of the action that holds `pos` (before `}}` and a trim marker).
    fn action_end(&self, pos: usize) -> usize {
        let e = find_close(&self.src[pos..]).map_or(self.src.len(), |c| pos + c);
        let t = self.src[pos..e].trim_end_matches(is_space);
        match t.strip_suffix('-') {
            Some(x) if x.ends_with(is_space) => pos + x.len(),
            _ => pos + t.len(),
        }
    }
}

const KEYWORDS: &[&str] = &[
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
];

// ---- execution ----

struct Fail {
    msg: String,
    /// The message already says where (an inner command failed).
    located: bool,
}

fn fail(msg: impl Into<String>) -> Fail {
    Fail {
        msg: msg.into(),
        located: false,
    }
}

type X<T> = std::result::Result<T, Fail>;

enum Flow {
    Normal,
    Break,
    Continue,
}

struct Exec<'t> {
    t: &'t Template,
    vars: Vec<(String, V)>,
    out: String,
    /// The template being executed ("" for the main one), as Go names it in errors.
    name: String,
    depth: usize,
}

impl Exec<'_> {
    fn walk(&mut self, dot: &Value, nodes: &[Node]) -> X<Flow> {
        for n in nodes {
            let flow = match n {
                Node::Text(t) => {
                    self.out.push_str(t);
                    Flow::Normal
                }
                Node::Action(p) => {
                    let v = self.pipe(dot, p)?;
                    if p.decl.is_empty() {
                        self.out.push_str(&printed(&v));
                    }
                    Flow::Normal
                }
                Node::If(p, a, b) | Node::With(p, a, b) => {
                    let mark = self.vars.len();
                    let v = self.pipe(dot, p)?;
                    let f = match (truth(&v), n) {
                        (true, Node::With(..)) => {
                            self.walk(v.as_ref().unwrap_or(&Value::Null), a)?
                        }
                        (true, _) => self.walk(dot, a)?,
                        (false, _) => self.walk(dot, b)?,
                    };
                    self.vars.truncate(mark);
                    f
                }
                Node::Range(p, body, els) => self.range(dot, p, body, els)?,
                Node::Template(pos, name, p) => {
                    let d = match p {
                        Some(p) => self.pipe(dot, p)?.unwrap_or(Value::Null),
                        None => Value::Null,
                    };
                    if self.depth >= MAX_DEPTH {
                        return Err(self.located(
                            *pos,
                            &format!("template {name:?}"),
                            fail(format!("exceeded maximum template depth ({MAX_DEPTH})")),
                        ));
                    }
                    let body = &self.t.defs[name];
                    let saved_vars =
                        std::mem::replace(&mut self.vars, vec![("$".into(), Some(d.clone()))]);
                    let saved_name = std::mem::replace(&mut self.name, name.clone());
                    self.depth += 1;
                    let r = self.walk(&d, body);
                    self.depth -= 1;
                    self.vars = saved_vars;
                    self.name = saved_name;
                    r?;
                    Flow::Normal
                }
                Node::Break => Flow::Break,
                Node::Continue => Flow::Continue,
            };
            if !matches!(flow, Flow::Normal) {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn range(&mut self, dot: &Value, p: &Pipe, body: &[Node], els: &[Node]) -> X<Flow> {
        let mark = self.vars.len();
        let v = self.cmds(dot, &p.cmds)?;
        let pos = p.cmds[0].pos;
        let items: Vec<(Value, Value)> = match v {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(a)) => a
                .into_iter()
                .enumerate()
                .map(|(i, x)| (i.into(), x))
                .collect(),
            Some(Value::Object(m)) => {
                let mut kv: Vec<(String, Value)> = m.into_iter().collect();
                kv.sort_by(|a, b| a.0.cmp(&b.0));
                kv.into_iter().map(|(k, x)| (Value::String(k), x)).collect()
            }
            Some(Value::Number(n)) if n.as_i64().is_some() => {
                if p.decl.len() > 1 {
                    return Err(self.located(
                        pos,
                        &p.cmds[0].text,
                        fail(format!(
                            "can't use {n} to iterate over more than one variable"
                        )),
                    ));
                }
                (0..n.as_i64().unwrap_or(0))
                    .map(|i| (i.into(), i.into()))
                    .collect()
            }
            Some(other) => {
                return Err(self.located(
                    pos,
                    &p.cmds[0].text,
                    fail(format!("range can't iterate over {}", to_text(&other))),
                ))
            }
        };
        if items.is_empty() {
            let f = self.walk(dot, els)?;
            self.vars.truncate(mark);
            return Ok(f);
        }
        for (k, x) in items {
            let vals = match p.decl.len() {
                1 => vec![x.clone()],
                2 => vec![k, x.clone()],
                _ => vec![],
            };
            for (name, val) in p.decl.iter().zip(vals) {
                if p.assign {
                    self.set(name, Some(val));
                } else {
                    self.vars.push((name.clone(), Some(val)));
                }
            }
            let f = self.walk(&x, body)?;
            self.vars.truncate(mark);
            if matches!(f, Flow::Break) {
                break;
            }
        }
        Ok(Flow::Normal)
    }

    fn set(&mut self, name: &str, v: V) {
        if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            slot.1 = v;
        }
    }

    /// A pipeline, declaring or assigning its variables.
    fn pipe(&mut self, dot: &Value, p: &Pipe) -> X<V> {
        let v = self.cmds(dot, &p.cmds)?;
        for name in &p.decl {
            if p.assign {
                self.set(name, v.clone());
            } else {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn cmds(&mut self, dot: &Value, cmds: &[Cmd]) -> X<V> {
        let mut piped: Option<V> = None;
        for c in cmds {
            let v = self
                .cmd(dot, c, piped.take())
                .map_err(|f| self.located(c.pos, &c.text, f))?;
            piped = Some(v);
        }
        Ok(piped.unwrap_or(None))
    }

    fn located(&self, pos: usize, text: &str, f: Fail) -> Fail {
        if f.located {
            return f;
        }
        let src = &self.t.src;
        let line = line_of(src, pos);
        let col = pos - src[..pos.min(src.len())].rfind('\n').map_or(0, |i| i + 1);
        Fail {
            msg: format!(
                "template: :{line}:{col}: executing {:?} at <{text}>: {}",
                self.name, f.msg
            ),
            located: true,
        }
    }

    fn cmd(&mut self, dot: &Value, c: &Cmd, piped: Option<V>) -> X<V> {
        let first = &c.args[0];
        let has_args = c.args.len() > 1 || piped.is_some();
        match first {
            Arg::Func(f) if f == "and" || f == "or" => {
                // Go 1.18: evaluation stops at the first argument that decides.
                let n = c.args.len() - 1 + usize::from(piped.is_some());
                if n == 0 {
                    return Err(fail(format!(
                        "wrong number of args for {f}: want at least 1 got 0"
                    )));
                }
                let mut last = None;
                for a in &c.args[1..] {
                    let v = self.arg(dot, a)?;
                    if truth(&v) == (f == "or") {
                        return Ok(v);
                    }
                    last = Some(v);
                }
                if let Some(v) = piped {
                    return Ok(v);
                }
                Ok(last.unwrap_or(None))
            }
            Arg::Func(f) => {
                let mut args = c.args[1..]
                    .iter()
                    .map(|a| self.arg(dot, a))
                    .collect::<X<Vec<V>>>()?;
                args.extend(piped);
                call(f, &args).map_err(|e| fail(format!("error calling {f}: {}", e.msg)))
            }
            // `.Label "k"` and friends: a method of the value with arguments.
            Arg::Field(path) if has_args && !path.is_empty() => {
                let base = field(Some(dot), ".", &path[..path.len() - 1])?;
                let mut args = c.args[1..]
                    .iter()
                    .map(|a| self.arg(dot, a))
                    .collect::<X<Vec<V>>>()?;
                args.extend(piped);
                method(&base, &path[path.len() - 1], &args)
            }
            _ if has_args => Err(fail(format!(
                "can't give argument to non-function {}",
                arg_text(first)
            ))),
            a => self.arg(dot, a),
        }
    }

    fn arg(&mut self, dot: &Value, a: &Arg) -> X<V> {
        match a {
            Arg::Dot => Ok(Some(dot.clone())),
            Arg::Nil => Ok(Some(Value::Null)),
            Arg::Const(v) => Ok(Some(v.clone())),
            Arg::Field(path) => field(Some(dot), ".", path),
            Arg::Var(name, path) => {
                let v = self
                    .vars
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| fail(format!("undefined variable: {name}")))?;
                field(v.as_ref(), name, path)
            }
            Arg::Func(f) => call(f, &[]).map_err(|e| fail(format!("error calling {f}: {}", e.msg))),
            Arg::Sub(p, chain) => {
                let v = self.cmds(dot, &p.cmds)?;
                field(v.as_ref(), "(...)", chain)
            }
        }
    }
}

/// `base.A.B`: fields of objects; a missing key of a free-form map is "<no value>".
fn field(base: Option<&Value>, base_name: &str, path: &[String]) -> X<V> {
    let Some(mut cur) = base else {
        return match path.first() {
            None => Ok(None),
            Some(k) => Err(fail(format!("nil pointer evaluating {base_name}.{k}"))),
        };
    };
    let mut parent = base_name.trim_start_matches('.').to_string();
    for (i, k) in path.iter().enumerate() {
        cur = match cur {
            Value::Object(m) => match m.get(k) {
                Some(v) => v,
                None if FREE_MAPS.contains(&parent.as_str()) => return Ok(None),
                None => {
                    let mut known: Vec<&str> = m.keys().map(String::as_str).collect();
                    known.sort_unstable();
                    let within = match base_name {
                        "." => format!(".{}", path[..i].join(".")),
                        b => [b.to_string()]
                            .into_iter()
                            .chain(path[..i].iter().cloned())
                            .collect::<Vec<_>>()
                            .join("."),
                    };
                    return Err(fail(format!(
                        "can't evaluate field {k} in {within} (fields: {})",
                        known.join(", ")
                    )));
                }
            },
            Value::Null => return Ok(Some(Value::Null)),
            other => {
                return Err(fail(format!(
                    "can't evaluate field {k} in type {}",
                    go_type(other)
                )))
            }
        };
        parent = k.clone();
    }
    Ok(Some(cur.clone()))
}

fn arg_text(a: &Arg) -> String {
    match a {
        Arg::Dot => ".".into(),
        Arg::Nil => "nil".into(),
        Arg::Const(v) => serde_json::to_string(v).unwrap_or_default(),
        Arg::Field(p) => format!(".{}", p.join(".")),
        Arg::Var(n, p) => std::iter::once(n.clone())
            .chain(p.iter().cloned())
            .collect::<Vec<_>>()
            .join("."),
        Arg::Func(f) => f.clone(),
        Arg::Sub(..) => "(...)".into(),
    }
}

/// Keys whose values are free-form maps: a missing key there is "<no value>", not an error.
const FREE_MAPS: &[&str] = &[
    "Labels",
    "Attributes",
    "Options",
    "Data",
    "Volumes",
    "ExposedPorts",
    "Networks",
    "Ports",
    "Annotations",
    "DriverOpts",
];

fn method(base: &V, name: &str, args: &[V]) -> X<V> {
    let base = base.clone().unwrap_or(Value::Null);
    let map = match (name, base.get(name)) {
        ("Label", _) => base.get("Labels").cloned().unwrap_or(Value::Null),
        (_, Some(v @ Value::Object(_))) => v.clone(),
        _ => return Err(fail(format!("can't give argument to non-function .{name}"))),
    };
    let key = match args {
        [Some(Value::String(k))] => k.as_str(),
        _ => return Err(fail(format!(".{name} takes one string argument"))),
    };
    Ok(Some(match map {
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
    }))
}

/// Go's truth: false, 0, nil, empty strings, lists and maps are false.
fn truth(v: &V) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(m)) => !m.is_empty(),
    }
}

/// How an action prints its value.
fn printed(v: &V) -> String {
    match v {
        None => "<no value>".into(),
        Some(v) => to_text(v),
    }
}

/// The Go type docker's value would have, for messages.
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn int_arg(f: &str, v: &V) -> X<i64> {
    match v {
        Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64().unwrap_or(0)),
        Some(v) => Err(fail(format!(
            "wrong type for value; expected int; got {}",
            go_type(v)
        ))),
        None => Err(fail(format!("{f}: missing value"))),
    }
}

fn text_arg(v: &V) -> String {
    v.as_ref().map(to_text).unwrap_or_default()
}

fn call(f: &str, args: &[V]) -> X<V> {
    let want = |n: usize| -> X<()> {
        if args.len() == n {
            Ok(())
        } else {
            Err(fail(format!(
                "wrong number of args for {f}: want {n} got {}",
                args.len()
            )))
        }
    };
    let s = |x: String| Ok(Some(Value::String(x)));
    match f {
        "not" => {
            want(1)?;
            Ok(Some(Value::Bool(!truth(&args[0]))))
        }
        "len" => {
            want(1)?;
            match &args[0] {
                Some(Value::Array(a)) => Ok(Some(a.len().into())),
                Some(Value::Object(m)) => Ok(Some(m.len().into())),
                Some(Value::String(x)) => Ok(Some(x.len().into())),
                // docker's nil lists and maps.
                Some(Value::Null) => Ok(Some(0.into())),
                Some(v) => Err(fail(format!("len of type {}", go_type(v)))),
                None => Err(fail("len of nil pointer")),
            }
        }
        "index" => {
            let (first, keys) = args
                .split_first()
                .ok_or_else(|| fail("wrong number of args for index: want at least 1 got 0"))?;
            let mut cur = first.clone();
            for k in keys {
                cur = match (cur, k) {
                    (Some(Value::Object(m)), Some(Value::String(key))) => match m.get(key) {
                        Some(v) => Some(v.clone()),
                        // Go gives the zero value of the map's element type.
                        None if m.values().all(Value::is_string) => {
                            Some(Value::String(String::new()))
                        }
                        None => None,
                    },
                    (Some(Value::Object(_)), Some(k)) => {
                        return Err(fail(format!(
                            "value has type {}; should be string",
                            go_type(k)
                        )))
                    }
                    (Some(Value::Array(a)), k) => {
                        let i = int_arg("index", k)
                            .map_err(|_| fail("cannot index slice/array with nil"))?;
                        match usize::try_from(i).ok().and_then(|i| a.get(i)) {
                            Some(v) => Some(v.clone()),
                            None => return Err(fail(format!("index out of range: {i}"))),
                        }
                    }
                    (Some(Value::String(x)), k) => {
                        let i = int_arg("index", k)?;
                        match usize::try_from(i).ok().and_then(|i| x.as_bytes().get(i)) {
                            Some(b) => Some(Value::from(*b)),
                            None => return Err(fail(format!("index out of range: {i}"))),
                        }
                    }
                    (None | Some(Value::Null), _) => None,
                    (Some(v), _) => {
                        return Err(fail(format!("can't index item of type {}", go_type(&v))))
                    }
                };
            }
            Ok(cur)
        }
        "slice" => {
            let (first, idx) = args
                .split_first()
                .ok_or_else(|| fail("wrong number of args for slice: want at least 1 got 0"))?;
            if idx.len() > 3 {
                return Err(fail(format!("too many slice indexes: {}", idx.len())));
            }
            let idx = idx
                .iter()
                .map(|k| int_arg("slice", k))
                .collect::<X<Vec<i64>>>()?;
            let len = match first {
                Some(Value::String(x)) if idx.len() == 3 => {
                    let _ = x;
                    return Err(fail("cannot 3-index slice a string"));
                }
                Some(Value::String(x)) => x.len(),
                Some(Value::Array(a)) => a.len(),
                Some(v) => return Err(fail(format!("can't slice item of type {}", go_type(v)))),
                None => return Err(fail("slice of untyped nil")),
            };
            let lo = idx.first().copied().unwrap_or(0);
            let hi = idx.get(1).copied().unwrap_or(len as i64);
            let cap = idx.get(2).copied().unwrap_or(len as i64);
            for i in &idx {
                if *i < 0 || *i as usize > len {
                    return Err(fail(format!("index out of range: {i}")));
                }
            }
            if lo > hi || hi > cap {
                return Err(fail(format!("invalid slice index: {lo} > {hi}")));
            }
            let (lo, hi) = (lo as usize, hi as usize);
            match first {
                Some(Value::String(x)) => match x.get(lo..hi) {
                    Some(t) => s(t.to_string()),
                    None => Err(fail("slice splits a character")),
                },
                Some(Value::Array(a)) => Ok(Some(Value::Array(a[lo..hi].to_vec()))),
                _ => unreachable!("checked above"),
            }
        }
        "print" => {
            // fmt.Sprint: spaces between operands when neither is a string.
            let mut out = String::new();
            for (i, a) in args.iter().enumerate() {
                let is_str = |v: &V| matches!(v, Some(Value::String(_)));
                if i > 0 && !is_str(a) && !is_str(&args[i - 1]) {
                    out.push(' ');
                }
                out.push_str(&printed(a));
            }
            s(out)
        }
        "println" => s(args.iter().map(printed).collect::<Vec<_>>().join(" ") + "\n"),
        "printf" => {
            let (fmt, rest) = args
                .split_first()
                .ok_or_else(|| fail("wrong number of args for printf: want at least 1 got 0"))?;
            match fmt {
                Some(Value::String(fmt)) => s(sprintf(fmt, rest)),
                Some(v) => Err(fail(format!(
                    "wrong type for value; expected string; got {}",
                    go_type(v)
                ))),
                None => Err(fail("invalid value; expected string")),
            }
        }
        "html" => s(escape_args(args)
            .chars()
            .map(|c| match c {
                '<' => "&lt;".into(),
                '>' => "&gt;".into(),
                '&' => "&amp;".into(),
                '\'' => "&#39;".into(),
                '"' => "&#34;".into(),
                '\0' => "\u{FFFD}".into(),
                c => c.to_string(),
            })
            .collect()),
        "js" => s(escape_args(args)
            .chars()
            .map(|c| match c {
                '\\' => "\\\\".into(),
                '\'' => "\\'".into(),
                '"' => "\\\"".into(),
                '<' | '>' | '&' | '=' => format!("\\u{:04X}", c as u32),
                c if (c as u32) < 0x20 => format!("\\u{:04X}", c as u32),
                c => c.to_string(),
            })
            .collect()),
        "urlquery" => s(escape_args(args)
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".into(),
                b => format!("%{b:02X}"),
            })
            .collect()),
        "call" => Err(fail(match args.first() {
            None => "wrong number of args for call: want at least 1 got 0".into(),
            Some(v) => format!(
                "non-function {} of type {}",
                printed(v),
                v.as_ref().map_or("<nil>", go_type)
            ),
        })),
        "eq" => {
            if args.len() < 2 {
                return Err(fail("missing argument for comparison"));
            }
            for b in &args[1..] {
                if compare(&args[0], b)? == Some(std::cmp::Ordering::Equal) {
                    return Ok(Some(Value::Bool(true)));
                }
            }
            Ok(Some(Value::Bool(false)))
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            want(2)?;
            use std::cmp::Ordering::*;
            let o = compare(&args[0], &args[1])?;
            if f != "ne" && !orderable(&args[0]) {
                return Err(fail("invalid type for comparison"));
            }
            let r = match (f, o) {
                ("ne", o) => o != Some(Equal),
                (_, None) => return Err(fail("invalid type for comparison")),
                ("lt", Some(o)) => o == Less,
                ("le", Some(o)) => o != Greater,
                ("gt", Some(o)) => o == Greater,
                (_, Some(o)) => o != Less,
            };
            Ok(Some(Value::Bool(r)))
        }
        "json" => {
            want(1)?;
            s(
                serde_json::to_string(args[0].as_ref().unwrap_or(&Value::Null))
                    .expect("json values serialise"),
            )
        }
        "join" => {
            want(2)?;
            match (&args[0], &args[1]) {
                (Some(Value::Array(a)), Some(Value::String(sep))) => {
                    s(a.iter().map(to_text).collect::<Vec<_>>().join(sep))
                }
                (None | Some(Value::Null), Some(Value::String(_))) => s(String::new()),
                (a, _) => Err(fail(format!(
                    "wrong type for value; expected []string; got {}",
                    a.as_ref().map_or("<nil>", go_type)
                ))),
            }
        }
        "split" => {
            want(2)?;
            let (x, sep) = (text_arg(&args[0]), text_arg(&args[1]));
            let parts: Vec<Value> = if sep.is_empty() {
                x.chars().map(|c| Value::String(c.to_string())).collect()
            } else {
                x.split(sep.as_str())
                    .map(|p| Value::String(p.into()))
                    .collect()
            };
            Ok(Some(Value::Array(parts)))
        }
        "lower" => {
            want(1)?;
            s(text_arg(&args[0]).to_lowercase())
        }
        "upper" => {
            want(1)?;
            s(text_arg(&args[0]).to_uppercase())
        }
        "title" => {
            want(1)?;
            // strings.Title: the first letter of every word.
            let mut prev_sep = true;
            s(text_arg(&args[0])
                .chars()
                .map(|c| {
                    let up = if prev_sep {
                        c.to_uppercase().collect()
                    } else {
                        c.to_string()
                    };
                    prev_sep = !(c.is_alphanumeric() || c == '_' || c == '\'');
                    up
                })
                .collect())
        }
        "truncate" => {
            want(2)?;
            let n = int_arg(f, &args[1])?.max(0) as usize;
            s(text_arg(&args[0]).chars().take(n).collect())
        }
        "pad" => {
            want(3)?;
            let x = text_arg(&args[0]);
            if x.is_empty() {
                return s(x);
            }
            let (a, b) = (
                int_arg(f, &args[1])?.max(0) as usize,
                int_arg(f, &args[2])?.max(0) as usize,
            );
            s(format!("{}{x}{}", " ".repeat(a), " ".repeat(b)))
        }
        _ => Err(fail(format!("function {f:?} not defined"))),
    }
}

/// The text the escaping functions work on (fmt.Sprint of their arguments).
fn escape_args(args: &[V]) -> String {
    match args {
        [Some(Value::String(x))] => x.clone(),
        _ => match call("print", args) {
            Ok(Some(Value::String(x))) => x,
            _ => String::new(),
        },
    }
}

fn orderable(v: &V) -> bool {
    matches!(v, Some(Value::Number(_) | Value::String(_)))
}

/// Go's comparison of basic values: None when unordered (bools), an error for mixed kinds.
fn compare(a: &V, b: &V) -> X<Option<std::cmp::Ordering>> {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => Ok(match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => Some(x.cmp(&y)),
            _ => x.as_f64().partial_cmp(&y.as_f64()),
        }),
        (Some(Value::String(x)), Some(Value::String(y))) => Ok(Some(x.cmp(y))),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => {
            Ok((x == y).then_some(std::cmp::Ordering::Equal))
        }
        (None | Some(Value::Null), None | Some(Value::Null)) => Ok(Some(std::cmp::Ordering::Equal)),
        (None | Some(Value::Null), _) | (_, None | Some(Value::Null)) => {
            Err(fail("incompatible types for comparison"))
        }
        (Some(Value::Array(_) | Value::Object(_)), _)
        | (_, Some(Value::Array(_) | Value::Object(_))) => Err(fail("non-comparable type")),
        _ => Err(fail("incompatible types for comparison")),
    }
}

/// Go's fmt.Sprintf for the verbs templates use: %v %s %q %d %x %X %o %b %c %t %f %F %e
/// %E %g %G %%, with flags (`-+# 0`), width and precision.
fn sprintf(fmt: &str, args: &[V]) -> String {
    let mut out = String::new();
    let mut it = fmt.chars().peekable();
    let mut n = 0;
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut minus, mut plus, mut zero, mut space, mut sharp) =
            (false, false, false, false, false);
        while let Some(&f) = it.peek() {
            match f {
                '-' => minus = true,
                '+' => plus = true,
                '0' => zero = true,
                ' ' => space = true,
                '#' => sharp = true,
                _ => break,
            }
            it.next();
        }
        let num = |it: &mut std::iter::Peekable<std::str::Chars>| {
            let mut d = String::new();
            while let Some(&x) = it.peek().filter(|x| x.is_ascii_digit()) {
                d.push(x);
                it.next();
            }
            d.parse::<usize>().ok()
        };
        let width = num(&mut it);
        let prec = if it.peek() == Some(&'.') {
            it.next();
            Some(num(&mut it).unwrap_or(0))
        } else {
            None
        };
        let Some(verb) = it.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(n) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        n += 1;
        let bad = |v: &V| match v {
            None => format!("%!{verb}(<nil>)"),
            Some(Value::Null) => format!("%!{verb}(<nil>)"),
            Some(x) => format!("%!{verb}({}={})", go_type(x), to_text(x)),
        };
        let int = match arg {
            Some(Value::Number(x)) => x.as_i64(),
            _ => None,
        };
        let float = match arg {
            Some(Value::Number(x)) if x.is_f64() => x.as_f64(),
            _ => None,
        };
        let sign = |neg: bool| {
            if neg {
                "-"
            } else if plus {
                "+"
            } else if space {
                " "
            } else {
                ""
            }
        };
        let mut numeric = true;
        let body = match verb {
            'v' => {
                numeric = int.is_some() || float.is_some();
                match (int, plus) {
                    (Some(i), true) => format!("{}{}", sign(i < 0), i.unsigned_abs()),
                    _ => printed(arg),
                }
            }
            's' | 'q' => {
                numeric = false;
                match arg {
                    Some(Value::String(x)) => {
                        let x: String = match prec {
                            Some(p) => x.chars().take(p).collect(),
                            None => x.clone(),
                        };
                        if verb == 'q' {
                            if sharp && !x.contains('`') {
                                format!("`{x}`")
                            } else {
                                go_quote(&x)
                            }
                        } else {
                            x
                        }
                    }
                    Some(Value::Array(_) | Value::Object(_)) if verb == 's' => printed(arg),
                    _ => bad(arg),
                }
            }
            'd' | 'x' | 'X' | 'o' | 'b' | 'c' if int.is_some() => {
                let i = int.unwrap_or(0);
                let mag = i.unsigned_abs();
                let digits = match verb {
                    'd' => mag.to_string(),
                    'x' => format!("{}{mag:x}", if sharp { "0x" } else { "" }),
                    'X' => format!("{}{mag:X}", if sharp { "0X" } else { "" }),
                    'o' => format!("{}{mag:o}", if sharp { "0" } else { "" }),
                    'b' => format!("{mag:b}"),
                    _ => {
                        out_pad(
                            &mut out,
                            &char::from_u32(i as u32).unwrap_or('\u{FFFD}').to_string(),
                            width,
                            minus,
                            false,
                        );
                        continue;
                    }
                };
                format!("{}{digits}", sign(i < 0))
            }
            'x' | 'X' if matches!(arg, Some(Value::String(_))) => {
                numeric = false;
                let x = text_arg(arg);
                x.bytes()
                    .map(|b| {
                        if verb == 'x' {
                            format!("{b:02x}")
                        } else {
                            format!("{b:02X}")
                        }
                    })
                    .collect()
            }
            'e' | 'E' | 'f' | 'F' | 'g' | 'G' if float.is_some() => {
                let f = float.unwrap_or(0.0);
                let a = f.abs();
                let digits = match verb {
                    'f' | 'F' => format!("{a:.*}", prec.unwrap_or(6)),
                    'e' | 'E' => {
                        let e = go_exp(&format!("{a:.*e}", prec.unwrap_or(6)));
                        if verb == 'E' {
                            e.to_uppercase()
                        } else {
                            e
                        }
                    }
                    _ => {
                        let g = match prec {
                            Some(p) => go_g(a, p.max(1)),
                            None => to_text(&Value::from(a)),
                        };
                        if verb == 'G' {
                            g.to_uppercase()
                        } else {
                            g
                        }
                    }
                };
                format!("{}{digits}", sign(f.is_sign_negative() && f != 0.0))
            }
            't' => {
                numeric = false;
                match arg {
                    Some(Value::Bool(b)) => b.to_string(),
                    _ => bad(arg),
                }
            }
            _ => {
                numeric = false;
                bad(arg)
            }
        };
        if numeric && zero && !minus {
            let w = width.unwrap_or(0);
            let len = body.chars().count();
            if len < w {
                let split = body.find(|c: char| c.is_ascii_alphanumeric()).unwrap_or(0);
                out.push_str(&body[..split]);
                out.extend(std::iter::repeat_n('0', w - len));
                out.push_str(&body[split..]);
                continue;
            }
        }
        out_pad(&mut out, &body, width, minus, false);
    }
    if n < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[n..]
            .iter()
            .map(|a| match a {
                Some(x) if !x.is_null() => format!("{}={}", go_type(x), to_text(x)),
                _ => "<nil>".into(),
            })
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

fn out_pad(out: &mut String, body: &str, width: Option<usize>, minus: bool, _zero: bool) {
    let pad = width.unwrap_or(0).saturating_sub(body.chars().count());
    if !minus {
        out.extend(std::iter::repeat_n(' ', pad));
    }
    out.push_str(body);
    if minus {
        out.extend(std::iter::repeat_n(' ', pad));
    }
}

/// Rust's `1.5e3` as Go's `1.5e+03`.
fn go_exp(s: &str) -> String {
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, d) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            format!("{m}e{sign}{d:0>2}")
        }
        None => s.to_string(),
    }
}

/// %.Ng: N significant digits, %e form for large or small exponents, no trailing zeros.
fn go_g(a: f64, p: usize) -> String {
    if a == 0.0 {
        return "0".into();
    }
    let exp = a.log10().floor() as i64;
    if exp < -4 || exp >= p as i64 {
        let e = format!("{a:.*e}", p - 1);
        let (m, x) = e.split_once('e').unwrap_or((&e, "0"));
        let m = if m.contains('.') {
            m.trim_end_matches('0').trim_end_matches('.')
        } else {
            m
        };
        go_exp(&format!("{m}e{x}"))
    } else {
        let decimals = (p as i64 - 1 - exp).max(0) as usize;
        let f = format!("{a:.decimals$}");
        if f.contains('.') {
            f.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            f
        }
    }
}

/// Go's strconv.Quote (also ps's COMMAND column).
pub fn go_quote(s: &str) -> String {
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\t' => q.push_str("\\t"),
            '\r' => q.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                q.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// How Go prints a value with {{.}} (maps in key order, as fmt does).
pub fn to_text(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (None, Some(u), _) => u.to_string(),
            (None, None, Some(f)) if f.fract() == 0.0 && f.abs() < 1e21 => format!("{f:.0}"),
            (None, None, Some(f)) if f.abs() >= 1e21 || (f != 0.0 && f.abs() < 1e-4) => {
                go_exp(&format!("{f:e}"))
            }
            _ => n.to_string(),
        },
        Value::Array(a) => format!("[{}]", a.iter().map(to_text).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut kv: Vec<_> = m.iter().collect();
            kv.sort_by(|a, b| a.0.cmp(b.0));
            format!(
                "map[{}]",
                kv.iter()
                    .map(|(k, v)| format!("{k}:{}", to_text(v)))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(f: &str, v: &Value) -> String {
        match Template::parse(f) {
            Ok(t) => t.render(v).unwrap_or_else(|e| panic!("{f}: {e}")),
            Err(e) => panic!("{f}: {e}"),
        }
    }

    fn exec_err(f: &str, v: &Value) -> String {
        Template::parse(f)
            .unwrap()
            .render(v)
            .unwrap_err()
            .to_string()
    }

    fn parse_err(f: &str) -> String {
        Template::parse(f).unwrap_err().to_string()
    }

    fn sample() -> Value {
        json!({"Name": "/web", "State": {"Status": "running", "Pid": 42, "Running": true},
            "Config": {"Labels": {"a": "1", "b": "2"}, "Cmd": ["sh", "-c", "x"], "Env": [],
                "ExposedPorts": {"80/tcp": {}}},
            "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.2"},
                "my-net": {"IPAddress": "10.0.0.2"}}},
            "Mounts": [{"Source": "/a"}, {"Source": "/b"}], "Labels": "a=1,b=2",
            "HostConfig": {"Binds": null}, "Size": 1.5})
    }

    #[test]
    fn fields_and_functions() {
        let v = sample();
        assert_eq!(r("{{.Name}} {{.State.Status}}", &v), "/web running");
        assert_eq!(r("{{.State.Pid}}", &v), "42");
        assert_eq!(
            r(
                "{{(index .NetworkSettings.Networks \"my-net\").IPAddress}}",
                &v
            ),
            "10.0.0.2"
        );
        assert_eq!(
            r("{{json .State}}", &v),
            r#"{"Status":"running","Pid":42,"Running":true}"#
        );
        assert_eq!(r(r#"{{index .Config.Labels "a"}}"#, &v), "1");
        assert_eq!(r(r#"[{{index .Config.Labels "zz"}}]"#, &v), "[]");
        assert_eq!(r(r#"{{.Label "b"}}"#, &v), "2");
        assert_eq!(r(r#"{{join .Config.Cmd " "}}"#, &v), "sh -c x");
        assert_eq!(r("{{.Name | upper}}", &v), "/WEB");
        assert_eq!(
            r(
                "{{len .Config.Cmd}} {{len .Mounts}} {{len .Config.Labels}} {{len .Name}}",
                &v
            ),
            "3 2 2 4"
        );
        assert_eq!(r("{{len .HostConfig.Binds}}", &v), "0");
        assert_eq!(r("{{.Config.Cmd}}", &v), "[sh -c x]");
        assert_eq!(r("{{.Config.Labels}}", &v), "map[a:1 b:2]");
        assert_eq!(r("{{.Config.Labels.zz}}", &v), "<no value>");
        assert_eq!(r("a\\tb\\n{{- \" x\" }}", &v), "a\tb x");
        assert_eq!(r("{{json (index .Config.Labels \"a\")}}", &v), "\"1\"");
        assert_eq!(r("{{.Size}}", &v), "1.5");
    }

    #[test]
    fn control_structures() {
        let v = sample();
        let up = r#"{{if eq .State.Status "running"}}up{{else}}down{{end}}"#;
        assert_eq!(r(up, &v), "up");
        assert_eq!(r(up, &json!({"State": {"Status": "exited"}})), "down");
        assert_eq!(
            r(
                r#"{{if eq .State.Status "x"}}x{{else if .State.Running}}run{{else}}no{{end}}"#,
                &v
            ),
            "run"
        );
        assert_eq!(
            r(
                "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                &v
            ),
            "172.17.0.2 10.0.0.2 "
        );
        assert_eq!(
            r(
                "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}};{{end}}",
                &v
            ),
            "bridge=172.17.0.2;my-net=10.0.0.2;"
        );
        assert_eq!(
            r(
                "{{range $i, $m := .Mounts}}{{if $i}},{{end}}{{$i}}:{{.Source}}{{end}}",
                &v
            ),
            "0:/a,1:/b"
        );
        assert_eq!(r("{{range .Config.Env}}x{{else}}empty{{end}}", &v), "empty");
        assert_eq!(
            r(
                "{{range .Nope}}x{{else}}none{{end}}",
                &json!({"Nope": null})
            ),
            "none"
        );
        assert_eq!(r("{{range 3}}{{.}}{{end}}", &v), "012");
        assert_eq!(
            r("{{range .Config.Cmd}}{{if eq . \"-c\"}}{{continue}}{{end}}{{if eq . \"x\"}}{{break}}{{end}}{{.}}{{end}}", &v),
            "sh"
        );
        assert_eq!(r("{{with .State}}{{.Status}}{{end}}", &v), "running");
        assert_eq!(
            r("{{with .Config.Env}}x{{else}}no env{{end}}", &v),
            "no env"
        );
        assert_eq!(
            r("{{with .Config.Env}}x{{else with .Name}}{{.}}{{end}}", &v),
            "/web"
        );
        assert_eq!(
            r(
                "{{$n := .Name}}{{with .State}}{{$n}} {{.Pid}} {{$.Name}}{{end}}",
                &v
            ),
            "/web 42 /web"
        );
        assert_eq!(r("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", &v), "2");
        assert_eq!(r("{{- /* a comment */ -}}  \n {{.Name}}", &v), "/web");
        assert_eq!(
            r("{{define \"t\"}}[{{.}}]{{end}}{{template \"t\" .Name}}", &v),
            "[/web]"
        );
        assert_eq!(r("{{block \"b\" .State.Pid}}<{{.}}>{{end}}", &v), "<42>");
        assert_eq!(r("a  {{- 3 -}}  b", &v), "a3b");
        assert_eq!(r("{{-3}}", &v), "-3");
        // Go's documented trim example.
        assert_eq!(r("{{23 -}} < {{- 45}}", &v), "23<45");
        assert_eq!(r(r#"{{"}}"}}{{`a"b`}}"#, &v), "}}a\"b");
        assert_eq!(
            r(
                "{{range $k, $v := .}}{{$k}}{{end}}",
                &json!({"b": 1, "a": 2})
            ),
            "ab"
        );
        let rec = r#"{{define "c"}}{{if gt . 0}}{{.}}{{template "c" (slice "x" 0 0 | len)}}{{end}}{{end}}{{template "c" 3}}"#;
        assert_eq!(r(rec, &v), "3");
        assert_eq!(
            r("{{ .Name }}|{{ printf \"%v\" .Config.Labels }}", &v),
            "/web|map[a:1 b:2]"
        );
        assert_eq!(r("{{1.5}} {{1e3}} {{0x10}} {{'a'}}", &v), "1.5 1000 16 97");
    }

    #[test]
    fn comparisons_and_logic() {
        let v = sample();
        assert_eq!(
            r(
                "{{eq 1 1}} {{ne 1 2}} {{lt 1 2}} {{le 2 2}} {{gt 3 2}} {{ge 1 2}}",
                &v
            ),
            "true true true true true false"
        );
        assert_eq!(r(r#"{{eq .State.Status "exited" "running"}}"#, &v), "true");
        assert_eq!(
            r(r#"{{lt "a" "b"}} {{eq .State.Pid 42}} {{gt .Size 1}}"#, &v),
            "true true true"
        );
        assert_eq!(
            r(
                "{{and 1 0}} {{and 1 2}} {{or 0 \"\"}} {{or 0 3}} {{not .State.Running}}",
                &v
            ),
            "0 2  3 false"
        );
        // and/or stop at the deciding argument (the second would fail).
        assert_eq!(r("{{or .Name (index .Mounts 9)}}", &v), "/web");
        assert!(
            exec_err(r#"{{eq .State.Pid "42"}}"#, &v).contains("incompatible types for comparison")
        );
        assert!(exec_err("{{lt true false}}", &v).contains("invalid type for comparison"));
    }

    #[test]
    fn printing() {
        let v = sample();
        assert_eq!(r(r#"{{.Name | printf "%s-x"}}"#, &v), "/web-x");
        assert_eq!(
            r(
                r#"{{printf "%5d|%-5s|%05d|%x|%q|%v" 42 "ab" 7 255 "a\"b" .Config.Cmd}}"#,
                &v
            ),
            "   42|ab   |00007|ff|\"a\\\"b\"|[sh -c x]"
        );
        assert_eq!(r(r#"{{printf "%.2f %d%%" .Size 5}}"#, &v), "1.50 5%");
        assert_eq!(
            r(r#"{{printf "%d %s" "x"}}"#, &v),
            "%!d(string=x) %!s(MISSING)"
        );
        assert_eq!(
            r(r#"{{printf "%t" true}} {{printf "a" 1}}"#, &v),
            "true a%!(EXTRA int=1)"
        );
        assert_eq!(
            r(r#"{{print "a" 1 2 "b"}}|{{println "x" 1}}"#, &v),
            "a1 2b|x 1\n"
        );
        assert_eq!(
            r(r#"{{html "<a&b>"}} {{js "it's"}} {{urlquery "a b/c"}}"#, &v),
            "&lt;a&amp;b&gt; it\\'s a+b%2Fc"
        );
        assert_eq!(
            r(
                r#"{{slice "abcdef" 1 3}} {{slice .Config.Cmd 1}} {{index "ab" 1}}"#,
                &v
            ),
            "bc [-c x] 98"
        );
    }

    #[test]
    fn docker_functions() {
        let v = sample();
        assert_eq!(r(r#"{{json .Config.Labels}}"#, &v), r#"{"a":"1","b":"2"}"#);
        assert_eq!(
            r(r#"{{split "a,b,c" ","}} {{len (split "a,b" ",")}}"#, &v),
            "[a b c] 2"
        );
        assert_eq!(r(r#"{{join (split "a:b" ":") "-"}}"#, &v), "a-b");
        assert_eq!(
            r(
                r#"{{lower "AB"}} {{upper "ab"}} {{title "hello big world"}}"#,
                &v
            ),
            "ab AB Hello Big World"
        );
        assert_eq!(
            r(r#"{{truncate "abcdef" 3}}|{{truncate "ab" 5}}"#, &v),
            "abc|ab"
        );
        assert_eq!(r(r#"[{{pad "x" 1 2}}][{{pad "" 1 2}}]"#, &v), "[ x  ][]");
        assert_eq!(r("{{json .}}", &json!({"a": [1, "x"]})), r#"{"a":[1,"x"]}"#);
    }

    #[test]
    fn errors_as_go_words_them() {
        let v = sample();
        let e = exec_err("{{.Nope}}", &v);
        assert!(
            e.starts_with("template: :1:2: executing \"\" at <.Nope>: can't evaluate field Nope"),
            "{e}"
        );
        assert!(e.contains("Name"), "{e}");
        let e = exec_err("x\n{{json .State.Nope}}", &v);
        assert!(
            e.contains(":2:2:") && e.contains("field Nope in .State"),
            "{e}"
        );
        let e = exec_err("{{index .Mounts 5}}", &v);
        assert!(
            e.contains("error calling index: index out of range: 5"),
            "{e}"
        );
        let e = exec_err("{{len 3}}", &v);
        assert!(e.contains("error calling len: len of type int"), "{e}");
        let e = exec_err("{{.Name 3}}", &v);
        assert!(e.contains("non-function .Name"), "{e}");
        assert_eq!(
            parse_err("{{foo .X}}"),
            "template: :1: function \"foo\" not defined"
        );
        assert!(parse_err("{{range .X}}").contains("unexpected EOF"));
        assert!(parse_err("{{end}}").contains("unexpected {{end}}"));
        assert!(parse_err("{{.Name").contains("unclosed action"));
        assert!(parse_err("{{$x}}").contains("undefined variable \"$x\""));
        assert!(parse_err("{{break}}").contains("{{break}} outside {{range}}"));
        assert!(parse_err("{{(.Name}}").contains("unclosed left paren"));
        assert!(parse_err("{{.Name | 3}}").contains("non executable command in pipeline stage 2"));
        assert!(parse_err("{{template \"t\"}}").contains("no such template \"t\""));
        assert!(parse_err("{{\"abc}}").contains("unterminated"));
        let e = exec_err(
            r#"{{define "a"}}{{template "a" .}}{{end}}{{template "a" .}}"#,
            &v,
        );
        assert!(e.contains("exceeded maximum template depth"), "{e}");
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
        assert_eq!(
            Template::parse("table {{.Names | upper}}\\t{{if .ID}}x{{end}}")
                .unwrap()
                .header(&|_| None),
            "NAMES\t"
        );
    }
}
