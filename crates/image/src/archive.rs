//! Offline transport: `save`/`load` in docker-archive and oci-archive formats, and
//! `import` of a rootfs tarball as a one-layer image.

use crate::error::{Error, Result};
use crate::layers::ensure_layers;
use crate::store::{sha256_digest, ImageRecord, Store};
use crate::unpack::UnpackOptions;
use berth_registry::manifest::{
    self as mf, parse_manifest, Compression, Descriptor, ImageConfig, ManifestKind, Platform,
};
use berth_registry::Reference;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    DockerArchive,
    OciArchive,
}

impl std::str::FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Format> {
        match s {
            "docker-archive" | "docker" => Ok(Format::DockerArchive),
            "oci-archive" | "oci" => Ok(Format::OciArchive),
            o => Err(Error::Invalid(format!(
                "unknown archive format {o:?} (docker-archive or oci-archive)"
            ))),
        }
    }
}

/// Most entries and bytes in an archive's small JSON files.
const MAX_JSON: u64 = 8 << 20;
const MAX_ARCHIVE_ENTRIES: usize = 100_000;

fn sniff(path: &Path) -> Result<Compression> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut m = [0u8; 4];
    let n = f.read(&mut m).map_err(|e| Error::io(path, e))?;
    Ok(match &m[..n] {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd] => Compression::Zstd,
        _ => Compression::None,
    })
}

/// sha256 of the decompressed stream (the diffID), bounded by `max`.
fn diff_id_of(path: &Path, c: Compression, max: u64) -> Result<String> {
    let f = std::io::BufReader::new(std::fs::File::open(path).map_err(|e| Error::io(path, e))?);
    let mut r: Box<dyn Read> = match c {
        Compression::None => Box::new(f),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(f)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(f).map_err(|e| Error::io(path, e))?)
        }
    };
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let k = r.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if k == 0 {
            break;
        }
        n += k as u64;
        if n > max {
            return Err(Error::Invalid(format!(
                "{} expands beyond {max} bytes",
                path.display()
            )));
        }
        h.update(&buf[..k]);
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

/// Extracts an archive into a fresh directory: only regular files and directories are
/// created; symlinks (docker save uses them for repeated layers) are kept as aliases.
struct Extracted {
    dir: tempfile::TempDir,
    aliases: BTreeMap<String, String>,
}

impl Extracted {
    fn path(&self, name: &str) -> Result<PathBuf> {
        let mut name = clean_name(name)?;
        for _ in 0..16 {
            match self.aliases.get(&name) {
                Some(t) => name = t.clone(),
                None => return Ok(self.dir.path().join(name)),
            }
        }
        Err(Error::Invalid(format!("archive symlink loop at {name:?}")))
    }

    fn read_json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T> {
        let p = self.path(name)?;
        let f = std::fs::File::open(&p).map_err(|e| Error::io(&p, e))?;
        let mut b = Vec::new();
        f.take(MAX_JSON)
            .read_to_end(&mut b)
            .map_err(|e| Error::io(&p, e))?;
        serde_json::from_slice(&b).map_err(|e| Error::Json(name.to_string(), e))
    }

    fn exists(&self, name: &str) -> bool {
        self.path(name).map(|p| p.is_file()).unwrap_or(false)
    }
}

fn clean_name(n: &str) -> Result<String> {
    let mut parts = Vec::new();
    for c in Path::new(n).components() {
        match c {
            std::path::Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            std::path::Component::CurDir | std::path::Component::RootDir => {}
            _ => {
                return Err(Error::Invalid(format!(
                    "archive entry {n:?} escapes the archive"
                )))
            }
        }
    }
    Ok(parts.join("/"))
}

fn extract(store: &Store, input: impl Read) -> Result<Extracted> {
    let tmpd = store.root().join("tmp");
    let dir = tempfile::Builder::new()
        .prefix("load-")
        .tempdir_in(&tmpd)
        .map_err(|e| Error::io(&tmpd, e))?;
    let mut aliases = BTreeMap::new();
    let mut a = tar::Archive::new(input);
    let mut count = 0;
    for e in a.entries().map_err(|e| Error::io(dir.path(), e))? {
        let mut e = e.map_err(|e| Error::io(dir.path(), e))?;
        count += 1;
        if count > MAX_ARCHIVE_ENTRIES {
            return Err(Error::Invalid("archive has too many entries".into()));
        }
        let raw = e
            .path()
            .map_err(|er| Error::io(dir.path(), er))?
            .to_string_lossy()
            .into_owned();
        let name = clean_name(&raw)?;
        if name.is_empty() {
            continue;
        }
        let dest = dir.path().join(&name);
        match e.header().entry_type() {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(&dest).map_err(|er| Error::io(&dest, er))?
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(p) = dest.parent() {
                    std::fs::create_dir_all(p).map_err(|er| Error::io(p, er))?;
                }
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&dest)
                    .map_err(|er| Error::io(&dest, er))?;
                std::io::copy(&mut e, &mut f).map_err(|er| Error::io(&dest, er))?;
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let t = e
                    .link_name()
                    .map_err(|er| Error::io(&dest, er))?
                    .unwrap_or_default();
                let t = t.to_string_lossy();
                let target = if e.header().entry_type() == tar::EntryType::Symlink {
                    let base = Path::new(&name)
                        .parent()
                        .unwrap_or(Path::new(""))
                        .join(t.as_ref());
                    clean_lexical(&base)?
                } else {
                    clean_name(&t)?
                };
                aliases.insert(name, target);
            }
            other => {
                return Err(Error::Invalid(format!(
                    "archive entry {raw:?} has unsupported type {other:?}"
                )))
            }
        }
    }
    Ok(Extracted { dir, aliases })
}

/// Resolves `..` lexically, refusing to climb out of the archive.
fn clean_lexical(p: &Path) -> Result<String> {
    let mut out: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            std::path::Component::Normal(n) => out.push(n.to_string_lossy().into_owned()),
            std::path::Component::ParentDir => {
                out.pop().ok_or_else(|| {
                    Error::Invalid(format!("archive link {p:?} escapes the archive"))
                })?;
            }
            std::path::Component::CurDir => {}
            _ => return Err(Error::Invalid(format!("archive link {p:?} is absolute"))),
        }
    }
    Ok(out.join("/"))
}

fn layer_media(c: Compression, oci: bool) -> &'static str {
    match (c, oci) {
        (Compression::None, false) => mf::DOCKER_LAYER,
        (Compression::Gzip, false) => mf::DOCKER_LAYER_GZIP,
        (Compression::None, true) => mf::OCI_LAYER,
        (Compression::Gzip, true) => mf::OCI_LAYER_GZIP,
        (Compression::Zstd, _) => mf::OCI_LAYER_ZSTD,
    }
}

/// Stores a manifest + config + layer blobs (already in the store) as an image.
pub fn commit_image(
    store: &Store,
    mbody: &[u8],
    m: &mf::Manifest,
    config: &ImageConfig,
    tags: &[String],
    opts: &UnpackOptions,
) -> Result<ImageRecord> {
    let mdigest = store.write_blob(mbody)?;
    let chain_ids = ensure_layers(store, &m.layers, config, opts)?;
    let size = crate::layers::unpacked_size(store, &chain_ids)?;
    let rec = ImageRecord {
        manifest: mdigest,
        config: m.config.digest.clone(),
        layers: m.layers.iter().map(|l| l.digest.clone()).collect(),
        chain_ids,
        index: None,
        repo_digests: vec![],
        size,
        stored_at: 0,
    };
    store.add_image(rec.clone(), None)?;
    for t in tags {
        store.add_image(rec.clone(), Some(t))?;
    }
    Ok(rec)
}

/// What `load` brought in: per image, its ID and the names it got.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub id: String,
    pub tags: Vec<String>,
}

/// Loads a docker-archive or oci-archive (detected from its contents).
pub fn load(store: &Store, input: impl Read, opts: &UnpackOptions) -> Result<Vec<Loaded>> {
    let _gc = store.lock_shared()?;
    let x = extract(store, input)?;
    if x.exists("index.json") && x.exists("oci-layout") {
        load_oci(store, &x, opts)
    } else if x.exists("manifest.json") {
        load_docker(store, &x, opts)
    } else {
        Err(Error::Invalid("archive is neither a docker-archive (manifest.json) nor an oci-archive (oci-layout, index.json)".into()))
    }
}

fn load_docker(store: &Store, x: &Extracted, opts: &UnpackOptions) -> Result<Vec<Loaded>> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Entry {
        config: String,
        #[serde(default)]
        repo_tags: Option<Vec<String>>,
        layers: Vec<String>,
    }
    let entries: Vec<Entry> = x.read_json("manifest.json")?;
    let mut out = Vec::new();
    for e in entries {
        let cp = x.path(&e.config)?;
        let cfg_bytes = std::fs::read(&cp).map_err(|er| Error::io(&cp, er))?;
        let config: ImageConfig =
            serde_json::from_slice(&cfg_bytes).map_err(|er| Error::Json(e.config.clone(), er))?;
        let cdigest = store.write_blob(&cfg_bytes)?;
        let mut kinds = Vec::new();
        for l in &e.layers {
            kinds.push(sniff(&x.path(l)?)?);
        }
        let oci = kinds.contains(&Compression::Zstd);
        let mut layers = Vec::new();
        for (l, c) in e.layers.iter().zip(kinds) {
            let p = x.path(l)?;
            let mut f = std::fs::File::open(&p).map_err(|er| Error::io(&p, er))?;
            let (digest, size) = store.ingest_reader(&mut f)?;
            layers.push(Descriptor {
                media_type: layer_media(c, oci).into(),
                digest,
                size,
                platform: None,
                annotations: None,
                urls: None,
            });
        }
        let m = mf::Manifest {
            schema_version: 2,
            media_type: Some(
                if oci {
                    mf::OCI_MANIFEST
                } else {
                    mf::DOCKER_MANIFEST
                }
                .into(),
            ),
            config: Descriptor {
                media_type: if oci {
                    mf::OCI_CONFIG
                } else {
                    mf::DOCKER_CONFIG
                }
                .into(),
                digest: cdigest,
                size: cfg_bytes.len() as u64,
                platform: None,
                annotations: None,
                urls: None,
            },
            layers,
            annotations: None,
        };
        let mbody = serde_json::to_vec(&m).expect("manifest serialises");
        let mut tags = Vec::new();
        for t in e.repo_tags.unwrap_or_default() {
            tags.push(Reference::parse(&t)?.to_string());
        }
        let rec = commit_image(store, &mbody, &m, &config, &tags, opts)?;
        out.push(Loaded {
            id: rec.config,
            tags,
        });
    }
    Ok(out)
}

fn load_oci(store: &Store, x: &Extracted, opts: &UnpackOptions) -> Result<Vec<Loaded>> {
    let idx: mf::Index = x.read_json("index.json")?;
    let blob = |d: &Descriptor| -> Result<Vec<u8>> {
        let hexd = crate::store::digest_hex(&d.digest)?;
        if d.size > MAX_JSON {
            return Err(Error::Invalid(format!(
                "{} is too large for a manifest",
                d.digest
            )));
        }
        let b = std::fs::read(x.path(&format!("blobs/sha256/{hexd}"))?)
            .map_err(|e| Error::Io(d.digest.clone(), e))?;
        let got = sha256_digest(&b);
        if got != d.digest {
            return Err(Error::Corrupt {
                what: format!("blob {}", d.digest),
                expected: d.digest.clone(),
                actual: got,
            });
        }
        if b.len() as u64 != d.size {
            return Err(Error::Corrupt {
                what: format!("blob {}", d.digest),
                expected: format!("{} bytes (the descriptor's size)", d.size),
                actual: format!("{} bytes", b.len()),
            });
        }
        Ok(b)
    };
    let mut out = Vec::new();
    for d in &idx.manifests {
        let ann = d.annotations.clone().unwrap_or_default();
        let name = ann
            .get("io.containerd.image.name")
            .or_else(|| {
                ann.get("org.opencontainers.image.ref.name")
                    .filter(|n| n.contains(':') || n.contains('/'))
            })
            .map(|n| Reference::parse(n))
            .transpose()?;
        let mut b = blob(d)?;
        let m = loop {
            match parse_manifest(None, &b)? {
                ManifestKind::Image(m) => break m,
                ManifestKind::Index(i) => {
                    let sel =
                        crate::distribution::select_platform(&i, &Platform::host(), &d.digest)?
                            .clone();
                    b = blob(&sel)?;
                }
            }
        };
        let cfg_bytes = blob(&m.config)?;
        store.write_blob(&cfg_bytes)?;
        let config: ImageConfig = serde_json::from_slice(&cfg_bytes)
            .map_err(|e| Error::Json(m.config.digest.clone(), e))?;
        for l in &m.layers {
            let hexd = crate::store::digest_hex(&l.digest)?;
            let p = x.path(&format!("blobs/sha256/{hexd}"))?;
            let mut f = std::fs::File::open(&p).map_err(|e| Error::io(&p, e))?;
            let (got, size) = store.ingest_reader(&mut f)?;
            if got != l.digest {
                return Err(Error::Corrupt {
                    what: format!("layer {}", l.digest),
                    expected: l.digest.clone(),
                    actual: got,
                });
            }
            if size != l.size {
                return Err(Error::Corrupt {
                    what: format!("layer {}", l.digest),
                    expected: format!("{} bytes (the manifest's size)", l.size),
                    actual: format!("{size} bytes"),
                });
            }
        }
        let tags: Vec<String> = name.iter().map(|r| r.to_string()).collect();
        let rec = commit_image(store, &b, &m, &config, &tags, opts)?;
        out.push(Loaded {
            id: rec.config,
            tags,
        });
    }
    Ok(out)
}

fn append(b: &mut tar::Builder<impl Write>, name: &str, data: &[u8]) -> Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, name, data)
        .map_err(|e| Error::Io(name.to_string(), e))
}

fn append_file(b: &mut tar::Builder<impl Write>, name: &str, path: &Path) -> Result<()> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let len = f.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut h = tar::Header::new_ustar();
    h.set_size(len);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, name, &mut f)
        .map_err(|e| Error::Io(name.to_string(), e))
}

fn load_manifest(store: &Store, rec: &ImageRecord) -> Result<(Vec<u8>, mf::Manifest)> {
    let b = store.read_blob(&rec.manifest)?;
    match parse_manifest(None, &b)? {
        ManifestKind::Image(m) => Ok((b, *m)),
        ManifestKind::Index(_) => Err(Error::Invalid(format!("{} is an index", rec.manifest))),
    }
}

/// Writes images (each with the names to record) as one archive.
pub fn save(
    store: &Store,
    images: &[(ImageRecord, Vec<String>)],
    format: Format,
    out: impl Write,
) -> Result<()> {
    let _gc = store.lock_shared()?;
    let mut b = tar::Builder::new(out);
    match format {
        Format::OciArchive => {
            append(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
            let mut manifests = Vec::new();
            let mut written = std::collections::BTreeSet::new();
            for (rec, tags) in images {
                let (mbody, m) = load_manifest(store, rec)?;
                let mut blobs = vec![rec.manifest.clone(), m.config.digest.clone()];
                blobs.extend(m.layers.iter().map(|l| l.digest.clone()));
                for d in blobs {
                    if written.insert(d.clone()) {
                        let hexd = crate::store::digest_hex(&d)?;
                        append_file(
                            &mut b,
                            &format!("blobs/sha256/{hexd}"),
                            &store.blob_path(&d)?,
                        )?;
                    }
                }
                let mt = m
                    .media_type
                    .clone()
                    .unwrap_or_else(|| mf::OCI_MANIFEST.into());
                let names: Vec<Option<&String>> = if tags.is_empty() {
                    vec![None]
                } else {
                    tags.iter().map(Some).collect()
                };
                for t in names {
                    let mut ann = BTreeMap::new();
                    if let Some(t) = t {
                        ann.insert("org.opencontainers.image.ref.name".to_string(), t.clone());
                        ann.insert("io.containerd.image.name".to_string(), t.clone());
                    }
                    manifests.push(Descriptor {
                        media_type: mt.clone(),
                        digest: rec.manifest.clone(),
                        size: mbody.len() as u64,
                        platform: None,
                        annotations: if ann.is_empty() { None } else { Some(ann) },
                        urls: None,
                    });
                }
            }
            let idx = mf::Index {
                schema_version: 2,
                media_type: Some(mf::OCI_INDEX.into()),
                manifests,
                annotations: None,
            };
            append(
                &mut b,
                "index.json",
                &serde_json::to_vec(&idx).expect("index serialises"),
            )?;
        }
        Format::DockerArchive => {
            let mut entries = Vec::new();
            let mut written = std::collections::BTreeSet::new();
            for (rec, tags) in images {
                let (_, m) = load_manifest(store, rec)?;
                let cfg = store.read_blob(&m.config.digest)?;
                let config: ImageConfig = serde_json::from_slice(&cfg)
                    .map_err(|e| Error::Json(m.config.digest.clone(), e))?;
                let chex = crate::store::digest_hex(&m.config.digest)?.to_string();
                if written.insert(chex.clone()) {
                    append(&mut b, &format!("{chex}.json"), &cfg)?;
                }
                let mut layer_names = Vec::new();
                for (l, diff) in m.layers.iter().zip(&config.rootfs.diff_ids) {
                    let dhex = crate::store::digest_hex(diff)?.to_string();
                    let name = format!("{dhex}.tar");
                    if written.insert(name.clone()) {
                        // docker-archive layers are uncompressed tars named by diffID.
                        let c = mf::layer_compression(&l.media_type).ok_or_else(|| {
                            Error::LayerType(l.digest.clone(), l.media_type.clone())
                        })?;
                        let src = store.blob_path(&l.digest)?;
                        if c == Compression::None {
                            append_file(&mut b, &name, &src)?;
                        } else {
                            let mut t = store.temp_file()?;
                            let f = std::io::BufReader::new(
                                std::fs::File::open(&src).map_err(|e| Error::io(&src, e))?,
                            );
                            let mut r: Box<dyn Read> = match c {
                                Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(f)),
                                _ => Box::new(
                                    zstd::stream::read::Decoder::new(f)
                                        .map_err(|e| Error::io(&src, e))?,
                                ),
                            };
                            std::io::copy(&mut r, &mut t).map_err(|e| Error::io(&src, e))?;
                            append_file(&mut b, &name, t.path())?;
                        }
                    }
                    layer_names.push(name);
                }
                let repo_tags: Vec<String> = tags.iter().map(|t| docker_short(t)).collect();
                entries.push(serde_json::json!({
                    "Config": format!("{chex}.json"),
                    "RepoTags": repo_tags,
                    "Layers": layer_names,
                }));
            }
            append(
                &mut b,
                "manifest.json",
                &serde_json::to_vec(&entries).expect("json"),
            )?;
        }
    }
    b.into_inner()
        .map_err(|e| Error::Io("archive".into(), e))?
        .flush()
        .map_err(|e| Error::Io("archive".into(), e))
}

/// docker writes Hub names short (`busybox:latest`).
fn docker_short(t: &str) -> String {
    t.strip_prefix("docker.io/library/")
        .or_else(|| t.strip_prefix("docker.io/"))
        .unwrap_or(t)
        .to_string()
}

/// Imports a (possibly compressed) rootfs tarball as a one-layer image. `config` is the
/// image's container config (`import --change`), `comment` its history comment (`-m`).
pub fn import(
    store: &Store,
    input: &mut dyn Read,
    tag: Option<&Reference>,
    config: serde_json::Value,
    comment: Option<&str>,
    opts: &UnpackOptions,
) -> Result<ImageRecord> {
    let _gc = store.lock_shared()?;
    let (ldigest, lsize) = store.ingest_reader(input)?;
    let lpath = store.blob_path(&ldigest)?;
    let c = sniff(&lpath)?;
    let diff_id = diff_id_of(&lpath, c, opts.max_size)?;
    let p = Platform::host();
    let config = serde_json::json!({
        "created": rfc3339_now(),
        "architecture": p.architecture,
        "os": p.os,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": rfc3339_now(), "created_by": "berth import"}],
    });
    let mut config = config;
    if let Some(m) = comment {
        config["comment"] = serde_json::json!(m);
        config["history"][0]["comment"] = serde_json::json!(m);
    }
    let cfg_bytes = serde_json::to_vec(&config).expect("json");
    let cdigest = store.write_blob(&cfg_bytes)?;
    let m = mf::Manifest {
        schema_version: 2,
        media_type: Some(mf::OCI_MANIFEST.into()),
        config: Descriptor::new(mf::OCI_CONFIG, cdigest, cfg_bytes.len() as u64),
        layers: vec![Descriptor::new(layer_media(c, true), ldigest, lsize)],
        annotations: None,
    };
    let mbody = serde_json::to_vec(&m).expect("json");
    let cfg: ImageConfig =
        serde_json::from_slice(&cfg_bytes).map_err(|e| Error::Json("config".into(), e))?;
    let tags: Vec<String> = tag.iter().map(|t| t.to_string()).collect();
    commit_image(store, &mbody, &m, &cfg, &tags, opts)
}

/// Current UTC time as RFC 3339 (no chrono for one timestamp).
pub fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
