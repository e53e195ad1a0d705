//! `Store`: the thread-safe handle to one collection, the one type the
//! binding holds.
//!
//! Reads run concurrently under a read lock. Writes are applied in the order
//! their tickets were taken ([`Store::ticket`], called on the caller's thread
//! when the call is made), even though they run on a thread pool: a JS caller
//! that fires `insert` and then `delete` without awaiting gets them in that
//! order. The storage engine will sit under this type; its API stays.

use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::ann::{self, AnnConfig, Graph, IndexStats};
use crate::collection::{
    check_vector, Collection, CollectionConfig, Hit, Page, Payload, PointBatch, Record, Verdict,
};
use crate::error::{BatchIndex, Error, Result};
use crate::filter::Filter;
use crate::id::PointId;
use crate::op::Op;
use crate::progress::{ProgressSink, Reporter};
use crate::storage::directory::{
    CheckpointJob, CollectionDir, DirOptions, Durability, RecoveryReport,
};
pub use crate::storage::engine::WriteTicket;
use crate::storage::engine::{CommitQueue, WriteGate};
use crate::storage::fs::{OsStorage, Storage};
use crate::storage::legacy;
use crate::storage::manifest::{self, Manifest};
use crate::storage::snapshot;

/// Longest accepted collection name, in bytes.
pub const MAX_NAME_BYTES: usize = 128;

/// Checks that a collection name is safe to use as one directory name on
/// every platform: no separators, no `..`, no reserved characters.
pub fn validate_collection_name(name: &str) -> Result<()> {
    let invalid = |reason: &'static str| Error::InvalidName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(invalid("is longer than 128 bytes"));
    }
    if name.contains("..") {
        return Err(invalid("must not contain '..'"));
    }
    if name == "." {
        return Err(invalid("must not be '.'"));
    }
    if name.contains(['/', '\\']) {
        return Err(invalid("must not contain a path separator"));
    }
    if name
        .chars()
        .any(|c| c.is_control() || matches!(c, ':' | '*' | '?' | '"' | '<' | '>' | '|'))
    {
        return Err(invalid(
            "must not contain control characters or any of : * ? \" < > |",
        ));
    }
    if name.ends_with([' ', '.']) || name.starts_with(' ') {
        return Err(invalid(
            "must not start with a space or end with a space or '.'",
        ));
    }
    Ok(())
}

#[derive(Clone)]
pub struct Persistence {
    /// The persistence path; the collection lives in `root/<name>/`.
    pub root: PathBuf,
    pub storage: Arc<dyn Storage>,
    pub options: DirOptions,
}

impl Persistence {
    /// Opens (recovers) collection `name` in `root/<name>/`.
    fn open(
        &self,
        name: &str,
        config: CollectionConfig,
        progress: &mut Reporter,
    ) -> Result<(CollectionDir, Collection, RecoveryReport)> {
        CollectionDir::open_reporting(
            Arc::clone(&self.storage),
            &self.root.join(name),
            config,
            self.options,
            progress,
        )
    }
}

impl std::fmt::Debug for Persistence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Persistence")
            .field("root", &self.root)
            .field("options", &self.options)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub name: String,
    pub config: CollectionConfig,
    /// `None`: the store lives in memory only and touches no file.
    pub persistence: Option<Persistence>,
    pub ann: AnnConfig,
}

/// What `stats()` reports.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub count: usize,
    pub persistent: bool,
    pub path: Option<String>,
    pub bytes_on_disk: u64,
    pub wal_bytes: u64,
    /// Last WAL sequence number written.
    pub sequence: u64,
    /// When the last checkpoint was published (ms since the epoch), if ever.
    pub last_checkpoint_ms: Option<u64>,
    pub last_checkpoint_error: Option<String>,
    pub writes_disabled: Option<String>,
    pub recovered_snapshot_points: usize,
    pub replayed_records: u64,
    pub torn_bytes: u64,
    /// What the torn tail that open cut away was, if there was one.
    pub torn_tail: Option<TornTailStats>,
    pub recovered_to: Option<String>,
    pub index: IndexStats,
    /// Where the vectors are served from: `"memory"` or `"disk"`.
    pub vector_storage: &'static str,
    /// Vectors held in the process's memory: all of them in memory mode;
    /// on disk, those written since the last checkpoint.
    pub vectors_in_memory: usize,
}

/// `stats().tornTail`: see [`crate::storage::directory::TornTail`].
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TornTailStats {
    pub file: String,
    pub offset: u64,
    /// `"incomplete"` (cut short) or `"damaged"` (full length, fails its checks).
    pub kind: &'static str,
    pub reason: String,
}

enum Request {
    Op(Op),
    Checkpoint,
    Close,
    Reopen,
    /// Seal the WAL and pin the files that hold the state (a named snapshot).
    Pin,
    /// Replace the state with this one, durably (restoring a named snapshot).
    Restore(Box<Collection>),
}

/// A checkpoint's copy of the state: the collection, and the graph that
/// indexes it (saved beside the snapshot when its labels match).
type Checkpoint = (CheckpointJob, Option<Arc<Graph>>);

enum Outcome {
    Applied(bool),
    Checkpoint(Option<Box<Checkpoint>>),
    Pinned(Box<PinnedFiles>),
    Done,
}

/// The files that hold a collection's state at one point of the write
/// order, which no checkpoint removes while a [`Pin`] of them lives.
#[derive(Debug, Clone)]
pub struct PinnedFiles {
    /// The collection's directory.
    pub dir: PathBuf,
    /// The manifest on disk when they were pinned.
    pub manifest: Manifest,
    /// File names in `dir`: the checkpoint the manifest names (if any),
    /// then the WAL files from its `walStart`, none of them written again.
    pub files: Vec<String>,
    /// Last WAL sequence number they hold.
    pub sequence: u64,
    /// Points the state holds.
    pub count: usize,
    /// SHA-256 of the checkpoint file, when this process wrote it.
    pub checkpoint_digest: Option<[u8; 32]>,
}

/// Keeps checkpoints from removing pinned files until dropped.
pub struct Pin {
    inner: Arc<Inner>,
    pub files: PinnedFiles,
}

impl Drop for Pin {
    fn drop(&mut self) {
        self.inner.pins.fetch_sub(1, Ordering::AcqRel);
    }
}

struct State {
    collection: Collection,
    open: bool,
    /// The ANN graph; used only while its epoch is the collection's.
    graph: Option<Arc<Graph>>,
}

struct Inner {
    name: String,
    config: CollectionConfig,
    persistence: Option<Persistence>,
    state: RwLock<State>,
    /// Mirrors `State::open` so `is_open` never waits behind a writer.
    open: AtomicBool,
    gate: Arc<WriteGate>,
    queue: CommitQueue<Request, Outcome>,
    /// Only the commit leader writes through it.
    dir: Mutex<Option<CollectionDir>>,
    /// Set after a failed write or fsync: writes are refused until reopen.
    write_error: Mutex<Option<String>>,
    /// Serialises snapshot publication.
    publish: Mutex<()>,
    /// Named snapshots being taken: while any, a checkpoint leaves the
    /// files it made obsolete in place (the next one removes them).
    pins: AtomicUsize,
    /// Serialises named-snapshot operations (create, restore, delete).
    named: Mutex<()>,
    checkpoint_running: AtomicBool,
    info: Mutex<Info>,
    ann: AnnConfig,
    indexer: Arc<IndexerSignal>,
    /// Held while the graph grows and while it is saved: a dump must not
    /// see half an insert.
    index_lock: Mutex<()>,
    /// Searches and writes in progress: while there are any, the indexer
    /// keeps to one core (see [`Foreground`]).
    foreground: AtomicUsize,
    ann_info: Mutex<AnnInfo>,
    /// The open's progress sink, kept for the work no caller waits for:
    /// background checkpoints, the one a close writes, and graph builds.
    progress: Option<ProgressSink>,
}

/// Counts one search or write in progress for as long as it lives. On two
/// cores, an indexer on both of them cost durable single writes a third of
/// their rate and searches about as much; while any foreground work runs, it
/// inserts on its own thread only (see `ann::Graph::insert`).
struct Foreground<'a>(&'a AtomicUsize);

impl<'a> Foreground<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Foreground(count)
    }
}

impl Drop for Foreground<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Wakes the background indexer.
#[derive(Default)]
struct IndexerSignal {
    pending: Mutex<bool>,
    wake: Condvar,
}

#[derive(Default)]
struct AnnInfo {
    builds: u64,
    last_build_ms: Option<f64>,
    loaded_from_disk: bool,
    warning: Option<String>,
    /// The indexer panicked: searches stay exact.
    failed: bool,
    /// When the indexer last grew the graph.
    last_insert: Option<Instant>,
    /// How long the last audit of every label took.
    last_full_audit: Option<Duration>,
    /// `wait_for_index` waits for a full audit: run it without delay.
    full_audit_requested: bool,
    /// Time the indexer spent, since the open: growing the graph (inserts,
    /// the re-inserts of audits included), building or rebuilding it from
    /// scratch, and auditing it.
    insert_time: Duration,
    build_time: Duration,
    audit_time: Duration,
    /// Links per node the next graph gets when the current one proved weak
    /// (see [`Graph::wants_more_links`]); `None`: `hnsw.m`.
    connectivity: Option<usize>,
    /// The graph on disk: the snapshot generation it was saved beside, its
    /// epoch and how many labels it held. A close saves the graph again when
    /// the indexer has taken in more since.
    saved: Option<SavedCoverage>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct SavedCoverage {
    generation: u64,
    epoch: u64,
    indexed: usize,
}

/// Vector components a search may touch to run on the caller's thread
/// (see [`Store::try_search_now`]): a few hundred microseconds at most.
const INLINE_SEARCH_WORK: usize = 4 << 20;

/// How long the indexer waits after a wake-up before its next step.
const INDEXER_DEBOUNCE: Duration = Duration::from_millis(2);

/// Misses an audit confirms with real searches per hold of the state lock.
const CONFIRM_SLICE: usize = 256;

/// Labels the indexer takes into the graph per step, so that the tail
/// shrinks steadily and a checkpoint's graph dump waits at most one step.
const INDEX_CHUNK: usize = 2048;

#[derive(Default)]
struct Info {
    recovery: RecoveryReport,
    /// Generation of the newest published snapshot.
    published_generation: u64,
    last_checkpoint_ms: Option<u64>,
    last_checkpoint_error: Option<String>,
    /// SHA-256 of the checkpoint file of this generation, written here.
    checkpoint_digest: Option<(u64, [u8; 32])>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section below leaves its data consistent at each
    // statement, so a panic elsewhere cannot leave it half-changed.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The thread-safe handle to one collection. Cloning it shares the store.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("name", &self.inner.name)
            .finish()
    }
}

impl Store {
    /// Opens (and recovers) the collection. With persistence, this takes the
    /// directory's lock and may import the legacy layout found in the root.
    pub fn open(options: StoreOptions) -> Result<Self> {
        Self::open_reporting(options, &mut Reporter::silent("open"))
    }

    /// [`Store::open`], reporting its phases: `load` (the checkpoint),
    /// `replay` (the WAL, in bytes) and `graph` (attaching the saved graph).
    /// The store keeps `progress`'s sink for the events of its background
    /// work: `checkpoint` (when the WAL grows past its threshold, timed, on
    /// close) and `rebuild` (graph builds from scratch, on the indexer).
    pub fn open_reporting(options: StoreOptions, progress: &mut Reporter) -> Result<Self> {
        validate_collection_name(&options.name)?;
        options
            .ann
            .validate(options.config.distance, options.config.dimension)?;
        if options.config.vectors_on_disk {
            match &options.persistence {
                None => {
                    return Err(Error::InvalidArgument {
                        name: "storage.vectors",
                        reason: "'disk' serves the vectors from the checkpoint files: it needs a \
                                 persistent store (a path)"
                            .into(),
                    })
                }
                Some(p) if p.options.snapshot_compression() != snapshot::Compression::None => {
                    return Err(Error::InvalidArgument {
                        name: "storage.vectors",
                        reason:
                            "'disk' maps the checkpoint files, which must be stored \
                                 uncompressed: drop the checkpoint compression ('gzip' or 'brotli')"
                                .into(),
                    })
                }
                Some(_) => {}
            }
        }
        // A collection not created yet, beside the older layout: read and
        // check that layout first, so that a refusal leaves no empty
        // collection behind.
        let legacy_batch = match &options.persistence {
            Some(p)
                if !p.storage.exists(&p.root.join(&options.name))
                    && legacy::present(p.storage.as_ref(), &p.root) =>
            {
                Some(legacy::read(
                    p.storage.as_ref(),
                    &p.root,
                    options.config.dimension,
                )?)
            }
            _ => None,
        };
        let mut recovery = RecoveryReport::default();
        let mut ann_info = AnnInfo::default();
        let mut graph = None;
        let (collection, dir) = match &options.persistence {
            Some(p) => {
                let opened =
                    open_collection(p, &options.name, options.config, &options.ann, progress)?;
                recovery = opened.report;
                ann_info = opened.ann_info;
                graph = opened.graph;
                (opened.collection, Some(opened.dir))
            }
            None => (Collection::new(options.config), None),
        };
        let fresh = dir
            .as_ref()
            .is_some_and(|d| d.manifest().snapshot == 0 && d.next_seq() == 1);
        let published_generation = dir.as_ref().map_or(0, |d| d.manifest().snapshot);
        let store = Store {
            inner: Arc::new(Inner {
                name: options.name,
                config: options.config,
                persistence: options.persistence,
                state: RwLock::new(State {
                    collection,
                    open: true,
                    graph,
                }),
                open: AtomicBool::new(true),
                gate: Arc::new(WriteGate::default()),
                queue: CommitQueue::default(),
                dir: Mutex::new(dir),
                write_error: Mutex::new(None),
                publish: Mutex::new(()),
                pins: AtomicUsize::new(0),
                named: Mutex::new(()),
                checkpoint_running: AtomicBool::new(false),
                info: Mutex::new(Info {
                    recovery,
                    published_generation,
                    ..Info::default()
                }),
                ann: options.ann.clone(),
                indexer: Arc::new(IndexerSignal::default()),
                foreground: AtomicUsize::new(0),
                index_lock: Mutex::new(()),
                ann_info: Mutex::new(ann_info),
                progress: progress.sink(),
            }),
        };
        if options.ann.algorithm != ann::Algorithm::Flat {
            spawn_indexer(&store.inner);
        }
        if fresh {
            store.import_legacy(legacy_batch)?;
        }
        Ok(store)
    }

    /// Imports the older layout into a fresh collection: `batch` when it was
    /// read before the collection was created, else read now (a collection
    /// directory left empty by an earlier version's refused import).
    fn import_legacy(&self, batch: Option<PointBatch>) -> Result<()> {
        let Some(p) = &self.inner.persistence else {
            return Ok(());
        };
        let batch = match batch {
            Some(batch) => batch,
            None if legacy::present(p.storage.as_ref(), &p.root) => {
                legacy::read(p.storage.as_ref(), &p.root, self.inner.config.dimension)?
            }
            None => return Ok(()),
        };
        self.insert(self.ticket(), batch)?;
        self.checkpoint(self.ticket())
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn config(&self) -> &CollectionConfig {
        &self.inner.config
    }

    pub fn is_persistent(&self) -> bool {
        self.inner.persistence.is_some()
    }

    /// Reserves the next place in the write order. Call it where the
    /// operation is requested, before handing the work to another thread.
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

    /// Queues `request` in ticket order and waits for its outcome. Whoever
    /// finds no commit running commits everything queued (group commit).
    fn submit(&self, ticket: WriteTicket, request: Request) -> Result<Outcome> {
        let inner = &self.inner;
        // A close or checkpoint waits for the indexer: it must not hold it
        // to one core.
        let _foreground =
            matches!(request, Request::Op(_)).then(|| Foreground::enter(&inner.foreground));
        inner
            .queue
            .submit(&inner.gate, ticket, request, &|batch| inner.commit(batch))
    }

    /// Whether writes may be applied on the caller's thread: they need no
    /// fsync (memory only, or `Durability::Flush`).
    pub fn allows_inline_writes(&self) -> bool {
        self.inner
            .persistence
            .as_ref()
            .is_none_or(|p| p.options.durability == Durability::Flush)
    }

    /// Applies `op` on the calling thread when that cannot block: the store
    /// needs no fsync, it is this ticket's turn, no commit is running or
    /// queued, and no reader holds the state. Otherwise gives the ticket and
    /// the operation back, to go through [`Store::submit`] on another thread.
    #[allow(clippy::result_large_err)]
    pub fn try_apply_now(
        &self,
        ticket: WriteTicket,
        op: Op,
    ) -> std::result::Result<Result<bool>, (WriteTicket, Op)> {
        let inner = &self.inner;
        if !self.allows_inline_writes() || !inner.gate.is_turn(ticket.number) {
            return Err((ticket, op));
        }
        if !inner.queue.try_lead() {
            return Err((ticket, op));
        }
        let dir = inner.dir.try_lock().ok();
        let state = dir.as_ref().and_then(|_| inner.state.try_write().ok());
        let outcome = match (dir, state) {
            (Some(mut dir), Some(mut state)) => {
                // As in `commit_ops`: only what changes the collection is logged.
                // (A closed store goes on to `log`, which says so.)
                let verdict = state
                    .open
                    .then(|| state.collection.dry_run(&[&op]).pop())
                    .flatten();
                let result = match verdict {
                    Some(Verdict::Refuse(error)) => Err(error),
                    Some(Verdict::Unchanged) => Ok(false),
                    _ => inner
                        .log(&mut dir, &[&op])
                        .and_then(|()| state.collection.apply(op)),
                };
                drop(state);
                inner.maybe_start_checkpoint(&dir);
                inner.wake_indexer();
                Ok(result)
            }
            _ => Err((ticket, op)),
        };
        inner.queue.end_lead();
        // An applied write's ticket ends with this function: the next write's turn.
        outcome
    }

    /// Queues `op` in ticket order and waits until it is logged and applied.
    /// Returns whether a `Delete` found its id.
    pub fn apply(&self, ticket: WriteTicket, op: Op) -> Result<bool> {
        match self.submit(ticket, Request::Op(op))? {
            Outcome::Applied(found) => Ok(found),
            _ => Err(Error::Internal {
                reason: "unexpected outcome for a write".into(),
            }),
        }
    }

    pub fn insert(&self, ticket: WriteTicket, batch: PointBatch) -> Result<()> {
        if batch.dimension != self.inner.config.dimension {
            return Err(Error::DimensionMismatch {
                expected: self.inner.config.dimension,
                actual: batch.dimension,
                index: BatchIndex(None),
            });
        }
        self.apply(ticket, Op::Insert(batch)).map(|_| ())
    }

    pub fn update(
        &self,
        ticket: WriteTicket,
        id: &PointId,
        vector: &[f32],
        payload: Payload,
    ) -> Result<()> {
        check_vector(vector, self.inner.config.dimension, BatchIndex(None))?;
        let op = Op::Update {
            id: id.clone(),
            vector: vector.to_vec(),
            payload,
        };
        self.apply(ticket, op).map(|_| ())
    }

    /// Removes a point; resolves to whether it existed.
    pub fn delete(&self, ticket: WriteTicket, id: &PointId) -> Result<bool> {
        self.apply(ticket, Op::Delete(id.clone()))
    }

    pub fn clear(&self, ticket: WriteTicket) -> Result<()> {
        self.apply(ticket, Op::Clear).map(|_| ())
    }

    /// Writes a checkpoint now: snapshot, manifest, and removal of the WAL it
    /// covers, after the indexer has taken in every point (up to
    /// [`AnnConfig::close_wait`]). Reads go on meanwhile, and so do writes
    /// issued before this call. A no-op without persistence.
    pub fn checkpoint(&self, ticket: WriteTicket) -> Result<()> {
        self.checkpoint_reporting(ticket, &mut Reporter::silent("checkpoint"))
    }

    /// [`Store::checkpoint`], reporting its phases: `write` (the snapshot
    /// file, in bytes, a tick per piece written; total 0 when nothing
    /// changed since the last checkpoint),
    /// `graph` (the graph saved beside it, in points), `index` (waiting for
    /// the indexer to take in the points the snapshot holds) and `graph`
    /// again when it took in more.
    pub fn checkpoint_reporting(&self, ticket: WriteTicket, progress: &mut Reporter) -> Result<()> {
        self.snapshot(ticket, progress)?;
        // As a close does, but holding no ticket (writes go on meanwhile):
        // once the indexer has taken in every point the snapshot holds, the
        // graph is saved again beside it.
        let inner = &self.inner;
        if let (true, Some(p)) = (inner.saves_graph(), &inner.persistence) {
            let target = {
                let state = self.read()?;
                let labels = state.collection.labels();
                (labels.epoch(), labels.count())
            };
            let deadline = Instant::now() + inner.ann.close_wait;
            inner.wait_reporting(deadline, target.1, progress, &|state| {
                inner.index_settled(state, false)
                    || state.graph.as_ref().is_some_and(|g| {
                        g.epoch == target.0 && g.indexed() >= target.1 && g.audited() >= target.1
                    })
            })?;
            if let Some(d) = lock(&inner.dir).as_ref().map(|d| d.path().to_path_buf()) {
                inner.save_newer_graph(p, &d, progress);
            }
        }
        Ok(())
    }

    /// Checkpoint steps 1–4: snapshot and manifest, with the graph as it is.
    fn snapshot(&self, ticket: WriteTicket, progress: &mut Reporter) -> Result<()> {
        match self.submit(ticket, Request::Checkpoint)? {
            Outcome::Checkpoint(Some(checkpoint)) => {
                let (job, graph) = *checkpoint;
                self.inner.publish(&job, graph.as_ref(), progress)
            }
            _ => {
                progress.start("write", 0, "nothing written since the last checkpoint");
                progress.finish("");
                Ok(())
            }
        }
    }

    /// Lets the indexer take in every point (up to [`AnnConfig::close_wait`]),
    /// checkpoints with the graph, releases the directory lock and closes:
    /// every later call fails with [`Error::Closed`] until [`Store::reopen`].
    /// Closing a closed store is a no-op.
    pub fn close(&self, ticket: WriteTicket) -> Result<()> {
        self.submit(ticket, Request::Close).map(|_| ())
    }

    /// Opens a closed store again: a persistent store reloads from disk, a
    /// memory-only one keeps the data it had.
    pub fn reopen(&self, ticket: WriteTicket) -> Result<()> {
        self.submit(ticket, Request::Reopen).map(|_| ())
    }

    pub fn len(&self) -> Result<usize> {
        Ok(self.read()?.collection.len())
    }

    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    pub fn get(&self, id: &PointId) -> Result<Option<Record>> {
        Ok(self.read()?.collection.get(id))
    }

    pub fn search(&self, query: &[f32], limit: usize, filter: &Filter) -> Result<Vec<Hit>> {
        self.search_with(query, limit, filter, None)
    }

    /// Searches through the graph when the collection has one that is
    /// current, exactly otherwise. `ef_search` overrides the configured one.
    pub fn search_with(
        &self,
        query: &[f32],
        limit: usize,
        filter: &Filter,
        ef_search: Option<usize>,
    ) -> Result<Vec<Hit>> {
        let _foreground = Foreground::enter(&self.inner.foreground);
        let state = self.read()?;
        let collection = &state.collection;
        match state.graph.as_ref() {
            Some(graph) if self.inner.uses_graph(collection, graph) => {
                let ef = ef_search.unwrap_or(self.inner.ann.hnsw.ef_search);
                ann::search(collection, graph, query, limit, filter, ef)
            }
            _ => collection.search(query, limit, filter),
        }
    }

    /// Runs the search on the calling thread when it is cheap and nothing
    /// holds the collection: a graph search without a filter, or an exact
    /// scan of a small collection, and no writer applying or waiting.
    /// `None`: run [`Store::search_with`] on a worker instead. This spares
    /// a sub-millisecond search the trip through a thread pool, which costs
    /// as much as the search itself (about 50 µs on the benchmark VM).
    pub fn try_search_now(
        &self,
        query: &[f32],
        limit: usize,
        filter: &Filter,
        ef_search: Option<usize>,
    ) -> Option<Result<Vec<Hit>>> {
        let state = self.inner.state.try_read().ok()?;
        if !state.open {
            return Some(Err(Error::Closed));
        }
        let collection = &state.collection;
        let graph = state
            .graph
            .as_ref()
            .filter(|g| self.inner.uses_graph(collection, g));
        let ef = ef_search.unwrap_or(self.inner.ann.hnsw.ef_search);
        let evaluations = match graph {
            // How far a filtered walk goes depends on where the matches lie.
            Some(_) if !filter.is_empty() => return None,
            // A walk evaluates about `ef` × (links per node) vectors; layer
            // 0 has 2·m links. Plus the tail and pinned points, exactly.
            Some(graph) => ef
                .max(limit)
                .saturating_mul(4 * self.inner.ann.hnsw.m)
                .saturating_add(collection.labels().count().saturating_sub(graph.indexed()))
                .saturating_add(graph.pinned_len()),
            None if filter.is_empty() => collection.len(),
            // Filters cost about as much as a distance per point.
            None => collection.len().saturating_mul(2),
        };
        let work = evaluations.saturating_mul(collection.config().dimension);
        if work > INLINE_SEARCH_WORK {
            return None;
        }
        let _foreground = Foreground::enter(&self.inner.foreground);
        Some(match graph {
            Some(graph) => ann::search(collection, graph, query, limit, filter, ef),
            None => collection.search(query, limit, filter),
        })
    }

    /// Waits until the background indexer has nothing left to do (the graph
    /// is built, if the collection wants one, and the tail is indexed), or
    /// `timeout` passes. Returns whether it got there.
    pub fn wait_for_index(&self, timeout: Duration) -> Result<bool> {
        self.inner.wait_for_index(Instant::now() + timeout, true)
    }

    pub fn list(&self, filter: &Filter, limit: usize) -> Result<Page> {
        Ok(self.read()?.collection.list(filter, limit))
    }

    /// Writes the collection in the older backend's layout into `dir`.
    pub fn export_legacy(&self, dir: &Path) -> Result<()> {
        let copy = self.read()?.collection.clone();
        let storage: Arc<dyn Storage> = match &self.inner.persistence {
            Some(p) => Arc::clone(&p.storage),
            None => Arc::new(OsStorage),
        };
        legacy::write(storage.as_ref(), dir, &copy)
    }

    pub fn stats(&self) -> Result<Stats> {
        let inner = &self.inner;
        let (count, index, vectors_in_memory) = {
            let state = self.read()?;
            let arena = state.collection.arena();
            let in_memory = if arena.is_mapped() {
                arena.slots_in_memory()
            } else {
                state.collection.len()
            };
            (state.collection.len(), inner.index_stats(&state), in_memory)
        };
        let info = lock(&inner.info);
        let mut stats = Stats {
            count,
            persistent: inner.persistence.is_some(),
            last_checkpoint_ms: info.last_checkpoint_ms,
            last_checkpoint_error: info.last_checkpoint_error.clone(),
            writes_disabled: lock(&inner.write_error).clone(),
            recovered_snapshot_points: info.recovery.snapshot_points,
            replayed_records: info.recovery.replayed_records,
            torn_bytes: info.recovery.torn_bytes,
            torn_tail: info.recovery.torn_tail.as_ref().map(|t| TornTailStats {
                file: t.file.display().to_string(),
                offset: t.offset,
                kind: t.kind.name(),
                reason: t.reason.clone(),
            }),
            recovered_to: info
                .recovery
                .recovered_to
                .as_ref()
                .map(|p| p.display().to_string()),
            index,
            vector_storage: if inner.config.vectors_on_disk {
                "disk"
            } else {
                "memory"
            },
            vectors_in_memory,
            ..Stats::default()
        };
        drop(info);
        if let (Some(p), Some(dir)) = (&inner.persistence, lock(&inner.dir).as_ref()) {
            stats.path = Some(dir.path().display().to_string());
            stats.wal_bytes = dir.wal_bytes();
            stats.sequence = dir.next_seq() - 1;
            if stats.last_checkpoint_ms.is_none() && dir.manifest().checkpointed_at_ms > 0 {
                stats.last_checkpoint_ms = Some(dir.manifest().checkpointed_at_ms);
            }
            let names = p
                .storage
                .list(dir.path())
                .map_err(|e| Error::io("list", dir.path(), e))?;
            stats.bytes_on_disk = names
                .iter()
                .filter_map(|n| p.storage.size(&dir.path().join(n)).ok())
                .sum();
        }
        Ok(stats)
    }
}

/// Access for the export, import and verify modules (`crate::formats`,
/// `crate::snapshots`), which work beside the store, not inside it.
impl Store {
    /// A copy of the collection as of the last applied write: a point in
    /// the write order, taken under the read lock (the vector arena's
    /// blocks are shared, so the copy is cheap).
    pub fn collection_copy(&self) -> Result<Collection> {
        Ok(self.read()?.collection.clone())
    }

    /// Where the store's files live: the storage and the collection's
    /// directory (`None` for a memory-only or closed store).
    pub fn files(&self) -> (Arc<dyn Storage>, Option<PathBuf>) {
        let storage: Arc<dyn Storage> = match &self.inner.persistence {
            Some(p) => Arc::clone(&p.storage),
            None => Arc::new(OsStorage),
        };
        let dir = lock(&self.inner.dir)
            .as_ref()
            .map(|d| d.path().to_path_buf());
        (storage, dir)
    }

    pub fn ann_config(&self) -> &AnnConfig {
        &self.inner.ann
    }

    /// Runs `f` while no checkpoint publishes (writes go on): the files a
    /// manifest names stay in place meanwhile.
    pub fn with_publication_held<T>(&self, f: impl FnOnce() -> T) -> T {
        let _serial = lock(&self.inner.publish);
        f()
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
        let mut group: Vec<(u64, Op)> = Vec::new();
        let mut dir = lock(&self.dir);
        for (id, request) in batch {
            match request {
                Request::Op(op) => group.push((id, op)),
                other => {
                    results.extend(self.commit_ops(&mut dir, std::mem::take(&mut group)));
                    let outcome = match other {
                        Request::Checkpoint => self
                            .rotate(&mut dir)
                            .map(|c| Outcome::Checkpoint(c.map(Box::new))),
                        Request::Close => self.close(&mut dir).map(|()| Outcome::Done),
                        Request::Reopen => self.reopen(&mut dir).map(|()| Outcome::Done),
                        Request::Pin => self
                            .pin(&mut dir)
                            .map(|files| Outcome::Pinned(Box::new(files))),
                        Request::Restore(state) => {
                            self.restore(&mut dir, *state).map(|()| Outcome::Done)
                        }
                        Request::Op(_) => unreachable!("handled above"),
                    };
                    results.push((id, outcome));
                }
            }
        }
        results.extend(self.commit_ops(&mut dir, group));
        self.maybe_start_checkpoint(&dir);
        drop(dir);
        results
    }

    /// Logs, syncs and applies a run of operations: one write, one fsync.
    fn commit_ops(
        &self,
        dir: &mut Option<CollectionDir>,
        group: Vec<(u64, Op)>,
    ) -> Vec<(u64, Result<Outcome>)> {
        if group.is_empty() {
            return Vec::new();
        }
        let fail_all = |group: Vec<(u64, Op)>, first: Error, rest: &dyn Fn() -> Error| {
            let mut first = Some(first);
            group
                .into_iter()
                .map(|(id, _)| (id, Err(first.take().unwrap_or_else(rest))))
                .collect::<Vec<_>>()
        };
        if !self.open.load(Ordering::Acquire) {
            return fail_all(group, Error::Closed, &|| Error::Closed);
        }
        // Only what changes the collection is logged: a refused write, or a
        // delete of a missing id, leaves the files as they were. The leader
        // is the only writer, so nothing changes between this look and the
        // apply below.
        let verdicts = match self.state.read() {
            Ok(state) => {
                let ops: Vec<&Op> = group.iter().map(|(_, op)| op).collect();
                state.collection.dry_run(&ops)
            }
            Err(_) => return fail_all(group, Error::Poisoned, &|| Error::Poisoned),
        };
        let ops: Vec<&Op> = group
            .iter()
            .zip(&verdicts)
            .filter(|(_, verdict)| matches!(verdict, Verdict::Apply))
            .map(|((_, op), _)| op)
            .collect();
        if ops.is_empty() {
            return group
                .into_iter()
                .zip(verdicts)
                .map(|((id, _), verdict)| match verdict {
                    Verdict::Refuse(error) => (id, Err(error)),
                    _ => (id, Ok(Outcome::Applied(false))),
                })
                .collect();
        }
        if let Err(error) = self.log(dir, &ops) {
            let rest = match &error {
                Error::Closed => Error::Closed,
                other => Error::WritesDisabled {
                    reason: other.full_message(),
                },
            };
            return fail_all(group, error, &|| match &rest {
                Error::Closed => Error::Closed,
                Error::WritesDisabled { reason } => Error::WritesDisabled {
                    reason: reason.clone(),
                },
                _ => Error::Poisoned,
            });
        }
        let mut state = match self.state.write() {
            Ok(state) => state,
            Err(_) => return fail_all(group, Error::Poisoned, &|| Error::Poisoned),
        };
        let results = group
            .into_iter()
            .zip(verdicts)
            .map(|((id, op), verdict)| match verdict {
                Verdict::Apply => (id, state.collection.apply(op).map(Outcome::Applied)),
                Verdict::Unchanged => (id, Ok(Outcome::Applied(false))),
                Verdict::Refuse(error) => (id, Err(error)),
            })
            .collect();
        drop(state);
        self.wake_indexer();
        results
    }

    /// Writes `ops` to the WAL as one record (and fsyncs it, in fsync mode).
    /// A failure disables writes: after a failed write or fsync the file's
    /// contents are unknown, and retrying could report success for lost data.
    fn log(&self, dir: &mut Option<CollectionDir>, ops: &[&Op]) -> Result<()> {
        if !self.open.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let Some(d) = dir.as_mut() else {
            return Ok(());
        };
        if let Some(error) = self.writes_disabled() {
            return Err(error);
        }
        let mut logged = d.append(ops);
        if logged.is_ok() && d.options().durability == Durability::Fsync {
            logged = d.sync();
        }
        logged.inspect_err(|error| self.disable_writes(error))
    }

    /// Starts a background checkpoint when the WAL has grown past its threshold.
    fn maybe_start_checkpoint(self: &Arc<Self>, dir: &Option<CollectionDir>) {
        let due = dir
            .as_ref()
            .is_some_and(|d| d.wal_bytes() >= d.options().checkpoint_wal_bytes);
        if !due || self.checkpoint_running.swap(true, Ordering::AcqRel) {
            return;
        }
        let store = Store {
            inner: Arc::clone(self),
        };
        std::thread::spawn(move || {
            // The ticket is taken after the pre-sync: writers queue behind a
            // ticket, and they should not wait for that fsync.
            let mut progress = Reporter::new("checkpoint", store.inner.progress.clone());
            let outcome = store
                .inner
                .presync_wal()
                .and_then(|()| store.snapshot(store.ticket(), &mut progress));
            if let Err(error) = outcome {
                lock(&store.inner.info).last_checkpoint_error = Some(error.full_message());
            }
            store
                .inner
                .checkpoint_running
                .store(false, Ordering::Release);
        });
    }

    /// Flushes the WAL being appended to without holding the commit lock.
    /// A rotation must sync it under that lock (the next WAL's records may
    /// not become durable before this one's), which with `Durability::Flush`
    /// means everything written since the last checkpoint: tens of
    /// milliseconds every writer would wait for. Synced here first, little
    /// is left for then. A failure disables writes, as any failed fsync.
    fn presync_wal(&self) -> Result<()> {
        let Some((file, path)) = lock(&self.dir).as_ref().map(CollectionDir::wal_file) else {
            return Ok(());
        };
        file.sync().map_err(|e| {
            let error = Error::io("fsync", &path, e);
            self.disable_writes(&error);
            error
        })
    }

    /// Checkpoint step 1, on the commit path: copy the state, start a new WAL.
    fn rotate(&self, dir: &mut Option<CollectionDir>) -> Result<Option<Checkpoint>> {
        if !self.open.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let Some(d) = dir.as_mut() else {
            return Ok(None);
        };
        if let Some(error) = self.writes_disabled() {
            return Err(error);
        }
        if !d.has_changes_since_snapshot() {
            // The snapshot on disk already holds everything.
            return Ok(None);
        }
        let state = self.state.read().map_err(|_| Error::Poisoned)?;
        let copy = state.collection.clone();
        let graph = state
            .graph
            .as_ref()
            .filter(|g| g.epoch == copy.labels().epoch())
            .map(Arc::clone);
        drop(state);
        d.rotate(copy)
            .map(|job| Some((job, graph)))
            .inspect_err(|e| self.disable_writes(e))
    }

    /// Checkpoint steps 2–4, off the commit path.
    fn publish(
        &self,
        job: &CheckpointJob,
        graph: Option<&Arc<Graph>>,
        progress: &mut Reporter,
    ) -> Result<()> {
        let (path, previous) = match lock(&self.dir).as_ref() {
            Some(d) => (d.path().to_path_buf(), d.manifest().clone()),
            None => return Ok(()),
        };
        if let Some(manifest) = self.publish_from(&path, &previous, job, graph, progress)? {
            if let Some(d) = lock(&self.dir).as_mut() {
                if d.manifest().snapshot < manifest.snapshot {
                    d.set_manifest(manifest);
                }
            }
        }
        Ok(())
    }

    /// Publishes `job` unless a later checkpoint already did; one at a time.
    fn publish_from(
        &self,
        path: &Path,
        previous: &Manifest,
        job: &CheckpointJob,
        graph: Option<&Arc<Graph>>,
        progress: &mut Reporter,
    ) -> Result<Option<Manifest>> {
        let Some(p) = &self.persistence else {
            return Ok(None);
        };
        let _serial = lock(&self.publish);
        let newest = lock(&self.info).published_generation.max(previous.snapshot);
        if newest >= job.generation {
            progress.start("write", 0, "a later checkpoint holds these points");
            progress.finish("");
            return Ok(None);
        }
        let (manifest, digest) = CollectionDir::publish_with(
            p.storage.as_ref(),
            path,
            job,
            p.options.snapshot_compression(),
            previous,
            true,
            self.pins.load(Ordering::Acquire) == 0,
            progress,
        )?;
        let mut info = lock(&self.info);
        info.published_generation = job.generation;
        info.checkpoint_digest = digest.map(|d| (job.generation, d));
        info.last_checkpoint_ms = Some(manifest.checkpointed_at_ms);
        info.last_checkpoint_error = None;
        drop(info);
        progress.finish(format!("wrote checkpoint {}", job.generation));
        if self.config.vectors_on_disk {
            self.serve_vectors_from(p, path, job);
        }
        self.save_graph(p, path, job, graph, progress);
        Ok(Some(manifest))
    }

    /// Vectors on disk: serves the vectors from the checkpoint just
    /// published, so that only those written since stay in memory. When the
    /// file cannot be mapped the vectors stay in memory (`stats()` tells
    /// how many are there) and the next checkpoint tries again.
    fn serve_vectors_from(&self, p: &Persistence, path: &Path, job: &CheckpointJob) {
        let file = path.join(snapshot::file_name(job.generation));
        let Ok(Some(map)) = p.storage.map(&file) else {
            return;
        };
        let Some(vectors) = snapshot::map_vectors(map) else {
            return;
        };
        if let Ok(mut state) = self.state.write() {
            state.collection.rebase_vectors(&job.state, vectors);
        }
    }

    /// Saves the graph beside the snapshot just published. The graph is a
    /// cache of the vectors: a failure is reported in `stats()` and costs a
    /// rebuild on the next open, never data.
    fn save_graph(
        &self,
        p: &Persistence,
        path: &Path,
        job: &CheckpointJob,
        graph: Option<&Arc<Graph>>,
        progress: &mut Reporter,
    ) {
        let mut saved = None;
        let outcome = match graph {
            Some(graph) if !graph.engine.is_empty() => {
                progress.start("graph", graph.indexed() as u64, "saving the graph");
                let _quiet = lock(&self.index_lock);
                saved = Some(SavedCoverage {
                    generation: job.generation,
                    epoch: graph.epoch,
                    indexed: graph.indexed(),
                });
                ann::save(p.storage.as_ref(), path, job.generation, &job.state, graph)
            }
            _ => ann::remove_saved(p.storage.as_ref(), path),
        };
        let message = match outcome {
            Ok(()) => {
                lock(&self.ann_info).saved = saved;
                "saved the graph".to_owned()
            }
            Err(error) => {
                let mut info = lock(&self.ann_info);
                info.saved = None;
                let warning = format!("saving the graph failed: {}", error.full_message());
                info.warning = Some(warning.clone());
                warning
            }
        };
        if saved.is_some() {
            progress.finish(message);
        }
    }

    /// Whether the graph grew since its last audit enough to audit it again:
    /// by 10 % (or [`AnnConfig::audit_piece`] labels), or at all and then nothing for
    /// a second.
    fn audit_due(&self, graph: &Graph) -> bool {
        let (indexed, audited) = (graph.indexed(), graph.audited());
        if audited >= indexed {
            return false;
        }
        let quiet = lock(&self.ann_info)
            .last_insert
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
        // A piece of a large audit is followed by the next at once.
        quiet || indexed - audited >= (indexed / 10).min(self.ann.audit_piece.max(1))
    }

    /// Whether to audit every label now, though the graph has not doubled
    /// since the last full audit. Inserting points can leave an older point
    /// unreachable (its last in-link pruned), which only a full audit finds:
    /// one runs once writes have been quiet for ten times as long as the
    /// last full audit took (so audits take at most a tenth of a core under
    /// a trickle of writes), or when `wait_for_index` asks for one.
    fn full_audit_due(&self) -> bool {
        let info = lock(&self.ann_info);
        if info.full_audit_requested {
            return true;
        }
        let wait = info
            .last_full_audit
            .map_or(Duration::ZERO, |d| d * 10)
            .max(Duration::from_secs(1));
        info.last_insert.is_none_or(|t| t.elapsed() >= wait)
    }

    /// Whether tombstones left by writes (deletes, replacements) have passed
    /// the rebuild fraction of the graph. Those an audit's repairs leave (a
    /// missed point reissued under a new label) do not count: a rebuilt
    /// graph is audited and repaired again, so counting them would rebuild
    /// forever on data whose graph misses many points (seen: 20,000 points
    /// on a 3-d curve, 7,000 repairs, a rebuild every 0.7 s).
    fn rebuild_due(&self, collection: &Collection, graph: &Graph) -> bool {
        let labels = collection.labels();
        let in_graph = graph.indexed().min(labels.count());
        let (repaired, _, _) = graph.audit_counts();
        let dead = labels.dead().saturating_sub(repaired);
        (in_graph >= 64 && dead as f64 > self.ann.rebuild_fraction * in_graph as f64)
            || self.more_links_due(graph)
    }

    /// Whether the graph has fewer links per node than audits found it
    /// needs (see [`Graph::wants_more_links`]): it is rebuilt with them.
    fn more_links_due(&self, graph: &Graph) -> bool {
        let wanted = lock(&self.ann_info).connectivity;
        matches!((wanted, graph.engine.connectivity()), (Some(w), Some(g)) if g < w)
    }

    fn uses_graph(&self, collection: &Collection, graph: &Graph) -> bool {
        graph.epoch == collection.labels().epoch() && self.ann.wants_graph(collection.len())
    }

    /// Whether the indexer has nothing left to take in: no graph wanted, or
    /// the current graph holds every label, has audited each (so that the
    /// points it does not reach are pinned), owes no full audit (the graph
    /// has not doubled since the last) and needs no rebuild; with `audited`,
    /// every label has also been audited in a full pass.
    fn index_settled(&self, state: &State, audited: bool) -> bool {
        let collection = &state.collection;
        !self.ann.wants_graph(collection.len())
            || lock(&self.ann_info).failed
            || state.graph.as_ref().is_some_and(|g| {
                g.epoch == collection.labels().epoch()
                    && g.indexed() >= collection.labels().count()
                    && (g.engine.awaits_training()
                        || (g.audited() >= g.indexed()
                            && !g.wants_full_audit()
                            && (!audited || g.fully_audited() >= g.indexed())))
                    && !self.rebuild_due(collection, g)
            })
    }

    /// Whether checkpoints save a graph: persistent and not a flat index.
    fn saves_graph(&self) -> bool {
        self.ann.algorithm != ann::Algorithm::Flat && self.persistence.is_some()
    }

    /// Waits until [`Inner::index_settled`] or `deadline`; whether it got there.
    fn wait_for_index(&self, deadline: Instant, audited: bool) -> Result<bool> {
        self.wait_until(deadline, audited, &|state| {
            self.index_settled(state, audited)
        })
    }

    /// [`Inner::wait_until`] as phase `index` of `progress`: the graph's
    /// points against `target`.
    fn wait_reporting(
        &self,
        deadline: Instant,
        target: usize,
        progress: &mut Reporter,
        done: &dyn Fn(&State) -> bool,
    ) -> Result<bool> {
        progress.start(
            "index",
            target as u64,
            format!("waiting for the indexer to take in {target} points"),
        );
        let progress = std::cell::RefCell::new(progress);
        let settled = self.wait_until(deadline, false, &|state| {
            if let Some(graph) = &state.graph {
                progress
                    .borrow_mut()
                    .tick(graph.indexed().min(target) as u64);
            }
            done(state)
        })?;
        progress.into_inner().finish(if settled {
            "the indexer took in every point"
        } else {
            "annCloseWaitMs passed: the graph is saved as it is"
        });
        Ok(settled)
    }

    /// Wakes the indexer until `done` holds (or `deadline`); `audited`: ask
    /// for a full audit meanwhile.
    fn wait_until(
        &self,
        deadline: Instant,
        audited: bool,
        done: &dyn Fn(&State) -> bool,
    ) -> Result<bool> {
        loop {
            {
                let state = self.state.read().map_err(|_| Error::Poisoned)?;
                if !state.open {
                    return Err(Error::Closed);
                }
                if done(&state) {
                    if audited {
                        lock(&self.ann_info).full_audit_requested = false;
                    }
                    return Ok(true);
                }
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            if audited {
                lock(&self.ann_info).full_audit_requested = true;
            }
            self.wake_indexer();
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Saves the graph again beside the published snapshot when the indexer
    /// has taken in points since it was last saved (the snapshot holds them
    /// already). Replacing the files is atomic one by one; a crash between
    /// them leaves a graph whose checksum the map refuses, which costs a
    /// rebuild, never data.
    fn save_newer_graph(&self, p: &Persistence, path: &Path, progress: &mut Reporter) {
        // A copy (the vector arena's blocks are shared), so that writers do
        // not wait for the save.
        let (collection, graph) = match self.state.read() {
            Ok(state) => {
                let epoch = state.collection.labels().epoch();
                match state.graph.as_ref().filter(|g| g.epoch == epoch) {
                    Some(graph) => (state.collection.clone(), Arc::clone(graph)),
                    None => return,
                }
            }
            Err(_) => return,
        };
        let collection = &collection;
        // One publication at a time: a checkpoint publishing meanwhile saves
        // its own graph and removes the others.
        let _serial = lock(&self.publish);
        let generation = lock(&self.info).published_generation;
        let now = SavedCoverage {
            generation,
            epoch: graph.epoch,
            indexed: graph.indexed(),
        };
        if generation == 0 || graph.engine.is_empty() || lock(&self.ann_info).saved == Some(now) {
            return;
        }
        progress.start("graph", now.indexed as u64, "saving the graph");
        let _quiet = lock(&self.index_lock);
        match ann::save(p.storage.as_ref(), path, generation, collection, &graph) {
            Ok(()) => {
                lock(&self.ann_info).saved = Some(now);
                progress.finish("saved the graph");
            }
            Err(error) => {
                let warning = format!("saving the graph failed: {}", error.full_message());
                lock(&self.ann_info).warning = Some(warning.clone());
                progress.finish(warning);
            }
        }
    }

    fn wake_indexer(&self) {
        if self.ann.algorithm == ann::Algorithm::Flat {
            return;
        }
        let mut pending = lock(&self.indexer.pending);
        if !*pending {
            *pending = true;
            self.indexer.wake.notify_one();
        }
    }

    fn index_stats(&self, state: &State) -> IndexStats {
        let collection = &state.collection;
        let labels = collection.labels();
        let info = lock(&self.ann_info);
        let configured = self.ann.algorithm.name();
        let mut stats = IndexStats {
            algorithm: "flat",
            configured,
            builds: info.builds,
            last_build_ms: info.last_build_ms,
            loaded_from_disk: info.loaded_from_disk,
            warning: info.warning.clone(),
            ..IndexStats::default()
        };
        if let Some(graph) = state.graph.as_ref().filter(|g| g.epoch == labels.epoch()) {
            if self.uses_graph(collection, graph) {
                stats.algorithm = if self.ann.algorithm == ann::Algorithm::Faiss {
                    "faiss"
                } else {
                    "hnsw"
                };
            }
            let indexed = graph.indexed().min(labels.count());
            stats.graph_size = graph.engine.len();
            stats.quantization = Some(graph.engine.quantization().name());
            stats.pinned = graph.pinned_len();
            stats.unfindable = graph.unfindable();
            (stats.reinserted, stats.rechecks, stats.full_audits) = graph.audit_counts();
            stats.insert_ms = info.insert_time.as_secs_f64() * 1e3;
            stats.build_ms = info.build_time.as_secs_f64() * 1e3;
            stats.audit_ms = info.audit_time.as_secs_f64() * 1e3;
            stats.connectivity = graph.engine.connectivity();
            stats.tombstones = (0..indexed).filter(|&l| labels.slot(l).is_none()).count();
            stats.unindexed = (indexed..labels.count())
                .filter(|&l| labels.slot(l).is_some())
                .count();
        } else if self.ann.wants_graph(collection.len()) {
            stats.unindexed = collection.len();
        }
        stats
    }

    /// The live labels in `range` with their vectors prepared for the
    /// graph, read under the state lock a piece at a time, so that writers
    /// never wait for a whole collection's copy; `None` if the collection
    /// was relabelled, cleared or closed meanwhile. A label's vector never
    /// changes (an update takes a new label), so the pieces agree.
    fn prepared_labels(&self, range: Range<usize>, epoch: u64) -> Option<Vec<(usize, Vec<f32>)>> {
        const PIECE: usize = 1024;
        let mut points = Vec::with_capacity(range.len());
        let mut from = range.start;
        while from < range.end {
            let to = range.end.min(from + PIECE);
            let state = self.state.read().ok()?;
            let collection = &state.collection;
            if !state.open || collection.labels().epoch() != epoch {
                return None;
            }
            points.extend(ann::prepared_points(collection, from..to));
            drop(state);
            from = to;
        }
        Some(points)
    }

    /// Of the labels an audit found unreachable, the ones a real search for
    /// their own vector misses (see [`ann::confirm_missed`]), a slice at a
    /// time under the state lock, so that writers do not wait for all of
    /// them; `None` if the collection was relabelled, cleared or closed.
    fn confirm_missed(&self, graph: &Graph, missed: Vec<usize>) -> Result<Option<Vec<usize>>> {
        let mut confirmed = Vec::new();
        for slice in missed.chunks(CONFIRM_SLICE) {
            let Ok(state) = self.state.read() else {
                return Ok(None);
            };
            if !state.open || state.collection.labels().epoch() != graph.epoch {
                return Ok(None);
            }
            confirmed.extend(ann::confirm_missed(
                &state.collection,
                graph,
                slice.to_vec(),
                self.ann.hnsw.ef_search,
            )?);
        }
        Ok(Some(confirmed))
    }

    /// Searches the graph for `points` by their own vectors, under the
    /// index lock (no insert runs meanwhile), and confirms the misses with
    /// real searches: the labels found by neither. `None` if the graph was
    /// retired, or the collection relabelled, cleared or closed meanwhile.
    fn audit_points(
        &self,
        graph: &Graph,
        points: &[(usize, Vec<f32>)],
        parallel: &dyn Fn() -> bool,
    ) -> Result<Option<Vec<usize>>> {
        let quiet = lock(&self.index_lock);
        let missed = graph.unreachable(points, self.ann.hnsw.ef_search, parallel)?;
        drop(quiet);
        if graph.is_retired() {
            return Ok(None);
        }
        self.confirm_missed(graph, missed)
    }

    /// Inserts the points of `retry` again under new labels (their
    /// neighbours link to them then) and notes them as repairs. `None` when
    /// the state lock is poisoned; `Some(false)` when the collection is
    /// closed or was relabelled since the audit (nothing done).
    fn reissue(&self, graph: &Graph, retry: &[usize]) -> Option<bool> {
        let mut state = self.state.write().ok()?;
        if !state.open || state.collection.labels().epoch() != graph.epoch {
            return Some(false);
        }
        graph.note_repairs(state.collection.reissue_labels(retry));
        Some(true)
    }

    /// One piece of an audit of every label (see [`ann::FullPass`]): the
    /// next [`AnnConfig::audit_piece`] labels searched for by their own vector; points
    /// missed are inserted again (unless the pass only pins) or kept to
    /// pin. After the last piece, the pins (within the budget) replace the
    /// pinned set. Returns whether there was work.
    fn full_pass_step(
        &self,
        graph: Arc<Graph>,
        mut pass: ann::FullPass,
        live: usize,
    ) -> Result<bool> {
        let started = Instant::now();
        let end = pass.upto.min(pass.next + self.ann.audit_piece.max(1));
        let Some(points) = self.prepared_labels(pass.next..end, graph.epoch) else {
            return Ok(true);
        };
        let parallel = || pass.parallel && self.foreground.load(Ordering::Relaxed) == 0;
        let missed = self.audit_points(&graph, &points, &parallel)?;
        drop(points);
        let Some(missed) = missed else {
            return Ok(true);
        };
        let (retry, pin) = if pass.pin_only {
            (Vec::new(), missed)
        } else {
            graph.triage(missed)
        };
        pass.pins.extend(pin);
        if !retry.is_empty() {
            match self.reissue(&graph, &retry) {
                None => return Ok(false),
                Some(false) => return Ok(true),
                Some(true) => pass.reissued = true,
            }
        }
        pass.next = end;
        pass.spent += started.elapsed();
        lock(&self.ann_info).audit_time += started.elapsed();
        if pass.next < pass.upto {
            graph.resume_full_pass(pass);
            return Ok(true);
        }
        let pin = graph.within_budget(std::mem::take(&mut pass.pins), live, true);
        let pin = {
            let Ok(state) = self.state.read() else {
                return Ok(false);
            };
            if !state.open || state.collection.labels().epoch() != graph.epoch {
                return Ok(true);
            }
            ann::prepared_points(&state.collection, pin)
        };
        graph.record_audit(pass.upto, pin, true);
        if pass.reissued {
            graph.note_full_repairs();
        }
        let mut info = lock(&self.ann_info);
        info.last_full_audit = Some(pass.spent);
        info.full_audit_requested = false;
        Ok(true)
    }

    /// One step of background indexing: build or rebuild the graph, or take
    /// the next chunk of the tail into it. Returns whether there was work.
    fn index_step(&self) -> Result<bool> {
        if lock(&self.ann_info).failed {
            return Ok(false);
        }
        let Ok(state) = self.state.read() else {
            return Ok(false);
        };
        if !state.open || !self.ann.wants_graph(state.collection.len()) {
            return Ok(false);
        }
        let collection = &state.collection;
        let labels = collection.labels();
        let kind = collection.config().distance;
        let current = state.graph.as_ref().filter(|g| g.epoch == labels.epoch());
        match current {
            Some(graph) if !self.rebuild_due(collection, graph) => {
                let from = graph.indexed();
                let to = labels.count().min(from + INDEX_CHUNK);
                // Audits keep pace with a long tail rather than waiting for
                // it to be taken in: the graph's miss rate, which decides
                // whether it needs more links, is known while the graph is
                // small, so a weak graph is rebuilt at a fraction of the
                // size it would reach (at 1,000,000 points, a rebuild
                // after the last insert cost more than the first build).
                let lagging = from < to
                    && !graph.engine.awaits_training()
                    && from - graph.audited().min(from)
                        >= (from / 4).max(2 * ann::WEAK_GRAPH_MIN_AUDITS);
                if from >= to || lagging {
                    if graph.engine.awaits_training() {
                        // Nothing is placed yet: the audit waits for the training.
                        return Ok(false);
                    }
                    // Audit: which points can their own vector not find?
                    let graph = Arc::clone(graph);
                    let live = collection.len();
                    if let Some(pass) = graph.take_full_pass() {
                        drop(state);
                        return self.full_pass_step(graph, pass, live);
                    }
                    let requested = lock(&self.ann_info).full_audit_requested;
                    // A quiet-time full audit also waits for the graph to
                    // have grown by 1 % since the last: a few new points
                    // hardly cut old ones off, and the audit costs a search
                    // per point (seconds of a core for 100,000 points,
                    // which searches running meanwhile would share).
                    // While more than a piece of labels was never audited,
                    // those come first: a recheck of the older labels
                    // (and a full audit) waits for the last piece.
                    let catching_up =
                        from - graph.audited().min(from) > self.ann.audit_piece.max(1);
                    let since_full = from.saturating_sub(graph.fully_audited());
                    let full = !catching_up
                        && !lagging
                        && since_full > 0
                        && (graph.wants_full_audit()
                            || ((requested || since_full * 100 >= from) && self.full_audit_due()));
                    if !full && !self.audit_due(&graph) {
                        return Ok(false);
                    }
                    let started = Instant::now();
                    let audited = graph.audited().min(from);
                    // A recheck searches a sample of the labels audited
                    // before; only when it finds some cut off since does it
                    // become an audit of every label.
                    let sample = if full {
                        let skip = graph.pinned();
                        ann::prepared_points(
                            collection,
                            ann::recheck_sample(audited, ann::RECHECK_SAMPLE, &skip),
                        )
                    } else {
                        Vec::new()
                    };
                    drop(state);
                    // Quiet-time audits keep to one core: searches may be running.
                    let parallel = !full || graph.wants_full_audit() || requested;
                    let mut cut_off = Vec::new();
                    if !sample.is_empty() {
                        let parallel = || parallel && self.foreground.load(Ordering::Relaxed) == 0;
                        let Some(missed) = self.audit_points(&graph, &sample, &parallel)? else {
                            return Ok(true);
                        };
                        cut_off = missed;
                    }
                    let wanted_full = full;
                    if wanted_full && cut_off.len() >= ann::RECHECK_ESCALATE {
                        // Every label, a piece per step from the first; a
                        // full audit that follows one that inserted points
                        // again only pins (see below).
                        let pass = ann::FullPass {
                            upto: from,
                            next: 0,
                            pins: Vec::new(),
                            pin_only: graph.take_full_repairs(),
                            reissued: false,
                            parallel,
                            spent: started.elapsed(),
                        };
                        return self.full_pass_step(graph, pass, live);
                    }
                    let recheck = wanted_full;
                    let parallel = || parallel && self.foreground.load(Ordering::Relaxed) == 0;
                    // The labels not audited yet, a piece at a time.
                    let start = audited;
                    let upto = from.min(start + self.ann.audit_piece.max(1));
                    let Some(mut points) = self.prepared_labels(start..upto, graph.epoch) else {
                        return Ok(true);
                    };
                    // Points inserted again can cut older ones off: their
                    // neighbourhoods are audited with them.
                    let again = graph.repaired_labels_in(start..upto);
                    if !again.is_empty() {
                        let again: Vec<(usize, Vec<f32>)> = points
                            .iter()
                            .filter(|(label, _)| again.binary_search(label).is_ok())
                            .cloned()
                            .collect();
                        let near = graph.neighbourhood(&again, start, ann::REPAIR_NEIGHBOURHOOD)?;
                        let Ok(state) = self.state.read() else {
                            return Ok(false);
                        };
                        if !state.open || state.collection.labels().epoch() != graph.epoch {
                            return Ok(true);
                        }
                        points.extend(ann::prepared_points(&state.collection, near));
                    }
                    let Some(mut missed) = self.audit_points(&graph, &points, &parallel)? else {
                        return Ok(true);
                    };
                    if !cut_off.is_empty() {
                        // Fewer than it takes to audit every label: the
                        // sampled points cut off are treated as this audit's.
                        missed.extend(&cut_off);
                        missed.sort_unstable();
                        missed.dedup();
                        points.extend(
                            sample
                                .into_iter()
                                .filter(|(label, _)| cut_off.contains(label)),
                        );
                    }
                    // A point missed the first time is inserted again under
                    // a new label (its neighbours link to it then); missed
                    // again, it is pinned. Re-inserts can leave other old
                    // points unreachable, which only a full audit finds:
                    // so a full audit that re-inserted is followed by one
                    // that only pins, and the last full audit comes after
                    // the last insert.
                    let (retry, pin) = graph.triage(missed);
                    // Labels seen for the first time: the graph's own miss
                    // rate (points inserted again are not counted).
                    let first = upto - audited;
                    let again = graph.repaired_in(audited..upto);
                    graph.note_first_audit(
                        first.saturating_sub(again),
                        retry.iter().filter(|&&l| l >= audited && l < upto).count(),
                    );
                    if let Some(links) = graph.engine.connectivity() {
                        match graph.wants_more_links(links, self.ann.hnsw.m) {
                            Some(more) => lock(&self.ann_info).connectivity = Some(more),
                            None => graph.end_miss_window(),
                        }
                    }
                    let pin = graph.within_budget(pin, live, false);
                    let pin: Vec<(usize, Vec<f32>)> = points
                        .into_iter()
                        .filter(|(label, _)| pin.binary_search(label).is_ok())
                        .collect();
                    if !retry.is_empty() && self.reissue(&graph, &retry).is_none() {
                        return Ok(false);
                    }
                    graph.record_audit(upto, pin, false);
                    if recheck {
                        graph.record_recheck(upto);
                    }
                    let mut info = lock(&self.ann_info);
                    info.audit_time += started.elapsed();
                    if recheck {
                        info.last_full_audit = Some(started.elapsed());
                        info.full_audit_requested = false;
                    }
                    return Ok(true);
                }
                let points = ann::prepared_points(collection, from..to);
                let graph = Arc::clone(graph);
                drop(state);
                let _quiet = lock(&self.index_lock);
                let started = Instant::now();
                graph.insert(&points, &|| self.foreground.load(Ordering::Relaxed) > 0)?;
                graph.set_indexed(to);
                let mut info = lock(&self.ann_info);
                info.insert_time += started.elapsed();
                info.last_insert = Some(Instant::now());
                Ok(true)
            }
            _ => {
                // (Re)build from the live points, off every lock; writes
                // and searches go on against the old graph or exactly.
                let epoch = labels.epoch();
                // A rebuild takes the points the graph it replaces holds; the
                // tail after them gets labels after theirs and goes in step
                // by step, as into any graph. During a bulk ingest a weak
                // graph is found weak (and rebuilt with more links) while
                // it is far behind the collection: rebuilding the whole
                // collection then would insert most points twice.
                let count = state
                    .graph
                    .as_ref()
                    .filter(|g| g.epoch == epoch && g.indexed() > 0)
                    .map_or(labels.count(), |g| g.indexed().min(labels.count()));
                let dimension = collection.config().dimension;
                // A graph that needed more links keeps them through a
                // rebuild (for tombstones, say): the data has not changed.
                let links = state.graph.as_ref().and_then(|g| g.engine.connectivity());
                let rebuilding = state.graph.is_some();
                drop(state);
                let Some(points) = self.prepared_labels(0..count, epoch) else {
                    return Ok(true);
                };
                let started = Instant::now();
                let mut config = self.ann.clone();
                let wanted = lock(&self.ann_info).connectivity;
                config.hnsw.m = config
                    .hnsw
                    .m
                    .max(links.unwrap_or(0))
                    .max(wanted.unwrap_or(0));
                let engine = ann::new_engine(&config, kind, dimension, points.len())?;
                let (old_labels, points): (Vec<usize>, Vec<(usize, Vec<f32>)>) = points
                    .into_iter()
                    .enumerate()
                    .map(|(i, (label, v))| (label, (i, v)))
                    .unzip();
                let graph = Graph::new(engine, 0, 0, Vec::new());
                let mut progress = Reporter::new("rebuild", self.progress.clone());
                let total = points.len() as u64;
                progress.start(
                    "build",
                    total,
                    if rebuilding {
                        format!("rebuilding the graph from {total} points")
                    } else {
                        format!("building the graph from {total} points")
                    },
                );
                graph.insert_counting(
                    &points,
                    &|| self.foreground.load(Ordering::Relaxed) > 0,
                    &mut |done| progress.tick(done as u64),
                )?;
                drop(points);
                // Before the graph shows: whoever sees it has been told.
                progress.finish(format!("built the graph of {total} points"));
                let Ok(mut state) = self.state.write() else {
                    return Ok(false);
                };
                if !state.open || state.collection.labels().epoch() != epoch {
                    // Cleared, closed or relabelled meanwhile: start over.
                    return Ok(true);
                }
                let order: Vec<Option<u32>> = old_labels.iter().map(|&l| Some(l as u32)).collect();
                state.collection.relabel(&order);
                let epoch = state.collection.labels().epoch();
                let engine = graph.engine;
                // Counted before the graph shows, so that whoever sees the
                // graph sees the build too.
                let mut info = lock(&self.ann_info);
                info.builds += 1;
                info.last_build_ms = Some(started.elapsed().as_secs_f64() * 1e3);
                info.build_time += started.elapsed();
                drop(info);
                if let Some(old) = state.graph.take() {
                    old.retire();
                }
                // Not audited yet: the next steps audit every label (with
                // misses confirmed by real searches, which need the graph
                // in place). Until then a point the graph does not reach
                // may be missed by a search for its own vector.
                let graph = Graph::new(engine, epoch, order.len(), Vec::new());
                graph.restore_audits(0, 0);
                state.graph = Some(Arc::new(graph));
                Ok(true)
            }
        }
    }

    fn close(&self, dir: &mut Option<CollectionDir>) -> Result<()> {
        if !self.open.load(Ordering::Acquire) {
            return Ok(());
        }
        if dir.is_some() && self.writes_disabled().is_none() {
            let mut progress = Reporter::new("checkpoint", self.progress.clone());
            // The next open should search at full speed from its first query:
            // let the indexer take in the tail (every write before this close
            // is applied, later ones wait behind it) before the graph is saved.
            if self.saves_graph() {
                let target = {
                    let state = self.state.read().map_err(|_| Error::Poisoned)?;
                    state.collection.labels().count()
                };
                self.wait_reporting(
                    Instant::now() + self.ann.close_wait,
                    target,
                    &mut progress,
                    &|state| self.index_settled(state, false),
                )?;
            }
            let job = self.rotate(dir)?;
            if let Some(d) = dir.as_ref() {
                let (path, previous) = (d.path().to_path_buf(), d.manifest().clone());
                match job {
                    Some(job) => {
                        self.publish_from(&path, &previous, &job.0, job.1.as_ref(), &mut progress)?;
                    }
                    None => {
                        progress.start("write", 0, "nothing written since the last checkpoint");
                        progress.finish("");
                        if let Some(p) = &self.persistence {
                            self.save_newer_graph(p, &path, &mut progress);
                        }
                    }
                }
            }
        }
        let mut state = self.state.write().map_err(|_| Error::Poisoned)?;
        state.open = false;
        self.open.store(false, Ordering::Release);
        if dir.take().is_some() {
            // The data lives on disk; reopening reloads it.
            state.collection = Collection::new(self.config);
            if let Some(graph) = state.graph.take() {
                graph.retire();
            }
        }
        Ok(())
    }

    fn reopen(&self, dir: &mut Option<CollectionDir>) -> Result<()> {
        if self.open.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut state = self.state.write().map_err(|_| Error::Poisoned)?;
        if let Some(p) = &self.persistence {
            let opened = open_collection(
                p,
                &self.name,
                self.config,
                &self.ann,
                &mut Reporter::silent("open"),
            )?;
            *lock(&self.ann_info) = opened.ann_info;
            state.graph = opened.graph;
            state.collection = opened.collection;
            let mut info = lock(&self.info);
            info.recovery = opened.report;
            info.published_generation = opened.dir.manifest().snapshot;
            drop(info);
            *dir = Some(opened.dir);
            *lock(&self.write_error) = None;
        }
        state.open = true;
        self.open.store(true, Ordering::Release);
        drop(state);
        self.wake_indexer();
        Ok(())
    }
}

/// The commit-path halves of named snapshots (`crate::snapshots::named`).
impl Inner {
    /// Seals the WAL and pins the files holding the state as of the last
    /// applied write. Runs on the commit path (no write applies meanwhile)
    /// and waits out a checkpoint publishing, so the manifest read here
    /// names files that exist.
    fn pin(&self, dir: &mut Option<CollectionDir>) -> Result<PinnedFiles> {
        if !self.open.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let (Some(d), Some(p)) = (dir.as_mut(), &self.persistence) else {
            return Err(no_files());
        };
        if let Some(error) = self.writes_disabled() {
            return Err(error);
        }
        let _serial = lock(&self.publish);
        // The manifest on disk, not `d.manifest()`: a checkpoint that just
        // published records its manifest there only after this lock.
        let manifest_path = d.path().join(manifest::FILE_NAME);
        let bytes = p
            .storage
            .read(&manifest_path)
            .map_err(|e| Error::io("read", &manifest_path, e))?;
        let manifest = Manifest::decode(&bytes)
            .map_err(|(offset, reason)| Error::corrupt(&manifest_path, offset, reason))?;
        let last = if d.wal_has_records() {
            d.seal_wal().inspect_err(|e| self.disable_writes(e))?
        } else {
            d.wal_generation() - 1
        };
        let mut files = Vec::new();
        if manifest.snapshot != 0 {
            files.push(crate::storage::snapshot::file_name(manifest.snapshot));
        }
        files.extend((manifest.wal_start..=last).map(crate::storage::wal::file_name));
        let count = self
            .state
            .read()
            .map_err(|_| Error::Poisoned)?
            .collection
            .len();
        let checkpoint_digest = lock(&self.info)
            .checkpoint_digest
            .filter(|(g, _)| *g == manifest.snapshot)
            .map(|(_, d)| d);
        self.pins.fetch_add(1, Ordering::AcqRel);
        Ok(PinnedFiles {
            dir: d.path().to_path_buf(),
            manifest,
            files,
            sequence: d.next_seq() - 1,
            count,
            checkpoint_digest,
        })
    }

    /// Makes `collection` the state, durably, as a checkpoint does: a new
    /// WAL file, then the checkpoint file of `collection` and the manifest
    /// naming it. The manifest's rename is the switch: a crash before it
    /// leaves the old state, after it the new one. The graph is rebuilt.
    fn restore(&self, dir: &mut Option<CollectionDir>, collection: Collection) -> Result<()> {
        if !self.open.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if let Some(error) = self.writes_disabled() {
            return Err(error);
        }
        // A memory-only store has nothing on disk to replace: the swap below is the restore.
        if let Some(d) = dir.as_mut() {
            self.restore_files(d, &collection)?;
        } else if self.persistence.is_some() {
            return Err(no_files());
        }
        let mut state = self.state.write().map_err(|_| Error::Poisoned)?;
        if let Some(graph) = state.graph.take() {
            graph.retire();
        }
        state.collection = collection;
        drop(state);
        let mut info = lock(&self.ann_info);
        info.saved = None;
        info.loaded_from_disk = false;
        drop(info);
        self.wake_indexer();
        Ok(())
    }
}

impl Inner {
    /// The disk half of a restore: `collection` becomes the newest checkpoint.
    fn restore_files(&self, d: &mut CollectionDir, collection: &Collection) -> Result<()> {
        let job = d
            .rotate(collection.clone())
            .inspect_err(|e| self.disable_writes(e))?;
        let (path, previous) = (d.path().to_path_buf(), d.manifest().clone());
        // After a failure the disk holds the old state or the new one, and
        // which is unknown until it is read again: writes stop until reopen.
        // The restore reports its own `write` phase around this.
        let silent = &mut Reporter::silent("restore");
        let manifest = match self.publish_from(&path, &previous, &job, None, silent) {
            Ok(Some(manifest)) => manifest,
            Ok(None) => {
                let error = Error::Internal {
                    reason: "a newer checkpoint was published during the restore".into(),
                };
                self.disable_writes(&error);
                return Err(error);
            }
            Err(error) => {
                self.disable_writes(&error);
                return Err(error);
            }
        };
        if d.manifest().snapshot < manifest.snapshot {
            d.set_manifest(manifest);
        }
        Ok(())
    }
}

fn no_files() -> Error {
    Error::InvalidArgument {
        name: "persistencePath",
        reason: "a memory-only store has no files to snapshot or restore".into(),
    }
}

/// Access for named snapshots and auto-save (`crate::snapshots::named`).
impl Store {
    /// Pins the files that hold the state as of `ticket`'s place in the
    /// write order (see [`PinnedFiles`]).
    pub fn pin_files(&self, ticket: WriteTicket) -> Result<Pin> {
        // Flushed first off the commit path, as a checkpoint does, so the
        // seal's fsync under it has little left to do.
        self.inner.presync_wal()?;
        match self.submit(ticket, Request::Pin)? {
            Outcome::Pinned(files) => Ok(Pin {
                inner: Arc::clone(&self.inner),
                files: *files,
            }),
            _ => Err(Error::Internal {
                reason: "unexpected outcome for a pin".into(),
            }),
        }
    }

    /// Replaces the state with `collection` at `ticket`'s place in the write
    /// order, durably and atomically (see `Inner::restore`).
    pub fn restore_state(&self, ticket: WriteTicket, collection: Collection) -> Result<()> {
        if collection.config().dimension != self.inner.config.dimension
            || collection.config().distance != self.inner.config.distance
        {
            return Err(Error::ConfigMismatch {
                reason: "the snapshot holds another dimension or distance".into(),
            });
        }
        self.submit(ticket, Request::Restore(Box::new(collection)))
            .map(|_| ())
    }

    /// Held by every named-snapshot operation: one at a time per store.
    pub fn named_snapshot_lock(&self) -> MutexGuard<'_, ()> {
        lock(&self.inner.named)
    }

    /// Remembers the SHA-256 of checkpoint `generation` (computed by a
    /// named snapshot), so the next one need not read it again.
    pub fn remember_checkpoint_digest(&self, generation: u64, digest: [u8; 32]) {
        let mut info = lock(&self.inner.info);
        if info.published_generation <= generation {
            info.checkpoint_digest = Some((generation, digest));
        }
    }

    /// Makes every write applied so far durable (an fsync of the WAL, off
    /// the commit path; writes go on). A failure disables writes, as any
    /// failed fsync does, and is returned.
    pub fn sync_wal(&self) -> Result<()> {
        if !self.is_open() {
            return Err(Error::Closed);
        }
        if let Some(error) = self.inner.writes_disabled() {
            return Err(error);
        }
        self.inner.presync_wal()
    }

    /// Checkpoints when anything was written since the last checkpoint;
    /// whether it did.
    pub fn checkpoint_if_changed(&self, ticket: WriteTicket) -> Result<bool> {
        let changed = lock(&self.inner.dir)
            .as_ref()
            .is_some_and(|d| d.has_changes_since_snapshot());
        if !changed {
            return Ok(false);
        }
        self.inner.presync_wal()?;
        let mut progress = Reporter::new("checkpoint", self.inner.progress.clone());
        self.checkpoint_reporting(ticket, &mut progress)
            .map(|()| true)
    }
}

/// A collection opened from its directory, with its saved graph.
struct Opened {
    dir: CollectionDir,
    collection: Collection,
    report: RecoveryReport,
    graph: Option<Arc<Graph>>,
    ann_info: AnnInfo,
}

/// What a read of the saved graph ahead of the open found: the snapshot
/// generation the manifest named then, and the graph saved with it.
type EarlyGraph = (u64, Result<Option<ann::SavedGraph>>);

/// Opens (recovers) collection `name` and attaches its saved graph. The
/// graph file is read, checked and loaded on a second thread while the
/// snapshot is read and decoded on this one; it is used only if it belongs
/// to the snapshot the open then finds (files of a generation never change
/// once its map exists). Not on a simulated disk, whose tests count I/O.
fn open_collection(
    p: &Persistence,
    name: &str,
    config: CollectionConfig,
    ann_config: &AnnConfig,
    progress: &mut Reporter,
) -> Result<Opened> {
    let early =
        (ann_config.algorithm != ann::Algorithm::Flat && p.storage.is_native()).then(|| {
            let storage = Arc::clone(&p.storage);
            let dir = p.root.join(name);
            let ann_config = ann_config.clone();
            std::thread::spawn(move || -> Option<EarlyGraph> {
                let bytes = storage.read(&dir.join(manifest::FILE_NAME)).ok()?;
                let generation = Manifest::decode(&bytes).ok()?.snapshot;
                if generation == 0 {
                    return None;
                }
                let saved =
                    ann::read_saved(storage.as_ref(), &dir, generation, &config, &ann_config);
                Some((generation, saved))
            })
        });
    let opened = p.open(name, config, progress);
    if early.is_some() {
        progress.start("graph", 1, "attaching the saved graph");
    }
    let early = early.and_then(|thread| thread.join().ok().flatten());
    let (dir, mut collection, report) = opened?;
    let mut ann_info = AnnInfo {
        // An open is not a quiet time to audit the loaded graph in: count
        // the quiet period from now.
        last_insert: Some(Instant::now()),
        ..AnnInfo::default()
    };
    let graph = attach_saved_graph(p, &dir, &mut collection, ann_config, &mut ann_info, early);
    // Matching the saved graph read every vector (its checksum): with the
    // vectors on disk, give those pages back; searches map in what they read.
    collection.arena().release_pages();
    if ann_config.algorithm != ann::Algorithm::Flat && p.storage.is_native() {
        progress.finish(if graph.is_some() {
            "saved graph attached"
        } else {
            "no saved graph: it is built in the background"
        });
    }
    Ok(Opened {
        dir,
        collection,
        report,
        graph,
        ann_info,
    })
}

/// Attaches the graph saved with the snapshot `dir` opened at, matched to
/// `collection` (whose labels are renumbered to the graph's); `early` is
/// what [`open_collection`] read ahead. A missing or unusable graph is
/// rebuilt in the background, with a warning.
fn attach_saved_graph(
    p: &Persistence,
    dir: &CollectionDir,
    collection: &mut Collection,
    config: &AnnConfig,
    info: &mut AnnInfo,
    early: Option<EarlyGraph>,
) -> Option<Arc<Graph>> {
    let generation = dir.manifest().snapshot;
    if config.algorithm == ann::Algorithm::Flat || generation == 0 {
        return None;
    }
    let saved = match early {
        Some((read_for, saved)) if read_for == generation => saved,
        _ => ann::read_saved(
            p.storage.as_ref(),
            dir.path(),
            generation,
            collection.config(),
            config,
        ),
    };
    match saved.map(|saved| saved.map(|saved| saved.attach(collection))) {
        Ok(Some(loaded)) => {
            collection.relabel(&loaded.order);
            info.loaded_from_disk = true;
            let epoch = collection.labels().epoch();
            info.saved = Some(SavedCoverage {
                generation,
                epoch,
                indexed: loaded.order.len(),
            });
            let pinned = ann::prepared_points(collection, loaded.pinned);
            let graph = Graph::new(loaded.engine, epoch, loaded.order.len(), pinned);
            graph.restore_audits(loaded.audited, loaded.fully_audited);
            Some(Arc::new(graph))
        }
        Ok(None) => {
            if config.wants_graph(collection.len()) {
                info.warning = Some("no saved graph for this snapshot; rebuilding it".into());
            }
            None
        }
        Err(error) => {
            info.warning = Some(format!(
                "the saved graph is unusable ({}); rebuilding it",
                error.full_message()
            ));
            None
        }
    }
}

/// Runs [`Inner::index_step`] on a thread of its own until the store is
/// dropped. It holds the store only while it works.
fn spawn_indexer(inner: &Arc<Inner>) {
    let weak = Arc::downgrade(inner);
    let signal = Arc::clone(&inner.indexer);
    let spawned = std::thread::Builder::new()
        .name("annvault-indexer".into())
        .spawn(move || loop {
            let worked = match weak.upgrade() {
                None => return,
                Some(inner) => match catch_unwind(AssertUnwindSafe(|| inner.index_step())) {
                    Ok(Ok(worked)) => worked,
                    failure => {
                        let reason = match failure {
                            Ok(Err(error)) => error.full_message(),
                            _ => "the indexer panicked".to_string(),
                        };
                        let mut info = lock(&inner.ann_info);
                        info.failed = true;
                        info.warning = Some(format!(
                            "background indexing failed ({reason}); searches are exact"
                        ));
                        drop(info);
                        if let Ok(mut state) = inner.state.write() {
                            state.graph = None;
                        }
                        false
                    }
                },
            };
            if !worked {
                let mut pending = lock(&signal.pending);
                if !*pending {
                    pending = signal
                        .wake
                        .wait_timeout(pending, Duration::from_millis(500))
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                let woken = *pending;
                *pending = false;
                drop(pending);
                if woken {
                    // Let a stream of single writes gather into one step:
                    // fewer, larger steps take the state lock less often
                    // (a write applied on the caller's thread steps aside
                    // when the indexer holds it).
                    std::thread::sleep(INDEXER_DEBOUNCE);
                }
            }
        });
    if spawned.is_err() {
        let mut info = lock(&inner.ann_info);
        info.failed = true;
        info.warning = Some("could not start the indexer thread; searches are exact".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distance::Distance;
    use crate::testing::{self, payload};
    use serde_json::json;
    use std::thread;

    /// A flat store of 2-dimensional points, `Dot` distance.
    fn options(name: &str, persistence: Option<Persistence>) -> StoreOptions {
        let config = CollectionConfig::new(2, Distance::Dot, None).unwrap();
        testing::store_options(name, config, AnnConfig::flat(), persistence)
    }

    fn store() -> Arc<Store> {
        Arc::new(Store::open(options("test", None)).unwrap())
    }

    fn one(id: i64, x: f32) -> PointBatch {
        let payloads = vec![payload(json!({ "x": x }))];
        testing::batch(2, vec![PointId::Int(id)], vec![x, 0.0], payloads)
    }

    #[test]
    fn names_that_could_escape_the_directory_are_rejected() {
        for ok in ["docs", "my-collection_2", "memórias", "a.b"] {
            validate_collection_name(ok).unwrap();
        }
        let long = "x".repeat(129);
        for bad in [
            "",
            "..",
            ".",
            "../etc",
            "a/b",
            "a\\b",
            "a..b",
            "nul\0",
            "a:b",
            " lead",
            "trail.",
            long.as_str(),
        ] {
            assert_eq!(
                validate_collection_name(bad).unwrap_err().code(),
                1010,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn writes_apply_in_ticket_order_whatever_thread_runs_them() {
        let s = store();
        // Take tickets in order, run the writes on threads in reverse order.
        let tickets: Vec<_> = (0..8).map(|_| s.ticket()).collect();
        let handles: Vec<_> = tickets
            .into_iter()
            .enumerate()
            .rev()
            .map(|(i, t)| {
                let s = Arc::clone(&s);
                thread::spawn(move || s.insert(t, one(1, i as f32)).unwrap())
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let last = s.get(&PointId::Int(1)).unwrap().unwrap();
        assert_eq!(last.payload["x"], 7.0);
    }

    #[test]
    fn inline_writes_apply_when_nothing_else_runs_and_step_aside_otherwise() {
        let s = store();
        assert!(s.allows_inline_writes());
        let applied = s.try_apply_now(s.ticket(), Op::Insert(one(1, 1.0)));
        assert!(matches!(applied, Ok(Ok(false))));
        assert_eq!(s.len().unwrap(), 1);

        // An earlier ticket still pending: not this write's turn.
        let earlier = s.ticket();
        let (ticket, op) = s
            .try_apply_now(s.ticket(), Op::Insert(one(2, 2.0)))
            .expect_err("must step aside");
        drop(earlier);
        // A reader holding the state: stepping aside beats blocking.
        let reader = s.inner.state.read().unwrap();
        let (ticket, op) = s.try_apply_now(ticket, op).expect_err("must step aside");
        drop(reader);
        assert!(matches!(s.try_apply_now(ticket, op), Ok(Ok(false))));
        assert_eq!(s.len().unwrap(), 2);
        // Refusals come back as errors, like on the queued path.
        let update = Op::Update {
            id: PointId::Int(9),
            vector: vec![1.0, 1.0],
            payload: Payload::new(),
        };
        assert!(matches!(
            s.try_apply_now(s.ticket(), update),
            Ok(Err(Error::NotFound { .. }))
        ));
    }

    #[test]
    fn an_unused_ticket_does_not_block_later_writes() {
        let s = store();
        let unused = s.ticket();
        let t = s.ticket();
        drop(unused);
        s.insert(t, one(1, 1.0)).unwrap();
        assert_eq!(s.len().unwrap(), 1);
    }

    #[test]
    fn a_closed_store_refuses_every_call_and_reopens_with_its_data() {
        let s = store();
        s.insert(s.ticket(), one(1, 1.0)).unwrap();
        s.close(s.ticket()).unwrap();
        assert!(!s.is_open());
        assert!(matches!(s.get(&PointId::Int(1)), Err(Error::Closed)));
        assert!(matches!(
            s.insert(s.ticket(), one(2, 1.0)),
            Err(Error::Closed)
        ));
        assert!(matches!(
            s.search(&[1.0, 0.0], 1, &Filter::default()),
            Err(Error::Closed)
        ));
        s.reopen(s.ticket()).unwrap();
        assert_eq!(s.len().unwrap(), 1);
    }

    /// A store on a simulated disk, three points written (one WAL record each),
    /// then a power cut; `damage` changes the WAL before the store is opened again.
    fn reopened_after(damage: impl FnOnce(&mut Vec<u8>)) -> (Store, Stats) {
        use crate::storage::{sim::SimStorage, wal};
        let sim = SimStorage::new(7);
        let on_sim = || {
            let storage = Arc::new(sim.clone());
            let persistence =
                testing::persistence(storage, Path::new("/data"), DirOptions::default());
            options("torn", Some(persistence))
        };
        let s = Store::open(on_sim()).unwrap();
        for id in 1..=3 {
            s.insert(s.ticket(), one(id, id as f32)).unwrap();
        }
        drop(s);
        sim.crash();
        let wal_path = PathBuf::from("/data/torn").join(wal::file_name(1));
        let mut bytes = sim.contents(&wal_path).expect("the WAL exists");
        // Zeros are reserved after the records (fsync durability): the
        // damage is to the records as they end.
        let valid = wal::scan(&bytes).expect("a WAL").valid_len as usize;
        assert!(bytes.len() > valid, "no space reserved after the records");
        assert!(bytes[valid..].iter().all(|&b| b == 0));
        bytes.truncate(valid);
        damage(&mut bytes);
        sim.put(&wal_path, &bytes);
        let s = Store::open(on_sim()).unwrap();
        let stats = s.stats().unwrap();
        (s, stats)
    }

    #[test]
    fn stats_tell_a_damaged_last_record_from_one_cut_short() {
        let (s, stats) = reopened_after(|_| {});
        assert_eq!((s.len().unwrap(), stats.torn_bytes), (3, 0));
        assert_eq!(stats.torn_tail, None);

        // A bit flip in the last byte: the record is all there but fails its checksum.
        let (s, stats) = reopened_after(|b| {
            let last = b.len() - 1;
            b[last] ^= 1;
        });
        assert_eq!(s.len().unwrap(), 2);
        assert!(s.get(&PointId::Int(3)).unwrap().is_none());
        assert!(stats.torn_bytes > 0);
        let tail = stats.torn_tail.expect("a torn tail is reported");
        assert_eq!(tail.kind, "damaged");
        assert!(tail.reason.contains("checksum"), "{}", tail.reason);
        assert!(
            tail.file.ends_with(&crate::storage::wal::file_name(1)),
            "{}",
            tail.file
        );
        assert!(tail.offset > crate::storage::wal::HEADER_LEN as u64);

        // The last record cut short by a byte.
        let (s, stats) = reopened_after(|b| {
            b.pop();
        });
        assert_eq!(s.len().unwrap(), 2);
        let tail = stats.torn_tail.expect("a torn tail is reported");
        assert_eq!(tail.kind, "incomplete");
        assert!(stats.torn_bytes > 0);
    }
}
