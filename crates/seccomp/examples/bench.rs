//! Compile-time benchmark on moby's default profile: cold compile, cache miss (compile +
//! write) and cache hit (read + verify).
//!   cargo run --release -p berth-seccomp --example bench
use std::time::Instant;

fn main() {
    let caps: Vec<String> = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let profile = berth_seccomp::default_profile(&caps);
    let n = 200u32;

    let t = Instant::now();
    let mut len = 0;
    for _ in 0..n {
        len = berth_seccomp::compile(&profile)
            .expect("compiles")
            .filter
            .len();
    }
    let cold = t.elapsed() / n;

    let dir = tempfile::tempdir().expect("tempdir");
    let t = Instant::now();
    for i in 0..n {
        // A fresh directory each time: every call is a miss.
        let d = dir.path().join(i.to_string());
        berth_seccomp::compile_cached(&profile, &d).expect("compiles");
    }
    let miss = t.elapsed() / n;

    let d = dir.path().join("hit");
    berth_seccomp::compile_cached(&profile, &d).expect("compiles");
    let t = Instant::now();
    for _ in 0..n {
        berth_seccomp::compile_cached(&profile, &d).expect("compiles");
    }
    let hit = t.elapsed() / n;

    println!("default profile: {len} instructions");
    println!("compile (cold, no cache): {cold:?}");
    println!("compile_cached miss (compile + write): {miss:?}");
    println!("compile_cached hit (read + verify): {hit:?}");
}
