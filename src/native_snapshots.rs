//! Named snapshots and auto-save on `NativeStore`
//! (`annvault_core::snapshots::named`).

use std::sync::Arc;

use annvault_core::snapshots::named::CreateOptions;
use annvault_core::{positive_integer, Error};
use napi::bindgen_prelude::AsyncTask;
use napi_derive::napi;

use crate::job::Job;
use crate::native_store::{
    progress_reporter, to_json, with_event_count, NativeStore, ProgressFunction,
};

#[napi]
impl NativeStore {
    /// Resolves to the snapshot's `{id, name, createdAt, sequence, count,
    /// bytes, checksum, metadata, progressEvents}` as JSON. `metadata`: JSON text.
    #[napi(
        catch_unwind,
        ts_args_type = "name: string | undefined | null, metadata: string | undefined | null, maxSnapshots: number | undefined | null, onProgress?: ((event: string) => void) | undefined | null",
        ts_return_type = "Promise<string>"
    )]
    pub fn create_snapshot(
        &self,
        name: Option<String>,
        metadata: Option<String>,
        max_snapshots: Option<f64>,
        on_progress: Option<ProgressFunction>,
    ) -> AsyncTask<Job<String>> {
        let store = Arc::clone(&self.store);
        let ticket = store.ticket();
        AsyncTask::new(Job::new("createSnapshot", move || {
            let metadata = metadata
                .map(|text| {
                    serde_json::from_str(&text).map_err(|e| Error::InvalidArgument {
                        name: "metadata",
                        reason: format!("not JSON: {e}"),
                    })
                })
                .transpose()?;
            let options = CreateOptions {
                name,
                metadata,
                max_snapshots: max_snapshots
                    .map(|n| positive_integer("maxSnapshots", n))
                    .transpose()?,
            };
            let (mut reporter, queued) = progress_reporter("snapshot", on_progress);
            let info = store.create_snapshot_reporting(ticket, &options, &mut reporter)?;
            with_event_count(&info, &queued)
        }))
    }

    /// Resolves to every snapshot, oldest first, as a JSON array.
    #[napi(catch_unwind, ts_return_type = "Promise<string>")]
    pub fn list_snapshots(&self) -> AsyncTask<Job<String>> {
        let store = Arc::clone(&self.store);
        AsyncTask::new(Job::new("listSnapshots", move || {
            to_json(&store.list_snapshots()?)
        }))
    }

    /// Resolves to the restored snapshot's description (plus
    /// `progressEvents`) as JSON.
    #[napi(
        catch_unwind,
        ts_args_type = "idOrName: string, onProgress?: ((event: string) => void) | undefined | null",
        ts_return_type = "Promise<string>"
    )]
    pub fn restore_snapshot(
        &self,
        id_or_name: String,
        on_progress: Option<ProgressFunction>,
    ) -> AsyncTask<Job<String>> {
        let store = Arc::clone(&self.store);
        let ticket = store.ticket();
        AsyncTask::new(Job::new("restoreSnapshot", move || {
            let (mut reporter, queued) = progress_reporter("restore", on_progress);
            let info = store.restore_snapshot(ticket, &id_or_name, &mut reporter)?;
            with_event_count(&info, &queued)
        }))
    }

    /// Resolves to the deleted snapshot's description as JSON.
    #[napi(catch_unwind, ts_return_type = "Promise<string>")]
    pub fn delete_snapshot(&self, id_or_name: String) -> AsyncTask<Job<String>> {
        let store = Arc::clone(&self.store);
        AsyncTask::new(Job::new("deleteSnapshot", move || {
            to_json(&store.delete_snapshot(&id_or_name)?)
        }))
    }

    /// Fsyncs the WAL (auto-save); a failure disables writes and rejects.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn sync_wal(&self) -> AsyncTask<Job<()>> {
        let store = Arc::clone(&self.store);
        AsyncTask::new(Job::new("autoSave", move || store.sync_wal()))
    }

    /// Checkpoints if anything was written since the last checkpoint;
    /// resolves to whether it did.
    #[napi(catch_unwind, ts_return_type = "Promise<boolean>")]
    pub fn checkpoint_if_changed(&self) -> AsyncTask<Job<bool>> {
        let store = Arc::clone(&self.store);
        let ticket = store.ticket();
        AsyncTask::new(Job::new("checkpoint", move || {
            store.checkpoint_if_changed(ticket)
        }))
    }
}
