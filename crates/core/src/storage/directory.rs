//! One persisted state machine's directory (a collection's, a key-value
//! table's): `LOCK`, `MANIFEST`, `snapshot-*.avs`, `wal-*.log`. Opening it
//! recovers the state; afterwards it appends WAL records and publishes
//! checkpoints. Generic over the [`StateMachine`]: the collection and the
//! key-value table share every line of it.
//!
//! Checkpoint protocol (each step durable before the next):
//! 1. rotate: create `wal-<g+1>` (header, fsync, fsync dir); new records go there;
//! 2. write `snapshot-<g>.avs.tmp` from a copy of the state as of the last
//!    record of `wal-<g>`, fsync, rename to `snapshot-<g>.avs`, fsync dir;
//! 3. write `MANIFEST` the same way, now naming `snapshot-<g>` and `walStart = g+1`;
//! 4. remove the WAL files and snapshots the manifest no longer names.
//!
//! A crash anywhere leaves the old manifest (old snapshot + every WAL file
//! from its `walStart`, all still present) or the new one (new snapshot +
//! `wal-<g+1>` onwards): nothing acknowledged is lost either way.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::collection::{Collection, CollectionConfig};
use crate::error::{Error, Result};
use crate::op::{decode_record, Op};
use crate::progress::Reporter;
use crate::storage::codec::random_salt;
use crate::storage::engine::{encode_group, CheckpointOut, LogOp, StateMachine, OP_GROUP};
use crate::storage::fs::{Storage, StorageFile, StorageLock};
use crate::storage::manifest::{self, Manifest};
use crate::storage::{snapshot, wal};

pub const LOCK_FILE: &str = "LOCK";
const TMP_SUFFIX: &str = ".tmp";

/// When a write's Promise resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// After `fdatasync` of the WAL: survives a power cut.
    #[default]
    Fsync,
    /// After `write` to the OS: survives the process being killed, not a power cut.
    Flush,
}

/// What open does with a corrupt WAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// Refuse to open, naming the file and offset.
    #[default]
    Strict,
    /// Keep everything before the corruption, move the rest to
    /// `recovered-<ms>/` in the collection directory, and open.
    Truncate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirOptions {
    pub durability: Durability,
    pub recovery: RecoveryMode,
    pub gzip: bool,
    /// Brotli-compress snapshots (takes precedence over `gzip`).
    pub brotli: bool,
    /// A checkpoint starts in the background once the WAL holds this many bytes.
    pub checkpoint_wal_bytes: u64,
}

impl DirOptions {
    /// How checkpoints store a snapshot's body.
    pub fn snapshot_compression(&self) -> snapshot::Compression {
        match (self.brotli, self.gzip) {
            (true, _) => snapshot::Compression::Brotli,
            (false, true) => snapshot::Compression::Gzip,
            (false, false) => snapshot::Compression::None,
        }
    }
}

impl Default for DirOptions {
    fn default() -> Self {
        DirOptions {
            durability: Durability::Fsync,
            recovery: RecoveryMode::Strict,
            gzip: false,
            brotli: false,
            checkpoint_wal_bytes: 64 << 20,
        }
    }
}

/// What recovery found, for `stats()` and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub snapshot_points: usize,
    pub replayed_records: u64,
    /// Bytes of torn tail cut from the last WAL file.
    pub torn_bytes: u64,
    /// What the torn tail was, when there was one.
    pub torn_tail: Option<TornTail>,
    /// Where `RecoveryMode::Truncate` put what it cut, if it cut anything.
    pub recovered_to: Option<PathBuf>,
}

/// The invalid bytes at the end of the last WAL file that open cut away.
///
/// Both kinds are treated as a write the crash interrupted (a power cut can
/// leave a full-length record with garbage inside, or part of a record
/// followed by zeros where the rest never reached the disk), so both are cut
/// in `Strict` mode too: such a
/// record was never acknowledged, because its write or fsync had not
/// finished. They are told apart so that a bit flip in the last record, which
/// also lands here, is visible in `stats()` rather than silent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub file: PathBuf,
    /// Where the first invalid byte is (the start of the cut record).
    pub offset: u64,
    pub kind: TornKind,
    /// What check the record failed.
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TornKind {
    /// Fewer bytes remain than a record prefix, or than the record's length
    /// field claims: the append was cut short.
    Incomplete,
    /// The record's full length is there, but it fails its length bounds,
    /// checksum or sequence check: damaged (a partly written or flipped record).
    Damaged,
}

impl TornKind {
    pub fn name(self) -> &'static str {
        match self {
            TornKind::Incomplete => "incomplete",
            TornKind::Damaged => "damaged",
        }
    }

    /// The kind of the invalid record at `offset` in a WAL file's `bytes`.
    fn of(bytes: &[u8], offset: usize) -> TornKind {
        let rest = bytes.get(offset..).unwrap_or_default();
        if rest.len() < wal::RECORD_PREFIX_LEN {
            return TornKind::Incomplete;
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len > rest.len() - wal::RECORD_PREFIX_LEN {
            TornKind::Incomplete
        } else {
            TornKind::Damaged
        }
    }
}

struct WalFile {
    file: Arc<dyn StorageFile>,
    generation: u64,
    salt: u64,
    /// Where the next record goes.
    bytes: u64,
    /// How long the file is: past `bytes` when zeros are reserved ahead.
    reserved: u64,
}

/// Records up to this size are appended into reserved space (zeros written
/// ahead of them), so that their `fdatasync` changes no metadata; larger
/// ones, whose sync is dominated by their data, just extend the file.
const RESERVE_RECORDS_UP_TO: usize = 64 << 10;
/// The least and most a reservation reaches ahead of the data. In between,
/// as far as the file is long, so that a short log stays short.
const RESERVE_MIN: u64 = 64 << 10;
const RESERVE_MAX: u64 = 1 << 20;

/// A consistent copy of the state, to be written as a snapshot off the commit path.
pub struct CheckpointJob<M = Collection> {
    pub state: M,
    pub seq: u64,
    pub generation: u64,
}

/// A vector collection's directory.
pub type CollectionDir = LogDir<Collection>;

pub struct LogDir<M: StateMachine = Collection> {
    storage: Arc<dyn Storage>,
    path: PathBuf,
    options: DirOptions,
    manifest: Manifest,
    wal: WalFile,
    next_seq: u64,
    _lock: Box<dyn StorageLock>,
    _state: std::marker::PhantomData<fn() -> M>,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Writes `name` in `dir` atomically: temp file, fsync, rename, fsync dir.
pub fn write_atomically(storage: &dyn Storage, dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    write_atomically_with(storage, dir, name, &mut |out| out(bytes))
}

/// [`write_atomically`], the bytes handed on by `write` a piece at a time
/// (so that a large file is never whole in memory).
#[allow(clippy::type_complexity)]
pub fn write_atomically_with(
    storage: &dyn Storage,
    dir: &Path,
    name: &str,
    write: &mut dyn FnMut(&mut dyn FnMut(&[u8]) -> std::io::Result<()>) -> std::io::Result<()>,
) -> Result<()> {
    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    let target = dir.join(name);
    let file = storage
        .create(&tmp)
        .map_err(|e| Error::io("create", &tmp, e))?;
    write(&mut |chunk| file.append(chunk)).map_err(|e| Error::io("write", &tmp, e))?;
    file.sync().map_err(|e| Error::io("fsync", &tmp, e))?;
    drop(file);
    storage
        .rename(&tmp, &target)
        .map_err(|e| Error::io("rename", &tmp, e))?;
    storage
        .sync_dir(dir)
        .map_err(|e| Error::io("fsync directory", dir, e))
}

/// Runs `write` with a sink that hashes every byte it is handed (SHA-256),
/// and returns the digest. The hashing runs on a thread of its own, fed a
/// copy of each piece through a short queue, so that it overlaps the
/// encoding and writing (on a fast disk it costs as much as the write);
/// without a thread to be had, it runs inline. `None`: the hashing thread
/// failed, the digest is unknown (the file itself was written).
#[allow(clippy::type_complexity)]
fn write_hashing(
    write: &mut dyn FnMut(&mut dyn FnMut(&[u8]) -> io::Result<()>) -> Result<()>,
) -> Result<Option<[u8; 32]>> {
    use sha2::Digest;
    let digest = |hasher: sha2::Sha256| {
        let mut out = [0u8; 32];
        out.copy_from_slice(hasher.finalize().as_slice());
        out
    };
    std::thread::scope(|scope| {
        let (pieces, queue) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let hashing = std::thread::Builder::new()
            .name("annvault-checkpoint-hash".into())
            .spawn_scoped(scope, move || {
                let mut hasher = sha2::Sha256::new();
                for piece in queue {
                    hasher.update(&piece);
                }
                digest(hasher)
            });
        let Ok(hashing) = hashing else {
            let mut hasher = sha2::Sha256::new();
            write(&mut |chunk| {
                hasher.update(chunk);
                Ok(())
            })?;
            return Ok(Some(digest(hasher)));
        };
        let written = write(&mut |chunk| {
            pieces
                .send(chunk.to_vec())
                .map_err(|_| io::Error::other("the checkpoint's hashing thread stopped"))
        });
        drop(pieces);
        let sha = hashing.join().ok();
        written.map(|()| sha)
    })
}

fn create_wal(
    storage: &dyn Storage,
    dir: &Path,
    generation: u64,
    first_seq: u64,
) -> Result<WalFile> {
    let path = dir.join(wal::file_name(generation));
    let salt = random_salt();
    let header = wal::Header { salt, first_seq }.encode();
    let file = storage
        .create(&path)
        .map_err(|e| Error::io("create", &path, e))?;
    file.append(&header)
        .map_err(|e| Error::io("write", &path, e))?;
    file.sync().map_err(|e| Error::io("fsync", &path, e))?;
    storage
        .sync_dir(dir)
        .map_err(|e| Error::io("fsync directory", dir, e))?;
    Ok(WalFile {
        file,
        generation,
        salt,
        bytes: header.len() as u64,
        reserved: header.len() as u64,
    })
}

impl<M: StateMachine> LogDir<M> {
    /// Takes the lock and recovers the collection stored in `path`
    /// (creating an empty one if the directory holds none).
    pub fn open(
        storage: Arc<dyn Storage>,
        path: &Path,
        config: M::Config,
        options: DirOptions,
    ) -> Result<(LogDir<M>, M, RecoveryReport)> {
        Self::open_reporting(
            storage,
            path,
            config,
            options,
            &mut Reporter::silent("open"),
        )
    }

    /// [`LogDir::open`], reporting its phases: `load` (the checkpoint) and
    /// `replay` (the WAL, in bytes).
    pub fn open_reporting(
        storage: Arc<dyn Storage>,
        path: &Path,
        config: M::Config,
        options: DirOptions,
        progress: &mut Reporter,
    ) -> Result<(LogDir<M>, M, RecoveryReport)> {
        storage
            .create_dir_all(path)
            .map_err(|e| Error::io("create directory", path, e))?;
        let lock_path = path.join(LOCK_FILE);
        let lock = storage.lock(&lock_path).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock => Error::InUse {
                path: path.display().to_string(),
            },
            _ => Error::io("lock", &lock_path, e),
        })?;
        let names = storage.list(path).map_err(|e| Error::io("list", path, e))?;
        for name in names.iter().filter(|n| n.ends_with(TMP_SUFFIX)) {
            let leftover = path.join(name);
            storage
                .remove(&leftover)
                .map_err(|e| Error::io("remove", &leftover, e))?;
        }
        let manifest_path = path.join(manifest::FILE_NAME);
        if !names.iter().any(|n| n == manifest::FILE_NAME) {
            if let Some(stray) = names.iter().find(|n| {
                wal::parse_file_name(n).is_some() || snapshot::parse_file_name(n).is_some()
            }) {
                return Err(Error::corrupt(
                    &manifest_path,
                    0,
                    format!(
                        "MANIFEST is missing but {stray} exists; refusing to start empty over it"
                    ),
                ));
            }
            return Self::create_fresh(storage, path, config, options, lock);
        }
        let manifest_bytes = storage
            .read(&manifest_path)
            .map_err(|e| Error::io("read", &manifest_path, e))?;
        let manifest = Manifest::decode(&manifest_bytes)
            .map_err(|(offset, reason)| Error::corrupt(&manifest_path, offset, reason))?;
        M::check_manifest(&manifest, &config)?;
        let mut report = RecoveryReport::default();
        let mut collection = if manifest.snapshot == 0 {
            M::empty(&config)
        } else {
            let snapshot_path = path.join(snapshot::file_name(manifest.snapshot));
            if !storage.exists(&snapshot_path) {
                return Err(Error::corrupt(
                    &manifest_path,
                    0,
                    format!(
                        "the manifest names {}, which is missing",
                        snapshot_path.display()
                    ),
                ));
            }
            progress.start(
                "load",
                1,
                format!("loading {}", snapshot::file_name(manifest.snapshot)),
            );
            let (collection, seq) = M::read_checkpoint(storage.as_ref(), &snapshot_path, &config)?;
            if seq != manifest.snapshot_seq {
                return Err(Error::corrupt(
                    &snapshot_path,
                    0,
                    format!(
                        "the checkpoint holds sequence {seq}, the manifest says {}",
                        manifest.snapshot_seq
                    ),
                ));
            }
            report.snapshot_points = collection.entry_count();
            progress.finish(format!("loaded {} entries", report.snapshot_points));
            collection
        };

        let mut generations: Vec<u64> = names
            .iter()
            .filter_map(|n| wal::parse_file_name(n))
            .filter(|&g| g >= manifest.wal_start)
            .collect();
        generations.sort_unstable();
        if generations.is_empty() && manifest.snapshot == 0 && manifest.wal_start == 1 {
            // Creation was interrupted before the first log file existed:
            // nothing was ever written.
            let wal = create_wal(storage.as_ref(), path, 1, 1)?;
            let dir = LogDir::assemble(storage, path, options, manifest, wal, 1, lock);
            return Ok((dir, collection, report));
        }
        if generations.first() != Some(&manifest.wal_start) {
            return Err(Error::corrupt(
                &manifest_path,
                0,
                format!(
                    "the manifest starts the log at {}, which is missing",
                    wal::file_name(manifest.wal_start)
                ),
            ));
        }
        if let Some(pair) = generations.windows(2).find(|w| w[1] != w[0] + 1) {
            return Err(Error::corrupt(
                &path.join(wal::file_name(pair[0] + 1)),
                0,
                "a WAL file in the middle of the log is missing",
            ));
        }

        let mut next_seq = manifest.snapshot_seq + 1;
        let mut open_wal = None;
        let last_index = generations.len() - 1;
        let wal_bytes: u64 = generations
            .iter()
            .map(|&g| storage.size(&path.join(wal::file_name(g))).unwrap_or(0))
            .sum();
        progress.start(
            "replay",
            wal_bytes,
            format!("replaying {} WAL files", generations.len()),
        );
        let mut replayed_bytes = 0u64;
        for (index, &generation) in generations.iter().enumerate() {
            let is_last = index == last_index;
            let wal_path = path.join(wal::file_name(generation));
            let bytes = storage
                .read(&wal_path)
                .map_err(|e| Error::io("read", &wal_path, e))?;
            let scan = match wal::scan(&bytes) {
                Ok(scan) => scan,
                Err((_, _)) if is_last && bytes.len() < wal::HEADER_LEN => {
                    // Torn while being created, before anything was acknowledged in it.
                    report.torn_bytes += bytes.len() as u64;
                    report.torn_tail = Some(TornTail {
                        file: wal_path.clone(),
                        offset: 0,
                        kind: TornKind::Incomplete,
                        reason: "the file is shorter than its header".into(),
                    });
                    open_wal = Some(create_wal(storage.as_ref(), path, generation, next_seq)?);
                    break;
                }
                Err((offset, reason)) => return Err(Error::corrupt(&wal_path, offset, reason)),
            };
            if scan.header.first_seq != next_seq {
                return Err(Error::corrupt(
                    &wal_path,
                    24,
                    format!(
                        "log file starts at sequence {}, expected {next_seq}",
                        scan.header.first_seq
                    ),
                ));
            }
            for record in &scan.records {
                collection
                    .replay(record.op, &bytes[record.body.clone()])
                    .map_err(|reason| Error::corrupt(&wal_path, record.offset, reason))?;
                next_seq = record.seq + 1;
                report.replayed_records += 1;
                progress.tick(replayed_bytes + record.body.end as u64);
            }
            replayed_bytes += bytes.len() as u64;
            let cut_at = match (&scan.end, is_last, options.recovery) {
                (wal::End::Clean, _, _) => None,
                (wal::End::Torn { offset, reason }, true, _) => {
                    report.torn_bytes += bytes.len() as u64 - offset;
                    report.torn_tail = Some(TornTail {
                        file: wal_path.clone(),
                        offset: *offset,
                        kind: TornKind::of(&bytes, *offset as usize),
                        reason: reason.clone(),
                    });
                    Some(*offset)
                }
                (wal::End::Torn { offset, reason }, false, RecoveryMode::Strict)
                | (wal::End::Corrupt { offset, reason }, _, RecoveryMode::Strict) => {
                    return Err(Error::corrupt(
                        &wal_path,
                        *offset,
                        format!(
                            "{reason} (open with recovery: 'truncate' to keep what precedes it)"
                        ),
                    ));
                }
                (wal::End::Torn { offset, .. }, false, RecoveryMode::Truncate)
                | (wal::End::Corrupt { offset, .. }, _, RecoveryMode::Truncate) => {
                    let later: Vec<u64> = generations[index + 1..].to_vec();
                    report.recovered_to = Some(Self::set_aside(
                        storage.as_ref(),
                        path,
                        generation,
                        &bytes[*offset as usize..],
                        &later,
                    )?);
                    Some(*offset)
                }
            };
            if let Some(offset) = cut_at {
                let file = storage
                    .open_append(&wal_path)
                    .map_err(|e| Error::io("open", &wal_path, e))?;
                file.set_len(offset)
                    .map_err(|e| Error::io("truncate", &wal_path, e))?;
                file.sync().map_err(|e| Error::io("fsync", &wal_path, e))?;
            }
            if is_last || cut_at.is_some() {
                let file = storage
                    .open_append(&wal_path)
                    .map_err(|e| Error::io("open", &wal_path, e))?;
                let end = cut_at.unwrap_or(scan.valid_len);
                // Zeros reserved after the last record (a clean end) stay,
                // for the next records to overwrite: open changes nothing.
                let reserved = match cut_at {
                    None if end < bytes.len() as u64 => {
                        file.append_from(end)
                            .map_err(|e| Error::io("open", &wal_path, e))?;
                        bytes.len() as u64
                    }
                    _ => end,
                };
                open_wal = Some(WalFile {
                    file,
                    generation,
                    salt: scan.header.salt,
                    bytes: end,
                    reserved,
                });
                break;
            }
        }
        let wal = match open_wal {
            Some(wal) => wal,
            None => {
                return Err(Error::Internal {
                    reason: "recovery ended without a log file".into(),
                })
            }
        };
        progress.finish(format!("replayed {} records", report.replayed_records));
        let dir = LogDir::assemble(storage, path, options, manifest, wal, next_seq, lock);
        Ok((dir, collection, report))
    }

    fn assemble(
        storage: Arc<dyn Storage>,
        path: &Path,
        options: DirOptions,
        manifest: Manifest,
        wal: WalFile,
        next_seq: u64,
        lock: Box<dyn StorageLock>,
    ) -> LogDir<M> {
        LogDir {
            storage,
            path: path.to_path_buf(),
            options,
            manifest,
            wal,
            next_seq,
            _lock: lock,
            _state: std::marker::PhantomData,
        }
    }

    fn create_fresh(
        storage: Arc<dyn Storage>,
        path: &Path,
        config: M::Config,
        options: DirOptions,
        lock: Box<dyn StorageLock>,
    ) -> Result<(LogDir<M>, M, RecoveryReport)> {
        // Manifest first: a crash before the first WAL exists leaves a
        // manifest naming no snapshot and a missing `wal-1`, which open
        // recognises as an interrupted creation.
        let manifest = M::fresh_manifest(&config);
        write_atomically(
            storage.as_ref(),
            path,
            manifest::FILE_NAME,
            &manifest.encode(),
        )?;
        let wal = create_wal(storage.as_ref(), path, 1, 1)?;
        let dir = LogDir::assemble(storage, path, options, manifest, wal, 1, lock);
        Ok((dir, M::empty(&config), RecoveryReport::default()))
    }

    /// Copies the cut part of the log to `recovered-<ms>/` and removes the later files.
    fn set_aside(
        storage: &dyn Storage,
        dir: &Path,
        generation: u64,
        tail: &[u8],
        later: &[u64],
    ) -> Result<PathBuf> {
        let target = dir.join(format!("recovered-{}", now_ms()));
        storage
            .create_dir_all(&target)
            .map_err(|e| Error::io("create directory", &target, e))?;
        write_atomically(
            storage,
            &target,
            &format!("{}.tail", wal::file_name(generation)),
            tail,
        )?;
        for &g in later {
            let from = dir.join(wal::file_name(g));
            let bytes = storage
                .read(&from)
                .map_err(|e| Error::io("read", &from, e))?;
            write_atomically(storage, &target, &wal::file_name(g), &bytes)?;
            storage
                .remove(&from)
                .map_err(|e| Error::io("remove", &from, e))?;
        }
        storage
            .sync_dir(dir)
            .map_err(|e| Error::io("fsync directory", dir, e))?;
        Ok(target)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn options(&self) -> &DirOptions {
        &self.options
    }

    /// Sequence number the next record will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn wal_bytes(&self) -> u64 {
        self.wal.bytes
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Appends `ops` as one record (a group when there are several), in one
    /// write. On error nothing may be assumed about the file: the caller
    /// must stop writing (a later good record after a partial one would read
    /// as corruption).
    pub fn append(&mut self, ops: &[&M::Op]) -> Result<()> {
        let mut buf = Vec::new();
        let seq = self.next_seq;
        match ops {
            [] => return Ok(()),
            [op] => wal::encode_record(&mut buf, self.wal.salt, seq, LogOp::code(*op), |out| {
                op.encode_body(out)
            }),
            _ => wal::encode_record(&mut buf, self.wal.salt, seq, OP_GROUP, |out| {
                encode_group(ops, out)
            }),
        }
        let path = self.wal_path();
        let end = self.wal.bytes + buf.len() as u64;
        if self.options.durability == Durability::Fsync
            && buf.len() <= RESERVE_RECORDS_UP_TO
            && end > self.wal.reserved
        {
            let ahead = self.wal.bytes.clamp(RESERVE_MIN, RESERVE_MAX);
            self.wal
                .file
                .reserve(end + ahead)
                .map_err(|e| Error::io("reserve", &path, e))?;
            self.wal.reserved = end + ahead;
        }
        self.wal
            .file
            .append(&buf)
            .map_err(|e| Error::io("write", &path, e))?;
        self.wal.bytes = end;
        self.wal.reserved = self.wal.reserved.max(end);
        self.next_seq = seq + 1;
        Ok(())
    }

    /// Cuts the zeros reserved after the last record, before the file is
    /// left for good (a sealed file is exactly its records; a named
    /// snapshot links it). The caller syncs.
    fn release_reserved(&mut self) -> Result<()> {
        if self.wal.reserved > self.wal.bytes {
            self.wal
                .file
                .set_len(self.wal.bytes)
                .map_err(|e| Error::io("truncate", &self.wal_path(), e))?;
            self.wal.reserved = self.wal.bytes;
        }
        Ok(())
    }

    /// Makes every appended record durable.
    pub fn sync(&self) -> Result<()> {
        self.wal
            .file
            .sync()
            .map_err(|e| Error::io("fsync", &self.wal_path(), e))
    }

    /// The WAL file being appended to, and its path: a checkpoint syncs it
    /// before taking the commit lock (see `Inner::presync_wal`).
    pub fn wal_file(&self) -> (Arc<dyn StorageFile>, PathBuf) {
        (Arc::clone(&self.wal.file), self.wal_path())
    }

    fn wal_path(&self) -> PathBuf {
        self.path.join(wal::file_name(self.wal.generation))
    }

    /// Whether records were written since the snapshot the manifest names.
    pub fn has_changes_since_snapshot(&self) -> bool {
        self.next_seq - 1 > self.manifest.snapshot_seq
    }

    /// Step 1 of a checkpoint: starts a new WAL file and returns the job that
    /// writes `state` (the state as of the last appended record).
    pub fn rotate(&mut self, state: M) -> Result<CheckpointJob<M>> {
        // The old file's records must be durable before the snapshot covering
        // them can replace them.
        self.release_reserved()?;
        self.sync()?;
        let generation = self.wal.generation;
        let next = create_wal(
            self.storage.as_ref(),
            &self.path,
            generation + 1,
            self.next_seq,
        )?;
        self.wal = next;
        Ok(CheckpointJob {
            state,
            seq: self.next_seq - 1,
            generation,
        })
    }

    pub fn storage(&self) -> Arc<dyn Storage> {
        Arc::clone(&self.storage)
    }

    /// Generation of the WAL file being appended to.
    pub fn wal_generation(&self) -> u64 {
        self.wal.generation
    }

    /// Whether the WAL file being appended to holds any record.
    pub fn wal_has_records(&self) -> bool {
        self.wal.bytes > wal::HEADER_LEN as u64
    }

    /// Starts a new WAL file without a checkpoint, so that every record
    /// written so far sits in files that never change again (a named
    /// snapshot links them). Returns the generation of the last such file.
    pub fn seal_wal(&mut self) -> Result<u64> {
        self.release_reserved()?;
        self.sync()?;
        let generation = self.wal.generation;
        self.wal = create_wal(
            self.storage.as_ref(),
            &self.path,
            generation + 1,
            self.next_seq,
        )?;
        Ok(generation)
    }

    /// Steps 2–4 of a checkpoint. Needs no lock on the store: it touches only
    /// files the commit path no longer writes.
    pub fn publish(
        storage: &dyn Storage,
        path: &Path,
        job: &CheckpointJob<M>,
        compression: snapshot::Compression,
        previous: &Manifest,
    ) -> Result<Manifest> {
        let silent = &mut Reporter::silent("checkpoint");
        Self::publish_with(
            storage,
            path,
            job,
            compression,
            previous,
            false,
            true,
            silent,
        )
        .map(|(m, _)| m)
    }

    /// [`LogDir::publish`], also returning the SHA-256 of the checkpoint
    /// file (when `digest`), and leaving the files the new manifest no
    /// longer needs in place unless `remove_obsolete` (a named snapshot
    /// being taken may still link them; a later checkpoint removes them).
    /// `progress` gets the `write` phase, in bytes of the checkpoint file
    /// (see [`CheckpointOut`]), all but its end: the caller finishes it.
    #[allow(clippy::too_many_arguments)]
    pub fn publish_with(
        storage: &dyn Storage,
        path: &Path,
        job: &CheckpointJob<M>,
        compression: snapshot::Compression,
        previous: &Manifest,
        digest: bool,
        remove_obsolete: bool,
        progress: &mut Reporter,
    ) -> Result<(Manifest, Option<[u8; 32]>)> {
        let message = format!(
            "writing checkpoint {} ({} entries)",
            job.generation,
            job.state.entry_count()
        );
        let name = snapshot::file_name(job.generation);
        let mut write = |hash: &mut dyn FnMut(&[u8]) -> io::Result<()>| {
            write_atomically_with(storage, path, &name, &mut |out| {
                let mut sink = |chunk: &[u8]| {
                    hash(chunk)?;
                    out(chunk)
                };
                let mut out = CheckpointOut::new(&mut sink, progress, message.clone());
                job.state
                    .write_checkpoint_to(job.seq, compression, &mut out)
            })
        };
        let sha = if digest {
            write_hashing(&mut write)?
        } else {
            write(&mut |_| Ok(()))?;
            None
        };
        let manifest = Manifest {
            snapshot: job.generation,
            snapshot_seq: job.seq,
            wal_start: job.generation + 1,
            checkpointed_at_ms: now_ms(),
            ..previous.clone()
        };
        write_atomically(storage, path, manifest::FILE_NAME, &manifest.encode())?;
        if !remove_obsolete {
            return Ok((manifest, sha));
        }
        // Only now may what the old manifest needed go.
        let names = storage.list(path).map_err(|e| Error::io("list", path, e))?;
        for name in names {
            let obsolete = wal::parse_file_name(&name).is_some_and(|g| g <= job.generation)
                || snapshot::parse_file_name(&name).is_some_and(|g| g < job.generation);
            if obsolete {
                let file = path.join(&name);
                storage
                    .remove(&file)
                    .map_err(|e| Error::io("remove", &file, e))?;
            }
        }
        storage
            .sync_dir(path)
            .map_err(|e| Error::io("fsync directory", path, e))?;
        Ok((manifest, sha))
    }

    /// Records a manifest that [`LogDir::publish`] wrote.
    pub fn set_manifest(&mut self, manifest: Manifest) {
        self.manifest = manifest;
    }
}

/// The vector collection as a [`StateMachine`]: its checkpoint is a
/// [`snapshot`] file, its operations are [`Op`]s.
impl StateMachine for Collection {
    type Config = CollectionConfig;
    type Op = Op;

    fn empty(config: &CollectionConfig) -> Self {
        Collection::new(*config)
    }

    fn fresh_manifest(config: &CollectionConfig) -> Manifest {
        Manifest {
            dimension: config.dimension,
            distance: config.distance.name().to_owned(),
            kind: None,
            snapshot: 0,
            snapshot_seq: 0,
            wal_start: 1,
            checkpointed_at_ms: 0,
        }
    }

    fn check_manifest(manifest: &Manifest, config: &CollectionConfig) -> Result<()> {
        if let Some(kind) = &manifest.kind {
            return Err(Error::ConfigMismatch {
                reason: format!("the directory holds a {kind} table, not a vector collection"),
            });
        }
        if manifest.dimension != config.dimension {
            return Err(Error::ConfigMismatch {
                reason: format!(
                    "the collection on disk has dimension {}, the store was opened with {}",
                    manifest.dimension, config.dimension
                ),
            });
        }
        if manifest.distance != config.distance.name() {
            return Err(Error::ConfigMismatch {
                reason: format!(
                    "the collection on disk uses distance {}, the store was opened with {}",
                    manifest.distance,
                    config.distance.name()
                ),
            });
        }
        Ok(())
    }

    fn read_checkpoint(
        storage: &dyn Storage,
        snapshot_path: &Path,
        config: &CollectionConfig,
    ) -> Result<(Self, u64)> {
        if config.vectors_on_disk {
            if let Some(map) = storage
                .map(snapshot_path)
                .map_err(|e| Error::io("map", snapshot_path, e))?
            {
                let corrupt = |(offset, reason)| Error::corrupt(snapshot_path, offset, reason);
                if let Ok(mapped) = snapshot::decode_mapped(map).map_err(corrupt)? {
                    let seq = mapped.seq;
                    let collection = mapped.into_collection(config.max_vectors).map_err(|e| {
                        Error::corrupt(snapshot_path, snapshot::HEADER_LEN as u64, e.to_string())
                    })?;
                    return Ok((collection, seq));
                }
                // A compressed checkpoint is read into memory; the next
                // checkpoint (written uncompressed) is served from disk.
            }
        }
        let len = storage
            .size(snapshot_path)
            .map_err(|e| Error::io("read", snapshot_path, e))? as usize;
        // Read into an f32 buffer so the vectors can stay where they land.
        let mut words = vec![0f32; len.div_ceil(4)];
        storage
            .read_into(
                snapshot_path,
                &mut bytemuck::cast_slice_mut::<f32, u8>(&mut words)[..len],
            )
            .map_err(|e| Error::io("read", snapshot_path, e))?;
        let decoded = snapshot::decode_words(words, len)
            .map_err(|(offset, reason)| Error::corrupt(snapshot_path, offset, reason))?;
        let seq = decoded.seq;
        let collection = decoded.into_collection(config.max_vectors).map_err(|e| {
            Error::corrupt(snapshot_path, snapshot::HEADER_LEN as u64, e.to_string())
        })?;
        Ok((collection, seq))
    }

    fn write_checkpoint(&self, seq: u64, compression: snapshot::Compression) -> Vec<u8> {
        snapshot::encode_with(self, seq, compression)
    }

    /// An uncompressed checkpoint is streamed: its peak memory is a chunk,
    /// not the file (a compressed one is still built whole).
    fn write_checkpoint_to(
        &self,
        seq: u64,
        compression: snapshot::Compression,
        out: &mut CheckpointOut<'_>,
    ) -> std::io::Result<()> {
        match compression {
            snapshot::Compression::None => snapshot::encode_streaming(self, seq, out),
            _ => {
                let bytes = snapshot::encode_with(self, seq, compression);
                out.begin(bytes.len() as u64);
                out.write(&bytes)
            }
        }
    }

    fn replay(
        &mut self,
        code: u8,
        body: &[u8],
    ) -> std::result::Result<(), crate::storage::codec::DecodeError> {
        for op in decode_record(code, body)? {
            // A refused operation was refused when it was first applied too.
            let _ = self.apply(op);
        }
        Ok(())
    }

    fn entry_count(&self) -> usize {
        self.len()
    }
}
