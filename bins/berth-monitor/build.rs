//! Links with hot-path.ld (made by scripts/hot-path.sh): the functions a start runs go
//! first and together, so it faults in a few 64 KiB windows of the binary, not most.
#![forbid(unsafe_code)]

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let ld = std::path::Path::new(&dir).join("hot-path.ld");
    println!("cargo:rerun-if-changed={}", ld.display());
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") && ld.exists() {
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", ld.display());
    }
    // scripts/hot-path.sh reads the link map (see berth-runtime's build.rs).
    println!("cargo:rerun-if-env-changed=BERTH_LINK_MAP");
    if let Ok(dir) = std::env::var("BERTH_LINK_MAP") {
        println!("cargo:rustc-link-arg-bins=-Wl,-Map={dir}/berth-monitor.map");
    }
}
