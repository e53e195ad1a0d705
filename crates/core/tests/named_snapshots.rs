//! Named snapshots: create, list, restore, delete, their cost, retention,
//! damage, and a crash at every I/O operation of a create and a restore.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use annvault_core::progress::Reporter;
use annvault_core::snapshots::named::{CreateOptions, SnapshotInfo};
use annvault_core::storage::directory::Durability;
use annvault_core::storage::fs::Storage;
use annvault_core::storage::sim::SimStorage;
use annvault_core::storage::{snapshot, wal};
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

fn named(name: &str) -> CreateOptions {
    CreateOptions {
        name: Some(name.into()),
        ..CreateOptions::default()
    }
}

fn create(store: &Store, name: &str) -> annvault_core::Result<SnapshotInfo> {
    store.create_snapshot(store.ticket(), &named(name))
}

fn restore(store: &Store, key: &str) -> annvault_core::Result<SnapshotInfo> {
    store.restore_snapshot(store.ticket(), key, &mut Reporter::silent("restore"))
}

fn ids(from: i64, to: i64) -> Vec<i64> {
    (from..to).collect()
}

/// Points 0..20, a checkpoint, then 20..30 and an update in the WAL.
fn populate(store: &Store) {
    store.insert(store.ticket(), batch(&ids(0, 20), 1)).unwrap();
    store.checkpoint(store.ticket()).unwrap();
    store
        .insert(store.ticket(), batch(&ids(20, 30), 2))
        .unwrap();
    store
        .update(
            store.ticket(),
            &PointId::Int(3),
            &vector(99),
            payload(json!({ "updated": true })),
        )
        .unwrap();
}

/// Deletes, inserts and clears after the snapshot.
fn change(store: &Store) {
    store.delete(store.ticket(), &PointId::Int(0)).unwrap();
    store
        .insert(store.ticket(), batch(&ids(100, 105), 3))
        .unwrap();
    store.clear(store.ticket()).unwrap();
    store
        .insert(store.ticket(), batch(&ids(200, 202), 4))
        .unwrap();
}

fn snapshot_dir(id: &str) -> std::path::PathBuf {
    Path::new(ROOT).join("c").join("snapshots").join(id)
}

#[test]
fn create_list_restore_delete() {
    let storage = SimStorage::new(1);
    let store = open(&storage);
    populate(&store);
    let before = contents(&store);
    let info = store
        .create_snapshot(
            store.ticket(),
            &CreateOptions {
                name: Some("before-reingest".into()),
                metadata: Some(json!({ "reason": "test", "n": 1 })),
                max_snapshots: None,
            },
        )
        .unwrap();
    assert_eq!(info.name, "before-reingest");
    assert_eq!(info.count, 30);
    assert_eq!(info.metadata, json!({ "reason": "test", "n": 1 }));
    assert_eq!(info.checksum.len(), 64);
    assert!(info.bytes > 0 && info.sequence >= 3, "{info:?}");

    change(&store);
    let after = contents(&store);
    assert_ne!(before, after);

    let listed = store.list_snapshots().unwrap();
    assert_eq!(listed, vec![info.clone()]);

    // By name, then by id: the store serves the snapshot's state at once.
    let restored = restore(&store, "before-reingest").unwrap();
    assert_eq!(restored, info);
    assert_eq!(contents(&store), before);

    // Writes after the restore apply to the restored state, and all of it
    // survives a reopen.
    store.delete(store.ticket(), &PointId::Int(5)).unwrap();
    let mut expected = before.clone();
    expected.remove(&PointId::Int(5));
    assert_eq!(contents(&store), expected);
    store.close(store.ticket()).unwrap();
    let store = open(&storage);
    assert_eq!(contents(&store), expected);

    restore(&store, &info.id).unwrap();
    assert_eq!(contents(&store), before);
    // The sequence keeps growing across a restore.
    assert!(store.stats().unwrap().sequence > info.sequence);

    let deleted = store.delete_snapshot("before-reingest").unwrap();
    assert_eq!(deleted.id, info.id);
    assert!(store.list_snapshots().unwrap().is_empty());
    assert!(!storage.exists(&snapshot_dir(&info.id)));
    for key in ["before-reingest", info.id.as_str(), "never-made"] {
        assert_eq!(restore(&store, key).unwrap_err().kind(), "NOT_FOUND");
        assert_eq!(store.delete_snapshot(key).unwrap_err().code(), 1011);
    }
    store.close(store.ticket()).unwrap();
}

#[test]
fn unsafe_and_duplicate_names_are_refused_and_change_nothing() {
    let storage = SimStorage::new(2);
    let store = open(&storage);
    populate(&store);
    let long = "n".repeat(129);
    for name in ["../x", "/", "\\", "", "a\0b", long.as_str()] {
        let error = create(&store, name).unwrap_err();
        assert_eq!(error.kind(), "INVALID_NAME", "{name:?}");
        assert_eq!(error.code(), 1010);
        assert_eq!(restore(&store, name).unwrap_err().kind(), "INVALID_NAME");
        assert_eq!(
            store.delete_snapshot(name).unwrap_err().kind(),
            "INVALID_NAME"
        );
    }
    assert!(store.list_snapshots().unwrap().is_empty());
    let first = create(&store, "same").unwrap();
    let error = create(&store, "same").unwrap_err();
    assert_eq!(error.kind(), "INVALID_NAME");
    // Nor may a name be another snapshot's id.
    assert_eq!(
        create(&store, &first.id).unwrap_err().kind(),
        "INVALID_NAME"
    );
    assert_eq!(store.list_snapshots().unwrap(), vec![first]);
}

#[test]
fn a_snapshot_without_a_name_is_named_by_its_id_and_an_empty_store_can_be_snapshotted() {
    let storage = SimStorage::new(3);
    let store = open(&storage);
    let empty = store
        .create_snapshot(store.ticket(), &CreateOptions::default())
        .unwrap();
    assert_eq!(empty.name, empty.id);
    assert_eq!(empty.count, 0);
    store.insert(store.ticket(), batch(&ids(0, 5), 1)).unwrap();
    restore(&store, &empty.id).unwrap();
    assert_eq!(store.len().unwrap(), 0);
}

#[test]
fn a_snapshot_outlives_the_checkpoints_that_remove_the_files_it_links() {
    let storage = SimStorage::new(4);
    let store = open(&storage);
    populate(&store);
    let before = contents(&store);
    let info = create(&store, "s").unwrap();
    for round in 0..3 {
        store
            .insert(store.ticket(), batch(&ids(300 + round, 301 + round), 5))
            .unwrap();
        store.checkpoint(store.ticket()).unwrap();
    }
    // The collection no longer names the files the snapshot holds...
    let dir = Path::new(ROOT).join("c");
    let snap = snapshot_dir(&info.id);
    for name in storage.list(&snap).unwrap() {
        if snapshot::parse_file_name(&name).is_some() || wal::parse_file_name(&name).is_some() {
            assert!(!storage.exists(&dir.join(&name)), "{name} still in use");
        }
    }
    // ...and the snapshot still restores.
    restore(&store, "s").unwrap();
    assert_eq!(contents(&store), before);
}

#[test]
fn creating_costs_the_same_whatever_the_size_and_the_number_of_snapshots() {
    let mut written = Vec::new();
    // Below the size where a graph is built (debug builds are slow at it).
    for points in [50i64, 900] {
        let storage = SimStorage::new(5);
        let store = open(&storage);
        store
            .insert(store.ticket(), batch(&ids(0, points), 1))
            .unwrap();
        store.checkpoint(store.ticket()).unwrap();
        let dir = Path::new(ROOT).join("c");
        let checkpoint_bytes: u64 = storage
            .list(&dir)
            .unwrap()
            .iter()
            .filter(|n| snapshot::parse_file_name(n).is_some())
            .map(|n| storage.size(&dir.join(n)).unwrap())
            .sum();
        assert!(checkpoint_bytes > points as u64 * 16);
        let mut per_create = Vec::new();
        for k in 0..6 {
            // A checkpoint, then a write in the WAL, before each snapshot.
            store
                .insert(store.ticket(), batch(&[10_000 + k], 2))
                .unwrap();
            store.checkpoint(store.ticket()).unwrap();
            store
                .insert(store.ticket(), batch(&[20_000 + k], 2))
                .unwrap();
            let (files, bytes) = (storage.file_count(), storage.bytes_written());
            let (info, cost) = store
                .create_snapshot_costed(store.ticket(), &named(&format!("s{k}")))
                .unwrap();
            let bytes = storage.bytes_written() - bytes;
            // Links to the checkpoint and the one sealed WAL file; the
            // WAL's successor and the manifest are the only new files.
            assert_eq!((cost.linked, cost.copied), (2, 0));
            assert_eq!(storage.file_count() - files, 4);
            let snap = snapshot_dir(&info.id);
            let wal_name = storage
                .list(&snap)
                .unwrap()
                .into_iter()
                .find(|n| wal::parse_file_name(n).is_some())
                .unwrap();
            // Only the sealed WAL file is read to hash: the checkpoint's
            // SHA-256 was computed when it was written.
            assert_eq!(
                cost.hashed_bytes,
                storage.size(&snap.join(wal_name)).unwrap()
            );
            per_create.push(bytes);
        }
        // The checkpoint file is neither copied nor read: no byte of it
        // is written, whatever its size and however many snapshots exist.
        let most = *per_create.iter().max().unwrap();
        let least = *per_create.iter().min().unwrap();
        assert!(most < 2048, "{per_create:?}");
        assert!(most - least < 64, "{per_create:?}");
        written.push(most);
    }
    assert!(written[0].abs_diff(written[1]) < 64, "{written:?}");
}

#[test]
fn without_hard_links_a_snapshot_is_a_copy_and_restores_the_same() {
    let storage = SimStorage::new(6);
    storage.set_hard_links(false);
    let store = open(&storage);
    populate(&store);
    let before = contents(&store);
    let bytes = storage.bytes_written();
    let (info, cost) = store
        .create_snapshot_costed(store.ticket(), &named("copied"))
        .unwrap();
    assert_eq!(cost.linked, 0);
    assert_eq!(cost.copied, 2);
    assert!(storage.bytes_written() - bytes >= info.bytes);
    change(&store);
    // The copies are files of their own: checkpoints that remove the
    // originals leave them be.
    store.checkpoint(store.ticket()).unwrap();
    restore(&store, "copied").unwrap();
    assert_eq!(contents(&store), before);
}

#[test]
fn a_damaged_snapshot_is_refused_as_corrupt_and_nothing_changes() {
    let storage = SimStorage::new(7);
    // Copies, so that damaging the snapshot's files leaves the collection's.
    storage.set_hard_links(false);
    let store = open(&storage);
    populate(&store);
    let info = create(&store, "s").unwrap();
    change(&store);
    let now = contents(&store);
    let dir = snapshot_dir(&info.id);
    for name in storage.list(&dir).unwrap() {
        if name == "SNAPSHOT" {
            continue;
        }
        let path = dir.join(&name);
        let good = storage.contents(&path).unwrap();
        for at in [0, good.len() / 2, good.len() - 1] {
            let mut bad = good.clone();
            bad[at] ^= 0x01;
            storage.put(&path, &bad);
            let error = restore(&store, "s").unwrap_err();
            assert_eq!(error.kind(), "CORRUPT", "{name} at {at}: {error}");
            assert!(error.to_string().contains(&name), "{error}");
            assert_eq!(contents(&store), now);
        }
        storage.put(&path, &good[..good.len() - 1]);
        assert_eq!(restore(&store, "s").unwrap_err().kind(), "CORRUPT");
        storage.put(&path, &good);
    }
    // A damaged manifest: listing names it rather than leaving it out.
    let manifest = dir.join("SNAPSHOT");
    let good = storage.contents(&manifest).unwrap();
    let mut bad = good.clone();
    let last = bad.len() - 3;
    bad[last] ^= 0x01;
    storage.put(&manifest, &bad);
    assert_eq!(store.list_snapshots().unwrap_err().kind(), "CORRUPT");
    assert_eq!(restore(&store, &info.id).unwrap_err().kind(), "CORRUPT");
    storage.put(&manifest, &good);
    restore(&store, "s").unwrap();
    assert_ne!(contents(&store), now);
}

#[test]
fn max_snapshots_keeps_the_newest() {
    let storage = SimStorage::new(8);
    let store = open(&storage);
    let mut made = Vec::new();
    for k in 0..5i64 {
        store.insert(store.ticket(), batch(&[k], 1)).unwrap();
        let info = store
            .create_snapshot(
                store.ticket(),
                &CreateOptions {
                    name: Some(format!("s{k}")),
                    metadata: None,
                    max_snapshots: Some(2),
                },
            )
            .unwrap();
        made.push(info);
    }
    let kept: Vec<String> = store
        .list_snapshots()
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(kept, ["s3", "s4"]);
    for old in &made[..3] {
        assert!(!storage.exists(&snapshot_dir(&old.id)));
    }
    restore(&store, "s3").unwrap();
    assert_eq!(store.len().unwrap(), 4);
    let zero = store
        .create_snapshot(
            store.ticket(),
            &CreateOptions {
                max_snapshots: Some(0),
                ..named("z")
            },
        )
        .unwrap_err();
    assert_eq!(zero.kind(), "INVALID_ARGUMENT");
}

#[test]
fn snapshots_taken_while_writes_go_on_are_each_a_point_in_the_write_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(
        Arc::new(annvault_core::storage::fs::OsStorage),
        dir.path(),
        testing::no_auto_checkpoint(Durability::Flush),
    );
    // No graph: a checkpoint would wait for the indexer to catch up.
    opts.ann.algorithm = annvault_core::Algorithm::Flat;
    let store = Store::open(opts).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop) = (store.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut next = 0i64;
            // Bounded, so the checkpoints stay small in a debug build.
            while !stop.load(Ordering::Relaxed) && next < 4000 {
                store
                    .insert(store.ticket(), batch(&[next, next + 1], 7))
                    .unwrap();
                next += 2;
                if next % 500 == 0 {
                    store.checkpoint(store.ticket()).unwrap();
                }
            }
            next
        })
    };
    let mut taken = Vec::new();
    for k in 0..8 {
        std::thread::sleep(std::time::Duration::from_millis(5));
        taken.push(create(&store, &format!("live{k}")).unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert!(written > 0);
    for info in &taken {
        restore(&store, &info.id).unwrap();
        let held: Vec<PointId> = contents(&store).into_keys().collect();
        let expected: Vec<PointId> = (0..info.count as i64).map(PointId::Int).collect();
        assert_eq!(held, expected, "snapshot {}", info.name);
        assert_eq!(info.count % 2, 0);
    }
    assert!(taken.windows(2).all(|w| w[0].sequence <= w[1].sequence));
    // At least one was taken while the writer was still writing.
    assert!(
        taken
            .iter()
            .any(|i| i.count > 0 && (i.count as i64) < written),
        "{:?} of {written}",
        taken.iter().map(|i| i.count).collect::<Vec<_>>()
    );
}

#[test]
fn sync_wal_makes_flushed_writes_survive_a_power_cut() {
    let mut lost_without = 0;
    for seed in 1..20 {
        for sync in [false, true] {
            let storage = SimStorage::new(seed);
            let root = Path::new(ROOT);
            let opts = || {
                options(
                    Arc::new(storage.clone()),
                    root,
                    testing::no_auto_checkpoint(Durability::Flush),
                )
            };
            let store = Store::open(opts()).unwrap();
            store.insert(store.ticket(), batch(&ids(0, 50), 1)).unwrap();
            if sync {
                store.sync_wal().unwrap();
            }
            drop(store);
            storage.crash();
            let store = Store::open(opts()).unwrap();
            let held = store.len().unwrap();
            if sync {
                assert_eq!(held, 50, "seed {seed}");
            } else if held < 50 {
                lost_without += 1;
            }
        }
    }
    // The test can fail: unsynced flushed writes do get lost.
    assert!(lost_without > 10, "{lost_without}");
}

#[test]
fn checkpoint_if_changed_checkpoints_only_after_writes() {
    let storage = SimStorage::new(9);
    let store = open(&storage);
    assert!(!store.checkpoint_if_changed(store.ticket()).unwrap());
    store.insert(store.ticket(), batch(&ids(0, 3), 1)).unwrap();
    assert!(store.checkpoint_if_changed(store.ticket()).unwrap());
    assert!(!store.checkpoint_if_changed(store.ticket()).unwrap());
    store.close(store.ticket()).unwrap();
    assert_eq!(store.sync_wal().unwrap_err().kind(), "CLOSED");
}

/// Runs `setup` on a fresh simulated disk, then counts the I/O operations
/// of `operation`.
fn ops_of(setup: &dyn Fn(&Store), operation: &dyn Fn(&Store)) -> u64 {
    let storage = SimStorage::new(1);
    let store = open(&storage);
    setup(&store);
    let start = storage.ops();
    operation(&store);
    storage.ops() - start
}

#[test]
fn a_crash_at_every_io_operation_of_a_create_leaves_the_collection_whole_and_the_snapshot_all_or_nothing(
) {
    let setup = |store: &Store| populate(store);
    let total = ops_of(&setup, &|store| {
        create(store, "s").unwrap();
    });
    assert!(total > 10, "{total}");
    let reference = SimStorage::new(1);
    let expected = {
        let store = open(&reference);
        populate(&store);
        contents(&store)
    };
    let (mut complete, mut absent) = (0, 0);
    for at in 0..=total {
        let storage = SimStorage::new(at + 11);
        let store = open(&storage);
        setup(&store);
        storage.crash_at(at);
        let outcome = create(&store, "s");
        drop(store);
        storage.crash();
        let store = open(&storage);
        assert_eq!(contents(&store), expected, "crash at {at}");
        let listed = store.list_snapshots().unwrap();
        match listed.as_slice() {
            [] => {
                assert!(outcome.is_err(), "crash at {at}: acknowledged, then lost");
                absent += 1;
            }
            [one] => {
                complete += 1;
                store.insert(store.ticket(), batch(&[500], 1)).unwrap();
                restore(&store, &one.id).unwrap_or_else(|e| panic!("crash at {at}: {e}"));
                assert_eq!(contents(&store), expected, "crash at {at}");
            }
            more => panic!("crash at {at}: {more:?}"),
        }
        // What the crash left does not stand in the way of the next create.
        let again = create(&store, "t").unwrap();
        restore(&store, &again.id).unwrap();
        assert_eq!(contents(&store), expected, "crash at {at}");
    }
    assert!(complete > 0 && absent > 0, "{complete} {absent}");
}

#[test]
fn a_crash_at_every_io_operation_of_a_restore_leaves_the_old_state_or_the_snapshot() {
    let setup = |store: &Store| {
        populate(store);
        create(store, "s").unwrap();
        change(store);
    };
    let total = ops_of(&setup, &|store| {
        restore(store, "s").unwrap();
    });
    assert!(total > 10, "{total}");
    let (snapshot_state, later_state) = {
        let storage = SimStorage::new(1);
        let store = open(&storage);
        populate(&store);
        let a = contents(&store);
        create(&store, "s").unwrap();
        change(&store);
        (a, contents(&store))
    };
    let (mut old, mut new) = (0, 0);
    for at in 0..=total {
        let storage = SimStorage::new(at + 101);
        let store = open(&storage);
        setup(&store);
        storage.crash_at(at);
        let outcome = restore(&store, "s");
        drop(store);
        storage.crash();
        let store = open(&storage);
        let held = contents(&store);
        if held == snapshot_state {
            new += 1;
        } else {
            assert_eq!(held, later_state, "crash at {at}: a mix");
            assert!(
                outcome.is_err(),
                "crash at {at}: restore acknowledged, then lost"
            );
            old += 1;
        }
        // The snapshot itself is intact and restores.
        restore(&store, "s").unwrap_or_else(|e| panic!("crash at {at}: {e}"));
        assert_eq!(contents(&store), snapshot_state);
    }
    assert!(old > 0 && new > 0, "{old} {new}");
}

#[test]
fn verify_checks_every_named_snapshot_as_a_restore_would() {
    let storage = SimStorage::new(9);
    storage.set_hard_links(false);
    let store = open(&storage);
    populate(&store);
    let info = create(&store, "s").unwrap();
    create(&store, "t").unwrap();
    let silent = || Reporter::silent("verify");
    let report = store.verify(&mut silent()).unwrap();
    assert!(report.ok, "{:?}", report.problems);
    let listed: Vec<&str> = report
        .files
        .iter()
        .map(|f| f.file.as_str())
        .filter(|f| f.starts_with("snapshots"))
        .collect();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let entry = report
        .files
        .iter()
        .find(|f| f.file == format!("snapshots/{}", info.id))
        .unwrap();
    assert!(entry.ok && entry.bytes > 0, "{entry:?}");

    // One flipped byte in one of its files: verify names the snapshot, the
    // collection and the other snapshot stay clean, nothing changes.
    let dir = snapshot_dir(&info.id);
    let name = storage
        .list(&dir)
        .unwrap()
        .into_iter()
        .find(|n| n != "SNAPSHOT")
        .unwrap();
    let path = dir.join(&name);
    let good = storage.contents(&path).unwrap();
    let mut bad = good.clone();
    bad[good.len() / 2] ^= 0x01;
    storage.put(&path, &bad);
    let before = contents(&store);
    let report = store.verify(&mut silent()).unwrap();
    assert!(!report.ok);
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(
        report.problems[0].starts_with(&format!("snapshots/{}: ", info.id))
            && report.problems[0].contains(&name),
        "{:?}",
        report.problems
    );
    let bad_entries: Vec<_> = report.files.iter().filter(|f| !f.ok).collect();
    assert_eq!(bad_entries.len(), 1, "{bad_entries:?}");
    assert_eq!(contents(&store), before);
    storage.put(&path, &good);
    assert!(store.verify(&mut silent()).unwrap().ok);
}
