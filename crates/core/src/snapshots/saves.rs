//! The save directory of `DatabasePersistence`: full saves, incremental
//! saves (deltas) and named snapshots of a collection, in a directory of
//! their own (`baseDir`), apart from the store's own files.
//!
//! ```text
//! <baseDir>/LOCK                      held while a DatabasePersistence is open on it
//! <baseDir>/save.json                 the chain: base file, then deltas in order
//! <baseDir>/base-<gen>.<ext>          a full save in the chosen export format (formats::export)
//! <baseDir>/delta-<gen>-<k>.avd[.gz|.br]   the k-th delta after that base (formats::delta)
//! <baseDir>/snapshots/<id>/snapshot.json   a snapshot: the chain's manifest plus id, name, metadata
//! <baseDir>/snapshots/<id>/<files>         hard links to (or copies of) the chain's files
//! ```
//!
//! `save.json` (and `snapshot.json`) lists every file of the chain with its
//! size and SHA-256; a load checks all of them before it builds anything,
//! so a missing or damaged file is a `CORRUPT` error and the store is left
//! as it was. Every file is written to a temporary name, fsynced, renamed
//! and its directory fsynced; the manifest last, the same way. A crash at
//! any step leaves the previous manifest, naming files that are all still
//! there: files are removed only after the manifest that drops them is
//! durable.
//!
//! An incremental save asks the collection's [`ChangeJournal`](crate::journal)
//! what changed since the mark taken at the last save or load made through
//! this directory in this process, and writes only that. It writes a full
//! save instead when there is no such mark (first save, a new process), the
//! journal cannot answer (the store was restored or reopened), the format or
//! compression changed, or the delta would not be much smaller: half the
//! points or more changed, or the deltas together outweigh the base.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::collection::{Collection, CollectionConfig, Payload};
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::formats::{self, delta, Compression, ExportOptions, Format, Point, ReadError};
use crate::id::PointId;
use crate::journal::JournalMark;
use crate::progress::Reporter;
use crate::snapshots::named::validate_name;
use crate::storage::fs::{Storage, StorageLock};
use crate::store::{Store, WriteTicket};

pub const MANIFEST: &str = "save.json";
pub const SNAPSHOT_MANIFEST: &str = "snapshot.json";
pub const SNAPSHOTS: &str = "snapshots";

/// One file of a chain.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChainFile {
    pub file: String,
    pub bytes: u64,
    pub sha256: String,
    #[serde(default)]
    pub upserts: u64,
    #[serde(default)]
    pub deletes: u64,
    #[serde(default)]
    pub cleared: bool,
}

/// `save.json`: a base and its deltas.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub version: u32,
    pub generation: u64,
    pub format: String,
    pub compression: String,
    pub dimension: usize,
    pub distance: String,
    /// Points after the last file is applied.
    pub count: u64,
    pub saved_at: u64,
    pub files: Vec<ChainFile>,
}

/// `snapshot.json`: a chain plus what names it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotManifest {
    pub id: String,
    pub name: String,
    pub created_at: u64,
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
    pub chain: Manifest,
}

/// A snapshot as the API describes it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotInfo {
    pub id: String,
    pub name: String,
    pub created_at: u64,
    pub count: u64,
    pub bytes: u64,
    /// SHA-256 over the chain's file digests.
    pub checksum: String,
    pub format: String,
    pub compression: String,
    pub metadata: Option<serde_json::Value>,
}

/// What a save did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SaveSummary {
    /// `full`, `incremental`, or `unchanged` (an incremental save with nothing to write).
    pub kind: &'static str,
    /// Why an incremental save wrote a full save.
    pub reason: Option<String>,
    pub file: Option<String>,
    /// Bytes this save wrote (the new file; the manifest aside).
    pub bytes: u64,
    pub upserts: u64,
    pub deletes: u64,
    pub count: u64,
    /// Files in the chain now (1 + deltas) and their total size.
    pub chain_files: usize,
    pub chain_bytes: u64,
    /// A file the new manifest no longer needs could not be removed (the
    /// save itself is durable; the next save retries).
    pub cleanup_error: Option<String>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The file extension of a base in `format` with `compression`.
fn base_extension(format: Format, compression: Compression) -> String {
    let ext = match format {
        Format::Annvault => "avb",
        Format::Json => "json",
        Format::Jsonl => "jsonl",
        Format::Msgpack => "msgpack",
        Format::Sqlite => "sqlite",
        Format::Parquet => "parquet",
    };
    match compression {
        Compression::None => ext.to_string(),
        Compression::Gzip => format!("{ext}.gz"),
        Compression::Brotli => format!("{ext}.br"),
    }
}

fn delta_extension(compression: Compression) -> &'static str {
    match compression {
        Compression::None => "avd",
        Compression::Gzip => "avd.gz",
        Compression::Brotli => "avd.br",
    }
}

/// SHA-256 of a stored file, read in pieces on the real file system.
fn digest_file(storage: &dyn Storage, path: &Path) -> Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    if storage.is_native() {
        let mut file = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| Error::io("read", path, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
    } else {
        hasher.update(storage.read(path).map_err(|e| Error::io("read", path, e))?);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(hasher.finalize().as_slice());
    Ok(out)
}

/// Writes `bytes` to `target` atomically: temp, fsync, rename, fsync dir.
fn write_atomic(storage: &dyn Storage, dir: &Path, target: &str, bytes: &[u8]) -> Result<()> {
    let tmp = dir.join(format!(
        ".{target}.{:016x}.tmp",
        crate::storage::codec::random_salt()
    ));
    let file = storage
        .create(&tmp)
        .map_err(|e| Error::io("create", &tmp, e))?;
    let written = file
        .append(bytes)
        .map_err(|e| Error::io("write", &tmp, e))
        .and_then(|()| file.sync().map_err(|e| Error::io("fsync", &tmp, e)));
    drop(file);
    let published = written.and_then(|()| {
        let path = dir.join(target);
        storage
            .rename(&tmp, &path)
            .map_err(|e| Error::io("rename", &tmp, e))?;
        storage
            .sync_dir(dir)
            .map_err(|e| Error::io("fsync directory", dir, e))
    });
    if published.is_err() && storage.exists(&tmp) {
        // The temporary file is garbage; the error that made it so is what the caller needs.
        let _ = storage.remove(&tmp);
    }
    published
}

fn read_manifest<T: for<'de> Deserialize<'de>>(
    storage: &dyn Storage,
    path: &Path,
) -> Result<Option<T>> {
    if !storage.exists(path) {
        return Ok(None);
    }
    let bytes = storage.read(path).map_err(|e| Error::io("read", path, e))?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::corrupt(path, 0, format!("not a save manifest: {e}")))
}

/// Why a chain cannot be loaded into a store configured as `config`.
fn check_chain(path: &Path, m: &Manifest, config: &CollectionConfig) -> Result<()> {
    if m.version != 1 {
        return Err(Error::corrupt(
            path,
            0,
            format!("unknown manifest version {}", m.version),
        ));
    }
    if m.files.is_empty() {
        return Err(Error::corrupt(path, 0, "the manifest names no base file"));
    }
    if m.dimension != config.dimension || m.distance != config.distance.name() {
        return Err(Error::ConfigMismatch {
            reason: format!(
                "{} holds {} vectors of dimension {}, the store is {} of dimension {}",
                path.display(),
                m.distance,
                m.dimension,
                config.distance.name(),
                config.dimension
            ),
        });
    }
    for f in &m.files {
        if f.file.is_empty() || f.file.contains(['/', '\\']) || f.file.starts_with('.') {
            return Err(Error::corrupt(
                path,
                0,
                format!("unsafe file name {:?}", f.file),
            ));
        }
    }
    Ok(())
}

/// Checks every file of the chain in `dir` (present, size, SHA-256).
fn verify_files(
    storage: &dyn Storage,
    dir: &Path,
    m: &Manifest,
    progress: &mut Reporter,
) -> Result<Vec<[u8; 32]>> {
    let total: u64 = m.files.iter().map(|f| f.bytes).sum();
    progress.start("verify", total, format!("checking {} files", m.files.len()));
    let mut done = 0;
    let mut digests = Vec::with_capacity(m.files.len());
    for f in &m.files {
        let path = dir.join(&f.file);
        if !storage.exists(&path) {
            return Err(Error::corrupt(&path, 0, "the file is missing"));
        }
        let size = storage
            .size(&path)
            .map_err(|e| Error::io("stat", &path, e))?;
        if size != f.bytes {
            return Err(Error::corrupt(
                &path,
                size.min(f.bytes),
                format!("{size} bytes, the manifest says {}", f.bytes),
            ));
        }
        let digest = digest_file(storage, &path)?;
        if hex(&digest) != f.sha256 {
            return Err(Error::corrupt(&path, 0, "SHA-256 mismatch"));
        }
        digests.push(digest);
        done += f.bytes;
        progress.tick(done);
    }
    progress.finish("every file matches its checksum");
    Ok(digests)
}

/// Builds the collection a chain in `dir` describes: the base, then each
/// delta in order. Reads the real file system (formats' readers).
pub fn load_chain(
    storage: &dyn Storage,
    dir: &Path,
    m: &Manifest,
    config: &CollectionConfig,
    progress: &mut Reporter,
) -> Result<Collection> {
    check_chain(&dir.join(MANIFEST), m, config)?;
    let compression = Compression::parse(&m.compression)
        .map_err(|e| Error::corrupt(&dir.join(MANIFEST), 0, e.to_string()))?;
    let digests = verify_files(storage, dir, m, progress)?;
    let base = dir.join(&m.files[0].file);
    let mut ids: Vec<PointId> = Vec::new();
    let mut vectors: Vec<f32> = Vec::new();
    let mut payloads: Vec<Payload> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let shared = std::cell::RefCell::new(&mut *progress);
    formats::read_file(
        &base,
        &mut |h| {
            if h.dimension != config.dimension || h.distance != config.distance {
                return Err(Error::ConfigMismatch {
                    reason: format!("{} holds another dimension or distance", base.display()),
                });
            }
            shared
                .borrow_mut()
                .start("load", h.count, format!("reading {}", base.display()));
            Ok(())
        },
        &mut |index, point: Point| {
            if !seen.insert(point.id.clone()) {
                return Err(ReadError::new(Some(index), 0, "an id appears twice"));
            }
            ids.push(point.id);
            vectors.extend_from_slice(&point.vector);
            payloads.push(point.payload);
            shared.borrow_mut().tick(index + 1);
            Ok(())
        },
    )?;
    drop(seen);
    let mut collection = Collection::from_points(*config, ids, vectors, 0, payloads)?;
    for (k, f) in m.files.iter().enumerate().skip(1) {
        let path = dir.join(&f.file);
        let stored = storage
            .read(&path)
            .map_err(|e| Error::io("read", &path, e))?;
        let bytes = delta::decompress(&path, &stored, compression)?;
        let header = delta::check(&path, &bytes, k as u32, &digests[0])?;
        delta::apply(&path, &bytes, &header, &mut collection)?;
    }
    if collection.len() as u64 != m.count {
        return Err(Error::corrupt(
            &dir.join(MANIFEST),
            0,
            format!(
                "the chain holds {} points, the manifest says {}",
                collection.len(),
                m.count
            ),
        ));
    }
    progress.finish(format!("loaded {} points", collection.len()));
    Ok(collection)
}

/// The chain a save left, and the journal mark it corresponds to.
#[derive(Debug, Clone)]
struct Tracked {
    mark: JournalMark,
    manifest: Manifest,
}

/// An open save directory. One per directory at a time (its `LOCK`).
pub struct SaveDir {
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    format: Format,
    compression: Compression,
    _lock: Box<dyn StorageLock>,
    /// One operation at a time; and where the last save left the journal.
    tracked: Mutex<Option<Tracked>>,
}

impl std::fmt::Debug for SaveDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaveDir").field("dir", &self.dir).finish()
    }
}

impl SaveDir {
    pub fn open(
        storage: Arc<dyn Storage>,
        dir: &Path,
        format: Format,
        compression: Compression,
    ) -> Result<Self> {
        storage
            .create_dir_all(&dir.join(SNAPSHOTS))
            .map_err(|e| Error::io("create directory", dir, e))?;
        let lock_path = dir.join("LOCK");
        let lock = storage.lock(&lock_path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::WouldBlock {
                Error::InUse {
                    path: dir.display().to_string(),
                }
            } else {
                Error::io("lock", &lock_path, e)
            }
        })?;
        Ok(SaveDir {
            storage,
            dir: dir.to_path_buf(),
            format,
            compression,
            _lock: lock,
            tracked: Mutex::new(None),
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn manifest(&self) -> Result<Option<Manifest>> {
        read_manifest(self.storage.as_ref(), &self.dir.join(MANIFEST))
    }

    /// Writes all of `collection` as a new base; the chain restarts from it.
    pub fn save(&self, collection: &Collection, progress: &mut Reporter) -> Result<SaveSummary> {
        let mut tracked = lock(&self.tracked);
        self.save_full(&mut tracked, collection, None, progress)
    }

    fn save_full(
        &self,
        tracked: &mut Option<Tracked>,
        collection: &Collection,
        reason: Option<String>,
        progress: &mut Reporter,
    ) -> Result<SaveSummary> {
        let storage = self.storage.as_ref();
        let previous = self.manifest()?;
        let generation = previous.as_ref().map_or(1, |m| m.generation + 1);
        let name = format!(
            "base-{generation:06}.{}",
            base_extension(self.format, self.compression)
        );
        let path = self.dir.join(&name);
        let options = ExportOptions {
            format: Some(self.format),
            compression: self.compression,
            filter: Filter::default(),
            overwrite: true,
        };
        let mark = collection.journal_mark();
        let summary = formats::export(storage, collection, &path, &options, progress)?;
        let digest = digest_file(storage, &path)?;
        let config = collection.config();
        let manifest = Manifest {
            version: 1,
            generation,
            format: self.format.name().into(),
            compression: self.compression.name().into(),
            dimension: config.dimension,
            distance: config.distance.name().into(),
            count: collection.len() as u64,
            saved_at: now_ms(),
            files: vec![ChainFile {
                file: name.clone(),
                bytes: summary.bytes,
                sha256: hex(&digest),
                upserts: summary.count,
                deletes: 0,
                cleared: false,
            }],
        };
        self.publish(&manifest)?;
        *tracked = Some(Tracked {
            mark,
            manifest: manifest.clone(),
        });
        let cleanup_error = self.remove_unreferenced(&manifest);
        Ok(SaveSummary {
            kind: "full",
            reason,
            file: Some(name),
            bytes: summary.bytes,
            upserts: summary.count,
            deletes: 0,
            count: manifest.count,
            chain_files: 1,
            chain_bytes: summary.bytes,
            cleanup_error,
        })
    }

    /// Writes what changed since the last save or load through this
    /// directory (see the module documentation), or a full save.
    pub fn save_incremental(
        &self,
        collection: &Collection,
        progress: &mut Reporter,
    ) -> Result<SaveSummary> {
        let mut guard = lock(&self.tracked);
        let on_disk = self.manifest()?;
        let why_full = match (&*guard, &on_disk) {
            (None, _) => Some("no earlier save or load through this directory in this process"),
            (Some(_), None) => Some("the save manifest is gone"),
            (Some(t), Some(m)) if &t.manifest != m => Some("the save manifest changed on disk"),
            (Some(t), _)
                if t.manifest.format != self.format.name()
                    || t.manifest.compression != self.compression.name() =>
            {
                Some("the format or compression changed")
            }
            _ => None,
        };
        if let Some(reason) = why_full {
            return self.save_full(&mut guard, collection, Some(reason.into()), progress);
        }
        let Some(tracked) = guard.clone() else {
            return self.save_full(&mut guard, collection, None, progress);
        };
        let Some(changes) = collection.changes_since(tracked.mark) else {
            return self.save_full(
                &mut guard,
                collection,
                Some("the store's change history does not reach the last save (it was restored, reopened or cleared of its history)".into()),
                progress,
            );
        };
        let m = tracked.manifest;
        if !changes.cleared && changes.deleted.is_empty() && changes.written.is_empty() {
            return Ok(SaveSummary {
                kind: "unchanged",
                reason: None,
                file: None,
                bytes: 0,
                upserts: 0,
                deletes: 0,
                count: m.count,
                chain_files: m.files.len(),
                chain_bytes: m.files.iter().map(|f| f.bytes).sum(),
                cleanup_error: None,
            });
        }
        let base_bytes = m.files[0].bytes;
        let delta_bytes: u64 = m.files[1..].iter().map(|f| f.bytes).sum();
        if changes.cleared || changes.written.len() * 2 >= collection.len().max(1) {
            return self.save_full(
                &mut guard,
                collection,
                Some("half the points or more changed: a delta would be no smaller".into()),
                progress,
            );
        }
        if delta_bytes > base_bytes {
            return self.save_full(
                &mut guard,
                collection,
                Some("the deltas outweigh the base: compacting".into()),
                progress,
            );
        }
        let index = m.files.len() as u32;
        let base_digest = unhex(&m.files[0].sha256).ok_or_else(|| {
            Error::corrupt(&self.dir.join(MANIFEST), 0, "bad SHA-256 of the base")
        })?;
        let name = format!(
            "delta-{:06}-{index:04}.{}",
            m.generation,
            delta_extension(self.compression)
        );
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!(
            ".{name}.{:016x}.tmp",
            crate::storage::codec::random_salt()
        ));
        let storage = self.storage.as_ref();
        progress.start("write", 1, format!("writing {}", path.display()));
        let mut counts = (0, 0);
        let written = formats::write_stream(storage, &tmp, self.compression, |w| {
            counts = delta::write(w, collection, &changes, index, &base_digest)?;
            Ok(())
        })
        .and_then(|bytes| {
            storage
                .rename(&tmp, &path)
                .map_err(|e| Error::io("rename", &tmp, e))?;
            storage
                .sync_dir(&self.dir)
                .map_err(|e| Error::io("fsync directory", &self.dir, e))?;
            Ok(bytes)
        });
        let bytes = match written {
            Ok(bytes) => bytes,
            Err(e) => {
                if storage.exists(&tmp) {
                    let _ = storage.remove(&tmp);
                }
                return Err(e);
            }
        };
        let digest = digest_file(storage, &path)?;
        let mut manifest = m.clone();
        manifest.count = collection.len() as u64;
        manifest.saved_at = now_ms();
        manifest.files.push(ChainFile {
            file: name.clone(),
            bytes,
            sha256: hex(&digest),
            upserts: counts.1,
            deletes: counts.0,
            cleared: false,
        });
        self.publish(&manifest)?;
        progress.finish(format!("wrote {bytes} bytes"));
        let summary = SaveSummary {
            kind: "incremental",
            reason: None,
            file: Some(name),
            bytes,
            upserts: counts.1,
            deletes: counts.0,
            count: manifest.count,
            chain_files: manifest.files.len(),
            chain_bytes: manifest.files.iter().map(|f| f.bytes).sum(),
            cleanup_error: None,
        };
        *guard = Some(Tracked {
            mark: collection.journal_mark(),
            manifest,
        });
        Ok(summary)
    }

    fn publish(&self, manifest: &Manifest) -> Result<()> {
        let json = serde_json::to_vec_pretty(manifest).map_err(|e| Error::Internal {
            reason: format!("manifest: {e}"),
        })?;
        write_atomic(self.storage.as_ref(), &self.dir, MANIFEST, &json)
    }

    /// Removes chain files and temporaries the manifest does not name.
    fn remove_unreferenced(&self, manifest: &Manifest) -> Option<String> {
        let storage = self.storage.as_ref();
        let names = match storage.list(&self.dir) {
            Ok(names) => names,
            Err(e) => return Some(format!("list {}: {e}", self.dir.display())),
        };
        let mut failures = Vec::new();
        for name in names {
            let ours = name.starts_with("base-")
                || name.starts_with("delta-")
                || (name.starts_with('.') && name.ends_with(".tmp"));
            if !ours || manifest.files.iter().any(|f| f.file == name) {
                continue;
            }
            if let Err(e) = storage.remove(&self.dir.join(&name)) {
                failures.push(format!("remove {name}: {e}"));
            }
        }
        (!failures.is_empty()).then(|| failures.join("; "))
    }

    /// Reads and checks the saved chain; the collection it holds. The
    /// caller puts it in the store, then calls [`SaveDir::loaded`].
    pub fn load(
        &self,
        config: &CollectionConfig,
        progress: &mut Reporter,
    ) -> Result<(Collection, Manifest)> {
        let _guard = lock(&self.tracked);
        let manifest_path = self.dir.join(MANIFEST);
        let m: Manifest =
            read_manifest(self.storage.as_ref(), &manifest_path)?.ok_or_else(|| {
                Error::NotFound {
                    id: format!("save in {}", self.dir.display()),
                }
            })?;
        let collection = load_chain(self.storage.as_ref(), &self.dir, &m, config, progress)?;
        Ok((collection, m))
    }

    /// Records that the store now holds the chain `manifest` as of `mark`,
    /// so the next incremental save builds on it.
    pub fn loaded(&self, mark: JournalMark, manifest: Manifest) {
        let mut guard = lock(&self.tracked);
        if self.manifest().ok().flatten().as_ref() == Some(&manifest) {
            *guard = Some(Tracked { mark, manifest });
        }
    }

    // ---------------------------------------------------------- snapshots

    fn snapshots_dir(&self) -> PathBuf {
        self.dir.join(SNAPSHOTS)
    }

    fn snapshot_manifests(&self) -> Result<Vec<SnapshotManifest>> {
        let root = self.snapshots_dir();
        let names = self
            .storage
            .list(&root)
            .map_err(|e| Error::io("list", &root, e))?;
        let mut out = Vec::new();
        for name in names {
            let path = root.join(&name).join(SNAPSHOT_MANIFEST);
            // A directory without its manifest is a snapshot whose creation did not finish.
            if let Some(s) = read_manifest::<SnapshotManifest>(self.storage.as_ref(), &path)? {
                if s.id == name {
                    out.push(s);
                }
            }
        }
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    fn info(s: &SnapshotManifest) -> SnapshotInfo {
        let mut hasher = Sha256::new();
        for f in &s.chain.files {
            hasher.update(f.file.as_bytes());
            hasher.update([0u8]);
            hasher.update(f.sha256.as_bytes());
        }
        SnapshotInfo {
            id: s.id.clone(),
            name: s.name.clone(),
            created_at: s.created_at,
            count: s.chain.count,
            bytes: s.chain.files.iter().map(|f| f.bytes).sum(),
            checksum: hex(hasher.finalize().as_slice()),
            format: s.chain.format.clone(),
            compression: s.chain.compression.clone(),
            metadata: s.metadata.clone(),
        }
    }

    pub fn list_snapshots(&self) -> Result<Vec<SnapshotInfo>> {
        let _guard = lock(&self.tracked);
        Ok(self.snapshot_manifests()?.iter().map(Self::info).collect())
    }

    fn find(&self, key: &str) -> Result<SnapshotManifest> {
        validate_name(key)?;
        let all = self.snapshot_manifests()?;
        all.iter()
            .find(|s| s.id == key)
            .or_else(|| all.iter().rev().find(|s| s.name == key))
            .cloned()
            .ok_or_else(|| Error::SnapshotNotFound {
                snapshot: key.to_owned(),
            })
    }

    /// Saves incrementally, then links the chain's files into
    /// `snapshots/<id>/` (copies where hard links fail) and writes its
    /// manifest last. Keeps the newest `max_snapshots`.
    pub fn create_snapshot(
        &self,
        collection: &Collection,
        name: &str,
        metadata: Option<serde_json::Value>,
        max_snapshots: Option<usize>,
        progress: &mut Reporter,
    ) -> Result<SnapshotInfo> {
        validate_name(name)?;
        self.save_incremental(collection, progress)?;
        let _guard = lock(&self.tracked);
        let chain = self.manifest()?.ok_or_else(|| Error::Internal {
            reason: "no manifest after a save".into(),
        })?;
        let created_at = now_ms();
        let id = format!(
            "{created_at:013}-{:08x}",
            crate::storage::codec::random_salt() as u32
        );
        let dir = self.snapshots_dir().join(&id);
        let storage = self.storage.as_ref();
        storage
            .create_dir_all(&dir)
            .map_err(|e| Error::io("create directory", &dir, e))?;
        for f in &chain.files {
            let from = self.dir.join(&f.file);
            let to = dir.join(&f.file);
            if storage.hard_link(&from, &to).is_err() {
                let bytes = storage
                    .read(&from)
                    .map_err(|e| Error::io("read", &from, e))?;
                let file = storage
                    .create(&to)
                    .map_err(|e| Error::io("create", &to, e))?;
                file.append(&bytes)
                    .map_err(|e| Error::io("write", &to, e))?;
                file.sync().map_err(|e| Error::io("fsync", &to, e))?;
            }
        }
        storage
            .sync_dir(&dir)
            .map_err(|e| Error::io("fsync directory", &dir, e))?;
        let snapshot = SnapshotManifest {
            id: id.clone(),
            name: name.to_owned(),
            created_at,
            metadata,
            chain,
        };
        let json = serde_json::to_vec_pretty(&snapshot).map_err(|e| Error::Internal {
            reason: format!("snapshot manifest: {e}"),
        })?;
        write_atomic(storage, &dir, SNAPSHOT_MANIFEST, &json)?;
        storage
            .sync_dir(&self.snapshots_dir())
            .map_err(|e| Error::io("fsync directory", &self.snapshots_dir(), e))?;
        if let Some(max) = max_snapshots {
            let all = self.snapshot_manifests()?;
            let excess = all.len().saturating_sub(max);
            for old in &all[..excess] {
                self.remove_snapshot(&old.id)?;
            }
        }
        Ok(Self::info(&snapshot))
    }

    fn remove_snapshot(&self, id: &str) -> Result<()> {
        let storage = self.storage.as_ref();
        let dir = self.snapshots_dir().join(id);
        // The manifest first: without it the snapshot no longer exists, whatever else stays.
        let manifest = dir.join(SNAPSHOT_MANIFEST);
        storage
            .remove(&manifest)
            .map_err(|e| Error::io("remove", &manifest, e))?;
        storage
            .sync_dir(&dir)
            .map_err(|e| Error::io("fsync directory", &dir, e))?;
        let names = storage.list(&dir).map_err(|e| Error::io("list", &dir, e))?;
        for name in names {
            let path = dir.join(name);
            storage
                .remove(&path)
                .map_err(|e| Error::io("remove", &path, e))?;
        }
        storage
            .remove_dir(&dir)
            .map_err(|e| Error::io("remove", &dir, e))?;
        storage
            .sync_dir(&self.snapshots_dir())
            .map_err(|e| Error::io("fsync directory", &self.snapshots_dir(), e))
    }

    pub fn delete_snapshot(&self, key: &str) -> Result<SnapshotInfo> {
        let _guard = lock(&self.tracked);
        let snapshot = self.find(key)?;
        self.remove_snapshot(&snapshot.id)?;
        Ok(Self::info(&snapshot))
    }

    /// Reads and checks a snapshot; the collection it holds.
    pub fn read_snapshot(
        &self,
        key: &str,
        config: &CollectionConfig,
        progress: &mut Reporter,
    ) -> Result<(Collection, SnapshotInfo)> {
        let _guard = lock(&self.tracked);
        let snapshot = self.find(key)?;
        let dir = self.snapshots_dir().join(&snapshot.id);
        let collection = load_chain(
            self.storage.as_ref(),
            &dir,
            &snapshot.chain,
            config,
            progress,
        )?;
        Ok((collection, Self::info(&snapshot)))
    }
}

// ------------------------------------------------------------------ the store

/// What a load put in the store.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadSummary {
    pub count: u64,
    pub files: usize,
    pub bytes: u64,
    pub saved_at: u64,
}

impl SaveDir {
    /// A full save of the store as of this call.
    pub fn save_store(&self, store: &Store, progress: &mut Reporter) -> Result<SaveSummary> {
        self.save(&store.collection_copy()?, progress)
    }

    /// An incremental save of the store as of this call.
    pub fn save_store_incremental(
        &self,
        store: &Store,
        progress: &mut Reporter,
    ) -> Result<SaveSummary> {
        self.save_incremental(&store.collection_copy()?, progress)
    }

    /// Replaces the store's state with the saved chain, at `ticket`'s place
    /// in the write order, atomically; nothing changes when any file fails
    /// its check.
    pub fn load_into(
        &self,
        store: &Store,
        ticket: WriteTicket,
        progress: &mut Reporter,
    ) -> Result<LoadSummary> {
        let (collection, manifest) = self.load(store.config(), progress)?;
        let mark = collection.journal_mark();
        progress.start("write", 1, "replacing the store's state");
        store.restore_state(ticket, collection)?;
        progress.finish("loaded");
        let summary = LoadSummary {
            count: manifest.count,
            files: manifest.files.len(),
            bytes: manifest.files.iter().map(|f| f.bytes).sum(),
            saved_at: manifest.saved_at,
        };
        self.loaded(mark, manifest);
        Ok(summary)
    }

    pub fn snapshot_store(
        &self,
        store: &Store,
        name: &str,
        metadata: Option<serde_json::Value>,
        max_snapshots: Option<usize>,
        progress: &mut Reporter,
    ) -> Result<SnapshotInfo> {
        validate_name(name)?;
        let copy = store.collection_copy()?;
        self.create_snapshot(&copy, name, metadata, max_snapshots, progress)
    }

    /// Verifies the snapshot, then makes it the store's state, atomically.
    pub fn restore_store(
        &self,
        store: &Store,
        ticket: WriteTicket,
        key: &str,
        progress: &mut Reporter,
    ) -> Result<SnapshotInfo> {
        let (collection, info) = self.read_snapshot(key, store.config(), progress)?;
        progress.start("write", 1, format!("restoring snapshot {}", info.id));
        store.restore_state(ticket, collection)?;
        progress.finish("restored");
        Ok(info)
    }
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests;
