#![forbid(unsafe_code)]
//! Phase timings for `--debug`: where a create, start, run, exec or delete
//! spends its time, each phase in microseconds since the previous mark.
//!
//! One recorder per process (the runtime is single-threaded). Off unless
//! [`enable`]d, and then a mark costs one clock read. The container's init
//! records its own phases after fork ([`restart`]) and sends them to the
//! runtime at sync point [8], which merges them under an `init:` prefix.

use std::sync::Mutex;

/// Set by the first image before it re-executes from the sealed copy: the
/// monotonic time at which the command began, in nanoseconds.
pub const START_ENV: &str = "_BERTH_T0";

struct Rec {
    last: u64,
    phases: Vec<(String, u64)>,
}

static REC: Mutex<Option<Rec>> = Mutex::new(None);

/// Where each step is said as it happens (`--debug`'s step lines): the
/// step's words and its CLOCK_MONOTONIC time in ns.
pub type Sink = Box<dyn Fn(&str, u64) + Send>;

/// The sink, and the process that set it: a forked setup process (the
/// container's init) must not write to its parent's log.
static SINK: Mutex<Option<(u32, Sink)>> = Mutex::new(None);

/// `msg` to the sink, if this process set one.
fn say(msg: &str, t_ns: u64) {
    let s = SINK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((pid, f)) = s.as_ref() {
        if *pid == std::process::id() {
            f(msg, t_ns);
        }
    }
}

fn sink_on() -> bool {
    SINK.lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .is_some_and(|(pid, _)| *pid == std::process::id())
}

fn phase_words(name: &str, us: u64) -> String {
    format!("{name} done ({us} µs)")
}

fn rec() -> std::sync::MutexGuard<'static, Option<Rec>> {
    REC.lock().unwrap_or_else(|e| e.into_inner())
}

/// `f` on the recorder, if recording is on.
fn with<T>(f: impl FnOnce(&mut Rec) -> T) -> Option<T> {
    rec().as_mut().map(f)
}

/// CLOCK_MONOTONIC in nanoseconds: the same clock in every process, before
/// and after exec.
pub fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Start recording; the first phase is measured from `since_ns`.
pub fn enable(since_ns: u64) {
    *rec() = Some(Rec {
        last: since_ns,
        phases: Vec::new(),
    });
}

pub fn enabled() -> bool {
    rec().is_some()
}

/// Close the current phase under `name`.
pub fn mark(name: &str) {
    mark_at(name, now_ns());
}

/// Close the current phase under `name` as ending at `t_ns`.
pub fn mark_at(name: &str, t_ns: u64) {
    // The sink is called without the recorder's lock held.
    if let Some(us) = with(|r| r.close(name, t_ns)) {
        say(&phase_words(name, us), t_ns);
    }
}

/// Say every step from now on to `f` as it happens (and the phases
/// recorded so far, at the times they ended). Only while recording is on,
/// and only in this process.
pub fn set_sink(f: Sink) {
    let done = with(|r| {
        // Walk back from the last mark to each phase's end.
        let mut t = r.last;
        let mut ends: Vec<(String, u64)> = r
            .phases
            .iter()
            .rev()
            .map(|(n, us)| {
                let end = t;
                t = t.saturating_sub(us * 1000);
                (phase_words(n, *us), end)
            })
            .collect();
        ends.reverse();
        ends
    });
    let Some(done) = done else { return };
    for (msg, t) in &done {
        f(msg, *t);
    }
    *SINK.lock().unwrap_or_else(|e| e.into_inner()) = Some((std::process::id(), f));
}

/// A step that closes no phase (a pid, the namespaces joined): said to the
/// sink, if any; `msg` is only built then.
pub fn note(msg: impl FnOnce() -> String) {
    if sink_on() {
        say(&msg(), now_ns());
    }
}

impl Rec {
    fn close(&mut self, name: &str, t_ns: u64) -> u64 {
        let us = t_ns.saturating_sub(self.last) / 1000;
        self.phases.push((name.to_string(), us));
        self.last = t_ns;
        us
    }
}

/// In a forked child: forget the parent's phases, keep recording if on.
pub fn restart() {
    with(|r| {
        r.phases.clear();
        r.last = now_ns();
    });
}

/// Add phases recorded by another process (the container's init), each
/// name under `prefix`; they overlap the caller's own wait for them.
pub fn merge(prefix: &str, phases: Vec<(String, u64)>) {
    // Said when they arrive: the other process has no sink of its own.
    if sink_on() {
        let t = now_ns();
        for (n, us) in &phases {
            say(&phase_words(&format!("{prefix}{n}"), *us), t);
        }
    }
    with(|r| {
        r.phases.extend(
            phases
                .into_iter()
                .map(|(n, us)| (format!("{prefix}{n}"), us)),
        )
    });
}

/// The phases so far (the recorder stays on).
pub fn take() -> Vec<(String, u64)> {
    with(|r| std::mem::take(&mut r.phases)).unwrap_or_default()
}

/// One line: `name=µs ...`, then the total of the caller's own phases
/// (merged ones, prefixed with `init:`, happen during the caller's waits).
pub fn format(phases: &[(String, u64)]) -> String {
    let mut s = String::new();
    let mut total = 0;
    for (n, us) in phases {
        s.push_str(&format!("{n}={us} "));
        if !n.starts_with("init:") {
            total += us;
        }
    }
    s.push_str(&format!("total={total} (µs)"));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_merges_and_formats() {
        // Off: nothing recorded.
        mark("nothing");
        assert!(take().is_empty());
        enable(now_ns());
        mark("a");
        std::thread::sleep(std::time::Duration::from_millis(2));
        mark("b");
        merge("init:", vec![("mounts".into(), 7)]);
        let p = take();
        assert_eq!(
            p.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["a", "b", "init:mounts"]
        );
        assert!(p[1].1 >= 2000, "b took the 2 ms sleep: {p:?}");
        let line = format(&p);
        assert!(line.contains("init:mounts=7 "), "{line}");
        assert!(
            line.ends_with(&format!("total={} (µs)", p[0].1 + p[1].1)),
            "{line}"
        );
        restart();
        assert!(take().is_empty());

        // The sink: the phases so far replayed, then each step as it happens.
        mark("before the sink");
        let said = std::sync::Arc::new(Mutex::new(Vec::new()));
        let s2 = said.clone();
        set_sink(Box::new(move |m, t| {
            s2.lock().unwrap().push((m.to_string(), t))
        }));
        note(|| "a note".into());
        mark("after");
        merge("init:", vec![("mounts".into(), 7)]);
        let said = said.lock().unwrap().clone();
        let words: Vec<&str> = said.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(words.len(), 4, "{said:?}");
        assert!(words[0].starts_with("before the sink done ("), "{said:?}");
        assert_eq!(words[1], "a note");
        assert!(words[2].starts_with("after done ("), "{said:?}");
        assert_eq!(words[3], "init:mounts done (7 µs)");
        assert!(
            said.windows(2).all(|w| w[0].1 <= w[1].1),
            "in time order: {said:?}"
        );
        *SINK.lock().unwrap() = None;
    }
}
