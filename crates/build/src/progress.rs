//! `--progress tty`: BuildKit's interactive view, redrawn in place from the plain lines
//! the builder says (`#3 [2/5] RUN ...`, `#3 0.120 output`, `#3 CACHED`, `#3 DONE 0.4s`).
//!
//! ```text
//! [+] Building 1.3s (4/6)
//!  => CACHED [2/5] RUN echo one                                  0.0s
//!  => [3/5] COPY files/ /app/files/                              0.3s
//!  => [4/5] RUN make                                             0.9s
//!  => => # compiling main.c
//! ```
//! A step that runs something (RUN, COPY, ADD, the export) is running until its DONE or
//! CACHED line; any other is done when said. Running steps show their last output lines.

use std::time::{Duration, Instant};

/// Output lines kept per running step.
const TAIL: usize = 6;

#[derive(Debug, PartialEq)]
enum Status {
    Running,
    Done(String),
    Cached,
    Failed,
}

struct Step {
    id: String,
    title: String,
    started: Instant,
    status: Status,
    tail: Vec<String>,
}

pub struct Tty {
    started: Instant,
    steps: Vec<Step>,
    /// Lines of the frame on the screen, which the next one overwrites.
    shown: usize,
    width: usize,
    last_draw: Option<Instant>,
}

fn waits_for_done(title: &str) -> bool {
    title == "exporting to image"
        || [" RUN ", " COPY ", " ADD "]
            .iter()
            .any(|k| title.starts_with('[') && title.contains(k))
}

/// `s` cut to `w` characters.
fn cut(s: &str, w: usize) -> String {
    s.chars().take(w).collect()
}

impl Tty {
    /// A view `width` columns wide (the terminal's).
    pub fn new(width: usize) -> Tty {
        Tty {
            started: Instant::now(),
            steps: Vec::new(),
            shown: 0,
            width: width.max(20),
            last_draw: None,
        }
    }

    /// Takes one of the builder's plain lines; the frame to write, when it is time to
    /// redraw (state changes at once, output at most every 100 ms).
    pub fn line(&mut self, line: &str) -> Option<String> {
        let (id, rest) = line
            .strip_prefix('#')
            .and_then(|l| l.split_once(' '))
            .filter(|(id, _)| id.bytes().all(|b| b.is_ascii_digit()))?;
        let changed = match self.steps.iter_mut().rev().find(|s| s.id == id) {
            None => {
                let status = if waits_for_done(rest) {
                    Status::Running
                } else {
                    Status::Done("0.0s".into())
                };
                self.steps.push(Step {
                    id: id.to_string(),
                    title: rest.to_string(),
                    started: Instant::now(),
                    status,
                    tail: Vec::new(),
                });
                true
            }
            Some(s) if rest == "CACHED" => {
                s.status = Status::Cached;
                true
            }
            Some(s) if rest.starts_with("DONE ") && s.status != Status::Cached => {
                s.status = Status::Done(rest[5..].to_string());
                true
            }
            Some(_) if rest.starts_with("DONE ") => false,
            Some(s) => {
                // A RUN's output is "#N 0.123 text": the time is left out.
                let text = match rest.split_once(' ') {
                    Some((t, x)) if t.parse::<f64>().is_ok() => x,
                    _ => rest,
                };
                s.tail.push(text.to_string());
                if s.tail.len() > TAIL {
                    s.tail.remove(0);
                }
                false
            }
        };
        let due = self
            .last_draw
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(100));
        (changed || due).then(|| self.frame(false))
    }

    /// The last frame: every step ended (those still running failed with the build).
    pub fn finish(&mut self, ok: bool) -> String {
        for s in &mut self.steps {
            if s.status == Status::Running {
                s.status = if ok {
                    Status::Done(format!("{:.1}s", s.started.elapsed().as_secs_f64()))
                } else {
                    Status::Failed
                };
            }
        }
        self.frame(true)
    }

    /// The frame: cursor moved up over the last one, each line cleared and rewritten.
    fn frame(&mut self, last: bool) -> String {
        let done = self
            .steps
            .iter()
            .filter(|s| s.status != Status::Running)
            .count();
        let mut lines = vec![format!(
            "[+] Building {:.1}s ({done}/{}){}",
            self.started.elapsed().as_secs_f64(),
            self.steps.len(),
            if last { " FINISHED" } else { "" }
        )];
        for s in &self.steps {
            let (mark, time) = match &s.status {
                Status::Running => ("", format!("{:.1}s", s.started.elapsed().as_secs_f64())),
                Status::Done(t) => ("", t.clone()),
                Status::Cached => ("CACHED ", "0.0s".into()),
                Status::Failed => ("ERROR ", String::new()),
            };
            let left = cut(
                &format!(" => {mark}{}", s.title),
                self.width.saturating_sub(8),
            );
            let pad = self
                .width
                .saturating_sub(left.chars().count() + time.len() + 1);
            lines.push(format!("{left}{}{time}", " ".repeat(pad)));
            if matches!(s.status, Status::Running | Status::Failed) {
                for t in &s.tail {
                    lines.push(cut(&format!(" => => # {t}"), self.width - 1));
                }
            }
        }
        let mut out = String::new();
        if self.shown > 0 {
            out.push_str(&format!("\x1b[{}A", self.shown));
        }
        for l in &lines {
            out.push_str("\r\x1b[2K");
            out.push_str(l);
            out.push('\n');
        }
        // A frame shorter than the last: clear what is left below it.
        if lines.len() < self.shown {
            out.push_str("\x1b[J");
        }
        self.shown = lines.len();
        self.last_draw = Some(Instant::now());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(frame: &str) -> Vec<String> {
        frame
            .split('\n')
            .filter(|l| l.contains("\x1b[2K"))
            .map(|l| {
                l.rsplit("\x1b[2K")
                    .next()
                    .unwrap_or("")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    #[test]
    fn steps_run_until_done_and_show_their_output() {
        let mut t = Tty::new(80);
        t.line("#1 [internal] load build definition from Dockerfile");
        t.line("#2 [1/3] FROM busybox");
        let f = t.line("#3 [2/3] RUN make").unwrap();
        let l = plain(&f);
        assert!(
            l[0].starts_with("[+] Building ") && l[0].ends_with("(2/3)"),
            "{l:?}"
        );
        assert_eq!(
            l[1],
            "=> [internal] load build definition from Dockerfile 0.0s"
        );
        assert!(l[3].starts_with("=> [2/3] RUN make"), "{l:?}");
        for i in 0..10 {
            t.line(&format!("#3 0.{i:03} line {i}"));
        }
        let f = t.frame(false);
        let l = plain(&f);
        // The frame redraws over the last one (4 lines), then the last 6 output lines.
        assert!(f.starts_with("\x1b[4A"), "{f:?}");
        assert_eq!(l.len(), 4 + TAIL);
        assert_eq!(l[4], "=> => # line 4");
        assert_eq!(l[9], "=> => # line 9");
        let f = t.line("#3 DONE 1.5s").unwrap();
        let l = plain(&f);
        assert_eq!(l[3], "=> [2/3] RUN make 1.5s");
        assert_eq!(l.len(), 4);
        assert!(f.ends_with("\x1b[J"), "a shorter frame clears below it");
        t.line("#4 [3/3] COPY a /a");
        t.line("#4 CACHED");
        t.line("#4 DONE 0.0s");
        let l = plain(&t.finish(true));
        assert!(l[0].ends_with("(4/4) FINISHED"), "{l:?}");
        assert_eq!(l[4], "=> CACHED [3/3] COPY a /a 0.0s");
    }

    #[test]
    fn a_failed_build_marks_running_steps_and_keeps_their_output() {
        let mut t = Tty::new(40);
        t.line("#1 [1/2] FROM busybox");
        t.line("#2 [2/2] RUN echo a very long command line that does not fit in forty columns");
        t.line("#2 0.010 no");
        let f = t.finish(false);
        let l = plain(&f);
        assert!(l[2].starts_with("=> ERROR [2/2] RUN echo"), "{l:?}");
        assert_eq!(l[3], "=> => # no");
        for line in f.split('\n') {
            let shown = line.rsplit("\x1b[2K").next().unwrap_or("");
            assert!(shown.chars().count() <= 40, "{shown:?}");
        }
        // Lines that are not the builder's are not steps.
        assert!(t.line("Step 1/2").is_none());
    }
}
