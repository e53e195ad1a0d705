//! Every byte annvault reads or writes goes through [`Storage`], so tests can
//! put a simulated disk under the engine ([`super::sim::SimStorage`]) that
//! loses unsynced data on a "crash" and fails on command.
//!
//! The trait is the set of operations the durability protocol needs, each
//! with the meaning POSIX gives it: `write` reaches the OS, `sync` makes a
//! file's data durable, `sync_dir` makes creates, renames and removes in a
//! directory durable.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// An open file. Methods take `&self` so one handle can be written by the
/// committing thread and synced by another.
pub trait StorageFile: Send + Sync {
    /// Appends all of `buf` (short writes and `EINTR` are retried).
    fn append(&self, buf: &[u8]) -> io::Result<()>;
    /// Makes the file's data durable (`fdatasync`).
    fn sync(&self) -> io::Result<()>;
    /// Sets the file's length; the next `append` writes at `len`.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Writes zeros after the data, so that the file holds `len` bytes,
    /// without moving where the next `append` writes. An append into such
    /// reserved space, and its sync, change no file metadata (size, block
    /// map), so `fdatasync` writes only the data: on this project's ext4
    /// VM, about 1.4× as many syncs per second for small appends (1.1–1.9×
    /// in paired runs). The zeros are
    /// durable after the next `sync`. A file that cannot reserve does
    /// nothing.
    fn reserve(&self, _len: u64) -> io::Result<()> {
        Ok(())
    }
    /// Moves where the next `append` writes back to `end` (at most the
    /// file's length), keeping the bytes after it: zeros reserved by an
    /// earlier writer, which the appends then overwrite. A file that cannot
    /// cuts them instead (`set_len`).
    fn append_from(&self, end: u64) -> io::Result<()> {
        self.set_len(end)
    }
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

/// A file written at positions: `end` is where the next append goes,
/// `len` how many bytes the file holds (more than `end` after a reserve).
/// One thread appends at a time (the store's commit lock, or a single
/// writer); `sync` may run on another.
struct OsFile {
    file: File,
    end: AtomicU64,
    len: AtomicU64,
}

impl OsFile {
    fn new(file: File, end: u64) -> OsFile {
        OsFile {
            file,
            end: AtomicU64::new(end),
            len: AtomicU64::new(end),
        }
    }
}

/// Writes some of `buf` at `offset` (`pwrite`).
#[cfg(unix)]
fn write_at(file: &File, buf: &[u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::write_at(file, buf, offset)
}

#[cfg(windows)]
fn write_at(file: &File, buf: &[u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_write(file, buf, offset)
}

/// Writes all of `buf` at `offset` (short writes and `EINTR` retried),
/// telling `landed` the offset up to which bytes are written after each
/// piece that lands, so that a caller knows how far a failed write got.
fn write_all_at(
    file: &File,
    mut buf: &[u8],
    mut offset: u64,
    mut landed: impl FnMut(u64),
) -> io::Result<()> {
    while !buf.is_empty() {
        match write_at(file, buf, offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                buf = &buf[n..];
                offset += n as u64;
                landed(offset);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl StorageFile for OsFile {
    fn append(&self, buf: &[u8]) -> io::Result<()> {
        // `end` moves past each piece that lands, so that after a failed
        // write the next append follows what did land (as with `O_APPEND`).
        let at = self.end.load(Ordering::Acquire);
        write_all_at(&self.file, buf, at, |end| {
            self.end.store(end, Ordering::Release);
            self.len.fetch_max(end, Ordering::AcqRel);
        })
    }

    fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        self.end.store(len, Ordering::Release);
        self.len.store(len, Ordering::Release);
        Ok(())
    }

    fn append_from(&self, end: u64) -> io::Result<()> {
        let len = self.file.metadata()?.len();
        if end > len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot append from {end}: the file holds {len} bytes"),
            ));
        }
        self.end.store(end, Ordering::Release);
        self.len.store(len, Ordering::Release);
        Ok(())
    }

    fn reserve(&self, len: u64) -> io::Result<()> {
        const PIECE: usize = 64 << 10;
        let mut at = self.len.load(Ordering::Acquire);
        if len <= at {
            return Ok(());
        }
        let zeros = vec![0u8; PIECE];
        while at < len {
            let n = (len - at).min(PIECE as u64) as usize;
            write_all_at(&self.file, &zeros[..n], at, |end| {
                self.len.fetch_max(end, Ordering::AcqRel);
            })?;
            at += n as u64;
        }
        Ok(())
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
        Ok(Arc::new(OsFile::new(file, 0)))
    }

    fn open_append(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let file = OpenOptions::new().write(true).open(path)?;
        let end = file.metadata()?.len();
        Ok(Arc::new(OsFile::new(file, end)))
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
