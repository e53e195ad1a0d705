//! A simulated disk for crash and fault tests.
//!
//! It keeps, for every file, what has been written (visible to reads) and
//! what has been made durable by `sync`; and, for the namespace, which
//! creates, renames and removes a `sync_dir` has made durable. A simulated
//! crash ([`SimStorage::crash`]) throws away everything not durable, except
//! that an unsynced tail may survive in part with some bytes garbled, as
//! pages do after a real power cut. `kill -9` cannot find a missing fsync
//! (the page cache survives a killed process); this can.
//!
//! Faults: [`SimStorage::fail_at`] makes the n-th operation (counted from
//! now) fail with `EIO`, `ENOSPC`, a short write or a failed fsync, once or
//! from then on; [`SimStorage::crash_at`] makes it the last operation that
//! happens before the crash.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::fs::{Storage, StorageFile, StorageLock};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `EIO` from the operation; nothing happens.
    Io,
    /// `ENOSPC` from a write; nothing is written.
    NoSpace,
    /// A write stores only part of its bytes, then fails.
    ShortWrite,
    /// `fsync` fails: the data stays visible but is not durable.
    Sync,
}

#[derive(Debug, Default, Clone)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Debug, Default)]
struct State {
    inodes: HashMap<u64, Inode>,
    next_inode: u64,
    /// Path → inode as the live system sees it.
    names: HashMap<PathBuf, u64>,
    /// Path → inode as a crash would leave it.
    durable_names: HashMap<PathBuf, u64>,
    dirs: Vec<PathBuf>,
    locks: HashMap<PathBuf, u64>,
    next_lock: u64,
    ops: u64,
    crash_at: Option<u64>,
    crashed: bool,
    fault: Option<(u64, Fault, bool)>,
    rng: u64,
    /// Refuse hard links, as a file system without them does.
    no_hard_links: bool,
    /// Bytes appended to files so far.
    written: u64,
}

impl State {
    fn random(&mut self) -> u64 {
        // xorshift64*: deterministic for a given seed.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Counts one operation; `Err` when it must fail, with the fault to simulate.
    fn tick(&mut self, kinds: &[Fault]) -> Result<(), (io::Error, Option<Fault>)> {
        if self.crashed {
            return Err((
                io::Error::other("simulated crash: the machine is down"),
                None,
            ));
        }
        let index = self.ops;
        self.ops += 1;
        if self.crash_at == Some(index) {
            self.crashed = true;
            return Err((io::Error::other("simulated crash"), None));
        }
        if let Some((at, fault, always)) = self.fault {
            let hit = if always { index >= at } else { index == at };
            if hit && kinds.contains(&fault) {
                let error = match fault {
                    Fault::NoSpace => io::Error::from_raw_os_error(28),
                    _ => io::Error::from_raw_os_error(5),
                };
                return Err((error, Some(fault)));
            }
        }
        Ok(())
    }

    fn inode_of(&self, path: &Path) -> io::Result<u64> {
        self.names.get(path).copied().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} not found", path.display()),
            )
        })
    }
}

/// See the module documentation.
#[derive(Clone, Default)]
pub struct SimStorage {
    state: Arc<Mutex<State>>,
}

impl SimStorage {
    pub fn new(seed: u64) -> Self {
        let storage = SimStorage::default();
        storage.lock_state().rng = seed | 1;
        storage
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Operations counted so far.
    pub fn ops(&self) -> u64 {
        self.lock_state().ops
    }

    /// The operation `n` operations from now is the last before a crash:
    /// it and everything after it fail until [`SimStorage::crash`].
    pub fn crash_at(&self, n: u64) {
        let mut s = self.lock_state();
        s.crash_at = Some(s.ops + n);
    }

    /// The operation `n` operations from now fails with `fault` (and every
    /// later one of the kinds it applies to, when `always`).
    pub fn fail_at(&self, n: u64, fault: Fault, always: bool) {
        let mut s = self.lock_state();
        s.fault = Some((s.ops + n, fault, always));
    }

    pub fn clear_faults(&self) {
        let mut s = self.lock_state();
        s.fault = None;
        s.crash_at = None;
    }

    /// Makes `hard_link` fail from now on, as on a file system without
    /// hard links (`false`), or work again (`true`).
    pub fn set_hard_links(&self, allowed: bool) {
        self.lock_state().no_hard_links = !allowed;
    }

    /// Bytes appended to files so far, by every handle.
    pub fn bytes_written(&self) -> u64 {
        self.lock_state().written
    }

    /// Files (names) that exist, live: a hard-linked file counts once per name.
    pub fn file_count(&self) -> usize {
        self.lock_state().names.len()
    }

    pub fn has_crashed(&self) -> bool {
        self.lock_state().crashed
    }

    /// Power cut and reboot: undurable namespace changes are undone, file
    /// contents fall back to what was synced, plus possibly part of an
    /// unsynced tail with garbled bytes. Locks are released.
    pub fn crash(&self) {
        let mut s = self.lock_state();
        s.names = s.durable_names.clone();
        let live: Vec<u64> = s.names.values().copied().collect();
        for id in live {
            let (durable, data) = {
                let inode = &s.inodes[&id];
                (inode.durable.clone(), inode.data.clone())
            };
            let mut after = durable.clone();
            // The unsynced bytes start where the two first differ: appended
            // past the durable end, or written over reserved zeros. Some
            // of them, from there on, may have reached the disk.
            let from = data
                .iter()
                .zip(&durable)
                .position(|(a, b)| a != b)
                .unwrap_or(data.len().min(durable.len()));
            if data.len() > from && data.len() >= durable.len() {
                let extra = data.len() - from;
                let keep = (s.random() % (extra as u64 + 1)) as usize;
                let end = from + keep;
                if after.len() < end {
                    after.resize(end, 0);
                }
                after[from..end].copy_from_slice(&data[from..end]);
                if keep > 0 && s.random().is_multiple_of(2) {
                    let at = from + (s.random() % keep as u64) as usize;
                    after[at] ^= 0x5a;
                }
            }
            if let Some(inode) = s.inodes.get_mut(&id) {
                inode.data = after.clone();
                inode.durable = after;
            }
        }
        s.locks.clear();
        s.crashed = false;
        s.crash_at = None;
        s.fault = None;
    }

    /// Visible content of a file, for assertions.
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let s = self.lock_state();
        let id = s.names.get(path)?;
        Some(s.inodes[id].data.clone())
    }

    /// Overwrites a file's content, durably (to plant corruption).
    pub fn put(&self, path: &Path, bytes: &[u8]) {
        let mut s = self.lock_state();
        let id = match s.names.get(path) {
            Some(&id) => id,
            None => {
                let id = s.next_inode;
                s.next_inode += 1;
                s.names.insert(path.to_path_buf(), id);
                s.durable_names.insert(path.to_path_buf(), id);
                id
            }
        };
        s.inodes.insert(
            id,
            Inode {
                data: bytes.to_vec(),
                durable: bytes.to_vec(),
            },
        );
    }
}

struct SimFile {
    state: Arc<Mutex<State>>,
    inode: u64,
    /// Where the next append writes.
    end: AtomicU64,
}

impl SimFile {
    fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Writes `buf` into `data` at `at`, growing it as needed.
fn write_at(data: &mut Vec<u8>, at: usize, buf: &[u8]) {
    if data.len() < at + buf.len() {
        data.resize(at + buf.len(), 0);
    }
    data[at..at + buf.len()].copy_from_slice(buf);
}

impl StorageFile for SimFile {
    fn append(&self, buf: &[u8]) -> io::Result<()> {
        let mut s = self.lock_state();
        let at = self.end.load(Ordering::Acquire) as usize;
        match s.tick(&[Fault::Io, Fault::NoSpace, Fault::ShortWrite]) {
            Ok(()) => {}
            Err((error, Some(Fault::ShortWrite))) => {
                // The part written stays, and the next append follows it
                // (as after a short `write` with `O_APPEND`).
                let part = buf.len() / 2;
                if let Some(inode) = s.inodes.get_mut(&self.inode) {
                    write_at(&mut inode.data, at, &buf[..part]);
                }
                self.end.store((at + part) as u64, Ordering::Release);
                return Err(error);
            }
            Err((error, _)) => return Err(error),
        }
        if let Some(inode) = s.inodes.get_mut(&self.inode) {
            write_at(&mut inode.data, at, buf);
        }
        self.end.store((at + buf.len()) as u64, Ordering::Release);
        s.written += buf.len() as u64;
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        let mut s = self.lock_state();
        s.tick(&[Fault::Io, Fault::Sync]).map_err(|(e, _)| e)?;
        if let Some(inode) = s.inodes.get_mut(&self.inode) {
            inode.durable = inode.data.clone();
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut s = self.lock_state();
        s.tick(&[Fault::Io]).map_err(|(e, _)| e)?;
        if let Some(inode) = s.inodes.get_mut(&self.inode) {
            inode.data.resize(len as usize, 0);
        }
        self.end.store(len, Ordering::Release);
        Ok(())
    }

    fn append_from(&self, end: u64) -> io::Result<()> {
        let s = self.lock_state();
        let len = s.inodes.get(&self.inode).map_or(0, |i| i.data.len()) as u64;
        if end > len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot append from {end}: the file holds {len} bytes"),
            ));
        }
        self.end.store(end, Ordering::Release);
        Ok(())
    }

    fn reserve(&self, len: u64) -> io::Result<()> {
        let mut s = self.lock_state();
        let have = s.inodes.get(&self.inode).map_or(0, |i| i.data.len()) as u64;
        if len <= have {
            return Ok(());
        }
        match s.tick(&[Fault::Io, Fault::NoSpace, Fault::ShortWrite]) {
            Ok(()) => {}
            Err((error, Some(Fault::ShortWrite))) => {
                if let Some(inode) = s.inodes.get_mut(&self.inode) {
                    inode.data.resize((have + (len - have) / 2) as usize, 0);
                }
                return Err(error);
            }
            Err((error, _)) => return Err(error),
        }
        if let Some(inode) = s.inodes.get_mut(&self.inode) {
            inode.data.resize(len as usize, 0);
        }
        Ok(())
    }
}

struct SimLock {
    state: Arc<Mutex<State>>,
    path: PathBuf,
    token: u64,
}

impl StorageLock for SimLock {}

impl Drop for SimLock {
    fn drop(&mut self) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if s.locks.get(&self.path) == Some(&self.token) {
            s.locks.remove(&self.path);
        }
    }
}

impl Storage for SimStorage {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock_state();
        s.tick(&[Fault::Io]).map_err(|(e, _)| e)?;
        if !s.dirs.iter().any(|d| d == path) {
            // Directories are taken as durable once made: the tests crash
            // what lives inside the collection directory.
            s.dirs.push(path.to_path_buf());
        }
        Ok(())
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let mut s = self.lock_state();
        s.tick(&[Fault::Io, Fault::NoSpace]).map_err(|(e, _)| e)?;
        let id = s.next_inode;
        s.next_inode += 1;
        s.inodes.insert(id, Inode::default());
        s.names.insert(path.to_path_buf(), id);
        Ok(Arc::new(SimFile {
            state: Arc::clone(&self.state),
            inode: id,
            end: AtomicU64::new(0),
        }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let mut s = self.lock_state();
        s.tick(&[Fault::Io]).map_err(|(e, _)| e)?;
        let id = s.inode_of(path)?;
        let end = s.inodes[&id].data.len() as u64;
        Ok(Arc::new(SimFile {
            state: Arc::clone(&self.state),
            inode: id,
            end: AtomicU64::new(end),
        }))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut s = self.lock_state();
        s.tick(&[Fault::Io]).map_err(|(e, _)| e)?;
        let id = s.inode_of(path)?;
        Ok(s.inodes[&id].data.clone())
    }

    fn read_into(&self, path: &Path, buf: &mut [u8]) -> io::Result<()> {
        let data = self.read(path)?;
        if data.len() < buf.len() {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        buf.copy_from_slice(&data[..buf.len()]);
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.lock_state();
        s.tick(&[Fault::Io]).map_err(|(e, _)| e)?;
        let id = s.inode_of(from)?;
        s.names.remove(from);
        s.names.insert(to.to_path_buf(), id);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock_state();
        s.tick(&[Fault::Io]).map_err(|(e, _)| e)?;
        s.inode_of(path)?;
        s.names.remove(path);
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock_state();
        s.tick(&[Fault::Io, Fault::Sync]).map_err(|(e, _)| e)?;
        let in_dir = |p: &Path| p.parent() == Some(path);
        let mut durable: HashMap<PathBuf, u64> = s
            .durable_names
            .iter()
            .filter(|(p, _)| !in_dir(p))
            .map(|(p, id)| (p.clone(), *id))
            .collect();
        durable.extend(
            s.names
                .iter()
                .filter(|(p, _)| in_dir(p))
                .map(|(p, id)| (p.clone(), *id)),
        );
        s.durable_names = durable;
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut s = self.lock_state();
        s.tick(&[Fault::Io]).map_err(|(e, _)| e)?;
        let mut names: Vec<String> = s
            .names
            .keys()
            .chain(s.dirs.iter())
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn exists(&self, path: &Path) -> bool {
        let s = self.lock_state();
        s.names.contains_key(path) || s.dirs.iter().any(|d| d == path)
    }

    fn size(&self, path: &Path) -> io::Result<u64> {
        let s = self.lock_state();
        let id = s.inode_of(path)?;
        Ok(s.inodes[&id].data.len() as u64)
    }

    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.lock_state();
        s.tick(&[Fault::Io, Fault::NoSpace]).map_err(|(e, _)| e)?;
        if s.no_hard_links {
            return Err(io::Error::from_raw_os_error(18)); // EXDEV
        }
        let id = s.inode_of(from)?;
        if s.names.contains_key(to) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        s.names.insert(to.to_path_buf(), id);
        Ok(())
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock_state();
        s.tick(&[Fault::Io]).map_err(|(e, _)| e)?;
        if s.names.keys().any(|p| p.parent() == Some(path)) {
            return Err(io::Error::other(format!("{} is not empty", path.display())));
        }
        s.dirs.retain(|d| d != path);
        Ok(())
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn StorageLock>> {
        let mut s = self.lock_state();
        s.tick(&[Fault::Io]).map_err(|(e, _)| e)?;
        if s.locks.contains_key(path) {
            return Err(io::Error::new(io::ErrorKind::WouldBlock, "locked"));
        }
        let token = s.next_lock;
        s.next_lock += 1;
        s.locks.insert(path.to_path_buf(), token);
        Ok(Box::new(SimLock {
            state: Arc::clone(&self.state),
            path: path.to_path_buf(),
            token,
        }))
    }
}

#[cfg(test)]
mod tests {
    //! The simulator is what makes the crash and model tests able to fail:
    //! if `crash()` kept unsynced data, they would pass over a store that
    //! never syncs. These tests pin down what it must lose.

    use super::*;

    fn file(storage: &SimStorage, path: &str, durable: &[u8], unsynced: &[u8]) {
        let f = storage.create(Path::new(path)).unwrap();
        f.append(durable).unwrap();
        f.sync().unwrap();
        storage.sync_dir(Path::new("/d")).unwrap();
        f.append(unsynced).unwrap();
    }

    #[test]
    fn a_crash_keeps_synced_bytes_and_at_most_a_garbled_part_of_the_rest() {
        let (mut exact, mut partial, mut garbled) = (0, 0, 0);
        for seed in 1..200 {
            let storage = SimStorage::new(seed);
            file(&storage, "/d/f", b"synced", b"0123456789abcdef");
            storage.crash();
            let after = storage.contents(Path::new("/d/f")).unwrap();
            assert!(after.starts_with(b"synced"), "seed {seed}: {after:?}");
            let tail = &after[6..];
            assert!(tail.len() <= 16);
            if tail.is_empty() {
                exact += 1;
            } else if tail == &b"0123456789abcdef"[..tail.len()] {
                partial += 1;
            } else {
                garbled += 1;
                let differ = tail
                    .iter()
                    .zip(b"0123456789abcdef")
                    .filter(|(a, b)| a != b)
                    .count();
                assert_eq!(differ, 1, "seed {seed}: one byte garbled");
            }
            // What survived is durable now: a second crash keeps it.
            storage.crash();
            assert_eq!(storage.contents(Path::new("/d/f")).unwrap(), after);
        }
        assert!(
            exact > 0 && partial > 0 && garbled > 0,
            "{exact} {partial} {garbled}"
        );
    }

    #[test]
    fn a_crash_undoes_namespace_changes_not_made_durable() {
        let storage = SimStorage::new(7);
        let d = Path::new("/d");
        file(&storage, "/d/kept", b"k", b"");
        // Created, written and synced, but the directory never synced.
        let f = storage.create(Path::new("/d/new")).unwrap();
        f.append(b"n").unwrap();
        f.sync().unwrap();
        storage
            .rename(Path::new("/d/kept"), Path::new("/d/renamed"))
            .unwrap();
        assert!(storage.exists(Path::new("/d/renamed")));
        storage.crash();
        assert_eq!(storage.list(d).unwrap(), ["kept"]);

        // The same changes, made durable by sync_dir, survive.
        let f = storage.create(Path::new("/d/new")).unwrap();
        f.append(b"n").unwrap();
        f.sync().unwrap();
        storage
            .rename(Path::new("/d/kept"), Path::new("/d/renamed"))
            .unwrap();
        storage.sync_dir(d).unwrap();
        storage.crash();
        assert_eq!(storage.list(d).unwrap(), ["new", "renamed"]);

        // A remove not made durable is undone.
        storage.remove(Path::new("/d/new")).unwrap();
        storage.crash();
        assert_eq!(storage.contents(Path::new("/d/new")).unwrap(), b"n");
    }

    #[test]
    fn a_failed_sync_leaves_data_visible_but_not_durable() {
        let mut lost = 0;
        for seed in 1..50 {
            let storage = SimStorage::new(seed);
            file(&storage, "/d/f", b"a", b"");
            let f = storage.open_append(Path::new("/d/f")).unwrap();
            f.append(&[b'b'; 64]).unwrap();
            storage.fail_at(0, Fault::Sync, false);
            assert!(f.sync().is_err());
            assert_eq!(storage.contents(Path::new("/d/f")).unwrap().len(), 65);
            storage.crash();
            let after = storage.contents(Path::new("/d/f")).unwrap();
            assert!(after.starts_with(b"a"));
            if after.len() < 65 {
                lost += 1;
            }
        }
        assert!(
            lost > 40,
            "only {lost} of 49 crashes lost the unsynced bytes"
        );
    }

    #[test]
    fn faults_fire_once_or_always_and_short_writes_store_half() {
        let storage = SimStorage::new(5);
        file(&storage, "/d/f", b"", b"");
        let f = storage.open_append(Path::new("/d/f")).unwrap();
        storage.fail_at(0, Fault::ShortWrite, false);
        assert!(f.append(b"12345678").is_err());
        assert_eq!(storage.contents(Path::new("/d/f")).unwrap(), b"1234");
        f.append(b"x").unwrap();
        storage.fail_at(1, Fault::NoSpace, true);
        f.append(b"y").unwrap();
        for _ in 0..3 {
            let error = f.append(b"z").unwrap_err();
            assert_eq!(error.raw_os_error(), Some(28));
        }
        assert_eq!(storage.contents(Path::new("/d/f")).unwrap(), b"1234xy");
    }

    #[test]
    fn crash_at_stops_every_operation_from_that_one_on() {
        let storage = SimStorage::new(9);
        file(&storage, "/d/f", b"a", b"");
        let f = storage.open_append(Path::new("/d/f")).unwrap();
        storage.crash_at(1);
        f.append(b"b").unwrap();
        assert!(f.sync().is_err());
        assert!(storage.has_crashed());
        assert!(f.append(b"c").is_err());
        assert!(storage.read(Path::new("/d/f")).is_err());
        storage.crash();
        assert!(!storage.has_crashed());
        let after = storage.contents(Path::new("/d/f")).unwrap();
        assert!(after == b"a" || after.len() == 2, "{after:?}");
    }
}
