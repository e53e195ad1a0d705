//! Crash and fault injection at every I/O operation, on the simulated disk.

mod common;

use std::path::Path;
use std::sync::Arc;

use annvault_core::storage::sim::{Fault, SimStorage};
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
    // The crashes fell before, inside and after the workload.
    assert_eq!(
        seen.len(),
        steps.len() + 1,
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
