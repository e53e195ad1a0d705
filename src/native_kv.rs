//! `NativeKv`: the JS class over one `annvault_core::kv::KvStore`.
//!
//! Conversion and the cheap checks happen here, on the JS thread (binary
//! values are copied out of their typed arrays, write tickets are taken so
//! writes apply in call order); everything else, validation of keys and
//! JSON included, runs in the core on the libuv pool as a [`Job`].

use std::path::PathBuf;
use std::sync::Arc;

use annvault_core::kv::{KvEntry, KvOptions, KvStore, KvValue, KvWrite};
use annvault_core::storage::fs::OsStorage;
use annvault_core::Error;
use napi::bindgen_prelude::{AsyncTask, Buffer, Uint8Array};
use napi_derive::napi;

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
        Ok(NativeKv { store })
    }))
}

#[napi]
pub struct NativeKv {
    store: KvStore,
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
        AsyncTask::new(Job::new("get", move || {
            let now = millis("now", now)?;
            let entries = store.get(&keys, now)?;
            Ok(keys
                .into_iter()
                .zip(entries)
                .map(|(key, entry)| entry.map(|e| entry_out(key, &e)))
                .collect())
        }))
    }

    /// Writes the batch atomically. A bad write anywhere refuses all of it.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn set(&self, writes: Vec<KvWriteIn>, now: f64) -> AsyncTask<Job<()>> {
        let store = self.store.clone();
        let ticket = store.ticket();
        let writes: annvault_core::Result<Vec<KvWrite>> = writes
            .into_iter()
            .enumerate()
            .map(|(i, w)| write_in(w, i))
            .collect();
        AsyncTask::new(Job::new("set", move || {
            store.set(ticket, writes?, millis("now", now)?)
        }))
    }

    #[napi(ts_return_type = "Promise<boolean[]>")]
    pub fn delete(&self, keys: Vec<String>, now: f64) -> AsyncTask<Job<Vec<bool>>> {
        let store = self.store.clone();
        let ticket = store.ticket();
        AsyncTask::new(Job::new("delete", move || {
            store.delete(ticket, keys, millis("now", now)?)
        }))
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
    pub fn clear(&self) -> AsyncTask<Job<()>> {
        let store = self.store.clone();
        let ticket = store.ticket();
        AsyncTask::new(Job::new("clear", move || store.clear(ticket)))
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

    /// Sweeps the entries expired at `now`, then checkpoints. Resolves to
    /// how many entries the sweep removed.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn maintain(&self, now: f64) -> AsyncTask<Job<u32>> {
        let store = self.store.clone();
        let ticket = store.ticket();
        AsyncTask::new(Job::new("maintain", move || {
            let swept = store.maintain(ticket, millis("now", now)?)?;
            Ok(u32::try_from(swept).unwrap_or(u32::MAX))
        }))
    }

    #[napi(ts_return_type = "Promise<void>")]
    pub fn checkpoint(&self) -> AsyncTask<Job<()>> {
        let store = self.store.clone();
        let ticket = store.ticket();
        AsyncTask::new(Job::new("checkpoint", move || store.checkpoint(ticket)))
    }

    /// Checkpoints and releases the directory; later calls reject with code 1012.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close(&self) -> AsyncTask<Job<()>> {
        let store = self.store.clone();
        let ticket = store.ticket();
        AsyncTask::new(Job::new("close", move || store.close(ticket)))
    }
}
