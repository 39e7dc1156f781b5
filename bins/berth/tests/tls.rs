//! Runs tests/images/tls.sh in a private network namespace (a non-loopback address, so
//! berth uses HTTPS) against a docker-registry with a self-signed certificate.

#[test]
fn tls_registry_in_private_netns() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/images/tls.sh");
    let w = tempfile::tempdir().unwrap();
    let o = std::process::Command::new("unshare")
        .arg("-n")
        .arg("bash")
        .arg(&script)
        .arg(match std::env::var_os("BERTH_BIN_DIR") {
            Some(d) => std::path::Path::new(&d).join("berth"),
            None => env!("CARGO_BIN_EXE_berth").into(),
        })
        .arg(w.path())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    eprintln!("{out}\n{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "tls.sh failed");
    assert!(out.contains("5 passed, 0 failed"), "{out}");
}
