//! `commit` and `diff`: what a container changed, read from its overlay upper directory
//! (mounted or not). Overlay whiteouts (char device 0:0) are deletions and directories
//! marked opaque (`trusted.overlay.opaque`) hide what the image had in them; in a commit's
//! layer they become OCI `.wh.NAME` and `.wh..wh..opq` entries.

use crate::error::{Error, Result};
use crate::layout::Layout;
use berth_image::store::{ImageRecord, Store};
use berth_registry::manifest::{self as mf, Descriptor, ImageConfig};
use berth_registry::Reference;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use std::fs::Metadata;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// One line of `diff`: `A`dded, `C`hanged or `D`eleted, and the path in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: char,
    pub path: String,
}

/// What `commit` takes besides the container.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    pub author: Option<String>,
    pub message: Option<String>,
    /// Dockerfile lines, as `import -c` takes them.
    pub changes: Vec<String>,
    pub pause: bool,
    pub reference: Option<String>,
}

/// Mount points the runtime creates (empty) in an image that lacks them: docker keeps
/// these in its init layer, so neither its diff nor its commit shows them.
const MOUNT_TARGETS: [&str; 10] = [
    "/etc/hostname",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/mtab",
    "/dev",
    "/dev/console",
    "/dev/pts",
    "/dev/shm",
    "/proc",
    "/sys",
];

fn is_empty(p: &Path, m: &Metadata) -> bool {
    if m.is_dir() {
        std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_none())
    } else {
        m.is_file() && m.len() == 0
    }
}

fn is_whiteout(m: &Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn is_opaque(p: &Path) -> bool {
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|k| {
            let mut buf = [0u8; 4];
            matches!(rustix::fs::lgetxattr(p, *k, &mut buf), Ok(n) if buf[..n] == *b"y")
        })
}

/// The image's view of `rel` (relative, no leading `/`): the topmost layer's entry, none
/// when a layer whites it out or hides it under an opaque directory.
fn lower_entry(lowers: &[PathBuf], rel: &Path) -> Option<Metadata> {
    for l in lowers {
        if let Ok(m) = std::fs::symlink_metadata(l.join(rel)) {
            return (!is_whiteout(&m)).then_some(m);
        }
        // An opaque ancestor in this layer hides the layers below.
        let mut a = rel.parent();
        while let Some(p) = a.filter(|p| !p.as_os_str().is_empty()) {
            if is_opaque(&l.join(p)) {
                return None;
            }
            a = p.parent();
        }
    }
    None
}

/// One entry of the upper directory, in walk order (a directory before its contents).
struct Entry {
    rel: PathBuf,
    meta: Metadata,
    kind: Kind,
}

#[derive(PartialEq)]
enum Kind {
    Deleted,
    /// Deleted and made again (opaque): docker 20.10's diff calls it deleted, and what is
    /// in it added.
    Opaque,
    Added,
    Changed,
    /// A directory the image has, copied up only because something under it changed.
    Parent,
}

struct Upper {
    root: PathBuf,
    lowers: Vec<PathBuf>,
    entries: Vec<Entry>,
}

impl Upper {
    fn walk(&mut self, rel: &Path) -> Result<()> {
        let dir = self.root.join(rel);
        let mut names: Vec<_> = match std::fs::read_dir(&dir) {
            Ok(rd) => rd
                .map(|e| e.map(|e| e.file_name()))
                .collect::<std::io::Result<_>>()
                .map_err(|e| Error::io(&dir, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && rel.as_os_str().is_empty() => {
                return Ok(())
            }
            Err(e) => return Err(Error::io(&dir, e)),
        };
        names.sort();
        for n in names {
            let rel = rel.join(&n);
            let p = self.root.join(&rel);
            let meta = std::fs::symlink_metadata(&p).map_err(|e| Error::io(&p, e))?;
            if meta.file_type().is_socket() {
                continue;
            }
            let lower = lower_entry(&self.lowers, &rel);
            if is_whiteout(&meta) {
                if lower.is_some() {
                    self.entries.push(Entry {
                        rel,
                        meta,
                        kind: Kind::Deleted,
                    });
                }
                continue;
            }
            let abs = format!("/{}", rel.display());
            if lower.is_none() && (MOUNT_TARGETS.contains(&abs.as_str())) && is_empty(&p, &meta) {
                continue;
            }
            let kind = match &lower {
                None => Kind::Added,
                Some(_) if meta.is_dir() && is_opaque(&p) => Kind::Opaque,
                Some(l) if meta.is_dir() && l.is_dir() => {
                    let same =
                        l.mode() == meta.mode() && l.uid() == meta.uid() && l.gid() == meta.gid();
                    if same {
                        Kind::Parent
                    } else {
                        Kind::Changed
                    }
                }
                Some(_) => Kind::Changed,
            };
            let is_dir = meta.is_dir();
            let at = self.entries.len();
            self.entries.push(Entry {
                rel: rel.clone(),
                meta,
                kind,
            });
            if is_dir {
                self.walk(&rel)?;
                // A directory the image has shows as changed when anything under it does.
                if self.entries[at].kind == Kind::Parent && self.entries.len() == at + 1 {
                    self.entries.pop();
                }
            }
        }
        Ok(())
    }
}

fn upper_of(layout: &Layout, store: &Store, id: &str) -> Result<(Upper, ImageRecord)> {
    let cfg = layout.load_config(id)?;
    let rec = store
        .records()?
        .images
        .get(&cfg.image_manifest)
        .cloned()
        .ok_or_else(|| {
            Error::Invalid(format!(
                "the image of container {id} ({}) is not in the store",
                cfg.image_id
            ))
        })?;
    let lowers = berth_image::layers::lower_dirs(store, &rec.chain_ids)?;
    let root = berth_image::overlay::container_dir(store, id)?.join("upper");
    let mut u = Upper {
        root,
        lowers,
        entries: vec![],
    };
    u.walk(Path::new(""))?;
    Ok((u, rec))
}

/// docker's `diff`: every path the container added, changed or deleted, sorted.
pub fn diff(layout: &Layout, store: &Store, id: &str) -> Result<Vec<Change>> {
    let (u, _) = upper_of(layout, store, id)?;
    let mut out: Vec<Change> = u
        .entries
        .iter()
        .map(|e| Change {
            kind: match e.kind {
                Kind::Added => 'A',
                Kind::Deleted | Kind::Opaque => 'D',
                _ => 'C',
            },
            path: format!("/{}", e.rel.display()),
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Hashes what goes through it.
struct Hashing<W> {
    inner: W,
    h: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(b)?;
        self.h.update(&b[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn empty_file(
    b: &mut tar::Builder<impl Write>,
    name: &Path,
    like: &Metadata,
    clamp: Option<u64>,
) -> Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(0);
    h.set_mode(0o644);
    let mtime = like.mtime().max(0) as u64;
    h.set_mtime(clamp.map_or(mtime, |c| mtime.min(c)));
    b.append_data(&mut h, name, std::io::empty())
        .map_err(|e| Error::io(name, e))
}

/// One entry as `append_path_with_name` writes it (mode, ids, device numbers), its
/// mtime clamped to `clamp` when given (reproducible builds).
/// The xattr holding a file's capabilities.
pub const CAPS_XATTR: &str = "security.capability";

fn append_entry(
    b: &mut tar::Builder<impl Write>,
    path: &Path,
    name: &Path,
    meta: &Metadata,
    clamp: Option<u64>,
) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
    let mtime = meta.mtime().max(0) as u64;
    h.set_mtime(clamp.map_or(mtime, |c| mtime.min(c)));
    let ft = meta.file_type();
    if ft.is_file() {
        // File capabilities (`setcap` in a RUN), the one xattr docker's layers carry.
        let mut cap = [0u8; 64];
        if let Ok(n) = rustix::fs::lgetxattr(path, CAPS_XATTR, &mut cap) {
            b.append_pax_extensions([("SCHILY.xattr.security.capability", &cap[..n])])?;
        }
        let f = std::fs::File::open(path)?;
        b.append_data(&mut h, name, f)
    } else if ft.is_symlink() {
        h.set_size(0);
        let target = std::fs::read_link(path)?;
        b.append_link(&mut h, name, target)
    } else {
        h.set_size(0);
        if ft.is_char_device() || ft.is_block_device() {
            let d = meta.rdev();
            h.set_device_major((((d >> 8) & 0xfff) | ((d >> 32) & !0xfff)) as u32)?;
            h.set_device_minor(((d & 0xff) | ((d >> 12) & !0xff)) as u32)?;
        }
        b.append_data(&mut h, name, std::io::empty())
    }
}

/// What `upper` (an overlay upper directory over `lowers`, topmost first) changed, as an
/// OCI layer tar in the store, as `commit` makes it (whiteouts, opaque directories, the
/// runtime's empty mount points left out); `clamp` caps every mtime (reproducible
/// builds), `skip` leaves out paths (relative, no leading `/`) such as a build's mount
/// points. Returns (digest, size): the tar is uncompressed, so the digest is its diff ID.
pub fn layer_from_upper(
    store: &Store,
    upper: &Path,
    lowers: &[PathBuf],
    clamp: Option<u64>,
    skip: &[PathBuf],
) -> Result<(String, u64)> {
    layer_from_upper_listed(store, upper, lowers, clamp, skip).map(|x| x.0)
}

/// [`layer_from_upper`], and the paths of the upper directory (relative) that the layer
/// holds: a whiteout's own path for a deletion, every directory above an entry.
pub fn layer_from_upper_listed(
    store: &Store,
    upper: &Path,
    lowers: &[PathBuf],
    clamp: Option<u64>,
    skip: &[PathBuf],
) -> Result<((String, u64), Vec<PathBuf>)> {
    let mut u = Upper {
        root: upper.to_path_buf(),
        lowers: lowers.to_vec(),
        entries: vec![],
    };
    u.walk(Path::new(""))?;
    u.entries.retain(|e| !skip.contains(&e.rel));
    let layer = write_layer(store, &u, clamp)?;
    Ok((layer, u.entries.into_iter().map(|e| e.rel).collect()))
}

/// Writes the upper directory as an OCI layer tar into the store; returns (digest, size).
fn write_layer(store: &Store, u: &Upper, clamp: Option<u64>) -> Result<(String, u64)> {
    let t = store.temp_file()?;
    let tp = t.path().to_path_buf();
    let digest = {
        let mut w = Hashing {
            inner: std::io::BufWriter::new(t.as_file()),
            h: Sha256::new(),
        };
        let mut b = tar::Builder::new(&mut w);
        b.mode(tar::HeaderMode::Complete);
        b.follow_symlinks(false);
        for e in &u.entries {
            let io = |err| Error::io(&e.rel, err);
            match e.kind {
                Kind::Deleted => {
                    let name = e.rel.file_name().expect("entry has a name");
                    let mut wh = std::ffi::OsString::from(".wh.");
                    wh.push(name);
                    empty_file(&mut b, &e.rel.with_file_name(wh), &e.meta, clamp)?;
                }
                _ => {
                    append_entry(&mut b, &u.root.join(&e.rel), &e.rel, &e.meta, clamp)
                        .map_err(io)?;
                    if e.meta.is_dir() && is_opaque(&u.root.join(&e.rel)) {
                        empty_file(&mut b, &e.rel.join(".wh..wh..opq"), &e.meta, clamp)?;
                    }
                }
            }
        }
        b.finish().map_err(|e| Error::io(&tp, e))?;
        drop(b);
        w.flush().map_err(|e| Error::io(&tp, e))?;
        format!("sha256:{}", hex_of(&w.h.finalize()))
    };
    let size = t.as_file().metadata().map_err(|e| Error::io(&tp, e))?.len();
    if !store.has_blob(&digest) {
        store.commit_blob(t, &digest)?;
    }
    Ok((digest, size))
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// docker's commit config: the container's (the image's with the run's overrides), then
/// the `-c` lines on top.
fn container_config(layout: &Layout, id: &str, image: &Value, changes: &Value) -> Result<Value> {
    let c = layout.load_config(id)?;
    let o = &c.options;
    let mut cfg = image.as_object().cloned().unwrap_or_default();
    let set_env = |cfg: &mut serde_json::Map<String, Value>, list: &[String]| {
        let env = cfg.entry("Env").or_insert_with(|| json!([]));
        if !env.is_array() {
            *env = json!([]);
        }
        let arr = env.as_array_mut().expect("array");
        for kv in list {
            let k = kv.split_once('=').map(|x| x.0).unwrap_or(kv);
            arr.retain(|e| e.as_str().and_then(|e| e.split_once('=')).map(|x| x.0) != Some(k));
            arr.push(json!(kv));
        }
    };
    set_env(&mut cfg, &o.env);
    if let Some(e) = &o.entrypoint {
        cfg.insert(
            "Entrypoint".into(),
            if e.is_empty() { Value::Null } else { json!(e) },
        );
        // docker: a new entrypoint drops the image's command.
        if o.cmd.is_none() {
            cfg.insert("Cmd".into(), Value::Null);
        }
    }
    if let Some(cmd) = &o.cmd {
        cfg.insert("Cmd".into(), json!(cmd));
    }
    if let Some(w) = &o.workdir {
        cfg.insert("WorkingDir".into(), json!(w));
    }
    if let Some(u) = &o.user {
        cfg.insert("User".into(), json!(u));
    }
    let merge_map =
        |cfg: &mut serde_json::Map<String, Value>, key: &str, add: Vec<(String, Value)>| {
            if add.is_empty() {
                return;
            }
            let m = cfg.entry(key).or_insert_with(|| json!({}));
            if !m.is_object() {
                *m = json!({});
            }
            let m = m.as_object_mut().expect("object");
            for (k, v) in add {
                m.insert(k, v);
            }
            m.sort_keys();
        };
    merge_map(
        &mut cfg,
        "Labels",
        o.labels
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect(),
    );
    let mut ports = Vec::new();
    for e in &o.expose {
        for (port, proto) in crate::net::parse_expose(e)? {
            ports.push((format!("{port}/{proto}"), json!({})));
        }
    }
    for p in &o.publish {
        for s in berth_network::ports::parse_publish(p)? {
            ports.push((format!("{}/{}", s.container_port, s.proto), json!({})));
        }
    }
    merge_map(&mut cfg, "ExposedPorts", ports);
    // The -c lines.
    for (k, v) in changes.as_object().into_iter().flatten() {
        match k.as_str() {
            "Env" => {
                let list: Vec<String> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect();
                set_env(&mut cfg, &list);
            }
            "Labels" | "ExposedPorts" | "Volumes" => merge_map(
                &mut cfg,
                k,
                v.as_object()
                    .into_iter()
                    .flatten()
                    .map(|(a, b)| (a.clone(), b.clone()))
                    .collect(),
            ),
            _ => {
                cfg.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(Value::Object(cfg))
}

/// docker's `commit`: a new image of the container's image layers plus one layer of what
/// the container changed; returns its ID. A running container is paused meanwhile when
/// `pause` is set.
pub fn commit(layout: &Layout, store: &Store, id: &str, o: &CommitOptions) -> Result<String> {
    let tag = o
        .reference
        .as_deref()
        .map(|r| {
            let p = Reference::parse(r).map_err(|e| Error::Invalid(e.to_string()))?;
            if p.digest.is_some() {
                return Err(Error::Invalid(format!(
                    "invalid reference format: {r:?} names a digest; commit needs a tag"
                )));
            }
            Ok(p)
        })
        .transpose()?;
    let changes = crate::images::apply_changes(&o.changes)?;
    let s = crate::status::current(layout, id)?;
    let pause = o.pause && s.status == crate::record::Status::Running;
    if pause {
        crate::control::pause(layout, id, true)?;
    }
    let r = build(layout, store, id, o, tag.as_ref(), &changes);
    if pause {
        let u = crate::control::pause(layout, id, false);
        let id = r?;
        u?;
        return Ok(id);
    }
    r
}

fn build(
    layout: &Layout,
    store: &Store,
    id: &str,
    o: &CommitOptions,
    tag: Option<&Reference>,
    changes: &Value,
) -> Result<String> {
    let _gc = store.lock_shared()?;
    let (u, rec) = upper_of(layout, store, id)?;
    let (ldigest, lsize) = write_layer(store, &u, None)?;
    let mut cfg: Value = serde_json::from_slice(&store.read_blob(&rec.config)?)
        .map_err(|e| Error::Json(PathBuf::from(&rec.config), e))?;
    let m: mf::Manifest = serde_json::from_slice(&store.read_blob(&rec.manifest)?)
        .map_err(|e| Error::Json(PathBuf::from(&rec.manifest), e))?;
    let now = berth_image::archive::rfc3339_now();
    let new_config = container_config(layout, id, &cfg["config"], changes)?;
    cfg["config"] = new_config;
    cfg["created"] = json!(now);
    cfg["container"] = json!(id);
    match &o.author {
        Some(a) => cfg["author"] = json!(a),
        None => {
            if let Some(m) = cfg.as_object_mut() {
                m.remove("author");
            }
        }
    }
    match &o.message {
        Some(c) => cfg["comment"] = json!(c),
        None => {
            if let Some(m) = cfg.as_object_mut() {
                m.remove("comment");
            }
        }
    }
    if !cfg["rootfs"]["diff_ids"].is_array() {
        return Err(Error::Invalid(format!(
            "the config of image {} has no rootfs.diff_ids",
            rec.config
        )));
    }
    cfg["rootfs"]["diff_ids"]
        .as_array_mut()
        .expect("array")
        .push(json!(ldigest));
    let c = layout.load_config(id)?;
    let mut h = json!({"created": now, "created_by": shell_words(&c.path, &c.args)});
    if let Some(a) = &o.author {
        h["author"] = json!(a);
    }
    if let Some(m) = &o.message {
        h["comment"] = json!(m);
    }
    if !cfg["history"].is_array() {
        cfg["history"] = json!([]);
    }
    cfg["history"].as_array_mut().expect("array").push(h);
    let cfg_bytes = serde_json::to_vec(&cfg).expect("json");
    let cdigest = store.write_blob(&cfg_bytes)?;
    let mut layers = m.layers.clone();
    layers.push(Descriptor::new(mf::OCI_LAYER, ldigest, lsize));
    let nm = mf::Manifest {
        schema_version: 2,
        media_type: Some(mf::OCI_MANIFEST.into()),
        config: Descriptor::new(mf::OCI_CONFIG, cdigest, cfg_bytes.len() as u64),
        layers,
        annotations: None,
    };
    let mbody = serde_json::to_vec(&nm).expect("json");
    let ic: ImageConfig = serde_json::from_slice(&cfg_bytes)
        .map_err(|e| Error::Json(PathBuf::from("image config"), e))?;
    let tags: Vec<String> = tag.iter().map(|t| t.to_string()).collect();
    let opts = berth_image::unpack::UnpackOptions::default();
    let rec = berth_image::archive::commit_image(store, &mbody, &nm, &ic, &tags, &opts)?;
    Ok(rec.config)
}

/// The container's command as docker's history shows it (`/bin/sh -c echo hi`).
fn shell_words(path: &str, args: &[String]) -> String {
    std::iter::once(path)
        .chain(args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The entries of a layer blob: (name, mtime).
    fn entries(store: &Store, digest: &str) -> Vec<(String, u64)> {
        let f = std::fs::File::open(store.blob_path(digest).unwrap()).unwrap();
        let mut a = tar::Archive::new(f);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().mtime().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn layer_from_upper_clamps_mtimes_sorts_and_skips() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path().join("root")).unwrap();
        let upper = d.path().join("upper");
        std::fs::create_dir_all(upper.join("b/mnt")).unwrap();
        std::fs::write(upper.join("b/f"), "x").unwrap();
        std::fs::write(upper.join("a"), "y").unwrap();
        let (digest, _) =
            layer_from_upper(&store, &upper, &[], Some(0), &[PathBuf::from("b/mnt")]).unwrap();
        assert_eq!(
            entries(&store, &digest),
            [("a".into(), 0), ("b".into(), 0), ("b/f".into(), 0)]
        );
        // Without a clamp the files' own times stay; the same input, the same digest.
        let (other, _) = layer_from_upper(&store, &upper, &[], None, &[]).unwrap();
        assert!(entries(&store, &other).iter().all(|e| e.1 > 0));
        let (again, _) =
            layer_from_upper(&store, &upper, &[], Some(0), &[PathBuf::from("b/mnt")]).unwrap();
        assert_eq!(again, digest);
    }
}
