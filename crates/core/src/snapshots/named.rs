//! Named snapshots of a collection: a point in its write order kept under
//! a name, to restore later.
//!
//! A snapshot is the files that already hold the state, not a new copy of
//! it: the checkpoint file the manifest names and the WAL files after it,
//! up to the snapshot's sequence number. Taking one seals the WAL (the
//! file being appended to is closed and a new one started, so every record
//! so far lies in files nothing writes again) and gives those files a
//! second name under `snapshots/<id>/`, by hard link where the file system
//! has them and by copy otherwise. With hard links its cost is a few
//! fsyncs and the hashing of the WAL files since the last checkpoint; it
//! does not grow with the collection (the checkpoint file's SHA-256 is
//! computed when this process writes it) nor with the number of snapshots.
//!
//! Layout, inside the collection's directory:
//!
//! ```text
//! snapshots/
//!   <id>/                       id = <createdAt ms, 13 digits>-<8 hex digits>
//!     snapshot-<gen:020>.avs    the checkpoint it starts from (absent if none yet)
//!     wal-<gen:020>.log …       the WAL files after it, complete
//!     SNAPSHOT                  its manifest, written last
//! ```
//!
//! `SNAPSHOT`:
//!
//! ```text
//!   0  magic     b"AVNSNAP\0"
//!   8  version   u32 = 1
//!  12  json_len  u32
//!  16  json_crc  u32   crc32c of the JSON bytes
//!  20  json      { id, name, createdAt, sequence, count, bytes, checksum,
//!                  metadata, dimension, distance, snapshotSeq,
//!                  files: [{ name, bytes, sha256 }] }
//! ```
//!
//! `checksum` is the SHA-256, in hex, of the concatenation over `files` in
//! order of: the name's UTF-8 bytes, a 0 byte, `bytes` as u64 LE, and the
//! file's SHA-256 (32 bytes). Restore recomputes every file's SHA-256 from
//! its bytes first and refuses with `CORRUPT` on any difference.
//!
//! Crash safety. Create: a snapshot exists once its `SNAPSHOT` does, which
//! is written atomically (temp file, fsync, rename, fsync directory) after
//! its files are durable; a directory without one is the leftover of a
//! crash and the next create removes it. Delete: `SNAPSHOT` goes first
//! (durably), then the rest. Restore: the snapshot's state is written as a
//! checkpoint of the collection (a new WAL file, the checkpoint file, then
//! the manifest naming both): the manifest's rename switches the collection
//! from the old state to the snapshot's, so a crash at any step leaves one
//! or the other. The open store then serves the snapshot's state, and
//! writes queued behind the restore apply to it.
//!
//! Hard links share their bytes with the collection's files: a file the
//! collection never writes again, but damage to the disk under one name is
//! damage under both, which the snapshot's checksum catches at restore.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::collection::Collection;
use crate::error::{Error, Result};
use crate::progress::Reporter;
use crate::storage::codec::{random_salt, JsonFrame};
use crate::storage::directory::{now_ms, write_atomically};
use crate::storage::engine::StateMachine;
use crate::storage::fs::Storage;
use crate::storage::{snapshot, wal};
use crate::store::{PinnedFiles, Store, WriteTicket};

/// The directory of named snapshots inside a collection's directory.
pub const DIR_NAME: &str = "snapshots";
/// A snapshot's manifest, inside its directory.
pub const MANIFEST_NAME: &str = "SNAPSHOT";
pub const MAGIC: &[u8; 8] = b"AVNSNAP\0";
pub const VERSION: u32 = 1;
/// Longest accepted snapshot name, in bytes.
pub const MAX_NAME_BYTES: usize = 128;
const MAX_JSON_LEN: usize = 16 << 20;
const FRAME: JsonFrame = JsonFrame {
    magic: MAGIC,
    version: VERSION,
    max_len: MAX_JSON_LEN,
    what: "snapshot manifest",
};

/// What `createSnapshot` and `listSnapshots` report of a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotInfo {
    pub id: String,
    pub name: String,
    /// ms since the Unix epoch.
    pub created_at: u64,
    /// Last WAL sequence number it holds: its place in the write order.
    pub sequence: u64,
    /// Points it holds.
    pub count: u64,
    /// Bytes of its files.
    pub bytes: u64,
    /// SHA-256 of its contents, in hex (see the module documentation).
    pub checksum: String,
    pub metadata: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FileEntry {
    name: String,
    bytes: u64,
    sha256: String,
}

/// The JSON of a `SNAPSHOT` file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SnapshotManifest {
    id: String,
    name: String,
    created_at: u64,
    sequence: u64,
    count: u64,
    bytes: u64,
    checksum: String,
    metadata: serde_json::Value,
    dimension: usize,
    distance: String,
    /// Last sequence number of the checkpoint file (0 when there is none).
    snapshot_seq: u64,
    files: Vec<FileEntry>,
}

impl SnapshotManifest {
    fn info(&self) -> SnapshotInfo {
        SnapshotInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            created_at: self.created_at,
            sequence: self.sequence,
            count: self.count,
            bytes: self.bytes,
            checksum: self.checksum.clone(),
            metadata: self.metadata.clone(),
        }
    }

    fn encode(&self) -> Vec<u8> {
        FRAME.encode(self)
    }

    fn decode(bytes: &[u8]) -> std::result::Result<Self, (u64, String)> {
        FRAME.decode(bytes)
    }
}

/// Refuses a snapshot name that is empty, longer than
/// [`MAX_NAME_BYTES`], or holds a path separator, `..`, NUL or another
/// control character. Names never become paths (ids do), but one that
/// looks like a path is a mistake worth stopping.
pub fn validate_name(name: &str) -> Result<()> {
    let invalid = |reason: &str| Error::InvalidSnapshotName {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    if name.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(invalid(&format!("is longer than {MAX_NAME_BYTES} bytes")));
    }
    if name.contains(['/', '\\']) {
        return Err(invalid("must not contain a path separator"));
    }
    if name.contains("..") || name == "." {
        return Err(invalid("must not be '.' or contain '..'"));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("must not contain NUL or other control characters"));
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(Sha256::digest(bytes).as_slice());
    out
}

/// The snapshot's checksum over its file list (see the module documentation).
fn checksum_of(files: &[(String, u64, [u8; 32])]) -> String {
    let mut hasher = Sha256::new();
    for (name, bytes, digest) in files {
        hasher.update(name.as_bytes());
        hasher.update([0u8]);
        hasher.update(bytes.to_le_bytes());
        hasher.update(digest);
    }
    hex(hasher.finalize().as_slice())
}

fn io<'a>(operation: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |e| Error::io(operation, path, e)
}

/// The named snapshots of one collection directory.
struct Snapshots<'a> {
    storage: &'a dyn Storage,
    /// `<collection>/snapshots`.
    root: PathBuf,
}

impl<'a> Snapshots<'a> {
    fn new(storage: &'a dyn Storage, collection_dir: &Path) -> Self {
        Snapshots {
            storage,
            root: collection_dir.join(DIR_NAME),
        }
    }

    /// Entries of `snapshots/` (ids, and leftovers of crashed operations).
    fn entries(&self) -> Result<Vec<String>> {
        if !self.storage.exists(&self.root) {
            return Ok(Vec::new());
        }
        self.storage
            .list(&self.root)
            .map_err(io("list", &self.root))
    }

    fn manifest_path(&self, id: &str) -> PathBuf {
        self.root.join(id).join(MANIFEST_NAME)
    }

    fn read(&self, id: &str) -> Result<SnapshotManifest> {
        let path = self.manifest_path(id);
        let bytes = self.storage.read(&path).map_err(io("read", &path))?;
        SnapshotManifest::decode(&bytes)
            .map_err(|(offset, reason)| Error::corrupt(&path, offset, reason))
    }

    /// Every complete snapshot, oldest first. A damaged manifest is an
    /// error naming it, not a snapshot quietly left out.
    fn all(&self) -> Result<Vec<SnapshotManifest>> {
        let mut found = Vec::new();
        for id in self.entries()? {
            if self.storage.exists(&self.manifest_path(&id)) {
                found.push(self.read(&id)?);
            }
        }
        found.sort_by(|a, b| {
            (a.created_at, a.sequence, &a.id).cmp(&(b.created_at, b.sequence, &b.id))
        });
        Ok(found)
    }

    /// The snapshot with id `key`, else the one named `key`.
    fn find(&self, key: &str) -> Result<SnapshotManifest> {
        validate_name(key)?;
        if self.storage.exists(&self.manifest_path(key)) {
            return self.read(key);
        }
        self.all()?
            .into_iter()
            .find(|m| m.name == key)
            .ok_or_else(|| Error::SnapshotNotFound {
                snapshot: key.to_owned(),
            })
    }

    /// Removes the directory `snapshots/<id>`: its manifest first
    /// (durably), so a crash part-way leaves a leftover, never a snapshot
    /// with files missing.
    fn remove(&self, id: &str) -> Result<()> {
        let dir = self.root.join(id);
        let manifest = dir.join(MANIFEST_NAME);
        if self.storage.exists(&manifest) {
            self.storage
                .remove(&manifest)
                .map_err(io("remove", &manifest))?;
            self.storage
                .sync_dir(&dir)
                .map_err(io("fsync directory", &dir))?;
        }
        for name in self.storage.list(&dir).map_err(io("list", &dir))? {
            let file = dir.join(&name);
            self.storage.remove(&file).map_err(io("remove", &file))?;
        }
        self.storage
            .remove_dir(&dir)
            .map_err(io("remove directory", &dir))?;
        self.storage
            .sync_dir(&self.root)
            .map_err(io("fsync directory", &self.root))
    }

    /// Removes what crashed creates and deletes left: directories without
    /// a manifest. Only under the store's named-snapshot lock.
    fn remove_leftovers(&self) -> Result<()> {
        for id in self.entries()? {
            if !self.storage.exists(&self.manifest_path(&id)) {
                self.remove(&id)?;
            }
        }
        Ok(())
    }

    /// Gives `from` the name `to`: a hard link, or a durable copy where the
    /// file system has no hard links. Returns whether it linked.
    fn link_or_copy(&self, from: &Path, to: &Path) -> Result<bool> {
        if self.storage.hard_link(from, to).is_ok() {
            return Ok(true);
        }
        let bytes = self.storage.read(from).map_err(io("read", from))?;
        let file = self.storage.create(to).map_err(io("create", to))?;
        file.append(&bytes).map_err(io("write", to))?;
        file.sync().map_err(io("fsync", to))?;
        Ok(false)
    }
}

/// How a create went, for tests and benchmarks: what it cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CreateCost {
    /// Files given a second name by hard link.
    pub linked: usize,
    /// Files copied (no hard links on this file system).
    pub copied: usize,
    /// Bytes read to hash (the checkpoint, unless its hash was known).
    pub hashed_bytes: u64,
}

/// Options of [`Store::create_snapshot`].
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Defaults to the id.
    pub name: Option<String>,
    /// Any JSON value, kept with the snapshot.
    pub metadata: Option<serde_json::Value>,
    /// Keep only the newest this many snapshots (after a successful create).
    pub max_snapshots: Option<usize>,
}

impl Store {
    fn snapshot_dir(&self) -> Option<(std::sync::Arc<dyn Storage>, PathBuf)> {
        let (storage, dir) = self.files();
        dir.map(|d| (storage, d))
    }

    /// Takes a named snapshot of the state at `ticket`'s place in the write
    /// order. Writes go on meanwhile (they wait only for the WAL's seal).
    pub fn create_snapshot(
        &self,
        ticket: WriteTicket,
        options: &CreateOptions,
    ) -> Result<SnapshotInfo> {
        self.create_snapshot_reporting(ticket, options, &mut Reporter::silent("snapshot"))
    }

    /// [`Store::create_snapshot`], reporting its phases: `files` (each file
    /// linked or copied, and hashed unless its hash is known) and `write`
    /// (the snapshot's manifest).
    pub fn create_snapshot_reporting(
        &self,
        ticket: WriteTicket,
        options: &CreateOptions,
        progress: &mut Reporter,
    ) -> Result<SnapshotInfo> {
        self.create_snapshot_with(ticket, options, progress)
            .map(|(i, _)| i)
    }

    /// [`Store::create_snapshot`], also saying what it cost.
    pub fn create_snapshot_costed(
        &self,
        ticket: WriteTicket,
        options: &CreateOptions,
    ) -> Result<(SnapshotInfo, CreateCost)> {
        self.create_snapshot_with(ticket, options, &mut Reporter::silent("snapshot"))
    }

    fn create_snapshot_with(
        &self,
        ticket: WriteTicket,
        options: &CreateOptions,
        progress: &mut Reporter,
    ) -> Result<(SnapshotInfo, CreateCost)> {
        if let Some(name) = &options.name {
            validate_name(name)?;
        }
        if options.max_snapshots == Some(0) {
            return Err(Error::InvalidArgument {
                name: "maxSnapshots",
                reason: "must be at least 1".into(),
            });
        }
        // Pinned first, holding no lock: a restore holds the named-snapshot
        // lock only while it holds no place in the write order, so taking
        // the lock after the pin can never wait on a write ticket.
        let pin = self.pin_files(ticket)?;
        let _named = self.named_snapshot_lock();
        let storage = self.files().0;
        let pinned = &pin.files;
        let snapshots = Snapshots::new(storage.as_ref(), &pinned.dir);
        storage
            .create_dir_all(&snapshots.root)
            .map_err(io("create directory", &snapshots.root))?;
        storage
            .sync_dir(&pinned.dir)
            .map_err(io("fsync directory", &pinned.dir))?;
        snapshots.remove_leftovers()?;
        let existing = snapshots.all()?;
        let created_at = now_ms();
        let id = format!("{created_at:013}-{:08x}", random_salt() as u32);
        let name = options.name.clone().unwrap_or_else(|| id.clone());
        if let Some(other) = existing.iter().find(|m| m.name == name || m.id == name) {
            return Err(Error::InvalidSnapshotName {
                name,
                reason: format!("snapshot {} already has this name", other.id),
            });
        }
        // Files an earlier snapshot holds too (checkpoints and sealed WAL
        // files are never rewritten, and generations are never reused):
        // their SHA-256 is known, so a create reads only the WAL files
        // sealed since the last snapshot.
        let known: HashMap<String, (u64, [u8; 32])> = existing
            .iter()
            .flat_map(|m| m.files.iter())
            .filter_map(|f| Some((f.name.clone(), (f.bytes, unhex(&f.sha256)?))))
            .collect();
        let (info, cost) = self.write_snapshot(
            &snapshots, pinned, &known, id, name, created_at, options, progress,
        )?;
        drop(pin);
        if let Some(max) = options.max_snapshots {
            let all = snapshots.all()?;
            let excess = all.len().saturating_sub(max);
            for old in all.iter().filter(|m| m.id != info.id).take(excess) {
                snapshots.remove(&old.id)?;
            }
        }
        Ok((info, cost))
    }

    #[allow(clippy::too_many_arguments)]
    fn write_snapshot(
        &self,
        snapshots: &Snapshots<'_>,
        pinned: &PinnedFiles,
        known: &HashMap<String, (u64, [u8; 32])>,
        id: String,
        name: String,
        created_at: u64,
        options: &CreateOptions,
        progress: &mut Reporter,
    ) -> Result<(SnapshotInfo, CreateCost)> {
        let storage = snapshots.storage;
        let target = snapshots.root.join(&id);
        storage
            .create_dir_all(&target)
            .map_err(io("create directory", &target))?;
        storage
            .sync_dir(&snapshots.root)
            .map_err(io("fsync directory", &snapshots.root))?;
        let mut cost = CreateCost::default();
        let mut files = Vec::with_capacity(pinned.files.len());
        progress.start(
            "files",
            pinned.files.len() as u64,
            format!("linking and hashing {} files", pinned.files.len()),
        );
        for file in &pinned.files {
            let from = pinned.dir.join(file);
            let to = target.join(file);
            if snapshots.link_or_copy(&from, &to)? {
                cost.linked += 1;
            } else {
                cost.copied += 1;
            }
            let bytes = storage.size(&to).map_err(io("read", &to))?;
            let checkpoint = snapshot::parse_file_name(file);
            let known = match (checkpoint, pinned.checkpoint_digest) {
                (Some(g), Some(digest)) if g == pinned.manifest.snapshot => Some(digest),
                _ => known
                    .get(file)
                    .filter(|(size, _)| *size == bytes)
                    .map(|(_, digest)| *digest),
            };
            let digest = match known {
                Some(digest) => digest,
                None => {
                    let content = storage.read(&to).map_err(io("read", &to))?;
                    cost.hashed_bytes += content.len() as u64;
                    let digest = sha256(&content);
                    if let Some(generation) = checkpoint {
                        self.remember_checkpoint_digest(generation, digest);
                    }
                    digest
                }
            };
            files.push((file.clone(), bytes, digest));
            progress.tick(files.len() as u64);
        }
        progress.finish(format!("{} linked, {} copied", cost.linked, cost.copied));
        storage
            .sync_dir(&target)
            .map_err(io("fsync directory", &target))?;
        let config = self.config();
        let manifest = SnapshotManifest {
            id,
            name,
            created_at,
            sequence: pinned.sequence,
            count: pinned.count as u64,
            bytes: files.iter().map(|(_, b, _)| b).sum(),
            checksum: checksum_of(&files),
            metadata: options.metadata.clone().unwrap_or(serde_json::Value::Null),
            dimension: config.dimension,
            distance: config.distance.name().to_owned(),
            snapshot_seq: pinned.manifest.snapshot_seq,
            files: files
                .iter()
                .map(|(name, bytes, digest)| FileEntry {
                    name: name.clone(),
                    bytes: *bytes,
                    sha256: hex(digest),
                })
                .collect(),
        };
        progress.start("write", 1, format!("writing snapshot {}", manifest.id));
        write_atomically(storage, &target, MANIFEST_NAME, &manifest.encode())?;
        progress.finish(format!(
            "snapshot {} of {} points",
            manifest.id, manifest.count
        ));
        Ok((manifest.info(), cost))
    }

    /// Every named snapshot, oldest first (none for a memory-only store).
    pub fn list_snapshots(&self) -> Result<Vec<SnapshotInfo>> {
        let Some((storage, dir)) = self.snapshot_dir() else {
            return Ok(Vec::new());
        };
        let _named = self.named_snapshot_lock();
        Ok(Snapshots::new(storage.as_ref(), &dir)
            .all()?
            .iter()
            .map(SnapshotManifest::info)
            .collect())
    }

    /// Deletes the snapshot with id (or else name) `key`; returns what it was.
    pub fn delete_snapshot(&self, key: &str) -> Result<SnapshotInfo> {
        validate_name(key)?;
        let Some((storage, dir)) = self.snapshot_dir() else {
            return Err(Error::SnapshotNotFound {
                snapshot: key.to_owned(),
            });
        };
        let _named = self.named_snapshot_lock();
        let snapshots = Snapshots::new(storage.as_ref(), &dir);
        let manifest = snapshots.find(key)?;
        snapshots.remove(&manifest.id)?;
        Ok(manifest.info())
    }

    /// Restores the snapshot with id (or else name) `key` at `ticket`'s
    /// place in the write order: checks every file against its SHA-256
    /// (refusing a damaged snapshot with `CORRUPT`, nothing changed), loads
    /// it, then makes it the collection's state on disk and in this store.
    pub fn restore_snapshot(
        &self,
        ticket: WriteTicket,
        key: &str,
        progress: &mut Reporter,
    ) -> Result<SnapshotInfo> {
        validate_name(key)?;
        let Some((storage, dir)) = self.snapshot_dir() else {
            return Err(Error::SnapshotNotFound {
                snapshot: key.to_owned(),
            });
        };
        // Loaded under the lock (no delete meanwhile), which is released
        // before the ticket is used: see `create_snapshot_costed`.
        let (manifest, collection) = {
            let _named = self.named_snapshot_lock();
            let snapshots = Snapshots::new(storage.as_ref(), &dir);
            let manifest = snapshots.find(key)?;
            let target = snapshots.root.join(&manifest.id);
            verify_files(storage.as_ref(), &target, &manifest, progress)?;
            let collection = load(storage.as_ref(), &target, &manifest, self, progress)?;
            (manifest, collection)
        };
        progress.start("write", 1, format!("restoring snapshot {}", manifest.id));
        self.restore_state(ticket, collection)?;
        progress.finish(format!("restored snapshot {}", manifest.id));
        Ok(manifest.info())
    }
}

/// What `verify()` reports of one named snapshot: `snapshots/<id>`, the
/// bytes of its files, and why it would not restore (if it would not).
pub struct SnapshotCheck {
    pub file: String,
    pub bytes: u64,
    pub outcome: std::result::Result<(), String>,
}

impl Store {
    /// Checks every named snapshot as a restore would (each file against
    /// its SHA-256, the list against the snapshot's checksum, the manifest's
    /// own checksum), changing nothing. Directories without a `SNAPSHOT`
    /// are leftovers of an interrupted create, which the next create
    /// removes: not problems.
    pub fn verify_snapshots(&self, progress: &mut Reporter) -> Result<Vec<SnapshotCheck>> {
        let Some((storage, dir)) = self.snapshot_dir() else {
            return Ok(Vec::new());
        };
        let _named = self.named_snapshot_lock();
        let snapshots = Snapshots::new(storage.as_ref(), &dir);
        let mut checks = Vec::new();
        let mut ids = snapshots.entries()?;
        ids.sort();
        for id in ids {
            if !storage.exists(&snapshots.manifest_path(&id)) {
                continue;
            }
            let file = format!("{DIR_NAME}/{id}");
            let (bytes, outcome) = match snapshots.read(&id) {
                Ok(manifest) => (
                    manifest.files.iter().map(|f| f.bytes).sum(),
                    verify_files(
                        storage.as_ref(),
                        &snapshots.root.join(&id),
                        &manifest,
                        progress,
                    )
                    .map_err(|e| e.full_message()),
                ),
                Err(e) => (0, Err(e.full_message())),
            };
            checks.push(SnapshotCheck {
                file,
                bytes,
                outcome,
            });
        }
        Ok(checks)
    }
}

/// Checks every file of a snapshot against its SHA-256, and the list
/// against the snapshot's checksum.
fn verify_files(
    storage: &dyn Storage,
    target: &Path,
    manifest: &SnapshotManifest,
    progress: &mut Reporter,
) -> Result<()> {
    let total: u64 = manifest.files.iter().map(|f| f.bytes).sum();
    progress.start(
        "verify",
        total,
        format!("verifying snapshot {}", manifest.id),
    );
    let mut done = 0;
    let mut digests = Vec::with_capacity(manifest.files.len());
    for entry in &manifest.files {
        let path = target.join(&entry.name);
        if snapshot::parse_file_name(&entry.name).is_none()
            && wal::parse_file_name(&entry.name).is_none()
        {
            return Err(Error::corrupt(
                &target.join(MANIFEST_NAME),
                0,
                format!(
                    "lists {:?}, which is not a snapshot or WAL file",
                    entry.name
                ),
            ));
        }
        let bytes = storage.read(&path).map_err(io("read", &path))?;
        let digest = sha256(&bytes);
        if bytes.len() as u64 != entry.bytes || hex(&digest) != entry.sha256 {
            return Err(Error::corrupt(
                &path,
                0,
                format!(
                    "the file ({} bytes) does not match the SHA-256 its snapshot recorded ({} bytes)",
                    bytes.len(),
                    entry.bytes
                ),
            ));
        }
        digests.push((entry.name.clone(), entry.bytes, digest));
        done += entry.bytes;
        progress.tick(done);
    }
    if checksum_of(&digests) != manifest.checksum {
        return Err(Error::corrupt(
            &target.join(MANIFEST_NAME),
            0,
            "the snapshot's checksum does not match its files",
        ));
    }
    progress.finish("every file matches its SHA-256");
    Ok(())
}

/// The state a (verified) snapshot holds: its checkpoint with its WAL
/// files replayed on top.
fn load(
    storage: &dyn Storage,
    target: &Path,
    manifest: &SnapshotManifest,
    store: &Store,
    progress: &mut Reporter,
) -> Result<Collection> {
    let config = *store.config();
    let manifest_path = target.join(MANIFEST_NAME);
    if manifest.dimension != config.dimension || manifest.distance != config.distance.name() {
        return Err(Error::ConfigMismatch {
            reason: format!(
                "the snapshot holds dimension {} and distance {}, the store has {} and {}",
                manifest.dimension,
                manifest.distance,
                config.dimension,
                config.distance.name()
            ),
        });
    }
    progress.start(
        "load",
        manifest.files.len() as u64,
        format!("loading snapshot {}", manifest.id),
    );
    let mut collection = Collection::new(config);
    let mut next_seq = 1;
    for (index, entry) in manifest.files.iter().enumerate() {
        let path = target.join(&entry.name);
        if snapshot::parse_file_name(&entry.name).is_some() {
            if index != 0 {
                return Err(Error::corrupt(
                    &manifest_path,
                    0,
                    "the checkpoint file is not listed first",
                ));
            }
            let (state, seq) = Collection::read_checkpoint(storage, &path, &config)?;
            if seq != manifest.snapshot_seq {
                return Err(Error::corrupt(
                    &path,
                    0,
                    format!(
                        "holds sequence {seq}, the snapshot says {}",
                        manifest.snapshot_seq
                    ),
                ));
            }
            collection = state;
            next_seq = seq + 1;
            continue;
        }
        let bytes = storage.read(&path).map_err(io("read", &path))?;
        let scan =
            wal::scan(&bytes).map_err(|(offset, reason)| Error::corrupt(&path, offset, reason))?;
        if scan.header.first_seq != next_seq {
            return Err(Error::corrupt(
                &path,
                24,
                format!(
                    "starts at sequence {}, expected {next_seq}",
                    scan.header.first_seq
                ),
            ));
        }
        if let wal::End::Torn { offset, reason } | wal::End::Corrupt { offset, reason } = &scan.end
        {
            return Err(Error::corrupt(&path, *offset, reason.clone()));
        }
        for record in &scan.records {
            collection
                .replay(record.op, &bytes[record.body.clone()])
                .map_err(|reason| Error::corrupt(&path, record.offset, reason))?;
            next_seq = record.seq + 1;
        }
        progress.tick(index as u64 + 1);
    }
    if next_seq - 1 != manifest.sequence || collection.len() as u64 != manifest.count {
        return Err(Error::corrupt(
            &manifest_path,
            0,
            format!(
                "its files hold {} points up to sequence {}, it says {} up to {}",
                collection.len(),
                next_seq - 1,
                manifest.count,
                manifest.sequence
            ),
        ));
    }
    progress.finish(format!("{} points", collection.len()));
    Ok(collection)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_names_are_refused() {
        for name in [
            "",
            "../x",
            "a/b",
            "a\\b",
            "/",
            ".",
            "..",
            "a\0b",
            "tab\there",
        ] {
            let error = validate_name(name).unwrap_err();
            assert_eq!(error.kind(), "INVALID_NAME", "{name:?}");
        }
        assert!(validate_name(&"x".repeat(129)).is_err());
        for name in [
            "before-reingest",
            "v1.2",
            "nightly 2026-12-01",
            &"x".repeat(128),
        ] {
            validate_name(name).unwrap();
        }
    }

    #[test]
    fn a_manifest_round_trips_and_every_flip_or_cut_is_detected() {
        let manifest = SnapshotManifest {
            id: "0001700000000000-0badcafe".into(),
            name: "n".into(),
            created_at: 1_700_000_000_000,
            sequence: 9,
            count: 3,
            bytes: 100,
            checksum: "ab".repeat(32),
            metadata: serde_json::json!({ "why": "test" }),
            dimension: 4,
            distance: "Cosine".into(),
            snapshot_seq: 5,
            files: vec![FileEntry {
                name: wal::file_name(2),
                bytes: 100,
                sha256: "cd".repeat(32),
            }],
        };
        let bytes = manifest.encode();
        assert_eq!(SnapshotManifest::decode(&bytes).unwrap(), manifest);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(SnapshotManifest::decode(&bad).is_err(), "flip at {i}");
            assert!(SnapshotManifest::decode(&bytes[..i]).is_err(), "cut at {i}");
        }
    }

    #[test]
    fn the_checksum_covers_names_sizes_and_contents() {
        let base = vec![("a".to_string(), 1, [1u8; 32])];
        let sum = checksum_of(&base);
        assert_eq!(sum.len(), 64);
        assert_ne!(sum, checksum_of(&[("b".to_string(), 1, [1u8; 32])]));
        assert_ne!(sum, checksum_of(&[("a".to_string(), 2, [1u8; 32])]));
        assert_ne!(sum, checksum_of(&[("a".to_string(), 1, [2u8; 32])]));
    }
}
