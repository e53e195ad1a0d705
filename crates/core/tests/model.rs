//! The store against a `BTreeMap` model: random operations, with checkpoints,
//! clean reopens and power cuts at random points.

mod common;

use std::path::Path;
use std::sync::Arc;

use annvault_core::storage::sim::SimStorage;
use annvault_core::Store;
use common::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Action {
    Step(Step),
    /// close() then reopen(): checkpoint and reload.
    Reopen,
    /// Power cut and a new process: only what was synced survives.
    Crash,
}

fn action() -> impl Strategy<Value = Action> {
    let id = 0i64..24;
    prop_oneof![
        6 => (prop::collection::btree_set(id.clone(), 1..5), 0u64..1000)
            .prop_map(|(ids, seed)| Action::Step(Step::Insert(ids.into_iter().collect(), seed))),
        3 => (id.clone(), 0u64..1000).prop_map(|(id, seed)| Action::Step(Step::Update(id, seed))),
        3 => id.prop_map(|id| Action::Step(Step::Delete(id))),
        1 => Just(Action::Step(Step::Clear)),
        2 => Just(Action::Step(Step::Checkpoint)),
        1 => Just(Action::Reopen),
        1 => Just(Action::Crash),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_a_btreemap_model_across_reopens_and_crashes(
        actions in prop::collection::vec(action(), 1..40),
        seed in any::<u64>(),
    ) {
        let storage = SimStorage::new(seed);
        let root = Path::new("/model");
        let open = || Store::open(options(Arc::new(storage.clone()), root, durable())).unwrap();
        let mut store = open();
        let mut model = Contents::new();
        for action in &actions {
            match action {
                Action::Step(step) => {
                    step.run(&store).unwrap();
                    step.model(&mut model);
                }
                Action::Reopen => {
                    store.close(store.ticket()).unwrap();
                    store.reopen(store.ticket()).unwrap();
                }
                Action::Crash => {
                    drop(store);
                    storage.crash();
                    store = open();
                }
            }
            prop_assert_eq!(&contents(&store), &model, "after {:?}", action);
        }
        store.close(store.ticket()).unwrap();
        let store = open();
        prop_assert_eq!(contents(&store), model);
    }
}

#[test]
fn the_model_test_runs_on_the_real_file_system_too() {
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn annvault_core::storage::fs::Storage> =
        Arc::new(annvault_core::storage::fs::OsStorage);
    let steps = [
        Step::Insert(vec![1, 2, 3], 1),
        Step::Checkpoint,
        Step::Update(2, 9),
        Step::Delete(3),
        Step::Insert(vec![4], 4),
    ];
    let store = Store::open(options(Arc::clone(&storage), dir.path(), durable())).unwrap();
    let mut model = Contents::new();
    for step in &steps {
        step.run(&store).unwrap();
        step.model(&mut model);
    }
    // No close: the next open replays the WAL on top of the snapshot.
    drop(store);
    let store = Store::open(options(storage, dir.path(), durable())).unwrap();
    assert_eq!(contents(&store), model);
    assert_eq!(store.stats().unwrap().replayed_records, 3);
}
