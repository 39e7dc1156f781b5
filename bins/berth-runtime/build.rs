//! What `berth-runtime --version` says about how it was built: the profile and
//! its settings, static or dynamic, PIE or not, the target, rustc, the commit.
#![forbid(unsafe_code)]

use std::path::Path;
use std::process::Command;

fn env(k: &str) -> String {
    std::env::var(k).unwrap_or_default()
}

/// A setting of the profile: CARGO_PROFILE_<P>_<K> from the environment (it
/// overrides the file), else `k = v` in the workspace Cargo.toml's
/// [profile.<p>] section, else cargo's default for the profile.
fn profile_setting(ws: &Path, profile: &str, key: &str, default: &str) -> String {
    let var = format!(
        "CARGO_PROFILE_{}_{}",
        profile.to_uppercase(),
        key.to_uppercase().replace('-', "_")
    );
    println!("cargo:rerun-if-env-changed={var}");
    if let Ok(v) = std::env::var(&var) {
        return v;
    }
    let text = std::fs::read_to_string(ws.join("Cargo.toml")).unwrap_or_default();
    let mut inside = false;
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            inside = l == format!("[profile.{profile}]");
        } else if inside {
            if let Some((k, v)) = l.split_once('=') {
                if k.trim() == key {
                    return v
                        .split('#')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .trim_matches('"')
                        .to_string();
                }
            }
        }
    }
    default.to_string()
}

include!("../hot-path.rs");

fn main() {
    hot_path();
    let ws = Path::new(&env("CARGO_MANIFEST_DIR")).join("../..");
    println!("cargo:rerun-if-changed={}", ws.join("Cargo.toml").display());
    println!("cargo:rerun-if-changed={}", ws.join(".git/HEAD").display());
    let commit = Command::new("git")
        .args([
            "-C",
            &ws.to_string_lossy(),
            "rev-parse",
            "--short=12",
            "HEAD",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    if let Ok(o) = Command::new("git")
        .args([
            "-C",
            &ws.to_string_lossy(),
            "rev-parse",
            "--git-path",
            "HEAD",
            "--symbolic-full-name",
            "HEAD",
        ])
        .output()
    {
        // The branch's ref file moves on each commit: a new commit rebuilds.
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        if let Some(r) = out.lines().nth(1).filter(|r| r.starts_with("refs/")) {
            println!(
                "cargo:rerun-if-changed={}",
                ws.join(".git").join(r).display()
            );
        }
    }
    let rustc = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let profile = env("PROFILE");
    // "release" or "debug" (cargo's name of the dev profile's directory).
    let pname = if profile == "debug" { "dev" } else { &profile };
    let features = env("CARGO_CFG_TARGET_FEATURE");
    let linking = if features.split(',').any(|f| f == "crt-static") {
        "static"
    } else {
        "dynamic"
    };
    let flags = env("CARGO_ENCODED_RUSTFLAGS");
    let pie = if flags
        .split('\u{1f}')
        .any(|f| f.contains("relocation-model=static"))
    {
        "non-PIE"
    } else {
        "PIE"
    };
    let build =
        format!(
        "{pname} profile, {linking}, {pie}, opt-level={}, lto={}, codegen-units={}, panic={}, {}",
        env("OPT_LEVEL"),
        profile_setting(&ws, pname, "lto", "false"),
        profile_setting(&ws, pname, "codegen-units", if pname == "dev" { "256" } else { "16" }),
        profile_setting(&ws, pname, "panic", "unwind"),
        env("TARGET"),
    );
    println!("cargo:rustc-env=BERTH_BUILD_COMMIT={commit}");
    println!("cargo:rustc-env=BERTH_BUILD_RUSTC={rustc}");
    println!("cargo:rustc-env=BERTH_BUILD_INFO={build}");
}
