//! Overlay rootfs with the new mount API, including a 200-layer image (lowerdir+).
//! Needs root.

use berth_image::layers::ensure_layers;
use berth_image::overlay::{mount_rootfs, unmount_rootfs};
use berth_image::store::{sha256_digest, ImageRecord, Store};
use berth_image::unpack::UnpackOptions;
use berth_registry::manifest::{Descriptor, ImageConfig, RootFs, OCI_LAYER};

fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (p, d) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(d.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, p, *d).unwrap();
    }
    b.into_inner().unwrap()
}

/// Unmounts even when an assertion fails.
struct Mounted<'a>(&'a Store, &'a str);
impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let _ = unmount_rootfs(self.0, self.1, true);
    }
}

fn image(store: &Store, layers: Vec<Vec<u8>>) -> ImageRecord {
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for l in &layers {
        let d = store.write_blob(l).unwrap();
        diff_ids.push(sha256_digest(l));
        descs.push(Descriptor::new(OCI_LAYER, d, l.len() as u64));
    }
    let cfg = ImageConfig {
        rootfs: RootFs {
            typ: "layers".into(),
            diff_ids,
        },
        ..Default::default()
    };
    let chain_ids = ensure_layers(store, &descs, &cfg, &UnpackOptions::default()).unwrap();
    let c = store
        .write_blob(&serde_json::to_vec(&cfg).unwrap())
        .unwrap();
    ImageRecord {
        manifest: c.clone(),
        config: c,
        layers: descs.iter().map(|d| d.digest.clone()).collect(),
        chain_ids,
        index: None,
        repo_digests: vec![],
        size: 0,
        stored_at: 0,
    }
}

#[test]
fn two_hundred_layers_with_lowerdir_plus() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path().join("root")).unwrap();
    let mut layers = Vec::new();
    for i in 0..200 {
        let name = format!("layer-{i:03}-with-a-long-file-name-to-fill-the-options-page");
        layers.push(layer(&[
            (&name, format!("{i}").as_bytes()),
            ("top", format!("{i}").as_bytes()),
        ]));
    }
    let rec = image(&store, layers);
    let merged = mount_rootfs(&store, &rec, "ctr-deep").unwrap();
    let _g = Mounted(&store, "ctr-deep");
    // 200 long lowerdir paths would never fit in one 4 KiB options string.
    let total: usize = store.root().display().to_string().len() * 200 + 200 * 80;
    assert!(total > 4096);
    assert_eq!(std::fs::read_to_string(merged.join("top")).unwrap(), "199");
    assert_eq!(std::fs::read_dir(&merged).unwrap().count(), 201);
    // Writes land in the container's upper dir, not the shared layers.
    std::fs::write(merged.join("top"), "changed").unwrap();
    let upper = merged.parent().unwrap().join("upper");
    assert_eq!(
        std::fs::read_to_string(upper.join("top")).unwrap(),
        "changed"
    );
    let top_layer = store
        .layer_dir(rec.chain_ids.last().unwrap())
        .unwrap()
        .join("diff/top");
    assert_eq!(std::fs::read_to_string(top_layer).unwrap(), "199");
}

#[test]
fn whiteouts_and_opaque_dirs_apply_and_gc_respects_leases() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path().join("root")).unwrap();
    let l1 = layer(&[("etc/motd", b"hi"), ("opt/a", b"a"), ("keep", b"k")]);
    let l2 = layer(&[
        ("etc/.wh.motd", b""),
        ("opt/.wh..wh..opq", b""),
        ("opt/b", b"b"),
    ]);
    let rec = image(&store, vec![l1, l2]);
    let merged = mount_rootfs(&store, &rec, "ctr-wh").unwrap();
    let g = Mounted(&store, "ctr-wh");
    assert!(!merged.join("etc/motd").exists());
    assert!(merged.join("etc").is_dir());
    assert!(!merged.join("opt/a").exists());
    assert_eq!(std::fs::read(merged.join("opt/b")).unwrap(), b"b");
    assert_eq!(std::fs::read(merged.join("keep")).unwrap(), b"k");
    // Not recorded as an image, but leased by the container: GC must keep its layers.
    let lock = store.lock_exclusive().unwrap();
    let rep = store.gc(&lock).unwrap();
    assert!(rep.layers.is_empty(), "{rep:?}");
    drop(lock);
    drop(g);
    assert!(!merged.exists());
    let lock = store.lock_exclusive().unwrap();
    let rep = store.gc(&lock).unwrap();
    assert_eq!(rep.layers.len(), 2);
}
