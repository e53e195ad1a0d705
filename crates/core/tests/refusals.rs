//! A refused write changes nothing, on disk either: only operations that
//! change the collection reach the WAL (`Collection::dry_run` decides, before
//! the record is written, what `apply` would refuse).

mod common;

use std::path::Path;
use std::sync::Arc;

use annvault_core::collection::Verdict;
use annvault_core::op::Op;
use annvault_core::storage::fs::Storage;
use annvault_core::storage::sim::SimStorage;
use annvault_core::{Collection, CollectionConfig, Distance, PointId, Store};
use common::*;
use proptest::prelude::*;
use serde_json::json;

fn op() -> impl Strategy<Value = Op> {
    let id = 0i64..6;
    prop_oneof![
        3 => prop::collection::btree_set(id.clone(), 1..4)
            .prop_map(|ids| Op::Insert(batch(&ids.into_iter().collect::<Vec<_>>(), 1))),
        2 => id.clone().prop_map(|i| Op::Update {
            id: PointId::Int(i),
            vector: vec![0.5; 4],
            payload: payload(json!({ "u": i })),
        }),
        2 => id.prop_map(|i| Op::Delete(PointId::Int(i))),
        1 => Just(Op::Clear),
    ]
}

proptest! {
    /// Over groups of operations (as one commit writes them), on
    /// collections with and without a capacity: each verdict is what apply
    /// then does.
    #[test]
    fn dry_run_says_what_apply_does(
        before in prop::collection::vec(op(), 0..6),
        group in prop::collection::vec(op(), 1..8),
        max in prop::option::of(1usize..6),
    ) {
        let mut collection = Collection::new(CollectionConfig::new(4, Distance::Cosine, max).unwrap());
        for op in before {
            let _ = collection.apply(op);
        }
        let verdicts = collection.dry_run(&group.iter().collect::<Vec<_>>());
        for (op, verdict) in group.into_iter().zip(verdicts) {
            let count = collection.len();
            let result = collection.apply(op);
            match verdict {
                Verdict::Apply => prop_assert!(result.is_ok(), "{result:?}"),
                Verdict::Unchanged => {
                    prop_assert_eq!(result.ok(), Some(false));
                    prop_assert_eq!(collection.len(), count);
                }
                Verdict::Refuse(expected) => {
                    let error = result.expect_err("refused");
                    prop_assert_eq!(error.kind(), expected.kind());
                    prop_assert_eq!(error.full_message(), expected.full_message());
                }
            }
        }
    }
}

#[test]
fn refused_writes_and_deletes_of_missing_ids_leave_the_wal_untouched() {
    let storage = SimStorage::new(1);
    let root = Path::new("/refusals");
    let mut options = options(Arc::new(storage.clone()), root, durable());
    options.config = CollectionConfig::new(4, Distance::Cosine, Some(2)).unwrap();
    let store = Store::open(options).unwrap();
    store.insert(store.ticket(), batch(&[1, 2], 7)).unwrap();
    let wal = |storage: &SimStorage| {
        let dir = root.join("c");
        let name = storage
            .list(&dir)
            .unwrap()
            .into_iter()
            .find(|n| n.starts_with("wal-"))
            .unwrap();
        storage.contents(&dir.join(name)).unwrap()
    };
    let before = wal(&storage);
    let missing = PointId::Int(9);
    let err = store
        .update(store.ticket(), &missing, &[1.0; 4], payload(json!({})))
        .unwrap_err();
    assert_eq!(err.kind(), "NOT_FOUND");
    let err = store.insert(store.ticket(), batch(&[3], 7)).unwrap_err();
    assert_eq!(err.kind(), "CAPACITY_EXCEEDED");
    assert!(!store.delete(store.ticket(), &missing).unwrap());
    assert_eq!(wal(&storage), before);
    // What does change the collection is still logged.
    assert!(store.delete(store.ticket(), &PointId::Int(1)).unwrap());
    let records = |bytes: &[u8]| {
        annvault_core::storage::wal::scan(bytes)
            .unwrap()
            .records
            .len()
    };
    assert_eq!(records(&wal(&storage)), records(&before) + 1);
}
