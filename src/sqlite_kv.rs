//! `SqliteKv`: the JS class over one `annvault_core::sqlite_kv::SqliteKv`
//! (the storage of `SQLiteAdapter`). Arguments are copied on the JS thread;
//! every call runs on the libuv pool as a [`Job`].

use std::path::PathBuf;
use std::sync::Arc;

use annvault_core::sqlite_kv::{self, Synchronous};
use napi::bindgen_prelude::{AsyncTask, Buffer, Uint8Array};
use napi_derive::napi;

use crate::job::Job;

#[napi(object)]
pub struct SqliteKvConfig {
    pub filename: String,
    pub table_name: String,
    /// 'full' (default), 'normal' or 'off'.
    pub synchronous: Option<String>,
}

/// One write: `text` for kind 'json', `bytes` for kind 'binary'.
#[napi(object)]
pub struct SqliteKvWrite {
    pub key: String,
    pub kind: String,
    pub text: Option<String>,
    pub bytes: Option<Uint8Array>,
    pub metadata: String,
    pub expires_at: Option<f64>,
}

#[napi(object)]
pub struct SqliteKvEntry {
    pub key: String,
    pub kind: String,
    pub text: Option<String>,
    pub bytes: Option<Buffer>,
    pub metadata: String,
    pub created_at: f64,
    pub updated_at: f64,
    pub expires_at: Option<f64>,
}

#[napi(object)]
pub struct SqliteKvStats {
    pub total_entries: f64,
    pub size: f64,
    pub last_sync: Option<f64>,
}

fn entry(e: sqlite_kv::Entry) -> SqliteKvEntry {
    let (kind, text, bytes) = match e.value {
        sqlite_kv::Value::Json(text) => ("json", Some(text), None),
        sqlite_kv::Value::Binary(bytes) => ("binary", None, Some(Buffer::from(bytes))),
    };
    SqliteKvEntry {
        key: e.key,
        kind: kind.into(),
        text,
        bytes,
        metadata: e.metadata,
        created_at: e.created_at as f64,
        updated_at: e.updated_at as f64,
        expires_at: e.expires_at.map(|t| t as f64),
    }
}

fn write(w: SqliteKvWrite) -> annvault_core::Result<sqlite_kv::Write> {
    let value = match (w.kind.as_str(), w.text, w.bytes) {
        ("json", Some(text), None) => sqlite_kv::Value::Json(text),
        ("binary", None, Some(bytes)) => sqlite_kv::Value::Binary(bytes.to_vec()),
        (kind, ..) => {
            return Err(annvault_core::Error::InvalidArgument {
                name: "value",
                reason: format!("kind {kind:?} with the wrong fields"),
            })
        }
    };
    Ok(sqlite_kv::Write {
        key: w.key,
        value,
        metadata: w.metadata,
        expires_at: w.expires_at.map(|t| t as i64),
    })
}

/// Opens (creates) the database and table. Resolves to an open `SqliteKv`.
#[napi(ts_return_type = "Promise<SqliteKv>")]
pub fn open_sqlite_kv(config: SqliteKvConfig) -> AsyncTask<Job<SqliteKv>> {
    AsyncTask::new(Job::new("init", move || {
        let synchronous = Synchronous::parse(config.synchronous.as_deref().unwrap_or("full"))?;
        let kv = sqlite_kv::SqliteKv::open(
            &PathBuf::from(config.filename),
            &config.table_name,
            synchronous,
        )?;
        Ok(SqliteKv { kv: Arc::new(kv) })
    }))
}

#[napi]
pub struct SqliteKv {
    kv: Arc<sqlite_kv::SqliteKv>,
}

#[napi]
impl SqliteKv {
    #[napi(catch_unwind, ts_return_type = "Promise<Array<SqliteKvEntry | null>>")]
    pub fn get(&self, keys: Vec<String>, now: f64) -> AsyncTask<Job<Vec<Option<SqliteKvEntry>>>> {
        let kv = Arc::clone(&self.kv);
        AsyncTask::new(Job::new("get", move || {
            Ok(kv
                .get(&keys, now as i64)?
                .into_iter()
                .map(|e| e.map(entry))
                .collect())
        }))
    }

    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn set(&self, writes: Vec<SqliteKvWrite>, now: f64) -> AsyncTask<Job<()>> {
        let kv = Arc::clone(&self.kv);
        // Typed arrays are copied here, on the JS thread, so that none is
        // released on the pool.
        let writes: annvault_core::Result<Vec<_>> = writes.into_iter().map(write).collect();
        AsyncTask::new(Job::new("set", move || kv.set(&writes?, now as i64)))
    }

    #[napi(catch_unwind, ts_return_type = "Promise<boolean[]>")]
    pub fn delete(&self, keys: Vec<String>, now: f64) -> AsyncTask<Job<Vec<bool>>> {
        let kv = Arc::clone(&self.kv);
        AsyncTask::new(Job::new("delete", move || kv.delete(&keys, now as i64)))
    }

    #[napi(catch_unwind, ts_return_type = "Promise<SqliteKvEntry[]>")]
    pub fn find(&self, pattern: String, now: f64) -> AsyncTask<Job<Vec<SqliteKvEntry>>> {
        let kv = Arc::clone(&self.kv);
        AsyncTask::new(Job::new("find", move || {
            Ok(kv
                .find(&pattern, now as i64)?
                .into_iter()
                .map(entry)
                .collect())
        }))
    }

    #[napi(catch_unwind, ts_return_type = "Promise<string[]>")]
    pub fn keys(&self, pattern: Option<String>, now: f64) -> AsyncTask<Job<Vec<String>>> {
        let kv = Arc::clone(&self.kv);
        AsyncTask::new(Job::new("keys", move || {
            kv.keys(pattern.as_deref(), now as i64)
        }))
    }

    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn clear(&self) -> AsyncTask<Job<()>> {
        let kv = Arc::clone(&self.kv);
        AsyncTask::new(Job::new("clear", move || kv.clear()))
    }

    #[napi(catch_unwind, ts_return_type = "Promise<SqliteKvStats>")]
    pub fn stats(&self, now: f64) -> AsyncTask<Job<SqliteKvStats>> {
        let kv = Arc::clone(&self.kv);
        AsyncTask::new(Job::new("stats", move || {
            let s = kv.stats(now as i64)?;
            Ok(SqliteKvStats {
                total_entries: s.total_entries as f64,
                size: s.size as f64,
                last_sync: s.last_sync.map(|t| t as f64),
            })
        }))
    }

    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn maintain(&self, now: f64) -> AsyncTask<Job<()>> {
        let kv = Arc::clone(&self.kv);
        AsyncTask::new(Job::new("maintain", move || kv.maintain(now as i64)))
    }

    /// A consistent copy of the database at `dest` (which must not exist),
    /// by `VACUUM INTO` on a connection of its own; writes go on meanwhile.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn backup_to(&self, dest: String) -> AsyncTask<Job<()>> {
        let kv = Arc::clone(&self.kv);
        AsyncTask::new(Job::new("backupTo", move || {
            kv.backup_to(std::path::Path::new(&dest))
        }))
    }

    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn close(&self) -> AsyncTask<Job<()>> {
        let kv = Arc::clone(&self.kv);
        AsyncTask::new(Job::new("close", move || kv.close()))
    }
}
