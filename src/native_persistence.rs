//! `DatabasePersistence`'s save directory (`annvault_core::snapshots::saves`)
//! over a `NativeStore`.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use annvault_core::formats::{Compression, Format};
use annvault_core::snapshots::saves::SaveDir;
use annvault_core::storage::fs::OsStorage;
use annvault_core::{positive_integer, Error, Store};
use napi::bindgen_prelude::AsyncTask;
use napi_derive::napi;

use crate::error::to_js_error;
use crate::job::Job;
use crate::native_store::{
    progress_reporter, to_json, with_event_count, NativeStore, ProgressFunction,
};

#[napi]
pub struct NativeSaveDir {
    store: Arc<Store>,
    /// `None` after `close()`: the directory's lock is released once the
    /// jobs still holding it end.
    saves: Mutex<Option<Arc<SaveDir>>>,
}

#[napi]
impl NativeStore {
    /// Opens (creating it) the save directory `dir` for this store, taking
    /// its lock. `format`: an export format name; `compression`: none, gzip, brotli.
    #[napi(catch_unwind, ts_return_type = "Promise<NativeSaveDir>")]
    pub fn open_save_dir(
        &self,
        dir: String,
        format: String,
        compression: String,
    ) -> AsyncTask<Job<NativeSaveDir>> {
        let store = Arc::clone(&self.store);
        AsyncTask::new(Job::new("openSaveDir", move || {
            let format = Format::parse(&format)?;
            let compression = Compression::parse(&compression)?;
            let saves = SaveDir::open(Arc::new(OsStorage), Path::new(&dir), format, compression)?;
            Ok(NativeSaveDir {
                store,
                saves: Mutex::new(Some(Arc::new(saves))),
            })
        }))
    }
}

#[napi]
impl NativeSaveDir {
    fn open(&self) -> napi::Result<Arc<SaveDir>> {
        self.saves
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| {
                to_js_error(
                    Error::InvalidArgument {
                        name: "persistence",
                        reason: "shutdown() was called; create a new DatabasePersistence".into(),
                    },
                    "persistence",
                )
            })
    }

    /// Releases the directory's lock (once running jobs end).
    #[napi]
    pub fn close(&self) {
        self.saves
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    /// Full save; resolves to the summary as JSON.
    #[napi(
        catch_unwind,
        ts_args_type = "onProgress?: ((event: string) => void) | undefined | null",
        ts_return_type = "Promise<string>"
    )]
    pub fn save(
        &self,
        on_progress: Option<ProgressFunction>,
    ) -> napi::Result<AsyncTask<Job<String>>> {
        let (store, saves) = (Arc::clone(&self.store), self.open()?);
        Ok(AsyncTask::new(Job::new("save", move || {
            let (mut reporter, queued) = progress_reporter("save", on_progress);
            with_event_count(&saves.save_store(&store, &mut reporter)?, &queued)
        })))
    }

    /// Incremental save; resolves to the summary as JSON.
    #[napi(
        catch_unwind,
        ts_args_type = "onProgress?: ((event: string) => void) | undefined | null",
        ts_return_type = "Promise<string>"
    )]
    pub fn save_incremental(
        &self,
        on_progress: Option<ProgressFunction>,
    ) -> napi::Result<AsyncTask<Job<String>>> {
        let (store, saves) = (Arc::clone(&self.store), self.open()?);
        Ok(AsyncTask::new(Job::new("saveIncremental", move || {
            let (mut reporter, queued) = progress_reporter("save", on_progress);
            with_event_count(
                &saves.save_store_incremental(&store, &mut reporter)?,
                &queued,
            )
        })))
    }

    /// Loads the saved chain into the store; resolves to the summary as JSON.
    #[napi(
        catch_unwind,
        ts_args_type = "onProgress?: ((event: string) => void) | undefined | null",
        ts_return_type = "Promise<string>"
    )]
    pub fn load(
        &self,
        on_progress: Option<ProgressFunction>,
    ) -> napi::Result<AsyncTask<Job<String>>> {
        let (store, saves) = (Arc::clone(&self.store), self.open()?);
        let ticket = store.ticket();
        Ok(AsyncTask::new(Job::new("load", move || {
            let (mut reporter, queued) = progress_reporter("load", on_progress);
            with_event_count(&saves.load_into(&store, ticket, &mut reporter)?, &queued)
        })))
    }

    /// Resolves to the snapshot's description as JSON. `metadata`: JSON text.
    #[napi(
        catch_unwind,
        ts_args_type = "name: string, metadata: string | undefined | null, maxSnapshots: number | undefined | null, onProgress?: ((event: string) => void) | undefined | null",
        ts_return_type = "Promise<string>"
    )]
    pub fn create_snapshot(
        &self,
        name: String,
        metadata: Option<String>,
        max_snapshots: Option<f64>,
        on_progress: Option<ProgressFunction>,
    ) -> napi::Result<AsyncTask<Job<String>>> {
        let (store, saves) = (Arc::clone(&self.store), self.open()?);
        Ok(AsyncTask::new(Job::new("createSnapshot", move || {
            let metadata = metadata
                .map(|text| {
                    serde_json::from_str(&text).map_err(|e| Error::InvalidArgument {
                        name: "metadata",
                        reason: format!("not JSON: {e}"),
                    })
                })
                .transpose()?;
            let max = max_snapshots
                .map(|n| positive_integer("maxSnapshots", n))
                .transpose()?;
            let (mut reporter, queued) = progress_reporter("snapshot", on_progress);
            let info = saves.snapshot_store(&store, &name, metadata, max, &mut reporter)?;
            with_event_count(&info, &queued)
        })))
    }

    #[napi(catch_unwind, ts_return_type = "Promise<string>")]
    pub fn list_snapshots(&self) -> napi::Result<AsyncTask<Job<String>>> {
        let saves = self.open()?;
        Ok(AsyncTask::new(Job::new("listSnapshots", move || {
            to_json(&saves.list_snapshots()?)
        })))
    }

    #[napi(
        catch_unwind,
        ts_args_type = "idOrName: string, onProgress?: ((event: string) => void) | undefined | null",
        ts_return_type = "Promise<string>"
    )]
    pub fn restore_snapshot(
        &self,
        id_or_name: String,
        on_progress: Option<ProgressFunction>,
    ) -> napi::Result<AsyncTask<Job<String>>> {
        let (store, saves) = (Arc::clone(&self.store), self.open()?);
        let ticket = store.ticket();
        Ok(AsyncTask::new(Job::new("restoreSnapshot", move || {
            let (mut reporter, queued) = progress_reporter("restore", on_progress);
            let info = saves.restore_store(&store, ticket, &id_or_name, &mut reporter)?;
            with_event_count(&info, &queued)
        })))
    }

    #[napi(catch_unwind, ts_return_type = "Promise<string>")]
    pub fn delete_snapshot(&self, id_or_name: String) -> napi::Result<AsyncTask<Job<String>>> {
        let saves = self.open()?;
        Ok(AsyncTask::new(Job::new("deleteSnapshot", move || {
            to_json(&saves.delete_snapshot(&id_or_name)?)
        })))
    }
}
