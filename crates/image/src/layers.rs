//! Layer chains: each layer is unpacked once per chain ID into `layers/<chainid>/diff`.

use crate::error::{Error, Result};
use crate::store::{digest_hex, sha256_digest, Store};
use crate::unpack::{unpack_layer, UnpackOptions};
use berth_registry::manifest::{layer_compression, Descriptor, ImageConfig};
use std::path::{Path, PathBuf};

/// chain[0] = diff[0]; chain[n] = sha256(chain[n-1] + " " + diff[n]).
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => sha256_digest(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// Unpacks whatever layers of an image are not unpacked yet; returns the chain IDs.
/// Blobs must already be in the store. Caller holds the GC lock (shared is enough).
pub fn ensure_layers(
    store: &Store,
    layers: &[Descriptor],
    config: &ImageConfig,
    opts: &UnpackOptions,
) -> Result<Vec<String>> {
    let diff_ids = &config.rootfs.diff_ids;
    if diff_ids.len() != layers.len() {
        return Err(Error::LayerCount {
            diff_ids: diff_ids.len(),
            layers: layers.len(),
        });
    }
    for d in diff_ids {
        digest_hex(d)?;
    }
    let chains = chain_ids(diff_ids);
    for (i, desc) in layers.iter().enumerate() {
        let parent = if i > 0 {
            Some(chains[i - 1].as_str())
        } else {
            None
        };
        ensure_layer(store, desc, &diff_ids[i], &chains[i], parent, opts)?;
    }
    Ok(chains)
}

/// Unpacks one layer into `layers/<chain_id>` unless it is there already. Layers of one
/// image are independent directories, so they can be unpacked in any order or in parallel.
pub fn ensure_layer(
    store: &Store,
    desc: &Descriptor,
    diff_id: &str,
    chain_id: &str,
    parent: Option<&str>,
    opts: &UnpackOptions,
) -> Result<()> {
    if store.layer_dir(chain_id)?.is_dir() {
        return Ok(());
    }
    let blob = store.blob_path(&desc.digest)?;
    let f = std::fs::File::open(&blob).map_err(|e| Error::io(&blob, e))?;
    ensure_layer_from(store, f, desc, diff_id, chain_id, parent, opts)
}

/// Like [`ensure_layer`], reading the (already verified) blob from an open file, so a pull
/// can unpack while the blob is still being fsynced into the store.
pub fn ensure_layer_from(
    store: &Store,
    src: std::fs::File,
    desc: &Descriptor,
    diff_id: &str,
    chain_id: &str,
    parent: Option<&str>,
    opts: &UnpackOptions,
) -> Result<()> {
    let dir = store.layer_dir(chain_id)?;
    if dir.is_dir() {
        return Ok(());
    }
    let compression = layer_compression(&desc.media_type)
        .ok_or_else(|| Error::LayerType(desc.digest.clone(), desc.media_type.clone()))?;
    let tmp_parent = store.root().join("layers-tmp");
    let tmp = tempfile::Builder::new()
        .prefix("unpack-")
        .tempdir_in(&tmp_parent)
        .map_err(|e| Error::io(&tmp_parent, e))?;
    let diff = tmp.path().join("diff");
    std::fs::create_dir(&diff).map_err(|e| Error::io(&diff, e))?;
    std::fs::set_permissions(&diff, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(|e| Error::io(&diff, e))?;
    let got = unpack_layer(
        std::io::BufReader::with_capacity(1 << 20, src),
        compression,
        &diff,
        &desc.digest,
        opts,
    )?;
    if got.diff_id != diff_id {
        return Err(Error::DiffId {
            layer: desc.digest.clone(),
            expected: diff_id.to_string(),
            actual: got.diff_id,
        });
    }
    let meta = serde_json::json!({
        "chain_id": chain_id,
        "diff_id": diff_id,
        "parent": parent,
        "blob": desc.digest,
        "size": diff_size(&diff),
    });
    crate::store::atomic_write(&tmp.path().join("layer.json"), meta.to_string().as_bytes())?;
    let kept: PathBuf = tmp.keep();
    match std::fs::rename(&kept, &dir) {
        Ok(()) => Ok(()),
        // Someone else unpacked the same chain first; theirs is as good.
        Err(_) if dir.is_dir() => crate::store::remove_tree(&kept),
        Err(e) => {
            let _ = crate::store::remove_tree(&kept);
            Err(Error::io(&dir, e))
        }
    }
}

/// Makes directory `diff` (on the store's filesystem, in overlay format: whiteouts as
/// char 0:0, `trusted.overlay.opaque`) the unpacked layer `chain_id`, as if its tar
/// `desc` had been unpacked: a builder that already holds the layer's files (an
/// overlay upper directory) saves unpacking them again. `diff` is moved; when the chain
/// is there already it is left alone. True when adopted.
pub fn adopt_layer(
    store: &Store,
    diff: &Path,
    desc: &Descriptor,
    diff_id: &str,
    chain_id: &str,
    parent: Option<&str>,
) -> Result<bool> {
    let dir = store.layer_dir(chain_id)?;
    if dir.is_dir() {
        return Ok(false);
    }
    let tmp_parent = store.root().join("layers-tmp");
    let tmp = tempfile::Builder::new()
        .prefix("adopt-")
        .tempdir_in(&tmp_parent)
        .map_err(|e| Error::io(&tmp_parent, e))?;
    std::fs::rename(diff, tmp.path().join("diff")).map_err(|e| Error::io(diff, e))?;
    let meta = serde_json::json!({
        "chain_id": chain_id,
        "diff_id": diff_id,
        "parent": parent,
        "blob": desc.digest,
        "size": diff_size(&tmp.path().join("diff")),
    });
    crate::store::atomic_write(&tmp.path().join("layer.json"), meta.to_string().as_bytes())?;
    let kept: PathBuf = tmp.keep();
    match std::fs::rename(&kept, &dir) {
        Ok(()) => Ok(true),
        Err(_) if dir.is_dir() => crate::store::remove_tree(&kept).map(|_| false),
        Err(e) => {
            let _ = crate::store::remove_tree(&kept);
            Err(Error::io(&dir, e))
        }
    }
}

/// The lowerdirs of an image, topmost first (overlayfs order).
pub fn lower_dirs(store: &Store, chain_ids: &[String]) -> Result<Vec<PathBuf>> {
    let mut v = Vec::with_capacity(chain_ids.len());
    for c in chain_ids.iter().rev() {
        let d = store.layer_dir(c)?.join("diff");
        if !d.is_dir() {
            return Err(Error::io(&d, std::io::ErrorKind::NotFound.into()));
        }
        v.push(d);
    }
    Ok(v)
}

/// docker's size of an unpacked layer (its graphdriver's DiffSize): the bytes of every
/// non-directory entry, each inode counted once.
pub fn diff_size(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                todo.push(e.path());
            } else if m.len() > 0 && seen.insert((m.dev(), m.ino())) {
                total += m.len();
            }
        }
    }
    total
}

/// The size docker shows for an image: the sum of its unpacked layers' sizes (recorded in
/// each layer.json at unpack; measured for layers unpacked before that was recorded).
pub fn unpacked_size(store: &Store, chain_ids: &[String]) -> Result<u64> {
    let mut total = 0;
    for c in chain_ids {
        let dir = store.layer_dir(c)?;
        let recorded = std::fs::read(dir.join("layer.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["size"].as_u64());
        total += recorded.unwrap_or_else(|| diff_size(&dir.join("diff")));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_id_formula() {
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        assert_eq!(c[1], sha256_digest(format!("{a} {b}").as_bytes()));
    }
}
