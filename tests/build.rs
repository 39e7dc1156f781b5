//! Builds the in-container probe (probe/probe.rs) as a static binary with plain rustc, std only, so the
//! harness can copy it into a bare busybox rootfs. The path reaches the harness as BERTH_PROBE_PATH.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=probe/probe.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR set by cargo"));
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let bin = out.join("berth-probe");
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "--crate-name",
            "berth_probe",
            "-C",
            "opt-level=1",
        ])
        .args([
            "-C",
            "target-feature=+crt-static",
            "-C",
            "strip=symbols",
            "-C",
            "panic=abort",
        ])
        .args(["--target", "x86_64-unknown-linux-musl"])
        .arg("probe/probe.rs")
        .arg("-o")
        .arg(&bin)
        .status()
        .expect("run rustc for the probe");
    assert!(status.success(), "building the static probe failed");
    println!("cargo:rustc-env=BERTH_PROBE_PATH={}", bin.display());
}
