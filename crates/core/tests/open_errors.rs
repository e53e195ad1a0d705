//! Errors a store reports about its directory: files the manifest needs
//! that are gone, a configuration the collection was not made with, and
//! the OS error behind a failed I/O operation.

mod common;

use std::path::Path;
use std::sync::Arc;

use annvault_core::storage::fs::OsStorage;
use annvault_core::storage::sim::{Fault, SimStorage};
use annvault_core::storage::{manifest, snapshot, wal};
use annvault_core::{AnnConfig, CollectionConfig, Distance, Error, Store};
use common::*;

fn open(root: &Path) -> annvault_core::Result<Store> {
    Store::open(options(Arc::new(OsStorage), root, durable()))
}

fn assert_corrupt(error: &Error, names: &Path) {
    assert!(matches!(error, Error::Corrupt { .. }), "{error:?}");
    assert_eq!((error.code(), error.kind()), (5006, "CORRUPT"));
    let name = names.display().to_string();
    assert!(error.to_string().contains(&name), "{error} names {name}");
}

#[test]
fn a_manifest_naming_a_missing_snapshot_is_corrupt() {
    let root = tempfile::tempdir().unwrap();
    let store = open(root.path()).unwrap();
    store.insert(store.ticket(), batch(&[1, 2], 1)).unwrap();
    store.close(store.ticket()).unwrap(); // checkpoints
    let dir = root.path().join("c");
    let manifest = std::fs::read(dir.join(manifest::FILE_NAME)).unwrap();
    let generation = manifest::Manifest::decode(&manifest).unwrap().snapshot;
    let snapshot = dir.join(snapshot::file_name(generation));
    std::fs::remove_file(&snapshot).unwrap();

    let error = open(root.path()).unwrap_err();
    assert_corrupt(&error, &snapshot);
    let file = error.details()["file"].as_str().unwrap().to_owned();
    assert!(file.ends_with(manifest::FILE_NAME), "{file}");
    // Refused, not started empty: the manifest is still there.
    assert!(dir.join(manifest::FILE_NAME).exists());
}

#[test]
fn a_wal_file_missing_from_the_middle_of_the_log_is_corrupt() {
    let root = tempfile::tempdir().unwrap();
    // Snapshots cannot be written: each checkpoint starts a new WAL file
    // and fails, so the manifest keeps naming the first one.
    let hooked = Hooked::new(Arc::new(OsStorage));
    hooked.fail_creating(Some("snapshot-"));
    let store = Store::open(options(Arc::new(hooked), root.path(), durable())).unwrap();
    for i in 1..=3 {
        store.insert(store.ticket(), batch(&[i], 1)).unwrap();
        if i < 3 {
            let error = store.checkpoint(store.ticket()).unwrap_err();
            assert_eq!(error.details()["osError"], 5, "{error}");
        }
    }
    drop(store);
    let dir = root.path().join("c");
    for generation in 1..=3 {
        assert!(
            dir.join(wal::file_name(generation)).exists(),
            "{generation}"
        );
    }
    let missing = dir.join(wal::file_name(2));
    std::fs::remove_file(&missing).unwrap();

    let error = open(root.path()).unwrap_err();
    assert_corrupt(&error, &missing);
    assert_eq!(error.details()["file"], missing.display().to_string());
}

#[test]
fn opening_with_another_distance_is_a_config_mismatch() {
    let root = tempfile::tempdir().unwrap();
    let store = open(root.path()).unwrap();
    store.insert(store.ticket(), batch(&[1], 1)).unwrap();
    store.close(store.ticket()).unwrap();
    let mut dot = options(Arc::new(OsStorage), root.path(), durable());
    dot.config = CollectionConfig::new(DIM, Distance::Dot, None).unwrap();
    dot.ann = AnnConfig::flat();

    let error = Store::open(dot).unwrap_err();
    assert!(matches!(error, Error::ConfigMismatch { .. }), "{error:?}");
    assert_eq!((error.code(), error.kind()), (5008, "CONFIG_MISMATCH"));
    let message = error.to_string();
    assert!(
        message.contains("distance") && message.contains("Cosine") && message.contains("Dot"),
        "{message}"
    );
    // The collection is untouched: it opens as it was made.
    let store = open(root.path()).unwrap();
    assert_eq!(store.len().unwrap(), 1);
}

#[test]
fn an_io_error_carries_the_os_error_in_its_details() {
    // A real one: the persistence path is a file, not a directory.
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("not-a-directory");
    std::fs::write(&file, b"x").unwrap();
    let error = open(&file).unwrap_err();
    assert_eq!((error.code(), error.kind()), (5002, "IO"), "{error}");
    let details = error.details();
    assert_eq!(details["ioOperation"], "create directory");
    assert_eq!(details["path"], file.join("c").display().to_string());
    #[cfg(target_os = "linux")]
    assert_eq!(details["osError"], 20, "ENOTDIR: {details}");
    assert!(details["osError"].as_i64().is_some(), "{details}");

    // A full disk under a write: ENOSPC, on the WAL.
    let storage = SimStorage::new(1);
    let store = Store::open(options(
        Arc::new(storage.clone()),
        Path::new("/db"),
        durable(),
    ))
    .unwrap();
    storage.fail_at(0, Fault::NoSpace, false);
    let error = store.insert(store.ticket(), batch(&[1], 1)).unwrap_err();
    let details = error.details();
    assert_eq!(error.code(), 5002, "{error}");
    assert_eq!(details["osError"], 28, "ENOSPC: {details}");
    // The first record reserves log space ahead of itself (zeros that the
    // next records overwrite): that write is the one the full disk refuses.
    assert_eq!(details["ioOperation"], "reserve");
    assert!(
        details["path"]
            .as_str()
            .unwrap()
            .ends_with(&wal::file_name(1)),
        "{details}"
    );
}
