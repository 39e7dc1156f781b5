//! The shell-word lexer of BuildKit's `frontend/dockerfile/shell`: quote
//! removal, escapes and `$` substitution, without running a shell.

use std::collections::{BTreeMap, HashMap};

/// Where the lexer looks variables up.
pub trait Vars {
    fn get(&self, name: &str) -> Option<&str>;
}

impl Vars for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        BTreeMap::get(self, name).map(String::as_str)
    }
}

impl Vars for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        HashMap::get(self, name).map(String::as_str)
    }
}

/// The value of `name` in an ordered list of pairs; the last pair wins.
pub fn lookup<'a>(list: &'a [(String, String)], name: &str) -> Option<&'a str> {
    list.iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// An ordered list of `NAME=value` pairs; the last pair of a name wins.
impl Vars for [(String, String)] {
    fn get(&self, name: &str) -> Option<&str> {
        lookup(self, name)
    }
}

impl Vars for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<&str> {
        lookup(self, name)
    }
}

/// No variables at all.
pub struct NoVars;

impl Vars for NoVars {
    fn get(&self, _: &str) -> Option<&str> {
        None
    }
}

/// The lexer's options, as BuildKit's `shell.Lex` fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    /// The escape token: `\` or the backtick of `# escape=`.
    pub escape: char,
    /// Keep quote characters in the result (they still group words).
    pub raw_quotes: bool,
    /// Keep escape characters in the result.
    pub raw_escapes: bool,
    /// Leave `$NAME` and `${NAME...}` as written when NAME is unset.
    pub skip_unset: bool,
    /// Quotes are ordinary characters (COPY heredoc bodies).
    pub skip_process_quotes: bool,
}

impl Lexer {
    pub fn new(escape: char) -> Lexer {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset: false,
            skip_process_quotes: false,
        }
    }

    /// One word: whitespace is kept, quotes and escapes removed, variables
    /// substituted (BuildKit's `ProcessWord`).
    pub fn process_word(&self, src: &str, vars: &dyn Vars) -> Result<String, String> {
        Ok(self.run(src, vars)?.0)
    }

    /// Words split on unquoted whitespace, including whitespace that a
    /// substitution brought in (BuildKit's `ProcessWords`).
    pub fn process_words(&self, src: &str, vars: &dyn Vars) -> Result<Vec<String>, String> {
        Ok(self.run(src, vars)?.1)
    }

    fn run(&self, src: &str, vars: &dyn Vars) -> Result<(String, Vec<String>), String> {
        let mut st = State {
            lx: *self,
            raw_escapes: self.raw_escapes,
            chars: src.chars().collect(),
            pos: 0,
            vars,
        };
        let raw = self.raw_escapes;
        st.stop_on(None, raw)
            .map_err(|e| format!("failed to process {src:?}: {e}"))
    }
}

#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }
    fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }
    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }
    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

struct State<'a> {
    lx: Lexer,
    raw_escapes: bool,
    chars: Vec<char>,
    pos: usize,
    vars: &'a dyn Vars,
}

impl State<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn stop_on(&mut self, stop: Option<char>, raw: bool) -> Result<(String, Vec<String>), String> {
        let saved = self.raw_escapes;
        self.raw_escapes = raw;
        let r = self.stop_on_inner(stop);
        self.raw_escapes = saved;
        r
    }

    fn stop_on_inner(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), String> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            if ch == '$' {
                let v = self.dollar()?;
                result.push_str(&v);
                words.add_string(&v);
                continue;
            }
            if !self.lx.skip_process_quotes && (ch == '\'' || ch == '"') {
                let v = if ch == '\'' {
                    self.single_quote()?
                } else {
                    self.double_quote()?
                };
                result.push_str(&v);
                words.add_raw_string(&v);
                continue;
            }
            self.next();
            if ch == self.lx.escape {
                if self.raw_escapes {
                    words.add_raw_char(ch);
                    result.push(ch);
                }
                match self.next() {
                    None => break,
                    Some(c) => {
                        words.add_raw_char(c);
                        result.push(c);
                    }
                }
            } else {
                words.add_char(ch);
                result.push(ch);
            }
        }
        if let Some(stop) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {stop}"
            ));
        }
        Ok((result, words.finish()))
    }

    fn single_quote(&mut self) -> Result<String, String> {
        let mut out = String::new();
        let open = self.next();
        if self.lx.raw_quotes {
            out.extend(open);
        }
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    )
                }
                Some('\'') => {
                    if self.lx.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, String> {
        let mut out = String::new();
        let open = self.next();
        if self.lx.raw_quotes {
            out.extend(open);
        }
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    )
                }
                Some('"') => {
                    self.next();
                    if self.lx.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let v = self.dollar()?;
                    out.push_str(&v);
                }
                Some(_) => {
                    let mut ch = self.next().unwrap_or_default();
                    if ch == self.lx.escape {
                        if self.raw_escapes {
                            out.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.lx.escape => {
                                ch = c;
                                self.next();
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    self.next();
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !(ch.is_alphanumeric() || ch == '_') {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }

    fn lookup(&self, name: &str) -> Option<String> {
        self.vars.get(name).map(str::to_owned)
    }

    fn dollar(&mut self) -> Result<String, String> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return match self.lookup(&name) {
                Some(v) => Ok(v),
                None if self.lx.skip_unset => Ok(format!("${name}")),
                None => Ok(String::new()),
            };
        }
        self.next();
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            _ => {}
        }
        let name = self.name();
        let Some(mut ch) = self.next() else {
            return Err("syntax error: missing '}'".into());
        };
        let mut chs = ch.to_string();
        match ch {
            '}' => {
                return match self.lookup(&name) {
                    Some(v) => Ok(v),
                    None if self.lx.skip_unset => Ok(format!("${{{name}}}")),
                    None => Ok(String::new()),
                }
            }
            '/' => return self.replace(&name),
            ':' | '+' | '-' | '?' | '#' | '%' => {}
            _ => return Err(format!("unsupported modifier ({chs}) in substitution")),
        }
        let mut null_is_unset = false;
        if ch == ':' {
            null_is_unset = true;
            match self.next() {
                Some(c) => {
                    ch = c;
                    chs.push(c);
                }
                None => return Err("syntax error: missing '}'".into()),
            }
            if !matches!(ch, '+' | '-' | '?' | '#' | '%') {
                return Err(format!("unsupported modifier ({chs}) in substitution"));
            }
        }
        let raw = ch == '#' || ch == '%';
        let word = match self.stop_on(Some('}'), raw) {
            Ok((w, _)) => w,
            Err(e) => {
                if self.peek().is_none() {
                    return Err("syntax error: missing '}'".into());
                }
                return Err(e);
            }
        };
        let value = self.lookup(&name);
        let Some(value) = value else {
            if self.lx.skip_unset {
                return Ok(format!("${{{name}{chs}{word}}}"));
            }
            return match ch {
                '-' => Ok(word),
                '+' => Ok(String::new()),
                '?' => Err(format!(
                    "{name}: {}",
                    if word.is_empty() {
                        "is not allowed to be unset"
                    } else {
                        &word
                    }
                )),
                _ => Ok(String::new()),
            };
        };
        let empty = null_is_unset && value.is_empty();
        match ch {
            '-' => Ok(if empty { word } else { value }),
            '+' => Ok(if empty { String::new() } else { word }),
            '?' if empty => Err(format!(
                "{name}: {}",
                if word.is_empty() {
                    "is not allowed to be empty"
                } else {
                    &word
                }
            )),
            '?' => Ok(value),
            _ => {
                let (greedy, pat) = match word.strip_prefix(ch) {
                    Some(rest) => (true, rest.to_string()),
                    None => (false, word),
                };
                let pat = Pattern::new(&pat)?;
                Ok(if ch == '#' {
                    pat.trim_prefix(&value, greedy)
                } else {
                    pat.trim_suffix(&value, greedy)
                })
            }
        }
    }

    fn replace(&mut self, name: &str) -> Result<String, String> {
        let all = self.peek() == Some('/');
        if all {
            self.next();
        }
        let missing = |s: &Self, e: String, what: &str| {
            if s.peek().is_none() {
                format!("syntax error: missing {what}")
            } else {
                e
            }
        };
        let (pattern, _) = self
            .stop_on(Some('/'), true)
            .map_err(|e| missing(self, e, "'/' in ${}"))?;
        let (replacement, _) = self
            .stop_on(Some('}'), true)
            .map_err(|e| missing(self, e, "'}'"))?;
        let Some(value) = self.lookup(name) else {
            if self.lx.skip_unset {
                return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
            }
            return Ok(String::new());
        };
        Ok(Pattern::new(&pattern)?.replace(&value, &replacement, all))
    }
}

/// A shell pattern of `${v#p}`, `${v%p}` and `${v/p/r}`: `*`, `?`, and a
/// backslash escaping `*`, `?` or itself; before `}` or `/` the backslash is
/// dropped. No bracket expressions (BuildKit's `convertShellPatternToRegex`).
struct Pattern(Vec<Tok>);

#[derive(Clone, Copy)]
enum Tok {
    Lit(char),
    One,
    Star,
}

impl Pattern {
    fn new(src: &str) -> Result<Pattern, String> {
        let mut toks = Vec::new();
        let mut it = src.chars().peekable();
        while let Some(c) = it.next() {
            toks.push(match c {
                '*' => Tok::Star,
                '?' => Tok::One,
                '\\' if matches!(it.peek(), Some('}' | '/')) => continue,
                '\\' => match it.next() {
                    Some(e @ ('*' | '?' | '\\')) => Tok::Lit(e),
                    other => {
                        let shown: String = other.into_iter().collect();
                        return Err(format!(
                            "invalid pattern ({src}) in substitution: invalid escape '\\{shown}'"
                        ));
                    }
                },
                c => Tok::Lit(c),
            });
        }
        Ok(Pattern(toks))
    }

    /// `ends[e]`: the pattern matches `s[..e]`. A set-of-states walk, so
    /// linear in pattern times text. `?` and `*` do not match a newline,
    /// as `.` in BuildKit's Go regular expressions.
    fn ends(&self, s: &[char]) -> Vec<bool> {
        let k = self.0.len();
        let close = |set: &mut Vec<bool>| {
            for q in 0..k {
                if set[q] && matches!(self.0[q], Tok::Star) {
                    set[q + 1] = true;
                }
            }
        };
        let mut cur = vec![false; k + 1];
        cur[0] = true;
        close(&mut cur);
        let mut out = vec![false; s.len() + 1];
        out[0] = cur[k];
        for (e, c) in s.iter().enumerate() {
            let mut next = vec![false; k + 1];
            for q in (0..k).filter(|q| cur[*q]) {
                match self.0[q] {
                    Tok::Star if *c != '\n' => next[q] = true,
                    Tok::One if *c != '\n' => next[q + 1] = true,
                    Tok::Lit(l) if l == *c => next[q + 1] = true,
                    _ => {}
                }
            }
            close(&mut next);
            out[e + 1] = next[k];
            if !next.contains(&true) {
                break;
            }
            cur = next;
        }
        out
    }

    fn trim_prefix(&self, value: &str, greedy: bool) -> String {
        let v: Vec<char> = value.chars().collect();
        let ends = self.ends(&v);
        let hit = if greedy {
            (0..=v.len()).rev().find(|e| ends[*e])
        } else {
            (0..=v.len()).find(|e| ends[*e])
        };
        match hit {
            Some(i) => v[i..].iter().collect(),
            None => value.to_string(),
        }
    }

    fn trim_suffix(&self, value: &str, greedy: bool) -> String {
        let v: Vec<char> = value.chars().collect();
        let whole = |i: &usize| self.ends(&v[*i..])[v.len() - *i];
        let hit = if greedy {
            (0..=v.len()).find(whole)
        } else {
            (0..=v.len()).rev().find(whole)
        };
        match hit {
            Some(i) => v[..i].iter().collect(),
            None => value.to_string(),
        }
    }

    fn replace(&self, value: &str, with: &str, all: bool) -> String {
        let v: Vec<char> = value.chars().collect();
        let mut out = String::new();
        let mut i = 0;
        let mut done = false;
        while i <= v.len() {
            let hit = if done || self.0.is_empty() {
                None
            } else {
                let ends = self.ends(&v[i..]);
                (1..ends.len()).rev().find(|e| ends[*e])
            };
            match hit {
                Some(len) => {
                    out.push_str(with);
                    i += len;
                    done = !all;
                }
                None => {
                    if i < v.len() {
                        out.push(v[i]);
                    }
                    i += 1;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<(String, String)> {
        [
            ("A", "a"),
            ("EMPTY", ""),
            ("SP", "x y"),
            ("PATHV", "/usr/local/bin/tool.tar.gz"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn w(s: &str) -> String {
        Lexer::new('\\').process_word(s, &env()).unwrap()
    }
    fn ws(s: &str) -> Vec<String> {
        Lexer::new('\\').process_words(s, &env()).unwrap()
    }
    /// The error without BuildKit's `failed to process "SRC": ` prefix.
    fn err(s: &str) -> String {
        let e = Lexer::new('\\').process_word(s, &env()).unwrap_err();
        let prefix = format!("failed to process {s:?}: ");
        match e.strip_prefix(&prefix) {
            Some(rest) => rest.to_string(),
            None => panic!("{e}"),
        }
    }

    #[test]
    fn plain_and_braced() {
        assert_eq!(w("$A"), "a");
        assert_eq!(w("${A}b"), "ab");
        assert_eq!(w("$Ab"), "");
        assert_eq!(w("$UNSET-x"), "-x");
        assert_eq!(w("a$"), "a$");
        assert_eq!(w("$/x"), "$/x");
        assert_eq!(w("$1x"), "x");
        assert_eq!(w("$$"), "");
    }

    #[test]
    fn modifiers() {
        assert_eq!(w("${UNSET:-d}"), "d");
        assert_eq!(w("${EMPTY:-d}"), "d");
        assert_eq!(w("${EMPTY-d}"), "");
        assert_eq!(w("${UNSET-d}"), "d");
        assert_eq!(w("${A:-d}"), "a");
        assert_eq!(w("${A:+p}"), "p");
        assert_eq!(w("${EMPTY:+p}"), "");
        assert_eq!(w("${EMPTY+p}"), "p");
        assert_eq!(w("${UNSET+p}"), "");
        assert_eq!(w("${UNSET:-${A}x}"), "ax");
        assert_eq!(w("${A:?boom}"), "a");
        assert_eq!(err("${UNSET:?boom}"), "UNSET: boom");
        assert_eq!(err("${UNSET?}"), "UNSET: is not allowed to be unset");
        assert_eq!(err("${EMPTY:?}"), "EMPTY: is not allowed to be empty");
        assert_eq!(w("${EMPTY?}"), "");
    }

    #[test]
    fn pattern_modifiers() {
        assert_eq!(w("${PATHV#*/}"), "usr/local/bin/tool.tar.gz");
        assert_eq!(w("${PATHV##*/}"), "tool.tar.gz");
        assert_eq!(w("${PATHV%.*}"), "/usr/local/bin/tool.tar");
        assert_eq!(w("${PATHV%%.*}"), "/usr/local/bin/tool");
        assert_eq!(w("${PATHV/local/opt}"), "/usr/opt/bin/tool.tar.gz");
        assert_eq!(w("${PATHV//o/0}"), "/usr/l0cal/bin/t00l.tar.gz");
        assert_eq!(w("${A#zz}"), "a");
        assert_eq!(w("${PATHV:##*/}"), "tool.tar.gz");
        assert_eq!(w("${PATHV#\\/usr}"), "/local/bin/tool.tar.gz");
        assert_eq!(w("${PATHV/\\/usr\\//}"), "local/bin/tool.tar.gz");
        assert_eq!(w("${UNSET#x}"), "");
        assert_eq!(w("${PATHV//*/x}"), "x");
        assert_eq!(w("${PATHV/?usr/}"), "/local/bin/tool.tar.gz");
        assert_eq!(w("${PATHV%%/*}"), "");
        assert_eq!(w("${PATHV%/*}"), "/usr/local/bin");
        // no runaway backtracking on a long value
        let long = "a".repeat(600);
        let v = vec![("L".to_string(), long)];
        let lx = Lexer::new('\\');
        assert_eq!(
            lx.process_word("${L//*a*a*a*a*a*b/x}", &v).unwrap().len(),
            600
        );
        assert_eq!(
            err("${PATHV#\\x}"),
            "invalid pattern (\\x) in substitution: invalid escape '\\x'"
        );
        assert_eq!(err("${PATHV/x"), "syntax error: missing '/' in ${}");
        // the whole message, as docker prints it
        assert_eq!(
            Lexer::new('\\')
                .process_word("a${X:?}", &env())
                .unwrap_err(),
            "failed to process \"a${X:?}\": X: is not allowed to be unset"
        );
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(err("${}"), "syntax error: bad substitution");
        assert_eq!(err("${:x}"), "syntax error: bad substitution");
        assert_eq!(err("${A"), "syntax error: missing '}'");
        assert_eq!(err("${A:-x"), "syntax error: missing '}'");
        assert_eq!(err("${A=x}"), "unsupported modifier (=) in substitution");
        assert_eq!(
            err("'abc"),
            "unexpected end of statement while looking for matching single-quote"
        );
        assert_eq!(
            err("\"abc"),
            "unexpected end of statement while looking for matching double-quote"
        );
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(w("'$A'"), "$A");
        assert_eq!(w("\"$A b\""), "a b");
        assert_eq!(w("\\$A"), "$A");
        assert_eq!(w("a\\nb"), "anb");
        assert_eq!(w("\"a\\nb\""), "a\\nb");
        assert_eq!(w("\"a\\\"b\""), "a\"b");
        assert_eq!(w("\"a\\$A\""), "a$A");
        assert_eq!(w("x\\"), "x");
        // a backtick escape token leaves the backslash alone
        let lx = Lexer::new('`');
        assert_eq!(lx.process_word("\\$A", &env()).unwrap(), "\\a");
        assert_eq!(lx.process_word("`$A", &env()).unwrap(), "$A");
    }

    #[test]
    fn words_split_on_substituted_whitespace() {
        assert_eq!(ws("a $SP 'c d'"), ["a", "x", "y", "c d"]);
        assert_eq!(ws("\"$SP\" z"), ["x y", "z"]);
        assert_eq!(ws("  "), Vec::<String>::new());
        assert_eq!(w("a $SP"), "a x y");
    }

    #[test]
    fn raw_and_skip_unset() {
        let lx = Lexer {
            raw_quotes: true,
            raw_escapes: true,
            ..Lexer::new('\\')
        };
        assert_eq!(
            lx.process_words("a \"b c\" d\\ e", &NoVars).unwrap(),
            ["a", "\"b c\"", "d\\ e"]
        );
        let lx = Lexer {
            skip_unset: true,
            ..Lexer::new('\\')
        };
        assert_eq!(
            lx.process_word("$X ${Y} ${Z:-d} $A", &env()).unwrap(),
            "$X ${Y} ${Z:-d} a"
        );
        let lx = Lexer {
            skip_process_quotes: true,
            ..Lexer::new('\\')
        };
        assert_eq!(lx.process_word("'$A' \"x\"", &env()).unwrap(), "'a' \"x\"");
    }

    #[test]
    fn ordered_vars_last_wins() {
        let v: Vec<(String, String)> = vec![("K".into(), "1".into()), ("K".into(), "2".into())];
        assert_eq!(Lexer::new('\\').process_word("$K", &v).unwrap(), "2");
    }
}
