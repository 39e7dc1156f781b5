//! berth-probe: a static helper run inside test containers. It reports what it sees as JSON on stdout
//! (`info`) or performs one small action (`write`, `read`, `stat`, `ls`, `exit`, `sleep`, `escape`).
//! Built by tests/build.rs with `rustc -C target-feature=+crt-static`, std only, so it runs in a bare
//! busybox rootfs without a libc.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::process::exit;

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn opt(r: Result<String, std::io::Error>) -> String {
    match r {
        Ok(s) => esc(s.trim_end_matches('\n')),
        Err(e) => format!(
            "{{\"error\":{},\"errno\":{}}}",
            esc(&e.to_string()),
            e.raw_os_error().unwrap_or(0)
        ),
    }
}

fn err_json(e: &std::io::Error) -> String {
    format!(
        "{{\"ok\":false,\"errno\":{},\"error\":{}}}",
        e.raw_os_error().unwrap_or(0),
        esc(&e.to_string())
    )
}

fn status_fields() -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    if let Ok(s) = fs::read_to_string("/proc/self/status") {
        for l in s.lines() {
            if let Some((k, v)) = l.split_once(':') {
                m.insert(k.to_string(), v.trim().to_string());
            }
        }
    }
    m
}

fn nums(s: Option<&String>) -> String {
    let v: Vec<&str> = s
        .map(|s| s.split_whitespace().collect())
        .unwrap_or_default();
    format!("[{}]", v.join(","))
}

fn limits() -> String {
    // /proc/self/limits: name (may contain spaces) | soft | hard | units
    let mut out = Vec::new();
    let names = [
        ("Max cpu time", "RLIMIT_CPU"),
        ("Max file size", "RLIMIT_FSIZE"),
        ("Max data size", "RLIMIT_DATA"),
        ("Max stack size", "RLIMIT_STACK"),
        ("Max core file size", "RLIMIT_CORE"),
        ("Max resident set", "RLIMIT_RSS"),
        ("Max processes", "RLIMIT_NPROC"),
        ("Max open files", "RLIMIT_NOFILE"),
        ("Max locked memory", "RLIMIT_MEMLOCK"),
        ("Max address space", "RLIMIT_AS"),
        ("Max file locks", "RLIMIT_LOCKS"),
        ("Max pending signals", "RLIMIT_SIGPENDING"),
        ("Max msgqueue size", "RLIMIT_MSGQUEUE"),
        ("Max nice priority", "RLIMIT_NICE"),
        ("Max realtime priority", "RLIMIT_RTPRIO"),
        ("Max realtime timeout", "RLIMIT_RTTIME"),
    ];
    if let Ok(s) = fs::read_to_string("/proc/self/limits") {
        for l in s.lines().skip(1) {
            for (n, r) in names {
                if let Some(rest) = l.strip_prefix(n) {
                    let f: Vec<&str> = rest.split_whitespace().collect();
                    let conv = |x: &str| -> String {
                        if x == "unlimited" {
                            u64::MAX.to_string()
                        } else {
                            x.to_string()
                        }
                    };
                    if f.len() >= 2 {
                        out.push(format!(
                            "{}:{{\"soft\":{},\"hard\":{}}}",
                            esc(r),
                            conv(f[0]),
                            conv(f[1])
                        ));
                    }
                }
            }
        }
    }
    format!("{{{}}}", out.join(","))
}

fn fds() -> String {
    let names: Vec<String> = match fs::read_dir("/proc/self/fd") {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) => return format!("{{\"error\":{}}}", esc(&e.to_string())),
    };
    // The read_dir fd is closed now, so readlink on it fails and it drops out.
    let mut out = Vec::new();
    let mut sorted: Vec<u32> = names.iter().filter_map(|n| n.parse().ok()).collect();
    sorted.sort();
    for n in sorted {
        if let Ok(t) = fs::read_link(format!("/proc/self/fd/{n}")) {
            out.push(format!(
                "{}:{}",
                esc(&n.to_string()),
                esc(&t.to_string_lossy())
            ));
        }
    }
    format!("{{{}}}", out.join(","))
}

fn namespaces() -> String {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir("/proc/self/ns") {
        let mut v: Vec<String> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        for n in v {
            if let Ok(t) = fs::read_link(format!("/proc/self/ns/{n}")) {
                out.push(format!("{}:{}", esc(&n), esc(&t.to_string_lossy())));
            }
        }
    }
    format!("{{{}}}", out.join(","))
}

fn info(code: i32) -> ! {
    let st = status_fields();
    let g = |k: &str| esc(st.get(k).map(String::as_str).unwrap_or(""));
    let mut o = String::from("{");
    let _ = write!(o, "\"pid\":{},", std::process::id());
    let _ = write!(
        o,
        "\"uid\":{},\"gid\":{},\"groups\":{},",
        nums(st.get("Uid")),
        nums(st.get("Gid")),
        nums(st.get("Groups"))
    );
    let _ = write!(
        o,
        "\"caps\":{{\"inheritable\":{},\"permitted\":{},\"effective\":{},\"bounding\":{},\"ambient\":{}}},",
        g("CapInh"),
        g("CapPrm"),
        g("CapEff"),
        g("CapBnd"),
        g("CapAmb")
    );
    let _ = write!(
        o,
        "\"no_new_privs\":{},\"seccomp\":{},\"umask\":{},",
        g("NoNewPrivs"),
        g("Seccomp"),
        g("Umask")
    );
    let _ = write!(o, "\"rlimits\":{},", limits());
    let _ = write!(o, "\"fds\":{},", fds());
    let _ = write!(o, "\"ns\":{},", namespaces());
    let _ = write!(
        o,
        "\"hostname\":{},",
        opt(fs::read_to_string("/proc/sys/kernel/hostname"))
    );
    let _ = write!(
        o,
        "\"domainname\":{},",
        opt(fs::read_to_string("/proc/sys/kernel/domainname"))
    );
    let _ = write!(
        o,
        "\"cwd\":{},",
        opt(std::env::current_dir().map(|p| p.to_string_lossy().into_owned()))
    );
    let _ = write!(
        o,
        "\"oom_score_adj\":{},",
        opt(fs::read_to_string("/proc/self/oom_score_adj"))
    );
    let _ = write!(
        o,
        "\"personality\":{},",
        opt(fs::read_to_string("/proc/self/personality"))
    );
    let _ = write!(
        o,
        "\"cgroup\":{},",
        opt(fs::read_to_string("/proc/self/cgroup"))
    );
    let _ = write!(
        o,
        "\"uid_map\":{},",
        opt(fs::read_to_string("/proc/self/uid_map"))
    );
    let _ = write!(
        o,
        "\"gid_map\":{},",
        opt(fs::read_to_string("/proc/self/gid_map"))
    );
    let _ = write!(
        o,
        "\"setgroups\":{},",
        opt(fs::read_to_string("/proc/self/setgroups"))
    );
    let _ = write!(
        o,
        "\"timens_offsets\":{},",
        opt(fs::read_to_string("/proc/self/timens_offsets"))
    );
    let _ = write!(
        o,
        "\"mountinfo\":{},",
        opt(fs::read_to_string("/proc/self/mountinfo"))
    );
    let env: Vec<String> = std::env::vars_os()
        .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
        .map(|s| esc(&s))
        .collect();
    let _ = write!(o, "\"env\":[{}],", env.join(","));
    let args: Vec<String> = std::env::args().map(|a| esc(&a)).collect();
    let _ = write!(o, "\"args\":[{}],", args.join(","));
    let _ = write!(o, "\"exit\":{code}");
    o.push('}');
    println!("{o}");
    let _ = std::io::stdout().flush();
    exit(code)
}

fn stat(path: &str) -> String {
    match fs::symlink_metadata(path) {
        Err(e) => err_json(&e),
        Ok(m) => {
            let ft = m.file_type();
            let kind = if ft.is_symlink() {
                "symlink"
            } else if ft.is_dir() {
                "dir"
            } else if ft.is_file() {
                "file"
            } else if ft.is_char_device() {
                "char"
            } else if ft.is_block_device() {
                "block"
            } else if ft.is_fifo() {
                "fifo"
            } else if ft.is_socket() {
                "socket"
            } else {
                "unknown"
            };
            let rdev = m.rdev();
            let major = ((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0xfff);
            let minor = ((rdev >> 12) & 0xffff_ff00) | (rdev & 0xff);
            let target = if ft.is_symlink() {
                fs::read_link(path)
                    .map(|t| esc(&t.to_string_lossy()))
                    .unwrap_or_else(|_| "null".into())
            } else {
                "null".into()
            };
            format!(
                "{{\"ok\":true,\"type\":{},\"mode\":{},\"uid\":{},\"gid\":{},\"major\":{},\"minor\":{},\"size\":{},\"dev\":{},\"ino\":{},\"target\":{}}}",
                esc(kind),
                m.permissions().mode() & 0o7777,
                m.uid(),
                m.gid(),
                major,
                minor,
                m.size(),
                m.dev(),
                m.ino(),
                target
            )
        }
    }
}

fn usage() -> ! {
    eprintln!("usage: probe info [CODE] | exit CODE | write FILE [DATA] | read FILE | stat PATH | ls DIR | sleep [SECS] | escape PATH | print TEXT");
    exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let cmd = args.get(1).map(String::as_str).unwrap_or("info");
    let arg = |i: usize| args.get(i).cloned().unwrap_or_else(|| usage());
    match cmd {
        "info" => info(args.get(2).and_then(|s| s.parse().ok()).unwrap_or(0)),
        "exit" => exit(arg(2).parse().unwrap_or_else(|_| usage())),
        "print" => {
            println!("{}", arg(2));
            exit(0)
        }
        "write" => {
            let data = args.get(3).cloned().unwrap_or_else(|| "probe".into());
            match fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(arg(2))
                .and_then(|mut f| f.write_all(data.as_bytes()))
            {
                Ok(()) => {
                    println!("{{\"ok\":true}}");
                    exit(0)
                }
                Err(e) => {
                    println!("{}", err_json(&e));
                    exit(1)
                }
            }
        }
        "read" => match fs::read(arg(2)) {
            Ok(d) => {
                println!(
                    "{{\"ok\":true,\"data\":{}}}",
                    esc(&String::from_utf8_lossy(&d))
                );
                exit(0)
            }
            Err(e) => {
                println!("{}", err_json(&e));
                exit(1)
            }
        },
        "stat" => {
            let s = stat(&arg(2));
            println!("{s}");
            exit(if s.starts_with("{\"ok\":true") { 0 } else { 1 })
        }
        "ls" => match fs::read_dir(arg(2)) {
            Ok(rd) => {
                let mut v: Vec<String> = rd
                    .filter_map(|e| e.ok())
                    .map(|e| esc(&e.file_name().to_string_lossy()))
                    .collect();
                v.sort();
                println!("{{\"ok\":true,\"entries\":[{}]}}", v.join(","));
                exit(0)
            }
            Err(e) => {
                println!("{}", err_json(&e));
                exit(1)
            }
        },
        "sleep" => {
            // Bounded, so a container a broken runtime fails to clean up goes away by itself.
            let secs: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(120);
            std::thread::sleep(std::time::Duration::from_secs(secs));
            exit(0)
        }
        // Try to read PATH relative to the cwd through many "..": from a cwd inside the container this
        // stays inside the root; from a leaked host directory it reaches the host's PATH (CVE-2024-21626).
        "escape" => {
            let cwd = std::env::current_dir().map(|p| p.to_string_lossy().into_owned());
            let rel = format!("{}{}", "../".repeat(40), arg(2).trim_start_matches('/'));
            let r = fs::read_to_string(&rel);
            println!(
                "{{\"cwd\":{},\"read\":{}}}",
                opt(cwd),
                match r {
                    Ok(s) => esc(&s),
                    Err(e) => err_json(&e),
                }
            );
            exit(0)
        }
        _ => usage(),
    }
}
