//! berth-monitor: one per running container (placeholder; see docs/engine.md).
#![forbid(unsafe_code)]

fn main() {
    eprintln!("berth-monitor: not written yet");
    std::process::exit(1);
}
