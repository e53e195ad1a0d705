//! `KvStore`: the thread-safe handle to one key-value directory.
//!
//! Reads run concurrently under a read lock. Writes go through one queue
//! served by the store's own commit thread, in the order they were queued:
//! the thread takes everything pending, checks it, logs it in one append,
//! fsyncs once, applies it and then calls each caller back. No caller
//! thread waits on a commit it does not need: [`KvStore::set_async`] and
//! its siblings queue and return (the Node binding resolves a Promise from
//! the callback), while the blocking calls ([`KvStore::set`] …) take a
//! ticket ([`KvStore::ticket`]) so that writes requested on one thread keep
//! their order when pool threads carry them, and wait for their own
//! callback. A batch is one operation, so one record: all of it survives a
//! crash or none of it. A failed write or fsync disables writes until the
//! store is reopened (the log's tail is unknown; going on could acknowledge
//! data that is not there).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, TryLockError, Weak};

use crate::error::{Error, Result};
use crate::kv::table::Applied;
use crate::kv::{validate_key, validate_write, Glob, KvEntry, KvOp, KvTable, KvWrite};
use crate::progress::Reporter;
use crate::storage::directory::{
    now_ms, CheckpointJob, DirOptions, Durability, LogDir, RecoveryReport,
};
use crate::storage::engine::{WriteGate, WriteTicket};
use crate::storage::fs::Storage;
use crate::storage::manifest::Manifest;

#[derive(Clone)]
pub struct KvOptions {
    pub storage: Arc<dyn Storage>,
    /// The directory that holds the table.
    pub path: PathBuf,
    /// `gzip` is ignored: large values are compressed one by one.
    pub dir: DirOptions,
}

/// What `stats()` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvStats {
    /// Entries live at the given time.
    pub total_entries: usize,
    /// Bytes of every file in the directory.
    pub size: u64,
    /// When data was last made durable (fsync of the log, or a checkpoint).
    pub last_sync: Option<i64>,
    pub wal_bytes: u64,
    pub recovery: RecoveryReport,
    pub writes_disabled: Option<String>,
    pub last_checkpoint_error: Option<String>,
}

enum Request {
    Op(KvOp),
    Checkpoint,
    Close,
}

enum Outcome {
    Applied(Applied),
    Checkpoint(Option<Box<CheckpointJob<KvTable>>>),
    Done,
}

/// Called once with a request's outcome, on the commit thread: it must not
/// block on the store (hand heavy work to another thread).
pub type Done<T> = Box<dyn FnOnce(Result<T>) + Send>;

struct Queued {
    request: Request,
    done: Done<Outcome>,
}

struct State {
    table: KvTable,
    open: bool,
}

struct Inner {
    options: KvOptions,
    state: RwLock<State>,
    open: AtomicBool,
    gate: Arc<WriteGate>,
    /// To the commit thread, which ends when this is dropped with the store.
    queue: Sender<Queued>,
    /// Only the commit leader writes through it; `None` once closed.
    dir: Mutex<Option<LogDir<KvTable>>>,
    write_error: Mutex<Option<String>>,
    info: Mutex<Info>,
    /// Serialises checkpoint publication.
    publish: Mutex<()>,
    checkpoint_running: AtomicBool,
}

struct Info {
    recovery: RecoveryReport,
    /// The newest manifest published.
    manifest: Manifest,
    published_generation: u64,
    last_sync: Option<i64>,
    last_checkpoint_error: Option<String>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves its data consistent at each statement.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_i64() -> i64 {
    now_ms() as i64
}

/// The thread-safe handle to one key-value table. Cloning it shares the store.
#[derive(Clone)]
pub struct KvStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for KvStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvStore")
            .field("path", &self.inner.options.path)
            .finish()
    }
}

impl KvStore {
    /// Takes the directory's lock and recovers the table (creating an empty
    /// one when the directory holds none).
    pub fn open(options: KvOptions) -> Result<KvStore> {
        let (dir, table, recovery) =
            LogDir::<KvTable>::open(Arc::clone(&options.storage), &options.path, (), options.dir)?;
        let published_generation = dir.manifest().snapshot;
        let manifest = dir.manifest().clone();
        let last_sync = (dir.manifest().checkpointed_at_ms > 0)
            .then_some(dir.manifest().checkpointed_at_ms as i64);
        let (queue, queued) = mpsc::channel();
        let inner = Arc::new(Inner {
            options,
            state: RwLock::new(State { table, open: true }),
            open: AtomicBool::new(true),
            gate: Arc::new(WriteGate::default()),
            queue,
            dir: Mutex::new(Some(dir)),
            write_error: Mutex::new(None),
            info: Mutex::new(Info {
                recovery,
                manifest,
                published_generation,
                last_sync,
                last_checkpoint_error: None,
            }),
            publish: Mutex::new(()),
            checkpoint_running: AtomicBool::new(false),
        });
        // The thread holds the store weakly: dropping every handle drops
        // the queue's sender, which ends the thread, and the directory,
        // which releases its lock.
        let weak = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("annvault-kv-commit".into())
            .spawn(move || commit_loop(weak, queued))
            .map_err(|e| Error::io("start the commit thread of", &inner.options.path, e))?;
        Ok(KvStore { inner })
    }

    pub fn path(&self) -> &Path {
        &self.inner.options.path
    }

    /// Reserves the next place in the write order. Call it where the write
    /// is requested, before handing the work to another thread.
    pub fn ticket(&self) -> WriteTicket {
        self.inner.gate.issue()
    }

    pub fn is_open(&self) -> bool {
        self.inner.open.load(Ordering::Acquire)
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, State>> {
        let state = self.inner.state.read().map_err(|_| Error::Poisoned)?;
        if !state.open {
            return Err(Error::Closed);
        }
        Ok(state)
    }

    /// Queues a request; `done` gets its outcome on the commit thread.
    fn enqueue(&self, request: Request, done: Done<Outcome>) {
        if let Err(mpsc::SendError(queued)) = self.inner.queue.send(Queued { request, done }) {
            // The commit thread is gone (it only ends with the store).
            (queued.done)(Err(Error::Closed));
        }
    }

    /// Waits for `ticket`'s turn, queues `request` and waits for its outcome.
    fn submit(&self, ticket: WriteTicket, request: Request) -> Result<Outcome> {
        self.inner.gate.wait_for_turn(ticket.number());
        let (sender, outcome) = mpsc::sync_channel(1);
        self.enqueue(
            request,
            Box::new(move |result| {
                // The waiter below is still there: it blocks on this channel.
                let _ = sender.send(result);
            }),
        );
        drop(ticket);
        outcome.recv().unwrap_or(Err(Error::Poisoned))
    }

    fn apply(&self, ticket: WriteTicket, op: KvOp) -> Result<Applied> {
        self.submit(ticket, Request::Op(op)).and_then(applied)
    }

    fn apply_async(&self, op: KvOp, done: impl FnOnce(Result<Applied>) + Send + 'static) {
        self.enqueue(
            Request::Op(op),
            Box::new(move |outcome| done(outcome.and_then(applied))),
        );
    }

    /// Live entries of `keys` at `now` (`None` where absent or expired).
    pub fn get(&self, keys: &[String], now: i64) -> Result<Vec<Option<Arc<KvEntry>>>> {
        validate_keys(keys)?;
        let state = self.read()?;
        Ok(lookup(&state, keys, now))
    }

    /// [`KvStore::get`] that never waits for the table's lock: `Ok(None)`
    /// when a writer holds it or waits for it (a commit applying, a
    /// `clear`), so a caller on a thread that must not block (the JS thread)
    /// can read elsewhere instead. Keys are validated either way.
    pub fn try_get(&self, keys: &[String], now: i64) -> Result<Option<Vec<Option<Arc<KvEntry>>>>> {
        validate_keys(keys)?;
        let state = match self.inner.state.try_read() {
            Ok(state) => state,
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Poisoned(_)) => return Err(Error::Poisoned),
        };
        if !state.open {
            return Err(Error::Closed);
        }
        Ok(Some(lookup(&state, keys, now)))
    }

    /// Writes the batch atomically: every write is checked first, and one
    /// bad one refuses the whole batch with nothing written.
    pub fn set(&self, ticket: WriteTicket, writes: Vec<KvWrite>, now: i64) -> Result<()> {
        if writes.is_empty() {
            return validate_set(&writes);
        }
        self.apply(ticket, KvOp::Set { now, writes }).map(|_| ())
    }

    /// [`KvStore::set`] without waiting: queued in call order, checked on
    /// the commit thread, `done` called there once it is durable (or refused).
    pub fn set_async(
        &self,
        writes: Vec<KvWrite>,
        now: i64,
        done: impl FnOnce(Result<()>) + Send + 'static,
    ) {
        if writes.is_empty() {
            return done(Ok(()));
        }
        self.apply_async(KvOp::Set { now, writes }, move |outcome| {
            done(outcome.map(|_| ()))
        });
    }

    /// Removes the keys atomically; per key, whether a live entry existed.
    pub fn delete(&self, ticket: WriteTicket, keys: Vec<String>, now: i64) -> Result<Vec<bool>> {
        deleted(self.apply(ticket, KvOp::Delete { now, keys }))
    }

    /// [`KvStore::delete`] without waiting, as [`KvStore::set_async`].
    pub fn delete_async(
        &self,
        keys: Vec<String>,
        now: i64,
        done: impl FnOnce(Result<Vec<bool>>) + Send + 'static,
    ) {
        self.apply_async(KvOp::Delete { now, keys }, move |outcome| {
            done(deleted(outcome))
        });
    }

    pub fn clear(&self, ticket: WriteTicket) -> Result<()> {
        self.apply(ticket, KvOp::Clear).map(|_| ())
    }

    pub fn clear_async(&self, done: impl FnOnce(Result<()>) + Send + 'static) {
        self.apply_async(KvOp::Clear, move |outcome| done(outcome.map(|_| ())));
    }

    /// Live entries matching `pattern`, in key order.
    pub fn find(&self, pattern: &str, now: i64) -> Result<Vec<(String, Arc<KvEntry>)>> {
        let glob = Glob::new(pattern);
        let state = self.read()?;
        Ok(state
            .table
            .find(&glob, now)
            .into_iter()
            .map(|(k, e)| (k.clone(), Arc::clone(e)))
            .collect())
    }

    /// Live keys matching `pattern` (every key when `None`), in key order.
    pub fn keys(&self, pattern: Option<&str>, now: i64) -> Result<Vec<String>> {
        let glob = Glob::new(pattern.unwrap_or("*"));
        let state = self.read()?;
        Ok(state
            .table
            .find(&glob, now)
            .into_iter()
            .map(|(k, _)| k.clone())
            .collect())
    }

    pub fn stats(&self, now: i64) -> Result<KvStats> {
        let inner = &self.inner;
        let total_entries = self.read()?.table.live_count(now);
        let info = lock(&inner.info);
        let mut stats = KvStats {
            total_entries,
            size: 0,
            last_sync: info.last_sync,
            wal_bytes: 0,
            recovery: info.recovery.clone(),
            writes_disabled: lock(&inner.write_error).clone(),
            last_checkpoint_error: info.last_checkpoint_error.clone(),
        };
        drop(info);
        if let Some(dir) = lock(&inner.dir).as_ref() {
            stats.wal_bytes = dir.wal_bytes();
            let storage = &inner.options.storage;
            let names = storage
                .list(dir.path())
                .map_err(|e| Error::io("list", dir.path(), e))?;
            stats.size = names
                .iter()
                .filter_map(|n| storage.size(&dir.path().join(n)).ok())
                .sum();
        }
        Ok(stats)
    }

    /// Housekeeping: removes the entries expired at `now` (one logged
    /// operation), then checkpoints (which also compacts the log away).
    /// Returns how many entries the sweep removed.
    pub fn maintain(&self, ticket: WriteTicket, now: i64) -> Result<usize> {
        let swept = match self.apply(ticket, KvOp::Sweep { now })? {
            Applied::Swept(n) => n,
            _ => 0,
        };
        self.checkpoint(self.ticket())?;
        Ok(swept)
    }

    /// [`KvStore::maintain`] without waiting, as [`KvStore::set_async`].
    pub fn maintain_async(&self, now: i64, done: impl FnOnce(Result<usize>) + Send + 'static) {
        self.maintain_async_reporting(now, Reporter::silent("checkpoint"), done);
    }

    /// [`KvStore::maintain_async`], its checkpoint reporting to `progress`
    /// as [`KvStore::checkpoint_reporting`] does.
    pub fn maintain_async_reporting(
        &self,
        now: i64,
        progress: Reporter,
        done: impl FnOnce(Result<usize>) + Send + 'static,
    ) {
        // Both requests are queued now, back to back: the commit thread
        // calls the sweep's callback before the checkpoint's.
        let swept: Arc<Mutex<Option<Result<usize>>>> = Arc::default();
        let slot = Arc::clone(&swept);
        self.apply_async(KvOp::Sweep { now }, move |outcome| {
            *lock(&slot) = Some(outcome.map(|applied| match applied {
                Applied::Swept(n) => n,
                _ => 0,
            }));
        });
        self.checkpoint_async_reporting(progress, move |checkpointed| {
            let swept = lock(&swept).take().unwrap_or(Err(Error::Poisoned));
            done(swept.and_then(|n| checkpointed.map(|()| n)));
        });
    }

    /// Writes a checkpoint now: the table as of every write issued before
    /// this call, then a manifest naming it, then removal of the log it covers.
    pub fn checkpoint(&self, ticket: WriteTicket) -> Result<()> {
        self.checkpoint_reporting(ticket, &mut Reporter::silent("checkpoint"))
    }

    /// [`KvStore::checkpoint`], reporting its one phase, `write`: the
    /// checkpoint file in bytes, a tick per piece written (at a bounded
    /// rate), ending once the file and its manifest are durable; total 0
    /// when nothing changed since the last checkpoint.
    pub fn checkpoint_reporting(&self, ticket: WriteTicket, progress: &mut Reporter) -> Result<()> {
        match self.submit(ticket, Request::Checkpoint)? {
            Outcome::Checkpoint(Some(job)) => self.inner.publish(&job, progress),
            _ => {
                nothing_to_write(progress);
                Ok(())
            }
        }
    }

    /// [`KvStore::checkpoint`] without waiting. The commit thread copies the
    /// table; writing the checkpoint file runs on a thread of its own, so
    /// writes go on meanwhile.
    pub fn checkpoint_async(&self, done: impl FnOnce(Result<()>) + Send + 'static) {
        self.checkpoint_async_reporting(Reporter::silent("checkpoint"), done);
    }

    /// [`KvStore::checkpoint_async`], reporting to `progress` as
    /// [`KvStore::checkpoint_reporting`] does; `done` is called after the
    /// last event.
    pub fn checkpoint_async_reporting(
        &self,
        mut progress: Reporter,
        done: impl FnOnce(Result<()>) + Send + 'static,
    ) {
        let inner = Arc::clone(&self.inner);
        self.enqueue(
            Request::Checkpoint,
            Box::new(move |outcome| match outcome {
                Ok(Outcome::Checkpoint(Some(job))) => {
                    // The thread takes the job, the reporter and `done`;
                    // when no thread can be had, they are taken back here.
                    let work = Arc::new(Mutex::new(Some((job, progress, done))));
                    let taken = Arc::clone(&work);
                    let publisher = Arc::clone(&inner);
                    let spawned = std::thread::Builder::new()
                        .name("annvault-kv-checkpoint".into())
                        .spawn(move || {
                            if let Some((job, mut progress, done)) = lock(&taken).take() {
                                done(publisher.publish(&job, &mut progress));
                            }
                        });
                    if spawned.is_err() {
                        // No thread to be had: publish here rather than not at all.
                        if let Some((job, mut progress, done)) = lock(&work).take() {
                            done(inner.publish(&job, &mut progress));
                        }
                    }
                }
                Ok(_) => {
                    nothing_to_write(&mut progress);
                    done(Ok(()))
                }
                Err(error) => done(Err(error)),
            }),
        );
    }

    /// Whether a checkpoint started in the background (the log passed
    /// `checkpoint_wal_bytes`) is still being written.
    pub fn checkpoint_running(&self) -> bool {
        self.inner.checkpoint_running.load(Ordering::Acquire)
    }

    /// Writes the table as of this call into `dest`, a directory that must
    /// not exist yet, as a complete key-value directory (checkpoint, then
    /// manifest, each fsynced) that [`KvStore::open`] opens with every
    /// entry and time as they were. Writes go on meanwhile: the table is
    /// copied under the read lock (entries are shared, not copied) and
    /// written without it. Resolves to the number of entries copied.
    pub fn backup_to(&self, dest: &Path) -> Result<usize> {
        let storage = Arc::clone(&self.inner.options.storage);
        if storage.exists(dest) {
            return Err(Error::InvalidArgument {
                name: "dest",
                reason: format!("{} already exists", dest.display()),
            });
        }
        let table = self.read()?.table.clone();
        let count = table.len();
        let (mut dir, _empty, _) =
            LogDir::<KvTable>::open(Arc::clone(&storage), dest, (), self.inner.options.dir)?;
        let previous = dir.manifest().clone();
        let job = dir.rotate(table)?;
        LogDir::publish(
            storage.as_ref(),
            dest,
            &job,
            crate::storage::snapshot::Compression::None,
            &previous,
        )?;
        Ok(count)
    }

    /// Checkpoints (when anything changed since the last one), releases the
    /// directory lock and closes: every later call fails with
    /// [`Error::Closed`]. Closing a closed store is a no-op.
    pub fn close(&self, ticket: WriteTicket) -> Result<()> {
        self.submit(ticket, Request::Close).map(|_| ())
    }

    /// [`KvStore::close`] without waiting, as [`KvStore::set_async`].
    pub fn close_async(&self, done: impl FnOnce(Result<()>) + Send + 'static) {
        self.enqueue(
            Request::Close,
            Box::new(move |outcome| done(outcome.map(|_| ()))),
        );
    }
}

/// The `write` phase of a checkpoint that had nothing to write.
fn nothing_to_write(progress: &mut Reporter) {
    progress.start("write", 0, "nothing written since the last checkpoint");
    progress.finish("");
}

fn applied(outcome: Outcome) -> Result<Applied> {
    match outcome {
        Outcome::Applied(applied) => Ok(applied),
        _ => Err(Error::Internal {
            reason: "unexpected outcome for a write".into(),
        }),
    }
}

fn deleted(outcome: Result<Applied>) -> Result<Vec<bool>> {
    match outcome? {
        Applied::Deleted(found) => Ok(found),
        _ => Err(Error::Internal {
            reason: "unexpected outcome for a delete".into(),
        }),
    }
}

fn validate_set(writes: &[KvWrite]) -> Result<()> {
    let indexed = writes.len() > 1;
    for (i, write) in writes.iter().enumerate() {
        validate_write(write, indexed.then_some(i))?;
    }
    Ok(())
}

/// Checks what the caller sent, on the commit thread (the caller's may be
/// JS's, where a large value's parse does not belong).
fn validate(op: &KvOp) -> Result<()> {
    match op {
        KvOp::Set { writes, .. } => validate_set(writes),
        KvOp::Delete { keys, .. } => validate_keys(keys),
        KvOp::Clear | KvOp::Sweep { .. } => Ok(()),
    }
}

/// The commit thread: takes everything queued, commits it as one group
/// (one append, one fsync), and calls each request's callback in order.
fn commit_loop(store: Weak<Inner>, queue: Receiver<Queued>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        batch.extend(queue.try_iter());
        let mut dones = Vec::with_capacity(batch.len());
        let mut requests = Vec::with_capacity(batch.len());
        for (id, queued) in batch.into_iter().enumerate() {
            requests.push((id as u64, queued.request));
            dones.push(queued.done);
        }
        let mut outcomes: Vec<Option<Result<Outcome>>> = dones.iter().map(|_| None).collect();
        if let Some(inner) = store.upgrade() {
            let results =
                catch_unwind(AssertUnwindSafe(|| inner.commit(requests))).unwrap_or_default();
            for (id, result) in results {
                if let Some(slot) = outcomes.get_mut(id as usize) {
                    *slot = Some(result);
                }
            }
        }
        for (done, outcome) in dones.into_iter().zip(outcomes) {
            // A request the commit did not reach (it panicked) is refused.
            let outcome = outcome.unwrap_or(Err(Error::Poisoned));
            // A panicking callback must not take the other callers' with it.
            let _ = catch_unwind(AssertUnwindSafe(move || done(outcome)));
        }
    }
}

impl Inner {
    fn disable_writes(&self, error: &Error) {
        let mut slot = lock(&self.write_error);
        if slot.is_none() {
            *slot = Some(error.full_message());
        }
    }

    fn writes_disabled(&self) -> Option<Error> {
        lock(&self.write_error)
            .as_ref()
            .map(|reason| Error::WritesDisabled {
                reason: reason.clone(),
            })
    }

    /// Runs one group of queued requests, in order.
    fn commit(self: &Arc<Self>, batch: Vec<(u64, Request)>) -> Vec<(u64, Result<Outcome>)> {
        let mut results = Vec::with_capacity(batch.len());
        let mut group: Vec<(u64, KvOp)> = Vec::new();
        let mut dir = lock(&self.dir);
        for (id, request) in batch {
            match request {
                Request::Op(op) => match validate(&op) {
                    Ok(()) => group.push((id, op)),
                    Err(error) => results.push((id, Err(error))),
                },
                Request::Checkpoint => {
                    results.extend(self.commit_ops(&mut dir, std::mem::take(&mut group)));
                    let outcome = self
                        .rotate(&mut dir)
                        .map(|job| Outcome::Checkpoint(job.map(Box::new)));
                    results.push((id, outcome));
                }
                Request::Close => {
                    results.extend(self.commit_ops(&mut dir, std::mem::take(&mut group)));
                    results.push((id, self.close(&mut dir).map(|()| Outcome::Done)));
                }
            }
        }
        results.extend(self.commit_ops(&mut dir, group));
        self.maybe_start_checkpoint(&dir);
        results
    }

    /// Logs, syncs and applies a run of operations: one write, one fsync.
    fn commit_ops(
        &self,
        dir: &mut Option<LogDir<KvTable>>,
        group: Vec<(u64, KvOp)>,
    ) -> Vec<(u64, Result<Outcome>)> {
        if group.is_empty() {
            return Vec::new();
        }
        let fail_all = |group: Vec<(u64, KvOp)>, error: &dyn Fn() -> Error| {
            group
                .into_iter()
                .map(|(id, _)| (id, Err(error())))
                .collect::<Vec<_>>()
        };
        let Some(d) = dir.as_mut().filter(|_| self.open.load(Ordering::Acquire)) else {
            return fail_all(group, &|| Error::Closed);
        };
        if let Some(error) = self.writes_disabled() {
            let reason = error.to_string();
            return fail_all(group, &|| Error::WritesDisabled {
                reason: reason.clone(),
            });
        }
        // Only what changes the table is logged. The leader is the only
        // writer, so the table does not change between this look and the
        // apply below; an operation's effect on a later one of the same
        // group is covered by logging every operation after the first
        // that changes anything.
        let logged: Vec<&KvOp> = match self.state.read() {
            Ok(state) => {
                let first = group.iter().position(|(_, op)| state.table.changes(op));
                first.map_or_else(Vec::new, |i| group[i..].iter().map(|(_, op)| op).collect())
            }
            Err(_) => return fail_all(group, &|| Error::Poisoned),
        };
        if !logged.is_empty() {
            let mut outcome = d.append(&logged);
            if outcome.is_ok() && d.options().durability == Durability::Fsync {
                outcome = d.sync();
                if outcome.is_ok() {
                    lock(&self.info).last_sync = Some(now_i64());
                }
            }
            if let Err(error) = outcome {
                self.disable_writes(&error);
                let reason = error.full_message();
                let mut first = Some(error);
                return group
                    .into_iter()
                    .map(|(id, _)| {
                        let error = first.take().unwrap_or_else(|| Error::WritesDisabled {
                            reason: reason.clone(),
                        });
                        (id, Err(error))
                    })
                    .collect();
            }
        }
        let mut state = match self.state.write() {
            Ok(state) => state,
            Err(_) => return fail_all(group, &|| Error::Poisoned),
        };
        group
            .into_iter()
            .map(|(id, op)| (id, Ok(Outcome::Applied(state.table.apply(op)))))
            .collect()
    }

    /// Checkpoint step 1, on the commit path: copy the table, start a new log file.
    fn rotate(&self, dir: &mut Option<LogDir<KvTable>>) -> Result<Option<CheckpointJob<KvTable>>> {
        let Some(d) = dir.as_mut().filter(|_| self.open.load(Ordering::Acquire)) else {
            return Err(Error::Closed);
        };
        if let Some(error) = self.writes_disabled() {
            return Err(error);
        }
        self.sync_manifest(d);
        if !d.has_changes_since_snapshot() {
            return Ok(None);
        }
        // Entries are shared: the copy costs a pointer per key.
        let copy = self
            .state
            .read()
            .map_err(|_| Error::Poisoned)?
            .table
            .clone();
        // A failed rotation may leave a half-made next log file behind:
        // appending on would make the two files disagree.
        d.rotate(copy)
            .map(Some)
            .inspect_err(|e| self.disable_writes(e))
    }

    /// Checkpoint steps 2–4. Takes the publication lock and `info`, never
    /// the commit lock: a close publishes while holding that one. The
    /// directory learns the new manifest at its next rotation or close.
    fn publish(&self, job: &CheckpointJob<KvTable>, progress: &mut Reporter) -> Result<()> {
        let _publishing = lock(&self.publish);
        let previous = {
            let info = lock(&self.info);
            if info.published_generation >= job.generation {
                // A later checkpoint is already out; publishing this one
                // would take the manifest back to a log file it removed.
                drop(info);
                progress.start("write", 0, "a later checkpoint holds these entries");
                progress.finish("");
                return Ok(());
            }
            info.manifest.clone()
        };
        let storage = self.options.storage.as_ref();
        let outcome = LogDir::publish_with(
            storage,
            &self.options.path,
            job,
            crate::storage::snapshot::Compression::None,
            &previous,
            false,
            true,
            progress,
        );
        let mut info = lock(&self.info);
        match outcome {
            Ok((manifest, _)) => {
                info.last_sync = Some(manifest.checkpointed_at_ms as i64);
                info.published_generation = job.generation;
                info.manifest = manifest;
                info.last_checkpoint_error = None;
                drop(info);
                progress.finish(format!("wrote checkpoint {}", job.generation));
                Ok(())
            }
            Err(error) => {
                info.last_checkpoint_error = Some(error.full_message());
                Err(error)
            }
        }
    }

    /// Hands the directory the newest published manifest.
    fn sync_manifest(&self, d: &mut LogDir<KvTable>) {
        let info = lock(&self.info);
        if info.manifest.snapshot > d.manifest().snapshot {
            d.set_manifest(info.manifest.clone());
        }
    }

    /// Starts a background checkpoint when the log has grown past its threshold.
    fn maybe_start_checkpoint(self: &Arc<Self>, dir: &Option<LogDir<KvTable>>) {
        let due = dir
            .as_ref()
            .is_some_and(|d| d.wal_bytes() >= d.options().checkpoint_wal_bytes);
        if !due || self.checkpoint_running.swap(true, Ordering::AcqRel) {
            return;
        }
        let store = KvStore {
            inner: Arc::clone(self),
        };
        let spawned = std::thread::Builder::new()
            .name("annvault-kv-checkpoint".into())
            .spawn(move || {
                if let Err(error) = store.checkpoint(store.ticket()) {
                    lock(&store.inner.info).last_checkpoint_error = Some(error.full_message());
                }
                store
                    .inner
                    .checkpoint_running
                    .store(false, Ordering::Release);
            });
        if spawned.is_err() {
            self.checkpoint_running.store(false, Ordering::Release);
        }
    }

    fn close(&self, dir: &mut Option<LogDir<KvTable>>) -> Result<()> {
        if !self.open.load(Ordering::Acquire) {
            return Ok(());
        }
        if self.writes_disabled().is_none() {
            if let Some(job) = self.rotate(dir)? {
                self.publish(&job, &mut Reporter::silent("checkpoint"))?;
            }
        }
        let mut state = self.state.write().map_err(|_| Error::Poisoned)?;
        state.open = false;
        state.table = KvTable::new();
        self.open.store(false, Ordering::Release);
        // Dropping the directory releases its lock.
        *dir = None;
        Ok(())
    }
}

/// Checks every key of a read or a delete (an index in the error when there
/// are several).
fn validate_keys(keys: &[String]) -> Result<()> {
    for (i, key) in keys.iter().enumerate() {
        validate_key(key, (keys.len() > 1).then_some(i))?;
    }
    Ok(())
}

/// The live entries of `keys` at `now` in `state`.
fn lookup(state: &State, keys: &[String], now: i64) -> Vec<Option<Arc<KvEntry>>> {
    keys.iter()
        .map(|k| state.table.get(k, now).map(Arc::clone))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::kv::KvValue;
    use crate::storage::directory::{DirOptions, Durability};
    use crate::storage::sim::SimStorage;

    #[test]
    fn try_get_reads_what_get_reads_and_never_waits_for_a_writer() {
        let sim = SimStorage::new(7);
        let store = KvStore::open(KvOptions {
            storage: Arc::new(sim),
            path: Path::new("/kv").to_path_buf(),
            dir: DirOptions {
                durability: Durability::Fsync,
                ..DirOptions::default()
            },
        })
        .expect("open");
        let write = KvWrite {
            key: "a".into(),
            value: KvValue::Json("1".into()),
            metadata: "{}".into(),
            expires_at: None,
        };
        store.set(store.ticket(), vec![write], 10).expect("set");
        let keys = vec!["a".to_string(), "b".to_string()];
        let got = store
            .try_get(&keys, 20)
            .expect("try_get")
            .expect("uncontended");
        let want = store.get(&keys, 20).expect("get");
        assert_eq!(got.len(), 2);
        assert!(Arc::ptr_eq(
            got[0].as_ref().expect("a"),
            want[0].as_ref().expect("a")
        ));
        assert!(got[1].is_none() && want[1].is_none());

        // A writer holding the lock: try_get gives up at once.
        let held = store.inner.state.write().expect("lock");
        assert!(store.try_get(&keys, 20).expect("try_get").is_none());
        drop(held);
        assert!(store.try_get(&keys, 20).expect("try_get").is_some());

        // Bad keys are refused whether or not the lock is free.
        let held = store.inner.state.write().expect("lock");
        assert_eq!(
            store.try_get(&[String::new()], 20).unwrap_err().code(),
            5003
        );
        drop(held);
        store.close(store.ticket()).expect("close");
        assert!(matches!(store.try_get(&keys, 20), Err(Error::Closed)));
    }
}
