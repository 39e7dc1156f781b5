// Included by the build.rs of berth-runtime, berth-monitor and berth.

/// Links with the package's hot-path.ld (made by scripts/hot-path.sh): the functions a
/// start runs go first and together, so it faults in a few 64 KiB windows of the binary,
/// not most. With BERTH_LINK_MAP set, also writes the link map there, which the script
/// reads: each function's section and address in a build like the shipped one (a
/// profile change would rename the functions).
fn hot_path() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let ld = std::path::Path::new(&dir).join("hot-path.ld");
    println!("cargo:rerun-if-changed={}", ld.display());
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") && ld.exists() {
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", ld.display());
    }
    println!("cargo:rerun-if-env-changed=BERTH_LINK_MAP");
    if let Ok(map) = std::env::var("BERTH_LINK_MAP") {
        let pkg = std::env::var("CARGO_PKG_NAME").unwrap_or_default();
        println!("cargo:rustc-link-arg-bins=-Wl,-Map={map}/{pkg}.map");
    }
}
