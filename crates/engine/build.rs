//! Builds `--init`'s pid 1 (init/berth-init.rs) as a static binary with plain rustc (std
//! only), so it runs in any image; init.rs embeds it through BERTH_INIT_PATH.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("../../init/berth-init.rs");
    println!("cargo:rerun-if-changed={}", src.display());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR set by cargo"));
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let bin = out.join("berth-init");
    let status = Command::new(rustc)
        .args(["--edition", "2021", "--crate-name", "berth_init"])
        .args(["-C", "opt-level=s", "-C", "target-feature=+crt-static"])
        .args(["-C", "strip=symbols", "-C", "panic=abort"])
        .args(["--target", "x86_64-unknown-linux-musl"])
        .arg(&src)
        .arg("-o")
        .arg(&bin)
        .status()
        .expect("run rustc for berth-init");
    assert!(status.success(), "building the static berth-init failed");
    println!("cargo:rustc-env=BERTH_INIT_PATH={}", bin.display());
}
