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
    with(|r| r.close(name, now_ns()));
}

/// Close the current phase under `name` as ending at `t_ns`.
pub fn mark_at(name: &str, t_ns: u64) {
    with(|r| r.close(name, t_ns));
}

impl Rec {
    fn close(&mut self, name: &str, t_ns: u64) {
        self.phases
            .push((name.to_string(), t_ns.saturating_sub(self.last) / 1000));
        self.last = t_ns;
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
    }
}
