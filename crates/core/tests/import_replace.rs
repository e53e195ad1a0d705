//! `import` with `mode: replace` on a persistent store installs the file's
//! points as one checkpoint: a crash at any I/O operation leaves the old
//! state or exactly the file's, never a mix, and an acknowledged import
//! survives the crash.

mod common;

use std::path::Path;
use std::sync::Arc;

use annvault_core::formats::{ExportOptions, ImportMode};
use annvault_core::progress::Reporter;
use annvault_core::storage::sim::SimStorage;
use annvault_core::{PointId, Store};
use common::*;
use serde_json::json;

const ROOT: &str = "/db";

fn open(storage: &SimStorage) -> Store {
    Store::open(options(
        Arc::new(storage.clone()),
        Path::new(ROOT),
        durable(),
    ))
    .unwrap()
}

/// Points 0..20 checkpointed, 20..30 and an update in the WAL.
fn populate(store: &Store) {
    let ids: Vec<i64> = (0..20).collect();
    store.insert(store.ticket(), batch(&ids, 1)).unwrap();
    store.checkpoint(store.ticket()).unwrap();
    let ids: Vec<i64> = (20..30).collect();
    store.insert(store.ticket(), batch(&ids, 2)).unwrap();
    store
        .update(
            store.ticket(),
            &PointId::Int(3),
            &vector(99),
            payload(json!({ "updated": true })),
        )
        .unwrap();
}

/// An export file (on the real disk) holding points 10..15 and 500..540,
/// and what a store holds after importing it alone.
fn export_file(dir: &Path) -> (std::path::PathBuf, Contents) {
    let store = Store::open(testing::store_options(
        "src",
        annvault_core::CollectionConfig::new(DIM, annvault_core::Distance::Cosine, None).unwrap(),
        annvault_core::AnnConfig::default(),
        None,
    ))
    .unwrap();
    let ids: Vec<i64> = (10..15).chain(500..540).collect();
    store.insert(store.ticket(), batch(&ids, 7)).unwrap();
    let path = dir.join("points.avb");
    store
        .export(
            &path,
            &ExportOptions::default(),
            &mut Reporter::silent("export"),
        )
        .unwrap();
    (path, contents(&store))
}

fn import(store: &Store, path: &Path) -> annvault_core::Result<u64> {
    store
        .import(path, ImportMode::Replace, &mut Reporter::silent("import"))
        .map(|s| s.count)
}

#[test]
fn a_replace_import_is_the_file_exactly_and_survives_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let (path, file_state) = export_file(dir.path());
    let storage = SimStorage::new(3);
    let store = open(&storage);
    populate(&store);
    assert_eq!(import(&store, &path).unwrap(), 45);
    assert_eq!(contents(&store), file_state);
    // Writes after the import apply to the imported state, and all of it is durable.
    store.delete(store.ticket(), &PointId::Int(500)).unwrap();
    drop(store);
    storage.crash();
    let store = open(&storage);
    let mut expected = file_state.clone();
    expected.remove(&PointId::Int(500));
    assert_eq!(contents(&store), expected);
}

#[test]
fn a_crash_at_every_io_operation_of_a_replace_import_leaves_the_old_state_or_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (path, file_state) = export_file(dir.path());
    let old_state = {
        let storage = SimStorage::new(1);
        let store = open(&storage);
        populate(&store);
        contents(&store)
    };
    let total = {
        let storage = SimStorage::new(1);
        let store = open(&storage);
        populate(&store);
        let start = storage.ops();
        import(&store, &path).unwrap();
        storage.ops() - start
    };
    assert!(total > 5, "{total}");
    let (mut old, mut new) = (0, 0);
    for at in 0..=total {
        let storage = SimStorage::new(at + 31);
        let store = open(&storage);
        populate(&store);
        storage.crash_at(at);
        let outcome = import(&store, &path);
        drop(store);
        storage.crash();
        let store = open(&storage);
        let held = contents(&store);
        if held == file_state {
            new += 1;
        } else {
            assert_eq!(held, old_state, "crash at {at}: a mix");
            assert!(
                outcome.is_err(),
                "crash at {at}: import acknowledged, then lost"
            );
            old += 1;
        }
        // The store takes the import again after whatever the crash left.
        import(&store, &path).unwrap_or_else(|e| panic!("crash at {at}: {e}"));
        assert_eq!(contents(&store), file_state, "crash at {at}");
    }
    assert!(old > 0 && new > 0, "{old} {new}");
}

#[test]
fn a_replace_import_refuses_a_bad_file_found_out_after_its_points_were_read_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = export_file(dir.path());
    let bytes = std::fs::read(&path).unwrap();
    // The file's checksum, in the trailer: checked only once every point was read.
    let mut bad_trailer = bytes.clone();
    let at = bad_trailer.len() - 12;
    bad_trailer[at] ^= 1;
    // An id twice: the last point's id made the first one's (JSON lines).
    let jsonl = dir.path().join("points.jsonl");
    let source = Store::open(testing::store_options(
        "src2",
        annvault_core::CollectionConfig::new(DIM, annvault_core::Distance::Cosine, None).unwrap(),
        annvault_core::AnnConfig::default(),
        None,
    ))
    .unwrap();
    source
        .insert(source.ticket(), batch(&[1, 2, 3, 4], 5))
        .unwrap();
    source
        .export(
            &jsonl,
            &ExportOptions {
                format: Some(annvault_core::formats::Format::Jsonl),
                ..ExportOptions::default()
            },
            &mut Reporter::silent("export"),
        )
        .unwrap();
    let twice = std::fs::read_to_string(&jsonl)
        .unwrap()
        .replace("\"id\":4", "\"id\":1");
    assert_ne!(twice, std::fs::read_to_string(&jsonl).unwrap());

    let storage = SimStorage::new(5);
    let store = open(&storage);
    populate(&store);
    let before = contents(&store);
    for (name, body, expected) in [
        ("trailer.avb", bad_trailer, "file checksum mismatch"),
        ("twice.jsonl", twice.into_bytes(), "appears twice"),
    ] {
        let file = dir.path().join(name);
        std::fs::write(&file, body).unwrap();
        let ops = storage.ops();
        let error = import(&store, &file).unwrap_err().to_string();
        assert!(error.contains(expected), "{name}: {error}");
        assert_eq!(storage.ops(), ops, "{name}: the store's files were touched");
        assert_eq!(contents(&store), before, "{name}");
    }
}
