//! `.dockerignore` as docker reads it (moby/patternmatcher's `ignorefile`
//! and `PatternMatcher`): `#` comments at the start of a line, blank lines
//! skipped, `!` exceptions, each pattern cleaned (`./a/` is `a`, a leading
//! `/` dropped), `*` and `?` within one path element, `**` across elements,
//! `[...]` classes, `\` escapes; a path is excluded when the last pattern
//! matching it or one of its parent directories is not an exception.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct Error {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Go's `path.Clean`: one `/` between elements, no `.`, `..` folded,
/// `..` at the root dropped; `""` is `"."`.
pub fn clean_path(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            x => out.push(x),
        }
    }
    let body = out.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".into(),
        (false, false) => body,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `?`: one character but `/`.
    One,
    /// `*`: any run without `/`.
    Star,
    /// `**/` (or `**` before more pattern): nothing, or anything ending in `/`.
    Dirs,
    /// A trailing `**`: anything.
    All,
    Class {
        negated: bool,
        items: Vec<(char, char)>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    exclusion: bool,
    text: String,
    toks: Vec<Tok>,
    /// patternmatcher's suffix match: `**` then text without wildcards,
    /// matched with `HasSuffix` (so `**foo` matches `afoo`).
    suffix: Option<String>,
}

fn compile(p: &str) -> Result<(Vec<Tok>, Option<String>), String> {
    let chars: Vec<char> = p.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    let mut wild_after_lead = false;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == chars.len() {
                    toks.push(Tok::All);
                } else {
                    toks.push(Tok::Dirs);
                }
                if toks.len() > 1 {
                    wild_after_lead = true;
                }
            }
            '*' => {
                toks.push(Tok::Star);
                wild_after_lead = true;
            }
            '?' => {
                toks.push(Tok::One);
                wild_after_lead = true;
            }
            '\\' => {
                wild_after_lead = true;
                match chars.get(i) {
                    Some(&n) => {
                        i += 1;
                        toks.push(Tok::Lit(n));
                    }
                    None => toks.push(Tok::Lit('\\')),
                }
            }
            '[' => {
                wild_after_lead = true;
                let mut negated = false;
                if chars.get(i) == Some(&'^') {
                    negated = true;
                    i += 1;
                }
                let mut items = Vec::new();
                let mut first = true;
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err("syntax error in pattern".into());
                    };
                    i += 1;
                    if c == ']' && !first {
                        break;
                    }
                    first = false;
                    let lo = if c == '\\' {
                        let Some(&e) = chars.get(i) else {
                            return Err("syntax error in pattern".into());
                        };
                        i += 1;
                        e
                    } else {
                        c
                    };
                    if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|c| *c != ']') {
                        let mut hi = chars[i + 1];
                        i += 2;
                        if hi == '\\' {
                            let Some(&e) = chars.get(i) else {
                                return Err("syntax error in pattern".into());
                            };
                            i += 1;
                            hi = e;
                        }
                        if hi < lo {
                            return Err("syntax error in pattern".into());
                        }
                        items.push((lo, hi));
                    } else {
                        items.push((lo, lo));
                    }
                }
                toks.push(Tok::Class { negated, items });
            }
            c => toks.push(Tok::Lit(c)),
        }
    }
    let suffix = (p.starts_with("**") && !wild_after_lead).then(|| p[2..].to_string());
    Ok((toks, suffix))
}

fn class_has(negated: bool, items: &[(char, char)], c: char) -> bool {
    items.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != negated
}

/// One step of the two matchers for a token that takes one character.
fn one_char(t: &Tok, c: char) -> bool {
    match t {
        Tok::Lit(l) => *l == c,
        Tok::One => c != '/',
        Tok::Class { negated, items } => class_has(*negated, items, c),
        Tok::Star | Tok::Dirs | Tok::All => false,
    }
}

/// Does `toks` match all of `s`? A table of "tokens from i match the text
/// from j", filled from the end: linear in tokens times characters, so no
/// pattern can make it backtrack without bound.
fn full_match(toks: &[Tok], s: &[char]) -> bool {
    let n = s.len();
    let mut next = vec![false; n + 1];
    next[n] = true;
    for t in toks.iter().rev() {
        let mut cur = vec![false; n + 1];
        match t {
            Tok::All => cur.iter_mut().for_each(|c| *c = true),
            Tok::Star => {
                cur[n] = next[n];
                for j in (0..n).rev() {
                    cur[j] = next[j] || (s[j] != '/' && cur[j + 1]);
                }
            }
            Tok::Dirs => {
                let mut after_slash = false;
                cur[n] = next[n];
                for j in (0..n).rev() {
                    after_slash |= s[j] == '/' && next[j + 1];
                    cur[j] = next[j] || after_slash;
                }
            }
            t => {
                for j in 0..n {
                    cur[j] = one_char(t, s[j]) && next[j + 1];
                }
            }
        }
        next = cur;
    }
    next[0]
}

/// Could `toks` match some path that starts with `s` (which ends in `/`),
/// or a parent directory of such a path? Conservative: true when unsure.
fn may_match_under(toks: &[Tok], s: &[char]) -> bool {
    let n = s.len();
    // with no tokens left: the pattern named an ancestor directory
    let mut next: Vec<bool> = (0..=n).map(|j| j == n || s[j] == '/').collect();
    for t in toks.iter().rev() {
        let mut cur = vec![true; n + 1];
        match t {
            Tok::All | Tok::Dirs => {}
            Tok::Star => {
                for j in (0..n).rev() {
                    cur[j] = next[j] || (s[j] != '/' && cur[j + 1]);
                }
            }
            t => {
                for j in 0..n {
                    cur[j] = one_char(t, s[j]) && next[j + 1];
                }
            }
        }
        next = cur;
    }
    next[0]
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        if let Some(suffix) = &self.suffix {
            return path.ends_with(suffix.as_str())
                || suffix.strip_prefix('/').is_some_and(|s| s == path);
        }
        let chars: Vec<char> = path.chars().collect();
        full_match(&self.toks, &chars)
    }
}

/// A parsed `.dockerignore`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dockerignore {
    patterns: Vec<Pattern>,
}

impl Dockerignore {
    /// Reads a `.dockerignore`'s text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Dockerignore, Error> {
        let mut patterns = Vec::new();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (n, raw) in text.lines().enumerate() {
            let err = |message: String| Error {
                file: file.to_string(),
                line: n + 1,
                message,
            };
            if raw.starts_with('#') {
                continue;
            }
            let mut p = raw.trim();
            if p.is_empty() {
                continue;
            }
            let exclusion = p.starts_with('!');
            if exclusion {
                p = p[1..].trim();
                if p.is_empty() {
                    return Err(err("illegal exclusion pattern: \"!\"".into()));
                }
            }
            let mut cleaned = clean_path(p);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            let (toks, suffix) = compile(&cleaned).map_err(err)?;
            patterns.push(Pattern {
                exclusion,
                text: cleaned,
                toks,
                suffix,
            });
        }
        Ok(Dockerignore { patterns })
    }

    /// Reads the ignore file [`find`] picks, or nothing when there is none.
    pub fn load(context: &Path, dockerfile: Option<&Path>) -> std::io::Result<Dockerignore> {
        let Some(path) = find(context, dockerfile) else {
            return Ok(Dockerignore::default());
        };
        let text = std::fs::read_to_string(&path)?;
        Dockerignore::parse(&path.display().to_string(), &text)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The patterns as cleaned, exceptions with their `!`.
    pub fn patterns(&self) -> Vec<String> {
        self.patterns
            .iter()
            .map(|p| {
                if p.exclusion {
                    format!("!{}", p.text)
                } else {
                    p.text.clone()
                }
            })
            .collect()
    }

    /// Is `path` (relative to the context, `/`-separated) excluded? The
    /// last pattern matching it or one of its parents decides.
    pub fn matches(&self, path: &str) -> bool {
        let mut path = clean_path(path);
        while let Some(p) = path.strip_prefix('/') {
            path = p.to_string();
        }
        let parents: Vec<&str> = match path.rfind('/') {
            Some(i) => path[..i].split('/').collect(),
            None => Vec::new(),
        };
        let mut matched = false;
        for pat in &self.patterns {
            if pat.exclusion != matched {
                continue;
            }
            let mut hit = pat.matches(&path);
            if !hit {
                hit = (1..=parents.len()).any(|i| pat.matches(&parents[..i].join("/")));
            }
            if hit {
                matched = !pat.exclusion;
            }
        }
        matched
    }

    /// For an excluded directory: can an exception still bring back
    /// something under it, so that the walker must go in? False means
    /// the whole directory can be skipped.
    pub fn may_include_under(&self, dir: &str) -> bool {
        let mut dir = clean_path(dir);
        while let Some(p) = dir.strip_prefix('/') {
            dir = p.to_string();
        }
        let prefix: Vec<char> = format!("{dir}/").chars().collect();
        self.patterns
            .iter()
            .filter(|p| p.exclusion)
            .any(|p| p.suffix.is_some() || may_match_under(&p.toks, &prefix))
    }
}

/// The ignore file of a build: `<Dockerfile>.dockerignore` beside the
/// Dockerfile when it exists (BuildKit), else `<context>/.dockerignore`.
pub fn find(context: &Path, dockerfile: Option<&Path>) -> Option<PathBuf> {
    if let Some(df) = dockerfile {
        if let Some(name) = df.file_name() {
            let mut n = name.to_os_string();
            n.push(".dockerignore");
            let p = df.with_file_name(n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let p = context.join(".dockerignore");
    p.is_file().then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn di(text: &str) -> Dockerignore {
        Dockerignore::parse(".dockerignore", text).unwrap()
    }

    #[test]
    fn clean() {
        assert_eq!(clean_path("./a/b/"), "a/b");
        assert_eq!(clean_path("/a/../../b"), "/b");
        assert_eq!(clean_path("a/../.."), "..");
        assert_eq!(clean_path(""), ".");
        assert_eq!(clean_path("//x//y/./"), "/x/y");
        assert_eq!(clean_path("/"), "/");
    }

    #[test]
    fn reading_rules() {
        let d = di("\u{feff}# comment\n  # not a comment\n\n ./a/ \n/b\n!/c/./d/\n*.md\n");
        assert_eq!(d.patterns(), ["# not a comment", "a", "b", "!c/d", "*.md"]);
        let e = Dockerignore::parse("x/.dockerignore", "a\n !  \n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "x/.dockerignore:2: illegal exclusion pattern: \"!\""
        );
        let e = Dockerignore::parse(".dockerignore", "a[b\n").unwrap_err();
        assert_eq!(e.to_string(), ".dockerignore:1: syntax error in pattern");
    }

    #[test]
    fn single_star_stays_in_one_element() {
        let d = di("*.log\nbuild/*.o\n");
        assert!(d.matches("x.log"));
        assert!(!d.matches("dir/x.log"));
        assert!(d.matches("build/a.o"));
        assert!(!d.matches("build/sub/a.o"));
        assert!(!d.matches("a.o"));
    }

    #[test]
    fn double_star() {
        let d = di("**/*.log\n");
        assert!(d.matches("x.log"));
        assert!(d.matches("a/b/c/x.log"));
        assert!(!d.matches("a/b/c/x.txt"));
        let d = di("a/**/z\n");
        assert!(d.matches("a/z"));
        assert!(d.matches("a/b/c/z"));
        assert!(!d.matches("b/z"));
        let d = di("vendor/**\n");
        assert!(d.matches("vendor/x/y"));
        assert!(!d.matches("vendor"));
        let d = di("**\n");
        assert!(d.matches("anything/at/all"));
        // patternmatcher's suffix match: `**foo` is a plain suffix
        let d = di("**foo\n");
        assert!(d.matches("afoo"));
        assert!(d.matches("dir/foo"));
    }

    #[test]
    fn question_mark_class_and_escape() {
        let d = di("file?.txt\n[a-c]x\n[^a]y\nlit\\*\n");
        assert!(d.matches("file1.txt"));
        assert!(!d.matches("file/.txt"));
        assert!(!d.matches("file12.txt"));
        assert!(d.matches("bx"));
        assert!(!d.matches("dx"));
        assert!(d.matches("by"));
        assert!(!d.matches("ay"));
        assert!(d.matches("lit*"));
        assert!(!d.matches("litx"));
    }

    /// Single patterns against paths, the cases of patternmatcher's own
    /// table that do not depend on a trailing `/`.
    #[test]
    fn pattern_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("**", "file", true),
            ("**/", "file", true),
            ("**", "dir/file", true),
            ("**/**", "dir/file", true),
            ("dir/**", "dir/file", true),
            ("dir/**", "dir/dir2/file", true),
            ("**/dir", "dir", true),
            ("**/dir2/*", "dir/dir2/file", true),
            ("**/dir2/**", "dir/dir2/dir3/file", true),
            ("**file", "file", true),
            ("**file", "dir/file", true),
            ("**/file", "dir/file", true),
            ("**file", "dir/dir/file", true),
            ("**/file", "dir/dir/file", true),
            ("**/file*", "dir/dir/file", true),
            ("**/file*", "dir/dir/file.txt", true),
            ("**/file*txt", "dir/dir/file.txt", true),
            ("**/file*.txt", "dir/dir/file.txt", true),
            ("**/file*.txt*", "dir/dir/file.txt", true),
            ("**/**/*.txt", "dir/dir/file.txt", true),
            ("**/**/*.txt2", "dir/dir/file.txt", false),
            ("**/*.txt", "file.txt", true),
            ("**/**/*.txt", "file.txt", true),
            ("a**/*.txt", "a/file.txt", true),
            ("a**/*.txt", "a/dir/file.txt", true),
            ("a**/*.txt", "a/dir/dir/file.txt", true),
            ("a/*.txt", "a/dir/file.txt", false),
            ("a/*.txt", "a/file.txt", true),
            ("a/*.txt**", "a/file.txt", true),
            ("a[b-d]e", "ae", false),
            ("a[b-d]e", "ace", true),
            ("a[b-d]e", "aae", false),
            ("a[^b-d]e", "aze", true),
            (".*", ".foo", true),
            (".*", "foo", false),
            ("abc.def", "abcdef", false),
            ("abc.def", "abc.def", true),
            ("abc.def", "abcZdef", false),
            ("abc?def", "abcZdef", true),
            ("abc?def", "abcdef", false),
            ("a\\\\", "a\\", true),
            ("**/foo/bar", "foo/bar", true),
            ("**/foo/bar", "dir/foo/bar", true),
            ("**/foo/bar", "dir/dir2/foo/bar", true),
            ("abc/**", "abc", false),
            ("abc/**", "abc/def", true),
            ("abc/**", "abc/def/ghi", true),
            ("**/.foo", ".foo", true),
            ("**/.foo", "bar.foo", false),
            ("a(b)c/def", "a(b)c/def", true),
            ("a(b)c/def", "a(b)c/xyz", false),
            ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
            (
                "dist/*.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
        ];
        for (pat, path, want) in cases {
            let cleaned = clean_path(pat);
            let (toks, suffix) = compile(&cleaned).unwrap();
            let p = Pattern {
                exclusion: false,
                text: cleaned,
                toks,
                suffix,
            };
            assert_eq!(p.matches(path), *want, "{pat} against {path}");
        }
    }

    #[test]
    fn no_runaway_backtracking() {
        let pat = "**/".repeat(30) + &"*a".repeat(30) + "b";
        let d = di(&pat);
        let path = "a/".repeat(200) + &"a".repeat(300);
        assert!(!d.matches(&path));
        assert!(d.matches(&("x/".to_string() + &"a".repeat(30) + "b")));
    }

    #[test]
    fn directory_excludes_its_contents() {
        let d = di("node_modules\n/target/\n");
        assert!(d.matches("node_modules"));
        assert!(d.matches("node_modules/a/b.js"));
        assert!(!d.matches("src/node_modules/a"));
        assert!(d.matches("target/debug/x"));
        assert!(d.matches("./target"));
    }

    #[test]
    fn last_match_wins() {
        let d = di("*.md\n!README.md\n");
        assert!(d.matches("CHANGES.md"));
        assert!(!d.matches("README.md"));
        let d = di("!README.md\n*.md\n");
        assert!(d.matches("README.md"));
        let d = di("docs\n!docs/keep\ndocs/keep/secret\n");
        assert!(d.matches("docs/x"));
        assert!(!d.matches("docs/keep"));
        assert!(!d.matches("docs/keep/y"));
        assert!(d.matches("docs/keep/secret"));
        assert!(d.matches("docs/keep/secret/z"));
    }

    #[test]
    fn walker_descends_only_where_an_exception_can_match() {
        let d = di("docs\n!docs/keep/*.md\n");
        assert!(d.matches("docs"));
        assert!(d.may_include_under("docs"));
        assert!(d.may_include_under("docs/keep"));
        assert!(!d.may_include_under("docs/other"));
        assert!(!d.matches("docs/keep/a.md"));
        assert!(d.matches("docs/keep/a.txt"));

        let d = di("*\n!**/Cargo.toml\n");
        assert!(d.may_include_under("any/where"));
        assert!(!d.matches("crates/x/Cargo.toml"));
        assert!(d.matches("crates/x/lib.rs"));

        let d = di("a\nb\n");
        assert!(!d.may_include_under("a"));

        let d = di("build\n!*/keep\n");
        assert!(d.may_include_under("build"));
        assert!(!d.may_include_under("build/sub"));

        // an exception naming an ancestor: conservative, go in
        let d = di("a/b\n!a\n");
        assert!(d.may_include_under("a/b"));
        let d = di("x\n!x?/y\n[ab]\n![ab]/k\n");
        assert!(!d.may_include_under("x"));
        assert!(d.may_include_under("a"));
        assert!(!d.may_include_under("c"));
    }

    #[test]
    fn ignore_file_lookup() {
        let dir = std::env::temp_dir().join(format!("berth-build-di-{}", std::process::id()));
        let ctx = dir.join("ctx");
        std::fs::create_dir_all(ctx.join("sub")).unwrap();
        let df = ctx.join("sub/app.Dockerfile");
        std::fs::write(&df, "FROM scratch\n").unwrap();
        assert_eq!(find(&ctx, Some(&df)), None);
        std::fs::write(ctx.join(".dockerignore"), "a\n").unwrap();
        assert_eq!(find(&ctx, Some(&df)), Some(ctx.join(".dockerignore")));
        std::fs::write(ctx.join("sub/app.Dockerfile.dockerignore"), "b\n").unwrap();
        assert_eq!(
            find(&ctx, Some(&df)),
            Some(ctx.join("sub/app.Dockerfile.dockerignore"))
        );
        assert_eq!(find(&ctx, None), Some(ctx.join(".dockerignore")));
        let d = Dockerignore::load(&ctx, Some(&df)).unwrap();
        assert_eq!(d.patterns(), ["b"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
