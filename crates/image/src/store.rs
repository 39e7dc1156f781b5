//! The content store: blobs by digest, image records, layer directories, locks and GC.
//!
//! Layout under the root (0700):
//! `lock`, `images.json`, `blobs/sha256/<hex>`, `tmp/` (in-flight downloads),
//! `layers/<chainid-hex>/{diff,layer.json}`, `layers-tmp/` (in-flight unpacks),
//! `leases/<container-id>.json` (what containers use), `containers/<id>/` (upper/work/merged).

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const DEFAULT_ROOT: &str = "/var/lib/berth";

/// One image: a platform-specific manifest and what it points to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImageRecord {
    pub manifest: String,
    pub config: String,
    /// Layer blob digests, in order.
    pub layers: Vec<String>,
    /// Chain IDs of the unpacked layers, in order.
    pub chain_ids: Vec<String>,
    /// Index/list this manifest was selected from, if any (kept so it can be re-pushed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    /// `name@digest` as known from registries.
    #[serde(default)]
    pub repo_digests: Vec<String>,
    /// docker's image size: the sum of the unpacked layers' sizes (not the compressed
    /// blobs'), the same whether the image was pulled, loaded or imported.
    pub size: u64,
    /// Seconds since the epoch when stored.
    pub stored_at: u64,
}

impl ImageRecord {
    /// Docker's image ID: the config digest.
    pub fn id(&self) -> &str {
        &self.config
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Records {
    /// Images by manifest digest.
    pub images: BTreeMap<String, ImageRecord>,
    /// Full reference (`host/repo:tag`) to manifest digest.
    pub tags: BTreeMap<String, String>,
}

impl Records {
    pub fn tags_of(&self, manifest: &str) -> Vec<String> {
        self.tags
            .iter()
            .filter(|(_, m)| *m == manifest)
            .map(|(t, _)| t.clone())
            .collect()
    }
}

/// What a container holds on to, so GC keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lease {
    pub image: String,
    pub chain_ids: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// A held flock on `<root>/lock`; released on drop.
pub struct Lock {
    _file: File,
}

/// What GC removed.
#[derive(Debug, Default, Clone)]
pub struct GcReport {
    pub blobs: Vec<String>,
    pub layers: Vec<String>,
    pub bytes: u64,
}

fn mkdir(p: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
        .map_err(|e| Error::io(p, e))
}

/// What a path under the storage root must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
}

fn untrusted(p: &Path, reason: String) -> Error {
    Error::Untrusted {
        path: p.display().to_string(),
        reason,
    }
}

/// Refuses `st` (of path `p`) unless it is a `kind` (a symlink never is) that the user
/// running berth owns and nobody else may write: root must never act inside a tree
/// another user controls (a planted symlink would redirect its writes).
pub fn check_owned(p: &Path, st: &rustix::fs::Stat, kind: Kind) -> Result<()> {
    use rustix::fs::FileType;
    let ft = FileType::from_raw_mode(st.st_mode);
    let want = match kind {
        Kind::Dir => FileType::Directory,
        Kind::File => FileType::RegularFile,
    };
    if ft != want {
        let what = match ft {
            FileType::Symlink => "a symlink".to_string(),
            FileType::Directory => "a directory".to_string(),
            FileType::RegularFile => "a regular file".to_string(),
            other => format!("a {other:?}"),
        };
        let need = match kind {
            Kind::Dir => "a directory",
            Kind::File => "a regular file",
        };
        return Err(untrusted(p, format!("it is {what}, not {need}")));
    }
    let me = rustix::process::geteuid().as_raw();
    if st.st_uid != me {
        return Err(untrusted(
            p,
            format!(
                "it is owned by uid {}, not by uid {me} who runs berth (another user could \
                 redirect what berth writes there)",
                st.st_uid
            ),
        ));
    }
    if st.st_mode & 0o022 != 0 {
        return Err(untrusted(
            p,
            format!(
                "it is writable by other users (mode {:04o}); chmod go-w it",
                st.st_mode & 0o7777
            ),
        ));
    }
    Ok(())
}

/// The storage root: created (0700) when missing, else checked with [`check_owned`]. A
/// symlink as the root itself is followed (an administrator's choice of where it lives).
pub fn private_root(root: &Path) -> Result<()> {
    match rustix::fs::stat(root) {
        Ok(st) => check_owned(root, &st, Kind::Dir),
        Err(rustix::io::Errno::NOENT) => {
            mkdir(root)?;
            let st = rustix::fs::stat(root).map_err(|e| Error::io(root, e.into()))?;
            check_owned(root, &st, Kind::Dir)
        }
        Err(e) => Err(Error::io(root, e.into())),
    }
}

/// A directory inside the (already checked) root: made 0700 when missing, else checked
/// with [`check_owned`] without following a symlink. Parents must be checked first.
pub fn private_dir(p: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match rustix::fs::lstat(p) {
        Ok(st) => check_owned(p, &st, Kind::Dir),
        Err(rustix::io::Errno::NOENT) => match std::fs::DirBuilder::new().mode(0o700).create(p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let st = rustix::fs::lstat(p).map_err(|e| Error::io(p, e.into()))?;
                check_owned(p, &st, Kind::Dir)
            }
            Err(e) => Err(Error::io(p, e)),
        },
        Err(e) => Err(Error::io(p, e.into())),
    }
}

/// Checks `p` with [`check_owned`] when it exists (not following a symlink).
pub fn check_if_present(p: &Path, kind: Kind) -> Result<()> {
    match rustix::fs::lstat(p) {
        Ok(st) => check_owned(p, &st, kind),
        Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(Error::io(p, e.into())),
    }
}

pub fn sha256_digest(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// The hex part of a sha256 digest, validated (it becomes a file name).
pub fn digest_hex(d: &str) -> Result<&str> {
    berth_registry::reference::validate_digest(d).map_err(|_| Error::BadDigest(d.to_string()))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub fn fsync_dir(p: &Path) -> Result<()> {
    File::open(p)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(p, e))
}

/// Makes files written without sync (atomic_write_opts(.., false)) durable, with their
/// names: each file, then each directory holding them, once. Written first and synced
/// together, they cost one journal commit (ext4, xfs) instead of one per file.
pub fn sync_paths(files: &[&Path]) -> Result<()> {
    for f in files {
        File::open(f)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(f, e))?;
    }
    let dirs: Vec<&Path> = files.iter().filter_map(|f| f.parent()).collect();
    for (i, d) in dirs.iter().enumerate() {
        if !dirs[..i].contains(d) {
            fsync_dir(d)?;
        }
    }
    Ok(())
}

/// The prefix of temp files this process makes (`.tmp-<pid>-`): one whose process is
/// gone was left by a crash and may be deleted (the engine's sweep does).
pub fn temp_prefix() -> String {
    format!(".tmp-{}-", std::process::id())
}

/// The pid in a name made with [`temp_prefix`].
pub fn temp_owner(name: &str) -> Option<i32> {
    name.strip_prefix(".tmp-")?.split('-').next()?.parse().ok()
}

/// Writes a file atomically: temp file in the same dir, fsync, rename, fsync dir.
pub fn atomic_write(path: &Path, data: &[u8]) -> Result<()> {
    atomic_write_opts(path, data, true)
}

/// [`atomic_write`]; without `sync` the file is still replaced atomically for readers but
/// nothing waits for the disk (records a crash may lose).
pub fn atomic_write_opts(path: &Path, data: &[u8], sync: bool) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::io(path, std::io::ErrorKind::InvalidInput.into()))?;
    let mut t = tempfile::Builder::new()
        .prefix(&temp_prefix())
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    t.write_all(data)
        .and_then(|_| if sync { t.as_file().sync_all() } else { Ok(()) })
        .map_err(|e| Error::io(t.path(), e))?;
    t.persist(path).map_err(|e| Error::io(path, e.error))?;
    if sync {
        fsync_dir(dir)?;
    }
    Ok(())
}

impl Store {
    /// Opens (creating if needed) a store at `root`.
    ///
    /// The root and the directories it holds must belong to the user running berth and be
    /// writable by nobody else (see [`check_owned`]); a few stat calls, no tree walk.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let root = root.into();
        private_root(&root)?;
        for d in [
            "blobs",
            "blobs/sha256",
            "tmp",
            "layers",
            "layers-tmp",
            "leases",
            "containers",
        ] {
            private_dir(&root.join(d))?;
        }
        for f in ["lock", "images.json", "build-cache.json"] {
            check_if_present(&root.join(f), Kind::File)?;
        }
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io(&root, e))?;
        Ok(Store { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn lock(&self, op: rustix::fs::FlockOperation) -> Result<Lock> {
        self.lock_file("lock", op)
    }

    fn lock_file(&self, name: &str, op: rustix::fs::FlockOperation) -> Result<Lock> {
        use std::os::unix::fs::OpenOptionsExt;
        let p = self.root.join(name);
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&p)
            .map_err(|e| Error::io(&p, e))?;
        rustix::fs::flock(&f, op).map_err(|e| Error::io(&p, e.into()))?;
        Ok(Lock { _file: f })
    }

    /// Shared lock: many readers/pullers at once; GC and record edits wait.
    pub fn lock_shared(&self) -> Result<Lock> {
        self.lock(rustix::fs::FlockOperation::LockShared)
    }

    /// Exclusive lock, for GC and anything that deletes.
    pub fn lock_exclusive(&self) -> Result<Lock> {
        self.lock(rustix::fs::FlockOperation::LockExclusive)
    }

    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.root.join("blobs/sha256").join(digest_hex(digest)?))
    }

    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).map(|p| p.is_file()).unwrap_or(false)
    }

    /// Reads a (small) blob and checks its digest.
    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        let p = self.blob_path(digest)?;
        let b = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
        let actual = sha256_digest(&b);
        if actual != digest {
            return Err(Error::Corrupt {
                what: p.display().to_string(),
                expected: digest.into(),
                actual,
            });
        }
        Ok(b)
    }

    /// Stores bytes as a blob; returns its digest.
    pub fn write_blob(&self, data: &[u8]) -> Result<String> {
        let d = sha256_digest(data);
        if !self.has_blob(&d) {
            let mut t = self.temp_file()?;
            t.write_all(data).map_err(|e| Error::io(t.path(), e))?;
            self.commit_blob(t, &d)?;
        }
        Ok(d)
    }

    /// A temp file for an in-flight blob. Not visible as a blob until [`Store::commit_blob`].
    pub fn temp_file(&self) -> Result<tempfile::NamedTempFile> {
        let d = self.root.join("tmp");
        tempfile::Builder::new()
            .prefix("ingest-")
            .tempfile_in(&d)
            .map_err(|e| Error::io(&d, e))
    }

    /// fsyncs and renames a fully written, already verified temp file into place.
    pub fn commit_blob(&self, t: tempfile::NamedTempFile, digest: &str) -> Result<()> {
        let dest = self.blob_path(digest)?;
        t.as_file()
            .sync_data()
            .map_err(|e| Error::io(t.path(), e))?;
        t.persist(&dest).map_err(|e| Error::io(&dest, e.error))?;
        fsync_dir(dest.parent().expect("blob has a parent"))
    }

    /// Copies a file into the store, hashing it on the way; returns (digest, size).
    pub fn ingest_reader(&self, r: &mut dyn std::io::Read) -> Result<(String, u64)> {
        let mut t = self.temp_file()?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut n = 0u64;
        loop {
            let k = r.read(&mut buf).map_err(|e| Error::io(t.path(), e))?;
            if k == 0 {
                break;
            }
            h.update(&buf[..k]);
            t.write_all(&buf[..k]).map_err(|e| Error::io(t.path(), e))?;
            n += k as u64;
        }
        let d = format!("sha256:{}", hex::encode(h.finalize()));
        if !self.has_blob(&d) {
            self.commit_blob(t, &d)?;
        }
        Ok((d, n))
    }

    fn records_path(&self) -> PathBuf {
        self.root.join("images.json")
    }

    pub fn records(&self) -> Result<Records> {
        let p = self.records_path();
        match std::fs::read(&p) {
            Ok(b) => {
                serde_json::from_slice(&b).map_err(|e| Error::Json(p.display().to_string(), e))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Records::default()),
            Err(e) => Err(Error::io(&p, e)),
        }
    }

    /// Read-modify-write of the records under `records.lock` (separate from the GC lock so
    /// a pull can record its image while still holding the GC lock shared).
    pub fn update_records<T>(&self, f: impl FnOnce(&mut Records) -> Result<T>) -> Result<T> {
        let _l = self.lock_file("records.lock", rustix::fs::FlockOperation::LockExclusive)?;
        let mut r = self.records()?;
        let out = f(&mut r)?;
        let body = serde_json::to_vec_pretty(&r).expect("records serialise");
        atomic_write(&self.records_path(), &body)?;
        Ok(out)
    }

    /// Adds an image and points `tag` (a full reference string) at it.
    pub fn add_image(&self, mut rec: ImageRecord, tag: Option<&str>) -> Result<()> {
        rec.stored_at = now();
        self.update_records(|r| {
            let m = rec.manifest.clone();
            match r.images.get_mut(&m) {
                Some(old) => {
                    for d in rec.repo_digests {
                        if !old.repo_digests.contains(&d) {
                            old.repo_digests.push(d);
                        }
                    }
                    if rec.index.is_some() {
                        old.index = rec.index;
                    }
                }
                None => {
                    r.images.insert(m.clone(), rec);
                }
            }
            if let Some(t) = tag {
                r.tags.insert(t.to_string(), m);
            }
            Ok(())
        })
    }

    /// Finds an image by reference, full or short ID (config digest), or manifest digest.
    pub fn resolve(&self, records: &Records, what: &str) -> Result<ImageRecord> {
        if let Ok(r) = berth_registry::Reference::parse(what) {
            if let Some(rec) = records
                .tags
                .get(&r.to_string())
                .and_then(|m| records.images.get(m))
            {
                return Ok(rec.clone());
            }
            if let Some(d) = &r.digest {
                // name@digest of a manifest, or of the index it was selected from.
                let name = r.name();
                let hit = records.images.values().find(|i| {
                    (i.manifest == *d || i.index.as_deref() == Some(d.as_str()))
                        && i.repo_digests
                            .iter()
                            .any(|rd| rd.split('@').next() == Some(name.as_str()))
                });
                if let Some(rec) = hit {
                    return Ok(rec.clone());
                }
            }
        }
        let id = what.strip_prefix("sha256:").unwrap_or(what);
        if id.len() >= 4 && id.chars().all(|c| c.is_ascii_hexdigit()) {
            let hits: Vec<&ImageRecord> = records
                .images
                .values()
                .filter(|i| {
                    i.config.trim_start_matches("sha256:").starts_with(id)
                        || i.manifest.trim_start_matches("sha256:").starts_with(id)
                })
                .collect();
            let ids: BTreeSet<&str> = hits.iter().map(|i| i.config.as_str()).collect();
            match ids.len() {
                0 => {}
                1 => return Ok(hits[0].clone()),
                _ => return Err(Error::Ambiguous(what.to_string())),
            }
        }
        Err(Error::NoSuchImage(what.to_string()))
    }

    /// Records that a container uses an image (GC keeps it until [`Store::release`]).
    pub fn lease(&self, container_id: &str, rec: &ImageRecord) -> Result<()> {
        self.lease_opts(container_id, rec, true)
    }

    /// [`Store::lease`]; without `sync`, for a container removed at its exit: a crash may
    /// lose the lease, and with it nothing the container still needs.
    pub fn lease_opts(&self, container_id: &str, rec: &ImageRecord, sync: bool) -> Result<()> {
        let p = self.lease_path(container_id)?;
        let l = Lease {
            image: rec.manifest.clone(),
            chain_ids: rec.chain_ids.clone(),
        };
        atomic_write_opts(&p, &serde_json::to_vec(&l).expect("lease serialises"), sync)
    }

    /// Where a container's lease lives.
    pub fn lease_path(&self, container_id: &str) -> Result<PathBuf> {
        check_id(container_id)?;
        Ok(self
            .root
            .join("leases")
            .join(format!("{container_id}.json")))
    }

    pub fn release(&self, container_id: &str) -> Result<()> {
        check_id(container_id)?;
        let p = self
            .root
            .join("leases")
            .join(format!("{container_id}.json"));
        match std::fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(&p, e)),
        }
    }

    pub fn leases(&self) -> Result<BTreeMap<String, Lease>> {
        let d = self.root.join("leases");
        let mut out = BTreeMap::new();
        for e in std::fs::read_dir(&d).map_err(|e| Error::io(&d, e))? {
            let e = e.map_err(|e| Error::io(&d, e))?;
            let name = e.file_name().to_string_lossy().to_string();
            let Some(id) = name.strip_suffix(".json") else {
                continue;
            };
            let b = std::fs::read(e.path()).map_err(|er| Error::io(&e.path(), er))?;
            let l: Lease =
                serde_json::from_slice(&b).map_err(|er| Error::Json(name.clone(), er))?;
            out.insert(id.to_string(), l);
        }
        Ok(out)
    }

    /// Images in use by containers (by manifest digest), for `rmi` refusals.
    pub fn images_in_use(&self) -> Result<BTreeMap<String, Vec<String>>> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (c, l) in self.leases()? {
            m.entry(l.image).or_default().push(c);
        }
        Ok(m)
    }

    /// The build cache's index (`build-cache.json`, written by berth-build): JSON whose
    /// `entries` map cache keys to objects naming a layer `blob` and its `chain_id`,
    /// which GC keeps. `{}` when there is none.
    pub fn build_cache(&self) -> Result<serde_json::Value> {
        let p = self.root.join("build-cache.json");
        match std::fs::read(&p) {
            Ok(b) => {
                serde_json::from_slice(&b).map_err(|e| Error::Json(p.display().to_string(), e))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(serde_json::json!({})),
            Err(e) => Err(Error::io(&p, e)),
        }
    }

    /// Read-modify-write of the build cache's index under its own lock.
    pub fn update_build_cache<T>(
        &self,
        f: impl FnOnce(&mut serde_json::Value) -> Result<T>,
    ) -> Result<T> {
        let _l = self.lock_file(
            "build-cache.lock",
            rustix::fs::FlockOperation::LockExclusive,
        )?;
        let mut v = self.build_cache()?;
        let out = f(&mut v)?;
        let body = serde_json::to_vec(&v).expect("json");
        atomic_write_opts(&self.root.join("build-cache.json"), &body, false)?;
        Ok(out)
    }

    pub fn layer_dir(&self, chain_id: &str) -> Result<PathBuf> {
        Ok(self.root.join("layers").join(digest_hex(chain_id)?))
    }

    /// Deletes every blob, layer and temp file no image or lease uses.
    /// Caller holds the exclusive lock, so no pull is in flight.
    pub fn gc(&self, _lock: &Lock) -> Result<GcReport> {
        let recs = self.records()?;
        let mut keep_blobs = BTreeSet::new();
        let mut keep_layers = BTreeSet::new();
        for i in recs.images.values() {
            keep_blobs.insert(i.manifest.clone());
            keep_blobs.insert(i.config.clone());
            keep_blobs.extend(i.index.iter().cloned());
            keep_blobs.extend(i.layers.iter().cloned());
            keep_layers.extend(i.chain_ids.iter().cloned());
        }
        // The build cache's layers (berth-build) stay until `builder prune` drops them.
        let cache = self.build_cache()?;
        for e in cache["entries"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|x| x.1)
        {
            keep_blobs.extend(e["blob"].as_str().map(str::to_string));
            keep_blobs.extend(e["config"].as_str().map(str::to_string));
            keep_layers.extend(e["chain_id"].as_str().map(str::to_string));
        }
        for l in self.leases()?.values() {
            keep_blobs.insert(l.image.clone());
            if let Some(i) = recs.images.get(&l.image) {
                keep_blobs.insert(i.config.clone());
                keep_blobs.extend(i.layers.iter().cloned());
            }
            keep_layers.extend(l.chain_ids.iter().cloned());
        }
        let mut rep = GcReport::default();
        let bdir = self.root.join("blobs/sha256");
        for e in std::fs::read_dir(&bdir).map_err(|e| Error::io(&bdir, e))? {
            let e = e.map_err(|e| Error::io(&bdir, e))?;
            let d = format!("sha256:{}", e.file_name().to_string_lossy());
            if !keep_blobs.contains(&d) {
                rep.bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
                std::fs::remove_file(e.path()).map_err(|er| Error::io(&e.path(), er))?;
                rep.blobs.push(d);
            }
        }
        let ldir = self.root.join("layers");
        for e in std::fs::read_dir(&ldir).map_err(|e| Error::io(&ldir, e))? {
            let e = e.map_err(|e| Error::io(&ldir, e))?;
            let d = format!("sha256:{}", e.file_name().to_string_lossy());
            if !keep_layers.contains(&d) {
                remove_tree(&e.path())?;
                rep.layers.push(d);
            }
        }
        // Leftovers of interrupted pulls and unpacks.
        for sub in ["tmp", "layers-tmp"] {
            let d = self.root.join(sub);
            for e in std::fs::read_dir(&d).map_err(|e| Error::io(&d, e))? {
                let e = e.map_err(|e| Error::io(&d, e))?;
                remove_tree(&e.path())?;
            }
        }
        Ok(rep)
    }
}

/// Removes a file or directory tree without following symlinks (std's remove_dir_all is
/// symlink-safe on Linux: it uses openat/unlinkat with O_NOFOLLOW).
pub fn remove_tree(p: &Path) -> Result<()> {
    let md = match std::fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(p, e)),
    };
    if md.is_dir() {
        std::fs::remove_dir_all(p).map_err(|e| Error::io(p, e))
    } else {
        std::fs::remove_file(p).map_err(|e| Error::io(p, e))
    }
}

/// Container IDs become file names: keep them plain.
pub fn check_id(id: &str) -> Result<()> {
    if id.is_empty()
        || id.len() > 128
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        || id.starts_with('.')
    {
        return Err(Error::BadId(id.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_stored_once_and_verified() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path().join("root")).unwrap();
        let a = s.write_blob(b"hello").unwrap();
        assert_eq!(s.write_blob(b"hello").unwrap(), a);
        assert_eq!(s.read_blob(&a).unwrap(), b"hello");
        std::fs::write(s.blob_path(&a).unwrap(), b"tampered").unwrap();
        assert!(matches!(s.read_blob(&a), Err(Error::Corrupt { .. })));
        assert!(s.blob_path("sha256:../../etc").is_err());
    }

    #[test]
    fn gc_keeps_the_build_cache_until_it_is_cleared() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path().join("root")).unwrap();
        let l = s.write_blob(b"cached layer").unwrap();
        s.update_build_cache(|v| {
            v["entries"]["k"] = serde_json::json!({"blob": l, "chain_id": l});
            Ok(())
        })
        .unwrap();
        let lock = s.lock_exclusive().unwrap();
        assert!(s.gc(&lock).unwrap().blobs.is_empty());
        assert!(s.has_blob(&l));
        s.update_build_cache(|v| {
            v["entries"] = serde_json::json!({});
            Ok(())
        })
        .unwrap();
        assert_eq!(s.gc(&lock).unwrap().blobs, vec![l.clone()]);
        assert!(!s.has_blob(&l));
    }

    #[test]
    fn gc_keeps_used_and_leased() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path().join("root")).unwrap();
        let m = s.write_blob(b"manifest").unwrap();
        let c = s.write_blob(b"config").unwrap();
        let l = s.write_blob(b"layer").unwrap();
        let orphan = s.write_blob(b"orphan").unwrap();
        let m2 = s.write_blob(b"manifest2").unwrap();
        let rec = ImageRecord {
            manifest: m.clone(),
            config: c.clone(),
            layers: vec![l.clone()],
            chain_ids: vec![],
            index: None,
            repo_digests: vec![],
            size: 5,
            stored_at: 0,
        };
        let lock = s.lock_exclusive().unwrap();
        s.add_image(rec.clone(), Some("docker.io/library/x:latest"))
            .unwrap();
        // An untagged-then-removed image still leased by a container.
        let rec2 = ImageRecord {
            manifest: m2.clone(),
            ..rec.clone()
        };
        s.lease("ctr1", &rec2).unwrap();
        std::fs::write(s.root().join("tmp/ingest-partial"), b"half").unwrap();
        let rep = s.gc(&lock).unwrap();
        assert_eq!(rep.blobs, vec![orphan.clone()]);
        assert!(s.has_blob(&m) && s.has_blob(&c) && s.has_blob(&l) && s.has_blob(&m2));
        assert!(!s.root().join("tmp/ingest-partial").exists());
        s.release("ctr1").unwrap();
        s.gc(&lock).unwrap();
        assert!(!s.has_blob(&m2));
        let recs = s.records().unwrap();
        assert_eq!(s.resolve(&recs, "x").unwrap().manifest, m);
        assert_eq!(s.resolve(&recs, &c[7..19]).unwrap().manifest, m);
        assert!(matches!(s.resolve(&recs, "y"), Err(Error::NoSuchImage(_))));
    }
}
