//! Every byte annvault reads or writes goes through [`Storage`], so tests can
//! put a simulated disk under the engine ([`super::sim::SimStorage`]) that
//! loses unsynced data on a "crash" and fails on command.
//!
//! The trait is the set of operations the durability protocol needs, each
//! with the meaning POSIX gives it: `write` reaches the OS, `sync` makes a
//! file's data durable, `sync_dir` makes creates, renames and removes in a
//! directory durable.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

/// An open file. Methods take `&self` so one handle can be written by the
/// committing thread and synced by another.
pub trait StorageFile: Send + Sync {
    /// Appends all of `buf` (short writes and `EINTR` are retried).
    fn append(&self, buf: &[u8]) -> io::Result<()>;
    /// Makes the file's data durable (`fdatasync`).
    fn sync(&self) -> io::Result<()>;
    fn set_len(&self, len: u64) -> io::Result<()>;
}

/// An exclusive lock on a directory; released when dropped.
pub trait StorageLock: Send + Sync {}

pub trait Storage: Send + Sync {
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Creates `path` empty (truncating any file there) for appending.
    fn create(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>>;
    /// Opens an existing file for appending at its end.
    fn open_append(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>>;
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Fills `buf` from the start of the file (which must hold that many bytes).
    fn read_into(&self, path: &Path, buf: &mut [u8]) -> io::Result<()>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove(&self, path: &Path) -> io::Result<()>;
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// File names (not paths) in `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    fn exists(&self, path: &Path) -> bool;
    /// Size of the file at `path`, in bytes.
    fn size(&self, path: &Path) -> io::Result<u64>;
    /// Takes an exclusive lock on `path` (created if missing), failing with
    /// `WouldBlock` when another holder has it, in this process or another.
    fn lock(&self, path: &Path) -> io::Result<Box<dyn StorageLock>>;
    /// Gives the file at `from` a second name `to` (a hard link: the same
    /// bytes, no copy). A file system without hard links says so with an
    /// error, and the caller copies instead.
    fn hard_link(&self, from: &Path, _to: &Path) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("no hard links here ({})", from.display()),
        ))
    }
    /// Removes the empty directory `path`.
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("cannot remove directory {}", path.display()),
        ))
    }
    /// Whether this is the real file system. Open then reads the saved
    /// graph on a second thread while the snapshot is decoded; a simulator
    /// says no and keeps its operations in one order, so that a crash at its
    /// n-th operation is the same crash on every run.
    fn is_native(&self) -> bool {
        false
    }
    /// A read-only memory map of the file at `path`, for vectors served
    /// from disk; `None` where files cannot be mapped (a simulator): the
    /// caller reads the file instead.
    fn map(&self, _path: &Path) -> io::Result<Option<memmap2::Mmap>> {
        Ok(None)
    }
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsStorage;

struct OsFile(File);

impl StorageFile for OsFile {
    fn append(&self, buf: &[u8]) -> io::Result<()> {
        // `write_all` retries on `Interrupted` and loops over short writes.
        (&self.0).write_all(buf)
    }

    fn sync(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
}

struct OsLock {
    _file: File,
}

impl StorageLock for OsLock {}

impl Storage for OsStorage {
    fn is_native(&self) -> bool {
        true
    }

    fn map(&self, path: &Path) -> io::Result<Option<memmap2::Mmap>> {
        let file = File::open(path)?;
        // SAFETY: annvault maps only checkpoint files, which are written
        // once under a temporary name and renamed into place, never changed
        // after; the directory lock keeps other annvault processes out. A
        // process that truncates them by hand is outside what the store
        // can guard against (as with any memory-mapped database).
        let map = unsafe { memmap2::Mmap::map(&file)? };
        Ok(Some(map))
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(path)?;
        Ok(Arc::new(OsFile(file)))
    }

    fn open_append(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let file = OpenOptions::new().append(true).open(path)?;
        Ok(Arc::new(OsFile(file)))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut file = File::open(path)?;
        let mut buf = Vec::with_capacity(file.metadata()?.len() as usize);
        file.read_to_end(&mut buf)?;
        Ok(buf)
    }

    fn read_into(&self, path: &Path, buf: &mut [u8]) -> io::Result<()> {
        File::open(path)?.read_exact(buf)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn size(&self, path: &Path) -> io::Result<u64> {
        Ok(fs::metadata(path)?.len())
    }

    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::hard_link(from, to)
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir(path)
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn StorageLock>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        // flock semantics: per open file description, so a second open of the
        // same file in this process conflicts too; released when the
        // descriptor closes, including when the process dies.
        match file.try_lock() {
            Ok(()) => Ok(Box::new(OsLock { _file: file })),
            Err(fs::TryLockError::WouldBlock) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "the lock is held by another open store",
            )),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }
}
