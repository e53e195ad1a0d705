//! `NativeKv`: the JS class over one `annvault_core::kv::KvStore`.
//!
//! Conversion and the cheap checks happen here, on the JS thread (binary
//! values are copied out of their typed arrays). Writes are queued to the
//! store's commit thread in call order and return a Promise that the commit
//! thread settles (a `JsDeferred`) once the group they joined is durable:
//! no libuv pool thread waits on an fsync, so any number of writes in
//! flight share one. Validation of keys and JSON runs on the commit thread.
//! `getSync` reads the in-memory table on the JS thread (a read lock and a
//! copy: microseconds); `find`, `keys` and `stats` run on the libuv pool as
//! a [`Job`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use annvault_core::kv::{KvEntry, KvOptions, KvStore, KvValue, KvWrite};
use annvault_core::storage::fs::OsStorage;
use annvault_core::Error;
use napi::bindgen_prelude::{AsyncTask, Buffer, Function, Object, ToNapiValue, Uint8Array};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Env;
use napi_derive::napi;

use crate::error::to_js_error;
use crate::native_store::{progress_reporter, ProgressFunction};

use crate::job::Job;
use crate::validation::dir_options;

#[napi(object)]
pub struct KvConfig {
    /// The directory that holds the table (created if missing).
    pub path: String,
    /// 'fsync' (default: a write resolves once fdatasync'ed; concurrent
    /// writes share one fsync) or 'flush' (once written to the OS).
    pub durability: Option<String>,
    /// 'strict' (default) or 'truncate', as for vector stores.
    pub recovery: Option<String>,
    /// Log size that starts a background checkpoint (default 64 MiB).
    pub checkpoint_wal_bytes: Option<f64>,
}

/// One write: exactly one of `json` (JSON text) and `binary`.
#[napi(object)]
pub struct KvWriteIn {
    pub key: String,
    pub json: Option<String>,
    pub binary: Option<Uint8Array>,
    /// JSON text of an object.
    pub metadata: String,
    /// Unix ms; absent or null: never expires.
    pub expires_at: Option<f64>,
}

/// One entry: `json` (JSON text) or `binary` is set.
#[napi(object)]
pub struct KvEntryOut {
    pub key: String,
    pub json: Option<String>,
    pub binary: Option<Buffer>,
    pub metadata: String,
    pub created_at: f64,
    pub updated_at: f64,
    pub expires_at: Option<f64>,
}

#[napi(object)]
pub struct KvMaintained {
    /// Entries the sweep removed.
    pub swept: u32,
    /// Progress events queued to `onProgress`.
    pub progress_events: f64,
}

#[napi(object)]
pub struct KvStatsOut {
    pub total_entries: f64,
    pub size: f64,
    pub last_sync: Option<f64>,
    pub wal_bytes: f64,
    pub replayed_records: f64,
    pub torn_bytes: f64,
    pub writes_disabled: Option<String>,
    pub last_checkpoint_error: Option<String>,
}

fn options(config: KvConfig) -> annvault_core::Result<KvOptions> {
    // Large values are compressed one by one, never the checkpoint.
    let dir = dir_options(
        config.durability.as_deref(),
        config.recovery.as_deref(),
        None,
        config.checkpoint_wal_bytes,
    )?;
    if config.path.is_empty() {
        return Err(Error::InvalidArgument {
            name: "path",
            reason: "must not be empty".into(),
        });
    }
    Ok(KvOptions {
        storage: Arc::new(OsStorage),
        path: PathBuf::from(config.path),
        dir,
    })
}

/// A JS time (Unix ms) as the core keeps it.
fn millis(name: &'static str, value: f64) -> annvault_core::Result<i64> {
    if !value.is_finite() || value.abs() > 8.64e15 {
        return Err(Error::InvalidArgument {
            name,
            reason: format!("expected a time in Unix milliseconds, got {value}"),
        });
    }
    Ok(value.trunc() as i64)
}

fn entry_out(key: String, entry: &KvEntry) -> KvEntryOut {
    let (json, binary) = match &entry.value {
        KvValue::Json(text) => (Some(text.clone()), None),
        KvValue::Binary(bytes) => (None, Some(Buffer::from(bytes.clone()))),
    };
    KvEntryOut {
        key,
        json,
        binary,
        metadata: entry.metadata.clone(),
        created_at: entry.created_at as f64,
        updated_at: entry.updated_at as f64,
        expires_at: entry.expires_at.map(|t| t as f64),
    }
}

fn write_in(write: KvWriteIn, index: usize) -> annvault_core::Result<KvWrite> {
    let value = match (write.json, write.binary) {
        (Some(text), None) => KvValue::Json(text),
        (None, Some(bytes)) => KvValue::Binary(bytes.to_vec()),
        _ => {
            return Err(Error::InvalidArgument {
                name: "writes",
                reason: format!("write {index} must carry exactly one of json and binary"),
            })
        }
    };
    Ok(KvWrite {
        key: write.key,
        value,
        metadata: write.metadata,
        expires_at: write
            .expires_at
            .map(|t| millis("expiresAt", t))
            .transpose()?,
    })
}

/// Opens (recovers) a key-value table. Resolves to an open `NativeKv`;
/// a directory another opener holds rejects with code 5001.
#[napi(ts_return_type = "Promise<NativeKv>")]
pub fn open_kv(config: KvConfig) -> AsyncTask<Job<NativeKv>> {
    AsyncTask::new(Job::new("init", move || {
        let store = KvStore::open(options(config)?)?;
        Ok(NativeKv {
            store,
            settler: Arc::default(),
            outstanding: AtomicUsize::new(0),
        })
    }))
}

#[napi]
pub struct NativeKv {
    store: KvStore,
    settler: Arc<Settler>,
    /// Writes `setQueued` took whose settlement `takeSettled` has not
    /// handed over yet (JS thread only): while there are any, the wake-up
    /// function holds the event loop open, as a pending Promise would.
    outstanding: AtomicUsize,
}

/// The JS function the commit thread wakes: weak (it does not hold the
/// event loop open unless referred), called with no arguments.
type Wake = ThreadsafeFunction<(), (), (), napi::Status, false, true>;

/// Where writes queued by `setQueued` are settled. The commit thread
/// records each write's outcome in the outbox and wakes JS once per group
/// (not once per write); JS then takes every settled ticket in one call.
/// A Promise per write from napi would create a threadsafe function (a
/// libuv handle, a cleanup hook) per write and wake the event loop once
/// per write: most of a write's CPU cost when 64 are in flight.
#[derive(Default)]
struct Settler {
    outbox: Mutex<Outbox>,
    wake: Mutex<Option<Wake>>,
}

#[derive(Default)]
struct Outbox {
    ok: Vec<u32>,
    failed: Vec<(u32, Error)>,
    /// Errors of failed tickets `takeSettled` handed over, for `takeError`.
    taken: HashMap<u32, Error>,
    /// A wake-up is on its way to JS and has not taken the outbox yet.
    woken: bool,
}

impl Settler {
    /// Records `ticket`'s outcome (on the commit thread) and wakes JS
    /// unless a wake-up is already on its way.
    fn settle(&self, ticket: u32, outcome: annvault_core::Result<()>) {
        let mut outbox = self.outbox.lock().unwrap_or_else(PoisonError::into_inner);
        match outcome {
            Ok(()) => outbox.ok.push(ticket),
            Err(error) => outbox.failed.push((ticket, error)),
        }
        if outbox.woken {
            return;
        }
        outbox.woken = true;
        drop(outbox);
        if let Some(wake) = self
            .wake
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            // Fails only while the environment tears down: nobody waits then.
            let _ = wake.call((), ThreadsafeFunctionCallMode::NonBlocking);
        }
    }
}

/// The tickets `takeSettled` hands over: writes now durable, and writes
/// refused (their errors are taken one by one with `takeError`).
#[napi(object)]
pub struct SettledOut {
    pub ok: Vec<u32>,
    pub failed: Vec<u32>,
}

#[napi]
impl NativeKv {
    #[napi(getter)]
    pub fn is_open(&self) -> bool {
        self.store.is_open()
    }

    #[napi(ts_return_type = "Promise<(KvEntryOut | null)[]>")]
    pub fn get(&self, keys: Vec<String>, now: f64) -> AsyncTask<Job<Vec<Option<KvEntryOut>>>> {
        let store = self.store.clone();
        AsyncTask::new(Job::new("get", move || get(&store, keys, now)))
    }

    /// `get` on the JS thread: the table is in memory, so this is a read
    /// lock and a copy of each value, microseconds for the values `maxBytes`
    /// allows. It never waits for the lock. Returns `null` (reading nothing)
    /// when a writer holds or waits for the lock, or when the entries found
    /// hold more than `maxBytes` of value and metadata: use `get` for those.
    #[napi]
    pub fn get_sync(
        &self,
        keys: Vec<String>,
        now: f64,
        max_bytes: f64,
    ) -> napi::Result<Option<Vec<Option<KvEntryOut>>>> {
        let sync = || -> annvault_core::Result<_> {
            let Some(entries) = self.store.try_get(&keys, millis("now", now)?)? else {
                return Ok(None);
            };
            let bytes: usize = entries.iter().flatten().map(|e| e.size()).sum();
            if bytes as f64 > max_bytes {
                return Ok(None);
            }
            Ok(Some(
                keys.into_iter()
                    .zip(entries)
                    .map(|(key, entry)| entry.map(|e| entry_out(key, &e)))
                    .collect(),
            ))
        };
        sync().map_err(|e| to_js_error(e, "get"))
    }

    /// Registers the function the commit thread calls (with no arguments)
    /// when writes queued by `setQueued` have settled; it should call
    /// `takeSettled`. Called once, before the first `setQueued`.
    #[napi]
    pub fn on_settled(&self, callback: Function<(), ()>) -> napi::Result<()> {
        let wake: Wake = callback
            .build_threadsafe_function::<()>()
            .weak::<true>()
            .callee_handled::<false>()
            .build()?;
        *self
            .settler
            .wake
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(wake);
        Ok(())
    }

    /// `set` without a Promise: writes the batch atomically (a bad write
    /// anywhere refuses all of it) and reports `ticket` through the
    /// `onSettled` function once the group it joined is durable or refused.
    /// Throws, queuing nothing, when a write cannot be converted.
    #[napi]
    pub fn set_queued(
        &self,
        env: &Env,
        writes: Vec<KvWriteIn>,
        now: f64,
        ticket: u32,
    ) -> napi::Result<()> {
        let queued = || -> annvault_core::Result<(Vec<KvWrite>, i64)> {
            let writes = writes
                .into_iter()
                .enumerate()
                .map(|(i, w)| write_in(w, i))
                .collect::<annvault_core::Result<Vec<KvWrite>>>()?;
            Ok((writes, millis("now", now)?))
        };
        let (writes, now) = queued().map_err(|e| to_js_error(e, "set"))?;
        {
            let mut wake = self
                .settler
                .wake
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let Some(wake) = wake.as_mut() else {
                return Err(napi::Error::new(
                    napi::Status::GenericFailure,
                    "setQueued needs onSettled first",
                ));
            };
            if self.outstanding.fetch_add(1, Ordering::Relaxed) == 0 {
                // napi_ref_threadsafe_function: hold the event loop open
                // while writes are outstanding. napi-rs deprecates it in
                // favour of clone(), which counts threads, not the loop.
                #[allow(deprecated)]
                wake.refer(env)?;
            }
        }
        let settler = Arc::clone(&self.settler);
        self.store
            .set_async(writes, now, move |outcome| settler.settle(ticket, outcome));
        Ok(())
    }

    /// The tickets settled since the last call. Once none is outstanding,
    /// the event loop is no longer held open for them.
    #[napi]
    pub fn take_settled(&self, env: &Env) -> napi::Result<SettledOut> {
        let mut outbox = self
            .settler
            .outbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        outbox.woken = false;
        let ok = std::mem::take(&mut outbox.ok);
        let failed: Vec<u32> = std::mem::take(&mut outbox.failed)
            .into_iter()
            .map(|(ticket, error)| {
                outbox.taken.insert(ticket, error);
                ticket
            })
            .collect();
        drop(outbox);
        let taken = ok.len() + failed.len();
        if taken > 0 && self.outstanding.fetch_sub(taken, Ordering::Relaxed) == taken {
            if let Some(wake) = self
                .settler
                .wake
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_mut()
            {
                #[allow(deprecated)]
                wake.unref(env)?;
            }
        }
        Ok(SettledOut { ok, failed })
    }

    /// Throws the error that refused the write `takeSettled` listed as
    /// failed under `ticket` (once).
    #[napi]
    pub fn take_error(&self, ticket: u32) -> napi::Result<()> {
        let error = self
            .settler
            .outbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .taken
            .remove(&ticket);
        match error {
            Some(error) => Err(to_js_error(error, "set")),
            None => Ok(()),
        }
    }

    /// Writes the batch atomically. A bad write anywhere refuses all of it.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn set<'env>(
        &self,
        env: &'env Env,
        writes: Vec<KvWriteIn>,
        now: f64,
    ) -> napi::Result<Object<'env>> {
        let writes: annvault_core::Result<Vec<KvWrite>> = writes
            .into_iter()
            .enumerate()
            .map(|(i, w)| write_in(w, i))
            .collect();
        promise(env, "set", |done| match (writes, millis("now", now)) {
            (Ok(writes), Ok(now)) => self.store.set_async(writes, now, done),
            (Err(e), _) | (_, Err(e)) => done(Err(e)),
        })
    }

    #[napi(ts_return_type = "Promise<boolean[]>")]
    pub fn delete<'env>(
        &self,
        env: &'env Env,
        keys: Vec<String>,
        now: f64,
    ) -> napi::Result<Object<'env>> {
        promise(env, "delete", |done| match millis("now", now) {
            Ok(now) => self.store.delete_async(keys, now, done),
            Err(e) => done(Err(e)),
        })
    }

    #[napi(ts_return_type = "Promise<KvEntryOut[]>")]
    pub fn find(&self, pattern: String, now: f64) -> AsyncTask<Job<Vec<KvEntryOut>>> {
        let store = self.store.clone();
        AsyncTask::new(Job::new("find", move || {
            let found = store.find(&pattern, millis("now", now)?)?;
            Ok(found.into_iter().map(|(k, e)| entry_out(k, &e)).collect())
        }))
    }

    #[napi(ts_return_type = "Promise<string[]>")]
    pub fn keys(&self, pattern: Option<String>, now: f64) -> AsyncTask<Job<Vec<String>>> {
        let store = self.store.clone();
        AsyncTask::new(Job::new("keys", move || {
            store.keys(pattern.as_deref(), millis("now", now)?)
        }))
    }

    #[napi(ts_return_type = "Promise<void>")]
    pub fn clear<'env>(&self, env: &'env Env) -> napi::Result<Object<'env>> {
        promise(env, "clear", |done| self.store.clear_async(done))
    }

    #[napi(ts_return_type = "Promise<KvStatsOut>")]
    pub fn stats(&self, now: f64) -> AsyncTask<Job<KvStatsOut>> {
        let store = self.store.clone();
        AsyncTask::new(Job::new("stats", move || {
            let s = store.stats(millis("now", now)?)?;
            Ok(KvStatsOut {
                total_entries: s.total_entries as f64,
                size: s.size as f64,
                last_sync: s.last_sync.map(|t| t as f64),
                wal_bytes: s.wal_bytes as f64,
                replayed_records: s.recovery.replayed_records as f64,
                torn_bytes: s.recovery.torn_bytes as f64,
                writes_disabled: s.writes_disabled,
                last_checkpoint_error: s.last_checkpoint_error,
            })
        }))
    }

    /// Sweeps the entries expired at `now`, then checkpoints, its progress
    /// events (operation `checkpoint`) queued to `onProgress`. Resolves to
    /// how many entries the sweep removed and how many events were queued.
    #[napi(
        ts_args_type = "now: number, onProgress?: ((event: string) => void) | undefined | null",
        ts_return_type = "Promise<KvMaintained>"
    )]
    pub fn maintain<'env>(
        &self,
        env: &'env Env,
        now: f64,
        on_progress: Option<ProgressFunction>,
    ) -> napi::Result<Object<'env>> {
        let (reporter, queued) = progress_reporter("checkpoint", on_progress);
        promise(env, "maintain", |done| match millis("now", now) {
            Ok(now) => self
                .store
                .maintain_async_reporting(now, reporter, move |swept| {
                    done(swept.map(|n| KvMaintained {
                        swept: u32::try_from(n).unwrap_or(u32::MAX),
                        progress_events: queued.load(Ordering::Acquire) as f64,
                    }))
                }),
            Err(e) => done(Err(e)),
        })
    }

    /// Writes a checkpoint now, its progress events (operation
    /// `checkpoint`) queued to `onProgress`. Resolves to the number queued.
    #[napi(
        ts_args_type = "onProgress?: ((event: string) => void) | undefined | null",
        ts_return_type = "Promise<number>"
    )]
    pub fn checkpoint<'env>(
        &self,
        env: &'env Env,
        on_progress: Option<ProgressFunction>,
    ) -> napi::Result<Object<'env>> {
        let (reporter, queued) = progress_reporter("checkpoint", on_progress);
        promise(env, "checkpoint", |done| {
            self.store
                .checkpoint_async_reporting(reporter, move |outcome| {
                    done(outcome.map(|()| queued.load(Ordering::Acquire) as f64))
                })
        })
    }

    /// Writes the table as of this call into `dest` (a directory that must
    /// not exist) as a key-value directory `openKv` opens; writes go on
    /// meanwhile. Resolves to the number of entries copied.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn backup_to(&self, dest: String) -> AsyncTask<Job<u32>> {
        let store = self.store.clone();
        AsyncTask::new(Job::new("backupTo", move || {
            let count = store.backup_to(std::path::Path::new(&dest))?;
            Ok(u32::try_from(count).unwrap_or(u32::MAX))
        }))
    }

    /// Checkpoints and releases the directory; later calls reject with code 1012.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> napi::Result<Object<'env>> {
        promise(env, "close", |done| self.store.close_async(done))
    }
}

fn get(
    store: &KvStore,
    keys: Vec<String>,
    now: f64,
) -> annvault_core::Result<Vec<Option<KvEntryOut>>> {
    let entries = store.get(&keys, millis("now", now)?)?;
    Ok(keys
        .into_iter()
        .zip(entries)
        .map(|(key, entry)| entry.map(|e| entry_out(key, &e)))
        .collect())
}

/// A Promise settled from any thread by the callback `start` is handed:
/// the store calls it on its commit thread, the value is converted on the
/// JS thread. A pending Promise keeps the event loop alive, as a libuv
/// task would.
fn promise<'env, T>(
    env: &'env Env,
    operation: &'static str,
    start: impl FnOnce(Box<dyn FnOnce(annvault_core::Result<T>) + Send>),
) -> napi::Result<Object<'env>>
where
    T: ToNapiValue + Send + 'static,
{
    let (deferred, promise) = env.create_deferred()?;
    start(Box::new(move |outcome| match outcome {
        Ok(value) => deferred.resolve(move |_| Ok(value)),
        Err(error) => deferred.reject(to_js_error(error, operation)),
    }));
    Ok(promise)
}
