//! Crash and fault injection at every I/O operation, on the simulated disk.

mod common;

use std::path::Path;
use std::sync::Arc;

use annvault_core::op::OP_GROUP;
use annvault_core::storage::directory::{DirOptions, Durability, RecoveryMode};
use annvault_core::storage::sim::{Fault, SimStorage};
use annvault_core::storage::wal;
use annvault_core::Store;
use common::*;

/// Crosses two explicit checkpoints and ends with `close`, which checkpoints too.
fn workload() -> Vec<Step> {
    vec![
        Step::Insert(vec![1, 2, 3], 10),
        Step::Update(2, 20),
        Step::Insert(vec![4], 30),
        Step::Checkpoint,
        Step::Delete(1),
        Step::Insert(vec![5, 6], 40),
        Step::Update(9, 50),
        Step::Checkpoint,
        Step::Clear,
        Step::Insert(vec![7, 8], 60),
        Step::Update(7, 70),
        Step::Delete(8),
        Step::Insert(vec![9], 80),
    ]
}

/// Runs the workload until the first failure; returns how many steps succeeded.
fn run_until_failure(storage: &SimStorage, root: &Path, steps: &[Step]) -> usize {
    let store = match Store::open(options(Arc::new(storage.clone()), root, durable())) {
        Ok(store) => store,
        Err(_) => return 0,
    };
    let mut acknowledged = 0;
    for step in steps {
        if step.run(&store).is_err() {
            return acknowledged;
        }
        acknowledged += 1;
    }
    let _ = store.close(store.ticket());
    acknowledged
}

fn total_ops(steps: &[Step]) -> u64 {
    let storage = SimStorage::new(1);
    assert_eq!(
        run_until_failure(&storage, Path::new("/db"), steps),
        steps.len()
    );
    storage.ops()
}

/// After reopening, the store must hold the state after exactly the first
/// `k` steps for some `k` with every acknowledged step included.
fn check_prefix(
    storage: &SimStorage,
    root: &Path,
    states: &[Contents],
    acknowledged: usize,
    context: &str,
) {
    let store = Store::open(options(Arc::new(storage.clone()), root, durable()))
        .unwrap_or_else(|e| panic!("{context}: reopen failed: {e}"));
    let actual = contents(&store);
    let candidates = &states[acknowledged..(acknowledged + 2).min(states.len())];
    assert!(
        candidates.contains(&actual),
        "{context}: {acknowledged} steps acknowledged, store holds {actual:?}"
    );
    store.close(store.ticket()).unwrap();
}

#[test]
fn crash_at_every_io_operation_keeps_exactly_an_acknowledged_prefix() {
    let steps = workload();
    let states = prefix_states(&steps);
    let total = total_ops(&steps);
    assert!(total > 40, "workload too small: {total} operations");
    let root = Path::new("/db");
    let mut seen = std::collections::BTreeSet::new();
    for at in 0..=total {
        let storage = SimStorage::new(at + 1);
        storage.crash_at(at);
        let acknowledged = run_until_failure(&storage, root, &steps);
        seen.insert(acknowledged);
        storage.crash();
        check_prefix(
            &storage,
            root,
            &states,
            acknowledged,
            &format!("crash at operation {at}"),
        );
    }
    // The crashes fell before, inside and after the workload: after every
    // step, but the update of the missing id 9, which is refused before it
    // touches the disk (so no crash can fall between it and the next step).
    let silent = 1;
    assert_eq!(
        seen.len(),
        steps.len() + 1 - silent,
        "acknowledged counts seen: {seen:?}"
    );
}

#[test]
fn injected_faults_at_every_operation_lose_nothing_acknowledged() {
    let steps = workload();
    let states = prefix_states(&steps);
    let total = total_ops(&steps);
    let root = Path::new("/db");
    for fault in [Fault::Io, Fault::NoSpace, Fault::ShortWrite, Fault::Sync] {
        for always in [false, true] {
            for at in 0..=total {
                let context = format!("{fault:?} (always: {always}) at operation {at}");
                let storage = SimStorage::new(at + 7);
                storage.fail_at(at, fault, always);
                let acknowledged = run_until_failure(&storage, root, &steps);
                // A fault may leave unsynced garbage: crash, then recover.
                storage.crash();
                check_prefix(&storage, root, &states, acknowledged, &context);
            }
        }
    }
}

#[test]
fn after_a_failed_fsync_the_store_refuses_writes_until_reopened() {
    let storage = SimStorage::new(3);
    let root = Path::new("/db");
    let store = Store::open(options(Arc::new(storage.clone()), root, durable())).unwrap();
    store.insert(store.ticket(), batch(&[1], 1)).unwrap();
    storage.fail_at(1, Fault::Sync, false); // 0: the append, 1: its fsync
    let err = store.insert(store.ticket(), batch(&[2], 2)).unwrap_err();
    assert_eq!(err.code(), 5002, "{err}");
    assert_eq!(store.len().unwrap(), 1, "memory unchanged");
    let err = store.insert(store.ticket(), batch(&[3], 3)).unwrap_err();
    assert_eq!(err.kind(), "WRITES_DISABLED");
    assert!(store.stats().unwrap().writes_disabled.is_some());
    // Reads still work.
    assert!(store
        .get(&annvault_core::PointId::Int(1))
        .unwrap()
        .is_some());
    store.close(store.ticket()).unwrap();
    store.reopen(store.ticket()).unwrap();
    store.insert(store.ticket(), batch(&[4], 4)).unwrap();
    let ids: Vec<_> = contents(&store).into_keys().collect();
    assert!(
        ids.contains(&annvault_core::PointId::Int(1))
            && ids.contains(&annvault_core::PointId::Int(4))
    );
}

/// Waits (up to 20 s) until `done` holds for the store's stats.
fn wait_for(store: &Store, done: impl Fn(&annvault_core::store::Stats) -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !done(&store.stats().unwrap()) {
        assert!(std::time::Instant::now() < deadline, "timed out");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// A `'flush'` store whose WAL is checkpointed in the background from 2 KiB.
fn open_flush(storage: &SimStorage, root: &Path) -> Store {
    open_flush_with(storage, root, RecoveryMode::Strict)
}

fn open_flush_with(storage: &SimStorage, root: &Path, recovery: RecoveryMode) -> Store {
    let dir_options = DirOptions {
        durability: Durability::Flush,
        recovery,
        checkpoint_wal_bytes: 2048,
        ..durable()
    };
    Store::open(options(Arc::new(storage.clone()), root, dir_options)).unwrap()
}

#[test]
fn a_background_checkpoint_of_a_flush_store_survives_a_crash() {
    let storage = SimStorage::new(5);
    let root = Path::new("/db");
    let store = open_flush(&storage, root);
    for i in 0..40 {
        store.insert(store.ticket(), batch(&[i], 1)).unwrap();
    }
    // The WAL passed its threshold: a checkpoint runs in the background
    // (the WAL is synced before the commit lock is taken, then rotated).
    wait_for(&store, |s| s.last_checkpoint_ms.is_some());
    let checkpointed = store.stats().unwrap();
    assert!(checkpointed.last_checkpoint_error.is_none());
    let before = contents(&store);
    drop(store);
    storage.crash(); // unsynced writes are lost; the checkpoint's are not
                     // A power cut may garble unsynced records of the log out of order (a
                     // damaged record, then intact ones), which a strict open refuses as
                     // corruption: `'flush'` promises to survive a killed process, not a
                     // power cut. Truncating sets such a tail aside.
    let reopened = open_flush_with(&storage, root, RecoveryMode::Truncate);
    let after = contents(&reopened);
    assert!(after.len() >= 20, "only {} points survived", after.len());
    for (id, value) in &after {
        assert_eq!(before.get(id), Some(value), "{id:?}");
    }
}

#[test]
fn a_failed_sync_before_a_background_checkpoint_disables_writes() {
    let storage = SimStorage::new(6);
    let root = Path::new("/db");
    let store = open_flush(&storage, root);
    storage.fail_at(storage.ops(), Fault::Sync, true);
    // Flush writes do not sync: they succeed until the checkpoint's sync fails.
    let mut failed = None;
    for i in 0..400 {
        if let Err(error) = store.insert(store.ticket(), batch(&[i], 1)) {
            failed = Some(error);
            break;
        }
        if store.stats().unwrap().writes_disabled.is_some() {
            break;
        }
    }
    // The checkpoint thread disables writes, then records its error.
    wait_for(&store, |s| {
        s.writes_disabled.is_some() && (failed.is_some() || s.last_checkpoint_error.is_some())
    });
    let err = store.insert(store.ticket(), batch(&[1000], 1)).unwrap_err();
    assert_eq!(err.kind(), "WRITES_DISABLED", "{err}");
}

const WRITERS: usize = 4;
const WRITES_PER_WRITER: usize = 6;
const POINTS_PER_WRITE: i64 = 3;

/// The ids of writer `w`'s `j`-th write (a batch), disjoint from every other write's.
fn write_ids(w: usize, j: usize) -> Vec<i64> {
    let first = (w * WRITES_PER_WRITER + j) as i64 * POINTS_PER_WRITE;
    (first..first + POINTS_PER_WRITE).collect()
}

fn write_seed(w: usize, j: usize) -> u64 {
    1000 + (w * WRITES_PER_WRITER + j) as u64
}

/// Runs the writers at once, each issuing its writes one after another
/// until one fails; returns how many each had acknowledged.
fn run_writers(store: &Store) -> Vec<usize> {
    std::thread::scope(|scope| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                scope.spawn(move || {
                    (0..WRITES_PER_WRITER)
                        .take_while(|&j| {
                            let batch = batch(&write_ids(w, j), write_seed(w, j));
                            store.insert(store.ticket(), batch).is_ok()
                        })
                        .count()
                })
            })
            .collect();
        writers.into_iter().map(|w| w.join().unwrap()).collect()
    })
}

/// Records of the first WAL file in `dir` that hold several operations.
fn group_records(storage: &SimStorage, dir: &Path) -> usize {
    let bytes = storage.contents(&dir.join(wal::file_name(1))).unwrap();
    let scan = wal::scan(&bytes).unwrap();
    scan.records.iter().filter(|r| r.op == OP_GROUP).count()
}

/// Several writers at once, so that commits carry several of them (one
/// record, one fsync); a crash at every I/O operation of the run. After
/// it, every acknowledged write is there, every write is all there or not
/// at all, and nothing appears that was never issued.
#[test]
fn concurrent_writers_group_commits_are_all_or_nothing_after_a_crash() {
    let root = Path::new("/db");
    let dir = root.join("c");
    let mut groups = 0;
    let mut crashed_mid_run = 0;
    let mut in_flight_kept = 0;
    let mut torn = 0;
    // A commit is an append and an fsync: 24 writes take at most 48
    // operations. No checkpoint runs: the log is `wal-1` alone.
    for at in 0..50u64 {
        let context = format!("crash at operation {at} of the writes");
        let storage = SimStorage::new(at + 11);
        let hooked = Hooked::new(Arc::new(storage.clone()));
        // Writers arriving during an fsync queue behind it, as on a real disk.
        hooked.slow_sync(std::time::Duration::from_micros(300));
        let store = Store::open(options(Arc::new(hooked), root, durable())).unwrap();
        storage.crash_at(at);
        let acknowledged = run_writers(&store);
        groups += group_records(&storage, &dir);
        drop(store);
        if storage.has_crashed() {
            crashed_mid_run += 1;
        }
        storage.crash();
        let reopened = Store::open(options(Arc::new(storage.clone()), root, durable()))
            .unwrap_or_else(|e| panic!("{context}: reopen failed: {e}"));
        if reopened.stats().unwrap().torn_bytes > 0 {
            torn += 1;
        }
        let mut held = contents(&reopened);
        for (w, &acked) in acknowledged.iter().enumerate() {
            for j in 0..WRITES_PER_WRITER {
                let ids = write_ids(w, j);
                let mut model = Contents::new();
                Step::Insert(ids.clone(), write_seed(w, j)).model(&mut model);
                let found: Contents = model
                    .keys()
                    .filter_map(|id| held.remove_entry(id))
                    .collect();
                let what = format!("{context}: writer {w} write {j} ({acked} acknowledged)");
                if j < acked {
                    assert_eq!(found, model, "{what}: an acknowledged write is incomplete");
                } else if j == acked && !found.is_empty() {
                    // The write in flight at the crash: all there or nothing.
                    assert_eq!(found, model, "{what}: a write is there in part");
                    in_flight_kept += 1;
                } else {
                    assert!(found.is_empty(), "{what}: a write never issued is there");
                }
            }
        }
        assert!(held.is_empty(), "{context}: unknown points {held:?}");
        reopened.close(reopened.ticket()).unwrap();
    }
    assert!(groups > 0, "no commit carried several writes");
    assert!(
        crashed_mid_run > 10,
        "{crashed_mid_run} crashes fell among the writes"
    );
    assert!(torn > 0, "no crash left part of a record to cut");
    eprintln!(
        "{groups} group records; {crashed_mid_run} crashes among the writes, \
         {torn} leaving part of a record; {in_flight_kept} unacknowledged writes kept whole"
    );
}
