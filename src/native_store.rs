//! `NativeStore`: the JS class over one `annvault_core::Store`.
//!
//! Arguments are converted here (vectors arrive packed in one
//! `Float32Array` with a `Uint32Array` of lengths, payloads and filters as
//! JSON text, which V8 produces far faster than napi can walk objects), the
//! write ticket is taken on the JS thread so writes apply in call order, and
//! the work itself runs on the libuv pool as a [`Job`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use std::path::PathBuf;

use annvault_core::formats::{Compression, ExportOptions, Format, ImportMode};
use annvault_core::op::Op;
use annvault_core::progress::{Progress, ProgressSink, Reporter};
use annvault_core::storage::fs::OsStorage;
use annvault_core::store::Persistence;
use annvault_core::{
    parse_ef_search, parse_limit, parse_payload, parse_payloads, positive_integer, Algorithm,
    AnnConfig, BatchIndex, CollectionConfig, Distance, FaissParams, Filter, HnswParams, PointBatch,
    Quantization, Store, StoreOptions,
};
use napi::bindgen_prelude::{AsyncTask, Either, Float32Array, Uint32Array, Unknown};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use napi_derive::napi;

use crate::error::to_js_error;
use crate::job::Job;
use crate::point_id::{check_all, JsPointId};
use crate::validation::dir_options;

/// Largest batch (in floats) validated and applied on the JS thread.
const INLINE_MAX_FLOATS: usize = 16 * 1024;

/// Largest typed array copied on the JS thread before a job. Smaller ones
/// are copied there so that they are also released there: a typed array
/// dropped on the pool sends its release back to the JS thread, one more
/// wake-up per call.
const COPY_MAX_FLOATS: usize = 4 << 20;

/// Vectors for a job: copied on the JS thread, or (when large) read on the pool.
enum Floats {
    Copied(Vec<f32>),
    Shared(Float32Array),
}

impl Floats {
    fn new(array: Float32Array) -> Self {
        if array.len() <= COPY_MAX_FLOATS {
            Floats::Copied(array.to_vec())
        } else {
            Floats::Shared(array)
        }
    }

    fn into_vec(self) -> Vec<f32> {
        match self {
            Floats::Copied(v) => v,
            Floats::Shared(a) => a.to_vec(),
        }
    }
}

#[napi(object)]
pub struct StoreConfig {
    pub collection_name: String,
    pub dimension: f64,
    /// 'Cosine' (default), 'Dot' or 'Euclidean'.
    pub distance: Option<String>,
    pub max_vectors: Option<f64>,
    /// Directory holding the collection's directory; absent: memory only.
    pub persistence_path: Option<String>,
    /// 'fsync' (default) or 'flush'.
    pub durability: Option<String>,
    /// 'strict' (default) or 'truncate'.
    pub recovery: Option<String>,
    /// 'none' (default), 'gzip' or 'brotli' (checkpoint snapshots).
    pub compression: Option<String>,
    /// WAL size that starts a background checkpoint (default 64 MiB).
    pub checkpoint_wal_bytes: Option<f64>,
    /// 'auto' (default), 'flat' or 'hnsw'.
    pub ann_algorithm: Option<String>,
    /// Below this many points 'auto' searches exactly (default 1000).
    pub ann_min_dataset_size: Option<f64>,
    /// How long a clean close (and `checkpoint()`) waits for the indexer to
    /// take in every point before saving the graph, in ms (default 60000;
    /// 0: save what is indexed).
    pub ann_close_wait_ms: Option<f64>,
    pub hnsw: Option<HnswConfig>,
    /// With `annAlgorithm: 'faiss'` only.
    pub faiss: Option<FaissConfig>,
    /// 'memory' (default) or 'disk': where the vectors are served from.
    pub vector_storage: Option<String>,
}

#[napi(object)]
pub struct FaissConfig {
    /// A faiss index factory string (default 'HNSW32,Flat').
    pub index: Option<String>,
    /// IVF cells visited per search.
    pub nprobe: Option<f64>,
    /// Points an index that needs training is first trained on (default 10000).
    pub train_points: Option<f64>,
}

#[napi(object)]
pub struct HnswConfig {
    pub m: Option<f64>,
    pub ef_construction: Option<f64>,
    pub ef_search: Option<f64>,
    /// 'auto' (default), 'i8', 'f16' or 'f32'.
    pub quantization: Option<String>,
}

/// `storage.vectors`: whether the vectors are served from disk.
fn vectors_on_disk(name: Option<&str>) -> annvault_core::Result<bool> {
    match name {
        None | Some("memory") => Ok(false),
        Some("disk") => Ok(true),
        Some(other) => Err(annvault_core::Error::InvalidArgument {
            name: "storage.vectors",
            reason: format!("expected 'memory' or 'disk', got {other:?}"),
        }),
    }
}

/// Longest `annCloseWaitMs`: one hour.
const MAX_CLOSE_WAIT_MS: f64 = 3_600_000.0;

fn ann_config(config: &StoreConfig) -> annvault_core::Result<AnnConfig> {
    let defaults = AnnConfig::default();
    let algorithm = match config.ann_algorithm.as_deref() {
        Some(name) => Algorithm::parse(name)?,
        None => defaults.algorithm,
    };
    let min_dataset_size = match config.ann_min_dataset_size {
        Some(n) => positive_integer("annMinDatasetSize", n)?,
        None => defaults.min_dataset_size,
    };
    let d = defaults.hnsw;
    let param = |name: &'static str, value: Option<f64>, default: usize| match value {
        Some(v) => positive_integer(name, v),
        None => Ok(default),
    };
    let hnsw = match &config.hnsw {
        Some(h) => HnswParams {
            quantization: match h.quantization.as_deref() {
                Some(name) => Quantization::parse(name)?,
                None => d.quantization,
            },
            ..HnswParams::new(
                param("hnsw.m", h.m, d.m)?,
                param("hnsw.efConstruction", h.ef_construction, d.ef_construction)?,
                param("hnsw.efSearch", h.ef_search, d.ef_search)?,
            )?
        },
        None => d,
    };
    let faiss = match &config.faiss {
        Some(_) if algorithm != Algorithm::Faiss => {
            return Err(annvault_core::Error::InvalidArgument {
                name: "faiss",
                reason: format!(
                    "faiss options apply to annAlgorithm 'faiss', not '{}'",
                    algorithm.name()
                ),
            })
        }
        Some(f) => FaissParams {
            factory: f.index.clone().unwrap_or(defaults.faiss.factory.clone()),
            nprobe: f
                .nprobe
                .map(|n| positive_integer("faiss.nprobe", n))
                .transpose()?,
            train_points: match f.train_points {
                Some(n) => positive_integer("faiss.trainPoints", n)?,
                None => defaults.faiss.train_points,
            },
        },
        None => defaults.faiss.clone(),
    };
    let close_wait = match config.ann_close_wait_ms {
        Some(ms)
            if ms.is_finite() && ms.fract() == 0.0 && (0.0..=MAX_CLOSE_WAIT_MS).contains(&ms) =>
        {
            std::time::Duration::from_millis(ms as u64)
        }
        Some(ms) => {
            return Err(annvault_core::Error::InvalidArgument {
                name: "annCloseWaitMs",
                reason: format!(
                    "must be a whole number of milliseconds from 0 to {MAX_CLOSE_WAIT_MS}, got {ms}"
                ),
            })
        }
        None => defaults.close_wait,
    };
    Ok(AnnConfig {
        algorithm,
        min_dataset_size,
        hnsw,
        faiss,
        close_wait,
        ..defaults
    })
}

fn persistence(config: &StoreConfig) -> annvault_core::Result<Option<Persistence>> {
    let Some(root) = &config.persistence_path else {
        return Ok(None);
    };
    let options = dir_options(
        config.durability.as_deref(),
        config.recovery.as_deref(),
        config.compression.as_deref(),
        config.checkpoint_wal_bytes,
    )?;
    Ok(Some(Persistence {
        root: PathBuf::from(root),
        storage: Arc::new(OsStorage),
        options,
    }))
}

fn store_options(config: StoreConfig) -> annvault_core::Result<StoreOptions> {
    let dimension = positive_integer("dimension", config.dimension)?;
    let distance = match config.distance.as_deref() {
        Some(name) => Distance::parse(name)?,
        None => Distance::default(),
    };
    let max_vectors = config
        .max_vectors
        .map(|m| positive_integer("maxVectors", m))
        .transpose()?;
    let persistence = persistence(&config)?;
    let ann = ann_config(&config)?;
    Ok(StoreOptions {
        name: config.collection_name,
        config: CollectionConfig::new(dimension, distance, max_vectors)?
            .with_vectors_on_disk(vectors_on_disk(config.vector_storage.as_deref())?),
        persistence,
        ann,
    })
}

/// Opens a store. Resolves to a connected `NativeStore`; `onProgress`
/// receives the open's phases (`load`, `replay`, `graph`) as JSON text,
/// then the events of the store's background work (checkpoints it starts
/// itself or writes on close, graph builds) for as long as it lives.
#[napi(
    catch_unwind,
    ts_args_type = "config: StoreConfig, onProgress?: ((event: string) => void) | undefined | null",
    ts_return_type = "Promise<NativeStore>"
)]
pub fn open_store(
    config: StoreConfig,
    on_progress: Option<ProgressFunction>,
) -> AsyncTask<Job<NativeStore>> {
    AsyncTask::new(Job::new("connect", move || {
        let (mut reporter, queued) = progress_reporter("open", on_progress);
        let store = Store::open_reporting(store_options(config)?, &mut reporter)?;
        Ok(NativeStore {
            store: Arc::new(store),
            open_progress_events: queued.load(Ordering::Acquire) as f64,
            progress_events: queued,
        })
    }))
}

fn filter_from(json: Option<String>) -> annvault_core::Result<Filter> {
    match json {
        Some(text) => Filter::parse(&text),
        None => Ok(Filter::default()),
    }
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> annvault_core::Result<String> {
    serde_json::to_string(value).map_err(|e| annvault_core::Error::Internal {
        reason: format!("could not encode a result as JSON: {e}"),
    })
}

#[napi]
pub struct NativeStore {
    pub(crate) store: Arc<Store>,
    /// Progress events the open queued (the façade waits for them all).
    open_progress_events: f64,
    /// Events queued to the open's `onProgress` so far, background work's included.
    progress_events: Arc<AtomicU64>,
}

#[napi]
impl NativeStore {
    #[napi(getter)]
    pub fn open_progress_events(&self) -> f64 {
        self.open_progress_events
    }

    /// Events queued to the open's `onProgress` so far: the open's, then
    /// background checkpoints' (the one a close writes too) and graph builds'.
    #[napi(getter)]
    pub fn progress_events(&self) -> f64 {
        self.progress_events.load(Ordering::Acquire) as f64
    }

    #[napi(getter)]
    pub fn collection_name(&self) -> String {
        self.store.name().to_owned()
    }

    #[napi(getter)]
    pub fn dimension(&self) -> u32 {
        self.store.config().dimension as u32
    }

    #[napi(getter)]
    pub fn distance(&self) -> String {
        self.store.config().distance.name().to_owned()
    }

    #[napi(getter)]
    pub fn max_vectors(&self) -> Option<u32> {
        self.store.config().max_vectors.map(|m| m as u32)
    }

    #[napi(getter)]
    pub fn is_open(&self) -> bool {
        self.store.is_open()
    }

    /// `vectors`: the batch's vectors back to back; `lengths[i]`: length of
    /// vector `i`; `payloads`: a JSON array of objects. Returns null
    /// when the write was applied right away (a small batch on a store that
    /// needs no fsync, with nothing ahead of it), else a Promise.
    #[napi(
        catch_unwind,
        ts_args_type = "vectors: Float32Array, lengths: Uint32Array, ids: Array<string | number>, payloads: string",
        ts_return_type = "Promise<void> | null"
    )]
    pub fn insert(
        &self,
        vectors: Float32Array,
        lengths: Uint32Array,
        ids: Vec<JsPointId>,
        payloads: String,
    ) -> napi::Result<Option<AsyncTask<Job<()>>>> {
        let inline = vectors.len() <= INLINE_MAX_FLOATS;
        self.insert_floats(
            Floats::new(vectors),
            lengths.to_vec(),
            ids,
            payloads,
            inline,
        )
    }

    /// `insert` for batches of at most 16K floats: the typed arrays are read
    /// in place (no reference to create and release), copied, and the write
    /// is applied right away when possible.
    #[napi(
        catch_unwind,
        ts_args_type = "vectors: Float32Array, lengths: Uint32Array, ids: Array<string | number>, payloads: string",
        ts_return_type = "Promise<void> | null"
    )]
    pub fn insert_small(
        &self,
        vectors: &[f32],
        lengths: &[u32],
        ids: Vec<JsPointId>,
        payloads: String,
    ) -> napi::Result<Option<AsyncTask<Job<()>>>> {
        let inline = vectors.len() <= INLINE_MAX_FLOATS;
        let vectors = Floats::Copied(vectors.to_vec());
        self.insert_floats(vectors, lengths.to_vec(), ids, payloads, inline)
    }

    fn insert_floats(
        &self,
        vectors: Floats,
        lengths: Vec<u32>,
        ids: Vec<JsPointId>,
        payloads: String,
        inline: bool,
    ) -> napi::Result<Option<AsyncTask<Job<()>>>> {
        let store = Arc::clone(&self.store);
        let ticket = store.ticket();
        let dimension = store.config().dimension;
        let prepare = move || -> annvault_core::Result<Op> {
            let ids = check_all(ids)?;
            let payloads = parse_payloads(&payloads)?;
            PointBatch::new(dimension, ids, vectors.into_vec(), &lengths, payloads).map(Op::Insert)
        };
        if !inline || !store.allows_inline_writes() {
            return Ok(Some(AsyncTask::new(Job::new("insert", move || {
                store.apply(ticket, prepare()?).map(|_| ())
            }))));
        }
        // Small enough to validate here; apply here too unless that could block.
        let op = prepare().map_err(|e| to_js_error(e, "insert"))?;
        match store.try_apply_now(ticket, op) {
            Ok(result) => result.map(|_| None).map_err(|e| to_js_error(e, "insert")),
            Err((ticket, op)) => Ok(Some(AsyncTask::new(Job::new("insert", move || {
                store.apply(ticket, op).map(|_| ())
            })))),
        }
    }

    #[napi(
        catch_unwind,
        ts_args_type = "id: string | number, vector: Float32Array, payload: string",
        ts_return_type = "Promise<void>"
    )]
    pub fn update(
        &self,
        id: JsPointId,
        vector: Float32Array,
        payload: String,
    ) -> AsyncTask<Job<()>> {
        let store = Arc::clone(&self.store);
        let ticket = store.ticket();
        let vector = Floats::new(vector);
        AsyncTask::new(Job::new("update", move || {
            let id = id.check(BatchIndex(None))?;
            let payload = parse_payload(&payload)?;
            store.update(ticket, &id, &vector.into_vec(), payload)
        }))
    }

    /// Resolves to whether the id existed.
    #[napi(
        catch_unwind,
        ts_args_type = "id: string | number",
        ts_return_type = "Promise<boolean>"
    )]
    pub fn delete(&self, id: JsPointId) -> AsyncTask<Job<bool>> {
        let store = Arc::clone(&self.store);
        let ticket = store.ticket();
        AsyncTask::new(Job::new("delete", move || {
            let id = id.check(BatchIndex(None))?;
            store.delete(ticket, &id)
        }))
    }

    /// Removes every point; the store stays open.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn clear(&self) -> AsyncTask<Job<()>> {
        let store = Arc::clone(&self.store);
        let ticket = store.ticket();
        AsyncTask::new(Job::new("deleteCollection", move || store.clear(ticket)))
    }

    /// Every later call fails with code 1012 until `reopen()`.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn close(&self) -> AsyncTask<Job<()>> {
        let store = Arc::clone(&self.store);
        let ticket = store.ticket();
        AsyncTask::new(Job::new("disconnect", move || store.close(ticket)))
    }

    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn reopen(&self) -> AsyncTask<Job<()>> {
        let store = Arc::clone(&self.store);
        let ticket = store.ticket();
        AsyncTask::new(Job::new("connect", move || store.reopen(ticket)))
    }

    /// Resolves to the record as JSON (`{id, vector, payload}`), or null.
    #[napi(
        catch_unwind,
        ts_args_type = "id: string | number",
        ts_return_type = "Promise<string | null>"
    )]
    pub fn get(&self, id: JsPointId) -> AsyncTask<Job<Option<String>>> {
        let store = Arc::clone(&self.store);
        AsyncTask::new(Job::new("get", move || {
            let id = id.check(BatchIndex(None))?;
            store.get(&id)?.map(|record| to_json(&record)).transpose()
        }))
    }

    /// The hits as a JSON array of `{id, score, payload}`: a string when
    /// the search was cheap enough to run right here (see
    /// `Store::try_search_now`), else a Promise of one.
    #[napi(
        catch_unwind,
        ts_args_type = "query: Float32Array, limit: number, filter?: string | undefined | null, efSearch?: number | undefined | null",
        ts_return_type = "string | Promise<string>"
    )]
    pub fn search(
        &self,
        query: &[f32],
        limit: f64,
        filter: Option<String>,
        ef_search: Option<f64>,
    ) -> napi::Result<Either<String, AsyncTask<Job<String>>>> {
        let parsed = (|| -> annvault_core::Result<_> {
            let limit = parse_limit(limit)?;
            let filter = filter_from(filter)?;
            let ef = ef_search.map(parse_ef_search).transpose()?;
            Ok((limit, filter, ef))
        })();
        let (limit, filter, ef) = parsed.map_err(|e| to_js_error(e, "search"))?;
        if let Some(hits) = self.store.try_search_now(query, limit, &filter, ef) {
            return hits
                .and_then(|hits| to_json(&hits))
                .map(Either::A)
                .map_err(|e| to_js_error(e, "search"));
        }
        let store = Arc::clone(&self.store);
        let query = query.to_vec();
        Ok(Either::B(AsyncTask::new(Job::new("search", move || {
            to_json(&store.search_with(&query, limit, &filter, ef)?)
        }))))
    }

    /// Resolves to whether the background indexer went idle within `timeout_ms`.
    #[napi(catch_unwind, ts_return_type = "Promise<boolean>")]
    pub fn wait_for_index(&self, timeout_ms: f64) -> AsyncTask<Job<bool>> {
        let store = Arc::clone(&self.store);
        AsyncTask::new(Job::new("waitForIndex", move || {
            let timeout = std::time::Duration::from_millis(timeout_ms.clamp(0.0, 1e12) as u64);
            store.wait_for_index(timeout)
        }))
    }

    /// Resolves to `{records: [{id, payload}], total}` as JSON.
    #[napi(
        catch_unwind,
        ts_args_type = "filter: string | undefined | null, limit: number",
        ts_return_type = "Promise<string>"
    )]
    pub fn list(&self, filter: Option<String>, limit: f64) -> AsyncTask<Job<String>> {
        let store = Arc::clone(&self.store);
        AsyncTask::new(Job::new("list", move || {
            let limit = parse_limit(limit)?;
            let filter = filter_from(filter)?;
            to_json(&store.list(&filter, limit)?)
        }))
    }

    #[napi(catch_unwind, ts_return_type = "Promise<number>")]
    pub fn count(&self) -> AsyncTask<Job<u32>> {
        let store = Arc::clone(&self.store);
        AsyncTask::new(Job::new("count", move || Ok(store.len()? as u32)))
    }

    /// Writes a checkpoint now (snapshot + manifest, then the covered WAL
    /// is removed). Resolves to the number of progress events queued.
    #[napi(
        catch_unwind,
        ts_args_type = "onProgress?: ((event: string) => void) | undefined | null",
        ts_return_type = "Promise<number>"
    )]
    pub fn checkpoint(&self, on_progress: Option<ProgressFunction>) -> AsyncTask<Job<f64>> {
        let store = Arc::clone(&self.store);
        let ticket = store.ticket();
        AsyncTask::new(Job::new("checkpoint", move || {
            let (mut reporter, queued) = progress_reporter("checkpoint", on_progress);
            store.checkpoint_reporting(ticket, &mut reporter)?;
            Ok(queued.load(Ordering::Acquire) as f64)
        }))
    }

    /// Resolves to the store's statistics as JSON.
    #[napi(catch_unwind, ts_return_type = "Promise<string>")]
    pub fn stats(&self) -> AsyncTask<Job<String>> {
        let store = Arc::clone(&self.store);
        AsyncTask::new(Job::new("stats", move || to_json(&store.stats()?)))
    }

    /// Writes the older backend's `ann_metadata.json` and `payloads.json` into `dir`.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn export_legacy(&self, dir: String) -> AsyncTask<Job<()>> {
        let store = Arc::clone(&self.store);
        AsyncTask::new(Job::new("exportLegacy", move || {
            store.export_legacy(std::path::Path::new(&dir))
        }))
    }
}

/// `onProgress` as the binding receives it: the façade's wrapper, called
/// with each event as JSON text. Weak (unref'ed): a pending event never
/// keeps the process alive.
pub(crate) type ProgressFunction =
    ThreadsafeFunction<String, Unknown<'static>, String, Status, false, true>;

/// A sink that queues each event for the JS thread without waiting, and
/// the count of events queued.
pub(crate) fn progress_reporter(
    operation: &'static str,
    callback: Option<ProgressFunction>,
) -> (Reporter, Arc<AtomicU64>) {
    let queued = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&queued);
    let sink: Option<ProgressSink> = callback.map(|f| {
        Arc::new(move |event: &Progress| {
            if let Ok(text) = serde_json::to_string(event) {
                if f.call(text, ThreadsafeFunctionCallMode::NonBlocking) == Status::Ok {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
        }) as ProgressSink
    });
    (Reporter::new(operation, sink), queued)
}

/// `{ ...result, progressEvents }`: how many events were queued, so the
/// façade settles only once all of them were delivered.
pub(crate) fn with_event_count<T: serde::Serialize>(
    value: &T,
    queued: &AtomicU64,
) -> annvault_core::Result<String> {
    let mut json = serde_json::to_value(value).map_err(|e| annvault_core::Error::Internal {
        reason: format!("could not encode a result as JSON: {e}"),
    })?;
    if let Some(object) = json.as_object_mut() {
        object.insert(
            "progressEvents".into(),
            queued.load(Ordering::Relaxed).into(),
        );
    }
    to_json(&json)
}

/// Export, import and verify (`crates/core/src/formats`, `snapshots/verify.rs`).
#[napi]
impl NativeStore {
    /// Resolves to `{path, format, compression, count, bytes, progressEvents}` as JSON.
    #[napi(
        catch_unwind,
        ts_args_type = "path: string, format: string | undefined | null, compression: string | undefined | null, filter: string | undefined | null, overwrite: boolean, onProgress?: ((event: string) => void) | undefined | null",
        ts_return_type = "Promise<string>"
    )]
    pub fn export(
        &self,
        path: String,
        format: Option<String>,
        compression: Option<String>,
        filter: Option<String>,
        overwrite: bool,
        on_progress: Option<ProgressFunction>,
    ) -> AsyncTask<Job<String>> {
        let store = Arc::clone(&self.store);
        AsyncTask::new(Job::new("export", move || {
            let options = ExportOptions {
                format: format.as_deref().map(Format::parse).transpose()?,
                compression: compression
                    .as_deref()
                    .map(Compression::parse)
                    .transpose()?
                    .unwrap_or_default(),
                filter: filter_from(filter)?,
                overwrite,
            };
            let (mut reporter, queued) = progress_reporter("export", on_progress);
            let summary = store.export(std::path::Path::new(&path), &options, &mut reporter)?;
            with_event_count(&summary, &queued)
        }))
    }

    /// Resolves to `{count, format, compression, progressEvents}` as JSON.
    #[napi(
        catch_unwind,
        ts_args_type = "path: string, mode: string | undefined | null, onProgress?: ((event: string) => void) | undefined | null",
        ts_return_type = "Promise<string>"
    )]
    pub fn import(
        &self,
        path: String,
        mode: Option<String>,
        on_progress: Option<ProgressFunction>,
    ) -> AsyncTask<Job<String>> {
        let store = Arc::clone(&self.store);
        AsyncTask::new(Job::new("import", move || {
            let mode = mode
                .as_deref()
                .map(ImportMode::parse)
                .transpose()?
                .unwrap_or_default();
            let (mut reporter, queued) = progress_reporter("import", on_progress);
            let summary = store.import(std::path::Path::new(&path), mode, &mut reporter)?;
            with_event_count(&summary, &queued)
        }))
    }

    /// Resolves to `{ok, files, count, problems, progressEvents}` as JSON.
    #[napi(
        catch_unwind,
        ts_args_type = "onProgress?: ((event: string) => void) | undefined | null",
        ts_return_type = "Promise<string>"
    )]
    pub fn verify(&self, on_progress: Option<ProgressFunction>) -> AsyncTask<Job<String>> {
        let store = Arc::clone(&self.store);
        AsyncTask::new(Job::new("verify", move || {
            let (mut reporter, queued) = progress_reporter("verify", on_progress);
            let report = store.verify(&mut reporter)?;
            with_event_count(&report, &queued)
        }))
    }
}
