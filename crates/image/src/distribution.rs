//! pull and push between the store and a registry.

use crate::error::{Error, Result};
use crate::store::{ImageRecord, Store};
use crate::unpack::UnpackOptions;
use berth_registry::manifest::{
    self, parse_manifest, Descriptor, ImageConfig, ManifestKind, Platform,
};
use berth_registry::{Client, Reference};
use std::sync::Arc;

/// Receives progress events (the CLI draws bars or prints lines).
pub trait Progress: Send + Sync {
    fn start(&self, id: &str, total: u64, what: &str);
    fn advance(&self, id: &str, n: u64);
    fn finish(&self, id: &str, status: &str);
}

/// Progress that reports nothing.
pub struct Quiet;
impl Progress for Quiet {
    fn start(&self, _: &str, _: u64, _: &str) {}
    fn advance(&self, _: &str, _: u64) {}
    fn finish(&self, _: &str, _: &str) {}
}

#[derive(Debug, Clone)]
pub struct PullOptions {
    pub platform: Platform,
    pub unpack: UnpackOptions,
    pub concurrency: usize,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            platform: Platform::host(),
            unpack: UnpackOptions::default(),
            concurrency: 4,
        }
    }
}

pub fn short(d: &str) -> &str {
    let h = d.strip_prefix("sha256:").unwrap_or(d);
    &h[..h.len().min(12)]
}

/// Picks the manifest for `want` from an index.
pub fn select_platform<'a>(
    idx: &'a manifest::Index,
    want: &Platform,
    name: &str,
) -> Result<&'a Descriptor> {
    idx.manifests
        .iter()
        .find(|d| d.platform.as_ref().is_some_and(|p| want.matches(p)))
        .ok_or_else(|| Error::NoPlatform {
            index: name.to_string(),
            platform: want.to_string(),
            available: idx
                .manifests
                .iter()
                .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Pulls `r` into the store and tags it. Returns the stored record.
pub async fn pull(
    store: &Store,
    client: &Client,
    r: &Reference,
    opts: &PullOptions,
    progress: Arc<dyn Progress>,
) -> Result<ImageRecord> {
    let _gc = store.lock_shared()?;
    let (body, ct, digest) = client.get_manifest(r, r.target()).await?;
    let (index, mbody, mdigest, m) = match parse_manifest(ct.as_deref(), &body)? {
        ManifestKind::Image(m) => (None, body, digest, m),
        ManifestKind::Index(idx) => {
            let d = select_platform(&idx, &opts.platform, &r.to_string())?;
            let (b2, ct2, d2) = client.get_manifest(r, &d.digest).await?;
            match parse_manifest(ct2.as_deref(), &b2)? {
                ManifestKind::Image(m) => {
                    store.write_blob(&body)?;
                    (Some(digest), b2, d2, m)
                }
                ManifestKind::Index(_) => {
                    return Err(Error::Invalid(format!(
                        "{r}: nested index is not supported"
                    )))
                }
            }
        }
    };
    let cfg_bytes = if store.has_blob(&m.config.digest) {
        store.read_blob(&m.config.digest)?
    } else {
        let b = client
            .get_blob_bytes(r, &m.config.digest, m.config.size)
            .await?;
        store.write_blob(&b)?;
        b
    };
    let config: ImageConfig = serde_json::from_slice(&cfg_bytes)
        .map_err(|e| Error::Json(format!("config {}", m.config.digest), e))?;
    if config.rootfs.diff_ids.len() != m.layers.len() {
        return Err(Error::LayerCount {
            diff_ids: config.rootfs.diff_ids.len(),
            layers: m.layers.len(),
        });
    }
    for l in &m.layers {
        if manifest::layer_compression(&l.media_type).is_none() {
            return Err(Error::LayerType(l.digest.clone(), l.media_type.clone()));
        }
    }

    // Download missing layers concurrently; each layer is unpacked as soon as its blob is
    // verified (layer dirs are independent, so no ordering is needed).
    let chains = crate::layers::chain_ids(&config.rootfs.diff_ids);
    let sem = Arc::new(tokio::sync::Semaphore::new(opts.concurrency.max(1)));
    let mut tasks = Vec::new();
    for (i, l) in m.layers.clone().into_iter().enumerate() {
        let id = short(&l.digest).to_string();
        let have = store.has_blob(&l.digest);
        if have {
            progress.finish(&id, "Already exists");
        } else {
            progress.start(&id, l.size, "Downloading");
        }
        let sem = sem.clone();
        let progress = progress.clone();
        let tmp = if have { None } else { Some(store.temp_file()?) };
        let diff_id = config.rootfs.diff_ids[i].clone();
        let chain = chains[i].clone();
        let parent = if i > 0 {
            Some(chains[i - 1].clone())
        } else {
            None
        };
        let unpack = opts.unpack.clone();
        let fut = async move {
            let st = store.clone();
            let unpacked = if let Some(tmp) = tmp {
                let permit = sem.acquire().await.expect("semaphore open");
                let (std_file, path) = tmp.into_parts();
                let mut f = tokio::fs::File::from_std(std_file);
                let mut adv = |n: u64| progress.advance(&id, n);
                client
                    .get_blob_to_file(r, &l.digest, l.size, &mut f, &mut adv)
                    .await?;
                drop(permit);
                let std_file = f.into_std().await;
                let src = std_file.try_clone().map_err(|e| Error::io(&path, e))?;
                progress.finish(&id, "Download complete");
                // The blob is verified: fsync it into the store while unpacking from the
                // same inode (off the async threads, so other layers keep downloading).
                let tmp = tempfile::NamedTempFile::from_parts(std_file, path);
                let (st2, digest) = (store.clone(), l.digest.clone());
                let commit = tokio::task::spawn_blocking(move || st2.commit_blob(tmp, &digest));
                let unpack = tokio::task::spawn_blocking(move || {
                    use std::io::Seek;
                    let mut src = src;
                    src.rewind().map_err(|e| Error::Io(l.digest.clone(), e))?;
                    crate::layers::ensure_layer_from(
                        &st,
                        src,
                        &l,
                        &diff_id,
                        &chain,
                        parent.as_deref(),
                        &unpack,
                    )
                });
                let (c, u) = futures_util::future::join(commit, unpack).await;
                c.map_err(|e| Error::Invalid(format!("commit task failed: {e}")))??;
                u
            } else {
                tokio::task::spawn_blocking(move || {
                    crate::layers::ensure_layer(
                        &st,
                        &l,
                        &diff_id,
                        &chain,
                        parent.as_deref(),
                        &unpack,
                    )
                })
                .await
            };
            unpacked.map_err(|e| Error::Invalid(format!("unpack task failed: {e}")))??;
            Ok::<(), Error>(())
        };
        tasks.push(fut);
    }
    let results = futures_util::future::join_all(tasks).await;
    for res in results {
        res?;
    }

    store.write_blob(&mbody)?;
    let chain_ids = chains;
    let size = crate::layers::unpacked_size(store, &chain_ids)?;
    let rec = ImageRecord {
        manifest: mdigest.clone(),
        config: m.config.digest.clone(),
        layers: m.layers.iter().map(|l| l.digest.clone()).collect(),
        chain_ids,
        index: index.clone(),
        repo_digests: vec![format!(
            "{}@{}",
            r.name(),
            index.as_deref().unwrap_or(&mdigest)
        )],
        size,
        stored_at: 0,
    };
    // `name:tag`, or `name@digest` when pulled by digest (so it is not dangling).
    store.add_image(rec.clone(), Some(&r.to_string()))?;
    Ok(rec)
}

/// Pushes an image from the store to `dest`. Returns the manifest digest.
pub async fn push(
    store: &Store,
    client: &Client,
    rec: &ImageRecord,
    dest: &Reference,
    progress: Arc<dyn Progress>,
) -> Result<String> {
    let _gc = store.lock_shared()?;
    let mbody = store.read_blob(&rec.manifest)?;
    let m = match parse_manifest(None, &mbody)? {
        ManifestKind::Image(m) => m,
        ManifestKind::Index(_) => {
            return Err(Error::Invalid(format!("{} is an index", rec.manifest)))
        }
    };
    // A repository on the same registry that has these blobs, for cross-repo mounts.
    let mount_from: Option<String> = rec.repo_digests.iter().find_map(|rd| {
        let r = Reference::parse(rd).ok()?;
        (r.registry == dest.registry && r.repository != dest.repository).then_some(r.repository)
    });
    let mut blobs: Vec<Descriptor> = m.layers.clone();
    blobs.push(m.config.clone());
    let sem = Arc::new(tokio::sync::Semaphore::new(4));
    let mut tasks = Vec::new();
    for b in blobs {
        let id = short(&b.digest).to_string();
        let path = store.blob_path(&b.digest)?;
        let sem = sem.clone();
        let progress = progress.clone();
        let from = mount_from.clone();
        tasks.push(async move {
            let _p = sem.acquire().await.expect("semaphore open");
            progress.start(&id, b.size, "Pushing");
            let mut adv = |n: u64| progress.advance(&id, n);
            let out = client
                .push_blob(dest, &b.digest, b.size, &path, from.as_deref(), &mut adv)
                .await?;
            let status = match out {
                berth_registry::PushOutcome::AlreadyExists => "Layer already exists",
                berth_registry::PushOutcome::Mounted => "Mounted from other repository",
                berth_registry::PushOutcome::Uploaded => "Pushed",
            };
            progress.finish(&id, status);
            Ok::<(), Error>(())
        });
    }
    for r in futures_util::future::join_all(tasks).await {
        r?;
    }
    let mt = m
        .media_type
        .clone()
        .unwrap_or_else(|| manifest::OCI_MANIFEST.to_string());
    let target = dest
        .digest
        .clone()
        .or(dest.tag.clone())
        .unwrap_or_else(|| "latest".into());
    let d = client.put_manifest(dest, &target, &mt, &mbody).await?;
    let rd = format!("{}@{}", dest.name(), d);
    store.update_records(|r| {
        if let Some(i) = r.images.get_mut(&rec.manifest) {
            if !i.repo_digests.contains(&rd) {
                i.repo_digests.push(rd.clone());
            }
        }
        Ok(())
    })?;
    Ok(d)
}
