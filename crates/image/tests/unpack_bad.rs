//! Crafted-layer regression tests (security bar BAD-06..BAD-12). Each unpacks a hostile
//! tarball into a layer dir next to a canary dir and asserts the canary is untouched.
//! Needs root (chown, mknod, trusted.* xattrs).

use berth_image::unpack::{unpack_layer, UnpackOptions};
use berth_image::Error;
use berth_registry::manifest::Compression;
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

struct Fx {
    _t: tempfile::TempDir,
    layer: PathBuf,
    canary: PathBuf,
    before: BTreeMap<String, (u32, u64, u64, Vec<u8>)>,
}

fn snapshot(dir: &Path) -> BTreeMap<String, (u32, u64, u64, Vec<u8>)> {
    let mut m = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let md = std::fs::symlink_metadata(e.path()).unwrap();
        let data = if md.is_file() {
            std::fs::read(e.path()).unwrap()
        } else {
            vec![]
        };
        m.insert(
            e.file_name().to_string_lossy().into(),
            (md.mode(), md.nlink(), md.ino(), data),
        );
    }
    let md = std::fs::metadata(dir).unwrap();
    m.insert(".".into(), (md.mode(), md.nlink(), md.ino(), vec![]));
    m
}

impl Fx {
    fn new() -> Fx {
        let t = tempfile::tempdir().unwrap();
        let layer = t.path().join("store/layer");
        let canary = t.path().join("canary");
        std::fs::create_dir_all(&layer).unwrap();
        std::fs::create_dir_all(&canary).unwrap();
        std::fs::write(canary.join("unbroken"), b"ok").unwrap();
        std::fs::set_permissions(canary.join("unbroken"), PermissionsExt::from_mode(0o644))
            .unwrap();
        let before = snapshot(&canary);
        Fx {
            _t: t,
            layer,
            canary,
            before,
        }
    }

    fn unpack(&self, tar: &[u8]) -> Result<berth_image::unpack::Unpacked, Error> {
        self.unpack_with(tar, Compression::None, &UnpackOptions::default())
    }

    fn unpack_with(
        &self,
        data: &[u8],
        c: Compression,
        o: &UnpackOptions,
    ) -> Result<berth_image::unpack::Unpacked, Error> {
        unpack_layer(data, c, &self.layer, "test-layer", o)
    }

    fn canary_abs(&self) -> String {
        self.canary.display().to_string()
    }

    fn assert_canary(&self) {
        assert_eq!(
            snapshot(&self.canary),
            self.before,
            "canary dir next to the store changed"
        );
    }
}

/// Raw tar entries: names and link targets are written as given (the tar crate's
/// builder would refuse the hostile ones).
#[derive(Default)]
struct T {
    b: Vec<u8>,
}

impl T {
    fn entry(
        &mut self,
        name: &str,
        kind: tar::EntryType,
        link: &str,
        data: &[u8],
        mode: u32,
    ) -> &mut Self {
        let mut h = tar::Header::new_gnu();
        {
            let raw = h.as_old_mut();
            raw.name = [0; 100];
            raw.name[..name.len()].copy_from_slice(name.as_bytes());
            raw.linkname = [0; 100];
            raw.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        h.set_cksum();
        self.b.extend_from_slice(h.as_bytes());
        self.b.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.b.extend(std::iter::repeat_n(0u8, pad));
        self
    }
    fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(name, tar::EntryType::Regular, "", data, 0o644)
    }
    fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(name, tar::EntryType::Directory, "", b"", 0o755)
    }
    fn symlink(&mut self, name: &str, to: &str) -> &mut Self {
        self.entry(name, tar::EntryType::Symlink, to, b"", 0o777)
    }
    fn hardlink(&mut self, name: &str, to: &str) -> &mut Self {
        self.entry(name, tar::EntryType::Link, to, b"", 0o644)
    }
    fn done(&mut self) -> Vec<u8> {
        let mut v = std::mem::take(&mut self.b);
        v.extend(std::iter::repeat_n(0u8, 1024));
        v
    }
}

fn is_unsafe(r: &Result<berth_image::unpack::Unpacked, Error>) -> bool {
    matches!(r, Err(Error::Unsafe { .. }) | Err(Error::Entry { .. }))
}

// ---- BAD-06: containerd TestBreakouts ----

#[test]
fn bad06_symlink_absolute() {
    let f = Fx::new();
    let tar = T::default()
        .symlink("etc", &f.canary_abs())
        .file("etc/unbroken", b"broken")
        .done();
    let _ = f.unpack(&tar);
    f.assert_canary();
}

#[test]
fn bad06_symlink_up_and_out() {
    let f = Fx::new();
    let tar = T::default()
        .symlink("dummy", "../../canary")
        .file("dummy/unbroken", b"broken")
        .done();
    let _ = f.unpack(&tar);
    f.assert_canary();
}

#[test]
fn bad06_symlink_multiple_relative_and_parent() {
    let f = Fx::new();
    let tar = T::default()
        .symlink("a", "../")
        .symlink("a/b", "../")
        .symlink("loophole", "a/b/../../..")
        .file("loophole/canary/unbroken", b"broken")
        .file("a/b/../canary/new", b"x")
        .done();
    let _ = f.unpack(&tar);
    f.assert_canary();
}

#[test]
fn bad06_symlink_override_directory() {
    // A directory becomes a symlink pointing out, then a file is written under it.
    let f = Fx::new();
    let tar = T::default()
        .dir("d")
        .symlink("d", &f.canary_abs())
        .file("d/unbroken", b"broken")
        .done();
    let _ = f.unpack(&tar);
    f.assert_canary();
}

#[test]
fn bad06_hardlink_absolute() {
    let f = Fx::new();
    let tar = T::default()
        .hardlink("x", &format!("{}/unbroken", f.canary_abs()))
        .done();
    let r = f.unpack(&tar);
    assert!(r.is_err(), "hardlink to a path not in the layer must fail");
    f.assert_canary();
}

#[test]
fn bad06_hardlink_relative_up_and_out() {
    let f = Fx::new();
    for target in [
        "../canary/unbroken",
        "../../canary/unbroken",
        "a/../../canary/unbroken",
    ] {
        let tar = T::default().hardlink("x", target).done();
        let r = f.unpack(&tar);
        assert!(matches!(r, Err(Error::Unsafe { .. })), "{target}: {r:?}");
    }
    f.assert_canary();
}

#[test]
fn bad06_hardlink_through_symlink_parent() {
    let f = Fx::new();
    let tar = T::default()
        .symlink("out", &f.canary_abs())
        .hardlink("x", "out/unbroken")
        .hardlink("out/new", "x")
        .done();
    let _ = f.unpack(&tar);
    f.assert_canary();
}

#[test]
fn bad09_hardlink_symlink_chmod_cve_2021_32760() {
    // containerd's HardlinkSymlinkChmod: hardlink to a symlink to a host file, mode 0777.
    let f = Fx::new();
    let tar = T::default()
        .symlink("passwd", &format!("{}/unbroken", f.canary_abs()))
        .entry("hl", tar::EntryType::Link, "passwd", b"", 0o777)
        .done();
    let _ = f.unpack(&tar);
    f.assert_canary();
    // And a file entry replacing a symlink must not chmod the symlink's target.
    let f = Fx::new();
    let tar = T::default()
        .symlink("link", &format!("{}/unbroken", f.canary_abs()))
        .entry("link", tar::EntryType::Regular, "", b"new", 0o4777)
        .entry(
            "dirlink",
            tar::EntryType::Symlink,
            &f.canary_abs(),
            b"",
            0o777,
        )
        .entry("dirlink", tar::EntryType::Directory, "", b"", 0o777)
        .done();
    f.unpack(&tar).unwrap();
    f.assert_canary();
    let md = std::fs::symlink_metadata(f.layer.join("link")).unwrap();
    assert!(md.is_file());
    assert_eq!(md.mode() & 0o7777, 0o4777);
    assert!(std::fs::symlink_metadata(f.layer.join("dirlink"))
        .unwrap()
        .is_dir());
}

// ---- BAD-07: go-archive traversal ----

#[test]
fn bad07_dotdot_names_refused() {
    let f = Fx::new();
    for name in [
        "../canary/unbroken",
        "a/../../canary/unbroken",
        "./../canary/x",
    ] {
        let tar = T::default().file(name, b"broken").done();
        let r = f.unpack(&tar);
        assert!(matches!(r, Err(Error::Unsafe { .. })), "{name}: {r:?}");
    }
    f.assert_canary();
}

#[test]
fn bad07_absolute_name_stays_inside() {
    let f = Fx::new();
    let name = format!("{}/unbroken", f.canary_abs());
    let tar = T::default().file(&name, b"inside").done();
    f.unpack(&tar).unwrap();
    f.assert_canary();
    let inside = f.layer.join(name.trim_start_matches('/'));
    assert_eq!(std::fs::read(inside).unwrap(), b"inside");
}

#[test]
fn bad07_write_through_absolute_symlink_stays_inside() {
    // TestUntarThroughAbsoluteSymlink: "root" -> "/" then "root/<canary>/unbroken".
    let f = Fx::new();
    let tar = T::default()
        .symlink("root", "/")
        .file(&format!("root{}/unbroken", f.canary_abs()), b"inside")
        .done();
    let _ = f.unpack(&tar);
    f.assert_canary();
}

// ---- BAD-08: umoci CVE-2021-29136 ----

#[test]
fn bad08_root_entry_symlink_cve_2021_29136() {
    for root in [".", "./", "/"] {
        let f = Fx::new();
        let tar = T::default()
            .symlink(root, &f.canary_abs())
            .file("unbroken", b"broken")
            .done();
        let r = f.unpack(&tar);
        assert!(matches!(r, Err(Error::Unsafe { .. })), "{root}: {r:?}");
        f.assert_canary();
        assert!(std::fs::symlink_metadata(&f.layer).unwrap().is_dir());
    }
    // A root *directory* entry is fine and sets the root's mode.
    let f = Fx::new();
    let tar = T::default()
        .entry("./", tar::EntryType::Directory, "", b"", 0o700)
        .done();
    f.unpack(&tar).unwrap();
    assert_eq!(std::fs::metadata(&f.layer).unwrap().mode() & 0o7777, 0o700);
}

// ---- devices ----

#[test]
fn device_nodes_refused_unless_allowed() {
    let f = Fx::new();
    let mut t = T::default();
    t.entry("dev/sda", tar::EntryType::Block, "", b"", 0o660);
    let tar = t.done();
    let r = f.unpack(&tar);
    assert!(matches!(r, Err(Error::Unsafe { .. })), "{r:?}");
    let o = UnpackOptions {
        allow_devices: true,
        ..Default::default()
    };
    let f2 = Fx::new();
    f2.unpack_with(&tar, Compression::None, &o).unwrap();
    use std::os::unix::fs::FileTypeExt;
    let md = std::fs::symlink_metadata(f2.layer.join("dev/sda")).unwrap();
    assert!(md.file_type().is_block_device());
    assert_eq!(md.mode() & 0o777, 0o660);
    f.assert_canary();
}

// ---- whiteouts ----

#[test]
fn whiteouts_become_overlay_whiteouts() {
    use std::os::unix::fs::FileTypeExt;
    let f = Fx::new();
    let tar = T::default()
        .dir("etc")
        .file("etc/.wh.motd", b"")
        .dir("opt")
        .file("opt/.wh..wh..opq", b"")
        .file("opt/kept", b"k")
        .file(".wh..wh.plnk", b"")
        .done();
    f.unpack(&tar).unwrap();
    let md = std::fs::symlink_metadata(f.layer.join("etc/motd")).unwrap();
    assert!(md.file_type().is_char_device());
    assert_eq!(md.rdev(), 0);
    let mut v = [0u8; 4];
    let n = rustix::fs::getxattr(f.layer.join("opt"), "trusted.overlay.opaque", &mut v).unwrap();
    assert_eq!(&v[..n], b"y");
    assert!(f.layer.join("opt/kept").is_file());
    assert!(!f.layer.join(".wh..wh.plnk").exists());
}

#[test]
fn whiteout_of_dot_dotdot_or_escaping_refused() {
    let f = Fx::new();
    for name in [".wh..", ".wh...", "a/.wh..", "../.wh.canary", ".wh."] {
        let tar = T::default().file(name, b"").done();
        let r = f.unpack(&tar);
        assert!(matches!(r, Err(Error::Unsafe { .. })), "{name}: {r:?}");
    }
    // Whiteout under a symlinked parent pointing out lands inside the layer.
    let tar = T::default()
        .symlink("s", &f.canary_abs())
        .file("s/.wh.unbroken", b"")
        .done();
    let _ = f.unpack(&tar);
    f.assert_canary();
}

#[test]
fn overlay_xattrs_from_images_refused() {
    let f = Fx::new();
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([("SCHILY.xattr.trusted.overlay.redirect", b"/etc".as_slice())])
        .unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    h.set_mode(0o755);
    h.set_entry_type(tar::EntryType::Directory);
    b.append_data(&mut h, "d", std::io::empty()).unwrap();
    let tar = b.into_inner().unwrap();
    assert!(is_unsafe(&f.unpack(&tar)));
}

// ---- BAD-11: opaque-whiteout flood ----

#[test]
fn bad11_opaque_whiteout_flood_is_bounded() {
    let f = Fx::new();
    let mut t = T::default();
    t.dir("d");
    for _ in 0..70_000 {
        t.file("d/.wh..wh..opq", b"");
    }
    let tar = t.done();
    let start = std::time::Instant::now();
    let r = f.unpack(&tar);
    assert!(
        matches!(r, Err(Error::Unsafe { ref reason, .. }) if reason.contains("opaque")),
        "{r:?}"
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(30));
}

// ---- BAD-12: decompression bombs ----

fn zero_file_tar(len: u64) -> impl std::io::Read {
    let mut h = tar::Header::new_gnu();
    h.set_path("zeros").unwrap();
    h.set_size(len);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let header = std::io::Cursor::new(h.as_bytes().to_vec());
    header
        .chain(std::io::repeat(0).take(len))
        .chain(std::io::repeat(0).take(1024))
}

use std::io::Read as _;

#[test]
fn bad12_zstd_bomb_refused_by_ratio() {
    let f = Fx::new();
    let mut comp = Vec::new();
    let mut enc = zstd::stream::write::Encoder::new(&mut comp, 3).unwrap();
    std::io::copy(&mut zero_file_tar(512 << 20), &mut enc).unwrap();
    enc.finish().unwrap();
    assert!(comp.len() < 1 << 20);
    let r = f.unpack_with(&comp, Compression::Zstd, &UnpackOptions::default());
    assert!(
        matches!(r, Err(Error::Unsafe { ref reason, .. }) if reason.contains("bomb")),
        "{r:?}"
    );
    let written = std::fs::metadata(f.layer.join("zeros"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(written < 100 << 20, "wrote {written} bytes");
}

#[test]
fn bad12_gzip_bomb_refused_by_size() {
    let f = Fx::new();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::copy(&mut zero_file_tar(64 << 20), &mut enc).unwrap();
    let comp = enc.finish().unwrap();
    let o = UnpackOptions {
        max_size: 8 << 20,
        ..Default::default()
    };
    let r = f.unpack_with(&comp, Compression::Gzip, &o);
    assert!(
        matches!(r, Err(Error::Unsafe { ref reason, .. }) if reason.contains("bomb")),
        "{r:?}"
    );
}

// ---- ordinary layers ----

#[test]
fn compressions_and_diff_id() {
    use sha2::Digest;
    let mut t = T::default();
    t.dir("bin")
        .file("bin/hello", b"hello")
        .symlink("bin/hi", "hello")
        .hardlink("bin/hey", "bin/hello");
    t.entry("bin/suid", tar::EntryType::Regular, "", b"x", 0o4755);
    let tar = t.done();
    let want = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&tar)));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let gz = gz.finish().unwrap();
    let zs = zstd::encode_all(&tar[..], 3).unwrap();
    for (data, c) in [
        (&tar, Compression::None),
        (&gz, Compression::Gzip),
        (&zs, Compression::Zstd),
    ] {
        let f = Fx::new();
        let u = f.unpack_with(data, c, &UnpackOptions::default()).unwrap();
        assert_eq!(u.diff_id, want, "{c:?}");
        assert_eq!(std::fs::read(f.layer.join("bin/hello")).unwrap(), b"hello");
        assert_eq!(
            std::fs::read_link(f.layer.join("bin/hi")).unwrap(),
            Path::new("hello")
        );
        let a = std::fs::metadata(f.layer.join("bin/hello")).unwrap();
        let b = std::fs::metadata(f.layer.join("bin/hey")).unwrap();
        assert_eq!(a.ino(), b.ino());
        assert_eq!(
            std::fs::metadata(f.layer.join("bin/suid")).unwrap().mode() & 0o7777,
            0o4755
        );
        assert_eq!(a.mtime(), 1_600_000_000);
    }
}
